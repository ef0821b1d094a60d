"""Run options with their precedence: command line > CRMKPI_* environment > crmkpi.toml [run]
> defaults. One table of options drives the parsing of all three layers, so they cannot differ.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from crmkpi.calendar import GRAINS
from crmkpi.engine import DIMENSIONS
from crmkpi.engines import ENGINES
from crmkpi.errors import ConfigError
from crmkpi.metrics import REGISTRY
from crmkpi.metrics.settings import resolve_settings
from crmkpi.presentation import DEFAULT_HEADLINE_METRICS

FORMATS = ("csv", "parquet", "xlsx", "html")
LANGUAGES = ("en", "zh")
LOG_FORMATS = ("text", "json")
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
    name: str
    default: Any
    parse: Callable[[Any], Any]
    doc: str

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()


RUN_OPTIONS: dict[str, RunOption] = {
    o.name: o
    for o in (
        RunOption("period", "quarter", _choice(GRAINS), "grain of the periods"),
        RunOption("by", ["segment", "rep"], _choices(DIMENSIONS), "breakdown dimensions"),
        RunOption("out", "kpis", str, "output folder"),
        RunOption("format", ["csv", "xlsx"], _choices(FORMATS), "output formats"),
        RunOption("metrics", None, _words, "metrics to compute (default all)"),
        RunOption("as_of", None, _date, "cut-off date (default: the latest date in the data)"),
        RunOption("engine", "polars", _choice(ENGINES), "compute engine"),
        RunOption(
            "spark_master",
            None,
            str,
            "Spark master of engine spark (default: the active session, else local[*])",
        ),
        RunOption("fiscal_year_start", None, _month, "first month of the fiscal year"),
        RunOption("strict", False, _bool, "fail on any quarantined row"),
        RunOption(
            "max_reject_rate", 0.05, _rate, "highest share of quarantined rows a table may have"
        ),
        RunOption(
            "max_row_drop",
            0.5,
            _rate,
            "largest share by which a table's rows read may fall against the previous run",
        ),
        RunOption("accept_row_drop", False, _bool, "confirm a fall beyond max_row_drop"),
        RunOption(
            "lang", "en", _choice(LANGUAGES), "language of the workbook's and report's titles"
        ),
        RunOption("report_title", "", str, "title at the top of report.html (default: CRM KPIs)"),
        RunOption(
            "headline_metrics",
            list(DEFAULT_HEADLINE_METRICS),
            _metric_names,
            "metrics shown as cards and trend charts in report.html and the workbook",
        ),
        RunOption("currency_symbol", "", str, "symbol before amounts in report.html (¥, $)"),
        RunOption("bom", True, _bool, "write CSV with a UTF-8 BOM (for Excel)"),
        RunOption("log_format", "text", _choice(LOG_FORMATS), "log line format on stderr"),
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
