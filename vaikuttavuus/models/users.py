"""Staff accounts. Patients have no account: they answer through a personal link."""

from __future__ import annotations

import secrets
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, Column, ForeignKey, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vaikuttavuus.models.base import Base, utcnow

if TYPE_CHECKING:
    from vaikuttavuus.models.pilots import Pilot


class Role(StrEnum):
    CLINICIAN = "clinician"
    PILOT_LEAD = "pilot_lead"
    MANAGEMENT = "management"
    ADMIN = "admin"


user_pilots = Table(
    "user_pilots",
    Base.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("pilot_id", ForeignKey("pilots.id", ondelete="CASCADE"), primary_key=True),
)


def new_session_nonce() -> str:
    return secrets.token_hex(16)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(
            "role IN ('clinician', 'pilot_lead', 'management', 'admin')", name="role_known"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    locale: Mapped[str | None] = mapped_column(String(5))
    # Changing the nonce logs the user out everywhere (password change, deactivation).
    session_nonce: Mapped[str] = mapped_column(String(32), default=new_session_nonce)
    failed_logins: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    password_changed_at: Mapped[datetime | None]

    pilots: Mapped[list[Pilot]] = relationship(secondary=user_pilots, lazy="selectin")

    # -- Flask-Login protocol -------------------------------------------------------------

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return f"{self.id}:{self.session_nonce}"

    # -- access helpers ----------------------------------------------------------------

    def has_role(self, *roles: str) -> bool:
        return self.role in roles

    @property
    def pilot_codes(self) -> frozenset[str]:
        return frozenset(p.code for p in self.pilots)

    def may_access_pilot(self, pilot_code: str) -> bool:
        """Management and admins see every pilot's aggregates; others only their own pilots."""
        if self.role in (Role.MANAGEMENT, Role.ADMIN):
            return True
        return pilot_code in self.pilot_codes
