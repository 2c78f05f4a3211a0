"""Write the public series of the quality benchmark (bench/bench_quality.py) to sample_data/quality/.

One real series per sampling frequency, read from data that ships inside three registry packages
(no network): pmdarima (Taylor's half-hourly electricity demand, England and Wales, summer 2000),
vega_datasets (NOAA daily weather, Seattle 2012-2015) and statsmodels (Mauna Loa CO2 weekly, Nino 1+2
sea surface temperature monthly, US macro data quarterly; all public domain). vega_datasets' hourly
Seattle file is left out on purpose: it holds smoothed climate normals (every day nearly the same
shape), which any seasonal naive forecast wins and which tells nothing about real readings.

Two more series are synthetic (issue 21: no strongly seasonal hourly or sub-hourly public series
ships in a registry package here), made by ``seasonal_series`` below with a fixed seed, so anyone can
regenerate them byte for byte with NumPy and pandas alone: a daily cycle of a sharp, non-sinusoidal
shape (a steep morning rise, a slow evening fall, a short midday dip) whose amplitude and base level
wander slowly from day to day, plus small autocorrelated noise. "The same time yesterday" forecasts it
well and "the last value" badly, the case where predicting the change from the last value loses.
    python sample_data/make_quality.py --synthetic     # only the two synthetic files

The studio does not depend on these packages; run this once with them importable, e.g.
    pip install --target /tmp/qdata vega_datasets statsmodels pmdarima
    PYTHONPATH=/tmp/qdata python sample_data/make_quality.py
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from core.files import atomic_write_text  # noqa: E402

OUT = HERE / "quality"


def _write(name: str, frame, date_format: str, float_format: str = "%.3f") -> Path:
    frame.index.name = "date"
    text = frame.to_csv(date_format=date_format, float_format=float_format, lineterminator="\n")
    return atomic_write_text(OUT / name, text)


def taylor_half_hourly():
    import pandas as pd
    from pmdarima.datasets import load_taylor

    demand = load_taylor(as_series=False)  # MW, from Monday 5 June 2000 00:00, every 30 minutes (Taylor 2003)
    index = pd.date_range("2000-06-05 00:00", periods=len(demand), freq="30min")
    return pd.DataFrame({"demand_mw": demand}, index=index)


def seattle_daily():
    import pandas as pd
    from vega_datasets import local_data

    f = local_data("seattle-weather")  # NOAA daily, Seattle 2012-2015; the text "weather" column dropped
    return f.set_index(pd.to_datetime(f["date"]))[["temp_max", "temp_min", "precipitation", "wind"]]


def co2_weekly():
    from statsmodels.datasets import co2

    return co2.load_pandas().data.dropna()  # weeks without a reading stay gaps, as in the source


def nino_monthly():
    import pandas as pd
    from statsmodels.datasets import elnino

    wide = elnino.load_pandas().data  # one row per year, one column per month
    long = wide.melt(id_vars="YEAR", var_name="month", value_name="nino12")
    months = {m: i for i, m in enumerate(("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP",
                                          "OCT", "NOV", "DEC"), start=1)}
    long["date"] = pd.to_datetime({"year": long["YEAR"].astype(int), "month": long["month"].map(months), "day": 1})
    return long.set_index("date").sort_index()[["nino12"]]


def macro_quarterly():
    import pandas as pd
    from statsmodels.datasets import macrodata

    f = macrodata.load_pandas().data
    start = pd.to_datetime({"year": f["year"].astype(int), "month": (f["quarter"].astype(int) - 1) * 3 + 1, "day": 1})
    return f.set_index(start)[["realgdp", "realcons", "realinv", "unemp"]]


def seasonal_series(steps_per_day: int, days: int, seed: int, start: str = "2021-03-01", level: float = 12.0,
                    amplitude: float = 6.0, noise: float = 0.08):
    """A strongly seasonal series: a sharp daily shape, slowly wandering amplitude and level, AR(1) noise.

    ``steps_per_day`` 24 is hourly, 144 every 10 minutes. Units are degrees C of a made-up room sensor.
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    n = steps_per_day * days
    t = np.arange(n)
    hour = (t % steps_per_day) * 24.0 / steps_per_day
    day = t // steps_per_day
    # The shape: cool at night, a steep rise 6-9 h, a dip at 13 h, a slow fall from 17 h (peak 1.0).
    rise = 1.0 / (1.0 + np.exp(-(hour - 7.5) * 2.5))
    fall = 1.0 / (1.0 + np.exp(-(hour - 19.0) * 0.9))
    dip = 0.25 * np.exp(-0.5 * ((hour - 13.0) / 0.7) ** 2)
    shape = rise * (1.0 - fall) - dip
    # Day-to-day weather: amplitude and level random walks, smoothed to change within the day too.
    amp_daily = amplitude * np.exp(np.cumsum(rng.normal(0, 0.04, days + 1)))
    lev_daily = level + np.cumsum(rng.normal(0, 0.15, days + 1))
    frac = (t % steps_per_day) / steps_per_day
    amp = amp_daily[day] * (1 - frac) + amp_daily[day + 1] * frac
    lev = lev_daily[day] * (1 - frac) + lev_daily[day + 1] * frac
    ar = np.zeros(n)
    e = rng.normal(0, noise, n)
    phi = 0.9 ** (24.0 / steps_per_day)  # the same noise memory in hours whatever the step
    for i in range(1, n):
        ar[i] = phi * ar[i - 1] + e[i]
    index = pd.date_range(start, periods=n, freq=pd.Timedelta(hours=24.0 / steps_per_day))
    return pd.DataFrame({"temp": lev + amp * shape + ar}, index=index)


def synthetic_hourly():
    return seasonal_series(24, 240, seed=21)


def synthetic_10min():
    return seasonal_series(144, 40, seed=2110, noise=0.03)


SYNTHETIC = {
    "synthetic_seasonal_hourly.csv": (synthetic_hourly, "%Y-%m-%d %H:%M", "%.3f"),
    "synthetic_seasonal_10min.csv": (synthetic_10min, "%Y-%m-%d %H:%M", "%.3f"),
}

# file name -> (maker, date format, float format)
SERIES = {
    "electricity_half_hourly.csv": (taylor_half_hourly, "%Y-%m-%d %H:%M", "%.0f"),
    "seattle_weather_daily.csv": (seattle_daily, "%Y-%m-%d", "%.1f"),
    "co2_weekly.csv": (co2_weekly, "%Y-%m-%d", "%.1f"),
    "nino12_monthly.csv": (nino_monthly, "%Y-%m-%d", "%.2f"),
    "us_macro_quarterly.csv": (macro_quarterly, "%Y-%m-%d", "%.3f"),
}


def main(synthetic_only: bool = False) -> list[Path]:
    OUT.mkdir(exist_ok=True)
    todo = SYNTHETIC if synthetic_only else {**SERIES, **SYNTHETIC}
    return [_write(name, make(), date_fmt, float_fmt) for name, (make, date_fmt, float_fmt) in todo.items()]


if __name__ == "__main__":
    for p in main(synthetic_only="--synthetic" in sys.argv[1:]):
        print(p)
