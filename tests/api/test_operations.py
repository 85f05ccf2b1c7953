"""Operations surface: Prometheus metrics, structured request logs without personal data."""

from __future__ import annotations

import json
import logging

import pytest
from litestar.testing import TestClient

from carbonpuhui.app import create_app
from tests.conftest import make_settings


def _factor_route_count(text: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("carbonpuhui_requests_total") and "/v1/factors/{factor_id" in line)


def test_metrics_count_requests_by_route_template(client):
    # The Prometheus registry is process-wide: compare before and after.
    before = _factor_route_count(client.get("/metrics").text)
    client.get("/v1/factors/some-id")
    client.get("/v1/factors/other-id")
    text = client.get("/metrics").text
    assert "# TYPE carbonpuhui_requests_total counter" in text
    # Grouped by route template, so ids cannot blow up the label cardinality.
    assert _factor_route_count(text) - before == 2.0
    assert "some-id" not in text


def test_request_logs_are_json_without_bodies_or_tokens(tmp_path, migrated_database_url, capsys, token):
    settings = make_settings(tmp_path, database_url=migrated_database_url, log_json=True)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        secret = "do-not-log-this-body"
        client.post("/v1/factors", json={"id": secret}, headers={"Authorization": "Bearer not.a.token"})
        client.get("/v1/factors?q=private-query")
    logging.shutdown()
    captured = capsys.readouterr()
    lines = [line for line in (captured.out + captured.err).splitlines() if line.startswith("{")]
    events = [json.loads(line) for line in lines]
    responses = [e for e in events if e.get("event") == "HTTP Response"]
    assert {(e["method"], e["path"], e["status_code"]) for e in responses} >= {("POST", "/v1/factors", 401),
                                                                               ("GET", "/v1/factors", 200)}
    assert len(responses) == 2, "one line per request"
    requests: list[dict] = []
    # The server's own request/response events (the test client's httpx logs its URLs itself).
    everything = "\n".join(json.dumps(e, ensure_ascii=False) for e in requests + responses)
    assert secret not in everything
    assert "not.a.token" not in everything
    assert "private-query" not in everything


def test_every_response_carries_a_request_id(client):
    made = client.get("/v1/factors")
    assert len(made.headers["x-request-id"]) == 32
    assert client.get("/v1/factors").headers["x-request-id"] != made.headers["x-request-id"]
    echoed = client.get("/v1/factors", headers={"X-Request-ID": "lb-1234-abcd"})
    assert echoed.headers["x-request-id"] == "lb-1234-abcd"
    # Ids that could forge or flood log lines are replaced, not echoed.
    for hostile in ["short", "x" * 65, "a b c d e f g h", "evil\tvalue-123"]:
        assert client.get("/v1/factors", headers={"X-Request-ID": hostile}).headers["x-request-id"] != hostile


def test_request_id_is_in_the_logs_and_in_a_500(tmp_path, migrated_database_url, capsys, monkeypatch):
    from carbonpuhui.factors.service import FactorService

    async def explode(self, factor_id, viewer):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    monkeypatch.setattr(FactorService, "get_latest", explode)
    settings = make_settings(tmp_path, database_url=migrated_database_url, log_json=True)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        response = client.get("/v1/factors/x", headers={"X-Request-ID": "report-42-from-user"})
    logging.shutdown()
    assert response.status_code == 500
    assert response.json()["request_id"] == "report-42-from-user"
    captured = capsys.readouterr()
    events = [json.loads(line) for line in (captured.out + captured.err).splitlines() if line.startswith("{")]
    ours = [e for e in events if e.get("request_id") == "report-42-from-user"]
    assert "HTTP Response" in {e.get("event") for e in ours}
    tracebacks = [str(e.get("event")) for e in events if "boom" in str(e.get("event"))]
    assert tracebacks and all("report-42-from-user" in t for t in tracebacks), "the traceback names the request"


@pytest.mark.parametrize("host", ["host:port", "example.org:99999", "user@example.org", "[::1", "x" * 300])
def test_a_host_header_that_is_no_host_is_a_localised_400_everywhere(client, host) -> None:
    for path in ("/healthz", "/v1/factors", "/v1/products/6901234567892"):
        response = client.get(path, headers={"Host": host, "Accept-Language": "zh-Hant"})
        assert response.status_code == 400, (host, path)
        body = response.json()
        assert (body["reason"], body["detail"]) == ("invalid_host", "Host 請求標頭不是有效的主機名稱。")
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["x-request-id"] == body["request_id"]


@pytest.mark.parametrize("host", ["example.org", "example.org:8080", "127.0.0.1:65535", "[::1]:8000", "localhost"])
def test_real_hosts_pass(client, host) -> None:
    assert client.get("/healthz", headers={"Host": host}).status_code == 200


async def test_a_startup_that_fails_reports_its_own_error(tmp_path, migrated_database_url):
    # A corrupt signing key stops the app at startup with the key's error, not with a secondary one
    # from closing the database and stores that were never opened.
    settings = make_settings(tmp_path, database_url=migrated_database_url)
    settings.key_path.parent.mkdir(parents=True, exist_ok=True)
    settings.key_path.write_text("not a key")
    app = create_app(settings)
    with pytest.raises(BaseException) as caught:
        async with app.lifespan():
            pass
    leaves = list(caught.value.exceptions) if isinstance(caught.value, BaseExceptionGroup) else [caught.value]
    assert [type(e) for e in leaves] == [json.JSONDecodeError]
