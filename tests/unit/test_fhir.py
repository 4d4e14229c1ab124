"""FHIR R4 conversion (vaikuttavuus.fhir), validated with fhir.resources (R4B models)."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from vaikuttavuus.definitions import DefinitionError, load_instruments
from vaikuttavuus.domain.specs import InstrumentSpec
from vaikuttavuus.fhir import (
    CANONICAL_BASE,
    MAX_VALUE,
    MIN_VALUE,
    TRANSLATION,
    FhirError,
    questionnaire_from_fhir,
    questionnaire_to_fhir,
    response_to_fhir,
    validate_questionnaire,
)
from vaikuttavuus.paths import questionnaires_dir

SPECS: dict[str, InstrumentSpec] = {
    spec.id: spec for spec in load_instruments(questionnaires_dir())
}
SPEC_IDS = sorted(SPECS)
INSECURITY_1 = next(
    spec
    for spec in load_instruments(questionnaires_dir())
    if spec.id == "insecurity" and spec.version == "1"
)
"""Version 1 of the insecurity items: it still shows the project's note to the patient as help
(version 2, issue 17, keeps that note out of the patient's texts)."""
EXPECTED_TYPES = {
    "single_choice": "choice",
    "multiple_choice": "choice",
    "integer": "integer",
    "scale_0_10": "integer",
    "decimal": "decimal",
    "yes_no": "boolean",
    "date": "date",
    "text": "text",
}


def questions(resource: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Question items (not groups or display items) by linkId."""
    found: dict[str, dict[str, Any]] = {}

    def walk(items: list[dict[str, Any]]) -> None:
        for item in items:
            if item["type"] not in {"group", "display"}:
                found[item["linkId"]] = item
            walk(item.get("item", []))

    walk(resource.get("item", []))
    return found


def translations(element: dict[str, Any], key: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for extension in element.get(f"_{key}", {}).get("extension", []):
        assert extension["url"] == TRANSLATION
        parts = {part["url"]: part for part in extension["extension"]}
        result[parts["lang"]["valueCode"]] = parts["content"]["valueString"]
    return result


def extension(element: dict[str, Any], url: str) -> dict[str, Any] | None:
    return next((e for e in element.get("extension", []) if e["url"] == url), None)


# --------------------------------------------------------------------------------------------
# Questionnaire export
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec_id", SPEC_IDS)
def test_export_is_valid_fhir_with_our_ids(spec_id: str) -> None:
    spec = SPECS[spec_id]
    resource = questionnaire_to_fhir(spec)
    Questionnaire.model_validate(resource)  # raises if not valid
    assert resource["resourceType"] == "Questionnaire"
    assert resource["url"] == f"{CANONICAL_BASE}/Questionnaire/{spec.id}"
    assert resource["version"] == spec.version
    assert resource["identifier"][0]["value"] == spec.id
    assert resource["title"] == spec.title.fi
    assert resource["status"] == ("draft" if spec.placeholder_texts else "active")
    assert [group["linkId"] for group in resource["item"]] == [s.id for s in spec.sections]
    assert all(group["type"] == "group" for group in resource["item"])
    items = questions(resource)
    assert list(items) == list(spec.item_ids)
    for item in spec.items:
        exported = items[item.id]
        assert exported["type"] == EXPECTED_TYPES[item.type]
        assert exported["required"] is item.required
        assert exported["text"] == item.text.fi
        assert translations(exported, "text") == {"sv": item.text.sv, "en": item.text.en}
        if exported["type"] == "choice":
            codes = [o["valueCoding"]["code"] for o in exported["answerOption"]]
            assert codes == [str(o.code) for o in spec.options_for(item)]
            first = exported["answerOption"][0]["valueCoding"]
            assert first["display"] == spec.options_for(item)[0].text.fi
            assert translations(first, "display")["sv"] == spec.options_for(item)[0].text.sv


def test_export_in_another_language() -> None:
    spec = SPECS["ipss"]
    resource = questionnaire_to_fhir(spec, language="sv")
    assert resource["language"] == "sv"
    assert resource["title"] == spec.title.sv
    assert translations(resource, "title") == {"fi": spec.title.fi, "en": spec.title.en}
    with pytest.raises(FhirError, match="language 'de'"):
        questionnaire_to_fhir(spec, language="de")


def test_export_min_max_scale_and_enable_when() -> None:
    eq = questions(questionnaire_to_fhir(SPECS["eq5d5l"]))
    vas = eq["vas"]
    assert extension(vas, MIN_VALUE) == {"url": MIN_VALUE, "valueInteger": 0}
    assert extension(vas, MAX_VALUE) == {"url": MAX_VALUE, "valueInteger": 100}
    labels = {child["linkId"]: child for child in vas["item"]}
    assert labels["vas.lower"]["type"] == "display"
    prem = questions(questionnaire_to_fhir(SPECS["prem_bph"]))
    assert extension(prem["recommend"], MAX_VALUE) == {"url": MAX_VALUE, "valueInteger": 10}
    improve = prem["improve"]
    assert improve["enableBehavior"] == "any"
    assert [
        (c["question"], c["operator"], c["answerCoding"]["code"]) for c in improve["enableWhen"]
    ] == [
        ("overall", "=", "4"),
        ("overall", "=", "5"),
    ]
    assert improve["maxLength"] == 2000
    services = questions(questionnaire_to_fhir(SPECS["prem_services"]))
    assert services["improve"]["enableWhen"] == [
        {"question": "recommend", "operator": "<=", "answerInteger": 6}
    ]
    assert "enableBehavior" not in services["improve"]


def test_export_help_and_section_intro() -> None:
    resource = questionnaire_to_fhir(INSECURITY_1, language="en")
    additional = resource["item"][1]
    assert additional["item"][0]["linkId"] == "additional.intro"
    assert additional["item"][0]["type"] == "display"
    help_item = questions(resource)["safe_home"]["item"][0]
    assert help_item["linkId"] == "safe_home.help"
    assert "project" in help_item["text"]


# --------------------------------------------------------------------------------------------
# Round trip
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["fi", "sv", "en"])
@pytest.mark.parametrize("spec_id", SPEC_IDS)
def test_round_trip_keeps_items_types_codes_and_texts(spec_id: str, language: str) -> None:
    spec = SPECS[spec_id]
    definition = questionnaire_from_fhir(questionnaire_to_fhir(spec, language))
    back = InstrumentSpec.model_validate(definition)
    assert back.item_ids == spec.item_ids
    assert [i.type for i in back.items] == [i.type for i in spec.items]
    assert [[o.code for o in back.options_for(i)] for i in back.items] == [
        [o.code for o in spec.options_for(i)] for i in spec.items
    ]
    # everything but the scoring rules survives, texts in all three languages included
    assert back.model_dump(exclude={"scores", "notes"}) == spec.model_dump(
        exclude={"scores", "notes"}
    )
    assert any("scor" in note for note in back.notes)


# --------------------------------------------------------------------------------------------
# Import of foreign Questionnaires
# --------------------------------------------------------------------------------------------


def foreign_questionnaire() -> dict[str, Any]:
    return {
        "resourceType": "Questionnaire",
        "url": "http://example.org/Questionnaire/SleepCheck",
        "name": "SleepCheck",
        "status": "active",
        "language": "en",
        "title": "Sleep check",
        "_title": {
            "extension": [
                {
                    "url": TRANSLATION,
                    "extension": [
                        {"url": "lang", "valueCode": "fi"},
                        {"url": "content", "valueString": "Unitarkistus"},
                    ],
                }
            ]
        },
        "item": [
            {
                "linkId": "1",
                "type": "choice",
                "text": "How well did you sleep?",
                "required": True,
                "answerOption": [
                    {"valueCoding": {"code": "0", "display": "Badly"}},
                    {"valueCoding": {"code": "1", "display": "Well"}},
                ],
            },
            {
                "linkId": "hours",
                "type": "decimal",
                "text": "Hours slept",
                "extension": [
                    {"url": MIN_VALUE, "valueDecimal": 0},
                    {"url": MAX_VALUE, "valueDecimal": 24},
                ],
                "enableWhen": [{"question": "1", "operator": "=", "answerCoding": {"code": "1"}}],
            },
            {
                "linkId": "extra",
                "type": "group",
                "text": "More",
                "item": [
                    {"linkId": "naps", "type": "boolean", "text": "Did you nap?"},
                    {"linkId": "note", "type": "string", "text": "Anything else?"},
                    {
                        "linkId": "level",
                        "type": "choice",
                        "text": "Level",
                        "answerOption": [{"valueInteger": 1}, {"valueInteger": 2}],
                    },
                ],
            },
        ],
    }


def test_import_foreign_questionnaire_with_fallbacks_and_notes() -> None:
    definition = questionnaire_from_fhir(foreign_questionnaire())
    spec = InstrumentSpec.model_validate(definition)
    assert spec.id == "sleep_check"
    assert spec.version == "1"
    assert spec.title.fi == "Unitarkistus"
    assert spec.title.en == "Sleep check"
    assert spec.title.sv == "Sleep check"  # falls back to the primary language
    assert [s.id for s in spec.sections] == ["questions", "extra"]
    assert spec.item_ids == ("q_1", "hours", "naps", "note", "level")
    assert [i.type for i in spec.items] == [
        "single_choice",
        "decimal",
        "yes_no",
        "text",
        "single_choice",
    ]
    first = spec.item("q_1")
    assert first.required is True
    assert [o.code for o in spec.options_for(first)] == [0, 1]
    assert spec.item("naps").required is False
    hours = spec.item("hours")
    assert (hours.min, hours.max) == (0, 24)
    assert [(c.item, c.value) for c in hours.enable_when] == [("q_1", 1)]
    assert [o.code for o in spec.options_for(spec.item("level"))] == [1, 2]
    notes = " | ".join(spec.notes)
    assert "no 'sv' text" in notes and "'en' text was used" in notes
    assert "no 'fi' text" in notes  # item texts had no Finnish translation
    assert "linkId '1'" in notes
    assert "licence" in notes or "copyright" in notes


def test_import_rejects_invalid_fhir() -> None:
    broken = foreign_questionnaire()
    broken["item"][0]["type"] = "multiple-choice"
    with pytest.raises(FhirError, match="unknown item type"):
        questionnaire_from_fhir(broken)
    missing_type = foreign_questionnaire()
    del missing_type["item"][1]["type"]
    with pytest.raises(FhirError, match="type"):
        questionnaire_from_fhir(missing_type)
    with pytest.raises(FhirError, match="expected a Questionnaire"):
        questionnaire_from_fhir({"resourceType": "Patient"})


def test_import_needs_bounds_and_inline_options() -> None:
    unbounded = foreign_questionnaire()
    unbounded["item"][1]["extension"] = []
    with pytest.raises(FhirError, match="minValue and maxValue"):
        questionnaire_from_fhir(unbounded)
    value_set = foreign_questionnaire()
    del value_set["item"][0]["answerOption"]
    value_set["item"][0]["answerValueSet"] = "http://example.org/ValueSet/x"
    with pytest.raises(FhirError, match="answerValueSet"):
        questionnaire_from_fhir(value_set)
    unsupported = foreign_questionnaire()
    unsupported["item"][2]["item"][0]["type"] = "attachment"
    with pytest.raises(FhirError, match="'attachment' is not supported"):
        questionnaire_from_fhir(unsupported)


def test_import_result_is_validated_as_our_definition() -> None:
    resource = foreign_questionnaire()
    resource["item"][1]["enableWhen"][0]["operator"] = "="
    resource["item"][1]["enableWhen"][0]["question"] = "naps"  # a later question
    with pytest.raises(FhirError, match="not an earlier question"):
        questionnaire_from_fhir(resource)
    duplicated = copy.deepcopy(foreign_questionnaire())
    duplicated["item"][2]["item"][0]["linkId"] = "hours"
    with pytest.raises(FhirError, match="not unique"):
        questionnaire_from_fhir(duplicated)


def test_import_rejects_definitions_our_schema_refuses() -> None:
    resource = questionnaire_to_fhir(SPECS["ucla3"])
    options = resource["item"][0]["item"][0]["answerOption"]
    options[1]["valueCoding"]["code"] = options[0]["valueCoding"]["code"]
    with pytest.raises(DefinitionError, match="appear more than once"):
        questionnaire_from_fhir(resource)  # legal FHIR, but our codes must be unique
    broken = questionnaire_to_fhir(SPECS["ucla3"])
    broken["item"][0]["item"][1]["enableWhen"] = [
        {"question": "ucla1", "operator": ">", "answerBoolean": True},
        {"question": "ucla1", "operator": "=", "answerBoolean": True},
    ]
    with pytest.raises(FhirError, match="enableBehavior"):
        questionnaire_from_fhir(broken)


def test_validate_questionnaire_checks_codes() -> None:
    resource = questionnaire_to_fhir(SPECS["lonely1"])
    validate_questionnaire(resource)
    resource["status"] = "published"
    with pytest.raises(FhirError, match="status"):
        validate_questionnaire(resource)


def test_import_of_schema_violation_raises_definition_error() -> None:
    resource = questionnaire_to_fhir(SPECS["lonely1"])
    group = resource["item"][0]
    group["item"][0]["linkId"] = "lonely1"
    group["item"].append(copy.deepcopy(group["item"][0]))
    group["item"][1]["linkId"] = "second"
    group["item"][1]["answerOption"] = []
    with pytest.raises(FhirError, match="without answerOption"):
        questionnaire_from_fhir(resource)
    resource = questionnaire_to_fhir(SPECS["eq5d5l"])
    vas = resource["item"][1]["item"][0]
    for ext in vas["extension"]:
        if ext["url"] == MIN_VALUE:
            ext["valueInteger"] = 200  # min above max
    with pytest.raises(DefinitionError, match="'min' is greater than 'max'"):
        questionnaire_from_fhir(resource)


# --------------------------------------------------------------------------------------------
# QuestionnaireResponse
# --------------------------------------------------------------------------------------------


def test_response_is_valid_and_nested_like_the_questionnaire() -> None:
    spec = SPECS["ipss"]
    answers: dict[str, object] = {f"ipss{i}": (i - 1) % 6 for i in range(1, 8)}
    answers["ipss_qol"] = None
    resource = response_to_fhir(
        spec,
        response_id="resp-1",
        subject_reference="Patient/abc",
        authored=datetime(2025, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=2))),
        status="completed",
        language="fi",
        answers=answers,
    )
    QuestionnaireResponse.model_validate(resource)
    assert resource["questionnaire"] == f"{CANONICAL_BASE}/Questionnaire/ipss|1"
    assert resource["authored"] == "2025-03-01T09:30:00+02:00"
    assert resource["subject"] == {"reference": "Patient/abc"}
    # the quality-of-life section is unanswered and left out
    assert [group["linkId"] for group in resource["item"]] == [
        "emptying",
        "urgency_and_stream",
        "night",
    ]
    first = resource["item"][0]["item"][0]
    assert first["linkId"] == "ipss1"
    coding = first["answer"][0]["valueCoding"]
    assert coding["code"] == "0"
    assert coding["display"] == "Ei koskaan"
    exported = questions(questionnaire_to_fhir(spec))["ipss1"]["answerOption"][0]["valueCoding"]
    assert coding["system"] == exported["system"]


def test_response_value_types() -> None:
    spec = SPECS["prem_bph"]
    resource = response_to_fhir(
        spec,
        response_id=42,
        subject_reference="Patient/1",
        authored=datetime(2025, 1, 2, 3, 4, 5),
        status="in-progress",
        language="en",
        answers={
            "information": "4",
            "overall": 4,
            "improve": "More time to talk.",
            "recommend": 7.0,
        },
    )
    QuestionnaireResponse.model_validate(resource)
    assert resource["id"] == "42"
    assert resource["authored"] == "2025-01-02T03:04:05+00:00"  # naive → UTC
    answered = {
        item["linkId"]: item["answer"][0] for group in resource["item"] for item in group["item"]
    }
    assert answered["information"]["valueCoding"]["display"] == "Agree"
    assert answered["improve"] == {"valueString": "More time to talk."}
    assert answered["recommend"] == {"valueInteger": 7}
    eq = response_to_fhir(
        SPECS["eq5d5l"],
        response_id="r",
        subject_reference="Patient/1",
        authored=date(2025, 1, 2),
        status="completed",
        language="sv",
        answers={"mo": 1, "vas": 85},
    )
    assert eq["authored"] == "2025-01-02"
    assert eq["item"][1]["item"][0]["answer"] == [{"valueInteger": 85}]


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"ipss1": 6}, "not one of its codes"),
        ({"ipss9": 1}, "no item"),
        ({"ipss1": [1, 2]}, "one answer"),
    ],
)
def test_response_rejects_bad_answers(answers: dict[str, object], message: str) -> None:
    with pytest.raises(FhirError, match=message):
        response_to_fhir(
            SPECS["ipss"],
            response_id="r1",
            subject_reference="Patient/1",
            authored=datetime.now(UTC),
            status="completed",
            language="fi",
            answers=answers,
        )


def test_response_rejects_bad_numbers_ids_and_status() -> None:
    common: dict[str, Any] = {
        "subject_reference": "Patient/1",
        "authored": datetime.now(UTC),
        "language": "fi",
    }
    with pytest.raises(FhirError, match="outside 0–100"):
        response_to_fhir(
            SPECS["eq5d5l"], response_id="r", status="completed", answers={"vas": 101}, **common
        )
    with pytest.raises(FhirError, match="whole number"):
        response_to_fhir(
            SPECS["eq5d5l"], response_id="r", status="completed", answers={"vas": 1.5}, **common
        )
    with pytest.raises(FhirError, match="not a FHIR id"):
        response_to_fhir(
            SPECS["ucla3"], response_id="bad id", status="completed", answers={}, **common
        )
    with pytest.raises(FhirError, match="status"):
        response_to_fhir(SPECS["ucla3"], response_id="r", status="done", answers={}, **common)  # type: ignore[arg-type]
    with pytest.raises(FhirError, match=r"dateTime|DateTime"):
        response_to_fhir(
            SPECS["ucla3"],
            response_id="r",
            status="completed",
            answers={},
            subject_reference="Patient/1",
            authored="yesterday",
            language="fi",
        )
