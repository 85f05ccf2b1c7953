"""indicators._Table: the residual checks of disclosure control pool the contributors of hidden figures
exactly (per contributor), not from the summaries' bounds, which would hide more than needed."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carbonpuhui.stats import disclosure
from carbonpuhui.stats.indicators import TOTAL, _Table

PROVINCE = "370000"


def _table(cells: dict[str, dict[str, int]]) -> _Table:
    table = _Table(PROVINCE)
    for industry, contributors in cells.items():
        for who, magnitude in contributors.items():
            table.add(("x", "3702", industry), who, magnitude, ["x"], "3702", {"industry": industry})
    table.finish()
    return table


def test_hidden_parts_sharing_enterprises_with_a_published_part_are_pooled_exactly():
    # A and B have two enterprises each (primary); c1 and c2 are also in C. The city's total minus C is
    # A + B: four enterprises (a1, b1 and c1's and c2's shares in A and B), none dominant, so C and the
    # total may be published. From the summaries alone the residual has only 7 - 5 = 2 enterprises
    # for sure, which would hide C too.
    table = _table({"A": {"a1": 10, "c1": 10}, "B": {"b1": 10, "c2": 10},
                    "C": {f"c{k}": 10 for k in range(1, 6)}})
    protection = table.protect()
    city = "370200"
    assert protection.status(("x", city, "industry", "A")) == "primary"
    assert protection.status(("x", city, "industry", "B")) == "primary"
    assert protection.status(("x", city, "industry", "C")) == "published"
    assert protection.status(("x", city, TOTAL, TOTAL)) == "published"
    # The exact contributions are what the table hands to disclosure control (contributors numbered
    # in name order: a1, b1, c1, ..., c5; c1 and c2 are in two industries).
    assert table.contributions(("x", city, TOTAL, TOTAL)) == {0: 10, 1: 10, 2: 20, 3: 20, 4: 10, 5: 10, 6: 10}


def test_a_residual_of_one_enterprise_is_still_hidden():
    # A is c1 alone and B is b1 alone: total - C = c1's share in A + b1; each of the two learns the
    # other's figure, so one more figure must go.
    table = _table({"A": {"c1": 10}, "B": {"b1": 10}, "C": {f"c{k}": 10 for k in range(1, 6)}})
    protection = table.protect()
    city = "370200"
    assert {protection.status(("x", city, "industry", "C")),
            protection.status(("x", city, TOTAL, TOTAL))} & {"secondary"}


magnitudes = st.integers(min_value=0, max_value=50)
cells = st.dictionaries(st.sampled_from("pqrstu"), magnitudes, max_size=5)


@settings(max_examples=150, deadline=None)
@given(total_extra=cells, parts=st.lists(cells, min_size=2, max_size=4), hidden_count=st.integers(1, 3))
def test_the_bounds_screen_never_passes_a_residual_the_exact_rule_fails(total_extra, parts, hidden_count):
    """Oracle: the primary rule on the residual's contributors, merged by hand."""
    atoms = [f"a{k}" for k in range(len(parts) + 1)]
    rows = {atom: dict(part) for atom, part in zip(atoms, parts, strict=False)}
    rows[atoms[-1]] = dict(total_extra)
    def figure(key: str, members: list[str]) -> disclosure._Figure:
        merged: dict[str, int] = {}
        for atom in members:
            for who, m in rows[atom].items():
                merged[who] = merged.get(who, 0) + m
        positive = {w: m for w, m in merged.items() if m > 0}
        return disclosure._Figure(
            published=disclosure.Published((key,), frozenset(members)), value=sum(positive.values()),
            gross=Fraction(sum(positive.values())), contributors=len(positive), sensitive=False, positive=True,
            largest=Fraction(max(positive.values(), default=0)), contributions=positive)

    figures = [figure("total", atoms), *(figure(f"part{k}", [a]) for k, a in enumerate(atoms[:-1]))]
    checker = disclosure._Residuals(figures, (), None, disclosure.MIN_CONTRIBUTORS, disclosure.DOMINANCE,
                                    frozenset())
    hidden = list(range(1, 1 + min(hidden_count, len(parts))))
    published = [q for q in range(1, len(figures)) if q not in hidden]
    residual: dict[str, int] = {}
    for atom in [a for q in hidden for a in figures[q].published.atoms] + [atoms[-1]]:
        for who, m in rows[atom].items():
            residual[who] = residual.get(who, 0) + m
    gross = sum(figures[0].contributions.values()) - sum(figures[q].gross for q in published)
    expected = gross > 0 and disclosure.is_sensitive(residual)
    assert checker.sensitive(0, hidden, published) == expected
    assert checker.pooled_sensitive(hidden) == disclosure.is_sensitive(
        {w: m for q in hidden for w, m in figures[q].contributions.items()}) or _overlap(figures, hidden)


def _overlap(figures: list[disclosure._Figure], group: list[int]) -> bool:
    """pooled_sensitive adds the same contributor's magnitudes across figures: the oracle above only
    compares when no contributor is in two of them."""
    seen: set[str] = set()
    for q in group:
        if seen & set(figures[q].contributions):
            return True
        seen |= set(figures[q].contributions)
    return False


@pytest.mark.parametrize("with_contributions", [True, False])
def test_protect_summarised_is_never_less_safe_with_contributions(with_contributions):
    table = _table({"A": {"a1": 10, "c1": 10}, "B": {"b1": 10, "c2": 10},
                    "C": {f"c{k}": 10 for k in range(1, 6)}})
    published = [disclosure.Published(key, atoms) for key, atoms in table.figures.items()]
    protection = disclosure.protect_summarised(
        published, table.summaries, zero_atoms=table.zero_atoms,
        contributions=table.contributions if with_contributions else None)
    # Either way A and B are hidden and no hidden figure can be recovered from the published ones.
    assert {"A", "B"} <= {key[3] for key in protection.suppressed}
    known = [table.figures[key] for key in table.figures if key not in protection.suppressed]
    for key in protection.suppressed:
        assert not disclosure.is_determined(table.figures[key], known, known_zero_atoms=table.zero_atoms)


decimal_cells = st.dictionaries(st.sampled_from("pqrstu"), st.integers(min_value=0, max_value=5000), max_size=5)


@settings(max_examples=60, deadline=None)
@given(table_cells=st.dictionaries(st.sampled_from("ABCD"), decimal_cells, min_size=1, max_size=4),
       places=st.integers(min_value=1, max_value=4))
def test_protection_of_decimal_magnitudes_is_that_of_the_same_magnitudes_scaled_to_integers(table_cells, places):
    """The table weighs its figures in one integer unit (magnitude × the common denominator): the
    primary rule and the residual checks compare sums and shares, so any common scale must give the
    same suppression. Oracle: the same table with the magnitudes given as integers, and the primary
    rule applied by hand to each figure's contributors."""
    from decimal import Decimal

    scaled = _table(table_cells)
    decimal = _Table(PROVINCE)
    for industry, contributors in table_cells.items():
        for who, magnitude in contributors.items():
            decimal.add(("x", "3702", industry), who, Decimal(magnitude).scaleb(-places), ["x"], "3702",
                        {"industry": industry})
    decimal.finish()
    assert decimal.figures.keys() == scaled.figures.keys()
    ours, theirs = decimal.protect(), scaled.protect()
    assert ours.primary == theirs.primary and ours.secondary == theirs.secondary
    city = "370200"
    for industry, contributors in table_cells.items():
        key = ("x", city, "industry", industry)
        if key in decimal.figures:
            by_hand = disclosure.is_sensitive({w: Fraction(m, 10**places) for w, m in contributors.items()})
            assert (key in ours.primary) == by_hand
    # The displayed values stay exact decimals, not the integer weights.
    for key in decimal.figures:
        assert Decimal(decimal.exact[key]).scaleb(places) == scaled.exact[key]


def test_the_collector_is_paused_while_any_computation_runs_and_restored_after() -> None:
    """Overlapping computations: the collector stays off until the last one ends, even one that fails,
    and is left off after them when it was off before them."""
    import gc

    from carbonpuhui.stats.indicators import _collector_paused

    assert gc.isenabled()
    outer = _collector_paused()
    outer.__enter__()
    with pytest.raises(RuntimeError), _collector_paused():
        assert not gc.isenabled()
        raise RuntimeError
    assert not gc.isenabled()  # the outer one still runs
    outer.__exit__(None, None, None)
    assert gc.isenabled()
    with pytest.raises(RuntimeError), _collector_paused():
        raise RuntimeError  # the last one, failing
    assert gc.isenabled()
    gc.disable()
    try:
        with _collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
