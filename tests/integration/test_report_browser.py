"""The quarterly report's HTML page in a real browser: Debian's chromium, headless.

The page comes from the API (a submitted report, with the response's own headers, its
Content-Security-Policy included) and is served to chromium as it was answered. Chromium must
print it to an A4 PDF using a Traditional Chinese font, build a DOM holding the title, the tables
and both SVG charts, paint the stylesheet and the grade colours (so the CSP allowed the one inline
stylesheet), and log no console message: a control run under a policy without the stylesheet's hash
shows a refusal would be seen, and that the hash chromium asks for is the one the policy names. Needs ``chromium`` and ``fonts-noto-cjk``; skips without them, or
fails with ``CARBONPUHUI_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from carbonpuhui.labels.render import BRAND, GRADE_COLOURS
from carbonpuhui.stats import reports
from tests.api.test_stats_reports import MILLS, labelled_product, officer, organisation, seed
from tests.integration.test_label_browser import chromium, rgb, run_chromium  # noqa: F401 - the fixture

WINDOW = (1000, 1400)


class Page:
    """One HTTP response, replayed to the browser: body and headers as the API gave them."""

    def __init__(self) -> None:
        self.body = b""
        self.headers: dict[str, str] = {}


@pytest.fixture
def page_server() -> Iterator[tuple[str, Page]]:
    page = Page()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server name
            if self.path != "/report":
                self.send_error(404)  # the page asks for nothing else; a request here fails the test
                return
            self.send_response(200)
            for name, value in page.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(page.body)))
            self.end_headers()
            self.wfile.write(page.body)

        def log_message(self, *_args: object) -> None:
            requested.append(self.path)

    requested: list[str] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/report", page
    finally:
        server.shutdown()
        server.server_close()
    assert all(path == "/report" for path in requested), requested


def _console(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "CONSOLE" in line or "Content Security Policy" in line]


def test_the_report_page_prints_and_renders_in_headless_chromium(chromium, client, auth, monkeypatch,  # noqa: F811
                                                                 page_server, tmp_path: Path) -> None:
    # Three mills, each with an A and a B label: the grade totals have three enterprises, so they show.
    rows: list[object] = [organisation(org, division, "steel") for org, division in MILLS.items()]
    rows.append(organisation("yt-agency", "370602", "public_sector"))
    for n, org in enumerate(MILLS):
        rows += labelled_product(10 + n, org, datetime(2025, 2, 3, tzinfo=UTC), grade="A")
        rows += labelled_product(20 + n, org, datetime(2025, 3, 3, tzinfo=UTC), grade="B")
    seed(client, *rows)
    monkeypatch.setattr(reports, "now", lambda: datetime(2025, 4, 5, tzinfo=UTC))
    assert client.post("/v1/stats/reports", json={"city": "370600", "quarter": "2025Q1"},
                       headers=officer(auth)).status_code == 201
    answered = client.get("/v1/stats/reports/370600/2025Q1?format=html&lang=zh-Hant")
    assert answered.status_code == 200
    url, page = page_server
    page.body = answered.content
    page.headers = {name: answered.headers[name] for name in ("content-type", "content-security-policy",
                                                               "x-content-type-options")}

    pdf = tmp_path / "report.pdf"
    printed = run_chromium(chromium, tmp_path / "profile-pdf", "--enable-logging=stderr", "--v=0",
                           "--no-pdf-header-footer", f"--print-to-pdf={pdf}", url)
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    sizes = {tuple(round(float(v)) for v in box) for box in
             re.findall(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", data)}
    assert sizes == {(595, 842)}  # every page A4 (210 x 297 mm in points), from the stylesheet's @page
    assert len(re.findall(rb"/Type\s*/Page\b", data)) >= 2
    # The Traditional Chinese text was set in a CJK font that has its glyphs (embedded, subset).
    fonts = set(re.findall(rb"/FontName\s*/[A-Z]{6}\+([\w-]+)", data))
    assert any(name.startswith(b"NotoSansCJKtc") for name in fonts), fonts  # the page's zh-Hant font stack
    assert _console(printed.stderr) == []

    shot = tmp_path / "report.png"
    painted = run_chromium(chromium, tmp_path / "profile-shot", "--enable-logging=stderr", "--v=0",
                           f"--window-size={WINDOW[0]},{WINDOW[1]}", f"--screenshot={shot}", url)
    assert _console(painted.stderr) == []
    image = Image.open(shot).convert("RGB")
    colours = {colour: count for count, colour in image.getcolors(maxcolors=image.width * image.height)}
    assert len(colours) > 50, "a blank or flat screenshot"
    assert colours.get(rgb(BRAND), 0) > 500  # headings' rules and this quarter's bars: the stylesheet and SVG
    assert colours.get(rgb(GRADE_COLOURS["A"][0]), 0) > 300  # grade A's bar in the chart
    assert colours.get(rgb("#eef4f0"), 0) > 1000  # the table headers' background: the stylesheet applied

    # Control, in the same run as the DOM dump (a policy changes no DOM): under a policy without the
    # stylesheet's hash chromium refuses the stylesheet, names the hash it wanted, and the log shows it.
    page.headers["content-security-policy"] = "default-src 'none'; style-src 'none'"
    control = run_chromium(chromium, tmp_path / "profile-dom", "--enable-logging=stderr", "--v=0", "--dump-dom", url)
    refusals = [line for line in _console(control.stderr) if "Content Security Policy" in line]
    wanted = re.findall(r"'(sha256-[A-Za-z0-9+/=]+)'", " ".join(refusals))
    assert wanted and all(f"'{digest}'" in answered.headers["content-security-policy"] for digest in wanted)
    dom = control.stdout
    assert "<h1>煙臺市2025年第一季度碳足跡試點工作進展報告</h1>" in dom
    assert dom.count("<svg") == 2 and '<title id="grades-title">' in dom and '<desc id="qoq-desc">' in dom
    assert "熱軋卷10" in dom and "<script" not in dom
