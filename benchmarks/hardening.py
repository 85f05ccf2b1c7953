"""Issue 7's whole harness in one command: the hostile-input, fault and scale-out tests at full
strength on PostgreSQL + Redis, then the load benchmark.

    python benchmarks/hardening.py [--examples 25] [--seconds 20] [--skip-load] [-- extra load.py options]

1. pytest, with ``CARBONPUHUI_REQUIRE_SERVICES=1`` (a missing service fails, never skips), on the
   machine's PostgreSQL and Redis, of: the schemathesis fuzz as admin (``test_fuzz.py``, 4 × the
   examples) and as every role
   (``tests/api/test_fuzz_roles.py``, ``CARBONPUHUI_FUZZ_EXAMPLES`` examples per operation and role;
   CI runs the same file with a small bound), the security tests (``test_security_hardening.py``:
   forged tokens, cross-organisation access, injection strings in every text field, oversized and
   deeply nested bodies, malformed receipts), the fault tests (``tests/integration/test_faults.py``:
   Redis stopped mid-load, PostgreSQL crashed and restarted mid-load, a server killed mid-claims,
   on private Redis and PostgreSQL instances) and the scale-out tests (two server processes on one
   database: ``test_faults.py`` and ``test_credit_concurrency.py``).
2. ``benchmarks/load.py``: demo-sized data, two workers, the mixed load, label lookups against a bare
   Litestar route, ``ledger check`` at the end.
Exits non-zero if either part fails.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ["tests/api/test_fuzz.py", "tests/api/test_fuzz_roles.py", "tests/api/test_security_hardening.py",
         "tests/integration/test_faults.py", "tests/integration/test_credit_concurrency.py"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=25, help="schemathesis examples per operation and role")
    parser.add_argument("--seconds", type=int, default=20, help="each load phase's duration")
    parser.add_argument("--database-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test",
                        help="the tests' PostgreSQL (each run makes and drops its own databases)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--skip-load", action="store_true", help="only the tests")
    args, load_args = parser.parse_known_args()
    env = dict(os.environ, CARBONPUHUI_REQUIRE_SERVICES="1", CARBONPUHUI_FUZZ_EXAMPLES=str(args.examples),
               CARBONPUHUI_FUZZ_ADMIN_EXAMPLES=str(4 * args.examples), CARBONPUHUI_STATEFUL_EXAMPLES="100",
               CARBONPUHUI_TEST_DATABASE_URL=args.database_url, CARBONPUHUI_TEST_REDIS_URL=args.redis)
    print("== hostile input, faults, scale-out (pytest) ==", flush=True)
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", *TESTS], cwd=ROOT, env=env)
    load = subprocess.CompletedProcess([], 0)
    if not args.skip_load:
        print("== load (benchmarks/load.py) ==", flush=True)
        load = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "load.py"), "--seconds", str(args.seconds),
                               "--redis", args.redis, *[a for a in load_args if a != "--"]], cwd=ROOT)
    print(f"tests: {'passed' if tests.returncode == 0 else 'FAILED'}"
          + ("" if args.skip_load else f"; load: {'passed' if load.returncode == 0 else 'FAILED'}"))
    return 1 if tests.returncode or load.returncode else 0


if __name__ == "__main__":
    sys.exit(main())
