"""Decoding audio files into float arrays, with errors that name the file and the problem."""
from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .errors import UserError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")


class AudioError(UserError):
    """A file that cannot be used as a clip; the message says which file and why."""


def load_audio(source: str | Path | bytes | BinaryIO, name: str | None = None) -> tuple[np.ndarray, int]:
    """Decode a file (path, bytes or file object) to float32 of shape (channels, samples) and its rate.

    soundfile (libsndfile) reads wav, flac, ogg and mp3; anything it cannot read is retried with
    librosa's audioread fallback before giving up.
    """
    label = name or (str(source) if isinstance(source, (str, Path)) else "uploaded file")
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise AudioError(f"{label}: file not found")
        if path.stat().st_size == 0:
            raise AudioError(f"{label}: the file is empty (0 bytes)")
    elif isinstance(source, bytes):
        if not source:
            raise AudioError(f"{label}: the file is empty (0 bytes)")
        source = io.BytesIO(source)
    import soundfile as sf  # here, not at the top: the GPU benchmark's machine has torch but no libsndfile

    try:
        data, sr = sf.read(source, dtype="float32", always_2d=True)  # (samples, channels)
    except Exception as sf_error:  # libsndfile raises several types; all mean "cannot decode"
        data, sr = _load_with_librosa(source, label, sf_error)
    if data.size == 0 or data.shape[0] == 0:
        raise AudioError(f"{label}: the file holds no audio samples")
    if not np.isfinite(data).all():
        raise AudioError(f"{label}: the audio contains NaN or infinite samples")
    return np.ascontiguousarray(data.T), int(sr)


def _load_with_librosa(source, label: str, first_error: Exception) -> tuple[np.ndarray, int]:
    import warnings

    import librosa  # imported lazily: slow to import and only needed for odd formats

    try:
        if hasattr(source, "seek"):
            source.seek(0)
        with warnings.catch_warnings():  # its "PySoundFile failed" notices: we report our own error
            warnings.simplefilter("ignore")
            y, sr = librosa.load(source, sr=None, mono=False)
    except Exception:
        raise AudioError(f"{label}: cannot decode audio ({_short(first_error)})") from None
    y = np.atleast_2d(y).astype(np.float32)  # (channels, samples)
    return y.T, int(sr)


def _short(err: Exception) -> str:
    """libsndfile's first line without its 'Error opening <object or path>: ' prefix."""
    text = str(err).strip().splitlines()
    line = text[0] if text else type(err).__name__
    if line.startswith("Error opening") and ": " in line:
        line = line.split(": ", 1)[1]
    return line[:200]
