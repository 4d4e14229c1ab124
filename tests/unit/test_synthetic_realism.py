"""The synthetic data set is realistic where the reports need it to be:

* BPH: not everyone improves — about 70–85 % responders after TURP/HoLEP, fewer after the
  outpatient procedures, a few percent worse than before by at least the clinically important
  change (so the responder figures, the funnel plots and the "worse" alert are informative);
* older adults: every service exposure records its cost (contacts × the unit cost of its
  service type and provider sector), so the cost per one-point reduction can be shown.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.unit.test_synthetic import make, scores
from vaikuttavuus import synthetic
from vaikuttavuus.services.definitions import load_all_definitions


@pytest.fixture(scope="module")
def definitions() -> dict[str, object]:
    instruments, pilots, measures = load_all_definitions()
    return {
        "instruments": {spec.id: spec for spec in instruments},
        "pilots": {spec.id: spec for spec in pilots},
        "measures": measures,
    }


@pytest.fixture(scope="module")
def large(definitions: dict[str, object]) -> synthetic.SyntheticData:
    return make(definitions, 20_000, seed=11)


def changes(data: synthetic.SyntheticData, definitions: dict[str, object]) -> pd.DataFrame:
    """IPSS total at baseline and each follow-up, with the procedure and the setting."""
    ipss = scores(data, definitions["instruments"]["ipss"])  # type: ignore[index]
    wide = ipss.pivot_table(index="enrolment_key", columns="time_point", values="total")
    procedures = data.procedures.set_index("enrolment_key")[["procedure_type", "setting"]]
    return wide.join(procedures, how="inner")


def responders(wide: pd.DataFrame, follow_up: str, definitions: dict[str, object]) -> pd.Series:
    rule = definitions["pilots"]["bph"].primary_outcome  # type: ignore[index]
    both = wide.dropna(subset=["baseline", follow_up])
    improvement = both["baseline"] - both[follow_up]
    relative = improvement >= (rule.min_relative or np.inf) * both["baseline"]
    return (improvement >= rule.min_improvement) | relative


@pytest.mark.parametrize("follow_up", ["m3", "m12"])
def test_not_every_bph_patient_improves(
    large: synthetic.SyntheticData, definitions: dict[str, object], follow_up: str
) -> None:
    wide = changes(large, definitions)
    responded = responders(wide, follow_up, definitions)
    both = wide.loc[responded.index]
    by_type = responded.groupby(both["procedure_type"]).mean()
    by_setting = responded.groupby(both["setting"]).mean()
    for procedure in ("turp", "holep"):
        assert 0.70 <= by_type[procedure] <= 0.88, (procedure, by_type.to_dict())
    assert 0.70 <= by_setting["operating_room"] <= 0.88
    assert 0.50 <= by_setting["outpatient_clinic"] <= by_setting["operating_room"] - 0.08
    assert by_type["urolift"] < by_type["rezum"] < by_type["turp"]
    # a few percent are worse than before by at least the clinically important change
    mic = definitions["pilots"]["bph"].primary_outcome.min_improvement  # type: ignore[index]
    worse = (both[follow_up] - both["baseline"]) >= mic
    assert 0.01 <= worse.mean() <= 0.08, worse.mean()
    assert (worse.groupby(both["setting"]).mean() > 0).all()


def test_the_non_responders_are_the_documented_share(
    large: synthetic.SyntheticData, definitions: dict[str, object]
) -> None:
    """The shares of patients who do not benefit show through the noise: a procedure with a
    larger share has fewer responders, and the documented truths are in the module."""
    assert set(synthetic.IPSS_NO_BENEFIT) == set(synthetic.IPSS_RELATIVE_IMPROVEMENT)
    wide = changes(large, definitions)
    responded = responders(wide, "m12", definitions)
    share = responded.groupby(wide.loc[responded.index, "procedure_type"]).mean()
    order = sorted(synthetic.IPSS_NO_BENEFIT, key=synthetic.IPSS_NO_BENEFIT.__getitem__)
    assert share[order[0]] > share[order[-1]] + 0.15
    for procedure, no_benefit in synthetic.IPSS_NO_BENEFIT.items():
        assert share[procedure] <= 1.0 - no_benefit + 0.08, procedure


def test_every_service_exposure_records_its_cost(large: synthetic.SyntheticData) -> None:
    exposures = large.service_exposures
    assert "cost_eur" in exposures.columns and len(exposures) > 1_000
    pairs = zip(exposures["service_type"], exposures["provider_sector"], strict=True)
    unit = np.array([synthetic.SERVICE_UNIT_COSTS[pair] for pair in pairs])
    expected = np.round(exposures["contacts"].to_numpy(dtype=float) * unit, 2)
    np.testing.assert_allclose(exposures["cost_eur"].to_numpy(dtype=float), expected)
    assert exposures["cost_eur"].notna().all()
    mean = exposures.groupby("service_type")["cost_eur"].mean()
    assert mean["home_care"] > mean["day_activity"] > mean["friend_service"] > 0
    # the county's own services cost more per contact than the same service elsewhere
    assert (
        synthetic.SERVICE_UNIT_COSTS[("day_activity", "county")]
        > synthetic.SERVICE_UNIT_COSTS[("day_activity", "municipality")]
    )


def test_exposure_costs_are_seeded(definitions: dict[str, object]) -> None:
    first = make(definitions, 400, seed=21).service_exposures["cost_eur"]
    again = make(definitions, 400, seed=21).service_exposures["cost_eur"]
    pd.testing.assert_series_equal(first, again)
