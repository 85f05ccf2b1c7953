"""The daily job's other half: stored Idempotency-Key responses are forgotten after a week, and a
retry after that is still not paid twice (the receipt's natural key refuses it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from carbonpuhui.credits import clock
from carbonpuhui.credits.maintenance import IDEMPOTENCY_DAYS, purge_idempotency
from tests.api.credit_flow import CreditFlow


def test_old_idempotency_records_are_purged_and_the_retry_still_pays_once(client, auth, app, monkeypatch) -> None:
    flow = CreditFlow(client, auth)
    flow.benchmark(["10", "20", "30", "40"], baseline="50", uncertainty_penalty="0")
    code = flow.labelled(1, "20")
    pos = flow.register()
    buyer = flow.consumer("buyer")
    receipt = pos.receipt([{"gtin": code, "qty": 1}])
    first = flow.claim(buyer, receipt, key="k-1")
    assert first.status_code == 201
    assert flow.claim(buyer, receipt, key="k-1").headers.get("Idempotent-Replayed") == "true"
    later = datetime.now(UTC) + timedelta(days=IDEMPOTENCY_DAYS, hours=1)
    with client.portal() as portal:
        # Within the week nothing is forgotten.
        assert portal.call(purge_idempotency, app.state.db, later - timedelta(days=1)) == 0
        assert portal.call(purge_idempotency, app.state.db, later) == 1
    monkeypatch.setattr(clock, "now", lambda: later)  # the receipt is 7 days old: still claimable
    retry = flow.claim(buyer, receipt, key="k-1")
    assert retry.status_code == 409, retry.text
    assert retry.json()["reason"] == "receipt_already_claimed"
    assert retry.json()["claim_id"] == first.json()["claim_id"]
    assert flow.wallet(buyer)["balance_g"] == first.json()["balance_g"] == 30_000
