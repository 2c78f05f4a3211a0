"""The firmware bundle's download name carries the dataset and the export time (issue 18 item 9): a second
download no longer saves as "forecast_studio_lstm_int8 (1).zip"."""
from __future__ import annotations

import shutil
from pathlib import Path

from streamlit.testing.v1 import AppTest

from core.dataset import Dataset
from studio.bundle_ui import download_name

ROOT = Path(__file__).resolve().parent.parent


def test_download_name():
    assert download_name("forecast_studio_lstm_int8.zip", "Wetter Berlin (2024).csv", "run-20260101-120000-153012") == \
        "forecast_studio_Wetter_Berlin_2024_lstm_153012_int8.zip"
    assert download_name("forecast_studio_gru_float32.zip", None) == "forecast_studio_gru_float32.zip"
    assert download_name("forecast_studio_gru_float32.zip", "../../x.csv", "odd") == "forecast_studio_x_gru_float32.zip"


def _page(export_dir: str, root: str) -> None:
    import sys

    sys.path.insert(0, root)
    from studio.bundle_ui import bundle_section

    bundle_section(export_dir)


def test_the_export_page_offers_the_named_file(tmp_path):
    export = tmp_path / "run-20260101-120000-153012"
    shutil.copytree(ROOT / "tests" / "transcripts" / "slice_export", export)
    at = AppTest.from_function(_page, args=(str(export), str(ROOT)), default_timeout=120)
    import pandas as pd

    at.session_state["fs.dataset"] = Dataset("co2.csv", pd.DataFrame({"co2": [1.0, 2.0]}))
    at.run()
    assert not at.exception, at.exception
    labels = [b.proto.label for b in at.get("download_button")]
    assert any("forecast_studio_co2_" in lab and lab.split()[1].endswith("_153012_float32.zip") for lab in labels), labels
