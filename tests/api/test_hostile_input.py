"""Inputs found by review and fuzzing that once gave a 500: each is now a clear 4xx (or a 503 when a
dependency is down), and the problem document keeps its contract."""

from __future__ import annotations

import json
import logging
import time

import pytest
from joserfc import jwt
from litestar.testing import TestClient

from carbonpuhui.app import create_app
from carbonpuhui.auth.keys import load_or_create_signing_key
from carbonpuhui.factors.service import FactorService
from tests.conftest import make_settings

HEADER = "id,names.zh-Hans,names.zh-Hant,names.en,category,unit,kgco2e_per_unit,gwp_basis,region,tier,valid_from,source\n"
ROW = "ok,电网,電網,Grid,electricity.grid,kWh,0.5,AR5,CN,national,2022-01-01,s\n"


@pytest.mark.parametrize("body", [
    HEADER + 'q,"unterminated,電網,Grid,electricity.grid,kWh,0.5,AR5,CN,national,2022-01-01,s\n',
    HEADER + "q,电\r网,電網,Grid,electricity.grid,kWh,0.5,AR5,CN,national,2022-01-01,s\n",
    HEADER + "q," + "x" * 300_000 + ",電網,Grid,electricity.grid,kWh,0.5,AR5,CN,national,2022-01-01,s\n",
    '"id\n',
], ids=["unterminated-quote", "bare-cr", "huge-cell", "broken-header"])
def test_malformed_csv_is_refused_whole(client, auth, body):
    admin = {**auth("admin"), "content-type": "text/csv"}
    response = client.post("/v1/factors/import", content=(HEADER + ROW + body.removeprefix(HEADER)).encode()
                           if body.startswith(HEADER) else body.encode(), headers=admin)
    assert response.status_code == 422, response.text
    assert response.json()["reason"] == "import_invalid"
    # All or nothing: the good row before the bad one was not written either.
    assert client.get("/v1/factors/ok/versions", headers=auth("admin")).status_code == 404


def test_an_overlong_subject_is_a_401_not_a_failed_write(client):
    response = client.post("/v1/factors", json={}, headers={"Authorization": "Bearer " + _long_sub_token(client)})
    assert response.status_code == 401
    assert response.json()["reason"] == "invalid_token"


def _long_sub_token(client) -> str:  # type: ignore[no-untyped-def]
    settings = client.app.state.settings
    key = load_or_create_signing_key(settings.key_path)
    now = int(time.time())
    claims = {"iss": settings.token_issuer, "aud": settings.token_audience, "sub": "s" * 201, "exp": now + 60,
              "iat": now, "roles": ["admin"]}
    return jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": key.kid}, claims, key, algorithms=["ES256"])


def test_reads_answer_503_with_retry_after_when_the_database_is_down(tmp_path):
    settings = make_settings(tmp_path, database_url="postgresql+asyncpg://postgres@127.0.0.1:9/none")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        response = client.get("/v1/factors", headers={"Accept-Language": "en"})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    body = response.json()
    assert body["reason"] == "dependency_unavailable"
    assert body["title"] == "Service unavailable"


def test_no_factor_problem_carries_passed_over_as_an_extension_member(client):
    response = client.get("/v1/factors/resolve?category=nothing.here&unit=kWh&region=CN-SD&date=2023-01-01")
    assert response.status_code == 404
    body = response.json()
    assert body["reason"] == "no_factor"
    assert [p["tier"] for p in body["passed_over"]] == ["enterprise", "provincial", "national", "default"]
    assert "extra" not in body


def test_field_errors_always_name_their_field(client, auth):
    response = client.post("/v1/factors", content=b"", headers={**auth("admin"), "content-type": "application/json"})
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert errors and all("field" in e and "message" in e for e in errors)
    assert errors[0]["field"] is None  # the body as a whole is missing


def test_an_unexpected_error_is_a_localised_500_with_its_traceback_logged(client, monkeypatch, caplog):
    async def explode(self, factor_id, viewer):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom in get_latest")

    monkeypatch.setattr(FactorService, "get_latest", explode)
    with caplog.at_level(logging.ERROR, logger="carbonpuhui.errors"):
        response = client.get("/v1/factors/anything", headers={"Accept-Language": "zh-Hant"})
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "boom" not in response.text  # internals stay in the log
    assert response.json()["title"] == "內部錯誤"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "boom in get_latest" in logged and "Traceback" in logged
    json.dumps(logged)  # plain text, serialisable by any log renderer


DEEP = b'{"names": ' + b"[" * 5000 + b"]" * 5000 + b"}"
HUGE_EXPONENT = b'{"id": "h", "kgco2e_per_unit": 1e99999999999999999999}'


@pytest.mark.parametrize("body", [DEEP, HUGE_EXPONENT], ids=["deep-nesting", "huge-exponent"])
def test_unreadable_json_bodies_are_400(client, auth, body):
    response = client.post("/v1/factors", content=body, headers={**auth("admin"), "content-type": "application/json"})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("body", [b"[" + DEEP + b"]", b"[" + HUGE_EXPONENT + b"]"], ids=["deep-nesting", "huge-exponent"])
def test_unreadable_json_imports_are_422_at_line_1(client, auth, body):
    response = client.post("/v1/factors/import", content=body,
                           headers={**auth("admin"), "content-type": "application/json"})
    assert response.status_code == 422
    assert [e["line"] for e in response.json()["errors"]] == [1]


def test_columns_named_twice_are_refused(client, auth):
    text = HEADER.rstrip("\n") + ",id\n" + ROW.rstrip("\n") + ",other\n"
    response = client.post("/v1/factors/import", content=text.encode(), headers={**auth("admin"), "content-type": "text/csv"})
    assert response.status_code == 422
    assert [e["line"] for e in response.json()["errors"]] == [1]
    assert client.get("/v1/factors/ok/versions", headers=auth("admin")).status_code == 404


GRID = {"names": {"zh-Hans": "电网", "zh-Hant": "電網", "en": "Grid"}, "category": "electricity.grid", "unit": "kWh",
        "gwp_basis": "AR5", "region": "CN", "tier": "national", "valid_from": "2022-01-01", "source": "s"}


@pytest.mark.parametrize(("overrides", "field"), [
    ({"id": "resolve"}, "id"), ({"id": "import"}, "id"),
    ({"region": "GLO"}, "region"),
    ({"uncertainty": {"distribution": "normal", "sd": "1e99999999999999999"}}, "uncertainty"),
    ({"uncertainty": {"distribution": "uniform", "min": "-1e999999999999", "max": "1e999999999999"}}, "uncertainty"),
])
def test_factors_that_could_never_be_served_are_refused(client, auth, overrides, field):
    body = {**GRID, "id": "g", "kgco2e_per_unit": "0.5", **overrides}
    response = client.post("/v1/factors", json=body, headers=auth("admin"))
    assert response.status_code == 422, response.text
    assert field in {e["field"] for e in response.json()["errors"]}


@pytest.mark.parametrize(("sent", "shown"), [("5E+2", "500"), ("0.0000001", "0.0000001"), ("1.50", "1.50")])
def test_values_are_shown_as_plain_digits_everywhere(client, auth, sent, shown):
    admin = auth("admin")
    created = client.post("/v1/factors", json={**GRID, "id": "p", "kgco2e_per_unit": sent}, headers=admin)
    assert created.status_code == 201
    assert created.json()["kgco2e_per_unit"] == shown
    assert client.get("/v1/factors/p/versions/1", headers=admin).json()["kgco2e_per_unit"] == shown


class _PgError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.sqlstate = code


@pytest.mark.parametrize(("code", "status", "reason"), [("40P01", 409, "concurrent_update"),
                                                        ("40001", 409, "concurrent_update"),
                                                        ("22012", 500, None)])
def test_colliding_transactions_are_409_retry_and_other_database_errors_500(client, monkeypatch, code, status, reason):
    from sqlalchemy.exc import DBAPIError

    async def collide(self, factor_id, viewer):  # type: ignore[no-untyped-def]
        raise DBAPIError("UPDATE ...", {}, _PgError(code))

    monkeypatch.setattr(FactorService, "get_latest", collide)
    response = client.get("/v1/factors/x")
    assert response.status_code == status
    assert response.json().get("reason") == reason
    if status == 409:
        assert response.headers["retry-after"] == "1"


async def test_a_client_that_disconnects_mid_body_is_not_a_server_error(app, token):
    sent: list[dict] = []
    messages = [{"type": "http.request", "body": b'{"id":', "more_body": True}, {"type": "http.disconnect"}]

    async def receive():  # type: ignore[no-untyped-def]
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):  # type: ignore[no-untyped-def]
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/v1/factors", "raw_path": b"/v1/factors", "query_string": b"", "root_path": "",
             "headers": [(b"content-type", b"application/json"), (b"content-length", b"100"),
                         (b"authorization", f"Bearer {token('admin')}".encode())],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    async with app.lifespan():
        await app(scope, receive, send)
    statuses = [m["status"] for m in sent if m["type"] == "http.response.start"]
    assert statuses == [400]
