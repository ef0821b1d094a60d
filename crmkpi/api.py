"""The Python API: load an export folder and compute the KPI table in two calls.

from crmkpi.api import load_folder, compute_kpis
tables = load_folder("exports/")
kpis = compute_kpis(tables, period="quarter", by=("segment", "rep"))
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from crmkpi.calendar import Calendar
from crmkpi.config import Config, Settings
from crmkpi.configure import resolve_config
from crmkpi.engine import DEFAULT_DIMENSIONS, ComputeOptions, ComputeResult, compute
from crmkpi.errors import ConfigError, InvalidDataError
from crmkpi.load import LoadResult, load_all
from crmkpi.metrics.settings import resolve_settings


def load_folder(
    folder: str | Path, config: str | Path | None = None, preset: str | None = None
) -> dict[str, pl.DataFrame]:
    """Load and validate every table of an export folder; raise on the first failed table."""
    cfg, root = resolve_config(Path(folder), Path(config) if config else None, preset)
    result = load_all(cfg, root)
    if result.failures:
        raise result.failures[0].error
    return {name: table.frame for name, table in result.tables.items()}


def check_as_of(as_of: dt.date, settings: Settings) -> None:
    """An as-of outside the dates a row may carry (settings date_min..date_max) is a typo (78)."""
    if not settings.date_min <= as_of <= settings.date_max:
        raise ConfigError(
            f"as_of: {as_of.isoformat()} is outside the accepted dates "
            f"{settings.date_min.isoformat()}..{settings.date_max.isoformat()} "
            "(settings date_min and date_max)"
        )


def options_for(
    config: Config | None,
    period: str = "quarter",
    by: Sequence[str] = DEFAULT_DIMENSIONS,
    as_of: dt.date | None = None,
    metrics: Sequence[str] | None = None,
    settings: Mapping[str, Any] | None = None,
    engine: str = "polars",
    fiscal_year_start: int | None = None,
    explain: bool = False,
    spark_master: str | None = None,
) -> ComputeOptions:
    """ComputeOptions from a config's [settings] overlaid with explicit arguments."""
    merged = dict(config.settings.metric_settings) if config else {}
    merged.update(settings or {})
    if fiscal_year_start is not None:
        merged["fiscal_year_start"] = fiscal_year_start
    resolved = resolve_settings(merged)
    if as_of is not None:
        check_as_of(as_of, config.settings if config else Settings())
    calendar = Calendar(period, resolved["fiscal_year_start"], resolved["week_start"])
    return ComputeOptions(
        calendar=calendar,
        dimensions=tuple(by),
        as_of=as_of,
        metrics=tuple(metrics) if metrics else None,
        settings=merged,
        engine=engine,
        explain=explain,
        spark_master=spark_master,
    )


def compute_kpis(
    tables: Mapping[str, pl.DataFrame],
    period: str = "quarter",
    by: Sequence[str] = DEFAULT_DIMENSIONS,
    as_of: dt.date | None = None,
    metrics: Sequence[str] | None = None,
    settings: Mapping[str, Any] | None = None,
    engine: str = "polars",
) -> pl.DataFrame:
    """The tidy long KPI table of DESIGN.md's output contract."""
    options = options_for(None, period, by, as_of, metrics, settings, engine)
    return compute(tables, options).kpis


def run_compute(load: LoadResult, options: ComputeOptions) -> ComputeResult:
    """Compute from a load result whose failures the caller has already handled."""
    if load.failures:
        raise InvalidDataError(str(load.failures[0].error))
    return compute({n: t.frame for n, t in load.tables.items()}, options)
