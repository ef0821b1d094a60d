"""The default as-of: the latest date of an event that has happened.

CRM exports carry dates of things that have not happened yet: an open deal's closed_at is its
expected close date (Salesforce's CloseDate, HubSpot's close date), often years ahead, and quotas
and budgets are plans for periods to come. Taking the latest date of every anchor as the as-of
made a Salesforce file report up to 2031, with empty future periods and a sales growth of
-100 %. So the default as-of comes only from dates of events that happened; the dates left out
are named in a warning. The files' modification times are not used: a copied file would move
the as-of, and results depend only on the inputs and --as-of (RELIABILITY.md R09, R10).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import polars as pl

from crmkpi.logs import log

# Tables of plans, not events: their dates are periods planned for, which may lie ahead.
PLAN_TABLES = ("quotas", "budgets")


@dataclass(frozen=True)
class _Scheduled:
    """Rows of `table` whose `column` is an expected date, not an event: where `when` holds."""

    table: str
    column: str
    when: pl.Expr
    why: str


def _scheduled() -> tuple[_Scheduled, ...]:
    return (
        _Scheduled(
            "deals",
            "closed_at",
            pl.col("status").eq("open").fill_null(False),
            "open deals' expected close dates",
        ),
    )


def as_date(frame: pl.DataFrame | pl.LazyFrame, column: str) -> pl.Expr:
    """A date or datetime column as dates."""
    dtype = frame.collect_schema()[column]
    return pl.col(column).dt.date() if isinstance(dtype, pl.Datetime) else pl.col(column)


@dataclass(frozen=True)
class Inferred:
    """The inferred as-of (None without a dated event) and a warning per left-out column."""

    as_of: dt.date | None
    warnings: list[str]


def infer_as_of(
    tables: Mapping[str, pl.DataFrame], anchors: Collection[tuple[str, str]]
) -> Inferred:
    """The latest date over the anchors (table, column) of events that happened: without the
    plan tables' dates and the scheduled dates of `_scheduled`. Each left-out column whose dates
    reach past the inferred as-of gets a warning (logged, and returned for the manifest)."""
    happened: list[dt.date] = []
    left_out: list[tuple[str, str, pl.Series, str]] = []
    scheduled = {(s.table, s.column): s for s in _scheduled()}
    for table, column in sorted(anchors):
        frame = tables[table]
        rule = scheduled.get((table, column))
        dates = as_date(frame, column).alias("d")
        if table in PLAN_TABLES:
            left_out.append((table, column, frame.select(dates)["d"], "planned periods"))
            continue
        if rule is not None and set(rule.when.meta.root_names()) <= set(frame.columns):
            split = frame.select(dates, rule.when.alias("s"))
            left_out.append((table, column, split.filter("s")["d"], rule.why))
            kept = split.filter(~pl.col("s"))["d"]
        else:
            kept = frame.select(dates)["d"]
        latest = kept.max()
        if latest is not None:
            happened.append(latest)  # type: ignore[arg-type]
    as_of = max(happened) if happened else None
    warnings = []
    for table, column, planned, why in left_out:
        later = int((planned > as_of).sum()) if as_of is not None else planned.count()
        if later:
            message = (
                f"as-of: {table}.{column} left out of the default as-of ({why}): {later} "
                f"row{'' if later == 1 else 's'} dated after it"
            )
            log(logging.WARNING, "dates left out of the default as-of", table=table,
                column=column, rows_after=later, reason=why)  # fmt: skip
            warnings.append(message)
    return Inferred(as_of, warnings)
