"""A steady hiss under the sound (a phone's own noise floor, a fan, far traffic): how much it costs on the
validation folds, so that a recipe may be chosen by it.

    python bench/hiss.py --run checkpoints/logmel-cnn-taught-5904b43a2828 --data ../shared/data/esc10

Each fold model hears its own validation fold's clips (16 kHz, as prepared for training) as they are and with
white or pink noise (power flat, or falling 3 dB an octave, nothing below 20 Hz) at 20 and 10 dB SNR against the
clip's own level; clip i gets noise of seed i, the same in every run. Validation accuracy may be used to choose;
the test fold's, through the ensemble, is reported beside it.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import measure_ways, under_noise  # noqa: E402


def hiss_noise(n: int, sr: int, slope: float, seed: int) -> np.ndarray:
    """n samples of noise whose power falls as 1/f^slope (0 white, 1 pink), nothing below 20 Hz, RMS 1."""
    rng = np.random.default_rng(seed)
    freqs = np.fft.rfftfreq(n, 1 / sr)
    shape = np.where(freqs >= 20.0, np.maximum(freqs, 20.0) ** (-slope / 2), 0.0)
    noise = np.fft.irfft((rng.standard_normal(len(freqs)) + 1j * rng.standard_normal(len(freqs))) * shape, n=n)
    return noise / (np.sqrt(np.mean(noise ** 2)) + 1e-12)


def with_hiss(waves: torch.Tensor, sr: int, slope: float, snr_db: float) -> torch.Tensor:
    """Clip i of `waves` with noise of seed i under it at `snr_db`."""
    return under_noise(waves, snr_db, lambda n, i: hiss_noise(n, sr, slope, i))


WAYS = {"as is": None,
        **{f"{name} noise, {snr:.0f} dB SNR": (lambda w, prep, s=slope, r=snr: with_hiss(w, prep.sample_rate, s, r))
           for name, slope in (("white", 0.0), ("pink", 1.0)) for snr in (20.0, 10.0)}}

if __name__ == "__main__":
    measure_ways("hiss", WAYS)
