"""Awarding a tender: only its agency's officers, only after the deadline, only an eligible bid (the
evaluation's own verdict is the oracle), idempotent for the same bid, 409 for another; the public
summary then shows the winning bid (id, supplier, price, footprint) and nothing of the others."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest

import procurement.service
from tests.api.test_tenders import (
    AGENCY,
    Clock,
    add_label,
    bid,
    create_tender,
    officer,
    set_label,
    supplier,
)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(procurement.service, "utcnow", c)
    return c


def award(client, auth, tender_id: str, bid_id: str, **kwargs):
    return client.post(f"/v1/tenders/{tender_id}/award", json={"bid_id": bid_id}, headers=officer(auth, **kwargs))


def evaluate(client, auth, tender_id: str) -> dict[str, dict]:
    response = client.post(f"/v1/tenders/{tender_id}/evaluation", json={"samples": 200, "seed": 3},
                           headers=officer(auth))
    assert response.status_code == 200, response.text
    return {r["bid_id"]: r for r in response.json()["ranking"]}


def test_award_after_the_deadline_then_public(client, auth, clock) -> None:
    tender = create_tender(client, auth, clock)
    cheap = bid(client, supplier(auth, "jigang"), tender["id"], price=90_000, kg="2100.5")
    other = bid(client, supplier(auth, "rizhao"), tender["id"], price=95_000, kg="1800")
    early = award(client, auth, tender["id"], cheap["id"])
    assert early.status_code == 409 and early.json()["reason"] == "bids_sealed"
    clock.pass_deadline(tender)
    # Another agency's officer may not award (the tender itself is public: 403, as for the evaluation).
    foreign = award(client, auth, tender["id"], cheap["id"], org="qd-centre")
    assert foreign.status_code == 403 and foreign.json()["reason"] == "not_tender_agency"
    assert award(client, auth, str(uuid.uuid4()), cheap["id"]).status_code == 404

    response = award(client, auth, tender["id"], cheap["id"])
    assert response.status_code == 200, response.text
    awarded = response.json()["award"]
    assert awarded == {"bid_id": cheap["id"], "supplier_org": "jigang", "price_cents": 90_000,
                       "kgco2e_per_unit": "2100.5", "awarded_at": awarded["awarded_at"]}
    assert datetime.fromisoformat(awarded["awarded_at"]) == clock.now

    public = client.get(f"/v1/tenders/{tender['id']}").json()
    assert public["award"] == awarded
    listed = {t["id"]: t for t in client.get("/v1/tenders").json()["items"]}
    assert listed[tender["id"]]["award"] == awarded
    # The losing bid stays sealed to everyone but its supplier and the agency.
    assert client.get(f"/v1/tenders/{tender['id']}/bids/{other['id']}",
                      headers=supplier(auth, "jigang")).status_code == 404

    # The same bid again: 200, unchanged; another bid: 409, and the award stands.
    clock.now = clock.now.replace(year=clock.now.year + 1)
    again = award(client, auth, tender["id"], cheap["id"])
    assert again.status_code == 200 and again.json()["award"] == awarded
    refused = award(client, auth, tender["id"], other["id"])
    assert refused.status_code == 409 and refused.json()["reason"] == "already_awarded"
    assert client.get(f"/v1/tenders/{tender['id']}").json()["award"] == awarded


def test_only_an_eligible_bid_of_the_tender_is_awarded(client, auth, clock, settings) -> None:
    tender = create_tender(client, auth, clock, eligibility={"max_kgco2e_per_unit": "2200", "label_required": True})
    other_tender = create_tender(client, auth, clock)
    verified = add_label(settings, client, auth, "jigang", gtin_body="690123400005", kg="1.9")
    declared = add_label(settings, client, auth, "rizhao", gtin_body="690123400006", kg="1.8", scheme="self_declared")
    revoked = add_label(settings, client, auth, "laigang", gtin_body="690123400007", kg="1.7")
    good = bid(client, supplier(auth, "jigang"), tender["id"], footprint={"label_id": verified})
    bad = {
        "rizhao": bid(client, supplier(auth, "rizhao"), tender["id"], footprint={"label_id": declared}),
        "laigang": bid(client, supplier(auth, "laigang"), tender["id"], footprint={"label_id": revoked}),
        "shougang": bid(client, supplier(auth, "shougang"), tender["id"], kg="2500", gsd=1.1),
    }
    elsewhere = bid(client, supplier(auth, "jigang"), other_tender["id"])
    set_label(settings, revoked, status="revoked")  # after bidding, before the opening
    clock.pass_deadline(tender)
    verdict = evaluate(client, auth, tender["id"])
    for name, refused_bid in bad.items():
        response = award(client, auth, tender["id"], refused_bid["id"])
        assert response.status_code == 422, name
        body = response.json()
        assert body["reason"] == "bid_ineligible" and [e["field"] for e in body["errors"]] == ["bid_id"]
        # The award refuses exactly what the evaluation excluded, for the same reasons.
        assert not verdict[refused_bid["id"]]["eligible"]
        assert body["ineligibility"] == verdict[refused_bid["id"]]["reasons"], name
    for unknown in (elsewhere["id"], str(uuid.uuid4())):
        response = award(client, auth, tender["id"], unknown)
        assert response.status_code == 422 and response.json()["reason"] == "bid_not_found"
        assert [e["field"] for e in response.json()["errors"]] == ["bid_id"]
    assert client.get(f"/v1/tenders/{tender['id']}").json()["award"] is None  # refusals record nothing
    assert verdict[good["id"]]["eligible"]
    response = award(client, auth, tender["id"], good["id"])
    assert response.status_code == 200 and response.json()["award"]["supplier_org"] == "jigang"
    assert response.json()["agency"] == AGENCY
