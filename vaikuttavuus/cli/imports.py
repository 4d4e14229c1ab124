"""Import commands: ``vaikuttavuus import KIND FILE`` and ``vaikuttavuus import template KIND``.

``import`` is a group whose one named subcommand is ``template``; anything else is read as
``KIND FILE`` of the (hidden) ``file`` subcommand. Exit codes: 0 stored or checked, 1 the file
was rejected or could not be stored (a row-level report on stderr, and as CSV with
``--report``), 2 a usage problem (unknown kind, file or pilot).
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from flask.cli import with_appcontext

from vaikuttavuus.domain.defaults import IMPORT_KINDS as KINDS

PROGRESS_MIN_ROWS = 10_000
"""Show progress bars (checking, then storing) for files of at least this many rows."""
CHECKING_LABEL = "Checking rows"
STORING_LABEL = "Storing"
SHOWN_ERRORS = 50
"""Errors printed on the terminal; ``--report`` has all of them (up to the report's limit)."""


class ImportGroup(click.Group):
    """Falls back to the ``file`` subcommand when the first word is not a subcommand."""

    default_command = "file"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as error:
            # The hidden ``file`` subcommand is an implementation detail: its usage errors show
            # this group's usage and point to ``vaikuttavuus import --help``.
            if error.ctx is not None and error.ctx.command is self.commands[self.default_command]:
                error.ctx = ctx
            raise

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(
            ctx.command_path, "KIND FILE [--dry-run] [--pilot CODE] [--report CSV]"
        )
        formatter.write_usage(
            ctx.command_path, "responses FILE [--allow-outside-window] [options as above]"
        )
        formatter.write_usage(ctx.command_path, "template KIND [--with-example] [--pilot CODE]")


@click.group("import", cls=ImportGroup, context_settings={"help_option_names": ["-h", "--help"]})
def import_group() -> None:
    """Import people, procedures, measurements, costs, service exposures or questionnaire
    answers from CSV or XLSX (answers also from a FHIR R4 Bundle in JSON).

    KIND is one of: people, procedures, measurements, resource_use, direct_costs, exposures,
    responses. Every row is checked first; one bad row rejects the whole file and nothing is
    stored. Rows stored by an earlier import of the same data are skipped. `vaikuttavuus
    import template KIND` prints the columns of a kind.
    """


@import_group.command("file", hidden=True)
@click.argument("kind", metavar="KIND", type=click.Choice(KINDS))
@click.argument(
    "path", metavar="FILE", type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--dry-run", is_flag=True, help="Check and log the file, store nothing.")
@click.option("--pilot", "pilot_code", metavar="CODE", help="The pilot to import into.")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the row-level error report to this CSV file.",
)
@click.option(
    "--lang",
    type=click.Choice(["en", "fi", "sv"]),
    default="en",
    show_default=True,
    help="Language of the messages and the report.",
)
@click.option(
    "--allow-outside-window",
    is_flag=True,
    help="responses: accept answers dated outside their time point's window (recorded in "
    "the import log and the audit trail).",
)
@with_appcontext
def import_file(
    kind: str,
    path: Path,
    dry_run: bool,
    pilot_code: str | None,
    report_path: Path | None,
    lang: str,
    allow_outside_window: bool,
) -> None:
    """Check FILE as KIND and store its rows, all or nothing."""
    from flask_babel import force_locale

    from vaikuttavuus.extensions import db
    from vaikuttavuus.services.imports import (
        ImportRefusedError,
        describe,
        report_csv,
        run_import,
    )

    data = path.read_bytes()
    click.echo(f"Checking {path.name} as {kind}…", err=True)
    bars = _ProgressBars()
    try:
        outcome = run_import(
            db.session,
            kind=kind,
            data=data,
            filename=path.name,
            pilot_code=pilot_code,
            actor=f"cli:{getpass.getuser()}",
            dry_run=dry_run,
            progress=bars.follow(STORING_LABEL),
            check_progress=bars.follow(CHECKING_LABEL),
            allow_outside_window=allow_outside_window,
        )
    except ImportRefusedError as error:
        db.session.rollback()
        raise click.UsageError(str(error)) from error
    finally:
        bars.close()
    db.session.commit()
    if pilot_code is None:
        click.echo(
            f"Pilot {outcome.pilot_code}: the only pilot this file can be for (no --pilot given).",
            err=True,
        )

    with force_locale(lang):
        if report_path is not None:
            report = report_csv([*outcome.errors, *outcome.notes])
            report_path.write_text(report, encoding="utf-8")
        if outcome.status == "rejected":
            click.secho(
                f"{path.name}: {outcome.error_count} error(s) in {outcome.rows_total} row(s); "
                "nothing was stored.",
                fg="red",
                err=True,
            )
            for row_error in outcome.errors[:SHOWN_ERRORS]:
                where = f"line {row_error.line}" if row_error.line else "file"
                if row_error.column:
                    where += f", column {row_error.column}"
                value = f" ({row_error.value!r})" if row_error.value else ""
                click.echo(f"  {where}{value}: {describe(row_error)}", err=True)
            hidden = outcome.error_count - min(len(outcome.errors), SHOWN_ERRORS)
            if hidden > 0:
                more = " (see --report)" if report_path is None else f" (see {report_path})"
                click.echo(f"  … and {hidden} more{more}", err=True)
            sys.exit(1)
        if outcome.status == "failed":
            click.secho(f"{path.name}: {describe(outcome.errors[0])}", fg="red", err=True)
            sys.exit(1)
        if outcome.note_count:
            click.echo(
                f"{path.name}: {outcome.note_count} note(s) on rows stored as given:", err=True
            )
            for note in outcome.notes[:SHOWN_ERRORS]:
                where = (
                    "the file"
                    if note.line == 0
                    else f"line {note.line}" + (f", column {note.column}" if note.column else "")
                )
                click.echo(f"  {where}: {describe(note)}", err=True)
    new = outcome.rows_total - outcome.rows_duplicate
    if outcome.dry_run:
        click.echo(
            f"{path.name}: {outcome.rows_total} row(s) checked, no errors; {new} would be "
            f"stored, {outcome.rows_duplicate} already stored (dry run: nothing stored)."
        )
    else:
        click.echo(
            f"{path.name}: {outcome.rows_stored} row(s) stored into {outcome.pilot_code}, "
            f"{outcome.rows_duplicate} already stored (import {outcome.batch_id})."
        )


class _ProgressBars:
    """One progress bar per phase on stderr (checking, then storing), for large files only.

    On a terminal the bar moves; elsewhere (a log, a pipe) click prints its label once.
    """

    def __init__(self) -> None:
        self.bar: Any = None
        self.label: str | None = None

    def follow(self, label: str) -> Callable[[int, int], None]:
        def update(done: int, total: int) -> None:
            if total < PROGRESS_MIN_ROWS:
                return
            if self.label != label:
                self.close()
                self.bar = click.progressbar(length=total, label=label, file=sys.stderr)
                self.bar.__enter__()
                self.label = label
            self.bar.update(done - self.bar.pos)

        return update

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
        self.bar = None
        self.label = None


@import_group.command("template")
@click.argument("kind", metavar="KIND", type=click.Choice(KINDS))
@click.option("--with-example", is_flag=True, help="Add an example row.")
@click.option(
    "--pilot",
    "pilot_code",
    metavar="CODE",
    help="The example row's codes (arm, setting, time point, …) come from this pilot's "
    "definition; responses: only the item columns of its instruments (default: every "
    "pilot's) and the example is for its baseline.",
)
def template(kind: str, with_example: bool, pilot_code: str | None) -> None:
    """Print the documented header of KIND (CSV, one line). For responses the item columns
    come from the definition folders (questionnaires/, cohorts/)."""
    from vaikuttavuus.services.imports import template_csv

    pilots: list[Any] = []
    instruments = measures = None
    if kind == "responses" or pilot_code is not None:
        from vaikuttavuus.services.definitions import latest_versions, load_all_definitions

        specs, pilots, measures = load_all_definitions()
        instruments = latest_versions(specs) if kind == "responses" else None
        if pilot_code is not None:
            pilots = [pilot for pilot in pilots if pilot.id == pilot_code]
            if not pilots:
                raise click.BadParameter(f"unknown pilot '{pilot_code}'", param_hint="--pilot")
    click.echo(
        template_csv(
            kind,
            with_example=with_example,
            pilots=pilots if kind == "responses" or pilot_code is not None else [],
            instruments=instruments,
            measures=measures,
        ),
        nl=False,
    )


COMMANDS: list[click.Command] = [import_group]
