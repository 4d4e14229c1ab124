"""Write a synthetic data set (:mod:`vaikuttavuus.synthetic`) into the database, or remove it.

Loading maps the data set's codes to ids (pilots, arms, time points, the current instrument
versions), reserves id ranges for the parent tables and bulk-inserts every table, parents
before children, with :func:`vaikuttavuus.bulk.bulk_insert` — no ORM objects and no round
trip per row. On PostgreSQL the tables are locked against other writers for the load and their
foreign keys are checked once at the end (:func:`vaikuttavuus.bulk.foreign_keys_checked_at_end`).
Everything happens in the caller's transaction (the CLI commits). Demo generation writes no
audit events: no real person's data is viewed or changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, Select, Table, delete, exists, select
from sqlalchemy.orm import InstrumentedAttribute

from vaikuttavuus.bulk import (
    analyze_after_bulk,
    bulk_insert,
    foreign_keys_checked_at_end,
    indexed_foreign_keys,
    lock_tables,
    next_id,
)
from vaikuttavuus.database import AnySession
from vaikuttavuus.models import (
    Answer,
    Arm,
    Base,
    ClinicalMeasurement,
    CostItem,
    Enrolment,
    Invitation,
    Person,
    Pilot,
    Procedure,
    Response,
    ServiceExposure,
    TimePoint,
)
from vaikuttavuus.services.definitions import current_instrument
from vaikuttavuus.synthetic import SyntheticData

DEMO_SOURCE = "demo"
_LOOKUP_CHUNK = 5_000


@dataclass(frozen=True)
class DemoSummary:
    """Rows written per table, in loading order."""

    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def demo_data_present(session: AnySession) -> bool:
    """Whether any demo person (``people.source = 'demo'``) is stored."""
    return bool(session.scalar(select(exists().where(Person.source == DEMO_SOURCE))))


def load_demo_data(session: AnySession, data: SyntheticData) -> DemoSummary:
    """Insert ``data`` (both pilots) and return the number of rows per table.

    Raises :class:`LookupError` when a pilot, arm, time point or instrument of the data set is
    not loaded (run ``vaikuttavuus init``), and :class:`ValueError` when the current version of
    an instrument is not the one the answers were generated for.
    """
    tables = [_table(model) for model in (
        Person, Enrolment, Procedure, ClinicalMeasurement, ServiceExposure, CostItem,
        Invitation, Response, Answer,
    )]  # fmt: skip
    lock_tables(session, tables)
    pilot_ids, arm_ids, time_point_ids = _pilot_lookups(session)
    version_ids = _instrument_versions(session, data)

    person_base = next_id(session, _table(Person))
    enrolment_base = next_id(session, _table(Enrolment))
    invitation_base = next_id(session, _table(Invitation))
    response_base = next_id(session, _table(Response))

    people = data.people.copy()
    people.insert(0, "id", people.pop("person_key").to_numpy() + person_base)
    _avoid_clashes(session, people)

    enrolments = data.enrolments.copy()
    enrolments.insert(0, "id", enrolments.pop("enrolment_key").to_numpy() + enrolment_base)
    enrolments.insert(1, "person_id", enrolments.pop("person_key").to_numpy() + person_base)
    pilot = enrolments.pop("pilot")
    enrolments.insert(2, "pilot_id", _mapped(pilot, pilot_ids, "pilot"))
    enrolments.insert(3, "arm_id", _mapped(_pairs(pilot, enrolments.pop("arm")), arm_ids, "arm"))

    invitations = data.invitations.copy()
    invitations.insert(0, "id", invitations.pop("invitation_key").to_numpy() + invitation_base)
    invitations["enrolment_id"] = invitations.pop("enrolment_key").to_numpy() + enrolment_base
    invitations["time_point_id"] = _mapped(
        _pairs(invitations.pop("pilot"), invitations.pop("time_point")),
        time_point_ids,
        "time point",
    )

    responses = data.responses.copy()
    responses.insert(0, "id", responses.pop("response_key").to_numpy() + response_base)
    responses["enrolment_id"] = responses.pop("enrolment_key").to_numpy() + enrolment_base
    responses["invitation_id"] = responses.pop("invitation_key").to_numpy() + invitation_base
    responses["time_point_id"] = _mapped(
        _pairs(responses.pop("pilot"), responses.pop("time_point")),
        time_point_ids,
        "time point",
    )
    responses["instrument_code"] = responses.pop("instrument")
    responses["instrument_version_id"] = _mapped(
        responses["instrument_code"], version_ids, "instrument"
    )

    answers = data.answers.copy()
    answers.insert(0, "response_id", answers.pop("response_key").to_numpy() + response_base)

    frames = {
        "people": people,
        "enrolments": enrolments,
        "procedures": _with_enrolment_id(data.procedures, enrolment_base),
        "clinical_measurements": _with_enrolment_id(data.clinical_measurements, enrolment_base),
        "service_exposures": _with_enrolment_id(data.service_exposures, enrolment_base),
        "cost_items": _with_enrolment_id(data.cost_items, enrolment_base),
        "invitations": invitations,
        "responses": responses,
        "answers": answers,
    }
    counts = {}
    with foreign_keys_checked_at_end(session, tables):
        for table in tables:
            counts[table.name] = bulk_insert(session, table, frames[table.name])
    for name, rows in counts.items():
        analyze_after_bulk(session, name, rows)
    return DemoSummary(counts=counts)


def remove_demo_data(session: AnySession) -> dict[str, int]:
    """Delete every demo person and everything that refers to them, children first.

    The tables to clear are found from the foreign keys, so rows of tables added later go
    too. Audit events stay (they are append-only and refer to people without a foreign key).
    Foreign keys are checked once per constraint on PostgreSQL, and unindexed foreign-key
    columns get a temporary index on SQLite, so the time grows linearly with the rows.
    Returns the number of rows deleted per table.
    """
    people = _table(Person)
    plan: list[tuple[Table, ColumnElement[bool]]] = []
    _plan_deletes(people, people.c.source == DEMO_SOURCE, plan)
    tables = list(dict.fromkeys(table for table, _condition in plan))
    counts: dict[str, int] = {}
    with foreign_keys_checked_at_end(session, tables), indexed_foreign_keys(session, tables):
        for table, condition in plan:
            deleted = session.execute(delete(table).where(condition))
            rows = int(getattr(deleted, "rowcount", 0) or 0)
            counts[table.name] = counts.get(table.name, 0) + rows
    session.flush()
    return counts


# -- helpers ------------------------------------------------------------------------------------


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _pilot_lookups(
    session: AnySession,
) -> tuple[dict[str, int], dict[tuple[str, str], int], dict[tuple[str, str], int]]:
    pilots = {code: pilot_id for pilot_id, code in session.execute(select(Pilot.id, Pilot.code))}
    arms = {
        (pilot, code): arm_id
        for arm_id, pilot, code in session.execute(
            select(Arm.id, Pilot.code, Arm.code).join(Pilot, Arm.pilot_id == Pilot.id)
        )
    }
    time_points = {
        (pilot, code): tp_id
        for tp_id, pilot, code in session.execute(
            select(TimePoint.id, Pilot.code, TimePoint.code).join(
                Pilot, TimePoint.pilot_id == Pilot.id
            )
        )
    }
    return pilots, arms, time_points


def _instrument_versions(session: AnySession, data: SyntheticData) -> dict[str, int]:
    """The current version id of every instrument answered, checked against the data set."""
    result = {}
    for code in pd.unique(data.responses["instrument"]).tolist():
        version = current_instrument(session, code)
        wanted = data.instrument_versions.get(code)
        if wanted is not None and version.version != wanted:
            raise ValueError(
                f"the answers follow {code}@{wanted} but the current version is "
                f"{version.key}; generate the data set again from the loaded definitions"
            )
        result[code] = version.id
    return result


def _pairs(first: pd.Series, second: pd.Series) -> pd.Series:
    return pd.Series(list(zip(first.tolist(), second.tolist(), strict=True)), index=first.index)


def _mapped(keys: pd.Series, ids: Mapping[Any, int], what: str) -> pd.Series:
    codes, uniques = pd.factorize(keys)
    missing = [key for key in uniques if key not in ids]
    if missing:
        raise LookupError(
            f"unknown {what}(s) {', '.join(map(str, missing))}; run `vaikuttavuus init`"
        )
    lookup = pd.array([ids[key] for key in uniques], dtype="int64")
    return pd.Series(lookup[codes], index=keys.index)


def _with_enrolment_id(frame: pd.DataFrame, enrolment_base: int) -> pd.DataFrame:
    result = frame.copy()
    result.insert(0, "enrolment_id", result.pop("enrolment_key").to_numpy() + enrolment_base)
    return result


def _avoid_clashes(session: AnySession, people: pd.DataFrame) -> None:
    """Keep the unique pseudonyms and identity hashes unique against stored people.

    A clashing pseudonym gets a fresh random one; a clashing identity hash (only possible
    with another synthetic code under the same key) is dropped, as demo people need none.
    """
    from random import SystemRandom

    from vaikuttavuus.domain import identity

    taken = _existing(session, Person.pseudonym, people["pseudonym"].tolist())
    if taken:
        rng = SystemRandom()
        used = set(people["pseudonym"].tolist()) | taken
        clashes = people["pseudonym"].isin(taken).to_numpy()
        fresh = []
        for _ in range(int(clashes.sum())):
            candidate = identity.new_pseudonym(rng)
            while candidate in used or _existing(session, Person.pseudonym, [candidate]):
                candidate = identity.new_pseudonym(rng)
            used.add(candidate)
            fresh.append(candidate)
        people.loc[clashes, "pseudonym"] = fresh
    hashes = people["identity_hash"].dropna().tolist()
    known = _existing(session, Person.identity_hash, hashes)
    if known:
        people.loc[people["identity_hash"].isin(known).to_numpy(), "identity_hash"] = None


def _existing(
    session: AnySession,
    column: InstrumentedAttribute[str] | InstrumentedAttribute[str | None],
    values: list[str],
) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(values), _LOOKUP_CHUNK):
        chunk = values[start : start + _LOOKUP_CHUNK]
        found.update(
            value
            for value in session.scalars(select(column).where(column.in_(chunk)))
            if value is not None
        )
    return found


def _children(table: Table) -> Iterable[tuple[Table, ColumnElement[int]]]:
    """Tables with a foreign key to ``table`` (not itself) and the referencing column."""
    for child in Base.metadata.sorted_tables:
        if child is table:
            continue
        for key in child.foreign_keys:
            if key.column.table is table:
                yield child, key.parent


def _plan_deletes(
    table: Table, condition: ColumnElement[bool], plan: list[tuple[Table, ColumnElement[bool]]]
) -> None:
    """Append the deletes of ``table``'s rows matching ``condition``, dependents first."""
    children = list(_children(table))
    if children:
        (primary,) = table.primary_key.columns
        ids: Select[int] = select(primary).where(condition)
        for child, column in children:
            _plan_deletes(child, column.in_(ids), plan)
    plan.append((table, condition))
