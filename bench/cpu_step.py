"""One CPU training step of each seed model, taken apart: the alternatives measured against the shipped
trunk (kept or dropped, with their speed and how far each is from the report's function), where the
shipped step's time goes, and the max-pool kernels on their own.

    python bench/cpu_step.py                    # transformer-4h and cnn (~2 min on 2 cores); docs/cpu_step.*
    python bench/cpu_step.py --compile          # also torch.compile of the whole model (several minutes more)

A step is forward + backward + Adam on a random batch of 32 clips (1, 144000), after
`keep_freed_memory()`, as the trainer runs it. Times are medians of `--steps` steps after warm-up;
this VM drifts by about 10 % over minutes, so compare rows of one table, not across runs.
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audioclf.allocator import keep_freed_memory  # noqa: E402
from audioclf.models import ModelConfig, Trunk, _nhwc, build_model  # noqa: E402
from bench import command_line  # noqa: E402
from bench.naive import as_the_report_writes_it  # noqa: E402
from bench.run import machine  # noqa: E402


def _with_trunk(model: nn.Module, forward: Callable) -> nn.Module:
    model.features.forward = forward.__get__(model.features)
    return model


def _blocks(trunk: Trunk) -> tuple[list[tuple[nn.Module, ...]], nn.Module]:
    *layers, average = trunk
    return [tuple(layers[i:i + 4]) for i in range(0, len(layers), 4)], average


def _ncl_reshape_max(self: Trunk, x: torch.Tensor) -> torch.Tensor:
    """audioclf before channels-last: (B, C, L), pool before ReLU, pooling as reshape + max(-1)."""
    blocks, average = _blocks(self)
    for conv, relu, pool, norm in blocks:
        y = conv(x)
        n = y.size(-1) // pool.kernel_size
        x = norm(relu(y[..., :n * pool.kernel_size].unflatten(-1, (n, pool.kernel_size)).max(-1).values))
    return average(x)


def _ncl_max_pool1d(self: Trunk, x: torch.Tensor) -> torch.Tensor:
    blocks, average = _blocks(self)
    for conv, relu, pool, norm in blocks:
        x = norm(relu(F.max_pool1d(conv(x), pool.kernel_size)))
    return average(x)


def _nhwc_with_batch_norm(self: Trunk, x: torch.Tensor) -> torch.Tensor:
    """Channels-last through BatchNorm too (F.batch_norm: BatchNorm1d's module checks for 3-D)."""
    blocks, average = _blocks(self)
    x = _nhwc(x.unsqueeze(2))
    for conv, relu, pool, norm in blocks:
        x = F.conv2d(x, _nhwc(conv.weight.unsqueeze(2)), conv.bias, padding=(0, conv.padding[0]))
        x = relu(F.max_pool2d(x, (1, pool.kernel_size)))
        x = F.batch_norm(x, norm.running_mean, norm.running_var, norm.weight, norm.bias, norm.training,
                         norm.momentum, norm.eps)
    return average(x.squeeze(2))


def _nhwc_plain_gradient(self: Trunk, x: torch.Tensor) -> torch.Tensor:
    """The shipped path, but back to (B, C, L) with `.squeeze(2).contiguous()`, whose backward hands
    max_pool2d a (B, C, L)-ordered gradient (what `audioclf.models._ChannelsFirst` avoids)."""
    blocks, average = _blocks(self)
    for conv, relu, pool, norm in blocks:
        y = F.conv2d(_nhwc(x.unsqueeze(2)), _nhwc(conv.weight.unsqueeze(2)), conv.bias, padding=(0, conv.padding[0]))
        x = norm(relu(F.max_pool2d(y, (1, pool.kernel_size)).squeeze(2).contiguous()))
    return average(x)


def compiled(model: nn.Module) -> nn.Module:
    return torch.compile(model)


VARIANTS: dict[str, Callable[[nn.Module], nn.Module]] = {
    "audioclf: conv + pool channels-last, BatchNorm (B, C, L) (shipped)": lambda m: m,
    "(B, C, L), pool before ReLU, reshape + max(-1) (shipped before)": lambda m: _with_trunk(m, _ncl_reshape_max),
    "(B, C, L), pool before ReLU, max_pool1d": lambda m: _with_trunk(m, _ncl_max_pool1d),
    "channels-last, gradient sent back (B, C, L)-ordered": lambda m: _with_trunk(m, _nhwc_plain_gradient),
    "channels-last through BatchNorm too": lambda m: _with_trunk(m, _nhwc_with_batch_norm),
    "report order: nn.Sequential (what a notebook runs)": as_the_report_writes_it,
}


def batch(n: int = 32, length: int = 144000, classes: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 1, length, generator=g), torch.randint(0, classes, (n,), generator=g)


def gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    torch.manual_seed(1)  # the same dropout masks for every variant
    model.train()
    model.zero_grad(set_to_none=True)
    logits = model(x)
    F.cross_entropy(logits, y).backward()
    return logits.detach(), [p.grad.clone() for p in model.parameters()]


def relative_difference(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    """Largest |a - b| over the pairs, each relative to its b's largest magnitude (0.0: bit for bit)."""
    return max(((p - q).abs().max() / q.abs().max().clamp_min(1e-30)).item() for p, q in zip(a, b))


def same_function(a: nn.Module, b: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """How far a's logits and parameter gradients are from b's (see `relative_difference`)."""
    (la, ga), (lb, gb) = gradients(a, x, y), gradients(b, x, y)
    return relative_difference([la, *ga], [lb, *gb])


def thread_difference(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """The same model at one thread against all of them: how far float rounding alone moves it."""
    threads = torch.get_num_threads()
    la, ga = gradients(model, x, y)
    torch.set_num_threads(1)
    try:
        lb, gb = gradients(model, x, y)
    finally:
        torch.set_num_threads(threads)
    return relative_difference([lb, *gb], [la, *ga])


def train_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def step_ms(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, warmup: int = 3) -> float:
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        train_step(model, opt, x, y)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def top_ops(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 3, rows: int = 12) -> list[dict]:
    """The profiler's heaviest ops (self CPU time per step) by input shape."""
    from torch.profiler import profile

    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    train_step(model, opt, x, y)  # warm-up
    with profile(record_shapes=True, acc_events=True) as prof:
        for _ in range(steps):
            train_step(model, opt, x, y)
    events = prof.key_averages(group_by_input_shape=True)
    total = sum(e.self_cpu_time_total for e in events)
    heavy = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:rows]
    return [{"op": e.key, "shapes": str(e.input_shapes)[:80], "ms_per_step": e.self_cpu_time_total / 1000 / steps,
             "share": e.self_cpu_time_total / total} for e in heavy]


def _pool_kernels(k: int = 5) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    def reshape_max(x: torch.Tensor) -> torch.Tensor:
        n = x.size(-1) // k
        return x[..., :n * k].unflatten(-1, (n, k)).max(-1).values

    def channels_last_2d(x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(x, (1, k))

    def values_only(x: torch.Tensor) -> torch.Tensor:
        phases = [x[..., i::k] for i in range(k)]
        out = phases[0]
        for p in phases[1:]:
            out = torch.maximum(out, p)
        return out

    return {"reshape + max(-1) (shipped before)": reshape_max,
            "F.max_pool1d (with indices)": lambda x: F.max_pool1d(x, k),
            "F.max_pool2d, channels-last (shipped)": channels_last_2d,
            "values only, elementwise maximum of the 5 phases (no indices: a floor)": values_only}


def pool_ms(shape: tuple[int, int, int], repeats: int) -> list[dict]:
    """Max-pool(5) forward + backward on a block's conv output, kernel by kernel."""
    g = torch.Generator().manual_seed(0)
    base = torch.randn(shape, generator=g)
    rows = []
    for name, pool in _pool_kernels().items():
        nhwc = "channels-last" in name
        src = base.unsqueeze(2).contiguous(memory_format=torch.channels_last) if nhwc else base
        grad_needed = "values only" not in name
        times = []
        for i in range(repeats + 2):
            x = src.detach().requires_grad_(grad_needed)
            t0 = time.perf_counter()
            out = pool(x)
            if grad_needed:
                out.backward(torch.ones_like(out))
            if i >= 2:
                times.append(time.perf_counter() - t0)
        rows.append({"kernel": name, "shape": list(shape), "ms": 1000 * statistics.median(times),
                     "backward": grad_needed})
    return rows


def run_model(name: str, steps: int, with_compile: bool, length: int = 144000) -> dict:
    """`name`: "cnn" or "transformer-<heads>h". Every variant is timed and compared to the report order."""
    keep_freed_memory()
    torch.manual_seed(0)
    model_name, _, heads = name.partition("-")
    shipped = build_model(ModelConfig(model_name, heads=int(heads.rstrip("h") or 4)))
    reference = as_the_report_writes_it(copy.deepcopy(shipped))
    x, y = batch(length=length)
    variants = dict(VARIANTS, **({"torch.compile (inductor, whole model)": compiled} if with_compile else {}))
    rows = []
    for variant, make in variants.items():
        model = make(copy.deepcopy(shipped))
        difference = same_function(model, reference, x, y)  # before timing: the timed steps train the copy
        rows.append({"variant": variant, "step_ms": step_ms(model, x, y, steps), "relative_difference": difference})
    return {"model": name, "variants": rows, "ops": top_ops(shipped, x, y),
            "reference_one_thread_difference": thread_difference(reference, x, y)}


def run(models: list[str], steps: int, with_compile: bool, length: int = 144000) -> dict:
    return {"batch": 32, "steps": steps, "models": [run_model(m, steps, with_compile, length) for m in models],
            "pool": [r for shape in [(32, 8, length), (32, 16, length // 5)] for r in pool_ms(shape, steps)],
            "machine": machine()}


def markdown(r: dict, command: str) -> list[str]:
    m = r["machine"]
    lines = ["# One CPU training step, taken apart", "",
             f"Command: `{command}` on {m['cpu']}, {m['cores']} cores ({m['torch_threads']} torch threads), "
             f"torch {m['torch']}. A random batch of {r['batch']} clips (1, 144000), forward + backward + Adam, "
             f"after `keep_freed_memory()`; medians of {r['steps']} steps. Compare rows of one table only "
             "(this VM drifts by about 10 % over minutes).", ""]
    for model in r["models"]:
        shipped = model["variants"][0]["step_ms"]
        lines += [f"## {model['model']}: the step, variant by variant", "",
                  "| variant | step | vs shipped | largest difference from the report order (logits and each "
                  "parameter's gradient, relative to the tensor's largest value) |", "|---|---|---|---|"]
        for v in model["variants"]:
            same = "0 (bit for bit)" if v["relative_difference"] == 0 else f"{v['relative_difference']:.1e}"
            lines.append(f"| {v['variant']} | {v['step_ms']:.0f} ms | {v['step_ms'] / shipped - 1:+.0%} | {same} |")
        lines += ["", f"For scale: the report order itself, on 1 thread against {r['machine']['torch_threads']}, "
                  f"differs by {model['reference_one_thread_difference']:.1e} on the same measure (the same sums, "
                  "split differently over threads)."]
        if any(v["variant"].startswith("torch.compile") for v in model["variants"]):
            lines.append("torch.compile draws dropout masks with its own generator, so where the model has "
                         "dropout (the transformer) its difference comes from other masks, not from rounding.")
        lines += ["", "Where the shipped step's time goes (profiler, self CPU time, heaviest ops):", "",
                  "| op | input shapes | ms per step | share |", "|---|---|---|---|"]
        lines += [f"| {o['op']} | `{o['shapes']}` | {o['ms_per_step']:.1f} | {o['share']:.0%} |" for o in model["ops"]]
        lines.append("")
    lines += ["## Max-pool(5), forward + backward, on the conv output of blocks 1 and 2", "",
              "| kernel | input | time |", "|---|---|---|"]
    for p in r["pool"]:
        only = "" if p["backward"] else " (forward only)"
        lines.append(f"| {p['kernel']} | {tuple(p['shape'])} | {p['ms']:.1f} ms{only} |")
    return lines + [""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["transformer-4h", "cnn"])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--compile", action="store_true", help="also time torch.compile of the whole model")
    ap.add_argument("--docs", type=Path, default=ROOT / "docs")
    args = ap.parse_args()
    command = command_line()
    r = dict(run(args.models, args.steps, args.compile), command=command)
    args.docs.mkdir(parents=True, exist_ok=True)
    (args.docs / "cpu_step.json").write_text(json.dumps(r, indent=1))
    (args.docs / "cpu_step.md").write_text("\n".join(markdown(r, command)))
    print("\n".join(markdown(r, command)))


if __name__ == "__main__":
    main()
