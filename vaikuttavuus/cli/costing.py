"""Costing commands: ``vaikuttavuus costing show`` and ``vaikuttavuus costing tdabc``.

Both read the costing folder (``costing/``, or ``VAIKUTTAVUUS_COSTING``, or ``--folder``) and
need no database. ``show`` prints the products with their unit costs per price year (and, as a
table, the price index); ``tdabc`` prints the time-driven activity-based costing derivation:
the capacity cost rate of each resource, the cost of each activity and the resulting cost per
product unit beside the catalogue's unit cost. ``--format csv`` writes one table (comma,
decimal point, UTF-8) for a spreadsheet. An invalid folder lists its problems (exit code 1).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from vaikuttavuus.domain.defaults import LANGUAGES

if TYPE_CHECKING:
    import pandas as pd

    from vaikuttavuus.domain.catalogue import CostingCatalogue
    from vaikuttavuus.services.costing_overview import CatalogueOverview, TdabcOverview


__all__ = ["COMMANDS", "costing"]

TDABC_PARTS = ("all", "rates", "activities", "products")
CSV_DECIMALS = 6
"""Digits after the decimal point in CSV output (euros, rates, minutes)."""

Formatter = Callable[[Any], str]


# --------------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------------


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def money(value: Any) -> str:
    return "–" if _missing(value) else f"{float(value):,.2f}".replace(",", " ")


def rate(value: Any) -> str:
    return "–" if _missing(value) else f"{float(value):.4f}"


def number(value: Any) -> str:
    if _missing(value):
        return "–"
    value = float(value)
    return f"{value:,.0f}".replace(",", " ") if value.is_integer() else f"{value:g}"


def share(value: Any) -> str:
    return "–" if _missing(value) else f"{float(value):.2f}"


def text(value: Any) -> str:
    return "" if _missing(value) else str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]) -> str:
    """A plain-text table: columns padded to their widest cell, numbers right-aligned."""
    widths = [len(header) for header in headers]
    for row in rows:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(width) if align else cell.ljust(width)
            for cell, width, align in zip(cells, widths, right, strict=True)
        ).rstrip()

    return "\n".join(
        [line(headers), line(["-" * width for width in widths]), *(line(row) for row in rows)]
    )


def frame_table(frame: pd.DataFrame, columns: Sequence[tuple[Any, str, Formatter]]) -> str:
    """``frame`` as a table of ``(column, header, formatter)``; text columns left-aligned."""
    headers = [header for _column, header, _format in columns]
    rows = [
        [fmt(record[column]) for column, _header, fmt in columns]
        for record in frame.to_dict(orient="records")
    ]
    right = [fmt is not text for _column, _header, fmt in columns]
    return table(headers, rows, right)


def frame_csv(frame: pd.DataFrame, columns: Sequence[tuple[Any, str]]) -> str:
    """``frame`` as CSV with the given ``(column, header)`` pairs; numbers rounded to
    :data:`CSV_DECIMALS` places, missing values empty."""
    from vaikuttavuus.domain.spreadsheet import spreadsheet_safe

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([spreadsheet_safe(header) for _column, header in columns])
    for record in frame.to_dict(orient="records"):
        writer.writerow([_csv_cell(record[column]) for column, _header in columns])
    return buffer.getvalue()


def _csv_cell(value: Any) -> str:
    from vaikuttavuus.domain.spreadsheet import spreadsheet_safe

    if _missing(value):
        return ""
    if isinstance(value, float):
        rounded = round(value, CSV_DECIMALS)
        return str(int(rounded)) if rounded.is_integer() else repr(rounded)
    return spreadsheet_safe(str(value))


# --------------------------------------------------------------------------------------------
# The tables
# --------------------------------------------------------------------------------------------


def show_text(overview: CatalogueOverview) -> str:
    products = frame_table(
        overview.products,
        [
            ("product_code", "product", text),
            ("name", "name", text),
            ("unit", "unit", text),
            ("cost_centre", "cost centre", text),
            *((year, f"€ {year}", money) for year in overview.price_years),
        ],
    )
    index = frame_table(overview.price_index, [("year", "year", text), ("index", "index", number)])
    years = ", ".join(str(year) for year in overview.price_years) or "none"
    return (
        f"Products and unit costs (euros per unit, VAT 0 %, at each price year's prices; "
        f"price years: {years})\n\n{products}\n\nPrice index\n\n{index}\n"
    )


def show_csv(overview: CatalogueOverview) -> str:
    return frame_csv(
        overview.products,
        [
            ("product_code", "product_code"),
            ("name", "name"),
            ("unit", "unit"),
            ("cost_centre", "cost_centre"),
            ("cost_centre_name", "cost_centre_name"),
            *((year, f"unit_cost_eur_{year}") for year in overview.price_years),
        ],
    )


RATE_COLUMNS: list[tuple[str, str, Formatter]] = [
    ("resource", "resource", text),
    ("name", "name", text),
    ("cost_per_year_eur", "€ per year", money),
    ("theoretical_minutes", "theoretical min", number),
    ("practical_share", "practical share", share),
    ("practical_minutes", "practical min", number),
    ("eur_per_minute", "€ per min", rate),
]
ACTIVITY_COLUMNS: list[tuple[str, str, Formatter]] = [
    ("product_code", "product", text),
    ("resource", "resource", text),
    ("minutes", "minutes", number),
    ("eur_per_minute", "€ per min", rate),
    ("cost_eur", "€", money),
]
PRODUCT_COLUMNS: list[tuple[str, str, Formatter]] = [
    ("product_code", "product", text),
    ("unit", "unit", text),
    ("tdabc_unit_cost_eur", "TDABC €", money),
    ("catalogue_unit_cost_eur", "catalogue €", money),
    ("difference_eur", "difference €", money),
    ("ratio", "ratio", share),
]


def tdabc_text(tdabc: TdabcOverview, part: str) -> str:
    blocks: list[str] = []
    if part in {"all", "rates"}:
        blocks.append(
            "Capacity cost rate per resource (€ per min = € per year / (theoretical minutes × "
            f"practical share)), {tdabc.price_year} prices\n\n"
            + frame_table(tdabc.resources, RATE_COLUMNS)
        )
    if part in {"all", "activities"}:
        blocks.append(
            "Activities: minutes of a resource per product unit × the resource's rate\n\n"
            + frame_table(tdabc.activities, ACTIVITY_COLUMNS)
        )
    if part in {"all", "products"}:
        blocks.append(
            "Cost per product unit: TDABC (sum of its activities) and the catalogue's unit cost, "
            f"both at {tdabc.price_year} prices\n\n" + frame_table(tdabc.products, PRODUCT_COLUMNS)
        )
    return "\n\n".join(blocks) + "\n"


def tdabc_csv(tdabc: TdabcOverview, part: str) -> str:
    if part == "rates":
        return frame_csv(tdabc.resources, [(c, c) for c, _h, _f in RATE_COLUMNS])
    if part == "products":
        columns = ["product_code", "product_name", "unit"]
        columns += ["tdabc_unit_cost_eur", "catalogue_unit_cost_eur", "difference_eur", "ratio"]
        return frame_csv(tdabc.products, [(c, c) for c in columns])
    lines = tdabc.activities.merge(
        tdabc.resources[
            ["resource", "cost_per_year_eur", "theoretical_minutes", "practical_share"]
        ],
        on="resource",
        how="left",
    )
    columns = ["product_code", "product_name", "resource", "resource_name", "minutes"]
    columns += ["eur_per_minute", "cost_eur"]
    if part == "all":
        # one table with every figure: each activity with its resource's inputs and its
        # product's TDABC and catalogue unit costs
        lines = lines.merge(
            tdabc.products[["product_code", "tdabc_unit_cost_eur", "catalogue_unit_cost_eur"]],
            on="product_code",
            how="left",
        )
        columns = [*columns[:4], "cost_per_year_eur", "theoretical_minutes", "practical_share"]
        columns += ["eur_per_minute", "minutes", "cost_eur"]
        columns += ["tdabc_unit_cost_eur", "catalogue_unit_cost_eur"]
    return frame_csv(lines, [(c, c) for c in columns])


# --------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------


def _load(folder: Path | None) -> CostingCatalogue:
    from vaikuttavuus.definitions import DefinitionError
    from vaikuttavuus.services.costing_overview import load_catalogue

    try:
        return load_catalogue(folder)
    except DefinitionError as error:
        raise click.ClickException(f"the costing folder is invalid:\n{error}") from error


_folder_option = click.option(
    "--folder",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Another costing folder (default: costing/ or VAIKUTTAVUUS_COSTING).",
)
_format_option = click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "csv"]),
    default="table",
    show_default=True,
    help="A table for reading or CSV for a spreadsheet.",
)
_lang_option = click.option(
    "--lang",
    type=click.Choice(LANGUAGES),
    default="en",
    show_default=True,
    help="Language of the names.",
)


@click.group("costing")
def costing() -> None:
    """Show the costing catalogue and its time-driven activity-based costing (TDABC)."""


@costing.command("show")
@_format_option
@_lang_option
@_folder_option
def show(output_format: str, lang: str, folder: Path | None) -> None:
    """Print the products with their unit costs per price year, and the price index."""
    from vaikuttavuus.services.costing_overview import catalogue_overview

    overview = catalogue_overview(_load(folder), lang)
    click.echo(show_csv(overview) if output_format == "csv" else show_text(overview), nl=False)


@costing.command("tdabc")
@_format_option
@click.option(
    "--part",
    type=click.Choice(TDABC_PARTS),
    default="all",
    show_default=True,
    help="Capacity cost rates per resource, activity costs or product unit costs. With --format "
    "csv, 'all' writes one row per activity with every figure.",
)
@_lang_option
@_folder_option
def tdabc(output_format: str, part: str, lang: str, folder: Path | None) -> None:
    """Print the TDABC derivation: € per minute of each resource (cost per year / practical
    minutes), each activity's minutes × rate, and the cost per product unit beside the
    catalogue's unit cost."""
    from vaikuttavuus.services.costing_overview import catalogue_overview

    overview = catalogue_overview(_load(folder), lang)
    if overview.tdabc is None:
        raise click.ClickException("the costing folder has no TDABC inputs (tdabc.yaml)")
    if output_format == "csv":
        click.echo(tdabc_csv(overview.tdabc, part), nl=False)
    else:
        click.echo(tdabc_text(overview.tdabc, part), nl=False)


COMMANDS: list[click.Command] = [costing]
