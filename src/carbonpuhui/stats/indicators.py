"""The pilot indicators for a city or the province in a quarter, disclosure-protected.

``compute`` runs the aggregate queries once for the whole province (``repository``), builds the finest
cells (atoms: city × industry × category [× destination, grade, ...]) with each contributing
organisation's magnitude, and publishes every table a query may show (per city and for the province,
by industry, by category, by destination, and their totals) to one ``disclosure.protect`` call per
measure. So a city's page and the province's page, by industry and by category, are cut from one
protected set of figures: no published figure on any of them, subtracted from another, recovers a
suppressed one. Ratios are published only when their numerator and denominator both are.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from functools import lru_cache
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from carbonpuhui.stats import disclosure, divisions
from carbonpuhui.stats.quarters import Quarter
from carbonpuhui.stats.repository import StatsRepository
from carbonpuhui.stats.schemas import Area, Cell, Indicator, Indicators, Period

By = Literal["industry", "category"]
Key = tuple[str, ...]
TOTAL = "*"
TOTAL_NAMES = {"zh-Hans": "合计", "zh-Hant": "合計", "en": "Total"}
RATIO_PLACES = Decimal("0.0001")
UNATTESTED_SPLIT = 10  # unattested travel: people, not enterprises (see _credits)

_ATTRIBUTION = {
    "zh-Hans": "企业（组织）按其登记地所在行政区划和行业统计；产品有生产场所的，按场所所在区划和行业统计。",
    "zh-Hant": "企業（組織）按其登記地所在行政區劃和行業統計；產品有生產場所的，按場所所在區劃和行業統計。",
    "en": "Enterprises count in their registered division and industry; a product made at a site counts "
          "in the site's division and industry.",
}
_IN_FORCE = {
    "zh-Hans": "经核证的标签在季度最后时刻（中国标准时间）有效：季度结束前签发、有效期至季度最后一天或更晚、"
               "季度结束前未被撤销。",
    "zh-Hant": "經核證的標籤在季度最後時刻（中國標準時間）有效：季度結束前簽發、有效期至季度最後一天或更晚、"
               "季度結束前未被撤銷。",
    "en": "A verified label in force at the quarter's last instant (China Standard Time): issued before the "
          "quarter's end, valid through its last day or later, not revoked before the end.",
}

# id -> (unit, names, definition); each definition names what it counts and how it is attributed.
DEFINITIONS: dict[str, tuple[str, dict[str, str], dict[str, str]]] = {
    "listed_products": ("count", {"zh-Hans": "上架产品数", "zh-Hant": "上架產品數", "en": "Listed products"}, {
        "zh-Hans": "季度结束前在平台登记的产品数。" + _ATTRIBUTION["zh-Hans"],
        "zh-Hant": "季度結束前在平台登記的產品數。" + _ATTRIBUTION["zh-Hant"],
        "en": "Products registered on the platform before the quarter's end. " + _ATTRIBUTION["en"]}),
    "labelled_products": ("count", {"zh-Hans": "有核证标签的产品数", "zh-Hant": "有核證標籤的產品數",
                                    "en": "Products with a verified label"}, {
        "zh-Hans": "上架产品中持有有效核证标签的产品数。" + _IN_FORCE["zh-Hans"],
        "zh-Hant": "上架產品中持有有效核證標籤的產品數。" + _IN_FORCE["zh-Hant"],
        "en": "Listed products with a verified label in force. " + _IN_FORCE["en"]}),
    "labelled_share": ("ratio", {"zh-Hans": "核证标签覆盖率", "zh-Hant": "核證標籤覆蓋率", "en": "Labelled share"}, {
        "zh-Hans": "有核证标签的产品数 ÷ 上架产品数（保留4位小数）。",
        "zh-Hant": "有核證標籤的產品數 ÷ 上架產品數（保留4位小數）。",
        "en": "Products with a verified label ÷ listed products (4 decimal places)."}),
    **{f"grade_{g}": ("count", {"zh-Hans": f"{g}级产品数", "zh-Hant": f"{g}級產品數", "en": f"Grade {g} products"}, {
        "zh-Hans": f"有效核证标签等级为{g}的产品数（等级按标签当前所依据的类别基准）。",
        "zh-Hant": f"有效核證標籤等級為{g}的產品數（等級按標籤當前所依據的類別基準）。",
        "en": f"Products whose verified label in force has grade {g} (as graded against its category's "
              "current benchmark)."}) for g in "ABCDE"},
    "intensity_vs_baseline": ("ratio", {"zh-Hans": "平均碳足迹强度（相对基准）", "zh-Hant": "平均碳足跡強度（相對基準）",
                                        "en": "Average intensity vs baseline"}, {
        "zh-Hans": "各有核证标签产品的 标签值 ÷ 类别基准值 的算术平均（不加权；单位与基准不同或无基准的产品不计）。",
        "zh-Hant": "各有核證標籤產品的 標籤值 ÷ 類別基準值 的算術平均（不加權；單位與基準不同或無基準的產品不計）。",
        "en": "Unweighted mean over labelled products of label value ÷ category baseline (products whose "
              "category has no benchmark in the label's unit are left out)."}),
    "credits_purchases_g": ("g", {"zh-Hans": "购物碳积分发放量", "zh-Hant": "購物碳積分發放量",
                                  "en": "Credits issued for purchases"}, {
        "zh-Hans": "季度内（中国标准时间）因购买低碳产品发放的碳积分（克CO2e），按开具小票的商户所在区划和行业统计。",
        "zh-Hant": "季度內（中國標準時間）因購買低碳產品發放的碳積分（克CO2e），按開具小票的商戶所在區劃和行業統計。",
        "en": "Credits (g CO2e) issued in the quarter (CST) for purchases, by the division and industry of "
              "the merchant that issued the receipt."}),
    "credits_travel_g": ("g", {"zh-Hans": "绿色出行碳积分发放量", "zh-Hant": "綠色出行碳積分發放量",
                               "en": "Credits issued for travel"}, {
        "zh-Hans": "季度内因绿色出行发放的碳积分（克CO2e），按出具证明的运营方所在区划和行业统计；"
                   "无运营方证明的出行只计入全省合计。",
        "zh-Hant": "季度內因綠色出行發放的碳積分（克CO2e），按出具證明的營運方所在區劃和行業統計；"
                   "無營運方證明的出行只計入全省合計。",
        "en": "Credits (g CO2e) issued in the quarter for green trips, by the attesting operator's division "
              "and industry; unattested trips count only in the province's total."}),
    "credits_redeemed_g": ("g", {"zh-Hans": "碳积分兑换量", "zh-Hant": "碳積分兌換量", "en": "Credits redeemed"}, {
        "zh-Hans": "季度内兑换奖励所用的碳积分（克CO2e），按提供奖励的商户所在区划和行业统计。",
        "zh-Hant": "季度內兌換獎勵所用的碳積分（克CO2e），按提供獎勵的商戶所在區劃和行業統計。",
        "en": "Credits (g CO2e) spent on rewards in the quarter, by the rewarding merchant's division and "
              "industry."}),
    "active_people": ("people", {"zh-Hans": "活跃用户数", "zh-Hant": "活躍用戶數", "en": "Active people"}, {
        "zh-Hans": "季度内有碳积分发放或兑换记录的个人账户数（去重），按上述积分的归属统计。",
        "zh-Hant": "季度內有碳積分發放或兌換記錄的個人賬戶數（去重），按上述積分的歸屬統計。",
        "en": "Distinct person accounts with credits issued or redeemed in the quarter, attributed as those "
              "credits are."}),
    "tenders": ("count", {"zh-Hans": "招标项目数", "zh-Hant": "招標項目數", "en": "Tenders"}, {
        "zh-Hans": "季度内发布的招标项目数，按采购单位所在区划和行业统计，按类别时为采购品类。",
        "zh-Hant": "季度內發布的招標項目數，按採購單位所在區劃和行業統計，按類別時為採購品類。",
        "en": "Tenders created in the quarter, by the agency's division and industry (by category: the "
              "tendered category)."}),
    "tenders_with_carbon_criteria": ("count", {"zh-Hans": "含碳要求的招标项目数", "zh-Hant": "含碳要求的招標項目數",
                                               "en": "Tenders with carbon criteria"}, {
        "zh-Hans": "季度内发布、碳权重大于0或设碳足迹上限或要求标签的招标项目数。",
        "zh-Hant": "季度內發布、碳權重大於0或設碳足跡上限或要求標籤的招標項目數。",
        "en": "Tenders created in the quarter with a carbon weight above 0, a footprint cap, or a label "
              "requirement."}),
    "awarded_bids": ("count", {"zh-Hans": "已授标项目数", "zh-Hant": "已授標項目數", "en": "Awarded bids"}, {
        "zh-Hans": "季度内授标的招标项目数。",
        "zh-Hant": "季度內授標的招標項目數。",
        "en": "Tenders awarded in the quarter."}),
    "awarded_footprint_kg": ("kg", {"zh-Hans": "中标产品碳足迹", "zh-Hant": "中標產品碳足跡",
                                    "en": "Footprint of awarded bids"}, {
        "zh-Hans": "季度内授标且有类别基准的项目：中标每功能单位碳足迹 × 采购数量（千克CO2e）。",
        "zh-Hant": "季度內授標且有類別基準的項目：中標每功能單位碳足跡 × 採購數量（千克CO2e）。",
        "en": "Tenders awarded in the quarter that carry a category benchmark: the winning bid's kg CO2e "
              "per functional unit × the tendered quantity."}),
    "awarded_baseline_kg": ("kg", {"zh-Hans": "中标项目基准碳足迹", "zh-Hant": "中標項目基準碳足跡",
                                   "en": "Baseline footprint of awarded tenders"}, {
        "zh-Hans": "同上项目：招标时的类别基准值（折算为功能单位）× 采购数量（千克CO2e）。",
        "zh-Hant": "同上項目：招標時的類別基準值（折算為功能單位）× 採購數量（千克CO2e）。",
        "en": "The same tenders: the category baseline fixed at tendering (per functional unit) × quantity."}),
    "avoided_kg": ("kg", {"zh-Hans": "采购减排量", "zh-Hant": "採購減排量", "en": "Emissions avoided by purchasing"}, {
        "zh-Hans": "中标项目基准碳足迹 − 中标产品碳足迹（千克CO2e；两者均公布时公布）。",
        "zh-Hant": "中標項目基準碳足跡 − 中標產品碳足跡（千克CO2e；兩者均公布時公布）。",
        "en": "Baseline footprint − footprint of awarded bids (kg CO2e; published when both are)."}),
    "export_value_cents": ("cents", {"zh-Hans": "出口额", "zh-Hant": "出口額", "en": "Export value"}, {
        "zh-Hans": "企业申报的季度出口额（分），按出口产品的生产场所（否则企业）所在区划和行业统计。",
        "zh-Hant": "企業申報的季度出口額（分），按出口產品的生產場所（否則企業）所在區劃和行業統計。",
        "en": "Declared export value of the quarter (CNY cents), by the division and industry of the "
              "product's site, else the exporter."}),
    "export_value_covered_cents": ("cents", {"zh-Hans": "有核证碳足迹的出口额", "zh-Hant": "有核證碳足跡的出口額",
                                             "en": "Export value covered by a verified footprint"}, {
        "zh-Hans": "出口产品在季度末持有有效核证标签的出口额（分）。" + _IN_FORCE["zh-Hans"],
        "zh-Hant": "出口產品在季度末持有有效核證標籤的出口額（分）。" + _IN_FORCE["zh-Hant"],
        "en": "Export value of products with a verified label in force at the quarter's end. "
              + _IN_FORCE["en"]}),
    "export_value_covered_share": ("ratio", {"zh-Hans": "出口额覆盖率", "zh-Hant": "出口額覆蓋率",
                                             "en": "Share of export value covered"}, {
        "zh-Hans": "有核证碳足迹的出口额 ÷ 出口额。",
        "zh-Hant": "有核證碳足跡的出口額 ÷ 出口額。",
        "en": "Export value covered ÷ export value."}),
    "export_volume_kg_baseline": ("kg", {"zh-Hans": "出口量（按基准折算）", "zh-Hant": "出口量（按基準折算）",
                                         "en": "Export volume at baseline"}, {
        "zh-Hans": "出口数量 × 类别基准值（千克CO2e），使不同产品的出口量可相加；无同单位基准的产品不计。",
        "zh-Hant": "出口數量 × 類別基準值（千克CO2e），使不同產品的出口量可相加；無同單位基準的產品不計。",
        "en": "Exported quantity × category baseline (kg CO2e), which makes volumes of different products "
              "addable; products without a baseline in their unit are left out."}),
    "export_volume_covered_kg_baseline": ("kg", {"zh-Hans": "有核证碳足迹的出口量", "zh-Hant": "有核證碳足跡的出口量",
                                                 "en": "Export volume covered at baseline"}, {
        "zh-Hans": "同上，仅季度末持有有效核证标签的产品。",
        "zh-Hant": "同上，僅季度末持有有效核證標籤的產品。",
        "en": "As above, products with a verified label in force at the quarter's end only."}),
    "export_volume_covered_share": ("ratio", {"zh-Hans": "出口量覆盖率", "zh-Hant": "出口量覆蓋率",
                                              "en": "Share of export volume covered"}, {
        "zh-Hans": "有核证碳足迹的出口量 ÷ 出口量（均按基准折算）。",
        "zh-Hant": "有核證碳足跡的出口量 ÷ 出口量（均按基準折算）。",
        "en": "Export volume covered ÷ export volume (both at baseline)."}),
    "export_intensity_vs_baseline": ("ratio", {"zh-Hans": "出口加权碳强度（相对基准）",
                                               "zh-Hant": "出口加權碳強度（相對基準）",
                                               "en": "Export-weighted intensity vs baseline"}, {
        "zh-Hans": "有核证标签的出口：Σ 数量×标签值 ÷ Σ 数量×类别基准值。",
        "zh-Hant": "有核證標籤的出口：Σ 數量×標籤值 ÷ Σ 數量×類別基準值。",
        "en": "Over covered exports: Σ quantity × label value ÷ Σ quantity × category baseline."}),
}
ORDER = list(DEFINITIONS)
TRADE = {i for i in ORDER if i.startswith("export_")}
# Ratios and differences: (numerator or minuend, denominator or subtrahend); hidden figures start with "_".
DERIVED: dict[str, tuple[str, str, str]] = {
    "labelled_share": ("ratio", "labelled_products", "listed_products"),
    "intensity_vs_baseline": ("ratio", "_intensity_sum", "_intensity_products"),
    "avoided_kg": ("difference", "awarded_baseline_kg", "awarded_footprint_kg"),
    "export_value_covered_share": ("ratio", "export_value_covered_cents", "export_value_cents"),
    "export_volume_covered_share": ("ratio", "export_volume_covered_kg_baseline", "export_volume_kg_baseline"),
    "export_intensity_vs_baseline": ("ratio", "_export_label_kg", "export_volume_covered_kg_baseline"),
}


@dataclass
class _Table:
    """One measure's atoms and the figures over them (all areas, all groupings) for one protect call."""

    province: str
    atoms: dict[Hashable, dict[str, Any]] = field(default_factory=lambda: defaultdict(dict))
    figures: dict[Key, set[Hashable]] = field(default_factory=lambda: defaultdict(set))
    exact: dict[Key, Any] = field(default_factory=lambda: defaultdict(int))
    groups: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))

    def add(self, atom: Hashable, contributor: str, magnitude: Any, ids: Iterable[str], city: str | None,
            dims: dict[str, str], exact: Any = None) -> None:
        """``magnitude`` (non-negative) is what disclosure control weighs; ``exact`` what is summed for
        display (the magnitude unless given)."""
        cell = self.atoms[atom]
        cell[contributor] = cell.get(contributor, 0) + magnitude
        value = magnitude if exact is None else exact
        areas = [self.province] if city is None else [self.province, city + "00"]
        for indicator in ids:
            for area in areas:
                keys = [(indicator, area, TOTAL, TOTAL)]
                if city is not None:
                    keys += [(indicator, area, dim, group) for dim, group in dims.items()]
                    for dim, group in dims.items():
                        self.groups[(area, dim)].add(group)
                for key in keys:
                    self.figures[key].add(atom)
                    self.exact[key] += value

    def protect(self, exempt_org: str | None = None) -> disclosure.Protection:
        published = [disclosure.Published(key, frozenset(atoms)) for key, atoms in self.figures.items()]
        exempt: set[Key] = set()
        if exempt_org is not None:
            # An agency's officers already know the figures made of their agency's tenders alone.
            for key, atoms in self.figures.items():
                who = {c for a in atoms for c, m in self.atoms[a].items() if m}
                if who and who <= {exempt_org}:
                    exempt.add(key)
        return disclosure.protect(self.atoms, published, exempt=frozenset(exempt))


@dataclass
class _Result:
    """Every table's protection and exact values, looked up by figure key."""

    status: dict[Key, str] = field(default_factory=dict)
    value: dict[Key, Any] = field(default_factory=dict)
    groups: dict[tuple[str, str, str], set[str]] = field(default_factory=dict)  # (indicator, area, dim)

    protected: bool = True

    def take(self, table: _Table, ids: Iterable[str], agency: str | None = None) -> None:
        """Protect ``table`` and keep its figures (``protected=False``: the raw figures, for tests)."""
        protection = table.protect(agency) if self.protected else None
        for key in table.figures:
            self.status[key] = protection.status(key) if protection is not None else "published"
            self.value[key] = table.exact[key]
        for indicator in ids:
            for (area, dim), groups in table.groups.items():
                self.groups.setdefault((indicator, area, dim), set()).update(groups)

    def get(self, key: Key) -> tuple[Any, str]:
        if key not in self.status:
            return 0, "published"  # no atom: nothing there
        return self.value[key], self.status[key]


def _split(total: Any, parts: int, prefix: str) -> dict[str, Any]:
    """``total`` as ``parts`` equal contributors (people: no one of them is an enterprise)."""
    if parts <= 0:
        return {}
    return {f"{prefix}#{k}": Fraction(total) / parts for k in range(parts)}


async def _products(repo: StatsRepository, province: str, quarter: Quarter, result: _Result) -> int:
    counts, ratios = _Table(province), _Table(province)
    unattributed = 0
    for row in await repo.products(province, quarter):
        if row.city is None:
            unattributed += row.count
            continue
        dims = {"industry": row.industry or "other", "category": row.category}
        state = row.grade or "-"
        comparable = row.comparable > 0
        ids = ["listed_products"]
        if row.grade is not None:
            ids += ["labelled_products", f"grade_{row.grade}"]
            if comparable:
                ids.append("_intensity_products")
        counts.add(("p", row.city, dims["industry"], row.category, state, comparable), row.org, row.count, ids,
                   row.city, dims)
        if row.grade is not None and comparable and row.baseline:
            ratio = Fraction(row.kg_sum) / Fraction(row.baseline)
            ratios.add(("i", row.city, dims["industry"], row.category), row.org, max(ratio, Fraction(0)),
                       ["_intensity_sum"], row.city, dims, exact=ratio)
    product_ids = ["listed_products", "labelled_products", *(f"grade_{g}" for g in "ABCDE"), "labelled_share",
                   "intensity_vs_baseline", "_intensity_products"]
    result.take(counts, ids=product_ids)
    result.take(ratios, ids=["_intensity_sum"])
    return unattributed


async def _credits(repo: StatsRepository, province: str, quarter: Quarter, result: _Result) -> None:
    grams = _Table(province)
    ids = {"purchase": "credits_purchases_g", "trip": "credits_travel_g", "redemption": "credits_redeemed_g"}
    people = await repo.people(province, quarter)
    for row in await repo.credits(province, quarter):
        if row.kind == "trip" and row.org == "-":
            # Unattested travel: no operator, so no division; the province's total only, and its
            # contributors are people, counted (up to a few) so that one or two alone stay hidden.
            parts = min(people.unattested, UNATTESTED_SPLIT)
            for who, share in _split(row.grams, parts, "unattested").items():
                grams.add(("c", "trip", None), who, share, [ids["trip"]], None, {}, exact=0)
            grams.exact[(ids["trip"], province, TOTAL, TOTAL)] += row.grams
            continue
        if row.city is None:
            continue  # a merchant or operator without a profile: in no division
        industry = row.industry or "other"
        grams.add(("c", row.kind, row.city, industry), row.org, row.grams, [ids[row.kind]], row.city,
                  {"industry": industry})
    result.take(grams, ids=ids.values())
    # Active people are distinct accounts, not a sum: disclosure control weighs each cell's count as
    # that many people (at most three shares, so fewer than three people stay hidden); the values shown
    # are the distinct counts.
    heads = _Table(province)
    for (city, industry), n in people.cells.items():
        if city is None:
            continue
        industry = industry or "other"
        for who, share in _split(n, min(n, 3), f"{city}/{industry}").items():
            heads.add(("a", city, industry), who, share, ["active_people"], city, {"industry": industry}, exact=0)
    for who, share in _split(people.unattested, min(people.unattested, 3), "unattested").items():
        heads.add(("a", None), who, share, ["active_people"], None, {}, exact=0)
    for city, n in people.cities.items():
        if city is not None:
            heads.exact[("active_people", city + "00", TOTAL, TOTAL)] = n
    for (city, industry), n in people.cells.items():
        if city is not None:
            heads.exact[("active_people", city + "00", "industry", industry or "other")] = n
    for industry, n in people.industries.items():
        heads.exact[("active_people", province, "industry", industry or "other")] = n
    heads.exact[("active_people", province, TOTAL, TOTAL)] = people.total
    result.take(heads, ids=["active_people"])


async def _procurement(repo: StatsRepository, province: str, quarter: Quarter, result: _Result,
                       agency: str | None) -> None:
    tenders, awards, kg = _Table(province), _Table(province), _Table(province)
    for row in await repo.tenders(province, quarter):
        if row.city is None:
            continue
        dims = {"industry": row.industry or "other", "category": row.category}
        ids = ["tenders", *(["tenders_with_carbon_criteria"] if row.with_criteria else [])]
        tenders.add(("t", row.city, dims["industry"], row.category, row.with_criteria), row.org, row.count, ids,
                    row.city, dims)
    for row in await repo.awards(province, quarter):
        if row.city is None:
            continue
        dims = {"industry": row.industry or "other", "category": row.category}
        awards.add(("a", row.city, dims["industry"], row.category), row.org, 1, ["awarded_bids"], row.city, dims)
        if row.baseline is not None:
            footprint = row.bid_kgco2e_per_unit * row.quantity
            baseline = row.baseline * row.quantity
            kg.add(("f", row.city, dims["industry"], row.category), row.org, max(footprint, Decimal(0)),
                   ["awarded_footprint_kg"], row.city, dims, exact=footprint)
            kg.add(("b", row.city, dims["industry"], row.category), row.org, max(baseline, Decimal(0)),
                   ["awarded_baseline_kg"], row.city, dims, exact=baseline)
    result.take(tenders, agency=agency, ids=["tenders", "tenders_with_carbon_criteria"])
    result.take(awards, agency=agency, ids=["awarded_bids"])
    result.take(kg, agency=agency, ids=["awarded_footprint_kg", "awarded_baseline_kg", "avoided_kg"])


async def _trade(repo: StatsRepository, province: str, quarter: Quarter, result: _Result) -> None:
    value, volume, label = _Table(province), _Table(province), _Table(province)
    for row in await repo.shipments(province, quarter):
        if row.city is None:
            continue
        dims = {"industry": row.industry or "other", "category": row.category, "destination": row.destination}
        atom = (row.city, dims["industry"], row.category, row.destination, row.covered)
        value.add(("v", *atom), row.org, row.value_cents,
                  ["export_value_cents", *(["export_value_covered_cents"] if row.covered else [])], row.city, dims)
        volume.add(("q", *atom), row.org, max(row.volume_kg, Decimal(0)),
                   ["export_volume_kg_baseline", *(["export_volume_covered_kg_baseline"] if row.covered else [])],
                   row.city, dims, exact=row.volume_kg)
        if row.covered:
            label.add(("l", *atom), row.org, max(row.label_kg, Decimal(0)), ["_export_label_kg"], row.city, dims,
                      exact=row.label_kg)
    result.take(value, ids=["export_value_cents", "export_value_covered_cents",
                                         "export_value_covered_share"])
    result.take(volume, ids=["export_volume_kg_baseline", "export_volume_covered_kg_baseline",
                                           "export_volume_covered_share", "export_intensity_vs_baseline"])
    result.take(label, ids=["_export_label_kg"])


def _text(value: Any, unit: str) -> int | str:
    if unit in ("count", "g", "cents", "people"):
        return int(value)
    exact = Decimal(value) if not isinstance(value, Fraction) else Decimal(value.numerator) / value.denominator
    if exact == exact.to_integral_value():
        return str(exact.quantize(Decimal(1)))
    return format(exact.normalize(), "f")


def _derived(indicator: str, key_of: Any, result: _Result) -> tuple[int | str | None, str]:
    kind, first, second = DERIVED[indicator]
    (a, a_status), (b, b_status) = result.get(key_of(first)), result.get(key_of(second))
    statuses = {a_status, b_status}
    status = "primary" if "primary" in statuses else "secondary" if "secondary" in statuses else "published"
    if status != "published":
        return None, status
    if kind == "difference":
        return _text(Decimal(a) - Decimal(b), "kg"), status
    if not b:
        return None, status  # nothing to divide by: no ratio, and nothing hidden
    ratio = Fraction(a) / Fraction(b)
    return str((Decimal(ratio.numerator) / Decimal(ratio.denominator)).quantize(RATIO_PLACES, ROUND_HALF_EVEN)), status


@lru_cache(maxsize=512)
def _destination_names(code: str) -> dict[str, str]:
    from babel import Locale

    out = {}
    for tag, locale in (("zh-Hans", "zh_Hans"), ("zh-Hant", "zh_Hant"), ("en", "en")):
        out[tag] = Locale.parse(locale).territories.get(code.upper(), code)
    return out


def _group_names(dim: str, group: str) -> dict[str, str]:
    if group == TOTAL:
        return dict(TOTAL_NAMES)
    if dim == "industry":
        return divisions.industry_names(group)
    if dim == "destination":
        return _destination_names(group)
    return {"zh-Hans": group, "zh-Hant": group, "en": group}


def _cells(indicator: str, area: str, dim: str, result: _Result) -> list[Cell]:
    unit = DEFINITIONS[indicator][0]
    groups = sorted(result.groups.get((indicator, area, dim), set()))
    cells = []
    for group in [*groups, TOTAL]:
        d = TOTAL if group == TOTAL else dim

        def key_of(name: str, d: str = d, group: str = group) -> Key:
            return (name, area, d, group)

        if indicator in DERIVED:
            value, status = _derived(indicator, key_of, result)
        else:
            raw, status = result.get(key_of(indicator))
            value = _text(raw, unit) if status == "published" else None
        cells.append(Cell(group=group, group_names=_group_names(d, group), value=value, status=status))  # type: ignore[arg-type]
    return cells


def parse_area(code: str) -> str:
    """The area code if it is a province or a prefecture-level city in force; ValueError otherwise."""
    if not divisions.is_division(code) or divisions.level(code) not in ("province", "city"):
        raise ValueError(code)
    return code


async def compute(session: AsyncSession, *, area: str, quarter: Quarter, by: By,
                  agency: str | None = None, protected: bool = True) -> Indicators:
    """The indicators of ``area`` (a province or city code) in ``quarter``, grouped ``by`` industry or
    category, disclosure-protected. ``agency``: an officer's organisation, whose own procurement
    figures are shown unsuppressed (the public gets ``None``). ``protected=False`` skips disclosure
    control: for tests and audits only, never for a response."""
    parse_area(area)
    province = divisions.province_of(area)
    repo = StatsRepository(session)
    result = _Result(protected=protected)
    unattributed = await _products(repo, province, quarter, result)
    await _credits(repo, province, quarter, result)
    await _procurement(repo, province, quarter, result, agency)
    await _trade(repo, province, quarter, result)
    indicators = []
    for indicator in ORDER:
        unit, names, definition = DEFINITIONS[indicator]
        indicators.append(Indicator(
            id=indicator, unit=unit, names=dict(names), definition=dict(definition),  # type: ignore[arg-type]
            cells=_cells(indicator, area, by, result),
            by_destination=_cells(indicator, area, "destination", result) if indicator in TRADE else None))
    return Indicators(
        area=Area(code=area, level=divisions.level(area), names=divisions.names(area)),  # type: ignore[arg-type]
        quarter=str(quarter), period=Period(starts_on=quarter.first_day, ends_on=quarter.last_day), by=by,
        generated_at=datetime.now(UTC), indicators=indicators, unattributed_products=unattributed)
