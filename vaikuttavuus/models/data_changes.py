"""The data change log (:mod:`vaikuttavuus.change_log`): one row per committed transaction
that changed what the analyses read, for one pilot or (``pilot_id`` NULL) for every pilot.
A pilot's data version is its newest row and the newest row for every pilot: two index
lookups, whatever the size of the data."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from vaikuttavuus.models.base import Base, utcnow


class DataChange(Base):
    __tablename__ = "data_changes"
    __table_args__ = (Index("ix_data_changes_pilot_id_id", "pilot_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pilot_id: Mapped[int | None]
    """The pilot whose data changed; NULL: any pilot's (a change not tied to one pilot).
    Not a foreign key: the row is written at commit time and must never wait on a lock."""
    token: Mapped[str] = mapped_column(String(32))
    """Random: a database restored from a backup, whose ids are reused, gets new versions."""
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)
