"""Building import files for tests: CSV and XLSX bytes, good rows of every kind, and a search of
every text column of the database (to show that an identity code is never stored)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy import JSON, String, Text, inspect, select, text
from sqlalchemy.orm import Session

from vaikuttavuus.models import Base

# Synthetic identity codes (individual numbers 900–999, never a real person's permanent code).
CODES = ("010150-901D", "150348-903L", "230655-9052", "070752-907U", "311245-902C")
NEW_CODES = ("120940-904F", "050538-9069", "280843-908W")


def csv_bytes(
    header: Sequence[str], rows: Sequence[Sequence[Any]], *, sep: str = ",", bom: bool = False
) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=sep, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if cell is None else cell for cell in row])
    data = buffer.getvalue().encode("utf-8")
    return b"\xef\xbb\xbf" + data if bom else data


def xlsx_bytes(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(list(header))
    for row in rows:
        sheet.append([None if cell == "" else cell for cell in row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def file_bytes(fmt: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    return xlsx_bytes(header, rows) if fmt == "xlsx" else csv_bytes(header, rows)


def good_rows(kind: str, today: date) -> tuple[list[str], list[list[Any]]]:
    """Valid rows of ``kind`` for the people of :data:`CODES` (enrolled in BPH for every kind
    but exposures, which are for the older adults pilot). XLSX cells may be dates and numbers."""
    day = today - timedelta(days=10)
    if kind == "people":
        return (
            ["identity_code", "first_name", "last_name", "sex", "arm", "index_date", "phone"],
            [
                [NEW_CODES[0], "Aino", "Uusi", "female", "operating_room", day, "+358401234567"],
                [NEW_CODES[1], "Eino", "Uusi", "m", "outpatient_clinic", day.isoformat(), ""],
            ],
        )
    if kind == "procedures":
        return (
            ["identity_code", "procedure_type", "setting", "performed_on", "drg_code"],
            [
                [CODES[0], "turp", "operating_room", day, "11M06"],
                [CODES[1], "rezum", "outpatient_clinic", day.strftime("%d.%m.%Y"), ""],
            ],
        )
    if kind == "measurements":
        return (
            ["identity_code", "measure", "value", "unit", "measured_on"],
            [
                [CODES[0], "qmax", "12,5", "mL/s", day],
                [CODES[0], "psa", 2.1, "µg/L", day],
                [CODES[1], "clavien_dindo", "IIIa", "", day],
                [CODES[1], "reoperation", "no", "", day],
            ],
        )
    if kind == "resource_use":
        return (
            ["identity_code", "product_code", "quantity", "service_date", "cost_centre"],
            [
                [CODES[0], "OR_MINUTE", 65, day, ""],
                [CODES[0], "UROLOGY_WARD_DAY", "1,5", day, ""],
                [CODES[1], "NURSE_PHONE", 1, day, ""],
            ],
        )
    if kind == "direct_costs":
        return (
            ["identity_code", "amount_eur", "price_year", "service_date", "description"],
            [
                [CODES[0], "1 250,50", 2025, day, "Ostopalvelu"],
                [CODES[1], 99.9, 2024, day, ""],
            ],
        )
    if kind == "exposures":
        return (
            [
                "identity_code",
                "service_type",
                "provider_sector",
                "start_date",
                "end_date",
                "contacts",
                "provider_name",
            ],
            [
                [CODES[2], "day_activity", "ngo", day - timedelta(days=30), day, 8, "Yhdistys"],
                [CODES[3], "friend_service", "parish", day, "", "", ""],
            ],
        )
    raise ValueError(kind)


def text_values(session: Session) -> Iterator[tuple[str, str, str]]:
    """(table, column, value) for every text and JSON value stored in any table."""
    for table in Base.metadata.sorted_tables:
        columns = [c for c in table.columns if isinstance(c.type, String | Text | JSON)]
        if not columns or not inspect(session.get_bind()).has_table(table.name):
            continue
        for row in session.execute(select(*columns)):
            for column, value in zip(columns, row, strict=True):
                if value is None:
                    continue
                text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                yield table.name, column.name, text


def analysed_tables(session: Session) -> set[str]:
    """The tables ANALYZE has been run on by hand (PostgreSQL; autovacuum's runs not counted):
    what an import of many rows leaves behind."""
    rows = session.execute(
        text("SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL")
    )
    return {str(name) for (name,) in rows}
