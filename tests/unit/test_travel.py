"""The green-travel methodology file and its rules, at and just past every boundary.

Oracles are independent of the implementation: grams are floored with ``fractions.Fraction``,
speeds are checked against limits read from the file, caps against the properties they must keep.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from fractions import Fraction
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carbonpuhui.credits import travel
from carbonpuhui.credits.travel import (
    CST,
    MODES,
    Methodology,
    apply_caps,
    check_trip,
    earns_unattested,
    load_methodology,
    trip_day,
    trip_grams,
)
from carbonpuhui.errors import UnprocessableError

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
US = timedelta(microseconds=1)
PACKAGED = Path(travel.__file__).with_name("green_travel.toml")


@pytest.fixture(scope="module")
def m() -> Methodology:
    return load_methodology()


def refusal(m: Methodology, mode: str, distance: Decimal | str, start: datetime, end: datetime,
            now: datetime = NOW, **kw) -> UnprocessableError:
    with pytest.raises(UnprocessableError) as info:
        check_trip(m, mode, Decimal(distance), start, end, now, **kw)
    exc = info.value
    assert exc.status_code == 422
    str(exc)  # the message's placeholders are all supplied
    return exc


def fields(exc: UnprocessableError) -> set[str | None]:
    return {e.field for e in exc.errors or []}


def ok(m: Methodology, mode: str, distance: Decimal | str, start: datetime, end: datetime,
       now: datetime = NOW, **kw) -> None:
    assert check_trip(m, mode, Decimal(distance), start, end, now, **kw) is None


# --- the methodology file ----------------------------------------------------------------------


def test_packaged_file_validates_and_is_cached(m: Methodology) -> None:
    assert load_methodology() is m
    assert load_methodology(PACKAGED) == m
    assert isinstance(m.version, str) and m.version == "2026.1"
    assert isinstance(m.effective_from, date)
    assert set(m.modes) == set(MODES)
    assert m.daily_cap_g > 0


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_is_sourced_explained_and_positive(m: Methodology, mode: str) -> None:
    rules = m.modes[mode]
    assert rules.name == mode
    assert rules.source in m.sources and m.sources[rules.source].strip()
    assert len(rules.note) > 40
    for value in (rules.g_per_pkm, rules.min_duration_s, rules.daily_cap_g):
        assert type(value) is int and value > 0
    assert isinstance(rules.max_avg_speed_kmh, Decimal) and rules.max_avg_speed_kmh > 0
    assert isinstance(rules.max_distance_km, Decimal) and rules.max_distance_km > 0
    # One mode alone never earns more in a day than all modes together may.
    assert rules.daily_cap_g <= m.daily_cap_g


def test_published_shenzhen_figures_are_rounded_down(m: Methodology) -> None:
    # DESIGN.md: electric bus 26.9 g, metro 46.7 g CO2 per passenger-km.
    def floor(x: str) -> int:
        return int(Decimal(x).to_integral_value(rounding=ROUND_FLOOR))

    assert m.modes["bus"].g_per_pkm == floor("26.9") == 26
    assert m.modes["metro"].g_per_pkm == floor("46.7") == 46


def test_uncertain_modes_earn_no_more_than_metro(m: Methodology) -> None:
    metro = m.modes["metro"].g_per_pkm
    for mode in ("walk", "bike", "rail"):
        assert m.modes[mode].g_per_pkm <= metro


def test_speed_limits_follow_design(m: Methodology) -> None:
    assert m.modes["walk"].max_avg_speed_kmh <= 7
    assert m.modes["bike"].max_avg_speed_kmh <= 30


def test_only_walking_and_cycling_earn_unattested(m: Methodology) -> None:
    assert {mode for mode in MODES if earns_unattested(m, mode)} == {"walk", "bike"}


def _broken(tmp_path: Path, old: str, new: str) -> Path:
    text = PACKAGED.read_text(encoding="utf-8")
    assert old in text, old
    path = tmp_path / "broken.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(("old", "new"), [
    ('source = "bjtu-rail-2024"', 'source = "no-such-source"'),
    ("g_per_pkm = 26", "g_per_pkm = 26.5"),  # integers must be integers
    ("g_per_pkm = 26", "g_per_pkm = 0"),
    ("g_per_pkm = 26", "g_per_pkm = -26"),
    ("g_per_pkm = 26", "g_per_pkm = true"),
    ("g_per_pkm = 26", 'g_per_pkm = "26"'),
    ("min_duration_s = 60", "min_duration_s = 0"),
    ("daily_cap_g = 1000", "daily_cap_g = 1000.0"),
    ("max_avg_speed_kmh = 7", "max_avg_speed_kmh = 0"),
    ("max_avg_speed_kmh = 7", "max_avg_speed_kmh = -7"),
    ("max_avg_speed_kmh = 7", "max_avg_speed_kmh = nan"),
    ("max_distance_km = 40", "max_distance_km = inf"),
    ("attestation_required = false", 'attestation_required = "no"'),
    ('version = "2026.1"', "version = 2026.1"),
    ('version = "2026.1"', 'version = ""'),
    ("daily_cap_g = 3000\n\n[sources]", "\n[sources]"),  # the total cap is missing
    ("[modes.rail]", "[modes.ferry]"),  # a mode missing, an unknown one present
    ("[modes.walk]\n", "[modes.walk]\nname = \"walk\"\n"),
    ("[modes.walk]\n", "[modes.walk]\nspeed_limit = 5\n"),  # a misspelt key must not pass silently
    ("effective_from = 2026-01-01", "effective_from = \"soon\""),
    ("[sources]", "[sources"),  # not TOML
])
def test_broken_file_raises_value_error(tmp_path: Path, old: str, new: str) -> None:
    with pytest.raises(ValueError, match="green-travel methodology"):
        load_methodology(_broken(tmp_path, old, new))


def test_missing_or_undecodable_file_raises_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        load_methodology(tmp_path / "absent.toml")
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(PACKAGED.read_bytes().replace("≤".encode(), b"\xff"))
    with pytest.raises(ValueError):
        load_methodology(bad)


def test_fractional_limits_stay_exact_decimals(tmp_path: Path) -> None:
    got = load_methodology(_broken(tmp_path, "max_avg_speed_kmh = 7", "max_avg_speed_kmh = 6.1"))
    assert got.modes["walk"].max_avg_speed_kmh == Decimal("6.1")  # a float would be 6.0999999999999996


# --- the CST day -------------------------------------------------------------------------------


def test_trip_day_is_the_cst_calendar_day() -> None:
    assert trip_day(datetime(2026, 3, 10, 15, 59, 59, 999999, tzinfo=UTC)) == date(2026, 3, 10)
    assert trip_day(datetime(2026, 3, 10, 16, 0, tzinfo=UTC)) == date(2026, 3, 11)
    assert trip_day(datetime(2026, 3, 11, 0, 0, tzinfo=CST)) == date(2026, 3, 11)
    assert trip_day(datetime(2026, 3, 10, 23, 59, tzinfo=CST)) == date(2026, 3, 10)
    # 09:30 in New York (EDT, UTC-4) is 21:30 the same day in Beijing; 12:30 is 00:30 the next.
    ny = ZoneInfo("America/New_York")
    assert trip_day(datetime(2026, 7, 1, 9, 30, tzinfo=ny)) == date(2026, 7, 1)
    assert trip_day(datetime(2026, 7, 1, 12, 30, tzinfo=ny)) == date(2026, 7, 2)
    with pytest.raises(ValueError):
        trip_day(datetime(2026, 3, 10, 12, 0))


# --- plausibility --------------------------------------------------------------------------------


def test_a_plain_trip_passes(m: Methodology) -> None:
    ok(m, "metro", "12.5", NOW - timedelta(minutes=40), NOW - timedelta(minutes=10))


def test_unknown_mode(m: Methodology) -> None:
    exc = refusal(m, "ferry", "1", NOW - timedelta(hours=1), NOW)
    assert exc.reason == "unsupported_mode" and fields(exc) == {"mode"}
    for fn in (lambda: trip_grams(m, "ferry", Decimal(1)), lambda: earns_unattested(m, "ferry"),
               lambda: apply_caps(m, "ferry", 1, mode_today_g=0, all_today_g=0)):
        with pytest.raises(UnprocessableError):
            fn()


@pytest.mark.parametrize("mode", MODES)
def test_speed_exactly_at_the_limit_passes_and_just_over_fails(m: Methodology, mode: str) -> None:
    limit = m.modes[mode].max_avg_speed_kmh
    start, end = NOW - timedelta(hours=1), NOW
    ok(m, mode, limit, start, end)  # limit km in exactly one hour
    for distance, begin in ((limit + Decimal("0.001"), start),  # one metre further
                            (limit, start + US)):  # one microsecond sooner
        exc = refusal(m, mode, distance, begin, end)
        assert exc.reason == "implausible_speed" and fields(exc) == {"distance_km"}
        assert exc.params["limit"] == limit and exc.params["speed"] > limit


@settings(max_examples=200, deadline=None)
@given(mode=st.sampled_from(MODES), seconds=st.integers(60 * 3, 20 * 3600),
       metres=st.integers(1, 3_000_000))
def test_speed_rule_matches_a_fraction_oracle(m: Methodology, mode: str, seconds: int, metres: int) -> None:
    rules = m.modes[mode]
    distance = Decimal(metres) / 1000
    if distance > rules.max_distance_km or seconds < rules.min_duration_s:
        return
    too_fast = Fraction(metres, 1000) / Fraction(seconds, 3600) > Fraction(rules.max_avg_speed_kmh)
    start = NOW - timedelta(seconds=seconds)
    if too_fast:
        assert refusal(m, mode, distance, start, NOW).reason == "implausible_speed"
    else:
        ok(m, mode, distance, start, NOW)


def test_speed_is_measured_in_real_time_across_dst(m: Methodology) -> None:
    # London springs forward at 01:00 GMT on 29 March 2026: 00:30 GMT to 02:30 BST is one hour,
    # though the wall clock moved two.
    london = ZoneInfo("Europe/London")
    start = datetime(2026, 3, 29, 0, 30, tzinfo=london)
    end = datetime(2026, 3, 29, 2, 30, tzinfo=london)
    now = end + timedelta(hours=1)
    limit = m.modes["walk"].max_avg_speed_kmh
    ok(m, "walk", limit, start, end, now)
    assert refusal(m, "walk", limit + Decimal("0.001"), start, end, now).reason == "implausible_speed"


@pytest.mark.parametrize("mode", MODES)
def test_minimum_duration(m: Methodology, mode: str) -> None:
    minimum = timedelta(seconds=m.modes[mode].min_duration_s)
    ok(m, mode, "0.01", NOW - minimum, NOW)
    exc = refusal(m, mode, "0.01", NOW - minimum + US, NOW)
    assert exc.reason == "trip_too_short" and fields(exc) == {"ended_at"}


@pytest.mark.parametrize("mode", MODES)
def test_maximum_distance(m: Methodology, mode: str) -> None:
    longest = m.modes[mode].max_distance_km
    start = NOW - timedelta(hours=20)  # slow enough for every mode's longest trip
    ok(m, mode, longest, start, NOW)
    exc = refusal(m, mode, longest + Decimal("0.001"), start, NOW)
    assert exc.reason == "trip_too_long" and fields(exc) == {"distance_km"}
    assert refusal(m, mode, "Infinity", start, NOW).reason == "trip_too_long"


def test_maximum_duration_is_a_day(m: Methodology) -> None:
    ok(m, "bike", "1", NOW - timedelta(hours=24), NOW)
    exc = refusal(m, "bike", "1", NOW - timedelta(hours=24) - US, NOW)
    assert exc.reason == "trip_too_long" and fields(exc) == {"ended_at"}


def test_future_tolerance_is_five_minutes(m: Methodology) -> None:
    end = NOW + timedelta(minutes=5)
    ok(m, "walk", "1", end - timedelta(hours=1), end)
    exc = refusal(m, "walk", "1", end - timedelta(hours=1) + US, end + US)
    assert exc.reason == "trip_in_future" and fields(exc) == {"ended_at"}


def test_trips_older_than_thirty_days(m: Methodology) -> None:
    start = NOW - timedelta(days=30)
    ok(m, "walk", "1", start, start + timedelta(hours=1))
    exc = refusal(m, "walk", "1", start - US, start + timedelta(hours=1))
    assert exc.reason == "trip_too_old" and fields(exc) == {"started_at"} and exc.params["days"] == 30


def test_max_age_is_configurable(m: Methodology) -> None:
    start = NOW - timedelta(days=7)
    ok(m, "walk", "1", start, start + timedelta(hours=1), max_age_days=7)
    assert refusal(m, "walk", "1", start - US, start + timedelta(hours=1), max_age_days=7).reason == "trip_too_old"
    ok(m, "walk", "1", start - US, start + timedelta(hours=1))  # the default is longer


def test_times_must_be_ordered_and_aware(m: Methodology) -> None:
    for end in (NOW - timedelta(hours=1), NOW - timedelta(hours=1) - US):
        exc = refusal(m, "walk", "1", NOW - timedelta(hours=1), end)
        assert exc.reason == "invalid_trip_times" and fields(exc) == {"ended_at"}
    naive = datetime(2026, 3, 10, 11, 0)
    exc = refusal(m, "walk", "1", naive, NOW)
    assert exc.reason == "invalid_trip_times" and fields(exc) == {"started_at"}
    exc = refusal(m, "walk", "1", naive, naive + timedelta(hours=1))
    assert exc.reason == "invalid_trip_times" and fields(exc) == {"started_at", "ended_at"}
    with pytest.raises(ValueError):  # the server's own clock must be aware: a bug, not a refusal
        check_trip(m, "walk", Decimal(1), NOW - timedelta(hours=1), NOW, NOW.replace(tzinfo=None))


@pytest.mark.parametrize("distance", ["0", "-0", "-0.001", "-Infinity", "NaN", "sNaN"])
def test_distance_must_be_positive(m: Methodology, distance: str) -> None:
    exc = refusal(m, "walk", distance, NOW - timedelta(hours=1), NOW)
    assert exc.reason == "distance_not_positive" and fields(exc) == {"distance_km"}
    ok(m, "walk", "0.001", NOW - timedelta(hours=1), NOW)


def test_times_in_other_zones_are_compared_as_instants(m: Methodology) -> None:
    # 20:05 in Beijing is 12:05 UTC: five minutes after NOW, exactly at the tolerance.
    end = datetime(2026, 3, 10, 20, 5, tzinfo=CST)
    ok(m, "walk", "1", end - timedelta(hours=1), end)
    assert refusal(m, "walk", "1", end - timedelta(hours=1), end + US).reason == "trip_in_future"


# --- grams -------------------------------------------------------------------------------------


def fraction_floor(g: int, distance: Decimal) -> int:
    return math.floor(Fraction(g) * Fraction(distance))


def test_grams_are_floored_exactly(m: Methodology) -> None:
    assert m.modes["metro"].g_per_pkm == 46
    assert trip_grams(m, "metro", Decimal("0.1")) == 4  # 4.6 g earns 4
    assert trip_grams(m, "metro", Decimal("12.5")) == 575
    assert trip_grams(m, "metro", Decimal("0.02")) == 0
    assert trip_grams(m, "metro", Decimal(0)) == 0
    # float(3.99999999999999999999) is 4.0, which would earn 184.
    assert trip_grams(m, "metro", Decimal("3.99999999999999999999")) == 183
    # More digits than Decimal's default 28: rounding the product first would make it 46.
    assert trip_grams(m, "metro", Decimal("0." + "9" * 60)) == 45
    with pytest.raises(ValueError):
        trip_grams(m, "metro", Decimal("-1"))
    with pytest.raises(ValueError):
        trip_grams(m, "metro", Decimal("NaN"))


@settings(max_examples=300, deadline=None)
@given(mode=st.sampled_from(MODES),
       distance=st.decimals(min_value=0, max_value=5000, allow_nan=False, allow_infinity=False, places=None)
       | st.decimals(min_value=0, max_value=5000, places=6))
def test_grams_match_a_fraction_oracle(m: Methodology, mode: str, distance: Decimal) -> None:
    got = trip_grams(m, mode, distance)
    assert type(got) is int
    assert got == fraction_floor(m.modes[mode].g_per_pkm, distance)


# --- caps --------------------------------------------------------------------------------------


def test_caps(m: Methodology) -> None:
    walk, total = m.modes["walk"].daily_cap_g, m.daily_cap_g
    assert apply_caps(m, "walk", 100, mode_today_g=0, all_today_g=0) == (100, False)
    assert apply_caps(m, "walk", walk, mode_today_g=0, all_today_g=0) == (walk, False)  # exactly the cap
    assert apply_caps(m, "walk", 50, mode_today_g=walk - 10, all_today_g=walk - 10) == (10, True)
    assert apply_caps(m, "walk", 50, mode_today_g=0, all_today_g=total - 5) == (5, True)
    assert apply_caps(m, "walk", 50, mode_today_g=walk, all_today_g=walk) == (0, True)
    assert apply_caps(m, "walk", 50, mode_today_g=walk + 100, all_today_g=0) == (0, True)  # already over
    assert apply_caps(m, "walk", 50, mode_today_g=0, all_today_g=total + 1) == (0, True)
    assert apply_caps(m, "walk", 0, mode_today_g=walk, all_today_g=total) == (0, False)  # nothing to take


@settings(max_examples=300, deadline=None)
@given(mode=st.sampled_from(MODES), grams=st.integers(0, 10_000), mode_today=st.integers(0, 5000),
       other_today=st.integers(0, 5000))
def test_caps_credit_the_most_that_stays_within_both(m: Methodology, mode: str, grams: int, mode_today: int,
                                                     other_today: int) -> None:
    cap, total = m.modes[mode].daily_cap_g, m.daily_cap_g
    all_today = mode_today + other_today
    credited, capped = apply_caps(m, mode, grams, mode_today_g=mode_today, all_today_g=all_today)
    assert 0 <= credited <= grams
    assert capped == (credited != grams)
    if credited:
        assert mode_today + credited <= cap and all_today + credited <= total
    # The most: one more gram would break a cap (or there was no more to give).
    more = credited + 1
    assert more > grams or mode_today + more > cap or all_today + more > total
