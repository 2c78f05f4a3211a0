"""core.training: checks before training, determinism, stop keeps the best weights, NaN, both backends, the job."""
from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest

from core import training, training_engines
from core.dataset import Dataset
from core.errors import StudioError
from core.models import ModelSpec
from core.runs import load_run
from core.training import TrainConfig, TrainingJob, train
from core.windows import SplitSpec, WindowSpec, make_windows


def small_dataset(n: int = 600, seed: int = 0) -> Dataset:
    """Hourly temperature-like data with a daily cycle and a second, related column."""
    idx = pd.date_range("2024-01-01", periods=n, freq="h", name="time")
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    temp = 12 + 6 * np.sin(2 * np.pi * t / 24) + np.cumsum(rng.normal(0, 0.05, n)) + rng.normal(0, 0.2, n)
    hum = 60 - 2 * temp + rng.normal(0, 1, n)
    frame = pd.DataFrame({"temp": temp, "hum": hum}, index=idx)
    return Dataset("synthetic", frame, freq="h", time_col="time", fingerprint="f" * 64)


def small_windows(n: int = 600, window: int = 24, horizon: int = 2):
    return make_windows(small_dataset(n), WindowSpec(targets=("temp",), features=("temp", "hum"), window=window,
                                                     horizon=horizon), SplitSpec(train=0.7, val=0.15))


def tiny_spec(windows, backend: str = "keras", **options) -> ModelSpec:
    return ModelSpec.for_windows(windows.spec, **{"kind": "lstm", "units": 8, "backend": backend, **options})


@pytest.fixture(scope="module")
def windows():
    return small_windows()


# ------------------------------------------------------------------------------ fast: refusals

def test_config_validation_names_the_problem():
    TrainConfig().validate()
    for bad, word in [(dict(epochs=0), "Epochs"), (dict(batch_size=0), "Batch size"),
                      (dict(learning_rate=0.0), "learning rate"), (dict(learning_rate=float("nan")), "learning rate"),
                      (dict(patience=-1), "Patience"), (dict(seed=-3), "seed")]:
        with pytest.raises(StudioError, match=word):
            TrainConfig(**bad).validate()


def test_fewer_windows_than_one_batch_is_refused(windows, tmp_path):
    config = TrainConfig(batch_size=windows.count("train") + 1)
    with pytest.raises(StudioError) as err:
        train(windows, tiny_spec(windows), config, tmp_path / "run")
    assert f"{windows.count('train')} window(s), fewer than one batch of {config.batch_size}" in str(err.value)
    assert "smaller batch size" in str(err.value)
    assert not (tmp_path / "run").exists()


def test_memory_estimate_refuses_with_numbers(windows, tmp_path, monkeypatch):
    parts = training.memory_estimate(windows, tiny_spec(windows), TrainConfig())
    assert parts["series"] == 3 * len(windows.inputs) * 3 * 4  # 2 inputs + 1 target, float32, 3 copies
    monkeypatch.setattr(training, "available_memory_bytes", lambda: 1000)
    with pytest.raises(StudioError, match=r"need about .* MB of memory .* of the 0\.0 MB available") as err:
        train(windows, tiny_spec(windows), TrainConfig(), tmp_path / "run")
    assert "shorter window" in str(err.value)


def test_model_for_other_windows_is_refused(windows, tmp_path):
    other = small_windows(window=12)
    with pytest.raises(StudioError, match="Model page"):
        train(windows, tiny_spec(other), TrainConfig(epochs=1), tmp_path / "run")


# ------------------------------------------------------------------------------ slow: real training

def _val_mse(run, windows) -> float:
    pred = run.predict(windows.X("val"))
    return float(np.mean((pred - windows.y("val")) ** 2))


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["keras", "torch"])
def test_same_seed_same_metrics_and_best_weights_kept(windows, tmp_path, backend):
    config = TrainConfig(epochs=2, batch_size=32, seed=7, patience=0)
    spec = tiny_spec(windows, backend, dropout=0.1)
    epochs_seen = []
    a = train(windows, spec, config, tmp_path / "a", on_epoch=epochs_seen.append)
    b = train(windows, spec, config, tmp_path / "b")
    c = train(windows, spec, TrainConfig(epochs=1, batch_size=32, seed=8, patience=0), tmp_path / "c")
    assert [h["epoch"] for h in epochs_seen] == [1, 2]
    for x, y in zip(a.history, b.history):
        assert x["loss"] == pytest.approx(y["loss"], rel=1e-5)
        assert x["val_loss"] == pytest.approx(y["val_loss"], rel=1e-5)
    assert a.metrics["model"]["mae"] == pytest.approx(b.metrics["model"]["mae"], rel=1e-5)
    assert a.history[0]["loss"] != pytest.approx(c.history[0]["loss"], rel=1e-6)
    # The kept weights are the best epoch's: their validation error is the lowest one recorded.
    best = min(h["val_loss"] for h in a.history)
    assert a.info["best_epoch"] == 1 + [h["val_loss"] for h in a.history].index(best)
    assert _val_mse(a, windows) == pytest.approx(best, rel=1e-3)
    # The saved run reads back and predicts the same through the run's own backend.
    loaded = load_run(tmp_path / "a")
    X = windows.X("test")[:10]
    np.testing.assert_allclose(loaded.predict(X), a.predict(X), atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["keras", "torch"])
def test_stop_keeps_best_weights_and_a_usable_run(windows, tmp_path, backend):
    history: list[dict] = []
    run = train(windows, tiny_spec(windows, backend), TrainConfig(epochs=50, patience=0), tmp_path / "run",
                on_epoch=history.append, should_stop=lambda: len(history) >= 2)
    assert run.status == "stopped"
    assert 2 <= run.info["epochs_run"] <= 3 < 50
    assert _val_mse(run, windows) == pytest.approx(min(h["val_loss"] for h in run.history), rel=1e-3)
    assert load_run(tmp_path / "run").status == "stopped"


@pytest.mark.slow
def test_patience_stops_early(windows, tmp_path):
    # A learning rate this large makes the validation loss bounce, so patience 1 ends training early.
    run = train(windows, tiny_spec(windows, "torch"), TrainConfig(epochs=8, patience=1, learning_rate=0.3, seed=0),
                tmp_path / "run")
    assert run.status == "done" and run.info["early_stopped"]
    assert run.info["epochs_run"] < 8 and run.info["epochs_run"] - run.info["best_epoch"] == 1
    assert run.history[-1]["val_loss"] >= min(h["val_loss"] for h in run.history)


def _poisoned_windows():
    """Windows whose training inputs hold an infinity: the loss becomes NaN/inf on the first batch that sees it."""
    w = small_windows()
    w.inputs[w.starts("train")[3] + 5, 1] = np.inf
    return w


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["keras", "torch"])
def test_nan_loss_stops_with_an_explanation(tmp_path, backend):
    w = _poisoned_windows()
    with pytest.raises(StudioError) as err:
        train(w, tiny_spec(w, backend), TrainConfig(epochs=3), tmp_path / "run")
    text = str(err.value)
    assert "NaN or infinite" in text and "Lower the learning rate" in text and "scaling" in text
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_training_job_runs_polls_and_refuses_a_second(windows, tmp_path):
    config = TrainConfig(epochs=3, patience=0)
    job = TrainingJob(windows, tiny_spec(windows, "torch"), config, tmp_path / "run", owner="test-session")
    assert job.snapshot()["status"] == "queued"
    job.start()
    second = TrainingJob(windows, tiny_spec(windows, "torch"), config, tmp_path / "other", owner="test-session")
    with pytest.raises(StudioError, match="already running"):
        second.start()
    fractions = set()
    deadline = time.time() + 60
    while not job.wait(0.01) and time.time() < deadline:
        fractions.add(round(job.snapshot()["batch_fraction"], 2))
    snap = job.snapshot()
    assert snap["status"] == "done", snap
    assert [h["epoch"] for h in snap["history"]] == [1, 2, 3]
    assert snap["epoch"] == 3 and snap["eta_s"] == 0.0 and snap["seconds_per_epoch"] > 0
    assert snap["run_dir"] == str(tmp_path / "run")
    assert any(0 < f < 1 for f in fractions), fractions  # progress inside an epoch was visible
    assert job.result is not None and job.result.metrics["model"]["mae"] > 0
    # Once the first has finished, the session may start another.
    second.start()
    assert second.wait(60) and second.status == "done"


@pytest.mark.slow
def test_job_stop_and_failure_are_reported(tmp_path):
    w = small_windows()
    job = TrainingJob(w, tiny_spec(w, "keras"), TrainConfig(epochs=200, patience=0), tmp_path / "run", owner="s2").start()
    while job.snapshot()["epoch"] < 1 and not job.wait(0.05):
        pass
    job.stop()
    assert job.wait(60)
    snap = job.snapshot()
    assert snap["status"] == "stopped" and snap["error"] is None
    assert job.result.status == "stopped" and (tmp_path / "run" / "run.json").exists()

    bad = _poisoned_windows()
    failing = TrainingJob(bad, tiny_spec(bad, "torch"), TrainConfig(epochs=2), tmp_path / "bad", owner="s2").start()
    assert failing.wait(60)
    snap = failing.snapshot()
    assert snap["status"] == "failed" and "NaN or infinite" in snap["error"] and failing.result is None
    assert not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_framework_error_mid_training_becomes_a_studio_error(windows, tmp_path):
    calls = []

    def explode(record):  # raised from inside the framework's loop, as a TF/torch failure would be
        calls.append(record)
        raise RuntimeError("CUDA error: device-side assert triggered")

    with pytest.raises(StudioError, match="Training failed inside PyTorch: RuntimeError: CUDA error"):
        train(windows, tiny_spec(windows, "torch"), TrainConfig(epochs=2), tmp_path / "run", on_epoch=explode)
    assert calls and not (tmp_path / "run").exists()
    # The process and the lock are fine afterwards: another training runs.
    assert train(windows, tiny_spec(windows, "torch"), TrainConfig(epochs=1), tmp_path / "ok").status == "done"


@pytest.mark.slow
def test_torch_run_maps_onto_its_keras_twin(windows, tmp_path):
    run = train(windows, tiny_spec(windows, "torch", kind="gru"), TrainConfig(epochs=1), tmp_path / "run")
    X = windows.X("test")[:16]
    keras_pred = np.asarray(run.keras_model().predict(np.ascontiguousarray(X), verbose=0))
    np.testing.assert_allclose(keras_pred, run.predict(X), atol=1e-5)
    assert math.isfinite(run.metrics["model"]["rmse"])


# ------------------------------------------------------------------------------ speed paths (issue 24)

def test_cpu_flags_are_read_from_cpuinfo_text():
    text = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx512f avx512_bf16\nbogomips\t: 1\n"
    assert {"avx512_bf16", "avx512f"} <= training_engines.cpu_flags(text)
    assert training_engines.cpu_flags("processor : 0\n") == frozenset()


def test_bf16_only_where_native_and_for_wide_lstm_or_gru(windows, monkeypatch):
    monkeypatch.delenv("FS_BF16", raising=False)
    wide = tiny_spec(windows, "torch", units=128)
    monkeypatch.setattr(training_engines, "native_bf16", lambda: True)
    assert training_engines.use_bf16(wide) and training_engines.use_bf16(wide.with_options(kind="gru"))
    # measured slower in bfloat16: narrow layers, SimpleRNN; never on a GPU (its own path) or a dense model
    assert not training_engines.use_bf16(tiny_spec(windows, "torch", units=32))
    assert not training_engines.use_bf16(wide.with_options(kind="rnn"))
    assert not training_engines.use_bf16(wide.with_options(kind="dense"))
    assert not training_engines.use_bf16(wide, "cuda")
    monkeypatch.setenv("FS_BF16", "0")
    assert not training_engines.use_bf16(wide)
    monkeypatch.delenv("FS_BF16")
    monkeypatch.setitem(training_engines.DEFAULTS["train"], "bf16", "off")
    assert not training_engines.use_bf16(wide)
    monkeypatch.setitem(training_engines.DEFAULTS["train"], "bf16", "auto")
    monkeypatch.setattr(training_engines, "native_bf16", lambda: False)  # emulated bfloat16 is slower: float32
    assert not training_engines.use_bf16(wide)


def test_keras_engine_choice_and_its_fallbacks(windows, monkeypatch):
    monkeypatch.delenv("FS_KERAS_ENGINE", raising=False)
    monkeypatch.setattr(training_engines, "native_bf16", lambda: True)
    lstm = tiny_spec(windows, "keras", units=32)
    assert training_engines.keras_engine(lstm) == "torch"
    assert training_engines.keras_engine(lstm.with_options(kind="rnn")) == "torch"
    assert training_engines.keras_engine(lstm.with_options(kind="gru")) == "keras"  # torch's GRU is slower
    assert training_engines.keras_engine(lstm.with_options(kind="gru", units=128)) == "keras"  # even in bfloat16
    assert training_engines.keras_engine(lstm.with_options(kind="dense")) == "keras"
    monkeypatch.setenv("FS_KERAS_ENGINE", "keras")
    assert training_engines.keras_engine(lstm) == "keras"
    monkeypatch.delenv("FS_KERAS_ENGINE")
    monkeypatch.setattr(training_engines, "torch_importable", lambda: False)  # an install without torch
    assert training_engines.keras_engine(lstm) == "keras"


@pytest.mark.slow
def test_keras_model_trained_by_its_torch_twin_is_a_keras_run(windows, tmp_path, monkeypatch):
    monkeypatch.delenv("FS_KERAS_ENGINE", raising=False)
    spec = tiny_spec(windows, "keras", residual=True)
    config = TrainConfig(epochs=2, seed=3, patience=0)
    run = train(windows, spec, config, tmp_path / "run")
    assert run.info["engine"] == "torch" and run.info["device"] == "cpu"
    # The model the run keeps is Keras (what export converts), carrying the trained weights: its own
    # validation error is the best epoch's loss the torch loop measured.
    assert hasattr(run._backend_model(), "get_weights")
    assert _val_mse(run, windows) == pytest.approx(min(h["val_loss"] for h in run.history), rel=1e-3)
    loaded = load_run(tmp_path / "run")
    assert loaded.info["engine"] == "torch"
    np.testing.assert_allclose(loaded.predict(windows.X("test")[:8]), run.predict(windows.X("test")[:8]), atol=1e-6)
    # It starts from Keras's initialisers, not torch's: the first epoch differs from a torch-backend run's.
    twin = train(windows, spec.with_options(backend="torch"), config, tmp_path / "twin")
    assert run.history[0]["loss"] != pytest.approx(twin.history[0]["loss"], rel=1e-4)


@pytest.mark.slow
def test_keras_without_torch_falls_back_to_its_own_loop(windows, tmp_path, monkeypatch):
    monkeypatch.setattr(training_engines, "torch_importable", lambda: False)
    config = TrainConfig(epochs=2, seed=5, patience=0)
    a = train(windows, tiny_spec(windows, "keras"), config, tmp_path / "a")
    b = train(windows, tiny_spec(windows, "keras"), config, tmp_path / "b")
    assert a.info["engine"] == "keras" and a.info["precision"] == "float32"
    assert [h["loss"] for h in a.history] == pytest.approx([h["loss"] for h in b.history], rel=1e-5)
    assert _val_mse(a, windows) == pytest.approx(min(h["val_loss"] for h in a.history), rel=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_bf16_training_is_seeded_keeps_float32_weights_and_holds_the_loss(windows, tmp_path, monkeypatch, backend):
    monkeypatch.delenv("FS_BF16", raising=False)
    monkeypatch.delenv("FS_KERAS_ENGINE", raising=False)
    # Forced on, so the path is tested on any CPU (without native bfloat16 it is only slower).
    monkeypatch.setattr(training_engines, "native_bf16", lambda: True)
    spec = tiny_spec(windows, backend, units=64)
    config = TrainConfig(epochs=3, seed=2, patience=0)
    a = train(windows, spec, config, tmp_path / "a")
    b = train(windows, spec, config, tmp_path / "b")
    assert a.info["precision"].startswith("bfloat16") and a.info["engine"] == "torch"
    assert [h["val_loss"] for h in a.history] == pytest.approx([h["val_loss"] for h in b.history], rel=1e-5)
    assert all(w.dtype == np.float32 for w in a.weights)
    model = a._backend_model()
    assert not getattr(model, "bf16_recurrent", False)  # predictions after training are float32
    # The validation loss the loop measured (float32) is the kept model's own.
    assert _val_mse(a, windows) == pytest.approx(min(h["val_loss"] for h in a.history), rel=1e-3)
    monkeypatch.setenv("FS_BF16", "0")
    f32 = train(windows, spec, config, tmp_path / "f32")
    assert f32.info["precision"] == "float32"
    # bfloat16 in the recurrent layers must not cost accuracy: within 5% of float32's best validation loss.
    best = lambda r: min(h["val_loss"] for h in r.history)  # noqa: E731
    assert best(a) <= 1.05 * best(f32), (best(a), best(f32))


def test_threads_are_chosen_by_measurement_and_shared_between_trainings(monkeypatch):
    import torch

    before = torch.get_num_threads()
    clock = [0.0]
    monkeypatch.setattr(training_engines.time, "perf_counter", lambda: clock[0])

    def epoch(threads, cost, steps=20):
        """Run the planner through one epoch; a step costs cost[n] fake seconds with n threads."""
        used = []
        for step in range(steps):
            t0 = threads.plan(step, steps)
            n = torch.get_num_threads()
            used.append(n)
            clock[0] += cost[n]
            threads.timed(t0)
        return used

    with training_engines.Threads("cpu") as t:
        t.cores, t.enabled = 2, True
        used = epoch(t, {1: 1.0, 2: 0.5})  # all cores clearly faster: kept
        assert used[1:5] == [2] * 4 and used[5:9] == [1] * 4 and set(used[9:]) == {2}
        used = epoch(t, {1: 1.0, 2: 3.0})  # all cores slower (a busy machine): one thread
        assert set(used[9:]) == {1}
        epoch(t, {1: 1.0, 2: 0.9})  # only slightly faster: one thread, the safer choice under load
        assert t.history == [2, 1, 1]
        with training_engines.Threads("cpu") as other:  # a second training in this process: a core each
            other.cores, other.enabled = 2, True
            assert set(epoch(t, {1: 1.0, 2: 0.1})) == {1}
    assert torch.get_num_threads() == before  # given back when the last training ends
    assert training_engines.Threads("cuda").plan(3, 20) is None
