"""Statistical disclosure control: primary and secondary cell suppression, audited exactly.

A table publishes *figures*; each figure is a linear functional of *atoms* (the finest cells, e.g.
one city × industry × quarter), usually the plain sum of a set of atoms, or an integer combination
such as a quarter-over-quarter change ``x_Q − x_Q−1``. Each atom holds the magnitudes of its
contributors (enterprises or people), non-negative and exact (``int``, ``Fraction`` or ``Decimal``).

Primary suppression. A figure is *sensitive* when fewer than ``min_contributors`` (3) contributors
have a magnitude > 0 in it, or when its largest contributor holds more than ``dominance`` (85 %) of
its total: exactly 85 % is published. A contributor's magnitude in a figure is Σ |coefficient| ×
magnitude over the figure's atoms (for plain sums, its share of the sum; for a change, its gross
activity in both quarters). A figure with no contributors at all is 0 and published. The rule uses
exact rational arithmetic only. Figures named in ``exempt`` are always published (the caller's
decision, e.g. an agency's own figures shown to its officers).

Secondary suppression. An attacker who knows every published figure can solve linear equations:
a suppressed figure is *exposed* when its coefficient vector lies in the span of the published
figures' vectors (totals minus parts, across overlapping tables and quarters). Atoms are
non-negative, so a published all-positive sum of 0 tells the attacker that each of its atoms is 0;
the audit goes further and takes every atom of total 0 as known (a figure made of such atoms alone
is 0 and published). The audit is exact: sparse Gaussian elimination over the rationals (``int`` /
``Fraction``). It does not run over the atoms, which may be many (city × industry × category ×
destination): the atom × figure matrix is first reduced by rows to a reduced echelon basis of at
most one row per figure, whose columns stand for the figures with exactly the same linear
relations (``_compress``); a caller that knows a spanning subset of the atoms' rows passes it
(:func:`protect_summarised`). Figures that share no coordinates are audited apart.

In a component of up to BATCH_ABOVE figures, the greedy step takes the attack relation found for
an exposed figure (the published figures combined to recover it) and suppresses a figure of it that
is not exempt: one that breaks the relation alone if there is one (a coloop: no other published
combination replaces it), else the cheapest: changes (figures with a negative coefficient) before
levels, since a change is void once either level is hidden, then the smallest total, fewest
contributors, key order, figures of total 0 last; a final pass publishes again every secondary
suppression that turns out unnecessary (most expensive first). A larger component is done in one
pass instead (``_single_pass``): figures are published dearest first, each unless it would expose a
hidden one, in which case it is hidden too, with the hidden figures' residuals kept up to date, so
the published set is maximal. Either way no single secondary suppression is redundant; the result
is exact but not optimal (minimum-cost suppression is NP-hard). Output depends neither on the input
order nor on hash seeds.

Residuals. Keeping each hidden figure undetermined is not enough: a published total minus its
published parts is the sum of its hidden parts, which an insider who knows its own share subtracts
from (two hidden single-enterprise destinations under a published total: each learns the other's).
So every sum of hidden figures over disjoint atoms that the published figures determine must pass the
primary rule too (:class:`_Residuals`): the hidden parts of a partition of a published sum (any size),
and any pair (and, up to TRIPLES_UP_TO hidden figures in a component, triple) of hidden sums whose
residuals modulo the published span cancel. A failing one hides one more figure, and secondary
suppression runs again, until neither changes anything. Without per-contributor data
(:func:`protect_summarised` without ``contributions``) the pooled contributors are bounded from the
summaries, on the safe side (so more is hidden). Larger sets found only through other relations (no
partition, four or more figures) are not searched.

Not done: interval (linear-programming) protection. With non-negativity an attacker may narrow a
suppressed cell to an interval (the "sliver": e.g. a hidden cell and a hidden complement of 0 with
a published sum tells the attacker an upper bound equal to the true value). The audit guarantees
only that no suppressed figure is *exactly* determined by the published equations and the zeros
they imply, i.e. no suppressed figure stands alone in any published additive relation; it does not
enforce a protection interval width. Complements of total 0 come last for that reason.

A suppressed figure that stays exposed only through exempt figures cannot be protected by
suppressing anything; it is reported in :attr:`Protection.exposed` (the caller decides).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Literal, Union

Atom = Hashable
Key = tuple[str, ...]
Magnitude = Union[int, Fraction, Decimal]  # noqa: UP007 (a runtime alias)
Contributions = Mapping[str, Magnitude]
Status = Literal["published", "primary", "secondary"]
Coefficients = Union[frozenset, Mapping]  # noqa: UP007

MIN_CONTRIBUTORS = 3
DOMINANCE = Fraction(85, 100)


@dataclass(frozen=True)
class Published:
    """One figure a table publishes: ``atoms`` is the set of atoms it sums (all coefficients 1) or a
    mapping atom -> non-zero integer coefficient (e.g. ``{q2: 1, q1: -1}`` for a change)."""

    key: Key
    atoms: Coefficients

    def __post_init__(self) -> None:
        if isinstance(self.atoms, Mapping):
            coefficients = {}
            for atom, coefficient in self.atoms.items():
                if isinstance(coefficient, bool) or not isinstance(coefficient, int):
                    raise TypeError(f"{self.key}: coefficient of {atom!r} is not an integer")
                if coefficient:
                    coefficients[atom] = coefficient
            object.__setattr__(self, "_coefficients", coefficients)
            object.__setattr__(self, "_atom_set", frozenset(coefficients))
        elif not isinstance(self.atoms, frozenset):
            object.__setattr__(self, "atoms", frozenset(self.atoms))

    @property
    def plain(self) -> bool:
        """A plain sum (given as a set of atoms): every coefficient 1."""
        return not isinstance(self.atoms, Mapping)

    @property
    def coefficients(self) -> Mapping[Atom, int]:
        """atom -> coefficient, the non-zero ones. For a plain sum made only when asked: a province's
        figures hold hundreds of thousands of atoms between them, and the audit works on the sets."""
        found = self.__dict__.get("_coefficients")
        if found is None:
            found = dict.fromkeys(self.atoms, 1)
            object.__setattr__(self, "_coefficients", found)
        return found

    @property
    def atom_set(self) -> frozenset[Atom]:
        """The atoms with a non-zero coefficient."""
        return self.atoms if isinstance(self.atoms, frozenset) else self.__dict__["_atom_set"]

    def __hash__(self) -> int:
        return hash((self.key, frozenset(self.coefficients.items())))


@dataclass(frozen=True)
class Protection:
    """The protected table: ``values[key]`` is the exact value, or None when suppressed."""

    values: Mapping[Key, Magnitude | None]
    primary: frozenset[Key]
    secondary: frozenset[Key]
    exposed: frozenset[Key] = frozenset()  # suppressed, yet derivable from exempt figures alone

    @property
    def suppressed(self) -> frozenset[Key]:
        return self.primary | self.secondary

    def status(self, key: Key) -> Status:
        if key not in self.values:
            raise KeyError(key)
        if key in self.primary:
            return "primary"
        return "secondary" if key in self.secondary else "published"

    def value(self, key: Key) -> Magnitude | None:
        return self.values[key]


# --- the primary rule -----------------------------------------------------------------------------


def _exact(value: object, where: object) -> Fraction | int:
    """``value`` as an exact non-negative number: an int stays an int (integer sums and comparisons
    are many times faster than Fraction ones), anything else becomes a Fraction."""
    kind = type(value)
    if kind is Fraction or kind is int:  # (the common cases, without the general checks)
        if value < 0:  # type: ignore[operator]
            raise ValueError(f"{where}: magnitude {value!r} is negative")
        return value  # type: ignore[return-value]
    if isinstance(value, bool) or not isinstance(value, int | Fraction | Decimal):
        raise TypeError(f"{where}: magnitude {value!r} is not an int, Fraction or Decimal")
    if isinstance(value, Decimal) and not value.is_finite():
        raise ValueError(f"{where}: magnitude {value!r} is not finite")
    exact = Fraction(value)
    if exact < 0:
        raise ValueError(f"{where}: magnitude {value!r} is negative")
    return exact


def _dominance(dominance: Fraction | int | str) -> Fraction:
    if isinstance(dominance, float):  # 0.85 is not 85/100 in binary: refuse rather than round
        raise TypeError("dominance must be exact (Fraction, int or str), not float")
    share = Fraction(dominance)
    if not 0 <= share <= 1:
        raise ValueError(f"dominance {dominance} is not within [0, 1]")
    return share


def is_sensitive(contributions: Mapping[str, Magnitude], *, min_contributors: int = MIN_CONTRIBUTORS,
                 dominance: Fraction | int | str = DOMINANCE) -> bool:
    """The primary rule on one figure's contributors (magnitudes per contributor, already summed)."""
    magnitudes = [m for who, raw in contributions.items() if (m := _exact(raw, who)) > 0]
    return _sensitive(magnitudes, sum(magnitudes), min_contributors, _dominance(dominance))


def _sensitive(magnitudes: Sequence[Number], total: Number, min_contributors: int, share: Fraction) -> bool:
    """``magnitudes``: the positive ones, exact; ``total`` their sum."""
    if not magnitudes:
        return False  # nothing there: the figure is 0 and reveals no one
    if len(magnitudes) < min_contributors:
        return True
    return _dominates(max(magnitudes), share, total)


def _dominates(largest: Number, share: Fraction, total: Number) -> bool:
    """largest > share × total, exactly, in integers when the magnitudes are integers."""
    return largest * share.denominator > share.numerator * total


def ratio_status(numerator_key: Key, denominator_key: Key, protection: Protection) -> Status:
    """A ratio is published only when its numerator and its denominator both are; otherwise it takes
    the stronger reason of the two (primary before secondary)."""
    statuses = {protection.status(numerator_key), protection.status(denominator_key)}
    if "primary" in statuses:
        return "primary"
    return "secondary" if "secondary" in statuses else "published"


# --- exact sparse elimination ---------------------------------------------------------------------

Number = Union[int, Fraction]  # noqa: UP007
Vector = dict[int, Number]


def _normalised(value: Number) -> Number:
    if type(value) is Fraction and value.denominator == 1:
        return value.numerator
    return value


class _Span:
    """An echelon basis (each row's pivot is its smallest column, scaled to 1) with, per row, the
    combination of sources (published figures, known zeros) that produced it."""

    def __init__(self) -> None:
        self.rows: dict[int, tuple[Vector, dict[Hashable, Number]]] = {}
        # Sources in some dependency (the fundamental circuits of the dependent insertions): a basis
        # source outside them is a coloop, which no other published combination can replace. The
        # same among levels only (sums), inserted first: a level whose own change is all that
        # duplicates it still breaks an attack when hidden, since its change follows it.
        self.in_circuit: set[Hashable] = set()
        self.in_level_circuit: set[Hashable] = set()

    def reduce(self, vector: Vector, trace: dict[Hashable, Number] | None = None,
               stop_at_residual: bool = False) -> bool:
        """Reduce ``vector`` in place (and ``trace`` alongside); True when it reduced to zero.
        Eliminating a pivot column only adds larger columns, so columns are visited in order."""
        # The hot loop of disclosure control: names bound locally, and _normalised inlined (most
        # entries are small integers, and int arithmetic needs no normalising at all).
        heap = list(vector)
        heapq.heapify(heap)
        pop, push, rows, get = heapq.heappop, heapq.heappush, self.rows, vector.get
        while heap:
            column = pop(heap)
            factor = get(column)
            if factor is None:
                continue
            pivot = rows.get(column)
            if pivot is None:
                if stop_at_residual:
                    return False  # later eliminations never reach a smaller column
                continue
            row, row_trace = pivot
            for target, entry in row.items():
                old = get(target)
                if old is None:
                    new = -factor * entry
                    if type(new) is Fraction and new.denominator == 1:
                        new = new.numerator
                    vector[target] = new  # (not zero: neither factor nor entry is)
                    push(heap, target)
                    continue
                new = old - factor * entry
                if type(new) is Fraction and new.denominator == 1:
                    new = new.numerator
                if new:
                    vector[target] = new
                else:
                    del vector[target]
            if trace is not None:
                for source, entry in row_trace.items():
                    new = _normalised(trace.get(source, 0) - factor * entry)
                    if new:
                        trace[source] = new
                    else:
                        trace.pop(source, None)
        return not vector

    def insert(self, vector: Vector, source: Hashable, level: bool = True) -> None:
        trace: dict[Hashable, Number] = {source: 1}
        if self.reduce(vector, trace):
            self.in_circuit.update(trace)
            if level:
                self.in_level_circuit.update(trace)
            return
        pivot = min(vector)
        scale = vector[pivot]
        if scale == -1:
            vector = {c: -v for c, v in vector.items()}
            trace = {s: -v for s, v in trace.items()}
        elif scale != 1:
            vector = {c: _normalised(Fraction(v) / scale) for c, v in vector.items()}
            trace = {s: _normalised(Fraction(v) / scale) for s, v in trace.items()}
        self.rows[pivot] = (vector, trace)

    def add(self, vector: Vector) -> bool:
        """Insert without bookkeeping; False when ``vector`` was already in the span."""
        if self.reduce(vector):
            return False
        pivot = min(vector)
        scale = vector[pivot]
        if scale != 1:
            vector = {c: _normalised(Fraction(v) / scale) if scale != -1 else -v for c, v in vector.items()}
        self.rows[pivot] = (vector, {})
        return True

    def copy(self) -> _Span:
        twin = _Span()
        twin.rows = dict(self.rows)  # rows are never changed once stored
        twin.in_circuit = set(self.in_circuit)
        twin.in_level_circuit = set(self.in_level_circuit)
        return twin

    def contains(self, vector: Vector) -> bool:
        return self.reduce(dict(vector), stop_at_residual=True)

    def relation(self, vector: Vector) -> dict[Hashable, Number]:
        """The sources whose combination equals ``vector`` (which must lie in the span), negated."""
        trace: dict[Hashable, Number] = {}
        if not self.reduce(dict(vector), trace):
            raise ValueError("not in the span")
        return trace


def _sorted_atoms(atoms: Iterable[Atom]) -> list[Atom]:
    atoms = list(atoms)
    try:
        return sorted(atoms)  # type: ignore[type-var]
    except TypeError:
        return sorted(atoms, key=lambda a: (type(a).__name__, repr(a)))


def is_determined(target: Coefficients, known: Iterable[Coefficients], *,
                  known_zero_atoms: Iterable[Atom] = ()) -> bool:
    """The differencing-attack audit: can the value of ``target`` be computed exactly from the
    values of the ``known`` figures (and atoms known to be 0)? Exact rational elimination."""
    targets = Published(("target",), target).coefficients
    knowns = [Published(("known",), k).coefficients for k in known]
    zeros = list(known_zero_atoms)
    index = {a: i for i, a in enumerate(_sorted_atoms({a for c in [targets, *knowns] for a in c} | set(zeros)))}
    span = _Span()
    for number, coefficients in enumerate(knowns):
        span.insert({index[a]: c for a, c in coefficients.items()}, number)
    for atom in zeros:
        span.insert({index[atom]: 1}, ("zero", atom))
    return span.contains({index[a]: c for a, c in targets.items()})


# --- protect --------------------------------------------------------------------------------------

# --- protect --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """A figure's primary-rule inputs already summed per contributor (e.g. by SQL): its exact value, how
    many contributors have a magnitude > 0 in it, the largest such magnitude and their total."""

    value: Magnitude
    contributors: int
    largest: Magnitude
    total: Magnitude


@dataclass
class _Figure:
    published: Published
    value: Magnitude
    gross: Fraction
    contributors: int
    sensitive: bool
    positive: bool  # all coefficients > 0
    vector: Vector = field(default_factory=dict)  # in the compressed coordinates (see _compress)
    largest: Fraction = Fraction(0)  # the largest contributor's magnitude
    contributions: Mapping[str, Number] | None = None  # per contributor (protect only), for residuals

    @property
    def key(self) -> Key:
        return self.published.key

    @property
    def rank(self) -> tuple[int, Fraction, int, Key]:
        """Elimination order: levels before changes, cheapest first, so that attack relations are
        written in cheap levels and bring in a change only where the change is what leaks."""
        return (0 if self.positive else 1, self.gross, self.contributors, self.key)

    @property
    def cost(self) -> tuple[int, int, Fraction, int, Key]:
        """Greedy preference: changes before levels (a change is void once either level is hidden),
        then the smallest total; figures of total 0 last (hiding a 0 protects almost nothing)."""
        return (1 if self.gross == 0 else 0, 1 if self.positive else 0, self.gross, self.contributors, self.key)


def _typed_sum(total: Fraction, kinds: set[type]) -> Magnitude:
    """The exact sum in the inputs' own type: int, Decimal (exact: a sum of decimals has a
    denominator 2^a 5^b) or Fraction."""
    if Fraction in kinds:
        return total
    if Decimal not in kinds:
        return total.numerator
    denominator, twos, fives = total.denominator, 0, 0
    while denominator % 2 == 0:
        denominator, twos = denominator // 2, twos + 1
    while denominator % 5 == 0:
        denominator, fives = denominator // 5, fives + 1
    digits = max(twos, fives)
    # From a string: exact, whatever the context's precision.
    return Decimal(f"{total.numerator * 10**digits // total.denominator}E{-digits}")


def _ordered(published: Sequence[Published]) -> list[Published]:
    keys = [p.key for p in published]
    if len(set(keys)) != len(keys):
        raise ValueError("published figures must have distinct keys")
    return sorted(published, key=lambda p: p.key)


def _figures(atoms: Mapping[Atom, Contributions], published: Sequence[Published],
             min_contributors: int, dominance: Fraction) -> tuple[list[_Figure], list[dict[int, int]]]:
    """The figures (in key order) and the atom rows: per atom with a non-zero total, in atom order,
    {figure number: coefficient}. Atoms of total 0 are left out: the attacker is taken to know them
    (a superset of "a published all-positive sum of 0 pins its atoms", so the audit errs on the safe
    side), and a figure made of them alone is 0 and published."""
    ordered = _ordered(published)
    used = _sorted_atoms({a for p in ordered for a in p.coefficients})
    cells: dict[Atom, dict[str, Number]] = {}
    kinds: dict[Atom, set[type]] = {}
    for atom in used:
        cell = atoms.get(atom, {})  # an atom nobody reported is empty
        cells[atom] = {who: _normalised(_exact(m, (atom, who))) for who, m in cell.items()}
        kinds[atom] = {type(m) for m in cell.values()}
    totals = {atom: sum(cell.values()) for atom, cell in cells.items()}
    figures = []
    rows: dict[Atom, dict[int, int]] = {atom: {} for atom in used if totals[atom]}
    for number, p in enumerate(ordered):
        gross: dict[str, Number] = {}
        value: Number = 0
        value_kinds: set[type] = set()
        for atom, coefficient in p.coefficients.items():
            value += coefficient * totals[atom]
            value_kinds |= kinds[atom]
            weight = abs(coefficient)
            for who, m in cells[atom].items():
                gross[who] = gross.get(who, 0) + weight * m
            if atom in rows:
                rows[atom][number] = coefficient
        active = [m for m in gross.values() if m > 0]
        total = sum(active)
        figures.append(_Figure(
            published=p, value=_typed_sum(Fraction(value), value_kinds), gross=Fraction(total),
            contributors=len(active), sensitive=_sensitive(active, total, min_contributors, dominance),
            positive=all(c > 0 for c in p.coefficients.values()), largest=Fraction(max(active, default=0)),
            contributions={who: m for who, m in gross.items() if m > 0}))
    return figures, [rows[atom] for atom in used if atom in rows]


def _compress(figures: list[_Figure], atom_rows: Iterable[Mapping[int, int]]) -> None:
    """Give each figure its vector in few coordinates with the same linear relations as over the atoms.

    Write the figures as the columns of the atom × figure matrix A. Row operations keep every linear
    relation between columns, so the columns of an echelon basis R of A's rows (rank ≤ the number of
    figures) relate exactly as the figures do over the atoms: Ax = 0 iff Rx = 0. Each atom's row has
    only as many entries as figures contain it, so the elimination is cheap, and every later span
    computation runs in R's few coordinates, not over the atoms. Small figures come first as
    columns, so pivots fall on fine cells and totals absorb the fill-in."""
    order = sorted(range(len(figures)), key=lambda n: (len(figures[n].published.atom_set), figures[n].key))
    column = {n: c for c, n in enumerate(order)}
    basis = _Span()
    for row in atom_rows:
        basis.add({column[n]: c for n, c in row.items()})
    _reduced(basis)
    for figure in figures:
        figure.vector = {}
    for coordinate, pivot in enumerate(sorted(basis.rows)):
        for c, entry in basis.rows[pivot][0].items():
            figures[order[c]].vector[coordinate] = entry


def _reduced(basis: _Span) -> None:
    """Back-substitute an echelon basis into reduced form (each pivot column only in its own row).
    Then a figure that is a pivot column has one coordinate, and any other lists its expression in
    the pivot figures: the figures' vectors are as sparse as their relations, so later eliminations
    over them stay cheap."""
    holding: dict[int, list[int]] = {p: [] for p in basis.rows}
    for pivot, (row, _) in basis.rows.items():
        for c in row:
            if c != pivot and c in holding:
                holding[c].append(pivot)
    for pivot in sorted(basis.rows, reverse=True):
        row = basis.rows[pivot][0]
        for other in holding[pivot]:
            target = dict(basis.rows[other][0])
            factor = target.pop(pivot)
            for c, v in row.items():
                if c == pivot:
                    continue
                new = _normalised(target.get(c, 0) - factor * v)
                if new:
                    target[c] = new
                else:
                    target.pop(c, None)
            basis.rows[other] = (target, {})


class _Tables:
    """Some figures (one connected component) in their fixed elimination order (cheapest first)."""

    def __init__(self, figures: list[_Figure], members: Iterable[int], position: Mapping[int, int]) -> None:
        self.figures = figures
        self.position = position
        self.order = sorted(members, key=position.__getitem__)

    def span(self, hidden: set[int]) -> _Span:
        span = _Span()
        for number in self.order:
            if number not in hidden:
                figure = self.figures[number]
                span.insert(dict(figure.vector), number, figure.positive)
        return span

    def exposed(self, hidden: set[int], span: _Span | None = None) -> list[int]:
        span = self.span(hidden) if span is None else span
        return [n for n in self.order if n in hidden and span.contains(self.figures[n].vector)]


def _components(figures: list[_Figure]) -> list[list[int]]:
    """Figures linked by shared coordinates (union-find); the audit splits along them."""
    parent: dict[int, int] = {}

    def root(column: int) -> int:
        while parent.setdefault(column, column) != column:
            parent[column] = parent[parent[column]]
            column = parent[column]
        return column

    for figure in figures:
        columns = list(figure.vector)
        for column in columns[1:]:
            parent[root(column)] = root(columns[0])
    groups: dict[object, list[int]] = {}
    for number, figure in enumerate(figures):
        anchor = root(next(iter(figure.vector))) if figure.vector else ("alone", number)
        groups.setdefault(anchor, []).append(number)
    return list(groups.values())


# Above this many figures in one component, secondary suppression is one publishing pass
# (_single_pass) rather than greedy rounds that each eliminate the whole component again.
BATCH_ABOVE = 300


def _proportional(vector: Vector, base: Vector, pivot: int) -> bool:
    """Is ``vector`` a multiple of ``base`` (whose smallest column is ``pivot``)?"""
    if len(vector) != len(base) or pivot not in vector:
        return False
    factor = Fraction(vector[pivot]) / base[pivot]
    return all(vector.get(c) == factor * v for c, v in base.items())


def _single_pass(tables: _Tables, hidden: set[int], exempt: frozenset[Key]) -> tuple[set[int], set[int]]:
    """Secondary suppression on a large component in one pass, with no re-elimination: publish the
    figures one by one, exempt ones first, then the dearest to hide first (the reverse of the greedy
    preference), each unless it would expose a hidden figure, in which case it is hidden too.

    Each hidden figure keeps its residual modulo the published span (fully reduced, so canonical).
    Publishing a figure adds its residual r as one echelon row; it exposes exactly the hidden figures
    whose residual is a multiple of r (same support, so same smallest column: they are indexed by it).
    Spans only grow, so every figure hidden on the way is still needed at the end: the published set
    is maximal, and no hidden figure lies in the published span (those that do only through exempt
    figures are returned as exposed)."""
    figures = tables.figures
    span = _Span()
    residual: dict[int, Vector] = {h: dict(figures[h].vector) for h in hidden}
    by_lead: dict[int, set[int]] = {}

    def index(h: int) -> None:
        if residual[h]:
            by_lead.setdefault(min(residual[h]), set()).add(h)

    for h in hidden:
        index(h)
    rest = [n for n in tables.order if n not in hidden]
    first = [n for n in rest if figures[n].key in exempt]
    later = sorted((n for n in rest if figures[n].key not in exempt), key=lambda n: figures[n].cost, reverse=True)
    for number in first + later:
        row = dict(figures[number].vector)
        span.reduce(row)
        if not row:
            continue  # already determined by the published figures: publishing it reveals nothing new
        pivot = min(row)
        if figures[number].key not in exempt and any(
                _proportional(residual[h], row, pivot) for h in by_lead.get(pivot, ())):
            hidden.add(number)
            residual[number] = row
            index(number)
            continue
        scale = row[pivot]
        if scale != 1:
            row = {c: _normalised(Fraction(v) / scale) for c, v in row.items()}
        span.rows[pivot] = (row, {})
        # Keep every residual canonical: eliminate the new pivot column wherever it occurs.
        for h, vector in residual.items():
            factor = vector.get(pivot)
            if factor is None:
                continue
            by_lead[min(vector)].discard(h)
            for c, v in row.items():
                new = _normalised(vector.get(c, 0) - factor * v)
                if new:
                    vector[c] = new
                else:
                    vector.pop(c, None)
            index(h)
    return hidden, {h for h, vector in residual.items() if not vector}


def _secondary(tables: _Tables, hidden: set[int], exempt: frozenset[Key]) -> tuple[set[int], set[int]]:
    """Greedy complementary suppression on one component, then the pruning pass. Returns the hidden
    figures and those left exposed through exempt figures only."""
    figures = tables.figures

    def cost(number: int) -> tuple[int, int, Fraction, int, Key]:
        return figures[number].cost

    batch = len(tables.order) > BATCH_ABOVE
    extra: list[int] = []
    unprotectable: set[int] = set()
    while True:
        span = tables.span(hidden)
        chosen_now: set[int] = set()
        for number in tables.exposed(hidden, span):
            if number in unprotectable:
                continue
            relation = set(span.relation(figures[number].vector))
            if relation & chosen_now:
                continue  # that attack is already broken; the next round's span decides
            candidates = [c for c in relation if figures[c].key not in exempt]
            if not candidates:
                unprotectable.add(number)  # derivable from exempt figures alone
                continue
            # A coloop of the attack relation breaks it alone: prefer the cheapest such figure.
            breaking = [c for c in candidates
                        if c not in (span.in_level_circuit if figures[c].positive else span.in_circuit)]
            chosen = min(breaking or candidates, key=cost)
            chosen_now.add(chosen)
            extra.append(chosen)
            if not batch:
                break
        if not chosen_now:
            break
        hidden |= chosen_now
    # Publish again what the greedy steps over-suppressed, most expensive first. Incrementally: each
    # hidden figure keeps its residual modulo the published span (fully reduced, so canonical);
    # publishing a figure n adds its residual r as one more echelon row, and exposes exactly the
    # hidden figures whose residual is a multiple of r.
    span = tables.span(hidden)
    residual: dict[int, Vector] = {}
    for number in hidden:
        vector = dict(figures[number].vector)
        span.reduce(vector)
        residual[number] = vector
    for number in sorted(extra, key=cost, reverse=True):
        if number not in hidden:
            continue
        row = residual[number]
        if not row:
            continue  # itself derivable (from exempt figures only): publishing it changes nothing
        pivot = min(row)
        if any(_proportional(residual[h], row, pivot) for h in hidden if h != number and residual[h]):
            continue  # publishing it would expose another hidden figure
        hidden.discard(number)
        del residual[number]
        scale = Fraction(1) / row[pivot]
        for vector in residual.values():
            factor = vector.get(pivot)
            if factor is None:
                continue
            for c, v in row.items():
                new = _normalised(vector.get(c, 0) - factor * scale * v)
                if new:
                    vector[c] = new
                else:
                    vector.pop(c, None)
    return hidden, {h for h, vector in residual.items() if not vector}



# Triples of hidden figures are searched (O(n²)) in components with at most this many hidden sums.
TRIPLES_UP_TO = 400


# --- residuals: sums of hidden figures that the published ones determine --------------------------


class _Residuals:
    """The singleton attack on a partition. A published plain sum T whose atoms are covered by
    pairwise disjoint figures of one table (its parts) gives away T − Σ published parts: the sum of its
    hidden parts (and of its atoms in no part). Secondary suppression only keeps each hidden figure
    from being determined alone; this residual must pass the primary rule too, or an insider who knows
    its own share of it learns the others' (one hidden part of 1 enterprise next to another of 1: each
    gets the other's figure). When it fails, one more part is hidden (the cheapest published one not
    exempt that makes it pass, else the cheapest), or T itself when no part can be.

    A table's figures are those whose keys differ in one position only (e.g. the groups of one
    dimension, ("x", area, "destination", g), or the cities of one province, ("x", city, "*", "*")).
    Magnitudes: each figure's per-contributor map when known (``contributions``), else bounds from the
    summaries alone, on the safe side: the residual has at least max(its hidden parts' contributors,
    T's contributors − the published parts' contributors) contributors, and its largest is at most
    T's largest and at most the sum of the hidden parts' largest plus the rest."""

    def __init__(self, figures: list[_Figure], zeros: Iterable[Atom],
                 contributions: Callable[[int], Mapping[str, Magnitude]] | None,
                 min_contributors: int, share: Fraction, exempt: frozenset[Key]) -> None:
        self.figures = figures
        self.zeros = frozenset(zeros)
        self.source = contributions
        self.min_contributors = min_contributors
        self.share = share
        self.exempt = exempt
        # (a figure given as a set of atoms sums them: every coefficient is 1, no need to look)
        self.plain = [f.gross > 0 and f.positive and (f.published.plain or all(
            c == 1 for c in f.published.coefficients.values())) for f in figures]
        self.families: dict[tuple[object, ...], list[int]] = {}
        self.family_of: dict[int, list[tuple[object, ...]]] = {}
        for number, figure in enumerate(figures):
            if self.plain[number]:
                key = figure.key
                for i in range(len(key)):
                    family = (len(key), i, key[:i] + key[i + 1:])
                    self.families.setdefault(family, []).append(number)
                    self.family_of.setdefault(number, []).append(family)
        self._atoms: dict[int, frozenset[Atom]] = {}
        self._members: dict[tuple[int, tuple[object, ...]], list[int] | None] = {}
        self._maps: dict[int, dict[str, Number]] = {}
        self._containing: dict[Atom, list[int]] = {}

    def atoms(self, number: int) -> frozenset[Atom]:
        found = self._atoms.get(number)
        if found is None:
            found = self._atoms[number] = self.figures[number].published.atom_set - self.zeros
        return found

    def containing(self, atom: Atom) -> list[int]:
        """The plain figures that contain ``atom``, in number order (see :meth:`index`)."""
        return self._containing[atom]

    def index(self, probes: Iterable[Atom]) -> None:
        """Find the plain figures containing each of ``probes`` (a few hundred atoms, one per hidden
        figure: its partitions are looked for only among the totals that contain it), once per atom."""
        new = {a for a in probes if a not in self._containing}
        if not new:
            return
        for a in new:
            self._containing[a] = []
        for number, figure in enumerate(self.figures):
            if self.plain[number]:
                inside = new & figure.published.atom_set  # (C: iterates the smaller of the two)
                for a in inside:
                    self._containing[a].append(number)

    def members(self, total: int, family: tuple[object, ...]) -> list[int] | None:
        """The family's figures inside ``total``, or None unless they are pairwise disjoint."""
        slot = (total, family)
        if slot not in self._members:
            inside = self.atoms(total)
            members = [q for q in self.families[family] if q != total and self.atoms(q) <= inside]
            union: set[Atom] = set()
            for q in members:
                union |= self.atoms(q)
            disjoint = len(union) == sum(len(self.atoms(q)) for q in members)
            self._members[slot] = members if disjoint and members else None
        return self._members[slot]

    def contribution_map(self, number: int) -> dict[str, Number]:
        found = self._maps.get(number)
        if found is None:
            figure = self.figures[number]
            raw = figure.contributions if figure.contributions is not None else self.source(number)  # type: ignore[misc]
            found = self._maps[number] = {who: _normalised(_exact(m, (figure.key, who))) for who, m in raw.items()}
        return found

    def sensitive(self, total: int, hidden: Sequence[int], published: Sequence[int]) -> bool:
        figures = self.figures
        gross = figures[total].gross - sum(figures[q].gross for q in published)
        if gross <= 0:
            return False
        # The bounds from the summaries first: they err on the sensitive side, so a residual they pass
        # passes; only the others need the exact per-contributor check (a merge of maps, dearer).
        rest = gross - sum(figures[q].gross for q in hidden)
        at_least = max([figures[total].contributors - sum(figures[q].contributors for q in published),
                        *(figures[q].contributors for q in hidden), 1 if rest > 0 else 0])
        at_most = min(figures[total].largest, sum(figures[q].largest for q in hidden) + rest)
        if not (at_least < self.min_contributors or _dominates(at_most, self.share, gross)):
            return False
        exact = figures[total].contributions is not None or self.source is not None
        if exact:
            merged = dict(self.contribution_map(total))
            for q in published:
                for who, m in self.contribution_map(q).items():
                    merged[who] = merged.get(who, 0) - m
            magnitudes = [m for m in merged.values() if m > 0]
            return _sensitive(magnitudes, sum(magnitudes), self.min_contributors, self.share)
        return True

    def pooled_sensitive(self, group: Sequence[int]) -> bool:
        """The primary rule on the pooled contributors of hidden figures over disjoint atoms."""
        figures = self.figures
        gross = sum(figures[q].gross for q in group)
        if gross <= 0 or not (max(figures[q].contributors for q in group) < self.min_contributors
                              or _dominates(sum(figures[q].largest for q in group), self.share, gross)):
            return False  # the bounds (on the sensitive side) pass it: so does the exact check
        if all(figures[q].contributions is not None for q in group) or self.source is not None:
            merged: dict[str, Number] = {}
            for q in group:
                for who, m in self.contribution_map(q).items():
                    merged[who] = merged.get(who, 0) + m
            magnitudes = [m for m in merged.values() if m > 0]
            return _sensitive(magnitudes, sum(magnitudes), self.min_contributors, self.share)
        return True

    def small_sets(self, tables: _Tables, hidden: set[int]) -> set[int]:
        """Any relation, not only partitions: pairs (and, up to TRIPLES_UP_TO of them, triples) of hidden plain
        sums over disjoint atoms whose total lies in the published span (their residuals modulo the
        span, canonical, add up to 0) must pass the primary rule; else the cheapest published figure of
        the relation that is not exempt is hidden too."""
        figures = self.figures
        big = len(tables.order) > BATCH_ABOVE
        span = tables.span(hidden)
        residual: dict[int, Vector] = {}
        by_form: dict[frozenset[tuple[int, Number]], list[int]] = {}
        for h in sorted(hidden):
            if self.plain[h] and self.atoms(h):
                vector = dict(figures[h].vector)
                span.reduce(vector)
                if vector:  # a determined figure alone is the audit's question
                    residual[h] = vector
                    by_form.setdefault(frozenset(vector.items()), []).append(h)

        def negated(total: Vector) -> frozenset[tuple[int, Number]]:
            return frozenset((c, _normalised(-v)) for c, v in total.items() if v)

        groups: list[tuple[int, ...]] = []
        order = sorted(residual)
        triples = len(order) <= TRIPLES_UP_TO
        for i, a in enumerate(order):
            for b in by_form.get(negated(residual[a]), ()):
                if b > a:
                    groups.append((a, b))
            if not triples:
                continue
            for b in order[i + 1:]:
                total = dict(residual[a])
                for c, v in residual[b].items():
                    total[c] = _normalised(total.get(c, 0) + v)
                for c in by_form.get(negated(total), ()):
                    if c > b:
                        groups.append((a, b, c))
        chosen: set[int] = set()
        for group in groups:
            atoms = [self.atoms(q) for q in group]
            if sum(map(len, atoms)) != len(frozenset().union(*atoms)) or not self.pooled_sensitive(group):
                continue
            pooled: Vector = {}
            for q in group:
                for c, v in figures[q].vector.items():
                    pooled[c] = _normalised(pooled.get(c, 0) + v)
            relation = span.relation({c: v for c, v in pooled.items() if v})
            candidates = sorted((q for q in relation if figures[q].key not in self.exempt),
                                key=lambda q: figures[q].cost)
            # In a large component every failing set gets its figure in this round (rounds re-run
            # the whole component); in a small one, one per relation, the next round decides.
            if candidates and (big or not chosen.intersection(relation)):
                # Prefer a figure that pools enough contributors in: fewer rounds, fewer suppressions.
                union = frozenset().union(*atoms)
                chosen.add(next((q for q in candidates if self.plain[q] and not self.atoms(q) & union
                                 and not self.pooled_sensitive([*group, q])), candidates[0]))
        return chosen

    def extra(self, hidden: set[int]) -> set[int]:
        """Figures to hide so that no partition's hidden residual is sensitive (one round)."""
        figures = self.figures
        current = set(hidden)
        chosen: set[int] = set()
        checked: set[tuple[int, tuple[object, ...]]] = set()
        self.index(next(iter(self.atoms(h))) for h in hidden if self.plain[h] and self.atoms(h))
        for h in sorted(hidden):
            if not self.plain[h]:
                continue
            atoms = self.atoms(h)
            if not atoms:
                continue
            for total in self.containing(next(iter(atoms))):
                figure = figures[total]
                if total in current or total == h or not atoms <= self.atoms(total):
                    continue
                for family in self.family_of[h]:
                    if (total, family) in checked:
                        continue
                    checked.add((total, family))
                    members = self.members(total, family)
                    if members is None:
                        continue
                    hid = [q for q in members if q in current]
                    pub = [q for q in members if q not in current]
                    rest = figure.gross - sum(figures[q].gross for q in members)
                    if len(hid) + (1 if rest > 0 else 0) < 2:
                        continue  # one hidden figure alone: whether it is determined is the audit's question
                    if not self.sensitive(total, hid, pub):
                        continue
                    candidates = sorted((q for q in pub if figures[q].key not in self.exempt),
                                        key=lambda q: figures[q].cost)
                    if candidates:
                        pick = next((q for q in candidates
                                     if not self.sensitive(total, [*hid, q], [p for p in pub if p != q])),
                                    candidates[0])
                    elif figure.key not in self.exempt:
                        pick = total
                    else:
                        continue  # known to the exempt reader anyway
                    current.add(pick)
                    chosen.add(pick)
                    if pick == total:
                        break
        return chosen


def _run(figures: list[_Figure], atom_rows: Iterable[Mapping[int, int]], exempt: frozenset[Key],
         secondary: bool, residuals: Callable[[], _Residuals] | None = None) -> tuple[set[int], set[int], set[int]]:
    """The primary, hidden and exposed figure numbers. Secondary suppression and the residual check
    (:class:`_Residuals`) alternate until neither hides anything more; hidden sets only grow, so it ends."""
    primary = {n for n, f in enumerate(figures) if f.sensitive and f.key not in exempt}
    if not primary:
        return primary, set(), set()  # nothing to protect
    _compress(figures, atom_rows)
    position = {n: p for p, n in enumerate(sorted(range(len(figures)), key=lambda n: figures[n].rank))}
    components = _components(figures)
    component_of = {n: c for c, members in enumerate(components) for n in members}
    local: dict[int, set[int]] = {}
    for n in primary:
        local.setdefault(component_of[n], set()).add(n)
    still: dict[int, set[int]] = {}
    pending = set(local)
    checker = residuals() if residuals is not None and secondary else None
    while pending:
        for c in sorted(pending):
            members = components[c]
            tables = _Tables(figures, members, position)
            if secondary:
                big = len(members) > BATCH_ABOVE
                local[c], still[c] = (_single_pass if big else _secondary)(tables, local[c], exempt)
            else:
                still[c] = set(tables.exposed(local[c]))
        if checker is None:
            break
        extra = checker.extra(set().union(*local.values()))
        if not extra:
            for c in sorted(local):
                members = components[c]
                extra |= checker.small_sets(_Tables(figures, members, position), local[c])
        pending = set()
        for n in extra:
            local.setdefault(component_of[n], set()).add(n)
            pending.add(component_of[n])
    hidden: set[int] = set().union(*local.values())
    exposed: set[int] = set().union(*still.values())
    return primary, hidden, exposed


def _protection(published: Sequence[Published], figures: list[_Figure], primary: set[int], hidden: set[int],
                exposed: set[int]) -> Protection:
    hidden_keys = {figures[n].key for n in hidden}
    value = {f.key: f.value for f in figures}
    return Protection(
        values={p.key: None if p.key in hidden_keys else value[p.key] for p in published},
        primary=frozenset(figures[n].key for n in primary),
        secondary=frozenset(figures[n].key for n in hidden - primary),
        exposed=frozenset(figures[n].key for n in exposed))


def protect(atoms: Mapping[Atom, Contributions], published: Sequence[Published], *,
            min_contributors: int = MIN_CONTRIBUTORS, dominance: Fraction | int | str = DOMINANCE,
            exempt: Iterable[Key] = frozenset(), secondary: bool = True) -> Protection:
    """Suppress the sensitive figures, then (unless ``secondary=False``, for demonstrations) enough
    others that no suppressed figure can be computed from the published ones."""
    share = _dominance(dominance)
    figures, atom_rows = _figures(atoms, published, min_contributors, share)
    exempt = frozenset(exempt)

    def residuals() -> _Residuals:
        zeros = {a for f in figures for a in f.published.coefficients
                 if not any(_exact(m, a) > 0 for m in atoms.get(a, {}).values())}
        return _Residuals(figures, zeros, None, min_contributors, share, exempt)

    return _protection(published, figures, *_run(figures, atom_rows, exempt, secondary, residuals))


def protect_summarised(published: Sequence[Published], summaries: Mapping[Key, Summary], *,
                       zero_atoms: Iterable[Atom] = (),
                       basis_atoms: Iterable[Atom] | Callable[[], Iterable[Atom]] | None = None,
                       min_contributors: int = MIN_CONTRIBUTORS,
                       dominance: Fraction | int | str = DOMINANCE, exempt: Iterable[Key] = frozenset(),
                       secondary: bool = True,
                       contributions: Mapping[Key, Contributions] | Callable[[Key], Contributions] | None = None,
                       ) -> Protection:
    """:func:`protect` when each figure's contributors are already summed (one :class:`Summary` per
    published key, e.g. computed in SQL): the same rules, without per-contributor data. ``zero_atoms``:
    the atoms whose magnitudes are all 0 (known to the attacker, as in :func:`protect`). ``basis_atoms``:
    atoms whose rows (the figures each lies in) span all the non-zero atoms' rows, when the caller's
    structure tells it (or a function returning them, called only if there is anything to protect):
    the audit then eliminates only those. Never unsafe whatever the caller passes:
    fewer rows only add linear relations (credit the attacker with more), so a wrong basis suppresses
    more, and a figure it then cannot protect is reported in :attr:`Protection.exposed`.

    ``contributions``: each figure's magnitudes per contributor (summed over its atoms, as for its
    Summary), by key, or a function of the key called only for the figures a residual check needs (see
    :class:`_Residuals`). Without it the residual check works from the summaries' bounds: safe, but it
    may hide more."""
    share = _dominance(dominance)
    ordered = _ordered(published)
    exempt = frozenset(exempt)
    figures = []
    for p in ordered:
        s = summaries[p.key]
        largest, total = _exact(s.largest, p.key), _exact(s.total, p.key)
        if s.contributors < 0 or (s.contributors == 0) != (total == 0) or largest > total:
            raise ValueError(f"{p.key}: inconsistent summary {s}")
        sensitive = s.contributors > 0 and (s.contributors < min_contributors or _dominates(largest, share, total))
        positive = p.plain or min(p.coefficients.values(), default=1) > 0
        figures.append(_Figure(published=p, value=s.value, gross=total, contributors=s.contributors,
                               sensitive=sensitive, positive=positive, largest=largest))
    if not any(f.sensitive and f.key not in exempt for f in figures):
        return _protection(published, figures, set(), set(), set())  # nothing to protect
    zeros = set(zero_atoms)
    if callable(basis_atoms):
        basis_atoms = basis_atoms()
    basis = None if basis_atoms is None else set(basis_atoms) - zeros
    rows: dict[Atom, dict[int, int]] = {}
    for number, p in enumerate(ordered):
        if basis is not None:
            if p.plain:  # (set & frozenset iterates the smaller: the basis is a few thousand atoms)
                for atom in basis & p.atoms:
                    rows.setdefault(atom, {})[number] = 1
                continue
            for atom in basis.intersection(p.coefficients):
                rows.setdefault(atom, {})[number] = p.coefficients[atom]
            continue
        for atom, coefficient in p.coefficients.items():
            if atom not in zeros:
                rows.setdefault(atom, {})[number] = coefficient
    atom_rows = [rows[atom] for atom in _sorted_atoms(rows)]
    source = None
    if contributions is not None:
        lookup = contributions.__getitem__ if isinstance(contributions, Mapping) else contributions
        source = lambda number: lookup(ordered[number].key)  # noqa: E731

    def residuals() -> _Residuals:
        return _Residuals(figures, zeros, source, min_contributors, share, exempt)

    return _protection(published, figures, *_run(figures, atom_rows, exempt, secondary, residuals))


def audit(atoms: Mapping[Atom, Contributions], published: Sequence[Published],
          protection: Protection) -> frozenset[Key]:
    """The suppressed figures of ``protection`` that the published ones determine exactly (empty
    when the protection holds; the exempt-only exposures of :attr:`Protection.exposed` included)."""
    figures, atom_rows = _figures(atoms, published, MIN_CONTRIBUTORS, DOMINANCE)
    _compress(figures, atom_rows)
    hidden = {n for n, f in enumerate(figures) if protection.values[f.key] is None}
    tables = _Tables(figures, range(len(figures)), {n: n for n in range(len(figures))})
    return frozenset(figures[n].key for n in tables.exposed(hidden))
