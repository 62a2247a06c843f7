"""Headless Chromium from its command line: the DOM of a page after its scripts ran."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
ENV_VAR = "XAIGATE_CHROMIUM"
INSTALL = "apt-get install -y chromium (or make chromium)"


def find_chromium() -> str:
    """The browser's path; a test error, never a skip, when there is none."""
    given = os.environ.get(ENV_VAR)
    found = given or next((path for name in NAMES if (path := shutil.which(name))), None)
    if not found:
        pytest.fail(
            f"headless Chromium not found: install it with `{INSTALL}`, or set {ENV_VAR}",
            pytrace=False,
        )
    return found


def dump_dom(browser: str, page: Path, fragment: str, profile: Path) -> str:
    """The rendered DOM of `page` (a local file) opened at `fragment` (e.g. ``#testresult/x``)."""
    completed = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",  # tests may run as root in a container
            "--disable-gpu",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=15000",  # let the report's scripts render before the dump
            "--dump-dom",
            page.resolve().as_uri() + fragment,
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout
