"""People (patients and clients) and their enrolments in pilots.

A personal identity code is never stored: only its keyed hash (HMAC with the instance's
pseudonym key) for linkage. The pseudonym is what exports and most screens show.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vaikuttavuus.models.base import Base, utcnow

if TYPE_CHECKING:
    from vaikuttavuus.models.pilots import Arm, Pilot


class Person(Base):
    __tablename__ = "people"
    __table_args__ = (
        CheckConstraint("sex IN ('male', 'female', 'other') OR sex IS NULL", name="sex_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pseudonym: Mapped[str] = mapped_column(String(20), unique=True)
    identity_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    birth_year: Mapped[int | None]
    sex: Mapped[str | None] = mapped_column(String(10))
    lives_alone: Mapped[bool | None]
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))
    postal_address: Mapped[str | None] = mapped_column(Text)
    preferred_language: Mapped[str] = mapped_column(String(5), default="fi")
    opted_out_at: Mapped[datetime | None]
    erased_at: Mapped[datetime | None]
    source: Mapped[str] = mapped_column(String(20), default="form")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    enrolments: Mapped[list[Enrolment]] = relationship(back_populates="person")

    @property
    def display_name(self) -> str:
        if self.erased_at is not None:
            return self.pseudonym
        parts = [p for p in (self.first_name, self.last_name) if p]
        return " ".join(parts) if parts else self.pseudonym


class Enrolment(Base):
    __tablename__ = "enrolments"
    __table_args__ = (
        UniqueConstraint("person_id", "pilot_id"),
        CheckConstraint("status IN ('active', 'withdrawn', 'completed')", name="status_known"),
        Index("ix_enrolments_pilot_arm", "pilot_id", "arm_id"),
        # the cohort period filter and the patient list's order (latest index date first)
        Index("ix_enrolments_pilot_index_date", "pilot_id", "index_date"),
        # the unit filter and its choices on every cohort page (read from the index alone)
        Index("ix_enrolments_pilot_unit", "pilot_id", "unit"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    pilot_id: Mapped[int] = mapped_column(ForeignKey("pilots.id"))
    arm_id: Mapped[int] = mapped_column(ForeignKey("arms.id"))
    index_date: Mapped[date]
    enrolled_on: Mapped[date]
    unit: Mapped[str | None] = mapped_column(String(80))
    clinician_code: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(12), default="active")
    withdrawn_at: Mapped[datetime | None]
    withdrawal_reason: Mapped[str | None] = mapped_column(String(200))
    import_batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batches.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    person: Mapped[Person] = relationship(back_populates="enrolments")
    pilot: Mapped[Pilot] = relationship()
    arm: Mapped[Arm] = relationship()
