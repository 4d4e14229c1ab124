"""Client guidance (asiakasohjaus) for the older adults pilot, and the client's services on the
clinician's page.

* :func:`guidance_view`: for a client profile (baseline loneliness band, feeling insecure,
  living alone, age band; any dimension may be left open), each service's adjusted difference
  in the primary score among *similar clients* — the mean of the doubly robust pseudo-outcomes
  over them (:class:`vaikuttavuus.domain.attribution.GuidanceCells`) — with its interval, the
  number of similar clients with and without the service, the cost per contact and the mean
  cost per client-month; lighter (cheaper per month) services first; small cells hidden.
* :func:`client_profile_of`: a client's own profile from their baseline answers.
* :func:`services_chart`: the client's primary score and services on one time axis.

Texts are English msgids translated with Flask-Babel; build the views in the page's locale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
from flask_babel import gettext as _

from vaikuttavuus import plotting, svg_charts
from vaikuttavuus.domain.attribution import AGE_BANDS, PROFILE_DIMENSIONS
from vaikuttavuus.domain.specs import FlagScore
from vaikuttavuus.services.analytics import CohortAnalysis
from vaikuttavuus.services.analytics.services import client_profile
from vaikuttavuus.services.cohort_view import (
    Column,
    Figure,
    Labels,
    TableView,
    fmt_count,
    fmt_euro,
    fmt_interval,
    fmt_signed,
    plain_table_view,
    service_caveats,
)
from vaikuttavuus.services.patient_outcomes import PatientOverview

__all__ = ["GuidanceView", "client_profile_of", "guidance_view", "profile_choices"]

Profile = dict[str, str | None]


@dataclass(frozen=True)
class GuidanceView:
    """What the client-guidance page shows."""

    profile: Profile
    choices: dict[str, list[tuple[str, str]]]
    table: TableView | None
    figure: Figure | None
    n_similar: str
    caveats: list[str]
    message: str | None
    score: str
    time_point: str


def _score_range(analysis: CohortAnalysis) -> tuple[float, float, float] | None:
    """(low, high, flag threshold) of the primary score."""
    plan = analysis.spec.primary_plan()
    spec = analysis.instruments.get(plan.instrument)
    if spec is None:
        return None
    score = spec.score(plan.score)
    value_range = getattr(score, "range", None)
    flag = next((s for s in spec.scores if isinstance(s, FlagScore) and s.of == score.id), None)
    if value_range is None or flag is None:
        return None
    return float(value_range[0]), float(value_range[1]), float(flag.value)


def _number(value: float) -> str:
    return f"{value:g}"


def profile_choices(analysis: CohortAnalysis) -> dict[str, list[tuple[str, str]]]:
    """The values of each profile dimension with their labels (the form's options)."""
    bands: list[tuple[str, str]] = []
    limits = _score_range(analysis)
    if limits is not None:
        low, high, threshold = limits
        bands = [
            ("below", _("%(low)s–%(high)s points", low=_number(low), high=_number(threshold - 1))),
            ("at", _("%(low)s–%(high)s points", low=_number(threshold),
                     high=_number(threshold + 1))),
            ("above", _("%(low)s–%(high)s points", low=_number(threshold + 2),
                        high=_number(high))),
        ]  # fmt: skip
    return {
        "band": bands,
        "insecure": [("yes", _("feels insecure")), ("no", _("feels safe"))],
        "lives_alone": [("yes", _("lives alone")), ("no", _("lives with someone"))],
        "age_band": [(label, label) for label, _low, _high in AGE_BANDS],
    }


def clean_profile(analysis: CohortAnalysis, values: dict[str, object]) -> Profile:
    """Keep the known values of each dimension; anything else means "any"."""
    choices = profile_choices(analysis)
    profile: Profile = {}
    for dimension in PROFILE_DIMENSIONS:
        value = values.get(dimension)
        allowed = {code for code, _label in choices[dimension]}
        profile[dimension] = str(value) if value in allowed else None
    return profile


def client_profile_of(analysis: CohortAnalysis, enrolment_id: int) -> Profile:
    """The client's own profile from their baseline answers, living alone and age."""
    roster = analysis.roster
    row = roster[roster["enrolment_id"] == enrolment_id]
    if row.empty:
        return dict.fromkeys(PROFILE_DIMENSIONS)

    def baseline(score: str) -> np.ndarray:
        values = analysis.score_long(score)
        values = values[
            (values["time_point"] == analysis.baseline) & (values["person_id"] == enrolment_id)
        ]
        return np.array([float(values["value"].iloc[0]) if len(values) else math.nan])

    lives = row["lives_alone"].astype("Float64").astype(float).to_numpy()
    age = (row["index_date"].dt.year - row["birth_year"]).to_numpy(dtype=float)
    flag = analysis.spec.analysis.guidance_flag
    profile = client_profile(
        analysis,
        baseline(analysis.primary_service_score),
        baseline(flag) if flag else np.array([math.nan]),
        lives,
        age,
    )
    return {key: (None if values[0] is None else str(values[0])) for key, values in
            profile.items()}  # fmt: skip


def guidance_view(analysis: CohortAnalysis, labels: Labels, profile: Profile) -> GuidanceView:
    """The client-guidance page for ``profile`` (see the module docstring)."""
    plan = analysis.spec.primary_plan()
    choices = profile_choices(analysis)
    common: dict[str, Any] = {
        "profile": profile,
        "choices": choices,
        "score": labels.score(plan.outcome),
        "time_point": labels.time_point(plan.time_point),
    }
    if not analysis.has_services:
        return GuidanceView(
            table=None, figure=None, n_similar="–", caveats=[],
            message=_("This pilot has no services to compare."), **common,
        )  # fmt: skip
    found = analysis.guidance(dict(profile))
    if isinstance(found, str):
        return GuidanceView(table=None, figure=None, n_similar="–", caveats=[], message=found,
                            **common)  # fmt: skip
    min_count = analysis.min_cell
    n_similar = found["n_similar"].iloc[0] if len(found) else None
    rows = []
    for record in found.to_dict("records"):
        hidden = bool(record["hidden"])
        difference = (
            _("too few similar clients with or without it")
            if hidden or _is_missing(record["estimate"])
            else f"{fmt_signed(record['estimate'], 2)} "
            f"({fmt_interval(record['ci_low'], record['ci_high'], 2)})"
        )
        rows.append(
            {
                "category": record["category"],
                "difference": difference,
                "n_exposed": _count(record["n_exposed"], min_count),
                "n_unexposed": _count(record["n_unexposed"], min_count),
                "cost_per_contact": fmt_euro(record.get("cost_per_contact"), 2),
                "monthly_cost": fmt_euro(record.get("monthly_cost")),
            }
        )
    direction = analysis.direction(plan.outcome)
    note = (
        _("Negative values: lower (better) scores among similar clients who received the "
          "service than among similar clients who did not.")
        if direction == "lower_is_better"
        else _("Positive values: higher (better) scores among similar clients who received "
               "the service than among similar clients who did not.")
    )  # fmt: skip
    table = plain_table_view(
        rows,
        [
            Column("category", _("Service (lighter first)"), "service_type"),
            Column("difference", _("Adjusted difference for similar clients (95% CI)"), "text"),
            Column("n_exposed", _("Similar clients with the service"), "text"),
            Column("n_unexposed", _("Without"), "text"),
            Column("cost_per_contact", _("Cost per contact"), "text"),
            Column("monthly_cost", _("Cost per client-month"), "text"),
        ],
        _(
            "%(score)s at %(time_point)s: difference associated with each service among "
            "clients like this one",
            score=labels.score(plan.outcome),
            time_point=labels.time_point(plan.time_point),
        ),
        labels,
        name=None,
        note=note,
    )
    shown = [r for r in found.to_dict("records") if not r["hidden"] and not
             _is_missing(r["estimate"])]  # fmt: skip
    figure = None
    if shown:
        names = [labels.category(r["category"]) for r in shown]
        chart = plotting.forest_chart(
            rows=names,
            estimates=[r["estimate"] for r in shown],
            lows=[r["ci_low"] for r in shown],
            highs=[r["ci_high"] for r in shown],
            x_label=_(
                "Adjusted difference associated with the service, %(score)s (points)",
                score=labels.score_short(plan.outcome),
            ),
            alt=_(
                "Adjusted differences in %(score)s among similar clients: %(values)s",
                score=labels.score(plan.outcome),
                values="; ".join(
                    f"{name} {fmt_signed(r['estimate'], 2)} "
                    f"({fmt_interval(r['ci_low'], r['ci_high'], 2)})"
                    for name, r in zip(names, shown, strict=True)
                ),
            ),
        )
        figure = Figure(chart, _("Differences for similar clients"), table)
    return GuidanceView(
        table=table,
        figure=figure,
        n_similar=_count(n_similar, min_count),
        caveats=[*service_caveats(analysis)[:1], similar_clients_note()],
        message=None,
        **common,
    )


def similar_clients_note() -> str:
    return _(
        "Similar clients: the same answers to every chosen profile question. The difference "
        "is the mean of the doubly robust estimate's per-client values (DR-learner) over them; "
        "a small group gives a wide interval."
    )


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def _count(value: object, min_count: int) -> str:
    if _is_missing(value):
        return f"<{min_count}"
    return fmt_count(value)


# -- the client's services over time (clinician's page) -------------------------------------------


def services_chart(
    overview: PatientOverview, analysis_spec: Any, index_date: date, today: date
) -> plotting.Chart | None:
    """The client's primary score at each answer and their services, on one time axis in
    months since the index date (``None`` when the pilot has no services)."""
    if not overview.shows_services:
        return None
    plan = analysis_spec.primary_plan()
    series = next(
        (
            s
            for s in overview.series
            if s.instrument_code == plan.instrument and s.score_id == plan.score
        ),
        None,
    )
    answered = {
        inv.time_point: inv.completed_at.date()
        for inv in overview.invitations
        if inv.completed_at is not None
    }
    offsets = {tp.id: tp.offset_days for tp in analysis_spec.time_points}
    lines = []
    if series is not None:
        days, values = [], []
        for row in series.rows:
            if row.patient is None:
                continue
            when = answered.get(row.time_point)
            days.append(float((when - index_date).days if when else offsets[row.time_point]))
            values.append(float(row.patient))
        if days:
            lines.append(svg_charts.ScoreLine(series.score_label, tuple(days), tuple(values)))
    bars = [
        svg_charts.ServiceBar(
            f"{s.type_label} ({s.sector_label})",
            float((s.started_on - index_date).days),
            None if s.ended_on is None else float((s.ended_on - index_date).days),
        )
        for s in overview.services
    ]
    if not lines and not bars:
        return None
    horizon = float((today - index_date).days)
    alt = _(
        "%(score)s of the client over time and the services received: %(services)s",
        score=series.score_label if series is not None else "–",
        services="; ".join(
            f"{s.type_label} {s.started_on.isoformat()}–"
            f"{s.ended_on.isoformat() if s.ended_on else _('ongoing')}"
            for s in overview.services
        )
        or _("none"),
    )
    return svg_charts.services_timeline_svg(
        scores=lines,
        services=bars,
        open_end=max(horizon, max((b.start for b in bars), default=0.0) + 30),
        y_label=series.score_label if series is not None else "",
        y_range=series.value_range if series is not None else None,
        labels={"x": _("Months since the start")},
        alt=alt,
    )
