"""PACT v2 ``$filter`` on ListFootprints: the OData subset the Technical Specification names.

    created ge '2023-01-15T10:15:30Z' and productCategoryCpc eq '4124'
    productIds/any(productId:(productId eq 'urn:gtin:04712345060507'))

Properties: ``created``, ``updated``, ``productCategoryCpc``, ``pcf/geographyCountry``,
``pcf/referencePeriodStart``, ``pcf/referencePeriodEnd``; operators ``eq lt le gt ge``; the
collection forms ``productIds/any(...)`` and ``companyIds/any(...)`` with ``eq``; terms joined by
``and``. Dates compare as instants, everything else as text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

Predicate = Callable[[dict[str, Any]], bool]

MAX_FILTER_LENGTH = 2000
_PROPERTIES = {"created": ("created",), "updated": ("updated",), "productCategoryCpc": ("productCategoryCpc",),
               "pcf/geographyCountry": ("pcf", "geographyCountry"),
               "pcf/referencePeriodStart": ("pcf", "referencePeriodStart"),
               "pcf/referencePeriodEnd": ("pcf", "referencePeriodEnd")}
_DATES = {"created", "updated", "pcf/referencePeriodStart", "pcf/referencePeriodEnd"}
_COLLECTIONS = {"productIds", "companyIds"}
_LITERAL = r"'((?:[^']|'')*)'"  # OData: a quote inside a string literal is doubled
_COMPARISON = re.compile(rf"^([A-Za-z]+(?:/[A-Za-z]+)?) (eq|lt|le|gt|ge) {_LITERAL}$")
_ANY = re.compile(rf"^([A-Za-z]+)/any\(([A-Za-z]+):\(?\2 eq {_LITERAL}\)?\)$")
_COMPARE = {"eq": lambda a, b: a == b, "lt": lambda a, b: a < b, "le": lambda a, b: a <= b,
            "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b}


class FilterError(ValueError):
    pass


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError("no time zone")
    return value


def _split_and(text: str) -> list[str]:
    """Split on `` and `` outside string literals and parentheses."""
    terms, depth, quoted, start, i = [], 0, False, 0, 0
    while i < len(text):
        ch = text[i]
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch in "()":
            depth += 1 if ch == "(" else -1
        elif not quoted and depth == 0 and text.startswith(" and ", i):
            terms.append(text[start:i])
            start = i = i + 5
            continue
        i += 1
    if quoted or depth:
        raise FilterError("unbalanced quotes or parentheses")
    terms.append(text[start:])
    return [t.strip() for t in terms]


def _term(text: str) -> Predicate:
    if match := _ANY.match(text):
        collection, value = match.group(1), match.group(3).replace("''", "'")
        if collection not in _COLLECTIONS:
            raise FilterError(f"{collection}/any is not supported")
        return lambda doc: value in (doc.get(collection) or [])
    match = _COMPARISON.match(text)
    if match is None:
        raise FilterError(f"cannot read the term {text[:80]!r}")
    name, op, literal = match.group(1), match.group(2), match.group(3).replace("''", "'")
    if name not in _PROPERTIES:
        raise FilterError(f"{name} is not a filterable property")
    path, compare = _PROPERTIES[name], _COMPARE[op]
    if name in _DATES:
        try:
            wanted: Any = _instant(literal)
        except ValueError:
            raise FilterError(f"{literal!r} is not an RFC 3339 date-time") from None
    else:
        wanted = literal

    def predicate(doc: dict[str, Any]) -> bool:
        value: Any = doc
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if not isinstance(value, str):
            return False  # an absent property (e.g. ``updated``) matches no comparison
        if name in _DATES:
            try:
                value = _instant(value)
            except ValueError:
                return False
        return bool(compare(value, wanted))

    return predicate


def parse_filter(text: str) -> Predicate:
    """A predicate over ProductFootprint documents; ``FilterError`` says what cannot be read."""
    if not text.strip() or len(text) > MAX_FILTER_LENGTH:
        raise FilterError("the filter is empty or too long")
    predicates = [_term(term) for term in _split_and(text.strip())]
    return lambda doc: all(p(doc) for p in predicates)
