"""Every error is an RFC 9457 problem, localised by ``?lang=`` / ``Accept-Language``.

The oracle for localised text is the catalog itself (``carbonpuhui.i18n.translate`` of the English
message id); English text is the message id, written out here as the contract.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from carbonpuhui.app import create_app
from carbonpuhui.auth.tokens import mint_token
from carbonpuhui.i18n import translate
from carbonpuhui.settings import Settings
from tests.conftest import make_settings

PROBLEM = "application/problem+json"
LOCALES = ("en", "zh-Hans", "zh-Hant")
FACTOR = {
    "id": "t-grid", "names": {"zh-Hans": "电网", "zh-Hant": "電網", "en": "Grid"}, "category": "electricity.grid",
    "unit": "kWh", "kgco2e_per_unit": "0.5366", "gwp_basis": "AR5", "region": "CN", "tier": "national",
    "valid_from": "2022-01-01", "source": "test",
}
MiB = 1024 * 1024


@dataclass(frozen=True)
class Case:
    """One request that must fail with ``status``, and the English texts it must fail with."""

    name: str
    method: str
    path: str
    status: int
    title: str
    detail: str
    params: dict[str, object] = field(default_factory=dict)
    roles: tuple[str, ...] | None = None
    body: Any = None  # JSON-encodable, or bytes sent as they are
    content_type: str | None = None
    reason: str | None = None
    errors: tuple[tuple[str, str, dict[str, object]], ...] = ()  # (field, English message id, params)


CASES = [
    Case("unknown route", "GET", "/v1/no-such-thing", 404, "Not found", "No resource exists at this address."),
    Case("unknown factor", "GET", "/v1/factors/no-such-factor", 404, "Not found",
         "Factor {id} has no published version.", params={"id": "no-such-factor"}, reason="factor_not_found"),
    Case("unknown version", "GET", "/v1/factors/no-such-factor/versions/3", 404, "Not found",
         "Factor {id} version {version} was not found.", params={"id": "no-such-factor", "version": 3},
         reason="factor_not_found"),
    Case("method not allowed", "DELETE", "/v1/factors", 405, "Method not allowed",
         "This method is not allowed on this resource."),
    Case("no token", "POST", "/v1/factors", 401, "Authentication required", "A valid bearer token is required.",
         body=FACTOR, reason="missing_token"),
    Case("wrong role", "POST", "/v1/factors", 403, "Forbidden", "This action needs one of the roles: {roles}.",
         params={"roles": "admin"}, roles=("consumer",), body=FACTOR, reason="missing_role"),
    Case("missing body field", "POST", "/v1/factors", 422, "The request could not be processed",
         "Some fields are invalid.", roles=("admin",), body={k: v for k, v in FACTOR.items() if k != "names"},
         errors=(("names", "Required field {name} is missing.", {"name": "names"}),)),
    Case("domain field rule", "POST", "/v1/factors", 422, "The request could not be processed",
         "Some fields are invalid.", roles=("admin",), body={**FACTOR, "region": "ZZ"},
         errors=(("region", "Unknown ISO 3166 region code.", {}),)),
    Case("query parameter out of range", "GET", "/v1/factors?limit=0", 422, "The request could not be processed",
         "Some fields are invalid.", errors=(("limit", "Must be at least {n}.", {"n": "1"}),)),
    Case("malformed JSON", "POST", "/v1/factors", 400, "Bad request", "The request is malformed.",
         roles=("admin",), body=b'{"id": "t-grid", "names": ', content_type="application/json"),
    Case("oversized body", "POST", "/v1/factors", 413, "Request body too large",
         "The request body exceeds the allowed size.", roles=("admin",),
         body=b'{"id": "' + b"a" * (MiB + 1) + b'"}', content_type="application/json"),
    Case("unsupported media type", "POST", "/v1/factors/import", 415, "Unsupported media type",
         "Send text/csv or application/json.", roles=("admin",), body=b"id\nx\n", content_type="text/plain",
         reason="unsupported_media_type"),
]


def _send(client: TestClient[Litestar], auth: Callable[..., dict[str, str]], case: Case, *,
          language: str | None = None, lang_param: str | None = None,
          extra_headers: dict[str, str] | None = None) -> Any:
    headers = dict(extra_headers or {})
    if case.roles is not None:
        headers.update(auth(*case.roles))
    if language is not None:
        headers["Accept-Language"] = language
    path = case.path
    if lang_param is not None:
        path += ("&" if "?" in path else "?") + f"lang={lang_param}"
    kwargs: dict[str, Any] = {"headers": headers}
    if isinstance(case.body, bytes):
        kwargs["content"] = case.body
        headers["Content-Type"] = case.content_type or "application/octet-stream"
    elif case.body is not None:
        kwargs["content"] = json.dumps(case.body).encode()
        headers["Content-Type"] = "application/json"
    return client.request(case.method, path, **kwargs)


def _expected(msgid: str, locale: str, params: dict[str, object]) -> str:
    if locale == "en":
        return msgid.format(**params) if params else msgid
    return translate(msgid, locale, **params)


def _assert_problem(response: Any, case: Case, locale: str) -> dict[str, Any]:
    assert response.status_code == case.status, response.text
    assert response.headers["content-type"].split(";")[0].strip() == PROBLEM
    assert response.headers["content-language"] == locale
    body = response.json()
    assert {"type", "title", "status", "detail", "instance"} <= body.keys()
    assert isinstance(body["type"], str) and body["type"]
    assert body["status"] == response.status_code
    assert body["instance"] == urlsplit(case.path).path
    assert body["title"] == _expected(case.title, locale, {})
    assert body["detail"] == _expected(case.detail, locale, case.params)
    if case.reason is not None:
        assert body["reason"] == case.reason
    if case.errors:
        assert [(e["field"], e["message"]) for e in body["errors"]] == [
            (name, _expected(msgid, locale, params)) for name, msgid, params in case.errors]
    return body


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_problem_localised_by_accept_language(client: TestClient[Litestar], auth, case: Case) -> None:
    bodies = {locale: _assert_problem(_send(client, auth, case, language=locale), case, locale)
              for locale in LOCALES}
    assert len({b["title"] for b in bodies.values()}) == 3, "each language needs its own title"
    # Details may coincide in the two scripts (需要有效的 Bearer 令牌), never with English.
    assert bodies["en"]["detail"] not in (bodies["zh-Hans"]["detail"], bodies["zh-Hant"]["detail"])
    assert len({b["type"] for b in bodies.values()}) == 1, "the problem type is not localised"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_problem_localised_by_lang_parameter(client: TestClient[Litestar], auth, case: Case) -> None:
    for locale in LOCALES:
        # ?lang= wins over a header asking for another language.
        other = "zh-Hant" if locale != "zh-Hant" else "en"
        _assert_problem(_send(client, auth, case, language=other, lang_param=locale), case, locale)


@pytest.mark.parametrize("case", [CASES[0], CASES[4], CASES[6]], ids=["404", "401", "422"])
def test_default_locale_is_simplified_chinese(client: TestClient[Litestar], auth, case: Case) -> None:
    _assert_problem(_send(client, auth, case), case, "zh-Hans")
    _assert_problem(_send(client, auth, case, language="fr, de;q=0.9"), case, "zh-Hans")


@pytest.mark.parametrize(("header", "locale"), [("zh-TW", "zh-Hant"), ("zh-HK;q=0.9, en;q=0.8", "zh-Hant"),
                                                ("en-GB", "en"), ("fr, zh-CN;q=0.5", "zh-Hans")])
def test_regional_tags_map_onto_supported_locales(client: TestClient[Litestar], auth, header: str,
                                                  locale: str) -> None:
    _assert_problem(_send(client, auth, CASES[1], language=header), CASES[1], locale)


def test_problem_types_distinguish_statuses(client: TestClient[Litestar], auth) -> None:
    types = {}
    for case in CASES:
        types.setdefault(case.status, set()).add(_send(client, auth, case).json()["type"])
    assert all(len(found) == 1 for found in types.values()), types
    assert len({next(iter(found)) for found in types.values()}) == len(types)


def test_invalid_token_is_a_localised_401(client: TestClient[Litestar]) -> None:
    for locale in LOCALES:
        response = client.get("/v1/factors", headers={"Authorization": "Basic dXNlcjpwYXNz",
                                                       "Accept-Language": locale})
        case = Case("basic scheme", "GET", "/v1/factors", 401, "Authentication required",
                    "Use the Authorization header with the Bearer scheme.", reason="invalid_request")
        _assert_problem(response, case, locale)


IMPORT_LIMIT = 32 * MiB  # the import route's own body limit (API.md)
CSV_HEADER = ("id,names.zh-Hans,names.zh-Hant,names.en,category,unit,kgco2e_per_unit,gwp_basis,region,tier,"
              "valid_from,source\n")
TOO_LARGE = Case("too large", "POST", "/v1/factors", 413, "Request body too large",
                 "The request body exceeds the allowed size.")
IMPORT_TOO_LARGE = Case("import too large", "POST", "/v1/factors/import", 413, TOO_LARGE.title, TOO_LARGE.detail)


def _padded_json(value: Any, size: int) -> bytes:
    """``value`` as JSON, padded with insignificant trailing whitespace to exactly ``size`` bytes."""
    core = json.dumps(value).encode()
    return core + b" " * (size - len(core))


def _post(client: TestClient[Litestar], admin: dict[str, str], path: str, content: bytes, media_type: str) -> Any:
    return client.post(path, content=content, headers={**admin, "Content-Type": media_type, "Accept-Language": "en"})


def test_import_takes_a_valid_file_over_the_general_limit(client: TestClient[Litestar], auth, settings: Settings) -> None:
    admin = auth("admin")
    content = _padded_json([{**FACTOR, "id": "t-big"}], settings.max_body_bytes + 1)
    assert len(content) == settings.max_body_bytes + 1
    response = _post(client, admin, "/v1/factors/import", content, "application/json")
    assert response.status_code == 200, response.text[:500]
    assert response.json() == {"created": 1, "unchanged": 0, "published": 0}
    assert client.get("/v1/factors/t-big/versions/1", headers=admin).json()["status"] == "draft"


def test_import_validates_an_invalid_file_over_the_general_limit(client: TestClient[Litestar], auth,
                                                                  settings: Settings) -> None:
    padding = "#" + "p" * 1022 + "\n"  # a row without the required cells
    rows = (settings.max_body_bytes + 1 - len(CSV_HEADER)) // len(padding) + 1
    content = (CSV_HEADER + padding * rows).encode()
    assert settings.max_body_bytes < len(content) < IMPORT_LIMIT
    response = _post(client, auth("admin"), "/v1/factors/import", content, "text/csv")
    assert response.status_code == 422, response.text[:500]
    body = response.json()
    assert body["reason"] == "import_invalid"
    # Every padding row is counted; the first MAX_REPORTED_ERRORS are reported with their own
    # line (the header is line 1), so the answer stays far smaller than the file.
    from carbonpuhui.factors.importer import MAX_REPORTED_ERRORS

    assert rows > MAX_REPORTED_ERRORS
    assert body["errors_total"] == rows
    assert [e["line"] for e in body["errors"]] == list(range(2, MAX_REPORTED_ERRORS + 2))


def test_general_limit_applies_to_other_bodies(client: TestClient[Litestar], auth, settings: Settings) -> None:
    admin = auth("admin")
    body = {**FACTOR, "id": "t-limit"}
    over = _post(client, admin, "/v1/factors", _padded_json(body, settings.max_body_bytes + 1), "application/json")
    _assert_problem(over, TOO_LARGE, "en")
    # At the limit itself the same body is read and created.
    at = _post(client, admin, "/v1/factors", _padded_json(body, settings.max_body_bytes), "application/json")
    assert at.status_code == 201, at.text[:500]


def test_import_limit_is_32_mib(client: TestClient[Litestar], auth) -> None:
    admin = auth("admin")
    over = _post(client, admin, "/v1/factors/import", _padded_json([{**FACTOR, "id": "t-huge"}], IMPORT_LIMIT + 1),
                 "application/json")
    _assert_problem(over, IMPORT_TOO_LARGE, "en")
    # Streamed without a Content-Length, the body is cut off once it passes the limit.
    chunks = iter([b"[", *[b" " * MiB] * 32, b"]"])
    streamed = client.post("/v1/factors/import", content=chunks,
                           headers={**admin, "Content-Type": "application/json", "Accept-Language": "en"})
    assert "content-length" not in streamed.request.headers
    _assert_problem(streamed, IMPORT_TOO_LARGE, "en")
    assert client.get("/v1/factors/t-huge/versions/1", headers=admin).status_code == 404
    at = _post(client, admin, "/v1/factors/import", _padded_json([{**FACTOR, "id": "t-huge"}], IMPORT_LIMIT),
               "application/json")
    assert at.status_code == 200, at.text[:500]
    assert at.json()["created"] == 1


# --- rate limiting ----------------------------------------------------------------------------------


@pytest.fixture
def throttled(tmp_path: Path, migrated_database_url: str, settings: Settings) -> Iterator[tuple[TestClient[Litestar], dict[str, str]]]:
    # ``settings`` is requested only so the shared database is emptied after the test.
    limited = make_settings(tmp_path / "throttled", database_url=migrated_database_url,
                            public_rate_limit_per_minute=3)
    token = mint_token(limited.key_path, issuer=limited.token_issuer, audience=limited.token_audience,
                       sub="admin", roles=["admin"], ttl=600)
    with TestClient(create_app(limited), raise_server_exceptions=False) as client:
        yield client, {"Authorization": f"Bearer {token}"}


def test_fourth_public_read_in_a_minute_is_throttled(throttled) -> None:
    client, _admin = throttled
    for _ in range(3):
        assert client.get("/v1/factors").status_code == 200
    for locale in LOCALES:
        response = client.get("/v1/factors", headers={"Accept-Language": locale})
        case = Case("throttled", "GET", "/v1/factors", 429, "Too many requests", "Too many requests; try again later.")
        _assert_problem(response, case, locale)


def test_admin_writes_are_not_throttled_by_the_public_limit(throttled) -> None:
    client, admin = throttled
    for _ in range(4):
        client.get("/v1/factors")
    assert client.get("/v1/factors").status_code == 429
    statuses = [client.post("/v1/factors", json={**FACTOR, "id": f"t-grid-{i}"}, headers=admin).status_code
                for i in range(6)]
    assert statuses == [201] * 6
    publish = client.post("/v1/factors/t-grid-0/versions/1/publish", headers=admin)
    assert publish.status_code == 200
