"""Configs: frozen dataclasses that serialise to JSON and hash to a cache key.

`PrepConfig` says how a clip becomes a model input; `TrainConfig` says how a set of fold models is
trained. `TrainConfig.key()` names the checkpoint entry, so any change that can change the result
(model, optimiser, epochs, seed, preprocessing, data) gives a new entry.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

# The report's learning rates; a config with lr=None takes its family's value.
DEFAULT_LR = {"cnn": 0.01, "transformer": 0.001}

@dataclass(frozen=True)
class PrepConfig:
    """Decoding and framing, with the report's values as defaults.

    A clip is resampled to `sample_rate`, cropped or zero-padded to `duration` seconds, then cut into
    windows of `window` samples every `hop` samples that are stacked end to end: 5 s at 16 kHz gives
    9 windows of 16000 and an input of shape (1, 144000).
    """

    sample_rate: int = 16000
    duration: float = 5.0
    window: int = 16000
    hop: int = 8000

    @property
    def num_samples(self) -> int:
        return int(round(self.sample_rate * self.duration))

    @property
    def num_windows(self) -> int:
        return 1 + (self.num_samples - self.window) // self.hop

    @property
    def input_length(self) -> int:
        return self.num_windows * self.window


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a cross-validated training run.

    `dataset_id` is the data's fingerprint (see `audioclf.data.Dataset.fingerprint`). `test_fold` is
    never trained on nor used for model selection; each of `cv_folds` is the validation fold once
    while the others train.
    """

    model: str = "cnn"
    heads: int = 4
    lr: float | None = None  # None: the model family's default (0.01 CNN, 0.001 transformer)
    epochs: int = 100
    batch_size: int = 32
    weight_decay: float = 0.0
    seed: int = 0
    test_fold: int = 1
    cv_folds: tuple[int, ...] = (2, 3, 4, 5)
    prep: PrepConfig = field(default_factory=PrepConfig)
    dataset_id: str = ""

    def __post_init__(self) -> None:
        # Normalise so that equivalent settings hash to the same entry.
        if self.lr is None:
            object.__setattr__(self, "lr", DEFAULT_LR.get(self.model, 0.001))
        if self.model != "transformer":
            object.__setattr__(self, "heads", 0)
        object.__setattr__(self, "cv_folds", tuple(int(f) for f in self.cv_folds))
        if self.test_fold in self.cv_folds:
            raise ValueError(f"test fold {self.test_fold} is also a cross-validation fold")
        if len(self.cv_folds) < 2:
            raise ValueError("cross-validation needs at least two folds")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["cv_folds"] = list(self.cv_folds)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, indent=2)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        d = dict(d)
        d["prep"] = PrepConfig(**d.get("prep", {}))
        d["cv_folds"] = tuple(d.get("cv_folds", (2, 3, 4, 5)))
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown config field(s): {', '.join(sorted(unknown))}")
        return cls(**d)

    def key(self) -> str:
        """Short hash of the canonical JSON: the name of this config's checkpoint entry."""
        canon = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()[:12]

    @property
    def label(self) -> str:
        """Human name, e.g. 'cnn' or 'transformer-4h'."""
        return f"{self.model}-{self.heads}h" if self.model == "transformer" else self.model
