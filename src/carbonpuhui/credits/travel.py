"""The green-travel methodology (``green_travel.toml``) and its pure rules: plausibility checks,
credited grams and daily caps.

Everything here is exact: distances are Decimals, times are aware datetimes compared in UTC, and no
float ever touches a credit. Nothing here reads a clock or a database; callers pass ``now`` and the
day's totals so that the rules can be tested at every boundary.
"""

from __future__ import annotations

import tomllib
from datetime import UTC, date, datetime, timedelta
from decimal import (
    MAX_EMAX,
    MIN_EMIN,
    ROUND_CEILING,
    ROUND_FLOOR,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from carbonpuhui.errors import FieldError, UnprocessableError
from carbonpuhui.i18n import N_

CST = ZoneInfo("Asia/Shanghai")
MODES = ("walk", "bike", "bus", "metro", "rail")
FUTURE_TOLERANCE = timedelta(minutes=5)  # clock skew between the phone or operator and us
MAX_TRIP_DURATION = timedelta(hours=24)
_RESOURCE = "green_travel.toml"


class ModeRules(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One mode's factor and plausibility limits."""

    name: str
    g_per_pkm: int  # grams CO2e avoided per passenger-km against the baseline trip
    source: str  # a key of Methodology.sources
    note: str
    max_avg_speed_kmh: Decimal
    min_duration_s: int
    max_distance_km: Decimal
    daily_cap_g: int  # per CST day, this mode alone
    attestation_required: bool  # unattested trips of this mode earn nothing


class Methodology(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    version: str
    effective_from: date
    daily_cap_g: int  # per CST day, all modes together
    modes: dict[str, ModeRules]
    sources: dict[str, str]


# --- loading -----------------------------------------------------------------------------------


def _check(ok: bool, where: str, problem: str) -> None:
    if not ok:
        raise ValueError(f"green-travel methodology {where}: {problem}")


def _positive_int(value: object) -> bool:
    # bool is an int subclass; a TOML `true` is never a count of grams.
    return type(value) is int and value > 0


def _validate(raw: dict[str, Any], where: str) -> Methodology:
    modes = raw.get("modes")
    _check(isinstance(modes, dict), where, "a [modes] table is required")
    _check(set(modes) == set(MODES), where, f"[modes] must define exactly {', '.join(MODES)}; has {', '.join(modes)}")
    for name, table in modes.items():
        _check(isinstance(table, dict), where, f"modes.{name} must be a table")
        _check("name" not in table, where, f"modes.{name}: the name comes from the table's key")
    data = {**raw, "modes": {name: {**table, "name": name} for name, table in modes.items()}}
    try:
        m = msgspec.convert(data, Methodology, strict=True)
    except msgspec.ValidationError as exc:
        raise ValueError(f"green-travel methodology {where}: {exc}") from None
    _check(bool(m.version.strip()), where, "version must not be empty")
    _check(_positive_int(m.daily_cap_g), where, "daily_cap_g must be a positive integer")
    _check(bool(m.sources), where, "[sources] must not be empty")
    for key, citation in m.sources.items():
        _check(bool(citation.strip()), where, f"sources.{key} must not be empty")
    for rules in m.modes.values():
        at = f"modes.{rules.name}"
        for field in ("g_per_pkm", "min_duration_s", "daily_cap_g"):
            _check(_positive_int(getattr(rules, field)), where, f"{at}.{field} must be a positive integer")
        for field in ("max_avg_speed_kmh", "max_distance_km"):
            value = getattr(rules, field)
            _check(value.is_finite() and value > 0, where, f"{at}.{field} must be a positive number")
        _check(rules.source in m.sources, where, f"{at}.source {rules.source!r} is not in [sources]")
        _check(bool(rules.note.strip()), where, f"{at}.note must say why")
    return m


def _parse(text: bytes, where: str) -> Methodology:
    try:
        # Decimal, so that 7.5 km/h stays 7.5 and never becomes a binary float.
        raw = tomllib.loads(text.decode("utf-8"), parse_float=Decimal)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"green-travel methodology {where}: {exc}") from None
    return _validate(raw, where)


@cache
def _packaged() -> Methodology:
    text = resources.files("carbonpuhui.credits").joinpath(_RESOURCE).read_bytes()
    return _parse(text, f"carbonpuhui/credits/{_RESOURCE}")


def load_methodology(path: Path | None = None) -> Methodology:
    """The methodology in ``path``, or the packaged one (read once). A broken file raises
    ``ValueError``: call this at start-up so that a bad release fails before it credits anyone."""
    if path is None:
        return _packaged()
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"green-travel methodology {path}: {exc}") from None
    return _parse(text, str(path))


# --- exact arithmetic --------------------------------------------------------------------------


def _mul(a: Decimal, b: Decimal) -> Decimal:
    """``a × b`` exactly: the precision is enough for every digit of the product, and any rounding
    at all would raise (Inexact is trapped) rather than pass silently."""
    digits = len(a.as_tuple().digits) + len(b.as_tuple().digits)
    ctx = Context(prec=digits + 2, Emax=MAX_EMAX, Emin=MIN_EMIN,
                  traps=[InvalidOperation, DivisionByZero, Overflow, Inexact])
    return ctx.multiply(a, b)


def _microseconds(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


# --- rules -------------------------------------------------------------------------------------


def _mode(m: Methodology, mode: str) -> ModeRules:
    rules = m.modes.get(mode)
    if rules is None:
        raise UnprocessableError(N_("Unknown travel mode {mode}."), reason="unsupported_mode",
                                 errors=[FieldError(field="mode", message=N_("Not a supported travel mode."))],
                                 mode=mode)
    return rules


def _aware(value: datetime) -> bool:
    return value.tzinfo is not None and value.utcoffset() is not None


def trip_day(started_at: datetime) -> date:
    """The calendar day in China Standard Time on which the trip started: daily caps count per CST day."""
    if not _aware(started_at):
        raise ValueError("started_at must be timezone-aware")
    return started_at.astimezone(CST).date()


def check_trip(m: Methodology, mode: str, distance_km: Decimal, started_at: datetime, ended_at: datetime,
               now: datetime, *, max_age_days: int = 30) -> None:
    """Refuse (``UnprocessableError`` with a ``reason``) a trip that this methodology cannot credit."""
    rules = _mode(m, mode)
    if not _aware(now):
        raise ValueError("now must be timezone-aware")  # our bug, not the user's
    naive = [name for name, value in (("started_at", started_at), ("ended_at", ended_at)) if not _aware(value)]
    if naive:
        raise UnprocessableError(N_("Trip times must include a UTC offset."), reason="invalid_trip_times",
                                 errors=[FieldError(field=name, message=N_("Must include a UTC offset."))
                                         for name in naive])
    if distance_km.is_nan() or distance_km <= 0:
        raise UnprocessableError(N_("The distance must be a positive number of kilometres."),
                                 reason="distance_not_positive",
                                 errors=[FieldError(field="distance_km", message=N_("Must be a positive number."))])
    if distance_km.is_finite() and (distance_km.adjusted() >= 6 or distance_km.normalize().as_tuple().exponent < -6):  # type: ignore[operator]
        # Stored as exact text: a 10^-200000 km trip would be a 200 kB row, 10^6 km is no trip.
        raise UnprocessableError(N_("The distance must be a number of kilometres with at most 6 decimals."),
                                 reason="invalid_distance",
                                 errors=[FieldError(field="distance_km", message=N_("At most 6 decimals."))])
    # In UTC: datetimes sharing a tzinfo are otherwise subtracted as wall-clock times, wrong across DST.
    try:
        start, end, now = (t.astimezone(UTC) for t in (started_at, ended_at, now))
    except OverflowError:  # 0001-01-01T00:00+01:00 is before the year 1 in UTC
        raise UnprocessableError(N_("Trip times must fall between the years 1 and 9999 in UTC."),
                                 reason="invalid_trip_times",
                                 errors=[FieldError(field="started_at", message=N_("Out of range."))]) from None
    if end <= start:
        raise UnprocessableError(N_("A trip must end after it starts."), reason="invalid_trip_times",
                                 errors=[FieldError(field="ended_at", message=N_("Must be later than started_at."))])
    if end > now + FUTURE_TOLERANCE:
        raise UnprocessableError(N_("The trip ends in the future."), reason="trip_in_future",
                                 errors=[FieldError(field="ended_at", message=N_("Must not be in the future."))])
    if start < now - timedelta(days=max_age_days):
        raise UnprocessableError(N_("Trips that started more than {days} days ago cannot be claimed."),
                                 reason="trip_too_old",
                                 errors=[FieldError(field="started_at", message=N_("Too long ago to claim."))],
                                 days=max_age_days)
    duration = end - start
    if duration > MAX_TRIP_DURATION:
        raise UnprocessableError(N_("A trip may last at most {hours} hours."), reason="trip_too_long",
                                 errors=[FieldError(field="ended_at", message=N_("Too long after started_at."))],
                                 hours=MAX_TRIP_DURATION // timedelta(hours=1))
    if distance_km > rules.max_distance_km:
        raise UnprocessableError(N_("A trip by this mode may cover at most {limit} km."), reason="trip_too_long",
                                 errors=[FieldError(field="distance_km", message=N_("Too long for this mode."))],
                                 limit=rules.max_distance_km)
    if duration < timedelta(seconds=rules.min_duration_s):
        raise UnprocessableError(N_("A trip by this mode must last at least {seconds} seconds."),
                                 reason="trip_too_short",
                                 errors=[FieldError(field="ended_at", message=N_("Too soon after started_at."))],
                                 seconds=rules.min_duration_s)
    # distance / hours > limit, without dividing: distance × 3600 s × 10⁶ > limit × duration in µs.
    micros = Decimal(_microseconds(duration))
    if _mul(distance_km, Decimal(3_600_000_000)) > _mul(rules.max_avg_speed_kmh, micros):
        # Shown rounded up, so that a speed just over the limit never reads as the limit itself.
        speed = (distance_km * Decimal(3_600_000_000) / micros).quantize(Decimal("0.1"), rounding=ROUND_CEILING)
        raise UnprocessableError(N_("An average speed of {speed} km/h is implausible for this mode (at most {limit} km/h)."),
                                 reason="implausible_speed",
                                 errors=[FieldError(field="distance_km",
                                                    message=N_("Implausible for the trip's duration."))],
                                 speed=speed, limit=rules.max_avg_speed_kmh)


def trip_grams(m: Methodology, mode: str, distance_km: Decimal) -> int:
    """floor(g_per_pkm × distance_km), exactly: a trip never earns a fraction of a gram it did not save."""
    rules = _mode(m, mode)
    if not distance_km.is_finite() or distance_km < 0:
        raise ValueError("distance_km must be a finite, non-negative number")
    return int(_mul(Decimal(rules.g_per_pkm), distance_km).to_integral_value(rounding=ROUND_FLOOR))


def apply_caps(m: Methodology, mode: str, grams: int, *, mode_today_g: int, all_today_g: int) -> tuple[int, bool]:
    """What a trip worth ``grams`` may credit given what this CST day has already credited, in this mode
    and in all: ``(credited, capped)``, ``capped`` when the caps took anything away."""
    rules = _mode(m, mode)
    credited = max(0, min(grams, rules.daily_cap_g - mode_today_g, m.daily_cap_g - all_today_g))
    return credited, credited < grams


def earns_unattested(m: Methodology, mode: str) -> bool:
    """Whether a trip of ``mode`` without an operator's attestation may earn credit."""
    return not _mode(m, mode).attestation_required


__all__ = [
    "CST", "MODES", "Methodology", "ModeRules", "apply_caps", "check_trip", "earns_unattested",
    "load_methodology", "trip_day", "trip_grams",
]
