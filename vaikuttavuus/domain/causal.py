"""Doubly robust estimation of an adjusted difference between exposed and unexposed persons,
and the tools that go with it: bounded propensity scores, the inverse-probability-weighted and
regression estimates it is checked against, E-values and multiplicity adjustment.

Pure functions over numpy arrays (no pandas, no I/O), used by
:mod:`vaikuttavuus.domain.attribution` for the older adults' services. Words: the estimand is
the *adjusted difference associated with* an exposure — in an observational pilot it is a causal
effect only under the assumption of no unmeasured confounding, which the E-value quantifies.

Estimators (``shared/health-economics.md``, "Honest inference")
---------------------------------------------------------------
* **AIPW** (augmented inverse probability weighting; Robins, Rotnitzky & Zhao 1994; Bang &
  Robins 2005; Glynn & Quinn 2010): with outcome predictions μ̂₁(x), μ̂₀(x) under exposure and
  non-exposure and a propensity score ê(x),

      φᵢ = μ̂₁(xᵢ) − μ̂₀(xᵢ) + Aᵢ(Yᵢ − μ̂₁(xᵢ))/ê(xᵢ) − (1 − Aᵢ)(Yᵢ − μ̂₀(xᵢ))/(1 − ê(xᵢ)),

  ψ̂ = mean φᵢ (the average treatment effect, ATE, of the population analysed); consistent when
  either the outcome model or the propensity model is right. Standard error from the influence
  function, SE = sd(φ)/√n, with a normal interval. The φᵢ are also the pseudo-outcomes of the
  DR-learner (Kennedy 2023): their mean over a subgroup estimates the subgroup's difference.
* **IPW** (Hájek, normalised weights): the weighted difference in means with weights 1/ê for
  the exposed and 1/(1 − ê) for the unexposed; SE from its influence function with ê taken as
  known (conservative for the ATE; Lunceford & Davidian 2004).
* Propensity scores are **bounded** to [low, high] (default 0.01–0.99) rather than trimmed, so
  the estimand stays the ATE of everyone analysed; how many were bounded is reported.
* **Logistic regression** by Newton–Raphson on the normal equations (X'WX), warm-started when
  a previous fit is given (the same model on the next imputed data set needs two or three
  steps); no convergence means (quasi-)separation, i.e. no overlap, and is reported.

E-value (VanderWeele & Ding, Ann Intern Med 2017;167:268–274)
-------------------------------------------------------------
For a risk ratio RR ≥ 1, E = RR + √(RR(RR − 1)) (1/RR when RR < 1): the minimum strength of
association, on the risk-ratio scale, that an unmeasured confounder would need with both the
exposure and the outcome to explain the estimate away. A difference in a continuous outcome is
converted with RR ≈ exp(0.91·d), d = difference / SD of the outcome (VanderWeele 2017); the
E-value of the interval uses the limit nearer the null and is 1 when the interval includes it.

Multiplicity
------------
Holm (1979): sort p ascending; p̃₍ᵢ₎ = max over j ≤ i of min(1, (m − j + 1)·p₍ⱼ₎) — controls the
family-wise error rate. Benjamini–Hochberg (1995) q-values: q₍ᵢ₎ = min over j ≥ i of
min(1, m·p₍ⱼ₎/j) — controls the false-discovery rate. Missing p-values are left out of the
family and stay missing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from vaikuttavuus.domain.stats import normal_quantile

__all__ = [
    "DEFAULT_BOUNDS",
    "E_VALUE_FACTOR",
    "CausalError",
    "DoublyRobust",
    "Estimate",
    "LogisticFit",
    "adjust_p_values",
    "aipw",
    "bound_propensity",
    "e_value",
    "e_value_risk_ratio",
    "fit_linear",
    "fit_logistic",
    "independent_columns",
    "ipw",
    "normal_estimate",
    "robust_covariance",
    "weighted_gram",
]

FloatArray = npt.NDArray[np.float64]
Multiplicity = Literal["holm", "bh"]
DEFAULT_BOUNDS = (0.01, 0.99)
"""Propensity scores are bounded to this interval (reported when it bites)."""
E_VALUE_FACTOR = 0.91
"""RR ≈ exp(0.91·d) for a standardised mean difference d (VanderWeele & Ding 2017)."""


class CausalError(ValueError):
    """The model cannot be fitted as asked; the message names the problem."""


# --------------------------------------------------------------------------------------------
# Estimates
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its standard error, normal interval and two-sided p-value."""

    estimate: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float

    @property
    def variance(self) -> float:
        return self.se * self.se

    def to_dict(self) -> dict[str, Any]:
        return {
            "estimate": self.estimate,
            "se": self.se,
            "ci95": [self.ci_low, self.ci_high],
            "p": self.p_value,
        }

    def to_row(self) -> dict[str, float]:
        """The columns of a result table: estimate, se, ci_low, ci_high, p_value."""
        return {
            "estimate": self.estimate,
            "se": self.se,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "p_value": self.p_value,
        }


def normal_estimate(estimate: float, se: float, level: float = 0.95) -> Estimate:
    """Wald interval and p-value 2·Φ(−|estimate|/se) (NaN when the SE is not positive)."""
    from scipy.special import ndtr

    z = normal_quantile(level)
    if not (se > 0 and math.isfinite(se) and math.isfinite(estimate)):
        return Estimate(estimate, se, math.nan, math.nan, math.nan)
    p_value = float(2 * ndtr(-abs(estimate) / se))
    return Estimate(estimate, se, estimate - z * se, estimate + z * se, p_value)


@dataclass(frozen=True)
class DoublyRobust:
    """An AIPW estimate and its per-person pseudo-outcomes ``pseudo`` (φᵢ, aligned with the
    input)."""

    result: Estimate
    n: int
    n_exposed: int
    n_unexposed: int
    pseudo: FloatArray

    @property
    def estimate(self) -> float:
        return self.result.estimate


def _arrays(*values: npt.ArrayLike) -> list[FloatArray]:
    arrays = [np.asarray(v, dtype=np.float64) for v in values]
    length = len(arrays[0])
    if any(a.ndim != 1 or len(a) != length for a in arrays):
        raise CausalError("the inputs must be one-dimensional arrays of equal length")
    return arrays


def aipw(
    outcome: npt.ArrayLike,
    treated: npt.ArrayLike,
    mu1: npt.ArrayLike,
    mu0: npt.ArrayLike,
    propensity: npt.ArrayLike,
    *,
    level: float = 0.95,
) -> DoublyRobust:
    """The augmented IPW estimate of E[Y(1) − Y(0)] (see the module docstring); the
    propensity scores must already be bounded away from 0 and 1."""
    y, a, m1, m0, e = _arrays(outcome, treated, mu1, mu0, propensity)
    if len(y) == 0:
        raise CausalError("no persons to analyse")
    if not np.all((e > 0) & (e < 1)):
        raise CausalError("propensity scores must lie strictly between 0 and 1")
    if np.isnan(y).any() or np.isnan(m1).any() or np.isnan(m0).any():
        raise CausalError("missing values in the outcome or its predictions")
    pseudo = m1 - m0 + a * (y - m1) / e - (1 - a) * (y - m0) / (1 - e)
    n = len(y)
    estimate = float(pseudo.mean())
    se = float(pseudo.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    exposed = int(a.sum())
    return DoublyRobust(normal_estimate(estimate, se, level), n, exposed, n - exposed, pseudo)


def ipw(
    outcome: npt.ArrayLike,
    treated: npt.ArrayLike,
    propensity: npt.ArrayLike,
    *,
    response: npt.ArrayLike | None = None,
    level: float = 0.95,
) -> Estimate:
    """The Hájek (normalised) inverse-probability-weighted difference in means, with the
    influence-function SE that takes the propensity scores as known. With ``response`` (the
    probability that the outcome was observed), persons without an outcome (NaN) get weight
    0 and the others are also weighted by 1/response."""
    y, a, e = _arrays(outcome, treated, propensity)
    observed = np.isfinite(y)
    r = np.ones_like(y) if response is None else np.asarray(response, dtype=np.float64)
    w1 = np.where(observed, a / (e * r), 0.0)
    w0 = np.where(observed, (1 - a) / ((1 - e) * r), 0.0)
    if w1.sum() <= 0 or w0.sum() <= 0:
        raise CausalError("both exposed and unexposed persons are needed")
    values = np.where(observed, y, 0.0)
    n = len(y)
    mean1 = float(np.dot(w1, values) / w1.sum())
    mean0 = float(np.dot(w0, values) / w0.sum())
    influence = w1 * (values - mean1) / w1.mean() - w0 * (values - mean0) / w0.mean()
    se = float(influence.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return normal_estimate(mean1 - mean0, se, level)


def bound_propensity(
    scores: npt.ArrayLike, bounds: tuple[float, float] = DEFAULT_BOUNDS
) -> tuple[FloatArray, int, int]:
    """The scores moved into [low, high], with how many were below and above it."""
    low, high = bounds
    if not 0 < low < high < 1:
        raise CausalError("propensity bounds must satisfy 0 < low < high < 1")
    raw = np.asarray(scores, dtype=np.float64)
    return np.clip(raw, low, high), int(np.sum(raw < low)), int(np.sum(raw > high))


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogisticFit:
    """Coefficients of a logistic regression, whether Newton–Raphson converged, and the
    fitted probabilities."""

    params: FloatArray
    converged: bool
    iterations: int
    fitted: FloatArray


def fit_logistic(
    exog: npt.ArrayLike,
    treated: npt.ArrayLike,
    *,
    start: npt.ArrayLike | None = None,
    max_iter: int = 50,
    tol: float = 1e-8,
    ridge: float = 0.0,
) -> LogisticFit:
    """Maximum-likelihood logistic regression of the 0/1 ``treated`` on ``exog`` (which holds
    its own constant column first). ``ridge`` > 0 adds the penalty ridge/2·Σβⱼ² on every
    coefficient but the constant (a normal prior with SD 1/√ridge on the log-odds scale),
    which keeps the estimates finite when a covariate separates the groups in a small cohort.
    Not converging within ``max_iter`` steps, or coefficients running off to infinity, is
    reported as ``converged=False`` (separation: no overlap)."""
    from scipy.special import expit

    x = np.asarray(exog, dtype=np.float64)
    y = np.asarray(treated, dtype=np.float64)
    if x.ndim != 2 or len(x) != len(y):
        raise CausalError("exog must be a matrix with one row per person")
    beta = np.zeros(x.shape[1]) if start is None else np.array(start, dtype=np.float64)
    if beta.shape != (x.shape[1],) or not np.all(np.isfinite(beta)):
        beta = np.zeros(x.shape[1])
    converged = False
    iteration = 0
    penalty = np.full(x.shape[1], float(ridge))
    penalty[0] = 0.0
    for iteration in range(1, max_iter + 1):  # noqa: B007 - the count is reported
        p = expit(x @ beta)
        hessian = weighted_gram(x, p * (1 - p)) + np.diag(penalty)
        gradient = (y - p) @ x - penalty * beta
        try:
            step = np.linalg.solve(hessian, gradient)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(hessian, gradient, rcond=None)[0]
        beta = beta + step
        if not np.all(np.isfinite(beta)) or np.max(np.abs(beta)) > 50:
            break
        if np.max(np.abs(step)) <= tol * (1 + np.max(np.abs(beta))):
            converged = True
            break
    fitted = expit(x @ beta) if np.all(np.isfinite(beta)) else np.full(len(y), np.nan)
    return LogisticFit(beta, converged, iteration, fitted)


def independent_columns(
    exog: npt.ArrayLike | None, tol: float = 1e-9, *, gram: FloatArray | None = None
) -> npt.NDArray[np.bool_]:
    """Which columns to keep so that none is a linear combination of the kept ones before it
    (a pivot-free Cholesky of X'X: a column is kept when the share of its sum of squares that
    the kept columns do not explain exceeds ``tol``). Only a p×p matrix is factorised; pass
    ``gram`` (X'X) when it is at hand."""
    if gram is None:
        x = np.asarray(exog, dtype=np.float64)
        gram = x.T @ x
    p = gram.shape[0]
    diagonal = np.diag(gram)
    if p and np.all(diagonal > 0):
        scale = 1 / np.sqrt(diagonal)
        smallest = float(np.linalg.eigvalsh(gram * scale[:, None] * scale[None, :])[0])
        if smallest > 1e3 * tol:  # well conditioned: every column is needed
            return np.ones(p, dtype=bool)
    keep = np.zeros(p, dtype=bool)
    for j in range(p):
        total = gram[j, j]
        if total <= 0:
            continue
        kept = np.flatnonzero(keep)
        if len(kept):
            block = gram[np.ix_(kept, kept)]
            cross = gram[kept, j]
            try:
                explained = float(cross @ np.linalg.solve(block, cross))
            except np.linalg.LinAlgError:
                continue
            if total - explained <= tol * total:
                continue
        keep[j] = True
    return keep


def fit_linear(
    exog: FloatArray, outcome: FloatArray, *, gram: FloatArray | None = None
) -> tuple[FloatArray, FloatArray]:
    """OLS coefficients and (X'X)⁻¹ from the normal equations (pseudo-inverse when singular);
    ``gram`` is X'X when it is at hand."""
    cross = exog.T @ exog if gram is None else gram
    try:
        inverse = np.asarray(np.linalg.inv(cross), dtype=np.float64)
    except np.linalg.LinAlgError:
        inverse = np.asarray(np.linalg.pinv(cross), dtype=np.float64)
    return inverse @ (exog.T @ outcome), inverse


def robust_covariance(exog: FloatArray, residual: FloatArray, inverse: FloatArray) -> FloatArray:
    """The HC1 sandwich (X'X)⁻¹ X'diag(e²)X (X'X)⁻¹ · n/(n − p) (White 1980)."""
    n, p = exog.shape
    meat = weighted_gram(exog, residual * residual)
    return inverse @ meat @ inverse * (n / max(n - p, 1))


def weighted_gram(exog: FloatArray, weights: FloatArray) -> FloatArray:
    """X'diag(w)X for w ≥ 0, as Z'Z with Z = X·√w: numpy hands a matrix times its own
    transpose to BLAS' symmetric rank-k update, which stays fast when BLAS threads compete for
    the cores (a general product X'·(wX) can be ten times slower then)."""
    z = exog * np.sqrt(weights)[:, None]
    return z.T @ z


# --------------------------------------------------------------------------------------------
# E-values and multiplicity
# --------------------------------------------------------------------------------------------


def e_value_risk_ratio(rr: float) -> float:
    """E = RR + √(RR·(RR − 1)) for RR ≥ 1, applied to 1/RR when RR < 1."""
    if not (rr > 0 and math.isfinite(rr)):
        return math.nan
    ratio = rr if rr >= 1 else 1 / rr
    return ratio + math.sqrt(ratio * (ratio - 1))


def e_value(estimate: float, ci_low: float, ci_high: float, sd: float) -> tuple[float, float]:
    """(E-value of the estimate, E-value of the interval limit nearer the null) for a
    difference in a continuous outcome whose standard deviation is ``sd``."""
    if not (sd > 0 and math.isfinite(estimate)):
        return math.nan, math.nan

    def of(difference: float) -> float:
        return e_value_risk_ratio(math.exp(E_VALUE_FACTOR * difference / sd))

    point = of(estimate)
    if not (math.isfinite(ci_low) and math.isfinite(ci_high)) or ci_low <= 0 <= ci_high:
        limit = 1.0 if math.isfinite(ci_low) and math.isfinite(ci_high) else math.nan
    else:
        limit = of(ci_low if ci_low > 0 else ci_high)
    return point, limit


def adjust_p_values(p_values: Sequence[float] | FloatArray, method: Multiplicity) -> FloatArray:
    """Holm-adjusted p-values (``holm``) or Benjamini–Hochberg q-values (``bh``) over the
    family of the finite values; missing ones stay missing."""
    p = np.asarray(p_values, dtype=np.float64)
    adjusted = np.full(p.shape, np.nan)
    present = np.flatnonzero(np.isfinite(p))
    m = len(present)
    if m == 0:
        return adjusted
    order = present[np.argsort(p[present], kind="stable")]
    ranked = p[order]
    if method == "holm":
        values = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * ranked))
    elif method == "bh":
        scaled = ranked * m / np.arange(1, m + 1)
        values = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    else:
        raise CausalError(f"unknown multiplicity method '{method}'")
    adjusted[order] = values
    return adjusted
