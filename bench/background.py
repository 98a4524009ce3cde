"""Another sound underneath: how much it costs on the validation folds, so that a recipe may be chosen by it.

    python bench/background.py --run checkpoints/logmel-cnn-taught-5904b43a2828 --data ../shared/data/esc10 \
        --esc50 ../shared/data/esc50

Each fold model hears its own validation fold's clips (16 kHz, as prepared for training) as they are and with
another sound mixed in underneath at 10 and at 0 dB SNR (`bench.robustness.with_background`, as the
robustness table's rows). The other sounds are ESC-50's fold-1 clips of the 40 classes that are not ESC-10's,
which no model of the chain ever trained on (ESC-50 runs test on fold 1); clip i of a fold gets the same one in
every run. Validation accuracy may be used to choose; the test fold's, through the ensemble, is reported beside it.
"""
from __future__ import annotations

import functools
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import measure_ways, run_parser  # noqa: E402
from bench.robustness import with_background  # noqa: E402


def others(esc50: Path, sr: int) -> torch.Tensor:
    """ESC-50's fold-1 clips of the classes ESC-10 does not have, (N, samples) at `sr`."""
    from audioclf.config import PrepConfig
    from audioclf.data import ESC10_CLASSES, open_dataset
    from audioclf.prepare import prepare

    esc = prepare(open_dataset(esc50, "esc50"), PrepConfig(sample_rate=sr))
    keep = [i for i, (label, fold) in enumerate(zip(esc.labels.tolist(), esc.folds.tolist()))
            if fold == 1 and esc.classes[label] not in ESC10_CLASSES]
    return esc.waves[keep]


def underneath(waves: torch.Tensor, pool: torch.Tensor, snr_db: float) -> torch.Tensor:
    """Clip i of `waves` with clip 7i (mod N) of `pool` under it at `snr_db`."""
    return torch.stack([torch.from_numpy(with_background(w.numpy(), 0, pool[(7 * i) % len(pool)].numpy(), snr_db))
                        for i, w in enumerate(waves)]).to(waves.dtype)


def main() -> None:
    ap = run_parser("background", hide_test=True)
    ap.add_argument("--esc50", type=Path, required=True, help="ESC-50 folder: the other sounds")
    args = ap.parse_args()
    pool = functools.cache(lambda sr: others(args.esc50, sr))  # decoded once, at the rate of the run's clips

    def at(snr_db: float):
        return lambda w, prep: underneath(w, pool(prep.sample_rate), snr_db)

    measure_ways("background", {"as is": None, "+ other sound, 10 dB SNR": at(10.0),
                                "+ other sound, 0 dB SNR": at(0.0)}, args)


if __name__ == "__main__":
    main()
