"""Storing imported questionnaire answers (the ``responses`` kind of
:func:`vaikuttavuus.services.imports.run_import`).

The checks are :mod:`vaikuttavuus.domain.response_imports`; this module gives them their
database look-ups and stores what passed:

* every response as ``submitted``, with the instrument version it was given in (so it is
  scored like an answer given through the app), its mode and proxy, the import batch, and
  ``submitted_at`` = the day at 12:00 UTC (an import keeps the day, not the time of day);
* a response the person had started but not sent is replaced by the imported one;
* the invitation of the time point is linked, and marked ``completed`` (at the latest answer
  day) once every instrument of the time point has a submitted response — unless it was
  cancelled or the person declined;
* rows go in with :func:`vaikuttavuus.bulk.bulk_insert` (explicit ids, reserved under a table
  lock on PostgreSQL), inside the import's savepoint: all or nothing.

Like every service this only flushes; the caller commits.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import bindparam, delete, func, literal_column, or_, select, update

from vaikuttavuus.bulk import analyze_after_bulk, bulk_insert, lock_tables, next_id
from vaikuttavuus.database import AnySession
from vaikuttavuus.domain.imports import ResponseKey, StoredResponse
from vaikuttavuus.domain.specs import InstrumentSpec
from vaikuttavuus.models import (
    Answer,
    ImportBatch,
    InstrumentVersion,
    Invitation,
    Person,
    Pilot,
    Response,
    TimePoint,
    User,
)
from vaikuttavuus.services.definitions import instrument_spec

LOOKUP_CHUNK = 5_000
ANSWER_CHUNK = 200_000
"""Answers per insert (and per progress step)."""
ANSWER_HOUR_UTC = 12
"""Imported answers keep their day; ``submitted_at`` is that day at this hour (UTC)."""
COMPLETABLE = ("scheduled", "open", "expired")
"""Invitation statuses an imported answer completes (cancelled and declined stay)."""

Progress = Callable[[int, int], None]


def _chunks(values: Sequence[Any], size: int = LOOKUP_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


# -- look-ups for the checks ------------------------------------------------------------------


def instrument_versions(session: AnySession) -> dict[str, dict[str, InstrumentSpec]]:
    """Every loaded instrument version: code → version → spec."""
    found: dict[str, dict[str, InstrumentSpec]] = {}
    for version in session.scalars(select(InstrumentVersion).order_by(InstrumentVersion.id)):
        found.setdefault(version.code, {})[version.version] = instrument_spec(version)
    return found


def current_versions(session: AnySession) -> dict[str, str]:
    """Instrument code → its current version."""
    return dict(
        session.execute(
            select(InstrumentVersion.code, InstrumentVersion.version).where(
                InstrumentVersion.is_current.is_(True)
            )
        ).all()
    )


def stored_responses(
    session: AnySession, pilot: Pilot, keys: Sequence[ResponseKey]
) -> dict[ResponseKey, StoredResponse]:
    """The stored responses among (enrolment id, time point, instrument) keys, submitted ones
    with their answers."""
    wanted = set(keys)
    enrolments = sorted({key[0] for key in wanted})
    found: dict[ResponseKey, tuple[int, StoredResponse]] = {}
    for chunk in _chunks(enrolments):
        rows = session.execute(
            select(
                Response.id,
                Response.enrolment_id,
                TimePoint.code,
                Response.instrument_code,
                Response.status,
                InstrumentVersion.version,
                Response.submitted_at,
                Response.mode,
                Response.proxy,
            )
            .join(TimePoint, Response.time_point_id == TimePoint.id)
            .join(InstrumentVersion, Response.instrument_version_id == InstrumentVersion.id)
            .where(Response.enrolment_id.in_(list(chunk)), TimePoint.pilot_id == pilot.id)
        )
        for response_id, enrolment_id, tp, code, status, version, submitted, mode, proxy in rows:
            key = (int(enrolment_id), str(tp), str(code))
            if key in wanted:
                day = submitted.date() if submitted is not None else None
                found[key] = (
                    int(response_id),
                    StoredResponse(status, str(version), day, str(mode), bool(proxy)),
                )
    submitted_ids = {rid: key for key, (rid, s) in found.items() if s.status == "submitted"}
    answers: dict[int, dict[str, str]] = {rid: {} for rid in submitted_ids}
    for chunk in _chunks(sorted(submitted_ids)):
        for response_id, item_id, value in session.execute(
            select(Answer.response_id, Answer.item_id, Answer.value).where(
                Answer.response_id.in_(list(chunk))
            )
        ):
            answers[int(response_id)][str(item_id)] = str(value)
    result: dict[ResponseKey, StoredResponse] = {}
    for key, (response_id, stored) in found.items():
        given = answers.get(response_id)
        result[key] = stored if given is None else dataclasses.replace(stored, answers=given)
    return result


def subject_resolver(session: AnySession) -> Callable[[str], str | None]:
    """``Patient/<key>`` of an export → the person's pseudonym (people not erased). The keys
    are computed on first use, one HMAC per person."""
    from vaikuttavuus.services.exports import PERSON_KEY_PURPOSE, KeyedHasher

    table: dict[str, str] = {}

    def resolve(key: str) -> str | None:
        if not table:
            hasher = KeyedHasher(PERSON_KEY_PURPOSE)
            for person_id, pseudonym in session.execute(
                select(Person.id, Person.pseudonym).where(Person.erased_at.is_(None))
            ):
                table[hasher(str(person_id))] = pseudonym
            table.setdefault("", "")
        return table.get(key) or None

    return resolve


# -- storing ----------------------------------------------------------------------------------


def _noon(days: pd.Series) -> pd.Series:
    """Days (datetime64) → that day at :data:`ANSWER_HOUR_UTC`, timezone-aware UTC."""
    moments = pd.to_datetime(days) + pd.Timedelta(hours=ANSWER_HOUR_UTC)
    return moments.dt.tz_localize("UTC")


def _invitations(
    session: AnySession, enrolment_ids: Sequence[int]
) -> dict[tuple[int, int], tuple[int, str]]:
    """(enrolment id, time point id) → (invitation id, status)."""
    found: dict[tuple[int, int], tuple[int, str]] = {}
    for chunk in _chunks(enrolment_ids):
        for invitation_id, enrolment_id, time_point_id, status in session.execute(
            select(
                Invitation.id, Invitation.enrolment_id, Invitation.time_point_id, Invitation.status
            ).where(Invitation.enrolment_id.in_(list(chunk)))
        ):
            found[(int(enrolment_id), int(time_point_id))] = (int(invitation_id), str(status))
    return found


def _replace_started(
    session: AnySession, frame: pd.DataFrame, time_points: Mapping[str, int]
) -> None:
    """Delete the unsent responses (and their answers) that imported rows replace."""
    started = frame[frame["replaces"]]
    if started.empty:
        return
    ids: list[int] = []
    row: Any  # a named tuple of the frame's columns (pandas-stubs type its fields as any scalar)
    for row in started.itertuples(index=False):
        found = session.scalar(
            select(Response.id).where(
                Response.enrolment_id == int(row.enrolment_id),
                Response.time_point_id == time_points[row.time_point],
                Response.instrument_code == row.instrument,
                Response.status == "in_progress",
            )
        )
        if found is not None:
            ids.append(int(found))
    for chunk in _chunks(ids):
        session.execute(delete(Answer).where(Answer.response_id.in_(list(chunk))))
        session.execute(delete(Response).where(Response.id.in_(list(chunk))))


def _idempotency_keys(count: int) -> np.ndarray:
    """``count`` random 128-bit keys as hex (the column is unique; imports have no request to
    key them by)."""
    raw = os.urandom(16 * count).hex()
    return np.array([raw[i : i + 32] for i in range(0, len(raw), 32)], dtype=object)


def store(
    session: AnySession,
    batch: ImportBatch,
    pilot: Pilot,
    frame: pd.DataFrame,
    answers: pd.DataFrame,
    user: User | None,
    progress: Progress | None = None,
) -> int:
    """Store the checked responses and answers; returns the number of responses."""
    total = len(frame)
    if total == 0:
        return 0
    time_points = {tp.code: tp.id for tp in pilot.time_points}
    version_ids = {
        (code, version): int(version_id)
        for version_id, code, version in session.execute(
            select(InstrumentVersion.id, InstrumentVersion.code, InstrumentVersion.version)
        )
    }
    responses_table = Response.__table__
    answers_table = Answer.__table__
    lock_tables(session, [responses_table, answers_table])
    _replace_started(session, frame, time_points)

    enrolment_ids = frame["enrolment_id"].to_numpy(dtype="int64")
    time_point_ids = frame["time_point"].map(time_points).to_numpy(dtype="int64")
    invitations = _invitations(session, sorted(set(enrolment_ids.tolist())))
    invitation_ids = pd.array(
        [
            found[0] if (found := invitations.get((e, t))) else None
            for e, t in zip(enrolment_ids.tolist(), time_point_ids.tolist(), strict=True)
        ],
        dtype="Int64",
    )
    version_of = [
        version_ids[(code, version)]
        for code, version in zip(frame["instrument"], frame["version"], strict=True)
    ]
    first = next_id(session, responses_table)
    ids = np.arange(first, first + total, dtype="int64")
    submitted = _noon(frame["completed_on"]).reset_index(drop=True)
    rows = pd.DataFrame(
        {
            "id": ids,
            "enrolment_id": enrolment_ids,
            "time_point_id": time_point_ids,
            "invitation_id": invitation_ids,
            "instrument_version_id": np.asarray(version_of, dtype="int64"),
            "instrument_code": frame["instrument"].to_numpy(dtype=object),
            "status": "submitted",
            "language": frame["language"].to_numpy(dtype=object),
            "mode": frame["mode"].to_numpy(dtype=object),
            "proxy": frame["proxy"].to_numpy(dtype=bool),
            "entered_by_user_id": pd.array([None] * total, dtype="Int64"),
            "idempotency_key": _idempotency_keys(total),
            "started_at": submitted,
            "updated_at": submitted,
            "submitted_at": submitted,
            "import_batch_id": batch.id,
        }
    )
    bulk_insert(session, responses_table, rows)

    response_of_line = pd.Series(ids, index=frame.index.to_numpy())
    answer_rows = pd.DataFrame(
        {
            "response_id": response_of_line.reindex(answers["line"].to_numpy()).to_numpy(),
            "item_id": answers["item_id"].to_numpy(dtype=object),
            "value": answers["value"].to_numpy(dtype=object),
            "value_num": answers["value_num"].to_numpy(dtype="float64"),
        }
    )
    count = len(answer_rows)
    for start in range(0, count, ANSWER_CHUNK):
        chunk = answer_rows.iloc[start : start + ANSWER_CHUNK].reset_index(drop=True)
        bulk_insert(session, answers_table, chunk)
        if progress is not None:
            progress(min(start + ANSWER_CHUNK, count), count)
    _complete_invitations(session, pilot, invitations, enrolment_ids, time_point_ids)
    session.flush()
    analyze_after_bulk(session, "responses", total)
    analyze_after_bulk(session, "answers", count)
    return total


def _complete_invitations(
    session: AnySession,
    pilot: Pilot,
    invitations: Mapping[tuple[int, int], tuple[int, str]],
    enrolment_ids: np.ndarray,
    time_point_ids: np.ndarray,
) -> int:
    """Mark completed the invitations whose time point now has a submitted response for every
    instrument it schedules; returns how many."""
    needed = {tp.id: {link.instrument_code for link in tp.instruments} for tp in pilot.time_points}
    touched = {
        (int(e), int(t))
        for e, t in zip(enrolment_ids.tolist(), time_point_ids.tolist(), strict=True)
        if (found := invitations.get((int(e), int(t)))) and found[1] in COMPLETABLE
    }
    if not touched:
        return 0
    answered: dict[tuple[int, int], tuple[set[str], datetime]] = {}
    for chunk in _chunks(sorted({e for e, _t in touched})):
        for enrolment_id, time_point_id, code, latest in session.execute(
            select(
                Response.enrolment_id,
                Response.time_point_id,
                Response.instrument_code,
                func.max(Response.submitted_at),
            )
            .where(Response.enrolment_id.in_(list(chunk)), Response.status == "submitted")
            .group_by(Response.enrolment_id, Response.time_point_id, Response.instrument_code)
        ):
            assert latest is not None  # a submitted response has its submission time
            key = (int(enrolment_id), int(time_point_id))
            codes, last = answered.get(key, (set(), latest))
            codes.add(str(code))
            answered[key] = (codes, max(last, latest))
    done = [
        {"b_id": invitations[key][0], "b_at": answered[key][1]}
        for key in sorted(touched)
        if key in answered and needed.get(key[1], set()) <= answered[key][0]
    ]
    if done:
        table = Invitation.__table__
        session.execute(
            update(table)
            # literal values: an expanding IN cannot be used with executemany
            .where(
                table.c.id == bindparam("b_id"),
                or_(*(table.c.status == literal_column(f"'{status}'") for status in COMPLETABLE)),
            )
            .values(status="completed", completed_at=bindparam("b_at")),
            done,
        )
    return len(done)
