"""The audit trail as CSV for administrators: filtered like the audit page, streamed, and safe
to open in a spreadsheet (no cell can start a formula)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Select, select

from vaikuttavuus.database import AnySession
from vaikuttavuus.domain.identity import is_pseudonym, normalise_pseudonym
from vaikuttavuus.domain.spreadsheet import FORMULA_START, spreadsheet_safe
from vaikuttavuus.models import AuditEvent, Person

__all__ = ["FORMULA_START", "AuditFilters", "csv_lines", "parse_filters", "spreadsheet_cell"]

MAX_ID = 2**31 - 1

COLUMNS = (
    "id",
    "occurred_at_utc",
    "actor",
    "role",
    "action",
    "object_type",
    "object_id",
    "person_id",
    "pilot_code",
    "ip_address",
    "details",
)


def spreadsheet_cell(value: object) -> str:
    """The text of a CSV cell that a spreadsheet shows as text, never runs as a formula."""
    if value is None:
        return ""
    return spreadsheet_safe(value if isinstance(value, str) else str(value))


@dataclass(frozen=True)
class AuditFilters:
    actor: str = ""
    action: str = ""
    person: int | None = None
    pseudonym: str = ""  # the person by their pseudonym (what staff see), e.g. P-7K3M9Q
    start: date | None = None
    end: date | None = None
    invalid: tuple[str, ...] = ()  # names of filters whose value could not be understood

    def statement(self) -> Select[AuditEvent]:
        statement = select(AuditEvent)
        if self.invalid:
            return statement.where(AuditEvent.id.is_(None))  # nothing matches a bad filter
        if self.actor:
            statement = statement.where(AuditEvent.actor == self.actor)
        if self.action:
            statement = statement.where(AuditEvent.action == self.action)
        if self.person is not None:
            statement = statement.where(AuditEvent.person_id == self.person)
        if self.pseudonym:
            statement = statement.where(
                AuditEvent.person_id.in_(
                    select(Person.id).where(Person.pseudonym == self.pseudonym)
                )
            )
        if self.start is not None:
            statement = statement.where(
                AuditEvent.occurred_at >= datetime.combine(self.start, time(), UTC)
            )
        if self.end is not None:
            statement = statement.where(
                AuditEvent.occurred_at < datetime.combine(self.end + timedelta(days=1), time(), UTC)
            )
        return statement

    def as_details(self) -> dict[str, object]:
        return {
            "actor": self.actor,
            "action": self.action,
            "person": self.person,
            **({"pseudonym": self.pseudonym} if self.pseudonym else {}),
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat() if self.end else None,
        }


def parse_filters(args: Mapping[str, str]) -> AuditFilters:
    """Filters from query parameters; values that make no sense are reported, not guessed."""
    invalid: list[str] = []
    person: int | None = None
    pseudonym = ""
    raw_person = (args.get("person") or "").strip()
    if raw_person:
        if raw_person.isascii() and raw_person.isdigit() and int(raw_person) <= MAX_ID:
            person = int(raw_person)
        elif (
            len(raw_person) <= 40
            and raw_person[:1] in "Pp"
            and is_pseudonym(normalise_pseudonym(raw_person))
        ):
            pseudonym = normalise_pseudonym(raw_person)
        else:
            invalid.append("person")

    def day(name: str) -> date | None:
        raw = (args.get(name) or "").strip()
        if not raw:
            return None
        try:
            return date.fromisoformat(raw)
        except ValueError:
            invalid.append(name)
            return None

    return AuditFilters(
        actor=(args.get("actor") or "").strip()[:120],
        action=(args.get("action") or "").strip()[:40],
        person=person,
        pseudonym=pseudonym,
        start=day("from"),
        end=day("to"),
        invalid=tuple(invalid),
    )


def csv_lines(session: AnySession, filters: AuditFilters, batch: int = 2000) -> Iterator[str]:
    """The CSV text, a few rows at a time, oldest event first, with a byte-order mark so that
    spreadsheets read it as UTF-8."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    yield "\ufeff" + _drain(buffer)
    statement = filters.statement().order_by(AuditEvent.id).execution_options(yield_per=batch)
    for count, event in enumerate(session.scalars(statement), start=1):
        writer.writerow(
            [
                spreadsheet_cell(value)
                for value in (
                    event.id,
                    event.occurred_at.isoformat(timespec="seconds"),
                    event.actor,
                    event.role,
                    event.action,
                    event.object_type,
                    event.object_id,
                    event.person_id,
                    event.pilot_code,
                    event.ip_address,
                    json.dumps(event.details or {}, ensure_ascii=False, sort_keys=True),
                )
            ]
        )
        if count % 200 == 0:
            yield _drain(buffer)
    yield _drain(buffer)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate(0)
    return text
