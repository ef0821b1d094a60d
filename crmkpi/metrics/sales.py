"""Sales and pipeline (deals, leads, quotas, activities, spend): KPI_CATALOGUE.md, section 1."""

from __future__ import annotations

import narwhals as nw

from crmkpi.metrics.base import Context, Growth, Metric, Ratio, Simple, Stock
from crmkpi.metrics.parts import simple_on, spend_of

FAMILY = "sales"
CLOSED = ("won", "lost")


def _status(*values: str) -> nw.Expr:
    return nw.col("status").is_in(values)


def _won(ctx: Context) -> nw.Expr:
    return _status("won")


def _lost(ctx: Context) -> nw.Expr:
    return _status("lost")


def _closed(ctx: Context) -> nw.Expr:
    return _status(*CLOSED)


def _won_by_as_of(ctx: Context) -> nw.Expr:
    """A deal counts as won once its close date is on or before as-of."""
    return _status("won") & (nw.col("closed_at") < nw.lit(ctx.as_of_end))


def _cycle_days(ctx: Context) -> nw.Expr:
    return (nw.col("closed_at") - nw.col("created_at")).dt.total_microseconds() / 86_400_000_000


_deals = simple_on("deals", FAMILY)

METRICS: list[Metric] = [
    _deals(
        "deals_created",
        "Deals created",
        "新增商机数",
        "count of deals",
        unit="count",
        anchor="created_at",
        agg="count",
    ),
    _deals(
        "deals_won",
        "Deals won",
        "赢单数",
        "count of deals with status won",
        unit="count",
        anchor="closed_at",
        agg="count",
        where=_won,
        columns=("status",),
    ),
    _deals(
        "deals_lost",
        "Deals lost",
        "输单数",
        "count of deals with status lost",
        unit="count",
        anchor="closed_at",
        agg="count",
        where=_lost,
        columns=("status",),
        higher_is_better=False,
    ),
    _deals(
        "deals_closed",
        "Deals closed",
        "结案商机数",
        "deals won + deals lost",
        unit="count",
        anchor="closed_at",
        agg="count",
        where=_closed,
        columns=("status",),
        output=False,
    ),
    _deals(
        "deals_created_won",
        "Deals created and won by as-of",
        "当期新增商机中赢单数",
        "deals created in the period and won by as-of",
        unit="count",
        anchor="created_at",
        agg="count",
        where=_won_by_as_of,
        columns=("status", "closed_at"),
        output=False,
    ),
    Ratio(
        name="win_rate",
        title_en="Win rate",
        title_zh="成交率 / 赢单率",
        family=FAMILY,
        unit="ratio",
        numerator="deals_won",
        denominator="deals_closed",
        formula="won / (won + lost), by close date; with win_rate_basis = created: deals "
        "created in the period and won by as-of / deals created",
        settings=("win_rate_basis",),
        variant=("win_rate_basis", "created", "win_rate_by_creation"),
    ),
    Ratio(
        name="win_rate_by_creation",
        title_en="Win rate (cohort by creation)",
        title_zh="成交率 (按创建)",
        family=FAMILY,
        unit="ratio",
        numerator="deals_created_won",
        denominator="deals_created",
        formula="deals created in the period and won by as-of / deals created",
        output=False,
    ),
    Ratio(
        name="loss_rate",
        title_en="Loss rate",
        title_zh="销售失败率",
        family=FAMILY,
        unit="ratio",
        numerator="deals_lost",
        denominator="deals_closed",
        formula="lost / (won + lost)",
        higher_is_better=False,
    ),
    _deals(
        "won_revenue",
        "Won revenue",
        "销售总量 (成交额)",
        "sum of amount of won deals",
        unit="currency",
        anchor="closed_at",
        agg="sum",
        column="amount",
        where=_won,
        columns=("status",),
    ),
    Ratio(
        name="avg_deal_size",
        title_en="Average deal size",
        title_zh="平均定单规模",
        family=FAMILY,
        unit="currency",
        numerator="won_revenue",
        denominator="deals_won",
        formula="won_revenue / deals_won",
    ),
    _deals(
        "sales_cycle_days",
        "Sales cycle (days)",
        "销售周期长度",
        "mean of closed_at - created_at in days over won deals",
        unit="days",
        anchor="closed_at",
        agg="mean",
        value=_cycle_days,
        where=_won,
        columns=("status", "created_at"),
        higher_is_better=False,
    ),
    _deals(
        "sales_cycle_days_median",
        "Sales cycle, median (days)",
        "销售周期长度 (中位数)",
        "median of closed_at - created_at in days over won deals",
        unit="days",
        anchor="closed_at",
        agg="median",
        value=_cycle_days,
        where=_won,
        columns=("status", "created_at"),
        higher_is_better=False,
    ),
    Stock(
        name="open_pipeline_value",
        title_en="Open pipeline value",
        title_zh="销售漏斗金额",
        family=FAMILY,
        unit="currency",
        table="deals",
        opened="created_at",
        closed="closed_at",
        boundary="end",
        columns=("amount", "status"),
        value=lambda ctx: nw.col("amount").fill_null(0),
        closed_where=_closed,
        formula="sum of amount of deals open at period end (created on or before it, not "
        "won or lost by it)",
    ),
    Stock(
        name="weighted_pipeline_value",
        title_en="Weighted pipeline value",
        title_zh="线索成功比率加权金额",
        family=FAMILY,
        unit="currency",
        table="deals",
        opened="created_at",
        closed="closed_at",
        boundary="end",
        columns=("amount", "probability", "status"),
        value=lambda ctx: (nw.col("amount") * nw.col("probability")).fill_null(0),
        closed_where=_closed,
        formula="sum of amount x probability of deals open at period end",
    ),
    _deals(
        "won_upsell_cross_sell_revenue",
        "Won upsell and cross-sell revenue",
        "增销与交叉销售成交额",
        "sum of amount of won upsell and cross-sell deals",
        unit="currency",
        anchor="closed_at",
        agg="sum",
        column="amount",
        where=lambda ctx: _won(ctx) & nw.col("deal_type").is_in(("upsell", "cross_sell")),
        columns=("status", "deal_type"),
        output=False,
    ),
    Ratio(
        name="upsell_cross_sell_rate",
        title_en="Upsell and cross-sell rate",
        title_zh="交叉销售和增销率",
        family=FAMILY,
        unit="ratio",
        numerator="won_upsell_cross_sell_revenue",
        denominator="won_revenue",
        fallback="upsell_cross_sell_rate_orders",
        formula="won amount of upsell and cross-sell deals / won_revenue (from "
        "orders.order_type when deals lack deal_type)",
    ),
    Ratio(
        name="upsell_cross_sell_rate_orders",
        title_en="Upsell and cross-sell rate (orders)",
        title_zh="交叉销售和增销率 (订单)",
        family=FAMILY,
        unit="ratio",
        numerator="upsell_cross_sell_revenue",
        denominator="revenue",
        output=False,
        formula="revenue of upsell and cross-sell orders / revenue",
    ),
    Simple(
        name="quota",
        title_en="Quota",
        title_zh="销售计划",
        family=FAMILY,
        unit="currency",
        table="quotas",
        anchor="period_start",
        agg="sum",
        column="quota_amount",
        formula="sum of quota_amount of the quota rows starting in the period",
    ),
    Ratio(
        name="quota_attainment",
        title_en="Quota attainment",
        title_zh="销售计划达成率",
        family=FAMILY,
        unit="ratio",
        numerator="won_revenue",
        denominator="quota",
        formula="won_revenue / quota (quota rows summed, not pro-rated)",
    ),
    Growth(
        name="sales_growth_rate",
        title_en="Sales growth rate",
        title_zh="销售额增长率",
        family=FAMILY,
        unit="ratio",
        base="revenue",
        fallback="sales_growth_rate_won",
        formula="(revenue - revenue of the previous period) / revenue of the previous "
        "period; won_revenue when there are no orders",
    ),
    Growth(
        name="sales_growth_rate_won",
        title_en="Sales growth rate (won deals)",
        title_zh="销售额增长率 (赢单)",
        family=FAMILY,
        unit="ratio",
        base="won_revenue",
        output=False,
        formula="growth of won_revenue against the previous period",
    ),
    Growth(
        name="sales_growth_yoy",
        title_en="Sales growth, year on year",
        title_zh="销售额同比增长率",
        family=FAMILY,
        unit="ratio",
        base="revenue",
        lag="year",
        fallback="sales_growth_yoy_won",
        formula="(revenue - revenue a year before) / revenue a year before",
    ),
    Growth(
        name="sales_growth_yoy_won",
        title_en="Sales growth, year on year (won deals)",
        title_zh="销售额同比增长率 (赢单)",
        family=FAMILY,
        unit="ratio",
        base="won_revenue",
        lag="year",
        output=False,
        formula="growth of won_revenue against a year before",
    ),
    Simple(
        name="leads_created",
        title_en="Leads created",
        title_zh="新增线索数",
        family=FAMILY,
        unit="count",
        table="leads",
        anchor="created_at",
        agg="count",
        formula="count of leads",
    ),
    Simple(
        name="leads_converted",
        title_en="Leads converted",
        title_zh="转化线索数",
        family=FAMILY,
        unit="count",
        table="leads",
        anchor="created_at",
        agg="count",
        columns=("status", "converted_at"),
        output=False,
        where=lambda ctx: (
            (nw.col("converted_at") < nw.lit(ctx.as_of_end))
            | (nw.col("converted_at").is_null() & (nw.col("status") == "converted"))
        ),
        formula="leads created in the period and converted by as-of",
    ),
    Ratio(
        name="lead_conversion_rate",
        title_en="Lead conversion rate",
        title_zh="销售转化率",
        family=FAMILY,
        unit="ratio",
        numerator="leads_converted",
        denominator="leads_created",
        formula="leads converted by as-of / leads created, cohort by created_at",
    ),
    Simple(
        name="calls_made",
        title_en="Calls made",
        title_zh="电话数量",
        family=FAMILY,
        unit="count",
        table="activities",
        anchor="occurred_at",
        agg="count",
        columns=("type",),
        where=lambda ctx: nw.col("type") == "call",
        formula="count of activities of type call",
    ),
    Simple(
        name="calls_to_new_customers",
        title_en="Calls to new customers",
        title_zh="新客户电话数量",
        family=FAMILY,
        unit="count",
        table="activities",
        anchor="occurred_at",
        agg="count",
        columns=("type", "customer_acquired_on"),
        where=lambda ctx: (
            (nw.col("type") == "call")
            & (nw.col("customer_acquired_on") >= nw.col("period_start"))
            & (nw.col("customer_acquired_on") <= nw.col("period_end"))
        ),
        formula="calls to customers acquired in the call's period",
    ),
    Simple(
        name="calls_to_existing_customers",
        title_en="Calls to existing customers",
        title_zh="老客户电话数量",
        family=FAMILY,
        unit="count",
        table="activities",
        anchor="occurred_at",
        agg="count",
        columns=("type", "customer_acquired_on"),
        where=lambda ctx: (
            (nw.col("type") == "call") & (nw.col("customer_acquired_on") < nw.col("period_start"))
        ),
        formula="calls to customers acquired before the call's period",
    ),
    _deals(
        "reps_with_won_deal",
        "Reps with a won deal",
        "有赢单的销售人数",
        "distinct reps with a won deal",
        unit="count",
        anchor="closed_at",
        agg="n_unique",
        column="rep",
        where=_won,
        columns=("status",),
        output=False,
    ),
    Ratio(
        name="revenue_per_rep",
        title_en="Revenue per rep",
        title_zh="人均业绩",
        family=FAMILY,
        unit="currency",
        numerator="won_revenue",
        denominator="reps_with_won_deal",
        formula="won_revenue / distinct reps with a won deal",
    ),
    spend_of("sales_spend", "Sales spend", "销售费用", FAMILY, "sales"),
    Ratio(
        name="sales_expense_ratio",
        title_en="Sales expense ratio",
        title_zh="销售费用率",
        family=FAMILY,
        unit="ratio",
        numerator="sales_spend",
        denominator="revenue",
        fallback="sales_expense_ratio_won",
        higher_is_better=False,
        formula="sales spend / revenue (won_revenue when there are no orders)",
    ),
    Ratio(
        name="sales_expense_ratio_won",
        title_en="Sales expense ratio (won deals)",
        title_zh="销售费用率 (赢单)",
        family=FAMILY,
        unit="ratio",
        numerator="sales_spend",
        denominator="won_revenue",
        output=False,
        higher_is_better=False,
        formula="sales spend / won_revenue",
    ),
]
