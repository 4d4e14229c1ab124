"""Pure computation: scoring a million responses, and the cost-effectiveness bootstrap.

``scoring_1m``: one million random IPSS responses (about 1 % of answers missing) scored by the
vectorised engine (:func:`vaikuttavuus.domain.scoring.score_frame`, median of repeats) against
a per-row Python loop implementing the same rules (:func:`loop_score`). The loop is timed on a
sample and scaled linearly to the full count (it would take minutes otherwise); the rows are
handed to it as a list of dicts prepared beforehand (not timed), and its scores are checked
against the engine's on the sample.

``bootstrap_10k``: the paired non-parametric bootstrap within arms
(:func:`vaikuttavuus.domain.cea.bootstrap_two_arms`, the reports' default grid of willingness
to pay) with 10 000 replicates on 10 000 patients in two equal arms, median of repeats.
"""

from __future__ import annotations

import math
import operator
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from bench.results import Figures
from bench.scenarios import Context, Scenario, register
from bench.tasks import task

SCORING_INSTRUMENT = "ipss"
MISSING_SHARE = 0.01

_FLAG_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


# -- the per-row loop ------------------------------------------------------------------------


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def loop_score(spec: Any, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Score each row (``{item id: numeric code or NaN}``) in plain Python, one row at a time,
    with the rules of the vectorised engine: answers are validated against the item's domain,
    recodes applied, missing-item rules (``all``/``prorate``/``available``), sums and means,
    item scores, bands and flags. Missing scores are ``None``. Value-set scores are not
    implemented (the benchmark scores IPSS)."""
    from vaikuttavuus.domain.scoring import item_domain, scorable_items
    from vaikuttavuus.domain.specs import AggregateScore, BandScore, FlagScore, ItemScore

    domains = {item.id: item_domain(spec, item) for item in scorable_items(spec)}
    allowed = {
        item_id: frozenset(domain.codes) if domain and domain.codes is not None else None
        for item_id, domain in domains.items()
    }
    results: list[dict[str, Any]] = []
    for row in rows:
        values: dict[str, float | None] = {}
        for item_id, domain in domains.items():
            value = row.get(item_id)
            if _missing(value):
                values[item_id] = None
                continue
            number = float(value)
            codes = allowed[item_id]
            if codes is not None:
                if number not in codes:
                    raise ValueError(f"item '{item_id}': {number} is not a valid answer")
            elif domain is not None and (
                (domain.low is not None and number < domain.low)
                or (domain.high is not None and number > domain.high)
                or (domain.whole_numbers and number != math.floor(number))
            ):
                raise ValueError(f"item '{item_id}': {number} is not a valid answer")
            values[item_id] = number
        scores: dict[str, Any] = {}
        for score in spec.scores:
            if isinstance(score, AggregateScore):
                present = []
                for item_id in score.items:
                    value = values.get(item_id)
                    recode = score.recode.get(item_id)
                    if value is not None and recode and value in recode:
                        value = recode[value]
                        value = None if _missing(value) else value
                    if value is not None:
                        present.append(value)
                n_items = len(score.items)
                missing = n_items - len(present)
                rule = score.missing
                if not present or (rule.rule == "all" and missing) or missing > rule.max_missing:
                    scores[score.id] = None
                elif score.method == "mean":
                    scores[score.id] = sum(present) / len(present)
                elif rule.rule == "prorate":
                    scores[score.id] = sum(present) * n_items / len(present)
                else:
                    scores[score.id] = float(sum(present))
            elif isinstance(score, ItemScore):
                value = values.get(score.item)
                if value is not None and score.recode and value in score.recode:
                    value = score.recode[value]
                scores[score.id] = None if _missing(value) else value
            elif isinstance(score, BandScore):
                source = scores[score.of] if score.of in scores else values.get(score.of)
                scores[score.id] = (
                    None
                    if source is None
                    else next(
                        (b.label for b in score.bands if b.min <= source <= b.max),
                        None,
                    )
                )
            elif isinstance(score, FlagScore):
                source = scores[score.of] if score.of in scores else values.get(score.of)
                scores[score.id] = (
                    None if source is None else _FLAG_OPERATORS[score.operator](source, score.value)
                )
            else:
                raise NotImplementedError(f"loop scoring of {type(score).__name__}")
        results.append(scores)
    return results


def same_scores(loop: Sequence[Mapping[str, Any]], vectorised: pd.DataFrame) -> bool:
    """Whether the loop's scores equal the engine's (missing = missing)."""
    if len(loop) != len(vectorised):
        return False
    for name in vectorised.columns:
        engine = vectorised[name].astype(object).where(vectorised[name].notna(), None).tolist()
        mine = [row[name] for row in loop]
        if not all(_same(a, b) for a, b in zip(mine, engine, strict=True)):
            return False
    return True


def _same(mine: Any, engine: Any) -> bool:
    if mine is None or engine is None:
        return mine is engine
    if isinstance(mine, float):
        return math.isclose(mine, float(engine), abs_tol=1e-9)
    return bool(mine == engine)


def random_answers(spec: Any, rows: int, seed: int, missing: float = MISSING_SHARE) -> pd.DataFrame:
    """``rows`` random valid answers to every scorable item, ``missing`` of them left out."""
    from vaikuttavuus.domain.scoring import item_domain, scorable_items

    rng = np.random.default_rng(seed)
    columns: dict[str, np.ndarray] = {}
    for item in scorable_items(spec):
        domain = item_domain(spec, item)
        assert domain is not None
        if domain.codes is not None:
            values = rng.choice(np.asarray(domain.codes, dtype=np.float64), size=rows)
        else:
            low, high = domain.bounds
            values = rng.integers(int(low), int(high) + 1, size=rows).astype(np.float64)
        values[rng.random(rows) < missing] = np.nan
        columns[item.id] = values
    return pd.DataFrame(columns)


def _instrument(code: str) -> Any:
    from vaikuttavuus.services.definitions import load_all_definitions

    instruments, _pilots, _measures = load_all_definitions()
    return max((s for s in instruments if s.id == code), key=lambda s: s.version)


@task("scoring", needs_app=False)
def scoring_task(rows: int, sample: int, repeats: int, seed: int = 1) -> dict[str, Any]:
    """Vectorised scoring of ``rows`` responses vs the per-row loop on ``sample`` rows."""
    from vaikuttavuus.domain.scoring import score_frame

    spec = _instrument(SCORING_INSTRUMENT)
    answers = random_answers(spec, rows, seed)
    score_frame(spec, answers.head(1000))  # warm-up
    timings, cpu = [], []
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        scored = score_frame(spec, answers)
        timings.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    vector_seconds = statistics.median(timings)
    sample_rows = answers.head(sample).to_dict("records")
    started = time.perf_counter()
    looped = loop_score(spec, sample_rows)
    loop_sample_seconds = time.perf_counter() - started
    matches = same_scores(looped[:5_000], scored.head(min(5_000, sample)))
    extrapolated = loop_sample_seconds * rows / sample
    return {
        "instrument": f"{spec.id}@{spec.version}",
        "rows": rows,
        "seconds": round(vector_seconds, 3),
        "seconds_all_repeats": [round(t, 3) for t in timings],
        "cpu_seconds": round(statistics.median(cpu), 3),
        "loop_sample_rows": sample,
        "loop_sample_seconds": round(loop_sample_seconds, 3),
        "loop_seconds_extrapolated": round(extrapolated, 1),
        "loop_extrapolated": sample < rows,
        "speedup_vs_loop": round(extrapolated / vector_seconds, 1),
        "loop_matches_vectorised": matches,
        "rows_per_s": round(rows / vector_seconds),
    }


@task("bootstrap", needs_app=False)
def bootstrap_task(patients: int, replicates: int, repeats: int, seed: int = 7) -> dict[str, Any]:
    """The two-arm bootstrap of ``replicates`` replicates on ``patients`` patients."""
    from vaikuttavuus.domain import cea

    rng = np.random.default_rng(seed)
    treated = np.arange(patients) % 2 == 1
    cost = rng.gamma(2.0, 1_500.0, patients) + treated * 300.0
    effect = rng.normal(0.70, 0.15, patients) + treated * 0.02
    data = cea.TwoArmData.from_arrays(cost, effect, treated, labels=("reference", "new"))
    cea.bootstrap_two_arms(data, n_boot=100, seed=seed)  # warm-up
    timings, cpu = [], []
    for number in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        result = cea.bootstrap_two_arms(data, n_boot=replicates, seed=seed + number)
        timings.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return {
        "seconds": round(statistics.median(timings), 3),
        "seconds_all_repeats": [round(t, 3) for t in timings],
        "cpu_seconds": round(statistics.median(cpu), 3),
        "replicates": replicates,
        "patients": patients,
        "wtp_points": int(result.wtp.size),
        "threads": cea._default_workers(),
    }


# -- the parent side ------------------------------------------------------------------------


@task("compute", needs_app=False)
def compute_task(
    scoring: dict[str, Any] | None, bootstrap: dict[str, Any] | None
) -> dict[str, Any]:
    """Both measurements in one child process (one start-up)."""
    out: dict[str, Any] = {}
    if scoring is not None:
        out["scoring_1m"] = scoring_task(**scoring)
    if bootstrap is not None:
        out["bootstrap_10k"] = bootstrap_task(**bootstrap)
    return out


def run_compute(
    context: Context, _backend: str | None, wanted: frozenset[str]
) -> dict[str, Figures]:
    sizes = context.sizes
    scoring = bootstrap = None
    if "scoring_1m" in wanted:
        scoring = {"rows": sizes.scoring_rows, "sample": sizes.loop_sample}
        scoring["repeats"] = sizes.repeats
        context.say(f"scoring {sizes.scoring_rows} responses (loop on {sizes.loop_sample})")
    if "bootstrap_10k" in wanted:
        bootstrap = {"patients": sizes.bootstrap_patients}
        bootstrap |= {"replicates": sizes.bootstrap_replicates, "repeats": sizes.repeats}
        context.say(
            f"bootstrap: {sizes.bootstrap_replicates} replicates × "
            f"{sizes.bootstrap_patients} patients"
        )
    return context.workspace.run_task("compute", scoring=scoring, bootstrap=bootstrap)


register(
    Scenario(
        names=("scoring_1m", "bootstrap_10k"),
        run=run_compute,
        per_backend=False,
        description="vectorised scoring vs a per-row loop; the CEA bootstrap",
    )
)
