"""How the epochs run, on each backend (issue 24: faster than a plain hand-written script).

Measured on a 2-core AVX-512 CPU (bench/bench_train.py, BENCHMARKS.md), what wins is the kernel, not
the loop: oneDNN's fused LSTM (PyTorch's CPU path) and, where the CPU has native bfloat16 dot
products, bfloat16 autocast for LSTM/GRU layers wide enough to pay for the casts. So a Keras LSTM or
SimpleRNN trains on its exact PyTorch twin (same initial weights from the Keras initialisers, Adam
with Keras's epsilon, MSE; SPEC: the weights map exactly) and the trained weights go back into the
Keras model; without torch, or with ``keras_engine="keras"``, TensorFlow's own loop runs. Torch's
thread count is measured each epoch (``Threads``). XLA ``jit_compile``, ``torch.compile``, larger
batches and ``steps_per_execution`` were measured and did not win. The per-batch work the studio
adds stays a flag check and a counter: the Keras callback hooks only batch *begin*, and the torch
loop keeps the loss sum on the device and looks at it once per epoch.

Each ``train_*`` function returns ``(model, Tracker)``; ``core.training.train`` scores and saves.
"""
from __future__ import annotations

import functools
import math
import os
import threading
import time
import weakref
from typing import Any, Callable

import numpy as np

from core.config import DEFAULTS
from core.errors import StudioError
from core.models import ModelSpec
from core.train_config import TrainConfig

# Seeding is process-global in both frameworks (keras.utils.set_random_seed, torch.manual_seed), so
# seeding and building a model happen under one lock: two trainings started together still each
# get the initial weights their seed promises.
SEED_LOCK = threading.Lock()

EpochCallback = Callable[[dict], None]
BatchCallback = Callable[[int, float], None]


def _not_finite(part: str, epoch: int, lr: float) -> StudioError:
    return StudioError(
        f"Training stopped in epoch {epoch}: the {part} loss became NaN or infinite (the weights blew up).",
        f"Lower the learning rate (it is {lr:g}; try {lr / 10:g}), and check the scaling on the Features page: "
        "unscaled columns with large values, or a few extreme outliers, cause this.")


def train_keras(windows, spec, config, on_epoch, on_batch, should_stop, threads=None):
    import keras

    from core.models import build_keras

    with SEED_LOCK:
        keras.utils.set_random_seed(config.seed)
        model = build_keras(spec)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate), loss="mse")
    train_ds = windows.tf_dataset("train", config.batch_size, shuffle=True, seed=config.seed)
    has_val = windows.count("val") > 0
    val_ds = windows.tf_dataset("val", config.batch_size, shuffle=False, seed=config.seed) if has_val else None
    steps = math.ceil(windows.count("train") / config.batch_size)
    tracker = Tracker(config, on_epoch, has_val)
    if config.naive_margin is not None:
        model.set_weights(zero_output(model.get_weights()))
        start = float(model.evaluate(val_ds, verbose=0)) if has_val else None
        tracker.start_naive(start, [w.copy() for w in model.get_weights()])

    class Progress(keras.callbacks.Callback):
        # Only batch *begin* is hooked: it gets no logs, so nothing waits for the loss tensor, and
        # Keras keeps its default asynchronous batch-end dispatch exactly as in a plain model.fit.
        # The price: a NaN loss is noticed at the end of its epoch rather than at its batch.
        def on_epoch_begin(self, epoch, logs=None):
            tracker.begin_epoch()

        def on_train_batch_begin(self, batch, logs=None):
            if should_stop is not None and should_stop():
                tracker.stopped = True
                self.model.stop_training = True
            if on_batch is not None:
                on_batch(tracker.epoch, batch / steps)

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            if tracker.end_epoch(float(logs.get("loss", float("nan"))),
                                 float(logs["val_loss"]) if "val_loss" in logs else None,
                                 lambda: [w.copy() for w in self.model.get_weights()]):
                self.model.stop_training = True

    model.fit(train_ds, validation_data=val_ds, epochs=config.epochs, callbacks=[Progress()], verbose=0, shuffle=False)
    tracker.raise_if_bad()
    if tracker.best_weights is not None:
        model.set_weights(tracker.best_weights)
    return model, tracker


def torch_device():
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The CPU's feature flags as Linux lists them (empty where /proc/cpuinfo does not exist)."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as fh:
                cpuinfo = fh.read()
        except OSError:
            return frozenset()
    for line in cpuinfo.splitlines():
        if line.startswith("flags") and ":" in line:
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


@functools.lru_cache(maxsize=None)
def native_bf16() -> bool:
    """True when the CPU does bfloat16 dot products in hardware (AVX512-BF16 or AMX-BF16): only then is
    autocast faster; elsewhere bfloat16 is emulated and slower than float32."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def torch_importable() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


def use_bf16(spec: ModelSpec, device_type: str = "cpu") -> bool:
    """Whether the torch loop autocasts this model to bfloat16 (measured: a win for LSTM/GRU from
    about 64 units; SimpleRNN and narrow layers get slower, as the casts outweigh the faster products)."""
    cfg = DEFAULTS["train"]
    if str(cfg.get("bf16", "auto")).lower() == "off" or os.environ.get("FS_BF16", "").strip() in ("0", "off", "no"):
        return False
    return (device_type == "cpu" and spec.kind in ("lstm", "gru") and spec.units >= int(cfg["bf16_min_units"])
            and native_bf16())


def keras_engine(spec: ModelSpec) -> str:
    """ "torch" when a Keras model trains faster on its PyTorch twin (LSTM: oneDNN's fused kernel;
    SimpleRNN), else "keras". GRU stays on TensorFlow: torch's GRU was slower at 32 units in float32
    and at 128 units even in bfloat16 (BENCHMARKS.md). Falls back to "keras" without torch."""
    choice = os.environ.get("FS_KERAS_ENGINE", "").strip().lower() or str(DEFAULTS["train"].get("keras_engine", "auto"))
    if choice == "keras" or spec.kind == "dense" or not torch_importable():
        return "keras"
    if spec.kind == "gru":
        return "keras"
    return "torch"


class Threads:
    """Torch's CPU thread count, chosen by measuring, per epoch.

    On a quiet machine all cores are about 25% faster than one; but when another process (or a second
    training in this one) wants a core, OpenMP's all-core steps wait for a descheduled thread, and all
    cores ran 3 to 13 times slower than one (BENCHMARKS.md). So each epoch times a few steps both ways
    and keeps the faster; with several trainings in this process each gets its share of the cores.
    The thread count does not change the arithmetic (same results, bit for bit), only the speed.
    """

    PROBE = 4  # steps timed per setting; step 0 of an epoch is never timed (first-use costs)
    _lock = threading.Lock()
    _active = 0
    _saved: int | None = None

    def __init__(self, device_type: str) -> None:
        import torch

        self.torch = torch
        try:
            self.cores = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            self.cores = os.cpu_count() or 1
        self.enabled = device_type == "cpu" and self.cores > 1 and str(DEFAULTS["train"].get("threads", "auto")) == "auto"
        self.choice = self.cores
        self._times: dict[int, float] = {}
        self.history: list[int] = []

    def __enter__(self) -> "Threads":
        if self.enabled:
            with Threads._lock:
                if Threads._active == 0:
                    Threads._saved = self.torch.get_num_threads()
                Threads._active += 1
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled:
            with Threads._lock:
                Threads._active -= 1
                if Threads._active == 0 and Threads._saved is not None:
                    self.torch.set_num_threads(Threads._saved)

    def _share(self) -> int:
        return max(1, self.cores // max(Threads._active, 1))

    def plan(self, step: int, steps: int) -> float | None:
        """Set the thread count for this step; returns a start time when the step is being timed."""
        if not self.enabled:
            return None
        share = self._share()
        if share == 1 or steps < 2 * self.PROBE + 2:
            self._set(1 if share == 1 else self.choice)
            return None
        if step == 0:
            self._times = {}
        if 1 <= step <= 2 * self.PROBE:
            self._set(share if step <= self.PROBE else 1)
            return time.perf_counter()
        if step == 2 * self.PROBE + 1:
            # All cores must be clearly faster to be kept: under load they are the risky choice.
            self.choice = share if self._times.get(share, math.inf) < 0.85 * self._times.get(1, math.inf) else 1
            self.history.append(self.choice)
        self._set(self.choice)
        return None

    def timed(self, t0: float | None) -> None:
        if t0 is not None:
            n = self.torch.get_num_threads()
            self._times[n] = min(self._times.get(n, math.inf), time.perf_counter() - t0)

    def _set(self, n: int) -> None:
        if self.torch.get_num_threads() != n:
            self.torch.set_num_threads(n)


# Keras model -> the torch twin that trained it (same weights, eval mode), while the Keras model lives.
_TWINS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def torch_twin(model) -> Any:
    """The PyTorch twin a Keras ``model`` was trained by in this process (``train_keras_on_torch``), or None."""
    return _TWINS.get(model) if model is not None else None


def train_keras_on_torch(windows, spec, config, on_epoch, on_batch, should_stop, threads=None):
    """A Keras model trained by its PyTorch twin: the Keras initialisers give the starting weights,
    torch's kernels do the epochs, and the best epoch's weights are loaded back into the Keras model."""
    import keras
    import torch

    from core.models import build_keras, build_torch, canonical_weights, load_canonical

    with SEED_LOCK:
        keras.utils.set_random_seed(config.seed)
        kmodel = build_keras(spec)
        torch.manual_seed(config.seed)
        twin = build_torch(spec)
    if config.naive_margin is not None:
        load_canonical(kmodel, zero_output(canonical_weights(kmodel)))
    load_canonical(twin, canonical_weights(kmodel))
    # Keras's Adam: epsilon 1e-7 (torch's default is 1e-8); everything else is the same algorithm.
    twin, tracker = _torch_loop(windows, spec, config, twin, on_epoch, on_batch, should_stop, adam_eps=1e-7,
                                threads=threads)
    load_canonical(kmodel, canonical_weights(twin))
    _TWINS[kmodel] = twin
    return kmodel, tracker


def train_torch(windows, spec, config, on_epoch, on_batch, should_stop, threads=None):
    import torch

    from core.models import build_torch

    with SEED_LOCK:
        torch.manual_seed(config.seed)
        model = build_torch(spec)
    if config.naive_margin is not None:
        from core.models import canonical_weights, load_canonical

        load_canonical(model, zero_output(canonical_weights(model)))
    return _torch_loop(windows, spec, config, model, on_epoch, on_batch, should_stop, threads=threads)


def _torch_loop(windows, spec, config, model, on_epoch, on_batch, should_stop, adam_eps: float = 1e-8,
                threads: "Threads | None" = None):
    import torch

    device = torch_device()
    model.to(device)
    # One seeded generator orders the batches, so the global RNG (dropout) is the only shared state.
    gen = torch.Generator().manual_seed(config.seed)
    # Batches are gathered from one copy of the scaled series (as Windows.tf_dataset does), so
    # memory stays at the series' size however many overlapping windows there are.
    series_x = torch.from_numpy(np.ascontiguousarray(windows.inputs, dtype=np.float32)).to(device)
    series_y = torch.from_numpy(np.ascontiguousarray(windows.target_values, dtype=np.float32)).to(device)
    w_off = torch.arange(spec.window, device=device)
    h_off = torch.arange(windows.spec.horizon, device=device) + windows.spec.label_start

    def batch(starts):
        s = starts[:, None]
        return series_x[s + w_off], series_y[s + h_off]

    train_starts = torch.from_numpy(windows.starts("train")).to(device)
    has_val = windows.count("val") > 0
    val_starts = torch.from_numpy(windows.starts("val")).to(device) if has_val else None
    n, bs = train_starts.shape[0], config.batch_size
    steps = math.ceil(n / bs)
    # Fused: the same Adam in one kernel per step instead of a Python loop over tensors (the loop was a fifth of an
    # epoch of LSTM(32) on 2 cores; BENCHMARKS.md "Training speed").
    opt = torch.optim.Adam(model.parameters(), lr=config.learning_rate, eps=adam_eps, fused=True)
    loss_fn = torch.nn.MSELoss()
    tracker = Tracker(config, on_epoch, has_val)
    # bfloat16 only inside the recurrent layers while training (their backward follows); weights, Adam's
    # state, the head, the loss, validation and the saved model stay float32.
    bf16 = use_bf16(spec, device.type)
    model.bf16_recurrent = bf16
    tracker.precision = "bfloat16 autocast (recurrent layers)" if bf16 else "float32"
    threads = threads or Threads("none")  # disabled: torch's own default
    if config.naive_margin is not None:  # the output layer was zeroed: epoch 0 is the naive forecast itself
        tracker.start_naive(_torch_loss(model, batch, val_starts, max(bs, 256)) if has_val else None,
                            {k: v.detach().clone() for k, v in model.state_dict().items()})
    _epochs(model, opt, loss_fn, tracker, threads, config, gen, device, n, bs, steps, batch, train_starts,
            val_starts, has_val, on_batch, should_stop)
    model.bf16_recurrent = False
    tracker.threads = threads.history
    tracker.raise_if_bad()
    if tracker.best_weights is not None:
        model.load_state_dict(tracker.best_weights)
    model.eval()
    return model, tracker


def _epochs(model, opt, loss_fn, tracker, threads, config, gen, device, n, bs, steps, batch, train_starts,
            val_starts, has_val, on_batch, should_stop) -> None:
    import torch

    for _ in range(config.epochs):
        tracker.begin_epoch()
        model.train()
        order = torch.randperm(n, generator=gen).to(device)
        total = torch.zeros((), device=device)
        seen = 0
        for step in range(steps):
            t0 = threads.plan(step, steps)
            idx = order[step * bs:(step + 1) * bs]
            xb, yb = batch(train_starts[idx])
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            threads.timed(t0)
            # Summed on the device: no host sync per batch (it matters on CUDA).
            total += loss.detach() * idx.shape[0]
            seen += idx.shape[0]
            if on_batch is not None:
                on_batch(tracker.epoch, (step + 1) / steps)
            if should_stop is not None and should_stop():
                tracker.stopped = True
                break
        train_loss = float(total) / max(seen, 1)
        if not math.isfinite(train_loss):
            tracker.bad = ("training", tracker.epoch + 1)
            break
        val_loss = _torch_loss(model, batch, val_starts, max(bs, 256)) if has_val else None
        if tracker.end_epoch(train_loss, val_loss, lambda: {k: v.detach().clone() for k, v in model.state_dict().items()}):
            break
        if tracker.stopped:
            break


def _torch_loss(model, batch, starts, bs) -> float:
    """Mean squared error over all windows of a part (no dropout, no gradients)."""
    import torch

    model.eval()
    total = torch.zeros((), device=starts.device)
    with torch.no_grad():
        for i in range(0, starts.shape[0], bs):
            xb, yb = batch(starts[i:i + bs])
            total += torch.nn.functional.mse_loss(model(xb), yb, reduction="sum") / yb[0].numel()
    return float(total) / max(starts.shape[0], 1)


# The output kernel of a model started at the naive forecast: 2^-60, not zero. The TFLite converter shares one
# buffer among equal constants, and an all-zero (1, units) kernel (even -0.0) was given the LSTM's zero initial
# state, a variable the runtime then writes (the float32 export forecast 0.245 where the host said 0.129). With
# |h| <= 1 (tanh-bounded recurrent outputs) the change is at most units x 2^-60 <= 2^-50, below one float32 step
# of any scaled level above 2^-26: the last value plus it is the last value.
NAIVE_KERNEL = 2.0 ** -60


def zero_output(weights: list) -> list:
    """Canonical (Keras-layout) weights with the output layer's bias zero and its kernel ``NAIVE_KERNEL``: a
    change-form model then forecasts no change at all, the naive forecast its form adds back (issue 34)."""
    out = [np.array(w, dtype=np.float32, copy=True) for w in weights]
    out[-2][...] = NAIVE_KERNEL
    out[-1][...] = 0.0
    return out


class Tracker:
    """Epoch bookkeeping both backends share: history, best weights, patience, NaN."""

    def __init__(self, config: TrainConfig, on_epoch: EpochCallback | None, has_val: bool) -> None:
        self.config, self.on_epoch, self.has_val = config, on_epoch, has_val
        self.history: list[dict] = []
        self.best = math.inf
        self.best_epoch = 0
        self.best_weights = None
        self.since_best = 0
        self.epoch = 0  # epochs finished
        self.stopped = False  # the user asked to stop
        self.early = False  # patience ran out
        self.bad: tuple[str, int] | None = None
        self.precision = "float32"
        self.threads: list[int] = []  # torch's thread count chosen in each epoch
        self.naive_loss: float | None = None  # the naive start's validation loss (config.naive_margin set)
        self._t0 = time.perf_counter()

    def start_naive(self, val_loss: float | None, weights: Any) -> None:
        """Epoch 0 is the naive forecast (zero output): a trained epoch replaces it only when its validation loss
        is below (1 - naive_margin) x this one, and patience counts from here, so early stopping keeps it."""
        if val_loss is None or not math.isfinite(val_loss):
            return
        self.naive_loss = float(val_loss)
        self.best = (1.0 - float(self.config.naive_margin or 0.0)) * float(val_loss)
        self.best_epoch, self.best_weights = 0, weights

    @property
    def kept_naive(self) -> bool:
        return self.naive_loss is not None and self.best_epoch == 0

    def begin_epoch(self) -> None:
        self._t0 = time.perf_counter()

    def end_epoch(self, loss: float, val_loss: float | None, weights: Callable[[], Any]) -> bool:
        """Record an epoch; True when training should end (NaN, or patience used up)."""
        if self.bad is not None:
            return True
        self.epoch += 1
        if not math.isfinite(loss):
            self.bad = ("training", self.epoch)
            return True
        if val_loss is not None and not math.isfinite(val_loss):
            self.bad = ("validation", self.epoch)
            return True
        record = {"epoch": self.epoch, "loss": loss, "val_loss": val_loss,
                  "seconds": time.perf_counter() - self._t0}
        self.history.append(record)
        monitored = val_loss if val_loss is not None else loss
        if monitored < self.best:
            self.best, self.best_epoch, self.since_best = monitored, self.epoch, 0
            self.best_weights = weights()
        else:
            self.since_best += 1
        if self.on_epoch is not None:
            self.on_epoch(dict(record))
        if self.config.patience and self.since_best >= self.config.patience:
            self.early = True
            return True
        return False

    def raise_if_bad(self) -> None:
        if self.bad is not None:
            part, epoch = self.bad
            raise _not_finite(part, epoch, self.config.learning_rate)
