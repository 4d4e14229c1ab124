"""The pilot's estimates as ``vaikuttavuus report estimates`` prints them (a stable JSON contract,
documented in ``docs/reports.md``): the declared primary analysis with the unadjusted
comparison beside it, the services' adjusted differences, the share of missing values per
variable and arm, sensitivity analyses and the caveats a reader must know.

``delta_*`` = the other arm minus the reference arm. ``delta_effect`` is the difference in the
improvement of the primary score from baseline to the primary time point (positive = more
improvement); ``delta_cost`` is in euros of the pilot's currency year over the care cycle;
``inmb`` = λ·delta_effect − delta_cost at the declared willingness-to-pay values per point.
"""

from __future__ import annotations

import math
from typing import Any

from flask_babel import gettext as _

from vaikuttavuus.domain.adjusted_cea import AdjustedEstimate
from vaikuttavuus.domain.stats import plain
from vaikuttavuus.services.analytics import CohortAnalysis, EstimatePair, PrimaryResult, wtp_key

__all__ = ["estimates", "estimates_text", "primary_caveats"]

DIFFERENCE_NAMES = {"improvement": "delta_effect", "cost": "delta_cost", "qaly": "delta_qaly"}


def _est(estimate: AdjustedEstimate | None) -> dict[str, Any] | None:
    if estimate is None:
        return None
    return plain(
        {
            "estimate": estimate.estimate,
            "ci95": [estimate.ci_low, estimate.ci_high],
            "n": estimate.n,
            "method": estimate.method,
            "se": estimate.se,
            "p": estimate.p_value,
        }
    )


def _pair(pair: EstimatePair | None) -> dict[str, Any] | None:
    if pair is None:
        return None
    return {"adjusted": _est(pair.adjusted), "unadjusted": _est(pair.unadjusted)}


def _shown_wtp(analysis: CohortAnalysis) -> list[float]:
    declared = analysis.spec.willingness_to_pay("improvement")
    return sorted({*declared.shown, declared.reference})


def estimates(analysis: CohortAnalysis) -> dict[str, Any]:
    """The JSON of ``report estimates`` (see the module docstring and ``docs/reports.md``)."""
    plan = analysis.primary_plan
    result: dict[str, Any] = {
        "pilot": analysis.pilot.code,
        "as_of": analysis.as_of.isoformat(),
        "filters": analysis.filters.to_dict(),
        "comparison": None,
        "primary": {
            "name": "delta_effect" if plan.comparison is not None else "services",
            "outcome": plan.outcome,
            "time_point": plan.time_point,
        },
        "estimates": {},
        "services": [],
        "missing": {},
        "sensitivity": [],
        "caveats": [],
    }
    primary = analysis.primary
    if plan.comparison is not None and primary is not None:
        result["comparison"] = {"reference": primary.reference, "other": primary.other}
        result["estimates"] = _primary_estimates(analysis, primary)
        result["missing"] = primary.missing
        result["sensitivity"] = [s.to_dict() for s in primary.sensitivity]
        result["subgroups"] = [s.to_dict() for s in primary.subgroups]
        result["subgroup_interaction_p"] = primary.interaction_p
        result["value_of_information"] = {
            "per_person": {
                e: {wtp_key(k): v for k, v in rows.items()}
                for e, rows in primary.evpi_per_person.items()
            },
            "population": {
                e: {wtp_key(k): v for k, v in rows.items()}
                for e, rows in primary.evpi_population.items()
            },
            "yearly_volume": analysis.spec.analysis.yearly_volume,
            "decision_horizon_years": analysis.spec.analysis.decision_horizon_years,
        }
        result["settings"] = primary.settings
        result["status"] = primary.reason or ("hidden" if primary.hidden else "ok")
        result["caveats"] = primary_caveats(analysis, primary)
    if analysis.has_services:  # the older adults' services (services/analytics/services.py)
        result["services"] = analysis.service_estimates()
        result["service_sensitivity"] = analysis.service_sensitivity()
        result["caveats"] = [*result["caveats"], *analysis.service_caveats()]
        if plan.comparison is None:
            result["missing"] = analysis.service_missing()
            estimated = any(s["estimate"] is not None for s in result["services"])
            result["status"] = "ok" if estimated else "too_few"
    return plain(result)


def _primary_estimates(analysis: CohortAnalysis, primary: PrimaryResult) -> dict[str, Any]:
    if not primary.available:
        return {}
    out: dict[str, Any] = {}
    for name, key in DIFFERENCE_NAMES.items():
        pair = primary.pair(name)
        if pair is not None:
            out[key] = _pair(pair)
    responder = primary.pair("responder")
    if responder is not None:
        out["delta_responder"] = _pair(responder)
    out["inmb"] = {
        wtp_key(lam): _pair(primary.inmb_at("improvement", lam)) for lam in _shown_wtp(analysis)
    }
    out["prob_cost_effective"] = {
        wtp_key(lam): dict(
            zip(("adjusted", "unadjusted"), primary.probability_at("improvement", lam), strict=True)
        )
        for lam in _shown_wtp(analysis)
    }
    if primary.pair("qaly") is not None:
        qaly = analysis.spec.willingness_to_pay("qaly")
        values = sorted({*qaly.shown, qaly.reference})
        out["inmb_per_qaly"] = {wtp_key(lam): _pair(primary.inmb_at("qaly", lam)) for lam in values}
        out["prob_cost_effective_per_qaly"] = {
            wtp_key(lam): dict(
                zip(("adjusted", "unadjusted"), primary.probability_at("qaly", lam), strict=True)
            )
            for lam in values
        }
    return out


def primary_caveats(analysis: CohortAnalysis, primary: PrimaryResult) -> list[str]:
    """What a reader of the primary result must know, in the current language."""
    labels = {arm.id: arm.name.get(_language()) for arm in analysis.spec.arms}
    caveats = [
        _(
            "The arms were not randomised: %(other)s and %(reference)s patients may differ in "
            "ways the adjustment for the declared covariates does not capture. The adjusted "
            "differences are associations under the assumption of no unmeasured confounding.",
            other=labels.get(primary.other, primary.other),
            reference=labels.get(primary.reference, primary.reference),
        )
    ]
    if primary.reason == "too_few" or primary.hidden:
        caveats.append(_("An arm has too few persons to show the comparison."))
        return caveats
    if primary.reason == "arm_filter":
        caveats.append(_("The comparison needs both arms: remove the arm filter."))
        return caveats
    settings = primary.settings
    follow = f"{primary.outcome}@{primary.time_point}"
    shares = primary.missing.get(follow, {})
    cost_shares = primary.missing.get("cost", {})
    if settings.get("imputations"):
        caveats.append(
            _(
                "Missing values were imputed %(m)s times by chained equations separately in "
                "each arm and the results combined by Rubin's rules. Missing at %(time_point)s: "
                "%(outcome)s; costs missing: %(costs)s. Complete-case and missing-not-at-random "
                "results are shown as sensitivity analyses.",
                m=settings["imputations"],
                time_point=primary.time_point,
                outcome=_shares(shares, labels),
                costs=_shares(cost_shares, labels),
            )
        )
    else:
        caveats.append(
            _(
                "Only persons with complete data are analysed (complete cases), as declared. "
                "Missing at %(time_point)s: %(outcome)s; costs missing: %(costs)s.",
                time_point=primary.time_point,
                outcome=_shares(shares, labels),
                costs=_shares(cost_shares, labels),
            )
        )
    counts = list(primary.n_missing.get("cost", {}).values())
    n_cost = sum(c for c in counts if c)
    if n_cost or None in counts:
        caveats.append(
            _(
                "No complete cost data were received for %(n)s persons: their costs are "
                "missing (imputed), not 0 €.",
                n=n_cost if None not in counts else f"{n_cost} + <{analysis.min_cell}",
            )
        )
    if settings.get("clusters"):
        caveats.append(
            _(
                "Standard errors allow for correlation within %(cluster)s (%(clusters)s "
                "clusters); with few clusters the intervals are wide.",
                cluster=_cluster_word(str(settings.get("cluster"))),
                clusters=settings["clusters"],
            )
        )
    elif settings.get("cluster") not in (None, "none"):
        caveats.append(
            _(
                "Too few %(cluster)s clusters to allow for correlation within them: the "
                "intervals may be too narrow.",
                cluster=_cluster_word(str(settings.get("cluster"))),
            )
        )
    caveats.append(
        _(
            "Probabilities come from %(n)s bootstrap replicates and are never shown as 0 %% or "
            "100 %%.",
            n=settings.get("n_boot") or analysis.n_boot,
        )
    )
    return caveats


def _language() -> str:
    from flask_babel import get_locale

    locale = get_locale()
    return locale.language if locale is not None else "fi"


def _cluster_word(kind: str) -> str:
    return {
        "surgeon": _("surgeons"),
        "unit": _("units"),
        "clinician": _("clinicians"),
    }.get(kind, kind)


def _shares(shares: dict[str, float | None], labels: dict[str, str]) -> str:
    from flask_babel import format_percent

    parts = []
    for arm, share in shares.items():
        value = "<" if share is None else format_percent(share, "#,##0 %")
        parts.append(f"{labels.get(arm, arm)} {value}")
    return ", ".join(parts) or "–"


# --------------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------------


def _fmt(value: object, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{float(value):,.{digits}f}".replace(",", " ")  # type: ignore[arg-type]


def _row(label: str, entry: dict[str, Any] | None, digits: int = 2) -> list[str]:
    cells = [label]
    for kind in ("adjusted", "unadjusted"):
        est = (entry or {}).get(kind)
        if not est or est.get("estimate") is None:
            cells.append("–")
            continue
        low, high = est["ci95"]
        cells.append(f"{_fmt(est['estimate'], digits)} [{_fmt(low, digits)}, {_fmt(high, digits)}]")
    return cells


def estimates_text(data: dict[str, Any]) -> str:
    """The estimates as a readable table (same content as the JSON)."""
    lines = [
        _("Estimates of %(pilot)s, data as of %(as_of)s", pilot=data["pilot"], as_of=data["as_of"])
    ]
    comparison = data.get("comparison")
    if comparison:
        lines.append(
            _(
                "Comparison: %(other)s minus %(reference)s; primary: %(outcome)s at %(tp)s",
                other=comparison["other"],
                reference=comparison["reference"],
                outcome=data["primary"]["outcome"],
                tp=data["primary"]["time_point"],
            )
        )
    rows: list[list[str]] = []
    header = ["", _("adjusted [95% CI]"), _("unadjusted [95% CI]")]
    found = data.get("estimates", {})
    for key, digits in (("delta_effect", 2), ("delta_cost", 0), ("delta_qaly", 3)):
        if key in found:
            rows.append(_row(key, found[key], digits))
    for lam, entry in found.get("inmb", {}).items():
        rows.append(_row(f"inmb @ {lam}", entry, 0))
    for lam, entry in found.get("prob_cost_effective", {}).items():
        cells = [f"P(CE) @ {lam}"]
        for kind in ("adjusted", "unadjusted"):
            value = entry.get(kind)
            cells.append("–" if value is None else f"{100 * value:.1f} %")
        rows.append(cells)
    for service in data.get("services", []):
        low, high = service.get("ci95") or [None, None]
        rows.append(
            [
                f"{service['service_type']} / {service['outcome']}"
                + (" *" if service.get("primary") else ""),
                f"{_fmt(service.get('estimate'))} [{_fmt(low)}, {_fmt(high)}]",
                f"p {_fmt(service.get('p'), 3)}; p_adj {_fmt(service.get('p_adjusted'), 3)}",
            ]
        )
    if rows:
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            lines.append(
                "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            )
    missing = data.get("missing") or {}
    if missing:
        lines.append(_("Share missing per variable and arm:"))
        for variable, arms in missing.items():
            shares = ", ".join(
                f"{arm} {'–' if share is None else f'{100 * share:.0f} %'}"
                for arm, share in arms.items()
            )
            lines.append(f"  {variable}: {shares}")
    for scenario in data.get("sensitivity", []):
        inmb: dict[str, Any] = next(iter(scenario.get("inmb", {}).values()), {})
        lines.append(
            f"  {scenario['name']}: delta_effect {_fmt(scenario['delta_effect'].get('estimate'))}, "
            f"delta_cost {_fmt(scenario['delta_cost'].get('estimate'), 0)}, "
            f"inmb {_fmt(inmb.get('estimate'), 0)}"
        )
    for caveat in data.get("caveats", []):
        lines.append(f"* {caveat}")
    return "\n".join(lines) + "\n"
