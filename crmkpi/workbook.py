"""kpis.xlsx: a workbook a sales manager can open and trust.

Sheets: a summary (periods down, metrics across, native trend charts for the headline KPIs),
one sheet per breakdown, the metric dictionary, the data-quality report and run info. Number
formats follow the metric's unit. Every cell is a value: no formulas, no hyperlinks, whatever the
text says.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl
import xlsxwriter

from crmkpi.labels import DIMENSION_TITLES, FAMILY_TITLES, LABELS
from crmkpi.metrics import REGISTRY
from crmkpi.presentation import excel_format, title, units, wide
from crmkpi.publish import OutputIOError

MAX_CELL_CHARS = 32_767
MAX_SHEET_ROWS = 1_048_575  # Excel's 1,048,576 rows less the header row
TRUNCATION_MARK = "…[truncated]"
_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")


def sheet_names(wanted: Sequence[str]) -> list[str]:
    """Excel-safe sheet names: no `[]:*?/\\`, at most 31 characters, unique (case-blind)."""
    seen: set[str] = set()
    return [
        unused_sheet_name(_BAD_SHEET_CHARS.sub("_", raw).strip("'") or "Sheet", seen)
        for raw in wanted
    ]


def unused_sheet_name(base: str, seen: set[str]) -> str:
    """`base` cut to Excel's 31 characters, or `base (2)`, `base (3)`, ... when a sheet of that
    name (case-blind) is in `seen`; the name chosen is added to `seen`."""
    name, counter = base[:31], 2
    while name.casefold() in seen:
        suffix = f" ({counter})"
        name, counter = base[: 31 - len(suffix)] + suffix, counter + 1
    seen.add(name.casefold())
    return name


def _cell(value: Any, warnings: list[str], book: str) -> Any:
    if isinstance(value, str) and len(value) > MAX_CELL_CHARS:
        warnings.append(f"a text cell over 32,767 characters was truncated in {book}")
        return value[: MAX_CELL_CHARS - len(TRUNCATION_MARK)] + TRUNCATION_MARK
    return value


class _Writer:
    def __init__(self, path: Path, created: dt.datetime, lang: str) -> None:
        self.book = xlsxwriter.Workbook(
            str(path),
            {
                "strings_to_formulas": False,
                "strings_to_urls": False,
                "strings_to_numbers": False,
                "nan_inf_to_errors": False,
                "default_date_format": "yyyy-mm-dd",
                "constant_memory": False,
            },
        )
        self.book.set_properties({"created": created, "title": "crmkpi KPIs"})
        self.lang = lang
        self.name = path.name
        self.header = self.book.add_format(
            {"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True, "valign": "top"}
        )
        self.date = self.book.add_format({"num_format": "yyyy-mm-dd"})
        self.formats: dict[str, Any] = {}
        self.warnings: list[str] = []
        self.sheet_names: set[str] = set()

    def number(self, pattern: str) -> Any:
        if pattern not in self.formats:
            self.formats[pattern] = self.book.add_format({"num_format": pattern})
        return self.formats[pattern]

    def table(
        self,
        name: str,
        headers: Sequence[str],
        rows: Sequence[Sequence[Any]],
        formats: Sequence[Any | None] | None = None,
        widths: Sequence[int] | None = None,
    ) -> Any:
        """Write a table on sheet `name`, continued on `name (2)`, ... past Excel's row limit
        (said in the warnings, so the manifest tells); returns the first sheet."""
        chunks = [rows[i : i + MAX_SHEET_ROWS] for i in range(0, len(rows), MAX_SHEET_ROWS)]
        sheets = [self._sheet(name, headers, chunk, formats, widths) for chunk in chunks or [[]]]
        if len(sheets) > 1:
            self.warnings.append(
                f"{self.name}: {len(rows):,} rows of {name!r} exceed a sheet's "
                f"{MAX_SHEET_ROWS:,}; continued on {', '.join(repr(s.name) for s in sheets[1:])}"
            )
        return sheets[0]

    def _sheet(
        self,
        name: str,
        headers: Sequence[str],
        rows: Sequence[Sequence[Any]],
        formats: Sequence[Any | None] | None,
        widths: Sequence[int] | None,
    ) -> Any:
        name = unused_sheet_name(name, self.sheet_names)
        sheet = self.book.add_worksheet(name)
        failed = sheet.write_row(
            0, 0, [_cell(h, self.warnings, self.name) for h in headers], self.header
        )
        for r, row in enumerate(rows, start=1):
            for c, value in enumerate(row):
                fmt = formats[c] if formats else None
                value = _cell(value, self.warnings, self.name)
                if value is None:
                    continue
                if isinstance(value, dt.date | dt.datetime):
                    failed |= sheet.write_datetime(r, c, value, fmt or self.date)
                elif isinstance(value, bool):
                    failed |= sheet.write_boolean(r, c, value)
                elif isinstance(value, int | float):
                    failed |= sheet.write_number(r, c, value, fmt)
                else:
                    failed |= sheet.write_string(r, c, str(value))
        if failed:  # xlsxwriter returns -1 (outside the sheet) or -2 (too long), never raises
            raise OutputIOError(f"{self.name}: sheet {name!r} refused cells; nothing published")
        sheet.freeze_panes(1, 0)
        if rows:
            sheet.autofilter(0, 0, len(rows), len(headers) - 1)
        for c, header in enumerate(headers):
            width = widths[c] if widths else max(10, min(40, len(str(header)) + 2))
            sheet.set_column(c, c, width)
        return sheet


def write_workbook(
    path: Path,
    kpis: pl.DataFrame,
    dimensions: Sequence[str],
    lang: str,
    quality: Sequence[Mapping[str, Any]],
    run_info: Sequence[tuple[str, Any]],
    created: dt.datetime,
    headline: Sequence[str],
) -> list[str]:
    """Write the workbook, with trend charts of the `headline` metrics; returns warnings (for
    example truncated cells)."""
    labels = LABELS[lang]
    # English headers keep the dimension's own name, as kpis.csv's columns do
    dimension = DIMENSION_TITLES[lang] if lang != "en" else {}
    unit_of = units(kpis)
    writer = _Writer(path, created, lang)
    grains = kpis["grain"].unique(maintain_order=True).to_list()
    breakdowns = [g for g in grains if g != "total"]
    keys = ["summary_sheet", *breakdowns, "metrics_sheet", "quality", "run_sheet"]
    wanted = [
        labels["summary_sheet"],
        *["+".join(dimension.get(d, d) for d in g.split("+")) for g in breakdowns],
        labels["metrics_sheet"],
        labels["quality"],
        labels["run_sheet"],
    ]
    names = dict(zip(keys, sheet_names(wanted), strict=True))

    total = kpis.filter(pl.col("grain") == "total")
    summary_table, metrics = wide(total, ["period", "period_start", "period_end", "partial_period"])
    headers = [
        labels["period"],
        labels["start"],
        labels["end"],
        labels["partial_period"],
        *[title(m, lang) for m in metrics],
    ]
    formats = [
        None,
        None,
        None,
        None,
        *[writer.number(excel_format(m, unit_of[m])) for m in metrics],
    ]
    summary = writer.table(
        names["summary_sheet"],
        headers,
        summary_table.rows(),
        formats,
        [12, 11, 11, 8, *[16] * len(metrics)],
    )
    _charts(writer, summary, summary_table, metrics, headline, lang, len(headers))

    for grain in grains:
        if grain == "total":
            continue
        dims = grain.split("+")
        part = kpis.filter(pl.col("grain") == grain)
        breakdown, metrics = wide(part, ["period", *dims])
        headers = [
            labels["period"],
            *[dimension.get(d, d) for d in dims],
            *[title(m, lang) for m in metrics],
        ]
        formats = [None] * (1 + len(dims)) + [
            writer.number(excel_format(m, unit_of[m])) for m in metrics
        ]
        writer.table(
            names[grain],
            headers,
            breakdown.rows(),
            formats,
            [12, *[18] * len(dims), *[16] * len(metrics)],
        )

    dictionary = [
        (
            m.name,
            m.title_en,
            m.title_zh,
            FAMILY_TITLES[lang].get(m.family, m.family),
            m.unit,
            m.formula,
            {True: labels["higher"], False: labels["lower"], None: ""}[m.higher_is_better],
        )
        for m in REGISTRY.outputs()
    ]
    writer.table(
        names["metrics_sheet"],
        [
            labels[key]
            for key in ("metric", "title_en", "title_zh", "family", "unit", "formula", "better")
        ],
        dictionary,
        widths=[28, 30, 24, 12, 10, 80, 8],
    )
    quality_headers = [
        labels[key]
        for key in (
            "table",
            "rows_read",
            "rows_used",
            "rows_quarantined",
            "footer_rows",
            "rows_skipped",
            "rows_deduplicated",
            "reject_rate",
            "by_check",
        )
    ]
    quality_rows = [
        (
            q["table"],
            q["rows_read"],
            q["rows_used"],
            q["rows_quarantined"],
            q["footer_rows"],
            q["rows_skipped"],
            q["rows_deduplicated"],
            q["reject_rate"],
            "; ".join(f"{k} {v}" for k, v in q["quarantined_by_check"].items()),
        )
        for q in quality
    ]
    count = writer.number("#,##0")
    writer.table(
        names["quality"],
        quality_headers,
        quality_rows,
        [None, count, count, count, count, count, count, writer.number("0.00%"), None],
        [18, 11, 11, 13, 11, 11, 13, 11, 60],
    )
    writer.table(
        names["run_sheet"],
        [labels["item"], labels["value"]],
        [
            (
                labels.get(k, k),
                labels["none"] if v is None else v if isinstance(v, int | float) else str(v),
            )
            for k, v in run_info
        ],
        widths=[24, 80],
    )
    writer.book.close()
    return sorted(set(writer.warnings))


def _charts(
    writer: _Writer,
    sheet: Any,
    table: pl.DataFrame,
    metrics: list[str],
    headline: Sequence[str],
    lang: str,
    width: int,
) -> None:
    """Native line charts of the headline KPIs, beside the summary table."""
    rows = table.height
    if rows < 2:
        return
    anchor_row = 1
    for metric in [m for m in headline if m in metrics]:
        column = 4 + metrics.index(metric)
        chart = writer.book.add_chart({"type": "line"})
        chart.add_series(
            {
                "name": title(metric, lang),
                "categories": [sheet.name, 1, 0, rows, 0],
                "values": [sheet.name, 1, column, rows, column],
                "marker": {"type": "circle"},
            }
        )
        chart.set_title({"name": title(metric, lang)})
        chart.set_legend({"none": True})
        chart.set_size({"width": 480, "height": 240})
        sheet.insert_chart(anchor_row, width + 1, chart)
        anchor_row += 13


def write_simple_workbook(
    path: Path, frame: pl.DataFrame, name: str, created: dt.datetime
) -> list[str]:
    """A per-customer table (rfm, churn_risk, cohorts) as one plain sheet; returns warnings."""
    writer = _Writer(path, created, "en")
    formats = [
        writer.number("0.00") if dtype == pl.Float64 else None for dtype in frame.schema.values()
    ]
    writer.table(sheet_names([name])[0], frame.columns, frame.rows(), formats)
    writer.book.close()
    return sorted(set(writer.warnings))
