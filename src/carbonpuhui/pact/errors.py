"""PACT's error bodies (``{"code", "message"}``) for the routes under ``/2/`` and ``/auth/token``.

The platform's own refusals on these routes (an invalid token, a malformed query) are rendered in
PACT's form too, so a PACT client only ever sees PACT's codes there.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from carbonpuhui.errors import ProblemError, request_locale
from carbonpuhui.i18n import N_, translate

log = logging.getLogger("carbonpuhui.pact")

# PACT Technical Specification v2.3, "Error responses": code -> HTTP status.
STATUS = {"AccessDenied": 403, "BadRequest": 400, "NoSuchFootprint": 404, "NotImplemented": 400,
          "TokenExpired": 401, "InternalError": 500}


class PactErrorBody(msgspec.Struct, kw_only=True):
    code: str
    message: str


class PactError(Exception):
    def __init__(self, code: str, message: str, status: int | None = None, **params: object) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.params = params
        self.status = status or STATUS[code]


def _response(request: Request[Any, Any, Any], code: str, message: str, status: int,
              headers: dict[str, str] | None = None, **params: object) -> Response[PactErrorBody]:
    text = translate(message, request_locale(request), **params)
    return Response(PactErrorBody(code=code, message=text), status_code=status, headers=headers or {},
                    media_type="application/json")


def handle_pact_error(request: Request[Any, Any, Any], exc: PactError) -> Response[PactErrorBody]:
    return _response(request, exc.code, exc.message, exc.status, **exc.params)


def handle_platform_error(request: Request[Any, Any, Any], exc: ProblemError) -> Response[PactErrorBody]:
    if exc.status_code == 401:
        # PACT's TokenExpired is for expiry alone; every other bad token is a BadRequest.
        if exc.message == N_("The token has expired."):
            return _response(request, "TokenExpired", exc.message, 401, exc.headers, **exc.params)
        return _response(request, "BadRequest", exc.message, 400, exc.headers, **exc.params)
    if exc.status_code == 403:
        return _response(request, "AccessDenied", exc.message, 403, **exc.params)
    if exc.status_code == 404:
        return _response(request, "NoSuchFootprint", exc.message, 404, **exc.params)
    if exc.status_code >= 500:
        return _response(request, "InternalError", exc.message, exc.status_code, exc.headers, **exc.params)
    return _response(request, "BadRequest", exc.message, 400, **exc.params)


def handle_http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[PactErrorBody]:
    if isinstance(exc, ValidationException):
        return _response(request, "BadRequest", N_("Some fields are invalid."), 400)
    if exc.status_code == 405:  # the HTTP status stays (with its Allow header); PACT has no code of its own
        return _response(request, "BadRequest", N_("This method is not allowed on this resource."), 405,
                         headers=dict(exc.headers or {}))
    if exc.status_code == 404:
        return _response(request, "NoSuchFootprint", N_("No resource exists at this address."), 404)
    if exc.status_code == 413:
        return _response(request, "BadRequest", N_("The request body exceeds the allowed size."), 413)
    if exc.status_code >= 500:
        log.error("PACT route failed: %s", exc)
        return _response(request, "InternalError", N_("An unexpected error occurred; it has been logged."), 500)
    return _response(request, "BadRequest", N_("The request is malformed."), 400)


def _reshaped(platform_handler: Any) -> Any:
    """The platform's handler for failures (database down, a collision, a bug) decides status,
    logging and Retry-After; the body becomes PACT's."""

    def handle(request: Request[Any, Any, Any], exc: Exception) -> Response[PactErrorBody]:
        problem = platform_handler(request, exc)
        status = problem.status_code
        headers = {k: v for k, v in problem.headers.items() if k.lower() == "retry-after"}
        detail = getattr(problem.content, "detail", None) or N_("An unexpected error occurred; it has been logged.")
        return Response(PactErrorBody(code="InternalError" if status >= 500 else "BadRequest", message=detail),
                        status_code=status, headers=headers, media_type="application/json")

    return handle


def _handlers() -> dict[type[Exception], Any]:
    from carbonpuhui.errors import exception_handlers as platform

    handlers: dict[type[Exception], Any] = {cls: _reshaped(fn) for cls, fn in platform.items()}
    handlers.update({PactError: handle_pact_error, ProblemError: handle_platform_error,
                     HTTPException: handle_http_error})
    return handlers


EXCEPTION_HANDLERS: dict[type[Exception], Any] = _handlers()
