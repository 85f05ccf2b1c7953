"""Platform footprint -> PACT v2.3 ProductFootprint (export), and PACT -> factor fields (import).

Pure code: the caller gathers a :class:`PactSource` from wherever footprints live.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal, localcontext
from typing import Any

import msgspec
import pycountry

from carbonpuhui.pact.schemas import (
    BIOGENIC_ACCOUNTING_METHODOLOGIES,
    CROSS_SECTORAL_STANDARDS,
    DQI_PROPERTIES,
    O_STAR_FROM,
    REGIONS_OR_SUBREGIONS,
    SPEC_VERSION,
    URN_PATTERN,
    CarbonFootprint,
    DataQualityIndicators,
    EmissionFactorDS,
    ProductFootprint,
    ProductOrSectorSpecificRule,
    add_years,
    decode_product_footprint,
    plain_decimal,
)


class UnsupportedUnit(ValueError):
    """The platform's declared unit has no PACT v2.3 ``declaredUnit`` (e.g. piece: v3 only)."""

    def __init__(self, unit: str) -> None:
        super().__init__(f"PACT v2.3 has no declared unit for {unit!r}; it knows "
                         f"{', '.join(sorted(PACT_UNITS))} (piece arrives in PACT v3)")
        self.unit = unit


# Platform unit word -> PACT declaredUnit. Tonne and GJ are exported as kilogram and megajoule with
# every per-declared-unit value rescaled (see _UNIT_DECADES); piece and pair have no v2.3 unit.
PACT_UNITS: dict[str, str] = {
    "kilogram": "kilogram", "kg": "kilogram", "tonne": "kilogram", "t": "kilogram",
    "litre": "liter", "liter": "liter", "L": "liter",
    "m³": "cubic meter", "m3": "cubic meter",
    "m²": "square meter", "m2": "square meter",
    "kWh": "kilowatt hour",
    "MJ": "megajoule", "GJ": "megajoule",
    "t·km": "ton kilometer", "tkm": "ton kilometer",
}
# 1 platform unit = 10**n PACT units; powers of ten so rescaling is exact (Decimal.scaleb).
_UNIT_DECADES: dict[str, int] = {"tonne": 3, "t": 3, "GJ": 3}
# PACT declaredUnit -> the platform's canonical word (for import).
PLATFORM_UNITS: dict[str, str] = {
    "kilogram": "kilogram", "liter": "litre", "cubic meter": "m³", "square meter": "m²",
    "kilowatt hour": "kWh", "megajoule": "MJ", "ton kilometer": "t·km",
}
# productMassPerDeclaredUnit the spec prescribes: 1 for kilogram, 0 where mass is irrelevant
# (energy, logistics); other units need the product's own density or areal mass.
_DEFAULT_MASS = {"kilogram": Decimal(1), "kilowatt hour": Decimal(0), "megajoule": Decimal(0),
                 "ton kilometer": Decimal(0)}

# Accepted spellings -> the crossSectoralStandards value written, and its deprecated
# crossSectoralStandardsUsed counterpart (None: the deprecated enum has none).
_STANDARDS: dict[str, tuple[str, str | None]] = {
    "ISO Standard 14067": ("ISO14067", "ISO Standard 14067"),
    "ISO Standard 14044": ("ISO14040-44", "ISO Standard 14044"),
    "GHG Protocol Product standard": ("GHGP-Product", "GHG Protocol Product standard"),
    "ISO14067": ("ISO14067", "ISO Standard 14067"),
    "ISO14040-44": ("ISO14040-44", "ISO Standard 14044"),
    "GHGP-Product": ("GHGP-Product", "GHG Protocol Product standard"),
    "GHGP Product": ("GHGP-Product", "GHG Protocol Product standard"),
    "ISO14083": ("ISO14083", None),
    "PEF": ("PEF", None),
    "PACT-1.0": ("PACT-1.0", None),
    "PACT-2.0": ("PACT-2.0", None),
    "PACT Methodology 1.0": ("PACT-1.0", None),
    "PACT Methodology 2.0": ("PACT-2.0", None),
}
assert {v for v, _ in _STANDARDS.values()} <= set(CROSS_SECTORAL_STANDARDS)
# Which biogenic accounting methodology a cross-sectoral standard implies, in order of preference.
_BIOGENIC_BY_STANDARD = (("ISO14067", "ISO"), ("GHGP-Product", "GHGP"), ("PEF", "PEF"))

_URN = re.compile(URN_PATTERN)
_COUNTRY = re.compile(r"[A-Z]{2}")
_SUBDIVISION = re.compile(r"[A-Z]{2}-[A-Z0-9]{1,3}")
_CPC = re.compile(r"[0-9]{1,5}")


class PactSource(msgspec.Struct, kw_only=True, frozen=True):
    """What the platform knows about one footprint version, in its own terms."""

    id: uuid.UUID
    version: int
    created: datetime
    updated: datetime | None
    status: str  # "Active" | "Deprecated"
    preceding_ids: list[uuid.UUID]
    company_name: str
    company_ids: list[str]  # URNs, e.g. "urn:carbonpuhui:org:acme"
    product_description: str
    gtin14: str  # -> productIds ["urn:gtin:<14 digits>"]
    product_category_cpc: str
    product_name_company: str
    comment: str
    declared_unit: str  # platform unit word; see PACT_UNITS
    unitary_product_amount: Decimal
    kgco2e_per_declared_unit: Decimal  # -> pCfExcludingBiogenic and fossilGhgEmissions (all fossil)
    fossil_carbon_content: Decimal = Decimal(0)
    biogenic_carbon_content: Decimal = Decimal(0)
    gwp_basis: str  # "AR5" | "AR6"
    reference_period_start: datetime
    reference_period_end: datetime
    geography_country: str | None  # "CN", "CN-SD", a UN region name, or None / "GLO" for global
    boundary_description: str
    cross_sectoral_standards: list[str]  # e.g. ["ISO Standard 14067"]
    exempted_percent: Decimal = Decimal(0)
    exempted_description: str = ""
    packaging_included: bool = False
    primary_data_share: Decimal | None  # percent 0..100
    dqi: dict[str, Decimal] | None  # all of DQI_PROPERTIES
    validity_start: datetime | None = None  # either alone: the other is the spec's default
    validity_end: datetime | None = None
    # Optional extras PACT can carry.
    status_comment: str | None = None
    secondary_emission_factor_sources: list[EmissionFactorDS] = msgspec.field(default_factory=list)
    product_or_sector_specific_rules: list[ProductOrSectorSpecificRule] = msgspec.field(default_factory=list)
    biogenic_accounting_methodology: str | None = None  # default derived from the standards
    product_mass_per_declared_unit: Decimal | None = None  # kg per platform declared unit
    allocation_rules_description: str | None = None
    uncertainty_assessment_description: str | None = None


def _bad(field: str, why: str) -> ValueError:
    return ValueError(f"{field}: {why}")


def _utc(value: datetime, field: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise _bad(field, "must be timezone-aware (PACT timestamps are UTC)")
    return value.astimezone(UTC)


def _finite(value: Decimal, field: str, *, minimum: Decimal | None = None, maximum: Decimal | None = None,
            strict_minimum: bool = False) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise _bad(field, f"must be a finite Decimal, got {value!r}")
    if minimum is not None and (value <= minimum if strict_minimum else value < minimum):
        raise _bad(field, f"must be {'>' if strict_minimum else '>='} {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise _bad(field, f"must be <= {maximum}, got {value}")
    return value


def gtin_check_digit_ok(gtin14: str) -> bool:
    """GS1 mod-10: weights 3,1,3,... from the digit left of the check digit."""
    body, check = gtin14[:-1], int(gtin14[-1])
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == check


def _geography(value: str | None) -> dict[str, str]:
    if value is None or value == "GLO":
        return {}
    if _COUNTRY.fullmatch(value):
        if pycountry.countries.get(alpha_2=value) is None:
            raise _bad("geography_country", f"{value!r} is not an ISO 3166-1 alpha-2 code")
        return {"geography_country": value}
    if _SUBDIVISION.fullmatch(value):
        if pycountry.subdivisions.get(code=value) is None:
            raise _bad("geography_country", f"{value!r} is not an ISO 3166-2 subdivision code")
        return {"geography_country_subdivision": value}
    if value in REGIONS_OR_SUBREGIONS:
        return {"geography_region_or_subregion": value}
    raise _bad("geography_country", f"{value!r} is neither ISO 3166-1/-2 nor a UN M49 region name")


def _standards(values: list[str]) -> tuple[list[str], list[str]]:
    current: list[str] = []
    legacy: list[str] = []
    for value in values:
        if value not in _STANDARDS:
            raise _bad("cross_sectoral_standards", f"{value!r} is not a PACT v2.3 cross-sectoral standard; "
                       f"use one of {', '.join(sorted(_STANDARDS))}")
        new, old = _STANDARDS[value]
        if new not in current:
            current.append(new)
        if old is not None and old not in legacy:
            legacy.append(old)
    if not current:
        raise _bad("cross_sectoral_standards", "at least one standard is required")
    if not legacy:
        # crossSectoralStandardsUsed (deprecated, still mandatory) only knows these three.
        raise _bad("cross_sectoral_standards", "PACT v2.3 also needs one of ISO 14067, ISO 14044 or the GHG "
                   "Protocol Product standard for the deprecated crossSectoralStandardsUsed")
    return current, legacy


def _dqi(values: dict[str, Decimal]) -> DataQualityIndicators:
    if set(values) != set(DQI_PROPERTIES):
        raise _bad("dqi", f"needs exactly the keys {', '.join(DQI_PROPERTIES)}, got {', '.join(sorted(values))}")
    args: dict[str, float] = {}
    for field in msgspec.structs.fields(DataQualityIndicators):
        v = values[field.encode_name]
        if field.encode_name == "coveragePercent":
            _finite(v, "dqi.coveragePercent", minimum=Decimal(0), maximum=Decimal(100))
        else:
            _finite(v, f"dqi.{field.encode_name}", minimum=Decimal(1), maximum=Decimal(3))
        args[field.name] = float(v)
    return DataQualityIndicators(**args)


def _co2_of_carbon(kg_carbon: Decimal) -> Decimal:
    """kg C -> kg CO2 (44/12), rounded toward zero at 1e-9 so a removal is never overstated."""
    with localcontext() as ctx:
        ctx.prec = 60
        return (kg_carbon * 11 / 3).quantize(Decimal("1e-9"), rounding=ROUND_DOWN).normalize()


def build_product_footprint(src: PactSource) -> ProductFootprint:
    """The PACT v2.3 ProductFootprint for ``src``; ``ValueError`` (or ``UnsupportedUnit``) when the
    source cannot make a conforming one. The result is re-decoded before it is returned, so every
    pattern and bound of the data model has been checked."""
    if src.declared_unit not in PACT_UNITS:
        raise UnsupportedUnit(src.declared_unit)
    unit = PACT_UNITS[src.declared_unit]
    decades = _UNIT_DECADES.get(src.declared_unit, 0)

    def per_unit(value: Decimal) -> str:  # a per-platform-unit value, per PACT unit
        return plain_decimal(value.scaleb(-decades))

    if src.status not in ("Active", "Deprecated"):
        raise _bad("status", f"must be Active or Deprecated, got {src.status!r}")
    if not 0 <= src.version <= 2**31 - 1:
        raise _bad("version", f"must be in 0..2^31-1, got {src.version}")
    for name, value in (("id", src.id), *((f"preceding_ids[{i}]", p) for i, p in enumerate(src.preceding_ids))):
        if value.version != 4:
            raise _bad(name, f"PACT footprint ids are UUID v4, got version {value.version}")
    if not src.company_name.strip():
        raise _bad("company_name", "must not be empty")
    if not src.company_ids or not all(_URN.search(c) for c in src.company_ids):
        raise _bad("company_ids", f"must be a non-empty list of URNs, got {src.company_ids!r}")
    if not (len(src.gtin14) == 14 and src.gtin14.isascii() and src.gtin14.isdigit()
            and gtin_check_digit_ok(src.gtin14)):
        raise _bad("gtin14", f"must be 14 digits with a valid GS1 check digit, got {src.gtin14!r}")
    if not _CPC.fullmatch(src.product_category_cpc):
        raise _bad("product_category_cpc", f"must be a UN CPC code (1-5 digits), got {src.product_category_cpc!r}")
    if not src.product_name_company.strip():
        raise _bad("product_name_company", "must not be empty")
    if src.gwp_basis not in ("AR5", "AR6"):
        raise _bad("gwp_basis", f"PACT v2.3 characterizationFactors are AR5 or AR6, got {src.gwp_basis!r}")

    zero = Decimal(0)
    amount = _finite(src.unitary_product_amount, "unitary_product_amount", minimum=zero, strict_minimum=True)
    kgco2e = _finite(src.kgco2e_per_declared_unit, "kgco2e_per_declared_unit", minimum=zero)
    fossil_c = _finite(src.fossil_carbon_content, "fossil_carbon_content", minimum=zero)
    biogenic_c = _finite(src.biogenic_carbon_content, "biogenic_carbon_content", minimum=zero)
    exempted = _finite(src.exempted_percent, "exempted_percent", minimum=zero, maximum=Decimal(5))
    start = _utc(src.reference_period_start, "reference_period_start")
    end = _utc(src.reference_period_end, "reference_period_end")
    if start >= end:
        raise _bad("reference_period_start", "must be before reference_period_end")
    current, legacy = _standards(src.cross_sectoral_standards)

    share = None
    if src.primary_data_share is not None:
        share = float(_finite(src.primary_data_share, "primary_data_share", minimum=zero, maximum=Decimal(100)))
    dqi = _dqi(src.dqi) if src.dqi is not None else None
    from_2025 = end > O_STAR_FROM
    if from_2025 and (share is None or dqi is None):
        raise _bad("primary_data_share", "PACT v2.3 requires both primary_data_share and dqi for reference "
                   "periods from 2025")
    if share is None and dqi is None:
        raise _bad("primary_data_share", "PACT v2.3 requires primary_data_share or dqi (or both)")

    mass = (src.product_mass_per_declared_unit.scaleb(-decades)
            if src.product_mass_per_declared_unit is not None else _DEFAULT_MASS.get(unit))
    if mass is not None:
        _finite(mass, "product_mass_per_declared_unit", minimum=zero)

    biogenic: dict[str, Any] = {}
    if from_2025:
        # Required from 2025. The platform's footprint is all fossil, so the biogenic and land-use
        # emissions are zero; only the biogenic carbon bound in the product counts, as a removal.
        methodology = src.biogenic_accounting_methodology or next(
            (m for std, m in _BIOGENIC_BY_STANDARD if std in current), None)
        if methodology not in BIOGENIC_ACCOUNTING_METHODOLOGIES:
            raise _bad("biogenic_accounting_methodology", f"needed from 2025 (one of "
                       f"{', '.join(BIOGENIC_ACCOUNTING_METHODOLOGIES)}), got {methodology!r}")
        withdrawal = -_co2_of_carbon(biogenic_c.scaleb(-decades))
        with localcontext() as ctx:
            ctx.prec = 60
            including = kgco2e.scaleb(-decades) + withdrawal
        biogenic = {
            "p_cf_including_biogenic": plain_decimal(including),
            "d_luc_ghg_emissions": "0",
            "land_management_ghg_emissions": "0",
            "other_biogenic_ghg_emissions": "0",
            "biogenic_carbon_withdrawal": plain_decimal(withdrawal),
            "biogenic_accounting_methodology": methodology,
        }

    validity: dict[str, datetime] = {}
    if src.validity_start is not None or src.validity_end is not None:
        # PACT defines both or neither; a missing bound takes the spec's default validity period
        # (3 years from the end of the reference period).
        v_start = _utc(src.validity_start, "validity_start") if src.validity_start is not None else end
        v_end = _utc(src.validity_end, "validity_end") if src.validity_end is not None else add_years(end, 3)
        if v_start < end or v_end <= v_start or v_end > add_years(end, 3):
            raise _bad("validity_start", "PACT needs reference_period_end <= validity_start < validity_end "
                       "<= reference_period_end + 3 years")
        validity = {"validity_period_start": v_start, "validity_period_end": v_end}

    pcf = CarbonFootprint(
        declared_unit=unit,
        unitary_product_amount=plain_decimal(amount.scaleb(decades)),
        product_mass_per_declared_unit=plain_decimal(mass) if mass is not None else None,
        p_cf_excluding_biogenic=per_unit(kgco2e),
        fossil_ghg_emissions=per_unit(kgco2e),
        fossil_carbon_content=per_unit(fossil_c),
        biogenic_carbon_content=per_unit(biogenic_c),
        characterization_factors=src.gwp_basis,
        ipcc_characterization_factors_sources=[src.gwp_basis],
        cross_sectoral_standards_used=legacy,
        cross_sectoral_standards=current,
        product_or_sector_specific_rules=list(src.product_or_sector_specific_rules) or None,
        boundary_processes_description=src.boundary_description,
        reference_period_start=start,
        reference_period_end=end,
        secondary_emission_factor_sources=list(src.secondary_emission_factor_sources) or None,
        exempted_emissions_percent=float(exempted),
        exempted_emissions_description=src.exempted_description,
        packaging_emissions_included=src.packaging_included,
        allocation_rules_description=src.allocation_rules_description,
        uncertainty_assessment_description=src.uncertainty_assessment_description,
        primary_data_share=share,
        dqi=dqi,
        **biogenic,
        **_geography(src.geography_country),
    )
    pf = ProductFootprint(
        id=src.id,
        spec_version=SPEC_VERSION,
        preceding_pf_ids=list(src.preceding_ids) or None,
        version=src.version,
        created=_utc(src.created, "created"),
        updated=_utc(src.updated, "updated") if src.updated is not None else None,
        status=src.status,
        status_comment=src.status_comment,
        company_name=src.company_name,
        company_ids=list(src.company_ids),
        product_description=src.product_description,
        product_ids=[f"urn:gtin:{src.gtin14}"],
        product_category_cpc=src.product_category_cpc,
        product_name_company=src.product_name_company,
        comment=src.comment,
        pcf=pcf,
        **validity,
    )
    # Struct construction does not check Meta constraints (patterns, bounds); decoding does.
    try:
        return decode_product_footprint(msgspec.json.encode(pf))
    except msgspec.ValidationError as exc:
        raise ValueError(f"export does not conform to PACT v2.3: {exc}") from exc


def parse_product_footprint(raw: bytes, *, require_2025_properties: bool = True) -> ProductFootprint:
    """Import one PACT ProductFootprint (JSON). Unknown properties are ignored; anything the spec
    requires that is missing or malformed raises ``msgspec.ValidationError`` naming its path."""
    return decode_product_footprint(raw, require_2025_properties=require_2025_properties)


def footprint_as_factor_fields(pf: ProductFootprint) -> dict[str, Any]:
    """What an enterprise-tier emission factor takes from a PACT footprint: the PCF (excluding
    biogenic CO2) per declared unit, in platform units, with its provenance and validity."""
    pcf = pf.pcf
    gtins = [p for p in pf.product_ids if p.lower().startswith("urn:gtin:")]
    region = pcf.geography_country_subdivision or pcf.geography_country
    if region is None and pcf.geography_region_or_subregion is None:
        region = "GLO"  # no geographic scope = global
    if pf.validity_period_start is not None and pf.validity_period_end is not None:
        valid_start, valid_end = pf.validity_period_start, pf.validity_period_end
    else:  # the spec's default: 3 years from the end of the reference period
        valid_start, valid_end = pcf.reference_period_end, add_years(pcf.reference_period_end, 3)
    return {
        "kgco2e_per_unit": Decimal(pcf.p_cf_excluding_biogenic),
        "unit": PLATFORM_UNITS[pcf.declared_unit],
        "gwp_basis": pcf.characterization_factors,
        "tier": "enterprise",
        "region": region,  # None for a UN region, which has no ISO code
        "product_id": (gtins or pf.product_ids)[0],
        "product_ids": list(pf.product_ids),
        "company_name": pf.company_name,
        "company_ids": list(pf.company_ids),
        "reference_period_start": pcf.reference_period_start,
        "reference_period_end": pcf.reference_period_end,
        "valid_from": valid_start.astimezone(UTC).date(),
        # PACT's end is exclusive; a factor's valid_to is the last valid day.
        "valid_to": _last_day(valid_end),
        "status": pf.status,
        "pf_id": pf.id,
        "pf_version": pf.version,
        "source": f"PACT ProductFootprint {pf.id} v{pf.version} from {pf.company_name}",
    }


def _last_day(exclusive_end: datetime) -> date:
    return (exclusive_end.astimezone(UTC) - timedelta(microseconds=1)).date()
