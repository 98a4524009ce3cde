"""Make the run that a taught run's config with `--start-weight W` gives, from a finished run trained without it,
without training again (`audioclf.train.average_with_start`: the weight acts only after the last epoch).

    python tools/average_with_start.py --run RUN --start-weight 0.5 --data ../shared/data/esc50 --subset esc50 \
        [--checkpoints DIR]

RUN must still have its last-epoch weights (final.pt; shipped runs keep only best.pt). The new run is evaluated
(results.json) and gets its int8 ranges, as a trained run does.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audioclf.data import open_dataset  # noqa: E402
from audioclf.prepare import prepare  # noqa: E402
from audioclf.store import Run  # noqa: E402
from audioclf.train import average_with_start  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--start-weight", type=float, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--subset")
    ap.add_argument("--checkpoints", type=Path, help="where the new run goes (default: the store of --run)")
    args = ap.parse_args()
    trained = Run(args.run)
    dataset = open_dataset(args.data, args.subset)
    if dataset.fingerprint() != trained.config.dataset_id:
        sys.exit(f"{args.data}: not the data {trained.name} was trained on")
    run = average_with_start(trained, args.start_weight, prepare(dataset, trained.config.prep),
                             root=args.checkpoints or trained.root)
    summary = run.results()["summary"]
    print(f"{run.path}: validation per fold model {[round(run.fold_model(f).meta['val_acc'], 4) for f in run.config.cv_folds]}; "
          f"test accuracy per fold model {[round(a, 4) for a in summary['accuracy']['values']]}")


if __name__ == "__main__":
    main()
