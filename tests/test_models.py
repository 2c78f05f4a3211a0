"""Model specs, the three builders and the torch <-> Keras weight mapping, on real TF, tf_keras and torch."""
from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from core.errors import StudioError
from core.models import (DEFAULT_PRESET, KINDS, PRESETS, ModelSpec, build_keras, build_tf_keras, build_torch,
                         canonical_weights, count_macs, count_params, load_canonical, model_size_bytes)


def _spec(**kw) -> ModelSpec:
    base = dict(kind="lstm", units=6, layers=1, window=5, n_inputs=3, horizon=4, n_targets=2,
                target_input_index=(2, 0))
    base.update(kw)
    return ModelSpec(**base).validate()


def _x(spec: ModelSpec, n: int = 4, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, spec.window, spec.n_inputs)).astype(np.float32)


def _random_torch(spec: ModelSpec, seed: int = 0):
    import torch
    model = build_torch(spec)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)  # far from any init: tests the mapping, not luck
    return model.eval()


def _torch_out(model, x):
    import torch
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def _keras_out(model, x):
    return np.asarray(model(x, training=False))


# ---------------------------------------------------------------- fast: spec, validation, counts

def test_import_is_light():
    code = "import sys, core.models; print(json.dumps([m for m in ('tensorflow','torch','keras','tf_keras') if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", "import json;" + code], capture_output=True, text=True, check=True,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parent.parent))
    assert json.loads(out.stdout) == []


@pytest.mark.parametrize("kw, words", [
    ({"dropout": 1.0}, "dropout"), ({"dropout": -0.1}, "dropout"), ({"units": 0}, "unit"),
    ({"layers": 0}, "layers"), ({"layers": 4}, "layers"), ({"kind": "transformer"}, "kind"),
    ({"backend": "jax"}, "backend"), ({"head_units": -1}, "head"), ({"horizon": 0}, "horizon"),
    ({"units": 100000}, "units"), ({"target_input_index": (0,)}, "targets"),
    ({"target_input_index": (0, 7)}, "outside"),
])
def test_validation_names_problem_and_fix(kw, words):
    with pytest.raises(StudioError) as e:
        _spec(**kw)
    assert words in str(e.value).lower()
    assert e.value.fix  # every refusal says what to do instead


def test_residual_needs_targets_among_inputs():
    with pytest.raises(StudioError) as e:
        _spec(residual=True, target_input_index=(2, None))
    msg = str(e.value)
    assert "input" in msg and ("turn" in msg.lower() or "add" in msg.lower())
    assert _spec(residual=True).residual


def test_dict_round_trip_and_unknown_fields():
    spec = _spec(kind="gru", residual=True, head_units=3, dropout=0.2)
    d = json.loads(json.dumps(spec.to_dict()))
    assert ModelSpec.from_dict(d) == spec
    with pytest.raises(StudioError):
        ModelSpec.from_dict({**d, "bogus": 1})
    with pytest.raises(StudioError):
        ModelSpec.from_dict({**d, "units": 0})


def test_for_windows_takes_shapes_and_auto_residual():
    ws = SimpleNamespace(window=48, horizon=3, n_inputs=5, n_targets=1, target_input_index=(4,))
    spec = ModelSpec.for_windows(ws)
    assert (spec.window, spec.horizon, spec.n_inputs, spec.n_targets) == (48, 3, 5, 1)
    assert spec.residual and spec.kind == "lstm" and spec.units == 32
    assert not ModelSpec.for_windows(ws, residual=False).residual
    ws2 = SimpleNamespace(window=8, horizon=1, n_inputs=2, n_targets=1, target_input_index=None)
    spec2 = ModelSpec.for_windows(ws2, kind="gru", units=8)
    assert not spec2.residual and spec2.target_input_index == (None,)
    with pytest.raises(StudioError):
        ModelSpec.for_windows(ws2, residual=True)


def test_presets_are_valid_and_include_seed():
    assert DEFAULT_PRESET == "Laptop & board (LSTM 32)" and list(PRESETS)[0] == DEFAULT_PRESET
    assert PRESETS["LSTM 128 (seed project)"]["units"] == 128
    for opts in PRESETS.values():
        _spec(**opts)


def test_macs_match_spec_reference():
    seed = ModelSpec(kind="lstm", units=128, window=168, n_inputs=7, horizon=1, n_targets=1)
    # SPEC: about 11.6 M multiply-adds behind the 2024 ms board measurement.
    assert abs(count_macs(seed) - 11.6e6) / 11.6e6 < 0.01
    assert count_macs(_spec(kind="gru")) == 5 * 3 * 6 * (3 + 6) + 6 * 8
    assert count_macs(_spec(kind="rnn", layers=2)) == 5 * 6 * (3 + 6) + 5 * 6 * 12 + 6 * 8


def test_model_size_bytes():
    spec = _spec()
    assert model_size_bytes(spec, "float32") == 4 * count_params(spec)
    int8 = model_size_bytes(spec, "int8")
    assert count_params(spec) < int8 < 4 * count_params(spec)
    with pytest.raises(StudioError):
        model_size_bytes(spec, "float16")


# ---------------------------------------------------------------- builders (real TF / torch)

@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("layers", [1, 2, 3])
def test_shapes_and_param_counts_every_kind_backend_layers(kind, layers):
    spec = _spec(kind=kind, layers=layers, head_units=4 if layers == 2 else 0, dropout=0.1 if layers == 3 else 0.0)
    x = _x(spec)
    km = build_keras(spec)
    tm = build_torch(spec).eval()
    assert _keras_out(km, x).shape == (4, spec.horizon, spec.n_targets)
    assert _torch_out(tm, x).shape == (4, spec.horizon, spec.n_targets)
    assert km.count_params() == count_params(spec)
    torch_extra = {"lstm": 4 * spec.units, "rnn": spec.units}.get(kind, 0) * layers  # torch's second bias
    assert sum(p.numel() for p in tm.parameters()) == count_params(spec) + torch_extra
    assert [w.shape for w in canonical_weights(tm)] == [w.shape for w in km.get_weights()]


@pytest.mark.slow
@pytest.mark.parametrize("kw", [
    dict(kind="lstm"), dict(kind="gru"), dict(kind="rnn"), dict(kind="dense"),
    dict(kind="lstm", layers=3), dict(kind="gru", layers=2, head_units=5),
    dict(kind="rnn", head_units=7), dict(kind="lstm", residual=True),
    dict(kind="gru", residual=True, layers=2, head_units=3), dict(kind="dense", layers=2, residual=True),
    dict(kind="lstm", residual=True, target_input_index=(1, 2)),
])
def test_torch_to_keras_mapping_on_random_weights(kw):
    spec = _spec(**kw)
    x = _x(spec)
    tm = _random_torch(spec)
    km = load_canonical(build_keras(spec), canonical_weights(tm))
    y_t, y_k = _torch_out(tm, x), _keras_out(km, x)
    assert np.abs(y_t - y_k).max() < 1e-5
    # and back: Keras weights into a fresh torch model give the same forecast again
    tm2 = load_canonical(build_torch(spec), canonical_weights(km)).eval()
    assert np.abs(_torch_out(tm2, x) - y_k).max() < 1e-5
    if spec.kind in ("lstm", "rnn"):
        assert float(np.abs(tm2.hidden[0].bias_hh_l0.detach().numpy()).max()) == 0.0


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_tf_keras_twin_matches_keras3(kind):
    spec = _spec(kind=kind, layers=2, head_units=4, residual=True)
    km = build_keras(spec)
    weights = canonical_weights(km)
    k2 = load_canonical(build_tf_keras(spec, batch_size=1), weights)  # export's default unroll choice
    assert [w.shape for w in k2.get_weights()] == [w.shape for w in weights]
    x = _x(spec, n=3)
    y3 = _keras_out(km, x)
    y2 = np.concatenate([np.asarray(k2(x[i:i + 1], training=False)) for i in range(3)])
    assert np.abs(y3 - y2).max() < 1e-5
    if kind in ("gru", "rnn"):
        rec = [l for l in k2.layers if l.name.startswith(kind)]
        assert all(l.unroll for l in rec)
    if kind == "lstm":
        assert not any(l.unroll for l in k2.layers if l.name.startswith("lstm"))


@pytest.mark.slow
def test_residual_adds_last_target_inputs():
    spec = _spec(kind="lstm", residual=True, target_input_index=(2, 0))
    plain = ModelSpec(**{**spec.to_dict(), "residual": False})
    x = _x(spec)
    km_res, km_plain = build_keras(spec), build_keras(plain)
    load_canonical(km_plain, canonical_weights(km_res))  # same weights: residual adds no weights
    want = _keras_out(km_plain, x) + x[:, -1, [2, 0]][:, None, :]
    assert np.abs(_keras_out(km_res, x) - want).max() < 1e-5
    tm_res = load_canonical(build_torch(spec), canonical_weights(km_res)).eval()
    assert np.abs(_torch_out(tm_res, x) - want).max() < 1e-5


@pytest.mark.slow
def test_wrong_weights_are_refused_with_a_fix():
    km = build_keras(_spec())
    other = canonical_weights(build_keras(_spec(units=7)))
    with pytest.raises(StudioError) as e:
        load_canonical(km, other)
    assert "weights" in str(e.value)
    with pytest.raises(StudioError):
        load_canonical(build_torch(_spec()), other)


# ---------------------------------------------------------------- target forms (issue 21)

def test_target_form_and_old_residual_flag():
    assert _spec().target_form == "level" and not _spec().residual
    old = _spec(residual=True)
    assert old.target_form == "change_last" and old.residual
    # an old saved spec (residual flag, no target_form) still loads, and round-trips in the new form
    d = old.to_dict()
    legacy = {k: v for k, v in d.items() if k not in ("target_form", "season_period")}
    assert ModelSpec.from_dict(legacy) == old
    assert ModelSpec.from_dict(json.loads(json.dumps(d))) == old
    assert ModelSpec.from_dict({**legacy, "residual": False}).target_form == "level"
    seasonal = _spec(target_form="change_season", season_period=3)
    assert seasonal.residual and "season" in seasonal.label
    assert ModelSpec.from_dict(seasonal.to_dict()) == seasonal
    # replace()/with_options carry the form; the old flag given explicitly still switches it
    assert seasonal.with_options(units=7).target_form == "change_season"
    assert seasonal.with_options(residual=False).target_form == "level"
    assert seasonal.with_options(residual=True).target_form == "change_season"
    assert _spec().with_options(residual=True).target_form == "change_last"
    assert old.with_options(target_form="level").target_form == "level"


@pytest.mark.parametrize("kw, words", [
    (dict(target_form="change_season", season_period=6), "window"),   # window 5 < season 6
    (dict(target_form="change_season", season_period=1), "season"),
    (dict(target_form="change_season", season_period=0), "season"),
    (dict(target_form="change_season", season_period=3, target_input_index=(2, None)), "input"),
    (dict(target_form="seasonal"), "target form"),
    # change_both also reads the row one season before the last: window 5 needs a season of at most 4
    (dict(target_form="change_both", season_period=5), "window"),
    (dict(target_form="change_both", season_period=1), "season"),
    (dict(target_form="change_both", season_period=3, target_input_index=(2, None)), "input"),
])
def test_seasonal_form_refusals_name_the_fix(kw, words):
    with pytest.raises(StudioError) as e:
        _spec(**kw)
    assert words in str(e.value).lower()
    assert e.value.fix


def test_season_steps_reach_one_season_back_and_repeat_beyond_it():
    # window 5, horizon 4, season 3: steps t+1..t+4 refer to t-2, t-1, t, t-2 (window rows 2, 3, 4, 2)
    spec = _spec(target_form="change_season", season_period=3)
    assert spec.season_steps == (2, 3, 4, 2)
    assert _spec(target_form="change_season", season_period=5, horizon=2).season_steps == (0, 1)


def _season_want(spec, plain_out, x):
    """What the add-back must give, written out from the forms' definitions (not from spec.drift_rows)."""
    cols = list(spec.target_input_index)
    rows = np.asarray(spec.season_steps)
    want = plain_out + x[:, rows, :][:, :, cols]
    if spec.target_form == "change_both":  # + y[t] - y[t-P]: the last row minus the row one season before it
        w, p = spec.window, spec.season_period
        want = want + (x[:, w - 1, :][:, cols] - x[:, w - 1 - p, :][:, cols])[:, None, :]
    return want


@pytest.mark.slow
@pytest.mark.parametrize("kw", [
    dict(kind="lstm", season_period=3),                                   # horizon 4 > season: rows repeat (gather)
    dict(kind="gru", season_period=4, target_input_index=(0, 1)),         # contiguous rows and columns: slices
    dict(kind="dense", season_period=5, horizon=2, target_input_index=(1, 2)),
    dict(kind="lstm", season_period=3, target_form="change_both"),
    dict(kind="rnn", season_period=4, target_input_index=(0, 1), target_form="change_both"),
    dict(kind="dense", season_period=2, horizon=2, target_input_index=(1, 2), target_form="change_both"),
])
def test_seasonal_add_back_is_exact_on_all_three_builders(kw):
    spec = _spec(**{"target_form": "change_season", **kw})
    plain = spec.with_options(target_form="level")
    x = _x(spec)
    km = build_keras(spec)
    weights = canonical_weights(km)
    base = _keras_out(load_canonical(build_keras(plain), weights), x)
    want = _season_want(spec, base, x)
    assert np.abs(want - base).max() > 0.1  # the reference is not zero: the check can fail
    assert np.abs(_keras_out(km, x) - want).max() < 1e-5
    tm = load_canonical(build_torch(spec), weights).eval()
    assert np.abs(_torch_out(tm, x) - want).max() < 1e-5
    k2 = load_canonical(build_tf_keras(spec, batch_size=1), weights)
    y2 = np.concatenate([np.asarray(k2(x[i:i + 1], training=False)) for i in range(len(x))])
    assert np.abs(y2 - want).max() < 1e-5


@pytest.mark.slow
def test_a_run_saved_before_target_forms_still_opens_and_predicts_the_same(tmp_path):
    from core.runs import load_run, seal
    from tests.export_helpers import make_run

    run = make_run(tmp_path / "run", kind="gru", residual=True, horizon=2)
    manifest_path = tmp_path / "run" / "run.json"
    manifest = json.loads(manifest_path.read_text())
    # what an older studio wrote: the residual flag, no target_form or season_period
    manifest["model_spec"] = {k: v for k, v in manifest["model_spec"].items() if k not in ("target_form", "season_period")}
    assert manifest["model_spec"]["residual"] is True
    manifest.pop("checksum", None)
    manifest_path.write_text(json.dumps(seal(manifest)))  # sealed as that studio would have sealed it
    old = load_run(tmp_path / "run")
    assert old.model_spec.target_form == "change_last" and old.model_spec == run.model_spec
    X = run.samples["X_test"]
    assert np.abs(old.predict(X) - run.predict(X)).max() < 1e-6


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["keras", "torch"])
@pytest.mark.parametrize("form", ["change_season", "change_both"])
def test_an_untrained_seasonal_model_is_exactly_its_naive_reference(backend, form):
    spec = _spec(target_form=form, season_period=3, backend=backend)
    x = _x(spec)
    model = build_torch(spec).eval() if backend == "torch" else build_keras(spec)
    y = _torch_out(model, x) if backend == "torch" else _keras_out(model, x)
    assert np.abs(y - _season_want(spec, 0.0, x)).max() == 0.0
    assert np.abs(x[:, list(spec.season_steps)][:, :, [2, 0]]).max() > 0.1
