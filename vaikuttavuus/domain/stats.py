"""Shared statistical helpers for the analytics layer (outcomes, cost-effectiveness, loneliness).

Pure functions over numpy arrays / pandas objects (stdlib, numpy, pandas, scipy only) returning
small frozen result objects whose ``to_dict()`` is JSON-serialisable (``NaN`` and ``±inf`` become
``None``).

Formulas
--------
* **Mean** with a t-based interval: x̄ ± t_{1−α/2, n−1} · s/√n (s with ``ddof=1``); n < 2 gives no
  interval.
* **Median** with a distribution-free interval from binomial order statistics (Conover,
  *Practical Nonparametric Statistics*, 3rd ed., §3.2; Hahn & Meeker 1991): with the sample
  sorted x₍₁₎ ≤ … ≤ x₍ₙ₎, the interval [x₍ₖ₎, x₍ₙ₋ₖ₊₁₎] covers the population median with
  probability 1 − 2·P(Bin(n, ½) ≤ k − 1); the largest k whose coverage is ≥ the level is used and
  the achieved coverage is reported. For 95 % that needs n ≥ 6.
* **Wilson score interval** for a proportion (Wilson 1927; Newcombe 1998, method 3):
  (p̂ + z²/2n ± z·√(p̂(1−p̂)/n + z²/4n²)) / (1 + z²/n).
* **Standardised mean difference** (Austin 2009; Austin & Stuart 2015): (x̄₁ − x̄₀) /
  √((s₁² + s₀²)/2), optionally with weighted means; the denominator always uses the
  *unweighted* variances so that weighting changes only the numerator (the convention of the
  ``cobalt`` balance tables).
* **Percentile interval** of bootstrap replicates: the α/2 and 1 − α/2 sample quantiles with
  linear interpolation (numpy's default, as in ``scipy.stats.bootstrap(method="percentile")``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = [
    "Z_95",
    "MeanCI",
    "MedianCI",
    "ProportionCI",
    "as_float_array",
    "covariate_design",
    "mean_ci",
    "median_ci",
    "median_order_statistic",
    "normal_quantile",
    "percentile_interval",
    "plain",
    "plain_float",
    "standardised_mean_difference",
    "weighted_mean_var",
    "wilson_interval",
]

Z_95 = 1.959963984540054
"""The 0.975 quantile of the standard normal distribution (1.959964)."""

FloatArray = npt.NDArray[np.float64]


# --------------------------------------------------------------------------------------------
# JSON helpers
# --------------------------------------------------------------------------------------------


def plain_float(value: object) -> float | None:
    """A finite float, or ``None`` for ``None``, ``NaN``, ``±inf`` and pandas' missing values."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    number = float(value)  # type: ignore[arg-type]
    return number if math.isfinite(number) else None


def plain(value: Any) -> Any:
    """Recursively convert numpy/pandas scalars and containers into JSON-ready Python values.

    Floats that are not finite become ``None``; mapping keys become strings; tuples, lists and
    arrays become lists; numpy integers and booleans become ``int``/``bool``.
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return plain_float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, np.ndarray):
        return [plain(item) for item in value.tolist()]
    if isinstance(value, pd.Series):
        return [plain(item) for item in value.tolist()]
    if isinstance(value, pd.DataFrame):
        return [
            {str(key): plain(item) for key, item in row.items()}
            for row in value.to_dict(orient="records")
        ]
    if isinstance(value, Sequence):
        return [plain(item) for item in value]
    if hasattr(value, "to_dict"):
        return plain(value.to_dict())
    return value


def as_float_array(values: npt.ArrayLike | pd.Series, name: str = "values") -> FloatArray:
    """A 1-D float64 array; raises ``ValueError`` naming ``name`` when not numeric."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be numeric") from error
    if array.ndim != 1:
        array = array.reshape(-1)
    return array


# --------------------------------------------------------------------------------------------
# Quantiles
# --------------------------------------------------------------------------------------------


def normal_quantile(level: float) -> float:
    """The two-sided critical value z_{1−α/2} for a confidence ``level`` (0.95 → 1.959964)."""
    from scipy import stats as sps

    if not 0 < level < 1:
        raise ValueError("the confidence level must be between 0 and 1")
    if math.isclose(level, 0.95):
        return Z_95
    return float(sps.norm.ppf(0.5 + level / 2))


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError("the confidence level must be between 0 and 1")


# --------------------------------------------------------------------------------------------
# Mean
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MeanCI:
    """Mean with a t-based confidence interval (missing values dropped)."""

    n: int
    mean: float
    sd: float
    se: float
    ci_low: float
    ci_high: float
    level: float = 0.95

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "mean": plain_float(self.mean),
            "sd": plain_float(self.sd),
            "se": plain_float(self.se),
            "ci_low": plain_float(self.ci_low),
            "ci_high": plain_float(self.ci_high),
            "level": self.level,
        }


def mean_ci(values: npt.ArrayLike | pd.Series, level: float = 0.95) -> MeanCI:
    """Mean, SD (``ddof=1``), SE and the t interval x̄ ± t_{1−α/2, n−1}·s/√n.

    Missing values are dropped. n = 0 gives ``NaN`` everywhere; n = 1 gives the mean only.
    """
    from scipy import stats as sps

    _check_level(level)
    array = as_float_array(values)
    array = array[~np.isnan(array)]
    n = int(array.size)
    if n == 0:
        return MeanCI(0, math.nan, math.nan, math.nan, math.nan, math.nan, level)
    mean = float(array.mean())
    if n == 1:
        return MeanCI(1, mean, math.nan, math.nan, math.nan, math.nan, level)
    sd = float(array.std(ddof=1))
    se = sd / math.sqrt(n)
    t = float(sps.t.ppf(0.5 + level / 2, n - 1))
    return MeanCI(n, mean, sd, se, mean - t * se, mean + t * se, level)


# --------------------------------------------------------------------------------------------
# Median
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MedianCI:
    """Median with a distribution-free interval [x₍ₖ₎, x₍ₙ₋ₖ₊₁₎]; ``coverage`` is the exact
    coverage of that interval (≥ ``level``), ``NaN`` when the sample is too small."""

    n: int
    median: float
    ci_low: float
    ci_high: float
    coverage: float
    level: float = 0.95

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "median": plain_float(self.median),
            "ci_low": plain_float(self.ci_low),
            "ci_high": plain_float(self.ci_high),
            "coverage": plain_float(self.coverage),
            "level": self.level,
        }


def median_order_statistic(n: int, level: float = 0.95) -> int | None:
    """The largest k (1-based) with 1 − 2·P(Bin(n, ½) ≤ k − 1) ≥ ``level``, or ``None``."""
    from scipy import stats as sps

    _check_level(level)
    if n < 1:
        return None
    ks = np.arange(1, n // 2 + 2)
    coverage = 1.0 - 2.0 * sps.binom.cdf(ks - 1, n, 0.5)
    valid = ks[(coverage >= level - 1e-12) & (ks <= n - ks + 1)]
    return int(valid.max()) if valid.size else None


def median_ci(values: npt.ArrayLike | pd.Series, level: float = 0.95) -> MedianCI:
    """Sample median with the binomial order-statistic interval (see the module docstring)."""
    from scipy import stats as sps

    array = as_float_array(values)
    array = np.sort(array[~np.isnan(array)])
    n = int(array.size)
    if n == 0:
        return MedianCI(0, math.nan, math.nan, math.nan, math.nan, level)
    median = float(np.median(array))
    k = median_order_statistic(n, level)
    if k is None:
        return MedianCI(n, median, math.nan, math.nan, math.nan, level)
    coverage = float(1.0 - 2.0 * sps.binom.cdf(k - 1, n, 0.5))
    return MedianCI(n, median, float(array[k - 1]), float(array[n - k]), coverage, level)


# --------------------------------------------------------------------------------------------
# Proportions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProportionCI:
    """A proportion with its Wilson score interval."""

    successes: int
    n: int
    proportion: float
    ci_low: float
    ci_high: float
    level: float = 0.95

    def to_dict(self) -> dict[str, Any]:
        return {
            "successes": self.successes,
            "n": self.n,
            "proportion": plain_float(self.proportion),
            "ci_low": plain_float(self.ci_low),
            "ci_high": plain_float(self.ci_high),
            "level": self.level,
        }


def wilson_interval(successes: int, n: int, level: float = 0.95) -> ProportionCI:
    """Wilson score interval; n = 0 gives ``NaN``. Raises on impossible counts."""
    successes, n = int(successes), int(n)
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"impossible counts: {successes} successes out of {n}")
    if n == 0:
        return ProportionCI(0, 0, math.nan, math.nan, math.nan, level)
    z = normal_quantile(level)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return ProportionCI(successes, n, p, low, high, level)


# --------------------------------------------------------------------------------------------
# Bootstrap and balance helpers
# --------------------------------------------------------------------------------------------


def percentile_interval(
    replicates: npt.ArrayLike, level: float = 0.95, axis: int = 0
) -> tuple[FloatArray, FloatArray]:
    """The α/2 and 1 − α/2 quantiles (linear interpolation) of replicates along ``axis``."""
    _check_level(level)
    array = np.asarray(replicates, dtype=np.float64)
    alpha = 1 - level
    low, high = np.quantile(array, [alpha / 2, 1 - alpha / 2], axis=axis)
    return np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)


def weighted_mean_var(
    values: npt.ArrayLike, weights: npt.ArrayLike | None = None
) -> tuple[float, float]:
    """Weighted mean and the weighted variance Σw(x − x̄_w)² / Σw (population form)."""
    x = np.asarray(values, dtype=np.float64)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)
    total = float(w.sum())
    if x.size == 0 or total <= 0:
        return math.nan, math.nan
    mean = float(np.dot(w, x) / total)
    var = float(np.dot(w, (x - mean) ** 2) / total)
    return mean, var


def standardised_mean_difference(
    values: npt.ArrayLike,
    treated: npt.ArrayLike,
    weights: npt.ArrayLike | None = None,
) -> float:
    """(x̄_w,1 − x̄_w,0) / √((s₁² + s₀²)/2) with unweighted sample variances (``ddof=1``).

    A binary variable uses the same formula (its variance is p(1 − p)·n/(n − 1)). A zero
    denominator gives 0 when the means agree, else ``inf`` with the sign of the difference.
    """
    x = np.asarray(values, dtype=np.float64)
    t = np.asarray(treated).astype(bool)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)
    x1, x0 = x[t], x[~t]
    if x1.size < 2 or x0.size < 2:
        return math.nan
    mean1, _ = weighted_mean_var(x1, w[t])
    mean0, _ = weighted_mean_var(x0, w[~t])
    pooled = math.sqrt((float(x1.var(ddof=1)) + float(x0.var(ddof=1))) / 2)
    difference = mean1 - mean0
    if pooled == 0:
        if math.isclose(difference, 0.0, abs_tol=1e-12):
            return 0.0
        return math.copysign(math.inf, difference)
    return difference / pooled


# --------------------------------------------------------------------------------------------
# Regression design
# --------------------------------------------------------------------------------------------


def covariate_design(frame: pd.DataFrame, covariates: Sequence[str]) -> pd.DataFrame:
    """Covariates as numeric regression columns.

    Numeric columns are used as they are; boolean ones as 0/1; text and categorical ones as
    0/1 indicator columns named ``column=level`` for every level but the first in sorted order
    (the reference level). A missing value stays missing (``NaN`` in every column derived from
    it), so the caller decides between complete-case analysis and an error. Raises
    ``KeyError`` naming missing columns.
    """
    missing = [name for name in covariates if name not in frame.columns]
    if missing:
        raise KeyError(", ".join(missing))
    parts: list[pd.DataFrame] = []
    for name in covariates:
        column = frame[name]
        is_bool = pd.api.types.is_bool_dtype(column)
        numeric = pd.api.types.is_numeric_dtype(column) and not is_bool
        if numeric or (is_bool and not column.isna().any()):
            parts.append(column.astype(float).to_frame(name))
        else:
            present = column.notna()
            levels = sorted(column[present].astype(str).unique())
            coded = pd.DataFrame(index=frame.index)
            for level in levels[1:]:
                indicator = (column.astype(str) == level).astype(float)
                coded[f"{name}={level}"] = indicator.where(present)
            parts.append(coded)
    if not parts:
        return pd.DataFrame(index=frame.index)
    return pd.concat(parts, axis=1)


Likelihood = Literal[
    "virtually_certain",
    "very_likely",
    "likely",
    "about_as_likely_as_not",
    "unlikely",
    "very_unlikely",
    "exceptionally_unlikely",
]
LIKELIHOOD_BANDS: tuple[tuple[float, Likelihood], ...] = (
    (0.99, "virtually_certain"),
    (0.90, "very_likely"),
    (0.66, "likely"),
    (0.33, "about_as_likely_as_not"),
    (0.10, "unlikely"),
    (0.01, "very_unlikely"),
    (0.0, "exceptionally_unlikely"),
)
"""Words for a probability (the IPCC's calibrated language, Mastrandrea et al. 2010): above
99 % virtually certain, 90–99 % very likely, 66–90 % likely, 33–66 % about as likely as not,
10–33 % unlikely, 1–10 % very unlikely, below 1 % exceptionally unlikely. The reports always
print the number beside the word."""


def likelihood(probability: float) -> Likelihood:
    """The calibrated word (as a code the reports translate) for ``probability``."""
    for lower, word in LIKELIHOOD_BANDS:
        if probability > lower:
            return word
    return "exceptionally_unlikely"
