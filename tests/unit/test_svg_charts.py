"""Charts drawn straight as SVG: the client guidance timeline (a client's score and services
on one axis in months since the start) is well-formed, and its marks are where the data say."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

from vaikuttavuus.svg_charts import MONTH_DAYS, ScoreLine, ServiceBar, services_timeline_svg

SVG = "{http://www.w3.org/2000/svg}"


def timeline(**overrides: object) -> ET.Element:
    arguments: dict[str, object] = {
        "scores": [ScoreLine("UCLA-3", (0.0, 95.0, 190.0, 370.0), (7.0, 6.0, math.nan, 4.0))],
        "services": [
            ServiceBar("Päivätoiminta (Kunta)", 30.0, 120.0),
            ServiceBar("Ystäväpalvelu <Järjestö>", 60.0, 240.0),
            ServiceBar("Kotihoito", 100.0, None),
        ],
        "open_end": 400.0,
        "y_label": "UCLA-3",
        "y_range": (3.0, 9.0),
        "labels": {"x": "Kuukautta alusta"},
        "alt": "Asiakkaan UCLA-3 ja palvelut",
    }
    arguments.update(overrides)
    chart = services_timeline_svg(**arguments)  # type: ignore[arg-type]
    assert chart.alt == arguments["alt"]
    return ET.fromstring(chart.svg)  # well-formed XML, or this raises


def bars(root: ET.Element) -> list[ET.Element]:
    return [r for r in root.iter(f"{SVG}rect") if r.get("stroke") and r.get("height") != "8"]


def test_the_timeline_is_well_formed_and_names_what_it_shows() -> None:
    root = timeline()
    assert root.findtext(f"{SVG}title") == "Asiakkaan UCLA-3 ja palvelut"
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "Ystäväpalvelu <Järjestö>" in texts  # escaped in the SVG, the text itself here
    assert "Kuukautta alusta" in texts
    assert texts.count("UCLA-3") == 2  # the axis and the legend


def test_each_service_is_a_bar_as_long_as_it_lasted() -> None:
    found = bars(timeline())
    assert len(found) == 3
    widths = [float(bar.get("width", "0")) for bar in found]
    starts = [float(bar.get("x", "0")) for bar in found]
    # 90 days and 180 days: the second bar is twice as wide; it starts 30 days later
    assert math.isclose(widths[1] / widths[0], 2.0, rel_tol=1e-2)
    per_day = widths[0] / 90.0
    assert math.isclose(starts[1] - starts[0], 30.0 * per_day, rel_tol=1e-2)
    # a running service is hatched up to the end of the axis
    assert found[2].get("fill") == "url(#running)"
    assert math.isclose(widths[2], 300.0 * per_day, rel_tol=1e-2)
    assert found[0].get("fill") != "url(#running)"


def test_a_missing_answer_breaks_the_score_line() -> None:
    root = timeline()
    assert len(list(root.iter(f"{SVG}polyline"))) == 1  # the first two answers only
    marks = list(root.iter(f"{SVG}circle"))
    assert len(marks) == 3 + 1  # three answers, one legend mark
    answers = sorted(float(c.get("cx", "0")) for c in marks[:3])
    per_month = (answers[1] - answers[0]) / (95.0 / MONTH_DAYS)
    assert math.isclose(answers[2] - answers[0], 370.0 / MONTH_DAYS * per_month, rel_tol=1e-2)


def number(text: str | None) -> float | None:
    try:
        return float((text or "").replace("\u2212", "-"))
    except ValueError:
        return None


def test_without_a_score_range_the_axis_covers_the_values() -> None:
    root = timeline(y_range=None, services=[])
    right_aligned = [t.text for t in root.iter(f"{SVG}text") if t.get("text-anchor") == "end"]
    ticks = [value for text in right_aligned if (value := number(text)) is not None]
    assert ticks and min(ticks) <= 4.5 and max(ticks) >= 6.5
    assert not bars(root)
