"""The pages in a real browser (system Chromium via Playwright), against a real server on 127.0.0.1.

/docs and /redoc render the API's operations from local assets; the playground shows the model,
asks for the API key the server needs, classifies two texts and a long one in chunk mode. Every
page must do it with zero Content-Security-Policy violations, no request leaving 127.0.0.1 and no
script error. Screenshots go to $SENTIMENT_UI_SCREENSHOTS (CI keeps them) or the test's tmp dir.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers.app import TEST_SETTINGS, live_server
from tests.helpers.browser import chromium_browser, screenshot_dir, watched_page
from tests.helpers.serve import ServeProcess, start_serve

pytestmark = [pytest.mark.integration, pytest.mark.browser]

API_KEY = "playground-test-key"
TEXTS = ["A gorgeous, moving film with a wonderful cast.", "A tedious, badly acted mess."]
LONG_TEXT = " ".join(["A warm, funny and beautifully acted film that I loved from start to finish."] * 60)


@pytest.fixture(scope="module")
def server(fine_tuned_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """`sentiment-serve` with the real fine-tuned model and an API key."""
    logs = tmp_path_factory.mktemp("browser-serve")
    process = start_serve(fine_tuned_model_dir.parents[1], logs, env={"SENTIMENT_API_KEY": API_KEY})
    try:
        yield process
    finally:
        process.kill()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium_browser() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = screenshot_dir(tmp_path_factory.mktemp("ui-screenshots"))
    print(f"\nUI screenshots: {target}")
    return target


def operations(url: str) -> int:
    """How many operations the server's OpenAPI schema documents (what both pages must render)."""
    paths = httpx.get(f"{url}/openapi.json", timeout=10).json()["paths"]
    return sum(len(methods) for methods in paths.values())


def test_swagger_ui_renders_every_operation_offline(server: ServeProcess, browser: Any, shots: Path) -> None:
    expected = operations(server.url)
    assert expected >= 7
    with watched_page(browser, server.url) as (page, log):
        response = page.goto(f"{server.url}/docs")
        assert "'unsafe-inline'" not in response.headers["content-security-policy"]
        page.wait_for_selector(".opblock", timeout=20_000)
        assert page.locator(".opblock").count() == expected
        assert page.locator(".opblock-post .opblock-summary-path", has_text="/predict").count() == 1
        page.locator(".opblock-post", has_text="/predict").locator(".opblock-summary").click()
        page.wait_for_selector(".opblock-post .opblock-body", timeout=10_000)
        page.screenshot(path=str(shots / "docs.png"))
        assert log.problems() == {}


def test_redoc_renders_every_operation_offline(server: ServeProcess, browser: Any, shots: Path) -> None:
    expected = operations(server.url)
    with watched_page(browser, server.url) as (page, log):
        page.goto(f"{server.url}/redoc")
        page.wait_for_selector("[data-section-id*='operation/']", timeout=30_000)
        # Each operation has a section per tag ("tag/predict/operation/<id>") and one of its own.
        sections = page.eval_on_selector_all(
            "[data-section-id*='operation/']", "nodes => nodes.map(n => n.dataset.sectionId.split('operation/').pop())"
        )
        assert len(set(sections)) == expected, sections
        page.screenshot(path=str(shots / "redoc.png"))
        assert log.problems() == {}


def _percentages(result: Any) -> list[float]:
    return [float(text.rstrip("%")) for text in result.locator(".bar-value").all_inner_texts()]


def test_playground_asks_for_the_key_and_classifies_two_texts(server: ServeProcess, browser: Any, shots: Path) -> None:
    with watched_page(browser, server.url) as (page, log):
        page.goto(f"{server.url}/")
        page.wait_for_selector("#model[data-state='locked']")
        assert page.locator("#key-row").is_visible()  # the server has a key: the page asks for it
        page.fill("#api-key", API_KEY)
        page.fill("#texts", "\n".join(TEXTS))
        page.click("#submit")
        page.wait_for_selector("#results[data-count='2']", timeout=20_000)
        page.wait_for_selector("#model[data-state='ready']")
        labels = {"negative", "positive"}
        results = page.locator("#results .result")
        assert results.count() == 2
        for i, text in enumerate(TEXTS):
            result = results.nth(i)
            assert result.locator(".text").inner_text() == text
            assert result.locator(".label").inner_text().lower() in labels
            assert set(result.locator(".bar-label").all_inner_texts()) == labels
            assert sum(_percentages(result)) == pytest.approx(100, abs=0.15)
            assert result.locator(".badge").count() == 0  # short texts: neither truncated nor windowed
        assert page.inner_text("#model-version") == "1"
        assert page.inner_text("#model-dtype") in {"fp32", "bf16", "int8"}
        assert page.inner_text("#model-layout") in {"packed", "padded"}
        page.screenshot(path=str(shots / "playground.png"), full_page=True)

        # A long text: truncated by default, scored as windows in chunk mode.
        page.fill("#texts", LONG_TEXT)
        page.click("#submit")
        page.wait_for_selector("#results .badge.truncated", timeout=20_000)
        page.select_option("#truncation", "chunk")
        page.click("#submit")
        page.wait_for_selector("#results .badge.windows", timeout=30_000)
        windows = page.inner_text("#results .badge.windows")
        assert re.fullmatch(r"\d+ windows", windows) and int(windows.split()[0]) >= 2, windows
        page.screenshot(path=str(shots / "playground-chunk.png"), full_page=True)
        # Only the calls made before the key was typed were refused.
        problems = log.problems(allow_status=frozenset({401}))
        assert problems == {}
        assert all(f.endswith("/v1/models") for f in log.failed), log.failed


def test_playground_shows_errors_and_hides_the_key_field_without_a_key(
    shared_models_dir: Path, browser: Any, shots: Path
) -> None:
    from app.config import Settings
    from app.lifecycle.service import load_configured
    from app.main import create_app

    settings = Settings(models_dir=shared_models_dir, **TEST_SETTINGS)
    with live_server(create_app(settings, load_configured(settings))) as url, watched_page(browser, url) as (page, log):
        page.goto(f"{url}/")
        page.wait_for_selector("#model[data-state='ready']", timeout=20_000)
        assert not page.locator("#key-row").is_visible()
        page.fill("#texts", "long " * 200)
        page.select_option("#truncation", "reject")
        page.click("#submit")
        page.wait_for_selector("#error:not([hidden])")
        assert "input_too_long" in page.inner_text("#error")
        page.screenshot(path=str(shots / "playground-error.png"), full_page=True)
        assert log.problems(allow_status=frozenset({413})) == {}
