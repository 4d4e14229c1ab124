"""The county's calendar day.

Servers usually run in UTC, but a Finnish county's day starts at midnight in Helsinki: between
22:00 and 24:00 UTC (21:00 in summer) the server's own date is still yesterday. Every
"today" the app works with (answering windows, extensions, release dates, file names) is the
local day of ``BABEL_DEFAULT_TIMEZONE`` instead. Kept free of heavy imports."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import current_app

from vaikuttavuus import report_settings


def county_zone() -> ZoneInfo:
    """The county's time zone: the app's ``BABEL_DEFAULT_TIMEZONE``, else the configured one."""
    try:
        name = current_app.config.get("BABEL_DEFAULT_TIMEZONE")
    except RuntimeError:  # no app context
        name = None
    return ZoneInfo(name or report_settings.current().timezone)


def county_today() -> date:
    """Today's date in the county (not in the server's time zone)."""
    return datetime.now(county_zone()).date()
