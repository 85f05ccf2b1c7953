"""Errors as RFC 9457 problem details, localised by the request's language.

Domain code raises ``ProblemError`` subclasses with an English message id and parameters; the
handlers here render every error, including framework ones, as ``application/problem+json``.
"""

from __future__ import annotations

import logging
import re
import traceback
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from carbonpuhui.i18n import N_, negotiate, translate
from carbonpuhui.request_id import request_id_of

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("carbonpuhui.errors")


class FieldError(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One invalid input: ``field`` (a dotted path, or null for the body as a whole) is always
    present; ``line`` only for file imports."""

    field: str | None
    message: str
    line: int | None = None


class Problem(msgspec.Struct, kw_only=True, omit_defaults=True):
    """An RFC 9457 problem details object."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    reason: str | None = None
    errors: list[FieldError] | None = None


# Titles per status; their slugs make the problem ``type`` URIs.
_TITLES: dict[int, tuple[str, str]] = {
    400: ("bad-request", N_("Bad request")),
    401: ("unauthorized", N_("Authentication required")),
    403: ("forbidden", N_("Forbidden")),
    404: ("not-found", N_("Not found")),
    405: ("method-not-allowed", N_("Method not allowed")),
    406: ("not-acceptable", N_("Not acceptable")),
    409: ("conflict", N_("Conflict")),
    413: ("payload-too-large", N_("Request body too large")),
    415: ("unsupported-media-type", N_("Unsupported media type")),
    422: ("validation-failed", N_("The request could not be processed")),
    429: ("too-many-requests", N_("Too many requests")),
    500: ("internal-error", N_("Internal error")),
    503: ("service-unavailable", N_("Service unavailable")),
}

_GENERIC_DETAIL: dict[int, str] = {
    400: N_("The request is malformed."),
    401: N_("A valid bearer token is required."),
    403: N_("Your token does not grant access to this resource."),
    404: N_("No resource exists at this address."),
    405: N_("This method is not allowed on this resource."),
    406: N_("No acceptable representation is available."),
    409: N_("The request conflicts with the current state of the resource."),
    413: N_("The request body exceeds the allowed size."),
    415: N_("This media type is not supported here."),
    422: N_("Some fields are invalid."),
    429: N_("Too many requests; try again later."),
    500: N_("An unexpected error occurred; it has been logged."),
    503: N_("A service the platform depends on is unavailable."),
}


def problem_type(status: int) -> str:
    slug = _TITLES.get(status, ("error", ""))[0]
    return f"urn:carbonpuhui:problem:{slug}"


class ProblemError(Exception):
    """A domain refusal with its own status code, message id and optional ``reason`` code."""

    status_code: int = 400

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        errors: list[FieldError] | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        **params: object,
    ) -> None:
        super().__init__(message.format(**params) if params else message)
        self.message = message
        self.params = params
        self.reason = reason
        self.errors = errors
        self.extra = extra
        self.headers = headers or {}


class BadRequestError(ProblemError):
    status_code = 400


class UnauthorizedError(ProblemError):
    status_code = 401


class ForbiddenError(ProblemError):
    status_code = 403


class NotFoundError(ProblemError):
    status_code = 404


class ConflictError(ProblemError):
    status_code = 409


class UnsupportedMediaTypeError(ProblemError):
    status_code = 415


class UnprocessableError(ProblemError):
    status_code = 422


class TooManyRequestsError(ProblemError):
    status_code = 429


class ServiceUnavailableError(ProblemError):
    status_code = 503


def request_locale(request: Request[Any, Any, Any]) -> str:
    default = getattr(request.app.state, "default_locale", "zh-Hans")
    return negotiate(request.query_params.get("lang"), request.headers.get("accept-language"), default)


def problem_response(
    request: Request[Any, Any, Any],
    status: int,
    message: str | None = None,
    *,
    params: dict[str, object] | None = None,
    reason: str | None = None,
    errors: list[FieldError] | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Problem]:
    locale = request_locale(request)
    title = _TITLES.get(status, ("error", N_("Error")))[1]
    detail = message or _GENERIC_DETAIL.get(status, N_("The request failed."))
    body = Problem(
        type=problem_type(status),
        title=translate(title, locale),
        status=status,
        detail=translate(detail, locale, **(params or {})),
        instance=request.url.path,
        reason=reason,
        errors=errors,
    )
    content: Any = body
    if extra:
        # RFC 9457 extension members sit beside the standard ones, never over them.
        content = {**{k: v for k, v in extra.items() if k not in Problem.__struct_fields__},
                   **msgspec.to_builtins(body)}
    return Response(
        content,
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        # Errors raised outside the request-id middleware's reach (router 404/405, rate limit)
        # still name the request.
        headers={"Content-Language": locale, "X-Request-ID": request_id_of(request.scope), **(headers or {})},
    )


# --- localising field messages from msgspec / Litestar validation -------------------------------

_FIELD_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^Expected `([^`]+)`, got `([^`]+)`"), N_("Expected {expected}, got {got}.")),
    (re.compile(r"^Object missing required field `([^`]+)`"), N_("Required field {name} is missing.")),
    (re.compile(r"^Object contains unknown field `([^`]+)`"), N_("Unknown field {name}.")),
    (re.compile(r"^Expected `str` matching regex [`'](.+)[`']"), N_("Does not match the pattern {pattern}.")),
    (re.compile(r"^Expected `str` of length >= (\d+)"), N_("Must be at least {n} characters long.")),
    (re.compile(r"^Expected `str` of length <= (\d+)"), N_("Must be at most {n} characters long.")),
    (re.compile(r"^Expected `(?:int|float|number)` >= (\S+)"), N_("Must be at least {n}.")),
    (re.compile(r"^Expected `(?:int|float|number)` <= (\S+)"), N_("Must be at most {n}.")),
    (re.compile(r"^Expected `(?:int|float|number)` > (\S+)"), N_("Must be greater than {n}.")),
    (re.compile(r"^Expected `(?:int|float|number)` < (\S+)"), N_("Must be less than {n}.")),
    (re.compile(r"^Expected `array` of length <= (\d+)"), N_("At most {n} items are allowed.")),
    (re.compile(r"^Expected `array` of length >= (\d+)"), N_("At least {n} items are required.")),
    (re.compile(r"^Invalid enum value (.+)"), N_("{value} is not one of the allowed values.")),
    # A tagged union's unknown tag (e.g. an uncertainty "distribution": "beta").
    (re.compile(r"^Invalid value (.+)"), N_("{value} is not one of the allowed values.")),
    (re.compile(r"^Invalid RFC3339 encoded datetime"), N_("Not an RFC 3339 date-time.")),
    (re.compile(r"^Invalid RFC3339 encoded date"), N_("Not a date (YYYY-MM-DD).")),
    (re.compile(r"^Invalid decimal string"), N_("Not a decimal number.")),
    (re.compile(r"^JSON is malformed"), N_("The JSON is malformed.")),
]
_PARAM_NAMES = {
    N_("Expected {expected}, got {got}."): ("expected", "got"),
    N_("Required field {name} is missing."): ("name",),
    N_("Unknown field {name}."): ("name",),
    N_("Does not match the pattern {pattern}."): ("pattern",),
    N_("Must be at least {n} characters long."): ("n",),
    N_("Must be at most {n} characters long."): ("n",),
    N_("Must be at least {n}."): ("n",),
    N_("Must be at most {n}."): ("n",),
    N_("Must be greater than {n}."): ("n",),
    N_("Must be less than {n}."): ("n",),
    N_("At most {n} items are allowed."): ("n",),
    N_("At least {n} items are required."): ("n",),
    N_("{value} is not one of the allowed values."): ("value",),
}
_PATH_SUFFIX = re.compile(r" - at `\$(.*)`$")
_NAMED_FIELD = re.compile(r"^Object (?:missing required|contains unknown) field `([^`]+)`")


def localise_field_message(message: str, locale: str) -> tuple[str, str | None]:
    """Translate a msgspec-style validation message; also return the ``$.path`` it names, if any."""
    path = None
    if match := _PATH_SUFFIX.search(message):
        path = match.group(1).lstrip(".") or None
        message = message[: match.start()]
    if named := _NAMED_FIELD.search(message):
        path = f"{path}.{named.group(1)}" if path else named.group(1)
    for pattern, msgid in _FIELD_PATTERNS:
        if found := pattern.search(message):
            names = _PARAM_NAMES.get(msgid, ())
            params = dict(zip(names, found.groups(), strict=False))
            if "pattern" in params:  # Litestar shows the regex escaped twice
                params["pattern"] = str(params["pattern"]).replace("\\\\", "\\")
            return translate(msgid, locale, **params), path
    return translate(message, locale), path


def _validation_errors(exc: ValidationException, locale: str) -> list[FieldError]:
    out: list[FieldError] = []
    extra = exc.extra if isinstance(exc.extra, list) else ([exc.extra] if exc.extra else [])
    for item in extra:
        if not isinstance(item, dict):
            out.append(FieldError(field=None, message=translate(str(item), locale)))
            continue
        raw = str(item.get("message", ""))
        if raw == "'data'" and item.get("key") in (None, "data"):
            # Litestar's KeyError for a handler whose body never arrived.
            out.append(FieldError(field=None, message=translate(N_("A JSON request body is required."), locale)))
            continue
        text, path = localise_field_message(raw, locale)
        key = item.get("key")
        # The body arrives as the handler's "data" argument: name its fields, not "data".
        base = None if key in (None, "", "data") else str(key)
        out.append(FieldError(field=path or base, message=text))
    if not out and exc.detail:
        text, path = localise_field_message(str(exc.detail), locale)
        out.append(FieldError(field=path, message=text))
    return out


# --- handlers ----------------------------------------------------------------------------------


def _field_text(message: str, locale: str, params: dict[str, object]) -> str:
    if params and "{" in message:
        try:
            return translate(message, locale, **params)
        except (KeyError, IndexError, ValueError):  # braces that are no placeholder of ours
            pass
    return translate(message, locale)


def handle_problem_error(request: Request[Any, Any, Any], exc: ProblemError) -> Response[Problem]:
    locale = request_locale(request)
    errors = None
    if exc.errors is not None:
        # Field messages are message ids (or already localised text, which passes through unchanged);
        # one may name the error's parameters, like the detail.
        errors = [FieldError(field=e.field, line=e.line, message=_field_text(e.message, locale, exc.params))
                  for e in exc.errors]
    return problem_response(
        request, exc.status_code, exc.message, params=exc.params, reason=exc.reason,
        errors=errors, extra=exc.extra, headers=exc.headers,
    )


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Problem]:
    status = exc.status_code
    headers = dict(exc.headers or {})
    if isinstance(exc, ValidationException) or (status == 400 and exc.extra):
        locale = request_locale(request)
        errors = _validation_errors(exc, locale) if isinstance(exc, ValidationException) else None
        # A body or parameter that fails validation is unprocessable content, not a bad request.
        return problem_response(request, 422, N_("Some fields are invalid."), errors=errors, headers=headers)
    if status == 500 and "disconnected" in str(exc.detail):
        # The client went away mid-body: nothing of ours failed, and nobody reads the answer.
        log.info("client disconnected during %s %s", request.method, request.url.path)
        return problem_response(request, 400, N_("The request is malformed."), reason="client_disconnected")
    if status >= 500:
        log.error("http error %s on %s: %s", status, request.url.path, exc.detail)
    detail = _GENERIC_DETAIL.get(status)
    return problem_response(request, status, detail, headers=headers)


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    # The traceback as text: structured log renderers cannot serialise exc_info tuples.
    request_id = request_id_of(request.scope)
    log.error("unhandled error on %s %s (request %s): %s", request.method, request.url.path, request_id,
              "".join(traceback.format_exception(exc)))
    # The id lets a user's report find this traceback in the logs.
    return problem_response(request, HTTP_500_INTERNAL_SERVER_ERROR,
                            extra={"request_id": request_id})


def handle_dependency_down(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    """The database or Redis cannot be reached (or is not migrated): 503, so clients retry later
    and load balancers route around, instead of a 500 that reads like a bug."""
    log.warning("dependency unavailable on %s %s: %r", request.method, request.url.path, exc)
    return problem_response(request, 503, reason="dependency_unavailable", headers={"Retry-After": "5"})


# PostgreSQL's "try again" codes: deadlock detected, serialization failure.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
# The database is away, not wrong: shut down (57P01), crashed (57P02), still starting (57P03).
UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})


def sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None)
    for candidate in (orig, getattr(orig, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if code:
            return str(code)
    return None


def handle_database_error(request: Request[Any, Any, Any], exc: DBAPIError) -> Response[Problem]:
    """Two transactions collided (a deadlock, a serialization failure): the loser is rolled back
    whole, so the client may simply retry. Anything else from the database is our bug."""
    if sqlstate(exc) in RETRYABLE_SQLSTATES:
        log.warning("transaction collided on %s %s: %s", request.method, request.url.path, sqlstate(exc))
        return problem_response(request, 409, N_("Another change collided with this one; try again."),
                                reason="concurrent_update", headers={"Retry-After": "1"})
    code = sqlstate(exc) or ""
    # A connection lost mid-statement (SQLAlchemy invalidates it; asyncpg says 08003) or a server that
    # refuses connections while it shuts down or recovers: the dependency is down, not our code.
    if exc.connection_invalidated or code.startswith("08") or code in UNAVAILABLE_SQLSTATES:
        return handle_dependency_down(request, exc)
    return handle_unexpected(request, exc)


exception_handlers: dict[type[Exception], Any] = {
    DBAPIError: handle_database_error,
    ProblemError: handle_problem_error,
    HTTPException: handle_http_exception,
    OperationalError: handle_dependency_down,
    InterfaceError: handle_dependency_down,
    PoolTimeoutError: handle_dependency_down,
    ConnectionError: handle_dependency_down,
    TimeoutError: handle_dependency_down,
    RedisError: handle_dependency_down,
    Exception: handle_unexpected,
}

__all__ = [
    "PROBLEM_MEDIA_TYPE", "BadRequestError", "ConflictError", "FieldError", "ForbiddenError",
    "NotFoundError", "Problem", "ProblemError", "ServiceUnavailableError", "TooManyRequestsError",
    "UnauthorizedError", "UnprocessableError", "UnsupportedMediaTypeError", "exception_handlers", "problem_response",
]
