"""HTTP caching for public reads: strong ETags, conditional GET (304) and Cache-Control."""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.openapi.datastructures import ResponseSpec

NOT_MODIFIED = {304: ResponseSpec(data_container=None, description="Not modified (If-None-Match matched)")}


def cached_response(request: Request[Any, Any, Any], content: Any, *, max_age: int, shared: bool) -> Response[Any]:
    """``content`` with an ETag of its exact bytes; 304 when the client already holds them.

    ``shared``: a shared cache (CDN) may keep it. Otherwise it is for this caller only, e.g. a draft
    shown to an administrator or an enterprise's own factor.
    """
    body = msgspec.json.encode(content)
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {
        "ETag": etag,
        "Cache-Control": f"public, max-age={max_age}" if shared else "private, no-cache",
        # What a caller may see depends on the token sent.
        "Vary": "Authorization, Accept-Language",
    }
    wanted = request.headers.get("if-none-match", "")
    tags = {tag.strip().removeprefix("W/") for tag in wanted.split(",")}
    if etag in tags or wanted.strip() == "*":
        return Response(content=b"", status_code=304, headers=headers)
    return Response(content=body, headers=headers, media_type="application/json")
