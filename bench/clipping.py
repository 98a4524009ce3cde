"""An overdriven recording (a phone's input clipping on a loud sound close by): how much it costs, on the
validation folds, so that a recipe may be chosen by it.

    python bench/clipping.py --run checkpoints/logmel-cnn-taught-5904b43a2828 --data ../shared/data/esc10

Each fold model hears its own validation fold's clips (16 kHz, as prepared for training) as they are and
with their peak raised 10 or 20 dB over full scale and clipped (`augment.overdrive` at probability 1).
Validation accuracy may be used to choose; the test fold's, through the ensemble, is reported beside it.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audioclf.augment import overdrive  # noqa: E402
from bench import measure_ways  # noqa: E402

WAYS = {"as is": None,
        "clipped, 10 dB over": lambda w, prep: overdrive(w, 1.0, (10.0, 10.0)),
        "clipped, 20 dB over": lambda w, prep: overdrive(w, 1.0, (20.0, 20.0))}

if __name__ == "__main__":
    measure_ways("clipping", WAYS)
