"""Derived tables the metrics read besides the canonical ones.

`customer_base`: the customer universe (the customers table plus ids seen only in completed
orders) with the acquisition date, the churn date (given, else derived from inactivity) and the
customer's own dimensions. Customer-base metrics (new, churned, at start/end) read it.
`completed_orders`: orders that count (status completed or null), with an order key.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import polars as pl

ORDER_KEY = "order_key"
CUSTOMER_DIMENSIONS = ("segment", "region", "rep", "industry", "acquisition_channel")
VIEW_COLUMNS: dict[str, tuple[str, ...]] = {
    "completed_orders": (),  # the orders columns plus ORDER_KEY and customer_acquired_on
    "customer_base": (
        "customer_id",
        "acquired_on",
        "churned_on",
        "snapshot_on",
        "churned",
        "last_order_on",
        *CUSTOMER_DIMENSIONS,
    ),
}


def completed_orders(orders: pl.DataFrame) -> pl.DataFrame:
    """Orders that count: status completed or unknown. `order_key` groups lines into orders;
    a line without an order_id is an order of its own."""
    frame = orders
    if "status" in frame.columns:
        frame = frame.filter(pl.col("status").is_null() | (pl.col("status") == "completed"))
    line = pl.concat_str(pl.lit("\x00line:"), pl.int_range(pl.len()).cast(pl.String))
    key = pl.coalesce(pl.col("order_id"), line) if "order_id" in frame.columns else line
    return frame.with_columns(key.alias(ORDER_KEY))


def customer_base(
    customers: pl.DataFrame | None,
    orders: pl.DataFrame | None,
    as_of: dt.date,
    settings: Mapping[str, Any],
) -> tuple[pl.DataFrame, str | None]:
    """The customer universe and how churn is known: `dates` (churned_at), `derived`
    (inactivity after the last order), `snapshot` (a churned flag, no dates) or None."""
    as_of_end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time())
    first_last = None
    if orders is not None:
        dated = completed_orders(orders).filter(pl.col("ordered_at") < as_of_end)
        first_last = dated.group_by("customer_id").agg(
            pl.col("ordered_at").min().dt.date().alias("first_order_on"),
            pl.col("ordered_at").max().dt.date().alias("last_order_on"),
        )
    if customers is not None:
        own = customers.select(
            "customer_id",
            *(pl.col(c) for c in ("created_at", "churned_at", "churned") if c in customers.columns),
            *(pl.col(d) for d in CUSTOMER_DIMENSIONS if d in customers.columns),
        )
        base = (
            own
            if first_last is None
            else own.join(first_last, on="customer_id", how="full", coalesce=True)
        )
    elif first_last is not None:
        base = first_last
    else:
        return pl.DataFrame(), None
    for column, dtype in (
        ("created_at", pl.Datetime("us")),
        ("churned_at", pl.Datetime("us")),
        ("churned", pl.Boolean),
        ("first_order_on", pl.Date),
        ("last_order_on", pl.Date),
    ):
        if column not in base.columns:
            base = base.with_columns(pl.lit(None, dtype).alias(column))
    has_dates = customers is not None and (
        "created_at" in customers.columns or "churned_at" in customers.columns
    )
    churn_source = _churn_source(customers, orders, has_dates)
    derived_churn = pl.col("last_order_on").dt.offset_by(f"{settings['inactivity_days']}d")
    churned_on: pl.Expr = pl.when(pl.col("churned_at") < as_of_end).then(
        pl.col("churned_at").dt.date()
    )
    if orders is not None:
        derived = pl.when(pl.col("churned_at").is_null() & (derived_churn <= as_of))
        churned_on = pl.coalesce(churned_on, derived.then(derived_churn))
    acquired_on = pl.coalesce(pl.col("created_at").dt.date(), pl.col("first_order_on"))
    base = base.with_columns(
        acquired_on.alias("acquired_on"),
        # Only an acquired customer can churn (else end = start + new - churned breaks).
        pl.when(acquired_on.is_not_null()).then(churned_on).alias("churned_on"),
        pl.lit(as_of).alias("snapshot_on"),
    )
    base = base.filter(pl.col("acquired_on").is_null() | (pl.col("acquired_on") <= as_of))
    # Without an acquisition date (snapshot data) or a dated churn source, the dated customer
    # metrics are skipped instead of counting every customer as never acquired or never lost.
    absent = set()
    if orders is None and (customers is None or "created_at" not in customers.columns):
        absent.add("acquired_on")
    if churn_source not in ("dates", "derived"):
        absent.add("churned_on")
    keep = [c for c in VIEW_COLUMNS["customer_base"] if c in base.columns and c not in absent]
    return base.select(keep), churn_source


def _churn_source(
    customers: pl.DataFrame | None, orders: pl.DataFrame | None, has_dates: bool
) -> str | None:
    if customers is not None and "churned_at" in customers.columns:
        return "dates"
    if orders is not None:
        return "derived"
    if customers is not None and "churned" in customers.columns and not has_dates:
        return "snapshot"
    return None
