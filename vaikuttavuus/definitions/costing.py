"""Read the costing folder (``costing/``) into a :class:`CostingCatalogue`.

Files (UTF-8; a byte-order mark from Excel is accepted):

* ``cost_centres.csv`` — ``code,name_fi,name_sv,name_en``
* ``products.csv`` — ``code,name_fi,name_sv,name_en,unit,cost_centre``
* ``unit_costs.csv`` — ``code,price_year,unit_cost_eur``
* ``price_index.csv`` — ``year,index``
* ``tdabc.yaml`` (optional) — time-driven activity-based costing inputs

CSV rules: the first row that is not a comment is the header; a row whose first cell starts
with ``#`` is a comment and blank rows are skipped; the delimiter is ``,`` or, when the header
has ``;`` and no ``,`` (Finnish Excel), ``;``. Numbers may use a decimal comma and spaces as
thousands separators (``1 234,50``).

Every problem is collected and reported at once as a :class:`DefinitionError` whose problems
name the file, ``line N, column X`` and what is wrong. A problem that only follows from an
invalid row (a unit cost for a product whose row was rejected) is not reported twice.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from vaikuttavuus.definitions import DefinitionError, Problem, describe_location, read_yaml
from vaikuttavuus.domain.catalogue import (
    CatalogueIssue,
    CostCentre,
    CostingCatalogue,
    PriceIndexPoint,
    Product,
    Tdabc,
    UnitCost,
    catalogue_issues,
)

__all__ = ["CSV_COLUMNS", "TDABC_FILE", "load_costing"]

CSV_COLUMNS: dict[str, tuple[str, ...]] = {
    "cost_centres.csv": ("code", "name_fi", "name_sv", "name_en"),
    "products.csv": ("code", "name_fi", "name_sv", "name_en", "unit", "cost_centre"),
    "unit_costs.csv": ("code", "price_year", "unit_cost_eur"),
    "price_index.csv": ("year", "index"),
}
"""The header of each CSV file, in the documented order."""
TDABC_FILE = "tdabc.yaml"

_INTEGER_COLUMNS = {"price_year", "year"}
_DECIMAL_COLUMNS = {"unit_cost_eur", "index"}
_INTEGER = re.compile(r"^[+-]?\d+$")
_DECIMAL = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)$")

# Where an unknown reference points: (section, field) -> the section that defines the key.
_REFERS_TO: dict[tuple[str, str], str] = {
    ("products", "cost_centre"): "cost_centres",
    ("unit_costs", "code"): "products",
    ("unit_costs", "price_year"): "price_index",
    ("activities", "product"): "products",
    ("activities", "resource"): "resources",
    ("tdabc", "price_year"): "price_index",
}


@dataclass
class _Table:
    """The valid entries of one file, with where each came from and the keys of bad rows."""

    path: Path
    specs: list[Any] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    rejected_keys: set[str] = field(default_factory=set)
    unreadable: bool = False
    """The file as a whole could not be read (missing, not CSV, wrong header)."""


def _csv_row_to_data(row: Mapping[str, str]) -> dict[str, Any]:
    """Products and cost centres carry their names as ``name_fi`` … → ``name: {fi: …}``."""
    data: dict[str, Any] = {}
    names: dict[str, str] = {}
    for column, value in row.items():
        if column.startswith("name_"):
            names[column.removeprefix("name_")] = value
        else:
            data[column] = value
    if names:
        data["name"] = names
    return data


def _column_of(loc: tuple[int | str, ...]) -> str:
    if len(loc) >= 2 and loc[0] == "name":
        return f"name_{loc[1]}"
    return str(loc[0]) if loc else ""


def _error_message(err: Mapping[str, Any]) -> str:
    kind = err["type"]
    value = err.get("input")
    if kind == "missing":
        return "a value is required"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "string_pattern_mismatch":
        return f"'{value}' is not a valid code: use letters, digits, '_', '.' or '-', no spaces"
    message = str(err["msg"]).removeprefix("Value error, ")
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return f"{message} (got '{value}')"
    return message


def _parse_number(column: str, text: str) -> int | float | str:
    """Numbers as written by people and spreadsheets; text that is not one is returned as is
    so that validation reports it."""
    compact = text.replace("\u00a0", "").replace("\u202f", "").replace(" ", "")
    compact = compact.replace("\u2212", "-")
    if column in _INTEGER_COLUMNS and _INTEGER.match(compact):
        return int(compact)
    if column in _DECIMAL_COLUMNS and _DECIMAL.match(compact):
        return float(compact.replace(",", "."))
    return text


def _read_csv(
    path: Path, spec: type[BaseModel], problems: list[Problem], key_column: str = "code"
) -> _Table:
    table = _Table(path, unreadable=True)
    expected = CSV_COLUMNS[path.name]
    source = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        problems.append(Problem(source, "", "the file is missing"))
        return table
    except OSError as error:
        problems.append(Problem(source, "", f"cannot be read: {error}"))
        return table
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        problems.append(
            Problem(
                source,
                f"line {line}, column {column}",
                "not UTF-8 text; save the file as CSV UTF-8",
            )
        )
        return table

    first_line = next(
        (line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")),
        "",
    )
    delimiter = ";" if ";" in first_line and "," not in first_line else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    header_line = 0
    previous_end = 0
    try:
        for cells in reader:
            start, previous_end = previous_end + 1, reader.line_num
            if not any(cell.strip() for cell in cells) or cells[0].lstrip().startswith("#"):
                continue
            if header is None:
                header, header_line = [cell.strip() for cell in cells], start
                if not _header_ok(header, expected, source, header_line, problems):
                    return table
                table.unreadable = False
                continue
            _read_row(header, cells, start, spec, key_column, table, problems)
    except csv.Error as error:
        problems.append(Problem(source, f"line {reader.line_num}", f"not valid CSV: {error}"))
        table.unreadable = True
        return table
    if header is None:
        problems.append(
            Problem(source, "line 1", f"the header row is missing: {','.join(expected)}")
        )
    elif not table.specs and not table.rejected_keys:
        problems.append(Problem(source, f"line {header_line}", "the file has no data rows"))
        table.unreadable = True
    return table


def _header_ok(
    header: list[str], expected: tuple[str, ...], source: str, line: int, problems: list[Problem]
) -> bool:
    ok = True
    seen: set[str] = set()
    for column in header:
        if column in seen:
            problems.append(Problem(source, f"line {line}, column {column}", "duplicate column"))
            ok = False
        elif column not in expected:
            problems.append(
                Problem(
                    source,
                    f"line {line}, column {column or '(empty)'}",
                    f"unknown column; the columns are {','.join(expected)}",
                )
            )
            ok = False
        seen.add(column)
    for column in expected:
        if column not in seen:
            problems.append(
                Problem(source, f"line {line}, column {column}", "required column is missing")
            )
            ok = False
    return ok


def _read_row(
    header: list[str],
    cells: list[str],
    line: int,
    spec: type[BaseModel],
    key_column: str,
    table: _Table,
    problems: list[Problem],
) -> None:
    source = str(table.path)
    if len(cells) != len(header):
        problems.append(
            Problem(
                source,
                f"line {line}",
                f"{len(cells)} values, but the header has {len(header)} columns"
                + (
                    " (put text that contains the delimiter in double quotes)"
                    if len(cells) > len(header)
                    else ""
                ),
            )
        )
        position = header.index(key_column)
        if position < len(cells):
            table.rejected_keys.add(cells[position].strip())
        return
    row: dict[str, Any] = {}
    for column, cell in zip(header, cells, strict=True):
        value = cell.strip()
        if value:
            row[column] = _parse_number(column, value)
    key = str(row.get(key_column, ""))
    try:
        instance = spec.model_validate(_csv_row_to_data(row))
    except ValidationError as error:
        for err in error.errors(include_url=False):
            column = _column_of(tuple(err["loc"]))
            where = f"line {line}, column {column}" if column else f"line {line}"
            problems.append(Problem(source, where, _error_message(err)))
        table.rejected_keys.add(key)
        return
    table.specs.append(instance)
    table.lines.append(line)


# -- tdabc.yaml ---------------------------------------------------------------------------------


def _yaml_marks(text: str) -> dict[tuple[int | str, ...], tuple[int, int]]:
    """``{path: (line, column)}`` for every key and list entry of a YAML document."""
    marks: dict[tuple[int | str, ...], tuple[int, int]] = {}
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return marks

    def walk(node: yaml.Node, path: tuple[int | str, ...]) -> None:
        marks.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                child = (*path, str(key_node.value))
                marks[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                walk(value_node, child)
        elif isinstance(node, yaml.SequenceNode):
            for position, item in enumerate(node.value):
                walk(item, (*path, position))

    if root is not None:
        walk(root, ())
    return marks


def _yaml_location(
    marks: Mapping[tuple[int | str, ...], tuple[int, int]],
    data: Any,
    loc: Iterable[int | str],
) -> str:
    path = tuple(loc)
    readable = describe_location(data, path)
    for length in range(len(path), -1, -1):
        mark = marks.get(path[:length])
        if mark is not None:
            place = f"line {mark[0]}, column {mark[1]}"
            return f"{place} ({readable})" if readable else place
    return readable


@dataclass
class _Tdabc:
    path: Path
    spec: Tdabc | None = None
    data: Any = None
    marks: dict[tuple[int | str, ...], tuple[int, int]] = field(default_factory=dict)


def _read_tdabc(path: Path, problems: list[Problem]) -> _Tdabc:
    result = _Tdabc(path)
    if not path.exists():
        return result
    try:
        data = read_yaml(path)
    except DefinitionError as error:
        problems.extend(error.problems)
        return result
    result.data = data
    result.marks = _yaml_marks(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        problems.append(Problem(str(path), "line 1", "the file must hold a mapping of fields"))
        return result
    try:
        result.spec = Tdabc.model_validate(data)
    except ValidationError as error:
        for err in error.errors(include_url=False):
            where = _yaml_location(result.marks, data, err["loc"])
            problems.append(Problem(str(path), where, _error_message(err)))
    return result


# -- putting it together ------------------------------------------------------------------------


def _issue_problem(issue: CatalogueIssue, tables: Mapping[str, _Table], tdabc: _Tdabc) -> Problem:
    if issue.section in tables:
        table = tables[issue.section]
        line = table.lines[issue.index] if issue.index is not None else 0
        where = f"line {line}, column {issue.field}" if issue.field else f"line {line}"
        message = issue.message
        if issue.first_index is not None:
            message += f" (first on line {table.lines[issue.first_index]})"
        return Problem(str(table.path), where, message)
    path: tuple[int | str, ...] = ()
    if issue.section != "tdabc":
        path = (issue.section,)
    if issue.index is not None:
        path = (*path, issue.index)
    if issue.field:
        path = (*path, issue.field)
    message = issue.message
    if issue.first_index is not None:
        first = _yaml_location(tdabc.marks, tdabc.data, (issue.section, issue.first_index))
        message += f" (first at {first})"
    return Problem(str(tdabc.path), _yaml_location(tdabc.marks, tdabc.data, path), message)


def _cascades(issue: CatalogueIssue, tables: Mapping[str, _Table]) -> bool:
    """Whether ``issue`` only reports a reference to an entry whose own row was rejected."""
    target = _REFERS_TO.get((issue.section, issue.field or ""))
    if target is None or issue.reference is None or target not in tables:
        # TDABC resources are validated with their file: a bad resource stops the TDABC
        # cross-checks altogether, so an activity never points at a rejected resource.
        return False
    table = tables[target]
    return table.unreadable or issue.reference in table.rejected_keys


def load_costing(directory: Path) -> CostingCatalogue:
    """Read and check the costing folder; raise :class:`DefinitionError` listing every problem."""
    problems: list[Problem] = []
    readers: dict[str, tuple[str, type[BaseModel], str]] = {
        "cost_centres": ("cost_centres.csv", CostCentre, "code"),
        "products": ("products.csv", Product, "code"),
        "unit_costs": ("unit_costs.csv", UnitCost, "code"),
        "price_index": ("price_index.csv", PriceIndexPoint, "year"),
    }
    tables = {
        section: _read_csv(directory / filename, spec, problems, key)
        for section, (filename, spec, key) in readers.items()
    }
    tdabc = _read_tdabc(directory / TDABC_FILE, problems)

    issues = catalogue_issues(
        tables["cost_centres"].specs,
        tables["products"].specs,
        tables["unit_costs"].specs,
        tables["price_index"].specs,
        tdabc.spec,
    )
    for issue in issues:
        if not _cascades(issue, tables):
            problems.append(_issue_problem(issue, tables, tdabc))
    if problems:
        raise DefinitionError(problems)
    return CostingCatalogue(
        cost_centres=tuple(tables["cost_centres"].specs),
        products=tuple(tables["products"].specs),
        unit_costs=tuple(tables["unit_costs"].specs),
        price_index=tuple(tables["price_index"].specs),
        tdabc=tdabc.spec,
    )
