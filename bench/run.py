"""Benchmarks (never part of the tests). Writes docs/benchmarks.json and docs/benchmarks.md.

    python bench/run.py --run checkpoints/cnn-26b949279438   # everything this machine can run (~9 min, 2 cores)
    python bench/run.py --only predict training              # some sections; the others keep their results
    python bench/run.py --only gpu                           # on a CUDA machine: the protocol (bench/gpu.py)

--data names the ESC-10 folder (default ../shared/data/esc10). Each section records the command and
machine that measured it and what bounds it; see docs/benchmarks.md for the numbers and the discussion.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audioclf.config import PrepConfig, TrainConfig  # noqa: E402
from audioclf.data import open_dataset  # noqa: E402
from audioclf.models import ModelConfig, build_model  # noqa: E402
from bench import command_line  # noqa: E402
from bench.gpu import (GRAPHS_FILE, SESSION_FILE, forward_flops, graphs_markdown, per100_s,  # noqa: E402
                       session_markdown)


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "gpu": gpu,
            "torch": torch.__version__, "python": platform.python_version()}


def bench_data(data: Path) -> dict:
    """Cold build (decode, resample, crop) of the prepared cache into an empty folder, then a warm load."""
    from audioclf.prepare import cache_path, prepare

    ds = open_dataset(data, "esc10")
    tmp = Path(tempfile.mkdtemp())
    try:
        t0 = time.perf_counter()
        p = prepare(ds, PrepConfig(), root=tmp)
        cold = time.perf_counter() - t0
        warm = []
        for _ in range(5):
            t0 = time.perf_counter()
            p = prepare(ds, PrepConfig(), root=tmp)
            float(p.waves.sum())  # touch every page: a load that is really usable
            warm.append(time.perf_counter() - t0)
        size = cache_path(ds, PrepConfig(), tmp).stat().st_size
    finally:
        shutil.rmtree(tmp)
    return {"clips": len(ds), "cold_build_s": cold, "warm_load_s": statistics.median(warm),
            "cache_mb": size / 2**20,
            "bound": "cold: Vorbis decoding and resampling (CPU, 2 threads); warm: reading a 128 MB file "
                     "from the page cache (memory bandwidth)"}


def bench_training(data: Path, models: list[str], epochs: int, rounds: int) -> dict:
    """Clips per second through forward + backward + Adam step on fold 2's training set (240 clips):
    the naive notebook loop (in a fresh process: glibc's default allocator) on the model as the report
    writes it, the same loop on audioclf's model code, audioclf's trainer, and audioclf training one
    fold model per core. Model by model, so that they are measured close together in time; `rounds`
    repeats it all and keeps medians (this machine's speed drifts by 10 %)."""
    from audioclf.allocator import keep_freed_memory
    from audioclf.prepare import prepare
    from bench.naive import NaiveClips

    ds = open_dataset(data, "esc10")
    train_clips = [c for c in ds.clips if c.fold in (3, 4, 5)]
    paths, labels = [str(c.path) for c in train_clips], [c.label for c in train_clips]
    prepared = prepare(ds)
    keep_freed_memory()
    x, y = prepared.subset([3, 4, 5])
    world = min(os.cpu_count() or 1, 4)
    runs: dict = {name: {"naive": [], "naive_our_model": [], "decode": [], "audioclf": [], "parallel": []}
                  for name in models}
    for _ in range(rounds):
        for name in models:
            naive, decode_s = _in_fresh_process(_naive_worker, name, paths, labels, epochs, True)
            runs[name]["naive"].append(naive)
            runs[name]["decode"].append(decode_s)
            ours, _ = _in_fresh_process(_naive_worker, name, paths, labels, epochs, False)
            runs[name]["naive_our_model"].append(ours)
            runs[name]["audioclf"].append(trainer_clips_per_s(name, x, y, epochs))
            if world > 1:
                runs[name]["parallel"].append(fold_parallel_clips_per_s(name, x, y, epochs, world))
    out: dict = {}
    for name in models:
        m = {k: statistics.median(v) for k, v in runs[name].items() if v}
        r = out[name] = {"naive_clips_per_s": m["naive"], "audioclf_clips_per_s": m["audioclf"],
                         "speedup": m["audioclf"] / m["naive"], "runs": runs[name]}
        # One naive epoch = decoding + page faults (the allocator) + the notebook model's compute;
        # the same loop on audioclf's model code separates the last from audioclf's own compute.
        r["naive_our_model_clips_per_s"] = m["naive_our_model"]
        r["naive_epoch_s"] = len(y) / m["naive"]
        r["naive_our_model_epoch_s"] = len(y) / m["naive_our_model"]
        r["audioclf_epoch_s"] = len(y) / m["audioclf"]
        r["naive_decode_s"] = m["decode"]
        r["naive_allocator_s"] = r["naive_our_model_epoch_s"] - m["decode"] - r["audioclf_epoch_s"]
        r["naive_model_code_s"] = r["naive_epoch_s"] - r["naive_our_model_epoch_s"]
        r["flops_per_clip"] = train_flops_per_clip(name)
        r["achieved_gflops"] = m["audioclf"] * r["flops_per_clip"] / 1e9
        if "parallel" in m:
            r.update(parallel_folds=world, parallel_clips_per_s=m["parallel"],
                     parallel_speedup=m["parallel"] / m["naive"])
    # the same inputs reach the model both ways
    x_naive = NaiveClips([str(train_clips[0].path)], [0])[0][0]
    idx = [c.path.name for c in ds.clips].index(train_clips[0].path.name)
    x_ours = prepared.waves[idx].unfold(0, 16000, 8000).reshape(1, -1)
    out["max_input_difference"] = float((x_naive - x_ours).abs().max())
    out["epochs_timed"] = epochs
    out["rounds"] = rounds
    out["bound"] = (
        "naive: decoding every clip in every epoch; page faults on every large activation (glibc hands "
        "blocks over 32 MB back to the OS, so each step faults them in again); and the trunk run as "
        "written, whose (B, C, L) max-pool with indices runs along 5 samples at a time. audioclf removes "
        "the first two and, when training on CPU, runs each block's convolution and max-pool channels-last "
        "(`audioclf.models.conv_pool_nhwc`). What is left is compute, op by op in docs/cpu_step.md "
        "(`python bench/cpu_step.py`): block 2's convolution backward, block 1's convolution (one input "
        "channel), max_pool2d's backward (zero-fill and scatter over block 1's 147 MB output: memory "
        "traffic), BatchNorm, and for the transformer the encoder's matmuls (inner dimension 64) and "
        "dropout masks; the achieved GFLOP/s above is against a measured sgemm peak of about 180 GFLOP/s")
    return out


def trainer_clips_per_s(name: str, x: torch.Tensor, y: torch.Tensor, epochs: int) -> float:
    """audioclf's training epoch (`audioclf.train.train_epoch`), in this process, all threads."""
    t0, t1 = _timed_epochs(name, x, y, epochs, seed=0)
    return epochs * len(y) / (t1 - t0)


def _timed_epochs(name: str, x: torch.Tensor, y: torch.Tensor, epochs: int, seed: int,
                  ready=lambda: None) -> tuple[float, float]:
    """A fresh model's warm-up epoch, `ready()`, then `epochs` timed epochs: (start, end) in
    perf_counter seconds (CLOCK_MONOTONIC, so comparable across processes)."""
    from audioclf.train import train_epoch

    torch.manual_seed(seed)
    model = build_model(ModelConfig(name.split("-")[0], heads=4))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    config = TrainConfig(model=name.split("-")[0])
    gen = torch.Generator().manual_seed(seed)
    train_epoch(model, opt, x, y, torch.randperm(len(y), generator=gen), config)  # warm-up
    ready()
    t0 = time.perf_counter()
    for _ in range(epochs):
        train_epoch(model, opt, x, y, torch.randperm(len(y), generator=gen), config)
    return t0, time.perf_counter()


def _in_fresh_process(fn, *args):
    """fn(*args, queue) in a spawned interpreter; what it puts on the queue."""
    ctx = torch.multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=fn, args=(*args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def _naive_worker(name: str, paths: list[str], labels: list[int], epochs: int, as_written: bool, queue) -> None:
    """The notebook loop's clips per second, and the time of one pass of its decoding alone; on the
    model as the report writes it (`as_written`), or on audioclf's model code.
    Run in a fresh process: glibc's allocator settings are per process, and the benchmark's own
    process keeps freed memory (audioclf.allocator), which the notebook loop must not get for free."""
    from torch.utils.data import DataLoader

    from bench.naive import NaiveClips, as_the_report_writes_it, naive_epoch

    torch.manual_seed(0)
    dataset = NaiveClips(paths, labels)
    model = build_model(ModelConfig(name.split("-")[0], heads=4))
    if as_written:
        model = as_the_report_writes_it(model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(dataset, batch_size=32, shuffle=True)
    naive_epoch(model, opt, loader)  # warm-up
    t0 = time.perf_counter()
    n = sum(naive_epoch(model, opt, loader) for _ in range(epochs))
    clips_per_s = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for i in range(len(dataset)):
        dataset[i]
    queue.put((clips_per_s, time.perf_counter() - t0))


def fold_parallel_clips_per_s(name: str, x: torch.Tensor, y: torch.Tensor, epochs: int, world: int) -> float:
    """Throughput of `world` fold models trained at once, one process and one thread each: what
    `torchrun --nproc-per-node N -m audioclf train ... --spread-folds` does on a CPU (torchrun sets
    OMP_NUM_THREADS=1). Clips of all processes over the wall time from a common start."""
    ctx = torch.multiprocessing.get_context("spawn")
    start, queue = ctx.Barrier(world), ctx.Queue()
    procs = [ctx.Process(target=_fold_worker, args=(name, x, y, epochs, rank, start, queue)) for rank in range(world)]
    for p in procs:
        p.start()
    spans = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    return world * epochs * len(y) / (max(t1 for _, t1 in spans) - min(t0 for t0, _ in spans))


def _fold_worker(name: str, x: torch.Tensor, y: torch.Tensor, epochs: int, rank: int, start, queue) -> None:
    from audioclf.allocator import keep_freed_memory

    torch.set_num_threads(1)
    keep_freed_memory()
    queue.put(_timed_epochs(name, x, y, epochs, seed=rank, ready=start.wait))


def train_flops_per_clip(name: str) -> float:
    """Forward FLOPs from torch's counter, times 3 for forward + backward."""
    return 3.0 * forward_flops(name.split("-")[0])


def test_fold_seconds(data: Path) -> dict[Path, float]:
    """Each ESC-10 test-fold clip's length in seconds (78 of its 80 are 5 s; two about 7 s)."""
    import soundfile as sf

    return {c.path: sf.info(str(c.path)).duration for c in open_dataset(data, "esc10").clips if c.fold == 1}


def bench_predict(data: Path, run: Path | None, repeats: int) -> dict:
    """End to end for one 5 s clip from its file: decode, resample, frame, the fold models, ensemble.

    The target is for a 5 s clip, so the timed files are the test fold's clips of 5 s; the few that are
    longer (ESC-10 has two of about 7 s in fold 1: two windows each) are timed apart."""
    from audioclf.allocator import keep_freed_memory
    from audioclf.inference import FoldEnsemble, load_ensemble, predict_file

    keep_freed_memory()
    ds = open_dataset(data, "esc10")
    seconds = test_fold_seconds(data)
    files = [f for f, s in seconds.items() if abs(s - 5.0) < 0.05]
    longer = [f for f in seconds if f not in files]
    if run is not None:
        ens = load_ensemble(run)
    else:  # untrained weights cost the same time
        cfg = TrainConfig(model="cnn")
        ens = FoldEnsemble(cfg, tuple(ds.classes), (2, 3, 4, 5),
                           tuple(build_model(ModelConfig("cnn")).eval() for _ in range(4)))
    for f in files[:5]:
        predict_file(ens, f)  # warm-up

    def timed(f: Path) -> float:
        t0 = time.perf_counter()
        predict_file(ens, f)
        return (time.perf_counter() - t0) * 1e3

    t = np.array([timed(files[i % len(files)]) for i in range(repeats)])
    t_longer = [timed(f) for f in longer for _ in range(5)]
    steps = forward_steps(run) if run is not None and ens.precision == "bf16" else None
    return {"forward_steps_ms": steps, "model": ens.label, "fold_models": len(ens.models), "clips": repeats,
            "files": len(files), "median_ms": float(np.median(t)), "p95_ms": float(np.percentile(t, 95)),
            "longer_files": [f"{Path(f).name} ({seconds[f]:.1f} s)" for f in longer],
            "longer_median_ms": float(np.median(t_longer)) if t_longer else None,
            "bound": ("the four CNN forward passes (first conv block over 144,000 samples), then Vorbis "
                      "decoding and resampling") if ens.config.model == "cnn" else
                     (f"the fold models' forward passes ({ens.arithmetic}, "
                      + ("ranges measured on training clips (`audioclf.int8`)" if ens.precision == "int8" else
                         "weights channels-last") + ", BatchNorm folded into the convolutions"
                      + (", the spectrogram computed once for all fold models" if ens.shared_front_end else "")
                      + "), then Vorbis decoding (about 10 ms for 5 s at 44.1 kHz) and resampling (2 ms)")}


def forward_steps(run: Path, rounds: int = 5, calls: int = 30) -> dict[str, float]:
    """The fold models' forward pass on one 5 s clip (no file), median ms, as `load_ensemble`'s bf16 path
    adds its steps one by one; the variants take turns, `rounds` times."""
    import copy
    import dataclasses

    from audioclf import inference as inf
    from audioclf.store import Run

    r = Run(run)
    plain = [r.fold_model(f, "best", "cpu").model for f in r.folds_with_weights("best")]
    ens = inf.load_ensemble(run)

    def with_models(*steps) -> inf.FoldEnsemble:
        models = [copy.deepcopy(m).to(memory_format=torch.channels_last) for m in plain]
        for step in steps:
            models = [step(m) for m in models]
        return dataclasses.replace(ens, models=tuple(models), shared_front_end=False)

    variants = {"bf16 autocast, channels-last": with_models(),
                "+ weights held in bf16": with_models(inf.bf16_weights),
                "+ BatchNorm folded into the convolutions": with_models(inf.fuse_conv_bn, inf.bf16_weights),
                "+ the spectrogram once for all fold models": ens}
    wave, times = torch.randn(1, ens.config.prep.num_samples), {k: [] for k in variants}
    for _ in range(rounds):
        for name, e in variants.items():
            for i in range(calls + 3):
                t0 = time.perf_counter()
                inf.predict_waves(e, wave)
                if i >= 3:  # after a warm-up
                    times[name].append((time.perf_counter() - t0) * 1e3)
    return {k: float(np.median(v)) for k, v in times.items()}


def bench_gpu(data: Path) -> dict:
    """The whole protocol (16 fold models, 100 epochs) on the GPU; see bench/gpu.py."""
    if not torch.cuda.is_available():
        return {"note": "Skipped: no CUDA GPU on this machine (bench/gpu.py says how it runs on one)."}
    from audioclf.prepare import prepare
    from bench.gpu import bench_protocol

    return bench_protocol(prepare(open_dataset(data, "esc10")), torch.device("cuda"))


SECTIONS = ("data", "training", "predict", "gpu")
GPU_STAGES = ("_sequential", "_concurrent", "_concurrent_100", "_concurrent_100_mps")  # of bench/gpu_session.json


def write(new: dict, command: str, docs: Path = ROOT / "docs") -> dict:
    """Merge this run's sections into docs/benchmarks.json (a section not run now keeps its last
    result, and a GPU section skipped here keeps one measured elsewhere), then rewrite the markdown."""
    docs.mkdir(exist_ok=True)
    path = docs / "benchmarks.json"
    old = json.loads(path.read_text()) if path.is_file() else {}
    results = {k: v for k, v in old.items() if k in SECTIONS and "machine" in v}
    for name, r in new.items():
        if name == "gpu" and "rows" not in r and "rows" in results.get("gpu", {}):
            continue
        results[name] = {**r, "command": command, "machine": machine()}
    results = {k: results[k] for k in SECTIONS if k in results}
    path.write_text(json.dumps(results, indent=1))
    doc = docs / "benchmarks.md"
    text = "\n".join(markdown(results))
    doc.write_text(text + others_sections(doc.read_text() if doc.is_file() else "", text))
    return results


def others_sections(old: str, new: str) -> str:
    """The '## ' sections of `old` that `new` does not have: those other benchmarks write (bench/onnx_speed.py)."""
    ours = {line for line in new.splitlines() if line.startswith("## ")}
    parts = old.split("\n## ")[1:]
    return "".join(f"\n## {part.rstrip()}\n" for part in parts if f"## {part.splitlines()[0]}" not in ours)


def provenance(r: dict) -> str:
    m = r["machine"]
    return (f"Command: `{r['command']}` on {m['cpu']}, {m['cores']} cores ({m['torch_threads']} torch "
            f"threads), GPU: {m['gpu'] or 'none'}, torch {m['torch']}, Python {m['python']}.")


def markdown(results: dict) -> list[str]:
    lines = ["# Benchmarks", "", "Made by `python bench/run.py` (one section: `--only NAME`); each section "
             "says the command and the machine that measured it.", ""]
    if "data" in results:
        d = results["data"]
        lines += ["## Data: the ESC-10 prepared cache", "", provenance(d), "",
                  "| clips | cold build | warm load | cache size |", "|---|---|---|---|",
                  f"| {d['clips']} | {d['cold_build_s']:.2f} s | {d['warm_load_s'] * 1e3:.0f} ms | {d['cache_mb']:.0f} MB |",
                  "", f"Bound: {d['bound']}.", ""]
    trained = {name: r for name, r in results.get("training", {}).items() if isinstance(r, dict) and "speedup" in r}
    if "training" in results:
        t = results["training"]
        lines += ["## Training throughput on CPU (fold 2's 240 training clips, batch 32)", "", provenance(t), "",
                  "| model | naive loop | audioclf | speed-up | achieved | audioclf, fold models at once | speed-up "
                  "| naive loop on audioclf's model code | speed-up over it |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for name, r in trained.items():
            par = (f"{r['parallel_clips_per_s']:.1f} clips/s ({r['parallel_folds']} x 1 thread) | "
                   f"{r['parallel_speedup']:.2f}x" if "parallel_folds" in r else "- | -")
            lines.append(f"| {name} | {r['naive_clips_per_s']:.1f} clips/s | {r['audioclf_clips_per_s']:.1f} clips/s "
                         f"| {r['speedup']:.2f}x | {r['achieved_gflops']:.1f} GFLOP/s | {par} "
                         f"| {r['naive_our_model_clips_per_s']:.1f} clips/s "
                         f"| {r['audioclf_clips_per_s'] / r['naive_our_model_clips_per_s']:.2f}x |")
        lines += ["", "Naive loop: the notebook's Dataset and DataLoader, training the report's model as the report "
                  "writes it (the trunk an nn.Sequential of Conv1d, ReLU, MaxPool1d, BatchNorm1d; "
                  "`bench/naive.py`). audioclf: one fold model, all torch threads (a plain `python -m audioclf "
                  "train`). Fold models at once: one process per core, each training its own fold with one "
                  "thread, as `torchrun --nproc-per-node N -m audioclf train ... --spread-folds` does; clips of "
                  "all processes over the common wall time. Naive loop on audioclf's model code: the same "
                  "loop with audioclf's `Trunk.forward`, which leaves only data and memory handling between "
                  "the two loops."]
        lines += ["", "Where one epoch's time goes (seconds). Page faults: what is left of the naive loop on "
                  "audioclf's model code after its decoding and audioclf's whole epoch. The trunk as written: "
                  "the naive loop's time beyond that loop on audioclf's model code; its slower kernels and "
                  "the page faults of its larger temporaries (a ReLU over the whole 147 MB conv output, int64 "
                  "max-pool indices) together.", "",
                  "| model | naive: decoding | naive: page faults | naive: the trunk as written | model compute "
                  "(audioclf) | naive total | audioclf total |", "|---|---|---|---|---|---|---|"]
        for name, r in trained.items():
            lines.append(f"| {name} | {r['naive_decode_s']:.2f} | {r['naive_allocator_s']:.2f} | "
                         f"{r['naive_model_code_s']:.2f} | {r['audioclf_epoch_s']:.2f} | {r['naive_epoch_s']:.2f} | "
                         f"{r['audioclf_epoch_s']:.2f} |")
        lines += ["", f"Each figure: the median of {t.get('rounds', 1)} rounds of {t['epochs_timed']} epochs after one warm-up. Largest difference between the "
                  f"inputs the two loops feed the model: {t['max_input_difference']:.2e}.", "",
                  f"Bound: {t['bound']}.", ""]
    if "predict" in results:
        p = results["predict"]
        lines += ["## Prediction latency on CPU (one 5 s clip, file to ensemble)", "", provenance(p), "",
                  "| models | clips | median | p95 |", "|---|---|---|---|",
                  f"| {p['fold_models']} x {p['model']} | {p['clips']} | {p['median_ms']:.1f} ms | {p['p95_ms']:.1f} ms |",
                  ""]
        if p.get("files"):
            lines += [f"Timed in turn: the {p['files']} clips of 5 s in ESC-10's test fold (Ogg Vorbis, 44.1 kHz)."
                      + (f" Longer, timed apart (two windows each): {', '.join(p['longer_files'])}, median "
                         f"{p['longer_median_ms']:.1f} ms." if p.get("longer_files") else ""), ""]
        lines += [f"Bound: {p['bound']}.", ""]
        if p.get("forward_steps_ms"):
            lines += ["The forward pass alone (one 5 s clip, no file), median, as each step of `load_ensemble`'s "
                      "bf16 path is added:", "", "| | median |", "|---|---|",
                      *[f"| {k} | {v:.1f} ms |" for k, v in p["forward_steps_ms"].items()], ""]
    if "gpu" in results and ("rows" in results["gpu"] or not SESSION_FILE.is_file()):
        from bench.gpu import markdown as gpu_markdown

        g = results["gpu"]
        lines += ["## GPU: the whole report protocol", "", provenance(g), "",
                  *(gpu_markdown(g) if "rows" in g else [g["note"], ""])]
    session = json.loads(SESSION_FILE.read_text()) if SESSION_FILE.is_file() else None
    if GRAPHS_FILE.is_file():  # lent GPU machines' `bench/gpu.py --graphs` and `--side-by-side` (see bench/gpu.py)
        lines += ["## GPU: the ESC-50 recipe and the report's 16 fold models", "",
                  *graphs_markdown(json.loads(GRAPHS_FILE.read_text()), session)]
    if session:  # a lent GPU machine's `bench/gpu.py --session` (see bench/gpu.py)
        lines += ["## GPU before CUDA graphs" if GRAPHS_FILE.is_file() else
                  "## GPU: the ESC-50 recipe and the report's 16 fold models", "", *session_markdown(session)]
    lines += ["## Against the targets", ""]
    for name, r in trained.items():
        verdict = "met" if r["speedup"] >= 3 else (
            f"NOT met; it needs {r['naive_epoch_s'] / 3:.2f} s per epoch, "
            f"{1 - r['naive_epoch_s'] / 3 / r['audioclf_epoch_s']:.0%} less compute with the naive loop unchanged")
        rounds = [a / n for a, n in zip(r["runs"]["audioclf"], r["runs"]["naive"])]
        lines.append(f"- Training {name}, one fold model: {r['speedup']:.2f}x the naive loop (single rounds "
                     f"{min(rounds):.2f}-{max(rounds):.2f}x; target 3x): {verdict}.")
        if "parallel_speedup" in r:
            lines.append(f"- Training {name}, {r['parallel_folds']} fold models at once: "
                         f"{r['parallel_speedup']:.2f}x (target 3x): "
                         f"{'met' if r['parallel_speedup'] >= 3 else 'NOT met'}.")
    if SESSION_FILE.is_file():
        r = json.loads(SESSION_FILE.read_text())
        g = json.loads(GRAPHS_FILE.read_text()) if GRAPHS_FILE.is_file() else {}
        for name, what in (("recipe", "ESC-50 recipe, 4 fold models"), ("protocol", "report's 16 fold models")):
            stages = [r.get(f"{name}{stage}") for stage in GPU_STAGES]
            stages += [g[k].get(f"{name}{stage}") for k in ("graphs", "graphs_mps", "side_by_side") if k in g
                       for stage in ("_sequential", "_concurrent_100", "_at_once")]
            best = min(map(per100_s, stages))
            lines.append(f"- GPU, {what} x 100 epochs in {best:.0f} s at best (aim under 60 s, issue 11): "
                         f"{'met' if best < 60 else f'NOT met, by {best - 60:.1f} s'}.")
        one_by_one = per100_s((g.get("graphs") or r)["protocol_sequential"])
        at_once = min(map(per100_s, [r.get(f"protocol{stage}") for stage in GPU_STAGES[1:]]
                          + [g.get("side_by_side", {}).get("protocol_at_once")]))
        lines.append(f"- GPU, whole protocol under 120 s: {at_once:.0f} s with the fold models at once, "
                     f"{'met' if at_once < 120 else 'NOT met'}; {one_by_one:.0f} s one after another as "
                     f"`train` runs them, {'met' if one_by_one < 120 else 'NOT met'}.")
    elif "gpu" in results:
        g = results["gpu"]
        if g.get("epochs") == 100 and g.get("fold_models") == 16:
            lines.append(f"- GPU, whole protocol {g['wall_s']:.0f} s (target under 120 s): "
                         f"{'met' if g['wall_s'] < 120 else 'NOT met'}.")
        else:
            lines.append("- GPU, whole protocol under 120 s: not measured (no GPU run of all 16 fold models yet).")
    if "predict" in results:
        p = results["predict"]
        lines.append(f"- Prediction p95 {p['p95_ms']:.1f} ms (target under 50 ms, issue 11): "
                     f"{'met' if p['p95_ms'] < 50 else 'NOT met'}.")
    lines.append("")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "esc10")
    ap.add_argument("--only", nargs="+", choices=["data", "training", "predict", "gpu"])
    ap.add_argument("--models", nargs="+", default=["cnn", "transformer-4h"])
    ap.add_argument("--epochs", type=int, default=2, help="timed training epochs per measurement")
    ap.add_argument("--rounds", type=int, default=3, help="training measurements to take the median of")
    ap.add_argument("--run", type=Path, help="run folder whose fold models predict (default: untrained CNNs)")
    ap.add_argument("--repeats", type=int, default=100)
    ap.add_argument("--render", action="store_true",
                    help="measure nothing: rewrite docs/benchmarks.md from docs/benchmarks.json and bench/gpu_*.json")
    args = ap.parse_args()
    if args.render:
        write({}, "")
        return
    todo = args.only or ["data", "training", "predict", "gpu"]
    results: dict = {}
    if "data" in todo:
        results["data"] = bench_data(args.data)
    if "predict" in todo:
        results["predict"] = bench_predict(args.data, args.run, args.repeats)
    if "training" in todo:
        results["training"] = bench_training(args.data, args.models, args.epochs, args.rounds)
    if "gpu" in todo:
        results["gpu"] = bench_gpu(args.data)
    write(results, command_line())
    print((ROOT / "docs" / "benchmarks.md").read_text())


if __name__ == "__main__":
    main()
