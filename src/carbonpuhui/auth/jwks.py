"""``/.well-known/jwks.json``: the embedded default's public signing key."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get

from carbonpuhui.auth.access import access
from carbonpuhui.errors import NotFoundError
from carbonpuhui.i18n import N_


class JWKSController(Controller):
    tags = ["auth"]

    @get("/.well-known/jwks.json", **access(public=True, errors=(404,), services=False),
         summary="Public keys that verify this platform's access tokens",
         media_type="application/jwk-set+json")  # RFC 7517; declared here so the schema documents it
    async def jwks(self, request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
        jwks = request.app.state.public_jwks
        if jwks is None:
            raise NotFoundError(N_("Tokens are verified against an external JWKS; none is served here."),
                                reason="external_jwks")
        return Response(jwks, headers={"Cache-Control": "public, max-age=300"})
