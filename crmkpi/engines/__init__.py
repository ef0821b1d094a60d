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


class Engine(Protocol):
    """What the plan needs from a backend."""

    name: str

    def lazy(self, frame: pl.DataFrame) -> nw.LazyFrame[Any]:
        """The frame as this engine's lazy frame (zero-copy where the engine allows)."""
        ...

    def collect_all(self, plans: Sequence[nw.LazyFrame[Any]]) -> list[pl.DataFrame]:
        """Execute every plan, sharing what they have in common where the engine can."""
        ...


def engine_named(name: str) -> Engine:
    """The engine for `--engine NAME`; optional engines explain the extra they need."""
    if name == "polars":
        from crmkpi.engines.polars import PolarsEngine

        return PolarsEngine()
    if name == "duckdb":
        from crmkpi.engines.duckdb import DuckDBEngine

        return DuckDBEngine()
    raise ConfigError(f"engine: {name!r} is not one of {', '.join(ENGINES)}")


def to_polars(native: Any) -> pl.DataFrame:
    """A collected result as a Polars frame (engines collect to Arrow or Polars)."""
    return native if isinstance(native, pl.DataFrame) else pl.DataFrame(pl.from_arrow(native))
