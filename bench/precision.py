"""bfloat16 against float32, and channels-last, on this CPU: a training step of the recipe, and the default
ensemble's forward pass and file-to-answer time.

    python bench/precision.py --label "Xeon, no AMX"

The recipe's runs ask for bf16 ("autocast where it is faster"). On a CPU with AVX512-BF16 or AMX that is
faster; on another AVX-512 CPU oneDNN emulates it. This times both precisions on the machine it runs on,
in turns (--rounds rounds of each, one after the other, so that a drift of the shared machine hits all):
a training step (forward, backward, AdamW) of logmel-cnn on 64 crops of 3 s, 50 classes, in float32 with
the model as built (NCHW) and channels-last, and in bf16 as built; the forward pass of a run's 4 fold
models on one 5 s clip as stored ("fp32 as stored": what `load_ensemble` gave in float32 before 2026-11-28)
and as `inference.load_ensemble` prepares them for each precision (int8: `audioclf.int8`, where the run
has its ranges); and the same from file to answer (`inference.predict_file`) over ESC-10's 78 test clips
of 5 s (--data). `--only-predict` skips the training steps. Results merged into bench/precision.json
under --label.
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
from audioclf.runs import default_run  # noqa: E402
from bench import record  # noqa: E402
from bench.run import machine, test_fold_seconds  # noqa: E402


STEPS = ("fp32", "fp32 channels-last", "bf16")
FORWARDS = ("fp32 as stored", "fp32", "bf16", "int8")


def step_seconds(variant: str, steps: int) -> list[float]:
    """Seconds per training step of the recipe's model, under bf16 autocast or in float32 (channels-last
    where the variant says so)."""
    from audioclf.config import TrainConfig
    from audioclf.models import build_model

    torch.manual_seed(0)
    model = build_model(TrainConfig(model="logmel-cnn").model_config(50))
    if variant.endswith("channels-last"):
        model = model.to(memory_format=torch.channels_last)
    precision = variant.split()[0]
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


def ensemble(run: Path, variant: str):
    """The run's fold ensemble as `load_ensemble` prepares it for the variant's precision, or as stored."""
    import dataclasses

    from audioclf.inference import load_ensemble, shares_front_end
    from audioclf.store import Run

    ens = load_ensemble(run, precision=variant.split()[0])
    if variant == "fp32 as stored":
        models = tuple(Run(run).fold_model(f).model for f in ens.folds)
        ens = dataclasses.replace(ens, models=models, shared_front_end=shares_front_end(models))
    return ens


def forward_seconds(run: Path, variant: str, repeats: int) -> list[float]:
    """Seconds per forward pass of the run's ensemble on one 5 s clip."""
    from audioclf.inference import predict_waves

    ens = ensemble(run, variant)
    wave = torch.randn(1, int(ens.config.prep.sample_rate * ens.config.prep.duration))
    times = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        predict_waves(ens, wave)
        times.append(time.perf_counter() - t0)
    return times[1:]


def file_seconds(run: Path, variant: str, files: list[Path]) -> list[float]:
    """Seconds from file to answer (`inference.predict_file`: decode, resample, the ensemble) per file, after 5
    warm-up files: what the README's and issue 11's prediction time is."""
    from audioclf.inference import predict_file

    ens = ensemble(run, variant)
    for f in files[:5]:
        predict_file(ens, f)
    times = []
    for f in files:
        t0 = time.perf_counter()
        predict_file(ens, f)
        times.append(time.perf_counter() - t0)
    return times


def five_second_clips(data: Path) -> list[Path]:
    """ESC-10's test-fold clips of 5 s (the two longer ones would be two windows each)."""
    return [p for p, s in test_fold_seconds(data).items() if abs(s - 5.0) < 0.05]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, default=None, help="a run folder (default: the shipped ESC-10 default)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "esc10",
                    help="ESC-10, whose test-fold clips of 5 s are timed from file to answer")
    ap.add_argument("--only-predict", action="store_true", help="no training steps")
    ap.add_argument("--label", required=True)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "precision.json")
    args = ap.parse_args()
    args.run = args.run or default_run(ROOT / "checkpoints").path
    from audioclf.device import fast_bf16
    from audioclf.store import Run

    steps = () if args.only_predict else STEPS
    run = Run(args.run)
    forwards = [v for v in FORWARDS if v != "int8" or all(run.load_ranges(f) for f in run.folds_done())]
    step: dict[str, list[float]] = {v: [] for v in steps}
    forward: dict[str, list[float]] = {v: [] for v in forwards}
    answer: dict[str, list[float]] = {v: [] for v in forwards}
    files = five_second_clips(args.data)
    for r in range(args.rounds):
        for v in steps:
            step[v] += step_seconds(v, args.steps)
            print(f"round {r + 1}, {v}: step median {statistics.median(step[v]):.2f} s", flush=True)
        for v in forwards:
            forward[v] += forward_seconds(args.run, v, args.repeats)
            print(f"round {r + 1}, {v}: forward median {1e3 * statistics.median(forward[v]):.1f} ms", flush=True)
        for v in forwards:
            answer[v] += file_seconds(args.run, v, files)
            print(f"round {r + 1}, {v}: file to answer median {1e3 * statistics.median(answer[v]):.1f} ms", flush=True)
    entry = {"machine": machine(), "native_bf16": fast_bf16("cpu"), "run": args.run.name,
             "step_median_s": {p: statistics.median(v) for p, v in step.items()},
             "forward_median_ms": {p: 1e3 * statistics.median(v) for p, v in forward.items()},
             "forward_p95_ms": {p: 1e3 * sorted(v)[int(0.95 * (len(v) - 1))] for p, v in forward.items()},
             "file_to_answer": {"clips": len(files), "rounds": args.rounds,
                                "median_ms": {p: 1e3 * statistics.median(v) for p, v in answer.items()},
                                "p95_ms": {p: 1e3 * sorted(v)[int(0.95 * (len(v) - 1))] for p, v in answer.items()}}}
    fwd, med = entry["forward_median_ms"], entry["file_to_answer"]["median_ms"]
    if steps:
        entry["bf16_over_fp32"] = {"step": entry["step_median_s"]["bf16"] / entry["step_median_s"]["fp32"],
                                   "forward": fwd["bf16"] / fwd["fp32"]}
        entry["channels_last_speedup"] = {
            "step": entry["step_median_s"]["fp32"] / entry["step_median_s"]["fp32 channels-last"],
            "forward": fwd["fp32 as stored"] / fwd["fp32"]}
    if "int8" in fwd:
        entry["int8_speedup"] = {"forward": fwd["fp32"] / fwd["int8"], "file_to_answer": med["fp32"] / med["int8"]}
    print(entry)
    record(args.out, args.label, entry)


if __name__ == "__main__":
    main()
