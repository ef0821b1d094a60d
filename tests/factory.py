"""Fixture factory: one clean Salesforce-style opportunity export, and one fault at a time.

Every fixture is built in a test's tmp_path from `sample_rows()`; no hand-copied files. The
writers are deliberately plain Python (tests may loop; the loader may not).
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Mapping, Sequence
from copy import deepcopy
from pathlib import Path
from typing import Any

import polars as pl

from crmkpi.config import Config
from crmkpi.configure import parse_document
from crmkpi.load import LoadResult, load_all

# --- the clean sample ---------------------------------------------------------------------------

HEADERS = [
    "Opportunity ID",
    "Opportunity Name",
    "Account ID",
    "Stage",
    "Amount",
    "Probability (%)",
    "Created Date",
    "Close Date",
    "Opportunity Owner",
    "Type",
]
STAGES = ["Prospecting", "Negotiation", "Closed Won", "Closed Lost"]
STAGE_MAP = {
    "Prospecting": "open",
    "Negotiation": "open",
    "Closed Won": "won",
    "Closed Lost": "lost",
}
REPS = ["Ann Lee", "Bo Chen", "Cara Diaz"]
_SF_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def sf_id18(id15: str) -> str:
    """Salesforce's documented 15 -> 18 character id: a checksum of the upper-case positions."""
    suffix = ""
    for chunk in (id15[0:5], id15[5:10], id15[10:15]):
        index = sum(1 << i for i, char in enumerate(chunk) if "A" <= char <= "Z")
        suffix += _SF_SUFFIX[index]
    return id15 + suffix


_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def sf_id15(i: int) -> str:
    """A 15-char, case-sensitive opportunity id (mixed case, so the checksum matters)."""
    digits = ""
    for _ in range(4):
        i, rest = divmod(i, 62)
        digits = _ALNUM[rest] + digits
    return f"0065g00000{digits[:2]}x{digits[2:]}"


def sample_rows(n: int = 20) -> list[dict[str, str]]:
    """`n` clean deals as text cells, the way a Salesforce report export writes them."""
    rows = []
    for i in range(n):
        stage = STAGES[i % 4]
        closed = stage.startswith("Closed")
        rows.append(
            {
                "Opportunity ID": sf_id18(sf_id15(i)),
                "Opportunity Name": f"Deal {i + 1}",
                "Account ID": f"001A{i:04d}",
                "Stage": stage,
                "Amount": f"{1000 + 250 * i:.2f}",
                "Probability (%)": {"Prospecting": "10", "Negotiation": "60"}.get(
                    stage, "100" if stage == "Closed Won" else "0"
                ),
                "Created Date": f"1/{i % 28 + 1}/2024",
                "Close Date": f"3/{i % 28 + 1}/2024" if closed else "",
                "Opportunity Owner": REPS[i % 3],
                "Type": "New Business" if i % 2 else "Existing Business",
            }
        )
    return rows


def sample_frame(n: int = 20) -> pl.DataFrame:
    return pl.DataFrame(sample_rows(n), schema=dict.fromkeys(HEADERS, pl.String))


def deals_table(file: str | list[str] = "deals.csv", **overrides: Any) -> dict[str, Any]:
    """The `[tables.deals]` section mapping the sample's headers (overrides replace keys)."""
    table: dict[str, Any] = {
        "file": file,
        "dayfirst": False,
        "percent_scale": "points",
        "columns": {
            "deal_id": "Opportunity ID",
            "customer_id": "Account ID",
            "status": {"from": "Stage", "map": dict(STAGE_MAP)},
            "stage": "Stage",
            "amount": "Amount",
            "probability": {"from": "Probability (%)", "parse": "percent"},
            "created_at": "Created Date",
            "closed_at": "Close Date",
            "rep": "Opportunity Owner",
            "deal_type": {
                "from": "Type",
                "map": {"New Business": "new_business", "Existing Business": "upsell"},
            },
        },
    }
    table.update(overrides)
    return table


def config_doc(tables: Mapping[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"tables": deepcopy(dict(tables or {"deals": deals_table()}))}
    doc.update(top)
    return doc


def make_config(folder: Path, doc: Mapping[str, Any] | None = None) -> Config:
    return parse_document(doc if doc is not None else config_doc(), folder / "crmkpi.toml")


def load(folder: Path, doc: Mapping[str, Any] | None = None) -> LoadResult:
    return load_all(make_config(folder, doc), folder)


# --- TOML (no tomli_w in the environment; the config documents are small) ----------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
        )
    raise TypeError(type(value))


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_value(key)


def to_toml(doc: Mapping[str, Any]) -> str:
    """`[input]`, `[settings]`, `[tables.<name>]` and `[tables.<name>.columns]` sections."""
    out: list[str] = []

    def section(name: str, body: Mapping[str, Any]) -> None:
        out.append(f"[{name}]")
        out.extend(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in body.items())
        out.append("")

    for key, value in doc.items():
        if key != "tables":
            section(key, value)
            continue
        for name, table in value.items():
            section(f"tables.{name}", {k: v for k, v in table.items() if k != "columns"})
            if "columns" in table:
                section(f"tables.{name}.columns", table["columns"])
    return "\n".join(out)


def write_config(folder: Path, doc: Mapping[str, Any] | None = None) -> Path:
    path = folder / "crmkpi.toml"
    path.write_text(to_toml(doc if doc is not None else config_doc()), encoding="utf-8")
    return path


# --- faults on rows -----------------------------------------------------------------------------


def inject(rows: list[dict[str, str]], k: int, column: str, value: str) -> list[dict[str, str]]:
    """A copy of `rows` with row k's `column` set to `value`."""
    out = [dict(r) for r in rows]
    out[k][column] = value
    return out


# --- CSV ----------------------------------------------------------------------------------------


def _quote(cell: str, delimiter: str) -> str:
    if any(c in cell for c in (delimiter, '"', "\n", "\r")):
        return '"' + cell.replace('"', '""') + '"'
    return cell


def csv_text(
    rows: Sequence[Mapping[str, str]] | None = None,
    headers: Sequence[str] | None = None,
    *,
    delimiter: str = ",",
    newline: str = "\n",
    title_rows: Sequence[str] = (),
    footer: Sequence[str] = (),
    sep_line: bool = False,
    trailing_newline: bool = True,
) -> str:
    """The export as text; `footer` lines are appended verbatim after the data."""
    rows = sample_rows() if rows is None else rows
    headers = list(headers or HEADERS)
    lines = [f"sep={delimiter}"] if sep_line else []
    lines += list(title_rows)
    lines.append(delimiter.join(_quote(h, delimiter) for h in headers))
    for row in rows:
        lines.append(delimiter.join(_quote(row.get(h, ""), delimiter) for h in headers))
    lines += list(footer)
    return newline.join(lines) + (newline if trailing_newline else "")


def write_csv(
    path: Path,
    rows: Sequence[Mapping[str, str]] | None = None,
    headers: Sequence[str] | None = None,
    *,
    encoding: str = "utf-8",
    bom: bool = False,
    **layout: Any,
) -> Path:
    """Write the export with a chosen encoding (`bom` adds the encoding's BOM)."""
    text = csv_text(rows, headers, **layout)
    data = text.encode(encoding)
    if bom:
        data = ("\ufeff".encode(encoding) if encoding != "utf-8" else b"\xef\xbb\xbf") + data
    path.write_bytes(data)
    return path


def salesforce_footer(n: int, *, blank_lines: int = 1, columns: int = 0) -> list[str]:
    """What a Salesforce report export appends after the data."""
    pad = "," * columns
    return [""] * blank_lines + [
        f'"Grand Totals ({n} records)"{pad}',
        "",
        '"Confidential Information - Do Not Distribute"',
        '"Copyright (c) 2000-2024 salesforce.com, inc. All rights reserved."',
    ]


def truncate(path: Path, keep_bytes: int) -> Path:
    """A partial download: only the first `keep_bytes` bytes."""
    path.write_bytes(path.read_bytes()[:keep_bytes])
    return path


def truncate_mid_row(path: Path, row: int) -> Path:
    """Cut the file half-way through data row `row` (1-based, after the header)."""
    data = path.read_bytes()
    starts = [0] + [m.end() for m in re.finditer(b"\n", data)]
    start, end = starts[row], starts[row + 1]
    return truncate(path, start + (end - start) // 2)


# --- XLSX ---------------------------------------------------------------------------------------


def write_xlsx(
    path: Path,
    rows: Sequence[Mapping[str, str]] | None = None,
    headers: Sequence[str] | None = None,
    *,
    sheet: str = "Opportunities",
    title_rows: Sequence[str] = (),
    totals_row: Sequence[str] | None = None,
    before: Mapping[str, Sequence[Sequence[str]]] | None = None,
    after: Mapping[str, Sequence[Sequence[str]]] | None = None,
    hidden: Sequence[str] = (),
    formulas: Mapping[str, str] | None = None,
    numbers: Mapping[str, float] | None = None,
    date_1904: bool = False,
) -> Path:
    """A workbook holding the export on `sheet`; `before`/`after` add other sheets around it,
    `hidden` hides sheets by name, `formulas` writes `{cell: formula}` and `numbers`
    `{cell: number}` on the data sheet (over the text cells)."""
    import xlsxwriter

    rows = sample_rows() if rows is None else rows
    headers = list(headers or HEADERS)
    workbook = xlsxwriter.Workbook(
        str(path),
        {"strings_to_formulas": False, "strings_to_urls": False, "date_1904": date_1904},
    )

    def add(name: str, grid: Sequence[Sequence[str]]) -> None:
        worksheet = workbook.add_worksheet(name)
        for r, cells in enumerate(grid):
            for c, value in enumerate(cells):
                worksheet.write_string(r, c, value)
        if name in hidden:
            worksheet.hide()

    for name, grid in (before or {}).items():
        add(name, grid)
    grid = [[t] for t in title_rows] + [headers]
    grid += [[row.get(h, "") for h in headers] for row in rows]
    if totals_row is not None:
        grid.append(list(totals_row))
    worksheet = workbook.add_worksheet(sheet)
    for r, cells in enumerate(grid):
        for c, value in enumerate(cells):
            if value != "":
                worksheet.write_string(r, c, value)
    for cell, formula in (formulas or {}).items():
        worksheet.write_formula(cell, formula)
    for cell, number in (numbers or {}).items():
        worksheet.write_number(cell, number)
    if sheet in hidden:
        worksheet.hide()
    else:
        worksheet.activate()  # Excel will not hide the active sheet; the data sheet is it
    for name, other in (after or {}).items():
        add(name, other)
    workbook.close()
    return path


def patch_xlsx(path: Path, member: str, change: Callable[[bytes], bytes]) -> Path:
    """Rewrite one zip member of a workbook (e.g. `xl/worksheets/sheet1.xml`)."""
    source = zipfile.ZipFile(io.BytesIO(path.read_bytes()))
    out = io.BytesIO()
    with source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == member:
                data = change(data)
            target.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
    path.write_bytes(out.getvalue())
    return path


def strip_cached_values(xml: bytes) -> bytes:
    """Formula cells as written by tools that never calculate: `<f>` without `<v>`."""
    return re.sub(rb"(<f>[^<]*</f>)<v>[^<]*</v>", rb"\1", xml)


def add_entities(xml: bytes) -> bytes:
    """A billion-laughs style DTD in front of the root element."""
    dtd = b'<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">]>'
    return re.sub(rb"(<\?xml[^>]*\?>)", rb"\1" + dtd, xml, count=1)


def full_dimension(xml: bytes) -> bytes:
    return re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:XFD1048576"', xml, count=1)


# --- Parquet ------------------------------------------------------------------------------------


def write_parquet(path: Path, frame: pl.DataFrame | None = None) -> Path:
    (sample_frame() if frame is None else frame).write_parquet(path)
    return path


def corrupt_parquet(path: Path, keep_fraction: float = 0.6) -> Path:
    """A truncated Parquet file (no `PAR1` footer)."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep_fraction)])
    return path


# --- localised variants -------------------------------------------------------------------------

CHINESE_HEADERS = {
    "Opportunity ID": "商机编号",
    "Opportunity Name": "商机名称",
    "Account ID": "客户编号",
    "Stage": "商机阶段",
    "Amount": "商机金额（元）",
    "Probability (%)": "赢单率（%）",
    "Created Date": "创建时间",
    "Close Date": "预计成交日期",
    "Opportunity Owner": "负责人",
    "Type": "商机类型",
}
CHINESE_REPS = ["张伟", "王芳", "李娜"]


def with_text(
    rows: list[dict[str, str]], names: Sequence[str], reps: Sequence[str]
) -> list[dict[str, str]]:
    """The sample with other deal names (`names[i % len]` + number) and rep names."""
    return [
        dict(
            row,
            **{
                "Opportunity Name": f"{names[i % len(names)]} {i + 1}",
                "Opportunity Owner": reps[i % len(reps)],
            },
        )
        for i, row in enumerate(rows)
    ]


def chinese_rows(n: int = 20) -> list[dict[str, str]]:
    return with_text(sample_rows(n), ["华东区续约项目", "北京分公司采购"], CHINESE_REPS)


def rename(rows: Sequence[Mapping[str, str]], headers: Mapping[str, str]) -> list[dict[str, str]]:
    return [{headers.get(k, k): v for k, v in row.items()} for row in rows]


def write_text(path: Path, text: str, encoding: str = "utf-8") -> Path:
    """Raw text, for faults the CSV writer would quote away."""
    path.write_bytes(text.encode(encoding))
    return path


def summary_report(rows: Sequence[Mapping[str, str]]) -> str:
    """A Salesforce summary report grouped by Stage: the group value only on the first row of a
    group, a Subtotal row after each group, Grand Totals at the end."""
    headers = ["Stage", *(h for h in HEADERS if h != "Stage")]
    lines = [",".join(headers)]
    for stage in STAGES:
        group = [r for r in rows if r["Stage"] == stage]
        for i, row in enumerate(group):
            cells = [stage if i == 0 else ""] + [_quote(row[h], ",") for h in headers[1:]]
            lines.append(",".join(cells))
        total = sum(float(r["Amount"]) for r in group)
        lines.append("Subtotal,,,," + f"{total:.2f}" + "," * (len(headers) - 5))
    lines += ["", f'"Grand Totals ({len(rows)} records)"']
    return "\n".join(lines) + "\n"
