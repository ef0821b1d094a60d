"""Tidy tables for spreadsheets and data tools: CSV (UTF-8 with BOM for Excel, formula-looking
text neutralised) and Parquet, written deterministically so reruns are byte-identical."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

# A spreadsheet runs a text cell starting with one of these as a formula (CSV injection) ...
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")
_TRIGGER_PATTERN = "^[=+\\-@\t\r\n]"
# ... unless the whole cell is a plain number, which it reads as that number (`-10.50`,
# `-1e5`): those are left alone; `-2+3`, `--5`, `-5%`, `-inf` and `+1` are not
_PLAIN_NUMBER = r"^-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?$"


def _runs_as_formula(text: pl.Expr) -> pl.Expr:
    return text.str.contains(_TRIGGER_PATTERN) & ~text.str.contains(_PLAIN_NUMBER)


def neutralise_text(text: str) -> str:
    """One header as `neutralise_formulas` writes cells: headers are data too (a rejected file
    repeats its source's headers)."""
    runs = re.match(_TRIGGER_PATTERN, text) and not re.fullmatch(_PLAIN_NUMBER, text)
    return "'" + text if runs else text


def neutralise_formulas(frame: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Text cells and headers a spreadsheet would run as formulas get a leading apostrophe;
    returns the frame and how many cells (headers included) were changed."""
    text_columns = [c for c, dtype in frame.schema.items() if dtype == pl.String]
    runs = {c: _runs_as_formula(pl.col(c)) for c in text_columns}
    hits = 0
    if runs:
        counts = pl.sum_horizontal(r.fill_null(False).cast(pl.Int64).sum() for r in runs.values())
        hits = int(frame.select(counts).item() or 0)
    safe = frame.with_columns(
        pl.when(run).then(pl.lit("'") + pl.col(c)).otherwise(pl.col(c)).alias(c)
        for c, run in runs.items()
    )
    headers = [neutralise_text(c) for c in safe.columns]
    hits += sum(new != old for new, old in zip(headers, safe.columns, strict=True))
    safe.columns = headers
    return safe, hits


def write_table(frame: pl.DataFrame, path: Path, fmt: str, bom: bool) -> int:
    """Write one table as CSV or Parquet (xlsx tables go through workbook.py); returns the
    number of text cells neutralised against formula injection."""
    if fmt == "csv":
        safe, count = neutralise_formulas(frame)
        safe.write_csv(
            path, include_bom=bom, date_format="%Y-%m-%d", datetime_format="%Y-%m-%d %H:%M:%S"
        )
        return count
    if fmt == "parquet":
        frame.write_parquet(path, compression="zstd", statistics=True)
        return 0
    raise ValueError(f"unknown format {fmt}")
