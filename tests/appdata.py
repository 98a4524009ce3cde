"""A synthetic dataset and a small store of trained runs for the app tests, built once per test session.

30 one-second clips (3 classes separable by pitch, 2 per class and fold), trained through the engine for
1 epoch on validation folds 2 and 3: a CNN and a 4-head transformer on both folds, 1- and 2-head
transformers on fold 2 only. The configs are the ones the app's Train form makes for the same settings
(epochs 1, cross-validation folds 2 and 3), so launching those from the app finds them cached.
"""
from __future__ import annotations

import fcntl
from dataclasses import dataclass
from pathlib import Path

from conftest import make_class_folders, tone

RUNS = (("cnn", 4, (2, 3)), ("transformer", 4, (2, 3)), ("transformer", 1, (2,)), ("transformer", 2, (2,)))
CLASSES = ("low", "mid", "high")


@dataclass(frozen=True)
class AppData:
    data: Path         # folder-per-class dataset
    checkpoints: Path  # the trained runs (treat as read-only)
    cache: Path        # prepared-audio cache
    runs: tuple[Path, ...]

    def env(self, data: bool = True, runs: bool = True, empty_store: Path | None = None) -> dict[str, str]:
        out = {"AUDIOCLF_CACHE": str(self.cache)}
        if data:
            out["AUDIOCLF_DATA"] = str(self.data)
        out["AUDIOCLF_CHECKPOINTS"] = str(self.checkpoints if runs else empty_store)
        return out


def build(base: Path) -> AppData:
    """Build (or reuse) the data and runs under `base`."""
    from audioclf.config import TrainConfig
    from audioclf.data import open_dataset
    from audioclf.prepare import prepare
    from audioclf.train import train_run

    base.mkdir(parents=True, exist_ok=True)
    data, checkpoints, cache = base / "data", base / "checkpoints", base / "cache"
    with open(base / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not data.is_dir():
            make_class_folders(data, CLASSES, per_class=10)
        ds = open_dataset(data)
        runs = []
        for model, heads, folds in RUNS:
            config = TrainConfig(model=model, heads=heads, epochs=1, cv_folds=(2, 3), dataset_id=ds.fingerprint())
            runs.append(train_run(config, prepare(ds, config.prep, root=cache), folds=list(folds), root=checkpoints,
                                  show_bar=False))  # cached after the first build
    return AppData(data, checkpoints, cache, tuple(runs))


def wav_bytes(freq: float = 880.0, seconds: float = 1.0, sr: int = 22050, channels: int = 1) -> bytes:
    """A synthetic clip encoded as wav in memory."""
    import io

    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, tone(freq, seconds, sr, channels=channels), sr, format="WAV")
    return buf.getvalue()
