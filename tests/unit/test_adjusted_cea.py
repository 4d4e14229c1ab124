"""The adjusted two-arm engine and multiple imputation against independent computations:
g-computation against statsmodels' interacted OLS, the cluster-robust variance against
statsmodels' cluster covariance, Rubin's rules against hand-computed values, the bootstrap's
refits against a per-replicate refit, and the bounded probability."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from vaikuttavuus.domain import adjusted_cea
from vaikuttavuus.domain.adjusted_cea import Design, g_computation
from vaikuttavuus.domain.imputation import multiple_imputation, pool


def _data(seed: int = 1, n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n)
    z = rng.normal(5, 2, n)
    treat = (rng.random(n) < 1 / (1 + np.exp(-x))).astype(int)
    y = 1 + 2 * x + 0.3 * z + treat * (1.5 + 0.8 * x) + rng.normal(0, 1, n)
    cost = 1000 + 200 * x - 300 * treat + rng.normal(0, 150, n)
    cluster = rng.integers(0, 20, n)
    return pd.DataFrame({"x": x, "z": z, "treat": treat, "y": y, "cost": cost, "cluster": cluster})


def test_g_computation_equals_the_interacted_model_with_centred_covariates() -> None:
    data = _data()
    design = Design(data["treat"].to_numpy(), data[["x", "z"]].to_numpy())
    result = g_computation(design, data[["y"]].to_numpy())
    centred = data[["x", "z"]] - data[["x", "z"]].mean()
    exog = sm.add_constant(
        pd.DataFrame(
            {
                "treat": data["treat"],
                "x": centred["x"],
                "z": centred["z"],
                "tx": data["treat"] * centred["x"],
                "tz": data["treat"] * centred["z"],
            }
        )
    )
    fit = sm.OLS(data["y"], exog).fit()
    assert result.interacted
    assert result.ate[0] == pytest.approx(fit.params["treat"], rel=1e-9)
    # the true ATE is 1.5 + 0.8·E[x] = 1.5: within three standard errors
    covariance, _df, _g = adjusted_cea._robust_covariance(result.phi, None, result.n_columns)
    assert abs(result.ate[0] - 1.5) < 3 * math.sqrt(covariance[0, 0])


def test_shared_slopes_match_ancova_and_its_cluster_robust_variance() -> None:
    data = _data(n=26)
    design = Design(
        data["treat"].to_numpy(), data[["x", "z"]].to_numpy(), data["cluster"].to_numpy()
    )
    result = g_computation(design, data[["y"]].to_numpy())
    assert not result.interacted  # 26 persons: too few for arm-specific slopes of 3 columns
    exog = sm.add_constant(data[["treat", "x", "z"]])
    fit = sm.OLS(data["y"], exog).fit(cov_type="cluster", cov_kwds={"groups": data["cluster"]})
    covariance, df, clusters = adjusted_cea._robust_covariance(
        result.phi, design.clusters, result.n_columns
    )
    assert result.ate[0] == pytest.approx(fit.params["treat"], rel=1e-9)
    assert covariance[0, 0] == pytest.approx(fit.cov_params().loc["treat", "treat"], rel=1e-6)
    assert clusters == data["cluster"].nunique()
    assert df == clusters - 1


def test_too_few_clusters_fall_back_to_person_level_errors() -> None:
    data = _data(n=200)
    phi = np.random.default_rng(3).normal(size=(200, 1))
    _cov, df, clusters = adjusted_cea._robust_covariance(phi, data["cluster"].to_numpy() % 3, 4)
    assert clusters is None
    assert df == 196


def test_rubins_rules_by_hand() -> None:
    estimates = [1.0, 1.4, 0.8, 1.2]
    variances = [0.04, 0.05, 0.045, 0.05]
    pooled = pool(estimates, variances, df_complete=50)
    m = 4
    within = np.mean(variances)
    between = np.var(estimates, ddof=1)
    total = within + (1 + 1 / m) * between
    gamma = (1 + 1 / m) * between / total
    df_old = (m - 1) / gamma**2
    df_obs = (51 / 53) * 50 * (1 - gamma)
    df = 1 / (1 / df_old + 1 / df_obs)
    assert pooled.estimate == pytest.approx(1.1)
    assert pooled.se == pytest.approx(math.sqrt(total))
    assert pooled.df == pytest.approx(df)
    from scipy import stats

    assert pooled.ci_high - pooled.estimate == pytest.approx(stats.t.ppf(0.975, df) * pooled.se)
    assert pooled.fmi == pytest.approx(gamma)
    single = pool([2.0], [0.25], df_complete=30)
    assert single.se == pytest.approx(0.5)
    assert single.df == pytest.approx(31 / 33 * 30)


def test_imputation_is_per_arm_reproducible_and_keeps_observed_values() -> None:
    data = _data(n=300)
    data.loc[data.index % 4 == 0, "y"] = np.nan
    first = multiple_imputation(data, columns=["x", "z", "y", "cost"], by="treat", m=3, seed=5)
    again = multiple_imputation(data, columns=["x", "z", "y", "cost"], by="treat", m=3, seed=5)
    for a, b in zip(first.datasets, again.datasets, strict=True):
        pd.testing.assert_frame_equal(a, b)
    observed = data["y"].notna()
    for completed in first.datasets:
        assert completed["y"].notna().all()
        assert (completed.loc[observed, "y"] == data.loc[observed, "y"]).all()
        # predictive mean matching: imputed values are values observed in the same arm
        for arm in (0, 1):
            rows = (data["treat"] == arm) & ~observed
            donors = set(data.loc[(data["treat"] == arm) & observed, "y"])
            assert set(completed.loc[rows, "y"]) <= donors
    assert not first.datasets[0]["y"].equals(first.datasets[1]["y"])
    assert first.missing["y"] == pytest.approx(
        {str(a): float(p["y"].isna().mean()) for a, p in data.groupby("treat")}
    )


def test_a_column_missing_in_a_whole_arm_is_not_imputed_there() -> None:
    data = _data(n=100)
    data.loc[data["treat"] == 1, "cost"] = np.nan
    result = multiple_imputation(data, columns=["x", "cost"], by="treat", m=2, seed=1)
    assert result.not_imputable == {"cost": ("1",)}
    assert result.datasets[0].loc[data["treat"] == 1, "cost"].isna().all()


def test_bootstrap_refits_each_replicate() -> None:
    """The vectorised weighted refits equal refitting each resampled data set."""
    data = _data(n=120)
    design = Design(data["treat"].to_numpy(), data[["x", "z"]].to_numpy())
    z = design.matrix()
    rng = np.random.default_rng(9)
    arms = [
        [np.flatnonzero(data["treat"] == a)[i : i + 1] for i in range((data["treat"] == a).sum())]
        for a in (1, 0)
    ]
    weights = adjusted_cea._counts(arms, len(data), 5, rng)
    ates = adjusted_cea._replicate_ates(
        z, data["treat"].to_numpy().astype(bool), data[["y"]].to_numpy(), weights
    )
    for row, count in enumerate(weights):
        resampled = data.loc[data.index.repeat(count.astype(int))]
        again = g_computation(
            Design(resampled["treat"].to_numpy(), resampled[["x", "z"]].to_numpy()),
            resampled[["y"]].to_numpy(),
        )
        assert ates[row, 0] == pytest.approx(again.ate[0], rel=1e-7)
        arm_sizes = [int(count[data["treat"] == a].sum()) for a in (0, 1)]
        assert arm_sizes == [int((data["treat"] == a).sum()) for a in (0, 1)]


def test_probabilities_are_never_zero_or_one() -> None:
    assert adjusted_cea.bounded_probability(1.0, 999) == pytest.approx(0.999)
    assert adjusted_cea.bounded_probability(0.0, 999) == pytest.approx(0.001)
    assert adjusted_cea.bounded_probability(0.42, 999) == 0.42


def test_evpi_of_replicates() -> None:
    assert adjusted_cea.evpi([100.0, 200.0]) == 0.0
    assert adjusted_cea.evpi([-100.0, 300.0]) == pytest.approx(150.0 - 100.0)
    assert adjusted_cea.evpi([-100.0, -300.0]) == 0.0


def test_unadjusted_difference_is_welch() -> None:
    a, b = np.array([1.0, 2.0, 3.0, 4.0]), np.array([2.0, 2.5, 5.0])
    result = adjusted_cea.unadjusted_difference(a, b)
    from scipy import stats

    test = stats.ttest_ind(a, b, equal_var=False)
    assert result.estimate == pytest.approx(a.mean() - b.mean())
    assert result.p_value == pytest.approx(test.pvalue)
