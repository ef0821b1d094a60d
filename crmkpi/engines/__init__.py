"""Where a run's aggregations execute. The plan (crmkpi.plan) is written against narwhals and
knows no backend; an engine only turns the loaded tables into lazy frames of its own and
executes many plans at once, returning small Polars frames for the assembly."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import narwhals as nw
import polars as pl

from crmkpi.choices import ENGINES
from crmkpi.errors import ConfigError

# A table or a view as the run holds it: collected, or a lazy Polars plan over the tables (views
# that only filter or add a column are not copied).
Frame = pl.DataFrame | pl.LazyFrame


def collected(frame: Frame) -> pl.DataFrame:
    """The frame's rows, for an engine that takes them from Polars."""
    return frame.collect() if isinstance(frame, pl.LazyFrame) else frame


class Engine(Protocol):
    """What the plan needs from a backend."""

    name: str

    def lazy(self, frame: Frame) -> nw.LazyFrame[Any]:
        """The frame as this engine's lazy frame (zero-copy where the engine allows)."""
        ...

    def collect_all(self, plans: Sequence[nw.LazyFrame[Any]]) -> list[pl.DataFrame]:
        """Execute every plan, sharing what they have in common where the engine can."""
        ...

    def persist(self, plan: nw.LazyFrame[Any]) -> nw.LazyFrame[Any]:
        """The plan's rows, computed once for the several later plans that read them (the
        per-customer purchase days feed rfm, then churn_risk and cohorts)."""
        ...

    def close(self) -> None:
        """Free what the engine kept for the run, once its results are collected: a
        long-lived session (a notebook, a Databricks job) must not hold a run's frames."""
        ...


def engine_named(name: str, spark_master: str | None = None) -> Engine:
    """The engine for `--engine NAME`; optional engines explain the extra they need.
    `spark_master` is for spark only (None: the active session, else local[*])."""
    if name == "polars":
        from crmkpi.engines.polars import PolarsEngine

        return PolarsEngine()
    if name == "duckdb":
        from crmkpi.engines.duckdb import DuckDBEngine

        return DuckDBEngine()
    if name == "sqlframe":
        from crmkpi.engines.sqlframe import SQLFrameEngine

        return SQLFrameEngine()
    if name == "spark":
        from crmkpi.engines.spark import SparkEngine

        return SparkEngine(spark_master)
    raise ConfigError(f"engine: {name!r} is not one of {', '.join(ENGINES)}")


def to_polars(native: Any) -> pl.DataFrame:
    """A collected result as a Polars frame (engines collect to Arrow or Polars)."""
    return native if isinstance(native, pl.DataFrame) else pl.DataFrame(pl.from_arrow(native))


def arrow_of(frame: Frame) -> Any:
    """The frame as Arrow in the oldest layout (large strings, no string views), which every
    Arrow reader of the engines (DuckDB, Spark) understands; unsigned integers (row counts of
    the views) become Int64, which Spark has no unsigned type for."""
    rows = collected(frame)
    unsigned = [c for c, t in rows.schema.items() if t.is_unsigned_integer()]
    signed = rows.with_columns(pl.col(unsigned).cast(pl.Int64)) if unsigned else rows
    return signed.to_arrow(compat_level=pl.CompatLevel.oldest())


def collect_spark_like(plans: Sequence[nw.LazyFrame[Any]]) -> list[pl.DataFrame]:
    """Execute Spark-like plans (PySpark, SQLFrame) one by one, each result through Arrow."""
    return [to_polars(p.collect(backend="pyarrow").to_native()) for p in plans]
