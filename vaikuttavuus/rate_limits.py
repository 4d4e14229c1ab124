"""Rate-limit counters that every worker process and every server shares.

:class:`Throttle` (the app's ``limiter``, :mod:`vaikuttavuus.extensions`) counts failures in
fixed windows — a window starts at the first failure and lasts the limit's period ("10 per
minute", the `limits` library's notation) — in the store that ``RATELIMIT_STORAGE_URI`` names:

* ``database://`` (the default): the ``throttle_counters`` table of the app's own database
  (:class:`DatabaseStorage`), so the limits hold across every worker and server that uses the
  database, with nothing else to run. Each count is one short transaction of its own,
  committed at once, whatever becomes of the request;
* ``redis://host:port`` (or another storage URI of the `limits` library): that server;
* ``memory://``: one process only; ``vaikuttavuus serve`` refuses it with several workers.

Who is counted (an address, an account, a user) enters the key only as a keyed hash (HMAC
under the pseudonym key), so the store holds no typed username and no address in clear. The
policies — what is counted and when a request is refused — are in
:mod:`vaikuttavuus.security.throttle`.
"""

from __future__ import annotations

import math
import time
import weakref
from typing import Any

from flask import Flask, current_app
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter
from sqlalchemy import Engine, case, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

DATABASE_URI = "database://"
EXTENSION = "vaikuttavuus.throttle"
PURGE_AFTER_SECONDS = 3600
"""Rows whose window ended this long ago are deleted by the next count."""


class DatabaseStorage(Storage):
    """A `limits` storage in the app's database (table ``throttle_counters``)."""

    STORAGE_SCHEME = None  # made by Throttle with the app's engine, not from a URI

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine = engine

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return SQLAlchemyError

    @staticmethod
    def _table() -> Any:
        from vaikuttavuus.models import ThrottleCounter

        return ThrottleCounter.__table__

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        """Add ``amount`` in one atomic upsert (a window that has ended starts again) and
        return the new count."""
        table = self._table()
        now = time.time()
        insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        upsert = insert(table).values(key=key, failures=amount, expires_at=now + expiry)
        ended = table.c.expires_at <= now
        statement = upsert.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={
                "failures": case((ended, amount), else_=table.c.failures + amount),
                "expires_at": case((ended, now + expiry), else_=table.c.expires_at),
            },
        ).returning(table.c.failures)
        with self.engine.begin() as connection:
            count = int(connection.execute(statement).scalar_one())
            connection.execute(delete(table).where(table.c.expires_at < now - PURGE_AFTER_SECONDS))
        return count

    def get(self, key: str) -> int:
        table = self._table()
        with self.engine.connect() as connection:
            value = connection.execute(
                select(table.c.failures).where(table.c.key == key, table.c.expires_at > time.time())
            ).scalar()
        return int(value or 0)

    def get_expiry(self, key: str) -> float:
        table = self._table()
        with self.engine.connect() as connection:
            value = connection.execute(
                select(table.c.expires_at).where(table.c.key == key)
            ).scalar()
        return float(value) if value is not None else time.time()

    def check(self) -> bool:
        try:
            with self.engine.connect() as connection:
                connection.execute(select(1))
        except SQLAlchemyError:
            return False
        return True

    def reset(self) -> int | None:
        with self.engine.begin() as connection:
            return int(connection.execute(delete(self._table())).rowcount or 0)

    def clear(self, key: str) -> None:
        table = self._table()
        with self.engine.begin() as connection:
            connection.execute(delete(table).where(table.c.key == key))


class Throttle:
    """Failure counters of one Flask app (``init_app``), used within its app context."""

    def __init__(self) -> None:
        self._memory: weakref.WeakSet[Storage] = weakref.WeakSet()

    def init_app(self, app: Flask) -> None:
        uri = str(app.config.get("RATELIMIT_STORAGE_URI") or DATABASE_URI)
        # Any other store is made (and a wrong URI refused) when the app is created.
        storage = None if uri == DATABASE_URI else storage_from_string(uri)
        if isinstance(storage, MemoryStorage):
            self._memory.add(storage)
        app.extensions[EXTENSION] = {"uri": uri, "storage": storage}

    @staticmethod
    def uri(app: Flask) -> str:
        return str(app.extensions[EXTENSION]["uri"])

    @property
    def storage(self) -> Storage:
        state = current_app.extensions[EXTENSION]
        if state["storage"] is None:
            from vaikuttavuus.extensions import db

            state["storage"] = DatabaseStorage(db.engine)
        return state["storage"]

    @staticmethod
    def _key(limit: str, identifiers: tuple[str, ...]) -> tuple[RateLimitItem, tuple[str, ...]]:
        from vaikuttavuus.security.tokens import keyed_hash

        return parse(limit), tuple(keyed_hash(i, "throttle")[:24] for i in identifiers)

    def allowed(self, limit: str, *identifiers: str) -> bool:
        """Whether fewer failures than the limit allows were counted in the current window."""
        item, key = self._key(limit, identifiers)
        return FixedWindowRateLimiter(self.storage).test(item, *key)

    def hit(self, limit: str, *identifiers: str) -> bool:
        """Count one failure; False once the count goes over the limit."""
        item, key = self._key(limit, identifiers)
        return FixedWindowRateLimiter(self.storage).hit(item, *key)

    def retry_after(self, limit: str, *identifiers: str) -> int:
        """Seconds until the current window ends (at least 1)."""
        item, key = self._key(limit, identifiers)
        ends = self.storage.get_expiry(item.key_for(*key))
        return max(math.ceil(ends - time.time()), 1)

    def first_breach(self, limit: str, *identifiers: str) -> bool:
        """True for the first refusal in the current window (to audit it once)."""
        item, key = self._key(limit, identifiers)
        window = item.key_for(*key)
        ends = self.storage.get_expiry(window)
        remaining = max(math.ceil(ends - time.time()), 1)
        return self.storage.incr(f"noted/{window}/{int(ends)}", remaining) == 1

    def reset(self) -> None:
        """Forget every count: the current app's store (in an app context) and every
        in-memory store (tests)."""
        for storage in list(self._memory):
            storage.reset()
        try:
            state = current_app.extensions.get(EXTENSION)
        except RuntimeError:  # no app context
            return
        if state is not None and not isinstance(self.storage, MemoryStorage):
            self.storage.reset()
