"""The "change_linear" target form on the host (issue 34): the graphs add the fitted linear reference back as
constants, training fits it on the training windows and saves it in the spec, and the saved run predicts the same."""
from __future__ import annotations

import numpy as np
import pytest

from core import linear_reference as LR
from core.errors import StudioError
from core.models import ModelSpec, build_keras, build_tf_keras, build_torch, canonical_weights, load_canonical
from core.runs import load_run
from core.training import LINEAR_FIT_MAX_VALUES, TrainConfig, fit_linear_reference, train
from tests.test_training import small_windows


def _fitted_spec(relative: bool = False, backend: str = "keras", kind: str = "lstm") -> ModelSpec:
    rng = np.random.default_rng(0)
    ref = LR.LinearReference(rng.normal(0, .3, (2, 3, 6)).astype(np.float32), rng.normal(0, 1, (2, 3)).astype(np.float32))
    w, b = ref.to_lists()
    return ModelSpec(kind=kind, units=8, window=6, n_inputs=3, horizon=3, n_targets=2, target_input_index=(2, 0),
                     target_form="change_linear", linear_weights=w, linear_bias=b, relative=relative, backend=backend)


@pytest.mark.parametrize("relative", [False, True])
@pytest.mark.parametrize("kind", ["lstm", "dense"])
def test_every_builder_starts_at_the_linear_reference_held_as_constants(relative, kind):
    import torch

    spec = _fitted_spec(relative, kind=kind)
    X = np.random.default_rng(1).normal(0, 1, (5, 6, 3)).astype(np.float32)
    want = LR.reference_values(spec.linear_reference, X, spec.target_input_index)
    plain = spec.with_options(target_form="change_last", linear_weights=(), linear_bias=())
    km, tk, tm = build_keras(spec), build_tf_keras(spec, batch_size=None), build_torch(spec)
    for got in (np.asarray(km(X)), np.asarray(tk(X)), tm(torch.from_numpy(X)).detach().numpy()):
        np.testing.assert_allclose(got, want, atol=2e-6)
    # The reference is no weight: the weight lists, the torch state and the mapping are the plain network's.
    assert [w.shape for w in km.get_weights()] == [w.shape for w in build_keras(plain).get_weights()]
    assert len(tk.get_weights()) == len(km.get_weights())
    assert set(tm.state_dict()) == set(build_torch(plain.with_options(backend="torch")).state_dict())
    load_canonical(tm, canonical_weights(km))  # the torch<->keras mapping still fits


def test_an_unfitted_reference_is_refused_with_words():
    spec = _fitted_spec().with_options(linear_weights=(), linear_bias=())
    for build in (build_keras, build_torch):
        with pytest.raises(StudioError, match="no fitted linear reference"):
            build(spec)


# keras LSTM trains on its torch twin, keras GRU in TensorFlow's loop, torch in its own: all three start at the reference
@pytest.mark.parametrize("backend,kind", [("keras", "lstm"), ("keras", "gru"), ("torch", "lstm")])
def test_training_fits_the_reference_and_a_reloaded_run_predicts_the_same(backend, kind, tmp_path):
    win = small_windows(n=400, window=12, horizon=2)
    spec = ModelSpec.for_windows(win.spec, kind=kind, units=8, backend=backend, target_form="change_linear",
                                 season_period=24)
    assert spec.linear_reference is None
    fitted, info = fit_linear_reference(win, spec)
    ref = fitted.linear_reference
    assert ref is not None and info["bases"][0] in ("last", "season") and info["penalties"][0] in LR.PENALTIES
    assert info["train_windows"] == win.count("train") and info["val_windows"] == win.count("val")
    # Untrained (one epoch at learning rate ~0, kept only if it beats the start): the model is the reference.
    run0 = train(win, spec, TrainConfig(epochs=1, batch_size=32, learning_rate=1e-12), tmp_path / "r0",
                 references=False)
    X = win.X("test")
    want = LR.reference_values(ref, X, spec.target_input_index)
    got = run0.predict(X)
    np.testing.assert_allclose(win.scaler.inverse(got, win.spec.targets), win.scaler.inverse(want, win.spec.targets),
                               rtol=1e-5, atol=1e-4)
    assert run0.model_spec.linear_weights == fitted.linear_weights
    assert run0.info["linear_reference"] == info  # the fit's base and penalty, said in run.info
    assert run0.train_config.naive_margin == 0.0 and "naive_start" in run0.info
    if run0.info["linear_equivalent"]:
        assert run0.metrics["verdict"].startswith("The model is its linear forecast itself")
        assert not run0.info["naive_equivalent"]
    # A real training: it trains, saves the reference in run.json, and the reloaded run predicts the same.
    run = train(win, spec, TrainConfig(epochs=3, batch_size=32), tmp_path / "run", references=False)
    again = load_run(tmp_path / "run")
    assert again.model_spec.linear_weights == run.model_spec.linear_weights != ()
    np.testing.assert_allclose(again.predict(X), run.predict(X), atol=1e-6)


def test_the_fit_reads_at_most_the_newest_windows_it_can_hold():
    win = small_windows(n=400, window=12, horizon=2)
    spec = ModelSpec.for_windows(win.spec, units=8, target_form="change_linear")
    import core.training as T

    old = T.LINEAR_FIT_MAX_VALUES
    try:
        T.LINEAR_FIT_MAX_VALUES = 12 * 50
        _, info = fit_linear_reference(win, spec)
        assert info["train_windows"] == 50
        T.LINEAR_FIT_MAX_VALUES = 12 * 3
        with pytest.raises(StudioError, match="too long to fit the linear reference"):
            fit_linear_reference(win, spec)
    finally:
        T.LINEAR_FIT_MAX_VALUES = old
    assert LINEAR_FIT_MAX_VALUES == old
