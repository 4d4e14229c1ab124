"""How long analysis snapshots are kept (table ``analysis_snapshots``).

Every data change makes new snapshots; without pruning the table grows by the size of every
analysis for every change. Two rules keep it bounded:

* :func:`prune_superseded` — when a snapshot has been stored, only the two newest ready
  snapshots of its key and code version stay (the new one, and the one a request may have
  started to read just before), and the failed attempts before them go;
* :func:`prune_expired` — nightly (before the default views are computed again), every
  finished snapshot older than ``SNAPSHOT_RETENTION_DAYS``: views of filters nobody has asked
  for since, and the results of code or definition versions no longer running. A view asked
  for again is simply built again.

A snapshot being built (``building``) is never touched: its builder owns it until its lease
runs out.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select

from vaikuttavuus.database import AnySession, affected_rows
from vaikuttavuus.models import AnalysisSnapshot

KEEP_READY = 2
"""Ready snapshots kept per key and code version."""

DEFAULT_RETENTION_DAYS = 30


def prune_superseded(
    session: AnySession, *, pilot_id: int, kind: str, params_key: str, code_version: str
) -> int:
    """Delete the ready snapshots of one key and code version beyond the newest
    :data:`KEEP_READY`, and its failed attempts older than the newest ready one; returns how
    many rows went (the caller commits)."""
    same_key = (
        (AnalysisSnapshot.pilot_id == pilot_id)
        & (AnalysisSnapshot.kind == kind)
        & (AnalysisSnapshot.params_key == params_key)
        & (AnalysisSnapshot.code_version == code_version)
    )
    kept = list(
        session.scalars(
            select(AnalysisSnapshot.id)
            .where(same_key, AnalysisSnapshot.status == "ready")
            .order_by(AnalysisSnapshot.data_taken_at.desc(), AnalysisSnapshot.id.desc())
            .limit(KEEP_READY)
        )
    )
    if not kept:
        return 0
    newest = kept[0]
    older_ready = same_key & (AnalysisSnapshot.status == "ready") & AnalysisSnapshot.id.not_in(kept)
    older_failed = same_key & (AnalysisSnapshot.status == "failed") & (AnalysisSnapshot.id < newest)
    result = session.execute(
        delete(AnalysisSnapshot)
        .where(older_ready | older_failed)
        .execution_options(synchronize_session=False)
    )
    return affected_rows(result)


def prune_expired(session: AnySession, *, retention_days: int, now: datetime | None = None) -> int:
    """Delete every ready or failed snapshot finished (failed: created) more than
    ``retention_days`` ago; returns how many rows went (the caller commits)."""
    if retention_days < 1:
        raise ValueError("SNAPSHOT_RETENTION_DAYS must be at least 1")
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    ready = (AnalysisSnapshot.status == "ready") & (AnalysisSnapshot.finished_at < cutoff)
    failed = (AnalysisSnapshot.status == "failed") & (AnalysisSnapshot.created_at < cutoff)
    result = session.execute(
        delete(AnalysisSnapshot).where(ready | failed).execution_options(synchronize_session=False)
    )
    return affected_rows(result)
