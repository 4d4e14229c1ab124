"""Charts write numbers as the tables do (issue 17): Finnish and Swedish ticks with a decimal
comma, a space between thousands and a real minus sign; funnel dots carry their names."""

from __future__ import annotations

import re

import pytest

from vaikuttavuus import plotting
from vaikuttavuus.plotting import format_number, tick_decimals


@pytest.mark.parametrize(
    ("value", "decimals", "locale", "expected"),
    [
        (-3500, 0, "fi", "\u22123\u00a0500"),
        (10000, 0, "sv", "10\u00a0000"),
        (20, 1, "fi", "20,0"),
        (0.25, 2, "sv", "0,25"),
        (-0.00001, 1, "fi", "0,0"),  # never −0
        (12345.5, 1, "en", "12,345.5"),
    ],
)
def test_numbers_are_written_in_the_language(
    value: float, decimals: int, locale: str, expected: str
) -> None:
    assert format_number(value, decimals, locale) == expected


def test_the_ticks_of_an_axis_share_the_fewest_decimals_that_tell_them_apart() -> None:
    assert tick_decimals([0, 5, 10, 15]) == 0
    assert tick_decimals([0.0, 0.5, 1.0]) == 1
    assert tick_decimals([0.0, 0.25, 0.5]) == 2
    assert tick_decimals([1 / 3]) == 4


def _tick_texts(svg: bytes) -> list[str]:
    return re.findall(r"<text[^>]*>([^<]*)</text>", svg.decode("utf-8"))


@pytest.mark.parametrize("locale", ["fi", "en"])
def test_chart_ticks_follow_the_locale(monkeypatch: pytest.MonkeyPatch, locale: str) -> None:
    monkeypatch.setattr(plotting, "chart_locale", lambda: locale)
    chart = plotting.ceac_chart(
        wtp=[0, 5000, 10000, 15000, 20000],
        curves={"A": [0.1, 0.3, 0.5, 0.7, 0.9]},
        x_label="x",
        y_label="y",
        alt="alt",
    )
    texts = _tick_texts(chart.svg)
    if locale == "fi":
        assert "10\u00a0000" in texts and "10,000" not in texts
    else:
        assert "10,000" in texts
    plane = plotting.ce_plane_chart(
        delta_effect=[-0.5, 0.25, 0.75],
        delta_cost=[-3500, 200, 900],
        point=(0.2, 100),
        labels={"x": "x", "y": "y", "replicates": "r", "point": "p", "wtp": "w"},
        alt="alt",
    )
    texts = _tick_texts(plane.svg)
    minus = "\u2212"  # the tables' minus sign in every language
    assert any(t.startswith(minus) and t[1:2].isdigit() for t in texts)
    decimal_sign = "," if locale == "fi" else "."
    assert any(
        decimal_sign in t and t.replace("\u2212", "").replace("-", "")[0].isdigit() for t in texts
    )


def test_funnel_dots_are_named() -> None:
    chart = plotting.funnel_chart(
        n=[20, 40],
        share=[0.5, 0.6],
        p0=0.55,
        curve_n=[10, 20, 40],
        limits={"95 %": ([0.2, 0.3, 0.4], [0.9, 0.8, 0.7])},
        labels={"x": "n", "y": "%", "groups": "units", "p0": "mean"},
        alt="alt",
        point_labels=["Poliklinikka Lahti", "Poliklinikka Heinola"],
    )
    texts = _tick_texts(chart.svg)
    assert "Poliklinikka Lahti" in texts and "Poliklinikka Heinola" in texts
