"""The patient's outcomes as charts and as a one-page PDF summary in the patient's language.

The clinician page's charts are drawn straight as SVG (:mod:`vaikuttavuus.svg_charts`, about
a millisecond each) and kept in a small in-process cache keyed by everything drawn in them
(values, texts, language); the PDF's small multiples are matplotlib figures
(:mod:`vaikuttavuus.plotting`).

The PDF (``reports/patient_summary.html`` + ``patient_summary.css``) is one A4 page whatever
the record holds: at most :data:`KEY_SCORES_MAX` scores, the latest value of each clinical
measure, and at most :data:`FREE_TEXTS_MAX` free-text answers, each shortened to
:data:`FREE_TEXT_MAX` characters. It receives plain values only. It leaves the
clinician's view (it is handed to the patient), so cohort figures computed from fewer people
than the pilot's ``min_cell_size`` are not shown in it (the domain's small-cell rule,
:func:`vaikuttavuus.domain.disclosure.suppress_small_cells`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

import pandas as pd
from babel.numbers import format_decimal as babel_format_decimal
from flask_babel import force_locale, get_locale, ngettext
from flask_babel import gettext as _

from vaikuttavuus.database import AnySession, read_snapshot
from vaikuttavuus.domain.disclosure import suppress_small_cells
from vaikuttavuus.models import Enrolment
from vaikuttavuus.pdf import render_pdf
from vaikuttavuus.plotting import Band, Chart, TrajectoryPanel, trajectory_panels
from vaikuttavuus.services.definitions import pilot_spec
from vaikuttavuus.services.demo_data import demo_data_present
from vaikuttavuus.services.patient_outcomes import (
    Alert,
    PatientOverview,
    PremResponse,
    ScoreSeries,
    patient_overview,
)
from vaikuttavuus.svg_charts import trajectory_svg

CHART_CACHE_SIZE = 256
KEY_SCORES_MAX = 4
"""The summary shows at most this many key scores (one panel each)."""
FREE_TEXT_MAX = 280
"""A free-text answer longer than this many characters is shortened in the one-page summary
(at a word boundary, ending with "…"); the clinician's page shows it whole."""
FREE_TEXTS_MAX = 4
"""The summary shows at most this many free-text answers (the latest first)."""
SUMMARY_LANGUAGES = ("fi", "sv", "en")


# -- charts -------------------------------------------------------------------------------------


def chart_labels() -> dict[str, str]:
    """Legend texts in the current language."""
    return {
        "patient": _("Patient"),
        "median": _("Cohort median (same arm)"),
        "iqr": _("Cohort interquartile range"),
        "important_change": _("Clinically important improvement"),
    }


@lru_cache(maxsize=CHART_CACHE_SIZE)
def _cached_trajectory(
    time_labels: tuple[str, ...],
    patient: tuple[float | None, ...],
    median: tuple[float | None, ...],
    q1: tuple[float | None, ...],
    q3: tuple[float | None, ...],
    y_label: str,
    y_range: tuple[float, float] | None,
    bands: tuple[Band, ...],
    important_change_line: float | None,
    labels: tuple[tuple[str, str], ...],
    alt: str,
) -> Chart:
    return trajectory_svg(
        time_labels=time_labels,
        patient=patient,
        median=median,
        q1=q1,
        q3=q3,
        y_label=y_label,
        y_range=y_range,
        bands=bands,
        important_change_line=important_change_line,
        labels=dict(labels),
        alt=alt,
    )


def chart_bands(series: ScoreSeries) -> tuple[Band, ...]:
    """The series' severity bands for a chart, shaded by the score's direction (the best band
    lightest)."""
    return tuple(
        Band(low, high, label, shade)
        for (low, high, label), shade in zip(series.bands, series.band_shades, strict=True)
    )


def series_chart(series: ScoreSeries) -> Chart:
    """One score of the patient over the time points against the cohort (current language)."""
    values = ", ".join(
        f"{row.label}: {'–' if row.patient is None else f'{row.patient:g}'}" for row in series.rows
    )
    alt = _(
        "%(score)s of the patient over time compared with the cohort median. %(values)s",
        score=series.score_label,
        values=values,
    )
    return _cached_trajectory(
        tuple(row.label for row in series.rows),
        tuple(row.patient for row in series.rows),
        tuple(row.median for row in series.rows),
        tuple(row.q1 for row in series.rows),
        tuple(row.q3 for row in series.rows),
        series.score_label,
        series.value_range,
        chart_bands(series),
        series.important_change_line,
        tuple(sorted(chart_labels().items())),
        alt,
    )


# -- formatting shared by the page and the PDF ----------------------------------------------------


@lru_cache(maxsize=4096)
def _decimal(value: float, pattern: str, locale: Any) -> str:
    return babel_format_decimal(value, format=pattern, locale=locale)


def format_decimal(value: float, format: str) -> str:
    """flask_babel's ``format_decimal`` (current locale), remembered: a patient page formats
    some eighty numbers, most of them cohort figures that repeat from patient to patient."""
    return _decimal(value, format, get_locale())


def measure_text(value: float | str | None) -> str:
    """A measured value in the current locale (yes/no as words)."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return format_decimal(value, format="#,##0.###")
    return {"yes": _("yes"), "no": _("no")}.get(value, value)


def score_text(value: float | None, decimals: int = 2) -> str:
    """A patient's score: as many decimals as it has, at most ``decimals``."""
    if value is None:
        return "–"
    return format_decimal(value, format="#,##0." + "#" * decimals)


def cohort_text(value: float | None, decimals: int = 2) -> str:
    """A cohort median or quartile: at least one decimal, at most ``decimals``."""
    if value is None:
        return "–"
    return format_decimal(value, format="#,##0.0" + "#" * max(decimals - 1, 0))


# -- the one-page summary -----------------------------------------------------------------------


@dataclass(frozen=True)
class SummaryCell:
    patient: str
    band: str | None
    median: str
    iqr: str


@dataclass(frozen=True)
class SummaryScore:
    title: str
    cells: tuple[SummaryCell, ...]
    important_change: str | None


def key_series(
    overview: PatientOverview, outcome_scores: Sequence[tuple[str, str]]
) -> list[ScoreSeries]:
    """The scores of the summary: the pilot's outcome scores first, then the first chartable
    score of each other instrument, those with a value of the patient, at most
    :data:`KEY_SCORES_MAX`."""
    chosen: list[ScoreSeries] = []
    by_key = {(s.instrument_code, s.score_id): s for s in overview.series}
    for key in outcome_scores:
        series = by_key.get(key)
        if series is not None and series.has_patient_values and series not in chosen:
            chosen.append(series)
    for outcome in overview.instruments:
        if any(s.instrument_code == outcome.code for s in chosen):
            continue
        first = next((s for s in outcome.series if s.has_patient_values), None)
        if first is not None:
            chosen.append(first)
    return chosen[:KEY_SCORES_MAX]


def suppressed_reference(series: ScoreSeries, min_cell_size: int) -> list[dict[str, Any]]:
    """The cohort median and quartiles per time point with small cells hidden (``None``)."""
    table = pd.DataFrame(
        {
            "time_point": [row.time_point for row in series.rows],
            "n": [row.n for row in series.rows],
            "median": [row.median for row in series.rows],
            "q1": [row.q1 for row in series.rows],
            "q3": [row.q3 for row in series.rows],
        }
    ).astype({"median": "float64", "q1": "float64", "q3": "float64"})
    result = suppress_small_cells(
        table,
        counts="n",
        derived={"n": ["median", "q1", "q3"]},
        min_count=min_cell_size,
        margins=False,
    ).table
    rows = []
    for record in result.to_dict("records"):
        rows.append(
            {
                key: (None if pd.isna(record[key]) else float(record[key]))
                for key in ("median", "q1", "q3")
            }
        )
    return rows


def points_text(value: float | None, decimals: int = 2) -> str:
    """A number of points with its unit, *1 piste* / *3 pistettä* (Finnish takes the
    partitive after any number but one, decimals included)."""
    if value is None:
        return "–"
    one = abs(value - 1) < 1e-9
    return ngettext(
        "%(points)s point", "%(points)s points", 1 if one else 2, points=score_text(value, decimals)
    )


def _alert_text(alert: Alert) -> str:
    if alert.kind == "worse":
        return _(
            "%(instrument)s, %(score)s: worse than at the baseline by at least the clinically "
            "important change, %(threshold)s (%(baseline)s → %(value)s, %(time_point)s).",
            instrument=alert.instrument_title,
            score=alert.score_label,
            threshold=points_text(alert.threshold),
            baseline=score_text(alert.baseline),
            value=score_text(alert.value),
            time_point=alert.time_point_label,
        )
    if alert.kind == "declined":
        return _(
            "%(instrument)s, %(score)s: worse than at %(previous_time_point)s by at least the "
            "clinically important change, %(threshold)s (%(previous)s → %(value)s, "
            "%(time_point)s).",
            instrument=alert.instrument_title,
            score=alert.score_label,
            threshold=points_text(alert.threshold),
            previous=score_text(alert.previous),
            value=score_text(alert.value),
            previous_time_point=alert.previous_label,
            time_point=alert.time_point_label,
        )
    if alert.kind == "flag":
        return _(
            "%(instrument)s: %(flag)s (%(time_point)s).",
            instrument=alert.instrument_title,
            flag=alert.score_label,
            time_point=alert.time_point_label,
        )
    if alert.kind == "missed":
        return _(
            "%(time_point)s: the questionnaire was not answered.",
            time_point=alert.time_point_label,
        )
    if not alert.days_left:
        return _(
            "%(time_point)s: the questionnaire is open and closes today.",
            time_point=alert.time_point_label,
        )
    return ngettext(
        "%(time_point)s: the questionnaire is open and closes in %(num)d day.",
        "%(time_point)s: the questionnaire is open and closes in %(num)d days.",
        alert.days_left,
        time_point=alert.time_point_label,
    )


def shorten(text: str, limit: int = FREE_TEXT_MAX) -> str:
    """``text`` on one line, cut at a word boundary to at most ``limit`` characters + "…"."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,.;:–-") + "…"


def free_texts(prems: Sequence[PremResponse]) -> list[dict[str, str]]:
    """The patient's own words in the experience questionnaires (free-text answers), latest
    time point first, at most :data:`FREE_TEXTS_MAX`, each shortened to one paragraph."""
    found = []
    for response in reversed(prems):
        for answer in response.answers:
            if answer.free_text and answer.answer.strip():
                found.append(
                    {
                        "question": answer.question,
                        "answer": shorten(answer.answer),
                        "time_point": response.time_point_label,
                    }
                )
    return found[:FREE_TEXTS_MAX]


def alert_texts(alerts: Sequence[Alert]) -> list[str]:
    """The alerts worded in the current language (for the PDF and the CLI)."""
    return [_alert_text(alert) for alert in alerts]


def summary_context(
    session: AnySession, enrolment: Enrolment, language: str, today: date
) -> dict[str, Any]:
    """Plain values for ``reports/patient_summary.html`` (call inside ``force_locale``)."""
    pilot = enrolment.pilot
    spec = pilot_spec(pilot)
    overview = patient_overview(session, enrolment, language, today)
    outcome_keys = [
        (r.instrument, r.score) for r in (spec.primary_outcome, *spec.secondary_outcomes)
    ]
    chosen = key_series(overview, outcome_keys)
    time_points = overview.time_points
    scores = []
    panels = []
    for series in chosen:
        reference = suppressed_reference(series, overview.min_cell_size)
        by_tp = {
            row.time_point: (row, ref) for row, ref in zip(series.rows, reference, strict=True)
        }
        cells = []
        for code, _label in time_points:
            row, ref = by_tp.get(code, (None, None))
            if row is None or ref is None:
                cells.append(SummaryCell("", None, "", ""))
                continue
            places = series.decimals
            iqr = (
                f"{cohort_text(ref['q1'], places)}–{cohort_text(ref['q3'], places)}"
                if ref["q1"] is not None and ref["q3"] is not None
                else "–"
            )
            cells.append(
                SummaryCell(
                    patient=score_text(row.patient, places),
                    band=series.band_label(row.patient),
                    median=cohort_text(ref["median"], places),
                    iqr=iqr,
                )
            )
        line = series.important_change_line
        scores.append(
            SummaryScore(
                title=f"{series.instrument_title}: {series.score_label}",
                cells=tuple(cells),
                important_change=None if line is None else score_text(line, series.decimals),
            )
        )
        aligned = [by_tp.get(code, (None, None)) for code, _label in time_points]
        panels.append(
            TrajectoryPanel(
                title=series.score_label,
                patient=tuple(row.patient if row else None for row, _ref in aligned),
                median=tuple(ref["median"] if ref else None for _row, ref in aligned),
                q1=tuple(ref["q1"] if ref else None for _row, ref in aligned),
                q3=tuple(ref["q3"] if ref else None for _row, ref in aligned),
                y_range=series.value_range,
                bands=chart_bands(series),
                important_change_line=line,
            )
        )
    chart = None
    if panels:
        chart = trajectory_panels(
            time_labels=[label for _code, label in time_points],
            panels=panels,
            labels=chart_labels(),
            alt=_(
                "The key scores of the patient over time compared with the cohort median: "
                "%(values)s",
                values="; ".join(
                    f"{panel.title}: "
                    + ", ".join(
                        f"{label} {measure_text(value)} ({measure_text(median)})"
                        for (_code, label), value, median in zip(
                            time_points, panel.patient, panel.median, strict=True
                        )
                    )
                    for panel in panels
                ),
            ),
        )
    person = enrolment.person
    return {
        "pilot_name": pilot.label(language),
        "person": {
            "name": person.display_name,
            "pseudonym": person.pseudonym,
            "birth_year": person.birth_year,
        },
        "arm": enrolment.arm.label(language),
        "index_date": enrolment.index_date,
        "generated_on": today,
        "time_points": [label for _code, label in time_points],
        "scores": scores,
        "chart": None if chart is None else {"data_uri": chart.data_uri, "alt": chart.alt},
        "alerts": alert_texts(overview.alerts),
        "measures": [
            {
                "label": m.label,
                "unit": m.unit or "",
                "value": measure_text(m.latest.value),
                "measured_on": m.latest.measured_on,
            }
            for m in overview.measures
        ],
        "procedures": [
            {"performed_on": p.performed_on, "label": p.type_label, "setting": p.setting_label}
            for p in overview.procedures
        ],
        "free_texts": free_texts(overview.prems),
        "min_cell_size": overview.min_cell_size,
        "demo_data": demo_data_present(session),
    }


def summary_language(enrolment: Enrolment, requested: str | None = None) -> str:
    """The requested language if supported, else the patient's, else Finnish."""
    if requested in SUMMARY_LANGUAGES:
        return str(requested)
    preferred = enrolment.person.preferred_language
    return preferred if preferred in SUMMARY_LANGUAGES else "fi"


def summary_pdf(session: AnySession, enrolment: Enrolment, language: str, today: date) -> bytes:
    """The one-page summary as PDF bytes, in ``language``."""
    with read_snapshot(session), force_locale(language):  # one moment of the data
        context = summary_context(session, enrolment, language, today)
    return render_pdf("patient_summary.html", language, **context)
