"""One read of a pilot's whole cohort serves its default views and its management summaries
(issue 18; :mod:`vaikuttavuus.services.analytics.recorded`): every frame taken from it, as
things stand now or as released for a window, is exactly (rows, order, dtypes) what a read of
its own returns. The imputation and the bootstrap draw by row, so the figures are the same."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest
from flask import Flask
from sqlalchemy import select

from tests.support.cohort_data import TODAY, cohort_app, cohort_template  # noqa: F401
from vaikuttavuus import queries
from vaikuttavuus.domain.periods import release_date, released_periods
from vaikuttavuus.extensions import db
from vaikuttavuus.models import ClinicalMeasurement, Enrolment, Pilot, Procedure
from vaikuttavuus.services.analytics import CohortAnalysis, Filters, cohort_rows
from vaikuttavuus.services.management_report import window_read
from vaikuttavuus.services.measurements import correct_measurement

N_BOOT = 50
FRAMES = ("roster", "procedures", "cost_items", "exposures", "measurements")


def pilot(code: str) -> Pilot:
    found = queries.pilot_by_code(db.session, code)
    assert found is not None
    return found


def corrections_and_repeats(the_pilot: Pilot) -> None:
    """A few corrected clinical measures and a second procedure of an enrolment: rows that
    the read of what stands now leaves out and a release keeps until its date."""
    covariates = CohortAnalysis(db.session, the_pilot).measure_covariates
    measures = db.session.scalars(
        select(ClinicalMeasurement)
        .join(Enrolment, ClinicalMeasurement.enrolment_id == Enrolment.id)
        .where(
            Enrolment.pilot_id == the_pilot.id,
            ClinicalMeasurement.measure_code.in_(covariates),
            ClinicalMeasurement.value_num.is_not(None),
            ClinicalMeasurement.superseded_by_id.is_(None),
        )
        .order_by(ClinicalMeasurement.id)
        .limit(3)
    ).all()
    for measurement in measures:
        assert measurement.value_num is not None
        correct_measurement(
            db.session,
            measurement,
            value=str(measurement.value_num + 1),
            measured_on=measurement.measured_on.isoformat(),
            reason="Kirjausvirhe",
            user=None,
            today=TODAY,
        )
    first = db.session.scalars(
        select(Procedure)
        .join(Enrolment, Procedure.enrolment_id == Enrolment.id)
        .where(Enrolment.pilot_id == the_pilot.id)
        .order_by(Procedure.id)
    ).first()
    if first is not None:
        db.session.add(
            Procedure(
                enrolment_id=first.enrolment_id,
                procedure_type=first.procedure_type,
                setting=first.setting,
                performed_on=first.performed_on + timedelta(days=30),
            )
        )
    db.session.commit()


def assert_same_frames(shared: CohortAnalysis, own: CohortAnalysis, names: tuple[str, ...]) -> None:
    for name in names:
        pd.testing.assert_frame_equal(getattr(shared, name), getattr(own, name), obj=name)
    assert shared.scores.keys() == own.scores.keys()
    for instrument, frame in own.scores.items():
        pd.testing.assert_frame_equal(shared.scores[instrument], frame, obj=instrument)


@pytest.fixture(params=["bph", "older-adults"])
def corrected(request: pytest.FixtureRequest, cohort_app: Flask) -> Pilot:  # noqa: F811
    """Each pilot, after :func:`corrections_and_repeats`."""
    the_pilot = pilot(request.param)
    corrections_and_repeats(the_pilot)
    return the_pilot


def test_the_views_of_the_whole_cohort_take_what_stands_now_from_the_recorded_rows(
    corrected: Pilot,
) -> None:
    the_pilot = corrected
    rows = cohort_rows(db.session, the_pilot)
    shared = CohortAnalysis(db.session, the_pilot, Filters(), n_boot=N_BOOT, recorded=rows)
    own = CohortAnalysis(db.session, the_pilot, Filters(), n_boot=N_BOOT)
    assert_same_frames(shared, own, FRAMES)
    measurements = rows.frame("measurements")
    if shared.measure_covariates:  # the superseded values are there, and left out now
        assert measurements["superseded_at"].notna().any()
        assert len(shared.measurements) < len(measurements)
    pd.testing.assert_frame_equal(shared.invitations, own.invitations)


def test_a_release_of_any_window_is_cut_from_the_read_of_the_whole_cohort(
    corrected: Pilot,
) -> None:
    the_pilot = corrected
    release = release_date(TODAY)
    first = queries.first_index_date(db.session, [the_pilot.id])
    periods = released_periods(first, release)
    rows = cohort_rows(db.session, the_pilot)
    views = CohortAnalysis(db.session, the_pilot, Filters(), n_boot=N_BOOT, recorded=rows)
    assert views.scores  # the whole cohort read first, as the views read it
    compared = 0
    for period in [p for p in periods if p.kind in ("Y", "Q")][:4]:
        shared = window_read(db.session, the_pilot, period.bounds, release, recorded=rows)
        own = window_read(db.session, the_pilot, period.bounds, release)
        if own.roster.empty:
            continue
        assert_same_frames(shared, own, (*FRAMES, "invitation_rows"))
        pd.testing.assert_frame_equal(shared.invitations, own.invitations)
        compared += 1
    assert compared >= 2


def test_recorded_rows_serve_only_their_own_cohort(cohort_app: Flask) -> None:  # noqa: F811
    the_pilot = pilot("bph")
    rows = cohort_rows(db.session, the_pilot)
    with pytest.raises(ValueError, match="another cohort"):
        CohortAnalysis(db.session, the_pilot, Filters(arm="outpatient"), recorded=rows)
    with pytest.raises(ValueError, match="another cohort"):
        CohortAnalysis(db.session, pilot("older-adults"), Filters(), recorded=rows)
    quarter = (TODAY - timedelta(days=90), TODAY)
    inner = rows.within(quarter)
    with pytest.raises(ValueError, match="inside the period"):
        inner.within((quarter[0] - timedelta(days=1), quarter[1]))
