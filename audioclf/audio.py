"""Decoding audio files into float arrays, with errors that name the file and the problem."""
from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np

from .errors import UserError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")


class AudioError(UserError):
    """A file that cannot be used as a clip; the message says which file and why."""


def load_audio(source: str | Path | bytes | BinaryIO, name: str | None = None) -> tuple[np.ndarray, int]:
    """Decode a whole file (path, bytes or file object) to float32 of shape (channels, samples) and its
    rate. For recordings of any length, `stream_audio` decodes block by block instead."""
    sr, blocks = stream_audio(source, name)
    return np.concatenate(list(blocks), axis=1), sr


def stream_audio(source: str | Path | bytes | BinaryIO, name: str | None = None,
                 block_seconds: float = 10.0) -> tuple[int, Iterator[np.ndarray]]:
    """Open a file and decode it lazily: its rate and an iterator of float32 blocks (channels, samples).

    soundfile (libsndfile) reads wav, flac, ogg and mp3 block by block, so memory does not grow with
    the recording's length; anything it cannot open is decoded whole by librosa's audioread fallback.
    The iterator raises AudioError (naming the file) for non-finite samples, and when there are none.
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
        f = sf.SoundFile(source)
    except Exception as sf_error:  # libsndfile raises several types; all mean "cannot decode"
        data, sr = _load_with_librosa(source, label, sf_error)
        return sr, _checked(iter([np.ascontiguousarray(data.T)]), label)
    block = max(1, int(block_seconds * f.samplerate))

    def blocks() -> Iterator[np.ndarray]:
        with f:
            try:
                for b in f.blocks(block, dtype="float32", always_2d=True):  # (samples, channels)
                    yield np.ascontiguousarray(b.T)
            except sf.LibsndfileError as e:
                raise AudioError(f"{label}: cannot decode audio ({_short(e)})") from None

    return int(f.samplerate), _checked(blocks(), label)


def excerpt_wav(source: str | Path | bytes | BinaryIO, start_s: float, end_s: float, name: str | None = None) -> bytes:
    """The part of a recording from `start_s` to `end_s` seconds (cut short where the recording ends), at its
    own rate and channels, as 16-bit wav: to play one window of a long recording. Decoded block by block,
    stopping at `end_s`, so memory is that of the excerpt."""
    import soundfile as sf

    sr, blocks = stream_audio(source, name)
    first, last = int(round(start_s * sr)), int(round(end_s * sr))
    parts, pos = [], 0
    for block in blocks:  # (channels, samples)
        if pos + block.shape[1] > first:
            parts.append(block[:, max(0, first - pos):max(0, last - pos)])
        pos += block.shape[1]
        if pos >= last:
            break
    data = np.concatenate(parts, axis=1) if parts else np.zeros((1, 0), np.float32)
    buf = io.BytesIO()
    sf.write(buf, data.T, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _checked(blocks: Iterator[np.ndarray], label: str) -> Iterator[np.ndarray]:
    seen = 0
    for b in blocks:
        if not np.isfinite(b).all():
            raise AudioError(f"{label}: the audio contains NaN or infinite samples")
        if b.shape[1]:
            seen += b.shape[1]
            yield b
    if not seen:
        raise AudioError(f"{label}: the file holds no audio samples")


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
