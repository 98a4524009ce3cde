"""The report's whole protocol on one device: the CNN and the transformer with 1, 2 and 4 heads, four
cross-validation folds each, 100 epochs: 16 fold models, timed one by one with audioclf's own trainer.

    python bench/run.py --only gpu                     # on a machine with a CUDA GPU (writes docs/)
    python bench/gpu.py --device cpu --epochs 1        # the same code path here, as a smoke test

What it measures, and what it does not (yet):
- `train_fold` as users run it: the fold's clips resident on the device, fp32, batch 32, one fold model
  after another, a checkpoint written every epoch. Wall time per fold model and in total.
- Achieved FLOP/s (training: 3x the forward FLOPs per clip; validation: 1x) next to the device's
  measured dense matmul peak (fp32 without TF32, and bf16) from `matmul_peak`.
- Not built or measured: mixed precision, several fold models at once (streams or one batched model),
  CUDA graphs. Each would be a step of its own, timed against the row above.

Without a CUDA GPU, `--device cuda` (the default) skips cleanly. The module imports nothing that needs
libsndfile, librosa or streamlit, so `--prepared FILE` (a cache file written by `audioclf.prepare`)
runs on a machine that has only torch.

On a lent GPU machine that has torch but not soundfile (this workplace's `device` tool; not yet run:
no session has had one), carry the clips (41 MB) and three wheels (1.6 MB), both in ignored folders:

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
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audioclf.config import PrepConfig, TrainConfig  # noqa: E402
from audioclf.models import ModelConfig, build_model  # noqa: E402
from audioclf.prepare import Prepared, load_prepared  # noqa: E402
from audioclf.train import train_fold  # noqa: E402

PROTOCOL = [("cnn", 0), ("transformer", 1), ("transformer", 2), ("transformer", 4)]


def forward_flops(model: str, heads: int = 4, length: int = 144000) -> float:
    """FLOPs of one clip's forward pass, from torch's counter (matmuls and convolutions)."""
    from torch.utils.flop_counter import FlopCounterMode

    net = build_model(ModelConfig(model, heads=max(heads, 1)))
    with FlopCounterMode(display=False) as counter:
        net(torch.randn(1, 1, length))
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
                   models: list[tuple[str, int]] = PROTOCOL, prep: PrepConfig = PrepConfig()) -> dict:
    """Train every fold model of `models` for `epochs` epochs on `device`; times and FLOP/s.
    `prep` must be the one `prepared` was made with (the report's by default)."""
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32 here, as on the CPU
    torch.backends.cudnn.allow_tf32 = False
    rows, total_flops = [], 0.0
    with tempfile.TemporaryDirectory() as root:
        t_all = time.perf_counter()
        for model, heads in models:
            config = TrainConfig(model=model, heads=heads, epochs=epochs, prep=prep)
            fwd = forward_flops(model, heads, config.prep.input_length)
            for fold in config.cv_folds:
                n_train = int(torch.isin(prepared.folds, torch.tensor([f for f in config.cv_folds if f != fold])).sum())
                n_val = int((prepared.folds == fold).sum())
                _sync(device)
                t0 = time.perf_counter()
                history = train_fold(config, prepared, fold, device, root=Path(root), show_bar=False)
                _sync(device)
                seconds = time.perf_counter() - t0
                flops = epochs * (3 * fwd * n_train + fwd * n_val)
                total_flops += flops
                rows.append({"model": config.label, "fold": fold, "seconds": seconds,
                             "final_val_acc": history[-1]["val_acc"], "tflops": flops / seconds / 1e12})
        wall = time.perf_counter() - t_all
    out = {"device": _name(device), "epochs": epochs, "fold_models": len(rows), "wall_s": wall,
           "achieved_tflops": total_flops / wall / 1e12, "rows": rows,
           "peak_fp32_tflops": matmul_peak(device, torch.float32, *_peak_size(device)) / 1e12}
    if device.type == "cuda":
        out["peak_bf16_tflops"] = matmul_peak(device, torch.bfloat16) / 1e12
    return out


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
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("Skipped: no CUDA GPU on this machine.")
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
