"""Customer service (tickets, surveys): KPI_CATALOGUE.md, section 3."""

from __future__ import annotations

from typing import Any

import narwhals as nw

from crmkpi.elapsed import elapsed_hours
from crmkpi.metrics.base import Context, Metric, Ratio
from crmkpi.metrics.parts import simple_on

FAMILY = "service"
SECONDS_PER_HOUR = 3600.0


_tickets = simple_on("tickets", FAMILY)

_surveys = simple_on("surveys", FAMILY, anchor="responded_at")


def _hours_since_created(column: str) -> Any:
    def value(ctx: Context) -> nw.Expr:
        return elapsed_hours(column, "created_at")

    return value


def _by_as_of(column: str) -> Any:
    def happened(ctx: Context) -> nw.Expr:
        return nw.col(column) < nw.lit(ctx.as_of_end)

    return happened


def _valid_complaint(ctx: Context) -> nw.Expr:
    """A complaint counts unless it is marked invalid (a null or absent validity means valid)."""
    complaint = nw.col("is_complaint").fill_null(False)
    if not ctx.has("tickets", "complaint_valid"):
        return complaint
    return complaint & nw.col("complaint_valid").fill_null(True)


def _first_contact(columns: tuple[str, ...]) -> Any:
    """resolved_first_contact, else contacts_count = 1; unknown is not first contact."""

    def flag(ctx: Context) -> nw.Expr:
        by_count = nw.col("contacts_count") == 1
        if columns == ("resolved_first_contact",):
            return nw.col("resolved_first_contact").fill_null(False)
        if columns == ("contacts_count",):
            return by_count.fill_null(False)
        return nw.col("resolved_first_contact").fill_null(by_count).fill_null(False)

    return flag


def _fcr_parts(suffix: str, columns: tuple[str, ...], fallback: str | None) -> list[Metric]:
    part = f"tickets_resolved_first_contact{suffix}"
    return [
        _tickets(
            part,
            "Tickets resolved at first contact",
            "首次解决工单数",
            "resolved tickets whose first-contact flag holds",
            unit="count",
            anchor="resolved_at",
            agg="count",
            columns=columns,
            where=_first_contact(columns),
            output=False,
        ),
        Ratio(
            name=f"first_contact_resolution_rate{suffix}",
            title_en="First contact resolution",
            title_zh="首次解决率",
            family=FAMILY,
            unit="ratio",
            numerator=part,
            denominator="tickets_resolved",
            output=not suffix,
            fallback=fallback,
            formula="tickets resolved at first contact (resolved_first_contact, else "
            "contacts_count = 1) / tickets resolved, both by resolved_at",
        ),
    ]


def _score_band(ctx: Context) -> nw.Expr:
    """+1 for a promoter (9-10), -1 for a detractor (0-6), 0 for a passive."""
    score = nw.col("score")
    return nw.when(score >= 9).then(1).otherwise(nw.when(score <= 6).then(-1).otherwise(0))


METRICS: list[Metric] = [
    _tickets(
        "tickets_created",
        "Tickets created",
        "工单数",
        "count of tickets",
        unit="count",
        anchor="created_at",
        agg="count",
        higher_is_better=None,
    ),
    _tickets(
        "tickets_resolved",
        "Tickets resolved",
        "已解决工单数",
        "tickets with resolved_at in the period (on or before as-of)",
        unit="count",
        anchor="resolved_at",
        agg="count",
    ),
    *_fcr_parts(
        "", ("resolved_first_contact", "contacts_count"), "first_contact_resolution_rate_flag"
    ),
    *_fcr_parts("_flag", ("resolved_first_contact",), "first_contact_resolution_rate_count"),
    *_fcr_parts("_count", ("contacts_count",), None),
    _tickets(
        "avg_first_response_hours",
        "Average first response (hours)",
        "平均响应 / 等待时间",
        "mean of first_response_at - created_at in hours over tickets answered by as-of",
        unit="hours",
        anchor="created_at",
        agg="mean",
        value=_hours_since_created("first_response_at"),
        where=_by_as_of("first_response_at"),
        columns=("first_response_at",),
        higher_is_better=False,
    ),
    _tickets(
        "avg_resolution_hours",
        "Average resolution time (hours)",
        "平均解决时间",
        "mean of resolved_at - created_at in hours",
        unit="hours",
        anchor="resolved_at",
        agg="mean",
        value=_hours_since_created("resolved_at"),
        columns=("created_at",),
        higher_is_better=False,
    ),
    _tickets(
        "avg_ticket_handle_minutes",
        "Average handle time (minutes)",
        "平均处理时间",
        "sum of handle_seconds / tickets with a handle time, in minutes",
        unit="minutes",
        anchor="resolved_at",
        agg="mean",
        value=lambda ctx: nw.col("handle_seconds") / 60,
        columns=("handle_seconds",),
        higher_is_better=False,
    ),
    _tickets(
        "avg_contacts_per_ticket",
        "Contacts per resolved ticket",
        "平均需要联系的次数",
        "mean contacts_count over resolved tickets",
        unit="ratio",
        anchor="resolved_at",
        agg="mean",
        column="contacts_count",
        higher_is_better=False,
    ),
    _tickets(
        "complaints",
        "Valid complaints",
        "客户有效投诉次数",
        "tickets that are complaints and valid (valid unless stated)",
        unit="count",
        anchor="created_at",
        agg="count",
        where=_valid_complaint,
        columns=("is_complaint",),
        optional_columns=("complaint_valid",),
        higher_is_better=False,
    ),
    Ratio(
        name="complaint_rate",
        title_en="Complaint rate",
        title_zh="投诉率",
        family=FAMILY,
        unit="ratio",
        numerator="complaints",
        denominator="tickets_created",
        higher_is_better=False,
        formula="complaints / tickets_created",
    ),
    _tickets(
        "complaints_resolved",
        "Complaints resolved",
        "已解决投诉数",
        "complaints created in the period and resolved by as-of",
        unit="count",
        anchor="created_at",
        agg="count",
        where=lambda ctx: _valid_complaint(ctx) & _by_as_of("resolved_at")(ctx),
        columns=("is_complaint", "resolved_at"),
        optional_columns=("complaint_valid",),
        output=False,
    ),
    Ratio(
        name="complaint_resolution_rate",
        title_en="Complaint resolution rate",
        title_zh="用户不满解决率",
        family=FAMILY,
        unit="ratio",
        numerator="complaints_resolved",
        denominator="complaints",
        formula="complaints resolved by as-of / complaints, cohort by created_at",
    ),
    _surveys(
        "csat_responses",
        "CSAT responses",
        "满意度回复数",
        "survey responses of type csat",
        unit="count",
        agg="count",
        columns=("survey_type",),
        where=lambda ctx: nw.col("survey_type") == "csat",
        output=False,
    ),
    _surveys(
        "csat_satisfied",
        "Satisfied CSAT responses",
        "满意回复数",
        "csat responses with score >= csat_satisfied_min",
        unit="count",
        agg="count",
        columns=("survey_type", "score"),
        settings=("csat_satisfied_min",),
        output=False,
        where=lambda ctx: (
            (nw.col("survey_type") == "csat")
            & (nw.col("score") >= ctx.settings["csat_satisfied_min"])
        ),
    ),
    Ratio(
        name="csat",
        title_en="Customer satisfaction (CSAT)",
        title_zh="客户满意度 (CSAT)",
        family=FAMILY,
        unit="ratio",
        numerator="csat_satisfied",
        denominator="csat_responses",
        settings=("csat_satisfied_min",),
        formula="csat responses with score >= csat_satisfied_min (default 4 of 5) / csat responses",
    ),
    _surveys(
        "avg_satisfaction_score",
        "Average satisfaction score",
        "平均满意度评分",
        "mean csat score",
        unit="score",
        agg="mean",
        column="score",
        columns=("survey_type",),
        where=lambda ctx: nw.col("survey_type") == "csat",
    ),
    _surveys(
        "nps_responses",
        "NPS responses",
        "NPS 回复数",
        "survey responses of type nps",
        unit="count",
        agg="count",
        columns=("survey_type",),
        where=lambda ctx: nw.col("survey_type") == "nps",
        output=False,
    ),
    _surveys(
        "net_promoters",
        "Promoters minus detractors",
        "推荐者减贬损者",
        "nps responses scoring 9-10 minus those scoring 0-6",
        unit="count",
        agg="sum",
        value=_score_band,
        columns=("survey_type", "score"),
        output=False,
        where=lambda ctx: nw.col("survey_type") == "nps",
    ),
    Ratio(
        name="nps",
        title_en="Net promoter score",
        title_zh="净推荐值 (NPS)",
        family=FAMILY,
        unit="points",
        numerator="net_promoters",
        denominator="nps_responses",
        scale=100.0,
        formula="(promoters 9-10 - detractors 0-6) / nps responses x 100",
    ),
]
