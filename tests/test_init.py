"""`crmkpi init`: a starter crmkpi.toml guessed from the headers, that validates as written."""

from __future__ import annotations

import tomllib
from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from crmkpi.cli import app

runner = CliRunner()
CALLS = (
    "Call Id,Agent,Date,Answered (Y/N),Resolved,Speed of answer in seconds,AvgTalkDuration\n"
    "ID1,Diane,2021-01-01,Y,Y,109,0:02:23\n"
    "ID2,Becky,2021-01-01,N,N,,\n"
    "ID3,Joe,2021-01-02,Y,N,10,0:01:00\n"
)
DEALS = (
    "opportunity_id,sales_agent,deal_stage,engage_date,close_date,close_value\n"
    "A1,Moses,Won,2016-10-20,2017-03-01,1054\n"
    "A2,Darcel,Engaging,2016-10-25,,\n"
    "A3,Darcel,Lost,2016-10-25,2017-03-07,0\n"
)


def test_init_guesses_tables_columns_and_value_maps(tmp_path: Path) -> None:
    (tmp_path / "call_log.csv").write_text(CALLS, encoding="utf-8")
    (tmp_path / "pipeline.csv").write_text(DEALS, encoding="utf-8")
    (tmp_path / "notes.csv").write_text("foo,bar\n1,2\n", encoding="utf-8")
    result = runner.invoke(app, ["init", str(tmp_path)])
    assert result.exit_code == 0, result.output
    config = tomllib.loads((tmp_path / "crmkpi.toml").read_text(encoding="utf-8"))
    calls = config["tables"]["calls"]
    assert calls["file"] == "call_log.csv"
    assert calls["columns"]["outcome"] == {
        "from": "Answered (Y/N)",
        "map": {"N": "abandoned", "Y": "answered"},
    }
    assert calls["columns"]["wait_seconds"] == "Speed of answer in seconds"
    deals = config["tables"]["deals"]
    assert deals["columns"]["deal_id"] == "opportunity_id"
    assert deals["columns"]["status"] == {
        "from": "deal_stage",
        "map": {"Lost": "lost", "Won": "won"},
        "default": "open",
    }
    assert "notes.csv: no canonical table recognised" in (tmp_path / "crmkpi.toml").read_text()
    check = runner.invoke(app, ["validate", str(tmp_path)])
    assert check.exit_code == 0, check.output


TRAININGS = (
    "员工,培训日期,培训课程\nLi Wei,2024-04-23,顾问式销售\nZhang Min,2024-04-23,顾问式销售\n"
)
INCIDENTS = (
    "事件编号,发生时间,事件类型,负责人,团队,事件描述\n"
    "E1,2024-04-04 08:00,合同丢失,Li Wei,Sales,合同原件遗失\n"
    "E2,2024-05-01 09:00,流程失误,,Service,审批流程被跳过\n"
    "E3,2024-05-20 10:00,其他,Zhang Min,Sales,系统停机\n"
)


def test_init_maps_chinese_training_and_incident_exports(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    exports.mkdir()
    (exports / "培训记录.csv").write_text(TRAININGS, encoding="utf-8")
    (exports / "事件记录.csv").write_text(INCIDENTS, encoding="utf-8")
    result = runner.invoke(app, ["init", str(exports)])
    assert result.exit_code == 0, result.output
    config = tomllib.loads((exports / "crmkpi.toml").read_text(encoding="utf-8"))
    trainings = config["tables"]["trainings"]
    assert trainings["file"] == "培训记录.csv"
    assert trainings["columns"] == {"rep": "员工", "trained_on": "培训日期", "program": "培训课程"}
    incidents = config["tables"]["incidents"]["columns"]
    assert incidents["incident_id"] == "事件编号"
    assert incidents["occurred_at"] == "发生时间"
    assert incidents["kind"] == {
        "from": "事件类型",
        "map": {"其他": "other", "合同丢失": "document_lost", "流程失误": "process_failure"},
    }
    assert (incidents["rep"], incidents["team"], incidents["description"]) == (
        "负责人",
        "团队",
        "事件描述",
    )
    out = tmp_path / "out"
    computed = runner.invoke(
        app, ["compute", str(exports), "--period", "all", "--as-of", "2024-06-30", "--out",
              str(out), "--metrics", "documents_lost,process_failures", "--quiet"]
    )  # fmt: skip
    assert computed.exit_code == 0, computed.output
    kpis = pl.read_csv(out / "kpis.csv").filter(pl.col("grain") == "total")
    assert dict(zip(kpis["metric"], kpis["value"], strict=True)) == {
        "documents_lost": 1,
        "process_failures": 1,
    }


def test_init_never_overwrites_without_force(tmp_path: Path) -> None:
    (tmp_path / "call_log.csv").write_text(CALLS, encoding="utf-8")
    (tmp_path / "crmkpi.toml").write_text("# mine\n", encoding="utf-8")
    result = runner.invoke(app, ["init", str(tmp_path)])
    assert result.exit_code == 73
    assert (tmp_path / "crmkpi.toml").read_text() == "# mine\n"
    assert runner.invoke(app, ["init", str(tmp_path), "--force"]).exit_code == 0


def test_init_on_a_missing_folder_exits_66(tmp_path: Path) -> None:
    assert runner.invoke(app, ["init", str(tmp_path / "nope")]).exit_code == 66
