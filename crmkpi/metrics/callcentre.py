"""Call centre (calls, agent_shifts, spend): KPI_CATALOGUE.md, section 4.

Answer times and talk times are averaged over answered calls only: an unanswered call is never a
0-second answer. Short abandons (abandoned before `short_abandon_seconds`) leave both parts of
the abandonment rate and the service level; a null wait is never short.
"""

from __future__ import annotations

from typing import Any

import narwhals as nw

from crmkpi.metrics.base import Context, Metric, Ratio, Simple
from crmkpi.metrics.parts import simple_on, spend_of

FAMILY = "callcentre"


_calls = simple_on("calls", FAMILY, anchor="offered_at")


def _outcome(value: str) -> Any:
    return lambda ctx: nw.col("outcome") == value


def _answered(ctx: Context) -> nw.Expr:
    return nw.col("outcome") == "answered"


def _short_abandon(ctx: Context) -> nw.Expr:
    """Abandoned before the threshold; with the threshold 0 none is, and no wait is read (an
    export without wait times still has an abandonment rate)."""
    threshold = ctx.settings["short_abandon_seconds"]
    if not threshold:
        return nw.lit(False)
    return ((nw.col("outcome") == "abandoned") & (nw.col("wait_seconds") < threshold)).fill_null(
        False
    )


def _reachable(ctx: Context) -> nw.Expr:
    """Offered calls that could have been answered: not blocked, not a short abandon."""
    return (nw.col("outcome") != "blocked") & ~_short_abandon(ctx)


def _handle_seconds(ctx: Context) -> nw.Expr:
    """talk + hold + after-call work; hold and acw are added when the export has them."""
    total = nw.col("talk_seconds")
    for column in ("hold_seconds", "acw_seconds"):
        if ctx.has("calls", column):
            total = total + nw.col(column).fill_null(0)
    return total


_SETTINGS_SHORT = ("short_abandon_seconds",)
# What the metrics that leave short abandons out declare: the waits, read while the threshold
# is on (see _short_abandon).
_SHORT: dict[str, Any] = dict(
    settings=_SETTINGS_SHORT,
    optional_columns=("wait_seconds",),
    setting_columns=(("short_abandon_seconds", ("wait_seconds",)),),
)

METRICS: list[Metric] = [
    _calls(
        "calls_offered",
        "Calls offered",
        "呼入数量",
        "count of calls (blocked included)",
        unit="count",
        agg="count",
        higher_is_better=None,
    ),
    _calls(
        "calls_answered",
        "Calls answered",
        "接通数量",
        "count of calls answered",
        unit="count",
        agg="count",
        where=_answered,
        columns=("outcome",),
    ),
    _calls(
        "calls_not_blocked",
        "Calls not blocked",
        "未堵塞呼叫数",
        "calls offered - blocked",
        unit="count",
        agg="count",
        where=lambda ctx: nw.col("outcome") != "blocked",
        columns=("outcome",),
        output=False,
    ),
    Ratio(
        name="answer_rate",
        title_en="Answer rate",
        title_zh="接通率",
        family=FAMILY,
        unit="ratio",
        numerator="calls_answered",
        denominator="calls_not_blocked",
        formula="calls_answered / (calls_offered - blocked)",
    ),
    _calls(
        "calls_abandoned_counted",
        "Abandoned calls (not short)",
        "放弃呼叫数",
        "abandoned calls that are not short abandons",
        unit="count",
        agg="count",
        columns=("outcome",),
        **_SHORT,
        output=False,
        where=lambda ctx: (nw.col("outcome") == "abandoned") & ~_short_abandon(ctx),
    ),
    _calls(
        "calls_reachable",
        "Calls reachable",
        "有效呼入数",
        "offered - blocked - short abandons",
        unit="count",
        agg="count",
        columns=("outcome",),
        **_SHORT,
        where=_reachable,
        output=False,
    ),
    Ratio(
        name="abandonment_rate",
        title_en="Abandonment rate",
        title_zh="放弃率",
        family=FAMILY,
        unit="ratio",
        numerator="calls_abandoned_counted",
        denominator="calls_reachable",
        higher_is_better=False,
        settings=_SETTINGS_SHORT,
        formula="(abandoned - short abandons) / (offered - blocked - short abandons)",
    ),
    _calls(
        "calls_within_service_level",
        "Calls answered within the service level",
        "服务水平内接通数",
        "answered with wait_seconds <= service_level_seconds",
        unit="count",
        agg="count",
        columns=("outcome", "wait_seconds"),
        settings=("service_level_seconds",),
        output=False,
        where=lambda ctx: (
            _answered(ctx)
            & (nw.col("wait_seconds") <= ctx.settings["service_level_seconds"]).fill_null(False)
        ),
    ),
    Ratio(
        name="service_level",
        title_en="Service level",
        title_zh="服务层级",
        family=FAMILY,
        unit="ratio",
        numerator="calls_within_service_level",
        denominator="calls_reachable",
        settings=("service_level_seconds", "short_abandon_seconds"),
        formula="answered with wait_seconds <= service_level_seconds (default 20) / (offered "
        "- blocked - short abandons)",
    ),
    _calls(
        "average_speed_of_answer",
        "Average speed of answer (s)",
        "平均等待时间 (ASA)",
        "mean wait_seconds over answered calls only",
        unit="seconds",
        agg="mean",
        column="wait_seconds",
        where=_answered,
        columns=("outcome",),
        higher_is_better=False,
    ),
    _calls(
        "average_talk_time",
        "Average talk time (s)",
        "平均谈话时间",
        "mean talk_seconds over answered calls",
        unit="seconds",
        agg="mean",
        column="talk_seconds",
        where=_answered,
        columns=("outcome",),
        higher_is_better=None,
    ),
    _calls(
        "average_after_call_work",
        "Average after-call work (s)",
        "后续处理时间",
        "mean acw_seconds over answered calls",
        unit="seconds",
        agg="mean",
        column="acw_seconds",
        where=_answered,
        columns=("outcome",),
        higher_is_better=False,
    ),
    _calls(
        "average_handle_time",
        "Average handle time (s)",
        "平均处理时间 (AHT)",
        "mean of talk + hold + acw over answered calls (hold and acw when present)",
        unit="seconds",
        agg="mean",
        value=_handle_seconds,
        where=_answered,
        columns=("outcome", "talk_seconds"),
        optional_columns=("hold_seconds", "acw_seconds"),
        higher_is_better=False,
    ),
    _calls(
        "calls_resolved",
        "Calls resolved",
        "已解决呼叫数",
        "answered calls resolved",
        unit="count",
        agg="count",
        columns=("outcome", "resolved"),
        output=False,
        where=lambda ctx: _answered(ctx) & nw.col("resolved").fill_null(False),
    ),
    Ratio(
        name="call_resolution_rate",
        title_en="Call resolution rate",
        title_zh="呼叫解决率",
        family=FAMILY,
        unit="ratio",
        numerator="calls_resolved",
        denominator="calls_answered",
        formula="answered and resolved calls / calls_answered",
    ),
    _calls(
        "blocked_calls",
        "Blocked calls",
        "堵塞呼叫量",
        "count of calls with outcome blocked",
        unit="count",
        agg="count",
        where=_outcome("blocked"),
        columns=("outcome",),
        higher_is_better=False,
    ),
    Ratio(
        name="blocked_rate",
        title_en="Blocked rate",
        title_zh="堵塞率",
        family=FAMILY,
        unit="ratio",
        numerator="blocked_calls",
        denominator="calls_offered",
        higher_is_better=False,
        formula="blocked_calls / calls_offered",
    ),
    Simple(
        name="handled_seconds_on_shift",
        title_en="Handle time on shift",
        title_zh="在班处理时长",
        family=FAMILY,
        unit="seconds",
        table="shift_utilization",
        anchor="shift_date",
        agg="sum",
        column="handled_seconds",
        output=False,
        formula="talk + hold + acw of answered calls on a staffed (rep, date)",
    ),
    Simple(
        name="staffed_seconds",
        title_en="Staffed time",
        title_zh="在班时长",
        family=FAMILY,
        unit="seconds",
        table="shift_utilization",
        anchor="shift_date",
        agg="sum",
        column="staffed_seconds",
        output=False,
        formula="sum of staffed_seconds of shifts",
    ),
    Ratio(
        name="agent_utilization",
        title_en="Agent utilisation",
        title_zh="人工坐席利用率",
        family=FAMILY,
        unit="ratio",
        numerator="handled_seconds_on_shift",
        denominator="staffed_seconds",
        formula="talk + hold + acw of answered calls whose (rep, date) has a shift / "
        "staffed_seconds of those shifts",
    ),
    Simple(
        name="prep_seconds",
        title_en="Preparation time",
        title_zh="接听前准备时长",
        family=FAMILY,
        unit="seconds",
        table="agent_shifts",
        anchor="shift_date",
        agg="sum",
        column="prep_seconds",
        output=False,
        formula="sum of prep_seconds of shifts",
    ),
    Simple(
        name="staffed_seconds_with_prep",
        title_en="Staffed time of shifts with a preparation time",
        title_zh="有准备时长记录的在班时长",
        family=FAMILY,
        unit="seconds",
        table="agent_shifts",
        anchor="shift_date",
        agg="sum",
        column="staffed_seconds",
        columns=("prep_seconds",),
        where=lambda ctx: ~nw.col("prep_seconds").is_null(),
        output=False,
        formula="sum of staffed_seconds of shifts whose prep_seconds is known",
    ),
    Ratio(
        name="connect_time_ratio",
        title_en="Connect time ratio",
        title_zh="连接时间比率",
        family=FAMILY,
        unit="ratio",
        numerator="prep_seconds",
        denominator="staffed_seconds_with_prep",
        higher_is_better=False,
        formula="prep_seconds / staffed_seconds of the shifts (the share of an agent's assigned "
        "time spent preparing before answering; shifts without a prep time are left out of both)",
    ),
    spend_of("service_spend", "Service spend", "服务费用", FAMILY, "service"),
    Ratio(
        name="cost_per_call",
        title_en="Cost per call",
        title_zh="一次呼叫平均成本",
        family=FAMILY,
        unit="currency",
        numerator="service_spend",
        denominator="calls_answered",
        higher_is_better=False,
        formula="spend of category service / calls_answered",
    ),
    _calls(
        "avg_quality_score",
        "Average quality score",
        "呼叫质量",
        "mean qa_score",
        unit="score",
        agg="mean",
        column="qa_score",
    ),
]
