"""Stored analyses (:mod:`vaikuttavuus.services.snapshots`).

One row per analysis *key* (pilot, kind, parameters: filters, period, as-of date, analysis
settings), code and definition version and **data version**: the result of that analysis on
exactly that data. A row is claimed (``building``, with a lease the builder renews) before the
work starts, so two workers never compute the same key at once, and becomes ``ready`` in one
transaction together with its payload, so there is never a half snapshot; a builder that
dies leaves a ``building`` row whose lease runs out, and the next request takes it over.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from vaikuttavuus.models.base import Base, utcnow

SNAPSHOT_STATUSES = ("building", "ready", "failed")


class AnalysisSnapshot(Base):
    __tablename__ = "analysis_snapshots"
    __table_args__ = (
        UniqueConstraint(
            "pilot_id", "kind", "params_key", "code_version", "data_version",
            name="uq_analysis_snapshots_key",
        ),
        Index("ix_analysis_snapshots_lookup", "pilot_id", "kind", "params_key", "status"),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(primary_key=True)
    pilot_id: Mapped[int] = mapped_column(ForeignKey("pilots.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    params_key: Mapped[str] = mapped_column(String(64))
    """SHA-256 of the canonical JSON of ``params``."""
    params: Mapped[dict[str, Any]]
    code_version: Mapped[str] = mapped_column(String(64))
    """Of the analysis code and the pilot's definitions (instruments, catalogue)."""
    data_version: Mapped[str] = mapped_column(String(64))
    """SHA-256 of :func:`vaikuttavuus.queries.pilot_data_version` as the build read it."""
    status: Mapped[str] = mapped_column(String(16), default="building")
    progress: Mapped[int] = mapped_column(default=0)
    """Per cent of the build done (pages show it while a refresh runs)."""
    lease_token: Mapped[str | None] = mapped_column(String(32))
    lease_until: Mapped[datetime | None]
    worker: Mapped[str | None] = mapped_column(String(200))
    data_taken_at: Mapped[datetime | None]
    """When the build's read snapshot was taken: the page's "data as of"."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    payload: Mapped[bytes | None] = mapped_column(LargeBinary)
    signature: Mapped[str | None] = mapped_column(String(64))
    """HMAC-SHA-256 of ``payload`` under a key derived from ``SECRET_KEY``."""
    error: Mapped[str | None] = mapped_column(Text)
