"""Invitations per time point, computed from the enrolment's index date and the pilot's windows."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from vaikuttavuus.models import Enrolment, Invitation, TimePoint


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
    session: Session, enrolment: Enrolment, today: date | None = None
) -> list[Invitation]:
    """One invitation per time point of the pilot (created once; windows follow the index
    date while the invitation is still unanswered)."""
    today = today or date.today()
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
