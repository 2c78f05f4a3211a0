"""Issue 32: the layout at 1280 px and 1920 px wide, in a real Chromium on the bundled samples.

Walks the steps that need no training (Data with two samples, Features, Model) at both widths, saves a
screenshot of each into artifacts/, and checks in the DOM that no metric's label or value is cut off with an
ellipsis (an element narrower than its text: scrollWidth > clientWidth) and that no Plotly chart's title box
overlaps its legend's. Every wait is for an element or a text, never a time.
"""
from __future__ import annotations

import pytest

WIDTHS = (1280, 1920)
HEIGHT = 2200  # tall, so the screenshot holds the page's metrics and first charts

# Every metric label/value element (and what is inside it) whose text is wider than its box.
CLIPPED_METRICS = """
const out = [];
document.querySelectorAll('[data-testid="stMetricValue"], [data-testid="stMetricLabel"]').forEach(m => {
  for (const e of [m, ...m.querySelectorAll('*')]) {
    if (e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1) { out.push(m.innerText.trim()); break; }
  }
});
return out;
"""

# Every Plotly chart whose title's box meets its legend's.
TITLE_OVER_LEGEND = """
const out = [];
document.querySelectorAll('.js-plotly-plot').forEach(p => {
  const t = p.querySelector('.gtitle'), l = p.querySelector('g.legend');
  if (!t || !l || !t.textContent.trim()) return;
  const a = t.getBoundingClientRect(), b = l.getBoundingClientRect();
  if (a.width && b.width && a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom)
    out.push(t.textContent.trim());
});
return out;
"""

# True once a Plotly chart on the page has drawn.
CHARTS_DRAWN = """
return !!document.querySelector('.js-plotly-plot .main-svg');
"""


@pytest.mark.slow
@pytest.mark.browser
def test_no_metric_is_cut_off_and_no_title_sits_on_its_legend(studio_server, browser, artifacts):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 120)

    def body_has(text: str) -> None:
        wait.until(EC.text_to_be_present_in_element((By.TAG_NAME, "body"), text))

    def step(name: str) -> None:
        wait.until(EC.element_to_be_clickable(
            (By.XPATH, f'//a[@data-testid="stSidebarNavLink"][.//span[normalize-space()="{name}"]]'))).click()

    def check(shot: str) -> tuple[list[str], list[str]]:
        wait.until(lambda d: d.execute_script(CHARTS_DRAWN))
        assert not browser.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
        browser.save_screenshot(str(artifacts / f"layout_{shot}.png"))
        return browser.execute_script(CLIPPED_METRICS), browser.execute_script(TITLE_OVER_LEGEND)

    problems: dict[str, tuple[list[str], list[str]]] = {}
    browser.get(studio_server)
    wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, '[data-testid="stSidebar"]'), "Rows"))
    for width in WIDTHS:
        browser.set_window_size(width, HEIGHT)
        step("Data")
        body_has("weather.csv")
        body_has("Numeric columns")
        problems[f"data_weather_{width}"] = check(f"data_weather_{width}")
        step("Features")
        body_has("Values per forecast")
        problems[f"features_{width}"] = check(f"features_{width}")
        step("Model")
        body_has("Multiply-adds per forecast")
        # The Model page draws no chart until a check runs: its metrics are what is checked here.
        browser.save_screenshot(str(artifacts / f"layout_model_{width}.png"))
        problems[f"model_{width}"] = (browser.execute_script(CLIPPED_METRICS), browser.execute_script(TITLE_OVER_LEGEND))

    # A weekly series whose frequency has a detail ("weekly (Saturdays)"), at the width the loop ended on.
    step("Data")
    body_has("Numeric columns")
    box = wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, 'input[aria-label*="Bundled sample"]')))
    box.click()
    box.send_keys("co2", Keys.ENTER)  # the box filters its options as it is typed into
    body_has("co2.csv")
    body_has("Saturdays")
    problems["data_co2_1920"] = check("data_co2_1920")

    bad = {page: p for page, p in problems.items() if p[0] or p[1]}
    assert not bad, f"cut-off metrics / titles over legends: {bad}"
