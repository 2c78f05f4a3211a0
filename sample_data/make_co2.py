"""Save the weekly Mauna Loa CO2 record that ships with statsmodels as sample_data/co2.csv.

Public domain (Keeling and Whorf, Scripps; via statsmodels.datasets.co2). Weeks with no reading are
left out of the CSV, so the file has real gaps in time that the Data step finds and fills.

The studio itself does not depend on statsmodels; run this once with statsmodels importable, e.g.
    pip install --target /tmp/sm statsmodels && PYTHONPATH=/tmp/sm python sample_data/make_co2.py
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from core.files import atomic_write_text  # noqa: E402


def main() -> Path:
    from statsmodels.datasets import co2

    frame = co2.load_pandas().data.dropna()
    frame.index.name = "date"
    text = frame.to_csv(date_format="%Y-%m-%d", float_format="%.1f", lineterminator="\n")
    return atomic_write_text(HERE / "co2.csv", text)


if __name__ == "__main__":
    print(main())
