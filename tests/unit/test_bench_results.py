"""The benchmark's results: the figures of a fake tiny run carry every key the issue asks for,
goals are judged, ``results.json`` is written and the table printed (no timing is asserted)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.load import LoadResult
from bench.results import (
    GOALS,
    Goal,
    Results,
    base_name,
    evaluate,
    format_table,
    machine_info,
    markdown_table,
    merge_previous,
    scenario_key,
    write_json,
)
from bench.scenarios import scenario_names
from bench.scenarios.analytics import (
    export_figures,
    pdf_figures,
    report_figures,
    scaling,
    size_label,
)
from bench.scenarios.http import combine
from bench.scenarios.imports import import_figures

REQUIRED = (
    "page_get.ratio_vs_bare",
    "page_get.p95_ms",
    "submit_post.per_s",
    "submit_post.ratio_vs_bare",
    "submit_post_postgresql.per_s",
    "scoring_1m.speedup_vs_loop",
    "scoring_1m.seconds",
    "report.ratio_vs_bare_read",
    "report.peak_rss_mb",
    "report.seconds_10k",
    "report.seconds_50k",
    "report.seconds_200k",
    "report.slope_s_per_10k",
    "bootstrap_10k.seconds",
    "pdf.seconds",
    "import_1m.seconds",
    "export.seconds_10k",
    "export.seconds_200k",
    "export.peak_rss_mb_200k",
    "export.rss_growth_mb",
)


def _load(ok: int, seconds: float, latency: float) -> LoadResult:
    result = LoadResult(sent=ok, ok=ok, seconds=seconds, concurrency=4)
    result.statuses[200] = ok
    result.latencies = [latency] * ok
    return result


def _report_task(people: int) -> dict[str, Any]:
    scale = people / 10_000
    return {
        "pilots": {
            "bph": {
                "people": int(people * 0.4),
                "compute_seconds": 2.0 * scale,
                "bare_read_seconds": 1.0 * scale,
                "answers": int(120_000 * scale),
                "render_seconds": 1.5,
                "pdf_bytes": 80_000,
            },
            "older-adults": {
                "people": int(people * 0.6),
                "compute_seconds": 3.0 * scale,
                "bare_read_seconds": 1.0 * scale,
                "answers": int(160_000 * scale),
                "render_seconds": 2.0,
                "pdf_bytes": 70_000,
            },
        },
        "peak_rss_mb": 400.0 + people / 1000,
    }


def _export_task(people: int, xlsx: bool = True) -> dict[str, Any]:
    scale = people / 10_000
    measured: dict[str, Any] = {
        "csv_seconds": 5.0 * scale,
        "csv_rows": int(290_000 * scale),
        "csv_peak_rss_mb": 300.0,
        "csv_bytes": int(36e6 * scale),
        "xlsx": xlsx,
    }
    if xlsx:
        measured |= {
            "xlsx_seconds": 2.0 * scale,
            "xlsx_rows": people,
            "xlsx_peak_rss_mb": 310.0,
            "xlsx_bytes": int(1.6e6 * scale),
        }
    return measured


def fake_run() -> dict[str, dict[str, Any]]:
    """Figures as a full run would produce them, from made-up task results."""
    sizes = (10_000, 50_000, 200_000)
    scenarios: dict[str, dict[str, Any]] = {}
    for backend in ("sqlite", "postgresql"):
        app = [_load(3_000, 10.0, 0.05)]  # 300/s
        bare = [_load(15_000, 10.0, 0.005)]  # 1 500/s
        scenarios[scenario_key("page_get", backend)] = combine(app, bare)
        scenarios[scenario_key("submit_post", backend)] = combine(app, bare)
        scenarios[scenario_key("report", backend)] = report_figures(
            {n: _report_task(n) for n in sizes}
        )
        scenarios[scenario_key("export", backend)] = export_figures(
            {n: _export_task(n) for n in sizes}
        )
        scenarios[scenario_key("import_1m", backend)] = import_figures(
            {"rows": 1_000_000, "seconds": 40.0, "rows_stored": 1_000_000,
             "stored_in_db": 1_000_000, "all_or_nothing": 1}
        )  # fmt: skip
    scenarios["pdf"] = pdf_figures(200_000, _report_task(200_000), "sqlite")
    scenarios["scoring_1m"] = {"seconds": 0.3, "speedup_vs_loop": 120.0, "rows": 1_000_000}
    scenarios["bootstrap_10k"] = {"seconds": 0.8, "replicates": 10_000, "patients": 10_000}
    return scenarios


def test_a_fake_run_has_every_required_figure(tmp_path: Path) -> None:
    results = Results(quick=False, command="scripts/bench", machine=machine_info("16.4"))
    for key, figures in fake_run().items():
        results.add(key, figures)
    out = tmp_path / "results.json"
    write_json(results.to_json(), out)
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["quick"] is False
    for name in REQUIRED:
        scenario, figure = name.split(".", 1)
        assert figure in data["scenarios"][scenario], name
    machine = data["machine"]
    for key in ("cpu_count", "cpu_model", "ram_gib", "python", "sqlite", "postgresql", "date"):
        assert key in machine
    assert machine["postgresql"] == "16.4"
    assert data["goals"]["page_get.ratio_vs_bare"]["met"] is False  # 300/s against 1 500/s
    assert data["goals"]["submit_post_postgresql.per_s"]["met"] is True
    assert data["goals"]["report.ratio_vs_bare_read"]["met"] is True  # 2.5×
    assert data["goals"]["import_1m.all_or_nothing"]["met"] is True


def test_report_and_export_figures_per_size_and_scaling() -> None:
    scenarios = fake_run()
    report = scenarios["report"]
    assert report["seconds_10k"] == 5.0
    assert report["seconds_200k"] == 100.0
    assert report["bare_read_seconds_50k"] == 10.0
    assert report["ratio_vs_bare_read"] == 2.5
    assert report["people"] == 200_000
    assert report["slope_s_per_10k"] == 5.0
    assert report["scaling_large_vs_small"] == 1.0
    assert report["peak_rss_mb"] == 600.0
    export = scenarios["export"]
    assert export["rows_200k"] == 5_800_000
    assert export["seconds_50k"] == 25.0
    assert export["xlsx_seconds_200k"] == 40.0
    assert export["xlsx_seconds"] == 40.0
    assert export["rss_growth_mb"] == 0.0
    assert export["scaling_large_vs_small"] == 1.0
    quick = export_figures({n: _export_task(n, xlsx=n == 5_000) for n in (1_000, 5_000)})
    assert "xlsx_seconds_1k" not in quick
    assert quick["xlsx_seconds_5k"] == 1.0
    assert quick["seconds_1k"] == 0.5
    pdf = scenarios["pdf"]
    assert pdf["seconds"] == pytest.approx(60.0 + 2.0)  # the slower pilot, compute + render
    assert pdf["render_seconds"] == 2.0


def test_http_figures_are_medians_with_the_ratio() -> None:
    app = [_load(100, 10.0, 0.05), _load(300, 10.0, 0.05), _load(200, 10.0, 0.04)]
    bare = [_load(1000, 10.0, 0.01)] * 3
    figures = combine(app, bare)
    assert figures["per_s"] == 20.0
    assert figures["bare_per_s"] == 100.0
    assert figures["ratio_vs_bare"] == 0.2
    assert figures["p50_ms"] == 50.0
    assert figures["requests"] == 600
    assert figures["errors"] == 0
    assert figures["throttled_429"] == 0
    assert len(figures["per_round"]) == 3


def test_import_figures_scale_to_a_million_rows() -> None:
    figures = import_figures(
        {"rows": 100_000, "seconds": 5.0, "rows_stored": 100_000, "stored_in_db": 100_000}
    )
    assert figures["seconds"] == 5.0
    assert figures["seconds_per_1m"] == 50.0
    assert figures["seconds_per_1m_extrapolated"] is True
    assert figures["rows_per_s"] == 20_000
    assert figures["complete"] is True


def test_scaling_and_labels() -> None:
    assert size_label(10_000) == "10k"
    assert size_label(2_500) == "2500"
    assert scaling({10_000: 2.0}) == {"slope_s_per_10k": None, "scaling_large_vs_small": None}
    flat = scaling({10_000: 1.0, 50_000: 5.0, 200_000: 20.0})
    assert flat == {"slope_s_per_10k": 1.0, "scaling_large_vs_small": 1.0}
    falling = scaling({10_000: 2.0, 200_000: 20.0})
    assert falling["scaling_large_vs_small"] == 0.5


def test_goals_judge_values_and_ignore_missing_ones() -> None:
    goal = Goal("x", "seconds", "<", 2)
    assert goal.met(1.5) is True
    assert goal.met(2) is False
    assert goal.met(None) is None
    assert goal.met(float("nan")) is None
    assert goal.met(True) is None
    judged = evaluate({"pdf": {"seconds": 12.0}, "report_postgresql": {"peak_rss_mb": 100}})
    assert judged["pdf.seconds"]["met"] is False
    assert judged["report_postgresql.peak_rss_mb"]["met"] is True
    every_goal_names_a_scenario = {g.scenario for g in GOALS} <= set(scenario_names())
    assert every_goal_names_a_scenario


def test_backend_names() -> None:
    assert scenario_key("report", "sqlite") == "report"
    assert scenario_key("report", "postgresql") == "report_postgresql"
    assert scenario_key("scoring_1m", None) == "scoring_1m"
    assert base_name("submit_post_postgresql") == "submit_post"
    assert base_name("page_get") == "page_get"


def test_tables_show_goals_and_headlines() -> None:
    scenarios = fake_run()
    text = format_table(scenarios)
    lines = text.splitlines()
    assert lines[0].split() == ["scenario", "figure", "goal", "measured", "met"]
    assert any("ratio_vs_bare" in line and "NO" in line for line in lines)
    assert "submit_post_postgresql" in text
    markdown = markdown_table(scenarios, keys=["pdf"])
    assert markdown.splitlines()[0] == "| scenario | figure | goal | measured | met? |"
    assert all(row.startswith("| pdf |") for row in markdown.splitlines()[2:])


def test_only_runs_keep_earlier_scenarios_of_the_same_kind(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    earlier = Results(quick=True, command="scripts/bench --quick")
    earlier.add("pdf", {"seconds": 3.0})
    earlier.add("report", {"seconds": 9.0})
    write_json(earlier.to_json(), path)
    now = Results(quick=True, command="scripts/bench --quick --only report")
    now.add("report", {"seconds": 8.0})
    merge_previous(now, path)
    assert now.scenarios["report"] == {"seconds": 8.0}
    assert now.scenarios["pdf"] == {"seconds": 3.0, "from_earlier_run": True}
    full = Results(quick=False, command="scripts/bench --only report")
    merge_previous(full, path)
    assert full.scenarios == {}


def test_json_takes_sets_numpy_numbers_and_paths(tmp_path: Path) -> None:
    import numpy as np

    out = tmp_path / "r.json"
    write_json({"s": frozenset({"b", "a"}), "n": np.float64(1.5), "p": tmp_path}, out)
    assert json.loads(out.read_text(encoding="utf-8")) == {
        "s": ["a", "b"],
        "n": 1.5,
        "p": str(tmp_path),
    }
    with pytest.raises(TypeError):
        write_json({"x": object()}, tmp_path / "bad.json")
    assert not (tmp_path / "bad.json").exists()


def test_scenario_choice() -> None:
    from bench.cli import chosen_names

    everything = chosen_names(None)
    assert everything[:2] == ["scoring_1m", "bootstrap_10k"]
    assert "invitations" in everything
    assert "invitations" not in chosen_names(None, quick=True)
    assert chosen_names("pdf, report", quick=True) == ["report", "pdf"]
    assert chosen_names("invitations", quick=True) == ["invitations"]
    with pytest.raises(SystemExit, match="unknown scenario"):
        chosen_names("reprot")


class _FakeWorkspace:
    """Stands in for the workspace: data sets are names, tasks answer from made-up results."""

    def __init__(self) -> None:
        self.tasks: list[tuple[str, list[list[Any]]]] = []

    def ensure_datasets(self, _backend: str, _sizes: list[int]) -> None:
        pass

    def dataset(self, backend: str, people: int) -> str:
        return f"{backend}:{people}"

    def run_task(self, name: str, *, databases: list[list[Any]], **_kwargs: Any) -> dict[str, Any]:
        self.tasks.append((name, databases))
        return {str(people): _export_task(people) for people, _url in databases}


def test_a_full_run_keeps_each_size_as_it_is_measured() -> None:
    from dataclasses import replace

    from bench.scenarios import Context
    from bench.scenarios.analytics import run_export
    from bench.workspace import FULL, QUICK

    saved: list[tuple[str, str | None, dict[str, Any]]] = []
    workspace = _FakeWorkspace()
    context = Context(
        workspace=workspace,  # type: ignore[arg-type]
        sizes=FULL,
        backends=("sqlite",),
        quick=False,
        say=lambda _message: None,
        checkpoint=lambda name, backend, figures: saved.append((name, backend, figures)),
    )
    out = run_export(context, "sqlite", frozenset({"export"}))
    assert [len(databases) for _name, databases in workspace.tasks] == [1, 1, 1]
    assert [figures["sizes"] for _n, _b, figures in saved] == [[10_000], [10_000, 50_000]]
    assert out["export"]["sizes"] == [10_000, 50_000, 200_000]

    workspace.tasks.clear()
    saved.clear()
    quick = replace(context, sizes=QUICK, quick=True)
    run_export(quick, "sqlite", frozenset({"export"}))
    assert [len(databases) for _name, databases in workspace.tasks] == [3]
    assert saved == []
