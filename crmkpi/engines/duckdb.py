"""DuckDB relations through narwhals: the same plan, executed by DuckDB's own optimiser."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import narwhals as nw
import polars as pl

from crmkpi.engines import Frame, collected, to_polars
from crmkpi.errors import ConfigError


class DuckDBEngine:
    name = "duckdb"

    def __init__(self) -> None:
        try:
            import duckdb
        except ImportError as exc:
            raise ConfigError(
                "engine duckdb needs the optional extra: pip install 'crmkpi[duckdb]'"
            ) from exc
        self._connection = duckdb.connect()

    def lazy(self, frame: Frame) -> nw.LazyFrame[Any]:
        return nw.from_native(self._connection.from_arrow(collected(frame).to_arrow()))

    def collect_all(self, plans: Sequence[nw.LazyFrame[Any]]) -> list[pl.DataFrame]:
        return [to_polars(p.collect().to_native()) for p in plans]

    def persist(self, plan: nw.LazyFrame[Any]) -> nw.LazyFrame[Any]:
        return nw.from_native(self._connection.from_arrow(nw.to_native(plan).to_arrow_table()))

    def close(self) -> None:
        """Nothing to free: the connection and its Arrow copies go with the engine."""
