"""The notes of a result in the user's language (issue 17).

Analyses write :class:`~vaikuttavuus.domain.notes.Note`s: an English sentence for logs, the
command line and JSON, with a code and values. :func:`note_text` turns one into the sentence
the page shows, naming scores, time points, services and covariates as the pilot definition
does (through the cohort page's :class:`~vaikuttavuus.services.cohort_view.Labels`). A technical
detail (an exception's text) is kept as it came, in a ``<code>`` element after the sentence.
``tests/unit/test_user_visible_messages.py`` checks that every note code has a text here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from flask_babel import gettext as _
from flask_babel import ngettext
from markupsafe import Markup, escape

from vaikuttavuus.domain.notes import Note

if TYPE_CHECKING:
    from vaikuttavuus.services.cohort_view import Labels

Text = Callable[[Mapping[str, Any], "Labels"], str]


def _category(labels: Labels, code: object) -> str:
    name = labels.category(code, "service_type")
    return name if name != str(code) else labels.category(code, "provider_sector")


def _where(values: Mapping[str, Any], labels: Labels) -> dict[str, str]:
    return {
        "score": labels.score(values.get("score", "")),
        "time_point": labels.time_point(values.get("time_point", "")),
    }


NOTE_TEXTS: dict[str, Text] = {
    "missing_covariates": lambda v, labels: ngettext(
        "%(num)d person was left out because of missing background data.",
        "%(num)d persons were left out because of missing background data.",
        int(v["count"]),
    ),
    "missing_baseline": lambda v, labels: ngettext(
        "%(num)d person was left out because the baseline answer is missing.",
        "%(num)d persons were left out because the baseline answer is missing.",
        int(v["count"]),
    ),
    "covariate_is_baseline": lambda v, labels: _(
        "%(covariate)s is the baseline score, which is always taken into account.",
        covariate=labels.variable(v["covariate"]),
    ),
    "category_too_few": lambda v, labels: _(
        "%(category)s: too few clients received it, or too few did not, to estimate its "
        "effect.",
        category=labels.category(v["category"], v.get("by", "service_type")),
    ),
    "mixed_model_failed": lambda v, labels: _(
        "One way of fitting the mixed model failed; the next one was tried."
    ),
    "model_warning": lambda v, labels: _("Fitting the model gave a warning."),
    "not_imputable": lambda v, labels: _(
        "%(variable)s could not be imputed in every group (%(groups)s).",
        variable=labels.variable(v["variable"]),
        groups=", ".join(labels.arm(group) for group in v.get("groups", ())),
    ),
    "too_few_answers": lambda v, labels: _(
        "%(score)s, %(time_point)s: too few answers to analyse.", **_where(v, labels)
    ),
    "no_response_model": lambda v, labels: _(
        "%(score)s, %(time_point)s: who answered could not be modelled, so the persons who did "
        "not answer are left out.",
        **_where(v, labels),
    ),
    "no_guidance_figures": lambda v, labels: _(
        "%(score)s, %(time_point)s: only those who answered are analysed, so there are no "
        "client-guidance or cost figures.",
        **_where(v, labels),
    ),
    "propensity_not_converged": lambda v, labels: _(
        "%(service)s, %(time_point)s: the model of who received the service did not converge.",
        service=_category(labels, v["category"]),
        time_point=labels.time_point(v.get("time_point", "")),
    ),
    "costs_unavailable": lambda v, labels: _(
        "Costs cannot be computed: the costing data are incomplete."
    ),
    "comparison_needs_both_arms": lambda v, labels: _(
        "The comparison needs both arms: remove the arm filter."
    ),
    "comparison_needs_two_arms": lambda v, labels: _(
        "The comparison needs two arms, and this pilot has one."
    ),
    "arm_too_few": lambda v, labels: _("An arm has too few persons to show the comparison."),
    "cea_failed": lambda v, labels: _("The cost-effectiveness could not be computed."),
    "regression_missing_covariates": lambda v, labels: ngettext(
        "Net-benefit regression: %(num)d person without background data was left out.",
        "Net-benefit regression: %(num)d persons without background data were left out.",
        int(v["count"]),
    ),
    "regression_constant_covariate": lambda v, labels: _(
        "Net-benefit regression: %(covariate)s is the same for everyone and was left out.",
        covariate=labels.variable(v["covariate"]),
    ),
    "regression_failed": lambda v, labels: _("The net-benefit regression could not be fitted."),
    "regression_too_few": lambda v, labels: _(
        "Net-benefit regression: an arm has too few persons with every background variable "
        "to fit it."
    ),
    "mixed_model_unavailable": lambda v, labels: _("The mixed model could not be fitted."),
    "qaly_difference_failed": lambda v, labels: _(
        "The adjusted difference in QALYs could not be computed."
    ),
}


def note_text(note: str, labels: Labels) -> str:
    """``note`` as the page shows it: translated from its code (with its technical detail, if
    any, as ``<code>``); a plain text (already in the user's language) as it is."""
    if not isinstance(note, Note):
        return note
    text = NOTE_TEXTS.get(note.code)
    if text is None:  # a code without a text yet: the English sentence, marked as English
        return Markup('<span lang="en">{}</span>').format(str(note))
    sentence = text(note.values, labels)
    detail = note.values.get("detail")
    if not detail:
        return sentence
    return Markup("{} <code class=\"small\" translate=\"no\">{}</code>").format(
        escape(sentence), str(detail)
    )


def note_texts(notes: object, labels: Labels) -> list[str]:
    """Every note of a result, translated, each once."""
    return list(dict.fromkeys(note_text(note, labels) for note in notes or ()))  # type: ignore[attr-defined]
