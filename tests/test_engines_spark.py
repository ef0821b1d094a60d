"""`--engine spark` on a real local Spark session (`local[2]`, two shuffle partitions): the
whole catalogue equals Polars' on the tiny sample, and bad inputs end a run with the same exit
code and the same quarantined rows as on Polars. Skipped without PySpark or a Java runtime; the
Spark-like code path is also covered without a JVM by SQLFrame in test_engines_agree.py."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from crmkpi.api import compute_kpis
from crmkpi.cli import app
from crmkpi.engines import engine_named
from crmkpi.errors import ConfigError
from crmkpi.samples import SCALES, generate_tables

pytest.importorskip("pyspark", reason="PySpark is the optional extra crmkpi[spark]")
if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
    pytest.skip(
        "no Java runtime for PySpark (make system-deps installs openjdk-17-jre-headless)",
        allow_module_level=True,
    )


def test_spark_agrees_with_polars_on_the_whole_catalogue(spark: Any) -> None:
    tables = generate_tables(SCALES["tiny"], seed=7)
    by = ("segment",)
    keys = ["period_start", "grain", *by, "metric"]
    outs = [
        compute_kpis(tables, period="quarter", by=by, as_of=dt.date(2025, 6, 15), engine=e)
        .sort(keys, nulls_last=True)
        for e in ("polars", "spark")
    ]  # fmt: skip
    assert outs[0]["metric"].n_unique() > 30
    assert_frame_equal(outs[0], outs[1], abs_tol=1e-9, rel_tol=1e-9)


def test_the_engine_uses_the_active_session(spark: Any) -> None:
    engine = engine_named("spark")
    assert engine.session is spark  # type: ignore[attr-defined]


def test_a_missing_java_home_is_a_config_error(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crmkpi.engines.spark import spark_session

    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(ConfigError, match="no bin/java") as raised:
        spark_session("local[1]")
    assert raised.value.exit_code == 78


# --- bad inputs end to end ----------------------------------------------------------------------

ORDERS = ["order_id", "customer_id", "ordered_at", "amount", "status"]
GOOD = [
    ["o1", "c1", "2024-01-05", "10.50", "completed"],
    ["o2", "c2", "2024-02-07", "20.00", "completed"],
    ["o3", "c1", "2024-04-09", "5.25", "completed"],
    ["o4", "c3", "2024-05-11", "7.00", "completed"],
]
BAD_INPUTS = {
    "missing column": (ORDERS[:3] + ORDERS[4:], [r[:3] + r[4:] for r in GOOD]),
    "unparseable date": (ORDERS, [*GOOD, ["o5", "c2", "2024-02-30", "3.00", "completed"]]),
    "negative amount": (ORDERS, [*GOOD, ["o6", "c3", "2024-03-01", "-4.00", "completed"]]),
}


def _run(folder: Path, engine: str) -> tuple[int, dict[str, str], dict[str, Any]]:
    """Exit code, rejected files (name -> text) and summary of `crmkpi compute` in-process."""
    out = folder.parent / f"out-{folder.name}-{engine}"
    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("CRMKPI_")}
    args = ["compute", str(folder), "--engine", engine, "--out", str(out), "--format", "csv"]
    args += ["--metrics", "revenue,orders_count,average_order_value", "--max-reject-rate", "0.5"]
    result = CliRunner().invoke(app, args, env=unset)
    rejected = out / "rejected"
    files = {p.name: p.read_text(encoding="utf-8-sig") for p in sorted(rejected.glob("*"))}
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    return result.exit_code, files, summary


@pytest.mark.parametrize("fault", sorted(BAD_INPUTS))
def test_bad_inputs_fail_and_quarantine_alike_on_spark_and_polars(
    spark: Any, tmp_path: Path, fault: str
) -> None:
    header, rows = BAD_INPUTS[fault]
    folder = tmp_path / fault.replace(" ", "_")
    folder.mkdir()
    with (folder / "orders.csv").open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([header, *rows])
    polars_code, polars_rejected, polars_summary = _run(folder, "polars")
    spark_code, spark_rejected, spark_summary = _run(folder, "spark")
    assert spark_code == polars_code
    assert spark_rejected == polars_rejected
    for key in ("status", "exit_code", "rows_rejected", "metrics_computed", "message"):
        assert spark_summary[key] == polars_summary[key]
    if fault == "missing column":
        assert polars_code == 65
        assert "amount" in (polars_summary["message"] or "")
    else:
        assert polars_code == 0
        assert polars_summary["rows_rejected"] == 1
        reasons = pl.read_csv(folder.parent / f"out-{folder.name}-spark/rejected/orders.csv")
        assert reasons.height == 1


def test_spark_submit_runs_compute_on_the_active_session(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The spark-submit entry point is `crmkpi compute ... --engine spark` on the job's session."""
    from crmkpi import spark_submit

    assert spark_submit.compute_arguments(["in", "--engine=polars"]) == [
        "compute",
        "in",
        "--engine=polars",
    ]
    folder = tmp_path / "in"
    folder.mkdir()
    with (folder / "orders.csv").open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([ORDERS, *GOOD])
    for name in [n for n in os.environ if n.startswith("CRMKPI_")]:
        monkeypatch.delenv(name)
    out = tmp_path / "out"
    args = [str(folder), "--out", str(out), "--format", "csv", "--metrics", "revenue", "-q"]
    with pytest.raises(SystemExit) as ended:
        spark_submit.main(args)
    assert ended.value.code == 0
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["options"]["engine"] == "spark"


def test_a_run_unpersists_the_frames_it_cached(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loader's checked rows of every table, the order spans, the customer base and the
    purchase days are cached on the executors for the passes that read them, and freed once
    the run has written its outputs: a long-lived session (a notebook, a Databricks job) does
    not keep a run's frames."""
    from pyspark import StorageLevel

    from crmkpi.engines.spark import SparkEngine
    from crmkpi.samples import write_sample_folder

    cached: list[Any] = []
    cache = SparkEngine.cache

    def recorded(self: SparkEngine, frame: Any) -> Any:
        kept = cache(self, frame)
        assert kept.storageLevel != StorageLevel.NONE
        cached.append(kept)
        return kept

    monkeypatch.setattr(SparkEngine, "cache", recorded)
    folder = tmp_path / "in"
    write_sample_folder(folder, 7, "tiny", "parquet")
    args = ["compute", folder.as_uri(), "--out", str(tmp_path / "out"), "--engine", "spark",
            "--as-of", "2025-06-15", "--format", "csv", "-q"]  # fmt: skip
    result = CliRunner().invoke(app, args)  # a URI: the Spark loader reads the folder
    assert result.exit_code == 0, result.stdout
    tables = len(list(folder.glob("*.parquet")))
    assert tables >= 5
    assert len(cached) == tables + 3  # + the order spans, the customer base, the purchase days
    assert [f.storageLevel for f in cached] == [StorageLevel.NONE] * len(cached)
