"""Model specs and the builders for Keras 3, Keras 2 (tf_keras, for export) and PyTorch.

One ``ModelSpec`` describes the network; every builder makes the same architecture with the same
weight layout, so weights move between backends through the *canonical* layout: the list Keras's
``model.get_weights()`` returns. Per recurrent layer ``kernel, recurrent_kernel, bias``; for the
dense kind per hidden layer ``kernel, bias``; then the optional head Dense, then the output Dense.

TensorFlow and torch are imported inside the functions that need them, so importing this module
(for specs, presets and counts) stays instant.
"""
from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np

from core.config import DEFAULTS
from core.errors import StudioError

KINDS = ("lstm", "gru", "rnn", "dense")
BACKENDS = ("keras", "torch")
KIND_LABELS = {"lstm": "LSTM", "gru": "GRU", "rnn": "SimpleRNN", "dense": "Dense (no recurrence)"}
# Gate blocks per recurrent cell: they multiply every matrix count below.
GATES = {"lstm": 4, "gru": 3, "rnn": 1}
MAX_LAYERS = 3


@dataclass(frozen=True)
class ModelSpec:
    """The network, independent of backend. Output shape is always (batch, horizon, n_targets).

    ``residual=True``: the network learns the change from the last input value of each target and
    the model adds that value back itself, so every consumer sees levels.
    ``target_input_index[i]`` is the position of target i among the inputs (``None`` if it is not an
    input); residual mode needs every target to be an input.
    """

    kind: str = "lstm"
    units: int = 32
    layers: int = 1
    dropout: float = 0.0
    head_units: int = 0
    backend: str = "keras"
    residual: bool = False
    window: int = 24
    n_inputs: int = 1
    horizon: int = 1
    n_targets: int = 1
    target_input_index: tuple = ()

    def __post_init__(self) -> None:
        # JSON brings lists back; keep the field hashable and comparable.
        object.__setattr__(self, "target_input_index",
                           tuple(None if i is None else int(i) for i in (self.target_input_index or ())))

    @property
    def label(self) -> str:
        name = KIND_LABELS.get(self.kind, self.kind)
        core = f"{self.layers} x {name}({self.units})" if self.layers > 1 else f"{name}({self.units})"
        head = f" + Dense({self.head_units})" if self.head_units else ""
        res = ", change from last value" if self.residual else ""
        return f"{core}{head}{res}, {self.backend}"

    @property
    def output_units(self) -> int:
        return self.horizon * self.n_targets

    def to_dict(self) -> dict:
        d = asdict(self)
        d["target_input_index"] = list(self.target_input_index)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelSpec":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise StudioError(f"The saved model spec has fields this studio does not know: {', '.join(unknown)}.",
                              "Re-create the model on the Model page, or use the studio version that saved it.")
        try:
            spec = cls(**{k: v for k, v in d.items()})
        except (TypeError, ValueError) as e:
            raise StudioError(f"The saved model spec is unreadable ({e}).", "Re-create the model on the Model page.") from e
        return spec.validate()

    @classmethod
    def for_windows(cls, window_spec: Any, **options: Any) -> "ModelSpec":
        """A spec whose shapes come from a ``core.windows.WindowSpec``; ``options`` set the rest.

        ``residual`` defaults to on whenever every target is also an input (issue J: predicting the
        change from the last value is what makes a small model beat "tomorrow = today").
        """
        index = window_spec.target_input_index
        index = tuple(index) if index is not None else tuple(None for _ in range(int(window_spec.n_targets)))
        residual = options.pop("residual", None)
        if residual is None or residual == "auto":
            residual = bool(index) and all(i is not None for i in index)
        base = {k: v for k, v in DEFAULTS["model"].items() if k in {f.name for f in fields(cls)} and k != "residual"}
        base.update(options)
        spec = cls(**base, residual=bool(residual), window=int(window_spec.window),
                   n_inputs=int(window_spec.n_inputs), horizon=int(window_spec.horizon),
                   n_targets=int(window_spec.n_targets), target_input_index=index)
        return spec.validate()

    def with_options(self, **options: Any) -> "ModelSpec":
        return replace(self, **options).validate()

    def validate(self) -> "ModelSpec":
        """Return self, or raise StudioError naming the conflicting option and what to set instead."""
        max_units = int(DEFAULTS["model"]["max_units"])
        if self.kind not in KINDS:
            raise StudioError(f"Unknown model kind '{self.kind}'.", f"Choose one of: {', '.join(KINDS)}.")
        if self.backend not in BACKENDS:
            raise StudioError(f"Unknown backend '{self.backend}'.", f"Choose one of: {', '.join(BACKENDS)}.")
        if not isinstance(self.units, (int, np.integer)) or self.units < 1:
            raise StudioError(f"A layer needs at least 1 unit; got {self.units}.",
                              "Set units to a positive number (32 suits a laptop and the board).")
        if self.units > max_units:
            raise StudioError(f"{self.units} units is more than this studio builds (at most {max_units}).",
                              f"Use {max_units} units or fewer; the board cannot run more anyway.")
        if not isinstance(self.layers, (int, np.integer)) or not 1 <= self.layers <= MAX_LAYERS:
            raise StudioError(f"Layers must be between 1 and {MAX_LAYERS}; got {self.layers}.",
                              "Set layers to 1, 2 or 3.")
        if not (0.0 <= float(self.dropout) < 1.0):
            raise StudioError(f"Dropout must be at least 0 and below 1; got {self.dropout}.",
                              "Use 0 (off) to 0.5; dropout 1.0 would drop every value.")
        if self.head_units < 0:
            raise StudioError(f"Dense head units cannot be negative; got {self.head_units}.",
                              "Use 0 for no head, or a positive number of units.")
        for name in ("window", "n_inputs", "horizon", "n_targets"):
            if getattr(self, name) < 1:
                raise StudioError(f"The model's {name} must be at least 1; got {getattr(self, name)}.",
                                  "Set the window, horizon, targets and inputs on the Features page.")
        idx = self.target_input_index
        if idx and len(idx) != self.n_targets:
            raise StudioError(f"The model has {self.n_targets} targets but {len(idx)} target positions among the inputs.",
                              "Rebuild the model spec from the Features page so the shapes agree.")
        if any(i is not None and not 0 <= i < self.n_inputs for i in idx):
            raise StudioError(f"A target position {idx} points outside the {self.n_inputs} inputs.",
                              "Rebuild the model spec from the Features page so the shapes agree.")
        if self.residual and (not idx or any(i is None for i in idx)):
            raise StudioError("'Change from last value' needs every target to also be an input, and at least one is not.",
                              "Add the target column(s) to the input features, or turn 'change from last value' off.")
        return self


# The default comes first; the seed project's configuration is kept as a named preset (issue C).
DEFAULT_PRESET = "Laptop & board (LSTM 32)"
PRESETS: dict[str, dict] = {
    DEFAULT_PRESET: {"kind": "lstm", "units": 32, "layers": 1, "dropout": 0.0, "head_units": 0},
    "Small GRU (GRU 32)": {"kind": "gru", "units": 32, "layers": 1, "dropout": 0.0, "head_units": 0},
    "Simple RNN (SimpleRNN 32)": {"kind": "rnn", "units": 32, "layers": 1, "dropout": 0.0, "head_units": 0},
    "Tiny for the board (LSTM 16)": {"kind": "lstm", "units": 16, "layers": 1, "dropout": 0.0, "head_units": 0},
    "Deeper (2 x LSTM 64 + head 32)": {"kind": "lstm", "units": 64, "layers": 2, "dropout": 0.1, "head_units": 32},
    "Dense baseline (64)": {"kind": "dense", "units": 64, "layers": 1, "dropout": 0.0, "head_units": 0},
    "LSTM 128 (seed project)": {"kind": "lstm", "units": 128, "layers": 1, "dropout": 0.0, "head_units": 0},
}


# ---------------------------------------------------------------- counts

def _layer_inputs(spec: ModelSpec) -> list[int]:
    """Input width of each hidden layer (recurrent or dense)."""
    first = spec.n_inputs if spec.kind != "dense" else spec.window * spec.n_inputs
    return [first] + [spec.units] * (spec.layers - 1)


def _dense_stack(spec: ModelSpec) -> list[tuple[int, int]]:
    """(in, out) of the head (if any) and the output Dense."""
    out = []
    prev = spec.units
    if spec.head_units:
        out.append((prev, spec.head_units))
        prev = spec.head_units
    out.append((prev, spec.output_units))
    return out


def count_params(spec: ModelSpec) -> int:
    """Trainable parameters as Keras counts them.

    LSTM 4(u(n+u)+u), GRU (reset_after) 3(u(n+u)+2u), SimpleRNN u(n+u)+u, Dense n*m+m. PyTorch's
    LSTM and RNN keep two bias vectors that sum to Keras's one, so torch reports 4u (LSTM) or u
    (RNN) more per layer; the studio's number is Keras's, the one that reaches the board.
    """
    u = spec.units
    total = 0
    for n in _layer_inputs(spec):
        if spec.kind == "lstm":
            total += 4 * (u * (n + u) + u)
        elif spec.kind == "gru":
            total += 3 * (u * (n + u) + 2 * u)
        elif spec.kind == "rnn":
            total += u * (n + u) + u
        else:
            total += n * u + u
    total += sum(i * o + o for i, o in _dense_stack(spec))
    return int(total)


def count_macs(spec: ModelSpec) -> int:
    """Multiply-adds for one forecast (matrix products only; gates' element-wise work is small).

    Per time step and recurrent layer: gates x u x (n + u), gates = 4 (LSTM), 3 (GRU), 1 (SimpleRNN),
    times ``window`` steps. Dense layers: n x m. For LSTM(128) on 168 x 7 this is 11.6 M, the number
    behind SPEC's measured 2024 ms.
    """
    total = 0
    for n in _layer_inputs(spec):
        if spec.kind == "dense":
            total += n * spec.units
        else:
            total += spec.window * GATES[spec.kind] * spec.units * (n + spec.units)
    total += sum(i * o for i, o in _dense_stack(spec))
    return int(total)


def count_biases(spec: ModelSpec) -> int:
    """Bias values among count_params (they stay 32-bit in an int8 model)."""
    u = spec.units
    per = {"lstm": 4 * u, "gru": 6 * u, "rnn": u, "dense": u}[spec.kind]
    return int(per * spec.layers + sum(o for _, o in _dense_stack(spec)))


def model_size_bytes(spec: ModelSpec, dtype: str = "float32") -> int:
    """Bytes of the weights alone (no graph): float32 4 per value; int8 1 per weight, 4 per bias."""
    params = count_params(spec)
    if dtype == "float32":
        return 4 * params
    if dtype == "int8":
        biases = count_biases(spec)
        return (params - biases) + 4 * biases
    raise StudioError(f"Unknown dtype '{dtype}'.", "Use 'float32' or 'int8'.")


# ---------------------------------------------------------------- Keras 3

def _contiguous(idx: tuple) -> bool:
    return all(b == a + 1 for a, b in zip(idx, idx[1:]))


@functools.lru_cache(maxsize=None)
def _keras_layers():
    import keras

    @keras.saving.register_keras_serializable(package="forecast_studio")
    class AddLastTargets(keras.layers.Layer):
        """y + (the last time step's target inputs), broadcast over the horizon; no weights."""

        def __init__(self, indices, **kwargs):
            super().__init__(**kwargs)
            self.indices = tuple(int(i) for i in indices)

        def call(self, inputs):
            y, x = inputs
            idx = self.indices
            last = x[:, -1:, :]
            if _contiguous(idx):
                last = last[:, :, idx[0]:idx[-1] + 1]
            else:
                last = keras.ops.take(last, list(idx), axis=2)
            return y + last

        def compute_output_shape(self, input_shape):
            return input_shape[0]

        def get_config(self):
            return {**super().get_config(), "indices": list(self.indices)}

    return keras, AddLastTargets


def _build_graph(layers_mod, Input, Model, add_layer, spec: ModelSpec, batch_size, unroll) -> Any:
    """The one architecture, written once for both Keras generations (their layer APIs agree here)."""
    L = layers_mod
    x_in = Input(shape=(spec.window, spec.n_inputs), batch_size=batch_size, name="window")
    h = x_in
    if spec.kind == "dense":
        h = L.Flatten(name="flatten")(h)
        for i in range(spec.layers):
            h = L.Dense(spec.units, activation="relu", name=f"dense_{i + 1}")(h)
            if spec.dropout:
                h = L.Dropout(spec.dropout, name=f"dropout_{i + 1}")(h)
    else:
        cell = {"lstm": L.LSTM, "gru": L.GRU, "rnn": L.SimpleRNN}[spec.kind]
        for i in range(spec.layers):
            u = unroll[spec.kind] if isinstance(unroll, dict) else unroll
            # recurrent_dropout stays 0: it changes the graph and breaks the fused export.
            h = cell(spec.units, return_sequences=i < spec.layers - 1, unroll=bool(u), name=f"{spec.kind}_{i + 1}")(h)
            if spec.dropout:
                h = L.Dropout(spec.dropout, name=f"dropout_{i + 1}")(h)
    if spec.head_units:
        h = L.Dense(spec.head_units, activation="relu", name="head")(h)
    h = L.Dense(spec.output_units, name="output")(h)
    y = L.Reshape((spec.horizon, spec.n_targets), name="forecast")(h)
    if spec.residual:
        y = add_layer(spec.target_input_index, name="add_last_value")([y, x_in])
    return Model(x_in, y, name=f"forecast_{spec.kind}")


def build_keras(spec: ModelSpec, batch_size: int | None = None, unroll: bool = False):
    """A Keras 3 functional model: (batch, window, n_inputs) -> (batch, horizon, n_targets)."""
    spec.validate()
    keras, AddLastTargets = _keras_layers()
    return _build_graph(keras.layers, keras.Input, keras.Model, AddLastTargets, spec, batch_size, unroll)


# ---------------------------------------------------------------- Keras 2 (tf_keras), for export

@functools.lru_cache(maxsize=None)
def _tf_keras_layers():
    import tensorflow as tf
    import tf_keras

    class AddLastTargets(tf_keras.layers.Layer):
        """Same as the Keras 3 layer, from ops that convert to builtin TFLite ops
        (STRIDED_SLICE, GATHER only when the targets are not adjacent inputs, ADD with broadcast)."""

        def __init__(self, indices, **kwargs):
            super().__init__(**kwargs)
            self.indices = tuple(int(i) for i in indices)

        def call(self, inputs):
            y, x = inputs
            idx = self.indices
            last = x[:, -1:, :]
            if _contiguous(idx):
                last = last[:, :, idx[0]:idx[-1] + 1]
            else:
                last = tf.gather(last, list(idx), axis=2)
            return y + last

        def get_config(self):
            return {**super().get_config(), "indices": list(self.indices)}

    return tf_keras, AddLastTargets


def build_tf_keras(spec: ModelSpec, batch_size: int | None = 1, unroll: bool | None = None):
    """The same model in Keras 2 (``tf_keras``), which export converts to TFLite.

    ``unroll=None`` picks what runs on TFLM (SPEC): LSTM stays rolled, which with ``batch_size=1``
    becomes the fused UNIDIRECTIONAL_SEQUENCE_LSTM op; GRU and SimpleRNN have no TFLM kernel and unroll.
    Weight layout is identical to ``build_keras``, so ``load_canonical`` fills it directly.
    """
    spec.validate()
    tf_keras, AddLastTargets = _tf_keras_layers()
    if unroll is None:
        unroll = {"lstm": False, "gru": True, "rnn": True}
    return _build_graph(tf_keras.layers, tf_keras.Input, tf_keras.Model, AddLastTargets, spec, batch_size, unroll)


# ---------------------------------------------------------------- PyTorch

@functools.lru_cache(maxsize=None)
def _torch_class():
    import torch
    from torch import nn

    class TorchForecaster(nn.Module):
        """The spec's network in PyTorch; ``forward`` maps (batch, window, n_inputs) -> (batch, horizon, n_targets)."""

        def __init__(self, spec: ModelSpec):
            super().__init__()
            self.spec = spec
            self.hidden = nn.ModuleList()
            widths = _layer_inputs(spec)
            for n in widths:
                if spec.kind == "dense":
                    self.hidden.append(nn.Linear(n, spec.units))
                else:
                    cell = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[spec.kind]
                    self.hidden.append(cell(n, spec.units, batch_first=True))
            self.drop = nn.Dropout(spec.dropout)
            self.head = nn.Linear(spec.units, spec.head_units) if spec.head_units else None
            self.out = nn.Linear(spec.head_units or spec.units, spec.output_units)
            idx = spec.target_input_index if spec.residual else ()
            self.register_buffer("target_idx", torch.tensor(list(idx), dtype=torch.long), persistent=False)

        def forward(self, x):
            h = x
            if self.spec.kind == "dense":
                h = h.reshape(h.shape[0], -1)  # time-major row order, as Keras's Flatten
                for layer in self.hidden:
                    h = self.drop(torch.relu(layer(h)))
            else:
                for i, layer in enumerate(self.hidden):
                    h, _ = layer(h)
                    if i == len(self.hidden) - 1:
                        h = h[:, -1, :]
                    h = self.drop(h)
            if self.head is not None:
                h = torch.relu(self.head(h))
            y = self.out(h).reshape(-1, self.spec.horizon, self.spec.n_targets)
            if self.spec.residual:
                y = y + x[:, -1:, :].index_select(2, self.target_idx)
            return y

    return TorchForecaster


def build_torch(spec: ModelSpec):
    """A ``torch.nn.Module`` with the spec's architecture (CPU, float32); ``model.spec`` keeps the spec."""
    spec.validate()
    return _torch_class()(spec)


def build(spec: ModelSpec, **keras_options: Any):
    """The model for the spec's own backend (Keras 3 or PyTorch)."""
    return build_torch(spec) if spec.backend == "torch" else build_keras(spec, **keras_options)


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
