"""The published BG/NBD and Gamma-Gamma figures on the CDNOW sample, reproduced.

Fader, Hardie & Lee (2005) fit BG/NBD to the 2,357 customers of the CDNOW sample over a 39-week
calibration (1997-01-01 to 1997-09-30, weeks): r = 0.243, alpha = 4.414, a = 0.793, b = 2.426,
log-likelihood -9582.4. Fader & Hardie's Gamma-Gamma note fits the same customers' repeat
purchases: p = 6.25, q = 3.74, gamma = 15.44. The BTYD walkthrough's tracking of the holdout
(weeks 40-78): 1,882 actual repeat purchases against about 1,664 expected, 4,339 actual by week
78 against about 4,166. The customers' x, t_x, T and mean repeat value are computed here from
the raw file with plain Python; the tests skip where ../shared is absent.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections import defaultdict
from pathlib import Path
from statistics import fmean

import pytest

from crmkpi.clv_check import holdout_check
from crmkpi.configure import resolve_config
from crmkpi.load import load_all
from crmkpi.metrics.settings import resolve_settings
from crmkpi.profiles import clv_forecast, rfm
from tests.conftest import REPO

CALIBRATION_END = dt.date(1997, 9, 30)


@functools.cache
def _orders() -> object:
    config, folder = resolve_config(None, REPO / "examples" / "cdnow_sample" / "crmkpi.toml")
    loaded = load_all(config, folder)
    assert loaded.failures == []
    return loaded.tables["orders"].frame


def _customers(datasets: Path) -> list[tuple[int, float, float, float]]:
    """(x, t_x, T in weeks, mean repeat-day value) per customer, from the raw sample file."""
    spend: dict[str, dict[dt.date, float]] = defaultdict(lambda: defaultdict(float))
    for line in (datasets / "cdnow" / "CDNOW_sample.txt").read_text().splitlines():
        if line.strip():
            _, customer, date, _, value = line.split()
            day = dt.datetime.strptime(date, "%Y%m%d").date()
            if day <= CALIBRATION_END:
                spend[customer][day] += float(value)
    rows = []
    for days in spend.values():
        ordered = sorted(days)
        repeat = [days[d] for d in ordered[1:]]
        rows.append((
            len(repeat),
            (ordered[-1] - ordered[0]).days / 7,
            (CALIBRATION_END - ordered[0]).days / 7,
            fmean(repeat) if repeat else 0.0,
        ))  # fmt: skip
    return rows


def _log_likelihood(
    r: float, alpha: float, a: float, b: float, x: int, t_x: float, T: float
) -> float:
    """FHL 2005 eq. 6 for one customer, in linear space (CDNOW's x are small enough)."""

    def beta(u: float, v: float) -> float:
        return math.gamma(u) * math.gamma(v) / math.gamma(u + v)

    rate = math.gamma(r + x) / math.gamma(r) * alpha**r
    alive = beta(a, b + x) / beta(a, b) * rate / (alpha + T) ** (r + x)
    gone = beta(a + 1, b + x - 1) / beta(a, b) * rate / (alpha + t_x) ** (r + x) if x else 0.0
    return math.log(alive + gone)


def test_the_published_log_likelihood_at_the_published_parameters(datasets: Path) -> None:
    customers = _customers(datasets)
    assert len(customers) == 2357
    assert sum(c[0] for c in customers) == 2457  # repeat purchases in the calibration
    total = sum(_log_likelihood(0.243, 4.414, 0.793, 2.426, x, tx, t) for x, tx, t, _ in customers)
    assert round(total, 1) == pytest.approx(-9582.4, abs=0.15)


def test_bgnbd_and_gamma_gamma_fits_reproduce_the_published_estimates(datasets: Path) -> None:
    customers = _customers(datasets)
    forecast = clv_forecast(rfm(_orders(), None, CALIBRATION_END, resolve_settings({})),
                            resolve_settings({}))  # fmt: skip
    (fit,) = forecast.fits
    bg, gg = fit["bg_nbd"], fit["gamma_gamma"]
    assert bg["converged"] and gg["converged"] and fit["skipped"] is None
    assert [round(bg[k], 3) for k in ("r", "alpha", "a", "b")] == [0.243, 4.414, 0.793, 2.426]
    assert round(bg["log_likelihood"], 1) == -9582.4
    assert [round(gg["p"], 2), round(gg["q"], 2), round(gg["gamma"], 2)] == [6.25, 3.74, 15.44]
    assert fit["repeat_buyers"] == sum(1 for c in customers if c[0] > 0) == 946
    # the fitted log-likelihood is the direct evaluation at the fitted parameters
    direct = sum(_log_likelihood(bg["r"], bg["alpha"], bg["a"], bg["b"], x, tx, t)
                 for x, tx, t, _ in customers)  # fmt: skip
    assert bg["log_likelihood"] == pytest.approx(direct, rel=1e-9)
    # the table carries lifetimes' x, t_x, T (weeks) and the mean repeat value
    got = sorted(forecast.table.select("frequency", "recency", "T", "monetary_value").iter_rows())
    flat = [v for row in got for v in row]
    assert flat == pytest.approx([v for row in sorted(customers) for v in row], rel=1e-12)


def test_the_holdout_tracking_of_the_btyd_walkthrough(datasets: Path) -> None:
    check = holdout_check(_orders(), None, CALIBRATION_END, resolve_settings({}))
    s = check.summary
    assert check.holdout_end == dt.date(1998, 6, 30)
    assert s["holdout_periods"] == 39.0
    assert s["holdout_repeat_purchases_actual"] == 1882
    assert s["cumulative_repeat_purchases_actual"] == 4339
    assert s["tracking_expected_holdout_repeat_purchases"] == pytest.approx(1664, abs=1.0)
    assert s["tracking_expected_cumulative_repeat_purchases"] == pytest.approx(4166, abs=1.0)
    # week 78 is the last week of the tracking, ending on the last day of the holdout
    last = check.tracking.row(-1, named=True)
    assert (last["period"], last["period_end"]) == (78, dt.date(1998, 6, 30))
    assert last["actual_cumulative"] == 4339
    # the actual means per calibration frequency, counted from the raw file
    holdout: dict[str, set[dt.date]] = defaultdict(set)
    frequency: dict[str, set[dt.date]] = defaultdict(set)
    for line in (datasets / "cdnow" / "CDNOW_sample.txt").read_text().splitlines():
        if line.strip():
            _, customer, date, _, _ = line.split()
            day = dt.datetime.strptime(date, "%Y%m%d").date()
            (holdout if day > CALIBRATION_END else frequency)[customer].add(day)
    bins: dict[str, list[int]] = defaultdict(list)
    for customer, days in frequency.items():
        bins[str(min(len(days) - 1, 7)).replace("7", "7+")].append(len(holdout[customer]))
    got = {
        r["calibration_frequency"]: r["actual_mean"]
        for r in check.by_frequency.iter_rows(named=True)
    }
    assert got == pytest.approx({k: fmean(v) for k, v in bins.items()})
    # customers who bought again in the calibration are expected to buy more in the holdout
    expected = check.by_frequency["expected_mean"].to_list()
    assert expected == sorted(expected)
