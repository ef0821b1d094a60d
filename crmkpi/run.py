"""`crmkpi compute` as one job: load, compute, write, publish, with the run guarantees of
DESIGN.md (a lock, staged and atomic outputs, a manifest written last, results that depend only
on the inputs and --as-of)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from crmkpi import __version__
from crmkpi.api import options_for
from crmkpi.config import Config
from crmkpi.configure import resolve_config
from crmkpi.engine import ComputeOptions, ComputeResult, compute
from crmkpi.engines import Engine, engine_named
from crmkpi.engines.spark_inputs import SparkInput, spark_input
from crmkpi.errors import (
    EXIT_INVALID_DATA,
    EXIT_UNEXPECTED,
    CrmkpiError,
    InputMissingError,
    InvalidDataError,
)
from crmkpi.io.read import check_unchanged, input_name
from crmkpi.load import LoadResult, load_all
from crmkpi.logs import log
from crmkpi.metrics.settings import resolve_settings
from crmkpi.profiles import (
    ClvForecast,
    churn_risk_plan,
    clv_forecast,
    cohorts_plan,
    collect_tables,
    purchase_days_on,
    rfm_on,
)
from crmkpi.publish import (
    MANIFEST,
    Staging,
    check_output_location,
    check_writable,
    clean_abort,
    clean_leftovers,
    output_folder,
    run_lock,
    staged,
    swap_in,
)
from crmkpi.report import as_dict, table_status
from crmkpi.summary import Summary
from crmkpi.views import customer_base
from crmkpi.write import write_table

if TYPE_CHECKING:  # the Spark engine is imported only by runs that use it
    from crmkpi.engines.spark import SparkEngine


class _Timer:
    """Seconds per stage, for the manifest (the only non-deterministic part of a run)."""

    def __init__(self, progress: Callable[[str], None]) -> None:
        self.seconds: dict[str, float] = {}
        self.progress = progress

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.progress(name)
        log(logging.DEBUG, "stage started", stage=name)
        start = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - start, 4)
        log(logging.INFO, "stage done", stage=name, seconds=self.seconds[name])


def _run_id(
    loaded: LoadResult,
    options: Mapping[str, Any],
    settings: Mapping[str, Any],
    as_of: dt.date,
    config: Config,
) -> str:
    """Named by what the outputs depend on: the inputs' and the config's hashes, as-of, the
    options and the settings; not by where they go (`--out`), where they are computed
    (`--spark-master`) or how the log looks."""
    digest = hashlib.sha256()
    for report in loaded.reports:
        for file in report.files:
            digest.update(f"{report.table}:{file.sha256}\n".encode())
    if config.path is not None:
        digest.update(f"config:{_sha256(config.path)}\n".encode())
    chosen = {k: v for k, v in options.items() if k not in ("out", "log_format", "spark_master")}
    digest.update(
        json.dumps(
            {
                **chosen,
                "settings": resolve_settings(settings),
                "as_of": as_of.isoformat(),
                "version": __version__,
            },
            sort_keys=True,
            default=str,
        ).encode()
    )
    return digest.hexdigest()[:16]


def _previous_manifest(out: Path) -> dict[str, Any] | None:
    try:
        loaded: dict[str, Any] = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
        return loaded
    except (OSError, ValueError):
        return None


def _log_tables(loaded: LoadResult) -> None:
    """Row counts and check names per table: what an operator needs, never a data value."""
    for report in loaded.reports:
        log(
            logging.INFO,
            "table loaded",
            table=report.table,
            rows_read=report.rows_read,
            rows_used=report.rows_used,
            rows_quarantined=report.rows_quarantined,
        )
        for check, rows in report.quarantined_by_check.items():
            log(logging.WARNING, "rows quarantined", table=report.table, check=check, rows=rows)
    for failure in loaded.failures:
        log(logging.ERROR, "table failed", table=failure.table, exit_code=failure.error.exit_code)


def _thresholds(loaded: LoadResult, strict: bool, max_reject_rate: float) -> None:
    """Fail the run (65/66) on failed tables or too many quarantined rows: nothing published."""
    if loaded.failures:
        missing = [f for f in loaded.failures if isinstance(f.error, InputMissingError)]
        raise (missing or loaded.failures)[0].error
    failing = [(r.table, table_status(r, strict, max_reject_rate)) for r in loaded.reports]
    failing = [(t, s) for t, s in failing if s != "ok"]
    if failing:
        raise InvalidDataError("; ".join(f"table {t}: {s}" for t, s in failing))


def _volume_guard(
    loaded: LoadResult, previous: Mapping[str, Any] | None, max_row_drop: float
) -> None:
    """Fail (65) a table whose rows read fell by more than `max_row_drop` against the previous
    run in --out: a truncated export that ends on a row boundary looks valid otherwise."""
    if previous is None:
        return
    before: dict[str, int] = {
        str(t.get("table")): t["rows_read"]
        for t in previous.get("tables", [])
        if isinstance(t, dict) and isinstance(t.get("rows_read"), int)
    }
    drops = [
        f"table {r.table}: row_drop: {r.rows_read} rows read against {before[r.table]} in the "
        f"previous run, a fall of more than max_row_drop ({max_row_drop:.0%})"
        for r in loaded.reports
        if r.rows_read < before.get(r.table, 0) * (1 - max_row_drop)
    ]
    if drops:
        raise InvalidDataError(
            "; ".join(drops) + "; a truncated export? if the fall is real, rerun with "
            "--accept-row-drop"
        )


def _input_files(loaded: LoadResult) -> list[dict[str, Any]]:
    return [
        {
            "table": r.table,
            "path": f.path,
            "sha256": f.sha256,
            "rows_read": f.rows_read,
            "duplicate_of": f.duplicate_of,
        }
        for r in loaded.reports
        for f in r.files
    ]


def _load(
    config: Config, folder: Path, source: SparkInput | None, spark_master: str | None
) -> tuple[LoadResult, SparkEngine | None]:
    """The Polars loader for a local folder; the Spark loader for a Spark source, on a Spark
    engine that keeps the checked frames cached until it is closed."""
    if source is None:
        return load_all(config, folder), None
    from crmkpi.engines.spark import SparkEngine
    from crmkpi.engines.spark_inputs import load_spark

    spark = SparkEngine(spark_master)
    return load_spark(spark.session, source, spark.cache), spark


def _engine(loaded: LoadResult, spark: SparkEngine | None, options: ComputeOptions) -> Engine:
    """The run's engine; with `--engine spark` on a Spark source, the loader's, which reads the
    validated tables where the loader left them."""
    if spark is None or options.engine != "spark":
        return engine_named(options.engine, options.spark_master)
    for table in loaded.tables.values():
        spark.adopt(table.frame, table.spark_frame)
    return spark


def execute(
    input_dir: Path | str | None,
    config_path: Path | None,
    cli: Mapping[str, Any],
    env: Mapping[str, str],
    progress: Callable[[str], None] = lambda stage: None,
    preset: str | None = None,
    explain: Callable[[str], None] | None = None,
) -> Summary:
    """The whole job; raises CrmkpiError (with its exit code) on failure. With `explain`, the
    inputs are loaded and the plan is handed to it; nothing is computed or written."""
    from crmkpi.options import resolve_run_options, settings_from_env

    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")  # lock file only
    timer = _Timer(progress)
    with timer.stage("config"):
        given = None if input_dir is None else str(input_dir)  # a URI is no local Path
        config, folder = resolve_config(Path(given) if given else None, config_path, preset)
        config_name = input_name(config.path, folder) if config.path else None
        opts = resolve_run_options(cli, env, config.run)
        source = spark_input(given, opts["engine"], opts["spark_tables"])
        settings = {**config.settings.metric_settings, **settings_from_env(env)}
        resolve_settings(settings)
        shown_out = Path(opts["out"])
        check_output_location(
            shown_out,
            folder if source is None else source.local_folder,
            config.path.parent if config.path else None,
        )
        out = output_folder(shown_out)
        check_writable(out)
    # What the engines keep for the run (persisted views, the Spark loader's checked frames,
    # which the rejected rows are written from) is freed once the outputs are written.
    with run_lock(out, started), clean_abort(), ExitStack() as kept:
        clean_leftovers(out)
        with timer.stage("load"):
            loaded, spark = _load(config, folder, source, opts["spark_master"])
            if spark is not None:
                kept.callback(spark.close)
            _log_tables(loaded)
            _thresholds(loaded, opts["strict"], opts["max_reject_rate"])
            previous = _previous_manifest(out)
            if not opts["accept_row_drop"]:
                _volume_guard(loaded, previous, opts["max_row_drop"])
        tables = {name: t.frame for name, t in loaded.tables.items()}
        options = options_for(
            config,
            opts["period"],
            opts["by"],
            opts["as_of"],
            opts["metrics"],
            settings=settings,
            engine=opts["engine"],
            fiscal_year_start=opts["fiscal_year_start"],
            explain=explain is not None,
            spark_master=opts["spark_master"],
        )
        engine = kept.enter_context(closing(_engine(loaded, spark, options)))
        with timer.stage("compute"):
            result = compute(tables, options, engine)
        if explain is not None and result.plan is not None:
            explain(result.plan)
            return Summary(
                status="explained",
                exit_code=0,
                as_of=result.as_of.isoformat(),
                metrics_computed=len(result.computed),
                metrics_skipped=len(result.skipped),
                rows_rejected=sum(r.rows_quarantined for r in loaded.reports),
            )
        with timer.stage("profiles"):
            profiles, forecast = _profiles(
                tables, result, options.settings, options.calendar, engine
            )
        run_id = _run_id(loaded, opts, settings, result.as_of, config)
        with staged(out, run_id) as staging:
            with timer.stage("write"):
                outputs, neutralised, warnings = _write_all(
                    staging, result.kpis, profiles, loaded, opts, run_id, result.as_of, config_name
                )
            manifest = _manifest(
                run_id,
                result,
                loaded,
                opts,
                settings,
                outputs,
                neutralised,
                warnings,
                timer.seconds,
                previous,
                config_name,
                forecast,
            )
            staging.path(MANIFEST).write_text(
                json.dumps(manifest, indent=2, ensure_ascii=False, default=str) + "\n",
                encoding="utf-8",
            )
            check_unchanged(loaded.stamps)
            swap_in(staging, run_id)
    rejected = sum(r.rows_quarantined for r in loaded.reports)
    return Summary(
        status="ok",
        exit_code=0,
        run_id=run_id,
        as_of=result.as_of.isoformat(),
        periods=result.kpis["period"].n_unique(),
        metrics_computed=len(result.computed),
        metrics_skipped=len(result.skipped),
        rows_rejected=rejected,
        outputs=[str(shown_out / o["path"]) for o in outputs] + [str(shown_out / MANIFEST)],
    )


def _profiles(
    tables: Mapping[str, pl.DataFrame],
    result: ComputeResult,
    settings: Mapping[str, Any],
    calendar: Any,
    engine: Engine,
) -> tuple[dict[str, pl.DataFrame], ClvForecast | None]:
    """rfm, churn_risk, cohorts and clv_forecast, when there are orders to build them from,
    computed on the run's engine from the purchase days it keeps. What the engine built for
    its metrics (the purchase days, rfm, customer_base, the CLV fit) is reused, not built
    twice."""
    orders = tables.get("orders")
    if orders is None:
        return {}, None
    as_of, shared = result.as_of, result.shared
    resolved = resolve_settings(settings)
    customers, activities = tables.get("customers"), tables.get("activities")
    days = result.purchase_days
    if days is None:
        days = purchase_days_on(engine, orders, as_of)
    rfm_table = shared.get("rfm")
    if rfm_table is None:
        rfm_table = rfm_on(engine, days, customers, as_of, resolved)
    base = shared.get("customer_base")
    if base is None:
        # rfm's first and last purchase days are order_spans: no second pass over the orders
        spans = rfm_table.select(
            "customer_id",
            pl.col("first_purchase_on").alias("first_order_on"),
            pl.col("last_purchase_on").alias("last_order_on"),
        )
        base, _ = customer_base(customers, orders, as_of, resolved, spans)
    forecast = result.clv_forecast or clv_forecast(rfm_table, resolved)
    alive = engine.lazy(forecast.table.select("customer_id", "p_alive"))
    touches = None if activities is None else engine.lazy(activities)
    plans = [churn_risk_plan(days, touches, engine.lazy(base), as_of, resolved, alive)]
    if rfm_table.height:  # the triangle's periods run from the first purchase day to as-of
        first_day = rfm_table["first_purchase_on"].min()
        periods = calendar.table(first_day, as_of).select("date", "period_index", "period")
        plans.append(cohorts_plan(days, engine.lazy(periods)))
    churn_table, *cohort_table = collect_tables(engine, plans)
    return {
        "rfm": rfm_table,
        "churn_risk": churn_table,
        "cohorts": cohort_table[0] if cohort_table else pl.DataFrame(),
        "clv_forecast": forecast.table,
    }, forecast


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _folder_sha256(folder: Path) -> str:
    """A folder of data files (Spark's Parquet parts): the hash of its files' hashes, in name
    order, leaving out Spark's bookkeeping (`_SUCCESS`, `.crc`)."""
    parts = sorted(
        p for p in folder.rglob("*") if p.is_file() and not p.name.startswith((".", "_"))
    )
    return hashlib.sha256("".join(_sha256(p) for p in parts).encode()).hexdigest()


def _write_all(
    staging: Staging,
    kpis: pl.DataFrame,
    profiles: Mapping[str, pl.DataFrame],
    loaded: LoadResult,
    opts: Mapping[str, Any],
    run_id: str,
    as_of: dt.date,
    config_name: str | None,
) -> tuple[list[dict[str, Any]], int, list[str]]:
    """Every output file into the staging folder; returns (outputs, cells neutralised,
    warnings)."""
    from crmkpi.report_html import ReportSettings, write_report
    from crmkpi.workbook import write_simple_workbook, write_workbook

    outputs: list[dict[str, Any]] = []
    neutralised = 0
    warnings: list[str] = []
    tables = {"kpis": kpis, **profiles}
    created = dt.datetime.combine(as_of, dt.time())  # workbook metadata: as-of, not the clock
    quality = [as_dict(r) for r in loaded.reports]
    for fmt in [f for f in opts["format"] if f != "html"]:
        for name, frame in tables.items():
            path = staging.path(f"{name}.{fmt}")
            if fmt == "xlsx" and name == "kpis":
                warnings += write_workbook(
                    path,
                    kpis,
                    opts["by"],
                    opts["lang"],
                    quality,
                    _run_info(run_id, as_of, opts, config_name),
                    created,
                    opts["headline_metrics"],
                )
            elif fmt == "xlsx":
                warnings += write_simple_workbook(path, frame, name, created)
            else:
                neutralised += write_table(frame, path, fmt, opts["bom"])
            outputs.append({"path": path.name, "sha256": _sha256(path), "rows": frame.height})
    if "html" in opts["format"]:
        written, report_warnings = write_report(
            staging.folder,
            kpis,
            profiles,
            opts["by"],
            quality,
            {"run_id": run_id, "as_of": as_of.isoformat()},
            ReportSettings(
                opts["report_title"],
                opts["lang"],
                opts["headline_metrics"],
                opts["currency_symbol"],
            ),
        )
        warnings += report_warnings
        outputs += [
            {"path": p.relative_to(staging.folder).as_posix(), "sha256": _sha256(p), "rows": None}
            for p in written
        ]
    for name, table in loaded.tables.items():
        if table.write_rejected is not None:
            folder = staging.path(f"rejected/{name}")
            table.write_rejected(folder)
            outputs.append(
                {
                    "path": f"rejected/{name}",
                    "sha256": _folder_sha256(folder),
                    "rows": table.report.rows_quarantined,
                }
            )
        if table.rejected.height:
            path = staging.path(f"rejected/{name}.csv")
            neutralised += write_table(table.rejected, path, "csv", opts["bom"])
            outputs.append(
                {
                    "path": f"rejected/{name}.csv",
                    "sha256": _sha256(path),
                    "rows": table.rejected.height,
                }
            )
    return outputs, neutralised, warnings


def _run_info(
    run_id: str,
    as_of: dt.date,
    opts: Mapping[str, Any],
    config_name: str | None,
) -> list[tuple[str, Any]]:
    """The workbook's run-info items, keyed by their label in crmkpi/labels.py."""
    return [
        ("run_item", run_id),
        ("as_of_date", as_of.isoformat()),
        ("crmkpi", __version__),
        ("grain", opts["period"]),
        ("dimensions", ", ".join(opts["by"])),
        ("engine", opts["engine"]),
        ("config", config_name),
    ]


def _manifest(
    run_id: str,
    result: Any,
    loaded: LoadResult,
    opts: Mapping[str, Any],
    settings: Mapping[str, Any],
    outputs: list[dict[str, Any]],
    neutralised: int,
    warnings: list[str],
    timings: Mapping[str, float],
    previous: dict[str, Any] | None,
    config_name: str | None,
    forecast: ClvForecast | None,
) -> dict[str, Any]:
    inputs = _input_files(loaded)
    changed = None
    if previous is not None:
        before = {(i["table"], i["path"]): i["sha256"] for i in previous.get("inputs", [])}
        now = {(i["table"], i["path"]): i["sha256"] for i in inputs}
        changed = sorted(f"{t}:{p}" for (t, p), h in now.items() if before.get((t, p)) != h)
    return {
        "run_id": run_id,
        "rerun_of": previous.get("run_id")
        if previous and previous.get("run_id") == run_id
        else None,
        "previous_run_id": previous.get("run_id") if previous else None,
        "inputs_changed_since_previous_run": changed,
        "as_of": result.as_of.isoformat(),
        "crmkpi_version": __version__,
        "config": config_name,
        "options": {k: v for k, v in opts.items()},
        "settings": resolve_settings(settings),
        "inputs": inputs,
        "tables": [as_dict(r) for r in loaded.reports],
        "metrics_computed": result.computed,
        "metrics_skipped": result.skipped,
        "metrics_skipped_at_grains": result.grain_skips,
        # {metric: {period: why}}: growth null because a partial period is on one side
        "growth_nulled": result.growth_nulled,
        # the fitted BG/NBD and Gamma-Gamma parameters and log-likelihoods, or why skipped
        "clv_forecast": forecast.manifest(resolve_settings(settings)) if forecast else None,
        "outputs": outputs,
        "cells_neutralised_against_formulas": neutralised,
        "warnings": [*result.warnings, *warnings],
        "timings_seconds": dict(timings),
    }


def failure_summary(error: Exception) -> Summary:
    """The summary of a failed run; an unexpected error is named by its type only (its message
    may quote data)."""
    if isinstance(error, CrmkpiError):
        return Summary(status="failed", exit_code=error.exit_code, message=str(error))
    message = f"unexpected error ({type(error).__name__})"
    return Summary(status="failed", exit_code=EXIT_UNEXPECTED, message=message)


def stderr_progress(quiet: bool) -> Callable[[str], None]:
    """Stage names on stderr, only when it is a terminal (never in cron or CI logs)."""
    if quiet or not sys.stderr.isatty():
        return lambda stage: None
    return lambda stage: print(f"crmkpi: {stage}…", file=sys.stderr, flush=True)


__all__ = ["EXIT_INVALID_DATA", "Summary", "execute", "failure_summary", "stderr_progress"]
