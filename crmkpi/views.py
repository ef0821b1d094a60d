"""Derived tables the metrics read besides the canonical ones.

`customer_base`: the customer universe (the customers table plus ids seen only in completed
orders) with the acquisition date, the churn date (given, else derived from inactivity) and the
customer's own dimensions. Customer-base metrics (new, churned, at start/end) read it.
`completed_orders`: orders that count (status completed or null), with an order key.
`placed_orders`: every order placed by as-of whatever its status (refunds and cancellations
too), with an order key: the base of the refund metrics.
`shift_utilization`: agent shifts with the handle time of the answered calls on them.
`campaign_results`: campaigns with their members' revenue (targeted by as-of) and their cost.
`rep_adoption`: per period and rep, whether the rep logged an activity and whether the rep
owned an open deal or a live customer at the period's end.
`training_results`: trainings whose after-window has ended by as-of, with the trained rep's won
revenue in the window before and the window after.
`customer_rfm` / `customer_clv`: the rfm and clv_forecast tables (crmkpi.profiles) as of as-of,
placed in the period holding it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from typing import Any

import narwhals as nw
import polars as pl

from crmkpi.elapsed import days_between
from crmkpi.exact import exact_total
from crmkpi.provenance import SOURCE_FILE, SOURCE_LINE

ORDER_KEY = "order_key"
CUSTOMER_DIMENSIONS = ("segment", "region", "rep", "industry", "acquisition_channel")
PROFILE_FIELDS = ("name", "email", "phone", "address")
VIEW_COLUMNS: dict[str, tuple[str, ...]] = {
    "completed_orders": (),  # the orders columns plus ORDER_KEY and customer_acquired_on
    "placed_orders": (),  # the same columns, every status
    "customer_base": (
        "customer_id",
        "acquired_on",
        "churned_on",
        "snapshot_on",
        "churned",
        "last_order_on",
        *CUSTOMER_DIMENSIONS,
        *PROFILE_FIELDS,
    ),
    "shift_utilization": ("rep", "shift_date", "staffed_seconds", "handled_seconds"),
    "campaign_results": ("campaign_id", "started_at", "channel", "revenue", "cost"),
    "rep_adoption": ("rep", "period_date", "active", "owning"),
    "training_results": (
        "rep",
        "trained_on",
        "program",
        "won_revenue_before",
        "won_revenue_after",
    ),
    "customer_rfm": (
        "customer_id",
        "snapshot_on",
        "rfm_segment",
        "r_score",
        "f_score",
        "m_score",
        *CUSTOMER_DIMENSIONS,
    ),
    "customer_clv": (
        "customer_id",
        "snapshot_on",
        "p_alive",
        "expected_purchases",
        "predicted_clv",
        *CUSTOMER_DIMENSIONS,
    ),
}


def end_of(as_of: dt.date) -> dt.datetime:
    """The first instant after the as-of day: timestamps before it count."""
    return dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time())


def counted(columns: Collection[str], as_of: dt.date) -> nw.Expr:
    """The orders that count: status completed or unknown, ordered by the as-of day. Compared
    as dates, so that no engine turns a datetime literal into its own time zone."""
    rule = nw.col("ordered_at").dt.date() <= as_of
    if "status" in columns:
        rule = rule & (nw.col("status").is_null() | (nw.col("status") == "completed"))
    return rule


def with_lines(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` with the file and line each row was read from; frames handed in without
    provenance get their row numbers as lines, here and nowhere else: every view then keys
    rows by data that any engine keeps."""
    if {SOURCE_FILE, SOURCE_LINE} <= set(frame.columns):
        return frame
    return frame.with_row_index(SOURCE_LINE).with_columns(pl.lit("").alias(SOURCE_FILE))


def line_key() -> nw.Expr:
    """A row's file and line as one string (see `with_lines`)."""
    return nw.concat_str(
        nw.lit("\x00"), nw.col(SOURCE_FILE), nw.lit(":"), nw.col(SOURCE_LINE).cast(nw.String)
    )


def keyed_orders(orders: pl.DataFrame) -> tuple[pl.DataFrame, nw.Expr]:
    """The orders and their `order_key`, which groups lines into orders: the order_id when every
    line has one, else the file and line a line was read from for lines without one."""
    if "order_id" in orders.columns and orders["order_id"].null_count() == 0:
        return orders, nw.col("order_id").alias(ORDER_KEY)
    orders, line = with_lines(orders), line_key()
    key = nw.coalesce(nw.col("order_id"), line) if "order_id" in orders.columns else line
    return orders, key.alias(ORDER_KEY)


def completed_orders(
    orders: nw.LazyFrame[Any], columns: Collection[str], key: nw.Expr, as_of: dt.date
) -> nw.LazyFrame[Any]:
    """Orders that count by as-of, with their `order_key` (see keyed_orders): a plan over the
    orders on whichever engine holds them, not a copy."""
    return orders.filter(counted(columns, as_of)).with_columns(key)


def placed_orders(orders: nw.LazyFrame[Any], key: nw.Expr, as_of: dt.date) -> nw.LazyFrame[Any]:
    """Every order placed by as-of, whatever its status, with its `order_key` (a plan over the
    orders)."""
    return orders.filter(nw.col("ordered_at").dt.date() <= as_of).with_columns(key)


def order_spans(
    orders: nw.LazyFrame[Any], columns: Collection[str], as_of: dt.date
) -> nw.LazyFrame[Any]:
    """Per customer, the days of the first and last orders that count, up to as-of (a plan
    over the orders)."""
    day = nw.col("ordered_at").dt.date()
    return (
        orders.filter(counted(columns, as_of))
        .with_columns(day.alias("__day"))
        .group_by("customer_id")
        .agg(
            nw.col("__day").min().alias("first_order_on"),
            nw.col("__day").max().alias("last_order_on"),
        )
    )


def known_customers(customers: pl.DataFrame, as_of: dt.date) -> pl.DataFrame:
    """The customers table's rows that customer_base keeps: those created by as-of (or with
    no creation date). Their dimensions are what other tables look up by customer_id."""
    if "created_at" not in customers.columns:
        return customers
    created_on = pl.col("created_at").dt.date()
    return customers.filter(created_on.is_null() | (created_on <= as_of))


# The customer base's own columns and their types when an input lacks them.
_BASE_DEFAULTS = {
    "created_at": nw.Datetime("us"),
    "churned_at": nw.Datetime("us"),
    "churned": nw.Boolean(),
    "first_order_on": nw.Date(),
    "last_order_on": nw.Date(),
}


def customer_base_plan(
    customers: nw.LazyFrame[Any] | None,
    spans: nw.LazyFrame[Any] | None,
    as_of: dt.date,
    settings: Mapping[str, Any],
) -> tuple[nw.LazyFrame[Any] | None, str | None]:
    """The customer universe (a plan over the customers and `order_spans`, None without
    either) and how churn is known: `dates` (churned_at), `derived` (inactivity after the
    last order), `snapshot` (a churned flag, no dates) or None."""
    own_columns = [] if customers is None else customers.collect_schema().names()
    churn_source = churn_source_of(None if customers is None else own_columns, spans is not None)
    if customers is not None:
        own = customers.select(
            "customer_id",
            *(c for c in ("created_at", "churned_at", "churned") if c in own_columns),
            *(d for d in CUSTOMER_DIMENSIONS if d in own_columns),
            *(c for c in own_columns if c in PROFILE_FIELDS or c.startswith("profile_")),
        )
        base = own
        if spans is not None:  # every customer of either side, once
            joined = own.join(spans, on="customer_id", how="full", suffix="__spans")
            base = joined.with_columns(
                nw.coalesce("customer_id", "customer_id__spans").alias("customer_id")
            ).drop("customer_id__spans")
    elif spans is not None:
        base = spans
    else:
        return None, None
    present = base.collect_schema().names()
    base = base.with_columns(
        nw.lit(None, dtype).alias(c) for c, dtype in _BASE_DEFAULTS.items() if c not in present
    )
    churned_at = nw.col("churned_at")
    churned_on: nw.Expr = nw.when(churned_at.dt.date() <= as_of).then(churned_at.dt.date())
    if spans is not None:
        # a date on every engine (DuckDB's date + interval is a timestamp)
        inactive_for = f"{settings['inactivity_days']}d"
        derived_churn = nw.col("last_order_on").dt.offset_by(inactive_for).cast(nw.Date())
        derived = nw.when(churned_at.is_null() & (derived_churn <= as_of)).then(derived_churn)
        churned_on = nw.coalesce(churned_on, derived)
    acquired_on = nw.coalesce(nw.col("created_at").dt.date(), nw.col("first_order_on"))
    base = base.with_columns(
        acquired_on.alias("acquired_on"),
        # Only an acquired customer can churn (else end = start + new - churned breaks).
        nw.when(~acquired_on.is_null()).then(churned_on).alias("churned_on"),
        nw.lit(as_of).alias("snapshot_on"),
    ).filter(nw.col("acquired_on").is_null() | (nw.col("acquired_on") <= as_of))
    # Without an acquisition date (snapshot data) or a dated churn source, the dated customer
    # metrics are skipped instead of counting every customer as never acquired or never lost.
    absent = set()
    if spans is None and "created_at" not in own_columns:
        absent.add("acquired_on")
    if churn_source not in ("dates", "derived"):
        absent.add("churned_on")
    columns = base.collect_schema().names()
    keep = [c for c in VIEW_COLUMNS["customer_base"] if c in columns and c not in absent]
    keep += [c for c in columns if c.startswith("profile_")]  # configured profile fields
    return base.select(keep), churn_source


def customer_base(
    customers: pl.DataFrame | None,
    orders: pl.DataFrame | None,
    as_of: dt.date,
    settings: Mapping[str, Any],
    spans: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, str | None]:
    """`customer_base_plan` of Polars frames, collected (an empty frame without customers or
    orders). `spans` is `order_spans` of the orders when the caller has them already."""
    spans_plan = None if spans is None else nw.from_native(spans.lazy())
    if spans_plan is None and orders is not None:
        spans_plan = order_spans(nw.from_native(orders.lazy()), orders.columns, as_of)
    own = None if customers is None else nw.from_native(customers.lazy())
    plan, churn_source = customer_base_plan(own, spans_plan, as_of, settings)
    return (pl.DataFrame() if plan is None else plan.collect().to_native()), churn_source


def churn_source_of(customer_columns: Collection[str] | None, has_orders: bool) -> str | None:
    """How churn is known, from which columns the inputs have (see customer_base_plan)."""
    if customer_columns is not None and "churned_at" in customer_columns:
        return "dates"
    if has_orders:
        return "derived"
    has_dates = customer_columns is not None and "created_at" in customer_columns
    if customer_columns is not None and "churned" in customer_columns and not has_dates:
        return "snapshot"
    return None


# Sums in a wide decimal are exact whatever order a parallel group_by adds rows in, so reruns
# give the same bits (floats would not).
EXACT = pl.Decimal(38, 9)


def exact_sum(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.Float64).cast(EXACT).sum().cast(pl.Float64)


def shift_utilization(
    calls: nw.LazyFrame[Any], call_columns: Collection[str], shifts: nw.LazyFrame[Any]
) -> nw.LazyFrame[Any]:
    """Each shift with the talk + hold + acw of the answered calls its agent took that day
    (0 when none); calls on days without a shift are not counted. Without talk_seconds or
    rep on the calls there is no handle time to place (handled_seconds is left out). A plan
    over the calls and shifts."""
    daily = shifts.group_by("rep", "shift_date").agg(exact_total(nw.col("staffed_seconds")))
    if not {"talk_seconds", "rep"} <= set(call_columns):
        return daily
    handle = nw.col("talk_seconds").fill_null(0.0)
    for column in ("hold_seconds", "acw_seconds"):
        if column in call_columns:
            handle = handle + nw.col(column).fill_null(0.0)
    handled = (
        calls.filter((nw.col("outcome") == "answered") & ~nw.col("rep").is_null())
        .with_columns(nw.col("offered_at").dt.date().alias("shift_date"))
        .group_by("rep", "shift_date")
        .agg(exact_total(handle).alias("handled_seconds"))
    )
    return daily.join(handled, on=["rep", "shift_date"], how="left").with_columns(
        nw.col("handled_seconds").fill_null(0.0)
    )


def campaign_results(
    campaigns: nw.LazyFrame[Any],
    members: nw.LazyFrame[Any] | None,
    spend: nw.LazyFrame[Any] | None,
    as_of: dt.date,
) -> nw.LazyFrame[Any]:
    """Per campaign: its members' revenue (targeted by as-of) and its cost: campaigns.cost,
    else the spend rows carrying its campaign_id (spent by as-of), else 0. Without members'
    revenue the column is left out (campaign_roi is skipped, not -100 %). A plan over the
    campaigns, members and spend."""
    given = campaigns.collect_schema().names()
    frame = campaigns.select(
        "campaign_id", "started_at", *(c for c in ("channel", "cost") if c in given)
    )
    if "cost" not in given:
        frame = frame.with_columns(nw.lit(None, nw.Float64()).alias("cost"))
    cost = nw.coalesce(nw.col("cost"), nw.lit(0.0))
    if spend is not None and "campaign_id" in spend.collect_schema().names():
        spent = (
            spend.filter(
                ~nw.col("campaign_id").is_null() & (nw.col("spent_at").cast(nw.Date()) <= as_of)
            )
            .group_by("campaign_id")
            .agg(exact_total(nw.col("amount")).alias("spent"))
        )
        frame = frame.join(spent, on="campaign_id", how="left")
        cost = nw.coalesce(nw.col("cost"), nw.col("spent"), nw.lit(0.0))
    frame = frame.with_columns(cost.alias("cost")).select(
        "campaign_id", "started_at", *(["channel"] if "channel" in given else []), "cost"
    )
    if members is None or "revenue" not in members.collect_schema().names():
        return frame
    revenue = (
        members.filter(nw.col("targeted_at") < end_of(as_of))
        .group_by("campaign_id")
        .agg(exact_total(nw.col("revenue").fill_null(0.0)))
    )
    return frame.join(revenue, on="campaign_id", how="left").with_columns(
        nw.col("revenue").fill_null(0.0)
    )


def rep_adoption(
    calendar: pl.DataFrame,
    periods: pl.DataFrame,
    as_of: dt.date,
    activities: pl.DataFrame | None,
    deals: pl.DataFrame | None,
    base: pl.DataFrame | None,
) -> pl.DataFrame:
    """Per period and rep: `active` (an activity in the period) and `owning` (an open deal or a
    live customer at the period's end, as-of for the partial period). Ownership is a running
    balance of openings and closings per rep, so no rep x item x period product is built."""
    dated = calendar.select("date", "period_index")
    events = []
    if deals is not None and "rep" in deals.columns:
        events.append(
            deals.select("rep", pl.col("created_at").dt.date().alias("day"), pl.lit(1).alias("d"))
        )
        if "closed_at" in deals.columns:  # absent when every deal is still open
            closes = pl.col("status").is_in(["won", "lost"])
            events.append(
                deals.filter(closes).select(
                    "rep", pl.col("closed_at").dt.date().alias("day"), pl.lit(-1).alias("d")
                )
            )
    if base is not None and "rep" in base.columns:
        events += [
            base.select("rep", pl.col("acquired_on").alias("day"), pl.lit(1).alias("d")),
            base.select("rep", pl.col("churned_on").alias("day"), pl.lit(-1).alias("d"))
            if "churned_on" in base.columns
            else base.clear().select(
                "rep", pl.lit(None, pl.Date).alias("day"), pl.lit(-1).alias("d")
            ),
        ]
    owning = pl.DataFrame(schema={"rep": pl.String, "period_index": pl.Int32, "owning": pl.Boolean})
    if events:
        stacked = pl.concat(events).drop_nulls(["rep", "day"]).filter(pl.col("day") <= as_of)
        placed = stacked.join(dated, left_on="day", right_on="date", how="left").with_columns(
            pl.col("period_index").fill_null(-1)
        )
        net = placed.group_by("rep", "period_index").agg(pl.col("d").sum())
        grid = net.select("rep").unique().join(periods.select("period_index"), how="cross")
        carried = net.filter(pl.col("period_index") == -1).select("rep", pl.col("d").alias("c"))
        owning = (
            grid.join(net, on=["rep", "period_index"], how="left")
            .join(carried, on="rep", how="left")
            .sort("rep", "period_index")
            .with_columns(
                (
                    pl.col("d").fill_null(0).cum_sum().over("rep") + pl.col("c").fill_null(0) > 0
                ).alias("owning")
            )
            .select("rep", "period_index", "owning")
        )
    active = pl.DataFrame(schema={"rep": pl.String, "period_index": pl.Int32})
    if activities is not None and "rep" in activities.columns:
        active = (
            activities.drop_nulls("rep")
            .select("rep", pl.col("occurred_at").dt.date().alias("day"))
            .join(dated, left_on="day", right_on="date", how="inner")
            .select("rep", "period_index")
            .unique()
        )
    flagged = owning.join(
        active.with_columns(pl.lit(True).alias("active")),
        on=["rep", "period_index"],
        how="full",
        coalesce=True,
    )
    ends = periods.select(
        "period_index", pl.min_horizontal("period_end", pl.lit(as_of)).alias("period_date")
    )
    return flagged.join(ends, on="period_index").select(
        "rep", "period_date", pl.col("active").fill_null(False), pl.col("owning").fill_null(False)
    )


def training_results(
    trainings: nw.LazyFrame[Any], deals: nw.LazyFrame[Any], as_of: dt.date, window_days: int
) -> nw.LazyFrame[Any]:
    """Each training whose after-window (the `window_days` days after trained_on) has ended by
    as-of, with the won revenue its rep closed in that window and in the `window_days` days
    before trained_on; the training day itself is in neither. A won deal without an amount adds
    0. Trainings are few and a rep closes at most one revenue total a day, so the join of
    trainings to daily revenue by rep stays small. A plan over the trainings (`with_lines`:
    each training is keyed by its file and line) and the deals."""
    given = trainings.collect_schema().names()
    keyed = trainings.filter(nw.col("trained_on") <= as_of - dt.timedelta(days=window_days)).select(
        "rep",
        "trained_on",
        *(["program"] if "program" in given else []),
        line_key().alias("__training"),
    )
    daily = (
        deals.filter((nw.col("status") == "won") & ~nw.col("rep").is_null())
        .with_columns(nw.col("closed_at").dt.date().alias("closed_on"))
        .group_by("rep", "closed_on")
        .agg(exact_total(nw.col("amount").fill_null(0.0)).alias("won"))
    )
    offset_days = days_between(nw.col("closed_on"), nw.col("trained_on"))
    before = (offset_days >= -window_days) & (offset_days < 0)
    after = (offset_days > 0) & (offset_days <= window_days)
    sums = (
        keyed.join(daily, on="rep", how="inner")
        .group_by("__training")
        .agg(
            exact_total(nw.when(before).then(nw.col("won")).otherwise(0.0)).alias(
                "won_revenue_before"
            ),
            exact_total(nw.when(after).then(nw.col("won")).otherwise(0.0)).alias(
                "won_revenue_after"
            ),
        )
    )
    return (
        keyed.join(sums, on="__training", how="left")
        .with_columns(nw.col("won_revenue_before", "won_revenue_after").fill_null(0.0))
        .drop("__training")
    )
