"""Disclosure control: the primary rule at its exact boundaries, and secondary suppression checked by an
independent attacker. The attacker is not the module's exact elimination: it writes the published
figures as floating-point equations over the atoms, solves them by least squares (NumPy) and calls a
suppressed figure recovered when its vector has no component on the null space of the equations (SVD),
i.e. every solution of the published equations gives it the same value."""

from __future__ import annotations

import itertools
import random
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carbonpuhui.stats import disclosure
from carbonpuhui.stats.disclosure import (
    Protection,
    Published,
    Summary,
    audit,
    is_determined,
    is_sensitive,
    protect,
    protect_summarised,
    ratio_status,
)

# --- independent oracles --------------------------------------------------------------------------


def true_value(atoms, figure: Published):
    coefficients = figure.atoms if isinstance(figure.atoms, dict) else dict.fromkeys(figure.atoms, 1)
    return sum(c * sum(atoms.get(a, {}).values()) for a, c in coefficients.items())


def vector(figure: Published, columns: dict) -> np.ndarray:
    row = np.zeros(len(columns))
    coefficients = figure.atoms if isinstance(figure.atoms, dict) else dict.fromkeys(figure.atoms, 1)
    for atom, coefficient in coefficients.items():
        row[columns[atom]] += coefficient
    return row


def attack(atoms, published: list[Published], protection: Protection) -> dict:
    """What the attacker recovers: {suppressed key: value} for each suppressed figure the published
    equations determine. Non-negativity is used too: a published all-positive sum of 0 pins its atoms."""
    columns = {a: i for i, a in enumerate(sorted({a for f in published for a in f.atoms}, key=repr))}
    equations, values = [], []
    for figure in published:
        value = protection.values[figure.key]
        if value is None:
            continue
        equations.append(vector(figure, columns))
        values.append(float(value))
        if value == 0 and not isinstance(figure.atoms, dict):
            for atom in figure.atoms:
                equations.append(vector(Published(("zero",), frozenset({atom})), columns))
                values.append(0.0)
    if equations:
        a, b = np.array(equations), np.array(values)
        _, singular, vt = np.linalg.svd(a)
        rank = int((singular > 1e-9 * max(1.0, singular.max())).sum())
        null = vt[rank:]
        solution = np.linalg.lstsq(a, b, rcond=None)[0]
    else:
        null, solution = np.eye(len(columns)), np.zeros(len(columns))
    recovered = {}
    for figure in published:
        if protection.values[figure.key] is None:
            target = vector(figure, columns)
            if np.abs(null @ target).max(initial=0.0) < 1e-7:
                recovered[figure.key] = round(float(target @ solution))
    return recovered


def insider(atoms, published: list[Published], protection: Protection, largest: int = 4) -> list[tuple]:
    """The residual (singleton) attack: sets of up to ``largest`` suppressed plain sums over pairwise
    disjoint atoms whose total the published equations determine (the same least-squares null-space
    test as ``attack``), and whose pooled contributors fail the primary rule, so that an insider who
    subtracts its own share learns the rest. Returns [(keys, what the insider learns)]; empty when
    the protection holds."""
    columns = {a: i for i, a in enumerate(sorted({a for f in published for a in f.atoms}, key=repr))}
    equations = []
    for figure in published:
        value = protection.values[figure.key]
        if value is None:
            continue
        equations.append(vector(figure, columns))
        if value == 0 and not isinstance(figure.atoms, dict):
            equations += [vector(Published(("zero",), frozenset({a})), columns) for a in figure.atoms]
    if equations:
        _, singular, vt = np.linalg.svd(np.array(equations))
        null = vt[int((singular > 1e-9 * max(1.0, singular.max())).sum()):]
    else:
        null = np.eye(len(columns))
    hidden = [f for f in published if protection.values[f.key] is None and not isinstance(f.atoms, dict)]
    found = []
    for size in range(2, largest + 1):
        for group in itertools.combinations(hidden, size):
            cells = [a for f in group for a in f.atoms]
            if len(cells) != len(set(cells)):
                continue  # overlapping: not one aggregate over a set of cells
            pooled = Published(("pooled",), frozenset(cells))
            if np.abs(null @ vector(pooled, columns)).max(initial=0.0) > 1e-7:
                continue  # not determined by what is published
            shares = contributors_of(atoms, pooled)
            if sensitive(shares):
                insider_one = max(shares, key=lambda who: (shares[who], who))
                found.append((tuple(f.key for f in group), true_value(atoms, pooled) - shares[insider_one]))
    return found


def sensitive(contributions: dict[str, int]) -> bool:
    """The rule re-stated in integers: < 3 positive contributors, or 100 × largest > 85 × total."""
    positive = [m for m in contributions.values() if m > 0]
    if not positive:
        return False
    return len(positive) < 3 or 100 * max(positive) > 85 * sum(positive)


def contributors_of(atoms, figure: Published) -> dict[str, int]:
    coefficients = figure.atoms if isinstance(figure.atoms, dict) else dict.fromkeys(figure.atoms, 1)
    gross: dict[str, int] = {}
    for atom, coefficient in coefficients.items():
        for who, m in atoms.get(atom, {}).items():
            gross[who] = gross.get(who, 0) + abs(coefficient) * m
    return gross


def grid(rows: list[str], columns: list[str]) -> list[Published]:
    figures = [Published(("cell", r, c), frozenset({(r, c)})) for r in rows for c in columns]
    figures += [Published(("row", r), frozenset((r, c) for c in columns)) for r in rows]
    figures += [Published(("column", c), frozenset((r, c) for r in rows)) for c in columns]
    figures.append(Published(("total",), frozenset((r, c) for r in rows for c in columns)))
    return figures


def balanced(seed: int, rows: list[str], columns: list[str]) -> dict:
    """Every cell: four enterprises of similar size (never sensitive)."""
    rng = random.Random(seed)
    return {(r, c): {f"{r}{c}-{k}": rng.randint(50, 60) for k in range(4)} for r in rows for c in columns}


CITIES = ["370200", "370600", "371500", "370100"]
INDUSTRIES = ["steel", "tyres", "textiles", "chemicals"]


# --- the primary rule -----------------------------------------------------------------------------


def test_fewer_than_three_contributors_is_sensitive() -> None:
    assert is_sensitive({"a": 10, "b": 10})
    assert not is_sensitive({"a": 10, "b": 10, "c": 10})
    assert is_sensitive({"a": 10, "b": 10, "c": 0})  # a zero magnitude is not a contributor
    assert is_sensitive({"a": 10})
    assert not is_sensitive({})  # nobody: the figure is 0
    assert not is_sensitive({"a": 0, "b": 0})
    assert is_sensitive({"a": 10, "b": 10}, min_contributors=3)
    assert not is_sensitive({"a": 10, "b": 10}, min_contributors=2)


def test_dominance_boundary_is_exact() -> None:
    assert not is_sensitive({"a": 85, "b": 10, "c": 5})  # exactly 85 %: published
    assert is_sensitive({"a": 86, "b": 10, "c": 5})  # one unit more: 86/101 > 85 %
    assert not is_sensitive({"a": 17, "b": 2, "c": 1})
    # A float rule cannot tell these apart: 85 % of 10^20, and one unit more.
    big = 10**20
    assert not is_sensitive({"a": 85 * big, "b": 10 * big, "c": 5 * big})
    assert is_sensitive({"a": 85 * big + 1, "b": 10 * big, "c": 5 * big})
    assert not is_sensitive({"a": Decimal("8.5"), "b": Decimal("1.0"), "c": Decimal("0.5")})
    assert is_sensitive({"a": Decimal("8.5000001"), "b": Decimal("1.0"), "c": Decimal("0.5")})
    assert is_sensitive({"a": 60, "b": 30, "c": 10}, dominance=Fraction(1, 2))
    assert not is_sensitive({"a": 60, "b": 30, "c": 10}, dominance="0.6")


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(TypeError):
        is_sensitive({"a": 1, "b": 1, "c": 1}, dominance=0.85)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        is_sensitive({"a": -1, "b": 5, "c": 5})
    with pytest.raises(TypeError):
        is_sensitive({"a": 1.5, "b": 5, "c": 5})  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        Published(("x",), {"a": 0.5})  # type: ignore[dict-item]
    with pytest.raises(ValueError):
        protect({}, [Published(("x",), frozenset()), Published(("x",), frozenset())])


def test_primary_rule_in_protect_counts_contributors_over_the_figure() -> None:
    # One enterprise in two atoms counts once; its magnitudes add up.
    atoms = {"a1": {"e1": 40, "e2": 5}, "a2": {"e1": 40, "e3": 15}}
    figures = [Published(("a1",), frozenset({"a1"})), Published(("a2",), frozenset({"a2"})),
               Published(("both",), frozenset({"a1", "a2"})), Published(("empty",), frozenset({"nobody"}))]
    result = protect(atoms, figures, secondary=False)
    assert result.status(("a1",)) == "primary" and result.status(("a2",)) == "primary"
    assert result.status(("both",)) == "published"  # e1 holds 80 of 100: three contributors
    assert result.values[("both",)] == 100
    assert result.values[("empty",)] == 0 and result.status(("empty",)) == "published"
    zero = protect({"z": {"e1": 5, "e2": 5, "e3": 0}}, [Published(("z",), frozenset({"z"}))])
    assert zero.status(("z",)) == "primary"  # e3 reported 0: two contributors


def test_dominance_in_protect_85_percent_exactly_is_published() -> None:
    atoms = {"x": {"big": 85, "s1": 10, "s2": 5}, "y": {"big": 86, "s1": 10, "s2": 5}}
    figures = [Published(("x",), frozenset({"x"})), Published(("y",), frozenset({"y"}))]
    result = protect(atoms, figures)
    assert result.status(("x",)) == "published" and result.values[("x",)] == 100
    assert result.status(("y",)) == "primary" and result.values[("y",)] is None


def test_exempt_figures_are_always_published() -> None:
    atoms = {"own": {"agency": 7}}
    figures = [Published(("tenders", "agency"), frozenset({"own"}))]
    assert protect(atoms, figures).status(("tenders", "agency")) == "primary"
    result = protect(atoms, figures, exempt={("tenders", "agency")})
    assert result.status(("tenders", "agency")) == "published" and result.values[("tenders", "agency")] == 7


def test_decimal_and_fraction_values_stay_exact() -> None:
    atoms = {"a": {"p": Decimal("0.1"), "q": Decimal("0.2"), "r": Decimal("0.3")},
             "b": {"p": Fraction(1, 3), "q": Fraction(1, 3), "r": Fraction(1, 3)}}
    result = protect(atoms, [Published(("a",), frozenset({"a"})), Published(("b",), frozenset({"b"}))])
    assert result.values[("a",)] == Decimal("0.6") and isinstance(result.values[("a",)], Decimal)
    assert result.values[("b",)] == 1


# --- the audit ------------------------------------------------------------------------------------


def test_is_determined() -> None:
    assert is_determined(frozenset({"a"}), [frozenset({"a", "b"}), frozenset({"b"})])
    assert not is_determined(frozenset({"a"}), [frozenset({"a", "b"}), frozenset({"b", "c"})])
    assert is_determined(frozenset({"a"}), [frozenset({"a", "b"}), frozenset({"b", "c"}), frozenset({"c"})])
    assert is_determined({"a": 2, "b": -1}, [{"a": 1, "c": 1}, {"b": 1, "c": 2}, frozenset({"c"})])
    assert not is_determined(frozenset({"a"}), [frozenset({"a", "b"})])
    assert is_determined(frozenset({"a"}), [frozenset({"a", "b"})], known_zero_atoms=["b"])
    # Rational coefficients are needed: 2a + b and a + 3b give a = (3(2a+b) − (a+3b)) / 5.
    assert is_determined(frozenset({"a"}), [{"a": 2, "b": 1}, {"a": 1, "b": 3}])


def test_ratio_status_needs_both_parts() -> None:
    protection = Protection(values={("n",): None, ("d",): 4, ("m",): None, ("e",): 8},
                            primary=frozenset({("n",)}), secondary=frozenset({("m",)}))
    assert ratio_status(("d",), ("e",), protection) == "published"
    assert ratio_status(("n",), ("e",), protection) == "primary"
    assert ratio_status(("e",), ("m",), protection) == "secondary"
    assert ratio_status(("n",), ("m",), protection) == "primary"


# --- the differencing attack on a 2-D table -------------------------------------------------------


def one_small_cell() -> tuple[dict, list[Published]]:
    atoms = balanced(1, CITIES, INDUSTRIES)
    atoms[("370600", "tyres")] = {"only-one": 120, "other": 30}  # two enterprises: sensitive
    return atoms, grid(CITIES, INDUSTRIES)


def test_primary_only_table_is_broken_by_differencing() -> None:
    atoms, figures = one_small_cell()
    result = protect(atoms, figures, secondary=False)
    hidden = ("cell", "370600", "tyres")
    assert result.suppressed == {hidden}
    # The attacker subtracts the published cells of the row from the row total: the exact value.
    assert attack(atoms, figures, result) == {hidden: 150}
    assert audit(atoms, figures, result) == {hidden}


def test_one_primary_suppression_forces_the_four_cell_pattern() -> None:
    atoms, figures = one_small_cell()
    result = protect(atoms, figures)
    assert result.primary == {("cell", "370600", "tyres")}
    assert len(result.secondary) >= 3
    assert attack(atoms, figures, result) == {}
    assert audit(atoms, figures, result) == frozenset() and result.exposed == frozenset()
    # Every published row or column holding a suppressed cell holds at least two of them.
    hidden_cells = [k[1:] for k in result.suppressed if k[0] == "cell"]
    for line in [("row", r) for r in CITIES] + [("column", c) for c in INDUSTRIES]:
        if result.status(line) == "published":
            position = 0 if line[0] == "row" else 1
            assert sum(1 for cell in hidden_cells if cell[position] == line[1]) != 1
    # Margins are dearer than cells: the complements are cells, two rows × two columns.
    assert all(k[0] == "cell" for k in result.suppressed)
    assert len({k[1] for k in result.suppressed}) == 2 and len({k[2] for k in result.suppressed}) == 2
    for figure in figures:
        if result.values[figure.key] is not None:
            assert result.values[figure.key] == true_value(atoms, figure)


def test_output_is_deterministic_whatever_the_input_order() -> None:
    atoms, figures = one_small_cell()
    first = protect(atoms, figures)
    shuffled = figures[:]
    random.Random(5).shuffle(shuffled)
    again = protect(dict(reversed(list(atoms.items()))), shuffled)
    assert (again.primary, again.secondary, dict(again.values)) == (first.primary, first.secondary,
                                                                   dict(first.values))
    assert list(again.values) == [f.key for f in shuffled]  # values keep the caller's order


# --- overlapping and hierarchical tables, quarters ------------------------------------------------


def test_overlapping_classifications_and_a_province_total() -> None:
    # The same atoms by industry and by category (a coarser grouping across industries), and the
    # province as the sum of its cities: three ways to difference.
    atoms = balanced(2, CITIES, INDUSTRIES)
    atoms[("371500", "steel")] = {"mill": 900, "a": 50, "b": 40}  # dominated: 900/990 > 85 %
    category = {"steel": "metals", "chemicals": "metals", "tyres": "consumer", "textiles": "consumer"}
    figures = grid(CITIES, INDUSTRIES)
    for name in sorted(set(category.values())):
        group = frozenset((r, c) for r in CITIES for c in INDUSTRIES if category[c] == name)
        figures.append(Published(("category", name), group))
        figures += [Published(("city-category", r, name), frozenset(a for a in group if a[0] == r))
                    for r in CITIES]
    result = protect(atoms, figures)
    assert ("cell", "371500", "steel") in result.primary
    assert attack(atoms, figures, result) == {}
    assert audit(atoms, figures, result) == frozenset()
    # Primary only, the attack works (row total minus the other cells, say).
    bare = protect(atoms, figures, secondary=False)
    assert attack(atoms, figures, bare)[("cell", "371500", "steel")] == 990


def test_quarter_change_is_suppressed_with_its_level() -> None:
    atoms = {("A", "Q1"): {"e1": 10, "e2": 12, "e3": 11}, ("A", "Q2"): {"e1": 30, "e2": 4}}
    q1 = Published(("level", "A", "Q1"), frozenset({("A", "Q1")}))
    q2 = Published(("level", "A", "Q2"), frozenset({("A", "Q2")}))
    change = Published(("change", "A", "Q2"), {("A", "Q2"): 1, ("A", "Q1"): -1})
    result = protect(atoms, [q1, q2, change])
    assert result.status(("level", "A", "Q2")) == "primary"
    assert result.status(("level", "A", "Q1")) == "published" and result.values[("level", "A", "Q1")] == 33
    assert result.status(("change", "A", "Q2")) == "secondary"  # Q1 + change would give Q2
    assert attack(atoms, [q1, q2, change], result) == {}
    bare = protect(atoms, [q1, q2, change], secondary=False)
    assert bare.values[("change", "A", "Q2")] == 1
    assert attack(atoms, [q1, q2, change], bare) == {("level", "A", "Q2"): 34}


def test_quarter_tables_with_changes_and_margins() -> None:
    figures: list[Published] = []
    atoms: dict = {}
    for quarter, seed in (("Q1", 3), ("Q2", 4)):
        cells = balanced(seed, CITIES[:3], INDUSTRIES[:3])
        atoms.update({(r, c, quarter): v for (r, c), v in cells.items()})
        for f in grid(CITIES[:3], INDUSTRIES[:3]):
            figures.append(Published((*f.key, quarter), frozenset((*a, quarter) for a in f.atoms)))
    atoms[("370600", "steel", "Q2")] = {"solo": 75}
    for f in [f for f in figures if f.key[-1] == "Q2"]:
        previous = {(*a[:2], "Q1"): -1 for a in f.atoms}
        figures.append(Published(("change", *f.key), {**dict.fromkeys(f.atoms, 1), **previous}))
    result = protect(atoms, figures)
    assert ("cell", "370600", "steel", "Q2") in result.primary
    assert result.status(("change", "cell", "370600", "steel", "Q2")) == "secondary"
    assert attack(atoms, figures, result) == {}
    assert audit(atoms, figures, result) == frozenset()
    # Q1 loses nothing: the complements are Q2 cells (a four-cell pattern) and their changes.
    assert all(result.status(f.key) == "published" for f in figures if f.key[-1] == "Q1")
    cells = {k[1:3] for k in result.suppressed if k[0] == "cell"}
    assert len(cells) == 4 and len({r for r, _ in cells}) == 2 and len({c for _, c in cells}) == 2
    assert {k[2:4] for k in result.suppressed if k[0] == "change"} == cells
    assert attack(atoms, figures, protect(atoms, figures, secondary=False))


def test_a_published_zero_pins_its_atoms() -> None:
    # Non-negativity: "b1 + b2 = 0" says b1 = 0 although no equation gives b1 alone, so
    # row − c − 0 recovers a. The attacker knows it; so must the audit.
    atoms = {"a": {"x": 5, "y": 6}, "b1": {}, "b2": {}, "c": {"p": 4, "q": 4, "r": 4}}
    figures = [Published(("a",), frozenset({"a"})), Published(("c",), frozenset({"c"})),
               Published(("row",), frozenset({"a", "b1", "c"})), Published(("zeros",), frozenset({"b1", "b2"}))]
    bare = protect(atoms, figures, secondary=False)
    assert bare.status(("a",)) == "primary" and bare.values[("zeros",)] == 0
    assert not is_determined(frozenset({"a"}), [frozenset({"c"}), frozenset({"a", "b1", "c"}),
                                                 frozenset({"b1", "b2"})])
    assert attack(atoms, figures, bare) == {("a",): 11}
    result = protect(atoms, figures)
    assert result.suppressed == {("a",), ("c",)}  # hiding the 0 would protect nothing: a = 11 − b1 ≤ 11
    assert attack(atoms, figures, result) == {}
    assert audit(atoms, figures, result) == frozenset()


def test_exposure_through_exempt_figures_is_reported() -> None:
    atoms = {"own": {"agency": 3}, "rest": {"b": 4, "c": 5, "d": 6}}
    figures = [Published(("own",), frozenset({"own"})), Published(("all",), frozenset({"own", "rest"})),
               Published(("rest",), frozenset({"rest"})), Published(("own-copy",), frozenset({"own"}))]
    result = protect(atoms, figures, exempt={("own-copy",)})
    assert result.status(("own",)) == "primary"
    assert result.exposed == {("own",)}  # the exempt copy gives it away: the caller's decision
    assert result.status(("own-copy",)) == "published"


# --- random tables --------------------------------------------------------------------------------


@st.composite
def tables(draw) -> tuple[dict, list[Published]]:
    rows = [f"r{i}" for i in range(draw(st.integers(1, 4)))]
    columns = [f"c{i}" for i in range(draw(st.integers(1, 4)))]
    people = [f"e{i}" for i in range(draw(st.integers(1, 6)))]
    magnitude = st.integers(0, 30) | st.just(0)
    atoms = {(r, c): draw(st.dictionaries(st.sampled_from(people), magnitude, max_size=4))
             for r in rows for c in columns}
    figures = grid(rows, columns)
    if draw(st.booleans()):  # a second classification of the columns
        groups = draw(st.lists(st.sampled_from(["g0", "g1"]), min_size=len(columns), max_size=len(columns)))
        for g in sorted(set(groups)):
            figures.append(Published(("group", g), frozenset((r, c) for r in rows
                                                             for c, h in zip(columns, groups, strict=True)
                                                             if h == g)))
    if draw(st.booleans()):  # last quarter's row totals and the changes
        for r in rows:
            atoms[(r, "prev")] = draw(st.dictionaries(st.sampled_from(people), magnitude, max_size=4))
            figures.append(Published(("prev", r), frozenset({(r, "prev")})))
            figures.append(Published(("change", r), {**{(r, c): 1 for c in columns}, (r, "prev"): -1}))
    return atoms, figures


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables())
def test_random_tables_are_protected(table: tuple[dict, list[Published]]) -> None:
    atoms, figures = table
    result = protect(atoms, figures)
    assert attack(atoms, figures, result) == {}
    assert insider(atoms, figures, result) == []
    for figure in figures:
        if sensitive(contributors_of(atoms, figure)):
            assert result.status(figure.key) == "primary"
        else:
            assert result.status(figure.key) != "primary"
        if result.values[figure.key] is not None:
            assert result.values[figure.key] == true_value(atoms, figure)
            assert figure.key not in result.suppressed
        else:
            assert figure.key in result.suppressed
    assert result.exposed == frozenset()


# --- summarised figures (contributors summed by the caller, e.g. in SQL) --------------------------


def summaries_of(atoms, figures: list[Published]) -> dict:
    """Each figure's Summary from the oracle's own per-contributor sums."""
    out = {}
    for figure in figures:
        positive = [m for m in contributors_of(atoms, figure).values() if m > 0]
        out[figure.key] = Summary(value=true_value(atoms, figure), contributors=len(positive),
                                  largest=max(positive, default=0), total=sum(positive))
    return out


def zero_atoms_of(atoms, figures: list[Published]) -> set:
    return {a for f in figures for a in f.atoms if not any(atoms.get(a, {}).values())}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables(), st.randoms(use_true_random=False))
def test_summarised_figures_are_protected_alike(table: tuple[dict, list[Published]], rng: random.Random) -> None:
    atoms, figures = table
    figures = [f for f in figures if not isinstance(f.atoms, dict)]  # sums only: a Summary is per sum
    summaries = summaries_of(atoms, figures)
    zeros = zero_atoms_of(atoms, figures)
    shares = {f.key: contributors_of(atoms, f) for f in figures}
    result = protect_summarised(figures, summaries, zero_atoms=zeros, contributions=shares)
    reference = protect(atoms, figures)
    assert (result.primary, result.secondary, dict(result.values)) == (
        reference.primary, reference.secondary, dict(reference.values))
    assert attack(atoms, figures, result) == {} and insider(atoms, figures, result) == []
    # Without the per-contributor maps the residual check bounds them from the summaries: it may hide
    # more, never less safely.
    bounded = protect_summarised(figures, summaries, zero_atoms=zeros)
    assert bounded.primary == reference.primary
    assert attack(atoms, figures, bounded) == {} and insider(atoms, figures, bounded) == []
    # A basis that misses rows (the caller's structure wrong) credits the attacker with more relations:
    # it may suppress more, and what it cannot protect it reports; it never leaks silently.
    every = sorted({a for f in figures for a in f.atoms} - zeros)
    partial = rng.sample(every, len(every) // 2)
    cautious = protect_summarised(figures, summaries, zero_atoms=zeros, basis_atoms=partial, contributions=shares.get)
    assert set(attack(atoms, figures, cautious)) <= cautious.exposed
    assert cautious.primary == reference.primary
    for figure in figures:
        if sensitive(contributors_of(atoms, figure)):
            assert cautious.status(figure.key) == "primary"


def test_inconsistent_summaries_are_refused() -> None:
    figure = Published(("x",), frozenset({"a"}))
    with pytest.raises(ValueError):
        protect_summarised([figure], {("x",): Summary(value=5, contributors=0, largest=0, total=5)})
    with pytest.raises(ValueError):
        protect_summarised([figure], {("x",): Summary(value=5, contributors=2, largest=6, total=5)})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables())
def test_single_pass_for_large_components_is_protected(table: tuple[dict, list[Published]]) -> None:
    """Components above BATCH_ABOVE figures are protected in one publishing pass: the same guarantees
    (checked here on small tables by lowering the threshold), against the same attacker."""
    atoms, figures = table
    previous = disclosure.BATCH_ABOVE
    disclosure.BATCH_ABOVE = 0
    try:
        result = protect(atoms, figures)
    finally:
        disclosure.BATCH_ABOVE = previous
    assert attack(atoms, figures, result) == {} and insider(atoms, figures, result) == []
    assert audit(atoms, figures, result) == frozenset() and result.exposed == frozenset()
    for figure in figures:
        assert (result.status(figure.key) == "primary") == sensitive(contributors_of(atoms, figure))
        if result.values[figure.key] is not None:
            assert result.values[figure.key] == true_value(atoms, figure)


def test_single_pass_hides_a_complement_in_each_line() -> None:
    atoms, figures = one_small_cell()
    previous = disclosure.BATCH_ABOVE
    disclosure.BATCH_ABOVE = 0
    try:
        result = protect(atoms, figures)
    finally:
        disclosure.BATCH_ABOVE = previous
    assert result.primary == {("cell", "370600", "tyres")} and len(result.secondary) >= 3
    assert attack(atoms, figures, result) == {}
    hidden_cells = [k[1:] for k in result.suppressed if k[0] == "cell"]
    for line in [("row", r) for r in CITIES] + [("column", c) for c in INDUSTRIES]:
        if result.status(line) == "published":
            position = 0 if line[0] == "row" else 1
            assert sum(1 for cell in hidden_cells if cell[position] == line[1]) != 1


# --- residuals: a sum of suppressed figures the published ones determine ---------------------------


def destinations() -> tuple[dict, list[Published]]:
    """The reviewer's table: three exporters ship 100,000 each to DE, s1 alone 50,000 to JP, s2 alone
    70,000 to US; the total and each destination are figures."""
    atoms = {"JP": {"s1": 50_000}, "US": {"s2": 70_000}, "DE": {"s3": 100_000, "s4": 100_000, "s5": 100_000}}
    figures = [Published(("export", "destination", d), frozenset({d})) for d in atoms]
    return atoms, [*figures, Published(("export", "*", "*"), frozenset(atoms))]


def test_the_residual_of_two_single_exporter_destinations_is_not_published() -> None:
    atoms, figures = destinations()
    jp, us, de = (("export", "destination", d) for d in ("JP", "US", "DE"))
    # Without the residual rule: JP and US are not determined alone, yet total − DE = JP + US = 120,000:
    # s1 gets s2's 70,000, and s2 (the insider the oracle takes: the largest) s1's 50,000.
    assert is_determined(frozenset({"JP", "US"}), [frozenset(atoms), frozenset({"DE"})])
    assert insider(atoms, figures, Protection(values={f.key: None if f.key in (jp, us) else true_value(atoms, f)
                                                      for f in figures},
                                              primary=frozenset({jp, us}), secondary=frozenset())) == [
        ((jp, us), 50_000)]
    result = protect(atoms, figures)
    assert result.primary == {jp, us}
    assert result.secondary == {de}  # the one part that can be hidden: the total (5 exporters) stays
    assert result.value(("export", "*", "*")) == 420_000
    assert attack(atoms, figures, result) == {} and insider(atoms, figures, result) == []
    # The same with summaries, with and without the per-contributor maps.
    summaries = summaries_of(atoms, figures)
    shares = {f.key: contributors_of(atoms, f) for f in figures}
    for extra in ({}, {"contributions": shares}, {"contributions": shares.__getitem__}):
        summarised = protect_summarised(figures, summaries, **extra)
        assert (summarised.primary, summarised.secondary) == (result.primary, result.secondary)


def test_a_residual_that_passes_the_rule_is_published() -> None:
    """JP and US hidden with three exporters between them (none above 85 %): total − DE reveals an
    aggregate of three, which the primary rule allows."""
    atoms, figures = destinations()
    atoms["JP"] = {"s1": 50_000, "s6": 40_000}
    atoms["US"] = {"s2": 70_000}
    result = protect(atoms, figures)
    assert result.primary == {("export", "destination", "JP"), ("export", "destination", "US")}
    assert result.secondary == frozenset() and result.value(("export", "destination", "DE")) == 300_000
    assert insider(atoms, figures, result) == []
    # From summaries alone the pooled contributors are not known (s1 could be in both): DE is hidden.
    bounded = protect_summarised(figures, summaries_of(atoms, figures))
    assert bounded.secondary == {("export", "destination", "DE")}
    exact = protect_summarised(figures, summaries_of(atoms, figures),
                               contributions={f.key: contributors_of(atoms, f) for f in figures})
    assert exact.secondary == frozenset()


def test_a_residual_with_cells_in_no_part_counts_them() -> None:
    """The total also holds shipments with no destination part (an atom in no figure but the total):
    total − DE − CN = JP + that rest, which pools s1 with two more exporters: publishable."""
    atoms, figures = destinations()
    atoms["rest"] = {"s7": 40_000, "s8": 40_000}
    figures = [f for f in figures if f.key[1] != "*"] + [Published(("export", "*", "*"), frozenset(atoms))]
    del atoms["US"]
    figures = [f for f in figures if f.key[2] != "US"]
    figures[-1] = Published(("export", "*", "*"), frozenset(atoms))
    result = protect(atoms, figures)
    assert result.primary == {("export", "destination", "JP")}
    assert result.secondary == frozenset() and insider(atoms, figures, result) == []
    atoms["rest"] = {"s2": 40_000}  # now JP + rest is two exporters: DE must go
    result = protect(atoms, figures)
    assert result.secondary == {("export", "destination", "DE")} and insider(atoms, figures, result) == []


def test_a_province_total_over_cities_and_their_industries() -> None:
    """Two levels: cities partition the province, industries each city. Every city has two single-
    enterprise industries hidden next to a published third; the city totals are then residuals."""
    atoms: dict = {}
    for city in ("370200", "370600", "370700"):
        atoms[(city, "steel")] = {f"{city}-a": 10}
        atoms[(city, "tyres")] = {f"{city}-b": 12}
        atoms[(city, "chemicals")] = {f"{city}-{k}": 30 for k in range(3)}
    figures = [Published(("x", city, ind), frozenset({(city, ind)})) for city, ind in atoms]
    figures += [Published(("x", city, "*"), frozenset(a for a in atoms if a[0] == city))
                for city in ("370200", "370600", "370700")]
    figures.append(Published(("x", "370000", "*"), frozenset(atoms)))
    result = protect(atoms, figures)
    assert attack(atoms, figures, result) == {} and insider(atoms, figures, result, largest=3) == []
    for city in ("370200", "370600", "370700"):
        published_ok = result.status(("x", city, "*")) == "published"
        assert not published_ok or result.status(("x", city, "chemicals")) != "published"


@st.composite
def destination_tables(draw) -> tuple[dict, list[Published]]:
    """One or two cities × a few destinations, with few exporters: many single-exporter cells."""
    cities = [f"c{i}" for i in range(draw(st.integers(1, 2)))]
    places = [f"d{i}" for i in range(draw(st.integers(2, 4)))]
    people = [f"e{i}" for i in range(draw(st.integers(2, 6)))]
    atoms = {(c, d): draw(st.dictionaries(st.sampled_from(people), st.integers(0, 50), max_size=3))
             for c in cities for d in places}
    figures = [Published(("v", c, d), frozenset({(c, d)})) for c in cities for d in places]
    figures += [Published(("v", c, "*"), frozenset((c, d) for d in places)) for c in cities]
    figures += [Published(("v", "*", d), frozenset((c, d) for c in cities)) for d in places]
    figures.append(Published(("v", "*", "*"), frozenset(atoms)))
    return atoms, figures


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(destination_tables(), st.booleans())
def test_no_determined_sum_of_suppressed_figures_is_sensitive(table: tuple[dict, list[Published]],
                                                               single_pass: bool) -> None:
    atoms, figures = table
    previous = disclosure.BATCH_ABOVE
    disclosure.BATCH_ABOVE = 0 if single_pass else previous
    try:
        result = protect(atoms, figures)
        bounded = protect_summarised(figures, summaries_of(atoms, figures), zero_atoms=zero_atoms_of(atoms, figures))
    finally:
        disclosure.BATCH_ABOVE = previous
    for protection in (result, bounded):
        assert attack(atoms, figures, protection) == {}
        assert insider(atoms, figures, protection) == []
        for figure in figures:
            assert (protection.status(figure.key) == "primary") == sensitive(contributors_of(atoms, figure))
            if protection.values[figure.key] is not None:
                assert protection.values[figure.key] == true_value(atoms, figure)
