"""How long teaching a small folder takes, end to end through the CLI, and how well it does.

    python bench/teach.py [--from esc50] [--classes 5] [--clips 4] [--out bench/teach.json]

Builds a folder-per-class collection from ESC-50 clips (`--classes` classes × `--clips` clips of fold 1,
converted to 44.1 kHz stereo wav so that decoding and resampling are part of the cost, as with a
phone's recordings), then times `python -m audioclf train --data DIR --from SOURCE` as a user runs it
(the process start, imports, decoding and every fold model included). Prints the wall time and the
cross-validated accuracy that the run records.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audioclf.features import resample  # noqa: E402
from audioclf.store import Run  # noqa: E402
from bench import command_line  # noqa: E402


def build_folder(esc50: Path, dest: Path, n_classes: int, n_clips: int, seed: int) -> list[str]:
    import torch

    rows = list(csv.DictReader((esc50 / "meta" / "esc50.csv").open()))
    classes = random.Random(seed).sample(sorted({r["category"] for r in rows}), n_classes)
    for c in classes:
        for r in [r for r in rows if r["category"] == c and r["fold"] == "1"][:n_clips]:
            y, sr = sf.read(esc50 / "audio" / r["filename"], dtype="float32")
            y44 = resample(torch.from_numpy(y), sr, 44100).numpy()
            folder = dest / f"my_{c}"  # not ESC-50's name, so the head starts fresh as for a sound of one's own
            folder.mkdir(parents=True, exist_ok=True)
            sf.write(folder / f"{Path(r['filename']).stem}.wav", np.stack([y44, y44], 1), 44100)
    return classes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--from", dest="source", default="esc50")
    ap.add_argument("--esc50", type=Path, default=ROOT.parent / "shared" / "data" / "esc50")
    ap.add_argument("--classes", type=int, default=5)
    ap.add_argument("--clips", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "teach.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder, store = Path(tmp) / "mysounds", Path(tmp) / "checkpoints"
        classes = build_folder(args.esc50, folder, args.classes, args.clips, args.seed)
        cmd = [sys.executable, "-m", "audioclf", "train", "--data", str(folder), "--from", args.source,
               "--checkpoints", str(store), "--quiet"]
        env = {**os.environ, "AUDIOCLF_CACHE": str(Path(tmp) / "cache")}  # nothing decoded beforehand
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, cwd=ROOT, env=env)
        seconds = time.perf_counter() - t0
        (run,) = [r for r in map(Run, store.iterdir()) if r.config_file.is_file()]
        res, config = run.results(), run.config
    row = {"command": command_line(), "train_command": "python -m audioclf train --data DIR --from "
           f"{args.source}", "classes": classes, "clips_per_class": args.clips, "wall_seconds": round(seconds, 1),
           "epochs": config.epochs, "folds": list(config.cv_folds),
           "cross_validated_accuracy": res["ensemble"]["accuracy"], "cpu_count": os.cpu_count()}
    args.out.write_text(json.dumps(row, indent=1))
    print(json.dumps(row, indent=1))


if __name__ == "__main__":
    main()
