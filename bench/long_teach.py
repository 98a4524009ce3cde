"""Teaching from recordings longer than a clip: their first 5 s against their loudest 5 s.

    python bench/long_teach.py --from esc50 [--repeats 8] [--seconds 20] [--out bench/long_teach.json]

A person's own recording (a phone memo of 20 s, the dog barking at 12 s) is longer than the run's clip, and
training reads one clip length of it. Each draw r takes validation fold k = 2 + r % 4 of ESC-50 and starts from
the source run's fold-k model, which never trained on fold k (fold 1, the test fold, is not used); draws 10
classes and 8 clips of each from fold k; puts each clip at a random time in `--seconds` of pink noise 30 dB
below it (bench/long.py's construction); teaches on 4 recordings a class with the teaching settings
(`audioclf.teach.TEACH_TRAINING`, last epoch) and tests on the other 4 as whole recordings through
`inference.predict_audio` (what the app and `predict` do). The arms differ only in which 5 s of a training
recording are read: the first ("first") or the loudest ("loudest").
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audioclf.config import TrainConfig  # noqa: E402
from audioclf.data import open_dataset  # noqa: E402
from audioclf.features import fit_length, loudest_window  # noqa: E402
from audioclf.inference import FoldEnsemble, predict_audio  # noqa: E402
from audioclf.prepare import prepare  # noqa: E402
from audioclf.teach import TEACH_TRAINING, source_run, start_state  # noqa: E402
from bench import command_line  # noqa: E402
from bench.kshot import train_arm  # noqa: E402
from bench.long import pink, recording  # noqa: E402

ARMS = {"first": fit_length, "loudest": loudest_window}  # before, and now (prepare.build's, for a long clip)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--from", dest="source", default="esc50")
    ap.add_argument("--esc50", type=Path, default=ROOT.parent / "shared" / "data" / "esc50")
    ap.add_argument("--repeats", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "long_teach.json")
    args = ap.parse_args()

    source = source_run(args.source)
    src = source.config
    prepared = prepare(open_dataset(args.esc50, "esc50"), src.prep)
    sr, n = src.prep.sample_rate, src.prep.num_samples
    labels = prepared.labels.tolist()
    config = TrainConfig(model=src.model, options=src.options, heads=src.heads or None, prep=src.prep,
                         dataset_id="long_teach", **TEACH_TRAINING)
    rows = []
    for rep in range(args.repeats):
        fold = 2 + rep % 4
        start = start_state(source, fold)  # no classes named: a fresh head, as for one's own sounds
        rng, noise = random.Random(rep), np.random.default_rng(rep)
        in_fold = [i for i in range(len(labels)) if int(prepared.folds[i]) == fold]
        chosen = rng.sample(sorted({labels[i] for i in in_fold}), args.classes)
        by_class = {c: rng.sample([i for i in in_fold if labels[i] == c], 8) for c in chosen}
        remap = {c: j for j, c in enumerate(chosen)}
        train_idx = [i for c in chosen for i in by_class[c][:4]]
        test_idx = [i for c in chosen for i in by_class[c][4:]]
        record = {i: torch.from_numpy(recording(prepared.waves[i].numpy(), pink(n, noise), 30.0, args.seconds, sr,
                                                noise)) for i in train_idx + test_idx}
        y = torch.tensor([remap[labels[i]] for i in train_idx])
        long_train = torch.stack([record[i] for i in train_idx])
        for arm, read in ARMS.items():
            t0 = time.perf_counter()
            model = train_arm(config, read(long_train, n), y, len(chosen), start, seed=rep)
            ens = FoldEnsemble(config, tuple(map(str, chosen)), (fold,), (model,))
            right = [int(np.argmax(predict_audio(ens, record[i].numpy()[None], sr)["ensemble"])) == remap[labels[i]]
                     for i in test_idx]
            acc = float(np.mean(right))
            rows.append({"repeat": rep, "fold": fold, "arm": arm, "accuracy": acc, "n_test": len(test_idx),
                         "train_seconds": time.perf_counter() - t0})
            print(f"repeat {rep} fold {fold} {arm:7s} accuracy {acc:.3f}", flush=True)
    summary = {arm: float(np.mean([r["accuracy"] for r in rows if r["arm"] == arm])) for arm in ARMS}
    args.out.write_text(json.dumps({"command": command_line(), "source": source.name, "repeats": args.repeats,
                                    "seconds": args.seconds, "rows": rows, "mean_accuracy": summary}, indent=1))
    for key, acc in summary.items():
        print(f"{key}: {acc:.3f}")


if __name__ == "__main__":
    main()
