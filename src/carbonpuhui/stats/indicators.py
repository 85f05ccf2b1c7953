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

import contextlib
import functools
import gc
import math
import threading
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, localcontext
from fractions import Fraction
from functools import lru_cache
from typing import Any, Literal

import anyio
import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from carbonpuhui.db.engine import snapshot_twin
from carbonpuhui.stats import disclosure, divisions
from carbonpuhui.stats.quarters import Quarter
from carbonpuhui.stats.repository import EXACT, Shipments, StatsRepository
from carbonpuhui.stats.schemas import Area, Cell, Indicator, Indicators, Period

By = Literal["industry", "category"]
Key = tuple[str, ...]
TOTAL = "*"
TOTAL_NAMES = {"zh-Hans": "合计", "zh-Hant": "合計", "en": "Total"}
RATIO_DIGITS = 4  # decimal places of ratios
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


def _scaled(values: list[Any]) -> tuple[np.ndarray, int, type]:
    """Exact values as integers over one common denominator: (numerators, denominator, the values'
    type for display). int64 when the sums cannot overflow, else Python ints (still exact)."""
    kinds = {type(v) for v in values}
    if Fraction in kinds:
        scale = 1
        for d in {Fraction(v).denominator for v in values}:
            scale = scale * d // math.gcd(scale, d)
        numerators = [int(Fraction(v) * scale) for v in values]
    elif Decimal in kinds:
        # Exact ratios (a decimal's denominator is 2^a 5^b), over their denominators' least common multiple.
        ratios = [v.as_integer_ratio() if type(v) is Decimal else (int(v), 1) for v in values]
        scale = 1
        for d in {d for _, d in ratios}:
            scale = scale * d // math.gcd(scale, d)
        numerators = [n * (scale // d) for n, d in ratios]
    else:
        scale, numerators = 1, [int(v) for v in values]
    bound = max(map(abs, numerators), default=0) * len(numerators)
    dtype: Any = np.int64 if bound < 2**62 else object
    kind = Fraction if Fraction in kinds else Decimal if Decimal in kinds else int
    return np.array(numerators, dtype=dtype), scale, kind


def _typed(numerator: Any, scale: int, kind: type) -> Any:
    if kind is int:
        return int(numerator)
    value = Fraction(int(numerator), scale)
    return disclosure._typed_sum(value, {kind})  # exact: a decimal sum's denominator is 2^a 5^b


def _coded(values: list[str | None] | _Coded) -> tuple[list[str], np.ndarray]:
    """(the distinct values but None, sorted; each value's index in them, -1 for None)."""
    if isinstance(values, _Coded):
        return values.distinct, values.codes
    distinct = sorted(v for v in dict.fromkeys(values) if v is not None)
    rank: dict[str | None, int] = {v: k for k, v in enumerate(distinct)}
    rank[None] = -1
    return distinct, np.fromiter(map(rank.__getitem__, values), np.int64, len(values))


@dataclass(frozen=True)
class _Coded:
    """A column coded once (as by ``_coded``) for several tables built from the same rows. A subset
    keeps every distinct value: codes need not all occur, only keep their sorted order."""

    distinct: list[str]
    codes: np.ndarray

    @classmethod
    def of(cls, values: list[str | None]) -> _Coded:
        return cls(*_coded(values))

    def __len__(self) -> int:
        return len(self.codes)

    def subset(self, mask: np.ndarray) -> _Coded:
        return _Coded(self.distinct, self.codes[mask])


def _unique_rows(columns: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(np.stack(columns, axis=1), axis=0, return_inverse=True)`` for integer columns (each
    >= -1), the inverse flat: as one integer per row in mixed radix (same order) when that fits in
    64 bits, which makes it a plain 1-D unique, several times faster."""
    radix = [int(c.max(initial=0)) + 2 for c in columns]  # (+2: -1 shifts to 0)
    if math.prod(radix) >= 2**62:
        rows, inverse = np.unique(np.stack(columns, axis=1), axis=0, return_inverse=True)
        return rows, inverse.reshape(-1)
    combined = np.zeros(len(columns[0]), dtype=np.int64)
    for c, r in zip(columns, radix, strict=True):
        combined = combined * r + (c + 1)
    distinct, inverse = np.unique(combined, return_inverse=True)
    rows = np.empty((len(distinct), len(columns)), dtype=np.int64)
    for k in range(len(columns) - 1, -1, -1):
        rows[:, k] = distinct % radix[k] - 1
        distinct = distinct // radix[k]
    return rows, inverse.reshape(-1)


# Up to this many possible keys, sums by key are taken in a dense array (no sort).
DENSE_KEYS = 2_000_000


def _sums_by_key(keys: np.ndarray, space: int, values: np.ndarray,
                 more: np.ndarray | None) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """The distinct ``keys`` (each in range(space)), ascending, and per key the sums of ``values`` and of
    ``more`` (``values`` again when None), exact: int64 (bounded by ``_scaled``) or Python ints."""
    columns = [values] if more is None else [values, more]
    if space <= DENSE_KEYS and all(c.dtype != object for c in columns):
        present = np.flatnonzero(np.bincount(keys, minlength=space))
        out = []
        for c in columns:
            total = np.zeros(space, dtype=c.dtype)
            np.add.at(total, keys, c)
            out.append(total[present])
    else:
        order, starts, present = _runs(keys)
        out = [np.add.reduceat(c[order], starts) if len(starts) else c[:0] for c in columns]
    return present, (out[0], out[-1])


def _runs(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort ``codes``: (order, the start of each run of equal codes, the run's code)."""
    order = np.argsort(codes, kind="stable")
    ordered = codes[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if len(ordered) else np.zeros(0, np.int64)
    return order, starts, ordered[starts]


class _Table:
    """One measure's atoms and the figures over them (all areas, all groupings) for one protect call.

    Rows (atom, contributor, magnitude) are collected first; ``finish`` then derives every figure at
    once with NumPy: per figure family (indicator × province or city × total or one dimension), the
    figure of each atom, then the per-contributor sums, their count, maximum and total (the primary
    rule's inputs), all in exact integers over a common denominator."""

    def __init__(self, province: str) -> None:
        self.province = province
        self._atom: dict[Hashable, int] = {}
        self._info: list[tuple[tuple[str, ...], str | None, dict[str, str]]] = []
        self._who: dict[str, int] = {}
        self._atom_rows: list[int] = []  # per row: its atom's and its contributor's numbers
        self._who_rows: list[int] = []
        self._magnitudes: list[Any] = []
        self._exacts: list[Any] = []
        self._adjust: dict[Key, Any] = defaultdict(int)
        self._set: dict[Key, Any] = {}
        self.figures: dict[Key, frozenset[int]] = {}
        self.exact: dict[Key, Any] = {}
        self.summaries: dict[Key, disclosure.Summary] = {}
        self.groups: dict[tuple[str, str], set[str]] = defaultdict(set)
        self.zero_atoms: frozenset[int] = frozenset()
        self.basis_atoms: Callable[[], list[int]] | None = None
        self._columns: tuple[Any, ...] | None = None
        self._n_atoms = 0
        self._agency_alone: dict[Key, int] = {}  # figures with one positive contributor: who it is
        # Per figure: its contributors' numbers and magnitudes (views into one family's arrays), for the
        # residual checks of disclosure control, which pool the contributors of hidden figures.
        self._contributors: dict[Key, tuple[np.ndarray, np.ndarray, int]] = {}

    def add(self, atom: Hashable, contributor: str, magnitude: Any, ids: Iterable[str], city: str | None,
            dims: dict[str, str], exact: Any = None) -> None:
        """``magnitude`` (non-negative) is what disclosure control weighs; ``exact`` what is summed for
        display (the magnitude unless given). An atom's ids, city and groups are the same on every row."""
        self.add_many([atom], [contributor], [magnitude], None if exact is None else [exact],
                      lambda _: (ids, city, dims))

    def add_many(self, atoms: list[Hashable], contributors: list[str], magnitudes: list[Any],
                 exacts: list[Any] | None, describe: Callable[[int], tuple[Iterable[str], str | None,
                                                                            dict[str, str]]]) -> None:
        """``add`` for many rows at once (column-wise); ``describe(k)`` gives the ids, city and groups of
        row k's atom, asked only for the first row of each atom."""
        if not len(atoms) == len(contributors) == len(magnitudes):
            raise ValueError("add_many: columns of different lengths")
        numbers, info, who_of = self._atom, self._info, self._who
        first = dict(zip(reversed(atoms), range(len(atoms) - 1, -1, -1), strict=True))  # atom -> its first row
        for atom, k in first.items():
            if atom not in numbers:
                numbers[atom] = len(info)
                ids, city, dims = describe(k)
                info.append((tuple(ids), city, dict(dims) if city is not None else {}))
        for contributor in dict.fromkeys(contributors):
            if contributor not in who_of:
                who_of[contributor] = len(who_of)
        self._atom_rows.extend(map(numbers.__getitem__, atoms))
        self._who_rows.extend(map(who_of.__getitem__, contributors))
        self._magnitudes.extend(magnitudes)
        self._exacts.extend(magnitudes if exacts is None else exacts)

    def add_columns(self, *, ids: list[tuple[str, ...]], ids_of: list[int] | np.ndarray, cities: list[str] | _Coded,
                    dims: dict[str, list[str] | _Coded], state: list[list[int] | np.ndarray],
                    contributors: list[str] | _Coded,
                    magnitudes: list[Any], exacts: list[Any] | None = None) -> None:
        """Rows given column by column (the large tables: no tuple, dictionary or call per row). Row k's
        atom is (its ids, city, groups and ``state``, small integers for whatever else tells atoms
        apart, e.g. a grade), ``ids[ids_of[k]]`` the figures' indicators it counts in. Every row has a
        city. A table takes either columns, once, or rows (``add``, ``add_many``), not both."""
        if self._atom_rows or self._columns is not None:
            raise ValueError("add_columns: once, on an empty table")
        n = len(contributors)
        if not (len(ids_of) == len(cities) == len(magnitudes) == n and all(len(c) == n for c in dims.values())
                and all(len(c) == n for c in state) and (exacts is None or len(exacts) == n)):
            raise ValueError("add_columns: columns of different lengths")
        self._columns = (list(ids), ids_of, cities, dims, state, contributors, magnitudes,
                         magnitudes if exacts is None else exacts)

    @property
    def atom_count(self) -> int:
        return self._n_atoms

    def adjust(self, key: Key, delta: Any) -> None:
        """Add ``delta`` to a figure's displayed value (not weighed by disclosure control)."""
        self._adjust[key] += delta

    def set_exact(self, key: Key, value: Any) -> None:
        """Display ``value`` for a figure (when it exists) instead of the sum of its rows."""
        self._set[key] = value

    def _measures(self, magnitudes: list[Any], exacts: list[Any]) -> tuple[Any, Any]:
        scaled = _scaled(magnitudes)
        if exacts is magnitudes or (exacts == magnitudes and set(map(type, exacts)) == set(map(type, magnitudes))):
            return scaled, scaled  # (most tables: nothing negative)
        return scaled, _scaled(exacts)

    def _from_rows(self) -> tuple[Any, ...]:
        # Number the atoms and contributors in a canonical order, not the order rows came from the
        # database: the same data then gives the same elimination, whatever the query plan.
        atom_order = sorted(self._atom, key=repr)
        renumber = np.empty(len(atom_order), dtype=np.int64)
        renumber[[self._atom[a] for a in atom_order]] = np.arange(len(atom_order))
        self._info = [self._info[self._atom[a]] for a in atom_order]
        self._atom = {a: k for k, a in enumerate(atom_order)}
        who_order = sorted(self._who)
        who_renumber = np.empty(len(who_order), dtype=np.int64)
        who_renumber[[self._who[w] for w in who_order]] = np.arange(len(who_order))
        self._who = {w: k for k, w in enumerate(who_order)}
        atom_of = renumber[np.array(self._atom_rows, dtype=np.int64)]
        who_of = who_renumber[np.array(self._who_rows, dtype=np.int64)]
        info = self._info
        n_atoms = len(info)
        ids_number: dict[tuple[str, ...], int] = {}
        ids_of = np.fromiter((ids_number.setdefault(ids, len(ids_number)) for ids, _, _ in info), np.int64, n_atoms)
        dims = sorted({d for _, _, ds in info for d in ds})
        # Codes in first-seen order, one pass per column, then renumbered to sorted order (canonical).
        cities, city = _coded([c for _, c, _ in info])
        groups: dict[str, list[str]] = {}
        group: dict[str, np.ndarray] = {}
        for d in dims:
            groups[d], group[d] = _coded([ds.get(d) for _, _, ds in info])
        return (n_atoms, atom_of, who_of, list(ids_number), ids_of, dims, cities, city, groups, group,
                *self._measures(self._magnitudes, self._exacts))

    def _from_columns(self) -> tuple[Any, ...]:
        ids, ids_of, row_cities, row_dims, state, contributors, magnitudes, exacts = self._columns  # type: ignore[misc]
        dims = sorted(row_dims)
        cities, city_rows = _coded(row_cities)
        groups, group_rows = {}, []
        for d in dims:
            groups[d], codes = _coded(row_dims[d])
            group_rows.append(codes)
        who_order, who_of = _coded(contributors)
        self._who = {w: k for k, w in enumerate(who_order)}
        # An atom is a distinct (ids, city, groups, state) row: np.unique numbers them in that
        # lexicographic order of sorted codes, which does not depend on the order rows came in.
        atoms, atom_of = _unique_rows([np.asarray(ids_of, dtype=np.int64), city_rows, *group_rows,
                                       *(np.asarray(c, dtype=np.int64) for c in state)])
        group = {d: atoms[:, 2 + k] for k, d in enumerate(dims)}
        return (len(atoms), atom_of, who_of, ids, atoms[:, 0], dims, cities, atoms[:, 1], groups, group,
                *self._measures(magnitudes, exacts))

    def finish(self) -> None:
        if self._columns is not None and self._columns[5]:  # (any contributors, i.e. any rows)
            parts = self._from_columns()
        elif self._atom_rows:
            parts = self._from_rows()
        else:
            return
        (n_atoms, atom_of, who_of, ids_number, ids_of, dims, cities, city, groups, group,
         (magnitudes, m_scale, m_kind), (exacts, e_scale, e_kind)) = parts
        self._n_atoms = n_atoms
        per_atom = np.zeros(n_atoms, dtype=magnitudes.dtype)
        np.add.at(per_atom, atom_of, magnitudes)
        self.zero_atoms = frozenset(np.flatnonzero(per_atom == 0).tolist())
        indicators = sorted({i for ids in ids_number for i in ids})
        has = np.array([[i in ids for i in indicators] for ids in ids_number], dtype=bool).reshape(
            len(ids_number), len(indicators))[ids_of]
        for column, indicator in enumerate(indicators):
            for local in (False, True):
                for dim in [TOTAL, *dims]:
                    mask = has[:, column].copy()
                    if local or dim != TOTAL:
                        mask &= city >= 0  # groups and cities: attributed atoms only
                    width = len(groups[dim]) if dim != TOTAL else 1
                    code = (city if local else np.zeros(n_atoms, np.int64)) * width
                    if dim != TOTAL:
                        mask &= group[dim] >= 0
                        code = code + group[dim]
                    if not mask.any():
                        continue
                    self._family(indicator, local, dim, groups.get(dim), cities, width, np.where(mask, code, -1),
                                 atom_of, who_of, magnitudes, m_scale, m_kind, exacts, e_scale, e_kind)
        # Only a table with something to protect needs it (disclosure asks for it then).
        # (not a closure over self: a table referring to itself would wait for the cyclic collector,
        # paused while computations run, and then take it a tenth of a second to free)
        self.basis_atoms = functools.partial(_Table._forest, has, city, group, dims, per_atom != 0)
        for key, delta in self._adjust.items():
            self.exact[key] = self.exact.get(key, 0) + delta
        for key, value in self._set.items():
            if key in self.exact:
                self.exact[key] = value
        for key in self.figures:
            if key[2] != TOTAL:
                self.groups[(key[1], key[2])].add(key[3])

    @staticmethod
    def _forest(has: np.ndarray, city: np.ndarray, group: dict[str, np.ndarray], dims: list[str],
                nonzero: np.ndarray) -> list[int]:
        """Atoms whose rows (the figures each lies in) span every atom's row, for the secondary audit.

        An atom lies in its indicators' totals and in one group per dimension, so with κ = (its city,
        its indicators), its row is f(κ, its groups but the last dimension's) + g(κ, its last group).
        Take the bipartite graph of those two halves with the atoms as edges: along any path, a row is
        the alternating sum of the path's rows, so a spanning forest's atoms span all the others
        exactly (union-find). The audit then eliminates a few thousand rows, not every atom."""
        atoms = np.flatnonzero(nonzero)
        if not len(atoms):
            return []
        # The dimension with the most groups alone on one side keeps the forest small.
        dims = sorted(dims, key=lambda d: (int(group[d].max(initial=0)), d))
        kappa = [city[atoms], *(has[atoms, k].astype(np.int64) for k in range(has.shape[1]))]
        rest = [group[d][atoms] for d in dims[:-1]]
        last = [group[dims[-1]][atoms]] if dims else []
        # Vertices as integers: one side's (κ, groups but the last), then the other's (κ, last group).
        _, left = _unique_rows([*kappa, *rest])
        _, right = _unique_rows([*kappa, *last])
        right = right + int(left.max()) + 1
        parent = list(range(int(right.max()) + 1))

        def root(x: int) -> int:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        chosen = []
        for atom, a, b in zip(atoms.tolist(), left.tolist(), right.tolist(), strict=True):
            a, b = root(a), root(b)
            if a != b:
                parent[a] = b
                chosen.append(atom)
        return chosen

    def _family(self, indicator: str, local: bool, dim: str, groups: list[str] | None, cities: list[str],
                width: int, code: np.ndarray, atom_of: np.ndarray, who_of: np.ndarray, magnitudes: np.ndarray,
                m_scale: int, m_kind: type, exacts: np.ndarray, e_scale: int, e_kind: type) -> None:
        def key_of(c: int) -> Key:
            area = cities[c // width] + "00" if local else self.province
            return (indicator, area, TOTAL, TOTAL) if dim == TOTAL else (indicator, area, dim, groups[c % width])

        atoms = np.flatnonzero(code >= 0)
        order, starts, figure_codes = _runs(code[atoms])
        for c, members in zip(figure_codes.tolist(), np.split(atoms[order], starts[1:]), strict=True):
            self.figures[key_of(c)] = frozenset(members.tolist())
        row_code = code[atom_of]
        inside = np.flatnonzero(row_code >= 0)
        row_code = row_code[inside]
        # Per (figure, contributor): the sums over equal pairs, in pair order.
        n_who = int(who_of.max()) + 1
        pair = row_code * n_who + who_of[inside]
        pairs, (sums, exact) = _sums_by_key(pair, (int(row_code.max()) + 1) * n_who,
                                            magnitudes[inside], exacts[inside] if exacts is not magnitudes else None)
        figure_of_pair = pairs // n_who
        f_starts = np.flatnonzero(np.r_[True, figure_of_pair[1:] != figure_of_pair[:-1]])  # sorted: runs in place
        f_codes = figure_of_pair[f_starts]
        positive = sums > 0
        counts = np.add.reduceat(positive.astype(np.int64), f_starts)
        largest = np.maximum.reduceat(sums, f_starts)
        totals = np.add.reduceat(np.where(positive, sums, 0), f_starts)
        values = np.add.reduceat(exact, f_starts)
        lone = np.add.reduceat(np.where(positive, pairs % n_who, 0), f_starts)  # the one positive contributor
        who_in_pair = pairs % n_who
        ends = [*f_starts[1:].tolist(), len(pairs)]
        for k, c in enumerate(f_codes.tolist()):
            key = key_of(c)
            n = int(counts[k])
            self._contributors[key] = (who_in_pair[f_starts[k]:ends[k]], sums[f_starts[k]:ends[k]], m_scale)
            # The weights stay in the table's integer unit (magnitude × m_scale): the rules compare
            # sums and shares, which one common positive scale leaves alone, and integer sums are many
            # times faster than Fraction ones in the residual checks.
            self.summaries[key] = disclosure.Summary(
                value=_typed(values[k], e_scale, e_kind), contributors=n,
                largest=int(largest[k]) if n else 0, total=int(totals[k]))
            self.exact[key] = self.summaries[key].value
            if n == 1:
                self._agency_alone[key] = int(lone[k])

    def contributions(self, key: Key) -> dict[int, int]:
        """A figure's magnitudes per contributor (by number; those > 0), exact, in the table's integer
        unit (magnitude × its common denominator), as its summary's largest and total are."""
        who, sums, _ = self._contributors[key]
        return {w: int(m) for w, m in zip(who.tolist(), sums.tolist(), strict=True) if m > 0}

    def protect(self, exempt_org: str | None = None) -> disclosure.Protection:
        published = [disclosure.Published(key, atoms) for key, atoms in self.figures.items()]
        exempt: set[Key] = set()
        if exempt_org is not None and exempt_org in self._who:
            # An agency's officers already know the figures made of their agency's tenders alone.
            own = self._who[exempt_org]
            exempt = {key for key, who in self._agency_alone.items() if who == own}
        protection = disclosure.protect_summarised(published, self.summaries, zero_atoms=self.zero_atoms,
                                                   basis_atoms=self.basis_atoms, exempt=frozenset(exempt),
                                                   contributions=self.contributions)
        if protection.exposed and self.basis_atoms is not None:
            # Not expected (the forest spans exactly), but then every atom decides, at full cost.
            protection = disclosure.protect_summarised(published, self.summaries, zero_atoms=self.zero_atoms,
                                                       exempt=frozenset(exempt), contributions=self.contributions)
        return protection


@dataclass
class _Result:
    """Every table's protection and exact values, looked up by figure key."""

    status: dict[Key, str] = field(default_factory=dict)
    value: dict[Key, Any] = field(default_factory=dict)
    groups: dict[tuple[str, str, str], set[str]] = field(default_factory=dict)  # (indicator, area, dim)

    protected: bool = True
    pending: list[tuple[_Table, tuple[str, ...], str | None]] = field(default_factory=list)
    queue: Any = None  # the worker's inbox while ``run`` is open

    @contextlib.asynccontextmanager
    async def run(self) -> AsyncIterator[None]:
        """While open, work passed to ``later`` runs in one worker thread, in order, while the event loop
        goes on with the next query: the database and the CPU-bound table building and disclosure
        control (seconds on a large province) overlap, and the event loop is never blocked by them."""
        send, receive = anyio.create_memory_object_stream[tuple[Callable[..., None], tuple[Any, ...]]](math.inf)

        async def worker() -> None:
            async with receive:
                async for work, args in receive:
                    await anyio.to_thread.run_sync(self._work, work, args)

        async with anyio.create_task_group() as group:
            group.start_soon(worker)
            self.queue = send
            try:
                async with send:
                    yield
            finally:
                self.queue = None

    def _work(self, work: Callable[..., None], args: tuple[Any, ...]) -> None:
        work(*args)
        self.settle()

    def later(self, work: Callable[..., None], *args: Any) -> None:
        """Run ``work(*args)`` (which builds tables and ``take``s them) and settle its tables: in the
        worker thread while ``run`` is open, else at once."""
        if self.queue is None:
            self._work(work, args)
        else:
            self.queue.send_nowait((work, args))

    def take(self, table: _Table, ids: Iterable[str], agency: str | None = None) -> None:
        """Keep ``table`` for ``settle``."""
        self.pending.append((table, tuple(ids), agency))

    def settle(self) -> None:
        """Protect every table taken and keep its figures (``protected=False``: the raw figures)."""
        for table, ids, agency in self.pending:
            self._settle(table, ids, agency)
        self.pending.clear()

    def _settle(self, table: _Table, ids: Iterable[str], agency: str | None) -> None:
        table.finish()
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


_paused = threading.Lock()
_pausing = [0, False]  # computations under way, and whether the collector was enabled before the first


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Hold off Python's cyclic garbage collector while a computation runs. Building a province's
    tables makes millions of small containers (tuples, dicts, sets), which trip full collections over
    every object alive again and again: a third of the CPU time of disclosure control, for a few
    cycles of garbage. Reference counting still frees nearly everything at once; the collector runs
    again when the last computation under way ends (process-wide: other requests meanwhile only
    wait longer for their cycles to be collected)."""
    with _paused:
        if _pausing[0] == 0:
            _pausing[1] = gc.isenabled()
            gc.disable()
        _pausing[0] += 1
    try:
        yield
    finally:
        with _paused:
            _pausing[0] -= 1
            if _pausing[0] == 0 and _pausing[1]:
                gc.enable()


def _split(total: Any, parts: int, prefix: str) -> dict[str, Any]:
    """``total`` as ``parts`` equal contributors (people: no one of them is an enterprise)."""
    if parts <= 0:
        return {}
    return {f"{prefix}#{k}": Fraction(total) / parts for k in range(parts)}


async def _products(repo: StatsRepository, province: str, quarter: Quarter, result: _Result) -> int:
    rows = await repo.products(province, quarter)
    result.later(_build_products, province, [row for row in rows if row.city is not None], result)
    return sum(row.count for row in rows if row.city is None)


def _build_products(province: str, rows: list[Any], result: _Result) -> None:
    counts, ratios = _Table(province), _Table(province)
    ids: dict[tuple[str, ...], int] = {}  # an atom's indicators, by its label's grade and comparability

    def ids_of(grade: str | None, comparable: bool) -> int:
        if grade is None:
            of: tuple[str, ...] = ("listed_products",)
        else:
            of = ("listed_products", "labelled_products", f"grade_{grade}",
                  *(("_intensity_products",) if comparable else ()))
        return ids.setdefault(of, len(ids))

    codes = [ids_of(r.grade, r.comparable > 0) for r in rows]
    industries = [r.industry or "other" for r in rows]
    counts.add_columns(ids=list(ids), ids_of=codes, cities=[r.city for r in rows],
                       dims={"industry": industries, "category": [r.category for r in rows]}, state=[],
                       contributors=[r.org for r in rows], magnitudes=[r.count for r in rows])
    rated = [r for r in rows if r.grade is not None and r.comparable > 0 and r.baseline]
    exact = [Fraction(r.kg_sum) / Fraction(r.baseline) for r in rated]
    zero = Fraction(0)
    ratios.add_columns(ids=[("_intensity_sum",)], ids_of=[0] * len(rated), cities=[r.city for r in rated],
                       dims={"industry": [r.industry or "other" for r in rated],
                             "category": [r.category for r in rated]}, state=[],
                       contributors=[r.org for r in rated], magnitudes=[max(v, zero) for v in exact], exacts=exact)
    product_ids = ["listed_products", "labelled_products", *(f"grade_{g}" for g in "ABCDE"), "labelled_share",
                   "intensity_vs_baseline", "_intensity_products"]
    result.take(counts, ids=product_ids)
    result.take(ratios, ids=["_intensity_sum"])


async def _credits(repo: StatsRepository, province: str, quarter: Quarter, result: _Result) -> None:
    people = await repo.people(province, quarter)
    result.later(_build_credits, province, people, await repo.credits(province, quarter), result)


def _build_credits(province: str, people: Any, rows: list[Any], result: _Result) -> None:
    grams = _Table(province)
    ids = {"purchase": "credits_purchases_g", "trip": "credits_travel_g", "redemption": "credits_redeemed_g"}
    for row in rows:
        if row.kind == "trip" and row.org == "-":
            # Unattested travel: no operator, so no division; the province's total only, and its
            # contributors are people, counted (up to a few) so that one or two alone stay hidden.
            parts = min(people.unattested, UNATTESTED_SPLIT)
            for who, share in _split(row.grams, parts, "unattested").items():
                grams.add(("c", "trip", None), who, share, [ids["trip"]], None, {}, exact=0)
            grams.adjust((ids["trip"], province, TOTAL, TOTAL), row.grams)
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
            heads.set_exact(("active_people", city + "00", TOTAL, TOTAL), n)
    for (city, industry), n in people.cells.items():
        if city is not None:
            heads.set_exact(("active_people", city + "00", "industry", industry or "other"), n)
    for industry, n in people.industries.items():
        heads.set_exact(("active_people", province, "industry", industry or "other"), n)
    heads.set_exact(("active_people", province, TOTAL, TOTAL), people.total)
    result.take(heads, ids=["active_people"])


async def _procurement(repo: StatsRepository, province: str, quarter: Quarter, result: _Result,
                       agency: str | None) -> None:
    result.later(_build_procurement, province, await repo.tenders(province, quarter),
                 await repo.awards(province, quarter), result, agency)


def _build_procurement(province: str, tender_rows: list[Any], award_rows: list[Any], result: _Result,
                       agency: str | None) -> None:
    tenders, awards, kg = _Table(province), _Table(province), _Table(province)
    for row in tender_rows:
        if row.city is None:
            continue
        dims = {"industry": row.industry or "other", "category": row.category}
        ids = ["tenders", *(["tenders_with_carbon_criteria"] if row.with_criteria else [])]
        tenders.add(("t", row.city, dims["industry"], row.category, row.with_criteria), row.org, row.count, ids,
                    row.city, dims)
    for row in award_rows:
        if row.city is None:
            continue
        dims = {"industry": row.industry or "other", "category": row.category}
        awards.add(("a", row.city, dims["industry"], row.category), row.org, 1, ["awarded_bids"], row.city, dims)
        if row.baseline is not None:
            with localcontext(EXACT):
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
    result.later(_build_trade, province, await repo.shipments(province, quarter), result)


def _build_trade(province: str, rows: Shipments, result: _Result) -> None:
    value, volume, label = _Table(province), _Table(province), _Table(province)
    covered = np.asarray(rows.covered, dtype=bool)
    state = covered.astype(np.int64)
    # The three tables share their rows' keys: coded once (the label table's are the covered rows').
    keys = {"city": _Coded.of(rows.city), "industry": _Coded.of([v or "other" for v in rows.industry]),
            "category": _Coded.of(rows.category), "destination": _Coded.of(rows.destination),
            "org": _Coded.of(rows.org)}
    zero = Decimal(0)

    def add(table: _Table, only_covered: bool, ids: list[tuple[str, ...]], magnitudes: list[Any],
            exacts: list[Any] | None) -> None:
        # Covered and not covered are told apart by their ids (the covered ones count in one more).
        of = {k: c.subset(covered) for k, c in keys.items()} if only_covered else keys
        flags = state[covered] if only_covered else state
        table.add_columns(ids=ids, ids_of=flags if len(ids) > 1 else np.zeros(len(flags), np.int64),
                          cities=of["city"], dims={d: of[d] for d in ("industry", "category", "destination")},
                          state=[flags], contributors=of["org"], magnitudes=magnitudes, exacts=exacts)

    add(value, False, [("export_value_cents",), ("export_value_cents", "export_value_covered_cents")],
        rows.value_cents, None)
    volumes = rows.volume_kg
    add(volume, False, [("export_volume_kg_baseline",),
                        ("export_volume_kg_baseline", "export_volume_covered_kg_baseline")],
        [zero if v < zero else v for v in volumes], volumes)
    labels = [v for v, c in zip(rows.label_kg, rows.covered, strict=True) if c]
    add(label, True, [("_export_label_kg",)], [zero if v < zero else v for v in labels], labels)
    result.take(value, ids=["export_value_cents", "export_value_covered_cents", "export_value_covered_share"])
    result.take(volume, ids=["export_volume_kg_baseline", "export_volume_covered_kg_baseline",
                             "export_volume_covered_share", "export_intensity_vs_baseline"])
    result.take(label, ids=["_export_label_kg"])


def _text(value: Any, unit: str) -> int | str:
    if unit in ("count", "g", "cents", "people"):
        return int(value)
    with localcontext(EXACT):  # exact: a sum of decimals has a denominator 2^a 5^b
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
        with localcontext(EXACT):
            return _text(Decimal(a) - Decimal(b), "kg"), status
    if not b:
        return None, status  # nothing to divide by: no ratio, and nothing hidden
    # Rounded once, exactly (round() of a Fraction is half-even), not after a rounded division.
    ten_thousandths = round(Fraction(a) / Fraction(b) * 10**RATIO_DIGITS)
    with localcontext(EXACT):
        return str(Decimal(ten_thousandths).scaleb(-RATIO_DIGITS)), status


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
    with _collector_paused():
        await repo.tune()
        unattributed = 0

        async def the_rest(repo: StatsRepository) -> None:
            nonlocal unattributed
            unattributed = await _products(repo, province, quarter, result)
            await _credits(repo, province, quarter, result)
            await _procurement(repo, province, quarter, result, agency)

        async with result.run(), snapshot_twin(session) as twin:  # each table is built while the next query runs
            if twin is None:
                await _trade(repo, province, quarter, result)  # (the most work after its query: first)
                await the_rest(repo)
            else:  # the shipments on one connection, the rest meanwhile on another, from the same snapshot
                other = StatsRepository(twin)
                await other.tune()
                async with anyio.create_task_group() as group:
                    group.start_soon(_trade, repo, province, quarter, result)
                    group.start_soon(the_rest, other)
            await repo.untune()  # (on an error the transaction is rolled back, and its SET LOCAL with it)
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
