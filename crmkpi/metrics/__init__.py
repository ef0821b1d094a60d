"""The metric registry: every KPI of KPI_CATALOGUE.md, checked at import.

Third-party packages add metrics through the entry-point group `crmkpi.metrics`: each entry
point names a list of Metric objects (or a callable returning one).
"""

from __future__ import annotations

from importlib.metadata import entry_points

from crmkpi.metrics import callcentre, customers, marketing, quality, sales, service
from crmkpi.metrics.base import Metric, Registry
from crmkpi.metrics.settings import SETTINGS
from crmkpi.tables import TABLE_NAMES, columns_of
from crmkpi.views import VIEW_COLUMNS

ENTRY_POINT_GROUP = "crmkpi.metrics"
# Columns the engine adds to every table with a customer_id, and to facts after the calendar join.
ENGINE_COLUMNS = ("customer_acquired_on", "period_start", "period_end")


def _plugin_metrics() -> list[Metric]:
    found: list[Metric] = []
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        loaded = entry.load()
        found.extend(loaded() if callable(loaded) else loaded)
    return found


def table_columns() -> dict[str, set[str]]:
    """Columns a metric may declare, per table and view."""
    tables = {t: set(columns_of(t)) | set(ENGINE_COLUMNS) for t in TABLE_NAMES}
    orders = tables["orders"] | {"order_key", "customer_first_order_on"}
    views = {name: set(cols) | set(ENGINE_COLUMNS) for name, cols in VIEW_COLUMNS.items()}
    views["completed_orders"] = views["placed_orders"] = orders
    return tables | views


def build_registry() -> Registry:
    registry = Registry()
    registry.add(
        *sales.METRICS,
        *customers.METRICS,
        *service.METRICS,
        *callcentre.METRICS,
        *marketing.METRICS,
        *quality.METRICS,
        *_plugin_metrics(),
    )
    registry.check(table_columns(), {}, [*SETTINGS, "churn_source"])
    return registry


REGISTRY = build_registry()
