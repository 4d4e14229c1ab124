"""Data-subject rights in the service layer: what access exports, what withdrawal and erasure
change, and that the cohort summary stays consistent with the documented rule
(``docs/privacy.md``): erasure keeps every report as it was; erasure with deleted answers makes
every report what it would be had the person never answered."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
import pytest
from flask import Flask
from sqlalchemy import func, select

from tests.support.answering import answer_and_submit
from vaikuttavuus.extensions import db
from vaikuttavuus.models import (
    AccessToken,
    Answer,
    AuditEvent,
    Base,
    ClinicalMeasurement,
    CostItem,
    Enrolment,
    Invitation,
    OutboxMessage,
    Person,
    Pilot,
    Procedure,
    Response,
    ServiceExposure,
    TimePoint,
    User,
)
from vaikuttavuus.services import audit, privacy
from vaikuttavuus.services.analytics import CohortAnalysis
from vaikuttavuus.services.cohort_summary import CohortSummary, cohort_summary

NOW = datetime.now(UTC)


def _invitation(enrolment: Enrolment, code: str) -> Invitation:
    invitation = db.session.scalar(
        select(Invitation)
        .join(TimePoint, Invitation.time_point_id == TimePoint.id)
        .where(Invitation.enrolment_id == enrolment.id, TimePoint.code == code)
    )
    assert invitation is not None
    return invitation


def _user(role: str, pilots: tuple[str, ...] = ()) -> User:
    from vaikuttavuus.services.users import create_user

    user = create_user(
        db.session,
        username=f"{role}_{'_'.join(pilots) or 'all'}",
        password="Salasana-Testi-2026",
        role=role,
        pilot_codes=pilots,
    )
    db.session.commit()
    return user


@pytest.fixture
def subject(app: Flask, enrol_patient: Any, patient_link: Any) -> dict[str, Any]:
    """A person in both pilots with something in every table that refers to them."""
    bph = enrol_patient(
        pilot="bph",
        arm="operating_room",
        index_offset_days=-90,
        first_name="Aino",
        last_name="Virtanen",
        email="aino@example.invalid",
        phone="+358401234567",
        postal_address="Kotikatu 1, 15100 Lahti",
        identity_code="131052-308T",
    )
    person = bph.person
    from vaikuttavuus.services.enrolment import enrol

    older = enrol(
        db.session, person, pilot_code="older-adults", arm_code="outreach", index_date=date.today()
    )
    db.session.commit()
    token = patient_link(bph, "m3")
    thanks = {"overall": "5", "improve": "Virtanen kiittää"}
    answer_and_submit(db.session, token, seed=1, overrides=thanks)
    open_token = patient_link(older, "baseline")
    answer_and_submit(db.session, open_token, seed=2, submit=False)  # started, not sent
    first = ClinicalMeasurement(
        enrolment_id=bph.id, measure_code="qmax", value_num=8.0, unit="ml/s",
        measured_on=date.today(),
    )  # fmt: skip
    db.session.add(first)
    db.session.flush()
    corrected = ClinicalMeasurement(
        enrolment_id=bph.id, measure_code="qmax", value_num=9.5, unit="ml/s",
        measured_on=date.today(), correction_reason="typo, told by Aino Virtanen",
    )  # fmt: skip
    db.session.add(corrected)
    db.session.flush()
    first.superseded_by_id, first.superseded_at = corrected.id, NOW
    db.session.add_all(
        [
            Procedure(enrolment_id=bph.id, procedure_type="turp", setting="operating_room",
                      performed_on=date.today()),
            CostItem(enrolment_id=bph.id, kind="direct", amount_eur=1234.5, price_year=2025,
                     service_date=date.today(), description="Aino's ward stay"),
            ServiceExposure(enrolment_id=older.id, service_type="outreach",
                            provider_sector="county", started_on=date.today(), contacts=3),
            OutboxMessage(invitation_id=_invitation(older, "baseline").id, channel="sms",
                          purpose="invitation", dedupe_key="t-1", recipient="+358401234567",
                          payload={"link": "secret"}, status="pending"),
            OutboxMessage(invitation_id=_invitation(bph, "m3").id, channel="email",
                          purpose="invitation", dedupe_key="t-2",
                          recipient="aino@example.invalid", status="sent", sent_at=NOW),
        ]
    )  # fmt: skip
    with app.test_request_context():
        audit.record("view_patient", person_id=person.id, pilot_code="bph", actor="kliinikko")
        audit.record("view_patient", person_id=person.id + 999, actor="someone")
    db.session.commit()
    return {"person": person, "bph": bph, "older": older, "token": token, "open": open_token}


# -- access --------------------------------------------------------------------------------------


def test_access_export_holds_everything_stored_about_the_person(
    app: Flask, subject: dict[str, Any]
) -> None:
    person = subject["person"]
    scope = privacy.scope_for(db.session, _user("admin"), person.pseudonym)
    assert scope is not None and scope.complete
    data = privacy.subject_access(db.session, scope, "en")
    text = json.dumps(data, ensure_ascii=False)  # JSON-serialisable as it stands

    assert data["format"] == privacy.ACCESS_FORMAT
    for column in Person.__table__.columns:
        assert column.key in data["person"]
    assert data["person"]["last_name"] == "Virtanen"
    assert data["person"]["email"] == "aino@example.invalid"
    assert data["person"]["identity_hash"] == person.identity_hash
    assert "131052-308T" not in text  # never stored, so never exported

    by_pilot = {e["pilot"]: e for e in data["enrolments"]}
    assert set(by_pilot) == {"bph", "older-adults"}
    bph = by_pilot["bph"]
    submitted = [r for r in bph["responses"] if r["status"] == "submitted"]
    assert {r["instrument"]["code"] for r in submitted} == {"ipss", "eq5d5l", "prem_bph"}
    assert all(r["instrument"]["version"] for r in submitted)
    prem = next(r for r in submitted if r["instrument"]["code"] == "prem_bph")
    improve = next(a for a in prem["answers"] if a["item_id"] == "improve")
    assert improve["value"] == "Virtanen kiittää" and improve["question"]
    assert len(bph["measurements"]) == 2  # the corrected value and its history
    assert {m["value_num"] for m in bph["measurements"]} == {8.0, 9.5}
    assert bph["procedures"][0]["procedure_type"] == "turp"
    assert bph["costs"][0]["amount_eur"] == 1234.5
    assert by_pilot["older-adults"]["service_exposures"][0]["contacts"] == 3
    assert by_pilot["older-adults"]["responses"][0]["status"] == "in_progress"
    m3 = next(i for i in bph["invitations"] if i["time_point"] == "m3")
    assert m3["messages"][0]["recipient"] == "aino@example.invalid"
    assert m3["links"] and "token_hash" not in m3["links"][0]
    assert [e["action"] for e in data["audit_events"]] == ["view_patient"]
    assert "ip_address" not in data["audit_events"][0]
    for token in (subject["token"], subject["open"]):
        assert token not in text


def test_access_export_covers_every_table_about_an_enrolment(
    app: Flask, subject: dict[str, Any]
) -> None:
    """A table added later that refers to an enrolment must be added to the export too."""
    exported = {
        "invitations", "responses", "clinical_measurements", "procedures", "cost_items",
        "service_exposures",
    }  # fmt: skip
    referring = {
        table.name
        for table in Base.metadata.sorted_tables
        if any(fk.column.table.name == "enrolments" for fk in table.foreign_keys)
    }
    assert referring - exported == set(), "export these in services/privacy.py too"
    scope = privacy.scope_for(db.session, _user("admin"), subject["person"].pseudonym)
    assert scope is not None
    data = privacy.subject_access(db.session, scope)
    stored_answers = db.session.scalar(
        select(func.count())
        .select_from(Answer)
        .join(Response, Answer.response_id == Response.id)
        .join(Enrolment, Response.enrolment_id == Enrolment.id)
        .where(Enrolment.person_id == subject["person"].id)
    )
    exported_answers = sum(
        len(r["answers"]) for e in data["enrolments"] for r in e["responses"]
    )
    assert exported_answers == stored_answers == data["counts"]["answers"]


def test_scope_follows_the_pilots_a_user_leads(app: Flask, subject: dict[str, Any]) -> None:
    pseudonym = subject["person"].pseudonym
    lead = privacy.scope_for(db.session, _user("pilot_lead", ("bph",)), pseudonym)
    assert lead is not None and lead.pilot_codes == ("bph",) and not lead.complete
    data = privacy.subject_access(db.session, lead)
    assert [e["pilot"] for e in data["enrolments"]] == ["bph"]
    other = _user("pilot_lead", ("older-adults",))
    assert privacy.scope_for(db.session, other, pseudonym) is not None
    assert privacy.scope_for(db.session, _user("clinician", ("bph",)), pseudonym) is None
    assert privacy.scope_for(db.session, _user("management"), pseudonym) is None
    assert privacy.scope_for(db.session, _user("admin"), "NO-SUCH") is None


# -- withdrawal ----------------------------------------------------------------------------------


def test_withdrawal_stops_the_future_and_keeps_what_was_sent(
    app: Flask, subject: dict[str, Any]
) -> None:
    older = subject["older"]
    submitted_before = _submitted(subject["bph"])
    outcome = privacy.withdraw(db.session, older, reason="does not want to continue")
    db.session.commit()
    db.session.expire_all()
    assert older.status == "withdrawn" and older.withdrawn_at is not None
    statuses = {i.time_point.code: i.status for i in _invitations(older)}
    assert statuses == {"baseline": "cancelled", "m6": "cancelled", "m12": "cancelled"}
    assert outcome.invitations_cancelled == 3
    assert outcome.unsubmitted_responses_removed == 4  # the started, never sent questionnaire
    assert _responses(older) == 0
    messages = db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    assert [m.status for m in messages] == ["cancelled", "sent"]
    assert db.session.scalar(
        select(func.count()).select_from(AccessToken).where(AccessToken.revoked_at.is_(None))
        .join(Invitation, AccessToken.invitation_id == Invitation.id)
        .where(Invitation.enrolment_id == older.id)
    ) == 0  # fmt: skip
    # The other pilot is untouched.
    assert subject["bph"].status == "active"
    assert _submitted(subject["bph"]) == submitted_before > 0


def _invitations(enrolment: Enrolment) -> list[Invitation]:
    statement = select(Invitation).where(Invitation.enrolment_id == enrolment.id)
    return list(db.session.scalars(statement))


def _responses(enrolment: Enrolment) -> int:
    return int(
        db.session.scalar(
            select(func.count()).select_from(Response).where(Response.enrolment_id == enrolment.id)
        )
        or 0
    )


def _submitted(enrolment: Enrolment) -> int:
    return int(
        db.session.scalar(
            select(func.count())
            .select_from(Response)
            .where(Response.enrolment_id == enrolment.id, Response.status == "submitted")
        )
        or 0
    )


# -- erasure -------------------------------------------------------------------------------------


def test_withdrawal_reasons_are_masked_and_cleared_by_a_later_erasure(
    app: Flask, subject: dict[str, Any]
) -> None:
    """A reason is free text kept with the enrolment: an identity code in it is masked at
    once, and a later erasure clears the reason (the audit trail never had it)."""
    person, older = subject["person"], subject["older"]
    privacy.withdraw(db.session, older, reason="Aino Virtanen 131052-308T soitti")
    db.session.commit()
    db.session.expire_all()
    assert older.withdrawal_reason == "Aino Virtanen ******-**** soitti"
    privacy.erase(db.session, person)
    db.session.commit()
    db.session.expire_all()
    reasons = {e.pilot.code: e.withdrawal_reason for e in person.enrolments}
    assert reasons == {"bph": "erasure", "older-adults": None}


def test_erasure_removes_what_identifies_and_keeps_the_trail(
    app: Flask, subject: dict[str, Any]
) -> None:
    person = subject["person"]
    events_before = db.session.scalar(select(func.count()).select_from(AuditEvent))
    answers_before = _answer_items(person, submitted_only=True)
    privacy.erase(db.session, person)
    db.session.commit()
    db.session.expire_all()
    for name in privacy.IDENTIFYING_PERSON_FIELDS:
        assert getattr(person, name) is None, name
    assert person.erased_at is not None and person.pseudonym
    assert person.birth_year == 1955  # kept for the statistics
    assert {e.status for e in person.enrolments} == {"withdrawn"}
    answers_after = _answer_items(person)
    assert "improve" in answers_before and "improve" not in answers_after  # free text
    # Submitted answers stay (less free text); the started, never sent ones were removed.
    assert answers_after == answers_before - {"improve", "comments"}
    for message in db.session.scalars(select(OutboxMessage)):
        assert message.recipient is None and message.payload == {}
    assert db.session.scalar(
        select(func.count()).select_from(AccessToken).where(AccessToken.revoked_at.is_(None))
    ) == 0  # fmt: skip
    assert db.session.scalar(select(CostItem.description)) is None
    reasons = set(db.session.scalars(select(ClinicalMeasurement.correction_reason)))
    assert reasons == {None}
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == events_before
    # Nothing in the whole database still names the person.
    dump = json.dumps(
        privacy.subject_access(
            db.session, privacy.scope_for(db.session, _user("admin"), person.pseudonym)  # type: ignore[arg-type]
        ),
        ensure_ascii=False,
    )
    for identifying in ("Virtanen", "Aino", "aino@example", "+35840", "Kotikatu"):
        assert identifying not in dump.replace('"actor": "kliinikko"', "")


def _answer_items(person: Person, submitted_only: bool = False) -> set[str]:
    statement = (
        select(Answer.item_id)
        .join(Response, Answer.response_id == Response.id)
        .join(Enrolment, Response.enrolment_id == Enrolment.id)
        .where(Enrolment.person_id == person.id)
    )
    if submitted_only:
        statement = statement.where(Response.status == "submitted")
    return set(db.session.scalars(statement))


# -- aggregate consistency -----------------------------------------------------------------------


def _cohort(enrol_patient: Any, patient_link: Any, size: int = 6) -> list[tuple[Any, str]]:
    people = []
    for n in range(size * 2):
        arm = "operating_room" if n % 2 else "outpatient_clinic"
        enrolment = enrol_patient(pilot="bph", arm=arm, index_offset_days=10)
        people.append((enrolment, patient_link(enrolment, "baseline")))
    for n, (_, token) in enumerate(people[1:], start=1):
        answer_and_submit(db.session, token, seed=n)
    return people


def _summary() -> CohortSummary:
    db.session.expire_all()
    pilot = db.session.scalar(select(Pilot).where(Pilot.code == "bph"))
    assert pilot is not None
    return cohort_summary(CohortAnalysis(db.session, pilot))


ENROLLED = ["arm", "enrolled"]
ANSWERED = ["time_point", "arm", "invited", "responded", "rate", "ci_low", "ci_high"]
"""The summary's figures of people and answers. Withdrawals and the windows still open are
left out: erasure and withdrawal withdraw the enrolment and cancel its open questionnaires,
which is what they are, not a change in a figure already given."""


def _frames(summary: CohortSummary) -> dict[str, pd.DataFrame]:
    return {
        "enrolment": summary.enrolment.table[ENROLLED],
        "response_rates": summary.response_rates.table[ANSWERED],
        "outcome": summary.outcome.table,
    }


def _assert_same(left: CohortSummary, right: CohortSummary) -> None:
    a, b = _frames(left), _frames(right)
    for name in ("enrolment", "response_rates", "outcome"):
        pd.testing.assert_frame_equal(
            a[name].reset_index(drop=True), b[name].reset_index(drop=True), check_dtype=False
        )


def _differs(left: CohortSummary, right: CohortSummary) -> bool:
    try:
        _assert_same(left, right)
    except AssertionError:
        return True
    return False


def test_erasure_keeps_every_figure_of_the_cohort_summary(
    app: Flask, enrol_patient: Any, patient_link: Any
) -> None:
    people = _cohort(enrol_patient, patient_link)
    answer_and_submit(db.session, people[0][1], seed=99)
    before = _summary()
    privacy.erase(db.session, people[0][0].person)
    privacy.erase(db.session, people[3][0].person)
    db.session.commit()
    after = _summary()
    _assert_same(before, after)


def test_erasure_with_answers_recomputes_as_if_never_answered(
    app: Flask, enrol_patient: Any, patient_link: Any
) -> None:
    people = _cohort(enrol_patient, patient_link)
    erased, token = people[0]
    # The reference: the same cohort where this person never answered (invitation cancelled).
    invitation = _invitation(erased, "baseline")
    invitation.status = "cancelled"
    db.session.commit()
    never_answered = _summary()
    invitation.status = "open"
    db.session.commit()
    answer_and_submit(db.session, token, seed=1234, overrides={"ipss1": "5", "ipss2": "5"})
    answered = _summary()
    assert _differs(answered, never_answered)  # the person's answers did count

    outcome = privacy.erase(db.session, erased.person, delete_answers=True)
    db.session.commit()
    assert outcome.responses_deleted == 2
    _assert_same(_summary(), never_answered)


def test_withdrawal_keeps_the_figures_already_given(
    app: Flask, enrol_patient: Any, patient_link: Any
) -> None:
    people = _cohort(enrol_patient, patient_link)
    before = _summary()
    for enrolment, _token in people[1:4]:
        privacy.withdraw(db.session, enrolment)
    db.session.commit()
    after = _summary()
    # Cancelled future questionnaires are not counted as unanswered.
    _assert_same(before, after)
