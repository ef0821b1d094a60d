"""report.html: number formats by unit, the headline cards against kpis.csv, escaping,
byte-identical reruns, and the report of sample_data/ in a real headless Chromium."""

from __future__ import annotations

import csv
import datetime as dt
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from io import BytesIO
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from crmkpi.cli import app
from crmkpi.presentation import DEFAULT_HEADLINE_METRICS, format_change, format_value
from crmkpi.report_html import ReportSettings, write_report
from tests.browser import chromium, open_report, platform_fonts
from tests.conftest import REPO

SAMPLE_AS_OF = "2025-12-31"


# --- number formats, against hand-written expectations ---------------------------------------


@pytest.mark.parametrize(
    ("value", "metric", "unit", "lang", "compact", "expected"),
    [
        (0.41666, "win_rate", "ratio", "en", False, "41.7%"),
        (8.0312, "clv_to_cac", "ratio", "en", False, "8.03"),
        (1234.5, "revenue", "currency", "en", False, "¥1,234.50"),
        (4_563_210.0, "revenue", "currency", "en", True, "¥4.56M"),
        (4_563_210.0, "revenue", "currency", "zh", True, "¥456.32万"),
        (312_000_000.0, "revenue", "currency", "zh", True, "¥3.12亿"),
        (-2500.0, "gross_profit", "currency", "en", False, "-¥2,500.00"),
        (147.0, "active_customers", "count", "en", True, "147"),
        (3.25, "sales_cycle_days", "days", "zh", False, "3.2 天"),
        (3.25, "sales_cycle_days", "days", "en", False, "3.2 days"),
        (17.46, "average_speed_of_answer", "seconds", "zh", False, "17.5 秒"),
        (None, "csat", "ratio", "en", False, "–"),
    ],
)
def test_format_value_by_unit(
    value: float | None, metric: str, unit: str, lang: str, compact: bool, expected: str
) -> None:
    assert format_value(value, metric, unit, lang, "¥", compact=compact) == expected


def test_format_change_in_points_for_shares_and_relative_otherwise() -> None:
    assert format_change(0.034, 0.383, "win_rate", "ratio") == "+3.4 pp"
    assert format_change(-50.0, 200.0, "revenue", "currency") == "-25.0%"
    assert format_change(-41.7, 25.0, "nps", "points") == "-41.7"  # NPS crosses zero
    assert format_change(5.0, 0.0, "revenue", "currency") == "–"
    assert format_change(None, 1.0, "revenue", "currency") == "–"


# --- the report of sample_data/ --------------------------------------------------------------


def _compute(out: Path, lang: str) -> None:
    result = CliRunner().invoke(
        app,
        [
            "compute",
            str(REPO / "sample_data"),
            "--period",
            "quarter",
            "--as-of",
            SAMPLE_AS_OF,
            "--format",
            "csv,parquet,html",
            "--lang",
            lang,
            "--currency-symbol",
            "¥",
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """English and Chinese reports of the sample data, plus an English rerun elsewhere."""
    folders = {}
    for name, lang in (("en", "en"), ("en_rerun", "en"), ("zh", "zh")):
        folders[name] = tmp_path_factory.mktemp(name)
        _compute(folders[name], lang)
    return folders


@dataclass
class Card:
    metric: str
    raw: str
    shown: str


class _Cards(HTMLParser):
    """The headline cards of a report, read with the standard library's parser."""

    def __init__(self) -> None:
        super().__init__()
        self.cards: list[Card] = []
        self._in_value = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if "card" in (found.get("class") or "").split():
            self.cards.append(Card(found["data-metric"] or "", found["data-value"] or "", ""))
        self._in_value = found.get("class") == "value" and bool(self.cards)

    def handle_data(self, data: str) -> None:
        if self._in_value:
            self.cards[-1].shown += data

    def handle_endtag(self, tag: str) -> None:
        self._in_value = False


def _latest_complete_totals(kpis_csv: Path) -> dict[str, float | None]:
    """metric -> value of the latest complete period's total rows, read from kpis.csv, for the
    metrics with a value in some period (the others have no card)."""
    with kpis_csv.open(encoding="utf-8-sig", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["grain"] == "total"]
    with_values = {r["metric"] for r in rows if r["value"]}
    complete = [r for r in rows if r["partial_period"] == "false"]
    latest = max(dt.date.fromisoformat(r["period_start"]) for r in complete).isoformat()
    return {
        r["metric"]: float(r["value"]) if r["value"] else None
        for r in complete
        if r["period_start"] == latest and r["metric"] in with_values
    }


_MULTIPLIERS = {"K": 1e3, "M": 1e6, "B": 1e9, "万": 1e4, "亿": 1e8}


def _read_shown(text: str) -> tuple[float, float]:
    """A card's text back to (number, rounding tolerance): `¥4.56M` -> (4.56e6, 0.005e6)."""
    match = re.fullmatch(r"(-?)¥?([\d,]+(?:\.(\d+))?)(%|[KMB万亿])?(?: .+)?", text.strip())
    assert match, f"unexpected card text {text!r}"
    sign, digits, decimals, mark = match.groups()
    scale = 0.01 if mark == "%" else _MULTIPLIERS.get(mark or "", 1.0)
    number = float(digits.replace(",", "")) * scale * (-1 if sign else 1)
    return number, 0.5 * 10 ** -len(decimals or "") * scale + 1e-12


def _check_cards(cards: list[Card], expected: dict[str, float | None], exact: bool = True) -> None:
    """Every card's value is the KPI table's; with `exact`, the cards are the default headline
    metrics the table has values for, in their order."""
    if exact:
        assert [c.metric for c in cards] == [m for m in DEFAULT_HEADLINE_METRICS if m in expected]
    for card in cards:
        value = expected[card.metric]
        if value is None:
            assert card.raw == "" and card.shown.strip() == "–"
            continue
        assert float(card.raw) == pytest.approx(value, rel=1e-12)
        shown, tolerance = _read_shown(card.shown)
        assert abs(shown - value) <= tolerance, (card.metric, card.shown, value)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_cards_equal_the_kpi_table(reports: dict[str, Path], lang: str) -> None:
    parser = _Cards()
    parser.feed((reports[lang] / "report.html").read_text(encoding="utf-8"))
    assert len(parser.cards) >= 12
    _check_cards(parser.cards, _latest_complete_totals(reports[lang] / "kpis.csv"))


def test_reruns_are_byte_identical(reports: dict[str, Path]) -> None:
    first, second = reports["en"], reports["en_rerun"]
    names = sorted(p.relative_to(first).as_posix() for p in first.glob("charts/*.png"))
    assert {"charts/sales.png", "charts/customers.png", "charts/service.png"} <= set(names)
    assert names == sorted(p.relative_to(second).as_posix() for p in second.glob("charts/*.png"))
    for name in ["report.html", *names]:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_report_is_self_contained(reports: dict[str, Path]) -> None:
    html = (reports["en"] / "report.html").read_text(encoding="utf-8")
    assert "<script" not in html.lower()
    links = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)""", html)
    assert links and all(link.startswith("#") for link in links)  # only in-page links
    assert not re.search(r"url\((?!#)", html) and "@import" not in html
    assert html.count("<svg") >= 5 + 12  # the family charts and the cards' trend lines
    assert "@page { size: A4" in html
    assert 'id="quality"' in html and 'href="#quality"' in html


def test_manifest_lists_report_and_charts(reports: dict[str, Path]) -> None:
    import json

    manifest = json.loads((reports["en"] / "manifest.json").read_text(encoding="utf-8"))
    paths = {o["path"] for o in manifest["outputs"]}
    assert {"report.html", "charts/sales.png", "kpis.csv"} <= paths


def test_chinese_report_has_chinese_titles_and_formats(reports: dict[str, Path]) -> None:
    html = (reports["zh"] / "report.html").read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in html
    for text in ("核心指标", "销售", "呼叫中心", "指标说明", "数据质量", "环比", "同比", "赢单率"):
        assert text in html, text
    assert re.search(r'class="value"[^>]*>¥[\d.]+万<', html)  # amounts in 万


def test_data_values_are_escaped(reports: dict[str, Path], tmp_path: Path) -> None:
    kpis = pl.read_parquet(reports["en"] / "kpis.parquet")
    hostile = {"Li Wei": "<script>alert(1)</script>", "Zhao Lei": '=HYPERLINK("http://x")'}
    kpis = kpis.with_columns(pl.col("rep").replace(hostile))
    write_report(
        tmp_path,
        kpis,
        {},
        ["segment", "rep"],
        [],
        {"run_id": "r1", "as_of": SAMPLE_AS_OF},
        ReportSettings("<b>Acme</b> & Co", "en", DEFAULT_HEADLINE_METRICS, "$"),
    )
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<script" not in html and "<b>Acme" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;Acme&lt;/b&gt; &amp; Co" in html
    assert "=HYPERLINK(&#34;http://x&#34;)" in html


def test_headline_setting_picks_the_cards(reports: dict[str, Path], tmp_path: Path) -> None:
    kpis = pl.read_parquet(reports["en"] / "kpis.parquet")
    write_report(
        tmp_path,
        kpis,
        {},
        [],
        [],
        {"run_id": "r1", "as_of": SAMPLE_AS_OF},
        ReportSettings("", "zh", ("nps", "win_rate", "revenue"), ""),
    )
    parser = _Cards()
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    parser.feed(html)
    # cards by family (sales, customers, service), each card's value from the KPI table
    assert [c.metric for c in parser.cards] == ["win_rate", "revenue", "nps"]
    _check_cards(parser.cards, _latest_complete_totals(reports["en"] / "kpis.csv"), exact=False)
    assert '<h1 id="title">CRM 指标报告</h1>' in html  # the language's default title
    assert sorted(p.name for p in tmp_path.glob("charts/*.png")) == [
        "customers.png",
        "sales.png",
        "service.png",
    ]


def test_missing_cjk_font_is_a_warning(
    reports: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import crmkpi.report_html

    monkeypatch.setattr(crmkpi.report_html, "cjk_font", lambda: None)
    kpis = pl.read_parquet(reports["en"] / "kpis.parquet")
    _, warnings = write_report(
        tmp_path,
        kpis,
        {},
        [],
        [],
        {"run_id": "r1", "as_of": SAMPLE_AS_OF},
        ReportSettings("", "zh", ("win_rate",), ""),
    )
    assert len(warnings) == 1 and "fonts-noto-cjk" in warnings[0]


def test_cjk_font_is_installed_for_the_charts() -> None:
    from crmkpi.charts import cjk_font

    if shutil.which("fc-list") is None:
        pytest.skip("no fontconfig on this machine (make system-deps installs the fonts)")
    assert cjk_font() is not None, "install fonts-noto-cjk (make system-deps)"


def test_unknown_headline_metric_is_a_config_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "compute",
            str(REPO / "sample_data"),
            "--format",
            "html",
            "--headline-metrics",
            "win_rate,wins",
            "--out",
            str(tmp_path / "out"),
            "--quiet",
        ],
    )
    assert result.exit_code == 78
    assert "--headline-metrics" in result.output and "wins" in result.output


# --- in a real browser -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[str]:
    executable = chromium()
    if executable is None:
        pytest.skip("chromium is not installed (make system-deps, or apt-get install chromium)")
    pytest.importorskip("playwright", reason="playwright is a dev dependency (make install)")
    yield executable


def test_sample_report_in_headless_chromium(reports: dict[str, Path], browser: str) -> None:
    from PIL import Image

    expected = _latest_complete_totals(reports["en"] / "kpis.csv")
    report = reports["en"] / "report.html"
    with open_report(report, browser) as opened:
        page = opened.page
        shot = Image.open(BytesIO(page.screenshot(full_page=False))).convert("RGB")
        cards = [
            Card(
                card.get_attribute("data-metric") or "",
                card.get_attribute("data-value") or "",
                card.query_selector(".value").inner_text(),  # type: ignore[union-attr]
            )
            for card in page.query_selector_all(".card")
        ]
        page.emulate_media(media="print")
        pdf = page.pdf(format="A4")
        assert opened.requests == [report.resolve().as_uri()]  # nothing but the file itself
    # not blank: the page drew text, cards and lines in many colours, not one white sheet
    colours = shot.getcolors(maxcolors=shot.width * shot.height) or []
    white = sum(count for count, colour in colours if colour == (255, 255, 255))
    assert white / (shot.width * shot.height) < 0.95
    assert len(colours) > 50
    _check_cards(cards, expected)
    assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page") >= 2


def test_chinese_text_drawn_with_cjk_glyphs(reports: dict[str, Path], browser: str) -> None:
    with open_report(reports["zh"] / "report.html", browser) as opened:
        fonts = platform_fonts(opened.page, "#headlines")
        card_fonts = platform_fonts(opened.page, ".card .name")
        assert opened.requests == [(reports["zh"] / "report.html").resolve().as_uri()]
    for used in (fonts, card_fonts):
        cjk = [f for f in used if "CJK" in f["familyName"] or "Han" in f["familyName"]]
        assert cjk, used
        assert sum(f["glyphCount"] for f in cjk) >= 2
