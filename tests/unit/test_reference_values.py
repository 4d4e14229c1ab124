"""A patient's scored responses as plain values: the same values as pandas'
``to_dict("records")`` (which the clinician page used before), for every column type the
scored frames hold. The frames kept per process share their text values between rows."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from vaikuttavuus.services.reference_cache import _compact, _holds, _ids, values_by_time_point


def same(left: object, right: object) -> bool:
    if isinstance(left, float) and isinstance(right, float):
        return (math.isnan(left) and math.isnan(right)) or left == right
    if left is pd.NaT or right is pd.NaT:
        return left is right
    return type(left) is type(right) and left == right


def test_values_are_those_of_to_dict_records() -> None:
    rows = pd.DataFrame(
        {
            "time_point": ["baseline", "m3", "m12"],
            "enrolment_id": np.array([7, 7, 7], dtype="int64"),
            "score": [21.5, np.nan, 3.0],
            "item_1": pd.array([4, None, 0], dtype="Int64"),
            "mode": ["web", None, "paper"],
            "proxy": [False, True, False],
            "submitted_at": pd.to_datetime(["2026-01-02 10:00", None, "2026-12-01 08:30"]),
        }
    )
    expected = {str(record["time_point"]): record for record in rows.to_dict("records")}
    got = values_by_time_point(rows.take([2, 0, 1]))
    assert list(got) == ["m12", "baseline", "m3"]
    for time_point, record in expected.items():
        assert list(got[time_point]) == list(record)
        for column, value in record.items():
            assert same(got[time_point][column], value), (time_point, column)
    assert got["m3"]["item_1"] is None  # a missing nullable integer is None, not pd.NA


def test_no_rows_no_values() -> None:
    assert values_by_time_point(pd.DataFrame({"time_point": [], "score": []})) == {}


def test_a_kept_frame_shares_its_text_values_and_keeps_them_as_they_were() -> None:
    n = 3000
    text = pd.StringDtype("python")
    read = pd.DataFrame(
        {
            # as read from the database: one string object per row
            "time_point": pd.array(["".join(["m", str(3 * (i % 3))]) for i in range(n)], text),
            "band": pd.array([None if i % 5 == 0 else "".join("mild") for i in range(n)], text),
            "response_id": np.arange(n, 0, -1, dtype="int64"),
            "total": np.linspace(0.0, 35.0, n),
        }
    )
    kept = _compact(read)
    pd.testing.assert_frame_equal(kept, read)
    for column in ("time_point", "band"):
        before = {id(v) for v in read[column].to_numpy(dtype=object)}
        after = {id(v) for v in kept[column].to_numpy(dtype=object)}
        assert len(before) > n / 2 and len(after) <= 3
    ids = _ids(read)
    assert ids.dtype == np.int64 and list(ids) == list(range(1, n + 1))
    assert _holds(ids, 1) and _holds(ids, n) and not _holds(ids, 0) and not _holds(ids, n + 1)
