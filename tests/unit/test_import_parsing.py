"""The pure import layer: reading CSV and XLSX bytes, the schema checks of every kind, row
hashes and duplicates, masking — and property tests that random cells only ever produce row
errors."""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.import_files import csv_bytes, xlsx_bytes
from vaikuttavuus.definitions import load_pilot
from vaikuttavuus.domain import identity
from vaikuttavuus.domain import imports as im
from vaikuttavuus.paths import cohorts_dir
from vaikuttavuus.services.definitions import load_measure_catalogue

TODAY = date(2025, 12, 1)
BPH = load_pilot(cohorts_dir() / "bph.yaml")
OLDER = load_pilot(cohorts_dir() / "older-adults.yaml")
MEASURES = load_measure_catalogue()
KNOWN = "010150-901D"
ENROLLED = im.PersonMatch(1, 11, "operating_room", date(2025, 3, 14))
OTHER_PERSON = im.PersonMatch(2, None, None, None)


def keyed(code: str) -> str:
    return "hash:" + code


def context(pilot: Any = BPH, stored: tuple[str, ...] = (), **people: im.PersonMatch) -> Any:
    by_hash = {keyed(KNOWN): ENROLLED, keyed("150348-903L"): OTHER_PERSON}
    by_pseudonym = {"P-ABC123": ENROLLED, **people}

    def find(hashes: Any, pseudonyms: Any) -> im.PeopleFound:
        return im.PeopleFound(
            {h: by_hash[h] for h in hashes if h in by_hash},
            {p: by_pseudonym[p] for p in pseudonyms if p in by_pseudonym},
        )

    return im.ImportContext(
        pilot=pilot,
        measures=MEASURES,
        today=TODAY,
        hash_identity_code=keyed,
        product_codes=("OR_MINUTE", "NURSE_PHONE", "LAB_PANEL"),
        cost_centre_codes=("URO_POLI", "OR"),
        price_years=(2024, 2025),
        find_people=find,
        stored_row_hashes=lambda hashes: set(stored) & set(hashes),
    )


def check(kind: str, header: list[str], rows: list[list[Any]], **options: Any) -> im.Validation:
    return im.validate(kind, im.table_from_rows(header, rows), context(**options))


def codes(result: im.Validation) -> list[tuple[int, str | None, str]]:
    return [(e.line, e.column, e.code) for e in result.errors]


USE = ["identity_code", "product_code", "quantity", "service_date", "cost_centre"]


# -- reading files ------------------------------------------------------------------------------


def test_csv_with_bom_semicolons_and_decimal_commas() -> None:
    data = csv_bytes(
        ["Identity Code", "product_code", "quantity", "service_date", "cost_centre"],
        [[KNOWN, "OR_MINUTE", "1 234,5", "1.3.2025", ""]],
        sep=";",
        bom=True,
    )
    table = im.read_table(data)
    assert table.columns == (
        "identity_code",
        "product_code",
        "quantity",
        "service_date",
        "cost_centre",
    )
    result = im.validate("resource_use", table, context())
    assert result.ok
    assert result.frame["quantity"].tolist() == [1234.5]
    assert result.frame["service_date"].tolist() == [np.datetime64("2025-03-01")]


def test_tabs_quotes_and_blank_lines_keep_line_numbers() -> None:
    text = (
        "identity_code\tproduct_code\tquantity\tservice_date\n"
        f"{KNOWN}\tOR_MINUTE\t1\t2025-03-01\n\n   \t\t\t\n"
        f'{KNOWN}\t"LAB_PANEL"\tx\t2025-03-01\n'
    )
    table = im.read_table(text.encode())
    assert list(table.frame.index) == [2, 5]
    result = im.validate("resource_use", table, context())
    assert codes(result) == [(5, "quantity", "not_a_number")]


@pytest.mark.parametrize(
    ("data", "code", "line"),
    [
        (b"", "empty_file", 0),
        (b"  \n\n", "empty_file", 0),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1 old excel", "unsupported_format", 0),
        (b"a,b\n1,2\n3,\xe4\n", "not_utf8", 3),
        (b"a,b\n1,2\n3,4,5\n", "bad_csv", 3),
        (b"PK\x03\x04 not really a zip", "unreadable_file", 0),
    ],
)
def test_unreadable_files_are_one_file_error(data: bytes, code: str, line: int) -> None:
    with pytest.raises(im.ImportFileError) as refused:
        im.read_table(data)
    assert [(e.code, e.line) for e in refused.value.errors] == [(code, line)]


def test_xlsx_cells_become_the_text_a_csv_would_have() -> None:
    data = xlsx_bytes(
        [*USE, None],
        [
            [KNOWN, "OR_MINUTE", 65.0, datetime(2025, 3, 1), None],
            [KNOWN, "LAB_PANEL", 1.5, date(2025, 3, 2), "uro_poli"],
        ],
    )
    table = im.read_table(data)
    assert table.frame.loc[2].tolist() == [KNOWN, "OR_MINUTE", "65", "2025-03-01", ""]
    result = im.validate("resource_use", table, context())
    assert result.ok
    assert result.frame["cost_centre"].tolist() == [None, "URO_POLI"]


def test_xlsx_values_beyond_the_header_are_refused() -> None:
    data = xlsx_bytes(["identity_code", "quantity"], [[KNOWN, 1, "extra"]])
    with pytest.raises(im.ImportFileError) as refused:
        im.read_table(data)
    assert [(e.code, e.line) for e in refused.value.errors] == [("extra_values", 2)]


# -- header -------------------------------------------------------------------------------------


def test_header_problems_are_all_reported_on_line_1() -> None:
    table = im.table_from_rows(
        ["product_code", "quantity", "quantity", "colour"], [["OR_MINUTE", 1, 1, "red"]]
    )
    with pytest.raises(im.ImportFileError) as refused:
        im.validate("resource_use", table, context())
    assert sorted((e.line, e.column or "", e.code) for e in refused.value.errors) == [
        (1, "", "no_person_column"),
        (1, "colour", "unknown_column"),
        (1, "quantity", "duplicate_column"),
        (1, "service_date", "missing_column"),
    ]


def test_a_kind_needs_what_it_refers_to_in_the_pilot() -> None:
    table = im.table_from_rows(
        ["identity_code", "service_type", "provider_sector", "start_date"],
        [[KNOWN, "day_activity", "ngo", "2025-01-01"]],
    )
    with pytest.raises(im.ImportFileError) as refused:
        im.validate("exposures", table, context(pilot=BPH))
    assert {e.code for e in refused.value.errors} == {"kind_not_in_pilot"}


def test_a_header_without_rows_is_refused() -> None:
    with pytest.raises(im.ImportFileError) as refused:
        im.validate("resource_use", im.read_table(",".join(USE).encode()), context())
    assert [e.code for e in refused.value.errors] == ["no_rows"]


# -- values -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "value"),
    [("12", 12.0), ("12,5", 12.5), (" 1\u00a0000,25 ", 1000.25), ("1e2", 100.0), ("0.5", 0.5)],
)
def test_numbers(cell: str, value: float) -> None:
    result = check("resource_use", USE, [[KNOWN, "OR_MINUTE", cell, "2025-01-01", ""]])
    assert result.ok and result.frame["quantity"].tolist() == [value]


@pytest.mark.parametrize(
    ("cell", "code"),
    [
        ("inf", "not_a_number"),
        ("nan", "not_a_number"),
        ("1,234.5", "not_a_number"),
        ("12 kpl", "not_a_number"),
        ("0", "out_of_range"),
        ("\u22121", "out_of_range"),
        ("100001", "out_of_range"),
    ],
)
def test_bad_numbers(cell: str, code: str) -> None:
    result = check("resource_use", USE, [[KNOWN, "OR_MINUTE", cell, "2025-01-01", ""]])
    assert codes(result) == [(2, "quantity", code)]


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("2025-03-01", "2025-03-01"),
        ("2025-3-1", "2025-03-01"),
        ("1.3.2025", "2025-03-01"),
        ("01.03.2025", "2025-03-01"),
        ("2025-03-01 00:00:00", "2025-03-01"),
        ("2025-03-01T13:45", "2025-03-01"),
    ],
)
def test_dates(cell: str, expected: str) -> None:
    result = check("resource_use", USE, [[KNOWN, "OR_MINUTE", "1", cell, ""]])
    assert result.ok
    assert str(result.frame["service_date"].iloc[0])[:10] == expected


@pytest.mark.parametrize(
    ("cell", "code"),
    [
        ("31.2.2025", "not_a_date"),
        ("2025-02-30", "not_a_date"),
        ("03/01/2025", "not_a_date"),
        ("1850-01-01", "out_of_range"),
        ("2025-12-02", "date_in_future"),
    ],
)
def test_bad_dates(cell: str, code: str) -> None:
    result = check("resource_use", USE, [[KNOWN, "OR_MINUTE", "1", cell, ""]])
    assert codes(result) == [(2, "service_date", code)]


def test_codes_match_ignoring_case_and_are_stored_in_catalogue_spelling() -> None:
    header = ["identity_code", "procedure_type", "setting", "performed_on", "drg_code"]
    result = check("procedures", header, [[KNOWN, "TURP", "Operating_Room", "2025-01-01", "11m06"]])
    assert result.ok
    row = result.frame.iloc[0]
    assert (row["procedure_type"], row["setting"], row["drg_code"]) == (
        "turp",
        "operating_room",
        "11M06",
    )
    bad = check("procedures", header, [[KNOWN, "laser", "ward", "2025-01-01", "11-M"]])
    assert codes(bad) == [
        (2, "procedure_type", "unknown_code"),
        (2, "setting", "unknown_code"),
        (2, "drg_code", "invalid_format"),
    ]
    assert bad.errors[0].params["allowed"] == [
        "turp",
        "holep",
        "laser_vaporisation",
        "rezum",
        "urolift",
    ]


def test_exposure_dates_must_be_in_order() -> None:
    header = ["identity_code", "service_type", "provider_sector", "start_date", "end_date"]
    result = im.validate(
        "exposures",
        im.table_from_rows(header, [[KNOWN, "Day_Activity", "NGO", "2025-03-01", "1.2.2025"]]),
        context(pilot=OLDER),
    )
    assert codes(result) == [(2, "end_date", "date_order")]
    assert result.errors[0].params == {"start": "2025-03-01", "start_column": "start_date"}


def test_direct_costs_need_a_price_year_of_the_index() -> None:
    header = ["identity_code", "amount_eur", "price_year", "service_date"]
    result = check("direct_costs", header, [[KNOWN, "10", "2019", "2025-01-01"]])
    assert codes(result) == [(2, "price_year", "unknown_code")]
    assert result.errors[0].params["allowed"] == [2024, 2025]
    fraction = check("direct_costs", header, [[KNOWN, "10", "2024,5", "2025-01-01"]])
    assert codes(fraction) == [(2, "price_year", "not_an_integer")]


# -- measurements -------------------------------------------------------------------------------

MEASURE = ["identity_code", "measure", "value", "unit", "measured_on", "time_point"]


@pytest.mark.parametrize(
    ("measure", "value", "unit", "num", "text", "stored_unit"),
    [
        ("qmax", "12,5", "ml/s", 12.5, None, "mL/s"),
        ("psa", "2", "ug/l", 2.0, None, "µg/L"),
        ("psa", "2", "μg/L", 2.0, None, "µg/L"),
        ("catheter_days", "3", "d", 3.0, None, "d"),
        ("clavien_dindo", "iiia", "", None, "IIIa", None),
        ("readmission_30d", "kyllä", "", 1.0, None, None),
        ("reoperation", "No", "", 0.0, None, None),
    ],
)
def test_measurement_values(
    measure: str,
    value: str,
    unit: str,
    num: float | None,
    text: str | None,
    stored_unit: str | None,
) -> None:
    result = check("measurements", MEASURE, [[KNOWN, measure, value, unit, "2025-02-01", ""]])
    assert result.ok, result.errors
    row = result.frame.iloc[0]
    assert (row["value_num"] if num is not None else None) == num
    assert row["value_text"] == text
    assert row["unit"] == stored_unit


@pytest.mark.parametrize(
    ("measure", "value", "unit", "column", "code"),
    [
        ("qmax", "61", "mL/s", "value", "out_of_range"),
        ("qmax", "12", "mL", "unit", "wrong_unit"),
        ("qmax", "12", "", "unit", "missing"),
        ("catheter_days", "2,5", "d", "value", "not_an_integer"),
        ("clavien_dindo", "VI", "", "value", "unknown_code"),
        ("clavien_dindo", "II", "grade", "unit", "wrong_unit"),
        ("reoperation", "maybe", "", "value", "unknown_code"),
        ("ucla3", "3", "", "measure", "unknown_code"),
    ],
)
def test_bad_measurements(measure: str, value: str, unit: str, column: str, code: str) -> None:
    result = check("measurements", MEASURE, [[KNOWN, measure, value, unit, "2025-02-01", ""]])
    assert codes(result) == [(2, column, code)]


def test_a_time_point_needs_its_window() -> None:
    # index date 2025-03-14; baseline window −60 … 0 days
    inside = check(
        "measurements", MEASURE, [[KNOWN, "qmax", "9", "mL/s", "2025-02-01", "baseline"]]
    )
    assert inside.ok
    outside = check(
        "measurements", MEASURE, [[KNOWN, "qmax", "9", "mL/s", "2025-05-01", "baseline"]]
    )
    assert codes(outside) == [(2, "measured_on", "outside_window")]
    assert outside.errors[0].params == {
        "time_point": "baseline",
        "start": "2025-01-13",
        "end": "2025-03-14",
    }


# -- people -------------------------------------------------------------------------------------

PEOPLE = ["identity_code", "pseudonym", "birth_year", "arm", "index_date", "pilot", "first_name"]


def test_people_rows() -> None:
    rows = [
        ["120940-904F", "", "", "operating_room", "2025-04-01", "bph", "Aino"],
        [KNOWN, "", "1950", "operating_room", "2025-03-14", "", "Matti"],  # stored already
        ["150348-903L", "", "", "outpatient_clinic", "2025-04-01", "BPH", ""],  # known, new here
    ]
    result = check("people", PEOPLE, rows)
    assert result.ok, result.errors
    assert result.rows_duplicate == 1
    assert result.frame["birth_year"].tolist() == [1940, 1948]
    assert result.frame["identity_hash"].tolist() == [keyed("120940-904F"), keyed("150348-903L")]
    assert result.frame["person_id"].isna().tolist() == [True, False]
    assert result.frame["enrolled_on"].tolist() == [np.datetime64("2025-12-01")] * 2


def test_people_problems() -> None:
    rows = [
        ["120940-904F", "", "1941", "operating_room", "2025-04-01", "", ""],
        ["120940-904F", "", "", "operating_room", "2025-04-01", "", ""],
        [KNOWN, "", "", "outpatient_clinic", "2025-03-14", "", ""],
        ["050538-9069", "", "", "operating_room", "2025-04-01", "older-adults", ""],
        ["", "P-NOPE00", "", "operating_room", "2025-04-01", "", ""],
        ["", "", "", "operating_room", "2025-04-01", "", f"Eeva {KNOWN}"],
    ]
    result = check("people", PEOPLE, rows)
    assert sorted(codes(result)) == [
        (2, "birth_year", "conflict"),
        (4, "arm", "conflict"),
        (5, "pilot", "wrong_pilot"),
        (6, "pseudonym", "unknown_person"),
        (7, "first_name", "contains_identity_code"),
        (7, "identity_code", "missing"),
    ]
    assert result.errors[0].params == {"reason": "birth_year", "expected": 1940}
    masked = [e.value for e in result.errors if e.column == "first_name"]
    assert masked == ["Eeva ******-****"]


def test_the_same_new_person_twice_is_a_duplicate() -> None:
    rows = [
        ["120940-904F", "", "", "operating_room", "2025-04-01", "", ""],
        ["120940-904f", "", "", "operating_room", "2025-04-01", "", ""],
    ]
    result = check("people", PEOPLE, rows)
    assert codes(result) == [(3, "identity_code", "duplicate")]
    assert result.errors[0].params == {"first_line": 2}


# -- people in other kinds, hashes and duplicates -----------------------------------------------


def test_person_lookups() -> None:
    header = ["identity_code", "pseudonym", "product_code", "quantity", "service_date"]
    rows = [
        ["", "p-abc123", "OR_MINUTE", "1", "2025-01-01"],  # pseudonym, normalised
        ["150348-903L", "", "OR_MINUTE", "1", "2025-01-01"],  # known but not enrolled
        ["230655-9052", "", "OR_MINUTE", "1", "2025-01-01"],  # unknown
        ["010150-901X", "", "OR_MINUTE", "1", "2025-01-01"],  # wrong check character
        ["150348-903L", "P-ABC123", "OR_MINUTE", "2", "2025-01-01"],  # two people
        ["", "", "OR_MINUTE", "1", "2025-01-01"],
    ]
    result = check("resource_use", header, rows)
    assert codes(result) == [
        (3, "identity_code", "unknown_person"),
        (4, "identity_code", "unknown_person"),
        (5, "identity_code", "invalid_identity_code"),
        (6, "pseudonym", "conflict"),
        (7, "identity_code", "missing"),
    ]
    assert [e.params.get("reason") for e in result.errors[:2]] == ["not_enrolled", "not_found"]
    assert result.errors[2].params == {"problem": "check_character"}
    assert result.errors[2].value == "******-****"


def test_identity_codes_never_appear_in_errors() -> None:
    header = ["identity_code", "pseudonym", "product_code", "quantity", "service_date"]
    rows = [
        ["230655-9052", "", "OR_MINUTE", "1", "2025-01-01"],
        ["230655-905X", "", "OR_MINUTE", "1", "2025-01-01"],
        ["", "230655-9052", "OR_MINUTE", "1", "2025-01-01"],
        [KNOWN, "", "230655-9052", "1", "2025-01-01"],
    ]
    result = check("resource_use", header, rows)
    assert result.error_count == 4
    shown = repr([e.to_dict() for e in result.errors])
    assert "230655" not in shown and "9052" not in shown


def test_row_hash_is_sha256_of_the_canonical_row() -> None:
    [digest] = im.row_hashes(
        "resource_use", np.array([11]), [np.array([v], dtype=object) for v in ("OR_MINUTE", "65.0")]
    )
    assert digest == hashlib.sha256(b"resource_use\x1f11\x1fOR_MINUTE\x1f65.0").hexdigest()
    a = check("resource_use", USE, [[KNOWN, "or_minute", "65", "1.3.2025", ""]])
    b = check("resource_use", USE, [["010150-901d", "OR_MINUTE", "65,0", "2025-03-01", " "]])
    c = check("resource_use", USE, [[KNOWN, "OR_MINUTE", "66", "2025-03-01", ""]])
    assert a.frame["row_hash"].tolist() == b.frame["row_hash"].tolist()
    assert a.frame["row_hash"].tolist() != c.frame["row_hash"].tolist()
    expected = "\x1f".join(["resource_use", "11", "OR_MINUTE", "65.0", "2025-03-01", ""])
    assert a.frame["row_hash"].iloc[0] == hashlib.sha256(expected.encode()).hexdigest()


def test_duplicates_in_the_file_and_stored_rows() -> None:
    rows = [
        [KNOWN, "OR_MINUTE", "1", "2025-01-01", ""],
        [KNOWN, "OR_MINUTE", "2", "2025-01-01", ""],
        [KNOWN, "or_minute", "1,0", "1.1.2025", ""],
    ]
    in_file = check("resource_use", USE, rows)
    assert codes(in_file) == [(4, None, "duplicate")]
    assert in_file.errors[0].params == {"first_line": 2}
    first = check("resource_use", USE, rows[:2])
    stored = tuple(first.frame["row_hash"])[:1]
    again = check("resource_use", USE, rows[:2], stored=stored)
    assert again.ok and again.rows_duplicate == 1 and again.rows_new == 1
    assert again.frame.index.tolist() == [3]


def test_errors_come_in_line_order_and_are_capped() -> None:
    rows = [[KNOWN, "NOPE", "x", "2025-01-01", ""] for _ in range(30)]
    result = im.validate("resource_use", im.table_from_rows(USE, rows), context(), max_errors=7)
    assert result.error_count == 60
    assert [(e.line, e.column) for e in result.errors] == [
        (2, "product_code"),
        (2, "quantity"),
        (3, "product_code"),
        (3, "quantity"),
        (4, "product_code"),
        (4, "quantity"),
        (5, "product_code"),
    ]


def test_masks_and_spreadsheet_safety() -> None:
    assert im.mask_identity_code("010150-901D") == "******-****"
    assert im.mask_identity_codes("a 010150A901D b 123") == "a *********** b 123"
    assert im.spreadsheet_safe("=1+1") == "'=1+1"
    assert im.spreadsheet_safe(" @SUM(A1)") == "' @SUM(A1)"
    assert im.spreadsheet_safe("-3") == "'-3"
    assert im.spreadsheet_safe("12") == "12"


def test_templates_list_every_column_with_a_valid_example() -> None:
    for kind, schema in im.SCHEMAS.items():
        assert len(schema.header) == len(set(schema.header))
        assert schema.header[:2] == ("identity_code", "pseudonym"), kind
        assert set(schema.required) <= set(schema.header)
    example = im.SCHEMAS["people"].example_row()
    assert identity.is_valid(example[0]) and identity.is_synthetic(example[0])


# -- properties ---------------------------------------------------------------------------------

CELLS = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "",
            " ",
            "1",
            "-1",
            "1,5",
            "2025-01-01",
            "1.1.2025",
            KNOWN,
            "P-ABC123",
            "OR_MINUTE",
            "qmax",
            "mL/s",
            "yes",
            "=1+1",
            "nan",
            "1e400",
            "\u00a0",
        ]
    ),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(list(im.KINDS)),
    data=st.data(),
)
def test_random_cells_only_give_row_errors(kind: str, data: st.DataObject) -> None:
    schema = im.SCHEMAS[kind]
    rows = data.draw(
        st.lists(
            st.lists(CELLS, min_size=len(schema.header), max_size=len(schema.header)),
            min_size=1,
            max_size=6,
        )
    )
    pilot = OLDER if kind == "exposures" else BPH
    table = im.table_from_rows(schema.header, rows)
    try:
        result = im.validate(kind, table, context(pilot=pilot))
    except im.ImportFileError as error:
        assert {e.code for e in error.errors} <= {"no_rows"}
        return
    assert result.rows_total == table.rows
    assert all(e.code in im.ERROR_CODES for e in result.errors)
    assert all(2 <= e.line <= len(rows) + 1 for e in result.errors)
    assert result.rows_new + result.rows_duplicate <= table.rows
    if not result.ok:
        assert result.error_count >= len(result.errors) > 0
    shown = repr([e.to_dict() for e in result.errors])
    assert KNOWN not in shown


@settings(max_examples=80, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_are_read_or_refused_with_file_errors(data: bytes) -> None:
    try:
        table = im.read_table(data)
    except im.ImportFileError as error:
        assert all(e.code in im.ERROR_CODES for e in error.errors)
        return
    assert all(isinstance(c, str) for c in table.columns)
    assert table.frame.map(lambda cell: isinstance(cell, str)).all().all()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(CELLS, min_size=5, max_size=5), min_size=1, max_size=5))
def test_random_csv_round_trips_through_the_reader(rows: list[list[str]]) -> None:
    clean = [[cell.replace("\x00", "") for cell in row] for row in rows]
    try:
        table = im.read_table(csv_bytes(USE, clean, sep=";"))
    except im.ImportFileError:
        return
    result_or_error: Any
    try:
        result_or_error = im.validate("resource_use", table, context())
    except im.ImportFileError as error:
        result_or_error = error
    assert result_or_error is not None


def test_the_documentation_covers_every_kind_column_and_error_code() -> None:
    from vaikuttavuus.paths import PROJECT_ROOT

    text = (PROJECT_ROOT / "docs" / "imports.md").read_text(encoding="utf-8")
    for kind, schema in im.SCHEMAS.items():
        assert f"### `{kind}`" in text
        for column in schema.header:
            assert f"| `{column}` |" in text, (kind, column)
    for code in im.ERROR_CODES:
        assert f"| `{code}` |" in text, code
