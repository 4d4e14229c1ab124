"""Property tests of the scoring engine against the shipped definitions.

A deliberately plain per-response reference implementation below restates the scoring rules
(recode, missing-item rules, value sets, bands, flags) with Python loops; the vectorised engine
must agree with it on any valid answers, and with itself row by row.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vaikuttavuus.definitions import load_instruments
from vaikuttavuus.domain.scoring import (
    ScoringError,
    item_domain,
    scorable_items,
    score_answers,
    score_frame,
    score_range,
)
from vaikuttavuus.domain.specs import (
    AggregateScore,
    BandScore,
    FlagScore,
    InstrumentSpec,
    ItemScore,
    ValueSetScore,
)
from vaikuttavuus.paths import questionnaires_dir

SPECS: dict[str, InstrumentSpec] = {
    spec.id: spec for spec in load_instruments(questionnaires_dir())
}
SPEC_IDS = sorted(SPECS)
PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
COMPARE: dict[str, Callable[[float, float], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


# --------------------------------------------------------------------------------------------
# Reference implementation (one response, plain Python)
# --------------------------------------------------------------------------------------------


def _recoded(value: float | None, recode: dict[Any, float | None]) -> float | None:
    if value is None:
        return None
    for code, target in recode.items():
        if float(code) == value:
            return None if target is None or math.isnan(target) else float(target)
    return value


def reference_scores(
    spec: InstrumentSpec, answers: dict[str, float | None], value_set: str | None = None
) -> dict[str, object]:
    result: dict[str, object] = {}
    numeric: dict[str, float | None] = {}
    for score in spec.scores:
        if isinstance(score, AggregateScore):
            values = [_recoded(answers.get(i), score.recode.get(i, {})) for i in score.items]
            answered = [v for v in values if v is not None]
            allowed = 0 if score.missing.rule == "all" else score.missing.max_missing
            value: float | None
            if not answered or len(values) - len(answered) > allowed:
                value = None
            elif score.method == "mean":
                value = sum(answered) / len(answered)
            elif score.missing.rule == "prorate":
                value = sum(answered) * len(values) / len(answered)
            else:
                value = float(sum(answered))
            numeric[score.id] = result[score.id] = value
        elif isinstance(score, ItemScore):
            numeric[score.id] = result[score.id] = _recoded(answers.get(score.item), score.recode)
        elif isinstance(score, ValueSetScore):
            weights = score.value_sets[value_set or score.default_value_set]
            levels = [answers.get(d) for d in score.dimensions]
            if any(level is None for level in levels):
                value = None
            else:
                value = 1.0
                if any(level > 1 for level in levels if level is not None):
                    value -= weights.constant
                for dimension, level in zip(score.dimensions, levels, strict=True):
                    value -= weights.decrements[dimension].get(int(level or 0), 0.0)
            numeric[score.id] = result[score.id] = value
        elif isinstance(score, BandScore):
            source = numeric[score.of] if score.of in numeric else answers.get(score.of)
            last = score.ordered[-1]
            result[score.id] = next(
                (  # half-open: up to the next band's min, the last band up to its max
                    band.label
                    for band, low, high in score.intervals()
                    if source is not None
                    and low <= source
                    and (source < high or (band is last and source <= high))
                ),
                None,
            )
        elif isinstance(score, FlagScore):
            source = numeric[score.of] if score.of in numeric else answers.get(score.of)
            result[score.id] = (
                None if source is None else COMPARE[score.operator](source, score.value)
            )
    return result


def assert_same(actual: dict[str, object], expected: dict[str, object]) -> None:
    assert list(actual) == list(expected)
    for name, value in expected.items():
        got = actual[name]
        if isinstance(value, float):
            assert isinstance(got, float), name
            assert got == pytest.approx(value, abs=1e-9), name
        else:
            assert got == value, name


# --------------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------------


def valid_value(spec: InstrumentSpec, item_id: str) -> st.SearchStrategy[float]:
    domain = item_domain(spec, spec.item(item_id))
    assert domain is not None
    if domain.codes is not None:
        return st.sampled_from(domain.codes)
    low, high = domain.bounds
    if domain.whole_numbers:
        return st.integers(int(low), int(high)).map(float)
    return st.floats(low, high, allow_nan=False)


def answer_sets(spec: InstrumentSpec, missing: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            item.id: (st.none() | valid_value(spec, item.id))
            if missing
            else valid_value(spec, item.id)
            for item in scorable_items(spec)
        }
    )


def any_spec_with_answers(missing: bool = True) -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    return st.sampled_from(SPEC_IDS).flatmap(
        lambda sid: st.tuples(st.just(sid), answer_sets(SPECS[sid], missing))
    )


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(any_spec_with_answers())
def test_engine_matches_reference(case: tuple[str, dict[str, Any]]) -> None:
    spec_id, answers = case
    spec = SPECS[spec_id]
    assert_same(score_answers(spec, answers), reference_scores(spec, answers))


@PROPERTY_SETTINGS
@given(any_spec_with_answers())
def test_numeric_scores_within_declared_range(case: tuple[str, dict[str, Any]]) -> None:
    spec_id, answers = case
    spec = SPECS[spec_id]
    result = score_answers(spec, answers)
    for score in spec.scores:
        value = result[score.id]
        bounds = score_range(spec, score)
        if bounds is None or value is None:
            continue
        assert isinstance(value, float)
        assert bounds[0] - 1e-9 <= value <= bounds[1] + 1e-9, (score.id, value, bounds)


@PROPERTY_SETTINGS
@given(any_spec_with_answers())
def test_bands_and_flags_consistent_with_their_source(case: tuple[str, dict[str, Any]]) -> None:
    spec_id, answers = case
    spec = SPECS[spec_id]
    result = score_answers(spec, answers)
    for score in spec.scores:
        if isinstance(score, BandScore | FlagScore):
            source = result[score.of] if score.of in result else answers.get(score.of)
            if source is None:
                assert result[score.id] is None
                continue
            assert isinstance(source, float)
            if isinstance(score, BandScore):
                low, high = next(
                    (low, high)
                    for band, low, high in score.intervals()
                    if band.label == result[score.id]
                )
                assert low <= source <= high
            else:
                assert result[score.id] is COMPARE[score.operator](source, score.value)


@PROPERTY_SETTINGS
@given(any_spec_with_answers(missing=False))
def test_complete_answers_always_score(case: tuple[str, dict[str, Any]]) -> None:
    spec_id, answers = case
    result = score_answers(SPECS[spec_id], answers)
    for score in SPECS[spec_id].scores:
        if isinstance(score, ItemScore) and score.recode:
            continue  # e.g. PREM "don't know" recoded to missing
        if isinstance(score, BandScore | FlagScore) and result.get(score.of, 0) is None:
            continue
        assert result[score.id] is not None, score.id


@PROPERTY_SETTINGS
@given(st.lists(answer_sets(SPECS["djg6"]), min_size=1, max_size=25))
def test_vectorised_equals_row_by_row(rows: list[dict[str, Any]]) -> None:
    spec = SPECS["djg6"]
    frame = pd.DataFrame(rows, dtype=float)
    scored = score_frame(spec, frame)
    for position, row in enumerate(rows):
        expected = score_answers(spec, row)
        for name, value in expected.items():
            got = scored[name].iloc[position]
            assert (value is None and pd.isna(got)) or got == value


@PROPERTY_SETTINGS
@given(answer_sets(SPECS["djg6"], missing=False))
def test_djg_total_is_emotional_plus_social(answers: dict[str, Any]) -> None:
    result = score_answers(SPECS["djg6"], answers)
    emotional, social = result["emotional"], result["social"]
    assert isinstance(emotional, float) and isinstance(social, float)
    assert result["total"] == emotional + social


@PROPERTY_SETTINGS
@given(
    answer_sets(SPECS["ipss"], missing=False), st.sampled_from([f"ipss{i}" for i in range(1, 8)])
)
def test_ipss_total_increases_with_any_item(answers: dict[str, Any], item: str) -> None:
    spec = SPECS["ipss"]
    before = score_answers(spec, answers)["total"]
    assert isinstance(before, float)
    if answers[item] < 5:
        after = score_answers(spec, {**answers, item: answers[item] + 1})["total"]
        assert after == before + 1


@PROPERTY_SETTINGS
@given(
    answer_sets(SPECS["eq5d5l"], missing=False),
    st.sampled_from(["england_2018", "netherlands_2016"]),
)
def test_eq5d_index_is_one_only_for_full_health(answers: dict[str, Any], value_set: str) -> None:
    index = score_answers(SPECS["eq5d5l"], answers, value_set=value_set)["index"]
    full_health = all(answers[d] == 1 for d in ("mo", "sc", "ua", "pd", "ad"))
    assert isinstance(index, float)
    assert (index == 1.0) is full_health
    assert index <= 1.0


def read_items(spec: InstrumentSpec) -> list[str]:
    """The items some score of ``spec`` reads (and therefore validates)."""
    items: list[str] = []
    score_ids: set[str] = set()
    for score in spec.scores:
        if isinstance(score, AggregateScore):
            items.extend(score.items)
        elif isinstance(score, ItemScore):
            items.append(score.item)
        elif isinstance(score, ValueSetScore):
            items.extend(score.dimensions)
        elif score.of not in score_ids:
            items.append(score.of)
        score_ids.add(score.id)
    return sorted(set(items))


def test_every_scorable_shipped_item_is_read_by_a_score() -> None:
    for spec in SPECS.values():
        assert read_items(spec) == sorted(item.id for item in scorable_items(spec)), spec.id


@PROPERTY_SETTINGS
@given(
    st.sampled_from(SPEC_IDS).flatmap(
        lambda sid: st.tuples(
            st.just(sid),
            st.sampled_from(read_items(SPECS[sid])),
            st.sampled_from([-1.0, 0.5, 6.0, 11.0, 101.0, 1e6]),
        )
    )
)
def test_invalid_answers_never_score(case: tuple[str, str, float]) -> None:
    spec_id, item_id, value = case
    spec = SPECS[spec_id]
    domain = item_domain(spec, spec.item(item_id))
    assert domain is not None
    if not domain.invalid(np.array([value])).any():
        return  # e.g. 11 is a valid answer on a 0–100 scale
    with pytest.raises(ScoringError) as caught:
        score_answers(spec, {item_id: value})
    assert caught.value.item == item_id
    assert caught.value.value == value


# --------------------------------------------------------------------------------------------
# Random bulk data: vectorised engine against the reference, every shipped instrument
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec_id", SPEC_IDS)
def test_bulk_random_answers_match_reference(spec_id: str) -> None:
    spec = SPECS[spec_id]
    rng = np.random.default_rng(sum(map(ord, spec_id)))
    n = 400
    columns: dict[str, np.ndarray] = {}
    for item in scorable_items(spec):
        domain = item_domain(spec, item)
        assert domain is not None
        if domain.codes is not None:
            values = rng.choice(np.asarray(domain.codes), n)
        else:
            low, high = domain.bounds
            values = rng.integers(int(low), int(high) + 1, n).astype(float)
        values[rng.random(n) < 0.15] = np.nan
        columns[item.id] = values
    frame = pd.DataFrame(columns, index=pd.RangeIndex(100, 100 + n))
    value_sets: list[str | None] = [None]
    for score in spec.scores:
        if isinstance(score, ValueSetScore):
            value_sets.extend(score.value_sets)
    for value_set in value_sets:
        scored = score_frame(spec, frame, value_set=value_set)
        for position in range(n):
            answers = {
                key: (None if math.isnan(v) else float(v))
                for key, v in frame.iloc[position].items()
            }
            expected = reference_scores(spec, answers, value_set)
            row = {
                name: (None if pd.isna(value) else value)
                for name, value in scored.iloc[position].items()
            }
            for name, value in expected.items():
                if isinstance(value, float):
                    assert row[name] == pytest.approx(value, abs=1e-9), (name, position)
                else:
                    assert row[name] == value, (name, position)
