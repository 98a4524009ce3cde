"""Looking inside the transformer: attention weights for one clip, placed on the clip's time axis.

The model sees nine one-second windows stacked end to end (see `audioclf.features.frame`); the CNN
trunk turns that into 128 tokens, each an average over a stretch of the stacked input. `token_times`
maps each token back to the moment of the original clip it came from, and `attention_over_time`
spreads the CLS token's attention over the clip's time axis, so that it can be drawn under the
waveform.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from .config import PrepConfig
from .features import model_input
from .frontend import LogMel, spectrogram


@torch.no_grad()
def attention_maps(model: nn.Module, wave: torch.Tensor, prep: PrepConfig) -> dict:
    """Run one clip through a transformer and keep its attention.

    Args:
        model: a CNNTransformer in eval mode.
        wave: (samples,) the clip at `prep.sample_rate`, `prep.num_samples` long.
    Returns:
        attention: (blocks, heads, 129, 129) float32, row = query token (0 is CLS), column = key.
        cls: (blocks, heads, 128) the CLS token's attention over the 128 time tokens.
        proba: (classes,) the model's probabilities for the clip.
    """
    device = next(model.parameters()).device
    x = model_input(model, torch.as_tensor(wave, dtype=torch.float32)[None].to(device), prep)  # (1, 1, 144000)
    out = model(x, return_dict=True)
    if out.get("attention") is None:
        raise ValueError(f"{type(model).__name__} has no attention (choose a transformer run)")
    att = out["attention"][0].float().cpu().numpy()  # (blocks, heads, 129, 129)
    return {"attention": att, "cls": att[:, :, 0, 1:], "proba": out["logits"][0].softmax(0).float().cpu().numpy()}


def trunk_length(model: nn.Module, length: int) -> int:
    """Time steps left after the model's pooling layers for an input of `length` samples."""
    for m in model.features:
        if isinstance(m, nn.MaxPool1d):
            k = m.kernel_size if isinstance(m.kernel_size, int) else m.kernel_size[0]
            s = m.stride if isinstance(m.stride, int) else m.stride[0]
            length = (length - k) // s + 1
    return length


def token_times(prep: PrepConfig, n_tokens: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Where each token sits in the original clip.

    Token i averages the trunk's time steps [floor(i*steps/n), ceil((i+1)*steps/n)) (adaptive average
    pooling), and each step covers input_length/steps samples of the stacked windows. Returns the
    centre of each token in seconds of the clip, shape (n_tokens,), and the window (0-based) it lies in.
    """
    length = prep.input_length
    i = np.arange(n_tokens)
    lo = np.floor(i * steps / n_tokens)
    hi = np.ceil((i + 1) * steps / n_tokens)
    centre = (lo + hi) / 2 * (length / steps)  # sample position in the stacked input
    window = np.minimum(centre // prep.window, prep.num_windows - 1).astype(int)
    offset = centre - window * prep.window
    return (window * prep.hop + offset) / prep.sample_rate, window


def time_bins(prep: PrepConfig, n_tokens: int, steps: int, resolution: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """How the tokens cover the clip: bin centres (bins,) in seconds, and M (n_tokens, bins) where
    M[i, b] is the share of token i's stretch of the stacked input that comes from time bin b of the
    clip (a token that straddles two windows comes from two places in the clip). Rows sum to 1 for
    tokens inside the clip."""
    length, W = prep.input_length, prep.window
    per_step = length / steps
    n_bins = int(np.ceil(prep.duration / resolution - 1e-9))
    edges = np.arange(n_bins + 1) * resolution
    M = np.zeros((n_tokens, n_bins))
    for i in range(n_tokens):
        a = np.floor(i * steps / n_tokens) * per_step
        b = np.ceil((i + 1) * steps / n_tokens) * per_step
        for w in range(int(a // W), min(int(np.ceil(b / W)), prep.num_windows)):
            s0, s1 = max(a, w * W), min(b, (w + 1) * W)
            if s1 <= s0:
                continue
            t0 = (w * prep.hop + s0 - w * W) / prep.sample_rate
            t1 = (w * prep.hop + s1 - w * W) / prep.sample_rate
            overlap = np.clip(np.minimum(edges[1:], t1) - np.maximum(edges[:-1], t0), 0, None)
            M[i] += (s1 - s0) / (b - a) * overlap / (t1 - t0)
    return edges[:-1] + resolution / 2, M


def attention_over_time(cls: np.ndarray, prep: PrepConfig, steps: int,
                        resolution: float = 0.05) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The CLS token's attention as a density over the clip's time axis.

    Args:
        cls: (..., n_tokens) attention of the CLS token over the time tokens (e.g. (blocks, heads, 128)).
    Returns:
        times (bins,) in seconds, density (..., bins) in attention per second (integrates to the
        attention on the time tokens), and the density of uniform attention, (bins,), for reference:
        it is higher where two overlapping windows cover the clip.
    """
    cls = np.asarray(cls, dtype=np.float64)
    times, M = time_bins(prep, cls.shape[-1], steps, resolution)
    uniform = np.full(cls.shape[-1], 1.0 / cls.shape[-1]) @ M / resolution
    return times, cls @ M / resolution, uniform


def attention_view(model: nn.Module, wave: torch.Tensor, prep: PrepConfig) -> dict:
    """`attention_maps` plus the CLS token's attention over the clip's time axis ('times', 'density',
    'uniform'; see `attention_over_time`), with the token layout taken from the model itself: the
    report's transformer reads stacked windows; a log-mel transformer has one token per moment, and its
    view also holds the clip's log-mel spectrogram from the model's own front end ('spectrogram', see
    `audioclf.frontend.spectrogram`), to show which sound the attention falls on."""
    out = attention_maps(model, wave, prep)
    if hasattr(model, "token_seconds"):
        out["times"], out["density"], out["uniform"] = token_attention_over_time(out["cls"], model.token_seconds)
        out["token_times"] = out["times"]  # (T,) seconds in the clip
        if isinstance(getattr(model, "logmel", None), LogMel):  # its tokens are log-mel frames: what they hear
            out["spectrogram"] = spectrogram(model.logmel, wave)
    else:
        steps = trunk_length(model, prep.input_length)
        out["times"], out["density"], out["uniform"] = attention_over_time(out["cls"], prep, steps)
        out["token_times"] = token_times(prep, out["cls"].shape[-1], steps)[0]  # (128,) seconds in the clip
    return out


def mean_view(views: list[dict]) -> dict:
    """The fold ensemble's view: the mean of several models' `attention_view`s of one clip (attention,
    CLS attention, its density over time and the probabilities averaged; the token layout is shared)."""
    if not views:
        raise ValueError("no attention view to average")
    out = dict(views[0])
    for key in ("attention", "cls", "density", "proba"):
        out[key] = np.mean([v[key] for v in views], axis=0)
    return out


def token_attention_over_time(cls: np.ndarray, token_seconds: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For tokens that each cover `token_seconds` of the clip in order: their centres (T,) in seconds,
    the attention density (..., T) per second, and the density of uniform attention (T,)."""
    cls = np.asarray(cls, dtype=np.float64)
    n = cls.shape[-1]
    times = (np.arange(n) + 0.5) * token_seconds
    return times, cls / token_seconds, np.full(n, 1.0 / n / token_seconds)
