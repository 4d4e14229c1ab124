"""Cost-effectiveness analytics: public fixtures, hand-computed golden values, bootstrap checks."""

from __future__ import annotations

import itertools
import json
import math
import statistics
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from vaikuttavuus.domain.cea import (
    DEFAULT_WTP,
    CEAError,
    TwoArmData,
    bootstrap_two_arms,
    ceac_from_replicates,
    fieller_interval,
    icer_angle_interval,
    icer_status,
    icer_value,
    incremental_analysis,
    net_benefit_regression,
    simulation_incremental_benefit,
    two_arm_cea,
)

Z = 1.959964

# --------------------------------------------------------------------------------------------
# Public fixtures (shared/health-economics.md)
# --------------------------------------------------------------------------------------------


def test_cear_example_2_statuses_and_icers() -> None:
    strategies = pd.DataFrame(
        {
            "strategy": ["A", "B", "C", "D", "E"],
            "cost": [5_000, 10_000, 22_000, 25_000, 40_000],
            "effect": [0.20, 0.40, 0.55, 0.50, 1.00],
        }
    )
    result = incremental_analysis(strategies)
    statuses = {row.strategy: row.status for row in result.strategies}
    assert statuses == {"A": "ND", "B": "ND", "C": "ED", "D": "D", "E": "ND"}
    icers = {row.strategy: row.icer for row in result.strategies}
    assert icers["A"] is None
    assert icers["B"] == pytest.approx(25_000)
    assert icers["E"] == pytest.approx(50_000)
    assert icers["C"] is None and icers["D"] is None
    d_row = next(row for row in result.strategies if row.strategy == "D")
    assert d_row.dominated_by == "C"
    e_row = next(row for row in result.strategies if row.strategy == "E")
    assert e_row.compared_with == "B"
    assert result.frontier == ("A", "B", "E")
    assert json.dumps(result.to_dict())


def test_cear_example_2_is_order_independent() -> None:
    rows = [
        ("E", 40_000, 1.0),
        ("C", 22_000, 0.55),
        ("A", 5_000, 0.2),
        ("D", 25_000, 0.5),
        ("B", 10_000, 0.4),
    ]
    result = incremental_analysis(rows)
    assert [row.strategy for row in result.strategies] == ["A", "B", "C", "D", "E"]
    assert result.status_of("C") == "ED"
    assert result.icer_of("E") == pytest.approx(50_000)


def test_bcea_incremental_benefit_fixture() -> None:
    effects = np.array([[0, 1], [0, -2]])
    costs = np.array([[0, 100], [0, 10]])
    result = simulation_incremental_benefit(effects, costs, reference=0, wtp=[5, 10])
    assert result.delta_effect[:, 0].tolist() == [-1, 2]
    assert result.delta_cost[:, 0].tolist() == [-100, -10]
    assert result.incremental_benefit[:, 0, 0].tolist() == [95, 20]
    assert result.incremental_benefit[:, 0, 1].tolist() == [90, 30]
    assert result.ceac[0].tolist() == [1.0, 1.0]
    assert json.dumps(result.to_dict())


# --------------------------------------------------------------------------------------------
# More strategies
# --------------------------------------------------------------------------------------------


def test_incremental_analysis_ties_and_repeated_extended_dominance() -> None:
    # X and Y cost the same: Y (less effective) is dominated. P, Q lie above the frontier
    # O–R; removing Q reveals that P is extendedly dominated too (second pass).
    rows = [
        ("O", 0, 0.0),
        ("P", 50, 0.3),
        ("Q", 90, 0.45),
        ("R", 100, 1.0),
        ("X", 200, 1.2),
        ("Y", 200, 1.1),
    ]
    result = incremental_analysis(rows)
    statuses = {row.strategy: row.status for row in result.strategies}
    assert statuses == {"O": "ND", "P": "ED", "Q": "ED", "R": "ND", "X": "ND", "Y": "D"}
    assert result.icer_of("R") == pytest.approx(100)
    assert result.icer_of("X") == pytest.approx(500)


def test_incremental_analysis_rejects_bad_input() -> None:
    with pytest.raises(CEAError, match="at least two"):
        incremental_analysis([("A", 1, 1)])
    with pytest.raises(CEAError, match="more than once"):
        incremental_analysis([("A", 1, 1), ("A", 2, 2)])
    with pytest.raises(CEAError, match="column"):
        incremental_analysis(pd.DataFrame({"strategy": ["A", "B"], "cost": [1, 2]}))


@settings(max_examples=60)
@given(
    st.lists(
        st.tuples(
            st.floats(0, 1e5, allow_nan=False, allow_subnormal=False),  # euros
            st.floats(0, 10, allow_nan=False, allow_subnormal=False),  # QALYs
        ),
        min_size=2,
        max_size=8,
    )
)
@example(points=[(0.0, 0.0), (1.0, 2.225073858507e-311)])  # a subnormal gain: ICER infinite
def test_frontier_icers_increase_and_no_nd_is_dominated(points: list[tuple[float, float]]) -> None:
    rows = [(f"S{i}", cost, effect) for i, (cost, effect) in enumerate(points)]
    result = incremental_analysis(rows)
    frontier = [row for row in result.strategies if row.status == "ND"]
    icers = [row.icer for row in frontier[1:]]
    assert all(icer is not None and icer > 0 for icer in icers)
    assert all(a <= b + 1e-9 * max(1.0, abs(b)) for a, b in itertools.pairwise(icers))
    for row in frontier:
        for other in result.strategies:
            if other is row:
                continue
            strictly_better = other.cost <= row.cost and other.effect >= row.effect
            assert not (strictly_better and (other.cost, other.effect) != (row.cost, row.effect))


# --------------------------------------------------------------------------------------------
# Two arms: golden values on six patients
# --------------------------------------------------------------------------------------------

REF_COST = [1000.0, 1200.0, 1100.0]
REF_EFFECT = [0.50, 0.52, 0.48]
NEW_COST = [1500.0, 1700.0, 1650.0]
NEW_EFFECT = [0.70, 0.73, 0.67]


def six_patients() -> TwoArmData:
    return TwoArmData(
        "or",
        "clinic",
        np.array(REF_COST),
        np.array(REF_EFFECT),
        np.array(NEW_COST),
        np.array(NEW_EFFECT),
    )


def _cov(x: list[float], y: list[float]) -> float:
    mx, my = sum(x) / len(x), sum(y) / len(y)
    return sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True)) / (len(x) - 1)


def test_six_patients_point_estimates_by_hand() -> None:
    result = two_arm_cea(six_patients(), wtp=[0, 2000, 5000])
    # ΔC = 1616.67 − 1100 = 516.67; ΔE = 0.70 − 0.50 = 0.20; ICER = 2583.33
    assert result.delta_cost == pytest.approx(1550 / 3)
    assert result.delta_effect == pytest.approx(0.2)
    assert result.icer == pytest.approx(1550 / 3 / 0.2)
    assert result.icer == pytest.approx(2583.333333)
    assert result.status == "NE"
    # within-arm moments by hand: s²_C0 = 10000, s²_C1 = 10833.3, s²_E0 = 0.0004,
    # s²_E1 = 0.0009, cov0 = 1, cov1 = 0.75
    assert result.var_cost == pytest.approx(10000 / 3 + 32500 / 9)
    assert result.var_effect == pytest.approx(0.0004 / 3 + 0.0009 / 3)
    assert result.cov_cost_effect == pytest.approx(1 / 3 + 0.75 / 3)
    assert result.inmb.tolist() == pytest.approx([-1550 / 3, 400 - 1550 / 3, 1000 - 1550 / 3])


def test_six_patients_variance_ceac_and_fieller_by_formula() -> None:
    lam = [0.0, 1000.0, 2583.0, 4000.0]
    result = two_arm_cea(six_patients(), wtp=lam)
    dc = statistics.mean(NEW_COST) - statistics.mean(REF_COST)
    de = statistics.mean(NEW_EFFECT) - statistics.mean(REF_EFFECT)
    v_c = statistics.variance(NEW_COST) / 3 + statistics.variance(REF_COST) / 3
    v_e = statistics.variance(NEW_EFFECT) / 3 + statistics.variance(REF_EFFECT) / 3
    v_ce = _cov(NEW_COST, NEW_EFFECT) / 3 + _cov(REF_COST, REF_EFFECT) / 3
    for k, value in enumerate(lam):
        inmb = value * de - dc
        var = value**2 * v_e + v_c - 2 * value * v_ce
        assert result.inmb[k] == pytest.approx(inmb)
        assert result.inmb_se[k] == pytest.approx(math.sqrt(var))
        assert result.ceac[k] == pytest.approx(NormalDist().cdf(inmb / math.sqrt(var)))
    a = de**2 - Z**2 * v_e
    b = dc * de - Z**2 * v_ce
    c = dc**2 - Z**2 * v_c
    assert a > 0 and b * b - a * c >= 0
    expected = ((b - math.sqrt(b * b - a * c)) / a, (b + math.sqrt(b * b - a * c)) / a)
    assert result.fieller is not None
    assert result.fieller[0] == pytest.approx(expected[0], rel=1e-6)
    assert result.fieller[1] == pytest.approx(expected[1], rel=1e-6)
    # hand calculation: about 1808 … 3465
    assert result.fieller[0] == pytest.approx(1808.5, abs=2)
    assert result.fieller[1] == pytest.approx(3465.4, abs=2)
    as_dict = result.to_dict()
    assert as_dict["fieller_95"] == pytest.approx(list(result.fieller))
    assert set(as_dict["inmb"]) == {"0", "1000", "2583", "4000"}
    assert json.dumps(as_dict)


def test_fieller_unbounded_when_effect_is_uncertain() -> None:
    assert fieller_interval(100.0, 0.01, 50.0, 0.01, 0.0) is None
    bounded = fieller_interval(100.0, 1.0, 25.0, 0.01, 0.0)
    assert bounded is not None and bounded[0] < 100 < bounded[1]


def test_default_wtp_grid_is_bceas() -> None:
    assert DEFAULT_WTP.size == 501
    assert DEFAULT_WTP[0] == 0 and DEFAULT_WTP[-1] == 50_000
    assert np.allclose(np.diff(DEFAULT_WTP), 100)


def test_dominance_never_has_an_icer() -> None:
    data = TwoArmData(
        "a",
        "b",
        np.array([10.0, 12.0]),
        np.array([1.0, 1.2]),
        np.array([5.0, 6.0]),
        np.array([1.5, 1.7]),
    )
    result = two_arm_cea(data)
    assert result.status == "dominates"
    assert result.icer is None
    assert result.to_dict()["icer"] is None


@given(
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    st.floats(-10, 10, allow_nan=False, allow_infinity=False),
)
def test_status_consistent_with_signs(delta_cost: float, delta_effect: float) -> None:
    status = icer_status(delta_cost, delta_effect)
    icer = icer_value(delta_cost, delta_effect)
    if delta_cost < 0 and delta_effect >= 0:
        assert status == "dominates"
    if delta_cost > 0 and delta_effect <= 0:
        assert status == "dominated"
    if delta_cost > 0 and delta_effect > 0:
        assert status == "NE"
    if delta_cost < 0 and delta_effect < 0:
        assert status == "SW"
    if status in ("NE", "SW"):
        assert icer is not None and icer > 0
        if math.isfinite(icer):
            assert icer * delta_effect == pytest.approx(delta_cost)
    else:
        assert icer is None


@settings(max_examples=80)
@given(
    st.floats(-1e4, 1e4),
    st.floats(-2, 2),
    st.floats(1e-2, 1e6),
    st.floats(1e-6, 1.0),
    st.floats(-0.99, 0.99),
)
def test_fieller_contains_the_ratio(
    dc: float, de: float, v_c: float, v_e: float, rho: float
) -> None:
    interval = fieller_interval(dc, de, v_c, v_e, rho * math.sqrt(v_c * v_e))
    if interval is not None:
        assume(abs(de) > 1e-9)
        ratio = dc / de
        width = abs(interval[1] - interval[0])
        assert interval[0] - 1e-7 * width <= ratio <= interval[1] + 1e-7 * width


@settings(max_examples=60)
@given(
    st.lists(st.floats(0, 1e4), min_size=2, max_size=12),
    st.lists(st.floats(0, 1), min_size=2, max_size=12),
    st.lists(st.floats(0, 1e4), min_size=2, max_size=12),
    st.lists(st.floats(0, 1), min_size=2, max_size=12),
)
def test_parametric_ceac_is_a_probability(
    c0: list[float], e0: list[float], c1: list[float], e1: list[float]
) -> None:
    n0, n1 = min(len(c0), len(e0)), min(len(c1), len(e1))
    data = TwoArmData(
        "0", "1", np.array(c0[:n0]), np.array(e0[:n0]), np.array(c1[:n1]), np.array(e1[:n1])
    )
    result = two_arm_cea(data, wtp=[0, 100, 10_000, 50_000])
    assert np.all((result.ceac >= 0) & (result.ceac <= 1))


# --------------------------------------------------------------------------------------------
# Input handling
# --------------------------------------------------------------------------------------------


def frame_of_six() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "arm": ["or"] * 3 + ["clinic"] * 3,
            "cost": REF_COST + NEW_COST,
            "effect": REF_EFFECT + NEW_EFFECT,
        }
    )


def test_from_frame_uses_reference_and_sorted_default() -> None:
    data = TwoArmData.from_frame(
        frame_of_six(), arm="arm", cost="cost", effect="effect", reference="or"
    )
    assert (data.reference, data.intervention) == ("or", "clinic")
    assert data.cost_intervention.tolist() == NEW_COST
    default = TwoArmData.from_frame(frame_of_six(), arm="arm", cost="cost", effect="effect")
    assert default.reference == "clinic"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns="cost"), "missing column"),
        (lambda f: f.assign(arm=["a", "b", "c", "a", "b", "c"]), "exactly two arms"),
        (lambda f: f.assign(cost=["x", 1, 2, 3, 4, 5]), "non-numeric"),
        (lambda f: f.assign(effect=[np.nan, 1, 2, 3, 4, 5]), "empty"),
    ],
)
def test_from_frame_errors(change: object, message: str) -> None:
    frame = change(frame_of_six())  # type: ignore[operator]
    with pytest.raises(CEAError, match=message):
        TwoArmData.from_frame(frame, arm="arm", cost="cost", effect="effect")


def test_unknown_reference_and_tiny_arms() -> None:
    with pytest.raises(CEAError, match="reference arm 'x'"):
        TwoArmData.from_frame(
            frame_of_six(), arm="arm", cost="cost", effect="effect", reference="x"
        )
    with pytest.raises(CEAError, match="at least 2"):
        TwoArmData.from_arrays([1, 2, 3], [1, 2, 3], [0, 0, 1])


# --------------------------------------------------------------------------------------------
# Bootstrap
# --------------------------------------------------------------------------------------------


def simulated(n: int = 2000, seed: int = 5) -> TwoArmData:
    rng = np.random.default_rng(seed)
    effect0 = rng.normal(0.60, 0.20, n)
    effect1 = rng.normal(0.66, 0.20, n)
    cost0 = 4000 + 3000 * effect0 + rng.gamma(4, 250, n)
    cost1 = 4600 + 3000 * effect1 + rng.gamma(4, 250, n)
    return TwoArmData("or", "clinic", cost0, effect0, cost1, effect1)


@pytest.fixture(scope="module")
def large() -> TwoArmData:
    return simulated()


@pytest.fixture(scope="module")
def large_boot(large: TwoArmData) -> object:
    return bootstrap_two_arms(large, n_boot=5000, seed=20240601)


def test_bootstrap_ceac_agrees_with_parametric(large: TwoArmData, large_boot: object) -> None:
    parametric = two_arm_cea(large)
    assert np.max(np.abs(large_boot.ceac - parametric.ceac)) < 0.02  # type: ignore[attr-defined]


def test_bootstrap_intervals_agree_with_parametric(large: TwoArmData, large_boot: object) -> None:
    boot = large_boot
    parametric = two_arm_cea(large)
    se_c, se_e = math.sqrt(parametric.var_cost), math.sqrt(parametric.var_effect)
    dc_low, dc_high = boot.delta_cost_interval  # type: ignore[attr-defined]
    assert dc_low == pytest.approx(parametric.delta_cost - Z * se_c, abs=0.1 * se_c)
    assert dc_high == pytest.approx(parametric.delta_cost + Z * se_c, abs=0.1 * se_c)
    de_low, de_high = boot.delta_effect_interval  # type: ignore[attr-defined]
    assert de_low == pytest.approx(parametric.delta_effect - Z * se_e, abs=0.1 * se_e)
    assert de_high == pytest.approx(parametric.delta_effect + Z * se_e, abs=0.1 * se_e)
    for k in (0, 200, 500):
        se = parametric.inmb_se[k]
        assert boot.inmb_low[k] == pytest.approx(parametric.inmb[k] - Z * se, abs=0.1 * se)  # type: ignore[attr-defined]
        assert boot.inmb_high[k] == pytest.approx(parametric.inmb[k] + Z * se, abs=0.1 * se)  # type: ignore[attr-defined]
    # the replicates' spread matches the analytic standard errors
    assert np.std(boot.delta_cost) == pytest.approx(se_c, rel=0.05)  # type: ignore[attr-defined]
    assert np.std(boot.delta_effect) == pytest.approx(se_e, rel=0.05)  # type: ignore[attr-defined]
    # replicate correlation matches v_CE / √(v_C v_E)
    rho = parametric.cov_cost_effect / (se_c * se_e)
    assert np.corrcoef(boot.delta_cost, boot.delta_effect)[0, 1] == pytest.approx(rho, abs=0.05)  # type: ignore[attr-defined]


def test_bootstrap_icer_interval_agrees_with_fieller(large: TwoArmData, large_boot: object) -> None:
    parametric = two_arm_cea(large)
    assert parametric.fieller is not None
    interval = large_boot.icer_interval  # type: ignore[attr-defined]
    assert interval.bounded
    assert (interval.low_quadrant, interval.high_quadrant) == ("NE", "NE")
    assert interval.low == pytest.approx(parametric.fieller[0], rel=0.1)
    assert interval.high == pytest.approx(parametric.fieller[1], rel=0.1)
    assert interval.low < parametric.icer < interval.high


def test_bootstrap_delta_cost_interval_agrees_with_scipy(large: TwoArmData) -> None:
    ours = bootstrap_two_arms(large, wtp=[0], n_boot=5000, seed=3)
    theirs = sps.bootstrap(
        (large.cost_intervention, large.cost_reference),
        lambda x, y, axis: np.mean(x, axis=axis) - np.mean(y, axis=axis),
        n_resamples=5000,
        method="percentile",
        paired=False,
        vectorized=True,
        random_state=np.random.default_rng(4),
    )
    se = float(theirs.standard_error)
    assert np.std(ours.delta_cost) == pytest.approx(se, rel=0.05)
    assert ours.delta_cost_interval[0] == pytest.approx(
        theirs.confidence_interval.low, abs=0.1 * se
    )
    assert ours.delta_cost_interval[1] == pytest.approx(
        theirs.confidence_interval.high, abs=0.1 * se
    )


def test_bootstrap_is_seeded_and_independent_of_threads() -> None:
    data = simulated(n=300, seed=9)
    first = bootstrap_two_arms(data, n_boot=2000, seed=42, workers=1)
    again = bootstrap_two_arms(data, n_boot=2000, seed=42, workers=3)
    other = bootstrap_two_arms(data, n_boot=2000, seed=43)
    assert np.array_equal(first.delta_cost, again.delta_cost)
    assert np.array_equal(first.delta_effect, again.delta_effect)
    assert np.array_equal(first.ceac, again.ceac)
    assert not np.array_equal(first.delta_cost, other.delta_cost)
    assert first.seed == 42


def test_bootstrap_uses_many_blocks_consistently() -> None:
    # 40 000 patients per arm → blocks of 25 replicates: the block seams must not matter
    rng = np.random.default_rng(1)
    n = 40_000
    data = TwoArmData(
        "a",
        "b",
        rng.normal(100, 10, n),
        rng.normal(1, 0.1, n),
        rng.normal(110, 10, n),
        rng.normal(1.1, 0.1, n),
    )
    result = bootstrap_two_arms(data, wtp=[0, 100], n_boot=120, seed=1)
    assert result.delta_cost.shape == (120,)
    assert np.all(np.isfinite(result.delta_cost))
    assert len(np.unique(result.delta_cost)) == 120
    assert np.std(result.delta_cost) == pytest.approx(math.sqrt(200 / n), rel=0.25)


def test_bootstrap_resamples_within_arms_and_keeps_pairs() -> None:
    # every patient's effect equals cost / 1000, so every replicate has ΔE = ΔC / 1000
    cost0 = np.array([1000.0, 2000.0, 3000.0, 4000.0])
    cost1 = np.array([1500.0, 2500.0, 6000.0])
    data = TwoArmData("a", "b", cost0, cost0 / 1000, cost1, cost1 / 1000)
    result = bootstrap_two_arms(data, n_boot=500, seed=7)
    assert np.allclose(result.delta_effect, result.delta_cost / 1000)
    # arm means stay within each arm's range (resampling within arms)
    assert result.delta_cost.min() >= 1500 - 4000 - 1e-9
    assert result.delta_cost.max() <= 6000 - 1000 + 1e-9


def test_bootstrap_to_dict_is_json(large_boot: object) -> None:
    as_dict = large_boot.to_dict(include_replicates=True)  # type: ignore[attr-defined]
    text = json.dumps(as_dict)
    assert len(as_dict["ce_plane"]["delta_cost"]) == 5000
    assert set(as_dict["inmb"]) == {str(int(x)) for x in DEFAULT_WTP}
    assert "NaN" not in text


def test_angle_interval_with_a_dominance_limit() -> None:
    rng = np.random.default_rng(0)
    de = rng.normal(1.0, 0.05, 4000)
    dc = rng.normal(50.0, 100.0, 4000)
    interval = icer_angle_interval(dc, de, point=(50.0, 1.0))
    assert interval.bounded
    assert interval.low is None and interval.low_quadrant == "dominates"
    assert interval.high_quadrant == "NE" and interval.high == pytest.approx(
        np.quantile(dc / de, 0.975), rel=0.05
    )


def test_angle_interval_unbounded_when_effect_straddles_zero() -> None:
    rng = np.random.default_rng(0)
    interval = icer_angle_interval(rng.normal(100, 10, 4000), rng.normal(0.0, 1.0, 4000))
    assert not interval.bounded and interval.low is None and interval.high is None


def test_angle_interval_in_the_sw_quadrant() -> None:
    rng = np.random.default_rng(2)
    de = rng.normal(-1.0, 0.05, 4000)
    dc = rng.normal(-5000.0, 300.0, 4000)
    interval = icer_angle_interval(dc, de, point=(-5000.0, -1.0))
    assert interval.bounded and interval.low_quadrant == interval.high_quadrant == "SW"
    ratios = dc / de
    assert interval.low == pytest.approx(np.quantile(ratios, 0.025), rel=0.02)
    assert interval.high == pytest.approx(np.quantile(ratios, 0.975), rel=0.02)


@settings(max_examples=60)
@given(
    st.lists(st.floats(-1e4, 1e4), min_size=1, max_size=40),
    st.lists(st.floats(1e-3, 5), min_size=1, max_size=40),
    st.booleans(),
)
def test_bootstrap_ceac_monotone_when_effect_sign_is_certain(
    costs: list[float], effects: list[float], negative: bool
) -> None:
    n = min(len(costs), len(effects))
    dc = np.array(costs[:n])
    de = np.array(effects[:n]) * (-1 if negative else 1)
    ceac = ceac_from_replicates(dc, de, DEFAULT_WTP)
    assert np.all((ceac >= 0) & (ceac <= 1))
    steps = np.diff(ceac)
    assert np.all(steps <= 1e-12) if negative else np.all(steps >= -1e-12)
    assert ceac[0] == pytest.approx(np.mean(-dc > 0))


# --------------------------------------------------------------------------------------------
# Net-benefit regression
# --------------------------------------------------------------------------------------------


def observational(n: int = 400, seed: int = 8) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.normal(70, 8, n)
    volume = rng.gamma(5, 12, n)
    sex = rng.choice(["a", "b", "c"], n)
    treated = rng.random(n) < 1 / (1 + np.exp(-(age - 70) / 5))
    effect = 0.5 + 0.1 * treated - 0.01 * (age - 70) + rng.normal(0, 0.15, n)
    cost = 5000 - 2500 * treated + 40 * (age - 70) + 10 * volume + rng.gamma(3, 300, n)
    arm = np.where(treated, "clinic", "or")
    return pd.DataFrame(
        {"arm": arm, "cost": cost, "effect": effect, "age": age, "volume": volume, "sex": sex}
    )


@pytest.mark.parametrize("cov_type", ["HC0", "HC1", "HC2", "HC3"])
def test_net_benefit_regression_equals_direct_statsmodels_fits(cov_type: str) -> None:
    frame = observational()
    lams = [0.0, 10_000.0, 30_000.0, 50_000.0]
    result = net_benefit_regression(
        frame,
        arm="arm",
        cost="cost",
        effect="effect",
        covariates=["age", "volume", "sex"],
        reference="or",
        wtp=lams,
        cov_type=cov_type,
    )  # type: ignore[arg-type]
    for k, lam in enumerate(lams):
        data = frame.assign(
            nmb=lam * frame["effect"] - frame["cost"],
            clinic=(frame["arm"] == "clinic").astype(float),
        )
        fit = smf.ols("nmb ~ clinic + age + volume + C(sex)", data=data).fit(cov_type=cov_type)
        assert result.inmb[k] == pytest.approx(fit.params["clinic"], rel=1e-9, abs=1e-6)
        assert result.se[k] == pytest.approx(fit.bse["clinic"], rel=1e-7)
        low, high = fit.conf_int().loc["clinic"]
        assert result.ci_low[k] == pytest.approx(low, rel=1e-6, abs=1e-6)
        assert result.ci_high[k] == pytest.approx(high, rel=1e-6, abs=1e-6)
        assert result.p_value[k] == pytest.approx(fit.pvalues["clinic"], rel=1e-6, abs=1e-12)
    assert result.terms == ("age", "volume", "sex=b", "sex=c")


def test_net_benefit_regression_without_covariates_is_the_unadjusted_inmb() -> None:
    frame = frame_of_six()
    result = net_benefit_regression(
        frame, arm="arm", cost="cost", effect="effect", reference="or", wtp=[0, 2000]
    )
    assert result.inmb.tolist() == pytest.approx([-1550 / 3, 2000 * 0.2 - 1550 / 3])
    assert result.delta_cost == pytest.approx(1550 / 3)


def test_net_benefit_regression_recovers_the_adjusted_effect() -> None:
    frame = observational(n=4000, seed=12)
    result = net_benefit_regression(
        frame,
        arm="arm",
        cost="cost",
        effect="effect",
        covariates=["age", "volume"],
        reference="or",
        wtp=[0, 20_000],
    )
    # truth: ΔC = −2500, ΔE = 0.1 → INMB(20 000) = 2000 + 2500
    assert result.ci_low[0] < 2500 < result.ci_high[0]
    assert result.ci_low[1] < 4500 < result.ci_high[1]
    assert json.dumps(result.to_dict())
    naive = two_arm_cea(
        TwoArmData.from_frame(frame, arm="arm", cost="cost", effect="effect", reference="or"),
        wtp=[0],
    )
    assert not result.ci_low[0] < naive.inmb[0] < result.ci_high[0]


def test_net_benefit_regression_errors() -> None:
    frame = observational(n=50)
    with pytest.raises(CEAError, match="missing column"):
        net_benefit_regression(
            frame, arm="arm", cost="cost", effect="effect", covariates=["height"]
        )
    with pytest.raises(CEAError, match="collinear"):
        net_benefit_regression(
            frame.assign(age2=frame["age"] * 2),
            arm="arm",
            cost="cost",
            effect="effect",
            covariates=["age", "age2"],
        )
    with pytest.raises(CEAError, match="empty"):
        net_benefit_regression(
            frame.assign(age=np.nan), arm="arm", cost="cost", effect="effect", covariates=["age"]
        )


def test_hc3_cross_covariance_matches_statsmodels_on_stacked_outcomes() -> None:
    frame = observational(n=120, seed=2)
    x = sm.add_constant(np.column_stack([(frame["arm"] == "clinic").astype(float), frame["age"]]))
    result = net_benefit_regression(
        frame,
        arm="arm",
        cost="cost",
        effect="effect",
        covariates=["age"],
        reference="or",
        wtp=[1.0],
    )
    fit = sm.OLS(frame["effect"] - frame["cost"], x).fit(cov_type="HC3")
    var_direct = np.asarray(fit.cov_params())[1, 1]
    var_combined = result.delta_effect_se**2 + result.delta_cost_se**2 - 2 * result.cov_cost_effect
    assert var_combined == pytest.approx(var_direct, rel=1e-9)


def test_strategy_bootstrap_in_blocks_draws_what_one_index_matrix_draws(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The strategies' bootstrap means are drawn in blocks of replicates (memory); any block
    size gives the figures of one n_boot × n index matrix, to the last bit."""
    from vaikuttavuus.domain import cea

    rng = np.random.default_rng(11)
    frame = pd.DataFrame(
        {
            "procedure": rng.choice(["turp", "holep", "laser"], 301),
            "cost": rng.gamma(2.0, 900.0, 301),
            "effect": rng.normal(0.4, 0.2, 301),
        }
    )

    def run() -> cea.StrategyUncertainty:
        return cea.strategy_uncertainty(
            frame, strategy="procedure", cost="cost", effect="effect",
            wtp=[0.0, 20_000.0], n_boot=997, seed=3,
        )  # fmt: skip

    monkeypatch.setattr(cea, "_TAKE_INDICES", 10**9)  # one block
    whole = run()
    monkeypatch.setattr(cea, "_TAKE_INDICES", 1_000)  # blocks of 9–10 replicates
    blocked = run()
    pd.testing.assert_frame_equal(whole.means, blocked.means, check_exact=True)
    pd.testing.assert_frame_equal(whole.frontier, blocked.frontier, check_exact=True)
    pd.testing.assert_frame_equal(whole.best, blocked.best, check_exact=True)
