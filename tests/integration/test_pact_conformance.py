"""The mandatory PACT v2.3 cases of the official conformance suite, run against a real server.

The suite (wbcsd/pact-conformance-service, TypeScript) cannot be fetched or run here, so its V2
test cases are re-implemented case by case from its definitions (``packages/test/src/test-cases/
v2-tests.ts``, ``docs/v2-test-cases-expected-results.md``, its callback listener): the same
requests (URLs, headers, bodies, CloudEvent ids ``<run>/13`` and ``<run>/14.B``) and the same
assertions. Where two published versions of the suite differ, the stricter of the two is asserted,
so passing here implies passing either. Cases 18, 19 and 20 are not mandatory for any version and
are left out.

Set-up, as the suite sees a host: ``carbonpuhui serve --tls-self-signed`` as a subprocess (HTTPS
only, embedded SQLite) with footprints seeded through the real API, a registered PACT client, and
a small HTTPS listener standing in for the suite's callback service (``/auth/token`` and
``/2/events``), whose certificate the server trusts through ``CARBONPUHUI_PACT_CA_BUNDLE``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import signal
import socket
import ssl
import string
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

from carbonpuhui.tls import self_signed

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pact"
PF_SCHEMA = json.loads((FIXTURES / "product-footprint-v2.3.schema.json").read_text(encoding="utf-8"))

# What the suite's callback listener accepts at its own /auth/token.
LISTENER_CLIENT_ID, LISTENER_CLIENT_SECRET = "test_client_id", "test_client_secret"
REQUEST_TIMEOUT = 5.0  # the suite's TESTCASE_TIMEOUT (ms 5000) per request
CALLBACK_TIMEOUT = 30.0  # how long a listener case waits for the platform's callback
SERVER_START_TIMEOUT = 90.0

CREATED = "org.wbcsd.pathfinder.ProductFootprintRequest.Created.v1"
FULFILLED = "org.wbcsd.pathfinder.ProductFootprintRequest.Fulfilled.v1"
REJECTED = "org.wbcsd.pathfinder.ProductFootprintRequest.Rejected.v1"
PUBLISHED = "org.wbcsd.pathfinder.ProductFootprint.Published.v1"


class PactConformanceWarning(UserWarning):
    """The suite's ``ctx.warn``: reported, never a failure."""


# --- schemas --------------------------------------------------------------------------------------

# The suite validates with Ajv plus ajv-formats, which checks these formats; jsonschema checks
# "date-time" and "uri" only with optional extras installed, so the checks are supplied here.
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_UUID = re.compile(r"^(?:urn:uuid:)?[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}$", re.IGNORECASE)
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s]*$")
FORMATS = FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _RFC3339.match(value):
        raise ValueError(f"{value!r} is not an RFC 3339 date-time")
    datetime.fromisoformat(value.upper().replace("Z", "+00:00"))  # a real calendar date and time
    return True


@FORMATS.checks("uuid")
def _uuid(value: object) -> bool:
    return not isinstance(value, str) or bool(_UUID.match(value))


@FORMATS.checks("uri")
def _uri(value: object) -> bool:
    return not isinstance(value, str) or bool(_URI.match(value))


# ProductFootprint: the project's schema transcribed from the v2.3 specification (an independent
# oracle, stricter than the suite's OpenAPI-derived one); the envelopes below follow the suite.
REGISTRY = Registry().with_resource(PF_SCHEMA["$id"], Resource.from_contents(PF_SCHEMA))
PF = {"$ref": PF_SCHEMA["$id"]}
LIST_FOOTPRINTS_RESPONSE = {"type": "object", "required": ["data"],
                            "properties": {"data": {"type": "array", "items": PF}}}
GET_FOOTPRINT_RESPONSE = {"type": "object", "required": ["data"], "properties": {"data": PF}}
SIMPLE_LIST_FOOTPRINTS_RESPONSE = {
    "type": "object", "required": ["data"],
    "properties": {"data": {"type": "array", "minItems": 1, "items": {
        "type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}}}}


def _event_schema(type_: str, data: dict[str, Any]) -> dict[str, Any]:
    # The suite's v2.3 RequestFulfilledEvent / RequestRejectedEvent, with the top-level attributes
    # its earlier fulfilled-event schema made mandatory.
    return {"type": "object", "required": ["type", "specversion", "id", "source", "time", "data"],
            "properties": {"type": {"type": "string", "const": type_}, "specversion": {"type": "string"},
                           "id": {"type": "string"}, "source": {"type": "string", "format": "uri"},
                           "time": {"type": "string", "format": "date-time"}, "data": data}}


FULFILLED_EVENT = _event_schema(FULFILLED, {
    "type": "object", "required": ["requestEventId", "pfs"],
    "properties": {"requestEventId": {"type": "string"}, "pfs": {"type": "array", "minItems": 1, "items": PF}}})
REJECTED_EVENT = _event_schema(REJECTED, {
    "type": "object", "required": ["requestEventId", "error"],
    "properties": {"requestEventId": {"type": "string"}, "error": {
        "type": "object", "required": ["code", "message"],
        "properties": {
            # The suite's Error schema (its openapi_v2_3.yaml) enumerates these codes.
            "code": {"type": "string", "enum": ["BadRequest", "AccessDenied", "TokenExpired", "NotFound",
                                                "InternalError", "NotImplemented"]},
            "message": {"type": "string"}}}}})


def assert_schema(data: Any, schema: dict[str, Any]) -> None:
    validator = Draft202012Validator(schema, registry=REGISTRY, format_checker=FORMATS)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    assert not errors, "Schema validation failed: " + ", ".join(
        f"{'/'.join(map(str, e.absolute_path)) or '$'}: {e.message}" for e in errors[:10])


def test_the_schemas_refuse_what_the_suite_refuses():
    """The oracle bites: a footprint without its pcf, an empty page, a rejection with a code the
    suite's schema does not list and an event with a non-URI source all fail validation."""
    for data, schema in [
        ({"data": {"id": str(uuid.uuid4())}}, GET_FOOTPRINT_RESPONSE),
        ({"data": []}, SIMPLE_LIST_FOOTPRINTS_RESPONSE),
        ({"type": REJECTED, "specversion": "1.0", "id": "x", "source": "urn:x", "time": "2025-01-01T00:00:00Z",
          "data": {"requestEventId": "r", "error": {"code": "Nope", "message": "m"}}}, REJECTED_EVENT),
        ({"type": REJECTED, "specversion": "1.0", "id": "x", "source": "not a uri", "time": "2025-01-01T00:00:00Z",
          "data": {"requestEventId": "r", "error": {"code": "BadRequest", "message": "m"}}}, REJECTED_EVENT),
        ({"type": REJECTED, "specversion": "1.0", "id": "x", "source": "urn:x", "time": "2025-02-30T00:00:00Z",
          "data": {"requestEventId": "r", "error": {"code": "BadRequest", "message": "m"}}}, REJECTED_EVENT),
    ]:
        with pytest.raises(AssertionError, match="Schema validation failed"):
            assert_schema(data, schema)


# --- the suite's helpers --------------------------------------------------------------------------


def random_string(length: int) -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(length))


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def correct_auth_headers(url: str, client_id: str, client_secret: str) -> dict[str, str]:
    return {"host": urlsplit(url).hostname or "", "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded", "Authorization": basic(client_id, client_secret)}


def incorrect_auth_headers(url: str) -> dict[str, str]:
    return {"host": urlsplit(url).hostname or "", "accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": basic(random_string(16), random_string(16))}


def parse_link_header(header: str | None) -> dict[str, str]:
    """RFC 8288 Link header -> {rel: url}, split the way the suite splits it."""
    links: dict[str, str] = {}
    for link in (header or "").split(", ") if header else []:
        match = re.search(r"<(.*)>;\s*rel=\"(.*)\"", link)
        if match:
            links[match.group(2)] = match.group(1)
    return links


def warn_unless_bad_request(case: str, response: Response) -> None:
    # The suite only warns when an invalid-token refusal carries another code than BadRequest.
    code = response.data.get("code") if isinstance(response.data, dict) else None
    if code != "BadRequest":
        warnings.warn(f"case {case}: expected error code BadRequest but received {code}", PactConformanceWarning,
                      stacklevel=2)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def assert_status(status: int, expected: int | list[int]) -> None:
    allowed = expected if isinstance(expected, list) else [expected]
    assert status in allowed, f"Expected value {status} to be in {allowed}"


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    text: str
    data: Any  # parsed only when the response says application/json, as the suite does


@dataclass
class Context:
    """The suite's TestContext: what the init case discovers, shared by the cases after it."""

    http: httpx.Client
    base_url: str
    client_id: str
    client_secret: str
    webhook_url: str
    run_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    auth_token_url: str = ""
    auth_request_data: str = ""
    access_token: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    footprints: list[dict[str, Any]] = field(default_factory=list)
    pagination_links: dict[str, str] = field(default_factory=dict)
    product_ids: list[str] = field(default_factory=list)  # the suite's testRun.data.productIds
    discovered: bool = False
    sent: set[str] = field(default_factory=set)

    def request(self, url: str, method: str, headers: dict[str, str] | None = None,
                body: Any = None) -> Response:
        effective = self.headers if headers is None else headers
        content = body if body is None or isinstance(body, str) else json.dumps(body, separators=(",", ":"))
        raw = self.http.request(method, url, headers=effective, content=content)
        headers_out = {k.lower(): v for k, v in raw.headers.items()}
        data = None
        if raw.text and "application/json" in headers_out.get("content-type", ""):
            data = raw.json()
        return Response(raw.status_code, headers_out, raw.text, data)


def pact_events_headers(ctx: Context) -> dict[str, str]:
    return {**ctx.headers, "Content-Type": "application/cloudevents+json; charset=UTF-8"}


# --- the listener (the suite's callback service) --------------------------------------------------


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class _ListenerHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Listener

    def setup(self) -> None:
        self.request.settimeout(10)
        self.request.do_handshake()  # in this thread, not in the accepting one
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any = None) -> None:
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        self._send(404, {"code": "NotFound"})  # no discovery document: clients fall back to /auth/token

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = urlsplit(self.path).path
        if path == "/auth/token":
            scheme, _, value = (self.headers.get("Authorization") or "").partition(" ")
            if scheme != "Basic":
                return self._send(400, {"code": "BadRequest"})
            try:
                decoded = base64.b64decode(value.strip()).decode("utf-8", "replace")
            except ValueError:
                decoded = ""
            user, _, password = decoded.partition(":")
            if (user, password) != (LISTENER_CLIENT_ID, LISTENER_CLIENT_SECRET):
                return self._send(400, {"code": "BadRequest"})
            return self._send(200, {"access_token": self.server.issue_token()})
        if path not in ("/2/events", "/3/events"):
            return self._send(404, {"code": "NotFound"})
        # The suite's JSON body parser reads these two media types only; anything else is no body.
        media = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        try:
            body = json.loads(raw) if media in ("application/json", "application/cloudevents+json") else None
        except ValueError:
            body = None
        self.server.record(Received("POST", path, {k.lower(): v for k, v in self.headers.items()}, body))
        request_event_id = (body.get("data") or {}).get("requestEventId") if isinstance(body, dict) else None
        if not request_event_id:
            return self._send(400, {"code": "BadRequest", "message": "Missing requestEventId in event data"})
        return self._send(200)


class Listener(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, cert: Path, key: Path) -> None:
        super().__init__(("127.0.0.1", 0), _ListenerHandler)
        self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._tls.load_cert_chain(cert, key)
        self._received: list[Received] = []
        self._tokens: list[str] = []
        self._changed = threading.Condition()

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.server_address[1]}"

    def get_request(self):  # type: ignore[no-untyped-def]
        sock, address = self.socket.accept()
        return self._tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up mid-handshake is not the test's business

    def issue_token(self) -> str:
        token = secrets.token_hex(24)
        with self._changed:
            self._tokens.append(token)
        return token

    def record(self, received: Received) -> None:
        with self._changed:
            self._received.append(received)
            self._changed.notify_all()

    def wait_for(self, match: Callable[[Received], bool], timeout: float) -> Received:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for item in self._received:
                    if match(item):
                        return item
                left = deadline - time.monotonic()
                assert left > 0, f"no matching callback within {timeout:.0f} s; received: {self._received!r}"
                self._changed.wait(left)


# --- the platform under test ----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _gs1(body: str) -> str:
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


@dataclass
class Platform:
    base_url: str
    server_cert: Path
    client_id: str
    client_secret: str
    listener: Listener
    gtins: list[str]


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "carbonpuhui.cli", *args], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, f"carbonpuhui {' '.join(args)} failed:\n{done.stderr}"
    return done.stdout.strip()


def _log_tail(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")[-4000:] if path.exists() else ""


def _seed(http: httpx.Client, base: str, admin: str, merchant: str) -> list[str]:
    """Factors, three products of "acme" with inventories, their footprints shared with "conformance"."""
    def call(method: str, path: str, token: str, body: Any, status: int) -> dict[str, Any]:
        response = http.request(method, f"{base}{path}", json=body, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == status, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    names = {"zh-Hans": "因子", "zh-Hant": "因子", "en": "Factor"}
    for factor_id, category, unit, value in [("conf-grid", "electricity.grid", "kWh", "0.5366"),
                                             ("conf-pig-iron", "iron.pig_iron", "kg", "1.85")]:
        call("POST", "/v1/factors", admin, {
            "id": factor_id, "names": names, "category": category, "unit": unit, "kgco2e_per_unit": value,
            "gwp_basis": "AR6", "region": "CN", "tier": "national", "valid_from": "2020-01-01",
            "source": "conformance test", "uncertainty": {"distribution": "lognormal", "gsd": 1.05},
            "data_quality": {"technological": 2, "geographical": 1, "time": 2, "precision": 3}}, 201)
        call("POST", f"/v1/factors/{factor_id}/versions/1/publish", admin, None, 200)
    gtins = []
    for i, name in enumerate(["Hot-rolled coil", "Cold-rolled coil", "Galvanised sheet"]):
        gtin = _gs1(f"690123456{780 + i}")
        gtins.append(gtin)
        call("POST", "/v1/merchant/products", merchant, {
            "gtin": gtin, "names": {"zh-Hans": name, "zh-Hant": name, "en": name},
            "category": "steel.hot_rolled_coil", "declared_unit": "kilogram", "declared_units_per_item": "1000"}, 201)
        call("PUT", f"/v1/merchant/products/{gtin}/inventory", merchant, {"lines": [
            {"stage": "raw_materials", "description": "pig iron", "quantity": str(900 + 10 * i), "unit": "g",
             "factor_id": "conf-pig-iron"},
            {"stage": "production", "description": "electricity", "quantity": str(0.4 + 0.05 * i), "unit": "kWh",
             "factor_id": "conf-grid", "primary": True}]}, 200)
        call("POST", f"/v1/merchant/products/{gtin}/pact-footprints", merchant, {
            "company_name": "Acme Steel Co.", "product_category_cpc": "41231", "shared_with": ["conformance"]}, 201)
    return gtins


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    root = tmp_path_factory.mktemp("pact-conformance")
    data_dir = root / "data"
    listener_cert, listener_key = self_signed(root / "listener-tls", ["127.0.0.1"])
    listener = Listener(listener_cert, listener_key)
    threading.Thread(target=listener.serve_forever, name="pact-listener", daemon=True).start()

    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONPUHUI_")}
    env.update(CARBONPUHUI_DATA_DIR=str(data_dir), CARBONPUHUI_PACT_OUTBOUND_PRIVATE="1",
               CARBONPUHUI_PACT_CA_BUNDLE=str(listener_cert))
    process: subprocess.Popen[bytes] | None = None
    log = root / "server.log"
    try:
        # Before the server starts: the CLI migrates the embedded database and creates the key.
        client = json.loads(_cli(env, "clients", "create", "--org", "conformance", "--callback-url",
                                 listener.base_url, "--callback-client-id", LISTENER_CLIENT_ID,
                                 "--callback-client-secret", LISTENER_CLIENT_SECRET))
        admin = _cli(env, "token", "--sub", "admin", "--role", "admin")
        merchant = _cli(env, "token", "--sub", "alice", "--role", "merchant", "--org", "acme")

        port = _free_port()
        with log.open("wb") as out:  # a file, not a pipe: a full pipe would stall the server
            process = subprocess.Popen(
                [sys.executable, "-m", "carbonpuhui.cli", "serve", "--tls-self-signed", "--port", str(port)],
                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        base = f"https://127.0.0.1:{port}"
        server_cert = data_dir / "tls" / "self-signed-cert.pem"
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            assert process.poll() is None, f"server exited:\n{_log_tail(log)}"
            assert time.monotonic() < deadline, f"server did not answer /healthz:\n{_log_tail(log)}"
            if server_cert.exists():
                try:
                    verify = ssl.create_default_context(cafile=str(server_cert))
                    if httpx.get(f"{base}/healthz", verify=verify, timeout=2).status_code == 200:
                        break
                except (httpx.HTTPError, ssl.SSLError, OSError):
                    pass
            time.sleep(0.3)
        with httpx.Client(verify=ssl.create_default_context(cafile=str(server_cert)), timeout=30) as http:
            gtins = _seed(http, base, admin, merchant)
        yield Platform(base, server_cert, client["client_id"], client["client_secret"], listener, gtins)
    finally:
        if process is not None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=20)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        listener.shutdown()
        listener.server_close()


# --- Test Case 0 (init) and the actions the plain-HTTP cases repeat --------------------------------


def initialize(ctx: Context) -> None:
    """Test Case 0: discovery (optional; falls back to /auth/token), a token by HTTP Basic, the
    footprints (at least two), and the Link header of ``?limit=1`` for case 5."""
    openid_config_url = f"{ctx.base_url}/.well-known/openid-configuration"
    ctx.auth_token_url = f"{ctx.base_url}/auth/token"
    try:
        discovery = ctx.request(openid_config_url, "GET", {})
        if discovery.status == 200 and isinstance(discovery.data, dict) and discovery.data.get("token_endpoint"):
            ctx.auth_token_url = discovery.data["token_endpoint"]
            ctx.discovered = True
    except (httpx.HTTPError, ValueError):
        pass  # discovery is optional
    ctx.auth_request_data = "grant_type=client_credentials"
    token = ctx.request(ctx.auth_token_url, "POST", {
        "Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded",
        "Authorization": basic(ctx.client_id, ctx.client_secret)}, ctx.auth_request_data)
    assert_status(token.status, 200)
    assert isinstance(token.data, dict) and token.data.get("access_token"), \
        "Access token was not present in the auth token response"
    ctx.access_token = token.data["access_token"]
    ctx.headers = {"Content-Type": "application/json", "Authorization": f"Bearer {ctx.access_token}"}

    listed = ctx.request(f"{ctx.base_url}/2/footprints", "GET")
    ctx.footprints = (listed.data.get("data") if isinstance(listed.data, dict) else None) or []
    assert len(ctx.footprints) >= 2, "At least two footprints are required to run the tests"
    page = ctx.request(f"{ctx.base_url}/2/footprints?limit=1", "GET")
    ctx.pagination_links = parse_link_header(page.headers.get("link"))
    assert ctx.footprints[0].get("productIds"), "Footprints must contain at least one product ID"
    ctx.product_ids = list(ctx.footprints[0]["productIds"])


def obtain_auth_token_with_valid_credentials(ctx: Context) -> None:  # Test Case 1
    headers = correct_auth_headers(ctx.base_url, ctx.client_id, ctx.client_secret)
    response = ctx.request(ctx.auth_token_url, "POST", headers, ctx.auth_request_data)
    assert_status(response.status, 200)


def get_pcf_using_get_footprint(ctx: Context) -> None:  # Test Case 3
    footprint_id = ctx.footprints[0]["id"]
    response = ctx.request(f"{ctx.base_url}/2/footprints/{footprint_id}", "GET")
    assert_status(response.status, 200)
    assert response.data, "Expected JSON response body, but got none"
    assert_schema(response.data, GET_FOOTPRINT_RESPONSE)
    assert response.data["data"]["id"] == footprint_id, \
        f"Returned footprint does not match the requested footprint with id {footprint_id}"


def get_all_pcfs_using_list_footprints(ctx: Context) -> None:  # Test Case 4
    response = ctx.request(f"{ctx.base_url}/2/footprints", "GET")
    assert_status(response.status, [200, 202])
    assert response.data, "Expected JSON response body, but got none"
    assert_schema(response.data, LIST_FOOTPRINTS_RESPONSE)
    assert len(response.data["data"]) == len(ctx.footprints), "Number of footprints does not match"


def receive_notification_of_pcf_update(ctx: Context) -> None:  # Test Case 15
    body = {"type": PUBLISHED, "specversion": "1.0", "id": str(uuid.uuid4()), "source": ctx.webhook_url,
            "time": now_iso(), "data": {"pfIds": ["3a6c14a7-4deb-498a-b5ea-16ce2535b576"]}}
    response = ctx.request(f"{ctx.base_url}/2/events", "POST", pact_events_headers(ctx), body)
    assert_status(response.status, 200)


def send_async_pcf_request(ctx: Context) -> None:  # Test Case 12
    body = {"specversion": "1.0", "id": f"{ctx.run_id}/13", "source": ctx.webhook_url, "time": now_iso(),
            "type": CREATED, "data": {"pf": {"productIds": ctx.footprints[0]["productIds"]},
                                      "comment": "Please send PCF data for this year."}}
    response = ctx.request(f"{ctx.base_url}/2/events", "POST", pact_events_headers(ctx), body)
    assert_status(response.status, 200)
    ctx.sent.add("12")


def send_async_request_to_be_rejected(ctx: Context) -> None:  # Test Case 14.A
    body = {"specversion": "1.0", "id": f"{ctx.run_id}/14.B", "source": ctx.webhook_url, "time": now_iso(),
            "type": CREATED, "data": {"pf": {"productIds": ["urn:pact:null"]},
                                      "comment": "Please send PCF data for this year."}}
    response = ctx.request(f"{ctx.base_url}/2/events", "POST", pact_events_headers(ctx), body)
    assert_status(response.status, 200)
    ctx.sent.add("14.A")


def threw_over_plain_http(action: Callable[[], None]) -> BaseException | None:
    """The suite's ``try { await action(ctx) } catch { threw = true }``: the exception, if any."""
    try:
        action()
    except Exception as exc:  # noqa: BLE001 - any failure is what the suite counts
        return exc
    return None


def assert_refused_over_http(exc: BaseException | None, what: str) -> None:
    assert exc is not None, f"{what} unexpectedly succeeded over HTTP"
    # Beyond the suite: the port speaks TLS only, so nothing answered in plain HTTP at all.
    assert isinstance(exc, httpx.TransportError), f"{what} over HTTP failed, but not at the transport: {exc!r}"


@pytest.fixture(scope="module")
def ctx(platform: Platform) -> Iterator[Context]:
    verify = ssl.create_default_context(cafile=str(platform.server_cert))
    with httpx.Client(verify=verify, timeout=REQUEST_TIMEOUT) as http:
        context = Context(http=http, base_url=platform.base_url, client_id=platform.client_id,
                          client_secret=platform.client_secret, webhook_url=platform.listener.base_url)
        initialize(context)
        yield context


# --- the cases ------------------------------------------------------------------------------------


def test_case_00_initialize_test_run(ctx: Context, platform: Platform):
    assert ctx.discovered and ctx.auth_token_url == f"{platform.base_url}/auth/token"
    assert ctx.access_token
    assert sorted(pf["productIds"][0] for pf in ctx.footprints) == sorted(f"urn:gtin:{g.zfill(14)}"
                                                                         for g in platform.gtins)
    assert list(ctx.pagination_links) == ["next"]
    assert ctx.product_ids == ctx.footprints[0]["productIds"]


def test_case_01_obtain_auth_token_with_valid_credentials(ctx: Context):
    obtain_auth_token_with_valid_credentials(ctx)


def test_case_02_obtain_auth_token_with_invalid_credentials(ctx: Context):
    response = ctx.request(ctx.auth_token_url, "POST", incorrect_auth_headers(ctx.base_url), ctx.auth_request_data)
    assert_status(response.status, [400, 401])


def test_case_03_get_pcf_using_get_footprint(ctx: Context):
    get_pcf_using_get_footprint(ctx)


def test_case_04_get_all_pcfs_using_list_footprints(ctx: Context):
    get_all_pcfs_using_list_footprints(ctx)


def test_case_05_pagination_link_implementation(ctx: Context):
    pagination_url = next(iter(ctx.pagination_links.values()), None)
    assert pagination_url, "No pagination link found"
    response = ctx.request(pagination_url, "GET")
    assert_status(response.status, 200)
    assert response.data, "Expected JSON response body, but got none"
    assert_schema(response.data, SIMPLE_LIST_FOOTPRINTS_RESPONSE)


@pytest.mark.parametrize("case, path", [("6", "/2/footprints"), ("7", "/2/footprints/{id}")])
def test_case_06_07_footprints_with_invalid_token(ctx: Context, case: str, path: str):
    headers = {**ctx.headers, "Authorization": f"Bearer very-invalid-access-token-{random_string(16)}"}
    url = ctx.base_url + path.format(id=ctx.footprints[0]["id"])
    response = ctx.request(url, "GET", headers)
    assert_status(response.status, [400, 401])
    warn_unless_bad_request(case, response)


def test_case_08_get_footprint_with_non_existent_pfid(ctx: Context):
    response = ctx.request(f"{ctx.base_url}/2/footprints/00000000-0000-0000-0000-000000000000", "GET")
    assert_status(response.status, [400, 404])
    code = response.data.get("code") if isinstance(response.data, dict) else None
    assert code in ("NoSuchFootprint", "BadRequest"), "Expected error code NoSuchFootprint or BadRequest in response"


def test_case_09_authentication_through_http(ctx: Context):
    old = ctx.auth_token_url
    ctx.auth_token_url = old.replace("https", "http", 1)
    try:
        exc = threw_over_plain_http(lambda: obtain_auth_token_with_valid_credentials(ctx))
    finally:
        ctx.auth_token_url = old
    assert_refused_over_http(exc, "Auth token request")


@pytest.mark.parametrize("case, action", [("10", get_all_pcfs_using_list_footprints),
                                          ("11", get_pcf_using_get_footprint),
                                          ("17", receive_notification_of_pcf_update)])
def test_case_10_11_17_api_through_http(ctx: Context, case: str, action: Callable[[Context], None]):
    old = ctx.base_url
    ctx.base_url = old.replace("https", "http", 1)
    try:
        exc = threw_over_plain_http(lambda: action(ctx))
    finally:
        ctx.base_url = old
    assert_refused_over_http(exc, f"case {case}")


def test_case_12_send_async_pcf_request(ctx: Context):
    send_async_pcf_request(ctx)


def test_case_13_received_request_fulfilled_response(ctx: Context, platform: Platform):
    if "12" not in ctx.sent:  # run on its own: case 12 first, as the suite always does
        send_async_pcf_request(ctx)
    event = platform.listener.wait_for(
        lambda r: isinstance(r.body, dict) and (r.body.get("data") or {}).get("requestEventId") == f"{ctx.run_id}/13",
        CALLBACK_TIMEOUT)
    assert event.path == "/2/events", "Callback received on incorrect path"
    assert_schema(event.body, FULFILLED_EVENT)
    received = [pid for pf in event.body["data"]["pfs"] for pid in pf["productIds"]]
    for product_id in received:
        assert product_id in ctx.product_ids, f"Received product ID {product_id} was not in the original request"
    assert any(pid in received for pid in ctx.product_ids), (
        f"Product IDs do not match, the request was made for productIds {ctx.product_ids} but received "
        f"data for productIds {received}")


def test_case_14a_send_async_request_to_be_rejected(ctx: Context):
    send_async_request_to_be_rejected(ctx)


def test_case_14b_handle_rejected_pcf_request(ctx: Context, platform: Platform):
    if "14.A" not in ctx.sent:
        send_async_request_to_be_rejected(ctx)
    event = platform.listener.wait_for(
        lambda r: isinstance(r.body, dict)
        and (r.body.get("data") or {}).get("requestEventId") == f"{ctx.run_id}/14.B",
        CALLBACK_TIMEOUT)
    assert event.path == "/2/events", f"Invalid request path: expected /2/events, but received {event.path}"
    assert_schema(event.body, REJECTED_EVENT)
    error = event.body["data"]["error"]
    assert error.get("code") and error.get("message"), \
        "Rejected event must contain an error object with a code and message"


def test_case_15_receive_notification_of_pcf_update(ctx: Context):
    receive_notification_of_pcf_update(ctx)


def test_case_16_action_events_with_invalid_token(ctx: Context):
    headers = {**ctx.headers, "Authorization": f"Bearer very-invalid-access-token-{random_string(16)}",
               "Content-Type": "application/cloudevents+json; charset=UTF-8"}
    body = {"type": PUBLISHED, "specversion": "1.0", "id": f"{ctx.run_id}/16", "source": ctx.webhook_url,
            "time": now_iso(), "data": {"pfIds": ["3a6c14a7-4deb-498a-b5ea-16ce2535b576"]}}
    response = ctx.request(f"{ctx.base_url}/2/events", "POST", headers, body)
    assert_status(response.status, [400, 401])
    warn_unless_bad_request("16", response)


def test_case_20_get_filtered_list_of_footprints(ctx: Context):
    # Not mandatory for any version; the platform supports it, so it is held to the suite's check.
    created = ctx.footprints[0]["created"]
    url = f"{ctx.base_url}/2/footprints?$filter={quote(f'created ge {chr(39)}{created}{chr(39)}')}"
    response = ctx.request(url, "GET")
    assert_status(response.status, 200)
    assert response.data, "Expected JSON response body, but got none"
    assert_schema(response.data, SIMPLE_LIST_FOOTPRINTS_RESPONSE)
    assert response.data["data"], "the footprint the filter was built from must match it"
    assert all(pf["created"] >= created for pf in response.data["data"]), \
        f"One or more footprints do not match the condition: 'created date >= {created}'"


def test_case_21_failed_published_event_malformed_request(ctx: Context):
    body = {"type": PUBLISHED, "specversion": "1.0", "id": str(uuid.uuid4()), "source": ctx.webhook_url,
            "time": now_iso(), "data": {"pfIds": ["urn:gtin:4712345060507"]}}
    response = ctx.request(f"{ctx.base_url}/2/events", "POST", pact_events_headers(ctx), body)
    assert_status(response.status, 400)
