"""The served OpenAPI schema documents what the routes really declare, and agrees with API.md."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import TestClient

from carbonpuhui.auth.access import PUBLIC

ROOT = Path(__file__).resolve().parents[2]
API_MD_CANDIDATES = [ROOT.parent / "shared" / "API.md", ROOT / "shared" / "API.md", ROOT / "docs" / "API.md"]
METHODS = ("get", "put", "post", "delete", "patch", "head")


@pytest.fixture
def spec(client: TestClient[Litestar]) -> dict[str, Any]:
    response = client.get("/schema/openapi.json")
    assert response.status_code == 200
    return response.json()


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, ops in spec["paths"].items() if not path.startswith("/schema")
            for method, op in ops.items() if method in METHODS]


def _schema_path(litestar_path: str) -> str:
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", litestar_path)


def _handlers(app: Litestar) -> list[tuple[str, str, Any]]:
    """(method, schema path, handler) for every documented HTTP handler outside /schema."""
    found = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or route.path.startswith("/schema"):
            continue
        for handler in route.route_handlers:
            if not handler.resolve_include_in_schema():
                continue
            for method in sorted(handler.http_methods - {"OPTIONS"}):
                found.append((method, _schema_path(route.path), handler))
    return found


def test_schema_is_openapi_3_1(spec: dict[str, Any]) -> None:
    assert re.fullmatch(r"3\.1\.\d+", spec["openapi"])
    assert spec["info"]["title"] == "carbonpuhui"
    assert len(_operations(spec)) >= 10


def test_every_handler_is_in_the_schema(client: TestClient[Litestar], spec: dict[str, Any]) -> None:
    handlers = _handlers(client.app)
    assert handlers
    missing = [(m, p) for m, p, _h in handlers if m.lower() not in spec["paths"].get(p, {})]
    assert not missing


def test_every_operation_documents_401(spec: dict[str, Any]) -> None:
    lacking = [(m, p) for m, p, op in _operations(spec) if "401" not in op["responses"]]
    assert not lacking, f"a bad token is a 401 everywhere; undocumented on {lacking}"


def test_role_protected_operations_document_403(client: TestClient[Litestar], spec: dict[str, Any]) -> None:
    protected = [(m, p) for m, p, h in _handlers(client.app) if isinstance(h.opt.get("access"), tuple)]
    assert ("POST", "/v1/factors") in protected and ("POST", "/v1/factors/import") in protected
    lacking = [(m, p) for m, p in protected if "403" not in spec["paths"][p][m.lower()]["responses"]]
    assert not lacking


def test_public_reads_document_429(client: TestClient[Litestar], spec: dict[str, Any]) -> None:
    public_gets = [(m, p, h) for m, p, h in _handlers(client.app) if h.opt.get("access") == PUBLIC and m == "GET"]
    throttled = [(m, p) for m, p, h in public_gets if h.opt.get("throttled", True)]
    probes = [(m, p) for m, p, h in public_gets if not h.opt.get("throttled", True)]
    assert ("GET", "/v1/factors") in throttled and ("GET", "/v1/factors/resolve") in throttled
    assert {("GET", "/healthz"), ("GET", "/readyz")} <= set(probes)
    lacking = [(m, p) for m, p in throttled if "429" not in spec["paths"][p]["get"]["responses"]]
    assert not lacking
    # Probes are never throttled, so they do not promise a 429 they cannot give.
    assert not [p for _, p in probes if p in spec["paths"] and "429" in spec["paths"][p]["get"]["responses"]]


def test_operations_with_a_body_document_413_and_422(spec: dict[str, Any]) -> None:
    with_body = [(m, p, op) for m, p, op in _operations(spec) if "requestBody" in op]
    assert {("POST", "/v1/factors"), ("POST", "/v1/factors/{factor_id}/versions")} <= {(m, p) for m, p, _ in with_body}
    lacking = [(m, p) for m, p, op in with_body if not {"413", "422"} <= op["responses"].keys()]
    assert not lacking
    # The import reads its body itself; its operation still describes both accepted forms.
    imported = spec["paths"]["/v1/factors/import"]["post"]
    assert {"413", "415", "422"} <= imported["responses"].keys()
    assert set(imported["requestBody"]["content"]) == {"text/csv", "application/json"}


def test_declared_responses_all_appear(client: TestClient[Litestar], spec: dict[str, Any]) -> None:
    missing = []
    for method, path, handler in _handlers(client.app):
        documented = spec["paths"][path][method.lower()]["responses"]
        missing += [(method, path, code) for code in (handler.responses or {}) if str(code) not in documented]
    assert not missing


def test_declared_responses_keep_their_media_type(client: TestClient[Litestar], spec: dict[str, Any]) -> None:
    wrong = []
    problems = 0
    for method, path, handler in _handlers(client.app):
        documented = spec["paths"][path][method.lower()]["responses"]
        for code, declared in (handler.responses or {}).items():
            if declared.data_container is None:  # bodyless, e.g. 304 Not Modified
                assert "content" not in documented[str(code)]
                continue
            media_type = getattr(declared.media_type, "value", declared.media_type)
            problems += media_type == "application/problem+json"
            if media_type not in documented[str(code)].get("content", {}):
                wrong.append((method, path, code, media_type))
    assert not wrong
    assert problems > 20  # the access() declarations are problem+json


@pytest.mark.parametrize(("path", "marker"), [("/schema", "scalar"), ("/schema/swagger", "swagger")])
def test_interactive_pages_are_html(client: TestClient[Litestar], path: str, marker: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert marker in response.text.lower()
    assert "<title>carbonpuhui</title>" in response.text


def _api_md() -> str:
    for candidate in API_MD_CANDIDATES:
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8")
    pytest.skip("API.md (the shared contract) is not beside this checkout")


def _shape(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def test_api_md_factor_routes_are_in_the_schema(client: TestClient[Litestar], spec: dict[str, Any]) -> None:
    text = _api_md()
    section = text.split("\n## Factors", 1)[1].split("\n## ", 1)[0]
    routes = set(re.findall(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`?\s]*)", section))
    assert len(routes) >= 8, routes
    app_shapes = {_shape(p) for _m, p, _h in _handlers(client.app)}
    schema = {(m, _shape(p)) for m, p, _op in _operations(spec)}
    checked = [(m, p) for m, p in routes if _shape(p) in app_shapes]
    assert len(checked) >= 8, f"too few of API.md's factor routes exist in the app: {checked}"
    missing = [(m, p) for m, p in checked if (m, _shape(p)) not in schema]
    assert not missing, f"in API.md but not in the schema with that method: {missing}"
