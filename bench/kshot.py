"""Teaching from k clips per class: a trained run's trunk with a new head, against the same model from scratch.

    python bench/kshot.py --from esc50 [--ks 1 2 4 6] [--classes 10] [--repeats 3] [--out bench/kshot.json]

For each repeat, `--classes` ESC-50 classes are drawn; k clips of each come from ESC-50's fold 1 (the
test fold: the source run never trained on it, nor chose anything with it), and the other fold-1 clips of
those classes (8 - k each) are the test. Both arms train the same architecture on the same clips with the
teaching settings (`audioclf.teach.TEACH_TRAINING`: the recipe's augmentation with rooms and microphones, 30 epochs); "taught" starts
from the source run's front end and trunk (`audioclf.teach`), "scratch" from a random initialisation with
the recipe's own learning rate. Each arm keeps its last epoch (there is no validation clip to choose with).
Fold 1 holds 8 clips per class, so k stops at 6 (2 test clips per class).
"""
from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audioclf.config import TrainConfig  # noqa: E402
from audioclf.data import open_dataset  # noqa: E402
from audioclf.inference import predict_logits  # noqa: E402
from audioclf.models import build_model  # noqa: E402
from audioclf.prepare import prepare  # noqa: E402
from audioclf.teach import TEACH_TRAINING, Start, source_run, start_from, start_state  # noqa: E402
from audioclf.train import make_optimizer, make_schedule, train_epoch  # noqa: E402
from bench import command_line  # noqa: E402


def train_arm(config: TrainConfig, x: torch.Tensor, y: torch.Tensor, n_classes: int,
              trunk: Start | None, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_model(config.model_config(n_classes))
    if trunk is not None:
        start_from(model, trunk, "source")
    opt = make_optimizer(model, config)
    sched = make_schedule(opt, config, steps_per_epoch=math.ceil(len(y) / config.batch_size))
    gen = torch.Generator().manual_seed(seed)
    for _ in range(config.epochs):
        train_epoch(model, opt, x, y, torch.randperm(len(y), generator=gen), config, sched=sched, n_classes=n_classes)
    return model.eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--from", dest="source", default="esc50")
    ap.add_argument("--esc50", type=Path, default=ROOT.parent / "shared" / "data" / "esc50")
    ap.add_argument("--ks", type=int, nargs="+", default=[1, 2, 4, 6])
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=TEACH_TRAINING["epochs"])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "kshot.json")
    args = ap.parse_args()
    torch.set_num_threads(torch.get_num_threads())

    source = source_run(args.source)
    src = source.config
    trunk = start_state(source)  # no classes named: a fresh head, as for sounds it never heard
    known = set((source.results() or {}).get("classes", []))
    prepared = prepare(open_dataset(args.esc50, "esc50"), src.prep)
    fold1 = (prepared.folds == src.test_fold).nonzero().flatten().tolist()
    labels = prepared.labels.tolist()
    # With an ESC-10 source, teach the 40 classes it has never heard; with ESC-50, any of the 50.
    pool = sorted({labels[i] for i in fold1 if prepared.classes[labels[i]] not in known} or {labels[i] for i in fold1})
    base = dict(model=src.model, options=src.options, heads=src.heads or None, prep=src.prep,
                dataset_id="kshot", **{**TEACH_TRAINING, "epochs": args.epochs})
    arms = {"taught": (TrainConfig(**base), trunk),
            "scratch": (replace(TrainConfig(**base), lr=TrainConfig(model=src.model).lr), None)}
    rows = []
    for rep in range(args.repeats):
        rng = random.Random(rep)
        chosen = rng.sample(pool, args.classes)
        by_class = {c: rng.sample([i for i in fold1 if labels[i] == c], 8) for c in chosen}
        for k in args.ks:
            train_idx = [i for c in chosen for i in by_class[c][:k]]
            test_idx = [i for c in chosen for i in by_class[c][k:]]
            remap = {c: j for j, c in enumerate(chosen)}
            x, y = prepared.waves[train_idx], torch.tensor([remap[labels[i]] for i in train_idx])
            xt, yt = prepared.waves[test_idx], torch.tensor([remap[labels[i]] for i in test_idx])
            for arm, (config, start) in arms.items():
                t0 = time.perf_counter()
                model = train_arm(config, x, y, len(chosen), start, seed=rep)
                seconds = time.perf_counter() - t0
                acc = (predict_logits(model, xt, config.prep).argmax(1) == yt).float().mean().item()
                rows.append({"repeat": rep, "k": k, "arm": arm, "accuracy": acc, "train_seconds": seconds,
                             "n_train": len(train_idx), "n_test": len(test_idx)})
                print(f"repeat {rep} k={k} {arm:8s} accuracy {acc:.3f} ({len(test_idx)} test clips) "
                      f"trained in {seconds:.1f} s", flush=True)
    summary = {f"{arm} k={k}": float(np.mean([r["accuracy"] for r in rows if r["arm"] == arm and r["k"] == k]))
               for arm in arms for k in args.ks}
    args.out.write_text(json.dumps({"command": command_line(), "source": source.name, "classes": args.classes,
                                    "repeats": args.repeats, "epochs": args.epochs, "rows": rows,
                                    "mean_accuracy": summary}, indent=1))
    for key, acc in summary.items():
        print(f"{key}: {acc:.3f}")


if __name__ == "__main__":
    main()
