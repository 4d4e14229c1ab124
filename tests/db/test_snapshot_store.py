# ruff: noqa: F811  (the cohort_app fixture is imported from tests.support)
"""The analysis snapshot store (:mod:`vaikuttavuus.services.snapshots`): a build is claimed
(never two builders of a key at once), taken over when its builder died, stored whole or not
at all and not repeated for the same data; a payload is unpickled only when its signature
checks; a restored analysis holds the computed sections and cannot read the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from tests.support.cohort_data import cohort_app, cohort_template  # noqa: F401
from vaikuttavuus.database import read_snapshot
from vaikuttavuus.extensions import db
from vaikuttavuus.models import AnalysisSnapshot, Pilot
from vaikuttavuus.services import snapshots
from vaikuttavuus.services.analytics import Filters


def pilot(code: str) -> Pilot:
    found = db.session.scalar(select(Pilot).where(Pilot.code == code))
    assert found is not None
    return found


def ready_rows(code: str) -> list[AnalysisSnapshot]:
    db.session.rollback()
    return list(
        db.session.scalars(
            select(AnalysisSnapshot).where(
                AnalysisSnapshot.pilot_id == pilot(code).id, AnalysisSnapshot.status == "ready"
            )
        )
    )


def key_of(code: str) -> snapshots.SnapshotKey:
    return snapshots.cohort_key(pilot(code), Filters(), view={"section": "overview"})


def test_one_builder_per_key_and_a_dead_builders_claim_is_taken_over(
    cohort_app: Flask,
) -> None:
    key = key_of("bph")
    writer = Session(bind=db.engine, expire_on_commit=False)
    try:
        with read_snapshot() as snapshot:
            version = snapshots.version_of(db.session, pilot("bph"))
            data = snapshots.data_version_digest(snapshot.data_version(pilot("bph").id))
        claim = snapshots._claim(writer, key, version, data)  # a builder at work
        assert isinstance(claim, snapshots.Claim)
        assert snapshots.build(key).status == "busy"
        assert ready_rows("bph") == []

        # the builder dies: its lease runs out and the next build takes the key over
        writer.execute(
            update(AnalysisSnapshot)
            .where(AnalysisSnapshot.id == claim.id)
            .values(lease_until=datetime.now(UTC) - timedelta(seconds=1), progress=40)
        )
        writer.commit()
        result = snapshots.build(key)
        assert result.status == "built"
        assert result.snapshot_id == claim.id
        [row] = ready_rows("bph")
        assert row.payload is not None and row.progress == 100 and row.lease_token is None
        # idempotent: the same data version is not computed again
        assert snapshots.build(key).status == "ready"
        db.session.rollback()
        total = db.session.scalar(select(func.count()).select_from(AnalysisSnapshot))
        assert total == 1
    finally:
        writer.close()


def test_views_built_together_keep_the_claims_waiting_their_turn_alive(
    cohort_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build of several views computes them one after the other. While the first one takes
    longer than a lease, the views still waiting keep a live lease: another builder finds them
    busy instead of taking them over (two builders of one key at once)."""
    bph = pilot("bph")
    keys = [
        snapshots.cohort_key(bph, Filters(), view={"section": section})
        for section in ("overview", "quality")
    ]
    with read_snapshot() as snapshot:
        version = snapshots.version_of(db.session, bph)
        data = snapshots.data_version_digest(snapshot.data_version(bph.id))
    real_compute = snapshots.compute_cohort
    rival = Session(bind=db.engine, expire_on_commit=False)
    rival_claims: list[Any] = []

    def slow_compute(analysis: Any, view: dict[str, Any], progress: Any) -> Any:
        if not rival_claims:  # the first view: every lease runs out while it is computed
            rival.execute(
                update(AnalysisSnapshot)
                .where(AnalysisSnapshot.status == "building")
                .values(lease_until=datetime.now(UTC) - timedelta(seconds=1))
            )
            rival.commit()
            drawn = real_compute(analysis, view, progress)
            rival_claims.append(snapshots._claim(rival, keys[1], version, data))
            return drawn
        return real_compute(analysis, view, progress)

    monkeypatch.setattr(snapshots, "compute_cohort", slow_compute)
    try:
        results = snapshots.build_views(keys)
    finally:
        rival.close()
    assert rival_claims == [None]  # the waiting view was busy, not abandoned
    assert [result.status for result in results] == ["built", "built"]
    assert len(ready_rows("bph")) == 2


def test_a_snapshot_whose_signature_fails_is_never_unpickled(
    cohort_app: Flask,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = key_of("bph")
    assert snapshots.build(key).status == "built"
    [row] = ready_rows("bph")
    version, data = row.code_version, row.data_version
    assert snapshots.find(db.session, key, version, data) is not None

    db.session.execute(
        update(AnalysisSnapshot)
        .where(AnalysisSnapshot.id == row.id)
        .values(payload=row.payload + b"x")  # type: ignore[operator]
    )
    db.session.commit()

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("unpickled a payload whose signature did not check")

    monkeypatch.setattr(snapshots.pickle, "loads", refuse)
    snapshots.forget_states()  # what this process loaded (and checked) before is not reused
    assert snapshots.find(db.session, key, version, data) is None


def test_a_restored_analysis_cannot_read_the_database(cohort_app: Flask) -> None:
    key = key_of("older-adults")
    snapshots.build(key)
    [row] = ready_rows("older-adults")
    state = snapshots.load(row.payload, row.signature)  # type: ignore[arg-type]
    assert state is not None
    assert not set(state) & {"session", "scores", "cost_items", "answer_rows"}
    analysis = snapshots.restore(db.session, pilot("older-adults"), key, state)
    assert analysis.enrolment.to_dict() == state["enrolment"].to_dict()
    with pytest.raises(snapshots.SnapshotMissError):
        analysis.scores  # noqa: B018  (raw answers are not stored: reading them needs the database)
