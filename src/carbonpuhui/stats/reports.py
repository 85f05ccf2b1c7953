"""The pilot cities' quarterly reports: what one holds, submitting it (a frozen revision), and the list
of each city's reports as submitted, due, overdue or still open.

A report's content is plain JSON built once from the database: the city's indicators for the quarter
and the one before (already disclosure-protected by ``indicators.compute``), their quarter-over-quarter
changes, and the public records behind them (labels issued, tenders, monthly credit totals). Submitting
stores that JSON with its SHA-256 as the next revision; reading a revision returns exactly what was
stored, so a later data change never alters a submitted report, and renderers work from the stored
content alone. Services take the session and never commit.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from carbonpuhui.auth import Principal
from carbonpuhui.credits.models import Claim, Entry, Redemption, Reward
from carbonpuhui.errors import ConflictError, ForbiddenError, NotFoundError, UnprocessableError
from carbonpuhui.footprints.models import Product
from carbonpuhui.i18n import N_
from carbonpuhui.labels.models import Label
from carbonpuhui.stats import divisions
from carbonpuhui.stats.models import Organisation, Site, StatReport
from carbonpuhui.stats.quarters import CST, Quarter
from procurement.models import Tender

PILOT_START = Quarter(2025, 1)  # the pilot's first reporting quarter (魯環發〔2024〕11號 took effect in 2024)
CONTENT_VERSION = 1
BY = "industry"  # reports group enterprises by industry; the indicators API offers by=category too
CREDIT_METRICS = {  # the monthly credit figures and the quarter's indicator each one breaks down
    "purchases_g": "credits_purchases_g",
    "travel_g": "credits_travel_g",
    "redeemed_g": "credits_redeemed_g",
}
SUBMIT_ATTEMPTS = 5

Progress = Callable[[str], None]


def now() -> datetime:
    """The reports' clock (tests move it to check the due and overdue boundaries in CST)."""
    return datetime.now(UTC)


# --- validation -----------------------------------------------------------------------------------


def parse_city(code: str) -> str:
    if not divisions.is_city(code):
        raise UnprocessableError(N_("{code} is not a prefecture-level city code in force (GB/T 2260)."),
                                 reason="not_a_city", code=code)
    return code


def parse_quarter(text: str) -> Quarter:
    try:
        return Quarter.parse(text)
    except ValueError:
        raise UnprocessableError(N_("{quarter} is not a quarter like 2025Q1."), reason="invalid_quarter",
                                 quarter=text) from None


def canonical(content: dict[str, Any]) -> bytes:
    """The bytes the SHA-256 covers: sorted keys, no whitespace, UTF-8."""
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256(content: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(content)).hexdigest()


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- building the content -------------------------------------------------------------------------


def _in_city(division: Any, city: str) -> Any:
    return division.like(city[:4] + "%")


async def _labels(session: AsyncSession, city: str, quarter: Quarter) -> list[dict[str, Any]]:
    """Labels issued in the quarter to products made in the city (the site's division, else the
    owner's): the public label data only."""
    division = func.coalesce(Site.division_code, Organisation.division_code)
    rows = (await session.execute(
        select(Label, Product.names)
        .join(Product, Product.gtin == Label.gtin)
        .outerjoin(Site, (Site.id == Product.site_id) & (Site.org == Product.owner_org))
        .outerjoin(Organisation, Organisation.org == Product.owner_org)
        .where(Label.issued_at >= quarter.start, Label.issued_at < quarter.end, _in_city(division, city))
        .order_by(Label.issued_at, Label.gtin, Label.id))).all()
    return [{"gtin": label.gtin, "names": dict(names), "category": label.category, "scheme": label.scheme,
             "grade": label.grade, "kgco2e_per_unit": str(label.kgco2e_per_unit),
             "declared_unit": label.declared_unit,
             "issued_on": label.issued_at.astimezone(CST).date().isoformat(),
             "valid_until": label.valid_until.isoformat()} for label, names in rows]


async def _tenders(session: AsyncSession, city: str, quarter: Quarter) -> list[dict[str, Any]]:
    """Tenders of the city's agencies created or awarded in the quarter: their public summary."""
    in_quarter = lambda column: (column >= quarter.start) & (column < quarter.end)  # noqa: E731
    rows = (await session.execute(
        select(Tender).join(Organisation, Organisation.org == Tender.agency_org)
        .where(_in_city(Organisation.division_code, city),
               or_(in_quarter(Tender.created_at), in_quarter(Tender.awarded_at)))
        .order_by(Tender.created_at, Tender.id))).scalars().all()
    return [{
        "id": tender.id, "title": tender.title, "category": tender.category,
        "created_on": tender.created_at.astimezone(CST).date().isoformat(),
        "carbon_criteria": (tender.weight_carbon > 0 or tender.max_kgco2e_per_unit is not None
                            or tender.label_required),
        "weight_carbon": str(tender.weight_carbon),
        "max_kgco2e_per_unit": None if tender.max_kgco2e_per_unit is None else str(tender.max_kgco2e_per_unit),
        "label_required": tender.label_required,
        "awarded": tender.awarded_at is not None and tender.awarded_at < quarter.end,
    } for tender in rows]


def _months(quarter: Quarter) -> list[tuple[str, datetime, datetime]]:
    """The quarter's three months as (``YYYY-MM``, start, end) in UTC, months counted in CST."""
    months = []
    for index in range(3):
        month = quarter.first_day.month + index
        start = datetime(quarter.year, month, 1, tzinfo=CST)
        end = datetime(quarter.year + (month == 12), month % 12 + 1, 1, tzinfo=CST)
        months.append((f"{quarter.year}-{month:02d}", start.astimezone(UTC), end.astimezone(UTC)))
    return months


def _month_case(column: Any, months: list[tuple[str, datetime, datetime]]) -> Any:
    from sqlalchemy import case

    return case(*[((column >= start) & (column < end), key) for key, start, end in months], else_=None)


async def _credit_contributions(session: AsyncSession, city: str, quarter: Quarter
                                ) -> dict[str, dict[str, dict[str, int]]]:
    """Per metric, per month, grams by contributing organisation (the issuing merchant of a purchase,
    the attesting operator of a trip, the reward's merchant of a redemption) in the city."""
    months = _months(quarter)
    result: dict[str, dict[str, dict[str, int]]] = {metric: {key: {} for key, _, _ in months}
                                                   for metric in CREDIT_METRICS}
    city_orgs = select(Organisation.org).where(_in_city(Organisation.division_code, city))
    # The same rows the indicators sum (the credited leg of each transfer, by its entry's time), so
    # the three months add up to the quarter's published total exactly.
    month = _month_case(Entry.created_at, months)
    window = (Entry.amount_g > 0) & (Entry.created_at >= quarter.start) & (Entry.created_at < quarter.end)
    claims = await session.execute(
        select(Claim.kind, month, Claim.issuer, func.sum(Entry.amount_g))
        .select_from(Entry).join(Claim, Claim.transfer_id == Entry.transfer_id)
        .where(window, Claim.issuer != "-", Claim.issuer.in_(city_orgs))
        .group_by(Claim.kind, month, Claim.issuer))
    for kind, key, issuer, grams in claims:
        metric = "purchases_g" if kind == "purchase" else "travel_g"
        result[metric][key][issuer] = int(grams)
    redemptions = await session.execute(
        select(month, Reward.merchant_org, func.sum(Entry.amount_g))
        .select_from(Entry).join(Redemption, Redemption.transfer_id == Entry.transfer_id)
        .join(Reward, Reward.id == Redemption.reward_id)
        .where(window, Reward.merchant_org.in_(city_orgs))
        .group_by(month, Reward.merchant_org))
    for key, merchant, grams in redemptions:
        result["redeemed_g"][key][merchant] = int(grams)
    return result


def _total_published(indicators: dict[str, Any], indicator_id: str) -> bool:
    for indicator in indicators.get("indicators", []):
        if indicator.get("id") == indicator_id:
            return any(cell.get("group") == "*" and cell.get("status") == "published"
                       for cell in indicator.get("cells", []))
    return False


def _credits(contributions: dict[str, dict[str, dict[str, int]]], indicators: dict[str, Any]
             ) -> dict[str, Any]:
    """Monthly credit totals under the same disclosure control as the indicators. A month is one more
    published part of the quarter's total, so the months of a metric are shown only where that total is
    published, and are protected together with it (one suppressed month would otherwise be the total
    minus the other two)."""
    from carbonpuhui.stats.disclosure import Published, audit, protect

    months = list(next(iter(contributions.values())))
    rows: list[dict[str, Any]] = [{"month": month} for month in months]
    for metric, indicator_id in CREDIT_METRICS.items():
        by_month = contributions[metric]
        if not _total_published(indicators, indicator_id):
            for row in rows:
                row[metric] = None
                row[f"{metric}_status"] = "secondary"
            continue
        published = [Published(key=(metric, month), atoms=frozenset({month})) for month in months]
        published.append(Published(key=(metric, "*"), atoms=frozenset(months)))
        # The total is published already (in the indicators): only months may be withheld.
        protection = protect(by_month, published, exempt={(metric, "*")})
        # Checked once more, independently of how the suppressions were chosen: should any withheld
        # month still follow from the rest, the whole breakdown is withheld.
        leaks = bool(audit(by_month, published, protection))
        for row in rows:
            key = (metric, row["month"])
            value = None if leaks else protection.values[key]
            row[metric] = None if value is None else int(value)
            shown = protection.status(key)
            row[f"{metric}_status"] = "secondary" if leaks and shown == "published" else shown
    return {"months": rows}


def _cells(indicator: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    cells = {("group", cell["group"]): cell for cell in indicator.get("cells", [])}
    cells.update({("destination", cell["group"]): cell for cell in indicator.get("by_destination") or []})
    return cells


def _difference(current: Any, previous: Any) -> Any:
    if isinstance(current, int) and isinstance(previous, int):
        return current - previous
    return str(Decimal(str(current)) - Decimal(str(previous)))


def changes(current: dict[str, Any], previous: dict[str, Any]) -> list[dict[str, Any]]:
    """Quarter-over-quarter change per indicator and cell: Q minus Q-1, null unless both figures are
    published (a suppressed figure's change would reveal it)."""
    before = {indicator["id"]: _cells(indicator) for indicator in previous.get("indicators", [])}
    rows = []
    for indicator in current.get("indicators", []):
        earlier = before.get(indicator["id"], {})
        for (dimension, group), cell in _cells(indicator).items():
            prior = earlier.get((dimension, group))
            both = (prior is not None and cell.get("status") == "published" and prior.get("status") == "published"
                    and cell.get("value") is not None and prior.get("value") is not None)
            rows.append({"indicator": indicator["id"], "dimension": dimension, "group": group,
                         "current": cell.get("value"), "previous": None if prior is None else prior.get("value"),
                         "change": _difference(cell["value"], prior["value"]) if both else None})
    return rows


async def _indicators(session: AsyncSession, city: str, quarter: Quarter) -> dict[str, Any]:
    from carbonpuhui.stats import indicators

    computed = await indicators.compute(session, area=city, quarter=quarter, by=BY)
    return msgspec.to_builtins(computed)


async def build(session: AsyncSession, city: str, quarter: Quarter, *, progress: Progress | None = None
                ) -> dict[str, Any]:
    """The report's content as of now, not stored (a draft: ``revision`` and ``submitted_at`` null)."""
    step = progress or (lambda _name: None)
    step("indicators")
    current = await _indicators(session, city, quarter)
    step("previous quarter")
    previous = await _indicators(session, city, quarter.previous())
    step("labels")
    labels = await _labels(session, city, quarter)
    step("tenders")
    tenders = await _tenders(session, city, quarter)
    step("credits")
    credits = _credits(await _credit_contributions(session, city, quarter), current)
    return {
        "content_version": CONTENT_VERSION,
        "city": city,
        "city_names": divisions.names(city),
        "province": divisions.province_of(city),
        "province_names": divisions.names(divisions.province_of(city)),
        "quarter": str(quarter),
        "previous_quarter": str(quarter.previous()),
        "period": {"starts_on": quarter.first_day.isoformat(), "ends_on": quarter.last_day.isoformat(),
                   "time_zone": "Asia/Shanghai"},
        "due_on": quarter.due_on.isoformat(),
        "revision": None,
        "submitted_at": None,
        "late": None,
        "note": None,
        "generated_at": _iso(now()),
        "by": BY,
        "indicators": current,
        "previous": previous,
        "changes": changes(current, previous),
        "labels": labels,
        "tenders": tenders,
        "credits": credits,
    }


# --- submitting and reading -----------------------------------------------------------------------


async def _may_submit(session: AsyncSession, principal: Principal, city: str) -> str | None:
    """The submitting organisation: an officer's agency must have its profile in the city; an admin
    may submit for any city."""
    if principal.org:
        division = await session.scalar(select(Organisation.division_code).where(Organisation.org == principal.org))
    else:
        division = None
    if "admin" in principal.roles:
        return principal.org
    if "officer" in principal.roles and division is not None and divisions.city_of(division) == city:
        return principal.org
    raise ForbiddenError(N_("Only an officer of an agency in {city}, or an admin, may submit its report."),
                         reason="not_city_officer", city=city)


async def submit(session: AsyncSession, *, city: str, quarter: Quarter, principal: Principal,
                 note: str | None = None, progress: Progress | None = None) -> StatReport:
    """Freeze the report as it is now as the city's next revision for the quarter."""
    parse_city(city)
    org = await _may_submit(session, principal, city)
    at = now()
    if at < quarter.end:
        raise ConflictError(N_("The quarter {quarter} has not ended yet (China Standard Time)."),
                            reason="quarter_not_ended", quarter=str(quarter))
    content = await build(session, city, quarter, progress=progress)
    for _attempt in range(SUBMIT_ATTEMPTS):
        revision = await next_revision(session, city, quarter)
        frozen = {**content, "revision": revision, "submitted_at": _iso(at), "note": note,
                  "late": is_late(quarter, await _first_submitted(session, city, quarter) or at)}
        row = StatReport(id=str(uuid.uuid4()), city_code=city, quarter=str(quarter), revision=revision,
                         content=frozen, content_sha256=sha256(frozen), submitted_at=at,
                         submitted_by=principal.sub, submitted_org=org, note=note)
        try:
            # Two submissions at once take the same number: the unique index fails one, which tries
            # the next number.
            async with session.begin_nested():
                session.add(row)
        except IntegrityError:
            continue
        return row
    raise ConflictError(N_("Another submission of this report is in progress; try again."),
                        reason="report_revision_conflict")


async def next_revision(session: AsyncSession, city: str, quarter: Quarter) -> int:
    latest = await session.scalar(select(func.max(StatReport.revision))
                                  .where(StatReport.city_code == city, StatReport.quarter == str(quarter)))
    return (latest or 0) + 1


def is_late(quarter: Quarter, first_submitted: datetime) -> bool:
    """A report is late when its first revision came in at or after the due instant; a correction
    (a later revision) does not make an on-time report late."""
    return first_submitted >= quarter.due_at


async def _first_submitted(session: AsyncSession, city: str, quarter: Quarter) -> datetime | None:
    return await session.scalar(select(func.min(StatReport.submitted_at))
                                .where(StatReport.city_code == city, StatReport.quarter == str(quarter)))


async def stored(session: AsyncSession, city: str, quarter: Quarter, revision: int | None = None) -> StatReport:
    """A submitted revision (the latest without ``revision``), exactly as frozen."""
    query = select(StatReport).where(StatReport.city_code == city, StatReport.quarter == str(quarter))
    if revision is not None:
        query = query.where(StatReport.revision == revision)
    row = (await session.execute(query.order_by(StatReport.revision.desc()).limit(1))).scalar_one_or_none()
    if row is None:
        if revision is None:
            raise NotFoundError(N_("No report of {city} for {quarter} has been submitted."),
                                reason="report_not_submitted", city=city, quarter=str(quarter))
        raise NotFoundError(N_("Report {city} {quarter} has no revision {revision}."),
                            reason="revision_not_found", city=city, quarter=str(quarter), revision=revision)
    return row


# --- status list ----------------------------------------------------------------------------------


def quarters_until(at: datetime, year: int | None = None) -> list[Quarter]:
    """Every quarter from the pilot's start to the one ``at`` falls in (CST), oldest first."""
    last = Quarter.of(at)
    result = []
    quarter = PILOT_START
    while quarter <= last:
        if year is None or quarter.year == year:
            result.append(quarter)
        quarter = quarter.next()
    return result


def status(quarter: Quarter, at: datetime, submitted: bool) -> str:
    if submitted:
        return "submitted"
    if at < quarter.end:
        return "open"
    return "due" if at < quarter.due_at else "overdue"


async def statuses(session: AsyncSession, city: str, year: int | None = None) -> list[dict[str, Any]]:
    """Each quarter's report of the city: submitted, due (ended, not yet due), overdue or open."""
    at = now()
    quarters = quarters_until(at, year)
    rows = (await session.execute(
        select(StatReport.quarter, func.count(), func.max(StatReport.revision), func.min(StatReport.submitted_at),
               func.max(StatReport.submitted_at))
        .where(StatReport.city_code == city, StatReport.quarter.in_([str(q) for q in quarters]))
        .group_by(StatReport.quarter))).all()
    found = {quarter: (count, latest, first, last) for quarter, count, latest, first, last in rows}
    items = []
    for quarter in quarters:
        count, latest, first, last = found.get(str(quarter), (0, None, None, None))
        first = _aware(first)
        items.append({
            "city": city, "quarter": str(quarter), "status": status(quarter, at, count > 0),
            "due_on": quarter.due_on.isoformat(), "revisions": count, "latest_revision": latest,
            "submitted_at": None if first is None else _iso(first),
            "latest_submitted_at": None if last is None else _iso(_aware(last)),
            "late": first is not None and is_late(quarter, first),
        })
    return items


def _aware(value: datetime | None) -> datetime | None:
    """Aggregates bypass the column type on SQLite: a naive value there is UTC."""
    if value is None or isinstance(value, datetime) and value.tzinfo is not None:
        return value
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
