"""Sealed bids: every route that could show a bid, called by every kind of caller, before and after
the deadline. Before it only the supplier reads its own bid (not the agency's officers, not
admins); after it the agency's officers read all bids; other agencies' officers never do. Each
bid carries marker values, and no response that should not show a bid may contain them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import procurement.service
from tests.api.test_tenders import AGENCY, Clock, bid, create_tender, officer, supplier

A_PRICE, A_KG, B_PRICE, B_KG = 123_457, "1987.65", 98_765, "2345.67"
Caller = Callable[[Any], dict[str, str]]
CALLERS: dict[str, Caller] = {
    "supplier_a": lambda auth: supplier(auth, "jigang"),
    "supplier_b": lambda auth: supplier(auth, "rizhao"),
    "agency_officer": lambda auth: officer(auth),
    "other_officer": lambda auth: officer(auth, org="qd-centre", sub="officer-qd"),
    "agency_admin": lambda auth: auth("admin", org=AGENCY, sub="root"),
    "admin_officer_elsewhere": lambda auth: auth("admin", "officer", org="qd-centre", sub="root2"),
    "verifier": lambda auth: auth("verifier", org="cb"),
    "consumer": lambda auth: auth("consumer", sub="citizen"),
    "merchant_without_org": lambda auth: auth("merchant", sub="m"),
    "officer_without_org": lambda auth: auth("officer", sub="o"),
    "anonymous": lambda auth: {},
}

# (status, what it shows) per caller and route, before the deadline. "a", "b": those bids' content.
BEFORE: dict[str, dict[str, tuple[int, str]]] = {
    "supplier_a": {"bids": (200, "a"), "bid_a": (200, "a"), "bid_b": (404, ""), "evaluation": (403, ""),
                   "csv": (403, ""), "svg": (403, "")},
    "supplier_b": {"bids": (200, "b"), "bid_a": (404, ""), "bid_b": (200, "b"), "evaluation": (403, ""),
                   "csv": (403, ""), "svg": (403, "")},
    "agency_officer": {"bids": (409, ""), "bid_a": (404, ""), "bid_b": (404, ""), "evaluation": (409, ""),
                       "csv": (409, ""), "svg": (409, "")},
}
AFTER: dict[str, dict[str, tuple[int, str]]] = {
    "supplier_a": {"bids": (200, "a"), "bid_a": (200, "a"), "bid_b": (404, ""), "evaluation": (403, ""),
                   "csv": (403, ""), "svg": (403, "")},
    "supplier_b": {"bids": (200, "b"), "bid_a": (404, ""), "bid_b": (200, "b"), "evaluation": (403, ""),
                   "csv": (403, ""), "svg": (403, "")},
    "agency_officer": {"bids": (200, "ab"), "bid_a": (200, "a"), "bid_b": (200, "b"), "evaluation": (200, "ab"),
                       "csv": (200, "ab"), "svg": (200, "ab")},
}
REFUSED_EVERYWHERE = {"bids": (403, ""), "bid_a": (404, ""), "bid_b": (404, ""), "evaluation": (403, ""),
                      "csv": (403, ""), "svg": (403, "")}
ROLE_REFUSED = {route: (403, "") for route in REFUSED_EVERYWHERE}
for table in (BEFORE, AFTER):
    table["other_officer"] = REFUSED_EVERYWHERE
    table["admin_officer_elsewhere"] = REFUSED_EVERYWHERE
    table["merchant_without_org"] = REFUSED_EVERYWHERE
    table["officer_without_org"] = REFUSED_EVERYWHERE
    for name in ("agency_admin", "verifier", "consumer"):
        table[name] = ROLE_REFUSED
    table["anonymous"] = {route: (401, "") for route in REFUSED_EVERYWHERE}


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(procurement.service, "utcnow", c)
    return c


@pytest.fixture
def sealed(client, auth, clock: Clock) -> dict[str, Any]:
    """The agency officer's tender, with a bid from each of two suppliers."""
    tender = create_tender(client, auth, clock)
    a = bid(client, supplier(auth, "jigang"), tender["id"], price=A_PRICE, kg=A_KG, gsd=1.2)
    b = bid(client, supplier(auth, "rizhao"), tender["id"], price=B_PRICE, kg=B_KG, gsd=1.3)
    return {"tender": tender, "a": a, "b": b}


def call(client, route: str, sealed: dict[str, Any], headers: dict[str, str]):
    base = f"/v1/tenders/{sealed['tender']['id']}"
    if route == "evaluation":
        return client.post(f"{base}/evaluation", json={"samples": 200, "seed": 1}, headers=headers)
    path = {"bids": "/bids", "bid_a": f"/bids/{sealed['a']['id']}", "bid_b": f"/bids/{sealed['b']['id']}",
            "csv": "/report.csv", "svg": "/report.svg"}[route]
    return client.get(base + path, headers=headers)


def shows(text: str, sealed: dict[str, Any]) -> str:
    """Which bids the text reveals: by price, footprint, receipt or supplier."""
    out = ""
    for key, price, kg, org in (("a", A_PRICE, A_KG, "jigang"), ("b", B_PRICE, B_KG, "rizhao")):
        if str(price) in text or kg in text or sealed[key]["receipt_sha256"] in text or org in text:
            out += key
    return out


def check(client, auth, sealed: dict[str, Any], expected: dict[str, dict[str, tuple[int, str]]]) -> None:
    failures = []
    for name, make in CALLERS.items():
        for route, (status, visible) in expected[name].items():
            response = call(client, route, sealed, make(auth))
            seen = shows(response.text, sealed)
            if response.status_code != status or seen != visible:
                failures.append(f"{name} {route}: {response.status_code} showing {seen!r}, "
                                f"expected {status} showing {visible!r}")
            if response.status_code >= 400:
                assert response.headers["content-type"].startswith("application/problem+json")
    assert failures == []


def test_before_the_deadline_only_the_supplier_reads_its_bid(client, auth, sealed) -> None:
    check(client, auth, sealed, BEFORE)


def test_after_the_deadline_the_agency_reads_every_bid_and_nobody_else_does(client, auth, clock, sealed) -> None:
    clock.pass_deadline(sealed["tender"])
    # The reports need an evaluation: the agency's runs first, then every caller tries every route.
    assert call(client, "evaluation", sealed, officer(auth)).status_code == 200
    check(client, auth, sealed, AFTER)


def test_the_refusals_say_why(client, auth, clock, sealed) -> None:
    sealed_list = call(client, "bids", sealed, officer(auth))
    assert sealed_list.json()["reason"] == "bids_sealed"
    assert call(client, "evaluation", sealed, officer(auth)).json()["reason"] == "bids_sealed"
    other = officer(auth, org="qd-centre")
    assert call(client, "bids", sealed, other).json()["reason"] == "not_a_party"
    assert call(client, "bid_a", sealed, supplier(auth, "rizhao")).json()["reason"] == "bid_not_found"
    clock.pass_deadline(sealed["tender"])
    assert call(client, "evaluation", sealed, other).json()["reason"] == "not_tender_agency"
    assert call(client, "csv", sealed, other).json()["reason"] == "not_tender_agency"
    assert call(client, "bids", sealed, auth("admin", org=AGENCY)).json()["reason"] == "missing_role"


@pytest.mark.parametrize("after_deadline", [False, True])
def test_the_public_summary_never_shows_bid_content(client, auth, clock, sealed, after_deadline: bool) -> None:
    if after_deadline:
        clock.pass_deadline(sealed["tender"])
    for make in CALLERS.values():
        for path in (f"/v1/tenders/{sealed['tender']['id']}", "/v1/tenders"):
            response = client.get(path, headers=make(auth))
            assert response.status_code == 200, response.text
            assert shows(response.text, sealed) == ""
            assert sealed["a"]["id"] not in response.text and sealed["b"]["id"] not in response.text
    summary = client.get(f"/v1/tenders/{sealed['tender']['id']}").json()
    assert summary["bid_count"] == (2 if after_deadline else None)
    assert summary["status"] == ("closed" if after_deadline else "open")


def test_submitting_reveals_nothing_of_other_bids(client, auth, sealed) -> None:
    response = bid(client, supplier(auth, "laigang"), sealed["tender"]["id"], price=111_111, kg="1500", gsd=1.1)
    assert shows(str(response), sealed) == ""
    replaced = bid(client, supplier(auth, "jigang"), sealed["tender"]["id"], price=A_PRICE + 1, kg="1999", gsd=1.2)
    assert replaced["id"] == sealed["a"]["id"] and "b" not in shows(str(replaced), sealed)
