"""Write docs/results.md from the runs in the checkpoint store, beside the report's figures.

    python tools/results_table.py [--checkpoints checkpoints] [--out docs/results.md]

Each label's newest evaluated run at its model's default epochs (100 for the report's, the recipe's own,
`TEACH_TRAINING`'s for a taught run). The tables start at SUMMARY; what --out holds above it is written by
hand and kept as it is (or replaced by --preamble's file).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audioclf import store  # noqa: E402
from audioclf.report import fold_table_markdown  # noqa: E402
from audioclf.store import Run  # noqa: E402
from audioclf.teach import default_epochs  # noqa: E402

REPORT = {"cnn": "46–55 %", "transformer-4h": "50–65 %"}
ORDER = ["cnn", "transformer-1h", "transformer-2h", "transformer-4h", "logmel-cnn", "logmel-transformer-2h",
         "logmel-cnn-taught"]


CROSSVAL = ROOT / "bench" / "crossval.json"
PUBLISHED = {"esc10": "EnvNet-v2 + BC 91.4 %, ACDNet 96.7 %; human listeners 95.7 %",
             "esc50": "EnvNet-v2 + BC 84.9 %, ACDNet 87.1 %; human listeners 81.3 %"}


def crossval_markdown(path: Path = CROSSVAL) -> list[str]:
    """bench/crossval.py's figures: one fold model per test fold, each fold the test set once."""
    if not path.is_file():
        return []
    lines = ["## 5-fold cross-validation (each fold the test set once)", "",
             "One fold model per test fold, trained as `train` trains a fold model: on three of the other "
             "folds, the fourth (the one after the test fold) choosing the epoch; scored on the test fold. "
             "Published figures train on all four other folds, so this is, if anything, low.", ""]
    for entry in json.loads(path.read_text()).values():
        folds = entry["folds"]
        lines += [f"**{entry['model']} on {entry['data'].upper().replace('ESC', 'ESC-')}**: "
                  f"**{100 * entry['mean_accuracy']:.1f} ± {100 * entry['std_accuracy']:.1f} %** over "
                  f"{entry['test_folds_done']} of 5 test folds (pooled {100 * entry['pooled_accuracy']:.1f} %); "
                  f"published 5-fold: {PUBLISHED.get(entry['data'], '—')}. Command: `{entry['command']}`", "",
                  "| test fold | validation fold | test accuracy | macro F1 | chosen epoch (val acc) | run |",
                  "|---|---|---|---|---|---|"]
        for k in sorted(folds, key=int):
            f = folds[k]
            lines.append(f"| {k} | {f['validation_fold']} | {100 * f['accuracy']:.1f} % | {f['macro_f1']:.3f} | "
                         f"{f['epoch']} ({100 * f['val_acc']:.1f} %) | `{Path(f['run']).name}`"
                         f"{'' if f['trained_here'] else ' (shipped)'} |")
        lines.append("")
    return lines


SUMMARY = "## Summary: fold-1 test accuracy"


def hand_written(out: Path) -> str:
    """The part of an existing results file above the generated tables ("# Results" for a new file)."""
    text = out.read_text() if out.is_file() else ""
    return text.split(SUMMARY)[0].rstrip("\n") if SUMMARY in text else "# Results"


def run_seconds(run: Run) -> float:
    return sum(h["seconds"] for hist in run.histories().values() for h in hist)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoints", type=Path, default=ROOT / "checkpoints")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "results.md")
    ap.add_argument("--preamble", type=Path, help="markdown to put before the tables (default: what --out has "
                    "above them)")
    args = ap.parse_args()
    runs = {}
    for run in store.list_runs(args.checkpoints):
        cfg = run.config
        if cfg.epochs == default_epochs(cfg) and run.results() and cfg.label not in runs:
            runs[cfg.label] = run
    lines = [args.preamble.read_text() if args.preamble else hand_written(args.out), ""]
    lines += [SUMMARY, "",
              "| model | report | per fold model (mean ± std over folds) | 95 % CI of the mean | range | fold ensemble | macro F1 (mean) | macro AUC (mean) | training time |",
              "|---|---|---|---|---|---|---|---|---|"]
    for label in ORDER:
        if label not in runs:
            continue
        r = runs[label].results()
        acc = r["summary"]["accuracy"]
        lo, hi = acc["ci95"]
        lines.append(f"| {label} | {REPORT.get(label, '—')} | {100 * acc['mean']:.1f} ± {100 * acc['std']:.1f} % | "
                     f"{100 * lo:.1f}–{100 * hi:.1f} % | "
                     f"{100 * min(acc['values']):.1f}–{100 * max(acc['values']):.1f} % | "
                     f"{100 * r['ensemble']['accuracy']:.1f} % | {r['summary']['macro_f1']['mean']:.3f} | "
                     f"{r['summary']['macro_auc']['mean']:.3f} | {run_seconds(runs[label]) / 60:.1f} min |")
    lines += ["", *crossval_markdown()]
    lines += ["## Per fold (validation fold k; the other three train; fold 1 is the test set)", ""]
    for label in ORDER:
        if label in runs:
            lines += [fold_table_markdown(runs[label].results()), "",
                      f"Run folder: `checkpoints/{runs[label].name}`", ""]
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text("\n".join(lines))
    print(args.out.read_text())


if __name__ == "__main__":
    main()
