"""``scripts/bench --snapshot-people N`` sets the data set of the snapshot scenarios."""

from __future__ import annotations

from typing import Any

import pytest

from bench.cli import parse_args
from bench.scenarios import Context
from bench.scenarios.snapshots import snapshot_people
from bench.workspace import FULL, QUICK


def context(sizes: Any, chosen: int | None) -> Context:
    return Context(
        workspace=None,  # type: ignore[arg-type]
        sizes=sizes,
        backends=("sqlite",),
        quick=sizes is QUICK,
        say=print,
        options={"snapshot_people": chosen},
    )


def test_the_run_s_smallest_data_set_by_default() -> None:
    assert snapshot_people(context(QUICK, None)) == 1_000
    assert snapshot_people(context(FULL, None)) == min(FULL.people)


def test_the_design_size_when_asked() -> None:
    args = parse_args(["--only", "snapshot_build", "--snapshot-people", "200000"])
    assert args.snapshot_people == 200_000
    assert snapshot_people(context(FULL, args.snapshot_people)) == 200_000


def test_a_size_that_is_not_a_number_of_people_is_refused() -> None:
    with pytest.raises(SystemExit, match="positive"):
        snapshot_people(context(FULL, -5))
