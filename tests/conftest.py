"""Shared fixtures: an isolated store and cache per test, synthetic clips, the real ESC-10 if present."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audioclf.config import PrepConfig

# A small preprocessing for fast tests: 1 s at 8 kHz, three 0.5 s windows with 50 % overlap.
TINY_PREP = PrepConfig(sample_rate=8000, duration=1.0, window=4000, hop=2000)


@pytest.fixture(autouse=True)
def isolated_store(tmp_path_factory, monkeypatch):
    """Every test gets its own checkpoint store and prepared-data cache."""
    base = tmp_path_factory.mktemp("store")
    monkeypatch.setenv("AUDIOCLF_CHECKPOINTS", str(base / "checkpoints"))
    monkeypatch.setenv("AUDIOCLF_CACHE", str(base / "cache"))
    return base


def tone(freq: float, seconds: float, sr: int, seed: int = 0, channels: int = 1) -> np.ndarray:
    """A sine at `freq` plus a little noise, (samples,) or (samples, channels)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    y = 0.5 * np.sin(2 * np.pi * freq * t) + 0.05 * rng.standard_normal(len(t))
    y = y.astype(np.float32)
    return np.stack([y] * channels, axis=1) if channels > 1 else y


def write_clip(path: Path, freq: float, seconds: float = 1.0, sr: int = 8000, seed: int = 0,
               channels: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, tone(freq, seconds, sr, seed, channels), sr)
    return path


def make_class_folders(root: Path, classes=("low", "mid", "high"), per_class: int = 10,
                       seconds: float = 1.0, sr: int = 8000) -> Path:
    """A folder-per-class dataset whose classes are separable by pitch."""
    freqs = {"low": 220.0, "mid": 880.0, "high": 2500.0}
    for ci, name in enumerate(classes):
        for i in range(per_class):
            write_clip(root / name / f"{name}_{i:02d}.wav", freqs.get(name, 300.0 * (ci + 1)) * (1 + 0.02 * i),
                       seconds, sr, seed=ci * 100 + i)
    return root


@pytest.fixture
def tiny_dataset_dir(tmp_path) -> Path:
    return make_class_folders(tmp_path / "tiny")



def stopped_after_epoch(monkeypatch, epoch: int, train) -> None:
    """Call `train()` with training stopped after `epoch` (a KeyboardInterrupt once that epoch is saved, as Ctrl-C or
    Cancel would stop it), then let training run as usual again."""
    from audioclf.train import Progress

    real = Progress.update

    def stop(self, **changes):
        real(self, **changes)
        if changes.get("epoch") == epoch:
            raise KeyboardInterrupt

    monkeypatch.setattr(Progress, "update", stop)
    with pytest.raises(KeyboardInterrupt):
        train()
    monkeypatch.setattr(Progress, "update", real)

def real_data(env: str, name: str) -> Path:
    """A real dataset in ESC-50 layout from $`env`, else ../shared/data/`name`; the test is skipped where
    it is absent."""
    path = Path(os.environ.get(env) or Path(__file__).resolve().parents[2] / "shared" / "data" / name)
    if not (path / "meta" / "esc50.csv").is_file():
        pytest.skip(f"real {name.upper()} not found (set {env})")
    return path


@pytest.fixture
def esc10_dir() -> Path:
    """The real ESC-10 ($AUDIOCLF_ESC10)."""
    return real_data("AUDIOCLF_ESC10", "esc10")


@pytest.fixture
def esc50_dir() -> Path:
    """The real ESC-50 at 16 kHz ($AUDIOCLF_ESC50)."""
    return real_data("AUDIOCLF_ESC50", "esc50")
