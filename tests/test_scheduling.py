"""docs/scheduling.md: the cron line, the systemd units and the Airflow task are well formed,
and the command each of them runs succeeds on a copy of the sample exports."""

from __future__ import annotations

import ast
import configparser
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

DOC = (REPO / "docs" / "scheduling.md").read_text(encoding="utf-8")
CRON_FIELDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC, flags=re.DOTALL)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stand-in for /srv/crm: the sample exports and this repository's virtualenv."""
    root = tmp_path_factory.mktemp("srv") / "crm"
    shutil.copytree(REPO / "sample_data", root / "exports")
    (root / ".venv").symlink_to(REPO / ".venv")
    return root


def _run(command: str, project: Path) -> subprocess.CompletedProcess[str]:
    command = command.replace("/srv/crm", str(project))
    return subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=300)


def _summary(project: Path, log: str) -> dict[str, object]:
    assert (project / "kpis" / "manifest.json").is_file()
    summary: dict[str, object] = json.loads(log.strip().splitlines()[-1])
    return summary


def test_cron_line(project: Path) -> None:
    (line,) = [ln for ln in _blocks("cron")[0].splitlines() if ln and not ln.startswith("#")]
    fields = line.split(maxsplit=5)
    for value, (low, high) in zip(fields[:5], CRON_FIELDS, strict=True):
        assert value == "*" or low <= int(value) <= high
    command = fields[5]
    assert "crmkpi compute" in command
    result = _run(command, project)
    assert result.returncode == 0, result.stderr
    log = (project / "crmkpi.log").read_text(encoding="utf-8")
    assert _summary(project, log)["status"] == "ok"


def test_systemd_units(project: Path) -> None:
    service_text, timer_text = _blocks("ini")
    service = configparser.ConfigParser(strict=True, interpolation=None)
    service.optionxform = str  # type: ignore[assignment,method-assign]
    service.read_string(service_text)
    timer = configparser.ConfigParser(strict=True, interpolation=None)
    timer.optionxform = str  # type: ignore[assignment,method-assign]
    timer.read_string(timer_text)
    assert service["Service"]["Type"] == "oneshot"
    assert "75" not in service["Service"]["RestartPreventExitStatus"].split()
    assert re.fullmatch(r"\*-\*-\* \d\d:\d\d:\d\d", timer["Timer"]["OnCalendar"])
    assert timer["Install"]["WantedBy"] == "timers.target"
    command = f"cd {service['Service']['WorkingDirectory']} && {service['Service']['ExecStart']}"
    result = _run(command, project)
    assert result.returncode == 0, result.stderr
    assert _summary(project, result.stdout)["status"] == "ok"


def test_airflow_task(project: Path) -> None:
    (source,) = _blocks("python")
    tree = ast.parse(source)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    operator = next(c for c in calls if getattr(c.func, "id", None) == "BashOperator")
    keywords = {k.arg: k.value for k in operator.keywords}
    command = ast.literal_eval(keywords["bash_command"])
    assert ast.literal_eval(keywords["retries"]) >= 1
    result = _run(command.replace("{{ ds }}", "2025-12-31"), project)
    assert result.returncode == 0, result.stderr
    summary = _summary(project, result.stdout)
    assert summary["as_of"] == "2025-12-31"
