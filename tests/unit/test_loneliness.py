"""Older adults: service effects on loneliness recovered from simulated data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from vaikuttavuus.domain.loneliness import (
    POOLED,
    LonelinessError,
    ServiceEffects,
    analysis_data,
    mixed_model_effects,
    service_effects,
)

SCORE = "ucla3.total"
TRUE_EFFECT = -1.0


def simulate(n: int = 1500, seed: int = 17) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Day activity lowers UCLA-3 by 1.0 at 6 and 12 months; the loneliest at baseline are the
    likeliest to get it (confounding by the baseline score, with regression to the mean).
    Friend/visitor service is assigned at random and has no effect."""
    rng = np.random.default_rng(seed)
    ids = np.arange(n)
    latent = rng.normal(6.0, 1.2, n)
    age = rng.normal(79, 6, n)
    sex = rng.choice(["female", "male"], n, p=[0.6, 0.4])
    lives_alone = rng.random(n) < 0.55
    baseline = latent + rng.normal(0, 1, n)
    day_activity = rng.random(n) < 1 / (1 + np.exp(-1.2 * (baseline - 6)))
    visitor = rng.random(n) < 0.3
    m6 = latent + rng.normal(0, 1, n) + TRUE_EFFECT * day_activity
    m12 = latent + rng.normal(0, 1, n) + TRUE_EFFECT * day_activity
    persons = pd.DataFrame({"person_id": ids, "age": age, "sex": sex, "lives_alone": lives_alone})
    outcomes = pd.concat(
        [
            pd.DataFrame({"person_id": ids, "time_point": tp, "score": SCORE, "value": values})
            for tp, values in (("baseline", baseline), ("m6", m6), ("m12", m12))
        ],
        ignore_index=True,
    )
    exposures = pd.concat(
        [
            pd.DataFrame(
                {
                    "person_id": ids[day_activity],
                    "service_type": "day_activity",
                    "provider_sector": "municipality",
                    "contacts": 10,
                    "cost": 600.0,
                }
            ),
            pd.DataFrame(
                {
                    "person_id": ids[visitor],
                    "service_type": "friend_visitor",
                    "provider_sector": "ngo",
                    "contacts": 8,
                    "cost": np.nan,
                }
            ),
        ],
        ignore_index=True,
    )
    return persons, outcomes, exposures


@pytest.fixture(scope="module")
def simulated() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return simulate()


@pytest.fixture(scope="module")
def effects(simulated: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]) -> ServiceEffects:
    persons, outcomes, exposures = simulated
    return service_effects(
        persons, outcomes, exposures, score=SCORE, covariates=["age", "sex", "lives_alone"]
    )


@pytest.mark.parametrize("time_point", ["m6", "m12", POOLED])
def test_adjusted_and_ipw_recover_the_effect_naive_does_not(
    effects: ServiceEffects, time_point: str
) -> None:
    adjusted = effects.estimate("day_activity", "adjusted", time_point)
    ipw = effects.estimate("day_activity", "ipw", time_point)
    naive = effects.estimate("day_activity", "naive", time_point)
    assert adjusted["ci_low"] < TRUE_EFFECT < adjusted["ci_high"]
    assert ipw["ci_low"] < TRUE_EFFECT < ipw["ci_high"]
    # the naive estimate credits the service with regression to the mean
    assert naive["ci_high"] < TRUE_EFFECT
    assert abs(naive["estimate"] - TRUE_EFFECT) > 3 * abs(adjusted["estimate"] - TRUE_EFFECT)


def test_a_random_service_without_effect_is_null(effects: ServiceEffects) -> None:
    for method in ("naive", "adjusted", "ipw"):
        row = effects.estimate("friend_visitor", method)
        assert row["ci_low"] < 0 < row["ci_high"], method


def test_pooled_rows_use_person_clusters(effects: ServiceEffects) -> None:
    pooled = effects.estimate("day_activity", "adjusted", POOLED)
    single = effects.estimate("day_activity", "adjusted", "m6")
    assert pooled["n"] == 2 * pooled["n_persons"] == 3000
    assert pooled["n_exposed"] == single["n_exposed"]
    # stacking two correlated follow-ups does not halve the variance
    assert pooled["se"] > single["se"] / np.sqrt(2)


def test_balance_table_flags_and_weighting_fixes_imbalance(effects: ServiceEffects) -> None:
    balance = effects.balance.set_index(["category", "variable"])
    row = balance.loc[("day_activity", "baseline_score")]
    assert row["imbalanced_before"] and row["smd_before"] > 1
    assert not row["imbalanced_after"] and abs(row["smd_after"]) < 0.1
    assert set(balance.loc["day_activity"].index) == {
        "baseline_score",
        "age",
        "sex=male",
        "lives_alone",
    }
    assert (balance["imbalanced_after"] == (balance["smd_after"].abs() >= 0.1)).all()


def test_cost_per_point(effects: ServiceEffects) -> None:
    table = effects.cost_per_point.set_index("category")
    row = table.loc["day_activity"]
    adjusted = effects.estimate("day_activity", "adjusted", POOLED)
    assert row["mean_cost"] == pytest.approx(600.0)
    assert row["reduction"] == pytest.approx(-adjusted["estimate"])
    assert row["cost_per_point"] == pytest.approx(600.0 / -adjusted["estimate"])
    assert row["ci_low"] == pytest.approx(600.0 / -adjusted["ci_low"])
    assert row["ci_high"] == pytest.approx(600.0 / -adjusted["ci_high"])
    assert table.loc["friend_visitor", "n_with_cost"] == 0
    assert np.isnan(table.loc["friend_visitor", "cost_per_point"])


def test_descriptives_and_json(effects: ServiceEffects) -> None:
    table = effects.descriptives.set_index(["category", "time_point"])
    assert table.loc[("all", "m6"), "n"] == 1500
    exposed = table.loc[("day_activity", "m6"), "n"]
    assert exposed == effects.estimate("day_activity", "naive", "m6")["n_exposed"]
    text = json.dumps(effects.to_dict())
    assert "NaN" not in text


def test_higher_is_better_score_and_provider_sector() -> None:
    persons, outcomes, exposures = simulate(n=800, seed=3)
    # feeling safe (1–5, higher is better): flip the simulated change
    safe = outcomes.assign(score="insecurity.safe_daily", value=12 - outcomes["value"])
    result = service_effects(
        persons,
        safe,
        exposures,
        score="insecurity.safe_daily",
        by="provider_sector",
        direction="higher_is_better",
        covariates=["age"],
    )
    row = result.estimate("municipality", "adjusted")
    assert row["ci_low"] < -TRUE_EFFECT < row["ci_high"]
    cost = result.cost_per_point.set_index("category").loc["municipality"]
    assert cost["reduction"] == pytest.approx(row["estimate"])
    assert cost["cost_per_point"] == pytest.approx(600.0 / row["estimate"])


def test_small_categories_are_skipped_and_missing_covariates_noted() -> None:
    persons, outcomes, exposures = simulate(n=300, seed=5)
    rare = pd.DataFrame(
        {
            "person_id": [0, 1, 2],
            "service_type": "digital_contact",
            "provider_sector": "parish",
            "contacts": 1,
            "cost": 10.0,
        }
    )
    planned = pd.DataFrame(
        {
            "person_id": list(range(3, 40)),
            "service_type": "group_activity",
            "provider_sector": "ngo",
            "contacts": 0,
            "cost": 0.0,
        }
    )
    persons = persons.assign(age=persons["age"].where(persons["person_id"] != 10))
    result = service_effects(
        persons,
        outcomes,
        pd.concat([exposures, rare, planned]),
        score=SCORE,
        covariates=["age", "sex"],
    )
    assert "digital_contact" in result.skipped
    assert "group_activity" not in set(result.estimates["category"])  # 0 contacts: unexposed
    assert any("missing covariates" in note for note in result.notes)
    assert result.estimate("day_activity", "adjusted", "m6")["n_persons"] == 299


def test_input_errors() -> None:
    persons, outcomes, exposures = simulate(n=50, seed=1)
    with pytest.raises(LonelinessError, match="no outcome values"):
        service_effects(persons, outcomes, exposures, score="djg6.total")
    with pytest.raises(LonelinessError, match="lacks column"):
        service_effects(persons, outcomes, exposures.drop(columns="service_type"), score=SCORE)
    with pytest.raises(LonelinessError, match="lacks column"):
        service_effects(persons, outcomes, exposures, score=SCORE, covariates=["income"])
    with pytest.raises(LonelinessError, match="time point 'm24'"):
        analysis_data(persons, outcomes, exposures, score=SCORE, follow_ups=("m24",))


def simulate_longitudinal(n: int = 300, seed: int = 8) -> tuple[pd.DataFrame, ...]:
    """Random intercepts and slopes; the service (more likely for older persons) lowers the
    slope by 1 point per year; age also affects the level (confounding by a covariate)."""
    rng = np.random.default_rng(seed)
    ids = np.arange(n)
    age = rng.normal(79, 6, n)
    service = rng.random(n) < 1 / (1 + np.exp(-(age - 79) / 4))
    intercept = 5.5 + 0.05 * (age - 79) + rng.normal(0, 1.0, n)
    slope = rng.normal(0, 0.5, n) + TRUE_EFFECT * service
    frames = []
    for tp, years in (("baseline", 0.0), ("m6", 0.5), ("m12", 1.0)):
        value = intercept + slope * years + rng.normal(0, 0.5, n)
        frames.append(
            pd.DataFrame({"person_id": ids, "time_point": tp, "score": SCORE, "value": value})
        )
    persons = pd.DataFrame({"person_id": ids, "age": age})
    exposures = pd.DataFrame(
        {
            "person_id": ids[service],
            "service_type": "home_care",
            "provider_sector": "county",
            "contacts": 20,
            "cost": 2000.0,
        }
    )
    return persons, pd.concat(frames, ignore_index=True), exposures


def test_mixed_model_recovers_the_service_by_time_effect() -> None:
    persons, outcomes, exposures = simulate_longitudinal()
    result = mixed_model_effects(
        persons,
        outcomes,
        exposures,
        score=SCORE,
        time_months={"baseline": 0, "m6": 6, "m12": 12},
        covariates=["age"],
    )
    row = result.effects.set_index("category").loc["home_care"]
    assert row["ci_low"] < TRUE_EFFECT < row["ci_high"]
    assert row["ci_high"] < 0
    assert row["effect_m12"] == pytest.approx(row["slope_difference"])
    assert row["effect_m6"] == pytest.approx(row["slope_difference"] / 2)
    assert result.n_persons == 300 and result.n_observations == 900
    assert result.random_effects["slope_variance"] >= 0
    assert json.dumps(result.to_dict())


def test_mixed_model_needs_a_modelled_category() -> None:
    persons, outcomes, exposures = simulate_longitudinal(n=40)
    with pytest.raises(LonelinessError, match="enough exposed"):
        mixed_model_effects(
            persons, outcomes, exposures.iloc[:2], score=SCORE, time_months={"baseline": 0, "m6": 6}
        )


def test_no_overlap_skips_ipw_but_keeps_the_balance_before() -> None:
    persons, outcomes, _ = simulate(n=200, seed=2)
    older = persons["person_id"][persons["age"] > 79]
    exposures = pd.DataFrame(
        {
            "person_id": older,
            "service_type": "home_care",
            "provider_sector": "county",
            "contacts": 1,
            "cost": 1.0,
        }
    )
    result = service_effects(persons, outcomes, exposures, score=SCORE, covariates=["age"])
    assert set(result.estimates["method"]) == {"naive", "adjusted"}
    assert any("no overlap" in note for note in result.notes)
    balance = result.balance.set_index("variable")
    assert balance.loc["age", "imbalanced_before"]
    assert balance.loc["age", "imbalanced_after"] is None
    assert json.dumps(result.to_dict())


def test_the_baseline_score_as_a_pilot_covariate_is_used_once() -> None:
    persons, outcomes, exposures = simulate(n=300, seed=4)
    baseline = outcomes[outcomes["time_point"] == "baseline"].set_index("person_id")["value"]
    persons = persons.assign(baseline_ucla3_total=persons["person_id"].map(baseline))
    result = service_effects(
        persons, outcomes, exposures, score=SCORE, covariates=["age", "baseline_ucla3_total"]
    )
    assert any("baseline_ucla3_total" in note for note in result.notes)
    assert "adjusted" in set(result.estimates["method"])
