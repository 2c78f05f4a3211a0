"""The builders: Keras 3 (training), Keras 2 / tf_keras (the export graph) and PyTorch, each making the
spec's architecture with the same weight layout, the target form's add-back inside the graph."""
from __future__ import annotations

import functools
from typing import Any



from core.errors import StudioError
from core.models.spec import SEASONAL_FORMS, ZERO_START_FORMS, ModelSpec, layer_inputs

# ---------------------------------------------------------------- Keras 3

def _contiguous(idx: tuple) -> bool:
    return all(b == a + 1 for a, b in zip(idx, idx[1:]))


def relative_mask(spec: ModelSpec) -> Any:
    """(n_inputs,) float32: 1 at each target's input column, 0 elsewhere; what ``spec.relative`` subtracts the
    window's last row by (x - x[last] * mask: STRIDED_SLICE, MUL and SUB in TFLite, builtin in float and int8)."""
    import numpy as np

    mask = np.zeros(spec.n_inputs, np.float32)
    mask[[int(i) for i in spec.target_input_index]] = 1.0
    return mask


def _season_reference(take: Any, x: Any, indices: tuple, steps: tuple, drift: tuple = ()) -> Any:
    """(batch, horizon, n_targets) reference values: window rows ``steps``, target columns ``indices``;
    with ``drift`` = (a, b) (the "change_both" form) plus row a minus row b, broadcast over the horizon.

    Adjacent rows and columns become plain slices (STRIDED_SLICE in TFLite); only a horizon longer than
    the season (rows repeat) or targets that are not adjacent inputs need a gather (GATHER, a builtin op
    that TFLM runs in float and int8). The drift is two one-row slices and a SUB.
    """
    def columns(v):
        if _contiguous(indices):
            return v[:, :, indices[0]:indices[-1] + 1]
        return take(v, list(indices), axis=2)

    if _contiguous(steps):
        ref = columns(x[:, steps[0]:steps[-1] + 1, :])
    else:
        ref = columns(take(x, list(steps), axis=1))
    if drift:
        a, b = int(drift[0]), int(drift[1])
        ref = ref + (columns(x[:, a:a + 1, :]) - columns(x[:, b:b + 1, :]))
    return ref


def linear_constants(spec: ModelSpec) -> tuple[list, list]:
    """("change_linear") the fitted reference as nested lists: per target (window, horizon) weights, transposed for
    a matrix product, and (horizon,) biases. Constants of the graph (layer config, torch buffers), never weights:
    ``get_weights()``, saved weights and the torch<->Keras mapping stay those of the network alone."""
    ref = spec.linear_reference
    if ref is None:
        raise StudioError("This 'change from a linear forecast' model has no fitted linear reference yet.",
                          "Train it: the reference is fitted on the training windows when training starts.")
    return ([w.T.tolist() for w in ref.weights], [b.tolist() for b in ref.bias])


def _linear_reference(matmul, stack, const, x: Any, indices: tuple, weights: list, bias: list) -> Any:
    """(batch, horizon, n_targets): per target j, bias[j] + x[:, :, indices[j]] @ weights[j] (window x horizon), a
    FULLY_CONNECTED-style product on a constant, then the targets stacked (PACK) on the last axis."""
    refs = [matmul(x[:, :, int(c)], const(weights[j])) + const(bias[j]) for j, c in enumerate(indices)]
    return stack(refs, axis=-1)


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

    @keras.saving.register_keras_serializable(package="forecast_studio")
    class AddSeasonTargets(keras.layers.Layer):
        """y + (each forecast step's target inputs one season earlier); no weights."""

        def __init__(self, indices, steps, drift=(), **kwargs):
            super().__init__(**kwargs)
            self.indices = tuple(int(i) for i in indices)
            self.steps = tuple(int(s) for s in steps)
            self.drift = tuple(int(r) for r in (drift or ()))  # () in models saved before "change_both"

        def call(self, inputs):
            y, x = inputs
            return y + _season_reference(keras.ops.take, x, self.indices, self.steps, self.drift)

        def compute_output_shape(self, input_shape):
            return input_shape[0]

        def get_config(self):
            return {**super().get_config(), "indices": list(self.indices), "steps": list(self.steps),
                    "drift": list(self.drift)}

    @keras.saving.register_keras_serializable(package="forecast_studio")
    class RelativeToLast(keras.layers.Layer):
        """x - (the window's last row) x mask: each target input relative to its last value; no weights."""

        def __init__(self, mask, **kwargs):
            super().__init__(**kwargs)
            self.mask = tuple(float(m) for m in mask)

        def call(self, x):
            return x - x[:, -1:, :] * keras.ops.convert_to_tensor(list(self.mask), dtype=x.dtype)

        def compute_output_shape(self, input_shape):
            return input_shape

        def get_config(self):
            return {**super().get_config(), "mask": list(self.mask)}

    @keras.saving.register_keras_serializable(package="forecast_studio")
    class AddLinearReference(keras.layers.Layer):
        """y + the fitted linear reference of the window (core.linear_reference); constants, no weights."""

        def __init__(self, indices, lin_weights, lin_bias, **kwargs):
            super().__init__(**kwargs)
            self.indices = tuple(int(i) for i in indices)
            self.lin_weights, self.lin_bias = [list(w) for w in lin_weights], [list(b) for b in lin_bias]

        def call(self, inputs):
            y, x = inputs
            const = lambda v: keras.ops.convert_to_tensor(v, dtype=x.dtype)  # noqa: E731
            return y + _linear_reference(keras.ops.matmul, keras.ops.stack, const, x, self.indices,
                                         self.lin_weights, self.lin_bias)

        def compute_output_shape(self, input_shape):
            return input_shape[0]

        def get_config(self):
            return {**super().get_config(), "indices": list(self.indices), "lin_weights": self.lin_weights,
                    "lin_bias": self.lin_bias}

    return keras, (AddLastTargets, AddSeasonTargets, RelativeToLast, AddLinearReference)


def _build_graph(layers_mod, Input, Model, add_layer, spec: ModelSpec, batch_size, unroll) -> Any:
    """The one architecture, written once for both Keras generations (their layer APIs agree here)."""
    L = layers_mod
    x_in = Input(shape=(spec.window, spec.n_inputs), batch_size=batch_size, name="window")
    h = x_in
    if spec.relative:
        h = add_layer[2](relative_mask(spec).tolist(), name="relative_to_last")(h)
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
    # A seasonal or linear change target starts from an output of zero: the untrained model is exactly its
    # reference forecast, and training (with early stopping on validation) moves it only where that helps.
    zero = "zeros" if spec.target_form in ZERO_START_FORMS else None
    h = (L.Dense(spec.output_units, name="output", kernel_initializer=zero, bias_initializer=zero)(h) if zero
         else L.Dense(spec.output_units, name="output")(h))
    y = L.Reshape((spec.horizon, spec.n_targets), name="forecast")(h)
    add_last, add_season = add_layer[:2]
    if spec.target_form == "change_last":
        y = add_last(spec.target_input_index, name="add_last_value")([y, x_in])
    elif spec.target_form == "change_season":
        y = add_season(spec.target_input_index, spec.season_steps, name="add_last_season")([y, x_in])
    elif spec.target_form == "change_both":
        y = add_season(spec.target_input_index, spec.season_steps, spec.drift_rows,
                       name="add_last_value_and_season")([y, x_in])
    elif spec.target_form == "change_linear":
        weights, bias = linear_constants(spec)
        y = add_layer[3](spec.target_input_index, weights, bias, name="add_linear_forecast")([y, x_in])
    return Model(x_in, y, name=f"forecast_{spec.kind}")


def build_keras(spec: ModelSpec, batch_size: int | None = None, unroll: bool = False):
    """A Keras 3 functional model: (batch, window, n_inputs) -> (batch, horizon, n_targets)."""
    spec.validate()
    keras, add_layers = _keras_layers()
    return _build_graph(keras.layers, keras.Input, keras.Model, add_layers, spec, batch_size, unroll)


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

    class AddSeasonTargets(tf_keras.layers.Layer):
        """Same as the Keras 3 layer: STRIDED_SLICE (GATHER only where rows or columns are not adjacent), ADD."""

        def __init__(self, indices, steps, drift=(), **kwargs):
            super().__init__(**kwargs)
            self.indices = tuple(int(i) for i in indices)
            self.steps = tuple(int(s) for s in steps)
            self.drift = tuple(int(r) for r in (drift or ()))  # () in models saved before "change_both"

        def call(self, inputs):
            y, x = inputs
            return y + _season_reference(tf.gather, x, self.indices, self.steps, self.drift)

        def get_config(self):
            return {**super().get_config(), "indices": list(self.indices), "steps": list(self.steps),
                    "drift": list(self.drift)}

    class RelativeToLast(tf_keras.layers.Layer):
        """Same as the Keras 3 layer: STRIDED_SLICE, MUL by a constant, SUB (all builtin TFLM ops)."""

        def __init__(self, mask, **kwargs):
            super().__init__(**kwargs)
            self.mask = tuple(float(m) for m in mask)

        def call(self, x):
            return x - x[:, -1:, :] * tf.constant(list(self.mask), dtype=x.dtype)

        def get_config(self):
            return {**super().get_config(), "mask": list(self.mask)}

    class AddLinearReference(tf_keras.layers.Layer):
        """Same as the Keras 3 layer: STRIDED_SLICE, FULLY_CONNECTED on constants, ADD, PACK (builtin TFLM ops)."""

        def __init__(self, indices, lin_weights, lin_bias, **kwargs):
            super().__init__(**kwargs)
            self.indices = tuple(int(i) for i in indices)
            self.lin_weights, self.lin_bias = [list(w) for w in lin_weights], [list(b) for b in lin_bias]

        def call(self, inputs):
            y, x = inputs
            const = lambda v: tf.constant(v, dtype=x.dtype)  # noqa: E731
            return y + _linear_reference(tf.matmul, tf.stack, const, x, self.indices, self.lin_weights, self.lin_bias)

        def get_config(self):
            return {**super().get_config(), "indices": list(self.indices), "lin_weights": self.lin_weights,
                    "lin_bias": self.lin_bias}

    return tf_keras, (AddLastTargets, AddSeasonTargets, RelativeToLast, AddLinearReference)


def build_tf_keras(spec: ModelSpec, batch_size: int | None = 1, unroll: bool | None = None):
    """The same model in Keras 2 (``tf_keras``), which export converts to TFLite.

    ``unroll=None`` picks what runs on TFLM (SPEC): LSTM stays rolled, which with ``batch_size=1``
    becomes the fused UNIDIRECTIONAL_SEQUENCE_LSTM op; GRU and SimpleRNN have no TFLM kernel and unroll.
    Weight layout is identical to ``build_keras``, so ``load_canonical`` fills it directly.
    """
    spec.validate()
    tf_keras, add_layers = _tf_keras_layers()
    if unroll is None:
        unroll = {"lstm": False, "gru": True, "rnn": True}
    return _build_graph(tf_keras.layers, tf_keras.Input, tf_keras.Model, add_layers, spec, batch_size, unroll)


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
            widths = layer_inputs(spec)
            for n in widths:
                if spec.kind == "dense":
                    self.hidden.append(nn.Linear(n, spec.units))
                else:
                    cell = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[spec.kind]
                    self.hidden.append(cell(n, spec.units, batch_first=True))
            self.drop = nn.Dropout(spec.dropout)
            self.head = nn.Linear(spec.units, spec.head_units) if spec.head_units else None
            self.out = nn.Linear(spec.head_units or spec.units, spec.output_units)
            if spec.target_form in ZERO_START_FORMS:  # starts as its reference forecast, as the Keras builders do
                nn.init.zeros_(self.out.weight)
                nn.init.zeros_(self.out.bias)
            idx = spec.target_input_index if spec.residual else ()
            self.register_buffer("target_idx", torch.tensor(list(idx), dtype=torch.long), persistent=False)
            self.register_buffer("season_idx", torch.tensor(list(spec.season_steps), dtype=torch.long),
                                 persistent=False)
            self.register_buffer("relative_mask", torch.tensor(relative_mask(spec) if spec.relative else []),
                                 persistent=False)
            self.register_buffer("drift_idx", torch.tensor(list(spec.drift_rows), dtype=torch.long),
                                 persistent=False)
            # "change_linear": the fitted reference, (targets, horizon, window) and (horizon, targets); buffers that
            # are not saved (persistent=False), so the state dict and the weight mapping hold the network alone.
            ref = spec.linear_reference if spec.target_form == "change_linear" else None
            if spec.target_form == "change_linear" and ref is None:
                linear_constants(spec)  # raises: an unfitted reference
            self.register_buffer("lin_w", torch.tensor(ref.weights if ref is not None else [], dtype=torch.float32),
                                 persistent=False)
            self.register_buffer("lin_b", torch.tensor(ref.bias.T if ref is not None else [], dtype=torch.float32),
                                 persistent=False)
            # Set by core.training_engines where the CPU has native bfloat16: the recurrent layers then run
            # autocast while training (never in eval), and everything after them stays float32.
            self.bf16_recurrent = False

        def forward(self, x):
            h = x - x[:, -1:, :] * self.relative_mask if self.spec.relative else x
            if self.spec.kind == "dense":
                h = h.reshape(h.shape[0], -1)  # time-major row order, as Keras's Flatten
                for layer in self.hidden:
                    h = self.drop(torch.relu(layer(h)))
            else:
                cast = self.bf16_recurrent and self.training
                for i, layer in enumerate(self.hidden):
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cast):
                        h, _ = layer(h)
                    h = h.float()
                    if i == len(self.hidden) - 1:
                        h = h[:, -1, :]
                    h = self.drop(h)
            if self.head is not None:
                h = torch.relu(self.head(h))
            y = self.out(h).reshape(-1, self.spec.horizon, self.spec.n_targets)
            if self.spec.target_form == "change_last":
                y = y + x[:, -1:, :].index_select(2, self.target_idx)
            elif self.spec.target_form in SEASONAL_FORMS:
                y = y + x.index_select(1, self.season_idx).index_select(2, self.target_idx)
                if self.spec.target_form == "change_both":
                    rows = x.index_select(1, self.drift_idx).index_select(2, self.target_idx)
                    y = y + (rows[:, :1, :] - rows[:, 1:2, :])
            elif self.spec.target_form == "change_linear":
                cols = x.index_select(2, self.target_idx)  # the window as given, like the other forms
                y = y + torch.einsum("brj,jkr->bkj", cols, self.lin_w) + self.lin_b
            return y

    return TorchForecaster


def build_torch(spec: ModelSpec):
    """A ``torch.nn.Module`` with the spec's architecture (CPU, float32); ``model.spec`` keeps the spec."""
    spec.validate()
    return _torch_class()(spec)


def build(spec: ModelSpec, **keras_options: Any):
    """The model for the spec's own backend (Keras 3 or PyTorch)."""
    return build_torch(spec) if spec.backend == "torch" else build_keras(spec, **keras_options)


