"""Flat exports: a keyed table mapped from a file with one row per line (customers from
Superstore's order lines). Identical copies are one record; copies that differ are
quarantined, naming the columns in which they differ; the manifest says which happened."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from crmkpi.cli import app
from tests import factory as fx
from tests import shapes

TABLES = {"orders": shapes.SUPERSTORE_ORDERS, "customers": shapes.SUPERSTORE_CUSTOMERS}


def test_identical_copies_of_a_customer_are_deduplicated(tmp_path: Path) -> None:
    shapes.write_superstore(tmp_path)
    customers = fx.load(tmp_path, {"tables": TABLES}).tables["customers"]
    # 5 lines, 3 customers: CG-12520 and SO-20335 repeat on a second line, identically
    report = customers.report
    assert (report.rows_read, report.rows_used, report.rows_quarantined) == (5, 3, 0)
    assert (report.rows_deduplicated, report.rows_identical_copies) == (2, 2)
    assert report.reconciles()
    assert sorted(customers.frame["customer_id"]) == ["CG-12520", "DV-13045", "SO-20335"]
    assert any(w.startswith("identical_copies: 2 row(s)") for w in report.warnings)


def test_copies_that_differ_are_quarantined_naming_the_column(tmp_path: Path) -> None:
    rows = [dict(r) for r in shapes.SUPERSTORE_ROWS]
    rows[4]["Segment"] = "Home Office"  # SO-20335's second line says another segment
    shapes.write_superstore(tmp_path, rows)
    customers = fx.load(tmp_path, {"tables": TABLES}).tables["customers"]
    report = customers.report
    # CG-12520 is deduplicated; both SO-20335 lines are quarantined; DV-13045 is kept
    assert (report.rows_used, report.rows_quarantined, report.rows_deduplicated) == (2, 2, 1)
    assert customers.rejected["source_line"].to_list() == [5, 6]
    assert set(customers.rejected["column"]) == {"customer_id"}
    assert set(customers.rejected["reason"]) == {
        "the id is not unique and its copies differ in segment: every copy is quarantined"
    }


def test_the_manifest_says_copies_were_deduplicated(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    exports.mkdir()
    shapes.write_superstore(exports)
    fx.write_config(exports, {"tables": TABLES})
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["compute", str(exports), "--out", str(out), "--as-of", "2016-12-31", "--quiet"]
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    customers = next(t for t in manifest["tables"] if t["table"] == "customers")
    assert (customers["rows_deduplicated"], customers["rows_identical_copies"]) == (2, 2)
    assert customers["rows_quarantined"] == 0
    assert any(w.startswith("identical_copies: ") for w in customers["warnings"])
