"""Per-customer tables written beside the KPI table: `rfm`, `churn_risk`, `cohorts` and
`clv_forecast`.

`rfm` follows the conventions of the `lifetimes` package's summary_data_from_transaction_data
(purchases grouped by day; frequency and monetary over repeat purchase days only) so users can
compare the two; scores and named segments follow KPI_CATALOGUE.md. `clv_forecast` fits the
BG/NBD and Gamma-Gamma models (crmkpi.clv_models) to rfm's frequency, recency, tenure and
monetary value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import narwhals as nw
import numpy as np
import polars as pl

from crmkpi import clv_models
from crmkpi.calendar import Calendar
from crmkpi.elapsed import days_between
from crmkpi.engines import Engine
from crmkpi.engines.polars import PolarsEngine
from crmkpi.exact import exact_sum
from crmkpi.views import ORDER_KEY, completed_orders, keyed_orders

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
RFM_FIGURES = (
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
# The integer columns of rfm, churn_risk and cohorts, typed as on Polars whichever engine
# computed them (engines type counts and day differences their own way: Int64, a decimal, a
# double on SQLFrame).
_COUNTS, _DAYS = pl.UInt32(), pl.Int64()
INTEGER_COLUMNS: dict[str, pl.DataType] = {
    "frequency": _COUNTS,
    "orders_count": _COUNTS,
    "recency_days": _DAYS,
    "tenure_days": _DAYS,
    "days_since_last_purchase": _DAYS,
    "purchases_last_window": _COUNTS,
    "purchases_previous_window": _COUNTS,
    "interactions_last_window": _COUNTS,
    "interactions_previous_window": _COUNTS,
    "cohort_customers": _COUNTS,
    "active_customers": _COUNTS,
}
RFM_SEGMENT_NAMES = (*(name for name, _, _ in DEFAULT_RFM_SEGMENTS), "lost")
# What each column of the per-customer tables holds, for the README (`make docs`): the RFM
# figures follow the `lifetimes` package, whose names differ from their everyday meaning.
COLUMN_DOCS: dict[str, dict[str, str]] = {
    "rfm": {
        "customer_id": "the customer",
        "segment": "the customer's segment (with a customers table)",
        "region": "the customer's region (with a customers table)",
        "rep": "the customer's rep (with a customers table)",
        "first_purchase_on": "day of the first completed order",
        "last_purchase_on": "day of the last completed order up to as-of",
        "frequency": "repeat purchase days: days with a completed order, less the first one "
        "(lifetimes' frequency; several orders on one day count once)",
        "recency_days": "days from the first to the last purchase day (lifetimes' recency: the "
        "customer's age at the last purchase, not the time since it)",
        "tenure_days": "days from the first purchase day to as-of (lifetimes' T: the customer's "
        "age)",
        "monetary": "mean spend of the repeat purchase days, 0 without one (lifetimes' "
        "monetary_value)",
        "total_spend": "spend of every completed order up to as-of",
        "orders_count": "completed orders up to as-of",
        "days_since_last_purchase": "days from the last purchase day to as-of (recency in "
        "the everyday sense; it drives r_score)",
        "r_score": "1-5 by days_since_last_purchase (5: the most recent)",
        "f_score": "1-5 by frequency",
        "m_score": "1-5 by total_spend",
        "rfm_segment": "the first rfm_segments rule the scores match, else lost",
    },
    "clv_forecast": {
        "frequency": "repeat purchase days, as in rfm",
        "recency": "rfm's recency_days in time_unit (first to last purchase)",
        "T": "rfm's tenure_days in time_unit (first purchase to as-of)",
        "time_unit": "the clv_time_unit setting: day, week or month",
        "monetary_value": "rfm's monetary",
        "p_alive": "BG/NBD probability that the customer is still active at as-of",
        "expected_purchases": "repeat purchases the BG/NBD model expects over the horizon",
        "expected_value_per_purchase": "Gamma-Gamma expected spend of one purchase",
        "predicted_clv": "expected_value_per_purchase x the discounted expected purchases",
    },
}


def purchase_days(
    orders: nw.LazyFrame[Any], columns: Collection[str], key: nw.Expr, as_of: dt.date
) -> nw.LazyFrame[Any]:
    """Completed orders up to as-of, summed per customer and purchase day (a plan over the
    orders, on whichever engine holds them; see views.keyed_orders for `key`). The day's spend
    is a wide decimal, so a customer's total is exact whatever order the days are added in."""
    return (
        completed_orders(orders, columns, key, as_of)
        .with_columns(nw.col("ordered_at").dt.date().alias("day"))
        .group_by("customer_id", "day")
        .agg(
            exact_sum(nw.col("amount")).alias("day_amount"),
            nw.col(ORDER_KEY).n_unique().alias("day_orders"),
        )
    )


def score(values: nw.Expr, descending: bool = False) -> nw.Expr:
    """min(5, 1 + floor(5 x percent_rank)) over every customer; ties share a score (their
    lowest rank). In integers, floor(5 (rank - 1) / (count - 1)) is exact on every engine (a
    cast of a double to an integer truncates on some and rounds on others)."""
    ranked = values.rank("min", descending=descending).cast(nw.Int64)
    count = values.count().cast(nw.Int64)
    bucket = (5 * (ranked - 1)) // (count - 1)
    return (
        nw.when(count > 1)
        .then(nw.min_horizontal(nw.lit(5), bucket + 1))
        .otherwise(1)
        .cast(nw.Int64)
    )


def _segment_rules(rules: Sequence[Any] | None) -> nw.Expr:
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
    expr = nw.lit("lost")
    for name, bounds, first_time in reversed(chosen):  # built from the last rule inwards
        condition = nw.lit(True)
        for letter, (low, high) in bounds.items():
            condition = condition & nw.col(f"{letter}_score").is_between(low, high)
        if first_time:
            condition = condition & (nw.col("frequency") == 0)
        expr = nw.when(condition).then(nw.lit(name)).otherwise(expr)
    return expr


def rfm_plan(
    days: nw.LazyFrame[Any],
    customers: nw.LazyFrame[Any] | None,
    as_of: dt.date,
    settings: Mapping[str, Any],
) -> nw.LazyFrame[Any]:
    """One row per customer with a completed order by as-of, from `purchase_days`; with the
    customers' segment, region and rep when `customers` is given."""
    # A customer's days are distinct: the repeat days are all but the first, and their spend
    # is the total less the first day's (exact in decimals).
    first_day = nw.col("day").min().over("customer_id")
    first_amount = nw.when(nw.col("day") == first_day).then(nw.col("day_amount"))
    table = (
        days.with_columns(first_amount.alias("__first_amount"))
        .group_by("customer_id")
        .agg(
            nw.col("day").min().alias("first_purchase_on"),
            nw.col("day").max().alias("last_purchase_on"),
            nw.len().alias("__days"),
            nw.col("day_amount").sum().alias("__total"),
            nw.col("__first_amount").sum(),
            nw.col("day_orders").sum().alias("orders_count"),
        )
    )
    repeat_days = nw.col("__days") - 1
    repeat_spend = (nw.col("__total") - nw.col("__first_amount")).cast(nw.Float64)
    since_last = days_between(nw.lit(as_of), nw.col("last_purchase_on"))
    table = table.with_columns(
        repeat_days.alias("frequency"),
        nw.when(repeat_days > 0).then(repeat_spend / repeat_days).otherwise(0.0).alias("monetary"),
        nw.col("__total").cast(nw.Float64).alias("total_spend"),
        days_between(nw.col("last_purchase_on"), nw.col("first_purchase_on")).alias("recency_days"),
        days_between(nw.lit(as_of), nw.col("first_purchase_on")).alias("tenure_days"),
        since_last.alias("days_since_last_purchase"),
    ).with_columns(
        score(nw.col("days_since_last_purchase"), descending=True).alias("r_score"),
        score(nw.col("frequency")).alias("f_score"),
        score(nw.col("total_spend")).alias("m_score"),
    )
    table = table.with_columns(_segment_rules(settings.get("rfm_segments")).alias("rfm_segment"))
    dims: list[str] = []
    if customers is not None:
        dims = [c for c in ("segment", "region", "rep") if c in customers.collect_schema()]
        table = table.join(customers.select("customer_id", *dims), on="customer_id", how="left")
    return table.select("customer_id", *dims, *RFM_FIGURES).sort("customer_id")


def churn_risk_plan(
    days: nw.LazyFrame[Any] | None,
    activities: nw.LazyFrame[Any] | None,
    base: nw.LazyFrame[Any],
    as_of: dt.date,
    settings: Mapping[str, Any],
    alive: nw.LazyFrame[Any] | None = None,
) -> nw.LazyFrame[Any]:
    """Active customers of `base` (customer_base) whose purchases (`days`: purchase_days) or
    interactions fell by churn_risk_drop or more in the last window against the window
    before, who are overdue by risk_multiple x their usual gap between purchase days, or
    whose BG/NBD P(alive) (`alive`: customer_id, p_alive) is below p_alive_threshold. One
    row each, with the rules that fired and their figures."""
    window = int(settings["churn_risk_window_days"])
    drop = float(settings["churn_risk_drop"])
    multiple = float(settings["risk_multiple"])
    last_start = as_of - dt.timedelta(days=window - 1)
    previous_start = last_start - dt.timedelta(days=window)
    columns = base.collect_schema().names()
    live = base.filter(nw.col("churned_on").is_null()) if "churned_on" in columns else base
    figures = live.select("customer_id", *(c for c in ("segment", "rep") if c in columns))

    def windows(prefix: str) -> list[nw.Expr]:
        """Days in the last and the previous window (flags summed as integers: Spark sums no
        booleans)."""
        day = nw.col("day")
        previous_end = last_start - dt.timedelta(days=1)
        spans = {"last": (last_start, as_of), "previous": (previous_start, previous_end)}
        return [
            day.is_between(start, end).cast(nw.Int64).sum().alias(f"{prefix}_{name}_window")
            for name, (start, end) in spans.items()
        ]

    rules: list[tuple[str, nw.Expr]] = []
    if days is not None:
        # the mean gap between consecutive purchase days telescopes to (last - first) / (n - 1)
        purchases = (
            days.group_by("customer_id")
            .agg(
                *windows("purchases"),
                nw.col("day").min().alias("__first"),
                nw.col("day").max().alias("last_purchase_on"),
                nw.col("day").count().alias("__days"),
            )
            .with_columns(
                nw.when(nw.col("__days") > 1)
                .then(
                    days_between(nw.col("last_purchase_on"), nw.col("__first"))
                    / (nw.col("__days") - 1)
                )
                .alias("usual_gap_days")
            )
            .drop("__first", "__days")
        )
        figures = figures.join(purchases, on="customer_id", how="left").with_columns(
            days_between(nw.lit(as_of), nw.col("last_purchase_on")).alias(
                "days_since_last_purchase"
            )
        )
        rules.append(("purchases_dropped", _dropped("purchases", drop)))
        overdue = nw.col("days_since_last_purchase") > multiple * nw.col("usual_gap_days")
        rules.append(("overdue", overdue))
    if activities is not None and "customer_id" in activities.collect_schema():
        touches = (
            activities.filter(
                ~nw.col("customer_id").is_null() & (nw.col("occurred_at").dt.date() <= as_of)
            )
            .select("customer_id", nw.col("occurred_at").dt.date().alias("day"))
            .group_by("customer_id")
            .agg(*windows("interactions"))
        )
        figures = figures.join(touches, on="customer_id", how="left")
        rules.append(("interactions_dropped", _dropped("interactions", drop)))
    if alive is not None:
        figures = figures.join(alive, on="customer_id", how="left")
        threshold = float(settings["p_alive_threshold"])
        rules.append(("unlikely_alive", nw.col("p_alive") < threshold))
    if not rules:
        return figures.select("customer_id", nw.lit("").alias("reason")).filter(nw.lit(False))
    reason = nw.concat_str(
        [nw.when(rule.fill_null(False)).then(nw.lit(name)) for name, rule in rules],
        separator="; ",
        ignore_nulls=True,
    )
    flagged = figures.with_columns(reason.alias("reason")).filter(nw.col("reason") != "")
    return flagged.sort("customer_id")


def _dropped(prefix: str, drop: float) -> nw.Expr:
    previous = nw.col(f"{prefix}_previous_window").fill_null(0)
    last = nw.col(f"{prefix}_last_window").fill_null(0)
    return (previous > 0) & (last <= previous * (1 - drop))


def cohorts_plan(days: nw.LazyFrame[Any], calendar: nw.LazyFrame[Any]) -> nw.LazyFrame[Any]:
    """Acquisition cohort (period of the first purchase) x periods since acquisition -> share
    of the cohort still purchasing: the retention triangle, in the run's grain. `calendar` is
    the calendar's table (date, period_index, period) from the first purchase day to as-of."""
    placed = (
        days.join(calendar.select("date", "period_index"), left_on="day", right_on="date")
        .select("customer_id", "period_index")
        .unique()
    )
    active = placed.with_columns(
        nw.col("period_index").min().over("customer_id").alias("cohort_index")
    )
    sizes = (
        active.filter(nw.col("period_index") == nw.col("cohort_index"))
        .group_by("cohort_index")
        .agg(nw.len().alias("cohort_customers"))
    )
    labels = calendar.select("period_index", "period").unique()
    counts = active.group_by("cohort_index", "period_index").agg(nw.len().alias("active_customers"))
    grid = (
        sizes.join(labels.select(nw.col("period_index").alias("p")), how="cross")
        .filter(nw.col("p") >= nw.col("cohort_index"))
        .rename({"p": "period_index"})
    )
    full = grid.join(counts, on=["cohort_index", "period_index"], how="left").with_columns(
        nw.col("active_customers").fill_null(0),
        (nw.col("period_index") - nw.col("cohort_index")).alias("periods_since_acquisition"),
    )
    cohort_labels = labels.select(
        nw.col("period").alias("cohort"), nw.col("period_index").alias("cohort_index")
    )
    named = full.join(cohort_labels, on="cohort_index").join(labels, on="period_index")
    return named.select(
        "cohort",
        "periods_since_acquisition",
        "period",
        "cohort_customers",
        "active_customers",
        (nw.col("active_customers") / nw.col("cohort_customers")).alias("retention"),
    ).sort("cohort", "periods_since_acquisition")


# --- the same tables from Polars frames, for callers that hold the orders themselves -------------


def collect_tables(engine: Engine, plans: Sequence[nw.LazyFrame[Any]]) -> list[pl.DataFrame]:
    """The per-customer tables of `plans`, executed together on `engine`, with the column types
    they have on Polars."""
    return [
        table.with_columns(
            pl.col(c).cast(t) for c, t in INTEGER_COLUMNS.items() if c in table.columns
        )
        for table in engine.collect_all(plans)
    ]


def purchase_days_on(engine: Engine, orders: pl.DataFrame, as_of: dt.date) -> nw.LazyFrame[Any]:
    """The run's `purchase_days` on `engine` (over its orders: on Spark, the loader's frame),
    kept there for rfm, churn_risk and cohorts."""
    numbered, key = keyed_orders(orders)
    return engine.persist(purchase_days(engine.lazy(numbered), orders.columns, key, as_of))


def rfm_on(
    engine: Engine,
    days: nw.LazyFrame[Any],
    customers: pl.DataFrame | None,
    as_of: dt.date,
    settings: Mapping[str, Any],
) -> pl.DataFrame:
    """The run's rfm table, computed on `engine` from its purchase days, collected."""
    known = None if customers is None else engine.lazy(customers)
    (table,) = collect_tables(engine, [rfm_plan(days, known, as_of, settings)])
    return table


def _polars_days(orders: pl.DataFrame, as_of: dt.date) -> nw.LazyFrame[Any]:
    return purchase_days_on(PolarsEngine(), orders, as_of)


def _lazy(frame: pl.DataFrame | None) -> nw.LazyFrame[Any] | None:
    return None if frame is None else nw.from_native(frame.lazy())


def day_purchases(orders: pl.DataFrame, as_of: dt.date) -> pl.DataFrame:
    """`purchase_days` of Polars orders, collected."""
    return _polars_days(orders, as_of).collect().to_native()


def rfm(
    orders: pl.DataFrame,
    customers: pl.DataFrame | None,
    as_of: dt.date,
    settings: Mapping[str, Any],
    days: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """`rfm_plan` of Polars orders (and their `day_purchases`, when the caller has them)."""
    plan_days = _polars_days(orders, as_of) if days is None else nw.from_native(days.lazy())
    return rfm_plan(plan_days, _lazy(customers), as_of, settings).collect().to_native()


def churn_risk(
    orders: pl.DataFrame | None,
    activities: pl.DataFrame | None,
    base: pl.DataFrame,
    as_of: dt.date,
    settings: Mapping[str, Any],
    days: pl.DataFrame | None = None,
    alive: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """`churn_risk_plan` of Polars frames."""
    plan_days = _lazy(days) if days is not None or orders is None else _polars_days(orders, as_of)
    plan = churn_risk_plan(
        plan_days, _lazy(activities), nw.from_native(base.lazy()), as_of, settings, _lazy(alive)
    )
    return plan.collect().to_native()


def cohorts(
    orders: pl.DataFrame, as_of: dt.date, calendar: Calendar, days: pl.DataFrame | None = None
) -> pl.DataFrame:
    """`cohorts_plan` of Polars orders; an empty frame without a purchase by as-of."""
    days = day_purchases(orders, as_of) if days is None else days
    if days.height == 0:
        return pl.DataFrame()
    table = calendar.table(days["day"].min(), as_of)  # type: ignore[arg-type]
    plan = cohorts_plan(nw.from_native(days.lazy()), nw.from_native(table.lazy()))
    return plan.collect().to_native()


# --- clv_forecast: BG/NBD and Gamma-Gamma per customer ------------------------------------------

DAYS_PER_MONTH = 365.25 / 12
UNIT_DAYS = {"day": 1.0, "week": 7.0, "month": DAYS_PER_MONTH}
ALL_CUSTOMERS = "all"
NONE_GROUP = "(none)"  # customers without a value of clv_fit_by
FIT_GROUP = "fit_group"
_FIGURES = ["frequency", "recency_days", "tenure_days"]


@dataclass(frozen=True)
class ClvForecast:
    """The `clv_forecast` table and, per fit group, the fitted models or why they were skipped
    (for the manifest)."""

    table: pl.DataFrame
    fits: list[dict[str, Any]]
    time_unit: str
    horizon_periods: float
    purchase_params: pl.DataFrame  # fit_group -> r, alpha, a, b of the converged BG/NBD fits

    def _skipped(self, model: str) -> str | None:
        """Why no group has a usable `model` fit, or None when one has."""
        if any(f[model] is not None and f[model]["converged"] for f in self.fits):
            return None
        reasons = [f"{f['group']}: {f['skipped']}" for f in self.fits if f["skipped"]]
        return "; ".join(reasons) or "no customer with a purchase by as-of"

    @property
    def purchases_skipped(self) -> str | None:
        return self._skipped("bg_nbd")

    @property
    def value_skipped(self) -> str | None:
        return self._skipped("bg_nbd") or self._skipped("gamma_gamma")

    def manifest(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "time_unit": self.time_unit,
            "horizon_periods": self.horizon_periods,
            "monthly_discount_rate": settings["clv_discount_rate"],
            "fit_by": settings["clv_fit_by"],
            "fits": self.fits,
        }


def _fit_record(fit: clv_models.Fit) -> dict[str, Any]:
    return {
        **fit.params,
        "log_likelihood": fit.log_likelihood if np.isfinite(fit.log_likelihood) else None,
        "converged": fit.converged,
        "iterations": fit.iterations,
        "message": fit.message,
    }


def _fit_group(
    group: str,
    distinct: pl.DataFrame,
    values: pl.DataFrame,
    unit_days: float,
    minimum: int,
) -> tuple[dict[str, Any], dict[str, float] | None, dict[str, float] | None]:
    """Both models on one group's customers: its manifest record and the usable parameters
    (None when a model is skipped). `distinct` holds the group's distinct (frequency, recency,
    tenure) with their customer counts, `values` its repeat buyers' (frequency, monetary)."""
    weights = distinct["customers"].to_numpy().astype(np.float64)
    x = distinct["frequency"].to_numpy().astype(np.float64)
    repeat_buyers = int(weights[x > 0].sum())
    record: dict[str, Any] = {
        "group": group,
        "customers": int(weights.sum()),
        "repeat_buyers": repeat_buyers,
        "bg_nbd": None,
        "gamma_gamma": None,
        "skipped": None,
    }
    if repeat_buyers < minimum:
        record["skipped"] = (
            f"{repeat_buyers} repeat buyers, fewer than clv_min_repeat_buyers ({minimum})"
        )
        return record, None, None
    t_x = distinct["recency_days"].to_numpy() / unit_days
    T = distinct["tenure_days"].to_numpy() / unit_days
    purchases = clv_models.fit_bgnbd(x, t_x, T, weights)
    record["bg_nbd"] = _fit_record(purchases)
    if not purchases.converged:
        record["skipped"] = f"the BG/NBD fit did not converge: {purchases.message}"
        return record, None, None
    positive = values.filter(pl.col("monetary") > 0)
    value_weights = positive["customers"].to_numpy().astype(np.float64)
    if value_weights.sum() < minimum:
        record["skipped"] = (
            f"{int(value_weights.sum())} repeat buyers with a positive value, fewer than "
            f"clv_min_repeat_buyers ({minimum})"
        )
        return record, purchases.params, None
    value = clv_models.fit_gamma_gamma(
        positive["frequency"].to_numpy().astype(np.float64),
        positive["monetary"].to_numpy(),
        value_weights,
    )
    record["gamma_gamma"] = _fit_record(value)
    record["frequency_monetary_correlation"] = _correlation(positive, value_weights)
    if not value.converged:
        record["skipped"] = f"the Gamma-Gamma fit did not converge: {value.message}"
        return record, purchases.params, None
    if value.params["q"] <= 1:
        record["skipped"] = "Gamma-Gamma q <= 1: the mean value per purchase does not exist"
        return record, purchases.params, None
    return record, purchases.params, value.params


def _correlation(values: pl.DataFrame, weights: np.ndarray) -> float | None:
    """Weighted correlation of frequency and monetary value: Gamma-Gamma assumes it is near 0."""
    if len(weights) < 2:
        return None
    matrix = np.cov(values["frequency"].to_numpy(), values["monetary"].to_numpy(), aweights=weights)
    scale = float(np.sqrt(matrix[0, 0] * matrix[1, 1]))
    return float(matrix[0, 1] / scale) if scale > 0 else None


def _params_frame(
    groups: list[str], params: list[dict[str, float] | None], names: tuple[str, ...]
) -> pl.DataFrame:
    """fit_group -> parameters, one row per group with a usable fit."""
    usable = [(g, p) for g, p in zip(groups, params, strict=True) if p]
    return pl.DataFrame(
        {FIT_GROUP: [g for g, _ in usable], **{n: [p[n] for _, p in usable] for n in names}},
        schema={FIT_GROUP: pl.String, **dict.fromkeys(names, pl.Float64)},
    )


def _column(frame: pl.DataFrame, name: str) -> np.ndarray:
    return frame[name].to_numpy().astype(np.float64)


def clv_forecast(rfm_table: pl.DataFrame, settings: Mapping[str, Any]) -> ClvForecast:
    """One row per customer of `rfm_table` with lifetimes' frequency, recency, T (in
    clv_time_unit) and monetary value, P(alive), the expected purchases and the discounted value
    over the horizon. The models are fitted on the distinct (frequency, recency, tenure) of each
    fit group with their customer counts as weights (the same likelihood, far fewer terms)."""
    unit = str(settings["clv_time_unit"])
    unit_days = UNIT_DAYS[unit]
    units_per_month = DAYS_PER_MONTH / unit_days
    horizon = float(settings["clv_horizon_periods"] or 12 * units_per_month)
    by = settings["clv_fit_by"]
    group = (
        pl.col(by).fill_null(NONE_GROUP)
        if by is not None and by in rfm_table.columns
        else pl.lit(NONE_GROUP if by is not None else ALL_CUSTOMERS)
    )
    customers = rfm_table.with_columns(group.alias(FIT_GROUP))
    distinct = customers.group_by(FIT_GROUP, *_FIGURES).len("customers").sort(FIT_GROUP, *_FIGURES)
    values = (
        customers.filter(pl.col("frequency") > 0)
        .group_by(FIT_GROUP, "frequency", "monetary")
        .len("customers")
        .sort(FIT_GROUP, "frequency", "monetary")
    )
    groups = distinct[FIT_GROUP].unique().sort().to_list()
    fitted = [
        _fit_group(
            g,
            distinct.filter(pl.col(FIT_GROUP) == g),
            values.filter(pl.col(FIT_GROUP) == g),
            unit_days,
            int(settings["clv_min_repeat_buyers"]),
        )
        for g in groups  # a loop over fit groups (a handful), never over customers
    ]
    purchase_params = _params_frame(groups, [f[1] for f in fitted], ("r", "alpha", "a", "b"))
    value_params = _params_frame(groups, [f[2] for f in fitted], ("p", "q", "gamma"))
    predicted = distinct.join(purchase_params, on=FIT_GROUP, how="inner")
    x = _column(predicted, "frequency")
    t_x = _column(predicted, "recency_days") / unit_days
    T = _column(predicted, "tenure_days") / unit_days
    r, alpha, a, b = (_column(predicted, n) for n in ("r", "alpha", "a", "b"))
    rate = float(settings["clv_discount_rate"])
    with np.errstate(all="ignore"):
        expected = clv_models.bgnbd_conditional_expected(r, alpha, a, b, horizon, x, t_x, T)
        discounted = clv_models.discounted_expected_purchases(
            r, alpha, a, b, horizon, units_per_month, rate, x, t_x, T
        )
        p_alive = clv_models.bgnbd_p_alive(r, alpha, a, b, x, t_x, T)
    predicted = predicted.select(
        FIT_GROUP,
        *_FIGURES,
        pl.Series("p_alive", p_alive).fill_nan(None),
        pl.Series("expected_purchases", expected).fill_nan(None),
        pl.Series("__discounted_purchases", discounted).fill_nan(None),
    )
    table = customers.join(predicted, on=[FIT_GROUP, *_FIGURES], how="left").join(
        value_params, on=FIT_GROUP, how="left"
    )
    value = clv_models.gamma_gamma_expected_value(
        *(_column(table, n) for n in ("p", "q", "gamma", "frequency", "monetary"))
    )
    dims = [c for c in ("segment", "region", "rep") if c in rfm_table.columns]
    table = table.with_columns(
        pl.Series("expected_value_per_purchase", value).fill_nan(None)
    ).select(
        "customer_id",
        *dims,
        FIT_GROUP,
        "frequency",
        (pl.col("recency_days") / unit_days).alias("recency"),
        (pl.col("tenure_days") / unit_days).alias("T"),
        pl.lit(unit).alias("time_unit"),
        pl.col("monetary").alias("monetary_value"),
        "p_alive",
        "expected_purchases",
        "expected_value_per_purchase",
        (pl.col("expected_value_per_purchase") * pl.col("__discounted_purchases")).alias(
            "predicted_clv"
        ),
    )
    return ClvForecast(
        table.sort("customer_id"), [f[0] for f in fitted], unit, horizon, purchase_params
    )
