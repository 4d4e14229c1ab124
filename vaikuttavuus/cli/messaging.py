"""``vaikuttavuus invitations send | letters | status``: the scheduler and the outbox from cron.

The commands are added to the ``invitations`` group of :mod:`vaikuttavuus.cli.core`.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections import defaultdict
from datetime import date, datetime
from pathlib import Path

import click
from flask.cli import with_appcontext

from vaikuttavuus.cli.core import invitations_group

DATE = click.DateTime(formats=["%Y-%m-%d"])


def _day(value: datetime | None) -> date | None:
    return value.date() if value is not None else None


@invitations_group.command("send")
@click.option("--today", type=DATE, default=None, help="Run as if on this date (YYYY-MM-DD).")
@click.option("--dry-run", is_flag=True, help="Show what would be queued; change nothing.")
@click.option("--limit", type=click.IntRange(1), default=None, help="Send at most N messages.")
@with_appcontext
def invitations_send(today: datetime | None, dry_run: bool, limit: int | None) -> None:
    """Update invitations, queue first messages and reminders, send e-mail and SMS.

    Idempotent and safe to run from cron every few minutes, also when runs overlap: each
    message is claimed before it is sent and is sent at most once.
    """
    from vaikuttavuus.extensions import db
    from vaikuttavuus.services import messaging

    clock = messaging.make_clock(today=_day(today))
    report = messaging.run(db.session, clock, dry_run=dry_run, limit=limit)
    prefix = "dry run (nothing changed): " if dry_run else ""
    refreshed = report.refresh
    click.echo(
        f"{prefix}invitations on {clock.today.isoformat()}: {refreshed.created} created, "
        f"{refreshed.opened} opened, {refreshed.expired} expired, "
        f"{refreshed.opted_out} opted out, {refreshed.cancelled} cancelled"
    )
    enqueued = report.enqueued
    click.echo(
        f"{prefix}queued: {enqueued.initial} first messages, {enqueued.reminders} reminders; "
        f"{enqueued.cancelled} pending messages cancelled"
    )
    if report.sent is not None:
        sent = report.sent
        if sent.outcomes:
            for (channel, outcome), count in sorted(sent.outcomes.items()):
                click.echo(f"{channel:<7} {outcome:<10} {count}")
        else:
            click.echo("nothing to send")
        if sent.expired_claims:
            click.secho(
                f"{sent.expired_claims} messages interrupted while sending marked failed "
                "(not re-sent; a pilot lead can resend)",
                fg="yellow",
                err=True,
            )
        if sent.skipped:
            click.echo(f"{sent.skipped} messages were taken by an overlapping run")
        failed = sent.count("failed")
        if failed:
            click.secho(f"{failed} messages failed; see `invitations status`", fg="red", err=True)
    waiting = ", ".join(f"{channel} {n}" for channel, n in sorted(report.due.items()))
    click.echo(f"{'would wait' if dry_run else 'waiting'}: {waiting or 'none'}")
    if report.due.get("letter"):
        click.echo("Print the letters with `vaikuttavuus invitations letters --out FILE.pdf`.")


@invitations_group.command("letters")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="The PDF file to write.",
)
@click.option("--pilot", "pilot_code", default=None, help="Only this pilot's letters.")
@click.option("--limit", type=click.IntRange(1), default=None, help="At most N letters.")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@with_appcontext
def invitations_letters(out: Path, pilot_code: str | None, limit: int | None, force: bool) -> None:
    """Print the next batch of letters (one A4 page per person) into a PDF.

    The letters are marked sent only after the file has been written.
    """
    from vaikuttavuus.extensions import db
    from vaikuttavuus.queries import pilot_by_code
    from vaikuttavuus.services import audit, messaging

    if out.exists() and not force:
        click.secho(f"{out} exists; choose another file or use --force.", fg="red", err=True)
        sys.exit(1)
    if pilot_code and pilot_by_code(db.session, pilot_code) is None:
        click.secho(f"No pilot '{pilot_code}'.", fg="red", err=True)
        sys.exit(1)

    def write(pdf: bytes) -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=out.parent, prefix=".letters-", suffix=".pdf")
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(pdf)
                stream.flush()
                os.fsync(stream.fileno())
            Path(temporary).chmod(0o600)
            Path(temporary).replace(out)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    clock = messaging.make_clock()
    batch = messaging.produce_letter_batch(
        db.session, clock, pilot_code=pilot_code, limit=limit, deliver=write
    )
    if batch is None:
        click.echo("No letters waiting.")
        return
    audit.record(
        "export_letters",
        object_type="letter_batch",
        object_id=batch.batch_id,
        pilot_code=pilot_code,
        actor="cli",
        details={"letters": batch.letters, "person_ids": list(batch.person_ids)},
    )
    db.session.commit()
    click.echo(f"Wrote {batch.letters} letters (batch {batch.batch_id}) to {out}.")
    if batch.failed:
        click.secho(
            f"{batch.failed} letters could not be made (no postal address).", fg="yellow", err=True
        )


@invitations_group.command("status")
@click.option("--pilot", "pilot_code", default=None, help="Only this pilot.")
@with_appcontext
def invitations_status(pilot_code: str | None) -> None:
    """Invitations per pilot, time point and status; outbox messages per channel and status."""
    from vaikuttavuus.extensions import db
    from vaikuttavuus.services import messaging

    rows = messaging.invitation_summary(db.session, pilot_code)
    click.echo("Invitations")
    if not rows:
        click.echo("  none")
    by_time_point: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for pilot, time_point, status, count in rows:
        by_time_point[(pilot, time_point)][status] = count
    for (pilot, time_point), counts in by_time_point.items():
        parts = ", ".join(f"{status} {n}" for status, n in sorted(counts.items()))
        click.echo(f"  {pilot:<14} {time_point:<10} {parts}")
    click.echo("Messages")
    outbox = messaging.outbox_summary(db.session, pilot_code)
    if not outbox:
        click.echo("  none")
    for channel, status, count in outbox:
        click.echo(f"  {channel:<7} {status:<10} {count}")


COMMANDS: list[click.Command] = [invitations_send, invitations_letters, invitations_status]
