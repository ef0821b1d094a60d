"""Run the table contracts on collected frames; split used rows from quarantined rows, with
reasons, and reconcile the counts so that no row is ever lost.

For every table: rows read = rows used + rows quarantined + footer rows + rows skipped by the
config (`skip_rows_without`) + rows deduplicated across overlapping files.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandera.polars as pa
import polars as pl

from crmkpi.distinct import surely_distinct
from crmkpi.errors import InvalidDataError
from crmkpi.io.expression import EXPRESSION_MESSAGES
from crmkpi.io.mapping import ERROR_PREFIX, MAX_LISTED_VALUES, ROW_ID, SKIPPED, MappedFile
from crmkpi.io.parse import error_message
from crmkpi.io.read import RAW_RECORD, SOURCE_FILE, SOURCE_LINE, RawFile
from crmkpi.tables import CONTRACTS, ROW_RULE_COLUMN, columns_of

FILE_INDEX = "_file_index"
REJECT_COLUMNS = ("source_file", "source_line", "column", "check", "reason")


@dataclass
class FileReport:
    path: str
    sha256: str
    file_format: str
    encoding: str | None
    rows_read: int
    footer_rows: int
    duplicate_of: str | None = None


@dataclass
class TableReport:
    """The data-quality figures of one table; the manifest and `crmkpi validate` print them."""

    table: str
    files: list[FileReport] = field(default_factory=list)
    rows_read: int = 0
    rows_used: int = 0
    rows_quarantined: int = 0
    footer_rows: int = 0
    rows_skipped: int = 0
    rows_deduplicated: int = 0
    # of those, rows repeating another row's id and every mapped value (a flat export: the
    # customer on each of its order lines); copies that differ are quarantined instead
    rows_identical_copies: int = 0
    # rows per check: a row failing one check in two columns counts once for it
    quarantined_by_check: dict[str, int] = field(default_factory=dict)
    drift_columns: list[str] = field(default_factory=list)
    missing_configured_columns: list[str] = field(default_factory=list)
    supplied_columns: list[str] = field(default_factory=list)
    # canonical column -> source values missing from its value map (new picklist values)
    unmapped_values: dict[str, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # rows kept but worth a look, by check (`orphan_rep`: a rep missing from the reps table)
    warnings_by_check: dict[str, int] = field(default_factory=dict)

    @property
    def reject_rate(self) -> float:
        return self.rows_quarantined / self.rows_read if self.rows_read else 0.0

    def reconciles(self) -> bool:
        return self.rows_read == (
            self.rows_used
            + self.rows_quarantined
            + self.footer_rows
            + self.rows_skipped
            + self.rows_deduplicated
        )


@dataclass
class LoadedTable:
    """A validated canonical table, its quarantine and its report."""

    name: str
    frame: pl.DataFrame
    rejected: pl.DataFrame
    report: TableReport
    # each file read: (size in bytes, modification time in ns) when it was read
    stamps: dict[Path, tuple[int, int]] = field(default_factory=dict)
    # an engine that keeps the quarantine itself (Spark) writes it into the folder given
    write_rejected: Callable[[Path], None] | None = None
    # the Spark loader's validated rows, still on Spark: `frame` is collected from them, and the
    # Spark engine reads them instead of uploading `frame`
    spark_frame: Any = None


def _drop_superseded(frame: pl.DataFrame, table: str, files: int) -> tuple[pl.DataFrame, int]:
    """Overlapping exports: a record present in several files is kept from the last file only
    (files sort by name, so daily exports named by date keep the newest version)."""
    if files < 2:
        return frame, 0
    unique = [c.name for c in columns_of(table).values() if c.unique and c.name in frame.columns]
    key = unique or [c for c in columns_of(table) if c in frame.columns]
    # a row whose key failed to parse (null) is nobody's older version: it is quarantined later
    keyed = pl.all_horizontal(pl.col(k).is_not_null() for k in key) if unique else pl.lit(True)
    stale = keyed & (pl.col(FILE_INDEX) < pl.col(FILE_INDEX).max().over(key))
    kept = frame.filter(~stale)
    return kept, frame.height - kept.height


def _unique_keys(records: pl.DataFrame, table: str) -> list[str]:
    """The unique columns of the contract that the records may repeat."""
    unique = [c.name for c in columns_of(table).values() if c.unique and c.name in records.columns]
    return [c for c in unique if not surely_distinct(records, c)]


def _mapped_columns(records: pl.DataFrame) -> list[str]:
    """The canonical columns and their error codes (not where a row came from)."""
    return [c for c in records.columns if not c.startswith("_") or c.startswith(ERROR_PREFIX)]


def _drop_identical_copies(records: pl.DataFrame, table: str) -> tuple[pl.DataFrame, int]:
    """A record whose id and every mapped value repeat an earlier row's is the same record
    written again (customers mapped from order lines): one copy is kept."""
    unique = _unique_keys(records, table)
    if not unique:
        return records, 0
    keyed = pl.all_horizontal(pl.col(k).is_not_null() for k in unique)
    repeated = keyed & ~pl.struct(_mapped_columns(records)).is_first_distinct()
    kept = records.filter(~repeated)
    return kept, records.height - kept.height


def identical_copies_warning(rows: int) -> str:
    return (
        f"identical_copies: {rows} row(s) repeat another row's id and every mapped value "
        "(a flat export, one row per line): one copy of each is kept"
    )


def _parse_failures(frame: pl.DataFrame, canonical: list[str]) -> pl.DataFrame:
    """One row per failing cell: `_row`, column, check."""
    # Most columns of a large table have no failing cell: only the others, and only their
    # failing rows, are unpivoted.
    error_columns = [
        ERROR_PREFIX + c
        for c in canonical
        if ERROR_PREFIX + c in frame.columns and frame[ERROR_PREFIX + c].null_count() < frame.height
    ]
    if not error_columns:
        return pl.DataFrame(schema={ROW_ID: pl.Int64, "column": pl.String, "check": pl.String})
    return (
        frame.select(ROW_ID, *(pl.col(c).cast(pl.String) for c in error_columns))
        .filter(pl.any_horizontal(pl.col(error_columns).is_not_null()))
        .unpivot(index=ROW_ID, variable_name="column", value_name="check")
        .drop_nulls("check")
        .with_columns(pl.col("column").str.strip_prefix(ERROR_PREFIX))
    )


@functools.cache
def _checks_without_uniqueness(table: str) -> pa.DataFrameSchema:
    """The contract as pandera runs it here: uniqueness is left to `_duplicate_keys`, which
    also sees the rows that failed to parse; pandera's own pass over tens of millions of ids
    would only repeat it."""
    schema = CONTRACTS[table].to_schema()
    unique = [name for name, column in schema.columns.items() if column.unique]
    return schema.update_columns({name: {"unique": False} for name in unique}) if unique else schema


def _contract_failures(frame: pl.DataFrame, table: str) -> pl.DataFrame:
    """Run the pandera contract on a collected frame (lazy: every failure, not the first)."""
    empty = pl.DataFrame(schema={ROW_ID: pl.Int64, "column": pl.String, "check": pl.String})
    try:
        _checks_without_uniqueness(table).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        schema_level = cases.filter(pl.col("index").is_null())
        if schema_level.height:
            detail = "; ".join(
                f"{r['column']}: {r['check']}" for r in schema_level.iter_rows(named=True)
            )
            raise InvalidDataError(f"table {table}: schema_error: {detail}") from exc
        rows = frame[ROW_ID].gather(cases["index"].cast(pl.Int64))
        checks = cases["check"].cast(pl.String)
        row_rule = cases["schema_context"].cast(pl.String) == "DataFrameSchema"
        columns = pl.select(
            pl.when(pl.lit(row_rule)).then(_rule_column(checks)).otherwise(pl.lit(cases["column"]))
        ).to_series()
        return pl.DataFrame({ROW_ID: rows, "column": columns.cast(pl.String), "check": checks})
    return empty


def _rule_column(checks: pl.Series) -> pl.Series:
    """A row rule is named after the column it constrains (`closed_at_required_when_...`)."""
    return checks.str.extract(ROW_RULE_COLUMN, 1)


def _duplicate_keys(records: pl.DataFrame, table: str) -> pl.DataFrame:
    """Every copy of a duplicated id, counted over all records (also those failing to parse),
    so that no copy survives as if it were the only one. Identical copies were deduplicated
    before, so the copies left differ: the reason names the columns in which they do."""
    pieces = []
    compared = [c for c in _mapped_columns(records) if not c.startswith(ERROR_PREFIX)]
    for key in _unique_keys(records, table):
        copies = records.filter(pl.col(key).is_not_null() & pl.col(key).is_duplicated())
        differing = pl.concat_str(
            [pl.when(pl.col(c).n_unique().over(key) > 1).then(pl.lit(c)) for c in compared],
            separator=", ",
            ignore_nulls=True,
        )
        pieces.append(
            copies.select(
                ROW_ID,
                pl.lit(key).alias("column"),
                pl.lit("field_uniqueness").alias("check"),
                pl.when(differing != "")
                .then(
                    pl.format(
                        "the id is not unique and its copies differ in {}: every copy is "
                        "quarantined",
                        differing,
                    )
                )
                .alias("reason"),
            )
        )
    if not pieces:
        return pl.DataFrame(schema={ROW_ID: pl.Int64, "column": pl.String, "check": pl.String})
    return pl.concat(pieces)


_CONTRACT_MESSAGES = {
    **EXPRESSION_MESSAGES,
    "amount_not_negative_unless_refunded": "a negative amount on an order that is neither "
    "refunded nor cancelled",
    "quantity_not_negative_unless_refunded": "a negative quantity on an order that is neither "
    "refunded nor cancelled",
    "field_uniqueness": "the id is not unique: every copy is quarantined",
    "not_nullable": "a required value is missing",
    "unmapped_value": "a value the column's value map does not know (a new picklist value?)",
    "not_salesforce_id": "not a 15- or 18-character Salesforce id",
    "salesforce_id_checksum": "an 18-character Salesforce id whose last 3 characters do not fit "
    "the first 15 (letter case changed?)",
    "too_many_fields": "the record has more fields than the header",
    "missing_fields": "the record has fewer fields than the header",
}


def describe_check(check: str) -> str:
    """The human reason for a parse error code or a pandera check name (never a data value)."""
    if check in _CONTRACT_MESSAGES:
        return _CONTRACT_MESSAGES[check]
    for prefix, words in (
        ("greater_than_or_equal_to", "must be at least"),
        ("less_than_or_equal_to", "must be at most"),
        ("greater_than", "must be more than"),
        ("less_than", "must be less than"),
        ("isin", "is not one of the allowed values"),
        ("in_range", "must be in the range"),
    ):
        if check.startswith(prefix + "("):
            return f"{words} {check[len(prefix) :]}"
    try:
        return error_message(check)
    except ValueError:
        return "breaks the rule " + check.replace("_", " ")


def _reasons(checks: pl.Series) -> pl.Series:
    messages = {c: describe_check(c) for c in checks.unique().drop_nulls().to_list()}
    return checks.replace_strict(messages, return_dtype=pl.String).alias("reason")


def validate_table(
    table: str, raws: list[RawFile], mapped: list[MappedFile], reports: list[FileReport]
) -> LoadedTable:
    """Combine a table's files, quarantine bad rows with reasons, and reconcile the counts."""
    canonical = list(columns_of(table))
    # which file a row came from matters only between several files (`_drop_superseded`)
    frames = (
        [m.frame.with_columns(pl.lit(i).alias(FILE_INDEX)) for i, m in enumerate(mapped)]
        if len(mapped) > 1
        else [m.frame for m in mapped]
    )
    combined = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()
    report = TableReport(table, files=reports)
    report.rows_read = sum(r.rows_read for r in raws)
    report.footer_rows = sum(r.footer_rows for r in raws)
    report.supplied_columns = sorted({c for m in mapped for c in m.supplied})
    report.drift_columns = sorted({h for m in mapped for h in m.unused_headers})
    report.missing_configured_columns = sorted({c for m in mapped for c in m.missing_sources})
    for m in mapped:
        report.warnings.extend(w for w in m.warnings if w not in report.warnings)
        for column, values in m.unmapped_values.items():
            known = report.unmapped_values.setdefault(column, [])
            known[:] = sorted(set(known) | set(values))[:MAX_LISTED_VALUES]

    skipped_rows = int(combined[SKIPPED].sum()) if combined.height else 0
    records = combined.filter(~pl.col(SKIPPED)) if skipped_rows else combined
    report.rows_skipped = skipped_rows + sum(r.blank_rows for r in raws)
    records, report.rows_deduplicated = _drop_superseded(records, table, len(mapped))
    records, report.rows_identical_copies = _drop_identical_copies(records, table)
    report.rows_deduplicated += report.rows_identical_copies
    if report.rows_identical_copies:
        report.warnings.append(identical_copies_warning(report.rows_identical_copies))

    parse_failures = _parse_failures(records, canonical)
    clean = _without_rows(records, parse_failures)
    present = [c for c in canonical if c in clean.columns]
    contract_failures = _contract_failures(clean.select(*present, ROW_ID), table)
    # uniqueness is judged by _duplicate_keys over every record; pandera also counts nulls as
    # duplicates of each other, which a missing id (already `not_nullable`) is not
    contract_failures = contract_failures.filter(pl.col("check") != "field_uniqueness")
    failures = pl.concat(
        [parse_failures, _duplicate_keys(records, table), contract_failures], how="diagonal"
    ).unique(maintain_order=True)
    used = _without_rows(records, failures)

    rejected = _rejected_rows(raws, mapped, failures)
    report.rows_used = used.height
    report.rows_quarantined = rejected.height
    report.quarantined_by_check = dict(
        sorted(
            rejected.select(pl.col("check").str.split("; ").list.unique().explode())["check"]
            .value_counts()
            .iter_rows()
        )
    )
    if not report.reconciles():
        raise AssertionError(f"row accounting does not reconcile for {table}: {report}")
    return LoadedTable(table, used.select(*present, SOURCE_FILE, SOURCE_LINE), rejected, report)


def _without_rows(records: pl.DataFrame, failures: pl.DataFrame) -> pl.DataFrame:
    """The records none of `failures` names (no copy of a large table when nothing failed)."""
    if failures.height == 0:
        return records
    return records.filter(~pl.col(ROW_ID).is_in(failures[ROW_ID].implode()))


def data_column(header: str) -> str:
    """A source header named like a quarantine column (`reason`, `check`, ...) keeps its cells
    under `<header> (source)`, so the file's own column and crmkpi's never clash."""
    return f"{header} (source)" if header in (*REJECT_COLUMNS, "raw_record") else header


def _rejected_rows(
    raws: list[RawFile], mapped: list[MappedFile], failures: pl.DataFrame
) -> pl.DataFrame:
    """Quarantined rows as read (source headers, text), plus where they come from and why."""
    described = _reasons(failures["check"])
    if "reason" in failures.columns:  # a reason of its own (which columns duplicates differ in)
        described = failures.select(pl.coalesce("reason", described)).to_series().alias("reason")
    per_row = (
        failures.with_columns(described)
        .group_by(ROW_ID, maintain_order=True)
        .agg(
            pl.col("column").str.join("; "),
            pl.col("check").str.join("; "),
            pl.col("reason").str.join("; "),
        )
    )
    pieces = []
    for raw, m in zip(raws, mapped, strict=True):
        if per_row.height == 0 and raw.rejected.height == 0:
            continue
        cells = raw.frame.select(
            *(pl.col(h).cast(pl.String).alias(data_column(h)) for h in raw.headers),
            SOURCE_FILE,
            SOURCE_LINE,
            m.frame[ROW_ID],
        )
        rows = cells.join(per_row, on=ROW_ID, how="inner")
        text = rows.select(
            *(data_column(h) for h in raw.headers),
            pl.col(SOURCE_FILE).alias("source_file"),
            pl.col(SOURCE_LINE).alias("source_line"),
            "column",
            "check",
            "reason",
        )
        pieces.append(text)
        if raw.rejected.height:
            pieces.append(
                raw.rejected.select(
                    pl.col(RAW_RECORD).alias("raw_record"),
                    pl.col(SOURCE_FILE).alias("source_file"),
                    pl.col(SOURCE_LINE).alias("source_line"),
                    pl.lit(None, pl.String).alias("column"),
                    "check",
                    "reason",
                )
            )
    if not pieces:
        return pl.DataFrame(schema=dict.fromkeys(REJECT_COLUMNS, pl.String))
    combined = pl.concat(pieces, how="diagonal_relaxed")
    data_columns = [c for c in combined.columns if c not in REJECT_COLUMNS]
    return combined.select(*data_columns, *REJECT_COLUMNS).sort("source_file", "source_line")
