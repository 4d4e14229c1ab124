"""Older adults: the exploratory mixed model (difference in the yearly change associated with a
service) recovered from simulated data, and the joining of its inputs. The doubly robust
services analysis is tested in ``test_attribution.py``."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from vaikuttavuus.domain.loneliness import LonelinessError, analysis_data, mixed_model_effects

SCORE = "ucla3.total"
TRUE_EFFECT = -1.0


def test_analysis_data_joins_persons_outcomes_and_exposures() -> None:
    persons, outcomes, exposures = simulate_longitudinal(n=60)
    persons = persons.assign(age=persons["age"].where(persons["person_id"] != 3))
    data = analysis_data(persons, outcomes, exposures, score=SCORE, covariates=["age"])
    assert data.categories == ("home_care",)
    assert len(data.persons) == 59 and any("missing covariates" in n for n in data.notes)
    exposed = data.persons.set_index("person_id")["home_care"]
    assert exposed.sum() == exposures["person_id"].isin(data.persons["person_id"]).sum()
    with pytest.raises(LonelinessError, match="time point 'm24'"):
        analysis_data(persons, outcomes, exposures, score=SCORE, follow_ups=("m24",))
    with pytest.raises(LonelinessError, match="lacks column"):
        analysis_data(persons, outcomes, exposures.drop(columns="service_type"), score=SCORE)
    with pytest.raises(LonelinessError, match="no outcome values"):
        analysis_data(persons, outcomes, exposures, score="djg6.total")


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
    assert row["difference_m12"] == pytest.approx(row["slope_difference"])
    assert row["difference_m6"] == pytest.approx(row["slope_difference"] / 2)
    assert result.n_persons == 300 and result.n_observations == 900
    assert result.random_effects["slope_variance"] >= 0
    assert json.dumps(result.to_dict())


def test_mixed_model_needs_a_modelled_category() -> None:
    persons, outcomes, exposures = simulate_longitudinal(n=40)
    with pytest.raises(LonelinessError, match="enough exposed"):
        mixed_model_effects(
            persons, outcomes, exposures.iloc[:2], score=SCORE, time_months={"baseline": 0, "m6": 6}
        )
