"""Periods: labels and bounds of every grain, week starts, ISO years, fiscal years, the partial
flag (KPI_CATALOGUE.md rule 4, DESIGN.md's output contract)."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from crmkpi.calendar import Calendar

D = dt.date


def period_of(calendar: Calendar, date: D, as_of: D | None = None) -> tuple[str, D, D, bool]:
    """(label, start, end, partial) of the period holding `date`, in a grid starting more than
    two years earlier (a first period the data cover only in part is partial too)."""
    table = calendar.table(date - dt.timedelta(days=800), as_of or date)
    found = table.filter(table["date"] == date).row(0, named=True)
    return found["period"], found["period_start"], found["period_end"], found["partial_period"]


@pytest.mark.parametrize(
    ("grain", "date", "label", "start", "end"),
    [
        ("day", D(2024, 3, 15), "2024-03-15", D(2024, 3, 15), D(2024, 3, 15)),
        # Friday 2024-03-15 is in ISO week 11, Monday 11th to Sunday 17th
        ("week", D(2024, 3, 15), "2024-W11", D(2024, 3, 11), D(2024, 3, 17)),
        # Monday 2024-12-30 starts ISO week 1 of 2025
        ("week", D(2024, 12, 30), "2025-W01", D(2024, 12, 30), D(2025, 1, 5)),
        ("week", D(2025, 1, 5), "2025-W01", D(2024, 12, 30), D(2025, 1, 5)),
        # Friday 2021-01-01 is in the last ISO week of 2020, week 53
        ("week", D(2021, 1, 1), "2020-W53", D(2020, 12, 28), D(2021, 1, 3)),
        ("month", D(2024, 2, 10), "2024-02", D(2024, 2, 1), D(2024, 2, 29)),  # leap year
        ("month", D(2023, 12, 31), "2023-12", D(2023, 12, 1), D(2023, 12, 31)),
        ("quarter", D(2024, 3, 31), "2024-Q1", D(2024, 1, 1), D(2024, 3, 31)),
        ("quarter", D(2024, 8, 15), "2024-Q3", D(2024, 7, 1), D(2024, 9, 30)),
        ("year", D(2024, 6, 1), "2024", D(2024, 1, 1), D(2024, 12, 31)),
    ],
)
def test_labels_and_bounds(grain: str, date: D, label: str, start: D, end: D) -> None:
    assert period_of(Calendar(grain), date, as_of=end) == (label, start, end, False)


def test_week_starting_on_sunday() -> None:
    calendar = Calendar("week", week_start="sunday")
    # Friday 2024-03-15: the week runs Sunday 10th to Saturday 16th, named by ISO week 11
    assert period_of(calendar, D(2024, 3, 15), D(2024, 3, 16)) == (
        "2024-W11",
        D(2024, 3, 10),
        D(2024, 3, 16),
        False,
    )
    # Sunday 2024-03-17 opens the next week
    assert period_of(calendar, D(2024, 3, 17), D(2024, 3, 23))[:2] == ("2024-W12", D(2024, 3, 17))
    # Sunday 2024-12-29 to Saturday 2025-01-04: mostly 2025, week 1 of 2025
    assert period_of(calendar, D(2024, 12, 31), D(2025, 1, 4)) == (
        "2025-W01",
        D(2024, 12, 29),
        D(2025, 1, 4),
        False,
    )


def test_weeks_of_a_year_have_distinct_labels() -> None:
    for week_start in ("monday", "sunday", "thursday"):
        periods = Calendar("week", week_start=week_start).periods(D(2024, 1, 1), D(2025, 12, 31))
        assert periods["period"].n_unique() == periods.height, week_start
        lengths = (periods["period_end"] - periods["period_start"]).dt.total_days() + 1
        assert set(lengths) == {7}, week_start


@pytest.mark.parametrize(
    ("date", "label", "start", "end"),
    [
        # fiscal years starting in April are named by the year they end in
        (D(2024, 4, 1), "FY2025-Q1", D(2024, 4, 1), D(2024, 6, 30)),
        (D(2024, 6, 30), "FY2025-Q1", D(2024, 4, 1), D(2024, 6, 30)),
        (D(2024, 12, 25), "FY2025-Q3", D(2024, 10, 1), D(2024, 12, 31)),
        (D(2025, 3, 31), "FY2025-Q4", D(2025, 1, 1), D(2025, 3, 31)),
        (D(2024, 3, 31), "FY2024-Q4", D(2024, 1, 1), D(2024, 3, 31)),
    ],
)
def test_fiscal_quarters_start_in_april(date: D, label: str, start: D, end: D) -> None:
    calendar = Calendar("quarter", fiscal_year_start_month=4)
    assert period_of(calendar, date, as_of=end) == (label, start, end, False)


def test_fiscal_year_and_months_of_a_fiscal_calendar() -> None:
    year = Calendar("year", fiscal_year_start_month=4)
    assert period_of(year, D(2024, 5, 1), D(2025, 3, 31)) == (
        "FY2025",
        D(2024, 4, 1),
        D(2025, 3, 31),
        False,
    )
    assert period_of(year, D(2024, 3, 1), D(2024, 3, 31))[:3] == (
        "FY2024",
        D(2023, 4, 1),
        D(2024, 3, 31),
    )
    # months keep their calendar names
    month = Calendar("month", fiscal_year_start_month=4)
    assert period_of(month, D(2024, 4, 9), D(2024, 4, 30))[0] == "2024-04"


def test_fiscal_quarters_starting_in_february() -> None:
    calendar = Calendar("quarter", fiscal_year_start_month=2)
    # FY2024 runs 2023-02-01 .. 2024-01-31; its Q4 is November to January
    assert period_of(calendar, D(2024, 1, 15), D(2024, 1, 31)) == (
        "FY2024-Q4",
        D(2023, 11, 1),
        D(2024, 1, 31),
        False,
    )
    assert period_of(calendar, D(2024, 2, 1), D(2024, 4, 30))[:2] == ("FY2025-Q1", D(2024, 2, 1))


def test_period_all_runs_from_the_first_date_to_as_of() -> None:
    periods = Calendar("all").periods(D(2024, 2, 10), D(2024, 5, 20))
    assert periods.select("period", "period_start", "period_end", "partial_period").rows() == [
        ("all", D(2024, 2, 10), D(2024, 5, 20), False)
    ]


def test_partial_flag_and_the_grid_ends_at_as_of() -> None:
    calendar = Calendar("month")
    table = calendar.table(D(2024, 1, 20), D(2024, 3, 15))
    assert table["date"].min() == D(2024, 1, 20)
    assert table["date"].max() == D(2024, 3, 15)  # no date after as-of
    periods = calendar.periods(D(2024, 1, 20), D(2024, 3, 15))
    # the grid starts at the first date's period; the period holding as-of is partial, and so
    # is the first one: the data start on the 20th of January
    assert periods.select("period", "period_start", "period_end", "partial_period").rows() == [
        ("2024-01", D(2024, 1, 1), D(2024, 1, 31), True),
        ("2024-02", D(2024, 2, 1), D(2024, 2, 29), False),
        ("2024-03", D(2024, 3, 1), D(2024, 3, 31), True),
    ]
    assert periods["period_index"].to_list() == [0, 1, 2]
    # as-of on the period's last day: complete; so is a first period the data start on its
    # first day
    last_day = calendar.periods(D(2024, 1, 20), D(2024, 3, 31))
    assert last_day["partial_period"].to_list() == [True, False, False]
    whole = calendar.periods(D(2024, 1, 1), D(2024, 3, 31))
    assert not whole["partial_period"].any()


def test_first_date_after_as_of_gives_the_as_of_period() -> None:
    periods = Calendar("quarter").periods(D(2024, 9, 1), D(2024, 5, 1))
    assert periods["period"].to_list() == ["2024-Q2"]
    assert periods["partial_period"].to_list() == [True]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"grain": "fortnight"},
        {"grain": "month", "fiscal_year_start_month": 13},
        {"grain": "week", "week_start": "sun"},
    ],
)
def test_invalid_calendars_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Calendar(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("calendar", "label", "before"),
    [
        (Calendar("day"), "2024-03-15", "2023-03-15"),
        (Calendar("week"), "2024-W11", "2023-W11"),
        (Calendar("week"), "2021-W01", "2020-W01"),
        (Calendar("month"), "2024-03", "2023-03"),
        (Calendar("quarter"), "2024-Q1", "2023-Q1"),
        (Calendar("quarter", fiscal_year_start_month=4), "FY2025-Q1", "FY2024-Q1"),
        (Calendar("year"), "2024", "2023"),
        (Calendar("all"), "all", None),
    ],
)
def test_the_same_period_a_year_before(calendar: Calendar, label: str, before: str | None) -> None:
    assert pl.select(calendar.year_before(pl.lit(label))).item() == before
