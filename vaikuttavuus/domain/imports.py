"""Import files: CSV or XLSX bytes → a frame of text → checked rows to store + row errors.

Pure (stdlib, numpy and pandas; openpyxl is imported only to read XLSX). The database look-ups
that a check needs — the people a file names and the row hashes already stored — come in as
functions of the :class:`ImportContext`, so the same checks serve the import service, the
clinician's measurement form and tests with plain dictionaries.

Conventions
-----------
* **Kinds.** One declarative :class:`Schema` per kind in :data:`SCHEMAS`: its columns with
  type, whether required, allowed values, range and maximum length, and its date-order rules.
* **Lines** are counted as a spreadsheet shows them: the header is line 1, the first data row
  line 2. Blank rows are skipped but keep their numbers. Line 0 is the file as a whole.
* **Cells** are stripped of surrounding white space; an empty cell is a missing value.
* **Numbers** may use a decimal comma, spaces as thousands separators and the minus sign "−".
* **Dates** are ``YYYY-MM-DD`` or ``D.M.YYYY`` (an XLSX date cell works as it is).
* **Codes** (arms, products, measures …) match exactly or ignoring case and are stored in the
  catalogue's spelling.
* **People** are named by ``identity_code`` (checked with its check character, then only its
  keyed hash is used) or by ``pseudonym``. An identity code is never echoed back: error values
  from that column, and anything shaped like an identity code in other columns, are masked.
* **Duplicates.** Every valid row gets a ``row_hash``: SHA-256 of its normalised values, with
  the enrolment id in place of the person columns. The same hash twice in one file is an error
  (``duplicate``); a hash that is already stored is skipped and counted in ``rows_duplicate``,
  so importing a file again stores nothing twice. People rows are matched by the person instead.
* **Questionnaire answers** (kind ``responses``: one row per person, time point and
  instrument, one column per item, or a FHIR ``Bundle``) have their own checks in
  :mod:`vaikuttavuus.domain.response_imports`; they share the reading, the people and the
  error report with the other kinds.
* **Vectorised.** Columns are parsed with pandas string, numeric and date operations; identity
  codes, pseudonyms and codes are looked at once per distinct value. The only per-row Python
  step is SHA-256 itself (about 1 µs a row). Error objects are built only for failing rows, at
  most ``max_errors`` of them; :attr:`Validation.error_count` has the full count.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
import unicodedata
import zipfile
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any, Literal

import numpy as np
import pandas as pd

from vaikuttavuus.domain import identity
from vaikuttavuus.domain.defaults import IMPORT_KINDS
from vaikuttavuus.domain.specs import (
    LANGUAGES,
    InstrumentSpec,
    MeasureCatalogue,
    MeasureSpec,
    PilotSpec,
)
from vaikuttavuus.domain.spreadsheet import spreadsheet_safe

__all__ = [
    "ERROR_CODES",
    "KINDS",
    "MAX_REPORTED_ERRORS",
    "SCHEMAS",
    "Column",
    "ImportContext",
    "ImportFileError",
    "PeopleFound",
    "PersonMatch",
    "RawTable",
    "RowError",
    "Schema",
    "Validation",
    "check_header",
    "mask_identity_code",
    "mask_identity_codes",
    "read_csv",
    "read_table",
    "read_xlsx",
    "row_hashes",
    "spreadsheet_safe",
    "table_from_rows",
    "validate",
]


def N_(text: str) -> str:  # noqa: N802 - Babel's marker for texts translated where shown
    """Mark ``text`` for translation; the web layer passes it through gettext."""
    return text


Kind = Literal[
    "people", "procedures", "measurements", "resource_use", "direct_costs", "exposures", "responses"
]
KINDS: tuple[Kind, ...] = IMPORT_KINDS  # type: ignore[assignment]

RESPONSE_MODES: tuple[str, ...] = ("web", "phone", "paper", "imported")
"""How answers were given (the ``responses.mode`` check constraint)."""

MAX_REPORTED_ERRORS = 1000
"""Errors described one by one (file and header problems included); :attr:`Validation.error_count`
and :attr:`ImportFileError.count` count them all."""
MAX_COLUMNS = 500
"""A file with a wider header is refused before it is parsed (the fixed kinds have at most 20
columns; a questionnaire-answers file has one per item of the pilot's instruments, 49 for both
shipped pilots together): a header of a million columns costs a moment, not minutes and
gigabytes."""
MAX_VALUE_SHOWN = 100
"""A cell echoed in an error is cut to this many characters."""
MAX_ALLOWED_SHOWN = 30
"""An ``unknown_code`` error lists at most this many allowed values."""
MIN_DATE = date(1900, 1, 1)
MAX_DATE = date(2100, 12, 31)
MAX_UNPACKED_XLSX_BYTES = 1024**3
"""An XLSX file is a zip archive: refuse one that unpacks to more than this (a zip bomb)."""

ERROR_CODES: dict[str, str] = {
    # the file as a whole
    "empty_file": "the file is empty",
    "unsupported_format": "not a CSV or XLSX file",
    "not_utf8": "a CSV file that is not UTF-8 text",
    "bad_csv": "a CSV row with more values than the header",
    "unreadable_file": "an XLSX file that cannot be read",
    "file_too_large": "an XLSX file that unpacks to more than 1 GiB",
    "too_many_columns": "a header with more columns than any kind could have (500)",
    "missing_column": "a required column is missing from the header",
    "unknown_column": "a header names a column the kind does not have",
    "duplicate_column": "a column appears twice in the header",
    "no_person_column": "neither identity_code nor pseudonym is in the header",
    "no_rows": "the file has a header but no data rows",
    "kind_not_in_pilot": "the pilot defines nothing this kind refers to",
    "extra_values": "an XLSX row has values to the right of the last named column",
    "not_fhir": "a JSON file that is not a FHIR Bundle",
    # one cell or row
    "missing": "a required value is empty",
    "not_a_number": "not a number",
    "not_an_integer": "a number that must be whole is not",
    "not_a_date": "not a date (YYYY-MM-DD or D.M.YYYY)",
    "out_of_range": "a number or date outside its allowed range",
    "too_long": "text longer than the column allows",
    "unknown_code": "a value that is not one of the allowed codes",
    "wrong_unit": "a measurement unit that differs from the catalogue's",
    "date_order": "an end date before its start date",
    "date_in_future": "a date after the day of the import",
    "outside_window": "a measurement date outside its time point's window",
    "duplicate": "the same row (or, for people, the same person) earlier in the file",
    "invalid_identity_code": "a personal identity code that is not valid",
    "invalid_format": "an e-mail address, phone number, pseudonym or DRG code of the wrong form",
    "contains_identity_code": "an identity code in a text column",
    "unknown_person": "a person who is not found or not enrolled in the pilot",
    "wrong_pilot": "a people row for another pilot",
    "conflict": "a value that contradicts stored data or another column",
    "not_scheduled": "an instrument that the time point does not schedule",
    "not_in_instrument": "an answer to an item of another instrument than the row's",
    "incomplete": "a note, not an error: a required item is unanswered (stored as incomplete)",
    "costs_missing": "a note on the whole file: persons whose care cycle has ended lack cost data",
    "no_answers": "a questionnaire row without a single answer",
    "fhir_entry": "a FHIR Bundle entry that is not a QuestionnaireResponse that can be read",
    # storing
    "import_failed": "the rows could not be stored (nothing was stored)",
}
"""Every error code with a one-line meaning (the web layer has the translated messages)."""

# Vocabularies that are not in the definitions: aliases → stored value.
SEX_ALIASES: dict[str, str] = {
    "male": "male",
    "m": "male",
    "mies": "male",
    "man": "male",
    "1": "male",
    "female": "female",
    "f": "female",
    "nainen": "female",
    "kvinna": "female",
    "2": "female",
    "other": "other",
    "muu": "other",
    "annan": "other",
}
BOOLEAN_ALIASES: dict[str, str] = {
    "yes": "yes",
    "y": "yes",
    "true": "yes",
    "1": "yes",
    "kyllä": "yes",
    "k": "yes",
    "ja": "yes",
    "no": "no",
    "n": "no",
    "false": "no",
    "0": "no",
    "ei": "no",
    "e": "no",
    "nej": "no",
}

_IDENTITY_SHAPE = identity.IDENTITY_CODE_SHAPE
_EMAIL = r"[^@\s]+@[^@\s]+\.[^@\s]+"
_PHONE = r"\+?[0-9][0-9 ()\-]{4,38}"
_DRG = r"[0-9A-Z]{2,20}"
_DECIMAL = r"[+-]?(\d+(\.\d*)?|\.\d+)"
_FINNISH_DATE = r"\d{1,2}\.\d{1,2}\.\d{4}"
_ISO_DATE_TIME = r"\d{4}-\d{1,2}-\d{1,2}[T ]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?"
_SPACES = r"[\s\u00a0\u202f]"


# --------------------------------------------------------------------------------------------
# Errors and masking
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowError:
    """One problem: the line (0 = the whole file, 1 = the header), the column, the cell as
    given (masked where it may hold an identity code; ``None`` when there is no cell), a stable
    code from :data:`ERROR_CODES` and the parameters its message needs (JSON values)."""

    line: int
    column: str | None
    value: str | None
    code: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "column": self.column,
            "value": self.value,
            "code": self.code,
            "params": dict(self.params),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RowError:
        return cls(
            line=int(data.get("line") or 0),
            column=data.get("column"),
            value=data.get("value"),
            code=str(data.get("code")),
            params=dict(data.get("params") or {}),
        )


class ImportFileError(ValueError):
    """The file cannot be checked row by row (unreadable, wrong header …).

    ``errors`` holds at most :data:`MAX_REPORTED_ERRORS` problems; ``count`` counts them all."""

    def __init__(self, errors: Sequence[RowError], count: int | None = None) -> None:
        self.errors = list(errors[:MAX_REPORTED_ERRORS])
        self.count = len(errors) if count is None else count
        super().__init__("; ".join(f"line {e.line}: {e.code}" for e in self.errors[:20]))


# The masking helpers live with the identity codes; kept here for the import code and callers.
mask_identity_code = identity.mask_identity_code
mask_identity_codes = identity.mask_identity_codes


def _shown(value: str, column: str | None) -> str:
    shown = mask_identity_code(value) if column == "identity_code" else mask_identity_codes(value)
    if len(shown) > MAX_VALUE_SHOWN:
        shown = shown[: MAX_VALUE_SHOWN - 1] + "…"
    return shown


# --------------------------------------------------------------------------------------------
# Reading files
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RawTable:
    """A file's cells as text: ``frame`` has one column of Python strings per header cell
    (normalised names, in file order; ``""`` for an empty cell), indexed by line number.
    ``problems`` are row errors found while reading (a FHIR entry that cannot be read); the
    check reports them with the others."""

    frame: pd.DataFrame
    problems: tuple[RowError, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(str(c) for c in self.frame.columns)

    @property
    def rows(self) -> int:
        return len(self.frame)


def normalise_header(cell: object) -> str:
    """``" Identity code "`` → ``identity_code``: lower case, spaces and hyphens to ``_``."""
    text = "" if cell is None else str(cell)
    text = text.replace("\ufeff", "").strip().lower()
    return re.sub(r"[\s\-]+", "_", text)


def read_table(data: bytes) -> RawTable:
    """CSV or XLSX, told apart by content (an XLSX file is a zip archive)."""
    if not data.strip():
        raise ImportFileError([RowError(0, None, None, "empty_file")])
    if data.startswith(b"PK\x03\x04"):
        return read_xlsx(data)
    if data.startswith(b"\xd0\xcf\x11\xe0") or b"\x00" in data[:4096]:
        # the old binary Excel format, or some other binary file
        raise ImportFileError([RowError(0, None, None, "unsupported_format")])
    return read_csv(data)


def _detect_delimiter(first_line: str) -> str:
    counts = {sep: first_line.count(sep) for sep in (",", ";", "\t")}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] else ","


def read_csv(data: bytes) -> RawTable:
    """UTF-8 (with or without a byte-order mark), delimiter ``,``, ``;`` or tab (from the
    header line), quotes ``"``. A row with more values than the header is an error for the
    whole file (``bad_csv``); missing trailing values are empty."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ImportFileError([RowError(line, None, None, "not_utf8")]) from error
    if not text.strip():
        raise ImportFileError([RowError(0, None, None, "empty_file")])
    first_line = text.lstrip("\r\n").split("\n", 1)[0]
    separator = _detect_delimiter(first_line)
    _check_width(first_line, separator)
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=separator,
            header=None,
            dtype=object,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            quotechar='"',
            engine="c",
        )
    except pd.errors.ParserError as error:
        match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(error))
        params: dict[str, Any] = {}
        line = 0
        if match:
            params = {"expected": int(match.group(1)), "found": int(match.group(3))}
            line = int(match.group(2))
        raise ImportFileError([RowError(line, None, None, "bad_csv", params)]) from error
    except pd.errors.EmptyDataError as error:
        raise ImportFileError([RowError(0, None, None, "empty_file")]) from error
    frame = frame.fillna("")
    frame.index = pd.RangeIndex(1, len(frame) + 1)
    return _from_grid(frame)


def _check_width(first_line: str, separator: str) -> None:
    """Refuse a header wider than :data:`MAX_COLUMNS` before anything is parsed."""
    if first_line.count(separator) < MAX_COLUMNS:
        return
    width = len(next(csv.reader([first_line], delimiter=separator, quotechar='"')))
    if width > MAX_COLUMNS:
        raise ImportFileError([_too_wide(width)])


def _too_wide(width: int) -> RowError:
    return RowError(1, None, None, "too_many_columns", {"found": width, "maximum": MAX_COLUMNS})


def _cell_text(value: object) -> str:
    """An XLSX cell as the text a CSV export would have."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        if value.time() == time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    return str(value)


def read_xlsx(data: bytes) -> RawTable:
    """The first worksheet of an XLSX workbook (openpyxl, read-only; formulas as their last
    computed values). The first row is the header."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(member.file_size for member in archive.infolist())
    except zipfile.BadZipFile as error:
        raise ImportFileError([RowError(0, None, None, "unreadable_file")]) from error
    if unpacked > MAX_UNPACKED_XLSX_BYTES:
        raise ImportFileError([RowError(0, None, None, "file_too_large")])

    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many kinds for a damaged workbook
        raise ImportFileError([RowError(0, None, None, "unreadable_file")]) from error
    try:
        sheet = workbook.worksheets[0]
        lines: list[int] = []
        rows: list[list[str]] = []
        width = 0
        for number, cells in enumerate(sheet.iter_rows(values_only=True), start=1):
            texts = [_cell_text(cell).strip() for cell in cells]
            while texts and texts[-1] == "":
                texts.pop()
            if number == 1:
                width = len(texts)
                if width > MAX_COLUMNS:
                    raise ImportFileError([_too_wide(width)])
            elif len(texts) > width:
                raise ImportFileError(
                    [RowError(number, None, None, "extra_values", {"expected": width})]
                )
            lines.append(number)
            rows.append(texts + [""] * (width - len(texts)))
    except ImportFileError:
        raise
    except Exception as error:
        raise ImportFileError([RowError(0, None, None, "unreadable_file")]) from error
    finally:
        workbook.close()
    if not rows or width == 0:
        raise ImportFileError([RowError(0, None, None, "empty_file")])
    frame = pd.DataFrame(rows, index=pd.Index(lines), dtype=object)
    return _from_grid(frame)


def table_from_rows(header: Sequence[str], rows: Iterable[Sequence[object]]) -> RawTable:
    """A table from Python values (a form, a test); the first row is line 2."""
    grid = [[_cell_text(cell) for cell in header]]
    grid += [[_cell_text(cell) for cell in row] for row in rows]
    frame = pd.DataFrame(grid, dtype=object)
    frame.index = pd.RangeIndex(1, len(frame) + 1)
    return _from_grid(frame)


def _from_grid(grid: pd.DataFrame) -> RawTable:
    """First row → header; strip cells, drop blank rows (keeping line numbers)."""
    header = [normalise_header(cell) for cell in grid.iloc[0].tolist()]
    body = grid.iloc[1:]
    while header and header[-1] == "" and (body.iloc[:, len(header) - 1] == "").all():
        header.pop()
        body = body.iloc[:, : len(header)]
    columns: dict[str, pd.Series] = {}
    blank_row = np.ones(len(body), dtype=bool)
    for position in range(len(header)):
        # strip each distinct text once, then spread back to the rows
        codes, uniques = pd.factorize(body.iloc[:, position].to_numpy(dtype=object))
        stripped = np.array([str(text).strip() for text in uniques.tolist()] + [""], dtype=object)
        blank_row &= (stripped == "")[codes]
        columns[str(position)] = pd.Series(stripped[codes], index=body.index, dtype=object)
    frame = pd.DataFrame(columns, index=body.index)
    frame.columns = pd.Index(header, dtype=object)
    if len(frame.columns):
        frame = frame.loc[~blank_row]
    return RawTable(frame)


# --------------------------------------------------------------------------------------------
# Schemas
# --------------------------------------------------------------------------------------------

ColumnType = Literal[
    "identity_code",
    "pseudonym",
    "text",
    "code",
    "boolean",
    "integer",
    "decimal",
    "date",
    "email",
    "phone",
    "drg",
    "measure_value",
    "unit",
]


@dataclass(frozen=True)
class Column:
    """One column of an import kind.

    ``vocabulary`` names the allowed values (see :meth:`ImportContext.vocabulary`);
    ``minimum``/``maximum`` bound numbers (``minimum_exclusive``: the minimum itself is not
    allowed); ``not_future`` refuses dates after the import day;
    ``stored`` is false for a column that is checked but not kept (it then stays out of the
    row hash).
    """

    name: str
    type: ColumnType
    description: str
    example: str = ""
    required: bool = False
    vocabulary: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    minimum_exclusive: bool = False
    max_length: int | None = None
    not_future: bool = False
    stored: bool = True


@dataclass(frozen=True)
class Schema:
    kind: Kind
    title: str
    description: str
    columns: tuple[Column, ...]
    date_order: tuple[tuple[str, str], ...] = ()
    """(earlier, later) column pairs: the later date may not be before the earlier one."""
    requires: tuple[str, ...] = ()
    """Vocabularies the pilot must define for this kind to apply to it."""

    @property
    def header(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns if column.required)

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def example_row(
        self, pilot: PilotSpec | None = None, measures: MeasureCatalogue | None = None
    ) -> tuple[str, ...]:
        """An example row; for a ``pilot``, every value that its definition decides (pilot,
        arm, procedure type and setting, time point, service type, provider sector and,
        with the ``measures`` catalogue, a measure of the pilot with its unit and a value in
        range) comes from that definition."""
        values = {column.name: column.example for column in self.columns}
        if pilot is None:
            return tuple(values.values())
        arm = pilot.reference_arm.id
        first = {
            "pilot": pilot.id,
            "arms": arm,
            "procedure_types": next((t.id for t in pilot.procedure_types), ""),
            "settings": next(iter(pilot.settings_of(arm)), ""),
            "service_types": next((t.id for t in pilot.service_types), ""),
            "provider_sectors": next((s.id for s in pilot.provider_sectors), ""),
            "time_points": pilot.baseline.id,
        }
        for column in self.columns:
            if column.example and column.vocabulary in first:
                values[column.name] = first[column.vocabulary]
        if self.kind == "measurements" and measures is not None:
            own = [m for m in measures.measures if not m.pilots or pilot.id in m.pilots]
            if own and values["measure"] not in {m.id for m in own}:
                measure = own[0]
                values["measure"] = measure.id
                values["unit"] = measure.unit or ""
                values["value"] = _example_value(measure)
        return tuple(values.values())


def _example_value(measure: MeasureSpec) -> str:
    """A valid value of ``measure`` for an example row (the middle of a numeric range)."""
    if measure.type == "grade":
        return measure.grades[0]
    if measure.type == "yes_no":
        return "no"
    assert measure.min is not None and measure.max is not None
    middle = (measure.min + measure.max) / 2
    return str(round(middle)) if measure.type == "integer" else f"{middle:g}".replace(".", ",")


PERSON_COLUMNS: tuple[str, str] = ("identity_code", "pseudonym")

_PERSON = (
    Column(
        "identity_code",
        "identity_code",
        N_(
            "Personal identity code (henkilötunnus), checked with its check character and "
            "stored only as a keyed hash. Give this or the pseudonym."
        ),
        example="010150-901D",
    ),
    Column(
        "pseudonym",
        "pseudonym",
        N_("The person's pseudonym in this application (P-…). Give this or the identity code."),
    ),
)

SCHEMAS: dict[str, Schema] = {
    "people": Schema(
        "people",
        N_("People and enrolments"),
        N_(
            "Adds people to the pilot and enrols them in an arm; their questionnaire "
            "invitations are scheduled from the index date."
        ),
        (
            *_PERSON,
            Column("first_name", "text", N_("First name."), "Matti", max_length=100),
            Column("last_name", "text", N_("Last name."), "Meikäläinen", max_length=100),
            Column(
                "birth_year",
                "integer",
                N_("Year of birth (taken from the identity code when empty)."),
                "1950",
                minimum=1900,
                maximum=2100,
            ),
            Column(
                "sex",
                "code",
                N_("male, female or other (also m/f, mies/nainen, 1/2)."),
                "male",
                vocabulary="sexes",
            ),
            Column(
                "lives_alone",
                "boolean",
                N_("Lives alone: yes or no (also kyllä/ei, 1/0)."),
                "no",
            ),
            Column("email", "email", N_("E-mail address for invitations."), max_length=254),
            Column(
                "phone",
                "phone",
                N_("Mobile phone number for text-message invitations."),
                "+358 40 1234567",
                max_length=40,
            ),
            Column(
                "postal_address",
                "text",
                N_("Postal address for printed invitations."),
                max_length=500,
            ),
            Column(
                "preferred_language",
                "code",
                N_("Language of the invitations and questionnaires: fi, sv or en (default fi)."),
                "fi",
                vocabulary="languages",
            ),
            Column(
                "pilot",
                "code",
                N_("Pilot code; when given it must be the pilot the file is imported into."),
                "bph",
                vocabulary="pilot",
            ),
            Column(
                "arm",
                "code",
                N_("The pilot arm (see the pilot definition)."),
                "operating_room",
                required=True,
                vocabulary="arms",
            ),
            Column(
                "index_date",
                "date",
                N_("The index date: the procedure date or the enrolment date, by pilot."),
                "2025-03-14",
                required=True,
            ),
            Column(
                "enrolled_on",
                "date",
                N_("Date of enrolment (default: the day of the import)."),
                "2025-02-20",
                not_future=True,
            ),
            Column("unit", "text", N_("Treating unit."), "Urologian poliklinikka", max_length=80),
            Column(
                "clinician_code",
                "text",
                N_("Code of the responsible clinician."),
                "URO12",
                max_length=40,
            ),
        ),
    ),
    "procedures": Schema(
        "procedures",
        N_("Procedures"),
        N_("Procedures of enrolled patients: type, setting, date and NordDRG code."),
        (
            *_PERSON,
            Column(
                "procedure_type",
                "code",
                N_("Procedure type from the pilot definition."),
                "turp",
                required=True,
                vocabulary="procedure_types",
            ),
            Column(
                "setting",
                "code",
                N_(
                    "Where the procedure was done: a setting of the pilot definition "
                    "(procedure_settings, else the arms) that the person's arm allows."
                ),
                "operating_room",
                required=True,
                vocabulary="settings",
            ),
            Column(
                "performed_on",
                "date",
                N_("Date of the procedure."),
                "2025-03-14",
                required=True,
                not_future=True,
            ),
            Column(
                "drg_code",
                "drg",
                N_("NordDRG code of the episode (letters and digits)."),
                "11M06",
                max_length=20,
            ),
            Column(
                "unit", "text", N_("Unit that did the procedure."), "Leikkausosasto", max_length=80
            ),
            Column("surgeon_code", "text", N_("Code of the surgeon."), "URO12", max_length=40),
        ),
        requires=("procedure_types",),
    ),
    "measurements": Schema(
        "measurements",
        N_("Clinical measurements"),
        N_(
            "Values of the clinical measures in the measure catalogue, with the catalogue's "
            "unit and valid range."
        ),
        (
            *_PERSON,
            Column(
                "measure",
                "code",
                N_("Measure id from the measure catalogue (e.g. qmax, pvr, psa)."),
                "qmax",
                required=True,
                vocabulary="measures",
            ),
            Column(
                "value",
                "measure_value",
                N_(
                    "The value: a number within the measure's range, a grade of a graded "
                    "measure (e.g. Clavien–Dindo IIIa) or yes/no."
                ),
                "12,5",
                required=True,
            ),
            Column(
                "unit",
                "unit",
                N_("The catalogue's unit of the measure (e.g. mL/s); empty for grades and yes/no."),
                "mL/s",
                max_length=20,
            ),
            Column(
                "measured_on",
                "date",
                N_("Date of the measurement."),
                "2025-02-01",
                required=True,
                not_future=True,
            ),
            Column(
                "time_point",
                "code",
                N_(
                    "Optional time point of the pilot (e.g. baseline); the date must then fall "
                    "within its window."
                ),
                "baseline",
                vocabulary="time_points",
                stored=False,
            ),
        ),
        requires=("measures",),
    ),
    "resource_use": Schema(
        "resource_use",
        N_("Resource use"),
        N_(
            "Products used by each patient (quantity × product), costed with the unit costs "
            "of the product catalogue."
        ),
        (
            *_PERSON,
            Column(
                "product_code",
                "code",
                N_("Product code from the product catalogue."),
                "OR_MINUTE",
                required=True,
                vocabulary="products",
            ),
            Column(
                "quantity",
                "decimal",
                N_("Quantity in the product's unit (more than 0)."),
                "65",
                required=True,
                minimum=0,
                minimum_exclusive=True,
                maximum=100_000,
            ),
            Column(
                "service_date",
                "date",
                N_("Date of the service."),
                "2025-03-14",
                required=True,
                not_future=True,
            ),
            Column(
                "cost_centre",
                "code",
                N_("Cost centre, when it differs from the product's own."),
                vocabulary="cost_centres",
            ),
        ),
    ),
    "direct_costs": Schema(
        "direct_costs",
        N_("Direct costs"),
        N_(
            "Costs in euros that are not product quantities (e.g. an outsourced service), "
            "indexed from their own price year."
        ),
        (
            *_PERSON,
            Column(
                "amount_eur",
                "decimal",
                N_("Amount in euros, VAT 0 %."),
                "1250,00",
                required=True,
                minimum=0,
                maximum=10_000_000,
            ),
            Column(
                "price_year",
                "integer",
                N_("The year whose prices the amount is in (must be in the price index)."),
                "2025",
                required=True,
                vocabulary="price_years",
            ),
            Column(
                "service_date",
                "date",
                N_("Date of the service."),
                "2025-04-02",
                required=True,
                not_future=True,
            ),
            Column(
                "product_code",
                "code",
                N_("Product code, if the cost belongs to a product."),
                vocabulary="products",
            ),
            Column(
                "cost_centre",
                "code",
                N_("Cost centre the cost belongs to."),
                "URO_POLI",
                vocabulary="cost_centres",
            ),
            Column(
                "description",
                "text",
                N_("What the cost is."),
                "Ostopalvelu: kuvantaminen",
                max_length=200,
            ),
        ),
    ),
    "exposures": Schema(
        "exposures",
        N_("Service exposures"),
        N_("Services an older adult received: type, provider sector, period and contacts."),
        (
            *_PERSON,
            Column(
                "service_type",
                "code",
                N_("Service type from the pilot definition."),
                "day_activity",
                required=True,
                vocabulary="service_types",
            ),
            Column(
                "provider_sector",
                "code",
                N_("county, municipality, ngo or parish (from the pilot definition)."),
                "ngo",
                required=True,
                vocabulary="provider_sectors",
            ),
            Column(
                "start_date",
                "date",
                N_("First day of the service."),
                "2025-02-03",
                required=True,
                not_future=True,
            ),
            Column("end_date", "date", N_("Last day (empty while it goes on)."), "2025-05-30"),
            Column(
                "contacts",
                "integer",
                N_("Number of contacts or visits in the period (default 0)."),
                "16",
                minimum=0,
                maximum=100_000,
            ),
            Column(
                "provider_name",
                "text",
                N_("Name of the provider."),
                "Eläkeläisyhdistys",
                max_length=200,
            ),
            Column(
                "cost_eur",
                "decimal",
                N_("Cost of the service in euros at the pilot's price year, if known."),
                "480",
                minimum=0,
                maximum=10_000_000,
            ),
        ),
        date_order=(("start_date", "end_date"),),
        requires=("service_types", "provider_sectors"),
    ),
    "responses": Schema(
        "responses",
        N_("Questionnaire answers"),
        N_(
            "Answers given on paper, by phone or in another system: one row per person, time "
            "point and instrument, then one column per item id holding the answer code. A row "
            "leaves the items of other instruments empty. A FHIR R4 Bundle of "
            "QuestionnaireResponses (JSON) is read as well."
        ),
        (
            *_PERSON,
            Column(
                "time_point",
                "code",
                N_("The time point of the pilot (e.g. baseline)."),
                "baseline",
                required=True,
                vocabulary="time_points",
            ),
            Column(
                "instrument",
                "code",
                N_("The instrument (questionnaire) id; the time point must schedule it."),
                "ipss",
                required=True,
                vocabulary="instruments",
            ),
            Column(
                "completed_on",
                "date",
                N_(
                    "The day the answers were given; it must fall within the time point's "
                    "answering window."
                ),
                "2025-03-01",
                required=True,
                not_future=True,
            ),
            Column(
                "instrument_version",
                "text",
                N_("The instrument version the answers were given in (default: the current one)."),
                "1",
                max_length=20,
            ),
            Column(
                "mode",
                "code",
                N_("How the answers were given: web, phone, paper or imported (default imported)."),
                "paper",
                vocabulary="modes",
            ),
            Column(
                "proxy",
                "boolean",
                N_(
                    "yes when someone else (a relative or a staff member) answered for the "
                    "person (default no)."
                ),
                "no",
            ),
            Column(
                "language",
                "code",
                N_("The language of the questionnaire: fi, sv or en (default fi)."),
                "fi",
                vocabulary="languages",
            ),
        ),
    ),
}
"""The kinds. ``responses`` names only its fixed columns: the item columns come from the
pilot's instruments (:func:`vaikuttavuus.domain.response_imports.item_columns`)."""


def check_header(
    schema: Schema, columns: Sequence[str], extra: Collection[str] = ()
) -> list[RowError]:
    """Missing, unknown and repeated columns (line 1), or no column that names the person.
    ``extra`` are further known columns (the item ids of a responses file)."""
    errors: list[RowError] = []
    known = set(schema.header) | set(extra)
    seen: set[str] = set()
    for name in columns:
        if name in seen:
            errors.append(RowError(1, _shown(name, None), None, "duplicate_column"))
        elif name not in known:
            shown = list(schema.header) + sorted(set(extra) - set(schema.header))
            errors.append(
                RowError(1, _shown(name, None), None, "unknown_column", {"columns": shown})
            )
        seen.add(name)
    errors += [
        RowError(1, name, None, "missing_column") for name in schema.required if name not in seen
    ]
    if not seen & set(PERSON_COLUMNS):
        errors.append(RowError(1, None, None, "no_person_column"))
    return errors


# --------------------------------------------------------------------------------------------
# Context: the pilot, the catalogues and the database look-ups
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PersonMatch:
    """A stored person and, if enrolled in the import's pilot, the enrolment."""

    person_id: int
    enrolment_id: int | None = None
    arm: str | None = None
    index_date: date | None = None


@dataclass(frozen=True)
class PeopleFound:
    by_identity_hash: Mapping[str, PersonMatch] = field(default_factory=dict)
    by_pseudonym: Mapping[str, PersonMatch] = field(default_factory=dict)


ResponseKey = tuple[int, str, str]
"""A response's natural key: (enrolment id, time point, instrument)."""


@dataclass(frozen=True)
class StoredResponse:
    """A stored response that an imported row may repeat, complete or contradict."""

    status: str
    version: str
    completed_on: date | None
    mode: str
    proxy: bool
    answers: Mapping[str, str] = field(default_factory=dict)
    """Item id → stored value (canonical text)."""


def _no_people(_hashes: Sequence[str], _pseudonyms: Sequence[str]) -> PeopleFound:
    return PeopleFound()


def _no_responses(_keys: Sequence[ResponseKey]) -> Mapping[ResponseKey, StoredResponse]:
    return {}


def _no_hashes(_hashes: Sequence[str]) -> Collection[str]:
    return ()


@dataclass(frozen=True)
class ImportContext:
    """What the checks need besides the file.

    ``hash_identity_code`` turns a valid, normalised identity code into its keyed hash;
    ``find_people(identity_hashes, pseudonyms)`` returns the stored people among them;
    ``stored_row_hashes(hashes)`` returns those already stored for this kind.

    Questionnaire answers (``responses``) also need ``instruments`` (code → version → spec:
    every version a response may be given in), ``current_versions`` (code → the current
    version), ``stored_responses(keys)`` (the stored responses among (enrolment id, time
    point, instrument) keys) and ``allow_outside_window`` (dates outside the time point's
    window are accepted).
    """

    pilot: PilotSpec
    measures: MeasureCatalogue
    today: date
    hash_identity_code: Callable[[str], str]
    product_codes: Collection[str] = ()
    cost_centre_codes: Collection[str] = ()
    price_years: Collection[int] = ()
    find_people: Callable[[Sequence[str], Sequence[str]], PeopleFound] = _no_people
    stored_row_hashes: Callable[[Sequence[str]], Collection[str]] = _no_hashes
    languages: tuple[str, ...] = LANGUAGES
    instruments: Mapping[str, Mapping[str, InstrumentSpec]] = field(default_factory=dict)
    current_versions: Mapping[str, str] = field(default_factory=dict)
    stored_responses: Callable[[Sequence[ResponseKey]], Mapping[ResponseKey, StoredResponse]] = (
        _no_responses
    )
    allow_outside_window: bool = False

    def pilot_measures(self) -> tuple[MeasureSpec, ...]:
        return tuple(m for m in self.measures.measures if not m.pilots or self.pilot.id in m.pilots)

    def allowed(self, vocabulary: str) -> tuple[str, ...]:
        """The allowed values of a vocabulary, in their stored spelling."""
        pilot = self.pilot
        values: dict[str, Callable[[], Iterable[object]]] = {
            "arms": lambda: (arm.id for arm in pilot.arms),
            "procedure_types": lambda: (t.id for t in pilot.procedure_types),
            "service_types": lambda: (t.id for t in pilot.service_types),
            "provider_sectors": lambda: (s.id for s in pilot.provider_sectors),
            "time_points": lambda: (tp.id for tp in pilot.time_points),
            "settings": lambda: (s.id for s in pilot.settings),
            "measures": lambda: (m.id for m in self.pilot_measures()),
            "products": lambda: self.product_codes,
            "cost_centres": lambda: self.cost_centre_codes,
            "price_years": lambda: sorted(self.price_years),
            "languages": lambda: self.languages,
            "sexes": lambda: ("male", "female", "other"),
            "pilot": lambda: (pilot.id,),
            "instruments": lambda: pilot.instrument_ids,
            "modes": lambda: RESPONSE_MODES,
        }
        return tuple(str(value) for value in values[vocabulary]())

    def vocabulary(self, name: str) -> dict[str, str]:
        """Accepted spellings → stored value: the values themselves, their case-folded forms
        and, for sexes, the documented aliases."""
        mapping: dict[str, str] = {}
        for value in self.allowed(name):
            mapping[value] = value
            mapping.setdefault(value.casefold(), value)
        if name == "sexes":
            for alias, value in SEX_ALIASES.items():
                mapping.setdefault(alias, value)
        return mapping


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Validation:
    """The checked file.

    ``frame`` holds the rows to store (index: line): typed values under the column names,
    ``enrolment_id`` and ``row_hash`` (people: ``person_id`` for a stored person, else NaN,
    ``identity_code`` normalised and ``identity_hash``); rows already stored are left out and
    counted in ``rows_duplicate``. ``errors`` lists at most ``max_errors`` problems in line
    order; ``error_count`` counts them all. Questionnaire answers (``responses``): ``frame``
    has one row per response and ``answers`` one row per answer (see
    :func:`vaikuttavuus.domain.response_imports.finish`).
    """

    kind: str
    frame: pd.DataFrame
    errors: tuple[RowError, ...]
    error_count: int
    rows_total: int
    rows_duplicate: int
    answers: pd.DataFrame | None = None
    notes: tuple[RowError, ...] = ()
    """Things worth knowing about rows that are stored all the same (``responses``: a
    required item left unanswered); at most ``max_errors`` of them, ``note_count`` counts
    all."""
    note_count: int = 0

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    @property
    def rows_new(self) -> int:
        return len(self.frame)


ParamSource = Mapping[str, Any] | Callable[[np.ndarray], list[dict[str, Any]]] | None

_NAT_DAY = int(np.iinfo("int64").min)
"""A missing date among int64 day numbers (what NaT becomes)."""


class _Errors:
    """Failing cells as (positions, column, code, params); objects only for those reported."""

    def __init__(self, table: RawTable) -> None:
        self.table = table
        self.lines = table.frame.index.to_numpy()
        self.bad = np.zeros(table.rows, dtype=bool)
        self.bad_in: dict[str, np.ndarray] = {}
        self.entries: list[tuple[np.ndarray, str | None, str, ParamSource]] = []
        self.given: list[RowError] = []

    def add_given(self, errors: Sequence[RowError]) -> None:
        """Errors found while reading the file, already built (their lines are rows)."""
        if not errors:
            return
        position = {int(line): p for p, line in enumerate(self.lines)}
        for error in errors:
            where = position.get(error.line)
            if where is not None:
                self.bad[where] = True
                if error.column is not None:
                    column_bad = self.bad_in.setdefault(
                        error.column, np.zeros(len(self.bad), dtype=bool)
                    )
                    column_bad[where] = True
            self.given.append(error)

    def add(
        self,
        mask: np.ndarray | pd.Series,
        column: str | None,
        code: str,
        params: ParamSource = None,
    ) -> None:
        positions = np.flatnonzero(np.asarray(mask, dtype=bool))
        if len(positions) == 0:
            return
        self.bad[positions] = True
        if column is not None:
            column_bad = self.bad_in.setdefault(column, np.zeros(len(self.bad), dtype=bool))
            column_bad[positions] = True
        self.entries.append((positions, column, code, params))

    def failed(self, *columns: str) -> np.ndarray:
        """Rows with an error in any of ``columns``."""
        mask = np.zeros(len(self.bad), dtype=bool)
        for column in columns:
            if column in self.bad_in:
                mask |= self.bad_in[column]
        return mask

    @property
    def count(self) -> int:
        return sum(len(entry[0]) for entry in self.entries) + len(self.given)

    def report(self, limit: int) -> tuple[RowError, ...]:
        """The first ``limit`` errors in line order (then in the order they were found)."""
        built = self._built(limit)
        if not self.given:
            return built
        merged = sorted([*self.given, *built], key=lambda error: error.line)
        return tuple(merged[:limit])

    def _built(self, limit: int) -> tuple[RowError, ...]:
        if not self.entries:
            return ()
        positions = np.concatenate([entry[0] for entry in self.entries])
        owners = np.concatenate(
            [np.full(len(entry[0]), number) for number, entry in enumerate(self.entries)]
        )
        order = np.lexsort((owners, positions))[:limit]
        chosen: dict[int, list[int]] = {}
        for place in order:
            chosen.setdefault(int(owners[place]), []).append(int(positions[place]))
        frame = self.table.frame
        built: dict[tuple[int, int], RowError] = {}
        for owner, picked in chosen.items():
            _all, column, code, source = self.entries[owner]
            if callable(source):
                params_list = source(np.asarray(picked))
            else:
                params_list = [dict(source or {})] * len(picked)
            for position, params in zip(picked, params_list, strict=True):
                value = None
                if column is not None and column in frame.columns:
                    value = _shown(str(frame[column].iat[position]), column)
                built[(owner, position)] = RowError(
                    int(self.lines[position]), column, value, code, _json_params(params)
                )
        return tuple(built[(int(owners[p]), int(positions[p]))] for p in order)


def _json_params(params: Mapping[str, Any]) -> dict[str, Any]:
    def plain(value: Any) -> Any:
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not np.isfinite(value):
            return None
        if isinstance(value, date | datetime):
            return value.isoformat()[:10]
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value

    return {str(key): plain(value) for key, value in params.items()}


def _per_value(
    values: np.ndarray, func: Callable[[Any], Any], missing: Any, dtype: Any = object
) -> np.ndarray:
    """``func`` applied once per distinct value and spread back to the rows (``missing`` for
    ``None``/NaN)."""
    codes, uniques = pd.factorize(np.asarray(values, dtype=object))
    table = np.array([*(func(value) for value in uniques), missing], dtype=dtype)
    return table[codes]


def _days(values: pd.Series) -> np.ndarray:
    """Timestamps → int64 day numbers since 1970-01-01 (NaT → :data:`_NAT_DAY`)."""
    return np.asarray(values.to_numpy()).astype("datetime64[D]").astype("int64")


def _day(value: date) -> int:
    return int(np.datetime64(value, "D").astype("int64"))


def _iso(days: np.ndarray) -> np.ndarray:
    """int64 day numbers → ``YYYY-MM-DD`` (object array; ``""`` for a missing date)."""
    days = np.asarray(days, dtype="int64")
    text = days.astype("datetime64[D]").astype(str).astype(object)
    text[days == _NAT_DAY] = ""
    return text


_FREE_TEXT = frozenset({"text", "email", "phone"})


class _Check:
    """One validation run: the parsed columns (``values``, indexed like the table) and the
    errors found so far. Dates are kept as int64 day numbers."""

    def __init__(self, schema: Schema, table: RawTable, context: ImportContext) -> None:
        self.schema = schema
        self.context = context
        self.raw = table.frame
        self.index = table.frame.index
        self.n = table.rows
        self.errors = _Errors(table)
        self.values: dict[str, pd.Series] = {}
        self.blank: dict[str, np.ndarray] = {}
        self.today = _day(context.today)
        self._codes: np.ndarray | None = None

    def cells(self, name: str) -> np.ndarray:
        """The column's cells (object array of str; all empty for a column not in the file)."""
        if name in self.raw.columns:
            return self.raw[name].to_numpy(dtype=object)
        return np.full(self.n, "", dtype=object)

    def series(self, values: Any, dtype: Any = object) -> pd.Series:
        return pd.Series(values, index=self.index, dtype=dtype)

    # -- one column ------------------------------------------------------------------------
    #
    # A column is parsed once per distinct cell text (a million rows usually hold a few
    # hundred dates, products or quantities): the parsers below see the distinct texts, and
    # fail() spreads their findings back to the rows.

    def parse(self, column: Column) -> None:
        codes, uniques = pd.factorize(self.cells(column.name))
        distinct = pd.Series(np.asarray(uniques, dtype=object), dtype=object)
        blank = (distinct == "").to_numpy()
        self._codes = codes
        try:
            self.blank[column.name] = blank[codes]
            if column.required:
                self.fail(blank, column.name, "missing")
            if column.max_length is not None:
                too_long = (distinct.str.len() > column.max_length).to_numpy()
                self.fail(too_long, column.name, "too_long", {"max": column.max_length})
            if column.type in _FREE_TEXT:
                shaped = distinct.str.contains(_IDENTITY_SHAPE, regex=True).to_numpy()
                self.fail(shaped, column.name, "contains_identity_code")
            parsed = getattr(self, f"_parse_{column.type}")(column, distinct, blank)
        finally:
            self._codes = None
        taken = parsed.take(codes)
        # object arrays stay object (pandas would infer a string dtype, turning None into NaN)
        dtype = object if isinstance(taken, np.ndarray) and taken.dtype.kind == "O" else None
        self.values[column.name] = pd.Series(taken, index=self.index, dtype=dtype)

    def fail(
        self, mask: np.ndarray, column: str | None, code: str, params: ParamSource = None
    ) -> None:
        """Record an error; inside :meth:`parse` the mask is per distinct text."""
        codes = self._codes
        if codes is None:
            self.errors.add(mask, column, code, params)
            return
        if callable(params):
            per_text = params
            params = lambda positions: per_text(codes[positions])  # noqa: E731
        self.errors.add(np.asarray(mask)[codes], column, code, params)

    def _as_text(self, cells: pd.Series, blank: np.ndarray) -> np.ndarray:
        values = cells.to_numpy(dtype=object, copy=True)
        values[blank] = None
        return values

    def _parse_text(self, column: Column, cells: pd.Series, blank: np.ndarray) -> np.ndarray:
        return self._as_text(cells, blank)

    _parse_unit = _parse_text
    _parse_measure_value = _parse_text  # checked with its measure in check_measurements()

    def _matching(
        self, column: Column, cells: pd.Series, blank: np.ndarray, pattern: str, expected: str
    ) -> np.ndarray:
        ok = cells.str.fullmatch(pattern).to_numpy()
        self.fail(~ok & ~blank, column.name, "invalid_format", {"expected": expected})
        return self._as_text(cells, blank | ~ok)

    def _parse_email(self, column: Column, cells: pd.Series, blank: np.ndarray) -> np.ndarray:
        return self._matching(column, cells, blank, _EMAIL, "email")

    def _parse_phone(self, column: Column, cells: pd.Series, blank: np.ndarray) -> np.ndarray:
        return self._matching(column, cells, blank, _PHONE, "phone")

    def _parse_drg(self, column: Column, cells: pd.Series, blank: np.ndarray) -> np.ndarray:
        return self._matching(column, cells.str.upper(), blank, _DRG, "drg")

    def _parse_code(self, column: Column, cells: pd.Series, blank: np.ndarray) -> np.ndarray:
        assert column.vocabulary is not None
        mapping = self.context.vocabulary(column.vocabulary)
        values = np.array(
            [mapping.get(text, mapping.get(text.casefold())) for text in cells.tolist()],
            dtype=object,
        )
        unknown = pd.isna(values) & ~blank
        if column.vocabulary == "pilot":
            self.fail(unknown, column.name, "wrong_pilot", {"pilot": self.context.pilot.id})
        else:
            allowed = list(self.context.allowed(column.vocabulary))
            self.fail(
                unknown,
                column.name,
                "unknown_code",
                {"allowed": allowed[:MAX_ALLOWED_SHOWN], "more": len(allowed) > MAX_ALLOWED_SHOWN},
            )
        return values

    def _parse_boolean(self, column: Column, cells: pd.Series, blank: np.ndarray) -> np.ndarray:
        words = np.array([BOOLEAN_ALIASES.get(t.casefold()) for t in cells.tolist()], dtype=object)
        unknown = pd.isna(words) & ~blank
        self.fail(unknown, column.name, "unknown_code", {"allowed": ["yes", "no"]})
        # np.array(None) is what NumPy makes of a bare None; its stubs do not accept None
        return np.where(pd.isna(words), np.array(None), words == "yes")

    def numbers(self, cells: pd.Series, blank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(float values, not-a-number mask): a decimal comma, spaces and "−" are accepted;
        ``inf``, ``nan`` and the like are not numbers."""
        values = pd.to_numeric(cells.where(~blank), errors="coerce").to_numpy(
            dtype="float64", na_value=np.nan, copy=True
        )
        failed = np.isnan(values) & ~blank
        if failed.any():
            retry = cells[failed].str.replace(_SPACES, "", regex=True)
            retry = retry.str.replace("\u2212", "-", regex=False).str.replace(",", ".", regex=False)
            ok = retry.str.fullmatch(_DECIMAL)
            values[failed] = pd.to_numeric(retry.where(ok), errors="coerce").to_numpy(
                dtype="float64", na_value=np.nan
            )
        bad = ~np.isfinite(values) & ~blank
        values[bad] = np.nan
        return values, bad

    def _parse_decimal(self, column: Column, cells: pd.Series, blank: np.ndarray) -> np.ndarray:
        values, bad = self.numbers(cells, blank)
        self.fail(bad, column.name, "not_a_number")
        self._check_range(column, values)
        return values

    def _parse_integer(self, column: Column, cells: pd.Series, blank: np.ndarray) -> Any:
        values, bad = self.numbers(cells, blank)
        self.fail(bad, column.name, "not_a_number")
        fraction = np.isfinite(values) & (values != np.round(values))
        self.fail(fraction, column.name, "not_an_integer")
        values[fraction] = np.nan
        if column.vocabulary is not None:
            allowed = sorted(int(v) for v in self.context.allowed(column.vocabulary))
            unknown = np.isfinite(values) & ~np.isin(values, np.array(allowed, dtype="float64"))
            self.fail(
                unknown, column.name, "unknown_code", {"allowed": allowed[-MAX_ALLOWED_SHOWN:]}
            )
        else:
            self._check_range(column, values)
        return pd.array(values, dtype="Int64")

    def _check_range(self, column: Column, values: np.ndarray) -> None:
        low = -np.inf if column.minimum is None else column.minimum
        high = np.inf if column.maximum is None else column.maximum
        below = values <= low if column.minimum_exclusive else values < low
        outside = np.isfinite(values) & (below | (values > high))
        self.fail(
            outside,
            column.name,
            "out_of_range",
            {"min": column.minimum, "max": column.maximum, "exclusive": column.minimum_exclusive},
        )

    def _parse_date(self, column: Column, cells: pd.Series, blank: np.ndarray) -> np.ndarray:
        days = _days(pd.to_datetime(cells.where(~blank), format="%Y-%m-%d", errors="coerce"))
        failed = (days == _NAT_DAY) & ~blank
        if failed.any():
            retry = cells[failed]
            iso = retry.str.split(r"[T ]", n=1, regex=True).str[0]
            second = pd.to_datetime(
                iso.where(retry.str.fullmatch(_ISO_DATE_TIME)), format="%Y-%m-%d", errors="coerce"
            )
            finnish = pd.to_datetime(
                retry.where(retry.str.fullmatch(_FINNISH_DATE)), format="%d.%m.%Y", errors="coerce"
            )
            days[failed] = _days(second.fillna(finnish))
        self.fail((days == _NAT_DAY) & ~blank, column.name, "not_a_date")
        known = days != _NAT_DAY
        outside = known & ((days < _day(MIN_DATE)) | (days > _day(MAX_DATE)))
        self.fail(outside, column.name, "out_of_range", {"min": MIN_DATE, "max": MAX_DATE})
        days[outside] = _NAT_DAY
        if column.not_future:
            future = (days != _NAT_DAY) & (days > self.today)
            self.fail(future, column.name, "date_in_future", {"today": self.context.today})
        return days

    def _parse_identity_code(
        self, column: Column, cells: pd.Series, blank: np.ndarray
    ) -> np.ndarray:
        normalised = [identity.normalise(text) for text in cells.tolist()]
        problem = np.array([identity.validate(text) for text in normalised], dtype=object)
        problem[blank] = None
        invalid = pd.notna(problem)
        self.fail(
            invalid,
            column.name,
            "invalid_identity_code",
            lambda positions: [{"problem": problem[p]} for p in positions],
        )
        values = np.array(normalised, dtype=object)
        values[invalid | blank] = None
        return values

    def _parse_pseudonym(self, column: Column, cells: pd.Series, blank: np.ndarray) -> np.ndarray:
        values = np.array([identity.normalise_pseudonym(t) for t in cells.tolist()], dtype=object)
        valid = np.array([identity.is_pseudonym(p) for p in values], dtype=bool)
        self.fail(~valid & ~blank, column.name, "invalid_format", {"expected": "pseudonym"})
        values[~valid | blank] = None
        return values

    # -- rules across columns --------------------------------------------------------------

    def check_date_order(self) -> None:
        for earlier, later in self.schema.date_order:
            start = self.values[earlier].to_numpy()
            end = self.values[later].to_numpy()
            wrong = (start != _NAT_DAY) & (end != _NAT_DAY) & (end < start)

            def params(
                positions: np.ndarray, start: np.ndarray = start, earlier: str = earlier
            ) -> list[dict[str, Any]]:
                return [
                    {"start": text, "start_column": earlier} for text in _iso(start[positions])
                ]

            self.errors.add(wrong, later, "date_order", params)

    def check_settings(self, arms: np.ndarray) -> None:
        """A procedure's setting is one that its person's arm allows (``arms → settings`` of
        the pilot; an arm without a list allows every setting of the pilot)."""
        pilot = self.context.pilot
        allowed = {arm.id: pilot.settings_of(arm.id) for arm in pilot.arms}
        setting = self.values["setting"].to_numpy(dtype=object)
        wrong = np.array(
            [
                isinstance(value, str) and arm in allowed and value not in allowed[arm]
                for value, arm in zip(setting, arms, strict=True)
            ],
            dtype=bool,
        )
        self.errors.add(
            wrong,
            "setting",
            "conflict",
            lambda positions: [
                {"reason": "setting", "arm": arms[p], "allowed": list(allowed[arms[p]])}
                for p in positions
            ],
        )

    def check_measurements(self, index_day: np.ndarray) -> None:
        """The value by its measure's type and range, the unit, the time point's window.

        Sets ``value_num`` (numbers; yes/no as 1/0), ``value_text`` (grades, in the
        catalogue's spelling) and ``unit`` (the catalogue's spelling; none for grades and yes/no).
        """
        measures = {m.id: m for m in self.context.pilot_measures()}
        measure = self.values["measure"].to_numpy(dtype=object)

        def per_measure(func: Callable[[MeasureSpec], Any], missing: Any, dtype: Any) -> Any:
            return _per_value(
                measure, lambda m: func(measures[m]) if m in measures else missing, missing, dtype
            )

        kind = per_measure(lambda m: m.type, "", object)
        low = per_measure(lambda m: np.nan if m.min is None else m.min, np.nan, "float64")
        high = per_measure(lambda m: np.nan if m.max is None else m.max, np.nan, "float64")
        unit = per_measure(lambda m: m.unit or "", "", object)
        raw = self.cells("value")
        cells = pd.Series(raw, dtype=object)
        blank = self.blank["value"]

        numeric = np.isin(kind, ["decimal", "integer"]) & ~blank
        values, bad = self.numbers(cells, ~numeric)
        self.errors.add(bad, "value", "not_a_number")
        fraction = (kind == "integer") & np.isfinite(values) & (values != np.round(values))
        self.errors.add(fraction, "value", "not_an_integer")
        outside = np.isfinite(values) & ((values < low) | (values > high))
        self.errors.add(
            outside,
            "value",
            "out_of_range",
            lambda positions: [{"min": low[p], "max": high[p], "unit": unit[p]} for p in positions],
        )
        value_num = np.where(numeric & ~fraction & ~outside, values, np.nan)
        value_text = np.full(self.n, None, dtype=object)

        grade = (kind == "grade") & ~blank
        if grade.any():
            spelling = {(m.id, g.casefold()): g for m in measures.values() for g in m.grades}
            keys = np.where(grade, measure, "") + "\x1f" + np.where(grade, raw, "")
            matched = _per_value(
                keys, lambda key: spelling.get(tuple(key.casefold().split("\x1f", 1))), None
            )
            unknown = grade & pd.isna(matched)
            self.errors.add(
                unknown,
                "value",
                "unknown_code",
                lambda positions: [
                    {"allowed": list(measures[measure[p]].grades)} for p in positions
                ],
            )
            value_text = np.where(grade & ~unknown, matched, value_text)

        yes_no = (kind == "yes_no") & ~blank
        if yes_no.any():
            words = _per_value(raw, lambda text: BOOLEAN_ALIASES.get(text.casefold()), None)
            unknown = yes_no & pd.isna(words)
            self.errors.add(unknown, "value", "unknown_code", {"allowed": ["yes", "no"]})
            answered = yes_no & ~unknown
            value_num = np.where(answered, (words == "yes").astype("float64"), value_num)

        has_measure = kind != ""
        unit_blank = self.blank["unit"]
        given = _per_value(self.cells("unit"), _unit_key, "")
        expected = _per_value(unit, _unit_key, "")
        self.errors.add(has_measure & (unit != "") & unit_blank, "unit", "missing")
        self.errors.add(
            has_measure & ~unit_blank & (given != expected),
            "unit",
            "wrong_unit",
            lambda positions: [{"expected": unit[p]} for p in positions],
        )
        self.values["value_num"] = self.series(value_num, "float64")
        self.values["value_text"] = self.series(value_text)
        self.values["unit"] = self.series(np.where(has_measure & (unit != ""), unit, None))

        time_point = self.values["time_point"].to_numpy(dtype=object)
        measured = self.values["measured_on"].to_numpy()
        windows = {
            tp.id: (tp.window_open_days, tp.window_close_days)
            for tp in self.context.pilot.time_points
        }
        opens = _per_value(time_point, lambda t: windows[t][0], 0, "int64")
        closes = _per_value(time_point, lambda t: windows[t][1], 0, "int64")
        known = pd.notna(time_point) & (index_day != _NAT_DAY) & (measured != _NAT_DAY)
        offset = np.where(known, measured - np.where(known, index_day, 0), 0)
        outside_window = known & ((offset < opens) | (offset > closes))
        self.errors.add(
            outside_window,
            "measured_on",
            "outside_window",
            lambda positions: [
                {
                    "time_point": time_point[p],
                    "start": _iso(np.array([index_day[p] + opens[p]]))[0],
                    "end": _iso(np.array([index_day[p] + closes[p]]))[0],
                }
                for p in positions
            ],
        )


def _unit_key(unit: object) -> str:
    """Units compare by NFKC, ignoring case and spaces; ``ug``/``mcg`` read as ``µg``."""
    text = unicodedata.normalize("NFKC", "" if unit is None else str(unit))
    text = re.sub(r"\s+", "", text).casefold()
    return re.sub(r"^(u|mc)g", "\u03bcg", text)


# --------------------------------------------------------------------------------------------
# People and row hashes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _People:
    """Who each row names: arrays aligned with the rows (NaN / None / NaT where unknown)."""

    identity_hash: np.ndarray
    person_id: np.ndarray
    enrolment_id: np.ndarray
    arm: np.ndarray
    index_day: np.ndarray
    code_unknown: np.ndarray
    """A valid identity code that matches no stored person."""


def _matches(keys: np.ndarray, table: Mapping[str, PersonMatch]) -> dict[str, np.ndarray]:
    codes, uniques = pd.factorize(np.asarray(keys, dtype=object))
    found: list[PersonMatch | None] = [table.get(str(key)) for key in uniques]
    found.append(None)
    return {
        "person_id": np.array([m.person_id if m else np.nan for m in found], "float64")[codes],
        "enrolment_id": np.array(
            [m.enrolment_id if m and m.enrolment_id is not None else np.nan for m in found],
            "float64",
        )[codes],
        "arm": np.array([m.arm if m else None for m in found], dtype=object)[codes],
        "index_day": np.array(
            [_day(m.index_date) if m and m.index_date else _NAT_DAY for m in found], "int64"
        )[codes],
    }


def _resolve_people(check: _Check) -> _People:
    """Hash the valid identity codes (once each), look the people up and pick, per row, the
    person of the identity code if it is known, otherwise the pseudonym's."""
    context = check.context
    codes = check.values["identity_code"].to_numpy(dtype=object)
    pseudonyms = check.values["pseudonym"].to_numpy(dtype=object)
    code_blank = check.blank["identity_code"]
    pseudonym_blank = check.blank["pseudonym"]
    present = [c for c in PERSON_COLUMNS if c in check.raw.columns]
    check.errors.add(
        code_blank & pseudonym_blank & ~check.errors.failed("subject"),
        present[0],
        "missing",
        {"either": list(PERSON_COLUMNS)},
    )
    hashes = _per_value(codes, context.hash_identity_code, None)
    found = context.find_people(
        [str(h) for h in pd.unique(hashes[pd.notna(hashes)])],
        [str(p) for p in pd.unique(pseudonyms[pd.notna(pseudonyms)])],
    )
    by_code = _matches(hashes, found.by_identity_hash)
    by_name = _matches(pseudonyms, found.by_pseudonym)

    code_known = ~np.isnan(by_code["person_id"])
    name_known = ~np.isnan(by_name["person_id"])
    check.errors.add(
        pd.notna(pseudonyms) & ~name_known, "pseudonym", "unknown_person", {"reason": "not_found"}
    )
    check.errors.add(
        code_known & name_known & (by_code["person_id"] != by_name["person_id"]),
        "pseudonym",
        "conflict",
        {"reason": "person"},
    )
    use_code = code_known | pd.isna(pseudonyms)
    picked = {key: np.where(use_code, by_code[key], by_name[key]) for key in by_code}
    return _People(
        identity_hash=hashes,
        person_id=picked["person_id"],
        enrolment_id=picked["enrolment_id"],
        arm=picked["arm"],
        index_day=picked["index_day"].astype("int64"),
        code_unknown=pd.notna(hashes) & ~code_known,
    )


def _canonical(series: pd.Series, column_type: str) -> np.ndarray:
    """A column's values as the text that enters the row hash (``""`` when missing); each
    distinct value is formatted once."""
    codes, uniques = pd.factorize(series)
    if column_type == "date":
        text = _iso(np.asarray(uniques, dtype="int64"))
    elif column_type in {"decimal", "measure_float"}:
        text = np.asarray(uniques, dtype="float64").astype(str).astype(object)
    elif column_type == "integer":
        text = np.array([str(int(value)) for value in uniques], dtype=object)
    elif column_type == "boolean":
        text = np.array(["1" if value else "0" for value in uniques], dtype=object)
    else:
        text = np.array([str(value) for value in uniques], dtype=object)
    return np.append(text, "").astype(object)[codes]


def _hashed_columns(check: _Check) -> list[tuple[str, str]]:
    """(value name, canonical type) of what a row hash covers, in schema order."""
    out: list[tuple[str, str]] = []
    for column in check.schema.columns:
        if column.name in PERSON_COLUMNS or not column.stored:
            continue
        if column.type == "measure_value":
            out += [("value_num", "measure_float"), ("value_text", "text")]
        else:
            out.append((column.name, column.type))
    return out


def row_hashes(kind: str, enrolment_ids: np.ndarray, parts: Sequence[np.ndarray]) -> np.ndarray:
    """SHA-256 (hex) of ``kind``, the enrolment id and the canonical texts, joined by U+001F.

    The one per-row Python step of a check: a cryptographic hash has no vectorised form
    (about 1.5 µs a row, join included).
    """
    ids = np.asarray(enrolment_ids, dtype="int64").astype(str).astype(object)
    kinds = np.full(len(ids), kind, dtype=object)
    return np.array(
        [
            hashlib.sha256("\x1f".join(values).encode("utf-8")).hexdigest()
            for values in zip(kinds, ids, *parts, strict=True)
        ],
        dtype=object,
    )


def _first_positions(keys: np.ndarray) -> np.ndarray:
    """For each key, the position where the same key first occurs."""
    codes, uniques = pd.factorize(np.asarray(keys, dtype=object))
    first = np.full(len(uniques), len(keys), dtype="int64")
    np.minimum.at(first, codes, np.arange(len(keys), dtype="int64"))
    return first[codes]


def _flag_repeats(
    check: _Check, rows: np.ndarray, keys: np.ndarray, column: str | None
) -> np.ndarray:
    """Mark every repeat of a key among ``rows`` as ``duplicate``; True where repeated."""
    if len(rows) == 0:
        return np.zeros(0, dtype=bool)
    first = _first_positions(keys)
    repeated = first != np.arange(len(keys))
    first_line = np.zeros(check.n, dtype="int64")
    first_line[rows] = check.errors.lines[rows[first]]
    mask = np.zeros(check.n, dtype=bool)
    mask[rows[repeated]] = True
    check.errors.add(
        mask,
        column,
        "duplicate",
        lambda positions: [{"first_line": int(first_line[p])} for p in positions],
    )
    return repeated


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def validate(
    kind: str,
    table: RawTable,
    context: ImportContext,
    *,
    max_errors: int = MAX_REPORTED_ERRORS,
    progress: Callable[[int, int], None] | None = None,
) -> Validation:
    """Check every row of ``table`` as ``kind``.

    Raises :class:`ImportFileError` when the file cannot be checked row by row (the kind does
    not apply to the pilot, a header problem, no data rows); otherwise returns the rows to
    store and every row error. ``progress(done, steps)`` is called after each step of the
    check (each column is one step, then the people, the rules across columns and the
    duplicates); every step covers all rows at once.
    """
    schema = SCHEMAS[kind]
    missing = [name for name in schema.requires if not context.allowed(name)]
    problems = [
        RowError(0, None, None, "kind_not_in_pilot", {"pilot": context.pilot.id, "what": name})
        for name in missing
    ]
    items: Collection[str] = ()
    if kind == "responses":
        from vaikuttavuus.domain import response_imports

        items = response_imports.item_columns(context)
    problems += check_header(schema, table.columns, items)
    if problems:
        raise ImportFileError(problems[:max_errors], count=len(problems))
    if table.rows == 0:
        raise ImportFileError([RowError(0, None, None, "no_rows")])

    steps = len(schema.columns) + 3
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, steps)

    check = _Check(schema, table, context)
    check.errors.add_given(table.problems)
    for column in schema.columns:
        check.parse(column)
        step()
    check.check_date_order()
    people = _resolve_people(check)
    step()
    if kind == "people":
        validation = _finish_people(check, people, max_errors)
        step()
        step()
        return validation

    person_failed = check.errors.failed(*PERSON_COLUMNS)
    check.errors.add(
        people.code_unknown & ~person_failed,
        "identity_code",
        "unknown_person",
        {"reason": "not_found"},
    )
    not_enrolled = ~np.isnan(people.person_id) & np.isnan(people.enrolment_id) & ~person_failed
    by_code = pd.notna(people.identity_hash)
    for name, mask in (("identity_code", by_code), ("pseudonym", ~by_code)):
        check.errors.add(not_enrolled & mask, name, "unknown_person", {"reason": "not_enrolled"})
    if kind == "measurements":
        check.check_measurements(people.index_day)
    if kind == "procedures":
        check.check_settings(people.arm)
    if kind == "responses":
        from vaikuttavuus.domain import response_imports

        validation = response_imports.finish(check, people, max_errors)
        step()
        step()
        return validation
    step()

    rows = np.flatnonzero(~check.errors.bad)
    enrolment_ids = np.nan_to_num(people.enrolment_id).astype("int64")
    parts = [_canonical(check.values[name], kind_)[rows] for name, kind_ in _hashed_columns(check)]
    hashes = row_hashes(kind, enrolment_ids[rows], parts)
    repeated = _flag_repeats(check, rows, hashes, None)
    rows, hashes = rows[~repeated], hashes[~repeated]
    stored = context.stored_row_hashes(list(hashes)) if len(hashes) else ()
    already = pd.Series(hashes, dtype=object).isin(set(stored)).to_numpy()
    rows, hashes = rows[~already], hashes[~already]

    index = check.index[rows]
    data: dict[str, Any] = {"enrolment_id": pd.Series(enrolment_ids[rows], index=index)}
    for name, kind_ in _hashed_columns(check):
        data[name] = _typed(check.values[name], kind_, rows, index)
    data["row_hash"] = pd.Series(hashes, index=index, dtype=object)
    step()
    return Validation(
        kind=kind,
        frame=pd.DataFrame(data, index=index),
        errors=check.errors.report(max_errors),
        error_count=check.errors.count,
        rows_total=check.n,
        rows_duplicate=int(already.sum()),
    )


def _typed(series: pd.Series, column_type: str, rows: np.ndarray, index: pd.Index) -> pd.Series:
    """The stored form of a column for ``rows``: dates as ``datetime64[s]``, numbers as floats
    or nullable integers, everything else as Python objects (``None`` when missing)."""
    if column_type == "date":
        days = series.to_numpy()[rows]
        return pd.Series(days.astype("datetime64[D]").astype("datetime64[s]"), index=index)
    if series.dtype == object:
        return pd.Series(series.to_numpy(dtype=object)[rows], index=index, dtype=object)
    return pd.Series(series.array[rows], index=index)


def _finish_people(check: _Check, people: _People, max_errors: int) -> Validation:
    """People rows: the birth year against the code, the same person twice, and an existing
    enrolment (same arm and index date: already stored; otherwise a conflict)."""
    codes = check.values["identity_code"].to_numpy(dtype=object)
    from_code = _per_value(codes, lambda c: identity.birth_date(c).year, np.nan, "float64")
    given = check.values["birth_year"].to_numpy(dtype="float64", na_value=np.nan)
    mismatch = np.isfinite(given) & np.isfinite(from_code) & (given != from_code)
    check.errors.add(
        mismatch,
        "birth_year",
        "conflict",
        lambda positions: [
            {"reason": "birth_year", "expected": int(from_code[p])} for p in positions
        ],
    )
    birth_year = np.where(np.isfinite(given), given, from_code)

    # One row per person: by the stored person, or by the identity code of a new person.
    candidates = np.flatnonzero(~check.errors.bad)
    key = np.where(
        np.isnan(people.person_id),
        "h:" + pd.Series(people.identity_hash, dtype=object).fillna("").to_numpy(dtype=object),
        "p:" + np.nan_to_num(people.person_id).astype("int64").astype(str).astype(object),
    )
    column = "identity_code" if "identity_code" in check.raw.columns else "pseudonym"
    _flag_repeats(check, candidates, key[candidates], column)

    arm = check.values["arm"].to_numpy(dtype=object)
    index_day = check.values["index_date"].to_numpy()
    enrolled = ~np.isnan(people.enrolment_id)
    same = enrolled & (people.arm == arm) & (people.index_day == index_day)
    check.errors.add(
        enrolled & ~same & ~check.errors.bad,
        "arm",
        "conflict",
        lambda positions: [
            {
                "reason": "enrolment",
                "arm": people.arm[p],
                "index_date": _iso(people.index_day[positions])[i],
            }
            for i, p in enumerate(positions)
        ],
    )
    ok = ~check.errors.bad
    keep = np.flatnonzero(ok & ~same)
    values = check.values
    enrolled_on = values["enrolled_on"].to_numpy()
    enrolled_on = np.where(enrolled_on == _NAT_DAY, check.today, enrolled_on)

    index = check.index[keep]

    def column_of(name: str) -> pd.Series:
        return _typed(values[name], "text", keep, index)

    frame = pd.DataFrame(
        {
            "person_id": pd.array(people.person_id[keep], dtype="Int64"),
            "identity_code": pd.Series(codes[keep], index=index, dtype=object),
            "identity_hash": pd.Series(people.identity_hash[keep], index=index, dtype=object),
            "first_name": column_of("first_name"),
            "last_name": column_of("last_name"),
            "birth_year": pd.array(birth_year[keep], dtype="Int64"),
            "sex": column_of("sex"),
            "lives_alone": column_of("lives_alone"),
            "email": column_of("email"),
            "phone": column_of("phone"),
            "postal_address": column_of("postal_address"),
            "preferred_language": pd.Series(
                values["preferred_language"].fillna("fi").to_numpy(dtype=object)[keep],
                index=index,
                dtype=object,
            ),
            "arm": pd.Series(arm[keep], index=index, dtype=object),
            "index_date": index_day[keep].astype("datetime64[D]").astype("datetime64[s]"),
            "enrolled_on": enrolled_on[keep].astype("datetime64[D]").astype("datetime64[s]"),
            "unit": column_of("unit"),
            "clinician_code": column_of("clinician_code"),
        },
        index=check.index[keep],
    )
    return Validation(
        kind="people",
        frame=frame,
        errors=check.errors.report(max_errors),
        error_count=check.errors.count,
        rows_total=check.n,
        rows_duplicate=int((ok & same).sum()),
    )
