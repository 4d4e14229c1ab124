"""Importing files: check every row (:mod:`vaikuttavuus.domain.imports`), then store them all
in one transaction — or nothing — and keep a log of each attempt (:class:`ImportBatch`).

* People are matched by identity code (validated, then hashed with the instance key by
  :func:`~vaikuttavuus.services.enrolment.hash_identity_code`) or by pseudonym. The clear code is
  never stored, logged or echoed: the log and the reports hold masked values only.
* All or nothing: the rows are stored inside a savepoint after every row has passed; an
  exception while storing rolls the savepoint back and the batch is logged as ``failed``. A
  process that dies mid-import leaves nothing either: its transaction is never committed.
* Re-importing a file stores nothing twice: rows whose ``row_hash`` is stored already are
  skipped and counted (``rows_duplicate``).
* A dry run checks and logs, and stores no rows.
* People imports create the enrolments and their invitations
  (:func:`~vaikuttavuus.services.schedule.ensure_invitations`, through
  :func:`~vaikuttavuus.services.enrolment.enrol`).
* Questionnaire answers (``responses``, CSV/XLSX or a FHIR Bundle) are matched to stored
  responses by person, time point and instrument instead of row hashes and stored by
  :mod:`vaikuttavuus.services.response_imports`.

Like every service this only flushes; the request (or the CLI command) commits.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import Table, select

from vaikuttavuus import change_log
from vaikuttavuus.bulk import analyze_after_bulk, bulk_insert
from vaikuttavuus.county_time import county_today
from vaikuttavuus.database import AnySession
from vaikuttavuus.domain import identity
from vaikuttavuus.domain.imports import (
    KINDS,
    MAX_REPORTED_ERRORS,
    SCHEMAS,
    ImportContext,
    ImportFileError,
    PeopleFound,
    PersonMatch,
    RawTable,
    RowError,
    Validation,
    mask_identity_codes,
    read_table,
    spreadsheet_safe,
    validate,
)
from vaikuttavuus.domain.specs import InstrumentSpec, MeasureCatalogue, PilotSpec
from vaikuttavuus.models import (
    Arm,
    ClinicalMeasurement,
    CostCentre,
    CostItem,
    Enrolment,
    ImportBatch,
    Person,
    Pilot,
    PriceIndexPoint,
    Procedure,
    Product,
    ServiceExposure,
    User,
    utcnow,
)
from vaikuttavuus.services import audit
from vaikuttavuus.services.definitions import load_measure_catalogue, pilot_spec
from vaikuttavuus.services.enrolment import NewPerson, add_person, enrol, hash_identity_code

log = logging.getLogger(__name__)

STORED = "stored"
CHECKED = "checked"
REJECTED = "rejected"
FAILED = "failed"
RUNNING = "running"
STATUSES = (STORED, CHECKED, REJECTED, FAILED, RUNNING)

CHUNK_ROWS = 50_000
"""Rows per insert statement (and per progress step)."""
LOOKUP_CHUNK = 5_000
"""Values per ``IN (…)`` list when looking up people and stored row hashes."""
MAX_FILENAME = 255


class ImportRefusedError(ValueError):
    """The import cannot start: an unknown pilot, or no pilot given where one is needed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class ImportOutcome:
    """What happened to one file (the :class:`ImportBatch` holds the same, for the log)."""

    batch_id: int
    kind: str
    pilot_code: str
    status: str
    dry_run: bool
    filename: str
    file_sha256: str
    rows_total: int = 0
    rows_stored: int = 0
    rows_duplicate: int = 0
    error_count: int = 0
    errors: list[RowError] = field(default_factory=list)
    note_count: int = 0
    notes: list[RowError] = field(default_factory=list)
    """Notes on rows that are stored all the same (``responses``: ``incomplete``)."""

    @property
    def ok(self) -> bool:
        return self.status in (STORED, CHECKED)


Progress = Callable[[int, int], None]
"""Called with (rows done so far, rows in all): rows stored, or rows checked."""


# --------------------------------------------------------------------------------------------
# Context: definitions, catalogues and database look-ups for the checks
# --------------------------------------------------------------------------------------------


def _chunks(values: Sequence[Any], size: int = LOOKUP_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def find_people(
    session: AnySession, pilot_id: int, identity_hashes: Sequence[str], pseudonyms: Sequence[str]
) -> PeopleFound:
    """The stored (not erased) people among the hashes and pseudonyms, with their enrolment in
    the pilot if they have one."""

    def fetch(column: Any, keys: Sequence[str]) -> dict[str, PersonMatch]:
        found: dict[str, PersonMatch] = {}
        for chunk in _chunks(keys):
            rows = session.execute(
                select(column, Person.id, Enrolment.id, Arm.code, Enrolment.index_date)
                .outerjoin(
                    Enrolment,
                    (Enrolment.person_id == Person.id) & (Enrolment.pilot_id == pilot_id),
                )
                .outerjoin(Arm, Arm.id == Enrolment.arm_id)
                .where(column.in_(list(chunk)), Person.erased_at.is_(None))
            )
            for key, person_id, enrolment_id, arm, index_date in rows:
                found[str(key)] = PersonMatch(person_id, enrolment_id, arm, index_date)
        return found

    return PeopleFound(
        by_identity_hash=fetch(Person.identity_hash, identity_hashes),
        by_pseudonym=fetch(Person.pseudonym, pseudonyms),
    )


def _stored_hashes(session: AnySession, table: Table, hashes: Sequence[str]) -> set[str]:
    """The hashes among ``hashes`` that ``table`` holds, in chunks over the driver's cursor
    (a million look-ups through the ORM would cost more than the import)."""
    found: set[str] = set()
    connection = session.connection()
    cursor = connection.connection.cursor()
    try:
        if connection.dialect.name == "postgresql":
            # a join with the unnested array uses the row_hash index (``= ANY(%s)`` with a
            # parameter compares every stored row with every hash)
            for chunk in _chunks(hashes, 50_000):
                cursor.execute(
                    f"SELECT t.row_hash FROM unnest(%s::varchar[]) AS wanted(hash) "
                    f"JOIN {table.name} AS t ON t.row_hash = wanted.hash",
                    (list(chunk),),
                )
                found.update(row[0] for row in cursor.fetchall())
        else:
            for chunk in _chunks(hashes):
                marks = ", ".join("?" * len(chunk))
                cursor.execute(
                    f"SELECT row_hash FROM {table.name} WHERE row_hash IN ({marks})", list(chunk)
                )
                found.update(row[0] for row in cursor.fetchall())
    finally:
        cursor.close()
    return found


TABLES: dict[str, Table] = {
    "procedures": Procedure.__table__,
    "measurements": ClinicalMeasurement.__table__,
    "resource_use": CostItem.__table__,
    "direct_costs": CostItem.__table__,
    "exposures": ServiceExposure.__table__,
}
"""Where the rows of each kind go (people: ``people`` and ``enrolments``)."""


def import_context(
    session: AnySession,
    pilot: Pilot,
    kind: str,
    today: date | None = None,
    *,
    allow_outside_window: bool = False,
) -> ImportContext:
    """The checks' view of the pilot, the catalogues and the stored data."""
    table = TABLES.get(kind)
    extra: dict[str, Any] = {}
    if kind == "responses":
        from vaikuttavuus.services import response_imports

        extra = {
            "instruments": response_imports.instrument_versions(session),
            "current_versions": response_imports.current_versions(session),
            "stored_responses": lambda keys: response_imports.stored_responses(
                session, pilot, keys
            ),
            "allow_outside_window": allow_outside_window,
        }
    return ImportContext(
        pilot=pilot_spec(pilot),
        measures=load_measure_catalogue(),
        today=today or county_today(),
        hash_identity_code=hash_identity_code,
        product_codes=tuple(session.scalars(select(Product.code).order_by(Product.code))),
        cost_centre_codes=tuple(session.scalars(select(CostCentre.code).order_by(CostCentre.code))),
        price_years=tuple(
            session.scalars(select(PriceIndexPoint.year).order_by(PriceIndexPoint.year))
        ),
        find_people=lambda hashes, pseudonyms: find_people(session, pilot.id, hashes, pseudonyms),
        stored_row_hashes=(
            (lambda hashes: _stored_hashes(session, table, hashes)) if table is not None else _none
        ),
        **extra,
    )


def _none(_hashes: Sequence[str]) -> Collection[str]:
    return ()


# --------------------------------------------------------------------------------------------
# Running an import
# --------------------------------------------------------------------------------------------


def _pilot_for(
    session: AnySession, kind: str, pilot_code: str | None, table: RawTable | None
) -> Pilot:
    """The pilot named, or else the one the file can only be for.

    Without a name: the pilot of a people file's ``pilot`` column (one value); the only pilot
    configured; the only pilot the kind applies to (``exposures``: the pilot that defines
    service types and provider sectors); or the one pilot the file's people are enrolled in.
    Otherwise :class:`ImportRefusedError` (``pilot_required``) says why the pilot is needed.
    """
    if pilot_code:
        pilot = session.scalar(select(Pilot).where(Pilot.code == pilot_code))
        if pilot is None:
            raise ImportRefusedError("unknown_pilot", f"unknown pilot '{pilot_code}'")
        return pilot
    pilots = list(session.scalars(select(Pilot).order_by(Pilot.code)))
    if not pilots:
        raise ImportRefusedError("pilot_required", "no pilot is defined; run `vaikuttavuus init`")
    listing = ", ".join(p.code for p in pilots)
    if kind == "people":
        codes: set[str] = set()
        if table is not None and "pilot" in table.columns:
            codes = {str(c).strip().casefold() for c in pd.unique(table.frame["pilot"]) if c}
        if len(codes) == 1:
            for pilot in pilots:
                if pilot.code.casefold() in codes:
                    return pilot
        elif not codes and len(pilots) == 1:
            return pilots[0]
        raise ImportRefusedError(
            "pilot_required",
            "name the pilot (--pilot) or give one pilot in the file's pilot column; "
            f"the pilots are {listing}",
        )
    if len(pilots) == 1:
        return pilots[0]
    candidates = [pilot for pilot in pilots if kind_applies(kind, pilot_spec(pilot))]
    if not candidates:
        raise ImportRefusedError(
            "pilot_required", f"no pilot defines what {kind} refers to; the pilots are {listing}"
        )
    if len(candidates) == 1:
        return candidates[0]
    enrolled = _pilots_of_people(session, table, candidates) if table is not None else set()
    if len(enrolled) == 1:
        return next(pilot for pilot in candidates if pilot.code in enrolled)
    if enrolled:
        reason = "the file's people are enrolled in " + ", ".join(sorted(enrolled))
    else:
        reason = "none of the file's people is enrolled in a pilot"
    raise ImportRefusedError(
        "pilot_required",
        f"name the pilot (--pilot): {reason}; {kind} can be imported into "
        + ", ".join(p.code for p in candidates),
    )


def kind_applies(kind: str, spec: PilotSpec) -> bool:
    """Whether the pilot defines everything ``kind`` refers to (e.g. service types)."""
    requires = SCHEMAS[kind].requires
    if not requires:
        return True
    context = ImportContext(
        pilot=spec, measures=load_measure_catalogue(), today=county_today(), hash_identity_code=str
    )
    return all(context.allowed(name) for name in requires)


def _pilots_of_people(session: AnySession, table: RawTable, pilots: Sequence[Pilot]) -> set[str]:
    """The codes of the ``pilots`` in which the people the file names are enrolled (each
    distinct identity code and pseudonym is looked at once; invalid ones are left to the
    checks)."""
    frame = table.frame
    hashes: list[str] = []
    if "identity_code" in frame.columns:
        for text in pd.unique(frame["identity_code"]):
            code = identity.normalise(str(text))
            if code and identity.validate(code) is None:
                hashes.append(hash_identity_code(code))
    pseudonyms: list[str] = []
    if "pseudonym" in frame.columns:
        for text in pd.unique(frame["pseudonym"]):
            pseudonym = identity.normalise_pseudonym(str(text))
            if identity.is_pseudonym(pseudonym):
                pseudonyms.append(pseudonym)
    found: set[str] = set()
    ids = [pilot.id for pilot in pilots]
    for column, keys in ((Person.identity_hash, hashes), (Person.pseudonym, pseudonyms)):
        for chunk in _chunks(keys):
            found.update(
                session.scalars(
                    select(Pilot.code)
                    .distinct()
                    .join(Enrolment, Enrolment.pilot_id == Pilot.id)
                    .join(Person, Enrolment.person_id == Person.id)
                    .where(
                        column.in_(list(chunk)),
                        Person.erased_at.is_(None),
                        Pilot.id.in_(ids),
                    )
                )
            )
    return found


def run_import(
    session: AnySession,
    *,
    kind: str,
    data: bytes,
    filename: str,
    pilot_code: str | None,
    user: User | None = None,
    actor: str | None = None,
    dry_run: bool = False,
    today: date | None = None,
    progress: Progress | None = None,
    check_progress: Progress | None = None,
    allow_outside_window: bool = False,
) -> ImportOutcome:
    """Check ``data`` (CSV or XLSX; for ``responses`` also a FHIR Bundle in JSON) as ``kind``
    and store its rows in ``pilot_code``, all or nothing. Always logs an :class:`ImportBatch`
    and an audit event (both flushed, committed by the caller). Raises
    :class:`ImportRefusedError` before logging when the pilot is unknown or cannot be told
    (without ``pilot_code``, see :func:`_pilot_for`).

    ``check_progress`` follows the checks (also on a dry run), ``progress`` the storing; both
    are called with (rows done, rows in all). ``allow_outside_window`` (``responses`` only)
    accepts answers dated outside their time point's window; it is recorded on the batch and
    in the audit trail."""
    if kind not in KINDS:
        raise ImportRefusedError("unknown_kind", f"unknown kind '{kind}'")
    if allow_outside_window and kind != "responses":
        raise ImportRefusedError(
            "not_for_kind", "--allow-outside-window is only for questionnaire answers (responses)"
        )
    file_errors: list[RowError] = []
    file_error_count = 0
    table: RawTable | None = None
    try:
        table = _read(session, kind, data)
    except ImportFileError as error:
        file_errors, file_error_count = error.errors, error.count
    pilot = _pilot_for(session, kind, pilot_code, table)
    # an import changes its pilot's data only (its new people are in no other pilot)
    with change_log.pilot_scope(session, pilot.id):
        shown_name = mask_identity_codes(filename or "upload")[-MAX_FILENAME:]
        batch = ImportBatch(
            kind=kind,
            pilot_code=pilot.code,
            filename=shown_name,
            file_sha256=hashlib.sha256(data).hexdigest(),
            user_id=user.id if user is not None else None,
            actor=(user.username if user is not None else actor) or "system",
            dry_run=dry_run,
            allow_outside_window=allow_outside_window,
            status=RUNNING,
            started_at=utcnow(),
        )
        session.add(batch)
        session.flush()

        validation: Validation | None = None
        if table is not None:
            rows = table.rows

            def checked(done: int, steps: int) -> None:
                if check_progress is not None:
                    check_progress(rows * done // max(steps, 1), rows)

            try:
                context = import_context(
                    session, pilot, kind, today, allow_outside_window=allow_outside_window
                )
                validation = validate(kind, table, context, progress=checked)
            except ImportFileError as error:
                file_errors, file_error_count = error.errors, error.count
        if validation is None:
            _finish(batch, REJECTED, errors=file_errors, error_count=file_error_count)
            batch.rows_total = table.rows if table is not None else 0
        elif not validation.ok:
            _finish(
                batch,
                REJECTED,
                errors=list(validation.errors),
                error_count=validation.error_count,
            )
        elif dry_run:
            _finish(batch, CHECKED)
        else:
            costs_before = missing_costs(session, pilot, today) if kind in COSTED_KINDS else None
            try:
                with session.begin_nested():
                    stored = _store(session, batch, pilot, validation, user, today, progress)
            except Exception:
                log.exception(
                    "import %s (%s) failed while storing; nothing was stored", batch.id, kind
                )
                failure = [RowError(0, None, None, "import_failed")]
                _finish(batch, FAILED, errors=failure, error_count=1)
            else:
                batch.rows_stored = stored
                _finish(batch, STORED)
        if validation is not None:
            batch.rows_total = validation.rows_total
            batch.rows_duplicate = validation.rows_duplicate
            notes = [note.to_dict() for note in validation.notes]
            note_count = validation.note_count
            if batch.status == STORED and kind in COSTED_KINDS:
                note = _costs_note(session, pilot, today, costs_before)
                if note is not None:
                    notes.insert(0, note.to_dict())
                    note_count += 1
            batch.notes = notes
            batch.note_count = note_count
        session.flush()
        audit.record(
            "import_dry_run" if dry_run else "import",
            object_type="import_batch",
            object_id=batch.id,
            pilot_code=pilot.code,
            actor=batch.actor,
            details={
                "kind": kind,
                # the file is named by its hash and its batch (object_id): a file name often names
                # a person, and the audit trail is kept for years; the pilot's import log has it
                "sha256": batch.file_sha256,
                "status": batch.status,
                "rows_total": batch.rows_total,
                "rows_stored": batch.rows_stored,
                "rows_duplicate": batch.rows_duplicate,
                "error_count": batch.error_count,
                **({"note_count": batch.note_count} if batch.note_count else {}),
                **({"allow_outside_window": True} if allow_outside_window else {}),
            },
        )
        return outcome_of(batch)


COSTED_KINDS = ("people", "procedures", "resource_use", "direct_costs")
"""Imports that change whose costs are complete: new people, index events, cost rows."""


def missing_costs(session: AnySession, pilot: Pilot, today: date | None) -> tuple[int, int]:
    """(persons whose care cycle has ended without complete cost data, persons with complete
    cost data) in ``pilot`` by its declared rule (``analysis.costs``)."""
    from vaikuttavuus import queries
    from vaikuttavuus.domain.costing import costs_complete

    spec = pilot_spec(pilot)
    enrolments = queries.cohort_enrolments(session, pilot.id)
    if enrolments.empty:
        return 0, 0
    rows = queries.cohort_cost_items(session, pilot.id)
    rule = spec.analysis.costs
    as_of = today or county_today()
    complete = costs_complete(
        enrolments[["enrolment_id", "index_date"]],
        rows,
        start_days=spec.care_cycle.start_days,
        end_days=spec.care_cycle.end_days,
        as_of=as_of,
        products=rule.products if rule.rule == "any_of_products" else None,
    )
    ended = pd.to_datetime(enrolments["index_date"]) + pd.to_timedelta(
        spec.care_cycle.end_days, unit="D"
    ) < pd.Timestamp(as_of)
    n_complete = int(complete.sum())
    return int(ended.sum()) - n_complete, n_complete


def _costs_note(
    session: AnySession, pilot: Pilot, today: date | None, before: tuple[int, int] | None
) -> RowError | None:
    """A note for the whole file when persons whose care cycle has ended lack cost data after
    the import: their costs are missing, not 0 €, and the cost figures changed."""
    missing, complete = missing_costs(session, pilot, today)
    if missing == 0 and (before is None or before[0] == 0):
        return None
    return RowError(
        0,
        None,
        None,
        "costs_missing",
        {
            "missing": missing,
            "before": before[0] if before is not None else missing,
            "complete": complete,
            "complete_before": before[1] if before is not None else complete,
        },
    )


def _read(session: AnySession, kind: str, data: bytes) -> RawTable:
    """The file's rows: CSV or XLSX, or for questionnaire answers a FHIR Bundle (JSON)."""
    if kind == "responses":
        from vaikuttavuus import fhir
        from vaikuttavuus.services import response_imports

        if fhir.is_json(data):
            items = {
                item.id
                for versions in response_imports.instrument_versions(session).values()
                for spec in versions.values()
                for item in spec.items
            }
            return fhir.read_response_bundle(
                data,
                item_ids=items,
                resolve_subject=response_imports.subject_resolver(session),
            )
    return read_table(data)


def _finish(
    batch: ImportBatch, status: str, *, errors: Sequence[RowError] = (), error_count: int = 0
) -> None:
    batch.status = status
    # at most MAX_REPORTED_ERRORS are kept (the checks report no more); error_count counts all
    batch.errors = [error.to_dict() for error in errors[:MAX_REPORTED_ERRORS]]
    batch.error_count = error_count
    batch.finished_at = utcnow()


def outcome_of(batch: ImportBatch) -> ImportOutcome:
    return ImportOutcome(
        batch_id=batch.id,
        kind=batch.kind,
        pilot_code=batch.pilot_code or "",
        status=batch.status,
        dry_run=batch.dry_run,
        filename=batch.filename,
        file_sha256=batch.file_sha256,
        rows_total=batch.rows_total,
        rows_stored=batch.rows_stored,
        rows_duplicate=batch.rows_duplicate,
        error_count=batch.error_count,
        errors=[RowError.from_dict(e) for e in batch.errors or []],
        note_count=batch.note_count or 0,
        notes=[RowError.from_dict(e) for e in batch.notes or []],
    )


# --------------------------------------------------------------------------------------------
# Storing
# --------------------------------------------------------------------------------------------


def _rows_for(
    kind: str, frame: pd.DataFrame, batch: ImportBatch, user: User | None
) -> pd.DataFrame:
    """The validated frame as rows of the kind's table (``created_at``/``recorded_at`` come
    from the columns' defaults)."""
    n = len(frame)
    out = pd.DataFrame(index=pd.RangeIndex(n))
    out["enrolment_id"] = frame["enrolment_id"].to_numpy()

    def put(target: str, source: str) -> None:
        out[target] = frame[source].array

    if kind == "procedures":
        for name in (
            "procedure_type",
            "setting",
            "performed_on",
            "drg_code",
            "unit",
            "surgeon_code",
        ):
            put(name, name)
    elif kind == "measurements":
        put("measure_code", "measure")
        for name in ("value_num", "value_text", "unit", "measured_on"):
            put(name, name)
        out["source"] = "import"
        out["recorded_by_user_id"] = pd.array([user.id if user else None] * n, dtype="Int64")
    elif kind == "resource_use":
        out["kind"] = "resource_use"
        for name in ("product_code", "quantity", "service_date"):
            put(name, name)
        put("cost_centre_code", "cost_centre")
    elif kind == "direct_costs":
        out["kind"] = "direct"
        for name in ("amount_eur", "price_year", "service_date", "product_code", "description"):
            put(name, name)
        put("cost_centre_code", "cost_centre")
    elif kind == "exposures":
        for name in ("service_type", "provider_sector", "provider_name", "cost_eur"):
            put(name, name)
        put("started_on", "start_date")
        put("ended_on", "end_date")
        out["contacts"] = frame["contacts"].fillna(0).astype("int64").to_numpy()
    out["import_batch_id"] = batch.id
    out["row_hash"] = frame["row_hash"].to_numpy()
    return out


def _store(
    session: AnySession,
    batch: ImportBatch,
    pilot: Pilot,
    validation: Validation,
    user: User | None,
    today: date | None,
    progress: Progress | None,
) -> int:
    frame = validation.frame
    total = len(frame)
    if validation.kind == "people":
        return _store_people(session, batch, pilot, frame, today, progress)
    if validation.kind == "responses":
        from vaikuttavuus.services import response_imports

        assert validation.answers is not None
        return response_imports.store(
            session, batch, pilot, frame, validation.answers, user, progress
        )
    table = TABLES[validation.kind]
    # In row-hash order the hash index grows at its end instead of at random places.
    rows = _rows_for(validation.kind, frame, batch, user).sort_values("row_hash")
    with _large_cache(session):
        for start in range(0, total, CHUNK_ROWS):
            chunk = rows.iloc[start : start + CHUNK_ROWS].reset_index(drop=True)
            bulk_insert(session, table, chunk)
            if progress is not None:
                progress(min(start + CHUNK_ROWS, total), total)
    analyze_after_bulk(session, table.name, total)
    return total


@contextmanager
def _large_cache(session: AnySession) -> Iterator[None]:
    """SQLite: a 128 MiB page cache while a large import writes (the default is 2 MiB), so
    index pages stay in memory; restored afterwards."""
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        yield
        return
    previous = connection.exec_driver_sql("PRAGMA cache_size").scalar()
    connection.exec_driver_sql(f"PRAGMA cache_size = -{128 * 1024}")
    try:
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA cache_size = {int(previous or -2000)}")


def _store_people(
    session: AnySession,
    batch: ImportBatch,
    pilot: Pilot,
    frame: pd.DataFrame,
    today: date | None,
    progress: Progress | None,
) -> int:
    """New people through :func:`add_person`, every enrolment through :func:`enrol` (which
    schedules its invitations)."""
    total = len(frame)
    row: Any  # a named tuple of the frame's columns (pandas-stubs type its fields as any scalar)
    for done, row in enumerate(frame.itertuples(index=False), start=1):
        if pd.isna(row.person_id):
            person = add_person(
                session,
                NewPerson(
                    identity_code=row.identity_code,
                    first_name=_value(row.first_name),
                    last_name=_value(row.last_name),
                    birth_year=_value(row.birth_year),
                    sex=_value(row.sex),
                    lives_alone=_value(row.lives_alone),
                    email=_value(row.email),
                    phone=_value(row.phone),
                    postal_address=_value(row.postal_address),
                    preferred_language=row.preferred_language,
                ),
                source="import",
            )
        else:
            found = session.get(Person, int(row.person_id))
            assert found is not None
            person = found
        enrolment = enrol(
            session,
            person,
            pilot_code=pilot.code,
            arm_code=row.arm,
            index_date=pd.Timestamp(row.index_date).date(),
            enrolled_on=pd.Timestamp(row.enrolled_on).date(),
            unit=_value(row.unit),
            clinician_code=_value(row.clinician_code),
            today=today,
        )
        enrolment.import_batch_id = batch.id
        if progress is not None and (done % 500 == 0 or done == total):
            progress(done, total)
    session.flush()
    for table in ("people", "enrolments", "invitations"):  # enrol() schedules invitations
        analyze_after_bulk(session, table, total)
    return total


def _value(value: Any) -> Any:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


# --------------------------------------------------------------------------------------------
# Messages, reports and templates
# --------------------------------------------------------------------------------------------

MESSAGES: dict[str, Any] = {
    "empty_file": _l("The file is empty."),
    "unsupported_format": _l("Unsupported file type: upload a CSV file (UTF-8) or an XLSX file."),
    "not_utf8": _l("The file is not UTF-8 text. Save it as “CSV UTF-8” or as XLSX."),
    "bad_csv": _l(
        "The row has %(found)s values but the header has %(expected)s columns (put text that "
        "contains the delimiter in double quotes)."
    ),
    "unreadable_file": _l("The file cannot be read as an XLSX workbook."),
    "file_too_large": _l("The workbook is too large once unpacked."),
    "too_many_columns": _l(
        "The header has %(found)s columns; a file can have at most %(maximum)s. Remove the "
        "extra columns (see the template)."
    ),
    "missing_column": _l("This required column is missing from the header."),
    "unknown_column": _l("Unknown column. The columns are: %(columns)s."),
    "duplicate_column": _l("This column appears twice in the header."),
    "no_person_column": _l("The file needs the column identity_code or pseudonym."),
    "no_rows": _l("The file has no data rows."),
    "kind_not_in_pilot": _l(
        "The pilot %(pilot)s defines no %(what)s, so this kind of file does not apply to it."
    ),
    "extra_values": _l(
        "The row has values to the right of the last named column (%(expected)s columns)."
    ),
    "missing": _l("A value is required."),
    "not_a_number": _l("Not a number."),
    "not_an_integer": _l("Must be a whole number."),
    "not_a_date": _l("Not a date. Write dates as YYYY-MM-DD or D.M.YYYY."),
    "out_of_range": _l("Must be between %(min)s and %(max)s."),
    "too_long": _l("Too long: at most %(max)s characters."),
    "unknown_code": _l("Not an allowed value. Allowed: %(allowed)s."),
    "wrong_unit": _l("Wrong unit: the measure's unit is %(expected)s."),
    "date_order": _l("Before the start date %(start)s."),
    "date_in_future": _l("The date is after the day of the import (%(today)s)."),
    "outside_window": _l(
        "The date is outside the window of time point %(time_point)s (%(start)s – %(end)s)."
    ),
    "duplicate": _l("The same row is already on line %(first_line)s."),
    "invalid_identity_code": _l("Not a valid personal identity code: %(problem)s."),
    "invalid_format": _l("Not a valid %(expected)s."),
    "contains_identity_code": _l(
        "This looks like a personal identity code. Identity codes belong only in the "
        "identity_code column."
    ),
    "unknown_person": _l("No such person."),
    "wrong_pilot": _l("This row is for another pilot; the file is imported into %(pilot)s."),
    "conflict": _l("Contradicts the stored data."),
    "import_failed": _l(
        "The rows could not be stored because of an error; nothing was stored. Try again, "
        "and if it happens again, tell the administrator."
    ),
    "not_fhir": _l(
        "The file is not a FHIR R4 Bundle (JSON) of questionnaire responses, nor a CSV or "
        "XLSX file."
    ),
    "not_scheduled": _l(
        "The time point %(time_point)s does not include this instrument; it includes "
        "%(instruments)s."
    ),
    "not_in_instrument": _l(
        "This item is not in the row's instrument %(instrument)s; leave it empty on this row."
    ),
    "no_answers": _l("The row has no answers to %(instrument)s."),
    "incomplete": _l(
        "Note: required question(s) not answered: %(items)s. The response is stored as "
        "incomplete; the instrument's missing-item rules leave these scores uncomputed: "
        "%(scores)s."
    ),
    "fhir_entry": _l("This entry of the FHIR Bundle cannot be read."),
    "costs_missing": _l(
        "Note: %(missing)s persons whose care cycle has ended have no complete cost data "
        "(before this import %(before)s). Their costs are missing, not 0 €: the mean costs per "
        "arm are now computed over %(complete)s persons (before %(complete_before)s), the cost "
        "pages and PDFs warn about them, and the adjusted cost-effectiveness analysis imputes "
        "their costs."
    ),
}

_SPECIAL: dict[tuple[str, str], Any] = {
    ("unknown_person", "not_enrolled"): _l("The person is not enrolled in this pilot."),
    ("unknown_person", "not_found"): _l("No person with this identity code or pseudonym."),
    ("conflict", "person"): _l("The identity code and the pseudonym belong to different people."),
    ("conflict", "birth_year"): _l("Does not match the identity code, which gives %(expected)s."),
    ("conflict", "enrolment"): _l(
        "The person is already enrolled in this pilot (arm %(arm)s, index date %(index_date)s). "
        "Change the enrolment in the application, not by importing it again."
    ),
    ("conflict", "setting"): _l(
        "The person's arm %(arm)s does not do procedures in this setting; its settings are "
        "%(allowed)s."
    ),
    ("conflict", "superseded"): _l(
        "This value has already been corrected; correct the newest value instead."
    ),
    ("conflict", "unchanged"): _l("The corrected value is the same as the stored one."),
    ("conflict", "submitted"): _l(
        "Another response to this instrument at this time point was already submitted "
        "(%(completed_on)s); it differs in: %(differs)s. An import never changes a submitted "
        "response."
    ),
    ("unknown_person", "subject"): _l(
        "The subject is not a person of this installation. Give Patient/ and the person key "
        "of an export of this installation, or an identifier: the personal identity code "
        "(system urn:oid:1.2.246.21) or the pseudonym."
    ),
    ("fhir_entry", "resource"): _l("The entry is not a QuestionnaireResponse."),
    ("fhir_entry", "status"): _l(
        "Only completed (or amended) questionnaire responses are imported."
    ),
    ("fhir_entry", "link_id"): _l("No instrument has an item with this linkId."),
    ("incomplete", "computable"): _l(
        "Note: required question(s) not answered: %(items)s. The response is stored as "
        "incomplete; its scores can still be computed by the instrument's missing-item rules."
    ),
    ("duplicate", "stored"): _l("This value is already recorded."),
    ("missing", "either"): _l("Give the identity code or the pseudonym."),
    ("out_of_range", "exclusive"): _l("Must be more than %(min)s and at most %(max)s."),
    ("out_of_range", "unit"): _l("Must be between %(min)s and %(max)s %(unit)s."),
}

_WORDS: dict[str, Any] = {
    "format": _l("it is not of the form DDMMYYCZZZQ"),
    "century_sign": _l("unknown century sign"),
    "date": _l("no such date of birth"),
    "individual_number": _l("the individual number cannot be 000 or 001"),
    "check_character": _l("wrong check character"),
    "email": _l("e-mail address"),
    "phone": _l("phone number"),
    "pseudonym": _l("pseudonym (P- and letters or digits)"),
    "drg": _l("NordDRG code (letters and digits)"),
    "answers": _l("the answers"),
    "completed_on": _l("the date"),
    "mode": _l("the mode"),
    "proxy": _l("proxy"),
    "version": _l("the instrument version"),
}


def _template(error: RowError) -> Any:
    params = error.params
    if error.code == "unknown_person":
        return _SPECIAL[("unknown_person", str(params.get("reason", "not_found")))]
    if error.code == "conflict":
        return _SPECIAL.get(("conflict", str(params.get("reason"))), MESSAGES["conflict"])
    if error.code == "incomplete" and not error.params.get("scores"):
        return _SPECIAL[("incomplete", "computable")]
    if error.code == "fhir_entry":
        return _SPECIAL.get(("fhir_entry", str(params.get("reason"))), MESSAGES["fhir_entry"])
    if error.code == "duplicate" and params.get("stored"):
        return _SPECIAL[("duplicate", "stored")]
    if error.code == "missing" and params.get("either"):
        return _SPECIAL[("missing", "either")]
    if error.code == "out_of_range" and params.get("exclusive"):
        return _SPECIAL[("out_of_range", "exclusive")]
    if error.code == "out_of_range" and params.get("unit"):
        return _SPECIAL[("out_of_range", "unit")]
    return MESSAGES.get(error.code, error.code)


def _shown_param(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_shown_param(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if value is None:
        return "–"
    return str(value)


def describe(error: RowError) -> str:
    """The error's message in the current language."""
    params = {key: _shown_param(value) for key, value in error.params.items()}
    for key in ("problem", "expected"):
        word = error.params.get(key)
        if isinstance(word, str) and word in _WORDS:
            params[key] = str(_WORDS[word])
    differs = error.params.get("differs")
    if isinstance(differs, list):
        params["differs"] = ", ".join(str(_WORDS.get(str(word), word)) for word in differs)
    if error.code == "unknown_code" and error.params.get("more"):
        params["allowed"] += " …"
    if error.code == "wrong_unit" and not error.params.get("expected"):
        return _("This measure has no unit; leave the unit empty.")
    template = str(_template(error))
    try:
        return template % params if "%(" in template else template
    except (KeyError, TypeError, ValueError):
        return template


def report_rows(errors: Sequence[RowError]) -> list[list[str]]:
    """The error report as rows: header, then line, column, value, code, message."""
    rows = [[_("line"), _("column"), _("value"), _("code"), _("message")]]
    for error in errors:
        rows.append(
            [
                str(error.line),
                error.column or "",
                error.value or "",
                error.code,
                describe(error),
            ]
        )
    return rows


def report_csv(errors: Sequence[RowError]) -> str:
    """The error report as CSV (UTF-8 with a byte-order mark for Excel); every cell that a
    spreadsheet could take for a formula is neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in report_rows(errors):
        writer.writerow([spreadsheet_safe(cell) for cell in row])
    return "\ufeff" + buffer.getvalue()


def template_table(
    kind: str,
    *,
    pilots: Sequence[PilotSpec] = (),
    instruments: Mapping[str, InstrumentSpec] | None = None,
    measures: MeasureCatalogue | None = None,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(header, example row) of ``kind``; the example's pilot-specific values come from the
    first of ``pilots`` (see :meth:`Schema.example_row`). Questionnaire answers
    (``responses``) add one column per item of the ``pilots``' instruments (``instruments``:
    id → the current version) and take the example from the first pilot's baseline."""
    schema = SCHEMAS[kind]
    if kind != "responses" or not pilots or instruments is None:
        pilot = pilots[0] if pilots else None
        return schema.header, schema.example_row(pilot, measures)
    from vaikuttavuus.domain.response_imports import example_row, template_header

    codes = dict.fromkeys(code for pilot in pilots for code in pilot.instrument_ids)
    header = template_header([instruments[code] for code in codes if code in instruments])
    return header, example_row(header, pilots[0], instruments)


def current_instrument_specs(session: AnySession) -> dict[str, InstrumentSpec]:
    """Instrument id → the spec of its current version."""
    from vaikuttavuus.models import InstrumentVersion
    from vaikuttavuus.services.definitions import instrument_spec

    return {
        version.code: instrument_spec(version)
        for version in session.scalars(
            select(InstrumentVersion).where(InstrumentVersion.is_current.is_(True))
        )
    }


def template_csv(
    kind: str,
    *,
    with_example: bool = False,
    pilots: Sequence[PilotSpec] = (),
    instruments: Mapping[str, InstrumentSpec] | None = None,
    measures: MeasureCatalogue | None = None,
) -> str:
    """The documented header of ``kind`` (and an example row) as CSV text."""
    header, example = template_table(
        kind, pilots=pilots, instruments=instruments, measures=measures
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    if with_example:
        writer.writerow(example)
    return buffer.getvalue()


def template_xlsx(
    kind: str,
    *,
    with_example: bool = False,
    pilots: Sequence[PilotSpec] = (),
    instruments: Mapping[str, InstrumentSpec] | None = None,
    measures: MeasureCatalogue | None = None,
) -> bytes:
    """The header (and an example row) as an XLSX workbook, every cell formatted as text."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    header_names, example = template_table(
        kind, pilots=pilots, instruments=instruments, measures=measures
    )
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(kind)
    header = []
    for name in header_names:
        cell = WriteOnlyCell(sheet, value=name)
        cell.font = Font(bold=True)
        header.append(cell)
    sheet.append(header)
    if with_example:
        row = []
        for value in example:
            cell = WriteOnlyCell(sheet, value=value)
            cell.number_format = "@"
            row.append(cell)
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
