"""Write the public series of the quality benchmark (bench/bench_quality.py) to sample_data/quality/.

One real series per sampling frequency, read from data that ships inside three registry packages
(no network): pmdarima (Taylor's half-hourly electricity demand, England and Wales, summer 2000),
vega_datasets (NOAA daily weather, Seattle 2012-2015) and statsmodels (Mauna Loa CO2 weekly, Nino 1+2
sea surface temperature monthly, US macro data quarterly; all public domain). vega_datasets' hourly
Seattle file is left out on purpose: it holds smoothed climate normals (every day nearly the same
shape), which any seasonal naive forecast wins and which tells nothing about real readings.

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


# file name -> (maker, date format, float format)
SERIES = {
    "electricity_half_hourly.csv": (taylor_half_hourly, "%Y-%m-%d %H:%M", "%.0f"),
    "seattle_weather_daily.csv": (seattle_daily, "%Y-%m-%d", "%.1f"),
    "co2_weekly.csv": (co2_weekly, "%Y-%m-%d", "%.1f"),
    "nino12_monthly.csv": (nino_monthly, "%Y-%m-%d", "%.2f"),
    "us_macro_quarterly.csv": (macro_quarterly, "%Y-%m-%d", "%.3f"),
}


def main() -> list[Path]:
    OUT.mkdir(exist_ok=True)
    return [_write(name, make(), date_fmt, float_fmt) for name, (make, date_fmt, float_fmt) in SERIES.items()]


if __name__ == "__main__":
    for p in main():
        print(p)
