"""Responses to an instrument version and their answers (long format: one row per item)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vaikuttavuus.models.base import Base, utcnow

RESPONSE_MODES = ("web", "phone", "paper", "imported")
"""How a response was given: ``web`` (the patient's link), ``phone`` and ``paper`` (entered by
staff from a call or a paper form), ``imported`` (brought in from another system)."""

if TYPE_CHECKING:
    from vaikuttavuus.models.instruments import InstrumentVersion
    from vaikuttavuus.models.people import Enrolment
    from vaikuttavuus.models.pilots import TimePoint
    from vaikuttavuus.models.schedule import Invitation


class Response(Base):
    """One person's answers to one instrument at one time point.

    The unique constraint on (enrolment, time point, instrument) is what makes a double submit,
    a retry or a second device land on the same response instead of a new one.

    ``mode`` is how the answers were given (:data:`RESPONSE_MODES`) and ``proxy`` whether
    someone else (a relative or a staff member) answered for the person. ``import_batch_id``
    names the import that brought the response in.
    """

    __tablename__ = "responses"
    __table_args__ = (
        UniqueConstraint("enrolment_id", "time_point_id", "instrument_code"),
        CheckConstraint("status IN ('in_progress', 'submitted')", name="status_known"),
        CheckConstraint("mode IN ('web', 'phone', 'paper', 'imported')", name="mode_known"),
        Index("ix_responses_instrument_status", "instrument_version_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    enrolment_id: Mapped[int] = mapped_column(ForeignKey("enrolments.id", ondelete="CASCADE"))
    time_point_id: Mapped[int] = mapped_column(ForeignKey("time_points.id"))
    invitation_id: Mapped[int | None] = mapped_column(
        ForeignKey("invitations.id", ondelete="SET NULL"), index=True
    )
    instrument_version_id: Mapped[int] = mapped_column(ForeignKey("instrument_versions.id"))
    instrument_code: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(12), default="in_progress")
    language: Mapped[str] = mapped_column(String(5), default="fi")
    mode: Mapped[str] = mapped_column(String(10), default="web")
    proxy: Mapped[bool] = mapped_column(default=False)
    entered_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    submitted_at: Mapped[datetime | None]
    import_batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batches.id"))

    enrolment: Mapped[Enrolment] = relationship()
    time_point: Mapped[TimePoint] = relationship()
    invitation: Mapped[Invitation | None] = relationship()
    instrument_version: Mapped[InstrumentVersion] = relationship()
    answers: Mapped[list[Answer]] = relationship(
        back_populates="response", cascade="all, delete-orphan"
    )


class Answer(Base):
    """One item's answer. ``value`` is the canonical text form (codes, numbers, ISO dates,
    free text; several codes of a multiple-choice item joined by ``;``); ``value_num`` is the
    number when the answer is numeric, for vectorised scoring."""

    __tablename__ = "answers"
    __table_args__ = (UniqueConstraint("response_id", "item_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int] = mapped_column(ForeignKey("responses.id", ondelete="CASCADE"))
    item_id: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(Text)
    value_num: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    response: Mapped[Response] = relationship(back_populates="answers")
