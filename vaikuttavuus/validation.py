"""A small simulator with known truths for validating the older adults' services analysis.

Used by the test suite (a bounded number of replicates) and ``scripts/bench`` (more); never by
the application. It is deliberately **not** the demo generator (:mod:`vaikuttavuus.synthetic`):
its own people, assignment rules, timings and effects, so a mistake shared by the two cannot
hide itself.

What it simulates (one row per person; all dates before ``AS_OF``, so every follow-up is due)
---------------------------------------------------------------------------------------------
* Case mix: age N(79, 7) in 65–100, 60 % women, living alone by a logistic model of sex and
  age, arm (client guidance 55 %, outreach 45 %) and unit (two outreach units, one guidance).
* A latent loneliness trait (UCLA-3 points) driven by living alone, age and arm, and a latent
  feeling of safety driven by the trait and age. Baseline answers: UCLA-3 total (rounded to
  3–9), DJG-6 total (0–6, from the same latent level) and ``safe_daily`` (1–5).
* **Confounded assignment**: each service is given with a logistic probability of what the
  worker sees at baseline — the answered UCLA-3 and safety scores, age, sex, living alone and
  arm: the lonely get friend service (and group and day activity), the insecure and the old
  get home care. Starts 7–150 days after enrolment (30 %: 150–330 days, i.e. after the first
  follow-up or even the second), episodes last months (some still running), contacts are
  Poisson per month and cost = contacts × a unit cost.
* **Known effects** (:data:`LONELINESS_EFFECTS`, :data:`SAFETY_EFFECTS`) act on the latent
  scores at a follow-up when the service started at least 30 days before that answer
  (:data:`MIN_EXPOSURE_DAYS`): friend service −1.0, group activity −0.8, day activity −0.6,
  social rehabilitation −0.5, digital contact 0 and home care 0 UCLA points; home care +0.5
  on ``safe_daily``, every other service 0 — so several true effects are exactly zero.
* Follow-ups at 6 and 12 months, answered 25 days before to 45 days after the nominal day;
  **missing at random**: the chance of answering falls with age and baseline loneliness and
  rises with the number of services (observed variables only); ~3 % miss a baseline score.
  Answers are by web, phone or paper, ~10 % by a proxy.

Truths (:func:`true_differences`)
---------------------------------
Rounding and the 3–9 range make the average difference on the observed score smaller than the
latent effect, so the truth is computed from potential outcomes: a large simulated population
(200 000 people, fixed seed; Monte Carlo error about 0.001), each person's score with the
service's effect applied and not applied (everything else — noise, the other services — as it
was); the truth is the mean difference, the population ATE the analysis estimates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from types import MappingProxyType

import numpy as np
import pandas as pd

from vaikuttavuus.domain import attribution

__all__ = [
    "AS_OF",
    "LONELINESS_EFFECTS",
    "MIN_EXPOSURE_DAYS",
    "SAFETY_EFFECTS",
    "SCORES",
    "SERVICES",
    "Simulated",
    "attribution_input",
    "replicate",
    "simulate",
    "summarise",
    "true_differences",
]

AS_OF = date(2026, 6, 30)
MIN_EXPOSURE_DAYS = 30
FOLLOW_UPS: Mapping[str, int] = MappingProxyType({"m6": 182, "m12": 365})
SCORES = ("ucla3.total", "djg6.total", "insecurity.safe_daily")
PRIMARY = ("ucla3.total", "m12")
SERVICES = (
    "friend_service",
    "group_activity",
    "day_activity",
    "social_rehabilitation",
    "digital_contact",
    "home_care",
)
LONELINESS_EFFECTS: Mapping[str, float] = MappingProxyType(
    {
        "friend_service": -1.0,
        "group_activity": -0.8,
        "day_activity": -0.6,
        "social_rehabilitation": -0.5,
        "digital_contact": 0.0,
        "home_care": 0.0,
    }
)
"""True effects on the latent UCLA-3 total (points; negative = less lonely)."""
SAFETY_EFFECTS: Mapping[str, float] = MappingProxyType(
    {service: (0.5 if service == "home_care" else 0.0) for service in SERVICES}
)
"""True effects on the latent ``safe_daily`` (points; positive = feels safer)."""

# intercept, baseline UCLA − 6, safe_daily − 3.5, (age − 79)/10, woman, lives alone, outreach
_ASSIGNMENT = {
    "friend_service": (-1.6, 0.55, 0.0, 0.1, 0.0, 0.5, 0.3),
    "group_activity": (-1.2, 0.25, 0.1, -0.4, 0.4, 0.2, -0.1),
    "day_activity": (-1.7, 0.30, -0.1, 0.3, 0.1, 0.3, 0.0),
    "social_rehabilitation": (-2.3, 0.30, 0.0, -0.5, 0.0, 0.0, 0.3),
    "digital_contact": (-2.0, 0.25, 0.0, -0.8, 0.0, 0.2, 0.0),
    "home_care": (-1.2, 0.25, -0.7, 0.9, 0.0, 0.3, 0.0),
}
_MONTHLY_CONTACTS = {
    "friend_service": 3.0,
    "group_activity": 3.5,
    "day_activity": 4.0,
    "social_rehabilitation": 3.0,
    "digital_contact": 6.0,
    "home_care": 30.0,
}
_UNIT_COST = {
    "friend_service": 20.0,
    "group_activity": 25.0,
    "day_activity": 90.0,
    "social_rehabilitation": 70.0,
    "digital_contact": 15.0,
    "home_care": 55.0,
}
_MEAN_MONTHS = {
    "friend_service": 12.0,
    "group_activity": 6.0,
    "day_activity": 10.0,
    "social_rehabilitation": 5.0,
    "digital_contact": 6.0,
    "home_care": 20.0,
}
TRUTH_PEOPLE = 200_000
TRUTH_SEED = 99


@dataclass(frozen=True)
class Simulated:
    """One simulated pilot as plain frames: ``persons`` (``person_id``, ``arm``, ``unit``,
    ``age``, ``sex``, ``lives_alone``, ``index_date``), ``outcomes`` (long: ``person_id``,
    ``time_point``, ``score``, ``value``), ``answers`` (``person_id``, ``time_point``,
    ``answered_on``, ``mode``, ``proxy``) and ``episodes`` (``person_id``, ``service_type``,
    ``started_on``, ``ended_on``, ``contacts``, ``cost``); ``potential`` (truth runs only):
    per score, follow-up and service, the mean difference between each person's score with
    and without the service's effect."""

    persons: pd.DataFrame
    outcomes: pd.DataFrame
    answers: pd.DataFrame
    episodes: pd.DataFrame
    potential: Mapping[tuple[str, str, str], float] | None = None


def _round(values: np.ndarray, low: float, high: float) -> np.ndarray:
    return np.clip(np.rint(values), low, high)


def _dates(days: np.ndarray) -> pd.Series:
    """Days since AS_OF as dates (NaN → NaT)."""
    origin = pd.Timestamp(AS_OF)
    return pd.Series(origin + pd.to_timedelta(days, unit="D"))


def simulate(n: int, seed: int, *, potential: bool = False) -> Simulated:
    """One simulated pilot of ``n`` older adults (see the module docstring)."""
    rng = np.random.default_rng(seed)
    index_day = rng.integers(-1000, -450, size=n)
    age = np.clip(rng.normal(79.0, 7.0, n), 65.0, 100.0)
    female = rng.random(n) < 0.6
    alone = rng.random(n) < 1 / (1 + np.exp(-(-0.3 + 0.8 * female + 0.04 * (age - 79))))
    outreach = rng.random(n) < 0.45
    unit = np.where(
        outreach, np.where(rng.random(n) < 0.6, "Outreach A", "Outreach B"), "Guidance"
    )
    trait = (
        6.0 + 0.8 * (alone - 0.55) + 0.03 * (age - 79) + 0.3 * (outreach - 0.45)
        + rng.normal(0.0, 1.2, n)
    )  # fmt: skip
    safety = 3.9 - 0.3 * (trait - 6) - 0.15 * (age - 79) / 7 + rng.normal(0.0, 0.6, n)
    ucla_latent0 = trait + rng.normal(0.0, 0.75, n)
    ucla0 = _round(ucla_latent0, 3, 9)
    djg0 = _round(3.0 + 1.1 * (ucla_latent0 - 6) + rng.normal(0.0, 0.8, n), 0, 6)
    safe0 = _round(safety + rng.normal(0.0, 0.45, n), 1, 5)
    # confounded assignment on what the worker sees at baseline
    design = np.column_stack(
        [np.ones(n), ucla0 - 6, safe0 - 3.5, (age - 79) / 10, female, alone, outreach]
    )
    coefficients = np.array([_ASSIGNMENT[s] for s in SERVICES])
    chosen = rng.random((n, len(SERVICES))) < 1 / (1 + np.exp(-(design @ coefficients.T)))
    person, column = np.nonzero(chosen)
    m = len(person)
    late = rng.random(m) < 0.3
    delay = np.where(late, rng.integers(150, 331, m), rng.integers(7, 151, m))
    started = index_day[person] + delay
    months = np.maximum(
        rng.exponential(np.array([_MEAN_MONTHS[s] for s in SERVICES])[column]), 0.5
    )
    ended = started + np.rint(months * 30.44)
    running = ended >= 0  # still running on AS_OF: no end date
    contacts = rng.poisson(
        np.array([_MONTHLY_CONTACTS[s] for s in SERVICES])[column]
        * (np.minimum(ended, -1) - started + 1) / 30.44
    ).astype(float)
    keep = started < 0
    episodes = pd.DataFrame(
        {
            "person_id": person[keep] + 1,
            "service_type": np.asarray(SERVICES, dtype=object)[column[keep]],
            "provider_sector": "county",
            "started_on": _dates(started[keep]).to_numpy(),
            "ended_on": _dates(np.where(running, np.nan, ended)[keep]).to_numpy(),
            "contacts": contacts[keep],
            "cost": contacts[keep] * np.array([_UNIT_COST[s] for s in SERVICES])[column[keep]],
        }
    )
    # follow-ups: exposure by the answer, effects on the latent scores, then missingness
    records_outcomes = [
        ("baseline", "ucla3.total", ucla0),
        ("baseline", "djg6.total", djg0),
        ("baseline", "insecurity.safe_daily", safe0),
    ]
    answer_rows = []
    potentials: dict[tuple[str, str, str], float] = {}
    baseline_missing = rng.random((n, 3)) < 0.03
    for tp, offset in FOLLOW_UPS.items():
        answer = index_day + offset + rng.integers(-25, 46, size=n)
        active = np.zeros((n, len(SERVICES)))
        acting = keep & (started <= answer[person] - MIN_EXPOSURE_DAYS)
        active[person[acting], column[acting]] = 1.0
        effect_u = active @ np.array([LONELINESS_EFFECTS[s] for s in SERVICES])
        effect_s = active @ np.array([SAFETY_EFFECTS[s] for s in SERVICES])
        noise_u = rng.normal(0.0, 0.75, n)
        noise_d = rng.normal(0.0, 0.8, n)
        noise_s = rng.normal(0.0, 0.45, n)
        drift = 0.1 * offset / 365.25

        def scores(
            lonely: np.ndarray,
            safe: np.ndarray,
            nu: np.ndarray = noise_u,
            nd: np.ndarray = noise_d,
            ns: np.ndarray = noise_s,
            d: float = drift,
        ) -> dict[str, np.ndarray]:
            latent = trait + d + lonely + nu
            return {
                "ucla3.total": _round(latent, 3, 9),
                "djg6.total": _round(3.0 + 1.1 * (latent - 6) + nd, 0, 6),
                "insecurity.safe_daily": _round(safety + safe + ns, 1, 5),
            }

        observed_scores = scores(effect_u, effect_s)
        if potential:
            for s, service in enumerate(SERVICES):
                without = active.copy()
                without[:, s] = 0.0
                with_ = active.copy()
                with_[:, s] = 1.0
                on = scores(
                    with_ @ np.array([LONELINESS_EFFECTS[x] for x in SERVICES]),
                    with_ @ np.array([SAFETY_EFFECTS[x] for x in SERVICES]),
                )
                off = scores(
                    without @ np.array([LONELINESS_EFFECTS[x] for x in SERVICES]),
                    without @ np.array([SAFETY_EFFECTS[x] for x in SERVICES]),
                )
                for score in SCORES:
                    potentials[(score, tp, service)] = float(np.mean(on[score] - off[score]))
        services_by_answer = np.zeros(n)
        np.add.at(services_by_answer, person[keep & (started <= answer[person])], 1.0)
        respond = 1 / (1 + np.exp(-(1.3 - 0.04 * (age - 79) - 0.25 * (ucla0 - 6)
                                    + 0.25 * services_by_answer)))  # fmt: skip
        answered = rng.random(n) < respond
        for score in SCORES:
            records_outcomes.append(
                (tp, score, np.where(answered, observed_scores[score], np.nan))
            )
        who = np.flatnonzero(answered)
        answer_rows.append(
            pd.DataFrame(
                {
                    "person_id": who + 1,
                    "time_point": tp,
                    "answered_on": _dates(answer[who]).to_numpy(),
                    "mode": rng.choice(["web", "phone", "paper"], len(who), p=[0.7, 0.15, 0.15]),
                    "proxy": rng.random(len(who)) < 0.1,
                }
            )
        )
    outcomes = []
    for position, (tp, score, recorded) in enumerate(records_outcomes):
        values = recorded.copy()
        if tp == "baseline":
            values[baseline_missing[:, position]] = np.nan
        present = np.isfinite(values)
        outcomes.append(
            pd.DataFrame(
                {
                    "person_id": np.flatnonzero(present) + 1,
                    "time_point": tp,
                    "score": score,
                    "value": values[present],
                }
            )
        )
    persons = pd.DataFrame(
        {
            "person_id": np.arange(1, n + 1),
            "arm": np.where(outreach, "outreach", "client_guidance"),
            "unit": unit,
            "age": np.floor(age),
            "sex": np.where(female, "female", "male"),
            "lives_alone": alone.astype(float),
            "index_date": _dates(index_day.astype(float)).to_numpy(),
        }
    )
    return Simulated(
        persons=persons,
        outcomes=pd.concat(outcomes, ignore_index=True),
        answers=pd.concat(answer_rows, ignore_index=True),
        episodes=episodes,
        potential=potentials if potential else None,
    )


@lru_cache(maxsize=1)
def true_differences() -> pd.DataFrame:
    """The population ATE of every service on every score at every follow-up: ``score``,
    ``time_point``, ``category``, ``truth`` (see the module docstring)."""
    simulated = simulate(TRUTH_PEOPLE, TRUTH_SEED, potential=True)
    assert simulated.potential is not None
    rows = [
        {"score": score, "time_point": tp, "category": service, "truth": truth}
        for (score, tp, service), truth in simulated.potential.items()
    ]
    return pd.DataFrame(rows)


COVARIATES = (
    "age",
    "sex",
    "lives_alone",
    "unit",
    "arm",
    "baseline_ucla3_total",
    "baseline_djg6_total",
    "baseline_insecurity_safe_daily",
)


def attribution_input(simulated: Simulated) -> attribution.AttributionData:
    """The analysis input of a simulated pilot, built as the application builds it."""
    persons = simulated.persons
    baseline = simulated.outcomes[simulated.outcomes["time_point"] == "baseline"]
    wide = baseline.pivot(index="person_id", columns="score", values="value").reindex(
        persons["person_id"]
    )
    confounders = persons[["age", "sex", "lives_alone", "unit", "arm"]].copy()
    names = {}
    for score in SCORES:
        name = "baseline_" + score.replace(".", "_")
        confounders[name] = wide[score].to_numpy() if score in wide else np.nan
        names[score] = name
    safe = confounders["baseline_insecurity_safe_daily"].to_numpy(dtype=float)
    insecure = np.full(len(safe), None, dtype=object)
    insecure[np.isfinite(safe)] = np.where(safe[np.isfinite(safe)] <= 3, "yes", "no")
    profile = pd.DataFrame(
        {
            "band": attribution.score_band(confounders["baseline_ucla3_total"], 3, 9, 6),
            "insecure": insecure,
            "lives_alone": np.where(persons["lives_alone"] > 0, "yes", "no"),
            "age_band": attribution.age_band(persons["age"]),
        }
    )
    n = len(persons)
    return attribution.attribution_data(
        person_ids=persons["person_id"].to_numpy(),
        groups=persons["arm"].to_numpy(),
        index_dates=persons["index_date"],
        confounders=confounders,
        covariates=list(COVARIATES),
        baseline_columns=names,
        outcomes=simulated.outcomes,
        answers=simulated.answers,
        episodes=simulated.episodes,
        scores=list(SCORES),
        baseline="baseline",
        follow_ups=FOLLOW_UPS,
        due={tp: np.ones(n, dtype=bool) for tp in FOLLOW_UPS},
        categories=list(SERVICES),
        directions={
            "ucla3.total": "lower_is_better",
            "djg6.total": "lower_is_better",
            "insecurity.safe_daily": "higher_is_better",
        },
        care_start_days=0,
        min_exposure_days=MIN_EXPOSURE_DAYS,
        as_of=AS_OF - timedelta(days=1),
        profile=profile,
    )


def replicate(
    seed: int,
    *,
    people: int = 1500,
    imputations: int = 5,
    multiplicity: str = "holm",
    missing_data: str = "aipw_response",
) -> pd.DataFrame:
    """One replicate: simulate, analyse as the older adults pilot declares (AIPW with a
    response model for missing outcomes, multiple imputation of missing confounders, Holm),
    and return the AIPW and unadjusted rows with the truth beside each estimate."""
    data = attribution_input(simulate(people, seed))
    plan = attribution.AttributionPlan(
        primary_score=PRIMARY[0],
        primary_time_point=PRIMARY[1],
        missing_data=missing_data,  # type: ignore[arg-type]
        imputations=imputations,
        multiplicity=multiplicity,  # type: ignore[arg-type]
        seed=seed,
    )
    result = attribution.attribute(data, plan)
    rows = result.estimates[result.estimates["method"].isin(["aipw", "unadjusted"])]
    merged = rows.merge(true_differences(), on=["score", "time_point", "category"], how="left")
    return merged.assign(replicate=seed)


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """Bias and coverage per method, score, follow-up and service over the replicates:
    ``truth``, ``mean`` estimate, ``bias``, ``rmse``, ``coverage`` of the 95 % interval and
    ``significant`` (share with p < 0.05 after adjustment; AIPW rows), ``replicates``."""
    frame = results.assign(
        covered=(results["ci_low"] <= results["truth"]) & (results["truth"] <= results["ci_high"]),
        error=results["estimate"] - results["truth"],
        significant=results["p_adjusted"] < 0.05,
    )
    grouped = frame.groupby(["method", "family", "score", "time_point", "category"], sort=False)
    table = grouped.agg(
        truth=("truth", "first"),
        mean=("estimate", "mean"),
        bias=("error", "mean"),
        rmse=("error", lambda e: math.sqrt(float(np.mean(np.square(e))))),
        coverage=("covered", "mean"),
        significant=("significant", "mean"),
        replicates=("estimate", "count"),
    )
    return table.reset_index()


def true_zero(table: pd.DataFrame, tolerance: float = 1e-9) -> pd.Series:
    """Rows whose truth is exactly zero (the service does not change the score)."""
    return table["truth"].abs() <= tolerance


def run(
    seeds: Sequence[int],
    *,
    people: int = 1500,
    imputations: int = 5,
    missing_data: str = "aipw_response",
) -> pd.DataFrame:
    """Replicates for ``seeds`` (one data frame of rows)."""
    return pd.concat(
        [
            replicate(seed, people=people, imputations=imputations, missing_data=missing_data)
            for seed in seeds
        ],
        ignore_index=True,
    )


def markdown(table: pd.DataFrame) -> str:
    """The AIPW rows of :func:`summarise` as the Markdown table of ``docs/reports.md``."""
    rows = table[table["method"] == "aipw"].sort_values(
        ["family", "score", "time_point", "category"], ascending=[True, False, False, True]
    )
    lines = [
        "| family | score | follow-up | service | truth | mean estimate | bias | RMSE | "
        "coverage | significant after Holm |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows.to_dict("records"):
        lines.append(
            f"| {r['family']} | {r['score']} | {r['time_point']} | {r['category']} | "
            f"{r['truth']:+.3f} | {r['mean']:+.3f} | {r['bias']:+.3f} | {r['rmse']:.3f} | "
            f"{r['coverage']:.0%} | {r['significant']:.0%} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m vaikuttavuus.validation [REPLICATES] [PEOPLE] [IMPUTATIONS]``: run the
    replicates and print the bias and coverage table (Markdown) with the pooled figures."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    replicates = int(args[0]) if args else 100
    people = int(args[1]) if len(args) > 1 else 1500
    imputations = int(args[2]) if len(args) > 2 else 20
    table = summarise(run(range(1, replicates + 1), people=people, imputations=imputations))
    print(markdown(table))
    aipw = table[table["method"] == "aipw"]
    primary = aipw[aipw["family"] == "primary"]
    zeros = aipw[(aipw["family"] == "secondary") & true_zero(aipw)]
    print(
        f"\n{replicates} replicates of {people} people, {imputations} imputations: primary "
        f"coverage {primary['coverage'].mean():.1%}; true-zero secondary differences called "
        f"significant after Holm {zeros['significant'].mean():.1%}"
    )


if __name__ == "__main__":
    main()
