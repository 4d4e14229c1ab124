"""A small populated world for the crawling security tests: a logged-in client per role and
patients in both pilots with personal links at every kind of page, plus what makes the
remaining forms appear: a printed letter waiting (the letter batch form), a stored
measurement (its correction form) and an assisted entry with every answer given but not yet
sent (the staff's submit form on its review page)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.conftest import FORM_TOKEN_FIELD, login
from tests.support.answering import raw_answer
from tests.support.isolation import fresh_globals_per_request
from vaikuttavuus.domain.answers import canonical
from vaikuttavuus.domain.specs import InstrumentSpec, Item
from vaikuttavuus.extensions import db
from vaikuttavuus.models import AccessToken, Answer, Invitation, Response, TimePoint, User
from vaikuttavuus.security.tokens import token_hash
from vaikuttavuus.services.definitions import instrument_spec

ROLES = ("clinician", "pilot_lead", "management", "admin")


@dataclass
class World:
    app: Flask
    clients: dict[str, FlaskClient]
    enrolments: list[Any]
    tokens: dict[str, str]  # purpose → token
    values: dict[str, Any] = field(default_factory=dict)

    def client(self, role: str | None) -> FlaskClient:
        return self.clients[role or "anonymous"]

    def patient_paths(self) -> list[str]:
        return [f"/r/{token}" for token in self.tokens.values()] + [
            f"/r/{self.tokens['answered']}/review"
        ]


def build_world(
    app: Flask,
    make_user: Any,
    enrol_patient: Any,
    patient_link: Any,
    *,
    with_roles: tuple[str, ...] = ROLES,
    **person: Any,
) -> World:
    from tests.web.test_walking_skeleton import IPSS_ANSWERS, answer_pages

    fresh_globals_per_request(app)  # several logged-in clients in one test
    enrolments = [
        enrol_patient(pilot="bph", arm="operating_room", index_offset_days=10, **person),
        enrol_patient(pilot="bph", arm="outpatient_clinic", index_offset_days=-90, **person),
        enrol_patient(pilot="older-adults", arm="outreach", index_offset_days=0, **person),
        enrol_patient(pilot="older-adults", arm="outreach", index_offset_days=-182, **person),
        enrol_patient(pilot="bph", arm="operating_room", index_offset_days=10, **person),
    ]
    tokens = {
        "bph_baseline": patient_link(enrolments[0], "baseline"),
        "bph_m3": patient_link(enrolments[1], "m3"),
        "oa_baseline": patient_link(enrolments[2], "baseline"),
        "oa_m6": patient_link(enrolments[3], "m6"),
        "answered": patient_link(enrolments[4], "baseline"),
    }
    answer_pages(app.test_client(), tokens["answered"], IPSS_ANSWERS)
    clients = {"anonymous": app.test_client()}
    for role in with_roles:
        make_user(f"world_{role}", role)
        client = app.test_client()
        assert login(client, f"world_{role}").status_code == 302
        clients[role] = client
    # A printed letter waiting for the letter batch (someone with only a postal address).
    letter = enrol_patient(pilot="bph", arm="operating_room", index_offset_days=10, **person)
    letter.person.postal_address = "Testikatu 1\n15100 Lahti"
    _queue_letter(letter)
    # A stored measurement on the sample patient's page, with its "Correct" link.
    _store_measurement(enrolments[1])
    # An assisted entry in progress: every answer given, not yet sent.
    assisted = enrol_patient(pilot="bph", arm="operating_room", index_offset_days=10, **person)
    assisted_invitation = _assisted_entry_in_progress(assisted)
    enrolments += [letter, assisted]
    db.session.commit()
    values = {
        "pilot_code": "bph",
        "pseudonym": enrolments[1].person.pseudonym,
        "token": tokens["bph_baseline"],
        "number": 1,
        "invitation_id": assisted_invitation.id,
    }
    return World(app, clients, enrolments, tokens, values)


def baseline_invitation(enrolment: Any) -> Invitation:
    invitation = db.session.scalar(
        select(Invitation)
        .join(TimePoint, Invitation.time_point_id == TimePoint.id)
        .where(Invitation.enrolment_id == enrolment.id, TimePoint.code == "baseline")
    )
    assert invitation is not None
    return invitation


def _queue_letter(enrolment: Any) -> None:
    from vaikuttavuus.services import messaging

    messaging.resend(
        db.session, baseline_invitation(enrolment), messaging.make_clock(), channel="letter"
    )
    db.session.commit()


def _store_measurement(enrolment: Any) -> None:
    from datetime import date, timedelta

    from vaikuttavuus.services.measurements import MeasurementEntry, add_measurement

    day = (date.today() - timedelta(days=3)).isoformat()
    add_measurement(db.session, enrolment, MeasurementEntry("qmax", "12,5", day), user=None)
    db.session.commit()


def _assisted_entry_in_progress(enrolment: Any) -> Invitation:
    """Answer every item of the enrolment's baseline questionnaires as a clinician's assisted
    entry, without sending: the review page then offers the staff's submit form."""
    import random

    from vaikuttavuus.services import assisted, patient_flow

    invitation = baseline_invitation(enrolment)
    user_id = db.session.scalar(select(User.id).where(User.role == "clinician").limit(1))
    assert user_id is not None, "the assisted entry needs a clinician"
    responses = assisted.responses_for(db.session, invitation, "fi", user_id)
    rng = random.Random(11)
    for step in patient_flow.steps_for(responses):
        response = next(r for r in responses if r.id == step.response_id)
        values = {
            item.id: canonical(step.spec, item, raw_answer(step.spec, item, rng))
            for item in step.section.items
        }
        patient_flow.save_section(db.session, response, step.section, values, "fi")
    assisted.mark_assisted(db.session, responses, user_id)
    db.session.commit()
    return invitation


def form_token_of(html: str) -> str | None:
    match = FORM_TOKEN_FIELD.search(html)
    return match.group(1) if match else None


def link_answers(token: str) -> dict[tuple[int, str], str]:
    """Stored answers of a link's invitation: (response id, item id) → value."""
    invitation_id = db.session.scalar(
        select(AccessToken.invitation_id).where(AccessToken.token_hash == token_hash(token))
    )
    rows = db.session.execute(
        select(Answer.response_id, Answer.item_id, Answer.value)
        .join(Response, Answer.response_id == Response.id)
        .where(Response.invitation_id == invitation_id)
    ).all()
    return {(int(r[0]), str(r[1])): str(r[2]) for r in rows}


def link_items(token: str) -> dict[int, tuple[InstrumentSpec, dict[str, Item]]]:
    """The instrument spec and items of each response of a link's invitation."""
    invitation_id = db.session.scalar(
        select(AccessToken.invitation_id).where(AccessToken.token_hash == token_hash(token))
    )
    result = {}
    for response in db.session.scalars(
        select(Response).where(Response.invitation_id == invitation_id)
    ):
        spec = instrument_spec(response.instrument_version)
        result[response.id] = (spec, {item.id: item for item in spec.items})
    return result


def all_answers() -> dict[tuple[int, str], str]:
    """Every stored answer: (response id, item id) → value."""
    rows = db.session.execute(select(Answer.response_id, Answer.item_id, Answer.value)).all()
    return {(int(r[0]), str(r[1])): str(r[2]) for r in rows}


def response_items(response_ids: set[int]) -> dict[int, tuple[InstrumentSpec, dict[str, Item]]]:
    result = {}
    for response in db.session.scalars(select(Response).where(Response.id.in_(response_ids))):
        spec = instrument_spec(response.instrument_version)
        result[response.id] = (spec, {item.id: item for item in spec.items})
    return result


def submitted_responses() -> int:
    from sqlalchemy import func

    return int(
        db.session.scalar(
            select(func.count()).select_from(Response).where(Response.status == "submitted")
        )
        or 0
    )
