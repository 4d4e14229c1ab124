"""What the pilot lead's cohort page shows: one section at a time, computed on demand."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext as _

from vaikuttavuus.services.analytics import EFFECTS, SERVICE_GROUPINGS, CohortAnalysis, mixed_model
from vaikuttavuus.services.cohort_view import (
    Labels,
    cea_view,
    cost_view,
    enrolment_view,
    funnel_view,
    mixed_view,
    outcome_view,
    quality_view,
    service_caveats,
    service_view,
    suppression_note,
)
from vaikuttavuus.services.methods import methods_table
from vaikuttavuus.services.note_texts import note_text
from vaikuttavuus.services.primary_view import primary_view

SECTIONS = ("overview", "quality", "outcomes", "costs", "cea", "funnel", "services", "methods")


@dataclass
class CohortPage:
    section: str
    sections: list[tuple[str, str]]
    labels: Labels
    content: dict[str, Any]
    note: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DrawnPage:
    """A section as drawn in one language, without the analysis it was drawn from: what an
    analysis snapshot keeps of its view (the charts are drawn once, by the build)."""

    section: str
    content: dict[str, Any]
    note: str
    options: dict[str, Any]

    @classmethod
    def of(cls, page: CohortPage) -> DrawnPage:
        return cls(section=page.section, content=page.content, note=page.note, options=page.options)

    def page(self, analysis: CohortAnalysis, language: str) -> CohortPage:
        """The page of ``analysis`` (the one it was drawn from, restored) in ``language`` (the
        one it was drawn in)."""
        return CohortPage(
            section=self.section,
            sections=section_labels(analysis),
            labels=Labels(analysis, language),
            content=self.content,
            note=self.note,
            options=self.options,
        )


def section_labels(analysis: CohortAnalysis) -> list[tuple[str, str]]:
    """The sections this pilot has, with their names."""
    names = {
        "overview": _("Enrolment and response"),
        "quality": _("Data quality"),
        "outcomes": _("Outcomes"),
        "costs": _("Costs"),
        "cea": _("Cost-effectiveness"),
        "funnel": _("Funnel plots"),
        "services": _("Services"),
        "methods": _("Methods (CHEERS 2022)"),
    }
    shown = []
    for code in SECTIONS:
        if code == "cea" and not analysis.has_procedures:
            continue
        if code == "services" and not analysis.has_services:
            continue
        shown.append((code, names[code]))
    return shown


def cohort_page(
    analysis: CohortAnalysis,
    language: str,
    *,
    section: str,
    effect: str | None = None,
    score: str | None = None,
    mixed: bool = False,
    sectors: bool = False,
) -> CohortPage:
    """The content of one section of the cohort page (unknown sections show the first)."""
    labels = Labels(analysis, language)
    sections = section_labels(analysis)
    if section not in {code for code, _name in sections}:
        section = sections[0][0]
    content: dict[str, Any] = {}
    options: dict[str, Any] = {}
    if section == "overview":
        content = enrolment_view(analysis, labels)
    elif section == "quality":
        content = quality_view(analysis, labels)
    elif section == "outcomes":
        content = outcome_view(analysis, labels)
    elif section == "costs":
        content = cost_view(analysis, labels)
    elif section == "cea":
        available = list(analysis.cost_effectiveness.effects)
        primary = "improvement" if "improvement" in available else None
        chosen = effect if effect in available else primary
        chosen = chosen or (available[0] if available else EFFECTS[0])
        options["effects"] = [(e, labels.effect(e)) for e in available]
        options["effect"] = chosen
        content = cea_view(analysis, labels, chosen)
        content["primary"] = primary_view(analysis, labels, chosen)
    elif section == "methods":
        content = {"methods": methods_table(analysis, labels)}
    elif section == "funnel":
        content = {"figures": funnel_view(analysis, labels)}
    elif section == "services":
        scores = analysis.service_scores
        chosen = score if score in scores else (scores[0] if scores else None)
        options["scores"] = [(s, labels.score(s)) for s in scores]
        options["score"] = chosen
        groupings = SERVICE_GROUPINGS if sectors else SERVICE_GROUPINGS[:1]
        options["sectors"] = sectors
        content = {
            "groupings": [service_view(analysis, labels, chosen, by) for by in groupings]
            if chosen
            else [],
            "caveats": service_caveats(analysis) if chosen else [],
            "mixed": None,
            "mixed_error": None,
            "mixed_cached": False,
        }
        if mixed and chosen:
            result, error, cached = mixed_model(analysis, chosen, "service_type")
            content["mixed_error"] = note_text(error, labels) if error is not None else None
            content["mixed_cached"] = cached
            if result is not None:
                content["mixed"] = mixed_view(analysis, labels, chosen, "service_type", result)
    return CohortPage(
        section=section,
        sections=sections,
        labels=labels,
        content=content,
        note=suppression_note(analysis.min_cell),
        options=options,
    )
