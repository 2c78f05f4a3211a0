"""Real Chromium against `streamlit run`: a reload in the middle of a training finds the session again,
the training still running and its loss curve still growing; the bare address opens a new session; two
tabs on one address keep each other's choices.

Every wait is an explicit wait on what the page shows (WebDriverWait on an element or its text), so
the test holds on a slow or busy machine; nothing sleeps for a fixed time.
"""
from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.browser]

RUNNING = '[data-testid="stStatusWidgetRunningIcon"], [data-testid="stSpinner"], [data-stale="true"]'
MARKERS = ".js-plotly-plot .scatterlayer .trace .points path"


def _waiter(driver, timeout: float):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2, ignored_exceptions=(StaleElementReferenceException,))


def _until(driver, condition, timeout: float, what: str):
    from selenium.common.exceptions import TimeoutException

    try:
        return _waiter(driver, timeout).until(lambda d: condition(d))
    except TimeoutException:
        text = driver.find_element("tag name", "body").text[:2000]
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; page text:\n{text}") from None


def _text(driver) -> str:
    return driver.find_element("tag name", "body").text


def _idle(driver, timeout: float = 300):
    _until(driver, lambda d: not d.find_elements("css selector", RUNNING), timeout, "Streamlit to finish the run")


def _no_error_box(driver):
    assert not driver.find_elements("css selector", '[data-testid="stException"]'), _text(driver)[:2000]


def _open(driver, page: str, timeout: float = 300):
    xpath = f'//a[@data-testid="stSidebarNavLink"][.//span[normalize-space()="{page}"]]'
    _until(driver, lambda d: d.find_element("xpath", xpath), 60, f"the {page} link").click()
    _until(driver, lambda d: any(h.text.strip().startswith(page)
                                 for h in d.find_elements("css selector", '[data-testid="stMain"] h1')),
           timeout, f"the {page} page")
    _idle(driver, timeout)


def _number(driver, label: str, value: int, then: str, timeout: float = 300):
    from selenium.webdriver.common.keys import Keys

    field = _until(driver, lambda d: d.find_element("css selector", f'input[aria-label="{label}"]'), 60, label)
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(str(value), Keys.ENTER)
    _until(driver, lambda d: then in _text(d) and
           d.find_element("css selector", f'input[aria-label="{label}"]').get_attribute("value") == str(value),
           timeout, f"{label} = {value}")
    _idle(driver, timeout)


def _click(driver, label: str):
    xpath = f'//div[@data-testid="stButton"]//button[.//p[normalize-space()="{label}"]]'
    button = _until(driver, lambda d: [b for b in d.find_elements("xpath", xpath) if b.is_enabled()], 60,
                    f"the {label!r} button")[0]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    button.click()


def _epochs_done(driver) -> int:
    for metric in driver.find_elements("css selector", '[data-testid="stMetric"]'):
        if metric.text.startswith("Epochs done"):
            match = re.search(r"(\d+)\s*/\s*\d+", metric.text)
            if match:
                return int(match.group(1))
    return -1


def _points(driver) -> int:
    return len(driver.find_elements("css selector", MARKERS))


def _token(driver) -> str | None:
    return (parse_qs(urlparse(driver.current_url).query).get("session") or [None])[0]


def _new_session(driver, url: str) -> str:
    """Open the bare address: a new session on the sample, its token in the address; returns the token."""
    driver.get(url)
    _until(driver, lambda d: "weather.csv" in _text(d) and _token(d), 180, "the studio on the sample, with a session address")
    token = _token(driver)
    _idle(driver)
    return token


def test_a_reload_mid_training_finds_it_still_running(fresh_studio_server, browser, artifacts):
    studio_server = fresh_studio_server
    d = browser
    token = _new_session(d, studio_server)
    _open(d, "Features")
    _number(d, "Training stride", 12, "12th window")
    _open(d, "Model")
    _number(d, "Units per layer", 8, "Model ready")
    _number(d, "Epochs", 300, "Model ready")
    _number(d, "Patience (epochs)", 300, "Model ready")
    _open(d, "Train")
    assert _token(d) == token, "the session address was lost on the way"
    _click(d, "Start training")
    _until(d, lambda d: _epochs_done(d) >= 2 and _points(d) >= 2, 300, "two epochs on the live curve")
    before = _epochs_done(d)
    d.save_screenshot(str(artifacts / "session_before_reload.png"))

    d.refresh()  # F5: a new Streamlit session, the same address
    _until(d, lambda d: "found again" in _text(d), 120, "the session to be found again")
    _until(d, lambda d: any(h.text.strip().startswith("Train") for h in d.find_elements("css selector", "h1")),
           60, "the Train page after the reload")
    assert _token(d) == token
    _until(d, lambda d: _epochs_done(d) >= before and _points(d) >= 2, 120, "the training's progress and curve")
    assert "Epoch " in _text(d) and "Start training" in _text(d)
    seen = _points(d)
    done = _epochs_done(d)
    # still running: the curve grows after the reload, epoch by epoch
    _until(d, lambda d: _points(d) > seen and _epochs_done(d) > done, 180, "the curve to grow after the reload")
    _no_error_box(d)
    d.save_screenshot(str(artifacts / "session_after_reload.png"))
    _click(d, "Stop")
    _until(d, lambda d: "Stopped" in _text(d) or "Test results" in _text(d), 180, "the training to stop")

    # The bare address (no token): another participant, who gets a session of their own.
    d.get(studio_server)
    _until(d, lambda d: "weather.csv" in _text(d) and _token(d), 120, "a new session")
    assert _token(d) != token
    _open(d, "Train")
    _until(d, lambda d: "Choose the model" in _text(d), 60, "an empty Train page in the new session")
    assert not d.find_elements("css selector", MARKERS)
    _no_error_box(d)


NOTE = "These settings were changed in another tab; showing them now."


def _value(driver, label: str) -> str:
    return driver.find_element("css selector", f'input[aria-label="{label}"]').get_attribute("value")


def test_two_tabs_on_one_address_keep_each_others_choices(fresh_studio_server, browser, artifacts):
    """Issue W, item 8: a second tab on the same session address changes one choice, the first another;
    neither undoes the other, and the tab shown the other's choice says so once."""
    d = browser
    token = _new_session(d, fresh_studio_server)
    _open(d, "Features")
    first = d.current_window_handle

    d.switch_to.new_window("tab")
    second = d.current_window_handle
    d.get(f"{fresh_studio_server}/?session={token}")
    _until(d, lambda d: "found again" in _text(d), 180, "the second tab to find the session")
    _idle(d)
    _open(d, "Features")
    assert _token(d) == token

    d.switch_to.window(first)
    _number(d, "Training stride", 5, "every 5th window")
    assert NOTE not in _text(d)

    d.switch_to.window(second)  # it has not seen the stride: its next change must not undo it
    _number(d, "Horizon (steps ahead)", 2, "every 5th window")
    _until(d, lambda d: NOTE in _text(d) and _value(d, "Training stride") == "5", 120,
           "the second tab to show the first tab's stride, with the note")
    _no_error_box(d)
    d.save_screenshot(str(artifacts / "session_two_tabs_second.png"))

    d.switch_to.window(first)
    _number(d, "Offset (skip steps)", 1, "every 5th window")
    _until(d, lambda d: NOTE in _text(d) and _value(d, "Horizon (steps ahead)") == "2"
           and _value(d, "Training stride") == "5", 120, "the first tab to show the second tab's horizon, with the note")
    _no_error_box(d)

    d.switch_to.window(second)  # a reload of either tab finds all three choices in the session
    d.refresh()
    _until(d, lambda d: "found again" in _text(d), 120, "the session after a reload")
    _idle(d)
    _until(d, lambda d: (_value(d, "Training stride"), _value(d, "Horizon (steps ahead)"), _value(d, "Offset (skip steps)"))
           == ("5", "2", "1"), 120, "all three choices after the reload")
