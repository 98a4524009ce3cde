"""Live listening's latency in the engine (docs/app.md): how many seconds of a sound the default model
needs before it says the right class, and what one hop costs.

    python bench/live.py [--data ../shared/data/esc10] [--run checkpoints/logmel-cnn-f20cd51c328c] [--per-class 8]

The ESC-10 clips of the test fold (fold 1, never trained on; `--per-class` of each class, all 8 by default) is pushed through `audioclf.live.Listener`
as a browser sends it (48 kHz, 20 ms frames) after `--silence` seconds of silence, one torch thread (as
the app's server runs): per clip, the seconds from the sound's onset to the end of the first window whose
sure answer is its class ("sound to label" in stream time: add the compute time and the page's refresh,
at most 1 s, for the wall clock), and any sure wrong answers on the way; per hop, the compute time (wall
clock, which other processes stretch) and the CPU time of the hop's thread (what it costs on a free core).
Writes bench/live.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audioclf import runs  # noqa: E402
from audioclf.audio import load_audio  # noqa: E402
from audioclf.data import open_dataset  # noqa: E402
from audioclf.features import resample  # noqa: E402
from audioclf.inference import load_ensemble  # noqa: E402
from audioclf.live import Listener  # noqa: E402
from bench import command_line  # noqa: E402

RATE, FRAME = 48000, 960  # the browser's rate and 20 ms frames


def clip_latency(lis: Listener, wave: np.ndarray, label: str, silence_s: float) -> dict:
    """Push silence then `wave` (48 kHz mono); when the right sure answer came, and what came before."""
    lis.reset()
    x = np.concatenate([np.zeros(int(silence_s * RATE), np.float32), wave])
    right, wrong, computes, cpu = None, [], [], []
    for i in range(0, len(x), FRAME):
        c0 = time.thread_time()
        answers = lis.push(x[i:i + FRAME], RATE)
        for h in answers:
            computes.append(h.compute_s)
            cpu.append(time.thread_time() - c0)
            if h.end_s <= silence_s or not h.sure:
                continue
            name = lis.classes[h.top]
            if name == label and right is None:
                right = round(h.end_s - silence_s, 2)
            elif name != label and right is None:
                wrong.append(name)
    return {"right_after_s": right, "wrong_before": wrong, "compute_s": computes, "cpu_s": cpu}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.environ.get("AUDIOCLF_ESC10", str(ROOT.parent / "shared" / "data" / "esc10")))
    ap.add_argument("--run", default=None, help="a run folder (default: the default run of ./checkpoints)")
    ap.add_argument("--silence", type=float, default=3.0)
    ap.add_argument("--per-class", type=int, default=8)
    ap.add_argument("--out", default=str(ROOT / "bench" / "live.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    run = runs.default_run(ROOT / "checkpoints") if args.run is None else runs.Run(Path(args.run))
    ens = load_ensemble(run.path)
    lis = Listener(ens, float(run.results()["unsure"]["threshold"]))
    ds = open_dataset(args.data, "esc10")
    clips = [c for c in ds.clips if c.fold == 1]
    clips = [c for c in clips if [d.label for d in clips if d.path.name <= c.path.name].count(c.label) <= args.per_class]
    rows = []
    t0 = time.perf_counter()
    for c in clips:
        data, sr = load_audio(c.path)
        wave = resample(torch.from_numpy(data).float().mean(0), sr, RATE).numpy()
        rows.append({"clip": c.path.name, "class": ds.classes[c.label], **clip_latency(lis, wave, ds.classes[c.label],
                                                                                     args.silence)})
    computes = np.concatenate([r.pop("compute_s") for r in rows])
    cpu = np.concatenate([r.pop("cpu_s") for r in rows])
    found = np.array([r["right_after_s"] for r in rows if r["right_after_s"] is not None])
    summary = {
        "command": command_line(), "run": run.name, "clips": len(rows), "silence_s": args.silence,
        "cpus": os.cpu_count(), "load": round(os.getloadavg()[0], 1), "wall_s": round(time.perf_counter() - t0, 1),
        "right_within_clip": int(len(found)),
        "right_after_s": {q: round(float(np.percentile(found, p)), 2) for q, p in (("median", 50), ("p90", 90))},
        "right_after_s_counts": {f"{s:g}": int((found <= s + 0.05).sum()) for s in (1, 2, 3, 4, 5)},
        "sure_wrong_first": sum(bool(r["wrong_before"]) for r in rows),
        "hop_compute_ms": {q: round(1000 * float(np.percentile(computes, p)), 1) for q, p in (("median", 50),
                                                                                           ("p95", 95))},
        "hop_cpu_ms": {q: round(1000 * float(np.percentile(cpu, p)), 1) for q, p in (("median", 50), ("p95", 95))},
        "hops": int(len(computes)), "rows": rows}
    Path(args.out).write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "rows"}, indent=1))


if __name__ == "__main__":
    main()
