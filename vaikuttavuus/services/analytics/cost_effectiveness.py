"""Two-arm cost-effectiveness per effect and the incremental analysis across procedure types."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from vaikuttavuus.domain import cea
from vaikuttavuus.domain.adjusted_cea import bounded_probability as cea_bounded
from vaikuttavuus.domain.notes import Note, costs_unavailable
from vaikuttavuus.domain.specs import PilotSpec
from vaikuttavuus.domain.stats import plain
from vaikuttavuus.services.analytics.data import (
    CohortData,
    wtp_key,
)
from vaikuttavuus.services.analytics.publication import Published

EffectName = Literal["improvement", "responder", "qaly"]
EFFECTS: tuple[EffectName, ...] = ("improvement", "responder", "qaly")


@dataclass(frozen=True)
class EffectScale:
    """The willingness-to-pay grid of an effect and the λ values its tables show."""

    wtp: tuple[float, ...]
    shown: tuple[float, ...]
    reference: float


def effect_scale(spec: PilotSpec, effect: EffectName) -> EffectScale:
    """The willingness-to-pay grid, shown values and reference value of ``effect``, as the
    pilot declares them (``analysis → willingness_to_pay``; built-in defaults otherwise)."""
    declared = spec.willingness_to_pay(effect)
    return EffectScale(declared.grid, tuple(declared.shown), float(declared.reference))


@dataclass(frozen=True)
class EffectResult:
    """Two-arm cost-effectiveness of one effect (intervention vs the reference arm)."""

    effect: EffectName
    follow_up: str | None
    arms: Published
    two_arm: cea.TwoArmCEA | None
    bootstrap: cea.BootstrapCEA | None
    regression: cea.NetBenefitRegression | None
    incremental: Published
    scale: EffectScale
    hidden: bool
    notes: tuple[str, ...]
    strategies: cea.StrategyUncertainty | None = None
    """Bootstrap of the procedure types shown (unadjusted): intervals of the means and the
    probability of each being the most cost-effective."""

    @property
    def available(self) -> bool:
        return self.two_arm is not None and not self.hidden

    def at(self, values: npt.ArrayLike, lam: float) -> float | None:
        """The value of a per-λ array at λ (exact grid point)."""
        if self.two_arm is None:
            return None
        grid = np.asarray(self.scale.wtp)
        position = int(np.argmin(np.abs(grid - lam)))
        value = float(np.asarray(values)[position])
        return value if math.isfinite(value) else None

    def ceac_at(self, lam: float) -> float | None:
        if not self.available or self.bootstrap is None:
            return None
        return self.at(self.bootstrap.ceac, lam)

    def summary_row(self) -> dict[str, Any]:
        """The ICER-table row of this effect (``None`` values when hidden or unavailable)."""
        row: dict[str, Any] = {"effect": self.effect, "follow_up": self.follow_up}
        if not self.available:
            return row
        two = self.two_arm
        assert two is not None
        row.update(
            {
                "n_reference": two.reference.n,
                "n_intervention": two.intervention.n,
                "mean_cost_reference": two.reference.mean_cost,
                "mean_cost_intervention": two.intervention.mean_cost,
                "mean_effect_reference": two.reference.mean_effect,
                "mean_effect_intervention": two.intervention.mean_effect,
                "delta_cost": two.delta_cost,
                "delta_effect": two.delta_effect,
                "status": two.status,
                "icer": two.icer,
                "fieller_low": two.fieller[0] if two.fieller else None,
                "fieller_high": two.fieller[1] if two.fieller else None,
                "reference_wtp": self.scale.reference,
                "ceac_reference_wtp": self.ceac_at(self.scale.reference),
            }
        )
        if self.bootstrap is not None:
            row["delta_cost_low"], row["delta_cost_high"] = self.bootstrap.delta_cost_interval
            row["delta_effect_low"], row["delta_effect_high"] = self.bootstrap.delta_effect_interval
        return row

    def inmb_rows(self) -> list[dict[str, Any]]:
        """INMB at the shown λ: unadjusted (parametric) and case-mix adjusted (regression)."""
        if not self.available:
            return []
        two = self.two_arm
        assert two is not None
        z = 1.959963984540054
        rows = []
        for lam in self.scale.shown:
            estimate = self.at(two.inmb, lam)
            se = self.at(two.inmb_se, lam)
            row: dict[str, Any] = {
                "effect": self.effect,
                "wtp": lam,
                "inmb": estimate,
                "inmb_low": None if estimate is None or se is None else estimate - z * se,
                "inmb_high": None if estimate is None or se is None else estimate + z * se,
                "ceac_bootstrap": self.ceac_at(lam),
                "ceac_parametric": self.at(two.ceac, lam),
            }
            # The adjusted columns are always present (None when the regression could not be
            # fitted: too few persons for the covariates, or collinear covariates).
            regression = self.regression
            row["adjusted_inmb"] = None if regression is None else self.at(regression.inmb, lam)
            row["adjusted_low"] = None if regression is None else self.at(regression.ci_low, lam)
            row["adjusted_high"] = None if regression is None else self.at(regression.ci_high, lam)
            rows.append(row)
        return rows

    def ceac_rows(self) -> list[dict[str, Any]]:
        """The whole CEAC grid (bootstrap and parametric)."""
        if not self.available or self.bootstrap is None or self.two_arm is None:
            return []
        return [
            {"wtp": float(lam), "ceac_bootstrap": float(b), "ceac_parametric": float(p)}
            for lam, b, p in zip(
                self.scale.wtp, self.bootstrap.ceac, self.two_arm.ceac, strict=True
            )
        ]

    def plane_rows(self) -> list[dict[str, Any]]:
        """The bootstrap replicates (the CE-plane cloud)."""
        if not self.available or self.bootstrap is None:
            return []
        return [
            {"replicate": i + 1, "delta_effect": float(e), "delta_cost": float(c)}
            for i, (e, c) in enumerate(
                zip(self.bootstrap.delta_effect, self.bootstrap.delta_cost, strict=True)
            )
        ]

    def to_dict(self) -> dict[str, Any]:
        keys = [wtp_key(x) for x in self.scale.wtp]
        return {
            "effect": self.effect,
            "follow_up": self.follow_up,
            "hidden": self.hidden,
            "arms": self.arms.to_dict(),
            "summary": plain(self.summary_row()),
            "inmb": plain(self.inmb_rows()),
            "two_arm": None
            if self.two_arm is None or self.hidden
            else self.two_arm.to_dict(wtp_keys=keys),
            "bootstrap": None
            if self.bootstrap is None or self.hidden
            else self.bootstrap.to_dict(wtp_keys=keys),
            "regression": None
            if self.regression is None or self.hidden
            else self.regression.to_dict(wtp_keys=keys),
            "incremental": self.incremental.to_dict(),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class CostEffectiveness:
    """Two-arm CEA per effect and the incremental analysis across procedure types."""

    reference: str
    intervention: str | None
    follow_up: str | None
    effects: dict[str, EffectResult]
    notes: tuple[str, ...]

    def effect(self, name: str) -> EffectResult | None:
        return self.effects.get(name)

    def summary_rows(self) -> list[dict[str, Any]]:
        return [result.summary_row() for result in self.effects.values()]

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "intervention": self.intervention,
            "follow_up": self.follow_up,
            "effects": {name: result.to_dict() for name, result in self.effects.items()},
            "notes": list(self.notes),
        }


class CostEffectivenessSections(CohortData):
    """Two-arm cost-effectiveness per effect and the incremental analysis across procedure types."""

    @cached_property
    def cea_frame(self) -> pd.DataFrame:
        """Per person whose care cycle has ended: arm, procedure type, cost and the effects
        (``improvement`` and ``responder`` at the follow-up, ``qaly``) plus the covariates."""
        costs = self.episode_costs
        roster = self.roster.loc[self.cycle_complete].set_index("enrolment_id")
        frame = pd.DataFrame({"arm": roster["arm"]}, index=roster.index)
        frame["cost"] = costs.totals.reindex(frame.index) if not isinstance(costs, str) else np.nan
        if self.has_procedures and not self.procedures.empty:
            procedure = self.procedures.set_index("enrolment_id")["procedure_type"]
            frame["procedure_type"] = procedure.reindex(frame.index)
        else:
            frame["procedure_type"] = None
        rule = self.spec.primary_outcome
        if self.follow_up is not None and rule.instrument in self.scheduled_instruments:
            table = self.responders(rule, [self.follow_up]).set_index("person_id")
            frame["improvement"] = table["improvement"].reindex(frame.index)
            frame["responder"] = (
                table["responder"].astype("Float64").astype(float).reindex(frame.index)
            )
        else:
            frame["improvement"] = np.nan
            frame["responder"] = np.nan
        qalys = self.qaly_table
        if qalys is not None:
            indexed = qalys.set_index("person_id")
            frame["qaly"] = indexed["qaly"].reindex(frame.index)
            frame["baseline_utility"] = indexed["baseline_utility"].reindex(frame.index)
        else:
            frame["qaly"] = np.nan
            frame["baseline_utility"] = np.nan
        covariates = self.covariates.reindex(frame.index)
        for column in covariates.columns:
            frame[column] = covariates[column]
        return frame

    @cached_property
    def cost_effectiveness(self) -> CostEffectiveness:
        intervention = next((a for a in self.arms if a != self.reference_arm), None)
        notes: list[str] = []
        if isinstance(self.episode_costs, str):
            notes.append(costs_unavailable(self.episode_costs))
        effects: dict[str, EffectResult] = {}
        available = [e for e in EFFECTS if e != "qaly" or self.has_utility]
        for effect in available:
            effects[effect] = self._effect(effect, intervention)
        return CostEffectiveness(
            reference=self.reference_arm,
            intervention=intervention,
            follow_up=self.follow_up,
            effects=effects,
            notes=tuple(notes),
        )

    def _effect(self, effect: EffectName, intervention: str | None) -> EffectResult:
        scale = effect_scale(self.spec, effect)
        frame = self.cea_frame
        data = frame[frame["cost"].notna() & frame[effect].notna()]
        notes: list[str] = []
        arm_rows: list[dict[str, Any]] = []
        for arm in self.arms:
            part = data[data["arm"] == arm]
            arm_rows.append(
                {
                    "arm": arm,
                    "n": len(part),
                    "mean_cost": float(part["cost"].mean()) if len(part) else math.nan,
                    "mean_effect": float(part[effect].mean()) if len(part) else math.nan,
                }
            )
        arms = self._publish(
            f"cea_arms_{effect}",
            pd.DataFrame(arm_rows, columns=["arm", "n", "mean_cost", "mean_effect"]),
            counts=["n"],
            derived={"n": ["mean_cost", "mean_effect"]},
            margins=False,
            suppress_zeros=False,
        )
        hidden = any(row["n"] < self.min_cell for row in arm_rows) if arm_rows else True
        incremental, strategies = self._procedure_types(data, effect)
        follow_up = None if effect == "qaly" else self.follow_up
        two = boot = regression = None
        if intervention is None or self.filters.arm is not None:
            notes.append(
                Note(
                    "comparison_needs_both_arms"
                    if self.filters.arm is not None
                    else "comparison_needs_two_arms",
                    "the comparison needs both arms (no arm filter)",
                )
            )
            return EffectResult(
                effect, follow_up, arms, None, None, None, incremental, scale, hidden, tuple(notes)
            )
        if hidden:
            notes.append(Note("arm_too_few", "an arm has too few persons to show"))
            if sum(row["n"] >= 2 for row in arm_rows) < 2:  # nothing to compute yet
                return EffectResult(
                    effect, follow_up, arms, None, None, None, incremental, scale, hidden,
                    tuple(notes),
                )  # fmt: skip
        try:
            two_data = cea.TwoArmData.from_frame(
                data.assign(arm=data["arm"].astype(str)),
                arm="arm",
                cost="cost",
                effect=effect,
                reference=self.reference_arm,
            )
            two = cea.two_arm_cea(two_data, wtp=scale.wtp)
            boot = cea.bootstrap_two_arms(
                two_data, wtp=scale.wtp, n_boot=self.n_boot, seed=self.seed
            )
        except cea.CEAError as error:
            notes.append(Note("cea_failed", str(error), detail=str(error)))
            return EffectResult(
                effect, follow_up, arms, None, None, None, incremental, scale, hidden, tuple(notes)
            )
        regression = self._regression(data, effect, scale, notes)
        return EffectResult(
            effect,
            follow_up,
            arms,
            two,
            boot,
            regression,
            incremental,
            scale,
            hidden,
            tuple(notes),
            strategies,
        )

    def _regression(
        self, data: pd.DataFrame, effect: EffectName, scale: EffectScale, notes: list[str]
    ) -> cea.NetBenefitRegression | None:
        covariates = [c for c in self.spec.covariates if c in data.columns]
        if effect == "qaly":
            covariates.append("baseline_utility")
        complete = data.dropna(subset=covariates) if covariates else data
        dropped = len(data) - len(complete)
        if dropped:
            notes.append(
                Note(
                    "regression_missing_covariates",
                    f"net-benefit regression: {dropped} person(s) without a covariate left out",
                    count=dropped,
                )
            )
        counts = complete["arm"].astype(str).value_counts()
        if len(counts) < 2 or counts.min() < 2:  # nobody (or one) left in an arm
            notes.append(
                Note(
                    "regression_too_few",
                    "net-benefit regression: too few persons with every covariate in an arm",
                )
            )
            return None
        usable = []
        for name in covariates:
            column = complete[name]
            if column.nunique(dropna=True) > 1:
                usable.append(name)
            else:
                notes.append(
                    Note(
                        "regression_constant_covariate",
                        f"net-benefit regression: covariate '{name}' does not vary; left out",
                        covariate=name,
                    )
                )
        try:
            return cea.net_benefit_regression(
                complete.assign(arm=complete["arm"].astype(str)),
                arm="arm",
                cost="cost",
                effect=effect,
                covariates=usable,
                reference=self.reference_arm,
                wtp=scale.wtp,
            )
        except cea.CEAError as error:
            notes.append(
                Note("regression_failed", f"net-benefit regression: {error}", detail=str(error))
            )
            return None

    def _procedure_types(
        self, data: pd.DataFrame, effect: EffectName
    ) -> tuple[Published, cea.StrategyUncertainty | None]:
        """The procedure types compared (unadjusted: persons with complete data): mean cost
        and effect with bootstrap intervals, the dominance status and sequential ICERs of the
        point estimates, and the probability of being the most cost-effective at the
        reference λ. Types with fewer persons than the minimum cell are hidden and left out
        of the comparison."""
        columns = [
            "strategy",
            "n",
            "cost",
            "cost_low",
            "cost_high",
            "effect",
            "effect_low",
            "effect_high",
            "status",
            "icer",
            "compared_with",
            "p_best",
        ]
        if not self.has_procedures or data["procedure_type"].isna().all():
            empty = self._publish(
                f"incremental_{effect}", pd.DataFrame(columns=columns), counts=["n"]
            )
            return empty, None
        typed = data.dropna(subset=["procedure_type"])
        grouped = (
            typed.groupby("procedure_type", sort=True)
            .agg(n=("cost", "size"), cost=("cost", "mean"), effect=(effect, "mean"))
            .reset_index()
            .rename(columns={"procedure_type": "strategy"})
        )
        shown = grouped[grouped["n"] >= self.min_cell]
        table = grouped.assign(status=None, icer=np.nan, compared_with=None)
        uncertainty = None
        if len(shown) >= 2:
            analysis = cea.incremental_analysis(shown[["strategy", "cost", "effect"]])
            result = pd.DataFrame([row.to_dict() for row in analysis.strategies])
            table = grouped.merge(
                result[["strategy", "status", "icer", "compared_with"]], on="strategy", how="left"
            )
            order = {name: i for i, name in enumerate(result["strategy"])}
            table = table.sort_values(
                "strategy", key=lambda s: s.map(order).fillna(len(order))
            ).reset_index(drop=True)
            scale = effect_scale(self.spec, effect)
            uncertainty = cea.strategy_uncertainty(
                typed[typed["procedure_type"].isin(shown["strategy"])],
                strategy="procedure_type",
                cost="cost",
                effect=effect,
                wtp=scale.wtp,
                n_boot=self.n_boot,
                seed=self.seed,
            )
            intervals = uncertainty.means.set_index("strategy")
            for column in ("cost_low", "cost_high", "effect_low", "effect_high"):
                table[column] = table["strategy"].map(intervals[column])
            at = int(np.argmin(np.abs(uncertainty.wtp - scale.reference)))
            best = uncertainty.best.drop(columns="wtp").iloc[at]
            table["p_best"] = table["strategy"].map(
                lambda name: (
                    cea_bounded(float(best[name]), uncertainty.n_boot)
                    if name in best.index
                    else np.nan
                )
            )
        for column in columns:
            if column not in table.columns:
                table[column] = np.nan
        published = self._publish(
            f"incremental_{effect}",
            table[columns],
            counts=["n"],
            derived={"n": columns[2:]},
            margins=False,
            suppress_zeros=False,
        )
        return published, uncertainty
