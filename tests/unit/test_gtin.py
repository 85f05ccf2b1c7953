"""GTINs: every length normalises to the same 14 digits; the check digit is checked against an
independent implementation of the GS1 mod-10 rule (GS1 General Specifications, 7.9.1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbonpuhui.footprints.gtin import InvalidGTIN, gtin_urn, normalise_gtin


def gs1_check_digit(body: str) -> str:
    """The oracle: weights 3, 1, 3, 1, ... from the rightmost digit of the body; the check digit
    brings the weighted sum up to a multiple of ten."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return str((10 - total % 10) % 10)


def code_of(text: str) -> str:
    with pytest.raises(InvalidGTIN) as info:
        normalise_gtin(text)
    assert str(info.value) == info.value.code
    return info.value.code


# Published examples: GS1's check digit calculator (GTIN-13 629104150021 -> 3); the UPC-A, EAN-8
# and EAN-13 of Wikipedia's "Universal Product Code", "EAN-8" and "International Article Number"
# articles; the GTIN-14 of the EPC Tag Data Standard (sgtin 0614141.812345 -> 80614141123458).
PUBLISHED = ["6291041500213", "036000291452", "96385074", "80614141123458", "4006381333931"]


@pytest.mark.parametrize("gtin", PUBLISHED)
def test_published_examples_pass_the_oracle_and_normalise(gtin):
    assert gs1_check_digit(gtin[:-1]) == gtin[-1]  # the oracle agrees with the published digit
    out = normalise_gtin(gtin)
    assert out == "0" * (14 - len(gtin)) + gtin
    assert len(out) == 14


def test_every_length_of_one_gtin_is_the_same_14_digits():
    # One EAN-8 written as GTIN-8, -12, -13 and -14: leading zeros carry no weight in the sum.
    forms = ["96385074", "000096385074", "0000096385074", "00000096385074"]
    assert {normalise_gtin(f) for f in forms} == {"00000096385074"}
    upc = ["036000291452", "0036000291452", "00036000291452"]
    assert {normalise_gtin(f) for f in upc} == {"00036000291452"}


def test_urn():
    assert gtin_urn(normalise_gtin("96385074")) == "urn:gtin:00000096385074"


@given(body=st.sampled_from([7, 11, 12, 13]).flatmap(
    lambda n: st.text(alphabet="0123456789", min_size=n, max_size=n)))
def test_oracle_check_digit_is_accepted_and_every_other_refused(body):
    good = body + gs1_check_digit(body)
    assert normalise_gtin(good) == good.zfill(14)
    for digit in "0123456789":
        if digit != gs1_check_digit(body):
            assert code_of(body + digit) == "gtin_check_digit"


@given(st.sampled_from([8, 12, 13, 14]).flatmap(
    lambda n: st.text(alphabet="0123456789", min_size=n, max_size=n)))
def test_valid_exactly_when_the_oracle_says_so(text):
    if gs1_check_digit(text[:-1]) == text[-1]:
        assert normalise_gtin(text) == text.zfill(14)
    else:
        assert code_of(text) == "gtin_check_digit"


@given(st.integers(min_value=0, max_value=20).filter(lambda n: n not in (8, 12, 13, 14)).flatmap(
    lambda n: st.text(alphabet="0123456789", min_size=n, max_size=n)))
def test_other_lengths_are_a_format_error(text):
    assert code_of(text) == "gtin_format"


@pytest.mark.parametrize("text", [
    "٩٦٣٨٥٠٧٤",  # Arabic-Indic digits of 96385074: str.isdigit() says yes
    "９６３８５０７４",  # fullwidth digits
    "963850७४",  # Devanagari at the end
    "9638507²",  # a superscript two (isdigit, not a decimal)
    "9638 074",  # a space among 8 characters
    "9638507\n",
    "9638507a",
    "-6385074",
    "+6385074",
    "",
])
def test_non_ascii_digits_and_other_characters_are_a_format_error(text):
    assert code_of(text) == "gtin_format"


@pytest.mark.parametrize("text", ["96385074\n", " 96385074", "96385074 ", "9638 5074", "0096385074"])
def test_padding_and_wrong_lengths_are_a_format_error(text):
    assert code_of(text) == "gtin_format"
