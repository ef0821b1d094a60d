"""The `crmkpi` command line. Commands only parse options and call the library, which they
import when they run, so `crmkpi --help` does not wait for the engine to load."""

from __future__ import annotations

import datetime as dt
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, TypeAlias, TypeVar

import typer

from crmkpi import __version__
from crmkpi.choices import DIMENSIONS, ENGINES, FORMATS, GRAINS, LANGUAGES, LOG_FORMATS
from crmkpi.errors import (
    EXIT_INVALID_DATA,
    EXIT_OK,
    EXIT_UNEXPECTED,
    CrmkpiError,
    InputMissingError,
)

if TYPE_CHECKING:  # the engine is imported by the commands that use it: `--help` stays fast
    from crmkpi.load import LoadResult

    Grain: TypeAlias = str
    Engine: TypeAlias = str
    Language: TypeAlias = str
    LogFormat: TypeAlias = str
else:  # Click's own choices: a bad value is a usage error (exit 2) naming the valid ones
    Grain = Literal[GRAINS]
    Engine = Literal[ENGINES]
    Language = Literal[LANGUAGES]
    LogFormat = Literal[LOG_FORMATS]

app = typer.Typer(
    help="Batch CRM analytics: validated CRM exports in, every KPI by period, segment and rep out.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # plain help: no markup eats "[input]", and no rich import on --help
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
PresetOpt = Annotated[
    str | None,
    typer.Option(
        "--preset",
        help="Shipped mapping for a CRM's exports: salesforce, hubspot, zoho, wukong, fxiaoke, "
        "or auto (recognise the CRM from the headers). Your crmkpi.toml overrides it.",
    ),
]
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
    from crmkpi.report import table_status

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
    preset: PresetOpt = None,
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
        from crmkpi.configure import resolve_config
        from crmkpi.load import load_all
        from crmkpi.metrics.settings import resolve_settings
        from crmkpi.options import resolve_run_options, settings_from_env
        from crmkpi.publish import OutputError, check_rejected_dir
        from crmkpi.report import render_text
        from crmkpi.write import write_table

        cfg, folder = resolve_config(input_dir, config, preset)
        # the checks compute makes before it reads: a config valid here runs there
        resolve_run_options({}, os.environ, cfg.run)
        resolve_settings({**cfg.settings.metric_settings, **settings_from_env(os.environ)})
        if rejected_dir is not None:
            check_rejected_dir(rejected_dir, folder)
        result = load_all(cfg, folder)
        typer.echo(render_text(result, strict, max_reject_rate), nl=False)
        if rejected_dir is not None:
            try:
                rejected_dir.mkdir(parents=True, exist_ok=True)
                for name, table in result.tables.items():
                    if table.rejected.height:
                        write_table(table.rejected, rejected_dir / f"{name}.csv", "csv", bom=True)
            except OSError as exc:
                raise OutputError(f"cannot write {rejected_dir}: {exc.strerror}") from exc
        return exit_code_of(result, strict, max_reject_rate)

    code = _guarded(run)
    if code:
        raise typer.Exit(code)


@app.command("sample-data")
def sample_data(
    out: Annotated[Path, typer.Argument(help="Folder to write the synthetic exports into.")],
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same files.")] = 7,
    scale: Annotated[
        str,
        typer.Option(
            help="tiny, demo (what sample_data/ holds), small, medium, large or xlarge (100M "
            "order lines, Parquet only, written chunk by chunk)."
        ),
    ] = "demo",
    file_format: Annotated[
        str,
        typer.Option(
            "--format", help="mixed (CSV, XLSX and a GB18030 CSV with a config), csv or parquet."
        ),
    ] = "mixed",
) -> None:
    """Write a realistic synthetic CRM export folder covering every canonical table."""
    from crmkpi.samples import CHUNK_CUSTOMERS, SCALES, write_sample_folder

    if scale not in SCALES:
        raise typer.BadParameter(f"choose one of {', '.join(SCALES)}", param_hint="--scale")
    if file_format not in ("mixed", "csv", "parquet"):
        raise typer.BadParameter("choose mixed, csv or parquet", param_hint="--format")
    if scale in CHUNK_CUSTOMERS and file_format != "parquet":
        raise typer.BadParameter(f"scale {scale} is written as parquet only", param_hint="--format")
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
    preset: PresetOpt = None,
) -> None:
    """Write a commented starter crmkpi.toml from the headers found in INPUT, naming the CRM
    preset it recognises (or a generic mapping when none fits)."""
    from crmkpi.init import choose_preset, starter_config

    folder = input_dir or Path(".")
    target = output or folder / "crmkpi.toml"

    def run() -> str:
        if not folder.is_dir():
            raise InputMissingError(f"input folder {folder} does not exist")
        chosen = choose_preset(folder, preset)
        typer.echo(
            f"preset: {chosen}" if chosen else "preset: none fits; generic mapping", err=True
        )
        return starter_config(folder, chosen)

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


def _names_of(
    choices: tuple[str, ...], option: str
) -> Callable[[list[str] | None], list[str] | None]:
    """A repeatable, comma-separated option (`--format csv,xlsx --format html`) whose names are
    checked when the command line is parsed, so a bad one is a usage error (exit 2)."""

    def check(value: list[str] | None) -> list[str] | None:
        names = [n for item in value or [] for n in item.split(",") if n]
        bad = [n for n in names if n not in choices]
        if bad:
            raise typer.BadParameter(
                f"{', '.join(map(repr, bad))}: choose from {', '.join(choices)}", param_hint=option
            )
        return names or None

    return check


@app.command()
def compute(
    input_dir: Annotated[
        str | None,
        typer.Argument(
            help="Folder of CRM exports (default: [input] dir, else the config's folder); with "
            "--engine spark also a URI Spark reads (s3a://, abfss://, dbfs:/, file:/)."
        ),
    ] = None,
    period: Annotated[
        Grain | None,
        typer.Option(help=f"{', '.join(GRAINS)}. [default: quarter]"),
    ] = None,
    by: Annotated[
        list[str] | None,
        typer.Option(
            callback=_names_of(DIMENSIONS, "--by"),
            help=f"Breakdown dimension, repeatable or comma-separated: {', '.join(DIMENSIONS)}. "
            "[default: segment and rep]",
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Folder that receives the results. [default: kpis]")
    ] = None,
    file_format: Annotated[
        list[str] | None,
        typer.Option(
            "--format",
            callback=_names_of(FORMATS, "--format"),
            help=f"{', '.join(FORMATS)} (html: report.html with charts/), repeatable or "
            "comma-separated. [default: csv,xlsx]",
        ),
    ] = None,
    metric: Annotated[
        list[str] | None,
        typer.Option(
            "--metrics", help="Metrics to compute, repeatable or comma-separated. [default: all]"
        ),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Cut-off date YYYY-MM-DD: later rows are not counted and "
            "its period is partial. [default: the latest date in the data]",
        ),
    ] = None,
    config: ConfigOpt = None,
    preset: PresetOpt = None,
    engine: Annotated[
        Engine | None,
        typer.Option(
            help=f"{', '.join(ENGINES)}: duckdb and spark need their optional extras, spark a "
            "Java 17 runtime. [default: polars]"
        ),
    ] = None,
    spark_master: Annotated[
        str | None,
        typer.Option(
            help="Spark master of --engine spark (local[4], spark://host:7077, yarn). "
            "[default: the active session, else local[*]]"
        ),
    ] = None,
    spark_tables: Annotated[
        list[str] | None,
        typer.Option(
            "--spark-tables",
            help="Catalog tables to read instead of INPUT (db.orders,db.customers; the last "
            "dotted part names the canonical table), repeatable or comma-separated.",
        ),
    ] = None,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain",
            help="Load the inputs and print the aggregation plan (per source: its passes, "
            "their grains, the metrics each serves; what is skipped and why); compute nothing.",
        ),
    ] = False,
    fiscal_year_start: Annotated[
        int | None, typer.Option(help="First month of the fiscal year, 1-12. [default: 1]")
    ] = None,
    strict: Annotated[
        bool | None, typer.Option("--strict", help="Fail on any quarantined row.")
    ] = None,
    max_reject_rate: Annotated[
        float | None,
        typer.Option(
            "--max-reject-rate",
            help="Fail a table whose quarantined share of rows read is above this. [default: 0.05]",
        ),
    ] = None,
    max_row_drop: Annotated[
        float | None,
        typer.Option(
            "--max-row-drop",
            help="Fail a table whose rows read fell by more than this share against the "
            "previous run in --out (a truncated export). [default: 0.5]",
        ),
    ] = None,
    accept_row_drop: Annotated[
        bool | None,
        typer.Option("--accept-row-drop", help="Confirm a fall beyond --max-row-drop."),
    ] = None,
    lang: Annotated[
        Language | None,
        typer.Option(
            help=f"Titles and labels of the workbook and the report: {' or '.join(LANGUAGES)}. "
            "[default: en]"
        ),
    ] = None,
    report_title: Annotated[
        str | None, typer.Option(help="Title of report.html. [default: CRM KPIs, CRM 指标报告]")
    ] = None,
    headline: Annotated[
        list[str] | None,
        typer.Option(
            "--headline-metrics",
            help="Headline metrics of the report and the workbook charts, repeatable or "
            "comma-separated. [default: win rate, won revenue, pipeline, revenue, ...]",
        ),
    ] = None,
    currency_symbol: Annotated[
        str | None, typer.Option(help="Symbol before amounts in report.html (¥, $).")
    ] = None,
    bom: Annotated[
        bool | None,
        typer.Option("--bom/--no-bom", help="UTF-8 BOM in CSV files (for Excel). [default: --bom]"),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
    log_format: Annotated[
        LogFormat | None,
        typer.Option(help=f"Log lines on stderr: {' or '.join(LOG_FORMATS)}. [default: text]"),
    ] = None,
) -> None:
    """Load the exports, compute every KPI by period and breakdown, write the results.

    Writes kpis.csv/.parquet/.xlsx, report.html (with charts/*.png), rfm, churn_risk, cohorts,
    clv_forecast, rejected/<table>.csv and manifest.json (last) into --out, atomically: a reader
    never sees a partial file or a mix of two runs. Every option can also come from a
    CRMKPI_<OPTION> variable (CRMKPI_PERIOD, CRMKPI_BY=segment,rep, ...) or from the [run] table
    of crmkpi.toml; the command line wins, then the environment, then the file. Metric settings:
    [settings] or CRMKPI_SETTING_<NAME>.
    The last line on stdout is a JSON summary. Exit codes: 0 ok, 1 unexpected error, 2 usage,
    65 invalid data, 66 input missing, 73 cannot create output, 74 I/O error, 75 another run
    holds the lock, 78 bad config; 130/143 when interrupted.
    """
    from crmkpi.logs import configure, final_error_line
    from crmkpi.run import execute, failure_summary, stderr_progress

    cli = {
        "period": period,
        "by": by,
        "out": str(out) if out else None,
        "format": file_format,
        "metrics": [m for item in metric or [] for m in item.split(",") if m] or None,
        "as_of": as_of,
        "engine": engine,
        "spark_master": spark_master,
        "spark_tables": [t for item in spark_tables or [] for t in item.split(",") if t] or None,
        "fiscal_year_start": fiscal_year_start,
        "strict": strict,
        "max_reject_rate": max_reject_rate,
        "max_row_drop": max_row_drop,
        "accept_row_drop": accept_row_drop,
        "lang": lang,
        "report_title": report_title,
        "headline_metrics": [m for item in headline or [] for m in item.split(",") if m] or None,
        "currency_symbol": currency_symbol,
        "bom": bom,
        "log_format": log_format,
    }
    level = "quiet" if quiet else "verbose" if verbose else "info"
    shown_as = log_format or os.environ.get("CRMKPI_LOG_FORMAT", "text")
    configure(level, shown_as)
    try:
        summary = execute(
            input_dir,
            config,
            cli,
            os.environ,
            stderr_progress(quiet),
            preset,
            explain=typer.echo if explain else None,
        )
    except CrmkpiError as exc:
        typer.echo(final_error_line(str(exc), shown_as), err=True)
        _print_summary(failure_summary(exc).line())
        raise typer.Exit(exc.exit_code) from exc
    except Exception as exc:  # a scheduler still gets its summary line; main() exits 1
        _print_summary(failure_summary(exc).line())
        raise
    _print_summary(summary.line())


def _print_summary(line: str) -> None:
    """The last stdout line. A reader that has gone away (`crmkpi compute ... | true`) does not
    change the run's exit code: the outputs are published (or not) either way."""
    try:
        typer.echo(line)
    except BrokenPipeError:
        return


def _date_option(value: str, hint: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not a date YYYY-MM-DD", param_hint=hint) from exc


@app.command("clv-check")
def clv_check(
    input_dir: InputArg = None,
    calibration_end: Annotated[
        str,
        typer.Option(
            "--calibration-end",
            help="Last day of the calibration period YYYY-MM-DD: the models are fitted on the "
            "purchases up to it.",
        ),
    ] = "",
    holdout_end: Annotated[
        str | None,
        typer.Option(
            "--holdout-end", help="Last day of the holdout period. [default: the last order]"
        ),
    ] = None,
    config: ConfigOpt = None,
    preset: PresetOpt = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Folder for clv_check.json and the per-customer, per-frequency and "
            "tracking tables (CSV)."
        ),
    ] = None,
) -> None:
    """Check the BG/NBD and Gamma-Gamma models on your orders: fit them on the calibration
    period, predict the holdout period's repeat purchases, and report predicted against actual
    in total, per calibration frequency and period by period.

    Exit codes: 0 ok, 2 usage, 65 invalid data, 66 input missing, 73 cannot create output,
    78 bad config (or an empty holdout period).
    """
    if not calibration_end:
        raise typer.BadParameter("is required", param_hint="--calibration-end")
    calibration = _date_option(calibration_end, "--calibration-end")
    holdout = _date_option(holdout_end, "--holdout-end") if holdout_end else None

    def run() -> None:
        from crmkpi.clv_check import holdout_check, write_check
        from crmkpi.clv_check import render_text as render_check
        from crmkpi.configure import resolve_config
        from crmkpi.load import load_all
        from crmkpi.metrics.settings import resolve_settings
        from crmkpi.options import settings_from_env
        from crmkpi.publish import OutputError, check_rejected_dir

        cfg, folder = resolve_config(input_dir, config, preset)
        settings = resolve_settings(
            {**cfg.settings.metric_settings, **settings_from_env(os.environ)}
        )
        if out is not None:
            check_rejected_dir(out, folder, option="--out")
        loaded = load_all(cfg, folder, only={"orders", "customers"})
        if loaded.failures:
            raise loaded.failures[0].error
        if "orders" not in loaded.tables:
            raise InputMissingError("clv-check needs an orders table")
        tables = loaded.tables
        customers = tables["customers"].frame if "customers" in tables else None
        check = holdout_check(tables["orders"].frame, customers, calibration, settings, holdout)
        typer.echo(render_check(check), nl=False)
        if out is not None:
            try:
                out.mkdir(parents=True, exist_ok=True)
                for path in write_check(check, out, settings):
                    typer.echo(f"wrote {path}")
            except OSError as exc:
                raise OutputError(f"cannot write {out}: {exc.strerror}") from exc

    _guarded(run)


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
