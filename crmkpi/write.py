"""Tidy tables for spreadsheets and data tools: CSV (UTF-8 with BOM for Excel, formula-looking
text neutralised) and Parquet, written deterministically so reruns are byte-identical."""

from __future__ import annotations

from pathlib import Path

import polars as pl

# A spreadsheet runs a text cell starting with one of these as a formula (CSV injection).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")
_TRIGGER_PATTERN = "^[=+\\-@\t\r\n]"


def neutralise_formulas(frame: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Text cells a spreadsheet would run as formulas get a leading apostrophe; returns the
    frame and how many cells were changed."""
    text_columns = [c for c, dtype in frame.schema.items() if dtype == pl.String]
    if not text_columns:
        return frame, 0
    hits = frame.select(
        pl.sum_horizontal(
            pl.col(c).str.contains(_TRIGGER_PATTERN).fill_null(False).cast(pl.Int64).sum()
            for c in text_columns
        )
    ).item()
    safe = frame.with_columns(
        pl.when(pl.col(c).str.contains(_TRIGGER_PATTERN))
        .then(pl.lit("'") + pl.col(c))
        .otherwise(pl.col(c))
        .alias(c)
        for c in text_columns
    )
    return safe, int(hits or 0)


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
