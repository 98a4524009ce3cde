"""5-fold cross-validation, each fold the test set once, so that figures compare with published ones.

    python bench/crossval.py --model logmel-cnn --data ../shared/data/esc10 [--subset esc10]
                             [--checkpoints runs-crossval] [--reuse checkpoints] [--epochs N]

For each test fold k (1..5) one fold model of the recipe is trained as `train` trains any: on three of
the other folds, with the fourth (the one after k, cyclically) as its validation fold for the choice of
epoch; then it is scored on fold k, which it never saw. The figure is the mean over the five test folds
(and the pooled accuracy over all clips, each judged once). Published ESC-10/50 figures train on all four
other folds: this trains on three, 25 % less data, so it is if anything lower.

Test fold 1 with validation fold 2 is the same config as fold 2 of the shipped fold-1 run; with
`--reuse checkpoints` that fold model is read from there instead of trained again. The other runs go to
`--checkpoints` (default `runs-crossval/`, not the app's store). Results: bench/crossval.json,
and the section in docs/results.md (tools/results_table.py).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audioclf.cli import build_parser, config_from_args  # noqa: E402
from audioclf.data import open_dataset  # noqa: E402
from audioclf.store import Run  # noqa: E402
from bench import command_line  # noqa: E402

OUT = ROOT / "bench" / "crossval.json"
FOLDS = (1, 2, 3, 4, 5)


def fold_config(args: argparse.Namespace, dataset, test: int):
    """The `train` config for test fold `test`: the CLI's defaults and flags, the other folds as CV folds."""
    argv = ["train", "--model", args.model, "--data", str(args.data), "--subset", args.subset,
            "--test-fold", str(test), "--cv-folds", *[str(f) for f in FOLDS if f != test]]
    if args.epochs:
        argv += ["--epochs", str(args.epochs)]
    return config_from_args(build_parser().parse_args(argv), dataset)


def validation_fold(test: int) -> int:
    return test % len(FOLDS) + 1  # the fold after the test fold: 2 for 1, ..., 1 for 5


def one_test_fold(args: argparse.Namespace, dataset, prepared, test: int) -> dict:
    """Train (or find) the fold model for test fold `test` and return its scores on it."""
    from audioclf.train import train_run

    config, val = fold_config(args, dataset, test), validation_fold(test)
    shipped = Run.of(config, args.reuse) if args.reuse else None
    t0 = time.time()
    if shipped is not None and shipped.fold_complete(val) and shipped.results():
        run, trained = shipped, False
    else:
        run, trained = train_run(config, prepared, folds=[val], root=args.checkpoints, show_bar=not args.quiet), True
    fold = run.results()["folds"][str(val)]
    where = run.path.relative_to(ROOT) if run.path.is_relative_to(ROOT) else run.path
    return {"test_fold": test, "validation_fold": val, "run": str(where),
            "accuracy": fold["accuracy"], "macro_f1": fold["macro_f1"], "clips": len(fold["predictions"]),
            "epoch": fold["training"]["epoch"], "val_acc": fold["training"]["val_acc"], "trained_here": trained,
            "seconds": round(time.time() - t0, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="logmel-cnn")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "esc10")
    ap.add_argument("--subset", choices=["esc10", "esc50"], default="esc10")
    ap.add_argument("--epochs", type=int, help="default: the model's")
    ap.add_argument("--checkpoints", type=Path, default=ROOT / "runs-crossval")
    ap.add_argument("--reuse", type=Path, help="a store whose identical fold model is read, not trained")
    ap.add_argument("--test-folds", type=int, nargs="+", default=list(FOLDS))
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    from audioclf.prepare import prepare

    dataset = open_dataset(args.data, args.subset)
    prepared = prepare(dataset, fold_config(args, dataset, 1).prep)
    old = json.loads(OUT.read_text()) if OUT.is_file() else {}
    key = f"{args.model}/{args.subset}"
    entry = old.get(key, {"folds": {}})
    for test in args.test_folds:
        entry["folds"][str(test)] = one_test_fold(args, dataset, prepared, test)
        print(json.dumps(entry["folds"][str(test)]), flush=True)
        done = [entry["folds"][str(k)] for k in FOLDS if str(k) in entry["folds"]]
        correct = sum(round(d["accuracy"] * d["clips"]) for d in done)
        entry.update(model=args.model, data=args.subset, test_folds_done=len(done),
                     mean_accuracy=float(np.mean([d["accuracy"] for d in done])),
                     std_accuracy=float(np.std([d["accuracy"] for d in done])),
                     pooled_accuracy=correct / sum(d["clips"] for d in done),
                     command=command_line())
        OUT.write_text(json.dumps({**old, key: entry}, indent=1) + "\n")  # after each fold: a stop keeps the rest


if __name__ == "__main__":
    main()
