"""``report estimates`` recovers known truths from data brought in through the command line, as
a county (or an independent check with hold-out data) would: people, procedures, measurements,
direct costs and questionnaire answers imported from CSV files, with confounded arm
assignment, follow-ups missing at random and persons without any cost data. The adjusted
estimates must lie within three standard errors of the truth; the unadjusted difference, which
the confounding biases, must not cover it; the persons without cost data must count as missing,
not as 0 €."""

from __future__ import annotations

import csv
import json
import math
from datetime import date, timedelta
from pathlib import Path
from random import Random
from typing import Any

import numpy as np
import pytest
from flask import Flask

from vaikuttavuus import queries
from vaikuttavuus.cli import main
from vaikuttavuus.domain.identity import synthetic_identity_code
from vaikuttavuus.extensions import db
from vaikuttavuus.services.imports import missing_costs

RELIEF = {"operating_room": 0.65, "outpatient_clinic": 0.45}
COST = {"operating_room": 5_500.0, "outpatient_clinic": 2_900.0}
N = 360
WTP = 500


def _follow_up(baseline: np.ndarray, arm: str, noise: np.ndarray) -> np.ndarray:
    return np.clip(np.round(baseline * (1 - RELIEF[arm]) + noise), 0, 35)


def _baselines(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.clip(np.round(rng.normal(19, 5, n)), 8, 35)


def _truth() -> tuple[float, float]:
    """The average effect of the outpatient clinic on the improvement (both potential
    outcomes of 400 000 persons) and on the cost (exactly the difference of the arm costs)."""
    rng = np.random.default_rng(99)
    baseline = _baselines(rng, 400_000)
    noise = rng.normal(0, 2.5, 400_000)
    gain = {arm: baseline - _follow_up(baseline, arm, noise) for arm in RELIEF}
    delta = float((gain["outpatient_clinic"] - gain["operating_room"]).mean())
    return delta, COST["outpatient_clinic"] - COST["operating_room"]


def _items(total: int) -> list[int]:
    """Seven IPSS items (0–5) that add up to ``total``."""
    items = [total // 7] * 7
    for position in range(total % 7):
        items[position] += 1
    return items


def _write(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _files(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(2026)
    codes = Random(7)
    age = np.clip(rng.normal(68, 8, N), 50, 88)
    baseline = _baselines(rng, N)
    volume = np.clip(np.exp(rng.normal(np.log(45), 0.35, N)), 15, 200)
    logit = 0.3 - 0.3 * (baseline - 19) - 0.05 * (age - 68)
    other = rng.random(N) < 1 / (1 + np.exp(-logit))
    noise = rng.normal(0, 2.5, N)
    answered_baseline = rng.random(N) < 0.95
    answered_m12 = rng.random(N) < 1 / (1 + np.exp(-(1.2 - 0.05 * (age - 68) - 0.6 * other)))
    cost_noise = rng.normal(0, 600, N)
    has_costs = rng.random(N) > 0.08
    people, procedures, measures, costs, answers = [], [], [], [], []
    used: set[str] = set()
    start = date(2023, 1, 2)
    for i in range(N):
        arm = "outpatient_clinic" if other[i] else "operating_room"
        index = start + timedelta(days=int(rng.integers(0, 540)))
        birth = date(index.year - int(age[i]), 1, 1) + timedelta(days=int(rng.integers(0, 360)))
        code = synthetic_identity_code(birth, "male", codes)
        while code in used:
            code = synthetic_identity_code(birth, "male", codes)
        used.add(code)
        people.append(
            [code, f"Testi{i}", "Potilas", birth.year, "male", "no", "fi", "bph", arm,
             index.isoformat(), (index - timedelta(days=30)).isoformat(),
             "Poliklinikka Lahti" if other[i] else "PHKS urologia"]
        )  # fmt: skip
        surgeon = f"S{int(rng.integers(5, 9)) if other[i] else int(rng.integers(1, 5))}"
        kind = "rezum" if other[i] else "turp"
        procedures.append([code, kind, arm, index.isoformat(), surgeon])
        measures.append(
            [code, "prostate_volume", f"{volume[i]:.1f}", "mL",
             (index - timedelta(days=20)).isoformat()]
        )  # fmt: skip
        if has_costs[i]:
            amount = COST[arm] + 15 * (volume[i] - 45) + cost_noise[i]
            costs.append([code, f"{amount:.2f}", 2025, index.isoformat(), "URO_POLI"])
        follow = _follow_up(baseline[i : i + 1], arm, noise[i : i + 1])[0]
        for time_point, total, answered, day in (
            ("baseline", baseline[i], answered_baseline[i], index - timedelta(days=14)),
            ("m12", follow, answered_m12[i], index + timedelta(days=365)),
        ):
            if answered:
                answers.append(
                    [code, time_point, "ipss", day.isoformat(), "paper", "no",
                     *_items(int(total)), 3]
                )  # fmt: skip
    ipss = ["ipss1", "ipss2", "ipss3", "ipss4", "ipss5", "ipss6", "ipss7", "ipss_qol"]
    columns = [
        "identity_code", "first_name", "last_name", "birth_year", "sex", "lives_alone",
        "preferred_language", "pilot", "arm", "index_date", "enrolled_on", "unit",
    ]  # fmt: skip
    return {
        "people": _write(tmp_path / "people.csv", columns, people),
        "procedures": _write(
            tmp_path / "procedures.csv",
            ["identity_code", "procedure_type", "setting", "performed_on", "surgeon_code"],
            procedures,
        ),
        "measurements": _write(
            tmp_path / "measurements.csv",
            ["identity_code", "measure", "value", "unit", "measured_on"],
            measures,
        ),
        "direct_costs": _write(
            tmp_path / "costs.csv",
            ["identity_code", "amount_eur", "price_year", "service_date", "cost_centre"],
            costs,
        ),
        "responses": _write(
            tmp_path / "answers.csv",
            ["identity_code", "time_point", "instrument", "completed_on", "mode", "proxy", *ipss],
            answers,
        ),
    }


def _within(estimate: dict[str, Any], truth: float, sigmas: float = 3.0) -> bool:
    return abs(estimate["estimate"] - truth) <= sigmas * estimate["se"]


def test_estimates_recover_the_truth_from_imported_files(app: Flask, tmp_path: Path) -> None:
    runner = app.test_cli_runner()
    for kind, path in _files(tmp_path).items():
        result = runner.invoke(main, ["import", kind, str(path), "--pilot", "bph"])
        assert result.exit_code == 0, (kind, result.output)
    result = runner.invoke(
        main,
        ["report", "estimates", "--pilot", "bph", "--bootstrap", "300", "--imputations", "10",
         "--seed", "5"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    delta_effect, delta_cost = _truth()
    estimates = data["estimates"]
    effect = estimates["delta_effect"]
    cost = estimates["delta_cost"]
    assert _within(effect["adjusted"], delta_effect), (effect, delta_effect)
    assert _within(cost["adjusted"], delta_cost), (cost, delta_cost)
    inmb = estimates["inmb"][str(WTP)]["adjusted"]
    assert _within(inmb, WTP * delta_effect - delta_cost), (inmb, delta_effect, delta_cost)
    # the confounded comparison: the clinic's patients had milder symptoms to improve from
    low, high = effect["unadjusted"]["ci95"]
    assert not low <= delta_effect <= high
    assert effect["adjusted"]["n"] == N and effect["unadjusted"]["n"] < N
    # persons without any cost data are missing, not 0 €
    missing_costs = data["missing"]["cost"]
    assert all(0 < share < 0.2 for share in missing_costs.values()), missing_costs
    assert cost["unadjusted"]["n"] < N
    assert any("not 0 €" in caveat for caveat in data["caveats"])
    assert 0 < data["missing"]["ipss.total@m12"]["outpatient_clinic"] < 0.6
    probability = estimates["prob_cost_effective"][str(WTP)]["adjusted"]
    assert 0 < probability < 1 and not math.isnan(probability)


@pytest.mark.parametrize("value", [0.0, 1.0])
def test_bounded_probabilities_in_the_contract(value: float) -> None:
    from vaikuttavuus.domain.adjusted_cea import bounded_probability

    bounded = bounded_probability(value, 999)
    assert 0 < bounded < 1


def test_importing_people_without_costs_says_which_figures_change(app: Flask) -> None:
    """The example people file enrols five people whose care cycle has ended and who have no
    cost rows: the import says their costs are missing (not 0 €) and what that changes."""
    example = Path(__file__).resolve().parents[2] / "docs" / "examples" / "imports" / "people.csv"
    runner = app.test_cli_runner()
    result = runner.invoke(main, ["import", "people", str(example), "--lang", "en"])
    assert result.exit_code == 0, result.output
    assert "the file: Note: 5 persons whose care cycle has ended have no complete cost data" in (
        result.output
    )
    assert "before this import 0" in result.output and "not 0 €" in result.output
    pilot = queries.pilot_by_code(db.session, "bph")
    assert pilot is not None
    assert missing_costs(db.session, pilot, None) == (5, 0)
