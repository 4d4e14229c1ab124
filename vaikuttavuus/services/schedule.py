"""Invitations per time point: created from the enrolment's index date and the pilot's windows,
moved through their statuses by :func:`refresh`, and changed by a pilot lead (cancel, extend).

Status life cycle::

    scheduled ──window opens──▶ open ──answers submitted──▶ completed
        │                        │
        └──────window closes─────┴──▶ expired ──extend (unanswered)──▶ open
    scheduled/open ──withdrawal, erasure, enrolment ended, pilot lead──▶ cancelled
    scheduled/open ──the person opts out──▶ opted_out

``completed``, ``cancelled`` and ``opted_out`` are final: nothing here ever changes them.
:func:`refresh` works in bulk SQL statements (no Python loop over enrolments), so a cron run
over two hundred thousand enrolments stays a handful of statements.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, case, exists, func, literal, or_, select, text, update

from vaikuttavuus.bulk import analyze_after_bulk
from vaikuttavuus.county_time import county_today
from vaikuttavuus.database import (
    LIKE_ESCAPE,
    AnySession,
    affected_rows,
    contains_pattern,
    insert_for,
)
from vaikuttavuus.models import (
    AccessToken,
    Arm,
    Enrolment,
    Invitation,
    OutboxMessage,
    Person,
    TimePoint,
)
from vaikuttavuus.models.base import UTCDateTime

# Statuses a scheduler may still move; the others are final.
LIVE_STATUSES = ("scheduled", "open")
FINAL_STATUSES = ("completed", "cancelled", "opted_out")
CANCELLED_BY_LEAD = "invitation cancelled"
"""The note on the pending messages a pilot lead's cancellation stopped (undone by
:func:`restore_invitation`)."""
MAX_EXTENSION_DAYS = 365

# An arbitrary constant key for PostgreSQL's advisory lock that serialises overlapping refreshes.
_REFRESH_LOCK_KEY = 0x7661_6954  # "vaiT"


class InvitationActionError(ValueError):
    """A pilot lead's action does not apply to the invitation in its current state."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def window(index_date: date, time_point: TimePoint) -> tuple[date, date]:
    """The days a time point's questionnaire can be answered (both ends included)."""
    return (
        index_date + timedelta(days=time_point.window_open_days),
        index_date + timedelta(days=time_point.window_close_days),
    )


def status_on(opens_on: date, closes_on: date, today: date) -> str:
    if today < opens_on:
        return "scheduled"
    if today > closes_on:
        return "expired"
    return "open"


def ensure_invitations(
    session: AnySession, enrolment: Enrolment, today: date | None = None
) -> list[Invitation]:
    """One invitation per time point of the pilot (created once; windows follow the index
    date while the invitation is still unanswered)."""
    today = today or county_today()
    existing = {
        inv.time_point_id: inv
        for inv in session.scalars(
            select(Invitation).where(Invitation.enrolment_id == enrolment.id)
        )
    }
    result = []
    for time_point in enrolment.pilot.time_points:
        opens_on, closes_on = window(enrolment.index_date, time_point)
        invitation = existing.get(time_point.id)
        if invitation is None:
            invitation = Invitation(
                enrolment_id=enrolment.id,
                time_point_id=time_point.id,
                opens_on=opens_on,
                closes_on=closes_on,
                status=status_on(opens_on, closes_on, today),
            )
            session.add(invitation)
        elif (
            invitation.status in {"scheduled", "open", "expired"}
            and invitation.completed_at is None
        ):
            invitation.opens_on, invitation.closes_on = opens_on, closes_on
            invitation.status = status_on(opens_on, closes_on, today)
        result.append(invitation)
    session.flush()
    return result


# -- the scheduler ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RefreshResult:
    """What one :func:`refresh` changed (row counts)."""

    created: int = 0
    opened: int = 0
    expired: int = 0
    opted_out: int = 0
    cancelled: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "created": self.created,
            "opened": self.opened,
            "expired": self.expired,
            "opted_out": self.opted_out,
            "cancelled": self.cancelled,
        }


def refresh(session: AnySession, today: date, now: datetime | None = None) -> RefreshResult:
    """Bring every invitation up to date for ``today`` in a few bulk statements.

    1. Stop: live invitations of people who opted out become ``opted_out``; those of withdrawn
       or ended enrolments and of erased people become ``cancelled``.
    2. Create the missing invitations of active enrolments (a time point added to the pilot,
       enrolments loaded in bulk), with the status their window gives on ``today``.
    3. ``scheduled`` → ``open`` when the window has opened; ``scheduled``/``open`` →
       ``expired`` after it has closed.

    Idempotent and safe to run concurrently (inserts are ON CONFLICT DO NOTHING and on
    PostgreSQL overlapping runs take turns on an advisory lock). Flushes; the caller commits.
    """
    now = now or datetime.now(UTC)
    _serialise(session)
    _planner_statistics(session)
    opted_out = _stop_opted_out(session)
    cancelled = _stop_ended(session, now)
    created = _create_missing(session, today)
    analyze_after_bulk(session, "invitations", created)
    opened = affected_rows(
        session.execute(
            update(Invitation.__table__)
            .where(
                Invitation.__table__.c.status == "scheduled",
                Invitation.__table__.c.opens_on <= today,
                Invitation.__table__.c.closes_on >= today,
            )
            .values(status="open")
        )
    )
    expired = affected_rows(
        session.execute(
            update(Invitation.__table__)
            .where(
                Invitation.__table__.c.status.in_(LIVE_STATUSES),
                # implied by closes_on < today; lets the (status, opens_on) index skip the
                # upcoming windows
                Invitation.__table__.c.opens_on < today,
                Invitation.__table__.c.closes_on < today,
            )
            .values(status="expired")
        )
    )
    session.flush()
    session.expire_all()
    return RefreshResult(created, opened, expired, opted_out, cancelled)


def _serialise(session: AnySession) -> None:
    """PostgreSQL: one refresh at a time (the lock ends with the transaction). SQLite already
    serialises writers."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _REFRESH_LOCK_KEY})


def _planner_statistics(session: AnySession) -> None:
    """SQLite: refresh the query planner's statistics (sampled, a few milliseconds).

    Without them SQLite walks every live invitation to stop the few of withdrawn or opted-out
    people instead of looking those up by enrolment (1.4 s against 0.1 s at 600 000
    invitations). PostgreSQL keeps its statistics itself (autovacuum).
    """
    if session.get_bind().dialect.name != "sqlite":
        return
    session.execute(text("PRAGMA analysis_limit=400"))
    for table in ("people", "enrolments", "invitations", "outbox_messages"):
        session.execute(text(f"ANALYZE {table}"))


def _stop_opted_out(session: AnySession) -> int:
    invitations = Invitation.__table__
    people_who_opted_out = (
        select(Enrolment.id)
        .join(Person, Enrolment.person_id == Person.id)
        .where(Person.opted_out_at.is_not(None))
    )
    return affected_rows(
        session.execute(
            update(invitations)
            .where(
                invitations.c.status.in_(LIVE_STATUSES),
                invitations.c.enrolment_id.in_(people_who_opted_out),
            )
            .values(status="opted_out")
        )
    )


def _stop_ended(session: AnySession, now: datetime) -> int:
    invitations = Invitation.__table__
    ended = (
        select(Enrolment.id)
        .join(Person, Enrolment.person_id == Person.id)
        .where(or_(Enrolment.status != "active", Person.erased_at.is_not(None)))
    )
    return affected_rows(
        session.execute(
            update(invitations)
            .where(
                invitations.c.status.in_(LIVE_STATUSES),
                invitations.c.enrolment_id.in_(ended),
            )
            .values(status="cancelled", cancelled_at=literal(now, UTCDateTime()))
        )
    )


def plus_days(session: AnySession, day: Any, days: Any) -> Any:
    """SQL for ``day + days`` (a date column plus an integer column), per dialect."""
    if session.get_bind().dialect.name == "sqlite":
        return func.date(day, func.printf("%d days", days), type_=Date)
    return day + days


def _create_missing(session: AnySession, today: date) -> int:
    opens = plus_days(session, Enrolment.index_date, TimePoint.window_open_days)
    closes = plus_days(session, Enrolment.index_date, TimePoint.window_close_days)
    today_value = literal(today, Date)
    status = case(
        (opens > today_value, "scheduled"),
        (closes < today_value, "expired"),
        else_="open",
    )
    already = exists().where(
        Invitation.enrolment_id == Enrolment.id, Invitation.time_point_id == TimePoint.id
    )
    source = (
        select(
            Enrolment.id,
            TimePoint.id,
            opens,
            closes,
            status,
            literal(datetime.now(UTC), UTCDateTime()),
            literal(0),
        )
        .select_from(Enrolment)
        .join(TimePoint, TimePoint.pilot_id == Enrolment.pilot_id)
        .join(Person, Enrolment.person_id == Person.id)
        .where(
            Enrolment.status == "active",
            Person.opted_out_at.is_(None),
            Person.erased_at.is_(None),
            ~already,
        )
    )
    statement = (
        insert_for(session, Invitation.__table__)
        .from_select(
            [
                "enrolment_id",
                "time_point_id",
                "opens_on",
                "closes_on",
                "status",
                "created_at",
                "reminders_sent",
            ],
            source,
        )
        .on_conflict_do_nothing(index_elements=["enrolment_id", "time_point_id"])
        # the number of rows inserted (SQLAlchemy keeps it for UPDATE/DELETE only by default)
        .execution_options(preserve_rowcount=True)
    )
    return affected_rows(session.execute(statement))


# -- a pilot lead's actions -----------------------------------------------------------------------


def sendable_problem(invitation: Invitation, today: date) -> str | None:
    """Why nothing may be sent for ``invitation`` today (None when it may be)."""
    enrolment = invitation.enrolment
    person = enrolment.person
    if person.erased_at is not None:
        return "erased"
    if person.opted_out_at is not None or invitation.status == "opted_out":
        return "opted_out"
    if enrolment.status != "active":
        return "withdrawn"
    if invitation.status != "open" or invitation.completed_at is not None:
        return invitation.status
    if not invitation.opens_on <= today <= invitation.closes_on:
        return "outside_window"
    return None


def cancel_invitation(session: AnySession, invitation: Invitation, now: datetime) -> None:
    """Stop an unanswered invitation: its links stop working and pending messages are dropped."""
    if invitation.status in FINAL_STATUSES:
        raise InvitationActionError(
            invitation.status, f"the invitation is already {invitation.status}"
        )
    invitation.status = "cancelled"
    invitation.cancelled_at = now
    session.execute(
        update(AccessToken.__table__)
        .where(
            AccessToken.__table__.c.invitation_id == invitation.id,
            AccessToken.__table__.c.revoked_at.is_(None),
        )
        .values(revoked_at=literal(now, UTCDateTime()))
    )
    outbox = OutboxMessage.__table__
    session.execute(
        update(outbox)
        .where(outbox.c.invitation_id == invitation.id, outbox.c.status == "pending")
        .values(status="cancelled", last_error=CANCELLED_BY_LEAD)
    )
    session.flush()


def can_restore(invitation: Invitation) -> bool:
    """A cancelled, unanswered invitation of an active enrolment (cancelled by a pilot lead,
    not by a withdrawal, erasure or opt-out): the cancellation can be undone."""
    return (
        invitation.status == "cancelled"
        and invitation.completed_at is None
        and invitation.cancelled_at is not None
        and _person_problem(invitation) is None
    )


def restore_invitation(session: AnySession, invitation: Invitation, today: date) -> str:
    """Undo :func:`cancel_invitation`: the status follows the window again, the links and the
    messages the cancellation stopped work again. Returns the new status."""
    problem = _person_problem(invitation)
    if problem is not None:
        raise InvitationActionError(problem, f"the person's enrolment is {problem}")
    if not can_restore(invitation):
        raise InvitationActionError(
            invitation.status, f"a {invitation.status} invitation cannot be restored"
        )
    cancelled_at = invitation.cancelled_at
    tokens = AccessToken.__table__
    session.execute(
        update(tokens)
        .where(
            tokens.c.invitation_id == invitation.id,
            tokens.c.revoked_at == literal(cancelled_at, UTCDateTime()),
        )
        .values(revoked_at=None)
    )
    outbox = OutboxMessage.__table__
    session.execute(
        update(outbox)
        .where(
            outbox.c.invitation_id == invitation.id,
            outbox.c.status == "cancelled",
            outbox.c.last_error == CANCELLED_BY_LEAD,
        )
        .values(status="pending", last_error=None)
    )
    invitation.status = status_on(invitation.opens_on, invitation.closes_on, today)
    invitation.cancelled_at = None
    session.flush()
    return invitation.status


def extended_closes_on(closes_on: date, today: date, days: int) -> date:
    """The new last day: ``days`` after the current last day, or after today when the window
    has already closed (so an extension always leaves ``days`` days to answer)."""
    return max(closes_on, today) + timedelta(days=days)


def extend_invitation(
    session: AnySession, invitation: Invitation, days: int, today: date
) -> tuple[date, date]:
    """Move the last day of an unanswered invitation; re-open it when it had expired.

    Returns the old and the new last day.
    """
    if not 1 <= days <= MAX_EXTENSION_DAYS:
        raise InvitationActionError("days", f"extend by 1–{MAX_EXTENSION_DAYS} days")
    problem = _person_problem(invitation)
    if problem is not None:
        raise InvitationActionError(problem, f"the person's enrolment is {problem}")
    if not can_extend(invitation):
        raise InvitationActionError(
            invitation.status, f"a {invitation.status} invitation cannot be extended"
        )
    old = invitation.closes_on
    invitation.closes_on = extended_closes_on(old, today, days)
    invitation.status = status_on(invitation.opens_on, invitation.closes_on, today)
    session.flush()
    return old, invitation.closes_on


def _person_problem(invitation: Invitation) -> str | None:
    enrolment = invitation.enrolment
    person = enrolment.person
    if person.erased_at is not None:
        return "erased"
    if person.opted_out_at is not None:
        return "opted_out"
    if enrolment.status != "active":
        return "withdrawn"
    return None


def can_extend(invitation: Invitation) -> bool:
    """An unanswered invitation of an active enrolment whose window may be moved."""
    return (
        invitation.status in {*LIVE_STATUSES, "expired"}
        and invitation.completed_at is None
        and _person_problem(invitation) is None
    )


def unanswered_and_answerable(invitation: Invitation) -> bool:
    """Open, or expired without answers: staff may still enter answers (assisted entry)."""
    if invitation.completed_at is not None:
        return False
    if invitation.status not in {"open", "expired"}:
        return False
    return _person_problem(invitation) is None


# -- listing for the pilot lead ------------------------------------------------------------------


@dataclass(frozen=True)
class InvitationFilters:
    status: str | None = None
    time_point: str | None = None
    arm: str | None = None
    failed_messages: bool = False
    query: str = ""


@dataclass(frozen=True)
class InvitationRow:
    id: int
    pseudonym: str
    name: str
    arm: str
    time_point: str
    opens_on: date
    closes_on: date
    status: str
    channel: str | None
    first_sent_at: datetime | None
    last_sent_at: datetime | None
    reminders_sent: int


@dataclass(frozen=True)
class InvitationPage:
    rows: list[InvitationRow]
    total: int
    page: int
    pages: int


def list_invitations(
    session: AnySession,
    pilot_id: int,
    filters: InvitationFilters,
    language: str,
    *,
    page: int = 1,
    page_size: int = 50,
    today: date | None = None,
) -> InvitationPage:
    """One page of a pilot's invitations with the given filters: windows that have opened
    first (the latest first), then the upcoming ones (the soonest first), whatever their
    status (an upcoming invitation the person declined is still upcoming)."""
    today = today or county_today()
    statement = (
        select(Invitation, Person, Arm, TimePoint)
        .join(Enrolment, Invitation.enrolment_id == Enrolment.id)
        .join(Person, Enrolment.person_id == Person.id)
        .join(Arm, Enrolment.arm_id == Arm.id)
        .join(TimePoint, Invitation.time_point_id == TimePoint.id)
        .where(Enrolment.pilot_id == pilot_id, Person.erased_at.is_(None))
    )
    if filters.status:
        statement = statement.where(Invitation.status == filters.status)
    if filters.time_point:
        statement = statement.where(TimePoint.code == filters.time_point)
    if filters.arm:
        statement = statement.where(Arm.code == filters.arm)
    if filters.failed_messages:
        statement = statement.where(
            exists().where(
                OutboxMessage.invitation_id == Invitation.id, OutboxMessage.status == "failed"
            )
        )
    if filters.query:
        pattern = contains_pattern(filters.query.lower())
        statement = statement.where(
            or_(
                func.lower(Person.pseudonym).like(pattern, escape=LIKE_ESCAPE),
                func.lower(Person.last_name).like(pattern, escape=LIKE_ESCAPE),
            )
        )
    total = int(session.scalar(select(func.count()).select_from(statement.subquery())) or 0)
    pages = max((total + page_size - 1) // page_size, 1)
    page = min(max(page, 1), pages)
    found = session.execute(
        statement.order_by(
            case((Invitation.opens_on > today, 1), else_=0),  # upcoming ones last,
            case((Invitation.opens_on > today, Invitation.opens_on), else_=None).asc(),  # soonest
            Invitation.opens_on.desc(),  # the opened ones, latest first
            Invitation.id.desc(),
        )
        .limit(page_size)
        .offset((page - 1) * page_size)
    ).all()
    rows = [
        InvitationRow(
            id=invitation.id,
            pseudonym=person.pseudonym,
            name=person.display_name,
            arm=arm.label(language),
            time_point=time_point.label(language),
            opens_on=invitation.opens_on,
            closes_on=invitation.closes_on,
            status=invitation.status,
            channel=invitation.channel,
            first_sent_at=invitation.first_sent_at,
            last_sent_at=invitation.last_sent_at,
            reminders_sent=invitation.reminders_sent,
        )
        for invitation, person, arm, time_point in found
    ]
    return InvitationPage(rows=rows, total=total, page=page, pages=pages)


def pilot_invitation(session: AnySession, pilot_id: int, invitation_id: int) -> Invitation | None:
    """The invitation if it belongs to the pilot (and its person is not erased)."""
    return session.scalar(
        select(Invitation)
        .join(Enrolment, Invitation.enrolment_id == Enrolment.id)
        .join(Person, Enrolment.person_id == Person.id)
        .where(
            Invitation.id == invitation_id,
            Enrolment.pilot_id == pilot_id,
            Person.erased_at.is_(None),
        )
    )
