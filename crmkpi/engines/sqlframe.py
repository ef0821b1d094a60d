"""SQLFrame: PySpark's DataFrame API executed by DuckDB. Narwhals drives it through the same
Spark-like backend as PySpark, so every `make check` runs the plan down the Spark code path
without a JVM; it is a test engine for what `--engine spark` runs on a cluster."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import narwhals as nw
import polars as pl

from crmkpi.engines import Frame, arrow_of, collect_spark_like
from crmkpi.errors import ConfigError

# SQLFrame's session is one per process and keeps the connection it was first given, so the
# uploaded tables are named uniquely in the process, not per engine.
_TABLE_NUMBERS = itertools.count()


class SQLFrameEngine:
    name = "sqlframe"

    def __init__(self) -> None:
        try:
            from sqlframe.duckdb import DuckDBSession
        except ImportError as exc:
            raise ConfigError(
                "engine sqlframe needs the packages sqlframe and duckdb: "
                "pip install 'sqlframe[duckdb]' duckdb"
            ) from exc
        self._session = DuckDBSession()

    def lazy(self, frame: Frame) -> nw.LazyFrame[Any]:
        # SQLFrame reads a table's columns from the catalogue, which an Arrow view registered
        # on the connection is not part of: the frame becomes a table of the in-memory database.
        name = f"crmkpi_input_{next(_TABLE_NUMBERS)}"
        connection = self._session._conn
        connection.register("crmkpi_upload", arrow_of(frame))
        try:
            connection.execute(f"CREATE TABLE {name} AS SELECT * FROM crmkpi_upload")
        finally:
            connection.unregister("crmkpi_upload")
        return nw.from_native(self._session.read.table(name))

    def collect_all(self, plans: Sequence[nw.LazyFrame[Any]]) -> list[pl.DataFrame]:
        return collect_spark_like(plans)

    def persist(self, plan: nw.LazyFrame[Any]) -> nw.LazyFrame[Any]:
        return plan  # a test engine: recomputing the plan costs DuckDB little

    def close(self) -> None:
        """Nothing to free: the process's one session keeps its uploads (a test engine)."""
