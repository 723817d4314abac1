"""The operator page in a real headless Chromium (the system's, driven by Playwright) against the
real server on 127.0.0.1: enter a serial, start the example sequence, answer its prompt in the
page, see the verdict, open the report — all asserted from the DOM. Screenshots of the page and
the report are kept under docs/station/ (the user guide shows them)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server_fixtures import running_server

DOCS = Path(__file__).resolve().parent.parent / "docs" / "station"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: What the machine allows a headless Chromium: no sandbox as root, no network beyond loopback.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert CHROMIUM, "Chromium is not installed: .ci/run installs it (apt-get install chromium)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield b
        b.close()


def test_an_operator_tests_a_unit_in_the_page(example_project: Path, browser: Any) -> None:
    with running_server(example_project) as (url, _):
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(url + "/")
        page.wait_for_selector("#sequence option[value='sequences/power_board_fct.yaml']", state="attached")
        page.fill("#serial", "bad serial")  # the default pattern refuses spaces
        page.click("#start-button")
        assert "does not match" in page.text_content("#message")
        page.fill("#serial", "SN-BROWSER-1")
        page.select_option("#sequence", "sequences/power_board_fct.yaml")
        page.fill("#operator", "ana")
        page.click("#start-button")
        page.wait_for_selector("#prompt[open]")
        assert page.text_content("#prompt-message") == "Is the status LED green?"
        assert page.is_disabled("#start-button") and page.is_enabled("#stop-button")
        # the steps that ran before the prompt are on screen with their values and limits
        row = page.locator("#steps tr.measurement", has_text="rail_3v3").first
        assert "3.1515 ≤ x ≤ 3.4485 V" in row.inner_text()
        page.click("#prompt-yes")
        page.wait_for_function("document.getElementById('verdict').textContent === 'PASS'")
        assert page.is_visible("#banner")
        page.wait_for_selector("#runs tbody tr")
        assert "SN-BROWSER-1" in page.inner_text("#runs tbody") and "yield 100 %" in page.inner_text("#yield")
        led = page.locator("#steps tr[data-step='main/led_check']")
        assert "passed" in led.inner_text()
        DOCS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS / "operator.png"), full_page=False)

        with page.expect_popup() as popup:
            page.click("#report-link")
        report = popup.value
        report.wait_for_load_state()
        assert report.text_content("#verdict") == "PASSED"
        assert "SN-BROWSER-1" in report.text_content("h1")
        assert report.locator("[data-step='main/efficiency_sweep'] svg").count() >= 1  # the sweep's plot
        assert "CAL-SIM-DMM-0001" in report.inner_text("body")  # instruments with their calibration
        report.screenshot(path=str(DOCS / "report.png"), full_page=False)
        page.close()


def test_a_failed_unit_shows_fail_and_abort_shows_stopped(example_project: Path, browser: Any) -> None:
    with running_server(example_project) as (url, _):
        page = browser.new_page()
        page.goto(url + "/")
        page.wait_for_selector("#sequence option", state="attached")
        page.fill("#serial", "SN-BROWSER-2")
        page.select_option("#sequence", "sequences/power_board_fct.yaml")
        page.click("#start-button")
        page.wait_for_selector("#prompt[open]")
        page.click("#prompt-no")  # the operator says the LED is not green: the DUT failed
        page.wait_for_function("document.getElementById('verdict').textContent === 'FAIL'")
        page.wait_for_function("!document.getElementById('start-button').disabled")
        page.fill("#serial", "SN-BROWSER-3")
        page.click("#start-button")
        page.wait_for_selector("#prompt[open]")
        page.click("#prompt-abort")  # the prompt is modal: the operator stops the unit from it
        page.wait_for_function("document.getElementById('verdict').textContent === 'STOPPED'")
        page.close()
