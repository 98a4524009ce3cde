"""A short recording (1-2 s): is it better judged as it is, or repeated to a longer clip first?

    python bench/short.py --run checkpoints/logmel-cnn-taught-5904b43a2828 --data ../shared/data/esc10

The recipe's models tile a clip under 1 s to 1 s (`frontend.at_least`) and read anything longer as it is;
they trained on crops of 1.5-3 s. Each fold model hears 1 s and 2 s excerpts of its own validation
fold's clips (the loudest such excerpt of each clip, as someone recording the sound would catch it, and
the one from 1.5 s in, as bench/robustness.py cuts it), tiled to 1, 2, 3 or 5 s before the model.
Validation accuracy may be used to choose; the test fold's, through the ensemble, is reported beside it.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audioclf.features import loudest_window as loudest  # noqa: E402  (each clip's loudest n samples)
from bench import fold_models_and_data, record, run_parser, validation_and_test  # noqa: E402


def tiled(waves: torch.Tensor, n: int) -> torch.Tensor:
    return waves.repeat(1, -(-n // waves.shape[1]))[:, :n]


def main() -> None:
    ap = run_parser("short")
    args = ap.parse_args()
    run, prepared, models = fold_models_and_data(args.run, args.data, args.subset)
    config, sr = run.config, run.config.prep.sample_rate
    table: dict[str, dict] = {}
    for seconds in (1, 2):
        n = seconds * sr
        cuts = {"loudest": lambda w: loudest(w, n, sr // 4), "from 1.5 s": lambda w: w[:, int(1.5 * sr): int(1.5 * sr) + n]}
        for cut_name, cut in cuts.items():
            for to in sorted({seconds, 2, 3, 5}):
                if to < seconds:
                    continue
                name = f"{seconds} s ({cut_name}), tiled to {to} s"
                table[name] = validation_and_test(models, prepared, config.test_fold, config.prep,
                                                  lambda w, cut=cut, to=to: tiled(cut(w), to * sr))
                print(f"{name:36s} validation {100 * table[name]['validation']:5.1f} %  test ensemble "
                      f"{100 * table[name]['test_ensemble']:5.1f} %", flush=True)
    record(args.out, run.path.name, {"ways": table})


if __name__ == "__main__":
    main()
