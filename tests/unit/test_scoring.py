"""Golden values and rules of the scoring engine (vaikuttavuus.domain.scoring).

Expected values come straight from the published scoring rules (shared/instruments.md), worked
out by hand here, not from the engine.
"""

from __future__ import annotations

import ast
import copy
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from vaikuttavuus.definitions import load_instrument
from vaikuttavuus.domain import scoring
from vaikuttavuus.domain.scoring import (
    ScoringError,
    band_positions,
    long_to_wide,
    score_answers,
    score_frame,
    score_metadata,
    score_names,
    score_range,
)
from vaikuttavuus.domain.specs import BandScore, InstrumentSpec
from vaikuttavuus.paths import questionnaires_dir

IPSS_ITEMS = [f"ipss{i}" for i in range(1, 8)]
EQ_DIMENSIONS = ["mo", "sc", "ua", "pd", "ad"]


def spec(instrument_id: str) -> InstrumentSpec:
    return load_instrument(questionnaires_dir() / f"{instrument_id}-1.yaml")


@pytest.fixture(scope="module")
def ipss() -> InstrumentSpec:
    return spec("ipss")


@pytest.fixture(scope="module")
def djg6() -> InstrumentSpec:
    return spec("djg6")


@pytest.fixture(scope="module")
def eq5d5l() -> InstrumentSpec:
    return spec("eq5d5l")


def ipss_answers(values: list[int | None], qol: int | None = 3) -> dict[str, Any]:
    answers: dict[str, Any] = dict(zip(IPSS_ITEMS, values, strict=True))
    answers["ipss_qol"] = qol
    return answers


def eq_answers(state: str) -> dict[str, Any]:
    return {dim: int(level) for dim, level in zip(EQ_DIMENSIONS, state, strict=True)}


# A small synthetic instrument for rules the shipped ones do not use (prorated sums, yes/no,
# decimal and integer items, a flag straight on an item, string-coded choices).
CUSTOM: dict[str, Any] = {
    "id": "custom",
    "version": "1",
    "kind": "prom",
    "title": {"fi": "Testi", "sv": "Test", "en": "Test"},
    "licence": "test",
    "source": "test",
    "answer_sets": {
        "five": [
            {"code": c, "text": {"fi": f"f{c}", "sv": f"s{c}", "en": f"e{c}"}} for c in range(5)
        ]
    },
    "sections": [
        {
            "id": "main",
            "title": {"fi": "Osa", "sv": "Del", "en": "Part"},
            "items": [
                *[
                    {
                        "id": name,
                        "type": "single_choice",
                        "answer_set": "five",
                        "text": {"fi": name, "sv": name, "en": name},
                    }
                    for name in ("a", "b", "c", "d")
                ],
                {"id": "smoker", "type": "yes_no", "text": {"fi": "x", "sv": "x", "en": "x"}},
                {
                    "id": "weight",
                    "type": "decimal",
                    "min": 30,
                    "max": 250,
                    "text": {"fi": "x", "sv": "x", "en": "x"},
                },
                {
                    "id": "visits",
                    "type": "integer",
                    "min": 0,
                    "max": 50,
                    "text": {"fi": "x", "sv": "x", "en": "x"},
                },
                {
                    "id": "colour",
                    "type": "single_choice",
                    "text": {"fi": "x", "sv": "x", "en": "x"},
                    "options": [
                        {"code": "red", "text": {"fi": "p", "sv": "r", "en": "r"}},
                        {"code": "blue", "text": {"fi": "s", "sv": "b", "en": "b"}},
                    ],
                },
                {"id": "note", "type": "text", "text": {"fi": "x", "sv": "x", "en": "x"}},
            ],
        }
    ],
    "scores": [
        {
            "id": "prorated",
            "method": "sum",
            "items": ["a", "b", "c", "d"],
            "missing": {"rule": "prorate", "max_missing": 1},
        },
        {
            "id": "available",
            "method": "sum",
            "items": ["a", "b", "c", "d"],
            "missing": {"rule": "available", "max_missing": 2},
        },
        {"id": "mean_all", "method": "mean", "items": ["a", "b", "c", "d"]},
        {
            "id": "reversed",
            "method": "sum",
            "items": ["a", "b"],
            "recode": {"a": {0: 4, 1: 3, 2: 2, 3: 1, 4: 0}},
        },
        {"id": "heavy", "method": "flag", "of": "weight", "operator": ">", "value": 100},
        {"id": "smokes", "method": "flag", "of": "smoker", "operator": "=", "value": 1},
        {"id": "visit_count", "method": "item", "item": "visits"},
        {
            "id": "visit_band",
            "method": "band",
            "of": "visit_count",
            "bands": [{"label": "few", "min": 0, "max": 2}, {"label": "many", "min": 3, "max": 50}],
        },
    ],
}


@pytest.fixture(scope="module")
def custom() -> InstrumentSpec:
    return InstrumentSpec.model_validate(CUSTOM)


# --------------------------------------------------------------------------------------------
# IPSS
# --------------------------------------------------------------------------------------------


def test_ipss_total_subscales_qol_and_band(ipss: InstrumentSpec) -> None:
    result = score_answers(ipss, ipss_answers([1, 2, 3, 4, 5, 0, 1], qol=3))
    # total 1+2+3+4+5+0+1; voiding ipss1+3+5+6 = 1+3+5+0; storage ipss2+4+7 = 2+4+1
    assert result == {
        "total": 16.0,
        "voiding": 9.0,
        "storage": 7.0,
        "qol": 3.0,
        "band": "moderate",
    }


@pytest.mark.parametrize(
    ("total", "band"),
    [(0, "mild"), (7, "mild"), (8, "moderate"), (19, "moderate"), (20, "severe"), (35, "severe")],
)
def test_ipss_band_boundaries(ipss: InstrumentSpec, total: int, band: str) -> None:
    values = [min(5, max(0, total - 5 * i)) for i in range(7)]
    assert sum(values) == total
    result = score_answers(ipss, ipss_answers(values))
    assert result["total"] == total
    assert result["band"] == band


def test_ipss_one_item_missing_leaves_total_and_band_null(ipss: InstrumentSpec) -> None:
    # ipss2 (a storage item) missing: no total, no band, no storage; voiding still computed
    result = score_answers(ipss, ipss_answers([1, None, 3, 4, 5, 0, 1]))
    assert result["total"] is None
    assert result["band"] is None
    assert result["storage"] is None
    assert result["voiding"] == 9.0
    assert result["qol"] == 3.0


def test_ipss_qol_is_not_part_of_the_total(ipss: InstrumentSpec) -> None:
    with_qol = score_answers(ipss, ipss_answers([2] * 7, qol=6))
    without_qol = score_answers(ipss, ipss_answers([2] * 7, qol=None))
    assert with_qol["total"] == without_qol["total"] == 14.0
    assert without_qol["qol"] is None


def test_ipss_out_of_range_code_raises_naming_item_and_value(ipss: InstrumentSpec) -> None:
    frame = pd.DataFrame([ipss_answers([1, 2, 3, 4, 5, 0, 1]), ipss_answers([6, 0, 0, 0, 0, 0, 0])])
    with pytest.raises(ScoringError, match=r"ipss1.*\b6\b.*not a valid answer") as caught:
        score_frame(ipss, frame)
    assert caught.value.item == "ipss1"
    assert caught.value.value == 6
    assert caught.value.row == 1
    assert "one of 0, 1, 2, 3, 4, 5" in caught.value.reason


def test_non_numeric_text_answer_raises(ipss: InstrumentSpec) -> None:
    with pytest.raises(ScoringError, match="'often' is not a number"):
        score_answers(ipss, {**ipss_answers([1] * 7), "ipss3": "often"})


def test_fractional_code_is_invalid(ipss: InstrumentSpec) -> None:
    with pytest.raises(ScoringError, match="ipss4"):
        score_answers(ipss, {**ipss_answers([1] * 7), "ipss4": 2.5})


def test_numeric_text_and_blank_cells_are_read(ipss: InstrumentSpec) -> None:
    answers = {**ipss_answers([1] * 7), "ipss1": " 3 ", "ipss_qol": ""}
    result = score_answers(ipss, answers)
    assert result["total"] == 9.0
    assert result["qol"] is None


# --------------------------------------------------------------------------------------------
# Loneliness instruments
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "total", "lonely"),
    [
        ((1, 1, 1), 3.0, False),
        ((2, 2, 1), 5.0, False),
        ((2, 2, 2), 6.0, True),
        ((3, 3, 3), 9.0, True),
        ((3, 3, None), None, None),
    ],
)
def test_ucla3_total_and_lonely_threshold(
    answers: tuple[int | None, ...], total: float | None, lonely: bool | None
) -> None:
    result = score_answers(
        spec("ucla3"), dict(zip(["ucla1", "ucla2", "ucla3"], answers, strict=True))
    )
    assert result == {"total": total, "lonely": lonely}


def djg(values: tuple[int | None, ...]) -> dict[str, Any]:
    return {f"djg{i}": value for i, value in enumerate(values, start=1)}


@pytest.mark.parametrize(
    ("values", "emotional", "social", "total", "band"),
    [
        # 1 = yes, 2 = more or less, 3 = no
        ((1, 1, 1, 1, 1, 1), 3.0, 0.0, 3.0, "moderate"),  # emotional yes → 1; social yes → 0
        ((3, 3, 3, 3, 3, 3), 0.0, 3.0, 3.0, "moderate"),  # emotional no → 0; social no → 1
        ((2, 2, 2, 2, 2, 2), 3.0, 3.0, 6.0, "severe"),  # "more or less" counts on both
        ((3, 3, 3, 1, 1, 1), 0.0, 0.0, 0.0, "not_lonely"),
        ((3, 3, 2, 1, 1, 1), 1.0, 0.0, 1.0, "not_lonely"),
        ((2, 3, 3, 1, 1, 2), 1.0, 1.0, 2.0, "moderate"),
        ((1, 2, 1, 3, 2, 1), 3.0, 2.0, 5.0, "severe"),
    ],
)
def test_djg6_recodes_subscales_and_band(
    djg6: InstrumentSpec,
    values: tuple[int, ...],
    emotional: float,
    social: float,
    total: float,
    band: str,
) -> None:
    assert score_answers(djg6, djg(values)) == {
        "emotional": emotional,
        "social": social,
        "total": total,
        "band": band,
    }


def test_djg6_one_missing_total_from_five_and_subscale_null(djg6: InstrumentSpec) -> None:
    result = score_answers(djg6, djg((2, None, 2, 2, 2, 2)))
    assert result["emotional"] is None  # a subscale needs all its items
    assert result["social"] == 3.0
    assert result["total"] == 5.0  # the five answered items, not prorated
    assert result["band"] == "severe"


def test_djg6_two_missing_total_null(djg6: InstrumentSpec) -> None:
    result = score_answers(djg6, djg((2, None, 2, None, 2, 2)))
    assert result == {"emotional": None, "social": None, "total": None, "band": None}


@pytest.mark.parametrize(
    ("code", "lonely"), [(1, False), (2, False), (3, False), (4, True), (5, True)]
)
def test_lonely1_flag(code: int, lonely: bool) -> None:
    assert score_answers(spec("lonely1"), {"lonely1": code}) == {
        "frequency": float(code),
        "lonely": lonely,
    }


def test_lonely1_missing() -> None:
    assert score_answers(spec("lonely1"), {}) == {"frequency": None, "lonely": None}


# --------------------------------------------------------------------------------------------
# Insecurity
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "insecure"), [(1, True), (3, True), (4, False), (5, False)])
def test_insecurity_flag(code: int, insecure: bool) -> None:
    result = score_answers(spec("insecurity"), {"safe_daily": code})
    assert result["safe_daily"] == float(code)
    assert result["insecure"] is insecure
    assert result["mean"] is None  # only one of four answered


def test_insecurity_mean_with_three_of_four() -> None:
    result = score_answers(
        spec("insecurity"),
        {"safe_daily": 4, "safe_home": 5, "safe_outdoors": None, "knows_help": 3},
    )
    assert result["mean"] == 4.0
    result = score_answers(
        spec("insecurity"), {"safe_home": 5, "safe_outdoors": 2, "knows_help": 2}
    )
    assert result["mean"] == 3.0
    assert result["safe_daily"] is None
    assert result["insecure"] is None


def test_insecurity_mean_with_two_of_four_is_null() -> None:
    result = score_answers(spec("insecurity"), {"safe_daily": 4, "safe_home": 5})
    assert result["mean"] is None


def test_insecurity_mean_of_all_four() -> None:
    result = score_answers(
        spec("insecurity"), {"safe_daily": 1, "safe_home": 2, "safe_outdoors": 4, "knows_help": 4}
    )
    assert result["mean"] == 2.75


# --------------------------------------------------------------------------------------------
# PREMs
# --------------------------------------------------------------------------------------------


def test_prem_bph_scores() -> None:
    prem = spec("prem_bph")
    answers = {
        "information": 5,
        "involvement": 4,
        "respect": 5,
        "pain": None,
        "waiting": 2,
        "overall": 2,
        "recommend": 9,
        "comments": "Kiitos!",
    }
    assert score_answers(prem, answers) == {
        "experience_mean": 4.0,  # (5+4+5+2)/4, one statement skipped
        "overall": 2.0,
        "overall_positive": True,
        "recommend": 9.0,
        "promoter": True,
        "detractor": False,
    }


def test_prem_bph_dont_know_is_missing_and_two_skipped_statements_give_no_mean() -> None:
    result = score_answers(
        spec("prem_bph"), {"information": 5, "involvement": 4, "respect": 5, "overall": 9}
    )
    assert result["experience_mean"] is None
    assert result["overall"] is None
    assert result["overall_positive"] is None


@pytest.mark.parametrize(
    ("recommend", "promoter", "detractor"),
    [
        (0, False, True),
        (6, False, True),
        (7, False, False),
        (8, False, False),
        (9, True, False),
        (10, True, False),
    ],
)
def test_nps_categories(recommend: int, promoter: bool, detractor: bool) -> None:
    for instrument in ("prem_bph", "prem_services"):
        result = score_answers(spec(instrument), {"recommend": recommend})
        assert (result["promoter"], result["detractor"]) == (promoter, detractor)


def test_prem_recommend_out_of_range() -> None:
    with pytest.raises(ScoringError, match=r"recommend.*11"):
        score_answers(spec("prem_services"), {"recommend": 11})


def test_prem_services_mean() -> None:
    result = score_answers(spec("prem_services"), {"felt_heard": 4, "help_mattered": 5})
    assert result["experience_mean"] == 4.5
    assert result["recommend"] is None
    assert result["promoter"] is None


# --------------------------------------------------------------------------------------------
# EQ-5D-5L
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "england", "netherlands"),
    [
        ("11111", 1.000, 1.000),  # full health: no constant
        ("21111", 0.942, 0.918),  # EN 1 − 0.058; NL 1 − 0.047 − 0.035
        ("55555", -0.285, -0.446),
        # EN 1 − (0.050 + 0.063 + 0.276 + 0.289); NL 1 − 0.047 − (0.038 + 0.087 + 0.360 + 0.421)
        ("12345", 0.322, 0.047),
    ],
)
def test_eq5d5l_index(
    eq5d5l: InstrumentSpec, state: str, england: float, netherlands: float
) -> None:
    assert score_answers(eq5d5l, eq_answers(state))["index"] == pytest.approx(england, abs=1e-9)
    result = score_answers(eq5d5l, eq_answers(state), value_set="netherlands_2016")
    assert result["index"] == pytest.approx(netherlands, abs=1e-9)


def test_eq5d5l_default_value_set_is_england(eq5d5l: InstrumentSpec) -> None:
    default = score_answers(eq5d5l, eq_answers("34212"))
    england = score_answers(eq5d5l, eq_answers("34212"), value_set="england_2018")
    assert default == england
    assert default["index"] == pytest.approx(1 - (0.076 + 0.164 + 0.050 + 0 + 0.078), abs=1e-9)


def test_eq5d5l_missing_dimension_and_vas(eq5d5l: InstrumentSpec) -> None:
    answers = {**eq_answers("11111"), "ad": None, "vas": 70}
    assert score_answers(eq5d5l, answers) == {"index": None, "vas": 70.0}


def test_eq5d5l_invalid_level_and_vas(eq5d5l: InstrumentSpec) -> None:
    with pytest.raises(ScoringError, match="'pd'"):
        score_answers(eq5d5l, {**eq_answers("11111"), "pd": 6})
    with pytest.raises(ScoringError, match=r"vas.*101.*whole number from 0 to 100"):
        score_answers(eq5d5l, {**eq_answers("11111"), "vas": 101})
    with pytest.raises(ScoringError, match="vas"):
        score_answers(eq5d5l, {**eq_answers("11111"), "vas": 50.5})


def test_unknown_value_set(eq5d5l: InstrumentSpec) -> None:
    with pytest.raises(ScoringError, match=r"unknown value set 'finland'.*england_2018"):
        score_answers(eq5d5l, eq_answers("11111"), value_set="finland")


def test_value_set_name_ignored_for_instruments_without_value_sets(ipss: InstrumentSpec) -> None:
    result = score_answers(ipss, ipss_answers([0] * 7), value_set="england_2018")
    assert result["total"] == 0.0


# --------------------------------------------------------------------------------------------
# Rules on a synthetic instrument
# --------------------------------------------------------------------------------------------


def test_prorated_sum_scales_up_to_all_items(custom: InstrumentSpec) -> None:
    result = score_answers(custom, {"a": 1, "b": 2, "c": 3, "d": None})
    assert result["prorated"] == pytest.approx(6 * 4 / 3)
    assert result["available"] == 6.0
    assert result["mean_all"] is None
    result = score_answers(custom, {"a": 1, "b": 2})
    assert result["prorated"] is None  # two missing, one allowed
    assert result["available"] == 3.0
    assert score_answers(custom, {"a": 4})["available"] is None


def test_partial_recode_keeps_other_codes(custom: InstrumentSpec) -> None:
    assert score_answers(custom, {"a": 0, "b": 1})["reversed"] == 5.0  # 4 + 1


def test_flags_on_items_yes_no_and_decimal(custom: InstrumentSpec) -> None:
    result = score_answers(custom, {"weight": 100.5, "smoker": "yes"})
    assert result["heavy"] is True
    assert result["smokes"] is True
    result = score_answers(custom, {"weight": "100,0", "smoker": False})
    assert result["heavy"] is False
    assert result["smokes"] is False
    assert score_answers(custom, {})["heavy"] is None
    with pytest.raises(ScoringError, match="smoker"):
        score_answers(custom, {"smoker": 2})
    with pytest.raises(ScoringError, match=r"weight.*from 30 to 250"):
        score_answers(custom, {"weight": 20})


def test_bands_are_half_open_and_end_at_the_last_max(custom: InstrumentSpec) -> None:
    assert score_answers(custom, {"visits": 1})["visit_band"] == "few"
    assert score_answers(custom, {"visits": 2})["visit_band"] == "few"
    assert score_answers(custom, {"visits": 3})["visit_band"] == "many"
    assert score_answers(custom, {"visits": 50})["visit_band"] == "many"
    band = custom.score("visit_band")
    assert isinstance(band, BandScore)
    # a value between two integer limits (a prorated or imputed score) gets the lower band
    values = np.array([2.0, 2.5, 2.999, 3.0, 50.0, 50.5, -0.1, np.nan])
    labels = [band.ordered[p].label if p < 2 else None for p in band_positions(band, values)]
    assert labels == ["few", "few", "few", "many", "many", None, None, None]
    assert band.band_of(2.5) is band.ordered[0] and band.band_of(51) is None


def test_prorated_ipss_between_band_limits_gets_a_band(ipss: InstrumentSpec) -> None:
    """IPSS mild 0–7 / moderate 8–19: a total of 7.5 (not a whole number) is still banded."""
    band = ipss.score("band")
    assert isinstance(band, BandScore)
    assert [band.band_of(v).label for v in (7.0, 7.5, 8.0, 19.99, 35.0)] == [  # type: ignore[union-attr]
        "mild", "mild", "moderate", "moderate", "severe"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("bands", "problem"),
    [
        ([(0, 2), (5, 50)], "leave a gap"),
        ([(0, 2.5), (2.7, 50)], "leave a gap"),
        ([(0, 2), (2, 50)], "overlap"),
        ([(1, 2), (3, 50)], "cover 1–50 but 'visit_count' ranges over 0–50"),
    ],
)
def test_bands_with_gaps_or_short_of_the_range_are_refused(
    bands: list[tuple[float, float]], problem: str
) -> None:
    definition = copy.deepcopy(CUSTOM)
    for score in definition["scores"]:
        if score["id"] == "visit_count":
            score["range"] = [0, 50]
        if score["id"] == "visit_band":
            score["bands"] = [
                {"label": f"b{n}", "min": low, "max": high} for n, (low, high) in enumerate(bands)
            ]
    with pytest.raises(ValidationError, match=re.escape(problem)):
        InstrumentSpec.model_validate(definition)


def test_score_answers_returns_plain_python(custom: InstrumentSpec) -> None:
    result = score_answers(custom, {"a": 1, "b": 2, "c": 3, "d": 4, "weight": 80, "visits": 1})
    for value in result.values():
        assert value is None or type(value) in {float, str, bool}
    assert type(result["visit_band"]) is str
    assert type(result["heavy"]) is bool


# --------------------------------------------------------------------------------------------
# The frame interface
# --------------------------------------------------------------------------------------------


def test_score_frame_shape_dtypes_and_index(ipss: InstrumentSpec) -> None:
    frame = pd.DataFrame(
        [
            {**ipss_answers([1, 2, 3, 4, 5, 0, 1]), "respondent": "x"},
            {**ipss_answers([0, 0, 0, 0, 0, 0, None]), "respondent": "y"},
        ],
        index=pd.Index(["r1", "r2"], name="response"),
    )
    result = score_frame(ipss, frame)
    assert list(result.columns) == ["total", "voiding", "storage", "qol", "band"]
    assert result.index.equals(frame.index)
    for name in ("total", "voiding", "storage", "qol"):
        assert result[name].dtype == np.float64
    assert result["band"].dtype == pd.StringDtype()
    assert result.loc["r1", "band"] == "moderate"
    assert result.loc["r2", "band"] is pd.NA
    assert math.isnan(result.loc["r2", "total"])
    assert result.loc["r2", "voiding"] == 0.0


def test_flag_dtype_is_nullable_boolean() -> None:
    frame = pd.DataFrame({"ucla1": [3, 1, np.nan], "ucla2": [3, 1, 1], "ucla3": [3, 1, 1]})
    result = score_frame(spec("ucla3"), frame)
    assert result["lonely"].dtype == pd.BooleanDtype()
    assert result["lonely"].tolist() == [True, False, pd.NA]


def test_missing_item_columns_are_all_missing(ipss: InstrumentSpec) -> None:
    frame = pd.DataFrame({"ipss_qol": [1, 2]})
    result = score_frame(ipss, frame)
    assert result["total"].isna().all()
    assert result["qol"].tolist() == [1.0, 2.0]


def test_empty_frame(ipss: InstrumentSpec) -> None:
    result = score_frame(ipss, pd.DataFrame(columns=IPSS_ITEMS, dtype=float))
    assert len(result) == 0
    assert list(result.columns) == list(score_names(ipss))


def test_nullable_integer_input(ipss: InstrumentSpec) -> None:
    frame = pd.DataFrame({item: pd.array([1, None], dtype="Int64") for item in IPSS_ITEMS})
    result = score_frame(ipss, frame)
    assert result["total"].iloc[0] == 7.0
    assert math.isnan(result["total"].iloc[1])


def test_input_frame_is_not_modified(djg6: InstrumentSpec) -> None:
    frame = pd.DataFrame({f"djg{i}": [1.0, 2.0, np.nan] for i in range(1, 7)})
    before = frame.copy()
    result = score_frame(djg6, frame)
    result.loc[:, ["emotional", "social", "total"]] = 0.0
    pd.testing.assert_frame_equal(frame, before)


def test_large_frame_matches_single_rows(ipss: InstrumentSpec) -> None:
    rng = np.random.default_rng(7)
    n = 20_000
    data = {item: rng.integers(0, 6, n).astype(float) for item in IPSS_ITEMS}
    data["ipss_qol"] = rng.integers(0, 7, n).astype(float)
    frame = pd.DataFrame(data)
    frame = frame.mask(rng.random(frame.shape) < 0.05)
    result = score_frame(ipss, frame)
    for position in rng.choice(n, 40, replace=False):
        single = score_answers(ipss, frame.iloc[position].to_dict())
        row = result.iloc[position]
        for name, value in single.items():
            if value is None:
                assert pd.isna(row[name])
            else:
                assert row[name] == value


# --------------------------------------------------------------------------------------------
# long_to_wide
# --------------------------------------------------------------------------------------------


def test_long_to_wide(ipss: InstrumentSpec) -> None:
    long = pd.DataFrame(
        {
            "response_id": [10, 10, 10, 11, 11, 12],
            "item_id": ["ipss1", "ipss2", "comment", "ipss1", "ipss_qol", "unknown"],
            "value": ["3", 2, "free text", "often", "4.0", "1"],
        }
    )
    wide = long_to_wide(long, ipss)
    assert list(wide.columns) == [*IPSS_ITEMS, "ipss_qol"]
    assert list(wide.index) == [10, 11, 12]
    assert wide.index.name == "response_id"
    assert (wide.dtypes == np.float64).all()
    assert wide.loc[10, "ipss1"] == 3.0
    assert wide.loc[10, "ipss2"] == 2.0
    assert math.isnan(wide.loc[11, "ipss1"])  # "often" is not a number
    assert wide.loc[11, "ipss_qol"] == 4.0
    assert wide.loc[12].isna().all()
    scored = score_frame(ipss, wide)
    assert scored["qol"].tolist()[1] == 4.0


def test_long_to_wide_numeric_values_and_yes_no(custom: InstrumentSpec) -> None:
    numeric = pd.DataFrame(
        {"response_id": ["a", "a", "b"], "item_id": ["a", "weight", "a"], "value": [1, 72.5, 3]}
    )
    wide = long_to_wide(numeric, custom)
    assert wide.loc["a", "weight"] == 72.5
    assert wide.loc["b", "a"] == 3.0
    assert "colour" not in wide.columns  # text codes are not scorable
    assert "note" not in wide.columns
    words = pd.DataFrame(
        {
            "response_id": [1, 2, 3, 3],
            "item_id": ["smoker", "smoker", "smoker", "a"],
            "value": ["true", "No", "1", "yes"],
        }
    )
    wide = long_to_wide(words, custom)
    assert wide["smoker"].tolist() == [1.0, 0.0, 1.0]
    assert math.isnan(wide.loc[3, "a"])  # words only count for yes/no items


def test_long_to_wide_rejects_duplicates_and_missing_columns(ipss: InstrumentSpec) -> None:
    long = pd.DataFrame({"response_id": [1, 1], "item_id": ["ipss1", "ipss1"], "value": [1, 2]})
    with pytest.raises(ScoringError, match="more than one answer to item 'ipss1'"):
        long_to_wide(long, ipss)
    with pytest.raises(ScoringError, match="value"):
        long_to_wide(pd.DataFrame({"response_id": [1], "item_id": ["ipss1"]}), ipss)


def test_long_to_wide_empty(ipss: InstrumentSpec) -> None:
    long = pd.DataFrame({"response_id": [1], "item_id": ["comment"], "value": ["x"]})
    wide = long_to_wide(long, ipss)
    assert list(wide.index) == [1]
    assert wide.isna().all().all()


# --------------------------------------------------------------------------------------------
# Metadata
# --------------------------------------------------------------------------------------------


def test_score_metadata(ipss: InstrumentSpec, eq5d5l: InstrumentSpec) -> None:
    info = {i.id: i for i in score_metadata(ipss)}
    assert list(info) == ["total", "voiding", "storage", "qol", "band"]
    assert info["total"].range == (0.0, 35.0)
    assert info["total"].minimal_important_change == 3
    assert info["total"].direction == "lower_is_better"
    assert info["total"].label_in("en") == "Total symptom score"
    assert info["band"].kind == "band"
    assert info["band"].bands == ("mild", "moderate", "severe")
    assert info["band"].range is None
    eq = {i.id: i for i in score_metadata(eq5d5l)}
    assert eq["index"].range == pytest.approx((-0.285, 1.0))
    assert eq["index"].value_sets == ("england_2018", "netherlands_2016")
    nl = {i.id: i for i in score_metadata(eq5d5l, value_set="netherlands_2016")}
    assert nl["index"].range == pytest.approx((-0.446, 1.0))


def test_derived_range_of_partial_sums(custom: InstrumentSpec) -> None:
    info = {i.id: i for i in score_metadata(custom)}
    assert info["prorated"].range == (0.0, 16.0)
    assert info["available"].range == (0.0, 16.0)
    assert info["visit_count"].range == (0.0, 50.0)
    assert info["heavy"].kind == "flag"


@pytest.mark.parametrize(
    "instrument",
    ["ipss", "ucla3", "djg6", "lonely1", "insecurity", "prem_bph", "prem_services", "eq5d5l"],
)
def test_declared_ranges_match_the_rules(instrument: str) -> None:
    definition = spec(instrument)
    for score in definition.scores:
        declared = getattr(score, "range", None)
        if declared is not None:
            assert scoring.derived_range(definition, score) == pytest.approx(declared), score.id
        if score.method in {"sum", "mean", "item", "value_set"}:
            assert score_range(definition, score) is not None


# --------------------------------------------------------------------------------------------
# Purity
# --------------------------------------------------------------------------------------------


def test_scoring_module_imports_only_pure_libraries() -> None:
    tree = ast.parse(Path(scoring.__file__).read_text(encoding="utf-8"))
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(
                node.module if node.module.startswith("vaikuttavuus") else node.module.split(".")[0]
            )
    allowed = {"__future__", "collections", "dataclasses", "typing", "math", "numpy", "pandas"}
    assert modules - allowed <= {"vaikuttavuus.domain.specs"}
    assert not {"open", "Path"} & {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
