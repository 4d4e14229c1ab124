"""The scheduler: invitation windows, status transitions in bulk, stops, cancel and extend."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select

from tests.support.recording import count_statements
from vaikuttavuus.extensions import db
from vaikuttavuus.models import AccessToken, Invitation, OutboxMessage, TimePoint
from vaikuttavuus.services import schedule
from vaikuttavuus.services.patient_flow import issue_token, opt_out


def invitations_of(enrolment: Any) -> dict[str, Invitation]:
    rows = db.session.execute(
        select(TimePoint.code, Invitation)
        .join(Invitation, Invitation.time_point_id == TimePoint.id)
        .where(Invitation.enrolment_id == enrolment.id)
    ).all()
    return {str(code): invitation for code, invitation in rows}


def statuses(enrolment: Any) -> dict[str, str]:
    db.session.expire_all()
    return {code: inv.status for code, inv in invitations_of(enrolment).items()}


def refresh(today: date) -> schedule.RefreshResult:
    result = schedule.refresh(db.session, today)
    db.session.commit()
    return result


# -- pure parts --------------------------------------------------------------------------------


def test_status_on_includes_both_window_ends() -> None:
    opens, closes = date(2026, 3, 1), date(2026, 3, 31)
    assert schedule.status_on(opens, closes, date(2026, 2, 28)) == "scheduled"
    assert schedule.status_on(opens, closes, opens) == "open"
    assert schedule.status_on(opens, closes, closes) == "open"
    assert schedule.status_on(opens, closes, date(2026, 4, 1)) == "expired"


def test_extension_counts_from_today_once_the_window_has_closed() -> None:
    today = date(2026, 5, 10)
    assert schedule.extended_closes_on(date(2026, 5, 20), today, 7) == date(2026, 5, 27)
    assert schedule.extended_closes_on(date(2026, 5, 1), today, 7) == date(2026, 5, 17)


# -- refresh -----------------------------------------------------------------------------------


def test_refresh_moves_statuses_exactly_on_the_window_edges(enrol_patient: Any) -> None:
    enrolment = enrol_patient(index_offset_days=100)  # BPH baseline: index −60 … index + 0
    index = enrolment.index_date
    assert statuses(enrolment)["baseline"] == "scheduled"

    refresh(index - timedelta(days=61))
    assert statuses(enrolment)["baseline"] == "scheduled"
    result = refresh(index - timedelta(days=60))
    assert statuses(enrolment)["baseline"] == "open"
    assert result.opened >= 1
    refresh(index)
    assert statuses(enrolment)["baseline"] == "open"
    result = refresh(index + timedelta(days=1))
    assert statuses(enrolment)["baseline"] == "expired"
    assert result.expired >= 1
    # 3 months: index + 60 … index + 120
    refresh(index + timedelta(days=59))
    assert statuses(enrolment)["m3"] == "scheduled"
    refresh(index + timedelta(days=60))
    assert statuses(enrolment)["m3"] == "open"
    refresh(index + timedelta(days=121))
    assert statuses(enrolment)["m3"] == "expired"


def test_a_window_missed_entirely_goes_from_scheduled_to_expired(enrol_patient: Any) -> None:
    enrolment = enrol_patient(index_offset_days=100)
    refresh(enrolment.index_date + timedelta(days=30))
    assert statuses(enrolment)["baseline"] == "expired"


def test_final_statuses_are_never_touched(enrol_patient: Any) -> None:
    enrolment = enrol_patient(index_offset_days=-200)  # baseline and m3 long closed
    found = invitations_of(enrolment)
    now = datetime.now(UTC)
    found["baseline"].status, found["baseline"].completed_at = "completed", now
    found["m3"].status = "cancelled"
    found["m12"].status = "opted_out"
    db.session.commit()
    for day in (date.today(), date.today() + timedelta(days=400)):
        refresh(day)
        assert statuses(enrolment) == {
            "baseline": "completed",
            "m3": "cancelled",
            "m12": "opted_out",
        }


def test_refresh_creates_missing_invitations_with_the_same_windows(enrol_patient: Any) -> None:
    keep = enrol_patient(index_offset_days=-70)
    expected = {code: (inv.opens_on, inv.closes_on) for code, inv in invitations_of(keep).items()}
    db.session.execute(delete(Invitation).where(Invitation.enrolment_id == keep.id))
    db.session.commit()
    assert invitations_of(keep) == {}

    result = refresh(date.today())
    found = invitations_of(keep)
    assert {code: (inv.opens_on, inv.closes_on) for code, inv in found.items()} == expected
    for inv in found.values():
        assert inv.status == schedule.status_on(inv.opens_on, inv.closes_on, date.today())
    assert statuses(keep) == {"baseline": "expired", "m3": "open", "m12": "scheduled"}
    assert result.created == 3
    assert refresh(date.today()).created == 0  # idempotent


def test_refresh_does_not_create_invitations_for_stopped_people(enrol_patient: Any) -> None:
    withdrawn = enrol_patient(index_offset_days=10)
    opted = enrol_patient(index_offset_days=10)
    erased = enrol_patient(index_offset_days=10)
    for enrolment in (withdrawn, opted, erased):
        db.session.execute(delete(Invitation).where(Invitation.enrolment_id == enrolment.id))
    withdrawn.status = "withdrawn"
    opted.person.opted_out_at = datetime.now(UTC)
    erased.person.erased_at = datetime.now(UTC)
    db.session.commit()
    assert refresh(date.today()).created == 0
    for enrolment in (withdrawn, opted, erased):
        assert invitations_of(enrolment) == {}


def test_withdrawal_opt_out_and_erasure_stop_live_invitations(enrol_patient: Any) -> None:
    withdrawn = enrol_patient(index_offset_days=10)
    opted = enrol_patient(index_offset_days=10)
    erased = enrol_patient(index_offset_days=10)
    other = enrol_patient(index_offset_days=10)
    withdrawn.status = "withdrawn"
    opted.person.opted_out_at = datetime.now(UTC)
    erased.person.erased_at = datetime.now(UTC)
    db.session.commit()

    result = refresh(date.today())
    assert set(statuses(withdrawn).values()) == {"cancelled"}
    assert set(statuses(opted).values()) == {"opted_out"}
    assert set(statuses(erased).values()) == {"cancelled"}
    assert statuses(other) == {"baseline": "open", "m3": "scheduled", "m12": "scheduled"}
    assert result.cancelled == 6
    assert result.opted_out == 3
    assert all(inv.cancelled_at is not None for inv in invitations_of(withdrawn).values())


def test_opting_out_through_one_pilot_stops_the_persons_other_pilot(
    enrol_patient: Any,
) -> None:
    from vaikuttavuus.services.enrolment import enrol

    enrolment = enrol_patient(pilot="bph", index_offset_days=10)
    other = enrol(
        db.session,
        enrolment.person,
        pilot_code="older-adults",
        arm_code="outreach",
        index_date=date.today(),
    )
    db.session.commit()
    opt_out(db.session, invitations_of(enrolment)["baseline"])
    db.session.commit()
    refresh(date.today())
    assert set(statuses(other).values()) == {"opted_out"}


def test_refresh_is_a_fixed_number_of_statements(enrol_patient: Any) -> None:
    few = [enrol_patient(index_offset_days=-70) for _ in range(2)]
    for enrolment in few:
        db.session.execute(delete(Invitation).where(Invitation.enrolment_id == enrolment.id))
    db.session.commit()
    with count_statements() as small:
        refresh(date.today())

    many = [enrol_patient(index_offset_days=-70) for _ in range(20)]
    for enrolment in many:
        db.session.execute(delete(Invitation).where(Invitation.enrolment_id == enrolment.id))
    db.session.commit()
    with count_statements() as large:
        result = refresh(date.today())
    assert result.created == 60
    assert len(large) == len(small)


# -- a pilot lead's actions --------------------------------------------------------------------


def test_extend_reopens_an_expired_unanswered_invitation(enrol_patient: Any) -> None:
    enrolment = enrol_patient(index_offset_days=-5)  # baseline closed five days ago
    refresh(date.today())
    invitation = invitations_of(enrolment)["baseline"]
    assert invitation.status == "expired"
    old, new = schedule.extend_invitation(db.session, invitation, 14, date.today())
    db.session.commit()
    assert old == enrolment.index_date
    assert new == date.today() + timedelta(days=14)
    assert invitation.status == "open"
    refresh(date.today())
    assert statuses(enrolment)["baseline"] == "open"  # the scheduler keeps it open
    refresh(new + timedelta(days=1))
    assert statuses(enrolment)["baseline"] == "expired"


def test_extend_refuses_answered_and_stopped_invitations(enrol_patient: Any) -> None:
    enrolment = enrol_patient(index_offset_days=5)
    invitation = invitations_of(enrolment)["baseline"]
    invitation.status, invitation.completed_at = "completed", datetime.now(UTC)
    db.session.commit()
    with pytest.raises(schedule.InvitationActionError) as refused:
        schedule.extend_invitation(db.session, invitation, 7, date.today())
    assert refused.value.code == "completed"

    withdrawn = enrol_patient(index_offset_days=5)
    withdrawn.status = "withdrawn"
    db.session.commit()
    with pytest.raises(schedule.InvitationActionError) as refused:
        schedule.extend_invitation(
            db.session, invitations_of(withdrawn)["baseline"], 7, date.today()
        )
    assert refused.value.code == "withdrawn"
    with pytest.raises(schedule.InvitationActionError):
        schedule.extend_invitation(db.session, invitations_of(enrolment)["m3"], 0, date.today())


def test_cancel_revokes_links_and_drops_pending_messages(enrol_patient: Any) -> None:
    enrolment = enrol_patient(index_offset_days=5)
    invitation = invitations_of(enrolment)["baseline"]
    issue_token(db.session, invitation)
    db.session.add(
        OutboxMessage(
            invitation_id=invitation.id,
            channel="email",
            purpose="initial",
            dedupe_key=f"inv:{invitation.id}:initial",
            status="pending",
        )
    )
    db.session.commit()
    schedule.cancel_invitation(db.session, invitation, datetime.now(UTC))
    db.session.commit()
    db.session.expire_all()
    assert invitation.status == "cancelled"
    assert invitation.cancelled_at is not None
    tokens = db.session.scalars(
        select(AccessToken).where(AccessToken.invitation_id == invitation.id)
    ).all()
    assert tokens and all(t.revoked_at is not None for t in tokens)
    message = db.session.scalar(
        select(OutboxMessage).where(OutboxMessage.invitation_id == invitation.id)
    )
    assert message is not None and message.status == "cancelled"
    with pytest.raises(schedule.InvitationActionError):
        schedule.cancel_invitation(db.session, invitation, datetime.now(UTC))
