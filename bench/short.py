"""A short recording (1-2 s): is it better judged as it is, or repeated to a longer clip first?

    python bench/short.py --run checkpoints/logmel-cnn-taught-dd1289970984 --data ../shared/data/esc10

The recipe's models tile a clip under 1 s to 1 s (`logmel.at_least`) and read anything longer as it is;
they trained on crops of 1.5-3 s. Each fold model hears 1 s and 2 s excerpts of its own validation
fold's clips (the loudest such excerpt of each clip, as someone recording the sound would catch it, and
the one from 1.5 s in, as bench/robustness.py cuts it), tiled to 1, 2, 3 or 5 s before the model.
Validation accuracy may be used to choose; the test fold's, through the ensemble, is reported beside it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audioclf.data import open_dataset  # noqa: E402
from audioclf.inference import predict_logits  # noqa: E402
from audioclf.prepare import prepare  # noqa: E402
from audioclf.store import Run  # noqa: E402
from bench import record  # noqa: E402


def loudest(waves: torch.Tensor, n: int, hop: int) -> torch.Tensor:
    """Each clip's excerpt of n samples with the most energy (excerpts every `hop` samples)."""
    frames = waves.unfold(1, n, hop)  # (N, K, n)
    best = frames.square().mean(2).argmax(1)
    return frames[torch.arange(len(waves)), best]


def tiled(waves: torch.Tensor, n: int) -> torch.Tensor:
    return waves.repeat(1, -(-n // waves.shape[1]))[:, :n]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--subset", default="esc10")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "short.json")
    args = ap.parse_args()
    run = Run(args.run)
    config, sr = run.config, run.config.prep.sample_rate
    prepared = prepare(open_dataset(args.data, args.subset), config.prep)
    models = {f: run.fold_model(f, "best", "cpu").model for f in config.cv_folds}
    x_test, y_test = prepared.subset([config.test_fold])
    table: dict[str, dict] = {}
    for seconds in (1, 2):
        n = seconds * sr
        cuts = {"loudest": lambda w: loudest(w, n, sr // 4), "from 1.5 s": lambda w: w[:, int(1.5 * sr): int(1.5 * sr) + n]}
        for cut_name, cut in cuts.items():
            for to in sorted({seconds, 2, 3, 5}):
                if to < seconds:
                    continue
                right = total = 0
                test = []
                for fold, model in models.items():
                    x, y = prepared.subset([fold])
                    p = predict_logits(model, tiled(cut(x), to * sr), config.prep)
                    right, total = right + int((p.argmax(1) == y).sum()), total + len(y)
                    test.append(predict_logits(model, tiled(cut(x_test), to * sr), config.prep).softmax(1))
                name = f"{seconds} s ({cut_name}), tiled to {to} s"
                table[name] = {"validation": right / total,
                               "test_ensemble": float((torch.stack(test).mean(0).argmax(1) == y_test).float().mean())}
                print(f"{name:36s} validation {100 * right / total:5.1f} %  test ensemble "
                      f"{100 * table[name]['test_ensemble']:5.1f} %", flush=True)
    record(args.out, run.path.name, {"ways": table})


if __name__ == "__main__":
    main()
