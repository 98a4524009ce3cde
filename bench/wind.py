"""Wind on the microphone: how much it costs on the validation folds, so that a recipe may be chosen by it.

    python bench/wind.py --run checkpoints/logmel-cnn-taught-5904b43a2828 --data ../shared/data/esc10

Each fold model hears its own validation fold's clips (16 kHz, as prepared for training) as they are and with
wind over them at 10 and at 0 dB SNR (`bench.robustness.wind_noise`: brown noise, as the robustness table's rows,
but a gust of its own for each clip: clip i gets seed i, the same in every run).
Validation accuracy may be used to choose; the test fold's, through the ensemble, is reported beside it.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import measure_ways, under_noise  # noqa: E402
from bench.robustness import wind_noise  # noqa: E402


def in_wind(waves: torch.Tensor, sr: int, snr_db: float) -> torch.Tensor:
    """Clip i of `waves` with gust i over it at `snr_db` against the clip's own level."""
    return under_noise(waves, snr_db, lambda n, i: wind_noise(n, sr, seed=i))


WAYS = {"as is": None,
        "wind, 10 dB SNR": lambda w, prep: in_wind(w, prep.sample_rate, 10.0),
        "wind, 0 dB SNR": lambda w, prep: in_wind(w, prep.sample_rate, 0.0)}

if __name__ == "__main__":
    measure_ways("wind", WAYS)
