"""One torch thread or two for one clip's prediction, on a shared virtual machine: the median and the tail.

    python bench/threads.py --label "2026-11-29, Xeon without AMX"

The default run's fold ensemble (as `inference.load_ensemble` prepares it here: int8 convolutions on a CPU
without native bf16) on one 5 s clip of noise, `--calls` calls a setting, the settings in turns for `--rounds`
rounds: torch with 1 and with 2 intra-op threads. Beside each setting, the share of the CPU time that the host
took from this virtual machine while it ran ("steal", /proc/stat): a two-thread operation waits at its end for
the slower thread, so a vCPU taken away stalls it. Results merged into bench/threads.json under --label.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench import record  # noqa: E402
from bench.run import machine  # noqa: E402


def cpu_ticks() -> tuple[int, int]:
    """(all ticks, stolen ticks) of the machine so far, from /proc/stat's first line; (0, 0) where absent."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    return sum(fields[:8]), fields[7] if len(fields) > 7 else 0


def timed_calls(predict, wave: torch.Tensor, threads: int, calls: int) -> dict:
    """Milliseconds of `calls` calls with `threads` torch threads (after 5 unmeasured ones), and the steal share."""
    torch.set_num_threads(threads)
    for _ in range(5):
        predict(wave)
    total0, stolen0 = cpu_ticks()
    ms = []
    for _ in range(calls):
        t0 = time.perf_counter()
        predict(wave)
        ms.append(1e3 * (time.perf_counter() - t0))
    total1, stolen1 = cpu_ticks()
    return {"median_ms": statistics.median(ms), "p95_ms": float(np.percentile(ms, 95)),
            "steal": (stolen1 - stolen0) / max(total1 - total0, 1)}


def main() -> None:
    from audioclf.inference import load_ensemble
    from audioclf.runs import default_run

    ap = argparse.ArgumentParser()
    ap.add_argument("--label", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "threads.json")
    args = ap.parse_args()
    run = default_run()
    ens = load_ensemble(run.path)
    wave = torch.randn(1, ens.config.prep.num_samples, generator=torch.Generator().manual_seed(0)) * 0.1
    threads, rounds = torch.get_num_threads(), []
    for r in range(args.rounds):
        rounds.append({t: timed_calls(ens.probabilities, wave, t, args.calls) for t in (1, 2)})
        for t, f in rounds[-1].items():
            print(f"round {r + 1}, {t} thread{'s' * (t > 1)}: median {f['median_ms']:.1f} ms, p95 {f['p95_ms']:.1f} ms, "
                  f"stolen {100 * f['steal']:.1f} %", flush=True)
    torch.set_num_threads(threads)
    record(args.out, args.label, {"machine": machine(), "run": run.path.name, "precision": ens.precision,
                                  "calls": args.calls, "rounds": [{str(t): f for t, f in r.items()} for r in rounds]})


if __name__ == "__main__":
    main()
