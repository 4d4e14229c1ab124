"""Loading the synthetic data set into the database (SQLite and PostgreSQL) and bulk inserts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd
import pytest
from flask import Flask
from sqlalchemy import func, inspect, select
from sqlalchemy.exc import IntegrityError

from vaikuttavuus import queries, synthetic
from vaikuttavuus.bulk import (
    BulkInsertError,
    bulk_insert,
    foreign_keys_checked_at_end,
    indexed_foreign_keys,
    next_id,
)
from vaikuttavuus.domain.scoring import score_frame
from vaikuttavuus.extensions import db
from vaikuttavuus.models import (
    Answer,
    Arm,
    ClinicalMeasurement,
    CostItem,
    Enrolment,
    Invitation,
    Person,
    Procedure,
    Response,
    ServiceExposure,
)
from vaikuttavuus.services import demo_data
from vaikuttavuus.services.definitions import load_all_definitions

TODAY = date.today()
MODELS = {
    "people": Person,
    "enrolments": Enrolment,
    "procedures": Procedure,
    "clinical_measurements": ClinicalMeasurement,
    "service_exposures": ServiceExposure,
    "cost_items": CostItem,
    "invitations": Invitation,
    "responses": Response,
    "answers": Answer,
}


@pytest.fixture(scope="module")
def data() -> synthetic.SyntheticData:
    instruments, pilots, measures = load_all_definitions()
    return synthetic.generate(
        pilots={spec.id: spec for spec in pilots},
        instruments={spec.id: spec for spec in instruments},
        measures=measures,
        people=150,
        seed=3,
        today=TODAY,
        pseudonym_key=b"test-pseudonym-key",
    )


def count(model: Any) -> int:
    return int(db.session.scalar(select(func.count()).select_from(model)) or 0)


def test_load_writes_every_row_and_links_them(app: Flask, data: synthetic.SyntheticData) -> None:
    assert not demo_data.demo_data_present(db.session)
    summary = demo_data.load_demo_data(db.session, data)
    db.session.commit()
    assert summary.counts == data.counts()
    assert summary.total == sum(data.counts().values())
    for table, model in MODELS.items():
        assert count(model) == len(data.frames()[table]), table
    assert demo_data.demo_data_present(db.session)

    # codes became the right ids: every response's time point belongs to its enrolment's pilot
    mismatched = db.session.scalar(
        select(func.count())
        .select_from(Response)
        .join(Enrolment, Response.enrolment_id == Enrolment.id)
        .join(Invitation, Response.invitation_id == Invitation.id)
        .where(
            (Invitation.enrolment_id != Response.enrolment_id)
            | (Invitation.time_point_id != Response.time_point_id)
        )
    )
    assert mismatched == 0
    enrolment = db.session.scalars(select(Enrolment).order_by(Enrolment.id)).first()
    assert enrolment is not None
    assert enrolment.pilot.code == data.enrolments["pilot"].iloc[0]
    assert enrolment.arm.code == data.enrolments["arm"].iloc[0]
    assert enrolment.person.pseudonym == data.people["pseudonym"].iloc[0]


def test_values_round_trip(app: Flask, data: synthetic.SyntheticData) -> None:
    demo_data.load_demo_data(db.session, data)
    db.session.commit()
    db.session.expire_all()
    people = {p.pseudonym: p for p in db.session.scalars(select(Person))}
    for row in data.people.itertuples():
        person = people[row.pseudonym]
        assert person.created_at == row.created_at.to_pydatetime()
        assert person.lives_alone == (None if pd.isna(row.lives_alone) else bool(row.lives_alone))
        assert person.postal_address == (None if pd.isna(row.postal_address)
                                         else row.postal_address)
        assert person.identity_hash == row.identity_hash
        assert person.source == "demo"
        assert (person.opted_out_at is None) == pd.isna(row.opted_out_at)
    first = data.invitations.iloc[0]
    invitation = db.session.scalars(select(Invitation).order_by(Invitation.id)).first()
    assert invitation is not None
    assert invitation.opens_on == first["opens_on"].date()
    assert invitation.status == first["status"]
    submitted = data.responses[data.responses["status"] == "submitted"].iloc[0]
    response = db.session.scalar(
        select(Response).where(Response.idempotency_key == submitted["idempotency_key"])
    )
    assert response is not None
    assert response.submitted_at == submitted["submitted_at"].to_pydatetime()
    assert response.submitted_at.tzinfo is UTC
    assert response.instrument_version.code == submitted["instrument"]
    stored = {(a.item_id, a.value, a.value_num) for a in response.answers}
    expected = data.answers[data.answers["response_key"] == submitted["response_key"]]
    assert stored == set(zip(expected["item_id"], expected["value"], expected["value_num"],
                             strict=True))
    grade = db.session.scalars(
        select(ClinicalMeasurement).where(ClinicalMeasurement.measure_code == "clavien_dindo")
    ).first()
    assert grade is not None and grade.value_text is not None and grade.value_num is None
    ongoing = db.session.scalar(
        select(func.count()).select_from(ServiceExposure).where(ServiceExposure.ended_on.is_(None))
    )
    assert ongoing == data.service_exposures["ended_on"].isna().sum()


def test_stored_answers_score_like_the_generated_ones(
    app: Flask, data: synthetic.SyntheticData
) -> None:
    demo_data.load_demo_data(db.session, data)
    db.session.commit()
    pilot = queries.pilot_by_code(db.session, "older-adults")
    assert pilot is not None
    stored = queries.instrument_scores(db.session, pilot.id, "ucla3")
    instruments = {spec.id: spec for spec in load_all_definitions()[0]}
    responses = data.responses[
        (data.responses["instrument"] == "ucla3") & (data.responses["status"] == "submitted")
    ]
    answers = data.answers[data.answers["response_key"].isin(responses["response_key"])]
    wide = answers.pivot(index="response_key", columns="item_id", values="value_num")
    expected = score_frame(instruments["ucla3"], wide.astype(float))
    assert len(stored) == len(expected) > 50
    pd.testing.assert_series_equal(
        stored["total"].value_counts(dropna=False).sort_index(),
        expected["total"].value_counts(dropna=False).sort_index(),
    )


def test_reads_narrowed_to_some_enrolments_or_responses_keep_to_the_pilot(
    app: Flask, data: synthetic.SyntheticData
) -> None:
    """A read narrowed to listed enrolments or responses (an export chunk, the clinician
    reference's new answers, one patient's costs) returns exactly those rows of the whole
    read, and none of another pilot's, though its pilot condition is no longer indexed."""
    demo_data.load_demo_data(db.session, data)
    db.session.commit()
    pilot = queries.pilot_by_code(db.session, "older-adults")
    other = queries.pilot_by_code(db.session, "bph")
    assert pilot is not None and other is not None
    whole = queries.instrument_scores(db.session, pilot.id, "ucla3")
    chosen = sorted(int(i) for i in whole["enrolment_id"].unique())[::3]
    narrowed = queries.instrument_scores(db.session, pilot.id, "ucla3", enrolment_ids=chosen)
    expected = whole[whole["enrolment_id"].isin(chosen)].reset_index(drop=True)
    pd.testing.assert_frame_equal(narrowed, expected)
    some = [int(i) for i in whole["response_id"]][::4]
    by_response = queries.instrument_scores(db.session, pilot.id, "ucla3", response_ids=some)
    assert sorted(by_response["response_id"]) == sorted(some)
    strangers = queries.instrument_scores(db.session, other.id, "ucla3", enrolment_ids=chosen)
    assert strangers.empty

    costs = queries.cost_rows(db.session, pilot.id)
    ids = sorted(int(i) for i in costs["enrolment_id"].unique())[::2]
    assert len(ids) > 5
    narrowed_costs = queries.cost_rows(db.session, pilot.id, ids)
    assert set(narrowed_costs["enrolment_id"]) == set(ids)
    assert len(narrowed_costs) == int(costs["enrolment_id"].isin(ids).sum())
    assert queries.cost_rows(db.session, other.id, ids).empty
    assert queries.cost_rows(db.session, pilot.id, []).empty


def test_ids_continue_after_the_load(
    app: Flask, data: synthetic.SyntheticData, enrol_patient: Callable[..., Enrolment]
) -> None:
    demo_data.load_demo_data(db.session, data)
    db.session.commit()
    largest = db.session.scalar(select(func.max(Person.id)))
    enrolment = enrol_patient()  # ORM inserts: person, enrolment, invitations
    assert enrolment.person_id > largest
    assert next_id(db.session, Person.__table__) == enrolment.person_id + 1


def test_remove_deletes_only_demo_rows(
    app: Flask, data: synthetic.SyntheticData, enrol_patient: Callable[..., Enrolment]
) -> None:
    kept = enrol_patient()
    kept_id, kept_invitations = kept.id, count(Invitation)
    demo_data.load_demo_data(db.session, data)
    db.session.commit()
    removed = demo_data.remove_demo_data(db.session)
    db.session.commit()
    assert not demo_data.demo_data_present(db.session)
    assert removed["people"] == len(data.people)
    assert removed["answers"] == len(data.answers)
    assert count(Person) == 1
    assert count(Enrolment) == 1
    assert db.session.get(Enrolment, kept_id) is not None
    assert count(Invitation) == kept_invitations
    for model in (Response, Answer, CostItem, Procedure, ClinicalMeasurement, ServiceExposure):
        assert count(model) == 0
    # and the data set loads again (as `demo-data --replace` does)
    demo_data.load_demo_data(db.session, data)
    db.session.commit()
    assert count(Person) == len(data.people) + 1


def test_load_refuses_answers_of_another_instrument_version(
    app: Flask, data: synthetic.SyntheticData
) -> None:
    versions = dict(data.instrument_versions)
    versions["ucla3"] = "99"
    with pytest.raises(ValueError, match="ucla3@99"):
        demo_data.load_demo_data(db.session, replace(data, instrument_versions=versions))
    db.session.rollback()
    assert count(Person) == 0


def test_clashing_pseudonyms_and_identity_hashes_are_avoided(
    app: Flask, data: synthetic.SyntheticData
) -> None:
    first = data.people.iloc[0]
    db.session.add(Person(pseudonym=first["pseudonym"], identity_hash=first["identity_hash"]))
    db.session.commit()
    demo_data.load_demo_data(db.session, data)
    db.session.commit()
    assert count(Person) == len(data.people) + 1
    for column, value in ((Person.pseudonym, first["pseudonym"]),
                          (Person.identity_hash, first["identity_hash"])):
        assert db.session.scalar(
            select(func.count()).select_from(Person).where(column == value)
        ) == 1
    assert db.session.scalar(
        select(func.count()).select_from(Person).where(Person.identity_hash.is_(None))
    ) == 1


# -- bulk_insert --------------------------------------------------------------------------------


def people_frame(**columns: Any) -> pd.DataFrame:
    base: dict[str, Any] = {
        "pseudonym": ["P-AAAAA1", "P-AAAAA2", "P-AAAAA3"],
        "created_at": pd.to_datetime(
            ["2026-01-01 10:00:00.123456", "2026-06-01 10:00", "2026-01-02"], format="ISO8601"
        ).tz_localize("Europe/Helsinki"),
    }
    base.update(columns)
    return pd.DataFrame(base)


def test_bulk_insert_converts_values_by_column_type(app: Flask) -> None:
    frame = people_frame(
        first_name=["Tab\there", None, "Back\\slash"],
        postal_address=["Katu 1\nRivi 2\r\n00100", np.nan, ""],
        birth_year=pd.array([1950, None, 1960], dtype="Int64"),
        lives_alone=pd.array([True, None, False], dtype="boolean"),
        opted_out_at=pd.to_datetime([None, "2026-03-01 12:00", None]).tz_localize("UTC"),
    )
    assert bulk_insert(db.session, Person.__table__, frame) == 3
    db.session.commit()
    people = {p.pseudonym: p for p in db.session.scalars(select(Person))}
    one, two, three = people["P-AAAAA1"], people["P-AAAAA2"], people["P-AAAAA3"]
    assert one.first_name == "Tab\there" and three.first_name == "Back\\slash"
    assert two.first_name is None
    assert one.postal_address == "Katu 1\nRivi 2\r\n00100"
    assert two.postal_address is None and three.postal_address == ""
    assert (one.birth_year, two.birth_year) == (1950, None)
    assert (one.lives_alone, two.lives_alone, three.lives_alone) == (True, None, False)
    # Helsinki winter time is UTC+2, summer time UTC+3; stored as UTC
    assert one.created_at == datetime(2026, 1, 1, 8, 0, 0, 123456, tzinfo=UTC)
    assert two.created_at == datetime(2026, 6, 1, 7, 0, tzinfo=UTC)
    assert two.opted_out_at == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert one.opted_out_at is None
    # omitted columns take their defaults
    assert one.source == "form" and one.preferred_language == "fi"


def test_bulk_insert_defaults_fill_a_chunk_whose_index_does_not_start_at_0(app: Flask) -> None:
    frame = people_frame()
    frame.index = pd.RangeIndex(5, 5 + len(frame))  # e.g. the second chunk of a large frame
    assert bulk_insert(db.session, Person.__table__, frame.drop(columns=["created_at"])) == 3
    db.session.commit()
    stored = db.session.scalars(select(Person)).all()
    assert len(stored) == 3
    assert all(p.source == "form" and p.created_at is not None for p in stored)


def test_bulk_insert_dates_floats_and_explicit_ids(app: Flask) -> None:
    person_id = next_id(db.session, Person.__table__)
    bulk_insert(db.session, Person.__table__, people_frame().assign(id=np.arange(3) + person_id))
    arm = db.session.scalars(select(Arm).order_by(Arm.id)).first()
    assert arm is not None
    enrolment = Enrolment(
        person_id=person_id, pilot_id=arm.pilot_id, arm_id=arm.id,
        index_date=date(2026, 1, 1), enrolled_on=date(2026, 1, 1),
    )
    db.session.add(enrolment)
    db.session.flush()
    items = pd.DataFrame(
        {
            "enrolment_id": [enrolment.id] * 3,
            "product_code": ["OR_MINUTE", "LAB_PANEL", "LAB_PANEL"],
            "quantity": [72.5, 1.0, 0.1 + 0.2],
            "service_date": pd.to_datetime(["2025-12-31", "2026-01-01", "2026-02-28"]),
        }
    )
    assert bulk_insert(db.session, CostItem.__table__, items) == 3
    db.session.commit()
    stored = db.session.scalars(select(CostItem).order_by(CostItem.id)).all()
    assert [c.service_date for c in stored] == [
        date(2025, 12, 31), date(2026, 1, 1), date(2026, 2, 28)
    ]
    assert [c.quantity for c in stored] == [72.5, 1.0, 0.1 + 0.2]
    assert [c.kind for c in stored] == ["resource_use"] * 3
    assert all(c.created_at.tzinfo is UTC for c in stored)
    assert next_id(db.session, Person.__table__) == person_id + 3
    # the ORM continues after the explicit ids (PostgreSQL: the sequence was moved on)
    extra = Person(pseudonym="P-AAAAA9")
    db.session.add(extra)
    db.session.flush()
    assert extra.id == person_id + 3


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        ("nickname", ["a", "b", "c"], "no column"),
        ("created_at", pd.to_datetime(["2026-01-01"] * 3), "timezone-aware"),
        ("created_at", [datetime(2026, 1, 1)] * 3, "timezone-aware"),
        ("birth_year", [1950.5, 1951, 1952], "whole numbers"),
        ("lives_alone", ["yes", "no", "yes"], "boolean"),
    ],
)
def test_bulk_insert_refuses_values_that_do_not_fit(
    app: Flask, column: str, values: Any, message: str
) -> None:
    with pytest.raises(BulkInsertError, match=message):
        bulk_insert(db.session, Person.__table__, people_frame(**{column: values}))
    db.session.rollback()
    assert count(Person) == 0


def test_bulk_insert_refuses_times_in_a_date_column(app: Flask) -> None:
    frame = pd.DataFrame(
        {
            "enrolment_id": [1],
            "product_code": ["LAB_PANEL"],
            "quantity": [1.0],
            "service_date": pd.to_datetime(["2026-01-01 12:30"]),
        }
    )
    with pytest.raises(BulkInsertError, match="date"):
        bulk_insert(db.session, CostItem.__table__, frame)
    db.session.rollback()


def test_bulk_insert_accepts_python_objects(app: Flask) -> None:
    helsinki = timezone(timedelta(hours=2))
    frame = pd.DataFrame(
        {
            "pseudonym": ["P-BBBBB1", "P-BBBBB2"],
            "created_at": [datetime(2026, 1, 1, 12, 0, tzinfo=helsinki), None],
            "lives_alone": [True, None],
        }
    )
    frame.loc[1, "created_at"] = datetime(2026, 1, 2, tzinfo=UTC)
    assert bulk_insert(db.session, Person.__table__, frame, chunk_rows=1) == 2
    db.session.commit()
    stored = db.session.scalars(select(Person).order_by(Person.pseudonym)).all()
    assert stored[0].created_at == datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    assert stored[1].created_at == datetime(2026, 1, 2, tzinfo=UTC)
    assert (stored[0].lives_alone, stored[1].lives_alone) == (True, None)


def foreign_keys() -> dict[str, list[Any]]:
    inspector = inspect(db.session.connection())
    return {
        table: sorted(
            (tuple(fk["constrained_columns"]), fk["referred_table"], fk.get("name") or "")
            for fk in inspector.get_foreign_keys(table)
        )
        for table in MODELS
    }


def test_foreign_keys_are_back_after_a_load(app: Flask, data: synthetic.SyntheticData) -> None:
    before = foreign_keys()
    assert sum(len(keys) for keys in before.values()) > 15
    demo_data.load_demo_data(db.session, data)
    db.session.commit()
    assert foreign_keys() == before


def test_a_dangling_reference_still_fails_the_load(app: Flask) -> None:
    before = foreign_keys()
    items = pd.DataFrame(
        {
            "enrolment_id": [987_654],
            "product_code": ["LAB_PANEL"],
            "quantity": [1.0],
            "service_date": pd.to_datetime(["2026-01-01"]),
        }
    )
    # SQLite refuses the row at once, PostgreSQL when the constraint is added back
    with pytest.raises(IntegrityError):
        with foreign_keys_checked_at_end(db.session, [CostItem.__table__]):
            bulk_insert(db.session, CostItem.__table__, items)
        db.session.flush()
    db.session.rollback()
    assert count(CostItem) == 0
    assert foreign_keys() == before


def schema_indexes() -> dict[str, list[Any]]:
    inspector = inspect(db.session.connection())
    return {
        table: sorted((index["name"], tuple(index["column_names"]))
                      for index in inspector.get_indexes(table))
        for table in inspector.get_table_names()
    }


def test_removal_leaves_the_schema_as_it_was(app: Flask, data: synthetic.SyntheticData) -> None:
    indexes, keys = schema_indexes(), foreign_keys()
    demo_data.load_demo_data(db.session, data)
    demo_data.remove_demo_data(db.session)
    db.session.commit()
    assert schema_indexes() == indexes
    assert foreign_keys() == keys


def unindexed_foreign_keys(tables: list[Any]) -> set[tuple[str, str]]:
    inspector = inspect(db.session.connection())
    result = set()
    for table in tables:
        leading = {next(iter(i["column_names"])) for i in inspector.get_indexes(table.name)}
        leading |= {u["column_names"][0] for u in inspector.get_unique_constraints(table.name)}
        leading |= set(inspector.get_pk_constraint(table.name)["constrained_columns"][:1])
        result |= {(table.name, key.parent.name) for key in table.foreign_keys} - {
            (table.name, column) for column in leading
        }
    return result


def test_foreign_key_columns_are_indexed_only_inside_the_block(app: Flask, backend: str) -> None:
    tables = [model.__table__ for model in MODELS.values()]
    before = schema_indexes()
    with indexed_foreign_keys(db.session, tables):
        inside_unindexed = unindexed_foreign_keys(tables)
        inside = schema_indexes()
    if backend == "sqlite":  # SQLite checks foreign keys row by row on deletes
        assert inside_unindexed == set()
    else:  # PostgreSQL drops the checks instead (foreign_keys_checked_at_end)
        assert inside == before
    assert schema_indexes() == before
    db.session.rollback()
