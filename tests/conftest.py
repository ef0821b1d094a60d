"""Shared fixtures: paths to the repository's folders and to the real exports beside it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATASETS = REPO.parent / "shared" / "datasets"


@pytest.fixture
def datasets() -> Path:
    """The real public exports in ../shared/datasets; tests using them skip where it is absent."""
    if not SHARED_DATASETS.is_dir():
        pytest.skip("../shared/datasets is not beside the repository")
    return SHARED_DATASETS


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One local Spark session (`local[2]`) for every Spark test module: a session takes ~8 s
    to start. The engine and the Spark loader pick it up as the active session."""
    pytest.importorskip("pyspark", reason="PySpark is the optional extra crmkpi[spark]")
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        pytest.skip("no Java runtime for PySpark (make system-deps installs it)")
    saved = os.environ.pop("CRMKPI_SPARK_MASTER", None)
    from crmkpi.engines.spark import spark_session

    session = spark_session("local[2]")
    assert session.conf.get("spark.sql.shuffle.partitions") == "2"
    yield session
    session.stop()
    if saved is not None:
        os.environ["CRMKPI_SPARK_MASTER"] = saved
