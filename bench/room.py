"""A recording made indoors (reverberation): how much it costs, on the validation folds, so that a recipe may
be chosen by it.

    python bench/room.py --run checkpoints/logmel-cnn-taught-5904b43a2828 --data ../shared/data/esc10

Each fold model hears its own validation fold's clips (16 kHz, as prepared for training) as they are and
as heard in a room and a hall (`bench.robustness.reverberant`: one synthetic room response each,
reverberation time 0.4 s and 1.2 s, the same rooms as the robustness table's rows).
Validation accuracy may be used to choose; the test fold's, through the ensemble, is reported beside it.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import measure_ways  # noqa: E402
from bench.robustness import reverberant  # noqa: E402


def in_room(waves: torch.Tensor, sr: int, rt60: float) -> torch.Tensor:
    return torch.stack([torch.from_numpy(reverberant(w.numpy(), sr, rt60)) for w in waves])


WAYS = {"as is": None,
        "room, RT60 0.4 s": lambda w, prep: in_room(w, prep.sample_rate, 0.4),
        "hall, RT60 1.2 s": lambda w, prep: in_room(w, prep.sample_rate, 1.2)}

if __name__ == "__main__":
    measure_ways("room", WAYS)
