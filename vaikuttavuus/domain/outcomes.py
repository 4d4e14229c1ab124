"""Outcomes per person and per cohort: change scores, responders, utilities and QALYs.

Pure functions over pandas frames (stdlib, numpy, pandas, scipy, statsmodels) returning frozen
result objects with a JSON-ready ``to_dict()``.

Input: a *long* frame of scores, one row per person × time point × score, with the columns
``person_id``, ``arm``, ``time_point``, ``score`` and ``value`` (``NaN`` = not computable). A
person belongs to one arm. The caller names the baseline time point and the order of the
time points (``PilotSpec.time_points``), and may pass the cohort roster (``person_id``, ``arm``)
so that persons who never answered count as missing.

Conventions
-----------
* **Change** = follow-up − baseline (in score points). **Improvement** is the change in the good
  direction: −change for ``lower_is_better`` scores (IPSS, UCLA-3), +change for
  ``higher_is_better`` ones (EQ-5D index, feeling safe).
* **Responder** (:class:`~vaikuttavuus.domain.specs.ResponderRule`): improvement ≥ the point
  threshold — ``min_improvement``, or ``by_baseline_band[band]`` when the person's baseline
  falls in a band listed there — **or**, when ``min_relative`` is set, improvement / |baseline|
  ≥ ``min_relative`` (e.g. IPSS "≥ 3 points or ≥ 25 %", Oelke et al. 2014; Blanker et al. 2019
  for band-specific thresholds). Comparisons allow 1e-9 for floating-point noise. A person
  without a baseline or follow-up value is not classified (``<NA>``).
* **QALYs**: area under the utility curve with linear interpolation between time points
  (trapezoid rule), time in years = days / 365.25, from the first to the last time point
  (Matthews et al. 1990; Manca, Hawkins & Sculpher 2005). Only persons with a utility at every
  time point get a QALY (complete case). With ``discount_rate`` r > 0 the utility in year k
  after the first time point (k = 0, 1, …) is weighted by (1 + r)^(−k), integrated exactly on
  the piecewise-linear curve, so horizons ≤ 12 months are never discounted.
* **Baseline-adjusted QALY difference**: OLS of QALY on arm + baseline utility (Manca et al.
  2005), with a heteroskedasticity-robust covariance (HC3 by default).
* **Cohort summaries**: means with t intervals, medians with binomial order-statistic
  intervals, shares of responders and response rates with Wilson intervals
  (:mod:`vaikuttavuus.domain.stats`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from vaikuttavuus.domain.specs import BandScore, ResponderRule
from vaikuttavuus.domain.stats import (
    mean_ci,
    median_ci,
    normal_quantile,
    plain,
    wilson_interval,
)

__all__ = [
    "ALL_ARMS",
    "SUMMARY_DERIVED",
    "ChangeTable",
    "Direction",
    "OutcomeError",
    "OutcomeSummary",
    "QalyDifference",
    "QalyTable",
    "ResponderTable",
    "ResponseRates",
    "adjusted_qaly_difference",
    "auc_qalys",
    "change_scores",
    "classify_responders",
    "improvement_of",
    "qaly_auc",
    "responder_flags",
    "response_rates",
    "share_missing",
    "summarise_outcomes",
]

Direction = Literal["lower_is_better", "higher_is_better"]
ALL_ARMS = "all"
"""The arm label of the whole-cohort rows that summaries add."""

LONG_COLUMNS = ("person_id", "arm", "time_point", "score", "value")
_TOLERANCE = 1e-9
DAYS_PER_YEAR = 365.25


SUMMARY_DERIVED: dict[str, tuple[str, ...]] = {
    "n_baseline": ("baseline_mean", "baseline_ci_low", "baseline_ci_high"),
    "n_follow_up": ("follow_up_mean", "follow_up_ci_low", "follow_up_ci_high"),
    "n": (
        "share_missing",
        "paired_baseline_mean",
        "paired_follow_up_mean",
        "change_mean",
        "change_sd",
        "change_ci_low",
        "change_ci_high",
        "change_median",
        "change_median_ci_low",
        "change_median_ci_high",
    ),
    "n_classified": ("share_responders", "responders_ci_low", "responders_ci_high"),
    "n_responders": ("share_responders", "responders_ci_low", "responders_ci_high"),
}
"""Which columns of :class:`OutcomeSummary` derive from which count, for
:func:`vaikuttavuus.domain.disclosure.suppress_small_cells` (``groups=["arm"],
strata=["score", "time_point"], total_label=ALL_ARMS``)."""


class OutcomeError(ValueError):
    """The outcome data cannot be analysed as asked; the message names the problem."""


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return plain(frame.reset_index(drop=True))


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise OutcomeError(f"{what} lacks column(s) {', '.join(missing)}")


def _person_arms(responses: pd.DataFrame, persons: pd.DataFrame | None) -> pd.Series:
    """One arm per person, from the roster when given, else from the responses."""
    source = persons if persons is not None else responses
    _require(source, ["person_id", "arm"], "the roster" if persons is not None else "the data")
    arms = source[["person_id", "arm"]].drop_duplicates()
    repeated = arms["person_id"][arms["person_id"].duplicated()]
    if len(repeated):
        raise OutcomeError(f"person {repeated.iloc[0]!r} belongs to more than one arm")
    series = arms.set_index("person_id")["arm"]
    if persons is not None:
        unknown = set(responses["person_id"]) - set(series.index)
        if unknown:
            raise OutcomeError(f"{len(unknown)} person(s) with scores are not in the roster")
    return series


# --------------------------------------------------------------------------------------------
# Change scores
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChangeTable:
    """Per person × score × follow-up time point: ``baseline``, ``follow_up``, ``change``.

    ``table`` columns: ``person_id``, ``arm``, ``score``, ``time_point`` (the follow-up),
    ``baseline``, ``follow_up``, ``change`` (follow-up − baseline; ``NaN`` when either is
    missing). Every person of the roster appears for every score and follow-up.
    """

    table: pd.DataFrame
    baseline: str
    follow_ups: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            "follow_ups": list(self.follow_ups),
            "rows": _records(self.table),
        }


def change_scores(
    responses: pd.DataFrame,
    *,
    baseline: str,
    time_points: Sequence[str],
    persons: pd.DataFrame | None = None,
    scores: Sequence[str] | None = None,
) -> ChangeTable:
    """Baseline, follow-up and change per person, score and follow-up time point.

    ``responses``: long frame (``person_id``, ``arm``, ``time_point``, ``score``, ``value``) with
    at most one row per person × time point × score. ``time_points``: every time point in
    schedule order (including ``baseline``); rows at other time points are an error.
    ``persons``: optional roster (``person_id``, ``arm``). ``scores``: which scores (default:
    all in the data, in order of appearance).
    """
    _require(responses, LONG_COLUMNS, "the score data")
    order = list(time_points)
    if baseline not in order:
        raise OutcomeError(f"baseline '{baseline}' is not one of the time points")
    unknown = sorted(set(responses["time_point"].astype(str)) - set(order))
    if unknown:
        raise OutcomeError(f"unknown time point(s) {', '.join(unknown)}")
    keys = ["person_id", "time_point", "score"]
    duplicated = responses.duplicated(keys)
    if duplicated.any():
        row = responses.loc[duplicated, keys].iloc[0]
        raise OutcomeError(
            f"person {row['person_id']!r} has two values of '{row['score']}' at "
            f"'{row['time_point']}'"
        )
    arms = _person_arms(responses, persons)
    score_ids = list(scores) if scores is not None else list(dict.fromkeys(responses["score"]))
    follow_ups = tuple(tp for tp in order if tp != baseline)
    values = pd.to_numeric(responses["value"], errors="coerce")
    wide = (
        responses.assign(value=values, time_point=responses["time_point"].astype(str))
        .pivot_table(
            index=["person_id", "score"],
            columns="time_point",
            values="value",
            aggfunc="first",
            dropna=False,
        )
        .reindex(columns=order)
    )
    full_index = pd.MultiIndex.from_product([arms.index, score_ids], names=["person_id", "score"])
    wide = wide.reindex(full_index)
    parts = []
    for tp in follow_ups:
        part = pd.DataFrame(
            {
                "person_id": full_index.get_level_values("person_id"),
                "arm": arms.reindex(full_index.get_level_values("person_id")).to_numpy(),
                "score": full_index.get_level_values("score"),
                "time_point": tp,
                "baseline": wide[baseline].to_numpy(dtype=float),
                "follow_up": wide[tp].to_numpy(dtype=float),
            }
        )
        part["change"] = part["follow_up"] - part["baseline"]
        parts.append(part)
    columns = ["person_id", "arm", "score", "time_point", "baseline", "follow_up", "change"]
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    return ChangeTable(table[columns], baseline, follow_ups)


# --------------------------------------------------------------------------------------------
# Responders
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResponderTable:
    """The change table of one score with ``improvement``, ``band``, ``threshold``,
    ``relative`` and ``responder`` (nullable boolean) columns added."""

    table: pd.DataFrame
    rule: ResponderRule
    direction: Direction

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule.model_dump(),
            "direction": self.direction,
            "rows": _records(self.table),
        }


def _band_ranges(
    bands: Mapping[str, tuple[float, float]] | BandScore | None,
) -> dict[str, tuple[float, float]]:
    """Band label → ``(low, high)`` as written; :func:`_band_masks` reads them half-open."""
    if bands is None:
        return {}
    if isinstance(bands, BandScore):
        return {band.label: (band.min, band.max) for band in bands.bands}
    return {str(label): (float(low), float(high)) for label, (low, high) in bands.items()}


def _band_masks(
    values: np.ndarray, ranges: Mapping[str, tuple[float, float]]
) -> dict[str, np.ndarray]:
    """Per band, the values inside it: half-open intervals (a band runs up to the next band's
    low, not included; the last one up to its high, included), so a prorated or imputed value
    between two integer limits still gets a band (:class:`~vaikuttavuus.domain.specs.Band`)."""
    ordered = sorted(ranges.items(), key=lambda item: item[1][0])
    masks = {}
    for position, (label, (low, high)) in enumerate(ordered):
        if position + 1 < len(ordered):
            upper = ordered[position + 1][1][0]
            masks[label] = (values >= low) & (values < upper)
        else:
            masks[label] = (values >= low) & (values <= high)
    return masks


def _responder_arrays(
    baseline: np.ndarray,
    improvement: np.ndarray,
    rule: ResponderRule,
    ranges: Mapping[str, tuple[float, float]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Band, threshold, relative improvement and responder flag per person (arrays)."""
    band = np.full(len(baseline), None, dtype=object)
    threshold = np.full(len(baseline), float(rule.min_improvement))
    for label, inside in _band_masks(baseline, ranges).items():
        band[inside] = label
        if label in rule.by_baseline_band:
            threshold[inside] = float(rule.by_baseline_band[label])
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        relative = np.where(baseline != 0, improvement / np.abs(baseline), np.nan)
    responder = improvement >= threshold - _TOLERANCE
    if rule.min_relative is not None:
        responder |= np.nan_to_num(relative, nan=-np.inf) >= rule.min_relative - _TOLERANCE
    return band, threshold, relative, responder


def improvement_of(
    baseline: npt.ArrayLike, follow_up: npt.ArrayLike, direction: Direction
) -> np.ndarray:
    """Improvement per person: the change in the good direction (see the module docstring)."""
    change = np.asarray(follow_up, dtype=float) - np.asarray(baseline, dtype=float)
    return -change if direction == "lower_is_better" else change


def responder_flags(
    baseline: npt.ArrayLike,
    improvement: npt.ArrayLike,
    rule: ResponderRule,
    *,
    bands: Mapping[str, tuple[float, float]] | BandScore | None = None,
) -> np.ndarray:
    """1.0 for a responder by ``rule``, 0.0 for a non-responder, NaN when the improvement is
    unknown: the array form of :func:`classify_responders` (e.g. for imputed data sets)."""
    base = np.asarray(baseline, dtype=float)
    gain = np.asarray(improvement, dtype=float)
    ranges = _band_ranges(bands)
    missing_bands = sorted(set(rule.by_baseline_band) - set(ranges))
    if missing_bands:
        raise OutcomeError(f"the band range(s) of {', '.join(missing_bands)} are not given")
    responder = _responder_arrays(base, gain, rule, ranges)[3]
    return np.where(np.isnan(gain), np.nan, responder.astype(float))


def classify_responders(
    changes: ChangeTable | pd.DataFrame,
    rule: ResponderRule,
    *,
    direction: Direction = "lower_is_better",
    bands: Mapping[str, tuple[float, float]] | BandScore | None = None,
    score: str | None = None,
) -> ResponderTable:
    """Mark responders by ``rule`` (see the module docstring).

    ``score`` selects the rows of the change table (default ``rule.score``). ``bands`` maps the
    band labels of ``rule.by_baseline_band`` to inclusive [min, max] ranges of the baseline
    score (or pass the instrument's :class:`BandScore`); it is required when the rule has band
    overrides.
    """
    if direction not in ("lower_is_better", "higher_is_better"):
        raise OutcomeError(f"unknown direction '{direction}'")
    table = changes.table if isinstance(changes, ChangeTable) else changes
    _require(table, ["score", "baseline", "change"], "the change table")
    wanted = score or rule.score
    frame = table[table["score"] == wanted].copy()
    if frame.empty:
        raise OutcomeError(f"the change table has no rows for score '{wanted}'")
    ranges = _band_ranges(bands)
    missing_bands = sorted(set(rule.by_baseline_band) - set(ranges))
    if missing_bands:
        raise OutcomeError(f"the band range(s) of {', '.join(missing_bands)} are not given")
    sign = -1.0 if direction == "lower_is_better" else 1.0
    baseline = frame["baseline"].to_numpy(dtype=float)
    improvement = sign * frame["change"].to_numpy(dtype=float)
    band, threshold, relative, responder = _responder_arrays(baseline, improvement, rule, ranges)
    known = ~np.isnan(improvement)
    frame["improvement"] = improvement
    frame["band"] = band
    frame["threshold"] = threshold
    frame["relative"] = relative
    frame["responder"] = pd.array(np.where(known, responder, False), dtype="boolean")
    frame.loc[~known, "responder"] = pd.NA
    return ResponderTable(frame.reset_index(drop=True), rule, direction)


# --------------------------------------------------------------------------------------------
# QALYs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QalyTable:
    """Per person: ``arm``, ``baseline_utility`` (at the first time point), ``qaly`` and
    ``complete``; ``horizon_years`` is the span from the first to the last time point."""

    table: pd.DataFrame
    time_points: tuple[str, ...]
    horizon_years: float
    discount_rate: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "time_points": list(self.time_points),
            "horizon_years": self.horizon_years,
            "discount_rate": self.discount_rate,
            "rows": _records(self.table),
        }


def _discounted_segment(t0: float, t1: float, u0: float, u1: float, rate: float) -> float:
    """∫ u(t)·(1 + r)^(−⌊t⌋) dt over [t0, t1] for linear u, split at whole years."""
    if rate == 0 or t1 <= 1:
        return (t1 - t0) * (u0 + u1) / 2
    total = 0.0
    slope = (u1 - u0) / (t1 - t0)
    start = t0
    while start < t1:
        year = math.floor(start + 1e-12)
        stop = min(t1, year + 1.0)
        ua = u0 + slope * (start - t0)
        ub = u0 + slope * (stop - t0)
        total += (stop - start) * (ua + ub) / 2 * (1 + rate) ** (-year)
        start = stop
    return total


def qaly_auc(
    utilities: npt.ArrayLike,
    days: npt.ArrayLike,
    *,
    discount_rate: float = 0.0,
    days_per_year: float = DAYS_PER_YEAR,
) -> np.ndarray:
    """QALYs per person (rows of ``utilities``, one column per time point at ``days``) by the
    area under the curve (see the module docstring); NaN when a utility is missing. The array
    form of :func:`auc_qalys` (e.g. for imputed data sets)."""
    u = np.atleast_2d(np.asarray(utilities, dtype=float))
    offsets = np.asarray(days, dtype=float)
    years = (offsets - offsets[0]) / days_per_year
    if discount_rate == 0 or years[-1] <= 1:
        qaly = ((u[:, :-1] + u[:, 1:]) / 2 * np.diff(years)).sum(axis=1)
    else:
        qaly = np.array(
            [
                sum(
                    _discounted_segment(years[j], years[j + 1], row[j], row[j + 1], discount_rate)
                    for j in range(len(years) - 1)
                )
                for row in u
            ]
        )
    return np.where(np.isnan(u).any(axis=1), np.nan, qaly)


def auc_qalys(
    utilities: pd.DataFrame,
    *,
    time_days: Mapping[str, float],
    persons: pd.DataFrame | None = None,
    discount_rate: float = 0.0,
    days_per_year: float = DAYS_PER_YEAR,
) -> QalyTable:
    """QALYs per person by the area under the utility curve (see the module docstring).

    ``utilities``: ``person_id``, ``arm``, ``time_point``, ``value`` (one utility per person and
    time point; a ``score`` column, if present, must hold a single score). ``time_days``: the
    time points in order with their offset in days (e.g. ``{"baseline": 0, "m3": 91,
    "m12": 365}``). ``persons``: optional roster.
    """
    _require(utilities, ["person_id", "arm", "time_point", "value"], "the utility data")
    if "score" in utilities.columns and utilities["score"].nunique() > 1:
        raise OutcomeError("the utility data holds more than one score; select one first")
    if len(time_days) < 2:
        raise OutcomeError("QALYs need at least two time points")
    if discount_rate < 0:
        raise OutcomeError("the discount rate cannot be negative")
    order = list(time_days)
    days = np.asarray([float(time_days[tp]) for tp in order])
    if np.any(np.diff(days) <= 0):
        raise OutcomeError("time points must be in increasing order of days")
    if utilities.duplicated(["person_id", "time_point"]).any():
        raise OutcomeError("a person has two utilities at the same time point")
    arms = _person_arms(utilities, persons)
    values = pd.to_numeric(utilities["value"], errors="coerce")
    wide = (
        utilities.assign(value=values, time_point=utilities["time_point"].astype(str))
        .pivot(index="person_id", columns="time_point", values="value")
        .reindex(index=arms.index, columns=order)
    )
    u = wide.to_numpy(dtype=float)
    years = (days - days[0]) / days_per_year
    complete = ~np.isnan(u).any(axis=1)
    qaly = qaly_auc(u, days, discount_rate=discount_rate, days_per_year=days_per_year)
    table = pd.DataFrame(
        {
            "person_id": arms.index,
            "arm": arms.to_numpy(),
            "baseline_utility": u[:, 0],
            "qaly": qaly,
            "complete": complete,
        }
    )
    return QalyTable(table, tuple(order), float(years[-1]), float(discount_rate))


@dataclass(frozen=True)
class QalyDifference:
    """Intervention − reference QALYs: unadjusted and adjusted for baseline utility (OLS)."""

    reference: str
    intervention: str
    n: int
    n_reference: int
    n_intervention: int
    unadjusted: float
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    cov_type: str
    level: float

    def to_dict(self) -> dict[str, Any]:
        return plain(self.__dict__)


def adjusted_qaly_difference(
    qalys: QalyTable | pd.DataFrame,
    *,
    reference: str,
    cov_type: Literal["nonrobust", "HC0", "HC1", "HC2", "HC3"] = "HC3",
    level: float = 0.95,
) -> QalyDifference:
    """OLS ``qaly ~ 1 + arm + baseline_utility`` on complete cases; the arm coefficient is the
    baseline-adjusted QALY difference (Manca, Hawkins & Sculpher 2005). Two arms required."""
    import statsmodels.api as sm

    table = qalys.table if isinstance(qalys, QalyTable) else qalys
    _require(table, ["arm", "qaly", "baseline_utility"], "the QALY table")
    data = table.dropna(subset=["qaly", "baseline_utility"])
    arms = sorted(map(str, data["arm"].unique()))
    if len(arms) != 2 or reference not in arms:
        raise OutcomeError(
            f"the QALY comparison needs two arms including '{reference}' (found: "
            f"{', '.join(arms) or 'none'})"
        )
    intervention = next(arm for arm in arms if arm != reference)
    treated = (data["arm"].astype(str) == intervention).astype(float).to_numpy()
    exog = pd.DataFrame(
        {
            "const": 1.0,
            "arm": treated,
            "baseline_utility": data["baseline_utility"].to_numpy(dtype=float),
        }
    )
    y = data["qaly"].to_numpy(dtype=float)
    n_new = int(treated.sum())
    n_ref = len(y) - n_new
    if n_new < 2 or n_ref < 2:
        raise OutcomeError("each arm needs at least two persons with complete QALYs")
    fit = sm.OLS(y, exog).fit(cov_type=cov_type)
    estimate = float(fit.params["arm"])
    se = float(fit.bse["arm"])
    z = normal_quantile(level)
    if cov_type == "nonrobust":
        low, high = (float(v) for v in fit.conf_int(alpha=1 - level).loc["arm"])
    else:
        low, high = estimate - z * se, estimate + z * se
    return QalyDifference(
        reference=reference,
        intervention=intervention,
        n=len(y),
        n_reference=n_ref,
        n_intervention=n_new,
        unadjusted=float(y[treated == 1].mean() - y[treated == 0].mean()),
        estimate=estimate,
        se=se,
        ci_low=low,
        ci_high=high,
        p_value=float(fit.pvalues["arm"]),
        cov_type=cov_type,
        level=level,
    )


# --------------------------------------------------------------------------------------------
# Cohort summaries
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutcomeSummary:
    """Per arm (and ``all``), score and follow-up time point.

    ``table`` columns: ``arm``, ``score``, ``time_point``, ``n_persons`` (roster), ``n_baseline``,
    ``n_follow_up``, ``n`` (both present), ``share_missing`` (1 − n / n_persons);
    ``baseline_mean``, ``follow_up_mean``, ``change_mean`` with ``*_ci_low``/``*_ci_high`` (t),
    ``change_sd``; ``change_median`` with its order-statistic interval; and when responders were
    given ``n_responders``, ``n_classified``, ``share_responders`` with a Wilson interval.
    Baseline and follow-up means use everyone with that value; the change statistics use the
    persons with both (``n``). Suppression of small cells: :data:`SUMMARY_DERIVED`.
    """

    table: pd.DataFrame
    level: float

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "rows": _records(self.table)}


def _summary_row(group: pd.DataFrame, level: float) -> dict[str, Any]:
    n_persons = len(group)
    both = group["baseline"].notna() & group["follow_up"].notna()
    n = int(both.sum())
    base = mean_ci(group["baseline"], level)
    follow = mean_ci(group["follow_up"], level)
    change = mean_ci(group.loc[both, "change"], level)
    median = median_ci(group.loc[both, "change"], level)
    row: dict[str, Any] = {
        "n_persons": n_persons,
        "n_baseline": base.n,
        "n_follow_up": follow.n,
        "n": n,
        "share_missing": 1 - n / n_persons if n_persons else math.nan,
        "baseline_mean": base.mean,
        "baseline_ci_low": base.ci_low,
        "baseline_ci_high": base.ci_high,
        "follow_up_mean": follow.mean,
        "follow_up_ci_low": follow.ci_low,
        "follow_up_ci_high": follow.ci_high,
        # the same persons as the change (both answers): follow-up − baseline = mean change
        "paired_baseline_mean": float(group.loc[both, "baseline"].mean()) if n else math.nan,
        "paired_follow_up_mean": float(group.loc[both, "follow_up"].mean()) if n else math.nan,
        "change_mean": change.mean,
        "change_sd": change.sd,
        "change_ci_low": change.ci_low,
        "change_ci_high": change.ci_high,
        "change_median": median.median,
        "change_median_ci_low": median.ci_low,
        "change_median_ci_high": median.ci_high,
    }
    if "responder" in group.columns:
        classified = group["responder"].dropna()
        share = wilson_interval(int(classified.astype(bool).sum()), len(classified), level)
        row.update(
            {
                "n_responders": share.successes,
                "n_classified": share.n,
                "share_responders": share.proportion,
                "responders_ci_low": share.ci_low,
                "responders_ci_high": share.ci_high,
            }
        )
    return row


def summarise_outcomes(
    changes: ChangeTable | ResponderTable | pd.DataFrame,
    *,
    include_all: bool = True,
    level: float = 0.95,
) -> OutcomeSummary:
    """n, means and medians with 95 % CIs, share missing and (for a responder table) the share
    of responders, per arm, score and follow-up time point; ``include_all`` adds the whole
    cohort as arm ``"all"``. ``baseline_mean`` and ``follow_up_mean`` are over everyone who
    answered at that time point (``n_baseline``, ``n_follow_up``); ``paired_baseline_mean`` and
    ``paired_follow_up_mean`` are over the ``n`` persons with both answers, whose difference is
    ``change_mean``."""
    table = changes.table if isinstance(changes, ChangeTable | ResponderTable) else changes
    _require(table, ["arm", "score", "time_point", "baseline", "follow_up", "change"], "the data")
    frames = [table.assign(arm=table["arm"].astype(str))]
    if include_all:
        frames.append(table.assign(arm=ALL_ARMS))
    data = pd.concat(frames, ignore_index=True)
    rows = []
    for (arm, score, tp), group in data.groupby(["arm", "score", "time_point"], sort=False):
        rows.append({"arm": arm, "score": score, "time_point": tp, **_summary_row(group, level)})
    return OutcomeSummary(pd.DataFrame(rows), level)


@dataclass(frozen=True)
class ResponseRates:
    """Per group: ``invited``, ``responded``, ``rate`` with a Wilson interval."""

    table: pd.DataFrame
    level: float

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "rows": _records(self.table)}


def response_rates(
    counts: pd.DataFrame,
    *,
    by: Sequence[str] = ("arm", "time_point"),
    include_all: bool = True,
    level: float = 0.95,
) -> ResponseRates:
    """Response rate = responded / invited with a Wilson interval, per ``by`` group.

    ``counts`` has the ``by`` columns plus ``invited`` and ``responded`` (counts; several rows
    per group are added up). ``include_all`` adds rows over all arms (``arm = "all"``) when
    ``arm`` is one of the ``by`` columns.
    """
    group_columns = list(by)
    _require(counts, [*group_columns, "invited", "responded"], "the invitation counts")
    data = counts.copy()
    for column in ("invited", "responded"):
        data[column] = pd.to_numeric(data[column], errors="coerce")
        if data[column].isna().any() or (data[column] < 0).any():
            raise OutcomeError(f"'{column}' must be counts (whole numbers ≥ 0)")
    frames = [data]
    if include_all and "arm" in group_columns:
        frames.append(data.assign(arm=ALL_ARMS))
    data = pd.concat(frames, ignore_index=True)
    totals = data.groupby(group_columns, sort=False)[["invited", "responded"]].sum()
    rows = []
    for key, row in totals.iterrows():
        keys = key if isinstance(key, tuple) else (key,)
        if row["responded"] > row["invited"]:
            where = ", ".join(f"{c}={k}" for c, k in zip(group_columns, keys, strict=True))
            raise OutcomeError(f"more responses than invitations ({where})")
        ci = wilson_interval(int(row["responded"]), int(row["invited"]), level)
        rows.append(
            {
                **dict(zip(group_columns, keys, strict=True)),
                "invited": ci.n,
                "responded": ci.successes,
                "rate": ci.proportion,
                "ci_low": ci.ci_low,
                "ci_high": ci.ci_high,
            }
        )
    return ResponseRates(pd.DataFrame(rows), level)


def share_missing(values: pd.Series) -> float:
    """Share of missing entries (``NaN``) in a series; ``NaN`` for an empty series."""
    return float(values.isna().mean()) if len(values) else math.nan
