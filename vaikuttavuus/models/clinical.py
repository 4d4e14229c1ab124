"""Clinical measurements and procedures, linked to an enrolment."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Float, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from vaikuttavuus.models.base import Base, utcnow


class ClinicalMeasurement(Base):
    """A measured value. A correction never overwrites: it adds a row and marks the old one
    superseded, so the history stays visible."""

    __tablename__ = "clinical_measurements"
    __table_args__ = (
        Index("ix_clinical_measurements_enrolment_measure", "enrolment_id", "measure_code"),
        # The foreign key's index, for the few superseded rows only: current values are read
        # with ``superseded_by_id IS NULL``, which must keep using the enrolment index above.
        Index(
            "ix_clinical_measurements_superseded_by_id",
            "superseded_by_id",
            sqlite_where=text("superseded_by_id IS NOT NULL"),
            postgresql_where=text("superseded_by_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    enrolment_id: Mapped[int] = mapped_column(ForeignKey("enrolments.id", ondelete="CASCADE"))
    measure_code: Mapped[str] = mapped_column(String(40))
    value_num: Mapped[float | None] = mapped_column(Float)
    value_text: Mapped[str | None] = mapped_column(String(40))
    unit: Mapped[str | None] = mapped_column(String(20))
    measured_on: Mapped[date]
    source: Mapped[str] = mapped_column(String(10), default="form")
    import_batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batches.id"))
    recorded_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    superseded_by_id: Mapped[int | None] = mapped_column(ForeignKey("clinical_measurements.id"))
    superseded_at: Mapped[datetime | None]
    correction_reason: Mapped[str | None] = mapped_column(String(200))
    row_hash: Mapped[str | None] = mapped_column(String(64), index=True)


class Procedure(Base):
    __tablename__ = "procedures"

    id: Mapped[int] = mapped_column(primary_key=True)
    enrolment_id: Mapped[int] = mapped_column(
        ForeignKey("enrolments.id", ondelete="CASCADE"), index=True
    )
    procedure_type: Mapped[str] = mapped_column(String(40))
    setting: Mapped[str] = mapped_column(String(40))
    """Where the procedure was done: a setting of the pilot (``procedure_settings`` or an arm
    id), checked by the import."""
    performed_on: Mapped[date]
    drg_code: Mapped[str | None] = mapped_column(String(20))
    unit: Mapped[str | None] = mapped_column(String(80))
    surgeon_code: Mapped[str | None] = mapped_column(String(40))
    import_batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batches.id"))
    row_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
