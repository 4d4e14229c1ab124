"""The costing catalogue specs (vaikuttavuus.domain.catalogue) and the costing/ loader
(vaikuttavuus.definitions.costing): the shipped example folder, consistency rules and error
messages that name the file, line and column."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError

from vaikuttavuus.definitions import DefinitionError, Problem
from vaikuttavuus.definitions.costing import CSV_COLUMNS, load_costing
from vaikuttavuus.domain.catalogue import (
    CostCentre,
    CostingCatalogue,
    PriceIndexPoint,
    Product,
    Tdabc,
    TdabcActivity,
    TdabcResource,
    UnitCost,
    catalogue_issues,
)
from vaikuttavuus.domain.specs import LocalizedText
from vaikuttavuus.paths import costing_dir

SHIPPED = costing_dir()

BPH_PRODUCTS = {
    "URO_VISIT_FIRST": "visit",
    "URO_VISIT_FOLLOWUP": "visit",
    "NURSE_PHONE": "contact",
    "OR_MINUTE": "minute",
    "ANAESTHESIA_MINUTE": "minute",
    "PACU_HOUR": "hour",
    "UROLOGY_WARD_DAY": "day",
    "PROC_ROOM_MINUTE": "minute",
    "TURP_CONSUMABLES": "set",
    "LASER_FIBRE": "item",
    "REZUM_DEVICE": "item",
    "UROLIFT_IMPLANT": "item",
    "PATHOLOGY_SAMPLE": "sample",
    "LAB_PANEL": "panel",
    "UROFLOWMETRY": "test",
    "CATHETER_VISIT": "visit",
    "EMERGENCY_VISIT": "visit",
    "READMISSION_DAY": "day",
}
OLDER_ADULT_PRODUCTS = {
    "DAY_ACTIVITY_DAY": "day",
    "GROUP_SESSION": "session",
    "FRIEND_VISIT": "visit",
    "HOME_CARE_VISIT": "visit",
    "SOCIAL_REHAB_SESSION": "session",
    "DIGITAL_CONTACT": "contact",
    "CLIENT_GUIDANCE_CONTACT": "contact",
    "OUTREACH_VISIT": "visit",
}


def _text(name: str) -> LocalizedText:
    return LocalizedText(fi=name, sv=name, en=name)


def _parts() -> dict[str, object]:
    return {
        "cost_centres": (CostCentre(code="CC", name=_text("Centre")),),
        "products": (
            Product(code="A", name=_text("A"), unit="visit", cost_centre="CC"),
            Product(code="B", name=_text("B"), unit="minute", cost_centre="CC"),
        ),
        "unit_costs": (
            UnitCost(code="A", price_year=2024, unit_cost_eur=100.0),
            UnitCost(code="A", price_year=2025, unit_cost_eur=110.0),
            UnitCost(code="B", price_year=2025, unit_cost_eur=2.5),
        ),
        "price_index": (
            PriceIndexPoint(year=2024, index=100.0),
            PriceIndexPoint(year=2025, index=103.0),
        ),
        "tdabc": Tdabc(
            price_year=2025,
            resources=(
                TdabcResource(
                    id="nurse", name=_text("N"), cost_per_year_eur=1000, theoretical_minutes=100
                ),
            ),
            activities=(TdabcActivity(product="A", resource="nurse", minutes=10),),
        ),
    }


# -- the shipped example folder -------------------------------------------------------------------


def test_shipped_catalogue_loads_with_the_agreed_codes() -> None:
    catalogue = load_costing(SHIPPED)
    units = {p.code: p.unit for p in catalogue.products}
    for code, unit in {**BPH_PRODUCTS, **OLDER_ADULT_PRODUCTS}.items():
        assert units.get(code) == unit, code
    centres = set(catalogue.cost_centre_codes)
    assert {
        "URO_POLI",
        "OR",
        "ANEST",
        "URO_WARD",
        "PATH",
        "LAB",
        "EMERG",
        "ELDER_SERV",
        "HOME_CARE",
        "CLIENT_GUIDANCE",
        "NGO_GRANTS",
    } <= centres
    assert catalogue.product("FRIEND_VISIT").cost_centre == "NGO_GRANTS"
    assert catalogue.product("OR_MINUTE").cost_centre == "OR"
    assert catalogue.product("LAB_PANEL").name.fi.startswith("Laboratoriopaketti (")


def test_shipped_unit_costs_cover_two_price_years_and_differ() -> None:
    catalogue = load_costing(SHIPPED)
    frame = catalogue.unit_cost_frame()
    assert list(frame.columns) == ["product_code", "price_year", "unit_cost_eur"]
    wide = frame.pivot(index="product_code", columns="price_year", values="unit_cost_eur")
    assert set(wide.index) == set(catalogue.product_codes)
    assert {2024, 2025} <= set(wide.columns)
    assert wide[[2024, 2025]].notna().all().all()
    # prices change between years, so indexing a 2024 cost is not the same as the 2025 price
    assert (wide[2025] > wide[2024]).all()


def test_shipped_price_index_runs_2015_to_2026_with_base_100() -> None:
    index = load_costing(SHIPPED).price_index_series()
    assert list(index.index) == list(range(2015, 2027))
    assert index.name == "index"
    assert index[2015] == 100.0
    assert index.is_monotonic_increasing


def test_shipped_tdabc_inputs() -> None:
    catalogue = load_costing(SHIPPED)
    assert catalogue.tdabc is not None
    assert catalogue.tdabc.price_year == 2025
    urologist = catalogue.tdabc.resource("urologist")
    assert urologist.practical_share == 0.8  # the default
    assert catalogue.tdabc.resource("ward_bed").practical_share == 0.85
    products = {a.product for a in catalogue.tdabc.activities}
    assert {"URO_VISIT_FIRST", "OR_MINUTE", "UROLOGY_WARD_DAY", "HOME_CARE_VISIT"} <= products


def test_shipped_files_say_they_are_examples() -> None:
    for name in [*CSV_COLUMNS, "tdabc.yaml"]:
        first = (SHIPPED / name).read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("# EXAMPLE VALUES"), name
    readme = (SHIPPED / "README.md").read_text(encoding="utf-8")
    assert "illustrative examples" in readme


# -- the specs ------------------------------------------------------------------------------------


def test_catalogue_helpers() -> None:
    catalogue = CostingCatalogue(**_parts())  # type: ignore[arg-type]
    assert catalogue.product("B").unit == "minute"
    assert catalogue.cost_centre("CC").name.en == "Centre"
    assert catalogue.unit_cost("A", 2024) == 100.0
    assert catalogue.price_years == (2024, 2025)
    with pytest.raises(KeyError):
        catalogue.product("Z")
    with pytest.raises(KeyError):
        catalogue.unit_cost("B", 2024)
    frame = catalogue.product_frame()
    assert list(frame["product_code"]) == ["A", "B"]
    assert list(frame.columns) == [
        "product_code",
        "unit",
        "cost_centre",
        "name_fi",
        "name_sv",
        "name_en",
    ]
    index = catalogue.price_index_series()
    pd.testing.assert_series_equal(
        index,
        pd.Series([100.0, 103.0], index=pd.Index([2024, 2025], name="year"), name="index"),
    )
    resource = catalogue.tdabc.resource("nurse")  # type: ignore[union-attr]
    assert resource.practical_minutes == 80.0
    assert resource.rate_eur_per_minute == 12.5


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda p: p.update(
                products=(
                    *p["products"],
                    Product(code="A", name=_text("A"), unit="day", cost_centre="CC"),
                )
            ),
            "product A is defined twice",
        ),
        (
            lambda p: p.update(
                products=(Product(code="A", name=_text("A"), unit="visit", cost_centre="XX"),)
            ),
            "unknown cost centre XX",
        ),
        (
            lambda p: p.update(
                unit_costs=(*p["unit_costs"], UnitCost(code="Q", price_year=2025, unit_cost_eur=1))
            ),
            "unknown product Q",
        ),
        (
            lambda p: p.update(
                unit_costs=(*p["unit_costs"], UnitCost(code="A", price_year=2025, unit_cost_eur=9))
            ),
            r"\(A, 2025\) is defined twice",
        ),
        (
            lambda p: p.update(
                unit_costs=(*p["unit_costs"], UnitCost(code="B", price_year=2023, unit_cost_eur=9))
            ),
            "price index has no value for 2023",
        ),
        (
            lambda p: p.update(
                price_index=(*p["price_index"], PriceIndexPoint(year=2024, index=99))
            ),
            "year 2024 is defined twice",
        ),
        (
            lambda p: p.update(
                cost_centres=(*p["cost_centres"], CostCentre(code="UNALLOCATED", name=_text("U")))
            ),
            "UNALLOCATED is reserved",
        ),
        (
            lambda p: p.update(
                products=(
                    *p["products"],
                    Product(code="DIRECT_COST", name=_text("D"), unit="item", cost_centre="CC"),
                )
            ),
            "DIRECT_COST is reserved",
        ),
        (
            lambda p: p.update(
                tdabc=p["tdabc"].model_copy(  # type: ignore[attr-defined]
                    update={
                        "activities": (TdabcActivity(product="Q", resource="nurse", minutes=1),)
                    }
                )
            ),
            "unknown product Q",
        ),
        (
            lambda p: p.update(
                tdabc=p["tdabc"].model_copy(  # type: ignore[attr-defined]
                    update={"activities": (TdabcActivity(product="A", resource="x", minutes=1),)}
                )
            ),
            "unknown resource x",
        ),
        (
            lambda p: p.update(
                tdabc=p["tdabc"].model_copy(update={"price_year": 2030})  # type: ignore[attr-defined]
            ),
            "price index has no value for 2030",
        ),
    ],
)
def test_catalogue_consistency_rules(change: object, message: str) -> None:
    parts = _parts()
    change(parts)  # type: ignore[operator]
    with pytest.raises(ValidationError, match=message):
        CostingCatalogue(**parts)  # type: ignore[arg-type]


def test_catalogue_issues_point_at_the_entry() -> None:
    parts = _parts()
    issues = catalogue_issues(
        parts["cost_centres"],  # type: ignore[arg-type]
        parts["products"],  # type: ignore[arg-type]
        (
            *parts["unit_costs"],  # type: ignore[misc]
            UnitCost(code="A", price_year=2024, unit_cost_eur=1.0),
        ),
        parts["price_index"],  # type: ignore[arg-type]
    )
    assert len(issues) == 1
    assert (issues[0].section, issues[0].index, issues[0].first_index) == ("unit_costs", 3, 0)


@pytest.mark.parametrize(
    ("spec", "data"),
    [
        (UnitCost, {"code": "A", "price_year": 2025, "unit_cost_eur": 0}),
        (UnitCost, {"code": "A", "price_year": 2025, "unit_cost_eur": -5}),
        (UnitCost, {"code": "A", "price_year": 2025, "unit_cost_eur": float("inf")}),
        (UnitCost, {"code": "A B", "price_year": 2025, "unit_cost_eur": 5}),
        (PriceIndexPoint, {"year": 2025, "index": 0}),
        (
            Product,
            {
                "code": "A",
                "name": {"fi": "a", "sv": "a", "en": "a"},
                "unit": "Visit",
                "cost_centre": "CC",
            },
        ),
        (
            TdabcResource,
            {
                "id": "r",
                "name": {"fi": "a", "sv": "a", "en": "a"},
                "cost_per_year_eur": 1,
                "theoretical_minutes": 1,
                "practical_share": 1.2,
            },
        ),
        (TdabcActivity, {"product": "A", "resource": "r", "minutes": 0}),
    ],
)
def test_field_rules(spec: type, data: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        spec.model_validate(data)


# -- the loader -----------------------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "costing"
    shutil.copytree(SHIPPED, target)
    return target


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _line_of(path: Path, start: str) -> int:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith(start):
            return number
    raise AssertionError(start)


def _line_of_bytes(path: Path, start: bytes) -> int:
    for number, line in enumerate(path.read_bytes().splitlines(), start=1):
        if line.startswith(start):
            return number
    raise AssertionError(start)


def _problems(directory: Path) -> list[Problem]:
    with pytest.raises(DefinitionError) as raised:
        load_costing(directory)
    return raised.value.problems


def test_bad_number_names_file_line_and_column(folder: Path) -> None:
    path = folder / "unit_costs.csv"
    line = _line_of(path, "OR_MINUTE,2025,")
    _replace(path, "OR_MINUTE,2025,22.00", "OR_MINUTE,2025,22 euros")
    (problem,) = _problems(folder)
    assert problem.file == str(path)
    assert problem.location == f"line {line}, column unit_cost_eur"
    assert "22 euros" in problem.message
    assert str(problem).startswith(f"{path} (line {line}, column unit_cost_eur): ")


def test_negative_cost_and_bad_year_are_both_reported(folder: Path) -> None:
    path = folder / "unit_costs.csv"
    first = _line_of(path, "LAB_PANEL,2024,")
    second = _line_of(path, "LAB_PANEL,2025,")
    _replace(path, "LAB_PANEL,2024,43.00", "LAB_PANEL,2024,-43")
    _replace(path, "LAB_PANEL,2025,45.00", "LAB_PANEL,20x5,45.00")
    problems = _problems(folder)
    assert [p.location for p in problems] == [
        f"line {first}, column unit_cost_eur",
        f"line {second}, column price_year",
    ]
    assert "greater than 0" in problems[0].message


def test_unknown_product_in_unit_costs(folder: Path) -> None:
    path = folder / "unit_costs.csv"
    with path.open("a", encoding="utf-8") as handle:
        handle.write("NO_SUCH,2025,10\n")
    line = len(path.read_text(encoding="utf-8").splitlines())
    (problem,) = _problems(folder)
    assert (problem.file, problem.location) == (str(path), f"line {line}, column code")
    assert problem.message == "unknown product NO_SUCH"


def test_duplicate_product_names_the_first_line(folder: Path) -> None:
    path = folder / "products.csv"
    first = _line_of(path, "NURSE_PHONE,")
    with path.open("a", encoding="utf-8") as handle:
        handle.write("NURSE_PHONE,Puhelu,Samtal,Call,contact,URO_POLI\n")
    line = len(path.read_text(encoding="utf-8").splitlines())
    (problem,) = _problems(folder)
    assert problem.location == f"line {line}, column code"
    assert problem.message == f"product NURSE_PHONE is defined twice (first on line {first})"


def test_unknown_cost_centre_and_missing_name(folder: Path) -> None:
    path = folder / "products.csv"
    line = _line_of(path, "PACU_HOUR,")
    _replace(
        path,
        "PACU_HOUR,Heräämötunti,Timme på uppvakningsavdelning,Recovery-room (PACU) hour,hour,ANEST",
        "PACU_HOUR,Heräämötunti,,Recovery-room (PACU) hour,hour,NOPE",
    )
    problems = _problems(folder)
    assert {(p.location, p.message) for p in problems} == {
        (f"line {line}, column name_sv", "a value is required"),
    }
    # once the row is valid apart from its cost centre, the reference is reported
    _replace(path, "Heräämötunti,,", "Heräämötunti,Uppvakning,")
    (problem,) = _problems(folder)
    assert (problem.location, problem.message) == (
        f"line {line}, column cost_centre",
        "unknown cost centre NOPE",
    )


def test_a_rejected_row_does_not_cascade(folder: Path) -> None:
    # the product row is invalid; its unit costs and TDABC activities must not add
    # "unknown product" problems on top
    path = folder / "products.csv"
    _replace(path, "minute,OR\n", "Minute!,OR\n")
    problems = _problems(folder)
    assert len(problems) == 1
    assert problems[0].file == str(path)


def test_wrong_number_of_values(folder: Path) -> None:
    path = folder / "cost_centres.csv"
    line = _line_of(path, "LAB,")
    _replace(path, "LAB,Laboratorio,Laboratoriet,Laboratory", "LAB,Laboratorio,Laboratoriet")
    (problem,) = _problems(folder)
    assert problem.location == f"line {line}"
    assert problem.message == "3 values, but the header has 4 columns"


def test_header_problems(folder: Path) -> None:
    path = folder / "price_index.csv"
    line = _line_of(path, "year,index")
    _replace(path, "year,index", "year,value")
    problems = _problems(folder)
    assert {(p.location, p.message) for p in problems} >= {
        (f"line {line}, column value", "unknown column; the columns are year,index"),
        (f"line {line}, column index", "required column is missing"),
    }
    # nothing follows from an unreadable index: no "no value for 2025" on every unit cost
    assert all(p.file == str(path) for p in problems)


def test_missing_file(folder: Path) -> None:
    (folder / "cost_centres.csv").unlink()
    (problem,) = _problems(folder)
    assert problem.file == str(folder / "cost_centres.csv")
    assert problem.message == "the file is missing"


def test_empty_file(folder: Path) -> None:
    (folder / "price_index.csv").write_text("year,index\n", encoding="utf-8")
    (problem,) = _problems(folder)
    assert (problem.location, problem.message) == ("line 1", "the file has no data rows")


def test_not_utf8(folder: Path) -> None:
    path = folder / "cost_centres.csv"
    lines = [
        line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("#")
    ]
    path.write_bytes("\n".join(lines).encode("latin-1"))  # what an old Excel saves
    (problem,) = _problems(folder)
    assert problem.file == str(path)
    # "ANEST,Anestesia ja heräämö": the first "ä" (byte 0xE4) is the 23rd character
    assert problem.location == f"line {_line_of_bytes(path, b'ANEST,')}, column 23"
    assert "UTF-8" in problem.message


def test_finnish_excel_csv_is_accepted(folder: Path) -> None:
    path = folder / "unit_costs.csv"
    rows = [
        line.replace(",", ";").replace("OR_MINUTE;2025;22.00", "OR_MINUTE;2025;22,50")
        for line in path.read_text(encoding="utf-8").splitlines()
        if not line.startswith("#")
    ]
    rows = [
        r.replace("UROLOGY_WARD_DAY;2025;850.00", "UROLOGY_WARD_DAY;2025;1\u00a0050,00")
        for r in rows
    ]
    path.write_bytes(("\r\n".join(rows) + "\r\n").encode("utf-8-sig"))
    catalogue = load_costing(folder)
    assert catalogue.unit_cost("OR_MINUTE", 2025) == 22.5
    assert catalogue.unit_cost("UROLOGY_WARD_DAY", 2025) == 1050.0


def test_comments_and_blank_lines_keep_line_numbers(folder: Path) -> None:
    path = folder / "price_index.csv"
    text = path.read_text(encoding="utf-8").replace("2020,107.2\n", "\n# a note\n2020,oops\n")
    path.write_text(text, encoding="utf-8")
    (problem,) = _problems(folder)
    assert problem.location == f"line {_line_of(path, '2020,')}, column index"


def test_tdabc_errors_name_yaml_line_and_column(folder: Path) -> None:
    path = folder / "tdabc.yaml"
    _replace(path, "    practical_share: 0.85", "    practical_share: 1.5")
    line = _line_of(path, "    practical_share: 1.5")
    (problem,) = _problems(folder)
    assert problem.file == str(path)
    assert problem.location == f"line {line}, column 5 (resources[ward_bed] → practical_share)"
    assert "less than or equal to 1" in problem.message


def test_tdabc_unknown_resource_and_product(folder: Path) -> None:
    path = folder / "tdabc.yaml"
    _replace(
        path,
        "  - {product: NURSE_PHONE, resource: outpatient_nurse, minutes: 35}",
        "  - {product: NURSE_CALL, resource: phone_nurse, minutes: 35}",
    )
    line = _line_of(path, "  - {product: NURSE_CALL")
    problems = _problems(folder)
    assert [(p.location, p.message) for p in problems] == [
        (f"line {line}, column 6 (activities[6] → product)", "unknown product NURSE_CALL"),
        (f"line {line}, column 27 (activities[6] → resource)", "unknown resource phone_nurse"),
    ]


def test_tdabc_yaml_syntax_error(folder: Path) -> None:
    path = folder / "tdabc.yaml"
    _replace(path, "price_year: 2025", "price_year: [2025")
    (problem,) = _problems(folder)
    assert problem.file == str(path)
    assert problem.location.startswith("line ")
    assert "not valid YAML" in problem.message


def test_tdabc_is_optional(folder: Path) -> None:
    (folder / "tdabc.yaml").unlink()
    assert load_costing(folder).tdabc is None


def test_problems_in_several_files_are_reported_together(folder: Path) -> None:
    _replace(folder / "price_index.csv", "2017,101.0", "2017,0")
    _replace(folder / "cost_centres.csv", "PATH,Patologia,Patologi,Pathology", "PATH,Patologia,,")
    problems = _problems(folder)
    assert {Path(p.file).name for p in problems} == {"price_index.csv", "cost_centres.csv"}
    # the PATH row was rejected, so the product in PATH is not reported again
    assert len(problems) == 3  # index; name_sv and name_en of PATH
