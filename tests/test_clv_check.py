"""`crmkpi clv-check` on the tiny synthetic sample: the holdout counted from the raw orders, the
fit equal to compute's at the same date, the files it writes and its exit codes."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from crmkpi.cli import app
from crmkpi.clv_check import holdout_check
from crmkpi.configure import resolve_config
from crmkpi.load import load_all
from crmkpi.metrics.settings import resolve_settings
from crmkpi.samples import write_sample_folder
from tests.kpi_helpers import run

CALIBRATION_END = "2025-06-30"
SETTINGS = {"clv_min_repeat_buyers": 5}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny sample's orders with a config lowering the repeat buyers a fit needs."""
    generated = tmp_path_factory.mktemp("tiny")
    write_sample_folder(generated, seed=7, scale="tiny", file_format="csv")
    folder = tmp_path_factory.mktemp("exports")
    shutil.copyfile(generated / "orders.csv", folder / "orders.csv")
    (folder / "crmkpi.toml").write_text(
        '[settings]\nclv_min_repeat_buyers = 5\n\n[tables.orders]\nfile = "orders.csv"\n',
        encoding="utf-8",
    )
    return folder


def _orders(folder: Path) -> pl.DataFrame:
    config, found = resolve_config(folder, None)
    return load_all(config, found).tables["orders"].frame


def test_the_holdout_is_counted_from_the_orders_and_the_fit_is_computes(sample: Path) -> None:
    orders = _orders(sample)
    end = dt.date.fromisoformat(CALIBRATION_END)
    check = holdout_check(orders, None, end, resolve_settings(SETTINGS))
    # actual holdout purchases: distinct purchase days after the calibration end of the
    # customers who had bought by it, counted here from the completed orders
    counted = orders.filter(pl.col("status").is_null() | (pl.col("status") == "completed"))
    days = counted.select("customer_id", pl.col("ordered_at").dt.date().alias("day")).unique()
    buyers = set(days.filter(pl.col("day") <= end)["customer_id"])
    later = days.filter((pl.col("day") > end) & pl.col("customer_id").is_in(list(buyers)))
    assert check.summary["holdout_repeat_purchases_actual"] == later.height
    assert check.holdout_end == days["day"].max()
    assert check.summary["customers"] == len(buyers)
    tracking = check.tracking
    assert tracking["actual_cumulative"][-1] == check.summary["cumulative_repeat_purchases_actual"]
    assert tracking["actual"].sum() == tracking["actual_cumulative"][-1]
    # the calibration fit is the fit of compute --as-of the calibration end
    computed = run({"orders": orders}, as_of=CALIBRATION_END, settings=SETTINGS,
                   metrics=["expected_purchases_next_period"])  # fmt: skip
    assert computed.clv_forecast is not None
    assert check.forecast.fits == computed.clv_forecast.fits


def test_the_command_reports_and_writes_its_tables(sample: Path, tmp_path: Path) -> None:
    out = tmp_path / "check"
    args = ["clv-check", str(sample), "--calibration-end", CALIBRATION_END, "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "holdout repeat purchases: actual" in result.output
    report = json.loads((out / "clv_check.json").read_text(encoding="utf-8"))
    assert report["calibration_end"] == CALIBRATION_END
    assert report["model"]["fits"][0]["bg_nbd"]["converged"] is True
    customers = pl.read_csv(out / "clv_check_customers.csv")
    assert customers["actual_holdout_purchases"].sum() == report["holdout_repeat_purchases_actual"]
    bins = pl.read_csv(
        out / "clv_check_by_frequency.csv", schema_overrides={"calibration_frequency": pl.String}
    )
    assert bins["customers"].sum() == customers.height


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--calibration-end", "2030-01-01"], 78),  # nothing after it: no holdout
        (["--calibration-end", "2025-02-30"], 2),  # not a date
        ([], 2),  # required
    ],
)
def test_exit_codes(sample: Path, args: list[str], code: int) -> None:
    result = CliRunner().invoke(app, ["clv-check", str(sample), *args])
    assert result.exit_code == code, result.output


def test_an_output_folder_inside_the_inputs_is_refused(sample: Path) -> None:
    args = ["clv-check", str(sample), "--calibration-end", CALIBRATION_END]
    result = CliRunner().invoke(app, [*args, "--out", str(sample / "check")])
    assert result.exit_code == 73
    assert not (sample / "check").exists()
