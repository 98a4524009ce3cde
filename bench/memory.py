"""Peak memory of classifying a long recording, against a 5 s clip (docs/reliability.md).

    python bench/memory.py [--run checkpoints/cnn-26b949279438] [--minutes 10 100]

Each recording is synthetic noise written as an 8-bit, 8 kHz wav (the longest audio an upload of a
given size can hold), classified in a fresh process with the run's fold ensemble through
`audioclf.inference.predict_file`; the process's peak resident memory (ru_maxrss) is reported, and
recorded in bench/memory.json under the run's name.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench import record  # noqa: E402

CHILD = """
import resource, sys, time, torch
sys.path.insert(0, {root!r})
from audioclf.inference import load_ensemble, predict_file
ens = load_ensemble({run!r})
t0 = time.perf_counter()
res = predict_file(ens, {path!r})
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, time.perf_counter() - t0,
      len(res.get("over_time", {{}}).get("start_s", [0])))
"""


def measure(run: Path, seconds: float, folder: Path) -> dict:
    path = folder / f"noise-{seconds:g}s.wav"
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", 8000, 1, subtype="PCM_U8") as f:
        for start in range(0, int(seconds * 8000), 8000 * 60):  # a minute at a time
            n = min(8000 * 60, int(seconds * 8000) - start)
            f.write(0.3 * rng.standard_normal(n))
    out = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT), run=str(run), path=str(path))],
                         capture_output=True, text=True, check=True)
    peak, secs, windows = out.stdout.split()
    return {"audio_s": seconds, "file_mb": path.stat().st_size / 2**20, "peak_rss_mb": float(peak),
            "seconds": float(secs), "windows": int(windows)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, default=ROOT / "checkpoints" / "cnn-26b949279438")
    ap.add_argument("--minutes", type=float, nargs="+", default=[10, 100])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(args.run, s, Path(tmp)) for s in [5.0, *(60 * m for m in args.minutes)]]
    base = rows[0]["peak_rss_mb"]
    print(f"python bench/memory.py --run {args.run.relative_to(ROOT) if args.run.is_relative_to(ROOT) else args.run}")
    print("| audio | file (8-bit, 8 kHz wav) | windows | peak memory | over the 5 s clip | time |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        audio = f"{r['audio_s']:g} s" if r["audio_s"] < 60 else f"{r['audio_s'] / 60:g} min"
        print(f"| {audio} | {r['file_mb']:.1f} MB | {r['windows']} | {r['peak_rss_mb']:.0f} MB | "
              f"+{r['peak_rss_mb'] - base:.0f} MB | {r['seconds']:.1f} s |")
    record(ROOT / "bench" / "memory.json", args.run.name, {"when": time.strftime("%Y-%m-%d"), "rows": rows})


if __name__ == "__main__":
    main()
