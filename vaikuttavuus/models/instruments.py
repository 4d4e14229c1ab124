"""Instrument versions: every definition ever loaded, kept so stored answers keep their meaning."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from vaikuttavuus.models.base import Base, utcnow


class InstrumentVersion(Base):
    __tablename__ = "instrument_versions"
    __table_args__ = (UniqueConstraint("code", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), index=True)
    version: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(10))
    title: Mapped[dict[str, Any]]
    definition: Mapped[dict[str, Any]]
    definition_hash: Mapped[str] = mapped_column(String(64))
    is_current: Mapped[bool] = mapped_column(default=True)
    loaded_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def key(self) -> str:
        return f"{self.code}@{self.version}"

    def label(self, language: str) -> str:
        return str(self.title.get(language) or self.title.get("fi") or self.code)
