"""``vaikuttavuus worker``: a background worker that computes the analysis snapshots.

::

    vaikuttavuus worker [--threads N] [--no-periodic]

Run one per core you want to give to the analyses (each is a process; its threads share one
interpreter, so more threads help only while jobs wait for the database). They share the queue
of ``JOB_QUEUE_URL`` (SQLite in the instance folder by default; Redis for several machines).
Stop with Ctrl-C or SIGINT (the running jobs finish first) or SIGTERM (at once; an interrupted
build is taken over by the next one, nothing half stored).
"""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext


@click.command("worker")
@click.option(
    "--threads",
    type=click.IntRange(1, 32),
    default=1,
    show_default=True,
    help="Jobs run at once in this process.",
)
@click.option(
    "--periodic/--no-periodic",
    default=True,
    show_default=True,
    help="Also run the scheduled jobs (refresh after data changes, nightly). Keep them on "
    "in at least one worker.",
)
@with_appcontext
def worker_command(threads: int, periodic: bool) -> None:
    """Run a background worker: computes the analysis snapshots the pages read."""
    import logging

    from vaikuttavuus import jobs

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    def started(queue: jobs.JobQueue) -> None:
        click.echo(
            f"Worker: {threads} thread(s), queue {jobs.describe(queue.url)}, "
            f"scheduled jobs {'on' if periodic else 'off'}. Stop with Ctrl-C."
        )

    try:
        jobs.run_worker(app, workers=threads, periodic=periodic, on_start=started)
    except ValueError as error:
        raise click.ClickException(str(error)) from None


COMMANDS = [worker_command]
