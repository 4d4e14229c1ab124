"""Charts: result values → matplotlib ``Figure`` (never pyplot: it is not thread-safe) → SVG.

One consistent, colour-blind-safe style (the Okabe–Ito palette). Every chart comes with alt
text, and every page that shows a chart also shows its numbers in a table.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
}
SERIES_COLOURS = [
    OKABE_ITO[k] for k in ("blue", "orange", "green", "vermillion", "purple", "sky_blue", "black")
]
BAND_SHADES = ["#f2f2f2", "#e3e3e3", "#d0d0d0", "#bdbdbd"]
FONT_SIZE = 9


@dataclass(frozen=True)
class Chart:
    """An SVG chart with its alternative text."""

    svg: bytes
    alt: str

    @property
    def data_uri(self) -> str:
        return "data:image/svg+xml;base64," + base64.b64encode(self.svg).decode("ascii")


def new_figure(width_in: float = 6.4, height_in: float = 3.2) -> Figure:
    return Figure(figsize=(width_in, height_in), dpi=100, layout="constrained")


def style_axes(axes: object) -> None:
    ax = axes  # matplotlib Axes
    ax.spines["top"].set_visible(False)  # type: ignore[attr-defined]
    ax.spines["right"].set_visible(False)  # type: ignore[attr-defined]
    ax.tick_params(labelsize=FONT_SIZE)  # type: ignore[attr-defined]
    ax.grid(axis="y", color="#dddddd", linewidth=0.6)  # type: ignore[attr-defined]
    ax.set_axisbelow(True)  # type: ignore[attr-defined]


def to_svg(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    FigureCanvasSVG(figure).print_svg(buffer, metadata={"Date": None})
    return buffer.getvalue()


def to_png(figure: Figure, dpi: int = 150) -> bytes:
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer, dpi=dpi)
    return buffer.getvalue()


def _clean(values: Sequence[float | None]) -> list[float]:
    return [math.nan if v is None else float(v) for v in values]


@dataclass(frozen=True)
class Band:
    low: float
    high: float
    label: str


def trajectory_chart(
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
    """
    figure = new_figure()
    ax = figure.add_subplot()
    style_axes(ax)
    x = list(range(len(time_labels)))
    if y_range is not None:
        for index, band in enumerate(bands):
            ax.axhspan(
                band.low - 0.5,
                band.high + 0.5,
                color=BAND_SHADES[index % len(BAND_SHADES)],
                alpha=0.6,
                linewidth=0,
            )
            ax.text(
                len(x) - 0.55,
                (band.low + band.high) / 2,
                band.label,
                fontsize=FONT_SIZE - 1,
                va="center",
                ha="right",
                color="#444444",
            )
    ax.fill_between(
        x,
        _clean(q1),
        _clean(q3),
        color=OKABE_ITO["sky_blue"],
        alpha=0.35,
        linewidth=0,
        label=labels["iqr"],
    )
    ax.plot(
        x,
        _clean(median),
        color=OKABE_ITO["blue"],
        linestyle="--",
        marker="s",
        markersize=4,
        linewidth=1.5,
        label=labels["median"],
    )
    ax.plot(
        x,
        _clean(patient),
        color=OKABE_ITO["vermillion"],
        marker="o",
        markersize=6,
        linewidth=2.2,
        label=labels["patient"],
    )
    if important_change_line is not None:
        ax.axhline(
            important_change_line,
            color=OKABE_ITO["black"],
            linestyle=":",
            linewidth=1.2,
            label=labels.get("important_change", ""),
        )
    ax.set_xticks(x, list(time_labels))
    ax.set_xlim(-0.3, max(len(x) - 0.7, 0.3))
    if y_range is not None:
        ax.set_ylim(y_range[0] - 0.5, y_range[1] + 0.5)
    ax.set_ylabel(y_label, fontsize=FONT_SIZE)
    ax.legend(
        fontsize=FONT_SIZE - 1,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.12),
        ncol=4,
        frameon=False,
    )
    return Chart(to_svg(figure), alt)


def grouped_bar_chart(
    *,
    categories: Sequence[str],
    series: dict[str, Sequence[float | None]],
    y_label: str,
    alt: str,
    y_range: tuple[float, float] | None = None,
) -> Chart:
    """Bars per category, one colour per series (e.g. median score per time point and arm)."""
    figure = new_figure()
    ax = figure.add_subplot()
    style_axes(ax)
    count = max(len(series), 1)
    width = 0.8 / count
    for index, (name, values) in enumerate(series.items()):
        positions = [c + (index - (count - 1) / 2) * width for c in range(len(categories))]
        ax.bar(
            positions,
            _clean(values),
            width=width * 0.95,
            label=name,
            color=SERIES_COLOURS[index % len(SERIES_COLOURS)],
        )
    ax.set_xticks(list(range(len(categories))), list(categories))
    ax.set_ylabel(y_label, fontsize=FONT_SIZE)
    if y_range is not None:
        ax.set_ylim(*y_range)
    ax.legend(fontsize=FONT_SIZE - 1, frameon=False)
    return Chart(to_svg(figure), alt)
