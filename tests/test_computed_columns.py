"""Computed columns (`{ expr = "..." }`): SQL expressions over an export's headers, on fixtures
shaped like Online Retail, Superstore and an Asterisk CDR. Expected figures are worked out by
hand beside each assertion."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from crmkpi.config import ConfigError, parse_config
from crmkpi.errors import EXIT_BAD_CONFIG
from crmkpi.load import LoadResult
from tests import factory as fx
from tests import shapes
from tests.kpi_helpers import kpis, value


def loaded(folder: Path, tables: dict[str, Any]) -> LoadResult:
    result = fx.load(folder, {"tables": tables})
    assert not result.failures, result.failures
    return result


def config_error(tables: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config({"tables": tables}, Path("crmkpi.toml"))
    assert caught.value.exit_code == EXIT_BAD_CONFIG
    return str(caught.value)


def retail_orders(**columns: Any) -> dict[str, Any]:
    table = {**shapes.ONLINE_RETAIL_TABLE}
    table["columns"] = {**table["columns"], **columns}
    return {"orders": table}


def test_online_retail_line_totals_and_cancellations_as_refunds(tmp_path: Path) -> None:
    shapes.write_online_retail(tmp_path)
    orders = loaded(tmp_path, retail_orders()).tables["orders"]
    # every line is kept: the cancellations are refunds, not quarantined errors
    assert (orders.report.rows_read, orders.report.rows_used) == (6, 6)
    assert orders.report.rows_quarantined == 0
    by_invoice = orders.frame.group_by("order_id").agg(pl.col("amount").sum(), pl.first("status"))
    amounts = dict(by_invoice.select("order_id", "amount").iter_rows())
    assert amounts["536365"] == pytest.approx(6 * 2.55 + 6 * 3.39)  # 35.64
    assert amounts["C536379"] == pytest.approx(-27.50)
    statuses = dict(by_invoice.select("order_id", "status").iter_rows())
    assert statuses == {
        "536365": "completed",
        "C536379": "refunded",
        "536380": "completed",
        "536381": "completed",
        "C536383": "refunded",
    }
    out = kpis({"orders": orders.frame}, period="month", as_of="2010-12-31")
    # revenue: 15.30 + 20.34 + 20.40 + 15.00 = 71.04 (the refunds are never revenue)
    assert value(out, "revenue", "2010-12") == pytest.approx(71.04)
    # 2 refunded invoices of 5; refunded 27.50 + 2 x 4.65 = 36.80
    assert value(out, "refund_rate", "2010-12") == pytest.approx(2 / 5)
    assert value(out, "refunded_amount", "2010-12") == pytest.approx(36.80)


def test_a_cell_the_expression_cannot_read_quarantines_its_row(tmp_path: Path) -> None:
    rows = [dict(r) for r in shapes.ONLINE_RETAIL_DAYS["2010-12-01"]]
    rows[3]["UnitPrice"] = "n/a price"
    fx.write_csv(tmp_path / "day.csv", rows, shapes.ONLINE_RETAIL_HEADERS)
    orders = loaded(tmp_path, retail_orders()).tables["orders"]
    assert orders.report.rows_used == 3
    rejected = orders.rejected.row(0, named=True)
    assert (rejected["source_line"], rejected["column"]) == (5, "amount")
    assert rejected["check"] == "expression_input_unreadable"
    assert "expression reads" in rejected["reason"]


def test_a_null_result_for_a_required_column_is_quarantined_with_its_reason(
    tmp_path: Path,
) -> None:
    rows = [dict(r) for r in shapes.ONLINE_RETAIL_DAYS["2010-12-01"]]
    rows[0]["Quantity"] = ""
    fx.write_csv(tmp_path / "day.csv", rows, shapes.ONLINE_RETAIL_HEADERS)
    orders = loaded(tmp_path, retail_orders()).tables["orders"]
    assert orders.report.quarantined_by_check == {"expression_null": 1}
    assert orders.rejected["source_line"].to_list() == [2]
    assert "gives no value" in orders.rejected["reason"][0]


def test_superstore_cost_from_sales_less_profit_gives_gross_profit(tmp_path: Path) -> None:
    shapes.write_superstore(tmp_path)
    orders = loaded(tmp_path, {"orders": shapes.SUPERSTORE_ORDERS}).tables["orders"]
    out = kpis({"orders": orders.frame}, period="year", as_of="2016-12-31")
    # 2016: sales 261.96 + 731.94 + 14.62 = 1008.52, profit 41.9136 + 219.582 + 6.8714 = 268.367
    assert value(out, "revenue", "2016") == pytest.approx(1008.52)
    assert value(out, "gross_profit", "2016") == pytest.approx(268.367)
    # 2015: 957.5775 + 22.368 = 979.9455 of sales at a loss of 383.031 - 2.5164 = 380.5146
    assert value(out, "gross_profit", "2015") == pytest.approx(-380.5146)


def test_cdr_wait_and_talk_seconds_from_timestamps(tmp_path: Path) -> None:
    shapes.write_cdr(tmp_path)
    calls = loaded(tmp_path, {"calls": shapes.CDR_TABLE}).tables["calls"]
    waits = dict(calls.frame.select("call_id", "wait_seconds").iter_rows())
    # answered 12 s and 30 s after the start; the unanswered calls have no wait
    assert waits == {"1.1": 12.0, "1.2": 30.0, "1.3": None, "1.4": None}
    out = kpis({"calls": calls.frame}, period="month", as_of="2024-03-31")
    assert value(out, "average_speed_of_answer", "2024-03") == pytest.approx(21.0)
    # talk: 09:00:12..09:05:00 = 288 s and 09:10:30..09:12:00 = 90 s
    assert value(out, "average_talk_time", "2024-03") == pytest.approx(189.0)
    # offered 4, blocked 1 (BUSY): answered 2 of 3
    assert value(out, "answer_rate", "2024-03") == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("expr", "words"),
    [
        ('SUM("Quantity")', "aggregate"),
        ('"Quantity" - AVG("Quantity") ', "aggregate"),
        ("ROW_NUMBER() OVER ()", "aggregate, window"),
        ('LAG("Quantity") OVER (ORDER BY "InvoiceNo")', "window"),
        ('"InvoiceNo" IN (SELECT 1)', "subquery"),
        ("CURRENT_DATE", "clock"),
        ('"Quantity" * ', "not a SQL expression"),
        ("__import__('os').system('true')", "not a SQL expression"),
        ("'a constant'", "reads no header"),
    ],
)
def test_an_expression_outside_plain_sql_is_a_config_error(expr: str, words: str) -> None:
    message = config_error(retail_orders(amount={"expr": expr}))
    assert message.startswith("tables.orders.columns.amount.expr: ")
    assert words in message


def test_an_expression_naming_an_unknown_header_is_a_config_error(tmp_path: Path) -> None:
    shapes.write_online_retail(tmp_path)
    result = fx.load(tmp_path, {"tables": retail_orders(amount={"expr": '"Qty" * "UnitPrice"'})})
    error = result.failures[0].error
    assert isinstance(error, ConfigError) and error.exit_code == EXIT_BAD_CONFIG
    assert str(error).startswith("tables.orders.columns.amount.expr: ")
    assert "'Qty'" in str(error) and "'Quantity'" in str(error)


def test_expr_takes_no_source_keys() -> None:
    message = config_error(retail_orders(amount={"expr": '"Quantity"', "from": "Quantity"}))
    assert "tables.orders.columns.amount" in message and "from" in message


@pytest.mark.parametrize("spec", [
    {"from": ["Quantity", "UnitPrice"], "parse": "money"},
    {"from": ["Quantity", "UnitPrice"]},  # amount is money by contract
])  # fmt: skip
def test_joining_cells_into_a_number_is_a_config_error_pointing_to_expr(
    spec: dict[str, Any],
) -> None:
    message = config_error(retail_orders(amount=spec))
    assert message.startswith("tables.orders.columns.amount.from: ")
    assert 'expr = \'"Quantity" * "UnitPrice"\'' in message


def test_joining_a_date_and_a_time_still_works() -> None:
    tables = retail_orders(ordered_at={"from": ["InvoiceDate", "InvoiceNo"]})
    parse_config({"tables": tables}, Path("crmkpi.toml"))  # text-like kinds join as before


def test_the_cli_exits_78_on_a_bad_expression(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from crmkpi.cli import app

    shapes.write_online_retail(tmp_path)
    fx.write_config(tmp_path, {"tables": retail_orders(amount={"expr": 'SUM("Quantity")'})})
    result = CliRunner().invoke(app, ["validate", str(tmp_path)])
    assert result.exit_code == EXIT_BAD_CONFIG
    assert "tables.orders.columns.amount.expr" in result.output
