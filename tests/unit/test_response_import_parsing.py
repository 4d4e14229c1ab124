"""The pure checks of the ``responses`` import kind: answer codes, instruments and time
points, versions, windows, unanswered required items, duplicates and stored responses; the
template and its example row; FHIR Bundles read into the same rows."""

from __future__ import annotations

import dataclasses
import json
from datetime import date, timedelta
from typing import Any

import pytest

from tests.unit.test_import_parsing import BPH, ENROLLED, KNOWN, OLDER, context
from vaikuttavuus import fhir
from vaikuttavuus.domain import imports as im
from vaikuttavuus.domain import response_imports as ri
from vaikuttavuus.services.definitions import latest_versions, load_all_definitions

SPECS, PILOTS, _MEASURES = load_all_definitions()
VERSIONS: dict[str, dict[str, Any]] = {}
for _spec in SPECS:
    VERSIONS.setdefault(_spec.id, {})[_spec.version] = _spec
CURRENT = latest_versions(SPECS)
IPSS = ["ipss1", "ipss2", "ipss3", "ipss4", "ipss5", "ipss6", "ipss7", "ipss_qol"]
HEADER = ["identity_code", "time_point", "instrument", "completed_on", "mode", "proxy", *IPSS]
# ENROLLED: index date 2025-03-14; BPH baseline window −60…0 days, m3 60…120 days
IN_WINDOW = "1.3.2025"


def response_context(pilot: Any = BPH, **options: Any) -> im.ImportContext:
    return dataclasses.replace(
        context(pilot=pilot),
        instruments=VERSIONS,
        current_versions={code: spec.version for code, spec in CURRENT.items()},
        **options,
    )


def check(rows: list[list[Any]], header: list[str] = HEADER, **options: Any) -> im.Validation:
    return im.validate("responses", im.table_from_rows(header, rows), response_context(**options))


def errors(result: im.Validation) -> list[tuple[int, str | None, str]]:
    return [(e.line, e.column, e.code) for e in result.errors]


def row(*answers: Any, day: str = IN_WINDOW, tp: str = "baseline", **fixed: str) -> list[Any]:
    return [
        fixed.get("person", KNOWN),
        tp,
        fixed.get("instrument", "ipss"),
        day,
        fixed.get("mode", ""),
        fixed.get("proxy", ""),
        *answers,
    ]


def test_a_good_row_becomes_one_response_with_its_answers() -> None:
    result = check([row(1, 2, 3, 4, 5, 0, 1, 2, mode="Paper", proxy="kyllä")])
    assert result.ok and result.rows_new == 1
    response = result.frame.iloc[0]
    assert (response["enrolment_id"], response["time_point"], response["instrument"]) == (
        ENROLLED.enrolment_id,
        "baseline",
        "ipss",
    )
    assert (response["version"], response["mode"], bool(response["proxy"])) == ("1", "paper", True)
    assert response["completed_on"].date() == date(2025, 3, 1)
    assert result.answers is not None
    assert result.answers["item_id"].tolist() == IPSS
    assert result.answers["value"].tolist() == ["1", "2", "3", "4", "5", "0", "1", "2"]
    assert result.answers["value_num"].sum() == 18


def test_defaults_mode_imported_proxy_no_language_fi_current_version() -> None:
    result = check([row(*[1] * 8)])
    response = result.frame.iloc[0]
    assert (response["mode"], bool(response["proxy"]), response["language"]) == (
        "imported",
        False,
        "fi",
    )
    assert response["version"] == CURRENT["ipss"].version


def test_codes_outside_the_answer_set_and_items_of_another_instrument() -> None:
    header = [*HEADER, "mo"]
    result = check([row(6, 1, "x", 1, 1, 1, 1, 7, "2")], header=header)
    assert errors(result) == [
        (2, "ipss1", "unknown_code"),
        (2, "ipss3", "unknown_code"),
        (2, "ipss_qol", "unknown_code"),
        (2, "mo", "not_in_instrument"),
    ]
    assert result.errors[2].params["allowed"] == ["0", "1", "2", "3", "4", "5", "6"]
    assert result.errors[3].params == {"instrument": "ipss"}


def test_time_point_instrument_version_and_person() -> None:
    result = check(
        [
            row(*[1] * 8, "", tp="m6"),
            row(*[1] * 8, "", instrument="ucla3"),
            row(*[""] * 8, "", instrument="prem_bph"),
            row(*[1] * 8, "9"),
            row(*[1] * 8, "", person="150348-903L"),
        ],
        header=[*HEADER, "instrument_version"],
    )
    assert errors(result) == [
        (2, "time_point", "unknown_code"),
        (3, "instrument", "unknown_code"),
        (4, "instrument", "not_scheduled"),
        (5, "instrument_version", "unknown_code"),
        (6, "identity_code", "unknown_person"),
    ]
    assert result.errors[3].params["allowed"] == ["1"]
    assert result.errors[4].params == {"reason": "not_enrolled"}


def test_the_window_is_checked_unless_answers_outside_it_are_allowed() -> None:
    late = [row(*[1] * 8, day="2025-04-01")]
    refused = check(late)
    assert errors(refused) == [(2, "completed_on", "outside_window")]
    assert refused.errors[0].params == {
        "time_point": "baseline",
        "start": "2025-01-13",
        "end": "2025-03-14",
    }
    assert check(late, allow_outside_window=True).ok
    assert errors(check([row(*[1] * 8, day="2026-01-01")])) == [
        (2, "completed_on", "date_in_future"),
        (2, "completed_on", "outside_window"),
    ]


def test_unanswered_required_items_follow_the_missing_item_rules() -> None:
    # IPSS total (rule all) cannot do without ipss4; qol (an item score) is still computed
    result = check([row(1, 1, 1, "", 1, 1, 1, 2)])
    assert result.ok and result.rows_new == 1
    assert [(n.line, n.column, n.code) for n in result.notes] == [(2, "ipss4", "incomplete")]
    assert result.notes[0].params == {
        "instrument": "ipss",
        "items": ["ipss4"],
        "scores": ["total", "storage"],
    }
    # DJG: the total (rule available, one missing allowed) is still computed, the emotional
    # subscale (rule all) is not
    older = ["identity_code", "time_point", "instrument", "completed_on"]
    older += ["djg1", "djg2", "djg3", "djg4", "djg5", "djg6"]
    djg = check(
        [[KNOWN, "baseline", "djg6", "2025-03-20", 1, "", 2, 1, 1, 1]],
        header=older,
        pilot=OLDER,
    )
    assert djg.ok and djg.notes[0].params["scores"] == ["emotional"]
    # no answer at all: refused
    empty = check([row(*[""] * 8)])
    assert errors(empty) == [(2, "instrument", "no_answers")]


def test_optional_items_and_conditional_items() -> None:
    header = ["identity_code", "time_point", "instrument", "completed_on", "overall", "improve"]
    result = check(
        [[KNOWN, "m3", "prem_bph", "2025-06-01", "2", "Enemmän tietoa etukäteen"]],
        header=header,
    )
    assert result.ok and not result.notes
    assert result.answers is not None and result.answers["value"].tolist() == [
        "2",
        "Enemmän tietoa etukäteen",
    ]


def test_the_same_response_twice_in_a_file_is_a_duplicate() -> None:
    result = check([row(*[1] * 8), row(*[2] * 8)])
    assert errors(result) == [(3, None, "duplicate")]
    assert result.errors[0].params == {"first_line": 2}


def test_stored_responses_make_rows_already_stored_conflicts_or_replacements() -> None:
    same = dict.fromkeys(IPSS, "1")
    stored = {
        (ENROLLED.enrolment_id, "baseline", "ipss"): im.StoredResponse(
            "submitted", "1", date(2025, 3, 1), "imported", False, same
        ),
        (ENROLLED.enrolment_id, "m3", "ipss"): im.StoredResponse(
            "in_progress", "1", None, "web", False, {"ipss1": "4"}
        ),
    }
    rows = [row(*[1] * 8), row(*[1] * 8, tp="m3", day="2025-06-01")]
    again = check(rows, stored_responses=lambda keys: {k: stored[k] for k in keys if k in stored})
    assert again.ok and again.rows_duplicate == 1 and again.rows_new == 1
    assert again.frame["replaces"].tolist() == [True]

    changed = [row(2, 1, 1, 1, 1, 1, 1, 1, mode="paper")]
    result = check(
        changed, stored_responses=lambda keys: {k: stored[k] for k in keys if k in stored}
    )
    assert errors(result) == [(2, "instrument", "conflict")]
    assert result.errors[0].params == {
        "reason": "submitted",
        "differs": ["answers", "mode"],
        "completed_on": "2025-03-01",
    }


def test_template_header_and_example_row_are_valid_for_each_shipped_pilot() -> None:
    for pilot in PILOTS:
        header = ri.template_header([CURRENT[code] for code in pilot.instrument_ids])
        example = ri.example_row(header, pilot, CURRENT)
        # the example's person, enrolled with an index date that puts its date in the window
        day = date(2025, 3, 1) - timedelta(days=pilot.baseline.offset_days)
        enrolled = dataclasses.replace(ENROLLED, index_date=day)
        result = im.validate(
            "responses",
            im.table_from_rows(header, [list(example)]),
            dataclasses.replace(
                response_context(pilot=pilot),
                find_people=lambda hashes, _p, enrolled=enrolled: im.PeopleFound(
                    dict.fromkeys(hashes, enrolled)
                ),
            ),
        )
        assert result.ok and not result.notes, (pilot.id, result.errors)
        assert result.rows_new == 1


# -- FHIR -------------------------------------------------------------------------------------


def bundle(*resources: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": r} for r in resources],
        }
    ).encode()


def ipss_resource(**changes: Any) -> dict[str, Any]:
    resource = fhir.response_to_fhir(
        CURRENT["ipss"],
        response_id="r1",
        subject_reference="Patient/key-1",
        authored="2025-03-01T23:30:00+02:00",
        status="completed",
        language="fi",
        answers=dict(zip(IPSS, [1, 2, 3, 4, 5, 0, 1, 2], strict=True)),
        time_point="baseline",
        mode="phone",
        proxy=True,
    )
    return resource | changes


def test_a_bundle_reads_into_the_rows_of_a_responses_file() -> None:
    resource = ipss_resource()
    other = ipss_resource(
        subject={"identifier": {"system": fhir.IDENTITY_CODE_SYSTEM, "value": KNOWN}}
    )
    table = fhir.read_response_bundle(
        bundle(resource, other),
        item_ids=ri.item_columns(response_context()),
        resolve_subject=lambda key: "P-ABC123" if key == "key-1" else None,
    )
    assert table.problems == ()
    first = table.frame.loc[1]
    assert (first["pseudonym"], first["time_point"], first["instrument"]) == (
        "P-ABC123",
        "baseline",
        "ipss",
    )
    assert (first["completed_on"], first["mode"], first["proxy"]) == ("2025-03-01", "phone", "yes")
    assert [first[item] for item in IPSS] == ["1", "2", "3", "4", "5", "0", "1", "2"]
    assert table.frame.loc[2, "identity_code"] == KNOWN
    result = im.validate("responses", table, response_context())
    # both entries name the same person: the second is the same response again
    assert errors(result) == [(2, None, "duplicate")]


def test_bundle_problems() -> None:
    with pytest.raises(im.ImportFileError) as raised:
        fhir.read_response_bundle(b"{not json", item_ids=())
    assert [e.code for e in raised.value.errors] == ["not_fhir"]
    with pytest.raises(im.ImportFileError) as raised:
        fhir.read_response_bundle(b'{"resourceType": "Bundle"}', item_ids=())
    assert [e.code for e in raised.value.errors] == ["no_rows"]
    table = fhir.read_response_bundle(
        bundle(
            ipss_resource(),
            {"resourceType": "Observation"},
            ipss_resource(status="in-progress"),
            ipss_resource(subject={"reference": "Patient/unknown"}),
        ),
        item_ids=set(IPSS),
        resolve_subject=lambda key: "P-ABC123" if key == "key-1" else None,
    )
    assert [(e.line, e.column, e.code) for e in table.problems] == [
        (2, "resourceType", "fhir_entry"),
        (3, "status", "fhir_entry"),
        (4, "subject", "unknown_person"),
    ]
    result = im.validate("responses", table, response_context())
    assert [(e.line, e.code) for e in result.errors] == [
        (2, "fhir_entry"),
        (3, "fhir_entry"),
        (4, "unknown_person"),
    ]
