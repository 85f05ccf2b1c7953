"""Unit conversion for activity data, by pint: exact Decimal factors between commensurable units."""

from __future__ import annotations

import re
from decimal import Decimal
from functools import lru_cache

import pint

# Decimal magnitudes: g -> kg is exactly 0.001, not the float 0.001000000000000000020816...
_UREG = pint.UnitRegistry(non_int_type=Decimal, autoconvert_offset_to_baseunit=False)
# Counted things and transport work are not SI units; each is its own dimension, so a piece never
# converts into a kilogram and a passenger-km never into a tonne-km.
_UREG.define("piece = [piece] = pc = pcs = item")
_UREG.define("pair = 2 * piece")
_UREG.define("passenger = [passenger]")
_UREG.define("pkm = passenger * kilometer = passenger_km")
_UREG.define("tkm = tonne * kilometer = tonne_km")

# A conversion factor beyond 10**±30 is no real pair of units ("Ym³³/ym³³·kg" is 10**1296 kg): it
# would overflow Decimal, or the float64 Monte Carlo inputs, or turn a positive amount into zero.
_MAX_DECADES = 30

# How people write units in inventories, rewritten into pint's grammar.
_SPELLINGS = {"·": "*", "²": "**2", "³": "**3", "litre": "liter", "metre": "meter"}


class UnitError(ValueError):
    """``code``: ``unknown_unit`` or ``incommensurable_units``."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


@lru_cache(maxsize=1024)
def _parse(unit: str) -> pint.Unit:
    text = unit
    for written, pint_form in _SPELLINGS.items():
        text = text.replace(written, pint_form)
    text = re.sub(r"(?<=[A-Za-z])([23])(?![0-9])", r"**\1", text)  # m2, m3 -> m**2, m**3
    try:
        parsed = _UREG.parse_units(text)
    except Exception:  # noqa: BLE001 - pint's parser raises many kinds (even AssertionError) on junk
        raise UnitError("unknown_unit", f"unknown unit {unit!r}") from None
    # Offset units (°C) have no conversion factor, only an affine map: not activity units.
    if not _UREG.Quantity(Decimal(1), parsed)._is_multiplicative:
        raise UnitError("unknown_unit", f"{unit!r} is not a multiplicative unit")
    if parsed.dimensionless:  # "kg/kg", "pi": a ratio is not an amount of activity
        raise UnitError("unknown_unit", f"{unit!r} is not an activity unit")
    return parsed


def known_unit(unit: str) -> bool:
    try:
        _parse(unit)
    except UnitError:
        return False
    return True


@lru_cache(maxsize=4096)
def conversion_factor(from_unit: str, to_unit: str) -> Decimal:
    """How many ``to_unit`` one ``from_unit`` is (MWh -> kWh: 1000). Raises ``UnitError``."""
    if from_unit == to_unit:
        return Decimal(1)
    source, target = _parse(from_unit), _parse(to_unit)
    try:
        factor = Decimal(_UREG.Quantity(Decimal(1), source).to(target).magnitude).normalize()
    except (pint.DimensionalityError, ArithmeticError):
        raise UnitError("incommensurable_units", f"{from_unit} does not convert to {to_unit}") from None
    if not factor.is_finite() or not factor or abs(factor.adjusted()) > _MAX_DECADES:
        raise UnitError("incommensurable_units", f"{from_unit} is 10**{factor.adjusted()} {to_unit}: out of range")
    return factor
