"""GTINs: GTIN-8, -12, -13 and -14 with their GS1 check digit, stored as 14 digits."""

from __future__ import annotations

from stdnum import ean
from stdnum.exceptions import ValidationError

GTIN_LENGTHS = (8, 12, 13, 14)
GTIN_PATTERN = r"^([0-9]{8}|[0-9]{12,14})(?!\n)$"


class InvalidGTIN(ValueError):
    """``code`` says why: ``gtin_format`` (not 8/12/13/14 digits) or ``gtin_check_digit``."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def normalise_gtin(text: str) -> str:
    """The 14-digit form of a GTIN (check digit validated), e.g. 6901234567892 -> 06901234567892."""
    # Only ASCII digits: str.isdigit() would also accept other scripts' digits and superscripts.
    if len(text) not in GTIN_LENGTHS or not text.isascii() or not text.isdigit():
        raise InvalidGTIN("gtin_format")
    try:
        ean.validate(text)  # python-stdnum: the GS1 mod-10 check over every GTIN length
    except ValidationError:
        raise InvalidGTIN("gtin_check_digit") from None
    return text.zfill(14)


def gtin_urn(gtin14: str) -> str:
    return f"urn:gtin:{gtin14}"
