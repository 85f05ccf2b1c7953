"""What the benchmarks share: starting and stopping the server processes they measure, waiting for one to
be ready, its CPU, free ports, percentiles, scratch databases and Redis key clean-up."""

from __future__ import annotations

import asyncio
import glob
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.engine import URL

from carbonpuhui.db.engine import create_engine, execute_autocommit


def start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    # To a file: a pipe nobody reads would fill up with request logs and stall the server.
    with log.open("wb") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def stop(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:  # keep-alive connections a load generator left open
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(p / 100 * len(sorted_values)))]

def admin(server: URL, sql: str) -> None:
    execute_autocommit(server.render_as_string(hide_password=False), sql)


def server_version(url: URL) -> str:
    async def run() -> str:
        engine = create_engine(url.render_as_string(hide_password=False))
        try:
            async with engine.connect() as conn:
                return str((await conn.execute(text("SHOW server_version"))).scalar_one())
        finally:
            await engine.dispose()

    return asyncio.run(run())

def cpu_seconds(group: int) -> float:
    """User + system CPU of every process in a process group (the server and its workers), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[2]) == group:  # pgrp; utime and stime are fields 14 and 15 of stat
            total += int(fields[11]) + int(fields[12])
    return total / tick


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until ``url`` answers anything but a server error (a readiness probe's 503 included)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise SystemExit(f"server exited ({process.returncode}):\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.3)
    raise SystemExit(f"{url} did not become ready")

def clean_redis(url: str, namespace: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
    if keys:
        client.delete(*keys)
