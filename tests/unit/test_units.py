"""Unit conversion of activity data: exact Decimal factors, refusals with a code."""

from __future__ import annotations

from decimal import Decimal

import pytest

from carbonpuhui.footprints.units import UnitError, conversion_factor, known_unit

# (from, to, how many `to` one `from` is), written from the SI definitions: 1 Wh = 3600 J,
# 1 t = 1000 kg, 1 L = 1 dm³ = 0.001 m³.
EXACT = [
    ("g", "kg", Decimal("0.001")),
    ("kg", "g", Decimal("1000")),
    ("kg", "t", Decimal("0.001")),
    ("t", "kg", Decimal("1000")),
    ("tonne", "kg", Decimal("1000")),
    ("g", "t", Decimal("0.000001")),
    ("Wh", "kWh", Decimal("0.001")),
    ("kWh", "Wh", Decimal("1000")),
    ("MWh", "kWh", Decimal("1000")),
    ("Wh", "MWh", Decimal("0.000001")),
    ("MJ", "GJ", Decimal("0.001")),
    ("GJ", "MJ", Decimal("1000")),
    ("kWh", "MJ", Decimal("3.6")),  # 1000 W * 3600 s = 3 600 000 J
    ("MWh", "GJ", Decimal("3.6")),
    ("Wh", "MJ", Decimal("0.0036")),
    ("kWh", "GJ", Decimal("0.0036")),
    ("kWh", "J", Decimal("3600000")),
    ("t·km", "tkm", Decimal("1")),
    ("tkm", "t·km", Decimal("1")),
    ("t*km", "tkm", Decimal("1")),
    ("kg·km", "t·km", Decimal("0.001")),
    ("kg·km", "tkm", Decimal("0.001")),
    ("t·km", "kg·km", Decimal("1000")),
    ("m²", "m2", Decimal("1")),
    ("m2", "m²", Decimal("1")),
    ("cm²", "m²", Decimal("0.0001")),
    ("m³", "m3", Decimal("1")),
    ("litre", "m³", Decimal("0.001")),
    ("m³", "litre", Decimal("1000")),
    ("m3", "litre", Decimal("1000")),
    ("L", "m³", Decimal("0.001")),
    ("litre", "L", Decimal("1")),
    ("pair", "piece", Decimal("2")),
    ("piece", "pair", Decimal("0.5")),
    ("pkm", "passenger·km", Decimal("1")),
]


@pytest.mark.parametrize(("source", "target", "factor"), EXACT)
def test_exact_decimal_factors(source, target, factor):
    got = conversion_factor(source, target)
    assert isinstance(got, Decimal)
    # Exact equality with the literal (a float-derived 0.001 would be 0.001000000000000000020816...).
    assert got == factor


@pytest.mark.parametrize(("source", "target", "factor"), EXACT)
def test_the_way_back_is_the_reciprocal(source, target, factor):
    assert conversion_factor(source, target) * conversion_factor(target, source) == 1


def test_equality_with_a_literal_is_an_exactness_check():
    assert Decimal(0.001) != Decimal("0.001") and Decimal(3.6) != Decimal("3.6")


def test_mj_to_kwh_is_the_reciprocal_of_3_6_to_28_digits():
    # 1/3.6 has no finite decimal expansion: Decimal's 28 significant digits, rounded half-even.
    assert conversion_factor("MJ", "kWh") == Decimal(1) / Decimal("3.6")
    assert str(conversion_factor("MJ", "kWh")) == "0.2777777777777777777777777778"


def test_same_unit_is_one():
    for unit in ("kg", "kWh", "t·km", "m²", "piece"):
        assert conversion_factor(unit, unit) == 1


@pytest.mark.parametrize(("source", "target"), [
    ("kg", "kWh"), ("kWh", "kg"), ("piece", "kg"), ("kg", "piece"), ("pair", "kg"),
    ("pkm", "tkm"), ("tkm", "pkm"), ("passenger·km", "t·km"), ("t·km", "km"), ("tkm", "t"),
    ("m²", "m³"), ("litre", "kg"), ("MJ", "kW"),
])
def test_incommensurable_units(source, target):
    with pytest.raises(UnitError) as info:
        conversion_factor(source, target)
    assert info.value.code == "incommensurable_units"
    assert source in str(info.value) and target in str(info.value)


@pytest.mark.parametrize("unit", [
    "degC", "degF",  # offset units: an affine map, no conversion factor
    "kg/kg", "percent", "ppm", "dimensionless", "1",  # ratios, not amounts of activity
    "furlongs_of_cheese", "kg**", "kg)", "·", "²",  # not units at all
])
def test_unknown_offset_and_dimensionless_units(unit):
    assert not known_unit(unit)
    for other in ("kg", "kWh"):
        with pytest.raises(UnitError) as info:
            conversion_factor(unit, other)
        assert info.value.code == "unknown_unit"
        with pytest.raises(UnitError) as info:
            conversion_factor(other, unit)
        assert info.value.code == "unknown_unit"


@pytest.mark.parametrize("unit", ["kg", "g", "t", "kWh", "MJ", "GJ", "t·km", "tkm", "pkm", "m²", "m³", "litre",
                                  "piece", "pair", "pcs", "L"])
def test_known_units(unit):
    assert known_unit(unit)
