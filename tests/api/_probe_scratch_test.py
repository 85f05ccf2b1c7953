import json
BODY = {"id": "t-grid", "names": {"zh-Hans": "电网", "zh-Hant": "電網", "en": "Grid"}, "category": "electricity.grid", "unit": "kWh", "kgco2e_per_unit": "0.123456789012345678", "gwp_basis": "AR5", "region": "CN", "tier": "national", "valid_from": "2022-01-01", "source": "test", "uncertainty": {"distribution": "lognormal", "gsd": 1.05}}

def test_probe(client, auth):
    a = auth("admin")
    raw = json.dumps({**BODY, "id": "n1"}).replace('"0.123456789012345678"', '0.123456789012345678')
    r = client.post("/v1/factors", content=raw.encode(), headers={**a, "content-type": "application/json"}); print(r.status_code, r.json()["kgco2e_per_unit"], r.json()["uncertainty"])
    r = client.post("/v1/factors", content=b'{"id": ', headers={**a, "content-type": "application/json"}); print(r.status_code, r.text)
    r = client.post("/v1/factors", content=b'', headers={**a, "content-type": "application/json"}); print(r.status_code, r.text)
    for c in ("!!!", "%%%", "eA", "a"):
        r = client.get("/v1/factors", params={"cursor": c}); print(repr(c), r.status_code)
