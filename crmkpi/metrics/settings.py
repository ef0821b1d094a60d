"""Metric settings: every choice between conventions is a named setting with a default.

They are set in the `[settings]` table of crmkpi.toml (or CRMKPI_* variables, or options) and
checked here, so a typo fails the run with exit 78 instead of silently using a default.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from crmkpi.errors import ConfigError

CLV_TIME_UNITS = ("day", "week", "month")
CLV_FIT_DIMENSIONS = ("segment", "region", "rep")  # the customer dimensions rfm carries


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    doc: str
    check: Callable[[Any], bool]
    expected: str
    # what docs/config.md shows as an example; None: the default
    example: Any = None


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _non_negative_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def _positive_number_or_none(value: Any) -> bool:
    return value is None or (_non_negative_number(value) and value > 0)


def _string_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting(
            "fiscal_year_start",
            1,
            "first month of the fiscal year (1 = January)",
            lambda v: isinstance(v, int) and 1 <= v <= 12,
            "a month number 1..12",
        ),
        Setting(
            "week_start",
            "monday",
            "first day of a week",
            lambda v: (
                v in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
            ),
            "a weekday name such as monday",
        ),
        Setting(
            "win_rate_basis",
            "closed",
            "closed: won / (won + lost) by close date; created: share of the deals created "
            "in the period won by as-of",
            lambda v: v in ("closed", "created"),
            "closed or created",
        ),
        Setting(
            "max_periods",
            5000,
            "most periods a run may hold, from the first dated row to as-of (a run past it is "
            "refused before computing: an as-of years ahead at --period day is a typo, not work)",
            _positive_int,
            "a positive whole number of periods",
        ),
        Setting(
            "inactivity_days",
            365,
            "a customer without a churn date churns this many days after the last order",
            _positive_int,
            "a positive whole number of days",
        ),
        Setting(
            "clv_max_years",
            10,
            "cap on the expected customer lifetime in CLV",
            _positive_number_or_none,
            "a positive number of years",
        ),
        Setting(
            "clv_lifetime_years",
            None,
            "fixed expected lifetime for CLV instead of 1 / churn rate",
            _positive_number_or_none,
            "a positive number of years",
            example=5,
        ),
        Setting(
            "csat_satisfied_min",
            4,
            "lowest CSAT score counted as satisfied (1..5 scale)",
            lambda v: _non_negative_number(v) and 1 <= v <= 5,
            "a score from 1 to 5",
        ),
        Setting(
            "service_level_seconds",
            20,
            "answer-time threshold of the service level (<=)",
            _non_negative_number,
            "a number of seconds",
        ),
        Setting(
            "short_abandon_seconds",
            0,
            "abandoned calls that waited less than this are short abandons (0: none)",
            _non_negative_number,
            "a number of seconds",
        ),
        Setting(
            "training_window_days",
            90,
            "days after a training whose won revenue training_effectiveness compares with the "
            "same number of days before it",
            _positive_int,
            "a positive whole number of days",
        ),
        Setting(
            "profile_fields",
            ["name", "email", "phone", "address"],
            "customer fields checked by customer_data_completeness",
            _string_list,
            "a list of customer column names",
        ),
        Setting(
            "churn_risk_window_days",
            90,
            "window compared by churn_risk",
            _positive_int,
            "a positive whole number of days",
        ),
        Setting(
            "churn_risk_drop",
            0.5,
            "fall in activity against the previous window that flags a customer at risk",
            lambda v: _non_negative_number(v) and v <= 1,
            "a fraction between 0 and 1",
        ),
        Setting(
            "risk_multiple",
            2,
            "days since the last purchase over the usual gap that flags a customer at risk",
            _positive_number_or_none,
            "a positive number",
        ),
        Setting(
            "clv_time_unit",
            "week",
            "time unit of the BG/NBD model behind clv_forecast (day, week or month of "
            "365.25 / 12 days); alpha is reported in it",
            lambda v: v in CLV_TIME_UNITS,
            "day, week or month",
        ),
        Setting(
            "clv_horizon_periods",
            None,
            "forecast horizon of clv_forecast in periods of clv_time_unit; None: one year",
            _positive_number_or_none,
            "a positive number of periods",
            example=26,
        ),
        Setting(
            "clv_discount_rate",
            0.01,
            "monthly discount rate of predicted_clv (as lifetimes' customer_lifetime_value)",
            lambda v: _non_negative_number(v) and v < 1,
            "a monthly rate from 0 to below 1",
        ),
        Setting(
            "p_alive_threshold",
            0.5,
            "a customer whose BG/NBD probability of being alive is below this is likely churned",
            lambda v: _non_negative_number(v) and v <= 1,
            "a probability between 0 and 1",
        ),
        Setting(
            "clv_min_repeat_buyers",
            20,
            "fewest repeat buyers a BG/NBD or Gamma-Gamma fit needs; fewer: the fit is skipped",
            _positive_int,
            "a positive whole number of customers",
        ),
        Setting(
            "clv_fit_by",
            None,
            "customer dimension with one CLV model fit per value (e.g. segment); None: one fit",
            lambda v: v is None or v in CLV_FIT_DIMENSIONS,
            f"one of {', '.join(CLV_FIT_DIMENSIONS)}",
            example="segment",
        ),
        Setting(
            "rfm_segments",
            None,
            "RFM segment rules (see the docs); None: the defaults",
            lambda v: v is None or isinstance(v, list),
            "a list of rules",
            example=[{"name": "vip", "scores": {"r": [4, 5], "m": [5, 5]}}],
        ),
    )
}


def resolve_settings(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults overlaid with the given values, each checked; unknown names are errors."""
    unknown = sorted(set(raw) - set(SETTINGS))
    if unknown:
        raise ConfigError(
            f"settings: unknown setting(s) {', '.join(unknown)}; known settings: "
            f"{', '.join(sorted(SETTINGS))}"
        )
    resolved = {name: setting.default for name, setting in SETTINGS.items()}
    for name, value in raw.items():
        if not SETTINGS[name].check(value):
            raise ConfigError(f"settings.{name}: expected {SETTINGS[name].expected}, got {value!r}")
        resolved[name] = value
    return resolved
