from __future__ import annotations


def test_healthz_and_readyz(client):
    assert client.get("/healthz").json() == {"status": "ok", "checks": {}}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok"


def test_me_echoes_token_claims(client, auth):
    response = client.get("/v1/me", headers=auth("merchant", sub="bob", org="acme"))
    assert response.status_code == 200
    assert response.json() == {"sub": "bob", "roles": ["merchant"], "org": "acme"}
