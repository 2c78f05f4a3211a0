"""A trained run and its directory: everything Forecast, Export and a reloaded session need.

Layout (ARCHITECTURE.md): ``run.json`` (what was trained on what, with a checksum of every other
file), ``weights.npz`` (canonical Keras layout), the backend's own weights (``model.weights.h5`` for
Keras, ``model.torch.npz`` named tensors for PyTorch: never pickle), ``history.json``,
``metrics.json`` (SPEC's shape) and ``samples.npz`` (scaled windows and host predictions, so export
and firmware need no dataset). Reading accepts only JSON and ``.npz`` with ``allow_pickle=False``.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import math
import zipfile
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.arrays import budget_bytes
from core.config import DEFAULTS
from core.errors import StudioError, from_interrupt
from core.files import atomic_dir, json_safe, load_json
from core.models import ModelSpec, count_params, form_choice
from core.train_config import TrainConfig
from core.training_engines import torch_twin
from core.windows import Scaler, SplitSpec, WindowSpec
from core.run_record import build_metrics, dataset_info, samples_of

# 2: run.json carries its own checksum. A format-1 run (written before) opens without one, as it always did.
FORMAT_VERSION = 2
WEIGHTS = "weights.npz"
KERAS_WEIGHTS = "model.weights.h5"
TORCH_WEIGHTS = "model.torch.npz"
FILES = ("weights.npz", "history.json", "metrics.json", "samples.npz")
PREDICT_BATCH = 256  # windows per forward pass when predicting
PREDICT_CHUNK = 16384  # windows copied out of the strided view at a time


def _to_dict(obj: Any) -> dict:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if is_dataclass(obj):
        return asdict(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def _json_default(o: Any) -> Any:
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return None if not math.isfinite(float(o)) else float(o)
    if isinstance(o, (pd.Timestamp, _dt.datetime, _dt.date)):
        return o.isoformat()
    if isinstance(o, (tuple, set)):
        return list(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def _dumps(obj: Any) -> bytes:
    return json.dumps(json_safe(obj), indent=2, default=_json_default, allow_nan=False).encode("utf-8")


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Run:
    """A trained model with everything needed to use it without the dataset.

    ``status`` is "done" (all epochs or early stopping) or "stopped" (the user stopped it; the best
    weights so far were kept). ``weights`` are canonical (Keras layout) for both backends.
    """

    run_dir: Path
    dataset: dict
    window_spec: WindowSpec
    split: SplitSpec
    scaler: Scaler
    model_spec: ModelSpec
    train_config: TrainConfig
    weights: list[np.ndarray]
    history: list[dict]
    metrics: dict
    samples: dict[str, np.ndarray]
    info: dict = field(default_factory=dict)
    created: str = ""
    # Calibrated bands (core/intervals.py, intervals.json); {} for a run saved before they existed.
    intervals: dict = field(default_factory=dict)
    _model: Any = field(default=None, repr=False, compare=False)

    # ------------------------------------------------------------ facts
    @property
    def status(self) -> str:
        return self.info.get("status", "done")

    @property
    def backend(self) -> str:
        return self.model_spec.backend

    @property
    def verdict(self) -> str:
        return str(self.metrics.get("verdict", ""))

    @property
    def split_rule(self) -> int:
        """How this run's parts were windowed (core.windows.SPLIT_RULE); runs before issue U wrote none: 1.
        A rule-1 run's metrics.json and samples are kept as written: its test windows sat after a gap."""
        value = self.info.get("split_rule", 1)
        return value if isinstance(value, int) and not isinstance(value, bool) else 1

    # ------------------------------------------------------------ models
    def keras_model(self, batch_size: int | None = None, unroll: bool = False):
        """A Keras 3 model of this run (whatever backend trained it), filled with its weights."""
        from core.models import build_keras, load_canonical

        return load_canonical(build_keras(self.model_spec, batch_size=batch_size, unroll=unroll), self.weights)

    def _backend_model(self):
        if self._model is None:
            if self.backend == "torch":
                from core.models import build_torch, load_canonical

                model = load_canonical(build_torch(self.model_spec), self.weights)
                model.to(_torch_device()).eval()
                self._model = model
            else:
                self._model = self.keras_model()
        return self._model

    def predict(self, X_scaled: np.ndarray) -> np.ndarray:
        """Scaled windows (n, window, n_inputs) -> scaled forecasts (n, horizon, n_targets), in batches."""
        spec = self.model_spec
        X = np.asarray(X_scaled, dtype=np.float32)
        if X.ndim != 3 or X.shape[1:] != (spec.window, spec.n_inputs):
            raise StudioError(f"Windows of shape {X.shape[1:] if X.ndim == 3 else X.shape} do not fit this model, "
                              f"which takes ({spec.window}, {spec.n_inputs}).",
                              "Make the windows with the run's own window settings.")
        if len(X) == 0:
            return np.zeros((0, spec.horizon, spec.n_targets), dtype=np.float32)
        model = self._backend_model()
        if self.backend == "torch" or not hasattr(model, "predict"):  # torch, or an unscored run's torch twin
            import torch

            device = next(model.parameters()).device
            model.eval()
            out = []
            with torch.no_grad():
                for i in range(0, len(X), PREDICT_BATCH):
                    xb = torch.from_numpy(np.ascontiguousarray(X[i:i + PREDICT_BATCH])).to(device)
                    out.append(model(xb).cpu().numpy())
            return np.concatenate(out).astype(np.float32)
        # Chunked, so a strided view of many overlapping windows is never copied whole; model.predict
        # keeps one traced function for every chunk size (predict_on_batch would retrace per shape).
        out = [np.asarray(model.predict(np.ascontiguousarray(X[i:i + PREDICT_CHUNK]),
                                        batch_size=PREDICT_BATCH, verbose=0))
               for i in range(0, len(X), PREDICT_CHUNK)]
        return np.concatenate(out).astype(np.float32)

    # ------------------------------------------------------------ making one
    @classmethod
    def from_training(cls, windows: Any, spec: ModelSpec, config: Any, model: Any, history: list[dict],
                      info: dict, run_dir: str | Path, dataset: Any = None, interval_levels: Any = None,
                      references: bool = True, score: bool = True) -> "Run":
        """Score a freshly trained model on the test part, gather samples, and save the run (``score=False``: only
        the trained model, unscored and unsaved, for a short training whose caller scores it)."""
        from core.models import canonical_weights, load_canonical
        from core.windows import SPLIT_RULE

        info = {**dict(info), "split_rule": SPLIT_RULE}
        run = cls(run_dir=Path(run_dir), dataset=dataset_info(windows, dataset), window_spec=windows.spec,
                  split=windows.split, scaler=windows.scaler, model_spec=spec, train_config=config,
                  weights=canonical_weights(model), history=list(history), metrics={}, samples={}, info=info,
                  created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), _model=model)
        if not score:  # predicts with the torch twin that trained it (Keras traced a function per candidate)
            run._model = model if (twin := torch_twin(model)) is None else load_canonical(twin, run.weights)
            return run  # the twin gets run.weights: a failed departure check zeroed the Keras output layer since
        y_test = run.predict(windows.X("test"))
        y_val = run.predict(windows.X("val")) if windows.count("val") else None
        run.metrics = build_metrics(windows, y_test, y_val, references=references)
        if info.get("naive_equivalent") or info.get("linear_equivalent"):
            from core.metrics import naive_verdict

            run.metrics["verdict"] = naive_verdict(form_choice(spec.target_form, spec.linear_base), run.metrics,
                                                   getattr(config, "naive_backtest", None))
            run.metrics["linear_equivalent" if spec.target_form == "change_linear" else "naive_equivalent"] = True
        run._calibrate(windows, y_val, y_test, interval_levels)
        run.samples, run.info["time_axis"] = samples_of(windows, y_test)
        run.save()
        return run

    def _calibrate(self, windows: Any, y_val: np.ndarray | None, y_test: np.ndarray | None, levels: Any = None) -> None:
        """Bands from the validation predictions already made for the metrics (no extra model call)."""
        from core import intervals

        self.intervals = intervals.from_windows(windows, y_val, y_test, levels)
        self.metrics["intervals"] = self.intervals

    def recalibrate(self, windows: Any, levels: Any) -> dict:
        """Bands at other levels for this run (a model call on the validation and test parts), saved."""
        from core import intervals

        intervals.check_levels(levels)
        y_val = self.predict(windows.X("val")) if windows.count("val") else None
        y_test = self.predict(windows.X("test")) if windows.count("test") else None
        before = (self.intervals, self.metrics.get("intervals"))
        self._calibrate(windows, y_val, y_test, levels)
        try:
            self.save()
        except BaseException:  # the folder kept the old bands: so does the run in memory
            self.intervals = before[0]
            if before[1] is None:
                self.metrics.pop("intervals", None)
            else:
                self.metrics["intervals"] = before[1]
            raise
        return self.intervals

    # ------------------------------------------------------------ files
    def save(self, run_dir: str | Path | None = None) -> Path:
        """Write the run directory atomically (a half-written run never appears)."""
        target = Path(run_dir) if run_dir is not None else self.run_dir
        blobs: dict[str, bytes] = {
            WEIGHTS: _npz_bytes({f"w{i:03d}": np.asarray(w, dtype=np.float32) for i, w in enumerate(self.weights)}),
            "history.json": _dumps(self.history),
            "metrics.json": _dumps(self.metrics),
            "samples.npz": _npz_bytes(self.samples),
        }
        if self.intervals:
            from core.intervals import FILE

            blobs[FILE] = _dumps(self.intervals)
        with atomic_dir(target, "run") as tmp:
            native = self._write_native(tmp)
            for name, data in blobs.items():
                (tmp / name).write_bytes(data)
            checksums = {name: _sha256(data) for name, data in blobs.items()}
            checksums[native] = _sha256((tmp / native).read_bytes())
            (tmp / "run.json").write_bytes(_dumps(seal(json_safe(self._manifest(checksums, native)))))
        self.run_dir = target
        return target

    def _write_native(self, tmp: Path) -> str:
        if self.backend == "torch":
            model = self._backend_model()
            state = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
            (tmp / TORCH_WEIGHTS).write_bytes(_npz_bytes(state))
            return TORCH_WEIGHTS
        model = self._backend_model()
        model.save_weights(str(tmp / KERAS_WEIGHTS))
        return KERAS_WEIGHTS

    def _manifest(self, checksums: dict, native: str) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "kind": "forecast-studio-run",
            "created": self.created,
            "dataset": self.dataset,
            "window_spec": _to_dict(self.window_spec),
            "split": _to_dict(self.split),
            "scaler": _to_dict(self.scaler),
            "model_spec": self.model_spec.to_dict(),
            "train_config": _to_dict(self.train_config),
            "info": self.info,
            "native_weights": native,
            "files": checksums,
            "versions": _versions(self.backend),
        }


def _versions(backend: str) -> dict:
    out = {"numpy": np.__version__}
    try:
        if backend == "torch":
            import torch

            out["torch"] = torch.__version__
        else:
            import keras

            out["keras"] = keras.__version__
    except ImportError as err:
        if from_interrupt(err):  # Ctrl+C while the framework loaded, not a missing one
            raise KeyboardInterrupt from err
    return out


def _torch_device():
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def manifest_digest(manifest: dict) -> str:
    """sha256 of run.json's content without its own ``checksum`` field, in a canonical spelling."""
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    return _sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False,
                              default=_json_default).encode("utf-8"))


def seal(manifest: dict) -> dict:
    """run.json with its own checksum, so an edited spec, scaler or file list is caught like an edited file."""
    return {**manifest, "checksum": manifest_digest(manifest)}


def _check_values(run_dir: Path, manifest: dict, spec: ModelSpec, scaler: Any) -> None:
    """Numbers read from run.json that later code divides by or sizes buffers with."""
    from core.numbers import check_finite, check_number

    fix = "Train the model again (Train page or `python -m studio train`) to write a fresh run."
    where = f"The run at {run_dir}: run.json's"
    check_finite(scaler.center, f"{where} scaler center", fix=fix)
    check_finite(scaler.scale, f"{where} scaler scale", positive=True, fix=fix)
    if len(scaler.center) != len(scaler.columns) or len(scaler.scale) != len(scaler.columns):
        raise _corrupt(run_dir, "run.json's scaler has columns, centers and scales of different lengths")
    limits = DEFAULTS["features"]
    check_number(spec.window, f"{where} window", integer=True, minimum=1, maximum=limits["max_window"], fix=fix)
    check_number(spec.horizon, f"{where} horizon", integer=True, minimum=1, maximum=limits["max_horizon"], fix=fix)
    check_number(spec.n_inputs, f"{where} input count", integer=True, minimum=1, maximum=100_000, fix=fix)
    check_number(spec.n_targets, f"{where} target count", integer=True, minimum=1, maximum=100_000, fix=fix)


# ---------------------------------------------------------------- reading

def _corrupt(path: Path, what: str) -> StudioError:
    return StudioError(f"The run at {path} is damaged: {what}.",
                       "Train the model again (Train page or `python -m studio train`) to write a fresh run.")


def _read_npz(path: Path, data: bytes) -> dict[str, np.ndarray]:
    """Through the one guarded loader: declared shapes x item sizes are checked before anything is allocated."""
    from core.arrays import load_npz

    try:
        return load_npz(data, what=f"The run at {path.parent} is damaged: {path.name}",
                        fix="Train the model again (Train page or `python -m studio train`) to write a fresh run.")
    except StudioError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, KeyError) as e:
        raise _corrupt(path.parent, f"{path.name} is not a readable weights/array file ({e})") from e


def load_run(run_dir: str | Path) -> Run:
    """Read a run directory; StudioError if it is missing, damaged, or from a newer studio."""

    run_dir = Path(run_dir)
    manifest_path = run_dir / "run.json"
    if not manifest_path.is_file():
        raise StudioError(f"No trained run at {run_dir} (run.json is missing).",
                          "Pick the folder that training wrote (its --out), or train a model first.")
    fix = "Train the model again (Train page or `python -m studio train`) to write a fresh run."
    manifest = load_json(manifest_path, f"The run at {run_dir} is damaged: run.json", fix)
    version = manifest.get("format_version")
    if not isinstance(version, int):
        raise _corrupt(run_dir, "run.json has no format_version")
    if version > FORMAT_VERSION:
        raise StudioError(f"The run at {run_dir} was saved by a newer Forecast Studio (format {version}; this one reads up to {FORMAT_VERSION}).",
                          "Update Forecast Studio, or train the model again with this version.")
    try:
        sealed = manifest.get("checksum") == manifest_digest(manifest)
    except (TypeError, ValueError):
        sealed = False
    legacy = version < 2 and "checksum" not in manifest  # written before run.json was sealed
    if not sealed and not legacy:
        raise _corrupt(run_dir, "run.json was changed after training (its own checksum is missing or differs)")
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise _corrupt(run_dir, "run.json lists no files")
    blobs: dict[str, bytes] = {}
    for name, digest in files.items():
        path = run_dir / name
        if not isinstance(name, str) or Path(name).name != name or not path.is_file():
            raise _corrupt(run_dir, f"{name} is missing")
        if path.stat().st_size > budget_bytes():
            raise _corrupt(run_dir, f"{name} is {path.stat().st_size / 2**20:,.0f} MB, over the "
                                    f"{budget_bytes() / 2**20:,.0f} MB a run's file may be")
        data = path.read_bytes()
        if _sha256(data) != digest:
            raise _corrupt(run_dir, f"{name} does not match its checksum (changed or truncated)")
        blobs[name] = data
    missing = [f for f in FILES if f not in blobs]
    if missing:
        raise _corrupt(run_dir, f"run.json does not list {', '.join(missing)}")
    try:
        spec = ModelSpec.from_dict(manifest["model_spec"])
        run = Run(
            run_dir=run_dir,
            dataset=dict(manifest.get("dataset") or {}),
            window_spec=WindowSpec.from_dict(manifest["window_spec"]),
            split=SplitSpec.from_dict(manifest["split"]) if hasattr(SplitSpec, "from_dict") else SplitSpec(**manifest["split"]),
            scaler=Scaler.from_dict(manifest["scaler"]),
            model_spec=spec,
            train_config=TrainConfig.from_dict(manifest["train_config"]),
            weights=[],
            history=load_json(blobs["history.json"], f"The run at {run_dir} is damaged: history.json", fix, kind=list),
            metrics=load_json(blobs["metrics.json"], f"The run at {run_dir} is damaged: metrics.json", fix),
            samples=_read_npz(run_dir / "samples.npz", blobs["samples.npz"]),
            info=dict(manifest.get("info") or {}),
            created=str(manifest.get("created", "")),
            intervals=_read_intervals(run_dir, blobs),
        )
    except StudioError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as e:
        raise _corrupt(run_dir, f"run.json is incomplete ({type(e).__name__}: {e})") from e
    _check_values(run_dir, manifest, spec, run.scaler)
    arrays = _read_npz(run_dir / WEIGHTS, blobs[WEIGHTS])
    keys = sorted(arrays)
    if keys != [f"w{i:03d}" for i in range(len(keys))]:
        raise _corrupt(run_dir, "weights.npz has unexpected entries")
    run.weights = [arrays[k].astype(np.float32) for k in keys]
    if sum(int(w.size) for w in run.weights) != count_params(spec):
        raise _corrupt(run_dir, f"weights.npz holds {sum(int(w.size) for w in run.weights)} values, "
                                f"but the model has {count_params(spec)} parameters")
    if spec.backend == "torch" and TORCH_WEIGHTS in blobs:
        run._model = _torch_from_native(spec, _read_npz(run_dir / TORCH_WEIGHTS, blobs[TORCH_WEIGHTS]), run_dir)
    return run


def _read_intervals(run_dir: Path, blobs: dict[str, bytes]) -> dict:
    """intervals.json when the run has one (checked by its checksum like every file); {} for an older run."""
    from core.intervals import FILE

    if FILE not in blobs:
        return {}
    try:
        data = json.loads(blobs[FILE])
    except (ValueError, UnicodeDecodeError) as e:
        raise _corrupt(run_dir, f"{FILE} is not valid JSON ({e})") from e
    if not isinstance(data, dict):
        raise _corrupt(run_dir, f"{FILE} does not hold an intervals record")
    return data


def _torch_from_native(spec: ModelSpec, state: dict[str, np.ndarray], run_dir: Path):
    import torch

    from core.models import build_torch

    model = build_torch(spec)
    try:
        model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()})
    except RuntimeError as e:
        raise _corrupt(run_dir, f"{TORCH_WEIGHTS} does not fit the model ({str(e).splitlines()[0]})") from e
    return model.to(_torch_device()).eval()
