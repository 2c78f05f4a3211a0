"""Issue N's last check, end to end on real parts: a model trained by core.training.train, with its
calibrated bands, exported by core.export (TFLite converter, TFLM check), served by the emulator (the
tflite-micro runtime) on a pty and read back with pyserial: the board's bounds equal the host's (its
forecast -/+ the run's half-widths) to the dtype's tolerance, for float32 and for the int8 change-only
graph whose last value the firmware adds back before the bounds are made (issue L)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from core.windows import SplitSpec, WindowSpec
from tests.forecast_helpers import synthetic

pytestmark = pytest.mark.slow
SPEC = WindowSpec(targets=("temp",), features=("temp", "hum"), window=12, horizon=3)


@pytest.fixture(scope="module")
def banded_export(tmp_path_factory):
    from core.export import export_run
    from core.models import ModelSpec
    from core.training import TrainConfig, train
    from core.windows import make_windows

    base = tmp_path_factory.mktemp("bands_board")
    ds = synthetic(n=500)
    windows = make_windows(ds, SPEC, SplitSpec(train=0.6, val=0.2), "minmax")
    model_spec = ModelSpec.for_windows(SPEC, units=6, residual=True)
    run = train(windows, model_spec, TrainConfig(epochs=2, batch_size=32, patience=0, seed=0), base / "run",
                dataset=ds)
    export_run(run, base / "export")
    return run, base / "export"


@pytest.mark.parametrize("dtype", ["float32", "int8"])
def test_the_boards_bounds_equal_the_hosts(banded_export, dtype):
    from core.board import Board, compare, load_reference
    from core.board.emulator import Emulator

    run, export = banded_export
    report = json.loads((export / "report.json").read_text())
    if dtype == "int8":
        assert report["int8"].get("residual_outside"), "the int8 graph should forecast the change only"
    ref = load_reference(export)
    hw = {k: np.asarray(v["half_width"]) for k, v in run.intervals["bands"].items()}
    assert set(ref.bands) == set(hw) == {"80", "95"}
    for key in hw:
        np.testing.assert_allclose(ref.bands[key], hw[key], rtol=1e-6)
    with Emulator(export, dtype=dtype) as emu, Board(emu.path) as board:
        board.ready()
        results = board.self_test()
    assert results and all([b[0] for b in r.bands] == ["80", "95"] for r in results)
    cmp = compare(results, ref, dtype)
    assert cmp.agree, cmp.summary()
    tol = ref.tolerance(dtype)
    for row in cmp.rows:
        assert set(row.bands) == {"80", "95"}
        for key, b in row.bands.items():
            (lo, hi), (h_lo, h_hi) = b["board"], b["host"]
            # the bounds surround the board's own (level) forecast by exactly the run's half-width, in float32
            half = hw[key][row.step, 0]
            assert hi - row.board == pytest.approx(half, rel=1e-5, abs=1e-5)
            assert row.board - lo == pytest.approx(half, rel=1e-5, abs=1e-5)
            assert abs(lo - h_lo) <= tol[0] and abs(hi - h_hi) <= tol[0]
