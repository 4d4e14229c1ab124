"""Building the synthetic data sets: the work of ``vaikuttavuus demo-data --people N --seed S
--no-logins`` (:func:`vaikuttavuus.synthetic.generate`, then
:func:`vaikuttavuus.services.demo_data.load_demo_data` and a commit), for several databases in
one child process so the start-up is paid once."""

from __future__ import annotations

import time
from datetime import date
from typing import Any

from bench.tasks import app_for, task


@task("build_datasets", needs_app=False)
def build_datasets_task(databases: list[list[Any]], seed: int) -> dict[str, Any]:
    """Fill each ``[people, url]`` database (migrated, definitions loaded, no demo data) with
    the synthetic data set of that many people; returns seconds and row counts per size."""
    from flask import current_app

    from vaikuttavuus import synthetic
    from vaikuttavuus.extensions import db
    from vaikuttavuus.services import demo_data
    from vaikuttavuus.services.definitions import load_all_definitions

    built: dict[str, Any] = {}
    for people, url in databases:
        with app_for(url):
            started = time.perf_counter()
            instruments, pilots, measures = load_all_definitions()
            data = synthetic.generate(
                pilots={p.id: p for p in pilots},
                instruments={spec.id: spec for spec in instruments},
                measures=measures,
                people=int(people),
                seed=seed,
                today=date.today(),
                pseudonym_key=str(current_app.config["PSEUDONYM_KEY"]).encode(),
            )
            summary = demo_data.load_demo_data(db.session, data)
            db.session.commit()
            built[str(people)] = {
                "seconds": round(time.perf_counter() - started, 1),
                "rows": summary.counts,
            }
    return built
