"""A real headless browser for the page tests: Debian's chromium, driven by Selenium.

Without chromium and chromedriver a page test is skipped, unless
PAYMENTS_REQUIRE_BROWSER is set (CI sets it): then it fails. With
PAYMENTS_SCREENSHOTS set to a folder, :func:`shot` saves the page there (the
pictures in docs/finance.md and docs/audit.md are made this way).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
#: The session cookie the Airflow UI keeps its JWT in.
TOKEN_COOKIE = "_token"


def require_browser() -> None:
    if CHROMIUM and CHROMEDRIVER:
        return
    reason = "Debian's chromium and chromium-driver are not installed"
    if os.environ.get("PAYMENTS_REQUIRE_BROWSER"):
        pytest.fail(reason + " and PAYMENTS_REQUIRE_BROWSER is set")
    pytest.skip(reason)


def chrome(downloads: Path, *, width: int = 1280, height: int = 1000) -> Any:
    """A headless Chromium saving downloads to ``downloads``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    require_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
    ):
        options.add_argument(arg)
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def log_in(driver: Any, base: str, token: str) -> None:
    """Carry ``token`` as the UI's session cookie (as after logging in to Airflow)."""
    driver.get(base + "/api/v2/monitor/health")
    driver.delete_all_cookies()
    driver.add_cookie({"name": TOKEN_COOKIE, "value": token, "path": "/"})


def wait_until(condition: Callable[[], Any], *, timeout: float = 30, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def appears(driver: Any, by: str, value: str, *, timeout: float = 30) -> Any:
    """The element once the page a click is loading has it: a click on a link or a form's
    button returns before the next page is there, and a lookup at once can miss it."""
    return wait_until(
        lambda: (found := driver.find_elements(by, value)) and found[0],
        timeout=timeout,
        what=f"{value!r} on the page",
    )


def downloaded(folder: Path, pattern: str, *, timeout: float = 30) -> Path:
    """The file a click downloaded (complete, not Chromium's ``.crdownload``)."""
    return Path(
        wait_until(
            lambda: next(iter(sorted(folder.glob(pattern))), None),
            timeout=timeout,
            what=f"a download matching {pattern}",
        )
    )


def shot(driver: Any, name: str) -> None:
    """Save the whole page as ``<PAYMENTS_SCREENSHOTS>/<name>.png`` when asked to."""
    folder = os.environ.get("PAYMENTS_SCREENSHOTS")
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(max(int(height) + 40, 600), 2400))
    driver.save_screenshot(str(Path(folder) / f"{name}.png"))
    driver.set_window_size(1280, 1000)
