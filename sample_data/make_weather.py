"""Make sample_data/weather.csv: two years of hourly weather-like readings from a seeded generator.

Modelled on the seed project's Szeged weather history: local timestamps written with their UTC offset
(`2006-04-01 00:00:00.000 +0200`, so daylight-saving changes give mixed offsets), seven numeric
features and a text "summary" column (which the Data step shows and excludes). The physics is loose
but the structure is real: daily and yearly cycles, weather fronts every few days that drop the
pressure, turn the wind and bring rain, and noise. A few pressure readings are missing, as from a
sensor dropout, so the Data step has gaps to fill.

    python sample_data/make_weather.py          # rewrites sample_data/weather.csv (same bytes every time)
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from core.files import atomic_write_text  # noqa: E402

SEED = 20060401
START = "2022-01-01 00:00"
YEARS = 2
TZ = "Europe/Budapest"
LATITUDE = 46.25  # Szeged: sets how much the sun's height (UV, daytime warming) changes over a year


def _fronts(rng: np.random.Generator, hours: int) -> tuple[np.ndarray, np.ndarray]:
    """Sum of front passages: a smooth pressure trough and a rain/wind 'activity' envelope per front."""
    t = np.arange(hours, dtype=float)
    trough = np.zeros(hours)
    activity = np.zeros(hours)
    at = rng.exponential(90.0)
    while at < hours:
        depth = rng.uniform(4.0, 22.0)  # hPa
        width = rng.uniform(10.0, 36.0)  # hours
        window = slice(max(int(at - 5 * width), 0), min(int(at + 5 * width), hours))
        bump = np.exp(-0.5 * ((t[window] - at) / width) ** 2)
        trough[window] += depth * bump
        activity[window] += (depth / 22.0) * bump
        at += rng.exponential(110.0) + 24.0  # one every four to five days on average
    return trough, np.clip(activity, 0.0, 1.5)


def _ar1(rng: np.random.Generator, n: int, phi: float, sigma: float) -> np.ndarray:
    """Red noise (weather persists from hour to hour); computed with a filter, not a Python loop."""
    from numpy.lib.stride_tricks import sliding_window_view

    eps = rng.normal(0.0, sigma, n + 400)
    kernel = phi ** np.arange(400)[::-1]
    return sliding_window_view(eps, 400)[1:] @ kernel


def make(seed: int = SEED) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    utc = pd.date_range(pd.Timestamp(START, tz=TZ).tz_convert("UTC"), periods=24 * 365 * YEARS, freq="h")
    local = utc.tz_convert(TZ)
    n = len(utc)
    hour = local.hour.to_numpy() + local.minute.to_numpy() / 60.0
    doy = local.day_of_year.to_numpy().astype(float)
    year_phase = 2 * np.pi * (doy - 200.0) / 365.25  # warmest around mid-July

    # Sun height: declination over the year, hour angle over the day (solar noon ~ 12:30 local standard time).
    decl = np.radians(23.44) * np.sin(2 * np.pi * (doy - 81.0) / 365.25)
    solar_hour = (utc.hour.to_numpy() + 1.35) % 24
    hour_angle = np.radians(15.0 * (solar_hour - 12.0))
    lat = np.radians(LATITUDE)
    sun = np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.cos(hour_angle)
    sun = np.clip(sun, 0.0, None)

    trough, activity = _fronts(rng, n)
    cloud = np.clip(0.35 + 0.8 * activity + _ar1(rng, n, 0.97, 0.05), 0.0, 1.0)

    temperature = (11.5 + 11.0 * np.cos(year_phase)  # yearly cycle
                   + (4.0 + 3.0 * np.cos(year_phase)) * np.cos(2 * np.pi * (hour - 15.0) / 24.0) * (1 - 0.6 * cloud)
                   - 4.0 * activity  # cold air behind a front
                   + _ar1(rng, n, 0.995, 0.12) + rng.normal(0, 0.3, n))
    pressure = 1016.0 - 3.0 * np.cos(year_phase) - trough + _ar1(rng, n, 0.99, 0.15) + rng.normal(0, 0.2, n)
    humidity = np.clip(64.0 - 1.6 * (temperature - 11.5) + 18.0 * activity + 10.0 * cloud
                       + _ar1(rng, n, 0.95, 1.0) + rng.normal(0, 2.0, n), 8.0, 100.0)
    rain_chance = np.clip(0.02 + 0.55 * activity * cloud, 0.0, 0.9)
    raining = rng.random(n) < rain_chance
    precipitation = np.where(raining, rng.gamma(1.2, 0.6 + 2.5 * activity), 0.0)
    wind_speed = np.clip(9.0 + 4.0 * sun + 16.0 * activity + _ar1(rng, n, 0.97, 0.6) + rng.normal(0, 1.5, n),
                         0.0, None)
    # Westerlies, backing south ahead of a front and veering north-west behind it.
    wind_direction = (250.0 + 60.0 * np.gradient(trough) * 4.0 + np.degrees(_ar1(rng, n, 0.98, 0.04))
                      + rng.normal(0, 12.0, n)) % 360.0
    uv_index = np.clip(9.5 * sun ** 1.3 * (1.0 - 0.7 * cloud) + rng.normal(0, 0.1, n) * (sun > 0), 0.0, None)

    summary = np.full(n, "Partly Cloudy", dtype=object)
    summary[cloud < 0.3] = "Clear"
    summary[(cloud >= 0.6) & (cloud < 0.85)] = "Mostly Cloudy"
    summary[cloud >= 0.85] = "Overcast"
    summary[(humidity > 96) & (wind_speed < 6)] = "Foggy"
    summary[wind_speed > 32] = "Windy"
    summary[precipitation > 0.05] = "Light Rain"
    summary[precipitation > 2.5] = "Rain"

    frame = pd.DataFrame({
        "time": local.strftime("%Y-%m-%d %H:%M:%S.000 %z"),
        "summary": summary,
        "temperature": temperature.round(2),
        "humidity": humidity.round(1),
        "pressure": pressure.round(2),
        "precipitation": precipitation.round(2),
        "uv_index": uv_index.round(2),
        "wind_speed": wind_speed.round(2),
        "wind_direction": wind_direction.round(0) % 360.0,
    })
    dropouts = rng.choice(np.arange(100, n - 100), size=12, replace=False)
    frame.loc[dropouts, "pressure"] = np.nan
    return frame


def main() -> Path:
    text = make().to_csv(index=False, lineterminator="\n")
    return atomic_write_text(HERE / "weather.csv", text)


if __name__ == "__main__":
    print(main())
