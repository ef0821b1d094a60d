"""Parts several families build on: spend of some categories, the denominator or numerator of
cost ratios (sales expense, cost per call, CAC, marketing and advertising against budget)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import narwhals as nw

from crmkpi.metrics.base import Simple

MICROSECONDS_PER_DAY = 86_400_000_000
MICROSECONDS_PER_HOUR = 3_600_000_000


def _microseconds_of(column: str) -> nw.Expr:
    """A datetime as whole microseconds since 0001-01-01, from its calendar fields. Every
    narwhals backend has those, while the duration totals (`dt.total_microseconds`) are missing
    on the Spark-like ones (PySpark, SQLFrame); integers keep the difference exact."""
    at = nw.col(column)
    years = at.dt.year().cast(nw.Int64) - 1
    days = (
        years * 365 + years // 4 - years // 100 + years // 400 + at.dt.ordinal_day().cast(nw.Int64)
    )
    seconds = (at.dt.hour().cast(nw.Int64) * 60 + at.dt.minute().cast(nw.Int64)) * 60 + (
        at.dt.second().cast(nw.Int64)
    )
    return (days * 86_400 + seconds) * 1_000_000 + at.dt.microsecond().cast(nw.Int64)


def elapsed_days(end: str, start: str) -> nw.Expr:
    """Days from datetime column `start` to `end` (fractional; null when either is null)."""
    return (_microseconds_of(end) - _microseconds_of(start)) / MICROSECONDS_PER_DAY


def elapsed_hours(end: str, start: str) -> nw.Expr:
    """Hours from datetime column `start` to `end` (fractional; null when either is null)."""
    return (_microseconds_of(end) - _microseconds_of(start)) / MICROSECONDS_PER_HOUR


def spend_of(name: str, title_en: str, title_zh: str, family: str, *categories: str) -> Simple:
    """Sum of spend rows of the given categories, placed by spent_at (a part, not an output)."""
    return Simple(
        name=name,
        title_en=title_en,
        title_zh=title_zh,
        family=family,
        unit="currency",
        table="spend",
        anchor="spent_at",
        agg="sum",
        column="amount",
        columns=("category",),
        where=lambda ctx: nw.col("category").is_in(categories),
        output=False,
        formula=f"sum of spend of categor{'y' if len(categories) == 1 else 'ies'} "
        + " + ".join(categories),
    )


def simple_on(table: str, family: str, **fixed: Any) -> Callable[..., Simple]:
    """A factory of Simple metrics over one table: `on(name, title_en, title_zh, formula, ...)`
    with the table, family and any `fixed` keys (an anchor, output=False) filled in."""

    def make(name: str, en: str, zh: str, formula: str, **kw: Any) -> Simple:
        return Simple(name=name, title_en=en, title_zh=zh, family=family, table=table,
                      formula=formula, **fixed, **kw)  # fmt: skip

    return make
