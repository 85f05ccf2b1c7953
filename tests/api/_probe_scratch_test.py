import json
BODY = {"id": "t-grid", "names": {"zh-Hans": "电网", "zh-Hant": "電網", "en": "Grid"}, "category": "electricity.grid", "unit": "kWh", "kgco2e_per_unit": "0.123456789012345678", "gwp_basis": "AR5", "region": "CN", "tier": "national", "valid_from": "2022-01-01", "source": "test"}

def test_probe(client, auth):
    a = auth("admin")
    raw = json.dumps({**BODY, "id": "n1"}).replace('"0.123456789012345678"', '0.123456789012345678')
    r = client.post("/v1/factors", content=raw.encode(), headers={**a, "content-type": "application/json"}); print(r.status_code, r.json()["kgco2e_per_unit"])
    raw = json.dumps({**BODY, "id": "n2"}).replace('"0.123456789012345678"', '1e400')
    r = client.post("/v1/factors", content=raw.encode(), headers={**a, "content-type": "application/json"}); print(r.status_code, r.text)
    for v in ("NaN", "Infinity", "1E+2", "-0", "1e-30"):
        r = client.post("/v1/factors", json={**BODY, "id": "x"+str(abs(hash(v)))[:5], "kgco2e_per_unit": v}, headers=a); print(v, r.status_code, r.text[-200:])
