"""What the "not sure" rule does: on the test fold, and on ESC-50 sounds of classes a run does not know.

    python bench/unsure.py --run checkpoints/transformer-4h-2a318102f1a3 [--esc50 ../shared/data/esc50]

The threshold is the run's own (`results.json` "unsure", chosen on the validation folds; see
`audioclf.confidence`); the verdict also counts the fold models' agreement. Out-of-set sounds are the
fold-1 clips of the ESC-50 classes that the run was not trained on: every answer there is wrong, so the
share flagged "not sure" is the share of wrong answers caught.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audioclf.confidence import verdict  # noqa: E402
from audioclf.data import open_dataset  # noqa: E402
from audioclf.inference import load_ensemble, predict_waves  # noqa: E402
from audioclf.prepare import prepare  # noqa: E402
from audioclf.store import Run  # noqa: E402


def verdicts(ens, waves: torch.Tensor, threshold: float) -> list[dict]:
    out = []
    for i in range(0, len(waves), 16):
        probs = predict_waves(ens, waves[i:i + 16])
        folds = [v for k, v in probs.items() if k != "ensemble"]
        out += [verdict(probs["ensemble"][j], [f[j] for f in folds], threshold) for j in range(len(probs["ensemble"]))]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--esc50", type=Path, default=ROOT.parent / "shared" / "data" / "esc50")
    args = ap.parse_args()
    run = Run(args.run)
    res = run.results()
    threshold = res["unsure"]["threshold"]
    ens = load_ensemble(run.path)
    esc50 = open_dataset(args.esc50, "esc50")
    prepared = prepare(esc50, run.config.prep)
    known = set(ens.classes_)
    names = [prepared.classes[i] for i in prepared.labels.tolist()]
    fold1 = prepared.folds == run.config.test_fold
    inside = torch.tensor([n in known for n in names]) & fold1
    outside = torch.tensor([n not in known for n in names]) & fold1
    v_in = verdicts(ens, prepared.waves[inside], threshold)
    truth = [ens.classes_.index(n) for n, m in zip(names, inside.tolist()) if m]
    v_out = verdicts(ens, prepared.waves[outside], threshold)
    sure_in = np.array([v["sure"] for v in v_in])
    right_in = np.array([v["top"] == t for v, t in zip(v_in, truth)])
    row = {"run": run.name, "threshold": threshold,
           "test_clips": int(len(v_in)), "test_answered": float(sure_in.mean()),
           "test_accuracy_all": float(right_in.mean()),
           "test_accuracy_answered": float(right_in[sure_in].mean()) if sure_in.any() else None,
           "unknown_clips": int(len(v_out)), "unknown_flagged": float(np.mean([not v["sure"] for v in v_out]))}
    print(json.dumps(row, indent=1))
    answered = row["test_accuracy_answered"]
    answered = "—" if answered is None else f"{100 * answered:.1f} %"
    print(f"| {run.name} | {threshold:.2f} | {100 * row['test_answered']:.0f} % | {100 * row['test_accuracy_all']:.1f} % | "
          f"{answered} | {100 * row['unknown_flagged']:.0f} % of {row['unknown_clips']} |")


if __name__ == "__main__":
    main()
