"""PACT v2.3 export/import, checked against a JSON Schema transcribed from the specification.

The fixture schema is an independent oracle: it is written from the spec's tables, not generated
from the Structs, and the tests first show it rejects broken documents so that "valid against the
schema" means something.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from carbonpuhui.pact.export import (
    PACT_UNITS,
    PactSource,
    UnsupportedUnit,
    build_product_footprint,
    footprint_as_factor_fields,
    parse_product_footprint,
)
from carbonpuhui.pact.schemas import (
    EVENT_PUBLISHED,
    EVENT_REQUEST_FULFILLED,
    EVENT_REQUEST_REJECTED,
    CarbonFootprint,
    DataQualityIndicators,
    EmissionFactorDS,
    ErrorResponse,
    ProductFootprint,
    ProductFootprintPublished,
    ProductFootprintRequestCreated,
    ProductFootprintRequestFulfilled,
    ProductFootprintRequestRejected,
    ProductOrSectorSpecificRule,
    decode_event,
    fulfilled_event,
    plain_decimal,
    published_event,
    rejected_event,
)
from tests.pact_schema import SCHEMA, VALIDATOR

DQI = {"coveragePercent": Decimal("80"), "technologicalDQR": Decimal("1.5"), "temporalDQR": Decimal("1"),
       "geographicalDQR": Decimal("2"), "completenessDQR": Decimal("2.25"), "reliabilityDQR": Decimal("1.2")}


def source(**changes: Any) -> PactSource:
    base: dict[str, Any] = dict(
        id=uuid.UUID("9d3b5a1e-2f4c-4b7a-8e6d-1c2b3a4d5e6f"), version=1,
        created=datetime(2026, 2, 1, 8, 0, tzinfo=UTC), updated=None, status="Active", preceding_ids=[],
        company_name="Acme Steel Co.", company_ids=["urn:carbonpuhui:org:acme"],
        product_description="Hot-rolled coil, 2 mm", gtin14="04006381333931", product_category_cpc="41231",
        product_name_company="Acme HRC 2mm", comment="Computed by carbonpuhui",
        declared_unit="kilogram", unitary_product_amount=Decimal("1"), kgco2e_per_declared_unit=Decimal("2.1005"),
        gwp_basis="AR6", reference_period_start=datetime(2025, 1, 1, tzinfo=UTC),
        reference_period_end=datetime(2026, 1, 1, tzinfo=UTC), geography_country="CN-SD",
        boundary_description="Cradle to gate", cross_sectoral_standards=["ISO Standard 14067"],
        primary_data_share=Decimal("62.5"), dqi=dict(DQI),
    )
    base.update(changes)
    return PactSource(**base)


SOURCES = {
    "2025_tonne_subdivision_both_quality_metrics": source(
        declared_unit="tonne", kgco2e_per_declared_unit=Decimal("2100.5"), biogenic_carbon_content=Decimal("3"),
        fossil_carbon_content=Decimal("0.2")),
    "2024_calendar_year_country_share_only": source(
        reference_period_start=datetime(2024, 1, 1, tzinfo=UTC), reference_period_end=datetime(2025, 1, 1, tzinfo=UTC),
        geography_country="CN", dqi=None, primary_data_share=Decimal("40")),
    "2023_global_kwh_dqi_only_everything_optional": source(
        declared_unit="kWh", kgco2e_per_declared_unit=Decimal("0.5366"), gwp_basis="AR5",
        reference_period_start=datetime(2023, 1, 1, tzinfo=UTC), reference_period_end=datetime(2024, 1, 1, tzinfo=UTC),
        geography_country=None, primary_data_share=None, version=3, status="Deprecated",
        preceding_ids=[uuid.UUID("1b9e6f0c-3a2d-4c5e-9f8a-7b6c5d4e3f2a")],
        updated=datetime(2026, 3, 1, 16, 0, tzinfo=timezone(timedelta(hours=8))),
        validity_start=datetime(2024, 1, 1, tzinfo=UTC), validity_end=datetime(2026, 12, 31, tzinfo=UTC),
        cross_sectoral_standards=["ISO14067", "GHG Protocol Product standard", "ISO14083"],
        exempted_percent=Decimal("1.5"), exempted_description="Office waste", packaging_included=True,
        status_comment="Superseded by the 2024 grid factor",
        secondary_emission_factor_sources=[EmissionFactorDS(name="ecoinvent", version="3.9.1")],
        product_or_sector_specific_rules=[
            ProductOrSectorSpecificRule(operator="Other", rule_names=["GB/T 24067-2024"],
                                        other_operator_name="SAMR / SAC"),
            ProductOrSectorSpecificRule(operator="EPD International", rule_names=["PCR 2019:14"])],
        allocation_rules_description="Mass allocation", uncertainty_assessment_description="Monte Carlo, P5-P95"),
    "2025_litre_un_region_ghgp": source(
        declared_unit="litre", kgco2e_per_declared_unit=Decimal("0.85"), unitary_product_amount=Decimal("0.5"),
        geography_country="Eastern Asia", cross_sectoral_standards=["GHG Protocol Product standard"],
        product_mass_per_declared_unit=Decimal("0.92")),
}


def export(src: PactSource) -> dict[str, Any]:
    return json.loads(msgspec.json.encode(build_product_footprint(src)))


def schema_errors(doc: Any) -> list[str]:
    return sorted(e.json_path for e in VALIDATOR.iter_errors(doc))


# --- the fixture schema is strict -----------------------------------------------------------------


def test_fixture_is_a_draft_2020_12_schema_naming_its_source():
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "2.3.0" in SCHEMA["$comment"] and "data-exchange-protocol" in SCHEMA["$comment"]
    assert "piece" not in SCHEMA["$defs"]["DeclaredUnit"]["enum"]


def _set(doc: dict, path: str, value: Any) -> dict:
    out = copy.deepcopy(doc)
    *parents, last = path.split(".")
    target = out
    for p in parents:
        target = target[p]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value
    return out


_DELETE = object()
# (mutation path, new value, instance path the schema must report)
BROKEN = [
    ("comment", _DELETE, "$"),
    ("pcf.pCfExcludingBiogenic", _DELETE, "$.pcf"),
    ("pcf.crossSectoralStandards", _DELETE, "$.pcf"),
    ("pcf.pCfExcludingBiogenic", 2.1005, "$.pcf.pCfExcludingBiogenic"),
    ("pcf.pCfExcludingBiogenic", "2.1e0", "$.pcf.pCfExcludingBiogenic"),
    ("pcf.pCfExcludingBiogenic", "-1", "$.pcf.pCfExcludingBiogenic"),
    ("pcf.pCfExcludingBiogenic", "2.1\n", "$.pcf.pCfExcludingBiogenic"),
    ("pcf.unitaryProductAmount", "0.000", "$.pcf.unitaryProductAmount"),
    ("pcf.biogenicCarbonWithdrawal", "0.5", "$.pcf.biogenicCarbonWithdrawal"),
    ("productIds", ["gtin:04006381333931"], "$.productIds[0]"),
    ("companyIds", ["urn:acme"], "$.companyIds[0]"),
    ("companyIds", ["urn:carbonpuhui:org:acme", "urn:carbonpuhui:org:acme"], "$.companyIds"),
    ("productIds", [], "$.productIds"),
    ("pcf.declaredUnit", "piece", "$.pcf.declaredUnit"),
    ("status", "active", "$.status"),
    ("pcf.characterizationFactors", "AR4", "$.pcf.characterizationFactors"),
    ("pcf.crossSectoralStandardsUsed", ["ISO14067"], "$.pcf.crossSectoralStandardsUsed[0]"),
    ("pcf.exemptedEmissionsPercent", 6, "$.pcf.exemptedEmissionsPercent"),
    ("pcf.primaryDataShare", 100.5, "$.pcf.primaryDataShare"),
    ("pcf.dqi.temporalDQR", 3.5, "$.pcf.dqi.temporalDQR"),
    ("version", -1, "$.version"),
    ("id", "9d3b5a1e-2f4c-1b7a-8e6d-1c2b3a4d5e6f", "$.id"),  # a v1 UUID
    ("created", "2026-02-30T08:00:00Z", "$.created"),
    ("created", "2026-02-01T16:00:00+08:00", "$.created"),
    ("pcf.referencePeriodEnd", "2026-01-01", "$.pcf.referencePeriodEnd"),
    ("pcf.geographyCountry", "CN", "$.pcf"),  # besides geographyCountrySubdivision
    ("pcf.packagingGhgEmissions", "0.1", "$.pcf"),  # while packagingEmissionsIncluded is false
    ("pcf.dqi", _DELETE, "$.pcf"),  # 2025 reference period
    ("pcf.pCfIncludingBiogenic", _DELETE, "$.pcf"),  # 2025 reference period
    ("pcf.dqi.coveragePercent", _DELETE, "$.pcf.dqi"),  # 2025 reference period
    ("validityPeriodStart", "2026-01-01T00:00:00Z", "$"),  # without validityPeriodEnd
]


@pytest.mark.parametrize(("path", "value", "where"), BROKEN, ids=[f"{p}={v!r}"[:60] for p, v, _ in BROKEN])
def test_schema_and_parser_reject_broken_documents(path, value, where):
    good = export(SOURCES["2025_tonne_subdivision_both_quality_metrics"])
    assert schema_errors(good) == []
    bad = _set(good, path, value)
    assert where in schema_errors(bad)
    with pytest.raises(msgspec.ValidationError):  # the import parser is as strict
        parse_product_footprint(json.dumps(bad).encode())


def test_a_misspelt_property_is_caught():
    good = export(SOURCES["2025_tonne_subdivision_both_quality_metrics"])
    bad = copy.deepcopy(good)
    bad["pcf"]["pcfExcludingBiogenic"] = bad["pcf"].pop("pCfExcludingBiogenic")
    errors = list(VALIDATOR.iter_errors(bad))
    assert {e.validator for e in errors if e.json_path == "$.pcf"} >= {"required", "additionalProperties"}
    with pytest.raises(msgspec.ValidationError, match="pCfExcludingBiogenic"):
        parse_product_footprint(json.dumps(bad).encode())


def test_schema_2025_rule_starts_after_an_end_exclusive_2024_period():
    doc = export(SOURCES["2024_calendar_year_country_share_only"])
    assert doc["pcf"]["referencePeriodEnd"] == "2025-01-01T00:00:00Z"
    assert schema_errors(doc) == []
    assert "dqi" not in doc["pcf"] and "pCfIncludingBiogenic" not in doc["pcf"]
    later = _set(doc, "pcf.referencePeriodEnd", "2025-01-01T00:00:01Z")
    assert "$.pcf" in schema_errors(later)
    assert "$.pcf" in schema_errors(_set(doc, "pcf.primaryDataShare", _DELETE))  # neither metric


# --- exports validate -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SOURCES)
def test_exports_validate_against_the_spec_schema(name):
    doc = export(SOURCES[name])
    assert schema_errors(doc) == []
    assert doc["specVersion"] == "2.3.0"
    assert doc["productIds"] == [f"urn:gtin:{SOURCES[name].gtin14}"]
    assert doc["pcf"]["pCfExcludingBiogenic"] == doc["pcf"]["fossilGhgEmissions"]


def test_struct_field_names_are_the_schema_property_names():
    def names(struct: type) -> set[str]:
        return {f.encode_name for f in msgspec.structs.fields(struct)}

    assert names(ProductFootprint) == set(SCHEMA["properties"])
    assert names(CarbonFootprint) == set(SCHEMA["$defs"]["CarbonFootprint"]["properties"])
    assert names(DataQualityIndicators) == set(SCHEMA["$defs"]["DataQualityIndicators"]["properties"])
    assert {"pCfExcludingBiogenic", "dLucGhgEmissions", "iLucGhgEmissions",
            "ipccCharacterizationFactorsSources"} <= names(CarbonFootprint)


def test_optional_properties_are_omitted_not_null():
    doc = export(SOURCES["2024_calendar_year_country_share_only"])
    text = json.dumps(doc)
    assert "null" not in text
    assert "updated" not in doc and "precedingPfIds" not in doc and "validityPeriodStart" not in doc
    assert "productOrSectorSpecificRules" not in doc["pcf"]


def test_everything_optional_is_carried():
    doc = export(SOURCES["2023_global_kwh_dqi_only_everything_optional"])
    pcf = doc["pcf"]
    assert doc["updated"] == "2026-03-01T08:00:00Z"  # converted to UTC
    assert doc["precedingPfIds"] == ["1b9e6f0c-3a2d-4c5e-9f8a-7b6c5d4e3f2a"]
    assert doc["validityPeriodEnd"] == "2026-12-31T00:00:00Z"
    assert pcf["declaredUnit"] == "kilowatt hour" and pcf["productMassPerDeclaredUnit"] == "0"
    assert not {"geographyCountry", "geographyCountrySubdivision", "geographyRegionOrSubregion"} & set(pcf)
    assert pcf["crossSectoralStandards"] == ["ISO14067", "GHGP-Product", "ISO14083"]
    assert pcf["crossSectoralStandardsUsed"] == ["ISO Standard 14067", "GHG Protocol Product standard"]
    assert pcf["characterizationFactors"] == "AR5" and pcf["ipccCharacterizationFactorsSources"] == ["AR5"]
    assert pcf["productOrSectorSpecificRules"][0] == {
        "operator": "Other", "ruleNames": ["GB/T 24067-2024"], "otherOperatorName": "SAMR / SAC"}
    assert pcf["secondaryEmissionFactorSources"] == [{"name": "ecoinvent", "version": "3.9.1"}]
    assert pcf["dqi"]["completenessDQR"] == 2.25 and "primaryDataShare" not in pcf


def test_one_validity_bound_takes_the_spec_default_for_the_other():
    doc = export(source(validity_start=datetime(2026, 3, 1, tzinfo=UTC)))
    assert (doc["validityPeriodStart"], doc["validityPeriodEnd"]) == ("2026-03-01T00:00:00Z", "2029-01-01T00:00:00Z")
    doc = export(source(validity_end=datetime(2027, 1, 1, tzinfo=UTC)))
    assert (doc["validityPeriodStart"], doc["validityPeriodEnd"]) == ("2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z")
    assert schema_errors(doc) == []


def test_tonne_is_exported_as_kilogram_with_exact_rescaling():
    src = SOURCES["2025_tonne_subdivision_both_quality_metrics"]
    pcf = export(src)["pcf"]
    assert pcf["declaredUnit"] == "kilogram"
    assert Decimal(pcf["pCfExcludingBiogenic"]) * 1000 == src.kgco2e_per_declared_unit
    assert Decimal(pcf["fossilCarbonContent"]) * 1000 == src.fossil_carbon_content
    assert Decimal(pcf["unitaryProductAmount"]) == src.unitary_product_amount * 1000
    assert pcf["productMassPerDeclaredUnit"] == "1"


@pytest.mark.parametrize("kg_carbon", [Decimal("3"), Decimal("0.0123456789"), Decimal("7.1")])
def test_biogenic_withdrawal_is_44_12_of_the_carbon_never_overstated(kg_carbon):
    pcf = export(source(biogenic_carbon_content=kg_carbon))["pcf"]
    withdrawal = Fraction(pcf["biogenicCarbonWithdrawal"])
    exact = -Fraction(kg_carbon) * 44 / 12
    assert exact <= withdrawal <= 0 and withdrawal - exact < Fraction(1, 10**9)
    assert Fraction(pcf["pCfIncludingBiogenic"]) == Fraction(pcf["pCfExcludingBiogenic"]) + withdrawal
    assert {pcf[k] for k in ("dLucGhgEmissions", "landManagementGhgEmissions", "otherBiogenicGhgEmissions")} == {"0"}
    assert pcf["biogenicAccountingMethodology"] == "ISO"


# --- decimals ---------------------------------------------------------------------------------------

PLAIN = re.compile(r"-?[0-9]+(\.[0-9]+)?")


@pytest.mark.parametrize("value", [Decimal("1.2E-8"), Decimal("2.5E+3"), Decimal("1E+1"), Decimal("0E-7"),
                                   Decimal("-0"), Decimal("0.000001"), Decimal("123456789012345678901234567890")])
def test_exported_decimals_are_never_in_exponent_form(value):
    amount = abs(value) if value != 0 else Decimal("1E+1")
    pcf = export(source(kgco2e_per_declared_unit=abs(value), unitary_product_amount=amount))["pcf"]
    for key in ("pCfExcludingBiogenic", "fossilGhgEmissions", "unitaryProductAmount", "pCfIncludingBiogenic"):
        assert PLAIN.fullmatch(pcf[key]), pcf[key]
    assert Decimal(pcf["pCfExcludingBiogenic"]) == abs(value)
    assert Decimal(pcf["unitaryProductAmount"]) == amount


@given(st.decimals(min_value=-10**30, max_value=10**30, allow_nan=False, allow_infinity=False))
def test_plain_decimal_is_exact_and_plain(value):
    text = plain_decimal(value)
    assert PLAIN.fullmatch(text) and text != "-0"
    assert Decimal(text) == value


def test_plain_decimal_refuses_non_finite():
    for bad in ("NaN", "Infinity", "-Infinity"):
        with pytest.raises(ValueError):
            plain_decimal(Decimal(bad))


# --- round trip and import ------------------------------------------------------------------------


@pytest.mark.parametrize("name", SOURCES)
def test_export_parse_round_trip(name):
    pf = build_product_footprint(SOURCES[name])
    raw = msgspec.json.encode(pf)
    again = parse_product_footprint(raw)
    assert again == pf
    assert msgspec.json.encode(again) == raw


def test_parse_ignores_other_solutions_extensions_but_keeps_spec_ones():
    doc = export(SOURCES["2025_tonne_subdivision_both_quality_metrics"])
    doc["vendorScore"] = 7
    doc["pcf"]["x-vendor"] = {"anything": True}
    doc["extensions"] = [{"specVersion": "2.0.0", "dataSchema": "https://example.org/ext/1.0.0/data-model.json",
                          "data": {"shipmentId": "S1"}}]
    pf = parse_product_footprint(json.dumps(doc).encode())
    assert pf.extensions is not None and pf.extensions[0].data == {"shipmentId": "S1"}
    assert schema_errors(doc) == ["$", "$.pcf"]  # the schema itself is closed (additionalProperties)


def test_parse_accepts_a_2_2_document_that_the_2_3_schema_does_not():
    doc = export(SOURCES["2025_tonne_subdivision_both_quality_metrics"])
    doc["specVersion"] = "2.2.0"
    del doc["pcf"]["crossSectoralStandards"]  # introduced in 2.3
    assert parse_product_footprint(json.dumps(doc).encode()).spec_version == "2.2.0"
    assert schema_errors(doc)
    doc["specVersion"] = "2.3.0"
    with pytest.raises(msgspec.ValidationError, match="crossSectoralStandards"):
        parse_product_footprint(json.dumps(doc).encode())


@pytest.mark.parametrize(("path", "value", "message"), [
    ("pcf.pCfExcludingBiogenic", 2.1, r"Expected `str`, got `float` - at `\$\.pcf\.pCfExcludingBiogenic`"),
    ("version", _DELETE, r"missing required field `version`$"),  # the root has no path
    ("productIds", ["gtin:1"], r"- at `\$\.productIds\[0\]`"),
    ("pcf.dqi", _DELETE, r"`dqi`.* - at `\$\.pcf`"),
    ("pcf.dqi.reliabilityDQR", _DELETE, r"`reliabilityDQR`.* - at `\$\.pcf\.dqi`"),
    ("pcf.geographyCountry", "CN", r"at most one geographic scope.* - at `\$\.pcf`"),
])
def test_parse_errors_name_the_path(path, value, message):
    doc = _set(export(SOURCES["2025_tonne_subdivision_both_quality_metrics"]), path, value)
    with pytest.raises(msgspec.ValidationError, match=message):
        parse_product_footprint(json.dumps(doc).encode())


def test_parse_can_waive_the_2025_properties():
    doc = _set(export(SOURCES["2025_tonne_subdivision_both_quality_metrics"]), "pcf.dqi", _DELETE)
    pf = parse_product_footprint(json.dumps(doc).encode(), require_2025_properties=False)
    assert pf.pcf.dqi is None


# --- export refuses what PACT cannot say -------------------------------------------------------------


@pytest.mark.parametrize("unit", ["piece", "pair", "furlong"])
def test_units_pact_v2_3_cannot_express(unit):
    with pytest.raises(UnsupportedUnit) as info:
        build_product_footprint(source(declared_unit=unit))
    assert isinstance(info.value, ValueError) and info.value.unit == unit


def test_every_mapped_unit_is_a_v2_3_declared_unit():
    assert set(PACT_UNITS.values()) == set(SCHEMA["$defs"]["DeclaredUnit"]["enum"])
    assert "piece" not in PACT_UNITS


@pytest.mark.parametrize("changes", [
    {"primary_data_share": None, "dqi": None,
     "reference_period_start": datetime(2023, 1, 1, tzinfo=UTC), "reference_period_end": datetime(2024, 1, 1, tzinfo=UTC)},
    {"dqi": None},  # 2025: both are required
    {"primary_data_share": None},
    {"dqi": {k: v for k, v in DQI.items() if k != "temporalDQR"}},
    {"dqi": {**DQI, "temporalDQR": Decimal("4")}},
    {"gtin14": "04006381333932"},  # wrong check digit
    {"gtin14": "4006381333931"},
    {"company_ids": ["acme"]},
    {"company_ids": []},
    {"created": datetime(2026, 2, 1, 8, 0)},  # naive
    {"gwp_basis": "AR4"},
    {"status": "Retired"},
    {"cross_sectoral_standards": ["GB/T 24067"]},
    {"cross_sectoral_standards": ["ISO14083"]},  # nothing for the deprecated, mandatory list
    {"exempted_percent": Decimal("5.01")},
    {"kgco2e_per_declared_unit": Decimal("-1")},
    {"unitary_product_amount": Decimal("0")},
    {"geography_country": "XX"},
    {"geography_country": "Shandong"},
    {"reference_period_end": datetime(2025, 1, 1, tzinfo=UTC)},  # not after the start
    {"validity_start": datetime(2025, 6, 1, tzinfo=UTC), "validity_end": datetime(2027, 1, 1, tzinfo=UTC)},
    {"validity_start": datetime(2026, 1, 1, tzinfo=UTC), "validity_end": datetime(2029, 1, 2, tzinfo=UTC)},
    {"validity_start": datetime(2029, 1, 1, tzinfo=UTC)},  # the default end would not be after it
    {"id": uuid.UUID("9d3b5a1e-2f4c-1b7a-8e6d-1c2b3a4d5e6f")},
])
def test_sources_that_cannot_make_a_conforming_footprint(changes):
    with pytest.raises(ValueError):
        build_product_footprint(source(**changes))


# --- factor fields ------------------------------------------------------------------------------------


def test_footprint_as_factor_fields():
    src = SOURCES["2025_tonne_subdivision_both_quality_metrics"]
    pf = build_product_footprint(src)
    fields = footprint_as_factor_fields(pf)
    assert fields["kgco2e_per_unit"] == src.kgco2e_per_declared_unit / 1000 and fields["unit"] == "kilogram"
    assert fields["gwp_basis"] == "AR6" and fields["tier"] == "enterprise" and fields["region"] == "CN-SD"
    assert fields["product_id"] == "urn:gtin:04006381333931" and fields["company_name"] == "Acme Steel Co."
    assert fields["reference_period_start"] == src.reference_period_start
    assert fields["reference_period_end"] == src.reference_period_end
    # No validity period: valid for 3 years from the (exclusive) end of the reference period.
    assert fields["valid_from"] == date(2026, 1, 1) and fields["valid_to"] == date(2028, 12, 31)
    assert fields["source"] == f"PACT ProductFootprint {src.id} v1 from Acme Steel Co."


def test_factor_fields_of_an_imported_footprint():
    src = SOURCES["2023_global_kwh_dqi_only_everything_optional"]
    fields = footprint_as_factor_fields(parse_product_footprint(msgspec.json.encode(build_product_footprint(src))))
    assert fields["unit"] == "kWh" and fields["kgco2e_per_unit"] == Decimal("0.5366")
    assert fields["region"] == "GLO" and fields["status"] == "Deprecated" and fields["pf_version"] == 3
    assert fields["valid_from"] == date(2024, 1, 1) and fields["valid_to"] == date(2026, 12, 30)
    litre = footprint_as_factor_fields(build_product_footprint(SOURCES["2025_litre_un_region_ghgp"]))
    assert litre["unit"] == "litre" and litre["region"] is None


# --- events and errors (payloads shaped like the conformance test cases 12-15) -------------------------

TC12_CREATED = b"""{
  "specversion": "1.0", "id": "run-42-tc12", "source": "https://conformance.example/events",
  "time": "2024-11-05T09:00:00Z", "type": "org.wbcsd.pathfinder.ProductFootprintRequest.Created.v1",
  "data": {"pf": {"productIds": ["urn:gtin:04006381333931"]}, "comment": "Current PCF, please."}
}"""
# As the test-case document shows it: numbers for decimals, no version/comment/productCategoryCpc.
TC13_FULFILLED = b"""{
  "type": "org.wbcsd.pathfinder.ProductFootprintRequest.Fulfilled.v1", "specversion": "1.0",
  "id": "b7e1-response", "source": "https://solution.example/events", "time": "2024-11-05T09:05:00Z",
  "data": {"requestEventId": "run-42-tc12", "pfs": [{
    "id": "3f1c2b4a-5d6e-4f70-8a9b-0c1d2e3f4a5b", "specVersion": "2.2.0", "created": "2024-01-15T10:15:30Z",
    "status": "Active", "companyName": "Acme", "companyIds": ["urn:uuid:3f1c2b4a-5d6e-4f70-8a9b-0c1d2e3f4a5b"],
    "productDescription": "Renewable diesel", "productIds": ["urn:gtin:04006381333931"],
    "pcf": {"declaredUnit": "liter", "unitaryProductAmount": 1, "pCfExcludingBiogenic": 2.56,
            "fossilGhgEmissions": 2.56, "fossilCarbonContent": 0, "biogenicCarbonContent": 0,
            "characterizationFactors": "AR5", "ipccCharacterizationFactorsSources": "AR5",
            "crossSectoralStandardsUsed": ["GHG Protocol Product standard"],
            "boundaryProcessesDescription": "Cradle-to-gate", "referencePeriodStart": "2023-01-01T00:00:00Z",
            "referencePeriodEnd": "2023-12-31T23:59:59Z", "exemptedEmissionsPercent": 0,
            "exemptedEmissionsDescription": "None", "packagingEmissionsIncluded": false}}]}
}"""
TC14A_CREATED_WITHOUT_PF = b"""{
  "specversion": "1.0", "id": "run-42-tc14", "source": "https://conformance.example/events",
  "time": "2024-11-05T09:10:00Z", "type": "org.wbcsd.pathfinder.ProductFootprintRequest.Created.v1",
  "data": {"productId": ["urn:null"], "comment": "This one should be rejected."}
}"""
TC14B_REJECTED = b"""{
  "type": "org.wbcsd.pathfinder.ProductFootprintRequest.Rejected.v1", "specversion": "1.0",
  "id": "c9d2-response", "source": "https://solution.example/events", "time": "2024-11-05T09:11:00Z",
  "data": {"requestEventId": "run-42-tc14", "error": {"code": "NotFound", "message": "No such product."}}
}"""
TC15_PUBLISHED = b"""{
  "type": "org.wbcsd.pathfinder.ProductFootprint.Published.v1", "specversion": "1.0",
  "id": "5a6b7c8d-0000-4000-8000-000000000015", "source": "https://conformance.example/events",
  "time": "2024-11-05T09:20:00Z", "data": {"pfIds": ["urn:gtin:04006381333931"]}
}"""


def test_tc12_request_created():
    event = decode_event(TC12_CREATED)
    assert isinstance(event, ProductFootprintRequestCreated)
    assert event.data.pf is not None and event.data.pf.product_ids == ["urn:gtin:04006381333931"]
    assert event.data.comment == "Current PCF, please." and event.id == "run-42-tc12"
    assert event.time == datetime(2024, 11, 5, 9, 0, tzinfo=UTC)


def test_tc13_fulfilled_envelope_decodes_and_its_sample_footprint_is_not_v2_3_valid():
    event = decode_event(TC13_FULFILLED)
    assert isinstance(event, ProductFootprintRequestFulfilled)
    assert event.data.request_event_id == "run-42-tc12" and len(event.data.pfs) == 1
    with pytest.raises(msgspec.ValidationError, match=r"at `\$\.data\.pfs\[0\]"):
        event.data.footprints()


def test_tc13_fulfilled_event_we_send_round_trips():
    pf = build_product_footprint(SOURCES["2025_tonne_subdivision_both_quality_metrics"])
    event = fulfilled_event(request_event_id="run-42-tc12", pfs=[pf], source="https://carbonpuhui.example/2/events")
    raw = msgspec.json.encode(event)
    doc = json.loads(raw)
    assert doc["type"] == EVENT_REQUEST_FULFILLED and doc["specversion"] == "1.0" and doc["time"].endswith("Z")
    assert doc["data"]["requestEventId"] == "run-42-tc12"
    assert schema_errors(doc["data"]["pfs"][0]) == []
    again = decode_event(raw)
    assert isinstance(again, ProductFootprintRequestFulfilled) and again.data.footprints() == [pf]


def test_tc14_created_without_pf_is_accepted_and_rejected_events_decode():
    created = decode_event(TC14A_CREATED_WITHOUT_PF)
    assert isinstance(created, ProductFootprintRequestCreated) and created.data.pf is None
    rejected = decode_event(TC14B_REJECTED)
    assert isinstance(rejected, ProductFootprintRequestRejected)
    assert (rejected.data.request_event_id, rejected.data.error.code) == ("run-42-tc14", "NotFound")
    ours = json.loads(msgspec.json.encode(rejected_event(
        request_event_id=created.id, code="NoSuchFootprint", source="https://carbonpuhui.example/2/events")))
    assert ours["type"] == EVENT_REQUEST_REJECTED
    assert ours["data"] == {"requestEventId": "run-42-tc14",
                            "error": {"code": "NoSuchFootprint", "message": "The specified footprint does not exist."}}


def test_tc15_published():
    event = decode_event(TC15_PUBLISHED)
    assert isinstance(event, ProductFootprintPublished)
    assert event.data.pf_ids == ["urn:gtin:04006381333931"] and event.data.pf_uuids() == []
    pf_id = uuid.UUID("9d3b5a1e-2f4c-4b7a-8e6d-1c2b3a4d5e6f")
    ours = msgspec.json.encode(published_event(pf_ids=[pf_id], source="https://carbonpuhui.example/2/events"))
    assert json.loads(ours)["type"] == EVENT_PUBLISHED
    back = decode_event(ours)
    assert isinstance(back, ProductFootprintPublished) and back.data.pf_uuids() == [pf_id]


@pytest.mark.parametrize("raw", [
    b'{"type": "org.example.Other.v1", "specversion": "1.0", "id": "1", "source": "s", "data": {}}',
    b'{"type": "org.wbcsd.pathfinder.ProductFootprint.Published.v1", "specversion": "1.0", "id": "1",'
    b' "source": "s", "data": {"pfIds": []}}',
    b'{"type": "org.wbcsd.pathfinder.ProductFootprint.Published.v1", "specversion": "0.3", "id": "1",'
    b' "source": "s", "data": {"pfIds": ["x"]}}',
    b'{"type": "org.wbcsd.pathfinder.ProductFootprintRequest.Rejected.v1", "specversion": "1.0", "id": "1",'
    b' "source": "s", "data": {"requestEventId": "r"}}',
])
def test_malformed_events_are_refused(raw):
    with pytest.raises(msgspec.ValidationError):
        decode_event(raw)


def test_error_responses():
    codes = {"BadRequest": 400, "AccessDenied": 403, "TokenExpired": 401, "NoSuchFootprint": 404,
             "NotImplemented": 400, "InternalError": 500}
    for code, status in codes.items():
        err = ErrorResponse.of(code)
        assert err.http_status == status and err.message
        assert set(json.loads(msgspec.json.encode(err))) == {"code", "message"}
    assert msgspec.json.decode(b'{"code": "AccessDenied", "message": "no"}', type=ErrorResponse).code == "AccessDenied"
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"code": "NotFound", "message": "no"}', type=ErrorResponse)
