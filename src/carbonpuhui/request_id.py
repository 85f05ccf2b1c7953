"""A request id on every request: taken from a trusted caller's ``X-Request-ID`` or made here,
bound into every log line of the request, and returned in the response header, so a user's error
report and the server's logs meet on one id."""

from __future__ import annotations

import re
import uuid

import structlog
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "x-request-id"
_ACCEPTABLE = re.compile(r"[A-Za-z0-9._-]{8,64}")  # anything else could forge or flood log lines


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

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableScopeHeaders.from_message(message)[HEADER] = request_id
            await send(message)

        # The route's path (never its query: that may carry personal data) and method go into every
        # log line of the request, the access-log line included.
        with structlog.contextvars.bound_contextvars(request_id=request_id, path=scope["path"], method=scope["method"]):
            await next_app(scope, receive, send_with_id)
