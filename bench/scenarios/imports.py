"""Importing cost rows: ``resource_use`` through the import service, all or nothing.

On a copy of the largest data set, a valid CSV of N rows (1 000 000 in a full run) is written
for the BPH patients already enrolled there (by pseudonym; every row a distinct person,
product, quantity and date, so none is a duplicate), then checked and stored with
:func:`vaikuttavuus.services.imports.run_import` — the code path of ``vaikuttavuus import
resource_use FILE`` — and committed. The time covers reading the file, every check and the
commit. Then a second file of the same size with one bad row at its end must be refused with
nothing stored (``all_or_nothing`` = 1).
"""

from __future__ import annotations

import csv
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from bench.results import Figures
from bench.scenarios import Context, Scenario, register
from bench.tasks import task

PILOT = "bph"
MAX_QUANTITY = 100
MAX_DAYS_BACK = 700


def resource_use_rows(
    pseudonyms: list[str], products: list[str], count: int, *, today: date, first_quantity: int = 1
) -> list[tuple[str, str, int, str]]:
    """``count`` distinct (pseudonym, product, quantity, service date) rows.

    Row ``i`` takes person ``i mod P``, then product, quantity and date from the higher digits,
    so rows repeat only after P × products × quantities × days rows (an error is raised before).
    """
    people, kinds = len(pseudonyms), len(products)
    if not people or not kinds:
        raise ValueError("need people and products")
    capacity = people * kinds * MAX_QUANTITY * MAX_DAYS_BACK
    if count > capacity:
        raise ValueError(f"only {capacity} distinct rows for {people} people")
    rows = []
    for number in range(count):
        rest, person = divmod(number, people)
        rest, product = divmod(rest, kinds)
        rest, quantity = divmod(rest, MAX_QUANTITY)
        days = 1 + rest % MAX_DAYS_BACK
        rows.append(
            (
                pseudonyms[person],
                products[product],
                first_quantity + quantity,
                (today - timedelta(days=days)).isoformat(),
            )
        )
    return rows


def write_rows(path: Path, rows: list[tuple[str, str, int, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(["pseudonym", "product_code", "quantity", "service_date"])
        writer.writerows(rows)


@task("import_resource_use")
def import_task(rows: int, folder: str) -> dict[str, Any]:
    """Write and import ``rows`` resource-use rows; then a file with one bad row."""
    from sqlalchemy import func, select

    from vaikuttavuus.extensions import db
    from vaikuttavuus.models import CostItem, Enrolment, Person, Pilot, Product
    from vaikuttavuus.services.imports import run_import

    pseudonyms = list(
        db.session.scalars(
            select(Person.pseudonym)
            .join(Enrolment, Enrolment.person_id == Person.id)
            .join(Pilot, Enrolment.pilot_id == Pilot.id)
            .where(Pilot.code == PILOT, Person.erased_at.is_(None))
            .order_by(Person.id)
        )
    )
    products = sorted(db.session.scalars(select(Product.code)))
    today = date.today()
    good = Path(folder) / "resource_use.csv"
    write_rows(good, resource_use_rows(pseudonyms, products, rows, today=today))

    def stored() -> int:
        return int(db.session.scalar(select(func.count()).select_from(CostItem)) or 0)

    before = stored()
    started = time.perf_counter()
    data = good.read_bytes()
    outcome = run_import(
        db.session,
        kind="resource_use",
        data=data,
        filename=good.name,
        pilot_code=PILOT,
        actor="bench",
    )
    db.session.commit()
    seconds = time.perf_counter() - started
    after = stored()
    good.unlink()

    bad = Path(folder) / "resource_use_bad.csv"
    bad_rows = resource_use_rows(
        pseudonyms, products, rows - 1, today=today, first_quantity=MAX_QUANTITY + 1
    )
    bad_rows.append((pseudonyms[0], "NO_SUCH_PRODUCT", 1, today.isoformat()))
    write_rows(bad, bad_rows)
    started = time.perf_counter()
    refused = run_import(
        db.session,
        kind="resource_use",
        data=bad.read_bytes(),
        filename=bad.name,
        pilot_code=PILOT,
        actor="bench",
    )
    db.session.commit()
    reject_seconds = time.perf_counter() - started
    bad.unlink()
    unchanged = stored() == after
    return {
        "rows": rows,
        "people": len(pseudonyms),
        "products": len(products),
        "file_mb": round(len(data) / 2**20, 1),
        "seconds": round(seconds, 2),
        "status": outcome.status,
        "rows_stored": outcome.rows_stored,
        "stored_in_db": after - before,
        "reject_seconds": round(reject_seconds, 2),
        "reject_status": refused.status,
        "reject_errors": refused.error_count,
        "all_or_nothing": int(
            refused.status == "rejected" and refused.rows_stored == 0 and unchanged
        ),
    }


def import_figures(measured: dict[str, Any], target_rows: int = 1_000_000) -> Figures:
    """Figures of the import, with the time scaled to a million rows."""
    rows = measured["rows"]
    seconds = measured["seconds"]
    return {
        **measured,
        "rows_per_s": round(rows / seconds) if seconds else None,
        "seconds_per_1m": round(seconds * target_rows / rows, 1),
        "seconds_per_1m_extrapolated": rows < target_rows,
        "complete": measured["rows_stored"] == rows == measured["stored_in_db"],
    }


def run_import_scenario(
    context: Context, backend: str | None, _wanted: frozenset[str]
) -> dict[str, Figures]:
    assert backend is not None
    workspace = context.workspace
    source = workspace.dataset(backend, context.sizes.largest)
    url = workspace.copy(backend, source, "import_copy")
    folder = workspace.root / "import"
    folder.mkdir(exist_ok=True)
    rows = context.sizes.import_rows
    context.say(f"{backend}: import {rows} resource-use rows ({context.sizes.largest} people)")
    try:
        measured = workspace.run_task("import_resource_use", url, rows=rows, folder=str(folder))
    finally:
        workspace.drop(backend, url)
    figures = import_figures(measured)
    figures["data_set_people"] = context.sizes.largest
    return {"import_1m": figures}


register(
    Scenario(
        names=("import_1m",),
        run=run_import_scenario,
        per_backend=True,
        description="resource_use import of 1M (quick: 100k) rows, all or nothing",
    )
)


# -- questionnaire answers ------------------------------------------------------------------------
#
# On a copy of the largest data set, the older adults' responses of enough people are deleted
# (not timed), then a CSV of their answers — one row per person × time point × instrument whose
# day has come, every item answered with a random valid code, N answers in all (1 000 000 in a
# full run) — is checked and stored with run_import(kind="responses") and committed. A second
# file of the same size, for other people, with one bad answer code on its last row must be
# refused with nothing stored (all_or_nothing = 1).

RESPONSES_PILOT = "older-adults"


def _answer_rows(
    people: list[tuple[str, Any]],
    instruments: dict[str, Any],
    time_points: list[Any],
    answers_wanted: int,
    today: date,
    seed: int,
) -> tuple[list[str], list[list[Any]], int, int]:
    """(header, rows, answers, people used): rows for ``people`` in order until
    ``answers_wanted`` answers; every item with codes or a range gets an answer."""
    import numpy as np

    rng = np.random.default_rng(seed)
    items: dict[str, list[tuple[str, list[str]]]] = {}
    for code, spec in instruments.items():
        answerable = []
        for item in spec.items:
            if item.type in {"single_choice", "multiple_choice"}:
                answerable.append((item.id, [str(o.code) for o in spec.options_for(item)]))
            elif item.type == "scale_0_10":
                answerable.append((item.id, [str(v) for v in range(11)]))
        items[code] = answerable
    columns = list(dict.fromkeys(i for code in items for i, _codes in items[code]))
    position = {name: 6 + n for n, name in enumerate(columns)}
    header = ["pseudonym", "time_point", "instrument", "completed_on", "mode", "proxy", *columns]
    rows: list[list[Any]] = []
    answers = used = 0
    modes = ("paper", "phone", "imported", "web")
    for pseudonym, index_date in people:
        if answers >= answers_wanted:
            break
        used += 1
        for tp in time_points:
            day = index_date + timedelta(days=tp.offset_days)
            if day > today:
                continue
            for code in tp.instruments:
                row: list[Any] = [pseudonym, tp.id, code, day.isoformat(), "", ""]
                row += [""] * len(columns)
                row[4] = modes[int(rng.integers(len(modes)))]
                row[5] = "yes" if rng.random() < 0.1 else "no"
                for item_id, codes in items[code]:
                    row[position[item_id]] = codes[int(rng.integers(len(codes)))]
                rows.append(row)
                answers += len(items[code])
    return header, rows, answers, used


@task("import_responses")
def import_responses_task(answers: int, folder: str) -> dict[str, Any]:
    """Write and import ``answers`` answers; then a file of as many with one bad last row."""
    from sqlalchemy import delete, func, select

    from vaikuttavuus.extensions import db
    from vaikuttavuus.models import Answer, Enrolment, Person, Pilot, Response
    from vaikuttavuus.services.definitions import current_instrument, instrument_spec, pilot_spec
    from vaikuttavuus.services.imports import run_import

    pilot = db.session.scalar(select(Pilot).where(Pilot.code == RESPONSES_PILOT))
    assert pilot is not None
    spec = pilot_spec(pilot)
    instruments = {
        code: instrument_spec(current_instrument(db.session, code)) for code in spec.instrument_ids
    }
    people = [
        (pseudonym, index_date)
        for pseudonym, index_date in db.session.execute(
            select(Person.pseudonym, Enrolment.index_date)
            .join(Enrolment, Enrolment.person_id == Person.id)
            .where(Enrolment.pilot_id == pilot.id, Person.erased_at.is_(None))
            .order_by(Enrolment.id)
        )
    ]
    today = date.today()
    header, good_rows, good_answers, used = _answer_rows(
        people, instruments, list(spec.time_points), answers, today, seed=1
    )
    _, bad_rows, bad_answers, used_bad = _answer_rows(
        people[used:], instruments, list(spec.time_points), answers, today, seed=2
    )
    last = bad_rows[-1]
    last[next(n for n in range(6, len(last)) if last[n] != "")] = "99"  # no item has code 99
    # the chosen people's responses go (not timed), so that the files store new responses
    chosen = [p for p, _day in people[: used + used_bad]]
    enrolments = (
        select(Enrolment.id)
        .join(Person, Enrolment.person_id == Person.id)
        .where(Enrolment.pilot_id == pilot.id)
    )
    cleared = 0
    for start in range(0, len(chosen), 5_000):
        part = enrolments.where(Person.pseudonym.in_(chosen[start : start + 5_000]))
        ids = select(Response.id).where(Response.enrolment_id.in_(part))
        db.session.execute(delete(Answer).where(Answer.response_id.in_(ids)))
        deleted = db.session.execute(delete(Response).where(Response.enrolment_id.in_(part)))
        cleared += int(getattr(deleted, "rowcount", 0) or 0)
    db.session.commit()

    def stored() -> tuple[int, int]:
        responses = db.session.scalar(select(func.count()).select_from(Response)) or 0
        answers_ = db.session.scalar(select(func.count()).select_from(Answer)) or 0
        return int(responses), int(answers_)

    good = Path(folder) / "responses.csv"
    with good.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(good_rows)
    before = stored()
    started = time.perf_counter()
    data = good.read_bytes()
    outcome = run_import(
        db.session,
        kind="responses",
        data=data,
        filename=good.name,
        pilot_code=RESPONSES_PILOT,
        actor="bench",
    )
    db.session.commit()
    seconds = time.perf_counter() - started
    after = stored()
    good.unlink()

    bad = Path(folder) / "responses_bad.csv"
    with bad.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(bad_rows)
    started = time.perf_counter()
    refused = run_import(
        db.session,
        kind="responses",
        data=bad.read_bytes(),
        filename=bad.name,
        pilot_code=RESPONSES_PILOT,
        actor="bench",
    )
    db.session.commit()
    reject_seconds = time.perf_counter() - started
    bad.unlink()
    unchanged = stored() == after
    return {
        "rows": good_answers,
        "file_rows": len(good_rows),
        "people": used,
        "responses_cleared": int(cleared or 0),
        "file_mb": round(len(data) / 2**20, 1),
        "seconds": round(seconds, 2),
        "status": outcome.status,
        "rows_stored": after[1] - before[1] if outcome.status == "stored" else 0,
        "responses_stored": outcome.rows_stored,
        "stored_in_db": after[1] - before[1],
        "reject_rows": bad_answers,
        "reject_seconds": round(reject_seconds, 2),
        "reject_status": refused.status,
        "reject_errors": refused.error_count,
        "all_or_nothing": int(
            refused.status == "rejected" and refused.rows_stored == 0 and unchanged
        ),
    }


def run_responses_scenario(
    context: Context, backend: str | None, _wanted: frozenset[str]
) -> dict[str, Figures]:
    assert backend is not None
    workspace = context.workspace
    source = workspace.dataset(backend, context.sizes.largest)
    url = workspace.copy(backend, source, "import_responses_copy")
    folder = workspace.root / "import"
    folder.mkdir(exist_ok=True)
    answers = context.sizes.import_rows
    context.say(f"{backend}: import {answers} answers ({context.sizes.largest} people)")
    try:
        measured = workspace.run_task("import_responses", url, answers=answers, folder=str(folder))
    finally:
        workspace.drop(backend, url)
    figures = import_figures(measured)
    figures["data_set_people"] = context.sizes.largest
    if measured["status"] != "stored":
        figures["seconds_per_1m"] = None  # a time without the rows stored meets no goal
    return {"import_responses_1m": figures}


register(
    Scenario(
        names=("import_responses_1m",),
        run=run_responses_scenario,
        per_backend=True,
        description="responses import of 1M (quick: 100k) answers, all or nothing",
    )
)
