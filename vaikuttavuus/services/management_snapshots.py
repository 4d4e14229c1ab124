"""The management summary as an analysis snapshot (:mod:`vaikuttavuus.services.snapshots`):
the page, the PDF and the board pack render a stored :class:`ReleasedCohort` (the grid
period's analysis and its quarters' analyses, computed by a worker) in the reader's language.

Key: kind ``management``, pilot, grid period, release date and the analysis settings; the
workers precompute the default period (the newest released year) and the current and previous
released quarters after each data change and nightly (:mod:`vaikuttavuus.services.precompute`).
"""

from __future__ import annotations

import json
from datetime import date
from typing import TYPE_CHECKING, Any

from flask import current_app

from vaikuttavuus.database import AnySession
from vaikuttavuus.domain.periods import GridPeriod
from vaikuttavuus.models import Pilot
from vaikuttavuus.services import snapshots

if TYPE_CHECKING:  # the analytics load only where a summary is computed
    from vaikuttavuus.services.analytics.recorded import RecordedRows

KIND = "management"


def management_key(
    pilot: Pilot,
    period: GridPeriod,
    release: date,
    *,
    n_boot: int | None = None,
    seed: int | None = None,
    imputations: int | None = None,
) -> snapshots.SnapshotKey:
    from vaikuttavuus import report_settings
    from vaikuttavuus.domain.defaults import DEFAULT_SEED

    settings = report_settings.current()
    params = {
        "period": period.code,
        "release": release.isoformat(),
        "n_boot": int(n_boot if n_boot is not None else settings.n_boot),
        "seed": int(seed if seed is not None else DEFAULT_SEED),
        "imputations": imputations,
    }
    return snapshots.SnapshotKey(pilot.id, KIND, tuple(sorted(params.items())))


def _period(key: snapshots.SnapshotKey) -> tuple[GridPeriod, date]:
    params = key.params_dict
    return GridPeriod.parse(params["period"]), date.fromisoformat(params["release"])


def shared_read(
    session: AnySession,
    pilot: Pilot,
    keys: list[snapshots.SnapshotKey],
    recorded: RecordedRows | None = None,
) -> Any:
    """One read of the data for the summaries of ``keys`` (one release and settings, e.g. the
    default year and the last two quarters): an analysis of the union of their windows, which
    :func:`compute` cuts each period from (the reading is most of a summary's work at scale).
    ``recorded``: the :class:`~vaikuttavuus.services.analytics.recorded.RecordedRows` of the
    pilot's whole cohort, read for its default views, to cut the union from (None: read it)."""
    from vaikuttavuus.services.management_report import release_window, window_read

    if len({same_read(key) for key in keys}) != 1:
        raise ValueError("the summaries of one read share their release and settings")
    windows = [release_window(_period(key)[0]) for key in keys]
    params = keys[0].params_dict
    return window_read(
        session,
        pilot,
        (min(start for start, _end in windows), max(end for _start, end in windows)),
        _period(keys[0])[1],
        n_boot=params["n_boot"],
        seed=params["seed"],
        imputations=params["imputations"],
        recorded=recorded,
    )


def same_read(key: snapshots.SnapshotKey) -> str:
    """What keys whose summaries can be cut from one read share (all but the period)."""
    params = {name: value for name, value in key.params if name != "period"}
    return json.dumps([key.pilot_id, key.kind, params], sort_keys=True)


def compute(session: AnySession, pilot: Pilot, key: snapshots.SnapshotKey, read: Any = None) -> Any:
    """The released cohort of ``key`` with every figure of the summary computed (as the page
    builds it, in Finnish; the labels are thrown away); ``read``: :func:`shared_read` of keys
    including this one (None: its own read)."""
    from flask_babel import force_locale

    from vaikuttavuus.services.management_report import management_context, released_cohort

    period, release = _period(key)
    params = key.params_dict
    cohort = released_cohort(
        session,
        pilot,
        period,
        release,
        n_boot=params["n_boot"],
        seed=params["seed"],
        imputations=params["imputations"],
        read=read,
    )
    with current_app.test_request_context(), force_locale("fi"):
        management_context(cohort, "fi")
    return cohort


def harvest(cohort: Any) -> dict[str, Any]:
    return {
        "analysis": snapshots.harvest(cohort.analysis),
        "quarters": {q.code: snapshots.harvest(a) for q, a in cohort.quarters.items()},
        "checks": dict(cohort._checks),
        "service_blocks": cohort._service_blocks,
    }


def restore(
    session: AnySession, pilot: Pilot, key: snapshots.SnapshotKey, state: dict[str, Any]
) -> Any:
    """A :class:`ReleasedCohort` of stored analyses (no database access)."""
    from vaikuttavuus.services.analytics import CohortAnalysis, Filters
    from vaikuttavuus.services.management_report import TREND_QUARTERS, ReleasedCohort

    period, release = _period(key)
    params = key.params_dict

    def analysis(bounds: tuple[date, date], stored: dict[str, Any]) -> CohortAnalysis:
        restored = CohortAnalysis(
            session,
            pilot,
            Filters(period=bounds, release=release),
            n_boot=params["n_boot"],
            seed=params["seed"],
            imputations=params["imputations"],
        )
        restored.__dict__.update(stored)
        restored.session = snapshots.DetachedSession()  # type: ignore[assignment]
        return restored

    quarters = {
        GridPeriod.parse(code): analysis(GridPeriod.parse(code).bounds, stored)
        for code, stored in state["quarters"].items()
    }
    main = quarters[period] if period.kind == "Q" else analysis(period.bounds, state["analysis"])
    cohort = ReleasedCohort(
        period, release, main, quarters, period.previous_quarters(TREND_QUARTERS)
    )
    cohort._checks.update(state.get("checks", {}))
    cohort._service_blocks = state.get("service_blocks")
    return cohort
