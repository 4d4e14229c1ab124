"""Turn an instrument section into a WTForms form (a field registry, one builder per item type).

The form only collects and validates; the canonical stored value comes from
:func:`vaikuttavuus.domain.answers.canonical`, so a form, an import and a FHIR resource agree.
Hidden items (``enable_when`` not met given the submitted answers) are neither required nor
stored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask_babel import force_locale
from flask_babel import gettext as _
from markupsafe import Markup
from werkzeug.datastructures import MultiDict
from wtforms import (
    DateField,
    Field,
    Form,
    RadioField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)

# types-WTForms 3.2 lacks SelectChoice (WTForms 3.3 has it)
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]
from wtforms.validators import Optional as OptionalValidator
from wtforms.widgets import ListWidget

from vaikuttavuus.domain.answers import (
    DEFAULT_TEXT_LIMIT,
    MULTI_SEPARATOR,
    AnswerError,
    StoredAnswer,
    canonical,
    is_enabled,
)
from vaikuttavuus.domain.specs import InstrumentSpec, Item, Section
from vaikuttavuus.forms.widgets import FastCheckboxInput, FastRadioInput


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = FastCheckboxInput()


class OptionField(RadioField):
    """One answer among options (radio buttons)."""

    option_widget = FastRadioInput()


FieldBuilder = Callable[[InstrumentSpec, Item, str], Field]


def _choices(spec: InstrumentSpec, item: Item, language: str) -> list[SelectChoice]:
    return [
        SelectChoice(str(option.code), option.text.get(language))
        for option in spec.options_for(item)
    ]


def _single_choice(spec: InstrumentSpec, item: Item, language: str) -> Any:
    return OptionField(
        item.text.get(language),
        choices=_choices(spec, item, language),
        validators=[OptionalValidator()],
        validate_choice=False,
    )


def _multiple_choice(spec: InstrumentSpec, item: Item, language: str) -> Any:
    return MultiCheckboxField(
        item.text.get(language),
        choices=_choices(spec, item, language),
        validators=[OptionalValidator()],
        validate_choice=False,
    )


def _scale(spec: InstrumentSpec, item: Item, language: str) -> Any:
    return OptionField(
        item.text.get(language),
        choices=[SelectChoice(str(n), str(n)) for n in range(11)],
        validators=[OptionalValidator()],
        validate_choice=False,
    )


def _yes_no(spec: InstrumentSpec, item: Item, language: str) -> Any:
    return OptionField(
        item.text.get(language),
        choices=[SelectChoice("1", _("Yes")), SelectChoice("0", _("No"))],
        validators=[OptionalValidator()],
        validate_choice=False,
    )


def _number(spec: InstrumentSpec, item: Item, language: str) -> Any:
    # A text input with inputmode keeps the decimal comma usable on Finnish keyboards;
    # the value is parsed and range-checked by domain.answers.canonical.
    return StringField(item.text.get(language), validators=[OptionalValidator()])


def _date(spec: InstrumentSpec, item: Item, language: str) -> Any:
    return DateField(item.text.get(language), validators=[OptionalValidator()])


def _text(spec: InstrumentSpec, item: Item, language: str) -> Any:
    return TextAreaField(item.text.get(language), validators=[OptionalValidator()])


FIELD_BUILDERS: dict[str, FieldBuilder] = {
    "single_choice": _single_choice,
    "multiple_choice": _multiple_choice,
    "scale_0_10": _scale,
    "yes_no": _yes_no,
    "integer": _number,
    "decimal": _number,
    "date": _date,
    "text": _text,
}

ERROR_MESSAGES: dict[str, Callable[[str], str]] = {
    "required": lambda detail: _("Please answer this question."),
    "not_an_option": lambda detail: _("Choose one of the options."),
    "not_a_number": lambda detail: _("Enter a number, for example 12 or 7,5."),
    "not_an_integer": lambda detail: _("Enter a whole number."),
    "out_of_range": lambda detail: _("Enter a value between %(range)s.", range=detail),
    "not_a_date": lambda detail: _("Enter a date as dd.mm.yyyy."),
    "too_long": lambda detail: _(
        "The answer is too long (at most %(limit)s characters).", limit=detail
    ),
}


def error_message(code: str, detail: str = "") -> str:
    return ERROR_MESSAGES.get(code, ERROR_MESSAGES["not_an_option"])(detail)


class SectionForm(Form):
    """Base class; a subclass per section gets one field per item."""

    spec: InstrumentSpec
    section: Section

    def item_fields(self) -> list[tuple[Item, Field]]:
        return [(item, self[item.id]) for item in self.section.items]


def build_section_form(
    spec: InstrumentSpec,
    section: Section,
    language: str,
    formdata: MultiDict[str, Any] | None = None,
    stored: Mapping[str, str] | None = None,
) -> SectionForm:
    """A form for ``section``, bound to ``formdata`` or pre-filled from ``stored`` answers."""
    data = _initial_data(section, stored or {})
    return _section_form_class(spec, section, language)(formdata=formdata, data=data)


_FORM_CLASSES: dict[tuple[int, str, str], tuple[InstrumentSpec, type[SectionForm]]] = {}


def _section_form_class(spec: InstrumentSpec, section: Section, language: str) -> type[SectionForm]:
    """The form class of a section in a language, built once per process.

    Specs are immutable and kept for the life of the process (cached by content hash), so
    the spec object itself is the key; it is kept in the value so its id is never reused.
    """
    key = (id(spec), section.id, language)
    cached = _FORM_CLASSES.get(key)
    if cached is not None and cached[0] is spec:
        return cached[1]
    attributes: dict[str, Any] = {"spec": spec, "section": section}
    with force_locale(language):  # built-in labels (yes/no) in the questionnaire's language
        for item in section.items:
            attributes[item.id] = FIELD_BUILDERS[item.type](spec, item, language)
    form_class = type(f"Section_{spec.id}_{section.id}", (SectionForm,), attributes)
    _FORM_CLASSES[key] = (spec, form_class)
    return form_class


def _initial_data(section: Section, stored: Mapping[str, str]) -> dict[str, Any]:
    from datetime import date

    data: dict[str, Any] = {}
    for item in section.items:
        value = stored.get(item.id)
        if value is None:
            continue
        if item.type == "multiple_choice":
            data[item.id] = value.split(MULTI_SEPARATOR)
        elif item.type == "date":
            data[item.id] = date.fromisoformat(value)
        elif item.type == "decimal":
            data[item.id] = value.replace(".", ",")
        else:
            data[item.id] = value
    return data


def collect_answers(
    form: SectionForm,
    other_answers: Mapping[str, str],
    *,
    enforce_required: bool,
) -> tuple[dict[str, StoredAnswer | None], dict[str, str]]:
    """Canonical answers of the page and error messages per item id.

    ``other_answers`` are the stored answers of the rest of the instrument (for conditions
    that refer to earlier pages). Hidden items are stored as empty.
    """
    values: dict[str, StoredAnswer | None] = {}
    errors: dict[str, str] = {}
    visible_context = dict(other_answers)
    for item in form.section.items:
        raw = _raw_value(form[item.id], item)
        if not is_enabled(item, visible_context):
            values[item.id] = None
            continue
        try:
            answer = canonical(form.spec, item, raw)
        except AnswerError as error:
            errors[item.id] = error_message(error.code, error.detail)
            continue
        if answer is None and enforce_required and item.required:
            errors[item.id] = error_message("required")
        values[item.id] = answer
        if answer is not None:
            visible_context[item.id] = answer.value
        else:
            visible_context.pop(item.id, None)
    return values, errors


def _raw_value(field: Field, item: Item) -> Any:
    if item.type == "date":
        raw = field.raw_data[0] if field.raw_data else None
        return _parse_date_text(raw) if raw else None
    if item.type == "multiple_choice":
        return list(field.data or [])
    if item.type == "text":
        text = field.data or ""
        return text[: DEFAULT_TEXT_LIMIT * 4]
    return field.data


def _parse_date_text(raw: str) -> str:
    """Accept ISO (from the date picker) and Finnish d.m.yyyy typed by hand."""
    text = raw.strip()
    if "." in text:
        parts = text.split(".")
        if len(parts) == 3 and all(p.strip().isdigit() for p in parts):
            day, month, year = (int(p) for p in parts)
            return f"{year:04d}-{month:02d}-{day:02d}"
    return text


def describe_field(item: Item) -> Markup:
    """Accessible hint text for number fields (unit and range)."""
    parts = []
    if item.unit:
        parts.append(item.unit)
    bounds = item.value_range
    if bounds is not None and item.type in {"integer", "decimal"}:
        parts.append(f"{bounds[0]:g}–{bounds[1]:g}")
    return Markup(", ").join(parts)
