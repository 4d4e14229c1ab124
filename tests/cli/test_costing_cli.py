"""``vaikuttavuus costing show`` and ``vaikuttavuus costing tdabc``: the catalogue's products
and unit costs per price year, and the TDABC derivation (capacity cost rate per resource,
minutes × rate per activity, cost per product unit) as tables and as CSV, with golden values."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from vaikuttavuus.cli import main
from vaikuttavuus.paths import costing_dir

URO_RATE = 250_000 / (104_400 * 0.8)
"""The urologist's capacity cost rate in the shipped example (€ per minute)."""
FIRST_VISIT = 60 * URO_RATE + 60 * 92_000 / 83_520 + 75 * 60_000 / 96_000
"""TDABC cost of a first urology visit: urologist, outpatient nurse and consulting room."""


def run(*args: str) -> Any:
    return CliRunner().invoke(main, ["costing", *args], prog_name="vaikuttavuus")


def rows(output: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(output)))


def test_show_lists_products_with_unit_costs_per_price_year() -> None:
    result = run("show")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    header = next(line for line in lines if line.startswith("product "))
    assert header.split()[-4:] == ["€", "2024", "€", "2025"]
    or_minute = next(line for line in lines if line.startswith("OR_MINUTE "))
    assert "Operating-room minute (incl. staff)" in or_minute
    assert or_minute.split()[-2:] == ["21.30", "22.00"]
    assert "Price index" in result.output
    assert any(line.split() == ["2025", "127.3"] for line in lines)


def test_show_as_csv_in_finnish() -> None:
    result = run("show", "--format", "csv", "--lang", "fi")
    assert result.exit_code == 0, result.output
    table = rows(result.output)
    assert list(table[0]) == [
        "product_code",
        "name",
        "unit",
        "cost_centre",
        "cost_centre_name",
        "unit_cost_eur_2024",
        "unit_cost_eur_2025",
    ]
    by_code = {row["product_code"]: row for row in table}
    assert by_code["OR_MINUTE"]["name"] == "Leikkaussaliminuutti (sis. henkilöstö)"
    assert by_code["OR_MINUTE"]["cost_centre_name"] == "Leikkausosasto"
    assert (
        by_code["OR_MINUTE"]["unit_cost_eur_2024"],
        by_code["OR_MINUTE"]["unit_cost_eur_2025"],
    ) == (
        "21.3",
        "22",
    )
    assert len(table) == 27


def test_tdabc_prints_rates_activities_and_product_costs() -> None:
    result = run("tdabc")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "Capacity cost rate per resource" in result.output
    urologist = next(line for line in lines if line.startswith("urologist "))
    assert urologist.split()[-1] == f"{URO_RATE:.4f}" == "2.9933"
    assert any(
        line.split() == ["URO_VISIT_FIRST", "urologist", "60", "2.9933", f"{60 * URO_RATE:.2f}"]
        for line in lines
    )
    product = [
        f"{FIRST_VISIT:.2f}",
        "330.00",
        f"{FIRST_VISIT - 330:.2f}",
        f"{FIRST_VISIT / 330:.2f}",
    ]
    assert ["URO_VISIT_FIRST", "visit", *product] in [line.split() for line in lines]
    only_rates = run("tdabc", "--part", "rates")
    assert "urologist" in only_rates.output and "URO_VISIT_FIRST" not in only_rates.output


def test_tdabc_csv_parts_add_up() -> None:
    rates = {
        row["resource"]: row
        for row in rows(run("tdabc", "--format", "csv", "--part", "rates").output)
    }
    assert float(rates["urologist"]["eur_per_minute"]) == pytest.approx(URO_RATE, abs=1e-6)
    assert float(rates["ward_bed"]["practical_share"]) == 0.85
    activities = rows(run("tdabc", "--format", "csv", "--part", "activities").output)
    products = {
        row["product_code"]: row
        for row in rows(run("tdabc", "--format", "csv", "--part", "products").output)
    }
    assert float(products["URO_VISIT_FIRST"]["tdabc_unit_cost_eur"]) == pytest.approx(
        FIRST_VISIT, abs=1e-5
    )
    assert float(products["URO_VISIT_FIRST"]["catalogue_unit_cost_eur"]) == 330
    totals: dict[str, float] = {}
    for line in activities:
        rate = float(rates[line["resource"]]["eur_per_minute"])
        assert float(line["eur_per_minute"]) == pytest.approx(rate)
        assert float(line["cost_eur"]) == pytest.approx(float(line["minutes"]) * rate, abs=1e-3)
        totals[line["product_code"]] = totals.get(line["product_code"], 0) + float(line["cost_eur"])
    assert set(totals) == set(products)
    for code, total in totals.items():
        assert float(products[code]["tdabc_unit_cost_eur"]) == pytest.approx(total, abs=1e-3)
    # every figure in one table: each activity with its resource's inputs and product totals
    everything = rows(run("tdabc", "--format", "csv").output)
    assert len(everything) == len(activities)
    for line in everything:
        practical = float(line["theoretical_minutes"]) * float(line["practical_share"])
        rate = float(line["cost_per_year_eur"]) / practical
        assert float(line["eur_per_minute"]) == pytest.approx(rate, abs=1e-6)
        assert float(line["tdabc_unit_cost_eur"]) == pytest.approx(
            totals[line["product_code"]], abs=1e-4
        )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    copy = tmp_path / "costing"
    shutil.copytree(costing_dir(), copy)
    return copy


def test_another_folder_with_golden_values(folder: Path) -> None:
    (folder / "tdabc.yaml").write_text(
        "price_year: 2025\n"
        "resources:\n"
        "  - {id: nurse, name: {fi: Hoitaja, sv: Skötare, en: Nurse}, cost_per_year_eur: 60000,"
        " theoretical_minutes: 100000, practical_share: 0.6}\n"
        "activities:\n"
        "  - {product: NURSE_PHONE, resource: nurse, minutes: 30}\n",
        encoding="utf-8",
    )
    result = run("tdabc", "--format", "csv", "--part", "products", "--folder", str(folder))
    assert result.exit_code == 0, result.output
    (row,) = rows(result.output)
    # 60 000 € / (100 000 min × 0.6) = 1 € per minute; 30 minutes = 30 €; the catalogue says 45 €
    assert row["product_code"] == "NURSE_PHONE"
    assert (row["tdabc_unit_cost_eur"], row["catalogue_unit_cost_eur"]) == ("30", "45")
    assert (row["difference_eur"], float(row["ratio"])) == ("-15", pytest.approx(2 / 3))
    text = run("tdabc", "--folder", str(folder), "--lang", "sv").output
    assert any(
        line.split()[:2] == ["nurse", "Skötare"] and line.split()[-1] == "1.0000"
        for line in text.splitlines()
    )


def test_without_tdabc_inputs_or_with_a_broken_folder(folder: Path) -> None:
    (folder / "tdabc.yaml").unlink()
    assert run("show", "--folder", str(folder)).exit_code == 0
    missing = run("tdabc", "--folder", str(folder))
    assert missing.exit_code == 1
    assert "no TDABC inputs" in missing.output
    (folder / "price_index.csv").write_text("year,index\n2025,sata\n", encoding="utf-8")
    broken = run("show", "--folder", str(folder))
    assert broken.exit_code == 1
    assert "the costing folder is invalid" in broken.output
    assert "price_index.csv (line 2, column index)" in broken.output
