"""The older adults' services analysis (``domain/attribution.py``) at 5 000 and 50 000 people.

``services_attribution``: on the validation simulator's data (:mod:`vaikuttavuus.validation`:
confounded services, answers missing at random, 3 % missing baseline scores, so the declared
20 imputations of the confounders run), the time to build the analysis input from plain frames
(:func:`~vaikuttavuus.validation.attribution_input`: exposure windows, doses, costs in the
window) and to run the declared analysis (:func:`~vaikuttavuus.domain.attribution.attribute`:
AIPW with the response model for every service, outcome and follow-up, the sensitivity
analyses, balance, overlap, cost per point and the client-guidance sums), median of repeats,
with the peak memory of the child. A quick run measures 5 000 people only. The database reads
of the section are those of the ``report`` scenario (the older adults pilot).
"""

from __future__ import annotations

import gc
import statistics
import time
from typing import Any

from bench import memory
from bench.results import Figures
from bench.scenarios import Context, Scenario, register
from bench.tasks import task

FULL_PEOPLE = (5_000, 50_000)
QUICK_PEOPLE = (5_000,)
REPEATS = 2


@task("services", needs_app=False)
def services_task(people: list[int], repeats: int) -> dict[str, Any]:
    """The analysis at each size, in this process."""
    from vaikuttavuus import validation
    from vaikuttavuus.domain import attribution

    out: dict[str, Any] = {}
    for size in people:
        simulated = validation.simulate(size, 3)
        plan = attribution.AttributionPlan(
            primary_score="ucla3.total",
            primary_time_point="m12",
            missing_data="aipw_response",
            imputations=20,
        )
        builds, runs = [], []
        for _ in range(repeats):
            gc.collect()
            memory.reset_peak()
            started = time.perf_counter()
            data = validation.attribution_input(simulated)
            built = time.perf_counter()
            result = attribution.attribute(data, plan)
            builds.append(built - started)
            runs.append(time.perf_counter() - built)
        out[str(size)] = {
            "people": size,
            "input_seconds": round(statistics.median(builds), 3),
            "attribute_seconds": round(statistics.median(runs), 3),
            "attribute_all_repeats": [round(t, 3) for t in runs],
            "imputations": result.imputations,
            "estimates": int(result.aipw()["estimate"].notna().sum()),
            "peak_rss_mb": round(memory.peak_rss_mb(), 1),
        }
    return out


def run_services(
    context: Context, _backend: str | None, wanted: frozenset[str]
) -> dict[str, Figures]:
    people = QUICK_PEOPLE if context.quick else FULL_PEOPLE
    context.say(f"services analysis at {', '.join(str(p) for p in people)} older adults")
    figures = context.workspace.run_task("services", people=list(people), repeats=REPEATS)
    return {"services_attribution": figures}


register(
    Scenario(
        names=("services_attribution",),
        run=run_services,
        per_backend=False,
        description="older adults' services analysis (AIPW, imputed confounders) at 5k/50k",
    )
)
