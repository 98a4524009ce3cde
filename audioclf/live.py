"""Live listening: audio pushed in small frames at any rate (a microphone's 20 ms frames at 48 kHz, say),
classified every hop over the last window by a run's fold ensemble, with the last minute of answers.

Knows nothing of the browser: the app's Listen page pushes what its WebRTC component receives, tests push
synthetic audio and ESC-10 clips. Thread-safe: one thread pushes (the WebRTC callback's), any other reads.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
import torch

from .audio import AudioError
from .confidence import QUIET_DB, verdict
from .features import StreamResampler, to_mono
from .inference import FoldEnsemble, level_db, predict_waves

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Heard:
    """One hop's answer: the ensemble over the window that ends `end_s` seconds into the stream."""

    end_s: float
    window_s: float                      # audio in the window (less than the model's length at first)
    ensemble: np.ndarray                 # (C,) the mean of the fold models' probabilities
    per_model: tuple[np.ndarray, ...]    # (C,) each fold model's
    top: int                             # the ensemble's top class
    sure: bool                           # the "not sure" rule (`confidence.verdict`) let it answer
    reasons: tuple[str, ...]             # why not sure
    compute_s: float                     # seconds the fold models took for this window
    skipped: int = 0                     # hops passed over because the pusher fell behind
    level_db: float = 0.0                # its energy against the loudest window of the kept answers (dB)
    energy: float = 0.0                  # the window's mean square

    @property
    def quiet(self) -> bool:
        """Over QUIET_DB below the loudest: background, never a sure answer whatever the models say."""
        return self.level_db < -QUIET_DB


SWITCH_DB = 1.0  # a live stream moves to another channel only once that one has been this much louder


class Listener:
    """A ring buffer of the last window at the model's rate, classified every `hop_s` seconds of audio.

    Each hop classifies the newest `window` samples (the run's clip length, 5 s; less while the stream is
    younger than that: a model that reads any length gets what there is, the others get it with silence
    before). When one push spans several hops (the pusher fell behind), only the newest window is
    classified. The answers of the last `keep_s` seconds are kept. A window over `QUIET_DB` below the
    loudest of them is "quiet": the recipe scales each window to its own peak, so it would name room tone
    as surely as a sound (as a long recording's timeline does, `confidence.timeline`).
    """

    def __init__(self, ens: FoldEnsemble, threshold: float, hop_s: float = 1.0, keep_s: float = 60.0) -> None:
        prep = ens.config.prep
        self.ens, self.threshold = ens, float(threshold)
        self.sr, self.window = prep.sample_rate, prep.num_samples
        self.hop = max(1, int(round(hop_s * self.sr)))
        self.keep_s = keep_s
        self._pad = not getattr(ens.models[0], "takes_waveform", False)
        self._lock = threading.Lock()       # the state below, for readers
        self._pushing = threading.Lock()    # one push at a time
        self.reset()

    @property
    def classes(self) -> tuple[str, ...]:
        return self.ens.classes_

    def reset(self) -> None:
        """Forget the audio and the answers (a new stream)."""
        with self._pushing, self._lock:
            self._ring = np.zeros(self.window, np.float32)
            self._total = 0  # samples at the model's rate pushed so far
            self._resampler: StreamResampler | None = None
            self._energy: np.ndarray | None = None  # each channel's energy so far (`_one_channel`)
            self._channel = 0
            self._history: deque[Heard] = deque(maxlen=max(1, int(np.ceil(self.keep_s * self.sr / self.hop))))

    def _one_channel(self, samples: np.ndarray | torch.Tensor) -> torch.Tensor:
        """A frame's mono, as `features.to_mono` hears a recording: its loudest channel, but the loudest of the
        whole stream so far, kept until another has been SWITCH_DB louder. Frame by frame (20 ms), a stereo
        microphone's two alike channels would take turns, a jump between them every few frames."""
        wave = torch.as_tensor(samples, dtype=torch.float32)
        if wave.ndim != 2 or wave.shape[0] == 1:
            return to_mono(wave)
        energy = wave.double().square().sum(dim=1).numpy()
        if self._energy is None or len(self._energy) != len(energy):
            self._energy, self._channel = energy, int(energy.argmax())
        else:
            self._energy += energy
            top = int(self._energy.argmax())
            if self._energy[top] > self._energy[self._channel] * 10 ** (SWITCH_DB / 10):
                self._channel = top
        return wave[self._channel]

    @property
    def heard_s(self) -> float:
        """Seconds of audio pushed since the last reset (at the model's rate)."""
        with self._lock:
            return self._total / self.sr

    def history(self) -> list[Heard]:
        """The answers of the last `keep_s` seconds, oldest first."""
        with self._lock:
            return list(self._history)

    def push(self, samples: np.ndarray | torch.Tensor, sr: int) -> list[Heard]:
        """Add audio, (samples,) or (channels, samples) at rate `sr`; classify if a hop is due.

        Returns the new answers (none or one).
        """
        if not isinstance(sr, (int, np.integer)) or sr <= 0:
            raise AudioError(f"live audio: the sample rate must be a positive whole number of Hz, not {sr!r}")
        with self._pushing:
            mono = self._one_channel(samples)
            if mono.ndim != 1:
                raise AudioError(f"live audio: expected (samples,) or (channels, samples), got shape {tuple(mono.shape)}")
            if self._resampler is None or self._resampler.orig_sr != sr:
                self._resampler = StreamResampler(int(sr), self.sr, step=max(1, int(sr) // 100))  # 10 ms pieces
            pieces = self._resampler.push(mono)
            new = torch.cat(pieces).numpy() if pieces else np.zeros(0, np.float32)
            with self._lock:
                before = self._total
                self._write(new)
                hops = self._total // self.hop - before // self.hop
                wave = self._latest() if hops else None
                end_s = self._total / self.sr
            if wave is None:
                return []
            heard = self._classify(wave, end_s, skipped=int(hops) - 1)
            with self._lock:
                self._history.append(heard)
            return [heard]

    def _write(self, x: np.ndarray) -> None:
        """Append to the ring buffer, where stream sample i lives at i % window (lock held)."""
        m = min(len(x), self.window)
        self._ring[np.arange(self._total + len(x) - m, self._total + len(x)) % self.window] = x[len(x) - m:]
        self._total += len(x)

    def _latest(self) -> np.ndarray:
        """The newest min(pushed, window) samples in time order, a copy (lock held)."""
        if self._total < self.window:
            return self._ring[:self._total].copy()
        at = self._total % self.window  # the oldest
        return np.concatenate([self._ring[at:], self._ring[:at]])

    def _classify(self, wave: np.ndarray, end_s: float, skipped: int) -> Heard:
        x = torch.from_numpy(wave)
        if self._pad and len(x) < self.window:
            x = torch.nn.functional.pad(x, (self.window - len(x), 0))  # silence before the stream began
        t0 = time.perf_counter()
        probs = predict_waves(self.ens, x[None])
        compute = time.perf_counter() - t0
        ens = probs.pop("ensemble")[0]
        per_model = tuple(p[0] for p in probs.values())
        v = verdict(ens, per_model, self.threshold)
        energy = float(np.mean(np.square(wave, dtype=np.float64))) if len(wave) else 0.0
        with self._lock:
            loudest = max([energy] + [h.energy for h in self._history])
        level = level_db(np.array([energy, loudest]))[0]
        quiet = bool(level < -QUIET_DB)
        reasons = tuple(v["reasons"]) + ((f"it is {-level:.0f} dB below the loudest of the last "
                                          f"{self.keep_s:g} s: background",) if quiet else ())
        label = self.classes[v["top"]] if v["sure"] and not quiet else f"not sure ({self.classes[v['top']]})"
        log.debug("%.1f s: %s %.2f, %.0f ms", end_s, label, ens[v["top"]], 1000 * compute)
        return Heard(end_s=end_s, window_s=len(wave) / self.sr, ensemble=ens, per_model=per_model, top=v["top"],
                     sure=v["sure"] and not quiet, reasons=reasons, compute_s=compute, skipped=max(0, skipped),
                     level_db=float(level), energy=energy)


def spans(history: list[Heard], classes: tuple[str, ...] | list[str]) -> list[dict]:
    """Consecutive answers merged: {from_s, to_s (the first and last window's end), class (None: not
    sure), quiet, probability (the highest of the span's answers to its class, or to their top classes)}."""
    out: list[dict] = []
    for h in history:
        label = classes[h.top] if h.sure else None
        p = float(h.ensemble[h.top])
        if out and out[-1]["class"] == label and out[-1]["quiet"] == h.quiet:
            out[-1]["to_s"], out[-1]["probability"] = h.end_s, max(out[-1]["probability"], p)
        else:
            out.append({"from_s": h.end_s, "to_s": h.end_s, "class": label, "quiet": h.quiet, "probability": p})
    return out


def pcm(data: np.ndarray, channels: int, interleaved: bool) -> np.ndarray:
    """Decoded PCM as float32 (channels, samples) in [-1, 1]: whole-number samples scaled by their type's
    range; interleaved samples (a WebRTC decoder's (1, samples * channels)) taken apart."""
    data = np.asarray(data)
    if np.issubdtype(data.dtype, np.integer):
        info = np.iinfo(data.dtype)
        x = (data.astype(np.float32) - (info.max + 1 + info.min) / 2) / ((info.max - info.min + 1) / 2)
    else:
        x = data.astype(np.float32, copy=False)
    if channels < 1:
        raise AudioError(f"live audio: {channels} channels")
    if interleaved:
        flat = x.reshape(-1)
        if len(flat) % channels:
            raise AudioError(f"live audio: {len(flat)} interleaved samples do not split into {channels} channels")
        return flat.reshape(-1, channels).T
    return x.reshape(channels, -1)
