"""Cohort analytics of one pilot: from the database to the domain analytics, with filters.

One :class:`CohortAnalysis` per request (or CLI run) reads what it needs in bulk through
:mod:`vaikuttavuus.queries` — each table once, lazily, filtered in SQL by the pilot and the
cohort filters (period of index dates, arm, unit) — and hands plain frames to the pure
functions of :mod:`vaikuttavuus.domain`. Sections are computed on first use, so a page that
shows one section computes one section; the management report asks for all of them.

The package is split by question, with one direction of imports (each module imports only
the ones above it):

* :mod:`.publication` — :class:`Published` tables and :func:`publish`: every table that leaves
  the clinician view goes through the pilot's small-cell suppression, so the pages, the CSV
  downloads, the PDFs and the CLI show the same tables;
* :mod:`.data` — :class:`CohortData`: definitions, the frames read once from the database and
  the per-person tables every section shares (data assembly);
* :mod:`.participation`, :mod:`.outcomes`, :mod:`.costs`, :mod:`.cost_effectiveness`,
  :mod:`.primary` (the declared primary analysis), :mod:`.funnel`, :mod:`.services` — one
  section each, as a subclass of :class:`CohortData`;
* this module — :class:`CohortAnalysis`, all sections together.

Results are small frozen dataclasses with ``to_dict()`` (JSON-ready; hidden values are
``None``).

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
  cycle at its ``currency_year`` prices, of the persons whose care cycle has ended before the
  data date and whose cost data are complete by the pilot's declared rule
  (``analysis.costs``). A person whose care cycle has ended without complete cost data has
  *missing* costs — counted and shown, imputed in the primary analysis — never 0 €.
* Covariates named in the pilot definition: ``age`` (index-date year − birth year), ``sex``,
  ``lives_alone``, ``unit`` and ``arm`` (categories), ``baseline_<instrument>_<score>`` (the
  baseline score) and any clinical measure code (the latest current value on or before the
  index date).
* The mixed model of the older adults pilot is slow on a large cohort: it runs only on demand
  and its result is cached in the process per pilot, filters, score, grouping and data version
  (:func:`mixed_model`); ``vaikuttavuus report mixed-model`` runs it from the command line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vaikuttavuus.domain.stats import plain
from vaikuttavuus.services.analytics.cost_effectiveness import (
    EFFECTS,
    CostEffectiveness,
    CostEffectivenessSections,
    EffectName,
    EffectResult,
    EffectScale,
    effect_scale,
)
from vaikuttavuus.services.analytics.costs import CostSection, CostSections
from vaikuttavuus.services.analytics.data import (
    DEFAULT_SEED,
    CohortData,
    Filters,
    cohort_rows,
    wtp_key,
)
from vaikuttavuus.services.analytics.funnel import FUNNEL_Z, Funnel, FunnelSection
from vaikuttavuus.services.analytics.outcomes import OutcomeSection, OutcomeSections
from vaikuttavuus.services.analytics.participation import (
    DataQuality,
    Enrolment,
    ParticipationSections,
    ResponseRates,
)
from vaikuttavuus.services.analytics.primary import (
    EstimatePair,
    PrimaryResult,
    PrimarySection,
    Scenario,
    Subgroup,
)
from vaikuttavuus.services.analytics.publication import ALL, Published, publish
from vaikuttavuus.services.analytics.services import (
    SERVICE_GROUPINGS,
    ServiceSection,
    ServiceSections,
    mixed_model,
    mixed_model_table,
)

__all__ = [
    "ALL",
    "DEFAULT_SEED",
    "EFFECTS",
    "FUNNEL_Z",
    "SERVICE_GROUPINGS",
    "CohortAnalysis",
    "CohortData",
    "CostEffectiveness",
    "CostSection",
    "DataQuality",
    "EffectName",
    "EffectResult",
    "EffectScale",
    "Enrolment",
    "EstimatePair",
    "Filters",
    "Funnel",
    "OutcomeSection",
    "PrimaryResult",
    "Published",
    "ResponseRates",
    "Scenario",
    "ServiceSection",
    "Subgroup",
    "cohort_rows",
    "effect_scale",
    "mixed_model",
    "mixed_model_table",
    "publish",
    "wtp_key",
]


class CohortAnalysis(
    ParticipationSections,
    OutcomeSections,
    CostSections,
    CostEffectivenessSections,
    PrimarySection,
    FunnelSection,
    ServiceSections,
):
    """The analytics of one pilot and filter set: every section on first use (see the
    module docstring). ``n_boot`` and ``seed`` set the bootstrap (tests pass fewer
    replicates); ``as_of`` is the data date (default: today)."""

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
        return plain(result)
