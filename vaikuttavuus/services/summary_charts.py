"""Charts of the cohort summary (same figure on screen and in the PDF)."""

from __future__ import annotations

import math

from flask_babel import gettext as _

from vaikuttavuus.plotting import Chart, grouped_bar_chart
from vaikuttavuus.services.cohort_summary import CohortSummary


def summary_chart(summary: CohortSummary) -> Chart:
    """Median of the primary outcome per time point, one bar colour per arm."""
    series: dict[str, list[float | None]] = {}
    described = []
    for arm, arm_label in summary.arms:
        values: list[float | None] = []
        for tp, tp_label in summary.time_points:
            row = summary.outcome[
                (summary.outcome["arm"] == arm) & (summary.outcome["time_point"] == tp)
            ]
            median = None
            if not row.empty and int(row["n"].iloc[0]) >= summary.min_cell_size:
                raw = row["median"].iloc[0]
                median = None if raw is None or math.isnan(float(raw)) else float(raw)
            values.append(median)
            described.append(f"{arm_label} {tp_label}: {'–' if median is None else f'{median:g}'}")
        series[arm_label] = values
    top = summary.score_range[1] if summary.score_range else None
    return grouped_bar_chart(
        categories=[label for _code, label in summary.time_points],
        series=series,
        y_label=_("Median: %(score)s", score=summary.score_label),
        y_range=(0, top) if top is not None else None,
        alt=_(
            "Median %(score)s per time point and arm. %(values)s",
            score=summary.score_label,
            values="; ".join(described),
        ),
    )
