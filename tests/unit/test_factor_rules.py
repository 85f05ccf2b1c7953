"""Pure rules of the factor database: cross-field checks, regions, content identity, file parsing."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbonpuhui.errors import BadRequestError
from carbonpuhui.factors.importer import CSV_COLUMNS, parse
from carbonpuhui.factors.schemas import FactorBody, FactorCreate, Lognormal, NoUncertainty, Triangular
from carbonpuhui.factors.service import (
    TIER_ORDER,
    body_of,
    body_problems,
    content_hash,
    region_chain,
    region_known,
)
from carbonpuhui.paging import decode_cursor as _decode_cursor
from carbonpuhui.paging import encode_cursor as _encode_cursor

BASE: dict[str, Any] = {
    "names": {"zh-Hans": "电网", "zh-Hant": "電網", "en": "Grid"}, "category": "electricity.grid", "unit": "kWh",
    "kgco2e_per_unit": "0.5366", "gwp_basis": "AR5", "region": "CN", "tier": "national",
    "valid_from": "2022-01-01", "source": "test",
}


def body(**overrides: Any) -> FactorBody:
    return msgspec.convert({**BASE, **overrides}, FactorBody)


def problem_fields(**overrides: Any) -> list[str | None]:
    return [p.field for p in body_problems(body(**overrides))]


def test_tier_order_is_the_designed_precedence():
    # DESIGN.md: enterprise > provincial > national > default.
    assert TIER_ORDER == ("enterprise", "provincial", "national", "default")


@pytest.mark.parametrize(("code", "known"), [
    ("CN", True), ("CN-SD", True), ("CN-JS", True), ("GLO", True), ("DE", True), ("DE-BY", True),
    ("XX", False), ("XX-ZZ", False), ("CN-ZZ", False),
])
def test_region_known(code, known):
    assert region_known(code) is known


@pytest.mark.parametrize(("code", "chain"), [
    ("CN-SD", ["CN-SD", "CN"]), ("CN-JS", ["CN-JS", "CN"]), ("CN", ["CN"]), ("GLO", ["GLO"]),
])
def test_region_chain_is_most_specific_first(code, chain):
    assert region_chain(code) == chain


def test_a_valid_body_has_no_problems():
    assert body_problems(body()) == []
    assert body_problems(body(tier="provincial", region="CN-SD")) == []
    assert body_problems(body(tier="enterprise", region="CN-SD", owner_org="acme")) == []
    assert body_problems(body(tier="default", region="GLO")) == []
    assert body_problems(body(valid_to="2022-01-01")) == []  # a one-day validity is fine


@pytest.mark.parametrize(("overrides", "fields"), [
    ({"tier": "provincial", "region": "CN"}, ["region"]),
    ({"tier": "national", "region": "CN-SD"}, ["region"]),
    ({"region": "XX-ZZ"}, ["region"]),
    ({"tier": "enterprise", "region": "CN-SD"}, ["owner_org"]),
    ({"owner_org": "acme"}, ["owner_org"]),
    ({"tier": "provincial", "region": "CN-SD", "owner_org": "acme"}, ["owner_org"]),
    ({"valid_from": "2022-06-02", "valid_to": "2022-06-01"}, ["valid_to"]),
    ({"kgco2e_per_unit": "Infinity"}, ["kgco2e_per_unit"]),
    ({"tier": "provincial", "owner_org": "acme", "valid_to": "2021-01-01"}, ["region", "owner_org", "valid_to"]),
])
def test_cross_field_problems(overrides, fields):
    assert problem_fields(**overrides) == fields


@pytest.mark.parametrize(("value", "uncertainty", "ok"), [
    ("0.5", {"distribution": "lognormal", "gsd": 1.1}, True),
    ("0", {"distribution": "lognormal", "gsd": 1.1}, False),
    ("-0.5", {"distribution": "lognormal", "gsd": 1.1}, False),
    ("-0.5", {"distribution": "none"}, True),  # a negative factor (a credit) without a lognormal is allowed
    ("-0.5", {"distribution": "normal", "sd": "0.1"}, True),
    ("0.5", {"distribution": "normal", "sd": "0"}, True),
    ("0.5", {"distribution": "normal", "sd": "-0.1"}, False),
    ("0.5", {"distribution": "triangular", "min": "0.4", "mode": "0.5", "max": "0.6"}, True),
    ("0.4", {"distribution": "triangular", "min": "0.4", "mode": "0.6", "max": "0.6"}, True),  # bounds inclusive
    ("0.7", {"distribution": "triangular", "min": "0.4", "mode": "0.5", "max": "0.6"}, False),
    ("0.3", {"distribution": "triangular", "min": "0.4", "mode": "0.5", "max": "0.6"}, False),
    ("0.5", {"distribution": "triangular", "min": "0.4", "mode": "0.7", "max": "0.6"}, False),
    ("0.5", {"distribution": "triangular", "min": "0.6", "mode": "0.5", "max": "0.4"}, False),
    ("0.5", {"distribution": "uniform", "min": "0.4", "max": "0.6"}, True),
    ("0.6", {"distribution": "uniform", "min": "0.4", "max": "0.6"}, True),
    ("0.61", {"distribution": "uniform", "min": "0.4", "max": "0.6"}, False),
])
def test_uncertainty_rules(value, uncertainty, ok):
    fields = problem_fields(kgco2e_per_unit=value, uncertainty=uncertainty)
    assert fields == ([] if ok else ["uncertainty"])


def test_uncertainty_is_a_tagged_union():
    assert isinstance(body().uncertainty, NoUncertainty)
    assert isinstance(body(uncertainty={"distribution": "lognormal", "gsd": 1.2}).uncertainty, Lognormal)
    tri = body(uncertainty={"distribution": "triangular", "min": "1", "mode": "2", "max": "3"}).uncertainty
    assert isinstance(tri, Triangular) and tri.mode == Decimal("2")
    with pytest.raises(msgspec.ValidationError):
        body(uncertainty={"distribution": "lognormal", "sd": 1})  # gsd, not sd
    with pytest.raises(msgspec.ValidationError):
        body(uncertainty={"distribution": "lognormal", "gsd": 0.5})  # a GSD is >= 1
    with pytest.raises(msgspec.ValidationError):
        body(uncertainty={"distribution": "poisson"})


@pytest.mark.parametrize("overrides", [
    {"colour": "red"}, {"tier": "global"}, {"region": "cn"}, {"region": "CHN"}, {"gwp_basis": "AR3"},
    {"category": "Electricity"}, {"names": {"zh-Hans": "电网", "en": "Grid"}}, {"unit": ""},
    {"data_quality": {"time": 6}},
])
def test_schema_rejects(overrides):
    with pytest.raises(msgspec.ValidationError):
        body(**overrides)


@pytest.mark.parametrize("factor_id", ["Grid", "-grid", "", "a" * 101, "grid avg", "网"])
def test_factor_id_pattern(factor_id):
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({**BASE, "id": factor_id}, FactorCreate)


def test_content_hash_ignores_id_and_key_order_but_not_content():
    a = msgspec.convert({"id": "one", **BASE}, FactorCreate)
    b = msgspec.convert(dict(reversed(list({"id": "two", **BASE}.items()))), FactorCreate)
    assert content_hash(body_of(a)) == content_hash(body_of(b))
    assert content_hash(body_of(a)) == content_hash(body())
    assert content_hash(body()) != content_hash(body(kgco2e_per_unit="0.5367"))
    assert content_hash(body()) != content_hash(body(valid_to="2022-12-31"))
    assert content_hash(body()) != content_hash(body(names={**BASE["names"], "en": "Grid average"}))
    assert len(content_hash(body())) == 64


def test_decimals_are_exact_in_the_schema():
    assert body(kgco2e_per_unit="0.123456789012345678").kgco2e_per_unit == Decimal("0.123456789012345678")


# --- cursors ------------------------------------------------------------------------------------


@given(st.from_regex(r"[a-z0-9][a-z0-9._-]{0,99}", fullmatch=True))
def test_cursor_round_trips(factor_id):
    cursor = _encode_cursor(factor_id)
    assert "=" not in cursor
    assert _decode_cursor(cursor) == factor_id


@pytest.mark.parametrize("cursor", ["!!!", "a", "_w", "a b", "%%%"])
def test_bad_cursor(cursor):
    with pytest.raises(BadRequestError):
        _decode_cursor(cursor)


def test_no_cursor_is_the_first_page():
    assert _decode_cursor(None) is None and _decode_cursor("") is None


# --- parsing import files -------------------------------------------------------------------------

HEADER = ["id", "names.zh-Hans", "names.zh-Hant", "names.en", "category", "unit", "kgco2e_per_unit",
          "gwp_basis", "region", "tier", "valid_from", "source", "uncertainty.distribution", "uncertainty.gsd",
          "data_quality.time"]


def csv_row(factor_id: str, **overrides: str) -> list[str]:
    values = {"id": factor_id, "names.zh-Hans": "电网", "names.zh-Hant": "電網", "names.en": "Grid",
              "category": "electricity.grid", "unit": "kWh", "kgco2e_per_unit": "0.5366", "gwp_basis": "AR5",
              "region": "CN", "tier": "national", "valid_from": "2022-01-01", "source": "s",
              "uncertainty.distribution": "lognormal", "uncertainty.gsd": "1.05", "data_quality.time": "2"}
    values.update(overrides)
    return [values[c] for c in HEADER]


def csv_bytes(*rows: list[str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    return out.getvalue().encode()


def test_every_csv_column_is_a_field_path():
    assert set(HEADER) <= set(CSV_COLUMNS)
    # Dotted names nest into fields FactorCreate knows.
    heads = {c.split(".")[0] for c in CSV_COLUMNS}
    assert heads <= set(FactorCreate.__struct_fields__)


def test_csv_cells_become_typed_fields():
    [parsed] = parse(csv_bytes(csv_row("a")), "text/csv")
    assert parsed.error is None and parsed.line == 2
    factor = parsed.factor
    assert factor.kgco2e_per_unit == Decimal("0.5366")
    assert factor.uncertainty == Lognormal(gsd=1.05)
    assert factor.data_quality is not None and factor.data_quality.time == 2
    assert factor.names.zh_hant == "電網"
    assert factor.valid_to is None and factor.owner_org is None  # empty cells are absent, not ""


def test_csv_line_numbers_count_physical_lines():
    data = csv_bytes(
        csv_row("a"),                                   # 2
        csv_row("b", source="first\nsecond\nthird"),    # 3-5
        csv_row("c", kgco2e_per_unit="x"),              # 6
        csv_row("d", source="one\r\ntwo"),            # 7-8
        csv_row("e", kgco2e_per_unit="y"),              # 9
    )
    lines = [(r.line, r.factor.id if r.factor else None) for r in parse(data, "text/csv")]
    assert lines == [(2, "a"), (3, "b"), (6, None), (7, "d"), (9, None)]
    assert parse(data, "text/csv")[1].factor.source == "first\nsecond\nthird"


def test_csv_blank_lines_do_not_shift_line_numbers():
    text = csv_bytes(csv_row("a"), csv_row("b", kgco2e_per_unit="x")).decode()
    header, first, second, _ = text.split("\n")
    data = "\n".join([header, "", first, "", "", second, ""]).encode()
    assert [r.line for r in parse(data, "text/csv")] == [3, 6]


def test_csv_errors_that_concern_the_whole_file_are_line_1():
    missing = parse(b"id,category\nx,electricity.grid\n", "text/csv")
    assert [(r.line, r.factor) for r in missing] == [(1, None)]
    assert "unit" in missing[0].params["columns"] and "source" in missing[0].params["columns"]
    unknown = parse(csv_bytes().replace(b"\n", b",colour\n", 1), "text/csv")
    assert [(r.line, r.params) for r in unknown] == [(1, {"columns": "colour"})]
    not_utf8 = parse(csv_bytes(csv_row("a", source="国家统计局")).decode().encode("gbk"), "text/csv")
    assert [(r.line, r.factor) for r in not_utf8] == [(1, None)]


def test_csv_row_with_too_many_cells():
    data = csv_bytes(csv_row("a")) + b"b," + b",".join(c.encode() for c in csv_row("b")[1:]) + b",extra\n"
    rows = parse(data, "text/csv")
    assert [(r.line, r.factor is None) for r in rows] == [(2, False), (3, True)]


def test_json_parsing():
    good = msgspec.json.encode([{"id": "a", **BASE}, {"id": "b", **BASE, "kgco2e_per_unit": 1}])
    rows = parse(good, "application/json")
    assert [(r.line, r.factor.id) for r in rows] == [(1, "a"), (2, "b")]
    assert rows[1].factor.kgco2e_per_unit == Decimal(1)
    raw = msgspec.json.encode([{"id": "c", **BASE}]).replace(b'"0.5366"', b"0.10000000000000000001")
    assert b"0.10000000000000000001" in raw
    exact = parse(raw, "application/json")
    assert exact[0].factor.kgco2e_per_unit == Decimal("0.10000000000000000001")
    assert [(r.line, r.factor) for r in parse(msgspec.json.encode({"id": "a", **BASE}), "application/json")] == [
        (1, None)]
    assert [(r.line, r.factor) for r in parse(b"[{", "application/json")] == [(1, None)]
    # JSON is strict: a string where a number is expected is an error, unlike CSV cells.
    strict = parse(msgspec.json.encode([{"id": "a", **BASE, "data_quality": {"time": "2"}}]), "application/json")
    assert strict[0].factor is None and strict[0].line == 1
