"""Review findings on tenders and sealed bids, each pinned by the request that showed it: receipts
that must tell apart every distinct submission, deadlines and cursors at the edge of the calendar,
reports that must stay well-formed XML, and bids recorded after the deadline."""

from __future__ import annotations

import base64
import hashlib
import json
import xml.etree.ElementTree as ET
from datetime import timedelta
from typing import Any

import pytest

import procurement.service
from tests.api.test_tenders import Clock, bid, create_tender, evaluate, officer, submit, supplier, tender_body


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(procurement.service, "utcnow", c)
    return c


def own_bid(client, auth, tender_id: str, org: str) -> dict[str, Any]:
    items = client.get(f"/v1/tenders/{tender_id}/bids", headers=supplier(auth, org)).json()["items"]
    assert len(items) == 1
    return items[0]


# --- receipts -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "small", "large"), [
    ("kg", "1", "1.000000000000000000000000000001"),  # 31 significant digits: the context keeps 28
    ("kg", "123456789012345678901234567890", "123456789012345678901234567891"),
    ("quality_score", "50", "50.000000000000000000000000000001"),
])
def test_distinct_submissions_have_distinct_receipts(client, auth, clock, field, small, large) -> None:
    tender = create_tender(client, auth, clock)
    headers = supplier(auth, "jigang")
    receipts = []
    for value in (small, large):
        extra: dict[str, Any] = {"quality_score": value} if field == "quality_score" else {"kg": value}
        receipt = bid(client, headers, tender["id"], **extra)
        stored = own_bid(client, auth, tender["id"], "jigang")
        shown = stored["quality_score"] if field == "quality_score" else stored["footprint"]["kgco2e_per_unit"]
        canonical = json.loads(receipt["canonical"])
        hashed = canonical["quality_score"] if field == "quality_score" else canonical["footprint"]["kgco2e_per_unit"]
        # The receipt covers exactly what is kept and scored.
        assert hashed == shown == value
        assert hashlib.sha256(receipt["canonical"].encode()).hexdigest() == receipt["receipt_sha256"]
        receipts.append(receipt["receipt_sha256"])
    assert receipts[0] != receipts[1]


# --- deadlines and cursors at the edge of the calendar -------------------------------------------


@pytest.mark.parametrize("deadline", ["9999-12-31T23:00:00-05:00", "9999-12-31T23:59:59-00:01"])
def test_a_deadline_beyond_the_calendar_is_a_422(client, auth, clock, deadline) -> None:
    response = client.post("/v1/tenders", json=tender_body(clock, deadline=deadline), headers=officer(auth))
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["deadline"]


@pytest.mark.parametrize("key", ["2027-01-01T00:00:00|x", "2027-01-01|x", "9999-12-31T23:00:00-05:00|x",
                                 "0001-01-01T00:00:00+05:00|x"])
def test_a_forged_tender_cursor_is_a_400(client, key) -> None:
    cursor = base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")
    response = client.get("/v1/tenders", params={"cursor": cursor})
    assert response.status_code == 400, response.text
    assert response.json()["reason"] == "invalid_cursor"


# --- reports --------------------------------------------------------------------------------------


def test_the_chart_stays_well_formed_xml_whatever_the_title_and_names(client, auth, clock) -> None:
    tender = create_tender(client, auth, clock, title="钢\x01卷 <script>alert(1)</script> \x1b[31m &amp;")
    bid(client, supplier(auth, "mill\x0b\x7f"), tender["id"])
    clock.pass_deadline(tender)
    assert evaluate(client, auth, tender["id"]).status_code == 200
    svg = client.get(f"/v1/tenders/{tender['id']}/report.svg", headers=officer(auth))
    assert svg.status_code == 200
    root = ET.fromstring(svg.text)  # raises on a character XML 1.0 forbids
    texts = "".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert "<script>alert(1)</script>" in texts and "&amp;" in texts  # shown as text, never as markup
    assert not any(el.tag.endswith("script") for el in root.iter())


# --- the deadline is the instant a bid is recorded against ---------------------------------------


class SteppingClock(Clock):
    """Before the deadline on the first reading, past it on every later one: a request that starts
    in time and is recorded late."""

    def __init__(self) -> None:
        super().__init__()
        self.deadline: Any = None
        self.calls = 0

    def __call__(self) -> Any:
        if self.deadline is None:
            return self.now
        self.calls += 1
        return self.deadline - timedelta(seconds=1) if self.calls == 1 else self.deadline + timedelta(seconds=1)


@pytest.mark.parametrize("replacing", [False, True])
def test_a_bid_recorded_after_the_deadline_is_refused(client, auth, monkeypatch, replacing) -> None:
    from datetime import datetime

    stepping = SteppingClock()
    monkeypatch.setattr(procurement.service, "utcnow", stepping)
    tender = create_tender(client, auth, stepping)
    headers = supplier(auth, "jigang")
    if replacing:
        bid(client, headers, tender["id"], price=100_000)
    stepping.deadline = datetime.fromisoformat(tender["deadline"])
    response = submit(client, headers, tender["id"], price=90_000)
    assert response.status_code == 409, response.text
    assert response.json()["reason"] == "tender_closed"


# --- the analysis' bids × bids matrices ----------------------------------------------------------


def test_an_evaluation_of_more_bids_than_the_matrices_can_hold_is_refused(client, auth, clock, monkeypatch) -> None:
    # Samples × bids is bounded, but rank acceptability and pairwise winning are bids × bids (per
    # thread, in the answer and in the stored result): 20,000 bids at 100 samples would pass the
    # cell bound and need gigabytes.
    monkeypatch.setattr(procurement.service, "MAX_BIDS", 2)
    tender = create_tender(client, auth, clock)
    for org in ("jigang", "rizhao", "laigang"):
        bid(client, supplier(auth, org), tender["id"])
    sealed = evaluate(client, auth, tender["id"])  # the refusal must not hint at the count before the deadline
    assert sealed.status_code == 409 and sealed.json()["reason"] == "bids_sealed"
    clock.pass_deadline(tender)
    response = client.post(f"/v1/tenders/{tender['id']}/evaluation", json={"samples": 100},
                           headers={**officer(auth), "Accept-Language": "en"})
    assert response.status_code == 409 and response.json()["reason"] == "too_many_bids"
    assert "more than 2 bids" in response.json()["detail"]
    monkeypatch.setattr(procurement.service, "MAX_BIDS", 3)
    assert evaluate(client, auth, tender["id"], samples=100).status_code == 200


# --- listing ------------------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", ["s_eel", "%", "st%", "STEEL"])
def test_the_category_filter_is_a_prefix_not_a_like_pattern(client, auth, clock, pattern) -> None:
    create_tender(client, auth, clock)  # steel.hot_rolled_coil
    page = client.get("/v1/tenders", params={"category": pattern})
    assert page.status_code == 200 and page.json()["items"] == []
    assert len(client.get("/v1/tenders", params={"category": "steel"}).json()["items"]) == 1
