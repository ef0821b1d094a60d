"""Writers: tidy tables for spreadsheets, published atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import polars as pl

from crmkpi.errors import EXIT_CANNOT_CREATE_OUTPUT, CrmkpiError

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


class OutputError(CrmkpiError):
    exit_code = EXIT_CANNOT_CREATE_OUTPUT


def neutralise_formulas(frame: pl.DataFrame) -> pl.DataFrame:
    """Text cells a spreadsheet would run as formulas get a leading apostrophe."""
    pattern = "^[" + "".join("\\" + c if c in "-+" else c for c in FORMULA_TRIGGERS) + "]"
    return frame.with_columns(
        pl.when(pl.col(c).str.contains(pattern))
        .then(pl.lit("'") + pl.col(c))
        .otherwise(pl.col(c))
        .alias(c)
        for c, dtype in frame.schema.items()
        if dtype == pl.String
    )


def write_kpis(kpis: pl.DataFrame, out: Path) -> Path:
    """Write kpis.csv (UTF-8 with BOM for Excel) through a temporary file and an atomic rename."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create output folder {out}: {exc.strerror}") from exc
    target = out / "kpis.csv"
    handle, temporary = tempfile.mkstemp(prefix=".kpis.", suffix=".csv.tmp", dir=out)
    os.close(handle)
    try:
        neutralise_formulas(kpis).write_csv(temporary, include_bom=True, float_precision=10)
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return target
