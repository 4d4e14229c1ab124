"""The cohort report of a pilot for its pilot leads (``/pilot/<code>/summary.pdf``): enrolment,
response rates, how the answers were given (mode and proxy per arm), the primary outcome per
arm, costs (with the persons whose costs are missing), the declared primary analysis with the
unadjusted comparison beside it and its sensitivity analyses, and the longer material the
two-page management summary leaves out — every outcome table and the QALYs, the cost structure
by cost centre, the unadjusted cost-effectiveness and the procedure types (BPH), the services by
type and by provider sector (older adults), the data quality tables — and the methods appendix
(CHEERS 2022).

Nothing is computed here: every figure is a published table of
:class:`~vaikuttavuus.services.analytics.CohortAnalysis` (the pilot page's analytics, with its
filters and the one small-cell suppression, :func:`~vaikuttavuus.services.analytics.publish`),
formatted by the pilot page's own views (:mod:`vaikuttavuus.services.cohort_view`). So each
number in the PDF is the number on the page's *Enrolment and response* and *Outcomes*
sections for the same filters, and a count below the pilot's ``min_cell_size`` is shown as
``<5`` in both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from flask_babel import force_locale

from vaikuttavuus.database import AnySession, read_snapshot
from vaikuttavuus.models import Pilot
from vaikuttavuus.services.analytics import CohortAnalysis, Filters, Published
from vaikuttavuus.services.cohort_view import (
    Labels,
    cea_view,
    cost_view,
    enrolment_view,
    modes_view,
    outcome_view,
    quality_view,
    service_caveats,
    service_view,
    suppression_note,
)
from vaikuttavuus.services.demo_data import demo_data_present
from vaikuttavuus.services.methods import methods_table
from vaikuttavuus.services.primary_view import primary_view

LANGUAGES = ("fi", "sv", "en")


@dataclass(frozen=True)
class CohortSummary:
    """The published tables of the summary: enrolled and withdrawn per arm, response rate per
    time point and arm, and the primary outcome per arm and follow-up."""

    enrolment: Published
    response_rates: Published
    outcome: Published
    primary: str


def cohort_summary(analysis: CohortAnalysis) -> CohortSummary:
    """The summary's tables, as the analytics publish them."""
    outcomes = analysis.outcomes
    return CohortSummary(
        enrolment=analysis.enrolment.table,
        response_rates=analysis.response_rates.table,
        outcome=outcomes.summary,
        primary=outcomes.primary,
    )


def summary_context(analysis: CohortAnalysis, language: str) -> dict[str, Any]:
    """Plain values for ``reports/cohort_summary.html`` (call inside ``force_locale``)."""
    labels = Labels(analysis, language)
    enrolment = enrolment_view(analysis, labels)
    outcomes = outcome_view(analysis, labels, unpaired=False)
    primary_table = outcomes["tables"][0] if outcomes["tables"] else None
    with_services = analysis.has_services and bool(analysis.service_scores)
    return {
        "primary": primary_view(analysis, labels) if analysis.primary is not None else None,
        "outcome_tables": outcomes["tables"][1:],
        "qalys": outcomes.get("qalys"),
        "quality": quality_view(analysis, labels),
        "cea": cea_view(analysis, labels, "qaly" if analysis.has_utility else "improvement")
        if analysis.has_procedures and analysis.filters.arm is None
        else None,
        "services_by_sector": service_view(
            analysis, labels, analysis.primary_service_score, "provider_sector"
        )
        if with_services
        else None,
        "costs": cost_view(analysis, labels),
        "methods": methods_table(analysis, labels),
        "pilot_name": labels.pilot,
        "filters": analysis.filters,
        "arm": labels.arm(analysis.filters.arm) if analysis.filters.arm else None,
        "time_point": labels.time_point(analysis.follow_up) if analysis.follow_up else None,
        "as_of": analysis.as_of,
        "generated_at": datetime.now(UTC),
        "enrolment": enrolment["enrolment"],
        "rates": enrolment["rates"],
        "modes": modes_view(analysis, labels),
        "outcome_figure": outcomes["figure"],
        "outcome_table": primary_table,
        "services": (
            service_view(analysis, labels, analysis.primary_service_score, "service_type")
            if analysis.has_services and analysis.service_scores
            else None
        ),
        "service_caveats": service_caveats(analysis, labels) if analysis.has_services else [],
        "note": suppression_note(analysis.min_cell),
    }


def render_cohort_summary_pdf(
    session: AnySession,
    pilot: Pilot,
    filters: Filters,
    language: str,
    *,
    as_of: date | None = None,
) -> bytes:
    """The cohort summary PDF of ``pilot`` for ``filters`` (the pilot page's) in ``language``,
    computed now from one moment of the data."""
    _check_language(language)
    with read_snapshot(session):  # every figure from one moment of the data
        analysis = CohortAnalysis(session, pilot, filters, as_of=as_of)
        context = _context(analysis, language, demo_data=demo_data_present(session))
    return _render(context, language)


def cohort_summary_pdf_of(analysis: CohortAnalysis, language: str, *, demo_data: bool) -> bytes:
    """The cohort summary PDF of an analysis already computed (e.g. restored from a snapshot
    built by a worker: then nothing is computed in the request)."""
    _check_language(language)
    return _render(_context(analysis, language, demo_data=demo_data), language)


def _check_language(language: str) -> None:
    if language not in LANGUAGES:
        raise ValueError(f"unknown language '{language}'")


def _context(analysis: CohortAnalysis, language: str, *, demo_data: bool) -> dict[str, Any]:
    with force_locale(language):
        context = summary_context(analysis, language)
    context["demo_data"] = demo_data
    return context


def _render(context: dict[str, Any], language: str) -> bytes:
    from vaikuttavuus.pdf import render_pdf

    return render_pdf("cohort_summary.html", language, **context)
