"""Older adults: service effects on loneliness and insecurity, and the mixed model."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from vaikuttavuus import queries
from vaikuttavuus.domain import loneliness
from vaikuttavuus.services.analytics.data import (
    CohortData,
    _score_name,
)
from vaikuttavuus.services.analytics.publication import Published, publish

SERVICE_GROUPINGS: tuple[loneliness.Grouping, ...] = ("service_type", "provider_sector")
SERVICE_SCORES: tuple[tuple[str, str], ...] = (
    ("ucla3", "total"),
    ("djg6", "total"),
    ("djg6", "emotional"),
    ("djg6", "social"),
    ("lonely1", "frequency"),
    ("insecurity", "safe_daily"),
)
"""Scores of the older adults' service-effect analysis, when the pilot schedules them."""


@dataclass(frozen=True)
class ServiceSection:
    """Service effects of one score by one grouping (service type or provider sector)."""

    score: str
    by: str
    direction: str
    follow_ups: tuple[str, ...]
    effects: Published
    descriptives: Published
    balance: Published
    cost_per_point: Published
    notes: tuple[str, ...]
    error: str | None = None

    def forest_rows(self, time_point: str = loneliness.POOLED) -> list[dict[str, Any]]:
        """Adjusted estimates of the shown categories at ``time_point``, for the chart."""
        return [
            row
            for row in self.effects.records()
            if row["method"] == "adjusted"
            and row["time_point"] == time_point
            and row["estimate"] is not None
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "by": self.by,
            "direction": self.direction,
            "follow_ups": list(self.follow_ups),
            "effects": self.effects.to_dict(),
            "descriptives": self.descriptives.to_dict(),
            "balance": self.balance.to_dict(),
            "cost_per_point": self.cost_per_point.to_dict(),
            "notes": list(self.notes),
            "error": self.error,
        }


class ServiceSections(CohortData):
    """Older adults: service effects on loneliness and insecurity, and the mixed model."""

    @cached_property
    def service_scores(self) -> list[str]:
        return [
            _score_name(code, score)
            for code, score in SERVICE_SCORES
            if code in self.scheduled_instruments
        ]

    @cached_property
    def service_inputs(self) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
        """(persons with covariates, exposures, covariate names) for the models.

        Exposed = a service that started between the care cycle's start and the first
        follow-up, so it precedes every follow-up it is compared at.
        """
        covariates = self.covariates
        names = [c for c in covariates.columns if covariates[c].notna().any()]
        persons = covariates[names].rename_axis("person_id").reset_index()
        exposures = self.exposures
        index_date = self.roster.set_index("enrolment_id")["index_date"]
        first = self._days("offset_days")[self.follow_ups[0]] if self.follow_ups else 0
        index = pd.DatetimeIndex(index_date.reindex(exposures["enrolment_id"]).to_numpy())
        start = index + pd.Timedelta(days=self.spec.care_cycle.start_days)
        stop = index + pd.Timedelta(days=first)
        started = pd.DatetimeIndex(exposures["started_on"])
        inside = np.asarray((started >= start) & (started <= stop), dtype=bool)
        selected = exposures[inside].rename(columns={"enrolment_id": "person_id"})
        return persons, selected, names

    def services(self, score: str, by: loneliness.Grouping = "service_type") -> ServiceSection:
        """Service effects of ``score`` by ``by`` (cached per analysis)."""
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
        empty = pd.DataFrame()
        persons, exposures, covariates = self.service_inputs
        long = self.score_long(score)[["person_id", "time_point", "score", "value"]]
        try:
            result = loneliness.service_effects(
                persons,
                long,
                exposures,
                score=score,
                baseline=self.baseline,
                follow_ups=follow_ups,
                covariates=covariates,
                by=by,
                direction=direction,
                min_exposed=self.min_cell,
            )
        except loneliness.LonelinessError as error:
            blank = self._publish(f"services_{by}", empty, counts=[])
            return ServiceSection(
                score, by, direction, follow_ups, blank, blank, blank, blank, (), str(error)
            )
        estimates = result.estimates.assign(
            n_unexposed=result.estimates["n_persons"] - result.estimates["n_exposed"]
        )
        effect_values = ["estimate", "se", "ci_low", "ci_high", "p_value"]
        effects = self._publish(
            f"service_effects_{by}",
            estimates,
            counts=["n_exposed", "n_unexposed", "n_persons", "n"],
            derived={"n_exposed": effect_values, "n_unexposed": effect_values},
            margins=False,
            suppress_zeros=False,
        )
        descriptives = self._publish(
            f"service_descriptives_{by}",
            result.descriptives,
            counts=["n"],
            derived={"n": ["baseline_mean", "change_mean", "change_ci_low", "change_ci_high"]},
            margins=False,
            suppress_zeros=False,
        )
        exposed = (
            estimates.drop_duplicates("category").set_index("category")["n_exposed"]
            if len(estimates)
            else pd.Series(dtype=float)
        )
        balance = result.balance.assign(
            n_exposed=exposed.reindex(result.balance["category"]).to_numpy()
        )
        balance_published = self._publish(
            f"service_balance_{by}",
            balance,
            counts=["n_exposed"],
            derived={
                "n_exposed": ["smd_before", "smd_after", "imbalanced_before", "imbalanced_after"]
            },
            margins=False,
            suppress_zeros=False,
        )
        cost = self._publish(
            f"service_cost_per_point_{by}",
            result.cost_per_point,
            counts=["n_with_cost"],
            derived={
                "n_with_cost": [
                    "mean_cost",
                    "reduction",
                    "reduction_ci_low",
                    "reduction_ci_high",
                    "cost_per_point",
                    "ci_low",
                    "ci_high",
                ]
            },
            margins=False,
            suppress_zeros=False,
        )
        return ServiceSection(
            score=score,
            by=by,
            direction=direction,
            follow_ups=follow_ups,
            effects=effects,
            descriptives=descriptives,
            balance=balance_published,
            cost_per_point=cost,
            notes=result.notes,
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
    :func:`vaikuttavuus.queries.cohort_data_version`, so new data give a new fit."""
    version = queries.cohort_data_version(analysis.session, analysis.pilot.id)
    database = analysis.session.get_bind().url.render_as_string(hide_password=True)
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
        result = str(error)
    with _MIXED.lock:
        _MIXED.entries[key] = result
        while len(_MIXED.entries) > _MIXED.size:
            _MIXED.entries.popitem(last=False)
    return (None, result, False) if isinstance(result, str) else (result, None, False)


def mixed_model_table(result: loneliness.MixedModelEffects, min_count: int) -> Published:
    """The mixed model's effects as a published table."""
    return publish(
        "mixed_model",
        result.effects.assign(n_unexposed=result.n_persons - result.effects["n_exposed"]),
        counts=["n_exposed", "n_unexposed"],
        derived={
            "n_exposed": ["slope_difference", "se", "ci_low", "ci_high", "p_value"],
            "n_unexposed": ["slope_difference", "se", "ci_low", "ci_high", "p_value"],
        },
        min_count=min_count,
        margins=False,
        suppress_zeros=False,
    )
