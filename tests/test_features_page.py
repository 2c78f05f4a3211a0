"""The Features page in Streamlit's AppTest: real widgets, real windows, errors that keep the Model step locked."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core.dataset import Dataset

PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "2_features.py")


def _dataset(n=2000, freq="h", nan_at=None, constant=False) -> Dataset:
    rng = np.random.default_rng(1)
    index = pd.date_range("2024-03-01", periods=n, freq=freq, name="time") if freq else pd.RangeIndex(n, name="step")
    frame = pd.DataFrame({"temp": 15 + rng.normal(size=n).cumsum(), "humidity": 60 + 5 * rng.normal(size=n),
                          "wind": np.abs(rng.normal(size=n))}, index=index)
    if nan_at is not None:
        frame.iloc[nan_at, 1] = np.nan
    if constant:
        frame["sensor_id"] = 7.0
    return Dataset("page-test", frame, freq=freq, time_col="time" if freq else None, fingerprint=f"fp-{n}-{freq}")


def _app(ds: Dataset | None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    if ds is not None:
        at.session_state["fs.dataset"] = ds
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _texts(elements) -> str:
    return " | ".join(str(e.value) for e in elements)


def test_no_dataset_points_to_data_step():
    at = _app(None)
    assert "Data" in _texts(at.info)
    assert not at.number_input


def test_page_shows_shapes_counts_and_window_picture():
    at = _app(_dataset())
    assert not at.error
    assert "X: (n_windows, 24, 3) = 72 values per forecast; y: (n_windows, 1, 1)" in _texts(at.markdown)
    windows = at.session_state["fs.windows"]
    assert windows is not None and windows.count("train") > 1000
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Training windows"] == f"{windows.count('train'):,}"
    assert metrics["Test windows"] == f"{windows.count('test'):,}"
    assert "24 steps = 1 day" in _texts(at.caption)
    assert at.get("plotly_chart")
    assert "Ready" in _texts(at.success)
    # calendar features are offered for hourly data and change the input count
    at.multiselect(key="feat.calendar").set_value(["hour", "dow"]).run()
    assert "X: (n_windows, 24, 7) = 168 values per forecast" in _texts(at.markdown)


def test_bad_window_shows_error_and_locks_model_step_until_fixed():
    at = _app(_dataset(1000))
    at.session_state["fs.model_spec"] = "a model chosen for the old windows"
    at.number_input(key="feat.window").set_value(900).run()
    assert not at.exception
    assert "longer than the training part" in _texts(at.error)
    assert "largest window that fits" in _texts(at.error)
    assert "locked" in _texts(at.warning)
    assert at.session_state["fs.windows"] is None
    assert "fs.model_spec" not in at.session_state  # a changed window drops the model chosen for the old one
    at.number_input(key="feat.window").set_value(48).run()
    assert not at.error and at.session_state["fs.windows"].spec.window == 48


def test_preset_sets_window_and_horizon():
    at = _app(_dataset(3000))
    box = at.selectbox(key="feat.preset")
    label = next(o for o in box.options if o.startswith("1 day → next 6 hours"))
    box.set_value(label).run()
    assert at.number_input(key="feat.window").value == 24
    assert at.number_input(key="feat.horizon").value == 6
    assert "y: (n_windows, 6, 1)" in _texts(at.markdown)


def test_reruns_reuse_the_windows_and_slider_moves_the_window():
    at = _app(_dataset())
    first = at.session_state["fs.windows"]
    at.slider(key="feat.pos").set_value(100).run()
    assert not at.exception
    assert at.session_state["fs.windows"] is first
    assert "training window" in _texts(at.caption)


def test_missing_values_and_constant_columns_are_refused():
    at = _app(_dataset(nan_at=[5, 6, 7]))
    assert "'humidity' still has 3 missing" in _texts(at.error) and "Data step" in _texts(at.error)
    assert at.session_state["fs.windows"] is None
    at = _app(_dataset(constant=True))
    assert not at.error  # the default leaves the constant column out
    at.multiselect(key="feat.features").set_value(["temp", "sensor_id"]).run()
    assert "carries no information" in _texts(at.error)


def test_bad_split_shows_error():
    at = _app(_dataset(600))
    at.slider(key="feat.train").set_value(0.9).run()
    at.slider(key="feat.val").set_value(0.1).run()
    assert "leave no room" in _texts(at.error)


@pytest.mark.parametrize("freq", [None, "D"])
def test_step_indexed_and_daily_data(freq):
    at = _app(_dataset(800, freq=freq))
    assert not at.error
    if freq is None:
        assert "feat.calendar" not in [m.key for m in at.multiselect]  # no calendar without a time column
        at.radio(key="feat.split_by").set_value("date").run()
        assert not at.exception and not at.error
        assert at.session_state["fs.split"].by_date
    else:
        at.multiselect(key="feat.calendar").set_value(["dow"]).run()
        assert not at.error
        assert at.session_state["fs.window_spec"].calendar == ("dow",)


def _weather_sample() -> Dataset:
    """The bundled weather CSV read with plain pandas (the Data step's own loader is tested on its own)."""
    raw = pd.read_csv(Path(PAGE).parent.parent / "sample_data" / "weather.csv")
    index = pd.DatetimeIndex(pd.to_datetime(raw.pop("time"), utc=True).dt.tz_localize(None), name="time")
    frame = raw.select_dtypes("number").astype("float64").set_axis(index).sort_index()
    frame = frame[~frame.index.duplicated()].asfreq("h").interpolate()
    return Dataset("weather.csv", frame, freq="h", time_col="time", excluded={"summary": "text"}, fingerprint="weather")


def test_through_the_app_shell_on_the_weather_sample():
    at = AppTest.from_file(str(Path(PAGE).parent.parent / "studio" / "app.py"), default_timeout=60)
    at.session_state["fs.dataset"] = _weather_sample()
    at.run()
    at.switch_page("../pages/2_features.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == ["Features"]
    assert not at.error
    # The Data page, when present, runs first and may load its own copy of the sample: read what is there.
    n = len(at.session_state["fs.dataset"].numeric_columns)
    # The default (core/defaults.py) suggests hour of day for the sample's strong daily cycle: one sin/cos pair more.
    assert at.session_state["fs.window_spec"].calendar == ("hour",)
    k = n + 2
    assert f"X: (n_windows, 24, {k}) = {24 * k} values per forecast; y: (n_windows, 1, 1)" in _texts(at.markdown)
    assert "Preselected for this data: " in _texts(at.caption)
    box = at.selectbox(key="feat.preset")
    box.set_value(next(o for o in box.options if o.startswith("1 week → next hour"))).run()
    at.multiselect(key="feat.calendar").set_value(["hour", "doy"]).run()
    assert not at.exception and not at.error
    assert f"X: (n_windows, 168, {n + 4}) = {168 * (n + 4):,} values per forecast" in _texts(at.markdown)
    assert at.session_state["fs.windows"].count("test") > 1000
    assert "Left out on the Data step (not numeric): summary" in _texts(at.caption)


@pytest.mark.slow
@pytest.mark.browser
def test_features_page_in_chromium_on_the_sample(studio_server, browser, artifacts):
    """Data step loads the bundled sample, then the Features step in a real browser: shapes, picture, an error."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 90)
    browser.get(studio_server)
    wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, '[data-testid="stSidebar"]'), "Rows"))
    link = wait.until(EC.element_to_be_clickable(
        (By.XPATH, '//a[@data-testid="stSidebarNavLink"][.//span[normalize-space()="Features"]]')))
    link.click()
    wait.until(EC.text_to_be_present_in_element((By.TAG_NAME, "body"), "values per forecast"))
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, ".js-plotly-plot")))
    assert not browser.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
    browser.save_screenshot(str(artifacts / "features_page.png"))
    # Wait for the element this step uses: on a busy machine the number input is still a loading placeholder
    # when the chart has appeared (find_element found nothing to type into).
    box = wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, 'input[aria-label="Window (look-back steps)"]')))
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys("100000", Keys.ENTER)
    alert = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, '[data-testid="stAlertContentError"]')))
    assert "Window 100,000" in alert.text
    assert wait.until(EC.text_to_be_present_in_element((By.TAG_NAME, "body"), "locked"))


def test_page_says_windows_per_part_and_that_test_inputs_reach_back():
    # A short quarterly series: the test part keeps one window per row, its first inputs read validation rows
    index = pd.date_range("1959-01-01", periods=203, freq="QS", name="time")
    frame = pd.DataFrame({"gdp": 2700 + np.arange(203) * 40 + np.sin(np.arange(203)) * 30}, index=index)
    at = _app(Dataset("gdp", frame, freq="QS", time_col="time", fingerprint="fp-gdp"))
    at.number_input(key="feat.window").set_value(14).run()
    assert not at.exception and not at.error
    windows = at.session_state["fs.windows"]
    assert windows.counts() == {"train": 128, "val": 31, "test": 30}
    captions = _texts(at.caption)
    assert "128 training, 31 validation and 30 test windows" in captions
    assert "the first test forecasts read up to 14 rows from before the test part" in captions
    at.slider(key="feat.pos").set_value(windows.first_start("test")).run()  # the first test window
    assert "a test window; its labels are test rows, its inputs reach back before the part" in _texts(at.caption)
    at.slider(key="feat.pos").set_value(142 - 14).run()  # labels on the first validation row
    assert "a validation window" in _texts(at.caption)
    at.slider(key="feat.pos").set_value(127).run()  # its labels end on the last training row
    assert "Forecast made at" in _texts(at.caption) and "a training window." in _texts(at.caption)
