"""The aggregate queries behind the indicators: every one groups in SQL, by the finest cell disclosure
control needs (city, industry, category, ... and the contributing organisation), so the rows fetched grow
with the number of organisations and categories, never with the number of labels, entries or shipments.

Where a division is needed: a product's site if it has one, else its owner's registered seat
(``organisations``); cities are the division code's first four digits. Rows whose organisation has no
profile come back with ``city`` None. Sums of exact decimals (stored as text) are done by PostgreSQL in
NUMERIC; on SQLite, which has no exact decimal arithmetic, the decimal is one more GROUP BY key and the
sum is made exactly in Python (SQLite is for small installations and tests).
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Context, Decimal, localcontext
from typing import Any, NamedTuple

from sqlalchemy import (
    JSON,
    Boolean,
    Numeric,
    String,
    and_,
    case,
    cast,
    column,
    func,
    literal,
    or_,
    select,
    table,
    text,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from carbonpuhui.credits.models import Claim, Entry, Redemption, Reward
from carbonpuhui.db.base import DecimalText, UTCDateTime
from carbonpuhui.footprints.models import Product
from carbonpuhui.labels.models import Benchmark, Label
from carbonpuhui.stats.models import ExportShipment, Organisation, Site
from carbonpuhui.stats.quarters import Quarter

# Procurement is its own package on top of this one: its tables are named here, not imported.
_tenders = table(
    "tenders", column("id", String), column("agency_org", String), column("category", String),
    column("quantity", DecimalText()), column("max_kgco2e_per_unit", DecimalText()),
    column("label_required", Boolean), column("weight_carbon", DecimalText()), column("benchmark", JSON),
    column("created_at", UTCDateTime()), column("awarded_bid_id", String), column("awarded_at", UTCDateTime()))
_bids = table("bids", column("id", String), column("kgco2e_per_unit", DecimalText()))


# Decimal arithmetic on figures meant to be exact: quantities and factors have up to 30 digits either side
# of the point, so products and sums need far more than the default context's 28 significant digits.
EXACT = Context(prec=200)
# SQLite sums integers in 64 bits and fails on overflow: sums of large integers are taken in two parts
# (quotient and remainder by SPLIT; SQLite's / and % truncate alike, so v = v/SPLIT*SPLIT + v%SPLIT),
# each far from overflowing, and recombined exactly in Python.
SPLIT = 10**6

# PostgreSQL settings for the statistics queries (see StatsRepository.tune).
TUNING = ("SET LOCAL work_mem = '64MB'", "SET LOCAL enable_nestloop = off",
          "SET LOCAL max_parallel_workers_per_gather = 0", "SET LOCAL jit = off")
# ... and for the products' and shipments' aggregates alone: hash them rather than sort (the planner,
# misled by the same filter, expects a few hundred groups and sorts a hundred thousand rows on five
# text keys; hashing is about a third faster). Not for the distinct counts, which need the sort.
HASHED = "SET LOCAL enable_sort = off"


class ProductRow(NamedTuple):
    city: str | None  # "3706" (the division's first four digits), None: the owner has no profile
    industry: str | None
    category: str
    org: str
    grade: str | None  # the verified label in force at the quarter's end; None: no such label
    count: int
    comparable: int  # of those, labels whose category benchmark has the label's unit
    kg_sum: Decimal  # Σ kgCO2e per unit over the comparable labels
    baseline: Decimal | None


class CreditRow(NamedTuple):
    kind: str  # purchase | trip | redemption
    city: str | None
    industry: str | None
    org: str  # the merchant or operator ("-": an unattested trip)
    grams: int


class PeopleCounts(NamedTuple):
    """Distinct person accounts with an attributed credit entry: per (city, industry), per city, per
    industry (province-wide), and the province total (which also counts unattested travel)."""

    cells: dict[tuple[str, str], int]
    cities: dict[str, int]
    industries: dict[str, int]
    total: int
    unattested: int  # people with unattested travel in the quarter
    unattested_g: int


class TenderRow(NamedTuple):
    city: str | None
    industry: str | None
    category: str
    org: str
    with_criteria: bool
    count: int


class AwardRow(NamedTuple):
    city: str | None
    industry: str | None
    category: str
    org: str
    quantity: Decimal
    bid_kgco2e_per_unit: Decimal
    baseline: Decimal | None  # the tender's benchmark snapshot, per functional unit


class Shipments(NamedTuple):
    """The province's shipment rows (one per city, industry, category, destination, enterprise and
    coverage), column by column: a hundred thousand rows on a large province, so no tuple per row."""

    city: list[str]
    industry: list[str | None]
    category: list[str]
    destination: list[str]
    org: list[str]
    covered: list[bool]
    value_cents: list[int]
    volume_kg: list[Decimal]  # Σ quantity × category baseline (0 when no comparable baseline)
    label_kg: list[Decimal]  # Σ quantity × label value, covered and comparable shipments only


def _prefix(province: str) -> str:
    return province[:2] + "%"


def _in_force(quarter: Quarter) -> ColumnElement[bool]:
    """A verified label in force at the quarter's last instant (its validity runs through its last day,
    CST, so a label valid until the quarter's last day still counts)."""
    return and_(Label.scheme == "verified", Label.issued_at < quarter.end, Label.valid_until >= quarter.last_day,
                or_(Label.revoked_at.is_(None), Label.revoked_at >= quarter.end))


class StatsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.exact = session.get_bind().dialect.name == "postgresql"

    async def tune(self) -> None:
        """PostgreSQL, for the statistics queries only (``untune`` restores the session's settings):
        enough memory for the aggregates to sort and hash in memory rather than spill to disk, hash
        joins for the labels in force (the planner underestimates the rows left by the province filter
        on a joined COALESCE, and would probe the labels index once per product or shipment), and no
        parallel workers: the aggregates keep nearly a group per two rows (an enterprise's shipments of
        one category to one destination), so partial aggregation in workers saves no time (1.26 s
        against 1.30 s serially for the province's shipments) at twice the CPU, which the tables built
        in Python meanwhile need (a whole compute is about 0.6 s faster serially on two cores). And no
        JIT: the disabled plan types cost 10^10 each in the planner's estimate, far above jit_above_cost,
        so the people's grouping sets were compiled with inlining and optimisation, 0.6 to 0.7 s of
        LLVM for a query that runs in less."""
        if self.exact:
            for statement in TUNING:
                await self.session.execute(text(statement))

    async def untune(self) -> None:
        if self.exact:
            await self.session.execute(text("RESET work_mem"))
            await self.session.execute(text("RESET enable_nestloop"))
            await self.session.execute(text("RESET enable_sort"))
            await self.session.execute(text("RESET max_parallel_workers_per_gather"))
            await self.session.execute(text("RESET jit"))

    def _text_keys(self, *exprs: Any) -> list[Any]:
        """GROUP BY keys: on PostgreSQL in the "C" collation, whose byte-wise sort is several times
        faster than a linguistic one (grouping compares for equality only: same groups)."""
        if not self.exact:
            return list(exprs)
        return [expr.collate("C").label(f"k{n}") for n, expr in enumerate(exprs)]

    async def _all(self, stmt: Any, hashed: bool = False) -> list[Any]:
        """The rows of a Core statement on the session's connection: no ORM result processing, which
        costs about as much as the query itself for the hundred thousand rows of the province's
        shipments. ``hashed``: run it under ``HASHED`` (PostgreSQL)."""
        connection = await self.session.connection()
        if not (hashed and self.exact):
            return list((await connection.execute(stmt)).all())
        await connection.execute(text(HASHED))  # (also: the transaction has begun, for _records)
        rows = await self._records(connection, stmt)
        await connection.execute(text("RESET enable_sort"))
        return rows

    @staticmethod
    async def _records(connection: AsyncConnection, stmt: Any) -> list[Any]:
        """The rows of a PostgreSQL query straight from asyncpg, in the connection's transaction: its
        records index and unpack as tuples, and SQLAlchemy's rows would cost as much again as the
        decoding for the province's hundred thousand shipment rows (on the critical path: the tables
        wait for them). The same statement and parameters as SQLAlchemy would send."""
        driver = (await connection.get_raw_connection()).driver_connection
        if not driver.is_in_transaction():  # (the caller's SET LOCAL began it: never read outside it)
            return list((await connection.execute(stmt)).all())
        sql, arguments = StatsRepository.compiled(connection, stmt)
        return list(await driver.fetch(sql, *arguments))

    @staticmethod
    def compiled(connection: AsyncConnection, stmt: Any) -> tuple[str, list[Any]]:
        """A statement as the driver takes it: its SQL and positional parameters, processed as
        SQLAlchemy processes them (e.g. UTC instants)."""
        dialect = connection.dialect
        compiled = stmt.compile(dialect=dialect)
        values = compiled.construct_params()
        arguments = []
        for name in compiled.positiontup or ():
            processor = compiled.binds[name].type.bind_processor(dialect)
            arguments.append(values[name] if processor is None else processor(values[name]))
        return compiled.string, arguments

    def _num(self, expr: Any) -> Any:
        return cast(expr, Numeric)

    def _int_sum(self, expr: Any) -> list[Any]:
        """The measures giving SUM(expr) of an integer column exactly (read back with ``_int_value``):
        PostgreSQL's SUM of a BIGINT is NUMERIC already; on SQLite, two parts that cannot overflow."""
        if self.exact:
            return [func.sum(expr)]
        return [func.sum(expr // SPLIT), func.sum(expr % SPLIT)]

    def _int_value(self, parts: Any) -> int:
        if self.exact:
            return int(parts[0] or 0)
        return int(parts[0] or 0) * SPLIT + int(parts[1] or 0)

    async def products(self, province: str, quarter: Quarter) -> list[ProductRow]:
        division = func.coalesce(Site.division_code, Organisation.division_code)
        city = func.substr(division, 1, 4).label("city")
        industry = func.coalesce(Site.industry, Organisation.industry).label("industry")
        comparable = and_(Label.id.is_not(None), Benchmark.declared_unit == Label.declared_unit)
        keys: list[Any] = [*self._text_keys(city, industry, Product.category, Product.owner_org, Label.grade,
                                            Benchmark.baseline), comparable.label("comparable")]
        measures: list[Any] = [func.count()]
        if self.exact:
            measures.append(func.sum(case((comparable, self._num(Label.kgco2e_per_unit)), else_=None)))
        else:
            keys.append(case((comparable, Label.kgco2e_per_unit), else_=None).label("kg"))
        stmt = (select(*keys, *measures).select_from(Product)
                .outerjoin(Site, Site.id == Product.site_id)
                .outerjoin(Organisation, Organisation.org == Product.owner_org)
                .outerjoin(Label, and_(Label.gtin == Product.gtin, _in_force(quarter)))
                .outerjoin(Benchmark, and_(Label.id.is_not(None), Benchmark.category == Product.category))
                .where(Product.created_at < quarter.end, or_(division.like(_prefix(province)), division.is_(None)))
                .group_by(*keys))
        out: list[ProductRow] = []
        for row in await self._all(stmt, hashed=True):
            c, ind, cat, org, grade, baseline, comp = row[:7]
            comp = bool(comp)
            if self.exact:
                count, kg = row[7], Decimal(row[8]) if row[8] is not None else Decimal(0)
            else:
                count = row[8]
                with localcontext(EXACT):
                    kg = Decimal(row[7]) * row[8] if row[7] is not None else Decimal(0)
            out.append(ProductRow(city=c, industry=ind, category=cat, org=org, grade=grade, count=int(count),
                                  comparable=int(count) if comp else 0, kg_sum=kg,
                                  baseline=Decimal(baseline) if baseline is not None else None))
        return out

    async def credits(self, province: str, quarter: Quarter) -> list[CreditRow]:
        """Credits issued for purchases and trips (the person's leg of each claim's transfer) and redeemed
        (the merchant's leg of each redemption), in the quarter, by the issuing or rewarding organisation."""
        window = and_(Entry.amount_g > 0, Entry.created_at >= quarter.start, Entry.created_at < quarter.end)
        city = func.substr(Organisation.division_code, 1, 4)
        claims = (select(Claim.kind, city, Organisation.industry, Claim.issuer, *self._int_sum(Entry.amount_g))
                  .select_from(Entry).join(Claim, Claim.transfer_id == Entry.transfer_id)
                  .outerjoin(Organisation, Organisation.org == Claim.issuer)
                  .where(window).group_by(Claim.kind, city, Organisation.industry, Claim.issuer))
        redeemed = (select(literal("redemption"), city, Organisation.industry, Reward.merchant_org,
                           *self._int_sum(Entry.amount_g))
                    .select_from(Entry).join(Redemption, Redemption.transfer_id == Entry.transfer_id)
                    .join(Reward, Reward.id == Redemption.reward_id)
                    .outerjoin(Organisation, Organisation.org == Reward.merchant_org)
                    .where(window).group_by(city, Organisation.industry, Reward.merchant_org))
        out = []
        for stmt in (claims, redeemed):
            for kind, c, ind, org, *grams in await self._all(stmt):
                if c is not None and not c.startswith(province[:2]):
                    continue
                out.append(CreditRow(kind=kind, city=c, industry=ind, org=org, grams=self._int_value(grams)))
        return out

    async def people(self, province: str, quarter: Quarter) -> PeopleCounts:
        window = and_(Entry.amount_g > 0, Entry.created_at >= quarter.start, Entry.created_at < quarter.end)
        claimed = (select(Claim.account_id.label("person"), Organisation.division_code.label("division"),
                          Organisation.industry.label("industry"), Claim.issuer.label("issuer"),
                          Claim.kind.label("kind"), Entry.amount_g.label("grams"))
                   .select_from(Entry).join(Claim, Claim.transfer_id == Entry.transfer_id)
                   .outerjoin(Organisation, Organisation.org == Claim.issuer).where(window))
        redeemed = (select(Redemption.account_id, Organisation.division_code, Organisation.industry,
                           Reward.merchant_org, literal("redemption"), Entry.amount_g)
                    .select_from(Entry).join(Redemption, Redemption.transfer_id == Entry.transfer_id)
                    .join(Reward, Reward.id == Redemption.reward_id)
                    .outerjoin(Organisation, Organisation.org == Reward.merchant_org).where(window))
        active = claimed.union_all(redeemed).subquery()
        inside = active.c.division.like(_prefix(province))
        unattested = and_(active.c.kind == "trip", active.c.issuer == "-")
        city = func.substr(active.c.division, 1, 4)
        distinct = func.count(func.distinct(active.c.person))
        if self.exact:
            # Byte-wise ("C") comparisons for the sorts behind the distinct counts: several times
            # faster than the database's linguistic collation, and the same groups and counts.
            distinct = func.count(func.distinct(active.c.person.collate("C")))
            return await self._people_grouping_sets(active, inside, unattested, city.collate("C"), distinct)

        async def grouped(*keys: Any) -> list[Any]:
            stmt = select(*keys, distinct).where(inside).group_by(*keys)
            return list(await self._all(stmt))

        cells = {(c, ind): int(n) for c, ind, n in await grouped(city, active.c.industry)}
        cities = {c: int(n) for c, n in await grouped(city)}
        industries = {ind: int(n) for ind, n in await grouped(active.c.industry)}
        total = int(await self.session.scalar(select(distinct).where(or_(inside, unattested))) or 0)
        row = (await self.session.execute(
            select(distinct, *self._int_sum(active.c.grams)).where(unattested))).one()
        return PeopleCounts(cells=cells, cities=cities, industries=industries, total=total,
                            unattested=int(row[0]), unattested_g=self._int_value(row[1:]))

    async def _people_grouping_sets(self, active: Any, inside: Any, unattested: Any, city: Any,
                                    distinct: Any) -> PeopleCounts:
        """PostgreSQL: every distinct count in one scan (GROUPING SETS), instead of one query each."""
        inside_flag = inside.label("inside")
        unattested_flag = unattested.label("unattested")
        industry = active.c.industry.collate("C")
        sets = func.grouping_sets(tuple_(inside_flag, city, industry), tuple_(inside_flag, city),
                                  tuple_(inside_flag, industry), tuple_(), tuple_(unattested_flag))
        stmt = (select(func.grouping(inside_flag, city, industry, unattested_flag), inside_flag, city, industry,
                       unattested_flag, distinct, func.coalesce(func.sum(active.c.grams), 0))
                .where(or_(inside, unattested)).group_by(sets))
        cells: dict[tuple[str, str], int] = {}
        cities: dict[str, int] = {}
        industries: dict[str, int] = {}
        total = people = grams = 0
        for grouping, is_inside, c, ind, is_unattested, n, g in await self._all(stmt):
            # GROUPING() bits, most significant first: inside, city, industry, unattested (1: not grouped by)
            if grouping == 0b0001 and is_inside:
                cells[(c, ind)] = int(n)
            elif grouping == 0b0011 and is_inside:
                cities[c] = int(n)
            elif grouping == 0b0101 and is_inside:
                industries[ind] = int(n)
            elif grouping == 0b1111:
                total = int(n)
            elif grouping == 0b1110 and is_unattested:
                people, grams = int(n), int(g)
        return PeopleCounts(cells=cells, cities=cities, industries=industries, total=total,
                            unattested=people, unattested_g=grams)

    async def tenders(self, province: str, quarter: Quarter) -> list[TenderRow]:
        t = _tenders
        city = func.substr(Organisation.division_code, 1, 4)
        keys = [city, Organisation.industry, t.c.category, t.c.agency_org, t.c.weight_carbon,
                t.c.max_kgco2e_per_unit.is_not(None), t.c.label_required]
        stmt = (select(*keys, func.count()).select_from(t)
                .join(Organisation, Organisation.org == t.c.agency_org)
                .where(t.c.created_at >= quarter.start, t.c.created_at < quarter.end,
                       Organisation.division_code.like(_prefix(province)))
                .group_by(*keys))
        totals: dict[tuple[Any, ...], int] = defaultdict(int)
        for c, ind, cat, org, weight, has_max, label_required, count in await self._all(stmt):
            criteria = Decimal(weight) > 0 or bool(has_max) or bool(label_required)
            totals[(c, ind, cat, org, criteria)] += int(count)
        return [TenderRow(city=k[0], industry=k[1], category=k[2], org=k[3], with_criteria=k[4], count=n)
                for k, n in totals.items()]

    async def awards(self, province: str, quarter: Quarter) -> list[AwardRow]:
        """One row per tender awarded in the quarter: a quarter's awards are a few hundred at most."""
        t, b = _tenders, _bids
        stmt = (select(func.substr(Organisation.division_code, 1, 4), Organisation.industry, t.c.category,
                       t.c.agency_org, t.c.quantity, t.c.benchmark, b.c.kgco2e_per_unit)
                .select_from(t).join(b, b.c.id == t.c.awarded_bid_id)
                .join(Organisation, Organisation.org == t.c.agency_org)
                .where(t.c.awarded_at >= quarter.start, t.c.awarded_at < quarter.end,
                       Organisation.division_code.like(_prefix(province))))
        out = []
        for c, ind, cat, org, quantity, benchmark, bid_kg in await self._all(stmt):
            baseline = (benchmark or {}).get("baseline") if isinstance(benchmark, dict) else None
            out.append(AwardRow(city=c, industry=ind, category=cat, org=org, quantity=Decimal(quantity),
                                bid_kgco2e_per_unit=Decimal(bid_kg),
                                baseline=Decimal(baseline) if baseline is not None else None))
        return out

    async def shipments(self, province: str, quarter: Quarter) -> Shipments:
        s = ExportShipment
        division = func.coalesce(Site.division_code, Organisation.division_code)
        city = func.substr(division, 1, 4)
        industry = func.coalesce(Site.industry, Organisation.industry)
        covered = Label.id.is_not(None)
        comparable = Benchmark.declared_unit == Product.declared_unit
        keys: list[Any] = [*self._text_keys(city, industry, Product.category, s.destination, s.org),
                           covered.label("covered")]
        measures: list[Any] = self._int_sum(s.value_cents)
        if self.exact:
            q = self._num(s.quantity)
            measures += [func.sum(case((comparable, q * self._num(Benchmark.baseline)), else_=None)),
                         func.sum(case((and_(covered, comparable), q * self._num(Label.kgco2e_per_unit)),
                                       else_=None))]
        else:
            keys += [s.quantity, case((comparable, Benchmark.baseline), else_=None),
                     case((comparable, Label.kgco2e_per_unit), else_=None)]
            measures.append(func.count())
        stmt = (select(*keys, *measures).select_from(s)
                .join(Product, Product.gtin == s.gtin)
                .outerjoin(Site, Site.id == Product.site_id)
                .outerjoin(Organisation, Organisation.org == s.org)
                .outerjoin(Label, and_(Label.gtin == s.gtin, _in_force(quarter)))
                .outerjoin(Benchmark, Benchmark.category == Product.category)
                .where(s.quarter == str(quarter), division.like(_prefix(province)))
                .group_by(*keys))
        rows = await self._all(stmt, hashed=True)
        if not rows:
            return Shipments([], [], [], [], [], [], [], [], [])
        zero = Decimal(0)
        if self.exact:  # the columns as they come (SUM of a BIGINT is a NUMERIC, never NULL here)
            c, ind, cat, dest, org, cov, value, volume, label_kg = map(list, zip(*rows, strict=True))
            return Shipments(c, ind, cat, dest, org, [bool(v) for v in cov], [int(v) for v in value],
                             [zero if v is None else v for v in volume], [zero if v is None else v for v in label_kg])
        columns: list[list[Any]] = [[] for _ in Shipments._fields]
        for row in rows:
            cov, (quantity, baseline, label_value), count = bool(row[5]), row[6:9], row[11]
            qty = Decimal(quantity)
            with localcontext(EXACT):
                volume = qty * Decimal(baseline) * count if baseline is not None else zero
                label_kg = (qty * Decimal(label_value) * count if cov and label_value is not None
                            and baseline is not None else zero)
            for out, v in zip(columns, (*row[:5], cov, self._int_value(row[9:11]), volume, label_kg), strict=True):
                out.append(v)
        return Shipments(*columns)

