"""`crmkpi clv-check`: the model-fit check of the BG/NBD papers on a user's own orders.

The models are fitted on the calibration period (purchases up to the calibration end: the same
fit as `compute --as-of` that date) and their predictions for the holdout period (up to the
last purchase day, or a given end) are set against what the customers did: per customer, by
calibration frequency (the papers' conditional-expectation check) and period by period
(the cumulative tracking of repeat purchases).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from crmkpi import clv_models
from crmkpi.errors import ConfigError
from crmkpi.profiles import FIT_GROUP, UNIT_DAYS, ClvForecast, clv_forecast, day_purchases, rfm

TOP_FREQUENCY_BIN = 7  # calibration frequencies of 7 or more share the last bin, as in the papers


@dataclass(frozen=True)
class HoldoutCheck:
    """Predicted against actual holdout purchases, with the calibration fit behind them."""

    forecast: ClvForecast
    calibration_end: dt.date
    holdout_end: dt.date
    customers: pl.DataFrame  # per calibration customer: actual and expected holdout purchases
    by_frequency: pl.DataFrame
    tracking: pl.DataFrame  # per period of the time unit: cumulative repeat purchases
    summary: dict[str, Any]

    def report(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "calibration_end": self.calibration_end.isoformat(),
            "holdout_end": self.holdout_end.isoformat(),
            **self.summary,
            "model": self.forecast.manifest(settings),
        }


def _params_of(frame: pl.DataFrame, params: pl.DataFrame) -> tuple[np.ndarray, ...]:
    """Each row's BG/NBD parameters, by its fit group (rows of skipped groups are dropped by
    the caller's inner join)."""
    joined = frame.join(params, on=FIT_GROUP, how="left")
    return tuple(joined[n].to_numpy().astype(np.float64) for n in ("r", "alpha", "a", "b"))


def holdout_check(
    orders: pl.DataFrame,
    customers: pl.DataFrame | None,
    calibration_end: dt.date,
    settings: Mapping[str, Any],
    holdout_end: dt.date | None = None,
) -> HoldoutCheck:
    """Fit on purchases up to calibration_end; predict and count the holdout purchases."""
    latest_order = orders.select(pl.col("ordered_at").max().dt.date()).item()
    counted_days = day_purchases(orders, latest_order) if latest_order else None
    latest = counted_days.select(pl.col("day").max()).item() if counted_days is not None else None
    end = holdout_end or latest
    if counted_days is None or not isinstance(end, dt.date) or end <= calibration_end:
        raise ConfigError(
            f"calibration-end {calibration_end.isoformat()}: the holdout period after it is "
            f"empty (the last purchase is on {latest}); choose an earlier calibration end"
        )
    all_days = counted_days.filter(pl.col("day") <= end)
    calibration_days = all_days.filter(pl.col("day") <= calibration_end)
    forecast = clv_forecast(
        rfm(orders, customers, calibration_end, settings, calibration_days), settings
    )
    unit_days = UNIT_DAYS[forecast.time_unit]
    params = forecast.purchase_params
    fitted = forecast.table.join(params.select(FIT_GROUP), on=FIT_GROUP, how="inner")
    holdout = (
        all_days.filter(pl.col("day") > calibration_end)
        .group_by("customer_id")
        .len("actual_holdout_purchases")
    )
    span = (end - calibration_end).days / unit_days
    per_customer = fitted.join(holdout, on="customer_id", how="left").with_columns(
        pl.col("actual_holdout_purchases").fill_null(0).cast(pl.Int64)
    )
    r, alpha, a, b = _params_of(per_customer, params)
    with np.errstate(all="ignore"):
        expected = clv_models.bgnbd_conditional_expected(
            r,
            alpha,
            a,
            b,
            span,
            per_customer["frequency"].to_numpy().astype(np.float64),
            per_customer["recency"].to_numpy(),
            per_customer["T"].to_numpy(),
        )
    per_customer = per_customer.select(
        "customer_id",
        FIT_GROUP,
        "frequency",
        "recency",
        "T",
        "p_alive",
        "actual_holdout_purchases",
        pl.Series("expected_holdout_purchases", expected).fill_nan(None),
    )
    tracking, at_calibration_end, at_end = _tracking(
        all_days, fitted, params, calibration_end, end, unit_days
    )
    actual_holdout = int(per_customer["actual_holdout_purchases"].sum())
    summary = {
        "time_unit": forecast.time_unit,
        "holdout_periods": span,
        "customers": forecast.table.height,
        "customers_with_a_fit": per_customer.height,
        "calibration_repeat_purchases": int(per_customer["frequency"].sum()),
        "holdout_repeat_purchases_actual": actual_holdout,
        "holdout_repeat_purchases_expected": float(
            per_customer["expected_holdout_purchases"].sum()
        ),
        "tracking_expected_holdout_repeat_purchases": at_end - at_calibration_end,
        "tracking_expected_cumulative_repeat_purchases": at_end,
        "cumulative_repeat_purchases_actual": int(per_customer["frequency"].sum()) + actual_holdout,
    }
    return HoldoutCheck(
        forecast,
        calibration_end,
        end,
        per_customer.sort("customer_id"),
        _by_frequency(per_customer),
        tracking,
        summary,
    )


def _by_frequency(per_customer: pl.DataFrame) -> pl.DataFrame:
    """Mean actual against mean expected holdout purchases per calibration frequency."""
    top = TOP_FREQUENCY_BIN
    binned = pl.min_horizontal(pl.col("frequency").cast(pl.Int64), pl.lit(top))
    return (
        per_customer.group_by(binned.alias("bin"))
        .agg(
            pl.len().alias("customers"),
            pl.col("actual_holdout_purchases").mean().alias("actual_mean"),
            pl.col("expected_holdout_purchases").mean().alias("expected_mean"),
        )
        .sort("bin")
        .select(
            pl.when(pl.col("bin") == top)
            .then(pl.lit(f"{top}+"))
            .otherwise(pl.col("bin").cast(pl.String))
            .alias("calibration_frequency"),
            "customers",
            "actual_mean",
            "expected_mean",
        )
    )


def _tracking(
    all_days: pl.DataFrame,
    fitted: pl.DataFrame,
    params: pl.DataFrame,
    calibration_end: dt.date,
    end: dt.date,
    unit_days: float,
) -> tuple[pl.DataFrame, float, float]:
    """Cumulative repeat purchases of the calibration customers at the end of each period of
    the time unit, counted from the first calibration day, against the sum of each customer's
    E[X(time since the first purchase)]: the papers' tracking plot. Also the expected totals at
    the calibration end and at the holdout end."""
    firsts = all_days.group_by("customer_id").agg(pl.col("day").min().alias("first_day"))
    cohort = fitted.select("customer_id", FIT_GROUP).join(firsts, on="customer_id")
    if cohort.height == 0:
        return pl.DataFrame(), 0.0, 0.0
    start: dt.date = cohort["first_day"].min()  # type: ignore[assignment]
    births = (
        cohort.group_by(FIT_GROUP, "first_day")
        .len("customers")
        .sort(FIT_GROUP, "first_day")
        .with_columns((pl.col("first_day") - pl.lit(start)).dt.total_days().alias("born"))
    )
    r, alpha, a, b = _params_of(births, params)
    born = births["born"].to_numpy().astype(np.float64)
    weights = births["customers"].to_numpy().astype(np.float64)

    def expected_by(days_since_start: float) -> float:
        """Expected repeat purchases of the cohort before day `start + days_since_start`."""
        spans = (days_since_start - born) / unit_days
        with np.errstate(all="ignore"):
            return float((weights * clv_models.bgnbd_expected(r, alpha, a, b, spans)).sum())

    total_days = (end - start).days + 1
    periods = math.ceil(total_days / unit_days - 1e-9)
    edges = [min(k * unit_days, float(total_days)) for k in range(1, periods + 1)]
    repeat = (
        all_days.join(cohort, on="customer_id")
        .filter(pl.col("day") > pl.col("first_day"))
        .select((pl.col("day") - pl.lit(start)).dt.total_days().alias("offset"))["offset"]
        .sort()
        .to_numpy()
    )
    actual = np.searchsorted(repeat, np.array(edges), side="left")
    tracking = pl.DataFrame(
        {
            "period": list(range(1, periods + 1)),
            "period_end": [start + dt.timedelta(days=math.ceil(e) - 1) for e in edges],
            "holdout": [
                start + dt.timedelta(days=math.ceil(e) - 1) > calibration_end for e in edges
            ],
            "actual_cumulative": actual.astype(np.int64),
            "expected_cumulative": [expected_by(e) for e in edges],
        }
    ).with_columns(
        pl.col("actual_cumulative").diff().fill_null(pl.col("actual_cumulative")).alias("actual"),
        pl.col("expected_cumulative")
        .diff()
        .fill_null(pl.col("expected_cumulative"))
        .alias("expected"),
    )
    calibration_days = (calibration_end - start).days + 1
    return tracking, expected_by(calibration_days), expected_by(float(total_days))


def render_text(check: HoldoutCheck) -> str:
    """The report a user reads on the terminal."""
    s = check.summary
    lines = [
        f"calibration: purchases up to {check.calibration_end.isoformat()}; holdout: "
        f"{check.calibration_end + dt.timedelta(days=1)} to {check.holdout_end} "
        f"({s['holdout_periods']:.2f} {s['time_unit']}s)",
    ]
    for fit in check.forecast.fits:
        model = fit["bg_nbd"]
        figures = (
            f"r={model['r']:.4f} alpha={model['alpha']:.4f} a={model['a']:.4f} "
            f"b={model['b']:.4f} LL={model['log_likelihood']:.2f}"
            if model
            else "no BG/NBD fit"
        )
        lines.append(
            f"fit {fit['group']}: {fit['customers']} customers, {fit['repeat_buyers']} repeat "
            f"buyers; {figures}" + (f" (skipped: {fit['skipped']})" if fit["skipped"] else "")
        )
    lines += [
        f"holdout repeat purchases: actual {s['holdout_repeat_purchases_actual']}, expected "
        f"{s['holdout_repeat_purchases_expected']:.1f} (conditional on each customer's "
        f"calibration), {s['tracking_expected_holdout_repeat_purchases']:.1f} (tracking)",
        f"cumulative repeat purchases by {check.holdout_end}: actual "
        f"{s['cumulative_repeat_purchases_actual']}, expected "
        f"{s['tracking_expected_cumulative_repeat_purchases']:.1f}",
        "calibration frequency  customers  actual mean  expected mean",
    ]
    for row in check.by_frequency.iter_rows(named=True):
        expected = row["expected_mean"]
        lines.append(
            f"{row['calibration_frequency']:>21}  {row['customers']:>9}  "
            f"{row['actual_mean']:>11.3f}  "
            + (f"{expected:>13.3f}" if expected is not None else f"{'-':>13}")
        )
    return "\n".join(lines) + "\n"


def write_check(check: HoldoutCheck, out: Path, settings: Mapping[str, Any]) -> list[Path]:
    """clv_check.json and the three tables as CSV into `out`."""
    from crmkpi.write import write_table

    written = []
    for name, frame in (
        ("clv_check_customers", check.customers),
        ("clv_check_by_frequency", check.by_frequency),
        ("clv_check_tracking", check.tracking),
    ):
        path = out / f"{name}.csv"
        write_table(frame, path, "csv", bom=True)
        written.append(path)
    path = out / "clv_check.json"
    path.write_text(
        json.dumps(check.report(settings), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return [*written, path]
