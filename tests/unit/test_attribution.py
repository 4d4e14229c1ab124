"""The services analysis of the older adults (domain/attribution.py): exposure windows, the
doubly robust estimates and their tables, on hand-made episodes and on the validation
simulator's data (vaikuttavuus/validation.py)."""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import date

import numpy as np
import pandas as pd
import pytest

from vaikuttavuus import validation
from vaikuttavuus.domain import attribution

# -- exposure per follow-up ------------------------------------------------------------------


def _episodes(rows: list[tuple[int, str, str, str | None, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        rows, columns=["person_id", "service_type", "started_on", "ended_on", "contacts", "cost"]
    )


def test_a_service_counts_from_min_exposure_days_before_the_answer_and_after_the_start() -> (
    None
):
    episodes = _episodes(
        [
            (1, "friend", "2025-01-31", None, 10, 100.0),  # 30 days before the answer: counts
            (2, "friend", "2025-02-01", None, 10, 100.0),  # 29 days before: not yet
            (3, "friend", "2024-12-31", None, 10, 100.0),  # before the care cycle: not exposure
            (4, "friend", "2025-01-10", None, 0, 0.0),  # planned, no contacts: not exposure
            (5, "friend", "2025-01-10", None, np.nan, np.nan),  # contacts unknown: counts
            (6, "home_care", "2025-04-01", None, 10, 100.0),  # after the answer
        ]
    )
    ids = np.arange(1, 7)
    anchor = pd.Series(pd.to_datetime(["2025-03-02"] * 6))
    start = pd.Series(pd.to_datetime(["2025-01-01"] * 6))
    result = attribution.exposure_at(
        episodes, ids, anchor, start, categories=["friend", "home_care"],
        min_exposure_days=30, as_of=date(2025, 6, 1),
    )  # fmt: skip
    assert result.exposed[:, 0].tolist() == [1, 0, 0, 0, 1, 0]
    assert result.exposed[:, 1].tolist() == [0] * 6


def test_dose_and_cost_are_prorated_to_the_window() -> None:
    """An episode of 100 days (10 contacts, 1 000 €) whose first 50 days fall before the
    answer counts 5 contacts and 500 €; the cost of an episode that started before the care
    cycle counts from the cycle's start; an episode without a cost makes the person's cost
    unknown."""
    episodes = _episodes(
        [
            (1, "friend", "2025-01-01", "2025-04-10", 10, 1000.0),
            (2, "friend", "2024-12-02", "2025-03-11", 10, 1000.0),
            (3, "friend", "2025-01-01", None, 5, np.nan),
        ]
    )
    anchor = pd.Series(pd.to_datetime(["2025-02-19"] * 3))
    start = pd.Series(pd.to_datetime(["2025-01-01"] * 3))
    result = attribution.exposure_at(
        episodes, [1, 2, 3], anchor, start, categories=["friend"], min_exposure_days=30,
        as_of=date(2025, 6, 1),
    )  # fmt: skip
    assert result.contacts[0, 0] == pytest.approx(5.0)
    assert result.cost[0] == pytest.approx(500.0)
    assert result.exposed[1, 0] == 0  # started before the care cycle
    assert result.cost[1] == pytest.approx(500.0)  # 1 Jan – 19 Feb of 100 days
    assert math.isnan(result.cost[2])


def test_profile_bands() -> None:
    bands = attribution.score_band([3, 5, 6, 7, 8, 9, np.nan], 3, 9, 6)
    assert bands.tolist() == ["below", "below", "at", "at", "above", "above", None]
    assert attribution.age_band([65, 74.9, 75, 84, 85, np.nan]).tolist() == [
        "65-74", "65-74", "75-84", "75-84", "85+", None,
    ]  # fmt: skip


# -- the analysis --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data() -> attribution.AttributionData:
    return validation.attribution_input(validation.simulate(1200, 21))


@pytest.fixture(scope="module")
def result(data: attribution.AttributionData) -> attribution.Attribution:
    plan = attribution.AttributionPlan(
        primary_score="ucla3.total",
        primary_time_point="m12",
        missing_data="aipw_response",
        imputations=3,
        seed=5,
    )
    return attribution.attribute(data, plan)


def test_every_estimate_and_its_family(result: attribution.Attribution) -> None:
    aipw = result.aipw()
    assert len(aipw) == 6 * 3 * 2  # services × scores × follow-ups
    assert result.n_primary == 6 and result.n_secondary == 30
    primary = aipw[aipw["family"] == "primary"]
    assert set(primary["score"]) == {"ucla3.total"} and set(primary["time_point"]) == {"m12"}
    assert (aipw["p_adjusted"] >= aipw["p_value"] - 1e-12).all()
    assert (aipw["e_value"] >= 1).all() and (aipw["e_value_ci"] >= 1).all()
    assert (aipw["ci_low"] < aipw["estimate"]).all() and (aipw["estimate"] < aipw["ci_high"]).all()
    assert set(result.estimates["method"]) == {"aipw", "outcome_regression", "ipw", "unadjusted"}
    assert json.dumps(result.to_dict())


def test_adjustment_removes_the_confounding_of_home_care(
    result: attribution.Attribution,
) -> None:
    """Home care goes to the old and insecure, who are lonelier: the unadjusted difference
    in loneliness is clearly positive although the truth is 0; the adjusted one is not."""
    rows = result.estimates.set_index(["category", "score", "time_point", "method"])
    plain = rows.loc[("home_care", "ucla3.total", "m12", "unadjusted")]
    adjusted = rows.loc[("home_care", "ucla3.total", "m12", "aipw")]
    assert plain["ci_low"] > 0
    assert adjusted["ci_low"] < 0 < adjusted["ci_high"]
    friend = rows.loc[("friend_service", "ucla3.total", "m12", "aipw")]
    truth = validation.true_differences().set_index(["score", "time_point", "category"])
    assert friend["estimate"] == pytest.approx(
        truth.loc[("ucla3.total", "m12", "friend_service"), "truth"], abs=0.25
    )
    assert friend["ci_high"] < 0


def test_balance_overlap_and_sensitivity_tables(result: attribution.Attribution) -> None:
    balance = result.balance[result.balance["time_point"] == "m12"]
    home = balance[balance["category"] == "home_care"].set_index("variable")
    # home care is given by baseline safety: imbalanced before weighting, much less after
    before = home.loc["baseline_insecurity_safe_daily", "smd_before"]
    after = home.loc["baseline_insecurity_safe_daily", "smd_after"]
    assert abs(before) > 0.3 and abs(after) < abs(before) / 2
    assert result.balance["imbalanced_after"].equals(result.balance["smd_after"].abs() > 0.1)
    assert "friend_service" in set(home.index)  # the other services are balanced too
    overlap = result.overlap[result.overlap["time_point"] == "m12"]
    assert set(overlap["group"]) == {"exposed", "unexposed"}
    assert (overlap["p0"] <= overlap["p50"]).all() and (overlap["p50"] <= overlap["p100"]).all()
    shares = result.overlap_bins.groupby(["category", "time_point"])["share_exposed"].sum()
    assert shares.to_numpy() == pytest.approx(1.0)
    analyses = set(result.sensitivity["analysis"])
    assert analyses >= {
        "outcome_regression", "ipw", "complete_cases", "without_proxy", "web_only", "mnar_all",
        "mnar_exposed",
    }  # fmt: skip
    sens = result.sensitivity.set_index(["category", "analysis"])
    aipw = result.aipw().set_index(["category", "score", "time_point"])
    # exposed non-responders 1 point worse moves a beneficial difference towards 0
    friend = aipw.loc[("friend_service", "ucla3.total", "m12"), "estimate"]
    assert sens.loc[("friend_service", "mnar_exposed"), "estimate"] > friend
    missing = result.missing.set_index(["variable", "time_point", "group"]).sort_index()
    missing = missing["share_missing"]
    assert 0 < missing.loc[("ucla3.total", "m12")].mean() < 0.6


def test_cost_per_point_is_incremental_and_hidden_when_the_interval_includes_zero(
    result: attribution.Attribution,
) -> None:
    cost = result.cost.set_index(["category", "score"])
    zero = cost.loc[("digital_contact", "ucla3.total")]  # true difference 0
    assert zero["status"] == "interval_includes_zero" and math.isnan(zero["cost_per_point"])
    friend = cost.loc[("friend_service", "ucla3.total")]
    assert friend["status"] in {"shown", "lower_cost"}
    if friend["status"] == "shown":
        assert friend["cost_per_point"] == pytest.approx(
            friend["delta_cost"] / friend["improvement"], rel=0.05
        )
    home = cost.loc[("home_care", "insecurity.safe_daily")]
    assert home["status"] == "shown" and home["delta_cost"] > 0


def test_client_guidance_cells(
    data: attribution.AttributionData, result: attribution.Attribution
) -> None:
    guidance = result.guidance
    assert guidance is not None
    everyone = guidance.estimate(dict.fromkeys(attribution.PROFILE_DIMENSIONS)).set_index(
        "category"
    )
    aipw = result.aipw().set_index(["category", "score", "time_point"])["estimate"]
    # over (nearly) everyone, the mean pseudo-outcome is the AIPW estimate
    assert everyone.loc["friend_service", "estimate"] == pytest.approx(
        aipw.loc[("friend_service", "ucla3.total", "m12")], abs=0.05
    )
    lonely = guidance.estimate({"band": "above", "lives_alone": "yes"}).set_index("category")
    assert lonely["n_similar"].iloc[0] < everyone["n_similar"].iloc[0]
    assert (lonely["n_exposed"] + lonely["n_unexposed"] == lonely["n_similar"]).all()
    assert lonely.loc["friend_service", "ci_high"] - lonely.loc["friend_service", "ci_low"] > (
        everyone.loc["friend_service", "ci_high"] - everyone.loc["friend_service", "ci_low"]
    )


def test_small_categories_are_not_estimated(data: attribution.AttributionData) -> None:
    """A service with too few clients gets no estimate and the reason ``small_cell``."""
    follow_ups = []
    for follow_up in data.follow_ups:
        exposed = follow_up.exposure.exposed.copy()
        exposed[:, 4] = 0.0
        exposed[:3, 4] = 1.0
        follow_ups.append(
            dataclasses.replace(
                follow_up, exposure=dataclasses.replace(follow_up.exposure, exposed=exposed)
            )
        )
    small = dataclasses.replace(data, follow_ups=tuple(follow_ups))
    plan = attribution.AttributionPlan(
        primary_score="ucla3.total", primary_time_point="m12", missing_data="complete_cases"
    )
    found = attribution.attribute(small, plan).aipw()
    rare = found[found["category"] == "digital_contact"]
    assert rare["estimate"].isna().all() and (rare["reason"] == "small_cell").all()
    assert found[found["category"] == "friend_service"]["estimate"].notna().all()


def test_multiple_imputation_runs_and_pools(data: attribution.AttributionData) -> None:
    plan = attribution.AttributionPlan(
        primary_score="ucla3.total", primary_time_point="m12", imputations=3, seed=2
    )
    found = attribution.attribute(data, plan)
    assert found.imputations == 3
    primary = found.aipw()[found.aipw()["family"] == "primary"]
    assert primary["estimate"].notna().all()
    assert {"mnar_all", "mnar_exposed"} <= set(found.sensitivity["analysis"])


def test_input_checks(data: attribution.AttributionData) -> None:
    plan = attribution.AttributionPlan(primary_score="ipss.total", primary_time_point="m12")
    with pytest.raises(attribution.AttributionError, match="primary score"):
        attribution.attribute(data, plan)
    plan = attribution.AttributionPlan(primary_score="ucla3.total", primary_time_point="m24")
    with pytest.raises(attribution.AttributionError, match="primary time point"):
        attribution.attribute(data, plan)


def test_a_score_nobody_answered_is_left_out(data: attribution.AttributionData) -> None:
    follow_ups = tuple(
        dataclasses.replace(
            f,
            outcomes={**f.outcomes, "djg6.total": np.full(len(data.person_ids), np.nan)},
        )
        for f in data.follow_ups
    )
    plan = attribution.AttributionPlan(
        primary_score="ucla3.total", primary_time_point="m12", missing_data="aipw_response",
        imputations=1,
    )  # fmt: skip
    found = attribution.attribute(dataclasses.replace(data, follow_ups=follow_ups), plan)
    aipw = found.aipw()
    assert aipw[aipw["score"] == "djg6.total"]["estimate"].isna().all()
    assert aipw[aipw["score"] == "ucla3.total"]["estimate"].notna().all()
    assert any("too few answers" in note for note in found.notes)
