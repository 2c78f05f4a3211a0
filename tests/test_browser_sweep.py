"""Issue 32, item 2, in real Chromium: a Sweep trial is the Model step's configuration with only the sweep's
window, layer type and units varied.

The Model step asks for the change from last season and 2 epochs; the sweep trains one trial (the first
window, kind and width it offers) and the run it made is taken back with "Use this run": the Model step then
shows what that run really trained. The sweep's trials used to ignore the target form (change from last
value, always) and train their own epoch count.
"""
from __future__ import annotations

import pytest

from tests.test_browser_flow import Walk
from tests.test_browser_model_search import _shown, open_on_features

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def _keep_first(walk: Walk, label: str, remove: int) -> None:
    """Drop the last ``remove`` choices of a multiselect, as a person does with Backspace."""
    from selenium.webdriver.common.keys import Keys

    for _ in range(remove):
        box = walk._widget("stMultiSelect", label)
        field = box.find_element("css selector", "input")
        walk._timed(f"{label}: remove one", lambda: field.send_keys(Keys.BACKSPACE))


def test_a_sweep_trial_trains_the_model_steps_form_and_epochs(fresh_studio_server, browser, artifacts):
    walk = open_on_features(browser, artifacts, fresh_studio_server)
    walk.number("Training stride", 20, "every 20th window")
    walk.go("Model", "Size and on-board estimate")
    walk.select("The network predicts", "change from last season", "Training settings")
    walk.number("Epochs", 2)
    walk.wait(lambda: _shown(walk, "The network predicts").startswith("change from last season"), 30, "the form")

    walk.go("Sweep", "Configurations")
    _keep_first(walk, "Window sizes (look-back)", 1)
    _keep_first(walk, "Layer types", 2)
    _keep_first(walk, "Units", 1)
    walk.wait_text("1 of 1 configurations will train")
    walk.button("Start sweep (1 trainings)", "Continue with a run", timeout=400)
    walk.shot("sweep_done")
    walk.button("Use this run", "is now the session's run", timeout=120)

    # The Model step shows the run the sweep trained: the Model step's form and epochs, the sweep's layer.
    walk.go("Model", "Size and on-board estimate")
    form = _shown(walk, "The network predicts")
    assert form.startswith("change from last season"), form
    epochs = walk.wait(lambda: browser.find_element("css selector", 'input[aria-label="Epochs"]').get_attribute("value"),
                       30, "the Epochs field")
    assert epochs == "2", epochs
