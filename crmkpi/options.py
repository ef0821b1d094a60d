"""Run options with their precedence: command line > CRMKPI_* environment > crmkpi.toml [run]
> defaults. One table of options drives the parsing of all three layers, so they cannot differ.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from crmkpi.choices import DIMENSIONS, ENGINES, FORMATS, GRAINS, LANGUAGES, LOG_FORMATS
from crmkpi.errors import ConfigError
from crmkpi.metrics import REGISTRY
from crmkpi.metrics.settings import resolve_settings
from crmkpi.presentation import DEFAULT_HEADLINE_METRICS

ENV_PREFIX = "CRMKPI_"


def _words(value: Any) -> list[str]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise ValueError("expected a list of names (or a comma-separated string)")
    return [i.strip() for i in items if i.strip()]


def _choice(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return str(value)

    return check


def _choices(choices: tuple[str, ...]) -> Callable[[Any], list[str]]:
    def check(value: Any) -> list[str]:
        items = _words(value)
        bad = [i for i in items if i not in choices]
        if bad or not items:
            raise ValueError(f"expected some of {', '.join(choices)}")
        return list(dict.fromkeys(items))  # `--by rep --by rep` is one breakdown

    return check


def _metric_names(value: Any) -> list[str]:
    names = _words(value)
    unknown = [n for n in names if n not in REGISTRY.metrics or not REGISTRY[n].output]
    if unknown:
        raise ValueError(f"unknown metric(s) {', '.join(unknown)} (see `crmkpi metrics`)")
    return names


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _rate(value: Any) -> float:
    rate = float(value)
    if not 0.0 <= rate <= 1.0:
        raise ValueError("expected a share between 0 and 1")
    return rate


def _month(value: Any) -> int:
    month = int(value)
    if not 1 <= month <= 12:
        raise ValueError("expected a month number 1..12")
    return month


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


@dataclass(frozen=True)
class RunOption:
    """One option of `crmkpi compute`: its type and example are what docs/config.md shows."""

    name: str
    default: Any
    parse: Callable[[Any], Any]
    doc: str
    type: str
    example: Any

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()


def _listed(choices: tuple[str, ...], many: bool = False) -> str:
    names = ", ".join(f'"{c}"' for c in choices)
    return f"list of {names} (or a comma-separated string)" if many else f"one of {names}"


_SHARE = "number from 0 to 1"
_BOOL = "boolean"
RUN_OPTIONS: dict[str, RunOption] = {
    o.name: o
    for o in (
        RunOption(
            "period", "quarter", _choice(GRAINS), "grain of the periods", _listed(GRAINS), "month"
        ),
        RunOption(
            "by",
            ["segment", "rep"],
            _choices(DIMENSIONS),
            "breakdown dimensions",
            _listed(DIMENSIONS, many=True),
            ["region", "rep"],
        ),
        RunOption("out", "kpis", str, "output folder", "string (a folder path)", "kpis/nightly"),
        RunOption(
            "format",
            ["csv", "xlsx"],
            _choices(FORMATS),
            "output formats",
            _listed(FORMATS, many=True),
            ["parquet", "html"],
        ),
        RunOption(
            "metrics",
            None,
            _words,
            "metrics to compute (default all)",
            "list of metric names (or a comma-separated string)",
            ["win_rate", "revenue"],
        ),
        RunOption(
            "as_of",
            None,
            _date,
            "cut-off date (default: the latest date in the data)",
            "date",
            "2024-06-30",
        ),
        RunOption(
            "engine", "polars", _choice(ENGINES), "compute engine", _listed(ENGINES), "duckdb"
        ),
        RunOption(
            "spark_master",
            None,
            str,
            "Spark master of engine spark (default: the active session, else local[*])",
            "string (a Spark master URL)",
            "local[4]",
        ),
        RunOption(
            "spark_tables",
            [],
            _words,
            "catalog tables engine spark reads instead of INPUT (the last dotted part names "
            "the canonical table)",
            "list of table names (or a comma-separated string)",
            ["crm.orders", "crm.customers"],
        ),
        RunOption(
            "fiscal_year_start",
            None,
            _month,
            "first month of the fiscal year",
            "integer 1..12",
            4,
        ),
        RunOption("strict", False, _bool, "fail on any quarantined row", _BOOL, True),
        RunOption(
            "max_reject_rate",
            0.05,
            _rate,
            "highest share of quarantined rows a table may have",
            _SHARE,
            0.01,
        ),
        RunOption(
            "max_row_drop",
            0.5,
            _rate,
            "largest share by which a table's rows read may fall against the previous run",
            _SHARE,
            0.2,
        ),
        RunOption(
            "accept_row_drop", False, _bool, "confirm a fall beyond max_row_drop", _BOOL, True
        ),
        RunOption(
            "lang",
            "en",
            _choice(LANGUAGES),
            "language of the workbook's and report's titles and labels",
            _listed(LANGUAGES),
            "zh",
        ),
        RunOption(
            "report_title",
            "",
            str,
            "title at the top of report.html (default: CRM KPIs)",
            "string",
            "Sales review",
        ),
        RunOption(
            "headline_metrics",
            list(DEFAULT_HEADLINE_METRICS),
            _metric_names,
            "metrics shown as cards and trend charts in report.html and the workbook",
            "list of metric names (or a comma-separated string)",
            ["revenue", "churn_rate"],
        ),
        RunOption(
            "currency_symbol",
            "",
            str,
            "symbol before amounts in report.html (¥, $)",
            "string",
            "¥",
        ),
        RunOption("bom", True, _bool, "write CSV with a UTF-8 BOM (for Excel)", _BOOL, False),
        RunOption(
            "log_format",
            "text",
            _choice(LOG_FORMATS),
            "log line format on stderr",
            _listed(LOG_FORMATS),
            "json",
        ),
    )
}


def resolve_run_options(
    cli: Mapping[str, Any], env: Mapping[str, str], configured: Mapping[str, Any]
) -> dict[str, Any]:
    """Each option from the first layer that gives it; every value checked (exit 78)."""
    unknown = sorted(set(configured) - set(RUN_OPTIONS))
    if unknown:
        raise ConfigError(
            f"run: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(RUN_OPTIONS)}"
        )
    resolved: dict[str, Any] = {}
    for name, option in RUN_OPTIONS.items():
        layers = (
            ("option --" + name.replace("_", "-"), cli.get(name)),
            (option.env, env.get(option.env)),
            (f"crmkpi.toml run.{name}", configured.get(name)),
        )
        resolved[name] = option.default
        for where, value in layers:
            if value is None or value == []:
                continue
            try:
                resolved[name] = option.parse(value)
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"{where}: {value!r}: {exc}") from exc
            break
    return resolved


def settings_from_env(env: Mapping[str, str]) -> dict[str, Any]:
    """`CRMKPI_SETTING_<NAME>=value` overrides `[settings] <name>`; the value is read as TOML
    and checked here, so an error names the variable (exit 78)."""
    import tomllib

    found: dict[str, Any] = {}
    prefix = ENV_PREFIX + "SETTING_"
    for key, text in env.items():
        if key.startswith(prefix):
            name = key[len(prefix) :].lower()
            try:
                value = tomllib.loads(f"v = {text}")["v"]
            except tomllib.TOMLDecodeError:
                value = text
            try:
                resolve_settings({name: value})
            except ConfigError as exc:
                raise ConfigError(f"{key}: {exc}") from exc
            found[name] = value
    return found
