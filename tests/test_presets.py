"""Presets: shipped mappings for Salesforce, HubSpot, Zoho CRM, 悟空CRM and 纷享销客 exports.

Every export folder is written by tests/preset_factory.py from one set of facts, in each CRM's
shape (CRM_EXPORTS.md); the KPIs computed with the preset must equal those computed from the
facts by hand. Then the pieces: header recognition, layouts, overrides, detection, `init`, the
exit 65 for an export no table recognises, and the docs generated from the registry.
"""

from __future__ import annotations

import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from crmkpi.api import options_for
from crmkpi.cli import app
from crmkpi.config import ConfigError
from crmkpi.configure import parse_document, resolve_config
from crmkpi.engine import compute
from crmkpi.errors import EXIT_INVALID_DATA, FileRejectedError, InputMissingError
from crmkpi.init import starter_config
from crmkpi.load import FOLDER_FAILURE, LoadResult, load_all
from crmkpi.metrics import REGISTRY
from crmkpi.metrics.base import Simple
from crmkpi.presets import (
    SURVEY_TYPE_METRICS,
    detect_preset,
    list_presets,
    merge_documents,
    preset_config,
    preset_text,
    presets_markdown,
)
from tests import factory as fx
from tests import preset_factory as pf

REPO = Path(__file__).resolve().parent.parent
runner = CliRunner()

DEAL_KPIS = ["deals_created", "deals_won", "deals_lost", "won_revenue", "win_rate", "avg_deal_size"]


# --- helpers ------------------------------------------------------------------------------------


def load(folder: Path, preset: str | None) -> tuple[Any, LoadResult]:
    config, root = resolve_config(folder, None, preset=preset)
    return config, load_all(config, root)


def kpis(folder: Path, preset: str | None = None) -> tuple[dict[str, Any], LoadResult]:
    """The total-grain KPIs of period `all` at AS_OF, computed with the preset; every row of
    every table must have been used (the fixtures are clean)."""
    config, result = load(folder, preset)
    assert not result.failures, [str(f.error) for f in result.failures]
    for name, table in result.tables.items():
        report = table.report
        assert report.rows_quarantined == 0, (name, report.quarantined_by_check, table.rejected)
        assert report.reconciles(), report
    options = options_for(config, period="all", by=(), as_of=pf.AS_OF)
    out = compute({n: t.frame for n, t in result.tables.items()}, options).kpis
    total = out.filter(pl.col("grain") == "total")
    return dict(zip(total["metric"], total["value"], strict=True)), result


def assert_kpis(actual: dict[str, Any], expected: dict[str, Any], names: list[str]) -> None:
    for name in names:
        assert name in actual, f"{name} not computed"
        assert actual[name] == pytest.approx(expected[name]), name


def only_failure(result: LoadResult) -> FileRejectedError:
    assert len(result.failures) == 1, [str(f.error) for f in result.failures]
    error = result.failures[0].error
    assert isinstance(error, FileRejectedError), repr(error)
    return error


# --- the shipped presets ------------------------------------------------------------------------


def test_the_presets_are_shipped_and_valid() -> None:
    assert list_presets() == ("fxiaoke", "hubspot", "salesforce", "wukong", "zoho")
    for name in list_presets():
        config = preset_config(name)
        assert config.preset is not None and config.preset.name == name
        assert config.tables, name
        for table in config.tables.values():
            assert not table.required  # a user exports what they have
            assert all(layout.match_headers for layout in table.variants)
        text = preset_text(name)
        assert "UNCONFIRMED" in text  # what CRM_EXPORTS.md could not confirm is marked
        assert tomllib.loads(text)["preset"]["unconfirmed"]


def test_an_unknown_preset_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown preset 'pipedrive'; the presets are fxiaoke"):
        parse_document({"preset": "pipedrive"}, None)


def test_the_docs_are_generated_from_the_presets_and_registry() -> None:
    text = presets_markdown()
    assert (REPO / "docs" / "presets.md").read_text(encoding="utf-8") == text, (
        "docs/presets.md is stale: run `python -m crmkpi.presets docs/presets.md`"
    )
    for name in list_presets():
        assert f"`--preset {name}`" in text
    assert "`csat` 客户满意度 (CSAT)" in text  # 回访 unlocks csat...
    wukong = text[text.index("--preset wukong") : text.index("--preset zoho")]
    assert "`nps`" not in wukong  # ...but not NPS


# --- Salesforce ---------------------------------------------------------------------------------


def test_salesforce_reports_give_the_kpis_of_the_facts(tmp_path: Path) -> None:
    facts = pf.facts()
    pf.salesforce_folder(tmp_path, facts)
    # day-first case dates: one key at table level reaches the layout that reads the file
    pf.write_config(tmp_path, "salesforce", {"tickets": {"dayfirst": True}})
    actual, result = kpis(tmp_path)
    expected = pf.expected_kpis(facts)
    assert_kpis(
        actual,
        expected,
        [*DEAL_KPIS, "open_pipeline_value", "leads_created", "lead_conversion_rate"],
    )
    assert actual["tickets_created"] == len(facts.tickets)
    assert actual["new_customers"] == len(facts.accounts)
    assert result.layouts == {
        "deals": "report",
        "leads": "report",
        "tickets": "report",
        "customers": "report",
    }
    deals = result.tables["deals"]
    assert deals.report.footer_rows == 3  # Grand Totals, confidential, copyright
    assert "Opportunity ID (2)" in deals.report.drift_columns  # the second Opportunity ID
    # 15-character report IDs read as 18 characters, so deals join the accounts report
    assert set(deals.frame["customer_id"]) <= set(result.tables["customers"].frame["customer_id"])
    assert result.tables["customers"].report.footer_rows == 3  # the footer in a workbook
    tickets = result.tables["tickets"].frame
    assert tickets["created_at"].min().day == 14  # 14/02/2024, day first


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_salesforce_api_export_gives_the_same_deal_kpis(tmp_path: Path, fmt: str) -> None:
    facts = pf.facts()
    pf.write_salesforce_opportunity_api(tmp_path, facts, f"Opportunity.{fmt}", fmt)
    actual, result = kpis(tmp_path, "salesforce")
    assert_kpis(actual, pf.expected_kpis(facts), [*DEAL_KPIS, "open_pipeline_value"])
    assert result.layouts == {"deals": "api"}


def test_a_report_and_an_api_export_of_the_same_deals_are_not_counted_twice(
    tmp_path: Path,
) -> None:
    facts = pf.facts()
    pf.write_salesforce_opportunity_report(tmp_path, facts)
    pf.write_salesforce_opportunity_api(tmp_path, facts)
    actual, result = kpis(tmp_path, "salesforce")
    assert_kpis(actual, pf.expected_kpis(facts), DEAL_KPIS)
    assert result.layouts == {"deals": "report"}
    [note] = [n for n in result.notes if n.startswith("layout_not_read")]
    assert "Opportunity.parquet" in note and "deals (layout api)" in note
    assert note in result.tables["deals"].report.warnings


def test_salesforce_footer_count_is_checked(tmp_path: Path) -> None:
    facts = pf.facts()
    path = pf.write_salesforce_opportunity_report(tmp_path, facts)
    text = path.read_text(encoding="utf-8").replace("(15 records)", "(16 records)")
    path.write_text(text, encoding="utf-8")
    _, result = load(tmp_path, "salesforce")
    error = only_failure(result)
    assert error.check == "footer_count_mismatch"
    assert error.exit_code == EXIT_INVALID_DATA


def test_a_recognised_report_lacking_a_needed_column_names_it(tmp_path: Path) -> None:
    rows = [
        ["Opportunity Name", "Stage", "Amount", "Created Date"],
        ["Deal 1", "Prospecting", "10", "1/2/2024"],
    ]
    pf.write_csv(tmp_path / "report1.csv", rows)
    _, result = load(tmp_path, "salesforce")
    error = only_failure(result)
    assert error.check == "missing_column"
    assert error.column is not None and error.column.casefold() == "opportunity id"
    assert "4 headers found" in error.reason and "Created Date" not in error.reason


# --- an export the preset does not recognise -------------------------------------------------


def test_an_unrecognised_export_fails_65_naming_expected_and_found_headers(tmp_path: Path) -> None:
    facts = pf.facts()
    pf.write_salesforce_opportunity_report(tmp_path, facts)
    campaign = [["Campaign Name", "Opportunity Owner", "Amount"], ["Spring", "Ann Lee", "$100"]]
    pf.write_csv(tmp_path / "report1732260000009.csv", campaign)
    (tmp_path / "notes.txt").write_text("not an export at all\n", encoding="utf-8")
    _, result = load(tmp_path, "salesforce")
    error = only_failure(result)
    assert result.failures[0].table == FOLDER_FAILURE
    assert error.check == "unrecognised_export"
    assert error.exit_code == EXIT_INVALID_DATA
    assert error.path.endswith("report1732260000009.csv") and error.line == 1
    assert "deals (report): 'Opportunity Name', 'Stage'" in error.reason
    assert "3 headers found on line 1" in error.reason  # how many and where, not the names
    assert "Campaign Name" not in error.reason
    assert any(n.startswith("not_an_export: notes.txt") for n in result.notes)
    assert "deals" in result.tables  # the recognised export is still loaded and reported

    pf.write_config(tmp_path, "salesforce")
    run = runner.invoke(app, ["validate", str(tmp_path)])
    assert run.exit_code == EXIT_INVALID_DATA, run.output
    assert "unrecognised_export" in run.output


def test_a_legacy_xls_fails_with_advice_and_office_lock_files_are_passed_over(
    tmp_path: Path,
) -> None:
    facts = pf.facts()
    pf.write_wukong_deals(tmp_path, facts)
    (tmp_path / "合同.xls").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600)
    (tmp_path / "~$商机.xlsx").write_bytes(b"\x06owner\0" * 20)  # Excel has 商机.xlsx open
    _, result = load(tmp_path, "wukong")
    error = only_failure(result)
    assert error.check == "encrypted_or_legacy_format" and error.path.endswith("合同.xls")
    assert "save as .xlsx" in error.reason
    assert "deals" in result.tables


def test_a_salesforce_workbook_footer_count_is_checked(tmp_path: Path) -> None:
    facts = pf.facts()
    rows = [["Account Name", "Account ID", "Account Owner", "Created Date"]]
    rows += [[a.name_en, pf.sf_account_id(a.key), "Ann Lee", "1/2/2024"] for a in facts.accounts]
    pf.write_xlsx(tmp_path / "report1.xlsx", rows, footer=pf.sf_footer(len(rows)))
    _, result = load(tmp_path, "salesforce")
    error = only_failure(result)
    assert (error.check, error.line) == ("footer_count_mismatch", 8)
    assert "states 6 records but the sheet holds 5" in error.reason


def test_a_folder_without_any_export_of_the_crm_is_input_missing(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello\n", encoding="utf-8")
    _, result = load(tmp_path, "hubspot")
    [failure] = result.failures
    assert isinstance(failure.error, InputMissingError)
    assert "no HubSpot export" in str(failure.error)


# --- HubSpot ------------------------------------------------------------------------------------


def test_hubspot_exports_give_the_kpis_of_the_facts(tmp_path: Path) -> None:
    facts = pf.facts()
    pf.hubspot_folder(tmp_path, facts)
    actual, result = kpis(tmp_path, "hubspot")
    expected = pf.expected_kpis(facts)
    assert_kpis(
        actual,
        expected,
        [*DEAL_KPIS, "open_pipeline_value", "leads_created", "lead_conversion_rate"],
    )
    assert actual["tickets_created"] == len(facts.tickets)
    assert actual["new_customers"] == len(facts.accounts)
    deals = result.tables["deals"]
    assert deals.report.files[0].encoding == "utf-16-le"  # UTF-16, tab separated
    # `123;456` associations: the first company, which the companies export knows
    companies = set(result.tables["customers"].frame["customer_id"])
    assert set(deals.frame["customer_id"]) <= companies
    first = deals.frame.filter(pl.col("deal_id") == "20000000000")["customer_id"][0]
    assert first == pf.hs_company_id(0)


# --- Zoho CRM -----------------------------------------------------------------------------------


def test_zoho_exports_give_the_kpis_of_the_facts(tmp_path: Path) -> None:
    facts = pf.facts()
    pf.zoho_folder(tmp_path, facts)
    actual, result = kpis(tmp_path, "zoho")
    expected = pf.expected_kpis(facts)
    assert_kpis(actual, expected, [*DEAL_KPIS, "open_pipeline_value", "leads_created"])
    assert actual["tickets_created"] == len(facts.tickets)
    assert actual["new_customers"] == len(facts.accounts)
    deals = result.tables["deals"].frame
    assert deals["probability"].max() == 1.0  # Probability (%) 100 -> 1
    assert "Currency" not in result.tables["deals"].report.drift_columns  # read as the marker


def test_a_preset_copied_whole_into_crmkpi_toml_is_the_mapping(tmp_path: Path) -> None:
    facts = pf.facts()
    pf.zoho_folder(tmp_path, facts)
    text = preset_text("zoho").replace('"Closed Won" = "won"', '"Closed Won" = "lost"')
    (tmp_path / "crmkpi.toml").write_text(text, encoding="utf-8")
    actual, _ = kpis(tmp_path)
    assert actual["deals_won"] == 0  # the copy, edited, is what is read
    assert actual["tickets_created"] == len(facts.tickets)


def test_zoho_amounts_in_two_currencies_are_not_added_up(tmp_path: Path) -> None:
    facts = pf.facts()
    path = pf.write_zoho_deals(tmp_path, facts)
    text = path.read_text(encoding="utf-8").splitlines()
    text[3] = text[3].replace(",USD,", ",EUR,")
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    _, result = load(tmp_path, "zoho")
    deals = result.tables["deals"]
    assert deals.report.quarantined_by_check == {"currency_mismatch": 1}
    assert deals.rejected["source_line"].to_list() == [4]


# --- 悟空CRM --------------------------------------------------------------------------------------


def test_wukong_11_exports_give_the_kpis_of_the_facts(tmp_path: Path) -> None:
    facts = pf.facts()
    pf.wukong_folder(tmp_path, facts, "11")
    actual, result = kpis(tmp_path, "wukong")
    expected = pf.expected_kpis(facts)
    assert_kpis(
        actual,
        expected,
        [*DEAL_KPIS, "leads_created", "revenue", "orders_count", "csat", "avg_satisfaction_score"],
    )
    assert actual["new_customers"] == len(facts.accounts)
    assert result.layouts == {
        "customers": "v11",
        "deals": "v11",
        "leads": "v11",
        "orders": "contracts_v11",
        "surveys": "v11",
    }
    # 待审核 rows are effective contracts (check_status 10), not dropped; beside 通过 and
    # 审核中 they may also be pending approvals, which the report says
    orders = result.tables["orders"]
    assert orders.frame.filter(pl.col("status") == "completed").height == 5
    [review] = [w for w in orders.report.warnings if w.startswith("value_map_review")]
    assert "status: '待审核' is read as 'completed', but this export also holds '通过'" in review
    assert result.tables["leads"].report.files[0].encoding == "gb18030"
    assert result.tables["surveys"].report.rows_skipped == 1  # a visit without a rating
    notes = "\n".join(result.notes)
    assert "layout_not_read: 回款.xlsx: recognised as orders (layout receivables_v11)" in notes
    assert "export_not_used: 联系人.xlsx: a 悟空CRM 联系人 (contacts) export" in notes


def test_wukong_9_exports_with_title_rows_and_legacy_names(tmp_path: Path) -> None:
    facts = pf.facts()
    pf.wukong_folder(tmp_path, facts, "9")
    actual, result = kpis(tmp_path, "wukong")
    expected = pf.expected_kpis(facts)
    assert_kpis(actual, expected, [*DEAL_KPIS, "leads_created", "revenue", "csat"])
    assert set(result.layouts.values()) == {"v9", "contracts_v9"}
    customers = result.tables["customers"].frame
    assert customers["phone"].null_count() == 0  # 手机号 (9.0) read as the phone
    assert customers["email"].null_count() == 0  # 电子邮箱 (9.0)


def test_wukong_revenue_from_payments_when_there_are_no_contracts(tmp_path: Path) -> None:
    facts = pf.facts()
    pf.wukong_folder(tmp_path, facts, "11")
    (tmp_path / "合同.xlsx").unlink()
    actual, result = kpis(tmp_path, "wukong")
    expected = pf.expected_kpis(facts, orders_from="payments")
    assert_kpis(actual, expected, ["revenue", "orders_count"])
    assert result.layouts["orders"] == "receivables_v11"


def test_wukong_org_without_approval_workflow_counts_every_contract(tmp_path: Path) -> None:
    """Without a workflow every contract is check_status 10, printed 待审核: all count."""
    facts = pf.facts()
    facts.contracts = [replace(c, approval="待审核") for c in facts.contracts]
    pf.write_wukong_contracts(tmp_path, facts)
    actual, result = kpis(tmp_path, "wukong")
    assert actual["revenue"] == pytest.approx(sum(c.amount for c in facts.contracts))
    assert not [w for w in result.tables["orders"].report.warnings if "review" in w]


def test_wukong_approval_workflow_override(tmp_path: Path) -> None:
    """An org with approval workflows: 待审核 means "not yet approved"; one column overridden
    at table level applies to every orders layout, the rest of the preset stays."""
    facts = pf.facts()
    pf.wukong_folder(tmp_path, facts, "11")
    workflow = {
        "from": "审核状态",
        "map": {"通过": "completed"},
        "default": "cancelled",
    }
    pf.write_config(tmp_path, "wukong", {"orders": {"columns": {"status": workflow}}})
    actual, result = kpis(tmp_path)
    assert not [w for w in result.tables["orders"].report.warnings if "review" in w]
    approved = [c for c in facts.contracts if c.approval == "通过"]
    assert actual["revenue"] == pytest.approx(sum(c.amount for c in approved))
    assert actual["orders_count"] == len(approved)


def test_wukong_cash_revenue_by_disabling_the_contract_layouts(tmp_path: Path) -> None:
    facts = pf.facts()
    pf.wukong_folder(tmp_path, facts, "11")
    off = {"enabled": False}
    layouts = {"contracts_v11": off, "contracts_v9": off}
    document = {"preset": "wukong", "tables": {"orders": {"layouts": layouts}}}
    config = parse_document(document, tmp_path / "crmkpi.toml")
    result = load_all(config, tmp_path)
    assert not result.failures
    assert result.layouts["orders"] == "receivables_v11"
    expected = pf.expected_kpis(facts, orders_from="payments")
    assert result.tables["orders"].frame["amount"].sum() == pytest.approx(expected["revenue"])


# --- 纷享销客 -------------------------------------------------------------------------------------


def test_fxiaoke_label_exports_give_the_kpis_of_the_facts(tmp_path: Path) -> None:
    facts = pf.facts()
    pf.write_fxiaoke_labels(tmp_path, facts)
    actual, result = kpis(tmp_path, "fxiaoke")
    expected = pf.expected_kpis(facts)
    assert_kpis(actual, expected, [*DEAL_KPIS, "revenue", "orders_count"])
    assert set(result.layouts.values()) == {"labels"}


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_fxiaoke_api_exports_with_epoch_milliseconds(tmp_path: Path, fmt: str) -> None:
    facts = pf.facts()
    pf.write_fxiaoke_api(tmp_path, facts, fmt)
    actual, result = kpis(tmp_path, "fxiaoke")
    expected = pf.expected_kpis(facts)
    assert_kpis(actual, expected, [*DEAL_KPIS, "revenue", "orders_count"])
    assert set(result.layouts.values()) == {"api"}
    created = result.tables["deals"].frame.sort("deal_id")["created_at"][0]
    assert created == facts.deals[0].created  # epoch ms -> local (Asia/Shanghai) time


def test_fxiaoke_status_codes_are_quarantined_not_guessed(tmp_path: Path) -> None:
    facts = pf.facts()
    pf.write_fxiaoke_api(tmp_path, facts)
    path = tmp_path / "NewOpportunityObj.csv"
    path.write_text(path.read_text(encoding="utf-8").replace(",赢单,", ",2,"), encoding="utf-8")
    _, result = load(tmp_path, "fxiaoke")
    report = result.tables["deals"].report
    assert report.unmapped_values == {"status": ["2"]}
    assert report.rows_quarantined == sum(1 for d in facts.deals if d.outcome == "won")


# --- detection and init -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("write", "preset"),
    [
        (pf.salesforce_folder, "salesforce"),
        (pf.hubspot_folder, "hubspot"),
        (pf.zoho_folder, "zoho"),
        (pf.wukong_folder, "wukong"),
        (lambda folder, facts: pf.wukong_folder(folder, facts, "9"), "wukong"),
        (pf.write_fxiaoke_labels, "fxiaoke"),
        (pf.write_fxiaoke_api, "fxiaoke"),
        (pf.write_salesforce_opportunity_api, "salesforce"),
    ],
)
def test_detect_preset_from_headers(tmp_path: Path, write: Any, preset: str) -> None:
    write(tmp_path, pf.facts())
    assert detect_preset(tmp_path) == preset
    config, _ = resolve_config(tmp_path, None, preset="auto")
    assert config.preset is not None and config.preset.name == preset


@pytest.mark.parametrize(
    ("write", "preset"),
    [
        (pf.write_salesforce_lead_report, "salesforce"),
        (pf.write_salesforce_case_report, "salesforce"),
        (pf.write_salesforce_accounts_report, "salesforce"),
        (pf.write_hubspot_contacts, "hubspot"),
        (pf.write_hubspot_companies, "hubspot"),
        (pf.write_hubspot_tickets, "hubspot"),
        (pf.write_zoho_leads, "zoho"),
        (pf.write_zoho_accounts, "zoho"),
        (pf.write_zoho_cases, "zoho"),
        (pf.write_wukong_visits, "wukong"),
        (pf.write_wukong_payments, "wukong"),
    ],
)
def test_detect_preset_from_a_single_export(tmp_path: Path, write: Any, preset: str) -> None:
    """Exports of different CRMs sharing headers (`Lead Owner`, `Account Name`, `Record Id`)
    are still told apart."""
    write(tmp_path, pf.facts())
    assert detect_preset(tmp_path) == preset


def test_no_preset_fits_a_generic_folder(tmp_path: Path) -> None:
    (tmp_path / "pipeline.csv").write_text(
        "opportunity_id,sales_agent,deal_stage,engage_date,close_date,close_value\n"
        "A1,Moses,Won,2016-10-20,2017-03-01,1054\n",
        encoding="utf-8",
    )
    assert detect_preset(tmp_path) is None
    with pytest.raises(ConfigError, match="no preset"):
        resolve_config(tmp_path, None, preset="auto")
    text = starter_config(tmp_path)
    assert "No preset (fxiaoke, hubspot, salesforce, wukong, zoho) recognises" in text
    assert "[tables.deals]" in text


def test_init_names_the_detected_preset_and_validates(tmp_path: Path) -> None:
    facts = pf.facts()
    pf.wukong_folder(tmp_path, facts, "11")
    run = runner.invoke(app, ["init", str(tmp_path)])
    assert run.exit_code == 0, run.output
    text = (tmp_path / "crmkpi.toml").read_text(encoding="utf-8")
    assert tomllib.loads(text) == {"preset": "wukong"}
    assert "These are 悟空CRM exports: the `wukong` preset maps them" in text
    assert "#   商机.xlsx -> deals (layout v11)" in text
    assert "#   合同.xlsx -> orders (layout contracts_v11)" in text
    assert "export_not_used: 联系人.xlsx" in text
    check = runner.invoke(app, ["validate", str(tmp_path)])
    assert check.exit_code == 0, check.output


def test_init_with_a_named_preset(tmp_path: Path) -> None:
    pf.write_hubspot_deals(tmp_path, pf.facts())
    text = starter_config(tmp_path, preset="hubspot")
    assert 'preset = "hubspot"' in text
    assert "hubspot-crm-exports-all-deals-2024-11-01.csv -> deals" in text
    with pytest.raises(ConfigError, match="unknown preset"):
        starter_config(tmp_path, preset="nope")


# --- the pieces ---------------------------------------------------------------------------------


def test_merge_user_keys_win_table_by_table_and_column_by_column() -> None:
    preset = {
        "input": {"delimiter": "auto", "footer": "salesforce"},
        "tables": {
            "deals": {
                "file": "*",
                "columns": {"rep": "Owner"},
                "layouts": {
                    "report": {"match_headers": ["Stage"], "columns": {"amount": "Amount"}},
                    "api": {"match_headers": ["StageName"], "columns": {"amount": "Amount"}},
                },
            },
            "leads": {"file": "*", "columns": {"source": "Lead Source"}},
        },
    }
    user = {
        "input": {"footer": "none"},
        "tables": {
            "deals": {
                "dayfirst": True,
                "columns": {"amount": "Net Amount"},
                "layouts": {"api": {"columns": {"amount": "Amount__c"}}},
            },
            "quotas": {"file": "quotas.csv"},
        },
    }
    merged = merge_documents(preset, user)
    assert merged["input"] == {"delimiter": "auto", "footer": "none"}
    deals = merged["tables"]["deals"]
    assert deals["columns"] == {"rep": "Owner", "amount": "Net Amount"}
    report, api = deals["layouts"]["report"], deals["layouts"]["api"]
    assert report == {
        "match_headers": ["Stage"],
        "columns": {"amount": "Net Amount"},
        "dayfirst": True,
    }
    assert api["columns"] == {"amount": "Amount__c"} and api["dayfirst"] is True
    assert merged["tables"]["leads"] == preset["tables"]["leads"]
    assert merged["tables"]["quotas"] == {"file": "quotas.csv"}


def test_duplicate_headers_suffix_skips_names_the_file_already_has(tmp_path: Path) -> None:
    rows = [
        ["Opportunity ID", "Close Date (2)", "Close Date", "Close Date", "Stage", "Created Date"],
        ["0065g00000AAx01", "3/1/2024", "3/1/2024", "3/2/2024", "Closed Won", "1/15/2024"],
    ]
    pf.write_csv(tmp_path / "deals.csv", rows)
    table = {
        "file": "deals.csv",
        "duplicate_headers": "suffix",
        "columns": {
            "deal_id": "Opportunity ID",
            "status": {"from": "Stage", "map": {"Closed Won": "won"}},
            "created_at": "Created Date",
            "closed_at": "Close Date (3)",
        },
    }
    result = fx.load(tmp_path, {"tables": {"deals": table}})
    assert not result.failures, [str(f.error) for f in result.failures]
    deals = result.tables["deals"].frame
    assert deals["closed_at"][0].day == 2  # the second `Close Date`, named `Close Date (3)`


def test_from_any_reads_the_first_header_present(tmp_path: Path) -> None:
    rows = [
        ["deal", "created", "Stage Label", "stage_id"],
        ["D1", "2024-01-02", "Won", "closedwon"],
    ]
    pf.write_csv(tmp_path / "deals.csv", rows)
    status = {"from_any": ["Deal Stage", "stage_id", "Stage Label"], "map": {"closedwon": "won"}}
    table = {
        "file": "deals.csv",
        "columns": {
            "deal_id": "deal",
            "created_at": "created",
            "status": status,
            "closed_at": {"from_any": ["Close Date", "created"]},
        },
    }
    result = fx.load(tmp_path, {"tables": {"deals": table}})
    assert not result.failures, [str(f.error) for f in result.failures]
    assert result.tables["deals"].frame["status"].to_list() == ["won"]
    status["from_any"] = ["Deal Stage", "Pipeline Stage"]
    error = only_failure(fx.load(tmp_path, {"tables": {"deals": table}}))
    assert error.check == "missing_column"
    assert "status (from 'Deal Stage' or 'Pipeline Stage')" in error.reason


def test_first_of_and_currency_column(tmp_path: Path) -> None:
    rows = [
        ["id", "when", "customers", "Total Amount Currency", "Total Amount"],
        ["1", "2024-01-02", "7;8", "USD", "1,200.50"],
        ["2", "2024-01-03", " 9 ", "USD", "$300"],
        ["3", "2024-01-04", "", "USD", ""],
    ]
    pf.write_csv(tmp_path / "orders.csv", rows)
    table = {
        "file": "orders.csv",
        "columns": {
            "order_id": "id",
            "ordered_at": "when",
            "customer_id": {"from": "customers", "first_of": ";"},
            "amount": {"from": "Total Amount", "currency_column": "{} Currency"},
        },
    }
    result = fx.load(tmp_path, {"tables": {"orders": table}})
    orders = result.tables["orders"]
    assert orders.frame["customer_id"].to_list() == ["7", "9"]
    assert orders.frame["amount"].to_list() == [1200.5, 300.0]
    assert orders.report.quarantined_by_check == {"not_nullable": 1}  # row 3: no customer
    assert "Total Amount Currency" not in orders.report.drift_columns


def test_new_config_keys_are_validated() -> None:
    def error(table: dict[str, Any]) -> str:
        with pytest.raises(ConfigError) as caught:
            parse_document({"tables": {"deals": table}}, None)
        return str(caught.value)

    base = {"file": "*", "columns": {"deal_id": "Id"}}
    assert "duplicate_headers: 'keep' is not one of reject, suffix" in error(
        {**base, "duplicate_headers": "keep"}
    )
    assert "exclude_headers: only applies with `match_headers`" in error(
        {**base, "exclude_headers": ["X"]}
    )
    assert "a layout is told apart by its headers" in error({**base, "layouts": {"a": {}}})
    assert "currency_column: only applies to money" in error(
        {"file": "*", "columns": {"deal_id": {"from": "Id", "currency_column": "Currency"}}}
    )
    assert "needs `from`" in error({"file": "*", "columns": {"deal_id": {"parse": "id"}}})
    review = {"from": "S", "review_when_mixed": {"a": ["b"]}}
    assert "review_when_mixed: only makes sense with `map`" in error(
        {"file": "*", "columns": {"status": review}}
    )


def test_the_preset_option_of_the_commands(tmp_path: Path) -> None:
    """--preset on validate, compute and init, with `auto` recognising the CRM."""
    runner = CliRunner()
    facts = pf.facts()
    exports = tmp_path / "exports"
    exports.mkdir()
    pf.salesforce_folder(exports, facts)
    checked = runner.invoke(app, ["validate", str(exports), "--preset", "salesforce"])
    assert checked.exit_code == 0, checked.output
    assert "deals" in checked.output
    out = tmp_path / "kpis"
    run = runner.invoke(
        app,
        [
            "compute",
            str(exports),
            "--preset",
            "auto",
            "--out",
            str(out),
            "--period",
            "all",
            "--format",
            "csv",
            "--metrics",
            "deals_won",
        ],
    )
    assert run.exit_code == 0, run.output
    kpis_table = pl.read_csv(out / "kpis.csv")
    total = kpis_table.filter(pl.col("grain") == "total", pl.col("metric") == "deals_won")
    assert total["value"].to_list() == [float(pf.expected_kpis(facts)["deals_won"] or 0)]
    init = runner.invoke(app, ["init", str(exports)])
    assert init.exit_code == 0, init.output
    assert "preset: salesforce" in init.output
    assert runner.invoke(app, ["validate", str(exports), "--preset", "nosuchcrm"]).exit_code == 78


def test_every_survey_metric_belongs_to_one_survey_type() -> None:
    def reads_surveys(name: str) -> bool:
        return any(
            isinstance(REGISTRY[part], Simple) and REGISTRY[part].table == "surveys"
            for part in REGISTRY.order([name])
        )

    survey_metrics = sorted(m.name for m in REGISTRY.outputs() if reads_surveys(m.name))
    named = sorted(n for names in SURVEY_TYPE_METRICS.values() for n in names)
    assert named == survey_metrics
