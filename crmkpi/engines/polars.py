"""The default engine: Polars lazy frames, executed together by `pl.collect_all` so that the
scans and sub-plans the aggregations share are computed once, on every core."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import narwhals as nw
import polars as pl

from crmkpi.engines import Frame


class PolarsEngine:
    name = "polars"

    def lazy(self, frame: Frame) -> nw.LazyFrame[Any]:
        return nw.from_native(frame.lazy())

    def collect_all(self, plans: Sequence[nw.LazyFrame[Any]]) -> list[pl.DataFrame]:
        return pl.collect_all([nw.to_native(p) for p in plans])

    def persist(self, plan: nw.LazyFrame[Any]) -> nw.LazyFrame[Any]:
        return nw.from_native(nw.to_native(plan).collect().lazy())

    def close(self) -> None:
        """Nothing to free: persisted frames are the run's own objects."""
