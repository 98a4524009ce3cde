"""Classify recordings with a run's fold models and their ensemble (mean of probabilities)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import store
from .audio import load_audio
from .config import TrainConfig
from .features import fit_length, frame, waveform


@dataclass(frozen=True)
class FoldEnsemble:
    """The fold models of one run, in eval mode, with the classes in probability-column order."""

    config: TrainConfig
    classes_: tuple[str, ...]
    folds: tuple[int, ...]
    models: tuple[torch.nn.Module, ...]

    @property
    def label(self) -> str:
        return self.config.label


def load_ensemble(run: Path, which: str = "best", device: torch.device | str = "cpu") -> FoldEnsemble:
    if not (run / "config.json").is_file():
        raise FileNotFoundError(f"{run}: not a run folder (no config.json)")
    config = store.load_config(run)
    folds = tuple(f for f in config.cv_folds if (run / f"fold{f}" / f"{which}.pt").is_file())
    if not folds:
        raise FileNotFoundError(f"{run}: no finished fold models ({which}.pt) in this run")
    models = tuple(store.load_model(run / f"fold{f}" / f"{which}.pt", device) for f in folds)
    classes = tuple(store.load_torch_meta(run / f"fold{folds[0]}" / f"{which}.pt")["classes"])
    return FoldEnsemble(config, classes, folds, models)


@torch.inference_mode()
def predict_waves(ens: FoldEnsemble, waves: torch.Tensor) -> dict[str, np.ndarray]:
    """Probabilities for waveforms (N, samples) at the model rate: one (N, C) array per fold model
    (keys 'fold2', ...) and their mean under 'ensemble'."""
    device = next(ens.models[0].parameters()).device
    x = frame(waves.to(device), ens.config.prep)  # (N, 1, 144000)
    out = {f"fold{f}": m(x).softmax(1).float().cpu().numpy() for f, m in zip(ens.folds, ens.models)}
    out["ensemble"] = np.mean(list(out.values()), axis=0)
    return out


def segments(wave: torch.Tensor, n: int, hop: int) -> tuple[torch.Tensor, np.ndarray]:
    """Cut a long waveform into clips of n samples every hop samples (the last zero-padded).
    Returns (S, n) clips and their start offsets in samples."""
    starts = np.arange(0, max(len(wave) - n, 0) + 1, hop)
    if len(wave) - (starts[-1] + n) > n // 5:  # cover a tail of over a fifth of a clip
        starts = np.append(starts, starts[-1] + hop)
    return torch.stack([fit_length(wave[s:s + n], n) for s in starts]), starts


def predict_audio(ens: FoldEnsemble, data: np.ndarray, sr: int, hop_seconds: float = 2.5) -> dict:
    """Classify a decoded recording (channels, samples) at any rate and length.

    The whole clip result uses the first `duration` seconds, as training did, when the clip is that
    long or shorter; a longer one is also classified window by window ('over_time') and its overall
    probabilities are the mean over those windows.
    """
    prep = ens.config.prep
    full = waveform(data, sr, prep, crop=False)  # (samples,) at the model rate
    clips, starts = segments(full, prep.num_samples, int(hop_seconds * prep.sample_rate))
    probs = predict_waves(ens, clips)
    result = {"classes": list(ens.classes_), "duration_s": len(full) / prep.sample_rate,
              "per_model": {k: v.mean(0) for k, v in probs.items() if k != "ensemble"},
              "ensemble": probs["ensemble"].mean(0)}
    if len(clips) > 1:
        result["over_time"] = {"start_s": (starts / prep.sample_rate).tolist(), "ensemble": probs["ensemble"]}
    return result


def predict_file(ens: FoldEnsemble, source, name: str | None = None, hop_seconds: float = 2.5) -> dict:
    data, sr = load_audio(source, name=name)
    return predict_audio(ens, data, sr, hop_seconds)


def top_k(proba: np.ndarray, classes: list[str] | tuple[str, ...], k: int = 3) -> list[tuple[str, float]]:
    order = np.argsort(proba)[::-1][:k]
    return [(classes[i], float(proba[i])) for i in order]
