"""PACT machine clients and the OAuth 2.0 token endpoint (client credentials, RFC 6749 §4.4).

Authlib runs the protocol (client authentication, grant checks, error bodies); the platform keeps
the clients and signs the access tokens with its own key, so the PACT routes validate them like
every other token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import AuthorizationServer, ClientMixin, OAuth2Request
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from sqlalchemy.ext.asyncio import AsyncSession

from carbonpuhui.pact.models import PactClient

TOKEN_TTL_SECONDS = 3600
PACT_SCOPE = "pact"


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def validate_callback_url(url: str | None, *, allow_http: bool) -> str | None:
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ({"https", "http"} if allow_http else {"https"}) or not parts.hostname:
        raise ValueError("the callback URL must be an absolute https:// URL")
    try:
        parts.port  # noqa: B018 - raises on a port past 65535 or not a number
    except ValueError:
        raise ValueError("the callback URL's port must be a number from 0 to 65535") from None
    if parts.query or parts.fragment:
        raise ValueError("the callback URL is a base URL: no query or fragment")
    return url.rstrip("/")


async def create_client(session: AsyncSession, *, org: str, actor: str, callback_base_url: str | None = None,
                        callback_client_id: str | None = None, callback_client_secret: str | None = None,
                        ) -> tuple[PactClient, str]:
    """A new client of ``org``; the secret is returned once and only its digest is kept."""
    if not org or len(org) > 100:
        raise ValueError("org must be 1-100 characters")
    secret = secrets.token_urlsafe(32)
    row = PactClient(client_id=secrets.token_hex(16), org=org, secret_sha256=secret_digest(secret),
                     created_at=datetime.now(UTC), created_by=actor, callback_base_url=callback_base_url,
                     callback_client_id=callback_client_id, callback_client_secret=callback_client_secret)
    session.add(row)
    await session.flush()
    return row, secret


def basic_client_id(header: str | None) -> str | None:
    """The client id of an HTTP Basic header, or None if the header is not well-formed Basic
    credentials (Authlib would fail on bytes that are not UTF-8)."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    client_id, sep, secret = decoded.partition(":")
    return client_id if sep and client_id and secret else None


class _Client(ClientMixin):
    def __init__(self, row: PactClient) -> None:
        self.row = row

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self) -> str | None:
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        # Every client may read what is shared with its organisation; nothing else is granted.
        return PACT_SCOPE

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return hmac.compare_digest(secret_digest(client_secret), self.row.secret_sha256)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "token" and method == "client_secret_basic"

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == ClientCredentialsGrant.GRANT_TYPE


class _Request(OAuth2Request):
    def __init__(self, uri: str, headers: dict[str, str], form: dict[str, str]) -> None:
        super().__init__("POST", uri, headers=headers)
        self.payload = BasicOAuth2Payload(form)
        self._form = form

    @property
    def args(self) -> dict[str, str]:
        return {}

    @property
    def form(self) -> dict[str, str]:
        return self._form


class TokenServer(AuthorizationServer):  # type: ignore[misc]
    """One token request at a time: the client row is looked up (async) before Authlib runs."""

    def __init__(self, client: PactClient | None, mint: Callable[[PactClient], str]) -> None:
        super().__init__()
        self._row = client if client is not None and client.revoked_at is None else None
        self._mint = mint
        self.register_grant(ClientCredentialsGrant)
        self.register_token_generator("default", self._generate)

    def _generate(self, grant_type: str, client: _Client, user: Any = None, scope: str | None = None,
                  expires_in: int | None = None, include_refresh_token: bool = True) -> dict[str, Any]:
        return {"access_token": self._mint(client.row), "token_type": "Bearer",
                "expires_in": TOKEN_TTL_SECONDS, "scope": scope or PACT_SCOPE}

    def query_client(self, client_id: str) -> _Client | None:
        return _Client(self._row) if self._row is not None and self._row.client_id == client_id else None

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        pass  # self-contained JWTs: nothing to store

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass

    def create_oauth2_request(self, request: _Request) -> _Request:
        return request

    def handle_response(self, status: int, body: Any, headers: Any) -> tuple[int, Any, dict[str, str]]:
        return status, body, dict(headers)

    def respond(self, *, uri: str, authorization: str | None, form: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        headers = {"Authorization": authorization} if authorization else {}
        return self.create_token_response(_Request(uri, headers, form))
