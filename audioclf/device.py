"""Which torch device to run on, and whether it computes bfloat16 natively."""
from __future__ import annotations

from functools import cache

import torch

from .errors import ConfigError


def pick_device(requested: str | None = None) -> torch.device:
    """`requested` if given ("cpu", "cuda", "cuda:1", "mps"), else cuda, then mps, then cpu."""
    if requested and requested != "auto":
        try:
            dev = torch.device(requested)
        except RuntimeError:
            raise ConfigError("device", f"unknown device {requested!r}: use auto, cpu, cuda, cuda:N or mps") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError("device", f"{requested!r} asked for, but no CUDA GPU is available")
        if dev.type == "mps" and not torch.backends.mps.is_available():
            raise ConfigError("device", f"{requested!r} asked for, but MPS is not available")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@cache
def fast_bf16(device_type: str) -> bool:
    """Whether a device of this type computes bfloat16 natively: a CUDA GPU that has it, a CPU with
    AVX512-BF16 or AMX. oneDNN runs bf16 on any AVX-512 CPU (`torch.ops.mkldnn._is_mkldnn_bf16_supported()`
    says yes), but by emulation: on a 2-core Xeon without either, the recipe's training step took 1.7x and
    the 4-model ensemble's forward pass 1.8x as long as in float32 (bench/precision.py, docs/benchmarks.md)."""
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device_type == "cpu":
        return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return False


def runs_bf16(precision: str | None, device: torch.device) -> bool:
    """Whether a run of this precision ("bf16": autocast where it is faster) computes in bfloat16 on
    `device`; elsewhere it runs in float32, which is more exact and, there, faster."""
    return precision == "bf16" and fast_bf16(device.type)


def channels_last(precision: str | None, device: torch.device) -> bool:
    """Whether a model's 2-D convolutions train channels-last on `device`: on CUDA (cuDNN's kernels want it),
    and on a CPU where the run computes in float32 (oneDNN's float32 convolutions: the recipe's training
    step 1.54 against 2.35 s on a 2-core Xeon without AMX, bench/precision.py). bfloat16 training on a CPU
    with AMX keeps the layout it was tuned with (not measured channels-last)."""
    return device.type == "cuda" or (device.type == "cpu" and not runs_bf16(precision, device))


def precision_note(precision: str | None, device: torch.device) -> str:
    """What a training run's log says when its "bf16" runs in float32 on this device ("" otherwise)."""
    if precision != "bf16" or runs_bf16(precision, device):
        return ""
    return ", float32 (no native bfloat16 here: faster than emulating it)"


def arithmetic(device: torch.device) -> str:
    """What the recipe's runs ("bf16") compute in on `device`, in words for the app's sidebar."""
    return "bfloat16 (native)" if fast_bf16(device.type) else "float32 (no native bfloat16)"


def describe(device: torch.device) -> str:
    """Human name of a device, e.g. 'cuda (NVIDIA H100)' or 'cpu (2 threads)'."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        n = torch.get_num_threads()
        return f"cpu ({n} thread{'s' * (n != 1)})"
    return device.type
