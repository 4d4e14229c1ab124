"""Cohort analytics of one pilot: from the database to the domain analytics, with filters.

One :class:`CohortAnalysis` per request (or CLI run) reads what it needs in bulk through
:mod:`vaikuttavuus.queries` — each table once, lazily, filtered in SQL by the pilot and the
cohort filters (period of index dates, arm, unit) — and hands plain frames to the pure
functions of :mod:`vaikuttavuus.domain`. Sections are computed on first use, so a page that
shows one section computes one section; the management report asks for all of them.

Every table that leaves the clinician view goes through :func:`publish`, which is
:func:`vaikuttavuus.domain.disclosure.suppress_small_cells` with the pilot's ``min_cell_size``:
the pages, the CSV downloads, the PDF and the CLI show the same suppressed tables. Results are
small frozen dataclasses with ``to_dict()`` (JSON-ready; hidden values are ``None``).

Conventions (see ``docs/reports.md`` for the full method notes)
---------------------------------------------------------------
* A *person* is an enrolment (one per person and pilot); the domain's ``person_id`` is the
  enrolment id.
* The time-point filter selects the follow-up of the outcome, cost-effectiveness and funnel
  figures (default: the last one) and restricts the response-rate and data-quality tables.
* A follow-up is *due* for a person when its window has closed (index date +
  ``window_close_days`` before the data date) or the person has answered it; persons not due
  are left out of that follow-up's denominators.
* Costs: episode costs (:func:`vaikuttavuus.domain.costing.episode_costs`) over the pilot's care
  cycle at its ``currency_year`` prices. The cost and cost-effectiveness figures use the persons
  whose care cycle has ended before the data date, so every cost is complete.
* Covariates named in the pilot definition: ``age`` (index-date year − birth year), ``sex``,
  ``lives_alone``, ``baseline_<instrument>_<score>`` (the baseline score) and any clinical
  measure code (the latest current value on or before the index date).
* The mixed model of the older adults pilot is slow on a large cohort: it runs only on demand
  and its result is cached in the process per pilot, filters, score, grouping and data version
  (:func:`mixed_model`); ``vaikuttavuus report mixed-model`` runs it from the command line.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import Any, Literal

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from vaikuttavuus import queries
from vaikuttavuus.domain import cea, disclosure, loneliness, outcomes
from vaikuttavuus.domain.costing import CostingError, EpisodeCosts, episode_costs
from vaikuttavuus.domain.specs import BandScore, InstrumentSpec, PilotSpec, ResponderRule
from vaikuttavuus.domain.stats import mean_ci, plain
from vaikuttavuus.models import Pilot
from vaikuttavuus.services.definitions import current_instrument, instrument_spec, pilot_spec

__all__ = [
    "ALL",
    "EFFECTS",
    "CohortAnalysis",
    "CostEffectiveness",
    "EffectResult",
    "Filters",
    "Funnel",
    "Published",
    "ServiceSection",
    "mixed_model",
    "publish",
]

ALL = outcomes.ALL_ARMS
"""The label of whole-cohort rows (``"all"``)."""
UTILITY = ("eq5d5l", "index")
"""The utility score used for QALYs, when the pilot schedules it."""
DEFAULT_SEED = 20_260_101
"""Bootstrap seed of the reports: the same data give the same figures."""
FUNNEL_Z = (1.959963984540054, 3.090232306167813)
"""Funnel-plot limits: 95 % and 99.8 % (z = 1.96 and 3.09)."""
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

EffectName = Literal["improvement", "responder", "qaly"]
EFFECTS: tuple[EffectName, ...] = ("improvement", "responder", "qaly")


@dataclass(frozen=True)
class EffectScale:
    """The willingness-to-pay grid of an effect and the λ values its tables show."""

    wtp: tuple[float, ...]
    shown: tuple[float, ...]
    reference: float


EFFECT_SCALES: Mapping[EffectName, EffectScale] = {
    "improvement": EffectScale(
        tuple(np.linspace(0.0, 2_000.0, 201)), (0.0, 250.0, 500.0, 1_000.0, 2_000.0), 500.0
    ),
    "responder": EffectScale(
        tuple(np.linspace(0.0, 20_000.0, 201)),
        (0.0, 2_500.0, 5_000.0, 10_000.0, 20_000.0),
        10_000.0,
    ),
    "qaly": EffectScale(
        tuple(float(x) for x in cea.DEFAULT_WTP),
        (0.0, 10_000.0, 20_000.0, 30_000.0, 50_000.0),
        20_000.0,
    ),
}
"""Per effect: € per IPSS point (0–2 000), per responder (0–20 000), per QALY (0–50 000, BCEA's
default grid); the reference λ is the one of the plain-language interpretation."""


# --------------------------------------------------------------------------------------------
# Filters
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """Cohort filters: index dates in ``period`` (either end open), one ``arm``, one ``unit``,
    and the ``time_point`` (see the module docstring)."""

    period: tuple[date | None, date | None] = (None, None)
    arm: str | None = None
    unit: str | None = None
    time_point: str | None = None

    def key(self) -> tuple[object, ...]:
        return (*self.period, self.arm, self.unit, self.time_point)

    def query(self) -> dict[str, Any]:
        """The keyword arguments of the cohort reads in :mod:`vaikuttavuus.queries`."""
        return {"period": self.period, "arm": self.arm, "unit": self.unit}

    def to_dict(self) -> dict[str, Any]:
        return {
            "from": self.period[0].isoformat() if self.period[0] else None,
            "to": self.period[1].isoformat() if self.period[1] else None,
            "arm": self.arm,
            "unit": self.unit,
            "time_point": self.time_point,
        }


# --------------------------------------------------------------------------------------------
# Published (suppressed) tables
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Published:
    """A table after small-cell suppression: what every output outside the clinician view
    shows. ``table`` keeps the ``suppressed`` marker column; hidden values are missing.
    ``hidden`` (same shape, booleans) marks the values the suppression removed and
    ``primary`` the counts hidden for being small themselves (the rest were hidden because a
    small one could otherwise be worked out)."""

    name: str
    table: pd.DataFrame
    min_count: int
    n_primary: int
    n_secondary: int
    hidden: pd.DataFrame = field(default_factory=pd.DataFrame)
    primary: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def empty(self) -> bool:
        return self.table.empty

    def records(self) -> list[dict[str, Any]]:
        """Rows as plain dicts (hidden or missing values are ``None``)."""
        return plain(self.table.to_dict("records"))  # type: ignore[no-any-return]

    def data_columns(self) -> list[str]:
        return [c for c in self.table.columns if c != disclosure.MARKER]

    def is_hidden(self, row: int, column: str) -> bool:
        values = self._hidden_columns.get(column)
        return values is not None and bool(values[row])

    def is_primary(self, row: int, column: str) -> bool:
        values = self._primary_columns.get(column)
        return values is not None and bool(values[row])

    @cached_property
    def _hidden_columns(self) -> dict[str, np.ndarray]:
        """``hidden`` as one boolean array per column (the views ask cell by cell)."""
        return {column: self.hidden[column].to_numpy(dtype=bool) for column in self.hidden}

    @cached_property
    def _primary_columns(self) -> dict[str, np.ndarray]:
        return {column: self.primary[column].to_numpy(dtype=bool) for column in self.primary}

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "min_count": self.min_count,
            "hidden_primary": self.n_primary,
            "hidden_secondary": self.n_secondary,
            "rows": self.records(),
        }


def publish(
    name: str,
    table: pd.DataFrame,
    *,
    counts: Sequence[str],
    derived: Mapping[str, Sequence[str]] | None = None,
    groups: Sequence[str] = (),
    strata: Sequence[str] = (),
    min_count: int,
    margins: bool = True,
    total_label: str | None = None,
    suppress_zeros: bool | Sequence[str] = True,
) -> Published:
    """:func:`~vaikuttavuus.domain.disclosure.suppress_small_cells` for every published table
    (one rule for all outputs). An empty table stays empty. ``suppress_zeros=False`` is for
    process counts (invitations, responses, imports) and group sizes (persons in an arm, with
    both answers, exposed, with a cost), whose zeros say nothing about a person's health or
    care: they are shown as 0, not as "<5". A list names the count columns whose zeros stay
    hidden (e.g. ``["n_responders"]``: no responders in a group tells about every member)."""
    if table.empty:
        return Published(name, table.assign(**{disclosure.MARKER: False}), min_count, 0, 0)
    table = table.reset_index(drop=True)
    present = set(table.columns)
    kept = {
        count: [c for c in columns if c in present]
        for count, columns in (derived or {}).items()
        if count in present
    }
    result = disclosure.suppress_small_cells(
        table,
        counts=[c for c in counts if c in present],
        derived=kept,
        groups=list(groups),
        strata=list(strata),
        min_count=min_count,
        margins=margins,
        total_label=total_label,
        suppress_zeros=suppress_zeros,
    )
    hidden = table.notna() & result.table[table.columns].isna()
    primary = result.reasons.eq(disclosure.PRIMARY).reindex(columns=table.columns, fill_value=False)
    return Published(
        name,
        result.table,
        min_count,
        result.n_primary,
        result.n_secondary,
        hidden.astype(bool),
        primary.fillna(False).astype(bool),
    )


# --------------------------------------------------------------------------------------------
# Section results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Enrolment:
    """Enrolled and withdrawn persons per arm (and ``all``)."""

    table: Published

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table.to_dict()}


@dataclass(frozen=True)
class ResponseRates:
    """Response rate per time point and arm: ``invited`` = completed + expired + opted out
    (invitations whose answer was asked for and can no longer come), ``responded`` =
    completed, ``open`` = windows still open (not in the rate)."""

    table: Published

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table.to_dict()}


@dataclass(frozen=True)
class DataQuality:
    """Missing items per instrument and time point, late answers per time point, imports."""

    items: Published
    late: Published
    imports: Published

    def to_dict(self) -> dict[str, Any]:
        return {
            "items": self.items.to_dict(),
            "late": self.late.to_dict(),
            "imports": self.imports.to_dict(),
        }


@dataclass(frozen=True)
class OutcomeSection:
    """Outcome summaries per arm, score and follow-up (:func:`outcomes.summarise_outcomes`),
    QALYs per arm and the baseline-adjusted QALY difference."""

    summary: Published
    scores: tuple[str, ...]
    primary: str
    qalys: Published
    qaly_difference: outcomes.QalyDifference | None
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary.to_dict(),
            "scores": list(self.scores),
            "primary": self.primary,
            "qalys": self.qalys.to_dict(),
            "qaly_difference": None
            if self.qaly_difference is None
            else self.qaly_difference.to_dict(),
            "notes": list(self.notes),
        }


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

    @property
    def available(self) -> bool:
        return self.two_arm is not None and not self.hidden

    def at(self, values: Sequence[float], lam: float) -> float | None:
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
class CostSection:
    """Episode costs per arm (persons whose care cycle has ended), and the cost structure per
    arm by cost centre and by product (mean euros per person of the arm, total, share)."""

    target_year: int
    window: tuple[int, int]
    by_arm: Published
    by_cost_centre: Published
    by_product: Published
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "target_year": self.target_year,
            "window_days": list(self.window),
            "by_arm": self.by_arm.to_dict(),
            "by_cost_centre": self.by_cost_centre.to_dict(),
            "by_product": self.by_product.to_dict(),
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


@dataclass(frozen=True)
class Funnel:
    """Responder share of the primary outcome by unit and by professional, with the funnel
    limits p₀ ± z·√(p₀(1 − p₀)/n) for z = 1.96 and 3.09 (``p0`` over the whole cohort)."""

    score: str
    follow_up: str | None
    p0: float | None
    n_total: int
    groups: dict[str, Published]

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "follow_up": self.follow_up,
            "p0": plain(self.p0),
            "n_total": self.n_total,
            "groups": {name: table.to_dict() for name, table in self.groups.items()},
        }


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


# --------------------------------------------------------------------------------------------
# The analysis
# --------------------------------------------------------------------------------------------


def wtp_key(value: float) -> str:
    """λ as an object key: whole numbers without a decimal point ("20000")."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _score_name(instrument: str, score: str) -> str:
    return f"{instrument}.{score}"


class CohortAnalysis:
    """The analytics of one pilot and filter set. Frames are read once, on first use; each
    section is computed once, on first use.

    ``n_boot`` and ``seed`` set the bootstrap (tests pass fewer replicates); ``as_of`` is the
    data date (default: today).
    """

    def __init__(
        self,
        session: Session,
        pilot: Pilot,
        filters: Filters | None = None,
        *,
        n_boot: int = cea.DEFAULT_BOOTSTRAP,
        seed: int = DEFAULT_SEED,
        as_of: date | None = None,
    ) -> None:
        self.session = session
        self.pilot = pilot
        self.spec: PilotSpec = pilot_spec(pilot)
        self.filters = filters or Filters()
        self.n_boot = n_boot
        self.seed = seed
        self.as_of = as_of or date.today()
        self.min_cell = self.spec.min_cell_size
        self._lock = threading.Lock()

    # -- definitions ---------------------------------------------------------------------------

    @property
    def time_points(self) -> list[str]:
        return [tp.id for tp in self.spec.time_points]

    @property
    def baseline(self) -> str:
        return self.spec.baseline.id

    @property
    def follow_ups(self) -> list[str]:
        return [tp for tp in self.time_points if tp != self.baseline]

    @property
    def follow_up(self) -> str | None:
        """The follow-up of the outcome, CEA and funnel figures (filter, else the last)."""
        chosen = self.filters.time_point
        if chosen in self.follow_ups:
            return chosen
        return self.follow_ups[-1] if self.follow_ups else None

    @property
    def shown_time_points(self) -> list[str]:
        """Time points of the response-rate and data-quality tables."""
        chosen = self.filters.time_point
        return [chosen] if chosen in self.time_points else self.time_points

    @property
    def arms(self) -> list[str]:
        return [arm.id for arm in self.spec.arms]

    @property
    def reference_arm(self) -> str:
        return self.spec.reference_arm.id

    @property
    def rules(self) -> tuple[ResponderRule, ...]:
        return (self.spec.primary_outcome, *self.spec.secondary_outcomes)

    @property
    def primary_score(self) -> str:
        rule = self.spec.primary_outcome
        return _score_name(rule.instrument, rule.score)

    @cached_property
    def scheduled_instruments(self) -> list[str]:
        return list(self.spec.instrument_ids)

    @cached_property
    def instruments(self) -> dict[str, InstrumentSpec]:
        """The current spec of every scheduled instrument (labels, directions, bands)."""
        return {
            code: instrument_spec(current_instrument(self.session, code))
            for code in self.scheduled_instruments
        }

    def direction(self, score: str) -> outcomes.Direction:
        instrument, score_id = score.split(".", 1)
        spec = self.instruments.get(instrument)
        value = spec.score(score_id).direction if spec is not None else None
        return value or "lower_is_better"  # type: ignore[return-value]

    @property
    def has_utility(self) -> bool:
        return UTILITY[0] in self.scheduled_instruments

    @property
    def has_procedures(self) -> bool:
        return bool(self.spec.procedure_types)

    @property
    def has_services(self) -> bool:
        return bool(self.spec.service_types)

    def _days(self, attribute: str) -> dict[str, int]:
        return {tp.id: int(getattr(tp, attribute)) for tp in self.spec.time_points}

    # -- frames (each read once) -----------------------------------------------------------

    @cached_property
    def roster(self) -> pd.DataFrame:
        return queries.cohort_enrolments(self.session, self.pilot.id, **self.filters.query())

    @cached_property
    def scores(self) -> dict[str, pd.DataFrame]:
        """Scored responses per scheduled instrument (one read of responses and answers)."""
        return queries.cohort_scores(
            self.session, self.pilot.id, self.scheduled_instruments, **self.filters.query()
        )

    @cached_property
    def invitations(self) -> pd.DataFrame:
        return queries.cohort_invitation_counts(self.session, self.pilot.id, **self.filters.query())

    @cached_property
    def procedures(self) -> pd.DataFrame:
        return queries.cohort_procedures(self.session, self.pilot.id, **self.filters.query())

    @cached_property
    def cost_items(self) -> pd.DataFrame:
        return queries.cohort_cost_items(self.session, self.pilot.id, **self.filters.query())

    @cached_property
    def exposures(self) -> pd.DataFrame:
        return queries.cohort_exposures(self.session, self.pilot.id, **self.filters.query())

    @cached_property
    def import_log(self) -> pd.DataFrame:
        return queries.pilot_import_log(self.session, self.pilot.code)

    @cached_property
    def measure_covariates(self) -> list[str]:
        from vaikuttavuus.services.definitions import load_measure_catalogue

        known = {m.id for m in load_measure_catalogue().measures}
        return [name for name in self.spec.covariates if name in known]

    @cached_property
    def measurements(self) -> pd.DataFrame:
        if not self.measure_covariates:
            return pd.DataFrame(columns=["enrolment_id", "measure_code", "value_num"])
        return queries.cohort_measurements(
            self.session, self.pilot.id, self.measure_covariates, **self.filters.query()
        )

    @cached_property
    def score_frames(self) -> dict[str, pd.DataFrame]:
        """Every numeric score in the domain's long form, one frame per score (``instrument.
        score``): ``person_id`` (the enrolment), ``arm``, ``time_point``, ``score``, ``value``.
        Kept apart per score so that no step compares score names row by row."""
        arm_of = self.roster.set_index("enrolment_id")["arm"]
        frames: dict[str, pd.DataFrame] = {}
        for code, answered in self.scores.items():
            spec = self.instruments.get(code)
            if answered.empty or spec is None:
                continue
            frame = answered[answered["time_point"].isin(self.time_points)]
            person = frame["enrolment_id"].to_numpy()
            arm = arm_of.reindex(person).to_numpy()
            time_point = frame["time_point"].to_numpy()
            for score in spec.scores:
                if score.id not in frame.columns or frame[score.id].dtype.kind != "f":
                    continue
                name = _score_name(code, score.id)
                frames[name] = pd.DataFrame(
                    {
                        "person_id": person,
                        "arm": arm,
                        "time_point": time_point,
                        "score": name,
                        "value": frame[score.id].to_numpy(dtype=float),
                    }
                )
        return frames

    def score_long(self, score: str) -> pd.DataFrame:
        """The long frame of one score (empty when nothing was answered)."""
        found = self.score_frames.get(score)
        if found is None:
            return pd.DataFrame(columns=list(outcomes.LONG_COLUMNS))
        return found

    @cached_property
    def persons(self) -> pd.DataFrame:
        """The domain's roster: ``person_id`` (enrolment id) and ``arm``."""
        return self.roster[["enrolment_id", "arm"]].rename(columns={"enrolment_id": "person_id"})

    @cached_property
    def _answered(self) -> dict[str, np.ndarray]:
        """Per time point: the enrolments that submitted any instrument of it."""
        pieces = [f[["enrolment_id", "time_point"]] for f in self.scores.values() if len(f)]
        if not pieces:
            return {}
        both = pd.concat(pieces, ignore_index=True)
        return {
            str(tp): group["enrolment_id"].unique()
            for tp, group in both.groupby("time_point", sort=False)
        }

    def due(self, time_point: str) -> pd.Series:
        """Per roster row: the time point is due (its window has closed) or was answered."""
        close = self._days("window_close_days")[time_point]
        closed = self.roster["index_date"] + pd.to_timedelta(close, unit="D") < pd.Timestamp(
            self.as_of
        )
        answered = self._answered.get(time_point, np.empty(0, dtype=np.int64))
        return closed | self.roster["enrolment_id"].isin(answered)

    @cached_property
    def covariates(self) -> pd.DataFrame:
        """The pilot's covariates per person (index = enrolment id); see the module docstring."""
        roster = self.roster.set_index("enrolment_id")
        result = pd.DataFrame(index=roster.index)
        for name in self.spec.covariates:
            if name == "age":
                result[name] = roster["index_date"].dt.year - roster["birth_year"]
            elif name == "sex":
                result[name] = roster["sex"].astype(object)
            elif name == "lives_alone":
                result[name] = roster["lives_alone"].astype("Float64").astype(float)
            elif name.startswith("baseline_"):
                score = self.baseline_score_name(name.removeprefix("baseline_"))
                if score is None:
                    continue
                values = self.score_long(score)
                values = values[values["time_point"] == self.baseline]
                result[name] = values.set_index("person_id")["value"].reindex(result.index)
            elif name in self.measure_covariates:
                result[name] = self._measure_at_index(name).reindex(result.index)
        return result

    def baseline_score_name(self, rest: str) -> str | None:
        for code in sorted(self.scheduled_instruments, key=len, reverse=True):
            if rest.startswith(code + "_"):
                return _score_name(code, rest.removeprefix(code + "_"))
        return None

    def _measure_at_index(self, measure: str) -> pd.Series:
        rows = self.measurements
        rows = rows[rows["measure_code"] == measure]
        index_date = self.roster.set_index("enrolment_id")["index_date"]
        rows = rows.assign(index_date=index_date.reindex(rows["enrolment_id"]).to_numpy())
        rows = rows[rows["measured_on"] <= rows["index_date"]]
        latest = rows.sort_values(["enrolment_id", "measured_on"]).drop_duplicates(
            "enrolment_id", keep="last"
        )
        return latest.set_index("enrolment_id")["value_num"]

    # -- sections ----------------------------------------------------------------------------

    def _publish(self, name: str, table: pd.DataFrame, **kwargs: Any) -> Published:
        return publish(name, table, min_count=self.min_cell, **kwargs)

    @cached_property
    def enrolment(self) -> Enrolment:
        roster = self.roster
        rows = []
        for arm in [*self.arms, ALL]:
            part = roster if arm == ALL else roster[roster["arm"] == arm]
            rows.append(
                {
                    "arm": arm,
                    "enrolled": len(part),
                    "withdrawn": int((part["status"] == "withdrawn").sum()),
                }
            )
        table = pd.DataFrame(rows)
        return Enrolment(
            self._publish(
                "enrolment",
                table,
                counts=["enrolled", "withdrawn"],
                groups=["arm"],
                total_label=ALL,
                suppress_zeros=False,
            )
        )

    @cached_property
    def response_rates(self) -> ResponseRates:
        counts = self.invitations
        grid = pd.MultiIndex.from_product(
            [self.shown_time_points, self.arms], names=["time_point", "arm"]
        ).to_frame(index=False)
        if counts.empty:
            wide = grid.assign(completed=0, expired=0, opted_out=0, open=0)
        else:
            pivot = counts.pivot_table(
                index=["time_point", "arm"], columns="status", values="n", aggfunc="sum"
            )
            wide = grid.merge(pivot.reset_index(), on=["time_point", "arm"], how="left")
        for status in ("completed", "expired", "opted_out", "open"):
            if status not in wide.columns:
                wide[status] = 0
            wide[status] = wide[status].fillna(0).astype(int)
        wide["invited"] = wide["completed"] + wide["expired"] + wide["opted_out"]
        wide["responded"] = wide["completed"]
        rates = outcomes.response_rates(
            wide[["arm", "time_point", "invited", "responded"]], by=("arm", "time_point")
        ).table
        open_counts = (
            pd.concat(
                [
                    wide[["arm", "time_point", "open"]],
                    wide.assign(arm=ALL)[["arm", "time_point", "open"]],
                ]
            )
            .groupby(["arm", "time_point"], sort=False)["open"]
            .sum()
        )
        rates["open"] = open_counts.reindex(
            pd.MultiIndex.from_frame(rates[["arm", "time_point"]])
        ).to_numpy()
        rates = rates[
            ["time_point", "arm", "invited", "responded", "rate", "ci_low", "ci_high", "open"]
        ]
        return ResponseRates(
            self._publish(
                "response_rates",
                rates,
                counts=["invited", "responded", "open"],
                derived={
                    "invited": ["rate", "ci_low", "ci_high"],
                    "responded": ["rate", "ci_low", "ci_high"],
                },
                groups=["arm"],
                strata=["time_point"],
                total_label=ALL,
                suppress_zeros=False,
            )
        )

    @cached_property
    def data_quality(self) -> DataQuality:
        items = []
        for code in self.scheduled_instruments:
            frame = self.scores.get(code)
            spec = self.instruments.get(code)
            if frame is None or spec is None:
                continue
            main = next(
                (s.id for s in spec.scores if s.id in frame and frame[s.id].dtype.kind == "f"),
                None,
            )
            for tp in self.shown_time_points:
                part = frame[frame["time_point"] == tp]
                if code not in self.spec.time_point(tp).instruments:
                    continue
                items.append(
                    {
                        "instrument": code,
                        "time_point": tp,
                        "responses": len(part),
                        "with_missing_items": int((part["items_missing"] > 0).sum())
                        if len(part)
                        else 0,
                        "score_not_computable": int(part[main].isna().sum())
                        if main and len(part)
                        else 0,
                        "assisted": int((part["mode"] == "assisted").sum()) if len(part) else 0,
                    }
                )
        items_table = pd.DataFrame(
            items,
            columns=[
                "instrument",
                "time_point",
                "responses",
                "with_missing_items",
                "score_not_computable",
                "assisted",
            ],
        )
        counts = self.invitations
        late_rows = []
        for tp in self.shown_time_points:
            part = counts[(counts["time_point"] == tp) & (counts["status"] == "completed")]
            late_rows.append(
                {
                    "time_point": tp,
                    "completed": int(part["n"].sum()) if len(part) else 0,
                    "after_reminder": int(part["after_reminder"].sum()) if len(part) else 0,
                    "after_window": int(part["after_window"].sum()) if len(part) else 0,
                }
            )
        late = pd.DataFrame(late_rows)
        with np.errstate(divide="ignore", invalid="ignore"):
            late["share_after_reminder"] = late["after_reminder"] / late["completed"]
        return DataQuality(
            items=self._publish(
                "data_quality",
                items_table,
                counts=["responses", "with_missing_items", "score_not_computable", "assisted"],
                margins=False,
                suppress_zeros=False,
            ),
            late=self._publish(
                "late_answers",
                late,
                counts=["completed", "after_reminder", "after_window"],
                derived={
                    "completed": ["share_after_reminder"],
                    "after_reminder": ["share_after_reminder"],
                },
                margins=False,
                suppress_zeros=False,
            ),
            imports=self._publish(
                "imports",
                self._import_table(),
                counts=["rows_total", "rows_stored", "rows_rejected", "unmatched_rows"],
                margins=False,
                suppress_zeros=False,
            ),
        )

    def _import_table(self) -> pd.DataFrame:
        log = self.import_log
        columns = [
            "kind",
            "batches",
            "rows_total",
            "rows_stored",
            "rows_rejected",
            "unmatched_rows",
        ]
        if log.empty:
            return pd.DataFrame(columns=columns)
        unmatched = log["errors"].map(
            lambda errors: len(
                {e.get("line") for e in errors or [] if e.get("code") == "unknown_person"}
            )
        )
        rejected = log["status"] != "stored"
        frame = log.assign(
            unmatched_rows=unmatched,
            rows_rejected=np.where(rejected, log["rows_total"], 0),
            rows_stored=np.where(rejected, 0, log["rows_stored"]),
        )
        table = (
            frame.groupby("kind", sort=True)
            .agg(
                batches=("kind", "size"),
                rows_total=("rows_total", "sum"),
                rows_stored=("rows_stored", "sum"),
                rows_rejected=("rows_rejected", "sum"),
                unmatched_rows=("unmatched_rows", "sum"),
            )
            .reset_index()
        )
        return table[columns]

    # -- outcomes ------------------------------------------------------------------------------

    def _bands(self, rule: ResponderRule) -> BandScore | None:
        if not rule.by_baseline_band:
            return None
        spec = self.instruments.get(rule.instrument)
        if spec is None:
            return None
        return next(
            (s for s in spec.scores if isinstance(s, BandScore) and s.of == rule.score), None
        )

    def changes(self, score: str, follow_ups: Sequence[str] | None = None) -> pd.DataFrame:
        """Per follow-up, the change table of the persons due (see :meth:`due`)."""
        wanted = list(follow_ups) if follow_ups is not None else self.follow_ups
        parts = [self._change_table(score, tp) for tp in wanted]
        if not parts:
            return pd.DataFrame(
                columns=[
                    "person_id",
                    "arm",
                    "score",
                    "time_point",
                    "baseline",
                    "follow_up",
                    "change",
                ]
            )
        return pd.concat(parts, ignore_index=True)

    def _change_table(self, score: str, time_point: str) -> pd.DataFrame:
        """The change table of ``score`` at one follow-up (the persons due), computed once per
        analysis: the outcome, cost-effectiveness and funnel sections share it. Callers get
        it through :meth:`changes`, which concatenates (copies) it."""
        key = (score, time_point)
        cached = self._changes_cache.get(key)
        if cached is None:
            data = self.score_long(score)
            due = self._due_ids(time_point)
            roster = self.persons[self.persons["person_id"].isin(due)]
            rows = data[
                data["person_id"].isin(due) & data["time_point"].isin([self.baseline, time_point])
            ]
            cached = outcomes.change_scores(
                rows,
                baseline=self.baseline,
                time_points=[self.baseline, time_point],
                persons=roster,
                scores=[score],
            ).table
            self._changes_cache[key] = cached
        return cached

    @cached_property
    def _changes_cache(self) -> dict[tuple[str, str], pd.DataFrame]:
        return {}

    def _due_ids(self, time_point: str) -> pd.Series:
        """The enrolment ids of the persons due at ``time_point`` (see :meth:`due`)."""
        cached = self._due_cache.get(time_point)
        if cached is None:
            cached = self.roster.loc[self.due(time_point), "enrolment_id"]
            self._due_cache[time_point] = cached
        return cached

    @cached_property
    def _due_cache(self) -> dict[str, pd.Series]:
        return {}

    def responders(
        self, rule: ResponderRule, follow_ups: Sequence[str] | None = None
    ) -> pd.DataFrame:
        score = _score_name(rule.instrument, rule.score)
        table = self.changes(score, follow_ups)
        if table.empty:
            return table.assign(
                improvement=pd.Series(dtype=float),
                threshold=pd.Series(dtype=float),
                responder=pd.array([], dtype="boolean"),
            )
        return outcomes.classify_responders(
            table,
            rule,
            direction=self.direction(score),
            bands=self._bands(rule),
            score=score,
        ).table

    @cached_property
    def outcomes(self) -> OutcomeSection:
        follow_ups = [self.follow_up] if self.filters.time_point in self.follow_ups else None
        parts = []
        scores = []
        notes: list[str] = []
        for rule in self.rules:
            score = _score_name(rule.instrument, rule.score)
            if rule.instrument not in self.scheduled_instruments:
                continue
            table = self.responders(rule, follow_ups)
            scores.append(score)
            if not table.empty:
                parts.append(outcomes.summarise_outcomes(table).table)
        utility = _score_name(*UTILITY)
        if self.has_utility:
            table = self.changes(utility, follow_ups)
            scores.append(utility)
            if not table.empty:
                parts.append(outcomes.summarise_outcomes(table).table)
        summary = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        published = self._publish(
            "outcomes",
            summary,
            counts=list(outcomes.SUMMARY_DERIVED),
            derived=outcomes.SUMMARY_DERIVED,
            groups=["arm"],
            strata=["score", "time_point"],
            total_label=ALL,
            suppress_zeros=["n_responders"],
        )
        qalys, difference = self._qalys(notes)
        return OutcomeSection(
            summary=published,
            scores=tuple(scores),
            primary=self.primary_score,
            qalys=qalys,
            qaly_difference=difference,
            notes=tuple(notes),
        )

    @cached_property
    def qaly_table(self) -> pd.DataFrame | None:
        """QALYs per person (AUC over every time point; complete cases), or None."""
        if not self.has_utility:
            return None
        utilities = self.score_long(_score_name(*UTILITY))
        last = self.time_points[-1]
        due = self._due_ids(last)
        roster = self.persons[self.persons["person_id"].isin(due)]
        utilities = utilities[utilities["person_id"].isin(due)]
        days = self._days("offset_days")
        return outcomes.auc_qalys(
            utilities[["person_id", "arm", "time_point", "value"]],
            time_days={tp: days[tp] for tp in self.time_points},
            persons=roster,
        ).table

    def _qalys(self, notes: list[str]) -> tuple[Published, outcomes.QalyDifference | None]:
        table = self.qaly_table
        columns = ["arm", "n_persons", "n", "mean", "ci_low", "ci_high"]
        if table is None:
            return self._publish("qalys", pd.DataFrame(columns=columns), counts=["n"]), None
        rows = []
        for arm in [*self.arms, ALL]:
            part = table if arm == ALL else table[table["arm"] == arm]
            stats = mean_ci(part["qaly"])
            rows.append(
                {
                    "arm": arm,
                    "n_persons": len(part),
                    "n": stats.n,
                    "mean": stats.mean,
                    "ci_low": stats.ci_low,
                    "ci_high": stats.ci_high,
                }
            )
        published = self._publish(
            "qalys",
            pd.DataFrame(rows, columns=columns),
            counts=["n_persons", "n"],
            derived={"n": ["mean", "ci_low", "ci_high"]},
            groups=["arm"],
            total_label=ALL,
            suppress_zeros=False,
        )
        difference = None
        shown = published.table.set_index("arm")["n"]
        if self.filters.arm is None and all(pd.notna(shown.get(arm)) for arm in self.arms):
            try:
                difference = outcomes.adjusted_qaly_difference(table, reference=self.reference_arm)
            except outcomes.OutcomeError as error:
                notes.append(str(error))
        return published, difference

    # -- costs ---------------------------------------------------------------------------------

    @cached_property
    def catalogue(self) -> Any:
        from vaikuttavuus.services.cost_reports import costing_catalogue

        return costing_catalogue(self.session)

    @cached_property
    def cycle_complete(self) -> pd.Series:
        """Per roster row: the care cycle ended before the data date."""
        end = pd.to_timedelta(self.spec.care_cycle.end_days, unit="D")
        return self.roster["index_date"] + end < pd.Timestamp(self.as_of)

    @cached_property
    def episode_costs(self) -> EpisodeCosts | str:
        """Episode costs of the persons whose care cycle has ended, or the reason why not."""
        enrolments = self.roster.loc[self.cycle_complete, ["enrolment_id", "index_date"]]
        rows = self.cost_items
        rows = rows[rows["enrolment_id"].isin(enrolments["enrolment_id"])]
        try:
            return episode_costs(
                rows,
                enrolments,
                self.spec.care_cycle.start_days,
                self.spec.care_cycle.end_days,
                self.catalogue,
                self.spec.currency_year,
                id_col="enrolment_id",
            )
        except CostingError as error:
            return str(error)

    @cached_property
    def cost_persons(self) -> pd.DataFrame:
        """The persons of the cost figures (care cycle ended before the data date, within the
        filters): ``enrolment_id``, ``arm``, ``index_date`` and their episode cost
        ``total_eur`` (0 € without cost rows; NaN when the costs cannot be computed)."""
        roster = self.roster.loc[self.cycle_complete]
        people = roster[["enrolment_id", "arm", "index_date"]].reset_index(drop=True)
        costs = self.episode_costs
        totals = (
            costs.totals.reindex(people["enrolment_id"]).to_numpy()
            if not isinstance(costs, str)
            else np.full(len(people), np.nan)
        )
        return people.assign(total_eur=totals)

    def _structure(
        self, breakdown: pd.DataFrame, arms: pd.Series, column: str
    ) -> pd.DataFrame:
        """Mean euros per person and share of the arm's total per category (product or cost
        centre) for each arm; categories the arm did not use are left out."""
        columns = ["arm", column, "n", "mean_eur", "total_eur", "share"]
        if not len(breakdown):
            return pd.DataFrame(columns=columns)
        sums = breakdown.groupby(arms.to_numpy()).sum()
        counts = arms.value_counts()
        pieces = []
        for arm in self.arms:
            if arm not in sums.index:
                continue
            values = sums.loc[arm].to_numpy(dtype=float)
            total = float(values.sum())
            size = int(counts.get(arm, 0))
            pieces.append(
                pd.DataFrame(
                    {
                        "arm": arm,
                        column: [str(c) for c in sums.columns],
                        "n": size,
                        "mean_eur": values / size if size else np.nan,
                        "total_eur": values,
                        "share": values / total if total else np.nan,
                    }
                )
            )
        if not pieces:
            return pd.DataFrame(columns=columns)
        table = pd.concat(pieces, ignore_index=True)
        return table[table["total_eur"] > 0].reset_index(drop=True)[columns]

    @cached_property
    def costs(self) -> CostSection:
        """Episode cost per person by arm, and the cost structure by cost centre and by
        product, of the persons whose care cycle has ended (:attr:`cost_persons`). The
        structure is shown for the arms whose cost is shown."""
        notes: list[str] = []
        arm_columns = [
            "arm",
            "n",
            "mean_eur",
            "ci_low_eur",
            "ci_high_eur",
            "median_eur",
            "sd_eur",
            "total_eur",
        ]
        centre_columns = ["arm", "cost_centre", "n", "mean_eur", "total_eur", "share"]
        product_columns = ["arm", "product", "n", "mean_eur", "total_eur", "share"]
        costs = self.episode_costs
        if isinstance(costs, str):
            notes.append(costs)
            arm_rows: list[dict[str, Any]] = []
            centre = pd.DataFrame(columns=centre_columns)
            product = pd.DataFrame(columns=product_columns)
        else:
            arms = self.roster.set_index("enrolment_id")["arm"].reindex(costs.totals.index)
            arm_rows = []
            for arm in [*self.arms, ALL]:
                values = costs.totals if arm == ALL else costs.totals[arms == arm]
                stats = mean_ci(values)
                arm_rows.append(
                    {
                        "arm": arm,
                        "n": stats.n,
                        "mean_eur": stats.mean,
                        "ci_low_eur": stats.ci_low,
                        "ci_high_eur": stats.ci_high,
                        "median_eur": float(values.median()) if len(values) else math.nan,
                        "sd_eur": float(values.std(ddof=1)) if len(values) > 1 else math.nan,
                        "total_eur": float(values.sum()),
                    }
                )
            centre = self._structure(costs.by_cost_centre, arms, "cost_centre")
            product = self._structure(costs.by_product, arms, "product")
        by_arm = self._publish(
            "costs",
            pd.DataFrame(arm_rows, columns=arm_columns),
            counts=["n"],
            derived={"n": arm_columns[2:]},
            groups=["arm"],
            total_label=ALL,
            suppress_zeros=False,
        )
        # The structure of an arm whose cost is hidden would give its mean away (the parts add
        # up to it, and with the total, to the hidden arm's): only the arms shown.
        shown = by_arm.table
        hidden = set(shown.loc[shown[disclosure.MARKER].astype(bool), "arm"]) if len(shown) else ()
        centre = centre[~centre["arm"].isin(hidden)].reset_index(drop=True)
        product = product[~product["arm"].isin(hidden)].reset_index(drop=True)
        structure_derived = {"n": ["mean_eur", "total_eur", "share"]}
        return CostSection(
            target_year=self.spec.currency_year,
            window=(self.spec.care_cycle.start_days, self.spec.care_cycle.end_days),
            by_arm=by_arm,
            by_cost_centre=self._publish(
                "costs_by_cost_centre",
                centre,
                counts=["n"],
                derived=structure_derived,
                margins=False,
                suppress_zeros=False,
            ),
            by_product=self._publish(
                "costs_by_product",
                product,
                counts=["n"],
                derived=structure_derived,
                margins=False,
                suppress_zeros=False,
            ),
            notes=tuple(notes),
        )

    # -- cost-effectiveness --------------------------------------------------------------------

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
            notes.append(self.episode_costs)
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
        scale = EFFECT_SCALES[effect]
        frame = self.cea_frame
        data = frame[frame["cost"].notna() & frame[effect].notna()]
        notes: list[str] = []
        arm_rows = []
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
        incremental = self._incremental(data, effect)
        follow_up = None if effect == "qaly" else self.follow_up
        two = boot = regression = None
        if intervention is None or self.filters.arm is not None:
            notes.append("the comparison needs both arms (no arm filter)")
            return EffectResult(
                effect, follow_up, arms, None, None, None, incremental, scale, hidden, tuple(notes)
            )
        if hidden:
            notes.append("an arm has too few persons to show")
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
            notes.append(str(error))
            return EffectResult(
                effect, follow_up, arms, None, None, None, incremental, scale, hidden, tuple(notes)
            )
        regression = self._regression(data, effect, scale, notes)
        return EffectResult(
            effect, follow_up, arms, two, boot, regression, incremental, scale, hidden, tuple(notes)
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
                f"net-benefit regression: {dropped} person(s) without a covariate left out"
            )
        usable = []
        for name in covariates:
            column = complete[name]
            if column.nunique(dropna=True) > 1:
                usable.append(name)
            else:
                notes.append(f"net-benefit regression: covariate '{name}' does not vary; left out")
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
            notes.append(f"net-benefit regression: {error}")
            return None

    def _incremental(self, data: pd.DataFrame, effect: EffectName) -> Published:
        columns = ["strategy", "n", "cost", "effect", "status", "icer", "compared_with"]
        if not self.has_procedures or data["procedure_type"].isna().all():
            return self._publish(
                f"incremental_{effect}", pd.DataFrame(columns=columns), counts=["n"]
            )
        grouped = (
            data.dropna(subset=["procedure_type"])
            .groupby("procedure_type", sort=True)
            .agg(n=("cost", "size"), cost=("cost", "mean"), effect=(effect, "mean"))
            .reset_index()
            .rename(columns={"procedure_type": "strategy"})
        )
        shown = grouped[grouped["n"] >= self.min_cell]
        table = grouped.assign(status=None, icer=np.nan, compared_with=None)
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
        return self._publish(
            f"incremental_{effect}",
            table[columns],
            counts=["n"],
            derived={"n": ["cost", "effect", "status", "icer", "compared_with"]},
            margins=False,
            suppress_zeros=False,
        )

    # -- funnel --------------------------------------------------------------------------------

    @cached_property
    def funnel(self) -> Funnel:
        rule = self.spec.primary_outcome
        columns = [
            "group",
            "n",
            "responders",
            "share",
            "low_95",
            "high_95",
            "low_998",
            "high_998",
            "position",
        ]
        empty = Funnel(self.primary_score, self.follow_up, None, 0, {})
        if self.follow_up is None or rule.instrument not in self.scheduled_instruments:
            return empty
        table = self.responders(rule, [self.follow_up]).dropna(subset=["responder"])
        if table.empty:
            return empty
        table = table.assign(responder=table["responder"].astype(bool))
        p0 = float(table["responder"].mean())
        roster = self.roster.set_index("enrolment_id")
        professional = roster["clinician_code"]
        if not self.procedures.empty:
            surgeon = self.procedures.set_index("enrolment_id")["surgeon_code"]
            professional = surgeon.reindex(roster.index).fillna(professional)
        groupings = {"unit": roster["unit"], "professional": professional}
        published = {}
        for name, labels in groupings.items():
            label = labels.reindex(table["person_id"]).to_numpy()
            part = table.assign(group=label).dropna(subset=["group"])
            if part.empty or part["group"].nunique() < 2:
                continue
            grouped = (
                part.groupby("group", sort=True)
                .agg(n=("responder", "size"), responders=("responder", "sum"))
                .reset_index()
            )
            grouped["share"] = grouped["responders"] / grouped["n"]
            spread = np.sqrt(p0 * (1 - p0) / grouped["n"])
            for z, suffix in zip(FUNNEL_Z, ("95", "998"), strict=True):
                grouped[f"low_{suffix}"] = np.clip(p0 - z * spread, 0.0, 1.0)
                grouped[f"high_{suffix}"] = np.clip(p0 + z * spread, 0.0, 1.0)
            grouped["position"] = np.select(
                [
                    grouped["share"] > grouped["high_998"],
                    grouped["share"] > grouped["high_95"],
                    grouped["share"] < grouped["low_998"],
                    grouped["share"] < grouped["low_95"],
                ],
                ["above_998", "above_95", "below_998", "below_95"],
                default="within",
            )
            published[name] = self._publish(
                f"funnel_{name}",
                grouped[columns],
                counts=["n", "responders"],
                derived={"n": columns[2:], "responders": ["share", "position"]},
                groups=["group"],
                suppress_zeros=["responders"],
            )
        return Funnel(self.primary_score, self.follow_up, p0, len(table), published)

    def funnel_curve(self, n_max: int, points: int = 60) -> pd.DataFrame:
        """The funnel limits over n = 1 … ``n_max`` for the chart and its table."""
        p0 = self.funnel.p0
        n = np.unique(np.geomspace(1, max(n_max, 2), points).round().astype(int))
        frame = pd.DataFrame({"n": n})
        if p0 is None:
            return frame
        spread = np.sqrt(p0 * (1 - p0) / n)
        for z, suffix in zip(FUNNEL_Z, ("95", "998"), strict=True):
            frame[f"low_{suffix}"] = np.clip(p0 - z * spread, 0.0, 1.0)
            frame[f"high_{suffix}"] = np.clip(p0 + z * spread, 0.0, 1.0)
        return frame

    # -- older adults: services ----------------------------------------------------------------

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

    # -- everything ----------------------------------------------------------------------------

    def to_dict(self, *, services: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
        """Every section (the services for the given (score, grouping) pairs)."""
        result: dict[str, Any] = {
            "pilot": self.pilot.code,
            "filters": self.filters.to_dict(),
            "as_of": self.as_of.isoformat(),
            "min_cell_size": self.min_cell,
            "enrolment": self.enrolment.to_dict(),
            "response_rates": self.response_rates.to_dict(),
            "data_quality": self.data_quality.to_dict(),
            "outcomes": self.outcomes.to_dict(),
            "costs": self.costs.to_dict(),
            "funnel": self.funnel.to_dict(),
        }
        if self.has_procedures:
            result["cost_effectiveness"] = self.cost_effectiveness.to_dict()
        if self.has_services:
            result["services"] = [
                self.services(score, by).to_dict()  # type: ignore[arg-type]
                for score, by in services
            ]
        return plain(result)  # type: ignore[no-any-return]


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
    analysis: CohortAnalysis, score: str, by: loneliness.Grouping = "service_type"
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
