"""Helpers of the benchmark scenarios: the per-row scoring loop agrees with the vectorised
engine, generated import rows are distinct and valid-looking, peak memory can be read."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from bench import memory
from bench.scenarios.compute import loop_score, random_answers, same_scores
from bench.scenarios.imports import resource_use_rows
from vaikuttavuus.domain.scoring import score_frame
from vaikuttavuus.services.definitions import load_all_definitions


@pytest.fixture(scope="module")
def instruments() -> dict[str, object]:
    specs, _pilots, _measures = load_all_definitions()
    return {spec.id: spec for spec in specs}


@pytest.mark.parametrize("code", ["ipss", "djg6", "ucla3", "insecurity"])
def test_the_loop_scores_like_the_engine(instruments: dict[str, object], code: str) -> None:
    spec = instruments[code]
    answers = random_answers(spec, 400, seed=5, missing=0.15)
    looped = loop_score(spec, answers.to_dict("records"))
    assert same_scores(looped, score_frame(spec, answers))


def test_same_scores_notices_a_difference(instruments: dict[str, object]) -> None:
    spec = instruments["ipss"]
    answers = random_answers(spec, 50, seed=1, missing=0.0)
    looped = loop_score(spec, answers.to_dict("records"))
    looped[7]["total"] += 1
    assert not same_scores(looped, score_frame(spec, answers))
    assert not same_scores(looped[:-1], score_frame(spec, answers))


def test_the_loop_refuses_invalid_answers(instruments: dict[str, object]) -> None:
    spec = instruments["ipss"]
    with pytest.raises(ValueError, match="ipss1"):
        loop_score(spec, [{"ipss1": 9.0}])


def test_random_answers_are_valid_with_the_share_missing(instruments: dict[str, object]) -> None:
    spec = instruments["ipss"]
    answers = random_answers(spec, 5_000, seed=2, missing=0.1)
    assert list(answers.columns)[:2] == ["ipss1", "ipss2"]
    assert 0.07 < float(answers.isna().to_numpy().mean()) < 0.13
    scored = score_frame(spec, answers)  # raises on an invalid answer
    assert isinstance(scored, pd.DataFrame)
    assert np.nanmax(scored["total"].to_numpy()) <= 35


def test_import_rows_are_distinct_and_in_the_past() -> None:
    today = date(2026, 6, 1)
    rows = resource_use_rows(["P-1", "P-2", "P-3"], ["A", "B"], 2_000, today=today)
    assert len(rows) == len(set(rows)) == 2_000
    assert {r[0] for r in rows} == {"P-1", "P-2", "P-3"}
    assert all(r[3] < today.isoformat() for r in rows)
    assert all(1 <= r[2] <= 100 for r in rows)
    shifted = resource_use_rows(["P-1"], ["A"], 10, today=today, first_quantity=101)
    assert not set(shifted) & set(rows)
    with pytest.raises(ValueError, match="distinct rows"):
        resource_use_rows(["P-1"], ["A"], 10**6, today=today)


def test_peak_memory_is_read() -> None:
    assert memory.max_rss_mb() > 10
    assert memory.peak_rss_mb() > 10
    if memory.reset_peak():
        current = memory.current_rss_mb()
        assert current is not None
        assert memory.peak_rss_mb() >= current * 0.9
