"""Issue 32, item 1, in real Chromium: the Model step's search result, and its Use button that sets what it names.

On the weather sample the target form is set to level first, so the search's winner (a level target must win
clearly over a change form) is another form and the page offers its Use button. Clicking it must leave the
control showing that form (and the Features step showing the window, when the button names one): the button
used to sit in a fragment whose rerun could not redraw the control, so the click made the button vanish and
the form stay as it was.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.config import DEFAULTS
from core.models import TARGET_FORM_LABELS
from core.search import BUDGET_FACTOR
from tests.test_browser_flow import Walk

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def _shown(walk: Walk, label: str) -> str:
    """The text a selectbox shows as its value."""
    box = walk._widget("stSelectbox", label)
    value = box.find_element("css selector", 'input[role="combobox"]').get_attribute("value") or ""
    return value.strip() or box.find_element("css selector", '[data-baseweb="select"]').text.strip()


def open_on_features(browser, artifacts: Path, url: str) -> Walk:
    """The studio with the weather sample (loaded at start), its windows laid out on the Features step."""
    walk = Walk(browser, artifacts, url)
    browser.get(url)
    walk.wait(lambda: "weather.csv" in walk.text(), 120, "the weather sample")
    walk.idle(timeout=60)
    walk.go("Features", "values per forecast", "Ready:")
    return walk


def test_the_search_winner_is_applied_by_its_button(fresh_studio_server, browser, artifacts):
    walk = open_on_features(browser, artifacts, fresh_studio_server)
    walk.go("Model", "Size and on-board estimate")
    walk.select("The network predicts", "level", "Training settings")
    walk.wait(lambda: _shown(walk, "The network predicts") == "level", 30, "the level form")
    search = ("Choose target and window on validation (short trainings in the background, at most "
              f"{BUDGET_FACTOR * DEFAULTS['quickcheck']['budget_s']:.0f} s)")
    walk.button(search)
    walk.wait_text("Chosen on validation", timeout=400)
    walk.idle(timeout=60)
    buttons = walk.wait(lambda: [b for b in browser.find_elements("css selector", '[data-testid="stButton"] button')
                                 if b.text.strip().startswith("Use ")], 30, "the search's Use button")
    label = buttons[0].text.strip()
    m = re.fullmatch(r"Use (.+?)(?: and a window of (\d+) steps)?", label)
    assert m, label
    form = next(f for f, name in TARGET_FORM_LABELS.items() if name.lower() == m.group(1).lower())
    window = int(m.group(2)) if m.group(2) else None
    walk.shot("model_search_before", scroll_to='[data-testid="stDataFrame"]')
    walk.button(label, timeout=120)
    # The page now shows what the button named, and keeps the search's result.
    walk.wait(lambda: _shown(walk, "The network predicts").startswith(TARGET_FORM_LABELS[form]), 60,
              f"the target-form control to show {TARGET_FORM_LABELS[form]!r} after {label!r}")
    walk.wait_text("In use:", timeout=60)
    assert "Chosen on validation" in walk.main_text()
    assert not [b for b in browser.find_elements("css selector", '[data-testid="stButton"] button')
                if b.text.strip() == label]
    walk.shot("model_search_applied")
    if window is not None:
        walk.go("Features", "values per forecast")
        field = walk.wait(lambda: browser.find_element("css selector", 'input[aria-label="Window (look-back steps)"]'),
                          30, "the window field")
        assert field.get_attribute("value") == str(window)
        walk.go("Model", "Size and on-board estimate")
        assert _shown(walk, "The network predicts").startswith(TARGET_FORM_LABELS[form])
        assert "In use:" in walk.main_text()
