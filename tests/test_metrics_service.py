"""Every customer service metric (KPI_CATALOGUE.md, "Customer service") on tiny inline data.

Each expected value is worked out by hand in the comment beside it and written as a literal.
Periods are months unless a test says otherwise; `as_of` is always given.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from crmkpi.api import load_folder
from crmkpi.metrics import REGISTRY
from crmkpi.metrics.service import METRICS
from tests.kpi_helpers import frame, kpis, row, run, series, value

# --- tickets ------------------------------------------------------------------------------------

TICKETS = [
    # resolved at first contact by its flag, although it took 2 contacts (the flag wins)
    dict(ticket_id="t1", created_at="2024-01-02 08:00", first_response_at="2024-01-02 10:00",
         resolved_at="2024-01-03 08:00", contacts_count=2, handle_seconds=600.0,
         resolved_first_contact=True),
    # no flag, 3 contacts: not first contact; resolved in February
    dict(ticket_id="t2", created_at="2024-01-05 00:00", first_response_at="2024-01-05 06:00",
         resolved_at="2024-02-05 00:00", contacts_count=3, handle_seconds=1800.0,
         resolved_first_contact=None),
    # no flag, 1 contact: first contact; never answered; no handle time
    dict(ticket_id="t3", created_at="2024-01-10 00:00", first_response_at=None,
         resolved_at="2024-01-10 12:00", contacts_count=1, handle_seconds=None,
         resolved_first_contact=None),
    # answered only after as-of, never resolved
    dict(ticket_id="t4", created_at="2024-02-01 00:00", first_response_at="2024-03-02 00:00",
         resolved_at=None, contacts_count=2, handle_seconds=None, resolved_first_contact=None),
    # resolved after as-of: not resolved yet, whatever its flag says
    dict(ticket_id="t5", created_at="2024-02-10 00:00", first_response_at=None,
         resolved_at="2024-03-05 00:00", contacts_count=1, handle_seconds=900.0,
         resolved_first_contact=True),
    # flagged not first contact although 1 contact (the flag wins); status still open
    dict(ticket_id="t6", created_at="2024-01-20 00:00", first_response_at=None,
         resolved_at="2024-01-21 00:00", contacts_count=1, handle_seconds=1200.0,
         resolved_first_contact=False, status="open"),
]  # fmt: skip


def test_ticket_metrics_by_created_and_resolved_dates() -> None:
    out = kpis({"tickets": frame("tickets", TICKETS)}, period="month", as_of="2024-02-29")
    # created: January t1, t2, t3, t6 = 4; February t4, t5 = 2
    assert series(out, "tickets_created") == {"2024-01": 4, "2024-02": 2}
    # resolved by resolved_at <= as-of: January t1, t3, t6 = 3; February t2 = 1 (t5 is after)
    assert series(out, "tickets_resolved") == {"2024-01": 3, "2024-02": 1}
    # FCR January: t1 (flag), t3 (no flag, 1 contact) of t1, t3, t6 = 2/3
    fcr = row(out, "first_contact_resolution_rate", "2024-01")
    assert fcr["value"] == pytest.approx(2 / 3)
    assert (fcr["numerator"], fcr["denominator"]) == (2.0, 3.0)
    # FCR February: t2 (3 contacts) is not first contact: 0/1
    assert value(out, "first_contact_resolution_rate", "2024-02") == 0.0


def test_first_response_only_over_tickets_answered_by_as_of() -> None:
    out = kpis({"tickets": frame("tickets", TICKETS)}, period="month", as_of="2024-02-29")
    # January (by created_at): t1 2 h, t2 6 h; t3 and t6 never answered -> (2 + 6) / 2 = 4
    first = row(out, "avg_first_response_hours", "2024-01")
    assert (first["value"], first["numerator"], first["denominator"]) == (4.0, 8.0, 2.0)
    # February: t4 answered after as-of, t5 never: no answered ticket -> null
    assert value(out, "avg_first_response_hours", "2024-02") is None


def test_resolution_handle_time_and_contacts_over_resolved_tickets() -> None:
    out = kpis({"tickets": frame("tickets", TICKETS)}, period="month", as_of="2024-02-29")
    # January (by resolved_at): t1 24 h, t3 12 h, t6 24 h -> 60 / 3 = 20
    assert value(out, "avg_resolution_hours", "2024-01") == 20.0
    # February: t2 from 5 January to 5 February = 31 days = 744 h
    assert value(out, "avg_resolution_hours", "2024-02") == 744.0
    # handle time January: t1 600 s = 10 min, t6 1200 s = 20 min; t3 has none -> 30 / 2 = 15
    handle = row(out, "avg_ticket_handle_minutes", "2024-01")
    assert (handle["value"], handle["numerator"], handle["denominator"]) == (15.0, 30.0, 2.0)
    # February: t2 1800 s = 30 min (t5's 900 s is resolved after as-of)
    assert value(out, "avg_ticket_handle_minutes", "2024-02") == 30.0
    # contacts January: t1 2, t3 1, t6 1 -> 4 / 3; February: t2 3
    assert value(out, "avg_contacts_per_ticket", "2024-01") == pytest.approx(4 / 3)
    assert value(out, "avg_contacts_per_ticket", "2024-02") == 3.0


def test_seed_examples_fcr_80_of_100_and_handle_time_200_hours_over_100_tickets() -> None:
    # 100 tickets resolved in January: 80 flagged resolved at first contact, 20 not; handle
    # times: 50 x 1 h + 50 x 3 h = 200 h over 100 tickets = 2 h = 120 minutes.
    tickets = frame(
        "tickets",
        [
            dict(ticket_id=f"t{i}", created_at="2024-01-02", resolved_at="2024-01-03",
                 resolved_first_contact=i < 80, handle_seconds=3600.0 if i % 2 else 10800.0)
            for i in range(100)
        ],
    )  # fmt: skip
    out = kpis({"tickets": tickets}, period="month", as_of="2024-01-31")
    fcr = row(out, "first_contact_resolution_rate", "2024-01")
    assert (fcr["value"], fcr["numerator"], fcr["denominator"]) == (0.8, 80.0, 100.0)
    handle = row(out, "avg_ticket_handle_minutes", "2024-01")
    # 200 h = 12,000 minutes over 100 tickets
    assert (handle["value"], handle["numerator"], handle["denominator"]) == (120.0, 12000.0, 100.0)


def test_fcr_from_the_flag_alone_from_contacts_alone_and_skipped_without_either() -> None:
    flag_only = frame(
        "tickets",
        [
            dict(ticket_id="a", created_at="2024-01-02", resolved_at="2024-01-03",
                 resolved_first_contact=True),
            dict(ticket_id="b", created_at="2024-01-02", resolved_at="2024-01-03",
                 resolved_first_contact=None),  # unknown: not first contact
            dict(ticket_id="c", created_at="2024-01-02", resolved_at="2024-01-04",
                 resolved_first_contact=False),
            dict(ticket_id="d", created_at="2024-01-02", resolved_at=None,
                 resolved_first_contact=True),  # not resolved: in neither part
        ],
    )  # fmt: skip
    out = kpis({"tickets": flag_only}, period="month", as_of="2024-01-31")
    # a of a, b, c = 1/3
    assert value(out, "first_contact_resolution_rate", "2024-01") == pytest.approx(1 / 3)
    count_only = frame(
        "tickets",
        [
            dict(ticket_id="a", created_at="2024-01-02", resolved_at="2024-01-03",
                 contacts_count=1),
            dict(ticket_id="b", created_at="2024-01-02", resolved_at="2024-01-03",
                 contacts_count=None),  # unknown: not first contact
            dict(ticket_id="c", created_at="2024-01-02", resolved_at="2024-01-04",
                 contacts_count=2),
            dict(ticket_id="d", created_at="2024-01-02", resolved_at="2024-01-05",
                 contacts_count=1),
        ],
    )  # fmt: skip
    out = kpis({"tickets": count_only}, period="month", as_of="2024-01-31")
    # a, d of a, b, c, d = 2/4
    assert value(out, "first_contact_resolution_rate", "2024-01") == 0.5
    neither = frame(
        "tickets", [dict(ticket_id="a", created_at="2024-01-02", resolved_at="2024-01-03")]
    )
    result = run({"tickets": neither}, period="month", as_of="2024-01-31")
    assert "first_contact_resolution_rate" in result.skipped
    assert "contacts_count" in result.skipped["avg_contacts_per_ticket"]


# --- complaints ---------------------------------------------------------------------------------

COMPLAINTS = [
    dict(ticket_id="c1", created_at="2024-01-03", is_complaint=True, complaint_valid=True,
         resolved_at="2024-01-10"),
    # validity unknown: valid; resolved after as-of: not resolved
    dict(ticket_id="c2", created_at="2024-01-05", is_complaint=True, complaint_valid=None,
         resolved_at="2024-03-10"),
    # marked invalid: not a complaint
    dict(ticket_id="c3", created_at="2024-01-06", is_complaint=True, complaint_valid=False,
         resolved_at="2024-01-07"),
    # is_complaint unknown: not a complaint (even when "valid")
    dict(ticket_id="c4", created_at="2024-01-07", is_complaint=None, complaint_valid=True,
         resolved_at=None),
    dict(ticket_id="c5", created_at="2024-01-08", is_complaint=False, complaint_valid=None,
         resolved_at=None),
    # created in January, resolved in February: a January complaint resolved by as-of
    dict(ticket_id="c6", created_at="2024-01-30", is_complaint=True, complaint_valid=None,
         resolved_at="2024-02-10"),
    # a February ticket that is no complaint
    dict(ticket_id="c7", created_at="2024-02-02", is_complaint=False, complaint_valid=None,
         resolved_at=None),
]  # fmt: skip


def test_complaints_rate_and_resolution_cohort_by_created_at() -> None:
    out = kpis({"tickets": frame("tickets", COMPLAINTS)}, period="month", as_of="2024-02-29")
    # valid complaints January: c1, c2 (validity null), c6 = 3; February none
    assert series(out, "complaints") == {"2024-01": 3, "2024-02": 0}
    # January: 3 of 6 tickets; February: 0 of 1
    rate = row(out, "complaint_rate", "2024-01")
    assert (rate["value"], rate["numerator"], rate["denominator"]) == (0.5, 3.0, 6.0)
    assert value(out, "complaint_rate", "2024-02") == 0.0
    # January cohort: c1 and c6 (resolved in February, by as-of) of 3 = 2/3; c2 after as-of
    resolution = row(out, "complaint_resolution_rate", "2024-01")
    assert resolution["value"] == pytest.approx(2 / 3)
    assert (resolution["numerator"], resolution["denominator"]) == (2.0, 3.0)
    # February: no complaint -> null
    assert value(out, "complaint_resolution_rate", "2024-02") is None


def test_complaints_without_a_validity_column_are_all_valid() -> None:
    tickets = frame(
        "tickets",
        [
            dict(ticket_id="a", created_at="2024-01-03", is_complaint=True, resolved_at=None),
            dict(ticket_id="b", created_at="2024-01-04", is_complaint=True,
                 resolved_at="2024-01-05"),
            dict(ticket_id="c", created_at="2024-01-05", is_complaint=False, resolved_at=None),
        ],
    )  # fmt: skip
    out = kpis({"tickets": tickets}, period="month", as_of="2024-01-31")
    assert value(out, "complaints", "2024-01") == 2  # a, b
    assert value(out, "complaint_rate", "2024-01") == pytest.approx(2 / 3)
    assert value(out, "complaint_resolution_rate", "2024-01") == 0.5  # b of a, b


# --- durations instead of timestamps (through the loader) ---------------------------------------


def test_timestamps_derived_from_durations_and_a_given_timestamp_wins(tmp_path: Path) -> None:
    (tmp_path / "tickets.csv").write_text(
        "ticket_id,created_at,first_response_at,first_response_seconds,resolved_at,"
        "resolution_seconds\n"
        # derived: answered after 7200 s = 2 h, resolved after 36000 s = 10 h
        "t1,2024-01-01 00:00,,7200,,36000\n"
        # given timestamps win over the durations: answered after 4 h, resolved after 24 h
        "t2,2024-01-01 00:00,2024-01-01 04:00,60,2024-01-02 00:00,3600\n"
        # resolved after 2 days = 2 February, after as-of: not resolved
        "t3,2024-01-31 00:00,,,,172800\n",
        encoding="utf-8",
    )
    tables = load_folder(tmp_path)
    out = kpis(tables, period="month", as_of="2024-01-31")
    assert value(out, "avg_first_response_hours", "2024-01") == 3.0  # (2 + 4) / 2
    assert value(out, "tickets_resolved", "2024-01") == 2  # t1, t2
    assert value(out, "avg_resolution_hours", "2024-01") == 17.0  # (10 + 24) / 2


# --- surveys ------------------------------------------------------------------------------------


def test_seed_examples_csat_80_of_100_and_nps_60_promoters_40_detractors() -> None:
    # CSAT: 100 csat responses: 40 x 5, 40 x 4 (satisfied) and 20 x 3 -> 80 / 100 = 0.8;
    # mean score (200 + 160 + 60) / 100 = 4.2.
    csat = [5.0] * 40 + [4.0] * 40 + [3.0] * 20
    # NPS: 100 nps responses: 30 x 9, 30 x 10 (promoters), 40 x 0..6 (detractors), no
    # passives -> (60 - 40) / 100 x 100 = 20. Every csat score is <= 6: if csat rows leaked
    # into NPS they would count as detractors; nps 9s and 10s leaking into CSAT as satisfied.
    nps = [9.0] * 30 + [10.0] * 30 + [float(i % 7) for i in range(40)]
    surveys = frame(
        "surveys",
        [
            dict(response_id=f"c{i}", responded_at="2024-01-10", survey_type="csat", score=s)
            for i, s in enumerate(csat)
        ]
        + [
            dict(response_id=f"n{i}", responded_at="2024-01-11", survey_type="nps", score=s)
            for i, s in enumerate(nps)
        ],
    )
    out = kpis({"surveys": surveys}, period="month", as_of="2024-01-31")
    c = row(out, "csat", "2024-01")
    assert (c["value"], c["numerator"], c["denominator"]) == (0.8, 80.0, 100.0)
    assert value(out, "avg_satisfaction_score", "2024-01") == pytest.approx(4.2)
    n = row(out, "nps", "2024-01")
    assert n["value"] == pytest.approx(20.0)
    assert (n["numerator"], n["denominator"]) == (20.0, 100.0)


def test_csat_satisfied_min_setting_nps_passives_and_responses_after_as_of() -> None:
    surveys = frame(
        "surveys",
        [
            dict(response_id="a", responded_at="2024-01-02", survey_type="csat", score=3.0),
            dict(response_id="b", responded_at="2024-01-03", survey_type="csat", score=3.5),
            dict(response_id="c", responded_at="2024-01-04", survey_type="csat", score=4.0),
            dict(response_id="d", responded_at="2024-01-05", survey_type="csat", score=5.0),
            dict(response_id="e", responded_at="2024-01-06", survey_type="nps", score=7.0),
            dict(response_id="f", responded_at="2024-01-07", survey_type="nps", score=8.0),
            dict(response_id="g", responded_at="2024-01-08", survey_type="nps", score=9.0),
            dict(response_id="h", responded_at="2024-01-09", survey_type="nps", score=6.0),
            dict(response_id="i", responded_at="2024-01-10", survey_type="nps", score=10.0),
            # after as-of: not counted
            dict(response_id="j", responded_at="2024-02-01", survey_type="csat", score=1.0),
            dict(response_id="k", responded_at="2024-02-01", survey_type="nps", score=0.0),
        ],
    )
    out = kpis({"surveys": surveys}, period="month", as_of="2024-01-31")
    # default 4: c, d of a, b, c, d = 0.5; mean (3 + 3.5 + 4 + 5) / 4 = 3.875
    assert value(out, "csat", "2024-01") == 0.5
    assert value(out, "avg_satisfaction_score", "2024-01") == 3.875
    # promoters g, i (2); detractor h (1); passives e, f -> (2 - 1) / 5 x 100 = 20
    assert value(out, "nps", "2024-01") == pytest.approx(20.0)
    lenient = kpis({"surveys": surveys}, period="month", as_of="2024-01-31",
                   settings={"csat_satisfied_min": 3.5})  # fmt: skip
    assert value(lenient, "csat", "2024-01") == 0.75  # b, c, d of 4


def test_every_service_metric_has_a_test_here() -> None:
    source = Path(__file__).read_text(encoding="utf-8")
    outputs = [m.name for m in METRICS if REGISTRY[m.name].output]
    assert outputs, "no service metrics"
    untested = [name for name in outputs if f'"{name}"' not in source]
    assert not untested, f"service metrics without a test: {untested}"
