"""``/.well-known/jwks.json``: the public key of the tokens this platform signs itself (everybody's
on the embedded default; its PACT clients' when people's tokens come from an identity provider)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get

from carbonpuhui.auth.access import access


class JWKSController(Controller):
    tags = ["auth"]

    @get("/.well-known/jwks.json", **access(public=True, services=False),
         summary="Public keys that verify the access tokens this platform signs",
         media_type="application/jwk-set+json")  # RFC 7517; declared here so the schema documents it
    async def jwks(self, request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
        return Response(request.app.state.public_jwks, headers={"Cache-Control": "public, max-age=300"})
