"""The GS1 Digital Link page in a real browser: Debian's chromium, headless, on a phone-sized window.

It must render: the screenshot is a picture (many colours, the grade's colour, the stylesheet
applied under the page's Content-Security-Policy), its QR code decodes to the Digital Link, and
the DOM chromium built holds the grade element and the product's name. Needs ``chromium`` and
``fonts-noto-cjk`` (apt); skips without them, or fails with ``CARBONPUHUI_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from carbonpuhui.factors.schemas import Names
from carbonpuhui.footprints.schemas import FactorRef
from carbonpuhui.labels.render import (
    GRADE_COLOURS,
    PAGE_BACKGROUND,
    PAGE_CSP,
    digital_link,
    label_page,
    label_svg,
)
from carbonpuhui.labels.schemas import LabelOut, ListingOut, PublicProduct
from tests.conftest import require_service

WINDOW = (412, 915)  # a common Android phone's CSS viewport
GTIN = "06901234567892"


@dataclass(frozen=True)
class Served:
    url: str  # the Digital Link page to open
    product: PublicProduct  # what that page shows
    base_url: str  # the origin its Digital Link (and QR code) points at


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium")
    require_service(None if path else "chromium is not installed (apt-get install chromium fonts-noto-cjk)")
    fonts = subprocess.run(["fc-list", ":lang=zh-cn", "family"], capture_output=True, text=True).stdout \
        if shutil.which("fc-list") else ""
    require_service(None if fonts.strip() else "no CJK font for chromium (apt-get install fonts-noto-cjk)")
    return str(path)


def demo_product(base_url: str) -> PublicProduct:
    label = LabelOut(
        id="lbl_demo", gtin=GTIN, category="steel.hot_rolled_coil", kgco2e_per_unit="2.184",
        declared_unit="kilogram", grade="B", scheme="verified", status="active",
        certification_body="demo-cert-body", issued_at=datetime(2026, 1, 5, 8, 30, tzinfo=UTC),
        valid_until=date(2027, 12, 31), factor_versions=[FactorRef(id="ipcc2006-steel-bof", version=3)],
        conservative_basis="monte_carlo_p80", earns_credits=True)
    listing = ListingOut(id="lst_demo", gtin=GTIN, merchant="demo-steel", store="鲁钢旗舰店", price_cents=412300,
                         url="https://shop.example.cn/p/1", created_at=datetime(2026, 1, 6, tzinfo=UTC))
    return PublicProduct(
        gtin=GTIN, names=Names(zh_hans="热轧卷板（示例）", zh_hant="熱軋卷板（示例）", en="Hot-rolled coil (demo)"),
        category="steel.hot_rolled_coil", declared_unit="kilogram", declared_units_per_item="1000", label=label,
        listings=[listing], digital_link=digital_link(base_url, GTIN))


@pytest.fixture
def served() -> Iterator[Served]:
    """The page to test. Here: label_page() from a bare HTTP server with the headers the app sends;
    the app's own ``/01/{gtin14}`` route can take this fixture's place without touching the test."""
    routes: dict[str, tuple[str, bytes]] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            found = routes.get(self.path)
            if found is None:
                self.send_error(404)
                return
            content_type, body = found
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Security-Policy", PAGE_CSP)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - keep test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    base_url = f"http://127.0.0.1:{server.server_address[1]}"
    product = demo_product(base_url)
    svg_url = f"/v1/products/{GTIN}/label.svg?lang=zh-Hans"
    routes[f"/01/{GTIN}"] = ("text/html; charset=utf-8", label_page(
        product, locale="zh-Hans", base_url=base_url, svg_url=svg_url).encode())
    routes[svg_url] = ("image/svg+xml", label_svg(product, locale="zh-Hans", base_url=base_url).encode())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served(url=f"{base_url}/01/{GTIN}", product=product, base_url=base_url)
    finally:
        server.shutdown()
        server.server_close()


def run_chromium(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
               "--force-device-scale-factor=1", f"--user-data-dir={profile}",
               f"--window-size={WINDOW[0]},{WINDOW[1]}", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def rgb(hex_colour: str) -> tuple[int, int, int]:
    return int(hex_colour[1:3], 16), int(hex_colour[3:5], 16), int(hex_colour[5:7], 16)


class GradeFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.grades: list[tuple[str | None, str]] = []
        self._open: str | None = None

    def handle_starttag(self, tag, attrs):
        found = dict(attrs)
        if "data-grade" in found:
            self._open = found["data-grade"]

    def handle_data(self, data):
        if self._open is not None:
            self.grades.append((self._open, data))
            self._open = None


def test_digital_link_page_renders_in_headless_chromium(chromium, served, tmp_path):
    label = served.product.label
    assert label is not None
    shot = tmp_path / "label.png"
    run_chromium(chromium, tmp_path / "profile-shot", f"--screenshot={shot}", served.url)
    assert shot.is_file()
    image = Image.open(shot).convert("RGB")
    assert image.size == WINDOW

    colours = dict((colour, count) for count, colour in image.getcolors(maxcolors=WINDOW[0] * WINDOW[1]))
    assert len(colours) > 50, "a blank or flat screenshot"
    # The grade's colour fills the big letter's box (96 px square at the label's scale, minus the letter).
    assert colours.get(rgb(GRADE_COLOURS[label.grade][0]), 0) > 2000
    # The page background comes from the inline stylesheet: it applied under the page's CSP.
    assert image.getpixel((2, 2)) == rgb(PAGE_BACKGROUND)

    decoded = [r.text for r in zxingcpp.read_barcodes(image) if r.format == zxingcpp.BarcodeFormat.QRCode]
    assert decoded == [digital_link(served.base_url, served.product.gtin)] == [served.product.digital_link]

    dom = run_chromium(chromium, tmp_path / "profile-dom", "--dump-dom", served.url).stdout
    finder = GradeFinder()
    finder.feed(dom)
    assert finder.grades == [(label.grade, label.grade)]
    assert served.product.names.zh_hans in dom
    assert '<html lang="zh-Hans"' in dom
