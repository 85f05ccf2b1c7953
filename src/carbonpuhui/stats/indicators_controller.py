"""GET /v1/stats/indicators: the pilot indicators of a city or the province in a quarter (public)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from litestar import Controller, get
from litestar.params import QueryParameter

from carbonpuhui.auth import access
from carbonpuhui.db.engine import read_snapshot
from carbonpuhui.deps import DbSession, MaybePrincipal
from carbonpuhui.errors import FieldError, UnprocessableError
from carbonpuhui.i18n import N_
from carbonpuhui.stats import indicators
from carbonpuhui.stats.quarters import Quarter
from carbonpuhui.stats.schemas import Indicators
from carbonpuhui.throttle import spend_compute

AreaQuery = Annotated[str, QueryParameter(min_length=1, max_length=6,
                                          description="A province or city GB/T 2260 code, e.g. 370000 or 370600")]
QuarterQuery = Annotated[str, QueryParameter(min_length=1, max_length=6, description="e.g. 2025Q1 (CST)")]


class IndicatorsController(Controller):
    path = "/v1/stats/indicators"
    tags = ["statistics"]

    # A computation over the whole province: it spends the caller's compute budget (429 past it).
    @get("", **access(public=True, errors=(422, 429)), before_request=spend_compute,
         summary="Indicators of a city or the province in a quarter, disclosure-protected",
         description="Every figure comes with its definition and status: `primary` (fewer than three "
                     "enterprises, or one holds more than 85 % of it), `secondary` (hidden so that no "
                     "suppressed figure can be computed from published ones, on this page or any other "
                     "area's, grouping's or destination table), else `published`. Officers and admins also "
                     "see their own agency's procurement figures unsuppressed.")
    async def get_indicators(self, db_session: DbSession, principal: MaybePrincipal, area: AreaQuery,
                             quarter: QuarterQuery,
                             by: Annotated[Literal["industry", "category"], QueryParameter()] = "industry",
                             ) -> Indicators:
        problems: list[FieldError] = []
        try:
            indicators.parse_area(area)
        except ValueError:
            problems.append(FieldError(field="area", message=N_("Not a province or city code in force.")))
        parsed: Quarter | None = None
        try:
            parsed = Quarter.parse(quarter)
        except ValueError:
            problems.append(FieldError(field="quarter", message=N_("Not a quarter such as 2025Q1.")))
        if parsed is not None and parsed.start > datetime.now(UTC):
            problems.append(FieldError(field="quarter", message=N_("This quarter has not started yet.")))
        if problems or parsed is None:
            raise UnprocessableError(N_("Some fields are invalid."), errors=problems)
        agency = None
        if principal is not None and principal.has("officer", "admin") and principal.org:
            agency = principal.org
        await read_snapshot(db_session)  # every table from one state of the database
        return await indicators.compute(db_session, area=area, quarter=parsed, by=by, agency=agency)


HANDLERS: list[object] = [IndicatorsController]
