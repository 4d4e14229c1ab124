"""The cohort analytics service against the domain functions on the same data.

Expected values are computed here from frames read by *other* code paths (the walking
skeleton's ``instrument_scores``, the costs engineer's ``cost_rows``, the ORM) and the pure
domain functions, so a mistake in the service's reads, joins, windows or covariates shows.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from flask import Flask
from sqlalchemy import event, select

from tests.support.cohort_data import TODAY, cohort_app, cohort_template  # noqa: F401
from vaikuttavuus import queries
from vaikuttavuus.domain import attribution, cea, disclosure, outcomes
from vaikuttavuus.domain.costing import episode_costs
from vaikuttavuus.extensions import db
from vaikuttavuus.models import (
    Answer,
    Arm,
    ClinicalMeasurement,
    Enrolment,
    ImportBatch,
    Invitation,
    Person,
    Pilot,
    Response,
    ServiceExposure,
    TimePoint,
)
from vaikuttavuus.services.analytics import (
    ALL,
    CohortAnalysis,
    Filters,
    mixed_model,
    publish,
)
from vaikuttavuus.services.catalogue import costing_catalogue
from vaikuttavuus.services.cohort_tables import TABLES
from vaikuttavuus.services.definitions import pilot_spec

N_BOOT = 300
SEED = 7


def pilot(code: str) -> Pilot:
    found = queries.pilot_by_code(db.session, code)
    assert found is not None
    return found


def analysis(code: str, filters: Filters | None = None) -> CohortAnalysis:
    return CohortAnalysis(db.session, pilot(code), filters, n_boot=N_BOOT, seed=SEED, as_of=TODAY)


# -- independent expected frames -----------------------------------------------------------------


def roster(code: str) -> pd.DataFrame:
    rows = queries.enrolment_overview(db.session, pilot(code).id)
    rows["index_date"] = pd.to_datetime(rows["index_date"])
    return rows.sort_values("enrolment_id").reset_index(drop=True)


def score_long(code: str, instrument: str, score: str) -> pd.DataFrame:
    """One score in the domain's long form, from the walking skeleton's scoring query."""
    scores = queries.instrument_scores(db.session, pilot(code).id, instrument)
    return pd.DataFrame(
        {
            "person_id": scores["enrolment_id"].to_numpy(),
            "arm": scores["arm"].to_numpy(),
            "time_point": scores["time_point"].to_numpy(),
            "score": f"{instrument}.{score}",
            "value": scores[score].to_numpy(dtype=float),
        }
    )


def due(code: str, people: pd.DataFrame, time_point: str, answered: pd.DataFrame) -> pd.Series:
    spec = pilot_spec(pilot(code))
    close = spec.time_point(time_point).window_close_days
    closed = people["index_date"] + pd.Timedelta(days=close) < pd.Timestamp(TODAY)
    codes = [tp.code for tp in pilot(code).time_points]
    assert time_point in codes
    return closed | people["enrolment_id"].isin(answered)


def answered_at(code: str, time_point: str) -> set[int]:
    return set(
        db.session.scalars(
            select(Response.enrolment_id)
            .join(Enrolment, Response.enrolment_id == Enrolment.id)
            .join(TimePoint, Response.time_point_id == TimePoint.id)
            .where(
                Enrolment.pilot_id == pilot(code).id,
                TimePoint.code == time_point,
                Response.status == "submitted",
            )
        )
    )


def expected_responders(code: str, follow_ups: list[str]) -> pd.DataFrame:
    spec = pilot_spec(pilot(code))
    rule = spec.primary_outcome
    people = roster(code)
    long = score_long(code, rule.instrument, rule.score)
    parts = []
    for tp in follow_ups:
        ids = people.loc[due(code, people, tp, answered_at(code, tp)), "enrolment_id"]
        rows = long[long["person_id"].isin(ids) & long["time_point"].isin([spec.baseline.id, tp])]
        persons = people[people["enrolment_id"].isin(ids)][["enrolment_id", "arm"]].rename(
            columns={"enrolment_id": "person_id"}
        )
        parts.append(
            outcomes.change_scores(
                rows,
                baseline=spec.baseline.id,
                time_points=[spec.baseline.id, tp],
                persons=persons,
                scores=[f"{rule.instrument}.{rule.score}"],
            ).table
        )
    return outcomes.classify_responders(
        pd.concat(parts, ignore_index=True),
        rule,
        direction="lower_is_better",
        score=f"{rule.instrument}.{rule.score}",
    ).table


def same(a: Any, b: Any, tol: float = 1e-9) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return bool(abs(float(a) - float(b)) <= tol * max(1.0, abs(float(b))))


# -- outcomes, response rates, enrolment ---------------------------------------------------------


def test_outcome_summaries_equal_the_domain_on_independently_read_scores(
    cohort_app: Flask,  # noqa: F811
) -> None:
    result = analysis("bph")
    table = expected_responders("bph", ["m3", "m12"])
    summary = outcomes.summarise_outcomes(table).table
    expected = disclosure.suppress_small_cells(
        summary,
        counts=list(outcomes.SUMMARY_DERIVED),
        derived=outcomes.SUMMARY_DERIVED,
        groups=["arm"],
        strata=["score", "time_point"],
        total_label=ALL,
        min_count=5,
    ).table
    shown = result.outcomes.summary.table
    shown = shown[shown["score"] == "ipss.total"]
    assert len(shown) == len(expected) == 6  # 2 arms + all, 2 follow-ups
    columns = ["n_persons", "n", "change_mean", "change_ci_low", "share_responders"]
    merged = shown.merge(expected, on=["arm", "score", "time_point"], suffixes=("", "_expected"))
    assert len(merged) == 6
    for column in columns:
        for value, wanted in zip(merged[column], merged[f"{column}_expected"], strict=True):
            assert same(None if pd.isna(value) else value, None if pd.isna(wanted) else wanted)
    # the synthetic truth: both arms improve by clearly more than the responder threshold
    improved = merged[merged["arm"] != ALL]["change_mean"].dropna()
    assert len(improved) >= 2 and (improved < -3).all()


def test_response_rates_count_closed_invitations(cohort_app: Flask) -> None:  # noqa: F811
    result = analysis("older-adults")
    rows = db.session.execute(
        select(Invitation.status, TimePoint.code)
        .join(Enrolment, Invitation.enrolment_id == Enrolment.id)
        .join(TimePoint, Invitation.time_point_id == TimePoint.id)
        .where(Enrolment.pilot_id == pilot("older-adults").id)
    ).all()
    frame = pd.DataFrame(rows, columns=["status", "time_point"])
    table = result.response_rates.table.table.set_index(["arm", "time_point"])
    for tp in ("baseline", "m6", "m12"):
        part = frame[frame["time_point"] == tp]
        invited = int(part["status"].isin(["completed", "expired", "opted_out"]).sum())
        responded = int((part["status"] == "completed").sum())
        row = table.loc[(ALL, tp)]
        assert (int(row["invited"]), int(row["responded"])) == (invited, responded)
        assert row["rate"] == pytest.approx(responded / invited)


def test_filters_select_the_cohort_in_the_database(cohort_app: Flask) -> None:  # noqa: F811
    people = roster("bph")
    everyone = analysis("bph").enrolment.table.table.set_index("arm")
    assert int(everyone.loc[ALL, "enrolled"]) == len(people)

    only_or = analysis("bph", Filters(arm="operating_room")).enrolment.table.table.set_index("arm")
    assert int(only_or.loc["operating_room", "enrolled"]) == int(
        (people["arm"] == "operating_room").sum()
    )
    assert int(only_or.loc["outpatient_clinic", "enrolled"]) == 0

    middle = people["index_date"].sort_values().iloc[len(people) // 2].date()
    start = middle - timedelta(days=200)
    period = analysis("bph", Filters(period=(start, middle))).enrolment.table.table
    wanted = int(
        (
            (people["index_date"] >= pd.Timestamp(start))
            & (people["index_date"] <= pd.Timestamp(middle))
        ).sum()
    )
    assert int(period.set_index("arm").loc[ALL, "enrolled"]) == wanted < len(people)

    unit = db.session.scalar(
        select(Enrolment.unit).where(
            Enrolment.pilot_id == pilot("bph").id, Enrolment.unit.is_not(None)
        )
    )
    by_unit = analysis("bph", Filters(unit=unit)).enrolment.table.table.set_index("arm")
    count = len(
        db.session.scalars(
            select(Enrolment.id).where(
                Enrolment.pilot_id == pilot("bph").id, Enrolment.unit == unit
            )
        ).all()
    )
    assert int(by_unit.loc[ALL, "enrolled"]) == count < len(people)

    # the time point filter moves the outcome follow-up and the response-rate rows
    at_m3 = analysis("bph", Filters(time_point="m3"))
    assert set(at_m3.outcomes.summary.table["time_point"]) == {"m3"}
    assert set(at_m3.response_rates.table.table["time_point"]) == {"m3"}
    assert at_m3.follow_up == "m3"


def test_small_cells_and_their_derived_figures_are_hidden(cohort_app: Flask) -> None:  # noqa: F811
    people = roster("bph")
    dates = sorted(set(people["index_date"]))

    def counts(start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
        inside = (people["index_date"] >= start) & (people["index_date"] <= end)
        return people.loc[inside, "arm"].value_counts()

    # a period with 1–4 outpatient-clinic people and at least 5 in the operating room
    start, end = next(
        (a, b)
        for i, a in enumerate(dates)
        for b in dates[i:]
        if 1 <= counts(a, b).get("outpatient_clinic", 0) <= 4
        and counts(a, b).get("operating_room", 0) >= 5
    )
    result = analysis("bph", Filters(period=(start.date(), end.date())))
    enrolment = result.enrolment.table
    table = enrolment.table.set_index("arm")
    assert pd.isna(table.loc["outpatient_clinic", "enrolled"])  # fewer than 5: hidden
    # the total is published, so the other arm would give the small one away: hidden too
    assert pd.isna(table.loc["operating_room", "enrolled"])
    assert int(table.loc[ALL, "enrolled"]) >= 5
    assert enrolment.n_primary == 1 and enrolment.n_secondary == 1
    position = list(enrolment.table["arm"]).index("outpatient_clinic")
    assert enrolment.is_hidden(position, "enrolled") and enrolment.is_primary(position, "enrolled")
    for row in result.outcomes.summary.records():
        if row["n"] is None:
            assert row["change_mean"] is None and row["change_ci_low"] is None
    assert [r["enrolled"] for r in enrolment.records() if r["arm"] != ALL] == [None, None]


def test_publish_hides_derived_figures_and_complementary_cells() -> None:
    table = pd.DataFrame(
        {"arm": ["a", "b", "c", ALL], "n": [2, 10, 12, 24], "mean": [1.0, 2.0, 3.0, 2.5]}
    )
    published = publish(
        "t",
        table,
        counts=["n"],
        derived={"n": ["mean"]},
        groups=["arm"],
        total_label=ALL,
        min_count=5,
    )
    rows = {r["arm"]: r for r in published.records()}
    assert rows["a"]["n"] is None and rows["a"]["mean"] is None
    assert rows["b"]["n"] is None  # the smallest other cell, or "a" = 24 − 10 − 12
    assert rows["c"]["n"] == 12 and rows[ALL]["n"] == 24
    assert published.is_primary(0, "n") and not published.is_primary(1, "n")


# -- costs and cost-effectiveness ----------------------------------------------------------------


def expected_cea_frame() -> pd.DataFrame:
    code = "bph"
    spec = pilot_spec(pilot(code))
    people = roster(code)
    complete = people[
        people["index_date"] + pd.Timedelta(days=spec.care_cycle.end_days) < pd.Timestamp(TODAY)
    ]
    rows = queries.cost_rows(db.session, pilot(code).id)
    costs = episode_costs(
        rows,
        complete[["enrolment_id", "index_date"]],
        spec.care_cycle.start_days,
        spec.care_cycle.end_days,
        costing_catalogue(db.session),
        spec.currency_year,
        id_col="enrolment_id",
    ).totals
    frame = complete.set_index("enrolment_id")[["arm", "index_date", "person_id"]].copy()
    frame["cost"] = costs.reindex(frame.index)
    responders = expected_responders(code, ["m12"]).set_index("person_id")
    frame["improvement"] = responders["improvement"].reindex(frame.index)
    frame["responder"] = (
        responders["responder"].astype("Float64").astype(float).reindex(frame.index)
    )
    # covariates straight from the ORM
    birth = dict(db.session.execute(select(Person.id, Person.birth_year)).all())
    frame["age"] = frame["index_date"].dt.year - frame["person_id"].map(birth).astype(float)
    base = score_long(code, "ipss", "total")
    base = base[base["time_point"] == "baseline"].set_index("person_id")["value"]
    frame["baseline_ipss_total"] = base.reindex(frame.index)
    volume = {}
    for measurement in db.session.scalars(
        select(ClinicalMeasurement)
        .where(
            ClinicalMeasurement.measure_code == "prostate_volume",
            ClinicalMeasurement.superseded_by_id.is_(None),
        )
        .order_by(ClinicalMeasurement.measured_on)
    ):
        index_date = frame["index_date"].get(measurement.enrolment_id)
        if index_date is not None and pd.Timestamp(measurement.measured_on) <= index_date:
            volume[measurement.enrolment_id] = measurement.value_num
    frame["prostate_volume"] = pd.Series(volume, dtype=float).reindex(frame.index)
    return frame


def test_cost_effectiveness_equals_the_domain_on_the_same_patients(
    cohort_app: Flask,  # noqa: F811
) -> None:
    result = analysis("bph").cost_effectiveness
    frame = expected_cea_frame()
    assert result.reference == "operating_room" and result.intervention == "outpatient_clinic"
    for effect in ("improvement", "responder"):
        data = frame.dropna(subset=["cost", effect])
        two_data = cea.TwoArmData.from_frame(
            data, arm="arm", cost="cost", effect=effect, reference="operating_room"
        )
        shown = result.effects[effect]
        assert shown.available, shown.notes
        wtp = list(shown.scale.wtp)
        expected = cea.two_arm_cea(two_data, wtp=wtp)
        two = shown.two_arm
        assert two is not None
        assert (two.reference.n, two.intervention.n) == (
            two_data.n_reference,
            two_data.n_intervention,
        )
        assert two.delta_cost == pytest.approx(expected.delta_cost)
        assert two.delta_effect == pytest.approx(expected.delta_effect)
        assert two.status == expected.status
        assert (two.icer is None) == (expected.icer is None)
        assert two.icer is None or two.icer > 0  # never a negative ICER
        assert two.fieller == (
            None if expected.fieller is None else pytest.approx(expected.fieller)
        )
        boot = cea.bootstrap_two_arms(two_data, wtp=wtp, n_boot=N_BOOT, seed=SEED)
        assert shown.bootstrap is not None
        np.testing.assert_allclose(shown.bootstrap.ceac, boot.ceac)
        np.testing.assert_allclose(shown.bootstrap.delta_cost, boot.delta_cost)
        covariates = ["age", "baseline_ipss_total", "prostate_volume"]
        complete = data.dropna(subset=covariates)
        regression = cea.net_benefit_regression(
            complete,
            arm="arm",
            cost="cost",
            effect=effect,
            covariates=covariates,
            reference="operating_room",
            wtp=wtp,
        )
        assert shown.regression is not None
        assert shown.regression.n == regression.n
        np.testing.assert_allclose(shown.regression.inmb, regression.inmb)
        np.testing.assert_allclose(shown.regression.ci_low, regression.ci_low)
    # the outpatient procedures are cheaper (synthetic unit costs), by about €2 000–3 000
    assert -4_000 < result.effects["improvement"].two_arm.delta_cost < -1_000  # type: ignore[union-attr]


def test_incremental_analysis_over_procedure_types(cohort_app: Flask) -> None:  # noqa: F811
    result = analysis("bph").cost_effectiveness.effects["improvement"]
    frame = expected_cea_frame().dropna(subset=["cost", "improvement"])
    procedures = queries.cohort_procedures(db.session, pilot("bph").id)
    frame["procedure_type"] = procedures.set_index("enrolment_id")["procedure_type"].reindex(
        frame.index
    )
    grouped = frame.groupby("procedure_type").agg(
        n=("cost", "size"), cost=("cost", "mean"), effect=("improvement", "mean")
    )
    shown_groups = (
        grouped[grouped["n"] >= 5].reset_index().rename(columns={"procedure_type": "strategy"})
    )
    expected = cea.incremental_analysis(shown_groups[["strategy", "cost", "effect"]])
    rows = {r["strategy"]: r for r in result.incremental.records()}
    for strategy in expected.strategies:
        row = rows[strategy.strategy]
        assert row["status"] == strategy.status
        assert same(row["icer"], strategy.icer, 1e-9)
        assert row["cost"] == pytest.approx(strategy.cost)
    for name, n in grouped["n"].items():
        if n < 5:
            assert rows[name]["n"] is None and rows[name]["status"] is None


def test_funnel_limits_follow_the_share_of_each_arm(cohort_app: Flask) -> None:  # noqa: F811
    """Each group is compared with its own patients' arms (issue 17): the arms differ by
    design, and against one pooled share the arm difference showed as outlying units."""
    result = analysis("bph")
    funnel = result.funnel
    table = expected_responders("bph", ["m12"]).dropna(subset=["responder"])
    table = table.assign(responder=table["responder"].astype(bool))
    assert funnel.p0 == pytest.approx(float(table["responder"].mean()))
    by_arm = table.groupby("arm")["responder"].mean()
    assert funnel.p0_by_arm == pytest.approx({arm: float(by_arm[arm]) for arm in by_arm.index})
    shares = funnel.p0_by_arm
    assert shares["operating_room"] != pytest.approx(shares["outpatient_clinic"])
    for name in ("unit", "professional"):
        rows = funnel.groups[name].records()
        assert rows
        for row in rows:
            if row["n"] is None or row["expected"] is None:
                continue
            expected = row["expected"]
            if row["arm"] != "all":  # a group of one arm: that arm's share
                assert expected == pytest.approx(shares[row["arm"]])
            else:  # both arms: between the two
                assert min(shares.values()) < expected < max(shares.values())
            spread = np.sqrt(expected * (1 - expected) / row["n"])
            assert row["low_95"] == pytest.approx(max(0.0, expected - 1.959964 * spread), abs=1e-6)
            assert row["high_998"] == pytest.approx(
                min(1.0, expected + 3.090232 * spread), abs=1e-6
            )
    professionals = funnel.groups["professional"].table
    assert professionals["group"].str.match(r"S\d\d").all()  # surgeons, from the procedures
    assert (professionals["arm"] == "all").any()  # a surgeon with patients of both arms


# -- older adults ------------------------------------------------------------------------------


def _answer_days(code: str) -> pd.DataFrame:
    """Per enrolment and follow-up, the first submitted answer's local day (ORM read)."""
    rows = db.session.execute(
        select(Response.enrolment_id, TimePoint.code, Response.submitted_at)
        .join(Enrolment, Response.enrolment_id == Enrolment.id)
        .join(TimePoint, Response.time_point_id == TimePoint.id)
        .where(Enrolment.pilot_id == pilot(code).id, Response.status == "submitted")
    ).all()
    frame = pd.DataFrame(rows, columns=["person_id", "time_point", "submitted_at"])
    stamps = pd.to_datetime(frame["submitted_at"], utc=True).dt.tz_convert("Europe/Helsinki")
    frame["answered_on"] = stamps.dt.tz_localize(None).dt.normalize()
    first = frame.groupby(["person_id", "time_point"], as_index=False)["answered_on"].min()
    return first[first["time_point"] != "baseline"]


def test_the_services_analysis_equals_the_domain_on_independently_read_frames(
    cohort_app: Flask,  # noqa: F811
) -> None:
    """The section's reads, joins, exposure windows, due sets and confounders against frames
    read here through the ORM and the walking skeleton's scoring query, analysed by the domain
    with the declared plan: the same adjusted differences."""
    code = "older-adults"
    result = analysis(code)
    spec = pilot_spec(pilot(code))
    people = roster(code)
    ids = people["enrolment_id"].to_numpy()
    persons = db.session.execute(
        select(Person.id, Person.birth_year, Person.sex, Person.lives_alone)
    ).all()
    by_person = {row[0]: row for row in persons}
    units = dict(
        db.session.execute(
            select(Enrolment.id, Enrolment.unit).where(Enrolment.pilot_id == pilot(code).id)
        ).all()
    )
    confounders = pd.DataFrame(
        {
            "age": people["index_date"].dt.year
            - people["person_id"].map(lambda p: by_person[p][1]).astype(float),
            "sex": people["person_id"].map(lambda p: by_person[p][2]).astype(object),
            "lives_alone": people["person_id"]
            .map(lambda p: by_person[p][3])
            .map({True: 1.0, False: 0.0})
            .astype(float),
            "unit": people["enrolment_id"].map(units).astype(object),
            "arm": people["arm"].astype(object),
        }
    )
    scores = result.service_scores
    assert scores == ["ucla3.total", "djg6.total", "lonely1.frequency", "insecurity.safe_daily"]
    frames = [score_long(code, *score.split(".")) for score in scores]
    long = pd.concat(frames, ignore_index=True)
    baselines = {}
    for score in ("ucla3.total", "djg6.total", "insecurity.safe_daily"):
        name = "baseline_" + score.replace(".", "_")
        values = long[(long["score"] == score) & (long["time_point"] == "baseline")]
        confounders[name] = people["enrolment_id"].map(values.set_index("person_id")["value"])
        baselines[score] = name
    answers = _answer_days(code)
    due_sets = {}
    withdrawn = (people["status"] == "withdrawn").to_numpy()
    for tp in ("m6", "m12"):
        answered = set(answers.loc[answers["time_point"] == tp, "person_id"])
        in_due = due(code, people, tp, answered_at(code, tp)).to_numpy()
        due_sets[tp] = in_due & (people["enrolment_id"].isin(answered).to_numpy() | ~withdrawn)
    episodes = pd.DataFrame(
        [
            {
                "person_id": e.enrolment_id,
                "service_type": e.service_type,
                "started_on": pd.Timestamp(e.started_on),
                "ended_on": pd.Timestamp(e.ended_on) if e.ended_on else pd.NaT,
                "contacts": e.contacts,
                "cost": e.cost_eur,
            }
            for e in db.session.scalars(select(ServiceExposure))
            if e.enrolment_id in set(ids)
        ]
    )
    data = attribution.attribution_data(
        person_ids=ids,
        groups=people["arm"].to_numpy(),
        index_dates=people["index_date"],
        confounders=confounders,
        covariates=list(spec.covariates),
        baseline_columns=baselines,
        outcomes=long,
        answers=answers,
        episodes=episodes,
        scores=scores,
        baseline="baseline",
        follow_ups={"m6": 182, "m12": 365},
        due=due_sets,
        categories=[c.id for c in spec.service_types],
        directions={s: result.direction(s) for s in scores},
        care_start_days=0,
        min_exposure_days=30,
        as_of=TODAY,
    )
    expected = attribution.attribute(data, result.attribution_plan())
    found = result.service_attribution("service_type")
    assert not isinstance(found, str)
    key = ["category", "score", "time_point", "method"]
    merged = found.estimates.merge(expected.estimates, on=key, suffixes=("", "_expected"))
    assert len(merged) == len(expected.estimates) == 6 * 4 * 2 * 4
    np.testing.assert_array_equal(merged["n_exposed"], merged["n_exposed_expected"])
    estimated = merged[merged["estimate_expected"].notna()]
    assert len(estimated) > len(merged) / 2
    np.testing.assert_allclose(estimated["estimate"], estimated["estimate_expected"], atol=1e-9)
    np.testing.assert_allclose(estimated["ci_low"], estimated["ci_low_expected"], atol=1e-9)
    # the published section hides what small cells would reveal, and only that
    section = result.services("ucla3.total", "service_type")
    shown = section.estimates.table
    hidden = shown[shown["estimate"].isna() & shown["reason"].isna()]
    assert hidden.empty or (hidden["n_exposed"].isna() | hidden["n_unexposed"].isna()).all()
    # the strongest true difference of the demo data (friend service, −1 point) shows up
    friend = [r for r in section.forest_rows() if r["category"] == "friend_service"]
    assert len(friend) == 1 and friend[0]["estimate"] < 0


def test_mixed_model_is_cached_until_the_data_change(cohort_app: Flask) -> None:  # noqa: F811
    first, error, cached = mixed_model(analysis("older-adults"), "ucla3.total")
    assert error is None and first is not None and not cached
    again, _error, cached = mixed_model(analysis("older-adults"), "ucla3.total")
    assert cached and again is first
    enrolment_id = db.session.scalar(
        select(Enrolment.id).where(Enrolment.pilot_id == pilot("older-adults").id)
    )
    db.session.add(
        ServiceExposure(
            enrolment_id=enrolment_id,
            service_type="day_activity",
            provider_sector="county",
            started_on=TODAY - timedelta(days=30),
            contacts=3,
        )
    )
    db.session.commit()
    _result, _error, cached = mixed_model(analysis("older-adults"), "ucla3.total")
    assert not cached


# -- data quality --------------------------------------------------------------------------------


def test_data_quality_counts_missing_items_late_answers_and_unmatched_imports(
    cohort_app: Flask,  # noqa: F811
) -> None:
    code = "bph"
    before = analysis(code).data_quality
    items = {(r["instrument"], r["time_point"]): r for r in before.items.records()}
    responses = db.session.scalars(
        select(Response)
        .join(Enrolment, Response.enrolment_id == Enrolment.id)
        .join(TimePoint, Response.time_point_id == TimePoint.id)
        .where(
            Enrolment.pilot_id == pilot(code).id,
            Response.instrument_code == "ipss",
            Response.status == "submitted",
            TimePoint.code == "baseline",
        )
        .order_by(Response.id)
    ).all()
    changed = 0
    for response in responses:
        answer = db.session.scalar(
            select(Answer).where(Answer.response_id == response.id, Answer.item_id == "ipss1")
        )
        if answer is not None and changed < 6:
            db.session.delete(answer)
            changed += 1
    late = db.session.scalars(
        select(Invitation)
        .join(Enrolment, Invitation.enrolment_id == Enrolment.id)
        .join(TimePoint, Invitation.time_point_id == TimePoint.id)
        .where(
            Enrolment.pilot_id == pilot(code).id,
            Invitation.status == "completed",
            TimePoint.code == "m3",
        )
        .limit(6)
    ).all()
    for invitation in late:
        invitation.completed_at = datetime.combine(
            invitation.closes_on + timedelta(days=3), time(12), tzinfo=UTC
        )
    db.session.add(
        ImportBatch(
            kind="measurements",
            pilot_code=code,
            filename="x.csv",
            file_sha256="0" * 64,
            actor="test",
            status="rejected",
            rows_total=40,
            error_count=7,
            errors=[
                {"line": line, "column": "pseudonym", "value": "P-X", "code": "unknown_person"}
                for line in range(2, 9)
            ],
        )
    )
    db.session.commit()
    after = analysis(code).data_quality
    row = {(r["instrument"], r["time_point"]): r for r in after.items.records()}[
        ("ipss", "baseline")
    ]
    old = items[("ipss", "baseline")]
    old_missing = old["with_missing_items"] or 0
    assert row["with_missing_items"] == old_missing + 6
    assert row["responses"] == old["responses"]
    assert row["score_not_computable"] >= 6
    m3 = next(r for r in after.late.records() if r["time_point"] == "m3")
    assert m3["after_window"] == 6
    imports = {r["kind"]: r for r in after.imports.records()}
    assert imports["measurements"]["unmatched_rows"] == 7
    assert imports["measurements"]["rows_rejected"] == 40


def test_answers_by_mode_per_arm_count_the_responses_and_hide_small_cells(
    cohort_app: Flask,  # noqa: F811
) -> None:
    code = "older-adults"
    result = analysis(code)
    table = result.data_quality.modes
    raw = table.table
    assert set(raw["mode"]) == {"web", "phone", "paper", "imported", ALL}
    stored = pd.DataFrame(
        db.session.execute(
            select(Arm.code, Response.mode, Response.proxy)
            .join(Enrolment, Response.enrolment_id == Enrolment.id)
            .join(Arm, Enrolment.arm_id == Arm.id)
            .where(Enrolment.pilot_id == pilot(code).id, Response.status == "submitted")
        ).all(),
        columns=["arm", "mode", "proxy"],
    )
    for record in table.records():
        part = stored if record["arm"] == ALL else stored[stored["arm"] == record["arm"]]
        if record["mode"] != ALL:
            part = part[part["mode"] == record["mode"]]
        if record["responses"] is not None and not pd.isna(record["responses"]):
            assert record["responses"] == len(part)
        if record["proxy"] is not None and not pd.isna(record["proxy"]):
            assert record["proxy"] == int(part["proxy"].sum())
    # older adults answer by phone or paper and by proxy more often than on the web alone
    totals = {r["mode"]: r for r in table.records() if r["arm"] == ALL}
    assert 0 < totals["phone"]["responses"] < totals["web"]["responses"]
    assert totals[ALL]["proxy"] > 0
    # no import yet: the imported cells are zeros, shown (a process count)
    assert totals["imported"]["responses"] == 0
    # every small count is hidden
    for record in table.records():
        for column in ("responses", "proxy"):
            value = record[column]
            if value is not None and not pd.isna(value):
                assert value == 0 or value >= result.min_cell, (record, column)
    assert "answer_modes" in TABLES  # the CSV of the page and `report table --name`


# -- shape, size and reads ------------------------------------------------------------------------


def test_every_section_of_an_empty_pilot_is_computed(app: Flask) -> None:
    for code in ("bph", "older-adults"):
        result = CohortAnalysis(db.session, pilot(code), n_boot=50, as_of=TODAY)
        data = result.to_dict(services=[("ucla3.total", "service_type")] if code != "bph" else [])
        json.dumps(data, allow_nan=False)
        assert data["enrolment"]["table"]["rows"][-1]["arm"] == ALL


def test_reads_are_a_fixed_number_of_statements(cohort_app: Flask) -> None:  # noqa: F811
    """No query per person: all sections of a small and a large cohort take as many statements."""
    counts = []
    people = roster("bph")
    middle = people["index_date"].sort_values().iloc[len(people) // 3].date()
    for filters in (Filters(period=(None, middle)), Filters()):
        statements: list[str] = []

        def count(*args: Any, seen: list[str] = statements) -> None:
            seen.append(str(args[2])[:60])

        event.listen(db.engine, "before_cursor_execute", count)
        try:
            result = analysis("bph", filters)
            result.to_dict()
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        counts.append(len(statements))
    assert counts[0] == counts[1]
    assert counts[1] < 40


def test_results_serialise_to_json(cohort_app: Flask) -> None:  # noqa: F811
    data = analysis("older-adults").to_dict(services=[("insecurity.safe_daily", "provider_sector")])
    text = json.dumps(data, allow_nan=False)
    assert '"services"' in text and data["filters"]["arm"] is None
    bph = analysis("bph").to_dict()
    assert bph["cost_effectiveness"]["effects"]["qaly"]["summary"]["status"] in {
        "dominates",
        "dominated",
        "NE",
        "SW",
        "equal",
    }
    assert date.fromisoformat(bph["as_of"]) == TODAY
