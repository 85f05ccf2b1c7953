"""Private services for fault tests: a PostgreSQL cluster and a redis-server of the module's own, which
its tests may crash and restart (never the shared ones on 5432 and 6379; the Redis class lives in
test_credit_concurrency). Each is removed at teardown, whatever the tests did to it."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_service
from tests.integration.test_credit_concurrency import PrivateRedis
from tests.integration.test_serve import _free_port


def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


class PrivatePostgres:
    """One cluster in a temporary directory, run as the ``postgres`` user (initdb refuses root), on a
    free port, durability off (a crash of the server, not of the machine, loses nothing: the WAL is in
    the OS's cache)."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        # Not under pytest's tmp_path: its folders are root's alone (0700), the postgres user could not enter.
        self.folder = Path(tempfile.mkdtemp(prefix="cpt-pg-"))
        shutil.chown(self.folder, "postgres", "postgres")
        self.data = self.folder / "data"
        self.log = self.folder / "postgres.log"
        self.port = _free_port()
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _pg(self, tool: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["runuser", "-u", "postgres", "--", str(self.bindir / tool), *args],
                              capture_output=True, text=True, timeout=timeout, cwd=self.folder)

    def init(self) -> None:
        done = self._pg("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8",
                        "--locale=C")
        assert done.returncode == 0, done.stdout + done.stderr

    def start(self) -> None:
        options = f"-F -c fsync=off -c full_page_writes=off -p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        done = self._pg("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "20", "-o", options, "start")
        assert done.returncode == 0, done.stdout + done.stderr + self.log_tail()

    def crash(self) -> None:
        """``-m immediate``: every backend is killed at once, no checkpoint; the next start recovers."""
        done = self._pg("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "-t", "20", "stop")
        assert done.returncode == 0, done.stdout + done.stderr

    def running(self) -> bool:
        return self._pg("pg_ctl", "-D", str(self.data), "status").returncode == 0

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def remove(self) -> None:
        try:
            if self.data.exists() and self.running():
                self.crash()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    """A private PostgreSQL cluster for a whole module: a test may crash it, and starts it again."""
    bindir = _postgres_bin()
    if bindir is None or shutil.which("runuser") is None:
        require_service("PostgreSQL server binaries (/usr/lib/postgresql/*/bin) or runuser are missing")
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        require_service("no postgres user to run a private cluster as")
    if os.geteuid() != 0:
        require_service("a private PostgreSQL cluster is started with runuser, which needs root")
    server = PrivatePostgres(bindir)  # type: ignore[arg-type]
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="module")
def module_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    """A private redis-server for a whole module: a test may kill it, the next finds it started again."""
    if shutil.which("redis-server") is None:
        require_service("redis-server is not installed")
    server = PrivateRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        if server.process is not None and server.process.poll() is None:
            server.kill()


def wait_until(check, deadline: float, what: str, step: float = 0.1):  # type: ignore[no-untyped-def]
    """``check()`` until it returns something truthy (returned), or fail naming ``what``."""
    until = time.monotonic() + deadline
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < until, f"{what}: not within {deadline} s"
        time.sleep(step)
