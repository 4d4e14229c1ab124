"""The declared primary analysis of a two-arm pilot, as a pure function of a person frame.

:func:`analyse_two_arms` takes one row per analysed person and a :class:`PrimaryConfig` (what
the pilot declares: outcome, time points, covariates, willingness to pay, missing-data method,
responder rule, subgroups) and returns a :class:`PrimaryResult`: the case-mix adjusted
differences (the headline) with the unadjusted comparison beside them, INMB and the
probability of cost-effectiveness per λ, the share missing per variable and arm, sensitivity
analyses (complete cases; delta-adjusted missing-not-at-random scenarios), subgroups by
baseline band with a heterogeneity test, and the expected value of perfect information.

The frame's columns: ``arm`` (label), ``treat`` (1 = the other arm, 0 = the reference),
``cluster`` (None when not known), the covariates named in the config, ``<outcome>@<time
point>`` and ``<utility>@<time point>`` for every time point from the baseline to the primary
one (NaN = missing), and ``cost`` (NaN = no complete cost data). The service layer
(:mod:`vaikuttavuus.services.analytics.primary`) builds it from the database; the simulation
tests build it from known truths, so both run the same code.

Method (``docs/reports.md``, "Declared primary analysis"): missing values are imputed by chained
equations per arm (:mod:`vaikuttavuus.domain.imputation`); improvement, responder status and
QALYs are derived from the completed scores in each data set (passive imputation); the
differences are estimated by regression standardisation with cluster-robust errors and pooled
by Rubin's rules; the CE plane and the CEAC come from a bootstrap that refits the models in
every replicate (:mod:`vaikuttavuus.domain.adjusted_cea`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

import numpy as np
import pandas as pd

from vaikuttavuus.domain import adjusted_cea, cea, outcomes
from vaikuttavuus.domain.adjusted_cea import AdjustedCEA, AdjustedEstimate, bounded_probability
from vaikuttavuus.domain.imputation import Imputations, missing_shares, multiple_imputation
from vaikuttavuus.domain.scoring import band_positions
from vaikuttavuus.domain.specs import BandScore, ResponderRule
from vaikuttavuus.domain.stats import plain

__all__ = [
    "COST",
    "EstimatePair",
    "PrimaryConfig",
    "PrimaryIdentity",
    "PrimaryResult",
    "Scenario",
    "Subgroup",
    "analyse_two_arms",
    "column",
    "scenario_of_frame",
    "wtp_key",
]

COST = "cost"
SUBGROUP_MIN_ARM = 2
"""Fewer persons of an arm in a baseline band: the band's comparison is not estimated."""
Z95 = 1.959963984540054


def column(score: str, time_point: str) -> str:
    """The frame column of ``score`` at ``time_point``."""
    return f"{score}@{time_point}"


def wtp_key(value: float) -> str:
    """λ as an object key: whole numbers without a decimal point ("20000")."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


@dataclass(frozen=True)
class PrimaryConfig:
    """What the pilot declares for its primary analysis (see :func:`analyse_two_arms`)."""

    outcome: str
    direction: Literal["lower_is_better", "higher_is_better"]
    time_points: tuple[str, ...]
    """Baseline first, the primary time point last."""
    days: tuple[float, ...]
    covariates: tuple[str, ...]
    grids: Mapping[str, tuple[float, ...]]
    """Per effect (``improvement``, ``responder``, ``qaly``): the λ grid of INMB and CEAC."""
    shown: Mapping[str, tuple[float, ...]]
    reference_wtp: float
    """λ per point of improvement of the sensitivity analyses and subgroups."""
    rule: ResponderRule | None = None
    bands: BandScore | None = None
    utility: str | None = None
    discount_rate: float = 0.0
    imputations: int = 20
    """0: complete cases (the declared method)."""
    mnar_deltas: tuple[float, ...] = ()
    subgroups: bool = True
    n_boot: int = 2_000
    seed: int = 0
    min_cell: int = 5
    yearly_volume: int | None = None
    decision_horizon_years: int = 5
    evpi_discount_rate: float = 0.03

    @property
    def baseline(self) -> str:
        return self.time_points[0]

    @property
    def time_point(self) -> str:
        return self.time_points[-1]


class PrimaryIdentity(TypedDict):
    """What a :class:`PrimaryResult` is about: the outcome, the time point and the arms."""

    outcome: str
    time_point: str
    reference: str
    other: str
    n_reference: int
    n_other: int


@dataclass(frozen=True)
class EstimatePair:
    """The adjusted estimate (the declared primary analysis) and the unadjusted one beside it."""

    adjusted: AdjustedEstimate
    unadjusted: AdjustedEstimate

    def to_dict(self) -> dict[str, Any]:
        return {"adjusted": self.adjusted.to_dict(), "unadjusted": self.unadjusted.to_dict()}


@dataclass(frozen=True)
class Scenario:
    """A sensitivity analysis: its name (a code the reports translate), the adjusted effect and
    cost differences and INMB at the reference λ."""

    name: str
    delta_effect: AdjustedEstimate
    delta_cost: AdjustedEstimate
    inmb: AdjustedEstimate
    wtp: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "delta_effect": self.delta_effect.to_dict(),
            "delta_cost": self.delta_cost.to_dict(),
            "inmb": {wtp_key(self.wtp): self.inmb.to_dict()},
        }


@dataclass(frozen=True)
class Subgroup:
    """The adjusted comparison within one baseline band of the primary score."""

    band: str
    n_reference: int
    n_other: int
    delta_effect: AdjustedEstimate
    delta_cost: AdjustedEstimate
    inmb: AdjustedEstimate
    probability: float | None
    hidden: bool

    def to_dict(self) -> dict[str, Any]:
        if self.hidden:
            return {"band": self.band, "hidden": True}
        return plain(
            {
                "band": self.band,
                "n_reference": self.n_reference,
                "n_other": self.n_other,
                "delta_effect": self.delta_effect.to_dict(),
                "delta_cost": self.delta_cost.to_dict(),
                "inmb": self.inmb.to_dict(),
                "prob_cost_effective": self.probability,
                "hidden": False,
            }
        )


@dataclass(frozen=True)
class PrimaryResult:
    """The declared primary analysis of a two-arm pilot (see the module docstring).

    ``differences``: per effect (``improvement``, ``responder``, ``qaly``) and ``cost``, the
    adjusted and unadjusted other-minus-reference differences. ``inmb`` and ``probability``:
    per effect and λ of its declared grid. ``reason`` says why nothing is shown (a code:
    ``no_comparison``, ``too_few``, ``no_outcomes``, ``costs_unavailable``)."""

    outcome: str
    time_point: str
    reference: str
    other: str
    n_reference: int
    n_other: int
    hidden: bool
    reason: str | None
    differences: dict[str, EstimatePair] = field(default_factory=dict)
    inmb: dict[str, dict[float, EstimatePair]] = field(default_factory=dict)
    probability: dict[str, dict[float, tuple[float | None, float | None]]] = field(
        default_factory=dict
    )
    grids: dict[str, tuple[float, ...]] = field(default_factory=dict)
    replicates: adjusted_cea.Replicates | None = None
    missing: dict[str, dict[str, float | None]] = field(default_factory=dict)
    n_missing: dict[str, dict[str, int | None]] = field(default_factory=dict)
    sensitivity: tuple[Scenario, ...] = ()
    subgroups: tuple[Subgroup, ...] = ()
    interaction_p: float | None = None
    evpi_per_person: dict[str, dict[float, float]] = field(default_factory=dict)
    evpi_population: dict[str, dict[float, float]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def available(self) -> bool:
        return not self.hidden and self.reason is None

    def pair(self, name: str) -> EstimatePair | None:
        return self.differences.get(name)

    def inmb_at(self, effect: str, wtp: float) -> EstimatePair | None:
        return self.inmb.get(effect, {}).get(float(wtp))

    def probability_at(self, effect: str, wtp: float) -> tuple[float | None, float | None]:
        return self.probability.get(effect, {}).get(float(wtp), (None, None))

    def to_dict(self) -> dict[str, Any]:
        return plain(
            {
                "outcome": self.outcome,
                "time_point": self.time_point,
                "reference": self.reference,
                "other": self.other,
                "n_reference": self.n_reference,
                "n_other": self.n_other,
                "hidden": self.hidden,
                "reason": self.reason,
                "differences": {k: v.to_dict() for k, v in self.differences.items()},
                "inmb": {
                    e: {wtp_key(lam): pair.to_dict() for lam, pair in rows.items()}
                    for e, rows in self.inmb.items()
                },
                "probability": {
                    e: {wtp_key(lam): {"adjusted": a, "unadjusted": u} for lam, (a, u) in r.items()}
                    for e, r in self.probability.items()
                },
                "missing": self.missing,
                "n_missing": self.n_missing,
                "sensitivity": [s.to_dict() for s in self.sensitivity],
                "subgroups": [s.to_dict() for s in self.subgroups],
                "interaction_p": self.interaction_p,
                "evpi_per_person": {
                    e: {wtp_key(k): v for k, v in rows.items()}
                    for e, rows in self.evpi_per_person.items()
                },
                "evpi_population": {
                    e: {wtp_key(k): v for k, v in rows.items()}
                    for e, rows in self.evpi_population.items()
                },
                "settings": self.settings,
                "notes": list(self.notes),
            }
        )


def derive(
    data: pd.DataFrame, config: PrimaryConfig, follow_shift: pd.Series | None = None
) -> pd.DataFrame:
    """Improvement, responder status, QALYs and baseline utility of each person of ``data``
    (observed or completed); ``follow_shift`` is added to the primary follow-up first (the
    MNAR scenarios)."""
    baseline = data[column(config.outcome, config.baseline)].to_numpy(dtype=float)
    follow = data[column(config.outcome, config.time_point)].to_numpy(dtype=float)
    if follow_shift is not None:
        follow = follow + follow_shift.reindex(data.index).fillna(0.0).to_numpy()
    improvement = outcomes.improvement_of(baseline, follow, config.direction)
    derived = data.assign(improvement=improvement)
    derived["responder"] = (
        outcomes.responder_flags(baseline, improvement, config.rule, bands=config.bands)
        if config.rule is not None
        else np.nan
    )
    if config.utility is not None:
        columns = [column(config.utility, tp) for tp in config.time_points]
        derived["qaly"] = outcomes.qaly_auc(
            data[columns].to_numpy(dtype=float), config.days, discount_rate=config.discount_rate
        )
        derived["baseline_utility"] = data[column(config.utility, config.baseline)]
    else:
        derived["qaly"] = np.nan
        derived["baseline_utility"] = np.nan
    return derived


def _effects(data: pd.DataFrame, config: PrimaryConfig) -> dict[str, tuple[str, ...]]:
    """The effects to analyse (the primary improvement first) with their extra covariates."""
    effects: dict[str, tuple[str, ...]] = {"improvement": ()}
    if config.rule is not None and data["responder"].notna().any():
        effects["responder"] = ()
    if config.utility is not None and data["qaly"].notna().any():
        effects["qaly"] = ("baseline_utility",)
    return effects


def impute(frame: pd.DataFrame, config: PrimaryConfig) -> Imputations | None:
    """The declared multiple imputation of every value column, per arm (None for complete
    cases)."""
    if config.imputations <= 0:
        return None
    columns = [
        c for c in frame.columns if c not in ("arm", "treat", "cluster") and frame[c].notna().any()
    ]
    return multiple_imputation(
        frame, columns=columns, by="arm", m=config.imputations, seed=config.seed
    )


def analyse_two_arms(
    frame: pd.DataFrame, config: PrimaryConfig, base: PrimaryIdentity
) -> PrimaryResult:
    """The declared primary analysis of ``frame`` (see the module docstring). ``base`` holds
    the result's identity (outcome, time point, arms and their sizes)."""
    imputations = impute(frame, config)
    observed = derive(frame, config)
    datasets = (
        [derive(d, config) for d in imputations.datasets] if imputations is not None else [observed]
    )
    effects = _effects(datasets[0], config)
    grids = {e: tuple(config.grids[e]) for e in effects if e in config.grids}
    covariates = [c for c in config.covariates if frame[c].notna().any()]
    cluster = "cluster" if frame["cluster"].notna().any() else None
    method = "g_computation_mi" if imputations is not None else "g_computation_cc"
    analysed = (
        datasets
        if imputations is not None
        else [observed.dropna(subset=[*covariates, "improvement", COST])]
    )
    result = adjusted_cea.adjusted_cea(
        analysed,
        treat="treat",
        effects=effects,
        cost=COST,
        covariates=covariates,
        wtp=grids,
        cluster=cluster,
        n_boot=config.n_boot,
        seed=config.seed,
        method=method,
    )
    unadjusted = _unadjusted(observed, effects, grids, config)
    differences = {
        name: EstimatePair(result.differences[name], unadjusted["differences"][name])
        for name in [*effects, COST]
    }
    inmb = {
        effect: {
            lam: EstimatePair(estimate, unadjusted["inmb"][effect][lam])
            for lam, estimate in rows.items()
        }
        for effect, rows in result.inmb.items()
    }
    probability: dict[str, dict[float, tuple[float | None, float | None]]] = {}
    for effect, grid in grids.items():
        replicates = result.replicates
        adjusted_curve = replicates.ceac(effect, grid) if replicates is not None else None
        unadjusted_curve = unadjusted["ceac"].get(effect)
        probability[effect] = {
            float(lam): (
                bounded_probability(float(adjusted_curve[i]), replicates.n_boot)
                if adjusted_curve is not None and replicates is not None
                else None,
                bounded_probability(float(unadjusted_curve[i]), config.n_boot)
                if unadjusted_curve is not None
                else None,
            )
            for i, lam in enumerate(grid)
        }
    missing, n_missing = _missing(frame, config)
    evpi_person, evpi_population = _evpi(result, grids, config)
    subgroups, interaction = _subgroups(datasets, covariates, cluster, config)
    return PrimaryResult(
        **base,
        hidden=False,
        reason=None,
        differences=differences,
        inmb=inmb,
        probability=probability,
        grids=grids,
        replicates=result.replicates,
        missing=missing,
        n_missing=n_missing,
        sensitivity=_scenarios(frame, observed, imputations, covariates, cluster, config),
        subgroups=subgroups,
        interaction_p=interaction,
        evpi_per_person=evpi_person,
        evpi_population=evpi_population,
        settings={
            "method": method,
            "imputations": imputations.m if imputations is not None else 0,
            "imputation_columns": list(imputations.columns) if imputations else [],
            "n_boot": result.replicates.n_boot if result.replicates else 0,
            "resampled": result.replicates.resampled if result.replicates else None,
            "widened": result.replicates.widened if result.replicates else {},
            "clusters": result.clusters,
            "interacted": result.interacted,
            "covariates": covariates,
            "seed": config.seed,
            "n": result.n,
        },
        notes=tuple(result.notes),
    )


def _unadjusted(
    observed: pd.DataFrame,
    effects: dict[str, tuple[str, ...]],
    grids: dict[str, tuple[float, ...]],
    config: PrimaryConfig,
) -> dict[str, Any]:
    """Plain differences of the observed values (complete cases per variable), INMB from the
    persons with both the effect and the cost observed (parametric interval), and the
    bootstrap CEAC of those persons."""
    treat = observed["treat"] == 1
    differences = {
        name: adjusted_cea.unadjusted_difference(
            observed.loc[treat, name], observed.loc[~treat, name]
        )
        for name in [*effects, COST]
    }
    inmb: dict[str, dict[float, AdjustedEstimate]] = {}
    ceac: dict[str, np.ndarray] = {}
    for effect, grid in grids.items():
        both = observed.dropna(subset=[effect, COST])
        rows = {
            float(lam): AdjustedEstimate.missing(len(both), "difference_of_means") for lam in grid
        }
        try:
            data = cea.TwoArmData.from_arrays(
                both[COST], both[effect], both["treat"].to_numpy(dtype=int)
            )
            two = cea.two_arm_cea(data, wtp=grid)
            boot = cea.bootstrap_two_arms(data, wtp=grid, n_boot=config.n_boot, seed=config.seed)
        except cea.CEAError:
            inmb[effect] = rows
            continue
        for i, lam in enumerate(grid):
            estimate, se = float(two.inmb[i]), float(two.inmb_se[i])
            rows[float(lam)] = AdjustedEstimate(
                estimate,
                estimate - Z95 * se,
                estimate + Z95 * se,
                len(both),
                "difference_of_means",
                se,
            )
        inmb[effect] = rows
        ceac[effect] = np.asarray(boot.ceac, dtype=float)
    return {"differences": differences, "inmb": inmb, "ceac": ceac}


def _missing(
    frame: pd.DataFrame, config: PrimaryConfig
) -> tuple[dict[str, dict[str, float | None]], dict[str, dict[str, int | None]]]:
    """Share and number missing per variable and arm before imputation; hidden (None) for an
    arm smaller than the minimum cell size and where fewer than that many (but some) are
    missing, since the count and the share would name a small group."""
    columns = [c for c in frame.columns if c not in ("arm", "treat", "cluster")]
    shares = missing_shares(frame, columns, "arm")
    counts = {
        c: {str(arm): int(part[c].isna().sum()) for arm, part in frame.groupby("arm")}
        for c in columns
    }
    sizes = frame["arm"].value_counts()
    hidden = {str(arm) for arm, size in sizes.items() if size < config.min_cell}

    def small(column: str, arm: str) -> bool:
        count = counts[column].get(arm, 0)
        return arm in hidden or 0 < count < config.min_cell

    published = {
        c.removeprefix("covariate:"): {
            arm: (None if small(c, arm) else share) for arm, share in values.items()
        }
        for c, values in shares.items()
    }
    published_counts = {
        c.removeprefix("covariate:"): {
            arm: (None if small(c, arm) else count) for arm, count in values.items()
        }
        for c, values in counts.items()
    }
    return published, published_counts


def _evpi(
    result: AdjustedCEA, grids: dict[str, tuple[float, ...]], config: PrimaryConfig
) -> tuple[dict[str, dict[float, float]], dict[str, dict[float, float]]]:
    """Per-person EVPI at the shown λ values, and the population EVPI over the declared yearly
    volume and decision horizon, discounted at the declared rate."""
    per_person: dict[str, dict[float, float]] = {}
    population: dict[str, dict[float, float]] = {}
    if result.replicates is None:
        return per_person, population
    factor = sum(
        1 / (1 + config.evpi_discount_rate) ** t for t in range(config.decision_horizon_years)
    )
    for effect in grids:
        if effect not in result.replicates.values:
            continue
        per_person[effect] = {
            float(lam): adjusted_cea.evpi(result.replicates.inmb(effect, float(lam)))
            for lam in config.shown.get(effect, ())
        }
        if config.yearly_volume:
            population[effect] = {
                lam: value * config.yearly_volume * factor
                for lam, value in per_person[effect].items()
            }
    return per_person, population


def _scenario(
    name: str,
    datasets: list[pd.DataFrame],
    covariates: list[str],
    cluster: str | None,
    method: str,
    config: PrimaryConfig,
) -> Scenario | None:
    wtp = float(config.reference_wtp)
    try:
        result = adjusted_cea.adjusted_cea(
            datasets,
            treat="treat",
            effects={"improvement": ()},
            cost=COST,
            covariates=covariates,
            wtp={"improvement": (wtp,)},
            cluster=cluster,
            n_boot=0,
            method=method,
        )
    except adjusted_cea.AdjustedError:
        return None
    inmb = result.inmb.get("improvement", {}).get(wtp)
    if inmb is None:
        return None
    return Scenario(name, result.differences["improvement"], result.differences[COST], inmb, wtp)


def _scenarios(
    frame: pd.DataFrame,
    observed: pd.DataFrame,
    imputations: Imputations | None,
    covariates: list[str],
    cluster: str | None,
    config: PrimaryConfig,
) -> tuple[Scenario, ...]:
    """Complete cases, and the declared delta-adjusted MNAR scenarios: the non-responders'
    primary follow-up ``k`` points worse in both arms, and in the other arm only."""
    scenarios: list[Scenario | None] = []
    complete = observed.dropna(subset=[*covariates, "improvement", COST])
    scenarios.append(
        _scenario("complete_cases", [complete], covariates, cluster, "g_computation_cc", config)
    )
    if imputations is not None:
        follow = column(config.outcome, config.time_point)
        worse = 1.0 if config.direction == "lower_is_better" else -1.0
        missing = frame[follow].isna()
        for delta in config.mnar_deltas:
            for arms, label in ((frame["treat"] >= 0, "all"), (frame["treat"] == 1, "other")):
                shift = pd.Series(np.where(missing & arms, worse * delta, 0.0), index=frame.index)
                shifted = [derive(d, config, shift) for d in imputations.datasets]
                name = f"mnar_{label}_{delta:g}"
                scenarios.append(
                    _scenario(name, shifted, covariates, cluster, "g_computation_mi", config)
                )
    return tuple(s for s in scenarios if s is not None)


def scenario_of_frame(name: str, frame: pd.DataFrame, config: PrimaryConfig) -> Scenario | None:
    """A sensitivity analysis on another version of the frame (e.g. with the answers given by
    a proxy set missing): the declared missing-data method and the adjusted model, without the
    bootstrap."""
    covariates = [c for c in config.covariates if frame[c].notna().any()]
    cluster = "cluster" if frame["cluster"].notna().any() else None
    imputations = impute(frame, config)
    if imputations is not None:
        datasets = [derive(d, config) for d in imputations.datasets]
        method = "g_computation_mi"
    else:
        datasets = [derive(frame, config).dropna(subset=[*covariates, "improvement", COST])]
        method = "g_computation_cc"
    return _scenario(name, datasets, covariates, cluster, method, config)


def _subgroups(
    datasets: list[pd.DataFrame],
    covariates: list[str],
    cluster: str | None,
    config: PrimaryConfig,
) -> tuple[tuple[Subgroup, ...], float | None]:
    """The adjusted comparison within each baseline band of the primary score (each imputed
    data set bands its own completed baseline), with a t-approximation probability of
    cost-effectiveness, and a test of whether the INMB at the reference λ differs between the
    bands."""
    if not config.subgroups or config.bands is None:
        return (), None
    wtp = float(config.reference_wtp)
    base_column = column(config.outcome, config.baseline)
    results: list[Subgroup] = []
    for position, band in enumerate(config.bands.ordered):
        parts = []
        n_ref = n_other = 0
        for data in datasets:
            baseline = data[base_column]
            inside = band_positions(config.bands, baseline) == position
            part = data[inside]
            n_ref = max(n_ref, int((part["treat"] == 0).sum()))
            n_other = max(n_other, int((part["treat"] == 1).sum()))
            parts.append(part.dropna(subset=[*covariates, "improvement", COST]))
        empty = AdjustedEstimate.missing(0, "g_computation_mi")
        hidden = min(n_ref, n_other) < max(config.min_cell, SUBGROUP_MIN_ARM)
        if hidden or any(p["treat"].nunique() < 2 for p in parts):
            results.append(Subgroup(band.label, n_ref, n_other, empty, empty, empty, None, True))
            continue
        try:
            result = adjusted_cea.adjusted_cea(
                parts,
                treat="treat",
                effects={"improvement": ()},
                cost=COST,
                covariates=covariates,
                wtp={"improvement": (wtp,)},
                cluster=cluster,
                n_boot=0,
            )
        except adjusted_cea.AdjustedError:
            results.append(Subgroup(band.label, n_ref, n_other, empty, empty, empty, None, True))
            continue
        inmb = result.inmb.get("improvement", {}).get(wtp)
        if inmb is None or inmb.estimate is None:
            results.append(Subgroup(band.label, n_ref, n_other, empty, empty, empty, None, True))
            continue
        probability = _normal_probability(inmb)
        results.append(
            Subgroup(
                band.label,
                n_ref,
                n_other,
                result.differences["improvement"],
                result.differences[COST],
                inmb,
                None if probability is None else bounded_probability(probability, config.n_boot),
                False,
            )
        )
    return tuple(results), _heterogeneity_p(results)


def _normal_probability(estimate: AdjustedEstimate) -> float | None:
    """P(INMB > 0) from the pooled estimate and its t reference distribution."""
    from scipy import stats as sps

    if estimate.estimate is None or not estimate.se:
        return None
    df = estimate.df if estimate.df and math.isfinite(estimate.df) else None
    z = estimate.estimate / estimate.se
    return float(sps.t.cdf(z, df) if df else sps.norm.cdf(z))


def _heterogeneity_p(subgroups: list[Subgroup]) -> float | None:
    """Cochran's Q test that the bands' INMB at the reference λ are equal (the bands are
    disjoint, so their pooled estimates are independent): Q = Σ w(θ − θ̄)², χ² with k − 1 df."""
    from scipy import stats as sps

    shown = [
        s.inmb for s in subgroups if not s.hidden and s.inmb.estimate is not None and s.inmb.se
    ]
    if len(shown) < 2:
        return None
    theta = np.asarray([s.estimate for s in shown], dtype=float)
    weights = 1 / np.asarray([s.se for s in shown], dtype=float) ** 2
    mean = float((weights * theta).sum() / weights.sum())
    q = float((weights * (theta - mean) ** 2).sum())
    return float(sps.chi2.sf(q, len(shown) - 1))
