"""Issue 35, item 8: a page load asks no host but the studio (a workshop may have no internet, and a request the
participants did not choose is one the studio should not make): the favicon is the studio's own."""
from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_page_load_requests_nothing_outside_the_studio(studio_server, browser):
    browser.execute_cdp_cmd("Network.enable", {})
    browser.get(studio_server)
    wait = WebDriverWait(browser, 60)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "[data-testid='stSidebarNav']"))
    # The favicon is set by the app once its script ran: wait for the studio's own one.
    wait.until(lambda d: any("/media/" in (e.get_attribute("href") or "")
                             for e in d.find_elements(By.CSS_SELECTOR, "link[rel~='icon'], link[rel='shortcut icon']")))
    urls = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    urls += [e.get_attribute("href") for e in browser.find_elements(By.CSS_SELECTOR, "link[href]")]
    hosts = {urlsplit(u).hostname for u in urls if u and urlsplit(u).scheme in ("http", "https")}
    assert hosts <= {"127.0.0.1"}, json.dumps(sorted(u for u in urls if urlsplit(u).hostname != "127.0.0.1"))
