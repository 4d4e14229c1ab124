"""The ``vaikuttavuus cea`` command."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result

from vaikuttavuus.cli import main
from vaikuttavuus.cli.cea import cea

SIX = """arm,cost,effect,age
or,1000,0.50,70
or,1200,0.52,65
or,1100,0.48,72
clinic,1500,0.70,68
clinic,1700,0.73,71
clinic,1650,0.67,60
"""
REF_COST, REF_EFFECT = [1000.0, 1200.0, 1100.0], [0.50, 0.52, 0.48]
NEW_COST, NEW_EFFECT = [1500.0, 1700.0, 1650.0], [0.70, 0.73, 0.67]

STRATEGIES = """strategy,cost,effect
A,5000,0.20
B,10000,0.40
C,22000,0.55
D,25000,0.50
E,40000,1.00
"""


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def write(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def run(runner: CliRunner, args: list[str]) -> Result:
    return runner.invoke(cea, args, catch_exceptions=False)


def run_json(runner: CliRunner, args: list[str]) -> dict[str, Any]:
    result = run(runner, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def assert_one_line_error(result: Result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]


def six_args(path: Path, *extra: str) -> list[str]:
    return [
        "--input",
        str(path),
        "--arm",
        "arm",
        "--cost",
        "cost",
        "--effect",
        "effect",
        "--reference",
        "or",
        *extra,
    ]


def test_registered_on_the_main_group() -> None:
    assert "cea" in main.commands


def test_json_keys_and_golden_values(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, SIX)
    out = run_json(
        runner, six_args(path, "--wtp", "0,2000,30000", "--bootstrap", "500", "--seed", "1")
    )
    for key in (
        "n",
        "mean_cost",
        "mean_effect",
        "delta_cost",
        "delta_effect",
        "icer",
        "status",
        "fieller_95",
        "inmb",
        "ceac_parametric",
        "ceac_bootstrap",
        "bootstrap",
    ):
        assert key in out
    assert out["n"] == {"or": 3, "clinic": 3}
    assert out["mean_cost"] == pytest.approx({"or": 1100.0, "clinic": 4850 / 3})
    assert out["mean_effect"] == pytest.approx({"or": 0.5, "clinic": 0.7})
    dc = statistics.mean(NEW_COST) - statistics.mean(REF_COST)
    de = statistics.mean(NEW_EFFECT) - statistics.mean(REF_EFFECT)
    assert out["delta_cost"] == pytest.approx(dc)
    assert out["delta_effect"] == pytest.approx(de)
    assert out["icer"] == pytest.approx(dc / de)
    assert out["status"] == "NE"
    assert list(out["inmb"]) == ["0", "2000", "30000"]
    assert out["inmb"]["2000"] == pytest.approx(2000 * de - dc)
    v_c = (statistics.variance(NEW_COST) + statistics.variance(REF_COST)) / 3
    v_e = (statistics.variance(NEW_EFFECT) + statistics.variance(REF_EFFECT)) / 3
    v_ce = (
        statistics.covariance(NEW_COST, NEW_EFFECT) + statistics.covariance(REF_COST, REF_EFFECT)
    ) / 3
    var = 2000**2 * v_e + v_c - 2 * 2000 * v_ce
    expected = statistics.NormalDist().cdf((2000 * de - dc) / math.sqrt(var))
    assert out["ceac_parametric"]["2000"] == pytest.approx(expected, abs=1e-9)
    low, high = out["fieller_95"]
    assert low < dc / de < high
    assert set(out["ceac_bootstrap"]) == {"0", "2000", "30000"}
    assert all(0 <= p <= 1 for p in out["ceac_bootstrap"].values())
    boot = out["bootstrap"]
    assert boot["replicates"] == 500 and boot["seed"] == 1
    assert boot["delta_cost"][0] <= dc <= boot["delta_cost"][1]
    assert set(boot["inmb"]) == {"0", "2000", "30000"}
    assert "icer" in boot


def test_wtp_keys_keep_the_input_format(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, SIX)
    out = run_json(runner, six_args(path, "--wtp", "0, 2.5e4,20000.5", "--bootstrap", "0"))
    assert list(out["inmb"]) == ["0", "2.5e4", "20000.5"]
    assert out["inmb"]["2.5e4"] == pytest.approx(25_000 * 0.2 - 1550 / 3)
    assert out["ceac_bootstrap"] is None and out["bootstrap"] is None


def test_default_grid_has_501_points(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, SIX)
    out = run_json(runner, six_args(path, "--bootstrap", "200", "--seed", "3"))
    assert len(out["inmb"]) == 501
    assert "20000" in out["ceac_bootstrap"] and "50000" in out["inmb"]


def test_same_seed_same_output(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, SIX)
    args = six_args(path, "--wtp", "1000,3000", "--bootstrap", "300", "--seed", "9")
    assert run(runner, args).stdout == run(runner, args).stdout
    other = run(runner, six_args(path, "--wtp", "1000,3000", "--bootstrap", "300", "--seed", "10"))
    assert other.stdout != run(runner, args).stdout


def test_covariates_give_the_adjusted_inmb(runner: CliRunner, tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    rows = ["arm,cost,effect,age,sex"]
    for i in range(60):
        arm = "clinic" if i % 2 else "or"
        age = 60 + rng.integers(0, 25)
        cost = (2000 if arm == "clinic" else 5000) + 30 * age + rng.normal(0, 300)
        effect = 0.6 + (0.05 if arm == "clinic" else 0) + rng.normal(0, 0.1)
        rows.append(f"{arm},{cost:.2f},{effect:.4f},{age},{'fm'[i % 3 == 0]}")
    path = write(tmp_path, "\n".join(rows) + "\n")
    out = run_json(
        runner, six_args(path, "--covariates", "age,sex", "--wtp", "0,20000", "--bootstrap", "0")
    )
    adjusted = out["adjusted_inmb"]
    assert adjusted["covariates"] == ["age", "sex"]
    assert adjusted["terms"] == ["age", "sex=m"]
    assert adjusted["n"] == 60
    entry = adjusted["inmb"]["20000"]
    assert entry["ci"][0] < entry["estimate"] < entry["ci"][1]
    assert set(entry) == {"estimate", "se", "ci", "p_value"}


def test_dominance_is_a_word_in_text_and_json(runner: CliRunner, tmp_path: Path) -> None:
    text = "arm,cost,effect\na,100,1\na,120,1.2\na,110,1.1\nb,50,2\nb,60,2.1\nb,55,1.9\n"
    path = write(tmp_path, text)
    base = [
        "--input",
        str(path),
        "--arm",
        "arm",
        "--cost",
        "cost",
        "--effect",
        "effect",
        "--reference",
        "a",
        "--bootstrap",
        "200",
        "--seed",
        "1",
    ]
    out = run_json(runner, base)
    assert out["status"] == "dominates" and out["icer"] is None
    result = run(runner, [*base, "--format", "text"])
    assert result.exit_code == 0
    assert "b dominates" in result.stdout
    icer_line = next(line for line in result.stdout.splitlines() if line.startswith("ICER:"))
    assert "-" not in icer_line


def test_text_format_is_a_table(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, SIX)
    result = run(runner, six_args(path, "--bootstrap", "200", "--seed", "2", "--format", "text"))
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "Cost-effectiveness: clinic vs or (reference)"
    assert any(line.split()[:4] == ["arm", "n", "mean", "cost"] for line in lines)
    header = next(line for line in lines if line.startswith("λ"))
    assert "CEAC (param.)" in header and "CEAC (bootstrap)" in header
    table_rows = [line for line in lines if line.split() and line.split()[0].isdigit()]
    assert [row.split()[0] for row in table_rows] == [str(k) for k in range(0, 50_001, 5000)]
    assert "11 of 501" in result.stdout


def test_summary_fixture_json(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, STRATEGIES)
    out = run_json(runner, ["--summary", str(path)])
    rows = {row["strategy"]: row for row in out["strategies"]}
    assert {k: r["status"] for k, r in rows.items()} == {
        "A": "ND",
        "B": "ND",
        "C": "ED",
        "D": "D",
        "E": "ND",
    }
    assert rows["B"]["icer"] == pytest.approx(25_000)
    assert rows["E"]["icer"] == pytest.approx(50_000)
    assert rows["A"]["icer"] is None and rows["D"]["icer"] is None
    assert set(rows["A"]) == {"strategy", "cost", "effect", "status", "icer"}
    assert list(out) == ["strategies"]


def test_summary_text(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, STRATEGIES)
    result = run(runner, ["--summary", str(path), "--format", "text"])
    assert result.exit_code == 0
    line_c = next(line for line in result.stdout.splitlines() if line.startswith("C "))
    assert "ED" in line_c.split()
    assert "25 000.00" in next(line for line in result.stdout.splitlines() if line.startswith("B"))


def test_semicolon_file_with_decimal_commas(runner: CliRunner, tmp_path: Path) -> None:
    text = SIX.replace(",", ";").replace("0.", "0,")
    path = write(tmp_path, text)
    out = run_json(runner, six_args(path, "--wtp", "0", "--bootstrap", "0"))
    assert out["delta_effect"] == pytest.approx(0.2)


@pytest.mark.parametrize(
    ("text", "args", "fragments"),
    [
        (SIX, ["--arm", "group"], ["missing column", "group"]),
        (SIX.replace("clinic,1650", "third,1650"), [], ["exactly two arms", "found 3"]),
        (SIX.replace("1700", "lots"), [], ["column 'cost'", "non-numeric", "data row 5"]),
        (SIX.replace("0.73", ""), [], ["column 'effect'", "empty"]),
        (SIX, ["--reference", "xyz"], ["reference arm 'xyz'"]),
        (SIX, ["--wtp", "0,abc"], ["--wtp"]),
        (SIX, ["--wtp", "-5"], ["--wtp"]),
        (SIX, ["--bootstrap", "many"], ["--bootstrap"]),
        (SIX, ["--bootstrap", "-1"], ["--bootstrap"]),
        (SIX, ["--format", "xml"], ["--format"]),
        (SIX, ["--covariates", "height"], ["height"]),
        ("arm,cost,effect\n", [], ["no data rows"]),
    ],
)
def test_bad_input_is_one_line_exit_2(
    runner: CliRunner, tmp_path: Path, text: str, args: list[str], fragments: list[str]
) -> None:
    path = write(tmp_path, text)
    base = {"--input": str(path), "--arm": "arm", "--cost": "cost", "--effect": "effect"}
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1]
    flat = [item for pair in base.items() for item in pair]
    assert_one_line_error(run(runner, flat), *fragments)


def test_missing_file_and_option_combinations(runner: CliRunner, tmp_path: Path) -> None:
    assert_one_line_error(run(runner, ["--summary", str(tmp_path / "nope.csv")]), "does not exist")
    assert_one_line_error(run(runner, []), "--input", "--summary")
    path = write(tmp_path, SIX)
    assert_one_line_error(run(runner, ["--input", str(path), "--summary", str(path)]), "either")
    assert_one_line_error(run(runner, ["--input", str(path), "--arm", "arm"]), "--cost", "--effect")
    bad_summary = write(tmp_path, "strategy,cost\nA,1\nB,2\n", "s.csv")
    assert_one_line_error(run(runner, ["--summary", str(bad_summary)]), "effect")
