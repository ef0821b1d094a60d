"""The loading stage as one call: read -> map -> parse -> validate for every configured table.

Problems are collected table by table instead of stopping at the first, so one nightly run
reports everything that is wrong with an export folder; the caller turns them into an exit code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from crmkpi.config import Config, TableConfig, check_validation_enabled
from crmkpi.errors import CrmkpiError, InputMissingError, InvalidDataError
from crmkpi.io.mapping import expected_headers, map_file
from crmkpi.io.read import RawFile, expand_patterns, read_file
from crmkpi.validate import FileReport, LoadedTable, TableReport, validate_table


@dataclass
class TableFailure:
    """A table that could not be loaded, and why (the error carries the exit code)."""

    table: str
    error: CrmkpiError


@dataclass
class LoadResult:
    tables: dict[str, LoadedTable] = field(default_factory=dict)
    failures: list[TableFailure] = field(default_factory=list)

    @property
    def reports(self) -> list[TableReport]:
        return [t.report for t in self.tables.values()]


def load_table(table: TableConfig, config: Config, folder: Path) -> LoadedTable | None:
    """Load one table; None when it is optional and no file matches."""
    paths = expand_patterns(folder, table.files)
    if not paths:
        if table.required:
            raise InputMissingError(
                f"missing required input {table.name}: no file matches "
                f"{', '.join(repr(f) for f in table.files)} in {folder}"
            )
        return None
    expected = expected_headers(table)
    raws: list[RawFile] = []
    reports: list[FileReport] = []
    seen: dict[str, str] = {}
    for path in paths:
        raw = read_file(path, folder, table.read, expected)
        report = FileReport(
            str(path), raw.sha256, raw.file_format, raw.encoding, raw.rows_read, raw.footer_rows
        )
        if raw.sha256 in seen:
            report.duplicate_of = seen[raw.sha256]
            report.rows_read = 0
            reports.append(report)
            continue
        seen[raw.sha256] = str(path)
        raws.append(raw)
        reports.append(report)
    mapped = []
    first_row = 0
    for raw in raws:
        mapped.append(map_file(raw, table, config.settings, first_row))
        first_row += raw.frame.height
    loaded = validate_table(table.name, raws, mapped, reports)
    loaded.report.warnings.extend(drift_warnings(raws))
    nothing = loaded.report.rows_used == 0 and loaded.report.rows_quarantined == 0
    if nothing and not table.allow_empty:
        raise InvalidDataError(
            f"table {table.name}: no_rows: {loaded.report.rows_read} rows read, no records "
            "(a header-only or truncated export?); set allow_empty = true if that is expected"
        )
    _warn_duplicates(loaded)
    return loaded


def drift_warnings(raws: list[RawFile]) -> list[str]:
    """Typed files (Parquet) of one table whose column types differ from file to file: each file
    is parsed on its own, so the values still meet as one type, but the change is reported."""
    seen: dict[str, dict[str, list[str]]] = {}
    for raw in raws:
        for header in raw.headers:
            dtype = str(raw.frame.schema[header])
            seen.setdefault(header, {}).setdefault(dtype, []).append(raw.path.name)
    return [
        f"schema_drift: {header!r} is "
        + "; ".join(f"{dtype} in {', '.join(names)}" for dtype, names in types.items())
        for header, types in seen.items()
        if len(types) > 1
    ]


def _warn_duplicates(loaded: LoadedTable) -> None:
    """Duplicate deliveries are noted; nothing else is inferred across tables here."""
    duplicates = [f for f in loaded.report.files if f.duplicate_of]
    for dup in duplicates:
        loaded.report.warnings.append(
            f"{dup.path} is byte-identical to {dup.duplicate_of}; read once"
        )


def check_orphan_reps(result: LoadResult) -> None:
    """Rows owned by a rep missing from the reps roster stay (an 'unknown rep' bucket), counted."""
    reps = result.tables.get("reps")
    if reps is None:
        return
    roster = reps.frame["rep"].implode()
    for name, loaded in result.tables.items():
        if name == "reps" or "rep" not in loaded.frame.columns:
            continue
        orphans = loaded.frame.filter(pl.col("rep").is_not_null() & ~pl.col("rep").is_in(roster))
        if orphans.height:
            loaded.report.warnings_by_check["orphan_rep"] = orphans.height
            loaded.report.warnings.append(
                f"orphan_rep: {orphans.height} rows name a rep missing from the reps table"
            )


def load_all(config: Config, folder: Path, only: set[str] | None = None) -> LoadResult:
    """Load every configured table (or those in `only`)."""
    check_validation_enabled()
    if not folder.is_dir():
        raise InputMissingError(f"input folder {folder} does not exist")
    result = LoadResult()
    for name, table in config.tables.items():
        if only is not None and name not in only:
            continue
        try:
            loaded = load_table(table, config, folder)
        except CrmkpiError as exc:
            result.failures.append(TableFailure(name, exc))
            continue
        if loaded is not None:
            result.tables[name] = loaded
    check_orphan_reps(result)
    return result
