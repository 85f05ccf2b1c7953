"""Carbon labels as a picture and a page: the SVG label, with a QR code of the product's GS1 Digital
Link address, and the HTML page a phone opens from that code.

Pure functions of the public product. Every text is escaped here, since names and stores come from
merchants. The page needs no script and loads nothing: ``PAGE_CSP`` is the policy to send with it.
The static wording lives in ``_TEXT`` below (display strings, not error messages, so no catalogs).
"""

from __future__ import annotations

import base64
import hashlib
import re
import unicodedata
from functools import lru_cache
from html import escape

import segno

from carbonpuhui.factors.schemas import Names
from carbonpuhui.footprints.gtin import normalise_gtin
from carbonpuhui.i18n import SUPPORTED
from carbonpuhui.labels.schemas import GRADES, LabelOut, ListingOut, PublicProduct

# Fill and letter colour per grade, green to red (the EU energy label's scale). The letter always
# carries the meaning, so nobody depends on telling the colours apart.
GRADE_COLOURS: dict[str, tuple[str, str]] = {
    "A": ("#00843d", "#ffffff"),
    "B": ("#52ae32", "#0b1f10"),
    "C": ("#f2c500", "#1f1a00"),
    "D": ("#ef7d00", "#1f1200"),
    "E": ("#d7191c", "#ffffff"),
}
BRAND = "#0b5d3b"
ALERT = "#b91c1c"
PAGE_BACKGROUND = "#eef4f0"

_TEXT: dict[str, dict[str, str]] = {
    "zh-Hans": {
        "title": "碳足迹标识",
        "footprint": "碳足迹",
        "grade": "等级",
        "verified": "已认证",
        "self_declared": "自我声明",
        "body": "认证机构",
        "no_body": "无",
        "valid_until": "有效期至 {date}",
        "valid_until_label": "有效期至",
        "issued": "签发日期",
        "status": "状态",
        "active": "有效",
        "revoked": "已撤销",
        "expired": "已过期",
        "invalid_note": "此标识不再有效",
        "colon": "：",
        "no_label": "暂无经认证的碳足迹标识",
        "no_label_note": "该产品尚未获得经认证的碳足迹标识。",
        "scan": "扫码查看详情",
        "lower": "低碳",
        "higher": "高碳",
        "category": "类别",
        "per_item": "每件含",
        "basis": "核算依据",
        "monte_carlo_p80": "蒙特卡洛模拟 P80（保守值）",
        "declared_with_penalty": "申报值＋不确定性附加（保守值）",
        "credits": "可获碳普惠减排量",
        "yes": "是",
        "no": "否",
        "factors": "所依据的排放因子版本",
        "listings": "在售渠道",
        "no_listings": "暂无在售信息。",
        "download": "下载标识（SVG）",
        "scheme": "标识类型",
    },
    "zh-Hant": {
        "title": "碳足跡標識",
        "footprint": "碳足跡",
        "grade": "等級",
        "verified": "已認證",
        "self_declared": "自我聲明",
        "body": "認證機構",
        "no_body": "無",
        "valid_until": "有效期至 {date}",
        "valid_until_label": "有效期至",
        "issued": "簽發日期",
        "status": "狀態",
        "active": "有效",
        "revoked": "已撤銷",
        "expired": "已過期",
        "invalid_note": "此標識不再有效",
        "colon": "：",
        "no_label": "暫無經認證的碳足跡標識",
        "no_label_note": "該產品尚未取得經認證的碳足跡標識。",
        "scan": "掃碼查看詳情",
        "lower": "低碳",
        "higher": "高碳",
        "category": "類別",
        "per_item": "每件含",
        "basis": "核算依據",
        "monte_carlo_p80": "蒙地卡羅模擬 P80（保守值）",
        "declared_with_penalty": "申報值＋不確定性附加（保守值）",
        "credits": "可獲碳普惠減排量",
        "yes": "是",
        "no": "否",
        "factors": "所依據的排放係數版本",
        "listings": "販售通路",
        "no_listings": "暫無販售資訊。",
        "download": "下載標識（SVG）",
        "scheme": "標識類型",
    },
    "en": {
        "title": "Carbon Footprint Label",
        "footprint": "Carbon footprint",
        "grade": "Grade",
        "verified": "Verified",
        "self_declared": "Self-declared",
        "body": "Certification body",
        "no_body": "None",
        "valid_until": "Valid until {date}",
        "valid_until_label": "Valid until",
        "issued": "Issued",
        "status": "Status",
        "active": "Active",
        "revoked": "Revoked",
        "expired": "Expired",
        "invalid_note": "This label is no longer valid",
        "colon": ": ",
        "no_label": "No certified carbon label",
        "no_label_note": "This product does not have a certified carbon footprint label.",
        "scan": "Scan for details",
        "lower": "Lower carbon",
        "higher": "Higher carbon",
        "category": "Category",
        "per_item": "Per item",
        "basis": "Basis",
        "monte_carlo_p80": "Monte Carlo P80 (conservative)",
        "declared_with_penalty": "Declared value plus uncertainty surcharge (conservative)",
        "credits": "Earns carbon-inclusive credits",
        "yes": "Yes",
        "no": "No",
        "factors": "Emission factor versions used",
        "listings": "Where to buy",
        "no_listings": "Not listed in any store yet.",
        "download": "Download label (SVG)",
        "scheme": "Scheme",
    },
}

# The declared units of footprints/schemas.py DECLARED_UNITS; anything else is shown as stored.
_UNITS: dict[str, dict[str, str]] = {
    "zh-Hans": {"kilogram": "千克", "tonne": "吨", "piece": "件", "pair": "双", "litre": "升", "m³": "立方米",
                "m²": "平方米", "kWh": "千瓦时", "MJ": "兆焦", "t·km": "吨公里"},
    "zh-Hant": {"kilogram": "公斤", "tonne": "公噸", "piece": "件", "pair": "雙", "litre": "公升",
                "m³": "立方公尺", "m²": "平方公尺", "kWh": "千瓦時", "MJ": "百萬焦耳", "t·km": "公噸公里"},
    "en": {},
}

_FONTS = {
    "zh-Hans": "'Noto Sans CJK SC', 'Source Han Sans SC', 'PingFang SC', 'Microsoft YaHei', sans-serif",
    "zh-Hant": "'Noto Sans CJK TC', 'Source Han Sans TC', 'PingFang TC', 'Microsoft JhengHei', sans-serif",
    "en": "'Noto Sans', 'Helvetica Neue', Arial, 'Noto Sans CJK SC', sans-serif",
}

# What XML 1.0 forbids even escaped (C0 controls, lone surrogates, U+FFFE/U+FFFF): one such
# character in a merchant's name would make the whole SVG unreadable.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def digital_link(base_url: str, gtin14: str) -> str:
    """The product's GS1 Digital Link URI, ``{base_url}/01/{gtin14}``; any GTIN form is accepted and
    written as 14 digits (``InvalidGTIN``, a ``ValueError``, for a malformed one)."""
    return f"{base_url.rstrip('/')}/01/{normalise_gtin(gtin14)}"


def _clean(value: object) -> str:
    return _NOT_XML.sub("\ufffd", str(value))


def _esc(value: object) -> str:
    return escape(_clean(value), quote=True)


def _strings(locale: str) -> dict[str, str]:
    if locale not in _TEXT:
        raise ValueError(f"unsupported locale {locale!r}; expected one of {', '.join(SUPPORTED)}")
    return _TEXT[locale]


def _name(names: Names, locale: str) -> str:
    return {"zh-Hans": names.zh_hans, "zh-Hant": names.zh_hant}.get(locale, names.en)


def _unit(unit: str, locale: str) -> str:
    return _UNITS[locale].get(unit, unit)


def _value_unit(label: LabelOut, locale: str) -> str:
    return f"kgCO₂e / {_unit(label.declared_unit, locale)}"


def _scheme(label: LabelOut, t: dict[str, str]) -> str:
    return t["verified"] if label.scheme == "verified" else t["self_declared"]


def _em(char: str) -> float:
    """Rough advance width in em: CJK ideographs are square, Latin about 0.6 of that."""
    return 1.0 if unicodedata.east_asian_width(char) in "WF" else 0.62


def _wrap(text: str, max_em: float, max_lines: int) -> list[str]:
    """Greedy line breaking for SVG text (which cannot wrap itself); the last line ends in an
    ellipsis when the text does not fit. Latin words break at spaces where they can."""
    lines: list[str] = []
    current = ""
    for char in text:
        if not current and char.isspace():
            continue
        if current and sum(map(_em, current)) + _em(char) > max_em:
            if len(lines) == max_lines - 1:
                while current and sum(map(_em, current)) + _em("…") > max_em:
                    current = current[:-1]
                lines.append(current.rstrip() + "…")
                return lines
            cut = current.rfind(" ")
            inside_word = not char.isspace() and _em(char) < 1 and _em(current[-1]) < 1
            if inside_word and cut > 0:
                lines.append(current[:cut].rstrip())
                current = current[cut + 1:]
            else:
                lines.append(current.rstrip())
                current = ""
            if not current and char.isspace():
                continue
        current += char
    if current or not lines:
        lines.append(current)
    return lines


@lru_cache(maxsize=4096)
def _qr_path(data: str) -> tuple[int, str]:
    """Side length in modules (quiet zone included) and the path of the dark modules. Cached: the
    encoding is nearly all the cost of a label, and a product's link rarely changes."""
    qr = segno.make(data, error="m", micro=False)
    count = qr.symbol_size(scale=1, border=0)[0]
    runs: list[str] = []
    for row, modules in enumerate(qr.matrix_iter(scale=1, border=0)):
        col = 0
        while col < count:
            if modules[col]:
                start = col
                while col < count and modules[col]:
                    col += 1
                runs.append(f"M{start + 4} {row + 4}h{col - start}v1h-{col - start}z")
            else:
                col += 1
    return count + 8, "".join(runs)


def _qr(data: str, x: float, y: float, size: float) -> str:
    """The QR code as one path of dark modules (no raster image), with its 4-module quiet zone."""
    total, path = _qr_path(data)
    return (f'<g transform="translate({x:g} {y:g}) scale({size / total:.6g})">'
            f'<rect width="{total}" height="{total}" fill="#ffffff"/>'
            f'<path fill="#000000" shape-rendering="crispEdges" d="{path}"/></g>')


def _svg_text(x: float, y: float, text: str, size: float, *, fill: str = "#14211a", weight: str = "400",
              anchor: str = "start") -> str:
    return (f'<text x="{x:g}" y="{y:g}" font-size="{size:g}" font-weight="{weight}" fill="{fill}"'
            f' text-anchor="{anchor}">{_esc(text)}</text>')


_WIDTH = 320
_QR_SIZE = 128


def label_svg(product: PublicProduct, *, locale: str, base_url: str) -> str:
    """The carbon label as a standalone SVG document in ``locale`` (zh-Hans, zh-Hant or en)."""
    t = _strings(locale)
    name = _clean(_name(product.names, locale))
    label = product.label
    link = digital_link(base_url, product.gtin)
    body: list[str] = []
    # Header band: the square lower edge is a second rect over the rounded one.
    body.append(f'<rect x="0" y="0" width="{_WIDTH}" height="52" rx="16" fill="{BRAND}"/>')
    body.append(f'<rect x="0" y="36" width="{_WIDTH}" height="16" fill="{BRAND}"/>')
    body.append('<path d="M286 36c0-12 8-20 22-20 0 13-8 21-20 21z" fill="#ffffff" opacity="0.9"/>')
    body.append('<path d="M288 37c4-6 9-10 15-14" stroke="' + BRAND + '" stroke-width="1.5" fill="none"/>')
    body.append(_svg_text(20, 33, t["title"], 19, fill="#ffffff", weight="700"))
    y = 52.0
    if label is not None and label.status != "active":
        body.append(f'<rect x="0" y="{y:g}" width="{_WIDTH}" height="38" fill="{ALERT}"/>')
        body.append(_svg_text(_WIDTH / 2, y + 26, f"{t[label.status]} · {t['invalid_note']}", 15,
                              fill="#ffffff", weight="700", anchor="middle"))
        y += 38
    y += 12
    for line in _wrap(name, 280 / 17, 2):
        y += 24
        body.append(_svg_text(20, y, line, 17, weight="700"))
    y += 16
    if label is None:
        body.append(f'<rect x="20" y="{y:g}" width="{_WIDTH - 40}" height="92" rx="12" fill="#f1f3f2"'
                    ' stroke="#9aa5a0" stroke-dasharray="6 4"/>')
        body.append(_svg_text(_WIDTH / 2, y + 40, t["no_label"], 17, fill="#3b4a42", weight="700", anchor="middle"))
        for index, line in enumerate(_wrap(t["no_label_note"], 256 / 12, 2)):
            body.append(_svg_text(_WIDTH / 2, y + 64 + index * 16, line, 12, fill="#4a5a50", anchor="middle"))
        y += 108
        description = t["no_label"]
    else:
        y = _grade_block(body, label, t, locale, y)
        description = (f"{t['grade']} {label.grade}, {label.kgco2e_per_unit} {_value_unit(label, locale)}, "
                       f"{_scheme(label, t)}, {t['valid_until'].format(date=label.valid_until.isoformat())}")
        if label.status != "active":
            description = f"{t[label.status]}: {description}"
    qr_y = y
    body.append(_qr(link, _WIDTH - 16 - _QR_SIZE, qr_y, _QR_SIZE))
    body.append(_svg_text(_WIDTH - 16 - _QR_SIZE / 2, qr_y + _QR_SIZE + 14, t["scan"], 11, fill="#4a5a50",
                          anchor="middle"))
    text_y = qr_y + 8
    if label is not None:
        text_y = _details(body, label, t, text_y)
    body.append(_svg_text(20, max(text_y + 20, qr_y + _QR_SIZE - 4), f"GTIN {product.gtin}", 11,
                          fill="#4a5a50"))
    height = int(max(text_y + 20, qr_y + _QR_SIZE + 14)) + 16
    border = ALERT if label is not None and label.status != "active" else "#cfd8d3"
    title = f"{t['title']}: {name}"
    return (f'<svg xmlns="http://www.w3.org/2000/svg" xml:lang="{locale}" width="{_WIDTH}" height="{height}"'
            f' viewBox="0 0 {_WIDTH} {height}" role="img" aria-labelledby="cpl-title cpl-desc"'
            f' font-family="{_FONTS[locale]}">'
            f'<title id="cpl-title">{_esc(title)}</title><desc id="cpl-desc">{_esc(description)}</desc>'
            f'<rect width="{_WIDTH}" height="{height}" rx="16" fill="#ffffff"/>'
            + "".join(body)
            # The frame goes last so the header band cannot cover it.
            + f'<rect x="1" y="1" width="{_WIDTH - 2}" height="{height - 2}" rx="15" fill="none"'
            f' stroke="{border}" stroke-width="2"/></svg>')


def _grade_block(body: list[str], label: LabelOut, t: dict[str, str], locale: str, y: float) -> float:
    """The big grade letter, the value beside it, and the A-E scale under both; returns the next y."""
    fill, ink = GRADE_COLOURS[label.grade]
    body.append(f'<rect x="20" y="{y:g}" width="96" height="96" rx="14" fill="{fill}"/>')
    body.append(_svg_text(68, y + 82, label.grade, 84, fill=ink, weight="800", anchor="middle"))
    body.append(_svg_text(132, y + 18, t["footprint"], 13, fill="#4a5a50"))
    value = label.kgco2e_per_unit
    size = min(36.0, 168 / (0.62 * max(len(value), 1)))
    body.append(_svg_text(132, y + 58, value, size, weight="800"))
    # A tspan subscript, not U+2082: many Latin fonts lack it and the line falls back to another font.
    unit = _wrap(_clean(_unit(label.declared_unit, locale)), 168 / 14 - 6.5, 1)[0]
    body.append(f'<text x="132" y="{y + 82:g}" font-size="14" font-weight="600" fill="#3b4a42">kgCO'
                f'<tspan font-size="10" dy="3">2</tspan><tspan dy="-3">e / {_esc(unit)}</tspan></text>')
    y += 112
    for index, grade in enumerate(GRADES):
        cell_fill, cell_ink = GRADE_COLOURS[grade]
        x = 20 + index * 56
        if grade == label.grade:
            body.append(f'<rect x="{x - 2}" y="{y - 5:g}" width="56" height="34" rx="6" fill="{cell_fill}"'
                        ' stroke="#14211a" stroke-width="2.5"/>')
            body.append(_svg_text(x + 26, y + 18, grade, 18, fill=cell_ink, weight="800", anchor="middle"))
        else:
            body.append(f'<rect x="{x}" y="{y:g}" width="52" height="24" rx="5" fill="{cell_fill}"'
                        ' opacity="0.4"/>')
            body.append(_svg_text(x + 26, y + 17, grade, 13, fill="#14211a", weight="700", anchor="middle"))
    body.append(_svg_text(20, y + 46, f"← {t['lower']}", 11, fill="#4a5a50"))
    body.append(_svg_text(_WIDTH - 20, y + 46, f"{t['higher']} →", 11, fill="#4a5a50", anchor="end"))
    return y + 60


def _details(body: list[str], label: LabelOut, t: dict[str, str], y: float) -> float:
    """Scheme badge, certification body and validity in the column left of the QR code."""
    verified = label.scheme == "verified"
    badge = _scheme(label, t)
    colour = BRAND if verified else "#9a5b00"
    width = 22 + sum(map(_em, badge)) * 14 * 0.92
    body.append(f'<rect x="20" y="{y:g}" width="{width:g}" height="26" rx="13" fill="#ffffff"'
                f' stroke="{colour}" stroke-width="1.5"/>')
    body.append(_svg_text(20 + width / 2, y + 18, badge, 14, fill=colour, weight="700", anchor="middle"))
    y += 48
    body.append(_svg_text(20, y, t["body"], 11, fill="#4a5a50"))
    for line in _wrap(_clean(label.certification_body or t["no_body"]), 150 / 13, 2):
        y += 17
        body.append(_svg_text(20, y, line, 13, weight="600"))
    y += 22
    body.append(_svg_text(20, y, t["valid_until_label"], 11, fill="#4a5a50"))
    y += 18
    expired = label.status == "expired"
    body.append(_svg_text(20, y, label.valid_until.isoformat(), 14, fill=ALERT if expired else "#14211a",
                          weight="700"))
    return y


# --- the page ---------------------------------------------------------------------------------------

_CSS = (
    "*{box-sizing:border-box}"
    "html{-webkit-text-size-adjust:100%}"
    f"body{{margin:0;background:{PAGE_BACKGROUND};color:#14211a;"
    "font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}"
    + "".join(f":lang({locale}){{font-family:{fonts}}}" for locale, fonts in _FONTS.items())
    + "main{max-width:480px;margin:0 auto;padding:16px 14px 28px}"
    f".kicker{{margin:0;color:{BRAND};font-weight:700;font-size:.85rem;letter-spacing:.04em}}"
    "h1{margin:.15rem 0 .1rem;font-size:1.4rem;line-height:1.3;overflow-wrap:anywhere}"
    ".aka,.meta{margin:0;color:#4a5a50;font-size:.9rem;overflow-wrap:anywhere}"
    f".alert{{margin:14px 0 0;padding:10px 14px;border-radius:10px;background:{ALERT};color:#fff;"
    "font-weight:700}"
    ".card{margin:14px 0 0;padding:14px;border-radius:16px;background:#fff;"
    "box-shadow:0 1px 3px rgba(20,33,26,.15)}"
    "figure{margin:14px 0 0}"
    "sub{line-height:0}"
    "figure svg{display:block;width:100%;max-width:384px;height:auto;margin:0 auto}"
    "h2{margin:0 0 8px;font-size:1.05rem}"
    "dl{display:grid;grid-template-columns:2fr 3fr;gap:6px 14px;margin:0}"
    "dt{color:#4a5a50}dd{margin:0;font-weight:600;overflow-wrap:anywhere}"
    ".grade{display:inline-block;min-width:2em;padding:0 .45em;border-radius:6px;text-align:center;"
    "font-weight:800}"
    + "".join(f".grade-{grade}{{background:{fill};color:{ink}}}" for grade, (fill, ink) in GRADE_COLOURS.items())
    + ".plain{margin:0;padding:0;list-style:none}"
    ".listing{display:flex;justify-content:space-between;gap:12px;padding:8px 0;border-top:1px solid #e3ebe6}"
    ".listing:first-child{border-top:0}"
    ".store{overflow-wrap:anywhere}.price{font-weight:700;white-space:nowrap}"
    ".none{margin:0;color:#4a5a50}"
    ".nolabel{border:2px dashed #9aa5a0;text-align:center}"
    ".nolabel strong{display:block;font-size:1.15rem}"
    f"a{{color:{BRAND}}}"
    "footer{margin-top:16px;color:#4a5a50;font-size:.8rem;overflow-wrap:anywhere}"
    "footer p{margin:.2rem 0}"
)

# The page's only active content is this stylesheet; no style attributes anywhere (the SVG uses
# presentation attributes), so a hash is all the policy has to allow.
PAGE_CSP = ("default-src 'none'; style-src 'sha256-"
            + base64.b64encode(hashlib.sha256(_CSS.encode()).digest()).decode()
            + "'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def yuan(price_cents: int) -> str:
    """A price in cents as yuan, e.g. 1234 -> ¥12.34."""
    return f"¥{price_cents // 100:,}.{price_cents % 100:02d}"


def _listing(listing: ListingOut) -> str:
    store = _esc(listing.store)
    if listing.url and listing.url.lower().startswith(("https://", "http://")):
        store = f'<a href="{_esc(listing.url)}" rel="nofollow noopener">{store}</a>'
    return (f'<li class="listing"><span class="store">{store}</span>'
            f'<span class="price">{yuan(listing.price_cents)}</span></li>')


def _facts(label: LabelOut, product: PublicProduct, t: dict[str, str], locale: str) -> str:
    rows = [
        (t["grade"], f'<span class="grade grade-{_esc(label.grade)}" data-grade="{_esc(label.grade)}">'
                     f"{_esc(label.grade)}</span>"),
        (t["footprint"], f"{_esc(label.kgco2e_per_unit)} kgCO<sub>2</sub>e / "
                         f"{_esc(_unit(label.declared_unit, locale))}"),
        (t["per_item"], f"{_esc(product.declared_units_per_item)} "
                        f"{_esc(_unit(product.declared_unit, locale))}"),
        (t["basis"], _esc(t[label.conservative_basis])),
        (t["scheme"], _esc(_scheme(label, t))),
        (t["body"], _esc(label.certification_body or t["no_body"])),
        (t["issued"], _esc(label.issued_at.date().isoformat())),
        (t["valid_until_label"], _esc(label.valid_until.isoformat())),
        (t["status"], f'<span data-status="{_esc(label.status)}">{_esc(t[label.status])}</span>'),
        (t["credits"], _esc(t["yes"] if label.earns_credits else t["no"])),
    ]
    return "<dl>" + "".join(f"<dt>{_esc(term)}</dt><dd>{value}</dd>" for term, value in rows) + "</dl>"


def label_page(product: PublicProduct, *, locale: str, base_url: str, svg_url: str) -> str:
    """The Digital Link page: a complete HTML5 document in ``locale``, with the label inlined as SVG,
    no script and no external resource. ``svg_url`` is offered as the label's download link."""
    t = _strings(locale)
    name = _name(product.names, locale)
    others = [(code, _name(product.names, code)) for code in SUPPORTED if code != locale]
    label = product.label
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{locale}">',
        '<head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>{_esc(name)} · {_esc(t['title'])}</title>",
        f"<style>{_CSS}</style></head>",
        "<body><main>",
        f'<header><p class="kicker">{_esc(t["title"])}</p><h1>{_esc(name)}</h1>',
        '<p class="aka">' + " · ".join(f'<span lang="{code}">{_esc(other)}</span>' for code, other in others
                                       if other != name) + "</p>",
        f'<p class="meta">{_esc(t["category"])}{t["colon"]}{_esc(product.category)} · GTIN {_esc(product.gtin)}</p>',
        "</header>",
    ]
    if label is None:
        parts.append(f'<section class="card nolabel" data-label="none"><strong>{_esc(t["no_label"])}</strong>'
                     f'<p class="none">{_esc(t["no_label_note"])}</p></section>')
    else:
        if label.status != "active":
            parts.append(f'<p class="alert" data-status="{_esc(label.status)}">{_esc(t[label.status])} · '
                         f"{_esc(t['invalid_note'])}</p>")
        parts.append(f"<figure>{label_svg(product, locale=locale, base_url=base_url)}</figure>")
        parts.append(f'<section class="card">{_facts(label, product, t, locale)}</section>')
        versions = "".join(f"<li>{_esc(ref.id)} · v{ref.version}</li>" for ref in label.factor_versions)
        parts.append(f'<section class="card"><h2>{_esc(t["factors"])}</h2>'
                     f'<ul class="plain">{versions}</ul></section>')
    listings = "".join(_listing(listing) for listing in product.listings)
    shown = f'<ul class="plain">{listings}</ul>' if listings else f'<p class="none">{_esc(t["no_listings"])}</p>'
    parts.append(f'<section class="card"><h2>{_esc(t["listings"])}</h2>{shown}</section>')
    parts.append(f"<footer><p>GS1 Digital Link: {_esc(digital_link(base_url, product.gtin))}</p>")
    if label is not None:
        parts.append(f'<p><a href="{_esc(svg_url)}" download>{_esc(t["download"])}</a></p>')
    parts.append("</footer></main></body></html>")
    return "\n".join(parts)
