"""Canonical tables read and checked on Spark: Parquet (or Delta) folders under a URI Spark
reads, or catalog tables. The contract runs as Spark expressions (crmkpi.contract_checks), the
quarantined rows are written by Spark, and the row accounting is one Spark aggregation per
table; only the figures and the validated rows reach the driver (the latter in one place,
`collect_validated`, until the views run on Spark too)."""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import narwhals as nw
import polars as pl

from crmkpi.contract_checks import UNIQUENESS, ContractCheck, contract_checks
from crmkpi.errors import ConfigError, FileRejectedError, InputMissingError
from crmkpi.io.read import headers_seen
from crmkpi.load import FOLDER_FAILURE, LoadResult, TableFailure, check_has_rows, check_orphan_reps
from crmkpi.provenance import SOURCE_FILE as SOURCE
from crmkpi.provenance import SOURCE_LINE
from crmkpi.tables import TABLE_NAMES, columns_of
from crmkpi.validate import (
    REJECT_COLUMNS,
    FileReport,
    LoadedTable,
    TableReport,
    data_column,
    describe_check,
    identical_copies_warning,
)

# the Spark type each parse kind of tables.ColumnContract is cast to, and the source types that
# cast to it without parsing (text is parsed by the Polars loader only)
_TARGETS = {
    "id": "string",
    "text": "string",
    "money": "double",
    "float": "double",
    "duration": "double",
    "int": "bigint",
    "bool": "boolean",
    "date": "date",
    "datetime": "timestamp_ntz",
}
_NUMBERS = ("byte", "short", "integer", "long", "float", "double", "decimal")
_CASTABLE = {
    "string": ("string", *_NUMBERS, "boolean", "date", "timestamp", "timestamp_ntz"),
    "double": _NUMBERS,
    "bigint": _NUMBERS,
    "boolean": ("boolean",),
    "date": ("date", "timestamp", "timestamp_ntz"),
    "timestamp_ntz": ("date", "timestamp", "timestamp_ntz"),
}
_COPIES = "_identical_copies"
_CHECKS = "_checks"
# a canonical column as read, before its cast (the quarantine shows it so)
_RAW = "_raw_"


@dataclass(frozen=True)
class SparkInput:
    """Where `--engine spark` reads from: a folder URI or catalog tables (`db.orders`)."""

    uri: str | None = None
    catalog_tables: tuple[str, ...] = ()

    @property
    def local_folder(self) -> Path | None:
        """The folder on this machine a `file:` URI names (publishing must stay out of it)."""
        if self.uri is None or not self.uri.startswith("file:"):
            return None
        return Path(urlparse(self.uri).path)


def spark_input(
    argument: str | None, engine: str, catalog_tables: Sequence[str]
) -> SparkInput | None:
    """The Spark source of a run, or None when the Polars loader reads the inputs: with
    `--spark-tables`, or with `--engine spark` and an INPUT that is not a local folder."""
    if catalog_tables:
        if argument is not None:
            raise ConfigError("spark_tables: name the catalog tables or give INPUT, not both")
        return SparkInput(catalog_tables=tuple(catalog_tables))
    if engine != "spark" or argument is None or Path(argument).is_dir():
        return None
    return SparkInput(uri=argument.rstrip("/"))


@dataclass
class _Source:
    """One table as Spark read it, and how the quarantine and the manifest name it."""

    table: str
    frame: Any
    # the manifest's and the quarantine's name of it; `path`: the errors' (in full)
    name: str
    path: str
    file_format: str
    # how many trailing path parts of a row's file name its source_file keeps (0: the name)
    path_parts: int


def _exists(session: Any, path: str) -> bool:
    """Whether a path exists, asked of the file system Spark reads it with (its Hadoop
    configuration holds the credentials), without a failing read per absent table."""
    jvm = session._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    return bool(hadoop_path.getFileSystem(session._jsc.hadoopConfiguration()).exists(hadoop_path))


def _folder_sources(session: Any, uri: str) -> list[_Source]:
    """`<table>/` (Delta when delta-spark is installed and the folder has a `_delta_log`,
    else Parquet) or `<table>.parquet` for every canonical table present under `uri`."""
    delta = importlib.util.find_spec("delta") is not None
    found = []
    for table in TABLE_NAMES:
        folder, file = f"{uri}/{table}", f"{uri}/{table}.parquet"
        if _exists(session, folder):
            is_delta = delta and _exists(session, f"{folder}/_delta_log")
            file_format = "delta" if is_delta else "parquet"
            frame = session.read.format(file_format).load(folder)
            found.append(_Source(table, frame, table, folder, file_format, 2))
        elif _exists(session, file):
            frame = session.read.parquet(file)
            found.append(_Source(table, frame, f"{table}.parquet", file, "parquet", 1))
    if not found:
        raise InputMissingError(
            f"input folder {uri} does not exist or holds no canonical table "
            "(<table>/ or <table>.parquet, e.g. orders.parquet)"
        )
    return found


def _catalog_sources(session: Any, names: Sequence[str]) -> list[_Source]:
    """Catalog tables named `db.orders`: the last dotted part is the canonical table."""
    from pyspark.errors import AnalysisException

    sources = []
    for name in names:
        table = name.rsplit(".", 1)[-1]
        if table not in TABLE_NAMES:
            raise ConfigError(
                f"spark_tables: {name!r}: {table!r} is not a canonical table "
                f"({', '.join(TABLE_NAMES)})"
            )
        try:
            frame = session.read.table(name)
        except AnalysisException as exc:
            raise InputMissingError(
                f"missing required input {table}: no catalog table {name}"
            ) from exc
        sources.append(_Source(table, frame, name, name, "table", 0))
    return sources


def _has_row_index(frame: Any) -> bool:
    """Whether Spark knows each row's position in its file: the hidden `_metadata.row_index`
    of a file source (Parquet in Spark 3.5+; other readers may lack it)."""
    from pyspark.errors import AnalysisException

    try:
        return "row_index" in frame.select("_metadata").schema["_metadata"].dataType.fieldNames()
    except AnalysisException:
        return False


def _provenance(source: _Source) -> tuple[Any, Any]:
    """A row's file and line as the Polars loader names them: the file relative to the input
    folder (Spark's URI of it percent-decoded) and its 1-based row within that file. A catalog
    table is named by itself, and without a file its rows have no line."""
    from pyspark.sql import functions as F

    no_line = F.lit(None).cast("bigint")
    if not source.path_parts:
        return F.lit(source.name), no_line
    uri_tail = F.substring_index(F.input_file_name(), "/", -source.path_parts)
    # url_decode reads "+" as a space; a URI's path keeps "+" literal, so it is escaped first
    file = F.url_decode(F.replace(uri_tail, F.lit("+"), F.lit("%2B")))
    line = F.col("_metadata.row_index") + 1 if _has_row_index(source.frame) else no_line
    return file, line


def _typed(source: _Source) -> tuple[Any, list[str]]:
    """The canonical columns cast to the contract's types, and the extra columns (drift);
    a missing required column or an uncastable type rejects the table (exit 65)."""
    from pyspark.sql import functions as F

    frame, contract = source.frame, columns_of(source.table)
    types = {f.name: f.dataType.typeName() for f in frame.schema.fields}
    missing = [n for n, c in contract.items() if c.required and n not in types]
    if missing:
        wanted = "; ".join(f"{n} (from {n!r})" for n in missing)
        raise FileRejectedError(
            source.path,
            "missing_column",
            f"required column(s) {wanted} not found; {headers_seen(len(types), None)}",
            column=missing[0],
        )
    present = [n for n in contract if n in types]
    for name in present:
        kind = contract[name].parse_kind
        if types[name] not in _CASTABLE[_TARGETS[kind]]:
            raise FileRejectedError(
                source.path,
                "wrong_type",
                f"{name} needs {kind} values, the table's column is {types[name]} (text "
                "columns are parsed by the Polars loader only: a local folder)",
                column=name,
            )
    file, line = _provenance(source)
    typed = frame.select(
        *(F.col(n).cast(_TARGETS[contract[n].parse_kind]).alias(n) for n in present),
        *(F.col(n).alias(_RAW + n) for n in present),
        *(F.col(n) for n in types if n not in contract),
        file.alias(SOURCE),
        line.alias(SOURCE_LINE),
    )
    return typed, sorted(n for n in types if n not in contract)


def _without_identical_copies(frame: Any, table: str, present: list[str]) -> Any:
    """Rows repeating another row's id and every canonical value are one record written
    twice: the first is kept and counts the others (validate's `_drop_identical_copies`)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    keys = [n for n, c in columns_of(table).items() if c.unique and n in present]
    if not keys:
        return frame.withColumn(_COPIES, F.lit(0))
    same = Window.partitionBy(*present)
    keyed = F.lit(True)
    for key in keys:
        keyed = keyed & F.col(key).isNotNull()
    first_read = same.orderBy(SOURCE, SOURCE_LINE)
    ranked = frame.withColumn("_rank", F.row_number().over(first_read))
    ranked = ranked.withColumn(
        _COPIES, F.when(keyed, F.count(F.lit(1)).over(same) - 1).otherwise(0)
    )
    return ranked.filter(~keyed | (F.col("_rank") == 1)).drop("_rank")


def _duplicate_reason(key: str, compared: list[str]) -> Any:
    """validate's reason for copies of an id that differ: the columns in which they do."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    copies = Window.partitionBy(key)
    differing = []
    for column in compared:
        values = F.count(column).over(copies)
        differs = (F.max(column).over(copies) != F.min(column).over(copies)) | (
            (values > 0) & (values < F.count(F.lit(1)).over(copies))
        )
        differing.append(F.when(differs, F.lit(column)))
    names = F.concat_ws(", ", *differing)
    return F.when(
        names != "",
        F.format_string(
            "the id is not unique and its copies differ in %s: every copy is quarantined", names
        ),
    ).otherwise(F.lit(describe_check(UNIQUENESS)))


def _flagged(frame: Any, checks: list[ContractCheck], present: list[str]) -> Any:
    """Each row with the checks it fails, joined by "; " as validate.py joins them (empty: the
    row is used); one boolean column per check for the accounting."""
    from pyspark.sql import functions as F

    flags = [f"_fails_{i}" for i in range(len(checks))]
    native = (
        nw.from_native(frame)
        .with_columns(*(c.fails.alias(f) for c, f in zip(checks, flags, strict=True)))
        .to_native()
    )
    reasons = [
        _duplicate_reason(c.column, present)
        if c.check == UNIQUENESS and c.column
        else F.lit(describe_check(c.check))
        for c in checks
    ]

    def joined(values: list[Any]) -> Any:
        return F.concat_ws("; ", *(F.when(F.col(f), v) for f, v in zip(flags, values, strict=True)))

    return native.select(
        "*",
        joined([F.lit(c.column) for c in checks]).alias("_column"),
        joined([F.lit(c.check) for c in checks]).alias(_CHECKS),
        joined(reasons).alias("_reason"),
    )


def _accounting(flagged: Any, checks: list[ContractCheck]) -> dict[str, int]:
    """Rows read, identical copies, quarantined rows and rows per check: one Spark job."""
    from pyspark.sql import functions as F

    by_check: dict[str, Any] = {}
    for i, check in enumerate(checks):
        flag = F.col(f"_fails_{i}")
        by_check[check.check] = by_check[check.check] | flag if check.check in by_check else flag
    row = flagged.agg(
        F.count(F.lit(1)).alias("_records"),
        F.sum(_COPIES).alias("_copies"),
        F.count(F.when(F.col(_CHECKS) != "", 1)).alias("_quarantined"),
        *(
            F.count(F.when(flag, 1)).alias(f"_check_{i}")
            for i, flag in enumerate(by_check.values())
        ),
    ).first()
    figures = {n: int(row[f"_check_{i}"] or 0) for i, n in enumerate(by_check)}
    figures.update({k: int(row[f"_{k}"] or 0) for k in ("records", "copies", "quarantined")})
    return figures


def _rejected(flagged: Any, source: _Source) -> Any:
    """The quarantined rows as read (text, named as validate.py names them) and why."""
    from pyspark.sql import functions as F

    contract = columns_of(source.table)

    def text(name: str, spark_type: str) -> Any:
        value = F.col(_RAW + name if name in contract else name)
        if spark_type.startswith("timestamp"):  # as Polars writes a datetime as text
            return F.date_format(value, "yyyy-MM-dd HH:mm:ss.SSSSSS")
        return value.cast("string")

    return flagged.filter(F.col(_CHECKS) != "").select(
        *(
            text(f.name, f.dataType.typeName()).alias(data_column(f.name))
            for f in source.frame.schema.fields
        ),
        F.col(SOURCE).alias("source_file"),
        F.col(SOURCE_LINE).alias("source_line"),
        F.col("_column").alias("column"),
        F.col(_CHECKS).alias("check"),
        F.col("_reason").alias("reason"),
    )


def collect_validated(frame: Any) -> pl.DataFrame:
    """The validated rows on the driver, as Polars, for the views, which still take Polars
    frames (the engine's passes over the table itself read `frame` on Spark): the one place
    Spark's rows leave the cluster (remove it when the views run on Spark)."""
    return pl.DataFrame(pl.from_arrow(frame.toArrow()))


def _fingerprint(source: _Source, rows: int) -> str:
    """What the run id and the manifest know of a Spark input: its files' names (or the
    catalog table's name) and row count, not its bytes, which stay on the cluster."""
    files = sorted(source.frame.inputFiles()) if source.path_parts else [source.name]
    return hashlib.sha256("\n".join([*files, str(rows)]).encode()).hexdigest()


class _RejectedWriter:
    """Writes a table's quarantined rows as Parquet, by Spark, into the folder it is given."""

    def __init__(self, rejected: Any) -> None:
        self.rejected = rejected

    def __call__(self, folder: Path) -> None:
        self.rejected.write.parquet(folder.as_uri())


def _load_source(source: _Source, cache: Callable[[Any], Any]) -> LoadedTable:
    """One table: cast, drop identical copies, check, account, keep the quarantine. The
    checked rows are kept by `cache`: the accounting, the passes and the quarantine read
    them."""
    from pyspark.sql import functions as F

    typed, drift = _typed(source)
    contract = columns_of(source.table)
    present = [n for n in contract if n in typed.columns]
    deduplicated = _without_identical_copies(typed, source.table, present)
    checks = contract_checks(source.table, present)
    flagged = cache(_flagged(deduplicated, checks, present))
    figures = _accounting(flagged, checks)
    report = TableReport(source.table)
    report.rows_deduplicated = report.rows_identical_copies = figures["copies"]
    report.rows_read = figures["records"] + figures["copies"]
    report.rows_quarantined = figures["quarantined"]
    report.rows_used = figures["records"] - figures["quarantined"]
    report.quarantined_by_check = {
        c: figures[c] for c in sorted({c.check for c in checks}) if figures[c]
    }
    report.supplied_columns = sorted(present)
    report.drift_columns = drift
    report.files = [
        FileReport(
            source.name,
            _fingerprint(source, report.rows_read),
            source.file_format,
            None,
            report.rows_read,
            0,
        )
    ]
    if report.rows_identical_copies:
        report.warnings.append(identical_copies_warning(report.rows_identical_copies))
    if not report.reconciles():
        raise AssertionError(f"row accounting does not reconcile for {source.table}: {report}")
    used = flagged.filter(F.col(_CHECKS) == "").select(*present)
    loaded = LoadedTable(
        source.table,
        collect_validated(used),
        pl.DataFrame(schema=dict.fromkeys(REJECT_COLUMNS, pl.String)),
        report,
        spark_frame=used,
    )
    if report.rows_quarantined:
        loaded.write_rejected = _RejectedWriter(_rejected(flagged, source))
    check_has_rows(loaded, allow_empty=False)
    return loaded


def load_spark(session: Any, source: SparkInput, cache: Callable[[Any], Any]) -> LoadResult:
    """Every canonical table of a Spark source, checked on Spark (its checked rows kept by
    `cache`, e.g. `SparkEngine.cache`); failures per table, as `load.load_all` reports them."""
    result = LoadResult()
    try:
        sources = (
            _catalog_sources(session, source.catalog_tables)
            if source.catalog_tables
            else _folder_sources(session, source.uri or "")
        )
    except InputMissingError as exc:
        result.failures.append(TableFailure(FOLDER_FAILURE, exc))
        return result
    for table_source in sources:
        try:
            result.tables[table_source.table] = _load_source(table_source, cache)
        except (FileRejectedError, InputMissingError) as exc:
            result.failures.append(TableFailure(table_source.table, exc))
    check_orphan_reps(result)
    return result
