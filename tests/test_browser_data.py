"""Real Chromium against `streamlit run`: the studio opens on the weather sample, a messy CSV uploaded
through the file input gives a clean series and a chart, and an Excel file renamed .csv gives a message."""
from __future__ import annotations

import time

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def _wait(driver, predicate, timeout: float = 60.0, what: str = "condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            result = predicate()
            if result:
                return result
        except Exception:  # elements come and go while Streamlit re-renders
            pass
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}; page text: {driver.find_element('tag name', 'body').text[:1500]}")


def _text(driver) -> str:
    return driver.find_element("tag name", "body").text


def _plotted_lines(driver) -> int:
    return len(driver.find_elements("css selector", ".js-plotly-plot .scatterlayer .trace path.js-line"))


def _upload(driver, path) -> None:
    if not driver.find_elements("css selector", "input[type=file]"):
        label = _wait(driver, lambda: [e for e in driver.find_elements("css selector", "[data-testid=stRadio] label")
                                       if e.text.strip() == "Upload"], what="the Upload choice")[0]
        label.click()
    field = _wait(driver, lambda: driver.find_elements("css selector", "input[type=file]"), what="the file input")[0]
    field.send_keys(str(path))


def test_upload_messy_csv_and_see_chart(studio_server, browser, artifacts, tmp_path):
    browser.get(studio_server)
    _wait(browser, lambda: "weather.csv" in _text(browser) and _plotted_lines(browser) > 0, 90,
          "the weather sample and its chart")

    messy = tmp_path / "meter_readings.csv"
    # a title line, ';' with decimal commas, day-first dates, a 'n/a', a text column, Windows-1252
    rows = ["Station export", "Datum;Verbrauch kWh;Temperatur;Bemerkung"]
    for day in range(1, 29):
        for hour in range(0, 24, 6):
            value = "n/a" if (day, hour) == (5, 6) else f"{day * 1.5 + hour / 10:.2f}".replace(".", ",")
            temp = f"{-2 + hour / 3:.1f}".replace(".", ",")
            rows.append(f"{day:02d}.02.2024 {hour:02d}:00;{value};{temp};" + ("Ablesung" if hour == 0 else ""))
    messy.write_text("\n".join(rows) + "\n", encoding="cp1252")
    _upload(browser, messy)
    # the report line (not just the uploader's file name) and a chart of the new columns
    _wait(browser, lambda: "meter_readings.csv: " in _text(browser) and "Verbrauch kWh" in _text(browser)
          and _plotted_lines(browser) > 0, 90, "the uploaded file's report and chart")
    text = _text(browser)
    assert "Bemerkung" in text and "Verbrauch kWh" in text
    assert "delimiter semicolon" in text and "decimal mark ','" in text and "time column Datum" in text
    chart = browser.find_elements("css selector", ".js-plotly-plot")[0]
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", chart)
    time.sleep(0.5)
    browser.save_screenshot(str(artifacts / "data_upload.png"))

    bad = tmp_path / "workbook.csv"
    bad.write_bytes(b"PK\x03\x04" + bytes(2000))
    _upload(browser, bad)
    _wait(browser, lambda: "not a CSV text file" in _text(browser), 60, "the message for an Excel file")
    assert "Save As" in _text(browser) and "Traceback" not in _text(browser)
    browser.save_screenshot(str(artifacts / "data_upload_error.png"))


def _chips(driver) -> list[str]:
    """The "Columns to draw" box's chosen columns, as the browser shows them."""
    box = [e for e in driver.find_elements("css selector", "[data-testid=stMultiSelect]") if "Columns to draw" in e.text]
    return [line.strip() for line in box[0].text.splitlines()[1:] if line.strip()] if box else []


def test_upload_year_quarter_with_thousands_then_a_new_file_draws_its_own_columns(studio_server, browser, tmp_path):
    """Issue 31: Year + Quarter with quoted thousands reads every row; the next upload's chart box shows the new
    file's columns, not the previous file's (item 7, which AppTest could not see: the browser sent them back)."""
    browser.get(studio_server)
    _wait(browser, lambda: "weather.csv" in _text(browser) and _plotted_lines(browser) > 0, 90, "the weather sample")
    gas = tmp_path / "gas_quarterly.csv"
    gas.write_text("Year,Quarter,Gas,Sales\n" + "".join(
        f'{y},{q},{y % 7 + q}.5,"{(y - 1900) * 97 + q:,}"\n' for y in range(1960, 1990) for q in range(1, 5)))
    _upload(browser, gas)
    _wait(browser, lambda: "gas_quarterly.csv: " in _text(browser) and _plotted_lines(browser) > 0, 90, "gas report")
    text = _text(browser)
    assert "time column Year+Quarter" in text and "thousands separator comma" in text and "Traceback" not in text
    assert "120" in text and "quarterly" in text and "repeated an earlier timestamp" not in text
    _wait(browser, lambda: _chips(browser) == ["Gas", "Sales"], 30, "the chart box with Gas and Sales")
    other = tmp_path / "other.csv"
    other.write_text("time,a,b,c,d\n" + "".join(f"2024-01-{d:02d},{d},{d * 2},{d % 3},{d % 5}\n" for d in range(1, 29)))
    _upload(browser, other)
    _wait(browser, lambda: "other.csv: " in _text(browser), 90, "the second file's report")
    _wait(browser, lambda: _chips(browser) == ["a", "b", "c"], 30, "the chart box with the new file's columns")
