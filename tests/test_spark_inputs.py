"""Canonical Parquet tables read and checked by Spark (crmkpi.engines.spark_inputs) on a real
local session: the same KPIs, row accounting and quarantine as the Polars loader on the same
files, catalog tables through `--spark-tables`, and the same exit code for a missing column.
The tests with the `spark` fixture skip without PySpark or a Java runtime (the checks
themselves also run on SQLFrame in test_contract_checks.py)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from crmkpi.cli import app
from crmkpi.engines.spark_inputs import SparkInput, spark_input
from crmkpi.errors import ConfigError
from crmkpi.samples import SCALES, generate_tables
from crmkpi.views import ORDER_KEY

TABLES = ("orders", "customers", "deals")
METRICS = "revenue,orders_count,average_order_value,new_customers,active_customers,win_rate"
MEASURES = ["value", "numerator", "denominator", "previous_value", "change"]
FIGURES = ("rows_read", "rows_used", "rows_quarantined", "rows_deduplicated")


def test_which_loader_reads_the_inputs(tmp_path: Path) -> None:
    """Local folders stay with the Polars loader; URIs with --engine spark and catalog tables
    go to Spark; a `file:` URI is a local folder that publishing must stay out of."""
    assert spark_input(str(tmp_path), "spark", []) is None
    assert spark_input("s3a://lake/crm", "polars", []) is None
    assert spark_input("s3a://lake/crm/", "spark", []) == SparkInput(uri="s3a://lake/crm")
    assert spark_input(None, "polars", ["crm.orders"]) == SparkInput(catalog_tables=("crm.orders",))
    assert SparkInput(uri=tmp_path.as_uri()).local_folder == tmp_path
    assert SparkInput(uri="dbfs:/mnt/crm").local_folder is None
    with pytest.raises(ConfigError, match="not both"):
        spark_input("s3a://lake/crm", "spark", ["crm.orders"])


@pytest.fixture(scope="module")
def samples() -> dict[str, pl.DataFrame]:
    tables = generate_tables(SCALES["tiny"], seed=7)
    return {name: tables[name] for name in TABLES}


def _write(folder: Path, tables: dict[str, pl.DataFrame]) -> Path:
    folder.mkdir()
    for name, frame in tables.items():
        frame.write_parquet(folder / f"{name}.parquet")
    return folder


def _run(source: str, out: Path, *options: str) -> tuple[int, dict[str, Any]]:
    """`crmkpi compute` in-process: exit code and the manifest (or the summary on failure)."""
    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("CRMKPI_")}
    args = ["compute", source, "--out", str(out), "--format", "csv", "--as-of", "2025-06-15"]
    args += ["--metrics", METRICS, "--max-reject-rate", "0.5", "-q", *options]
    result = CliRunner().invoke(app, args, env=unset)
    if result.exit_code:
        return result.exit_code, json.loads(result.stdout.strip().splitlines()[-1])
    return 0, json.loads((out / "manifest.json").read_text(encoding="utf-8"))


def _kpis(out: Path) -> pl.DataFrame:
    frame = pl.read_csv(out / "kpis.csv", infer_schema=False)
    keys = [c for c in frame.columns if c not in MEASURES]
    return frame.with_columns(pl.col(MEASURES).cast(pl.Float64)).sort(keys, nulls_last=True)


def _figures(manifest: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    return {
        t["table"]: (*(t[f] for f in FIGURES), t["quarantined_by_check"])
        for t in manifest["tables"]
    }


def _assert_same_kpis(spark_out: Path, polars_out: Path) -> None:
    spark_kpis, polars_kpis = _kpis(spark_out), _kpis(polars_out)
    assert polars_kpis["metric"].n_unique() == len(METRICS.split(","))
    assert_frame_equal(spark_kpis, polars_kpis, abs_tol=1e-9, rel_tol=1e-9)


def _with_bad_rows(samples: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """A negative amount and a null customer id among the orders; a duplicated deal id (the
    copies differ in amount) and a status outside the contract among the deals."""
    orders, deals = samples["orders"], samples["deals"]
    bad_orders = orders.head(2).with_columns(
        pl.Series("order_id", ["bad-1", "bad-2"]),
        pl.Series("amount", [-4.0, 3.0]),
        pl.Series("customer_id", [orders["customer_id"][0], None]),
        pl.lit("completed").alias("status"),
    )
    copy = deals.head(1).with_columns(pl.col("amount") + 1)
    bad_status = deals.slice(1, 1).with_columns(
        pl.lit("bad-3").alias("deal_id"), pl.lit("pending").alias("status")
    )
    return {
        **samples,
        "orders": pl.concat([orders, bad_orders]),
        "deals": pl.concat([deals, copy, bad_status]),
    }


def _rejected(out: Path, table: str, spark: bool) -> pl.DataFrame:
    if spark:
        frame = pl.read_parquet(out / "rejected" / table / "*.parquet")
    else:
        frame = pl.read_csv(out / "rejected" / f"{table}.csv", infer_schema=False)
    return frame.with_columns(pl.col("source_line").cast(pl.String)).sort(pl.all(), nulls_last=True)


def test_a_parquet_folder_gives_the_kpis_and_the_quarantine_of_polars(
    spark: Any, tmp_path: Path, samples: dict[str, pl.DataFrame]
) -> None:
    """One Spark run (they cost seconds each) for the KPIs, the accounting and the rejected
    rows (source file and line included), which Spark writes as Parquet."""
    folder = _write(tmp_path / "in", _with_bad_rows(samples))
    code, on_spark = _run(folder.as_uri(), tmp_path / "spark", "--engine", "spark")
    assert code == 0, on_spark
    assert _run(str(folder), tmp_path / "polars")[0] == 0
    on_polars = json.loads((tmp_path / "polars" / "manifest.json").read_text(encoding="utf-8"))
    assert _figures(on_spark) == _figures(on_polars)
    assert [f["file_format"] for t in on_spark["tables"] for f in t["files"]] == ["parquet"] * 3
    figures = _figures(on_spark)
    assert figures["orders"][-1] == {
        "amount_not_negative_unless_refunded": 1,
        "not_nullable": 1,
    }
    assert figures["deals"][-1] == {"field_uniqueness": 2, "isin(['open', 'won', 'lost'])": 1}
    for table in ("orders", "deals"):
        assert_frame_equal(
            _rejected(tmp_path / "spark", table, spark=True),
            _rejected(tmp_path / "polars", table, spark=False),
        )
    _assert_same_kpis(tmp_path / "spark", tmp_path / "polars")


def _where(rejected: pl.DataFrame) -> set[tuple[str, int, str]]:
    return set(
        rejected.select("source_file", pl.col("source_line").cast(pl.Int64), "check").iter_rows()
    )


def test_quarantined_rows_name_the_file_and_line_of_the_polars_loader(
    spark: Any, tmp_path: Path, samples: dict[str, pl.DataFrame]
) -> None:
    """Bad orders at known rows of a Parquet file of several row groups: Spark's quarantine
    names the same file, 1-based row and check as the Polars loader's rejected CSV. A table
    folder's part is named by its folder and file name, decoded from Spark's URI of it."""
    orders = samples["orders"]
    last = orders.height - 1
    row = pl.int_range(pl.len())
    bad_orders = orders.with_columns(
        pl.when(row.is_in([0, last])).then(-1.0).otherwise(pl.col("amount")).alias("amount"),
        pl.when(row.is_in([0, last])).then(pl.lit("completed")).otherwise("status").alias("status"),
        pl.when(row == 41).then(None).otherwise(pl.col("customer_id")).alias("customer_id"),
    )
    folder = tmp_path / "in"
    folder.mkdir()
    bad_orders.write_parquet(folder / "orders.parquet", row_group_size=16)
    deals = samples["deals"]
    (folder / "deals").mkdir()
    deals.with_columns(
        pl.when(pl.int_range(pl.len()) == 2).then(pl.lit("pending")).otherwise("status")
        .alias("status")
    ).write_parquet(folder / "deals" / "part 0+1%.parquet")  # fmt: skip
    code, summary = _run(folder.as_uri(), tmp_path / "spark", "--engine", "spark")
    assert code == 0, summary
    assert _run(str(folder), tmp_path / "polars")[0] == 0
    negative = "amount_not_negative_unless_refunded"
    assert _where(_rejected(tmp_path / "spark", "orders", spark=True)) == {
        ("orders.parquet", 1, negative),
        ("orders.parquet", 42, "not_nullable"),
        ("orders.parquet", orders.height, negative),
    }
    assert _where(_rejected(tmp_path / "spark", "orders", spark=True)) == _where(
        _rejected(tmp_path / "polars", "orders", spark=False)
    )
    assert _where(_rejected(tmp_path / "spark", "deals", spark=True)) == {
        ("deals/part 0+1%.parquet", 3, "isin(['open', 'won', 'lost'])")
    }


def test_the_passes_read_the_loaders_spark_frames_and_agree_with_polars(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From a Spark source, every pass over a canonical table or an order view reads the
    loader's validated Spark frame, which reads the Parquet files: no table is uploaded back
    from the driver (the other views still are), the frames have the types an upload would
    have, and the whole catalogue equals Polars' on the same files."""
    from crmkpi import run
    from crmkpi.engines import spark as spark_engine

    folder = _write(tmp_path / "in", generate_tables(SCALES["tiny"], seed=7))
    handed: dict[str, Any] = {}
    uploaded: list[pl.DataFrame] = []
    compute, arrow_of = run.compute, spark_engine.arrow_of

    def recorded_compute(tables: Any, options: Any, *engine: Any) -> Any:
        handed.update(tables=tables, engine=engine)
        return compute(tables, options, *engine)

    def recorded_arrow_of(frame: pl.DataFrame) -> Any:
        uploaded.append(frame)
        return arrow_of(frame)

    monkeypatch.setattr(run, "compute", recorded_compute)
    monkeypatch.setattr(spark_engine, "arrow_of", recorded_arrow_of)
    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("CRMKPI_")}
    options = ["--format", "csv", "--as-of", "2025-06-15", "--by", "segment", "-q"]

    def run_on(engine: str, source: str) -> None:
        args = ["compute", source, "--out", str(tmp_path / engine), "--engine", engine, *options]
        result = CliRunner().invoke(app, args, env=unset)
        assert result.exit_code == 0, result.stdout

    engines = ("spark", "polars")
    run_on("spark", folder.as_uri())
    tables, (engine,) = handed["tables"], handed["engine"]
    run_on("polars", str(folder))
    assert uploaded  # the views built in Polars
    assert [n for n, t in tables.items() if any(f is t for f in uploaded)] == []
    # the order views are plans over the loader's orders on Spark: no order line is uploaded
    # (adopting a table converts its empty head, for the schema an upload would have)
    order_lines = [f for f in uploaded if {ORDER_KEY, "order_id"} & set(f.columns)]
    assert [f.height for f in order_lines] == [0] * len(order_lines)
    # so are shift utilisation and campaign results, over the loader's calls, shifts,
    # campaigns, members and spend: none of their rows is uploaded either
    view_inputs = [
        f
        for f in uploaded
        if {"staffed_seconds", "talk_seconds"} & set(f.columns)
        or {"campaign_id", "started_at"} <= set(f.columns)
        or {"campaign_id", "targeted_at"} <= set(f.columns)
    ]
    assert view_inputs  # the adopted tables' empty heads
    assert [f.height for f in view_inputs] == [0] * len(view_inputs)
    for name, table in tables.items():
        adopted = engine.lazy(table).to_native()
        read = adopted._jdf.queryExecution().analyzed().toString()  # the plan Spark analysed
        assert re.search(r"^\W*Relation \[.*\] parquet$", read, re.MULTILINE), name
        upload = spark.createDataFrame(arrow_of(table))
        assert [(f.name, f.dataType) for f in adopted.schema] == [
            (f.name, f.dataType) for f in upload.schema
        ]
    spark_kpis, polars_kpis = _kpis(tmp_path / "spark"), _kpis(tmp_path / "polars")
    assert polars_kpis["metric"].n_unique() > 30
    assert_frame_equal(spark_kpis, polars_kpis, abs_tol=1e-9, rel_tol=1e-9)
    # the per-customer tables are plans over the same validated orders, computed by Spark
    for table in ("rfm", "churn_risk", "cohorts", "clv_forecast"):
        on_spark, on_polars = (pl.read_csv(tmp_path / e / f"{table}.csv") for e in engines)
        assert on_polars.height > 0, table
        assert_frame_equal(on_spark, on_polars, abs_tol=1e-9, rel_tol=1e-9)


def test_catalog_tables_named_by_spark_tables(
    spark: Any, tmp_path: Path, samples: dict[str, pl.DataFrame]
) -> None:
    folder = _write(tmp_path / "in", samples)
    spark.sql(f"CREATE DATABASE crmkpi_test LOCATION '{tmp_path / 'warehouse'}'")
    try:
        for name in TABLES:
            location = tmp_path / "catalog" / name
            location.mkdir(parents=True)
            samples[name].write_parquet(location / "part-0.parquet")
            spark.sql(f"CREATE TABLE crmkpi_test.{name} USING parquet LOCATION '{location}'")
        named = ",".join(f"crmkpi_test.{name}" for name in TABLES)
        options = ("--engine", "spark", "--spark-tables", named)
        unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("CRMKPI_")}
        args = ["compute", "--out", str(tmp_path / "spark"), "--format", "csv"]
        args += ["--as-of", "2025-06-15", "--metrics", METRICS, "-q", *options]
        result = CliRunner().invoke(app, args, env=unset)
        assert result.exit_code == 0, result.stdout
        assert _run(str(folder), tmp_path / "polars")[0] == 0
        manifest = json.loads((tmp_path / "spark" / "manifest.json").read_text(encoding="utf-8"))
        assert [f["path"] for t in manifest["tables"] for f in t["files"]] == named.split(",")
        on_polars = json.loads((tmp_path / "polars" / "manifest.json").read_text("utf-8"))
        assert _figures(manifest) == _figures(on_polars)
        _assert_same_kpis(tmp_path / "spark", tmp_path / "polars")
        unknown = CliRunner().invoke(app, [*args[:-1], "crmkpi_test.nothing"], env=unset)
        assert unknown.exit_code == 78
    finally:
        spark.sql("DROP DATABASE crmkpi_test CASCADE")


@pytest.mark.parametrize(
    ("fault", "exit_code"),
    [("missing amount", 65), ("amount as booleans", 65), ("no folder", 66)],
)
def test_unusable_inputs_exit_as_on_polars(
    spark: Any, tmp_path: Path, samples: dict[str, pl.DataFrame], fault: str, exit_code: int
) -> None:
    orders = samples["orders"]
    if fault == "missing amount":
        orders = orders.drop("amount")
    elif fault == "amount as booleans":
        orders = orders.with_columns(pl.lit(True).alias("amount"))
    folder = _write(tmp_path / "in", {"orders": orders})
    source = folder.as_uri() if fault != "no folder" else (tmp_path / "nothing").as_uri()
    code, summary = _run(source, tmp_path / "spark", "--engine", "spark")
    assert code == exit_code, summary
    if fault == "no folder":
        return
    polars_code, polars_summary = _run(str(folder), tmp_path / "polars")
    assert polars_code == exit_code
    where, message = summary["message"].split("orders.parquet", 1)
    assert where == folder.as_uri() + "/"
    assert message.startswith(", column 'amount': ")
    if fault == "missing amount":  # the path as the Polars loader names it, then the same
        assert polars_summary["message"].split("orders.parquet", 1)[1] == message
