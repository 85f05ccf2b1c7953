"""What a factor is cannot be changed by a new version; who may see enterprise factors; and two
processes publishing one draft at once."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from carbonpuhui.auth import Principal
from carbonpuhui.db import Database
from carbonpuhui.errors import ConflictError
from carbonpuhui.factors.schemas import FactorCreate
from carbonpuhui.factors.service import IDENTITY_FIELDS, FactorService

BASE = {"names": {"zh-Hans": "电网", "zh-Hant": "電網", "en": "Grid"}, "category": "electricity.grid",
        "unit": "kWh", "gwp_basis": "AR5", "valid_from": "2022-01-01", "source": "test",
        "kgco2e_per_unit": "0.5"}
OWN = {**BASE, "tier": "enterprise", "owner_org": "acme", "region": "CN-SD"}
HEADER = "id,names.zh-Hans,names.zh-Hant,names.en,category,unit,kgco2e_per_unit,gwp_basis,region,tier,owner_org,valid_from,source\n"


def _fields(response) -> set[str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 422, response.text
    return {e["field"] for e in response.json()["errors"]}


@pytest.fixture
def acme_factor(client, auth):
    admin = auth("admin")
    assert client.post("/v1/factors", json={**OWN, "id": "acme-grid"}, headers=admin).status_code == 201
    assert client.post("/v1/factors/acme-grid/versions/1/publish", headers=admin).status_code == 200
    return admin


@pytest.mark.parametrize(("field", "value"), [("tier", "provincial"), ("owner_org", "evil"),
                                               ("category", "electricity.other"), ("unit", "MWh"),
                                               ("region", "CN-BJ")])
def test_a_new_version_cannot_change_what_the_factor_is(client, acme_factor, field, value):
    body = {**OWN, field: value}
    if field == "tier":
        body["owner_org"] = None
    response = client.post("/v1/factors/acme-grid/versions", json=body, headers=acme_factor)
    assert field in _fields(response)
    # Value, validity and source may change: that is what versions are for.
    ok = client.post("/v1/factors/acme-grid/versions",
                     json={**OWN, "kgco2e_per_unit": "0.45", "valid_from": "2023-01-01", "source": "v2"},
                     headers=acme_factor)
    assert ok.status_code == 201
    assert ok.json()["owner_org"] == "acme"


def test_identity_fields_cover_ownership_and_meaning():
    assert {"tier", "owner_org", "category", "unit", "region"} == set(IDENTITY_FIELDS)


def test_an_import_cannot_move_a_factor_to_another_owner(client, acme_factor):
    csv_text = HEADER + "acme-grid,电网,電網,Grid,electricity.grid,kWh,0.4,AR5,CN-SD,enterprise,evil,2024-01-01,hijack\n"
    response = client.post("/v1/factors/import", content=csv_text.encode(), headers={
        **acme_factor, "content-type": "text/csv"})
    assert response.status_code == 422
    assert {(e["line"], e["field"]) for e in response.json()["errors"]} == {(2, "owner_org")}
    versions = client.get("/v1/factors/acme-grid/versions", headers=acme_factor).json()["items"]
    assert [v["owner_org"] for v in versions] == ["acme"]


def test_rows_of_one_id_in_a_file_must_agree(client, auth):
    csv_text = HEADER + (
        "x-grid,电网,電網,Grid,electricity.grid,kWh,0.4,AR5,CN,national,,2022-01-01,a\n"
        "x-grid,电网,電網,Grid,electricity.grid,MWh,0.5,AR5,CN,national,,2023-01-01,b\n")
    response = client.post("/v1/factors/import", content=csv_text.encode(), headers={
        **auth("admin"), "content-type": "text/csv"})
    assert {(e["line"], e["field"]) for e in response.json()["errors"]} == {(3, "unit")}


@pytest.mark.parametrize("role", ["consumer", "verifier", "officer"])
def test_an_org_claim_of_another_role_sees_no_enterprise_factor(client, auth, acme_factor, role):
    """Only the enterprise's own merchant tokens (and admins) reach its factors."""
    headers = auth(role, org="acme")
    assert client.get("/v1/factors/acme-grid", headers=headers).status_code == 404
    assert client.get("/v1/factors?tier=enterprise", headers=headers).json()["items"] == []
    resolved = client.get("/v1/factors/resolve?category=electricity.grid&unit=kWh&region=CN-SD&date=2023-01-01",
                          headers=headers)
    assert resolved.status_code == 404
    assert client.get("/v1/factors/acme-grid", headers=auth("merchant", org="acme")).status_code == 200
    own = client.get("/v1/factors/resolve?category=electricity.grid&unit=kWh&region=CN-SD&date=2023-01-01",
                     headers=auth("merchant", org="acme"))
    assert own.json()["factor"]["id"] == "acme-grid"


async def test_two_processes_publishing_one_draft_publish_it_once(settings):
    admin_a = Principal(sub="alice", roles=frozenset({"admin"}))
    admin_b = Principal(sub="bob", roles=frozenset({"admin"}))
    process_a, process_b = Database(settings.effective_database_url), Database(settings.effective_database_url)
    try:
        async with process_a.transaction() as session:
            await FactorService(session).create(
                msgspec.convert({**BASE, "id": "once", "tier": "national", "region": "CN"}, FactorCreate), admin_a)

        async def publish(db: Database, who: Principal) -> str:
            try:
                async with db.transaction() as session:
                    await FactorService(session).publish("once", 1, who)
                    await asyncio.sleep(0.05)  # hold the transaction open while the other tries
                return who.sub
            except ConflictError as exc:
                return str(exc.reason)

        outcomes = await asyncio.gather(publish(process_a, admin_a), publish(process_b, admin_b))
        async with process_a.transaction() as session:
            row = await FactorService(session).repo.get("once", 1)
    finally:
        await process_a.dispose()
        await process_b.dispose()
    winners = [o for o in outcomes if o in ("alice", "bob")]
    assert len(winners) == 1, outcomes
    assert [o for o in outcomes if o not in winners] == ["not_a_draft"]
    assert row is not None and row.status == "published"
    assert row.published_by == winners[0], "the loser must not overwrite who published it"


def test_a_correction_supersedes_the_version_it_corrects(client, auth):
    """Of one factor, the newest version valid on the day wins, even with an earlier valid_from."""
    admin = auth("admin")
    national = {**BASE, "tier": "national", "region": "CN"}
    assert client.post("/v1/factors", json={**national, "id": "fix", "valid_from": "2022-06-01",
                                            "kgco2e_per_unit": "1"}, headers=admin).status_code == 201
    assert client.post("/v1/factors/fix/versions/1/publish", headers=admin).status_code == 200
    assert client.post("/v1/factors/fix/versions", json={**national, "valid_from": "2022-01-01",
                                                         "kgco2e_per_unit": "2"}, headers=admin).status_code == 201
    url = "/v1/factors/resolve?category=electricity.grid&unit=kWh&region=CN&date={}"
    assert client.get(url.format("2022-07-01")).json()["factor"]["kgco2e_per_unit"] == "1"  # v2 still a draft
    assert client.post("/v1/factors/fix/versions/2/publish", headers=admin).status_code == 200
    assert client.get(url.format("2022-07-01")).json()["factor"]["version"] == 2
    assert client.get(url.format("2022-03-01")).json()["factor"]["version"] == 2


@pytest.mark.services
async def test_an_import_never_republishes_what_another_process_published(postgres_databases, monkeypatch):
    """The import saw a draft; before it could publish it, another process did. The import must
    count it unchanged and leave the other publisher on record (PostgreSQL: read committed)."""
    from carbonpuhui.db.migrate import upgrade
    from carbonpuhui.factors.importer import import_factors, parse
    from carbonpuhui.factors.repository import FactorRepository

    url = await asyncio.to_thread(postgres_databases.create)  # its own loop, off this one
    upgrade(url)
    body = {**BASE, "id": "seen", "tier": "national", "region": "CN"}
    other, importer = Database(url), Database(url)
    admin = Principal(sub="http-admin", roles=frozenset({"admin"}))
    try:
        async with other.transaction() as session:
            await FactorService(session).create(msgspec.convert(body, FactorCreate), admin)
        original = FactorRepository.versions_of_many

        async def load_then_race(self, ids, chunk=1000):  # type: ignore[no-untyped-def]
            rows = await original(self, ids, chunk)
            async with other.transaction() as session:  # the other process publishes now
                await FactorService(session).publish("seen", 1, admin)
            return rows

        monkeypatch.setattr(FactorRepository, "versions_of_many", load_then_race)
        async with importer.transaction() as session:
            result = await import_factors(FactorService(session), parse(msgspec.json.encode([body]), "application/json"),
                                          Principal(sub="importer", roles=frozenset({"admin"})), publish=True)
        monkeypatch.undo()
        async with other.transaction() as session:
            row = await FactorService(session).repo.get("seen", 1)
    finally:
        await other.dispose()
        await importer.dispose()
    assert (result.created, result.unchanged, result.published) == (0, 1, 0)
    assert row is not None and row.published_by == "http-admin"


def test_a_supplement_cannot_be_published_before_its_national_factor(client, auth):
    admin = auth("admin")
    rows = [{**BASE, "id": "nat-x", "tier": "national", "region": "CN"},
            {**BASE, "id": "prov-y", "tier": "provincial", "region": "CN-SD", "supplements": "nat-x"}]
    drafts = client.post("/v1/factors/import", json=rows, headers=admin)
    assert drafts.json()["created"] == 2
    early = client.post("/v1/factors/prov-y/versions/1/publish", headers=admin)
    assert early.status_code == 409
    assert early.json()["reason"] == "supplements_unpublished"
    assert client.get("/v1/factors/prov-y").status_code == 404
    assert client.post("/v1/factors/nat-x/versions/1/publish", headers=admin).status_code == 200
    assert client.post("/v1/factors/prov-y/versions/1/publish", headers=admin).status_code == 200


@pytest.mark.parametrize("field", ["id", "category", "unit", "region"])
def test_a_trailing_newline_is_not_a_look_alike_value(client, auth, field):
    body = {**BASE, "id": "nl", "tier": "national", "region": "CN"}
    body[field] = body[field] + "\n"
    response = client.post("/v1/factors", json=body, headers=auth("admin"))
    assert response.status_code == 422
    assert field in {e["field"] for e in response.json()["errors"]}


def test_an_overlong_id_is_refused_not_truncated(client, auth):
    body = {**BASE, "id": "a" * 101, "tier": "national", "region": "CN"}
    assert client.post("/v1/factors", json=body, headers=auth("admin")).status_code == 422


def test_text_search_matches_the_version_shown(client, auth):
    admin = auth("admin")
    national = {**BASE, "tier": "national", "region": "CN"}
    assert client.post("/v1/factors", json={**national, "id": "s", "source": "OLDSOURCE"}, headers=admin).status_code == 201
    assert client.post("/v1/factors/s/versions/1/publish", headers=admin).status_code == 200
    assert client.post("/v1/factors/s/versions", json={**national, "source": "NEW", "kgco2e_per_unit": "0.6"},
                       headers=admin).status_code == 201
    assert client.post("/v1/factors/s/versions/2/publish", headers=admin).status_code == 200
    assert client.get("/v1/factors?q=oldsource").json()["items"] == []
    assert [f["version"] for f in client.get("/v1/factors?q=new").json()["items"]] == [2]
