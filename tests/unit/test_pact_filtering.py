"""The PACT ``$filter`` subset, read term by term against documents built here."""

from __future__ import annotations

import pytest

from carbonpuhui.pact.filtering import FilterError, parse_filter

DOC = {"created": "2026-01-02T03:04:05.678Z", "productCategoryCpc": "4124", "productIds": ["urn:gtin:00000000000017"],
       "companyIds": ["urn:uuid:o'brien"], "pcf": {"geographyCountry": "CN", "referencePeriodStart": "2025-01-01T00:00:00Z",
                                                  "referencePeriodEnd": "2026-01-01T00:00:00Z"}}


@pytest.mark.parametrize(("flt", "expected"), [
    ("created eq '2026-01-02T03:04:05.678Z'", True),
    ("created eq '2026-01-02T04:04:05.678+01:00'", True),  # the same instant, another offset
    ("created gt '2026-01-02T03:04:05.678Z'", False),
    ("created le '2026-01-02T03:04:05.678Z'", True),
    ("pcf/referencePeriodEnd le '2026-01-01T00:00:00Z' and pcf/referencePeriodStart ge '2025-01-01T00:00:00Z'", True),
    ("pcf/geographyCountry eq 'DE'", False),
    ("productCategoryCpc eq '4124' and productCategoryCpc eq '4125'", False),
    ("companyIds/any(companyId:(companyId eq 'urn:uuid:o''brien'))", True),  # a doubled quote is one quote
    ("productIds/any(p:p eq 'urn:gtin:00000000000017')", True),
    ("productCategoryCpc eq 'a and b'", False),  # "and" inside a literal joins nothing
    ("updated lt '2100-01-01T00:00:00Z'", False),  # an absent property matches no comparison
])
def test_terms(flt: str, expected: bool) -> None:
    assert parse_filter(flt)(DOC) is expected


@pytest.mark.parametrize("flt", ["", " ", "created ge", "created ne '2026-01-01T00:00:00Z'", "(created ge 'x'",
                                 "productIds/any(p:(q eq 'x'))", "productCategoryCpc eq 4124", "x" * 2001,
                                 "created ge '2026-01-01T00:00:00Z' or productCategoryCpc eq '4124'"])
def test_what_cannot_be_read_is_refused(flt: str) -> None:
    with pytest.raises(FilterError):
        parse_filter(flt)
