"""Quarterly reports over the API (and the CLI): who may submit, only ended quarters (CST), frozen
revisions that later data changes leave alone, the status list's due/overdue boundaries in CST, the
representations (JSON, CSV, HTML with its CSP) and a double submission at once."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from click.testing import CliRunner

from carbonpuhui.db import Database
from carbonpuhui.footprints.models import Product
from carbonpuhui.labels.models import Label
from carbonpuhui.stats import render, reports
from carbonpuhui.stats.cli import stats
from carbonpuhui.stats.models import Organisation, StatReport
from carbonpuhui.stats.quarters import Quarter
from tests.api.label_flow import gtin14

YANTAI, QINGDAO = "370600", "370200"
Q1 = Quarter(2025, 1)
AFTER_Q1 = datetime(2025, 4, 5, tzinfo=UTC)
MILLS = {"mill-a": "370602", "mill-b": "370611", "mill-c": "370612"}  # three steel mills in Yantai's districts


def at(monkeypatch: pytest.MonkeyPatch, instant: datetime) -> None:
    monkeypatch.setattr(reports, "now", lambda: instant)


def run(client, job):  # type: ignore[no-untyped-def]
    async def wrapped():  # type: ignore[no-untyped-def]
        async with client.app.state.db.transaction() as session:
            return await job(session)

    with client.portal() as portal:
        return portal.call(wrapped)


def organisation(org: str, division: str, industry: str) -> Organisation:
    return Organisation(org=org, names={"zh-Hans": org, "zh-Hant": org, "en": org}, division_code=division,
                        industry=industry, updated_at=datetime(2024, 12, 1, tzinfo=UTC), updated_by="root")


def labelled_product(n: int, org: str, issued: datetime, grade: str = "B") -> list[object]:
    code = gtin14(n)
    product = Product(gtin=code, owner_org=org, names={"zh-Hans": f"热轧卷{n}", "zh-Hant": f"熱軋卷{n}",
                                                       "en": f"Coil {n}"},
                      category="steel.hot_rolled_coil", declared_unit="kilogram", declared_units_per_item=Decimal(1),
                      region="CN-SD", created_at=datetime(2024, 12, 1, tzinfo=UTC), created_by="t")
    label = Label(id=str(uuid.uuid4()), gtin=code, owner_org=org, application_id=None, scheme="verified",
                  status="active", current=True, category="steel.hot_rolled_coil", declared_unit="kilogram",
                  kgco2e_per_unit=Decimal("1.85"), declared_kgco2e_per_unit=Decimal("1.80"),
                  conservative_basis="declared_with_penalty", uncertainty={}, gsd=None, grade=grade,
                  benchmark_revision=1, certification_body="cb-sgs", issued_at=issued, issued_by="vera",
                  valid_until=date(2026, 12, 31), factor_versions=[], inventory_revision=0)
    return [product, label]


def seed(client, *rows: object) -> None:
    async def job(session):  # type: ignore[no-untyped-def]
        for row in rows:
            session.add(row)
            await session.flush()

    run(client, job)


@pytest.fixture
def yantai(client):  # type: ignore[no-untyped-def]
    """Three Yantai mills with one verified label each (issued in 2025Q1), a Yantai agency and a
    Qingdao one."""
    rows: list[object] = [organisation(org, division, "steel") for org, division in MILLS.items()]
    rows += [organisation("yt-agency", "370602", "public_sector"), organisation("qd-agency", "370202", "public_sector")]
    for n, org in enumerate(MILLS, start=1):
        rows += labelled_product(n, org, datetime(2025, 2, n, 4, tzinfo=UTC))
    seed(client, *rows)
    return client


def officer(auth, org: str = "yt-agency"):  # type: ignore[no-untyped-def]
    return auth("officer", org=org, sub=f"officer-of-{org}")


def submit(client, headers, city: str = YANTAI, quarter: str = "2025Q1", **extra):  # type: ignore[no-untyped-def]
    return client.post("/v1/stats/reports", json={"city": city, "quarter": quarter, **extra}, headers=headers)


def total(content: dict, indicator: str) -> dict:
    found = next(i for i in content["indicators"]["indicators"] if i["id"] == indicator)
    return next(c for c in found["cells"] if c["group"] == "*")


def test_a_submitted_report_is_frozen_and_a_resubmission_is_the_next_revision(yantai, auth, monkeypatch):
    at(monkeypatch, AFTER_Q1)
    first = submit(yantai, officer(auth), note="first")
    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["revision"], body["late"], body["submitted_at"]) == (1, False, "2025-04-05T00:00:00Z")
    stored = yantai.get(body["url"])
    assert stored.status_code == 200 and stored.headers["content-type"].startswith("application/json")
    content = stored.json()
    assert reports.sha256(content) == body["content_sha256"]
    assert (content["city"], content["quarter"], content["revision"], content["note"]) == (YANTAI, "2025Q1", 1, "first")
    assert [label["gtin"] for label in content["labels"]] == [gtin14(1), gtin14(2), gtin14(3)]
    assert total(content, "labelled_products") == {**total(content, "labelled_products"), "value": 3,
                                                   "status": "published"}
    assert content["changes"] and content["previous"]["quarter"] == "2024Q4"

    # The data changes: a fourth product is labelled within the quarter.
    seed(yantai, *labelled_product(4, "mill-a", datetime(2025, 3, 1, tzinfo=UTC), grade="A"))
    again = yantai.get(body["url"])
    assert again.content == stored.content  # byte for byte what was frozen
    assert yantai.get("/v1/stats/reports/370600/2025Q1").json()["revision"] == 1
    draft = yantai.get("/v1/stats/reports/370600/2025Q1/draft", headers=officer(auth)).json()
    assert draft["revision"] is None and len(draft["labels"]) == 4
    assert total(draft, "labelled_products")["value"] == 4

    second = submit(yantai, auth("admin", sub="root"))
    assert second.status_code == 201, second.text
    assert second.json()["revision"] == 2
    latest = yantai.get("/v1/stats/reports/370600/2025Q1").json()
    assert latest["revision"] == 2 and len(latest["labels"]) == 4
    assert total(latest, "labelled_products")["value"] == 4
    assert yantai.get("/v1/stats/reports/370600/2025Q1?revision=1").content == stored.content

    async def rows(session):  # type: ignore[no-untyped-def]
        from sqlalchemy import select

        return (await session.execute(select(StatReport).order_by(StatReport.revision))).scalars().all()

    saved = run(yantai, rows)
    assert [(r.revision, r.submitted_by, r.submitted_org) for r in saved] == [
        (1, "officer-of-yt-agency", "yt-agency"), (2, "root", None)]
    assert all(r.content_sha256 == reports.sha256(r.content) for r in saved)


def test_who_may_submit(yantai, auth, monkeypatch):
    at(monkeypatch, AFTER_Q1)
    assert submit(yantai, {}).status_code == 401
    assert submit(yantai, auth("consumer")).json()["reason"] == "missing_role"
    assert submit(yantai, auth("merchant", org="mill-a")).status_code == 403
    refused = submit(yantai, officer(auth, "qd-agency"))  # an agency of another city
    assert (refused.status_code, refused.json()["reason"]) == (403, "not_city_officer")
    assert submit(yantai, officer(auth, "no-profile")).json()["reason"] == "not_city_officer"
    assert submit(yantai, officer(auth, "qd-agency"), city=QINGDAO).status_code == 201
    assert submit(yantai, officer(auth)).status_code == 201
    assert submit(yantai, auth("admin", sub="root"), city="371500").status_code == 201  # Liaocheng, by an admin
    # Reading is public.
    assert yantai.get("/v1/stats/reports/370200/2025Q1").json()["city"] == QINGDAO
    assert yantai.get("/v1/stats/reports/370600/2025Q1/draft").status_code == 401
    assert yantai.get("/v1/stats/reports/370600/2025Q1/draft", headers=auth("merchant", org="mill-a")).status_code == 403


def test_only_an_ended_quarter_in_china_standard_time(yantai, auth, monkeypatch):
    at(monkeypatch, datetime(2025, 3, 31, 15, 59, 59, tzinfo=UTC))  # 23:59:59 on 31 March in Beijing
    refused = submit(yantai, officer(auth))
    assert (refused.status_code, refused.json()["reason"]) == (409, "quarter_not_ended")
    at(monkeypatch, datetime(2025, 3, 31, 16, 0, tzinfo=UTC))  # midnight, 1 April in Beijing
    assert submit(yantai, officer(auth)).status_code == 201


def test_refusals(yantai, auth, monkeypatch):
    at(monkeypatch, AFTER_Q1)
    assert submit(yantai, officer(auth), city="370000").json()["reason"] == "not_a_city"  # the province
    assert submit(yantai, officer(auth), city="370699").json()["reason"] == "not_a_city"
    assert submit(yantai, officer(auth), quarter="2025Q5").json()["reason"] == "invalid_quarter"
    assert submit(yantai, officer(auth), surplus=1).status_code == 422  # unknown field
    missing = yantai.get("/v1/stats/reports/370600/2025Q1")
    assert (missing.status_code, missing.json()["reason"]) == (404, "report_not_submitted")
    assert submit(yantai, officer(auth)).status_code == 201
    absent = yantai.get("/v1/stats/reports/370600/2025Q1?revision=2")
    assert (absent.status_code, absent.json()["reason"]) == (404, "revision_not_found")
    assert yantai.get("/v1/stats/reports?city=37060").status_code == 422


def statuses(client, **params):  # type: ignore[no-untyped-def]
    response = client.get("/v1/stats/reports", params={"city": YANTAI, **params})
    assert response.status_code == 200, response.text
    return {item["quarter"]: item for item in response.json()["items"]}


def test_the_status_list_turns_due_then_overdue_at_the_cst_day_boundaries(yantai, auth, monkeypatch):
    at(monkeypatch, datetime(2025, 3, 31, 15, 59, 59, tzinfo=UTC))
    assert {q: i["status"] for q, i in statuses(yantai).items()} == {"2025Q1": "open"}
    at(monkeypatch, datetime(2025, 3, 31, 16, 0, tzinfo=UTC))
    listed = statuses(yantai)
    assert {q: i["status"] for q, i in listed.items()} == {"2025Q1": "due", "2025Q2": "open"}
    assert listed["2025Q1"] == {"city": YANTAI, "quarter": "2025Q1", "status": "due", "due_on": "2025-04-10",
                                "revisions": 0, "latest_revision": None, "submitted_at": None,
                                "latest_submitted_at": None, "late": False}
    at(monkeypatch, datetime(2025, 4, 10, 15, 59, 59, tzinfo=UTC))  # the due day's last second in Beijing
    assert statuses(yantai)["2025Q1"]["status"] == "due"
    at(monkeypatch, datetime(2025, 4, 10, 16, 0, tzinfo=UTC))
    assert statuses(yantai)["2025Q1"]["status"] == "overdue"
    assert submit(yantai, officer(auth)).json()["late"] is True
    late = statuses(yantai)["2025Q1"]
    assert (late["status"], late["late"], late["revisions"], late["submitted_at"]) == (
        "submitted", True, 1, "2025-04-10T16:00:00Z")


def test_an_on_time_report_stays_on_time_after_a_late_correction(yantai, auth, monkeypatch):
    at(monkeypatch, datetime(2025, 4, 10, 15, 59, 59, tzinfo=UTC))
    assert submit(yantai, officer(auth)).json()["late"] is False
    at(monkeypatch, datetime(2026, 1, 20, tzinfo=UTC))
    assert submit(yantai, officer(auth)).json()["revision"] == 2
    listed = statuses(yantai)
    assert (listed["2025Q1"]["late"], listed["2025Q1"]["latest_revision"]) == (False, 2)
    assert listed["2025Q1"]["latest_submitted_at"] == "2026-01-20T00:00:00Z"
    assert [listed[q]["status"] for q in ("2025Q2", "2025Q3", "2025Q4", "2026Q1")] == [
        "overdue", "overdue", "overdue", "open"]
    assert list(statuses(yantai, year=2026)) == ["2026Q1"]


def test_representations_and_locales(yantai, auth, monkeypatch):
    at(monkeypatch, AFTER_Q1)
    assert submit(yantai, officer(auth)).status_code == 201
    url = "/v1/stats/reports/370600/2025Q1?revision=1"
    html = yantai.get(url, headers={"Accept": "text/html"})
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert html.headers["content-security-policy"] == render.PAGE_CSP
    assert html.headers["content-language"] == "zh-Hans" and "烟台市" in html.text
    assert "immutable" in html.headers["cache-control"]
    hant = yantai.get(url + "&format=html&lang=zh-Hant")
    assert "煙臺市" in hant.text and "烟台市" not in hant.text.split("<main", 1)[1].split("lang=")[0]
    assert "<h1>煙臺市2025年第一季度碳足跡試點工作進展報告</h1>" in hant.text
    english = yantai.get(url, headers={"Accept": "text/html", "Accept-Language": "en"})
    assert "<h1>Yantai pilot progress report, 2025 Q1</h1>" in english.text
    assert "Products with a verified label" in english.text
    table = yantai.get(url + "&format=csv&lang=en")
    assert table.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(table.text)))
    labelled = next(r for r in rows if r["indicator"] == "labelled_products" and r["group"] == "*")
    assert (labelled["value"], labelled["status"], labelled["previous_quarter"]) == ("3", "published", "2024Q4")
    # A cached copy is revalidated by its ETag.
    again = yantai.get(url + "&format=csv&lang=en", headers={"If-None-Match": table.headers["etag"]})
    assert again.status_code == 304
    assert yantai.get(url, headers={"Accept": "text/csv"}).headers["content-type"].startswith("text/csv")
    assert yantai.get("/v1/stats/reports/370600/2025Q1").headers["cache-control"] == "public, no-cache"


def test_two_submissions_at_once_take_revisions_one_and_two(yantai, settings, monkeypatch):
    at(monkeypatch, AFTER_Q1)
    from carbonpuhui.auth import Principal

    admin = Principal(sub="root", roles=frozenset({"admin"}))
    both_looked = asyncio.Barrier(2)
    numbered = reports.next_revision
    calls = []

    async def look_then_wait(session, city, quarter):  # type: ignore[no-untyped-def]
        revision = await numbered(session, city, quarter)
        calls.append(revision)
        if len(calls) <= 2:  # contention made certain: both chose a number before either inserted
            await both_looked.wait()
        return revision

    async def race() -> list[int]:
        process_a, process_b = Database(settings.effective_database_url), Database(settings.effective_database_url)
        try:
            async def one(db: Database) -> int:
                async with db.transaction() as session:
                    return (await reports.submit(session, city=YANTAI, quarter=Q1, principal=admin)).revision

            return list(await asyncio.wait_for(asyncio.gather(one(process_a), one(process_b)), 60))
        finally:
            await process_a.dispose()
            await process_b.dispose()

    monkeypatch.setattr(reports, "next_revision", look_then_wait)
    revisions = asyncio.run(race())
    assert sorted(revisions) == [1, 2]
    assert calls == [1, 1, 2]  # the loser of the unique index tried again with the next number
    monkeypatch.undo()
    listed = yantai.get("/v1/stats/reports", params={"city": YANTAI}).json()["items"][0]
    assert (listed["revisions"], listed["latest_revision"]) == (2, 2)


def test_the_cli_writes_the_report_files(yantai, settings, monkeypatch, tmp_path):
    at(monkeypatch, AFTER_Q1)
    out = tmp_path / "out"
    result = CliRunner().invoke(stats, ["report", "--city", YANTAI, "--quarter", "2025Q1", "--out", str(out),
                                        "--submit", "--database-url", settings.effective_database_url])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["revision"] == 1 and summary["files"] == [
        "report.json", "report.csv", "report.zh-Hans.html", "report.zh-Hant.html", "report.en.html"]
    content = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert reports.sha256(content) == summary["content_sha256"]
    assert content == yantai.get("/v1/stats/reports/370600/2025Q1").json()
    assert "煙臺市" in (out / "report.zh-Hant.html").read_text(encoding="utf-8")
    assert "Yantai" in (out / "report.en.html").read_text(encoding="utf-8")
    assert (out / "report.csv").read_text(encoding="utf-8").startswith(",".join(render.CSV_COLUMNS))
    draft = CliRunner().invoke(stats, ["report", "--city", YANTAI, "--quarter", "2025Q1", "--out", str(out),
                                       "--lang", "en", "--database-url", settings.effective_database_url])
    assert draft.exit_code == 0, draft.output
    assert json.loads(draft.stdout.strip().splitlines()[-1])["revision"] is None
    refused = CliRunner().invoke(stats, ["report", "--city", "370000", "--quarter", "2025Q1"])
    assert refused.exit_code == 2 and "not a prefecture-level city" in refused.output


def purchase(person: str, merchant: str, grams: int, when: datetime) -> list[object]:
    """A purchase claim's ledger rows as the credits service writes them: issuance pays the person."""
    from carbonpuhui.credits.models import Claim, Entry, Transfer

    claim_id, transfer_id = str(uuid.uuid4()), str(uuid.uuid4())
    return [Transfer(id=transfer_id, kind="purchase", reference=claim_id, created_at=when),
            Entry(transfer_id=transfer_id, account_id="issuance", amount_g=-grams, created_at=when),
            Entry(transfer_id=transfer_id, account_id=person, amount_g=grams, created_at=when),
            Claim(id=claim_id, kind="purchase", issuer=merchant, jti=claim_id, account_id=person,
                  transfer_id=transfer_id, credited_g=grams, claimed_at=when)]


def test_monthly_credits_add_up_to_the_quarter_and_hide_what_would_reveal_a_merchant(client, auth, monkeypatch):
    from carbonpuhui.credits.models import Account

    opened = datetime(2024, 12, 1, tzinfo=UTC)
    rows: list[object] = [organisation(f"shop-{n}", "370602", "retail") for n in range(1, 5)]
    rows += [organisation("yt-agency", "370602", "public_sector"),
             Account(id="issuance", kind="issuance", owner=None, balance_g=0, created_at=opened),
             Account(id="p1", kind="person", owner="alice", balance_g=0, created_at=opened)]
    jan, mar = datetime(2025, 1, 15, tzinfo=UTC), datetime(2025, 3, 20, tzinfo=UTC)
    for shop in ("shop-1", "shop-2", "shop-3"):  # January: three shops, 100 g each
        rows += purchase("p1", shop, 100, jan)
    # 00:30 on 1 February in Beijing: February's, although still 31 January in UTC. One shop alone.
    rows += purchase("p1", "shop-1", 500, datetime(2025, 1, 31, 16, 30, tzinfo=UTC))
    for shop, grams in (("shop-1", 50), ("shop-2", 60), ("shop-3", 70), ("shop-4", 80)):
        rows += purchase("p1", shop, grams, mar)
    rows += purchase("p1", "shop-4", 999, datetime(2025, 3, 31, 16, 0, tzinfo=UTC))  # 1 April in Beijing: Q2
    seed(client, *rows)
    at(monkeypatch, AFTER_Q1)
    content = client.get("/v1/stats/reports/370600/2025Q1/draft", headers=officer(auth)).json()
    # The quarter's total (4 shops, the largest 650 of 1060 g) is published by the indicators...
    assert total(content, "credits_purchases_g") == {**total(content, "credits_purchases_g"), "value": 1060,
                                                     "status": "published"}
    months = {m["month"]: (m["purchases_g"], m["purchases_g_status"]) for m in content["credits"]["months"]}
    # ...so February (one shop: primary) would be the total minus January and March: March, the
    # smaller of the two, is withheld as well (secondary), and January stays.
    assert months == {"2025-01": (300, "published"), "2025-02": (None, "primary"), "2025-03": (None, "secondary")}
    assert [(m["travel_g"], m["travel_g_status"]) for m in content["credits"]["months"]] == [(0, "published")] * 3
