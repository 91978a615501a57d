"""A real browser for the page tests: Debian's Chromium driven by Playwright, offline.

Playwright's own browser download is not reachable from CI, so Playwright launches the system
Chromium (`scripts/ci/install-system.sh chromium`). Every page opened through `watched_page`
records what a person would never see but must not happen: Content-Security-Policy violations,
requests to anywhere but the server under test (they are aborted, not sent), script errors and
failed responses.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS_ENV = "SENTIMENT_UI_SCREENSHOTS"  # where the page tests leave their screenshots (CI artifacts)
LAUNCH_ARGS = [
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Runs before any script of the page (injected over CDP, so the page's own CSP cannot block it).
_CSP_RECORDER = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push({directive: e.effectiveDirective, blocked: e.blockedURI, sample: e.sample,
                               source: e.sourceFile, line: e.lineNumber});
});
"""


def system_chromium() -> str:
    """The system Chromium, installed through the CI script when it is missing."""
    if not Path(CHROMIUM).exists():
        proc = subprocess.run(
            ["bash", str(REPO / "scripts/ci/install-system.sh"), "chromium"],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert proc.returncode == 0, f"installing chromium failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    assert Path(CHROMIUM).exists() or shutil.which("chromium"), "no chromium: scripts/ci/install-system.sh chromium"
    return CHROMIUM if Path(CHROMIUM).exists() else str(shutil.which("chromium"))


@contextmanager
def chromium_browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = system_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class PageLog:
    """What a page did besides rendering; `problems()` is empty for a clean page."""

    origin: str
    page: Any = None
    off_origin: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    csp: list[dict[str, Any]] = field(default_factory=list)

    def problems(self, allow_status: frozenset[int] = frozenset()) -> dict[str, list[Any]]:
        """Everything that went wrong so far (responses with a status in `allow_status` excepted)."""
        self.page.wait_for_timeout(300)  # a violation reported after the last action still arrives
        self.csp = self.page.evaluate("window.__cspViolations || []")
        failed = [f for f in self.failed if not any(f.startswith(f"{code} ") for code in allow_status)]
        found = {
            "off_origin": self.off_origin,
            "page_errors": self.page_errors,
            "failed": failed,
            "csp": self.csp,
            # A refused resource is reported twice, as a failed response and as a console error.
            "console_errors": [] if allow_status else self.console_errors,
        }
        return {key: value for key, value in found.items() if value}


@contextmanager
def watched_page(browser: Any, origin: str) -> Iterator[tuple[Any, PageLog]]:
    """A fresh page in its own context; everything that leaves `origin` is recorded and aborted."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(_CSP_RECORDER)
    log = PageLog(origin)

    def route(route: Any) -> None:
        url = route.request.url
        if url.startswith((origin + "/", "data:", "blob:")) or url == origin:
            route.continue_()
        else:
            log.off_origin.append(url)
            route.abort()

    context.route("**/*", route)
    page = log.page = context.new_page()
    page.on("console", lambda m: log.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: log.page_errors.append(str(e)))
    page.on("response", lambda r: log.failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.on("requestfailed", lambda r: log.failed.append(f"failed {r.url} {r.failure}"))
    try:
        yield page, log
    finally:
        context.close()


def screenshot_dir(fallback: Path) -> Path:
    """$SENTIMENT_UI_SCREENSHOTS if set (CI keeps it as an artifact), else `fallback`."""
    target = Path(os.environ.get(SCREENSHOTS_ENV) or fallback)
    target.mkdir(parents=True, exist_ok=True)
    return target
