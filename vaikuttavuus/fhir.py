"""FHIR R4 conversion of instrument definitions and responses.

* :func:`questionnaire_to_fhir` — an :class:`~vaikuttavuus.domain.specs.InstrumentSpec` as a FHIR
  ``Questionnaire`` in one primary language, the other two languages as the standard
  ``translation`` extension on ``_text``/``_title``/``_display``.
* :func:`response_to_fhir` — one response as a ``QuestionnaireResponse`` whose ``questionnaire``
  is the canonical ``url|version`` and whose items are nested by section as in the Questionnaire.
* :func:`questionnaire_from_fhir` — a FHIR ``Questionnaire`` back into our YAML-able definition,
  validated by building an ``InstrumentSpec``.
* :func:`read_response_bundle` — a ``Bundle`` of ``QuestionnaireResponse``\\ s (as the export
  writes it, or from another system) as the rows of the ``responses`` import.

A response's time point, mode of answering and whether someone else answered for the person
travel in the extensions ``…/StructureDefinition/time-point`` (``valueCode``),
``…/response-mode`` (``valueCode``: web, phone, paper, imported) and ``…/response-proxy``
(``valueBoolean``) of the ``QuestionnaireResponse``. Its subject is ``Patient/<key>`` (the
export's person key) or an ``identifier``: the personal identity code (system
:data:`IDENTITY_CODE_SYSTEM`) or our pseudonym (system ``…/pseudonym``).

Validation: ``fhir.resources`` 8 models FHIR R5 by default and ships R4B and STU3 but not plain
R4, so every resource is validated with ``fhir.resources.R4B``. The converters only use elements
that exist unchanged in R4 (4.0.1) and R4B (4.3.0) for Questionnaire and QuestionnaireResponse,
so the output is valid R4. ``fhir.resources`` checks structure, datatypes and required elements
but not code values, so the status, item type, operator and enableBehavior codes are checked
here as well.

Mapping (``linkId`` = our item id; sections are ``group`` items whose ``linkId`` is the section
id):

==================  =====================================================================
our item type       FHIR item
==================  =====================================================================
single_choice       ``choice`` with ``answerOption.valueCoding`` (code = our code, display)
multiple_choice     ``choice`` with ``repeats: true``
integer             ``integer`` with the ``minValue``/``maxValue`` extensions
scale_0_10          ``integer`` 0–10, ``slider`` item control
decimal             ``decimal`` with ``minValue``/``maxValue``
yes_no              ``boolean``
date                ``date``
text                ``text`` (``maxLength``)
==================  =====================================================================

Bounds use the standard ``minValue``/``maxValue`` extensions (``answerConstraint`` is R5-only).
``status`` is ``active``, or ``draft`` for a definition whose texts are placeholders (EQ-5D-5L
before a licensee adds the official wording). Help texts become ``display`` children with the
``help`` item control (``linkId`` ``<item>.help``), scale end labels ``display`` children with
the ``lower``/``upper`` controls, and a section intro a ``display`` child ``<section>.intro``;
the dots keep these ``linkId``\\ s apart from our identifiers. What FHIR has no element for
(our item type, the shared answer set's name, the instrument kind, the source citation, the
recall period, placeholder texts) travels in extensions under :data:`CANONICAL_BASE`. Scoring
rules are not part of a Questionnaire.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
from pydantic import ValidationError

from vaikuttavuus.definitions import validate
from vaikuttavuus.domain.imports import ImportFileError, RawTable, RowError, mask_identity_codes
from vaikuttavuus.domain.specs import (
    DEFAULT_LANGUAGE,
    IDENTIFIER,
    LANGUAGES,
    AnswerOption,
    Code,
    EnableWhen,
    InstrumentSpec,
    Item,
    LocalizedText,
    Section,
)

if TYPE_CHECKING:
    from fhir.resources.R4B.questionnaire import Questionnaire
    from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

CANONICAL_BASE = "https://vaikuttavuus.fi/fhir"
"""Base of our canonical URLs; a deployment may pass its own ``base``."""

TRANSLATION = "http://hl7.org/fhir/StructureDefinition/translation"
MIN_VALUE = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE = "http://hl7.org/fhir/StructureDefinition/maxValue"
ITEM_CONTROL = "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl"
ITEM_CONTROL_SYSTEM = "http://hl7.org/fhir/questionnaire-item-control"
SLIDER_STEP = "http://hl7.org/fhir/StructureDefinition/questionnaire-sliderStepValue"
UNIT = "http://hl7.org/fhir/StructureDefinition/questionnaire-unit"

QUESTIONNAIRE_STATUSES = frozenset({"draft", "active", "retired", "unknown"})
IDENTITY_CODE_SYSTEM = "urn:oid:1.2.246.21"
"""The Finnish personal identity code (henkilötunnus) as a FHIR identifier system."""
IMPORTED_STATUSES = frozenset({"completed", "amended"})
"""QuestionnaireResponse statuses that an import takes."""
RESPONSE_STATUSES = frozenset(
    {"in-progress", "completed", "amended", "entered-in-error", "stopped"}
)
ITEM_TYPES = frozenset(
    {
        "group", "display", "boolean", "decimal", "integer", "date", "dateTime", "time",
        "string", "text", "url", "choice", "open-choice", "attachment", "reference", "quantity",
    }
)  # fmt: skip
OPERATORS = frozenset({"exists", "=", "!=", ">", "<", ">=", "<="})
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")

ResponseStatus = Literal["in-progress", "completed", "amended", "entered-in-error", "stopped"]

_FHIR_TYPES: dict[str, str] = {
    "single_choice": "choice",
    "multiple_choice": "choice",
    "integer": "integer",
    "scale_0_10": "integer",
    "decimal": "decimal",
    "yes_no": "boolean",
    "date": "date",
    "text": "text",
}


class FhirError(ValueError):
    """A resource that is not valid FHIR, or that cannot be converted."""


def extension_url(name: str, base: str = CANONICAL_BASE) -> str:
    """The URL of one of our extensions, e.g. ``…/StructureDefinition/item-type``."""
    return f"{base}/StructureDefinition/{name}"


def questionnaire_url(instrument_id: str, base: str = CANONICAL_BASE) -> str:
    """The canonical URL of an instrument (all its versions)."""
    return f"{base}/Questionnaire/{instrument_id}"


def canonical(spec: InstrumentSpec, base: str = CANONICAL_BASE) -> str:
    """``url|version``: the canonical reference to one version of an instrument."""
    return f"{questionnaire_url(spec.id, base)}|{spec.version}"


# --------------------------------------------------------------------------------------------
# Our definition → FHIR Questionnaire
# --------------------------------------------------------------------------------------------


def questionnaire_to_fhir(
    spec: InstrumentSpec, language: str = DEFAULT_LANGUAGE, *, base: str = CANONICAL_BASE
) -> dict[str, Any]:
    """``spec`` as a validated FHIR R4 ``Questionnaire`` (a JSON-ready dict).

    ``language`` is the primary language (``text``); the instrument's other languages are
    attached as ``translation`` extensions.
    """
    if language not in spec.languages:
        raise FhirError(f"language '{language}' is not one of {', '.join(spec.languages)}")
    writer = _QuestionnaireWriter(spec, language, base)
    resource = writer.questionnaire()
    validate_questionnaire(resource)
    return resource


class _QuestionnaireWriter:
    def __init__(self, spec: InstrumentSpec, language: str, base: str) -> None:
        self.spec = spec
        self.language = language
        self.base = base
        self.url = questionnaire_url(spec.id, base)

    def text(self, target: dict[str, Any], key: str, text: LocalizedText) -> None:
        """Set ``target[key]`` in the primary language and ``_key`` with the translations."""
        target[key] = text.get(self.language)
        translations = [
            {
                "url": TRANSLATION,
                "extension": [
                    {"url": "lang", "valueCode": other},
                    {"url": "content", "valueString": text.get(other)},
                ],
            }
            for other in self.spec.languages
            if other != self.language
        ]
        if translations:
            target[f"_{key}"] = {"extension": translations}

    def questionnaire(self) -> dict[str, Any]:
        spec = self.spec
        extensions: list[dict[str, Any]] = [
            {"url": extension_url("instrument-kind", self.base), "valueCode": spec.kind},
            {"url": extension_url("instrument-source", self.base), "valueString": spec.source},
        ]
        if spec.placeholder_texts:
            extensions.append(
                {"url": extension_url("placeholder-texts", self.base), "valueBoolean": True}
            )
        if spec.recall_period is not None:
            extensions.append(
                {
                    "url": extension_url("recall-period", self.base),
                    "extension": [
                        {"url": lang, "valueString": spec.recall_period.get(lang)}
                        for lang in spec.languages
                    ],
                }
            )
        resource: dict[str, Any] = {
            "resourceType": "Questionnaire",
            "id": _fhir_id(f"{spec.id}-{spec.version}"),
            "language": self.language,
            "extension": extensions,
            "url": self.url,
            "identifier": [{"system": f"{self.base}/instrument", "value": spec.id}],
            "version": spec.version,
            "name": "".join(part.capitalize() for part in spec.id.split("_")),
        }
        self.text(resource, "title", spec.title)
        resource["status"] = "draft" if spec.placeholder_texts else "active"
        resource["subjectType"] = ["Patient"]
        if spec.description is not None:
            self.text(resource, "description", spec.description)
        resource["copyright"] = spec.licence
        resource["item"] = [self.section(section) for section in spec.sections]
        return resource

    def section(self, section: Section) -> dict[str, Any]:
        group: dict[str, Any] = {"linkId": section.id}
        self.text(group, "text", section.title)
        group["type"] = "group"
        children: list[dict[str, Any]] = []
        if section.intro is not None:
            intro: dict[str, Any] = {"linkId": f"{section.id}.intro"}
            self.text(intro, "text", section.intro)
            intro["type"] = "display"
            children.append(intro)
        children.extend(self.item(item) for item in section.items)
        group["item"] = children
        return group

    def item(self, item: Item) -> dict[str, Any]:
        extensions: list[dict[str, Any]] = [
            {"url": extension_url("item-type", self.base), "valueCode": item.type}
        ]
        result: dict[str, Any] = {"linkId": item.id}
        self.text(result, "text", item.text)
        result["type"] = _FHIR_TYPES[item.type]
        if item.enable_when:
            result["enableWhen"] = [self.condition(condition) for condition in item.enable_when]
            if len(item.enable_when) > 1:
                result["enableBehavior"] = item.enable_behavior
        result["required"] = item.required
        children: list[dict[str, Any]] = []
        if item.type in {"single_choice", "multiple_choice"}:
            if item.type == "multiple_choice":
                result["repeats"] = True
            extensions.append(
                _item_control("check-box" if item.type == "multiple_choice" else "radio-button")
            )
            if item.answer_set is not None:
                extensions.append(
                    {"url": extension_url("answer-set", self.base), "valueCode": item.answer_set}
                )
            result["answerOption"] = [
                {"valueCoding": self.coding(item, option)} for option in self.spec.options_for(item)
            ]
        elif item.type in {"integer", "scale_0_10", "decimal"}:
            low, high = item.value_range or (None, None)
            value_key = "valueDecimal" if item.type == "decimal" else "valueInteger"
            cast = float if item.type == "decimal" else int
            if low is not None:
                extensions.append({"url": MIN_VALUE, value_key: cast(low)})
            if high is not None:
                extensions.append({"url": MAX_VALUE, value_key: cast(high)})
            if item.type == "scale_0_10":
                extensions.append(_item_control("slider"))
                extensions.append({"url": SLIDER_STEP, "valueInteger": 1})
            if item.unit:
                extensions.append({"url": UNIT, "valueCoding": {"display": item.unit}})
        elif item.type == "text" and item.max_length is not None:
            result["maxLength"] = item.max_length
        for suffix, control, label in (
            ("lower", "lower", item.min_label),
            ("upper", "upper", item.max_label),
            ("help", "help", item.help),
        ):
            if label is not None:
                child: dict[str, Any] = {
                    "extension": [_item_control(control)],
                    "linkId": f"{item.id}.{suffix}",
                }
                self.text(child, "text", label)
                child["type"] = "display"
                children.append(child)
        if children:
            result["item"] = children
        return {"extension": extensions, **result}

    def coding(self, item: Item, option: AnswerOption) -> dict[str, Any]:
        coding: dict[str, Any] = {
            "system": f"{self.url}/answers/{item.answer_set or item.id}",
            "code": _code_text(option.code),
        }
        self.text(coding, "display", option.text)
        return coding

    def condition(self, condition: EnableWhen) -> dict[str, Any]:
        source = self.spec.item(condition.item)
        result: dict[str, Any] = {"question": condition.item, "operator": condition.operator}
        value = condition.value
        if condition.operator == "exists":
            result["answerBoolean"] = value if isinstance(value, bool) else True
        elif source.type in {"single_choice", "multiple_choice"}:
            code = _code_text(value if not isinstance(value, float) else _whole(value))
            result["answerCoding"] = {
                "system": f"{self.url}/answers/{source.answer_set or source.id}",
                "code": code,
            }
        elif source.type in {"integer", "scale_0_10"}:
            result["answerInteger"] = int(float(str(value)))
        elif source.type == "decimal":
            result["answerDecimal"] = float(str(value))
        elif source.type == "yes_no":
            result["answerBoolean"] = _boolean(value, condition.item)
        elif source.type == "date":
            result["answerDate"] = str(value)
        else:
            result["answerString"] = str(value)
        return result


def _item_control(code: str) -> dict[str, Any]:
    return {
        "url": ITEM_CONTROL,
        "valueCodeableConcept": {"coding": [{"system": ITEM_CONTROL_SYSTEM, "code": code}]},
    }


# --------------------------------------------------------------------------------------------
# One response → FHIR QuestionnaireResponse
# --------------------------------------------------------------------------------------------


def response_to_fhir(
    spec: InstrumentSpec,
    *,
    response_id: str | int,
    subject_reference: str,
    authored: datetime | date | str,
    status: ResponseStatus,
    language: str,
    answers: Mapping[str, object],
    base: str = CANONICAL_BASE,
    time_point: str | None = None,
    mode: str | None = None,
    proxy: bool | None = None,
) -> dict[str, Any]:
    """One response as a validated FHIR R4 ``QuestionnaireResponse`` (a JSON-ready dict).

    ``time_point``, ``mode`` and ``proxy``, when given, go into our extensions (see the
    module docstring).

    ``answers`` maps item ids to answers: a choice code (or, for a multiple-choice item, a list
    of codes), a number, a bool for yes/no, a ``date`` or ISO date text, or text. ``None`` and
    blank text are unanswered and left out, as are sections without answers. A naive
    ``authored`` datetime is taken to be UTC. Raises :class:`FhirError` for an unknown item or an
    answer the item does not accept.
    """
    if language not in spec.languages:
        raise FhirError(f"language '{language}' is not one of {', '.join(spec.languages)}")
    if status not in RESPONSE_STATUSES:
        raise FhirError(f"unknown QuestionnaireResponse status '{status}'")
    unknown = [key for key in answers if key not in spec.item_ids]
    if unknown:
        raise FhirError(f"{spec.id} has no item(s) {', '.join(map(repr, unknown))}")
    url = questionnaire_url(spec.id, base)
    groups: list[dict[str, Any]] = []
    for section in spec.sections:
        entries: list[dict[str, Any]] = []
        for item in section.items:
            values = _answers(spec, item, answers.get(item.id), language, url)
            if values:
                entries.append(
                    {"linkId": item.id, "text": item.text.get(language), "answer": values}
                )
        if entries:
            groups.append(
                {"linkId": section.id, "text": section.title.get(language), "item": entries}
            )
    identifier = str(response_id)
    if not FHIR_ID.match(identifier):
        raise FhirError(
            f"response id '{identifier}' is not a FHIR id (letters, digits, '-' and '.')"
        )
    resource: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "id": identifier,
        "language": language,
    }
    extensions: list[dict[str, Any]] = []
    if time_point is not None:
        extensions.append({"url": extension_url("time-point", base), "valueCode": time_point})
    if mode is not None:
        extensions.append({"url": extension_url("response-mode", base), "valueCode": mode})
    if proxy is not None:
        extensions.append(
            {"url": extension_url("response-proxy", base), "valueBoolean": bool(proxy)}
        )
    if extensions:
        resource["extension"] = extensions
    resource |= {
        "questionnaire": canonical(spec, base),
        "status": status,
        "subject": {"reference": subject_reference},
        "authored": _date_time(authored),
    }
    if groups:
        resource["item"] = groups
    validate_response(resource)
    return resource


def _answers(
    spec: InstrumentSpec, item: Item, value: object, language: str, url: str
) -> list[dict[str, Any]]:
    if _blank(value):
        return []
    if item.type in {"single_choice", "multiple_choice"}:
        values: Iterable[object]
        if item.type == "multiple_choice" and isinstance(value, list | tuple | set | frozenset):
            values = value
        else:
            values = [value]
        if item.type == "single_choice" and isinstance(value, list | tuple | set | frozenset):
            raise FhirError(f"item '{item.id}' takes one answer, not a list")
        options = {_code_text(option.code): option for option in spec.options_for(item)}
        result = []
        for one in values:
            key = _code_text(_whole(one) if isinstance(one, float) else one)
            if key not in options:
                raise FhirError(
                    f"item '{item.id}': {one!r} is not one of its codes ({', '.join(options)})"
                )
            result.append(
                {
                    "valueCoding": {
                        "system": f"{url}/answers/{item.answer_set or item.id}",
                        "code": key,
                        "display": options[key].text.get(language),
                    }
                }
            )
        return result
    if item.type in {"integer", "scale_0_10", "decimal"}:
        number = _number(value, item.id)
        low, high = item.value_range or (None, None)
        if (low is not None and number < low) or (high is not None and number > high):
            raise FhirError(f"item '{item.id}': {value!r} is outside {low:g}–{high:g}")
        if item.type == "decimal":
            return [{"valueDecimal": number}]
        if not number.is_integer():
            raise FhirError(f"item '{item.id}': {value!r} is not a whole number")
        return [{"valueInteger": int(number)}]
    if item.type == "yes_no":
        return [{"valueBoolean": _boolean(value, item.id)}]
    if item.type == "date":
        if isinstance(value, datetime):
            return [{"valueDate": value.date().isoformat()}]
        if isinstance(value, date):
            return [{"valueDate": value.isoformat()}]
        try:
            return [{"valueDate": date.fromisoformat(str(value).strip()).isoformat()}]
        except ValueError as error:
            raise FhirError(f"item '{item.id}': {value!r} is not an ISO date") from error
    text = str(value)
    if item.max_length is not None and len(text) > item.max_length:
        raise FhirError(f"item '{item.id}': the text is longer than {item.max_length} characters")
    return [{"valueString": text}]


# --------------------------------------------------------------------------------------------
# FHIR Bundle of QuestionnaireResponses → rows of the responses import
# --------------------------------------------------------------------------------------------

_BUNDLE_COLUMNS = (
    "identity_code",
    "pseudonym",
    "time_point",
    "instrument",
    "instrument_version",
    "completed_on",
    "mode",
    "proxy",
    "language",
)


def is_json(data: bytes) -> bool:
    """Whether ``data`` looks like JSON (an object), not like CSV or XLSX."""
    return data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{")


def read_response_bundle(
    data: bytes,
    *,
    item_ids: Collection[str],
    resolve_subject: Callable[[str], str | None] = lambda _key: None,
    base: str = CANONICAL_BASE,
) -> RawTable:
    r"""A FHIR R4 ``Bundle`` (JSON) of ``QuestionnaireResponse``\ s as the rows of the
    ``responses`` import: one row per entry, the "line" being the entry's position (1 = the
    first entry), with the fixed columns and one column per ``linkId`` in ``item_ids``.

    ``resolve_subject(key)`` gives the pseudonym of a ``Patient/<key>`` subject (the export's
    person key), or ``None``. Raises :class:`~vaikuttavuus.domain.imports.ImportFileError`
    (``not_fhir``) for a file that is not a Bundle and (``no_rows``) for one without entries.
    An entry that is not a completed ``QuestionnaireResponse``, a subject that cannot be
    found and an unknown ``linkId`` are row errors (``fhir_entry``, ``unknown_person``) in
    :attr:`RawTable.problems`. The resources are read as they are, not validated one by one
    (a million answers would take minutes); every value is checked by the import.
    """
    try:
        bundle = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ImportFileError([RowError(0, None, None, "not_fhir")]) from error
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise ImportFileError([RowError(0, None, None, "not_fhir")])
    entries = bundle.get("entry") or []
    if not isinstance(entries, list) or not entries:
        raise ImportFileError([RowError(0, None, None, "no_rows")])
    known = set(item_ids)
    rows: dict[int, dict[str, str]] = {}
    problems: list[RowError] = []
    for number, entry in enumerate(entries, start=1):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        if not isinstance(resource, dict) or kind != "QuestionnaireResponse":
            problems.append(
                RowError(
                    number, "resourceType", _shown_text(kind), "fhir_entry", {"reason": "resource"}
                )
            )
            continue
        status = resource.get("status")
        if status not in IMPORTED_STATUSES:
            problems.append(
                RowError(number, "status", _shown_text(status), "fhir_entry", {"reason": "status"})
            )
            continue
        row = dict.fromkeys(_BUNDLE_COLUMNS, "")
        _subject(resource.get("subject"), row, number, problems, resolve_subject)
        reference = str(resource.get("questionnaire") or "")
        url, _bar, version = reference.partition("|")
        row["instrument"] = url.rstrip("/").rsplit("/", 1)[-1] if url else ""
        row["instrument_version"] = version
        row["completed_on"] = _authored_day(resource.get("authored"))
        language = str(resource.get("language") or "")
        row["language"] = language.split("-", 1)[0].lower()
        for extension in resource.get("extension") or []:
            if not isinstance(extension, dict):
                continue
            name = str(extension.get("url", ""))
            if name == extension_url("time-point", base):
                row["time_point"] = str(extension.get("valueCode") or "")
            elif name == extension_url("response-mode", base):
                row["mode"] = str(extension.get("valueCode") or "")
            elif name == extension_url("response-proxy", base):
                value = extension.get("valueBoolean")
                row["proxy"] = "" if value is None else ("yes" if value else "no")
        for link_id, values in _answered_items(resource.get("item")):
            if link_id not in known:
                problems.append(
                    RowError(
                        number, "item", _shown_text(link_id), "fhir_entry", {"reason": "link_id"}
                    )
                )
                continue
            row[link_id] = (
                ";".join(values)
                if link_id not in row or not row[link_id]
                else (row[link_id] + ";" + ";".join(values))
            )
        rows[number] = row
    if not rows:
        raise ImportFileError(problems)
    columns = list(_BUNDLE_COLUMNS)
    for row in rows.values():
        columns += [name for name in row if name not in columns]
    frame = pd.DataFrame(
        [[row.get(name, "") for name in columns] for row in rows.values()],
        index=pd.Index(list(rows), dtype="int64"),
        columns=pd.Index(columns, dtype=object),
        dtype=object,
    )
    return RawTable(frame, problems=tuple(problems))


def _shown_text(value: object) -> str | None:
    if value is None:
        return None
    text = mask_identity_codes(str(value))
    return text if len(text) <= 100 else text[:99] + "…"


def _subject(
    subject: object,
    row: dict[str, str],
    number: int,
    problems: list[RowError],
    resolve_subject: Callable[[str], str | None],
) -> None:
    """The person: an identity code or pseudonym identifier, or ``Patient/<key>``."""
    if not isinstance(subject, dict):
        problems.append(RowError(number, "subject", None, "unknown_person", {"reason": "subject"}))
        return
    identifier = subject.get("identifier")
    if isinstance(identifier, dict) and identifier.get("value"):
        system = str(identifier.get("system") or "")
        value = str(identifier["value"])
        if system == IDENTITY_CODE_SYSTEM:
            row["identity_code"] = value
        else:
            row["pseudonym"] = value
        return
    reference = str(subject.get("reference") or "")
    key = reference.removeprefix("Patient/")
    pseudonym = resolve_subject(key) if key and key != reference else None
    if pseudonym is None:
        problems.append(
            RowError(
                number,
                "subject",
                _shown_text(reference or None),
                "unknown_person",
                {"reason": "subject"},
            )
        )
        return
    row["pseudonym"] = pseudonym


def _authored_day(value: object) -> str:
    """``authored`` as the day (UTC) the answers were given; the text itself when it is not a
    date or a time (the import then says it is not a date)."""
    text = str(value or "").strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    if len(text) <= 10:
        return moment.date().isoformat()
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.date().isoformat()


def _answer_text(answer: Mapping[str, Any]) -> str | None:
    if "valueCoding" in answer:
        coding = answer["valueCoding"]
        return str(coding.get("code")) if isinstance(coding, dict) else None
    if "valueBoolean" in answer:
        return "1" if answer["valueBoolean"] else "0"
    for key in ("valueInteger", "valueDecimal", "valueDate", "valueString"):
        if key in answer and answer[key] is not None:
            value = answer[key]
            if isinstance(value, float) and value.is_integer() and key == "valueDecimal":
                return str(int(value))
            return str(value)
    if "valueDateTime" in answer:
        return str(answer["valueDateTime"])[:10]
    return None


def _answered_items(items: object) -> Iterator[tuple[str, list[str]]]:
    """(linkId, answers as text) of every answered item, groups and nested items walked."""
    if not isinstance(items, list):
        return
    for item in items:
        if not isinstance(item, dict):
            continue
        answers = item.get("answer")
        if isinstance(answers, list) and answers:
            texts = [
                text
                for answer in answers
                if isinstance(answer, dict) and (text := _answer_text(answer)) is not None
            ]
            if texts:
                yield str(item.get("linkId", "")), texts
            for answer in answers:
                if isinstance(answer, dict):
                    yield from _answered_items(answer.get("item"))
        yield from _answered_items(item.get("item"))


# --------------------------------------------------------------------------------------------
# FHIR Questionnaire → our definition
# --------------------------------------------------------------------------------------------


def questionnaire_from_fhir(
    resource: Mapping[str, Any], *, base: str = CANONICAL_BASE
) -> dict[str, Any]:
    """A FHIR R4 ``Questionnaire`` as our YAML-able instrument definition.

    The resource is validated first (:class:`FhirError` if invalid) and the result is validated
    by building an ``InstrumentSpec`` (:class:`~vaikuttavuus.definitions.DefinitionError` if it
    cannot be expressed). Texts missing in a language fall back to the primary language
    (``language`` of the resource, else Finnish); every such fallback, and anything else the
    import had to assume or leave out, is listed in the definition's ``notes``.
    """
    validate_questionnaire(resource)
    reader = _QuestionnaireReader(dict(resource), base)
    definition = reader.definition()
    validate(InstrumentSpec, definition, f"FHIR Questionnaire {reader.reference}")
    return definition


class _QuestionnaireReader:
    def __init__(self, resource: dict[str, Any], base: str) -> None:
        self.resource = resource
        self.base = base
        self.notes: list[str] = []
        self.missing_texts: dict[str, list[str]] = {lang: [] for lang in LANGUAGES}
        self.ids: dict[str, str] = {}
        self.answer_set_names: dict[str, str] = {}
        self.reference = str(resource.get("url") or resource.get("id") or "(no url)")
        declared = str(resource.get("language") or "")
        self.primary = declared.split("-", maxsplit=1)[0].lower() or DEFAULT_LANGUAGE
        if self.primary not in LANGUAGES:
            self.notes.append(
                f"the Questionnaire's language '{declared}' is not fi, sv or en; its texts are "
                f"used for every language"
            )

    # -- texts ---------------------------------------------------------------------------------

    def texts(
        self, element: Mapping[str, Any], key: str, where: str, default: str | None = None
    ) -> dict[str, str] | None:
        translations: dict[str, str] = {}
        for extension in (element.get(f"_{key}") or {}).get("extension", []):
            if extension.get("url") != TRANSLATION:
                continue
            parts = {part.get("url"): part for part in extension.get("extension", [])}
            lang = str(parts.get("lang", {}).get("valueCode", "")).split("-", maxsplit=1)[0].lower()
            content = parts.get("content", {}).get("valueString")
            if lang and content:
                translations.setdefault(lang, content)
        primary = element.get(key) or translations.get(self.primary)
        if not primary:
            if default is None:
                return None
            primary = default
            self.notes.append(f"{where}: no text in the Questionnaire; '{primary}' was used")
        result: dict[str, str] = {}
        for lang in LANGUAGES:
            if lang == self.primary:
                result[lang] = str(primary)
            elif lang in translations:
                result[lang] = translations[lang]
            else:
                result[lang] = str(primary)
                if self.primary in LANGUAGES:
                    self.missing_texts[lang].append(where)
        return result

    # -- identifiers ------------------------------------------------------------------------

    def identifier(self, link_id: str) -> str:
        if link_id in self.ids:
            return self.ids[link_id]
        candidate = link_id
        if not re.match(IDENTIFIER, candidate):
            candidate = re.sub(r"[^a-z0-9_]+", "_", link_id.lower()).strip("_") or "item"
            if not candidate[0].isalpha():
                candidate = f"q_{candidate}"
        taken = set(self.ids.values())
        unique, counter = candidate, 2
        while unique in taken:
            unique, counter = f"{candidate}_{counter}", counter + 1
        if unique != link_id:
            self.notes.append(
                f"linkId '{link_id}' is not one of our identifiers; it became '{unique}'"
            )
        self.ids[link_id] = unique
        return unique

    # -- the definition ---------------------------------------------------------------------

    def definition(self) -> dict[str, Any]:
        resource = self.resource
        extensions = _extensions(resource)
        instrument_id = self.instrument_id()
        version = resource.get("version")
        if not version:
            version = "1"
            self.notes.append("the Questionnaire has no version; '1' was used")
        kind = extensions.get(extension_url("instrument-kind", self.base), {}).get("valueCode")
        if kind not in {"prom", "prem"}:
            kind = "prom"
            self.notes.append("the instrument kind (prom/prem) is not recorded; 'prom' was used")
        title = self.texts(
            resource, "title", "title", default=resource.get("name") or instrument_id
        )
        licence = resource.get("copyright")
        if not licence:
            licence = "Not stated in the FHIR Questionnaire; check the terms of use."
            self.notes.append("the Questionnaire has no copyright statement; record the licence")
        source_ext = extensions.get(extension_url("instrument-source", self.base), {})
        source = source_ext.get("valueString")
        if not source:
            publisher = resource.get("publisher")
            source = f"FHIR Questionnaire {self.reference}|{version}" + (
                f" ({publisher})" if publisher else ""
            )
            self.notes.append("no source citation in the Questionnaire; add the citation")
        definition: dict[str, Any] = {
            "id": instrument_id,
            "version": str(version),
            "kind": kind,
            "title": title,
        }
        description = (
            self.texts(resource, "description", "description")
            if resource.get("description")
            else None
        )
        if description is not None:
            definition["description"] = description
        definition["licence"] = licence
        definition["source"] = source
        placeholder = extensions.get(extension_url("placeholder-texts", self.base), {})
        if placeholder.get("valueBoolean"):
            definition["placeholder_texts"] = True
        recall = extensions.get(extension_url("recall-period", self.base))
        if recall is not None:
            parts = {
                part.get("url"): part.get("valueString") for part in recall.get("extension", [])
            }
            if all(parts.get(lang) for lang in LANGUAGES):
                definition["recall_period"] = {lang: parts[lang] for lang in LANGUAGES}
        sections = self.sections(resource.get("item", []), title or {})
        answer_sets = self.collect_answer_sets(sections)
        if answer_sets:
            definition["answer_sets"] = answer_sets
        definition["sections"] = sections
        self.notes.append(
            "scoring rules are not part of a FHIR Questionnaire; add 'scores' by hand if needed"
        )
        for lang, places in self.missing_texts.items():
            if places:
                shown = ", ".join(places[:5]) + (
                    f" and {len(places) - 5} more" if len(places) > 5 else ""
                )
                self.notes.append(
                    f"no '{lang}' text for {len(places)} text(s) ({shown}); the "
                    f"'{self.primary}' text was used instead"
                )
        definition["notes"] = self.notes
        return definition

    def instrument_id(self) -> str:
        resource = self.resource
        for identifier in resource.get("identifier", []):
            if identifier.get("system") == f"{self.base}/instrument" and identifier.get("value"):
                return str(identifier["value"])
        for candidate in (
            resource.get("name"),
            str(resource.get("url", "")).rsplit("/", 1)[-1],
            resource.get("id"),
        ):
            if candidate:
                snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", str(candidate)).lower()
                snake = re.sub(r"[^a-z0-9_]+", "_", snake).strip("_")
                if snake and not snake[0].isalpha():
                    snake = f"q_{snake}"
                if snake:
                    self.notes.append(f"the instrument id '{snake}' was derived from '{candidate}'")
                    return snake
        self.notes.append("the Questionnaire names no id; 'imported' was used")
        return "imported"

    def sections(
        self, top_items: list[dict[str, Any]], title: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        sections: list[dict[str, Any]] = []
        loose: list[dict[str, Any]] = []

        def flush_loose() -> None:
            if not loose:
                return
            section_id = self.identifier(
                "questions" if not sections else f"questions_{len(sections) + 1}"
            )
            self.notes.append(f"questions outside any group were put in a section '{section_id}'")
            sections.append({"id": section_id, "title": dict(title), "items": list(loose)})
            loose.clear()

        for entry in top_items:
            kind = entry.get("type")
            if kind == "group":
                flush_loose()
                sections.append(self.section(entry))
            elif kind == "display":
                self.notes.append(f"display item '{entry.get('linkId')}' was left out")
            else:
                loose.append(self.item(entry))
        flush_loose()
        return sections

    def section(self, group: dict[str, Any]) -> dict[str, Any]:
        section_id = self.identifier(str(group["linkId"]))
        title = self.texts(group, "text", f"section '{section_id}'", default=section_id)
        section: dict[str, Any] = {"id": section_id, "title": title}
        items: list[dict[str, Any]] = []
        for child in self.flatten(group.get("item", []), section_id):
            if child.get("type") == "display":
                link_id = str(child.get("linkId"))
                if (
                    "intro" not in section
                    and not items
                    and (link_id.endswith(".intro") or _control(child) is None)
                ):
                    section["intro"] = self.texts(child, "text", f"section '{section_id}' intro")
                else:
                    self.notes.append(f"display item '{link_id}' was left out")
                continue
            items.append(self.item(child))
        section["items"] = items
        return section

    def flatten(self, children: list[dict[str, Any]], section_id: str) -> list[dict[str, Any]]:
        flat: list[dict[str, Any]] = []
        for child in children:
            if child.get("type") == "group":
                self.notes.append(
                    f"nested group '{child.get('linkId')}' was flattened into section "
                    f"'{section_id}'"
                )
                flat.extend(self.flatten(child.get("item", []), section_id))
            else:
                flat.append(child)
        return flat

    def item(self, entry: dict[str, Any]) -> dict[str, Any]:
        link_id = str(entry["linkId"])
        item_id = self.identifier(link_id)
        where = f"item '{item_id}'"
        extensions = _extensions(entry)
        fhir_type = str(entry.get("type"))
        our_type = extensions.get(extension_url("item-type", self.base), {}).get("valueCode")
        if our_type not in _FHIR_TYPES or _FHIR_TYPES[our_type] != fhir_type:
            our_type = self.item_type(entry, where)
        result: dict[str, Any] = {"id": item_id, "type": our_type}
        result["text"] = self.texts(entry, "text", where, default=item_id)
        if not entry.get("required", False):
            result["required"] = False
        for child in entry.get("item", []):
            control = _control(child)
            child_id = str(child.get("linkId"))
            if child.get("type") != "display":
                raise FhirError(f"{where}: questions nested under a question are not supported")
            if control == "help" or (control is None and child_id.endswith(".help")):
                result["help"] = self.texts(child, "text", f"{where} help")
            elif control == "lower" or child_id.endswith(".lower"):
                result["min_label"] = self.texts(child, "text", f"{where} lower label")
            elif control == "upper" or child_id.endswith(".upper"):
                result["max_label"] = self.texts(child, "text", f"{where} upper label")
            else:
                self.notes.append(f"display item '{child_id}' under {where} was left out")
        if our_type in {"single_choice", "multiple_choice"}:
            if entry.get("answerValueSet"):
                raise FhirError(
                    f"{where} uses answerValueSet '{entry['answerValueSet']}'; the import needs "
                    "the options inline (answerOption)"
                )
            result["options"] = [
                self.option(option, where) for option in entry.get("answerOption", [])
            ]
            if not result["options"]:
                raise FhirError(f"{where} is a choice question without answerOption")
            name = extensions.get(extension_url("answer-set", self.base), {}).get("valueCode")
            if name:
                self.answer_set_names[item_id] = str(name)
        if our_type in {"integer", "decimal", "scale_0_10"}:
            low = _number_value(extensions.get(MIN_VALUE))
            high = _number_value(extensions.get(MAX_VALUE))
            if our_type != "scale_0_10":
                if low is None or high is None:
                    raise FhirError(
                        f"{where}: an {our_type} question needs the minValue and maxValue "
                        "extensions"
                    )
                result["min"] = low
                result["max"] = high
            unit = extensions.get(UNIT, {}).get("valueCoding", {})
            if unit.get("code") or unit.get("display"):
                result["unit"] = unit.get("code") or unit.get("display")
        if our_type == "text" and entry.get("maxLength"):
            result["max_length"] = int(entry["maxLength"])
        conditions = [self.condition(condition, where) for condition in entry.get("enableWhen", [])]
        if conditions:
            result["enable_when"] = conditions
            behavior = entry.get("enableBehavior")
            if behavior:
                result["enable_behavior"] = behavior
        return result

    def item_type(self, entry: Mapping[str, Any], where: str) -> str:
        fhir_type = entry.get("type")
        if fhir_type in {"choice", "open-choice"}:
            if fhir_type == "open-choice":
                self.notes.append(f"{where}: free-text answers of an open-choice are not kept")
            return "multiple_choice" if entry.get("repeats") else "single_choice"
        if fhir_type in {"integer", "decimal", "date", "text"}:
            return str(fhir_type)
        if fhir_type == "boolean":
            return "yes_no"
        if fhir_type == "string":
            return "text"
        if fhir_type == "dateTime":
            self.notes.append(f"{where}: a dateTime question was imported as a date")
            return "date"
        raise FhirError(f"{where}: FHIR item type '{fhir_type}' is not supported")

    def option(self, option: Mapping[str, Any], where: str) -> dict[str, Any]:
        if "valueCoding" in option:
            coding = option["valueCoding"]
            code = _code_value(str(coding.get("code", "")))
            if code == "":
                raise FhirError(f"{where}: an answerOption coding has no code")
            text = self.texts(coding, "display", f"{where} option {code}", default=str(code))
            return {"code": code, "text": text}
        for key in ("valueInteger", "valueString"):
            if key in option:
                value = option[key]
                self.notes.append(f"{where}: option {value!r} has no display text")
                return {"code": value, "text": dict.fromkeys(LANGUAGES, str(value))}
        raise FhirError(f"{where}: answerOption {sorted(option)} is not supported")

    def condition(self, condition: Mapping[str, Any], where: str) -> dict[str, Any]:
        question = str(condition.get("question"))
        if question not in self.ids:
            raise FhirError(f"{where}: enableWhen refers to '{question}', not an earlier question")
        result: dict[str, Any] = {"item": self.ids[question], "operator": condition["operator"]}
        if "answerCoding" in condition:
            result["value"] = _code_value(str(condition["answerCoding"].get("code", "")))
        else:
            for key, value in condition.items():
                if key.startswith("answer"):
                    result["value"] = value
                    break
        if result["operator"] == "exists" and result.get("value") is True:
            result.pop("value")
        return result

    def collect_answer_sets(self, sections: list[dict[str, Any]]) -> dict[str, Any]:
        """Turn identical inline options shared under one answer-set name into ``answer_sets``."""
        by_name: dict[str, list[dict[str, Any]]] = {}
        for section in sections:
            for item in section["items"]:
                name = self.answer_set_names.get(item["id"])
                if name and re.match(IDENTIFIER, name):
                    by_name.setdefault(name, []).append(item)
        answer_sets: dict[str, Any] = {}
        for name, items in by_name.items():
            first = items[0]["options"]
            if all(item["options"] == first for item in items):
                answer_sets[name] = first
                for item in items:
                    del item["options"]
                    item["answer_set"] = name
        return answer_sets


def _extensions(element: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """An element's extensions by URL (the first of each)."""
    found: dict[str, dict[str, Any]] = {}
    for extension in element.get("extension", []) or []:
        found.setdefault(str(extension.get("url")), extension)
    return found


def _control(element: Mapping[str, Any]) -> str | None:
    extension = _extensions(element).get(ITEM_CONTROL)
    if extension is None:
        return None
    for coding in extension.get("valueCodeableConcept", {}).get("coding", []):
        if coding.get("code"):
            return str(coding["code"])
    return None


def _number_value(extension: Mapping[str, Any] | None) -> int | float | None:
    if extension is None:
        return None
    for key in ("valueInteger", "valueDecimal"):
        if key in extension:
            value = extension[key]
            return value if isinstance(value, int | float) else None
    return None


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def validate_questionnaire(resource: Mapping[str, Any]) -> None:
    """Raise :class:`FhirError` unless ``resource`` is a valid FHIR R4 Questionnaire."""
    from fhir.resources.R4B.questionnaire import Questionnaire

    if resource.get("resourceType") != "Questionnaire":
        raise FhirError(f"expected a Questionnaire, not {resource.get('resourceType')!r}")
    _validate(Questionnaire, resource)
    problems: list[str] = []
    if resource.get("status") not in QUESTIONNAIRE_STATUSES:
        problems.append(f"status: unknown code {resource.get('status')!r}")
    link_ids: set[str] = set()

    def walk(items: list[Mapping[str, Any]], path: str) -> None:
        for item in items:
            link_id = str(item.get("linkId"))
            where = f"{path}item[{link_id}]"
            if link_id in link_ids:
                problems.append(f"{where}: linkId is not unique")
            link_ids.add(link_id)
            if item.get("type") not in ITEM_TYPES:
                problems.append(f"{where}: unknown item type {item.get('type')!r}")
            conditions = item.get("enableWhen", [])
            for condition in conditions:
                if condition.get("operator") not in OPERATORS:
                    problems.append(f"{where}: unknown enableWhen operator")
            if len(conditions) > 1 and item.get("enableBehavior") not in {"all", "any"}:
                problems.append(f"{where}: enableBehavior is needed with several enableWhen")
            if item.get("type") == "display" and (item.get("required") or item.get("item")):
                problems.append(f"{where}: a display item cannot be required or have items")
            walk(item.get("item", []), f"{where} → ")

    walk(resource.get("item", []), "")
    if problems:
        raise FhirError("invalid FHIR Questionnaire: " + "; ".join(problems))


def validate_response(resource: Mapping[str, Any]) -> None:
    """Raise :class:`FhirError` unless ``resource`` is a valid FHIR R4 QuestionnaireResponse."""
    from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

    if resource.get("resourceType") != "QuestionnaireResponse":
        raise FhirError(f"expected a QuestionnaireResponse, not {resource.get('resourceType')!r}")
    _validate(QuestionnaireResponse, resource)
    if resource.get("status") not in RESPONSE_STATUSES:
        raise FhirError(f"invalid QuestionnaireResponse: unknown status {resource.get('status')!r}")


def _validate(
    model: type[Questionnaire] | type[QuestionnaireResponse], resource: Mapping[str, Any]
) -> None:
    try:
        model.model_validate(dict(resource))
    except ValidationError as error:
        problems = [
            f"{'.'.join(str(part) for part in err['loc']) or '(resource)'}: {err['msg']}"
            for err in error.errors(include_url=False)
        ]
        raise FhirError(f"invalid FHIR {model.__name__}: " + "; ".join(problems)) from error


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _fhir_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9\-.]", "-", text)[:64]


def _code_text(code: object) -> str:
    return str(code)


def _code_value(text: str) -> Code:
    """A FHIR code as our code: whole numbers become ``int``."""
    return int(text) if re.fullmatch(r"-?\d+", text) else text


def _whole(value: float) -> int | float:
    return int(value) if value.is_integer() else value


def _blank(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, str) and not value.strip():
        return True
    return isinstance(value, list | tuple | set | frozenset) and not value


def _number(value: object, item_id: str) -> float:
    if isinstance(value, bool):
        raise FhirError(f"item '{item_id}': {value!r} is not a number")
    try:
        return float(str(value).strip().replace(",", "."))
    except ValueError as error:
        raise FhirError(f"item '{item_id}': {value!r} is not a number") from error


def _boolean(value: object, item_id: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "1.0"}:
        return True
    if text in {"0", "false", "no", "0.0"}:
        return False
    raise FhirError(f"item '{item_id}': {value!r} is not yes or no")


def _date_time(value: datetime | date | str) -> str:
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return aware.isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
