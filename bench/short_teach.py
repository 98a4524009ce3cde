"""Teaching from short clips: zero-padded to the clip length (silence after the sound) against repeated (tiled).

    python bench/short_teach.py --from esc50 [--lengths 0.5 1 2] [--repeats 8] [--out bench/short_teach.json]

A person's own clips are often one short sound (a knock, a clap: 0.2-2 s), and training reads every clip at the
run's length (5 s). Each repeat r takes validation fold k = 2 + r % 4 of ESC-50 and starts from the source run's
fold-k model, which never trained on fold k (fold 1, the test fold, is not used); draws 10 classes and 8 clips of
each from fold k; cuts each clip's loudest L seconds; teaches on 4 clips a class with the teaching settings
(`audioclf.teach.TEACH_TRAINING`, last epoch) and tests on the other 4, each read as it is (as `predict` reads a
short recording). The arms differ only in how a short clip fills the 5 s for training: "padded" (silence after
it) or "tiled" (the clip repeated).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audioclf.features import fill_length, fit_length, loudest_window  # noqa: E402
from audioclf.inference import predict_logits  # noqa: E402
from bench import own_sounds  # noqa: E402
from bench.kshot import train_arm  # noqa: E402


ARMS = {"padded": fit_length, "tiled": fill_length}  # before, and now (prepare.build's)


def main() -> None:
    ap = own_sounds.parser("short_teach", __doc__, repeats=8)
    ap.add_argument("--lengths", type=float, nargs="+", default=[0.5, 1.0, 2.0])
    args = ap.parse_args()

    s = own_sounds.setup(args.source, args.esc50, "short_teach")
    src, prepared, config = s.source.config, s.prepared, s.config
    sr, n = src.prep.sample_rate, src.prep.num_samples
    rows = []
    for rep in range(args.repeats):
        d = own_sounds.draw(s, rep, args.classes)
        fold, start, chosen = d.fold, d.start, d.chosen
        train_idx, test_idx = own_sounds.split(d, own_sounds.clips(s, d))
        y, yt = own_sounds.targets(s, d, train_idx), own_sounds.targets(s, d, test_idx)
        for length in args.lengths:
            m = int(length * sr)
            short = loudest_window(prepared.waves[train_idx], m, sr // 20)
            short_test = loudest_window(prepared.waves[test_idx], m, sr // 20)
            for arm, fill in ARMS.items():
                t0 = time.perf_counter()
                model = train_arm(config, fill(short, n), y, len(chosen), start, seed=rep)
                acc = (predict_logits(model, short_test, src.prep).argmax(1) == yt).float().mean().item()
                rows.append({"repeat": rep, "fold": fold, "seconds": length, "arm": arm, "accuracy": acc,
                             "n_test": len(test_idx), "train_seconds": time.perf_counter() - t0})
                print(f"repeat {rep} fold {fold} {length:g} s {arm:6s} accuracy {acc:.3f}", flush=True)
    summary = {f"{arm} {length:g} s": float(np.mean([r["accuracy"] for r in rows
                                                      if r["arm"] == arm and r["seconds"] == length]))
               for length in args.lengths for arm in ARMS}
    own_sounds.save(args.out, s, summary, repeats=args.repeats, rows=rows)


if __name__ == "__main__":
    main()
