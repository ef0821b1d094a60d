"""The `crmkpi` command line. Commands only parse options and call the library."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from crmkpi import __version__
from crmkpi.config import resolve_config
from crmkpi.errors import (
    EXIT_INVALID_DATA,
    EXIT_OK,
    EXIT_UNEXPECTED,
    CrmkpiError,
    InputMissingError,
)
from crmkpi.load import LoadResult, load_all
from crmkpi.report import render_text, table_status

app = typer.Typer(
    help="Batch CRM analytics: validated CRM exports in, every KPI by period, segment and rep out.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
T = TypeVar("T")

InputArg = Annotated[
    Path | None,
    typer.Argument(help="Folder of CRM exports (default: [input] dir, else the config's folder)."),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="crmkpi.toml to use (default: INPUT/crmkpi.toml)."),
]
StrictOpt = Annotated[bool, typer.Option("--strict", help="Fail on any quarantined row.")]
RejectRateOpt = Annotated[
    float,
    typer.Option(
        "--max-reject-rate",
        min=0.0,
        max=1.0,
        help="Fail a table whose quarantined share of rows read is above this.",
    ),
]


def _guarded(action: Callable[[], T]) -> T:
    """Turn crmkpi's errors into their exit codes with a one-line message on stderr."""
    try:
        return action()
    except CrmkpiError as exc:
        typer.echo(f"crmkpi: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from exc


def exit_code_of(result: LoadResult, strict: bool, max_reject_rate: float) -> int:
    """66 when a required input is missing, 65 for unusable data or thresholds, else 0."""
    codes = [f.error.exit_code for f in result.failures]
    if any(isinstance(f.error, InputMissingError) for f in result.failures):
        return InputMissingError.exit_code
    if codes:
        return max(codes)
    if any(table_status(r, strict, max_reject_rate) != "ok" for r in result.reports):
        return EXIT_INVALID_DATA
    return EXIT_OK


def _version(value: bool) -> None:
    if value:
        typer.echo(f"crmkpi {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """crmkpi turns CRM exports into KPI tables."""


@app.command()
def validate(
    input_dir: InputArg = None,
    config: ConfigOpt = None,
    strict: StrictOpt = False,
    max_reject_rate: RejectRateOpt = 0.05,
    rejected_dir: Annotated[
        Path | None,
        typer.Option("--rejected-dir", help="Also write each table's quarantined rows here."),
    ] = None,
) -> None:
    """Load and check the exports; print a data-quality report per table.

    Exit codes: 0 clean or within thresholds, 65 invalid data, 66 input missing, 78 bad config.
    """

    def run() -> int:
        cfg, folder = resolve_config(input_dir, config)
        result = load_all(cfg, folder)
        typer.echo(render_text(result, strict, max_reject_rate), nl=False)
        if rejected_dir is not None:
            rejected_dir.mkdir(parents=True, exist_ok=True)
            for name, table in result.tables.items():
                if table.rejected.height:
                    table.rejected.write_csv(rejected_dir / f"{name}.csv", include_bom=True)
        return exit_code_of(result, strict, max_reject_rate)

    code = _guarded(run)
    if code:
        raise typer.Exit(code)


@app.command("sample-data")
def sample_data(
    out: Annotated[Path, typer.Argument(help="Folder to write the synthetic exports into.")],
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same files.")] = 7,
    scale: Annotated[
        str, typer.Option(help="tiny, demo (what sample_data/ holds), small, medium or large.")
    ] = "demo",
    file_format: Annotated[
        str,
        typer.Option(
            "--format", help="mixed (CSV, XLSX and a GB18030 CSV with a config), csv or parquet."
        ),
    ] = "mixed",
) -> None:
    """Write a realistic synthetic CRM export folder covering every canonical table."""
    from crmkpi.samples import SCALES, write_sample_folder

    if scale not in SCALES:
        raise typer.BadParameter(f"choose one of {', '.join(SCALES)}", param_hint="--scale")
    if file_format not in ("mixed", "csv", "parquet"):
        raise typer.BadParameter("choose mixed, csv or parquet", param_hint="--format")
    written = _guarded(
        lambda: write_sample_folder(out, seed=seed, scale=scale, file_format=file_format)
    )
    typer.echo(f"wrote {len(written)} files to {out}")


@app.command()
def init(
    input_dir: InputArg = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Where to write (default INPUT/crmkpi.toml)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter crmkpi.toml from the headers found in INPUT."""
    from crmkpi.init import starter_config

    folder = input_dir or Path(".")
    target = output or folder / "crmkpi.toml"

    def run() -> str:
        if not folder.is_dir():
            raise InputMissingError(f"input folder {folder} does not exist")
        return starter_config(folder)

    text = _guarded(run)
    if target.exists() and not force:
        typer.echo(f"crmkpi: {target} exists; use --force to overwrite", err=True)
        raise typer.Exit(73)
    target.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {target}")


@app.command()
def metrics(
    name: Annotated[str | None, typer.Argument(help="A metric to show in full.")] = None,
) -> None:
    """List the KPI catalogue (name, Chinese title, unit, formula, tables), or show one metric."""
    from crmkpi.docs import describe, metric_tables
    from crmkpi.metrics import REGISTRY

    if name is not None:
        if name not in REGISTRY.metrics:
            typer.echo(f"crmkpi: no metric {name!r}; `crmkpi metrics` lists them", err=True)
            raise typer.Exit(2)
        typer.echo(describe(REGISTRY[name]))
        return
    for metric in REGISTRY.outputs():
        typer.echo(
            f"{metric.name}\t{metric.title_zh}\t{metric.unit}\t{metric.formula}\t"
            f"{metric_tables(metric)}"
        )


@app.command()
def compute(
    input_dir: InputArg = None,
    period: Annotated[
        str, typer.Option(help="day, week, month, quarter, year or all.")
    ] = "quarter",
    by: Annotated[
        list[str] | None,
        typer.Option(help="Breakdown dimension (repeatable; default segment and rep)."),
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder to write the results into.")] = Path("kpis"),
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Cut-off date YYYY-MM-DD (default: latest data).")
    ] = None,
    config: ConfigOpt = None,
    metric: Annotated[
        list[str] | None,
        typer.Option("--metrics", help="Metrics to compute (repeatable; default all)."),
    ] = None,
    engine: Annotated[str, typer.Option(help="polars or duckdb.")] = "polars",
    strict: StrictOpt = False,
    max_reject_rate: RejectRateOpt = 0.05,
) -> None:
    """Load the exports, compute every KPI by period and breakdown, and write kpis.csv."""
    import datetime as dt

    from crmkpi.api import options_for, run_compute
    from crmkpi.calendar import GRAINS
    from crmkpi.write import write_kpis

    if period not in GRAINS:
        raise typer.BadParameter(f"choose one of {', '.join(GRAINS)}", param_hint="--period")
    try:
        cutoff = dt.date.fromisoformat(as_of) if as_of else None
    except ValueError as exc:
        raise typer.BadParameter("expected YYYY-MM-DD", param_hint="--as-of") from exc
    dims = tuple(by) if by else ("segment", "rep")
    metric_names = [m for item in metric or [] for m in item.split(",") if m]

    def run() -> int:
        cfg, folder = resolve_config(input_dir, config)
        loaded = load_all(cfg, folder)
        typer.echo(render_text(loaded, strict, max_reject_rate), nl=False, err=True)
        code = exit_code_of(loaded, strict, max_reject_rate)
        if code:
            return code
        options = options_for(cfg, period, dims, cutoff, metric_names or None, engine=engine)
        result = run_compute(loaded, options)
        path = write_kpis(result.kpis, out)
        typer.echo(f"wrote {path} ({result.kpis.height} rows, {len(result.computed)} metrics)")
        return EXIT_OK

    code = _guarded(run)
    if code:
        raise typer.Exit(code)


def main() -> None:
    """Console entry point; an unexpected error exits 1 with its type, never the data."""
    try:
        app()
    except SystemExit:
        raise
    except Exception as exc:  # the last line of defence of a nightly job
        if os.environ.get("CRMKPI_DEBUG"):
            traceback.print_exc()
        typer.echo(f"crmkpi: unexpected error ({type(exc).__name__}); please report it", err=True)
        sys.exit(EXIT_UNEXPECTED)
