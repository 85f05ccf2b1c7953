"""A quarterly report's content as JSON, CSV and a printable HTML page with inline SVG charts.

Pure functions of the stored content (plain JSON, see ``reports.build``), so a frozen revision renders
the same in any locale at any later time. Every text is escaped here: organisation, product and tender
names come from users. The page needs no script and loads nothing: ``PAGE_CSP`` is the policy to send
with it. The static wording lives in ``_TEXT`` (display strings, not error messages, so no catalogs).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import re
from decimal import Decimal, InvalidOperation
from html import escape
from typing import Any

from carbonpuhui.i18n import SUPPORTED
from carbonpuhui.labels.render import ALERT, BRAND, GRADE_COLOURS

GRADES = ("A", "B", "C", "D", "E")
PREVIOUS_FILL = "#9aa5a0"
_NUMERALS = {"zh-Hans": "一二三四", "zh-Hant": "一二三四"}

_TEXT: dict[str, dict[str, str]] = {
    "zh-Hans": {
        "title": "{city}{quarter}碳足迹试点工作进展报告",
        "quarter": "{year}年第{numeral}季度",
        "kicker": "碳足迹标识认证试点 · 季度报告",
        "province": "省份",
        "period": "统计期间",
        "revision": "修订版本",
        "draft": "草稿（未提交，数据为当前值）",
        "submitted_at": "提交时间",
        "due_on": "截止日期",
        "late": "逾期提交",
        "on_time": "按时提交",
        "note": "备注",
        "generated_at": "生成时间",
        "sha256": "内容校验值（SHA-256）",
        "summary": "主要指标",
        "indicator": "指标",
        "group": "分组",
        "current": "本季度",
        "previous": "上季度",
        "change": "环比变化",
        "total": "合计",
        "grades": "碳足迹等级分布（经认证标识）",
        "grades_desc": "各等级经认证标识产品数，本季度与上季度对比：{values}",
        "qoq": "主要指标环比",
        "qoq_desc": "本季度与上季度对比：{values}",
        "details": "分项指标",
        "definition": "口径",
        "by_destination": "按出口目的地",
        "labels": "本季度签发的碳足迹标识",
        "no_labels": "本季度无签发的标识。",
        "gtin": "商品条码",
        "product": "产品",
        "category": "类别",
        "grade": "等级",
        "footprint": "碳足迹（kgCO₂e/声明单位）",
        "scheme": "类型",
        "verified": "已认证",
        "self_declared": "自我声明",
        "issued_on": "签发日期",
        "tenders": "政府采购项目",
        "no_tenders": "本季度无采购项目。",
        "tender": "项目",
        "criteria": "碳要求",
        "awarded": "已授标",
        "yes": "是",
        "no": "否",
        "credits": "碳普惠减排量月度统计（克 CO₂e）",
        "month": "月份",
        "purchases_g": "低碳消费",
        "travel_g": "绿色出行",
        "redeemed_g": "兑换",
        "withheld": "—",
        "legend": "“—”表示为保护企业商业秘密而不予公布的数据（少于3家企业，或单一企业占比超过85%，"
                  "或可由其他公布数据推算）。",
        "unattributed": "未登记所属地区的企业产品数：{count}",
        "no_data": "无数据",
        "colon": "：",
    },
    "zh-Hant": {
        "title": "{city}{quarter}碳足跡試點工作進展報告",
        "quarter": "{year}年第{numeral}季度",
        "kicker": "碳足跡標識認證試點 · 季度報告",
        "province": "省份",
        "period": "統計期間",
        "revision": "修訂版本",
        "draft": "草稿（未提交，數據為當前值）",
        "submitted_at": "提交時間",
        "due_on": "截止日期",
        "late": "逾期提交",
        "on_time": "按時提交",
        "note": "備註",
        "generated_at": "產生時間",
        "sha256": "內容校驗值（SHA-256）",
        "summary": "主要指標",
        "indicator": "指標",
        "group": "分組",
        "current": "本季度",
        "previous": "上季度",
        "change": "環比變化",
        "total": "合計",
        "grades": "碳足跡等級分布（經認證標識）",
        "grades_desc": "各等級經認證標識產品數，本季度與上季度對比：{values}",
        "qoq": "主要指標環比",
        "qoq_desc": "本季度與上季度對比：{values}",
        "details": "分項指標",
        "definition": "口徑",
        "by_destination": "按出口目的地",
        "labels": "本季度簽發的碳足跡標識",
        "no_labels": "本季度無簽發的標識。",
        "gtin": "商品條碼",
        "product": "產品",
        "category": "類別",
        "grade": "等級",
        "footprint": "碳足跡（kgCO₂e/聲明單位）",
        "scheme": "類型",
        "verified": "已認證",
        "self_declared": "自我聲明",
        "issued_on": "簽發日期",
        "tenders": "政府採購項目",
        "no_tenders": "本季度無採購項目。",
        "tender": "項目",
        "criteria": "碳要求",
        "awarded": "已決標",
        "yes": "是",
        "no": "否",
        "credits": "碳普惠減排量月度統計（克 CO₂e）",
        "month": "月份",
        "purchases_g": "低碳消費",
        "travel_g": "綠色出行",
        "redeemed_g": "兌換",
        "withheld": "—",
        "legend": "「—」表示為保護企業商業秘密而不予公布的數據（少於3家企業，或單一企業占比超過85%，"
                  "或可由其他公布數據推算）。",
        "unattributed": "未登記所屬地區的企業產品數：{count}",
        "no_data": "無數據",
        "colon": "：",
    },
    "en": {
        "title": "{city} pilot progress report, {quarter}",
        "quarter": "{year} Q{number}",
        "kicker": "Carbon footprint label pilot · quarterly report",
        "province": "Province",
        "period": "Period",
        "revision": "Revision",
        "draft": "Draft (not submitted; current figures)",
        "submitted_at": "Submitted",
        "due_on": "Due on",
        "late": "submitted late",
        "on_time": "submitted on time",
        "note": "Note",
        "generated_at": "Generated",
        "sha256": "Content checksum (SHA-256)",
        "summary": "Key indicators",
        "indicator": "Indicator",
        "group": "Group",
        "current": "This quarter",
        "previous": "Previous quarter",
        "change": "Change",
        "total": "Total",
        "grades": "Grade distribution (verified labels)",
        "grades_desc": "Verified labelled products per grade, this quarter against the previous one: {values}",
        "qoq": "Key indicators, quarter on quarter",
        "qoq_desc": "This quarter against the previous one: {values}",
        "details": "Indicators in detail",
        "definition": "Definition",
        "by_destination": "By export destination",
        "labels": "Carbon labels issued this quarter",
        "no_labels": "No labels were issued this quarter.",
        "gtin": "GTIN",
        "product": "Product",
        "category": "Category",
        "grade": "Grade",
        "footprint": "Footprint (kgCO₂e per declared unit)",
        "scheme": "Scheme",
        "verified": "Verified",
        "self_declared": "Self-declared",
        "issued_on": "Issued",
        "tenders": "Public procurement",
        "no_tenders": "No tenders this quarter.",
        "tender": "Tender",
        "criteria": "Carbon criteria",
        "awarded": "Awarded",
        "yes": "Yes",
        "no": "No",
        "credits": "Carbon-inclusive credits by month (g CO₂e)",
        "month": "Month",
        "purchases_g": "Purchases",
        "travel_g": "Green travel",
        "redeemed_g": "Redeemed",
        "withheld": "—",
        "legend": "“—” marks a figure withheld to protect enterprises' confidential data (fewer than 3 "
                  "enterprises, one enterprise above 85% of it, or computable from other published figures).",
        "unattributed": "Products of enterprises without a registered division: {count}",
        "no_data": "No data",
        "colon": ": ",
    },
}

_UNITS = {
    "zh-Hans": {"g": "克 CO₂e", "kg": "千克 CO₂e", "cents": "元", "people": "人", "count": "", "ratio": ""},
    "zh-Hant": {"g": "克 CO₂e", "kg": "公斤 CO₂e", "cents": "元", "people": "人", "count": "", "ratio": ""},
    "en": {"g": "g CO₂e", "kg": "kg CO₂e", "cents": "CNY", "people": "people", "count": "", "ratio": ""},
}

_FONTS = {
    "zh-Hans": "'Noto Sans CJK SC', 'Source Han Sans SC', 'PingFang SC', 'Microsoft YaHei', sans-serif",
    "zh-Hant": "'Noto Sans CJK TC', 'Source Han Sans TC', 'PingFang TC', 'Microsoft JhengHei', sans-serif",
    "en": "'Noto Sans', 'Helvetica Neue', Arial, 'Noto Sans CJK SC', sans-serif",
}

# What XML and HTML forbid even escaped: one such character in a name would break the SVG.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

CSV_COLUMNS = ("indicator", "indicator_name", "unit", "dimension", "group", "group_name", "quarter", "value",
               "status", "previous_quarter", "previous_value", "previous_status", "change")


def _esc(value: object) -> str:
    return escape(_NOT_XML.sub("\ufffd", str(value)), quote=True)


def _strings(locale: str) -> dict[str, str]:
    if locale not in _TEXT:
        raise ValueError(f"unsupported locale {locale!r}; expected one of {', '.join(SUPPORTED)}")
    return _TEXT[locale]


def _pick(names: dict[str, str] | None, locale: str, fallback: str) -> str:
    if not names:
        return fallback
    return names.get(locale) or names.get("en") or fallback


def quarter_name(quarter: str, locale: str) -> str:
    year, number = int(quarter[:4]), int(quarter[5])
    numeral = _NUMERALS.get(locale, "1234")[number - 1]
    return _strings(locale)["quarter"].format(year=year, number=number, numeral=numeral)


def title(content: dict[str, Any], locale: str) -> str:
    city = _pick(content.get("city_names"), locale, content["city"])
    return _strings(locale)["title"].format(city=city, quarter=quarter_name(content["quarter"], locale))


# --- JSON and CSV ---------------------------------------------------------------------------------


def to_json(content: dict[str, Any]) -> bytes:
    """The stored content, as stored (UTF-8, keys in their stored order)."""
    return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()


def _cells(indicator: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return ([("group", cell) for cell in indicator.get("cells", [])]
            + [("destination", cell) for cell in indicator.get("by_destination") or []])


def rows(content: dict[str, Any], locale: str) -> list[dict[str, Any]]:
    """One row per indicator and cell: this quarter, the previous one, the change, each cell's status."""
    before = {indicator["id"]: {(dim, cell["group"]): cell for dim, cell in _cells(indicator)}
              for indicator in content.get("previous", {}).get("indicators", [])}
    change = {(row["indicator"], row["dimension"], row["group"]): row["change"] for row in content.get("changes", [])}
    t = _strings(locale)
    result = []
    for indicator in content.get("indicators", {}).get("indicators", []):
        for dimension, cell in _cells(indicator):
            prior = before.get(indicator["id"], {}).get((dimension, cell["group"]), {})
            group_name = (t["total"] if cell["group"] == "*"
                          else _pick(cell.get("group_names"), locale, cell["group"]))
            result.append({
                "indicator": indicator["id"], "indicator_name": _pick(indicator.get("names"), locale, indicator["id"]),
                "unit": indicator.get("unit", ""), "dimension": dimension, "group": cell["group"],
                "group_name": group_name, "quarter": content["quarter"], "value": cell.get("value"),
                "status": cell.get("status"), "previous_quarter": content.get("previous_quarter"),
                "previous_value": prior.get("value"), "previous_status": prior.get("status"),
                "change": change.get((indicator["id"], dimension, cell["group"])),
            })
    return result


def _csv_safe(value: object) -> str:
    """Blank for null; a text that a spreadsheet would run as a formula gets a leading quote."""
    if value is None:
        return ""
    text = _NOT_XML.sub("\ufffd", str(value))
    if text[:1] in ("=", "+", "@", "\t", "\r") or (text[:1] == "-" and not _is_number(text)):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        Decimal(text)
    except InvalidOperation:
        return False
    return True


def to_csv(content: dict[str, Any], locale: str) -> str:
    """RFC 4180 CSV, one row per indicator x group (x destination for trade), names in ``locale``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows(content, locale):
        writer.writerow([_csv_safe(row[column]) for column in CSV_COLUMNS])
    return out.getvalue()


# --- numbers --------------------------------------------------------------------------------------


def figure(value: Any, unit: str, indicator_id: str, locale: str) -> str:
    """A published value as a reader sees it: counts with separators, cents as yuan, shares in %."""
    if value is None:
        return _strings(locale)["withheld"]
    if unit == "cents":
        cents = int(value)
        sign = "-" if cents < 0 else ""
        return f"{sign}¥{abs(cents) // 100:,}.{abs(cents) % 100:02d}"
    if isinstance(value, int):
        return f"{value:,}"
    number = Decimal(str(value))
    if unit == "ratio" and indicator_id.endswith("_share"):
        return f"{(number * 100).quantize(Decimal('0.01')):,}%"
    return f"{number:,}" if unit == "kg" else str(number)


def _signed(value: Any, unit: str, indicator_id: str, locale: str) -> str:
    if value is None:
        return _strings(locale)["withheld"]
    text = figure(value, unit, indicator_id, locale)
    positive = Decimal(str(value)) > 0
    return f"+{text}" if positive else text


def _magnitude(value: Any) -> float:
    try:
        return float(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return 0.0


# --- charts ---------------------------------------------------------------------------------------


def _text(x: float, y: float, text: str, size: float, *, fill: str = "#14211a", anchor: str = "start",
          weight: str = "400") -> str:
    return (f'<text x="{x:g}" y="{y:g}" font-size="{size:g}" font-weight="{weight}" fill="{fill}"'
            f' text-anchor="{anchor}">{_esc(text)}</text>')


def _indicator(content: dict[str, Any], key: str, indicator_id: str) -> dict[str, Any] | None:
    for indicator in content.get(key, {}).get("indicators", []):
        if indicator.get("id") == indicator_id:
            return indicator
    return None


def _total(indicator: dict[str, Any] | None) -> dict[str, Any] | None:
    if indicator is None:
        return None
    return next((cell for cell in indicator.get("cells", []) if cell.get("group") == "*"), None)


def _value(cell: dict[str, Any] | None) -> Any:
    if cell is None or cell.get("status") != "published":
        return None
    return cell.get("value")


def _svg(chart_id: str, width: int, height: int, heading: str, description: str, body: list[str],
         locale: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"'
            f' viewBox="0 0 {width} {height}" role="img" aria-labelledby="{chart_id}-title {chart_id}-desc"'
            f' font-family="{_FONTS[locale]}">'
            f'<title id="{chart_id}-title">{_esc(heading)}</title><desc id="{chart_id}-desc">{_esc(description)}</desc>'
            + "".join(body) + "</svg>")


def _legend(body: list[str], x: float, y: float, t: dict[str, str], quarters: tuple[str, str]) -> None:
    body.append(f'<rect x="{x:g}" y="{y - 10:g}" width="12" height="12" fill="{BRAND}"/>')
    body.append(_text(x + 18, y, f"{t['current']} {quarters[0]}", 12))
    body.append(f'<rect x="{x + 190:g}" y="{y - 10:g}" width="12" height="12" fill="{PREVIOUS_FILL}"/>')
    body.append(_text(x + 208, y, f"{t['previous']} {quarters[1]}", 12))


def grade_chart(content: dict[str, Any], locale: str) -> str:
    """Verified labelled products per grade A-E (the totals), this quarter beside the previous one."""
    t = _strings(locale)
    width, height, top, bottom, left = 640, 300, 40, 250, 40
    pairs = [(grade, _value(_total(_indicator(content, "indicators", f"grade_{grade}"))),
              _value(_total(_indicator(content, "previous", f"grade_{grade}")))) for grade in GRADES]
    largest = max([_magnitude(v) for _, *values in pairs for v in values if v is not None] + [1.0])
    body: list[str] = []
    _legend(body, left, 22, t, (quarter_name(content["quarter"], locale),
                                quarter_name(content["previous_quarter"], locale)))
    body.append(f'<line x1="{left}" y1="{bottom}" x2="{width - 10}" y2="{bottom}" stroke="#4a5a50"/>')
    slot = (width - left - 10) / len(GRADES)
    for index, (grade, current, previous) in enumerate(pairs):
        x = left + index * slot + slot * 0.15
        bar = slot * 0.32
        for offset, value, fill in ((0.0, current, GRADE_COLOURS[grade][0]), (bar + 4, previous, PREVIOUS_FILL)):
            shown = figure(value, "count", "", locale)
            if value is not None:
                size = (bottom - top - 20) * _magnitude(value) / largest
                body.append(f'<rect x="{x + offset:.1f}" y="{bottom - size:.1f}" width="{bar:.1f}"'
                            f' height="{size:.1f}" fill="{fill}"/>')
                label_y = bottom - size - 4
            else:
                label_y = bottom - 4
            body.append(_text(x + offset + bar / 2, label_y, shown, 12, anchor="middle"))
        body.append(_text(x + bar + 2, bottom + 22, grade, 16, anchor="middle", weight="700"))
    values = "; ".join(f"{grade} {figure(current, 'count', '', locale)} / {figure(previous, 'count', '', locale)}"
                       for grade, current, previous in pairs)
    return _svg("grades", width, height, t["grades"], t["grades_desc"].format(values=values), body, locale)


_QOQ_UNITS = ("count", "people", "g", "kg", "cents")


def qoq_chart(content: dict[str, Any], locale: str) -> str:
    """Each indicator's total this quarter and last, as a pair of bars scaled to the larger of the two
    (units differ between rows, so each row has its own scale); withheld figures draw no bar."""
    t = _strings(locale)
    chosen = []
    for indicator in content.get("indicators", {}).get("indicators", []):
        if indicator.get("unit") not in _QOQ_UNITS or indicator["id"].startswith("grade_"):
            continue
        current = _value(_total(indicator))
        previous = _value(_total(_indicator(content, "previous", indicator["id"])))
        chosen.append((indicator, current, previous))
    width, row_height, left, top = 640, 34, 250, 40
    height = top + row_height * max(len(chosen), 1) + 10
    body: list[str] = []
    _legend(body, 10, 22, t, (quarter_name(content["quarter"], locale),
                              quarter_name(content["previous_quarter"], locale)))
    span = width - left - 110
    for index, (indicator, current, previous) in enumerate(chosen):
        y = top + index * row_height
        name = _pick(indicator.get("names"), locale, indicator["id"])
        body.append(_text(left - 8, y + 18, name if len(name) <= 30 else name[:29] + "…", 12, anchor="end"))
        largest = max([_magnitude(v) for v in (current, previous) if v is not None] + [0.0]) or 1.0
        for offset, value, fill in ((2, current, BRAND), (16, previous, PREVIOUS_FILL)):
            size = span * max(_magnitude(value), 0.0) / largest if value is not None else 0.0
            if size > 0:
                body.append(f'<rect x="{left}" y="{y + offset}" width="{size:.1f}" height="12" fill="{fill}"/>')
            body.append(_text(left + size + 4, y + offset + 11, figure(value, indicator["unit"], indicator["id"],
                                                                     locale), 11))
    if not chosen:
        body.append(_text(width / 2, top + 20, t["no_data"], 14, anchor="middle"))
    values = "; ".join(
        f"{_pick(indicator.get('names'), locale, indicator['id'])} "
        f"{figure(current, indicator['unit'], indicator['id'], locale)} / "
        f"{figure(previous, indicator['unit'], indicator['id'], locale)}" for indicator, current, previous in chosen)
    return _svg("qoq", width, height, t["qoq"], t["qoq_desc"].format(values=values or t["no_data"]), body, locale)


# --- the page -------------------------------------------------------------------------------------

_CSS = (
    "*{box-sizing:border-box}"
    "html{-webkit-text-size-adjust:100%}"
    "body{margin:0;background:#fff;color:#14211a;font:14px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}"
    + "".join(f":lang({locale}){{font-family:{fonts}}}" for locale, fonts in _FONTS.items())
    + "main{max-width:960px;margin:0 auto;padding:20px 18px 32px}"
    f".kicker{{margin:0;color:{BRAND};font-weight:700;letter-spacing:.04em}}"
    "h1{margin:.2rem 0 .6rem;font-size:1.6rem;line-height:1.3}"
    f"h2{{margin:1.4rem 0 .5rem;font-size:1.15rem;color:{BRAND};border-bottom:2px solid {BRAND}}}"
    "h3{margin:1rem 0 .3rem;font-size:1rem}"
    "dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:0}"
    "dl.meta dt{color:#4a5a50}dl.meta dd{margin:0;overflow-wrap:anywhere}"
    f".draft{{padding:6px 10px;border:2px dashed {ALERT};color:{ALERT};font-weight:700}}"
    f".late{{color:{ALERT};font-weight:700}}"
    "table{width:100%;border-collapse:collapse;margin:.3rem 0 .8rem}"
    "th,td{padding:3px 6px;border-bottom:1px solid #d5ddd8;text-align:left;vertical-align:top;overflow-wrap:anywhere}"
    "th{background:#eef4f0}"
    "td.n,th.n{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}"
    ".withheld{color:#6b7a72}"
    ".definition{margin:0 0 .2rem;color:#3b4a42;font-size:.9em}"
    "figure{margin:.5rem 0}figure svg{display:block;width:100%;height:auto;max-width:640px}"
    "figcaption{color:#4a5a50;font-size:.9em}"
    ".legend,.small{color:#4a5a50;font-size:.85em}"
    + "".join(f".grade-{grade}{{background:{fill};color:{ink};font-weight:700;text-align:center}}"
              for grade, (fill, ink) in GRADE_COLOURS.items())
    + "footer{margin-top:1.2rem;color:#4a5a50;font-size:.8em;overflow-wrap:anywhere}"
    "@page{size:A4;margin:16mm 14mm}"
    "@media print{main{max-width:none;padding:0}"
    "section,figure,table,tr,.indicator{break-inside:avoid;page-break-inside:avoid}"
    "h2,h3{break-after:avoid;page-break-after:avoid}"
    "thead{display:table-header-group}"
    "th{-webkit-print-color-adjust:exact;print-color-adjust:exact}"
    "svg,.grade-A,.grade-B,.grade-C,.grade-D,.grade-E{-webkit-print-color-adjust:exact;print-color-adjust:exact}}"
)

# The page's only active content is this stylesheet; no style attributes anywhere (the SVG uses
# presentation attributes), so a hash is all the policy has to allow.
PAGE_CSP = ("default-src 'none'; style-src 'sha256-"
            + base64.b64encode(hashlib.sha256(_CSS.encode()).digest()).decode()
            + "'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def _cell_html(value: Any, unit: str, indicator_id: str, locale: str, *, signed: bool = False) -> str:
    text = (_signed if signed else figure)(value, unit, indicator_id, locale)
    css = "n withheld" if value is None else "n"
    return f'<td class="{css}">{_esc(text)}</td>'


def _table(head: list[str], body_rows: list[str], numeric_from: int) -> str:
    numeric = ' class="n"'
    cells = "".join(f'<th scope="col"{numeric if index >= numeric_from else ""}>{_esc(name)}</th>'
                    for index, name in enumerate(head))
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{''.join(body_rows)}</tbody></table>"


def _meta(content: dict[str, Any], t: dict[str, str], locale: str, sha: str | None) -> str:
    period = content.get("period", {})
    items = [(t["province"], _pick(content.get("province_names"), locale, content.get("province", ""))),
             (t["period"], f"{period.get('starts_on', '')} – {period.get('ends_on', '')} ({period.get('time_zone', '')})"),
             (t["due_on"], content.get("due_on", ""))]
    extra = ""
    if content.get("revision") is None:
        extra = f'<p class="draft" data-draft="true">{_esc(t["draft"])}</p>'
        items.append((t["generated_at"], content.get("generated_at", "")))
    else:
        items.append((t["revision"], str(content["revision"])))
        timeliness = t["late"] if content.get("late") else t["on_time"]
        items.append((t["submitted_at"], f"{content.get('submitted_at', '')} · {timeliness}"))
        if content.get("note"):
            items.append((t["note"], content["note"]))
    if sha:
        items.append((t["sha256"], sha))
    rows_html = "".join(f"<dt>{_esc(term)}</dt><dd>{_esc(value)}</dd>" for term, value in items)
    late_mark = ' class="meta late-report"' if content.get("late") else ' class="meta"'
    return f"{extra}<dl{late_mark}>{rows_html}</dl>"


def _summary(content: dict[str, Any], t: dict[str, str], locale: str) -> str:
    body_rows = []
    for row in rows(content, locale):
        if row["group"] != "*" or row["dimension"] != "group":
            continue
        unit = _UNITS[locale].get(row["unit"], row["unit"])
        name = row["indicator_name"] + (f" ({unit})" if unit and row["unit"] != "cents" else "")
        body_rows.append(f'<tr data-indicator="{_esc(row["indicator"])}"><th scope="row">{_esc(name)}</th>'
                         + _cell_html(row["value"], row["unit"], row["indicator"], locale)
                         + _cell_html(row["previous_value"], row["unit"], row["indicator"], locale)
                         + _cell_html(row["change"], row["unit"], row["indicator"], locale, signed=True) + "</tr>")
    return _table([t["indicator"], t["current"], t["previous"], t["change"]], body_rows, 1)


def _details(content: dict[str, Any], t: dict[str, str], locale: str) -> str:
    by_indicator: dict[str, list[dict[str, Any]]] = {}
    for row in rows(content, locale):
        by_indicator.setdefault(row["indicator"], []).append(row)
    parts = []
    for indicator in content.get("indicators", {}).get("indicators", []):
        found = by_indicator.get(indicator["id"], [])
        name = _pick(indicator.get("names"), locale, indicator["id"])
        definition = _pick(indicator.get("definition"), locale, "")
        body_rows = []
        for row in found:
            group = row["group_name"] if row["dimension"] == "group" else f"{t['by_destination']}{t['colon']}{row['group']}"
            body_rows.append(f"<tr><td>{_esc(group)}</td>"
                             + _cell_html(row["value"], row["unit"], row["indicator"], locale)
                             + _cell_html(row["previous_value"], row["unit"], row["indicator"], locale)
                             + _cell_html(row["change"], row["unit"], row["indicator"], locale, signed=True) + "</tr>")
        unit = _UNITS[locale].get(indicator.get("unit", ""), indicator.get("unit", ""))
        heading = name + (f" ({unit})" if unit and indicator.get("unit") != "cents" else "")
        parts.append(f'<section class="indicator" id="ind-{_esc(indicator["id"])}"><h3>{_esc(heading)}</h3>'
                     + (f'<p class="definition">{_esc(t["definition"])}{_esc(t["colon"])}{_esc(definition)}</p>'
                        if definition else "")
                     + _table([t["group"], t["current"], t["previous"], t["change"]], body_rows, 1) + "</section>")
    return "".join(parts)


def _labels(content: dict[str, Any], t: dict[str, str], locale: str) -> str:
    labels = content.get("labels", [])
    if not labels:
        return f'<p class="small">{_esc(t["no_labels"])}</p>'
    body_rows = [
        f'<tr><td>{_esc(label["gtin"])}</td><td>{_esc(_pick(label.get("names"), locale, label["gtin"]))}</td>'
        f'<td>{_esc(label.get("category", ""))}</td>'
        f'<td class="grade-{_esc(label.get("grade", ""))}">{_esc(label.get("grade", ""))}</td>'
        f'<td class="n">{_esc(label.get("kgco2e_per_unit", ""))} / {_esc(label.get("declared_unit", ""))}</td>'
        f'<td>{_esc(t.get(label.get("scheme", ""), label.get("scheme", "")))}</td>'
        f'<td>{_esc(label.get("issued_on", ""))}</td></tr>' for label in labels]
    return _table([t["gtin"], t["product"], t["category"], t["grade"], t["footprint"], t["scheme"], t["issued_on"]],
                  body_rows, 7)


def _tenders(content: dict[str, Any], t: dict[str, str]) -> str:
    tenders = content.get("tenders", [])
    if not tenders:
        return f'<p class="small">{_esc(t["no_tenders"])}</p>'
    body_rows = [
        f'<tr><td>{_esc(tender.get("title", ""))}</td><td>{_esc(tender.get("category", ""))}</td>'
        f'<td>{_esc(t["yes"] if tender.get("carbon_criteria") else t["no"])}</td>'
        f'<td>{_esc(t["yes"] if tender.get("awarded") else t["no"])}</td></tr>' for tender in tenders]
    return _table([t["tender"], t["category"], t["criteria"], t["awarded"]], body_rows, 4)


def _credits(content: dict[str, Any], t: dict[str, str], locale: str) -> str:
    months = content.get("credits", {}).get("months", [])
    metrics = ("purchases_g", "travel_g", "redeemed_g")
    body_rows = [f"<tr><td>{_esc(month['month'])}</td>"
                 + "".join(_cell_html(month.get(metric), "g", metric, locale) for metric in metrics) + "</tr>"
                 for month in months]
    return _table([t["month"], *(t[metric] for metric in metrics)], body_rows, 1)


def to_html(content: dict[str, Any], locale: str, *, sha: str | None = None) -> str:
    """The report as a complete HTML5 document in ``locale``: charts inline as SVG, no script, no
    external resource, laid out for A4 when printed."""
    t = _strings(locale)
    heading = title(content, locale)
    unattributed = content.get("indicators", {}).get("unattributed_products")
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{locale}">',
        '<head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>{_esc(heading)}</title>",
        f"<style>{_CSS}</style></head>",
        f'<body><main data-city="{_esc(content["city"])}" data-quarter="{_esc(content["quarter"])}">',
        f'<header><p class="kicker">{_esc(t["kicker"])}</p><h1>{_esc(heading)}</h1>',
        _meta(content, t, locale, sha),
        "</header>",
        f'<section id="summary"><h2>{_esc(t["summary"])}</h2>{_summary(content, t, locale)}'
        f'<p class="legend">{_esc(t["legend"])}</p>'
        + (f'<p class="small">{_esc(t["unattributed"].format(count=unattributed))}</p>'
           if unattributed else "") + "</section>",
        f'<section id="charts"><h2>{_esc(t["grades"])}</h2><figure>{grade_chart(content, locale)}</figure>'
        f'<h2>{_esc(t["qoq"])}</h2><figure>{qoq_chart(content, locale)}</figure></section>',
        f'<section id="details"><h2>{_esc(t["details"])}</h2>{_details(content, t, locale)}</section>',
        f'<section id="labels"><h2>{_esc(t["labels"])}</h2>{_labels(content, t, locale)}</section>',
        f'<section id="tenders"><h2>{_esc(t["tenders"])}</h2>{_tenders(content, t)}</section>',
        f'<section id="credits"><h2>{_esc(t["credits"])}</h2>{_credits(content, t, locale)}</section>',
        f'<footer><p>{_esc(t["generated_at"])}{_esc(t["colon"])}{_esc(content.get("generated_at", ""))}</p></footer>',
        "</main></body></html>",
    ]
    return "\n".join(parts)
