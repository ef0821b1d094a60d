"""report.html in a real headless Chromium (Debian's `chromium` package, never a browser
download), as a person would open it: the page, every request it makes, and a screenshot.

Also the script behind `make screenshot`: `python -m tests.browser REPORT.html OUT.png`."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
VIEWPORT = {"width": 1240, "height": 1600}
README_CLIP = {"x": 0, "y": 0, "width": 1240, "height": 1080}


def chromium() -> str | None:
    """The system Chromium, or None where it is not installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class OpenedReport:
    page: Any  # playwright's Page
    requests: list[str] = field(default_factory=list)  # every URL the page asked for


@contextmanager
def open_report(report: Path, executable: str) -> Iterator[OpenedReport]:
    """The report loaded from disk in a fresh profile; any request other than the file itself
    is recorded and refused."""
    from playwright.sync_api import sync_playwright

    target = report.resolve().as_uri()
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as driver:
        context = driver.chromium.launch_persistent_context(
            profile,
            executable_path=executable,
            args=list(CHROMIUM_FLAGS),
            viewport=VIEWPORT,
            device_scale_factor=1,
        )
        opened = OpenedReport(context.pages[0] if context.pages else context.new_page())

        def record(route: Any) -> None:
            url = route.request.url
            opened.requests.append(url)
            if url == target:
                route.continue_()
            else:
                route.abort()

        context.route("**/*", record)
        opened.page.goto(target, wait_until="load")
        try:
            yield opened
        finally:
            context.close()


def platform_fonts(page: Any, selector: str) -> list[dict[str, Any]]:
    """The fonts Chromium drew a node's text with (DevTools `CSS.getPlatformFontsForNode`)."""
    session = page.context.new_cdp_session(page)
    session.send("DOM.enable")
    session.send("CSS.enable")
    root = session.send("DOM.getDocument")["root"]["nodeId"]
    node = session.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
    fonts: list[dict[str, Any]] = session.send("CSS.getPlatformFontsForNode", {"nodeId": node})[
        "fonts"
    ]
    return fonts


def main(argv: list[str]) -> int:
    """Screenshot the top of a report (the README's picture)."""
    if len(argv) != 2:
        print("usage: python -m tests.browser REPORT.html OUT.png", file=sys.stderr)
        return 2
    executable = chromium()
    if executable is None:
        print("chromium is not installed (apt-get install -y chromium)", file=sys.stderr)
        return 69
    with open_report(Path(argv[0]), executable) as opened:
        opened.page.screenshot(path=argv[1], clip=README_CLIP)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
