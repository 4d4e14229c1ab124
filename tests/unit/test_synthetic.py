"""The synthetic data generator: determinism, sizes, validity and the documented truths."""

from __future__ import annotations

import hashlib
import os
import random
import re
import subprocess
import sys
from collections import Counter
from datetime import date

import numpy as np
import pandas as pd
import pytest

from vaikuttavuus import paths, synthetic
from vaikuttavuus.definitions.costing import load_costing
from vaikuttavuus.domain import identity
from vaikuttavuus.domain.answers import canonical, enabled_item_ids, missing_required
from vaikuttavuus.domain.costing import episode_costs
from vaikuttavuus.domain.scoring import score_frame
from vaikuttavuus.domain.specs import InstrumentSpec
from vaikuttavuus.services.definitions import load_all_definitions

TODAY = date(2026, 11, 23)
KEY = b"test-pseudonym-key"
IDENTITY_CODE = re.compile(r"\d{6}[-+A-FU-Y]\d{3}[0-9A-Y]")


@pytest.fixture(scope="module")
def definitions() -> dict[str, object]:
    instruments, pilots, measures = load_all_definitions()
    return {
        "instruments": {spec.id: spec for spec in instruments},
        "pilots": {spec.id: spec for spec in pilots},
        "measures": measures,
    }


def make(definitions: dict[str, object], people: int, seed: int = 7,
         today: date = TODAY) -> synthetic.SyntheticData:
    return synthetic.generate(
        pilots=definitions["pilots"],  # type: ignore[arg-type]
        instruments=definitions["instruments"],  # type: ignore[arg-type]
        measures=definitions["measures"],  # type: ignore[arg-type]
        people=people,
        seed=seed,
        today=today,
        pseudonym_key=KEY,
    )


@pytest.fixture(scope="module")
def demo(definitions: dict[str, object]) -> synthetic.SyntheticData:
    """The default demo size."""
    return make(definitions, 900)


@pytest.fixture(scope="module")
def large(definitions: dict[str, object]) -> synthetic.SyntheticData:
    """Large enough for the documented effects to stand out of the noise."""
    return make(definitions, 20_000, seed=11)


def digest(data: synthetic.SyntheticData) -> str:
    sha = hashlib.sha256()
    for name, frame in data.frames().items():
        sha.update(name.encode())
        sha.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
        sha.update(repr(list(frame.columns)).encode())
    return sha.hexdigest()


def scores(data: synthetic.SyntheticData, spec: InstrumentSpec) -> pd.DataFrame:
    """Scores of the submitted responses of one instrument, with enrolment and time point."""
    responses = data.responses[
        (data.responses["instrument"] == spec.id) & (data.responses["status"] == "submitted")
    ].set_index("response_key")
    answers = data.answers[data.answers["response_key"].isin(responses.index)]
    wide = answers.pivot(index="response_key", columns="item_id", values="value_num")
    wide = wide.reindex(index=responses.index, columns=list(spec.item_ids)).astype(float)
    return pd.concat(
        [responses[["enrolment_key", "time_point"]], score_frame(spec, wide)], axis=1
    )


# -- determinism --------------------------------------------------------------------------------


def test_same_seed_and_day_give_identical_frames(definitions: dict[str, object]) -> None:
    first = make(definitions, 300, seed=5)
    second = make(definitions, 300, seed=5)
    for name, frame in first.frames().items():
        pd.testing.assert_frame_equal(frame, second.frames()[name], obj=name)
    assert digest(first) == digest(second)
    assert digest(make(definitions, 300, seed=6)) != digest(first)
    assert digest(make(definitions, 300, seed=5, today=date(2026, 11, 24))) != digest(first)


def test_identical_in_another_process_with_other_string_hashing(
    definitions: dict[str, object],
) -> None:
    script = (
        "import sys; from datetime import date; sys.path.insert(0, '.');"
        "from tests.unit.test_synthetic import make, digest;"
        "from vaikuttavuus.services.definitions import load_all_definitions;"
        "i, p, m = load_all_definitions();"
        "d = {'instruments': {s.id: s for s in i}, 'pilots': {s.id: s for s in p}, 'measures': m};"
        "print(digest(make(d, 300, seed=5)))"
    )
    environment = dict(os.environ, PYTHONHASHSEED="12345")
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True, text=True, check=True, env=environment,
        cwd=paths.PROJECT_ROOT,
    )
    assert result.stdout.strip() == digest(make(definitions, 300, seed=5))


# -- sizes and structure ------------------------------------------------------------------------


def test_default_size_and_split(demo: synthetic.SyntheticData) -> None:
    enrolments = demo.enrolments
    assert len(demo.people) == 900
    assert (enrolments["pilot"] == "bph").sum() == 360
    assert (enrolments["pilot"] == "older-adults").sum() == 540
    assert enrolments["person_key"].is_unique
    assert len(demo.invitations) == 900 * 3
    bph = enrolments[enrolments["pilot"] == "bph"]
    older = enrolments[enrolments["pilot"] == "older-adults"]
    assert set(bph["arm"]) == {"operating_room", "outpatient_clinic"}
    assert set(older["arm"]) == {"outreach", "client_guidance"}
    assert (demo.people.loc[bph["person_key"], "sex"] == "male").all()
    assert demo.people["source"].eq("demo").all()


def test_shares_and_distributions(large: synthetic.SyntheticData) -> None:
    enrolments = large.enrolments.set_index("enrolment_key")
    people = large.people.set_index("person_key")
    bph = enrolments[enrolments["pilot"] == "bph"]
    older = enrolments[enrolments["pilot"] == "older-adults"]
    assert (bph["arm"] == "operating_room").mean() == pytest.approx(0.65, abs=0.02)
    assert (older["arm"] == "outreach").mean() == pytest.approx(0.45, abs=0.02)
    old_people = people.loc[older["person_key"]]
    age = TODAY.year - old_people["birth_year"]
    assert age.min() >= 65
    assert age.mean() == pytest.approx(80, abs=1.5)
    assert (old_people["sex"] == "female").mean() == pytest.approx(0.62, abs=0.02)
    assert old_people["lives_alone"].astype(float).mean() == pytest.approx(0.55, abs=0.03)
    assert people.loc[bph["person_key"], "lives_alone"].isna().all()
    languages = people["preferred_language"].value_counts(normalize=True)
    assert languages["fi"] == pytest.approx(0.93, abs=0.01)
    assert languages["sv"] == pytest.approx(0.05, abs=0.01)
    procedures = large.procedures["procedure_type"].value_counts(normalize=True)
    assert procedures["turp"] == pytest.approx(0.65 * 0.60, abs=0.02)
    assert procedures["rezum"] == pytest.approx(0.35 * 0.60, abs=0.02)
    # the design split and the scale: counts grow with the people
    assert len(large.people) == 20_000
    assert len(large.answers) > 20 * len(large.people)


def test_keys_link_up(demo: synthetic.SyntheticData) -> None:
    enrolment_keys = set(demo.enrolments["enrolment_key"])
    for frame in (demo.procedures, demo.clinical_measurements, demo.service_exposures,
                  demo.cost_items, demo.invitations, demo.responses):
        assert set(frame["enrolment_key"]) <= enrolment_keys
    assert demo.invitations["invitation_key"].is_unique
    assert demo.responses["response_key"].is_unique
    assert demo.responses["idempotency_key"].is_unique
    invitations = demo.invitations.set_index("invitation_key")
    linked = invitations.loc[demo.responses["invitation_key"]]
    assert (linked["enrolment_key"].to_numpy() == demo.responses["enrolment_key"].to_numpy()).all()
    assert (linked["time_point"].to_numpy() == demo.responses["time_point"].to_numpy()).all()
    assert set(demo.answers["response_key"]) <= set(demo.responses["response_key"])
    assert not demo.answers.duplicated(["response_key", "item_id"]).any()
    pilots = demo.enrolments.set_index("enrolment_key")["pilot"]
    procedures_pilot = pilots.loc[demo.procedures["enrolment_key"]]
    assert (procedures_pilot == "bph").all()
    assert (pilots.loc[demo.service_exposures["enrolment_key"]] == "older-adults").all()


# -- validity -----------------------------------------------------------------------------------


def test_every_answer_is_canonical_for_its_item(
    demo: synthetic.SyntheticData, definitions: dict[str, object]
) -> None:
    specs: dict[str, InstrumentSpec] = definitions["instruments"]  # type: ignore[assignment]
    instrument = demo.responses.set_index("response_key")["instrument"]
    answers = demo.answers.assign(instrument=instrument.loc[demo.answers["response_key"]].values)
    distinct = answers.drop_duplicates(["instrument", "item_id", "value", "value_num"])
    assert len(distinct) > 100
    for row in distinct.itertuples():
        spec = specs[row.instrument]
        stored = canonical(spec, spec.item(row.item_id), row.value)
        assert stored is not None
        assert stored.value == row.value
        if stored.value_num is None:
            assert np.isnan(row.value_num)
        else:
            assert stored.value_num == row.value_num
    # every instrument and every choice item is used with several codes
    for code in ("ipss", "eq5d5l", "prem_bph", "ucla3", "djg6", "lonely1", "insecurity",
                 "prem_services"):
        assert code in set(answers["instrument"])
    assert answers.loc[answers["item_id"] == "ipss1", "value"].nunique() == 6
    assert answers.loc[answers["item_id"] == "djg4", "value"].nunique() == 3


def test_conditional_and_required_items(
    demo: synthetic.SyntheticData, definitions: dict[str, object]
) -> None:
    specs: dict[str, InstrumentSpec] = definitions["instruments"]  # type: ignore[assignment]
    responses = demo.responses.set_index("response_key")
    answers = demo.answers.groupby("response_key")[["item_id", "value"]].apply(
        lambda rows: dict(zip(rows["item_id"], rows["value"], strict=True))
    )
    missing_required_submitted = 0
    submitted = 0
    hidden = 0
    for key, response in responses.iterrows():
        given = answers.get(key, {})
        spec = specs[response["instrument"]]
        hidden += len(set(given) - set(enabled_item_ids(spec, given)))
        if response["status"] == "submitted":
            submitted += 1
            missing_required_submitted += bool(missing_required(spec, given))
            if missing_required(spec, given):
                assert response["mode"] in ("phone", "paper")
    assert hidden == 0
    assert 0 < missing_required_submitted <= 0.01 * submitted
    assert (demo.answers["item_id"] == "improve").any()
    # optional items are sometimes left empty, required ones (almost) never
    counts = demo.answers.merge(
        responses[responses["status"] == "submitted"], left_on="response_key",
        right_index=True,
    ).groupby(["instrument", "item_id"]).size()
    assert counts[("insecurity", "safe_home")] < 0.95 * counts[("insecurity", "safe_daily")]


def test_in_progress_responses_only_in_open_windows(demo: synthetic.SyntheticData) -> None:
    in_progress = demo.responses[demo.responses["status"] == "in_progress"]
    assert len(in_progress) > 0
    statuses = demo.invitations.set_index("invitation_key").loc[
        in_progress["invitation_key"], "status"
    ]
    assert (statuses == "open").all()
    assert in_progress["submitted_at"].isna().all()
    assert (in_progress["started_at"] < pd.Timestamp(TODAY, tz="UTC")).all()


def test_measures_inside_the_catalogue(
    large: synthetic.SyntheticData, definitions: dict[str, object]
) -> None:
    catalogue = definitions["measures"]
    measurements = large.clinical_measurements
    assert set(measurements["measure_code"]) == {
        m.id for m in catalogue.measures if "bph" in m.pilots  # type: ignore[attr-defined]
    }
    for code, rows in measurements.groupby("measure_code"):
        spec = catalogue.measure(code)  # type: ignore[attr-defined]
        assert (rows["unit"].fillna("") == (spec.unit or "")).all()
        if spec.type == "grade":
            assert set(rows["value_text"]) <= set(spec.grades)
            assert rows["value_num"].isna().all()
        elif spec.type == "yes_no":
            assert set(rows["value_num"]) <= {0.0, 1.0}
        else:
            assert rows["value_num"].between(spec.min, spec.max).all()
            if spec.type == "integer":
                assert (rows["value_num"] == rows["value_num"].round()).all()
    enrolled = large.enrolments.set_index("enrolment_key")["enrolled_on"]
    assert (measurements["measured_on"].to_numpy()
            >= enrolled.loc[measurements["enrolment_key"]].to_numpy()).all()
    assert (measurements["measured_on"] < pd.Timestamp(TODAY)).all()
    assert (measurements["recorded_at"] < pd.Timestamp(TODAY, tz="UTC")).all()


def test_invitation_statuses_follow_dates_and_responses(
    large: synthetic.SyntheticData, definitions: dict[str, object]
) -> None:
    today = pd.Timestamp(TODAY)
    invitations = large.invitations.set_index("invitation_key")
    responses = large.responses
    submitted = responses[responses["status"] == "submitted"]
    per_invitation = submitted.groupby("invitation_key").size()
    instruments_per_time_point = {
        (pilot.id, tp.id): len(tp.instruments)
        for pilot in definitions["pilots"].values()  # type: ignore[attr-defined]
        for tp in pilot.time_points
    }
    expected_count = pd.Series(
        [instruments_per_time_point[key] for key in zip(
            invitations["pilot"], invitations["time_point"], strict=True
        )],
        index=invitations.index,
    )
    status = invitations["status"]
    completed = status == "completed"
    assert set(per_invitation.index) == set(invitations.index[completed])
    assert (per_invitation == expected_count.loc[per_invitation.index]).all()
    assert set(status) == {"scheduled", "open", "completed", "expired", "cancelled", "opted_out"}
    assert (invitations.loc[status == "scheduled", "opens_on"] > today).all()
    opened = invitations[status == "open"]
    assert ((opened["opens_on"] <= today) & (opened["closes_on"] >= today)).all()
    assert (invitations.loc[status == "expired", "closes_on"] < today).all()
    assert invitations.loc[status == "scheduled", "first_sent_at"].isna().all()
    assert invitations.loc[~completed, "completed_at"].isna().all()
    # answered inside the window, before today, when the invitation says so
    timing = submitted.join(invitations[["opens_on", "closes_on", "completed_at"]],
                            on="invitation_key")
    local_day = timing["submitted_at"].dt.tz_convert("Europe/Helsinki").dt.tz_localize(None)
    local_day = local_day.dt.normalize()
    assert (local_day >= timing["opens_on"]).all()
    assert (local_day <= timing["closes_on"]).all()
    assert (timing["submitted_at"] < pd.Timestamp(TODAY, tz="UTC")).all()
    assert (timing["submitted_at"] == timing["completed_at"]).all()
    assert (timing["started_at"] < timing["submitted_at"]).all()
    # withdrawals cancel, opt-outs stop
    enrolments = large.enrolments.set_index("enrolment_key")
    cancelled = invitations[status == "cancelled"]
    withdrawn = enrolments.loc[cancelled["enrolment_key"]]
    assert (withdrawn["status"] == "withdrawn").all()
    assert (cancelled["cancelled_at"].to_numpy() == withdrawn["withdrawn_at"].to_numpy()).all()
    people = large.people.set_index("person_key")
    opted = invitations[status == "opted_out"]
    assert people.loc[enrolments.loc[opted["enrolment_key"], "person_key"],
                      "opted_out_at"].notna().all()
    assert (invitations["reminders_sent"] <= 2).all()


def test_response_rates_fall_over_time(large: synthetic.SyntheticData) -> None:
    closed = large.invitations[large.invitations["closes_on"] < pd.Timestamp(TODAY)]
    rate = closed.groupby(["pilot", "time_point"])["status"].apply(
        lambda s: (s == "completed").mean()
    )
    assert rate[("bph", "baseline")] == pytest.approx(0.90, abs=0.04)
    assert rate[("bph", "baseline")] > rate[("bph", "m3")] > rate[("bph", "m12")]
    assert rate[("older-adults", "baseline")] > rate[("older-adults", "m6")]
    assert rate[("older-adults", "m6")] > rate[("older-adults", "m12")]
    responses = large.responses
    modes = responses.groupby("pilot")["mode"].apply(lambda s: (s != "web").mean())
    assert modes["older-adults"] == pytest.approx(0.11, abs=0.03)
    assert modes["bph"] < 0.05
    assert set(responses["mode"]) == {"web", "phone", "paper"}
    proxy = responses.groupby(["pilot", responses["mode"] == "web"])["proxy"].mean()
    assert proxy[("older-adults", True)] > proxy[("bph", True)]
    assert proxy[("older-adults", False)] > proxy[("older-adults", True)]
    assert 0.02 < responses.loc[responses["pilot"] == "older-adults", "proxy"].mean() < 0.15
    languages = large.responses["language"].value_counts(normalize=True)
    assert languages["sv"] == pytest.approx(0.05, abs=0.015)


# -- the documented truths are visible -------------------------------------------------------


def test_ipss_improves_by_procedure_in_the_documented_order(
    large: synthetic.SyntheticData, definitions: dict[str, object]
) -> None:
    ipss = scores(large, definitions["instruments"]["ipss"])  # type: ignore[index]
    wide = ipss.pivot_table(index="enrolment_key", columns="time_point", values="total")
    wide = wide.join(large.procedures.set_index("enrolment_key")["procedure_type"], how="inner")
    relative = ((wide["baseline"] - wide["m3"]) / wide["baseline"]).groupby(
        wide["procedure_type"]
    ).mean()
    for procedure, (expected, _at12) in synthetic.IPSS_RELATIVE_IMPROVEMENT.items():
        assert relative[procedure] == pytest.approx(expected, abs=0.06), procedure
    assert relative["holep"] > relative["laser_vaporisation"] > relative["rezum"]
    assert relative["turp"] > relative["laser_vaporisation"] > relative["urolift"]
    change12 = (wide["baseline"] - wide["m12"]).groupby(wide["procedure_type"]).mean()
    change3 = (wide["baseline"] - wide["m3"]).groupby(wide["procedure_type"]).mean()
    assert change12["urolift"] < change3["urolift"]  # minimally invasive: slight relapse
    # quality of life follows the symptoms; EQ-5D improves after the procedure
    qol = ipss.groupby("band")["qol"].mean()
    assert qol["mild"] < qol["moderate"] < qol["severe"]
    eq5d = scores(large, definitions["instruments"]["eq5d5l"])  # type: ignore[index]
    utility = eq5d.groupby("time_point")["index"].mean()
    assert utility["m3"] > utility["baseline"] + 0.03


def test_clinical_measures_follow_the_procedures(large: synthetic.SyntheticData) -> None:
    measurements = large.clinical_measurements.join(
        large.procedures.set_index("enrolment_key")["procedure_type"], on="enrolment_key",
        how="inner",
    )
    stay = measurements[measurements["measure_code"] == "length_of_stay"]
    mean_stay = stay.groupby("procedure_type")["value_num"].mean()
    assert mean_stay["turp"] == pytest.approx(1.4, abs=0.1)
    assert mean_stay["rezum"] == 0 and mean_stay["urolift"] == 0
    qmax = measurements[measurements["measure_code"] == "qmax"].sort_values("measured_on")
    gain = qmax.groupby("enrolment_key")["value_num"].agg(["first", "last", "count"])
    gain = gain[gain["count"] >= 2].join(
        large.procedures.set_index("enrolment_key")["procedure_type"]
    )
    mean_gain = (gain["last"] - gain["first"]).groupby(gain["procedure_type"]).mean()
    assert mean_gain["turp"] > 7 and mean_gain["holep"] > 7
    assert 1 < mean_gain["rezum"] < 6
    readmitted = measurements[measurements["measure_code"] == "readmission_30d"]
    assert readmitted["value_num"].mean() == pytest.approx(0.055, abs=0.015)
    grade = measurements[measurements["measure_code"] == "clavien_dindo"]
    assert (grade["value_text"] == "0").mean() > 0.8


def test_episode_costs_have_the_published_orders_of_magnitude(
    large: synthetic.SyntheticData,
) -> None:
    catalogue = load_costing(paths.costing_dir())
    enrolments = large.enrolments.set_index("enrolment_key")
    done = large.procedures.set_index("enrolment_key")
    # whole care cycles only: procedures more than 365 days before today
    whole = done[done["performed_on"] < pd.Timestamp(TODAY) - pd.Timedelta(days=366)]
    cohort = enrolments.loc[whole.index, ["index_date"]].reset_index()
    costs = large.cost_items[large.cost_items["enrolment_key"].isin(whole.index)]
    episodes = episode_costs(costs, cohort, -90, 365, catalogue, 2025, id_col="enrolment_key")
    assert episodes.rows_excluded == 0
    mean = episodes.totals.groupby(whole["procedure_type"]).mean()
    assert 4_000 <= mean["turp"] <= 7_500
    assert 1_700 <= mean["rezum"] <= 3_200
    assert 1_700 <= mean["urolift"] <= 3_200
    assert mean["holep"] > mean["turp"] > mean["laser_vaporisation"] > mean["urolift"]
    assert set(costs["product_code"]) <= set(catalogue.product_codes)
    assert (costs["quantity"] > 0).all()


def test_service_effects_are_recovered_and_home_care_is_confounded(
    large: synthetic.SyntheticData, definitions: dict[str, object]
) -> None:
    specs = definitions["instruments"]
    ucla = scores(large, specs["ucla3"])  # type: ignore[index]
    safety = scores(large, specs["insecurity"])  # type: ignore[index]
    frame = pd.DataFrame(
        {
            "u0": ucla[ucla["time_point"] == "baseline"].set_index("enrolment_key")["total"],
            "u6": ucla[ucla["time_point"] == "m6"].set_index("enrolment_key")["total"],
            "s0": safety[safety["time_point"] == "baseline"].set_index("enrolment_key")[
                "safe_daily"
            ],
            "s6": safety[safety["time_point"] == "m6"].set_index("enrolment_key")["safe_daily"],
        }
    ).dropna()
    enrolments = large.enrolments.set_index("enrolment_key")
    people = large.people.set_index("person_key")
    exposures = large.service_exposures.join(enrolments["index_date"], on="enrolment_key")
    # a service counts at 6 months when it started 30 days before the 6-month time point
    active = exposures[exposures["started_on"]
                       <= exposures["index_date"] + pd.Timedelta(days=182 - 30)]
    services = list(synthetic.TRUE_SERVICE_EFFECTS)
    for service in services:
        frame[service] = frame.index.isin(
            active.loc[active["service_type"] == service, "enrolment_key"]
        ).astype(float)
    person = people.loc[enrolments.loc[frame.index, "person_key"]]
    covariates = np.column_stack(
        [
            np.ones(len(frame)),
            frame["u0"],
            frame["s0"],
            TODAY.year - person["birth_year"].to_numpy(),
            (person["sex"] == "female").to_numpy(float),
            person["lives_alone"].to_numpy(float),
            (enrolments.loc[frame.index, "arm"] == "outreach").to_numpy(float),
            frame[services].to_numpy(),
        ]
    )
    ucla_fit = np.linalg.lstsq(covariates, frame["u6"].to_numpy(), rcond=None)[0][-6:]
    safe_fit = np.linalg.lstsq(covariates, frame["s6"].to_numpy(), rcond=None)[0][-6:]
    for position, service in enumerate(services):
        truth = synthetic.TRUE_SERVICE_EFFECTS[service]
        assert ucla_fit[position] == pytest.approx(truth.ucla3_total, abs=0.2), service
        assert safe_fit[position] == pytest.approx(truth.safe_daily, abs=0.15), service
    friend = frame["friend_service"] == 1
    change = frame["u6"] - frame["u0"]
    assert change[friend].mean() < change[~friend].mean() - 0.5
    home = frame["home_care"] == 1
    assert frame.loc[home, "u0"].mean() > frame.loc[~home, "u0"].mean() + 0.3
    assert frame.loc[home, "u6"].mean() > frame.loc[~home, "u6"].mean()  # naive: "harmful"


def test_service_exposures_and_their_costs(large: synthetic.SyntheticData) -> None:
    exposures = large.service_exposures
    per_person = exposures.groupby("enrolment_key").size()
    assert per_person.max() <= 3
    assert ((exposures["ended_on"] >= exposures["started_on"]) | exposures["ended_on"].isna()).all()
    assert (exposures["started_on"] < pd.Timestamp(TODAY)).all()
    sectors = exposures.groupby("service_type")["provider_sector"].unique()
    assert set(sectors["home_care"]) == {"county"}
    assert set(sectors["friend_service"]) <= {"ngo", "parish"}
    costs = large.cost_items
    for service, product in synthetic.SERVICE_PRODUCTS.items():
        quantity = costs.loc[costs["product_code"] == product, "quantity"].sum()
        assert quantity == exposures.loc[exposures["service_type"] == service, "contacts"].sum()
    older = large.enrolments.loc[large.enrolments["pilot"] == "older-adults", "enrolment_key"]
    outreach_rows = costs[costs["product_code"] == "OUTREACH_VISIT"]
    assert set(outreach_rows["enrolment_key"]) <= set(older)


# -- people and privacy -------------------------------------------------------------------------


def test_no_clear_identity_code_anywhere(demo: synthetic.SyntheticData) -> None:
    checked = 0
    for name, frame in demo.frames().items():
        for column in frame.columns:
            values = frame[column]
            if values.dtype.kind in "biufcmM" or isinstance(values.dtype, pd.BooleanDtype):
                continue
            text = values.dropna().astype(str)
            assert not text.str.contains(IDENTITY_CODE).any(), f"{name}.{column}"
            checked += 1
    assert checked > 20
    hashes = demo.people["identity_hash"]
    assert hashes.is_unique
    assert hashes.str.fullmatch(r"[0-9a-f]{64}").all()
    assert demo.people["pseudonym"].is_unique
    assert demo.people["pseudonym"].map(identity.is_pseudonym).all()


def test_identity_hashes_are_of_unique_synthetic_codes() -> None:
    """Each hash is the keyed hash of a valid test-range code of the person's sex and birth
    date; when more people share a birth date and sex than there are test numbers (50), the
    extra ones move to earlier dates instead of sharing a code."""
    born = date(1947, 5, 17)
    epoch_day = (born - date(1970, 1, 1)).days
    birth_days = np.array([epoch_day] * 120 + [epoch_day + 3] * 2)
    female = np.array([False] * 120 + [True, False])
    hashes = synthetic._identity_hashes(random.Random(1), birth_days, female, KEY)
    assert len(set(hashes)) == len(hashes)
    codes = {}
    for offset in range(-8, 4):
        digits = date.fromordinal(born.toordinal() + offset).strftime("%d%m%y")
        for number in identity.SYNTHETIC_NUMBERS:
            individual = f"{number:03d}"
            code = f"{digits}-{individual}{identity.check_character(digits, individual)}"
            codes[identity.identity_hash(code, KEY)] = code
    decoded = [codes[value] for value in hashes]
    assert all(identity.is_synthetic(code) for code in decoded)
    assert [identity.sex(code) for code in decoded] == ["male"] * 120 + ["female", "male"]
    days = Counter(identity.birth_date(code) for code in decoded[:120])
    assert max(days.values()) <= 50  # 50 odd test numbers per birth date
    assert days[born] > 40
    assert min(days) < born  # the overflow moved to earlier dates
    later = date.fromordinal(born.toordinal() + 3)
    assert [identity.birth_date(code) for code in decoded[120:]] == [later, later]


def test_contact_details(demo: synthetic.SyntheticData) -> None:
    people = demo.people
    email = people["email"].dropna()
    assert len(email) > len(people) / 2
    assert email.str.fullmatch(r"[a-z-]+\.[a-z-]+\.\d{3}@example\.invalid").all()
    phone = people["phone"].dropna()
    assert len(phone) > 0
    assert phone.str.fullmatch(r"\+358 40 \d{3} \d{4}").all()
    letters = people["email"].isna() & people["phone"].isna()
    assert people.loc[letters, "postal_address"].notna().all()
    assert people["postal_address"].dropna().str.contains(r"\n\d{5} ").all()
    channel = demo.invitations.groupby("enrolment_key")["channel"].first()
    person_channel = people.set_index("person_key").loc[channel.index]
    assert person_channel.loc[(channel == "letter").to_numpy(), "postal_address"].notna().all()
    language = demo.responses.join(
        people.set_index("person_key")["preferred_language"], on="enrolment_key"
    )
    assert (language["language"] == language["preferred_language"]).all()


# -- robustness -------------------------------------------------------------------------------


def test_an_unknown_item_is_answered_within_its_definition(
    definitions: dict[str, object],
) -> None:
    instruments = dict(definitions["instruments"])  # type: ignore[call-overload]
    raw = instruments["ucla3"].model_dump(mode="json")
    raw["version"] = "2"
    raw["sections"][0]["items"].append(
        {
            "id": "visits",
            "type": "integer",
            "min": 0,
            "max": 30,
            "text": {"fi": "Käyntejä", "sv": "Besök", "en": "Visits"},
        }
    )
    instruments["ucla3"] = InstrumentSpec.model_validate(raw)
    data = synthetic.generate(
        pilots=definitions["pilots"],  # type: ignore[arg-type]
        instruments=instruments,
        measures=definitions["measures"],  # type: ignore[arg-type]
        people=200,
        seed=1,
        today=TODAY,
        pseudonym_key=KEY,
    )
    visits = data.answers.loc[data.answers["item_id"] == "visits", "value_num"]
    assert len(visits) > 50
    assert visits.between(0, 30).all()
    assert data.instrument_versions["ucla3"] == "2"


def test_refuses_incomplete_arguments(definitions: dict[str, object]) -> None:
    pilots = dict(definitions["pilots"])  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="older-adults"):
        synthetic.generate(
            pilots={"bph": pilots["bph"]},
            instruments=definitions["instruments"],  # type: ignore[arg-type]
            measures=definitions["measures"],  # type: ignore[arg-type]
            people=100, seed=1, today=TODAY, pseudonym_key=KEY,
        )
    with pytest.raises(ValueError, match="empty"):
        make_with_key(definitions, b"")
    instruments = dict(definitions["instruments"])  # type: ignore[call-overload]
    del instruments["djg6"]
    with pytest.raises(ValueError, match="djg6"):
        synthetic.generate(
            pilots=pilots, instruments=instruments,
            measures=definitions["measures"],  # type: ignore[arg-type]
            people=100, seed=1, today=TODAY, pseudonym_key=KEY,
        )


def make_with_key(definitions: dict[str, object], key: bytes) -> synthetic.SyntheticData:
    return synthetic.generate(
        pilots=definitions["pilots"],  # type: ignore[arg-type]
        instruments=definitions["instruments"],  # type: ignore[arg-type]
        measures=definitions["measures"],  # type: ignore[arg-type]
        people=100, seed=1, today=TODAY, pseudonym_key=key,
    )
