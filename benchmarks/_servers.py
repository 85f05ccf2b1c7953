"""Starting and stopping the server processes a benchmark measures (shared by the HTTP benchmarks)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path


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
