"""The data-quality report: how every row of every table was accounted for."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from crmkpi.load import LoadResult
from crmkpi.validate import TableReport

_HEADINGS = ("table", "read", "used", "quarantined", "footer", "skipped", "deduplicated", "status")


def table_status(report: TableReport, strict: bool, max_reject_rate: float) -> str:
    """`ok`, or why the table fails the thresholds (`--strict`, `--max-reject-rate`)."""
    if strict and report.rows_quarantined:
        return "fail: rows quarantined under --strict"
    if report.reject_rate > max_reject_rate:
        return f"fail: reject rate {report.reject_rate:.1%} > {max_reject_rate:.1%}"
    return "ok"


def render_text(result: LoadResult, strict: bool, max_reject_rate: float) -> str:
    """A fixed-width report for a terminal or a log file."""
    rows = [_HEADINGS]
    details: list[str] = []
    for report in result.reports:
        rows.append(
            (
                report.table,
                str(report.rows_read),
                str(report.rows_used),
                str(report.rows_quarantined),
                str(report.footer_rows),
                str(report.rows_skipped),
                str(report.rows_deduplicated),
                table_status(report, strict, max_reject_rate),
            )
        )
        if report.quarantined_by_check:
            checks = ", ".join(f"{k} {v}" for k, v in report.quarantined_by_check.items())
            details.append(f"{report.table}: quarantined by check: {checks}")
        if report.drift_columns:
            details.append(
                f"{report.table}: drift (source columns not mapped): "
                + ", ".join(report.drift_columns)
            )
        if report.missing_configured_columns:
            details.append(
                f"{report.table}: configured columns not in the export: "
                + ", ".join(report.missing_configured_columns)
            )
        details.extend(f"{report.table}: {w}" for w in report.warnings)
    details.extend(f"(input): {note}" for note in result.notes)
    for failure in result.failures:
        rows.append(
            (failure.table, "-", "-", "-", "-", "-", "-", f"fail ({failure.error.exit_code})")
        )
        details.append(f"{failure.table}: {failure.error}")
    widths = [max(len(r[i]) for r in rows) for i in range(len(_HEADINGS))]
    lines = [
        "  ".join(
            cell.ljust(w) if i in (0, 7) else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]
    lines.append("")
    lines.append(
        "rows read = used + quarantined + footer + skipped (skip_rows_without) + deduplicated"
    )
    return "\n".join(lines + details) + "\n"


def as_dict(report: TableReport) -> dict[str, Any]:
    """The report as plain data for manifest.json."""
    data = asdict(report)
    data["reject_rate"] = round(report.reject_rate, 6)
    return data
