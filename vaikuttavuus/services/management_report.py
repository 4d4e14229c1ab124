"""The management summary of one pilot, grid period and release: two A4 pages a manager reads
in two minutes (``reports/management.html``), the management page, and the board pack with
both pilots (``reports/board_pack.html``).

Page 1 answers the pilot's declared decision question from the declared primary analysis (BPH:
the adjusted two-arm comparison; older adults: the adjusted differences associated with the
services), says how sure the answer is in calibrated words with the numbers, that the arms or
services were not randomised, and shows the key figures with their intervals, the response
rate and the completeness of the data, and a quarterly trend. Page 2 is the main figure (BPH:
the adjusted acceptability curve; older adults: a forest plot of the adjusted differences) with
its table and plain explanations of the terms. Everything else is in the cohort report.

Management figures come only from **releases** on the **period grid**
(:mod:`vaikuttavuus.domain.periods`): one read of the cohort window, cut into the period and
its quarters; a half-year or year shows a value only when each of its quarters shows it
(:func:`~vaikuttavuus.services.analytics.publication.grid_masked`), and the primary analysis
only when each quarter has none or at least the minimum cell of persons in each compared group
(``docs/privacy.md``). Texts are English msgids translated with Flask-Babel; build everything
inside ``force_locale``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd
from flask_babel import force_locale
from flask_babel import gettext as _

from vaikuttavuus import plotting
from vaikuttavuus.database import AnySession, read_snapshot
from vaikuttavuus.domain.cea import icer_status
from vaikuttavuus.domain.periods import GridPeriod, block_release
from vaikuttavuus.domain.primary_cea import column as primary_column
from vaikuttavuus.models import Pilot
from vaikuttavuus.services.analytics import (
    ALL,
    DEFAULT_SEED,
    CohortAnalysis,
    Filters,
    Published,
)
from vaikuttavuus.services.analytics.publication import grid_masked
from vaikuttavuus.services.analytics.recorded import RecordedRows
from vaikuttavuus.services.cohort_view import (
    Column,
    Figure,
    Labels,
    TableView,
    fmt_count,
    fmt_euro,
    fmt_interval,
    fmt_number,
    fmt_p,
    fmt_probability,
    fmt_signed,
    likelihood_words,
    plain_table_view,
    suppression_note,
)
from vaikuttavuus.services.demo_data import demo_data_present
from vaikuttavuus.services.primary_view import ceac_figure, primary_sentence

LANGUAGES = ("fi", "sv", "en")
TREND_QUARTERS = 5
"""Quarters in the trend: the period's last quarter, the previous one and three before."""
NOT_DUE = "·"
"""A trend cell whose follow-up (or care cycle) is not yet released for that quarter."""


# --------------------------------------------------------------------------------------------
# The analyses of one release
# --------------------------------------------------------------------------------------------


@dataclass
class ReleasedCohort:
    """One pilot in one release: the grid period's analysis and an analysis of each quarter of
    the period and of the trend, all cut from one read of the cohort window."""

    period: GridPeriod
    release: date
    analysis: CohortAnalysis
    quarters: dict[GridPeriod, CohortAnalysis]
    trend: list[GridPeriod]
    requested_time_point: str | None = None
    """The follow-up management chose for the key figures (None: automatic)."""
    _checks: dict[str, bool] = field(default_factory=dict)
    _service_blocks: set[str] | None = None
    """:func:`_service_grid_blocks`, once computed (kept in the management snapshot)."""

    def is_due(self, time_point: str) -> bool:
        """Whether ``time_point`` is released for at least one quarter of the period."""
        close = {t.id: t.window_close_days for t in self.analysis.spec.time_points}[time_point]
        return any(block_release(q.end, close) <= self.release for q in self.period.quarters())

    @property
    def time_point(self) -> str:
        """The follow-up of the key figures: the one management chose; else the declared
        primary time point when it is due for the period; else the latest follow-up that is
        due (so the headline never shows a follow-up nobody could answer yet); else the
        declared one."""
        analysis = self.analysis
        follow_ups = analysis.follow_ups
        if self.requested_time_point is not None and self.requested_time_point in follow_ups:
            return self.requested_time_point
        declared = analysis.primary_plan.time_point
        if declared in follow_ups and self.is_due(declared):
            return declared
        due = [tp for tp in follow_ups if self.is_due(tp)]
        if due:
            return due[-1]
        return declared if declared in follow_ups else follow_ups[-1]

    @property
    def parts(self) -> list[CohortAnalysis]:
        """The analyses of the period's quarters (the period itself when it is a quarter)."""
        return [self.quarters[q] for q in self.period.quarters()]

    def masked(
        self,
        table: Callable[[CohortAnalysis], Published],
        keys: Sequence[str],
        size: Sequence[str] = (),
    ) -> Published:
        """A published table of the period, hidden wherever a quarter hides it (a quarter
        whose ``size`` columns are 0 has no persons in the row and hides nothing)."""
        whole = table(self.analysis)
        if self.period.kind == "Q":
            return whole
        return grid_masked(whole, [table(part) for part in self.parts], keys, size)


def release_window(period: GridPeriod) -> tuple[date, date]:
    """The index dates a period's management summary reads: its trend quarters and itself."""
    trend = period.previous_quarters(TREND_QUARTERS)
    return min(period.start, trend[0].start), period.end


def window_read(
    session: AnySession,
    pilot: Pilot,
    window: tuple[date, date],
    release: date,
    *,
    n_boot: int | None = None,
    seed: int = DEFAULT_SEED,
    imputations: int | None = None,
    recorded: RecordedRows | None = None,
) -> CohortAnalysis:
    """The released analysis of the persons with an index date in ``window`` (read lazily,
    once; :func:`released_cohort` cuts its periods from it). ``recorded``: rows of a larger
    read to cut the window from (:meth:`RecordedRows.within`); None: the window is read."""
    options: dict[str, Any] = {"seed": seed, "imputations": imputations}
    if n_boot is not None:
        options["n_boot"] = n_boot
    rows = recorded.within(window) if recorded is not None else None
    return CohortAnalysis(
        session, pilot, Filters(period=window, release=release), recorded=rows, **options
    )


def released_cohort(
    session: AnySession,
    pilot: Pilot,
    period: GridPeriod,
    release: date,
    *,
    n_boot: int | None = None,
    seed: int = DEFAULT_SEED,
    imputations: int | None = None,
    time_point: str | None = None,
    read: CohortAnalysis | None = None,
) -> ReleasedCohort:
    """The analyses of ``pilot`` for ``period`` in ``release`` (see :class:`ReleasedCohort`);
    ``time_point``: the follow-up of the key figures (None: see
    :attr:`ReleasedCohort.time_point`). ``read``: an analysis of the same release and settings
    whose period covers :func:`release_window` of ``period`` (several periods of one release
    cut from one read of the data, :func:`window_read`); None: the window is read here."""
    trend = period.previous_quarters(TREND_QUARTERS)
    start, end = release_window(period)
    if read is not None:
        window = read.restricted((start, end))
    else:
        window = window_read(
            session, pilot, (start, end), release, n_boot=n_boot, seed=seed, imputations=imputations
        )
    quarters = {q: window.restricted(q.bounds) for q in sorted({*trend, *period.quarters()})}
    analysis = quarters[period] if period.kind == "Q" else window.restricted(period.bounds)
    return ReleasedCohort(period, release, analysis, quarters, trend, time_point)


# --------------------------------------------------------------------------------------------
# Cells of published tables
# --------------------------------------------------------------------------------------------


def _find(table: Published, **match: object) -> int | None:
    for position, record in enumerate(table.records()):
        if all(record.get(k) == v for k, v in match.items()):
            return position
    return None


def _value(
    table: Published,
    position: int | None,
    columns: Sequence[str],
    show: Callable[..., str],
    count: bool = False,
) -> str:
    """A value of a published table as shown: ``<5`` (a small count), ``x`` (hidden so that
    a small count cannot be worked out), ``–`` (nothing), else ``show(*values)``."""
    if position is None:
        return "–"
    if any(table.is_hidden(position, c) for c in columns):
        small = count and table.is_primary(position, columns[0])
        return f"<{table.min_count}" if small else "x"
    values = [table.table[c].iloc[position] for c in columns]
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in values):
        return "–"
    return show(*values)


def _with_interval(value: str, interval: str) -> str:
    return value if interval == "–" else f"{value} ({interval})"


def _percent(value: object) -> str:
    """A share as a whole percentage without the sign (the label says %)."""
    return "–" if value is None else fmt_number(float(value) * 100, 0)  # type: ignore[arg-type]


def _range(low: object, high: object, digits: int) -> str:
    """An interval without units: ``48 … 76`` (the label names the unit)."""
    return fmt_interval(low, high, digits)


# --------------------------------------------------------------------------------------------
# Page 1: key figures, completeness, trend
# --------------------------------------------------------------------------------------------


def _primary_score(analysis: CohortAnalysis) -> str:
    return analysis.primary_plan.outcome


def key_figures(cohort: ReleasedCohort, labels: Labels) -> TableView:
    """The key figures of the period per arm, each with its interval, and the completeness of
    the data (share missing of the primary outcome and of the costs), grid-masked."""
    analysis = cohort.analysis
    arms = [*analysis.arms, ALL]
    score = _primary_score(analysis)
    tp = cohort.time_point
    enrolment = cohort.masked(lambda a: a.enrolment.table, ["arm"], ["enrolled"])
    rates = cohort.masked(
        lambda a: a.response_rates.table, ["arm", "time_point"], ["invited", "open"]
    )
    outcomes = cohort.masked(
        lambda a: a.outcomes.summary, ["arm", "score", "time_point"], ["n_persons"]
    )
    costs = cohort.masked(lambda a: a.costs.by_arm, ["arm"], ["n", "n_missing"])
    has_rule = any(f"{r.instrument}.{r.score}" == score for r in analysis.rules)
    rows: list[dict[str, str]] = []

    def row(label: str, cell: Callable[[str], str]) -> None:
        rows.append({"figure": label, **{arm: cell(arm) for arm in arms}})

    row(
        _("Persons (index date in the period)"),
        lambda arm: _value(enrolment, _find(enrolment, arm=arm), ["enrolled"], fmt_count, True),
    )
    row(
        _("Response rate at %(time_point)s, %% (95%% CI)", time_point=labels.time_point(tp)),
        lambda arm: _value(
            rates,
            _find(rates, arm=arm, time_point=tp),
            ["rate", "ci_low", "ci_high"],
            lambda r, lo, hi: _with_interval(_percent(r), _range(lo * 100, hi * 100, 0)),
        ),
    )
    row(
        _(
            "%(score)s: change by %(time_point)s, points (95%% CI)",
            score=labels.score_short(score),
            time_point=labels.time_point(tp),
        ),
        lambda arm: _value(
            outcomes,
            _find(outcomes, arm=arm, score=score, time_point=tp),
            ["change_mean", "change_ci_low", "change_ci_high"],
            lambda m, lo, hi: _with_interval(fmt_signed(m), _range(lo, hi, 1)),
        ),
    )
    if has_rule:
        row(
            _("Clinically important improvement, %"),
            lambda arm: _value(
                outcomes,
                _find(outcomes, arm=arm, score=score, time_point=tp),
                ["share_responders"],
                _percent,
            ),
        )
    with_costs = any(
        r.get("n") not in (None, 0) or r.get("n_missing") not in (None, 0) for r in costs.records()
    )
    if with_costs:
        row(
            _("Care-cycle cost per person, € (95% CI)"),
            lambda arm: _value(
                costs,
                _find(costs, arm=arm),
                ["mean_eur", "ci_low_eur", "ci_high_eur"],
                lambda m, lo, hi: _with_interval(fmt_number(m, 0), _range(lo, hi, 0)),
            ),
        )
    row(
        _(
            "Missing: %(score)s at %(time_point)s, %%",
            score=labels.score_short(score),
            time_point=labels.time_point(tp),
        ),
        lambda arm: _value(
            outcomes,
            _find(outcomes, arm=arm, score=score, time_point=tp),
            ["share_missing"],
            _percent,
        ),
    )
    if with_costs:
        row(
            _("Missing: care-cycle costs, %"),
            lambda arm: _value(
                costs,
                _find(costs, arm=arm),
                ["n", "n_missing"],
                lambda n, missing: _percent(missing / (n + missing)) if n + missing else "–",
            ),
        )
    return plain_table_view(
        rows,
        [
            Column("figure", _("Key figure"), "text"),
            *[Column(arm, labels.arm(arm), "figure") for arm in arms],
        ],
        _("Key figures and completeness, %(period)s", period=cohort.period.label),
        labels,
        name=None,
        note=_coverage_note(cohort, labels, tp),
    )


def _coverage_note(cohort: ReleasedCohort, labels: Labels, tp: str) -> str:
    """Which index dates the follow-up and the costs cover (the rest are not yet released)."""
    analysis = cohort.analysis
    close = {t.id: t.window_close_days for t in analysis.spec.time_points}[tp]
    covered = [q for q in cohort.period.quarters() if block_release(q.end, close) <= cohort.release]
    if len(covered) == len(cohort.period.quarters()):
        return _(
            "The %(time_point)s follow-up is complete for the whole period.",
            time_point=labels.time_point(tp),
        )
    if not covered:
        return _(
            "The %(time_point)s follow-up of this period is not yet due: its figures come in "
            "a later release.",
            time_point=labels.time_point(tp),
        )
    return _(
        "The %(time_point)s follow-up covers the index dates up to %(date)s; the later ones "
        "are not yet due.",
        time_point=labels.time_point(tp),
        date=_day(covered[-1].end),
    )


def _day(value: date) -> str:
    from flask_babel import format_date

    return str(format_date(value, format="short"))


@dataclass(frozen=True)
class _TrendRow:
    label: str
    kind: str  # count | share | signed | euro
    offset: int | None  # days after the index date when the block is released; None: always
    value: Callable[[CohortAnalysis], tuple[str, float | None]]


def _trend_rows(analysis: CohortAnalysis, labels: Labels, primary_tp: str) -> list[_TrendRow]:
    score = _primary_score(analysis)
    first = analysis.follow_ups[0] if analysis.follow_ups else None
    close = {t.id: t.window_close_days for t in analysis.spec.time_points}
    compared = list(analysis.arms)
    rows: list[_TrendRow] = []

    def count_of(arm: str) -> Callable[[CohortAnalysis], tuple[str, float | None]]:
        def get(part: CohortAnalysis) -> tuple[str, float | None]:
            table = part.enrolment.table
            position = _find(table, arm=arm)
            text = _value(table, position, ["enrolled"], fmt_count, True)
            return text, _number(table, position, "enrolled")

        return get

    for arm in compared:
        rows.append(
            _TrendRow(_("Persons: %(arm)s", arm=labels.arm(arm)), "count", None, count_of(arm))
        )
    if first is not None:

        def rate(part: CohortAnalysis) -> tuple[str, float | None]:
            table = part.response_rates.table
            position = _find(table, arm=ALL, time_point=first)
            return _value(table, position, ["rate"], _percent), _number(table, position, "rate")

        rows.append(
            _TrendRow(
                _("Response rate at %(time_point)s, %%", time_point=labels.time_point(first)),
                "share",
                close[first],
                rate,
            )
        )
    for tp in dict.fromkeys(t for t in (first, primary_tp) if t is not None):
        for arm in compared:

            def change(
                part: CohortAnalysis, arm: str = arm, tp: str = tp
            ) -> tuple[str, float | None]:
                table = part.outcomes.summary
                position = _find(table, arm=arm, score=score, time_point=tp)
                text = _value(table, position, ["change_mean"], fmt_signed)
                return text, _number(table, position, "change_mean")

            rows.append(
                _TrendRow(
                    _(
                        "%(score)s, change by %(time_point)s: %(arm)s",
                        score=labels.score_short(score),
                        time_point=labels.time_point(tp),
                        arm=labels.arm(arm),
                    ),
                    "signed",
                    close[tp],
                    change,
                )
            )
    if analysis.has_procedures:
        for arm in compared:

            def cost(part: CohortAnalysis, arm: str = arm) -> tuple[str, float | None]:
                table = part.costs.by_arm
                position = _find(table, arm=arm)
                return (
                    _value(table, position, ["mean_eur"], lambda v: fmt_number(v, 0)),
                    _number(table, position, "mean_eur"),
                )

            rows.append(
                _TrendRow(
                    _("Care-cycle cost, €: %(arm)s", arm=labels.arm(arm)),
                    "euro",
                    analysis.spec.care_cycle.end_days,
                    cost,
                )
            )
    return rows


def _number(table: Published, position: int | None, column: str) -> float | None:
    if position is None or table.is_hidden(position, column):
        return None
    value = table.table[column].iloc[position]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def _change(kind: str, latest: float | None, previous: float | None) -> str:
    if latest is None or previous is None:
        return "–"
    difference = latest - previous
    if kind == "count":
        return ("+" if difference > 0 else "") + fmt_signed(difference, 0)
    if kind == "share":
        return _(
            "%(points)s %%-points",
            points=("+" if difference > 0 else "") + fmt_signed(difference * 100, 0),
        )
    if kind == "euro":
        return ("+" if difference > 0 else "") + fmt_signed(difference, 0)
    return ("+" if difference > 0 else "") + fmt_signed(difference)


def trend_table(cohort: ReleasedCohort, labels: Labels) -> TableView:
    """The key figures of the last quarters (each quarter published on its own, small cells
    hidden), with the change from the previous quarter."""
    quarters = cohort.trend
    rows = []
    for spec in _trend_rows(cohort.analysis, labels, cohort.time_point):
        record: dict[str, str] = {"figure": spec.label}
        numbers: list[float | None] = []
        for quarter in quarters:
            due = spec.offset is None or block_release(quarter.end, spec.offset) <= cohort.release
            if not due:
                record[quarter.code] = NOT_DUE
                numbers.append(None)
                continue
            text, number = spec.value(cohort.quarters[quarter])
            record[quarter.code] = text
            numbers.append(number)
        record["change"] = _change(spec.kind, numbers[-1], numbers[-2])
        rows.append(record)
    latest, previous = quarters[-1], quarters[-2]
    return plain_table_view(
        rows,
        [
            Column("figure", _("Key figure"), "text"),
            *[Column(q.code, q.label, "figure") for q in quarters],
            Column(
                "change",
                _("%(latest)s vs %(previous)s", latest=latest.label, previous=previous.label),
                "figure",
            ),
        ],
        _("Quarterly trend (persons by the quarter of their index date)"),
        labels,
        name=None,
        note=_(
            "%(dot)s: follow-up or care cycle not yet due. Each quarter is shown on its own, "
            "with small groups hidden.",
            dot=NOT_DUE,
        ),
    )


# --------------------------------------------------------------------------------------------
# The answer (BPH: two arms; older adults: services)
# --------------------------------------------------------------------------------------------


def _quarter_of(analysis: CohortAnalysis) -> pd.Series:
    """Per enrolment id, the code of its index-date quarter."""
    roster = analysis.roster.set_index("enrolment_id")["index_date"]
    return roster.dt.to_period("Q").astype(str)


def grid_allows(counts: pd.DataFrame, min_cell: int) -> bool:
    """Whether every count (one row per quarter and group) is 0 or at least ``min_cell``: then
    any two outputs on the grid differ in each group by none or at least ``min_cell``
    persons."""
    values = counts.to_numpy(dtype=float)
    return bool(np.all((values == 0) | (values >= min_cell)))


def primary_counts(analysis: CohortAnalysis) -> pd.DataFrame:
    """Per index-date quarter and compared arm (``treat``): the persons analysed in the primary
    analysis (``n``), those with the primary outcome (``outcome``) and those with costs
    (``cost``)."""
    frame = analysis.primary_frame
    plan = analysis.primary_plan
    quarter = _quarter_of(analysis).reindex(frame.index)
    observed = frame[primary_column(plan.outcome, plan.time_point)].notna()
    costed = frame["cost"].notna()
    counts = pd.DataFrame(
        {
            "quarter": quarter.to_numpy(),
            "treat": frame["treat"].to_numpy(),
            "n": 1,
            "outcome": observed.astype(int).to_numpy(),
            "cost": costed.astype(int).to_numpy(),
        }
    )
    return counts.groupby(["quarter", "treat"])[["n", "outcome", "cost"]].sum()


def primary_allowed(cohort: ReleasedCohort) -> bool:
    """The two-arm primary analysis is shown only when, in each quarter of the period, each arm
    has none or at least the minimum cell of persons analysed, of persons with the primary
    outcome and of persons with costs."""
    key = "primary"
    if key not in cohort._checks:
        analysis = cohort.analysis
        cohort._checks[key] = analysis.primary_plan.comparison is None or grid_allows(
            primary_counts(analysis), analysis.min_cell
        )
    return cohort._checks[key]


def answer(cohort: ReleasedCohort, labels: Labels) -> dict[str, Any]:
    """The plain-language answer to the declared question, how sure it is, and the caveat."""
    analysis = cohort.analysis
    declared = analysis.spec.analysis.question
    # both pilots declare their question; a spec without one fails here as it always did
    assert declared is not None, "the pilot's analysis declares no question"
    question = declared.get(labels.language)
    if analysis.primary is not None:
        return _two_arm_answer(cohort, labels, question)
    return _service_answer(cohort, labels, question)


def _grid_reason(min_cell: int) -> str:
    return _(
        "Not shown for this period: in one of its quarters a compared group has fewer than "
        "%(n)s persons (analysed, with the outcome or with costs), and showing the period "
        "would let that quarter be worked out. The quarters are shown in the trend.",
        n=min_cell,
    )


def _two_arm_answer(cohort: ReleasedCohort, labels: Labels, question: str) -> dict[str, Any]:
    analysis = cohort.analysis
    result = analysis.primary
    assert result is not None
    view: dict[str, Any] = {"question": question, "sentence": None, "sure": None, "caveat": None}
    if result.available and not primary_allowed(cohort):
        view["sentence"] = _grid_reason(analysis.min_cell)
        return view
    view["sentence"] = primary_sentence(analysis, labels)
    if not result.available:
        return view
    lam = float(analysis.spec.willingness_to_pay("improvement").reference)
    probability = result.probability_at("improvement", lam)[0]
    effect = result.pair("improvement")
    cost = result.pair("cost")
    if probability is not None and effect is not None and cost is not None:
        view["sure"] = _(
            "How sure: %(likelihood)s — in %(share)s of %(n)s bootstrap replicates of the "
            "adjusted analysis %(other)s gives the larger net benefit at %(wtp)s per point.",
            likelihood=likelihood_words(probability),
            n=fmt_count(result.replicates.n_boot if result.replicates else analysis.n_boot),
            share=fmt_probability(probability),
            other=labels.arm(result.other),
            wtp=fmt_euro(lam),
        )
    return view


# -- older adults: the services ------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceRow:
    category: str
    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    p_adjusted: float | None
    n_exposed: str
    hidden: bool


def _service_section(analysis: CohortAnalysis) -> Any:
    """The primary question's services section, or None when the services analysis fails on
    the period's data (a small period can leave a model without the degrees of freedom it
    needs; the summary then says the services cannot be estimated instead of failing)."""
    try:
        with warnings.catch_warnings():
            # a quarter with no comparable clients gives empty means (NaN, then hidden)
            warnings.simplefilter("ignore", RuntimeWarning)
            return analysis.services(analysis.primary_service_score, "service_type")
    except (ZeroDivisionError, FloatingPointError, np.linalg.LinAlgError):
        return None


def service_rows(cohort: ReleasedCohort) -> tuple[list[ServiceRow], int, str | None]:
    """The declared primary question of the services: the adjusted (doubly robust) difference
    associated with each service type in the primary score at the primary time point, with
    its interval and multiplicity-adjusted p, grid-checked (a service whose exposed or
    unexposed clients in some quarter of the period are neither none nor at least the minimum
    cell is hidden): (rows, the number of secondary comparisons, an error)."""
    analysis = cohort.analysis
    section = _service_section(analysis)
    if section is None:
        return [], 0, "not_estimable"
    if section.error is not None:
        return [], section.n_secondary, section.error
    blocked = _service_grid_blocks(cohort)
    rows = []
    estimates = section.estimates
    for position, record in enumerate(estimates.records()):
        if record["method"] != "aipw" or record["time_point"] != section.primary_time_point:
            continue
        hidden = (
            estimates.is_hidden(position, "estimate")
            or record["estimate"] is None
            or record["category"] in blocked
        )
        if estimates.is_primary(position, "n_exposed"):
            exposed = f"<{estimates.min_count}"
        elif estimates.is_hidden(position, "n_exposed") or record["category"] in blocked:
            exposed = "x"
        else:
            exposed = fmt_count(record["n_exposed"])
        rows.append(
            ServiceRow(
                record["category"],
                None if hidden else record["estimate"],
                None if hidden else record["ci_low"],
                None if hidden else record["ci_high"],
                None if hidden else record.get("p_adjusted"),
                exposed,
                hidden,
            )
        )
    return rows, section.n_secondary, None


def _service_grid_blocks(cohort: ReleasedCohort) -> set[str]:
    """Service types whose clients in some quarter of the period — exposed or unexposed among
    those due at the primary time point, and among those who answered — are neither none nor
    at least the minimum cell (their estimate is then not shown). Counted from the analysis'
    own input (who is due, who answered, who was exposed), so no model is fitted per quarter.
    Computed once per cohort."""
    if cohort._service_blocks is None:
        cohort._service_blocks = _count_service_grid_blocks(cohort)
    return cohort._service_blocks


def _count_service_grid_blocks(cohort: ReleasedCohort) -> set[str]:
    analysis = cohort.analysis
    data = analysis.attribution_input("service_type")
    follow_up = next(
        (f for f in data.follow_ups if f.time_point == analysis.primary_time_point), None
    )
    if follow_up is None:
        return set()
    index = analysis.roster.set_index("enrolment_id")["index_date"]
    quarter = index.reindex(data.person_ids).dt.to_period("Q").astype(str).to_numpy()
    answers = follow_up.outcomes.get(analysis.primary_service_score)
    answered = (
        ~np.isnan(np.asarray(answers, dtype=float))
        if answers is not None
        else np.zeros(len(data.person_ids), dtype=bool)
    )
    exposed = np.asarray(follow_up.exposure.exposed, dtype=float) == 1
    blocked: set[str] = set()
    for column, category in enumerate(data.categories):
        groups = {}
        for name, rows in (("due", follow_up.due), ("answered", follow_up.due & answered)):
            groups[f"{name}_exposed"] = rows & exposed[:, column]
            groups[f"{name}_unexposed"] = rows & ~exposed[:, column]
        counts = pd.DataFrame({k: v.astype(int) for k, v in groups.items()}).groupby(quarter).sum()
        if not grid_allows(counts, analysis.min_cell):
            blocked.add(category)
    return blocked


def _service_answer(cohort: ReleasedCohort, labels: Labels, question: str) -> dict[str, Any]:
    """The primary question of the services in plain words (the service with the largest
    adjusted difference in the good direction among those clearly different from 0 after the
    multiplicity adjustment), how sure, and the caveats."""
    from vaikuttavuus.services.cohort_view import service_caveats

    analysis = cohort.analysis
    view: dict[str, Any] = {"question": question, "sentence": None, "sure": None, "caveat": None}
    if not analysis.has_services or not analysis.service_scores:
        return view
    section = _service_section(analysis)
    rows, secondary, error = service_rows(cohort)
    score = labels.score(analysis.primary_service_score)
    time_point = labels.time_point(analysis.primary_time_point)
    shown = [r for r in rows if r.estimate is not None]
    more = _(
        "%(n)s secondary comparisons (other outcomes and follow-ups) are on the pilot page.",
        n=secondary,
    )
    if section is None or error is not None or not shown:
        view["sentence"] = _(
            "Primary question (%(score)s at %(time_point)s by service): too few clients "
            "received each service to estimate it.",
            score=score,
            time_point=time_point,
        )
        return view
    sign = 1.0 if section.direction == "lower_is_better" else -1.0
    clear = [
        r
        for r in shown
        if r.p_adjusted is not None and r.p_adjusted < 0.05 and sign * float(r.estimate or 0) < 0
    ]
    if clear:
        best = min(clear, key=lambda r: sign * float(r.estimate or 0.0))
        view["sentence"] = (
            _(
                "Primary question (%(score)s at %(time_point)s by service): the largest "
                "adjusted difference associated with a service was %(estimate)s points for "
                "%(service)s (95%% CI %(interval)s; adjusted p %(p)s) compared with comparable "
                "clients without it; %(n)s of %(total)s services differed clearly from 0. "
                "Services were not randomised, so the differences may reflect who receives "
                "them.",
                score=score,
                time_point=time_point,
                service=labels.category(best.category, "service_type"),
                estimate=fmt_signed(best.estimate, 2),
                interval=fmt_interval(best.ci_low, best.ci_high, 2),
                p=fmt_p(best.p_adjusted),
                n=len(clear),
                total=len(shown),
            )
            + " "
            + more
        )
    else:
        best = min(shown, key=lambda r: sign * float(r.estimate or 0.0))
        view["sentence"] = (
            _(
                "Primary question (%(score)s at %(time_point)s by service): no service's "
                "adjusted difference was clearly different from 0 after adjusting for "
                "multiple comparisons.",
                score=score,
                time_point=time_point,
            )
            + " "
            + more
        )
    probability = _probability_of_reduction(best, section.direction == "lower_is_better")
    if probability is not None:
        view["sure"] = _(
            "How sure: it is %(likelihood)s that clients with %(service)s had a larger "
            "reduction than comparable clients without it (from the estimate and its "
            "interval, before the adjustment for multiple comparisons).",
            likelihood=likelihood_words(probability),
            service=labels.category(best.category),
        )
    caveats = service_caveats(analysis, labels)
    view["caveat"] = caveats[0] if caveats else None
    return view


def _probability_of_reduction(row: ServiceRow, lower: bool) -> float | None:
    """P(the difference is on the side of a reduction) from the estimate and its 95 %
    interval (normal approximation), kept inside [0.001, 0.999]."""
    from scipy.stats import norm

    if row.estimate is None or row.ci_low is None or row.ci_high is None:
        return None
    se = (row.ci_high - row.ci_low) / (2 * 1.959964)
    if se <= 0:
        return None
    z = row.estimate / se
    value = float(norm.cdf(-z) if lower else norm.cdf(z))
    return min(max(value, 0.001), 0.999)


# --------------------------------------------------------------------------------------------
# Page 2: the main figure, its table, and what the terms mean
# --------------------------------------------------------------------------------------------


def main_figure(cohort: ReleasedCohort, labels: Labels) -> Figure | None:
    """BPH: the adjusted acceptability curve per point of the primary score (the effect of
    the answer); older adults: a forest plot of the adjusted differences by service type."""
    analysis = cohort.analysis
    if analysis.primary is not None:
        result = analysis.primary
        if not result.available or not primary_allowed(cohort):
            return None
        return ceac_figure(analysis, labels, "improvement")
    if not analysis.has_services:
        return None
    rows, _secondary, error = service_rows(cohort)
    if error is not None or not rows:
        return None
    score = analysis.primary_service_score
    tp = analysis.primary_time_point
    shown = [r for r in rows if r.estimate is not None]
    table = plain_table_view(
        [
            {
                "service": labels.category(r.category),
                "n": r.n_exposed,
                "difference": "x" if r.estimate is None else fmt_signed(r.estimate, 2),
                "interval": "x" if r.estimate is None else fmt_interval(r.ci_low, r.ci_high, 2),
                "p": "x" if r.estimate is None else fmt_p(r.p_adjusted),
            }
            for r in rows
        ],
        [
            Column("service", _("Service"), "text"),
            Column("n", _("Clients with the service"), "figure"),
            Column("difference", _("Adjusted difference (points)"), "figure"),
            Column("interval", _("95% CI"), "figure"),
            Column(
                "p",
                _("BH q-value (FDR)")
                if analysis.spec.analysis.multiplicity == "bh"
                else _("Holm-adjusted p"),
                "figure",
            ),
        ],
        _(
            "Adjusted difference associated with the service: %(score)s by %(time_point)s",
            score=labels.score(score),
            time_point=labels.time_point(tp),
        ),
        labels,
        name=None,
        note=_("Negative values mean a larger reduction than without the service."),
    )
    if not shown:
        return None
    names = [labels.category(r.category) for r in shown]
    chart = plotting.forest_chart(
        rows=names,
        estimates=[float(r.estimate) for r in shown],  # type: ignore[arg-type]
        lows=[float(r.ci_low) for r in shown],  # type: ignore[arg-type]
        highs=[float(r.ci_high) for r in shown],  # type: ignore[arg-type]
        x_label=_("Adjusted difference, %(score)s (points)", score=labels.score_short(score)),
        alt=_(
            "Forest plot of the adjusted differences associated with each service in "
            "%(score)s by %(time_point)s: %(values)s",
            score=labels.score(score),
            time_point=labels.time_point(tp),
            values="; ".join(
                f"{name} {fmt_signed(r.estimate, 2)} ({fmt_interval(r.ci_low, r.ci_high, 2)})"
                for name, r in zip(names, shown, strict=True)
            ),
        ),
    )
    return Figure(
        chart,
        _("Adjusted differences associated with the services (95% CI)"),
        table,
    )


def explanations(cohort: ReleasedCohort, labels: Labels) -> list[tuple[str, str]]:
    """Plain explanations of the terms on the pages, with this period's numbers: BPH the ICER,
    the net monetary benefit and the probability of cost-effectiveness at the declared
    willingness to pay (and where that value comes from) — the same effect and value as the
    answer; older adults the adjusted difference and its interval."""
    analysis = cohort.analysis
    result = analysis.primary
    if result is None:
        return _service_explanations(cohort, labels)
    if not result.available or not primary_allowed(cohort):
        return []
    declared = analysis.spec.willingness_to_pay("improvement")
    lam = float(declared.reference)
    effect = result.pair("improvement")
    cost = result.pair("cost")
    inmb = result.inmb_at("improvement", lam)
    probability = result.probability_at("improvement", lam)[0]
    if effect is None or cost is None or inmb is None or effect.adjusted.estimate is None:
        return []
    delta_e = float(effect.adjusted.estimate)
    delta_c = float(cost.adjusted.estimate or 0.0)
    other, reference = labels.arm(result.other), labels.arm(result.reference)
    status = icer_status(delta_c, delta_e)
    if status == "dominates":
        icer = _(
            "%(other)s is both cheaper and at least as effective (it dominates), so no ratio "
            "is needed.",
            other=other,
        )
    elif status == "dominated":
        icer = _(
            "%(other)s costs more and is not more effective (it is dominated), so no ratio "
            "is needed.",
            other=other,
        )
    elif status == "SW":
        icer = _(
            "%(other)s saves %(amount)s for each point of improvement given up compared with "
            "%(reference)s (%(saving)s less cost, %(points)s points less improvement).",
            other=other,
            reference=reference,
            amount=fmt_euro(delta_c / delta_e),
            saving=fmt_euro(-delta_c),
            points=fmt_number(-delta_e, 1),
        )
    elif status == "NE":
        icer = _(
            "Each extra point of improvement with %(other)s costs %(amount)s compared with "
            "%(reference)s.",
            other=other,
            reference=reference,
            amount=fmt_euro(delta_c / delta_e),
        )
    else:
        icer = _("The arms cost the same and improve the same: no ratio.")
    source = declared.source.get(labels.language)
    return [
        (
            _("ICER (incremental cost-effectiveness ratio)"),
            _(
                "The difference in cost divided by the difference in effect: what one more "
                "point of improvement costs. %(icer)s A ratio cannot say how sure we are; the "
                "net benefit and the probability below can.",
                icer=icer,
            ),
        ),
        (
            _("INMB (incremental net monetary benefit)"),
            _(
                "The difference in improvement valued in euros at the willingness to pay, minus "
                "the difference in cost: %(wtp)s × %(points)s − (%(cost)s) = %(inmb)s per "
                "patient (95%% CI %(interval)s). Above zero means %(other)s gives more value "
                "for the money.",
                wtp=fmt_euro(lam),
                points=fmt_signed(delta_e, 2),
                cost=fmt_euro(delta_c),
                inmb=fmt_euro(inmb.adjusted.estimate),
                interval=fmt_interval(inmb.adjusted.ci_low, inmb.adjusted.ci_high, 0, "euro"),
                other=other,
            ),
        ),
        (
            _("Probability of cost-effectiveness"),
            _(
                "The share of the bootstrap replicates in which the net benefit at %(wtp)s per "
                "point is above zero: %(probability)s, i.e. %(likelihood)s — the same result "
                "as in the answer. The curve shows it for other values; it is never shown as "
                "0 %% or 100 %%, because a finite number of replicates cannot tell that.",
                wtp=fmt_euro(lam),
                probability=fmt_probability(probability),
                likelihood=_likelihood_word(probability),
            ),
        ),
        (
            _("Willingness to pay %(wtp)s per point", wtp=fmt_euro(lam)),
            _("Where the value comes from: %(source)s", source=source),
        ),
    ]


def _likelihood_word(probability: float | None) -> str:
    if probability is None:
        return "–"
    text = likelihood_words(probability)
    return text.split(" (")[0] if " (" in text else text


def _service_explanations(cohort: ReleasedCohort, labels: Labels) -> list[tuple[str, str]]:
    if not cohort.analysis.has_services:
        return []
    return [
        (
            _("Adjusted difference associated with the service"),
            _(
                "How much higher (negative: lower) the score was in clients who used the "
                "service than in comparable clients who did not, after taking into account how "
                "the clients differed at the start (the confounders declared for the pilot)."
            ),
        ),
        (
            _("95% CI (confidence interval)"),
            _(
                "The range of differences that fit the data; an interval entirely below zero "
                "points to a reduction, one that crosses zero leaves the direction open."
            ),
        ),
        (
            _("Primary and secondary comparisons"),
            _(
                "The pilot declared one primary question in advance (this outcome and time "
                "point); the other outcomes are secondary comparisons, to be read as "
                "exploratory."
            ),
        ),
    ]


# --------------------------------------------------------------------------------------------
# The whole summary: page, PDF, board pack
# --------------------------------------------------------------------------------------------


def management_context(cohort: ReleasedCohort, language: str) -> dict[str, Any]:
    """Everything the management page and ``reports/management.html`` show for one pilot
    (call inside ``force_locale``)."""
    labels = Labels(cohort.analysis, language)
    return {
        "labels": labels,
        "pilot_code": cohort.analysis.pilot.code,
        "pilot_name": labels.pilot,
        "period": cohort.period,
        "release": cohort.release,
        "min_cell_size": cohort.analysis.min_cell,
        "time_point": cohort.time_point,
        "time_points": [
            (tp, labels.time_point(tp), cohort.is_due(tp)) for tp in cohort.analysis.follow_ups
        ],
        "time_point_chosen": cohort.requested_time_point in cohort.analysis.follow_ups,
        "answer": answer(cohort, labels),
        "key_figures": key_figures(cohort, labels),
        "trend": trend_table(cohort, labels),
        "figure": main_figure(cohort, labels),
        "figure_heading": _("Cost-effectiveness")
        if cohort.analysis.primary is not None
        else _("Loneliness by service"),
        "explanations": explanations(cohort, labels),
        "note": suppression_note(cohort.analysis.min_cell),
        "release_note": _(
            "Release of %(date)s: the data as they stood at the end of that quarter; figures "
            "of a quarter are frozen when they are released and never change afterwards.",
            date=_day(cohort.release),
        ),
    }


def management_summary(
    session: AnySession,
    pilot: Pilot,
    period: GridPeriod,
    release: date,
    language: str,
    *,
    n_boot: int | None = None,
    seed: int = DEFAULT_SEED,
    imputations: int | None = None,
    time_point: str | None = None,
) -> dict[str, Any]:
    """The context of one pilot's management summary in ``language``; ``time_point``: the
    follow-up of the key figures (None: automatic, see :attr:`ReleasedCohort.time_point`)."""
    if language not in LANGUAGES:
        raise ValueError(f"unknown language '{language}'")
    cohort = released_cohort(
        session,
        pilot,
        period,
        release,
        n_boot=n_boot,
        seed=seed,
        imputations=imputations,
        time_point=time_point,
    )
    with force_locale(language):
        return management_context(cohort, language)


def _document(session: AnySession) -> dict[str, Any]:
    return {"generated_at": datetime.now(UTC), "demo_data": demo_data_present(session)}


def render_management_pdf(
    session: AnySession,
    pilot: Pilot,
    period: GridPeriod,
    release: date,
    language: str,
    *,
    n_boot: int | None = None,
    seed: int = DEFAULT_SEED,
    time_point: str | None = None,
) -> bytes:
    """The management summary PDF of ``pilot`` (at most two A4 pages)."""
    from vaikuttavuus.pdf import render_pdf

    with read_snapshot(session):  # every figure from one moment of the data
        context = management_summary(
            session, pilot, period, release, language, n_boot=n_boot, seed=seed,
            time_point=time_point,
        )  # fmt: skip
        document = _document(session)
    return render_pdf("management.html", language, pilots=[context], period=period, **document)


def render_board_pack(
    session: AnySession,
    pilots: Sequence[Pilot],
    period: GridPeriod,
    release: date,
    language: str,
    *,
    n_boot: int | None = None,
    seed: int = DEFAULT_SEED,
) -> bytes:
    """The board pack: every pilot's two pages in one PDF, for the steering group."""
    from vaikuttavuus.pdf import render_pdf

    with read_snapshot(session):  # every pilot from the same moment of the data
        contexts = [
            management_summary(session, pilot, period, release, language, n_boot=n_boot, seed=seed)
            for pilot in pilots
        ]
        document = _document(session)
    return render_pdf(
        "management.html",
        language,
        pilots=contexts,
        period=period,
        board_pack=True,
        **document,
    )
