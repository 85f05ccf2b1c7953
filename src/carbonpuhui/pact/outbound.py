"""Outbound PACT calls (supplier fetches, answers to clients' events): https to public addresses
only, checked at connect time, bounded in size and time."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
import msgspec

from carbonpuhui.errors import UnprocessableError
from carbonpuhui.i18n import N_
from carbonpuhui.settings import Settings

FETCH_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
MAX_FETCH_BYTES = 1_048_576
# The whole exchange with a supplier (or a client's callback): a host that trickles its answer a
# byte at a time never trips the per-read timeout, so the total is bounded as well.
FETCH_DEADLINE_SECONDS = 30.0


# IPv6 prefixes that carry an IPv4 address a gateway forwards to (NAT64, RFC 6052 and RFC 8215):
# ``is_global`` judges the IPv6 address, not the IPv4 one it reaches.
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if not address.is_global:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and (any(address in net for net in _NAT64) or int(address) >> 32 == 0):
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)  # NAT64, or IPv4-compatible
        if embedded is not None and not embedded.is_global:
            return False
    return True


def outbound_addresses(host: str, port: int, settings: Settings) -> list[str]:
    """The addresses ``host`` resolves to, all public (unless the deployment allows private ones)."""
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        raise UnprocessableError(N_("The supplier endpoint {host} could not be resolved."), reason="endpoint_unreachable",
                                 host=host) from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not settings.pact_outbound_private:
        for address in addresses:
            if not _is_public(ipaddress.ip_address(address)):
                raise UnprocessableError(N_("The supplier endpoint {host} is not a public address."),
                                         reason="endpoint_not_public", host=host)
    return addresses


def check_outbound(url: str, settings: Settings) -> None:
    """Outbound calls go to https:// on public addresses only, unless the deployment allows more
    (development and tests on loopback): a buyer must not make the platform probe its own network."""
    try:
        parts = urlsplit(url)
        port = parts.port or 443
    except ValueError:  # "https://[::1", a port past 65535 or not a number
        raise UnprocessableError(N_("The supplier endpoint {host} could not be resolved."), reason="endpoint_unreachable",
                                 host=url) from None
    if parts.scheme != "https" and not (settings.pact_allow_http and parts.scheme == "http"):
        raise UnprocessableError(N_("Supplier endpoints must use https."), reason="insecure_endpoint")
    outbound_addresses(parts.hostname or "", port, settings)


class _CheckedBackend(httpcore.AsyncNetworkBackend):
    """Resolves and checks at connect time, then connects to exactly the checked address: a name
    whose DNS answer changes after ``check_outbound`` (DNS rebinding) cannot reach a private host.
    TLS still verifies the certificate against the host name (httpcore sends it as SNI)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                          socket_options: Any = None) -> httpcore.AsyncNetworkStream:
        addresses = await asyncio.to_thread(outbound_addresses, host, port, self._settings)
        failure: Exception = httpcore.ConnectError(f"{host} has no address")
        for address in addresses:
            try:
                return await self._inner.connect_tcp(address, port, timeout=timeout, local_address=local_address,
                                                     socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Any = None) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("outbound PACT calls use TCP only")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def httpx_client(settings: Settings) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(verify=settings.pact_ca_bundle or True)
    # httpx has no public hook for the connection backend; fail loudly if its pool changes shape.
    pool = transport._pool  # noqa: SLF001
    if not hasattr(pool, "_network_backend"):
        raise RuntimeError("httpx/httpcore changed: outbound address checks cannot be installed")
    pool._network_backend = _CheckedBackend(settings)  # noqa: SLF001
    return httpx.AsyncClient(timeout=FETCH_TIMEOUT, transport=transport, follow_redirects=False)


async def read_bounded(response: httpx.Response, limit: int = MAX_FETCH_BYTES) -> bytes | None:
    """A streamed response's body, or None once it passes ``limit`` (read no further)."""
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


async def client_credentials_token(client: httpx.AsyncClient, base_url: str, client_id: str, secret: str) -> str:
    token_url = f"{base_url}/auth/token"
    try:
        async with client.stream("GET", f"{base_url}/.well-known/openid-configuration") as discovery:
            found_body = await read_bounded(discovery) if discovery.status_code == 200 else None
        if found_body is not None and isinstance(found := msgspec.json.decode(found_body).get("token_endpoint"), str):
            # Never follow discovery elsewhere, nor down to plain http: the secret goes there.
            if urlsplit(found)[:2] == urlsplit(base_url)[:2]:
                token_url = found
    except (httpx.HTTPError, ValueError, AttributeError):
        pass
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    async with client.stream("POST", token_url, data={"grant_type": "client_credentials"},
                             headers={"Authorization": f"Basic {basic}", "Accept": "application/json"}) as response:
        response.raise_for_status()
        body = await read_bounded(response)
    if body is None:
        raise ValueError("token response too large")
    return str(msgspec.json.decode(body)["access_token"])


async def fetch_supplier_footprint(supplier: Any, settings: Settings) -> bytes:
    base = supplier.base_url.rstrip("/")
    await asyncio.to_thread(check_outbound, base, settings)
    try:
        async with asyncio.timeout(FETCH_DEADLINE_SECONDS), httpx_client(settings) as client:
            token = await client_credentials_token(client, base, supplier.client_id, supplier.client_secret)
            async with client.stream("GET", f"{base}/2/footprints/{supplier.footprint_id}",
                                     headers={"Authorization": f"Bearer {token}"}) as response:
                status = response.status_code
                content = await read_bounded(response) if status == 200 else b""
    except (httpx.HTTPError, ValueError, KeyError, TypeError, TimeoutError) as exc:
        raise UnprocessableError(N_("The supplier endpoint could not be read: {problem}"),
                                 reason="endpoint_unreachable", problem=type(exc).__name__) from None
    if status != 200 or content is None:
        raise UnprocessableError(N_("The supplier endpoint answered {status}."), reason="endpoint_refused",
                                 status=status)
    try:
        data = msgspec.json.decode(content)["data"]
    except (msgspec.DecodeError, KeyError, TypeError):
        raise UnprocessableError(N_("The supplier endpoint answered {status}."), reason="endpoint_refused",
                                 status=status) from None
    return msgspec.json.encode(data)
