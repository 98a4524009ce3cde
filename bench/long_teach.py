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

import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audioclf.features import fit_length, loudest_window  # noqa: E402
from audioclf.inference import FoldEnsemble, predict_audio  # noqa: E402
from bench import own_sounds  # noqa: E402
from bench.kshot import train_arm  # noqa: E402
from bench.long import pink, recording  # noqa: E402

ARMS = {"first": fit_length, "loudest": loudest_window}  # before, and now (prepare.build's, for a long clip)


def main() -> None:
    ap = own_sounds.parser("long_teach", __doc__, repeats=8)
    ap.add_argument("--seconds", type=float, default=20.0)
    args = ap.parse_args()

    s = own_sounds.setup(args.source, args.esc50, "long_teach")
    src, prepared, config, labels = s.source.config, s.prepared, s.config, s.labels
    sr, n = src.prep.sample_rate, src.prep.num_samples
    rows = []
    for rep in range(args.repeats):
        d = own_sounds.draw(s, rep, args.classes)
        fold, start, chosen, remap = d.fold, d.start, d.chosen, d.remap
        noise = np.random.default_rng(rep)
        train_idx, test_idx = own_sounds.split(d, own_sounds.clips(s, d))
        record = {i: torch.from_numpy(recording(prepared.waves[i].numpy(), pink(n, noise), 30.0, args.seconds, sr,
                                                noise)) for i in train_idx + test_idx}
        y = own_sounds.targets(s, d, train_idx)
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
    own_sounds.save(args.out, s, summary, repeats=args.repeats, seconds=args.seconds, rows=rows)


if __name__ == "__main__":
    main()
