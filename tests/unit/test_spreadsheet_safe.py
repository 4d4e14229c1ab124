"""CSV cells that no spreadsheet runs as a formula, however it splits the line (issue 16,
item 3): ``x;=cmd|' /C calc'!A0;`` was written as it was, and a Finnish spreadsheet, which
splits on ``;``, made ``=cmd|' /C calc'!A0`` a cell of its own."""

from __future__ import annotations

import csv
import io

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.spreadsheet import formula_fragments
from vaikuttavuus.domain.spreadsheet import spreadsheet_safe
from vaikuttavuus.services.audit_export import spreadsheet_cell
from vaikuttavuus.services.cohort_tables import to_csv
from vaikuttavuus.services.imports import report_csv

ATTACK = "x;=cmd|' /C calc'!A0;"


def written(cells: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow([spreadsheet_safe(c) for c in cells])
    return buffer.getvalue()


def test_the_audit_payload_is_neutralised_after_every_separator() -> None:
    assert formula_fragments(written(["x", ATTACK])) == []
    assert spreadsheet_safe(ATTACK) == "x;'=cmd|' /C calc'!A0;"
    assert spreadsheet_safe("a, +1") == "a, '+1"
    assert spreadsheet_safe("rivi\n@SUM(A1)") == "rivi\n'@SUM(A1)"
    assert spreadsheet_safe("a\t\t=1") == "a\t'\t'=1"
    assert spreadsheet_safe("=1;-2") == "'=1;'-2"
    # Text without a formula is kept as it is.
    for text in ("Hyvä hoito; kiitos", "1,5", "a - b", "e-mail: x@example.org", ""):
        assert spreadsheet_safe(text) == text


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from(list("ab =+-@;,\t\r\n\"'1")), max_size=12)))
def test_no_cell_fragment_starts_a_formula(cells: list[str]) -> None:
    assert formula_fragments(written(cells)) == []
    # Nothing but apostrophes is added.
    for cell in cells:
        assert spreadsheet_safe(cell).replace("'", "") == cell.replace("'", "")


def test_every_csv_writer_uses_the_rule() -> None:
    frame = pd.DataFrame({"unit": [ATTACK, "Kirurgia"], "n": [5, -3]})
    assert formula_fragments(to_csv(frame)) == []
    assert formula_fragments(written([spreadsheet_cell(ATTACK)])) == []

    from vaikuttavuus.domain.imports import RowError

    errors = [RowError(2, "unit", ATTACK, "too_long", {"max": 80})]
    from flask import Flask
    from flask_babel import Babel

    app = Flask(__name__)
    Babel(app)
    with app.test_request_context():
        assert formula_fragments(report_csv(errors)) == []
