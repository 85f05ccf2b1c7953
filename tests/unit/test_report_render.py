"""The quarterly report's renderers on a hand-made content: CSV rows and their values, the HTML page
(escaping, no script, the stylesheet's CSP hash, accessible SVG charts with bars to scale), three
locales, and the quarter-over-quarter changes."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import re
from html.parser import HTMLParser

import pytest

from carbonpuhui.stats import divisions, render, reports

NAMES = {"zh-Hans": "钢铁", "zh-Hant": "鋼鐵", "en": "Steel"}
HOSTILE = '<script>alert("x")</script>&"\x07'


def cell(group: str, value, status: str = "published", names=None) -> dict:
    return {"group": group, "group_names": names or {"zh-Hans": group, "zh-Hant": group, "en": group},
            "value": value, "status": status}


def indicator(ident: str, unit: str, cells: list[dict], **extra) -> dict:
    return {"id": ident, "unit": unit, "names": {"zh-Hans": f"指标{ident}", "zh-Hant": f"指標{ident}", "en": f"Ind {ident}"},
            "definition": {"zh-Hans": "定义", "zh-Hant": "定義", "en": f"definition of {ident}"}, "cells": cells, **extra}


def indicators(quarter: str, grades: list[int], labelled: int, share: str | None, export: int) -> dict:
    return {
        "area": {"code": "370600", "level": "city", "names": divisions.names("370600")}, "quarter": quarter,
        "period": {"starts_on": "2025-01-01", "ends_on": "2025-03-31", "time_zone": "Asia/Shanghai"},
        "by": "industry", "generated_at": "2025-04-02T00:00:00Z", "unattributed_products": 2,
        "indicators": [
            indicator("labelled_products", "count", [cell("steel", labelled, names=NAMES), cell("tyres", None, "primary"),
                                                     cell("*", labelled + 3)]),
            indicator("labelled_share", "ratio", [cell("*", share, "published" if share else "secondary")]),
            *(indicator(f"grade_{g}", "count", [cell("*", n)]) for g, n in zip("ABCDE", grades, strict=True)),
            indicator("avoided_kg", "kg", [cell("*", "1234.5")]),
            indicator("export_value_cents", "cents", [cell("*", export)],
                      by_destination=[cell("DE", export // 2), cell("US", None, "secondary")]),
        ],
    }


@pytest.fixture
def content() -> dict:
    current = indicators("2025Q1", [4, 2, 0, 1, 3], 7, "0.4167", 123456)
    previous = indicators("2024Q4", [2, 2, 1, 0, 0], 5, None, 100000)
    return {
        "content_version": 1, "city": "370600", "city_names": divisions.names("370600"), "province": "370000",
        "province_names": divisions.names("370000"), "quarter": "2025Q1", "previous_quarter": "2024Q4",
        "period": current["period"], "due_on": "2025-04-10", "revision": 2, "submitted_at": "2025-04-09T03:00:00Z",
        "late": False, "note": "corrected <b>tyres</b>", "generated_at": "2025-04-09T03:00:00Z", "by": "industry",
        "indicators": current, "previous": previous, "changes": reports.changes(current, previous),
        "labels": [{"gtin": "06901234567892", "names": {"zh-Hans": HOSTILE, "zh-Hant": HOSTILE, "en": HOSTILE},
                    "category": "steel.hot_rolled_coil", "scheme": "verified", "grade": "A",
                    "kgco2e_per_unit": "1.85", "declared_unit": "kilogram", "issued_on": "2025-02-01",
                    "valid_until": "2026-12-31"}],
        "tenders": [{"id": "t1", "title": "=HYPERLINK(\"http://evil\")", "category": "steel", "created_on": "2025-01-05",
                     "carbon_criteria": True, "weight_carbon": "0.4", "max_kgco2e_per_unit": None,
                     "label_required": False, "awarded": True}],
        "credits": {"months": [{"month": m, "purchases_g": v, "purchases_g_status": "published" if v is not None
                                else "secondary", "travel_g": 10, "travel_g_status": "published",
                                "redeemed_g": None, "redeemed_g_status": "primary"}
                               for m, v in (("2025-01", 500), ("2025-02", None), ("2025-03", None))]},
    }


def test_changes_are_differences_of_published_figures_only(content):
    found = {(c["indicator"], c["dimension"], c["group"]): c["change"] for c in content["changes"]}
    assert found[("labelled_products", "group", "steel")] == 2
    assert found[("labelled_products", "group", "*")] == 2
    assert found[("labelled_products", "group", "tyres")] is None  # suppressed: no change either
    assert found[("labelled_share", "group", "*")] is None  # the previous share was withheld
    assert found[("grade_E", "group", "*")] == 3
    assert found[("avoided_kg", "group", "*")] == "0.0"  # exact decimal strings stay decimal
    assert found[("export_value_cents", "destination", "DE")] == 61728 - 50000
    assert found[("export_value_cents", "destination", "US")] is None


def test_csv_has_one_row_per_indicator_and_cell_with_both_quarters(content):
    parsed = list(csv.DictReader(io.StringIO(render.to_csv(content, "en"))))
    expected = sum(len(i["cells"]) + len(i.get("by_destination") or []) for i in content["indicators"]["indicators"])
    assert len(parsed) == expected == 13
    steel = next(r for r in parsed if r["indicator"] == "labelled_products" and r["group"] == "steel")
    assert (steel["value"], steel["previous_value"], steel["change"], steel["status"]) == ("7", "5", "2", "published")
    assert (steel["group_name"], steel["quarter"], steel["previous_quarter"]) == ("Steel", "2025Q1", "2024Q4")
    tyres = next(r for r in parsed if r["indicator"] == "labelled_products" and r["group"] == "tyres")
    assert (tyres["value"], tyres["status"], tyres["change"]) == ("", "primary", "")
    us = next(r for r in parsed if r["group"] == "US")
    assert (us["dimension"], us["status"]) == ("destination", "secondary")
    hant = list(csv.DictReader(io.StringIO(render.to_csv(content, "zh-Hant"))))
    assert next(r for r in hant if r["group"] == "steel")["group_name"] == "鋼鐵"
    assert next(r for r in hant if r["group"] == "*")["group_name"] == "合計"


def test_csv_neutralises_spreadsheet_formulas():
    assert render._csv_safe("=SUM(A1)") == "'=SUM(A1)"
    assert render._csv_safe("-12") == "-12"  # a negative change stays a number
    assert render._csv_safe("-cmd") == "'-cmd"
    assert render._csv_safe(None) == ""


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.style = ""
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.style += data
        else:
            self.text.append(data)


@pytest.mark.parametrize(("locale", "city", "heading"), [
    ("zh-Hans", "烟台市", "烟台市2025年第一季度碳足迹试点工作进展报告"),
    ("zh-Hant", "煙臺市", "煙臺市2025年第一季度碳足跡試點工作進展報告"),
    ("en", "Yantai", "Yantai pilot progress report, 2025 Q1"),
])
def test_the_page_in_each_locale(content, locale, city, heading):
    html = render.to_html(content, locale, sha="ab" * 32)
    page = Page()
    page.feed(html)
    assert html.startswith("<!DOCTYPE html>") and f'<html lang="{locale}">' in html
    assert f"<h1>{heading}</h1>" in html and city in html
    assert ("ab" * 32) in html
    # No script anywhere, no inline style attribute, nothing fetched from elsewhere.
    assert not any(tag == "script" or "style" in attrs or "src" in attrs for tag, attrs in page.tags)
    assert not re.search(r"\son\w+=", html)
    assert "http://evil" not in html or "&quot;http://evil&quot;" in html
    # The only stylesheet is the one the CSP's hash allows.
    digest = base64.b64encode(hashlib.sha256(page.style.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in render.PAGE_CSP and "default-src 'none'" in render.PAGE_CSP
    assert "@page{size:A4" in page.style and "break-inside:avoid" in page.style
    # Both charts are accessible images: a title and a description each.
    svgs = [attrs for tag, attrs in page.tags if tag == "svg"]
    assert [a["aria-labelledby"] for a in svgs] == ["grades-title grades-desc", "qoq-title qoq-desc"]
    assert all(a["role"] == "img" for a in svgs)
    assert sum(tag == "title" for tag, _ in page.tags) == 3  # the document's and the two charts'


def test_everything_is_escaped(content):
    html = render.to_html(content, "en")
    assert "<script" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&quot;\ufffd" in html
    assert "corrected &lt;b&gt;tyres&lt;/b&gt;" in html


def test_grade_bars_are_to_scale_and_withheld_figures_draw_none(content):
    svg = render.grade_chart(content, "en")
    heights = [float(h) for h in re.findall(r'<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="([\d.]+)"', svg)]
    heights = heights[2:]  # after the legend's two swatches: 5 grades x 2 quarters (zeros as flat bars)
    assert len(heights) == 10
    current = heights[0::2]
    assert current[0] == pytest.approx(2 * current[1]) and current[0] == pytest.approx(4 * current[3])
    assert "A 4 / 2; B 2 / 2; C 0 / 1; D 1 / 0; E 3 / 0" in svg  # the description carries every figure
    content["indicators"]["indicators"][2]["cells"][0].update(value=None, status="primary")
    assert "A — / 2" in render.grade_chart(content, "en")


def test_figures_are_shown_for_readers():
    assert render.figure(123456, "cents", "export_value_cents", "en") == "¥1,234.56"
    assert render.figure("0.4167", "ratio", "labelled_share", "en") == "41.67%"
    assert render.figure("0.8512", "ratio", "intensity_vs_baseline", "en") == "0.8512"
    assert render.figure(12345, "count", "tenders", "en") == "12,345"
    assert render.figure(None, "count", "tenders", "en") == "—"
    assert render.quarter_name("2025Q4", "zh-Hant") == "2025年第四季度"


def test_a_draft_says_so(content):
    content.update(revision=None, submitted_at=None, late=None)
    html = render.to_html(content, "zh-Hans")
    assert 'data-draft="true"' in html and "草稿" in html


def test_an_unknown_locale_is_refused(content):
    with pytest.raises(ValueError, match="unsupported locale"):
        render.to_html(content, "fr")
