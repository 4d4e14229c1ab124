"""The numbers behind every cohort figure as CSV: one named table per figure or table shown.

The pilot pages link each table and chart to ``/pilot/<code>/tables/<name>.csv`` with the same
filters, and ``vaikuttavuus report table`` prints the same CSV, so a figure can be reproduced
outside the application. Every table is a published (suppressed) table of
:mod:`vaikuttavuus.services.analytics`; hidden values are empty cells and the ``suppressed``
column marks the rows that lost a value.

CSV conventions: UTF-8 with a byte-order mark (Excel), comma-separated, a header of column
identifiers; numbers are written as numbers (a dot as the decimal separator); a text cell that
a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return) gets a leading apostrophe (OWASP, CSV injection).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vaikuttavuus.domain.imports import spreadsheet_safe
from vaikuttavuus.services.analytics import SERVICE_GROUPINGS, CohortAnalysis, Published
from vaikuttavuus.services.primary_view import PRIMARY_TABLES, primary_records

__all__ = ["TABLES", "TableRequest", "cohort_table", "to_csv"]


@dataclass(frozen=True)
class TableRequest:
    """Which variant of a table: the CEA effect, the service score and grouping."""

    effect: str | None = None
    score: str | None = None
    by: str | None = None


def _frame(value: Published | pd.DataFrame | list[dict[str, object]]) -> pd.DataFrame:
    if isinstance(value, Published):
        return value.table
    if isinstance(value, pd.DataFrame):
        return value
    return pd.DataFrame(value)


def _effect(analysis: CohortAnalysis, request: TableRequest) -> object:
    if not analysis.has_procedures:
        return None
    effects = analysis.cost_effectiveness.effects
    if request.effect in effects:
        return effects[request.effect]
    return next(iter(effects.values()), None)


def _service(analysis: CohortAnalysis, request: TableRequest) -> object:
    if not analysis.has_services:
        return None
    score = request.score if request.score in analysis.service_scores else None
    score = score or (analysis.service_scores[0] if analysis.service_scores else None)
    by = request.by if request.by in SERVICE_GROUPINGS else SERVICE_GROUPINGS[0]
    if score is None:
        return None
    return analysis.services(score, by)


def _mixed(analysis: CohortAnalysis, request: TableRequest) -> pd.DataFrame | None:
    from vaikuttavuus.services.analytics import mixed_model, mixed_model_table

    if not analysis.has_services or not analysis.service_scores:
        return None
    score = request.score if request.score in analysis.service_scores else None
    by = request.by if request.by in SERVICE_GROUPINGS else SERVICE_GROUPINGS[0]
    result, error, _cached = mixed_model(
        analysis,
        score or analysis.service_scores[0],
        by,
    )
    if result is None:
        return pd.DataFrame({"error": [error]})
    return mixed_model_table(result, analysis.min_cell).table


def _funnel(name: str) -> Callable[[CohortAnalysis, TableRequest], object]:
    def read(analysis: CohortAnalysis, _request: TableRequest) -> object:
        return analysis.funnel.groups.get(name)

    return read


def _funnel_limits(analysis: CohortAnalysis, _request: TableRequest) -> object:
    """The limits around each arm's share (the plots compare units within their arm)."""
    import pandas as pd

    groups = analysis.funnel.groups.values()
    largest = [int(n) for g in groups for n in g.table["n"].dropna()]
    curves = [
        analysis.funnel_curve(max([*largest, 10]), arm=arm).assign(arm=arm)
        for arm in analysis.funnel.p0_by_arm
    ]
    if not curves:
        return analysis.funnel_curve(max([*largest, 10]))
    frame = pd.concat(curves, ignore_index=True)
    return frame[["arm", *[c for c in frame.columns if c != "arm"]]]


def _strategy_ceac(analysis: CohortAnalysis, request: TableRequest) -> object:
    result = _effect(analysis, request)
    uncertainty = getattr(result, "strategies", None)
    if uncertainty is None:
        return None
    return uncertainty.best.merge(
        uncertainty.frontier.rename(
            columns={"strategy": "frontier", "probability": "frontier_probability"}
        ),
        on="wtp",
    )


def _methods(analysis: CohortAnalysis, _request: TableRequest) -> object:
    from flask_babel import get_locale

    from vaikuttavuus.services.cohort_view import Labels
    from vaikuttavuus.services.methods import cheers_items

    locale = get_locale()
    labels = Labels(analysis, locale.language if locale is not None else "fi")
    return [item.to_dict() for item in cheers_items(analysis, labels)]


def _primary(name: str) -> Callable[[CohortAnalysis, TableRequest], object]:
    def read(analysis: CohortAnalysis, request: TableRequest) -> object:
        return primary_records(analysis, name, request.effect)

    return read


TABLES: dict[str, Callable[[CohortAnalysis, TableRequest], object]] = {
    "enrolment": lambda a, r: a.enrolment.table,
    "response_rates": lambda a, r: a.response_rates.table,
    "data_quality": lambda a, r: a.data_quality.items,
    "late_answers": lambda a, r: a.data_quality.late,
    "imports": lambda a, r: a.data_quality.imports,
    "answer_modes": lambda a, r: a.data_quality.modes,
    "outcomes": lambda a, r: a.outcomes.summary,
    "qalys": lambda a, r: a.outcomes.qalys,
    "costs": lambda a, r: a.costs.by_arm,
    "costs_by_cost_centre": lambda a, r: a.costs.by_cost_centre,
    "costs_by_product": lambda a, r: a.costs.by_product,
    "cea_summary": lambda a, r: a.cost_effectiveness.summary_rows() if a.has_procedures else None,
    "cea_arms": lambda a, r: getattr(_effect(a, r), "arms", None),
    "inmb": lambda a, r: getattr(_effect(a, r), "inmb_rows", lambda: None)(),
    "ceac": lambda a, r: getattr(_effect(a, r), "ceac_rows", lambda: None)(),
    "ce_plane": lambda a, r: getattr(_effect(a, r), "plane_rows", lambda: None)(),
    "incremental": lambda a, r: getattr(_effect(a, r), "incremental", None),
    "strategy_ceac": _strategy_ceac,
    "funnel_unit": _funnel("unit"),
    "funnel_professional": _funnel("professional"),
    "funnel_limits": _funnel_limits,
    "service_differences": lambda a, r: getattr(_service(a, r), "differences", None),
    "service_estimates": lambda a, r: getattr(_service(a, r), "estimates", None),
    "service_sensitivity": lambda a, r: getattr(_service(a, r), "sensitivity", None),
    "service_balance": lambda a, r: getattr(_service(a, r), "balance", None),
    "service_overlap": lambda a, r: getattr(_service(a, r), "overlap", None),
    "service_cost_per_point": lambda a, r: getattr(_service(a, r), "cost", None),
    "service_dose": lambda a, r: getattr(_service(a, r), "dose", None),
    "service_missing": lambda a, r: getattr(_service(a, r), "missing", None),
    "mixed_model": _mixed,
    **{name: _primary(name) for name in PRIMARY_TABLES},
    "methods": _methods,
}
"""Every downloadable table by name (the names the pages link to)."""


def cohort_table(
    analysis: CohortAnalysis, name: str, request: TableRequest | None = None
) -> pd.DataFrame | None:
    """The named table of ``analysis`` (``None`` for an unknown name or a table the pilot
    does not have)."""
    reader = TABLES.get(name)
    if reader is None:
        return None
    value = reader(analysis, request or TableRequest())
    if value is None:
        return None
    return _frame(value)  # type: ignore[arg-type]


def _cell(value: object) -> str:
    """A CSV cell: numbers as numbers, missing as empty, text neutralised."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        number = float(value)
        if not math.isfinite(number):
            return ""
        return str(int(number)) if number.is_integer() and abs(number) < 1e15 else repr(number)
    return spreadsheet_safe(str(value))


def to_csv(frame: pd.DataFrame) -> str:
    """The table as CSV text (see the module docstring for the conventions)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([spreadsheet_safe(str(column)) for column in frame.columns])
    for row in frame.itertuples(index=False, name=None):
        writer.writerow([_cell(value) for value in row])
    return "\ufeff" + buffer.getvalue()
