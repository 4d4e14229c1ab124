"""The one place where database rows become pandas DataFrames.

Reads are bulk Core selects into pandas (no ORM objects per row), so the analytics see plain
frames and the same code serves one patient and two hundred thousand.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

import pandas as pd
from sqlalchemy import ColumnElement, Select, and_, func, select

from vaikuttavuus.database import AnySession
from vaikuttavuus.domain.scoring import score_frame
from vaikuttavuus.models import (
    Answer,
    Arm,
    Enrolment,
    InstrumentVersion,
    Invitation,
    Person,
    Pilot,
    Response,
    TimePoint,
)
from vaikuttavuus.services.definitions import instrument_spec

RESPONSE_COLUMNS = [
    "response_id",
    "enrolment_id",
    "person_id",
    "arm",
    "time_point",
    "time_point_order",
    "instrument_version_id",
    "submitted_at",
    "mode",
    "proxy",
    "language",
]


def frame(session: AnySession, statement: Select[*tuple[Any, ...]]) -> pd.DataFrame:
    """Run a select and return its rows as a DataFrame with the select's column names."""
    result = session.execute(statement)
    columns = list(result.keys())
    # Plain tuples: pandas probes each row's attributes, which is slow on SQLAlchemy Rows.
    return pd.DataFrame([tuple(row) for row in result.fetchall()], columns=columns)


def _of_pilot(pilot_id: int, *narrowing: ColumnElement[bool]) -> list[ColumnElement[bool]]:
    """The conditions of a read of the pilot's rows (its enrolments joined as ``Enrolment``),
    narrowed by ``narrowing`` (e.g. a list of enrolment ids).

    A narrowed read keeps the pilot's condition, but as an expression no index serves
    (``pilot_id + 0``), so the planner starts from the listed rows. Otherwise SQLite without
    statistics starts from the pilot's index and walks every enrolment of the pilot on each
    call: an export read in chunks of 1 000 enrolments grew with the square of the cohort (the
    wide workbook of 200 000 people: 9 minutes on SQLite against 2 on PostgreSQL)."""
    if not narrowing:
        return [Enrolment.pilot_id == pilot_id]
    return [(Enrolment.pilot_id + 0) == pilot_id, *narrowing]


def _listed(column: Any, ids: Sequence[int] | None) -> list[ColumnElement[bool]]:
    """``column IN ids`` as a narrowing of :func:`_of_pilot`; nothing when ``ids`` is None."""
    return [] if ids is None else [column.in_(list(ids))]


def _responses_select(
    instrument_code: str, of_pilot: list[ColumnElement[bool]]
) -> Select[*tuple[Any, ...]]:
    return (
        select(
            Response.id.label("response_id"),
            Response.enrolment_id,
            Enrolment.person_id,
            Arm.code.label("arm"),
            TimePoint.code.label("time_point"),
            TimePoint.ordinal.label("time_point_order"),
            Response.instrument_version_id,
            Response.submitted_at,
            Response.mode,
            Response.proxy,
            Response.language,
        )
        .join(Enrolment, Response.enrolment_id == Enrolment.id)
        .join(Arm, Enrolment.arm_id == Arm.id)
        .join(TimePoint, Response.time_point_id == TimePoint.id)
        .where(
            Response.instrument_code == instrument_code,
            Response.status == "submitted",
            *of_pilot,
        )
    )


def instrument_scores(
    session: AnySession,
    pilot_id: int,
    instrument_code: str,
    enrolment_ids: Sequence[int] | None = None,
    *,
    response_ids: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Submitted responses of one instrument in a pilot, with every score of its version.

    One row per response: the columns of :data:`RESPONSE_COLUMNS` followed by the score
    columns. Each response is scored with the instrument version it was answered in.
    ``enrolment_ids`` / ``response_ids`` restrict the responses read.
    """
    of_pilot = _of_pilot(
        pilot_id,
        *_listed(Response.enrolment_id, enrolment_ids),
        *_listed(Response.id, response_ids),
    )
    meta = frame(session, _responses_select(instrument_code, of_pilot))
    if meta.empty:
        return meta.reindex(columns=RESPONSE_COLUMNS)
    answers = frame(
        session,
        select(Answer.response_id, Answer.item_id, Answer.value_num)
        .join(Response, Answer.response_id == Response.id)
        .join(Enrolment, Response.enrolment_id == Enrolment.id)
        .where(
            Response.instrument_code == instrument_code,
            Response.status == "submitted",
            *of_pilot,
        ),
    )
    wide = answers.pivot(index="response_id", columns="item_id", values="value_num")
    pieces = []
    version_id: Any  # a value of the id column (pandas-stubs type group keys as any scalar)
    for version_id, group in meta.groupby("instrument_version_id", sort=False):
        version = session.get(InstrumentVersion, int(version_id))
        assert version is not None
        spec = instrument_spec(version)
        items = wide.reindex(index=group["response_id"], columns=list(spec.item_ids))
        scores = score_frame(spec, items.astype("float64"))
        scores.index = group.index
        pieces.append(pd.concat([group, scores], axis=1))
    return pd.concat(pieces).sort_values(["person_id", "time_point_order"]).reset_index(drop=True)


def enrolment_overview(session: AnySession, pilot_id: int) -> pd.DataFrame:
    """One row per enrolment: person, arm, index date, status."""
    return frame(
        session,
        select(
            Enrolment.id.label("enrolment_id"),
            Enrolment.person_id,
            Person.pseudonym,
            Person.birth_year,
            Person.sex,
            Arm.code.label("arm"),
            Enrolment.index_date,
            Enrolment.status,
        )
        .join(Person, Enrolment.person_id == Person.id)
        .join(Arm, Enrolment.arm_id == Arm.id)
        .where(Enrolment.pilot_id == pilot_id),
    )


def invitation_counts(
    session: AnySession,
    pilot_id: int,
    period: tuple[date | None, date | None] = (None, None),
) -> pd.DataFrame:
    """Invitations per arm, time point and status (for response rates), for enrolments whose
    index date falls in ``period`` (either end open)."""
    statement = (
        select(
            Arm.code.label("arm"),
            TimePoint.code.label("time_point"),
            TimePoint.ordinal.label("time_point_order"),
            Invitation.status,
            func.count().label("n"),
        )
        .join(Enrolment, Invitation.enrolment_id == Enrolment.id)
        .join(Arm, Enrolment.arm_id == Arm.id)
        .join(TimePoint, Invitation.time_point_id == TimePoint.id)
        .where(Enrolment.pilot_id == pilot_id)
        .group_by(Arm.code, TimePoint.code, TimePoint.ordinal, Invitation.status)
    )
    start, end = period
    if start is not None:
        statement = statement.where(Enrolment.index_date >= start)
    if end is not None:
        statement = statement.where(Enrolment.index_date <= end)
    return frame(session, statement)


def pilot_by_code(session: AnySession, code: str) -> Pilot | None:
    return session.scalar(select(Pilot).where(Pilot.code == code))


def latest_invitation_status(session: AnySession, enrolment_ids: Sequence[int]) -> pd.DataFrame:
    """Per enrolment: the most recent time point invited and its status."""
    latest = (
        select(Invitation.enrolment_id, func.max(TimePoint.ordinal).label("ordinal"))
        .join(TimePoint, Invitation.time_point_id == TimePoint.id)
        .where(Invitation.enrolment_id.in_(list(enrolment_ids)))
        .group_by(Invitation.enrolment_id)
        .subquery()
    )
    return frame(
        session,
        select(Invitation.enrolment_id, TimePoint.code.label("time_point"), Invitation.status)
        .join(TimePoint, Invitation.time_point_id == TimePoint.id)
        .join(
            latest,
            and_(
                latest.c.enrolment_id == Invitation.enrolment_id,
                latest.c.ordinal == TimePoint.ordinal,
            ),
        ),
    )


# -- costs (episode costs per enrolment) --------------------------------------------------------


def cost_rows(
    session: AnySession, pilot_id: int, enrolment_ids: Sequence[int] | None = None
) -> pd.DataFrame:
    """The pilot's resource-use and direct-cost rows in the columns that
    :func:`vaikuttavuus.domain.costing.episode_costs` reads (``enrolment_id`` as the id)."""
    from vaikuttavuus.models import CostItem

    statement = (
        select(
            CostItem.enrolment_id,
            CostItem.kind,
            CostItem.product_code,
            CostItem.quantity,
            CostItem.amount_eur,
            CostItem.price_year,
            CostItem.service_date,
            CostItem.cost_centre_code.label("cost_centre"),
        )
        .join(Enrolment, CostItem.enrolment_id == Enrolment.id)
        .where(*_of_pilot(pilot_id, *_listed(CostItem.enrolment_id, enrolment_ids)))
    )
    rows = frame(session, statement)
    rows["quantity"] = pd.to_numeric(rows["quantity"]).astype("float64")
    rows["amount_eur"] = pd.to_numeric(rows["amount_eur"]).astype("float64")
    rows["price_year"] = pd.to_numeric(rows["price_year"]).astype("float64")
    rows["service_date"] = pd.to_datetime(rows["service_date"])
    return rows


def cohort_pseudonyms(
    session: AnySession,
    pilot_id: int,
    *,
    period: CohortPeriod = (None, None),
    arm: str | None = None,
    unit: str | None = None,
) -> pd.DataFrame:
    """The pseudonym of every enrolment in the cohort whose person is not erased:
    ``enrolment_id``, ``pseudonym`` (for lists of patients next to the cohort figures)."""
    rows = frame(
        session,
        select(Enrolment.id.label("enrolment_id"), Person.pseudonym)
        .join(Person, Enrolment.person_id == Person.id)
        .where(*_cohort_conditions(pilot_id, period, arm, unit), Person.erased_at.is_(None))
        .order_by(Enrolment.id),
    )
    rows["enrolment_id"] = rows["enrolment_id"].astype("int64")
    return rows


def costing_tables(session: AnySession) -> dict[str, pd.DataFrame]:
    """The costing catalogue as stored by ``vaikuttavuus init``: ``cost_centres``,
    ``products``, ``unit_costs`` and ``price_index`` frames."""
    from vaikuttavuus.models import CostCentre, PriceIndexPoint, Product, UnitCost

    return {
        "cost_centres": frame(
            session, select(CostCentre.code, CostCentre.name).order_by(CostCentre.code)
        ),
        "products": frame(
            session,
            select(Product.code, Product.name, Product.unit, Product.cost_centre_code).order_by(
                Product.code
            ),
        ),
        "unit_costs": frame(
            session,
            select(UnitCost.product_code, UnitCost.price_year, UnitCost.unit_cost_eur),
        ),
        "price_index": frame(session, select(PriceIndexPoint.year, PriceIndexPoint.index)),
    }


# -- cohort analytics: bulk reads of one pilot with filters (services/analytics/) ----------------
# Each read is one statement, filtered in SQL by the pilot and the cohort filters (index-date
# period, arm, unit), so a filtered page reads only its rows and no list of ids travels to the
# database. Reads are streamed in partitions of plain DBAPI tuples (a server-side cursor on
# PostgreSQL) and turned into columns directly: building rows and a DataFrame from them costs
# more than the read itself at this scale.

# Imports of this appended section (the module's import block belongs to everyone).
from collections.abc import Iterator  # noqa: E402
from itertools import repeat  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

CohortPeriod = tuple[date | None, date | None]
_PARTITION = 100_000


def _cohort_conditions(
    pilot_id: int, period: CohortPeriod, arm: str | None, unit: str | None
) -> list[Any]:
    start, end = period
    conditions: list[Any] = [Enrolment.pilot_id == pilot_id]
    if start is not None:
        conditions.append(Enrolment.index_date >= start)
    if end is not None:
        conditions.append(Enrolment.index_date <= end)
    if arm is not None:
        conditions.append(
            Enrolment.arm_id.in_(select(Arm.id).where(Arm.pilot_id == pilot_id, Arm.code == arm))
        )
    if unit is not None:
        conditions.append(Enrolment.unit == unit)
    return conditions


def _partitions(
    session: AnySession, statement: Select[*tuple[Any, ...]], size: int = _PARTITION
) -> Iterator[Sequence[Sequence[Any]]]:
    """The rows of ``statement`` as plain DBAPI tuples, ``size`` at a time, in the session's
    transaction. Raw column values: dates may be ISO text (SQLite) and numerics ``Decimal``
    (PostgreSQL); the callers convert columns.

    PostgreSQL: a named (server-side) psycopg cursor, so the result is never held whole.
    SQLite: through ``exec_driver_sql`` (engine events and logging still see the statement),
    reading its cursor directly, which streams by itself. Building SQLAlchemy rows would cost
    more than the read at this scale. Other databases: Core partitions.
    """
    connection = session.connection()
    dialect = connection.dialect
    compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    values = compiled.construct_params()
    if dialect.name == "postgresql":
        import uuid

        raw = connection.connection.dbapi_connection
        assert raw is not None
        cursor = raw.cursor(name=f"cohort_{uuid.uuid4().hex}")
        try:
            cursor.execute(str(compiled), values)
            while rows := cursor.fetchmany(size):
                yield rows
        finally:
            cursor.close()
        return
    if dialect.name == "sqlite" and compiled.positiontup is not None:
        # the SQLite Date type's own conversion (these reads bind no datetimes)
        plain = {k: v.isoformat() if type(v) is date else v for k, v in values.items()}
        result = connection.exec_driver_sql(
            str(compiled), tuple(plain[name] for name in compiled.positiontup)
        )
        try:
            while rows := result.cursor.fetchmany(size):
                yield rows
        finally:
            result.close()
        return
    result = connection.execute(statement.execution_options(yield_per=size))
    try:
        yield from result.partitions()
    finally:
        result.close()


def _read(
    session: AnySession, statement: Select[*tuple[Any, ...]], columns: Sequence[str]
) -> pd.DataFrame:
    """All rows of ``statement`` as a DataFrame with ``columns`` (object columns; the caller
    converts types)."""
    pieces: list[list[Any]] = [[] for _ in columns]
    for rows in _partitions(session, statement):
        for target, values in zip(pieces, zip(*rows, strict=True), strict=True):
            target.extend(values)
    return pd.DataFrame(dict(zip(columns, pieces, strict=True)), columns=list(columns))


def _dates(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values) if len(values) else values.astype("datetime64[ns]")


def _timestamps(values: pd.Series) -> pd.Series:
    """Stored timestamps (naive UTC; ISO text on SQLite) as naive datetime64[us], NaT for none
    (one unit whatever the values: pandas would infer seconds for a column of NaT only)."""
    stamps = pd.to_datetime(values.where(values.notna(), None), format="ISO8601")
    return stamps.astype("datetime64[us]")


def _local_days(values: pd.Series, zone: str = "Europe/Helsinki") -> pd.Series:
    """UTC timestamps (stored naive or aware) as the local calendar day (datetime64)."""
    stamps = pd.to_datetime(values, utc=True) if len(values) else values.astype("datetime64[ns]")
    if not len(values):
        return stamps
    return stamps.dt.tz_convert(zone).dt.tz_localize(None).dt.normalize()


def _floats(values: pd.Series) -> pd.Series:
    return pd.Series(np.asarray(values.to_numpy(), dtype=np.float64), index=values.index)


def cohort_enrolments(
    session: AnySession,
    pilot_id: int,
    *,
    period: CohortPeriod = (None, None),
    arm: str | None = None,
    unit: str | None = None,
    recorded: bool = False,
) -> pd.DataFrame:
    """One row per enrolment in the cohort: ``enrolment_id``, ``person_id``, ``arm``,
    ``index_date`` (datetime64), ``status``, ``unit``, ``clinician_code``, ``birth_year``
    (float), ``sex``, ``lives_alone`` (pseudonymised people included: their data stay for
    statistics). ``recorded`` adds ``recorded_at`` (when the enrolment was stored) and
    ``withdrawn_at`` (naive UTC datetime64) for the releases of the management figures."""
    columns = [
        "enrolment_id", "person_id", "arm", "index_date", "status", "unit", "clinician_code",
        "birth_year", "sex", "lives_alone",
    ]  # fmt: skip
    extra = [Enrolment.created_at, Enrolment.withdrawn_at] if recorded else []
    rows = _read(
        session,
        select(
            Enrolment.id,
            Enrolment.person_id,
            Arm.code,
            Enrolment.index_date,
            Enrolment.status,
            Enrolment.unit,
            Enrolment.clinician_code,
            Person.birth_year,
            Person.sex,
            Person.lives_alone,
            *extra,
        )
        .join(Person, Enrolment.person_id == Person.id)
        .join(Arm, Enrolment.arm_id == Arm.id)
        .where(*_cohort_conditions(pilot_id, period, arm, unit))
        .order_by(Enrolment.id),
        [*columns, "recorded_at", "withdrawn_at"] if recorded else columns,
    )
    rows["enrolment_id"] = rows["enrolment_id"].astype("int64")
    rows["index_date"] = _dates(rows["index_date"])
    if recorded:
        rows["recorded_at"] = _timestamps(rows["recorded_at"])
        rows["withdrawn_at"] = _timestamps(rows["withdrawn_at"])
    rows["birth_year"] = _floats(rows["birth_year"].where(rows["birth_year"].notna(), np.nan))
    rows["lives_alone"] = rows["lives_alone"].astype("boolean")
    return rows


def cohort_units(session: AnySession, pilot_id: int) -> list[str]:
    """The units named on the pilot's enrolments, sorted (for the unit filter)."""
    return sorted(
        unit
        for unit in session.scalars(
            select(Enrolment.unit).where(Enrolment.pilot_id == pilot_id).distinct()
        )
        if unit
    )


def cohort_scores(
    session: AnySession,
    pilot_id: int,
    instrument_codes: Sequence[str],
    *,
    period: CohortPeriod = (None, None),
    arm: str | None = None,
    unit: str | None = None,
    recorded: bool = False,
) -> dict[str, pd.DataFrame]:
    """The submitted responses of several instruments in one read, scored.

    Returns, per instrument code, one row per response in the order of their ids (so the rows
    of a subset of the cohort are in the same order as when cut from a larger read):
    ``response_id``, ``enrolment_id``,
    ``time_point``, ``mode`` (web, phone, paper or imported), ``proxy`` (bool: someone else
    answered for the person), ``submitted_on`` (the answer's local day, datetime64),
    ``items_missing`` (required scorable items without a numeric answer, among those always
    shown) and one column per score. Answers are read once for all
    instruments, in partitions straight into numpy arrays (item ids as small integer codes),
    and each response is scored with the version it was answered in. ``recorded`` adds
    ``recorded_at`` (when the response was submitted, naive UTC).
    """
    from vaikuttavuus.domain.scoring import scorable_items

    codes = list(dict.fromkeys(instrument_codes))
    conditions = [
        *_cohort_conditions(pilot_id, period, arm, unit),
        Response.instrument_code.in_(codes),
        Response.status == "submitted",
    ]
    meta = _read(
        session,
        select(
            Response.id,
            Response.enrolment_id,
            Response.instrument_code,
            TimePoint.code,
            Response.instrument_version_id,
            Response.mode,
            Response.proxy,
            Response.submitted_at,
        )
        .join(Enrolment, Response.enrolment_id == Enrolment.id)
        .join(TimePoint, Response.time_point_id == TimePoint.id)
        .where(*conditions)
        .order_by(Response.id),
        ["response_id", "enrolment_id", "instrument", "time_point", "version_id", "mode", "proxy",
         "submitted_on"],
    )  # fmt: skip
    if recorded:
        meta["recorded_at"] = _timestamps(meta["submitted_on"])
    for column in ("response_id", "enrolment_id", "version_id"):
        meta[column] = meta[column].astype("int64")
    meta["proxy"] = meta["proxy"].astype(bool)
    meta["submitted_on"] = _local_days(meta["submitted_on"])
    versions = {
        int(version_id): instrument_spec(version)
        for version_id in pd.unique(meta["version_id"])
        if (version := session.get(InstrumentVersion, int(version_id))) is not None
    }
    item_ids = sorted({item.id for spec in versions.values() for item in spec.items})
    item_code = {item: code for code, item in enumerate(item_ids)}
    response_parts: list[np.ndarray] = []
    item_parts: list[np.ndarray] = []
    value_parts: list[np.ndarray] = []
    answers = (
        select(Answer.response_id, Answer.item_id, Answer.value_num)
        .join(Response, Answer.response_id == Response.id)
        .join(Enrolment, Response.enrolment_id == Enrolment.id)
        .where(*conditions, Answer.value_num.is_not(None))
    )
    for rows in _partitions(session, answers):
        ids, items, values = zip(*rows, strict=True)
        response_parts.append(np.fromiter(ids, dtype=np.int64, count=len(ids)))
        item_parts.append(
            np.fromiter(map(item_code.get, items, repeat(-1)), dtype=np.int32, count=len(items))
        )
        value_parts.append(np.asarray(values, dtype=np.float64))
    answer_response = np.concatenate(response_parts) if response_parts else np.empty(0, np.int64)
    answer_item = np.concatenate(item_parts) if item_parts else np.empty(0, np.int32)
    answer_value = np.concatenate(value_parts) if value_parts else np.empty(0, np.float64)
    response_ids = meta["response_id"].to_numpy(dtype=np.int64)
    row_of_answer = np.searchsorted(response_ids, answer_response)
    version_of_row = meta["version_id"].to_numpy(dtype=np.int64)
    version_of_answer = version_of_row[np.minimum(row_of_answer, max(len(meta) - 1, 0))]
    base_columns = ["response_id", "enrolment_id", "time_point", "mode", "proxy", "submitted_on"]
    if recorded:
        base_columns.append("recorded_at")
    out: dict[str, pd.DataFrame] = {}
    for code in codes:
        pieces = []
        for version_id, spec in versions.items():
            if spec.id != code:
                continue
            rows_of_version = np.flatnonzero(version_of_row == version_id)
            chosen = (version_of_answer == version_id) & (answer_item >= 0)
            spec_items = list(spec.item_ids)
            column_of = np.full(len(item_ids), -1, dtype=np.int64)
            for position, item in enumerate(spec_items):
                column_of[item_code[item]] = position
            column = column_of[answer_item[chosen]]
            local_row = np.searchsorted(rows_of_version, row_of_answer[chosen])
            keep = column >= 0
            matrix = np.full((len(rows_of_version), len(spec_items)), np.nan)
            matrix[local_row[keep], column[keep]] = answer_value[chosen][keep]
            wide = pd.DataFrame(matrix, columns=spec_items)
            required = [
                item.id for item in scorable_items(spec) if item.required and not item.enable_when
            ]
            part = meta.iloc[rows_of_version][base_columns].reset_index(drop=True)
            part["items_missing"] = wide[required].isna().sum(axis=1).to_numpy()
            pieces.append(pd.concat([part, score_frame(spec, wide)], axis=1))
        if not pieces:
            out[code] = pd.DataFrame(columns=[*base_columns, "items_missing"])
        elif len(pieces) == 1:
            out[code] = pieces[0]
        else:  # responses of several versions: back in the order of their ids
            joined = pd.concat(pieces, ignore_index=True)
            out[code] = joined.sort_values("response_id", kind="stable", ignore_index=True)
    return out


def cohort_invitation_counts(
    session: AnySession,
    pilot_id: int,
    *,
    period: CohortPeriod = (None, None),
    arm: str | None = None,
    unit: str | None = None,
) -> pd.DataFrame:
    """Invitations per arm, time point and status (counted in the database), with how many of
    them were completed after a reminder (``after_reminder``) and after the window had closed
    (``after_window``)."""
    from sqlalchemy import case

    completed = Invitation.status == "completed"
    late = completed & (func.date(Invitation.completed_at) > Invitation.closes_on)
    rows = _read(
        session,
        select(
            Arm.code,
            TimePoint.code,
            Invitation.status,
            func.count(),
            func.sum(case((completed & (Invitation.reminders_sent > 0), 1), else_=0)),
            func.sum(case((late, 1), else_=0)),
        )
        .join(Enrolment, Invitation.enrolment_id == Enrolment.id)
        .join(Arm, Enrolment.arm_id == Arm.id)
        .join(TimePoint, Invitation.time_point_id == TimePoint.id)
        .where(*_cohort_conditions(pilot_id, period, arm, unit))
        .group_by(Arm.code, TimePoint.code, Invitation.status)
        .order_by(Arm.code, TimePoint.code, Invitation.status),
        ["arm", "time_point", "status", "n", "after_reminder", "after_window"],
    )
    for column in ("n", "after_reminder", "after_window"):
        rows[column] = rows[column].astype("int64")
    return rows


def cohort_invitation_rows(
    session: AnySession,
    pilot_id: int,
    *,
    period: CohortPeriod = (None, None),
    arm: str | None = None,
    unit: str | None = None,
) -> pd.DataFrame:
    """One row per invitation of the cohort, with what its status was on any later day can be
    worked out from: ``enrolment_id``, ``time_point``, ``status``, ``closes_on`` (datetime64),
    ``completed_at``, ``cancelled_at``, ``opted_out_at`` (the person's opt-out; naive UTC) and
    ``reminders_sent`` (for the releases of the management figures)."""
    rows = _read(
        session,
        select(
            Invitation.enrolment_id,
            TimePoint.code,
            Invitation.status,
            Invitation.closes_on,
            Invitation.completed_at,
            Invitation.cancelled_at,
            Person.opted_out_at,
            Invitation.reminders_sent,
        )
        .join(Enrolment, Invitation.enrolment_id == Enrolment.id)
        .join(Person, Enrolment.person_id == Person.id)
        .join(TimePoint, Invitation.time_point_id == TimePoint.id)
        .where(*_cohort_conditions(pilot_id, period, arm, unit))
        .order_by(Invitation.enrolment_id, Invitation.id),
        [
            "enrolment_id", "time_point", "status", "closes_on", "completed_at",
            "cancelled_at", "opted_out_at", "reminders_sent",
        ],
    )  # fmt: skip
    rows["enrolment_id"] = rows["enrolment_id"].astype("int64")
    rows["closes_on"] = _dates(rows["closes_on"])
    for column in ("completed_at", "cancelled_at", "opted_out_at"):
        rows[column] = _timestamps(rows[column])
    rows["reminders_sent"] = rows["reminders_sent"].fillna(0).astype("int64")
    return rows


def cohort_procedures(
    session: AnySession,
    pilot_id: int,
    *,
    period: CohortPeriod = (None, None),
    arm: str | None = None,
    unit: str | None = None,
    recorded: bool = False,
) -> pd.DataFrame:
    """The first procedure of each enrolment: ``enrolment_id``, ``procedure_type``,
    ``setting``, ``unit``, ``surgeon_code``. ``recorded`` adds ``recorded_at`` and keeps
    every procedure (the caller picks the first one recorded by its cut-off)."""
    from vaikuttavuus.models import Procedure

    columns = ["enrolment_id", "procedure_type", "setting", "unit", "surgeon_code"]
    rows = _read(
        session,
        select(
            Procedure.enrolment_id,
            Procedure.procedure_type,
            Procedure.setting,
            Procedure.unit,
            Procedure.surgeon_code,
            *([Procedure.created_at] if recorded else []),
        )
        .join(Enrolment, Procedure.enrolment_id == Enrolment.id)
        .where(*_cohort_conditions(pilot_id, period, arm, unit))
        .order_by(Procedure.enrolment_id, Procedure.performed_on, Procedure.id),
        [*columns, "recorded_at"] if recorded else columns,
    )
    rows["enrolment_id"] = rows["enrolment_id"].astype("int64")
    if recorded:
        rows["recorded_at"] = _timestamps(rows["recorded_at"])
        return rows
    return rows.drop_duplicates("enrolment_id", keep="first").reset_index(drop=True)


def cohort_measurements(
    session: AnySession,
    pilot_id: int,
    measure_codes: Sequence[str],
    *,
    period: CohortPeriod = (None, None),
    arm: str | None = None,
    unit: str | None = None,
    recorded: bool = False,
) -> pd.DataFrame:
    """Current (not superseded) numeric values of the given measures: ``enrolment_id``,
    ``measure_code``, ``value_num``, ``measured_on`` (datetime64). ``recorded`` returns every
    value, superseded ones too, with ``recorded_at`` and ``superseded_at`` (when the
    correction that replaced it was recorded; NaT for current values), so the caller can take
    the values current at its cut-off."""
    from sqlalchemy.orm import aliased

    from vaikuttavuus.models import ClinicalMeasurement

    correction = aliased(ClinicalMeasurement)
    columns = ["enrolment_id", "measure_code", "value_num", "measured_on"]
    statement = (
        select(
            ClinicalMeasurement.enrolment_id,
            ClinicalMeasurement.measure_code,
            ClinicalMeasurement.value_num,
            ClinicalMeasurement.measured_on,
            *([ClinicalMeasurement.recorded_at, correction.recorded_at] if recorded else []),
        )
        .join(Enrolment, ClinicalMeasurement.enrolment_id == Enrolment.id)
        .where(
            *_cohort_conditions(pilot_id, period, arm, unit),
            ClinicalMeasurement.measure_code.in_(list(measure_codes)),
            ClinicalMeasurement.value_num.is_not(None),
        )
        .order_by(ClinicalMeasurement.enrolment_id, ClinicalMeasurement.id)
    )
    if recorded:
        statement = statement.outerjoin(
            correction, ClinicalMeasurement.superseded_by_id == correction.id
        )
    else:
        statement = statement.where(ClinicalMeasurement.superseded_by_id.is_(None))
    rows = _read(
        session, statement, [*columns, "recorded_at", "superseded_at"] if recorded else columns
    )
    rows["enrolment_id"] = rows["enrolment_id"].astype("int64")
    if recorded:
        rows["recorded_at"] = _timestamps(rows["recorded_at"])
        rows["superseded_at"] = _timestamps(rows["superseded_at"])
    rows["measured_on"] = _dates(rows["measured_on"])
    rows["value_num"] = _floats(rows["value_num"])
    return rows


def cohort_cost_items(
    session: AnySession,
    pilot_id: int,
    *,
    period: CohortPeriod = (None, None),
    arm: str | None = None,
    unit: str | None = None,
    recorded: bool = False,
) -> pd.DataFrame:
    """The cohort's cost rows in the columns :func:`vaikuttavuus.domain.costing.episode_costs`
    reads (``enrolment_id`` as the id); ``recorded`` adds ``recorded_at``."""
    from vaikuttavuus.models import CostItem

    columns = [
        "enrolment_id", "product_code", "quantity", "amount_eur", "price_year",
        "service_date", "cost_centre",
    ]  # fmt: skip
    rows = _read(
        session,
        select(
            CostItem.enrolment_id,
            CostItem.product_code,
            CostItem.quantity,
            CostItem.amount_eur,
            CostItem.price_year,
            CostItem.service_date,
            CostItem.cost_centre_code,
            *([CostItem.created_at] if recorded else []),
        )
        .join(Enrolment, CostItem.enrolment_id == Enrolment.id)
        .where(*_cohort_conditions(pilot_id, period, arm, unit))
        .order_by(CostItem.enrolment_id, CostItem.id),
        [*columns, "recorded_at"] if recorded else columns,
    )
    rows["enrolment_id"] = rows["enrolment_id"].astype("int64")
    if recorded:
        rows["recorded_at"] = _timestamps(rows["recorded_at"])
    for column in ("quantity", "amount_eur", "price_year"):
        rows[column] = _floats(rows[column].where(rows[column].notna(), np.nan))
    rows["service_date"] = _dates(rows["service_date"])
    return rows


def cohort_exposures(
    session: AnySession,
    pilot_id: int,
    *,
    period: CohortPeriod = (None, None),
    arm: str | None = None,
    unit: str | None = None,
    recorded: bool = False,
) -> pd.DataFrame:
    """Service exposures: ``enrolment_id``, ``service_type``, ``provider_sector``,
    ``started_on`` and ``ended_on`` (datetime64; no end date = still running), ``contacts``,
    ``cost`` (euros or NaN); ``recorded`` adds ``recorded_at``."""
    from vaikuttavuus.models import ServiceExposure

    columns = [
        "enrolment_id", "service_type", "provider_sector", "started_on", "contacts", "cost",
        "ended_on",
    ]  # fmt: skip
    rows = _read(
        session,
        select(
            ServiceExposure.enrolment_id,
            ServiceExposure.service_type,
            ServiceExposure.provider_sector,
            ServiceExposure.started_on,
            ServiceExposure.contacts,
            ServiceExposure.cost_eur,
            ServiceExposure.ended_on,
            *([ServiceExposure.created_at] if recorded else []),
        )
        .join(Enrolment, ServiceExposure.enrolment_id == Enrolment.id)
        .where(*_cohort_conditions(pilot_id, period, arm, unit))
        .order_by(ServiceExposure.enrolment_id, ServiceExposure.id),
        [*columns, "recorded_at"] if recorded else columns,
    )
    rows["enrolment_id"] = rows["enrolment_id"].astype("int64")
    if recorded:
        rows["recorded_at"] = _timestamps(rows["recorded_at"])
    rows["started_on"] = _dates(rows["started_on"])
    rows["ended_on"] = pd.to_datetime(rows["ended_on"])
    rows["contacts"] = _floats(rows["contacts"].where(rows["contacts"].notna(), np.nan))
    rows["cost"] = _floats(rows["cost"].where(rows["cost"].notna(), np.nan))
    return rows


def pilot_import_log(session: AnySession, pilot_code: str) -> pd.DataFrame:
    """The pilot's imports (not dry runs): ``kind``, ``status``, ``rows_total``,
    ``rows_stored``, ``rows_duplicate``, ``error_count`` and ``errors`` (the reported ones)."""
    from vaikuttavuus.models import ImportBatch

    return frame(
        session,
        select(
            ImportBatch.kind,
            ImportBatch.status,
            ImportBatch.rows_total,
            ImportBatch.rows_stored,
            ImportBatch.rows_duplicate,
            ImportBatch.error_count,
            ImportBatch.errors,
        )
        .where(ImportBatch.pilot_code == pilot_code, ImportBatch.dry_run.is_(False))
        .order_by(ImportBatch.id),
    )


def pilot_data_version(session: AnySession, pilot_id: int) -> tuple[object, ...]:
    """A fingerprint of everything the pilot's analyses and pages read, in one statement:
    per table the row count and largest id (and for responses the sum of ids and latest
    change, for invitations the counts per final status), so an import, a submitted answer,
    a correction, a withdrawal or an erasure each give a new fingerprint. Read inside a
    :func:`vaikuttavuus.database.read_snapshot` it is the version of what that snapshot saw."""
    from sqlalchemy import case

    from vaikuttavuus.models import (
        ClinicalMeasurement,
        CostItem,
        ImportBatch,
        Procedure,
        ServiceExposure,
    )

    in_pilot = select(Enrolment.id).where(Enrolment.pilot_id == pilot_id)
    in_pilot_people = Enrolment.pilot_id == pilot_id

    def stats(*columns: Any, where: Any) -> list[Any]:
        return [select(column).where(where).scalar_subquery() for column in columns]

    pilot_code = select(Pilot.code).where(Pilot.id == pilot_id).scalar_subquery()
    submitted = Response.status == "submitted"
    values = [
        *stats(func.count(Enrolment.id), func.max(Enrolment.id),
               func.sum(case((Enrolment.status == "active", 1), else_=0)),
               where=Enrolment.pilot_id == pilot_id),
        *stats(func.count(Response.id), func.sum(Response.id), func.max(Response.updated_at),
               where=Response.enrolment_id.in_(in_pilot) & submitted),
        *stats(func.count(Invitation.id), func.max(Invitation.id),
               func.sum(case((Invitation.status == "completed", 1), else_=0)),
               func.sum(case((Invitation.status == "expired", 1), else_=0)),
               func.sum(case((Invitation.status == "open", 1), else_=0)),
               where=Invitation.enrolment_id.in_(in_pilot)),
        *stats(func.count(CostItem.id), func.max(CostItem.id),
               where=CostItem.enrolment_id.in_(in_pilot)),
        *stats(func.count(ClinicalMeasurement.id), func.max(ClinicalMeasurement.id),
               func.max(ClinicalMeasurement.superseded_by_id),
               where=ClinicalMeasurement.enrolment_id.in_(in_pilot)),
        *stats(func.count(Procedure.id), func.max(Procedure.id),
               where=Procedure.enrolment_id.in_(in_pilot)),
        *stats(func.count(ServiceExposure.id), func.max(ServiceExposure.id),
               where=ServiceExposure.enrolment_id.in_(in_pilot)),
        *stats(func.count(ImportBatch.id), func.max(ImportBatch.id),
               where=ImportBatch.pilot_code == pilot_code),
        *stats(func.count(Person.id), func.max(Person.erased_at),
               where=Person.id.in_(select(Enrolment.person_id).where(in_pilot_people))),
    ]  # fmt: skip
    row = session.execute(select(*values)).one()
    return tuple(str(v) if isinstance(v, date) else v for v in row)


def submitted_response_versions(
    session: AnySession, pilot_id: int, instrument_codes: Sequence[str]
) -> dict[str, tuple[int, int, object]]:
    """Per instrument: (count, sum of ids, latest change) of the pilot's submitted responses,
    in one statement. Submitted responses never change (only whole responses are deleted, by
    an erasure), so equal triples mean equal scored responses."""
    rows = session.execute(
        select(
            Response.instrument_code,
            func.count(Response.id),
            func.sum(Response.id),
            func.max(Response.updated_at),
        )
        .join(Enrolment, Response.enrolment_id == Enrolment.id)
        .where(
            Enrolment.pilot_id == pilot_id,
            Response.instrument_code.in_(list(instrument_codes)),
            Response.status == "submitted",
        )
        .group_by(Response.instrument_code)
    ).all()
    found = {str(row[0]): (int(row[1]), int(row[2] or 0), row[3]) for row in rows}
    return {code: found.get(code, (0, 0, None)) for code in instrument_codes}


def submitted_since(
    session: AnySession, pilot_id: int, instrument_code: str, since: datetime
) -> list[tuple[int, datetime]]:
    """(id, latest change) of the pilot's submitted responses of an instrument changed at or
    after ``since``."""
    rows = session.execute(
        select(Response.id, Response.updated_at)
        .join(Enrolment, Response.enrolment_id == Enrolment.id)
        .where(
            Enrolment.pilot_id == pilot_id,
            Response.instrument_code == instrument_code,
            Response.status == "submitted",
            Response.updated_at >= since,
        )
    ).all()
    return [(int(row[0]), row[1]) for row in rows]


def first_index_date(session: AnySession, pilot_ids: Sequence[int]) -> date | None:
    """The earliest index date of the pilots' enrolments (the start of the period grid)."""
    if not pilot_ids:
        return None
    value = session.scalar(
        select(func.min(Enrolment.index_date)).where(Enrolment.pilot_id.in_(list(pilot_ids)))
    )
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])
