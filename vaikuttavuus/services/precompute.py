"""What the workers compute ahead, so that the first page view after a data change (and the
morning's first management download) is served from a snapshot.

* :func:`refresh_due` — every minute (a periodic job of :mod:`vaikuttavuus.jobs`): for each
  pilot whose data changed since its default views were computed, once the data have stayed
  unchanged for ``SNAPSHOT_DEBOUNCE_SECONDS`` (an import or a morning of answers is one
  refresh, not hundreds) — or at the latest after ``SNAPSHOT_MAX_DELAY_SECONDS`` when the data
  never stop changing — queue the builds of the default views.
* :func:`prune_expired_snapshots` then :func:`refresh_all` — nightly: old snapshots go
  (:mod:`vaikuttavuus.services.snapshot_retention`) with the data change log's superseded
  rows (:func:`vaikuttavuus.change_log.prune`), then the default views of every pilot
  are queued for the new day (the as-of date is part of the key).

The *default views* of a pilot are the sections of the cohort page without filters (as a pilot
lead first opens them, with their CSVs) and the management pack: the summary of the default
period (the newest released year) and of the current and previous released quarters.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from flask import current_app
from sqlalchemy import select

from vaikuttavuus import change_log
from vaikuttavuus.county_time import county_today
from vaikuttavuus.database import read_snapshot
from vaikuttavuus.extensions import db
from vaikuttavuus.models import Pilot
from vaikuttavuus.services import snapshots

logger = logging.getLogger(__name__)

Enqueue = Callable[[list[snapshots.SnapshotKey]], object]
"""Queues one build of views of one analysis."""

_SEEN: dict[tuple[str, int], tuple[str, float]] = {}
"""Per database and pilot: the data version seen last and since when (monotonic seconds)."""
_LOCK = threading.Lock()


def default_keys(pilot: Pilot) -> list[snapshots.SnapshotKey]:
    """Every section of the cohort page without filters (its default options) and the cohort
    summary PDF without filters, and the management summary of the default period (the newest
    released year) and of the newest two released quarters."""
    from vaikuttavuus.services.analytics import Filters
    from vaikuttavuus.services.cohort_page import SECTIONS

    keys = [
        snapshots.cohort_key(pilot, Filters(), view={"section": section})
        for section in (*SECTIONS, snapshots.SUMMARY_VIEW)
    ]
    return keys + management_keys(pilot)


def management_keys(pilot: Pilot, today: date | None = None) -> list[snapshots.SnapshotKey]:
    from vaikuttavuus import queries
    from vaikuttavuus.domain.periods import default_period, release_date, released_periods
    from vaikuttavuus.services.management_snapshots import management_key

    release = release_date(today or county_today())
    periods = released_periods(queries.first_index_date(db.session, [pilot.id]), release)
    chosen = [default_period(periods), *sorted(p for p in periods if p.kind == "Q")[-2:]]
    unique = list(dict.fromkeys(p for p in chosen if p is not None))
    return [management_key(pilot, period, release) for period in unique]


def _pilots() -> list[Pilot]:
    return list(db.session.scalars(select(Pilot).order_by(Pilot.id)))


def prune_expired_snapshots() -> int:
    """Delete the finished snapshots older than ``SNAPSHOT_RETENTION_DAYS`` (nightly, before
    :func:`refresh_all`); returns how many went."""
    from vaikuttavuus.services.snapshot_retention import DEFAULT_RETENTION_DAYS, prune_expired

    days = int(current_app.config.get("SNAPSHOT_RETENTION_DAYS") or DEFAULT_RETENTION_DAYS)
    removed = prune_expired(db.session, retention_days=days)
    db.session.commit()
    logger.info("%d analysis snapshots older than %d days removed", removed, days)
    changes = change_log.prune(db.session)  # no version changes: only superseded rows go
    db.session.commit()
    logger.info("%d superseded rows of the data change log removed", changes)
    return removed


def refresh_all(enqueue: Enqueue) -> int:
    """Queue the default views of every pilot (one build per pilot); returns how many."""
    count = 0
    for pilot in _pilots():
        enqueue(default_keys(pilot))
        count += 1
    return count


def refresh_due(enqueue: Enqueue, *, now: float | None = None) -> int:
    """Queue the default views of the pilots whose data changed and then stayed unchanged for
    the debounce time (or changed for longer than the maximum delay), one build per pilot;
    returns how many builds were queued."""
    debounce = float(current_app.config.get("SNAPSHOT_DEBOUNCE_SECONDS", 60))
    max_delay = float(current_app.config.get("SNAPSHOT_MAX_DELAY_SECONDS", 900))
    moment = time.monotonic() if now is None else now
    database = db.engine.url.render_as_string(hide_password=True)
    count = 0
    for pilot in _pilots():
        with read_snapshot() as snapshot:
            version = snapshots.version_of(db.session, pilot)
            data = snapshots.data_version_digest(snapshot.data_version(pilot.id))
            due = []
            for key in default_keys(pilot):
                stored = snapshots.find_row(db.session, key, version)
                if stored is None or stored[0] != data:
                    due.append((key, stored[1] if stored is not None else None))
        if not due:
            continue
        with _LOCK:
            seen = _SEEN.get((database, pilot.id))
            if seen is None or seen[0] != data:
                _SEEN[(database, pilot.id)] = (data, moment)
                quiet = 0.0
            else:
                quiet = moment - seen[1]
        oldest = [finished for _key, finished in due]
        too_old = any(
            finished is None or datetime.now(UTC) - finished > timedelta(seconds=max_delay)
            for finished in oldest
        )
        if quiet >= debounce or too_old:
            enqueue([key for key, _finished in due])
            count += 1
    return count
