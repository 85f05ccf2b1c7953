"""The carbon label as SVG and the Digital Link page as HTML.

Oracles independent of the renderer: an XML parser (well-formed), the wording expected per locale
written out here, a list of characters that exist only in Simplified or only in Traditional script,
a QR decoder (zxing-cpp) reading a rasterisation (resvg) of the SVG, and SHA-256 of the page's
stylesheet for its Content-Security-Policy.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime
from decimal import Decimal
from html.parser import HTMLParser

import pytest
import resvg_py
import zxingcpp
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from carbonpuhui.factors.schemas import Names
from carbonpuhui.footprints.schemas import FactorRef
from carbonpuhui.labels.render import GRADE_COLOURS, PAGE_CSP, digital_link, label_page, label_svg, yuan
from carbonpuhui.labels.schemas import LabelOut, ListingOut, PublicProduct

SVG = "{http://www.w3.org/2000/svg}"
BASE = "https://labels.example.cn"
GTIN = "06901234567892"
LOCALES = ("zh-Hans", "zh-Hant", "en")
HOSTILE = '<script>alert("x")</script> & <b>Co</b>'
CJK = re.compile("[\u4e00-\u9fff]")
# Characters of the strings on a label that exist in one script only (Simplified form, Traditional
# form): a Traditional label must not show the first, a Simplified one not the second.
SIMPLIFIED_ONLY = "认证标识迹过销级状签类据获减无经该扫码详构载态销价"
TRADITIONAL_ONLY = "認證標識跡過銷級狀簽類據獲減無經該掃碼詳構載態銷價"


def make_label(**overrides: object) -> LabelOut:
    fields: dict[str, object] = {
        "id": "lbl_1", "gtin": GTIN, "category": "steel.hot_rolled_coil", "kgco2e_per_unit": "2.184",
        "declared_unit": "kilogram", "grade": "B", "scheme": "verified", "status": "active",
        "certification_body": "demo-cert-body", "issued_at": datetime(2026, 1, 5, 8, 30, tzinfo=UTC),
        "valid_until": date(2027, 12, 31),
        "factor_versions": [FactorRef(id="ipcc2006-steel-bof", version=3), FactorRef(id="cn-grid-average",
                                                                                     version=2)],
        "conservative_basis": "monte_carlo_p80", "earns_credits": True,
    }
    fields.update(overrides)
    return LabelOut(**fields)  # type: ignore[arg-type]


def make_listing(**overrides: object) -> ListingOut:
    fields: dict[str, object] = {"id": "lst_1", "gtin": GTIN, "merchant": "demo-steel", "store": "Jinan Steel Mall",
                                 "price_cents": 1234, "url": "https://shop.example.cn/p/1",
                                 "created_at": datetime(2026, 1, 6, tzinfo=UTC)}
    fields.update(overrides)
    return ListingOut(**fields)  # type: ignore[arg-type]


def make_product(*, label: LabelOut | None | str = "default", names: Names | None = None,
                 listings: list[ListingOut] | None = None) -> PublicProduct:
    return PublicProduct(
        gtin=GTIN,
        names=names or Names(zh_hans="热轧卷板（示例）", zh_hant="熱軋卷板（示例）", en="Hot-rolled coil (demo)"),
        category="steel.hot_rolled_coil", declared_unit="kilogram", declared_units_per_item="1000",
        label=make_label() if label == "default" else label,  # type: ignore[arg-type]
        listings=[make_listing(), make_listing(id="lst_2", store="Depot 7", price_cents=399950, url=None)]
        if listings is None else listings,
        digital_link=digital_link(BASE, GTIN))


def parse_svg(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def all_text(root: ET.Element) -> str:
    return "".join(root.itertext())


def decode_qr(svg: str) -> list[str]:
    png = bytes(resvg_py.svg_to_bytes(svg_string=svg, zoom=2, background="#ffffff"))
    image = Image.open(io.BytesIO(png))
    return [result.text for result in zxingcpp.read_barcodes(image)
            if result.format == zxingcpp.BarcodeFormat.QRCode]


# --- Digital Link ----------------------------------------------------------------------------------


def test_digital_link_is_the_gs1_uri_with_fourteen_digits():
    assert digital_link(BASE, GTIN) == "https://labels.example.cn/01/06901234567892"
    assert digital_link(BASE + "/", "6901234567892") == "https://labels.example.cn/01/06901234567892"
    with pytest.raises(ValueError):
        digital_link(BASE, "6901234567893")  # wrong check digit


# --- SVG -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("grade", ["A", "B", "C", "D", "E"])
def test_svg_is_well_formed_sized_titled_and_shows_the_grade(locale, grade):
    product = make_product(label=make_label(grade=grade))
    root = parse_svg(label_svg(product, locale=locale, base_url=BASE))
    width, height = float(root.get("width")), float(root.get("height"))
    assert width > 0 and height > 0
    assert [float(v) for v in root.get("viewBox").split()] == [0, 0, width, height]
    title = root.find(f"{SVG}title")
    assert title is not None and title.text
    assert root.get("aria-labelledby", "").split()[0] == title.get("id")
    name = {"zh-Hans": "热轧卷板（示例）", "zh-Hant": "熱軋卷板（示例）", "en": "Hot-rolled coil (demo)"}[locale]
    assert name in title.text
    big = [t for t in root.iter(f"{SVG}text") if float(t.get("font-size")) >= 64]
    assert [t.text for t in big] == [grade]
    # The big letter sits on a box in the grade's colour; every grade's colour is a different one.
    assert GRADE_COLOURS[grade][0] in {r.get("fill") for r in root.iter(f"{SVG}rect")}
    assert len({fill for fill, _ink in GRADE_COLOURS.values()}) == 5
    assert not list(root.iter(f"{SVG}image")), "vector only: no raster image"


def test_grade_colours_run_from_dark_green_to_red():
    def rgb(hex_colour: str) -> tuple[int, int, int]:
        return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]

    r, g, b = rgb(GRADE_COLOURS["A"][0])
    assert g > r and g > b and g < 160  # a dark green
    r, g, b = rgb(GRADE_COLOURS["E"][0])
    assert r > 180 and g < 80 and b < 80  # a red


EXPECTED = {
    "zh-Hans": ["碳足迹标识", "已认证", "认证机构", "demo-cert-body", "有效期至 2027-12-31", "千克", "扫码查看详情"],
    "zh-Hant": ["碳足跡標識", "已認證", "認證機構", "demo-cert-body", "有效期至 2027-12-31", "公斤", "掃碼查看詳情"],
    "en": ["Carbon Footprint Label", "Verified", "Certification body", "demo-cert-body", "Valid until 2027-12-31",
           "kilogram", "Scan for details"],
}


@pytest.mark.parametrize("locale", LOCALES)
def test_svg_speaks_the_readers_language(locale):
    root = parse_svg(label_svg(make_product(), locale=locale, base_url=BASE))
    text = all_text(root)
    for expected in EXPECTED[locale]:
        assert expected in text, expected
    assert "2.184" in [t.text for t in root.iter(f"{SVG}text")]
    assert "kgCO" in text
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == locale
    if locale == "en":
        assert not CJK.search(text)
    if locale == "zh-Hant":
        assert not set(text) & set(SIMPLIFIED_ONLY), set(text) & set(SIMPLIFIED_ONLY)
        assert "认证" not in text and "千克" not in text
    if locale == "zh-Hans":
        assert not set(text) & set(TRADITIONAL_ONLY), set(text) & set(TRADITIONAL_ONLY)


@pytest.mark.parametrize(("locale", "shown", "absent"), [
    ("zh-Hans", "自我声明", "已认证"), ("zh-Hant", "自我聲明", "已認證"), ("en", "Self-declared", "Verified")])
def test_self_declared_label_says_so(locale, shown, absent):
    product = make_product(label=make_label(scheme="self_declared", certification_body=None, earns_credits=False))
    text = all_text(parse_svg(label_svg(product, locale=locale, base_url=BASE)))
    assert shown in text and absent not in text


STATUS_WORDS = {"revoked": {"zh-Hans": "已撤销", "zh-Hant": "已撤銷", "en": "Revoked"},
                "expired": {"zh-Hans": "已过期", "zh-Hant": "已過期", "en": "Expired"}}


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("status", ["active", "revoked", "expired"])
def test_status_other_than_active_is_shown(locale, status):
    product = make_product(label=make_label(status=status, earns_credits=status == "active"))
    root = parse_svg(label_svg(product, locale=locale, base_url=BASE))
    texts = [t.text or "" for t in root.iter(f"{SVG}text")]
    for word_status, words in STATUS_WORDS.items():
        banner = [t for t in texts if words[locale] in t]
        assert bool(banner) == (word_status == status)
    if status != "active":
        assert STATUS_WORDS[status][locale] in root.find(f"{SVG}desc").text


def test_hostile_names_are_text_not_markup():
    names = Names(zh_hans=HOSTILE, zh_hant=HOSTILE, en=HOSTILE)
    product = make_product(names=names, label=make_label(certification_body='"><script>x</script>'))
    for locale in LOCALES:
        svg = label_svg(product, locale=locale, base_url=BASE)
        root = parse_svg(svg)
        tags = {element.tag for element in root.iter()}
        assert f"{SVG}script" not in tags and f"{SVG}b" not in tags and "script" not in tags
        assert "<script" not in svg
        assert HOSTILE in root.find(f"{SVG}title").text
        assert '"><script>x</script>' in all_text(root)


def test_control_characters_do_not_break_the_xml():
    product = make_product(names=Names(zh_hans="钢\x00卷\x1b", zh_hant="鋼\x0b卷", en="coil\ud800\x08"))
    for locale in LOCALES:
        root = parse_svg(label_svg(product, locale=locale, base_url=BASE))
        assert "\ufffd" in root.find(f"{SVG}title").text


def _name_lines(root: ET.Element, name: str) -> list[str]:
    return [t.text for t in root.iter(f"{SVG}text")
            if t.text and len(t.text) > 3 and (t.text.rstrip("…") in name) and t.get("font-size") == "17"]


def test_long_names_wrap_on_two_lines_with_an_ellipsis():
    name = "超低碳热轧卷板汽车车身外板用高强度钢" * 6
    product = make_product(names=Names(zh_hans=name, zh_hant=name, en="x"))
    root = parse_svg(label_svg(product, locale="zh-Hans", base_url=BASE))
    lines = _name_lines(root, name)
    assert len(lines) == 2 and lines[1].endswith("…")
    assert all(len(line) * 17 <= 280 for line in lines)  # CJK glyphs are 1 em wide; the column is 280
    assert name.startswith(lines[0] + lines[1][:-1])
    assert name in root.find(f"{SVG}title").text


def test_latin_names_break_between_words():
    name = "Low carbon hot rolled coil for automotive body"
    product = make_product(names=Names(zh_hans="钢", zh_hant="鋼", en=name))
    lines = _name_lines(parse_svg(label_svg(product, locale="en", base_url=BASE)), name)
    assert len(lines) == 2
    assert " ".join(lines) == name


@pytest.mark.parametrize("locale", LOCALES)
def test_qr_code_decodes_to_the_digital_link(locale):
    product = make_product()
    svg = label_svg(product, locale=locale, base_url=BASE)
    assert decode_qr(svg) == [digital_link(BASE, GTIN)] == [product.digital_link]


def test_qr_code_follows_the_base_url():
    svg = label_svg(make_product(label=None), locale="en", base_url="http://127.0.0.1:8080/")
    assert decode_qr(svg) == ["http://127.0.0.1:8080/01/06901234567892"]


@pytest.mark.parametrize(("locale", "message"), [
    ("zh-Hans", "暂无经认证的碳足迹标识"), ("zh-Hant", "暫無經認證的碳足跡標識"), ("en", "No certified carbon label")])
def test_no_label_card(locale, message):
    svg = label_svg(make_product(label=None), locale=locale, base_url=BASE)
    root = parse_svg(svg)
    assert message in all_text(root)
    assert not [t for t in root.iter(f"{SVG}text") if float(t.get("font-size")) >= 64]
    assert decode_qr(svg) == [digital_link(BASE, GTIN)]


def test_long_values_and_unknown_units_still_render():
    label = make_label(kgco2e_per_unit="0.000123456789", declared_unit="bottle_750ml")
    root = parse_svg(label_svg(make_product(label=label), locale="zh-Hans", base_url=BASE))
    value = [t for t in root.iter(f"{SVG}text") if t.text == "0.000123456789"]
    assert value and float(value[0].get("font-size")) * 0.62 * 14 <= 168  # shrunk to fit its column
    assert "bottle_750ml" in all_text(root)


def test_unknown_locale_is_refused():
    with pytest.raises(ValueError):
        label_svg(make_product(), locale="fr", base_url=BASE)


# --- HTML page -------------------------------------------------------------------------------------


class Page(HTMLParser):
    """Every start tag with its attributes, the text, and the text inside each element of interest."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.style = ""
        self._in_style = False
        self.grade_text: list[str] = []
        self._in_grade = False
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"
        self._in_grade = "data-grade" in dict(attrs)

    def handle_endtag(self, tag):
        self._in_style = self._in_grade = False

    def handle_data(self, data):
        if self._in_style:
            self.style += data
            return
        if self._in_grade:
            self.grade_text.append(data)
        self.text.append(data)

    def find(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]

    @property
    def all_text(self) -> str:
        return "".join(self.text)


def render_page(product: PublicProduct, locale: str = "zh-Hans") -> tuple[str, Page]:
    html = label_page(product, locale=locale, base_url=BASE, svg_url=f"/v1/products/{GTIN}/label.svg?lang={locale}")
    return html, Page(html)


@pytest.mark.parametrize("locale", LOCALES)
def test_page_is_a_complete_html5_document_in_the_readers_language(locale):
    html, page = render_page(make_product(), locale)
    assert html.startswith("<!DOCTYPE html>")
    assert page.find("html") == [{"lang": locale}]
    assert {"charset": "utf-8"} in page.find("meta")
    viewport = [m for m in page.find("meta") if m.get("name") == "viewport"]
    assert viewport and "width=device-width" in viewport[0]["content"]
    assert len(page.find("svg")) == 1
    grade = [attrs for _tag, attrs in page.tags if "data-grade" in attrs]
    assert len(grade) == 1 and grade[0]["data-grade"] == "B" and "grade" in grade[0]["class"].split()
    assert page.grade_text == ["B"]
    text = page.all_text
    for name in ("热轧卷板（示例）", "熱軋卷板（示例）", "Hot-rolled coil (demo)"):
        assert name in text
    for expected in ("steel.hot_rolled_coil", "2.184", "demo-cert-body", "2027-12-31", "2026-01-05",
                     "ipcc2006-steel-bof · v3", "cn-grid-average · v2", "¥12.34", "¥3,999.50", "Depot 7",
                     EXPECTED[locale][1]):
        assert expected in text, expected
    if locale == "zh-Hant":
        assert not set(text) & set(SIMPLIFIED_ONLY) - set("热轧卷板（示例）")
    if locale == "zh-Hans":
        assert not set(text) & set(TRADITIONAL_ONLY) - set("熱軋卷板（示例）")


def test_listing_links_are_nofollow_and_only_where_a_url_is_given():
    _html, page = render_page(make_product())
    anchors = [a for a in page.find("a") if a.get("href", "").startswith("http")]
    assert anchors == [{"href": "https://shop.example.cn/p/1", "rel": "nofollow noopener"}]


RESOURCE_ATTRS = {"src", "href", "srcset", "xlink:href", "action", "formaction", "poster", "data", "background",
                  "style"}


def test_page_loads_nothing_and_runs_nothing():
    html, page = render_page(make_product())
    for banned in ("script", "link", "img", "iframe", "object", "embed", "base", "form", "image", "use"):
        assert not page.find(banned), banned
    assert not [m for m in page.find("meta") if m.get("http-equiv")]
    for tag, attrs in page.tags:
        for attr, value in attrs.items():
            assert not attr.startswith("on"), (tag, attr)
            if attr in RESOURCE_ATTRS:
                assert attr == "href" and tag == "a", (tag, attr, value)
                external = re.match(r"^\s*(https?:)?//", value or "", re.I)
                assert not external or "nofollow" in attrs.get("rel", ""), value
    assert "url(" not in page.style and "@import" not in page.style


def test_csp_allows_exactly_the_inline_stylesheet():
    _html, page = render_page(make_product())
    digest = base64.b64encode(hashlib.sha256(page.style.encode()).digest()).decode()
    directives = dict(part.strip().split(" ", 1) for part in PAGE_CSP.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["style-src"] == f"'sha256-{digest}'"
    assert "script-src" not in directives and "unsafe" not in PAGE_CSP


def test_page_escapes_merchant_text():
    url = 'https://shop.example.cn/?a=1&b="><script>alert(1)</script>'
    product = make_product(names=Names(zh_hans=HOSTILE, zh_hant=HOSTILE, en=HOSTILE),
                           listings=[make_listing(store='<img src=x onerror="alert(1)">', url=url)])
    _html, page = render_page(product)
    assert not page.find("script") and not page.find("img") and not page.find("b")
    assert HOSTILE in page.all_text and '<img src=x onerror="alert(1)">' in page.all_text
    assert [a["href"] for a in page.find("a") if a.get("rel")] == [url]


def test_listing_urls_other_than_http_are_not_links():
    _html, page = render_page(make_product(listings=[make_listing(url="javascript:alert(1)")]))
    assert not [a for a in page.find("a") if "javascript" in (a.get("href") or "")]
    assert "Jinan Steel Mall" in page.all_text


@pytest.mark.parametrize(("locale", "message"), [
    ("zh-Hans", "暂无经认证的碳足迹标识"), ("zh-Hant", "暫無經認證的碳足跡標識"), ("en", "No certified carbon label")])
def test_page_without_label_says_so(locale, message):
    _html, page = render_page(make_product(label=None), locale)
    assert message in page.all_text
    assert [attrs for _tag, attrs in page.tags if attrs.get("data-label") == "none"]
    assert not [attrs for _tag, attrs in page.tags if "data-grade" in attrs]
    assert not page.find("svg")
    assert "¥12.34" in page.all_text  # where it is listed is still shown


@pytest.mark.parametrize("status", ["revoked", "expired"])
def test_page_flags_a_label_that_is_no_longer_valid(status):
    _html, page = render_page(make_product(label=make_label(status=status, earns_credits=False)), "zh-Hant")
    alerts = [attrs for _tag, attrs in page.tags if "alert" in (attrs.get("class") or "").split()]
    assert alerts and alerts[0]["data-status"] == status
    assert STATUS_WORDS[status]["zh-Hant"] in page.all_text


@given(st.integers(min_value=0, max_value=10**12))
def test_prices_are_yuan_with_two_decimals(cents):
    assert yuan(cents) == f"¥{Decimal(cents) / 100:,.2f}"
