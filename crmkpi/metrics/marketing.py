"""Marketing and advertising (campaigns, campaign_members, spend, budgets, activities):
KPI_CATALOGUE.md, section 5."""

from __future__ import annotations

from typing import Any

import narwhals as nw

from crmkpi.metrics.base import Context, Derived, Growth, Metric, Ratio, Simple
from crmkpi.metrics.parts import simple_on, spend_of

FAMILY = "marketing"


_members = simple_on("campaign_members", FAMILY, anchor="targeted_at", output=False)
_surveys = simple_on("surveys", FAMILY, anchor="responded_at")


def _survey_type(value: str) -> Any:
    return lambda ctx: nw.col("survey_type") == value


def _pair(ctx: Context) -> nw.Expr:
    """A member counts once per campaign."""
    return nw.concat_str(nw.col("campaign_id"), nw.lit("\x1f"), nw.col("member_id"))


def _flag(column: str) -> Any:
    return lambda ctx: nw.col(column).fill_null(False)


def _budget(category: str) -> Simple:
    return Simple(
        name=f"{category}_budget",
        title_en=f"{category.title()} budget",
        title_zh={"marketing": "市场推广预算", "advertising": "广告预算"}[category],
        family=FAMILY,
        unit="currency",
        table="budgets",
        anchor="period_start",
        agg="sum",
        column="amount",
        columns=("category",),
        output=False,
        where=lambda ctx: nw.col("category") == category,
        formula=f"budget rows of category {category} starting in the period",
    )


METRICS: list[Metric] = [
    _members(
        "campaign_responders",
        "Campaign responders",
        "响应客户数",
        "distinct members who responded",
        unit="count",
        agg="n_unique",
        column="member_id",
        where=_flag("responded"),
        columns=("responded",),
    ),
    Simple(
        name="campaign_participants",
        title_en="Campaign participants",
        title_zh="客户参与程度",
        family=FAMILY,
        unit="count",
        table="campaign_members",
        anchor="targeted_at",
        agg="n_unique",
        column="member_id",
        where=_flag("responded"),
        columns=("responded",),
        formula="distinct members who responded",
    ),
    _members(
        "targeted_pairs",
        "Members targeted",
        "目标客户数",
        "distinct (campaign, member) pairs targeted",
        unit="count",
        agg="n_unique",
        value=_pair,
        columns=("campaign_id", "member_id"),
    ),
    _members(
        "responded_pairs",
        "Members responded",
        "响应次数",
        "distinct (campaign, member) pairs that responded",
        unit="count",
        agg="n_unique",
        value=_pair,
        where=_flag("responded"),
        columns=("campaign_id", "member_id", "responded"),
    ),
    _members(
        "converted_pairs",
        "Members converted",
        "成交次数",
        "distinct (campaign, member) pairs that responded and converted",
        unit="count",
        agg="n_unique",
        value=_pair,
        where=lambda ctx: _flag("responded")(ctx) & _flag("converted")(ctx),
        columns=("campaign_id", "member_id", "responded", "converted"),
    ),
    Ratio(
        name="response_rate",
        title_en="Response rate",
        title_zh="响应率",
        family=FAMILY,
        unit="ratio",
        numerator="responded_pairs",
        denominator="targeted_pairs",
        formula="responders / members targeted (distinct campaign-member pairs)",
    ),
    Ratio(
        name="campaign_conversion_rate",
        title_en="Campaign conversion rate",
        title_zh="交易率",
        family=FAMILY,
        unit="ratio",
        numerator="converted_pairs",
        denominator="responded_pairs",
        formula="converted / responders (distinct campaign-member pairs)",
    ),
    Simple(
        name="campaign_net_return",
        title_en="Campaign net return",
        title_zh="营销净收益",
        family=FAMILY,
        unit="currency",
        table="campaign_results",
        anchor="started_at",
        agg="sum",
        value=lambda ctx: nw.col("revenue") - nw.col("cost"),
        columns=("revenue", "cost"),
        output=False,
        formula="revenue of members targeted by as-of - cost, campaigns started in the period",
    ),
    Simple(
        name="campaign_cost",
        title_en="Campaign cost",
        title_zh="营销成本",
        family=FAMILY,
        unit="currency",
        table="campaign_results",
        anchor="started_at",
        agg="sum",
        column="cost",
        output=False,
        formula="campaigns.cost, else the spend rows carrying the campaign_id, else 0",
    ),
    Ratio(
        name="campaign_roi",
        title_en="Campaign ROI",
        title_zh="营销投资回报率",
        family=FAMILY,
        unit="ratio",
        numerator="campaign_net_return",
        denominator="campaign_cost",
        formula="for campaigns started in the period: (revenue of their members targeted by "
        "as-of - cost) / cost; cost = campaigns.cost, else their spend rows",
    ),
    spend_of("marketing_spend", "Marketing spend", "市场推广费用", FAMILY, "marketing"),
    _budget("marketing"),
    Ratio(
        name="marketing_spend_vs_budget",
        title_en="Marketing spend vs budget",
        title_zh="市场推广费用控制率",
        family=FAMILY,
        unit="ratio",
        numerator="marketing_spend",
        denominator="marketing_budget",
        higher_is_better=None,
        formula="spend (marketing) / budget (marketing)",
    ),
    spend_of("advertising_spend", "Advertising spend", "广告费用", FAMILY, "advertising"),
    _budget("advertising"),
    Ratio(
        name="ad_spend_vs_budget",
        title_en="Advertising spend vs budget",
        title_zh="广告费用控制",
        family=FAMILY,
        unit="ratio",
        numerator="advertising_spend",
        denominator="advertising_budget",
        higher_is_better=None,
        formula="spend (advertising) / budget (advertising)",
    ),
    Growth(
        name="ad_spend_growth",
        title_en="Advertising spend growth",
        title_zh="广告费用增长率",
        family=FAMILY,
        unit="ratio",
        base="advertising_spend",
        output=False,
        formula="growth of advertising spend against the previous period",
    ),
    Derived(
        name="ad_effectiveness",
        title_en="Advertising effectiveness",
        title_zh="广告投放有效率",
        family=FAMILY,
        unit="ratio",
        uses=("ad_spend_growth", "sales_growth_rate"),
        compute=lambda v, ctx: nw.when(v["sales_growth_rate"] != 0).then(
            v["ad_spend_growth"] / v["sales_growth_rate"]
        ),
        formula="advertising spend growth rate / revenue growth rate (previous period)",
    ),
    Simple(
        name="avg_interaction_cost",
        title_en="Average interaction cost",
        title_zh="平均客户交互成本",
        family=FAMILY,
        unit="currency",
        table="activities",
        anchor="occurred_at",
        agg="mean",
        column="cost",
        higher_is_better=False,
        formula="sum of activities.cost / activities with a cost",
    ),
    Simple(
        name="customer_interactions",
        title_en="Customer interactions",
        title_zh="客户互动次数",
        family=FAMILY,
        unit="count",
        table="activities",
        anchor="occurred_at",
        agg="count",
        columns=("customer_id",),
        where=lambda ctx: ~nw.col("customer_id").is_null(),
        output=False,
        formula="activities with a customer",
    ),
    Simple(
        name="customers_contacted",
        title_en="Customers contacted",
        title_zh="接触客户数",
        family=FAMILY,
        unit="count",
        table="activities",
        anchor="occurred_at",
        agg="n_unique",
        column="customer_id",
        output=False,
        formula="distinct customers with an activity",
    ),
    Ratio(
        name="interaction_frequency",
        title_en="Interaction frequency",
        title_zh="客户互动频次",
        family=FAMILY,
        unit="ratio",
        numerator="customer_interactions",
        denominator="customers_contacted",
        formula="activities with a customer / distinct customers contacted",
    ),
    _surveys(
        "ad_awareness_responses",
        "Ad awareness responses",
        "广告认知调查回复数",
        "survey responses of type ad_awareness",
        unit="count",
        agg="count",
        where=_survey_type("ad_awareness"),
        columns=("survey_type",),
        output=False,
    ),
    _surveys(
        "ad_aware_responses",
        "Responses aware of the ad",
        "知晓广告的回复数",
        "ad_awareness responses with score 1",
        unit="count",
        agg="count",
        where=lambda ctx: _survey_type("ad_awareness")(ctx) & (nw.col("score") == 1),
        columns=("survey_type", "score"),
        output=False,
    ),
    Ratio(
        name="ad_awareness_rate",
        title_en="Ad awareness rate",
        title_zh="广告认知度",
        family=FAMILY,
        unit="ratio",
        numerator="ad_aware_responses",
        denominator="ad_awareness_responses",
        formula="ad_awareness responses with score 1 / ad_awareness responses",
    ),
    _surveys(
        "ad_success_score",
        "Ad success score",
        "广告成功度",
        "mean score of ad_rating responses (1..5: the customers' overall rating of the ad's "
        "creativity, appeal, persuasion, clarity and memorability)",
        unit="score",
        agg="mean",
        column="score",
        where=_survey_type("ad_rating"),
        columns=("survey_type",),
    ),
]
