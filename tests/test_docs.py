"""Docs generated from the registry: the README's metric table and `crmkpi metrics`."""

from __future__ import annotations

from typer.testing import CliRunner

from crmkpi.cli import app
from crmkpi.docs import toml_value, update_readme
from crmkpi.metrics import REGISTRY
from crmkpi.metrics.settings import SETTINGS
from tests.conftest import REPO


def test_readme_metric_table_is_current() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert text == update_readme(text), "README metric table drifted: run `make docs`"


def test_every_output_metric_is_in_the_readme() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    for metric in REGISTRY.outputs():
        assert f"| `{metric.name}` | {metric.title_zh} |" in text


def test_metrics_lists_the_catalogue() -> None:
    result = CliRunner().invoke(app, ["metrics"])
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert len(lines) == len(REGISTRY.outputs())
    win_rate = next(line for line in lines if line.startswith("win_rate\t"))
    assert win_rate.split("\t")[1:3] == ["成交率 / 赢单率", "ratio"]
    assert win_rate.split("\t")[-1] == "deals"


def test_metrics_name_shows_one() -> None:
    result = CliRunner().invoke(app, ["metrics", "cac"])
    assert result.exit_code == 0
    assert "客户获取成本" in result.output
    assert "spend" in result.output and "customer_base" in result.output
    assert "inputs:    acquisition_spend, new_customers" in result.output


def test_metrics_unknown_name_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["metrics", "no_such_metric"])
    assert result.exit_code == 2


def test_metrics_name_shows_each_setting_with_its_default() -> None:
    metric = next(m for m in REGISTRY.outputs() if len(m.settings) > 1)
    output = CliRunner().invoke(app, ["metrics", metric.name]).output
    for name in metric.settings:
        assert f"{name} = {toml_value(SETTINGS[name].default)} (" in output, name
    assert "inactivity_days = 365 (" in CliRunner().invoke(app, ["metrics", "churn_rate"]).output
