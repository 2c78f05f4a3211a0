"""Canonical weights: the Keras layout every backend's weights move through (PyTorch mapped per SPEC)."""
from __future__ import annotations

from typing import Any

import numpy as np

from core.errors import StudioError

from core.models.spec import ModelSpec

# ---------------------------------------------------------------- canonical weights

def _is_torch(model: Any) -> bool:
    return not hasattr(model, "get_weights") and hasattr(model, "state_dict")


def _gru_torch_to_keras(a: np.ndarray, u: int) -> np.ndarray:
    r, z, n = a[:u], a[u:2 * u], a[2 * u:]
    return np.concatenate([z, r, n], axis=0)


def _gru_keras_to_torch(a: np.ndarray, u: int) -> np.ndarray:
    z, r, n = a[:u], a[u:2 * u], a[2 * u:]
    return np.concatenate([r, z, n], axis=0)


def canonical_weights(model: Any) -> list[np.ndarray]:
    """Weights in the Keras ``get_weights()`` layout, float32, from a Keras 3, tf_keras or torch model."""
    if not _is_torch(model):
        return [np.asarray(w, dtype=np.float32) for w in model.get_weights()]
    spec: ModelSpec = model.spec
    u = spec.units
    out: list[np.ndarray] = []
    for layer in model.hidden:
        p = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in layer.named_parameters()}
        if spec.kind == "dense":
            out += [p["weight"].T, p["bias"]]
        elif spec.kind == "gru":
            out += [_gru_torch_to_keras(p["weight_ih_l0"], u).T, _gru_torch_to_keras(p["weight_hh_l0"], u).T,
                    np.stack([_gru_torch_to_keras(p["bias_ih_l0"], u), _gru_torch_to_keras(p["bias_hh_l0"], u)])]
        else:  # LSTM (same gate order i,f,g,o) and SimpleRNN: the two torch biases sum to Keras's one
            out += [p["weight_ih_l0"].T, p["weight_hh_l0"].T, p["bias_ih_l0"] + p["bias_hh_l0"]]
    for lin in ([model.head] if model.head is not None else []) + [model.out]:
        out += [lin.weight.detach().cpu().numpy().astype(np.float32).T, lin.bias.detach().cpu().numpy().astype(np.float32)]
    return [np.ascontiguousarray(w) for w in out]


def _check_shapes(expected: list[tuple], weights: list[np.ndarray]) -> None:
    got = [tuple(np.shape(w)) for w in weights]
    if got != [tuple(s) for s in expected]:
        raise StudioError(f"The saved weights do not fit this model (expected shapes {expected}, got {got}).",
                          "Train the model again, or load the run together with the model spec it was saved with.")


def load_canonical(model: Any, weights: list[np.ndarray]) -> Any:
    """Fill a Keras 3, tf_keras or torch model from canonical weights; returns the model.

    Torch direction is the inverse mapping; LSTM/RNN put the whole bias in ``b_ih`` and zero ``b_hh``.
    """
    weights = [np.asarray(w, dtype=np.float32) for w in weights]
    if not _is_torch(model):
        _check_shapes([tuple(w.shape) for w in model.get_weights()], weights)
        model.set_weights(weights)
        return model
    import torch

    spec: ModelSpec = model.spec
    _check_shapes([tuple(w.shape) for w in canonical_weights(model)], weights)
    u = spec.units
    it = iter(weights)
    with torch.no_grad():
        def put(param, arr):
            param.copy_(torch.from_numpy(np.ascontiguousarray(arr)).to(param.dtype))

        for layer in model.hidden:
            if spec.kind == "dense":
                put(layer.weight, next(it).T)
                put(layer.bias, next(it))
                continue
            kernel, recurrent, bias = next(it), next(it), next(it)
            if spec.kind == "gru":
                put(layer.weight_ih_l0, _gru_keras_to_torch(kernel.T, u))
                put(layer.weight_hh_l0, _gru_keras_to_torch(recurrent.T, u))
                put(layer.bias_ih_l0, _gru_keras_to_torch(bias[0], u))
                put(layer.bias_hh_l0, _gru_keras_to_torch(bias[1], u))
            else:
                put(layer.weight_ih_l0, kernel.T)
                put(layer.weight_hh_l0, recurrent.T)
                put(layer.bias_ih_l0, bias)
                layer.bias_hh_l0.zero_()
        for lin in ([model.head] if model.head is not None else []) + [model.out]:
            put(lin.weight, next(it).T)
            put(lin.bias, next(it))
    return model
