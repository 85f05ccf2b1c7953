"""Who may call what, route by route.

``EXPECTED`` is the reviewed access table. The app's declared ``opt["access"]`` must equal it, so a
route added without an entry here (or with a changed declaration) fails until the table is updated.
Then every protected route is called with a token of each single role, and anonymously.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.routes import HTTPRoute

from carbonpuhui.auth.access import AUTHENTICATED, PACT_CLIENT, PUBLIC, ROLES

ADMIN = frozenset({"admin"})
MERCHANT = frozenset({"merchant"})
CONSUMER = frozenset({"consumer"})  # a person's own credits, trips and data: never another role's business
INVENTORY_READERS = frozenset({"merchant", "verifier", "admin"})  # narrowed to owner / assigned body by the service
VERIFIER = frozenset({"verifier"})
LABEL_MANAGERS = frozenset({"merchant", "verifier", "admin"})  # narrowed to issuing body / owner by the service

EXPECTED: dict[tuple[str, str], str | frozenset[str]] = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/.well-known/jwks.json"): PUBLIC,
    ("GET", "/v1/me"): AUTHENTICATED,
    ("GET", "/v1/factors"): PUBLIC,
    ("POST", "/v1/factors"): ADMIN,
    ("GET", "/v1/factors/resolve"): PUBLIC,
    ("POST", "/v1/factors/import"): ADMIN,
    ("GET", "/v1/factors/{factor_id}"): PUBLIC,
    ("GET", "/v1/factors/{factor_id}/versions"): PUBLIC,
    ("POST", "/v1/factors/{factor_id}/versions"): ADMIN,
    ("GET", "/v1/factors/{factor_id}/versions/{version}"): PUBLIC,
    ("POST", "/v1/factors/{factor_id}/versions/{version}/publish"): ADMIN,
    ("POST", "/v1/factors/{factor_id}/versions/{version}/retire"): ADMIN,
    ("POST", "/v1/merchant/products"): MERCHANT,
    ("GET", "/v1/merchant/products"): MERCHANT,
    ("GET", "/v1/merchant/products/{gtin}"): MERCHANT,
    ("PUT", "/v1/merchant/products/{gtin}/inventory"): MERCHANT,
    ("GET", "/v1/merchant/products/{gtin}/inventory"): INVENTORY_READERS,
    ("GET", "/v1/merchant/products/{gtin}/footprint"): INVENTORY_READERS,
    ("POST", "/v1/merchant/products/{gtin}/footprint/refresh"): MERCHANT,
    ("POST", "/v1/merchant/products/{gtin}/verifiers"): MERCHANT,
    ("DELETE", "/v1/merchant/products/{gtin}/verifiers/{body_org}"): MERCHANT,
    ("GET", "/v1/products/{gtin}"): PUBLIC,
    # --- labels (issue 4) ---
    ("PUT", "/v1/benchmarks/{category}"): ADMIN,
    ("GET", "/v1/benchmarks/{category}"): PUBLIC,
    ("GET", "/v1/benchmarks"): PUBLIC,
    ("GET", "/v1/certification/applications"): VERIFIER,
    ("POST", "/v1/certification/applications/{application_id}/decision"): VERIFIER,
    ("GET", "/v1/labels/{label_id}"): PUBLIC,
    ("POST", "/v1/labels/{label_id}/revoke"): LABEL_MANAGERS,
    ("GET", "/v1/labels/{label_id}/history"): LABEL_MANAGERS,
    ("POST", "/v1/merchant/products/{gtin}/label-applications"): MERCHANT,
    ("POST", "/v1/merchant/products/{gtin}/self-declared-label"): MERCHANT,
    ("POST", "/v1/merchant/products/{gtin}/label-applications/{application_id}/withdraw"): MERCHANT,
    ("GET", "/v1/products/{gtin}/label.svg"): PUBLIC,
    ("GET", "/v1/products/{gtin}/alternatives"): PUBLIC,
    ("GET", "/01/{gtin}"): PUBLIC,
    ("POST", "/v1/merchant/listings"): MERCHANT,
    ("DELETE", "/v1/merchant/listings/{listing_id}"): MERCHANT,
    ("GET", "/v1/listings"): PUBLIC,
    # --- procurement (issue 6) ---
    ("POST", "/v1/tenders"): frozenset({"officer"}),
    ("GET", "/v1/tenders"): PUBLIC,
    ("GET", "/v1/tenders/{tender_id}"): PUBLIC,
    ("POST", "/v1/tenders/{tender_id}/bids"): MERCHANT,
    ("GET", "/v1/tenders/{tender_id}/bids"): frozenset({"officer", "merchant"}),  # narrowed by the service
    ("GET", "/v1/tenders/{tender_id}/bids/{bid_id}"): frozenset({"officer", "merchant"}),
    ("POST", "/v1/tenders/{tender_id}/evaluation"): frozenset({"officer"}),
    ("GET", "/v1/tenders/{tender_id}/report.csv"): frozenset({"officer"}),
    ("GET", "/v1/tenders/{tender_id}/report.svg"): frozenset({"officer"}),
    # --- credits (issue 5) ---
    ("POST", "/v1/merchant/receipt-keys"): MERCHANT,
    ("GET", "/v1/merchant/receipt-keys"): MERCHANT,
    ("DELETE", "/v1/merchant/receipt-keys/{kid}"): MERCHANT,
    ("POST", "/v1/credits/purchases"): CONSUMER,
    ("POST", "/v1/credits/trips"): CONSUMER,
    ("GET", "/v1/wallet"): CONSUMER,
    ("GET", "/v1/wallet/entries"): CONSUMER,
    ("POST", "/v1/wallet/redemptions"): CONSUMER,
    ("POST", "/v1/merchant/rewards"): MERCHANT,
    ("GET", "/v1/rewards"): PUBLIC,
    ("GET", "/v1/leaderboard"): CONSUMER,
    ("GET", "/v1/me/export"): CONSUMER,
    ("DELETE", "/v1/me"): CONSUMER,
    ("POST", "/v1/merchant/products/{gtin}/pact-footprints"): MERCHANT,
    ("GET", "/v1/merchant/pact-footprints"): MERCHANT,
    ("PUT", "/v1/merchant/pact-footprints/{footprint_id}/sharing"): MERCHANT,
    ("POST", "/v1/merchant/pact-imports"): MERCHANT,
    # --- statistics (issue 8) ---
    ("PUT", "/v1/organisations/{org}"): ADMIN,
    ("GET", "/v1/organisations"): frozenset({"admin", "officer"}),
    ("GET", "/v1/organisations/{org}"): AUTHENTICATED,  # admin, officer or the org's own members; else 404
    ("POST", "/v1/organisations/{org}/sites"): frozenset({"admin", "merchant"}),  # a merchant of that org only
    ("GET", "/v1/organisations/{org}/sites"): AUTHENTICATED,  # as the profile read
    ("POST", "/v1/merchant/export-shipments"): MERCHANT,
    ("POST", "/v1/merchant/export-shipments/import"): MERCHANT,
    ("GET", "/v1/merchant/export-shipments"): MERCHANT,
    ("DELETE", "/v1/merchant/export-shipments/batches/{batch_id}"): MERCHANT,
    ("PATCH", "/v1/merchant/products/{gtin}"): MERCHANT,
    ("POST", "/v1/tenders/{tender_id}/award"): frozenset({"officer"}),  # the tender's agency only
    ("GET", "/v1/stats/indicators"): PUBLIC,  # suppressed-safe; officers see their own agency's figures too
    ("POST", "/v1/stats/reports"): frozenset({"officer", "admin"}),  # an officer of an agency in the city
    ("GET", "/v1/stats/reports"): PUBLIC,
    ("GET", "/v1/stats/reports/{city}/{quarter}"): PUBLIC,
    ("GET", "/v1/stats/reports/{city}/{quarter}/draft"): frozenset({"officer", "admin"}),
    ("POST", "/auth/token"): PUBLIC,
    ("GET", "/.well-known/openid-configuration"): PUBLIC,
    # PACT routes take PACT client tokens only and answer in PACT's error format: their matrix is
    # in tests/api/test_pact_api.py.
    ("GET", "/2/footprints"): PACT_CLIENT,
    ("GET", "/2/footprints/{footprint_id}"): PACT_CLIENT,
    ("POST", "/2/events"): PACT_CLIENT,
}
PROTECTED = sorted(key for key, rule in EXPECTED.items() if rule not in (PUBLIC, PACT_CLIENT))
PUBLIC_ROUTES = sorted(key for key, rule in EXPECTED.items() if rule == PUBLIC)
NIL_UUID = "00000000-0000-4000-8000-000000000000"
DUMMY_PARAMS = {"{factor_id}": "x", "{version}": "1", "{gtin}": "06901234567892", "{body_org}": "cb",
                "{footprint_id}": NIL_UUID, "{gtin14}": "06901234567892", "{category}": "steel.hot_rolled_coil",
                "{label_id}": NIL_UUID, "{application_id}": NIL_UUID, "{listing_id}": NIL_UUID,
                "{tender_id}": NIL_UUID, "{bid_id}": NIL_UUID, "{kid}": "x",
                "{org}": "acme", "{batch_id}": NIL_UUID, "{city}": "370600", "{quarter}": "2025Q1"}


def _is_schema(path: str) -> bool:
    return path == "/schema" or path.startswith("/schema/")


def _is_auto_options(handler: HTTPRouteHandler) -> bool:
    # Litestar adds an OPTIONS (CORS preflight) handler to every path; the app declares none itself.
    return handler.http_methods == {"OPTIONS"} and handler.fn.__qualname__.startswith(
        "HTTPRoute.create_options_handler")


def handlers(app: Litestar) -> Iterator[tuple[str, str, Any]]:
    """(method, path, handler) for every handler the app routes, /schema and auto-OPTIONS aside."""
    for route in app.routes:
        if _is_schema(route.path):
            continue
        assert isinstance(route, HTTPRoute), f"unexpected {type(route).__name__} at {route.path}"
        for handler in route.route_handlers:
            if _is_auto_options(handler):
                continue
            for method in sorted(handler.http_methods):
                yield method, route.path_format, handler


def normalise(rule: object) -> str | frozenset[str]:
    if rule in (PUBLIC, AUTHENTICATED, PACT_CLIENT):
        return rule  # type: ignore[return-value]
    assert isinstance(rule, tuple) and rule, f"access must be public, authenticated or roles, not {rule!r}"
    assert set(rule) <= set(ROLES), f"unknown roles in {rule!r}"
    return frozenset(rule)


def url(path: str) -> str:
    for placeholder, value in DUMMY_PARAMS.items():
        path = path.replace(placeholder, value)
    assert "{" not in path, f"no dummy value for a parameter in {path}"
    return path


def allowed(rule: str | frozenset[str], role: str) -> bool:
    return rule == AUTHENTICATED or (isinstance(rule, frozenset) and role in rule)


# --- the declarations ---------------------------------------------------------------------------


def test_every_handler_declares_access(app: Litestar) -> None:
    missing = [f"{method} {path}" for method, path, handler in handlers(app) if "access" not in handler.opt]
    assert missing == []


def test_declared_access_matches_the_reviewed_table(app: Litestar) -> None:
    declared: dict[tuple[str, str], str | frozenset[str]] = {}
    for method, path, handler in handlers(app):
        assert (method, path) not in declared, f"{method} {path} is routed twice"
        declared[(method, path)] = normalise(handler.opt.get("access"))
    assert declared == EXPECTED


def test_only_litestar_options_handlers_are_exempt(app: Litestar) -> None:
    undeclared = [(route.path, handler) for route in app.routes if not _is_schema(route.path)
                  for handler in route.route_handlers if "access" not in handler.opt]
    assert undeclared  # Litestar does add them, so the exemption filter is exercised
    assert [(path, h) for path, h in undeclared if not _is_auto_options(h)] == []


def test_options_preflight_needs_no_token(client) -> None:
    # CORS preflights carry no credentials; the auth middleware leaves OPTIONS alone.
    for _method, path in PROTECTED:
        assert client.options(url(path), headers={"Authorization": "Bearer garbage"}).status_code == 204


def test_openapi_documents_401_and_403(client) -> None:
    paths = client.get("/schema/openapi.json").json()["paths"]
    for (method, path), rule in EXPECTED.items():
        if path == "/metrics":
            continue  # excluded from the schema
        responses = paths[path][method.lower()]["responses"]
        assert "401" in responses, f"{method} {path}"
        assert ("403" in responses) == (isinstance(rule, frozenset) or rule == PACT_CLIENT), f"{method} {path}"


# --- the behaviour ------------------------------------------------------------------------------


def request(client, method: str, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    # No body: the guard runs before the body is read or validated.
    return client.request(method, url(path), headers=headers)


@pytest.mark.parametrize(("method", "path"), PROTECTED, ids=lambda v: v if isinstance(v, str) else None)
def test_each_role_alone(client, auth, method: str, path: str) -> None:
    rule = EXPECTED[(method, path)]
    for role in ROLES:
        response = request(client, method, path, auth(role))
        if allowed(rule, role):
            assert response.status_code not in (401, 403), f"{role} on {method} {path}: {response.text}"
            assert response.status_code < 500, f"{role} on {method} {path}: {response.text}"
        else:
            assert response.status_code == 403, f"{role} on {method} {path}: {response.status_code}"
            body = response.json()
            assert body["reason"] == "missing_role"
            assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(("method", "path"), PROTECTED, ids=lambda v: v if isinstance(v, str) else None)
def test_no_roles_and_all_roles(client, auth, method: str, path: str) -> None:
    rule = EXPECTED[(method, path)]
    no_roles = request(client, method, path, auth())
    if rule == AUTHENTICATED:
        assert no_roles.status_code not in (401, 403)
    else:
        assert no_roles.status_code == 403
        assert no_roles.json()["reason"] == "missing_role"
    every_role = request(client, method, path, auth(*ROLES))
    assert every_role.status_code not in (401, 403)


@pytest.mark.parametrize(("method", "path"), PROTECTED, ids=lambda v: v if isinstance(v, str) else None)
def test_anonymous_is_401_on_protected_routes(client, method: str, path: str) -> None:
    response = request(client, method, path)
    assert response.status_code == 401
    assert response.json()["reason"] == "missing_token"
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "path"), PUBLIC_ROUTES, ids=lambda v: v if isinstance(v, str) else None)
def test_public_routes_never_refuse_anonymous(client, method: str, path: str) -> None:
    response = request(client, method, path)
    assert response.status_code not in (401, 403), response.text
    assert response.status_code < 500, response.text


@pytest.mark.parametrize(("method", "path"), PUBLIC_ROUTES, ids=lambda v: v if isinstance(v, str) else None)
def test_public_routes_accept_any_role(client, auth, method: str, path: str) -> None:
    for role in ROLES:
        assert request(client, method, path, auth(role)).status_code not in (401, 403), role
