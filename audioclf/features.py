"""From a decoded clip to the model input: mono, resample, crop or pad, frame into windows."""
from __future__ import annotations

import functools
import math
from typing import Iterable, Iterator

import numpy as np
import torch
import torchaudio.functional as AF

from .config import PrepConfig


def to_mono(wave: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(channels, samples) -> (samples,) by averaging the channels."""
    wave = torch.as_tensor(wave, dtype=torch.float32)
    return wave.mean(dim=0) if wave.ndim == 2 else wave


def fit_length(wave: torch.Tensor, n: int) -> torch.Tensor:
    """Keep the first `n` samples of the last axis, zero-padding shorter input."""
    if wave.shape[-1] >= n:
        return wave[..., :n]
    return torch.nn.functional.pad(wave, (0, n - wave.shape[-1]))


# torchaudio's kernel has orig_sr / gcd(orig_sr, new_sr) phases: 441 for 44.1 kHz to 16 kHz, but 44101 for
# 44101 Hz, which takes ~40 s and gigabytes for 5 s of audio. Past this many, soxr resamples instead.
MAX_PHASES = 1000


def resample(wave: torch.Tensor, orig_sr: int, new_sr: int) -> torch.Tensor:
    """Band-limited resampling along the last axis (torchaudio's sinc interpolation; soxr's for an odd rate
    such as 44101 Hz). The output has ceil(n * new_sr / orig_sr) samples either way."""
    if orig_sr == new_sr:
        return wave
    if orig_sr // math.gcd(orig_sr, new_sr) <= MAX_PHASES:
        return AF.resample(wave, orig_sr, new_sr)
    import soxr  # librosa's dependency; only odd rates need it

    n_out = math.ceil(wave.shape[-1] * new_sr / orig_sr)
    flat = wave.reshape(-1, wave.shape[-1]).T.numpy(force=True).astype(np.float32)  # (samples, signals)
    out = torch.from_numpy(np.ascontiguousarray(soxr.resample(flat, orig_sr, new_sr, quality="VHQ").T))
    return fit_length(out.reshape(*wave.shape[:-1], -1), n_out).to(wave.dtype)


def resample_stream(blocks: Iterable[torch.Tensor], orig_sr: int, new_sr: int,
                    step: int = 1 << 18) -> Iterator[torch.Tensor]:
    """`resample` of a long 1-D signal that arrives in blocks, in pieces of about `step` input samples.

    Gives the same samples as resampling the whole signal at once (to float rounding) with memory
    that does not grow with its length. torchaudio has no streaming resampler, so: each piece starts
    on a whole period of the rate ratio (so its output samples sit where the whole signal's do) and is
    resampled with enough input on each side for the sinc kernel, which is then cut away.
    """
    if orig_sr == new_sr:
        yield from blocks
        return
    g = math.gcd(orig_sr, new_sr)
    o, n = orig_sr // g, new_sr // g
    if o > MAX_PHASES:  # an odd rate: soxr, as `resample` does, which streams by itself
        import soxr

        stream = soxr.ResampleStream(orig_sr, new_sr, 1, dtype="float32", quality="VHQ")
        for block in blocks:
            yield torch.from_numpy(stream.resample_chunk(block.reshape(-1).float().numpy()))
        yield torch.from_numpy(stream.resample_chunk(np.zeros(0, np.float32), last=True))
        return
    width = math.ceil(6 * o / (min(o, n) * 0.99))  # torchaudio's kernel reach (lowpass_filter_width=6, rolloff)
    ctx = o * (width // o + 2)  # >= width + o, a whole number of periods
    step = o * max(1, step // o)
    buf, buf_start, done = torch.empty(0), 0, 0  # buf holds input from buf_start; output emitted up to input `done`

    def piece(lo: int, hi: int | None) -> torch.Tensor:
        out = resample(buf[lo - buf_start: None if hi is None else hi - buf_start], orig_sr, new_sr)
        a = (done - lo) // o * n
        return out[a:] if hi is None else out[a: a + step // o * n]

    for block in blocks:
        buf = torch.cat([buf, block.reshape(-1).float()])
        while buf_start + len(buf) >= done + step + ctx:
            yield piece(max(done - ctx, 0), done + step + ctx)
            done += step
            drop = done - ctx - buf_start
            if drop > 0:
                buf, buf_start = buf[drop:], buf_start + drop
    if buf_start + len(buf) > done:
        yield piece(max(done - ctx, 0), None)


def waveform(wave: np.ndarray | torch.Tensor, sr: int, prep: PrepConfig, crop: bool = True) -> torch.Tensor:
    """A decoded clip as the model's mono waveform at `prep.sample_rate`, shape (samples,).

    With `crop`, the clip is cut (or zero-padded) to `prep.duration` at its own rate first, as the
    ESC-50 release does, then resampled; without it, the whole clip is kept (for long recordings).
    """
    mono = to_mono(wave)
    if crop:
        mono = fit_length(mono, int(round(sr * prep.duration)))
    out = resample(mono, sr, prep.sample_rate)
    return fit_length(out, prep.num_samples) if crop else out


def frame(waves: torch.Tensor, prep: PrepConfig) -> torch.Tensor:
    """Windows of `prep.window` every `prep.hop` samples, stacked end to end.

    Args:
        waves: (..., num_samples)
    Returns:
        (..., 1, num_windows * window), e.g. (B, 1, 144000) for the report's settings.
    """
    windows = waves.unfold(-1, prep.window, prep.hop)  # (..., num_windows, window)
    return windows.reshape(*waves.shape[:-1], 1, -1)


def model_input(model: torch.nn.Module, waves: torch.Tensor, prep: PrepConfig) -> torch.Tensor:
    """What `model` reads for waveforms (B, samples): the report's models read the stacked windows,
    (B, 1, 144000); a model whose class sets `takes_waveform = True` reads the waveform itself."""
    return waves if getattr(model, "takes_waveform", False) else frame(waves, prep)


@functools.lru_cache(maxsize=4)
def _mel_transform(sr: int, n_mels: int) -> torch.nn.Module:
    from .frontend import mel_transform

    return mel_transform(sr, n_mels, n_fft=1024, hop=256, f_min=0.0)


@functools.lru_cache(maxsize=4)
def log_mel_hz(sr: int, n_mels: int = 64) -> np.ndarray:
    """The centre frequency in Hz of each band of `log_mel`, (n_mels,); read-only (cached: 0.1 s to find)."""
    from .frontend import band_centres

    hz = band_centres(_mel_transform(sr, n_mels))
    hz.flags.writeable = False
    return hz


def log_mel(wave: np.ndarray, sr: int, n_mels: int = 64, top_db: float = 80.0) -> np.ndarray:
    """Log-mel spectrogram in dB relative to its loudest bin (0 dB at the top, at most `top_db` below),
    shape (n_mels, frames), for display: the recipe models' front end (`audioclf.frontend`), at a finer
    hop and from 0 Hz; torchaudio, so no compile on first use."""
    from .frontend import relative_db

    with torch.no_grad():
        mel = _mel_transform(sr, n_mels)(torch.as_tensor(np.asarray(wave, dtype=np.float32)))
        return relative_db(mel, top_db).numpy()
