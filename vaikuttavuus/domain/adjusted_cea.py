"""Case-mix adjusted two-arm cost-effectiveness: the declared primary analysis of a pilot.

Pure functions over numpy/pandas returning frozen result objects with ``to_dict()``. The
arms were not randomised, so every difference is adjusted for the declared covariates, and
missing outcomes and costs are multiply imputed (:mod:`vaikuttavuus.domain.imputation`).

Estimand
--------
The average treatment effect (ATE) of the other arm against the reference arm over the
analysed population: the difference in mean outcome if everyone had been treated in the other
arm rather than in the reference arm, under no unmeasured confounding.

Estimator (per completed data set)
----------------------------------
**Regression standardisation (g-computation)** with a linear outcome model fitted separately in
each arm, ``y ~ 1 + covariates`` (equivalent to one model with every arm × covariate
interaction), averaged over the covariates of all analysed persons:
ATE = x̄'(β₁ − β₀). It equals the coefficient of the arm in the interacted model with centred
covariates, and the ANCOVA coefficient when the arms share their slopes (Vansteelandt &
Keiding 2011; Manca et al. 2005 for the baseline-utility adjustment of QALYs). When an arm has
fewer than ``MIN_PER_COVARIATE`` persons per design column, the arms share their slopes
(ANCOVA) and the result says so. Costs, effects and QALYs are fitted on the same persons, so
their estimates are jointly distributed.

Variance: the sandwich (influence-function) variance of the ATE, including the sampling of the
covariates, summed within clusters when a cluster variable with at least ``MIN_CLUSTERS``
clusters is given (cluster-robust, CR1 small-sample factor; complete-data degrees of freedom
G − 1), else per person (HC1 factor; n − 2p degrees of freedom).

Pooling (Rubin's rules) and intervals
-------------------------------------
Point estimates and 95 % intervals of ΔE, ΔC, ΔQALY and INMB(λ) = λ·ΔE − ΔC come from Rubin's
rules over the imputed data sets (t intervals with Barnard–Rubin degrees of freedom), with the
joint (effect, cost) covariance of each data set for the INMB.

Bootstrap (CE plane, CEAC, EVPI)
--------------------------------
"MI, then bootstrap" with pooled replicates (Schomaker & Heumann, Stat Med 2018; the
"MI-boot pooled" scheme of Brand et al., Stat Med 2019): in each imputed data set
⌈B / m⌉ replicates resample persons within each arm (clusters within each arm when every arm
has at least ``MIN_CLUSTERS_TO_RESAMPLE`` clusters) and **refit the arm models in every
replicate** (weighted least squares with the resampling counts as weights). The replicates of
all data sets together form the CE plane; the CEAC at λ is the share with INMB > 0. When the
clusters were too few to resample, the cloud is widened around its centre per dimension to
the cluster-robust standard error (never narrowed), so the plane and the CEAC are as
uncertain as the intervals. A probability from B replicates is known to within 1/(B + 1):
:func:`bounded_probability` keeps it inside [1/(B+1), B/(B+1)] and the reports print "> 99 %"
rather than "100 %".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from vaikuttavuus.domain.imputation import pool, pool_columns
from vaikuttavuus.domain.stats import plain

__all__ = [
    "MIN_CLUSTERS",
    "AdjustedCEA",
    "AdjustedError",
    "AdjustedEstimate",
    "Design",
    "Replicates",
    "adjusted_cea",
    "bounded_probability",
    "evpi",
    "g_computation",
    "unadjusted_difference",
]

FloatArray = npt.NDArray[np.float64]

MIN_CLUSTERS = 5
"""Fewer clusters than this: the cluster-robust variance is unreliable and per-person robust
errors are used, with a note (Cameron, Gelbach & Miller 2008)."""
MIN_CLUSTERS_TO_RESAMPLE = 10
"""Clusters per arm needed to resample clusters in the bootstrap."""
MIN_PER_COVARIATE = 5
"""Persons per design column needed in each arm for arm-specific slopes."""
_RIDGE = 1e-10
_BLOCK = 64
"""Bootstrap replicates refitted together (bounds the memory of the weight matrices)."""


class AdjustedError(ValueError):
    """The adjusted analysis cannot be computed; the message names the problem."""


# --------------------------------------------------------------------------------------------
# One data set: g-computation with its influence function
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Design:
    """One completed data set: ``treat`` (1 = other arm, 0 = reference), the covariate matrix
    ``covariates`` (numeric, no constant), and optional ``clusters`` (integer codes)."""

    treat: npt.NDArray[np.int_]
    covariates: FloatArray
    clusters: npt.NDArray[np.int_] | None = None

    def __post_init__(self) -> None:
        if self.covariates.ndim != 2 or len(self.covariates) != len(self.treat):
            raise AdjustedError("one covariate row per person is needed")
        if self.clusters is not None and len(self.clusters) != len(self.treat):
            raise AdjustedError("one cluster per person is needed")

    @property
    def n(self) -> int:
        return len(self.treat)

    def matrix(self) -> FloatArray:
        """The design with its constant: [1, covariates], without constant columns."""
        x = self.covariates
        varying = np.nanstd(x, axis=0) > 0 if x.shape[1] else np.zeros(0, dtype=bool)
        return np.column_stack([np.ones(self.n), x[:, varying]])


@dataclass(frozen=True)
class GComputation:
    """ATEs of the columns of Y (one data set) with per-person influence values ``phi``
    (n × q; the estimate minus its limit ≈ Σ phi) and the model used."""

    ate: FloatArray
    phi: FloatArray
    interacted: bool
    n_columns: int


def _solve(gram: FloatArray, rhs: FloatArray) -> FloatArray:
    """Least-squares coefficients from X'X and X'y (the minimum-norm solution when X'X is
    singular, e.g. a covariate constant within an arm)."""
    # NumPy's stubs type the solution as any floating dtype; float64 inputs give float64
    return np.linalg.lstsq(gram, rhs, rcond=None)[0]  # type: ignore[return-value]


def g_computation(design: Design, outcomes: FloatArray) -> GComputation:
    """The ATE of each column of ``outcomes`` (n × q, no missing values) by regression
    standardisation with arm-specific slopes, or shared slopes when an arm is small (see the
    module docstring), with its influence values."""
    y = np.atleast_2d(np.asarray(outcomes, dtype=float).T).T
    if y.shape[0] != design.n:
        raise AdjustedError("one outcome row per person is needed")
    if np.isnan(y).any():
        raise AdjustedError("outcomes must be complete (impute first)")
    treat = design.treat.astype(bool)
    n1, n0 = int(treat.sum()), int((~treat).sum())
    if n1 < 2 or n0 < 2:
        raise AdjustedError("each arm needs at least two persons")
    z = design.matrix()
    n, p = z.shape
    interacted = min(n1, n0) >= MIN_PER_COVARIATE * p
    if interacted:
        zbar = z.mean(axis=0)
        betas = {}
        phi = np.zeros((n, y.shape[1]))
        for arm in (True, False):
            rows = treat == arm
            za = z[rows]
            gram = za.T @ za
            beta = _solve(gram, za.T @ y[rows])
            betas[arm] = beta
            residual = y[rows] - za @ beta
            weight = np.linalg.pinv(gram) @ zbar  # x̄' M⁻¹ as a column
            contribution = (za @ weight)[:, None] * residual
            phi[rows] += contribution if arm else -contribution
        difference = betas[True] - betas[False]
        ate = zbar @ difference
        phi += ((z - zbar) @ difference) / n
        return GComputation(ate, phi, True, 2 * p)
    # shared slopes: y ~ 1 + treat + covariates; the treat coefficient
    x = np.column_stack([z[:, :1], treat.astype(float), z[:, 1:]])
    gram = x.T @ x
    beta = _solve(gram, x.T @ y)
    residual = y - x @ beta
    row = np.linalg.pinv(gram)[1]  # the treat row of (X'X)⁻¹
    phi = (x @ row)[:, None] * residual
    return GComputation(beta[1], phi, False, x.shape[1])


def _robust_covariance(
    phi: FloatArray, clusters: npt.NDArray[np.int_] | None, n_columns: int
) -> tuple[FloatArray, float, int | None]:
    """(covariance, complete-data df, number of clusters used) from influence values."""
    n = len(phi)
    if clusters is not None:
        codes, inverse = np.unique(clusters, return_inverse=True)
        g = len(codes)
        if g >= MIN_CLUSTERS:
            sums = np.zeros((g, phi.shape[1]))
            np.add.at(sums, inverse, phi)
            factor = g / (g - 1) * (n - 1) / max(n - n_columns, 1)
            return factor * sums.T @ sums, float(g - 1), g
    factor = n / max(n - n_columns, 1)
    return factor * phi.T @ phi, float(max(n - n_columns, 1)), None


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AdjustedEstimate:
    """An estimate with its 95 % interval, the number of persons analysed and the method
    (a short machine-readable key; the reports name it in words)."""

    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    method: str
    se: float | None = None
    df: float | None = None
    p_value: float | None = None
    fmi: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return plain(
            {
                "estimate": self.estimate,
                "ci95": [self.ci_low, self.ci_high],
                "n": self.n,
                "method": self.method,
                "se": self.se,
                "df": self.df,
                "p": self.p_value,
                "fmi": self.fmi,
            }
        )

    @classmethod
    def missing(cls, n: int, method: str) -> AdjustedEstimate:
        return cls(None, None, None, n, method)


@dataclass(frozen=True)
class Replicates:
    """Pooled bootstrap replicates of the adjusted differences (one value per replicate), per
    outcome name (``effect`` names and ``cost``), and how they were drawn."""

    values: dict[str, FloatArray]
    n_boot: int
    resampled: str
    widened: dict[str, float] = field(default_factory=dict)

    def inmb(self, effect: str, wtp: float) -> FloatArray:
        return wtp * self.values[effect] - self.values["cost"]

    def ceac(self, effect: str, grid: Sequence[float]) -> FloatArray:
        """Share of replicates with INMB(λ) > 0 at each λ of ``grid`` (raw shares)."""
        lam = np.asarray(grid, dtype=float)[:, None]
        inmb = lam * self.values[effect][None, :] - self.values["cost"][None, :]
        return (inmb > 0).mean(axis=1)


@dataclass(frozen=True)
class AdjustedCEA:
    """The adjusted two-arm comparison: per outcome (the effect names and ``cost``) the pooled
    difference, per effect and λ of its grid the INMB, and the bootstrap replicates."""

    differences: dict[str, AdjustedEstimate]
    inmb: dict[str, dict[float, AdjustedEstimate]]
    replicates: Replicates | None
    n: int
    n_reference: int
    n_other: int
    m: int
    clusters: int | None
    interacted: bool
    notes: tuple[str, ...]

    def probability(self, effect: str, wtp: float) -> float | None:
        """P(INMB(λ) > 0) from the replicates, kept inside [1/(B+1), B/(B+1)]."""
        if self.replicates is None or effect not in self.replicates.values:
            return None
        share = float((self.replicates.inmb(effect, wtp) > 0).mean())
        return bounded_probability(share, self.replicates.n_boot)

    def to_dict(self) -> dict[str, Any]:
        return plain(
            {
                "differences": {k: v.to_dict() for k, v in self.differences.items()},
                "inmb": {
                    effect: {_key(lam): est.to_dict() for lam, est in grid.items()}
                    for effect, grid in self.inmb.items()
                },
                "n": self.n,
                "n_reference": self.n_reference,
                "n_other": self.n_other,
                "m": self.m,
                "clusters": self.clusters,
                "interacted": self.interacted,
                "n_boot": self.replicates.n_boot if self.replicates else None,
                "resampled": self.replicates.resampled if self.replicates else None,
                "notes": list(self.notes),
            }
        )


def _key(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def bounded_probability(share: float, n_boot: int) -> float:
    """A probability estimated from ``n_boot`` replicates, kept inside [1/(B+1), B/(B+1)]: with
    B replicates nothing below 1/(B+1) or above B/(B+1) can be claimed."""
    low = 1.0 / (n_boot + 1)
    return float(min(max(share, low), 1.0 - low))


# --------------------------------------------------------------------------------------------
# The analysis over imputed data sets
# --------------------------------------------------------------------------------------------


def _complete_rows(frame: pd.DataFrame, columns: Sequence[str]) -> pd.Series:
    return frame[list(columns)].notna().all(axis=1)


def _design(
    frame: pd.DataFrame, treat: str, covariates: Sequence[str], cluster: str | None
) -> Design:
    clusters = None
    if cluster is not None and cluster in frame.columns and frame[cluster].notna().all():
        clusters = pd.factorize(frame[cluster])[0].astype(np.int_)
    return Design(
        treat=frame[treat].to_numpy(dtype=np.int_),
        covariates=frame[list(covariates)].to_numpy(dtype=float)
        if covariates
        else np.zeros((len(frame), 0)),
        clusters=clusters,
    )


def adjusted_cea(
    datasets: Sequence[pd.DataFrame],
    *,
    treat: str,
    effects: Mapping[str, Sequence[str]],
    cost: str | None,
    covariates: Sequence[str],
    wtp: Mapping[str, Sequence[float]],
    cluster: str | None = None,
    n_boot: int = 2_000,
    seed: int = 0,
    method: str = "g_computation_mi",
) -> AdjustedCEA:
    """The adjusted comparison over completed data sets (see the module docstring).

    ``datasets``: one frame per imputation (or one complete-case frame), the same persons in
    each, with ``treat`` (0/1), the covariates, optional ``cluster``, the effect columns and
    ``cost``. ``effects`` maps each effect column to its extra covariates (e.g. the QALYs to
    the baseline utility); the first effect is the primary one, whose analysis gives the cost
    difference. ``wtp``: per effect, the λ values of its INMB rows. Rows with a missing value
    in a needed column are left out of that effect's analysis (none after imputation).
    """
    if not datasets:
        raise AdjustedError("no data set to analyse")
    if not effects:
        raise AdjustedError("no effect to analyse")
    first = datasets[0]
    notes: list[str] = []
    designs = {e: tuple(dict.fromkeys([*covariates, *extra])) for e, extra in effects.items()}
    fits: dict[str, list[_Fit]] = {e: [] for e in effects}
    for data in datasets:
        for effect, names in designs.items():
            fit = _fit(data, treat, names, [effect, *([cost] if cost else [])], cluster)
            if isinstance(fit, str):
                notes.append(f"{effect}: {fit}")
            else:
                fits[effect].append(fit)
    primary = next(iter(effects))
    differences = {e: _pooled_column(fits[e], 0, method) for e in effects}
    if cost:
        differences[cost] = _pooled_column(fits[primary], 1, method)
    inmb: dict[str, dict[float, AdjustedEstimate]] = {}
    for effect, grid in wtp.items():
        if cost and fits.get(effect):
            inmb[effect] = _pooled_inmb(fits[effect], [float(lam) for lam in grid], method)
    all_fits = [fit for parts in fits.values() for fit in parts]
    clusters_used = next((fit.clusters for fit in all_fits if fit.clusters), None)
    if cluster is not None and clusters_used is None:
        notes.append("clusters_too_few")
    replicates = None
    if cost and n_boot > 0 and all(differences[e].estimate is not None for e in effects):
        replicates = _bootstrap(
            datasets,
            treat=treat,
            effects=designs,
            cost=cost,
            cluster=cluster,
            n_boot=n_boot,
            seed=seed,
            targets=differences,
        )
    treated = first[treat].to_numpy(dtype=int)
    return AdjustedCEA(
        differences=differences,
        inmb=inmb,
        replicates=replicates,
        n=len(first),
        n_reference=int((treated == 0).sum()),
        n_other=int((treated == 1).sum()),
        m=len(datasets),
        clusters=clusters_used,
        interacted=all(fit.interacted for fit in all_fits) if all_fits else True,
        notes=tuple(dict.fromkeys(notes)),
    )


@dataclass(frozen=True)
class _Fit:
    """One data set's ATEs of [effect, cost] with their robust covariance."""

    ate: FloatArray
    covariance: FloatArray
    df_complete: float
    n: int
    clusters: int | None
    interacted: bool


def _fit(
    data: pd.DataFrame,
    treat: str,
    covariates: Sequence[str],
    columns: Sequence[str],
    cluster: str | None,
) -> _Fit | str:
    part = data[_complete_rows(data, [treat, *covariates, *columns])]
    if part[treat].nunique() < 2:
        return "both arms need persons with the values"
    design = _design(part, treat, covariates, cluster)
    try:
        result = g_computation(design, part[list(columns)].to_numpy(dtype=float))
    except AdjustedError as error:
        return str(error)
    covariance, dof, used = _robust_covariance(result.phi, design.clusters, result.n_columns)
    return _Fit(result.ate, covariance, dof, len(part), used, result.interacted)


def _pooled_column(fits: Sequence[_Fit], column: int, method: str) -> AdjustedEstimate:
    if not fits:
        return AdjustedEstimate.missing(0, method)
    pooled = pool(
        [float(f.ate[column]) for f in fits],
        [float(f.covariance[column, column]) for f in fits],
        df_complete=fits[0].df_complete,
    )
    return _estimate(pooled, fits[0].n, method)


def _pooled_inmb(
    fits: Sequence[_Fit], grid: Sequence[float], method: str
) -> dict[float, AdjustedEstimate]:
    """INMB(λ) = λ·ΔE − ΔC of each data set with its variance λ²·V_E + V_C − 2λ·C_EC, pooled
    by Rubin's rules, for every λ of ``grid`` at once."""
    lam = np.asarray(grid, dtype=float)[None, :]
    effect = np.asarray([float(f.ate[0]) for f in fits])[:, None]
    cost = np.asarray([float(f.ate[1]) for f in fits])[:, None]
    v_e = np.asarray([f.covariance[0, 0] for f in fits])[:, None]
    v_c = np.asarray([f.covariance[1, 1] for f in fits])[:, None]
    c_ec = np.asarray([f.covariance[0, 1] for f in fits])[:, None]
    estimates = lam * effect - cost
    variances = np.clip(lam**2 * v_e + v_c - 2 * lam * c_ec, 0.0, None)
    pooled = pool_columns(estimates, variances, df_complete=fits[0].df_complete)
    return {
        float(value): _estimate(result, fits[0].n, method)
        for value, result in zip(grid, pooled, strict=True)
    }


def _estimate(pooled: Any, n: int, method: str) -> AdjustedEstimate:
    return AdjustedEstimate(
        estimate=pooled.estimate,
        ci_low=pooled.ci_low,
        ci_high=pooled.ci_high,
        n=n,
        method=method,
        se=pooled.se,
        df=pooled.df,
        p_value=pooled.p_value,
        fmi=pooled.fmi,
    )


# --------------------------------------------------------------------------------------------
# Bootstrap with refits
# --------------------------------------------------------------------------------------------


def _counts(
    arms: Sequence[Sequence[npt.NDArray[np.int_]]],
    n: int,
    n_boot: int,
    rng: np.random.Generator,
) -> FloatArray:
    """How often each of ``n`` persons is drawn in each of ``n_boot`` replicates (n_boot × n)
    when, in each arm, its units (single persons, or the members of a cluster) are resampled
    with replacement, as many units as the arm has."""
    counts = np.zeros((n_boot, n))
    rows = np.arange(n_boot)[:, None]
    for units in arms:
        if all(len(unit) == 1 for unit in units):
            members = np.concatenate(units)
            draws = rng.integers(0, len(members), size=(n_boot, len(members)))
            np.add.at(counts, (rows, members[draws]), 1.0)
            continue
        draws = rng.integers(0, len(units), size=(n_boot, len(units)))
        per_unit = np.zeros((n_boot, len(units)))
        np.add.at(per_unit, (rows, draws), 1.0)
        for position, unit in enumerate(units):
            counts[:, unit] += per_unit[:, position : position + 1]
    return counts


@dataclass(frozen=True)
class _ArmProducts:
    """Per person of one arm, the products whose weighted sums are the normal equations of a
    weighted least-squares fit: zᵢzⱼ for i ≤ j (the Gram matrix's upper triangle) and zᵢyₖ.
    They do not depend on the weights, so they are formed once per data set and each block of
    replicates is two matrix products (``weights @ products``), not a three-way sum per
    replicate."""

    rows: npt.NDArray[np.bool_]
    upper: tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]
    squares: FloatArray
    """n_arm × p(p+1)/2."""
    cross: FloatArray
    """n_arm × p·q."""

    @classmethod
    def of(cls, z: FloatArray, y: FloatArray, rows: npt.NDArray[np.bool_]) -> _ArmProducts:
        za, ya = z[rows], y[rows]
        upper = np.triu_indices(za.shape[1])
        squares = za[:, upper[0]] * za[:, upper[1]]
        cross = (za[:, :, None] * ya[:, None, :]).reshape(len(za), -1)
        return cls(rows, upper, squares, cross)


def _arm_products(
    z: FloatArray, treat: npt.NDArray[np.bool_], y: FloatArray
) -> tuple[_ArmProducts, _ArmProducts]:
    return _ArmProducts.of(z, y, treat), _ArmProducts.of(z, y, ~treat)


def _replicate_ates(
    z: FloatArray,
    treat: npt.NDArray[np.bool_],
    y: FloatArray,
    weights: FloatArray,
    products: tuple[_ArmProducts, _ArmProducts] | None = None,
) -> FloatArray:
    """ATE per replicate (rows of ``weights``) and outcome column of ``y``, arm-specific slopes
    refitted by weighted least squares, averaged over the replicate's covariates
    (``products``: :func:`_arm_products` of the same ``z``, ``treat`` and ``y``, formed once)."""
    arms = products if products is not None else _arm_products(z, treat, y)
    p, q, block = z.shape[1], y.shape[1], weights.shape[0]
    total = weights.sum(axis=1)
    zbar = (weights @ z) / total[:, None]
    betas = []
    for arm in arms:
        wa = weights[:, arm.rows]
        gram = np.empty((block, p, p))
        sums = wa @ arm.squares
        gram[:, arm.upper[0], arm.upper[1]] = sums
        gram[:, arm.upper[1], arm.upper[0]] = sums
        rhs = (wa @ arm.cross).reshape(block, p, q)
        scale = np.maximum(np.trace(gram, axis1=1, axis2=2) / p, 1.0)
        gram += _RIDGE * scale[:, None, None] * np.eye(p)[None]
        betas.append(np.linalg.solve(gram, rhs))
    return np.einsum("bp,bpq->bq", zbar, betas[0] - betas[1])


def _bootstrap(
    datasets: Sequence[pd.DataFrame],
    *,
    treat: str,
    effects: Mapping[str, tuple[str, ...]],
    cost: str,
    cluster: str | None,
    n_boot: int,
    seed: int,
    targets: Mapping[str, AdjustedEstimate],
) -> Replicates:
    """Pooled replicates of every effect's and the cost's ATE (see the module docstring)."""
    rng = np.random.default_rng(seed)
    per_set = max(1, math.ceil(n_boot / len(datasets)))
    first = datasets[0]
    treated = first[treat].to_numpy(dtype=int).astype(bool)
    codes = None
    if cluster is not None and cluster in first.columns and first[cluster].notna().all():
        codes = pd.factorize(first[cluster])[0]
    resampled = "persons"
    if codes is not None and all(
        len(np.unique(codes[treated == arm])) >= MIN_CLUSTERS_TO_RESAMPLE for arm in (True, False)
    ):
        resampled = "clusters"
    arms: list[list[npt.NDArray[np.int_]]] = []
    for arm in (True, False):
        members = np.flatnonzero(treated == arm)
        if resampled == "clusters" and codes is not None:
            arms.append([members[codes[members] == c] for c in np.unique(codes[members])])
        else:
            arms.append([members[i : i + 1] for i in range(len(members))])
    collected: dict[str, list[FloatArray]] = {name: [] for name in [*effects, "cost"]}
    primary = next(iter(effects))
    for data in datasets:
        fitted: dict[str, tuple[FloatArray, FloatArray, tuple[_ArmProducts, _ArmProducts]]] = {}
        for effect, names in effects.items():
            z = _design(data, treat, names, None).matrix()
            columns = [effect, cost] if effect == primary else [effect]
            y = data[columns].to_numpy(dtype=float)
            fitted[effect] = (z, y, _arm_products(z, treated, y))
        remaining = per_set
        while remaining > 0:
            block = min(_BLOCK, remaining)
            remaining -= block
            weights = _counts(arms, len(data), block, rng)
            for effect in effects:
                z, y, products = fitted[effect]
                ates = _replicate_ates(z, treated, y, weights, products)
                collected[effect].append(ates[:, 0])
                if effect == primary:
                    collected["cost"].append(ates[:, 1])
    values = {name: np.concatenate(parts) for name, parts in collected.items()}
    widened: dict[str, float] = {}
    if codes is not None and resampled == "persons":
        # clusters too few to resample: widen each dimension to its cluster-robust SE
        for name, draws in list(values.items()):
            target = targets.get(cost if name == "cost" else name)
            spread = float(draws.std(ddof=1))
            if target is None or target.se is None or spread <= 0 or target.se <= spread:
                continue
            factor = target.se / spread
            centre = float(draws.mean())
            values[name] = centre + factor * (draws - centre)
            widened[name] = factor
    return Replicates(
        values=values, n_boot=len(values["cost"]), resampled=resampled, widened=widened
    )


# --------------------------------------------------------------------------------------------
# Unadjusted comparison and value of information
# --------------------------------------------------------------------------------------------


def unadjusted_difference(
    other: npt.ArrayLike, reference: npt.ArrayLike, *, level: float = 0.95
) -> AdjustedEstimate:
    """The plain difference of means (other − reference) of the observed values, with a Welch
    t interval: the unadjusted comparison shown beside the adjusted one."""
    from scipy import stats as sps

    a = np.asarray(other, dtype=float)
    b = np.asarray(reference, dtype=float)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    n = len(a) + len(b)
    if len(a) < 2 or len(b) < 2:
        return AdjustedEstimate.missing(n, "difference_of_means")
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    estimate = float(a.mean() - b.mean())
    if se == 0:
        return AdjustedEstimate(estimate, estimate, estimate, n, "difference_of_means", 0.0)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    quantile = float(sps.t.ppf(0.5 + level / 2, df))
    p_value = float(2 * sps.t.sf(abs(estimate) / se, df))
    return AdjustedEstimate(
        estimate,
        estimate - quantile * se,
        estimate + quantile * se,
        n,
        "difference_of_means",
        se,
        float(df),
        p_value,
    )


def evpi(inmb_replicates: npt.ArrayLike) -> float:
    """Per-person expected value of perfect information of a two-strategy decision from
    replicates of the incremental net benefit: E[max(INMB, 0)] − max(E[INMB], 0)."""
    values = np.asarray(inmb_replicates, dtype=float)
    if values.size == 0:
        return math.nan
    return float(np.maximum(values, 0).mean() - max(float(values.mean()), 0.0))
