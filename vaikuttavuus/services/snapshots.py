"""Analysis snapshots: the result of an analysis stored per data version, so that pages, CSVs
and PDFs read it instead of computing it in the request.

A snapshot is keyed by

* the analysis: pilot, kind (``cohort``), parameters (filters, period, as-of date, bootstrap
  replicates, seed, imputed data sets) — :class:`SnapshotKey`;
* the **code version** (:func:`code_version`: the analysis code and the snapshot format) and the
  **definition version** of the pilot (its definition, its instruments' current versions and
  the costing catalogue): a new release or a changed definition never reads an old result;
* the **data version** (:func:`vaikuttavuus.queries.pilot_data_version`): every import,
  answer, correction, withdrawal or erasure gives a new one.

What is stored is language-independent: the computed sections of
:class:`~vaikuttavuus.services.analytics.CohortAnalysis` (tables, estimates, intervals, the
definitions they were computed with), without the raw rows read from the database. A page
restores an analysis from it (:func:`restore`) whose database access is cut off
(:class:`DetachedSession`): labels, charts and the page's language are applied at request
time, and anything the snapshot lacks raises :class:`SnapshotMissError` instead of quietly reading
newer data into an older result. One exception: the cohort page's view, which the build draws
anyway to learn what it needs, is kept as drawn in the build's language
(:data:`DRAWN_LANGUAGE`, Finnish: :data:`DRAWN_PAGES`), so a Finnish page view draws no chart in
the web worker; other languages are drawn at request time.

**Serialisation.** The sections are frozen dataclasses holding pandas frames and numpy arrays;
they are stored as a zlib-compressed pickle **signed** with HMAC-SHA-256 under a key derived
from ``SECRET_KEY`` (:func:`sign`). Only the app writes snapshots, and a payload is unpickled
only after its signature checks (:func:`hmac.compare_digest`): someone who can write to the
database but does not hold ``SECRET_KEY`` cannot make the app unpickle anything (a tampered or
foreign row is treated as missing and rebuilt). Changing ``SECRET_KEY`` makes every snapshot
unreadable, so they are rebuilt. The code version in the key means a payload is only ever read
by the code that wrote it (no class-layout drift). JSON would need a hand-written schema for
every result type of the analyses; the signed pickle keeps exactly what was computed.

**Building** (:func:`build`) reads in its own read snapshot and session, claims the key
(a ``building`` row with a lease, renewed as the work progresses), computes every section the
pages show, and stores payload and ``ready`` in one transaction: there is never a half
snapshot, two builders never compute the same key at once (the unique key and the lease), and
a builder that dies (killed worker) leaves a row whose lease runs out and is taken over by
the next build of that key.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import json
import logging
import os
import pickle
import secrets
import socket
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer

from vaikuttavuus.county_time import county_today
from vaikuttavuus.database import AnySession, DataVersion, affected_rows, read_snapshot
from vaikuttavuus.extensions import db
from vaikuttavuus.models import AnalysisSnapshot, InstrumentVersion, Pilot

if TYPE_CHECKING:  # the analytics load only where an analysis is computed
    from vaikuttavuus.services.analytics.recorded import RecordedRows

logger = logging.getLogger(__name__)

FORMAT = 1
"""Raised when what a payload holds changes in a way the code version would not show."""
KIND_COHORT = "cohort"
LEASE = timedelta(minutes=3)
"""A ``building`` row whose lease ran out belongs to a builder that died: it is taken over."""

NOT_STORED = frozenset(
    {
        # the request's objects, re-attached on restore
        "session",
        "pilot",
        "spec",
        "filters",
        "_lock",
        # raw rows read from the database: large, and no page shows them
        "scores",
        "score_frames",
        "cost_items",
        "exposures",
        "measurements",
        "invitations",
        "recorded_rows",
        "_shared_rows",
        "answer_rows",
        "_answered",
        "_changes_cache",
        "_due_cache",
    }
)
"""Attributes of a computed :class:`CohortAnalysis` that a snapshot leaves out."""


class SnapshotMissError(LookupError):
    """A restored analysis was asked for something its snapshot does not hold."""


class DetachedSession:
    """The session of a restored analysis: any database access raises :class:`SnapshotMissError`."""

    def __getattr__(self, name: str) -> Any:
        raise SnapshotMissError(f"a restored analysis tried to use the database ({name})")


# -- keys and versions --------------------------------------------------------------------------


@dataclass(frozen=True)
class SnapshotKey:
    """What an analysis was asked for (everything that changes its result except the code,
    definitions and data versions)."""

    pilot_id: int
    kind: str
    params: tuple[tuple[str, Any], ...]

    @property
    def params_dict(self) -> dict[str, Any]:
        return dict(self.params)

    @property
    def digest(self) -> str:
        canonical = json.dumps(self.params_dict, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(f"{self.kind}:{canonical}".encode()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        """A JSON form for the job queue."""
        return {"pilot_id": self.pilot_id, "kind": self.kind, "params": self.params_dict}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SnapshotKey:
        return cls(int(data["pilot_id"]), str(data["kind"]), tuple(sorted(data["params"].items())))


def cohort_key(
    pilot: Pilot,
    filters: Any,
    *,
    as_of: date | None = None,
    n_boot: int | None = None,
    seed: int | None = None,
    imputations: int | None = None,
    view: dict[str, Any] | None = None,
) -> SnapshotKey:
    """The key of a cohort analysis with the reports' settings (as the pages run it), for
    one view of the cohort page (:func:`cohort_view_of`): a snapshot holds what that view,
    its CSVs and the views before it needed, so a filter click computes one section."""
    from vaikuttavuus import report_settings
    from vaikuttavuus.domain.defaults import DEFAULT_SEED

    settings = report_settings.current()
    params = {
        "filters": filters.to_dict(),
        "as_of": (filters.release or as_of or county_today()).isoformat(),
        "n_boot": int(n_boot if n_boot is not None else settings.n_boot),
        "seed": int(seed if seed is not None else DEFAULT_SEED),
        "imputations": imputations if imputations is not None else settings.imputations,
        "view": cohort_view_of(view or {}),
    }
    return SnapshotKey(pilot.id, KIND_COHORT, tuple(sorted(params.items())))


SUMMARY_VIEW = "summary"
"""The view of a cohort key that holds what the cohort summary PDF shows (every section's
tables, as the PDF has them)."""


def cohort_view_of(asked: dict[str, Any]) -> dict[str, Any]:
    """The cohort page's view in a canonical form: the section (unknown: the first) and the
    options that section has (the CEA effect; the service score and both groupings)."""
    from vaikuttavuus.services.cohort_page import SECTIONS

    section = asked.get("section")
    if section == SUMMARY_VIEW:
        return {"section": SUMMARY_VIEW}
    section = section if section in SECTIONS else SECTIONS[0]
    view: dict[str, Any] = {"section": section}
    if section == "cea" and asked.get("effect"):
        view["effect"] = str(asked["effect"])
    if section == "services":
        if asked.get("score"):
            view["score"] = str(asked["score"])
        view["sectors"] = bool(asked.get("sectors"))
    return view


def filters_of(key: SnapshotKey) -> Any:
    from vaikuttavuus.services.analytics import Filters

    raw = key.params_dict["filters"]

    def day(value: str | None) -> date | None:
        return date.fromisoformat(value) if value else None

    return Filters(
        period=(day(raw["from"]), day(raw["to"])),
        arm=raw["arm"],
        unit=raw["unit"],
        time_point=raw["time_point"],
        release=day(raw["release"]),
    )


@functools.cache
def code_version() -> str:
    """A fingerprint of the package's Python code, its message catalogues and the snapshot
    format: a new release (or any change of the code) never reads a result computed by
    another."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256(f"format {FORMAT}".encode())
    # the catalogues too: a stored page (DRAWN_PAGES) holds translated text
    for path in sorted([*package.rglob("*.py"), *package.glob("translations/*/LC_MESSAGES/*.po")]):
        if "migrations" in path.parts:
            continue
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def definition_version(session: AnySession, pilot: Pilot) -> str:
    """A fingerprint of the pilot's definition, its instruments' current versions and the
    costing catalogue (read in the caller's snapshot)."""
    from vaikuttavuus import queries

    digest = hashlib.sha256(pilot.definition_hash.encode())
    instruments = session.execute(
        select(InstrumentVersion.code, InstrumentVersion.version, InstrumentVersion.definition_hash)
        .where(InstrumentVersion.is_current.is_(True))
        .order_by(InstrumentVersion.code)
    ).all()
    digest.update(repr([tuple(row) for row in instruments]).encode())
    for name, frame in sorted(queries.costing_tables(session).items()):
        digest.update(name.encode())
        digest.update(frame.to_csv(index=False).encode())
    return digest.hexdigest()


def version_of(session: AnySession, pilot: Pilot) -> str:
    """Code and definition version together (the ``code_version`` column)."""
    combined = f"{code_version()}:{definition_version(session, pilot)}"
    return hashlib.sha256(combined.encode()).hexdigest()


def data_version_digest(version: DataVersion) -> str:
    return hashlib.sha256(repr(version.fingerprint).encode()).hexdigest()


# -- signing ------------------------------------------------------------------------------------


def _signing_key() -> bytes:
    secret = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(secret, b"vaikuttavuus.analysis-snapshot.v1", hashlib.sha256).digest()


def sign(payload: bytes) -> str:
    return hmac.new(_signing_key(), payload, hashlib.sha256).hexdigest()


def dump(state: dict[str, Any]) -> tuple[bytes, str]:
    payload = zlib.compress(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL), 3)
    return payload, sign(payload)


def load(payload: bytes, signature: str | None) -> dict[str, Any] | None:
    """The stored state, or ``None`` when the signature does not check (never unpickled)."""
    if not signature or not hmac.compare_digest(sign(payload), signature):
        logger.warning("an analysis snapshot with a bad signature was ignored")
        return None
    state = pickle.loads(zlib.decompress(payload))  # signed by this app: see the module docstring
    return state if isinstance(state, dict) else None


# -- reading ------------------------------------------------------------------------------------

STATES_KEPT = 16
"""Loaded snapshot states kept per process (least recently used go first): a page view of a
snapshot read a moment ago neither reads its payload again nor unpickles it. One per analysis
key: a newer snapshot of the key replaces the older one, so what is kept is bounded by the
keys in use, however often the data change."""
_STATES: OrderedDict[tuple[str, str], tuple[tuple[str, int, str, str], dict[str, Any]]]
_STATES = OrderedDict()
"""By database and key digest: (database, row id, key digest, data version) of the state
held (a deleted row's id may be reused) and the state."""
_STATES_LOCK = threading.Lock()


def _cached_state(held: tuple[str, int, str, str]) -> dict[str, Any] | None:
    with _STATES_LOCK:
        found = _STATES.get((held[0], held[2]))
        if found is None or found[0] != held:
            return None
        _STATES.move_to_end((held[0], held[2]))
        return found[1]


def forget_states() -> None:
    """Drop the loaded states (tests)."""
    with _STATES_LOCK:
        _STATES.clear()


def _keep_state(held: tuple[str, int, str, str], state: dict[str, Any]) -> None:
    with _STATES_LOCK:
        slot = (held[0], held[2])
        found = _STATES.get(slot)
        if found is not None and found[0] != held and found[0][1] > held[1]:
            return  # a newer snapshot of the key is held: an older one is not kept over it
        _STATES[slot] = (held, state)
        _STATES.move_to_end(slot)
        while len(_STATES) > STATES_KEPT:
            _STATES.popitem(last=False)


@dataclass(frozen=True)
class StoredSnapshot:
    """A ready snapshot as a page uses it."""

    id: int
    data_version: str
    data_taken_at: datetime
    finished_at: datetime | None
    current: bool
    """Whether it was computed from the data the request sees (else newer data exist)."""
    state: dict[str, Any]


@dataclass(frozen=True)
class Building:
    """A build of the key in progress (for the page's "refresh running, n %")."""

    progress: int
    started_at: datetime


def find(
    session: AnySession, key: SnapshotKey, version: str, data_version: str
) -> StoredSnapshot | None:
    """The newest ready snapshot of ``key`` for this code and definition version (the one of
    ``data_version`` when there is one), with its state checked and loaded."""
    rows = session.scalars(
        select(AnalysisSnapshot)
        .options(defer(AnalysisSnapshot.payload))  # read only when not held in this process
        .where(
            AnalysisSnapshot.pilot_id == key.pilot_id,
            AnalysisSnapshot.kind == key.kind,
            AnalysisSnapshot.params_key == key.digest,
            AnalysisSnapshot.code_version == version,
            AnalysisSnapshot.status == "ready",
        )
        .order_by(AnalysisSnapshot.data_taken_at.desc(), AnalysisSnapshot.id.desc())
        .limit(5)
    ).all()
    rows = sorted(rows, key=lambda row: row.data_version != data_version)
    database = session.get_bind().engine.url.render_as_string(hide_password=True)
    for row in rows:
        if row.data_taken_at is None:
            continue
        held = (database, row.id, row.params_key, row.data_version)
        state = _cached_state(held)
        if state is None:
            if row.payload is None:
                continue
            state = load(row.payload, row.signature)
            if state is None:
                continue
            _keep_state(held, state)
        return StoredSnapshot(
            id=row.id,
            data_version=row.data_version,
            data_taken_at=row.data_taken_at,
            finished_at=row.finished_at,
            current=row.data_version == data_version,
            state=state,
        )
    return None


def building(session: AnySession, key: SnapshotKey, version: str) -> Building | None:
    """A live build of ``key`` (lease not run out), if any."""
    now = datetime.now(UTC)
    row = session.scalars(
        select(AnalysisSnapshot)
        .where(
            AnalysisSnapshot.pilot_id == key.pilot_id,
            AnalysisSnapshot.kind == key.kind,
            AnalysisSnapshot.params_key == key.digest,
            AnalysisSnapshot.code_version == version,
            AnalysisSnapshot.status == "building",
        )
        .order_by(AnalysisSnapshot.id.desc())
        .limit(1)
    ).first()
    if row is None or row.lease_until is None or row.lease_until < now:
        return None
    return Building(progress=row.progress, started_at=row.created_at)


def restore(session: AnySession, pilot: Pilot, key: SnapshotKey, state: dict[str, Any]) -> Any:
    """A :class:`CohortAnalysis` holding the snapshot's sections, without database access."""
    from vaikuttavuus.services.analytics import CohortAnalysis

    params = key.params_dict
    analysis = CohortAnalysis(
        session,
        pilot,
        filters_of(key),
        n_boot=params["n_boot"],
        seed=params["seed"],
        as_of=date.fromisoformat(params["as_of"]),
        imputations=params["imputations"],
    )
    analysis.__dict__.update({name: value for name, value in state.items() if name != DRAWN_PAGES})
    analysis.session = DetachedSession()  # type: ignore[assignment]
    return analysis


# -- building -----------------------------------------------------------------------------------


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:200]


@dataclass
class Claim:
    id: int
    token: str


def _claim(
    writer: Session, key: SnapshotKey, version: str, data_version: str
) -> Claim | AnalysisSnapshot | None:
    """Claim the build of ``key`` at ``data_version``: a :class:`Claim`, the ready row when it
    is built already, or ``None`` when another builder holds a live lease."""
    now = datetime.now(UTC)
    token = secrets.token_hex(16)
    where = (
        AnalysisSnapshot.pilot_id == key.pilot_id,
        AnalysisSnapshot.kind == key.kind,
        AnalysisSnapshot.params_key == key.digest,
        AnalysisSnapshot.code_version == version,
        AnalysisSnapshot.data_version == data_version,
    )
    row = writer.scalars(select(AnalysisSnapshot).where(*where)).first()
    if row is None:
        row = AnalysisSnapshot(
            pilot_id=key.pilot_id,
            kind=key.kind,
            params_key=key.digest,
            params=key.params_dict,
            code_version=version,
            data_version=data_version,
            status="building",
            progress=0,
            lease_token=token,
            lease_until=now + LEASE,
            worker=_worker_name(),
            created_at=now,
        )
        writer.add(row)
        try:
            writer.commit()
        except IntegrityError:  # another builder inserted it meanwhile
            writer.rollback()
            return None
        return Claim(row.id, token)
    if row.status == "ready":
        return row
    if row.status == "building" and row.lease_until is not None and row.lease_until > now:
        return None
    # failed, or a builder that died: take it over (compare-and-set on the old token)
    taken = affected_rows(
        writer.execute(
            update(AnalysisSnapshot)
            .where(AnalysisSnapshot.id == row.id, AnalysisSnapshot.status == row.status)
            .where(
                AnalysisSnapshot.lease_token.is_(None)
                if row.lease_token is None
                else AnalysisSnapshot.lease_token == row.lease_token
            )
            .values(
                status="building",
                progress=0,
                lease_token=token,
                lease_until=now + LEASE,
                worker=_worker_name(),
                created_at=now,
                error=None,
            )
        )
    )
    writer.commit()
    return Claim(row.id, token) if taken == 1 else None


def _claim_keys(
    writer: Session,
    keys: list[SnapshotKey],
    version: str,
    data_version: str,
    results: list[BuildResult],
    open_claims: list[Claim],
) -> list[tuple[int, SnapshotKey, Claim]]:
    """Claim each of ``keys`` for one build: a snapshot ready already goes into ``results``,
    a key claimed is added to ``open_claims`` and returned with its position (the keys to
    build, in order); a key another builder holds is left as it is in ``results``."""
    todo: list[tuple[int, SnapshotKey, Claim]] = []
    for number, key in enumerate(keys):
        claimed = _claim(writer, key, version, data_version)
        if isinstance(claimed, AnalysisSnapshot):
            results[number] = BuildResult("ready", claimed.id)
        elif isinstance(claimed, Claim):
            todo.append((number, key, claimed))
            open_claims.append(claimed)
    return todo


def _renew(writer: Session, claim: Claim, progress: int, waiting: Sequence[Claim] = ()) -> None:
    """Record ``claim``'s progress and extend its lease, and the leases of the other claims of
    the same build still ``waiting`` for their turn: a build of several keys computes them one
    after the other, and none of them may look abandoned (and be taken over) meanwhile."""
    until = datetime.now(UTC) + LEASE
    writer.execute(
        update(AnalysisSnapshot)
        .where(AnalysisSnapshot.id == claim.id, AnalysisSnapshot.lease_token == claim.token)
        .values(progress=progress, lease_until=until)
    )
    for other in waiting:
        if other != claim:
            writer.execute(
                update(AnalysisSnapshot)
                .where(AnalysisSnapshot.id == other.id, AnalysisSnapshot.lease_token == other.token)
                .values(lease_until=until)
            )
    writer.commit()


DRAWN_PAGES = "__drawn_pages__"
"""The key of a cohort snapshot's state that holds its view as drawn by the build, by language
(:class:`~vaikuttavuus.services.cohort_page.DrawnPage`); not an attribute of the analysis."""
DRAWN_LANGUAGE = "fi"
"""The language the build computes in, and keeps the drawn page of (the county's default)."""


def compute_cohort(analysis: Any, view: dict[str, Any], progress: Callable[[int], None]) -> Any:
    """Compute what the cohort page's ``view`` (or the cohort summary PDF, :data:`SUMMARY_VIEW`)
    shows, as the page builds it, in :data:`DRAWN_LANGUAGE`: the computed sections stay in
    ``analysis``; the drawn page is returned
    (:class:`~vaikuttavuus.services.cohort_page.DrawnPage`; ``None`` for the summary)."""
    from flask_babel import force_locale

    from vaikuttavuus.services.cohort_page import DrawnPage, cohort_page
    from vaikuttavuus.services.cohort_summary import summary_context

    progress(10)
    drawn = None
    with current_app.test_request_context(), force_locale(DRAWN_LANGUAGE):
        if view.get("section") == SUMMARY_VIEW:
            summary_context(analysis, DRAWN_LANGUAGE)
        else:
            drawn = DrawnPage.of(cohort_page(analysis, DRAWN_LANGUAGE, **view))
    progress(90)
    return drawn


def harvest(analysis: Any) -> dict[str, Any]:
    """The computed, language-independent state of ``analysis`` (see :data:`NOT_STORED`)."""
    return {name: value for name, value in vars(analysis).items() if name not in NOT_STORED}


@dataclass(frozen=True)
class BuildResult:
    status: str
    """``built``, ``ready`` (it was there already) or ``busy`` (another builder holds it)."""
    snapshot_id: int | None


def build(key: SnapshotKey) -> BuildResult:
    """Build the snapshot of ``key`` (see :func:`build_views`)."""
    return build_views([key])[0]


def _same_analysis(keys: list[SnapshotKey]) -> bool:
    def without_view(key: SnapshotKey) -> str:
        params = {name: value for name, value in key.params if name != "view"}
        return json.dumps([key.pilot_id, key.kind, params], sort_keys=True)

    return len({without_view(key) for key in keys}) == 1


def _store(writer: Session, claim: Claim, payload: bytes, signature: str, taken: datetime) -> bool:
    """Payload and ``ready`` in one transaction (only while the claim is still ours)."""
    stored = affected_rows(
        writer.execute(
            update(AnalysisSnapshot)
            .where(AnalysisSnapshot.id == claim.id, AnalysisSnapshot.lease_token == claim.token)
            .values(
                status="ready",
                progress=100,
                payload=payload,
                signature=signature,
                data_taken_at=taken,
                finished_at=datetime.now(UTC),
                lease_token=None,
                lease_until=None,
            )
        )
    )
    writer.commit()
    return stored == 1


def _prune(writer: Session, key: SnapshotKey, version: str) -> None:
    """Drop the snapshots the one just stored has superseded (kept when that fails: the new
    snapshot is stored either way)."""
    from vaikuttavuus.services.snapshot_retention import prune_superseded

    try:
        prune_superseded(
            writer,
            pilot_id=key.pilot_id,
            kind=key.kind,
            params_key=key.digest,
            code_version=version,
        )
        writer.commit()
    except Exception:
        logger.exception("pruning superseded snapshots failed")
        writer.rollback()


def _fail(writer: Session, claims: list[Claim], error: BaseException) -> None:
    with contextlib.suppress(Exception):
        writer.rollback()
        for claim in claims:
            writer.execute(
                update(AnalysisSnapshot)
                .where(AnalysisSnapshot.id == claim.id, AnalysisSnapshot.lease_token == claim.token)
                .values(status="failed", error=repr(error)[:2000], lease_until=None)
            )
        writer.commit()


def build_views(
    keys: list[SnapshotKey], summaries: Sequence[SnapshotKey] = ()
) -> list[BuildResult]:
    """Build the snapshots of ``keys`` — views of one analysis (same pilot, filters and
    settings) — from one read of the data, at the data version the build's own read snapshot
    sees. Idempotent: a ready snapshot of that version is kept; a key another builder holds is
    left alone (``busy``). Runs in its own sessions, so it can run in a request or a worker;
    each view is stored whole, in one transaction, as soon as it is computed.

    ``summaries``: management summaries of the same pilot and one release and settings, built
    after the views in the same read snapshot and cut from the same read when the views are
    of the whole cohort (no period, arm or unit): the worker's build of a pilot's default
    views and management pack reads its data once. Returns the results of ``keys``, then
    those of ``summaries``."""
    if not keys:
        return build_management(list(summaries))
    if any(key.kind != KIND_COHORT for key in keys) or not _same_analysis(keys):
        raise ValueError("build_views takes views of one cohort analysis")
    if any(key.pilot_id != keys[0].pilot_id for key in summaries):
        raise ValueError("the summaries built with views are of the same pilot")
    return _build(keys[0].pilot_id, keys, list(summaries))


def build_management(keys: list[SnapshotKey]) -> list[BuildResult]:
    """Build the management summary snapshots of ``keys``
    (:mod:`vaikuttavuus.services.management_snapshots`; one pilot, release and settings, e.g.
    the default year and the last two quarters) like :func:`build_views`: each is claimed and
    stored on its own, and the periods still to build are cut from one read of the data."""
    if not keys:
        return []
    return _build(keys[0].pilot_id, [], keys)


def _build(
    pilot_id: int, views: list[SnapshotKey], summaries: list[SnapshotKey]
) -> list[BuildResult]:
    """The views, then the summaries, of one pilot in one read snapshot (see
    :func:`build_views`); the results in that order."""
    reader = Session(bind=db.engine)
    writer = Session(bind=db.engine, expire_on_commit=False)
    view_results: list[BuildResult] = [BuildResult("busy", None)] * len(views)
    summary_results: list[BuildResult] = [BuildResult("busy", None)] * len(summaries)
    open_claims: list[Claim] = []
    try:
        with read_snapshot(reader) as snapshot:
            pilot = reader.get(Pilot, pilot_id)
            if pilot is None:
                return [BuildResult("gone", None)] * (len(views) + len(summaries))
            version = version_of(reader, pilot)
            data_version = data_version_digest(snapshot.data_version(pilot.id))
            build = _Build(
                reader, writer, snapshot.taken_at, pilot, version, data_version, open_claims
            )
            rows = None
            if views and summaries and _whole_cohort(views[0]):
                from vaikuttavuus.services.analytics import cohort_rows

                rows = cohort_rows(reader, pilot)
            if views:
                build.views(views, view_results, rows)
            if summaries:
                build.summaries(summaries, summary_results, rows)
        return view_results + summary_results
    except BaseException as error:
        if isinstance(error, Exception):
            _fail(writer, open_claims, error)
        raise
    finally:
        reader.close()
        writer.close()


def _whole_cohort(key: SnapshotKey) -> bool:
    """Whether the view of ``key`` reads the pilot's whole cohort (no period, arm or unit)."""
    filters = filters_of(key)
    return filters.period == (None, None) and filters.arm is None and filters.unit is None


@dataclass(frozen=True)
class _Build:
    """What the snapshots built in one read snapshot share; ``open_claims``: the keys claimed
    and not yet stored (their leases are renewed while they wait; failed if the build fails)."""

    reader: Session
    writer: Session
    taken_at: datetime
    pilot: Pilot
    version: str
    data_version: str
    open_claims: list[Claim]

    def _claim(
        self, keys: list[SnapshotKey], results: list[BuildResult]
    ) -> list[tuple[int, SnapshotKey, Claim]]:
        return _claim_keys(
            self.writer, keys, self.version, self.data_version, results, self.open_claims
        )

    def _renew(self, claim: Claim, progress: int) -> None:
        _renew(self.writer, claim, progress, self.open_claims)

    def _keep(
        self,
        number: int,
        key: SnapshotKey,
        claim: Claim,
        state: dict[str, Any],
        results: list[BuildResult],
    ) -> None:
        """Store the computed ``state`` of ``key`` whole, and prune its older snapshots."""
        payload, signature = dump(state)
        stored = _store(self.writer, claim, payload, signature, self.taken_at)
        self.open_claims.remove(claim)
        if stored:
            _prune(self.writer, key, self.version)
        results[number] = BuildResult("built" if stored else "busy", claim.id)

    def views(
        self, keys: list[SnapshotKey], results: list[BuildResult], recorded: RecordedRows | None
    ) -> None:
        """Claim, compute and store the views of ``keys`` (one analysis) into ``results``;
        ``recorded``: the recorded rows of the pilot's whole cohort to read them from (None:
        the analysis reads its own)."""
        from vaikuttavuus.services.analytics import CohortAnalysis

        todo = self._claim(keys, results)
        if not todo:
            return
        params = keys[0].params_dict
        analysis = CohortAnalysis(
            self.reader,
            self.pilot,
            filters_of(keys[0]),
            n_boot=params["n_boot"],
            seed=params["seed"],
            as_of=date.fromisoformat(params["as_of"]),
            imputations=params["imputations"],
            recorded=recorded,
        )
        for number, key, claim in todo:

            def progress(done: int, claim: Claim = claim) -> None:
                self._renew(claim, done)

            drawn = compute_cohort(analysis, key.params_dict["view"], progress)
            state = harvest(analysis)
            if drawn is not None:
                state[DRAWN_PAGES] = {DRAWN_LANGUAGE: drawn}
            self._keep(number, key, claim, state, results)

    def summaries(
        self,
        keys: list[SnapshotKey],
        results: list[BuildResult],
        recorded: RecordedRows | None = None,
    ) -> None:
        """Claim, compute and store the management summaries of ``keys`` (one release and
        settings) into ``results``; the periods still to build are cut from one read: of
        ``recorded`` (the pilot's whole cohort, read for its views) when given."""
        from vaikuttavuus.services import management_snapshots

        todo = self._claim(keys, results)
        shared = (
            management_snapshots.shared_read(
                self.reader, self.pilot, [key for _n, key, _c in todo], recorded
            )
            if len(todo) > 1 or (todo and recorded is not None)
            else None
        )
        for number, key, claim in todo:
            self._renew(claim, 10)
            cohort = management_snapshots.compute(self.reader, self.pilot, key, shared)
            self._renew(claim, 90)
            self._keep(number, key, claim, management_snapshots.harvest(cohort), results)


def build_any(keys: list[SnapshotKey]) -> list[BuildResult]:
    """Build ``keys`` of any kind: the views of each cohort analysis from one read, and the
    management summaries of each pilot, release and settings from one read; a pilot's
    summaries and its views of the whole cohort (its default views) from one read together
    (:func:`build_views`)."""
    from vaikuttavuus.services import management_snapshots

    results: dict[int, BuildResult] = {}
    groups: dict[str, list[int]] = {}
    summaries: dict[str, list[int]] = {}
    for number, key in enumerate(keys):
        if key.kind == KIND_COHORT:
            params = {name: value for name, value in key.params if name != "view"}
            group = json.dumps([key.pilot_id, params], sort_keys=True)
            groups.setdefault(group, []).append(number)
        else:
            summaries.setdefault(management_snapshots.same_read(key), []).append(number)
    for numbers in groups.values():
        views = [keys[n] for n in numbers]
        partner = next(
            (
                read
                for read, summary in summaries.items()
                if keys[summary[0]].pilot_id == views[0].pilot_id
            ),
            None,
        )
        along = summaries.pop(partner) if partner is not None and _whole_cohort(views[0]) else []
        built = build_views(views, [keys[n] for n in along])
        for number, result in zip([*numbers, *along], built, strict=True):
            results[number] = result
    for numbers in summaries.values():
        built = build_management([keys[n] for n in numbers])
        for number, result in zip(numbers, built, strict=True):
            results[number] = result
    return [results[number] for number in range(len(keys))]


# -- serving a request ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Served:
    """An analysis restored for a request, and what the page says about its data."""

    analysis: Any
    snapshot_id: int
    label: str
    """The data version the figures come from (its first ten hex digits)."""
    taken_at: datetime
    """When that data was read: the page's "data as of"."""
    stale: bool
    """Newer data exist than the figures show (a refresh has been asked for)."""
    refresh: Building | None
    drawn: dict[str, Any]
    """The view as the build drew it, by language (:data:`DRAWN_PAGES`; may be empty)."""


IMMEDIATE_WAIT_SECONDS = 600.0
"""Without workers, how long a request waits for the same build running in another one."""


def _immediate() -> bool:
    from vaikuttavuus import jobs

    return jobs.queue().immediate


def request_refresh(key: SnapshotKey) -> None:
    """Ask for the snapshot of ``key`` at the newest data: a job of the queue
    (:mod:`vaikuttavuus.jobs`; run at once when the queue is immediate, as in tests)."""
    from vaikuttavuus import jobs

    jobs.enqueue_build(key)


def _lookup(
    pilot: Pilot, key: SnapshotKey
) -> tuple[str, str, StoredSnapshot | None, Building | None]:
    with read_snapshot() as snapshot:
        version = version_of(db.session, pilot)
        data_version = data_version_digest(snapshot.data_version(pilot.id))
        stored = find(db.session, key, version, data_version)
        live = building(db.session, key, version) if stored is None or not stored.current else None
    return version, data_version, stored, live


def serve(pilot: Pilot, key: SnapshotKey) -> Served | Building | None:
    """The snapshot of ``key`` for a request: the current one; else the newest older one
    while a refresh runs (asked for here); ``Building`` when none exists yet and one is being
    built; ``None`` when none exists and no build could be started."""
    _version, _data, stored, live = _lookup(pilot, key)
    if (stored is None or not stored.current) and live is None:
        request_refresh(key)
        _version, _data, stored, live = _lookup(pilot, key)
    if stored is None and live is not None and _immediate():
        # no workers (the queue is immediate): wait for the build another request runs
        deadline = time.monotonic() + IMMEDIATE_WAIT_SECONDS
        while stored is None and live is not None and time.monotonic() < deadline:
            time.sleep(0.2)
            _version, _data, stored, live = _lookup(pilot, key)
    if stored is None:
        return live
    return _served(pilot, key, stored, live)


def existing(pilot: Pilot, key: SnapshotKey) -> Served | None:
    """The newest stored snapshot of ``key`` (current or not) without asking for a build:
    for a download that can be answered from another view's snapshot."""
    _version, _data, stored, live = _lookup(pilot, key)
    return _served(pilot, key, stored, live) if stored is not None else None


def stored_keys(pilot: Pilot, keys: list[SnapshotKey]) -> list[SnapshotKey]:
    """Those of ``keys`` (in their order) that have a ready snapshot for this code version,
    found in one statement."""
    with read_snapshot():
        version = version_of(db.session, pilot)
        present = set(
            db.session.scalars(
                select(AnalysisSnapshot.params_key).where(
                    AnalysisSnapshot.pilot_id == pilot.id,
                    AnalysisSnapshot.params_key.in_([key.digest for key in keys]),
                    AnalysisSnapshot.code_version == version,
                    AnalysisSnapshot.status == "ready",
                )
            )
        )
    return [key for key in keys if key.digest in present]


def _served(
    pilot: Pilot, key: SnapshotKey, stored: StoredSnapshot, live: Building | None
) -> Served:
    if key.kind == KIND_COHORT:
        analysis = restore(db.session, pilot, key, stored.state)
    else:
        from vaikuttavuus.services import management_snapshots

        analysis = management_snapshots.restore(db.session, pilot, key, stored.state)
    return Served(
        analysis=analysis,
        snapshot_id=stored.id,
        label=stored.data_version[:10],
        taken_at=stored.data_taken_at,
        stale=not stored.current,
        refresh=live,
        drawn=stored.state.get(DRAWN_PAGES, {}),  # read only (the state is shared)
    )


def find_row(session: AnySession, key: SnapshotKey, version: str) -> tuple[str, datetime] | None:
    """The data version and finishing time of the newest ready snapshot of ``key`` (without
    its payload)."""
    row = session.execute(
        select(AnalysisSnapshot.data_version, AnalysisSnapshot.finished_at)
        .where(
            AnalysisSnapshot.pilot_id == key.pilot_id,
            AnalysisSnapshot.kind == key.kind,
            AnalysisSnapshot.params_key == key.digest,
            AnalysisSnapshot.code_version == version,
            AnalysisSnapshot.status == "ready",
        )
        .order_by(AnalysisSnapshot.data_taken_at.desc(), AnalysisSnapshot.id.desc())
        .limit(1)
    ).first()
    if row is None or row.finished_at is None:
        return None
    return str(row.data_version), row.finished_at
