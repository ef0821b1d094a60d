"""Periods: grains, fiscal years, week start, labels and the partial-period flag.

A period is a closed date range [period_start, period_end]. The calendar table maps every date of
the grid to its period, so the compute layer joins it to facts (an equi-join works on every
engine) instead of computing buckets with engine-specific date functions.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from crmkpi.choices import GRAINS

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class Calendar:
    """How dates fall into periods."""

    grain: str = "quarter"
    fiscal_year_start_month: int = 1
    week_start: str = "monday"

    def __post_init__(self) -> None:
        if self.grain not in GRAINS:
            raise ValueError(f"grain must be one of {', '.join(GRAINS)}")
        if not 1 <= self.fiscal_year_start_month <= 12:
            raise ValueError("fiscal_year_start_month must be 1..12")
        if self.week_start not in WEEKDAYS:
            raise ValueError(f"week_start must be one of {', '.join(WEEKDAYS)}")

    @property
    def fiscal(self) -> bool:
        return self.fiscal_year_start_month != 1

    def period_start(self, date: pl.Expr) -> pl.Expr:
        """The first day of the period holding `date` (a pl.Date expression)."""
        if self.grain == "day":
            return date
        if self.grain == "week":
            offset = (date.dt.weekday() - 1 - WEEKDAYS.index(self.week_start)) % 7
            return date - pl.duration(days=offset)
        month_start = date.dt.month_start()
        if self.grain == "month":
            return month_start
        fiscal_month = (date.dt.month() - self.fiscal_year_start_month) % 12  # 0-based
        back = fiscal_month % 3 if self.grain == "quarter" else fiscal_month
        return month_start.dt.offset_by(pl.format("-{}mo", back))

    def year_before(self, label: pl.Expr) -> pl.Expr:
        """The label of the same period a year earlier: `2024-W11` -> `2023-W11`, `FY2025-Q1`
        -> `FY2024-Q1` (weeks match by number, as their start dates do not recur). A period
        without a twin (`2024-02-29`, a 53rd week) finds none; `all` has no year before."""
        if self.grain == "all":
            return pl.lit(None, pl.String)
        parts = label.str.extract_groups(r"^(\D*)(\d{4})(.*)$")
        year = (parts.struct.field("2").cast(pl.Int32) - 1).cast(pl.String).str.zfill(4)
        return pl.concat_str(parts.struct.field("1"), year, parts.struct.field("3"))

    def next_start(self, start: pl.Expr) -> pl.Expr:
        step = {"day": "1d", "week": "1w", "month": "1mo", "quarter": "3mo", "year": "1y"}
        return start.dt.offset_by(step[self.grain])

    def label(self, start: pl.Expr) -> pl.Expr:
        """`2024-03-15`, `2024-W11`, `2024-03`, `2024-Q1`, `2024`; fiscal `FY2025-Q1`, `FY2025`
        (a fiscal year is named by the calendar year it ends in)."""
        if self.grain == "day":
            return start.dt.strftime("%Y-%m-%d")
        if self.grain == "week":
            middle = start + pl.duration(days=3)  # ISO's rule: the week's Thursday names it
            return middle.dt.strftime("%G-W%V")
        if self.grain == "month":
            return start.dt.strftime("%Y-%m")
        if not self.fiscal:
            year = start.dt.year().cast(pl.String)
            if self.grain == "year":
                return year
            return pl.concat_str(year, pl.lit("-Q"), start.dt.quarter().cast(pl.String))
        fiscal_month = (start.dt.month() - self.fiscal_year_start_month) % 12
        ends_in = start.dt.year() + (start.dt.month() >= self.fiscal_year_start_month).cast(
            pl.Int32
        )
        fiscal_year = pl.concat_str(pl.lit("FY"), ends_in.cast(pl.String))
        if self.grain == "year":
            return fiscal_year
        quarter = (fiscal_month // 3 + 1).cast(pl.String)
        return pl.concat_str(fiscal_year, pl.lit("-Q"), quarter)

    def table(self, first_date: dt.date, as_of: dt.date) -> pl.DataFrame:
        """Every date of the grid with its period: `date`, `period`, `period_start`,
        `period_end`, `partial_period`, `period_index` (0, 1, ... in time order).

        The grid runs from the period holding `first_date` to the period holding `as_of`; dates
        after as-of are not in it, so an inner join with it also cuts off later rows. The period
        holding as-of is partial unless as-of is its last day, and the period holding
        `first_date` (where the data start) unless that is its first day: the data cover only
        part of either, so neither compares with a whole period (growth against it is null).
        """
        if first_date > as_of:
            first_date = as_of
        dates = pl.DataFrame({"date": pl.date_range(first_date, as_of, "1d", eager=True)})
        if self.grain == "all":
            frame = dates.with_columns(
                pl.lit("all").alias("period"),
                pl.lit(first_date).alias("period_start"),
                pl.lit(as_of).alias("period_end"),
                pl.lit(False).alias("partial_period"),
            )
        else:
            start = self.period_start(pl.col("date"))
            frame = dates.with_columns(start.alias("period_start")).with_columns(
                self.label(pl.col("period_start")).alias("period"),
                (self.next_start(pl.col("period_start")) - pl.duration(days=1)).alias("period_end"),
            )
            frame = frame.with_columns(
                ((pl.col("period_end") > as_of) | (pl.col("period_start") < first_date)).alias(
                    "partial_period"
                )
            )
        return frame.with_columns(
            pl.col("period_start").rank("dense").cast(pl.Int32).sub(1).alias("period_index")
        ).select("date", "period", "period_start", "period_end", "partial_period", "period_index")

    def partial_comparisons(
        self, periods: pl.DataFrame, lag: str, first_date: dt.date, as_of: dt.date
    ) -> dict[str, str]:
        """{period: why} for each period of `periods` whose comparison with its base period
        (`lag`: the previous one, or a year before) has a partial period on either side: growth
        there is null, as a part of a period never compares with a whole one."""
        if self.grain == "all":
            return {}
        base_label = (
            pl.col("period").shift(1) if lag == "previous" else self.year_before(pl.col("period"))
        )
        ordered = periods.sort("period_index").with_columns(base_label.alias("__base"))
        coverage = periods.select(
            pl.col("period").alias("__base"),
            pl.col("partial_period").alias("__base_partial"),
            pl.col("period_start").alias("__base_start"),
            pl.col("period_end").alias("__base_end"),
        )
        paired = ordered.join(coverage, on="__base", how="inner")
        paired = paired.filter(pl.col("partial_period") | pl.col("__base_partial"))

        def covered(name: pl.Expr, start: str, end: str) -> pl.Expr:
            """`2010-Q4 has data only from 2010-12-01`, `... only to as-of 2011-12-09`."""
            notes = [
                pl.when(pl.col(start) < first_date).then(
                    pl.concat_str(name, pl.lit(f" has data only from {first_date.isoformat()}"))
                ),
                pl.when(pl.col(end) > as_of).then(
                    pl.concat_str(name, pl.lit(f" runs only to as-of {as_of.isoformat()}"))
                ),
            ]
            return pl.concat_list(notes)

        reasons = paired.select(
            "period",
            pl.concat_str(
                pl.lit("against "),
                pl.col("__base"),
                pl.lit(": "),
                pl.concat_list(
                    covered(pl.col("period"), "period_start", "period_end"),
                    covered(pl.col("__base"), "__base_start", "__base_end"),
                )
                .list.drop_nulls()
                .list.join("; "),
            ).alias("reason"),
        )
        return dict(reasons.iter_rows())

    def periods(self, first_date: dt.date, as_of: dt.date) -> pl.DataFrame:
        """One row per period of the grid (the calendar table without dates)."""
        return (
            self.table(first_date, as_of).drop("date").unique("period_index").sort("period_index")
        )
