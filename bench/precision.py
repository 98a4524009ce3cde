"""bfloat16 against float32 on this CPU: a training step of the recipe and the default ensemble's forward pass.

    python bench/precision.py --label "Xeon, no AMX"

The recipe's runs ask for bf16 ("autocast where it is faster"). On a CPU with AVX512-BF16 or AMX that is
faster; on another AVX-512 CPU oneDNN emulates it. This times both precisions on the machine it runs on,
in turns (--rounds rounds of each, one after the other, so that a drift of the shared machine hits both):
a training step (forward, backward, AdamW) of logmel-cnn on 64 crops of 3 s, 50 classes; and the forward
pass of a run's 4 fold models on one 5 s clip, as `inference.load_ensemble` prepares them for each precision.
Results merged into bench/precision.json under --label.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench import record  # noqa: E402
from bench.run import machine  # noqa: E402


def step_seconds(precision: str, steps: int) -> list[float]:
    """Seconds per training step of the recipe's model, under bf16 autocast or in float32."""
    from audioclf.config import TrainConfig
    from audioclf.models import build_model

    torch.manual_seed(0)
    model = build_model(TrainConfig(model="logmel-cnn").model_config(50))
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    x, y = torch.randn(64, 48000), torch.randint(0, 50, (64,))
    times = []
    for _ in range(steps + 1):  # the first is a warm-up
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits.float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return times[1:]


def forward_seconds(run: Path, precision: str, repeats: int) -> list[float]:
    """Seconds per forward pass of the run's ensemble on one 5 s clip."""
    from audioclf.inference import load_ensemble, predict_waves

    ens = load_ensemble(run, precision=precision)
    wave = torch.randn(1, int(ens.config.prep.sample_rate * ens.config.prep.duration))
    times = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        predict_waves(ens, wave)
        times.append(time.perf_counter() - t0)
    return times[1:]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, default=ROOT / "checkpoints" / "logmel-cnn-taught-9872ca59ef17")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--label", required=True)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "precision.json")
    args = ap.parse_args()
    from audioclf.device import fast_bf16

    step: dict[str, list[float]] = {"fp32": [], "bf16": []}
    forward: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for r in range(args.rounds):
        for p in ("fp32", "bf16"):
            step[p] += step_seconds(p, args.steps)
            forward[p] += forward_seconds(args.run, p, args.repeats)
            print(f"round {r + 1}, {p}: step median {statistics.median(step[p]):.2f} s, "
                  f"forward median {1e3 * statistics.median(forward[p]):.1f} ms", flush=True)
    entry = {"machine": machine(), "native_bf16": fast_bf16("cpu"), "run": args.run.name,
             "step_median_s": {p: statistics.median(v) for p, v in step.items()},
             "forward_median_ms": {p: 1e3 * statistics.median(v) for p, v in forward.items()},
             "forward_p95_ms": {p: 1e3 * sorted(v)[int(0.95 * (len(v) - 1))] for p, v in forward.items()}}
    entry["bf16_over_fp32"] = {"step": entry["step_median_s"]["bf16"] / entry["step_median_s"]["fp32"],
                               "forward": entry["forward_median_ms"]["bf16"] / entry["forward_median_ms"]["fp32"]}
    print(entry)
    record(args.out, args.label, entry)


if __name__ == "__main__":
    main()
