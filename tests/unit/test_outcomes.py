"""Outcomes: change scores, responders, QALYs and cohort summaries."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from hypothesis import given
from hypothesis import strategies as st
from statsmodels.stats.proportion import proportion_confint

from vaikuttavuus.domain.outcomes import (
    ALL_ARMS,
    OutcomeError,
    adjusted_qaly_difference,
    auc_qalys,
    change_scores,
    classify_responders,
    response_rates,
    summarise_outcomes,
)
from vaikuttavuus.domain.specs import Band, BandScore, ResponderRule
from vaikuttavuus.domain.stats import mean_ci, median_ci

TIME_POINTS = ["baseline", "m3", "m12"]
IPSS_RULE = ResponderRule(instrument="ipss", score="total", min_improvement=3, min_relative=0.25)


def long_frame(rows: list[tuple[object, str, str, str, float | None]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["person_id", "arm", "time_point", "score", "value"])


def ipss_data() -> pd.DataFrame:
    rows: list[tuple[object, str, str, str, float | None]] = []
    # person, arm, baseline, m3, m12
    for person, arm, base, m3, m12 in [
        (1, "or", 20, 10, 12),  # −10: responder
        (2, "or", 10, 8, 7.1),  # −2 (20 %) not; at m12 −2.9 (29 %) responder by relative
        (3, "or", 8, 5, None),  # −3 exactly: responder; m12 missing
        (4, "clinic", 30, 25, 24),  # −5: responder
        (5, "clinic", 12, None, 11),  # m3 missing
        (6, "clinic", 4, 3, 3),  # −1 (25 %): responder by relative
    ]:
        for tp, value in (("baseline", base), ("m3", m3), ("m12", m12)):
            if value is not None:
                rows.append((person, arm, tp, "total", float(value)))
    return long_frame(rows)


def roster() -> pd.DataFrame:
    return pd.DataFrame({"person_id": [1, 2, 3, 4, 5, 6, 7], "arm": ["or"] * 3 + ["clinic"] * 4})


# --------------------------------------------------------------------------------------------
# Change scores
# --------------------------------------------------------------------------------------------


def test_change_scores_per_person_and_follow_up() -> None:
    result = change_scores(
        ipss_data(), baseline="baseline", time_points=TIME_POINTS, persons=roster()
    )
    table = result.table
    assert result.follow_ups == ("m3", "m12")
    assert len(table) == 7 * 2  # every roster person × follow-up
    row = table[(table["person_id"] == 1) & (table["time_point"] == "m3")].iloc[0]
    assert (row["baseline"], row["follow_up"], row["change"]) == (20, 10, -10)
    never = table[table["person_id"] == 7]
    assert never["baseline"].isna().all() and never["change"].isna().all()
    assert never["arm"].tolist() == ["clinic", "clinic"]
    missing = table[(table["person_id"] == 5) & (table["time_point"] == "m3")].iloc[0]
    assert math.isnan(missing["change"])
    assert json.dumps(result.to_dict())


def test_change_scores_rejects_bad_data() -> None:
    data = ipss_data()
    with pytest.raises(OutcomeError, match="two values"):
        change_scores(
            pd.concat([data, data.iloc[:1]]), baseline="baseline", time_points=TIME_POINTS
        )
    with pytest.raises(OutcomeError, match="unknown time point"):
        change_scores(data, baseline="baseline", time_points=["baseline", "m3"])
    with pytest.raises(OutcomeError, match="more than one arm"):
        change_scores(
            data.assign(arm=["or", "clinic"] * (len(data) // 2)),
            baseline="baseline",
            time_points=TIME_POINTS,
        )
    with pytest.raises(OutcomeError, match="not in the roster"):
        change_scores(data, baseline="baseline", time_points=TIME_POINTS, persons=roster().iloc[:3])


# --------------------------------------------------------------------------------------------
# Responders
# --------------------------------------------------------------------------------------------


def test_responders_points_or_relative() -> None:
    changes = change_scores(
        ipss_data(), baseline="baseline", time_points=TIME_POINTS, persons=roster()
    )
    table = classify_responders(changes, IPSS_RULE).table
    at = table.set_index(["person_id", "time_point"])["responder"]
    assert bool(at[(1, "m3")])
    assert not bool(at[(2, "m3")])  # 2 points, 20 %
    assert bool(at[(2, "m12")])  # 2.9 points but 29 %
    assert bool(at[(3, "m3")])  # exactly 3 points
    assert bool(at[(4, "m3")])
    assert bool(at[(6, "m3")])  # 1 point = 25 % of 4
    assert at[(5, "m3")] is pd.NA
    assert at[(7, "m12")] is pd.NA
    assert str(table["responder"].dtype) == "boolean"


def test_points_only_rule_and_floating_point_threshold() -> None:
    rule = ResponderRule(instrument="ipss", score="total", min_improvement=3)
    data = long_frame(
        [
            (1, "a", "baseline", "total", 10.1),
            (1, "a", "m3", "total", 7.1),
            (2, "a", "baseline", "total", 4.0),
            (2, "a", "m3", "total", 2.0),
        ]
    )
    changes = change_scores(data, baseline="baseline", time_points=["baseline", "m3"])
    table = classify_responders(changes, rule).table
    # 10.1 − 7.1 is 2.9999999999999996 in floating point: still 3 points
    assert table["responder"].tolist() == [True, False]


def test_baseline_band_thresholds() -> None:
    rule = ResponderRule(
        instrument="ipss",
        score="total",
        min_improvement=3,
        by_baseline_band={"moderate": 3.2, "severe": 7.1},
    )
    bands = BandScore(
        id="band",
        method="band",
        of="total",
        bands=(
            Band(label="mild", min=0, max=7),
            Band(label="moderate", min=8, max=19),
            Band(label="severe", min=20, max=35),
        ),
    )
    data = long_frame(
        [
            (1, "a", "baseline", "total", 25),
            (1, "a", "m3", "total", 19),  # severe, −6: no
            (2, "a", "baseline", "total", 25),
            (2, "a", "m3", "total", 17),  # severe, −8: yes
            (3, "a", "baseline", "total", 12),
            (3, "a", "m3", "total", 9),  # moderate, −3: no
            (4, "a", "baseline", "total", 6),
            (4, "a", "m3", "total", 3),  # mild, −3: yes
        ]
    )
    changes = change_scores(data, baseline="baseline", time_points=["baseline", "m3"])
    table = classify_responders(changes, rule, bands=bands).table
    assert table["band"].tolist() == ["severe", "severe", "moderate", "mild"]
    assert table["threshold"].tolist() == [7.1, 7.1, 3.2, 3.0]
    assert table["responder"].tolist() == [False, True, False, True]
    with pytest.raises(OutcomeError, match="band range"):
        classify_responders(changes, rule)


def test_higher_is_better_direction() -> None:
    rule = ResponderRule(instrument="eq5d5l", score="index", min_improvement=0.08)
    data = long_frame(
        [
            (1, "a", "baseline", "index", 0.6),
            (1, "a", "m3", "index", 0.7),
            (2, "a", "baseline", "index", 0.6),
            (2, "a", "m3", "index", 0.5),
        ]
    )
    changes = change_scores(data, baseline="baseline", time_points=["baseline", "m3"])
    up = classify_responders(changes, rule, direction="higher_is_better").table
    down = classify_responders(changes, rule, direction="lower_is_better").table
    assert up["responder"].tolist() == [True, False]
    assert down["responder"].tolist() == [False, True]
    assert up["improvement"].tolist() == pytest.approx([0.1, -0.1])


@given(
    st.floats(0, 35),
    st.floats(0, 35),
    st.floats(0.5, 10),
    st.one_of(st.none(), st.floats(0.05, 1)),
)
def test_responder_rule_property(
    base: float, follow: float, points: float, rel: float | None
) -> None:
    rule = ResponderRule(instrument="x", score="s", min_improvement=points, min_relative=rel)
    data = long_frame([(1, "a", "baseline", "s", base), (1, "a", "m3", "s", follow)])
    table = classify_responders(
        change_scores(data, baseline="baseline", time_points=["baseline", "m3"]), rule
    ).table
    improvement = base - follow
    expected = improvement >= points - 1e-9 or (
        rel is not None and base > 0 and improvement / base >= rel - 1e-9
    )
    assert bool(table["responder"].iloc[0]) == expected


# --------------------------------------------------------------------------------------------
# QALYs
# --------------------------------------------------------------------------------------------

DAYS = {"baseline": 0.0, "m6": 182.625, "m12": 365.25}


def utilities() -> pd.DataFrame:
    rows = []
    for person, arm, values in [
        (1, "or", (0.6, 0.8, 0.9)),
        (2, "or", (0.5, 0.5, 0.5)),
        (3, "clinic", (0.7, None, 0.9)),
        (4, "clinic", (1.0, 0.9, 0.8)),
    ]:
        for tp, value in zip(DAYS, values, strict=True):
            if value is not None:
                rows.append((person, arm, tp, value))
    return pd.DataFrame(rows, columns=["person_id", "arm", "time_point", "value"])


def test_auc_qalys_by_hand() -> None:
    result = auc_qalys(utilities(), time_days=DAYS)
    qaly = result.table.set_index("person_id")["qaly"]
    # 0.5·(0.6 + 0.8)/2 + 0.5·(0.8 + 0.9)/2 = 0.35 + 0.425
    assert qaly[1] == pytest.approx(0.775)
    assert qaly[2] == pytest.approx(0.5)
    assert math.isnan(qaly[3])  # a missing middle value: not complete
    assert qaly[4] == pytest.approx(0.5 * 0.95 + 0.5 * 0.85)
    assert result.horizon_years == pytest.approx(1.0)
    assert result.table.set_index("person_id")["baseline_utility"][4] == 1.0
    assert json.dumps(result.to_dict())


def test_auc_qalys_discounting_beyond_the_first_year() -> None:
    days = {"t0": 0.0, "t2": 2 * 365.25}
    constant = pd.DataFrame(
        {"person_id": [1, 1], "arm": ["a", "a"], "time_point": ["t0", "t2"], "value": [1.0, 1.0]}
    )
    undiscounted = auc_qalys(constant, time_days=days).table["qaly"].iloc[0]
    discounted = auc_qalys(constant, time_days=days, discount_rate=0.03).table["qaly"].iloc[0]
    assert undiscounted == pytest.approx(2.0)
    assert discounted == pytest.approx(1 + 1 / 1.03)
    rising = constant.assign(value=[0.0, 1.0])
    value = auc_qalys(rising, time_days=days, discount_rate=0.03).table["qaly"].iloc[0]
    # u(t) = t/2: year 0 integral 0.25, year 1 integral 0.75 discounted once
    assert value == pytest.approx(0.25 + 0.75 / 1.03)
    one_year = auc_qalys(utilities(), time_days=DAYS, discount_rate=0.035)
    assert one_year.table["qaly"].iloc[0] == pytest.approx(0.775)


def test_auc_qalys_errors() -> None:
    with pytest.raises(OutcomeError, match="increasing"):
        auc_qalys(utilities(), time_days={"baseline": 0, "m6": 400, "m12": 365})
    with pytest.raises(OutcomeError, match="two time points"):
        auc_qalys(utilities(), time_days={"baseline": 0})


def test_adjusted_qaly_difference_matches_formula_fit_and_recovers_effect() -> None:
    rng = np.random.default_rng(21)
    n = 600
    arm = np.where(rng.random(n) < 0.5, "clinic", "or")
    base = np.clip(rng.normal(0.7, 0.15, n) - 0.05 * (arm == "clinic"), -0.2, 1)
    rows = []
    for i in range(n):
        end = base[i] + 0.04 * (arm[i] == "clinic") + rng.normal(0, 0.05)
        middle = (base[i] + end) / 2 + rng.normal(0, 0.03)
        for tp, value in zip(DAYS, (base[i], middle, end), strict=True):
            rows.append((i, arm[i], tp, value))
    frame = pd.DataFrame(rows, columns=["person_id", "arm", "time_point", "value"])
    qalys = auc_qalys(frame, time_days=DAYS)
    result = adjusted_qaly_difference(qalys, reference="or")
    fit = smf.ols("qaly ~ C(arm, Treatment('or')) + baseline_utility", data=qalys.table).fit(
        cov_type="HC3"
    )
    name = "C(arm, Treatment('or'))[T.clinic]"
    assert result.estimate == pytest.approx(fit.params[name])
    assert result.se == pytest.approx(fit.bse[name])
    assert result.n == n and result.intervention == "clinic"
    # true adjusted difference: 0.04 over half a year on average → 0.02 QALY (AUC)
    assert result.ci_low < 0.02 < result.ci_high
    # the baseline imbalance makes the unadjusted difference smaller (−0.05 at baseline)
    assert result.unadjusted < result.ci_low
    assert json.dumps(result.to_dict())
    with pytest.raises(OutcomeError, match="two arms"):
        adjusted_qaly_difference(qalys, reference="nope")


# --------------------------------------------------------------------------------------------
# Summaries
# --------------------------------------------------------------------------------------------


def test_summarise_outcomes_per_arm_and_all() -> None:
    changes = change_scores(
        ipss_data(), baseline="baseline", time_points=TIME_POINTS, persons=roster()
    )
    responders = classify_responders(changes, IPSS_RULE)
    summary = summarise_outcomes(responders).table.set_index(["arm", "score", "time_point"])
    row = summary.loc[("or", "total", "m3")]
    assert row["n_persons"] == 3 and row["n"] == 3 and row["share_missing"] == 0
    expected = mean_ci([-10, -2, -3])
    assert row["change_mean"] == pytest.approx(expected.mean)
    assert row["change_ci_low"] == pytest.approx(expected.ci_low)
    assert row["change_median"] == pytest.approx(median_ci([-10, -2, -3]).median)
    clinic = summary.loc[("clinic", "total", "m3")]
    # persons 4, 5, 6, 7: only 4 and 6 have both values
    assert clinic["n_persons"] == 4 and clinic["n"] == 2
    assert clinic["share_missing"] == pytest.approx(0.5)
    assert clinic["n_baseline"] == 3
    assert clinic["n_responders"] == 2 and clinic["n_classified"] == 2
    # The paired means are over the persons with both answers, so their difference is the
    # mean change; the unpaired baseline mean also counts who has no follow-up.
    assert clinic["paired_follow_up_mean"] - clinic["paired_baseline_mean"] == pytest.approx(
        clinic["change_mean"]
    )
    assert clinic["paired_baseline_mean"] != pytest.approx(clinic["baseline_mean"])
    everyone = summary.loc[(ALL_ARMS, "total", "m3")]
    assert everyone["n_persons"] == 7 and everyone["n"] == 5
    assert everyone["n_responders"] == 4
    low, high = proportion_confint(4, 5, method="wilson")
    assert everyone["responders_ci_low"] == pytest.approx(low)
    assert everyone["responders_ci_high"] == pytest.approx(high)
    m12 = summary.loc[("or", "total", "m12")]
    assert m12["n"] == 2 and m12["n_responders"] == 2
    as_dict = summarise_outcomes(responders).to_dict()
    assert json.dumps(as_dict)


def test_response_rates() -> None:
    counts = pd.DataFrame(
        {
            "arm": ["or", "or", "clinic", "clinic", "or"],
            "time_point": ["baseline", "m3", "baseline", "m3", "m3"],
            "invited": [40, 30, 50, 45, 10],
            "responded": [38, 20, 45, 30, 5],
        }
    )
    table = response_rates(counts).table.set_index(["arm", "time_point"])
    assert table.loc[("or", "m3"), "invited"] == 40
    assert table.loc[("or", "m3"), "rate"] == pytest.approx(25 / 40)
    low, high = proportion_confint(25, 40, method="wilson")
    assert table.loc[("or", "m3"), "ci_low"] == pytest.approx(low)
    assert table.loc[("or", "m3"), "ci_high"] == pytest.approx(high)
    assert table.loc[(ALL_ARMS, "baseline"), "rate"] == pytest.approx(83 / 90)
    with pytest.raises(OutcomeError, match="more responses"):
        response_rates(counts.assign(responded=counts["invited"] + 1))
    assert json.dumps(response_rates(counts).to_dict())
