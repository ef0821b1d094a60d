"""Small helpers for the metric tests: typed frames from plain rows, and one value out of a KPI
table. Test data stays inline in each test; these only remove the boilerplate."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from crmkpi.api import compute_kpis
from crmkpi.calendar import Calendar
from crmkpi.engine import ComputeOptions, ComputeResult, compute
from crmkpi.tables import columns_of


def frame(table: str, rows: Sequence[Mapping[str, Any]]) -> pl.DataFrame:
    """A canonical `table` frame from dict rows; the columns are the union of the rows' keys,
    typed by the table contract (strings parse as dates/datetimes: `2024-01-05` or
    `2024-01-05 12:00`)."""
    contract = columns_of(table)
    names: list[str] = []
    for row in rows:
        names.extend(k for k in row if k not in names)
    data: dict[str, pl.Series] = {}
    for name in names:
        dtype = contract[name].dtype
        values = [_value(row.get(name), dtype) for row in rows]
        data[name] = pl.Series(name, values, dtype=dtype)
    return pl.DataFrame(data)


def _value(value: Any, dtype: pl.DataType) -> Any:
    if not isinstance(value, str):
        return value
    if dtype == pl.Date:
        return dt.date.fromisoformat(value)
    if isinstance(dtype, pl.Datetime):
        return dt.datetime.fromisoformat(value)
    return value


def empty(table: str, columns: Sequence[str]) -> pl.DataFrame:
    contract = columns_of(table)
    return pl.DataFrame(schema={c: contract[c].dtype for c in columns})


def kpis(
    tables: Mapping[str, pl.DataFrame],
    period: str = "quarter",
    by: Sequence[str] = (),
    as_of: str | dt.date | None = None,
    metrics: Sequence[str] | None = None,
    settings: Mapping[str, Any] | None = None,
    engine: str = "polars",
) -> pl.DataFrame:
    if isinstance(as_of, str):
        as_of = dt.date.fromisoformat(as_of)
    return compute_kpis(
        tables,
        period=period,
        by=by,
        as_of=as_of,
        metrics=metrics,
        settings=settings,
        engine=engine,
    )


def run(
    tables: Mapping[str, pl.DataFrame],
    period: str = "quarter",
    by: Sequence[str] = (),
    as_of: str | None = None,
    metrics: Sequence[str] | None = None,
    settings: Mapping[str, Any] | None = None,
    engine: str = "polars",
    explain: bool = False,
) -> ComputeResult:
    return compute(
        tables,
        ComputeOptions(
            calendar=Calendar(period),
            dimensions=tuple(by),
            as_of=dt.date.fromisoformat(as_of) if as_of else None,
            metrics=tuple(metrics) if metrics else None,
            settings=settings or {},
            engine=engine,
            explain=explain,
        ),
    )


def rows(out: pl.DataFrame, metric: str, period: str | None = None, **dims: Any) -> pl.DataFrame:
    """The rows of `metric` (in `period`) whose dimension columns equal `dims`; a dimension
    given as None must be null (a roll-up)."""
    selected = out.filter(pl.col("metric") == metric)
    if period is not None:
        selected = selected.filter(pl.col("period") == period)
    for name, value in dims.items():
        selected = selected.filter(
            pl.col(name).is_null() if value is None else pl.col(name) == value
        )
    return selected


def row(out: pl.DataFrame, metric: str, period: str | None = None, **dims: Any) -> dict[str, Any]:
    """The single row of `metric` in `period` at the grain named by `dims` (others: total)."""
    selected = rows(out, metric, period, **dims)
    grain = "+".join(d for d, v in dims.items() if v is not None) or "total"
    selected = selected.filter(pl.col("grain") == grain)
    assert selected.height == 1, f"{metric} {period} {dims}: {selected.height} rows\n{selected}"
    return selected.row(0, named=True)


def value(out: pl.DataFrame, metric: str, period: str | None = None, **dims: Any) -> Any:
    return row(out, metric, period, **dims)["value"]


def series(out: pl.DataFrame, metric: str, **dims: Any) -> dict[str, Any]:
    """period -> value of `metric` at the grain named by `dims` (default: total)."""
    grain = "+".join(d for d, v in dims.items() if v is not None) or "total"
    selected = rows(out, metric, **dims).filter(pl.col("grain") == grain).sort("period_start")
    return dict(zip(selected["period"], selected["value"], strict=True))
