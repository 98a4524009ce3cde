"""The report's whole protocol on one device: the CNN and the transformer with 1, 2 and 4 heads, four
cross-validation folds each, 100 epochs: 16 fold models, timed one by one with audioclf's own trainer.

    python bench/run.py --only gpu                     # on a machine with a CUDA GPU (writes docs/)
    python bench/gpu.py --device cpu --epochs 1        # the same code path here, as a smoke test

What it measures, and what it does not (yet):
- `train_fold` as users run it: the fold's clips resident on the device, batch 32, one fold model after
  another, each step replayed from a CUDA graph (`audioclf.cuda_graphs`), 2-D convolutions channels-last, the
  resume file written every 10 s. Wall time per fold model and in total.
- Fold models side by side in one process (`train --folds-at-once`: a thread and a CUDA stream each), and in
  processes of their own under MPS.
- Achieved FLOP/s (training: 3x the forward FLOPs per clip; validation: 1x) next to the device's
  measured dense matmul peak (fp32 without TF32, and bf16) from `matmul_peak`.
- Not built: the fold models as one batched model (one launch for all four).

Without a CUDA GPU, `--device cuda` (the default) skips cleanly. The module imports nothing that needs
libsndfile, librosa or streamlit, so `--prepared FILE` (a cache file written by `audioclf.prepare`)
runs on a machine that has only torch.

The device checks a lent GPU session runs (this workplace's `device` tool), on synthetic clips (the real ones
do not fit in a call beside checkpoints/). Since CUDA graphs (results in bench/gpu_graphs.json, rendered in
docs/benchmarks.md by `python bench/run.py --render`):

    python bench/gpu.py --graphs $OUT      # plain against graphed epochs; learning on tones; both workloads, 100 epochs
    nvidia-cuda-mps-control -d; python bench/gpu.py --at-once $OUT    # then, in the same call: processes under MPS
    python bench/gpu.py --side-by-side $OUT --kernels   # top kernels, channels-last; fold models in threads
    python bench/gpu.py --side-by-side $OUT             # the recipe one after another again; fold models in threads

Before them (bench/gpu_session.json): profiles, then the ESC-50 recipe and the 16 fold models, one after
another and all at once:

    python bench/gpu.py --session $OUT --budget-s 460 --data none
    python bench/gpu.py --at-once $OUT     # the two 'all at once' stages at 100 epochs, if the budget cut them
    nvidia-cuda-mps-control -d; python bench/gpu.py --at-once $OUT    # the same under MPS (the *_mps rows)
    python bench/gpu.py --profile $OUT     # the per-epoch profiles alone; run from a tree holding an older
                                           # audioclf/ for before-figures (git archive REV audioclf)

For the report's protocol on real ESC-10 (needs the clips, 41 MB, and three wheels, 1.6 MB, in ignored
folders, which with checkpoints/ exceed a call's 64 MB):

    mkdir -p .gpudata && cp -r ../shared/data/esc10 .gpudata/
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl soundfile cffi pycparser
    # there, carrying .gpudata and .whl:
    pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
    python bench/run.py --only gpu --data .gpudata/esc10        # merges into docs/benchmarks.*
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audioclf.config import PrepConfig, TrainConfig  # noqa: E402
from audioclf.models import build_model  # noqa: E402
from audioclf.prepare import Prepared, load_prepared  # noqa: E402
from audioclf.train import train_fold  # noqa: E402

PROTOCOL = [("cnn", 0), ("transformer", 1), ("transformer", 2), ("transformer", 4)]


def forward_flops(model: str, heads: int = 4, n_classes: int = 10, prep: PrepConfig = PrepConfig()) -> float:
    """FLOPs of one clip's forward pass, from torch's counter (matmuls and convolutions)."""
    from torch.utils.flop_counter import FlopCounterMode

    from audioclf.features import model_input

    config = TrainConfig(model=model, heads=heads or None)
    net = build_model(config.model_config(n_classes)).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(model_input(net, torch.randn(1, prep.num_samples), prep))
    return float(counter.get_total_flops())


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int = 8192, repeats: int = 20) -> float:
    """Dense matmul FLOP/s of an n x n x n product: the roof the training FLOP/s is read against."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    _sync(device)
    return 2 * n ** 3 * repeats / (time.perf_counter() - t0)


def bench_protocol(prepared: Prepared, device: torch.device, epochs: int = 100,
                   models: list[tuple[str, int]] = PROTOCOL, prep: PrepConfig = PrepConfig(),
                   configs: list[TrainConfig] | None = None, graphs: bool | None = None) -> dict:
    """Train every fold model of `models` (or of `configs`, which then set everything) for `epochs` epochs
    on `device`; times and FLOP/s. `prep` must be the one `prepared` was made with (the report's by default)."""
    if configs:
        epochs = configs[0].epochs
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32 here, as on the CPU
    torch.backends.cudnn.allow_tf32 = False
    rows, total_flops = [], 0.0
    with tempfile.TemporaryDirectory() as root:
        t_all = time.perf_counter()
        for config in configs or [TrainConfig(model=m, heads=h, epochs=epochs, prep=prep) for m, h in models]:
            fwd = forward_flops(config.model, config.heads, len(prepared.classes), config.prep)
            for fold in config.cv_folds:
                n_train = int(torch.isin(prepared.folds, torch.tensor([f for f in config.cv_folds if f != fold])).sum())
                n_val = int((prepared.folds == fold).sum())
                _sync(device)
                t0 = time.perf_counter()
                history = train_fold(config, prepared, fold, device, root=Path(root), show_bar=False, graphs=graphs)
                _sync(device)
                seconds = time.perf_counter() - t0
                flops = epochs * (3 * fwd * n_train + fwd * n_val)
                total_flops += flops
                rows.append({"model": config.label, "fold": fold, "seconds": seconds,
                             "epochs_s": sum(h["seconds"] for h in history),
                             "final_val_acc": history[-1]["val_acc"], "tflops": flops / seconds / 1e12})
        wall = time.perf_counter() - t_all
    out = {"device": _name(device), "epochs": epochs, "fold_models": len(rows), "wall_s": wall,
           "achieved_tflops": total_flops / wall / 1e12, "rows": rows,
           "peak_fp32_tflops": matmul_peak(device, torch.float32, *_peak_size(device)) / 1e12}
    if device.type == "cuda":
        out["peak_bf16_tflops"] = matmul_peak(device, torch.bfloat16) / 1e12
    return out


PROTOCOL_CONFIGS = [TrainConfig(model=m, heads=h, epochs=100) for m, h in PROTOCOL]  # the report's, as `train` runs them
RECIPE = TrainConfig(model="logmel-cnn", epochs=100)  # `train --model logmel-cnn --subset esc50 --epochs 100`


def synthetic(n_classes: int, per_fold: int, folds: int = 5, samples: int = 80000, seed: int = 0) -> Prepared:
    """Noise clips shaped like a dataset (5 s at 16 kHz): for timing only. A fold model's cost does not
    depend on what the clips hold, and ESC-50 (170 MB) cannot travel to the lent GPU machine (64 MB)."""
    g = torch.Generator().manual_seed(seed)
    n = per_fold * folds
    return Prepared(waves=0.1 * torch.randn(n, samples, generator=g),
                    labels=torch.arange(n) % n_classes, folds=torch.arange(n) // per_fold + 1,
                    classes=tuple(f"class{i}" for i in range(n_classes)), names=tuple(f"{i}.wav" for i in range(n)))


def profile_epoch(config: TrainConfig, prepared: Prepared, device: torch.device, fold: int = 2,
                  graphed: bool = False, channels_last: bool = False, top_kernels: int = 0) -> dict:
    """Where one epoch's time goes: training steps, validation and the per-epoch checkpoint, and how much of
    the training steps' wall time the GPU spends in kernels (from torch.profiler). `graphed`: the steps
    replayed from CUDA graphs (`audioclf.cuda_graphs`), as `train` runs them on a GPU now."""
    from audioclf.store import Run
    from audioclf.train import _cpu_state, evaluate_loss, graphed_steps, make_optimizer, make_schedule, train_epoch

    x, y = (t.to(device) for t in prepared.subset([f for f in config.cv_folds if f != fold]))
    xv, yv = (t.to(device) for t in prepared.subset([fold]))
    model = build_model(config.model_config(len(prepared.classes))).to(device)
    if channels_last:  # an option measured here, not what the trainer does
        model = model.to(memory_format=torch.channels_last)
    opt = make_optimizer(model, config)
    sched = make_schedule(opt, config, -(-len(y) // config.batch_size))
    n = len(prepared.classes)
    steps = graphed_steps(model, x, y, config, n) if graphed else None

    def epoch() -> float:
        _sync(device)
        t0 = time.perf_counter()
        train_epoch(model, opt, x, y, torch.randperm(len(y), device=device), config, sched=sched, n_classes=n,
                    steps=steps)
        _sync(device)
        return time.perf_counter() - t0

    epoch()  # warm-up: cuDNN's algorithm search, allocator growth
    train_s = min(epoch(), epoch())
    t0 = time.perf_counter()
    evaluate_loss(model, xv, yv, config)
    val_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as root:
        run = Run.of(config, Path(root))
        t0 = time.perf_counter()
        run.save_resume(fold, {"model": _cpu_state(model), "optimizer": opt.state_dict()})
        save_s = time.perf_counter() - t0
    out = {"model": config.label, "train_clips": len(y), "steps": -(-len(y) // config.batch_size),
           "graphed": graphed, "graphs": steps.graphs if steps else 0, "channels_last": channels_last,
           "record_s": steps.record_s if steps else 0.0, "train_s": train_s, "val_s": val_s, "checkpoint_s": save_s,
           "epoch_s": train_s + val_s + save_s}
    if device.type == "cuda":
        try:
            from torch.profiler import ProfilerActivity, profile

            with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
                wall = epoch()
            kernels = [e for e in prof.events() if e.device_type.name == "CUDA"]
            busy = sum(e.time_range.elapsed_us() for e in kernels) / 1e6
            out.update(kernel_s=busy, gpu_busy=busy / wall, kernels_per_step=len(kernels) / out["steps"])
            if top_kernels:
                by_name: dict[str, list[float]] = {}
                for e in kernels:
                    t = by_name.setdefault(e.name[:120], [0.0, 0])
                    t[0] += e.time_range.elapsed_us() / 1e6
                    t[1] += 1
                ranked = sorted(by_name.items(), key=lambda kv: -kv[1][0])[:top_kernels]
                out["top_kernels"] = [{"kernel": k, "s": v[0], "share": v[0] / busy, "count": v[1]} for k, v in ranked]
        except Exception as e:  # the profile is a diagnosis; its failure must not cost the timings
            out["profile_error"] = repr(e)
    return out


def _fold_worker(config_json: str, prepared_path: str, fold: int, device: str, root: str) -> None:
    torch.set_num_threads(1)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    config = TrainConfig.from_dict(json.loads(config_json))
    history = train_fold(config, load_prepared(Path(prepared_path)), fold, torch.device(device),
                         root=Path(root), show_bar=False)
    (Path(root) / f"{config.label}-{fold}.json").write_text(json.dumps(history[-1]))


def bench_concurrent(configs: list[TrainConfig], prepared: Prepared, device: torch.device) -> dict:
    """Every fold model of `configs` at once, one process each on the one device: the wall time from the
    first process's start to the last one's end (Python and CUDA start-up included)."""
    import torch.multiprocessing as mp
    from audioclf.prepare import save_prepared

    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory() as root:
        path = Path(root) / "prepared.pt"
        save_prepared(prepared, path)
        t0 = time.perf_counter()
        procs = [ctx.Process(target=_fold_worker, args=(c.to_json(), str(path), f, str(device), root))
                 for c in configs for f in c.cv_folds]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        wall = time.perf_counter() - t0
        vals = [json.loads(q.read_text())["val_acc"] for q in Path(root).glob("*-*.json")]
    return {"models": [c.label for c in configs], "epochs": configs[0].epochs, "fold_models": len(procs),
            "processes_failed": sum(p.exitcode != 0 for p in procs), "wall_s": wall,
            "mean_final_val_acc": sum(vals) / max(len(vals), 1)}


def _saver(path: Path, result: dict, t_start: float):
    """What a device check calls after each stage: `result` to `path` as JSON, and a line saying so (what came
    back from a call cut short by its limit holds every stage finished before)."""
    def save() -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1))
        print(f"[{time.perf_counter() - t_start:.0f} s] saved: {list(result)}", flush=True)
    return save


def per100_s(stage: dict | None) -> float:
    """A stage's wall time scaled to 100 epochs; inf where it was not measured or failed (no wall time)."""
    return stage["wall_s"] * 100 / stage["epochs"] if stage and "wall_s" in stage else float("inf")


def session(out: Path, budget_s: float, esc10: Path | None, device: torch.device, per_fold: int = 400) -> dict:
    """The device check a lent GPU session runs (see the module docstring): profiles, then the ESC-50 recipe
    and the report's 16 fold models end to end, all at once (100 epochs where the budget allows) and one after
    another, within `budget_s`. A stage that would not fit runs fewer epochs and says so. Results go to `out`/gpu.json after
    each stage."""
    t_start = time.perf_counter()
    result: dict = {"device": _name(device), "torch": torch.__version__}

    save = _saver(out / "gpu.json", result, t_start)

    esc50 = synthetic(50, per_fold)
    result["esc50_data"] = "synthetic noise, ESC-50's shape (2,000 clips of 5 s at 16 kHz, 50 classes)"
    report = None
    if esc10 is not None:
        try:
            from audioclf.data import open_dataset
            from audioclf.prepare import prepare

            t0 = time.perf_counter()
            report = prepare(open_dataset(esc10, "esc10"), root=Path(tempfile.mkdtemp()))
            result["esc10_data"] = f"real ESC-10 ({esc10}), decoded in {time.perf_counter() - t0:.1f} s"
        except Exception as e:
            result["esc10_error"] = repr(e)
    if report is None:
        report = synthetic(10, max(per_fold // 5, 2))
        result["esc10_data"] = "synthetic noise, ESC-10's shape (400 clips)"
    protocol = PROTOCOL_CONFIGS
    result["profile"] = profiles(device, esc50, report)
    if device.type == "cuda":  # an option, measured here, not what the trainer does
        torch.backends.cudnn.benchmark = True
        result["profile_cudnn_benchmark"] = [profile_epoch(RECIPE, esc50, device), profile_epoch(protocol[0], report, device)]
        torch.backends.cudnn.benchmark = False
    save()
    epoch_s = {p["model"]: p["epoch_s"] for p in result["profile"]}

    def left() -> float:
        return budget_s - (time.perf_counter() - t_start)

    for name, configs, data in (("recipe_concurrent", [RECIPE], esc50), ("protocol_concurrent", protocol, report)):
        # All at once took 0.56 of the time of one by one at the profiled pace (an H100, 2026-11-27: 126 s against
        # 226 s for the recipe); 0.7 of it leaves room for start-up, so that a stage is cut only when it must be.
        est = 0.7 * sum(epoch_s[c.label] * len(c.cv_folds) for c in configs) * 100
        share = left() * (0.3 if name.startswith("recipe") else 0.45)
        epochs = 100 if est <= share else max(1, int(100 * share / est))
        result[f"{name}{'_100' if epochs == 100 else ''}"] = bench_concurrent(with_epochs(configs, epochs), data, device)
        save()

    def fit(configs: list[TrainConfig], share: float) -> list[TrainConfig]:
        """The configs at 100 epochs, or fewer so that the stage takes about `share` of what is left."""
        per_epoch = sum(epoch_s[c.label] * len(c.cv_folds) for c in configs) * 1.15
        return with_epochs(configs, max(1, min(100, int(share * left() / per_epoch))))

    result["recipe_sequential"] = bench_protocol(esc50, device, configs=fit([RECIPE], 0.5))
    save()
    result["protocol_sequential"] = bench_protocol(report, device, configs=fit(protocol, 0.9))
    result["wall_s"] = time.perf_counter() - t_start
    save()
    return result


def tones(n_classes: int, per_fold: int, folds: int = 5, samples: int = 80000, seed: int = 0) -> Prepared:
    """Clips that can be learnt, for checking that a faster path still learns: class k is a tone at its own
    pitch (evenly spaced in mel from 200 Hz to 6 kHz), at a random phase and level, in noise."""
    g = torch.Generator().manual_seed(seed)
    n = per_fold * folds
    labels = torch.arange(n) % n_classes
    t = torch.arange(samples) / 16000
    mel = lambda hz: 2595.0 * math.log10(1 + hz / 700.0)  # noqa: E731 (HTK's mel scale)
    pitch = 700.0 * (10.0 ** (torch.linspace(mel(200.0), mel(6000.0), n_classes)[labels] / 2595.0) - 1)
    phase = torch.rand(n, 1, generator=g) * 6.2832
    level = 0.05 + 0.3 * torch.rand(n, 1, generator=g)
    waves = level * torch.sin(6.2832 * pitch[:, None] * t + phase) + 0.02 * torch.randn(n, samples, generator=g)
    return Prepared(waves=waves, labels=labels, folds=torch.arange(n) // per_fold + 1,
                    classes=tuple(f"tone{i}" for i in range(n_classes)), names=tuple(f"{i}.wav" for i in range(n)))


def graphs_session(out: Path, device: torch.device, per_fold: int = 400, learn_epochs: int = 12) -> dict:
    """The device check of the CUDA-graph steps (`python bench/gpu.py --graphs OUT`), into OUT/graphs.json
    after each stage: (1) one epoch of each model, plain and graphed, on the same machine; stops there if no
    graph was captured; (2) the recipe on learnable tones, plain and graphed, a few epochs: both must learn;
    (3) the ESC-50 recipe's 4 fold models and the report's 16, one after another as `train` runs them,
    100 epochs. The 'all at once' stages are `--at-once`, run after it (under MPS, started between)."""
    t_start = time.perf_counter()
    result: dict = {"device": _name(device), "torch": torch.__version__}

    save = _saver(out / "graphs.json", result, t_start)

    esc50, report = synthetic(50, per_fold), synthetic(10, max(per_fold // 5, 2))
    result["profile_plain"] = profiles(device, esc50, report)
    result["profile_graphed"] = profiles(device, esc50, report, graphed=True)
    save()
    if not all(x["graphs"] for x in result["profile_graphed"]):
        print("no CUDA graph captured for some model: stopping", flush=True)
        return result
    learn = replace(RECIPE, epochs=learn_epochs)
    data = tones(50, per_fold)
    with tempfile.TemporaryDirectory() as root:
        for graphs in (False, True):
            _sync(device)
            t0 = time.perf_counter()
            history = train_fold(learn, data, 2, device, root=Path(root) / str(graphs), show_bar=False, graphs=graphs)
            _sync(device)
            result[f"learns_{'graphed' if graphs else 'plain'}"] = {
                "epochs": learn_epochs, "seconds": time.perf_counter() - t0,
                "val_acc": [round(h["val_acc"], 4) for h in history],
                "train_loss": [round(h["train_loss"], 4) for h in history]}
    save()
    result["recipe_sequential"] = bench_protocol(esc50, device, configs=[RECIPE])
    save()
    result["protocol_sequential"] = bench_protocol(report, device, configs=PROTOCOL_CONFIGS)
    result["wall_s"] = time.perf_counter() - t_start
    save()
    return result


def bench_at_once(configs: list[TrainConfig], prepared: Prepared, device: torch.device) -> dict:
    """Every fold model of `configs` side by side in this process (`audioclf.train.train_at_once`: a thread and
    a CUDA stream each, steps from CUDA graphs), 100 epochs as configured: wall time, data already loaded."""
    from audioclf.train import train_at_once

    jobs = [(c, f) for c in configs for f in c.cv_folds]
    with tempfile.TemporaryDirectory() as root:
        _sync(device)
        t0 = time.perf_counter()
        histories = train_at_once(jobs, prepared, device, Path(root))
        _sync(device)
        wall = time.perf_counter() - t0
    return {"models": [c.label for c in configs], "epochs": configs[0].epochs, "fold_models": len(jobs), "wall_s": wall,
            "epoch_s": [sum(h["seconds"] for h in hist) / len(hist) for hist in histories],
            "final_val_acc": [hist[-1]["val_acc"] for hist in histories]}


def side_by_side_session(out: Path, device: torch.device, per_fold: int = 400, learn_epochs: int = 12,
                         kernels: bool = False) -> dict:
    """The second device check of the CUDA-graph steps (`python bench/gpu.py --side-by-side OUT`), into
    OUT/side_by_side.json after each stage: where a graphed recipe step's GPU time goes (the top kernels) and
    what channels-last convolutions would change; then fold models side by side in one process (threads and
    CUDA streams): that they learn on tones as one after another does, and the ESC-50 recipe's 4 and the
    report's 16 fold models at 100 epochs. With `kernels`, the profiles (the first run of this check); without,
    the recipe one after another again (the trainer has been channels-last on a GPU since that first run)."""
    t_start = time.perf_counter()
    result: dict = {"device": _name(device), "torch": torch.__version__}

    save = _saver(out / "side_by_side.json", result, t_start)

    def stage(name: str, fn) -> None:
        try:
            result[name] = fn()
        except Exception as e:  # one stage's failure must not cost the others
            result[name] = {"error": f"{type(e).__name__}: {e}"[:2000]}
        save()

    esc50 = synthetic(50, per_fold)
    if kernels:
        stage("profile_graphed", lambda: profile_epoch(RECIPE, esc50, device, graphed=True, top_kernels=15))
        stage("profile_graphed_channels_last", lambda: profile_epoch(RECIPE, esc50, device, graphed=True,
                                                                     channels_last=True, top_kernels=15))
    learn = replace(RECIPE, epochs=learn_epochs)

    def learns_one_by_one() -> dict:
        with tempfile.TemporaryDirectory() as root:
            history = train_fold(learn, tones(50, per_fold), 2, device, root=Path(root), show_bar=False)
        return {"epochs": learn_epochs, "val_acc": [round(h["val_acc"], 4) for h in history]}
    if not kernels:
        stage("recipe_sequential", lambda: bench_protocol(esc50, device, configs=[RECIPE]))
        stage("learns_sequential", learns_one_by_one)
    stage("learns_at_once", lambda: bench_at_once([learn], tones(50, per_fold), device))
    stage("recipe_at_once", lambda: bench_at_once([RECIPE], esc50, device))
    stage("protocol_at_once", lambda: bench_at_once(PROTOCOL_CONFIGS, synthetic(10, max(per_fold // 5, 2)), device))
    result["wall_s"] = time.perf_counter() - t_start
    save()
    return result


def profiles(device: torch.device, esc50: Prepared, report: Prepared, graphed: bool = False) -> list[dict]:
    """`profile_epoch` of the ESC-50 recipe and of the report's four models."""
    return [profile_epoch(c, data, device, graphed=graphed)
            for c, data in [(RECIPE, esc50)] + [(c, report) for c in PROTOCOL_CONFIGS]]


def at_once_100(out: Path, device: torch.device) -> dict:
    """The two "all at once" stages at the full 100 epochs (when `session`'s budget shortened them):
    `recipe_concurrent_100` and `protocol_concurrent_100`, into `out`/gpu_at_once.json."""
    out.mkdir(parents=True, exist_ok=True)
    result = {"recipe_concurrent_100": bench_concurrent([RECIPE], synthetic(50, 400), device)}
    (out / "gpu_at_once.json").write_text(json.dumps(result, indent=1))
    result["protocol_concurrent_100"] = bench_concurrent(PROTOCOL_CONFIGS, synthetic(10, 80), device)
    (out / "gpu_at_once.json").write_text(json.dumps(result, indent=1))
    return result


def with_epochs(configs: list[TrainConfig], epochs: int) -> list[TrainConfig]:
    return [replace(c, epochs=epochs) for c in configs]


def markdown(r: dict) -> list[str]:
    """The GPU section of docs/benchmarks.md."""
    lines = [f"Device: {r['device']}. {r['fold_models']} fold models x {r['epochs']} epochs, audioclf's "
             f"trainer (data on the device, fp32, batch 32, one fold model at a time).", "",
             "| model | fold | seconds | final val acc | TFLOP/s |", "|---|---|---|---|---|"]
    lines += [f"| {x['model']} | {x['fold']} | {x['seconds']:.1f} | {x['final_val_acc']:.3f} | {x['tflops']:.2f} |"
              for x in r["rows"]]
    peak = f"fp32 matmul peak {r['peak_fp32_tflops']:.1f} TFLOP/s"
    if "peak_bf16_tflops" in r:
        peak += f", bf16 {r['peak_bf16_tflops']:.1f} TFLOP/s"
    if r["epochs"] == 100 and r["fold_models"] == 16:
        verdict = f"target under 120 s: {'met' if r['wall_s'] < 120 else 'NOT met'}"
    else:
        verdict = "a shortened run, not comparable with the 120 s target"
    lines += ["", f"Whole protocol: {r['wall_s']:.1f} s ({verdict}); achieved {r['achieved_tflops']:.2f} "
              f"TFLOP/s against the measured {peak}.", ""]
    return lines


SESSION_FILE = ROOT / "bench" / "gpu_session.json"


def session_markdown(r: dict) -> list[str]:
    """The GPU section of docs/benchmarks.md from a `--session` result (bench/gpu_session.json)."""
    def per100(stage: dict | None) -> str:
        if stage is None:
            return "not measured"
        if stage["epochs"] == 100:
            return f"**{stage['wall_s']:.0f} s**"
        return f"about {stage['wall_s'] * 100 / stage['epochs']:.0f} s ({stage['wall_s']:.0f} s measured for {stage['epochs']} epochs)"

    def at_once(name: str) -> str:
        return per100(r.get(f"{name}_concurrent_100") or r.get(f"{name}_concurrent"))

    rec, pro = r["recipe_sequential"], r["protocol_sequential"]
    lines = [f"Device: {r['device']}, torch {r['torch']}. Command: `{r.get('command', 'python bench/gpu.py --session OUT')}`.",
             "", f"Clips: {r['esc50_data']} for the recipe, {r['esc10_data']} for the report's models. Timing "
             "only: a step costs the same whatever the clips hold, and ESC-50 (170 MB) cannot travel to the "
             "lent GPU machine (64 MB per call); the validation accuracies of these runs mean nothing.", "",
             "| work | fold models x epochs | one after another (`train` as it is) | all at once (one process each) "
             "| all at once under NVIDIA MPS |", "|---|---|---|---|---|",
             f"| ESC-50 recipe (logmel-cnn, bf16, 1,200 training clips) | 4 x 100 | {per100(rec)} | {at_once('recipe')} "
             f"| {per100(r.get('recipe_concurrent_100_mps'))} |",
             f"| the report's protocol (CNN, transformer 1/2/4 heads, fp32) | 16 x 100 | {per100(pro)} | {at_once('protocol')} "
             f"| {per100(r.get('protocol_concurrent_100_mps'))} |",
             "", "Where one epoch goes (seconds; busy: the GPU's kernel time over the training steps' wall time, "
             "from torch.profiler):", ""]
    before = {x["model"]: x for x in r.get("before_profile", [])}
    head = "| model | steps | training | validation | checkpoint | epoch | GPU busy | kernels per step |"
    lines += [head.replace("| epoch |", "| epoch (before) |") if before else head, "|---|---|---|---|---|---|---|---|"]
    for x in r["profile"]:
        was = f" ({before[x['model']]['epoch_s']:.3f})" if x["model"] in before else ""
        lines.append(f"| {x['model']} | {x['steps']} | {x['train_s']:.3f} | {x['val_s']:.3f} | {x['checkpoint_s']:.3f} | "
                     f"{x['epoch_s']:.3f}{was} | {x.get('gpu_busy', float('nan')):.0%} | "
                     f"{x.get('kernels_per_step', float('nan')):.0f} |")
    busy = [x["gpu_busy"] for x in r["profile"] if "gpu_busy" in x]
    lines += ["", f"Achieved: recipe {rec['achieved_tflops']:.1f} TFLOP/s against a measured bf16 matmul peak of "
              f"{rec.get('peak_bf16_tflops', float('nan')):.0f}; the report's models {pro['achieved_tflops']:.1f} TFLOP/s "
              f"against an fp32 peak of {pro['peak_fp32_tflops']:.0f}.", ""]
    if before:
        lines += ["*Before* is the trainer as of e28e08d, profiled on the same machine in the same call. Since then: "
                  "the loss and accuracy are summed on the device and read once per epoch, not once per step; Adam is "
                  "the fused kernel on a GPU; validation runs 256 clips a batch on a GPU instead of 64.", ""]
    lines += ["**What bounds them: launching work, not arithmetic.** These models are small and a batch is 32 "
              "clips, so a training step is hundreds of short kernels, each launched from Python; the GPU "
              f"computes during {f'{min(busy):.0%}-{max(busy):.0%}' if busy else 'an unmeasured part'} of a step's "
              "wall time (table above). The recipe's step is bound by the CPU issuing its ~340 kernels: reading the "
              "loss once per epoch did not shorten it, because the CPU, not the GPU's queue, is what it waits for. "
              "Fold models run at once as separate processes share the GPU by time slicing; under MPS their kernels "
              "run side by side, which is the fastest way measured. cuDNN autotuning (`cudnn.benchmark`) gave "
              "nothing on the recipe (`profile_cudnn_benchmark` in bench/gpu_session.json). Under a minute needs "
              "fewer launches per clip, not faster kernels: the fixed-shape step captured as CUDA graphs, or the "
              "four fold models trained as one batched model; neither is built.", ""]
    return lines


GRAPHS_FILE = ROOT / "bench" / "gpu_graphs.json"


def graphs_markdown(g: dict, before: dict | None) -> list[str]:
    """The GPU section of docs/benchmarks.md since CUDA graphs (bench/gpu_graphs.json), with the figures of
    `before` (bench/gpu_session.json) beside them."""
    def best_before(name: str) -> float:
        stages = ("_concurrent", "_concurrent_100", "_concurrent_100_mps")
        return min(per100_s(before.get(f"{name}{s}")) for s in stages) if before else float("nan")

    gr, sb, mps = g["graphs"], g["side_by_side"], g["graphs_mps"]
    seq_before = {n: per100_s(before.get(f"{n}_sequential")) if before else float("nan") for n in ("recipe", "protocol")}
    lines = [f"Device: {g['device']}, torch {g['torch']}, {g['date']}. Commands, each in one call on a lent machine: "
             + "; ".join(f"`{g[k]['command']}`" for k in ("graphs", "graphs_mps", "kernels", "side_by_side")) + ".", "",
             "Clips: synthetic noise in ESC-50's shape (2,000 clips of 5 s, 50 classes) for the recipe and ESC-10's "
             "(400 clips) for the report's models: timing only (a step costs the same whatever the clips hold; ESC-50 "
             "cannot travel to the lent machine). Whether the faster paths still learn is checked on tones (below).", "",
             "Seconds for all fold models x 100 epochs, end to end (the data already on the GPU; start-up of "
             "separate processes included where there are some):", "",
             "| work | before: one after another | before: at once, best | CUDA graphs, one after another | "
             "+ channels-last: `train` now | side by side in one process: `train --folds-at-once` "
             "| graphs, processes under MPS |", "|---|---|---|---|---|---|---|",
             f"| ESC-50 recipe (logmel-cnn, bf16), 4 fold models | {seq_before['recipe']:.0f} | {best_before('recipe'):.0f} "
             f"| {per100_s(gr['recipe_sequential']):.0f} | {per100_s(sb['recipe_sequential']):.0f} "
             f"| **{per100_s(sb['recipe_at_once']):.0f}** | {per100_s(mps['recipe_concurrent_100']):.0f} |",
             f"| the report's protocol (CNN, transformer 1/2/4 heads, fp32), 16 fold models | {seq_before['protocol']:.0f} "
             f"| {best_before('protocol'):.0f} | {per100_s(gr['protocol_sequential']):.0f} | (1-D convolutions: as before) "
             f"| **{per100_s(sb['protocol_at_once']):.0f}** | {per100_s(mps['protocol_concurrent_100']):.0f} |", "",
             "*Before*: the first lent session's figures (next section), where \"one after another\" was estimated from a "
             "shortened run. The graphs and MPS columns are NCHW; channels-last entered the trainer after them.", "",
             "One epoch of one fold model, plain and graphed, same machine, same call (seconds; GPU busy: kernel time "
             "over the training steps' wall time, from torch.profiler):", "",
             "| model | training, plain | training, graphed | validation | GPU busy, plain | GPU busy, graphed | graphs |",
             "|---|---|---|---|---|---|---|"]
    for a, b in zip(gr["profile_plain"], gr["profile_graphed"]):
        lines.append(f"| {a['model']} | {a['train_s']:.3f} | {b['train_s']:.3f} | {b['val_s']:.3f} | "
                     f"{a.get('gpu_busy', float('nan')):.0%} | {b.get('gpu_busy', float('nan')):.0%} | {b['graphs']} |")
    nchw, cl = g["kernels"]["profile_graphed"], g["kernels"]["profile_graphed_channels_last"]
    lines += ["", f"The recipe's graphed step, NCHW against channels-last (one epoch: training {nchw['train_s']:.3f} "
              f"against {cl['train_s']:.3f} s; kernel time {nchw['kernel_s']:.3f} against {cl['kernel_s']:.3f} s). "
              "Its five costliest kernels each way:", "", "| NCHW | share | channels-last | share |", "|---|---|---|---|"]
    def name(k: dict) -> str:
        return re.split(r"[<(]", k["kernel"].replace("void ", "").replace("(anonymous namespace)::", ""))[0][:60]

    for a, b in zip(nchw["top_kernels"][:5], cl["top_kernels"][:5]):
        lines.append(f"| `{name(a)}` | {a['share']:.0%} | `{name(b)}` | {b['share']:.0%} |")
    learn = {"plain": gr["learns_plain"]["val_acc"], "graphed": gr["learns_graphed"]["val_acc"],
             "graphed, channels-last": sb["learns_sequential"]["val_acc"]}
    at_once = sb["learns_at_once"]
    lines += ["", "Still learning: the recipe on 50 tones (evenly spaced in mel, random phase and level, in noise), "
              f"{gr['learns_plain']['epochs']} epochs, validation accuracy after epochs 1, 2, 3 and at the end: "
              + "; ".join(f"{k} {v[0]:.2f}, {v[1]:.2f}, {v[2]:.2f}, {v[-1]:.2f}" for k, v in learn.items())
              + f"; side by side, the 4 fold models end at {', '.join(f'{a:.2f}' for a in at_once['final_val_acc'])}.", ""]
    r_seq, p_at = sb["recipe_sequential"], sb["protocol_at_once"]
    layout = sum(k["share"] for k in nchw["top_kernels"] if re.search(r"batch_norm|nchwToNhwc|nhwcToNchw", k["kernel"]))
    epoch_s = per100_s(r_seq) / 400
    lines += ["**What bounds them now: the GPU's time in small kernels, and validation.** Replayed from a graph, a "
              "step is one launch instead of ~340 (recipe) or ~110-220 (the report's models), and the GPU is busy "
              f"{min(x.get('gpu_busy', 1) for x in gr['profile_graphed']):.0%}-{max(x.get('gpu_busy', 0) for x in gr['profile_graphed']):.0%} "
              "of a step's wall time: the CPU no longer sets the pace. What the GPU then spends is in kernels too small "
              f"to fill it (the recipe reaches {r_seq['achieved_tflops']:.0f} TFLOP/s of a measured bf16 matmul peak of "
              f"{r_seq['peak_bf16_tflops']:.0f}); in NCHW, {layout:.0%} of it went to BatchNorm's bf16 kernels and to cuDNN "
              "converting layouts, which channels-last mostly removes. One after another, a recipe epoch is then about "
              f"{epoch_s:.2f} s, of which validation (eager, fp32, whole 5 s clips) is about {cl['val_s'] / epoch_s:.0%}. "
              "Side by "
              "side, one fold model's kernels run while another's are queued: the recipe's four in "
              f"{per100_s(sb['recipe_at_once']):.0f} s, the report's sixteen in {per100_s(p_at):.0f} s. Left: the fold "
              "models as one batched model (one launch for four), validation from a graph in bf16.", ""]
    if "side_by_side_rerun" in g:
        again = g["side_by_side_rerun"]
        lines += [f"**Again, {again['date']}** (`{again['command']}`), after a fold model's validation was made to wait "
                  "while another captures a graph (its read-back to the CPU is not allowed during a capture; eight fold "
                  "models side by side had crashed on it): the recipe one after another "
                  f"{per100_s(again['recipe_sequential']):.0f} s, side by side {per100_s(again['recipe_at_once']):.0f} s, "
                  f"the report's sixteen {per100_s(again['protocol_at_once']):.0f} s.", ""]
    return lines


def _peak_size(device: torch.device) -> tuple[int, int]:
    return (8192, 20) if device.type == "cuda" else (2048, 5)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "esc10")
    ap.add_argument("--prepared", type=Path, help="a prepared cache file (skips decoding; needs no libsndfile)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--models", nargs="+", help="e.g. cnn transformer-4h (default: all four)")
    ap.add_argument("--session", type=Path, metavar="OUT",
                    help="run the whole device check (profiles; recipe and protocol, one by one and at once) into OUT")
    ap.add_argument("--budget-s", type=float, default=420, help="with --session: seconds it may take")
    ap.add_argument("--clips-per-fold", type=int, default=400,
                    help="with --session: synthetic ESC-50's size (a smoke test here: 10, and --data none)")
    ap.add_argument("--profile", type=Path, metavar="OUT",
                    help="only the per-epoch profiles, into OUT/profile.json (run from an older tree for before-figures)")
    ap.add_argument("--graphs", type=Path, metavar="OUT",
                    help="the CUDA-graph check: plain against graphed epochs, learning, both workloads at 100 epochs")
    ap.add_argument("--side-by-side", type=Path, metavar="OUT",
                    help="the second CUDA-graph check: top kernels, channels-last, fold models side by side in one process")
    ap.add_argument("--kernels", action="store_true", help="with --side-by-side: the kernel profiles instead")
    ap.add_argument("--at-once", type=Path, metavar="OUT",
                    help="only the two 'all at once' stages, at 100 epochs, into OUT/gpu_at_once.json")
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("Skipped: no CUDA GPU on this machine.")
        return
    if args.session:
        session(args.session, args.budget_s, args.data if args.data.is_dir() else None, device, args.clips_per_fold)
        return
    if args.graphs:
        graphs_session(args.graphs, device, args.clips_per_fold)
        return
    if args.side_by_side:
        side_by_side_session(args.side_by_side, device, args.clips_per_fold, kernels=args.kernels)
        return
    if args.profile:
        result = profiles(device, synthetic(50, args.clips_per_fold), synthetic(10, max(args.clips_per_fold // 5, 2)))
        args.profile.mkdir(parents=True, exist_ok=True)
        (args.profile / "profile.json").write_text(json.dumps(result, indent=1))
        print(json.dumps(result, indent=1))
        return
    if args.at_once:
        print(json.dumps(at_once_100(args.at_once, device), indent=1))
        return
    if args.prepared:
        prepared = load_prepared(args.prepared)
    else:
        from audioclf.data import open_dataset
        from audioclf.prepare import prepare

        prepared = prepare(open_dataset(args.data, "esc10"))
    models = PROTOCOL
    if args.models:
        models = [(m.split("-")[0], int(m.split("-")[1].rstrip("h")) if "-" in m else 0) for m in args.models]
    result = bench_protocol(prepared, device, args.epochs, models)
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=1))
    print("\n".join(markdown(result)))


if __name__ == "__main__":
    main()
