"""Disclosure control across periods (issue 16, item 1; docs/privacy.md): no count or figure
of fewer than ``min_cell_size`` persons can be recovered by differencing any management
outputs — any grid periods, nested or adjacent, any combination — and a release never changes
afterwards, whatever is recorded later.

The synthetic data set of both pilots; the management outputs of every released period are
the grid-masked tables of the management summary (enrolment, response rates, outcomes, costs),
the primary analysis' persons per quarter and arm, and the services' exposed persons.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from flask import Flask
from sqlalchemy import delete, select, text, update

from tests.support.cohort_data import TODAY, cohort_app, cohort_template  # noqa: F401
from vaikuttavuus import queries
from vaikuttavuus.domain.periods import (
    GridPeriod,
    release_date,
    released_periods,
)
from vaikuttavuus.extensions import db
from vaikuttavuus.models import (
    ClinicalMeasurement,
    CostItem,
    Enrolment,
    Invitation,
    Pilot,
    Response,
    ServiceExposure,
)
from vaikuttavuus.services.analytics import CohortAnalysis, Filters, Published
from vaikuttavuus.services.management_report import (
    ReleasedCohort,
    grid_allows,
    primary_allowed,
    primary_counts,
)

N_BOOT = 200


@dataclass(frozen=True)
class TableSpec:
    name: str
    get: Callable[[CohortAnalysis], Published]
    keys: tuple[str, ...]
    size: tuple[str, ...]
    counts: tuple[str, ...]
    totals: tuple[tuple[str, str], ...] = ()
    """(mean column, its count column): mean × n is a sum over persons."""


TABLES = (
    TableSpec("enrolment", lambda a: a.enrolment.table, ("arm",), ("enrolled",), ("enrolled",)),
    TableSpec(
        "response_rates",
        lambda a: a.response_rates.table,
        ("arm", "time_point"),
        ("invited", "open"),
        ("invited", "responded"),
    ),
    TableSpec(
        "outcomes",
        lambda a: a.outcomes.summary,
        ("arm", "score", "time_point"),
        ("n_persons",),
        ("n_persons", "n", "n_responders"),
        (("change_mean", "n"), ("follow_up_mean", "n_follow_up")),
    ),
    TableSpec(
        "costs",
        lambda a: a.costs.by_arm,
        ("arm",),
        ("n", "n_missing"),
        ("n", "n_missing"),
        (("mean_eur", "n"),),
    ),
)


def pilot(code: str) -> Pilot:
    found = queries.pilot_by_code(db.session, code)
    assert found is not None
    return found


class Release:
    """Every released period of one pilot, cut from one read (as the summary cuts them)."""

    def __init__(self, code: str, release: date) -> None:
        self.release = release
        self.pilot = pilot(code)
        first = queries.first_index_date(db.session, [self.pilot.id])
        self.periods = released_periods(first, release)
        quarters = sorted({q for p in self.periods for q in p.quarters()})
        self.window = CohortAnalysis(
            db.session,
            self.pilot,
            Filters(period=(quarters[0].start, quarters[-1].end), release=release),
            n_boot=N_BOOT,
        )
        self.quarters = {q: self.window.restricted(q.bounds) for q in quarters}
        self.cohorts: dict[GridPeriod, ReleasedCohort] = {}

    def cohort(self, period: GridPeriod) -> ReleasedCohort:
        if period not in self.cohorts:
            analysis = (
                self.quarters[period]
                if period.kind == "Q"
                else self.window.restricted(period.bounds)
            )
            self.cohorts[period] = ReleasedCohort(
                period, self.release, analysis, self.quarters, period.quarters()
            )
        return self.cohorts[period]

    def cells(self, period: GridPeriod) -> dict[tuple[Any, ...], float]:
        """Every count and every sum (mean × n) management sees for ``period``."""
        cohort = self.cohort(period)
        found: dict[tuple[Any, ...], float] = {}
        for spec in TABLES:
            table = cohort.masked(spec.get, spec.keys, spec.size)
            for position, record in enumerate(table.records()):
                key = tuple(record[k] for k in spec.keys)
                for column in spec.counts:
                    if column in record and not _hidden(table, position, column, record):
                        found[(spec.name, key, column)] = float(record[column])
                for mean, count in spec.totals:
                    if any(_hidden(table, position, c, record) for c in (mean, count)):
                        continue
                    if record.get(mean) is not None and record.get(count) is not None:
                        found[(spec.name, key, f"{mean}*{count}")] = float(record[mean]) * float(
                            record[count]
                        )
        return found


def _hidden(table: Published, position: int, column: str, record: dict[str, Any]) -> bool:
    return table.is_hidden(position, column) or record.get(column) is None


@pytest.fixture
def releases(cohort_app: Flask) -> dict[str, Release]:  # noqa: F811
    release = release_date(TODAY)
    return {code: Release(code, release) for code in ("bph", "older-adults")}


def _small(value: float, k: int) -> bool:
    return 0 < abs(round(value, 6)) < k


def test_every_longer_period_shows_only_sums_of_what_its_quarters_show(
    releases: dict[str, Release],
) -> None:
    """The invariant behind the guarantee: a half-year or year shows a count or a sum only
    when each of its quarters shows it (or has nobody in that cell), and it is their sum. So
    everything the longer periods show follows from the quarters, which are disjoint groups of
    persons each published with primary and secondary suppression: no combination of outputs
    (pairs, Y − H1 − Q3, …) recovers a cell the quarters hide."""
    checked = shown = 0
    for release in releases.values():
        for period in release.periods:
            if period.kind == "Q":
                continue
            cells = release.cells(period)
            parts = [release.cells(q) for q in period.quarters()]
            for key, value in cells.items():
                spec = next(s for s in TABLES if s.name == key[0])
                part_values = []
                for part, quarter in zip(parts, period.quarters(), strict=True):
                    if key in part:
                        part_values.append(part[key])
                        continue
                    # not shown in this quarter: it must have nobody in the cell
                    table = spec.get(release.quarters[quarter])
                    rows = [r for r in table.records() if tuple(r[k] for k in spec.keys) == key[1]]
                    assert all(all(r.get(s) == 0 for s in spec.size) for r in rows), (
                        f"{period} shows {key} while {quarter} hides it"
                    )
                    part_values.append(0.0)
                assert value == pytest.approx(sum(part_values), rel=1e-9, abs=1e-6), key
                checked += 1
            shown += len(cells)
    assert checked > 100 and shown > 100  # not vacuous


def test_no_pair_or_triple_of_outputs_differs_by_fewer_than_the_minimum_cell(
    releases: dict[str, Release],
) -> None:
    """The audit's attack on the grid: every nested pair of released periods (a year and its
    half-years and quarters, a half-year and its quarters), and every period minus two disjoint
    periods inside it; the difference of any count both show is 0 or at least min_cell_size
    persons, and so is the count behind any sum (mean × n) both show."""
    compared = 0
    for release in releases.values():
        k = release.window.min_cell
        cells = {p: release.cells(p) for p in release.periods}
        for outer, inner in _nested(release.periods):
            for key, value in cells[outer].items():
                if key in cells[inner] and "*" not in key[2]:
                    difference = value - cells[inner][key]
                    assert not _small(difference, k), (outer, inner, key, difference)
                    compared += 1
                if key in cells[inner] and "*" in key[2]:
                    count_key = (key[0], key[1], key[2].split("*")[1])
                    if count_key in cells[outer] and count_key in cells[inner]:
                        persons = cells[outer][count_key] - cells[inner][count_key]
                        assert not _small(persons, k), (outer, inner, key, persons)
        for outer in release.periods:
            inside = [p for p in release.periods if p != outer and outer.contains(p)]
            for first, second in itertools.combinations(inside, 2):
                if first.contains(second) or second.contains(first):
                    continue
                for key, value in cells[outer].items():
                    if "*" in key[2] or key not in cells[first] or key not in cells[second]:
                        continue
                    rest = value - cells[first][key] - cells[second][key]
                    assert not _small(rest, k), (outer, first, second, key, rest)
                    compared += 1
    assert compared > 100


def _nested(periods: list[GridPeriod]) -> Iterator[tuple[GridPeriod, GridPeriod]]:
    for outer in periods:
        for inner in periods:
            if outer != inner and outer.contains(inner):
                yield outer, inner


def test_the_primary_analysis_and_the_services_differ_by_whole_groups(
    releases: dict[str, Release],
) -> None:
    """The headline estimates are not sums, so they are shown only when every quarter of the
    period has none or at least min_cell_size persons per arm (analysed, with the outcome, with
    costs) or per service (exposed, unexposed): any two shown periods then differ by none or at
    least that many persons in each group."""
    bph = releases["bph"]
    k = bph.window.min_cell
    counts = {}
    for period in bph.periods:
        cohort = bph.cohort(period)
        if primary_allowed(cohort):
            table = primary_counts(cohort.analysis)
            counts[period] = table.groupby(level="treat").sum()
            assert grid_allows(table, k)
    for outer, inner in _nested(list(counts)):
        difference = counts[outer].sub(counts[inner], fill_value=0).to_numpy()
        assert not np.any((difference > 0) & (difference < k)), (outer, inner)
    older = releases["older-adults"]
    from vaikuttavuus.services.management_report import service_rows

    exposed: dict[GridPeriod, dict[str, int]] = {}
    for period in older.periods:
        rows, _secondary, error = service_rows(older.cohort(period))
        if error is None:
            exposed[period] = {r.category: int(r.n_exposed) for r in rows if not r.hidden}
    for outer, inner in _nested(list(exposed)):
        for category, n in exposed[outer].items():
            if category in exposed[inner]:
                assert not _small(n - exposed[inner][category], k), (outer, inner, category)


def _cells_of(code: str, release: date, period: GridPeriod) -> dict[tuple[Any, ...], float]:
    return Release(code, release).cells(period)


def test_a_release_never_changes_whatever_is_recorded_afterwards(
    cohort_app: Flask,  # noqa: F811
) -> None:
    """Requests on different days see the same release: the figures of an earlier release are
    the same after everything recorded since its date is removed (late answers, costs,
    services, enrolments) — and each quarter's blocks, once released, are the same in a later
    release."""
    latest = release_date(TODAY)
    earlier = release_date(latest)  # the release a quarter before
    bph = Release("bph", earlier)
    periods = [p for p in bph.periods if p.kind in ("Y", "Q")][:6]
    before = {p: bph.cells(p) for p in periods}
    counts_before = {p: primary_counts(bph.cohort(p).analysis) for p in periods}
    cutoff = datetime.combine(earlier + timedelta(days=1), time(0), ZoneInfo("Europe/Helsinki"))
    cutoff_utc = cutoff.astimezone(UTC)
    removed = 0
    for model, column in (
        (Response, Response.submitted_at),
        (CostItem, CostItem.created_at),
        (ServiceExposure, ServiceExposure.created_at),
    ):
        result = db.session.execute(delete(model).where(column >= cutoff_utc))
        removed += result.rowcount or 0
    late_people = db.session.scalars(
        select(Enrolment.id).where(Enrolment.created_at >= cutoff_utc)
    ).all()
    db.session.commit()
    assert removed > 0 or late_people
    again = Release("bph", earlier)
    for period in periods:
        assert again.cells(period) == before[period], period
        pd.testing.assert_frame_equal(
            primary_counts(again.cohort(period).analysis), counts_before[period]
        )
    # a quarter's released blocks are frozen: the later release shows them unchanged
    later = Release("bph", latest)
    for quarter in (p for p in periods if p.kind == "Q"):
        old = bph.quarters[quarter].enrolment.table.records()
        new = later.quarters[quarter].enrolment.table.records()
        assert old == new, quarter


def test_the_management_page_and_pdfs_refuse_periods_off_the_grid(
    cohort_app: Flask,  # noqa: F811
) -> None:
    """The audit's request (`?to=…` one day apart) gets a message instead of figures; so do
    periods off the grid and periods not yet released; filters management has no business with
    (arm, unit, time point) change nothing."""
    from tests.conftest import PASSWORD, login
    from tests.support.isolation import fresh_globals_per_request
    from vaikuttavuus.services.users import create_user

    fresh_globals_per_request(cohort_app)
    create_user(db.session, username="johtaja", password=PASSWORD, role="management")
    db.session.commit()
    client = cohort_app.test_client()
    assert login(client, "johtaja").status_code == 302
    first = client.get("/management/?pilot=bph&to=2025-03-06&lang=en")
    second = client.get("/management/?pilot=bph&to=2025-03-07&lang=en")
    for response in (first, second):
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        assert 'role="alert"' in html
    assert _page(first) == _page(second)
    for url in (
        "/management/bph/summary.pdf?to=2025-03-07",
        "/management/bph/summary.pdf?period=2025-01-01:2025-03-07",
        "/management/bph/summary.pdf?period=2025Q5",
        "/management/summary.pdf?pilot=bph&period=2099Q1",
        "/management/board-pack.pdf?period=2099",
        "/pilot/bph/management.pdf?from=2025-01-01",
    ):
        response = client.get(url)
        expected = 403 if url.startswith("/pilot/") else 400
        assert response.status_code == expected, url
        assert not response.data.startswith(b"%PDF")
    release = release_date(TODAY)
    periods = released_periods(queries.first_index_date(db.session, [pilot("bph").id]), release)
    quarter = next(p for p in periods if p.kind == "Q")
    plain = client.get(f"/management/?pilot=bph&period={quarter.code}")
    filtered = client.get(
        f"/management/?pilot=bph&period={quarter.code}&arm=outpatient_clinic&unit=x&tp=m3"
    )
    assert plain.status_code == filtered.status_code == 200
    assert _page(plain) == _page(filtered)
    assert "<table" in _page(plain)


def _page(response: Any) -> str:
    """The page without its per-request anti-forgery token and the time its read snapshot was
    taken (two requests may fall on either side of a minute)."""
    import re

    html = re.sub(r'name="csrf_token" value="[^"]*"', "", response.get_data(as_text=True))
    return re.sub(r'<p class="note data-version">.*?</p>', "", html, flags=re.S)


@pytest.mark.parametrize("code", ["bph", "older-adults"])
def test_a_period_cut_from_a_larger_read_holds_its_own_reads_rows_in_order(
    cohort_app: Flask,  # noqa: F811
    code: str,
) -> None:
    """A summary's quarters are cut from one read of a larger window, and the worker cuts
    several summaries from one read. The imputation and the bootstrap draw by row, so a cut
    must hold the rows of the period's own read in the same order, also after updates have
    moved rows within PostgreSQL's tables (a read without ORDER BY returns storage order)."""
    for model in (CostItem, ClinicalMeasurement, ServiceExposure, Invitation):
        db.session.execute(
            update(model).where(model.id % 2 == 1).values(enrolment_id=model.enrolment_id)
        )
    db.session.commit()
    the_pilot = pilot(code)
    release = release_date(TODAY)
    first = queries.first_index_date(db.session, [the_pilot.id])
    quarters = sorted({q for p in released_periods(first, release) for q in p.quarters()})
    window = CohortAnalysis(
        db.session,
        the_pilot,
        Filters(period=(quarters[0].start, quarters[-1].end), release=release),
        n_boot=N_BOOT,
    )
    frames = ("roster", "invitation_rows", "procedures", "cost_items", "exposures", "measurements")
    for name in (*frames, "scores"):
        getattr(window, name)  # read now, with the plans the database chooses for it
    if db.session.get_bind().dialect.name == "postgresql":
        # a smaller window may get other plans (here: no index scans), whose rows come in
        # another order unless the read orders them
        db.session.execute(text("SET LOCAL enable_indexscan = off"))
        db.session.execute(text("SET LOCAL enable_bitmapscan = off"))
    compared = 0
    for quarter in quarters:
        cut = window.restricted(quarter.bounds)
        own = CohortAnalysis(
            db.session, the_pilot, Filters(period=quarter.bounds, release=release), n_boot=N_BOOT
        )
        if own.roster.empty:
            continue
        for name in frames:
            pd.testing.assert_frame_equal(getattr(cut, name), getattr(own, name), obj=name)
        assert cut.scores.keys() == own.scores.keys()
        for instrument, frame in own.scores.items():
            pd.testing.assert_frame_equal(cut.scores[instrument], frame, obj=instrument)
        compared += 1
    assert compared >= 2
