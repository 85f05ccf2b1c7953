"""The ``carbonpuhui`` command line, on an embedded SQLite database in a data directory of its own."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

from carbonpuhui.cli import main
from carbonpuhui.demo import demo_factor_file

with warnings.catch_warnings(record=True):  # authlib.jose is deprecated upstream, still a fine oracle
    from authlib.jose import JsonWebKey, JsonWebToken

HEADER = ["id", "names.zh-Hans", "names.zh-Hant", "names.en", "category", "unit", "kgco2e_per_unit",
          "gwp_basis", "region", "tier", "valid_from", "source"]


def csv_file(path: Path, rows: list[dict[str, str]]) -> Path:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=HEADER, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({"names.zh-Hans": "电网", "names.zh-Hant": "電網", "names.en": "Grid",
                         "category": "electricity.grid", "unit": "kWh", "kgco2e_per_unit": "0.5366",
                         "gwp_basis": "AR5", "region": "CN", "tier": "national", "valid_from": "2022-01-01",
                         "source": "test", **r})
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "cli-data"


@pytest.fixture
def run(data_dir: Path):
    env = {"CARBONPUHUI_DATA_DIR": str(data_dir), "CARBONPUHUI_DATABASE_URL": "", "CARBONPUHUI_REDIS_URL": "",
           "CARBONPUHUI_JWKS_URL": ""}

    def invoke(*args: str):
        return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)

    return invoke


def db_file(data_dir: Path) -> Path:
    return data_dir / "carbonpuhui.sqlite3"


def query(data_dir: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db_file(data_dir)) as conn:
        return conn.execute(sql).fetchall()


def test_db_upgrade_creates_the_sqlite_file(run, data_dir):
    assert not db_file(data_dir).exists()
    result = run("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert db_file(data_dir).is_file()
    tables = {name for (name,) in query(data_dir, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"factor_versions", "alembic_version"} <= tables
    assert query(data_dir, "SELECT count(*) FROM alembic_version") == [(1,)]
    assert run("db", "upgrade").exit_code == 0  # again: nothing to do


def test_demo_twice_creates_nothing_the_second_time(run, data_dir):
    expected = len(json.loads(demo_factor_file()))
    first = run("demo")
    assert first.exit_code == 0, first.output
    assert f"{expected} created, 0 unchanged" in first.stderr
    second = run("demo")
    assert second.exit_code == 0, second.output
    assert f"0 created, {expected} unchanged" in second.stderr
    assert query(data_dir, "SELECT count(*), min(status), max(status) FROM factor_versions") == [
        (expected, "published", "published")]


def test_factors_import_prints_the_result_as_json(run, data_dir, tmp_path):
    good = csv_file(tmp_path / "good.csv", [{"id": "cli-a"}, {"id": "cli-b", "kgco2e_per_unit": "0.123456789012345678"}])
    result = run("factors", "import", str(good), "--publish")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"created": 2, "unchanged": 0, "published": 0}
    rows = query(data_dir, "SELECT factor_id, version, status, kgco2e_per_unit FROM factor_versions ORDER BY 1")
    assert rows == [("cli-a", 1, "published", "0.5366"), ("cli-b", 1, "published", "0.123456789012345678")]

    again = run("factors", "import", str(good), "--publish")
    assert json.loads(again.stdout) == {"created": 0, "unchanged": 2, "published": 0}


def test_factors_import_drafts_then_publish(run, data_dir, tmp_path):
    good = csv_file(tmp_path / "factors.csv", [{"id": "cli-a"}])
    assert json.loads(run("factors", "import", str(good)).stdout) == {"created": 1, "unchanged": 0, "published": 0}
    assert query(data_dir, "SELECT status FROM factor_versions") == [("draft",)]
    assert json.loads(run("factors", "import", str(good), "--publish").stdout)["published"] == 1
    assert query(data_dir, "SELECT status FROM factor_versions") == [("published",)]


def test_factors_import_json_by_suffix_and_by_format(run, data_dir, tmp_path):
    body = [{"id": "cli-json", "names": {"zh-Hans": "电网", "zh-Hant": "電網", "en": "Grid"},
             "category": "electricity.grid", "unit": "kWh", "kgco2e_per_unit": "0.5366", "gwp_basis": "AR5",
             "region": "CN", "tier": "national", "valid_from": "2022-01-01", "source": "test"}]
    (tmp_path / "f.json").write_text(json.dumps(body), encoding="utf-8")
    assert json.loads(run("factors", "import", str(tmp_path / "f.json")).stdout)["created"] == 1
    (tmp_path / "f.txt").write_text(json.dumps(body), encoding="utf-8")
    result = run("factors", "import", str(tmp_path / "f.txt"), "--format", "json")
    assert json.loads(result.stdout) == {"created": 0, "unchanged": 1, "published": 0}


def test_factors_import_with_a_bad_row_imports_nothing(run, data_dir, tmp_path):
    bad = csv_file(tmp_path / "bad.csv", [{"id": "ok-1"}, {"id": "ok-2"}, {"id": "bad", "tier": "provincial"},
                                          {"id": "ok-3"}])
    result = run("factors", "import", str(bad), "--publish")
    assert result.exit_code == 1
    assert "line 4" in result.stderr
    assert "line 2" not in result.stderr and "line 3" not in result.stderr and "line 5" not in result.stderr
    assert result.stdout == ""
    assert query(data_dir, "SELECT count(*) FROM factor_versions") == [(0,)]
    # The good rows on their own import in full: none of them was half-written before.
    good = csv_file(tmp_path / "good.csv", [{"id": "ok-1"}, {"id": "ok-2"}, {"id": "ok-3"}])
    assert json.loads(run("factors", "import", str(good)).stdout)["created"] == 3


def test_factors_import_of_a_missing_file_is_a_usage_error(run, tmp_path):
    result = CliRunner().invoke(main, ["factors", "import", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2


def test_token_prints_a_verifiable_token(run, data_dir):
    result = run("token", "--sub", "alice", "--role", "merchant", "--role", "admin", "--org", "acme", "--ttl", "120")
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert result.stdout == token + "\n" and token.count(".") == 2
    # Verify with Authlib (the CLI signs with joserfc) against the public half of the key it wrote.
    private = json.loads((data_dir / "signing-key.jwk").read_text())
    public = JsonWebKey.import_key({k: private[k] for k in ("kty", "crv", "x", "y")})
    claims = JsonWebToken(["ES256"]).decode(token, public)
    claims.validate()
    assert claims.header["alg"] == "ES256" and claims.header["typ"] == "at+jwt"
    assert claims.header["kid"] == private["kid"]
    assert claims["sub"] == "alice" and claims["org"] == "acme"
    assert sorted(claims["roles"]) == ["admin", "merchant"]
    assert claims["exp"] - claims["iat"] == 120
    assert claims["iss"] == "urn:carbonpuhui:local" and claims["aud"] == "carbonpuhui"


def test_token_rejects_an_unknown_role(run):
    result = CliRunner().invoke(main, ["token", "--sub", "x", "--role", "root"])
    assert result.exit_code == 2
    assert "root" in result.output


@pytest.mark.parametrize("args", [("--sub", ""), ("--sub", "s" * 201), ("--sub", "a", "--org", "o" * 101),
                                  ("--sub", "a", "--org", "")])
def test_token_refuses_claims_the_server_would_refuse(run, args):
    result = run("token", "--role", "admin", *args)
    assert result.exit_code == 2
    assert "Traceback" not in result.output


@pytest.mark.parametrize(("env", "command"), [
    ({"CARBONPUHUI_DATABASE_URL": "postgresql://x@127.0.0.1:9/x"}, ("db", "upgrade")),
    ({"CARBONPUHUI_DATABASE_URL": "bogus://"}, ("demo",)),
    ({"CARBONPUHUI_DATA_DIR": "/proc/not-a-place"}, ("db", "upgrade")),
    ({}, ("db", "upgrade", "--revision", "no-such-revision")),
], ids=["unreachable", "bad-url", "unwritable-data-dir", "unknown-revision"])
def test_operational_failures_are_one_line_and_exit_1(data_dir, env, command):
    base = {"CARBONPUHUI_DATA_DIR": str(data_dir), "CARBONPUHUI_DATABASE_URL": "", "CARBONPUHUI_REDIS_URL": ""}
    result = CliRunner().invoke(main, list(command), env={**base, **env})
    assert result.exit_code == 1, result.output
    assert result.output.strip().startswith("Error:")
    assert "Traceback" not in result.output


def test_serve_refuses_a_port_out_of_range(run):
    result = run("serve", "--port", "99999")
    assert result.exit_code == 2
    assert "65535" in result.output
