"""A request id on every request: taken from a trusted caller's ``X-Request-ID`` or made here,
bound into every log line of the request, and returned in the response header, so a user's error
report and the server's logs meet on one id. Also the first look at a request: a ``Host`` that is
no host name (``host:port``, a port past 65535) is refused here, before anything parses the URL."""

from __future__ import annotations

import re
import uuid

import msgspec
import structlog
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "x-request-id"
_ACCEPTABLE = re.compile(r"[A-Za-z0-9._-]{8,64}")  # anything else could forge or flood log lines
# A host name or an IPv4/IPv6 address, and an optional port: what URLs, QR codes and cache keys hold.
HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9_.-]{1,253})(?::(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|"
                  r"6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4}))?")


def request_id_of(scope: Scope) -> str:
    """The request's id; errors raised before the middleware ran (no such route) get a fresh one."""
    state = scope.setdefault("state", {})
    return state.setdefault("request_id", uuid.uuid4().hex)


class RequestIdMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        sent = dict(scope["headers"]).get(HEADER.encode(), b"").decode("latin-1")
        request_id = sent if _ACCEPTABLE.fullmatch(sent) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        host = dict(scope["headers"]).get(b"host")
        if host is not None and not HOST.fullmatch(host.decode("latin-1")):
            await _refuse_host(scope, send, request_id)
            return

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableScopeHeaders.from_message(message)[HEADER] = request_id
            await send(message)

        # The route's path (never its query: that may carry personal data) and method go into every
        # log line of the request, the access-log line included.
        with structlog.contextvars.bound_contextvars(request_id=request_id, path=scope["path"], method=scope["method"]):
            await next_app(scope, receive, send_with_id)


async def _refuse_host(scope: Scope, send: Send, request_id: str) -> None:
    """A 400 problem, localised, written by hand: the app's own error path would parse the URL."""
    from carbonpuhui.errors import problem_type
    from carbonpuhui.i18n import N_, negotiate, translate

    headers = dict(scope["headers"])
    locale = negotiate(None, headers.get(b"accept-language", b"").decode("latin-1"),
                       getattr(scope["app"].state, "default_locale", "zh-Hans"))
    body = msgspec.json.encode({
        "type": problem_type(400), "title": translate(N_("Bad request"), locale), "status": 400,
        "detail": translate(N_("The Host header is not a valid host name."), locale), "reason": "invalid_host",
        "request_id": request_id})
    await send({"type": "http.response.start", "status": 400, "headers": [
        (b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode()),
        (HEADER.encode(), request_id.encode())]})
    await send({"type": "http.response.body", "body": body})
