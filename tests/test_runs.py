"""core.runs: the run directory round trip, its metrics and samples, and refusals of damaged or newer runs."""
from __future__ import annotations

import hashlib
import io
import json
import shutil

import numpy as np
import pytest

from core.errors import StudioError
from core.models import build_keras, build_torch, canonical_weights, count_params
from core.runs import FORMAT_VERSION, Run, load_run, seal
from core.training import TrainConfig
from tests.test_training import small_windows, tiny_spec

HISTORY = [{"epoch": 1, "loss": 0.5, "val_loss": 0.4, "seconds": 0.1}]
INFO = {"status": "done", "best_epoch": 1, "epochs_run": 1, "early_stopped": False}


@pytest.fixture(scope="module")
def windows():
    return small_windows()


def _make(windows, backend, path):
    """A run from an untrained model: the saving and loading path without the cost of training."""
    spec = tiny_spec(windows, backend)
    import keras
    import torch

    keras.utils.set_random_seed(0)
    torch.manual_seed(0)
    model = build_torch(spec) if backend == "torch" else build_keras(spec)
    return Run.from_training(windows, spec, TrainConfig(epochs=1), model, HISTORY, INFO, path)


@pytest.fixture(scope="module")
def saved(windows, tmp_path_factory):
    path = tmp_path_factory.mktemp("runs") / "keras-run"
    return _make(windows, "keras", path)


def _rewrite(path, name, data: bytes):
    """Replace a file and fix its checksum, so only the content check can catch it."""
    (path / name).write_bytes(data)
    manifest = json.loads((path / "run.json").read_text())
    manifest["files"][name] = hashlib.sha256(data).hexdigest()
    (path / "run.json").write_text(json.dumps(seal(manifest)))


@pytest.mark.parametrize("backend", ["keras", "torch"])
def test_round_trip(windows, tmp_path, backend):
    run = _make(windows, backend, tmp_path / "run")
    names = {p.name for p in (tmp_path / "run").iterdir()}
    native = "model.weights.h5" if backend == "keras" else "model.torch.npz"
    assert names == {"run.json", "weights.npz", native, "history.json", "metrics.json", "samples.npz", "intervals.json",
                     ".forecast-studio-owner"}  # the marker: the studio made this folder (issue 35)
    back = load_run(tmp_path / "run")
    assert back.model_spec == run.model_spec and back.window_spec == run.window_spec
    assert back.split == run.split and back.train_config == run.train_config
    np.testing.assert_array_equal(back.scaler.center, run.scaler.center)
    assert back.history == HISTORY and back.status == "done"
    assert back.dataset["name"] == "synthetic" and back.dataset["freq"] == "h" and back.dataset["fingerprint"] == "f" * 64
    assert len(back.weights) == len(run.weights)
    for a, b in zip(back.weights, run.weights):
        np.testing.assert_array_equal(a, b)
    assert sum(w.size for w in back.weights) == count_params(run.model_spec)
    for key, value in run.samples.items():
        np.testing.assert_array_equal(back.samples[key], value)
    X = windows.X("test")[:20]
    np.testing.assert_allclose(back.predict(X), run.predict(X), atol=1e-6)
    # Every backend's run becomes the same Keras model for export.
    np.testing.assert_allclose(np.asarray(back.keras_model().predict(np.ascontiguousarray(X), verbose=0)),
                               run.predict(X), atol=1e-5)
    manifest = json.loads((tmp_path / "run" / "run.json").read_text())
    assert manifest["format_version"] == FORMAT_VERSION and manifest["native_weights"] == native
    if backend == "torch":
        with np.load(tmp_path / "run" / native, allow_pickle=False) as z:
            assert set(z.files) == set(build_torch(run.model_spec).state_dict())


def test_metrics_json_has_specs_shape(saved):
    metrics = json.loads((saved.run_dir / "metrics.json").read_text())
    assert {"mae", "rmse"} <= set(metrics["model"])
    assert {"naive", "last_value"} <= set(metrics["baselines"])
    assert metrics["baselines"]["naive"] == metrics["baselines"]["last_value"]
    assert isinstance(metrics["per_step"], list) and len(metrics["per_step"]) == saved.model_spec.horizon
    assert "verdict" in metrics and "best_baseline" in metrics
    assert metrics["n_windows"] == small_windows().count("test")


def test_samples_cover_calibration_and_replay(saved, windows):
    s = saved.samples
    assert s["X_rep"].shape == (min(256, windows.count("train")), 24, 2) and s["X_rep"].dtype == np.float32
    assert 1 <= len(s["X_test"]) <= 64 and s["X_test"].shape[1:] == (24, 2)
    assert s["y_test"].shape == (len(s["X_test"]), 2, 1)
    np.testing.assert_allclose(s["y_host"], saved.predict(s["X_test"]), atol=1e-6)
    # Times are int64 nanoseconds of each window's origin, first and last test windows included.
    assert s["t_test"].dtype == np.int64
    origins = windows.origin_times("test")
    assert s["t_test"][0] == origins[0].value and s["t_test"][-1] == origins[-1].value
    assert saved.info["time_axis"] == {"axis": "datetime64[ns]", "tz": None}


def test_missing_and_damaged_runs_are_refused(saved, tmp_path):
    with pytest.raises(StudioError, match="No trained run"):
        load_run(tmp_path / "nothing-here")

    def copy(name):
        dst = tmp_path / name
        shutil.copytree(saved.run_dir, dst)
        return dst

    bad = copy("truncated")
    data = (bad / "weights.npz").read_bytes()
    (bad / "weights.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(StudioError, match="weights.npz does not match its checksum"):
        load_run(bad)

    bad = copy("notjson")
    (bad / "run.json").write_text("{ this is not json")
    with pytest.raises(StudioError, match="run.json is not (valid|readable) JSON"):
        load_run(bad)

    bad = copy("gone")
    (bad / "samples.npz").unlink()
    with pytest.raises(StudioError, match="samples.npz is missing"):
        load_run(bad)

    bad = copy("garbage-npz")
    _rewrite(bad, "samples.npz", b"PK\x03\x04 not really a zip")
    with pytest.raises(StudioError, match="samples.npz is not a readable"):
        load_run(bad)

    bad = copy("wrong-size")
    _rewrite(bad, "weights.npz", _npz({"w000": np.zeros((3, 3), np.float32)}))
    with pytest.raises(StudioError, match="but the model has"):
        load_run(bad)


def test_newer_format_is_refused_with_what_to_do(saved, tmp_path):
    dst = tmp_path / "newer"
    shutil.copytree(saved.run_dir, dst)
    manifest = json.loads((dst / "run.json").read_text())
    manifest["format_version"] = FORMAT_VERSION + 1
    (dst / "run.json").write_text(json.dumps(manifest))
    with pytest.raises(StudioError, match="newer Forecast Studio") as err:
        load_run(dst)
    assert "Update Forecast Studio" in str(err.value)


def _npz(arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_pickled_arrays_are_never_loaded(saved, tmp_path):
    dst = tmp_path / "pickled"
    shutil.copytree(saved.run_dir, dst)
    # An object array is stored with pickle inside the .npz; reading it would run code from the file.
    evil = np.empty(1, dtype=object)
    evil[0] = {"payload": "anything"}
    weights = {f"w{i:03d}": w for i, w in enumerate(saved.weights)}
    weights["w000"] = evil
    _rewrite(dst, "weights.npz", _npz(weights))
    with pytest.raises(StudioError, match="weights.npz is not a readable"):
        load_run(dst)


def test_save_is_atomic_and_replaces(saved, tmp_path):
    target = tmp_path / "again"
    saved.save(target)
    first = (target / "run.json").read_bytes()
    saved.save(target)
    assert (target / "run.json").read_bytes() != b"" and load_run(target).model_spec == saved.model_spec
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dirs left behind
    assert set(json.loads(first)["files"]) == set(json.loads((target / "run.json").read_text())["files"])


def test_canonical_weights_are_what_is_saved(saved):
    model = saved.keras_model()
    for a, b in zip(canonical_weights(model), saved.weights):
        np.testing.assert_array_equal(a, b)


def test_intervals_are_saved_checksummed_and_in_metrics(saved, windows, tmp_path):
    rec = saved.intervals
    assert rec["levels"] == [80.0, 95.0] and rec["n_calibration"] == windows.count("val")
    hw = np.asarray(rec["bands"]["80"]["half_width"])
    assert hw.shape == (windows.spec.horizon, len(windows.spec.targets)) and np.all(hw > 0)
    assert np.all(np.asarray(rec["bands"]["95"]["half_width"]) >= hw)
    assert 0 <= rec["bands"]["80"]["coverage"] <= 100 and rec["bands"]["80"]["n_test"] > 0
    manifest = json.loads((saved.run_dir / "run.json").read_text())
    assert "intervals.json" in manifest["files"]
    assert json.loads((saved.run_dir / "metrics.json").read_text())["intervals"]["bands"].keys() == rec["bands"].keys()
    assert load_run(saved.run_dir).intervals == json.loads((saved.run_dir / "intervals.json").read_text())
    # changed behind the checksum's back: refused like any other file
    copy = tmp_path / "changed"
    shutil.copytree(saved.run_dir, copy)
    (copy / "intervals.json").write_text("{}")
    with pytest.raises(StudioError, match="intervals.json does not match its checksum"):
        load_run(copy)


def test_a_run_from_before_intervals_still_opens(saved, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(saved.run_dir, old)
    (old / "intervals.json").unlink()
    manifest = json.loads((old / "run.json").read_text())
    del manifest["files"]["intervals.json"]
    (old / "run.json").write_text(json.dumps(seal(manifest)))
    run = load_run(old)
    assert run.intervals == {}


def test_recalibrate_at_other_levels(saved, windows, tmp_path):
    run = load_run(saved.run_dir)
    run.run_dir = tmp_path / "re"
    shutil.copytree(saved.run_dir, run.run_dir)
    rec = run.recalibrate(windows, [50, 90])
    assert rec["levels"] == [50.0, 90.0] and load_run(run.run_dir).intervals["levels"] == [50.0, 90.0]
    with pytest.raises(StudioError, match="between 1 and 99.9"):
        run.recalibrate(windows, [100])


def test_new_runs_record_the_split_rule_and_old_runs_open_as_written(saved, tmp_path):
    from core.windows import SPLIT_RULE

    assert SPLIT_RULE == 2 and saved.split_rule == 2
    assert json.loads((saved.run_dir / "run.json").read_text())["info"]["split_rule"] == 2
    assert json.loads((saved.run_dir / "metrics.json").read_text())["split_rule"] == 2
    # A run written before issue U: no split_rule anywhere, its metrics scored on the gapped test part
    old = tmp_path / "old"
    shutil.copytree(saved.run_dir, old)
    metrics = json.loads((old / "metrics.json").read_text())
    for key in ("split_rule", "points", "weak"):
        metrics.pop(key, None)
    metrics["n_windows"], metrics["verdict"] = 2, "The model's test MAE for temp is 1.5, 3% better than the best baseline (last value, 1.55)."
    _rewrite(old, "metrics.json", json.dumps(metrics).encode())
    manifest = json.loads((old / "run.json").read_text())
    del manifest["info"]["split_rule"]
    manifest.pop("checksum")  # and, like every run of that time, format 1 without run.json's own checksum
    manifest["format_version"] = 1
    (old / "run.json").write_text(json.dumps(manifest))
    back = load_run(old)
    assert back.split_rule == 1
    assert back.metrics == metrics and back.verdict == metrics["verdict"]  # read as written, not recomputed
    for key, value in saved.samples.items():
        np.testing.assert_array_equal(back.samples[key], value)


def test_samples_follow_the_parts_test_windows_reach_back_calibration_stays_in_training(saved, windows):
    s = saved.samples
    # the first embedded test window forecasts the first test row; its inputs are the rows just before it
    np.testing.assert_array_equal(s["X_test"][0], windows.X("test")[0])
    assert windows.starts("test")[0] + windows.spec.label_start == windows.parts["test"][0]
    # int8 calibration windows are training windows: no row of validation or test in them
    t = windows.parts["train"][1]
    assert windows.starts("train").max() + windows.spec.span <= t
    train_rows = windows.inputs[:t]
    for x in s["X_rep"]:
        assert any(np.array_equal(x, train_rows[i:i + windows.spec.window]) for i in windows.starts("train"))


def test_a_format_2_run_without_its_own_checksum_is_refused_a_format_1_run_opens(saved, tmp_path):
    for version, opens in ((2, False), (1, True)):
        run_dir = tmp_path / f"v{version}"
        shutil.copytree(saved.run_dir, run_dir)
        manifest = json.loads((run_dir / "run.json").read_text())
        manifest.pop("checksum")
        manifest["format_version"] = version
        (run_dir / "run.json").write_text(json.dumps(manifest))
        if opens:
            assert load_run(run_dir).model_spec == saved.model_spec
        else:
            with pytest.raises(StudioError, match="checksum"):
                load_run(run_dir)


def test_recalibrate_that_cannot_save_keeps_the_old_bands(saved, windows, tmp_path):
    run = load_run(saved.run_dir)
    before = json.loads(json.dumps(run.intervals))
    (tmp_path / "a_file").write_text("not a folder")
    run.run_dir = tmp_path / "a_file" / "run"  # its parent is a file: the run folder cannot be written
    with pytest.raises((StudioError, OSError)):
        run.recalibrate(windows, [50, 90])
    assert run.intervals == before and run.metrics["intervals"] == before
