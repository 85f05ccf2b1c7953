"""The PACT v2.3 ProductFootprint JSON Schema (tests/fixtures/pact/), with a date-time checker."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from jsonschema import Draft202012Validator, FormatChecker

SCHEMA_PATH = Path(__file__).resolve().parent / "fixtures" / "pact" / "product-footprint-v2.3.schema.json"
SCHEMA = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def _rfc3339(value: object) -> bool:
    # jsonschema checks "date-time" only with an optional extra installed; without one the format
    # would be ignored silently, so the tests bring their own checker.
    if not isinstance(value, str):
        return True
    if "T" not in value.upper():
        raise ValueError("no time part")
    datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    return True


FORMATS = FormatChecker()
if "date-time" not in FORMATS.checkers:
    FORMATS.checks("date-time", raises=ValueError)(_rfc3339)
VALIDATOR = Draft202012Validator(SCHEMA, format_checker=FORMATS)
