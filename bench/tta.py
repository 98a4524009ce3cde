"""Test-time averaging over crops: does judging a 5 s clip as the mean over shorter crops (the lengths the
recipe trains on) beat judging it whole? Chosen on the validation folds only; the test fold is reported.

    python bench/tta.py --run checkpoints/logmel-cnn-6056d43aff54 --data ../shared/data/esc50 --subset esc50
    python bench/tta.py --run checkpoints/logmel-cnn-taught-5904b43a2828 --data ../shared/data/esc10

Each fold model k is scored on its own validation fold k (which it never trained on) under each way of
judging a clip; the pooled validation accuracy is what a choice may look at. The test-fold accuracy of the
fold models' ensemble under each is printed beside it, and everything goes to bench/tta.json.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audioclf.data import open_dataset  # noqa: E402
from audioclf.inference import predict_logits  # noqa: E402
from audioclf.prepare import prepare  # noqa: E402
from audioclf.store import Run  # noqa: E402
from bench import record, run_parser  # noqa: E402


def crops(waves: torch.Tensor, seconds: float, hop_seconds: float, sr: int) -> list[torch.Tensor]:
    """Windows of `seconds` every `hop_seconds` across (N, samples), the last one flush with the end."""
    n, total = int(seconds * sr), waves.shape[1]
    starts = list(range(0, total - n + 1, int(hop_seconds * sr)))
    if starts[-1] != total - n:
        starts.append(total - n)
    return [waves[:, s:s + n] for s in starts]


def ways(sr: int) -> dict[str, callable]:
    """Each way of judging clips: a function of (N, samples) -> list of views whose probabilities are averaged."""
    return {
        "whole": lambda w: [w],
        "3 s crops, hop 1 s": lambda w: crops(w, 3.0, 1.0, sr),
        "whole + 3 s crops, hop 1 s": lambda w: [w] + crops(w, 3.0, 1.0, sr),
        "2 s crops, hop 1 s": lambda w: crops(w, 2.0, 1.0, sr),
        "whole + 2 s crops, hop 1 s": lambda w: [w] + crops(w, 2.0, 1.0, sr),
        "whole, 4 circular shifts": lambda w: [torch.roll(w, int(k * 1.25 * sr), 1) for k in range(4)],
    }


def probabilities(model: torch.nn.Module, waves: torch.Tensor, views, prep) -> torch.Tensor:
    return torch.stack([predict_logits(model, v.contiguous(), prep).softmax(1) for v in views(waves)]).mean(0)


def main() -> None:
    ap = run_parser("tta")
    ap.add_argument("--ways", nargs="+", help="only these ways (names as printed)")
    args = ap.parse_args()
    run = Run(args.run)
    config = run.config
    prepared = prepare(open_dataset(args.data, args.subset), config.prep)
    sr = config.prep.sample_rate
    x_test, y_test = prepared.subset([config.test_fold])
    table = {}
    for name, views in ways(sr).items():
        if args.ways and name not in args.ways:
            continue
        t0 = time.perf_counter()
        right, total, test_probs = 0, 0, []
        for fold in config.cv_folds:
            model = run.fold_model(fold, "best", "cpu").model
            x_val, y_val = prepared.subset([fold])
            right += int((probabilities(model, x_val, views, config.prep).argmax(1) == y_val).sum())
            total += len(y_val)
            test_probs.append(probabilities(model, x_test, views, config.prep))
        ensemble = torch.stack(test_probs).mean(0)
        table[name] = {"validation": right / total, "validation_clips": total,
                       "test_ensemble": float((ensemble.argmax(1) == y_test).float().mean()),
                       "test_per_model": [float((p.argmax(1) == y_test).float().mean()) for p in test_probs],
                       "seconds": round(time.perf_counter() - t0, 1)}
        print(f"{name:30s} validation {100 * right / total:5.1f} %   test ensemble "
              f"{100 * table[name]['test_ensemble']:5.1f} %   ({table[name]['seconds']} s)", flush=True)
    record(args.out, run.path.name, {"ways": table})


if __name__ == "__main__":
    main()
