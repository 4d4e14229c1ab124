"""The shipped instrument definitions (questionnaires/) against the item contract.

Item ids, answer codes and score names are the contract in shared/instruments.md; paper
answers, imports, FHIR linkIds and the ``score`` command depend on them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from vaikuttavuus.definitions import load_instrument, load_pilot
from vaikuttavuus.domain.specs import (
    LANGUAGES,
    AggregateScore,
    BandScore,
    InstrumentSpec,
    LocalizedText,
    ValueSetScore,
)
from vaikuttavuus.paths import cohorts_dir, questionnaires_dir

FILES = sorted(questionnaires_dir().glob("*.yaml"))

# instrument id → (item ids in order, score ids in order)
CONTRACT: dict[str, tuple[list[str], list[str]]] = {
    "ipss": (
        ["ipss1", "ipss2", "ipss3", "ipss4", "ipss5", "ipss6", "ipss7", "ipss_qol"],
        ["total", "voiding", "storage", "qol", "band"],
    ),
    "ucla3": (["ucla1", "ucla2", "ucla3"], ["total", "lonely"]),
    "djg6": (
        ["djg1", "djg2", "djg3", "djg4", "djg5", "djg6"],
        ["emotional", "social", "total", "band"],
    ),
    "lonely1": (["lonely1"], ["frequency", "lonely"]),
    "insecurity": (
        ["safe_daily", "safe_home", "safe_outdoors", "knows_help"],
        ["safe_daily", "insecure", "mean"],
    ),
    "eq5d5l": (["mo", "sc", "ua", "pd", "ad", "vas"], ["index", "vas"]),
    "prem_bph": (
        [
            "information",
            "involvement",
            "respect",
            "pain",
            "waiting",
            "overall",
            "improve",
            "recommend",
            "comments",
        ],
        ["experience_mean", "overall", "overall_positive", "recommend", "promoter", "detractor"],
    ),
    "prem_services": (
        ["felt_heard", "help_mattered", "involved", "recommend", "improve", "comments"],
        ["experience_mean", "recommend", "promoter", "detractor"],
    ),
}

# item id → answer codes (choice items)
CODES: dict[str, list[int]] = {
    **{f"ipss{i}": [0, 1, 2, 3, 4, 5] for i in range(1, 8)},
    "ipss_qol": [0, 1, 2, 3, 4, 5, 6],
    **{f"ucla{i}": [1, 2, 3] for i in range(1, 4)},
    **{f"djg{i}": [1, 2, 3] for i in range(1, 7)},
    "lonely1": [1, 2, 3, 4, 5],
    **{
        item: [1, 2, 3, 4, 5] for item in ("safe_daily", "safe_home", "safe_outdoors", "knows_help")
    },
    **{dim: [1, 2, 3, 4, 5] for dim in ("mo", "sc", "ua", "pd", "ad")},
}


@pytest.fixture(scope="module")
def specs() -> dict[str, InstrumentSpec]:
    return {spec.id: spec for spec in (load_instrument(path) for path in FILES)}


def localized_texts(node: Any, path: str = "") -> list[tuple[str, LocalizedText]]:
    """Every LocalizedText inside a spec, with where it is."""
    found: list[tuple[str, LocalizedText]] = []
    if isinstance(node, LocalizedText):
        return [(path, node)]
    if isinstance(node, BaseModel):
        for name in type(node).model_fields:
            found.extend(localized_texts(getattr(node, name), f"{path}.{name}"))
    elif isinstance(node, tuple | list):
        for position, child in enumerate(node):
            found.extend(localized_texts(child, f"{path}[{position}]"))
    elif isinstance(node, dict):
        for key, child in node.items():
            found.extend(localized_texts(child, f"{path}[{key}]"))
    return found


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
def test_every_shipped_definition_loads_and_is_complete(path: Path) -> None:
    spec = load_instrument(path)
    assert path.name == f"{spec.id}-{spec.version}.yaml"
    assert spec.licence.strip()
    assert spec.source.strip()
    assert spec.languages == LANGUAGES
    texts = localized_texts(spec)
    assert texts
    for where, text in texts:
        for language in LANGUAGES:
            assert getattr(text, language).strip(), f"{spec.id}{where}.{language}"
    for item in spec.items:
        # translated, not copied: the Finnish and English question texts differ
        assert item.text.fi != item.text.en, f"{spec.id}: {item.id}"


def test_all_contract_instruments_are_shipped(specs: dict[str, InstrumentSpec]) -> None:
    assert sorted(specs) == sorted(CONTRACT)


@pytest.mark.parametrize("instrument_id", sorted(CONTRACT))
def test_item_and_score_ids_match_the_contract(
    specs: dict[str, InstrumentSpec], instrument_id: str
) -> None:
    spec = specs[instrument_id]
    items, scores = CONTRACT[instrument_id]
    assert list(spec.item_ids) == items
    assert [score.id for score in spec.scores] == scores


def test_answer_codes_match_the_contract(specs: dict[str, InstrumentSpec]) -> None:
    checked = 0
    for spec in specs.values():
        for item in spec.items:
            if item.id in CODES:
                assert [o.code for o in spec.options_for(item)] == CODES[item.id], item.id
                checked += 1
    assert checked == len(CODES)


def test_ipss_exemplar_scoring_rules(specs: dict[str, InstrumentSpec]) -> None:
    ipss = specs["ipss"]
    sums = {score.id: score for score in ipss.scores if isinstance(score, AggregateScore)}
    assert sums["total"].items == tuple(f"ipss{i}" for i in range(1, 8))
    assert sums["voiding"].items == ("ipss1", "ipss3", "ipss5", "ipss6")
    assert sums["storage"].items == ("ipss2", "ipss4", "ipss7")
    assert all(score.missing.rule == "all" for score in sums.values())


def test_djg6_rules(specs: dict[str, InstrumentSpec]) -> None:
    total = specs["djg6"].score("total")
    assert isinstance(total, AggregateScore)
    assert total.missing.rule == "available"
    assert total.missing.max_missing == 1
    assert total.recode["djg1"] == {1: 1, 2: 1, 3: 0}
    assert total.recode["djg6"] == {1: 0, 2: 1, 3: 1}
    band = specs["djg6"].score("band")
    assert isinstance(band, BandScore)
    assert [(b.label, b.min, b.max) for b in band.bands] == [
        ("not_lonely", 0, 1),
        ("moderate", 2, 4),
        ("severe", 5, 6),
    ]


def test_eq5d5l_is_placeholder_and_has_the_england_value_set(
    specs: dict[str, InstrumentSpec],
) -> None:
    eq = specs["eq5d5l"]
    assert eq.placeholder_texts is True
    for item in eq.items:
        for language in LANGUAGES:
            text = item.text.get(language)
            assert text.startswith("[") and text.endswith("]"), text
        for option in eq.options_for(item):
            assert option.text.fi.startswith("[")
    index = eq.score("index")
    assert isinstance(index, ValueSetScore)
    assert index.default_value_set == "england_2018"
    england = index.value_sets["england_2018"]
    assert england.doi == "10.1002/hec.3564"
    assert england.constant == 0
    assert england.decrements["mo"] == {2: 0.058, 3: 0.076, 4: 0.207, 5: 0.274}
    assert england.decrements["ad"] == {2: 0.078, 3: 0.104, 4: 0.285, 5: 0.289}
    vas = eq.item("vas")
    assert (vas.type, vas.min, vas.max) == ("integer", 0, 100)
    others = [spec for spec in specs.values() if spec.id != "eq5d5l"]
    assert not any(spec.placeholder_texts for spec in others)


def _patient_texts(spec: InstrumentSpec) -> list[tuple[str, LocalizedText]]:
    """The texts a patient reads: section titles and introductions, questions, their help,
    answer options and scale ends (not the title, description, licence or score labels)."""
    found: list[tuple[str, LocalizedText]] = []
    for section in spec.sections:
        found.extend(localized_texts(section, f"{spec.key}.{section.id}"))
    for name, answer_set in spec.answer_sets.items():
        found.extend(localized_texts(answer_set, f"{spec.key}.answer_sets[{name}]"))
    return found


def test_project_authored_parts_are_marked_for_staff_only(
    specs: dict[str, InstrumentSpec],
) -> None:
    """The current versions tell staff which parts the project wrote (description, licence,
    score labels), and tell patients nothing about validation (walkthrough, issue 17)."""
    insecurity = specs["insecurity"]
    assert insecurity.version == "2"
    assert insecurity.item("safe_daily").required  # the core item
    for item_id in ("safe_home", "safe_outdoors", "knows_help"):
        item = insecurity.item(item_id)
        assert item.required is False
        assert item.help is None
    assert insecurity.description is not None
    assert "project" in insecurity.description.en and "hankkeen" in insecurity.description.fi
    assert "project-authored" in insecurity.score("mean").label.en  # type: ignore[union-attr]
    assert "project-authored" in specs["prem_services"].licence.lower()
    description = specs["prem_services"].description
    assert description is not None and "project" in description.en.lower()
    staff_words = ("hankkee", "validoi", "projekt", "valider", "project", "validat")
    for spec in specs.values():
        for where, text in _patient_texts(spec):
            for language in LANGUAGES:
                value = text.get(language).lower()
                assert not any(word in value for word in staff_words), (where, language, value)


def test_the_services_questionnaire_names_the_services(specs: dict[str, InstrumentSpec]) -> None:
    """No "this service" without saying which: the questions speak of the services received."""
    prem = specs["prem_services"]
    assert prem.version == "2"
    assert "saamiasi palveluja" in prem.item("recommend").text.fi
    for spec in specs.values():
        for _where, text in _patient_texts(spec):
            assert "tätä palvelua" not in text.fi and "this service" not in text.en


def test_prem_bph_structure(specs: dict[str, InstrumentSpec]) -> None:
    prem = specs["prem_bph"]
    assert prem.kind == "prem"
    assert prem.item("recommend").type == "scale_0_10"
    improve = prem.item("improve")
    assert improve.type == "text" and not improve.required
    assert [(c.item, c.operator, c.value) for c in improve.enable_when] == [
        ("overall", "=", 4),
        ("overall", "=", 5),
    ]
    assert improve.enable_behavior == "any"
    for item_id in ("information", "involvement", "respect", "pain", "waiting"):
        assert [o.code for o in prem.options_for(prem.item(item_id))] == [1, 2, 3, 4, 5]
    assert [o.code for o in prem.options_for(prem.item("overall"))] == [1, 2, 3, 4, 5, 9]


@pytest.mark.parametrize("pilot_file", ["bph.yaml", "older-adults.yaml"])
def test_pilots_reference_shipped_instruments_and_scores(
    specs: dict[str, InstrumentSpec], pilot_file: str
) -> None:
    pilot = load_pilot(cohorts_dir() / pilot_file)
    for instrument in pilot.instrument_ids:
        assert instrument in specs, instrument
    for rule in (pilot.primary_outcome, *pilot.secondary_outcomes):
        score = specs[rule.instrument].score(rule.score)
        assert score.method in {"sum", "mean", "item", "value_set"}


# --------------------------------------------------------------------------------------------
# Schema additions (vaikuttavuus.domain.specs)
# --------------------------------------------------------------------------------------------


def minimal(**changes: Any) -> dict[str, Any]:
    text = {"fi": "t", "sv": "t", "en": "t"}
    data: dict[str, Any] = {
        "id": "x",
        "version": "1",
        "kind": "prom",
        "title": text,
        "licence": "l",
        "source": "s",
        "sections": [
            {
                "id": "main",
                "title": text,
                "items": [
                    {
                        "id": "q1",
                        "type": "single_choice",
                        "text": text,
                        "options": [{"code": 1, "text": text}, {"code": 2, "text": text}],
                    },
                    {"id": "q2", "type": "integer", "min": 0, "max": 9, "text": text},
                    {"id": "free", "type": "text", "text": text},
                ],
            }
        ],
    }
    data.update(changes)
    return data


def test_item_score_may_carry_its_items_id() -> None:
    spec = InstrumentSpec.model_validate(
        minimal(scores=[{"id": "q1", "method": "item", "item": "q1"}])
    )
    assert spec.score("q1").id == "q1"


@pytest.mark.parametrize(
    ("scores", "message"),
    [
        ([{"id": "q1", "method": "item", "item": "q2"}], "clashes"),
        ([{"id": "q1", "method": "sum", "items": ["q1", "q2"]}], "clashes"),
        ([{"id": "t", "method": "item", "item": "free"}], "type text"),
        (
            [
                {"id": "s", "method": "sum", "items": ["q1", "q2"]},
                {
                    "id": "b",
                    "method": "band",
                    "of": "s",
                    "bands": [{"label": "x", "min": 0, "max": 1}],
                },
                {"id": "f", "method": "flag", "of": "b", "operator": ">", "value": 1},
            ],
            "band",
        ),
        ([{"id": "s", "method": "sum", "items": ["q1"], "recode": {"q2": {1: 0}}}], "recode"),
        (
            [
                {
                    "id": "s",
                    "method": "sum",
                    "items": ["q1", "q2"],
                    "missing": {"rule": "available", "max_missing": 2},
                }
            ],
            "max_missing",
        ),
        (
            [
                {
                    "id": "i",
                    "method": "value_set",
                    "dimensions": ["q1"],
                    "default_value_set": "v",
                    "value_sets": {
                        "v": {"name": "v", "citation": "c", "decrements": {"q1": {2: -0.1}}}
                    },
                }
            ],
            "positive",
        ),
    ],
)
def test_schema_rejects_bad_scores(scores: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        InstrumentSpec.model_validate(minimal(scores=scores))


def test_schema_rejects_scores_of_text_coded_choices() -> None:
    data = minimal(scores=[{"id": "s", "method": "item", "item": "q1"}])
    data["sections"][0]["items"][0]["options"][0]["code"] = "a"
    with pytest.raises(ValidationError, match="not a number"):
        InstrumentSpec.model_validate(data)


def test_notes_field_is_optional() -> None:
    assert InstrumentSpec.model_validate(minimal()).notes == ()
    assert InstrumentSpec.model_validate(minimal(notes=["imported"])).notes == ("imported",)
