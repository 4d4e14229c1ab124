"""Keeping the analysis snapshot table bounded (:mod:`vaikuttavuus.services.snapshot_retention`):
a stored snapshot supersedes all but the newest two of its view, failed attempts before it go,
builds in progress are never touched, and the nightly pruning removes what is older than the
retention time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from flask import Flask
from sqlalchemy import select

from vaikuttavuus.extensions import db
from vaikuttavuus.models import AnalysisSnapshot, DataChange, Pilot
from vaikuttavuus.services import precompute
from vaikuttavuus.services.snapshot_retention import prune_expired, prune_superseded

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
_versions = count()


def add_row(
    pilot_id: int,
    status: str,
    hours_ago: float,
    *,
    params_key: str = "view-a",
    code_version: str = "code-1",
) -> int:
    moment = NOW - timedelta(hours=hours_ago)
    row = AnalysisSnapshot(
        pilot_id=pilot_id,
        kind="cohort",
        params_key=params_key,
        params={"view": params_key},
        code_version=code_version,
        data_version=f"data-{next(_versions)}",
        status=status,
        progress=100 if status == "ready" else 40,
        data_taken_at=moment if status == "ready" else None,
        created_at=moment,
        finished_at=moment if status != "building" else None,
        lease_until=NOW + timedelta(minutes=5) if status == "building" else None,
        payload=b"x" if status == "ready" else None,
    )
    db.session.add(row)
    db.session.flush()
    return row.id


def remaining() -> set[int]:
    return set(db.session.scalars(select(AnalysisSnapshot.id)))


def pilot_id(code: str = "bph") -> int:
    found = db.session.scalar(select(Pilot.id).where(Pilot.code == code))
    assert found is not None
    return found


def prune(params_key: str = "view-a", code_version: str = "code-1") -> int:
    return prune_superseded(
        db.session,
        pilot_id=pilot_id(),
        kind="cohort",
        params_key=params_key,
        code_version=code_version,
    )


def test_a_new_snapshot_supersedes_all_but_the_newest_two_of_its_view(app: Flask) -> None:
    bph = pilot_id()
    oldest, older = add_row(bph, "ready", 30), add_row(bph, "ready", 20)
    failed_before = add_row(bph, "failed", 15)
    previous, newest = add_row(bph, "ready", 10), add_row(bph, "ready", 1)
    building = add_row(bph, "building", 0.5)
    other_view = add_row(bph, "ready", 40, params_key="view-b")
    other_code = add_row(bph, "ready", 40, code_version="code-0")
    other_pilot = add_row(pilot_id("older-adults"), "ready", 40)
    assert prune() == 3
    assert remaining() == {previous, newest, building, other_view, other_code, other_pilot}
    assert {oldest, older, failed_before}.isdisjoint(remaining())
    assert prune() == 0  # nothing more to do


def test_a_failure_after_the_newest_snapshot_stays_to_be_read(app: Flask) -> None:
    bph = pilot_id()
    newest = add_row(bph, "ready", 2)
    failed_after = add_row(bph, "failed", 1)
    assert prune() == 0
    assert remaining() == {newest, failed_after}


def test_nothing_is_pruned_before_a_view_has_a_ready_snapshot(app: Flask) -> None:
    failed = add_row(pilot_id(), "failed", 5)
    assert prune() == 0
    assert remaining() == {failed}


def test_the_nightly_pruning_removes_what_is_older_than_the_retention(app: Flask) -> None:
    bph = pilot_id()
    old_ready = add_row(bph, "ready", 24 * 31)
    old_failed = add_row(bph, "failed", 24 * 40, params_key="view-b")
    recent = add_row(bph, "ready", 24 * 29, params_key="view-c")
    stuck = add_row(bph, "building", 24 * 45, params_key="view-d")
    assert prune_expired(db.session, retention_days=30, now=NOW) == 2
    assert remaining() == {recent, stuck}
    assert {old_ready, old_failed}.isdisjoint(remaining())
    with pytest.raises(ValueError, match="at least 1"):
        prune_expired(db.session, retention_days=0, now=NOW)


def test_the_nightly_job_uses_the_configured_retention(app: Flask) -> None:
    bph = pilot_id()
    long_ago = datetime.now(UTC) - timedelta(days=10)
    old = add_row(bph, "ready", (NOW - long_ago).total_seconds() / 3600)
    fresh = add_row(bph, "ready", (NOW - datetime.now(UTC)).total_seconds() / 3600 + 1)
    db.session.commit()
    db.session.add_all([DataChange(pilot_id=bph, token=t) for t in ("older", "newest")])
    db.session.commit()
    app.config["SNAPSHOT_RETENTION_DAYS"] = 7
    assert precompute.prune_expired_snapshots() == 1
    assert remaining() == {fresh}
    assert old not in remaining()
    # the data change log keeps only the newest row of the pilot (its version stays)
    tokens = db.session.scalars(select(DataChange.token).where(DataChange.pilot_id == bph))
    assert list(tokens) == ["newest"]
