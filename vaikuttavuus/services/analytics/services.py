"""Older adults: the adjusted difference in loneliness and insecurity associated with each
service (:mod:`vaikuttavuus.domain.attribution`), the client-guidance estimates, and the mixed
model.

The analysis follows the pilot definition's declared ``analysis`` (primary outcome and time
point, ``min_exposure_days``, ``multiplicity``, ``missing_data``) and its ``covariates`` (the
confounders). It is computed once per pilot, filters, data date and data version and kept in
the process (:data:`_ATTRIBUTIONS`), since the pilot page, the client-guidance view, the
management PDF and ``report estimates`` all ask for it.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from vaikuttavuus import change_log
from vaikuttavuus.domain import attribution, loneliness
from vaikuttavuus.domain.notes import Note
from vaikuttavuus.domain.specs import FlagScore
from vaikuttavuus.services.analytics.data import CohortData
from vaikuttavuus.services.analytics.publication import Published, publish
from vaikuttavuus.texts import N_, translate

log = logging.getLogger(__name__)

SERVICE_GROUPINGS: tuple[loneliness.Grouping, ...] = ("service_type", "provider_sector")
WEB_MODES = ("web", "self")
"""Response modes that are the person's own answer in the app (``self`` before issue 14)."""

ESTIMATE_VALUES = [
    "estimate", "se", "ci_low", "ci_high", "p_value", "p_adjusted", "e_value", "e_value_ci",
]  # fmt: skip

DIFFERENCE_VALUES = [
    "estimate", "ci_low", "ci_high", "p_value", "p_adjusted", "e_value", "e_value_ci",
    "unadjusted", "unadjusted_ci_low", "unadjusted_ci_high",
]  # fmt: skip
COST_VALUES = [
    "delta_cost", "delta_cost_ci_low", "delta_cost_ci_high", "improvement", "improvement_ci_low",
    "improvement_ci_high", "cost_per_point", "ci_low", "ci_high",
]  # fmt: skip

CAVEAT_NOT_RANDOMISED = N_(
    "Services were not randomised. The differences are adjusted for the clients' differences "
    "at the start (%(confounders)s), but they may still reflect who receives each service "
    "rather than what the service does."
)
CAVEAT_E_VALUE = N_(
    "The E-value tells how strongly an unmeasured difference between clients would have to be "
    "associated with both receiving the service and the outcome (as a risk ratio) to explain "
    "the difference away; values near 1 mean that little would be enough."
)
CAVEAT_MULTIPLICITY = N_(
    "One primary question was declared in advance (%(outcome)s at %(time_point)s by service "
    "type); the other %(n)s comparisons are secondary, and their p-values are adjusted for "
    "multiple comparisons (%(method)s)."
)
CAVEAT_MISSING_RESPONSE = N_(
    "Missing follow-up answers (%(share)s at %(time_point)s) are handled by a model of who "
    "answers, assuming that answering depends only on the recorded case mix and services; "
    "the sensitivity analyses show the results if non-responders were worse off."
)
CAVEAT_MISSING_IMPUTATION = N_(
    "Missing follow-up answers (%(share)s at %(time_point)s) are multiply imputed, assuming "
    "that they depend only on the recorded case mix and services; the sensitivity analyses "
    "show the results if non-responders were worse off."
)
CAVEAT_MISSING_COMPLETE = N_(
    "Only clients who answered are analysed (%(share)s of answers missing at "
    "%(time_point)s); the results hold for them if answering is unrelated to the outcome."
)
CAVEAT_IMBALANCE = N_(
    "After weighting, %(n)s comparisons still differ by more than 0.1 standard deviations in "
    "a characteristic (largest: %(variable)s for %(service)s, %(smd)s); the outcome model "
    "adjusts for it, but that comparison rests more on the model."
)
CAVEAT_BOUNDED = N_(
    "Some clients almost always or almost never receive a service: %(n)s propensity scores "
    "were bounded to 0.01–0.99."
)
CAVEAT_SMALL = N_(
    "Services with fewer than %(n)s clients with or without them are not estimated."
)
CAVEAT_METHOD = N_(
    "Estimator: doubly robust (augmented inverse probability weighting) with a propensity "
    "model for each service and an outcome model; exposure = a service started at least "
    "%(days)s days before the follow-up answer."
)

REASONS = {
    "small_cell": N_("fewer than %(n)s clients with or without the service"),
    "no_overlap": N_("the clients with and without the service do not overlap"),
    "not_estimable": N_("cannot be estimated from these data"),
}


@dataclass(frozen=True)
class ServiceSection:
    """The services analysis of one score, as the pages and PDFs show it (published tables)."""

    score: str
    by: str
    direction: str
    primary: bool
    primary_time_point: str
    time_points: tuple[str, ...]
    estimates: Published
    differences: Published
    balance: Published
    overlap: Published
    overlap_bins: pd.DataFrame
    cost: Published
    dose: Published
    sensitivity: Published
    missing: Published
    notes: tuple[str, ...]
    n_primary: int = 0
    n_secondary: int = 0
    multiplicity: str = "holm"
    error: str | None = None

    def forest_rows(self, time_point: str | None = None) -> list[dict[str, Any]]:
        """The shown AIPW estimates at ``time_point`` (default: the primary follow-up)."""
        wanted = time_point or self.primary_time_point
        return [
            row
            for row in self.estimates.records()
            if row["method"] == "aipw"
            and row["time_point"] == wanted
            and row["estimate"] is not None
        ]

    def imbalanced(self) -> list[dict[str, Any]]:
        """Balance rows with |SMD| > 0.1 after weighting."""
        return [r for r in self.balance.records() if r.get("imbalanced_after")]

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "by": self.by,
            "direction": self.direction,
            "primary": self.primary,
            "primary_time_point": self.primary_time_point,
            "time_points": list(self.time_points),
            "estimates": self.estimates.to_dict(),
            "differences": self.differences.to_dict(),
            "balance": self.balance.to_dict(),
            "overlap": self.overlap.to_dict(),
            "cost": self.cost.to_dict(),
            "dose": self.dose.to_dict(),
            "sensitivity": self.sensitivity.to_dict(),
            "missing": self.missing.to_dict(),
            "n_primary": self.n_primary,
            "n_secondary": self.n_secondary,
            "multiplicity": self.multiplicity,
            "notes": list(self.notes),
            "error": self.error,
        }


# --------------------------------------------------------------------------------------------
# The analysis, kept in the process per pilot, filters, data date and data version
# --------------------------------------------------------------------------------------------


@dataclass
class _Cache:
    entries: OrderedDict[Hashable, Any] = field(default_factory=OrderedDict)
    size: int = 8
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key: Hashable) -> Any:
        with self.lock:
            if key in self.entries:
                self.entries.move_to_end(key)
                return self.entries[key]
        return None

    def put(self, key: Hashable, value: Any) -> None:
        with self.lock:
            self.entries[key] = value
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)


_ATTRIBUTIONS = _Cache()
"""Finished analyses (or their error message) by :meth:`ServiceSections._cache_key`."""


class ServiceSections(CohortData):
    """Older adults: adjusted differences associated with the services, client guidance and
    the mixed model."""

    # -- definitions ---------------------------------------------------------------------------

    @cached_property
    def service_scores(self) -> list[str]:
        """The analysed outcomes: the declared primary score, then the declared secondary
        outcomes (``analysis → secondary_outcomes``, else the pilot's ``secondary_outcomes``),
        those scheduled at the baseline and at every follow-up."""
        plan = self.spec.primary_plan()
        declared = self.spec.analysis.secondary_outcomes or tuple(
            f"{rule.instrument}.{rule.score}" for rule in self.spec.secondary_outcomes
        )
        wanted = list(dict.fromkeys([plan.outcome, *declared]))
        scheduled = {tp.id: set(tp.instruments) for tp in self.spec.time_points}
        chosen = []
        for score in wanted:
            instrument = score.split(".", 1)[0]
            if all(instrument in scheduled[tp] for tp in self.time_points):
                spec = self.instruments.get(instrument)
                if spec is not None and any(s.id == score.split(".", 1)[1] for s in spec.scores):
                    chosen.append(score)
        return chosen

    @property
    def primary_time_point(self) -> str:
        return self.spec.primary_plan().time_point

    @property
    def primary_service_score(self) -> str:
        return self.spec.primary_plan().outcome

    def attribution_plan(self) -> attribution.AttributionPlan:
        analysis = self.spec.analysis
        return attribution.AttributionPlan(
            primary_score=self.primary_service_score,
            primary_time_point=self.primary_time_point,
            missing_data=analysis.missing_data.method,
            imputations=self.imputations or analysis.missing_data.imputations,
            mnar_deltas=tuple(analysis.missing_data.mnar_deltas),
            multiplicity=analysis.multiplicity,
            min_cell=self.min_cell,
            seed=self.seed,
        )

    # -- inputs --------------------------------------------------------------------------------

    @cached_property
    def answer_rows(self) -> pd.DataFrame:
        """One row per person and follow-up answered: ``person_id``, ``time_point``,
        ``answered_on`` (the first answer's day), ``mode`` and ``proxy`` (when recorded) of
        the primary instrument's answer, else of any."""
        primary = self.primary_service_score.split(".", 1)[0]
        pieces = []
        for code, frame in self.scores.items():
            if frame.empty or "submitted_on" not in frame.columns:
                continue
            columns = ["enrolment_id", "time_point", "submitted_on"]
            columns += [c for c in ("mode", "proxy") if c in frame.columns]
            pieces.append(frame[columns].assign(_first=code != primary))
        if not pieces:
            return pd.DataFrame(columns=["person_id", "time_point", "answered_on"])
        both = pd.concat(pieces, ignore_index=True)
        both = both[both["time_point"].isin(self.follow_ups)]
        first_day = both.groupby(["enrolment_id", "time_point"])["submitted_on"].min()
        chosen = both.sort_values(["_first", "submitted_on"]).drop_duplicates(
            ["enrolment_id", "time_point"]
        )
        chosen = chosen.set_index(["enrolment_id", "time_point"])
        chosen["answered_on"] = first_day.reindex(chosen.index)
        result = chosen.drop(columns=["submitted_on", "_first"]).reset_index()
        return result.rename(columns={"enrolment_id": "person_id"})

    def _profile(self, confounders: pd.DataFrame) -> pd.DataFrame:
        """The client-guidance profile of each roster row (see :func:`client_profile`)."""
        flag = self.spec.analysis.guidance_flag
        primary = self._baseline_values(self.primary_service_score)
        return pd.DataFrame(
            client_profile(
                self,
                primary,
                self._baseline_values(flag) if flag else np.full(len(primary), np.nan),
                self.roster["lives_alone"].astype("Float64").astype(float).to_numpy(),
                (self.roster["index_date"].dt.year - self.roster["birth_year"]).to_numpy(),
            )
        )

    def _baseline_values(self, score: str) -> np.ndarray:
        values = self.score_long(score)
        values = values[values["time_point"] == self.baseline]
        return (
            values.drop_duplicates("person_id")
            .set_index("person_id")["value"]
            .reindex(self.roster["enrolment_id"])
            .to_numpy(dtype=float)
        )

    def attribution_input(self, by: loneliness.Grouping = "service_type") -> (
        attribution.AttributionData
    ):
        """The domain input: persons with their declared confounders, the analysed scores,
        the answers' days and the service episodes (see :mod:`vaikuttavuus.domain.attribution`)."""
        roster = self.roster
        ids = roster["enrolment_id"].to_numpy()
        covariates = self.covariates
        names = [c for c in covariates.columns if covariates[c].notna().any()]
        confounders = covariates[names].reindex(ids).reset_index(drop=True)
        scores = self.service_scores
        baseline_columns = {}
        for name in names:
            if name.startswith("baseline_"):
                score = self.baseline_score_name(name.removeprefix("baseline_"))
                if score in scores:
                    baseline_columns[score] = name
        frames = [self.score_long(score)[["person_id", "time_point", "score", "value"]]
                  for score in scores]  # fmt: skip
        outcomes = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        withdrawn = (roster["status"] == "withdrawn").to_numpy()
        answers = self.answer_rows
        due = {}
        for tp in self.follow_ups:
            answered = roster["enrolment_id"].isin(
                answers.loc[answers["time_point"] == tp, "person_id"]
            ).to_numpy()
            due[tp] = self.due(tp).to_numpy() & (answered | ~withdrawn)
        episodes = self.exposures.rename(columns={"enrolment_id": "person_id"})
        coded = self.spec.service_types if by == "service_type" else self.spec.provider_sectors
        categories = [c.id for c in coded]
        offsets = self._days("offset_days")
        return attribution.attribution_data(
            person_ids=ids,
            groups=roster["arm"].to_numpy(),
            index_dates=roster["index_date"],
            confounders=confounders,
            covariates=names,
            baseline_columns=baseline_columns,
            outcomes=outcomes,
            answers=answers,
            episodes=episodes,
            scores=scores,
            baseline=self.baseline,
            follow_ups={tp: offsets[tp] for tp in self.follow_ups},
            due=due,
            categories=categories,
            directions={s: self.direction(s) for s in scores},
            care_start_days=self.spec.care_cycle.start_days,
            min_exposure_days=self.spec.analysis.min_exposure_days,
            as_of=self.as_of,
            by=by,
            profile=self._profile(confounders) if by == "service_type" else None,
        )

    # -- the analysis --------------------------------------------------------------------------

    def _cache_key(self, by: str) -> Hashable:
        version = change_log.latest_change(self.session, self.pilot.id)
        database = self.session.get_bind().engine.url.render_as_string(hide_password=True)
        plan = self.attribution_plan()
        return (
            database,
            self.pilot.code,
            self.spec.model_dump_json(),
            self.filters.key(),
            version,
            self.as_of,
            by,
            repr(plan),
        )

    def service_attribution(
        self, by: loneliness.Grouping = "service_type"
    ) -> attribution.Attribution | str:
        """The analysis by service type (or provider sector, with the service types as
        further adjusters), or the reason it cannot be done; kept in the process."""
        with self._lock:
            found = self._attribution_results.get(by)
        if found is not None:
            return found
        key = self._cache_key(by)
        result = _ATTRIBUTIONS.get(key)
        if result is None:
            result = self._attribute(by)
            _ATTRIBUTIONS.put(key, result)
        with self._lock:
            self._attribution_results[by] = result
        return result

    @cached_property
    def _attribution_results(self) -> dict[str, attribution.Attribution | str]:
        return {}

    def _attribute(self, by: loneliness.Grouping) -> attribution.Attribution | str:
        if not self.service_scores or not self.follow_ups:
            return translate(N_("The pilot has no outcome scored at every time point."))
        data = self.attribution_input(by)
        if by == "provider_sector":
            data = _with_service_types(self, data)
        if not any(f.due.any() for f in data.follow_ups):
            return translate(N_("No follow-up is due yet."))
        try:
            return attribution.attribute(data, self.attribution_plan())
        except attribution.AttributionError as error:
            log.warning("services analysis of %s failed: %s", self.pilot.code, error)
            return translate(N_("The services could not be analysed from these data."))

    # -- published sections ----------------------------------------------------------------------

    def services(self, score: str, by: loneliness.Grouping = "service_type") -> ServiceSection:
        """The published services analysis of ``score`` by ``by`` (cached per analysis)."""
        key = (score, by)
        with self._lock:
            cached = self._service_cache.get(key)
        if cached is not None:
            return cached
        result = self._services(score, by)
        with self._lock:
            self._service_cache[key] = result
        return result

    @cached_property
    def _service_cache(self) -> dict[tuple[str, str], ServiceSection]:
        return {}

    def _services(self, score: str, by: loneliness.Grouping) -> ServiceSection:
        direction = self.direction(score)
        follow_ups = tuple(self.follow_ups)
        found = self.service_attribution(by)
        primary = score == self.primary_service_score and by == "service_type"
        empty = pd.DataFrame()
        if isinstance(found, str) or score not in found.scores:
            blank = self._publish(f"service_{by}", empty, counts=[])
            error = (
                found if isinstance(found, str) else translate(N_("No estimates for this score."))
            )
            return ServiceSection(
                score, by, direction, primary, self.primary_time_point, follow_ups, blank,
                blank, blank, blank, empty, blank, blank, blank, blank, (), error=error,
            )  # fmt: skip
        result = found
        estimates = result.estimates[result.estimates["score"] == score].drop(columns=["score"])
        published_estimates = self._publish(
            "service_estimates",
            estimates.drop(columns=["n", "sd", "n_bounded"]),
            counts=["n_exposed", "n_unexposed"],
            derived={"n_exposed": ESTIMATE_VALUES, "n_unexposed": ESTIMATE_VALUES},
            margins=False,
            suppress_zeros=False,
        )
        differences = self._publish(
            "service_differences",
            _wide_differences(estimates),
            counts=["n_exposed", "n_unexposed"],
            derived={"n_exposed": DIFFERENCE_VALUES, "n_unexposed": DIFFERENCE_VALUES},
            margins=False,
            suppress_zeros=False,
        )
        exposed = (
            estimates[estimates["method"] == "aipw"]
            .drop_duplicates(["category", "time_point"])
            .set_index(["category", "time_point"])["n_exposed"]
        )

        def with_counts(frame: pd.DataFrame) -> pd.DataFrame:
            keys = pd.MultiIndex.from_frame(frame[["category", "time_point"]])
            return frame.assign(n_exposed=exposed.reindex(keys).to_numpy())

        balance = self._publish(
            "service_balance",
            with_counts(result.balance),
            counts=["n_exposed"],
            derived={"n_exposed": ["smd_before", "smd_after", "imbalanced_after"]},
            margins=False,
            suppress_zeros=False,
        )
        quantiles = [c for c in result.overlap.columns if c.startswith("p")]
        overlap = self._publish(
            "service_overlap",
            result.overlap,
            counts=["n"],
            derived={"n": quantiles},
            margins=False,
            suppress_zeros=False,
        )
        cost_rows = result.cost[result.cost["score"] == score].drop(columns=["score"])
        cost_rows = with_counts(cost_rows)
        cost = self._publish(
            "service_cost_per_point",
            cost_rows,
            counts=["n_exposed", "n_with_cost"],
            derived={"n_exposed": COST_VALUES},
            margins=False,
            suppress_zeros=False,
        )
        dose = self._publish(
            "service_dose",
            result.dose[result.dose["score"] == score].drop(columns=["score"]),
            counts=["n_exposed"],
            derived={"n_exposed": ["estimate", "ci_low", "ci_high", "p_value"]},
            margins=False,
            suppress_zeros=False,
        )
        sensitivity_rows = result.sensitivity if primary else result.sensitivity.iloc[0:0]
        sensitivity = self._publish(
            "service_sensitivity",
            sensitivity_rows,
            counts=["n_exposed", "n_unexposed"],
            derived={
                "n_exposed": ["estimate", "ci_low", "ci_high", "p_value"],
                "n_unexposed": ["estimate", "ci_low", "ci_high", "p_value"],
            },
            margins=False,
            suppress_zeros=False,
        )
        missing_rows = result.missing[
            (result.missing["variable"] == score) | (result.missing["time_point"] == "baseline")
        ]
        missing = self._publish("service_missing", missing_rows, counts=[], margins=False)
        return ServiceSection(
            score=score,
            by=by,
            direction=direction,
            primary=primary,
            primary_time_point=self.primary_time_point,
            time_points=follow_ups,
            estimates=published_estimates,
            differences=differences,
            balance=balance,
            overlap=overlap,
            overlap_bins=result.overlap_bins,
            cost=cost,
            dose=dose,
            sensitivity=sensitivity,
            missing=missing,
            notes=result.notes,
            n_primary=result.n_primary,
            n_secondary=result.n_secondary,
            multiplicity=result.plan.multiplicity,
        )

    # -- report estimates (issue 12's contract) -------------------------------------------------

    def service_estimates(self) -> list[dict[str, Any]]:
        """The ``services`` entries of ``vaikuttavuus report estimates``: every service type
        and analysed outcome at the primary time point — the AIPW estimate (the adjusted mean
        difference in the follow-up score, exposed minus unexposed), its 95 % interval, p,
        the multiplicity-adjusted p (within the primary or the secondary family), the E-value,
        the numbers exposed and unexposed and whether it is the primary question. Small cells
        and estimates that cannot be made are ``None`` with a ``reason``."""
        if not self.has_services:
            return []
        entries = []
        tp = self.primary_time_point
        for score in self.service_scores:
            section = self.services(score, "service_type")
            records = section.estimates.records()
            for category in (c.id for c in self.spec.service_types):
                row = next(
                    (
                        r
                        for r in records
                        if r["category"] == category
                        and r["time_point"] == tp
                        and r["method"] == "aipw"
                    ),
                    None,
                )
                entry: dict[str, Any] = {
                    "service_type": category,
                    "outcome": score,
                    "time_point": tp,
                    "estimate": None,
                    "ci95": [None, None],
                    "p": None,
                    "p_adjusted": None,
                    "e_value": None,
                    "n_exposed": None,
                    "n_unexposed": None,
                    "primary": section.primary,
                    "reason": section.error or "not_estimable",
                }
                if row is not None:
                    entry.update(
                        estimate=row["estimate"],
                        ci95=[row["ci_low"], row["ci_high"]],
                        p=row["p_value"],
                        p_adjusted=row["p_adjusted"],
                        e_value=row["e_value"],
                        n_exposed=row["n_exposed"],
                        n_unexposed=row["n_unexposed"],
                        # an estimate hidden by the small-cell rule has no reason of its own
                        reason=None
                        if row["estimate"] is not None
                        else (row["reason"] or "small_cell"),
                    )
                entries.append(entry)
        return entries

    def service_sensitivity(self) -> list[dict[str, Any]]:
        """The primary question's sensitivity analyses: the outcome regression and IPW alone,
        complete cases, the missing-not-at-random scenarios (``mnar_all``: every
        non-responder δ points worse; ``mnar_exposed``: only the exposed ones), and — when the
        answers' mode and proxy are recorded — without proxy answers and web answers only."""
        if not self.has_services or not self.service_scores:
            return []
        section = self.services(self.primary_service_score, "service_type")
        return [
            {
                "service_type": r["category"],
                "outcome": section.score,
                "time_point": section.primary_time_point,
                "analysis": r["analysis"],
                "delta": r["delta"],
                "estimate": r["estimate"],
                "ci95": [r["ci_low"], r["ci_high"]],
                "p": r["p_value"],
                "n_exposed": r["n_exposed"],
                "n_unexposed": r["n_unexposed"],
                "reason": r["reason"],
            }
            for r in section.sensitivity.records()
        ]

    def service_missing(self) -> dict[str, dict[str, float | None]]:
        """The share missing before it was handled, per ``<score>@<time point>`` (the
        analysed scores at each follow-up, among the persons due) and per baseline confounder
        (``<name>@baseline``), by arm; ``None`` for an arm smaller than the minimum cell."""
        found = self.service_attribution("service_type") if self.has_services else "none"
        if isinstance(found, str):
            return {}
        sizes = self.roster["arm"].value_counts()
        out: dict[str, dict[str, float | None]] = {}
        for record in found.missing.to_dict("records"):
            small = int(sizes.get(record["group"], 0)) < self.min_cell
            key = f"{record['variable']}@{record['time_point']}"
            out.setdefault(key, {})[str(record["group"])] = (
                None if small else float(record["share_missing"])
            )
        return out

    def service_caveats(
        self,
        translate_text: Callable[..., str] = translate,
        name: Callable[[str], str] = lambda code: code.replace("_", " "),
    ) -> list[str]:
        """The caveats of the services analysis in the current language: services were not
        randomised, what the E-value means, the primary question and the number of secondary
        comparisons, how missing answers were handled, and — when they apply — remaining
        imbalance, bounded propensity scores and services too small to estimate. ``name``
        turns a code (confounder, service, score, time point) into words."""
        if not self.has_services:
            return []
        confounders = ", ".join(name(c) for c in self.spec.covariates)
        caveats = [
            translate_text(CAVEAT_NOT_RANDOMISED, confounders=confounders),
            translate_text(CAVEAT_METHOD, days=self.spec.analysis.min_exposure_days),
            translate_text(CAVEAT_E_VALUE),
        ]
        found = self.service_attribution("service_type")
        if isinstance(found, str):
            return [*caveats, found]
        plan = self.spec.primary_plan()
        caveats.append(
            translate_text(
                CAVEAT_MULTIPLICITY,
                outcome=name(plan.outcome),
                time_point=name(plan.time_point),
                n=found.n_secondary,
                method="Holm" if found.plan.multiplicity == "holm" else "Benjamini–Hochberg",
            )
        )
        missing = found.missing
        share = missing[
            (missing["variable"] == plan.outcome) & (missing["time_point"] == plan.time_point)
        ]["share_missing"]
        if len(share):
            text = {
                "aipw_response": CAVEAT_MISSING_RESPONSE,
                "multiple_imputation": CAVEAT_MISSING_IMPUTATION,
                "complete_cases": CAVEAT_MISSING_COMPLETE,
            }[found.plan.missing_data]
            caveats.append(
                translate_text(
                    text, share=f"{float(share.mean()):.0%}", time_point=name(plan.time_point)
                )
            )
        primary_balance = found.balance[found.balance["time_point"] == plan.time_point]
        imbalanced = primary_balance[primary_balance["imbalanced_after"]]
        if len(imbalanced):
            worst = imbalanced.iloc[int(np.argmax(imbalanced["smd_after"].abs().to_numpy()))]
            caveats.append(
                translate_text(
                    CAVEAT_IMBALANCE,
                    n=len(imbalanced),
                    variable=name(str(worst["variable"])),
                    service=name(str(worst["category"])),
                    smd=f"{float(worst['smd_after']):+.2f}",
                )
            )
        estimates = found.estimates
        primary = estimates[
            (estimates["method"] == "aipw") & (estimates["family"] == "primary")
        ]
        bounded = float(np.nansum(primary["n_bounded"].to_numpy(dtype=float)))
        if bounded > 0:
            caveats.append(translate_text(CAVEAT_BOUNDED, n=round(bounded)))
        if (primary["reason"] == "small_cell").any():
            caveats.append(translate_text(CAVEAT_SMALL, n=self.min_cell))
        return caveats

    # -- client guidance -----------------------------------------------------------------------

    def guidance(self, profile: dict[str, object]) -> pd.DataFrame | str:
        """Per service type, the adjusted difference in the primary score at the primary
        follow-up for clients like ``profile`` (:data:`attribution.PROFILE_DIMENSIONS`;
        ``None`` = any), with the number of similar clients, exposed and unexposed, the cost
        per contact and the mean monthly cost per client; small cells hidden; lightest
        (cheapest per month) first. A string says why there is nothing to show."""
        found = self.service_attribution("service_type")
        if isinstance(found, str):
            return found
        if found.guidance is None:
            return translate(N_("The clients' profiles are not known."))
        table = found.guidance.estimate(profile)
        costs = service_unit_costs(self.exposures, self.as_of)
        table = table.merge(costs, on="category", how="left")
        small = (table["n_exposed"] < self.min_cell) | (table["n_unexposed"] < self.min_cell)
        table["hidden"] = small
        for column in ("estimate", "se", "ci_low", "ci_high"):
            table.loc[small, column] = math.nan
        for column in ("n_exposed", "n_unexposed"):  # both, so neither can be worked out
            table[column] = table[column].astype(object)
            table.loc[small, column] = None
        if int(table["n_similar"].max() if len(table) else 0) < self.min_cell:
            table["n_similar"] = None
        order = table["monthly_cost"].fillna(math.inf).to_numpy()
        return table.iloc[np.argsort(order, kind="stable")].reset_index(drop=True)

    # -- the mixed model's inputs ----------------------------------------------------------------

    @cached_property
    def service_inputs(self) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
        """(persons with covariates, exposures, covariate names) for the mixed model.

        Exposed = a service that started on or after the care cycle's start and at least
        ``min_exposure_days`` before the primary follow-up's nominal day (one exposure per
        person: the model's service × time term compares the slopes of those exposed by then).
        """
        covariates = self.covariates
        names = [c for c in covariates.columns if covariates[c].notna().any()]
        persons = covariates[names].rename_axis("person_id").reset_index()
        exposures = self.exposures
        index_date = self.roster.set_index("enrolment_id")["index_date"]
        anchor = self._days("offset_days")[self.primary_time_point] if self.follow_ups else 0
        index = pd.DatetimeIndex(index_date.reindex(exposures["enrolment_id"]).to_numpy())
        start = index + pd.Timedelta(days=self.spec.care_cycle.start_days)
        stop = index + pd.Timedelta(days=anchor - self.spec.analysis.min_exposure_days)
        started = pd.DatetimeIndex(exposures["started_on"])
        inside = np.asarray((started >= start) & (started <= stop), dtype=bool)
        selected = exposures[inside].rename(columns={"enrolment_id": "person_id"})
        return persons, selected, names


def _wide_differences(estimates: pd.DataFrame) -> pd.DataFrame:
    """One row per category and follow-up: the adjusted (AIPW) difference with its p-values,
    E-values, counts and reason, and the unadjusted difference beside it."""
    key = ["category", "time_point"]
    adjusted = estimates[estimates["method"] == "aipw"]
    plain = estimates[estimates["method"] == "unadjusted"][
        [*key, "estimate", "ci_low", "ci_high"]
    ].rename(
        columns={
            "estimate": "unadjusted",
            "ci_low": "unadjusted_ci_low",
            "ci_high": "unadjusted_ci_high",
        }
    )
    wide = adjusted.merge(plain, on=key, how="left")
    return wide[
        [
            *key, "family", "n_exposed", "n_unexposed", "estimate", "ci_low", "ci_high",
            "p_value", "p_adjusted", "e_value", "e_value_ci", "unadjusted",
            "unadjusted_ci_low", "unadjusted_ci_high", "reason",
        ]
    ].reset_index(drop=True)  # fmt: skip


def client_profile(
    analysis: CohortData,
    loneliness_baseline: np.ndarray,
    safety_baseline: np.ndarray,
    lives_alone: np.ndarray,
    age: np.ndarray,
) -> dict[str, np.ndarray]:
    """The client-guidance profile from baseline values (arrays of equal length): the band of
    the primary score (three bands around its flag threshold, see
    :func:`vaikuttavuus.domain.attribution.score_band`), feeling insecure (the safety score's
    flag), living alone, and the age band; unknown values are ``None``."""
    primary = analysis.spec.primary_plan()
    band = np.full(len(loneliness_baseline), None, dtype=object)
    spec = analysis.instruments.get(primary.instrument)
    if spec is not None:
        score = spec.score(primary.score)
        flag = next((s for s in spec.scores if isinstance(s, FlagScore) and s.of == score.id),
                    None)  # fmt: skip
        value_range = getattr(score, "range", None)
        if flag is not None and value_range is not None:
            band = attribution.score_band(
                loneliness_baseline, value_range[0], value_range[1], float(flag.value)
            )
    insecure = np.full(len(safety_baseline), None, dtype=object)
    declared = analysis.spec.analysis.guidance_flag
    instrument, _sep, score_id = (declared or "").partition(".")
    safety = analysis.instruments.get(instrument) if declared else None
    if safety is not None:
        flag = next(
            (s for s in safety.scores if isinstance(s, FlagScore) and s.of == score_id), None
        )
        if flag is not None:
            known = np.isfinite(safety_baseline)
            flagged = _flag(safety_baseline, flag.operator, float(flag.value))
            insecure[known] = np.where(flagged[known], "yes", "no")
    alone = np.full(len(lives_alone), None, dtype=object)
    known = np.isfinite(lives_alone)
    alone[known] = np.where(lives_alone[known] > 0, "yes", "no")
    return {
        "band": band,
        "insecure": insecure,
        "lives_alone": alone,
        "age_band": attribution.age_band(age),
    }


def _flag(values: np.ndarray, operator: str, threshold: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return {
            "<": values < threshold,
            "<=": values <= threshold,
            ">": values > threshold,
            ">=": values >= threshold,
            "==": values == threshold,
        }.get(operator, values <= threshold)


def service_unit_costs(exposures: pd.DataFrame, as_of: object) -> pd.DataFrame:
    """Per service type: the cost per contact (Σ cost / Σ contacts of the episodes with both)
    and the mean cost per client-month (Σ cost / Σ months of those episodes, running ones up
    to ``as_of``): ``category``, ``cost_per_contact``, ``monthly_cost``."""
    columns = ["category", "cost_per_contact", "monthly_cost"]
    if exposures.empty:
        return pd.DataFrame(columns=columns)
    frame = exposures.assign(
        cost=pd.to_numeric(exposures["cost"], errors="coerce"),
        contacts=pd.to_numeric(exposures["contacts"], errors="coerce"),
    )
    frame = frame[frame["cost"].notna() & (frame["contacts"] > 0)]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    end = pd.to_datetime(frame["ended_on"]).fillna(pd.Timestamp(as_of))  # type: ignore[arg-type]
    months = ((end - pd.to_datetime(frame["started_on"])).dt.days + 1).clip(lower=1) / 30.4375
    grouped = frame.assign(months=months.to_numpy()).groupby("service_type")
    totals = grouped[["cost", "contacts", "months"]].sum()
    return pd.DataFrame(
        {
            "category": totals.index.astype(str),
            "cost_per_contact": (totals["cost"] / totals["contacts"]).to_numpy(),
            "monthly_cost": (totals["cost"] / totals["months"]).to_numpy(),
        }
    )


def _with_service_types(
    analysis: ServiceSections, data: attribution.AttributionData
) -> attribution.AttributionData:
    """The provider-sector analysis adjusted for service type: each follow-up's service-type
    exposures added to the confounders (so a sector is compared with others giving the same
    services)."""
    by_type = analysis.attribution_input("service_type")
    follow_ups = []
    for sector, typed in zip(data.follow_ups, by_type.follow_ups, strict=True):
        follow_ups.append(
            attribution.FollowUpData(
                time_point=sector.time_point,
                due=sector.due,
                outcomes=sector.outcomes,
                exposure=sector.exposure,
                mode=sector.mode,
                proxy=sector.proxy,
                adjusters=typed.exposure.exposed,
                adjuster_names=tuple(by_type.categories),
            )
        )
    return attribution.AttributionData(
        person_ids=data.person_ids,
        groups=data.groups,
        confounders=data.confounders,
        baselines=data.baselines,
        categories=data.categories,
        follow_ups=tuple(follow_ups),
        directions=data.directions,
        profile=None,
    )


# --------------------------------------------------------------------------------------------
# The mixed model: on demand, cached per pilot, filters, score, grouping and data version
# --------------------------------------------------------------------------------------------


@dataclass
class _MixedCache:
    entries: OrderedDict[tuple[object, ...], loneliness.MixedModelEffects | str] = field(
        default_factory=OrderedDict
    )
    size: int = 16
    lock: threading.Lock = field(default_factory=threading.Lock)


_MIXED = _MixedCache()


def mixed_model(
    analysis: ServiceSections, score: str, by: loneliness.Grouping = "service_type"
) -> tuple[loneliness.MixedModelEffects | None, str | None, bool]:
    """The mixed model of ``score`` by ``by``: (result, error message, whether it came from the
    cache). Cached in the process per pilot, filters, score, grouping and
    data version (:func:`vaikuttavuus.change_log.latest_change`), so new data give a new fit."""
    version = change_log.latest_change(analysis.session, analysis.pilot.id)
    database = analysis.session.get_bind().engine.url.render_as_string(hide_password=True)
    key = (
        database,
        analysis.pilot.code,
        analysis.filters.key(),
        score,
        by,
        version,
        analysis.as_of,
    )
    with _MIXED.lock:
        if key in _MIXED.entries:
            _MIXED.entries.move_to_end(key)
            cached = _MIXED.entries[key]
            return (None, cached, True) if isinstance(cached, str) else (cached, None, True)
    persons, exposures, covariates = analysis.service_inputs
    long = analysis.score_long(score)[["person_id", "time_point", "score", "value"]]
    months = {tp.id: tp.offset_days / 30.4375 for tp in analysis.spec.time_points}
    result: loneliness.MixedModelEffects | str
    try:
        result = loneliness.mixed_model_effects(
            persons,
            long,
            exposures,
            score=score,
            time_months=months,
            covariates=covariates,
            by=by,
            min_exposed=analysis.min_cell,
        )
    except loneliness.LonelinessError as error:
        # cached for every user: a code the page translates, not a sentence in one language
        result = Note("mixed_model_unavailable", str(error), detail=str(error))
    with _MIXED.lock:
        _MIXED.entries[key] = result
        while len(_MIXED.entries) > _MIXED.size:
            _MIXED.entries.popitem(last=False)
    return (None, result, False) if isinstance(result, str) else (result, None, False)


def mixed_model_table(result: loneliness.MixedModelEffects, min_count: int) -> Published:
    """The mixed model's differences as a published table."""
    values = ["slope_difference", "se", "ci_low", "ci_high", "p_value"] + [
        c for c in result.effects.columns if c.startswith("difference_")
    ]
    return publish(
        "mixed_model",
        result.effects.assign(n_unexposed=result.n_persons - result.effects["n_exposed"]),
        counts=["n_exposed", "n_unexposed"],
        derived={"n_exposed": values, "n_unexposed": values},
        min_count=min_count,
        margins=False,
        suppress_zeros=False,
    )
