"""The app's "today" is the county's calendar day, whatever the server's time zone."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, tzinfo
from pathlib import Path

import pytest

from vaikuttavuus import county_time
from vaikuttavuus.services import messaging

PACKAGE = Path(county_time.__file__).parent


class _LateEveningUTC(datetime):
    """22:30 UTC on 6 December: already 7 December in Helsinki."""

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> datetime:  # type: ignore[override]
        moment = datetime(2026, 12, 6, 22, 30, tzinfo=UTC)
        return moment.astimezone(tz) if tz is not None else moment.replace(tzinfo=None)


def test_today_is_the_helsinki_day_late_in_the_utc_evening(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(county_time, "datetime", _LateEveningUTC)
    assert county_time.county_today() == date(2026, 12, 7)
    assert str(county_time.county_zone()) == "Europe/Helsinki"


def test_the_message_clock_uses_the_same_day(monkeypatch: pytest.MonkeyPatch) -> None:
    now = datetime(2026, 12, 6, 22, 30, tzinfo=UTC)
    assert messaging.make_clock(now=now).today == date(2026, 12, 7)
    assert messaging.make_clock(now=now, timezone="UTC").today == date(2026, 12, 6)


def test_no_module_takes_the_servers_day() -> None:
    """``date.today()`` is the server's day (often UTC): the app asks ``county_today()``."""
    offenders = [
        f"{path.relative_to(PACKAGE)}:{number}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if re.search(r"\bdate\.today\(\)|datetime\.(now|today)\(\)", line)
    ]
    assert offenders == []
