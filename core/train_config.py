"""The training settings a run was trained with (epochs, batch, learning rate, patience, seed), checked.

Its own module so that ``core.runs`` (which records it) and ``core.training`` (which uses it and
returns a ``Run``) both depend on it, never on each other both ways."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

from core.config import DEFAULTS
from core.errors import StudioError


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = DEFAULTS["train"]["epochs"]
    batch_size: int = DEFAULTS["train"]["batch_size"]
    learning_rate: float = DEFAULTS["train"]["learning_rate"]
    patience: int = DEFAULTS["train"]["patience"]
    seed: int = DEFAULTS["train"]["seed"]
    # Issue 34: None trains as usual. A fraction starts a change-form model at the naive forecast (its output
    # layer zero: the last value, or the last season, exactly) and keeps a trained epoch only when its validation
    # loss is below (1 - naive_margin) x the naive's; otherwise the run stays the naive forecast.
    naive_margin: float | None = None
    # Set when a rolling-origin backtest (core.backtest) overruled the validation part: what it found, in words,
    # so the run's verdict says why it stays at the naive forecast though validation favoured a network.
    naive_backtest: str | None = None

    def validate(self) -> "TrainConfig":
        limits = DEFAULTS["train"]
        if not isinstance(self.epochs, (int, np.integer)) or not 1 <= self.epochs <= limits["max_epochs"]:
            raise StudioError(f"Epochs must be between 1 and {limits['max_epochs']}; got {self.epochs}.",
                              "Set epochs to a whole number such as 20; early stopping ends sooner when it stops helping.")
        if not isinstance(self.batch_size, (int, np.integer)) or not 1 <= self.batch_size <= limits["max_batch_size"]:
            raise StudioError(f"Batch size must be between 1 and {limits['max_batch_size']}; got {self.batch_size}.",
                              "Use 32 unless you have a reason; smaller batches learn noisier, larger ones slower per epoch.")
        lr = float(self.learning_rate)
        if not math.isfinite(lr) or not 0 < lr <= 10:
            raise StudioError(f"The learning rate must be a positive number of at most 10; got {self.learning_rate}.",
                              "Use 0.001 (1e-3); try 1e-4 if the loss jumps around or becomes NaN.")
        if not isinstance(self.patience, (int, np.integer)) or self.patience < 0:
            raise StudioError(f"Patience must be 0 or more epochs; got {self.patience}.",
                              "Use 5: training stops after 5 epochs without a better validation loss (0 turns early stopping off).")
        if not isinstance(self.seed, (int, np.integer)) or not 0 <= self.seed < 2 ** 31:
            raise StudioError(f"The seed must be a whole number from 0 to 2147483647; got {self.seed}.",
                              "Use any small whole number, e.g. 0; the same seed gives the same model.")
        if self.naive_margin is not None:
            m = float(self.naive_margin)
            if not math.isfinite(m) or not 0 <= m < 1:
                raise StudioError(f"The naive margin must be a fraction from 0 to below 1; got {self.naive_margin}.",
                                  "Leave it unset unless the model should start at the naive forecast (e.g. 0.05).")
        if self.naive_backtest is not None and not isinstance(self.naive_backtest, str):
            raise StudioError(f"The naive backtest note must be text; got {type(self.naive_backtest).__name__}.",
                              "Leave it unset; the default's search sets it.")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in d.items() if k in known}).validate()
        except TypeError as e:
            raise StudioError(f"The saved training settings are unreadable ({e}).",
                              "Choose the training settings again on the Model page.") from e
