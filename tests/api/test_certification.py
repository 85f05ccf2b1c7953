"""The certification state machine: applications, decisions by the right body only, forbidden
transitions, revocation, expiry, self-declared labels, and the record of every transition."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from carbonpuhui.labels import service as label_service
from tests.api.label_flow import BODY, OTHER_BODY, Flow
from tests.api.test_products import line, put_inventory


@pytest.fixture
def flow(client, auth) -> Flow:
    f = Flow(client, auth)
    f.benchmark(["10", "20", "30", "40"], uncertainty_penalty="0")
    return f


def reason(response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return response.json()["reason"]


# --- applications and decisions -----------------------------------------------------------------

def test_approval_issues_a_verified_label_with_everything_api_md_names(flow: Flow) -> None:
    code = flow.product(1, "15")
    application = flow.apply(code)
    assert application["status"] == "pending"
    decided = flow.ok(flow.decide(application["id"], valid_until="2027-06-30"))
    label = decided["label"]
    assert decided["status"] == "approved"
    assert set(label) >= {"id", "gtin", "kgco2e_per_unit", "declared_unit", "grade", "scheme", "status",
                          "certification_body", "issued_at", "valid_until", "factor_versions"}
    assert (label["gtin"], label["grade"], label["scheme"], label["status"]) == ("0" + code, "B", "verified", "active")
    assert (label["certification_body"], label["valid_until"]) == (BODY, "2027-06-30")
    assert label["earns_credits"] is True
    assert flow.public(code)["label"] == label


def test_the_label_names_the_factor_versions_behind_it(flow: Flow) -> None:
    code = flow.uncertain_product(1, "15", 1.1, factor_id="grid-x")
    label = flow.certify(code)
    assert label["factor_versions"] == [{"id": "grid-x", "version": 1}]


def test_only_the_named_body_sees_and_decides(flow: Flow) -> None:
    application = flow.apply(flow.product(1, "15"), body=BODY)
    theirs = flow.ok(flow.client.get("/v1/certification/applications", headers=flow.other_verifier))["items"]
    assert theirs == []
    assert reason(flow.decide(application["id"], headers=flow.other_verifier), 404) == "application_not_found"
    mine = flow.ok(flow.client.get("/v1/certification/applications", headers=flow.verifier))["items"]
    assert [a["id"] for a in mine] == [application["id"]]
    assert mine[0]["inventory"]["lines"][0]["direct_kgco2e"] == "15"
    assert mine[0]["footprint"]["kgco2e_per_unit"] == "15"


def test_an_open_application_goes_to_the_first_body_to_decide(flow: Flow) -> None:
    application = flow.apply(flow.product(1, "15"), body=None)
    for headers in (flow.verifier, flow.other_verifier):  # both may see it while it is open
        items = flow.ok(flow.client.get("/v1/certification/applications", headers=headers))["items"]
        assert [a["id"] for a in items] == [application["id"]]
    label = flow.ok(flow.decide(application["id"], headers=flow.other_verifier))["label"]
    assert label["certification_body"] == OTHER_BODY
    assert reason(flow.decide(application["id"]), 404) == "application_not_found"  # now another body's
    assert flow.ok(flow.client.get("/v1/certification/applications", headers=flow.verifier))["items"] == []
    decided = flow.ok(flow.client.get("/v1/certification/applications?status=approved",
                                      headers=flow.other_verifier))["items"]
    assert [a["id"] for a in decided] == [application["id"]]
    # The deciding body is now the product's assigned verifier: it may read the inventory.
    assert flow.client.get(f"/v1/merchant/products/{label['gtin']}/inventory",
                           headers=flow.other_verifier).status_code == 200
    assert flow.client.get(f"/v1/merchant/products/{label['gtin']}/inventory",
                           headers=flow.verifier).status_code == 404


def test_a_decided_application_cannot_be_decided_again(flow: Flow) -> None:
    application = flow.apply(flow.product(1, "15"))
    flow.ok(flow.decide(application["id"], "reject", comment="boundary incomplete"))
    assert reason(flow.decide(application["id"]), 409) == "application_not_pending"
    assert reason(flow.decide(application["id"], "reject"), 409) == "application_not_pending"


def test_rejection_issues_no_label_and_needs_a_reason(flow: Flow) -> None:
    code = flow.product(1, "15")
    application = flow.apply(code)
    missing = flow.client.post(f"/v1/certification/applications/{application['id']}/decision",
                               json={"decision": "reject"}, headers=flow.verifier)
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "comment"
    out = flow.ok(flow.decide(application["id"], "reject", comment="no site visit possible"))
    assert out == {"status": "rejected", "label": None}
    assert flow.public(code)["label"] is None
    # A rejected applicant may apply again.
    assert flow.apply(code)["status"] == "pending"


@pytest.mark.parametrize(("extra", "field"), [
    ({"valid_until": None}, "valid_until"),
    ({"valid_until": (date.today() - timedelta(days=2)).isoformat()}, "valid_until"),
    ({"valid_until": (date.today() + timedelta(days=6 * 366)).isoformat()}, "valid_until"),
    ({"valid_until": "2027-02-30"}, "valid_until"),
])
def test_approval_needs_a_sensible_validity(flow: Flow, extra, field) -> None:
    application = flow.apply(flow.product(1, "15"))
    body = {"decision": "approve", "comment": "ok", **extra}
    response = flow.client.post(f"/v1/certification/applications/{application['id']}/decision", json=body,
                                headers=flow.verifier)
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]


def test_one_pending_application_per_product(flow: Flow) -> None:
    code = flow.product(1, "15")
    first = flow.apply(code)
    response = flow.client.post(f"/v1/merchant/products/{code}/label-applications",
                                json={"certification_body": BODY}, headers=flow.owner)
    assert reason(response, 409) == "application_pending"
    assert first["id"] in response.json()["detail"]


def test_an_inventory_changed_after_applying_cannot_be_approved(flow: Flow) -> None:
    code = flow.product(1, "15")
    application = flow.apply(code)
    put_inventory(flow.client, flow.owner, [line("production", "measured", "1", "kg", direct_kgco2e="99")], gtin=code)
    assert reason(flow.decide(application["id"]), 409) == "inventory_changed"
    assert flow.public(code)["label"] is None


def test_applications_need_an_inventory_and_the_owner(flow: Flow, auth) -> None:
    from tests.api.label_flow import gtin
    from tests.api.test_products import create_product

    create_product(flow.client, flow.owner, gtin(9))
    empty = flow.client.post(f"/v1/merchant/products/{gtin(9)}/label-applications", json={}, headers=flow.owner)
    assert reason(empty, 422) == "inventory_empty"
    code = flow.product(1, "15")
    other = flow.client.post(f"/v1/merchant/products/{code}/label-applications", json={}, headers=flow.rival)
    assert reason(other, 404) == "product_not_found"


def test_no_benchmark_no_grade(flow: Flow) -> None:
    code = flow.product(1, "15", category="textile.cotton")
    assert reason(flow.decide(flow.apply(code)["id"]), 409) == "benchmark_missing"


def test_unknown_or_malformed_application_ids_are_404(flow: Flow) -> None:
    for ident in ("00000000-0000-4000-8000-000000000000", "not-a-uuid", "1' OR '1'='1"):
        response = flow.client.post(f"/v1/certification/applications/{ident}/decision",
                                    json={"decision": "approve", "valid_until": "2027-01-01"}, headers=flow.verifier)
        assert response.status_code == 404, ident


def test_a_verifier_of_no_body_sees_nothing(flow: Flow, auth) -> None:
    flow.apply(flow.product(1, "15"), body=None)
    nobody = auth("verifier")
    assert flow.ok(flow.client.get("/v1/certification/applications", headers=nobody))["items"] == []


def test_queue_pages(flow: Flow) -> None:
    ids = [flow.apply(flow.product(n, "15"))["id"] for n in range(1, 6)]
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = flow.ok(flow.client.get("/v1/certification/applications", params=params, headers=flow.verifier))
        seen += [a["id"] for a in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == len(ids)
    bad = flow.client.get("/v1/certification/applications", params={"cursor": "bm9wZQ"}, headers=flow.verifier)
    assert reason(bad, 400) == "invalid_cursor"


# --- revocation, expiry, history ----------------------------------------------------------------

def test_the_issuing_body_revokes_and_everyone_sees_it(flow: Flow) -> None:
    code = flow.product(1, "15")
    label = flow.certify(code)
    flow.public(code)  # cached now
    other = flow.client.post(f"/v1/labels/{label['id']}/revoke", json={"reason": "x"}, headers=flow.other_verifier)
    assert reason(other, 403) == "not_issuing_body"
    owner = flow.client.post(f"/v1/labels/{label['id']}/revoke", json={"reason": "x"}, headers=flow.owner)
    assert reason(owner, 403) == "not_issuing_body"  # a verified label is the body's to revoke
    revoked = flow.ok(flow.client.post(f"/v1/labels/{label['id']}/revoke",
                                       json={"reason": "data falsified"}, headers=flow.verifier))
    assert (revoked["status"], revoked["earns_credits"]) == ("revoked", False)
    shown = flow.public(code)["label"]
    assert (shown["id"], shown["status"], shown["earns_credits"]) == (label["id"], "revoked", False)
    again = flow.client.post(f"/v1/labels/{label['id']}/revoke", json={"reason": "again"}, headers=flow.verifier)
    assert reason(again, 409) == "label_not_active"


def test_an_admin_may_revoke_any_label(flow: Flow) -> None:
    label = flow.certify(flow.product(1, "15"))
    out = flow.ok(flow.client.post(f"/v1/labels/{label['id']}/revoke", json={"reason": "court order"},
                                   headers=flow.admin))
    assert out["status"] == "revoked"


def test_every_transition_is_recorded_with_who_when_why(flow: Flow) -> None:
    code = flow.product(1, "15")
    application = flow.apply(code)
    label = flow.ok(flow.decide(application["id"], comment="site audit 2026-11"))["label"]
    flow.ok(flow.client.post(f"/v1/labels/{label['id']}/revoke", json={"reason": "plant closed"},
                             headers=flow.verifier))
    history = flow.ok(flow.client.get(f"/v1/labels/{label['id']}/history", headers=flow.owner))
    steps = [(e["action"], e["from_status"], e["to_status"], e["actor"], e["actor_org"], e["reason"])
             for e in history["events"]]
    assert steps == [
        ("apply", None, "pending", "alice", "acme", None),
        ("approve", "pending", "approved", "vera", BODY, "site audit 2026-11"),
        ("issue", None, "active", "vera", BODY, None),
        ("revoke", "active", "revoked", "vera", BODY, "plant closed"),
    ]
    times = [e["at"] for e in history["events"]]
    assert times == sorted(times)
    # Someone else's label history is not theirs to read.
    assert flow.client.get(f"/v1/labels/{label['id']}/history", headers=flow.rival).status_code == 404
    assert flow.client.get(f"/v1/labels/{label['id']}/history", headers=flow.other_verifier).status_code == 404


def test_a_new_label_supersedes_the_old_one(flow: Flow) -> None:
    code = flow.product(1, "15")
    first = flow.certify(code)
    put_inventory(flow.client, flow.owner, [line("production", "measured", "1", "kg", direct_kgco2e="8")], gtin=code)
    second = flow.certify(code)
    assert (second["grade"], flow.public(code)["label"]["id"]) == ("A", second["id"])
    old = flow.ok(flow.client.get(f"/v1/labels/{first['id']}"))
    assert old["status"] == "revoked"
    history = flow.ok(flow.client.get(f"/v1/labels/{first['id']}/history", headers=flow.owner))
    assert history["events"][-1]["action"] == "supersede"


def test_an_expired_label_stops_counting_by_itself(flow: Flow, monkeypatch) -> None:
    code = flow.product(1, "15")
    last_day = date.today() + timedelta(days=3)
    label = flow.certify(code, valid_until=last_day.isoformat())
    assert flow.public(code)["label"]["status"] == "active"
    # On its last day (China Standard Time) it still counts; the day after it does not, with no job run.
    monkeypatch.setattr(label_service, "today_cst", lambda now=None: last_day)
    assert flow.ok(flow.client.get(f"/v1/labels/{label['id']}"))["status"] == "active"
    monkeypatch.setattr(label_service, "today_cst", lambda now=None: last_day + timedelta(days=1))
    shown = flow.ok(flow.client.get(f"/v1/labels/{label['id']}"))
    assert (shown["status"], shown["earns_credits"]) == ("expired", False)
    revoke = flow.client.post(f"/v1/labels/{label['id']}/revoke", json={"reason": "x"}, headers=flow.verifier)
    assert reason(revoke, 409) == "label_not_active"


def test_public_view_is_cached_no_longer_than_the_label_is_valid(flow: Flow, monkeypatch) -> None:
    """The cache entry expires when the label does, so expiry shows on the next read without a job."""
    from datetime import UTC, datetime

    last_day = date.today() + timedelta(days=3)
    code = flow.product(1, "15")
    flow.certify(code, valid_until=last_day.isoformat())
    ends = label_service.expires_at(last_day)
    assert ends == datetime.combine(last_day + timedelta(days=1), datetime.min.time(),
                                    tzinfo=label_service.CST).astimezone(UTC)
    assert ends.hour == 16  # midnight in Beijing is 16:00 UTC the day before
    ten_seconds_before = ends - timedelta(seconds=10)
    monkeypatch.setattr(label_service, "utcnow", lambda: ten_seconds_before)
    monkeypatch.setattr(label_service, "today_cst", lambda now=None: last_day)

    async def ttl() -> int:
        async with flow.client.app.state.db.transaction() as session:
            _, seconds = await label_service.PublicLabelService(session).view(code, "http://x")
            return seconds

    with flow.client.portal() as portal:
        assert portal.call(ttl) == 10


# --- self-declared labels -----------------------------------------------------------------------

def test_a_self_declared_label_is_shown_as_such_and_earns_nothing(flow: Flow) -> None:
    code = flow.product(1, "25")
    response = flow.client.post(f"/v1/merchant/products/{code}/self-declared-label",
                                json={"valid_until": "2027-12-31"}, headers=flow.owner)
    label = flow.ok(response, 201)
    assert (label["scheme"], label["certification_body"], label["grade"]) == ("self_declared", None, "C")
    assert label["earns_credits"] is False
    assert flow.public(code)["label"]["scheme"] == "self_declared"
    # Its owner may withdraw it; a certification body may not (it issued nothing).
    assert flow.client.post(f"/v1/labels/{label['id']}/revoke", json={"reason": "x"},
                            headers=flow.verifier).status_code == 403
    assert flow.ok(flow.client.post(f"/v1/labels/{label['id']}/revoke", json={"reason": "recalculating"},
                                    headers=flow.owner))["status"] == "revoked"


def test_a_self_declared_label_cannot_replace_a_verified_one(flow: Flow) -> None:
    code = flow.product(1, "15")
    flow.certify(code)
    response = flow.client.post(f"/v1/merchant/products/{code}/self-declared-label",
                                json={"valid_until": "2027-12-31"}, headers=flow.owner)
    assert reason(response, 409) == "verified_label_in_force"
    # But certification may replace a self-declared label.
    other = flow.product(2, "15")
    flow.client.post(f"/v1/merchant/products/{other}/self-declared-label", json={"valid_until": "2027-12-31"},
                     headers=flow.owner)
    assert flow.certify(other)["scheme"] == "verified"


def test_the_applicant_may_withdraw_a_pending_application(flow: Flow) -> None:
    code = flow.product(1, "15")
    application = flow.apply(code)
    path = f"/v1/merchant/products/{code}/label-applications/{application['id']}/withdraw"
    assert flow.client.post(path, headers=flow.rival).status_code == 404  # not their product
    out = flow.ok(flow.client.post(path, headers=flow.owner))
    assert out["status"] == "withdrawn"
    assert reason(flow.client.post(path, headers=flow.owner), 409) == "application_not_pending"
    assert reason(flow.decide(application["id"]), 409) == "application_not_pending"  # too late to decide
    assert flow.ok(flow.client.get("/v1/certification/applications", headers=flow.verifier))["items"] == []
    assert flow.apply(code)["status"] == "pending"  # free to apply again
    other = flow.product(2, "15")
    wrong = f"/v1/merchant/products/{other}/label-applications/{application['id']}/withdraw"
    assert reason(flow.client.post(wrong, headers=flow.owner), 404) == "application_not_found"


def test_a_decided_application_cannot_be_withdrawn(flow: Flow) -> None:
    code = flow.product(1, "15")
    application = flow.apply(code)
    flow.ok(flow.decide(application["id"]))
    path = f"/v1/merchant/products/{code}/label-applications/{application['id']}/withdraw"
    assert reason(flow.client.post(path, headers=flow.owner), 409) == "application_not_pending"
