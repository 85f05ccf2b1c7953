"""HTTP caching for public reads: strong ETags, conditional GET (304) and Cache-Control."""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.openapi.datastructures import ResponseSpec

NOT_MODIFIED = {304: ResponseSpec(data_container=None, description="Not modified (If-None-Match matched)")}


def cached_response(request: Request[Any, Any, Any], content: Any, *, max_age: int, shared: bool,
                    cache_control: str | None = None) -> Response[Any]:
    """``content`` with an ETag of its exact bytes; 304 when the client already holds them.

    ``shared``: a shared cache (CDN) may keep it. Otherwise it is for this caller only, e.g. a draft
    shown to an administrator or an enterprise's own factor. ``cache_control`` overrides both.
    """
    body = msgspec.json.encode(content)
    headers = {
        "Cache-Control": cache_control or (f"public, max-age={max_age}" if shared else "private, no-cache"),
        # What a caller may see depends on the token sent.
        "Vary": "Authorization, Accept-Language",
    }
    return conditional_response(request, body, etag_of(body), headers=headers, media_type="application/json")


def etag_of(body: bytes) -> str:
    """A strong ETag of the exact bytes."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def conditional_response(request: Request[Any, Any, Any], body: bytes, etag: str, *, headers: dict[str, str],
                         media_type: str) -> Response[Any]:
    """``body`` with its ETag, or an empty 304 when ``If-None-Match`` names it (or is ``*``)."""
    headers = {"ETag": etag, **headers}
    wanted = request.headers.get("if-none-match", "")
    tags = {tag.strip().removeprefix("W/") for tag in wanted.split(",")}
    if etag in tags or wanted.strip() == "*":
        return Response(content=b"", status_code=304, headers=headers)
    return Response(content=body, headers=headers, media_type=media_type)
