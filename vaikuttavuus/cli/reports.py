"""``vaikuttavuus report``: the management summary PDF, the numbers of any cohort figure, the
mixed model of the older adults pilot, and (from :mod:`vaikuttavuus.cli.patient_report`) one
patient's summary.

::

    vaikuttavuus report management --pilot bph|older-adults [--period 2025Q3|2025H1|2025]
        [--lang fi|sv|en] --out FILE.pdf [--bootstrap B] [--seed S] [--as-of DATE]
    vaikuttavuus report board-pack [--period 2025Q3|2025H1|2025] [--lang fi|sv|en]
        --out FILE.pdf [--bootstrap B] [--seed S] [--as-of DATE]
    vaikuttavuus report table --pilot CODE --name NAME [--effect E] [--score S] [--by G]
        [--period FROM:TO] [--arm A] [--unit U] [--time-point T] [--out FILE.csv]
    vaikuttavuus report mixed-model --pilot older-adults [--score S] [--by G] [--period FROM:TO]
    vaikuttavuus report estimates --pilot CODE [--as-of DATE] [--period FROM:TO]
        [--bootstrap B] [--imputations M] [--seed S] [--format json|text] [--lang fi|sv|en]
    vaikuttavuus report patient --pilot CODE --pseudonym P [--lang L] --out FILE.pdf

``report table`` prints exactly the CSV that the pilot page's "Numbers as CSV" link gives for
the same filters (names: :data:`vaikuttavuus.services.cohort_tables.TABLES`), so every figure
can be reproduced outside the application. ``report estimates`` prints the declared primary
analysis (adjusted, with the unadjusted comparison beside it) as the JSON contract of
``docs/reports.md``. Exit codes: 0 done, 2 a usage problem (unknown pilot or table, bad
period).
"""

from __future__ import annotations

import getpass
import os
import sys
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

import click
from flask.cli import with_appcontext

from vaikuttavuus.cli.patient_report import patient_command
from vaikuttavuus.county_time import county_today
from vaikuttavuus.domain.defaults import DEFAULT_BOOTSTRAP, DEFAULT_SEED

__all__ = ["COMMANDS", "parse_period", "report"]


def parse_period(text: str | None) -> tuple[date | None, date | None]:
    """``FROM:TO`` with ISO dates, either side may be empty (``2025-01-01:``)."""
    if not text:
        return (None, None)
    start, separator, end = text.partition(":")
    if not separator:
        raise click.BadParameter("use FROM:TO, e.g. 2025-01-01:2025-12-31 (either may be empty)")
    try:
        first = date.fromisoformat(start) if start else None
        last = date.fromisoformat(end) if end else None
    except ValueError as error:
        raise click.BadParameter(f"dates are YYYY-MM-DD ({error})") from error
    if first is not None and last is not None and first > last:
        raise click.BadParameter("the period starts after it ends")
    return (first, last)


def _period(_ctx: click.Context, _param: click.Parameter, value: str | None) -> object:
    return parse_period(value)


def _fail(message: str) -> None:
    click.secho(message, fg="red", err=True)
    sys.exit(2)


def _write(out: Path, data: bytes) -> None:
    """Write through a temporary file in the same folder, then move it in place."""
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}-")
    temporary = Path(name)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        temporary.replace(out)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _pilot(code: str) -> object:
    from vaikuttavuus.extensions import db
    from vaikuttavuus.queries import pilot_by_code

    pilot = pilot_by_code(db.session, code)
    if pilot is None:
        _fail(f"No pilot '{code}' (run `vaikuttavuus init`).")
    return pilot


@click.group("report")
def report() -> None:
    """Reports: the management summary, cohort tables, the mixed model, a patient summary."""


PERIOD_HELP = "Index dates FROM:TO (YYYY-MM-DD; either side may be empty)."


GRID_HELP = (
    "A quarter (2025Q3), half-year (2025H1) or year (2025) of index dates; default: the newest "
    "released year. Management summaries exist only on this grid (docs/privacy.md)."
)


def _grid_period(_ctx: click.Context, _param: click.Parameter, value: str | None) -> object:
    from vaikuttavuus.domain.periods import GridPeriod, PeriodError

    if not value:
        return None
    try:
        return GridPeriod.parse(value)
    except PeriodError as error:
        raise click.BadParameter(
            f"'{value}' is not a quarter, half-year or year: use e.g. 2025Q3, 2025H1 or 2025"
        ) from error


def _release_and_period(period: object, as_of: object, pilot_ids: list[int]) -> tuple[Any, Any]:
    """The release seen on ``as_of`` (default: today) and the grid period (default: the
    newest released year); exits with 2 for a period that is not released."""
    from vaikuttavuus import queries
    from vaikuttavuus.domain.periods import (
        default_period,
        is_released,
        release_date,
        released_periods,
    )
    from vaikuttavuus.extensions import db

    day = as_of.date() if as_of is not None else county_today()  # type: ignore[attr-defined]
    release = release_date(day)
    if period is None:
        first = queries.first_index_date(db.session, pilot_ids)
        period = default_period(released_periods(first, release))
        if period is None:
            _fail("No released period yet: the first quarter has not been released.")
    elif not is_released(period, release):  # type: ignore[arg-type]
        _fail(
            f"{period} is not released yet (release of {release.isoformat()}): a quarter is "
            "released after it has ended and its records are in. Choose an earlier period."
        )
    return release, period


MANAGEMENT_OPTIONS = [
    click.option("--period", callback=_grid_period, default=None, metavar="PERIOD", help=GRID_HELP),
    click.option("--lang", type=click.Choice(["fi", "sv", "en"]), default="fi", show_default=True),
    click.option(
        "--out",
        required=True,
        type=click.Path(dir_okay=False, writable=True, path_type=Path),
        help="The PDF file to write.",
    ),
    click.option(
        "--bootstrap",
        "n_boot",
        type=click.IntRange(100, 100_000),
        default=DEFAULT_BOOTSTRAP,
        show_default=True,
        help="Bootstrap replicates of the cost-effectiveness figures.",
    ),
    click.option("--seed", type=int, default=DEFAULT_SEED, show_default=True),
    click.option(
        "--as-of",
        type=click.DateTime(formats=["%Y-%m-%d"]),
        default=None,
        help="Use the release seen on this day (the last quarter end before it; default: today).",
    ),
]


def _management_options(function: Any) -> Any:
    for option in reversed(MANAGEMENT_OPTIONS):
        function = option(function)
    return function


@report.command("management")
@click.option("--pilot", "pilot_code", required=True, metavar="CODE", help="The pilot's code.")
@click.option(
    "--time-point",
    "time_point",
    default=None,
    metavar="T",
    help="The follow-up of the key figures (default: the declared one when due, else the "
    "latest that is due).",
)
@_management_options
@with_appcontext
def management_command(
    pilot_code: str,
    time_point: str | None,
    period: object,
    lang: str,
    out: Path,
    n_boot: int,
    seed: int,
    as_of: object,
) -> None:
    """Write the management summary of a pilot (two A4 pages, small cells hidden)."""
    from vaikuttavuus.extensions import db
    from vaikuttavuus.services import audit
    from vaikuttavuus.services.definitions import pilot_spec
    from vaikuttavuus.services.management_report import render_management_pdf

    pilot = _pilot(pilot_code)
    release, chosen = _release_and_period(period, as_of, [pilot.id])  # type: ignore[attr-defined]
    follow_ups = [tp.id for tp in pilot_spec(pilot).time_points if not tp.baseline]  # type: ignore[arg-type]
    if time_point is not None and time_point not in follow_ups:
        raise click.UsageError(
            f"--time-point must be a follow-up of {pilot_code}: {', '.join(follow_ups)}"
        )
    pdf = render_management_pdf(
        db.session,
        pilot,  # type: ignore[arg-type]
        chosen,
        release,
        lang,
        n_boot=n_boot,
        seed=seed,
        time_point=time_point,
    )
    _write(out, pdf)
    audit.record(
        "export_pdf",
        object_type="management_summary",
        object_id=pilot_code,
        pilot_code=pilot_code,
        actor=f"cli:{getpass.getuser()}",
        details={
            "language": lang,
            "period": chosen.code,
            "release": release.isoformat(),
            "file": out.name,
            **({"time_point": time_point} if time_point else {}),
        },
    )
    db.session.commit()
    click.echo(
        f"Wrote the management summary of {pilot_code}, {chosen.label} ({lang}, release of "
        f"{release.isoformat()}) to {out}."
    )


@report.command("board-pack")
@_management_options
@with_appcontext
def board_pack_command(
    period: object,
    lang: str,
    out: Path,
    n_boot: int,
    seed: int,
    as_of: object,
) -> None:
    """Write the board pack: the management summaries of every pilot in one PDF."""
    from sqlalchemy import select

    from vaikuttavuus.extensions import db
    from vaikuttavuus.models import Pilot
    from vaikuttavuus.services import audit
    from vaikuttavuus.services.management_report import render_board_pack

    pilots = list(db.session.scalars(select(Pilot).order_by(Pilot.code)))
    if not pilots:
        _fail("No pilots (run `vaikuttavuus init`).")
    release, chosen = _release_and_period(period, as_of, [p.id for p in pilots])
    pdf = render_board_pack(db.session, pilots, chosen, release, lang, n_boot=n_boot, seed=seed)
    _write(out, pdf)
    audit.record(
        "export_pdf",
        object_type="board_pack",
        object_id=chosen.code,
        actor=f"cli:{getpass.getuser()}",
        details={
            "language": lang,
            "period": chosen.code,
            "release": release.isoformat(),
            "pilots": [pilot.code for pilot in pilots],
            "file": out.name,
        },
    )
    db.session.commit()
    click.echo(
        f"Wrote the board pack of {chosen.label} ({lang}, release of {release.isoformat()}) "
        f"to {out}."
    )


@report.command("table")
@click.option("--pilot", "pilot_code", required=True, metavar="CODE")
@click.option("--name", required=True, help="The table (as in the page's CSV links).")
@click.option("--effect", default=None, help="improvement, responder or qaly (CEA tables).")
@click.option("--score", default=None, help="The score of the service tables, e.g. ucla3.total.")
@click.option("--by", default=None, help="service_type or provider_sector.")
@click.option("--period", callback=_period, default=None, metavar="FROM:TO", help=PERIOD_HELP)
@click.option("--arm", default=None)
@click.option("--unit", default=None)
@click.option("--time-point", default=None)
@click.option("--bootstrap", "n_boot", type=click.IntRange(100, 100_000), default=DEFAULT_BOOTSTRAP)
@click.option("--seed", type=int, default=DEFAULT_SEED)
@click.option("--as-of", type=click.DateTime(formats=["%Y-%m-%d"]), default=None)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write the CSV here instead of printing it.",
)
@with_appcontext
def table_command(
    pilot_code: str,
    name: str,
    effect: str | None,
    score: str | None,
    by: str | None,
    period: tuple[date | None, date | None],
    arm: str | None,
    unit: str | None,
    time_point: str | None,
    n_boot: int,
    seed: int,
    as_of: object,
    out: Path | None,
) -> None:
    """Print the numbers of one cohort table or figure as CSV (the page's download)."""
    from vaikuttavuus.database import read_snapshot
    from vaikuttavuus.extensions import db
    from vaikuttavuus.queries import cohort_units
    from vaikuttavuus.services import audit
    from vaikuttavuus.services.analytics import CohortAnalysis, Filters
    from vaikuttavuus.services.cohort_tables import TABLES, TableRequest, cohort_table, to_csv
    from vaikuttavuus.services.definitions import pilot_spec

    pilot = _pilot(pilot_code)
    if name not in TABLES:
        _fail(f"No table '{name}'. Tables: {', '.join(sorted(TABLES))}.")
    spec = pilot_spec(pilot)  # type: ignore[arg-type]
    arm, unit, time_point = arm or None, unit or None, time_point or None
    if arm is not None and arm not in {a.id for a in spec.arms}:
        _fail(f"No arm '{arm}' in '{pilot_code}' ({', '.join(a.id for a in spec.arms)}).")
    if time_point is not None and time_point not in {tp.id for tp in spec.time_points}:
        _fail(f"No time point '{time_point}' in '{pilot_code}'.")
    if unit is not None and unit not in cohort_units(db.session, pilot.id):  # type: ignore[attr-defined]
        _fail(f"No unit '{unit}' in '{pilot_code}'.")
    filters = Filters(period=period, arm=arm, unit=unit, time_point=time_point)
    with read_snapshot():  # every number from one moment of the data, as on the page
        analysis = CohortAnalysis(
            db.session,
            pilot,  # type: ignore[arg-type]
            filters,
            n_boot=n_boot,
            seed=seed,
            as_of=as_of.date() if as_of is not None else None,  # type: ignore[attr-defined]
        )
        table = cohort_table(analysis, name, TableRequest(effect=effect, score=score, by=by))
    if table is None:
        _fail(f"The pilot '{pilot_code}' has no table '{name}'.")
        return
    text = to_csv(table)
    audit.record(
        "export_csv",
        object_type="cohort_table",
        object_id=name,
        pilot_code=pilot_code,
        actor=f"cli:{getpass.getuser()}",
        details={"filters": filters.to_dict(), "rows": len(table)},
    )
    db.session.commit()
    if out is None:  # a terminal or a pipe: no byte-order mark, plain line ends
        click.echo(text.removeprefix("\ufeff").replace("\r\n", "\n"), nl=False)
    else:
        _write(out, text.encode("utf-8"))
        click.echo(f"Wrote {len(table)} rows to {out}.", err=True)


@report.command("mixed-model")
@click.option("--pilot", "pilot_code", required=True, metavar="CODE")
@click.option(
    "--score",
    default=None,
    help="The score, e.g. ucla3.total (default: the pilot's primary score).",
)
@click.option(
    "--by",
    type=click.Choice(["service_type", "provider_sector"]),
    default="service_type",
    show_default=True,
)
@click.option("--period", callback=_period, default=None, metavar="FROM:TO", help=PERIOD_HELP)
@with_appcontext
def mixed_model_command(
    pilot_code: str, score: str | None, by: str, period: tuple[date | None, date | None]
) -> None:
    """Fit the exploratory mixed model over all time points (slow on a large cohort) and
    print the difference in yearly change associated with each service as CSV (small cells
    hidden)."""
    from vaikuttavuus.database import read_snapshot
    from vaikuttavuus.extensions import db
    from vaikuttavuus.services.analytics import (
        CohortAnalysis,
        Filters,
        mixed_model,
        mixed_model_table,
    )
    from vaikuttavuus.services.cohort_tables import to_csv

    pilot = _pilot(pilot_code)
    analysis = CohortAnalysis(db.session, pilot, Filters(period=period))  # type: ignore[arg-type]
    score = score or analysis.primary_service_score
    if score not in analysis.service_scores:
        _fail(
            f"No service score '{score}' in '{pilot_code}' ({', '.join(analysis.service_scores)})."
        )
    with read_snapshot():
        result, error, _cached = mixed_model(analysis, score, by)  # type: ignore[arg-type]
    if result is None:
        _fail(f"The mixed model could not be fitted: {error}")
        return
    text = to_csv(mixed_model_table(result, analysis.min_cell).table)
    click.echo(text.removeprefix("\ufeff").replace("\r\n", "\n"), nl=False)
    for note in result.notes:
        click.echo(note, err=True)


@report.command("estimates")
@click.option("--pilot", "pilot_code", required=True, metavar="CODE")
@click.option(
    "--as-of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Data date: follow-ups and care cycles due by then (default: today).",
)
@click.option("--period", callback=_period, default=None, metavar="FROM:TO", help=PERIOD_HELP)
@click.option(
    "--bootstrap",
    "n_boot",
    type=click.IntRange(100, 100_000),
    default=DEFAULT_BOOTSTRAP,
    show_default=True,
    help="Bootstrap replicates (pooled over the imputations).",
)
@click.option(
    "--imputations",
    type=click.IntRange(2, 200),
    default=None,
    help="Imputed data sets (default: the pilot's declared number).",
)
@click.option("--seed", type=int, default=DEFAULT_SEED, show_default=True)
@click.option(
    "--format", "output", type=click.Choice(["json", "text"]), default="json", show_default=True
)
@click.option("--lang", type=click.Choice(["fi", "sv", "en"]), default="en", show_default=True)
@with_appcontext
def estimates_command(
    pilot_code: str,
    as_of: object,
    period: tuple[date | None, date | None],
    n_boot: int,
    imputations: int | None,
    seed: int,
    output: str,
    lang: str,
) -> None:
    """Print the pilot's estimates: the declared primary analysis (case-mix adjusted, missing
    data imputed as declared) with the unadjusted comparison beside it, the services' adjusted
    differences, the share missing per variable and arm, and the caveats."""
    import json

    from flask_babel import force_locale

    from vaikuttavuus.database import read_snapshot
    from vaikuttavuus.extensions import db
    from vaikuttavuus.services import audit
    from vaikuttavuus.services.analytics import CohortAnalysis, Filters
    from vaikuttavuus.services.estimates import estimates, estimates_text

    pilot = _pilot(pilot_code)
    filters = Filters(period=period)
    analysis = CohortAnalysis(
        db.session,
        pilot,  # type: ignore[arg-type]
        filters,
        n_boot=n_boot,
        seed=seed,
        as_of=as_of.date() if as_of is not None else None,  # type: ignore[attr-defined]
        imputations=imputations,
    )
    with read_snapshot(), force_locale(lang):  # every estimate from one moment of the data
        data = estimates(analysis)
        text = (
            json.dumps(data, ensure_ascii=False, indent=2) + "\n"
            if output == "json"
            else estimates_text(data)
        )
    audit.record(
        "export_estimates",
        object_type="estimates",
        object_id=pilot_code,
        pilot_code=pilot_code,
        actor=f"cli:{getpass.getuser()}",
        details={"filters": filters.to_dict(), "format": output},
    )
    db.session.commit()
    click.echo(text, nl=False)


report.add_command(patient_command)

COMMANDS: list[click.Command] = [report]
