"""PACT clients without HTTP: reading HTTP Basic credentials, callback URLs, the secret digest and
the Authlib token server on a client row that is not in any database."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from datetime import UTC, datetime

import pytest

from carbonpuhui.pact.clients import (
    PACT_SCOPE,
    TOKEN_TTL_SECONDS,
    TokenServer,
    basic_client_id,
    create_client,
    secret_digest,
    validate_callback_url,
)
from carbonpuhui.pact.models import PactClient

SECRET = "s3cret-value_with-dashes"


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.mark.parametrize("header, expected", [
    (f"Basic {b64(b'client-1:' + SECRET.encode())}", "client-1"),
    (f"basic {b64(b'client-1:' + SECRET.encode())}", "client-1"),  # schemes are case-insensitive
    (f"BASIC   {b64(b'client-1:' + SECRET.encode())}  ", "client-1"),
    (f"Basic {b64(b'client-1:with:colons')}", "client-1"),  # the first colon splits (RFC 7617)
    (f"Basic {b64('客户:秘密'.encode())}", "客户"),
    (f"Basic {b64(b'client-1')}", None),  # no colon
    (f"Basic {b64(b':' + SECRET.encode())}", None),  # empty id
    (f"Basic {b64(b'client-1:')}", None),  # empty secret
    ("Basic " + b64(b"client-1:\xff\xfe"), None),  # not UTF-8
    ("Basic !!not-base64!!", None),
    ("Basic YWJj=ZGVm", None),  # padding in the middle
    ("Basic ", None),
    ("Basic", None),
    (f"Bearer {b64(b'client-1:' + SECRET.encode())}", None),
    ("", None),
    (None, None),
])
def test_basic_client_id(header, expected):
    assert basic_client_id(header) == expected


def test_secret_digest_is_sha256_hex():
    assert secret_digest(SECRET) == hashlib.sha256(SECRET.encode("utf-8")).hexdigest()
    assert len(secret_digest(SECRET)) == 64 and secret_digest(SECRET) != secret_digest(SECRET + "x")


@pytest.mark.parametrize("url, allow_http, expected", [
    ("https://buyer.example/pact/", False, "https://buyer.example/pact"),
    ("https://buyer.example", False, "https://buyer.example"),
    ("http://127.0.0.1:8080", True, "http://127.0.0.1:8080"),
    (None, False, None),
])
def test_callback_url_accepted(url, allow_http, expected):
    assert validate_callback_url(url, allow_http=allow_http) == expected


@pytest.mark.parametrize("url, allow_http", [
    ("http://buyer.example", False),
    ("ftp://buyer.example", True),
    ("https://buyer.example/?next=1", False),
    ("https://buyer.example/#frag", False),
    ("/relative/path", False),
    ("https://", False),
    ("buyer.example", False),
])
def test_callback_url_refused(url, allow_http):
    with pytest.raises(ValueError):
        validate_callback_url(url, allow_http=allow_http)


@pytest.mark.parametrize("org", ["", "x" * 101])
def test_create_client_needs_a_bounded_org(org):
    with pytest.raises(ValueError):
        asyncio.run(create_client(None, org=org, actor="test"))  # type: ignore[arg-type]


def row(*, revoked: bool = False) -> PactClient:
    return PactClient(client_id="client-1", org="buyer", secret_sha256=secret_digest(SECRET),
                      created_at=datetime.now(UTC), created_by="test",
                      revoked_at=datetime.now(UTC) if revoked else None)


def respond(client: PactClient | None, authorization: str | None, form: dict[str, str]):
    minted: list[PactClient] = []

    def mint(c: PactClient) -> str:
        minted.append(c)
        return "signed-token"

    status, body, headers = TokenServer(client, mint).respond(
        uri="https://testserver.local/auth/token", authorization=authorization, form=form)
    return status, body, headers, minted


GRANT = {"grant_type": "client_credentials"}
GOOD = f"Basic {b64(b'client-1:' + SECRET.encode())}"


def test_token_server_issues_the_minted_token():
    client = row()
    status, body, _, minted = respond(client, GOOD, GRANT)
    assert status == 200
    assert body == {"access_token": "signed-token", "token_type": "Bearer", "expires_in": TOKEN_TTL_SECONDS,
                    "scope": PACT_SCOPE}
    assert minted == [client]


@pytest.mark.parametrize("client, authorization, form, error", [
    (row(), f"Basic {b64(b'client-1:wrong')}", GRANT, "invalid_client"),
    (row(revoked=True), GOOD, GRANT, "invalid_client"),
    (None, GOOD, GRANT, "invalid_client"),
    (row(), None, GRANT, "invalid_client"),
    (row(), None, {**GRANT, "client_id": "client-1", "client_secret": SECRET}, "invalid_client"),  # POST auth
    (row(), GOOD, {"grant_type": "password", "username": "u", "password": "p"}, "unsupported_grant_type"),
    (row(), GOOD, {"grant_type": "implicit"}, "unsupported_grant_type"),
])
def test_token_server_refusals(client, authorization, form, error):
    status, body, _, minted = respond(client, authorization, form)
    assert status in (400, 401)
    assert dict(body)["error"] == error
    assert minted == []
