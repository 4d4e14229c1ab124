"""Older adults pilot: which services reduce loneliness and insecurity, adjusted for case mix.

Pure functions (stdlib, numpy, pandas, scipy, statsmodels) returning frozen result objects with
JSON-ready ``to_dict()``.

Inputs
------
``persons``
    One row per person: ``person_id`` plus covariate columns (e.g. ``age``, ``sex``,
    ``lives_alone``). Numeric covariates are used as they are, text/boolean ones as 0/1
    indicators (first level in sorted order = reference). A person with a missing covariate is
    left out of the models (complete case; the number is reported in ``notes``).
``outcomes``
    Long frame, one row per person × time point × score: ``person_id``, ``time_point``,
    ``score`` (e.g. ``"ucla3.total"``, ``"djg6.emotional"``, ``"lonely1.lonely1"``,
    ``"insecurity.safe_daily"`` — whatever the caller uses, one score is analysed per call) and
    ``value``.
``exposures``
    One row per service episode: ``person_id``, ``service_type``, ``provider_sector``,
    ``contacts`` (may be missing) and ``cost`` (euros, may be missing). A person is *exposed*
    to a category (a service type, or a provider sector with ``by="provider_sector"``) when
    they have a row of it with ``contacts`` > 0 or missing; the caller selects the episodes
    that belong to the follow-up window. Persons may be exposed to several categories.

Methods (``shared/health-economics.md``, "Before–after effectiveness of several services")
------------------------------------------------------------------------------------------
* **Change** = follow-up − baseline per person and follow-up time point; *reduction* means
  change in the good direction (``lower_is_better``: UCLA-3, DJG, lonely1; the insecurity item
  ``safe_daily`` is ``higher_is_better``).
* **Naive**: OLS ``change ~ 1 + exposed`` (the unadjusted difference in mean change; plus
  follow-up indicators when pooled).
* **Adjusted** (regression adjustment): OLS ``change ~ 1 + Σ exposed_c + baseline + covariates
  (+ follow-up indicators when pooled)``, all categories with enough exposed persons in one
  model, with person-clustered standard errors (Liang & Zeger 1986; persons appear once per
  follow-up time point when the follow-ups are stacked). Adjusting for the baseline score
  removes the regression-to-the-mean bias of selecting the loneliest (Vickers & Altman 2001).
* **IPW** (a check): logistic propensity of being exposed to a category given the baseline score
  and covariates; stabilised ATE weights P(T)/e(x) and (1 − P(T))/(1 − e(x)) with e(x) bounded
  to [``trim``, 1 − ``trim``]; the effect is the weighted difference in mean change (WLS with
  person-clustered SEs, which ignore the estimation of the propensity and so are conservative
  for the ATE; Lunceford & Davidian 2004; Austin & Stuart 2015). The balance table gives the
  standardised mean differences before and after weighting (denominator: unweighted pooled SD)
  and flags |SMD| ≥ 0.1.
* **Mixed model** over all time points (baseline included): ``value ~ time + Σ (exposed_c +
  exposed_c × time) + covariates`` with a random intercept and slope on time per person
  (``statsmodels`` MixedLM, REML; Fitzmaurice, Laird & Ware, *Applied Longitudinal Analysis*).
  The exposed × time coefficient is the difference in the yearly rate of change; its implied
  effect at each follow-up is coefficient × years.
* **Cost per one-point reduction** = mean cost of the category per exposed person / adjusted
  reduction (pooled over follow-ups); an interval by dividing by the reduction's confidence
  limits when the whole interval shows a reduction (cost treated as fixed), otherwise the
  upper limit is unbounded (``None``). No reduction → no ratio.

Model warnings (convergence, separation, singular covariances) are caught and reported in the
result's ``notes`` instead of being raised or printed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import statsmodels.api as sm
from scipy import stats as sps
from scipy.special import expit, ndtr
from statsmodels.tools.sm_exceptions import PerfectSeparationError, PerfectSeparationWarning

from vaikuttavuus.domain.stats import (
    covariate_design,
    mean_ci,
    normal_quantile,
    plain,
    standardised_mean_difference,
)

__all__ = [
    "POOLED",
    "SMD_THRESHOLD",
    "AnalysisData",
    "LonelinessError",
    "MixedModelEffects",
    "ServiceEffects",
    "analysis_data",
    "mixed_model_effects",
    "service_effects",
]

Direction = Literal["lower_is_better", "higher_is_better"]
Grouping = Literal["service_type", "provider_sector"]
POOLED = "pooled"
"""The ``time_point`` label of estimates pooled over the follow-ups (stacked rows)."""
SMD_THRESHOLD = 0.1
_BASELINE_COLUMN = "baseline_score"


class LonelinessError(ValueError):
    """The data cannot be analysed as asked; the message names the problem."""


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise LonelinessError(f"{what} lacks column(s) {', '.join(missing)}")


def _caught(messages: list[str], caught: list[warnings.WarningMessage], context: str) -> None:
    for item in caught:
        text = f"{context}: {type(item.message).__name__}: {item.message}"
        if text not in messages:
            messages.append(text)


# --------------------------------------------------------------------------------------------
# Analysis data
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnalysisData:
    """Model-ready frames for one score.

    ``changes``: one row per person × follow-up with ``person_id``, ``time_point``,
    ``baseline_score``, ``follow_up``, ``change``, the covariate design columns (``terms``) and a
    0/1 column per category (``categories``, named by the category). ``long``: every time point
    (``time_point``, ``years``, ``value``) with the same person columns, for the mixed model.
    ``cost``: per person and category, the summed cost (``NaN`` when no cost is recorded).
    """

    score: str
    by: str
    baseline: str
    follow_ups: tuple[str, ...]
    categories: tuple[str, ...]
    terms: tuple[str, ...]
    changes: pd.DataFrame
    persons: pd.DataFrame
    cost: pd.DataFrame
    notes: tuple[str, ...]


def analysis_data(
    persons: pd.DataFrame,
    outcomes: pd.DataFrame,
    exposures: pd.DataFrame,
    *,
    score: str,
    baseline: str = "baseline",
    follow_ups: Sequence[str] = ("m6", "m12"),
    covariates: Sequence[str] = (),
    by: Grouping = "service_type",
) -> AnalysisData:
    """Join persons, outcomes and exposures into the frames the models use (see
    :class:`AnalysisData`); persons lacking a covariate or the baseline score are left out."""
    if by not in ("service_type", "provider_sector"):
        raise LonelinessError(f"'by' must be service_type or provider_sector, not '{by}'")
    _require(persons, ["person_id", *covariates], "the person frame")
    _require(outcomes, ["person_id", "time_point", "score", "value"], "the outcome frame")
    _require(exposures, ["person_id", by], "the exposure frame")
    if persons["person_id"].duplicated().any():
        raise LonelinessError("a person appears twice in the person frame")
    notes: list[str] = []
    data = outcomes[outcomes["score"] == score]
    if data.empty:
        raise LonelinessError(f"no outcome values for score '{score}'")
    if data.duplicated(["person_id", "time_point"]).any():
        raise LonelinessError(f"a person has two values of '{score}' at one time point")
    wide = data.assign(value=pd.to_numeric(data["value"], errors="coerce")).pivot(
        index="person_id", columns="time_point", values="value"
    )
    for tp in (baseline, *follow_ups):
        if tp not in wide.columns:
            raise LonelinessError(f"no values of '{score}' at time point '{tp}'")
    design = covariate_design(persons, covariates)
    design.index = persons["person_id"].to_numpy()
    complete = design.notna().all(axis=1)
    if (~complete).any():
        notes.append(f"{int((~complete).sum())} person(s) left out for missing covariates")
    base = persons[["person_id"]].set_index("person_id")
    base = base.join(design[complete], how="inner")
    base[_BASELINE_COLUMN] = wide[baseline].reindex(base.index)
    no_baseline = base[_BASELINE_COLUMN].isna()
    if no_baseline.any():
        notes.append(f"{int(no_baseline.sum())} person(s) left out for a missing baseline")
    base = base[~no_baseline]
    for term in list(design.columns):
        values = base[term].to_numpy(dtype=float)
        if len(base) and np.allclose(values, base[_BASELINE_COLUMN].to_numpy()):
            base = base.drop(columns=term)
            design = design.drop(columns=term)
            notes.append(f"covariate '{term}' is the baseline score, which is always adjusted for")
    episodes = exposures[exposures["person_id"].isin(base.index)].copy()
    if "contacts" in episodes.columns:
        contacts = pd.to_numeric(episodes["contacts"], errors="coerce")
        episodes = episodes[contacts.isna() | (contacts > 0)]
    episodes[by] = episodes[by].astype(str)
    categories = tuple(sorted(episodes[by].dropna().unique()))
    # 1.0 where the person has an episode of the category (what a crosstab of the episodes,
    # counts > 0, gives), built from the episodes' positions instead of a per-group count
    pairs = episodes[["person_id", by]].dropna()
    matrix = np.zeros((len(base), len(categories)))
    row = base.index.get_indexer(pairs["person_id"])
    column = pd.Index(list(categories)).get_indexer(pairs[by])
    inside = (row >= 0) & (column >= 0)
    matrix[row[inside], column[inside]] = 1.0
    exposed = pd.DataFrame(matrix, index=base.index, columns=pd.Index(list(categories), name=by))
    person_frame = base.join(exposed)
    if "cost" in episodes.columns:
        cost = (
            episodes.assign(cost=pd.to_numeric(episodes["cost"], errors="coerce"))
            .groupby(["person_id", by])["cost"]
            .sum(min_count=1)
            .unstack(by)
            .reindex(index=base.index, columns=list(categories))
        )
    else:
        cost = pd.DataFrame(np.nan, index=base.index, columns=list(categories))
    rows = []
    for tp in follow_ups:
        follow = wide[tp].reindex(person_frame.index)
        part = person_frame.assign(time_point=tp, follow_up=follow.to_numpy())
        rows.append(part[part["follow_up"].notna()])
    changes = pd.concat(rows).rename_axis("person_id").reset_index()
    changes["change"] = changes["follow_up"] - changes[_BASELINE_COLUMN]
    return AnalysisData(
        score=score,
        by=by,
        baseline=baseline,
        follow_ups=tuple(follow_ups),
        categories=categories,
        terms=tuple(map(str, design.columns)),
        changes=changes,
        persons=person_frame.rename_axis("person_id").reset_index(),
        cost=cost.rename_axis("person_id"),
        notes=tuple(notes),
    )


# --------------------------------------------------------------------------------------------
# Estimates
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Estimate:
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float


def _coefficient(result: Any, position: int, z: float) -> _Estimate:
    """The coefficient at ``position`` of the design (a Wald interval and a normal p-value:
    2·Φ(−|b|/se), what ``scipy.stats.norm.sf`` computes, without its per-call overhead)."""
    estimate = float(result.params[position])
    se = float(result.bse[position])
    p_value = float(2 * ndtr(-(abs(estimate) / se))) if se > 0 else math.nan
    return _Estimate(estimate, se, estimate - z * se, estimate + z * se, p_value)


def _fit_ols(
    y: npt.NDArray[np.float64],
    exog: npt.NDArray[np.float64],
    codes: npt.NDArray[np.intp],
    weights: npt.NDArray[np.float64] | None,
    notes: list[str],
    context: str,
) -> Any:
    """OLS/WLS with person-clustered covariance (normal reference distribution); ``codes``
    are the person clusters as integer codes (``pandas.factorize``)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = sm.OLS(y, exog) if weights is None else sm.WLS(y, exog, weights=weights)
        result = model.fit(cov_type="cluster", cov_kwds={"groups": codes}, use_t=False)
    _caught(notes, caught, context)
    return result


def _rank_ok(exog: npt.NDArray[np.float64]) -> bool:
    return int(np.linalg.matrix_rank(exog)) == exog.shape[1]


def _design(*columns: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """A constant followed by ``columns``, as the float matrix (column-major, like a
    DataFrame's values) that ``sm.add_constant`` of a frame of the same columns gives."""
    n = len(columns[0]) if columns else 0
    matrix = np.empty((n, len(columns) + 1), order="F")
    matrix[:, 0] = 1.0
    for position, values in enumerate(columns, start=1):
        matrix[:, position] = values
    return matrix


class _Period:
    """The rows of one follow-up (or of all of them, pooled) and what every model of it
    shares: the change, the person clusters, the follow-up indicators and the person counts."""

    def __init__(self, time_point: str, part: pd.DataFrame, follow_ups: Sequence[str]) -> None:
        self.time_point = time_point
        self.part = part
        self.y = part["change"].to_numpy(dtype=float)
        person = part["person_id"]
        self.codes = pd.factorize(person.to_numpy())[0]
        self.time_terms: list[npt.NDArray[np.float64]] = (
            [
                (part["time_point"] == tp).astype(float).to_numpy(dtype=float)
                for tp in follow_ups[1:]
            ]
            if time_point == POOLED
            else []
        )
        self.persons = part.drop_duplicates("person_id")
        self.person_ids = person.to_numpy()
        self._exposed: dict[str, int] = {}

    def column(self, name: str) -> npt.NDArray[np.float64]:
        return self.part[name].to_numpy(dtype=float)

    def row(self, category: str, method: str, est: _Estimate) -> dict[str, Any]:
        return {
            "category": category,
            "time_point": self.time_point,
            "method": method,
            "estimate": est.estimate,
            "se": est.se,
            "ci_low": est.ci_low,
            "ci_high": est.ci_high,
            "p_value": est.p_value,
            "n": len(self.part),
            "n_persons": len(self.persons),
            "n_exposed": self.exposed(category),
        }

    def exposed(self, category: str) -> int:
        """Persons of these rows exposed to ``category``."""
        if category not in self._exposed:
            self._exposed[category] = int((self.persons[category] > 0).sum())
        return self._exposed[category]


@dataclass(frozen=True)
class ServiceEffects:
    """Effects of each category (service type or provider sector) on the change of one score.

    ``estimates``: one row per ``category`` × ``time_point`` (each follow-up and ``pooled``) ×
    ``method`` (``naive``, ``adjusted``, ``ipw``) with ``estimate`` (exposed − unexposed mean
    change, in score points), ``se``, ``ci_low``, ``ci_high``, ``p_value``, ``n`` (rows),
    ``n_persons``, ``n_exposed`` (persons). ``descriptives``: per category (plus ``none`` = no
    service of this grouping, and ``all``) and follow-up: ``n``, mean baseline, mean change and
    its t interval. ``balance``: per category and variable, ``smd_before``, ``smd_after`` and
    ``imbalanced_before``/``imbalanced_after`` (|SMD| ≥ 0.1; after-weighting values are
    ``NaN``/``None`` when the propensity model could not be used). ``cost_per_point``: per category,
    ``n_with_cost``, ``mean_cost``, ``reduction`` (adjusted, pooled), ``cost_per_point`` and its
    interval. ``skipped``: categories with too few exposed or unexposed persons.
    """

    score: str
    by: str
    direction: Direction
    baseline: str
    follow_ups: tuple[str, ...]
    covariates: tuple[str, ...]
    estimates: pd.DataFrame
    descriptives: pd.DataFrame
    balance: pd.DataFrame
    cost_per_point: pd.DataFrame
    skipped: tuple[str, ...]
    notes: tuple[str, ...]
    level: float

    def estimate(self, category: str, method: str, time_point: str = POOLED) -> pd.Series:
        rows = self.estimates[
            (self.estimates["category"] == category)
            & (self.estimates["method"] == method)
            & (self.estimates["time_point"] == time_point)
        ]
        if rows.empty:
            raise KeyError((category, method, time_point))
        return rows.iloc[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "by": self.by,
            "direction": self.direction,
            "baseline": self.baseline,
            "follow_ups": list(self.follow_ups),
            "covariates": list(self.covariates),
            "level": self.level,
            "estimates": plain(self.estimates),
            "descriptives": plain(self.descriptives),
            "balance": plain(self.balance),
            "cost_per_point": plain(self.cost_per_point),
            "skipped": list(self.skipped),
            "notes": list(self.notes),
        }


def _descriptives(data: AnalysisData, level: float) -> pd.DataFrame:
    rows = []
    frame = data.changes
    categories = list(data.categories)
    any_exposed = (
        frame[categories].sum(axis=1) > 0 if categories else pd.Series(False, index=frame.index)
    )
    groups: list[tuple[str, pd.Series]] = [(c, frame[c] > 0) for c in categories]
    groups += [("none", ~any_exposed), ("all", pd.Series(True, index=frame.index))]
    for name, mask in groups:
        for tp in data.follow_ups:
            part = frame[mask & (frame["time_point"] == tp)]
            base = mean_ci(part[_BASELINE_COLUMN], level)
            change = mean_ci(part["change"], level)
            rows.append(
                {
                    "category": name,
                    "time_point": tp,
                    "n": change.n,
                    "baseline_mean": base.mean,
                    "change_mean": change.mean,
                    "change_ci_low": change.ci_low,
                    "change_ci_high": change.ci_high,
                }
            )
    return pd.DataFrame(rows)


def _flag(smd: float) -> bool | None:
    """|SMD| ≥ 0.1, or ``None`` when the SMD could not be computed."""
    return None if math.isnan(smd) else bool(abs(smd) >= SMD_THRESHOLD)


def _propensity_design(persons: pd.DataFrame, terms: Sequence[str]) -> npt.NDArray[np.float64]:
    """The propensity models' design: a constant, the baseline score and the covariates."""
    return _design(*(persons[name].to_numpy(dtype=float) for name in (_BASELINE_COLUMN, *terms)))


def _propensity(
    persons: pd.DataFrame,
    category: str,
    exog: npt.NDArray[np.float64],
    full_rank: bool,
    trim: float,
    notes: list[str],
) -> npt.NDArray[np.float64] | None:
    """Stabilised ATE weights per person (aligned with ``persons``), or None when the
    propensity model cannot be fitted. ``exog`` is :func:`_propensity_design` (the same for
    every category) and ``full_rank`` whether its columns are independent."""
    treated = persons[category].to_numpy(dtype=float)
    if not full_rank:
        notes.append(f"ipw {category}: the propensity covariates are collinear; skipped")
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit = sm.Logit(treated, exog).fit(disp=0, maxiter=200)
        except (np.linalg.LinAlgError, ValueError, PerfectSeparationError) as error:
            notes.append(f"ipw {category}: the propensity model failed ({error}); skipped")
            return None
    converged = bool(fit.mle_retvals.get("converged", True))
    if not converged or any(issubclass(w.category, PerfectSeparationWarning) for w in caught):
        notes.append(
            f"ipw {category}: the propensity model did not converge; the covariates may "
            "separate exposed from unexposed persons (no overlap); skipped"
        )
        return None
    _caught(notes, caught, f"ipw {category} propensity")
    raw = expit(exog @ np.asarray(fit.params, dtype=float))
    score = np.clip(raw, trim, 1 - trim)
    bounded = int(np.sum(raw != score))
    if bounded:
        notes.append(
            f"ipw {category}: {bounded} propensity score(s) bounded to [{trim}, {1 - trim}]"
        )
    share = float(treated.mean())
    return np.where(treated == 1, share / score, (1 - share) / (1 - score))


def service_effects(
    persons: pd.DataFrame,
    outcomes: pd.DataFrame,
    exposures: pd.DataFrame,
    *,
    score: str,
    baseline: str = "baseline",
    follow_ups: Sequence[str] = ("m6", "m12"),
    covariates: Sequence[str] = (),
    by: Grouping = "service_type",
    direction: Direction = "lower_is_better",
    min_exposed: int = 5,
    trim: float = 0.01,
    level: float = 0.95,
) -> ServiceEffects:
    """Naive, regression-adjusted and IPW effects of each category on the change of ``score``
    from ``baseline`` to each of ``follow_ups`` and pooled over them, with the balance table,
    descriptives and cost per one-point reduction (see the module docstring).

    Categories with fewer than ``min_exposed`` exposed or unexposed persons are not modelled
    (listed in ``skipped``). ``trim`` bounds the propensity scores to [trim, 1 − trim].
    """
    if direction not in ("lower_is_better", "higher_is_better"):
        raise LonelinessError(f"unknown direction '{direction}'")
    data = analysis_data(
        persons,
        outcomes,
        exposures,
        score=score,
        baseline=baseline,
        follow_ups=follow_ups,
        covariates=covariates,
        by=by,
    )
    notes = list(data.notes)
    z = normal_quantile(level)
    frame = data.changes
    person_frame = data.persons[data.persons["person_id"].isin(frame["person_id"])]
    counts = person_frame[list(data.categories)].sum() if data.categories else pd.Series()
    n_persons = len(person_frame)
    modelled = [c for c in data.categories if min_exposed <= counts[c] <= n_persons - min_exposed]
    skipped = tuple(c for c in data.categories if c not in modelled)
    for category in skipped:
        notes.append(
            f"{category}: {int(counts[category])} of {n_persons} persons exposed; not modelled "
            f"(fewer than {min_exposed} exposed or unexposed)"
        )
    rows: list[dict[str, Any]] = []
    parts: list[tuple[str, pd.DataFrame]] = [
        (tp, frame[frame["time_point"] == tp]) for tp in data.follow_ups
    ]
    if len(data.follow_ups) > 1:
        parts.append((POOLED, frame))
    periods = [_Period(tp, part, data.follow_ups) for tp, part in parts if not part.empty]
    for period in periods:
        tp = period.time_point
        for category in modelled:
            exog = _design(period.column(category), *period.time_terms)
            result = _fit_ols(period.y, exog, period.codes, None, notes, f"naive {category} {tp}")
            rows.append(period.row(category, "naive", _coefficient(result, 1, z)))
        if modelled:
            columns = [*modelled, _BASELINE_COLUMN, *data.terms]
            exog = _design(*(period.column(c) for c in columns), *period.time_terms)
            if _rank_ok(exog):
                result = _fit_ols(period.y, exog, period.codes, None, notes, f"adjusted {tp}")
                for position, category in enumerate(modelled, start=1):
                    est = _coefficient(result, position, z)
                    rows.append(period.row(category, "adjusted", est))
            else:
                notes.append(f"adjusted {tp}: the design is collinear; no adjusted estimates")
    balance_rows: list[dict[str, Any]] = []
    propensity_exog = _propensity_design(person_frame, data.terms) if modelled else None
    propensity_rank = propensity_exog is not None and _rank_ok(propensity_exog)
    person_index = pd.Index(person_frame["person_id"].to_numpy())
    positions = [person_index.get_indexer(period.person_ids) for period in periods]
    for category in modelled:
        assert propensity_exog is not None
        weights = _propensity(person_frame, category, propensity_exog, propensity_rank, trim, notes)
        treated = person_frame[category].to_numpy(dtype=float)
        for variable in (_BASELINE_COLUMN, *data.terms):
            values = person_frame[variable].to_numpy(dtype=float)
            before = standardised_mean_difference(values, treated)
            after = (
                math.nan
                if weights is None
                else standardised_mean_difference(values, treated, weights)
            )
            balance_rows.append(
                {
                    "category": category,
                    "variable": variable,
                    "smd_before": before,
                    "smd_after": after,
                    "imbalanced_before": _flag(before),
                    "imbalanced_after": _flag(after),
                }
            )
        if weights is None:
            continue
        padded = np.append(weights, np.nan)  # position -1 (not a person of the frame): NaN
        for period, position in zip(periods, positions, strict=True):
            exog = _design(period.column(category), *period.time_terms)
            result = _fit_ols(
                period.y,
                exog,
                period.codes,
                padded[position],
                notes,
                f"ipw {category} {period.time_point}",
            )
            rows.append(period.row(category, "ipw", _coefficient(result, 1, z)))
    estimates = pd.DataFrame(
        rows,
        columns=[
            "category",
            "time_point",
            "method",
            "estimate",
            "se",
            "ci_low",
            "ci_high",
            "p_value",
            "n",
            "n_persons",
            "n_exposed",
        ],
    )
    cost_rows = _cost_per_point(data, estimates, modelled, direction, person_frame)
    return ServiceEffects(
        score=score,
        by=by,
        direction=direction,
        baseline=baseline,
        follow_ups=tuple(follow_ups),
        covariates=tuple(covariates),
        estimates=estimates,
        descriptives=_descriptives(data, level),
        balance=pd.DataFrame(
            balance_rows,
            columns=[
                "category",
                "variable",
                "smd_before",
                "smd_after",
                "imbalanced_before",
                "imbalanced_after",
            ],
        ),
        cost_per_point=cost_rows,
        skipped=skipped,
        notes=tuple(notes),
        level=level,
    )


def _cost_per_point(
    data: AnalysisData,
    estimates: pd.DataFrame,
    modelled: Sequence[str],
    direction: Direction,
    person_frame: pd.DataFrame,
) -> pd.DataFrame:
    sign = -1.0 if direction == "lower_is_better" else 1.0
    time_point = POOLED if len(data.follow_ups) > 1 else data.follow_ups[0]
    rows = []
    chosen = estimates[
        (estimates["method"] == "adjusted") & (estimates["time_point"] == time_point)
    ]
    adjusted: dict[str, dict[str, Any]] = {}
    for record in chosen.to_dict("records"):
        adjusted.setdefault(record["category"], record)  # the first row, as before
    for category in modelled:
        if category not in adjusted:
            continue
        exposed_ids = person_frame.loc[person_frame[category] > 0, "person_id"]
        costs = data.cost[category].reindex(exposed_ids).dropna()
        mean_cost = float(costs.mean()) if len(costs) else math.nan
        est = adjusted[category]
        reduction = sign * float(est["estimate"])
        limits = sorted((sign * float(est["ci_low"]), sign * float(est["ci_high"])))
        ratio = low = high = math.nan
        if len(costs) and reduction > 0:
            ratio = mean_cost / reduction
            if limits[0] > 0:
                low, high = mean_cost / limits[1], mean_cost / limits[0]
            else:
                low, high = mean_cost / limits[1], math.inf
        rows.append(
            {
                "category": category,
                "time_point": time_point,
                "n_with_cost": len(costs),
                "mean_cost": mean_cost,
                "reduction": reduction,
                "reduction_ci_low": limits[0],
                "reduction_ci_high": limits[1],
                "cost_per_point": ratio,
                "ci_low": low,
                "ci_high": high,
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "category",
            "time_point",
            "n_with_cost",
            "mean_cost",
            "reduction",
            "reduction_ci_low",
            "reduction_ci_high",
            "cost_per_point",
            "ci_low",
            "ci_high",
        ],
    )


# --------------------------------------------------------------------------------------------
# Mixed model over all time points
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MixedModelEffects:
    """Service × time effects from a linear mixed model with random intercept and slope.

    ``effects``: per category, ``slope_difference`` (exposed − unexposed change per year) with
    ``se``, ``ci_low``, ``ci_high``, ``p_value``, and ``effect_<time point>`` = slope difference ×
    years at each follow-up. ``converged`` and ``method`` describe the fit; ``random_effects``
    the estimated covariance of the random intercept and slope.
    """

    score: str
    by: str
    n_persons: int
    n_observations: int
    categories: tuple[str, ...]
    effects: pd.DataFrame
    random_effects: dict[str, float]
    residual_variance: float
    converged: bool
    method: str
    notes: tuple[str, ...]
    level: float

    def to_dict(self) -> dict[str, Any]:
        return plain(
            {
                "score": self.score,
                "by": self.by,
                "n_persons": self.n_persons,
                "n_observations": self.n_observations,
                "categories": list(self.categories),
                "effects": self.effects,
                "random_effects": self.random_effects,
                "residual_variance": self.residual_variance,
                "converged": self.converged,
                "method": self.method,
                "notes": list(self.notes),
                "level": self.level,
            }
        )


def mixed_model_effects(
    persons: pd.DataFrame,
    outcomes: pd.DataFrame,
    exposures: pd.DataFrame,
    *,
    score: str,
    time_months: Mapping[str, float],
    covariates: Sequence[str] = (),
    by: Grouping = "service_type",
    min_exposed: int = 5,
    level: float = 0.95,
) -> MixedModelEffects:
    """Fit ``value ~ years + Σ(exposed_c + exposed_c:years) + covariates`` with a random
    intercept and slope per person (MixedLM, REML) over every time point in ``time_months``
    (the first is the baseline, e.g. ``{"baseline": 0, "m6": 6, "m12": 12}``)."""
    order = list(time_months)
    if len(order) < 2:
        raise LonelinessError("the mixed model needs at least two time points")
    data = analysis_data(
        persons,
        outcomes,
        exposures,
        score=score,
        baseline=order[0],
        follow_ups=order[1:],
        covariates=covariates,
        by=by,
    )
    notes = list(data.notes)
    person_frame = data.persons
    n_all = len(person_frame)
    counts = person_frame[list(data.categories)].sum() if data.categories else pd.Series()
    modelled = [c for c in data.categories if min_exposed <= counts[c] <= n_all - min_exposed]
    for category in data.categories:
        if category not in modelled:
            notes.append(f"{category}: too few exposed or unexposed persons; not modelled")
    if not modelled:
        raise LonelinessError("no category has enough exposed and unexposed persons")
    scores = outcomes[(outcomes["score"] == score) & outcomes["time_point"].isin(order)]
    long = scores.assign(value=pd.to_numeric(scores["value"], errors="coerce")).dropna(
        subset=["value"]
    )
    long = long[["person_id", "time_point", "value"]].merge(person_frame, on="person_id")
    long["years"] = long["time_point"].map({tp: float(m) / 12 for tp, m in time_months.items()})
    long = long.sort_values(["person_id", "years"]).reset_index(drop=True)
    exog = pd.DataFrame({"const": 1.0, "years": long["years"]})
    for category in modelled:
        exog[category] = long[category].astype(float)
        exog[f"{category}:years"] = long[category].astype(float) * long["years"]
    for term in data.terms:
        exog[term] = long[term].astype(float)
    exog_re = exog[["const", "years"]]
    result = None
    method_used = ""
    for method in ("lbfgs", "bfgs", "powell"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                model = sm.MixedLM(
                    long["value"].astype(float), exog, groups=long["person_id"], exog_re=exog_re
                )
                candidate = model.fit(reml=True, method=method)
            except (np.linalg.LinAlgError, ValueError) as error:
                notes.append(f"mixed model ({method}) failed: {error}")
                continue
        _caught(notes, caught, f"mixed model ({method})")
        result, method_used = candidate, method
        if candidate.converged:
            break
    if result is None:
        raise LonelinessError("the mixed model could not be fitted")
    z = normal_quantile(level)
    rows = []
    for category in modelled:
        name = f"{category}:years"
        estimate = float(result.fe_params[name])
        se = float(result.bse_fe[name])
        row: dict[str, Any] = {
            "category": category,
            "n_exposed": int(counts[category]),
            "slope_difference": estimate,
            "se": se,
            "ci_low": estimate - z * se,
            "ci_high": estimate + z * se,
            "p_value": float(2 * sps.norm.sf(abs(estimate / se))) if se > 0 else math.nan,
        }
        for tp in order[1:]:
            row[f"effect_{tp}"] = estimate * float(time_months[tp]) / 12
        rows.append(row)
    cov_re = np.asarray(result.cov_re, dtype=float)
    return MixedModelEffects(
        score=score,
        by=by,
        n_persons=int(long["person_id"].nunique()),
        n_observations=len(long),
        categories=tuple(modelled),
        effects=pd.DataFrame(rows),
        random_effects={
            "intercept_variance": float(cov_re[0, 0]),
            "slope_variance": float(cov_re[1, 1]),
            "covariance": float(cov_re[0, 1]),
        },
        residual_variance=float(result.scale),
        converged=bool(result.converged),
        method=method_used,
        notes=tuple(notes),
        level=level,
    )
