"""The aggregation plan: which passes a run makes, shown by `crmkpi compute --explain`."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from crmkpi.cli import app
from crmkpi.metrics import REGISTRY
from crmkpi.metrics.reductions import REDUCTIONS

REPO = Path(__file__).resolve().parents[1]


def test_explain_prints_the_passes_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "kpis"
    result = CliRunner().invoke(
        app,
        ["compute", str(REPO / "sample_data"), "--explain", "--by", "segment", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    summary = json.loads(lines[-1])
    assert summary["status"] == "explained" and summary["outputs"] == []
    text = "\n".join(lines[:-1])
    # orders: one pass at the finest grain serves the additive parts of both grains; the
    # distinct count of orders gets a pass of its own at the total, where no sum is exact
    assert "completed_orders by ordered_at:" in text
    assert "rows at segment; additive parts rolled up to total: " in text
    assert "rows at total: orders_count" in text
    assert "grains total, segment" in text
    assert not out.exists()


def test_every_aggregate_kind_says_how_it_combines() -> None:
    """Additive kinds sum across cells. Distinct counts sum only across cells that hold
    entities of their own (a customer in two reps' cells is one customer of the total); a
    median never does."""
    kinds = {m.agg for m in REGISTRY.metrics.values() if hasattr(m, "agg")}
    assert kinds <= set(REDUCTIONS)
    assert {k for k, r in REDUCTIONS.items() if r.additive} == {"count", "sum", "mean"}
    assert all(r.aggregate is not None for r in REDUCTIONS.values() if r.passes == "rows")
    own_entities = {k for k, r in REDUCTIONS.items() if r.sums_over_own_entities}
    assert own_entities == {"n_unique", "count_entities", "retained"}
