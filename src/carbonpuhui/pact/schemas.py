"""PACT Technical Specifications v2.3 as msgspec Structs: ProductFootprint, its CloudEvents, errors.

Wire names are PACT's own camelCase. Decoding is for *import*: unknown properties (other
solutions' additions) are ignored, while required properties, types, patterns and the spec's
cross-property rules are enforced; ``__post_init__`` errors surface as ``msgspec.ValidationError``
with the path of the offending object.

PACT's ``Decimal`` is a JSON string of plain dotted-decimal digits. msgspec's own ``Decimal`` type
would also accept JSON numbers, exponents and "NaN", and encodes small values as "1E-7", so
decimals are kept here as pattern-checked ``str`` (exactly what travels); ``decimal.Decimal(s)``
reads one exactly, and :func:`plain_decimal` writes one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal, get_args

import msgspec
from msgspec import Meta, Struct

SPEC_VERSION = "2.3.0"

# "(?!\n)$": Python's "$" also matches before a final newline; this spelling means end-of-string
# in both Python and ECMA regexes.
_END = r"(?!\n)$"
DECIMAL_PATTERN = r"^[+-]?[0-9]+(\.[0-9]+)?" + _END
NON_NEGATIVE_DECIMAL_PATTERN = r"^\+?[0-9]+(\.[0-9]+)?" + _END
POSITIVE_DECIMAL_PATTERN = r"^\+?(0*[1-9][0-9]*(\.[0-9]+)?|0+\.[0-9]*[1-9][0-9]*)" + _END
NON_POSITIVE_DECIMAL_PATTERN = r"^(-[0-9]+(\.[0-9]+)?|0+(\.0+)?)" + _END
_PCHAR = r"(?:[A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})"
# RFC 8141: "urn:" NID ":" NSS, then optional ?+r, ?=q and #f components.
URN_PATTERN = (
    r"^[uU][rR][nN]:[A-Za-z0-9][A-Za-z0-9-]{0,30}[A-Za-z0-9]:" + _PCHAR + r"(?:" + _PCHAR + r"|/)*"
    r"(?:\?\+" + _PCHAR + r"(?:" + _PCHAR + r"|[/?])*)?"
    r"(?:\?=" + _PCHAR + r"(?:" + _PCHAR + r"|[/?])*)?"
    r"(?:#(?:" + _PCHAR + r"|[/?])*)?" + _END
)
COUNTRY_PATTERN = r"^[A-Z]{2}" + _END
SUBDIVISION_PATTERN = r"^[A-Z]{2}-[A-Z0-9]{1,3}" + _END
SPEC_VERSION_PATTERN = r"^2\.[0-9]+\.[0-9]+(-[0-9]{8})?" + _END  # any 2.x document is importable

PactDecimal = Annotated[str, Meta(pattern=DECIMAL_PATTERN, description="Dotted decimal as a JSON string")]
NonNegativeDecimal = Annotated[str, Meta(pattern=NON_NEGATIVE_DECIMAL_PATTERN)]
PositiveDecimal = Annotated[str, Meta(pattern=POSITIVE_DECIMAL_PATTERN)]
NonPositiveDecimal = Annotated[str, Meta(pattern=NON_POSITIVE_DECIMAL_PATTERN)]
Urn = Annotated[str, Meta(pattern=URN_PATTERN)]
NonEmptyString = Annotated[str, Meta(min_length=1)]
Percent = Annotated[float, Meta(ge=0, le=100)]
Dqr = Annotated[float, Meta(ge=1, le=3, description="Data quality rating, 1 = best, 3 = worst")]
UtcDateTime = Annotated[datetime, Meta(tz=True)]

Status = Literal["Active", "Deprecated"]
DeclaredUnit = Literal[
    "liter", "kilogram", "cubic meter", "kilowatt hour", "megajoule", "ton kilometer", "square meter"
]  # v2.3 has no "piece"; the spec announces it for v3
DECLARED_UNITS: tuple[str, ...] = get_args(DeclaredUnit)
CharacterizationFactors = Literal["AR5", "AR6"]
IpccSource = Annotated[str, Meta(pattern=r"^AR[0-9]+" + _END)]
LegacyCrossSectoralStandard = Literal["GHG Protocol Product standard", "ISO Standard 14067", "ISO Standard 14044"]
# crossSectoralStandards is an open set on import (the spec: "A host system MUST accept ... values
# that are not defined in this specification"); these are the values this platform writes, spelled
# as pact-openapi 2.3.0 and the conformance service spell them.
CROSS_SECTORAL_STANDARDS = ("ISO14067", "ISO14083", "ISO14040-44", "GHGP-Product", "PEF", "PACT-1.0", "PACT-2.0")
BIOGENIC_ACCOUNTING_METHODOLOGIES = ("PEF", "ISO", "GHGP", "Quantis")  # open set on import, too
RuleOperator = Literal["PEF", "EPD International", "Other"]
RegionOrSubregion = Literal[
    "Africa", "Americas", "Asia", "Europe", "Oceania", "Australia and New Zealand", "Central Asia",
    "Eastern Asia", "Eastern Europe", "Latin America and the Caribbean", "Melanesia", "Micronesia",
    "Northern Africa", "Northern America", "Northern Europe", "Polynesia", "South-eastern Asia",
    "Southern Asia", "Southern Europe", "Sub-Saharan Africa", "Western Asia", "Western Europe",
]
REGIONS_OR_SUBREGIONS: tuple[str, ...] = get_args(RegionOrSubregion)

# For reference periods that include the beginning of 2025 or later these "O*" properties MUST be
# defined (spec, CarbonFootprint table advisement), and every DataQualityIndicators member too.
O_STAR_PROPERTIES = (
    "pCfIncludingBiogenic", "dLucGhgEmissions", "landManagementGhgEmissions", "otherBiogenicGhgEmissions",
    "biogenicCarbonWithdrawal", "biogenicAccountingMethodology", "primaryDataShare", "dqi",
)
O_STAR_FROM = datetime(2025, 1, 1, tzinfo=UTC)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def plain_decimal(value: Decimal | int | str) -> str:
    """A PACT Decimal: plain digits, never exponent form; zero is "0" (so never "-0")."""
    d = value if isinstance(value, Decimal) else Decimal(value)
    if not d.is_finite():
        raise ValueError(f"{value!r} is not a finite decimal")
    return "0" if d == 0 else format(d, "f")


def _unique(values: Iterable[Any] | None, name: str) -> None:
    if values is None:
        return
    seen: list[Any] = []
    for v in values:
        if v in seen:
            raise ValueError(f"`{name}` must not contain duplicates ({v!r} repeats)")
        seen.append(v)


def _utc(value: datetime | None, name: str) -> None:
    if value is not None and value.utcoffset() != timedelta(0):
        raise ValueError(f"`{name}` must be in UTC, got offset {value.utcoffset()}")


def _pf_id(value: uuid.UUID, name: str) -> None:
    if value.version != 4 or value.variant != uuid.RFC_4122:
        raise ValueError(f"`{name}` must be a UUID v4 (RFC 9562), got {value}")


def add_years(moment: datetime, years: int) -> datetime:
    """``moment`` plus calendar years; 29 February becomes 28 February."""
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:
        return moment.replace(year=moment.year + years, day=28)


class _Pact(Struct, kw_only=True, frozen=True, omit_defaults=True, forbid_unknown_fields=False, rename=_camel):
    pass


class DataQualityIndicators(
    _Pact,
    kw_only=True,
    rename={"coverage_percent": "coveragePercent", "technological_dqr": "technologicalDQR",
            "temporal_dqr": "temporalDQR", "geographical_dqr": "geographicalDQR",
            "completeness_dqr": "completenessDQR", "reliability_dqr": "reliabilityDQR"},
):
    """Each member is optional until the reference period reaches 2025, then all are required
    (checked by :func:`missing_2025_properties`, which knows the period)."""

    coverage_percent: Percent | None = None
    technological_dqr: Dqr | None = None
    temporal_dqr: Dqr | None = None
    geographical_dqr: Dqr | None = None
    completeness_dqr: Dqr | None = None
    reliability_dqr: Dqr | None = None


_DQI_FIELDS = msgspec.structs.fields(DataQualityIndicators)
DQI_PROPERTIES = tuple(f.encode_name for f in _DQI_FIELDS)


class Assurance(_Pact, kw_only=True):
    assurance: bool
    coverage: Literal["corporate level", "product line", "PCF system", "product level"] | None = None
    level: Literal["limited", "reasonable"] | None = None
    boundary: Literal["Gate-to-Gate", "Cradle-to-Gate"] | None = None
    provider_name: NonEmptyString
    completed_at: UtcDateTime | None = None
    standard_name: str | None = None
    comments: str | None = None

    def __post_init__(self) -> None:
        _utc(self.completed_at, "completedAt")


class ProductOrSectorSpecificRule(_Pact, kw_only=True):
    operator: RuleOperator
    rule_names: Annotated[list[NonEmptyString], Meta(min_length=1)]
    other_operator_name: NonEmptyString | None = None

    def __post_init__(self) -> None:
        _unique(self.rule_names, "ruleNames")
        if self.operator == "Other" and self.other_operator_name is None:
            raise ValueError("`otherOperatorName` is required when `operator` is \"Other\"")
        if self.operator != "Other" and self.other_operator_name is not None:
            raise ValueError("`otherOperatorName` must be absent unless `operator` is \"Other\"")


class EmissionFactorDS(_Pact, kw_only=True):
    """A secondary emission-factor database and its version, e.g. ecoinvent 3.9.1."""

    name: NonEmptyString
    version: NonEmptyString


class DataModelExtension(_Pact, kw_only=True):
    spec_version: str
    data_schema: str
    documentation: str | None = None
    data: dict[str, Any]


class CarbonFootprint(_Pact, kw_only=True):
    declared_unit: DeclaredUnit
    unitary_product_amount: PositiveDecimal
    product_mass_per_declared_unit: NonNegativeDecimal | None = None
    p_cf_excluding_biogenic: NonNegativeDecimal
    p_cf_including_biogenic: PactDecimal | None = None
    fossil_ghg_emissions: NonNegativeDecimal
    fossil_carbon_content: NonNegativeDecimal
    biogenic_carbon_content: NonNegativeDecimal
    d_luc_ghg_emissions: NonNegativeDecimal | None = None
    land_management_ghg_emissions: PactDecimal | None = None  # signed: may include removals
    other_biogenic_ghg_emissions: NonNegativeDecimal | None = None
    i_luc_ghg_emissions: NonNegativeDecimal | None = None
    biogenic_carbon_withdrawal: NonPositiveDecimal | None = None
    aircraft_ghg_emissions: NonNegativeDecimal | None = None
    characterization_factors: CharacterizationFactors  # deprecated, still mandatory in v2.3
    ipcc_characterization_factors_sources: Annotated[list[IpccSource], Meta(min_length=1)]
    cross_sectoral_standards_used: Annotated[list[LegacyCrossSectoralStandard], Meta(min_length=1)]
    # Mandatory from specVersion 2.3 (ProductFootprint checks it; 2.2 documents lack it).
    cross_sectoral_standards: Annotated[list[NonEmptyString], Meta(min_length=1)] | None = None
    product_or_sector_specific_rules: list[ProductOrSectorSpecificRule] | None = None
    biogenic_accounting_methodology: NonEmptyString | None = None
    boundary_processes_description: str
    reference_period_start: UtcDateTime
    reference_period_end: UtcDateTime
    geography_country_subdivision: Annotated[str, Meta(pattern=SUBDIVISION_PATTERN)] | None = None
    geography_country: Annotated[str, Meta(pattern=COUNTRY_PATTERN)] | None = None
    geography_region_or_subregion: RegionOrSubregion | None = None
    secondary_emission_factor_sources: Annotated[list[EmissionFactorDS], Meta(min_length=1)] | None = None
    exempted_emissions_percent: Annotated[float, Meta(ge=0, le=5)]
    exempted_emissions_description: str
    packaging_emissions_included: bool
    packaging_ghg_emissions: NonNegativeDecimal | None = None
    allocation_rules_description: str | None = None
    uncertainty_assessment_description: str | None = None
    primary_data_share: Percent | None = None
    dqi: DataQualityIndicators | None = None
    assurance: Assurance | None = None

    def __post_init__(self) -> None:
        _utc(self.reference_period_start, "referencePeriodStart")
        _utc(self.reference_period_end, "referencePeriodEnd")
        if self.reference_period_start >= self.reference_period_end:
            raise ValueError("`referencePeriodStart` must be before `referencePeriodEnd`")
        geography = [name for name, v in (("geographyCountrySubdivision", self.geography_country_subdivision),
                                          ("geographyCountry", self.geography_country),
                                          ("geographyRegionOrSubregion", self.geography_region_or_subregion))
                     if v is not None]
        if len(geography) > 1:
            raise ValueError(f"at most one geographic scope may be defined, got {', '.join(geography)}")
        if not self.packaging_emissions_included and self.packaging_ghg_emissions is not None:
            raise ValueError("`packagingGhgEmissions` must be absent when `packagingEmissionsIncluded` is false")
        if self.primary_data_share is None and self.dqi is None:
            raise ValueError("at least one of `primaryDataShare` and `dqi` must be defined")
        _unique(self.ipcc_characterization_factors_sources, "ipccCharacterizationFactorsSources")
        _unique(self.cross_sectoral_standards_used, "crossSectoralStandardsUsed")
        _unique(self.cross_sectoral_standards, "crossSectoralStandards")
        _unique(self.product_or_sector_specific_rules, "productOrSectorSpecificRules")
        _unique(self.secondary_emission_factor_sources, "secondaryEmissionFactorSources")


class ProductFootprint(_Pact, kw_only=True):
    id: uuid.UUID
    spec_version: Annotated[str, Meta(pattern=SPEC_VERSION_PATTERN)]
    preceding_pf_ids: Annotated[list[uuid.UUID], Meta(min_length=1)] | None = None
    version: Annotated[int, Meta(ge=0, le=2**31 - 1)]
    created: UtcDateTime
    updated: UtcDateTime | None = None  # absent until the footprint is first updated
    status: Status
    status_comment: str | None = None
    validity_period_start: UtcDateTime | None = None
    validity_period_end: UtcDateTime | None = None
    company_name: NonEmptyString
    company_ids: Annotated[list[Urn], Meta(min_length=1)]
    product_description: str
    product_ids: Annotated[list[Urn], Meta(min_length=1)]
    product_category_cpc: NonEmptyString
    product_classifications: Annotated[list[Urn], Meta(min_length=1)] | None = None  # pact-openapi 2.3 only
    product_name_company: NonEmptyString
    comment: str
    pcf: CarbonFootprint
    extensions: Annotated[list[DataModelExtension], Meta(min_length=1)] | None = None

    def __post_init__(self) -> None:
        _pf_id(self.id, "id")
        for i, pid in enumerate(self.preceding_pf_ids or ()):
            _pf_id(pid, f"precedingPfIds[{i}]")
        _unique(self.preceding_pf_ids, "precedingPfIds")
        _unique(self.company_ids, "companyIds")
        _unique(self.product_ids, "productIds")
        _unique(self.product_classifications, "productClassifications")
        for name, value in (("created", self.created), ("updated", self.updated),
                            ("validityPeriodStart", self.validity_period_start),
                            ("validityPeriodEnd", self.validity_period_end)):
            _utc(value, name)
        minor = int(self.spec_version.split(".")[1])
        if minor >= 3 and self.pcf.cross_sectoral_standards is None:
            raise ValueError(f"`pcf.crossSectoralStandards` is required by specVersion {self.spec_version}")
        start, end = self.validity_period_start, self.validity_period_end
        if (start is None) != (end is None):
            raise ValueError("`validityPeriodStart` and `validityPeriodEnd` must be given together")
        if start is not None and end is not None:
            reference_end = self.pcf.reference_period_end
            if start < reference_end:
                raise ValueError("`validityPeriodStart` must not be before `pcf.referencePeriodEnd`")
            if end <= start:
                raise ValueError("`validityPeriodEnd` must be after `validityPeriodStart`")
            if end > add_years(reference_end, 3):
                raise ValueError("`validityPeriodEnd` must not be later than `pcf.referencePeriodEnd` + 3 years")


_PCF_FIELDS = msgspec.structs.fields(CarbonFootprint)


def reaches_2025(pcf: CarbonFootprint) -> bool:
    """Whether the (end-exclusive) reference period includes 2025-01-01T00:00Z or anything later."""
    return pcf.reference_period_end > O_STAR_FROM


def missing_2025_properties(pcf: CarbonFootprint) -> list[str]:
    """The properties PACT v2.3 requires for reference periods reaching 2025 that ``pcf`` lacks,
    as paths below ``pcf`` (e.g. ``"dqi.temporalDQR"``); empty for earlier periods."""
    if not reaches_2025(pcf):
        return []
    missing = [f.encode_name for f in _PCF_FIELDS
               if f.encode_name in O_STAR_PROPERTIES and getattr(pcf, f.name) is None]
    if pcf.dqi is not None:
        missing += [f"dqi.{f.encode_name}" for f in _DQI_FIELDS if getattr(pcf.dqi, f.name) is None]
    return missing


# --- Errors -------------------------------------------------------------------------------------

ErrorCode = Literal["AccessDenied", "BadRequest", "NoSuchFootprint", "NotImplemented", "TokenExpired", "InternalError"]
ERROR_HTTP_STATUS: dict[str, int] = {
    "AccessDenied": 403, "BadRequest": 400, "NoSuchFootprint": 404,
    "NotImplemented": 400, "TokenExpired": 401, "InternalError": 500,
}
# The spec's example messages (error codes table).
ERROR_MESSAGES: dict[str, str] = {
    "AccessDenied": "Access denied",
    "BadRequest": "Bad Request",
    "NoSuchFootprint": "The specified footprint does not exist.",
    "NotImplemented": "The specified Action or header you provided implies functionality that is not implemented",
    "TokenExpired": "The specified access token has expired",
    "InternalError": "An internal or unexpected error has occurred",
}


class ErrorResponse(Struct, kw_only=True, frozen=True):
    """The body of every PACT error response (``application/json``)."""

    code: ErrorCode
    message: str

    @classmethod
    def of(cls, code: ErrorCode, message: str | None = None) -> ErrorResponse:
        return cls(code=code, message=message if message is not None else ERROR_MESSAGES[code])

    @property
    def http_status(self) -> int:
        return ERROR_HTTP_STATUS[self.code]


# --- Events (CloudEvents 1.0, structured content mode) ---------------------------------------------

EVENT_REQUEST_CREATED = "org.wbcsd.pathfinder.ProductFootprintRequest.Created.v1"
EVENT_REQUEST_FULFILLED = "org.wbcsd.pathfinder.ProductFootprintRequest.Fulfilled.v1"
EVENT_REQUEST_REJECTED = "org.wbcsd.pathfinder.ProductFootprintRequest.Rejected.v1"
EVENT_PUBLISHED = "org.wbcsd.pathfinder.ProductFootprint.Published.v1"


# What ``pact_events.event_id`` holds: at most 200 characters, no NUL (PostgreSQL text cannot).
EventId = Annotated[str, Meta(min_length=1, max_length=200, pattern=r"^[^\x00]+$")]


class _CloudEvent(Struct, kw_only=True, frozen=True, omit_defaults=True, tag_field="type"):
    specversion: Literal["1.0"]
    id: EventId
    source: NonEmptyString
    time: UtcDateTime | None = None  # optional in CloudEvents and in the spec's response events


class ProductFootprintFragment(_Pact, kw_only=True):
    """A subset of ProductFootprint properties selecting what is requested. Everything is optional
    and unknown properties are kept out of the way (ignored), since the spec leaves processing of
    fragments to the data owner; values are typed loosely (``productIds`` as plain strings) so an
    odd request can still be answered with a Rejected event rather than a 400."""

    product_ids: list[str] | None = None
    company_ids: list[str] | None = None
    product_category_cpc: str | None = None
    reference_period_start: datetime | None = None
    reference_period_end: datetime | None = None
    geography_country: str | None = None
    geography_country_subdivision: str | None = None
    geography_region_or_subregion: str | None = None
    pcf: dict[str, Any] | None = None  # nested fragment of CarbonFootprint


class RequestCreatedData(_Pact, kw_only=True):
    # Optional so that the conformance service's test case 14.A (which sends ``data.productId`` and
    # no ``pf``) is accepted with 200 and then answered by a Rejected event, as that test expects.
    pf: ProductFootprintFragment | None = None
    comment: str | None = None


class ProductFootprintRequestCreated(_CloudEvent, kw_only=True, tag=EVENT_REQUEST_CREATED):
    data: RequestCreatedData


class RequestFulfilledData(_Pact, kw_only=True):
    request_event_id: NonEmptyString
    # Kept raw: the envelope decodes even when a footprint in it does not, and each footprint is
    # validated by :meth:`footprints` with its own index in the error path.
    pfs: list[msgspec.Raw]

    def footprints(self, *, require_2025_properties: bool = True) -> list[ProductFootprint]:
        out = []
        for i, raw in enumerate(self.pfs):
            try:
                out.append(decode_product_footprint(raw, require_2025_properties=require_2025_properties))
            except msgspec.ValidationError as exc:
                message, sep, path = str(exc).rpartition(" - at `$")
                raise msgspec.ValidationError(f"{message}{sep}.data.pfs[{i}]{path}" if sep else
                                              f"{exc} - at `$.data.pfs[{i}]`") from None
        return out


class ProductFootprintRequestFulfilled(_CloudEvent, kw_only=True, tag=EVENT_REQUEST_FULFILLED):
    data: RequestFulfilledData


class RejectionError(Struct, kw_only=True, frozen=True):
    # ``code`` is open on receipt: the conformance service's own example (test case 14.B) uses
    # "NotFound", which is not in the spec's table; we send only :data:`ErrorCode` values.
    code: NonEmptyString
    message: str


class RequestRejectedData(_Pact, kw_only=True):
    request_event_id: NonEmptyString
    error: RejectionError


class ProductFootprintRequestRejected(_CloudEvent, kw_only=True, tag=EVENT_REQUEST_REJECTED):
    data: RequestRejectedData


class PublishedData(_Pact, kw_only=True):
    # The spec says PfIds (UUIDs). Decoding accepts any non-empty strings so the receiver can tell
    # a malformed notification (conformance case 21: URNs -> 400) from a broken envelope.
    pf_ids: Annotated[list[NonEmptyString], Meta(min_length=1)]

    def pf_uuids(self) -> list[uuid.UUID]:
        out = []
        for value in self.pf_ids:
            try:
                out.append(uuid.UUID(value))
            except ValueError:
                continue
        return out


class ProductFootprintPublished(_CloudEvent, kw_only=True, tag=EVENT_PUBLISHED):
    data: PublishedData


PactEvent = (
    ProductFootprintRequestCreated | ProductFootprintRequestFulfilled | ProductFootprintRequestRejected
    | ProductFootprintPublished
)

_PF_DECODER = msgspec.json.Decoder(ProductFootprint)
_EVENT_DECODER = msgspec.json.Decoder(PactEvent)


def decode_product_footprint(raw: bytes | str, *, require_2025_properties: bool = True) -> ProductFootprint:
    """Decode and validate one ProductFootprint; errors are ``msgspec.ValidationError`` with a path."""
    pf = _PF_DECODER.decode(raw)
    if require_2025_properties:
        missing = missing_2025_properties(pf.pcf)
        if missing:
            raise msgspec.ValidationError(
                f"Object missing required field `{missing[0].split('.')[-1]}` (PACT v2.3 requires "
                f"{', '.join(missing)} for reference periods from 2025) - at "
                f"`$.pcf{'.dqi' if missing[0].startswith('dqi.') else ''}`")
    return pf


def decode_event(raw: bytes | str) -> PactEvent:
    """Decode a PACT v2 event by its ``type``; an unknown type is a ``ValidationError`` at ``$.type``."""
    return _EVENT_DECODER.decode(raw)


def _event_id_time(event_id: str | None, time: datetime | None) -> tuple[str, datetime]:
    return event_id or str(uuid.uuid4()), (time or datetime.now(UTC)).astimezone(UTC)


def fulfilled_event(*, request_event_id: str, pfs: Iterable[ProductFootprint], source: str,
                    event_id: str | None = None, time: datetime | None = None) -> ProductFootprintRequestFulfilled:
    """The PF Response Event answering request ``request_event_id`` (``pfs`` may be empty)."""
    eid, at = _event_id_time(event_id, time)
    data = RequestFulfilledData(request_event_id=request_event_id,
                                pfs=[msgspec.Raw(msgspec.json.encode(pf)) for pf in pfs])
    return ProductFootprintRequestFulfilled(specversion="1.0", id=eid, source=source, time=at, data=data)


def rejected_event(*, request_event_id: str, code: ErrorCode, source: str, message: str | None = None,
                   event_id: str | None = None, time: datetime | None = None) -> ProductFootprintRequestRejected:
    """The PF Response Error Event refusing request ``request_event_id``."""
    eid, at = _event_id_time(event_id, time)
    err = ErrorResponse.of(code, message)
    data = RequestRejectedData(request_event_id=request_event_id,
                               error=RejectionError(code=err.code, message=err.message))
    return ProductFootprintRequestRejected(specversion="1.0", id=eid, source=source, time=at, data=data)


def published_event(*, pf_ids: Iterable[uuid.UUID], source: str, event_id: str | None = None,
                    time: datetime | None = None) -> ProductFootprintPublished:
    """The PF Update Event announcing new or changed footprints."""
    eid, at = _event_id_time(event_id, time)
    return ProductFootprintPublished(specversion="1.0", id=eid, source=source, time=at,
                                     data=PublishedData(pf_ids=[str(p) for p in pf_ids]))
