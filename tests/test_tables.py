"""Table contracts: the checked-in schemas/ files match the code, and the contracts enforce the
rules of KPI_CATALOGUE.md."""

from __future__ import annotations

import datetime as dt

import pandera.polars as pa
import polars as pl
import pytest

from crmkpi.tables import CONTRACTS, TABLE_NAMES, columns_of, render_schema
from tests.conftest import REPO


@pytest.mark.parametrize("table", TABLE_NAMES)
def test_schema_file_matches_contract(table: str) -> None:
    path = REPO / "schemas" / f"{table}.json"
    assert path.read_text(encoding="utf-8") == render_schema(table), (
        f"schemas/{table}.json has drifted from crmkpi/tables.py: run `make schemas`"
    )


def test_all_seventeen_tables() -> None:
    assert len(TABLE_NAMES) == 17
    assert {p.stem for p in (REPO / "schemas").glob("*.json")} == set(TABLE_NAMES)


def test_required_columns_follow_the_catalogue() -> None:
    required = {t: {n for n, c in columns_of(t).items() if c.required} for t in TABLE_NAMES}
    assert required["deals"] == {"deal_id", "created_at", "status"}
    assert required["orders"] == {"customer_id", "ordered_at", "amount"}
    assert required["surveys"] == {"response_id", "responded_at", "survey_type", "score"}
    assert required["calls"] == {"call_id", "offered_at", "outcome"}
    assert required["customers"] == {"customer_id"}
    assert required["agent_shifts"] == {"rep", "shift_date", "staffed_seconds"}
    assert required["trainings"] == {"rep", "trained_on"}
    assert required["incidents"] == {"incident_id", "occurred_at", "kind"}


def _failures(table: str, frame: pl.DataFrame) -> set[str]:
    try:
        CONTRACTS[table].validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        return set(exc.failure_cases["check"].cast(pl.String))
    return set()


def test_deal_rules() -> None:
    t0, t1 = dt.datetime(2024, 1, 2), dt.datetime(2024, 1, 1)
    frame = pl.DataFrame(
        {
            "deal_id": ["a", "b", "c", "c"],
            "created_at": [t0, t0, t0, t0],
            "status": ["won", "lost", "open", "maybe"],
            "closed_at": [None, t1, None, None],
            "probability": [0.5, 1.5, 0.1, 0.2],
        },
        schema_overrides={"closed_at": pl.Datetime("us")},
    )
    checks = _failures("deals", frame)
    assert "closed_at_required_when_won_or_lost" in checks  # a won deal without close date
    assert "closed_at_not_before_created_at" in checks  # b closed before created
    assert "field_uniqueness" in checks
    assert "less_than_or_equal_to(1)" in checks
    assert any(c.startswith("isin") for c in checks)


def test_ticket_resolution_not_before_creation() -> None:
    frame = pl.DataFrame(
        {
            "ticket_id": ["t1", "t2"],
            "created_at": [dt.datetime(2024, 1, 2)] * 2,
            "resolved_at": [dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 3)],
        }
    )
    assert _failures("tickets", frame) == {"resolved_at_not_before_created_at"}


def test_survey_scales() -> None:
    frame = pl.DataFrame(
        {
            "response_id": ["1", "2", "3", "4", "5"],
            "responded_at": [dt.datetime(2024, 1, 1)] * 5,
            "survey_type": ["csat", "csat", "nps", "nps", "nps"],
            "score": [4.5, 0.0, 10.0, 7.5, 11.0],
        }
    )
    try:
        CONTRACTS["surveys"].validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        bad = set(exc.failure_cases["index"].to_list())
    assert bad == {1, 3, 4}  # csat 0, nps 7.5 (not whole), nps 11


def test_ad_survey_scales() -> None:
    frame = pl.DataFrame(
        {
            "response_id": ["1", "2", "3", "4", "5", "6"],
            "responded_at": [dt.datetime(2024, 1, 1)] * 6,
            "survey_type": ["ad_awareness", "ad_awareness", "ad_awareness", "ad_rating",
                            "ad_rating", "ad_rating"],
            "score": [1.0, 0.0, 0.5, 3.5, 0.0, 6.0],
        }
    )  # fmt: skip
    try:
        CONTRACTS["surveys"].validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        bad = set(exc.failure_cases["index"].to_list())
    assert bad == {2, 4, 5}  # awareness 0.5 (neither 0 nor 1), ad rating 0 and 6 (1..5)


def test_prep_time_lies_within_the_shift() -> None:
    frame = pl.DataFrame(
        {
            "rep": ["a", "b", "c"],
            "shift_date": [dt.date(2024, 1, 2)] * 3,
            "staffed_seconds": [3600.0, 3600.0, 3600.0],
            "prep_seconds": [600.0, 4000.0, None],
        }
    )
    assert _failures("agent_shifts", frame) == {"prep_seconds_within_staffed_seconds"}
    negative = frame.with_columns(pl.Series("prep_seconds", [-1.0, 0.0, 3600.0]))
    assert _failures("agent_shifts", negative) == {"greater_than_or_equal_to(0)"}


def test_incident_rules() -> None:
    frame = pl.DataFrame(
        {
            "incident_id": ["i1", "i2", "i2"],
            "occurred_at": [dt.datetime(2024, 1, 2)] * 3,
            "kind": ["document_lost", "process_failure", "lost_laptop"],
        }
    )
    checks = _failures("incidents", frame)
    assert "field_uniqueness" in checks
    assert any(c.startswith("isin") for c in checks)
