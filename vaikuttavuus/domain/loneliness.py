"""Older adults pilot: the mixed model of each score over all time points by service.

The primary analysis of the services — the adjusted difference associated with each service
at each follow-up, doubly robust, with the declared confounders, missing-data handling and
multiplicity — is :mod:`vaikuttavuus.domain.attribution`. This module keeps the exploratory
**mixed model** over every time point (``vaikuttavuus report mixed-model`` and the pilot page's
*Fit the mixed model*) and the joining of persons, outcomes and exposures it uses. Pure
functions (stdlib, numpy, pandas, scipy, statsmodels) returning frozen result objects with
JSON-ready ``to_dict()``.

Inputs
------
``persons``
    One row per person: ``person_id`` plus covariate columns (e.g. ``age``, ``sex``,
    ``lives_alone``). Numeric covariates are used as they are, text/boolean ones as 0/1
    indicators (first level in sorted order = reference). A person with a missing covariate is
    left out of the model (complete case; the number is reported in ``notes``).
``outcomes``
    Long frame, one row per person × time point × score: ``person_id``, ``time_point``,
    ``score`` and ``value``; one score is analysed per call.
``exposures``
    One row per service episode: ``person_id``, ``service_type``, ``provider_sector``,
    ``contacts`` (may be missing) and ``cost``. A person is *exposed* to a category when they
    have a row of it with ``contacts`` > 0 or missing; the caller selects the episodes (the
    services analysis: those started at least ``min_exposure_days`` before the primary
    follow-up).

Mixed model
-----------
``value ~ time + Σ (exposed_c + exposed_c × time) + covariates`` with a random intercept and
slope on time per person (``statsmodels`` MixedLM, REML; Fitzmaurice, Laird & Ware, *Applied
Longitudinal Analysis*). The exposed × time coefficient is the difference in the yearly rate of
change associated with the service; the implied difference at each follow-up is coefficient ×
years. Services were not randomised: these are associations adjusted for the covariates, not
effects. Model warnings are caught and reported in the result's ``notes``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats as sps

from vaikuttavuus.domain.notes import Note, warning_notes
from vaikuttavuus.domain.stats import (
    covariate_design,
    normal_quantile,
    plain,
)

__all__ = [
    "AnalysisData",
    "LonelinessError",
    "MixedModelEffects",
    "analysis_data",
    "mixed_model_effects",
]

Direction = Literal["lower_is_better", "higher_is_better"]
Grouping = Literal["service_type", "provider_sector"]
_BASELINE_COLUMN = "baseline_score"


class LonelinessError(ValueError):
    """The data cannot be analysed as asked; the message names the problem."""


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise LonelinessError(f"{what} lacks column(s) {', '.join(missing)}")


def _caught(messages: list[str], caught: list[warnings.WarningMessage], context: str) -> None:
    for note in warning_notes(context, caught):
        if note not in messages:
            messages.append(note)


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
        count = int((~complete).sum())
        notes.append(
            Note(
                "missing_covariates",
                f"{count} person(s) left out for missing covariates",
                count=count,
            )
        )
    base = persons[["person_id"]].set_index("person_id")
    base = base.join(design[complete], how="inner")
    base[_BASELINE_COLUMN] = wide[baseline].reindex(base.index)
    no_baseline = base[_BASELINE_COLUMN].isna()
    if no_baseline.any():
        count = int(no_baseline.sum())
        notes.append(
            Note(
                "missing_baseline",
                f"{count} person(s) left out for a missing baseline",
                count=count,
            )
        )
    base = base[~no_baseline]
    for term in list(design.columns):
        values = base[term].to_numpy(dtype=float)
        if len(base) and np.allclose(values, base[_BASELINE_COLUMN].to_numpy()):
            base = base.drop(columns=term)
            design = design.drop(columns=term)
            notes.append(
                Note(
                    "covariate_is_baseline",
                    f"covariate '{term}' is the baseline score, which is always adjusted for",
                    covariate=term,
                )
            )
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
    row = base.index.get_indexer(pd.Index(pairs["person_id"]))
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
# Mixed model over all time points
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MixedModelEffects:
    """Service × time differences from a linear mixed model with random intercept and slope.

    ``effects``: per category, ``slope_difference`` (exposed − unexposed change per year) with
    ``se``, ``ci_low``, ``ci_high``, ``p_value``, and ``difference_<time point>`` = slope
    difference × years at each follow-up. ``converged`` and ``method`` describe the fit;
    ``random_effects`` the estimated covariance of the random intercept and slope.
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
            notes.append(
                Note(
                    "category_too_few",
                    f"{category}: too few exposed or unexposed persons; not modelled",
                    category=category,
                    by=by,
                )
            )
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
                notes.append(
                    Note(
                        "mixed_model_failed",
                        f"mixed model ({method}) failed: {error}",
                        detail=f"{method}: {error}",
                    )
                )
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
            row[f"difference_{tp}"] = estimate * float(time_months[tp]) / 12
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
