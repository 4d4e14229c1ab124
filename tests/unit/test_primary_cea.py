"""Simulation-based validation of the declared primary analysis: data with known truth,
confounded arm assignment and values missing at random (tests/support/cea_simulation.py).

The adjusted 95 % intervals (multiple imputation per arm, regression standardisation,
cluster-robust errors, Rubin's rules) must cover the truth in at least 90 % of the replicate
data sets; the unadjusted comparison must not (it is confounded), which shows the test can
fail. ``scripts/test`` runs a bounded number of replicates; the full ``scripts/bench`` run sets
``VAIKUTTAVUUS_SIMULATION_REPLICATES`` higher and its table is in docs/reports.md."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tests.support import cea_simulation as sim
from vaikuttavuus.domain.primary_cea import analyse_two_arms

REPLICATES = int(os.environ.get("VAIKUTTAVUUS_SIMULATION_REPLICATES", "60"))


def _analyse(seed: int, *, n: int = 300, cluster_sd: float = 0.0, **settings: object):
    frame = sim.simulate(seed, n=n, cluster_sd=cluster_sd)
    base = {
        "outcome": sim.OUTCOME,
        "time_point": "m12",
        "reference": "operating_room",
        "other": "outpatient_clinic",
        "n_reference": int((frame["treat"] == 0).sum()),
        "n_other": int((frame["treat"] == 1).sum()),
    }
    return analyse_two_arms(frame, sim.config(seed=seed, **settings), base)  # type: ignore[arg-type]


def _covers(estimate: object, truth: float) -> bool:
    low, high = estimate.ci_low, estimate.ci_high  # type: ignore[attr-defined]
    return bool(low is not None and low <= truth <= high)


@pytest.mark.slow
def test_adjusted_intervals_cover_the_truth_and_unadjusted_ones_do_not() -> None:
    truth = sim.truth()
    covered = {"effect": [], "cost": [], "qaly": [], "inmb": []}
    unadjusted = []
    bias = []
    for seed in range(REPLICATES):
        result = _analyse(seed, n_boot=0, imputations=8, mnar_deltas=())
        effect = result.differences["improvement"]
        covered["effect"].append(_covers(effect.adjusted, truth.delta_effect))
        covered["cost"].append(_covers(result.differences["cost"].adjusted, truth.delta_cost))
        covered["qaly"].append(_covers(result.differences["qaly"].adjusted, truth.delta_qaly))
        covered["inmb"].append(_covers(result.inmb["improvement"][sim.WTP].adjusted, truth.inmb()))
        unadjusted.append(_covers(effect.unadjusted, truth.delta_effect))
        bias.append((effect.adjusted.estimate - truth.delta_effect) / effect.adjusted.se)
    shares = {name: float(np.mean(values)) for name, values in covered.items()}
    assert all(share >= 0.9 for share in shares.values()), shares
    assert abs(float(np.mean(bias))) < 0.35, np.mean(bias)
    assert float(np.mean(unadjusted)) < 0.5


def test_one_data_set_end_to_end() -> None:
    """Every part of the result on one data set: adjusted beside unadjusted, the missing
    shares, the sensitivity scenarios, the subgroups and the value of information."""
    truth = sim.truth()
    result = _analyse(7, n=400, n_boot=400, imputations=10, subgroups=True)
    assert result.available
    effect = result.differences["improvement"]
    assert _covers(effect.adjusted, truth.delta_effect)
    # the unadjusted comparison is confounded: the clinic's patients were less severe
    assert effect.unadjusted.estimate < effect.adjusted.estimate
    assert effect.adjusted.method == "g_computation_mi"
    assert effect.adjusted.n == 400 and effect.unadjusted.n < 400
    assert 0.2 < result.missing["ipss.total@m12"]["outpatient_clinic"] < 0.7
    assert result.missing["age"] == {"operating_room": 0.0, "outpatient_clinic": 0.0}
    assert result.n_missing["cost"]["outpatient_clinic"] > 0
    names = [s.name for s in result.sensitivity]
    assert names == ["complete_cases", "mnar_all_3", "mnar_other_3"]
    mnar = {s.name: s for s in result.sensitivity}
    # the clinic's non-responders 3 points worse: less improvement in the clinic
    assert mnar["mnar_other_3"].delta_effect.estimate < effect.adjusted.estimate
    assert mnar["complete_cases"].delta_effect.n < 400
    probabilities = [p for p, _u in result.probability["improvement"].values()]
    assert all(p is not None and 0 < p < 1 for p in probabilities)
    assert {s.band for s in result.subgroups} == {"mild", "moderate", "severe"}
    assert next(s for s in result.subgroups if s.band == "mild").hidden
    assert result.interaction_p is None or 0 <= result.interaction_p <= 1
    assert set(result.evpi_per_person["improvement"]) == {0.0, 250.0, 500.0, 1000.0}
    assert all(v >= 0 for v in result.evpi_per_person["improvement"].values())
    assert result.evpi_population["improvement"][500.0] == pytest.approx(
        result.evpi_per_person["improvement"][500.0] * 300 * sum(1 / 1.03**t for t in range(5))
    )
    assert result.settings["clusters"] == 2 * sim.SURGEONS_PER_ARM
    assert result.replicates is not None and result.replicates.n_boot == 400


def test_complete_cases_as_the_declared_method() -> None:
    result = _analyse(3, n_boot=0, imputations=0)
    effect = result.differences["improvement"].adjusted
    assert effect.method == "g_computation_cc"
    assert effect.n < 300
    assert [s.name for s in result.sensitivity] == ["complete_cases"]


def test_surgeon_clustering_widens_the_intervals() -> None:
    clustered = _analyse(11, cluster_sd=2.0, n_boot=0, imputations=5)
    assert clustered.settings["clusters"] == 10
    effect = clustered.differences["improvement"].adjusted
    assert effect.df is not None and effect.df < 10  # G − 1 = 9 complete-data df at most
