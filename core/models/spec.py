"""``ModelSpec``: the network one spec describes (kind, size, backend, target form), its presets, and its
counts (parameters, multiply-adds, size) without building anything."""
from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np

from core.config import DEFAULTS
from core.errors import StudioError


KINDS = ("lstm", "gru", "rnn", "dense")
# What the network's output means before the model adds a reference back (issue 21):
# "level": the forecast itself; "change_last": the change from the last input value of each target;
# "change_season": the change from the value one season earlier at each forecast step, y[t+k] - y[t+k-P];
# "change_both": the change from the last value plus what followed it one season earlier,
# y[t+k] - (y[t] + y[t+k-P] - y[t-P]): last season's shape started from today's level (the seasonal naive
# shifted by the season-on-season change at the origin; as a forecast on its own it is the airline model's
# ARIMA(0,1,0)(0,1,0) forecast). It wins where a level shift persists for hours (sensor and demand series).
# "change_linear": the change from a ridge autoregression over each target's own window rows, fitted on the
# training windows when training starts (core.linear_reference; its weights travel in the spec).
TARGET_FORMS = ("level", "change_last", "change_season", "change_both", "change_linear")
TARGET_FORM_LABELS = {"level": "level", "change_last": "change from last value",
                      "change_season": "change from last season",
                      "change_both": "change from last value and last season",
                      "change_linear": "change from a linear forecast"}
# The forms whose reference reaches back one season: they need a period and a window longer than it.
SEASONAL_FORMS = ("change_season", "change_both")
# The forms whose reference reads window rows other than the last one, so a one-step graph (core.steploop, which sees
# one time step) can never add it: the firmware adds it in float after the model. "change_linear" is outside in every
# exported graph, not only the step loop (core.export.calibration.outside): its reference's precision is the forecast's.
OUTSIDE_FORMS = SEASONAL_FORMS + ("change_linear",)
# The forms whose output layer starts at zero, so the untrained model is exactly its reference forecast.
ZERO_START_FORMS = SEASONAL_FORMS + ("change_linear",)
# The forms that keep the data's seasonal period: the seasonal ones, and the linear reference, whose fit may
# shrink toward the same phase last season instead of the last value.
PERIOD_FORMS = SEASONAL_FORMS + ("change_linear",)
# What a "change_linear" reference is (``ModelSpec.linear_base``): "" a ridge over the window that chooses what it
# shrinks toward on validation (core.linear_reference.fit_target); "smooth" exponential smoothing itself, Holt-Winters
# run over the window with its parameters fitted on the training part and nothing chosen on validation (issue 34:
# full-history ETS was within 10% of the best reference where the networks were not; over four seasons of window the
# board's linear sum is its equal, bench_smoothing_window). Either way the weights travel in the spec.
LINEAR_BASES = ("", "smooth")
SMOOTH_LABEL = "change from exponential smoothing"
# The Model page's choices: every target form, and exponential smoothing as a change_linear reference of its own.
FORM_CHOICES = TARGET_FORMS + ("change_smooth",)


def form_choice(target_form: str, linear_base: str = "") -> str:
    """The Model page's choice for a target form and linear reference (``choice_options`` is its inverse)."""
    return "change_smooth" if target_form == "change_linear" and linear_base == "smooth" else target_form


def choice_options(choice: str) -> dict:
    """``target_form`` and ``linear_base`` for one of ``FORM_CHOICES``."""
    return {"target_form": "change_linear", "linear_base": "smooth"} if choice == "change_smooth" else \
        {"target_form": choice, "linear_base": ""}


def choice_label(choice: str) -> str:
    return SMOOTH_LABEL if choice == "change_smooth" else TARGET_FORM_LABELS[choice]
BACKENDS = ("keras", "torch")
KIND_LABELS = {"lstm": "LSTM", "gru": "GRU", "rnn": "SimpleRNN", "dense": "Dense (no recurrence)"}
# Gate blocks per recurrent cell: they multiply every matrix count below.
GATES = {"lstm": 4, "gru": 3, "rnn": 1}
MAX_LAYERS = 3


@dataclass(frozen=True)
class ModelSpec:
    """The network, independent of backend. Output shape is always (batch, horizon, n_targets).

    ``target_form`` (TARGET_FORMS): "change_last" makes the network learn the change from the last
    input value of each target, "change_season" the change from the value ``season_period`` steps
    before each forecast step; either way the model adds that reference back itself, so every consumer
    (metrics, plots, export, the board, Edge Impulse) sees levels. ``residual`` is the older name:
    ``ModelSpec(residual=True)`` and saved specs with ``"residual": true`` mean "change_last", and
    ``spec.residual`` says whether any reference is added back.
    ``target_input_index[i]`` is the position of target i among the inputs (``None`` if it is not an
    input); a change target needs every target to be an input.
    """

    kind: str = "lstm"
    units: int = 32
    layers: int = 1
    dropout: float = 0.0
    head_units: int = 0
    backend: str = "keras"
    target_form: str = "level"
    season_period: int = 0
    # Issue 34: the network reads each target input minus the window's last value of that target (a SUB inside
    # the graph, before the first layer), so a level that leaves the training range looks to it like any other;
    # the target form's add-back still reads the window as given. Needs a change form.
    relative: bool = False
    window: int = 24
    n_inputs: int = 1
    horizon: int = 1
    n_targets: int = 1
    target_input_index: tuple = ()
    # "change_linear": the fitted reference, flat (targets, horizon, window) weights and (targets, horizon) biases in
    # scaled units (core.linear_reference.LinearReference.to_lists); empty until training fits them.
    linear_weights: tuple = ()
    linear_bias: tuple = ()
    linear_base: str = ""       # LINEAR_BASES; only a "change_linear" spec keeps one

    def __post_init__(self) -> None:
        # JSON brings lists back; keep the field hashable and comparable.
        object.__setattr__(self, "target_input_index",
                           tuple(None if i is None else int(i) for i in (self.target_input_index or ())))
        object.__setattr__(self, "season_period", int(self.season_period or 0))
        object.__setattr__(self, "relative", bool(self.relative))
        object.__setattr__(self, "linear_weights", tuple(float(v) for v in (self.linear_weights or ())))
        object.__setattr__(self, "linear_bias", tuple(float(v) for v in (self.linear_bias or ())))
        object.__setattr__(self, "linear_base", str(self.linear_base or "") if self.target_form == "change_linear" else "")

    @property
    def residual(self) -> bool:
        """True when the model adds a reference value back (change from last value or last season)."""
        return self.target_form != "level"

    @property
    def season_steps(self) -> tuple[int, ...]:
        """Window positions of the seasonal reference of each forecast step k = 1..horizon.

        Step k refers to y[t+k-P], the same phase one season earlier; beyond one season (k > P) the
        newest observed value of that phase, y[t+k-mP] with the smallest m that reaches the window
        (what seasonal naive forecasts). Needs window >= P.
        """
        p, w = self.season_period, self.window
        return tuple(w - p + (k % p) for k in range(self.horizon)) if p >= 1 else ()

    @property
    def drift_rows(self) -> tuple[int, ...]:
        """For "change_both": (last row, the row one season before it), whose difference, the change since
        one season ago, is added to each step's seasonal reference; () for the other forms."""
        if self.target_form != "change_both" or self.season_period < 1:
            return ()
        return (self.window - 1, self.window - 1 - self.season_period)

    @property
    def linear_reference(self):
        """The fitted ``core.linear_reference.LinearReference`` of a "change_linear" spec; None before fitting."""
        if self.target_form != "change_linear" or not self.linear_weights:
            return None
        from core.linear_reference import LinearReference

        return LinearReference.from_lists(self.linear_weights, self.linear_bias, self.n_targets, self.horizon,
                                          self.window)

    @property
    def label(self) -> str:
        name = KIND_LABELS.get(self.kind, self.kind)
        core = f"{self.layers} x {name}({self.units})" if self.layers > 1 else f"{name}({self.units})"
        head = f" + Dense({self.head_units})" if self.head_units else ""
        res = {"change_last": ", change from last value",
               "change_season": f", change from last season ({self.season_period} steps)",
               "change_both": f", change from last value and last season ({self.season_period} steps)",
               "change_linear": ", " + (SMOOTH_LABEL if self.linear_base == "smooth" else "change from a linear forecast")
               }.get(self.target_form, "")
        rel = ", inputs relative to the last value" if self.relative else ""
        return f"{core}{head}{res}{rel}, {self.backend}"

    @property
    def output_units(self) -> int:
        return self.horizon * self.n_targets

    def to_dict(self) -> dict:
        d = asdict(self)
        d["target_input_index"] = list(self.target_input_index)
        d["linear_weights"] = list(self.linear_weights)
        d["linear_bias"] = list(self.linear_bias)
        d["residual"] = self.residual  # for readers of reports that know only the older flag
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelSpec":
        known = {f.name for f in fields(cls)} | {"residual"}
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

        Without ``target_form``, ``residual`` decides (default "auto": change from the last value whenever
        every target is also an input; issue J: that is what makes a small model beat "tomorrow = today").
        """
        index = window_spec.target_input_index
        index = tuple(index) if index is not None else tuple(None for _ in range(int(window_spec.n_targets)))
        residual = options.pop("residual", None)
        form = options.pop("target_form", None)
        if form is None or form == "auto":
            if residual is None or residual == "auto":
                residual = bool(index) and all(i is not None for i in index)
            form = "change_last" if residual else "level"
        base = {k: v for k, v in DEFAULTS["model"].items() if k in {f.name for f in fields(cls)}}
        base.update(options)
        spec = cls(**base, target_form=str(form), window=int(window_spec.window),
                   n_inputs=int(window_spec.n_inputs), horizon=int(window_spec.horizon),
                   n_targets=int(window_spec.n_targets), target_input_index=index)
        # Checked here, where a user's choice arrives, not in validate(): the int8 export builds the change-only
        # graph of a relative model as a "level" spec (core.export.worker), which must still read relative inputs.
        if spec.relative and not spec.residual:
            raise StudioError("Inputs relative to the last value need a change target: a level model has no last "
                              "value to add back.", "Choose a change form, or turn relative inputs off.")
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
        if self.target_form not in TARGET_FORMS:
            raise StudioError(f"Unknown target form '{self.target_form}'.", f"Choose one of: {', '.join(TARGET_FORMS)}.")
        if self.linear_base not in LINEAR_BASES:
            raise StudioError(f"Unknown linear reference '{self.linear_base}'.",
                              "Leave it empty (a ridge over the window) or set \"smooth\" (exponential smoothing).")
        name = TARGET_FORM_LABELS[self.target_form]
        if self.residual and (not idx or any(i is None for i in idx)):
            raise StudioError(f"'{name.capitalize()}' needs every target to also be an input, and at least one is not.",
                              f"Add the target column(s) to the input features, or turn '{name}' off.")
        if self.linear_weights or self.linear_bias:
            if self.target_form != "change_linear":
                raise StudioError(f"The model spec holds linear reference weights but its target form is '{name}'.",
                                  "Re-create the model on the Model page.")
            self.linear_reference  # raises StudioError when the sizes do not match the shapes
        if self.linear_base == "smooth" and self.season_period >= 2 and self.window < 2 * self.season_period:
            raise StudioError(f"Exponential smoothing needs a window of at least two seasons ({2 * self.season_period} "
                              f"steps) to read its seasonal state from; the window is {self.window} steps.",
                              f"Set the window to at least {2 * self.season_period} steps (Features step, or --window; "
                              "three or four seasons suit it best), or use 'change from a linear forecast'.")
        if self.target_form in SEASONAL_FORMS:
            if self.season_period < 2:
                raise StudioError(f"'{name.capitalize()}' needs a seasonal period of at least 2 steps; got "
                                  f"{self.season_period}.", "Use 'change from last value' for data with no season.")
            # change_both also reads the row one season before the last one, so it needs one step more.
            need = self.season_period + (1 if self.target_form == "change_both" else 0)
            if self.window < need:
                what = ("reach back one season" if self.target_form == "change_season" else
                        "reach one season behind its last step")
                raise StudioError(f"'{name.capitalize()}' needs the window to {what}: the window is "
                                  f"{self.window} steps, the season {self.season_period}.",
                                  f"Set the window to at least {need} steps (Features step, or --window), "
                                  "or use 'change from last value'.")
        return self


def _form_from_residual(residual: Any, form: str | None) -> str:
    """The target form an older ``residual=...`` asks for; a change form already chosen is kept."""
    if not residual:
        return "level"
    return form if form in ("change_last", "change_linear") + SEASONAL_FORMS else "change_last"


_dataclass_init = ModelSpec.__init__


@functools.wraps(_dataclass_init)
def _init_with_residual(self, *args: Any, residual: Any = None, **kwargs: Any) -> None:
    # ``residual`` is not a field (target_form is the one truth), so dataclasses.replace() never carries
    # a stale copy of it; it is still accepted when given, from old code and old saved specs.
    if residual is not None and residual != "auto":
        kwargs["target_form"] = _form_from_residual(residual, kwargs.get("target_form"))
    _dataclass_init(self, *args, **kwargs)


ModelSpec.__init__ = _init_with_residual


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

def layer_inputs(spec: ModelSpec) -> list[int]:
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
    for n in layer_inputs(spec):
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
    for n in layer_inputs(spec):
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


