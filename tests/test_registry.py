"""The registry checks itself, and third-party metrics load from the entry-point group."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import narwhals as nw
import pytest

import crmkpi.metrics as metrics_module
from crmkpi.metrics import REGISTRY, table_columns
from crmkpi.metrics.base import Ratio, Registry, Simple
from crmkpi.metrics.settings import SETTINGS

PLUGIN_METRICS = [
    Simple(
        name="big_deals_won",
        title_en="Big deals won",
        title_zh="大单赢单数",
        family="sales",
        unit="count",
        table="deals",
        anchor="closed_at",
        agg="count",
        columns=("status", "amount"),
        formula="won deals of 100,000 or more",
        where=lambda ctx: (nw.col("status") == "won") & (nw.col("amount") >= 100_000),
    ),
]


def _check(registry: Registry) -> None:
    registry.check(table_columns(), {}, [*SETTINGS, "churn_source"])


def _simple(name: str, **changes: object) -> Simple:
    fields = dict(
        name=name,
        title_en="x",
        title_zh="x",
        family="sales",
        unit="count",
        table="deals",
        anchor="created_at",
        agg="count",
        formula="x",
    )
    fields.update(changes)
    return Simple(**fields)  # type: ignore[arg-type]


def test_registry_is_valid_and_acyclic() -> None:
    _check(REGISTRY)
    assert len(REGISTRY.order()) == len(REGISTRY.metrics)


@pytest.mark.parametrize(
    ("metric", "message"),
    [
        (_simple("BadName"), "snake_case"),
        (_simple("x", table="nowhere"), "unknown table"),
        (_simple("x", columns=("no_such_column",)), "has no column"),
        (_simple("x", family="astrology"), "unknown family"),
        (_simple("x", settings=("no_such_setting",)), "unknown setting"),
        (
            Ratio(
                name="r",
                title_en="r",
                title_zh="r",
                family="sales",
                unit="ratio",
                formula="r",
                numerator="missing",
                denominator="deals_won",
            ),
            "is not a metric",
        ),
    ],
)
def test_registry_rejects_bad_declarations(metric: Simple, message: str) -> None:
    registry = Registry()
    registry.add(*REGISTRY.metrics.values())
    registry.add(metric)
    with pytest.raises(ValueError, match=message):
        _check(registry)


def test_registry_rejects_duplicates_and_cycles() -> None:
    registry = Registry()
    registry.add(_simple("a"))
    with pytest.raises(ValueError, match="twice"):
        registry.add(_simple("a"))
    cyclic = Registry()
    cyclic.add(
        Ratio(
            name="p",
            title_en="p",
            title_zh="p",
            family="sales",
            unit="ratio",
            formula="p",
            numerator="q",
            denominator="q",
        ),
        Ratio(
            name="q",
            title_en="q",
            title_zh="q",
            family="sales",
            unit="ratio",
            formula="q",
            numerator="p",
            denominator="p",
        ),
    )
    with pytest.raises(ValueError, match="cycle"):
        cyclic.order()


def test_plugin_metrics_load_from_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = EntryPoint(
        name="big",
        value="tests.test_registry:PLUGIN_METRICS",
        group=metrics_module.ENTRY_POINT_GROUP,
    )
    monkeypatch.setattr(metrics_module, "entry_points", lambda group: [entry])
    registry = metrics_module.build_registry()
    assert "big_deals_won" in registry.metrics
    assert len(registry.metrics) == len(REGISTRY.metrics) + 1
