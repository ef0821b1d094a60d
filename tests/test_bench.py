"""A seconds-long smoke run of `make bench`, to keep it working: it asserts the three
implementations of the core subset agree and the reports are written, never a timing."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


def test_benchmark_smoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(REPO))
    from benchmarks import bench

    monkeypatch.setattr(bench, "DATA", tmp_path / "data")
    report = bench.main(["--scale", "tiny", "--formats", "parquet,csv", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["scale"] == "tiny" and set(saved["formats"]) == {"parquet", "csv"}
    for result in report["formats"].values():
        assert result["core_subset_results_equal"] is True
        assert result["core_subset"]["crmkpi"]["rows"] > 0
        assert set(result["ratios"]) >= {"end_to_end_vs_floor", "pandas_vs_crmkpi_subset"}
    assert "core subset: duckdb" in (tmp_path / "results.md").read_text()
    assert sys.modules["benchmarks.contenders"]
