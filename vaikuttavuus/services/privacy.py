"""Data-subject rights: access (GDPR Art. 15), withdrawal and erasure.

* **Access** gathers everything stored about a person — person fields, enrolments, invitations
  with their links and messages, responses with answers and instrument versions, measurements
  with their correction history, procedures, costs, service exposures, and the audit events
  about the person — as plain JSON-ready values (also rendered as a readable PDF).
* **Withdrawal** ends one enrolment: future and open invitations are cancelled (links revoked,
  pending messages cancelled) and unsubmitted answers of those invitations removed; submitted
  answers stay in the statistics the person already took part in.
* **Erasure** removes what identifies the person (names, contact details, the identity-code
  hash, free text) and ends every enrolment; the pseudonymised answers, measurements and
  costs stay, so every report is unchanged. On request the answers are deleted as well, and
  the invitations they answered are cancelled, so every report recomputes as if the person
  had never answered. The audit trail is kept in both cases (``docs/privacy.md``).

Services only flush; the request (or CLI) commits.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select, update

from vaikuttavuus import __version__
from vaikuttavuus.database import AnySession, affected_rows
from vaikuttavuus.domain.answers import display_value
from vaikuttavuus.domain.identity import mask_identity_codes
from vaikuttavuus.models import (
    AccessToken,
    Answer,
    AuditEvent,
    ClinicalMeasurement,
    CostItem,
    Enrolment,
    Invitation,
    OutboxMessage,
    Person,
    Procedure,
    Response,
    ServiceExposure,
    User,
)
from vaikuttavuus.models.base import Base
from vaikuttavuus.services.definitions import instrument_spec

ACCESS_FORMAT = "vaikuttavuus-subject-access/1"
LIVE_INVITATIONS = ("scheduled", "open")
CANCELLABLE_MESSAGES = ("pending", "failed")
IDENTIFYING_PERSON_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "postal_address",
    "identity_hash",
)
# Audit columns about staff (their network address) are not the data subject's data.
AUDIT_FIELDS = (
    "occurred_at",
    "actor",
    "role",
    "action",
    "object_type",
    "object_id",
    "pilot_code",
    "details",
)


class PrivacyError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Scope:
    """The person and the enrolments a user may act on for them."""

    person: Person
    enrolments: tuple[Enrolment, ...]
    complete: bool  # True when every enrolment of the person is in scope

    @property
    def pilot_codes(self) -> tuple[str, ...]:
        return tuple(e.pilot.code for e in self.enrolments)

    def enrolment(self, pilot_code: str) -> Enrolment | None:
        return next((e for e in self.enrolments if e.pilot.code == pilot_code), None)


def scope_for(session: AnySession, user: User, pseudonym: str) -> Scope | None:
    """Admins act for anyone; a pilot lead for the enrolments in the pilots they lead."""
    person = session.scalar(select(Person).where(Person.pseudonym == pseudonym))
    if person is None:
        return None
    enrolments = list(
        session.scalars(
            select(Enrolment).where(Enrolment.person_id == person.id).order_by(Enrolment.id)
        )
    )
    if user.role == "admin":
        allowed = enrolments
    elif user.role == "pilot_lead":
        allowed = [e for e in enrolments if e.pilot.code in user.pilot_codes]
    else:
        allowed = []
    if not allowed and (enrolments or user.role != "admin"):
        return None
    return Scope(person, tuple(allowed), complete=len(allowed) == len(enrolments))


# -- access --------------------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """A value as JSON has it (ISO dates, numbers, text)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def columns(row: Base, leave_out: Iterable[str] = ()) -> dict[str, Any]:
    """Every stored column of a row (so columns added later are included automatically)."""
    skip = set(leave_out)
    return {
        column.key: plain(getattr(row, column.key))
        for column in row.__table__.columns
        if column.key not in skip
    }


def subject_access(session: AnySession, scope: Scope, language: str = "fi") -> dict[str, Any]:
    """Everything stored about the person within ``scope``, as JSON-ready values."""
    person = scope.person
    enrolment_ids = [e.id for e in scope.enrolments]
    pilot_codes = set(scope.pilot_codes)
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.person_id == person.id).order_by(AuditEvent.id)
    )
    return {
        "format": ACCESS_FORMAT,
        "generated_at": plain(datetime.now(UTC)),
        "software": f"Vaikuttavuus {__version__}",
        "scope": {"pilots": sorted(pilot_codes), "complete": scope.complete},
        "person": columns(person),
        "enrolments": [_enrolment(session, e, language) for e in scope.enrolments],
        "audit_events": [
            {name: plain(getattr(event, name)) for name in AUDIT_FIELDS}
            for event in events
            if scope.complete or event.pilot_code is None or event.pilot_code in pilot_codes
        ],
        "counts": _counts(session, enrolment_ids),
    }


def _enrolment(session: AnySession, enrolment: Enrolment, language: str) -> dict[str, Any]:
    data = columns(enrolment)
    data["pilot"] = enrolment.pilot.code
    data["pilot_name"] = enrolment.pilot.label(language)
    data["arm"] = enrolment.arm.code
    data["arm_name"] = enrolment.arm.label(language)
    data["invitations"] = [
        _invitation(session, invitation, language)
        for invitation in session.scalars(
            select(Invitation)
            .where(Invitation.enrolment_id == enrolment.id)
            .order_by(Invitation.id)
        )
    ]
    data["responses"] = [
        _response(response, language)
        for response in session.scalars(
            select(Response).where(Response.enrolment_id == enrolment.id).order_by(Response.id)
        )
    ]
    data["measurements"] = [
        columns(m)
        for m in session.scalars(
            select(ClinicalMeasurement)
            .where(ClinicalMeasurement.enrolment_id == enrolment.id)
            .order_by(ClinicalMeasurement.measure_code, ClinicalMeasurement.id)
        )
    ]
    for name, model in (
        ("procedures", Procedure),
        ("costs", CostItem),
        ("service_exposures", ServiceExposure),
    ):
        data[name] = [
            columns(row)
            for row in session.scalars(
                select(model).where(model.enrolment_id == enrolment.id).order_by(model.id)
            )
        ]
    return data


def _invitation(session: AnySession, invitation: Invitation, language: str) -> dict[str, Any]:
    data = columns(invitation)
    data["time_point"] = invitation.time_point.code
    data["time_point_name"] = invitation.time_point.label(language)
    # A link's hash is a credential, not information about the person: only its dates.
    data["links"] = [
        columns(token, leave_out=("token_hash", "invitation_id"))
        for token in session.scalars(
            select(AccessToken)
            .where(AccessToken.invitation_id == invitation.id)
            .order_by(AccessToken.id)
        )
    ]
    data["messages"] = [
        columns(message, leave_out=("claim_token", "invitation_id"))
        for message in session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.invitation_id == invitation.id)
            .order_by(OutboxMessage.id)
        )
    ]
    return data


def _response(response: Response, language: str) -> dict[str, Any]:
    version = response.instrument_version
    spec = instrument_spec(version)
    items = {item.id: item for item in spec.items}
    data = columns(response, leave_out=("idempotency_key",))
    data["time_point"] = response.time_point.code
    data["instrument"] = {
        "code": version.code,
        "version": version.version,
        "title": version.label(language),
        "definition_hash": version.definition_hash,
    }
    order = {item_id: n for n, item_id in enumerate(spec.item_ids)}
    answers = sorted(response.answers, key=lambda a: order.get(a.item_id, len(order)))
    data["answers"] = [
        {
            "item_id": answer.item_id,
            "question": items[answer.item_id].text.get(language)
            if answer.item_id in items
            else None,
            "value": answer.value,
            "value_num": answer.value_num,
            "shown_as": display_value(spec, items[answer.item_id], answer.value, language)
            if answer.item_id in items
            else answer.value,
            "updated_at": plain(answer.updated_at),
        }
        for answer in answers
    ]
    return data


def _counts(session: AnySession, enrolment_ids: Sequence[int]) -> dict[str, int]:
    from sqlalchemy import func

    def count(model: Any, *where: Any) -> int:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)

    return {
        "responses": count(Response, Response.enrolment_id.in_(enrolment_ids)),
        "answers": count(
            Answer,
            Answer.response_id.in_(
                select(Response.id).where(Response.enrolment_id.in_(enrolment_ids))
            ),
        ),
        "measurements": count(
            ClinicalMeasurement, ClinicalMeasurement.enrolment_id.in_(enrolment_ids)
        ),
        "costs": count(CostItem, CostItem.enrolment_id.in_(enrolment_ids)),
    }


# -- withdrawal ----------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What an action changed (for the audit event and the confirmation message)."""

    invitations_cancelled: int = 0
    links_revoked: int = 0
    messages_cancelled: int = 0
    unsubmitted_responses_removed: int = 0
    responses_deleted: int = 0
    free_text_answers_removed: int = 0
    enrolments_withdrawn: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in vars(self).items() if k != "details"}
        return {**data, **self.details}


def withdraw(
    session: AnySession,
    enrolment: Enrolment,
    *,
    reason: str | None = None,
    now: datetime | None = None,
) -> Outcome:
    """End an enrolment at the person's request; what was submitted stays in the statistics.

    The reason is kept with the enrolment (erasure clears it), with identity codes masked."""
    now = now or datetime.now(UTC)
    outcome = Outcome()
    if enrolment.status != "withdrawn":
        enrolment.status = "withdrawn"
        enrolment.withdrawn_at = now
        enrolment.withdrawal_reason = mask_identity_codes((reason or "").strip())[:200] or None
        outcome.enrolments_withdrawn = 1
    session.flush()
    _stop_invitations(session, [enrolment.id], now, outcome)
    session.flush()
    return outcome


def _stop_invitations(
    session: AnySession, enrolment_ids: Sequence[int], now: datetime, outcome: Outcome
) -> None:
    """Cancel live invitations, revoke every link, cancel unsent messages, and remove the
    unsubmitted answers of the cancelled invitations (never part of any statistic)."""
    live = list(
        session.scalars(
            select(Invitation.id).where(
                Invitation.enrolment_id.in_(enrolment_ids),
                Invitation.status.in_(LIVE_INVITATIONS),
            )
        )
    )
    every = select(Invitation.id).where(Invitation.enrolment_id.in_(enrolment_ids))
    if live:
        outcome.invitations_cancelled += _count(
            session.execute(
                update(Invitation)
                .where(Invitation.id.in_(live))
                .values(status="cancelled", cancelled_at=now)
                .execution_options(synchronize_session=False)
            )
        )
        unsubmitted = select(Response.id).where(
            Response.invitation_id.in_(live), Response.status != "submitted"
        )
        session.execute(delete(Answer).where(Answer.response_id.in_(unsubmitted)))
        outcome.unsubmitted_responses_removed += _count(
            session.execute(
                delete(Response)
                .where(Response.invitation_id.in_(live), Response.status != "submitted")
                .execution_options(synchronize_session=False)
            )
        )
    outcome.links_revoked += _count(
        session.execute(
            update(AccessToken)
            .where(AccessToken.invitation_id.in_(every), AccessToken.revoked_at.is_(None))
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )
    )
    outcome.messages_cancelled += _count(
        session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.invitation_id.in_(every),
                OutboxMessage.status.in_(CANCELLABLE_MESSAGES),
            )
            .values(status="cancelled", last_error="withdrawn or erased")
            .execution_options(synchronize_session=False)
        )
    )
    session.expire_all()


def _count(result: Any) -> int:
    return affected_rows(result)


# -- erasure -------------------------------------------------------------------------------------


def erase(
    session: AnySession,
    person: Person,
    *,
    delete_answers: bool = False,
    reason: str | None = None,
    now: datetime | None = None,
) -> Outcome:
    """Remove what identifies ``person``; with ``delete_answers`` also their answers.

    Kept (pseudonymised): the pseudonym, birth year, sex, living alone, enrolments, submitted
    answers (unless deleted), measurements, procedures, costs and service exposures, and the
    audit trail. Removed: names, contact details, the identity-code hash, free-text answers,
    free-text notes on measurements and costs, the reasons given for earlier withdrawals,
    message recipients and contents, every link.
    """
    now = now or datetime.now(UTC)
    outcome = Outcome(details={"delete_answers": delete_answers})
    enrolment_ids = list(
        session.scalars(select(Enrolment.id).where(Enrolment.person_id == person.id))
    )
    for enrolment in session.scalars(select(Enrolment).where(Enrolment.id.in_(enrolment_ids))):
        if enrolment.status != "withdrawn":
            enrolment.status = "withdrawn"
            enrolment.withdrawn_at = now
            enrolment.withdrawal_reason = "erasure"
            outcome.enrolments_withdrawn += 1
        elif enrolment.withdrawal_reason != "erasure":
            enrolment.withdrawal_reason = None  # free text typed at an earlier withdrawal
    session.flush()
    _stop_invitations(session, enrolment_ids, now, outcome)
    if delete_answers:
        _delete_answers(session, enrolment_ids, now, outcome)
    else:
        _remove_free_text(session, enrolment_ids, outcome)
    every = select(Invitation.id).where(Invitation.enrolment_id.in_(enrolment_ids))
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.invitation_id.in_(every))
        .values(recipient=None, payload={})
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(ClinicalMeasurement)
        .where(ClinicalMeasurement.enrolment_id.in_(enrolment_ids))
        .values(correction_reason=None)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(CostItem)
        .where(CostItem.enrolment_id.in_(enrolment_ids))
        .values(description=None)
        .execution_options(synchronize_session=False)
    )
    person = session.get(Person, person.id) or person
    for name in IDENTIFYING_PERSON_FIELDS:
        setattr(person, name, None)
    person.erased_at = person.erased_at or now
    person.opted_out_at = person.opted_out_at or now
    outcome.details["reason_given"] = bool((reason or "").strip())
    session.flush()
    return outcome


def _delete_answers(
    session: AnySession, enrolment_ids: Sequence[int], now: datetime, outcome: Outcome
) -> None:
    """Delete every response and answer; the invitations they answered become cancelled, so
    response rates lose the answer from both the numerator and the denominator."""
    responses = select(Response.id).where(Response.enrolment_id.in_(enrolment_ids))
    answered = select(Response.invitation_id).where(
        Response.enrolment_id.in_(enrolment_ids), Response.invitation_id.is_not(None)
    )
    session.execute(
        update(Invitation)
        .where(Invitation.id.in_(answered), Invitation.status == "completed")
        .values(status="cancelled", cancelled_at=now)
        .execution_options(synchronize_session=False)
    )
    session.execute(delete(Answer).where(Answer.response_id.in_(responses)))
    outcome.responses_deleted = _count(
        session.execute(
            delete(Response)
            .where(Response.enrolment_id.in_(enrolment_ids))
            .execution_options(synchronize_session=False)
        )
    )
    session.expire_all()


def _remove_free_text(session: AnySession, enrolment_ids: Sequence[int], outcome: Outcome) -> None:
    """Free-text answers can hold anything, names included: they go even when the rest stays
    (no statistic uses them)."""
    removed = 0
    for response in session.scalars(
        select(Response).where(Response.enrolment_id.in_(enrolment_ids))
    ):
        spec = instrument_spec(response.instrument_version)
        text_items = [item.id for item in spec.items if item.type == "text"]
        if text_items:
            removed += _count(
                session.execute(
                    delete(Answer).where(
                        Answer.response_id == response.id, Answer.item_id.in_(text_items)
                    )
                )
            )
    outcome.free_text_answers_removed = removed
    session.expire_all()
