"""Customers and orders (orders, customers, spend): KPI_CATALOGUE.md, section 2.

Order metrics read the `completed_orders` view (status completed or null, `order_key` grouping
lines into orders); customer-base metrics read `customer_base` (acquisition and churn dates);
the forecast metrics read `customer_clv`, the clv_forecast table (BG/NBD and Gamma-Gamma).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import narwhals as nw

from crmkpi.metrics.base import Context, Derived, Metric, Ratio, Simple, Stock
from crmkpi.metrics.parts import simple_on, spend_of

FAMILY = "customers"
ORDERS = "completed_orders"
PLACED = "placed_orders"
BASE = "customer_base"
CLV = "customer_clv"
# the models behind the forecast metrics (crmkpi.clv_models), fitted on every purchase by as-of
_CLV_NOTE = (
    ", as of as-of, counted in the period holding it; customers of a fit that was skipped "
    "(too few repeat buyers, no convergence) are left out"
)
_CLV_SETTINGS = (
    "clv_time_unit",
    "clv_horizon_periods",
    "clv_discount_rate",
    "clv_min_repeat_buyers",
    "clv_fit_by",
)


_orders = simple_on(ORDERS, FAMILY, anchor="ordered_at")
_placed = simple_on(PLACED, FAMILY, anchor="ordered_at")


def _refunded(ctx: Context) -> nw.Expr:
    return nw.col("status") == "refunded"


def _first_order_in_period(ctx: Context) -> nw.Expr:
    return (nw.col("customer_first_order_on") >= nw.col("period_start")) & (
        nw.col("customer_first_order_on") <= nw.col("period_end")
    )


def _clv(values: Mapping[str, Any], ctx: Context) -> Any:
    """aov x purchase frequency x periods a year x expected lifetime (years) x margin."""
    k = ctx.periods_per_year
    fixed = ctx.settings["clv_lifetime_years"]
    churn = values.get("churn_rate")
    lifetime: nw.Expr
    if fixed is not None:
        lifetime = nw.lit(float(fixed))
    elif churn is None:
        return nw.lit(None, nw.Float64)
    else:
        cap = float(ctx.settings["clv_max_years"])
        lifetime = (
            nw.when(churn > 0)
            .then(nw.min_horizontal(1.0 / (churn * k), nw.lit(cap)))
            .otherwise(nw.when(churn == 0).then(nw.lit(cap)))
        )
    margin: nw.Expr = nw.lit(1.0)
    if values.get("gross_profit") is not None:
        margin = nw.when(values["revenue"] > 0).then(values["gross_profit"] / values["revenue"])
    return values["average_order_value"] * values["purchase_frequency"] * k * lifetime * margin


def _cac_payback(values: Mapping[str, Any], ctx: Context) -> Any:
    """Months of per-customer gross profit (else revenue) that pay back the CAC.

    A period's months are calendar months, 12 / periods per year (KPI_CATALOGUE.md, Customers:
    "a quarter is 3, a month 1, a year 12, a week 12/52.18, a day 12/365.25; `all`: its days /
    30.4375"): counting days / 30.4375 made a 91-day quarter 2.99 months. A partial period
    counts whole, as partial periods are never pro-rated."""
    profit = values["gross_profit"] if values.get("gross_profit") is not None else values["revenue"]
    months = 12.0 / ctx.periods_per_year
    monthly_per_customer = profit / values["active_customers"] / months
    return nw.when(monthly_per_customer > 0).then(values["cac"] / monthly_per_customer)


METRICS: list[Metric] = [
    Simple(
        name="customers_by_rfm_segment",
        title_en="Customers by RFM segment",
        title_zh="RFM 分群客户数",
        family=FAMILY,
        unit="count",
        table="customer_rfm",
        anchor="snapshot_on",
        agg="count",
        requires=("rfm_segment",),
        formula="customers with a purchase by as-of in each RFM segment (champions, loyal, "
        "new, potential, cannot lose, at risk, hibernating, lost), counted in the "
        "period holding as-of; needs --by rfm_segment",
    ),
    *(
        Simple(
            name=name,
            title_en=title_en,
            title_zh=title_zh,
            family=FAMILY,
            unit=unit,
            table=CLV,
            anchor="snapshot_on",
            agg=agg,
            column=column,
            settings=_CLV_SETTINGS,
            formula=formula + _CLV_NOTE,
        )
        for name, title_en, title_zh, unit, agg, column, formula in (
            (
                "expected_purchases_next_period",
                "Expected purchases (next horizon)",
                "预计购买次数",
                "count",
                "sum",
                "expected_purchases",
                "sum over customers of the BG/NBD expected repeat purchases in the next "
                "clv_horizon_periods periods of clv_time_unit (default: one year)",
            ),
            (
                "predicted_clv",
                "Predicted CLV (mean per customer)",
                "预测客户终身价值 (人均)",
                "currency",
                "mean",
                "predicted_clv",
                "mean over customers of the BG/NBD expected purchases x the Gamma-Gamma "
                "expected value per purchase over the horizon, discounted monthly at "
                "clv_discount_rate",
            ),
            (
                "predicted_clv_total",
                "Predicted CLV (total)",
                "预测客户终身价值 (合计)",
                "currency",
                "sum",
                "predicted_clv",
                "sum over customers of predicted_clv's per-customer value",
            ),
        )
    ),
    Simple(
        name="customers_likely_churned",
        title_en="Customers likely churned",
        title_zh="可能已流失客户数",
        family=FAMILY,
        unit="count",
        table=CLV,
        anchor="snapshot_on",
        agg="count",
        columns=("p_alive",),
        where=lambda ctx: nw.col("p_alive") < float(ctx.settings["p_alive_threshold"]),
        higher_is_better=False,
        settings=("p_alive_threshold", *_CLV_SETTINGS),
        formula="customers whose BG/NBD probability of being alive is below p_alive_threshold "
        "(default 0.5)" + _CLV_NOTE,
    ),
    _orders(
        "revenue",
        "Revenue",
        "销售额",
        "sum of amount of completed orders",
        unit="currency",
        agg="sum",
        column="amount",
    ),
    _orders(
        "orders_count",
        "Orders",
        "成交笔数",
        "distinct completed orders (order_id, else rows)",
        unit="count",
        agg="n_unique",
        column="order_key",
    ),
    Ratio(
        name="average_order_value",
        title_en="Average order value",
        title_zh="客单价 (AUS)",
        family=FAMILY,
        unit="currency",
        numerator="revenue",
        denominator="orders_count",
        formula="revenue / orders_count",
    ),
    _orders(
        "units",
        "Units",
        "销售件数",
        "sum of quantity of completed orders",
        unit="count",
        agg="sum",
        column="quantity",
        output=False,
    ),
    Ratio(
        name="units_per_transaction",
        title_en="Units per transaction",
        title_zh="客单件 (UPT)",
        family=FAMILY,
        unit="ratio",
        numerator="units",
        denominator="orders_count",
        formula="sum of quantity / orders_count",
    ),
    _placed(
        "placed_orders_count",
        "Orders placed",
        "下单笔数",
        "distinct orders of every status (completed, cancelled, refunded)",
        unit="count",
        agg="n_unique",
        column="order_key",
        output=False,
    ),
    _placed(
        "refunded_orders",
        "Refunded orders",
        "退款笔数",
        "distinct orders with status refunded",
        unit="count",
        agg="n_unique",
        column="order_key",
        columns=("status",),
        where=_refunded,
        output=False,
    ),
    Ratio(
        name="refund_rate",
        title_en="Refund rate",
        title_zh="退款率",
        family=FAMILY,
        unit="ratio",
        higher_is_better=False,
        numerator="refunded_orders",
        denominator="placed_orders_count",
        formula="refunded orders / orders of every status (distinct order_id, else rows)",
    ),
    _placed(
        "refunded_amount",
        "Refunded amount",
        "退款金额",
        "sum of the amounts of refunded orders, as a positive figure whether the export "
        "writes refunds negative or not (never part of revenue)",
        unit="currency",
        higher_is_better=False,
        agg="sum",
        column="amount",
        columns=("status",),
        value=lambda ctx: nw.col("amount").abs(),
        where=_refunded,
    ),
    _orders(
        "active_customers",
        "Active customers",
        "活跃客户数",
        "distinct customers with a completed order",
        unit="count",
        agg="n_unique",
        column="customer_id",
    ),
    Ratio(
        name="purchase_frequency",
        title_en="Purchase frequency",
        title_zh="购买频次",
        family=FAMILY,
        unit="ratio",
        numerator="orders_count",
        denominator="active_customers",
        formula="orders_count / active_customers",
    ),
    _orders(
        "repeat_customers",
        "Repeat customers",
        "复购客户数",
        "customers with 2 or more distinct orders in the period",
        unit="count",
        agg="count_entities",
        entity="customer_id",
        column="order_key",
        having=lambda n, ctx: n >= 2,
        output=False,
    ),
    Ratio(
        name="repeat_purchase_rate",
        title_en="Repeat purchase rate",
        title_zh="复购率",
        family=FAMILY,
        unit="ratio",
        numerator="repeat_customers",
        denominator="active_customers",
        formula="customers with 2 or more orders in the period / active_customers",
    ),
    Simple(
        name="new_customers",
        title_en="New customers",
        title_zh="新增客户数",
        family=FAMILY,
        unit="count",
        table=BASE,
        anchor="acquired_on",
        agg="count",
        formula="customers acquired in the period (created_at, else first order)",
    ),
    Stock(
        name="customers_at_start",
        title_en="Customers at start",
        title_zh="期初客户数",
        family=FAMILY,
        unit="count",
        table=BASE,
        opened="acquired_on",
        closed="churned_on",
        boundary="start",
        formula="customers acquired before the period's first day and not churned before it",
    ),
    Stock(
        name="customers_at_end",
        title_en="Customers at end",
        title_zh="期末客户数",
        family=FAMILY,
        unit="count",
        table=BASE,
        opened="acquired_on",
        closed="churned_on",
        boundary="end",
        formula="customers acquired on or before the period's last day (as-of when partial) "
        "and not churned on or before it",
    ),
    Simple(
        name="churned_customers",
        title_en="Churned customers",
        title_zh="流失客户数",
        family=FAMILY,
        unit="count",
        table=BASE,
        anchor="churned_on",
        agg="count",
        higher_is_better=False,
        settings=("inactivity_days",),
        formula="customers whose churn date (churned_at, else last order + inactivity_days) "
        "falls in the period",
    ),
    Ratio(
        name="churn_rate",
        title_en="Churn rate",
        title_zh="客户流失率",
        family=FAMILY,
        unit="ratio",
        numerator="churned_customers",
        denominator="customers_at_start",
        higher_is_better=False,
        settings=("inactivity_days",),
        variant=("churn_source", "snapshot", "churn_rate_snapshot"),
        formula="churned_customers / customers_at_start (snapshot data: churned / customers "
        "for the whole range)",
    ),
    Simple(
        name="snapshot_churned",
        title_en="Churned customers (snapshot)",
        title_zh="流失客户数 (快照)",
        family=FAMILY,
        unit="count",
        table=BASE,
        anchor="snapshot_on",
        agg="count",
        columns=("churned",),
        output=False,
        where=lambda ctx: nw.col("churned").fill_null(False),
        formula="customers flagged churned",
    ),
    Simple(
        name="snapshot_customers",
        title_en="Customers (snapshot)",
        title_zh="客户数 (快照)",
        family=FAMILY,
        unit="count",
        table=BASE,
        anchor="snapshot_on",
        agg="count",
        output=False,
        formula="customers in the snapshot",
    ),
    Ratio(
        name="churn_rate_snapshot",
        title_en="Churn rate (snapshot)",
        title_zh="客户流失率 (快照)",
        family=FAMILY,
        unit="ratio",
        numerator="snapshot_churned",
        denominator="snapshot_customers",
        output=False,
        higher_is_better=False,
        formula="customers flagged churned / customers",
    ),
    Derived(
        name="retention_rate",
        title_en="Retention rate",
        title_zh="客户保留率",
        family=FAMILY,
        unit="ratio",
        uses=("customers_at_end", "new_customers", "customers_at_start"),
        compute=lambda v, ctx: nw.when(v["customers_at_start"] > 0).then(
            (v["customers_at_end"] - v["new_customers"]) / v["customers_at_start"]
        ),
        formula="(customers_at_end - new_customers) / customers_at_start",
    ),
    _orders(
        "purchase_retention_rate",
        "Purchase retention rate",
        "客户留存率 (同期复购)",
        "customers who bought in both the previous and this period / customers who bought "
        "in the previous period",
        unit="ratio",
        agg="retained",
        entity="customer_id",
    ),
    Derived(
        name="customer_growth_rate",
        title_en="Customer growth rate",
        title_zh="客户增长率",
        family=FAMILY,
        unit="ratio",
        uses=("customers_at_end", "customers_at_start"),
        compute=lambda v, ctx: nw.when(v["customers_at_start"] > 0).then(
            (v["customers_at_end"] - v["customers_at_start"]) / v["customers_at_start"]
        ),
        formula="(customers_at_end - customers_at_start) / customers_at_start",
    ),
    _orders(
        "new_buyers",
        "New buyers",
        "首购客户数",
        "customers whose first completed order falls in the period",
        unit="count",
        agg="n_unique",
        column="customer_id",
        columns=("customer_first_order_on",),
        where=_first_order_in_period,
        output=False,
    ),
    _orders(
        "new_buyers_in_category",
        "New buyers in the category",
        "品类首购客户数",
        "new buyers whose first order includes the category",
        unit="count",
        agg="n_unique",
        column="customer_id",
        columns=("customer_first_order_on",),
        where=lambda ctx: nw.col("ordered_at").dt.date() == nw.col("customer_first_order_on"),
        output=False,
        requires=("category",),
    ),
    Ratio(
        name="new_customer_penetration",
        title_en="New customer penetration",
        title_zh="招新率 / 新客渗透率",
        family=FAMILY,
        unit="ratio",
        numerator="new_buyers_in_category",
        denominator="new_buyers",
        denominator_without="category",
        requires=("category",),
        formula="new customers whose first order falls in a category / all new customers "
        "(grains with category only)",
    ),
    Ratio(
        name="category_engagement",
        title_en="Category engagement",
        title_zh="产品类参与程度",
        family=FAMILY,
        unit="ratio",
        numerator="active_customers",
        denominator="active_customers",
        denominator_without="category",
        requires=("category",),
        formula="active customers buying in a category / active_customers (grains with "
        "category only)",
    ),
    _orders(
        "order_cost",
        "Cost of orders",
        "订单成本",
        "sum of cost of completed orders",
        unit="currency",
        agg="sum",
        column="cost",
        output=False,
    ),
    Derived(
        name="gross_profit",
        title_en="Gross profit",
        title_zh="毛利",
        family=FAMILY,
        unit="currency",
        uses=("revenue", "order_cost"),
        compute=lambda v, ctx: v["revenue"] - v["order_cost"],
        formula="revenue - cost (when orders carry cost)",
    ),
    Derived(
        name="clv",
        title_en="Customer lifetime value",
        title_zh="客户生命周期价值 (CLV/LTV)",
        family=FAMILY,
        unit="currency",
        uses=("average_order_value", "purchase_frequency", "revenue"),
        optional=("gross_profit", "churn_rate"),
        compute=_clv,
        settings=("clv_max_years", "clv_lifetime_years"),
        formula="average_order_value x purchase_frequency x periods per year x lifetime "
        "years (min(1 / annual churn rate, clv_max_years), or clv_lifetime_years) "
        "x gross margin when cost is known",
    ),
    spend_of(
        "acquisition_spend",
        "Acquisition spend",
        "获客费用",
        FAMILY,
        "marketing",
        "sales",
        "advertising",
    ),
    Ratio(
        name="cac",
        title_en="Customer acquisition cost",
        title_zh="客户获取成本",
        family=FAMILY,
        unit="currency",
        numerator="acquisition_spend",
        denominator="new_customers",
        higher_is_better=False,
        formula="spend (marketing + sales + advertising) / new_customers",
    ),
    Derived(
        name="clv_to_cac",
        title_en="CLV to CAC",
        title_zh="CLV:CAC",
        family=FAMILY,
        unit="ratio",
        uses=("clv", "cac"),
        compute=lambda v, ctx: nw.when(v["cac"] > 0).then(v["clv"] / v["cac"]),
        formula="clv / cac (3 or more is healthy)",
    ),
    Derived(
        name="cac_payback_months",
        title_en="CAC payback (months)",
        title_zh="获客成本回收期",
        family=FAMILY,
        unit="months",
        uses=("cac", "revenue", "active_customers"),
        optional=("gross_profit",),
        compute=_cac_payback,
        higher_is_better=False,
        formula="cac / (gross_profit, else revenue, per active customer per month of the period)",
    ),
    _orders(
        "upsell_cross_sell_revenue",
        "Upsell and cross-sell revenue",
        "增销与交叉销售额",
        "revenue of orders of type upsell or cross_sell",
        unit="currency",
        agg="sum",
        column="amount",
        columns=("order_type",),
        output=False,
        where=lambda ctx: nw.col("order_type").is_in(("upsell", "cross_sell")),
    ),
]
