"""Reading an uploaded CSV file into records, the same way for every import (factors, shipments):
strict quoting, the header checked (no column twice, none missing, none unknown), blank lines
skipped, and each record's own first line reported, so a problem names the line a person sees."""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field

from carbonpuhui.i18n import N_

# Cells as large as an import may be (the csv default of 128 KiB would raise mid-file).
csv.field_size_limit(64 * 1024 * 1024)


@dataclass(frozen=True)
class Record:
    """A record's cells by column (``None`` for a problem), or a problem: a message id and its
    parameters. After a header problem (line 1) or a malformed record, nothing more follows."""

    line: int
    cells: dict[str, str] | None
    error: str | None = None
    params: dict[str, object] = field(default_factory=dict)


def read_records(text: str, *, columns: Collection[str], required: Collection[str],
                 strip_names: bool = False) -> Iterator[Record]:
    """The records of ``text`` (already decoded). ``columns``: those allowed; ``required``: those
    that must be there; ``strip_names``: header names are read without surrounding blanks."""
    # strict: an unterminated quote or a stray quote is an error, not a silently merged row.
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    try:
        names = [n.strip() if strip_names else n for n in reader.fieldnames or []]
    except csv.Error as exc:
        yield Record(1, None, N_("The CSV is malformed: {error}."), {"error": str(exc)})
        return
    reader.fieldnames = names
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        yield Record(1, None, N_("Columns named twice: {columns}."), {"columns": ", ".join(twice)})
        return
    if missing := sorted(set(required) - set(names)):
        yield Record(1, None, N_("Missing columns: {columns}."), {"columns": ", ".join(missing)})
        return
    if unknown := sorted(set(names) - set(columns)):
        yield Record(1, None, N_("Unknown columns: {columns}."), {"columns": ", ".join(unknown)})
        return
    lines = io.StringIO(text, newline="").readlines()
    line = reader.line_num
    while True:
        try:
            flat = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Record(line + 1, None, N_("The CSV is malformed: {error}."), {"error": str(exc)})
            return
        start = line + 1
        while start < reader.line_num and not lines[start - 1].strip("\r\n"):
            start += 1  # DictReader skips blank lines: report the record's own first line
        line = reader.line_num
        if None in flat:
            yield Record(start, None, N_("The row has more cells than the header has columns."))
            continue
        yield Record(start, flat)
