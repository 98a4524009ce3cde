"""From a decoded clip to the model input: mono, resample, crop or pad, frame into windows."""
from __future__ import annotations

import math

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


def log_mel(wave: np.ndarray, sr: int, n_mels: int = 64) -> np.ndarray:
    """Log-mel spectrogram in dB, shape (n_mels, frames), for display."""
    import librosa  # display only; keeps the training path free of librosa's import time

    mel = librosa.feature.melspectrogram(y=np.asarray(wave, dtype=np.float32), sr=sr, n_mels=n_mels,
                                         n_fft=1024, hop_length=256)
    return librosa.power_to_db(mel, ref=np.max)
