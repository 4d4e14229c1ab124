"""A small simulator of a non-randomised two-arm cost-effectiveness pilot with known truth.

Its own code path (not the demo generator): the patients' arm depends on their baseline
symptoms, age and prostate volume (the severe and the older go to the operating room), the
effect of the arm on the symptoms is proportional to the baseline (so the unadjusted
comparison is confounded), follow-ups, utilities and costs are missing at random (depending on
age, arm and baseline), and outcomes may be correlated within surgeons. The truths are the
superpopulation average treatment effects, computed by Monte Carlo from the same model with
both potential outcomes for everyone.

Used by ``tests/unit/test_primary_cea.py`` (bounded replicate count) and by the full run of
``scripts/bench`` (``VAIKUTTAVUUS_SIMULATION_REPLICATES``), whose bias and coverage table is in
``docs/reports.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd

from vaikuttavuus.domain.primary_cea import PrimaryConfig, column
from vaikuttavuus.domain.specs import Band, BandScore, LocalizedText, ResponderRule

OUTCOME = "ipss.total"
UTILITY = "eq5d5l.index"
TIME_POINTS = ("baseline", "m3", "m12")
DAYS = (-14.0, 90.0, 365.0)
RELIEF = {0: 0.65, 1: 0.45}
"""Relative symptom relief at 12 months: operating room (reference) and outpatient clinic."""
COST = {0: 5_500.0, 1: 2_900.0}
WTP = 500.0
SURGEONS_PER_ARM = 5


@dataclass(frozen=True)
class Truth:
    """Superpopulation average effects of the outpatient clinic against the operating room."""

    delta_effect: float
    delta_cost: float
    delta_qaly: float

    def inmb(self, wtp: float = WTP) -> float:
        return wtp * self.delta_effect - self.delta_cost


def _people(rng: np.random.Generator, n: int) -> pd.DataFrame:
    age = rng.normal(68, 8, n).clip(50, 90)
    baseline = np.round(rng.normal(19, 5, n)).clip(8, 35)
    volume = np.exp(rng.normal(np.log(45), 0.35, n)).clip(15, 200)
    logit = 0.3 - 0.28 * (baseline - 19) - 0.05 * (age - 68) - 0.01 * (volume - 45)
    treat = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"age": age, "baseline": baseline, "volume": volume, "treat": treat})


def _potential(
    rng: np.random.Generator, people: pd.DataFrame, arm: int, surgeon_effect: np.ndarray
) -> dict[str, np.ndarray]:
    """The outcomes of everyone if treated in ``arm`` (noise drawn here)."""
    n = len(people)
    baseline = people["baseline"].to_numpy()
    age = people["age"].to_numpy()
    volume = people["volume"].to_numpy()
    person = rng.normal(0, 1.5, n)
    m12 = baseline * (1 - RELIEF[arm]) + 0.05 * (age - 68) + person + surgeon_effect
    m12 = m12 + rng.normal(0, 2.5, n)
    m3 = baseline * (1 - 0.9 * RELIEF[arm]) + person + rng.normal(0, 2.5, n)
    utilities = {
        tp: np.minimum(1.0, 0.97 - 0.009 * score - 0.002 * (age - 68) + rng.normal(0, 0.05, n))
        for tp, score in (("baseline", baseline), ("m3", m3), ("m12", m12))
    }
    cost = COST[arm] + 15 * (volume - 45) + 25 * (baseline - 19) + rng.gamma(4, 150, n) - 600
    return {"m3": m3, "m12": m12, "cost": cost, **{f"u_{k}": v for k, v in utilities.items()}}


def _qaly(u: dict[str, np.ndarray]) -> np.ndarray:
    years = np.diff(np.asarray(DAYS)) / 365.25
    values = [u["u_baseline"], u["u_m3"], u["u_m12"]]
    return sum(
        (values[i] + values[i + 1]) / 2 * years[i] for i in range(len(years))
    )  # type: ignore[return-value]


@cache
def truth(cluster_sd: float = 0.0) -> Truth:
    """The superpopulation average effects by Monte Carlo (two million potential outcomes)."""
    rng = np.random.default_rng(20_261_206)
    people = _people(rng, 2_000_000)
    no_surgeon = np.zeros(len(people))
    outcomes = {arm: _potential(rng, people, arm, no_surgeon) for arm in (0, 1)}
    improvement = {arm: people["baseline"].to_numpy() - outcomes[arm]["m12"] for arm in (0, 1)}
    return Truth(
        delta_effect=float((improvement[1] - improvement[0]).mean()),
        delta_cost=float((outcomes[1]["cost"] - outcomes[0]["cost"]).mean()),
        delta_qaly=float((_qaly(outcomes[1]) - _qaly(outcomes[0])).mean()),
    )


def simulate(seed: int, n: int = 300, cluster_sd: float = 0.0) -> pd.DataFrame:
    """One observed data set in the frame layout of
    :func:`vaikuttavuus.domain.primary_cea.analyse_two_arms`."""
    rng = np.random.default_rng(seed)
    people = _people(rng, n)
    treat = people["treat"].to_numpy()
    surgeon = np.where(
        treat == 1,
        SURGEONS_PER_ARM + rng.integers(0, SURGEONS_PER_ARM, n),
        rng.integers(0, SURGEONS_PER_ARM, n),
    )
    effects = rng.normal(0, cluster_sd, 2 * SURGEONS_PER_ARM)[surgeon]
    outcomes = {arm: _potential(rng, people, arm, effects) for arm in (0, 1)}
    observed = {
        key: np.where(treat == 1, outcomes[1][key], outcomes[0][key]) for key in outcomes[0]
    }
    frame = pd.DataFrame(
        {
            "arm": np.where(treat == 1, "outpatient_clinic", "operating_room"),
            "treat": treat,
            "cluster": [f"S{s:02d}" for s in surgeon],
            "covariate:age": people["age"],
            "covariate:prostate_volume": people["volume"],
            column(OUTCOME, "baseline"): people["baseline"],
            column(OUTCOME, "m3"): observed["m3"],
            column(OUTCOME, "m12"): observed["m12"],
            column(UTILITY, "baseline"): observed["u_baseline"],
            column(UTILITY, "m3"): observed["u_m3"],
            column(UTILITY, "m12"): observed["u_m12"],
            "cost": observed["cost"],
        }
    )
    age = people["age"].to_numpy()
    baseline = people["baseline"].to_numpy()
    # missing at random: the older, the outpatient clinic's and the less symptomatic answer less
    answered = {
        "baseline": rng.random(n) < 0.92,
        "m3": rng.random(n) < 1 / (1 + np.exp(-(1.5 - 0.04 * (age - 68) - 0.3 * treat))),
        "m12": rng.random(n)
        < 1 / (1 + np.exp(-(1.0 - 0.05 * (age - 68) - 0.5 * treat + 0.05 * (baseline - 19)))),
    }
    for tp, present in answered.items():
        for score in (OUTCOME, UTILITY):
            frame.loc[~present, column(score, tp)] = np.nan
    frame.loc[rng.random(n) < np.where(treat == 1, 0.12, 0.05), "cost"] = np.nan
    frame.index = pd.RangeIndex(1, n + 1, name="person")
    return frame


def config(
    *,
    imputations: int = 10,
    n_boot: int = 400,
    seed: int = 0,
    subgroups: bool = False,
    mnar_deltas: tuple[float, ...] = (3.0,),
) -> PrimaryConfig:
    """The declared analysis of the simulated pilot (as cohorts/bph.yaml declares it)."""
    grid = tuple(float(x) for x in np.linspace(0, 2_000, 41))
    bands = BandScore(
        id="band",
        label=LocalizedText(fi="Vaikeus", sv="Svårighetsgrad", en="Severity"),
        method="band",
        of="total",
        bands=(
            Band(label="mild", min=0, max=7),
            Band(label="moderate", min=8, max=19),
            Band(label="severe", min=20, max=35),
        ),
    )
    return PrimaryConfig(
        outcome=OUTCOME,
        direction="lower_is_better",
        time_points=TIME_POINTS,
        days=DAYS,
        covariates=("covariate:age", "covariate:prostate_volume", column(OUTCOME, "baseline")),
        grids={
            "improvement": grid,
            "responder": tuple(float(x) for x in np.linspace(0, 20_000, 41)),
            "qaly": tuple(float(x) for x in np.linspace(0, 50_000, 51)),
        },
        shown={"improvement": (0.0, 250.0, 500.0, 1_000.0), "qaly": (20_000.0,)},
        reference_wtp=WTP,
        rule=ResponderRule(instrument="ipss", score="total", min_improvement=3, min_relative=0.25),
        bands=bands,
        utility=UTILITY,
        imputations=imputations,
        mnar_deltas=mnar_deltas,
        subgroups=subgroups,
        n_boot=n_boot,
        seed=seed,
        min_cell=5,
        yearly_volume=300,
    )


def coverage_table(replicates: int, n: int = 300, cluster_sd: float = 0.0) -> str:
    """Bias (in units of the true value's scale) and 95 % coverage of the adjusted,
    unadjusted and complete-case estimates over ``replicates`` data sets, as a Markdown table
    (docs/reports.md)."""
    from vaikuttavuus.domain.primary_cea import analyse_two_arms

    target = truth(cluster_sd)
    rows: dict[str, list[tuple[float, bool]]] = {}
    for seed in range(replicates):
        frame = simulate(seed, n=n, cluster_sd=cluster_sd)
        base = {
            "outcome": OUTCOME,
            "time_point": "m12",
            "reference": "operating_room",
            "other": "outpatient_clinic",
            "n_reference": int((frame["treat"] == 0).sum()),
            "n_other": int((frame["treat"] == 1).sum()),
        }
        result = analyse_two_arms(frame, config(seed=seed, n_boot=0, imputations=10), base)
        complete = next(s for s in result.sensitivity if s.name == "complete_cases")
        candidates = {
            "ΔE adjusted (MI)": (result.differences["improvement"].adjusted, target.delta_effect),
            "ΔE unadjusted": (result.differences["improvement"].unadjusted, target.delta_effect),
            "ΔE adjusted, complete cases": (complete.delta_effect, target.delta_effect),
            "ΔC adjusted (MI)": (result.differences["cost"].adjusted, target.delta_cost),
            "ΔC unadjusted": (result.differences["cost"].unadjusted, target.delta_cost),
            "ΔQALY adjusted (MI)": (result.differences["qaly"].adjusted, target.delta_qaly),
            "ΔQALY unadjusted": (result.differences["qaly"].unadjusted, target.delta_qaly),
            f"INMB at {WTP:.0f} € adjusted (MI)": (
                result.inmb["improvement"][WTP].adjusted,
                target.inmb(),
            ),
            f"INMB at {WTP:.0f} € adjusted, complete cases": (complete.inmb, target.inmb()),
        }
        for name, (estimate, true_value) in candidates.items():
            if estimate.estimate is None:
                continue
            covered = estimate.ci_low <= true_value <= estimate.ci_high
            rows.setdefault(name, []).append((estimate.estimate - true_value, covered))
    lines = [
        f"| estimate | truth | mean bias | 95 % coverage ({replicates} data sets of {n}) |",
        "|---|---|---|---|",
    ]
    truths = {
        "ΔE": target.delta_effect,
        "ΔC": target.delta_cost,
        "ΔQALY": target.delta_qaly,
        "INMB": target.inmb(),
    }
    for name, values in rows.items():
        bias = float(np.mean([b for b, _ in values]))
        coverage = float(np.mean([c for _, c in values]))
        true_value = next(v for k, v in truths.items() if name.startswith(k))
        lines.append(f"| {name} | {true_value:.4g} | {bias:+.3g} | {100 * coverage:.1f} % |")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    print(coverage_table(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
