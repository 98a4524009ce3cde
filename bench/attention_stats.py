"""What the shipped transformers' CLS attention looks like on ESC-10's test clips (the Attention page's
"how to read this" cites these figures; docs/app.md lists them).

    python bench/attention_stats.py [--data ../shared/data/esc10] [--checkpoints checkpoints]

For every shipped transformer run (checkpoints/REFERENCE.json), each fold model, each test clip (fold 1):
the last block's CLS attention over its n time tokens (128 for the report's transformer, 63 for the
log-mel one), averaged over the heads, and
  - peak: its largest weight over the even share (1/n): 1 = flat, n = all on one token;
  - top-10 %: the share of attention on the 10 % most-attended tokens (0.10 for flat attention);
  - loud 20 %: the share of attention (relative to even, on the clip's time axis) that falls on the
    loudest 20 % of the clip's time bins (50 ms; a log-mel token's 80 ms) (0.20 when attention ignores
    loudness).
Medians over clips and fold models; written to bench/attention_stats.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audioclf import runs  # noqa: E402
from audioclf.attention import attention_view  # noqa: E402
from audioclf.audio import load_audio  # noqa: E402
from audioclf.data import open_dataset  # noqa: E402
from audioclf.features import waveform  # noqa: E402
from audioclf.store import Run  # noqa: E402
from bench import command_line  # noqa: E402


def clip_stats(out: dict, wave: np.ndarray, sr: int) -> dict[str, float]:
    cls = out["cls"][-1].mean(0)  # last block, mean over heads: (tokens,)
    resolution = float(out["times"][1] - out["times"][0])  # the time bins of 'density': 50 ms, or one log-mel token
    n = cls.shape[-1]
    k = int(np.ceil(0.1 * n))
    rel = out["density"][-1].mean(0) / np.maximum(out["uniform"], 1e-12)  # (bins,) relative to even
    per_bin = int(round(resolution * sr))
    bins = len(rel)
    energy = np.array([np.sqrt(np.mean(wave[b * per_bin:(b + 1) * per_bin] ** 2) + 1e-12) for b in range(bins)])
    loud = energy >= np.quantile(energy, 0.8)
    return {"peak": float(cls.max() * n), "top10": float(np.sort(cls)[::-1][:k].sum() / cls.sum()),
            "loud20": float(rel[loud].sum() / rel.sum())}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "esc10"))
    ap.add_argument("--checkpoints", default=str(ROOT / "checkpoints"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    ds = open_dataset(args.data, "esc10")
    shipped = [r for r in runs.runs_with_weights(Path(args.checkpoints), attention=True) if runs.is_shipped(r)]
    t0 = time.perf_counter()
    table = {}
    for run in sorted(shipped, key=runs.model_sort_key):
        prep = run.config.prep
        waves = []
        for clip in ds.clips:
            if clip.fold == run.config.test_fold:
                data, sr = load_audio(clip.path)
                waves.append(waveform(data, sr, prep).numpy())
        rows = []
        for fold in run.folds_with_weights():
            model = Run(run.path).fold_model(fold, "best", "cpu").model
            rows += [clip_stats(attention_view(model, torch.from_numpy(w), prep), w, prep.sample_rate) for w in waves]
        table[run.config.label] = {key: round(float(np.median([r[key] for r in rows])), 3) for key in rows[0]}
        table[run.config.label]["n"] = len(rows)
        print(run.config.label, table[run.config.label], flush=True)
    out = {"command": command_line(), "seconds": round(time.perf_counter() - t0, 1),
           "flat": {"peak": 1.0, "top10": 0.1, "loud20": 0.2}, "runs": table}
    (ROOT / "bench" / "attention_stats.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
