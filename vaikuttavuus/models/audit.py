"""Append-only audit trail and the import log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from vaikuttavuus.models.base import Base, utcnow


class AuditEvent(Base):
    """Who did what, when, to which person. Database triggers refuse UPDATE and DELETE.

    ``person_id`` is deliberately not a foreign key: the trail outlives an erased person.
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_occurred_at", "occurred_at"),
        Index("ix_audit_events_person_id", "person_id"),
        # the audit log filtered by user or by action, newest first
        Index("ix_audit_events_actor_id", "actor", "id"),
        Index("ix_audit_events_action_id", "action", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    user_id: Mapped[int | None]
    actor: Mapped[str] = mapped_column(String(120))
    role: Mapped[str | None] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(40))
    object_type: Mapped[str | None] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(String(80))
    person_id: Mapped[int | None]
    pilot_code: Mapped[str | None] = mapped_column(String(40))
    ip_address: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ImportBatch(Base):
    """One import attempt: who, when, which file (by hash), how many rows, and the outcome."""

    __tablename__ = "import_batches"
    __table_args__ = (
        # a pilot's import log, newest first
        Index("ix_import_batches_pilot_started", "pilot_code", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))
    pilot_code: Mapped[str | None] = mapped_column(String(40))
    filename: Mapped[str] = mapped_column(String(255))
    file_sha256: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor: Mapped[str] = mapped_column(String(120))
    dry_run: Mapped[bool] = mapped_column(default=False)
    allow_outside_window: Mapped[bool] = mapped_column(default=False)
    """``import responses --allow-outside-window``: answers dated outside their time point's
    window were accepted."""
    status: Mapped[str] = mapped_column(String(12))
    rows_total: Mapped[int] = mapped_column(default=0)
    rows_stored: Mapped[int] = mapped_column(default=0)
    rows_duplicate: Mapped[int] = mapped_column(default=0)
    error_count: Mapped[int] = mapped_column(default=0)
    # at most 1000 problems (domain.imports.MAX_REPORTED_ERRORS); loaded only when read, so
    # listing the import log never reads them
    errors: Mapped[list[Any]] = mapped_column(default=list, deferred=True)
    notes: Mapped[list[Any]] = mapped_column(default=list, deferred=True)
    """Notes on rows that were stored all the same (e.g. an unanswered required item)."""
    note_count: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
