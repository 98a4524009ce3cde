"""A microphone that is not a studio's: how much its frequency response costs, on the validation folds, so that
a recipe may be chosen by it.
    python bench/mic.py --run checkpoints/logmel-cnn-taught-5904b43a2828 --data ../shared/data/esc10
Each fold model hears its own validation fold's clips (16 kHz, as prepared for training) as they are, without
their lows (a phone's low cut: a second-order high-pass at 200 Hz, as phones filter wind and handling noise) and
without their highs (a cheap microphone or a small speaker in the chain: a second-order low-pass at 3 kHz),
each torchaudio's biquad. Validation accuracy may be used to choose (`--hide-test` shows nothing else); the test
fold's, through the ensemble, is reported beside it.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torchaudio.functional as AF

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import measure_ways  # noqa: E402

WAYS = {"as is": None,
        "high-pass 200 Hz": lambda w, prep: AF.highpass_biquad(w, prep.sample_rate, 200.0),
        "low-pass 3 kHz": lambda w, prep: AF.lowpass_biquad(w, prep.sample_rate, 3000.0)}

if __name__ == "__main__":
    measure_ways("mic", WAYS)
