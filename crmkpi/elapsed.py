"""Time between two columns as plain numbers, on every narwhals backend. The duration totals
(`dt.total_days`, `dt.total_microseconds`) are missing on the Spark-like ones (PySpark,
SQLFrame), while every backend has the calendar fields: a date or datetime becomes a count of
days (or microseconds) since 0001-01-01, and differences of those are exact integers."""

from __future__ import annotations

import narwhals as nw

MICROSECONDS_PER_DAY = 86_400_000_000
MICROSECONDS_PER_HOUR = 3_600_000_000


def day_number(at: nw.Expr) -> nw.Expr:
    """A date (or a datetime's day) as whole days since 0001-01-01 (day 1)."""
    years = at.dt.year().cast(nw.Int64) - 1
    return (
        years * 365 + years // 4 - years // 100 + years // 400 + at.dt.ordinal_day().cast(nw.Int64)
    )


def _microseconds_of(column: str) -> nw.Expr:
    """A datetime as whole microseconds since 0001-01-01, from its calendar fields."""
    at = nw.col(column)
    seconds = (at.dt.hour().cast(nw.Int64) * 60 + at.dt.minute().cast(nw.Int64)) * 60 + (
        at.dt.second().cast(nw.Int64)
    )
    return (day_number(at) * 86_400 + seconds) * 1_000_000 + at.dt.microsecond().cast(nw.Int64)


def days_between(end: nw.Expr, start: nw.Expr) -> nw.Expr:
    """Whole days from date `start` to date `end` (null when either is null)."""
    return day_number(end) - day_number(start)


def elapsed_days(end: str, start: str) -> nw.Expr:
    """Days from datetime column `start` to `end` (fractional; null when either is null)."""
    return (_microseconds_of(end) - _microseconds_of(start)) / MICROSECONDS_PER_DAY


def elapsed_hours(end: str, start: str) -> nw.Expr:
    """Hours from datetime column `start` to `end` (fractional; null when either is null)."""
    return (_microseconds_of(end) - _microseconds_of(start)) / MICROSECONDS_PER_HOUR
