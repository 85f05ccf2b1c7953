"""Bulk import of factors from CSV or JSON: all-or-nothing, and idempotent.

Every row is checked first; one bad row rejects the whole file with each bad row's line number and
reason, and nothing is written. A row whose content equals an existing version of its id changes
nothing, so importing the same file twice creates nothing the second time.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec
from sqlalchemy.exc import DBAPIError, IntegrityError

from carbonpuhui.auth import Principal
from carbonpuhui.csv_records import read_records
from carbonpuhui.errors import (
    RETRYABLE_SQLSTATES,
    ConflictError,
    FieldError,
    UnprocessableError,
    localise_field_message,
    sqlstate,
)
from carbonpuhui.factors.models import FactorVersion
from carbonpuhui.factors.schemas import FactorBody, FactorCreate, ImportResult
from carbonpuhui.factors.service import (
    RESERVED_IDS,
    RESERVED_MESSAGE,
    SUPPLEMENTS_MESSAGE,
    FactorService,
    body_of,
    body_problems,
    content_hash,
    identity_problems,
    new_version_row,
    utcnow,
)
from carbonpuhui.i18n import N_, translate

# CSV columns: dotted names nest (names.zh-Hans -> {"names": {"zh-Hans": ...}}).
CSV_COLUMNS = (
    "id", "names.zh-Hans", "names.zh-Hant", "names.en", "category", "unit", "kgco2e_per_unit",
    "gwp_basis", "region", "tier", "owner_org", "valid_from", "valid_to", "source",
    "uncertainty.distribution", "uncertainty.gsd", "uncertainty.sd", "uncertainty.min",
    "uncertainty.mode", "uncertainty.max", "data_quality.technological", "data_quality.geographical",
    "data_quality.time", "data_quality.precision", "data_quality.completeness", "supplements",
    "version_note",
)
_REQUIRED_COLUMNS = {"id", "category", "unit", "kgco2e_per_unit", "gwp_basis", "region", "tier",
                     "valid_from", "source"}
Progress = Callable[[int, int], None]
MAX_ROWS = 100_000  # about 18 s to import on the development machine; larger files are split
MAX_REPORTED_ERRORS = 1_000
_EXACT_JSON = msgspec.json.Decoder(float_hook=Decimal)


class ParsedRow(msgspec.Struct):
    line: int
    factor: FactorCreate | None
    error: str | None = None  # a msgspec message, or a message id filled from ``params``
    params: dict[str, object] | None = None


def _nest(flat: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        if key is None or value is None or value.strip() == "":
            continue
        head, _, tail = key.strip().partition(".")
        if tail:
            out.setdefault(head, {})[tail] = value.strip()
        else:
            out[head] = value.strip()
    return out


def _convert(raw: Any, *, from_text: bool) -> FactorCreate:
    # CSV cells are text: let msgspec coerce "1.05" -> float and "3" -> int there, but not in JSON.
    return msgspec.convert(raw, FactorCreate, strict=not from_text)


def parse_csv(text: str) -> Iterator[ParsedRow]:
    for record in read_records(text, columns=CSV_COLUMNS, required=_REQUIRED_COLUMNS):
        if record.cells is None:
            yield ParsedRow(record.line, None, record.error, record.params)
            continue
        try:
            yield ParsedRow(record.line, _convert(_nest(record.cells), from_text=True))
        except msgspec.ValidationError as exc:
            yield ParsedRow(record.line, None, str(exc))


def parse_json(data: bytes) -> Iterator[ParsedRow]:
    try:
        # Numbers stay exact decimals (a factor value must never pass through float).
        items = _EXACT_JSON.decode(data)
    except (msgspec.DecodeError, RecursionError, InvalidOperation, ValueError) as exc:
        yield ParsedRow(1, None, N_("The JSON cannot be read: {error}."), {"error": str(exc) or type(exc).__name__})
        return
    if not isinstance(items, list):
        yield ParsedRow(1, None, N_("Expected a JSON array of factor bodies."), {})
        return
    if len(items) > MAX_ROWS:
        yield ParsedRow(1, None, N_("A file may hold at most {limit} rows; split it."), {"limit": MAX_ROWS})
        return
    for index, item in enumerate(items, start=1):
        try:
            yield ParsedRow(index, _convert(item, from_text=False))
        except msgspec.ValidationError as exc:
            yield ParsedRow(index, None, str(exc))


def parse(data: bytes, media_type: str) -> list[ParsedRow]:
    """The file's rows, or a single line-1 error. CPU-bound: call it off the event loop."""
    media_type = media_type.split(";")[0].strip().lower()
    if media_type in ("text/csv", "application/csv"):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            return [ParsedRow(1, None, N_("The CSV file is not UTF-8 text."), {})]
        rows = list(itertools.islice(parse_csv(text), MAX_ROWS + 1))
    else:
        rows = list(itertools.islice(parse_json(data), MAX_ROWS + 1))
    if len(rows) > MAX_ROWS:
        return [ParsedRow(1, None, N_("A file may hold at most {limit} rows; split it."), {"limit": MAX_ROWS})]
    return rows


def check_rows(rows: list[ParsedRow], existing_rows: list[FactorVersion], locale: str) -> list[FieldError]:
    """Every problem of every row that needs no database: parse errors, field rules, reserved ids,
    identity changes against the first version of an id, and repeated rows."""
    errors: list[FieldError] = []
    seen: dict[tuple[str, str], int] = {}
    identity: dict[str, FactorVersion | FactorBody] = {r.factor_id: r for r in existing_rows}
    for row in rows:
        if row.error is not None:
            if row.params is not None:
                message, path = translate(row.error, locale, **row.params), None
            else:
                message, path = localise_field_message(row.error, locale)
            errors.append(FieldError(line=row.line, field=path, message=message))
            continue
        assert row.factor is not None
        body = body_of(row.factor)
        problems = body_problems(body)
        if row.factor.id in RESERVED_IDS:
            problems.append(FieldError(field="id", message=RESERVED_MESSAGE))
        # Later versions of an id keep what the first one (in the database or the file) is.
        reference = identity.setdefault(row.factor.id, body)
        if reference is not body:
            problems += identity_problems(body, reference)
        for problem in problems:
            errors.append(FieldError(line=row.line, field=problem.field, message=translate(problem.message, locale)))
        key = (row.factor.id, content_hash(body))
        if key in seen:
            errors.append(FieldError(line=row.line, field=None, message=translate(
                N_("Repeats the factor on line {line}."), locale, line=seen[key])))
        seen.setdefault(key, row.line)
    return errors


async def import_factors(service: FactorService, rows: list[ParsedRow], actor: Principal, *,
                         publish: bool, locale: str = "en", progress: Progress | None = None) -> ImportResult:
    """Validate every row, then write them all in the caller's transaction, or raise and write nothing."""
    # One read of every existing version of the file's ids, instead of queries per row.
    existing_rows = await service.repo.versions_of_many([r.factor.id for r in rows if r.factor])
    # The per-row checks are pure CPU: off the event loop, so other requests keep being served.
    errors = await asyncio.to_thread(check_rows, rows, existing_rows, locale)
    # A national factor in the same file counts: they become drafts together, or are published together
    # (and publishing a draft later checks the national factor is published first).
    national_in_file = {r.factor.id for r in rows if r.factor and r.factor.tier == "national"}
    # References to national factors, published in the database or in this same file.
    wanted = sorted({r.factor.supplements for r in rows if r.factor and r.factor.supplements})
    national = await service.repo.published_national_ids(wanted) | national_in_file
    for row in rows:
        if row.factor and row.factor.supplements and row.factor.supplements not in national:
            errors.append(FieldError(line=row.line, field="supplements",
                                     message=translate(SUPPLEMENTS_MESSAGE, locale)))
    if errors:
        errors.sort(key=lambda e: (e.line or 0))
        # Report the first problems in full and count the rest: a broken file must not become a
        # response many times its own size.
        raise UnprocessableError(N_("The file was not imported: {count} row(s) are invalid."),
                                 reason="import_invalid", errors=errors[:MAX_REPORTED_ERRORS],
                                 extra={"errors_total": len(errors)}, count=len({e.line for e in errors}))

    created = unchanged = published = 0
    by_content = {(r.factor_id, r.content_hash): r for r in existing_rows}
    next_version: dict[str, int] = {}
    for r in existing_rows:
        next_version[r.factor_id] = max(next_version.get(r.factor_id, 1), r.version + 1)
    # Write in id order (stable, so one id's rows keep file order): two imports touching the same
    # ids then lock them in the same order and cannot deadlock each other.
    for done, row in enumerate(sorted(rows, key=lambda r: r.factor.id if r.factor else ""), start=1):
        factor = row.factor
        assert factor is not None
        body = body_of(factor)
        existing = by_content.get((factor.id, content_hash(body)))
        if existing is not None:
            # Publish through the same conditional UPDATE as the publish route: if another process
            # published it meanwhile, it is simply unchanged, and its publisher stays on record.
            if publish and existing.status == "draft" and await service.repo.transition(
                    existing.factor_id, existing.version, from_status="draft", status="published",
                    published_at=utcnow(), published_by=actor.sub):
                published += 1
            else:
                unchanged += 1
        else:
            version = next_version.get(factor.id, 1)
            next_version[factor.id] = version + 1
            status = "published" if publish else "draft"
            service.session.add(new_version_row(factor.id, version, body, actor.sub, status=status))
            created += 1
        if progress is not None:
            progress(done, len(rows))
    try:
        await service.session.flush()
    except DBAPIError as exc:
        if not isinstance(exc, IntegrityError) and sqlstate(exc) not in RETRYABLE_SQLSTATES:
            raise
        # Another process wrote versions of these ids meanwhile; the caller's transaction rolls back.
        raise ConflictError(N_("The factors changed while the file was being imported; import it again."),
                            reason="concurrent_import") from None
    return ImportResult(created=created, unchanged=unchanged, published=published)


__all__ = ["CSV_COLUMNS", "import_factors", "parse"]
