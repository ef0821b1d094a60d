"""Trend charts drawn with matplotlib: SVG to inline in report.html and a PNG copy for mails and
slides, byte-identical on every rerun (fixed ids, no dates or software names in the files).

Text is drawn as glyph outlines, so the SVG needs no font where it is opened; Chinese glyphs
come from Noto Sans CJK (Debian's `fonts-noto-cjk`, which `make system-deps` installs)."""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from pathlib import Path

from matplotlib import font_manager, rc_context
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from crmkpi.presentation import ChartSpec, format_value

CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei")
# file names of those fonts, for a font installed after matplotlib cached its list of fonts
CJK_FONT_FILES = ("notosanscjk", "notosanssc", "sourcehansans", "wqy-zenhei")
LINE_COLOUR = "#1f5f99"
GRID_COLOUR = "#d9dee5"
PANELS_PER_ROW = 4
PNG_DPI = 144
_COMMENT = re.compile(r"<!--.*?-->", re.S)


@dataclass(frozen=True)
class RenderedChart:
    key: str
    svg: str  # the <svg> element, ready to inline
    png: bytes


def _installed_cjk_family() -> str | None:
    for family in CJK_FONTS:
        try:
            font_manager.findfont(
                font_manager.FontProperties(family=family), fallback_to_default=False
            )
        except ValueError:
            continue
        return family
    return None


def cjk_font() -> str | None:
    """The first installed CJK font family matplotlib can use, or None. matplotlib keeps a
    cache of the system's fonts: one installed since is added from the system's font files."""
    family = _installed_cjk_family()
    if family is None:
        for path in sorted(font_manager.findSystemFonts()):
            if any(name in Path(path).name.lower() for name in CJK_FONT_FILES):
                font_manager.fontManager.addfont(path)
        family = _installed_cjk_family()
    return family


def _figure(spec: ChartSpec, lang: str, currency_symbol: str) -> Figure:
    count = len(spec.series)
    columns = min(count, PANELS_PER_ROW)
    rows = math.ceil(count / columns)
    figure = Figure(figsize=(2.6 * columns + 0.4, 2.3 * rows + 0.3), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    positions = list(range(len(spec.periods)))
    step = max(1, math.ceil(len(positions) / 6))  # at most about six period labels per panel
    for ax, series in zip(axes, spec.series, strict=False):
        values = [math.nan if v is None else v for v in series.values]
        ax.plot(positions, values, color=LINE_COLOUR, marker="o", markersize=3, linewidth=1.6)
        ax.set_title(series.title, fontsize=9, loc="left")
        ax.set_xticks(positions[::step], spec.periods[::step], fontsize=7)
        ax.yaxis.set_major_locator(MaxNLocator(4))
        ax.yaxis.set_major_formatter(
            FuncFormatter(
                lambda y, _pos, s=series: format_value(
                    y, s.metric, s.unit, lang, currency_symbol, compact=True
                )
            )
        )
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(axis="y", color=GRID_COLOUR, linewidth=0.6)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    for ax in axes[count:]:
        ax.set_visible(False)
    return figure


def render(spec: ChartSpec, lang: str, currency_symbol: str) -> RenderedChart:
    """The chart as inline SVG and as PNG."""
    families = ["DejaVu Sans", *[f for f in (cjk_font(),) if f]]
    with rc_context(
        {"font.family": families, "svg.hashsalt": f"crmkpi-{spec.key}", "svg.fonttype": "path"}
    ):
        figure = _figure(spec, lang, currency_symbol)
        svg_buffer = io.StringIO()
        figure.savefig(svg_buffer, format="svg", metadata={"Date": None, "Creator": None})
        png_buffer = io.BytesIO()
        figure.savefig(png_buffer, format="png", dpi=PNG_DPI, metadata={"Software": None})
    svg = svg_buffer.getvalue()
    svg = _COMMENT.sub("", svg[svg.index("<svg") :])  # no XML prolog, no text in comments
    return RenderedChart(spec.key, svg, png_buffer.getvalue())
