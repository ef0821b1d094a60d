"""The column key `date_format`: strftime formats for one column's dates, a trailing weekday
(`2018-01-01 星期五`, `2018-01-05 (Fri)`) ignored and never checked against the date."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.factory import load, write_csv
from tests.shapes import PHARMACY_HEADERS, PHARMACY_ROWS

COLUMNS = {"order_id": "单据号", "customer_id": "社保卡号", "amount": "实收金额"}


def _orders(ordered_at: Any) -> dict[str, Any]:
    status = "CASE WHEN \"销售数量\" < 0 THEN 'refunded' ELSE 'completed' END"
    columns = {**COLUMNS, "ordered_at": ordered_at, "status": {"expr": status}}
    return {"orders": {"file": "sales.csv", "columns": columns}}


def test_dates_with_a_chinese_weekday_parse_through_date_format(tmp_path: Path) -> None:
    write_csv(tmp_path / "sales.csv", PHARMACY_ROWS, PHARMACY_HEADERS)
    loaded = load(tmp_path, {"tables": _orders({"from": "销售日期", "date_format": "%Y-%m-%d"})})
    orders = loaded.tables["orders"]
    assert orders.report.rows_used == 5
    # the written weekday is wrong for 2018-01-01 (a Monday): the date wins
    assert sorted({str(d.date()) for d in orders.frame["ordered_at"]}) == [
        "2018-01-01",
        "2018-01-02",
        "2018-01-06",
    ]


def test_without_date_format_such_dates_are_quarantined(tmp_path: Path) -> None:
    write_csv(tmp_path / "sales.csv", PHARMACY_ROWS, PHARMACY_HEADERS)
    orders = load(tmp_path, {"tables": _orders("销售日期")}).tables["orders"]
    assert (orders.report.rows_used, orders.report.rows_quarantined) == (0, 5)


def test_an_english_weekday_and_a_list_of_formats(tmp_path: Path) -> None:
    rows = [
        {**PHARMACY_ROWS[0], "销售日期": "2018-01-05 (Fri)"},
        {**PHARMACY_ROWS[2], "销售日期": "2018年01月06日 Saturday"},
        {**PHARMACY_ROWS[4], "销售日期": "2018-01-07"},
    ]
    write_csv(tmp_path / "sales.csv", rows, PHARMACY_HEADERS)
    spec = {"from": "销售日期", "date_format": ["%Y-%m-%d", "%Y年%m月%d日"]}
    orders = load(tmp_path, {"tables": _orders(spec)}).tables["orders"]
    assert [str(d.date()) for d in orders.frame["ordered_at"]] == [
        "2018-01-05",
        "2018-01-06",
        "2018-01-07",
    ]


@pytest.mark.parametrize("fmt", ["%Y-%q", "2018-01-01", []])
def test_a_bad_date_format_is_a_config_error_naming_the_key(tmp_path: Path, fmt: Any) -> None:
    from crmkpi.errors import ConfigError

    write_csv(tmp_path / "sales.csv", PHARMACY_ROWS, PHARMACY_HEADERS)
    with pytest.raises(ConfigError, match=r"tables\.orders\.columns\.ordered_at\.date_format"):
        load(tmp_path, {"tables": _orders({"from": "销售日期", "date_format": fmt})})
