"""Per-customer tables written beside the KPI table: `rfm`, `churn_risk` and `cohorts`.

`rfm` follows the conventions of the `lifetimes` package's summary_data_from_transaction_data
(purchases grouped by day; frequency and monetary over repeat purchase days only) so users can
compare the two; scores and named segments follow KPI_CATALOGUE.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from crmkpi.calendar import Calendar
from crmkpi.views import EXACT, ORDER_KEY, counted, end_of, order_key

# First matching rule wins: (segment, {score: (lowest, highest)}, frequency must be 0).
DEFAULT_RFM_SEGMENTS: tuple[tuple[str, Mapping[str, tuple[int, int]], bool], ...] = (
    ("champions", {"r": (4, 5), "f": (4, 5), "m": (4, 5)}, False),
    ("loyal", {"r": (3, 5), "f": (3, 5)}, False),
    ("new", {"r": (4, 5)}, True),
    ("potential", {"r": (3, 5)}, False),
    ("cannot lose", {"r": (1, 2), "f": (4, 5), "m": (4, 5)}, False),
    ("at risk", {"r": (1, 2), "f": (3, 5)}, False),
    ("hibernating", {"r": (2, 2)}, False),
)
RFM_SEGMENT_NAMES = (*(name for name, _, _ in DEFAULT_RFM_SEGMENTS), "lost")


def day_purchases(orders: pl.DataFrame, as_of: dt.date) -> pl.DataFrame:
    """Completed orders up to as-of, summed per customer and purchase day."""
    end = end_of(as_of)
    return (
        orders.lazy()
        .filter(counted(orders, end))
        .with_columns(order_key(orders))
        .group_by("customer_id", pl.col("ordered_at").dt.date().alias("day"))
        .agg(
            pl.col("amount").cast(pl.Float64).cast(EXACT).sum().alias("day_amount"),
            pl.col(ORDER_KEY).n_unique().alias("day_orders"),
        )
        .collect()
    )


def score(values: pl.Expr, descending: bool = False) -> pl.Expr:
    """min(5, 1 + floor(5 x percent_rank)); ties share a score (their lowest rank)."""
    ranked = (-values if descending else values).rank("min")
    count = values.count()
    percent_rank = pl.when(count > 1).then((ranked - 1) / (count - 1)).otherwise(0.0)
    return pl.min_horizontal(pl.lit(5), (1 + (5 * percent_rank).floor()).cast(pl.Int64))


def _segment_rules(rules: Sequence[Any] | None) -> pl.Expr:
    """The first rule that matches names the segment; `lost` otherwise."""
    chosen = (
        DEFAULT_RFM_SEGMENTS
        if rules is None
        else tuple(
            (
                r["name"],
                {k: tuple(v) for k, v in r.get("scores", {}).items()},
                bool(r.get("new", False)),
            )
            for r in rules
        )
    )
    expr: Any = pl
    for name, bounds, first_time in chosen:
        condition = pl.lit(True)
        for letter, (low, high) in bounds.items():
            column = pl.col(f"{letter}_score")
            condition = condition & column.is_between(low, high)
        if first_time:
            condition = condition & (pl.col("frequency") == 0)
        expr = expr.when(condition).then(pl.lit(name))
    return expr.otherwise(pl.lit("lost"))


def rfm(
    orders: pl.DataFrame,
    customers: pl.DataFrame | None,
    as_of: dt.date,
    settings: Mapping[str, Any],
    days: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """One row per customer with a completed order by as-of."""
    days = day_purchases(orders, as_of) if days is None else days
    # a customer's days are distinct: the repeat days are all but the first, and their spend
    # is the total less the first day's (exact in decimals)
    repeat_days = pl.len() - 1
    total = pl.col("day_amount").sum()
    first_day = pl.col("day_amount").get(pl.col("day").arg_min())
    repeat = (
        pl.when(repeat_days > 0)
        .then((total - first_day).cast(pl.Float64) / repeat_days)
        .otherwise(0.0)
    )
    table = (
        days.lazy()
        .group_by("customer_id")
        .agg(
            pl.col("day").min().alias("first_purchase_on"),
            pl.col("day").max().alias("last_purchase_on"),
            repeat_days.alias("frequency"),
            repeat.alias("monetary"),
            total.cast(pl.Float64).alias("total_spend"),
            pl.col("day_orders").sum().alias("orders_count"),
        )
    )
    table = table.with_columns(
        (pl.col("last_purchase_on") - pl.col("first_purchase_on"))
        .dt.total_days()
        .alias("recency_days"),
        (pl.lit(as_of) - pl.col("first_purchase_on")).dt.total_days().alias("tenure_days"),
        (pl.lit(as_of) - pl.col("last_purchase_on"))
        .dt.total_days()
        .alias("days_since_last_purchase"),
    ).with_columns(
        score(pl.col("days_since_last_purchase"), descending=True).alias("r_score"),
        score(pl.col("frequency")).alias("f_score"),
        score(pl.col("total_spend")).alias("m_score"),
    )
    table = table.with_columns(_segment_rules(settings.get("rfm_segments")).alias("rfm_segment"))
    if customers is not None:
        dims = [c for c in ("segment", "region", "rep") if c in customers.columns]
        table = table.join(
            customers.lazy().select("customer_id", *dims), on="customer_id", how="left"
        )
    columns = table.collect_schema().names()
    return (
        table.select(
            "customer_id",
            *(c for c in ("segment", "region", "rep") if c in columns),
            "first_purchase_on",
            "last_purchase_on",
            "frequency",
            "recency_days",
            "tenure_days",
            "monetary",
            "total_spend",
            "orders_count",
            "days_since_last_purchase",
            "r_score",
            "f_score",
            "m_score",
            "rfm_segment",
        )
        .sort("customer_id")
        .collect()
    )


def churn_risk(
    orders: pl.DataFrame | None,
    activities: pl.DataFrame | None,
    base: pl.DataFrame,
    as_of: dt.date,
    settings: Mapping[str, Any],
    days: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Active customers whose purchases or interactions fell by churn_risk_drop or more in the
    last window against the window before, or who are overdue by risk_multiple x their usual
    gap between purchase days. One row each, with the rule that fired and its figures."""
    window = int(settings["churn_risk_window_days"])
    drop = float(settings["churn_risk_drop"])
    multiple = float(settings["risk_multiple"])
    last_start = as_of - dt.timedelta(days=window - 1)
    previous_start = last_start - dt.timedelta(days=window)
    live = base.filter(pl.col("churned_on").is_null()) if "churned_on" in base.columns else base
    figures = live.lazy().select(
        "customer_id", *(c for c in ("segment", "rep") if c in live.columns)
    )

    def windows(prefix: str) -> list[pl.Expr]:
        return [
            pl.col("day").is_between(last_start, as_of).sum().alias(f"{prefix}_last_window"),
            pl.col("day")
            .is_between(previous_start, last_start - dt.timedelta(days=1))
            .sum()
            .alias(f"{prefix}_previous_window"),
        ]

    rules = []
    if orders is not None:
        days = day_purchases(orders, as_of) if days is None else days
        # the mean gap between consecutive purchase days telescopes to (last - first) / (n - 1)
        first, last, count = pl.col("day").min(), pl.col("day").max(), pl.col("day").count()
        purchases = (
            days.lazy()
            .group_by("customer_id")
            .agg(
                *windows("purchases"),
                last.alias("last_purchase_on"),
                pl.when(count > 1)
                .then((last - first).dt.total_days() / (count - 1))
                .alias("usual_gap_days"),
            )
        )
        figures = figures.join(purchases, on="customer_id", how="left").with_columns(
            (pl.lit(as_of) - pl.col("last_purchase_on"))
            .dt.total_days()
            .alias("days_since_last_purchase")
        )
        rules.append(("purchases_dropped", _dropped("purchases", drop)))
        rules.append(
            (
                "overdue",
                pl.col("days_since_last_purchase") > multiple * pl.col("usual_gap_days"),
            )
        )
    if activities is not None and "customer_id" in activities.columns:
        end = end_of(as_of)
        touches = (
            activities.lazy()
            .filter(pl.col("occurred_at") < end)
            .select("customer_id", pl.col("occurred_at").dt.date().alias("day"))
            .drop_nulls("customer_id")
            .group_by("customer_id")
            .agg(*windows("interactions"))
        )
        figures = figures.join(touches, on="customer_id", how="left")
        rules.append(("interactions_dropped", _dropped("interactions", drop)))
    if not rules:
        return pl.DataFrame(
            {"customer_id": [], "reason": []},
            schema={"customer_id": pl.String, "reason": pl.String},
        )
    reason = pl.concat_str(
        [pl.when(rule.fill_null(False)).then(pl.lit(name)) for name, rule in rules],
        separator="; ",
        ignore_nulls=True,
    )
    flagged = figures.with_columns(reason.alias("reason")).filter(pl.col("reason") != "")
    return flagged.sort("customer_id").collect()


def _dropped(prefix: str, drop: float) -> pl.Expr:
    previous = pl.col(f"{prefix}_previous_window").fill_null(0)
    last = pl.col(f"{prefix}_last_window").fill_null(0)
    return (previous > 0) & (last <= previous * (1 - drop))


def cohorts(
    orders: pl.DataFrame, as_of: dt.date, calendar: Calendar, days: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Acquisition cohort (period of the first purchase) x periods since acquisition -> share
    of the cohort still purchasing: the retention triangle, in the run's grain."""
    days = day_purchases(orders, as_of) if days is None else days
    if days.height == 0:
        return pl.DataFrame()
    table = calendar.table(days["day"].min(), as_of)  # type: ignore[arg-type]
    # one lazy query: the customer x period pairs are built once and feed both the cohorts
    # and the triangle
    placed = (
        days.lazy()
        .join(table.lazy().select("date", "period_index"), left_on="day", right_on="date")
        .select("customer_id", "period_index")
        .unique()
    )
    cohort = pl.col("period_index").min().over("customer_id").alias("cohort_index")
    active = placed.with_columns(cohort)
    sizes = (
        active.filter(pl.col("period_index") == pl.col("cohort_index"))
        .group_by("cohort_index")
        .len("cohort_customers")
    )
    labels = table.lazy().select("period_index", "period").unique()
    triangle = (
        active.group_by("cohort_index", "period_index")
        .len("active_customers")
        .join(sizes, on="cohort_index")
        .with_columns(
            (pl.col("period_index") - pl.col("cohort_index")).alias("periods_since_acquisition"),
            (pl.col("active_customers") / pl.col("cohort_customers")).alias("retention"),
        )
    )
    grid = (
        sizes.join(labels.rename({"period_index": "p"}), how="cross")
        .filter(pl.col("p") >= pl.col("cohort_index"))
        .rename({"p": "period_index"})
        .drop("period")
    )
    full = grid.join(
        triangle.select("cohort_index", "period_index", "active_customers", "retention"),
        on=["cohort_index", "period_index"],
        how="left",
    ).with_columns(
        pl.col("active_customers").fill_null(0),
        pl.col("retention").fill_null(0.0),
        (pl.col("period_index") - pl.col("cohort_index")).alias("periods_since_acquisition"),
    )
    named = full.join(
        labels.rename({"period": "cohort", "period_index": "cohort_index"}), on="cohort_index"
    ).join(labels, on="period_index")
    return (
        named.select(
            "cohort",
            "periods_since_acquisition",
            "period",
            "cohort_customers",
            "active_customers",
            "retention",
        )
        .sort("cohort", "periods_since_acquisition")
        .collect()
    )
