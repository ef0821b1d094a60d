"""`crmkpi init` on exports shaped like real ones: it proposes orders for order lines (computed
amounts, refund status), one glob for many daily files, the read keys a file needs, and checks
its proposal with `validate` before writing it."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from crmkpi import init
from crmkpi.cli import app
from crmkpi.configure import load_config
from crmkpi.load import load_all
from tests.factory import write_csv
from tests.shapes import (
    PHARMACY_HEADERS,
    PHARMACY_ROWS,
    SUPERSTORE_ROWS,
    write_cdr,
    write_online_retail,
    write_pharmacy,
    write_superstore,
)

runner = CliRunner()
REFUND_STATUS = (
    "CASE WHEN \"Quantity\" < 0 OR \"InvoiceNo\" LIKE 'C%' THEN 'refunded' ELSE 'completed' END"
)


def _init(folder: Path) -> tuple[dict[str, Any], str]:
    result = runner.invoke(app, ["init", str(folder)])
    assert result.exit_code == 0, result.output
    text = (folder / "crmkpi.toml").read_text(encoding="utf-8")
    return tomllib.loads(text), text


def _rows_used(folder: Path) -> dict[str, int]:
    """What `crmkpi validate` checks, table by table; it must exit 0 on the written config."""
    check = runner.invoke(app, ["validate", str(folder)])
    assert check.exit_code == 0, check.output
    loaded = load_all(load_config(folder / "crmkpi.toml"), folder)
    return {name: t.report.rows_used for name, t in loaded.tables.items()}


def _kpis(folder: Path, metrics: str) -> dict[str, float]:
    out = folder.parent / "out"
    computed = runner.invoke(
        app, ["compute", str(folder), "--period", "all", "--out", str(out), "--metrics", metrics,
              "--quiet"]
    )  # fmt: skip
    assert computed.exit_code == 0, computed.output
    kpis = pl.read_csv(out / "kpis.csv").filter(pl.col("grain") == "total")
    return dict(zip(kpis["metric"], kpis["value"], strict=True))


def test_online_retail_daily_files_become_one_glob_with_computed_amount(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    exports.mkdir()
    write_online_retail(exports)
    config, text = _init(exports)
    orders = config["tables"]["orders"]
    assert orders["file"] == "*.csv"
    assert orders["columns"]["amount"] == {"expr": '"Quantity" * "UnitPrice"'}
    assert orders["columns"]["status"] == {"expr": REFUND_STATUS}
    assert (orders["columns"]["order_id"], orders["columns"]["ordered_at"]) == (
        "InvoiceNo",
        "InvoiceDate",
    )
    assert "# 2 files with the same header row" in text
    assert _rows_used(exports) == {"orders": 6}  # 4 + 2 lines, the 2 cancellations kept
    kpis = _kpis(exports, "revenue,refunded_amount")
    # 6 * 2.55 + 6 * 3.39 + 24 * 0.85 + 12 * 1.25; refunds 27.50 + 2 * 4.65
    assert kpis["revenue"] == pytest.approx(71.04)
    assert kpis["refunded_amount"] == pytest.approx(36.80)


def test_a_glob_is_narrowed_to_the_files_of_one_header(tmp_path: Path) -> None:
    write_online_retail(tmp_path)
    write_csv(tmp_path / "notes.csv", [{"foo": "1", "bar": "2"}], ["foo", "bar"])
    config, text = _init(tmp_path)
    assert config["tables"]["orders"]["file"] == "online_retail_*.csv"
    assert "notes.csv: no canonical table recognised" in text
    assert _rows_used(tmp_path) == {"orders": 6}


def test_superstore_order_lines_map_to_orders_with_computed_cost(tmp_path: Path) -> None:
    write_superstore(tmp_path)
    config, _ = _init(tmp_path)
    orders = config["tables"]["orders"]
    assert orders["file"] == "superstore.csv"
    columns = orders["columns"]
    assert (columns["order_id"], columns["ordered_at"], columns["amount"]) == (
        "Order ID",
        "Order Date",
        "Sales",
    )
    assert columns["cost"] == {"expr": '"Sales" - "Profit"'}
    assert "status" not in columns  # no negative quantity: nothing is a refund
    assert _rows_used(tmp_path) == {"orders": 5}
    kpis = _kpis(tmp_path, "revenue,gross_profit")
    assert kpis["revenue"] == pytest.approx(261.96 + 731.94 + 14.62 + 957.5775 + 22.368)
    assert kpis["gross_profit"] == pytest.approx(41.9136 + 219.582 + 6.8714 - 383.031 + 2.5164)


def test_pharmacy_workbook_dates_with_a_weekday_get_a_date_format(tmp_path: Path) -> None:
    write_pharmacy(tmp_path)
    config, _ = _init(tmp_path)
    orders = config["tables"]["orders"]
    assert orders["file"] == "朝阳医院2018年销售数据.xlsx"
    columns = orders["columns"]
    assert columns["order_id"] == "单据号"
    assert columns["ordered_at"] == {"from": "销售日期", "date_format": "%Y-%m-%d"}
    assert columns["amount"] == "实收金额"
    assert columns["customer_id"] == "社保卡号"
    assert columns["status"] == {
        "expr": "CASE WHEN \"销售数量\" < 0 THEN 'refunded' ELSE 'completed' END"
    }
    assert _rows_used(tmp_path) == {"orders": 5}
    kpis = _kpis(tmp_path, "revenue,refunded_amount")
    assert kpis["revenue"] == pytest.approx(136.64)
    assert kpis["refunded_amount"] == pytest.approx(31)


def test_asterisk_cdr_gets_wait_and_talk_from_its_timestamps(tmp_path: Path) -> None:
    write_cdr(tmp_path)
    config, _ = _init(tmp_path)
    columns = config["tables"]["calls"]["columns"]
    assert columns["call_id"] == "uniqueid"
    assert columns["wait_seconds"] == {"expr": '"answer" - "start"'}
    assert columns["outcome"]["map"] == {
        "ANSWERED": "answered",
        "BUSY": "blocked",
        "NO ANSWER": "abandoned",
    }
    assert _rows_used(tmp_path) == {"calls": 4}


ENCODED = [
    (";", "utf-8", False, {"delimiter": ";"}),
    ("\t", "utf-8", False, {"delimiter": "tab"}),
    ("|", "utf-8", False, {"delimiter": "|"}),
    (",", "gb18030", False, {"encoding": "gb18030"}),
    (";", "gb18030", False, {"encoding": "gb18030", "delimiter": ";"}),
    (",", "utf-16-le", True, {"encoding": "utf-16"}),
    ("\t", "utf-16-le", False, {"encoding": "utf-16-le", "delimiter": "tab"}),
    (",", "utf-16-be", False, {"encoding": "utf-16-be"}),
    (",", "utf-8", True, {}),
]


@pytest.mark.parametrize(("delimiter", "encoding", "bom", "keys"), ENCODED)
def test_delimiter_and_encoding_are_detected(
    tmp_path: Path, delimiter: str, encoding: str, bom: bool, keys: dict[str, str]
) -> None:
    write_csv(
        tmp_path / "销售.csv",
        PHARMACY_ROWS,
        PHARMACY_HEADERS,
        delimiter=delimiter,
        encoding=encoding,
        bom=bom,
    )
    config, _ = _init(tmp_path)
    orders = config["tables"]["orders"]
    assert {k: orders[k] for k in ("encoding", "delimiter") if k in orders} == keys
    assert _rows_used(tmp_path) == {"orders": 5}


def test_a_headerless_file_is_said_and_left_to_map_by_position(tmp_path: Path) -> None:
    # CDNOW's sample file: space-aligned, no header (master_id sample_id yyyymmdd cds dollars)
    (tmp_path / "CDNOW_sample.txt").write_text(
        " 00004 0001 19970101  2  29.33\n 00004 0001 19970118  2  29.73\n", encoding="utf-8"
    )
    write_superstore(tmp_path)
    config, text = _init(tmp_path)
    assert "# CDNOW_sample.txt: no header row (its first row is data)" in text
    assert "# header_row = 0" in text
    assert '# delimiter = "whitespace"' in text
    assert "column_3 = '19970101'" in text
    assert list(config["tables"]) == ["orders"]
    assert _rows_used(tmp_path) == {"orders": 5}


def test_eight_digit_dates_get_a_date_format(tmp_path: Path) -> None:
    # CDNOW's master file: a header, space-aligned, dates as YYYYMMDD
    (tmp_path / "CDNOW_master.txt").write_text(
        " customer_id  date number_of_cds  dollar_value\n"
        " 00001 19970101  1   11.77\n 00002 19970112  1   12.00\n 00002 19970112  5   77.00\n",
        encoding="utf-8",
    )
    config, _ = _init(tmp_path)
    orders = config["tables"]["orders"]
    assert orders["delimiter"] == "whitespace"
    assert orders["columns"]["ordered_at"] == {"from": "date", "date_format": "%Y%m%d"}
    assert _rows_used(tmp_path) == {"orders": 3}
    assert _kpis(tmp_path, "revenue")["revenue"] == pytest.approx(100.77)


def _superstore_with(column: str, bad: dict[int, str]) -> list[dict[str, str]]:
    return [{**row, column: bad.get(i, row[column])} for i, row in enumerate(SUPERSTORE_ROWS)]


def test_an_optional_column_that_would_quarantine_rows_is_left_out(tmp_path: Path) -> None:
    write_superstore(tmp_path, _superstore_with("Quantity", {1: "lots", 3: "few"}))
    config, text = _init(tmp_path)
    assert config["tables"]["orders"]["columns"]["quantity"] == {"value": ""}
    assert (
        "# quantity not mapped (from 'Quantity'): 40% of sampled rows would be quarantined: "
        "not a number (line 3)"
    ) in text
    assert _rows_used(tmp_path) == {"orders": 5}


def test_a_required_column_that_fails_is_written_with_the_reason(tmp_path: Path) -> None:
    write_superstore(tmp_path, _superstore_with("Sales", {2: "abc", 4: "TBD"}))
    config, text = _init(tmp_path)
    assert config["tables"]["orders"]["columns"]["amount"] == "Sales"
    assert (
        "# REVIEW: orders: 40% of sampled rows would be quarantined (crmkpi validate allows 5%): "
        "amount not a money amount (line 4)"
    ) in text
    assert runner.invoke(app, ["validate", str(tmp_path)]).exit_code == 65


def test_the_check_reads_a_bounded_sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the first SAMPLE_ROWS rows of a file are checked: bad rows after them go unseen
    by init (validate still reads every row)."""
    monkeypatch.setattr(init, "SAMPLE_ROWS", 3)
    write_superstore(tmp_path, _superstore_with("Sales", {3: "n/a", 4: "TBD"}))
    _, text = _init(tmp_path)
    assert "would be quarantined" not in text
    assert "checked on the first 3 rows of each file" in text
    assert runner.invoke(app, ["validate", str(tmp_path)]).exit_code == 65


IBM_HEADERS = ["Customer", "State", "Customer Lifetime Value", "Response", "Coverage",
               "Effective To Date", "Renew Offer Type", "Sales Channel"]  # fmt: skip
IBM_ROWS = [
    dict(zip(IBM_HEADERS, cells, strict=True))
    for cells in (
        ["BU79786", "Washington", "2763.519279", "No", "Basic", "2/24/11", "Offer1", "Agent"],
        ["QZ44356", "Arizona", "6979.535903", "No", "Extended", "1/31/11", "Offer3", "Agent"],
        ["AI49188", "Nevada", "12887.43165", "Yes", "Premium", "2/19/11", "Offer1", "Web"],
    )
]  # fmt: skip


def test_ibm_marketing_customer_value_maps_to_campaign_members(tmp_path: Path) -> None:
    write_csv(tmp_path / "WA_Fn-UseC_-Marketing-Customer-Value-Analysis.csv", IBM_ROWS, IBM_HEADERS)
    config, _ = _init(tmp_path)
    columns = config["tables"]["campaign_members"]["columns"]
    assert columns == {
        "region": "State",
        "channel": "Sales Channel",
        "campaign_id": "Renew Offer Type",
        "member_id": "Customer",
        "targeted_at": "Effective To Date",
        "responded": "Response",
    }
    assert _rows_used(tmp_path) == {"campaign_members": 3}
