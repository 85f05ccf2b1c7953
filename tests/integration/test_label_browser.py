"""The GS1 Digital Link page in a real browser: Debian's chromium, headless, on a phone-sized window.

It must render: the screenshot is a picture (many colours, the grade's colour, the stylesheet
applied under the page's Content-Security-Policy), its QR code decodes to the Digital Link, and
the DOM chromium built holds the grade element and the product's name. Needs ``chromium`` and
``fonts-noto-cjk`` (apt); skips without them, or fails with ``CARBONPUHUI_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import httpx
import msgspec
import pytest
import zxingcpp
from PIL import Image

from carbonpuhui.labels.render import GRADE_COLOURS, PAGE_BACKGROUND, digital_link
from carbonpuhui.labels.schemas import PublicProduct
from tests.conftest import require_service
from tests.integration.test_serve import _free_port, wait_ready

WINDOW = (412, 915)  # a common Android phone's CSS viewport
GTIN = "06901234567892"  # the demo's hot-rolled coil, with a verified label


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


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """The real thing: ``carbonpuhui serve --demo`` (the README's first command) on the embedded
    default, and the demo steel coil's Digital Link page, whose label a demo certification body
    verified."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONPUHUI_")}
    env["CARBONPUHUI_DATA_DIR"] = str(tmp_path / "data")
    cli = [sys.executable, "-m", "carbonpuhui.cli", "serve", "--demo", "--port", str(port)]
    with (tmp_path / "server.log").open("wb") as log:
        process = subprocess.Popen(cli, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base_url, process)
        shown = httpx.get(f"{base_url}/01/{GTIN}", headers={"Accept": "application/json"})
        assert shown.status_code == 200, shown.text
        product = msgspec.convert(shown.json(), PublicProduct)
        yield Served(url=f"{base_url}/01/{GTIN}?lang=zh-Hans", product=product, base_url=base_url)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)


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
