"""The cohort analytics as people see them: labels, formatted tables and charts.

Shared by the pilot-lead pages, the management page and the management PDF, so each output
shows the same numbers: every table here is a :class:`~vaikuttavuus.services.analytics.
Published` (small cells already hidden) turned into text in the current locale, and every
chart is drawn from the same published rows as the table printed next to it. Hidden values
show as ``<5`` (a count below the pilot's minimum) or ``x`` (hidden so that a small count
cannot be worked out); a dash means there is nothing to show.

Build views inside the locale they are shown in (``force_locale`` for PDFs).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from flask_babel import format_currency, format_decimal, format_percent, get_locale, pgettext
from flask_babel import gettext as _

from vaikuttavuus import plotting
from vaikuttavuus.domain.catalogue import DIRECT_COST_PRODUCT, UNALLOCATED_CENTRE
from vaikuttavuus.domain.specs import EFFECT_KINDS, BandScore
from vaikuttavuus.domain.stats import likelihood
from vaikuttavuus.plotting import Chart
from vaikuttavuus.services.analytics import (
    ALL,
    CohortAnalysis,
    EffectResult,
    Published,
    ServiceSection,
)
from vaikuttavuus.services.note_texts import note_texts

Kind = str
"""How a column is shown: ``count``, ``number``, ``percent``, ``euro``, ``share`` (0–1 as %),
``text``, or a label kind (``arm``, ``time_point``, ``score``, ``instrument``, ``category``,
``procedure``, ``status``, ``position``, ``cost_centre``, ``product``, ``import_kind``,
``answer_mode``, ``method``, ``variable``, ``effect``, ``flag``, ``reason``, ``analysis``,
``cost_status``, ``exposure_group``; ``p`` is a p-value)."""


# --------------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------------


class Labels:
    """Names of codes in the current language (pilot definition, instruments, catalogue)."""

    def __init__(self, analysis: CohortAnalysis, language: str) -> None:
        self.analysis = analysis
        self.language = language
        spec = analysis.spec
        self._arms = {arm.id: arm.name.get(language) for arm in spec.arms}
        self._time_points = {tp.id: tp.label.get(language) for tp in spec.time_points}
        self._services = {c.id: c.name.get(language) for c in spec.service_types}
        self._sectors = {c.id: c.name.get(language) for c in spec.provider_sectors}
        self._procedures = {c.id: c.name.get(language) for c in spec.procedure_types}

    @property
    def pilot(self) -> str:
        return self.analysis.spec.name.get(self.language)

    def arm(self, code: object) -> str:
        if code == ALL:
            return _("All")
        return self._arms.get(str(code), str(code))

    def time_point(self, code: object) -> str:
        if code == "baseline" and "baseline" not in self._time_points:
            return _("Baseline")
        return self._time_points.get(str(code), str(code))

    def instrument(self, code: object) -> str:
        spec = self.analysis.instruments.get(str(code))
        return spec.title.get(self.language) if spec is not None else str(code)

    def score(self, name: object) -> str:
        instrument, _sep, score_id = str(name).partition(".")
        spec = self.analysis.instruments.get(instrument)
        if spec is None:
            return str(name)
        title = spec.title.get(self.language)
        try:
            score = spec.score(score_id)
        except (KeyError, ValueError, StopIteration):
            return title
        label = score.label.get(self.language) if score.label is not None else score_id
        return f"{title}: {label}"

    def score_short(self, name: object) -> str:
        instrument, _sep, score_id = str(name).partition(".")
        spec = self.analysis.instruments.get(instrument)
        if spec is None:
            return str(name)
        try:
            score = spec.score(score_id)
        except (KeyError, ValueError, StopIteration):
            return str(name)
        return score.label.get(self.language) if score.label is not None else score_id

    def category(self, code: object, by: str = "service_type") -> str:
        if code == "none":
            return _("No service")
        if code == ALL:
            return _("All")
        table = self._services if by == "service_type" else self._sectors
        return table.get(str(code), str(code))

    def resource(self, code: object) -> str:
        """A TDABC resource (staff group, room, equipment) by its id."""
        for resource in self._resources:
            if resource.id == code:
                return str(resource.name.get(self.language))
        return str(code)

    @cached_property
    def _resources(self) -> tuple[Any, ...]:
        tdabc = self.analysis.costing_tdabc
        return tdabc.resources if tdabc is not None else ()

    def band(self, score: object, code: object) -> str:
        """The name of a band (e.g. IPSS "severe") of ``score``'s band score."""
        instrument, _sep, score_id = str(score).partition(".")
        spec = self.analysis.instruments.get(instrument)
        for candidate in spec.scores if spec is not None else ():
            if isinstance(candidate, BandScore) and candidate.of == score_id:
                for band in candidate.bands:
                    if band.label == code:
                        return band.text.get(self.language) if band.text else str(code)
        return str(code)

    def procedure(self, code: object) -> str:
        return self._procedures.get(str(code), str(code))

    def cost_centre(self, code: object) -> str:
        catalogue = self.analysis.catalogue
        for centre in catalogue.cost_centres:
            if centre.code == code:
                return str(centre.name.get(self.language))
        if code == UNALLOCATED_CENTRE:
            return _("Unallocated")
        return str(code)

    def product(self, code: object) -> str:
        catalogue = self.analysis.catalogue
        for product in catalogue.products:
            if product.code == code:
                return str(product.name.get(self.language))
        if code == DIRECT_COST_PRODUCT:
            return _("Direct costs without a product")
        return str(code)

    def effect(self, name: object) -> str:
        score = self.score_short(self.analysis.primary_score)
        return {
            "improvement": _("Improvement in %(score)s (points)", score=score),
            "responder": _("Responder (clinically important improvement)"),
            "qaly": _("QALYs"),
        }.get(str(name), str(name))

    def _declared_unit(self, name: object) -> str | None:
        """The unit of an effect as the pilot declares it (``willingness_to_pay → unit``)."""
        if name not in EFFECT_KINDS:
            return None
        unit = self.analysis.spec.willingness_to_pay(name).unit
        return unit.get(self.language) if unit is not None else None

    def effect_unit(self, name: object) -> str:
        declared = self._declared_unit(name)
        if declared is not None:
            return declared
        return {
            "improvement": _("point of improvement"),
            "responder": _("responder"),
            "qaly": _("QALY"),
        }.get(str(name), str(name))

    def per_unit(self, name: object) -> str:
        declared = self._declared_unit(name)
        if declared is not None:
            return pgettext("willingness to pay", "per %(unit)s", unit=declared)
        return {
            "improvement": _("per point of improvement"),
            "responder": _("per responder"),
            "qaly": _("per QALY"),
        }.get(str(name), str(name))

    def status(self, code: object) -> str:
        return {
            "dominates": _("dominates"),
            "dominated": _("dominated"),
            "NE": _("costs more, more effective"),
            "SW": _("costs less, less effective"),
            "equal": _("no difference"),
            "ND": _("on the frontier"),
            "D": _("dominated"),
            "ED": _("extendedly dominated"),
        }.get(str(code), str(code))

    def position(self, code: object) -> str:
        return {
            "within": _("within the limits"),
            "above_95": _("above the 95% limit"),
            "above_998": _("above the 99.8% limit"),
            "below_95": _("below the 95% limit"),
            "below_998": _("below the 99.8% limit"),
        }.get(str(code), str(code))

    def method(self, code: object) -> str:
        return {
            "aipw": _("adjusted (doubly robust)"),
            "outcome_regression": _("outcome regression"),
            "ipw": _("weighted (IPW)"),
            "unadjusted": _("unadjusted"),
        }.get(str(code), str(code))

    def variable(self, code: object) -> str:
        """A covariate or balance variable (design column names such as ``sex=male``)."""
        text = str(code)
        if text == "baseline_score":
            return _("Baseline score")
        if text == "baseline_utility":
            return _("Baseline utility (EQ-5D-5L index)")
        if text == "age":
            return _("Age")
        if text == "lives_alone":
            return _("Lives alone")
        if text == "sex":
            return _("Sex")
        if text == "unit":
            return _("Unit")
        if text == "arm":
            return _("Arm")
        if text.startswith("sex="):
            value = text.removeprefix("sex=")
            sexes = {"male": _("man"), "female": _("woman"), "other": _("other")}
            return _("Sex: %(value)s", value=sexes.get(value, value))
        if text.startswith("baseline_"):
            score = self.analysis.baseline_score_name(text.removeprefix("baseline_"))
            if score is not None:
                return _("Baseline: %(name)s", name=self.score(score))
        if text.startswith("baseline:"):
            return _("Baseline: %(name)s", name=self.score(text.removeprefix("baseline:")))
        if text.startswith("adjusted: "):
            return _("Service: %(name)s", name=self.category(text.removeprefix("adjusted: ")))
        if text in self._services:
            return _("Service: %(name)s", name=self._services[text])
        if text.startswith(("unit=", "arm=")):
            name, value = text.split("=", 1)
            if name == "arm":
                return _("Arm: %(value)s", value=self.arm(value))
            return _("Unit: %(value)s", value=value)
        if "." in text and text.split(".", 1)[0] in self.analysis.instruments:
            return self.score(text)
        measure = self._measures.get(text)
        return measure if measure is not None else text

    @cached_property
    def _measures(self) -> dict[str, str]:
        from vaikuttavuus.services.definitions import load_measure_catalogue

        return {m.id: m.name.get(self.language) for m in load_measure_catalogue().measures}

    def import_kind(self, code: object) -> str:
        return {
            "people": _("People"),
            "procedures": _("Procedures"),
            "measurements": _("Clinical measurements"),
            "resource_use": _("Resource use"),
            "direct_costs": _("Direct costs"),
            "exposures": _("Service exposures"),
            "responses": _("Questionnaire answers"),
        }.get(str(code), str(code))

    def answer_mode(self, code: object) -> str:
        if code == ALL:
            return self.arm(ALL)
        return {
            "web": _("On the web"),
            "phone": _("By phone (staff)"),
            "paper": _("On paper (staff)"),
            "imported": _("Imported"),
        }.get(str(code), str(code))

    def grouping(self, code: object) -> str:
        if code == "unit":
            return _("Unit")
        if code == "professional":
            return _("Surgeon") if self.analysis.has_procedures else _("Professional")
        if code == "service_type":
            return _("Service type")
        if code == "provider_sector":
            return _("Provider sector")
        return str(code)

    def reason(self, code: object) -> str:
        """Why an estimate is missing."""
        return {
            "small_cell": _(
                "fewer than %(n)s clients with or without the service", n=self.analysis.min_cell
            ),
            "no_overlap": _("the clients with and without the service do not overlap"),
            "not_estimable": _("cannot be estimated from these data"),
        }.get(str(code), str(code))

    def analysis_name(self, code: object) -> str:
        """A sensitivity analysis of the services' primary question."""
        return {
            "outcome_regression": _("Outcome regression only"),
            "ipw": _("Inverse probability weighting only"),
            "complete_cases": _("Complete cases (no missing answers handled)"),
            "without_proxy": _("Without answers given by a proxy"),
            "web_only": _("Web answers only"),
            "mnar_all": _("Non-responders δ points worse"),
            "mnar_exposed": _("Non-responders with the service δ points worse"),
        }.get(str(code), str(code))

    def cost_status(self, code: object) -> str:
        """Whether the cost per point is shown, and why not."""
        return {
            "shown": _("shown"),
            "interval_includes_zero": _("not shown: the interval of the difference includes 0"),
            "no_improvement": _("not shown: no improvement"),
            "lower_cost": _("lower cost and better outcome"),
            "not_estimated": _("not estimated"),
        }.get(str(code), str(code))

    def exposure_group(self, code: object) -> str:
        return {"exposed": _("with the service"), "unexposed": _("without")}.get(
            str(code), str(code)
        )

    def flag(self, value: object) -> str:
        if value is None:
            return "–"
        return _("yes") if value else _("no")

    def of(self, kind: Kind) -> Callable[[object], str] | None:
        return {
            "arm": self.arm,
            "time_point": self.time_point,
            "score": self.score,
            "instrument": self.instrument,
            "procedure": self.procedure,
            "status": self.status,
            "position": self.position,
            "cost_centre": self.cost_centre,
            "product": self.product,
            "import_kind": self.import_kind,
            "answer_mode": self.answer_mode,
            "method": self.method,
            "variable": self.variable,
            "effect": self.effect,
            "flag": self.flag,
            "reason": self.reason,
            "analysis": self.analysis_name,
            "cost_status": self.cost_status,
            "exposure_group": self.exposure_group,
            "service_type": lambda c: self.category(c, "service_type"),
            "provider_sector": lambda c: self.category(c, "provider_sector"),
        }.get(kind)


# --------------------------------------------------------------------------------------------
# Number formats
# --------------------------------------------------------------------------------------------


def _missing(value: object) -> bool:
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and not math.isfinite(value)


def fmt_number(value: object, digits: int = 1) -> str:
    if _missing(value):
        return "–"
    pattern = "#,##0" + ("." + "0" * digits if digits > 0 else "")
    text = str(format_decimal(float(value), format=pattern))  # type: ignore[arg-type]
    return "\u2212" + text[1:] if text.startswith("-") else text


def fmt_count(value: object) -> str:
    if _missing(value):
        return "–"
    return str(format_decimal(round(float(value)), format="#,##0"))  # type: ignore[arg-type]


def fmt_share(value: object, digits: int = 0) -> str:
    """A proportion (0–1) as a percentage in the locale's style (``84 %`` / ``84%``)."""
    if _missing(value):
        return "–"
    locale = get_locale()
    pattern = locale.percent_formats[None].pattern if locale is not None else "#,##0%"
    if digits > 0:
        pattern = pattern.replace("#,##0", "#,##0." + "0" * digits, 1)
    return str(format_percent(float(value), format=pattern))  # type: ignore[arg-type]


MINUS = "\u2212"
"""The minus sign of every signed figure shown (``fmt_signed``, ``fmt_euro``): U+2212, not the
hyphen Babel writes, so "−2 903 €" and "−4,6" look alike in every language."""


def fmt_euro(value: object, digits: int = 0) -> str:
    """Euros in the locale's style ("−2 903 €", "−€2,903"); negative amounts take the same
    minus sign as the other signed figures (:data:`MINUS`), and an amount that rounds to zero
    has no sign."""
    if _missing(value):
        return "–"
    amount = round(float(value), digits)  # type: ignore[arg-type]
    if amount == 0:
        amount = 0.0  # no "−0 €"
    decimals = "." + "0" * digits if digits > 0 else ""
    locale = get_locale()
    english = locale is not None and locale.language == "en"
    pattern = f"¤#,##0{decimals}" if english else f"#,##0{decimals}\xa0¤"
    text = str(format_currency(abs(amount), "EUR", format=pattern, currency_digits=False))
    return MINUS + text if amount < 0 else text


def fmt_signed(value: object, digits: int = 1) -> str:
    if _missing(value):
        return "–"
    number = float(value)  # type: ignore[arg-type]
    text = fmt_number(abs(number), digits)
    return (MINUS + text) if number < 0 and text.strip("0,.\xa0 ") else text


def fmt_probability(value: float | None) -> str:
    """A probability estimated from bootstrap replicates: never "0 %" or "100 %" but "> 99 %"
    and "< 1 %" (a share of B replicates cannot tell more)."""
    if value is None:
        return "–"
    if value >= 0.99:
        return "> " + fmt_share(0.99)
    if value <= 0.01:
        return "< " + fmt_share(0.01)
    return fmt_share(value)


def likelihood_words(value: float | None) -> str:
    """The calibrated word for a probability with the number beside it."""
    if value is None:
        return "–"
    words = {
        "virtually_certain": _("virtually certain"),
        "very_likely": _("very likely"),
        "likely": _("likely"),
        "about_as_likely_as_not": _("about as likely as not"),
        "unlikely": _("unlikely"),
        "very_unlikely": _("very unlikely"),
        "exceptionally_unlikely": _("exceptionally unlikely"),
    }
    return _(
        "%(word)s (%(probability)s)",
        word=words[likelihood(value)],
        probability=fmt_probability(value),
    )


def fmt_interval(low: object, high: object, digits: int = 1, kind: str = "number") -> str:
    if _missing(low) or _missing(high):
        return "–"
    formatter = {"euro": fmt_euro, "share": fmt_share}.get(kind)
    if formatter is not None:
        return f"{formatter(low, 0)} … {formatter(high, 0)}"
    return f"{fmt_signed(low, digits)} … {fmt_signed(high, digits)}"


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """A column of a shown table: the data column (or two for an interval, ``key`` and
    ``high``), its heading and how to show it."""

    key: str
    label: str
    kind: Kind = "number"
    digits: int = 1
    high: str | None = None


@dataclass(frozen=True)
class Cell:
    text: str
    numeric: bool = False
    header: bool = False


@dataclass(frozen=True)
class TableView:
    """A formatted table: ``name`` is the CSV download's name (``None`` for none)."""

    name: str | None
    caption: str
    headers: list[tuple[str, bool]]
    rows: list[list[Cell]]
    note: str | None = None
    csv_args: dict[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.rows


NUMERIC_KINDS = frozenset(
    {
        "count", "number", "percent", "euro", "share", "signed", "interval", "probability", "p",
        "figure",
    }
)
"""Kinds shown right-aligned as numbers; ``figure`` is a number already formatted as text."""


def _cell_text(
    published: Published | None,
    row: int,
    column: Column,
    value: object,
    labels: Labels,
) -> str:
    if published is not None:
        keys = [column.key, *([column.high] if column.high else [])]
        if any(published.is_hidden(row, key) for key in keys):
            primary = column.kind == "count" and published.is_primary(row, column.key)
            return f"<{published.min_count}" if primary else "x"
    if column.kind == "interval":
        high = published.table[column.high].iloc[row] if published is not None else None
        return fmt_interval(value, high, column.digits)
    if column.kind == "interval_euro":
        high = published.table[column.high].iloc[row] if published is not None else None
        return fmt_interval(value, high, 0, "euro")
    if column.kind == "interval_share":
        high = published.table[column.high].iloc[row] if published is not None else None
        return fmt_interval(value, high, 0, "share")
    if column.kind == "figure":
        return "–" if _missing(value) else str(value)
    if column.kind == "count":
        return fmt_count(value)
    if column.kind == "p":
        return fmt_p(value)
    if column.kind == "number":
        return fmt_number(value, column.digits)
    if column.kind == "signed":
        return fmt_signed(value, column.digits)
    if column.kind == "share":
        return fmt_share(value, column.digits if column.digits != 1 else 0)
    if column.kind == "probability":
        return "–" if _missing(value) else fmt_probability(float(value))  # type: ignore[arg-type]
    if column.kind == "euro":
        return fmt_euro(value, column.digits if column.digits != 1 else 0)
    if _missing(value):
        return "–"
    labeller = labels.of(column.kind)
    return labeller(value) if labeller is not None else str(value)


def table_view(
    published: Published,
    columns: Sequence[Column],
    caption: str,
    labels: Labels,
    *,
    name: str | None = None,
    keep: Callable[[pd.Series], bool] | None = None,
    note: str | None = None,
    csv_args: dict[str, str] | None = None,
) -> TableView:
    """Format a published table; ``keep`` selects rows (default: all)."""
    rows = []
    table = published.table
    for position in range(len(table)):
        record = table.iloc[position]
        if keep is not None and not keep(record):
            continue
        cells = []
        for index, column in enumerate(columns):
            value = record[column.key] if column.key in table.columns else None
            text = _cell_text(published, position, column, value, labels)
            numeric = column.kind in NUMERIC_KINDS or column.kind.startswith("interval")
            cells.append(Cell(text, numeric=numeric, header=index == 0))
        rows.append(cells)
    headers = [(c.label, c.kind in NUMERIC_KINDS or c.kind.startswith("interval")) for c in columns]
    return TableView(name or published.name, caption, headers, rows, note, dict(csv_args or {}))


def plain_table_view(
    records: Sequence[dict[str, Any]],
    columns: Sequence[Column],
    caption: str,
    labels: Labels,
    *,
    name: str | None,
    note: str | None = None,
    csv_args: dict[str, str] | None = None,
) -> TableView:
    """Format rows that are already published (derived from published tables)."""
    frame = pd.DataFrame(list(records))
    published = Published(name or "", frame, 0, 0, 0)
    return table_view(published, columns, caption, labels, name=name, note=note, csv_args=csv_args)


def suppression_note(min_count: int) -> str:
    return _(
        "<%(n)s: fewer than %(n)s persons. x: hidden so that a small group cannot be worked "
        "out. –: nothing to show.",
        n=min_count,
    )


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """A chart with the table of its numbers."""

    chart: Chart
    caption: str
    table: TableView


def enrolment_view(analysis: CohortAnalysis, labels: Labels) -> dict[str, Any]:
    enrolment = table_view(
        analysis.enrolment.table,
        [
            Column("arm", _("Arm"), "arm"),
            Column("enrolled", _("Enrolled"), "count"),
            Column("withdrawn", _("Withdrawn"), "count"),
        ],
        _("Enrolled people per arm"),
        labels,
    )
    rates = analysis.response_rates.table
    rate_table = table_view(
        rates,
        [
            Column("time_point", _("Time point"), "time_point"),
            Column("arm", _("Arm"), "arm"),
            Column("invited", _("Asked to answer"), "count"),
            Column("responded", _("Answered"), "count"),
            Column("rate", _("Response rate"), "share"),
            Column("ci_low", _("95% CI"), "interval_share", high="ci_high"),
            Column("open", _("Still open"), "count"),
        ],
        _("Response rate per time point and arm"),
        labels,
    )
    series: dict[str, list[float | None]] = {}
    described = []
    records = rates.records()
    shown_tps = analysis.shown_time_points
    for arm in analysis.arms:
        values: list[float | None] = []
        for tp in shown_tps:
            row = next((r for r in records if r["arm"] == arm and r["time_point"] == tp), None)
            rate = None if row is None or row["rate"] is None else float(row["rate"]) * 100
            values.append(rate)
            described.append(
                f"{labels.arm(arm)}, {labels.time_point(tp)}: "
                f"{'–' if rate is None else fmt_share(rate / 100)}"
            )
        series[labels.arm(arm)] = values
    chart = plotting.grouped_bar_chart(
        categories=[labels.time_point(tp) for tp in shown_tps],
        series=series,
        y_label=_("Response rate (%)"),
        y_range=(0, 100),
        alt=_("Response rate per time point and arm. %(values)s", values="; ".join(described)),
    )
    return {
        "enrolment": enrolment,
        "rates": Figure(chart, _("Response rate per time point and arm"), rate_table),
    }


def quality_view(analysis: CohortAnalysis, labels: Labels) -> dict[str, TableView]:
    quality = analysis.data_quality
    return {
        "items": table_view(
            quality.items,
            [
                Column("instrument", _("Questionnaire"), "instrument"),
                Column("time_point", _("Time point"), "time_point"),
                Column("responses", _("Answers"), "count"),
                Column("with_missing_items", _("With missing items"), "count"),
                Column("score_not_computable", _("Score not computable"), "count"),
                Column("assisted", _("Entered by staff (phone or paper)"), "count"),
            ],
            _("Missing items per questionnaire and time point"),
            labels,
        ),
        "late": table_view(
            quality.late,
            [
                Column("time_point", _("Time point"), "time_point"),
                Column("completed", _("Answered"), "count"),
                Column("after_reminder", _("After a reminder"), "count"),
                Column("share_after_reminder", _("Share after a reminder"), "share"),
                Column("after_window", _("After the window closed"), "count"),
            ],
            _("Late answers"),
            labels,
        ),
        "imports": table_view(
            quality.imports,
            [
                Column("kind", _("Import"), "import_kind"),
                Column("batches", _("Files"), "count"),
                Column("rows_total", _("Rows"), "count"),
                Column("rows_stored", _("Rows stored"), "count"),
                Column("rows_rejected", _("Rows in rejected files"), "count"),
                Column("unmatched_rows", _("Rows naming an unknown person"), "count"),
            ],
            _("Imports (all index dates)"),
            labels,
        ),
        "modes": modes_view(analysis, labels),
    }


def modes_view(analysis: CohortAnalysis, labels: Labels) -> TableView:
    """How the answers were given per arm: the data-quality table ``answer_modes``."""
    return table_view(
        analysis.data_quality.modes,
        [
            Column("arm", _("Arm"), "arm"),
            Column("mode", _("How answered"), "answer_mode"),
            Column("responses", _("Answers"), "count"),
            Column("share", _("Share of the arm's answers"), "share"),
            Column("proxy", _("By someone else (proxy)"), "count"),
            Column("share_proxy", _("Share by proxy"), "share"),
        ],
        _("Answers by mode per arm"),
        labels,
    )


def outcome_view(
    analysis: CohortAnalysis, labels: Labels, *, unpaired: bool = True
) -> dict[str, Any]:
    """The outcome tables per score. ``unpaired``: also the baseline of everyone who answered
    it, beside the paired means (the page; the A4 summary has no room for them)."""
    section = analysis.outcomes
    tables = []
    rule_scores = {f"{r.instrument}.{r.score}": r.min_improvement for r in analysis.rules}
    for score in section.scores:
        digits = 2 if "index" in score else 1
        columns = [
            Column("time_point", _("Follow-up"), "time_point"),
            Column("arm", _("Arm"), "arm"),
            Column("n", _("n (both answers)"), "count"),
            Column(
                "paired_baseline_mean",
                _("Baseline mean (both answers)"),
                "number",
                digits,
            ),
            Column(
                "paired_follow_up_mean",
                _("Follow-up mean (both answers)"),
                "number",
                digits,
            ),
            Column("change_mean", _("Mean change"), "signed", digits),
            Column(
                "change_ci_low",
                _("95% CI"),
                "interval",
                digits,
                high="change_ci_high",
            ),
        ]
        if score in rule_scores:
            columns += [
                Column("share_responders", _("Responders"), "share"),
                Column(
                    "responders_ci_low", _("95% CI"), "interval_share", high="responders_ci_high"
                ),
            ]
        columns.append(Column("share_missing", _("Missing"), "share"))
        if unpaired:
            columns += [
                Column("n_baseline", _("Answered at baseline"), "count"),
                Column(
                    "baseline_mean",
                    _("Baseline mean, everyone who answered it"),
                    "number",
                    digits,
                ),
            ]
        caption = labels.score(score)
        if score in rule_scores:
            caption = _(
                "%(score)s (responder: improvement of at least %(points)s points)",
                score=caption,
                points=fmt_number(rule_scores[score], 0),
            )

        def keep(record: pd.Series, s: str = score) -> bool:
            return record["score"] == s

        tables.append(table_view(section.summary, columns, caption, labels, keep=keep))
    primary_rows = [
        r
        for r in section.summary.records()
        if r["score"] == section.primary and r["change_mean"] is not None
    ]
    chart = None
    if primary_rows:
        names = [
            f"{labels.arm(r['arm'])} · {labels.time_point(r['time_point'])}" for r in primary_rows
        ]
        chart = plotting.forest_chart(
            rows=names,
            estimates=[r["change_mean"] for r in primary_rows],
            lows=[r["change_ci_low"] for r in primary_rows],
            highs=[r["change_ci_high"] for r in primary_rows],
            x_label=_(
                "Mean change, %(score)s (95%% CI)", score=labels.score_short(section.primary)
            )
            + "\n"
            + better_direction(analysis.direction(section.primary)),
            alt=_(
                "Mean change from baseline in %(score)s per arm and follow-up: %(values)s",
                score=labels.score(section.primary),
                values="; ".join(
                    f"{name} {fmt_signed(r['change_mean'])} "
                    f"({fmt_interval(r['change_ci_low'], r['change_ci_high'])})"
                    for name, r in zip(names, primary_rows, strict=True)
                ),
            ),
        )
    qalys = table_view(
        section.qalys,
        [
            Column("arm", _("Arm"), "arm"),
            Column("n_persons", _("Persons due"), "count"),
            Column("n", _("With every utility"), "count"),
            Column("mean", _("Mean QALYs"), "number", 3),
            Column("ci_low", _("95% CI"), "interval", 3, high="ci_high"),
        ],
        _("QALYs from baseline to the last follow-up (area under the EQ-5D-5L index curve)"),
        labels,
    )
    return {
        "tables": tables,
        "figure": Figure(chart, _("Change from baseline per arm and follow-up"), tables[0])
        if chart is not None and tables
        else None,
        "qalys": qalys if not section.qalys.empty else None,
        "qaly_difference": section.qaly_difference,
        "notes": note_texts(section.notes, labels),
    }


def cost_view(analysis: CohortAnalysis, labels: Labels) -> dict[str, Any]:
    """Costs by arm, by cost centre and by product (the pilot page's Costs section, the cost
    page and the management PDF show these same tables)."""
    costs = analysis.costs
    missing = int(analysis.costs_missing.sum())
    notes = note_texts(costs.notes, labels)
    if missing:
        notes.insert(
            0,
            _(
                "No complete cost data were received for %(n)s persons whose care cycle has "
                "ended: their costs are missing, not 0 €. They are left out of these tables "
                "(see the column Costs missing) and imputed in the adjusted cost-effectiveness "
                "analysis.",
                n=missing if missing >= analysis.min_cell else f"<{analysis.min_cell}",
            ),
        )
    return {
        "missing": missing,
        "by_arm": table_view(
            costs.by_arm,
            [
                Column("arm", _("Arm"), "arm"),
                Column("n", _("Persons with complete costs"), "count"),
                Column("n_missing", _("Costs missing"), "count"),
                Column("mean_eur", _("Mean cost"), "euro"),
                Column("ci_low_eur", _("95% CI"), "interval_euro", high="ci_high_eur"),
                Column("median_eur", _("Median"), "euro"),
            ],
            _(
                "Care-cycle cost per person (days %(start)s…%(end)s from the index date, "
                "%(year)s prices)",
                start=costs.window[0],
                end=costs.window[1],
                year=costs.target_year,
            ),
            labels,
        ),
        "by_cost_centre": table_view(
            costs.by_cost_centre,
            [
                Column("arm", _("Arm"), "arm"),
                Column("cost_centre", _("Cost centre"), "cost_centre"),
                Column("mean_eur", _("Mean cost"), "euro"),
                Column("share", _("Share"), "share"),
            ],
            _("Cost per person by cost centre"),
            labels,
        ),
        "by_product": table_view(
            costs.by_product,
            [
                Column("arm", _("Arm"), "arm"),
                Column("product", _("Product"), "product"),
                Column("mean_eur", _("Mean cost"), "euro"),
                Column("share", _("Share"), "share"),
            ],
            _("Cost per person by product"),
            labels,
        ),
        "notes": notes,
    }


def effect_csv_args(effect: str) -> dict[str, str]:
    return {"effect": effect}


def cea_view(analysis: CohortAnalysis, labels: Labels, effect: str) -> dict[str, Any]:
    ce = analysis.cost_effectiveness
    summary_rows = []
    for each in ce.effects.values():
        row = each.summary_row()
        summary_rows.append(
            {
                "effect": each.effect,
                "n": f"{fmt_count(row.get('n_reference'))} / {fmt_count(row.get('n_intervention'))}"
                if each.available
                else None,
                "delta_cost": _with_interval(
                    fmt_euro(row.get("delta_cost")),
                    fmt_interval(
                        row.get("delta_cost_low"), row.get("delta_cost_high"), kind="euro"
                    ),
                )
                if each.available
                else None,
                "delta_effect": _with_interval(
                    fmt_signed(row.get("delta_effect"), 3),
                    fmt_interval(row.get("delta_effect_low"), row.get("delta_effect_high"), 3),
                )
                if each.available
                else None,
                "icer": icer_text(each, labels)
                if each.available
                else unavailable_text(analysis, each),
                "fieller": fieller_text(each),
                "probability": row.get("ceac_reference_wtp"),
            }
        )
    summary = plain_table_view(
        summary_rows,
        [
            Column("effect", _("Effect"), "effect"),
            Column(
                "n",
                _(
                    "n (%(reference)s / %(intervention)s)",
                    reference=labels.arm(ce.reference),
                    intervention=labels.arm(ce.intervention),
                ),
                "text",
            ),
            Column("delta_cost", _("Difference in cost (95% CI)"), "text"),
            Column("delta_effect", _("Difference in effect (95% CI)"), "text"),
            Column("icer", _("ICER"), "text"),
            Column("fieller", _("Fieller 95% CI"), "text"),
            Column("probability", _("Probability cost-effective"), "probability"),
        ],
        _(
            "Unadjusted cost-effectiveness of %(intervention)s compared with %(reference)s "
            "(persons with complete data)",
            intervention=labels.arm(ce.intervention),
            reference=labels.arm(ce.reference),
        ),
        labels,
        name="cea_summary",
        note=_(
            "Unadjusted: the arms were not randomised, so these differences also reflect who "
            "was treated in each arm; the adjusted primary analysis is above. Differences are "
            "%(intervention)s minus %(reference)s, with bootstrap percentile intervals. The "
            "probability is read off the bootstrap CEAC at the reference willingness to pay "
            "(%(values)s).",
            intervention=labels.arm(ce.intervention),
            reference=labels.arm(ce.reference),
            values=", ".join(
                f"{fmt_euro(r.scale.reference)} {labels.per_unit(r.effect)}"
                for r in ce.effects.values()
            ),
        ),
    )
    result = ce.effects.get(effect) or next(iter(ce.effects.values()), None)
    view: dict[str, Any] = {
        "summary": summary,
        "effect": result,
        "notes": note_texts(ce.notes, labels),
        "effect_notes": note_texts(result.notes, labels) if result is not None else [],
    }
    if result is None:
        return view
    args = effect_csv_args(result.effect)
    view["arms"] = table_view(
        result.arms,
        [
            Column("arm", _("Arm"), "arm"),
            Column("n", _("Persons"), "count"),
            Column("mean_cost", _("Mean cost"), "euro"),
            Column("mean_effect", _("Mean effect"), "number", 3),
        ],
        _("Persons in the comparison: %(effect)s", effect=labels.effect(result.effect)),
        labels,
        name="cea_arms",
        csv_args=args,
    )
    view["inmb"] = plain_table_view(
        result.inmb_rows(),
        [
            Column("wtp", _("Willingness to pay"), "euro"),
            Column("inmb", _("INMB"), "euro"),
            Column("inmb_low", _("95% CI"), "interval_euro", high="inmb_high"),
            Column("adjusted_inmb", _("Adjusted INMB"), "euro"),
            Column("adjusted_low", _("95% CI"), "interval_euro", high="adjusted_high"),
            Column("ceac_bootstrap", _("Probability cost-effective"), "probability"),
        ],
        _(
            "Incremental net monetary benefit %(per_unit)s, unadjusted and adjusted for case mix",
            per_unit=labels.per_unit(result.effect),
        ),
        labels,
        name="inmb",
        csv_args=args,
        note=_(
            "Adjusted: net-benefit regression with %(covariates)s (robust standard errors).",
            covariates=", ".join(labels.variable(c) for c in result.regression.terms)
            if result.regression is not None and result.regression.terms
            else _("no covariates"),
        ),
    )
    view["incremental"] = table_view(
        result.incremental,
        [
            Column("strategy", _("Procedure"), "procedure"),
            Column("n", _("Persons"), "count"),
            Column("cost", _("Mean cost"), "euro"),
            Column("cost_low", _("95% CI"), "interval_euro", high="cost_high"),
            Column("effect", _("Mean effect"), "number", 3),
            Column("effect_low", _("95% CI"), "interval", 3, high="effect_high"),
            Column("status", _("Status"), "status"),
            Column("icer", _("ICER"), "euro"),
            Column("p_best", _("Probability of being the most cost-effective"), "probability"),
        ],
        _(
            "Procedure types compared, unadjusted (%(effect)s)",
            effect=labels.effect(result.effect),
        ),
        labels,
        name="incremental",
        csv_args=args,
        note=_(
            "Unadjusted: the procedure types were not randomised and their patients differ. "
            "The status and ICER compare the means; the probability of being the most "
            "cost-effective at %(wtp)s %(per_unit)s comes from %(n)s bootstrap replicates, so "
            "a type called dominated may still be the best in some replicates.",
            wtp=fmt_euro(result.scale.reference),
            per_unit=labels.per_unit(result.effect),
            n=result.strategies.n_boot if result.strategies is not None else 0,
        ),
    )
    view["strategies"] = strategy_figure(result, labels, args)
    if not result.available or result.bootstrap is None or result.two_arm is None:
        return view
    two = result.two_arm
    boot = result.bootstrap
    unit = labels.effect_unit(result.effect)
    plane_rows = [
        {
            "statistic": _("Point estimate"),
            "delta_effect": two.delta_effect,
            "delta_cost": two.delta_cost,
        },
        {
            "statistic": _("Bootstrap 2.5th percentile"),
            "delta_effect": boot.delta_effect_interval[0],
            "delta_cost": boot.delta_cost_interval[0],
        },
        {
            "statistic": _("Bootstrap 97.5th percentile"),
            "delta_effect": boot.delta_effect_interval[1],
            "delta_cost": boot.delta_cost_interval[1],
        },
    ]
    quadrants = quadrant_shares(boot.delta_cost, boot.delta_effect)
    plane_rows += [
        {"statistic": label, "delta_effect": None, "delta_cost": None, "share": share}
        for label, share in (
            (_("Replicates: more effective, less costly"), quadrants["SE"]),
            (_("Replicates: more effective, more costly"), quadrants["NE"]),
            (_("Replicates: less effective, less costly"), quadrants["SW"]),
            (_("Replicates: less effective, more costly"), quadrants["NW"]),
        )
    ]
    plane_table = plain_table_view(
        plane_rows,
        [
            Column("statistic", _("Statistic"), "text"),
            Column("delta_effect", _("Difference in effect"), "signed", 3),
            Column("delta_cost", _("Difference in cost"), "euro"),
            Column("share", _("Share of replicates"), "share"),
        ],
        _("The cost-effectiveness plane in numbers (%(n)s bootstrap replicates)", n=boot.n_boot),
        labels,
        name="ce_plane",
        csv_args=args,
    )
    reference = result.scale.reference
    view["plane"] = Figure(
        plotting.ce_plane_chart(
            delta_effect=boot.delta_effect,
            delta_cost=boot.delta_cost,
            point=(two.delta_effect, two.delta_cost),
            wtp=reference,
            labels={
                "x": _("Difference in effect (%(unit)s)", unit=unit),
                "y": _("Difference in cost (€)"),
                "replicates": _("Bootstrap replicates"),
                "point": _("Point estimate"),
                "wtp": _(
                    "%(value)s %(per_unit)s",
                    value=fmt_euro(reference),
                    per_unit=labels.per_unit(result.effect),
                ),
            },
            alt=_(
                "Cost-effectiveness plane of %(effect)s: difference in cost %(cost)s, difference "
                "in effect %(effect_difference)s; %(share)s of the replicates lie below the "
                "willingness-to-pay line.",
                effect=labels.effect(result.effect),
                cost=fmt_euro(two.delta_cost),
                effect_difference=fmt_signed(two.delta_effect, 3),
                share=fmt_share(result.ceac_at(reference)),
            ),
        ),
        _("Cost-effectiveness plane: %(effect)s", effect=labels.effect(result.effect)),
        plane_table,
    )
    ceac_rows = [
        {
            "wtp": lam,
            "ceac_bootstrap": result.ceac_at(lam),
            "ceac_parametric": result.at(two.ceac, lam),
        }
        for lam in result.scale.shown
    ]
    ceac_table = plain_table_view(
        ceac_rows,
        [
            Column("wtp", _("Willingness to pay"), "euro"),
            Column("ceac_bootstrap", _("Bootstrap"), "probability"),
            Column("ceac_parametric", _("Parametric"), "probability"),
        ],
        _(
            "Probability that %(intervention)s is cost-effective",
            intervention=labels.arm(ce.intervention),
        ),
        labels,
        name="ceac",
        csv_args=args,
    )
    view["ceac"] = Figure(
        plotting.ceac_chart(
            wtp=list(result.scale.wtp),
            curves={_("Bootstrap"): list(boot.ceac), _("Parametric"): list(two.ceac)},
            x_label=_(
                "Willingness to pay (€ %(per_unit)s)", per_unit=labels.per_unit(result.effect)
            ),
            y_label=_("Probability cost-effective (%)"),
            marker=reference,
            alt=_(
                "Cost-effectiveness acceptability curve of %(effect)s: %(values)s",
                effect=labels.effect(result.effect),
                values="; ".join(
                    f"{fmt_euro(r['wtp'])}: {fmt_share(r['ceac_bootstrap'])}" for r in ceac_rows
                ),
            ),
        ),
        _(
            "Cost-effectiveness acceptability curve: %(effect)s",
            effect=labels.effect(result.effect),
        ),
        ceac_table,
    )
    return view


def strategy_figure(result: EffectResult, labels: Labels, args: dict[str, str]) -> Figure | None:
    """The acceptability curves of the procedure types (probability of being the most
    cost-effective per λ) with the acceptability frontier, and its table."""
    uncertainty = result.strategies
    if uncertainty is None:
        return None
    names = [c for c in uncertainty.best.columns if c != "wtp"]
    curves = {labels.procedure(name): uncertainty.best[name].tolist() for name in names}
    rows = []
    for lam in result.scale.shown:
        at = int(np.argmin(np.abs(uncertainty.wtp - lam)))
        frontier = uncertainty.frontier.iloc[at]
        rows.append(
            {
                "wtp": fmt_euro(lam),
                **{name: fmt_probability(float(uncertainty.best[name].iloc[at])) for name in names},
                "frontier": f"{labels.procedure(frontier['strategy'])} "
                f"({fmt_probability(float(frontier['probability']))})",
            }
        )
    table = plain_table_view(
        rows,
        [
            Column("wtp", _("Willingness to pay"), "text"),
            *[Column(name, labels.procedure(name), "text") for name in names],
            Column("frontier", _("Highest expected net benefit (frontier)"), "text"),
        ],
        _("Probability that each procedure type is the most cost-effective (unadjusted)"),
        labels,
        name="strategy_ceac",
        csv_args=args,
    )
    chart = plotting.ceac_chart(
        wtp=uncertainty.wtp.tolist(),
        curves=curves,
        x_label=_("Willingness to pay (€ %(per_unit)s)", per_unit=labels.per_unit(result.effect)),
        y_label=_("Probability of being the most cost-effective (%)"),
        marker=result.scale.reference,
        alt=_(
            "Acceptability curves of the procedure types: %(values)s",
            values="; ".join(
                f"{row['wtp']}: " + ", ".join(f"{labels.procedure(n)} {row[n]}" for n in names)
                for row in rows
            ),
        ),
    )
    return Figure(
        chart,
        _(
            "Which procedure type is the most cost-effective: %(effect)s",
            effect=labels.effect(result.effect),
        ),
        table,
    )


def _with_interval(value: str, interval: str) -> str:
    return value if interval == "–" else f"{value} ({interval})"


def quadrant_shares(delta_cost: npt.ArrayLike, delta_effect: npt.ArrayLike) -> dict[str, float]:
    """Shares of replicates in each quadrant of the CE plane (SE = dominant)."""
    dc = np.asarray(delta_cost, dtype=float)
    de = np.asarray(delta_effect, dtype=float)
    n = max(len(dc), 1)
    return {
        "SE": float(((de >= 0) & (dc < 0)).sum() / n),
        "NE": float(((de >= 0) & (dc >= 0)).sum() / n),
        "SW": float(((de < 0) & (dc < 0)).sum() / n),
        "NW": float(((de < 0) & (dc >= 0)).sum() / n),
    }


def better_direction(direction: str) -> str:
    """Which side of a difference or change is better, for a chart's axis."""
    if direction == "higher_is_better":
        return _("← worse · better →  (a positive value is an improvement)")
    return _("← better · worse →  (a negative value is an improvement)")


def unavailable_text(analysis: CohortAnalysis, result: EffectResult) -> str:
    """Why a comparison of the arms shows no figure: the arm filter (which leaves one arm),
    too few persons in an arm, or no estimate."""
    if analysis.filters.arm is not None:
        return _("the comparison needs both arms: remove the arm filter")
    if result.hidden:
        return _("too few persons to show")
    return _("not available")


def icer_text(result: EffectResult, labels: Labels) -> str | None:
    """The ICER cell: a status word for dominance (never a negative ICER), else € per unit."""
    if not result.available or result.two_arm is None:
        return None
    two = result.two_arm
    if two.status in ("dominates", "dominated", "equal"):
        return labels.status(two.status)
    return _(
        "%(value)s %(per_unit)s (%(quadrant)s)",
        value=fmt_euro(two.icer),
        per_unit=labels.per_unit(result.effect),
        quadrant=labels.status(two.status),
    )


def fieller_text(result: EffectResult) -> str | None:
    if not result.available or result.two_arm is None:
        return None
    if result.two_arm.fieller is None:
        return _("unbounded")
    low, high = result.two_arm.fieller
    return f"{fmt_euro(low)} … {fmt_euro(high)}"


def funnel_view(analysis: CohortAnalysis, labels: Labels) -> list[tuple[str, Figure]]:
    """One funnel plot per grouping (unit, professional): each group against its own arm's
    responder share (the arms differ by design), every arm's share and limits drawn in its
    colour, the dots named."""
    funnel = analysis.funnel
    figures: list[tuple[str, Figure]] = []
    if funnel.p0 is None:
        return figures
    arm_shares = ", ".join(
        f"{labels.arm(arm)} {fmt_share(share)}" for arm, share in funnel.p0_by_arm.items()
    )
    arm_index = {arm: index for index, arm in enumerate(funnel.p0_by_arm)}
    for name, published in funnel.groups.items():
        grouping = labels.grouping(name).lower()
        table = table_view(
            published,
            [
                Column("group", labels.grouping(name), "text"),
                Column("arm", _("Arm"), "arm"),
                Column("n", _("Persons"), "count"),
                Column("responders", _("Responders"), "count"),
                Column("share", _("Share"), "share"),
                Column("expected", _("Expected from the arm"), "share"),
                Column("low_95", _("95% limits"), "interval_share", high="high_95"),
                Column("low_998", _("99.8% limits"), "interval_share", high="high_998"),
                Column("position", _("Position"), "position"),
            ],
            _(
                "Responders by %(grouping)s against the share of their arm: %(score)s at "
                "%(time_point)s (arms: %(shares)s)",
                grouping=grouping,
                score=labels.score(funnel.score),
                time_point=labels.time_point(funnel.follow_up),
                shares=arm_shares,
            ),
            labels,
            name=published.name,
        )
        shown = [r for r in published.records() if r["n"] is not None and r["share"] is not None]
        largest = max([int(r["n"]) for r in shown] + [10])
        arms = []
        for arm, share in funnel.p0_by_arm.items():
            curve = analysis.funnel_curve(largest, arm=arm)
            arms.append(
                plotting.ArmFunnel(
                    name=_(
                        "%(arm)s (%(share)s)", arm=labels.arm(arm), share=fmt_share(share)
                    ),
                    p0=share,
                    n=curve["n"].tolist(),
                    low_95=curve["low_95"].tolist(),
                    high_95=curve["high_95"].tolist(),
                    low_998=curve["low_998"].tolist(),
                    high_998=curve["high_998"].tolist(),
                )
            )
        chart = plotting.arm_funnel_chart(
            n=[r["n"] for r in shown],
            share=[r["share"] for r in shown],
            point_labels=[str(r["group"]) for r in shown],
            point_arms=[arm_index.get(str(r["arm"])) for r in shown],
            arms=arms,
            labels={
                "x": _("Persons"),
                "y": _("Responders (%); higher is better"),
                "limits_95": _("95% limits"),
                "limits_998": _("99.8% limits"),
                "mixed": _("Patients of both arms"),
            },
            alt=_(
                "Funnel plot of the responder share by %(grouping)s against the share of "
                "their arm (%(shares)s): %(values)s",
                grouping=grouping,
                shares=arm_shares,
                values="; ".join(
                    f"{r['group']} ({labels.arm(r['arm'])}) {fmt_share(r['share'])} "
                    f"(n {fmt_count(r['n'])})"
                    for r in shown
                )
                or "–",
            ),
        )
        figures.append(
            (
                name,
                Figure(
                    chart,
                    _("Funnel plot by %(grouping)s", grouping=grouping),
                    table,
                ),
            )
        )
    return figures


def fmt_p(value: object) -> str:
    """A p-value: three decimals, ``<0.001`` below that."""
    if _missing(value):
        return "–"
    number = float(value)  # type: ignore[arg-type]
    if number < 0.001:
        return "<" + fmt_number(0.001, 3)
    return fmt_number(number, 3)


def service_caveats(analysis: CohortAnalysis, labels: Labels | None = None) -> list[str]:
    """The services analysis' caveats in the current language (not randomised, E-values,
    multiplicity, missing data, remaining imbalance), with codes as words."""
    shown = labels or Labels(analysis, str(get_locale() or "fi"))

    def name(code: str) -> str:
        if code in shown.analysis.time_points:
            return shown.time_point(code)
        if code in {c.id for c in shown.analysis.spec.service_types}:
            return shown.category(code)
        if "." in code:
            return shown.score(code)
        return shown.variable(code)

    return analysis.service_caveats(name=name)


def service_view(
    analysis: CohortAnalysis, labels: Labels, score: str, by: str = "service_type"
) -> dict[str, Any]:
    """The services section of one score: the adjusted differences associated with each
    service (table and forest chart), the sensitivity analyses, balance (love plot), overlap,
    cost per point, dose and missing answers."""
    section: ServiceSection = analysis.services(score, by)  # type: ignore[arg-type]
    args = {"score": score, "by": by}
    view: dict[str, Any] = {
        "section": section,
        "by": by,
        "figure": None,
        "notes": note_texts(section.notes, labels),
    }
    if section.error is not None:
        return view
    kind = by
    lower = section.direction == "lower_is_better"
    direction_note = (
        _(
            "Negative values: a lower (better) score among clients who received the service "
            "than among comparable clients who did not."
        )
        if lower
        else _(
            "Positive values: a higher (better) score among clients who received the service "
            "than among comparable clients who did not."
        )
    )
    adjusted = (
        _("Holm-adjusted p") if section.multiplicity == "holm" else _("BH q-value (FDR)")
    )
    columns = [
        Column("category", labels.grouping(by), kind),
        Column("n_exposed", _("With the service"), "count"),
        Column("n_unexposed", _("Without"), "count"),
        Column("estimate", _("Adjusted difference"), "signed", 2),
        Column("ci_low", _("95% CI"), "interval", 2, high="ci_high"),
        Column("p_value", _("p"), "p"),
        Column("p_adjusted", adjusted, "p"),
        Column("e_value", _("E-value"), "number", 2),
        Column("e_value_ci", _("E-value of the CI"), "number", 2),
        Column("unadjusted", _("Unadjusted difference"), "signed", 2),
        Column("unadjusted_ci_low", _("95% CI"), "interval", 2, high="unadjusted_ci_high"),
        Column("reason", _("Not estimated because"), "reason"),
    ]
    primary_tp = section.primary_time_point
    caption_primary = (
        _(
            "Primary question: adjusted difference in %(score)s at %(time_point)s associated "
            "with each service (points)",
            score=labels.score(score),
            time_point=labels.time_point(primary_tp),
        )
        if section.primary
        else _(
            "Secondary: adjusted difference in %(score)s at %(time_point)s associated with each "
            "service (points)",
            score=labels.score(score),
            time_point=labels.time_point(primary_tp),
        )
    )
    family_note = _(
        "Doubly robust estimate (AIPW) adjusted for the declared confounders and the other "
        "services; the unadjusted difference only for comparison. %(direction)s p-values "
        "adjusted over %(n)s comparisons.",
        direction=direction_note,
        n=section.n_primary if section.primary else section.n_secondary,
    )
    table = table_view(
        section.differences,
        columns,
        caption_primary,
        labels,
        name="service_differences",
        csv_args={**args, "follow_up": "primary"},
        note=family_note,
        keep=lambda r: r["time_point"] == primary_tp,
    )
    others = [tp for tp in section.time_points if tp != primary_tp]
    view["other_follow_ups"] = (
        table_view(
            section.differences,
            [Column("time_point", _("Follow-up"), "time_point"), *columns],
            _(
                "Secondary: adjusted difference in %(score)s at the other follow-ups (points)",
                score=labels.score(score),
            ),
            labels,
            name="service_differences",
            csv_args={**args, "follow_up": "other"},
            note=direction_note,
            keep=lambda r: r["time_point"] != primary_tp,
        )
        if others
        else None
    )
    forest = section.forest_rows(primary_tp)
    if forest:
        names = [labels.category(r["category"], by) for r in forest]
        chart = plotting.forest_chart(
            rows=names,
            estimates=[r["estimate"] for r in forest],
            lows=[r["ci_low"] for r in forest],
            highs=[r["ci_high"] for r in forest],
            x_label=_(
                "Adjusted difference associated with the service, %(score)s (points)",
                score=labels.score_short(score),
            )
            + "\n"
            + better_direction(section.direction),
            alt=_(
                "Adjusted differences in %(score)s associated with each %(grouping)s: "
                "%(values)s",
                grouping=labels.grouping(by).lower(),
                score=labels.score(score),
                values="; ".join(
                    f"{name} {fmt_signed(r['estimate'], 2)} "
                    f"({fmt_interval(r['ci_low'], r['ci_high'], 2)})"
                    for name, r in zip(names, forest, strict=True)
                ),
            ),
        )
        view["figure"] = Figure(
            chart,
            _(
                "Adjusted differences associated with each %(grouping)s",
                grouping=labels.grouping(by).lower(),
            ),
            table,
        )
    view["differences"] = table
    view["sensitivity"] = (
        table_view(
            section.sensitivity,
            [
                Column("category", labels.grouping(by), kind),
                Column("analysis", _("Analysis"), "analysis"),
                Column("delta", _("δ (points)"), "number", 1),
                Column("n_exposed", _("With the service"), "count"),
                Column("n_unexposed", _("Without"), "count"),
                Column("estimate", _("Difference"), "signed", 2),
                Column("ci_low", _("95% CI"), "interval", 2, high="ci_high"),
            ],
            _("Sensitivity analyses of the primary question"),
            labels,
            name="service_sensitivity",
            csv_args=args,
            note=_(
                "The primary estimate rests on assumptions: the other estimators, complete "
                "cases, other ways of answering and worse outcomes among non-responders (δ "
                "points) show how much it depends on them."
            ),
        )
        if section.primary
        else None
    )
    view.update(_balance_views(section, labels, args, by))
    view["cost"] = table_view(
        section.cost,
        [
            Column("category", labels.grouping(by), kind),
            Column("n_with_cost", _("Persons with costs"), "count"),
            Column("delta_cost", _("Incremental cost in the follow-up window"), "euro"),
            Column("delta_cost_ci_low", _("95% CI"), "interval_euro", high="delta_cost_ci_high"),
            Column("improvement", _("Adjusted improvement (points)"), "signed", 2),
            Column(
                "improvement_ci_low", _("95% CI"), "interval", 2, high="improvement_ci_high"
            ),
            Column("cost_per_point", _("Incremental cost per point"), "euro"),
            Column("ci_low", _("95% CI"), "interval_euro", high="ci_high"),
            Column("status", _("Cost per point"), "cost_status"),
        ],
        _(
            "Incremental cost per point of improvement in %(score)s at %(time_point)s",
            score=labels.score(score),
            time_point=labels.time_point(primary_tp),
        ),
        labels,
        name="service_cost_per_point",
        csv_args=args,
        note=_(
            "Cost of the services from the start of the care cycle to the follow-up answer, "
            "clients with the service minus comparable clients without it (adjusted like the "
            "outcome). Not shown when the interval of the difference in the outcome includes 0."
        ),
    )
    view["dose"] = table_view(
        section.dose,
        [
            Column("category", labels.grouping(by), kind),
            Column("time_point", _("Follow-up"), "time_point"),
            Column("n_exposed", _("With the service"), "count"),
            Column("estimate", _("Difference per 10 contacts"), "signed", 2),
            Column("ci_low", _("95% CI"), "interval", 2, high="ci_high"),
        ],
        _(
            "Secondary: dose — adjusted difference in %(score)s associated with 10 more "
            "contacts of the service, among those who received it",
            score=labels.score(score),
        ),
        labels,
        name="service_dose",
        csv_args=args,
    )
    view["missing"] = table_view(
        section.missing,
        [
            Column("variable", _("Variable"), "variable"),
            Column("time_point", _("Time point"), "time_point"),
            Column("group", _("Arm"), "arm"),
            Column("share_missing", _("Share missing"), "share"),
        ],
        _("Missing answers and baseline scores before they were handled"),
        labels,
        name="service_missing",
        csv_args=args,
    )
    return view


def _balance_views(
    section: ServiceSection, labels: Labels, args: dict[str, str], by: str
) -> dict[str, Any]:
    """Balance table, love plot and warning; overlap table and chart (primary follow-up)."""
    tp = section.primary_time_point
    balance = table_view(
        section.balance,
        [
            Column("category", labels.grouping(by), by),
            Column("variable", _("Variable"), "variable"),
            Column("smd_before", _("SMD before weighting"), "signed", 2),
            Column("smd_after", _("SMD after weighting"), "signed", 2),
            Column("imbalanced_after", _("Imbalanced after (|SMD| > 0.1)"), "flag"),
        ],
        _(
            "Balance of the confounders at %(time_point)s before and after weighting",
            time_point=labels.time_point(tp),
        ),
        labels,
        name="service_balance",
        csv_args=args,
        keep=lambda r: r["time_point"] == tp,
    )
    records = [r for r in section.balance.records() if r["time_point"] == tp]
    imbalanced = [r for r in records if r["imbalanced_after"]]
    warning = None
    if imbalanced:
        warning = _(
            "Warning: after weighting, %(n)s characteristics still differ by more than 0.1 "
            "standard deviations between clients with and without a service (%(list)s). The "
            "outcome model adjusts for them, but those comparisons rest more on the model.",
            n=len(imbalanced),
            list="; ".join(
                f"{labels.category(r['category'], by)}: {labels.variable(r['variable'])} "
                f"{fmt_signed(r['smd_after'], 2)}"
                for r in imbalanced[:6]
            ),
        )
    panels = []
    for category in dict.fromkeys(r["category"] for r in records):
        rows = [r for r in records if r["category"] == category and r["smd_before"] is not None]
        if rows:
            panels.append(
                plotting.BalancePanel(
                    title=labels.category(category, by),
                    variables=tuple(labels.variable(r["variable"]) for r in rows),
                    before=tuple(r["smd_before"] for r in rows),
                    after=tuple(r["smd_after"] for r in rows),
                )
            )
    love = None
    if panels:
        chart = plotting.love_plot(
            panels=panels,
            labels={
                "before": _("before weighting"),
                "after": _("after weighting"),
                "x": _("Standardised mean difference"),
            },
            alt=_(
                "Standardised mean differences of the confounders between clients with and "
                "without each service, before and after weighting; %(n)s remain above 0.1 "
                "after weighting.",
                n=len(imbalanced),
            ),
        )
        love = Figure(chart, _("Balance before and after weighting (love plot)"), balance)
    overlap = table_view(
        section.overlap,
        [
            Column("category", labels.grouping(by), by),
            Column("group", _("Clients"), "exposure_group"),
            Column("n", _("Persons"), "count"),
            Column("p0", _("Min"), "number", 2),
            Column("p5", _("5%"), "number", 2),
            Column("p25", _("25%"), "number", 2),
            Column("p50", _("Median"), "number", 2),
            Column("p75", _("75%"), "number", 2),
            Column("p95", _("95%"), "number", 2),
            Column("p100", _("Max"), "number", 2),
        ],
        _(
            "Overlap at %(time_point)s: the propensity score (probability of receiving the "
            "service) of the clients with and without it",
            time_point=labels.time_point(tp),
        ),
        labels,
        name="service_overlap",
        csv_args=args,
        keep=lambda r: r["time_point"] == tp,
    )
    shown = {
        r["category"]
        for r in section.overlap.records()
        if r["time_point"] == tp and r["n"] is not None
    }
    bins = section.overlap_bins
    chart_panels = []
    if len(bins):
        for category, part in bins[bins["time_point"] == tp].groupby("category", sort=False):
            if category in shown:
                chart_panels.append(
                    plotting.OverlapPanel(
                        title=labels.category(category, by),
                        lows=tuple(part["low"]),
                        highs=tuple(part["high"]),
                        exposed=tuple(part["share_exposed"]),
                        unexposed=tuple(part["share_unexposed"]),
                    )
                )
    overlap_figure = None
    if chart_panels:
        chart = plotting.overlap_chart(
            panels=chart_panels,
            labels={
                "exposed": _("with the service"),
                "unexposed": _("without"),
                "x": _("Propensity score"),
                "y": _("Share of clients"),
            },
            alt=_(
                "Distribution of the propensity score among clients with (above the axis) and "
                "without (below) each service."
            ),
        )
        overlap_figure = Figure(chart, _("Overlap of the propensity scores"), overlap)
    return {
        "balance": balance,
        "love_plot": love,
        "balance_warning": warning,
        "overlap": overlap,
        "overlap_figure": overlap_figure,
    }


def mixed_view(
    analysis: CohortAnalysis, labels: Labels, score: str, by: str, result: Any
) -> TableView:
    from vaikuttavuus.services.analytics import mixed_model_table

    published = mixed_model_table(result, analysis.min_cell)
    return table_view(
        published,
        [
            Column("category", labels.grouping(by), by),
            Column("n_exposed", _("With the service"), "count"),
            Column("slope_difference", _("Difference in yearly change"), "signed", 2),
            Column("ci_low", _("95% CI"), "interval", 2, high="ci_high"),
            *[
                Column(
                    f"difference_{tp}",
                    _("Implied difference at %(time_point)s", time_point=labels.time_point(tp)),
                    "signed",
                    2,
                )
                for tp in analysis.follow_ups
            ],
        ],
        _(
            "Mixed model over all time points (exploratory): %(score)s, difference in the "
            "yearly change associated with each service",
            score=labels.score(score),
        ),
        labels,
        name="mixed_model",
        csv_args={"score": score, "by": by},
    )
