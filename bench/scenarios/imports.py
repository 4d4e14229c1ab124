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
