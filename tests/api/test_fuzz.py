"""No input may produce a 500.

Two layers: schemathesis fuzzes every operation of the served OpenAPI schema (and checks each
status code and content type it gets back is one the schema documents); hypothesis then
mutates *valid* factor bodies, imports and queries one field at a time, which reaches the service
rules and the database that schema-shaped random data rarely gets past validation to, and posts
raw bytes and hostile text as import files (a rejected file must leave nothing in the database).

The schema is read from ``/schema/openapi.json`` of a throw-away app at import time (collection
needs it); requests go to apps on the run's migrated database (SQLite, or PostgreSQL + Redis),
with an admin token, so the guarded routes run their handlers instead of stopping at the 401.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import tempfile
from collections.abc import Iterator
from itertools import count
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import TestClient
from schemathesis.checks import content_type_conformance, not_a_server_error, status_code_conformance
from sqlalchemy import text as sql

from carbonpuhui.app import create_app
from carbonpuhui.auth.tokens import mint_token
from carbonpuhui.db.engine import create_engine
from tests.conftest import _empty_tables, make_settings

# Examples per operation: bounded for CI; benchmarks/hardening.py raises it.
MAX_EXAMPLES = int(os.environ.get("CARBONPUHUI_FUZZ_ADMIN_EXAMPLES", "25"))
FACTOR: dict[str, Any] = {
    "id": "t-grid", "names": {"zh-Hans": "电网", "zh-Hant": "電網", "en": "Grid"}, "category": "electricity.grid",
    "unit": "kWh", "kgco2e_per_unit": "0.5366", "gwp_basis": "AR5", "region": "CN", "tier": "national",
    "valid_from": "2022-01-01", "source": "test",
}
PROBLEM = "application/problem+json"


def _served_spec() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, \
            TestClient(create_app(make_settings(Path(tmp), redis_url=None))) as client:
        response = client.get("/schema/openapi.json")
        response.raise_for_status()
        return response.json()


class _CurrentApp:
    """The ASGI app the generated requests go to; the ``admin_headers`` fixture points it at one."""

    app: Litestar | None = None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        assert self.app is not None, "the admin_headers fixture sets the app"
        await self.app(scope, receive, send)


target = _CurrentApp()
schema = schemathesis.openapi.from_dict(_served_spec(), config=schemathesis.Config.from_dict({
    "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "mode": "all"},
    "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
}))
schema.app = target


def _fuzz_settings(tmp_path_factory: pytest.TempPathFactory, database_url: str):  # type: ignore[no-untyped-def]
    # Fuzzing sends hundreds of public reads a minute: lift the limit so 429s do not hide handlers.
    return make_settings(tmp_path_factory.mktemp("fuzz"), database_url=database_url,
                         public_rate_limit_per_minute=1_000_000)


def _admin_token(s) -> str:  # type: ignore[no-untyped-def]
    return mint_token(s.key_path, issuer=s.token_issuer, audience=s.token_audience,
                      sub="fuzzer", roles=["admin"], org="fuzz-org", ttl=3600)


@pytest.fixture(scope="module")
def admin_headers(tmp_path_factory: pytest.TempPathFactory, migrated_database_url: str) -> Iterator[dict[str, str]]:
    s = _fuzz_settings(tmp_path_factory, migrated_database_url)
    target.app = create_app(s)
    yield {"Authorization": f"Bearer {_admin_token(s)}"}
    # schemathesis keeps an app's lifespan running until the process exits: stop it while the
    # database still exists, then empty the shared database for the tests that follow.
    schemathesis.python.asgi.shutdown_lifespans()
    target.app = None
    _empty_tables(migrated_database_url)


@schema.parametrize()
def test_no_input_produces_a_server_error(case: schemathesis.Case, admin_headers: dict[str, str]) -> None:
    case.call_and_validate(headers=admin_headers, checks=[not_a_server_error, status_code_conformance, content_type_conformance])


# --- hypothesis: valid requests with one part broken ----------------------------------------------


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory, migrated_database_url: str) -> Iterator[tuple[TestClient[Litestar], dict[str, str]]]:
    s = _fuzz_settings(tmp_path_factory, migrated_database_url)
    admin = {"Authorization": f"Bearer {_admin_token(s)}"}
    with TestClient(create_app(s), raise_server_exceptions=False) as client:
        # Something to find: a published national factor with a second (draft) version.
        assert client.post("/v1/factors", json={**FACTOR, "id": "fz-grid"}, headers=admin).status_code == 201
        assert client.post("/v1/factors/fz-grid/versions/1/publish", headers=admin).status_code == 200
        body = {k: v for k, v in FACTOR.items() if k != "id"}
        assert client.post("/v1/factors/fz-grid/versions", json={**body, "source": "v2"}, headers=admin).status_code == 201
        yield client, admin
    _empty_tables(migrated_database_url)


def _assert_handled(response: Any, sent: Any = None) -> None:
    request = response.request
    assert response.status_code < 500, (
        f"{request.method} {request.url} {'' if sent is None else repr(sent)[:2000]}: {response.text[:500]}")
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith(PROBLEM)


_NUMBERISH = st.sampled_from([
    "NaN", "-NaN", "sNaN", "Infinity", "-Infinity", "1e999999999", "-1E-999999999", "0E+1000000", "-0", "0",
    "1e29", "1e30", "-1e-30", "1e-31", "9" * 40, "0." + "0" * 40 + "1", "1_000", " 1", "0x10", "", "\x00",
]) | st.integers() | st.integers(min_value=-(10**400), max_value=10**400) | st.floats(allow_nan=False)
_SCALARS = st.none() | st.booleans() | st.text(max_size=30) | _NUMBERISH
_JSON = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)
_BOUND = st.sampled_from(["NaN", "sNaN", "Infinity", "-Infinity", "0", "0.5", "1", "-1", "1e999999"]) | _NUMBERISH
_DISTRIBUTIONS = {"lognormal": ("gsd",), "normal": ("sd",), "triangular": ("min", "mode", "max"),
                  "uniform": ("min", "max"), "none": (), "beta": ("a",)}


@st.composite
def _uncertainties(draw: st.DrawFn) -> dict[str, Any]:
    distribution = draw(st.sampled_from(sorted(_DISTRIBUTIONS)))
    out: dict[str, Any] = {"distribution": distribution}
    for name in _DISTRIBUTIONS[distribution]:
        if draw(st.integers(0, 9)):  # now and then a parameter is missing
            out[name] = draw(_BOUND)
    return out


_TEXT_FIELDS = st.sampled_from(["names.zh-Hans", "names.zh-Hant", "names.en", "source", "owner_org",
                                "version_note", "category", "unit", "region", "id", "supplements"])
_VALUE_FIELDS = st.sampled_from(sorted(FACTOR) + ["valid_to", "owner_org", "uncertainty", "data_quality",
                                                  "supplements", "version_note", "names.en", "unknown"])


def _with(body: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(body))
    if "." in dotted:
        outer, inner = dotted.split(".", 1)
        out[outer] = {**out[outer], inner: value}
    else:
        out[dotted] = value
    return out


@st.composite
def _broken_bodies(draw: st.DrawFn) -> dict[str, Any]:
    body = dict(FACTOR)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["value", "text", "number", "uncertainty", "uncertainty", "drop", "tier"]))
        if kind == "number":
            body["kgco2e_per_unit"] = draw(_BOUND)
        elif kind == "value":
            body = _with(body, draw(_VALUE_FIELDS), draw(_JSON))
        elif kind == "text":
            body = _with(body, draw(_TEXT_FIELDS), draw(st.text(max_size=300)))
        elif kind == "uncertainty":
            body["uncertainty"] = draw(_uncertainties())
        elif kind == "drop":
            body.pop(draw(st.sampled_from(sorted(body))), None)
        else:
            body["tier"] = draw(st.sampled_from(["enterprise", "provincial", "national", "default"]))
            body["region"] = draw(st.sampled_from(["CN", "CN-SD", "CN-XX", "GLO", "US-CA", "ZZ", "cn"]))
    return body


_SEQUENCE = count()
FUZZ_SETTINGS = settings(max_examples=50, deadline=None, derandomize=True,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ_SETTINGS
@given(body=_broken_bodies())
def test_broken_factor_bodies_are_refused_not_crashed(fuzz, body: dict[str, Any]) -> None:
    client, admin = fuzz
    if body.get("id") == FACTOR["id"]:
        body = {**body, "id": f"fz-{next(_SEQUENCE)}"}  # mostly new ids, so creation really runs
    _assert_handled(client.post("/v1/factors", json=body, headers=admin), body)
    version_body = {k: v for k, v in body.items() if k != "id"}
    _assert_handled(client.post("/v1/factors/fz-grid/versions", json=version_body, headers=admin), version_body)


@FUZZ_SETTINGS
@given(version=st.integers() | st.integers(min_value=2**31 - 2, max_value=2**31 + 2),
       factor_id=st.sampled_from(["fz-grid", "no-such", "fz-grid.", "a" * 101]),
       action=st.sampled_from(["", "/publish", "/retire"]))
def test_any_version_number_is_handled(fuzz, version: int, factor_id: str, action: str) -> None:
    client, admin = fuzz
    path = f"/v1/factors/{factor_id}/versions/{version}{action}"
    _assert_handled(client.post(path, headers=admin) if action else client.get(path, headers=admin))


_QUERY_VALUE = st.text(max_size=60) | st.sampled_from(["", "\x00", "CN", "CN-SD", "2024-02-30", "9999-12-31",
                                                       "0001-01-01", "-1", "0", "201", "AA", "!!!", "%", "_"])


@FUZZ_SETTINGS
@given(params=st.dictionaries(st.sampled_from(["q", "category", "region", "tier", "valid_on", "cursor", "limit",
                                               "unit", "date", "lang", "extra"]), _QUERY_VALUE, max_size=5),
       anonymous=st.booleans())
def test_any_query_is_handled(fuzz, params: dict[str, str], anonymous: bool) -> None:
    client, admin = fuzz
    headers = {} if anonymous else admin
    _assert_handled(client.get("/v1/factors", params=params, headers=headers), params)
    _assert_handled(client.get("/v1/factors/resolve", params={"category": "electricity.grid", "unit": "kWh", **params},
                               headers=headers), params)


_CSV_HEADER = ["id", "names.zh-Hans", "names.zh-Hant", "names.en", "category", "unit", "kgco2e_per_unit",
               "gwp_basis", "region", "tier", "valid_from", "source", "uncertainty.distribution", "uncertainty.gsd"]


def _csv(rows: list[list[str]], header: list[str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8", "surrogatepass")


_CELL = st.text(max_size=20) | _NUMBERISH.map(str)


@FUZZ_SETTINGS
@given(kind=st.sampled_from(["csv", "json", "raw"]), publish=st.booleans(), data=st.data())
def test_any_import_is_handled(fuzz, kind: str, publish: bool, data: st.DataObject) -> None:
    client, admin = fuzz
    if kind == "csv":
        header = data.draw(st.lists(st.sampled_from(_CSV_HEADER + ["x"]), max_size=16) | st.just(_CSV_HEADER))
        base = ["fz-imp", "电网", "電網", "Grid", "electricity.grid", "kWh", "0.5", "AR5", "CN", "national",
                "2022-01-01", "s", "lognormal", "1.1"]
        rows = data.draw(st.lists(st.lists(_CELL, max_size=len(header) + 1) | st.just(base[:len(header)]), max_size=4))
        content, media_type = _csv(rows, header), "text/csv"
    elif kind == "json":
        items = data.draw(st.lists(_broken_bodies() | _JSON, max_size=4))
        content, media_type = json.dumps(items).encode(), "application/json"
    else:
        content = data.draw(st.binary(max_size=200))
        media_type = data.draw(st.sampled_from(["text/csv", "application/json", "text/csv; charset=latin-1"]))
    response = client.post("/v1/factors/import", params={"publish": str(publish).lower()}, content=content,
                           headers={**admin, "Content-Type": media_type})
    _assert_handled(response, content)


# --- hypothesis: raw bytes and hostile text as an import file -------------------------------------

_HOSTILE = st.sampled_from([
    "\r", "\n", "\r\n", "\x00", '"', '""', '"a""b"', "'", ",", ";", "\t", "\ufeff", "\u2028", "\\", "电",
    "=HYPERLINK(\"x\")", "NaN", "1e999999", ",,,,,,,,,,,,,,,,",
])
_HOSTILE_TEXT = st.lists(_HOSTILE | st.text(max_size=20), max_size=12).map("".join)
# Cells past the csv module's default 128 KiB limit, quoted, unquoted and unterminated.
_LONG_CELL = st.sampled_from(["", "x" * 200_000, '"' + "y,\r\n" * 50_000 + '"', "z" * 150_000 + '"', '"' + "w" * 150_000])
# Each is invalid UTF-8 wherever it lands in UTF-8 text.
_INVALID_UTF8 = st.sampled_from([b"\xff", b"\xfe\xff", b"\xc3", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
                                 b"\x80", b"\xe7\x94"])
_CSV_ROW = ["electricity.grid", "kWh", "0.5", "AR5", "CN", "national", "2022-01-01", "s",
            "lognormal", "1.1"]
_RAW_KINDS = [("bytes", "text/csv"), ("bytes", "application/json"), ("text", "text/csv"), ("text", "application/json"),
              ("csv", "text/csv"), ("csv", "text/csv; charset=utf-8"), ("json", "application/json")]


def _stored_versions(url: str) -> set[tuple[str, int]]:
    async def run() -> set[tuple[str, int]]:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                result = await conn.execute(sql("SELECT factor_id, version FROM factor_versions"))
                return {(row[0], row[1]) for row in result}
        finally:
            await engine.dispose()

    return asyncio.run(run())


@pytest.mark.parametrize(("kind", "media_type"), _RAW_KINDS)
@settings(FUZZ_SETTINGS, max_examples=25)
@given(data=st.data())
def test_raw_import_files_are_rejected_cleanly_and_leave_nothing(fuzz, migrated_database_url: str, kind: str,
                                                                  media_type: str, data: st.DataObject) -> None:
    client, admin = fuzz
    factor_id = f"fz-raw-{next(_SEQUENCE)}"
    junk = data.draw(_HOSTILE_TEXT)
    long_cell = data.draw(_LONG_CELL)
    at = data.draw(st.integers(0, len(junk)))
    hostile = (junk[:at] + long_cell + junk[at:]).encode("utf-8", "surrogatepass")
    # The csv and json files start with a valid row, hostile text quoted in one of its cells, and
    # then maybe a hostile tail: a rejected file must not leave its valid row behind.
    name = data.draw(st.just("Grid") | _HOSTILE_TEXT)
    tail = data.draw(st.sampled_from([b"", hostile]))
    if kind == "bytes":
        content = data.draw(st.binary(max_size=300))
    elif kind == "text":
        content = hostile
    elif kind == "csv":
        content = _csv([[factor_id, "电网", "電網", name, *_CSV_ROW]], _CSV_HEADER) + tail
    else:
        item = json.dumps({**FACTOR, "id": factor_id, "names": {**FACTOR["names"], "en": name}}).encode()
        content = b"[" + item + (b"," + tail if tail else b"") + b"]"
    splice = data.draw(st.none() | st.tuples(st.integers(min_value=0), _INVALID_UTF8))
    if splice is not None:
        at = splice[0] % (len(content) + 1)
        content = content[:at] + splice[1] + content[at:]
    before = _stored_versions(migrated_database_url)
    response = client.post("/v1/factors/import", params={"publish": "true"}, content=content,
                           headers={**admin, "Content-Type": media_type})
    _assert_handled(response, content[:500])
    assert response.status_code in (200, 422), response.text[:500]
    after = _stored_versions(migrated_database_url)
    if response.status_code == 422:
        problem = response.json()
        assert problem["reason"] == "import_invalid"
        assert problem["errors"], problem
        for error in problem["errors"]:
            assert "field" in error
            assert isinstance(error["line"], int) and error["line"] >= 1, error
            assert isinstance(error["message"], str) and error["message"], error
        assert after == before, "a rejected file left factors behind"
    elif kind in ("csv", "json"):
        assert (factor_id, 1) in after
