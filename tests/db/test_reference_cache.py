"""The clinician page's cohort reference (median and IQR per arm and time point) comes from
scored responses kept per process and brought up to date with what each request's snapshot
sees: after new submits (appended), after an erasure that deleted answers (read whole again)
and in a snapshot older than the cache, the numbers equal a fresh read and scoring."""

from __future__ import annotations

from datetime import date, timedelta

from flask import Flask
from sqlalchemy import select

from tests.support.answering import answer_and_submit
from tests.support.cohort_data import cohort_app, cohort_template  # noqa: F401
from vaikuttavuus.database import read_snapshot
from vaikuttavuus.extensions import db
from vaikuttavuus.models import Enrolment, Invitation, Person, Pilot, TimePoint
from vaikuttavuus.services import patient_flow, privacy, reference_cache
from vaikuttavuus.services.enrolment import NewPerson, add_person, enrol
from vaikuttavuus.services.patient_outcomes import PatientOverview, patient_overview


def _patient(pilot_code: str) -> Enrolment:
    """An enrolment of the pilot with submitted answers at several time points."""
    enrolments = db.session.scalars(
        select(Enrolment)
        .join(Pilot, Enrolment.pilot_id == Pilot.id)
        .where(Pilot.code == pilot_code)
        .order_by(Enrolment.id)
    ).all()
    for enrolment in enrolments:
        overview = patient_overview(db.session, enrolment, "fi", date.today(), cached=False)
        if sum(row.patient is not None for row in overview.series[0].rows) >= 2:
            return enrolment
    raise AssertionError("no patient with two answered time points")


def _submit_new_patient(number: int, arm: str = "operating_room") -> Person:
    person = add_person(
        db.session,
        NewPerson(first_name="Uusi", last_name=f"Potilas{number}", birth_year=1950, sex="male"),
    )
    enrolment = enrol(
        db.session,
        person,
        pilot_code="bph",
        arm_code=arm,
        index_date=date.today() + timedelta(days=10),
    )
    invitation = db.session.scalar(
        select(Invitation)
        .join(TimePoint, Invitation.time_point_id == TimePoint.id)
        .where(Invitation.enrolment_id == enrolment.id, TimePoint.code == "baseline")
    )
    assert invitation is not None
    token = patient_flow.issue_token(db.session, invitation)
    db.session.commit()
    answer_and_submit(db.session, token, seed=number)
    return person


def _both(enrolment: Enrolment) -> tuple[PatientOverview, PatientOverview]:
    with read_snapshot():
        cached = patient_overview(db.session, enrolment, "fi", date.today())
        fresh = patient_overview(db.session, enrolment, "fi", date.today(), cached=False)
    return cached, fresh


def _baseline_n(overview: PatientOverview) -> int:
    return overview.instruments[0].series[0].rows[0].n


def test_cached_reference_equals_a_fresh_one_as_the_data_change(cohort_app: Flask) -> None:  # noqa: F811
    reference_cache.clear()
    enrolment = _patient("bph")
    cached, fresh = _both(enrolment)
    assert cached.instruments == fresh.instruments
    assert reference_cache.statistics()["reads"] == 2  # IPSS and EQ-5D-5L, read once each
    _both(enrolment)
    assert reference_cache.statistics()["hits"] == 2
    same_arm = enrolment.arm.code == "operating_room"
    before = _baseline_n(cached)

    people = [_submit_new_patient(n) for n in range(3)]  # new submits: appended
    cached, fresh = _both(enrolment)
    assert cached.instruments == fresh.instruments
    assert _baseline_n(cached) == before + (3 if same_arm else 0)
    assert reference_cache.statistics()["appends"] == 2

    privacy.erase(db.session, people[0], delete_answers=True)  # responses deleted: read again
    db.session.commit()
    cached, fresh = _both(enrolment)
    assert cached.instruments == fresh.instruments
    assert reference_cache.statistics()["reads"] == 4

    # A request whose snapshot is older than what another request already cached.
    with read_snapshot():
        older_fresh = patient_overview(db.session, enrolment, "fi", date.today(), cached=False)
        with cohort_app.app_context():  # another request: submits and views the page
            _submit_new_patient(10)
            newer = patient_overview(db.session, db.session.get(Enrolment, enrolment.id), "fi",
                                     date.today())  # fmt: skip
            db.session.remove()
        older = patient_overview(db.session, enrolment, "fi", date.today())
    assert older.instruments == older_fresh.instruments
    assert newer.instruments != older.instruments or not same_arm
    cached, fresh = _both(enrolment)
    assert cached.instruments == fresh.instruments == newer.instruments
