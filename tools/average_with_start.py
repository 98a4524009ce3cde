"""Make the run that a taught run's config with `--start-weight W` gives, from a finished run trained without it,
without training again (`audioclf.train.average_with_start`: the weight acts only after the last epoch).

    python tools/average_with_start.py --run RUN --start-weight 0.5 --data ../shared/data/esc50 --subset esc50 \
        [--checkpoints DIR] [--hide-test]

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
from audioclf.errors import UserError  # noqa: E402
from audioclf.prepare import prepare  # noqa: E402
from audioclf.store import Run  # noqa: E402
from audioclf.train import average_with_start  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--start-weight", type=float, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--subset", default="esc10")
    ap.add_argument("--checkpoints", type=Path, help="where the new run goes (default: the store of --run)")
    ap.add_argument("--hide-test", action="store_true", help="print validation only (as `train --hide-test`), "
                    "to choose without seeing fold 1")
    args = ap.parse_args()
    try:
        trained = Run(args.run)
        dataset = open_dataset(args.data, args.subset)
        if dataset.fingerprint() != trained.config.dataset_id:
            raise UserError(f"{args.data}: not the data {trained.name} was trained on (--subset {args.subset})")
        run = average_with_start(trained, args.start_weight, prepare(dataset, trained.config.prep),
                                 root=args.checkpoints or trained.root)
    except UserError as e:  # one line naming the file, as the CLI says it
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    summary = run.results()["summary"]  # the kept weights' validation (`fold_training_summary`) and test figures
    validation = [round(a, 4) for a in summary["training"]["val_acc"]["values"]]
    test = [round(a, 4) for a in summary["accuracy"]["values"]]
    print(f"{run.path}: validation per fold model {validation}"
          + ("" if args.hide_test else f"; test accuracy per fold model {test}"))


if __name__ == "__main__":
    main()
