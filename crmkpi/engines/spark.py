"""Apache Spark through narwhals' PySpark backend: the plan's aggregations run on a Spark
session (local, or the cluster of `spark-submit` / a Databricks job). Tables the Spark loader
checked are read where it left them; other frames (the views, tables the Polars loader read)
are uploaded from the driver through Arrow; only the small aggregates come back."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Sequence
from typing import Any

import narwhals as nw
import polars as pl

from crmkpi.engines import Frame, arrow_of, collect_spark_like
from crmkpi.errors import ConfigError

MASTER_VARIABLE = "CRMKPI_SPARK_MASTER"
DEFAULT_MASTER = "local[*]"


def local_cores(master: str) -> int | None:
    """The worker threads of a `local`, `local[N]` or `local[*]` master; None for a cluster."""
    found = re.fullmatch(r"local(?:\[(\*|\d+)(?:,\d+)?\])?", master)
    if found is None:
        return None
    threads = found.group(1)
    if threads is None:
        return 1
    return os.cpu_count() or 1 if threads == "*" else int(threads)


def _check_java() -> None:
    """PySpark starts a JVM from JAVA_HOME or the PATH; without either it fails late with a
    gateway error, so say what is missing first."""
    home = os.environ.get("JAVA_HOME")
    if home:
        if not os.path.isfile(os.path.join(home, "bin", "java")):
            raise ConfigError(f"engine spark: JAVA_HOME={home} has no bin/java")
        return
    if shutil.which("java") is None:
        raise ConfigError(
            "engine spark needs Java 17 or later: install it (Debian: apt-get install "
            "openjdk-17-jre-headless) or set JAVA_HOME"
        )


def spark_session(master: str | None = None) -> Any:
    """The session to run on: the active one (inside spark-submit or a Databricks job) unless a
    master is given by `--spark-master` or CRMKPI_SPARK_MASTER; else a new one on `local[*]`.
    A local session gets as many shuffle partitions as threads (Spark's 200 are made for a
    cluster and cost seconds per aggregation on small data) and session time zone UTC, so the
    datetime fields the metrics read are the wall-clock values of the inputs."""
    from pyspark.sql import SparkSession

    master = master or os.environ.get(MASTER_VARIABLE) or None
    active = SparkSession.getActiveSession()
    if active is not None and master is None:
        return active
    master = master or DEFAULT_MASTER
    builder = SparkSession.builder.appName("crmkpi").master(master)
    builder = builder.config("spark.sql.session.timeZone", "UTC")
    cores = local_cores(master)
    if cores is not None:
        _check_java()
        builder = (
            builder.config("spark.sql.shuffle.partitions", str(cores))
            .config("spark.default.parallelism", str(cores))
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
        )
    try:
        return builder.getOrCreate()
    except Exception as exc:  # the JVM did not start: wrong Java, no memory, bad master
        raise ConfigError(f"engine spark: no Spark session on master {master}: {exc}") from exc


class SparkEngine:
    name = "spark"

    def __init__(self, master: str | None = None) -> None:
        try:
            import pyspark  # noqa: F401
        except ImportError as exc:
            raise ConfigError(
                "engine spark needs the optional extra: pip install 'crmkpi[spark]'"
            ) from exc
        self.session = spark_session(master)
        # id of a collected table -> (that table, kept so its id stays its own; the Spark frame
        # it was collected from, typed as its upload would be)
        self._validated: dict[int, tuple[pl.DataFrame, Any]] = {}
        self._persisted: list[Any] = []  # the frames `cache` kept, until `close`

    def adopt(self, collected: pl.DataFrame, validated: Any) -> None:
        """Read `collected`, a table the Spark loader checked and collected for the views, from
        the loader's Spark frame `validated` instead of uploading it back. Its columns get the
        types an upload of `collected` would have (Spark's own Arrow mapping: a datetime becomes
        the session's timestamp type), so the passes compute the same on either."""
        from pyspark.sql import functions as F
        from pyspark.sql.pandas.types import from_arrow_schema

        prefer_ntz = self.session.conf.get("spark.sql.timestampType") == "TIMESTAMP_NTZ"
        uploaded = from_arrow_schema(arrow_of(collected.head(0)).schema, prefer_ntz)
        typed = validated.select(*(F.col(f.name).cast(f.dataType) for f in uploaded.fields))
        self._validated[id(collected)] = (collected, typed)

    def lazy(self, frame: Frame) -> nw.LazyFrame[Any]:
        adopted = self._validated.get(id(frame))
        if adopted is not None:
            return nw.from_native(adopted[1])
        return nw.from_native(self.session.createDataFrame(arrow_of(frame)))

    def collect_all(self, plans: Sequence[nw.LazyFrame[Any]]) -> list[pl.DataFrame]:
        return collect_spark_like(plans)

    def cache(self, frame: Any) -> Any:
        """`frame` (a Spark DataFrame) cached where the executors computed it (memory,
        spilling to disk), not on the driver, until `close`."""
        cached = frame.persist()
        self._persisted.append(cached)
        return cached

    def persist(self, plan: nw.LazyFrame[Any]) -> nw.LazyFrame[Any]:
        return nw.from_native(self.cache(nw.to_native(plan)))

    def close(self) -> None:
        for frame in self._persisted:
            frame.unpersist()
        self._persisted.clear()
