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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import narwhals as nw
import numpy as np
import polars as pl

from crmkpi import clv_models
from crmkpi.calendar import Calendar
from crmkpi.views import EXACT, ORDER_KEY, completed_orders, end_of, keyed_orders

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


def day_purchases(orders: pl.DataFrame, as_of: dt.date) -> pl.DataFrame:
    """Completed orders up to as-of, summed per customer and purchase day."""
    numbered, key = keyed_orders(orders)
    counted_orders = completed_orders(nw.from_native(numbered.lazy()), orders.columns, key, as_of)
    return (
        counted_orders.to_native()
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
    alive: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Active customers whose purchases or interactions fell by churn_risk_drop or more in the
    last window against the window before, who are overdue by risk_multiple x their usual
    gap between purchase days, or whose BG/NBD P(alive) (`alive`: customer_id, p_alive) is
    below p_alive_threshold. One row each, with the rules that fired and their figures."""
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
    if alive is not None:
        figures = figures.join(alive.lazy(), on="customer_id", how="left")
        threshold = float(settings["p_alive_threshold"])
        rules.append(("unlikely_alive", pl.col("p_alive") < threshold))
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
