"""No tender, bid or evaluation body produces a 500: valid bodies with one to three parts broken
(hostile numbers, wrong types, missing or unknown fields) reach the service rules and the database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import TestClient

from carbonpuhui.app import create_app
from carbonpuhui.auth.tokens import mint_token
from tests.conftest import _empty_tables, make_settings

PROBLEM = "application/problem+json"
DEADLINE = (datetime.now(UTC) + timedelta(days=30)).isoformat()
TENDER: dict[str, Any] = {
    "title": "fuzz", "category": "steel.hot_rolled_coil", "functional_unit": "tonne", "quantity": 10,
    "deadline": DEADLINE, "eligibility": {"max_kgco2e_per_unit": "3000", "label_required": False},
    "weights": {"price": 0.5, "carbon": 0.3, "quality": 0.2}, "carbon_method": "linear",
    "shadow_price_cents_per_tco2e": None,
    "weight_ranges": {"price": {"min": 0.4, "max": 0.6}, "carbon": {"min": 0.2, "max": 0.4}},
}
BID: dict[str, Any] = {"price_cents": 100_000, "footprint": {"kgco2e_per_unit": "2000", "gsd": 1.2},
                       "quality_score": 70}
NUMBERISH = st.sampled_from([
    "NaN", "Infinity", "-Infinity", "1e999999999", "-1E-999999999", "0E+1000000", "-0", "0", "1e29", "1e30",
    "9" * 40, "0." + "0" * 40 + "1", " 1", "", "\x00", "2020-01-01T00:00:00Z", "2030-01-01T00:00:00",
]) | st.integers(min_value=-(10**30), max_value=10**30) | st.floats(allow_nan=False, allow_infinity=False)
SCALARS = st.none() | st.booleans() | st.text(max_size=20) | NUMBERISH
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)
TENDER_FIELDS = ["title", "category", "functional_unit", "quantity", "deadline", "eligibility",
                 "eligibility.max_kgco2e_per_unit", "eligibility.label_required", "weights", "weights.price",
                 "weights.carbon", "weights.quality", "carbon_method", "shadow_price_cents_per_tco2e",
                 "weight_ranges", "weight_ranges.price", "weight_ranges.quality", "unknown"]
BID_FIELDS = ["price_cents", "footprint", "footprint.kgco2e_per_unit", "footprint.gsd", "footprint.label_id",
              "quality_score", "unknown"]
FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _with(body: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(body))
    outer, _, inner = dotted.partition(".")
    if inner:
        current = out.get(outer)
        out[outer] = {**(current if isinstance(current, dict) else {}), inner: value}
    else:
        out[outer] = value
    return out


@st.composite
def broken(draw: st.DrawFn, body: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    out = dict(body)
    for _ in range(draw(st.integers(1, 3))):
        field = draw(st.sampled_from(fields))
        if draw(st.integers(0, 4)) == 0 and "." not in field:
            out.pop(field, None)
        else:
            out = _with(out, field, draw(NUMBERISH if draw(st.booleans()) else JSON))
    return out


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory,
         migrated_database_url: str) -> Iterator[tuple[TestClient[Litestar], dict[str, dict[str, str]], str]]:
    s = make_settings(tmp_path_factory.mktemp("tender-fuzz"), database_url=migrated_database_url,
                      compute_rate_limit_per_minute=1_000_000)

    def headers(role: str, org: str) -> dict[str, str]:
        token = mint_token(s.key_path, issuer=s.token_issuer, audience=s.token_audience, sub=f"{org}-u",
                           roles=[role], org=org, ttl=3600)
        return {"Authorization": f"Bearer {token}"}

    roles = {"officer": headers("officer", "agency"), "merchant": headers("merchant", "mill")}
    with TestClient(create_app(s), raise_server_exceptions=False) as client:
        created = client.post("/v1/tenders", json=TENDER, headers=roles["officer"])
        assert created.status_code == 201, created.text
        yield client, roles, created.json()["id"]
    _empty_tables(migrated_database_url)


def _assert_handled(response: Any, sent: Any) -> None:
    assert response.status_code < 500, f"{repr(sent)[:1000]}: {response.text[:500]}"
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith(PROBLEM)


@FUZZ
@given(body=broken(TENDER, TENDER_FIELDS))
def test_broken_tender_bodies_are_refused_not_crashed(fuzz, body: dict[str, Any]) -> None:
    client, roles, _ = fuzz
    _assert_handled(client.post("/v1/tenders", json=body, headers=roles["officer"]), body)


@FUZZ
@given(body=broken(BID, BID_FIELDS))
def test_broken_bid_bodies_are_refused_not_crashed(fuzz, body: dict[str, Any]) -> None:
    client, roles, tender_id = fuzz
    _assert_handled(client.post(f"/v1/tenders/{tender_id}/bids", json=body, headers=roles["merchant"]), body)


@FUZZ
@given(body=broken({"samples": 1000, "seed": 1}, ["samples", "seed", "unknown"]),
       path=st.text(max_size=40))
def test_broken_evaluations_and_paths_are_refused_not_crashed(fuzz, body: dict[str, Any], path: str) -> None:
    client, roles, tender_id = fuzz
    _assert_handled(client.post(f"/v1/tenders/{tender_id}/evaluation", json=body, headers=roles["officer"]), body)
    for suffix in ("", "/bids", "/report.csv"):
        _assert_handled(client.get(f"/v1/tenders/{quote(path, safe='')}{suffix}", headers=roles["officer"]), path)
    _assert_handled(client.get("/v1/tenders", params={"cursor": path, "category": path or "x"}), path)
