"""The log-mel front end of the recipe models: part of the model, so a checkpoint carries it and
prediction can't drift from training; also what the app draws as a spectrogram."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio
from torch import nn


def at_least(wave: torch.Tensor, n: int) -> torch.Tensor:
    """(..., N) tiled to at least n samples: a short clip repeats rather than trailing into silence.

    One expression for every length (a longer clip is repeated once), so that the ONNX export
    (`audioclf.export`) traces it for any length; `(n + N - 1) // N`, not `-(-n // N)`, because ONNX's
    integer division truncates towards zero."""
    length = wave.shape[-1]
    return wave.repeat(*([1] * (wave.ndim - 1)), (n + length - 1) // length)


class LogMel(nn.Module):
    """(B, samples) at `sample_rate` -> (B, 1, n_mels, frames), normalised per mel bin.

    Loudness: dB relative to the clip's own maximum, floored at -top_db, so a gain change of the input
    leaves the features unchanged (up to the floor); then a BatchNorm over the mel bins (per-frequency
    mean and spread learnt from the training set).

    With `floor`, a second channel (B, 2, F, T): each band in dB above its own noise floor (`above_floor`),
    where a steady noise (wind, a fan, a phone's hiss) is near 0 and what rises over it stands out.
    """

    def __init__(self, sample_rate: int = 16000, n_mels: int = 64, n_fft: int = 1024, hop: int = 320,
                 f_min: float = 50.0, top_db: float = 80.0, floor: bool = False) -> None:
        super().__init__()
        self.hop, self.top_db = hop, top_db
        self.mel = mel_transform(sample_rate, n_mels, n_fft, hop, f_min)
        self.norm = nn.BatchNorm1d(n_mels)
        self.floor_norm = nn.BatchNorm1d(n_mels) if floor else None

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.normalise(self.db(wave))

    def db(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, samples) -> (B, F, T), dB below each clip's peak: the part with nothing learnt, which
        models of one configuration can share (`audioclf.logmel.LogMelModel.db`)."""
        with torch.autocast(wave.device.type, enabled=False):
            return relative_db(self.mel(wave.float()), self.top_db)  # (B, F, T) in [-top_db, 0]

    @property
    def channels(self) -> int:
        return 1 if self.floor_norm is None else 2

    def normalise(self, db: torch.Tensor) -> torch.Tensor:
        if self.floor_norm is None:
            return self.norm(db).unsqueeze(1)  # (B, 1, F, T)
        return torch.stack([self.norm(db), self.floor_norm(above_floor(db))], 1)  # (B, 2, F, T)


def mel_transform(sample_rate: int = 16000, n_mels: int = 64, n_fft: int = 1024, hop: int = 320,
                  f_min: float = 50.0) -> torchaudio.transforms.MelSpectrogram:
    return torchaudio.transforms.MelSpectrogram(
        sample_rate=sample_rate, n_fft=n_fft, hop_length=hop, f_min=f_min, f_max=sample_rate / 2,
        n_mels=n_mels, power=2.0, center=True, pad_mode="reflect", norm="slaney", mel_scale="slaney")


def relative_db(power: torch.Tensor, top_db: float = 80.0) -> torch.Tensor:
    """Power (..., F, T) in dB below its own maximum (over F and T), floored at -top_db."""
    x = 10.0 * torch.log10(power.clamp_min(1e-10))
    peak = x.amax(dim=(-2, -1), keepdim=True)
    return (x - peak).clamp_min(-top_db)  # no tensor made from a Python number: capturable in a CUDA graph


def above_floor(db: torch.Tensor, smooth: int = 5) -> torch.Tensor:
    """dB (B, F, T) -> each band's level above its floor: the band's lowest level over the clip, after a
    running mean over `smooth` frames (100 ms at 20 ms a frame) so that one quiet frame doesn't set it."""
    level = F.avg_pool1d(db, smooth, 1, smooth // 2, count_include_pad=False)  # (B, F, T)
    return db - level.amin(dim=-1, keepdim=True)


def band_centres(mel: torchaudio.transforms.MelSpectrogram) -> np.ndarray:
    """Each mel band's centre frequency in Hz, (n_mels,): where its triangular filter peaks, on a 1 Hz grid
    of torchaudio's own filter bank (so it follows the transform's mel scale)."""
    m = mel.mel_scale
    fb = torchaudio.functional.melscale_fbanks(m.sample_rate // 2 + 1, m.f_min, m.f_max, m.n_mels, m.sample_rate,
                                               None, m.mel_scale)  # (Hz 0..sr/2, n_mels)
    return fb.argmax(0).numpy().astype(np.float64)


@torch.no_grad()
def spectrogram(front: LogMel, wave: torch.Tensor) -> dict[str, np.ndarray]:
    """What a model's front end makes of a clip (samples,), for drawing: 'db' (n_mels, frames), dB below the
    clip's peak as the model takes it, before its learnt per-band normalisation; 'hz' (n_mels,), each band's
    centre; 'seconds' (frames,), each frame's centre in the clip (frames are centred, one every hop)."""
    device = next(front.parameters()).device
    db = relative_db(front.mel(torch.as_tensor(wave, dtype=torch.float32).to(device)), front.top_db).cpu().numpy()
    return {"db": db, "hz": band_centres(front.mel),
            "seconds": np.arange(db.shape[-1]) * front.mel.hop_length / front.mel.sample_rate}
