"""Every call centre metric (KPI_CATALOGUE.md, "Call centre") on tiny inline data.

Each expected value is worked out by hand in the comment beside it and written as a literal.
Periods are months; `as_of` is always given.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from crmkpi.metrics import REGISTRY
from crmkpi.metrics.callcentre import METRICS
from tests.kpi_helpers import frame, kpis, row, run, series, value

CALLS = [
    dict(call_id="k1", offered_at="2024-01-02 09:00", outcome="answered", rep="a",
         wait_seconds=10.0, talk_seconds=100.0, hold_seconds=20.0, acw_seconds=30.0,
         resolved=True, qa_score=4.0),
    # wait exactly 20 s: inside the (inclusive) service level
    dict(call_id="k2", offered_at="2024-01-03 09:00", outcome="answered", rep="a",
         wait_seconds=20.0, talk_seconds=200.0, hold_seconds=None, acw_seconds=10.0,
         resolved=None, qa_score=None),
    dict(call_id="k3", offered_at="2024-01-04 09:00", outcome="answered", rep="b",
         wait_seconds=30.0, talk_seconds=300.0, hold_seconds=0.0, acw_seconds=20.0,
         resolved=False, qa_score=5.0),
    # answered, wait unknown: out of ASA, not within the service level
    dict(call_id="k4", offered_at="2024-01-05 09:00", outcome="answered", rep="b",
         wait_seconds=None, talk_seconds=60.0, hold_seconds=None, acw_seconds=None,
         resolved=True, qa_score=3.0),
    # abandoned after 0 s, 3 s and an unknown wait; k6 marked resolved (not an answered call)
    dict(call_id="k5", offered_at="2024-01-06 09:00", outcome="abandoned", wait_seconds=0.0),
    dict(call_id="k6", offered_at="2024-01-07 09:00", outcome="abandoned", wait_seconds=3.0,
         resolved=True),
    dict(call_id="k7", offered_at="2024-01-08 09:00", outcome="abandoned", wait_seconds=None),
    # blocked, one with a 0 s wait: never part of ASA or the answer-rate denominators
    dict(call_id="k8", offered_at="2024-01-09 09:00", outcome="blocked", wait_seconds=None),
    dict(call_id="k9", offered_at="2024-01-10 09:00", outcome="blocked", wait_seconds=0.0),
    # after as-of: not counted
    dict(call_id="k10", offered_at="2024-02-01 09:00", outcome="answered", wait_seconds=500.0,
         talk_seconds=900.0),
]  # fmt: skip


def test_call_counts_answer_and_blocked_rates() -> None:
    out = kpis({"calls": frame("calls", CALLS)}, period="month", as_of="2024-01-31")
    assert value(out, "calls_offered", "2024-01") == 9  # k1..k9, blocked included
    assert value(out, "calls_answered", "2024-01") == 4  # k1..k4
    assert value(out, "blocked_calls", "2024-01") == 2  # k8, k9
    blocked = row(out, "blocked_rate", "2024-01")
    assert (blocked["numerator"], blocked["denominator"]) == (2.0, 9.0)
    assert blocked["value"] == pytest.approx(2 / 9)
    # 4 answered / (9 offered - 2 blocked)
    answer = row(out, "answer_rate", "2024-01")
    assert (answer["numerator"], answer["denominator"]) == (4.0, 7.0)
    assert answer["value"] == pytest.approx(4 / 7)
    assert "2024-02" not in series(out, "calls_offered")


def test_abandonment_and_service_level_with_default_settings() -> None:
    out = kpis({"calls": frame("calls", CALLS)}, period="month", as_of="2024-01-31")
    # short_abandon_seconds = 0: no abandon is short -> 3 abandoned / (9 - 2 blocked)
    abandon = row(out, "abandonment_rate", "2024-01")
    assert (abandon["numerator"], abandon["denominator"]) == (3.0, 7.0)
    # answered within <= 20 s: k1 (10 s), k2 (20 s, inclusive) -> 2 / 7
    level = row(out, "service_level", "2024-01")
    assert (level["numerator"], level["denominator"]) == (2.0, 7.0)
    assert level["value"] == pytest.approx(2 / 7)


def test_short_abandons_leave_both_parts_and_a_null_wait_is_never_short() -> None:
    out = kpis({"calls": frame("calls", CALLS)}, period="month", as_of="2024-01-31",
               settings={"short_abandon_seconds": 5, "service_level_seconds": 30})  # fmt: skip
    # short abandons (< 5 s): k5 (0 s), k6 (3 s); k7's unknown wait is not short
    # abandonment: (3 - 2) / (9 - 2 blocked - 2 short) = 1 / 5
    abandon = row(out, "abandonment_rate", "2024-01")
    assert (abandon["value"], abandon["numerator"], abandon["denominator"]) == (0.2, 1.0, 5.0)
    # service level <= 30 s: k1, k2, k3 -> 3 / 5
    level = row(out, "service_level", "2024-01")
    assert (level["value"], level["numerator"], level["denominator"]) == (0.6, 3.0, 5.0)
    # the answer rate is not touched by short abandons: 4 / 7
    assert value(out, "answer_rate", "2024-01") == pytest.approx(4 / 7)


def test_times_are_averaged_over_answered_calls_only() -> None:
    out = kpis({"calls": frame("calls", CALLS)}, period="month", as_of="2024-01-31")
    # ASA: k1 10, k2 20, k3 30 (k4's wait unknown; the 0 s abandon and block never count)
    asa = row(out, "average_speed_of_answer", "2024-01")
    assert (asa["value"], asa["numerator"], asa["denominator"]) == (20.0, 60.0, 3.0)
    # talk: (100 + 200 + 300 + 60) / 4 = 165
    assert value(out, "average_talk_time", "2024-01") == 165.0
    # after-call work: (30 + 10 + 20) / 3 = 20 (k4's is unknown)
    assert value(out, "average_after_call_work", "2024-01") == 20.0
    # AHT: k1 100+20+30 = 150, k2 200+10 = 210, k3 300+0+20 = 320, k4 60 -> 740 / 4 = 185
    aht = row(out, "average_handle_time", "2024-01")
    assert (aht["value"], aht["numerator"], aht["denominator"]) == (185.0, 740.0, 4.0)
    # resolved and answered: k1, k4 of 4 (k6 is abandoned, k2's null is not resolved)
    resolution = row(out, "call_resolution_rate", "2024-01")
    assert (resolution["value"], resolution["numerator"], resolution["denominator"]) == (
        0.5,
        2.0,
        4.0,
    )
    # QA: (4 + 5 + 3) / 3 = 4
    assert value(out, "avg_quality_score", "2024-01") == 4.0


def test_handle_time_is_talk_only_without_hold_and_acw_columns() -> None:
    calls = frame(
        "calls",
        [
            dict(call_id="a", offered_at="2024-01-02", outcome="answered", talk_seconds=100.0),
            dict(call_id="b", offered_at="2024-01-03", outcome="answered", talk_seconds=200.0),
            dict(call_id="c", offered_at="2024-01-04", outcome="abandoned", talk_seconds=None),
        ],
    )
    result = run({"calls": calls}, period="month", as_of="2024-01-31")
    assert value(result.kpis, "average_handle_time", "2024-01") == 150.0  # (100 + 200) / 2
    assert "acw_seconds" in result.skipped["average_after_call_work"]
    # no wait_seconds: the answer-time metrics are skipped, the counts are not
    assert "wait_seconds" in result.skipped["average_speed_of_answer"]


def test_answer_rate_without_blocked_calls() -> None:
    calls = frame(
        "calls",
        [
            dict(call_id="a", offered_at="2024-01-02", outcome="answered"),
            dict(call_id="b", offered_at="2024-01-03", outcome="answered"),
            dict(call_id="c", offered_at="2024-01-04", outcome="abandoned"),
        ],
    )
    out = kpis({"calls": calls}, period="month", as_of="2024-01-31")
    assert value(out, "answer_rate", "2024-01") == pytest.approx(2 / 3)
    assert value(out, "blocked_calls", "2024-01") == 0
    assert value(out, "blocked_rate", "2024-01") == 0.0


# --- agent utilisation --------------------------------------------------------------------------

SHIFTS = [
    dict(rep="a", shift_date="2024-01-02", staffed_seconds=3600.0),
    dict(rep="a", shift_date="2024-01-03", staffed_seconds=3600.0),  # no calls: still staffed
    dict(rep="b", shift_date="2024-01-02", staffed_seconds=7200.0),
]
SHIFT_CALLS = [
    # a on 2 January: 600 + 60 + 240 = 900 s
    dict(call_id="s1", offered_at="2024-01-02 10:00", outcome="answered", rep="a",
         talk_seconds=600.0, hold_seconds=60.0, acw_seconds=240.0),
    # abandoned: no handle time
    dict(call_id="s2", offered_at="2024-01-02 11:00", outcome="abandoned", rep="a",
         talk_seconds=None, hold_seconds=None, acw_seconds=None),
    # b on 2 January: 1800 s (hold and acw unknown)
    dict(call_id="s3", offered_at="2024-01-02 12:00", outcome="answered", rep="b",
         talk_seconds=1800.0, hold_seconds=None, acw_seconds=None),
    # b on 4 January has no shift: not counted
    dict(call_id="s4", offered_at="2024-01-04 12:00", outcome="answered", rep="b",
         talk_seconds=1000.0, hold_seconds=None, acw_seconds=None),
    # c never has a shift; a call without a rep matches no shift
    dict(call_id="s5", offered_at="2024-01-02 12:00", outcome="answered", rep="c",
         talk_seconds=500.0, hold_seconds=None, acw_seconds=None),
    dict(call_id="s6", offered_at="2024-01-02 13:00", outcome="answered", rep=None,
         talk_seconds=700.0, hold_seconds=None, acw_seconds=None),
]  # fmt: skip


def test_agent_utilization_counts_calls_on_shifts_and_shifts_without_calls() -> None:
    tables = {"calls": frame("calls", SHIFT_CALLS), "agent_shifts": frame("agent_shifts", SHIFTS)}
    out = kpis(tables, period="month", by=("rep",), as_of="2024-01-31")
    # (900 + 1800) / (3600 + 3600 + 7200) = 2700 / 14400
    total = row(out, "agent_utilization", "2024-01")
    assert (total["value"], total["numerator"], total["denominator"]) == (0.1875, 2700.0, 14400.0)
    assert value(out, "agent_utilization", "2024-01", rep="a") == 0.125  # 900 / 7200
    assert value(out, "agent_utilization", "2024-01", rep="b") == 0.25  # 1800 / 7200


def test_agent_utilization_is_skipped_without_talk_time() -> None:
    calls = frame(
        "calls", [dict(call_id="a", offered_at="2024-01-02 10:00", outcome="answered", rep="a")]
    )
    result = run({"calls": calls, "agent_shifts": frame("agent_shifts", SHIFTS)},
                 period="month", as_of="2024-01-31")  # fmt: skip
    assert "handled_seconds" in result.skipped["agent_utilization"]
    assert value(result.kpis, "calls_answered", "2024-01") == 1


# --- cost per call ------------------------------------------------------------------------------


def test_cost_per_call_is_service_spend_over_answered_calls() -> None:
    calls = frame(
        "calls",
        [
            dict(call_id="a", offered_at="2024-01-02", outcome="answered"),
            dict(call_id="b", offered_at="2024-01-03", outcome="answered"),
            dict(call_id="c", offered_at="2024-01-04", outcome="abandoned"),
            dict(call_id="d", offered_at="2024-01-05", outcome="blocked"),
        ],
    )
    spend = frame(
        "spend",
        [
            dict(spent_at="2024-01-10", category="service", amount=300.0),
            dict(spent_at="2024-01-20", category="service", amount=100.0),
            dict(spent_at="2024-01-20", category="marketing", amount=999.0),  # not service
            dict(spent_at="2024-02-05", category="service", amount=50.0),  # no calls in Feb
        ],
    )
    out = kpis({"calls": calls, "spend": spend}, period="month", as_of="2024-02-29")
    # January: (300 + 100) / 2 answered = 200
    cost = row(out, "cost_per_call", "2024-01")
    assert (cost["value"], cost["numerator"], cost["denominator"]) == (200.0, 400.0, 2.0)
    # February: 50 of spend, no answered call -> null, the row still written
    february = row(out, "cost_per_call", "2024-02")
    assert (february["value"], february["numerator"], february["denominator"]) == (
        None,
        50.0,
        0.0,
    )


# --- connect time ratio -------------------------------------------------------------------------

PREP_SHIFTS = [
    dict(rep="a", shift_date="2024-01-02", staffed_seconds=28800.0, prep_seconds=2880.0),
    dict(rep="b", shift_date="2024-01-02", staffed_seconds=14400.0, prep_seconds=720.0),
    # no prep time reported: left out of both parts, not a shift of 0 s preparing
    dict(rep="a", shift_date="2024-01-03", staffed_seconds=28800.0, prep_seconds=None),
    dict(rep="a", shift_date="2024-02-01", staffed_seconds=3600.0, prep_seconds=0.0),
]


@pytest.mark.parametrize("engine", ["polars", "duckdb"])
def test_connect_time_ratio_is_prep_time_over_staffed_time(engine: str) -> None:
    out = kpis({"agent_shifts": frame("agent_shifts", PREP_SHIFTS)}, period="month",
               by=("rep",), as_of="2024-02-29", engine=engine)  # fmt: skip
    # January: (2880 + 720) / (28800 + 14400) = 3600 / 43200 = 1/12
    january = row(out, "connect_time_ratio", "2024-01")
    assert (january["numerator"], january["denominator"]) == (3600.0, 43200.0)
    assert january["value"] == pytest.approx(1 / 12)
    assert value(out, "connect_time_ratio", "2024-01", rep="a") == 0.1  # 2880 / 28800
    assert value(out, "connect_time_ratio", "2024-01", rep="b") == 0.05  # 720 / 14400
    assert value(out, "connect_time_ratio", "2024-02") == 0.0  # 0 / 3600
    assert REGISTRY["connect_time_ratio"].higher_is_better is False


def test_connect_time_ratio_is_skipped_without_prep_seconds() -> None:
    shifts = frame("agent_shifts", PREP_SHIFTS).drop("prep_seconds")
    result = run({"agent_shifts": shifts}, period="month", as_of="2024-02-29")
    assert "agent_shifts lacks column(s) prep_seconds" in result.skipped["connect_time_ratio"]


def test_every_callcentre_metric_has_a_test_here() -> None:
    source = Path(__file__).read_text(encoding="utf-8")
    outputs = [m.name for m in METRICS if REGISTRY[m.name].output]
    assert outputs, "no call centre metrics"
    untested = [name for name in outputs if f'"{name}"' not in source]
    assert not untested, f"call centre metrics without a test: {untested}"
