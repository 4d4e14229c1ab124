"""Older adults: the adjusted difference in loneliness and insecurity associated with each
service, as the pilot definition declares the analysis.

Pure functions over pandas/numpy (no Flask, no database). The services section of the cohort
analytics (:mod:`vaikuttavuus.services.analytics.services`) builds :class:`AttributionData`
from the database and publishes the tables of :class:`Attribution`.

Words
-----
Services are not randomised: who receives a service depends on their needs. Every estimate
here is an **adjusted difference associated with the service** — the mean follow-up score of
persons who received it minus that of comparable persons who did not, after adjusting for the
declared confounders. It is an effect of the service only if no unmeasured difference between
the groups remains; the E-value says how strong such a difference would have to be.

Exposure per follow-up (:func:`exposure_at`)
--------------------------------------------
A service counts as exposure for a follow-up when an episode of it started on or after the
care cycle's start and at least ``min_exposure_days`` before that follow-up's answer (persons
who did not answer: before the time point's nominal day, index + ``offset_days``), with
contacts > 0 or not recorded. A service started later is not exposure *for that follow-up*
(it cannot have acted yet) but may be for the next. The **dose** is the contacts of the
counted episodes up to the answer, prorated over the episode's days (an episode still running
ends on the data date); the **cost in the window** is each episode's recorded cost prorated to
its days between the care cycle's start and the answer (the cost of care after the follow-up
does not count).

Estimand and estimators
-----------------------
For each follow-up t, outcome score k and service s: the average treatment effect (ATE) of
being exposed to s by t on the follow-up score Y_k(t), among the persons due at t, with the
declared confounders (baseline of the outcome and the other baseline scores, age, sex, living
alone, unit, arm) **and the other services' exposures** as the adjustment set (so a service is
not credited with what the services given alongside it do).

* **Primary estimator: AIPW** (:func:`vaikuttavuus.domain.causal.aipw`) with
  - a propensity model per service: logistic regression of A_s on the confounders and the other
    services' exposures, scores bounded to [0.01, 0.99] (the number bounded is reported);
  - one outcome model per score: OLS of Y_k on the confounders, every service's exposure and
    each service × (baseline of k − its mean), so the difference may vary with the baseline;
  - the influence-function standard error.
* Sensitivity: the **outcome regression** alone (the service's coefficient, HC1 errors), the
  **IPW** (Hájek) estimate alone, and the unadjusted difference in means (for comparison).
* **Missing data** (``missing_data.method``): ``multiple_imputation`` — the follow-up scores
  of every analysed outcome at every follow-up and the missing baseline confounders are imputed
  ``imputations`` times by chained equations, separately per arm, with the exposures at every
  follow-up as predictors (:func:`vaikuttavuus.domain.imputation.multiple_imputation`); the
  AIPW (and every sensitivity estimator) is run on each imputed data set and pooled by Rubin's
  rules. Sensitivity analyses of the primary question: complete cases; delta-adjusted
  missing-not-at-random scenarios (the imputed follow-up scores of non-responders δ points
  worse: all non-responders, or only the exposed ones — the scenario that works against the
  service); answers given by a proxy left out; web answers only. ``complete_cases`` — the
  persons with the outcome and every confounder (per score).
* **Balance**: standardised mean differences of every confounder and other service before and
  after weighting by 1/ê, 1/(1 − ê) (pooled SD of the unweighted groups), averaged over the
  imputed data sets; |SMD| > 0.1 after weighting is flagged. **Overlap**: the distribution of
  the propensity score among the exposed and the unexposed (quantiles and a 20-bin histogram of
  shares).
* **Multiplicity**: the primary question is one score at one follow-up by service type; its
  comparisons (one per service) form the primary family, every other comparison (other scores,
  other follow-ups) the secondary family. Each family's AIPW p-values are adjusted by Holm
  (family-wise error) or Benjamini–Hochberg (false-discovery rate), as declared.
* **E-values** for every AIPW estimate (d = estimate / SD of the follow-up score).
* **Dose** (secondary): the outcome regression with the contacts of each service per 10
  contacts beside its exposure: the difference associated with 10 more contacts among those
  who received it.
* **Cost per point** at the primary follow-up: the AIPW difference in the cost of services
  inside the window (exposed minus comparable unexposed: an *incremental* cost) divided by the
  improvement in the score; Fieller's interval from the influence functions' covariance
  (Rubin's rules for the pair). Not given when the score's interval includes 0 or shows no
  improvement; "lower cost" instead of a ratio when the service is also cheaper.
* **Client guidance** (:class:`GuidanceCells`): the DR-learner (Kennedy 2023) — the mean of
  the AIPW pseudo-outcomes φᵢ of the primary score over *similar clients* (same baseline
  loneliness band, feeling of safety, living alone and age band; any dimension may be left
  open), pooled over the imputed data sets by Rubin's rules, with the number of similar clients
  and how many of them received the service. Too few exposed or unexposed similar clients:
  hidden.

Categories (services) with fewer than ``min_cell`` exposed or unexposed persons at a follow-up
are not estimated (the row says why).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from threadpoolctl import threadpool_limits

from vaikuttavuus.domain import causal
from vaikuttavuus.domain.cea import fieller_interval
from vaikuttavuus.domain.imputation import multiple_imputation, pool
from vaikuttavuus.domain.notes import Note
from vaikuttavuus.domain.stats import plain

__all__ = [
    "AGE_BANDS",
    "PROFILE_DIMENSIONS",
    "SMD_THRESHOLD",
    "Attribution",
    "AttributionData",
    "AttributionError",
    "AttributionPlan",
    "Exposure",
    "FollowUpData",
    "GuidanceCells",
    "age_band",
    "attribute",
    "attribution_data",
    "exposure_at",
    "score_band",
]

FloatArray = npt.NDArray[np.float64]
Direction = Literal["lower_is_better", "higher_is_better"]
MissingMethod = Literal["multiple_imputation", "aipw_response", "complete_cases"]
SMD_THRESHOLD = 0.1
HISTOGRAM_BINS = 20
DOSE_UNIT = 10.0
"""The dose analysis reports the difference per this many contacts."""
AGE_BANDS: tuple[tuple[str, float, float], ...] = (
    ("65-74", 0.0, 75.0),
    ("75-84", 75.0, 85.0),
    ("85+", 85.0, math.inf),
)
PROFILE_DIMENSIONS = ("band", "insecure", "lives_alone", "age_band")
"""The client-guidance profile: baseline loneliness band, feeling insecure at baseline, living
alone, age band."""
_QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)


class AttributionError(ValueError):
    """The data cannot be analysed as asked; the message names the problem."""


# --------------------------------------------------------------------------------------------
# Exposure windows
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exposure:
    """Per person (rows as ``anchors``) and category: ``exposed`` (0/1), ``contacts`` in the
    window; per person the services' ``cost`` inside the window (NaN when an episode that
    falls in it has no recorded cost)."""

    exposed: FloatArray
    contacts: FloatArray
    cost: FloatArray


def _days(values: pd.Series | npt.ArrayLike) -> FloatArray:
    """Dates as days since the epoch (float; NaT → NaN)."""
    stamps = pd.to_datetime(pd.Series(values), errors="coerce")
    days = stamps.to_numpy(dtype="datetime64[D]").astype("int64").astype(float)
    days[stamps.isna().to_numpy()] = np.nan
    return days


def exposure_at(
    episodes: pd.DataFrame,
    person_ids: npt.ArrayLike,
    anchor: npt.ArrayLike,
    care_start: npt.ArrayLike,
    *,
    categories: Sequence[str],
    min_exposure_days: int,
    as_of: object,
    by: str = "service_type",
) -> Exposure:
    """Exposure, dose and cost in the window of one follow-up (see the module docstring).

    ``episodes``: ``person_id``, ``by`` (the category), ``started_on``, ``ended_on`` (empty =
    still running), ``contacts`` and ``cost`` (either may be missing). ``anchor`` is each
    person's answer day of the follow-up (or its nominal day) and ``care_start`` the care
    cycle's first day, aligned with ``person_ids``.
    """
    for name in ("person_id", by, "started_on", "ended_on", "contacts", "cost"):
        if name not in episodes.columns:
            raise AttributionError(f"the exposure frame lacks column '{name}'")
    people = pd.Index(np.asarray(person_ids))
    n, k = len(people), len(categories)
    exposed = np.zeros((n, k))
    contacts = np.zeros((n, k))
    cost = np.zeros(n)
    if n == 0 or episodes.empty:
        return Exposure(exposed, contacts, cost)
    row = people.get_indexer(pd.Index(episodes["person_id"].to_numpy()))
    column = pd.Index(list(categories)).get_indexer(pd.Index(episodes[by].astype(str)))
    inside = row >= 0
    row, column = row[inside], column[inside]
    part = episodes[inside]
    anchor_day = _days(anchor)[row]
    start_day = _days(care_start)[row]
    started = _days(part["started_on"])
    as_of_day = float(_days(pd.Series([as_of]))[0])
    ended = _days(part["ended_on"])
    ended = np.where(np.isnan(ended), np.maximum(as_of_day, started), ended)
    length = np.maximum(ended - started + 1, 1.0)
    recorded = pd.to_numeric(part["contacts"], errors="coerce").to_numpy(dtype=float)
    counted = (
        (column >= 0)
        & (started >= start_day)
        & (started <= anchor_day - min_exposure_days)
        & (np.isnan(recorded) | (recorded > 0))
    )
    np.maximum.at(exposed, (row[counted], column[counted]), 1.0)
    until = np.minimum(ended, anchor_day)
    share = np.clip((until - started + 1) / length, 0.0, 1.0)
    dose = np.where(counted, np.nan_to_num(recorded) * share, 0.0)
    np.add.at(contacts, (row[counted], column[counted]), dose[counted])
    # cost inside [care start, anchor] of every episode overlapping it
    first = np.maximum(started, start_day)
    overlap = np.clip((until - first + 1) / length, 0.0, 1.0)
    euros = pd.to_numeric(part["cost"], errors="coerce").to_numpy(dtype=float)
    in_window = overlap > 0
    np.add.at(cost, row[in_window], euros[in_window] * overlap[in_window])
    return Exposure(exposed, contacts, cost)


# --------------------------------------------------------------------------------------------
# Client profile
# --------------------------------------------------------------------------------------------


def score_band(values: npt.ArrayLike, low: float, high: float, threshold: float) -> np.ndarray:
    """Three baseline bands of a lower-is-better score whose flag starts at ``threshold``:
    ``below`` (low … threshold − 1), ``at`` (threshold … threshold + 1) and ``above``
    (threshold + 2 … high); missing values give ``None``."""
    x = np.asarray(values, dtype=float)
    band = np.full(len(x), None, dtype=object)
    band[(x >= low) & (x < threshold)] = "below"
    band[(x >= threshold) & (x < threshold + 2)] = "at"
    band[(x >= threshold + 2) & (x <= high)] = "above"
    return band


def age_band(ages: npt.ArrayLike) -> np.ndarray:
    """``65-74``, ``75-84`` or ``85+`` (``None`` when unknown)."""
    x = np.asarray(ages, dtype=float)
    band = np.full(len(x), None, dtype=object)
    for label, low, high in AGE_BANDS:
        band[(x >= low) & (x < high)] = label
    return band


# --------------------------------------------------------------------------------------------
# Input and plan
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FollowUpData:
    """One follow-up time point, rows aligned with :attr:`AttributionData.person_ids`:
    ``due`` (the person belongs to this follow-up's analysis), the follow-up ``outcomes`` per
    score (NaN = not answered), the :class:`Exposure` at it, and — when known — the answer's
    ``mode`` and whether a ``proxy`` answered (``None`` for non-responders)."""

    time_point: str
    due: npt.NDArray[np.bool_]
    outcomes: Mapping[str, FloatArray]
    exposure: Exposure
    mode: np.ndarray | None = None
    proxy: np.ndarray | None = None
    adjusters: FloatArray | None = None
    """Further columns adjusted for at this follow-up (e.g. the service types, when the
    categories are provider sectors), named ``adjuster_names``."""
    adjuster_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class AttributionData:
    """Everything the analysis needs. ``confounders``: numeric design columns (categories as
    0/1 indicators; NaN = missing), one row per person; ``baselines``: per analysed score, the
    confounder column holding its baseline value; ``groups``: the imputation groups (arm);
    ``profile``: the client-guidance profile (:data:`PROFILE_DIMENSIONS`; ``None`` unknown)."""

    person_ids: np.ndarray
    groups: np.ndarray
    confounders: pd.DataFrame
    baselines: Mapping[str, str]
    categories: tuple[str, ...]
    follow_ups: tuple[FollowUpData, ...]
    directions: Mapping[str, Direction]
    profile: pd.DataFrame | None = None

    @property
    def scores(self) -> list[str]:
        return list(self.baselines)


@dataclass(frozen=True)
class AttributionPlan:
    """The declared analysis: the primary question, the missing-data method, multiplicity."""

    primary_score: str
    primary_time_point: str
    missing_data: MissingMethod = "multiple_imputation"
    imputations: int = 20
    mnar_deltas: tuple[float, ...] = (1.0,)
    multiplicity: causal.Multiplicity = "holm"
    min_cell: int = 5
    bounds: tuple[float, float] = causal.DEFAULT_BOUNDS
    seed: int = 20_260_101
    level: float = 0.95

    def to_dict(self) -> dict[str, Any]:
        return {
            "primary_score": self.primary_score,
            "primary_time_point": self.primary_time_point,
            "missing_data": self.missing_data,
            "imputations": self.imputations,
            "mnar_deltas": list(self.mnar_deltas),
            "multiplicity": self.multiplicity,
            "min_cell": self.min_cell,
            "bounds": list(self.bounds),
            "seed": self.seed,
            "level": self.level,
        }


def attribution_data(
    *,
    person_ids: npt.ArrayLike,
    groups: npt.ArrayLike,
    index_dates: npt.ArrayLike,
    confounders: pd.DataFrame,
    covariates: Sequence[str],
    baseline_columns: Mapping[str, str],
    outcomes: pd.DataFrame,
    answers: pd.DataFrame,
    episodes: pd.DataFrame,
    scores: Sequence[str],
    baseline: str,
    follow_ups: Mapping[str, int],
    due: Mapping[str, npt.ArrayLike],
    categories: Sequence[str],
    directions: Mapping[str, Direction],
    care_start_days: int,
    min_exposure_days: int,
    as_of: object,
    by: str = "service_type",
    profile: pd.DataFrame | None = None,
) -> AttributionData:
    """:class:`AttributionData` from plain frames (the app's database reads, or a simulation).

    ``confounders`` holds the declared ``covariates`` per person (aligned with ``person_ids``;
    text columns become 0/1 indicators, see :func:`vaikuttavuus.domain.stats.covariate_design`);
    ``baseline_columns`` names, per score, the covariate holding its baseline — a score without
    one gets a column ``baseline:<score>`` from ``outcomes`` at ``baseline``. ``outcomes`` is
    long (``person_id``, ``time_point``, ``score``, ``value``); ``answers`` has one row per
    person and follow-up answered: ``person_id``, ``time_point``, ``answered_on`` and
    optionally ``mode`` and ``proxy``. ``follow_ups`` maps each follow-up to its nominal day
    (``offset_days``); ``due`` says who belongs to each follow-up's analysis.
    """
    from vaikuttavuus.domain.stats import covariate_design

    ids = np.asarray(person_ids)
    index = pd.Index(ids)
    if index.has_duplicates:
        raise AttributionError("a person appears twice")
    for name, frame, columns in (
        ("outcome", outcomes, ("person_id", "time_point", "score", "value")),
        ("answer", answers, ("person_id", "time_point", "answered_on")),
    ):
        absent = [c for c in columns if c not in frame.columns]
        if absent:
            raise AttributionError(f"the {name} frame lacks column(s) {', '.join(absent)}")
    design = covariate_design(confounders.reset_index(drop=True), list(covariates))
    baselines: dict[str, str] = {}
    data = outcomes[outcomes["score"].isin(list(scores))]
    values = pd.to_numeric(data["value"], errors="coerce").to_numpy(dtype=float)
    row = index.get_indexer(pd.Index(data["person_id"].to_numpy()))
    score_codes = pd.Index(list(scores)).get_indexer(pd.Index(data["score"]))
    time_points = data["time_point"].to_numpy()

    def wide(time_point: str) -> FloatArray:
        matrix = np.full((len(ids), len(scores)), np.nan)
        chosen = (time_points == time_point) & (row >= 0)
        matrix[row[chosen], score_codes[chosen]] = values[chosen]
        return matrix

    at_baseline = wide(baseline)
    for position, score in enumerate(scores):
        column = baseline_columns.get(score)
        if column is None or column not in design.columns:
            column = f"baseline:{score}"
            design[column] = at_baseline[:, position]
        baselines[score] = column
    index_day = pd.to_datetime(pd.Series(index_dates)).reset_index(drop=True)
    care_start = index_day + pd.Timedelta(days=care_start_days)
    answer_row = index.get_indexer(answers["person_id"].to_numpy())
    answered_on = pd.to_datetime(answers["answered_on"]).reset_index(drop=True)
    result = []
    for time_point, offset in follow_ups.items():
        chosen = (answers["time_point"].to_numpy() == time_point) & (answer_row >= 0)
        anchor = index_day + pd.Timedelta(days=int(offset))
        anchor = anchor.copy()
        anchor.iloc[answer_row[chosen]] = answered_on[chosen].to_numpy()
        exposure = exposure_at(
            episodes,
            ids,
            anchor,
            care_start,
            categories=categories,
            min_exposure_days=min_exposure_days,
            as_of=as_of,
            by=by,
        )
        matrix = wide(time_point)
        mode = proxy = None
        if "mode" in answers.columns:
            mode = np.full(len(ids), None, dtype=object)
            mode[answer_row[chosen]] = answers["mode"].to_numpy()[chosen]
        if "proxy" in answers.columns:
            proxy = np.full(len(ids), None, dtype=object)
            proxy[answer_row[chosen]] = answers["proxy"].to_numpy()[chosen]
        result.append(
            FollowUpData(
                time_point=time_point,
                due=np.asarray(due[time_point], dtype=bool),
                outcomes={score: matrix[:, i] for i, score in enumerate(scores)},
                exposure=exposure,
                mode=mode,
                proxy=proxy,
            )
        )
    return AttributionData(
        person_ids=ids,
        groups=np.asarray(groups),
        confounders=design.reset_index(drop=True),
        baselines=baselines,
        categories=tuple(categories),
        follow_ups=tuple(result),
        directions=dict(directions),
        profile=None if profile is None else profile.reset_index(drop=True),
    )


# --------------------------------------------------------------------------------------------
# Result
# --------------------------------------------------------------------------------------------

ESTIMATE_COLUMNS = [
    "category", "score", "time_point", "method", "estimate", "se", "ci_low", "ci_high",
    "p_value", "p_adjusted", "family", "e_value", "e_value_ci", "n", "n_exposed",
    "n_unexposed", "n_bounded", "sd", "reason",
]  # fmt: skip
SENSITIVITY_COLUMNS = [
    "category", "analysis", "delta", "estimate", "ci_low", "ci_high", "p_value", "n",
    "n_exposed", "n_unexposed", "reason",
]  # fmt: skip


@dataclass(frozen=True)
class GuidanceCells:
    """Sums of the primary score's AIPW pseudo-outcomes per elementary profile cell, service
    and imputed data set, from which :meth:`estimate` pools any union of cells."""

    cells: pd.DataFrame
    """One row per elementary cell: the :data:`PROFILE_DIMENSIONS` values."""
    categories: tuple[str, ...]
    modelled: tuple[bool, ...]
    count: npt.NDArray[np.int64]
    """Persons per cell."""
    exposed: npt.NDArray[np.int64]
    """Exposed persons per cell and category."""
    sums: FloatArray
    """Σφ per imputation, cell and category."""
    squares: FloatArray
    """Σφ² per imputation, cell and category."""
    level: float = 0.95

    def estimate(self, profile: Mapping[str, object]) -> pd.DataFrame:
        """Per category: the mean pseudo-outcome over the cells matching ``profile`` (a value
        per dimension; ``None`` = any), pooled by Rubin's rules: ``estimate``, ``ci_low``,
        ``ci_high``, ``n_similar``, ``n_exposed``, ``n_unexposed``."""
        mask = np.ones(len(self.cells), dtype=bool)
        for dimension in PROFILE_DIMENSIONS:
            wanted = profile.get(dimension)
            if wanted is not None:
                mask &= (self.cells[dimension].astype(str) == str(wanted)).to_numpy()
        n = int(self.count[mask].sum())
        rows = []
        for position, category in enumerate(self.categories):
            exposed = int(self.exposed[mask, position].sum())
            row: dict[str, Any] = {
                "category": category,
                "n_similar": n,
                "n_exposed": exposed,
                "n_unexposed": n - exposed,
                "estimate": math.nan,
                "se": math.nan,
                "ci_low": math.nan,
                "ci_high": math.nan,
            }
            if self.modelled[position] and n > 1 and len(self.sums):
                total = self.sums[:, mask, position].sum(axis=1)
                square = self.squares[:, mask, position].sum(axis=1)
                mean = total / n
                variance = np.maximum(square - n * mean * mean, 0.0) / (n - 1) / n
                pooled = pool(mean, variance, level=self.level)
                row.update(
                    estimate=pooled.estimate,
                    se=pooled.se,
                    ci_low=pooled.ci_low,
                    ci_high=pooled.ci_high,
                )
            rows.append(row)
        return pd.DataFrame(rows)


@dataclass(frozen=True)
class Attribution:
    """The tables of the analysis (see the module docstring).

    ``estimates``: one row per category × score × follow-up × method (``aipw``,
    ``outcome_regression``, ``ipw``, ``unadjusted``) — ``estimate`` (exposed − unexposed, in
    score points), ``se``, ``ci_low``, ``ci_high``, ``p_value``, ``p_adjusted`` (AIPW rows:
    Holm or BH within the ``family``, ``primary`` or ``secondary``), ``e_value`` and
    ``e_value_ci``, ``n``, ``n_exposed``, ``n_unexposed``, ``n_bounded`` (propensity scores
    bounded), ``sd`` (of the follow-up score) and ``reason`` (why an estimate is missing).
    ``balance``: category × follow-up × variable: ``smd_before``, ``smd_after``.
    ``overlap``: category × follow-up × group (``exposed``/``unexposed``): the propensity
    quantiles ``p0``, ``p5``, ``p25``, ``p50``, ``p75``, ``p95``, ``p100``; ``overlap_bins``:
    the histogram (shares per bin). ``cost``: category × score at the primary follow-up.
    ``dose``: category × score × follow-up. ``sensitivity``: the primary question's analyses.
    ``missing``: share missing per variable, time point and group before imputation.
    """

    plan: AttributionPlan
    categories: tuple[str, ...]
    scores: tuple[str, ...]
    time_points: tuple[str, ...]
    estimates: pd.DataFrame
    balance: pd.DataFrame
    overlap: pd.DataFrame
    overlap_bins: pd.DataFrame
    cost: pd.DataFrame
    dose: pd.DataFrame
    sensitivity: pd.DataFrame
    missing: pd.DataFrame
    guidance: GuidanceCells | None
    notes: tuple[str, ...]
    imputations: int

    def aipw(self) -> pd.DataFrame:
        return self.estimates[self.estimates["method"] == "aipw"]

    @property
    def n_primary(self) -> int:
        return int((self.aipw()["family"] == "primary").sum())

    @property
    def n_secondary(self) -> int:
        return int((self.aipw()["family"] == "secondary").sum())

    @property
    def imbalanced(self) -> pd.DataFrame:
        """Balance rows whose |SMD| after weighting exceeds 0.1."""
        after = self.balance["smd_after"].abs()
        return self.balance[after > SMD_THRESHOLD]

    def to_dict(self) -> dict[str, Any]:
        return plain(
            {
                "plan": self.plan.to_dict(),
                "categories": list(self.categories),
                "scores": list(self.scores),
                "time_points": list(self.time_points),
                "imputations": self.imputations,
                "estimates": self.estimates,
                "balance": self.balance,
                "overlap": self.overlap,
                "cost": self.cost,
                "dose": self.dose,
                "sensitivity": self.sensitivity,
                "missing": self.missing,
                "notes": list(self.notes),
            }
        )


# --------------------------------------------------------------------------------------------
# One data set
# --------------------------------------------------------------------------------------------


@dataclass
class _Fitted:
    """The propensity scores of one data set's rows (bounded) per modelled category."""

    scores: dict[int, FloatArray] = field(default_factory=dict)
    bounded: dict[int, int] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)


def _common_columns(a: FloatArray, min_count: int) -> list[int]:
    """The exposure columns with at least ``min_count`` rows of each value."""
    exposed = a.sum(axis=0)
    return [int(c) for c in np.flatnonzero(np.minimum(exposed, len(a) - exposed) >= min_count)]


def _independent(matrix: FloatArray, fixed: int) -> FloatArray:
    """``matrix`` without the columns after the first ``fixed`` (already independent) that
    are constant or linear combinations of the columns before them."""
    if matrix.shape[1] <= fixed or len(matrix) == 0:
        return matrix
    scale = np.abs(matrix).max(axis=0)
    scale[scale == 0] = 1.0
    keep = causal.independent_columns(matrix / scale)
    keep[:fixed] = True
    return matrix[:, keep]


def _propensities(
    x: FloatArray,
    a: FloatArray,
    modelled: Sequence[int],
    bounds: tuple[float, float],
    starts: dict[tuple[Any, ...], FloatArray],
    key: tuple[Any, ...],
    min_count: int = 5,
) -> _Fitted:
    """Logistic propensity of each modelled category on the confounders ``x`` (with its
    constant) and the other categories' exposures (those with at least ``min_count`` clients
    with and without them: a rare one would separate); warm-started from ``starts``."""
    fitted = _Fitted()
    common = _common_columns(a, min_count)
    for s in modelled:
        others = [o for o in common if o != s]
        design = _independent(np.column_stack([x, a[:, others]]), x.shape[1])
        start = starts.get((*key, s))
        fit = causal.fit_logistic(design, a[:, s], start=start, ridge=RIDGE)
        if not fit.converged or np.isnan(fit.fitted).any():
            fitted.failed[s] = "no_overlap"
            continue
        starts[(*key, s)] = fit.params
        score, low, high = causal.bound_propensity(fit.fitted, bounds)
        fitted.scores[s] = score
        fitted.bounded[s] = low + high
    return fitted


@dataclass(frozen=True)
class _Result:
    """One estimator's estimate and variance for a category (one data set)."""

    estimate: float
    variance: float


@dataclass
class _OutcomeFit:
    aipw: dict[int, _Result]
    regression: dict[int, _Result]
    ipw: dict[int, _Result]
    pseudo: dict[int, FloatArray]
    sd: float
    mnar: dict[tuple[str, float, int], _Result] = field(default_factory=dict)
    subset: npt.NDArray[np.bool_] | None = None
    """The rows of the pass this fit used, when only those who answered (no response model)."""


@dataclass(frozen=True)
class _Response:
    """A response model: the probability that the score was answered given the confounders
    and the exposures (bounded), with its coefficients over the columns [x, a] (0 for a
    dropped column), so it can be evaluated with one exposure switched on or off."""

    observed: npt.NDArray[np.bool_]
    probability: FloatArray
    linear: FloatArray
    exposure_coefficients: FloatArray


RESPONSE_BOUNDS = (0.01, 0.999)
RIDGE = 0.25
"""The propensity and response models' weak normal prior: SD 2 on the log-odds scale for
every coefficient but the constant (keeps them finite in small cohorts; negligible in large)."""


def _response_model(
    x: FloatArray,
    a: FloatArray,
    observed: npt.NDArray[np.bool_],
    starts: dict[tuple[Any, ...], FloatArray],
    key: tuple[Any, ...],
) -> _Response | None:
    """Logistic regression of answering on the confounders and every exposure (None when
    everyone or no one answered, or when it does not converge)."""
    if observed.all() or not observed.any():
        return None
    common = _common_columns(a, 5)
    full = np.column_stack([x, a])
    full[:, [x.shape[1] + c for c in range(a.shape[1]) if c not in common]] = 0.0
    scale = np.abs(full).max(axis=0)
    scale[scale == 0] = 1.0
    keep = causal.independent_columns(full / scale)
    keep[: x.shape[1]] = True
    fit = causal.fit_logistic(
        full[:, keep], observed.astype(float), start=starts.get(key), ridge=RIDGE
    )
    if not fit.converged:
        return None
    starts[key] = fit.params
    params = np.zeros(full.shape[1])
    params[keep] = fit.params
    linear = full @ params
    probability, _low, _high = causal.bound_propensity(1 / (1 + np.exp(-linear)), RESPONSE_BOUNDS)
    return _Response(observed, probability, linear, params[x.shape[1]:])


def _outcome(
    x: FloatArray,
    a: FloatArray,
    y: FloatArray,
    baseline: FloatArray | None,
    fitted: _Fitted,
    response: _Response | None = None,
    deltas: Sequence[float] = (),
    worse: float = 1.0,
) -> _OutcomeFit:
    """The outcome model of one score and the AIPW, regression and IPW estimates of every
    category with propensity scores.

    Without ``response`` every ``y`` must be present. With it, ``y`` is NaN where the score
    was not answered; the outcome model is fitted on those who answered and the AIPW becomes
    the doubly robust estimator for a missing outcome (Robins, Rotnitzky & Zhao 1994; Tsiatis
    2006, ch. 10): φ = μ̂₁ − μ̂₀ + (R/π̂)·[A(Y − μ̂₁)/ê − (1 − A)(Y − μ̂₀)/(1 − ê)], with π̂ the
    response model. ``deltas``: delta-adjusted missing-not-at-random scenarios, non-responders
    δ points worse (``worse`` is the sign of worse) — all of them (``all``) or only the exposed
    (``exposed``): μ̂ₐ + wδ(1 − π̂ₐ) in the pattern-mixture model, with the matching
    augmentation wδ·(Aₐ/êₐ)(π̂ₐ − R)."""
    n = len(y)
    modelled = sorted(fitted.scores)
    observed = np.isfinite(y) if response is None else response.observed
    probability = np.ones(n) if response is None else response.probability
    centred = None if baseline is None else baseline - baseline.mean()
    columns = [x, a]
    if centred is not None and modelled:
        columns.append(a[:, modelled] * centred[:, None])
    design = np.column_stack(columns)
    values = np.where(observed, y, 0.0)
    beta, robust, kept = _least_squares(design[observed], values[observed], x.shape[1])
    fitted_values = design @ beta
    residual = np.where(observed, values - fitted_values, 0.0)
    width = x.shape[1]
    sd = float(values[observed].std(ddof=1)) if observed.sum() > 1 else math.nan
    result = _OutcomeFit({}, {}, {}, {}, sd)
    weight = observed / probability
    for position, s in enumerate(modelled):
        main = width + s
        if not kept[main]:
            continue
        contrast = np.full(n, beta[main])
        if centred is not None:
            contrast = contrast + beta[width + a.shape[1] + position] * centred
        e = fitted.scores[s]
        treated = a[:, s]
        pseudo = contrast + weight * (treated / e - (1 - treated) / (1 - e)) * residual
        estimate = float(pseudo.mean())
        variance = float(pseudo.var(ddof=1) / n)
        result.aipw[s] = _Result(estimate, variance)
        result.pseudo[s] = pseudo
        result.regression[s] = _Result(float(beta[main]), float(robust[main, main]))
        try:
            weighted = causal.ipw(
                np.where(observed, y, np.nan), treated, e, response=probability
            )
            result.ipw[s] = _Result(weighted.estimate, weighted.variance)
        except causal.CausalError:
            pass
        if response is None or not deltas:
            continue
        mu1 = fitted_values + (1 - treated) * contrast
        mu0 = fitted_values - treated * contrast
        coefficient = response.exposure_coefficients[s]
        pi1 = np.clip(1 / (1 + np.exp(-(response.linear + coefficient * (1 - treated)))),
                      *RESPONSE_BOUNDS)  # fmt: skip
        pi0 = np.clip(1 / (1 + np.exp(-(response.linear - coefficient * treated))),
                      *RESPONSE_BOUNDS)  # fmt: skip
        r = observed.astype(float)
        term1 = treated / e * (r * (values - mu1) / pi1)
        term0 = (1 - treated) / (1 - e) * (r * (values - mu0) / pi0)
        for delta in deltas:
            shift = worse * delta
            phi1 = mu1 + shift * (1 - pi1) + term1 + shift * treated / e * (pi1 - r)
            phi0_shifted = mu0 + shift * (1 - pi0) + term0 + shift * (1 - treated) / (1 - e) * (
                pi0 - r
            )
            phi0 = mu0 + term0
            for scope, difference in (("all", phi1 - phi0_shifted), ("exposed", phi1 - phi0)):
                result.mnar[(scope, float(delta), s)] = _Result(
                    float(difference.mean()), float(difference.var(ddof=1) / n)
                )
    return result


def _balance(
    x: FloatArray, a: FloatArray, s: int, e: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """SMD of each column of ``x`` (no constant) before and after ATE weighting."""
    treated = a[:, s] > 0
    weights = np.where(treated, 1 / e, 1 / (1 - e))
    x1, x0 = x[treated], x[~treated]
    w1, w0 = weights[treated], weights[~treated]
    pooled = np.sqrt((x1.var(axis=0, ddof=1) + x0.var(axis=0, ddof=1)) / 2)
    before = x1.mean(axis=0) - x0.mean(axis=0)
    after = (w1 @ x1) / w1.sum() - (w0 @ x0) / w0.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        return (
            np.where(pooled > 0, before / pooled, 0.0),
            np.where(pooled > 0, after / pooled, 0.0),
        )


def _dose(
    x: FloatArray, a: FloatArray, contacts: FloatArray, y: FloatArray, modelled: Sequence[int]
) -> dict[int, _Result]:
    """Coefficients of the contacts (per :data:`DOSE_UNIT`) of each modelled category."""
    if not modelled:
        return {}
    dose = contacts[:, modelled] / DOSE_UNIT
    varying = np.ptp(dose, axis=0) > 0
    if not varying.any():
        return {}
    design = np.column_stack([x, a, dose[:, varying]])
    beta, robust, kept = _least_squares(design, y, x.shape[1])
    start = x.shape[1] + a.shape[1]
    chosen = [s for s, keep in zip(modelled, varying, strict=True) if keep]
    return {
        s: _Result(float(beta[start + i]), float(robust[start + i, start + i]))
        for i, s in enumerate(chosen)
        if kept[start + i]
    }


def _least_squares(
    design: FloatArray, y: FloatArray, fixed: int
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]]:
    """OLS on the independent columns of ``design`` (the first ``fixed`` are kept): the
    coefficients and HC1 covariance laid out over all columns (0 for a dropped one) and
    which columns were kept."""
    gram = design.T @ design
    scale = np.sqrt(np.diag(gram))
    scale[scale == 0] = 1.0
    kept = causal.independent_columns(None, gram=gram / scale[:, None] / scale[None, :])
    kept[:fixed] = True
    chosen = design if kept.all() else design[:, kept]
    beta_kept, inverse = causal.fit_linear(chosen, y, gram=gram[np.ix_(kept, kept)])
    robust_kept = causal.robust_covariance(chosen, y - chosen @ beta_kept, inverse)
    p = design.shape[1]
    beta = np.zeros(p)
    beta[kept] = beta_kept
    robust = np.zeros((p, p))
    robust[np.ix_(kept, kept)] = robust_kept
    return beta, robust, kept


# --------------------------------------------------------------------------------------------
# The analysis
# --------------------------------------------------------------------------------------------


class _Collector:
    """(estimate, variance) per key over the imputed data sets, then Rubin's rules."""

    def __init__(self) -> None:
        self.values: dict[tuple[Any, ...], list[_Result]] = {}
        self.sizes: dict[tuple[Any, ...], int] = {}

    def add(self, key: tuple[Any, ...], result: _Result, n: int) -> None:
        self.values.setdefault(key, []).append(result)
        self.sizes[key] = n

    def pooled(self, key: tuple[Any, ...], level: float) -> causal.Estimate | None:
        found = self.values.get(key)
        if not found:
            return None
        estimates = [r.estimate for r in found]
        variances = [r.variance for r in found]
        if not all(math.isfinite(v) for v in (*estimates, *variances)):
            return None
        if len(found) == 1:
            return causal.normal_estimate(estimates[0], math.sqrt(max(variances[0], 0)), level)
        result = pool(estimates, variances, df_complete=max(self.sizes[key] - 1, 1), level=level)
        return causal.Estimate(
            result.estimate, result.se, result.ci_low, result.ci_high, result.p_value
        )


@dataclass(frozen=True)
class _Rows:
    """The rows of one pass and their design: ``x`` (a constant and the confounders that vary
    in these rows), ``a`` (every category's exposure), the confounder ``names`` kept."""

    keep: npt.NDArray[np.bool_]
    x: FloatArray
    a: FloatArray
    names: tuple[str, ...]

    def column(self, name: str | None) -> FloatArray | None:
        if name is None or name not in self.names:
            return None
        return self.x[:, 1 + self.names.index(name)]


def _design_rows(
    base: FloatArray, keep: npt.NDArray[np.bool_], a: FloatArray, names: Sequence[str]
) -> _Rows:
    raw = base[keep]
    x = np.column_stack([np.ones(len(raw)), raw])
    if len(raw) > 1:
        scale = np.abs(x).max(axis=0)
        scale[scale == 0] = 1.0
        usable = causal.independent_columns(x / scale)
        usable[0] = True
    else:
        usable = np.ones(x.shape[1], dtype=bool)
    kept = tuple(n for n, u in zip(names, usable[1:], strict=True) if u)
    return _Rows(keep, x[:, usable], a[keep], kept)


def _column_name(time_point: str, what: str, name: str) -> str:
    return f"{time_point}|{what}|{name}"


def _worse(direction: Direction) -> float:
    """The sign of a worse value: +1 when lower is better."""
    return 1.0 if direction == "lower_is_better" else -1.0


def _unadjusted(y: FloatArray, treated: FloatArray, level: float) -> causal.Estimate:
    y1, y0 = y[treated > 0], y[treated <= 0]
    if len(y1) < 2 or len(y0) < 2:
        return causal.normal_estimate(math.nan, math.nan, level)
    se = math.sqrt(y1.var(ddof=1) / len(y1) + y0.var(ddof=1) / len(y0))
    return causal.normal_estimate(float(y1.mean() - y0.mean()), se, level)


def _profile_cells(
    profile: pd.DataFrame | None, n: int
) -> tuple[pd.DataFrame, npt.NDArray[np.int64]]:
    """The elementary profile cells and each person's cell (−1: profile incomplete)."""
    if profile is None or not set(PROFILE_DIMENSIONS) <= set(profile.columns):
        return pd.DataFrame(columns=list(PROFILE_DIMENSIONS)), np.full(n, -1, dtype=np.int64)
    frame = profile[list(PROFILE_DIMENSIONS)].reset_index(drop=True)
    combined = np.zeros(n, dtype=np.int64)
    complete = np.ones(n, dtype=bool)
    for dimension in PROFILE_DIMENSIONS:
        codes, levels = pd.factorize(frame[dimension].astype(object), sort=True)
        complete &= codes >= 0
        combined = combined * (len(levels) + 1) + codes
    codes, uniques = pd.factorize(np.where(complete, combined, -1), sort=True)
    valid = uniques >= 0
    remap = np.full(len(uniques), -1, dtype=np.int64)
    remap[valid] = np.arange(int(valid.sum()))
    cell_of = remap[codes]
    first = [int(np.flatnonzero(cell_of == c)[0]) for c in range(int(valid.sum()))]
    cells = frame.iloc[first].astype(object).reset_index(drop=True)
    return cells, cell_of


class _Run:
    """One run of :func:`attribute` (state shared by its passes)."""

    def __init__(self, data: AttributionData, plan: AttributionPlan) -> None:
        self.data = data
        self.plan = plan
        self.categories = data.categories
        self.scores = data.scores
        self.names = list(data.confounders.columns)
        self.collect = _Collector()
        self.starts: dict[tuple[Any, ...], FloatArray] = {}
        self.sds: dict[tuple[str, str], list[float]] = {}
        self.balance: dict[tuple[str, int], list[tuple[FloatArray, FloatArray]]] = {}
        self.balance_names: dict[tuple[str, int], list[str]] = {}
        self.overlap: dict[tuple[str, int], list[tuple[FloatArray, FloatArray]]] = {}
        self.bounded: dict[tuple[str, int], list[int]] = {}
        self.failures: dict[tuple[str, int], str] = {}
        self.cost_pairs: dict[tuple[str, int], list[tuple[FloatArray, FloatArray]]] = {}
        self.notes: list[str] = []
        self.imputing = False
        n = len(data.person_ids)
        analysed = np.zeros(n, dtype=bool)
        for follow_up in data.follow_ups:
            analysed |= follow_up.due
        self.rows = np.flatnonzero(analysed)
        self.follow_ups = {f.time_point: f for f in data.follow_ups}
        self.modelled: dict[str, list[int]] = {}
        self.counts: dict[str, tuple[npt.NDArray[np.int64], int]] = {}
        for follow_up in data.follow_ups:
            exposed = follow_up.exposure.exposed[follow_up.due]
            per_category = exposed.sum(axis=0).astype(np.int64)
            total = int(follow_up.due.sum())
            self.counts[follow_up.time_point] = (per_category, total)
            self.modelled[follow_up.time_point] = [
                s
                for s in range(len(self.categories))
                if min(per_category[s], total - per_category[s]) >= plan.min_cell
            ]
        self.cells, self.cell_of = _profile_cells(
            None if data.profile is None else data.profile.iloc[self.rows], len(self.rows)
        )

    # -- data sets -------------------------------------------------------------------------

    def frame(self) -> pd.DataFrame:
        """The analysed persons' confounders, follow-up scores and exposures (one column
        each), before imputation."""
        columns: dict[str, FloatArray] = {}
        confounders = self.data.confounders.reset_index(drop=True).astype(float)
        for name in self.names:
            columns[name] = confounders[name].to_numpy()[self.rows]
        for follow_up in self.data.follow_ups:
            tp = follow_up.time_point
            for score in self.scores:
                values = np.asarray(follow_up.outcomes[score], dtype=float)
                columns[_column_name(tp, "y", score)] = values[self.rows]
            for s, category in enumerate(self.categories):
                columns[_column_name(tp, "a", category)] = follow_up.exposure.exposed[
                    self.rows, s
                ]
        frame = pd.DataFrame(columns)
        frame["_group"] = np.asarray(self.data.groups).astype(str)[self.rows]
        return frame

    def datasets(self, frame: pd.DataFrame) -> tuple[list[pd.DataFrame], pd.DataFrame]:
        """The data sets to analyse and the share missing per variable: the imputed ones
        (``multiple_imputation``; ``aipw_response`` when a confounder is missing — its
        imputed outcomes are then only used to impute the confounders and are set aside), or
        the data as they are."""
        numeric = [c for c in frame.columns if c != "_group"]
        method = self.plan.missing_data
        self.imputing = bool(
            self.plan.imputations >= 1
            and len(frame)
            and (
                method == "multiple_imputation"
                or (method == "aipw_response" and frame[self.names].isna().any().any())
            )
        )
        if self.imputing:
            if method == "aipw_response":
                # only the confounders are used from the imputed data sets: impute them from
                # each other, the exposures and the primary score at every follow-up
                primary = [
                    _column_name(f.time_point, "y", self.plan.primary_score)
                    for f in self.data.follow_ups
                ]
                numeric = [c for c in numeric if "|y|" not in c or c in primary]
            imputed = multiple_imputation(
                frame[[*numeric, "_group"]],
                columns=numeric,
                by="_group",
                m=self.plan.imputations,
                seed=self.plan.seed,
            )
            for column, groups in imputed.not_imputable.items():
                self.notes.append(
                    Note(
                        "not_imputable",
                        f"'{column}' could not be imputed in group(s) {', '.join(groups)}",
                        variable=column,
                        groups=list(groups),
                    )
                )
            return list(imputed.datasets), self.missing_shares(frame)
        return [frame], self.missing_shares(frame)

    def missing_shares(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Share missing per group: each confounder among the analysed persons (``baseline``)
        and each score at each follow-up among the persons due at it."""
        rows: list[dict[str, Any]] = []
        if frame.empty:
            return pd.DataFrame(rows, columns=["variable", "time_point", "group", "share_missing"])
        groups = frame["_group"]

        def add(variable: str, time_point: str, missing: pd.Series) -> None:
            for group, share in missing.groupby(groups[missing.index]).mean().items():
                rows.append({"variable": variable, "time_point": time_point,
                             "group": str(group), "share_missing": float(share)})  # fmt: skip

        for name in self.names:
            add(name, "baseline", frame[name].isna())
        for follow_up in self.data.follow_ups:
            due = pd.Series(follow_up.due[self.rows])
            for score in self.scores:
                column = frame[_column_name(follow_up.time_point, "y", score)]
                add(score, follow_up.time_point, column[due.to_numpy()].isna())
        return pd.DataFrame(rows, columns=["variable", "time_point", "group", "share_missing"])

    def design(
        self,
        base: FloatArray,
        keep: npt.NDArray[np.bool_],
        a: FloatArray,
        names: Sequence[str] | None = None,
    ) -> _Rows:
        """The rows ``keep``: a constant and the confounders that vary in them and are not a
        linear combination of others (e.g. a unit that is always one arm)."""
        return _design_rows(base, keep, a, self.names if names is None else names)

    def base_for(
        self, dataset: pd.DataFrame, follow_up: FollowUpData
    ) -> tuple[FloatArray, list[str]]:
        """The confounders of ``dataset`` and the follow-up's adjusters, with their names."""
        base = dataset[self.names].to_numpy(dtype=float)
        if follow_up.adjusters is None:
            return base, self.names
        names = self.names + [f"adjusted: {n}" for n in follow_up.adjuster_names]
        return np.column_stack([base, follow_up.adjusters[self.rows]]), names

    # -- one pass ----------------------------------------------------------------------------

    def fit(
        self,
        rows: _Rows,
        tp: str,
        scores: Sequence[str],
        outcomes: Mapping[str, FloatArray],
        contacts: FloatArray,
        key: tuple[Any, ...],
        diagnostics: bool,
    ) -> tuple[_Fitted, dict[str, _OutcomeFit]]:
        """Propensities (and their balance and overlap), then each score's outcome model
        and estimates, collected for pooling."""
        plan = self.plan
        a = rows.a
        usable = [
            s
            for s in self.modelled[tp]
            if min(a[:, s].sum(), len(a) - a[:, s].sum()) >= plan.min_cell
        ]
        fitted = _propensities(
            rows.x, a, usable, plan.bounds, self.starts, (*key, tp), plan.min_cell
        )
        for s, reason in fitted.failed.items():
            self.failures[(tp, s)] = reason
        if diagnostics:
            for s, e in fitted.scores.items():
                others = [o for o in range(a.shape[1]) if o != s]
                variables = np.column_stack([rows.x[:, 1:], a[:, others]])
                self.balance.setdefault((tp, s), []).append(_balance(variables, a, s, e))
                self.balance_names[(tp, s)] = [*rows.names] + [
                    self.categories[o] for o in others
                ]
                treated = a[:, s] > 0
                self.overlap.setdefault((tp, s), []).append((e[treated], e[~treated]))
                self.bounded.setdefault((tp, s), []).append(fitted.bounded[s])
        fits: dict[str, _OutcomeFit] = {}
        responding = plan.missing_data == "aipw_response"
        responses: dict[bytes, _Response | None] = {}  # scores answered by the same persons
        for score in scores:
            y = np.asarray(outcomes[score], dtype=float)[rows.keep]
            baseline = rows.column(self.data.baselines.get(score))
            observed = np.isfinite(y)
            if observed.sum() < 2 * plan.min_cell:
                self.notes.append(
                    Note(
                        "too_few_answers",
                        f"{score} at {tp}: too few answers to analyse",
                        score=score,
                        time_point=tp,
                    )
                )
                continue
            response = None
            if responding:
                signature = observed.tobytes()
                if signature not in responses:
                    responses[signature] = _response_model(
                        rows.x, a, observed, self.starts, ("response", score, tp)
                    )
                response = responses[signature]
                if response is None and not observed.all():
                    self.notes.append(
                        Note(
                            "no_response_model",
                            f"{score} at {tp}: no response model could be fitted; persons who "
                            "did not answer are left out",
                            score=score,
                            time_point=tp,
                        )
                    )
                    fit = _outcome(
                        rows.x[observed], a[observed], y[observed],
                        None if baseline is None else baseline[observed],
                        _subset(fitted, observed),
                    )  # fmt: skip
                    fit.subset = observed
                    fits[score] = fit
                    for s in fit.aipw:
                        self.collect.add(("aipw", score, tp, s), fit.aipw[s], len(y))
                    continue
            primary = score == plan.primary_score and tp == plan.primary_time_point
            fit = _outcome(
                rows.x, a, y, baseline, fitted, response,
                deltas=plan.mnar_deltas if primary and response is not None else (),
                worse=_worse(self.data.directions.get(score, "lower_is_better")),
            )  # fmt: skip
            for (scope, delta, s), result in fit.mnar.items():
                self.collect.add(("mnar", scope, delta, s), result, len(y))
            fits[score] = fit
            n = len(y)
            self.sds.setdefault((score, tp), []).append(fit.sd)
            self.collect.sizes[("n", score, tp)] = n
            for s in fit.aipw:  # a service whose column repeats another's has none
                self.collect.add(("aipw", score, tp, s), fit.aipw[s], n)
                self.collect.add(("outcome_regression", score, tp, s), fit.regression[s], n)
                if s in fit.ipw:
                    self.collect.add(("ipw", score, tp, s), fit.ipw[s], n)
            dose = _dose(rows.x[observed], a[observed], contacts[rows.keep][observed],
                         y[observed], usable)  # fmt: skip
            for s, result in dose.items():
                self.collect.add(("dose", score, tp, s), result, n)
        return fitted, fits

    def primary_extras(
        self,
        m: int,
        rows: _Rows,
        fitted: _Fitted,
        fits: Mapping[str, _OutcomeFit],
        outcomes: Mapping[str, FloatArray],
        observed: pd.DataFrame,
    ) -> None:
        """At the primary follow-up: the client-guidance sums, the MNAR scenarios and the
        cost in the window."""
        plan = self.plan
        tp = plan.primary_time_point
        score = plan.primary_score
        main = fits.get(score)
        if main is None:
            return
        if main.subset is not None:  # only those who answered: no guidance, MNAR or cost
            self.notes.append(
                Note(
                    "no_guidance_figures",
                    f"{score} at {tp}: no client-guidance or cost figures",
                    score=score,
                    time_point=tp,
                )
            )
            return
        cell = self.cell_of[rows.keep]
        inside = cell >= 0
        if m == 0:
            self.guidance_count = np.bincount(cell[inside], minlength=len(self.cells))
            self.guidance_exposed = np.zeros((len(self.cells), len(self.categories)), np.int64)
            for s in range(len(self.categories)):
                self.guidance_exposed[:, s] = np.bincount(
                    cell[inside], weights=rows.a[inside, s], minlength=len(self.cells)
                ).astype(np.int64)
        for s, pseudo in main.pseudo.items():
            self.guidance_seen[s] = self.guidance_seen.get(s, 0) + 1
            self.guidance_sums[m, :, s] = np.bincount(
                cell[inside], weights=pseudo[inside], minlength=len(self.cells)
            )
            self.guidance_squares[m, :, s] = np.bincount(
                cell[inside], weights=pseudo[inside] ** 2, minlength=len(self.cells)
            )
        if self.imputing and plan.missing_data == "multiple_imputation":
            y = np.asarray(outcomes[score], dtype=float)[rows.keep]
            column = observed[_column_name(tp, "y", score)].to_numpy(dtype=float)
            was_missing = ~np.isfinite(column[rows.keep])
            worse = _worse(self.data.directions.get(score, "lower_is_better"))
            baseline = rows.column(self.data.baselines.get(score))
            for delta in plan.mnar_deltas:
                everyone = _outcome(rows.x, rows.a, y + worse * delta * was_missing, baseline,
                                    fitted)  # fmt: skip
                for s in fitted.scores:
                    self.collect.add(("mnar", "all", delta, s), everyone.aipw[s], len(y))
                    shift = was_missing & (rows.a[:, s] > 0)
                    exposed = _outcome(rows.x, rows.a, y + worse * delta * shift, baseline,
                                       fitted)  # fmt: skip
                    self.collect.add(("mnar", "exposed", delta, s), exposed.aipw[s], len(y))
        cost = self.follow_ups[tp].exposure.cost[self.rows][rows.keep]
        known = np.isfinite(cost)
        if known.sum() < 2:
            return
        part = _Rows(known, rows.x[known], rows.a[known], rows.names)
        cost_fit = _outcome(part.x, part.a, cost[known], None, _subset(fitted, known))
        for score_name, fit in fits.items():
            if fit.subset is not None:
                continue
            for s, pseudo_cost in cost_fit.pseudo.items():
                pseudo_score = fit.pseudo.get(s)
                if pseudo_score is not None:
                    self.cost_pairs.setdefault((score_name, s), []).append(
                        (pseudo_cost, pseudo_score[known])
                    )

    # -- the whole run -------------------------------------------------------------------------

    def run(self) -> Attribution:
        plan = self.plan
        frame = self.frame()
        datasets, missing = self.datasets(frame)
        self.guidance_sums = np.zeros((len(datasets), len(self.cells), len(self.categories)))
        self.guidance_squares = np.zeros_like(self.guidance_sums)
        self.guidance_count = np.zeros(len(self.cells), dtype=np.int64)
        self.guidance_seen: dict[int, int] = {}
        self.guidance_exposed = np.zeros((len(self.cells), len(self.categories)), np.int64)
        for m, dataset in enumerate(datasets):
            for follow_up in self.data.follow_ups:
                tp = follow_up.time_point
                base, names = self.base_for(dataset, follow_up)
                due = follow_up.due[self.rows]
                exposed = follow_up.exposure.exposed[self.rows]
                contacts = follow_up.exposure.contacts[self.rows]
                source = dataset if plan.missing_data == "multiple_imputation" else frame
                outcomes = {
                    score: source[_column_name(tp, "y", score)].to_numpy(dtype=float)
                    for score in self.scores
                }
                complete = due & np.isfinite(base).all(axis=1)
                primary = tp == plan.primary_time_point
                if plan.missing_data != "complete_cases":
                    rows = self.design(base, complete, exposed, names)
                    if len(rows.x) < 2:
                        continue
                    fitted, fits = self.fit(
                        rows, tp, self.scores, outcomes, contacts, ("mi",), diagnostics=True
                    )
                    if primary:
                        self.primary_extras(m, rows, fitted, fits, outcomes, frame)
                    continue
                for score in self.scores:  # complete cases, per score
                    keep = complete & np.isfinite(outcomes[score])
                    rows = self.design(base, keep, exposed, names)
                    if len(rows.x) < 2:
                        continue
                    is_primary = primary and score == plan.primary_score
                    fitted, fits = self.fit(
                        rows, tp, [score], outcomes, contacts, ("cc", score),
                        diagnostics=score == plan.primary_score,
                    )  # fmt: skip
                    if is_primary:
                        self.primary_extras(m, rows, fitted, fits, outcomes, frame)
        estimates = _estimate_table(self, frame)
        balance, overlap, bins = _diagnostics(self)
        sensitivity = _sensitivity(self, frame) + _mnar_rows(self)
        guidance = None
        if len(self.cells):
            guidance = GuidanceCells(
                cells=self.cells,
                categories=self.categories,
                modelled=tuple(  # estimated in every data set
                    self.guidance_seen.get(s, 0) == len(datasets)
                    for s in range(len(self.categories))
                ),
                count=self.guidance_count.astype(np.int64),
                exposed=self.guidance_exposed,
                sums=self.guidance_sums,
                squares=self.guidance_squares,
                level=plan.level,
            )
        for (tp, s), reason in sorted(self.failures.items()):
            self.notes.append(
                Note(
                    "propensity_not_converged",
                    f"{self.categories[s]} at {tp}: the propensity model did not converge "
                    f"({reason})",
                    category=self.categories[s],
                    time_point=tp,
                    detail=reason,
                )
            )
        return Attribution(
            plan=plan,
            categories=self.categories,
            scores=tuple(self.scores),
            time_points=tuple(self.follow_ups),
            estimates=estimates,
            balance=balance,
            overlap=overlap,
            overlap_bins=bins,
            cost=_cost_table(self, estimates),
            dose=_dose_table(self),
            sensitivity=pd.DataFrame(sensitivity, columns=SENSITIVITY_COLUMNS),
            missing=missing,
            guidance=guidance,
            notes=tuple(self.notes),
            imputations=len(datasets) if self.imputing else 0,
        )


def attribute(data: AttributionData, plan: AttributionPlan) -> Attribution:
    """The whole analysis (see the module docstring)."""
    n = len(data.person_ids)
    time_points = [f.time_point for f in data.follow_ups]
    if plan.primary_score not in data.scores:
        raise AttributionError(f"the primary score '{plan.primary_score}' is not analysed")
    if plan.primary_time_point not in time_points:
        raise AttributionError(f"the primary time point '{plan.primary_time_point}' is unknown")
    if len(data.groups) != n or len(data.confounders) != n:
        raise AttributionError("the person frames are not aligned")
    for follow_up in data.follow_ups:
        if follow_up.exposure.exposed.shape != (n, len(data.categories)):
            raise AttributionError("the exposure matrix is not aligned with the persons")
        missing = [s for s in data.scores if s not in follow_up.outcomes]
        if missing:
            raise AttributionError(f"no values of {', '.join(missing)} at {follow_up.time_point}")
    # Many small matrix products: BLAS threads only compete with each other and with the web
    # server's workers for the cores (measured: X'v at 25 000 rows 12 ms with threads on a busy
    # two-core machine, 0.3 ms without), so the analysis runs single-threaded.
    with threadpool_limits(limits=1, user_api="blas"):
        return _Run(data, plan).run()


def _subset(fitted: _Fitted, keep: npt.NDArray[np.bool_]) -> _Fitted:
    return _Fitted(
        {s: e[keep] for s, e in fitted.scores.items()}, dict(fitted.bounded), dict(fitted.failed)
    )


def _estimate_table(run: _Run, observed: pd.DataFrame) -> pd.DataFrame:
    data, plan, collect = run.data, run.plan, run.collect
    rows = []
    for follow_up in data.follow_ups:
        tp = follow_up.time_point
        per_category, total = run.counts[tp]
        due = follow_up.due[run.rows]
        exposed = follow_up.exposure.exposed[run.rows]
        for score in data.scores:
            sd_values = run.sds.get((score, tp), [])
            sd = float(np.mean(sd_values)) if sd_values else math.nan
            y_observed = observed[_column_name(tp, "y", score)].to_numpy(dtype=float)
            answered = due & np.isfinite(y_observed)
            family = (
                "primary"
                if score == plan.primary_score and tp == plan.primary_time_point
                else "secondary"
            )
            for s, category in enumerate(data.categories):
                if s not in run.modelled[tp]:
                    reason: str | None = "small_cell"
                else:
                    reason = run.failures.get((tp, s))
                common = {
                    "category": category,
                    "score": score,
                    "time_point": tp,
                    "family": family,
                    "n": collect.sizes.get(("n", score, tp), total),
                    "n_exposed": int(per_category[s]),
                    "n_unexposed": total - int(per_category[s]),
                    "n_bounded": (
                        float(np.mean(run.bounded[(tp, s)]))
                        if (tp, s) in run.bounded
                        else math.nan
                    ),
                    "sd": sd,
                }
                for method in ("aipw", "outcome_regression", "ipw"):
                    pooled = None if reason else collect.pooled((method, score, tp, s), plan.level)
                    row = dict(common, method=method, reason=reason)
                    if pooled is None:
                        row["reason"] = reason or "not_estimable"
                        pooled = causal.normal_estimate(math.nan, math.nan, plan.level)
                    row.update(pooled.to_row())
                    if method == "aipw":
                        point, limit = causal.e_value(
                            pooled.estimate, pooled.ci_low, pooled.ci_high, sd
                        )
                        row.update(e_value=point, e_value_ci=limit)
                    rows.append(row)
                plain_difference = (
                    _unadjusted(y_observed[answered], exposed[answered, s], plan.level)
                    if s in run.modelled[tp]
                    else causal.normal_estimate(math.nan, math.nan, plan.level)
                )
                n_exposed = int(exposed[answered, s].sum())
                rows.append(
                    dict(
                        common,
                        method="unadjusted",
                        reason=None if s in run.modelled[tp] else "small_cell",
                        n=int(answered.sum()),
                        n_exposed=n_exposed,
                        n_unexposed=int(answered.sum()) - n_exposed,
                        **plain_difference.to_row(),
                    )
                )
    table = pd.DataFrame(rows).reindex(columns=ESTIMATE_COLUMNS)
    aipw = table["method"] == "aipw"
    for family in ("primary", "secondary"):
        chosen = aipw & (table["family"] == family)
        table.loc[chosen, "p_adjusted"] = causal.adjust_p_values(
            table.loc[chosen, "p_value"].to_numpy(dtype=float), plan.multiplicity
        )
    return table


def _diagnostics(run: _Run) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Balance (SMDs averaged over the data sets), overlap quantiles and histogram shares."""
    categories = run.categories
    balance_rows = []
    for (tp, s), pairs in run.balance.items():
        before = np.mean([b for b, _ in pairs], axis=0)
        after = np.mean([a for _, a in pairs], axis=0)
        for name, b, a in zip(run.balance_names[(tp, s)], before, after, strict=True):
            balance_rows.append(
                {"category": categories[s], "time_point": tp, "variable": name,
                 "smd_before": float(b), "smd_after": float(a)}
            )  # fmt: skip
    quantile_names = [f"p{round(q * 100)}" for q in _QUANTILES]
    overlap_rows = []
    bin_rows = []
    edges = np.linspace(0.0, 1.0, HISTOGRAM_BINS + 1)
    for (tp, s), pairs in run.overlap.items():
        shares = []
        for group, position in (("exposed", 0), ("unexposed", 1)):
            values = np.concatenate([pair[position] for pair in pairs])
            shares.append(np.histogram(values, bins=edges)[0] / max(len(values), 1))
            if len(values) == 0:
                continue
            quantiles = np.quantile(values, _QUANTILES)
            row: dict[str, Any] = {"category": categories[s], "time_point": tp,
                                   "group": group, "n": len(values) // len(pairs)}  # fmt: skip
            row.update({name: float(v) for name, v in zip(quantile_names, quantiles,
                                                          strict=True)})  # fmt: skip
            overlap_rows.append(row)
        for b in range(HISTOGRAM_BINS):
            bin_rows.append(
                {"category": categories[s], "time_point": tp, "low": float(edges[b]),
                 "high": float(edges[b + 1]), "share_exposed": float(shares[0][b]),
                 "share_unexposed": float(shares[1][b])}
            )  # fmt: skip
    balance = pd.DataFrame(
        balance_rows, columns=["category", "time_point", "variable", "smd_before", "smd_after"]
    )
    balance["imbalanced_after"] = balance["smd_after"].abs() > SMD_THRESHOLD
    overlap = pd.DataFrame(
        overlap_rows, columns=["category", "time_point", "group", "n", *quantile_names]
    )
    bins = pd.DataFrame(
        bin_rows,
        columns=["category", "time_point", "low", "high", "share_exposed", "share_unexposed"],
    )
    return balance, overlap, bins


def _cost_table(run: _Run, estimates: pd.DataFrame) -> pd.DataFrame:
    """Incremental cost per point of improvement at the primary follow-up (module docstring).
    Per imputed data set the pair (ΔC, ΔE) and its covariance from the pseudo-outcomes; pooled
    by Rubin's rules for a vector (T = Ū + (1 + 1/m)·B); Fieller's interval from T."""
    plan = run.plan
    tp = plan.primary_time_point
    rows = []
    aipw = estimates[(estimates["method"] == "aipw") & (estimates["time_point"] == tp)]
    for record in aipw.to_dict("records"):
        s = run.categories.index(record["category"])
        score = record["score"]
        sign = -_worse(run.data.directions.get(score, "lower_is_better"))
        limits = sorted((sign * record["ci_low"], sign * record["ci_high"]))
        row: dict[str, Any] = {
            "category": record["category"],
            "score": score,
            "time_point": tp,
            "n_with_cost": 0,
            "delta_cost": math.nan,
            "delta_cost_ci_low": math.nan,
            "delta_cost_ci_high": math.nan,
            "improvement": sign * record["estimate"],
            "improvement_ci_low": limits[0],
            "improvement_ci_high": limits[1],
            "cost_per_point": math.nan,
            "ci_low": math.nan,
            "ci_high": math.nan,
            "status": "not_estimated",
        }
        found = run.cost_pairs.get((score, s), [])
        if found and math.isfinite(record["estimate"]):
            means = np.array([[c.mean(), e.mean()] for c, e in found])
            within = np.mean(
                [np.cov(np.vstack([c, e]), ddof=1) / len(c) for c, e in found], axis=0
            )
            m = len(found)
            total = within + (1 + 1 / m) * np.cov(means.T, ddof=1) if m > 1 else within
            delta_cost, delta_score = (float(v) for v in means.mean(axis=0))
            cost = causal.normal_estimate(delta_cost, math.sqrt(max(total[0, 0], 0.0)),
                                          plan.level)  # fmt: skip
            row.update(
                n_with_cost=len(found[0][0]),
                delta_cost=delta_cost,
                delta_cost_ci_low=cost.ci_low,
                delta_cost_ci_high=cost.ci_high,
            )
            if not all(math.isfinite(v) for v in limits) or limits[0] <= 0 <= limits[1]:
                row["status"] = "interval_includes_zero"
            elif limits[1] < 0:
                row["status"] = "no_improvement"
            elif delta_cost <= 0:
                row["status"] = "lower_cost"
            else:
                improvement = sign * delta_score
                row["cost_per_point"] = delta_cost / improvement
                interval = fieller_interval(
                    delta_cost,
                    improvement,
                    float(total[0, 0]),
                    float(total[1, 1]),
                    sign * float(total[0, 1]),
                    plan.level,
                )
                if interval is not None:
                    row["ci_low"], row["ci_high"] = interval
                row["status"] = "shown"
        rows.append(row)
    return pd.DataFrame(
        rows,
        columns=[
            "category", "score", "time_point", "n_with_cost", "delta_cost", "delta_cost_ci_low",
            "delta_cost_ci_high", "improvement", "improvement_ci_low", "improvement_ci_high",
            "cost_per_point", "ci_low", "ci_high", "status",
        ],
    )  # fmt: skip


def _dose_table(run: _Run) -> pd.DataFrame:
    rows = []
    for tp in run.follow_ups:
        for score in run.scores:
            for s in run.modelled[tp]:
                pooled = run.collect.pooled(("dose", score, tp, s), run.plan.level)
                if pooled is None:
                    continue
                rows.append(
                    {"category": run.categories[s], "score": score, "time_point": tp,
                     "per_contacts": DOSE_UNIT, "estimate": pooled.estimate,
                     "ci_low": pooled.ci_low, "ci_high": pooled.ci_high,
                     "p_value": pooled.p_value, "n_exposed": int(run.counts[tp][0][s])}
                )  # fmt: skip
    return pd.DataFrame(
        rows,
        columns=["category", "score", "time_point", "per_contacts", "estimate", "ci_low",
                 "ci_high", "p_value", "n_exposed"],
    )  # fmt: skip


def _mnar_rows(run: _Run) -> list[dict[str, Any]]:
    plan = run.plan
    per_category, total = run.counts[plan.primary_time_point]
    rows = []
    for delta in plan.mnar_deltas:
        for scope in ("all", "exposed"):
            for s in run.modelled[plan.primary_time_point]:
                pooled = run.collect.pooled(("mnar", scope, delta, s), plan.level)
                if pooled is None:
                    continue
                rows.append(
                    {"category": run.categories[s], "analysis": f"mnar_{scope}",
                     "delta": delta, "n": total, "n_exposed": int(per_category[s]),
                     "n_unexposed": total - int(per_category[s]), "reason": None,
                     **pooled.to_row()}
                )  # fmt: skip
    return rows


def _sensitivity(run: _Run, observed: pd.DataFrame) -> list[dict[str, Any]]:
    """The primary question's outcome regression and IPW (pooled), and AIPW without
    imputation on complete cases, without proxy answers and on web answers only."""
    data, plan = run.data, run.plan
    tp, score = plan.primary_time_point, plan.primary_score
    chosen = run.modelled[tp]
    rows: list[dict[str, Any]] = []
    n = run.collect.sizes.get(("n", score, tp), 0)
    per_category, total = run.counts[tp]
    for method in ("outcome_regression", "ipw"):
        for s in chosen:
            pooled = run.collect.pooled((method, score, tp, s), plan.level)
            if pooled is None:
                continue
            rows.append(
                {"category": run.categories[s], "analysis": method, "delta": None, "n": n,
                 "n_exposed": int(per_category[s]), "n_unexposed": total - int(per_category[s]),
                 "reason": None, **pooled.to_row()}
            )  # fmt: skip
    follow_up = run.follow_ups[tp]
    base, names = run.base_for(observed, follow_up)
    y = observed[_column_name(tp, "y", score)].to_numpy(dtype=float)
    due = follow_up.due[run.rows]
    complete = due & np.isfinite(y) & np.isfinite(base).all(axis=1)
    subsets: list[tuple[str, npt.NDArray[np.bool_]]] = []
    if plan.missing_data != "complete_cases":
        subsets.append(("complete_cases", complete))
    if follow_up.proxy is not None:
        proxy = pd.Series(np.asarray(follow_up.proxy, dtype=object)[run.rows], dtype="boolean")
        own = (~proxy).fillna(False).to_numpy(dtype=bool)
        if (complete & ~own).any():
            subsets.append(("without_proxy", complete & own))
    if follow_up.mode is not None:
        mode = pd.Series(np.asarray(follow_up.mode, dtype=object)[run.rows]).astype(str)
        web = mode.isin(["web", "self"]).to_numpy()
        if (complete & ~web).any():
            subsets.append(("web_only", complete & web))
    exposed_all = follow_up.exposure.exposed[run.rows]
    for analysis, keep in subsets:
        if not keep.any():  # nobody to analyse yet (e.g. no follow-up answered)
            continue
        part = run.design(base, keep, exposed_all, names)
        usable = [
            s for s in chosen
            if min(part.a[:, s].sum(), len(part.a) - part.a[:, s].sum()) >= plan.min_cell
        ]  # fmt: skip
        fitted = _propensities(
            part.x, part.a, usable, plan.bounds, run.starts, (analysis, tp), plan.min_cell
        )
        fit = _outcome(part.x, part.a, y[keep], part.column(data.baselines.get(score)), fitted)
        for s in chosen:
            exposed = int(part.a[:, s].sum())
            row: dict[str, Any] = {
                "category": run.categories[s], "analysis": analysis, "delta": None,
                "n": int(keep.sum()), "n_exposed": exposed,
                "n_unexposed": int(keep.sum()) - exposed, "reason": None,
            }  # fmt: skip
            if s in fit.aipw:
                row.update(
                    causal.normal_estimate(
                        fit.aipw[s].estimate, math.sqrt(fit.aipw[s].variance), plan.level
                    ).to_row()
                )
            else:
                row.update(causal.normal_estimate(math.nan, math.nan, plan.level).to_row())
                row["reason"] = fitted.failed.get(s, "small_cell")
            rows.append(row)
    return rows
