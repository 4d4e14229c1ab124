"""Rate-limit counters shared by every worker and server (the default throttle store).

One row per limited key (a limit and a keyed hash of who is limited: an address, an account,
a user): how many failures in the current fixed window (``failures``) and when the window ends
(seconds since the epoch). Rows of ended windows are reset on their next use and deleted by
later writes.
"""

from __future__ import annotations

from sqlalchemy import Float, String
from sqlalchemy.orm import Mapped, mapped_column

from vaikuttavuus.models.base import Base


class ThrottleCounter(Base):
    __tablename__ = "throttle_counters"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    expires_at: Mapped[float] = mapped_column(Float, index=True)
