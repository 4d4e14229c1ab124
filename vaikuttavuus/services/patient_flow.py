"""A patient answering through a personal link: resolve the link, walk the pages, submit.

The flow is durable at every step: each page's answers are written when the page is sent
(upserts keyed by response and item), responses are unique per enrolment, time point and
instrument, and submitting twice, from two devices or after a timeout changes nothing more.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import joinedload

from vaikuttavuus import change_log
from vaikuttavuus.county_time import county_today
from vaikuttavuus.database import AnySession, affected_rows, insert_for, upsert
from vaikuttavuus.domain.answers import StoredAnswer, missing_required
from vaikuttavuus.domain.specs import InstrumentSpec, Section, UnitContact
from vaikuttavuus.models import (
    AccessToken,
    Answer,
    Enrolment,
    InstrumentVersion,
    Invitation,
    Person,
    Pilot,
    Response,
    ServiceExposure,
    TimePoint,
)
from vaikuttavuus.security.tokens import token_hash
from vaikuttavuus.services.definitions import current_instrument, instrument_spec, pilot_spec

OPEN_STATUSES = frozenset({"scheduled", "open"})

LAST_USED_RESOLUTION = timedelta(minutes=10)
"""A link's ``last_used_at`` is refreshed at most this often: every page view of a patient
answering would otherwise be a write, and writes are what a busy database queues on."""

# Everything a patient page needs from the link, in one round trip. The definitions' JSON
# is deferred: specs are parsed once per content hash (services.definitions) and the JSON
# is only read on a cache miss.
_LINK_LOADING = (
    joinedload(Invitation.enrolment).joinedload(Enrolment.person),
    joinedload(Invitation.enrolment).joinedload(Enrolment.pilot).defer(Pilot.definition),
    joinedload(Invitation.time_point).selectinload(TimePoint.instruments),
)


@dataclass(frozen=True)
class LinkState:
    """What a token leads to. ``problem`` is None when answering may go on."""

    problem: str | None  # "invalid" | "completed" | "not_open_yet" | "opted_out"
    invitation: Invitation | None = None
    token_digest: str = ""

    @property
    def usable(self) -> bool:
        return self.problem is None


@dataclass(frozen=True)
class Step:
    """One page: one section of one instrument."""

    number: int
    response_id: int
    instrument_code: str
    spec: InstrumentSpec
    section: Section


def resolve(session: AnySession, token: str, today: date | None = None) -> LinkState:
    """Look a token up. Unknown, revoked, cancelled and expired links look the same."""
    digest = token_hash(token)
    row = session.execute(
        select(AccessToken, Invitation)
        .join(Invitation, AccessToken.invitation_id == Invitation.id)
        .where(AccessToken.token_hash == digest)
        .options(*_LINK_LOADING)
    ).first()
    if row is None:
        return LinkState("invalid", token_digest=digest)
    access, invitation = row
    today = today or county_today()
    if invitation.status == "completed":
        return LinkState("completed", invitation, digest)
    if access.revoked_at is not None or invitation.status in {"cancelled", "expired"}:
        return LinkState("invalid", token_digest=digest)
    enrolment = invitation.enrolment
    person = enrolment.person
    if invitation.status == "opted_out" or person.opted_out_at is not None:
        return LinkState("opted_out", invitation, digest)
    if enrolment.status == "withdrawn" or person.erased_at is not None:
        return LinkState("invalid", token_digest=digest)
    if today > invitation.closes_on:
        return LinkState("invalid", token_digest=digest)
    if today < invitation.opens_on:
        return LinkState("not_open_yet", invitation, digest)
    now = datetime.now(UTC)
    if access.last_used_at is None or access.last_used_at < now - LAST_USED_RESOLUTION:
        access.last_used_at = now
    if invitation.opened_at is None or invitation.status == "scheduled":
        with change_log.pilot_scope(session, enrolment.pilot_id):
            if invitation.opened_at is None:
                invitation.opened_at = now
            if invitation.status == "scheduled":
                invitation.status = "open"
    return LinkState(None, invitation, digest)


def issue_token(session: AnySession, invitation: Invitation) -> str:
    """A new personal link token for ``invitation``; only its hash is stored."""
    from vaikuttavuus.security.tokens import new_token

    token = new_token()
    session.add(AccessToken(invitation_id=invitation.id, token_hash=token_hash(token)))
    session.flush()
    return token


def ensure_responses(
    session: AnySession,
    invitation: Invitation,
    language: str,
    *,
    mode: str = "web",
    proxy: bool = False,
    entered_by_user_id: int | None = None,
) -> list[Response]:
    """The invitation's responses in questionnaire order, created on first use (``mode``
    ``web`` for the patient's own link; assisted entry passes ``phone`` or ``paper``).

    Creation is an INSERT … ON CONFLICT DO NOTHING on (enrolment, time point, instrument), so
    two devices opening the link at once still share one response per instrument.
    """
    time_point: TimePoint = invitation.time_point
    codes = [link.instrument_code for link in time_point.instruments]
    existing = _responses(session, invitation, codes)
    missing = [code for code in codes if code not in existing]
    if missing:
        now = datetime.now(UTC)
        rows = []
        for code in missing:
            version = current_instrument(session, code)
            rows.append(
                {
                    "enrolment_id": invitation.enrolment_id,
                    "time_point_id": invitation.time_point_id,
                    "invitation_id": invitation.id,
                    "instrument_version_id": version.id,
                    "instrument_code": code,
                    "status": "in_progress",
                    "language": language,
                    "mode": mode,
                    "proxy": proxy,
                    "entered_by_user_id": entered_by_user_id,
                    "idempotency_key": secrets.token_hex(16),
                    "started_at": now,
                    "updated_at": now,
                }
            )
        statement = insert_for(session, Response.__table__).on_conflict_do_nothing(
            index_elements=["enrolment_id", "time_point_id", "instrument_code"]
        )
        with change_log.pilot_scope(session, invitation.enrolment.pilot_id):
            session.execute(statement, rows)
        existing = _responses(session, invitation, codes)
    return [existing[code] for code in codes]


def _responses(
    session: AnySession, invitation: Invitation, codes: list[str]
) -> dict[str, Response]:
    found = session.scalars(
        select(Response)
        .where(
            Response.enrolment_id == invitation.enrolment_id,
            Response.time_point_id == invitation.time_point_id,
            Response.instrument_code.in_(codes),
        )
        .options(joinedload(Response.instrument_version).defer(InstrumentVersion.definition))
    )
    return {response.instrument_code: response for response in found}


def steps_for(responses: list[Response]) -> list[Step]:
    steps: list[Step] = []
    for response in responses:
        spec = instrument_spec(response.instrument_version)
        for section in spec.sections:
            steps.append(Step(len(steps) + 1, response.id, response.instrument_code, spec, section))
    return steps


def stored_answers(session: AnySession, response_ids: list[int]) -> dict[int, dict[str, str]]:
    """Stored answers per response: response id → item id → stored value."""
    result: dict[int, dict[str, str]] = {rid: {} for rid in response_ids}
    rows = session.execute(
        select(Answer.response_id, Answer.item_id, Answer.value).where(
            Answer.response_id.in_(response_ids)
        )
    )
    for response_id, item_id, value in rows:
        result[response_id][item_id] = value
    return result


def save_section(
    session: AnySession,
    response: Response,
    section: Section,
    values: Mapping[str, StoredAnswer | None],
    language: str,
) -> None:
    """Store one page's answers: upsert the given ones, delete those given as ``None``.

    Items of the section that are not in ``values`` are left as they are.
    """
    if response.status == "submitted":
        return
    now = datetime.now(UTC)
    section_items = [item.id for item in section.items]
    given = [
        {
            "response_id": response.id,
            "item_id": item_id,
            "value": answer.value,
            "value_num": answer.value_num,
            "updated_at": now,
        }
        for item_id, answer in values.items()
        if answer is not None and item_id in section_items
    ]
    emptied = [i for i in section_items if i in values and values[i] is None]
    # a draft: the analyses read submitted answers only
    with change_log.analysis_neutral_scope(session):
        upsert(
            session,
            Answer.__table__,
            given,
            conflict_columns=("response_id", "item_id"),
            update_columns=("value", "value_num", "updated_at"),
        )
        if emptied:
            session.execute(
                delete(Answer).where(
                    Answer.response_id == response.id, Answer.item_id.in_(emptied)
                )
            )
        response.updated_at = now
        response.language = language


@dataclass(frozen=True)
class SubmitResult:
    submitted: bool
    already: bool = False
    first_incomplete_step: int | None = None


def submit(
    session: AnySession, invitation: Invitation, responses: list[Response], steps: list[Step]
) -> SubmitResult:
    """Submit every response of the invitation; a second call is a no-op that succeeds."""
    if all(r.status == "submitted" for r in responses):
        return SubmitResult(submitted=True, already=True)
    answers = stored_answers(session, [r.id for r in responses])
    for step in steps:
        missing = missing_required(step.spec, answers[step.response_id])
        section_items = {item.id for item in step.section.items}
        if any(item_id in section_items for item_id in missing):
            return SubmitResult(submitted=False, first_incomplete_step=step.number)
    now = datetime.now(UTC)
    with change_log.pilot_scope(session, invitation.enrolment.pilot_id):
        session.execute(
            update(Response)
            .where(Response.id.in_([r.id for r in responses]), Response.status == "in_progress")
            .values(status="submitted", submitted_at=now, updated_at=now),
            execution_options={"synchronize_session": "evaluate"},
        )
        invitation.status = "completed"
        invitation.completed_at = now
    return SubmitResult(submitted=True)


def opt_out(session: AnySession, invitation: Invitation) -> int:
    """The person does not want further questionnaires: stop this and future invitations.

    Returns how many invitations were stopped (for the audit event the caller records)."""
    now = datetime.now(UTC)
    enrolment: Enrolment = invitation.enrolment
    person: Person = enrolment.person
    # the person's opt-out stops their invitations in every pilot: a change for all pilots
    if person.opted_out_at is None:
        person.opted_out_at = now
    result = session.execute(
        update(Invitation)
        .where(
            Invitation.enrolment_id == enrolment.id,
            Invitation.status.in_(tuple(OPEN_STATUSES)),
        )
        .values(status="opted_out")
    )
    session.flush()
    return affected_rows(result)


def unit_contact(enrolment: Enrolment) -> UnitContact | None:
    """Whom the person can call: their unit's contact in the pilot definition, else the
    pilot's default (None when the pilot declares no contacts)."""
    contacts = pilot_spec(enrolment.pilot).contacts
    return None if contacts is None else contacts.for_unit(enrolment.unit)


def services_received(
    session: AnySession, invitation: Invitation, language: str, today: date | None = None
) -> list[str]:
    """The services the person has received by now (type, and provider when known), named in
    ``language``: what an experience questionnaire about "the services you received" means."""
    spec = pilot_spec(invitation.enrolment.pilot)
    names = {service.id: service.name.get(language) for service in spec.service_types}
    if not names:
        return []
    until = min(today or county_today(), invitation.closes_on)
    rows = session.execute(
        select(ServiceExposure.service_type, ServiceExposure.provider_name)
        .where(
            ServiceExposure.enrolment_id == invitation.enrolment_id,
            ServiceExposure.started_on <= until,
        )
        .order_by(ServiceExposure.started_on, ServiceExposure.id)
    ).all()
    found: list[str] = []
    for service_type, provider in rows:
        name = names.get(service_type, service_type)
        label = f"{name} ({provider})" if provider else name
        if label not in found:
            found.append(label)
    return found
