"""From a decoded clip to the model input: mono, resample, crop or pad, frame into windows."""
from __future__ import annotations

import functools
import math
from typing import Iterable, Iterator

import numpy as np
import torch
import torchaudio.transforms as AT

from .config import PrepConfig
from .frontend import at_least


def to_mono(wave: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(channels, samples) -> (samples,): the loudest channel, not their mean.

    The mean cancels what is out of phase between the channels and comb-filters two microphones a little
    apart: the default model was right on 10 % of ESC-10's test clips with one channel inverted and on 77.5 %
    with one channel 1 ms late, against 95 % either way with the loudest channel, which is the same on mono
    and dual-mono input (bench/robustness.py, docs/results.md). A recording read block by block takes each
    block's loudest channel (10 s blocks); a live stream holds its channel (`live.Listener`)."""
    wave = torch.as_tensor(wave, dtype=torch.float32)
    if wave.ndim != 2:
        return wave
    return wave[int(wave.square().mean(dim=1).argmax())]


def fit_length(wave: torch.Tensor, n: int) -> torch.Tensor:
    """Keep the first `n` samples of the last axis, zero-padding shorter input."""
    if wave.shape[-1] >= n:
        return wave[..., :n]
    return torch.nn.functional.pad(wave, (0, n - wave.shape[-1]))


TILE_BELOW = 0.5  # of the clip length: a shorter clip is one short sound, repeated to fill it (`fill_length`)


def fill_length(wave: torch.Tensor, n: int) -> torch.Tensor:
    """The first `n` samples of the last axis; a clip shorter than half of `n` repeated to fill it, a longer
    one zero-padded (as the ESC-50 release pads its clips; none of ESC-50's or ESC-10's is that short).

    Why: a person's own clip is often one short sound (a knock, a clap). Zero-padded, most of the 1.5-3 s
    training crops of it are silence labelled as its class. Taught from 4 clips a class of 10 ESC-50 classes
    and tested on short clips as `predict` reads them (bench/short_teach.py, 8 draws on the validation
    folds): 1 s clips 85.0 % repeated against 69.1 % zero-padded, 0.5 s 78.8 % against 58.1 %, 2 s 83.7 %
    against 81.2 %."""
    if 0 < wave.shape[-1] < n * TILE_BELOW:
        wave = at_least(wave, n)
    return fit_length(wave, n)


LONG_ABOVE = 1.5  # of the clip length: a longer clip is a recording, read at its loudest (`loudest_window`)


def loudest_window(wave: torch.Tensor, n: int, hop: int | None = None) -> torch.Tensor:
    """The `n` samples of the last axis with the most energy (windows every `hop`, default n / 10), per
    row; a clip of up to `n` samples as `fill_length` gives it."""
    if wave.shape[-1] <= n:
        return fill_length(wave, n)
    hop = hop or max(n // 10, 1)
    start = wave.square().unfold(-1, n, hop).sum(-1).argmax(-1) * hop  # (...,)
    return torch.gather(wave, -1, start[..., None] + torch.arange(n, device=wave.device))


def read_length(wave: torch.Tensor, n: int) -> torch.Tensor:
    """A clip of any length as training reads it, `n` samples: a short sound repeated (`fill_length`), a
    clip about `n` long cut or zero-padded, a recording over `LONG_ABOVE` x `n` at its loudest window.

    Why the loudest: a person's recording is often longer than a clip, with the sound somewhere in it (a
    20 s phone memo, the dog barking at 12 s); its first 5 s would teach background as the class. ESC's
    longest clips (7.2 s) are read as the release reads them, their first 5 s."""
    return loudest_window(wave, n) if wave.shape[-1] > LONG_ABOVE * n else fill_length(wave, n)


# torchaudio's kernel has orig_sr / gcd(orig_sr, new_sr) phases: 441 for 44.1 kHz to 16 kHz, but 44101 for
# 44101 Hz, which takes ~40 s and gigabytes for 5 s of audio. Past this many, soxr resamples instead.
MAX_PHASES = 1000


@functools.lru_cache(maxsize=16)
def _resampler(orig_sr: int, new_sr: int, dtype: torch.dtype, device: torch.device) -> AT.Resample:
    """torchaudio's resampler with its sinc kernel made once per rate pair: the same samples as
    `torchaudio.functional.resample`, which makes the kernel again on every call (about 1 ms of a 5 s clip's
    3.5 ms at 44.1 kHz; once per piece of a long recording)."""
    return AT.Resample(orig_sr, new_sr, dtype=dtype).to(device)


def resample(wave: torch.Tensor, orig_sr: int, new_sr: int) -> torch.Tensor:
    """Band-limited resampling along the last axis (torchaudio's sinc interpolation; soxr's for an odd rate
    such as 44101 Hz). The output has ceil(n * new_sr / orig_sr) samples either way."""
    if orig_sr == new_sr:
        return wave
    if orig_sr // math.gcd(orig_sr, new_sr) <= MAX_PHASES:
        return _resampler(orig_sr, new_sr, wave.dtype, wave.device)(wave)
    import soxr  # librosa's dependency; only odd rates need it

    n_out = math.ceil(wave.shape[-1] * new_sr / orig_sr)
    flat = wave.reshape(-1, wave.shape[-1]).T.numpy(force=True).astype(np.float32)  # (samples, signals)
    out = torch.from_numpy(np.ascontiguousarray(soxr.resample(flat, orig_sr, new_sr, quality="VHQ").T))
    return fit_length(out.reshape(*wave.shape[:-1], -1), n_out).to(wave.dtype)


def resample_stream(blocks: Iterable[torch.Tensor], orig_sr: int, new_sr: int,
                    step: int = 1 << 18) -> Iterator[torch.Tensor]:
    """`resample` of a long 1-D signal that arrives in blocks, in pieces of about `step` input samples:
    the same samples as resampling the whole signal at once (to float rounding), with memory that does
    not grow with its length (`StreamResampler`)."""
    if orig_sr == new_sr:
        yield from blocks
        return
    r = StreamResampler(orig_sr, new_sr, step)
    for block in blocks:
        yield from r.push(block)
    yield from r.flush()


class StreamResampler:
    """`resample` of a 1-D signal pushed block by block; each push returns the resampled pieces that are
    ready, `flush` the rest at the end. For a file read in blocks and for a live microphone alike.

    torchaudio has no streaming resampler, so: each piece starts on a whole period of the rate ratio (so
    its output samples sit where the whole signal's do) and is resampled with enough input on each side
    for the sinc kernel, which is then cut away. A piece is ready once `step` input samples plus that
    context (a few samples: 24 at 48 kHz to 16 kHz) have arrived. An odd rate goes through soxr's own
    stream, as `resample` does.
    """

    def __init__(self, orig_sr: int, new_sr: int, step: int = 1 << 18) -> None:
        self.orig_sr, self.new_sr = orig_sr, new_sr
        g = math.gcd(orig_sr, new_sr)
        self._o, self._n = orig_sr // g, new_sr // g
        self._soxr = None
        if orig_sr != new_sr and self._o > MAX_PHASES:
            import soxr

            self._soxr = soxr.ResampleStream(orig_sr, new_sr, 1, dtype="float32", quality="VHQ")
        o, n = self._o, self._n
        width = math.ceil(6 * o / (min(o, n) * 0.99))  # torchaudio's kernel reach (lowpass_filter_width=6, rolloff)
        self._ctx = o * (width // o + 2)  # >= width + o, a whole number of periods
        self._step = o * max(1, step // o)
        # input held from _start; output given up to input sample _done
        self._buf, self._start, self._done = torch.empty(0), 0, 0

    def _piece(self, lo: int, hi: int | None) -> torch.Tensor:
        b = self._buf[lo - self._start: None if hi is None else hi - self._start]
        out = resample(b, self.orig_sr, self.new_sr)
        a = (self._done - lo) // self._o * self._n
        return out[a:] if hi is None else out[a: a + self._step // self._o * self._n]

    def push(self, block: torch.Tensor | np.ndarray) -> list[torch.Tensor]:
        block = torch.as_tensor(block).reshape(-1).float()
        if self.orig_sr == self.new_sr:
            return [block]
        if self._soxr is not None:
            return [torch.from_numpy(self._soxr.resample_chunk(block.numpy()))]
        self._buf = torch.cat([self._buf, block])
        out = []
        step, ctx = self._step, self._ctx
        while self._start + len(self._buf) >= self._done + step + ctx:
            out.append(self._piece(max(self._done - ctx, 0), self._done + step + ctx))
            self._done += step
            drop = self._done - ctx - self._start
            if drop > 0:
                self._buf, self._start = self._buf[drop:], self._start + drop
        return out

    def flush(self) -> list[torch.Tensor]:
        """The rest, at the end of the signal (its last samples, which had no input after them yet)."""
        if self.orig_sr == self.new_sr:
            return []
        if self._soxr is not None:
            return [torch.from_numpy(self._soxr.resample_chunk(np.zeros(0, np.float32), last=True))]
        if self._start + len(self._buf) > self._done:
            return [self._piece(max(self._done - self._ctx, 0), None)]
        return []


def waveform(wave: np.ndarray | torch.Tensor, sr: int, prep: PrepConfig, crop: bool = True) -> torch.Tensor:
    """A decoded clip as the model's mono waveform at `prep.sample_rate`, shape (samples,).

    With `crop`, one clip length of it is read at its own rate first, as training reads it (`read_length`),
    then resampled; without it, the whole clip is kept (for long recordings).
    """
    mono = to_mono(wave)
    if crop:
        mono = read_length(mono, int(round(sr * prep.duration)))
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
