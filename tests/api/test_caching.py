"""Conditional GET on factor reads: ETags, 304s, and caches that never share private rows."""

from __future__ import annotations

import pytest

GRID = {"names": {"zh-Hans": "电网", "zh-Hant": "電網", "en": "Grid"}, "category": "electricity.grid",
        "unit": "kWh", "gwp_basis": "AR5", "valid_from": "2022-01-01", "source": "test"}


@pytest.fixture
def published(client, auth):
    admin = auth("admin")
    assert client.post("/v1/factors", json={**GRID, "id": "g", "kgco2e_per_unit": "0.5366", "region": "CN",
                                            "tier": "national"}, headers=admin).status_code == 201
    assert client.post("/v1/factors/g/versions/1/publish", headers=admin).status_code == 200
    return admin


def test_etag_round_trip_gives_304(client, published):
    first = client.get("/v1/factors/g/versions/1")
    assert first.status_code == 200
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "public, max-age=300"
    again = client.get("/v1/factors/g/versions/1", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    other = client.get("/v1/factors/g/versions/1", headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200
    assert other.json() == first.json()


def test_latest_etag_changes_when_a_new_version_publishes(client, published):
    old = client.get("/v1/factors/g")
    assert old.headers["cache-control"] == "public, max-age=60"
    body = {**GRID, "kgco2e_per_unit": "0.5306", "region": "CN", "tier": "national", "valid_from": "2023-01-01"}
    assert client.post("/v1/factors/g/versions", json=body, headers=published).status_code == 201
    # A draft does not move "latest": the old ETag still matches.
    assert client.get("/v1/factors/g", headers={"If-None-Match": old.headers["etag"]}).status_code == 304
    assert client.post("/v1/factors/g/versions/2/publish", headers=published).status_code == 200
    new = client.get("/v1/factors/g", headers={"If-None-Match": old.headers["etag"]})
    assert new.status_code == 200
    assert new.json()["version"] == 2
    assert new.headers["etag"] != old.headers["etag"]


def test_retiring_changes_the_version_etag(client, published):
    before = client.get("/v1/factors/g/versions/1").headers["etag"]
    assert client.post("/v1/factors/g/versions/1/retire", headers=published).status_code == 200
    after = client.get("/v1/factors/g/versions/1", headers={"If-None-Match": before})
    assert after.status_code == 200
    assert after.json()["status"] == "retired"


def test_drafts_and_enterprise_factors_are_never_shared_cache_entries(client, auth):
    admin = auth("admin")
    assert client.post("/v1/factors", json={**GRID, "id": "d", "kgco2e_per_unit": "1", "region": "CN",
                                            "tier": "national"}, headers=admin).status_code == 201
    draft = client.get("/v1/factors/d/versions/1", headers=admin)
    assert draft.status_code == 200
    assert draft.headers["cache-control"] == "private, no-cache"
    assert client.post("/v1/factors", json={**GRID, "id": "own", "kgco2e_per_unit": "0.4", "region": "CN-SD",
                                            "tier": "enterprise", "owner_org": "acme"}, headers=admin).status_code == 201
    assert client.post("/v1/factors/own/versions/1/publish", headers=admin).status_code == 200
    mine = client.get("/v1/factors/own", headers=auth("merchant", org="acme"))
    assert mine.status_code == 200
    assert mine.headers["cache-control"] == "private, no-cache"
    assert "Authorization" in mine.headers["vary"]
    # And a stranger's If-None-Match learns nothing: the row is simply not found for them.
    assert client.get("/v1/factors/own", headers={"If-None-Match": mine.headers["etag"]}).status_code == 404


@pytest.mark.parametrize("alias", ["01", "1_0", "+1", "%D9%A1", "%201", "1.0", "0"])
def test_a_version_has_one_address(client, published, alias):
    assert client.get("/v1/factors/g/versions/1").status_code == 200
    response = client.get(f"/v1/factors/g/versions/{alias}")
    assert response.status_code in (404, 422)
    assert client.post(f"/v1/factors/g/versions/{alias}/retire", headers=published).status_code in (404, 422)
