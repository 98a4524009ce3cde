"""Prediction with int8 activations on a CPU: the recipe models' convolutions (their `ConvBlock`s) run in
int8 with torch's x86 kernels (FBGEMM / oneDNN, VNNI where the CPU has it); the front end, the pooling over
time and the head stay float32.

An int8 convolution needs its output's range beforehand. `measure` runs a fold model on training clips
of its fold (never its validation or test clips) with torch's histogram observer after each ReLU, and
keeps each one's scale and zero point: a few numbers, stored beside the weights (`store.Run.save_ranges`).
`quantize` builds the int8 trunk from the float model and them, in milliseconds.

Why: on a 2-core Xeon without AMX (AVX-512 VNNI), the ESC-10 default's 4 fold models on a 5 s clip take
about 38 % of float32 channels-last's time (file to answer: about half), and each fold model gives float32's
answer on 100 % of ESC-10's 320 and 99.4 % of ESC-50's 1,600 validation clips (docs/benchmarks.md,
`bench/precision.py`).
"""
from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn
from torch.ao.nn.intrinsic.quantized import ConvReLU2d
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .logmel import ConvBlock, LogMelCNN, LogMelTransformer

if TYPE_CHECKING:
    from .store import Run

CALIBRATION_CLIPS = 64  # training clips whose activations set the ranges


def available() -> bool:
    """Whether this torch has int8 kernels for this CPU (x86-64; not ARM, not a GPU)."""
    return "x86" in torch.backends.quantized.supported_engines


def trunk_name(model: nn.Module) -> str | None:
    """The attribute holding the model's `ConvBlock`s, or None for a model without an int8 path."""
    return {LogMelCNN: "blocks", LogMelTransformer: "stem"}.get(type(model))


def _observer() -> nn.Module:
    from torch.ao.quantization.observer import HistogramObserver

    # x86's default for activations (torch.ao.quantization.get_default_qconfig("x86")): 7 bits, so that
    # CPUs without VNNI cannot overflow their 16-bit intermediate sums
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "reduce_range will be deprecated": still the x86 default
        return HistogramObserver(reduce_range=True)


def _convs(block: nn.Module) -> list[tuple[nn.Module, ...]]:
    """A `ConvBlock`'s (convolution, BatchNorm, ReLU) triples: the one place that reads its body's layout."""
    if not isinstance(block, ConvBlock):
        raise ValueError(f"not a ConvBlock: {type(block).__name__}")
    body = list(block.body)
    return [tuple(body[k:k + 3]) for k in range(0, len(body), 3)]


def _points(trunk: nn.Sequential) -> list[str]:
    """Where a range is needed: the trunk's input, and each convolution's output (after its ReLU)."""
    return ["input"] + [f"{i}.{j}" for i, block in enumerate(trunk) for j in range(len(_convs(block)))]


@torch.no_grad()
def measure(model: nn.Module, waves: torch.Tensor, batch_size: int = 16) -> dict[str, torch.Tensor]:
    """Scale (float64) and zero point (int64) of each point (`_points`) of the float recipe model's trunk,
    observed on `waves` (N, samples): what `quantize` needs."""
    name = trunk_name(model)
    if name is None:
        raise ValueError(f"{type(model).__name__} has no int8 path")
    model.eval()
    trunk = getattr(model, name)
    observers = {p: _observer() for p in _points(trunk)}

    def seen(point: str):
        def hook(module: nn.Module, *tensors: torch.Tensor) -> None:  # (inputs,) before, (inputs, output) after
            observers[point](tensors[-1] if len(tensors) == 2 else tensors[0][0])
        return hook

    hooks = [trunk.register_forward_pre_hook(seen("input"))]
    for i, block in enumerate(trunk):
        hooks += [relu.register_forward_hook(seen(f"{i}.{j}")) for j, (_, _, relu) in enumerate(_convs(block))]
    try:
        for k in range(0, len(waves), batch_size):
            model.from_db(model.db(waves[k:k + batch_size]))
    finally:
        for h in hooks:
            h.remove()
    out = {}
    for p, obs in observers.items():
        scale, zero = obs.calculate_qparams()
        out[f"{p}.scale"], out[f"{p}.zero_point"] = scale.double(), zero.long()
    return out


class Int8Trunk(nn.Module):
    """`ConvBlock`s in int8: the input quantized to its measured range, each convolution with its BatchNorm
    folded in and its ReLU as one int8 convolution (weights symmetric per output channel), average pooling
    on int8; float32 out."""

    def __init__(self, trunk: nn.Sequential, ranges: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.scale, self.zero_point = float(ranges["input.scale"]), int(ranges["input.zero_point"])
        self.convs, self.pools = nn.ModuleList(), []
        for i, block in enumerate(trunk):
            convs = [_int8_conv(fuse_conv_bn_eval(conv.eval(), bn.eval()), ranges[f"{i}.{j}.scale"],
                                ranges[f"{i}.{j}.zero_point"]) for j, (conv, bn, _) in enumerate(_convs(block))]
            self.convs.append(nn.Sequential(*convs))
            self.pools.append(block.pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, F, T) float -> float
        x = torch.quantize_per_tensor(x.float().contiguous(), self.scale, self.zero_point, torch.quint8)
        for convs, pool in zip(self.convs, self.pools):
            x = convs(x)
            if pool != (1, 1):
                x = F.avg_pool2d(x, pool, ceil_mode=True)
        return x.dequantize()


def _int8_conv(conv: nn.Conv2d, scale: torch.Tensor, zero_point: torch.Tensor) -> ConvReLU2d:
    w = conv.weight.detach().float()
    w_scale = (w.abs().amax(dim=(1, 2, 3)) / 127).clamp_min(1e-12).double()
    qw = torch.quantize_per_channel(w, w_scale, torch.zeros_like(w_scale, dtype=torch.long), 0, torch.qint8)
    q = ConvReLU2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding)
    q.set_weight_bias(qw, None if conv.bias is None else conv.bias.detach().float())
    q.scale, q.zero_point = float(scale), int(zero_point)
    return q


@torch.no_grad()
def quantize(model: nn.Module, ranges: dict[str, torch.Tensor]) -> nn.Module:
    """The float recipe model (changed in place, eval mode) with its trunk in int8, from `measure`'s ranges;
    ValueError when they do not fit it."""
    name = trunk_name(model)
    if name is None:
        raise ValueError(f"{type(model).__name__} has no int8 path")
    trunk = getattr(model, name)
    expected = {f"{p}.{q}" for p in _points(trunk) for q in ("scale", "zero_point")}
    if set(ranges) != expected:
        raise ValueError("the stored activation ranges do not fit this model")
    torch.backends.quantized.engine = "x86"  # FBGEMM or oneDNN, whichever is faster for the layer
    setattr(model, name, Int8Trunk(trunk, ranges))
    return model.eval()


def calibrate(run: "Run", fold: int, waves: torch.Tensor) -> bool:
    """Measure and store the ranges of the fold's best model, as stored, on up to `CALIBRATION_CLIPS` of
    `waves` (N, samples: training clips of that fold, drawn with a generator of their own, so that training's
    random state is untouched). False where the model has no int8 path or torch no int8 kernels here."""
    if not available():
        return False
    model = run.fold_model(fold, "best", "cpu").model
    if trunk_name(model) is None:
        return False
    pick = torch.randperm(len(waves), generator=torch.Generator().manual_seed(fold))[:CALIBRATION_CLIPS]
    run.save_ranges(fold, measure(model, waves[pick.to(waves.device)].float().cpu()))
    return True
