"""csv_records.read_records: the one CSV reader of every import."""

from __future__ import annotations

from carbonpuhui.csv_records import read_records

COLUMNS = ("a", "b", "c")


def _read(text: str, **kwargs: object) -> list[tuple[int, dict[str, str] | None, str | None]]:
    options = {"columns": COLUMNS, "required": ("a", "b"), **kwargs}
    return [(r.line, r.cells, r.error) for r in read_records(text, **options)]  # type: ignore[arg-type]


def test_records_name_their_own_first_line_past_blank_lines_and_quoted_newlines():
    text = 'a,b\n1,2\n\n\n3,"two\nlines"\n4,5\n'
    assert _read(text) == [(2, {"a": "1", "b": "2"}, None), (5, {"a": "3", "b": "two\nlines"}, None),
                           (7, {"a": "4", "b": "5"}, None)]


def test_header_problems_stop_at_line_one():
    assert _read("a,a,b\n1,2,3\n") == [(1, None, "Columns named twice: {columns}.")]
    assert _read("a\n1\n") == [(1, None, "Missing columns: {columns}.")]
    assert _read("a,b,z\n1,2,3\n") == [(1, None, "Unknown columns: {columns}.")]
    # Blanks around header names are an unknown column unless the import strips them.
    assert _read(" a,b\n1,2\n")[0][2] == "Missing columns: {columns}."
    assert _read(" a,b\n1,2\n", strip_names=True) == [(2, {"a": "1", "b": "2"}, None)]


def test_a_long_row_is_refused_and_reading_goes_on_but_a_malformed_one_ends_it():
    assert _read("a,b\n1,2,3\n4,5\n") == [(2, None, "The row has more cells than the header has columns."),
                                          (3, {"a": "4", "b": "5"}, None)]
    records = _read('a,b\n1,2\n3,"open\n')
    assert records[0] == (2, {"a": "1", "b": "2"}, None)
    assert records[1][0] == 3 and records[1][2] == "The CSV is malformed: {error}." and len(records) == 2
