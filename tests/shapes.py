"""Fixtures shaped like nine real exports written by others (headers, value spellings, quirks),
built small and by hand so that every figure a test expects can be worked out beside it.

Each shape gives its rows (text cells, as the export writes them), its headers, and the
`[tables.<name>]` section a user writes for it, with no pre-processing. The real files are not
copied in (their licences are mostly unstated).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.factory import write_csv, write_xlsx

# --- UCI Online Retail: order lines, quantity and unit price but no line total; cancellations
# are invoices starting with C and negative quantities; split into one CSV per day -------------

ONLINE_RETAIL_HEADERS = [
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
]


def _retail(invoice: str, quantity: str, when: str, price: str, customer: str) -> dict[str, str]:
    return dict(
        zip(
            ONLINE_RETAIL_HEADERS,
            [invoice, "85123A", "WHITE HANGING HEART", quantity, when, price, customer, "UK"],
            strict=True,
        )
    )


ONLINE_RETAIL_DAYS = {
    "2010-12-01": [
        _retail("536365", "6", "12/1/2010 8:26", "2.55", "17850"),  # 15.30
        _retail("536365", "6", "12/1/2010 8:26", "3.39", "17850"),  # 20.34
        _retail("C536379", "-1", "12/1/2010 9:41", "27.50", "14527"),  # a cancellation
        _retail("536380", "24", "12/1/2010 9:41", "0.85", "17809"),  # 20.40
    ],
    "2010-12-02": [
        _retail("536381", "12", "12/2/2010 9:00", "1.25", "17850"),  # 15.00
        _retail("C536383", "-2", "12/2/2010 9:49", "4.65", "15311"),  # a cancellation
    ],
}
ONLINE_RETAIL_TABLE: dict[str, Any] = {
    "file": "*.csv",
    "dayfirst": False,
    "columns": {
        "order_id": "InvoiceNo",
        "customer_id": "CustomerID",
        "ordered_at": "InvoiceDate",
        "amount": {"expr": '"Quantity" * "UnitPrice"'},
        "quantity": "Quantity",
        "status": {
            "expr": 'CASE WHEN "Quantity" < 0 OR "InvoiceNo" LIKE \'C%\' '
            "THEN 'refunded' ELSE 'completed' END"
        },
        "region": "Country",
    },
}


def write_online_retail(folder: Path) -> None:
    """One CSV per day, the same header in each (as the 305-file split writes them)."""
    for day, rows in ONLINE_RETAIL_DAYS.items():
        write_csv(folder / f"online_retail_{day}.csv", rows, ONLINE_RETAIL_HEADERS)


# --- Sample Superstore: one row per order line, the customer repeated on every line, sales and
# profit but no cost ------------------------------------------------------------------------

SUPERSTORE_HEADERS = [
    "Row ID",
    "Order ID",
    "Order Date",
    "Customer ID",
    "Customer Name",
    "Segment",
    "Region",
    "Category",
    "Sales",
    "Quantity",
    "Profit",
]


def _store(row: int, order: str, when: str, customer: str, name: str, segment: str,
           category: str, sales: str, quantity: str, profit: str) -> dict[str, str]:  # fmt: skip
    cells = [str(row), order, when, customer, name, segment, "South", category, sales, quantity,
             profit]  # fmt: skip
    return dict(zip(SUPERSTORE_HEADERS, cells, strict=True))


SUPERSTORE_ROWS = [
    _store(1, "CA-2016-152156", "11/8/2016", "CG-12520", "Claire Gute", "Consumer", "Furniture",
           "261.96", "2", "41.9136"),
    _store(2, "CA-2016-152156", "11/8/2016", "CG-12520", "Claire Gute", "Consumer", "Furniture",
           "731.94", "3", "219.582"),
    _store(3, "CA-2016-138688", "6/12/2016", "DV-13045", "Darrin Van Huff", "Corporate",
           "Office Supplies", "14.62", "2", "6.8714"),
    _store(4, "US-2015-108966", "10/11/2015", "SO-20335", "Sean O'Donnell", "Consumer",
           "Furniture", "957.5775", "5", "-383.031"),
    _store(5, "US-2015-108966", "10/11/2015", "SO-20335", "Sean O'Donnell", "Consumer",
           "Office Supplies", "22.368", "2", "2.5164"),
]  # fmt: skip
SUPERSTORE_ORDERS: dict[str, Any] = {
    "file": "superstore.csv",
    "dayfirst": False,
    "columns": {
        "order_id": "Order ID",
        "customer_id": "Customer ID",
        "ordered_at": "Order Date",
        "amount": "Sales",
        "quantity": "Quantity",
        "cost": {"expr": '"Sales" - "Profit"'},
        "category": "Category",
    },
}
SUPERSTORE_CUSTOMERS: dict[str, Any] = {
    "file": "superstore.csv",
    "columns": {"customer_id": "Customer ID", "name": "Customer Name", "segment": "Segment"},
}


def write_superstore(folder: Path, rows: list[dict[str, str]] | None = None) -> None:
    write_csv(folder / "superstore.csv", rows or SUPERSTORE_ROWS, SUPERSTORE_HEADERS)


# --- Asterisk CDR (Master.csv): call start and answer timestamps, no wait -----------------------

CDR_HEADERS = [
    "accountcode",
    "src",
    "dst",
    "dcontext",
    "channel",
    "start",
    "answer",
    "end",
    "duration",
    "billsec",
    "disposition",
    "uniqueid",
]


def _cdr(start: str, answer: str, end: str, disposition: str, uid: str) -> dict[str, str]:
    cells = ["", "2000", "100", "from-internal", "SIP/2000-01", start, answer, end, "", "",
             disposition, uid]  # fmt: skip
    return dict(zip(CDR_HEADERS, cells, strict=True))


CDR_ROWS = [
    _cdr("2024-03-01 09:00:00", "2024-03-01 09:00:12", "2024-03-01 09:05:00", "ANSWERED", "1.1"),
    _cdr("2024-03-01 09:10:00", "2024-03-01 09:10:30", "2024-03-01 09:12:00", "ANSWERED", "1.2"),
    _cdr("2024-03-01 09:20:00", "", "2024-03-01 09:20:40", "NO ANSWER", "1.3"),
    _cdr("2024-03-02 10:00:00", "", "2024-03-02 10:00:05", "BUSY", "1.4"),
]
CDR_TABLE: dict[str, Any] = {
    "file": "Master.csv",
    "columns": {
        "call_id": "uniqueid",
        "offered_at": "start",
        "outcome": {
            "from": "disposition",
            "map": {
                "ANSWERED": "answered",
                "NO ANSWER": "abandoned",
                "BUSY": "blocked",
                "FAILED": "blocked",
            },
        },
        "wait_seconds": {"expr": '"answer" - "start"'},
        "talk_seconds": {"expr": '"end" - "answer"'},
    },
}


def write_cdr(folder: Path) -> None:
    write_csv(folder / "Master.csv", CDR_ROWS, CDR_HEADERS)


# --- Chinese pharmacy sales (XLSX): a document number per line, the date followed by a weekday
# (written wrong in the real file: 星期五 for Monday 2018-01-01), refunds as negative lines ------

PHARMACY_HEADERS = [
    "单据号",
    "销售日期",
    "社保卡号",
    "商品编码",
    "商品名称",
    "销售数量",
    "应收金额",
    "实收金额",
]


def _sale(
    doc: str, when: str, card: str, name: str, qty: str, due: str, paid: str
) -> dict[str, str]:
    return dict(
        zip(PHARMACY_HEADERS, [doc, when, card, "236701", name, qty, due, paid], strict=True)
    )


PHARMACY_ROWS = [
    _sale("1616528", "2018-01-01 星期五", "001616528", "强力VC银翘片", "6", "82.8", "69"),
    _sale("1616528", "2018-01-01 星期五", "001616528", "清热解毒口服液", "1", "28", "24.64"),
    _sale("12602828", "2018-01-02 星期六", "0012602828", "感康", "2", "16.8", "15"),
    # a refund
    _sale("10070343428", "2018-01-06 星期三", "0010070343428", "氨氯地平片", "-1", "-34.5", "-31"),
    _sale("101554328", "2018-01-02 星期六", "00101554328", "开博通", "1", "28", "28"),
]  # fmt: skip
# revenue (completed lines, 实收金额): 69 + 24.64 + 15 + 28 = 136.64; refunded 31


def write_pharmacy(folder: Path, rows: list[dict[str, str]] | None = None) -> None:
    write_xlsx(
        folder / "朝阳医院2018年销售数据.xlsx",
        rows or PHARMACY_ROWS,
        PHARMACY_HEADERS,
        sheet="Sheet1",
    )
