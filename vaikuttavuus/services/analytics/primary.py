"""The declared primary analysis of a two-arm pilot: the adjusted, complete, uncertainty-honest
headline (case-mix adjusted differences, missing outcomes and costs multiply imputed, the
unadjusted comparison beside it, sensitivity analyses, subgroups, value of information).

The persons analysed are those of the two compared arms whose primary follow-up is due (its
window has closed or it was answered) and whose care cycle has ended before the data date.
This module builds their frame and the declared configuration from the database and the
pilot definition; the analysis itself is the pure
:func:`vaikuttavuus.domain.primary_cea.analyse_two_arms` (see ``docs/reports.md``,
"Declared primary analysis").
"""

from __future__ import annotations

from dataclasses import replace
from functools import cached_property

import numpy as np
import pandas as pd

from vaikuttavuus.domain import outcomes
from vaikuttavuus.domain.adjusted_cea import Design, g_computation
from vaikuttavuus.domain.catalogue import Tdabc
from vaikuttavuus.domain.primary_cea import (
    EstimatePair,
    PrimaryConfig,
    PrimaryIdentity,
    PrimaryResult,
    Scenario,
    Subgroup,
    analyse_two_arms,
    scenario_of_frame,
)
from vaikuttavuus.domain.primary_cea import column as _column
from vaikuttavuus.domain.sensitivity import TornadoBar, costing_inputs, tornado
from vaikuttavuus.domain.specs import BandScore, PrimaryPlan, ResponderRule
from vaikuttavuus.domain.stats import covariate_design
from vaikuttavuus.services.analytics.data import CohortData

__all__ = ["EstimatePair", "PrimaryResult", "PrimarySection", "Scenario", "Subgroup"]

COST = "cost"
TORNADO_BARS = 12
"""The inputs with the largest swing shown in the tornado diagram."""


class PrimarySection(CohortData):
    """The declared primary analysis of a two-arm pilot (see the module docstring)."""

    # -- the persons and their values ---------------------------------------------------------

    @cached_property
    def primary_plan(self) -> PrimaryPlan:
        return self.spec.primary_plan()

    @cached_property
    def primary_rule(self) -> ResponderRule | None:
        """The responder rule of the primary score, when the pilot declares one."""
        plan = self.primary_plan
        return next(
            (r for r in self.rules if (r.instrument, r.score) == (plan.instrument, plan.score)),
            None,
        )

    def _band_score(self) -> BandScore | None:
        spec = self.instruments.get(self.primary_plan.instrument)
        if spec is None:
            return None
        return next(
            (
                s
                for s in spec.scores
                if isinstance(s, BandScore) and s.of == self.primary_plan.score
            ),
            None,
        )

    @cached_property
    def primary_time_points(self) -> list[str]:
        """Baseline … the primary time point: the columns of the primary score and utility."""
        order = self.time_points
        return order[: order.index(self.primary_plan.time_point) + 1]

    @cached_property
    def primary_frame(self) -> pd.DataFrame:
        """One row per analysed person (index: enrolment id): ``treat`` (1 = other arm),
        ``arm``, ``cluster``, numeric covariate columns, the primary score and the utility at
        each time point up to the primary one (``score@time_point``), and ``cost`` (NaN when
        missing)."""
        plan = self.primary_plan
        comparison = plan.comparison
        assert comparison is not None
        roster = self.roster
        chosen = (
            roster["arm"].isin([comparison.reference, comparison.other])
            & self.due(plan.time_point)
            & self.cycle_complete
        )
        people = roster.loc[chosen].set_index("enrolment_id")
        frame = pd.DataFrame(index=people.index)
        frame["arm"] = people["arm"].astype(str)
        frame["treat"] = (frame["arm"] == comparison.other).astype(int)
        frame["cluster"] = self._clusters(people)
        for score in self._primary_scores():
            long = self.score_long(score)
            wide = long.pivot_table(
                index="person_id", columns="time_point", values="value", aggfunc="first"
            )
            for tp in self.primary_time_points:
                values = wide[tp] if tp in wide.columns else pd.Series(dtype=float)
                frame[_column(score, tp)] = values.reindex(frame.index).to_numpy(dtype=float)
        for name, values in self._covariate_columns().items():
            frame[name] = values.reindex(frame.index).to_numpy(dtype=float)
        costs = self.episode_costs
        totals = (
            costs.totals.reindex(frame.index)
            if not isinstance(costs, str)
            else pd.Series(np.nan, index=frame.index)
        )
        complete = self.costs_complete.to_numpy()
        complete_ids = roster.loc[complete, "enrolment_id"]
        frame[COST] = totals.where(frame.index.isin(complete_ids)).to_numpy(dtype=float)
        return frame

    def _primary_scores(self) -> list[str]:
        scores = [self.primary_plan.outcome]
        if self.utility is not None:
            scores.append(self.utility)
        return scores

    def _clusters(self, people: pd.DataFrame) -> pd.Series:
        kind = self.spec.analysis.cluster
        if kind == "unit":
            known = people["unit"].astype(object)
        elif kind == "clinician":
            known = people["clinician_code"].astype(object)
        elif kind == "surgeon" and not self.procedures.empty:
            surgeon = self.procedures.drop_duplicates("enrolment_id").set_index("enrolment_id")
            known = surgeon["surgeon_code"].reindex(people.index).astype(object)
        elif kind in ("none", "surgeon"):
            return pd.Series(None, index=people.index, dtype=object)
        else:
            known = pd.Series(None, index=people.index, dtype=object)
        if known.isna().all():
            return known
        # a person whose cluster is not known is a cluster of their own
        return known.where(known.notna(), "person:" + people.index.astype(str))

    def _covariate_columns(self) -> dict[str, pd.Series]:
        """The declared covariates as numeric columns (categories as indicators). Baseline
        scores of the primary score and the utility are the ``score@baseline`` columns
        already in the frame, so they are not repeated."""
        own = {self.primary_plan.outcome, self.utility}
        names = []
        for name in self.spec.covariates:
            if name not in self.covariates.columns:
                continue
            if name.startswith("baseline_"):
                score = self.baseline_score_name(name.removeprefix("baseline_"))
                if score in own:
                    continue
            names.append(name)
        design = covariate_design(self.covariates, names) if names else pd.DataFrame()
        return {f"covariate:{c}": design[c] for c in design.columns}

    @cached_property
    def primary_covariates(self) -> list[str]:
        """The adjustment set: the declared covariates and the baseline of the primary score."""
        frame = self.primary_frame
        names = [c for c in frame.columns if c.startswith("covariate:")]
        names.append(_column(self.primary_plan.outcome, self.baseline))
        return [n for n in names if frame[n].notna().any()]

    @cached_property
    def primary_config(self) -> PrimaryConfig:
        """The pilot's declared primary analysis as the domain's configuration."""
        plan = self.primary_plan
        analysis = self.spec.analysis
        days = self._days("offset_days")
        effects = ("improvement", "responder", "qaly")
        declared = {e: self.spec.willingness_to_pay(e) for e in effects}  # type: ignore[arg-type]
        return PrimaryConfig(
            outcome=plan.outcome,
            direction=self.direction(plan.outcome),
            time_points=tuple(self.primary_time_points),
            days=tuple(float(days[tp]) for tp in self.primary_time_points),
            covariates=tuple(self.primary_covariates),
            grids={e: w.grid for e, w in declared.items()},
            shown={e: tuple(sorted({*w.shown, w.reference})) for e, w in declared.items()},
            reference_wtp=float(declared["improvement"].reference),
            rule=self.primary_rule,
            bands=self._band_score(),
            utility=self.utility,
            discount_rate=analysis.discount_rate if self.spec.horizon_days > 365 else 0.0,
            imputations=(self.imputations or analysis.missing_data.imputations)
            if analysis.missing_data.method == "multiple_imputation"
            else 0,
            mnar_deltas=analysis.missing_data.mnar_deltas,
            subgroups=analysis.subgroups != "none",
            n_boot=self.n_boot,
            seed=self.seed,
            min_cell=self.min_cell,
            yearly_volume=analysis.yearly_volume,
            decision_horizon_years=analysis.decision_horizon_years,
            evpi_discount_rate=analysis.discount_rate,
        )

    @cached_property
    def primary(self) -> PrimaryResult | None:
        """The declared primary analysis, or None when the pilot's primary analysis is not a
        two-arm comparison (e.g. the older adults' services)."""
        plan = self.primary_plan
        if plan.comparison is None:
            return None
        frame = self.primary_frame
        n_ref = int((frame["treat"] == 0).sum())
        n_other = int((frame["treat"] == 1).sum())
        base = PrimaryIdentity(
            outcome=plan.outcome,
            time_point=plan.time_point,
            reference=plan.comparison.reference,
            other=plan.comparison.other,
            n_reference=n_ref,
            n_other=n_other,
        )
        if self.filters.arm is not None:
            return PrimaryResult(**base, hidden=False, reason="arm_filter")
        if min(n_ref, n_other) < self.min_cell:
            return PrimaryResult(**base, hidden=True, reason="too_few")
        if isinstance(self.episode_costs, str):
            return PrimaryResult(**base, hidden=False, reason="costs_unavailable")
        observed = frame[_column(plan.outcome, plan.time_point)].notna()
        if min(observed[frame["treat"] == 0].sum(), observed[frame["treat"] == 1].sum()) < 2:
            return PrimaryResult(**base, hidden=False, reason="no_outcomes")
        try:
            result = analyse_two_arms(frame, self.primary_config, base)
            mode_scenarios = self._mode_scenarios(frame)
        except np.linalg.LinAlgError:
            # a small or degenerate data set (e.g. one quarter) the imputation models cannot fit
            return PrimaryResult(**base, hidden=False, reason="not_estimable")
        settings = {**result.settings, "cluster": self.spec.analysis.cluster}
        notes = list(result.notes)
        if self.spec.analysis.cluster != "none" and frame["cluster"].isna().all():
            notes.append("cluster_unknown")
        return replace(
            result,
            sensitivity=(*result.sensitivity, *mode_scenarios),
            settings=settings,
            notes=tuple(dict.fromkeys(notes)),
        )

    def _answer_flags(self, score: str, flag: str) -> pd.DataFrame:
        """Per person (rows) and time point (columns): the answer of ``score``'s instrument was
        given by a proxy (``flag="proxy"``) or not on the web (``flag="not_web"``)."""
        instrument = score.split(".", 1)[0]
        answered = self.scores.get(instrument)
        if answered is None or answered.empty or "mode" not in answered.columns:
            return pd.DataFrame()
        values = (
            answered["proxy"].astype(bool)
            if flag == "proxy"
            else answered["mode"].astype(str) != "web"
        )
        flags = answered.assign(flag=values.to_numpy())
        return flags.pivot_table(
            index="enrolment_id", columns="time_point", values="flag", aggfunc="max"
        )

    def _mode_scenarios(self, frame: pd.DataFrame) -> list[Scenario]:
        """Sensitivity analyses by the mode of answering: the answers given by a proxy (a
        relative or staff member answered for the person) counted as missing, and only the
        answers given on the web kept. Left out when no answer of that kind exists."""
        scenarios = []
        for name, flag in (("without_proxy", "proxy"), ("web_only", "not_web")):
            variant = frame.copy()
            changed = False
            for score in self._primary_scores():
                flags = self._answer_flags(score, flag)
                for tp in self.primary_time_points:
                    if tp not in flags.columns:
                        continue
                    drop = flags[tp].reindex(frame.index).fillna(False).astype(bool)
                    target = _column(score, tp)
                    hit = drop & variant[target].notna()
                    if hit.any():
                        variant.loc[hit, target] = np.nan
                        changed = True
            if changed:
                scenario = scenario_of_frame(name, variant, self.primary_config)
                if scenario is not None:
                    scenarios.append(scenario)
        return scenarios

    # -- sensitivity of the costing and scenarios -------------------------------------------

    @cached_property
    def primary_tornado(self) -> list[TornadoBar]:
        """The tornado diagram of the adjusted net benefit at the reference λ per point over
        the costing inputs (:mod:`vaikuttavuus.domain.sensitivity`). The cost difference per
        product is the adjusted difference (regression standardisation) among the persons with
        complete costs and covariates."""
        result = self.primary
        costs = self.episode_costs
        if result is None or not result.available or isinstance(costs, str):
            return []
        effect = result.differences["improvement"].adjusted.estimate
        cost = result.differences[COST].adjusted.estimate
        if effect is None or cost is None:
            return []
        frame = self.primary_frame
        covariates = [c for c in self.primary_covariates if frame[c].notna().any()]
        by_product = costs.by_product.reindex(frame.index)
        usable = frame[covariates].notna().all(axis=1) & by_product.notna().all(axis=1)
        data = frame[usable]
        if data["treat"].nunique() < 2 or min(data["treat"].value_counts()) < 2:
            return []
        design = Design(
            data["treat"].to_numpy(dtype=np.int_),
            data[covariates].to_numpy(dtype=float),
        )
        ates = g_computation(design, by_product[usable].to_numpy(dtype=float)).ate
        per_product = dict(zip(map(str, by_product.columns), map(float, ates), strict=True))
        inputs = costing_inputs(self.costing_tdabc, self.catalogue.product_codes)
        return tornado(
            delta_effect=effect,
            delta_cost=cost,
            delta_cost_by_product=per_product,
            wtp=float(self.spec.willingness_to_pay("improvement").reference),
            inputs=inputs,
            limit=TORNADO_BARS,
        )

    @cached_property
    def costing_tdabc(self) -> Tdabc | None:
        """The TDABC inputs and sensitivity ranges of the costing folder (not in the
        database), or None when they cannot be read."""
        from vaikuttavuus import paths
        from vaikuttavuus.definitions import DefinitionError
        from vaikuttavuus.definitions.costing import load_costing

        try:
            return load_costing(paths.costing_dir()).tdabc
        except (DefinitionError, OSError):
            return None

    @cached_property
    def primary_scenarios(self) -> list[dict[str, object]]:
        """Scenario analyses of the adjusted net benefit at the reference λ per point: the
        lowest and highest declared willingness to pay, the costs at the prices of the years
        next to the currency year (price index), and the outcome at the other follow-ups
        (adjusted complete cases) instead of the primary time point."""
        result = self.primary
        if result is None or not result.available:
            return []
        declared = self.spec.willingness_to_pay("improvement")
        lam = float(declared.reference)
        effect = result.differences["improvement"].adjusted.estimate
        cost = result.differences[COST].adjusted.estimate
        if effect is None or cost is None:
            return []
        rows: list[dict[str, object]] = [
            {"scenario": "base", "value": lam, "inmb": lam * effect - cost}
        ]
        for value in (min(declared.shown), max(declared.shown)):
            pair = result.inmb_at("improvement", value)
            rows.append(
                {
                    "scenario": "wtp",
                    "value": float(value),
                    "inmb": pair.adjusted.estimate if pair else value * effect - cost,
                }
            )
        index = self.catalogue.price_index_series()
        year = self.spec.currency_year
        for other in (year - 1, year + 1):
            if other in index.index and year in index.index:
                ratio = float(index[other] / index[year])
                inmb = lam * effect - cost * ratio
                rows.append({"scenario": "price_year", "value": float(other), "inmb": inmb})
        for time_point in self.follow_ups:
            if time_point == result.time_point:
                continue
            improvement = self._follow_up_difference(time_point)
            if improvement is not None:
                inmb = lam * improvement - cost
                rows.append({"scenario": "time_point", "value": time_point, "inmb": inmb})
        return rows

    def _follow_up_difference(self, time_point: str) -> float | None:
        """The adjusted difference in improvement at another follow-up (complete cases)."""
        plan = self.primary_plan
        long = self.score_long(plan.outcome)
        follow = long[long["time_point"] == time_point].set_index("person_id")["value"]
        frame = self.primary_frame
        baseline = frame[_column(plan.outcome, self.baseline)]
        improvement = pd.Series(
            outcomes.improvement_of(
                baseline, follow.reindex(frame.index), self.direction(plan.outcome)
            ),
            index=frame.index,
        )
        covariates = [c for c in self.primary_covariates if frame[c].notna().any()]
        usable = frame[covariates].notna().all(axis=1) & improvement.notna()
        data = frame[usable]
        if data["treat"].nunique() < 2 or min(data["treat"].value_counts()) < self.min_cell:
            return None
        treat = data["treat"].to_numpy(dtype=np.int_)
        design = Design(treat, data[covariates].to_numpy(dtype=float))
        return float(g_computation(design, improvement[usable].to_numpy()[:, None]).ate[0])
