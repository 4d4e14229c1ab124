"""Small charts drawn straight as SVG (no matplotlib): the clinician page's trajectory chart.

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
from typing import TypeGuard
from xml.sax.saxutils import escape, quoteattr

from vaikuttavuus.plotting import OKABE_ITO, Band, Chart, band_colour

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
