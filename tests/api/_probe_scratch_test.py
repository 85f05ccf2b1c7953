BODY = {"id": "t-grid", "names": {"zh-Hans": "电网", "zh-Hant": "電網", "en": "Grid"}, "category": "electricity.grid", "unit": "kWh", "kgco2e_per_unit": "0.123456789012345678", "gwp_basis": "AR5", "region": "CN", "tier": "national", "valid_from": "2022-01-01", "source": "test"}

def test_probe(client, auth):
    a = auth("admin")
    r = client.post("/v1/factors", json=BODY, headers=a); print(r.status_code, r.text)
    r = client.post("/v1/factors", json={**BODY, "id": "t2", "kgco2e_per_unit": 0.53660}, headers=a); print(r.status_code, r.json()["kgco2e_per_unit"])
    r = client.post("/v1/factors", json={**BODY, "id": "t3", "kgco2e_per_unit": "0.53660"}, headers=a); print(r.status_code, r.json()["kgco2e_per_unit"])
    r = client.post("/v1/factors", json={**BODY, "id": "t4", "colour": 1}, headers=a); print(r.status_code, r.text)
    b = dict(BODY); del b["names"]; b["id"]="t5"
    r = client.post("/v1/factors", json=b, headers=a); print(r.status_code, r.text)
    r = client.post("/v1/factors", json={**BODY, "id": "t6", "region": "CN-SD"}, headers=a); print(r.status_code, r.text)
    for m in ("put", "patch", "delete"):
        r = getattr(client, m)("/v1/factors/t-grid/versions/1", headers=a); print(m, r.status_code, r.text[:200])
        r = getattr(client, m)("/v1/factors/t-grid", headers=a); print(m, r.status_code)
    for c in ("a", "_w", "!!!", "%%%", "", "eA"):
        r = client.get("/v1/factors", params={"cursor": c}); print(repr(c), r.status_code, r.text[:150])
    r = client.get("/v1/factors/resolve", params={"category": "electricity.grid", "unit": "kWh", "date": "1990-01-01"}); print(r.status_code, r.text)
    r = client.post("/v1/factors/import", content=b"x", headers={**a, "content-type": "text/plain"}); print(r.status_code, r.text)
