"""Background jobs on Huey: the analyses behind the pages are computed by workers, not in the
web request.

The queue (``JOB_QUEUE_URL``):

* ``sqlite:///PATH`` (default: ``instance/jobs.sqlite3``): Huey's SQLite storage, embedded,
  nothing more to run; workers on the same machine share it.
* ``redis://HOST:PORT/DB``: Huey's Redis storage, for several machines (the Redis client is the
  ``redis`` extra, also in ``requirements.lock``).
* ``immediate``: every job runs at once in the process that asks for it (tests, and a single
  process without workers).

``vaikuttavuus worker`` runs a consumer (:func:`run_worker`). Jobs are idempotent and the
snapshot table (:mod:`vaikuttavuus.services.snapshots`) keeps two builders of the same key
apart and lets a build of a killed worker be taken over, so the queue only carries *what to
do*: a lost or repeated message never loses or doubles work. Messages are signed with a key
derived from ``SECRET_KEY`` (Huey's :class:`~huey.serializer.SignedSerializer`), so a message
written into the queue by someone without the key is refused before it is unpickled.

``/healthz`` checks the queue (``checks.job_queue``): the storage answers.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app, has_app_context

from vaikuttavuus.health import DependencyUnavailableError, register_check

if TYPE_CHECKING:
    from huey import Huey

    from vaikuttavuus.services.snapshots import SnapshotKey

logger = logging.getLogger(__name__)

EXTENSION = "vaikuttavuus.jobs"
QUEUED_TTL_SECONDS = 600
"""A key asked for stays marked as queued this long: page views meanwhile do not queue it
again (after that, or once its build has started, they may)."""


@dataclass
class JobQueue:
    huey: Huey
    tasks: dict[str, Any]
    url: str

    @property
    def immediate(self) -> bool:
        return bool(self.huey.immediate)


def default_url(instance_path: str) -> str:
    return f"sqlite:///{Path(instance_path) / 'jobs.sqlite3'}"


def _serializer(app: Flask) -> Any:
    from huey.serializer import SignedSerializer

    return SignedSerializer(secret=str(app.config["SECRET_KEY"]), salt="vaikuttavuus.jobs")


def make_huey(app: Flask, url: str) -> Huey:
    from huey import MemoryHuey, RedisHuey, SqliteHuey

    name = "vaikuttavuus"
    serializer = _serializer(app)
    if url == "immediate":
        return MemoryHuey(name, immediate=True, serializer=serializer, results=True)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisHuey(name, url=url, serializer=serializer, results=False)
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteHuey(name, filename=str(path), serializer=serializer, results=False)
    raise ValueError(f"JOB_QUEUE_URL: unknown queue {url!r} (sqlite:///…, redis://… or immediate)")


@contextlib.contextmanager
def _context(app: Flask) -> Iterator[None]:
    """The app context a job runs in: the caller's (immediate mode), else a new one."""
    if has_app_context() and current_app._get_current_object() is app:  # type: ignore[attr-defined]
        yield
        return
    with app.app_context():
        from vaikuttavuus.extensions import db

        try:
            yield
        finally:
            db.session.remove()


def _register_tasks(huey: Huey, app: Flask) -> dict[str, Any]:
    from huey import crontab

    @huey.task(name="build_snapshots", retries=2, retry_delay=30)
    def build_snapshots(keys_json: list[dict[str, Any]]) -> list[str]:
        """Build snapshots (the views of each cohort analysis from one read of the data)."""
        from vaikuttavuus.services import snapshots

        keys = [snapshots.SnapshotKey.from_json(item) for item in keys_json]
        with _context(app):
            _queued_mark_clear(huey, keys)
            results = snapshots.build_any(keys)
            for key, result in zip(keys, results, strict=True):
                logger.info(
                    "snapshot %s %s of pilot %s: %s",
                    key.kind,
                    key.params_dict.get("view") or key.params_dict.get("period"),
                    key.pilot_id,
                    result.status,
                )
            return [result.status for result in results]

    @huey.periodic_task(crontab(minute="*"), name="refresh_snapshots")
    def refresh_snapshots() -> int:
        from vaikuttavuus.services import precompute

        with _context(app):
            return precompute.refresh_due(lambda keys: enqueue_builds(keys, app=app))

    @huey.periodic_task(crontab(minute="15", hour="2"), name="nightly_snapshots")
    def nightly_snapshots() -> int:
        from vaikuttavuus.services import precompute

        with _context(app):
            precompute.prune_expired_snapshots()
            return precompute.refresh_all(lambda keys: enqueue_builds(keys, app=app))

    return {
        "build_snapshots": build_snapshots,
        "refresh_snapshots": refresh_snapshots,
        "nightly_snapshots": nightly_snapshots,
    }


def init_app(app: Flask) -> None:
    url = str(app.config.get("JOB_QUEUE_URL") or default_url(app.instance_path))
    huey = make_huey(app, url)
    app.extensions[EXTENSION] = JobQueue(huey, _register_tasks(huey, app), url)


def queue(app: Flask | None = None) -> JobQueue:
    found = (app or current_app).extensions.get(EXTENSION)
    if not isinstance(found, JobQueue):
        raise RuntimeError("the job queue is not set up (vaikuttavuus.jobs.init_app)")
    return found


def _queued_mark(keys: list[SnapshotKey]) -> str:
    names = ",".join(sorted(f"{key.pilot_id}:{key.digest}" for key in keys))
    return "queued:" + hashlib.sha256(names.encode()).hexdigest()[:32]


def _queued_mark_clear(huey: Huey, keys: list[SnapshotKey]) -> None:
    with contextlib.suppress(Exception):
        huey.storage.delete_data(_queued_mark(keys))


def enqueue_build(key: SnapshotKey, *, app: Flask | None = None) -> bool:
    """Queue the build of ``key`` (see :func:`enqueue_builds`)."""
    return enqueue_builds([key], app=app)


def enqueue_builds(keys: list[SnapshotKey], *, app: Flask | None = None) -> bool:
    """Queue one build of ``keys`` (views of one analysis) unless the same build is queued
    already; returns whether it queued it. In immediate mode the build runs now, and its error
    (if any) is raised here."""
    jobs = queue(app)
    if not keys:
        return False
    payload = [key.to_json() for key in keys]
    if jobs.immediate:
        result = jobs.tasks["build_snapshots"](payload)
        if result is not None:
            result.get()  # raises the job's error (immediate mode: tests)
        return True
    mark, now = _queued_mark(keys), time.time()
    try:
        storage = jobs.huey.storage
        fresh = storage.put_if_empty(mark, str(now).encode())
        if not fresh:  # queued before: again only when that was long ago (a lost message)
            held = storage.peek_data(mark)
            since = float(held) if isinstance(held, bytes | str) else 0.0
            if now - since > QUEUED_TTL_SECONDS:
                storage.put_data(mark, str(now).encode())
                fresh = True
        if fresh:
            jobs.tasks["build_snapshots"](payload)
    except Exception as error:
        raise DependencyUnavailableError("job_queue", type(error).__name__) from error
    return bool(fresh)


def describe(url: str) -> str:
    """The queue's address without a password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://…@{rest.rsplit('@', 1)[1]}"
    return url


def pending() -> int:
    """Messages waiting in the queue."""
    return int(queue().huey.pending_count())


def _check() -> None:
    """``/healthz``: the queue's storage answers."""
    if not has_app_context():
        return
    found = current_app.extensions.get(EXTENSION)
    if isinstance(found, JobQueue):
        found.huey.storage.queue_size()


register_check("job_queue", _check)


def run_worker(
    app: Flask,
    *,
    workers: int = 1,
    periodic: bool = True,
    on_start: Callable[[JobQueue], None] | None = None,
) -> None:
    """Run a Huey consumer in this process until interrupted (SIGINT: finish the running jobs
    and stop; SIGTERM: stop now — an interrupted build is taken over later, never half
    stored)."""
    from huey.consumer import Consumer

    jobs = queue(app)
    if jobs.immediate:
        raise ValueError("JOB_QUEUE_URL is 'immediate': jobs run where they are asked for")
    if on_start is not None:
        on_start(jobs)
    consumer = Consumer(jobs.huey, workers=workers, worker_type="thread", periodic=periodic)
    consumer.run()
