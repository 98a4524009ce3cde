"""Configs: frozen dataclasses that validate themselves, serialise to JSON and hash to a cache key.

`PrepConfig` says how a clip becomes a model input; `TrainConfig` says how a set of fold models is
trained. `TrainConfig.key()` names the checkpoint entry, so any change that can change the result
(model, optimiser, epochs, seed, preprocessing, data) gives a new entry. A bad value raises
ConfigError naming the field. `TrainConfig.to_args()` is the command line that trains it, which is
how the app's job launcher starts training.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from .augment import AUGMENTS
from .errors import ConfigError
from .models import MODELS, model_config

# How the report trains (Adam at a constant rate on whole clips, cross-entropy, float32): the default of
# every training setting that a model family (its registry `training`) does not set otherwise.
REPORT_TRAINING: dict[str, Any] = {"epochs": 100, "weight_decay": 0.0, "optimizer": "adam", "schedule": "constant",
                                   "label_smoothing": 0.0, "augment": "none", "precision": "fp32", "ema": 0.0}
CHOICES = {"optimizer": ("adam", "adamw"), "schedule": ("constant", "onecycle"), "precision": ("fp32", "bf16")}


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

    def __post_init__(self) -> None:
        if not 1000 <= self.sample_rate <= 192000:
            raise ConfigError("sample_rate", f"{self.sample_rate} Hz is outside 1000-192000")
        if not 0 < self.duration <= 600:
            raise ConfigError("duration", f"{self.duration} s must be above 0 and at most 600")
        if self.hop < 1 or self.window < 1:
            raise ConfigError("hop" if self.hop < 1 else "window", f"window ({self.window}) and hop ({self.hop}) "
                              "must be at least 1 sample")
        if self.window > self.num_samples:
            raise ConfigError("window", f"{self.window} samples do not fit in a clip of {self.num_samples} samples")

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
    while the others train. The model's own settings (its registry `Option`s) are `heads` and
    `options`: `heads` is a field of its own because the report's runs were keyed with it.
    """

    model: str = "cnn"
    heads: int | None = None  # None: the model's default (4 for the report's transformer)
    lr: float | None = None  # None: the model family's default (registry: 0.01 CNN, 0.001 transformer)
    epochs: int | None = None  # None here and below: the family's (registry `training`), else the report's
    batch_size: int = 32
    weight_decay: float | None = None
    seed: int = 0
    test_fold: int = 1
    cv_folds: tuple[int, ...] = (2, 3, 4, 5)
    prep: PrepConfig = field(default_factory=PrepConfig)
    dataset_id: str = ""
    options: tuple[tuple[str, int], ...] = ()  # the model's other options, sorted (name, value) pairs
    optimizer: str | None = None        # adam | adamw
    schedule: str | None = None         # constant | onecycle (per step, peak `lr`)
    label_smoothing: float | None = None
    augment: str | None = None          # a preset of audioclf.augment.AUGMENTS
    precision: str | None = None        # fp32 | bf16 (autocast for the forward pass)
    ema: float | None = None            # 0: off; else the decay per step of a moving average of the weights,
                                        # which is what is validated and saved (audioclf.train)
    init: str = ""  # a run whose trunk each fold model starts from (audioclf.teach); "" = from scratch
    start_weight: float = 0.0  # taught runs: 0, the best epoch by validation (the start competing); else each fold
                               # model is its last epoch's weights averaged with its start's, this much of the start

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ConfigError("model", f"unknown model {self.model!r}; choose one of {', '.join(MODELS)}")
        spec = MODELS[self.model]
        # Normalise so that equivalent settings hash to the same entry.
        if self.lr is None:
            object.__setattr__(self, "lr", spec.lr)
        for name, default in REPORT_TRAINING.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, spec.training.get(name, default))
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(name, f"{getattr(self, name)!r} is not one of {', '.join(allowed)}")
        if self.augment not in AUGMENTS:
            raise ConfigError("augment", f"{self.augment!r} is not one of {', '.join(AUGMENTS)}")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError("label_smoothing", f"{self.label_smoothing} must be in [0, 1)")
        if not 0 <= self.ema < 1:
            raise ConfigError("ema", f"{self.ema} must be in [0, 1) (0: off)")
        if not 0 <= self.start_weight < 1:
            raise ConfigError("start_weight", f"{self.start_weight} must be in [0, 1) (0: off)")
        if self.start_weight and not self.init:
            raise ConfigError("start_weight", "only a taught run (--from RUN) has a start to average with")
        options = dict(self.options)
        if "heads" in spec.options and self.heads is not None:
            options.setdefault("heads", self.heads)
        for name, opt in spec.options.items():
            value = options.setdefault(name, opt.default)
            if value not in opt.choices:
                raise ConfigError(name, f"{value} {opt.invalid}; choose one of {', '.join(map(str, opt.choices))}")
        unknown = sorted(set(options) - set(spec.options))
        if unknown:
            raise ConfigError(unknown[0], f"not an option of the {self.model} model "
                                          f"(it has: {', '.join(spec.options) or 'none'})")
        object.__setattr__(self, "heads", options.pop("heads", 0))
        # An option at its default is left out, so that a run keeps its key when its model gains an option.
        object.__setattr__(self, "options", tuple(sorted((k, int(v)) for k, v in options.items()
                                                         if v != spec.options[k].default)))
        object.__setattr__(self, "cv_folds", tuple(int(f) for f in self.cv_folds))
        for name in ("epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(name, f"must be at least 1 (got {getattr(self, name)})")
        if not self.lr > 0 or self.weight_decay < 0:
            raise ConfigError("lr" if not self.lr > 0 else "weight_decay",
                              f"lr ({self.lr}) must be above 0 and weight_decay ({self.weight_decay}) not negative")
        if self.test_fold in self.cv_folds:
            raise ConfigError("test_fold", f"test fold {self.test_fold} is also a cross-validation fold")
        if len(set(self.cv_folds)) < 2:
            raise ConfigError("cv_folds", "cross-validation needs at least two folds")

    @property
    def model_options(self) -> dict[str, int]:
        """The model's options by name, heads included where the model has them, defaults filled in."""
        spec = MODELS[self.model]
        return {**{name: opt.default for name, opt in spec.options.items()},
                **({"heads": self.heads} if "heads" in spec.options else {}), **dict(self.options)}

    def model_config(self, n_classes: int):
        """The model's own config (a `ModelConfig` for the report's models)."""
        return model_config(self.model, n_classes, **self.model_options)

    def check_folds(self, available: tuple[int, ...] | list[int], train_now: tuple[int, ...] | list[int] = (),
                    need_test: bool = True) -> None:
        """ConfigError unless the data has the test (where `need_test`) and cross-validation folds, and
        `train_now` are cross-validation folds. A small class folder may have no test fold (see
        `audioclf.teach.fit_folds`): its run is then judged by cross-validation alone."""
        missing = [f for f in ((self.test_fold,) if need_test else ()) + self.cv_folds if f not in available]
        if missing:
            raise ConfigError("cv_folds", f"fold(s) {missing} not in the dataset (it has folds {list(available)})")
        unknown = [f for f in train_now if f not in self.cv_folds]
        if unknown:
            raise ConfigError("folds", f"{unknown} are not cross-validation folds {list(self.cv_folds)}")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["cv_folds"] = list(self.cv_folds)
        if self.options:
            d["options"] = dict(self.options)
        else:
            del d["options"]  # absent when empty, so the report's runs keep their keys
        for name in ("optimizer", "schedule", "label_smoothing", "augment", "precision", "ema"):
            if d[name] == REPORT_TRAINING[name]:
                del d[name]  # likewise: the report's training settings are implied
        if not self.init:
            del d["init"]
        if not self.start_weight:
            del d["start_weight"]  # absent when off, so that runs from before it keep their keys
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, indent=2)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        d = dict(d)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(sorted(unknown)[0], "unknown config field")
        try:
            d["prep"] = PrepConfig(**d.get("prep", {}))
        except TypeError as e:
            raise ConfigError("prep", str(e)) from None
        d["cv_folds"] = tuple(d.get("cv_folds", (2, 3, 4, 5)))
        d["options"] = tuple(sorted(dict(d.get("options", {})).items()))
        d.setdefault("ema", 0.0)  # absent: saved before moving averages existed, so trained without one
        return cls(**d)

    def to_args(self) -> list[str]:
        """The `python -m audioclf train` flags that give this config (the data's flags aside)."""
        args = ["--model", self.model, "--lr", repr(self.lr), "--epochs", str(self.epochs),
                "--batch-size", str(self.batch_size), "--weight-decay", repr(self.weight_decay),
                "--seed", str(self.seed), "--test-fold", str(self.test_fold),
                "--cv-folds", *map(str, self.cv_folds),
                "--sample-rate", str(self.prep.sample_rate), "--duration", repr(self.prep.duration),
                "--window", str(self.prep.window), "--hop", str(self.prep.hop),
                "--optimizer", self.optimizer, "--schedule", self.schedule,
                "--label-smoothing", repr(self.label_smoothing), "--augment", self.augment,
                "--precision", self.precision, "--ema", repr(self.ema)]
        for name, value in self.model_options.items():
            args += [f"--{name.replace('_', '-')}", str(value)]
        if self.init:
            args += ["--from", self.init]
        if self.start_weight:
            args += ["--start-weight", repr(self.start_weight)]
        return args

    def key(self) -> str:
        """Short hash of the canonical JSON: the name of this config's checkpoint entry."""
        canon = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()[:12]

    @property
    def label(self) -> str:
        """Human name, e.g. 'cnn', 'transformer-4h', or 'logmel-cnn-taught' for a run taught from
        another run's trunk (`init`), so that it is listed beside, not instead of, one from scratch."""
        return MODELS[self.model].label(self.model, self.model_options) + ("-taught" if self.init else "")
