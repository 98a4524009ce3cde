"""Another dog, another clock: the same kind of sound a little higher or lower and faster or slower. How much
that costs, on the validation folds, so that a recipe may be chosen by it.

    python bench/speed.py --run checkpoints/logmel-cnn-taught-5904b43a2828 --data ../shared/data/esc10

Each fold model hears its own validation fold's clips (16 kHz, as prepared for training) as they are and played
about three semitones lower and slower (0.84x: a clip of 5 s lasts 5.95 s) and higher and faster (1.19x: 4.2 s),
as a tape played at another speed (torchaudio's band-limited resampling, the rate kept). Validation accuracy may be
used to choose (`--hide-test` shows nothing else); the test fold's, through the ensemble, is reported beside it.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torchaudio.functional as AF

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import measure_ways  # noqa: E402

WAYS = {"as is": None,
        "0.84x (3 semitones down)": lambda w, prep: AF.resample(w, 84, 100),
        "1.19x (3 semitones up)": lambda w, prep: AF.resample(w, 119, 100)}

if __name__ == "__main__":
    measure_ways("speed", WAYS)
