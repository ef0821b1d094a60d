"""The JSON line a run prints last on stdout, for schedulers. It imports nothing heavy, so the
entry point can print it for a run stopped while it was still starting."""

from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass
class Summary:
    """What the last stdout line says, for schedulers."""

    status: str
    exit_code: int
    run_id: str | None = None
    as_of: str | None = None
    periods: int = 0
    metrics_computed: int = 0
    metrics_skipped: int = 0
    rows_rejected: int = 0
    outputs: list[str] = field(default_factory=list)
    message: str | None = None

    def line(self) -> str:
        return json.dumps(self.__dict__, ensure_ascii=False, sort_keys=False)
