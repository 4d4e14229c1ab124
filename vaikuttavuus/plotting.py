"""Charts: result values → matplotlib ``Figure`` (never pyplot: it is not thread-safe) → SVG.

One consistent, colour-blind-safe style (the Okabe–Ito palette). Every chart comes with alt
text, and every page that shows a chart also shows its numbers in a table.
"""

from __future__ import annotations

import base64
import functools
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from matplotlib.figure import Figure

    return Figure(figsize=(width_in, height_in), dpi=100, layout="constrained")


def style_axes(axes: object) -> None:
    ax = axes  # matplotlib Axes
    ax.spines["top"].set_visible(False)  # type: ignore[attr-defined]
    ax.spines["right"].set_visible(False)  # type: ignore[attr-defined]
    ax.tick_params(labelsize=FONT_SIZE)  # type: ignore[attr-defined]
    ax.grid(axis="y", color="#dddddd", linewidth=0.6)  # type: ignore[attr-defined]
    ax.set_axisbelow(True)  # type: ignore[attr-defined]


def chart_locale() -> str:
    """The language charts write their numbers in: the page's or the PDF's (Flask-Babel's
    current locale), Finnish outside a request."""
    try:
        from flask_babel import get_locale

        locale = get_locale()
    except (ImportError, RuntimeError, KeyError):  # no app or request context
        locale = None
    return str(locale) if locale is not None else "fi"


@functools.cache
def localised_formatter() -> type[Any]:
    """:class:`LocalisedFormatter`, defined on first use (matplotlib loads only when a
    chart is drawn)."""
    from matplotlib.ticker import Formatter

    class LocalisedFormatter(Formatter):
        """Tick labels as the tables write numbers: a decimal comma, a thousands separator and a
        real minus sign in Finnish and Swedish (``−3 500``, ``0,25``), the fewest decimals that
        tell the ticks apart, and the same number of decimals on every tick of an axis."""

        def __init__(self, locale: str) -> None:
            self.locale = locale
            self.decimals = 0

        def set_locs(self, locs: list[float]) -> None:
            super().set_locs(locs)
            self.decimals = tick_decimals(list(locs))

        def __call__(self, x: float, pos: int | None = None) -> str:
            return format_number(x, self.decimals, self.locale)

    return LocalisedFormatter


def tick_decimals(values: Sequence[float], most: int = 4) -> int:
    """The fewest decimals (up to ``most``) that write every tick value exactly."""
    finite = [v for v in values if math.isfinite(v)]
    for decimals in range(most + 1):
        if all(abs(v - round(v, decimals)) < 1e-9 * max(1.0, abs(v)) for v in finite):
            return decimals
    return most


def format_number(value: float, decimals: int, locale: str) -> str:
    """``value`` with ``decimals`` decimals in ``locale``'s way (grouping, decimal sign,
    minus sign); ``0`` never shows as ``−0``."""
    from babel.numbers import format_decimal

    if abs(value) < 0.5 * 10**-decimals:
        value = 0.0
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
    text = str(format_decimal(value, format=pattern, locale=locale))
    return "\u2212" + text[1:] if text.startswith("-") else text  # as the tables write it


def localise_ticks(figure: Figure, locale: str | None = None) -> None:
    """Numeric axes of every subplot get :class:`LocalisedFormatter` (category axes and axes
    with their own tick texts keep theirs)."""
    from matplotlib.ticker import ScalarFormatter

    language = locale or chart_locale()
    for ax in figure.axes:
        for axis in (ax.xaxis, ax.yaxis):
            if isinstance(axis.get_major_formatter(), ScalarFormatter):
                axis.set_major_formatter(localised_formatter()(language))


def to_svg(figure: Figure) -> bytes:
    from matplotlib.backends.backend_svg import FigureCanvasSVG

    localise_ticks(figure)
    buffer = io.BytesIO()
    FigureCanvasSVG(figure).print_svg(buffer, metadata={"Date": None})
    return buffer.getvalue()


def to_png(figure: Figure, dpi: int = 150) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    localise_ticks(figure)
    buffer = io.BytesIO()
    # print_png takes no dpi (calling it with one raised TypeError); savefig does
    FigureCanvasAgg(figure)
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _clean(values: Sequence[float | None]) -> list[float]:
    return [math.nan if v is None else float(v) for v in values]


@dataclass(frozen=True)
class Band:
    """A severity band from ``low`` up to ``high`` (the next band's ``low``). ``shade`` orders
    the shades from light (0, the best band) to dark, so the shading follows the score's
    direction rather than the order the bands are listed in."""

    low: float
    high: float
    label: str
    shade: int | None = None


def band_colour(band: Band, position: int) -> str:
    """The band's shade (its ``shade``, else its position among the bands)."""
    rank = band.shade if band.shade is not None else position
    return BAND_SHADES[min(rank, len(BAND_SHADES) - 1)]


def grouped_bar_chart(
    *,
    categories: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
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


def stacked_bar_chart(
    *,
    categories: Sequence[str],
    segments: Mapping[str, Sequence[float | None]],
    y_label: str,
    alt: str,
) -> Chart:
    """One bar per category made of stacked segments (e.g. mean cost per person per arm, by
    cost centre); segments keep their order from bottom to top and their colour across bars."""
    figure = new_figure(height_in=3.8)
    ax = figure.add_subplot()
    style_axes(ax)
    positions = list(range(len(categories)))
    bottom = [0.0] * len(categories)
    for index, (name, values) in enumerate(segments.items()):
        heights = [0.0 if math.isnan(v) else v for v in _clean(values)]
        ax.bar(
            positions,
            heights,
            bottom=bottom,
            width=0.6,
            label=name,
            color=SERIES_COLOURS[index % len(SERIES_COLOURS)],
            edgecolor="#ffffff",
            linewidth=0.5,
        )
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    ax.set_xticks(positions, list(categories))
    ax.set_ylabel(y_label, fontsize=FONT_SIZE)
    figure.legend(fontsize=FONT_SIZE - 1, loc="outside right upper", frameon=False)
    return Chart(to_svg(figure), alt)


@dataclass(frozen=True)
class TrajectoryPanel:
    """One small chart of :func:`trajectory_panels`: a patient's score against the cohort."""

    title: str
    patient: tuple[float | None, ...]
    median: tuple[float | None, ...]
    q1: tuple[float | None, ...]
    q3: tuple[float | None, ...]
    y_range: tuple[float, float] | None = None
    bands: tuple[Band, ...] = ()
    important_change_line: float | None = None


def trajectory_panels(
    *,
    time_labels: Sequence[str],
    panels: Sequence[TrajectoryPanel],
    labels: dict[str, str],
    alt: str,
    width_in: float = 7.0,
    height_in: float = 2.4,
) -> Chart:
    """Small multiples for a one-page summary: one compact panel per score, side by side,
    the patient's line over the cohort median and interquartile band, severity bands shaded,
    one shared legend. ``labels``: ``patient``, ``median``, ``iqr``, ``important_change``.
    """
    figure = new_figure(width_in=width_in, height_in=height_in)
    count = max(len(panels), 1)
    x = list(range(len(time_labels)))
    if count >= 3:  # narrow panels: break long time-point labels over lines
        time_labels = [label.replace(" ", "\n") for label in time_labels]
    for index, panel in enumerate(panels):
        ax = figure.add_subplot(1, count, index + 1)
        style_axes(ax)
        if panel.y_range is not None:
            for position, band in enumerate(panel.bands):
                ax.axhspan(
                    band.low,
                    band.high,
                    color=band_colour(band, position),
                    alpha=0.6,
                    linewidth=0,
                )
        ax.fill_between(
            x,
            _clean(panel.q1),
            _clean(panel.q3),
            color=OKABE_ITO["sky_blue"],
            alpha=0.35,
            linewidth=0,
            label=labels["iqr"] if index == 0 else None,
        )
        ax.plot(
            x,
            _clean(panel.median),
            color=OKABE_ITO["blue"],
            linestyle="--",
            marker="s",
            markersize=3,
            linewidth=1.2,
            label=labels["median"] if index == 0 else None,
        )
        ax.plot(
            x,
            _clean(panel.patient),
            color=OKABE_ITO["vermillion"],
            marker="o",
            markersize=4,
            linewidth=1.8,
            label=labels["patient"] if index == 0 else None,
        )
        if panel.important_change_line is not None:
            ax.axhline(
                panel.important_change_line,
                color=OKABE_ITO["black"],
                linestyle=":",
                linewidth=1.0,
                label=labels.get("important_change") if index == 0 else None,
            )
        ax.set_title(panel.title, fontsize=FONT_SIZE - 1)
        ax.set_xticks(x, list(time_labels), fontsize=FONT_SIZE - 2)
        ax.tick_params(axis="y", labelsize=FONT_SIZE - 2)
        ax.set_xlim(-0.3, max(len(x) - 0.7, 0.3))
        if panel.y_range is not None:
            pad = (panel.y_range[1] - panel.y_range[0]) * 0.04 or 0.5
            ax.set_ylim(panel.y_range[0] - pad, panel.y_range[1] + pad)
    figure.legend(fontsize=FONT_SIZE - 2, loc="outside lower center", ncol=4, frameon=False)
    return Chart(to_svg(figure), alt)


# -- cohort analytics charts (cost-effectiveness, funnel, forest) -------------------------------


def _svg_with_text(figure: Figure) -> bytes:
    """SVG with text as ``<text>`` (not glyph paths): smaller, quicker for WeasyPrint, and the
    labels stay searchable and readable by screen readers in the PDF."""
    from matplotlib import rc_context

    with rc_context({"svg.fonttype": "none"}):
        return to_svg(figure)


def _thin(values: Iterable[float], limit: int) -> list[float]:
    """The first ``limit`` values (bootstrap replicates are exchangeable, so the first ones
    are a random sample of the cloud)."""
    return [float(v) for v in list(values)[:limit]]


def ce_plane_chart(
    *,
    delta_effect: Iterable[float],
    delta_cost: Iterable[float],
    point: tuple[float, float],
    labels: dict[str, str],
    alt: str,
    wtp: float | None = None,
    max_points: int = 2_000,
) -> Chart:
    """The cost-effectiveness plane: bootstrap replicates (ΔE, ΔC), the point estimate and the
    willingness-to-pay line ΔC = λ·ΔE through the origin.

    ``point`` is (ΔE, ΔC). ``labels``: ``x``, ``y``, ``replicates``, ``point`` and ``wtp``
    (legend texts). At most ``max_points`` replicates are drawn (the table has them all).
    """
    figure = new_figure(width_in=6.0, height_in=4.2)
    ax = figure.add_subplot()
    style_axes(ax)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    xs = _thin(delta_effect, max_points)
    ys = _thin(delta_cost, max_points)
    ax.scatter(
        xs,
        ys,
        s=5,
        color=OKABE_ITO["sky_blue"],
        alpha=0.45,
        linewidths=0,
        label=labels["replicates"],
        rasterized=True,
    )
    ax.axhline(0, color="#444444", linewidth=0.8)
    ax.axvline(0, color="#444444", linewidth=0.8)
    all_x = [*xs, point[0], 0.0]
    all_y = [*ys, point[1], 0.0]
    finite_x = [v for v in all_x if math.isfinite(v)]
    finite_y = [v for v in all_y if math.isfinite(v)]
    span_x = (max(finite_x) - min(finite_x)) or 1.0
    span_y = (max(finite_y) - min(finite_y)) or 1.0
    x_low, x_high = min(finite_x) - 0.08 * span_x, max(finite_x) + 0.08 * span_x
    y_low, y_high = min(finite_y) - 0.08 * span_y, max(finite_y) + 0.08 * span_y
    if wtp is not None:
        line_x = [x_low, x_high]
        ax.plot(
            line_x,
            [wtp * x for x in line_x],
            color=OKABE_ITO["black"],
            linestyle="--",
            linewidth=1.0,
            label=labels["wtp"],
        )
    ax.scatter(
        [point[0]],
        [point[1]],
        s=48,
        marker="D",
        color=OKABE_ITO["vermillion"],
        edgecolors="white",
        linewidths=0.8,
        zorder=3,
        label=labels["point"],
    )
    ax.set_xlim(x_low, x_high)
    ax.set_ylim(y_low, y_high)
    ax.set_xlabel(labels["x"], fontsize=FONT_SIZE)
    ax.set_ylabel(labels["y"], fontsize=FONT_SIZE)
    figure.legend(fontsize=FONT_SIZE - 1, loc="outside lower center", ncol=3, frameon=False)
    return Chart(_svg_with_text(figure), alt)


def ceac_chart(
    *,
    wtp: Sequence[float],
    curves: Mapping[str, Sequence[float]],
    x_label: str,
    y_label: str,
    alt: str,
    marker: float | None = None,
) -> Chart:
    """Cost-effectiveness acceptability curves: probability (0–1, shown as %) over λ; one
    line per curve (e.g. bootstrap and parametric); ``marker`` draws a vertical line at λ."""
    figure = new_figure(width_in=6.0, height_in=3.4)
    ax = figure.add_subplot()
    style_axes(ax)
    styles = ["-", "--", ":", "-."]
    for index, (name, values) in enumerate(curves.items()):
        ax.plot(
            list(wtp),
            [100 * v for v in _clean(list(values))],
            color=SERIES_COLOURS[index % len(SERIES_COLOURS)],
            linestyle=styles[index % len(styles)],
            linewidth=1.8,
            label=name,
        )
    if marker is not None:
        ax.axvline(marker, color="#666666", linestyle=":", linewidth=1.0)
    ax.set_ylim(0, 100)
    ax.set_xlim(min(wtp), max(wtp))
    ax.set_xlabel(x_label, fontsize=FONT_SIZE)
    ax.set_ylabel(y_label, fontsize=FONT_SIZE)
    ax.legend(fontsize=FONT_SIZE - 1, frameon=False, loc="best")
    return Chart(_svg_with_text(figure), alt)


def funnel_chart(
    *,
    n: Sequence[float],
    share: Sequence[float],
    p0: float,
    curve_n: Sequence[float],
    limits: dict[str, tuple[Sequence[float], Sequence[float]]],
    labels: dict[str, str],
    alt: str,
    point_labels: Sequence[str] = (),
) -> Chart:
    """A funnel plot: each group's share (0–1, shown as %) against its number of persons,
    with the cohort share ``p0`` and control limits over ``curve_n`` (``limits`` maps a legend
    text to the lower and upper curve). ``labels``: ``x``, ``y``, ``groups``, ``p0``.
    ``point_labels`` names the dots (one per group, e.g. the unit), written beside them."""
    figure = new_figure(width_in=6.0, height_in=3.8)
    ax = figure.add_subplot()
    style_axes(ax)
    styles = ["--", ":"]
    for index, (name, (low, high)) in enumerate(limits.items()):
        style = styles[index % len(styles)]
        ax.plot(
            list(curve_n),
            [100 * v for v in _clean(list(low))],
            color="#555555",
            linestyle=style,
            linewidth=1.0,
            label=name,
        )
        ax.plot(
            list(curve_n),
            [100 * v for v in _clean(list(high))],
            color="#555555",
            linestyle=style,
            linewidth=1.0,
        )
    ax.axhline(100 * p0, color=OKABE_ITO["blue"], linewidth=1.2, label=labels["p0"])
    ax.scatter(
        list(n),
        [100 * v for v in _clean(list(share))],
        s=30,
        color=OKABE_ITO["vermillion"],
        edgecolors="white",
        linewidths=0.6,
        zorder=3,
        label=labels["groups"],
    )
    for x, y, text in zip(list(n), _clean(list(share)), point_labels, strict=False):
        if math.isfinite(y) and text:
            ax.annotate(
                text,
                (x, 100 * y),
                xytext=(5, 4),
                textcoords="offset points",
                fontsize=FONT_SIZE - 1,
                color="#333333",
            )
    ax.set_ylim(0, 100)
    ax.set_xlim(0, max([*curve_n, *n, 1]) * 1.05)
    ax.set_xlabel(labels["x"], fontsize=FONT_SIZE)
    ax.set_ylabel(labels["y"], fontsize=FONT_SIZE)
    figure.legend(fontsize=FONT_SIZE - 1, loc="outside lower center", ncol=4, frameon=False)
    return Chart(_svg_with_text(figure), alt)


@dataclass(frozen=True)
class ArmFunnel:
    """One arm's share and its funnel limits over ``n`` (95 % and 99.8 %)."""

    name: str
    p0: float
    n: Sequence[float]
    low_95: Sequence[float]
    high_95: Sequence[float]
    low_998: Sequence[float]
    high_998: Sequence[float]


def arm_funnel_chart(
    *,
    n: Sequence[float],
    share: Sequence[float],
    point_labels: Sequence[str],
    point_arms: Sequence[int | None],
    arms: Sequence[ArmFunnel],
    labels: dict[str, str],
    alt: str,
) -> Chart:
    """A funnel plot that compares each group with its own arm: every arm's share as a line
    with its 95 % (dashed) and 99.8 % (dotted) limits in the arm's colour, and each group's
    share (0–1, shown as %) against its number of persons as a dot in its arm's colour
    (``point_arms``: an index into ``arms``, None for a group of several arms), named.
    ``labels``: ``x``, ``y``, ``limits_95``, ``limits_998``, ``mixed``."""
    figure = new_figure(width_in=6.4, height_in=4.2)
    ax = figure.add_subplot()
    style_axes(ax)
    colours = [OKABE_ITO["blue"], OKABE_ITO["vermillion"], OKABE_ITO["green"], OKABE_ITO["purple"]]
    for index, arm in enumerate(arms):
        colour = colours[index % len(colours)]
        ax.axhline(100 * arm.p0, color=colour, linewidth=1.3, label=arm.name)
        for low, high, style in (
            (arm.low_95, arm.high_95, "--"),
            (arm.low_998, arm.high_998, ":"),
        ):
            for curve in (low, high):
                ax.plot(
                    list(arm.n),
                    [100 * v for v in _clean(list(curve))],
                    color=colour,
                    linestyle=style,
                    linewidth=0.9,
                    alpha=0.8,
                )
    ax.plot([], [], color="#555555", linestyle="--", linewidth=0.9, label=labels["limits_95"])
    ax.plot([], [], color="#555555", linestyle=":", linewidth=0.9, label=labels["limits_998"])
    mixed_shown = False
    for x, y, text, arm_index in zip(
        list(n), _clean(list(share)), point_labels, point_arms, strict=True
    ):
        if not math.isfinite(y):
            continue
        colour = colours[arm_index % len(colours)] if arm_index is not None else "#333333"
        marker = "o" if arm_index is not None else "D"
        ax.scatter(
            [x],
            [100 * y],
            s=34,
            marker=marker,
            color=colour,
            edgecolors="white",
            linewidths=0.6,
            zorder=3,
            label=labels["mixed"] if arm_index is None and not mixed_shown else None,
        )
        mixed_shown = mixed_shown or arm_index is None
        ax.annotate(
            text,
            (x, 100 * y),
            xytext=(5, 4),
            textcoords="offset points",
            fontsize=FONT_SIZE - 1,
            color="#222222",
        )
    ax.set_ylim(0, 105)
    ax.set_xlim(0, max([*[float(v) for v in n], *[max(a.n) for a in arms if len(a.n)], 1]) * 1.1)
    ax.set_xlabel(labels["x"], fontsize=FONT_SIZE)
    ax.set_ylabel(labels["y"], fontsize=FONT_SIZE)
    figure.legend(fontsize=FONT_SIZE - 1, loc="outside lower center", ncol=3, frameon=False)
    return Chart(_svg_with_text(figure), alt)


def forest_chart(
    *,
    rows: Sequence[str],
    estimates: Sequence[float],
    lows: Sequence[float],
    highs: Sequence[float],
    x_label: str,
    alt: str,
    reference: float = 0.0,
) -> Chart:
    """A forest plot: one row per label with its estimate and confidence interval, and a
    vertical line at ``reference`` (no effect). The first row is drawn at the top."""
    height = 1.1 + 0.34 * max(len(rows), 1)
    figure = new_figure(width_in=6.0, height_in=height)
    ax = figure.add_subplot()
    style_axes(ax)
    ax.grid(axis="y", visible=False)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    y = list(range(len(rows)))[::-1]
    est = _clean(list(estimates))
    low = _clean(list(lows))
    high = _clean(list(highs))
    for position, e, lo, hi in zip(y, est, low, high, strict=True):
        ax.plot([lo, hi], [position, position], color=OKABE_ITO["blue"], linewidth=1.6)
        ax.plot([e], [position], marker="s", markersize=6, color=OKABE_ITO["blue"])
    ax.axvline(reference, color="#444444", linewidth=0.9, linestyle="--")
    ax.set_yticks(y, list(rows), fontsize=FONT_SIZE - 1)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlabel(x_label, fontsize=FONT_SIZE)
    return Chart(_svg_with_text(figure), alt)


def tornado_chart(
    *,
    rows: Sequence[str],
    lows: Sequence[float],
    highs: Sequence[float],
    base: float,
    x_label: str,
    legend: tuple[str, str],
    alt: str,
) -> Chart:
    """A tornado diagram: one horizontal bar per input from the value at the low end of its
    range to the value at the high end, around the base value (a vertical line); the first
    row (the largest swing) is drawn at the top. ``legend`` names the two ends."""
    height = 1.3 + 0.32 * max(len(rows), 1)
    figure = new_figure(width_in=6.4, height_in=height)
    ax = figure.add_subplot()
    style_axes(ax)
    ax.grid(axis="y", visible=False)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    y = list(range(len(rows)))[::-1]
    for position, low, high in zip(y, _clean(list(lows)), _clean(list(highs)), strict=True):
        ax.barh(position, low - base, left=base, height=0.6, color=OKABE_ITO["blue"])
        ax.barh(position, high - base, left=base, height=0.6, color=OKABE_ITO["orange"])
    ax.axvline(base, color="#444444", linewidth=0.9)
    ax.set_yticks(y, list(rows), fontsize=FONT_SIZE - 1)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlabel(x_label, fontsize=FONT_SIZE)
    handles = [
        matplotlib_patch(OKABE_ITO["blue"], legend[0]),
        matplotlib_patch(OKABE_ITO["orange"], legend[1]),
    ]
    ax.legend(handles=handles, loc="lower right", fontsize=FONT_SIZE - 1, frameon=False)
    return Chart(_svg_with_text(figure), alt)


def matplotlib_patch(color: str, label: str) -> object:
    """A legend entry of a filled colour."""
    from matplotlib.patches import Patch

    return Patch(color=color, label=label)


# -- services of the older adults: balance, overlap, the client's services over time ---------


@dataclass(frozen=True)
class BalancePanel:
    """One service of a love plot: the variables and their SMDs before and after weighting."""

    title: str
    variables: tuple[str, ...]
    before: tuple[float | None, ...]
    after: tuple[float | None, ...]


def love_plot(
    *,
    panels: Sequence[BalancePanel],
    labels: dict[str, str],
    alt: str,
    threshold: float = 0.1,
) -> Chart:
    """A love plot as small multiples (one panel per service, three to a row, sharing the
    variables' axis): each variable's standardised mean difference before (open circle) and
    after weighting (filled), with the ±``threshold`` band. A variable a panel lacks (the
    service itself) is left empty there. ``labels``: ``before``, ``after``, ``x``."""
    variables = list(dict.fromkeys(v for p in panels for v in p.variables))
    count = max(len(panels), 1)
    columns = min(count, 3)
    rows = math.ceil(count / columns)
    height = 0.9 + rows * (0.45 + 0.16 * max(len(variables), 1))
    figure = new_figure(width_in=7.5, height_in=height)
    values = [abs(v) for p in panels for v in _clean(list(p.before) + list(p.after))]
    limit = max([threshold * 2] + [v for v in values if math.isfinite(v)])
    y = {name: len(variables) - 1 - i for i, name in enumerate(variables)}
    first_axes = None
    for index, panel in enumerate(panels):
        ax = figure.add_subplot(rows, columns, index + 1, sharey=first_axes)
        first_axes = first_axes or ax
        style_axes(ax)
        ax.grid(axis="y", color="#f0f0f0", linewidth=0.5)
        ax.grid(axis="x", color="#dddddd", linewidth=0.6)
        ax.axvspan(-threshold, threshold, color="#eeeeee", linewidth=0)
        ax.axvline(0.0, color="#444444", linewidth=0.8)
        positions = [y[v] for v in panel.variables]
        ax.scatter(
            _clean(list(panel.before)), positions, facecolors="none",
            edgecolors=OKABE_ITO["orange"], s=18, linewidths=1.1,
            label=labels["before"] if index == 0 else None,
        )  # fmt: skip
        ax.scatter(
            _clean(list(panel.after)), positions, color=OKABE_ITO["blue"], s=14,
            label=labels["after"] if index == 0 else None,
        )  # fmt: skip
        ax.set_yticks(list(y.values()), list(y.keys()), fontsize=FONT_SIZE - 2)
        if index % columns:
            ax.tick_params(axis="y", labelleft=False)
        ax.set_ylim(-0.7, len(variables) - 0.3)
        ax.set_xlim(-limit * 1.1, limit * 1.1)
        ax.set_title(panel.title, fontsize=FONT_SIZE - 2)
        ax.tick_params(axis="x", labelsize=FONT_SIZE - 2)
    figure.supxlabel(labels["x"], fontsize=FONT_SIZE - 1)
    figure.legend(fontsize=FONT_SIZE - 1, loc="outside lower center", ncol=2, frameon=False)
    return Chart(_svg_with_text(figure), alt)


@dataclass(frozen=True)
class OverlapPanel:
    """One service of an overlap chart: histogram bins and the share of the exposed and of
    the unexposed in each."""

    title: str
    lows: tuple[float, ...]
    highs: tuple[float, ...]
    exposed: tuple[float, ...]
    unexposed: tuple[float, ...]


def overlap_chart(*, panels: Sequence[OverlapPanel], labels: dict[str, str], alt: str) -> Chart:
    """Mirrored histograms of the propensity score, one panel per service: the exposed above
    the axis, the unexposed below. ``labels``: ``exposed``, ``unexposed``, ``x``, ``y``."""
    count = max(len(panels), 1)
    columns = 3 if count > 2 else count
    rows = math.ceil(count / columns)
    figure = new_figure(width_in=7.0, height_in=0.8 + 1.8 * rows)
    for index, panel in enumerate(panels):
        ax = figure.add_subplot(rows, columns, index + 1)
        style_axes(ax)
        widths = [h - lo for lo, h in zip(panel.lows, panel.highs, strict=True)]
        first = index == 0
        ax.bar(list(panel.lows), list(panel.exposed), width=widths, align="edge",
               color=OKABE_ITO["blue"], label=labels["exposed"] if first else None)  # fmt: skip
        ax.bar(list(panel.lows), [-v for v in panel.unexposed], width=widths, align="edge",
               color=OKABE_ITO["orange"], label=labels["unexposed"] if first else None)  # fmt: skip
        ax.axhline(0.0, color="#444444", linewidth=0.8)
        ax.set_xlim(0, 1)
        ax.set_title(panel.title, fontsize=FONT_SIZE - 1)
        ax.tick_params(labelsize=FONT_SIZE - 2)
        ticks = ax.get_yticks()
        ax.set_yticks(ticks, [f"{abs(t):.0%}" for t in ticks])
        if index >= count - columns:
            ax.set_xlabel(labels["x"], fontsize=FONT_SIZE - 1)
        if index % columns == 0:
            ax.set_ylabel(labels["y"], fontsize=FONT_SIZE - 1)
    figure.legend(fontsize=FONT_SIZE - 1, loc="outside lower center", ncol=2, frameon=False)
    return Chart(_svg_with_text(figure), alt)
