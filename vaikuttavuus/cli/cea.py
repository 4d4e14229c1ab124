"""The ``vaikuttavuus cea`` command: cost-effectiveness of two arms, or of several strategies.

Two arms from patient-level data::

    vaikuttavuus cea --input FILE.csv --arm COL --cost COL --effect COL [--reference ARM]
        [--covariates A,B] [--wtp L1,L2,…] [--bootstrap B] [--seed S] [--format json|text]

Several strategies from their mean cost and effect::

    vaikuttavuus cea --summary FILE.csv [--format json|text]

The CSV may be comma-separated (decimal point) or semicolon-separated (decimal comma, as Excel
writes it in a Finnish locale). Every problem with the input — a missing file or column, other
than two arms, an empty or non-numeric value, a bad option value — is reported as one
``Error: …`` line on stderr with exit code 2. The analysis is done by
:mod:`vaikuttavuus.domain.cea`.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from vaikuttavuus.domain.defaults import DEFAULT_BOOTSTRAP

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


__all__ = ["COMMANDS", "cea"]

OUTPUT_DIGITS = 12
"""JSON numbers are printed with up to this many significant digits (drops float noise)."""
TEXT_WTP_STEP = 5_000.0
"""With the default grid the text table shows every λ that is a multiple of this."""


class InputProblem(click.ClickException):
    """A one-line error with exit code 2 for bad input or option values."""

    exit_code = 2


# --------------------------------------------------------------------------------------------
# Reading input
# --------------------------------------------------------------------------------------------


def read_table(path: Path) -> pd.DataFrame:
    """Every cell as text (empty cells as ""); delimiter ``,`` or ``;`` (then decimal comma)."""
    import pandas as pd

    if not path.is_file():
        raise InputProblem(f"the file {path} does not exist")
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            header = handle.readline()
        separator = ";" if header.count(";") > header.count(",") else ","
        frame = pd.read_csv(
            path, sep=separator, dtype=str, keep_default_na=False, encoding="utf-8-sig"
        )
    except UnicodeDecodeError as error:
        raise InputProblem(f"{path} is not UTF-8 text") from error
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else "no data"
        raise InputProblem(f"cannot read {path} as CSV: {first}") from error
    frame.columns = [str(column).strip() for column in frame.columns]
    if frame.empty:
        raise InputProblem(f"{path} has no data rows")
    if separator == ";":
        frame = frame.apply(lambda column: column.str.replace(",", ".", regex=False))
    return frame.apply(lambda column: column.str.strip())


def _numeric_or_text(column: pd.Series) -> pd.Series:
    """Numbers when every non-empty cell is one, else text; empty cells become missing."""
    import numpy as np
    import pandas as pd

    values = column.replace("", np.nan)
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().sum() == values.notna().sum():
        return numeric
    return values


def parse_wtp(text: str | None) -> tuple[np.ndarray, list[str]]:
    """The λ values and their keys as written (``"20000"``); the default grid when omitted."""
    import numpy as np

    from vaikuttavuus.domain.cea import DEFAULT_WTP

    if text is None:
        return DEFAULT_WTP.copy(), [_format_lambda(x) for x in DEFAULT_WTP]
    keys = [part.strip() for part in text.split(",")]
    if not keys or any(key == "" for key in keys):
        raise InputProblem("--wtp must be a comma-separated list of numbers, e.g. 0,20000,30000")
    try:
        values = np.asarray([float(key) for key in keys])
    except ValueError as error:
        raise InputProblem(f"--wtp must be numbers; got '{text}'") from error
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise InputProblem("--wtp values must be finite and not negative")
    if len(set(values.tolist())) != len(keys):
        raise InputProblem("--wtp lists the same value twice")
    return values, keys


def rounded(value: Any) -> Any:
    """``value`` with every float rounded to :data:`OUTPUT_DIGITS` significant digits."""
    if isinstance(value, float):
        return float(f"{value:.{OUTPUT_DIGITS}g}")
    if isinstance(value, dict):
        return {key: rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [rounded(item) for item in value]
    return value


def _format_lambda(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _parse_int(text: str | None, option: str, default: int | None, minimum: int) -> int | None:
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError as error:
        raise InputProblem(f"{option} must be a whole number; got '{text}'") from error
    if value < minimum:
        raise InputProblem(f"{option} must be at least {minimum}")
    return value


# --------------------------------------------------------------------------------------------
# Text output
# --------------------------------------------------------------------------------------------


def _num(value: Any, decimals: int = 2) -> str:
    from vaikuttavuus.domain.stats import plain_float

    number = plain_float(value)
    return "–" if number is None else f"{number:,.{decimals}f}".replace(",", " ")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = [
        "  ".join(
            h.ljust(w) if i == 0 else h.rjust(w)
            for i, (h, w) in enumerate(zip(headers, widths, strict=True))
        )
    ]
    lines += [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    return lines


def _interval(pair: Sequence[Any] | None, decimals: int = 2) -> str:
    if pair is None:
        return "unbounded"
    return f"{_num(pair[0], decimals)} … {_num(pair[1], decimals)}"


def _icer_text(result: dict[str, Any]) -> str:
    status = result["status"]
    if status == "dominates":
        return f"{result['intervention']} dominates (less costly, at least as effective)"
    if status == "dominated":
        return f"{result['intervention']} is dominated (more costly, at most as effective)"
    if status == "equal":
        return "no difference in cost or effect"
    quadrant = (
        "NE: more costly, more effective" if status == "NE" else "SW: cheaper, less effective"
    )
    return f"{_num(result['icer'])} per unit of effect ({quadrant})"


def _icer_interval_text(interval: dict[str, Any]) -> str:
    if not interval["bounded"]:
        return "unbounded"

    def limit(value: Any, quadrant: str) -> str:
        return quadrant if value is None else _num(value)

    return (
        f"{limit(interval['low'], interval['low_quadrant'])} … "
        f"{limit(interval['high'], interval['high_quadrant'])}"
    )


def render_two_arm_text(result: dict[str, Any], keys: Sequence[str], shown: Sequence[str]) -> str:
    """A readable report of :func:`two_arm_result` for people."""
    ref, new = result["reference"], result["intervention"]
    lines = [f"Cost-effectiveness: {new} vs {ref} (reference)", ""]
    lines += _table(
        ["arm", "n", "mean cost", "mean effect"],
        [
            [
                arm,
                str(result["n"][arm]),
                _num(result["mean_cost"][arm]),
                _num(result["mean_effect"][arm], 4),
            ]
            for arm in (ref, new)
        ],
    )
    boot = result.get("bootstrap")
    lines += [
        "",
        f"ΔC (cost):    {_num(result['delta_cost'])}"
        + (f"   bootstrap 95 %: {_interval(boot['delta_cost'])}" if boot else ""),
        f"ΔE (effect):  {_num(result['delta_effect'], 4)}"
        + (f"   bootstrap 95 %: {_interval(boot['delta_effect'], 4)}" if boot else ""),
        f"ICER:         {_icer_text(result)}",
        f"Fieller 95 %: {_interval(result['fieller_95'])}",
    ]
    if boot:
        lines.append(f"ICER 95 % (bootstrap, angle): {_icer_interval_text(boot['icer'])}")
        lines.append(f"Bootstrap: {boot['replicates']} replicates, seed {boot['seed']}")
    adjusted = result.get("adjusted_inmb")
    headers = ["λ", "INMB", "CEAC (param.)"]
    if boot:
        headers += ["INMB 95 % (bootstrap)", "CEAC (bootstrap)"]
    if adjusted:
        headers += ["adjusted INMB (95 % CI)"]
    rows = []
    for key in shown:
        row = [key, _num(result["inmb"][key]), _num(result["ceac_parametric"][key], 3)]
        if boot:
            row += [_interval(boot["inmb"][key]), _num(result["ceac_bootstrap"][key], 3)]
        if adjusted:
            entry = adjusted["inmb"][key]
            row += [f"{_num(entry['estimate'])} ({_interval(entry['ci'])})"]
        rows.append(row)
    lines += ["", *_table(headers, rows)]
    if adjusted:
        lines.append(
            f"Adjusted for {', '.join(adjusted['covariates'])} by net-benefit regression "
            f"(OLS, {adjusted['cov_type']} robust SE, n = {adjusted['n']})."
        )
    if len(shown) < len(keys):
        lines.append(f"({len(shown)} of {len(keys)} λ values shown; use --format json for all)")
    return "\n".join(lines)


def render_summary_text(rows: Sequence[dict[str, Any]]) -> str:
    lines = _table(
        ["strategy", "cost", "effect", "status", "ICER"],
        [
            [
                row["strategy"],
                _num(row["cost"]),
                _num(row["effect"], 4),
                row["status"],
                _num(row["icer"]) if row["icer"] is not None else "–",
            ]
            for row in rows
        ],
    )
    lines += [
        "",
        "ND = not dominated, D = dominated, ED = extendedly dominated; ICER vs the "
        "next cheaper ND strategy.",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Analyses
# --------------------------------------------------------------------------------------------


def two_arm_result(
    frame: pd.DataFrame,
    *,
    arm: str,
    cost: str,
    effect: str,
    reference: str | None,
    covariates: Sequence[str],
    wtp: np.ndarray,
    keys: Sequence[str],
    n_boot: int,
    seed: int | None,
) -> dict[str, Any]:
    """The JSON object the command prints for two arms (the adjusted INMB, when covariates
    are given, is fitted before the bootstrap so that bad covariates fail fast)."""
    from vaikuttavuus.domain.cea import (
        CEAError,
        TwoArmData,
        bootstrap_two_arms,
        net_benefit_regression,
        two_arm_cea,
    )

    data = TwoArmData.from_frame(frame, arm=arm, cost=cost, effect=effect, reference=reference)
    parametric = two_arm_cea(data, wtp)
    result = parametric.to_dict(keys)
    result["wtp"] = list(keys)
    if covariates:
        prepared = frame.copy()
        for name in covariates:
            if name not in prepared.columns:
                raise CEAError(f"missing covariate column {name}")
            prepared[name] = _numeric_or_text(prepared[name])
        adjusted = net_benefit_regression(
            prepared,
            arm=arm,
            cost=cost,
            effect=effect,
            covariates=covariates,
            reference=data.reference,
            wtp=wtp,
        )
        result["adjusted_inmb"] = adjusted.to_dict(keys)
    if n_boot > 0:
        boot = bootstrap_two_arms(data, wtp, n_boot=n_boot, seed=seed)
        boot_dict = boot.to_dict(keys)
        result["ceac_bootstrap"] = boot_dict.pop("ceac")
        result["bootstrap"] = boot_dict
    else:
        result["ceac_bootstrap"] = None
        result["bootstrap"] = None
    return result


@click.command("cea")
@click.option(
    "--input",
    "input_path",
    metavar="FILE.csv",
    default=None,
    help="Patient-level data: one row per patient.",
)
@click.option(
    "--summary",
    "summary_path",
    metavar="FILE.csv",
    default=None,
    help="Strategies with columns strategy, cost, effect (instead of --input).",
)
@click.option("--arm", default=None, help="Column with the arm (exactly two values).")
@click.option("--cost", default=None, help="Column with the cost per patient (euros).")
@click.option("--effect", default=None, help="Column with the effect per patient.")
@click.option(
    "--reference", default=None, help="The comparator arm (default: the first arm in sorted order)."
)
@click.option(
    "--covariates", default=None, help="Comma-separated columns for the case-mix adjusted INMB."
)
@click.option(
    "--wtp",
    default=None,
    help="Comma-separated willingness-to-pay values (default 0…50 000 in 501 points).",
)
@click.option(
    "--bootstrap",
    "n_boot",
    default=None,
    metavar="B",
    help=f"Bootstrap replicates (default {DEFAULT_BOOTSTRAP}; 0 = none).",
)
@click.option("--seed", default=None, metavar="S", help="Seed of the bootstrap.")
@click.option(
    "--format",
    "output_format",
    default="json",
    metavar="json|text",
    help="Output format (default json).",
)
def cea(
    input_path: str | None,
    summary_path: str | None,
    arm: str | None,
    cost: str | None,
    effect: str | None,
    reference: str | None,
    covariates: str | None,
    wtp: str | None,
    n_boot: str | None,
    seed: str | None,
    output_format: str,
) -> None:
    """Cost-effectiveness of two arms (ΔC, ΔE, ICER, INMB, CEAC, Fieller, bootstrap) or of
    several strategies (dominance, extended dominance, ICERs)."""
    from vaikuttavuus.domain.cea import CEAError, incremental_analysis
    from vaikuttavuus.domain.stats import plain_float

    if output_format not in ("json", "text"):
        raise InputProblem(f"--format must be json or text, not '{output_format}'")
    if (input_path is None) == (summary_path is None):
        raise InputProblem("give either --input FILE.csv or --summary FILE.csv")
    try:
        if summary_path is not None:
            frame = read_table(Path(summary_path))
            analysis = incremental_analysis(frame)
            rows = [
                {
                    "strategy": row.strategy,
                    "cost": plain_float(row.cost),
                    "effect": plain_float(row.effect),
                    "status": row.status,
                    "icer": plain_float(row.icer),
                }
                for row in analysis.strategies
            ]
            if output_format == "json":
                click.echo(
                    json.dumps(
                        rounded({"strategies": rows}), ensure_ascii=False, indent=2, allow_nan=False
                    )
                )
            else:
                click.echo(render_summary_text(rows))
            return
        if arm is None or cost is None or effect is None:
            missing = [
                name
                for name, value in (("--arm", arm), ("--cost", cost), ("--effect", effect))
                if value is None
            ]
            raise InputProblem(f"{', '.join(missing)} required with --input")
        replicates = _parse_int(n_boot, "--bootstrap", DEFAULT_BOOTSTRAP, 0)
        seed_value = _parse_int(seed, "--seed", None, 0)
        grid, keys = parse_wtp(wtp)
        names = [c.strip() for c in covariates.split(",")] if covariates else []
        if any(not name for name in names):
            raise InputProblem("--covariates must be a comma-separated list of column names")
        frame = read_table(Path(str(input_path)))
        result = two_arm_result(
            frame,
            arm=arm,
            cost=cost,
            effect=effect,
            reference=reference,
            covariates=names,
            wtp=grid,
            keys=keys,
            n_boot=replicates or 0,
            seed=seed_value,
        )
    except CEAError as error:
        raise InputProblem(str(error)) from error
    if output_format == "json":
        click.echo(json.dumps(rounded(result), ensure_ascii=False, indent=2, allow_nan=False))
        return
    if wtp is None:
        shown = [k for k, x in zip(keys, grid, strict=True) if math.fmod(x, TEXT_WTP_STEP) == 0]
    else:
        shown = list(keys)
    click.echo(render_two_arm_text(result, keys, shown))


COMMANDS: list[click.Command] = [cea]
