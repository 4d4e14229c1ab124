"""The one place where database rows become pandas DataFrames.

Reads are bulk Core selects into pandas (no ORM objects per row), so the analytics see plain
frames and the same code serves one patient and two hundred thousand.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import pandas as pd
from sqlalchemy import Select, and_, func, select
from sqlalchemy.orm import Session

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
    "language",
]


def frame(session: Session, statement: Select[tuple[object, ...]]) -> pd.DataFrame:
    """Run a select and return its rows as a DataFrame with the select's column names."""
    result = session.execute(statement)
    return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


def _responses_select(
    pilot_id: int, instrument_code: str, enrolment_ids: Sequence[int] | None
) -> Select[tuple[object, ...]]:
    statement = (
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
            Response.language,
        )
        .join(Enrolment, Response.enrolment_id == Enrolment.id)
        .join(Arm, Enrolment.arm_id == Arm.id)
        .join(TimePoint, Response.time_point_id == TimePoint.id)
        .where(
            Enrolment.pilot_id == pilot_id,
            Response.instrument_code == instrument_code,
            Response.status == "submitted",
        )
    )
    if enrolment_ids is not None:
        statement = statement.where(Response.enrolment_id.in_(list(enrolment_ids)))
    return statement


def instrument_scores(
    session: Session,
    pilot_id: int,
    instrument_code: str,
    enrolment_ids: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Submitted responses of one instrument in a pilot, with every score of its version.

    One row per response: the columns of :data:`RESPONSE_COLUMNS` followed by the score
    columns. Each response is scored with the instrument version it was answered in.
    """
    meta = frame(session, _responses_select(pilot_id, instrument_code, enrolment_ids))
    if meta.empty:
        return meta.reindex(columns=RESPONSE_COLUMNS)
    answers = frame(
        session,
        select(Answer.response_id, Answer.item_id, Answer.value_num)
        .join(Response, Answer.response_id == Response.id)
        .join(Enrolment, Response.enrolment_id == Enrolment.id)
        .where(
            Enrolment.pilot_id == pilot_id,
            Response.instrument_code == instrument_code,
            Response.status == "submitted",
            *(
                [Response.enrolment_id.in_(list(enrolment_ids))]
                if enrolment_ids is not None
                else []
            ),
        ),
    )
    wide = answers.pivot(index="response_id", columns="item_id", values="value_num")
    pieces = []
    for version_id, group in meta.groupby("instrument_version_id", sort=False):
        version = session.get(InstrumentVersion, int(version_id))
        assert version is not None
        spec = instrument_spec(version)
        items = wide.reindex(index=group["response_id"], columns=list(spec.item_ids))
        scores = score_frame(spec, items.astype("float64"))
        scores.index = group.index
        pieces.append(pd.concat([group, scores], axis=1))
    return pd.concat(pieces).sort_values(["person_id", "time_point_order"]).reset_index(drop=True)


def enrolment_overview(session: Session, pilot_id: int) -> pd.DataFrame:
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
    session: Session,
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


def pilot_by_code(session: Session, code: str) -> Pilot | None:
    return session.scalar(select(Pilot).where(Pilot.code == code))


def latest_invitation_status(session: Session, enrolment_ids: Sequence[int]) -> pd.DataFrame:
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
