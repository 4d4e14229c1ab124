"""The causal-inference primitives against published and hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm
from statsmodels.stats.multitest import multipletests

from vaikuttavuus.domain import causal

# -- E-values (VanderWeele & Ding, Ann Intern Med 2017;167:268–274) ---------------------------


def test_e_value_of_the_papers_example() -> None:
    """The paper's worked example: RR 3.9 (95 % CI 1.8–8.7) gives E-values 7.26 and 3.0."""
    assert causal.e_value_risk_ratio(3.9) == pytest.approx(7.26, abs=0.005)
    assert causal.e_value_risk_ratio(1.8) == pytest.approx(3.0, abs=1e-12)


def test_e_value_of_a_protective_ratio_uses_its_inverse() -> None:
    # RR 0.8 → 1/0.8 = 1.25 → 1.25 + √(1.25 · 0.25) = 1.80902
    assert causal.e_value_risk_ratio(0.8) == pytest.approx(1.80902, abs=1e-5)
    assert causal.e_value_risk_ratio(1.0) == 1.0
    assert math.isnan(causal.e_value_risk_ratio(0.0))


def test_e_value_of_a_difference_in_a_continuous_outcome() -> None:
    # d = −0.5 / 1 → RR ≈ exp(0.91·(−0.5)) = 0.63445 → 1/RR = 1.57617 → E = 2.52913
    point, limit = causal.e_value(-0.5, -0.8, -0.2, 1.0)
    assert point == pytest.approx(2.52913, abs=1e-4)
    # the limit nearer the null: −0.2 → 1/RR = exp(0.182) = 1.19961 → E = 1.19961 + 0.48934
    assert limit == pytest.approx(1.68895, abs=1e-4)
    _point, including = causal.e_value(-0.5, -1.0, 0.1, 1.0)
    assert including == 1.0  # the interval includes the null


# -- multiplicity --------------------------------------------------------------------------------


def test_holm_and_benjamini_hochberg_by_hand() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    # Holm: sorted 0.005, 0.01, 0.03, 0.04 → 4·0.005, 3·0.01, 2·0.03, max(0.06, 1·0.04)
    assert causal.adjust_p_values(p, "holm") == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # BH: 0.005·4/1, 0.01·4/2, 0.03·4/3, 0.04·4/4, then running minimum from the top
    assert causal.adjust_p_values(p, "bh") == pytest.approx([0.02, 0.04, 0.04, 0.02])


def test_multiplicity_agrees_with_statsmodels_and_skips_missing_values() -> None:
    rng = np.random.default_rng(4)
    p = rng.random(40) ** 3
    for ours, theirs in (("holm", "holm"), ("bh", "fdr_bh")):
        expected = multipletests(p, method=theirs)[1]
        assert causal.adjust_p_values(p, ours) == pytest.approx(expected, abs=1e-12)
    with_gaps = np.array([0.01, np.nan, 0.02])
    adjusted = causal.adjust_p_values(with_gaps, "holm")
    assert math.isnan(adjusted[1]) and adjusted[[0, 2]] == pytest.approx([0.02, 0.02])


# -- AIPW and IPW ----------------------------------------------------------------------------------


def test_aipw_by_hand() -> None:
    """φ = μ₁ − μ₀ + A(Y − μ₁)/e − (1 − A)(Y − μ₀)/(1 − e):
    (−2 − 2), (−2 + 2), (−2 − 4), (−2 − 1/0.75) → −4, 0, −6, −3.3333; mean −3.3333, sample SD
    2.49444, SE = SD/√4 = 1.24722."""
    result = causal.aipw(
        [3, 5, 4, 8], [1, 0, 1, 0], [4, 4, 5, 5], [6, 6, 7, 7], [0.5, 0.5, 0.25, 0.25]
    )
    assert result.pseudo == pytest.approx([-4, 0, -6, -10 / 3])
    assert result.estimate == pytest.approx(-10 / 3)
    assert result.result.se == pytest.approx(1.247219, abs=1e-6)
    assert (result.n, result.n_exposed, result.n_unexposed) == (4, 2, 2)
    z = 1.959963984540054
    assert result.result.ci_low == pytest.approx(-10 / 3 - z * 1.247219, abs=1e-5)


def test_aipw_with_a_saturated_outcome_model_is_the_standardised_difference() -> None:
    """With μ₁, μ₀ the group means within each stratum, the augmentation terms cancel within
    strata and AIPW equals the standardisation estimator whatever the propensity scores."""
    rng = np.random.default_rng(1)
    stratum = rng.integers(0, 3, 600)
    treated = (rng.random(600) < 0.2 + 0.2 * stratum).astype(float)
    y = 1.0 + stratum - 0.7 * treated + rng.normal(0, 1, 600)
    mu1 = np.array([y[(stratum == s) & (treated == 1)].mean() for s in stratum])
    mu0 = np.array([y[(stratum == s) & (treated == 0)].mean() for s in stratum])
    expected = float(np.mean(mu1 - mu0))
    for propensity in (np.full(600, 0.4), 0.2 + 0.2 * stratum + 0.05):
        result = causal.aipw(y, treated, mu1, mu0, propensity)
        assert result.estimate == pytest.approx(expected, abs=1e-10)


def test_ipw_by_hand_and_with_a_response_model() -> None:
    # exposed: weights 1/0.5, 1/0.25 → (2·3 + 4·4)/6
    # unexposed: 1/0.5, 1/0.75 → (2·5 + 4/3·8)/(10/3) = 6.2
    result = causal.ipw([3, 5, 4, 8], [1, 0, 1, 0], [0.5, 0.5, 0.25, 0.25])
    assert result.estimate == pytest.approx(22 / 6 - 6.2)
    # a missing outcome gets weight 0, the others 1/response as well
    weighted = causal.ipw(
        [3, 5, 4, 8, np.nan], [1, 0, 1, 0, 1], [0.5, 0.5, 0.25, 0.25, 0.5],
        response=[1, 1, 0.5, 1, 0.5],
    )  # fmt: skip
    assert weighted.estimate == pytest.approx((2 * 3 + 8 * 4) / 10 - 6.2)
    with pytest.raises(causal.CausalError):
        causal.ipw([1, 2], [1, 1], [0.5, 0.5])


def test_aipw_refuses_unbounded_scores_and_missing_outcomes() -> None:
    with pytest.raises(causal.CausalError, match="strictly between"):
        causal.aipw([1, 2], [1, 0], [1, 1], [0, 0], [1.0, 0.5])
    with pytest.raises(causal.CausalError, match="missing"):
        causal.aipw([1, np.nan], [1, 0], [1, 1], [0, 0], [0.5, 0.5])


def test_propensity_bounds_are_counted() -> None:
    bounded, low, high = causal.bound_propensity([0.001, 0.5, 0.995, 0.02], (0.01, 0.99))
    assert bounded == pytest.approx([0.01, 0.5, 0.99, 0.02])
    assert (low, high) == (1, 1)


# -- models ----------------------------------------------------------------------------------------


def test_logistic_regression_of_a_binary_covariate_by_hand() -> None:
    """One 0/1 covariate: the MLE reproduces the group shares, so the intercept is logit(p₀)
    and the slope logit(p₁) − logit(p₀) (here 3/10 and 6/8)."""
    x = np.array([0] * 10 + [1] * 8, dtype=float)
    y = np.array([1] * 3 + [0] * 7 + [1] * 6 + [0] * 2, dtype=float)
    fit = causal.fit_logistic(np.column_stack([np.ones(18), x]), y)
    logit = lambda p: math.log(p / (1 - p))  # noqa: E731
    assert fit.converged
    assert fit.params == pytest.approx([logit(0.3), logit(0.75) - logit(0.3)], abs=1e-8)


def test_logistic_regression_agrees_with_statsmodels_and_reports_separation() -> None:
    rng = np.random.default_rng(2)
    x = np.column_stack([np.ones(500), rng.normal(size=(500, 3))])
    y = (rng.random(500) < 1 / (1 + np.exp(-(x @ [-0.5, 1.0, -0.5, 0.2])))).astype(float)
    ours = causal.fit_logistic(x, y)
    theirs = sm.Logit(y, x).fit(disp=0)
    assert ours.params == pytest.approx(theirs.params, abs=1e-7)
    warm = causal.fit_logistic(x, y, start=ours.params)
    assert warm.iterations <= 2
    separated = causal.fit_logistic(x, (x[:, 1] > 0).astype(float))
    assert not separated.converged
    penalised = causal.fit_logistic(x, (x[:, 1] > 0).astype(float), ridge=0.25)
    assert penalised.converged and np.all(np.abs(penalised.params) < 50)
    # a weak penalty barely moves a well-determined fit
    assert causal.fit_logistic(x, y, ridge=0.25).params == pytest.approx(theirs.params, abs=0.02)


def test_linear_algebra_helpers() -> None:
    rng = np.random.default_rng(3)
    x = np.column_stack([np.ones(50), rng.normal(size=(50, 2))])
    dependent = np.column_stack([x, x[:, 1] + 2 * x[:, 2], rng.normal(size=50)])
    assert causal.independent_columns(dependent).tolist() == [True, True, True, False, True]
    weights = rng.random(50)
    assert causal.weighted_gram(x, weights) == pytest.approx(x.T @ (x * weights[:, None]))
    y = x @ [1.0, 2.0, -1.0] + rng.normal(0, 0.1, 50)
    beta, inverse = causal.fit_linear(x, y)
    ols = sm.OLS(y, x).fit(cov_type="HC1")
    assert beta == pytest.approx(ols.params)
    robust = causal.robust_covariance(x, y - x @ beta, inverse)
    assert robust == pytest.approx(np.asarray(ols.cov_params()))
