"""The report in a real browser: headless Chromium opens index.html and every section page offline.

Asserts: no console errors, no request leaves the machine (Chromium's performance log of network
events), every chart is drawn (an <img> that decoded with a size, or a non-empty <svg>), and the
failing-sparsity table has a row per method. Needs Debian's `chromium` and `chromium-driver`
(`make browser`); skipped with that reason when they are absent.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pytest

from test_report import METHODS, make_fake_report

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
LOCAL_SCHEMES = {"file", "data", "about", "blob", "chrome", "chrome-extension", "devtools"}

if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip("headless Chromium not installed: run `make browser` (Debian packages chromium, chromium-driver)",
                allow_module_level=True)


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory) -> Path:
    return make_fake_report(tmp_path_factory.mktemp("browser")).parent


@pytest.fixture(scope="module")
def driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-dev-shm-usage", "--window-size=1400,1000"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    # an explicit driver path: selenium-manager would otherwise try to download one
    drv = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    drv.set_page_load_timeout(60)
    yield drv
    drv.quit()


def open_page(driver, page: Path) -> tuple[list[dict], list[str]]:
    """Load `page`; return its console entries and the URLs of every request it made."""
    driver.get_log("browser"), driver.get_log("performance")  # drop what earlier pages left
    driver.get(page.as_uri())
    driver.execute_script("return document.readyState")
    console = driver.get_log("browser")
    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    return console, urls


def charts(driver) -> list[dict]:
    """Every chart element on the page with what the browser made of it."""
    return driver.execute_script("""
        const out = [];
        for (const img of document.querySelectorAll('img')) {
            out.push({kind: 'img', ok: img.complete && img.naturalWidth > 0 && img.naturalHeight > 0,
                      src: img.src.slice(0, 40)});
        }
        for (const svg of document.querySelectorAll('svg')) {
            if (svg.parentElement.closest('svg')) continue;
            const box = svg.getBoundingClientRect();
            out.push({kind: 'svg', ok: box.width > 0 && box.height > 0 && svg.querySelectorAll('*').length > 0,
                      src: ''});
        }
        return out;""")


def pages(report_dir: Path) -> list[Path]:
    return [report_dir / "index.html"] + sorted(p for p in report_dir.glob("*.html") if p.name != "index.html")


def test_every_page_offline_without_errors(driver, report_dir: Path):
    assert len(pages(report_dir)) == 3
    for page in pages(report_dir):
        console, urls = open_page(driver, page)
        errors = [e for e in console if e["level"] == "SEVERE"]
        assert not errors, f"{page.name}: console errors {errors}"
        remote = [u for u in urls if urlparse(u).scheme not in LOCAL_SCHEMES]
        assert not remote, f"{page.name}: requests left the machine: {remote}"
        assert urls, f"{page.name}: the performance log saw no request at all (is network logging on?)"


def test_every_chart_rendered(driver, report_dir: Path):
    for page in pages(report_dir)[1:]:
        open_page(driver, page)
        found = charts(driver)
        assert len(found) >= 2, f"{page.name}: expected the grid and the layerwise chart, found {found}"
        assert all(c["ok"] for c in found), f"{page.name}: charts not rendered: {[c for c in found if not c['ok']]}"


def test_summary_table_has_a_row_per_method(driver, report_dir: Path):
    open_page(driver, report_dir / "index.html")
    rows = driver.execute_script(
        "return [...document.querySelectorAll('#failing-summary tbody tr')].map(r => r.querySelector('th').innerText)")
    expected = set(pd.read_csv(report_dir.parent / "results" / "arithmetic.csv")["method"]) - {"dense"}
    assert sorted(rows) == sorted(expected) == sorted(METHODS)
    links = driver.execute_script("return [...document.querySelectorAll('#sections a')].map(a => a.href)")
    assert [Path(urlparse(u).path).name for u in links] == ["arithmetic.html", "commonsense.html"]
