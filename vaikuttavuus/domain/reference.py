"""Cohort reference values for one patient's chart: median and interquartile range."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd


def reference_band(
    scores: pd.DataFrame, score: str, by: Sequence[str] = ("time_point",)
) -> pd.DataFrame:
    """Per group: n, median, first and third quartile of ``score`` (missing values dropped)."""
    columns = [*by, "n", "median", "q1", "q3"]
    if scores.empty or score not in scores:
        return pd.DataFrame(columns=columns)
    valid = scores.dropna(subset=[score])
    grouped = valid.groupby(list(by), sort=False)[score]
    result = pd.DataFrame(
        {
            "n": grouped.size(),
            "median": grouped.median(),
            "q1": grouped.quantile(0.25),
            "q3": grouped.quantile(0.75),
        }
    ).reset_index()
    return result[columns]
