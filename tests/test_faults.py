"""The publish step under I/O faults, in the manner of SQLite's: every write of a run is made
to fail in turn (disk full, I/O error, permission denied), and each time the previous outputs
must stay byte for byte as they were, nothing half-written may be left, and the exit code is
73 or 74."""

from __future__ import annotations

import errno
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import crmkpi.publish
import crmkpi.workbook
from crmkpi import run as run_module
from crmkpi.cli import app
from crmkpi.samples import write_sample_folder
from tests.test_adversarial import snapshot

FAULTS = (errno.ENOSPC, errno.EIO, errno.EACCES)
# every step of the publish that writes: the table writers, the workbooks, the manifest
# (Path.write_text), the fsync of the staged files and the swap itself
WRITERS: list[tuple[Any, str]] = [
    (run_module, "write_table"),
    (crmkpi.workbook, "write_workbook"),
    (crmkpi.workbook, "write_simple_workbook"),
    (Path, "write_text"),
    (crmkpi.publish, "_fsync_tree"),
    (crmkpi.publish, "_replace"),
]


class Faults:
    """Counts the write calls of a run and makes call number `fail_at` raise `error`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self.fail_at = 0
        self.error = errno.ENOSPC
        for owner, name in WRITERS:
            monkeypatch.setattr(owner, name, self._wrap(getattr(owner, name)))

    def _wrap(self, write: Callable[..., Any]) -> Callable[..., Any]:
        def faulty(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.calls == self.fail_at:
                raise OSError(self.error, f"injected {errno.errorcode[self.error]}")
            return write(*args, **kwargs)

        return faulty


def _once(compute: Callable[..., Any]) -> Callable[..., Any]:
    """The inputs and KPIs do not change between the runs: work them out once."""
    memo: list[Any] = []

    def cached(*args: Any, **kwargs: Any) -> Any:
        if not memo:
            memo.append(compute(*args, **kwargs))
        return memo[0]

    return cached


def test_every_write_of_the_publish_failing_in_turn_leaves_the_previous_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exports = tmp_path / "exports"
    write_sample_folder(exports, seed=3, scale="tiny", file_format="csv")
    monkeypatch.setattr(run_module, "load_all", _once(run_module.load_all))
    monkeypatch.setattr(run_module, "compute", _once(run_module.compute))
    out = tmp_path / "kpis"
    runner = CliRunner()

    def run(formats: str) -> int:
        args = ["compute", str(exports), "--out", str(out), "--format", formats]
        return runner.invoke(app, args).exit_code

    faults = Faults(monkeypatch)
    assert run("csv,xlsx") == 0  # a counting run: how many writes a publish makes
    writes = faults.calls
    assert writes >= 10
    shutil.rmtree(out)
    assert run("csv") == 0  # the previous outputs: a published run would add the workbooks
    previous = snapshot(out)
    for fail_at in range(1, writes + 1):
        faults.calls, faults.fail_at = 0, fail_at
        faults.error = FAULTS[fail_at % len(FAULTS)]
        code = run("csv,xlsx")
        assert code in (73, 74), (fail_at, code)
        assert snapshot(out) == previous, fail_at
        assert sorted(p.name for p in tmp_path.iterdir()) == [".kpis.lock", "exports", "kpis"]
