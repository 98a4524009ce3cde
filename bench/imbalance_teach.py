"""Teaching classes of different sizes: each epoch's clips drawn uniformly against class-balanced.

    python bench/imbalance_teach.py --from esc50 [--repeats 16] [--out bench/imbalance_teach.json]

A person's own classes are rarely the same size (8 clips of the dog, 2 of the door). Each draw r takes
validation fold k = 2 + r % 4 of ESC-50 and starts from the source run's fold-k model, which never trained on
fold k (fold 1, the test fold, is not used); draws 10 classes and 8 clips of each from fold k; gives the classes
6, 6, 6, 6, 6, 6, 2, 2, 1 and 1 training clips (in a random order of the classes) and keeps the last 2 clips of
every class as the test; teaches with the teaching settings (`audioclf.teach.TEACH_TRAINING`, last epoch). The arms
differ only in the order of each epoch's clips: a permutation ("uniform") or `train.epoch_order` ("balanced").
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audioclf.config import TrainConfig  # noqa: E402
from audioclf.inference import predict_logits  # noqa: E402
from audioclf.models import build_model  # noqa: E402
from audioclf.teach import start_from  # noqa: E402
from audioclf.train import epoch_order, make_optimizer, make_schedule, train_epoch  # noqa: E402
from bench import own_sounds  # noqa: E402

COUNTS = (6, 6, 6, 6, 6, 6, 2, 2, 1, 1)
ARMS = {"uniform": lambda y, gen: torch.randperm(len(y), generator=gen), "balanced": epoch_order}


def teach(config: TrainConfig, x: torch.Tensor, y: torch.Tensor, n_classes: int, start, seed: int,
          order) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_model(config.model_config(n_classes))
    start_from(model, start, "source")
    opt = make_optimizer(model, config)
    sched = make_schedule(opt, config, steps_per_epoch=math.ceil(len(y) / config.batch_size))
    gen = torch.Generator().manual_seed(seed)
    for _ in range(config.epochs):
        train_epoch(model, opt, x, y, order(y, gen), config, sched=sched, n_classes=n_classes)
    return model.eval()


def main() -> None:
    ap = own_sounds.parser("imbalance_teach", __doc__, repeats=16, classes=False)
    args = ap.parse_args()

    s = own_sounds.setup(args.source, args.esc50, "imbalance_teach")
    src, prepared, config, labels = s.source.config, s.prepared, s.config, s.labels
    rows = []
    for rep in range(args.repeats):
        d = own_sounds.draw(s, rep, len(COUNTS))
        fold, start, chosen = d.fold, d.start, d.chosen
        counts = dict(zip(chosen, d.rng.sample(COUNTS, len(COUNTS))))
        by_class = own_sounds.clips(s, d)
        train_idx = [i for c in chosen for i in by_class[c][:counts[c]]]
        test_idx = [i for c in chosen for i in by_class[c][6:]]
        y, yt = own_sounds.targets(s, d, train_idx), own_sounds.targets(s, d, test_idx)
        small = torch.tensor([counts[labels[i]] <= 2 for i in test_idx])
        for arm, order in ARMS.items():
            model = teach(config, prepared.waves[train_idx], y, len(chosen), start, rep, order)
            right = predict_logits(model, prepared.waves[test_idx], src.prep).argmax(1) == yt
            rows.append({"repeat": rep, "fold": fold, "arm": arm, "accuracy": right.float().mean().item(),
                         "small_classes_right": int(right[small].sum()), "small_classes_n": int(small.sum()),
                         "right": int(right.sum()), "n_test": len(test_idx)})
            print(f"repeat {rep} fold {fold} {arm:8s} all {right.float().mean():.3f} "
                  f"small classes {int(right[small].sum())}/{int(small.sum())}", flush=True)
    summary = {}
    for arm in ARMS:
        mine = [r for r in rows if r["arm"] == arm]
        summary[f"{arm} all"] = sum(r["right"] for r in mine) / sum(r["n_test"] for r in mine)
        summary[f"{arm} small classes"] = (sum(r["small_classes_right"] for r in mine)
                                           / sum(r["small_classes_n"] for r in mine))
    own_sounds.save(args.out, s, summary, "summary", repeats=args.repeats, counts=COUNTS, rows=rows)


if __name__ == "__main__":
    main()
