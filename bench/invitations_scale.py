"""Time the scheduler and the outbox at county scale (``python -m bench.invitations_scale``).

Loads N people with enrolments (half in each pilot, index dates spread over two and a half
years) straight into a fresh database, without invitations, then times:

1. the first ``refresh`` (creates every missing invitation and sets its status),
2. the first ``enqueue`` (a first message for every open invitation),
3. the steady state a cron run every few minutes pays: ``refresh`` + ``enqueue`` again,
4. reminders due a week later (``enqueue`` with the clock moved on after a simulated send).

Usage: ``python -m bench.invitations_scale [--people 200000] [--backend sqlite|postgresql]``.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update


def _timed(label: str, action: Callable[[], Any], timings: dict[str, float], key: str) -> Any:
    """Run ``action``, print its time and result, and keep the time in ``timings[key]``."""
    started = time.perf_counter()
    result = action()
    seconds = time.perf_counter() - started
    timings[key] = round(seconds, 3)
    print(f"{label:<48} {seconds:8.2f} s   {result}")
    return result


def _report_slow_statements(engine: Any, threshold: float) -> None:
    from sqlalchemy import event

    @event.listens_for(engine, "before_cursor_execute")
    def _start(conn: Any, *_args: Any) -> None:
        conn.info["started"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _end(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        elapsed = time.perf_counter() - conn.info.get("started", time.perf_counter())
        if elapsed >= threshold:
            print(f"    {elapsed:7.2f} s  {' '.join(statement.split())[:160]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=200_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument(
        "--slow", type=float, default=None, help="Print statements slower than this (s)."
    )
    args = parser.parse_args()

    from tests.support import postgres

    server = postgres.start() if args.backend == "postgresql" else None
    try:
        if server is not None:
            server.psql("CREATE DATABASE bench")
            url = server.url("bench")
        else:
            url = f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3"
        run(url, args.people, args.slow)
    finally:
        if server is not None:
            server.stop()


def run(url: str, people: int, slow: float | None = None) -> dict[str, Any]:
    """Load ``people`` people into the (migrated, empty) database at ``url`` and time the
    scheduler and the outbox; returns the seconds per step and the counts."""
    from vaikuttavuus import create_app
    from vaikuttavuus.database import upgrade_schema
    from vaikuttavuus.extensions import db
    from vaikuttavuus.models import Arm, Enrolment, Invitation, OutboxMessage, Person, Pilot
    from vaikuttavuus.services import messaging, schedule
    from vaikuttavuus.services.definitions import sync_definitions

    app = create_app(
        {
            "TESTING": True,
            "IGNORE_INSTANCE_CONFIG": True,
            "SECRET_KEY": "bench",
            "PSEUDONYM_KEY": "bench",
            "DATABASE_URL": url,
        }
    )
    with app.app_context():
        if slow is not None:
            _report_slow_statements(db.engine, slow)
        upgrade_schema()
        sync_definitions(db.session)
        db.session.commit()
        pilots = {p.code: p.id for p in db.session.scalars(select(Pilot))}
        arms = {
            code: db.session.scalar(select(Arm.id).where(Arm.pilot_id == pilot_id))
            for code, pilot_id in pilots.items()
        }
        rng = random.Random(2026)
        today = date.today()
        now = datetime.now(UTC)
        started = time.perf_counter()
        for start in range(0, people, 10_000):
            chunk = range(start, min(start + 10_000, people))
            persons = []
            for i in chunk:
                roll = rng.random()
                persons.append(
                    {
                        "id": i + 1,
                        "pseudonym": f"B{i:09d}",
                        "email": f"p{i}@example.org" if roll < 0.6 else None,
                        "phone": f"+35840{i:07d}" if 0.6 <= roll < 0.85 else None,
                        "postal_address": "Katu 1\n15100 Lahti" if roll >= 0.85 else None,
                        "preferred_language": "fi",
                        "source": "bench",
                        "created_at": now,
                    }
                )
            db.session.execute(insert(Person), persons)
            enrolments = []
            for i in chunk:
                code = "bph" if i % 2 else "older-adults"
                enrolments.append(
                    {
                        "person_id": i + 1,
                        "pilot_id": pilots[code],
                        "arm_id": arms[code],
                        "index_date": today + timedelta(days=rng.randint(-730, 180)),
                        "enrolled_on": today,
                        "status": "active",
                        "created_at": now,
                    }
                )
            db.session.execute(insert(Enrolment), enrolments)
            db.session.commit()
        timings: dict[str, Any] = {"people": people}
        timings["load_seconds"] = round(time.perf_counter() - started, 3)
        print(f"loaded {people} people and enrolments in {timings['load_seconds']:.1f} s")

        clock = messaging.make_clock(now=now)

        def refresh() -> Any:
            result = schedule.refresh(db.session, clock.today, clock.now)
            db.session.commit()
            return result

        def enqueue(at: messaging.Clock = clock) -> Any:
            result = messaging.enqueue(db.session, at)
            db.session.commit()
            return result

        _timed("first refresh (creates the invitations)", refresh, timings, "first_refresh_seconds")
        invitations = db.session.scalar(select(func.count()).select_from(Invitation))
        timings["invitations"] = invitations
        print(f"  {invitations} invitations")
        _timed("first enqueue (first messages)", enqueue, timings, "first_enqueue_seconds")
        _timed("steady state: refresh again", refresh, timings, "steady_refresh_seconds")
        _timed("steady state: enqueue again", enqueue, timings, "steady_enqueue_seconds")
        # Pretend everything queued was sent now, then look a week later for reminders.
        db.session.execute(
            update(Invitation)
            .where(Invitation.id.in_(select(OutboxMessage.invitation_id)))
            .values(first_sent_at=now)
        )
        db.session.execute(update(OutboxMessage).values(status="sent", sent_at=now))
        db.session.commit()
        week = messaging.make_clock(now=now + timedelta(days=7))
        _timed(
            "a week later: enqueue (reminders)",
            lambda: enqueue(week),
            timings,
            "reminders_enqueue_seconds",
        )
        return timings


if __name__ == "__main__":
    main()
