"""Adding people to a pilot: the person (identity code only as a keyed hash) and the enrolment."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select

from vaikuttavuus import change_log
from vaikuttavuus.county_time import county_today
from vaikuttavuus.database import AnySession
from vaikuttavuus.domain import identity
from vaikuttavuus.models import Arm, Enrolment, Person, Pilot
from vaikuttavuus.security.tokens import pseudonym_key
from vaikuttavuus.services.schedule import ensure_invitations


class EnrolmentError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class NewPerson:
    identity_code: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    birth_year: int | None = None
    sex: str | None = None
    lives_alone: bool | None = None
    email: str | None = None
    phone: str | None = None
    postal_address: str | None = None
    preferred_language: str = "fi"


def hash_identity_code(code: str) -> str:
    """The keyed hash under which an identity code is stored; the code itself never is."""
    problem = identity.validate(code)
    if problem is not None:
        raise EnrolmentError("identity_code", f"invalid personal identity code ({problem})")
    return identity.identity_hash(identity.normalise(code), pseudonym_key())


def find_person(
    session: AnySession, *, identity_code: str | None = None, pseudonym: str | None = None
) -> Person | None:
    if identity_code:
        return session.scalar(
            select(Person).where(Person.identity_hash == hash_identity_code(identity_code))
        )
    if pseudonym:
        return session.scalar(select(Person).where(Person.pseudonym == pseudonym))
    return None


def _new_pseudonym(session: AnySession) -> str:
    rng = random.SystemRandom()
    while True:
        candidate = identity.new_pseudonym(rng)
        if session.scalar(select(Person.id).where(Person.pseudonym == candidate)) is None:
            return candidate


def add_person(session: AnySession, data: NewPerson, *, source: str = "form") -> Person:
    identity_hash = hash_identity_code(data.identity_code) if data.identity_code else None
    if identity_hash and session.scalar(
        select(Person.id).where(Person.identity_hash == identity_hash)
    ):
        raise EnrolmentError("exists", "a person with this identity code already exists")
    person = Person(
        pseudonym=_new_pseudonym(session),
        identity_hash=identity_hash,
        first_name=data.first_name,
        last_name=data.last_name,
        birth_year=data.birth_year,
        sex=data.sex,
        lives_alone=data.lives_alone,
        email=data.email,
        phone=data.phone,
        postal_address=data.postal_address,
        preferred_language=data.preferred_language,
        source=source,
    )
    with change_log.analysis_neutral_scope(session):  # in no pilot until enrolled
        session.add(person)
    return person


def enrol(
    session: AnySession,
    person: Person,
    *,
    pilot_code: str,
    arm_code: str,
    index_date: date,
    enrolled_on: date | None = None,
    unit: str | None = None,
    clinician_code: str | None = None,
    today: date | None = None,
) -> Enrolment:
    """Enrol ``person`` in a pilot arm and create the invitations of its time points."""
    pilot = session.scalar(select(Pilot).where(Pilot.code == pilot_code))
    if pilot is None:
        raise EnrolmentError("pilot", f"unknown pilot '{pilot_code}'")
    arm = session.scalar(select(Arm).where(Arm.pilot_id == pilot.id, Arm.code == arm_code))
    if arm is None:
        raise EnrolmentError("arm", f"pilot '{pilot_code}' has no arm '{arm_code}'")
    if session.scalar(
        select(Enrolment.id).where(Enrolment.person_id == person.id, Enrolment.pilot_id == pilot.id)
    ):
        raise EnrolmentError("enrolled", "the person is already enrolled in this pilot")
    enrolment = Enrolment(
        person_id=person.id,
        pilot_id=pilot.id,
        arm_id=arm.id,
        index_date=index_date,
        enrolled_on=enrolled_on or county_today(),
        unit=unit,
        clinician_code=clinician_code,
    )
    with change_log.pilot_scope(session, pilot.id):
        session.add(enrolment)
        session.flush()
        ensure_invitations(session, enrolment, today=today)
    return enrolment
