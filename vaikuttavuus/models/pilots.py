"""Pilots (cohorts) as loaded from ``cohorts/``: arms and the time-point schedule."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vaikuttavuus.models.base import Base, utcnow


class Pilot(Base):
    __tablename__ = "pilots"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    version: Mapped[str] = mapped_column(String(20))
    name: Mapped[dict[str, Any]]
    definition: Mapped[dict[str, Any]]
    definition_hash: Mapped[str] = mapped_column(String(64))
    loaded_at: Mapped[datetime] = mapped_column(default=utcnow)

    arms: Mapped[list[Arm]] = relationship(
        back_populates="pilot", order_by="Arm.ordinal", cascade="all, delete-orphan"
    )
    time_points: Mapped[list[TimePoint]] = relationship(
        back_populates="pilot", order_by="TimePoint.ordinal", cascade="all, delete-orphan"
    )

    def label(self, language: str) -> str:
        return str(self.name.get(language) or self.name.get("fi") or self.code)


class Arm(Base):
    __tablename__ = "arms"
    __table_args__ = (UniqueConstraint("pilot_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pilot_id: Mapped[int] = mapped_column(ForeignKey("pilots.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[dict[str, Any]]
    is_reference: Mapped[bool] = mapped_column(default=False)
    ordinal: Mapped[int] = mapped_column(default=0)

    pilot: Mapped[Pilot] = relationship(back_populates="arms")

    def label(self, language: str) -> str:
        return str(self.name.get(language) or self.name.get("fi") or self.code)


class TimePoint(Base):
    __tablename__ = "time_points"
    __table_args__ = (UniqueConstraint("pilot_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pilot_id: Mapped[int] = mapped_column(ForeignKey("pilots.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(40))
    label_text: Mapped[dict[str, Any]]
    offset_days: Mapped[int]
    window_open_days: Mapped[int]
    window_close_days: Mapped[int]
    is_baseline: Mapped[bool] = mapped_column(default=False)
    ordinal: Mapped[int] = mapped_column(default=0)

    pilot: Mapped[Pilot] = relationship(back_populates="time_points")
    instruments: Mapped[list[TimePointInstrument]] = relationship(
        back_populates="time_point",
        order_by="TimePointInstrument.ordinal",
        cascade="all, delete-orphan",
    )

    def label(self, language: str) -> str:
        return str(self.label_text.get(language) or self.label_text.get("fi") or self.code)


class TimePointInstrument(Base):
    """An instrument (by id; the current version is used when a response starts)."""

    __tablename__ = "time_point_instruments"
    __table_args__ = (UniqueConstraint("time_point_id", "instrument_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    time_point_id: Mapped[int] = mapped_column(ForeignKey("time_points.id", ondelete="CASCADE"))
    instrument_code: Mapped[str] = mapped_column(String(40))
    ordinal: Mapped[int] = mapped_column(default=0)

    time_point: Mapped[TimePoint] = relationship(back_populates="instruments")
