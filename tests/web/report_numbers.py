"""The numbers a cohort page, a CSV download or the management PDF must show, worked out in the
test from the analytics' published tables (``services.analytics``) and formatted here, the way
the pages are meant to format them (babel in the page's locale: decimal comma and no-break
spaces in Finnish, ``−`` for negative figures, ``84 %``, ``1 234 €``), without the application's
formatting helpers. Plus a small HTML table reader and a CSV reader.

A table is compared whole: every row and every cell, in order. A hidden value is ``<5`` (a
count below the minimum cell size) or ``x`` (hidden so that a small count cannot be worked out);
a dash means there is nothing to show.
"""

from __future__ import annotations

import csv
import io
import math
import re
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd
import pytest
from babel import Locale
from babel.numbers import format_decimal, format_percent
from flask import Flask
from flask_babel import force_locale, gettext
from sqlalchemy import select, update

from tests.support.import_files import csv_bytes
from vaikuttavuus.extensions import db
from vaikuttavuus.models import Enrolment, Person, Pilot, ServiceExposure
from vaikuttavuus.services.analytics import ALL, CohortAnalysis
from vaikuttavuus.services.cohort_view import Labels
from vaikuttavuus.services.imports import run_import

MINUS = "\u2212"
NBSP = "\xa0"
Cell = str | tuple[str, ...]
"""An expected cell: the text, or the texts any of which is right."""
EN_DASH = "–"


# --------------------------------------------------------------------------------------------
# Number formats (the test's own)
# --------------------------------------------------------------------------------------------


def _missing(value: object) -> bool:
    if value is None or value is pd.NA:
        return True
    try:
        return not math.isfinite(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


@dataclass(frozen=True)
class Formats:
    """Numbers as a page in ``language`` shows them."""

    language: str

    minus = MINUS  # in every language, as the pages intend (cohort_view.MINUS)

    def count(self, value: object) -> str:
        if _missing(value):
            return EN_DASH
        return format_decimal(round(float(value)), format="#,##0", locale=self.language)  # type: ignore[arg-type]

    def number(self, value: object, digits: int = 1) -> str:
        if _missing(value):
            return EN_DASH
        number = float(value)  # type: ignore[arg-type]
        text = format_decimal(abs(number), format=self._pattern(digits), locale=self.language)
        return self.minus + text if number < 0 and text.strip("0,.\xa0 ") else text

    def signed(self, value: object, digits: int = 1) -> str:
        return self.number(value, digits)

    def share(self, value: object) -> str:
        if _missing(value):
            return EN_DASH
        pattern = Locale.parse(self.language).percent_formats[None].pattern
        return format_percent(float(value), format=pattern, locale=self.language)  # type: ignore[arg-type]

    def probability(self, value: object) -> str:
        """A probability from bootstrap replicates: never 0 % or 100 %."""
        if _missing(value):
            return EN_DASH
        number = float(value)  # type: ignore[arg-type]
        if number >= 0.99:
            return "> " + self.share(0.99)
        if number <= 0.01:
            return "< " + self.share(0.01)
        return self.share(number)

    def euro(self, value: object) -> str:
        if _missing(value):
            return EN_DASH
        amount = round(float(value))  # type: ignore[arg-type]
        digits = format_decimal(abs(amount), format="#,##0", locale=self.language)
        sign = self.minus if amount < 0 else ""
        return f"{sign}€{digits}" if self.language == "en" else f"{sign}{digits}{NBSP}€"

    def interval(self, low: object, high: object, digits: int = 1) -> str:
        if _missing(low) or _missing(high):
            return EN_DASH
        return f"{self.signed(low, digits)} … {self.signed(high, digits)}"

    def interval_euro(self, low: object, high: object) -> str:
        if _missing(low) or _missing(high):
            return EN_DASH
        return f"{self.euro(low)} … {self.euro(high)}"

    def interval_share(self, low: object, high: object) -> str:
        if _missing(low) or _missing(high):
            return EN_DASH
        return f"{self.share(low)} … {self.share(high)}"

    @staticmethod
    def _pattern(digits: int) -> str:
        return "#,##0" + ("." + "0" * digits if digits > 0 else "")


def hyphen_too(text: str) -> Cell:
    """A negative plain number: the pages print Babel's hyphen-minus there (``-0,27``) where
    every signed figure has ``−`` (``test_negative_figures_use_the_minus_sign`` marks it); the
    tables are checked for their numbers with either sign."""
    return (text, text.replace(MINUS, "-")) if MINUS in text else text


# --------------------------------------------------------------------------------------------
# Expected tables
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Col:
    """A shown column: ``kind`` is a number format, ``text`` or ``label`` (``label`` names the
    code with ``labeller``); interval kinds read ``key`` and ``high``."""

    key: str
    kind: str
    digits: int = 1
    high: str | None = None
    labeller: Callable[[Any], str] | None = None


@dataclass
class Source:
    """Rows of a table with what was hidden: ``hidden(row, column)`` is ``None`` (shown),
    ``"primary"`` (a small count), ``"secondary"`` or ``"unknown"``."""

    records: list[dict[str, Any]]
    hidden: Callable[[int, str], str | None] = lambda _row, _column: None
    min_count: int = 5


def from_published(published: Any) -> Source:
    """A ``services.analytics.Published`` table."""

    def hidden(row: int, column: str) -> str | None:
        if not published.is_hidden(row, column):
            return None
        return "primary" if published.is_primary(row, column) else "secondary"

    return Source(published.records(), hidden, published.min_count)


def from_csv(frame: pd.DataFrame, min_count: int = 5) -> Source:
    """A CSV download: an empty cell of a row marked ``suppressed`` was hidden."""
    records = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]

    def hidden(row: int, column: str) -> str | None:
        record = records[row]
        if record.get("suppressed") is True and record.get(column) is None:
            return "unknown"
        return None

    return Source(records, hidden, min_count)


def expected_rows(
    source: Source,
    columns: Sequence[Col],
    fmt: Formats,
    keep: Callable[[dict[str, Any]], bool] | None = None,
) -> list[list[Cell]]:
    rows: list[list[Cell]] = []
    for position, record in enumerate(source.records):
        if keep is not None and not keep(record):
            continue
        rows.append([_cell(source, position, record, column, fmt) for column in columns])
    return rows


def _cell(source: Source, row: int, record: dict[str, Any], column: Col, fmt: Formats) -> Cell:
    keys = [column.key, *([column.high] if column.high else [])]
    reasons = [source.hidden(row, key) for key in keys]
    if any(reasons):
        if column.kind == "count" and reasons[0] == "primary":
            return f"<{source.min_count}"
        if "unknown" in reasons:  # a CSV: empty for being hidden or for having no value
            return (f"<{source.min_count}", "x") if column.kind == "count" else ("x", EN_DASH)
        return "x"
    value = record.get(column.key)
    high = record.get(column.high) if column.high else None
    kind = column.kind
    if kind == "count":
        return fmt.count(value)
    if kind == "p":
        if _missing(value):
            return EN_DASH
        return "<" + fmt.number(0.001, 3) if float(value) < 0.001 else fmt.number(value, 3)  # type: ignore[arg-type]
    if kind == "number":
        return hyphen_too(fmt.number(value, column.digits))
    if kind == "signed":
        return fmt.signed(value, column.digits)
    if kind == "share":
        return fmt.share(value)
    if kind == "probability":
        return fmt.probability(value)
    if kind == "euro":
        return fmt.euro(value)
    if kind == "interval":
        return fmt.interval(value, high, column.digits)
    if kind == "interval_euro":
        return fmt.interval_euro(value, high)
    if kind == "interval_share":
        return fmt.interval_share(value, high)
    if _missing(value) and not isinstance(value, str):
        return EN_DASH
    if kind == "label":
        assert column.labeller is not None
        return column.labeller(value)
    return str(value)


def matches(actual: Sequence[Sequence[str]], expected: Sequence[Sequence[Cell]]) -> bool:
    if len(actual) != len(expected):
        return False
    for got_row, want_row in zip(actual, expected, strict=True):
        if len(got_row) != len(want_row):
            return False
        for got, want in zip(got_row, want_row, strict=True):
            if (got not in want) if isinstance(want, tuple) else (got != want):
                return False
    return True


def assert_rows(
    actual: Sequence[Sequence[str]], expected: Sequence[Sequence[Cell]], what: str
) -> None:
    """Every cell equal, character for character."""
    if not matches(actual, expected):
        lines = [f"{what}: the shown table differs from the analytics"]
        for index in range(max(len(actual), len(expected))):
            g = list(actual[index]) if index < len(actual) else None
            w = list(expected[index]) if index < len(expected) else None
            flag = "  " if g is not None and w is not None and matches([g], [w]) else "≠ "
            lines.append(f"{flag}shown    {g}\n{flag}expected {w}")
        raise AssertionError("\n".join(lines))


# --------------------------------------------------------------------------------------------
# Reading pages and CSV files
# --------------------------------------------------------------------------------------------


@dataclass
class HtmlTable:
    caption: str = ""
    csv: str | None = None
    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    heading: str = ""
    empty: bool = False  # the "no data" row

    @property
    def csv_name(self) -> str | None:
        if self.csv is None:
            return None
        return urlsplit(self.csv).path.rsplit("/", 1)[-1].removesuffix(".csv")

    @property
    def csv_args(self) -> dict[str, str]:
        if self.csv is None:
            return {}
        return {k: v[0] for k, v in parse_qs(urlsplit(self.csv).query).items()}


class _TableReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[HtmlTable] = []
        self.images: list[str] = []
        self.table: HtmlTable | None = None
        self.where: str | None = None  # caption, th-head, cell
        self.text: list[str] = []
        self.row: list[str] | None = None
        self.heading: str = ""
        self.in_heading = False
        self.in_link = False
        self.in_thead = False
        self.colspan = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in ("h2", "h3"):
            self.in_heading = True
            self.text = []
        elif tag == "img" and values.get("alt"):
            self.images.append(values["alt"] or "")
        elif tag == "table":
            self.table = HtmlTable(heading=self.heading)
        elif self.table is None:
            return
        elif tag == "caption":
            self.where = "caption"
            self.text = []
        elif tag == "a" and self.where == "caption" and "csv-link" in (values.get("class") or ""):
            self.table.csv = values.get("href")
            self.in_link = True
        elif tag == "thead":
            self.in_thead = True
        elif tag == "tr" and not self.in_thead:
            self.row = []
        elif tag in ("th", "td"):
            self.where = "cell"
            self.text = []
            self.colspan = "colspan" in values

    def handle_endtag(self, tag: str) -> None:
        if tag in ("h2", "h3") and self.in_heading:
            self.in_heading = False
            self.heading = _clean("".join(self.text))
        elif self.table is None:
            return
        elif tag == "a" and self.in_link:
            self.in_link = False
        elif tag == "caption":
            self.table.caption = _clean("".join(self.text))
            self.where = None
        elif tag == "thead":
            self.in_thead = False
        elif tag in ("th", "td") and self.where == "cell":
            text = _clean("".join(self.text))
            if self.in_thead:
                self.table.headers.append(text)
            elif self.row is not None:
                if self.colspan:
                    self.table.empty = True
                else:
                    self.row.append(text)
            self.where = None
        elif tag == "tr" and self.row is not None:
            if self.row:
                self.table.rows.append(self.row)
            self.row = None
        elif tag == "table":
            self.tables.append(self.table)
            self.table = None

    def handle_data(self, data: str) -> None:
        if self.in_link:
            return
        if self.in_heading or self.where is not None:
            self.text.append(data)


def _clean(text: str) -> str:
    return re.sub(r"[ \t\r\n]+", " ", text).strip()


@dataclass
class Page:
    html: str
    tables: list[HtmlTable]
    images: list[str]

    def by_csv(self, name: str, **args: str) -> HtmlTable:
        found = [
            t
            for t in self.tables
            if t.csv_name == name and all(t.csv_args.get(k) == v for k, v in args.items())
        ]
        assert len(found) == 1, (name, args, [(t.csv_name, t.csv_args) for t in self.tables])
        return found[0]

    def by_caption(self, caption: str) -> HtmlTable:
        found = [t for t in self.tables if t.caption == caption]
        assert len(found) == 1, (caption, [t.caption for t in self.tables])
        return found[0]


def read_page(html: str) -> Page:
    reader = _TableReader()
    reader.feed(html)
    reader.close()
    return Page(html, reader.tables, reader.images)


def read_csv(text: str) -> pd.DataFrame:
    """A CSV download as typed columns: numbers as floats, ``true``/``false`` as booleans, empty
    cells as missing, other cells as text."""
    assert text.startswith("\ufeff"), "the CSV starts with a byte-order mark"
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    header, body = rows[0], rows[1:]
    columns: dict[str, list[Any]] = {name: [] for name in header}
    for row in body:
        assert len(row) == len(header), row
        for name, cell in zip(header, row, strict=True):
            columns[name].append(_csv_value(cell))
    return pd.DataFrame({name: pd.Series(values, dtype=object) for name, values in columns.items()})


def _csv_value(cell: str) -> Any:
    if cell == "":
        return None
    if cell in ("true", "false"):
        return cell == "true"
    try:
        return float(cell)
    except ValueError:
        return cell.removeprefix("'")


def assert_csv_equals_published(frame: pd.DataFrame, table: pd.DataFrame, what: str) -> None:
    """The CSV holds exactly the published table: same columns, same rows, numbers equal to
    the last bit, hidden values empty."""
    assert list(frame.columns) == [str(c) for c in table.columns], what
    assert len(frame) == len(table), what
    for position in range(len(table)):
        for column in table.columns:
            want = table[column].iloc[position]
            got = frame[str(column)].iloc[position]
            if want is None or want is pd.NA or (isinstance(want, float) and not np.isfinite(want)):
                assert got is None or (isinstance(got, float) and math.isnan(got)), (
                    what,
                    position,
                    column,
                    got,
                )
            elif isinstance(want, bool | np.bool_):
                assert got is bool(want), (what, position, column, got, want)
            elif isinstance(want, int | float | np.integer | np.floating):
                assert float(got) == float(want), (what, position, column, got, want)
            else:
                assert got == str(want), (what, position, column, got, want)


# --------------------------------------------------------------------------------------------
# The column layouts of the published tables
# --------------------------------------------------------------------------------------------


def layouts(labels: Any) -> dict[str, list[Col]]:
    """Per table name: the columns the page shows, in order (docs/reports.md, *Sections of the
    cohort page*). ``labels`` names codes (``services.cohort_view.Labels``)."""

    def label(fn: Callable[[Any], str]) -> Callable[[str], Col]:
        return lambda key: Col(key, "label", labeller=fn)

    arm, time_point = label(labels.arm), label(labels.time_point)
    return {
        "enrolment": [arm("arm"), Col("enrolled", "count"), Col("withdrawn", "count")],
        "response_rates": [
            time_point("time_point"),
            arm("arm"),
            Col("invited", "count"),
            Col("responded", "count"),
            Col("rate", "share"),
            Col("ci_low", "interval_share", high="ci_high"),
            Col("open", "count"),
        ],
        "data_quality": [
            label(labels.instrument)("instrument"),
            time_point("time_point"),
            Col("responses", "count"),
            Col("with_missing_items", "count"),
            Col("score_not_computable", "count"),
            Col("assisted", "count"),
        ],
        "late_answers": [
            time_point("time_point"),
            Col("completed", "count"),
            Col("after_reminder", "count"),
            Col("share_after_reminder", "share"),
            Col("after_window", "count"),
        ],
        "imports": [
            label(labels.import_kind)("kind"),
            Col("batches", "count"),
            Col("rows_total", "count"),
            Col("rows_stored", "count"),
            Col("rows_rejected", "count"),
            Col("unmatched_rows", "count"),
        ],
        "answer_modes": [
            arm("arm"),
            label(labels.answer_mode)("mode"),
            Col("responses", "count"),
            Col("share", "share"),
            Col("proxy", "count"),
            Col("share_proxy", "share"),
        ],
        "qalys": [
            arm("arm"),
            Col("n_persons", "count"),
            Col("n", "count"),
            Col("mean", "number", 3),
            Col("ci_low", "interval", 3, high="ci_high"),
        ],
        "costs": [
            arm("arm"),
            Col("n", "count"),
            Col("n_missing", "count"),
            Col("mean_eur", "euro"),
            Col("ci_low_eur", "interval_euro", high="ci_high_eur"),
            Col("median_eur", "euro"),
        ],
        "costs_by_cost_centre": [
            arm("arm"),
            label(labels.cost_centre)("cost_centre"),
            Col("mean_eur", "euro"),
            Col("share", "share"),
        ],
        "costs_by_product": [
            arm("arm"),
            label(labels.product)("product"),
            Col("mean_eur", "euro"),
            Col("share", "share"),
        ],
        "cea_arms": [
            arm("arm"),
            Col("n", "count"),
            Col("mean_cost", "euro"),
            Col("mean_effect", "number", 3),
        ],
        "incremental": [
            label(labels.procedure)("strategy"),
            Col("n", "count"),
            Col("cost", "euro"),
            Col("cost_low", "interval_euro", high="cost_high"),
            Col("effect", "number", 3),
            Col("effect_low", "interval", 3, high="effect_high"),
            label(labels.status)("status"),
            Col("icer", "euro"),
            Col("p_best", "probability"),
        ],
        "inmb": [
            Col("wtp", "euro"),
            Col("inmb", "euro"),
            Col("inmb_low", "interval_euro", high="inmb_high"),
            Col("adjusted_inmb", "euro"),
            Col("adjusted_low", "interval_euro", high="adjusted_high"),
            Col("ceac_bootstrap", "probability"),
        ],
        "ceac": [
            Col("wtp", "euro"),
            Col("ceac_bootstrap", "probability"),
            Col("ceac_parametric", "probability"),
        ],
        "ce_plane": [
            Col("statistic", "text"),
            Col("delta_effect", "signed", 3),
            Col("delta_cost", "euro"),
            Col("share", "share"),
        ],
        "funnel": [
            Col("group", "text"),
            arm("arm"),
            Col("n", "count"),
            Col("responders", "count"),
            Col("share", "share"),
            Col("expected", "share"),
            Col("low_95", "interval_share", high="high_95"),
            Col("low_998", "interval_share", high="high_998"),
            label(labels.position)("position"),
        ],
    }


def outcome_columns(
    labels: Any, score: str, with_responders: bool, unpaired: bool = True
) -> list[Col]:
    """The outcome table's columns; ``unpaired``: with the baseline of everyone who answered it
    (the page has them, the A4 summary not)."""
    digits = 2 if "index" in score else 1
    columns = [
        Col("time_point", "label", labeller=labels.time_point),
        Col("arm", "label", labeller=labels.arm),
        Col("n", "count"),
        Col("paired_baseline_mean", "number", digits),
        Col("paired_follow_up_mean", "number", digits),
        Col("change_mean", "signed", digits),
        Col("change_ci_low", "interval", digits, high="change_ci_high"),
    ]
    if with_responders:
        columns += [
            Col("share_responders", "share"),
            Col("responders_ci_low", "interval_share", high="responders_ci_high"),
        ]
    columns.append(Col("share_missing", "share"))
    if unpaired:
        columns += [Col("n_baseline", "count"), Col("baseline_mean", "number", digits)]
    return columns


def service_columns(labels: Any, by: str) -> dict[str, list[Col]]:
    """The columns of the services section's tables (``cohort_view.service_view``)."""
    category = Col("category", "label", labeller=lambda c: labels.category(c, by))
    differences = [
        category,
        Col("n_exposed", "count"),
        Col("n_unexposed", "count"),
        Col("estimate", "signed", 2),
        Col("ci_low", "interval", 2, high="ci_high"),
        Col("p_value", "p"),
        Col("p_adjusted", "p"),
        Col("e_value", "number", 2),
        Col("e_value_ci", "number", 2),
        Col("unadjusted", "signed", 2),
        Col("unadjusted_ci_low", "interval", 2, high="unadjusted_ci_high"),
        Col("reason", "label", labeller=labels.reason),
    ]
    return {
        "service_differences primary": differences,
        "service_differences other": [
            Col("time_point", "label", labeller=labels.time_point),
            *differences,
        ],
        "service_sensitivity": [
            category,
            Col("analysis", "label", labeller=labels.analysis_name),
            Col("delta", "number", 1),
            Col("n_exposed", "count"),
            Col("n_unexposed", "count"),
            Col("estimate", "signed", 2),
            Col("ci_low", "interval", 2, high="ci_high"),
        ],
        "service_balance": [
            category,
            Col("variable", "label", labeller=labels.variable),
            Col("smd_before", "signed", 2),
            Col("smd_after", "signed", 2),
            Col("imbalanced_after", "label", labeller=labels.flag),
        ],
        "service_overlap": [
            category,
            Col("group", "label", labeller=labels.exposure_group),
            Col("n", "count"),
            *[Col(f"p{q}", "number", 2) for q in (0, 5, 25, 50, 75, 95, 100)],
        ],
        "service_cost_per_point": [
            category,
            Col("n_with_cost", "count"),
            Col("delta_cost", "euro"),
            Col("delta_cost_ci_low", "interval_euro", high="delta_cost_ci_high"),
            Col("improvement", "signed", 2),
            Col("improvement_ci_low", "interval", 2, high="improvement_ci_high"),
            Col("cost_per_point", "euro"),
            Col("ci_low", "interval_euro", high="ci_high"),
            Col("status", "label", labeller=labels.cost_status),
        ],
        "service_dose": [
            category,
            Col("time_point", "label", labeller=labels.time_point),
            Col("n_exposed", "count"),
            Col("estimate", "signed", 2),
            Col("ci_low", "interval", 2, high="ci_high"),
        ],
        "service_missing": [
            Col("variable", "label", labeller=labels.variable),
            Col("time_point", "label", labeller=labels.time_point),
            Col("group", "label", labeller=labels.arm),
            Col("share_missing", "share"),
        ],
    }


def service_keep(name: str, args: Mapping[str, str], primary_time_point: str) -> Any:
    """Which rows of a services table (or CSV) a page table shows: the primary follow-up's,
    except the other follow-ups' table of the differences, the dose and the missing answers."""
    if name == "service_differences" and args.get("follow_up") == "other":
        return lambda record: record["time_point"] != primary_time_point
    if name in ("service_differences", "service_balance", "service_overlap"):
        return lambda record: record["time_point"] == primary_time_point
    return None


def service_layout(columns: Mapping[str, list[Col]], name: str, args: Mapping[str, str]) -> (
    list[Col]
):
    if name == "service_differences":
        return columns[f"service_differences {args.get('follow_up', 'primary')}"]
    return columns[name]


def cea_summary_rows(
    records: Iterable[Mapping[str, Any]],
    labels: Any,
    fmt: Formats,
    text: Callable[..., str],
    hidden: Mapping[str, bool] | None = None,
    arm_filter: bool | None = None,
) -> list[list[Cell]]:
    """The ICER table from the effects' summary rows (``EffectResult.summary_row()`` or the
    ``cea_summary`` CSV). ``text(msgid, **values)`` translates; ``hidden`` says which effects
    are hidden for a small arm and ``arm_filter`` whether an arm filter leaves one arm, which
    the row then names as the reason (unknown: any of the wordings is accepted)."""
    rows: list[list[Cell]] = []
    filtered = text("the comparison needs both arms: remove the arm filter")
    for row in records:
        effect = row["effect"]
        if _missing(row.get("n_reference")):
            unavailable: Cell = (
                (text("too few persons to show"), text("not available"), filtered)
                if hidden is None or arm_filter is None
                else filtered
                if arm_filter
                else text("too few persons to show" if hidden[effect] else "not available")
            )
            rows.append(
                [labels.effect(effect), EN_DASH, EN_DASH, EN_DASH, unavailable, EN_DASH, EN_DASH]
            )
            continue

        def with_interval(value: str, interval: str) -> str:
            return value if interval == EN_DASH else f"{value} ({interval})"

        status = row["status"]
        if status in ("dominates", "dominated", "equal"):
            icer = labels.status(status)
        else:
            icer = text(
                "%(value)s %(per_unit)s (%(quadrant)s)",
                value=fmt.euro(row["icer"]),
                per_unit=labels.per_unit(effect),
                quadrant=labels.status(status),
            )
        if _missing(row.get("fieller_low")):
            fieller = text("unbounded")
        else:
            fieller = f"{fmt.euro(row['fieller_low'])} … {fmt.euro(row['fieller_high'])}"
        rows.append(
            [
                labels.effect(effect),
                f"{fmt.count(row['n_reference'])} / {fmt.count(row['n_intervention'])}",
                with_interval(
                    fmt.euro(row["delta_cost"]),
                    fmt.interval_euro(row.get("delta_cost_low"), row.get("delta_cost_high")),
                ),
                with_interval(
                    fmt.signed(row["delta_effect"], 3),
                    fmt.interval(row.get("delta_effect_low"), row.get("delta_effect_high"), 3),
                ),
                icer,
                fieller,
                fmt.probability(row.get("ceac_reference_wtp")),
            ]
        )
    return rows


def plane_records(
    point: tuple[float, float],
    delta_effect: Sequence[float] | np.ndarray,
    delta_cost: Sequence[float] | np.ndarray,
    text: Callable[..., str],
) -> list[dict[str, Any]]:
    """The CE plane in numbers from the bootstrap replicates themselves: the point estimate,
    the 2.5th and 97.5th percentiles and the share of replicates in each quadrant."""
    de = np.asarray(delta_effect, dtype=float)
    dc = np.asarray(delta_cost, dtype=float)
    n = len(de)
    quadrants = {
        "SE": ((de >= 0) & (dc < 0)).sum() / n,
        "NE": ((de >= 0) & (dc >= 0)).sum() / n,
        "SW": ((de < 0) & (dc < 0)).sum() / n,
        "NW": ((de < 0) & (dc >= 0)).sum() / n,
    }
    de_low, de_high = np.quantile(de, [0.025, 0.975])
    dc_low, dc_high = np.quantile(dc, [0.025, 0.975])
    return [
        {"statistic": text("Point estimate"), "delta_effect": point[0], "delta_cost": point[1]},
        {
            "statistic": text("Bootstrap 2.5th percentile"),
            "delta_effect": de_low,
            "delta_cost": dc_low,
        },
        {
            "statistic": text("Bootstrap 97.5th percentile"),
            "delta_effect": de_high,
            "delta_cost": dc_high,
        },
        *[
            {"statistic": text(label), "share": float(quadrants[key])}
            for key, label in (
                ("SE", "Replicates: more effective, less costly"),
                ("NE", "Replicates: more effective, more costly"),
                ("SW", "Replicates: less effective, less costly"),
                ("NW", "Replicates: less effective, more costly"),
            )
        ],
    ]


# --------------------------------------------------------------------------------------------
# What a section shows, from the analytics
# --------------------------------------------------------------------------------------------


@pytest.fixture
def enriched(cohort_app: Flask) -> None:
    """:func:`enrich` the test's copy of the synthetic data set."""
    enrich()


def enrich() -> None:
    """The synthetic data plus what they lack: a cost recorded on every service exposure (the
    cost per one-point reduction) and a BPH import file rejected for naming unknown persons
    (the imports table of data quality)."""
    db.session.execute(update(ServiceExposure).values(cost_eur=ServiceExposure.contacts * 35 + 120))
    known = db.session.scalars(
        select(Person.pseudonym)
        .join(Enrolment, Enrolment.person_id == Person.id)
        .join(Pilot, Enrolment.pilot_id == Pilot.id)
        .where(Pilot.code == "bph")
    ).first()
    outcome = run_import(
        db.session,
        kind="resource_use",
        data=csv_bytes(
            ["pseudonym", "product_code", "quantity", "service_date"],
            [
                [known, "LAB_PANEL", "1", date.today().isoformat()],
                ["TUNTEMATON1", "LAB_PANEL", "1", date.today().isoformat()],
                ["TUNTEMATON2", "OR_MINUTE", "30", date.today().isoformat()],
            ],
        ),
        filename="tuntemattomat.csv",
        pilot_code="bph",
        actor="test",
    )
    assert outcome.status != "stored"
    db.session.commit()


@dataclass
class Expected:
    """What one section of the cohort page must show, worked out from the analytics."""

    analysis: CohortAnalysis
    labels: Labels
    fmt: Formats
    text: Callable[..., str]
    tables: list[tuple[tuple[str, ...], list[list[Cell]], str]]
    """(how to find the table, its rows, what it is); found by ``("csv", name, k=v…)`` or
    ``("caption", text)``."""


def in_language(app: Flask, language: str) -> ExitStack:
    """A request context in ``language``, in which labels and texts are worked out."""
    context = ExitStack()
    context.enter_context(app.test_request_context())
    context.enter_context(force_locale(language))
    return context


def finnish(app: Flask) -> ExitStack:
    return in_language(app, "fi")


def text(message: str, **values: Any) -> str:
    """A UI text in the current language."""
    return str(gettext(message, **values))


def _estimate(fmt: Formats, estimate: Any, digits: int, euro: bool = False) -> str:
    """An estimate with its interval, as the primary tables show it: "value (low … high)"."""
    if estimate is None or estimate.estimate is None:
        return EN_DASH
    if euro:
        interval = fmt.interval_euro(estimate.ci_low, estimate.ci_high)
        return f"{fmt.euro(estimate.estimate)} ({interval})"
    value = fmt.signed(estimate.estimate, digits)
    return f"{value} ({fmt.interval(estimate.ci_low, estimate.ci_high, digits)})"


def primary_tables(
    result: CohortAnalysis, labels: Any, fmt: Formats, effect: str
) -> list[tuple[tuple[str, ...], list[list[Cell]], str]]:
    """The tables of the declared primary analysis, worked out from ``result.primary`` (the
    numbers) with the test's own formatting."""
    primary = result.primary
    if primary is None or not primary.available:
        return []
    out: list[tuple[tuple[str, ...], list[list[Cell]], str]] = []
    digits = {"improvement": 2, "responder": 3, "qaly": 3}
    score = labels.score_short(primary.outcome)
    names = {
        "improvement": text("Improvement in %(score)s (points)", score=score),
        "responder": text("Share with a clinically important improvement"),
        "qaly": text("QALYs"),
        "cost": text("Care-cycle cost (€)"),
    }
    rows: list[list[Cell]] = []
    for measure in ("improvement", "responder", "qaly", "cost"):
        pair = primary.differences.get(measure)
        if pair is None:
            continue
        euro = measure == "cost"
        rows.append(
            [
                names[measure],
                _estimate(fmt, pair.adjusted, digits.get(measure, 0), euro),
                _estimate(fmt, pair.unadjusted, digits.get(measure, 0), euro),
                "",
                f"{pair.adjusted.n} / {pair.unadjusted.n}",
            ]
        )
    for kind, message in (
        ("improvement", "Net monetary benefit per patient, %(wtp)s per point"),
        ("qaly", "Net monetary benefit per patient, %(wtp)s per QALY"),
    ):
        lam = float(result.spec.willingness_to_pay(kind).reference)
        pair = primary.inmb.get(kind, {}).get(lam)
        if pair is None:
            continue
        probability = primary.probability[kind][lam][0]
        rows.append(
            [
                text(message, wtp=fmt.euro(lam)),
                _estimate(fmt, pair.adjusted, 0, True),
                _estimate(fmt, pair.unadjusted, 0, True),
                likelihood_text(probability, fmt),
                f"{pair.adjusted.n} / {pair.unadjusted.n}",
            ]
        )
    out.append((("csv", "primary_estimates"), rows, "primary_estimates"))
    declared = result.spec.willingness_to_pay(effect)
    shown = sorted({*declared.shown, declared.reference})
    out.append(
        (
            ("csv", "primary_inmb", f"effect={effect}"),
            [
                [
                    fmt.euro(lam),
                    _estimate(fmt, primary.inmb[effect][lam].adjusted, 0, True),
                    fmt.probability(primary.probability[effect][lam][0]),
                    _estimate(fmt, primary.inmb[effect][lam].unadjusted, 0, True),
                    fmt.probability(primary.probability[effect][lam][1]),
                ]
                for lam in shown
            ],
            "primary_inmb",
        )
    )
    plane = primary.differences[effect].adjusted
    cost = primary.differences["cost"].adjusted
    d = digits[effect]
    out.append(
        (
            ("csv", "primary_ce_plane", f"effect={effect}"),
            [
                [text("Adjusted estimate"), fmt.signed(plane.estimate, d), fmt.euro(cost.estimate)],
                [text("95% CI, lower limit"), fmt.signed(plane.ci_low, d), fmt.euro(cost.ci_low)],
                [text("95% CI, upper limit"), fmt.signed(plane.ci_high, d), fmt.euro(cost.ci_high)],
            ],
            "primary_ce_plane",
        )
    )
    out.append(
        (
            ("csv", "primary_ceac", f"effect={effect}"),
            [
                [
                    fmt.euro(lam),
                    fmt.probability(primary.probability[effect][lam][0]),
                    fmt.probability(primary.probability[effect][lam][1]),
                ]
                for lam in shown
            ],
            "primary_ceac",
        )
    )
    arms = [primary.reference, primary.other]
    missing_rows: list[list[Cell]] = []
    for variable, shares in primary.missing.items():
        if "@" in variable:
            name, time_point = variable.split("@", 1)
            label = f"{labels.score(name)}, {labels.time_point(time_point)}"
        elif variable == "cost":
            label = text("Care-cycle cost")
        else:
            label = labels.variable(variable)
        cells: list[Cell] = [label]
        for arm in arms:
            share = shares.get(arm)
            count = primary.n_missing[variable][arm]
            cells.append("x" if share is None else f"{fmt.share(share)} ({count})")
        missing_rows.append(cells)
    out.append((("csv", "primary_missing"), missing_rows, "primary_missing"))
    out.append(
        (
            ("csv", "primary_sensitivity"),
            [
                [
                    scenario_name(s.name, labels),
                    _estimate(fmt, s.delta_effect, 2),
                    _estimate(fmt, s.delta_cost, 0, True),
                    _estimate(fmt, s.inmb, 0, True),
                ]
                for s in primary.sensitivity
            ],
            "primary_sensitivity",
        )
    )
    if primary.subgroups:
        out.append(
            (
                ("csv", "primary_subgroups"),
                [
                    [labels.band(primary.outcome, g.band), "x", "x", "x", "x"]
                    if g.hidden
                    else [
                        labels.band(primary.outcome, g.band),
                        f"{g.n_reference} / {g.n_other}",
                        _estimate(fmt, g.delta_effect, 2),
                        _estimate(fmt, g.inmb, 0, True),
                        fmt.probability(g.probability),
                    ]
                    for g in primary.subgroups
                ],
                "primary_subgroups",
            )
        )
    bars = result.primary_tornado
    if bars:
        out.append(
            (
                ("csv", "primary_tornado"),
                [
                    [
                        input_label(bar.kind, bar.key, labels),
                        f"{fmt.share(bar.low)} … {fmt.share(bar.high)}",
                        fmt.euro(bar.inmb_low),
                        fmt.euro(bar.inmb_high),
                        fmt.euro(abs(bar.inmb_high - bar.inmb_low)),
                    ]
                    for bar in bars
                ],
                "primary_tornado",
            )
        )
    scenarios = result.primary_scenarios
    if scenarios:
        out.append(
            (
                ("csv", "primary_scenarios"),
                [[scenario_row(row, labels, fmt), fmt.euro(row["inmb"])] for row in scenarios],
                "primary_scenarios",
            )
        )
    if primary.evpi_per_person:
        population = primary.evpi_population.get(effect, {})
        out.append(
            (
                ("csv", "primary_evpi"),
                [
                    [
                        labels.effect(effect),
                        fmt.euro(lam),
                        fmt.euro(value),
                        fmt.euro(population.get(lam)),
                    ]
                    for lam, value in primary.evpi_per_person.get(effect, {}).items()
                ],
                "primary_evpi",
            )
        )
    return out


def likelihood_text(probability: float | None, fmt: Formats) -> str:
    if probability is None:
        return EN_DASH
    word = next((w for lower, w in LIKELIHOOD if probability > lower), "exceptionally unlikely")
    return text(
        "%(word)s (%(probability)s)", word=text(word), probability=fmt.probability(probability)
    )


def scenario_name(name: str, labels: Any) -> str:
    if name == "complete_cases":
        return text("Complete cases (no imputation)")
    if name == "without_proxy":
        return text("Without answers given by a proxy")
    if name == "web_only":
        return text("Web answers only")
    _prefix, who, delta = name.split("_", 2)
    if who == "all":
        return text("Non-responders %(delta)s points worse (both arms)", delta=delta)
    arm = labels.arm(labels.analysis.primary_plan.comparison.other)
    return text("Non-responders %(delta)s points worse (%(arm)s only)", delta=delta, arm=arm)


def input_label(kind: str, key: str, labels: Any) -> str:
    if kind == "capacity_cost":
        return text("Cost of %(resource)s", resource=labels.resource(key))
    if kind == "minutes":
        product, resource = key.split(":", 1)
        return text(
            "Minutes of %(resource)s in %(product)s",
            resource=labels.resource(resource),
            product=labels.product(product),
        )
    return text("Unit cost of %(product)s", product=labels.product(key))


def scenario_row(row: dict[str, Any], labels: Any, fmt: Formats) -> str:
    kind, value = row["scenario"], row["value"]
    if kind == "base":
        return text("Primary analysis (%(wtp)s per point)", wtp=fmt.euro(value))
    if kind == "wtp":
        return text("Willingness to pay %(wtp)s per point", wtp=fmt.euro(value))
    if kind == "price_year":
        return text("Costs at %(year)s prices", year=int(value))
    return text(
        "Outcome at %(time_point)s instead (complete cases)",
        time_point=labels.time_point(value),
    )


def strategy_rows(chosen: Any, labels: Any, fmt: Formats) -> list[list[Cell]]:
    """The procedure types' acceptability table from the bootstrap replicates' curves."""
    uncertainty = chosen.strategies
    names = [c for c in uncertainty.best.columns if c != "wtp"]
    rows: list[list[Cell]] = []
    for lam in chosen.scale.shown:
        at = int(np.argmin(np.abs(uncertainty.wtp - lam)))
        frontier = uncertainty.frontier.iloc[at]
        rows.append(
            [
                fmt.euro(lam),
                *[fmt.probability(float(uncertainty.best[n].iloc[at])) for n in names],
                f"{labels.procedure(frontier['strategy'])} "
                f"({fmt.probability(float(frontier['probability']))})",
            ]
        )
    return rows


def expected_section(
    result: CohortAnalysis,
    section: str,
    *,
    effect: str | None = None,
    score: str | None = None,
    language: str = "fi",
) -> Expected:
    """Every table of ``section`` of the cohort page (call inside :func:`in_language`)."""
    labels = Labels(result, language)
    fmt = Formats(language)
    layout = layouts(labels)
    tables: list[tuple[tuple[str, ...], list[list[Cell]], str]] = []

    def published(name: str, table: Any, layout_name: str | None = None, **args: str) -> None:
        rows = expected_rows(from_published(table), layout[layout_name or name], fmt)
        tables.append((("csv", name, *[f"{k}={v}" for k, v in args.items()]), rows, name))

    if section == "overview":
        published("enrolment", result.enrolment.table)
        published("response_rates", result.response_rates.table)
    elif section == "quality":
        published("data_quality", result.data_quality.items)
        published("late_answers", result.data_quality.late)
        published("imports", result.data_quality.imports)
        published("answer_modes", result.data_quality.modes)
    elif section == "outcomes":
        rules = {f"{r.instrument}.{r.score}": r for r in result.rules}
        for name in result.outcomes.scores:
            rule = rules.get(name)
            caption = labels.score(name)
            if rule is not None:
                caption = text(
                    "%(score)s (responder: improvement of at least %(points)s points)",
                    score=caption,
                    points=fmt.number(rule.min_improvement, 0),
                )
            rows = expected_rows(
                from_published(result.outcomes.summary),
                outcome_columns(labels, name, rule is not None),
                fmt,
                keep=lambda record, s=name: record["score"] == s,
            )
            tables.append((("caption", caption), rows, f"outcomes {name}"))
        if not result.outcomes.qalys.empty:
            published("qalys", result.outcomes.qalys)
    elif section == "costs":
        published("costs", result.costs.by_arm)
        published("costs_by_cost_centre", result.costs.by_cost_centre)
        published("costs_by_product", result.costs.by_product)
    elif section == "cea":
        ce = result.cost_effectiveness
        chosen = ce.effects[effect or "improvement"]
        tables.extend(primary_tables(result, labels, fmt, chosen.effect))
        summary = cea_summary_rows(
            [r.summary_row() for r in ce.effects.values()],
            labels,
            fmt,
            text,
            hidden={name: r.hidden for name, r in ce.effects.items()},
            arm_filter=result.filters.arm is not None,
        )
        tables.append((("csv", "cea_summary"), summary, "cea_summary"))
        args = {"effect": chosen.effect}
        published("cea_arms", chosen.arms, **args)
        if chosen.available and chosen.two_arm is not None and chosen.bootstrap is not None:
            two, boot = chosen.two_arm, chosen.bootstrap
            plane = plane_records(
                (two.delta_effect, two.delta_cost), boot.delta_effect, boot.delta_cost, text
            )
            tables.append(
                (
                    ("csv", "ce_plane", "effect=" + chosen.effect),
                    expected_rows(Source(plane), layout["ce_plane"], fmt),
                    "ce_plane",
                )
            )
            ceac = [
                {
                    "wtp": lam,
                    "ceac_bootstrap": float(np.mean(lam * boot.delta_effect - boot.delta_cost > 0)),
                    "ceac_parametric": chosen.at(two.ceac, lam),
                }
                for lam in chosen.scale.shown
            ]
            tables.append(
                (
                    ("csv", "ceac", "effect=" + chosen.effect),
                    expected_rows(Source(ceac), layout["ceac"], fmt),
                    "ceac",
                )
            )
            inmb = chosen.inmb_rows()
            for row in inmb:  # INMB(λ) = λ·ΔE − ΔC, its probability from the replicates
                assert row["inmb"] == pytest.approx(
                    row["wtp"] * two.delta_effect - two.delta_cost, rel=1e-9, abs=1e-6
                )
                assert row["ceac_bootstrap"] == pytest.approx(
                    np.mean(row["wtp"] * boot.delta_effect - boot.delta_cost > 0), abs=1e-12
                )
            tables.append(
                (
                    ("csv", "inmb", "effect=" + chosen.effect),
                    expected_rows(Source(inmb), layout["inmb"], fmt),
                    "inmb",
                )
            )
        if not chosen.incremental.empty:
            published("incremental", chosen.incremental, **args)
        if chosen.strategies is not None:
            tables.append(
                (
                    ("csv", "strategy_ceac", "effect=" + chosen.effect),
                    strategy_rows(chosen, labels, fmt),
                    "strategy_ceac",
                )
            )
    elif section == "funnel":
        for table in result.funnel.groups.values():
            published(table.name, table, "funnel")
    elif section == "services":
        chosen_score = score or result.service_scores[0]
        by = "service_type"  # the sectors' comparison is on request
        part = result.services(chosen_score, by)
        if part.error is None:
            columns = service_columns(labels, by)
            names: list[tuple[str, Any, dict[str, str]]] = [
                ("service_differences", part.differences, {"follow_up": "primary"}),
                ("service_differences", part.differences, {"follow_up": "other"}),
                ("service_balance", part.balance, {}),
                ("service_overlap", part.overlap, {}),
                ("service_cost_per_point", part.cost, {}),
                ("service_dose", part.dose, {}),
                ("service_missing", part.missing, {}),
            ]
            if part.primary:
                names.insert(2, ("service_sensitivity", part.sensitivity, {}))
            for name, table, extra in names:
                args = {"score": chosen_score, "by": by, **extra}
                rows = expected_rows(
                    from_published(table),
                    service_layout(columns, name, args),
                    fmt,
                    keep=service_keep(name, args, part.primary_time_point),
                )
                what = " ".join([name, by, *extra.values()])
                tables.append((("csv", name, *[f"{k}={v}" for k, v in args.items()]), rows, what))
    return Expected(result, labels, fmt, text, tables)


# --------------------------------------------------------------------------------------------
# The management summary: key figures and the plain-language sentences
# --------------------------------------------------------------------------------------------


def _published_count(published: Any, position: int, column: str, fmt: Formats) -> str:
    if published.is_hidden(position, column):
        return f"<{published.min_count}" if published.is_primary(position, column) else "x"
    return fmt.count(published.table[column].iloc[position])


def _shown(
    published: Any,
    position: int | None,
    columns: Sequence[str],
    show: Callable[..., str],
    count: bool = False,
) -> str:
    """A value as the summary shows it: ``<5`` a small count, ``x`` hidden, ``–`` nothing."""
    if position is None:
        return EN_DASH
    if any(published.is_hidden(position, c) for c in columns):
        return (
            f"<{published.min_count}"
            if count and published.is_primary(position, columns[0])
            else "x"
        )
    values = [published.table[c].iloc[position] for c in columns]
    if any(_missing(v) for v in values):
        return EN_DASH
    return show(*values)


def _row_of(published: Any, **match: object) -> int | None:
    return next(
        (
            i
            for i, r in enumerate(published.records())
            if all(r.get(k) == v for k, v in match.items())
        ),
        None,
    )


def management_key_figures_expected(cohort: Any, language: str) -> list[list[Cell]]:
    """The rows of the summary's key-figure table (docs/reports.md, *The management summary*):
    per arm and all, the persons, the response rate at the primary time point with its Wilson
    interval, the primary score's change with its interval, the responders, the care-cycle
    cost with its interval and the shares missing of the outcome and the costs — from the
    period's tables with every value hidden that a quarter hides (call inside
    :func:`in_language`)."""
    fmt = Formats(language)
    analysis = cohort.analysis
    labels = Labels(analysis, language)
    arms = [*analysis.arms, ALL]
    score = analysis.primary_plan.outcome
    tp = analysis.primary_plan.time_point
    enrolment = cohort.masked(lambda a: a.enrolment.table, ["arm"], ["enrolled"])
    rates = cohort.masked(
        lambda a: a.response_rates.table, ["arm", "time_point"], ["invited", "open"]
    )
    outcomes = cohort.masked(
        lambda a: a.outcomes.summary, ["arm", "score", "time_point"], ["n_persons"]
    )
    costs = cohort.masked(lambda a: a.costs.by_arm, ["arm"], ["n", "n_missing"])

    def percent(value: object) -> str:
        return fmt.number(float(value) * 100, 0)  # type: ignore[arg-type]

    def with_interval(value: str, low: object, high: object, digits: int) -> str:
        interval = fmt.interval(low, high, digits)
        return value if interval == EN_DASH else f"{value} ({interval})"

    rows: list[list[Cell]] = [
        [text("Persons (index date in the period)")]
        + [
            _shown(enrolment, _row_of(enrolment, arm=a), ["enrolled"], fmt.count, True)
            for a in arms
        ],
        [text("Response rate at %(time_point)s, %% (95%% CI)", time_point=labels.time_point(tp))]
        + [
            _shown(
                rates,
                _row_of(rates, arm=a, time_point=tp),
                ["rate", "ci_low", "ci_high"],
                lambda r, lo, hi: with_interval(percent(r), lo * 100, hi * 100, 0),
            )
            for a in arms
        ],
        [
            text(
                "%(score)s: change by %(time_point)s, points (95%% CI)",
                score=labels.score_short(score),
                time_point=labels.time_point(tp),
            )
        ]
        + [
            _shown(
                outcomes,
                _row_of(outcomes, arm=a, score=score, time_point=tp),
                ["change_mean", "change_ci_low", "change_ci_high"],
                lambda m, lo, hi: with_interval(fmt.signed(m), lo, hi, 1),
            )
            for a in arms
        ],
        [text("Clinically important improvement, %")]
        + [
            _shown(
                outcomes,
                _row_of(outcomes, arm=a, score=score, time_point=tp),
                ["share_responders"],
                percent,
            )
            for a in arms
        ],
    ]
    if any(r.get("n") not in (None, 0) for r in costs.records()):
        rows.append(
            [text("Care-cycle cost per person, € (95% CI)")]
            + [
                _shown(
                    costs,
                    _row_of(costs, arm=a),
                    ["mean_eur", "ci_low_eur", "ci_high_eur"],
                    lambda m, lo, hi: with_interval(fmt.number(m, 0), lo, hi, 0),
                )
                for a in arms
            ]
        )
    rows.append(
        [
            text(
                "Missing: %(score)s at %(time_point)s, %%",
                score=labels.score_short(score),
                time_point=labels.time_point(tp),
            )
        ]
        + [
            _shown(
                outcomes,
                _row_of(outcomes, arm=a, score=score, time_point=tp),
                ["share_missing"],
                percent,
            )
            for a in arms
        ]
    )
    if any(r.get("n") not in (None, 0) for r in costs.records()):
        rows.append(
            [text("Missing: care-cycle costs, %")]
            + [
                _shown(
                    costs,
                    _row_of(costs, arm=a),
                    ["n", "n_missing"],
                    lambda n, m: percent(m / (n + m)) if n + m else EN_DASH,
                )
                for a in arms
            ]
        )
    return rows


def management_trend_expected(cohort: Any, language: str) -> list[list[Cell]]:
    """The rows of the quarterly trend: each quarter's own published tables (not yet due
    blocks as ``·``) and the change from the previous quarter."""
    from vaikuttavuus.domain.periods import block_release

    fmt = Formats(language)
    analysis = cohort.analysis
    labels = Labels(analysis, language)
    score = analysis.primary_plan.outcome
    close = {t.id: t.window_close_days for t in analysis.spec.time_points}
    first, primary_tp = analysis.follow_ups[0], analysis.primary_plan.time_point

    def percent(value: object) -> str:
        return fmt.number(float(value) * 100, 0)  # type: ignore[arg-type]

    specs: list[tuple[str, str, int | None, Callable[[Any], tuple[str, float | None]]]] = []

    def cell(
        table_of: Callable[[Any], Any],
        match: dict[str, Any],
        column: str,
        show: Callable[..., str],
        count: bool = False,
    ) -> Callable[[Any], tuple[str, float | None]]:
        def get(part: Any) -> tuple[str, float | None]:
            table = table_of(part)
            position = _row_of(table, **match)
            shown = _shown(table, position, [column], show, count)
            value = (
                None
                if position is None or table.is_hidden(position, column)
                else table.table[column].iloc[position]
            )
            return shown, None if _missing(value) else float(value)

        return get

    for arm in analysis.arms:
        specs.append(
            (
                text("Persons: %(arm)s", arm=labels.arm(arm)),
                "count",
                None,
                cell(lambda a: a.enrolment.table, {"arm": arm}, "enrolled", fmt.count, True),
            )
        )
    specs.append(
        (
            text("Response rate at %(time_point)s, %%", time_point=labels.time_point(first)),
            "share",
            close[first],
            cell(
                lambda a: a.response_rates.table, {"arm": ALL, "time_point": first}, "rate", percent
            ),
        )
    )
    for tp in dict.fromkeys((first, primary_tp)):
        for arm in analysis.arms:
            specs.append(
                (
                    text(
                        "%(score)s, change by %(time_point)s: %(arm)s",
                        score=labels.score_short(score),
                        time_point=labels.time_point(tp),
                        arm=labels.arm(arm),
                    ),
                    "signed",
                    close[tp],
                    cell(
                        lambda a: a.outcomes.summary,
                        {"arm": arm, "score": score, "time_point": tp},
                        "change_mean",
                        fmt.signed,
                    ),
                )
            )
    if analysis.has_procedures:
        for arm in analysis.arms:
            specs.append(
                (
                    text("Care-cycle cost, €: %(arm)s", arm=labels.arm(arm)),
                    "euro",
                    analysis.spec.care_cycle.end_days,
                    cell(
                        lambda a: a.costs.by_arm,
                        {"arm": arm},
                        "mean_eur",
                        lambda v: fmt.number(v, 0),
                    ),
                )
            )
    rows: list[list[Cell]] = []
    for label, kind, offset, get in specs:
        row: list[Cell] = [label]
        numbers: list[float | None] = []
        for quarter in cohort.trend:
            if offset is not None and block_release(quarter.end, offset) > cohort.release:
                row.append("·")
                numbers.append(None)
                continue
            shown, number = get(cohort.quarters[quarter])
            row.append(shown)
            numbers.append(number)
        latest, previous = numbers[-1], numbers[-2]
        if latest is None or previous is None:
            row.append(EN_DASH)
        else:
            difference = latest - previous
            plus = "+" if difference > 0 else ""
            if kind == "share":
                row.append(
                    text("%(points)s %%-points", points=plus + fmt.number(difference * 100, 0))
                )
            elif kind in ("count", "euro"):
                row.append(plus + fmt.number(difference, 0))
            else:
                row.append(plus + fmt.number(difference, 1))
        rows.append(row)
    return rows


LIKELIHOOD = (
    (0.99, "virtually certain"),
    (0.90, "very likely"),
    (0.66, "likely"),
    (0.33, "about as likely as not"),
    (0.10, "unlikely"),
    (0.01, "very unlikely"),
)


def interpretation_expected(result: CohortAnalysis, language: str) -> str | None:
    """The plain-language answer by the rules of docs/reports.md: the adjusted differences of
    the declared primary analysis with their intervals, and the probability (from the pooled
    bootstrap replicates) that the other arm is cost-effective at the declared reference λ per
    point, in calibrated words with the number beside them."""
    primary = result.primary
    if primary is None:
        return None
    fmt, labels = Formats(language), Labels(result, language)
    if not primary.available:
        return None
    lam = float(result.spec.willingness_to_pay("improvement").reference)
    effect = primary.differences["improvement"].adjusted
    cost = primary.differences["cost"].adjusted
    replicates = primary.replicates
    assert replicates is not None
    share = float(np.mean(lam * replicates.values["improvement"] - replicates.values["cost"] > 0))
    bound = 1 / (replicates.n_boot + 1)
    share = min(max(share, bound), 1 - bound)
    word = next((w for lower, w in LIKELIHOOD if share > lower), "exceptionally unlikely")
    score = labels.score_short(primary.outcome)
    symptom = text(
        "improves %(score)s by %(points)s points more (95%% CI %(low)s to %(high)s)"
        if effect.estimate >= 0
        else "improves %(score)s by %(points)s points less (95%% CI %(low)s to %(high)s)",
        score=score,
        points=fmt.number(abs(effect.estimate), 1),
        low=fmt.signed(effect.ci_low, 1),
        high=fmt.signed(effect.ci_high, 1),
    )
    money = text(
        "costs %(amount)s less per patient (95%% CI %(low)s to %(high)s)"
        if cost.estimate < 0
        else "costs %(amount)s more per patient (95%% CI %(low)s to %(high)s)",
        amount=fmt.euro(abs(cost.estimate)),
        low=fmt.euro(cost.ci_low),
        high=fmt.euro(cost.ci_high),
    )
    return text(
        "Adjusted for the differences between the patients, %(other)s %(symptom)s and "
        "%(money)s than %(reference)s. If one point of improvement is worth %(wtp)s, it is "
        "%(likelihood)s that %(other)s gives more value for the money. The arms were not "
        "randomised, so unmeasured differences between the patients may remain.",
        other=labels.arm(primary.other),
        reference=labels.arm(primary.reference),
        symptom=symptom,
        money=money,
        wtp=fmt.euro(lam),
        likelihood=text(
            "%(word)s (%(probability)s)", word=text(word), probability=fmt.probability(share)
        ),
    )


# --------------------------------------------------------------------------------------------
# PDF text
# --------------------------------------------------------------------------------------------


def pdf_text(data: bytes, folder: Path) -> str:
    """The PDF's text in content order (``pdftotext -raw``: a table's cells row by row, each
    cell whole even when it wraps; ``-layout`` interleaves the lines of wrapped cells), on one
    line with single spaces."""
    path = folder / "report.pdf"
    path.write_bytes(data)
    raw = subprocess.run(
        ["pdftotext", "-raw", "-enc", "UTF-8", str(path), "-"],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    return flat(raw)


WORD_BOX = re.compile(
    r'<word xMin="([\d.]+)" yMin="[\d.]+" xMax="([\d.]+)" yMax="[\d.]+">([^<]*)</word>'
)


def pdf_word_boxes(data: bytes, folder: Path) -> list[tuple[float, float, str]]:
    """Every word of the PDF with its left and right edge in points (``pdftotext -bbox``)."""
    path = folder / "report.pdf"
    path.write_bytes(data)
    boxes = subprocess.run(
        ["pdftotext", "-bbox", "-enc", "UTF-8", str(path), "-"],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    return [(float(x0), float(x1), word) for x0, x1, word in WORD_BOX.findall(boxes)]


def flat(text: str) -> str:
    """Single spaces (no-break spaces too); no line break after a hyphen, nor between a minus
    sign and its amount (WeasyPrint may break a narrow cell between "−" and "€2,535")."""
    text = re.sub(r"[\s\xa0\u202f]+", " ", text)
    text = re.sub(f"{MINUS} (?=[€\\d])", MINUS, text)
    return re.sub(r"- (?=\w)", "-", text).strip()


def row_pattern(cells: Sequence[Cell]) -> re.Pattern[str]:
    parts = []
    for cell in cells:
        options = cell if isinstance(cell, tuple) else (cell,)
        parts.append("(?:" + "|".join(re.escape(flat(o)) for o in options) + ")")
    return re.compile(" ".join(parts))


def assert_tables_in_pdf(
    text_: str, tables: Sequence[tuple[str, Sequence[Sequence[Cell]]]], start: int = 0
) -> int:
    """Each table's rows appear whole (every cell, in order), the tables one after another in
    the given order; returns where the last one ended."""
    position = start
    for what, rows in tables:
        for row in rows:
            found = row_pattern(row).search(text_, position)
            assert found is not None, (
                f"{what}: row {[str(c) for c in row]} not found in the PDF after "
                f"…{text_[max(position - 80, 0) : position + 400]}…"
            )
            position = found.end()
    return position
