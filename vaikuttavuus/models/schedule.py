"""Invitations to answer at a time point, their access tokens and the message outbox."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vaikuttavuus.models.base import Base, utcnow

if TYPE_CHECKING:
    from vaikuttavuus.models.people import Enrolment
    from vaikuttavuus.models.pilots import TimePoint

INVITATION_STATUSES = ("scheduled", "open", "completed", "expired", "cancelled", "opted_out")


class Invitation(Base):
    """One enrolment's invitation to answer the instruments of one time point."""

    __tablename__ = "invitations"
    __table_args__ = (
        UniqueConstraint("enrolment_id", "time_point_id"),
        CheckConstraint(
            "status IN ('scheduled', 'open', 'completed', 'expired', 'cancelled', 'opted_out')",
            name="status_known",
        ),
        Index("ix_invitations_status_opens_on", "status", "opens_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    enrolment_id: Mapped[int] = mapped_column(ForeignKey("enrolments.id", ondelete="CASCADE"))
    time_point_id: Mapped[int] = mapped_column(ForeignKey("time_points.id"))
    opens_on: Mapped[date]
    closes_on: Mapped[date]
    status: Mapped[str] = mapped_column(String(12), default="scheduled")
    channel: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    first_sent_at: Mapped[datetime | None]
    last_sent_at: Mapped[datetime | None]
    reminders_sent: Mapped[int] = mapped_column(default=0)
    opened_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]

    enrolment: Mapped[Enrolment] = relationship()
    time_point: Mapped[TimePoint] = relationship()
    tokens: Mapped[list[AccessToken]] = relationship(
        back_populates="invitation", cascade="all, delete-orphan"
    )


class AccessToken(Base):
    """A personal link's token, stored only as its SHA-256 hash.

    An invitation can have several live tokens (the first message and each reminder or
    resend carry their own), all valid until the window closes or the answers are submitted.
    """

    __tablename__ = "access_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    invitation_id: Mapped[int] = mapped_column(
        ForeignKey("invitations.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]

    invitation: Mapped[Invitation] = relationship(back_populates="tokens")


class OutboxMessage(Base):
    """A message to send (e-mail, SMS, printed letter). ``dedupe_key`` makes creation idempotent;
    a sender claims a row atomically before sending so overlapping runs never send twice."""

    __tablename__ = "outbox_messages"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'sending', 'sent', 'failed', 'cancelled')", name="status_known"
        ),
        Index("ix_outbox_messages_status_not_before", "status", "not_before"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    invitation_id: Mapped[int | None] = mapped_column(
        ForeignKey("invitations.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str] = mapped_column(String(10))
    purpose: Mapped[str] = mapped_column(String(20))
    dedupe_key: Mapped[str] = mapped_column(String(120), unique=True)
    recipient: Mapped[str | None] = mapped_column(String(300))
    language: Mapped[str] = mapped_column(String(5), default="fi")
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    not_before: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[datetime | None]
    claim_token: Mapped[str | None] = mapped_column(String(32))
    sent_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    letter_batch: Mapped[str | None] = mapped_column(String(40))

    invitation: Mapped[Invitation | None] = relationship()
