"""An overdriven recording (a phone's input clipping on a loud sound close by): how much it costs, on the
validation folds, so that a recipe may be chosen by it.

    python bench/clipping.py --run checkpoints/logmel-cnn-taught-dd1289970984 --data ../shared/data/esc10

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
from bench import fold_models_and_data, record, run_parser, validation_and_test  # noqa: E402

WAYS = {"as is": None, "clipped, 10 dB over": 10.0, "clipped, 20 dB over": 20.0}


def main() -> None:
    ap = run_parser("clipping")
    args = ap.parse_args()
    run, prepared, models = fold_models_and_data(args.run, args.data, args.subset)
    config = run.config
    table: dict[str, dict] = {}
    for name, db in WAYS.items():
        alter = (lambda w: w) if db is None else (lambda w, db=db: overdrive(w, 1.0, (db, db)))
        table[name] = validation_and_test(models, prepared, config.test_fold, config.prep, alter)
        print(f"{name:22s} validation {100 * table[name]['validation']:5.1f} %  test ensemble "
              f"{100 * table[name]['test_ensemble']:5.1f} %", flush=True)
    record(args.out, run.path.name, {"ways": table})


if __name__ == "__main__":
    main()
