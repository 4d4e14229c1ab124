"""On the loaded demo data set the reports have something to say: the BPH responder shares are
below 100 % (the difference between the procedures: ``tests/unit/test_synthetic_realism.py``,
on a large data set), a patient who got worse gets the "worse" alert, and
the older adults' cost per one-point reduction is shown (the exposures record their costs)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
from flask import Flask
from sqlalchemy import select

from tests.support.cohort_data import cohort_app, cohort_template  # noqa: F401
from vaikuttavuus.extensions import db
from vaikuttavuus.models import Enrolment, Pilot
from vaikuttavuus.services.analytics import ALL, CohortAnalysis
from vaikuttavuus.services.patient_outcomes import patient_overview


def analysis(code: str) -> CohortAnalysis:
    pilot = db.session.scalar(select(Pilot).where(Pilot.code == code))
    assert pilot is not None
    return CohortAnalysis(db.session, pilot, n_boot=200)


def test_bph_responder_shares_are_informative(cohort_app: Flask) -> None:  # noqa: F811
    result = analysis("bph")
    summary = result.outcomes.summary.table
    primary = summary[(summary["score"] == result.primary_score) & summary["n"].notna()]
    shares = primary.set_index(["arm", "time_point"])["share_responders"].dropna()
    assert len(shares) >= 4
    assert (shares < 0.97).all() and (shares > 0.4).all(), shares.to_dict()
    # the funnel plot's p0 and the responder effect of the cost-effectiveness are not 1
    assert result.funnel.p0 is not None and 0.5 < result.funnel.p0 < 0.95
    arms = result.cost_effectiveness.effects["responder"].arms.table
    assert (arms["mean_effect"].dropna() < 0.97).all()
    assert ALL in set(summary["arm"])


def test_a_patient_who_got_worse_gets_the_alert(cohort_app: Flask) -> None:  # noqa: F811
    result = analysis("bph")
    long = result.score_long(result.primary_score)
    wide = long.pivot_table(index="person_id", columns="time_point", values="value")
    mic = result.spec.primary_outcome.min_improvement
    latest = wide["m12"].fillna(wide["m3"])
    worse = wide.index[(latest - wide["baseline"]) >= mic]
    assert len(worse) >= 1, "someone in the demo data gets worse"
    enrolment = db.session.get(Enrolment, int(worse[0]))
    assert enrolment is not None
    overview = patient_overview(db.session, enrolment, "fi", date.today())
    kinds = {(a.kind, a.score_label) for a in overview.alerts}
    assert any(kind == "worse" for kind, _label in kinds), kinds


def test_the_incremental_cost_per_point_is_shown_only_for_a_clear_improvement(
    cohort_app: Flask,  # noqa: F811
) -> None:
    result = analysis("older-adults")
    table = result.services("ucla3.total", "service_type").cost.table
    assert len(table)
    with_cost = pd.to_numeric(table["n_with_cost"], errors="coerce")
    assert (with_cost >= 5).any(), table
    ratio = pd.to_numeric(table["cost_per_point"], errors="coerce")
    shown = table["status"] == "shown"
    assert np.isfinite(ratio[shown]).all() and ratio[~shown].isna().all(), table
    low = pd.to_numeric(table["improvement_ci_low"], errors="coerce")
    assert (low[shown] > 0).all()  # never for an interval that includes 0
