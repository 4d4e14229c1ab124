"""Shared statistical helpers: golden values computed by hand and cross-checks."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.proportion import proportion_confint

import vaikuttavuus.domain
from vaikuttavuus.domain.stats import (
    Z_95,
    covariate_design,
    mean_ci,
    median_ci,
    median_order_statistic,
    normal_quantile,
    percentile_interval,
    plain,
    standardised_mean_difference,
    wilson_interval,
)

# --------------------------------------------------------------------------------------------
# Mean
# --------------------------------------------------------------------------------------------


def test_mean_ci_golden() -> None:
    # 1..5: mean 3, s = √2.5, se = √0.5, t(0.975, 4) = 2.7764451051977987
    result = mean_ci([1, 2, 3, 4, 5])
    half = 2.7764451051977987 * math.sqrt(0.5)
    assert result.n == 5
    assert result.mean == pytest.approx(3.0)
    assert result.sd == pytest.approx(math.sqrt(2.5))
    assert result.se == pytest.approx(math.sqrt(0.5))
    assert result.ci_low == pytest.approx(3 - half)
    assert result.ci_high == pytest.approx(3 + half)
    assert result.ci_low == pytest.approx(1.036757, abs=1e-6)


def test_mean_ci_drops_missing_and_handles_tiny_samples() -> None:
    assert mean_ci([1.0, np.nan, 3.0]).mean == pytest.approx(2.0)
    assert mean_ci([1.0, np.nan, 3.0]).n == 2
    single = mean_ci([4.0])
    assert single.mean == 4.0 and math.isnan(single.ci_low)
    empty = mean_ci([])
    assert empty.n == 0 and math.isnan(empty.mean)
    assert json.dumps(empty.to_dict())
    assert empty.to_dict()["mean"] is None


# --------------------------------------------------------------------------------------------
# Median
# --------------------------------------------------------------------------------------------


def test_median_order_statistic_by_hand() -> None:
    # n = 6: [x(1), x(6)] covers with 1 − 2/64 = 0.96875; k = 2 only 1 − 14/64 = 0.78
    assert median_order_statistic(6) == 1
    # n = 10: k = 2 gives 1 − 2·11/1024 = 0.9785; k = 3 gives 1 − 2·56/1024 = 0.8906
    assert median_order_statistic(10) == 2
    # n = 5: even [x(1), x(5)] covers only 1 − 2/32 = 0.9375
    assert median_order_statistic(5) is None


def test_median_ci_golden() -> None:
    values = [7, 1, 9, 3, 5, 2, 8, 4, 6, 10]
    result = median_ci(values)
    assert result.median == 5.5
    assert (result.ci_low, result.ci_high) == (2.0, 9.0)
    assert result.coverage == pytest.approx(1 - 2 * 11 / 1024)
    small = median_ci([1, 2, 3, 4, 5])
    assert small.median == 3 and math.isnan(small.ci_low)


@given(st.integers(min_value=6, max_value=400))
def test_median_interval_has_at_least_the_level(n: int) -> None:
    result = median_ci(np.arange(n, dtype=float))
    assert result.coverage >= 0.95
    assert result.ci_low <= result.median <= result.ci_high


def test_median_interval_covers_in_simulation() -> None:
    rng = np.random.default_rng(11)
    samples = rng.exponential(size=(2000, 25))
    true_median = math.log(2)
    hits = 0
    for sample in samples:
        result = median_ci(sample)
        hits += result.ci_low <= true_median <= result.ci_high
    # exact coverage for n = 25 is 0.9567; Monte Carlo sd ≈ 0.0045
    assert hits / len(samples) > 0.94


# --------------------------------------------------------------------------------------------
# Proportions
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("successes", "n"), [(0, 10), (5, 10), (10, 10), (3, 17), (120, 400)])
def test_wilson_matches_statsmodels(successes: int, n: int) -> None:
    result = wilson_interval(successes, n)
    low, high = proportion_confint(successes, n, alpha=0.05, method="wilson")
    assert result.proportion == pytest.approx(successes / n)
    assert result.ci_low == pytest.approx(low, abs=1e-12)
    assert result.ci_high == pytest.approx(high, abs=1e-12)


def test_wilson_golden_zero_of_ten() -> None:
    # upper limit for 0/n is z²/(n + z²)
    result = wilson_interval(0, 10)
    assert result.ci_low == 0.0
    assert result.ci_high == pytest.approx(Z_95**2 / (10 + Z_95**2))


def test_wilson_rejects_impossible_counts() -> None:
    with pytest.raises(ValueError, match="impossible"):
        wilson_interval(5, 3)
    assert math.isnan(wilson_interval(0, 0).proportion)


# --------------------------------------------------------------------------------------------
# Other helpers
# --------------------------------------------------------------------------------------------


def test_normal_quantile() -> None:
    assert normal_quantile(0.95) == pytest.approx(1.959964, abs=1e-6)
    assert normal_quantile(0.9) == pytest.approx(1.644854, abs=1e-6)
    with pytest.raises(ValueError):
        normal_quantile(1.5)


def test_percentile_interval_matches_numpy() -> None:
    values = np.random.default_rng(1).normal(size=(1000, 3))
    low, high = percentile_interval(values)
    assert np.allclose(low, np.percentile(values, 2.5, axis=0))
    assert np.allclose(high, np.percentile(values, 97.5, axis=0))


def test_standardised_mean_difference_by_hand() -> None:
    x = np.array([1.0, 2.0, 3.0, 5.0, 6.0, 7.0])
    t = np.array([0, 0, 0, 1, 1, 1])
    # means 2 and 6, both variances 1 → SMD = 4
    assert standardised_mean_difference(x, t) == pytest.approx(4.0)
    # weights only the treated value 5 → weighted treated mean 5, SD denominator unchanged
    weights = np.array([1, 1, 1, 1, 0, 0])
    assert standardised_mean_difference(x, t, weights) == pytest.approx(3.0)
    assert standardised_mean_difference(np.ones(6), t) == 0.0


def test_plain_makes_json_values() -> None:
    value = {
        1: np.float64("nan"),
        "b": [np.int64(3), np.inf, (np.bool_(True), pd.NA)],
        "c": np.array([1.5, np.nan]),
    }
    assert plain(value) == {"1": None, "b": [3, None, [True, None]], "c": [1.5, None]}
    assert json.dumps(plain(value))


def test_covariate_design_codes_text_and_keeps_missing() -> None:
    frame = pd.DataFrame(
        {
            "age": [70, 80, 75],
            "sex": ["male", "female", None],
            "alone": [True, False, True],
        }
    )
    design = covariate_design(frame, ["age", "sex", "alone"])
    assert list(design.columns) == ["age", "sex=male", "alone"]
    assert design["sex=male"].tolist()[:2] == [1.0, 0.0]
    assert math.isnan(design["sex=male"].iloc[2])
    assert design["alone"].tolist() == [1.0, 0.0, 1.0]
    with pytest.raises(KeyError):
        covariate_design(frame, ["height"])


@settings(max_examples=50)
@given(st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=50))
def test_mean_ci_contains_mean(values: list[float]) -> None:
    result = mean_ci(values)
    assert result.ci_low <= result.mean + 1e-9
    assert result.mean <= result.ci_high + 1e-9


ANALYTICS_MODULES = ("stats", "outcomes", "cea", "loneliness", "disclosure")
ALLOWED_IMPORTS = {
    "__future__",
    "collections",
    "concurrent",
    "dataclasses",
    "itertools",
    "math",
    "os",
    "statistics",
    "typing",
    "warnings",
    "numpy",
    "pandas",
    "scipy",
    "statsmodels",
}


@pytest.mark.parametrize("module", ANALYTICS_MODULES)
def test_analytics_modules_stay_pure(module: str) -> None:
    """Only the standard library, numpy, pandas, scipy, statsmodels and the domain package."""
    source = Path(vaikuttavuus.domain.__file__).with_name(f"{module}.py").read_text("utf-8")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            assert top in ALLOWED_IMPORTS or name.startswith("vaikuttavuus.domain"), name
    assert "open(" not in source and "read_csv" not in source
