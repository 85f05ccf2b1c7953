"""The README's first command, end to end: `carbonpuhui serve --demo` on the embedded default, as a
real process with two workers, answering over loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(base: str, process: subprocess.Popen[bytes], log: Path | None = None) -> None:
    """Until ``/readyz`` answers 200 (a minute at most); the server's output (``log``) if it exits first."""
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert process.poll() is None, log.read_text(errors="replace")[-4000:] if log else "server exited"
        assert time.monotonic() < deadline, "server did not become ready"
        time.sleep(0.3)


def test_serve_demo_embedded_with_workers(tmp_path: Path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONPUHUI_")}
    env["CARBONPUHUI_DATA_DIR"] = str(tmp_path / "data")
    cli = [sys.executable, "-m", "carbonpuhui.cli", "serve", "--demo", "--port", str(port), "--workers", "2"]
    log = tmp_path / "serve.log"
    with log.open("wb") as out:  # a file, not a pipe nobody reads: request logs would stall the server
        process = subprocess.Popen(cli, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, process, log)
        resolved = httpx.get(f"{base}/v1/factors/resolve", params={
            "category": "electricity.grid", "unit": "kWh", "region": "CN-SD", "date": "2023-06-01"}).json()
        assert resolved["factor"]["id"] == "cn-sd-grid-north-china"
        assert resolved["tier"] == "provincial"
        token = subprocess.run([sys.executable, "-m", "carbonpuhui.cli", "token", "--sub", "ops", "--role", "admin"],
                               env=env, capture_output=True, text=True, check=True).stdout.strip()
        me = httpx.get(f"{base}/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.json()["roles"] == ["admin"]
        for _ in range(10):
            httpx.get(f"{base}/v1/factors")
        metrics = httpx.get(f"{base}/metrics").text
        counted = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                      if line.startswith("carbonpuhui_requests_total") and 'path="/v1/factors"' in line)
        assert counted == 10, "metrics add up across both workers"
        assert (tmp_path / "data" / "carbonpuhui.sqlite3").exists()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
