"""Export shipments an enterprise declares per quarter: validation, all-or-nothing batches (by API or
CSV), the exporter's own list, and withdrawing a batch.

A batch is all or nothing: every item is checked first, and one bad item rejects the call with each
problem named (``items[3].gtin`` for JSON, line and column for CSV) and nothing stored. Shipments are
commercial data: only the exporting organisation reads its rows; statistics see sums. A GTIN that is
not the caller's (unknown, or another organisation's) gets one message, so nobody learns which
products others have. Services flush and never commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache

import msgspec
import pycountry
from sqlalchemy import and_, delete, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from carbonpuhui.auth import Principal
from carbonpuhui.csv_records import read_records
from carbonpuhui.errors import (
    ConflictError,
    FieldError,
    ForbiddenError,
    NotFoundError,
    UnprocessableError,
    localise_field_message,
)
from carbonpuhui.factors.service import enterprise_of, fits, plain
from carbonpuhui.footprints.gtin import InvalidGTIN, normalise_gtin
from carbonpuhui.footprints.models import Product
from carbonpuhui.i18n import N_, translate
from carbonpuhui.stats import divisions
from carbonpuhui.stats.api_schemas import MAX_ITEMS, ShipmentIn, ShipmentOut
from carbonpuhui.stats.models import ExportShipment, Organisation, Site, StatReport
from carbonpuhui.stats.quarters import Quarter

CSV_COLUMNS = ("quarter", "gtin", "hs_code", "destination", "quantity", "value_cents")
MAX_CSV_BYTES = 4 * 1024 * 1024  # 10,000 rows take about 600 KB
MAX_REPORTED_ERRORS = 1_000
# China's customs territory: shipments there are not exports (Hong Kong, Macao and Taiwan are
# separate customs territories and count as destinations, as in China's customs statistics).
HOME = "CN"
NOT_YOURS = N_("Not one of your organisation's products.")
# Once a city's report for a quarter is submitted, that quarter's shipments there are closed: a later
# declaration (or withdrawal) would make revision 2 minus revision 1 one enterprise's own figure.
CLOSED = N_("The report of {city} for {quarter} has been submitted: that quarter's declarations are closed.")
_IN_CHUNK = 500  # GTINs per IN (...) lookup: far below SQLite's and asyncpg's parameter limits
# Locates a problem: (index or line, column) -> (field, line).
Locate = Callable[[int, str | None], tuple[str | None, int | None]]


def utcnow() -> datetime:
    return datetime.now(UTC)


@lru_cache(maxsize=512)
def is_country(code: str) -> bool:
    return len(code) == 2 and code.isascii() and code.isupper() and pycountry.countries.get(alpha_2=code) is not None


def normalise_hs(text: str) -> str | None:
    """HS / CN commodity code as digits ("7208.51" -> "720851"): 6 to 10 digits, a chapter 01-97
    (77 is reserved), or None."""
    digits = text.replace(".", "").replace(" ", "")
    if not (digits.isascii() and digits.isdigit() and 6 <= len(digits) <= 10):
        return None
    return digits if 1 <= int(digits[:2]) <= 97 and digits[:2] != "77" else None


@dataclass(frozen=True)
class Checked:
    """One valid item, normalised."""

    quarter: str
    gtin: str
    hs_code: str
    destination: str
    quantity: Decimal
    value_cents: int


def check_item(item: ShipmentIn, current: Quarter) -> tuple[Checked | None, list[tuple[str, str]]]:
    """The normalised item, or its (column, message id) problems. Needs no database."""
    problems: list[tuple[str, str]] = []
    quarter = None
    try:
        quarter = Quarter.parse(item.quarter)
    except ValueError:
        problems.append(("quarter", N_("A quarter is written like 2025Q1.")))
    if quarter is not None and quarter > current:
        problems.append(("quarter", N_("Declare shipments for an ended or the current quarter, not a future one.")))
    gtin = None
    try:
        gtin = normalise_gtin(item.gtin)
    except InvalidGTIN as exc:
        problems.append(("gtin", N_("The GTIN's check digit is wrong.") if exc.code == "gtin_check_digit"
                         else N_("A GTIN has 8, 12, 13 or 14 digits.")))
    hs_code = normalise_hs(item.hs_code)
    if hs_code is None:
        problems.append(("hs_code", N_("An HS code has 6 to 10 digits (dots allowed), e.g. 7208.51.")))
    destination = item.destination.upper()
    if not is_country(destination):
        problems.append(("destination", N_("Not an ISO 3166-1 alpha-2 country code.")))
    elif destination == HOME:
        problems.append(("destination", N_("An export goes outside China's customs territory.")))
    if not fits(item.quantity) or item.quantity <= 0:
        problems.append(("quantity", N_("Must be a positive number.")))
    if problems:
        return None, problems
    assert quarter is not None and gtin is not None and hs_code is not None
    return Checked(quarter=str(quarter), gtin=gtin, hs_code=hs_code, destination=destination,
                   quantity=Decimal(plain(item.quantity)), value_cents=item.value_cents), []


# --- CSV ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CsvRow:
    line: int
    item: ShipmentIn | None
    error: FieldError | None = None  # already localised


def csv_rows(data: bytes, locale: str) -> Iterator[CsvRow]:
    """The file's rows (UTF-8, a BOM tolerated), each an item or a localised problem naming its
    line and column (read as every import reads CSV: :func:`carbonpuhui.csv_records.read_records`)."""

    def bad(line: int, column: str | None, message: str, **params: object) -> CsvRow:
        return CsvRow(line, None, FieldError(line=line, field=column, message=translate(message, locale, **params)))

    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        yield bad(1, None, N_("The CSV file is not UTF-8 text."))
        return
    for record in read_records(text, columns=CSV_COLUMNS, required=CSV_COLUMNS, strip_names=True):
        if record.cells is None:
            yield bad(record.line, None, record.error or "", **record.params)
            continue
        cells = {k: v.strip() for k, v in record.cells.items() if v is not None and v.strip() != ""}
        try:
            # Cells are text: let msgspec read "123" as an int and "12.5" as a decimal.
            yield CsvRow(record.line, msgspec.convert(cells, ShipmentIn, strict=False))
        except msgspec.ValidationError as exc:
            message, column = localise_field_message(str(exc), locale)
            yield CsvRow(record.line, None, FieldError(line=record.line, field=column, message=message))


# --- the service --------------------------------------------------------------------------------


class ShipmentService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @staticmethod
    def exporter(actor: Principal) -> str:
        org = enterprise_of(actor)
        if org is None:
            raise ForbiddenError(N_("A merchant token with an organisation (org) is needed."), reason="no_organisation")
        return org

    async def _owned(self, org: str, gtins: set[str]) -> set[str]:
        owned: set[str] = set()
        ordered = sorted(gtins)
        for start in range(0, len(ordered), _IN_CHUNK):
            chunk = ordered[start:start + _IN_CHUNK]
            owned.update((await self.session.scalars(
                select(Product.gtin).where(Product.gtin.in_(chunk), Product.owner_org == org))).all())
        return owned

    async def declare(self, items: Sequence[tuple[int, ShipmentIn | None, FieldError | None]], actor: Principal,
                      *, locate: Locate, locale: str) -> tuple[str, int]:
        """Store every item as one batch, or raise with every problem and store nothing.
        ``items``: (index or line, item, parse problem)."""
        org = self.exporter(actor)
        if len(items) > MAX_ITEMS:
            raise UnprocessableError(N_("At most {limit} shipments per call or file; split it."),
                                     reason="too_many_items", limit=MAX_ITEMS)
        if not items:
            raise UnprocessableError(N_("The file holds no shipments."), reason="no_items")
        current = Quarter.of(utcnow())
        found: list[tuple[int, FieldError]] = []  # (index or line, problem): reported in item order
        good: list[tuple[int, Checked]] = []
        for where, item, parse_error in items:
            if parse_error is not None:
                found.append((where, parse_error))
                continue
            assert item is not None
            checked, problems = check_item(item, current)
            for column, message in problems:
                field, line = locate(where, column)
                found.append((where, FieldError(field=field, line=line, message=translate(message, locale))))
            if checked is not None:
                good.append((where, checked))
        owned = await self._owned(org, {c.gtin for _, c in good})
        for where, checked in good:
            if checked.gtin not in owned:
                field, line = locate(where, "gtin")
                found.append((where, FieldError(field=field, line=line, message=translate(NOT_YOURS, locale))))
        closed = await self._closed(org, [(c.gtin, c.quarter) for _, c in good if c.gtin in owned])
        for where, checked in good:
            city = closed.get((checked.gtin, checked.quarter))
            if city is not None:
                field, line = locate(where, "quarter")
                found.append((where, FieldError(field=field, line=line, message=translate(
                    CLOSED, locale, city=city, quarter=checked.quarter))))
        found.sort(key=lambda f: f[0])  # stable: an item's own problems keep their order
        errors = [e for _, e in found]
        if errors:
            # The first problems in full, the rest counted: a broken file must not echo back many times its size.
            raise UnprocessableError(N_("Nothing was stored: {count} shipment(s) are invalid."),
                                     reason="shipments_invalid", errors=errors[:MAX_REPORTED_ERRORS],
                                     extra={"errors_total": len(errors)},
                                     count=len({where for where, _ in found}))
        batch_id, now = str(uuid.uuid4()), utcnow()
        rows = [{"id": str(uuid.uuid4()), "org": org, "quarter": c.quarter, "gtin": c.gtin, "hs_code": c.hs_code,
                 "destination": c.destination, "quantity": c.quantity, "value_cents": c.value_cents,
                 "batch_id": batch_id, "created_at": now, "created_by": actor.sub} for _, c in good]
        await self.session.execute(insert(ExportShipment), rows)
        return batch_id, len(rows)

    async def page(self, actor: Principal, *, quarter: str | None, batch_id: str | None,
                   after: tuple[str, str] | None, limit: int) -> Sequence[ExportShipment]:
        org = enterprise_of(actor)
        if org is None:  # a token without an organisation has declared nothing
            return []
        stmt = select(ExportShipment).where(ExportShipment.org == org)
        if quarter is not None:
            stmt = stmt.where(ExportShipment.quarter == quarter)
        if batch_id is not None:
            stmt = stmt.where(ExportShipment.batch_id == batch_id)
        if after is not None:
            q, ident = after
            stmt = stmt.where(or_(ExportShipment.quarter > q, and_(ExportShipment.quarter == q, ExportShipment.id > ident)))
        stmt = stmt.order_by(ExportShipment.quarter, ExportShipment.id).limit(limit)
        return (await self.session.scalars(stmt)).all()

    async def _closed(self, org: str, items: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """(gtin, quarter) -> the city whose submitted report for that quarter covers the product
        (its site's city, else its owner's seat's), for the items that fall in a closed quarter."""
        quarters = {quarter for _, quarter in items}
        if not quarters:
            return {}
        submitted = set((await self.session.execute(
            select(StatReport.city_code, StatReport.quarter).where(StatReport.quarter.in_(sorted(quarters)))
            .distinct())).all())
        if not submitted:
            return {}
        seat = (await self.session.scalar(select(Organisation.division_code).where(Organisation.org == org)))
        gtins = sorted({gtin for gtin, _ in items})
        place: dict[str, str | None] = {}
        for start in range(0, len(gtins), _IN_CHUNK):
            rows = await self.session.execute(
                select(Product.gtin, Site.division_code).outerjoin(Site, Site.id == Product.site_id)
                .where(Product.gtin.in_(gtins[start:start + _IN_CHUNK])))
            place.update({gtin: site or seat for gtin, site in rows})
        closed: dict[tuple[str, str], str] = {}
        for gtin, quarter in items:
            code = place.get(gtin)
            if code is not None and (divisions.city_of(code), quarter) in submitted:
                closed[(gtin, quarter)] = divisions.city_of(code)
        return closed

    async def withdraw(self, batch_id: str, actor: Principal) -> int:
        org = enterprise_of(actor) or ""  # no organisation: no batch is its
        rows = (await self.session.execute(select(ExportShipment.gtin, ExportShipment.quarter).where(
            ExportShipment.batch_id == batch_id, ExportShipment.org == org))).all()
        closed = await self._closed(org, rows)
        if closed:
            (_, quarter), city = next(iter(closed.items()))
            raise ConflictError(CLOSED, reason="quarter_closed", city=city, quarter=quarter)
        result = await self.session.execute(
            delete(ExportShipment).where(ExportShipment.batch_id == batch_id, ExportShipment.org == org))
        if not result.rowcount:  # none, or another organisation's: the same answer
            raise NotFoundError(N_("Shipment batch {batch_id} was not found."), reason="batch_not_found",
                                batch_id=batch_id)
        return int(result.rowcount)

    @staticmethod
    def out(row: ExportShipment) -> ShipmentOut:
        return ShipmentOut(id=row.id, quarter=row.quarter, gtin=row.gtin, hs_code=row.hs_code,
                           destination=row.destination, quantity=plain(row.quantity), value_cents=row.value_cents,
                           batch_id=row.batch_id, created_at=row.created_at)


def json_location(index: int, column: str | None) -> tuple[str | None, int | None]:
    return (f"items[{index}]" if column is None else f"items[{index}].{column}"), None


def csv_location(line: int, column: str | None) -> tuple[str | None, int | None]:
    return column, line
