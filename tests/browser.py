"""Headless Chromium from its command line: the DOM of a page after its scripts ran."""

from __future__ import annotations

import base64
import html
import json
import os
import re
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


def page_text(dom: str) -> str:
    """The visible text of a dumped DOM: scripts dropped, tags blanked, whitespace folded."""
    body = re.sub(r"<script\b.*?</script>", " ", dom, flags=re.S)
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)))


def case_page(browser: str, report: Path, case_title: str, profile: Path) -> tuple[str, str]:
    """(result id, DOM) of the sign-off report's page of the case titled `case_title`
    (Allure 3 lists its results' ids beside the page; the page itself is what is checked)."""
    listed = json.loads((report.parent / "test-results.json").read_text())["byId"]
    [case_id] = [key for key, value in listed.items() if value["name"] == case_title]
    return case_id, dump_dom(browser, report, f"#testresult/{case_id}", profile)


def attachment_names(page: str) -> list[tuple[str, str]]:
    """(uid, name) of each attachment row on a case's page."""
    rows = re.findall(
        r'data-uid="([0-9a-f]+)"[^>]*>.*?attachment-row__name[^>]*>([^<]+)<', page, re.S
    )
    return [(uid, html.unescape(name)) for uid, name in rows]


def attachment_images(
    browser: str, report: Path, case_id: str, uid: str, profile: Path
) -> list[bytes]:
    """The decoded inline images the report shows when the attachment `uid` is opened."""
    opened = dump_dom(browser, report, f"#testresult/{case_id}?attachment={uid}", profile)
    images = re.findall(r'<img[^>]*src="data:image/png;base64,([^"]+)"', opened)
    return [base64.b64decode(image) for image in images]
