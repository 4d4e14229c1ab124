"""Small charts drawn straight as SVG (no matplotlib): the clinician page's trajectory chart
and the client guidance timeline (scores and services on one time axis).

The clinician's patient page shows one chart per score, and every patient's chart is
different, so it is drawn on every view. matplotlib took about 0.1 s per chart (layout and the
SVG backend), most of the page's time; a chart this simple — a few lines and shaded areas on
fixed axes — is a few hundred lines of SVG text, built here in about a millisecond. The style
is the one of :mod:`vaikuttavuus.plotting` (Okabe–Ito colours, the same marks and legend).
Text stays text, so the labels scale and can be read by assistive technology.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TypeGuard
from xml.sax.saxutils import escape, quoteattr

from vaikuttavuus.plotting import OKABE_ITO, SERIES_COLOURS, Band, Chart, band_colour

WIDTH, HEIGHT = 640, 380
FONT = "DejaVu Sans, Verdana, Arial, sans-serif"
TICK_FONT, SMALL_FONT = 12, 11
LEFT, RIGHT, TOP = 68, 16, 12
LEGEND_ROW = 18


def _finite(value: float | None) -> TypeGuard[float]:
    return value is not None and math.isfinite(value)


def nice_ticks(low: float, high: float, target: int = 6) -> list[float]:
    """Round tick values covering ``low``…``high`` (steps of 1, 2, 2.5 or 5 × 10ⁿ)."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low] if math.isfinite(low) else []
    raw = (high - low) / target
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + 1e-9 * step:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _tick_text(value: float) -> str:
    text = f"{value:.10g}"
    return "\u2212" + text[1:] if text.startswith("-") else text


def _runs(values: Sequence[float | None]) -> Iterator[list[int]]:
    """Indices of consecutive present values (a missing value breaks a line)."""
    run: list[int] = []
    for index, value in enumerate(values):
        if _finite(value):
            run.append(index)
        elif run:
            yield run
            run = []
    if run:
        yield run


def _text(x: float, y: float, text: str, *, size: int, anchor: str = "start", **extra: str) -> str:
    attributes = "".join(f" {name.replace('_', '-')}={quoteattr(v)}" for name, v in extra.items())
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"'
        f"{attributes}>{escape(text)}</text>"
    )


def trajectory_svg(
    *,
    time_labels: Sequence[str],
    patient: Sequence[float | None],
    median: Sequence[float | None],
    q1: Sequence[float | None],
    q3: Sequence[float | None],
    y_label: str,
    y_range: tuple[float, float] | None,
    bands: Sequence[Band] = (),
    important_change_line: float | None = None,
    labels: dict[str, str],
    alt: str,
) -> Chart:
    """One patient's score over the time points against the cohort median and IQR band.

    ``labels`` holds the legend texts: ``patient``, ``median``, ``iqr``, ``important_change``.
    Severity bands are shaded (with their labels) when the score has a range.
    """
    count = len(time_labels)
    legend = [("median", labels["median"]), ("patient", labels["patient"])]
    if important_change_line is not None:
        legend.append(("important_change", labels.get("important_change", "")))
    legend.append(("iqr", labels["iqr"]))
    legend_rows = (len(legend) + 1) // 2
    bottom = 30 + legend_rows * LEGEND_ROW + 8
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - bottom

    if y_range is not None:
        y_low, y_high = y_range[0] - 0.5, y_range[1] + 0.5
    else:
        values = [v for v in (*patient, *median, *q1, *q3) if _finite(v)]
        if important_change_line is not None:
            values.append(important_change_line)
        y_low, y_high = (min(values), max(values)) if values else (0.0, 1.0)
        margin = (y_high - y_low) * 0.05 or 0.5
        y_low, y_high = y_low - margin, y_high + margin
    x_low, x_high = -0.3, max(count - 0.7, 0.3)

    def px(x: float) -> float:
        return LEFT + (x - x_low) / (x_high - x_low) * plot_w

    def py(y: float) -> float:
        return TOP + (y_high - y) / (y_high - y_low) * plot_h

    def points(indices: Sequence[int], values: Sequence[float | None]) -> str:
        return " ".join(f"{px(i):.1f},{py(float(values[i])):.1f}" for i in indices)  # type: ignore[arg-type]

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" font-family={quoteattr(FONT)}>',
        f"<title>{escape(alt)}</title>",
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
        f'<clipPath id="plot"><rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}"/>'
        "</clipPath>",
        '<g clip-path="url(#plot)">',
    ]
    if y_range is not None:
        for index, band in enumerate(bands):
            top, low = py(band.high), py(band.low)
            shade = band_colour(band, index)
            out.append(
                f'<rect x="{LEFT}" y="{top:.1f}" width="{plot_w}" height="{low - top:.1f}" '
                f'fill="{shade}" fill-opacity="0.6"/>'
            )
    ticks = [t for t in nice_ticks(y_low, y_high) if y_low <= t <= y_high]
    for tick in ticks:
        out.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{py(tick):.1f}" y2="{py(tick):.1f}" '
            'stroke="#dddddd" stroke-width="0.8"/>'
        )
    if y_range is not None:
        for band in bands:
            out.append(
                _text(px(-0.25), py((band.low + band.high) / 2) + 4, band.label,
                      size=SMALL_FONT, fill="#444444")
            )  # fmt: skip
    both = [q if _finite(q) and _finite(q3[i]) else None for i, q in enumerate(q1)]
    for run in _runs(both):
        if len(run) > 1:
            outline = points(run, q3) + " " + points(list(reversed(run)), q1)
            out.append(
                f'<polygon points="{outline}" fill="{OKABE_ITO["sky_blue"]}" fill-opacity="0.35"/>'
            )
    for run in _runs(median):
        if len(run) > 1:
            out.append(
                f'<polyline points="{points(run, median)}" fill="none" '
                f'stroke="{OKABE_ITO["blue"]}" stroke-width="2" stroke-dasharray="7,3"/>'
            )
        for i in run:
            x, y = px(i), py(float(median[i]))  # type: ignore[arg-type]
            out.append(
                f'<rect x="{x - 3:.1f}" y="{y - 3:.1f}" width="6" height="6" '
                f'fill="{OKABE_ITO["blue"]}"/>'
            )
    if important_change_line is not None:
        y = py(important_change_line)
        out.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{OKABE_ITO["black"]}" stroke-width="1.6" stroke-dasharray="2,3"/>'
        )
    for run in _runs(patient):
        if len(run) > 1:
            out.append(
                f'<polyline points="{points(run, patient)}" fill="none" '
                f'stroke="{OKABE_ITO["vermillion"]}" stroke-width="3"/>'
            )
        for i in run:
            x, y = px(i), py(float(patient[i]))  # type: ignore[arg-type]
            out.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4.5" fill="{OKABE_ITO["vermillion"]}"/>'
            )
    out.append("</g>")
    # Axes: left and bottom spines, ticks and their labels, the y label.
    axis_y = TOP + plot_h
    out.append(
        f'<path d="M{LEFT},{TOP} V{axis_y} H{LEFT + plot_w}" fill="none" stroke="#000000" '
        'stroke-width="1"/>'
    )
    for tick in ticks:
        y = py(tick)
        out.append(f'<line x1="{LEFT - 4}" x2="{LEFT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#000"/>')
        out.append(_text(LEFT - 7, y + 4, _tick_text(tick), size=TICK_FONT, anchor="end"))
    for index, label in enumerate(time_labels):
        x = px(index)
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{axis_y}" y2="{axis_y + 4}" stroke="#000"/>'
        )
        out.append(_text(x, axis_y + 18, label, size=TICK_FONT, anchor="middle"))
    middle = TOP + plot_h / 2
    out.append(
        _text(16, middle, y_label, size=TICK_FONT, anchor="middle",
              transform=f"rotate(-90 16 {middle:.1f})")
    )  # fmt: skip
    # Legend: two columns under the axes.
    column_w = 250
    start_x = (WIDTH - 2 * column_w) / 2
    for number, (kind, text) in enumerate(legend):
        row, column = divmod(number, 2)
        x = start_x + column * column_w
        y = axis_y + 30 + row * LEGEND_ROW
        out.append(_legend_mark(kind, x, y))
        out.append(_text(x + 34, y + 4, text, size=SMALL_FONT))
    out.append("</svg>")
    return Chart("\n".join(out).encode("utf-8"), alt)


def _legend_mark(kind: str, x: float, y: float) -> str:
    if kind == "median":
        colour = OKABE_ITO["blue"]
        return (
            f'<line x1="{x}" x2="{x + 26}" y1="{y}" y2="{y}" stroke="{colour}" stroke-width="2" '
            f'stroke-dasharray="7,3"/><rect x="{x + 10}" y="{y - 3}" width="6" height="6" '
            f'fill="{colour}"/>'
        )
    if kind == "patient":
        colour = OKABE_ITO["vermillion"]
        return (
            f'<line x1="{x}" x2="{x + 26}" y1="{y}" y2="{y}" stroke="{colour}" stroke-width="3"/>'
            f'<circle cx="{x + 13}" cy="{y}" r="4.5" fill="{colour}"/>'
        )
    if kind == "important_change":
        return (
            f'<line x1="{x}" x2="{x + 26}" y1="{y}" y2="{y}" stroke="{OKABE_ITO["black"]}" '
            'stroke-width="1.6" stroke-dasharray="2,3"/>'
        )
    return (
        f'<rect x="{x}" y="{y - 6}" width="26" height="12" fill="{OKABE_ITO["sky_blue"]}" '
        'fill-opacity="0.35"/>'
    )


# -- the client guidance timeline ---------------------------------------------------------

MONTH_DAYS = 30.4375
TIMELINE_WIDTH = 700
SCORE_PANEL = 200
SERVICE_ROW = 28
LABEL_CHAR = 6.2
"""Approximate width of one character of the small font, for the service labels' margin."""


@dataclass(frozen=True)
class ScoreLine:
    """A score over time: days since the index date and the values (one series)."""

    label: str
    days: tuple[float, ...]
    values: tuple[float, ...]


@dataclass(frozen=True)
class ServiceBar:
    """A service episode on a timeline: label, first and last day since the index date
    (``end`` None: still running up to ``open_end``)."""

    label: str
    start: float
    end: float | None


def services_timeline_svg(
    *,
    scores: Sequence[ScoreLine],
    services: Sequence[ServiceBar],
    open_end: float,
    y_label: str,
    y_range: tuple[float, float] | None,
    labels: dict[str, str],
    alt: str,
) -> Chart:
    """A client's scores (top) and services (bottom) on one time axis in months since the
    index date; a service still running is hatched up to ``open_end``. ``labels``: ``x`` (the
    axis). Every client's chart is different and drawn on each view of the page, so it is
    drawn here as SVG text (about a millisecond; matplotlib took about 0.15 s)."""
    rows = max(len(services), 1)
    longest = max((len(bar.label) for bar in services), default=0)
    left = max(LEFT, min(8 + LABEL_CHAR * longest, TIMELINE_WIDTH // 2))
    plot_w = TIMELINE_WIDTH - left - RIGHT
    score_top, score_h = TOP, SCORE_PANEL
    service_top = score_top + score_h + 14
    service_h = 14 + SERVICE_ROW * rows
    axis_y = service_top + service_h
    height = axis_y + 44

    ends = [bar.start for bar in services]
    ends += [open_end if bar.end is None else bar.end for bar in services]
    ends += [day for line in scores for day in line.days]
    x_high = max([d / MONTH_DAYS for d in ends if _finite(d)] + [open_end / MONTH_DAYS, 1.0])
    x_low = min([d / MONTH_DAYS for d in ends if _finite(d)] + [0.0])
    x_pad = (x_high - x_low) * 0.03
    x_low, x_high = x_low - x_pad, x_high + x_pad

    values = [v for line in scores for v in line.values if _finite(v)]
    if y_range is not None:
        pad = (y_range[1] - y_range[0]) * 0.06 or 0.5
        y_low, y_high = y_range[0] - pad, y_range[1] + pad
    else:
        y_low, y_high = (min(values), max(values)) if values else (0.0, 1.0)
        margin = (y_high - y_low) * 0.06 or 0.5
        y_low, y_high = y_low - margin, y_high + margin

    def px(months: float) -> float:
        return left + (months - x_low) / (x_high - x_low) * plot_w

    def py(value: float) -> float:
        return score_top + (y_high - value) / (y_high - y_low) * score_h

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{TIMELINE_WIDTH}" height="{height}" '
        f'viewBox="0 0 {TIMELINE_WIDTH} {height}" role="img" font-family={quoteattr(FONT)}>',
        f"<title>{escape(alt)}</title>",
        f'<rect width="{TIMELINE_WIDTH}" height="{height}" fill="#ffffff"/>',
        '<defs><pattern id="running" width="8" height="8" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)">'
        f'<rect width="8" height="8" fill="{OKABE_ITO["green"]}" fill-opacity="0.35"/>'
        f'<line x1="0" y1="0" x2="0" y2="8" stroke="{OKABE_ITO["green"]}" stroke-width="3"/>'
        "</pattern></defs>",
    ]
    x_ticks = [t for t in nice_ticks(x_low, x_high, 8) if x_low <= t <= x_high]
    y_ticks = [t for t in nice_ticks(y_low, y_high, 5) if y_low <= t <= y_high]
    # the score panel: grid, lines, axis
    for tick in y_ticks:
        y = py(tick)
        out.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
            'stroke="#dddddd" stroke-width="0.8"/>'
        )
        out.append(f'<line x1="{left - 4}" x2="{left}" y1="{y:.1f}" y2="{y:.1f}" stroke="#000"/>')
        out.append(_text(left - 7, y + 4, _tick_text(tick), size=TICK_FONT, anchor="end"))
    for number, line in enumerate(scores):
        colour = SERIES_COLOURS[number % len(SERIES_COLOURS)]
        months = [day / MONTH_DAYS for day in line.days]
        present: list[float | None] = [float(v) if _finite(v) else None for v in line.values]
        for run in _runs(present):
            marks = [(px(months[i]), py(float(line.values[i]))) for i in run]
            if len(marks) > 1:
                path = " ".join(f"{x:.1f},{y:.1f}" for x, y in marks)
                out.append(
                    f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.8"/>'
                )
            out.extend(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}"/>' for x, y in marks
            )
    out.append(
        f'<path d="M{left},{score_top} V{score_top + score_h} H{left + plot_w}" fill="none" '
        'stroke="#000000" stroke-width="1"/>'
    )
    middle, label_x = score_top + score_h / 2, max(16, left - 48)
    out.append(
        _text(label_x, middle, y_label, size=TICK_FONT, anchor="middle",
              transform=f"rotate(-90 {label_x} {middle:.1f})")
    )  # fmt: skip
    for number, line in enumerate(scores):  # legend, upper right
        colour = SERIES_COLOURS[number % len(SERIES_COLOURS)]
        y = score_top + 12 + number * LEGEND_ROW
        x = left + plot_w - 8
        out.append(_text(x - 34, y + 4, line.label, size=SMALL_FONT, anchor="end"))
        out.append(
            f'<line x1="{x - 26}" x2="{x}" y1="{y}" y2="{y}" stroke="{colour}" '
            f'stroke-width="1.8"/><circle cx="{x - 13}" cy="{y}" r="4" fill="{colour}"/>'
        )
    # the service panel: one row per service, a bar from its start to its end
    for tick in x_ticks:
        x = px(tick)
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{service_top}" y2="{axis_y}" '
            'stroke="#dddddd" stroke-width="0.6"/>'
        )
    for position, bar in enumerate(services):
        centre = service_top + 7 + SERVICE_ROW * position + SERVICE_ROW / 2
        end = open_end if bar.end is None else bar.end
        start_x = px(bar.start / MONTH_DAYS)
        width = max(px(max(end - bar.start, 1.0) / MONTH_DAYS + x_low) - px(x_low), 1.0)
        fill = "url(#running)" if bar.end is None else OKABE_ITO["green"]
        out.append(
            f'<rect x="{start_x:.1f}" y="{centre - SERVICE_ROW * 0.3:.1f}" width="{width:.1f}" '
            f'height="{SERVICE_ROW * 0.6:.1f}" fill="{fill}" stroke="{OKABE_ITO["green"]}" '
            'stroke-width="1"/>'
        )
        out.append(
            f'<line x1="{left - 4}" x2="{left}" y1="{centre:.1f}" y2="{centre:.1f}" stroke="#000"/>'
        )
        out.append(_text(left - 7, centre + 4, bar.label, size=SMALL_FONT, anchor="end"))
    out.append(
        f'<path d="M{left},{service_top} V{axis_y} H{left + plot_w}" fill="none" '
        'stroke="#000000" stroke-width="1"/>'
    )
    for tick in x_ticks:
        x = px(tick)
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{axis_y}" y2="{axis_y + 4}" stroke="#000"/>'
        )
        out.append(_text(x, axis_y + 18, _tick_text(tick), size=TICK_FONT, anchor="middle"))
    out.append(_text(left + plot_w / 2, axis_y + 36, labels["x"], size=TICK_FONT, anchor="middle"))
    out.append("</svg>")
    return Chart("\n".join(out).encode("utf-8"), alt)
