"""Logs on stderr, as text or one JSON object per line. They name files, lines, columns, checks
and counts, never data values (those may be personal data and go only to rejected/)."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

LOGGER_NAME = "crmkpi"
# Silent until `configure` (the CLI) or the application routes it: a library prints nothing.
logging.getLogger(LOGGER_NAME).addHandler(logging.NullHandler())


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "level": record.levelname.lower(),
            "message": record.getMessage(),
        }
        payload.update(getattr(record, "fields", {}))
        return json.dumps(payload, ensure_ascii=False, default=str)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", {})
        extra = " ".join(f"{k}={v}" for k, v in fields.items())
        return f"crmkpi {record.levelname.lower()}: {record.getMessage()}" + (
            f" ({extra})" if extra else ""
        )


def configure(level: str = "info", log_format: str = "text") -> logging.Logger:
    """Route crmkpi's log to stderr (replacing any handler a previous call installed)."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if log_format == "json" else _TextFormatter())
    logger.addHandler(handler)
    logger.setLevel(
        {"quiet": logging.WARNING, "info": logging.INFO, "verbose": logging.DEBUG}[level]
    )
    logger.propagate = False
    return logger


def log(level: int, message: str, **fields: Any) -> None:
    logging.getLogger(LOGGER_NAME).log(level, message, extra={"fields": fields})


def final_error_line(message: str, log_format: str) -> str:
    """The one line that says why a run ended: JSON under `--log-format json`, so a log shipper
    reading stderr never meets a line it cannot parse."""
    if log_format == "json":
        return json.dumps({"level": "error", "message": message}, ensure_ascii=False)
    return f"crmkpi: {message}"
