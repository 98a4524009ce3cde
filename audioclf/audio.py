"""Decoding audio files into float arrays, with errors that name the file and the problem."""
from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np

from .errors import UserError

# libsndfile's formats, then what phones and browsers record in (AAC in .m4a/.mp4/.3gp, AMR, Opus in .webm),
# which PyAV decodes.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".caf",
                    ".m4a", ".aac", ".mp4", ".3gp", ".amr", ".webm", ".wma")
# The demuxers PyAV may use: audio containers only. A playlist (hls) or concat list would make FFmpeg open
# other files or URLs named inside an upload; they are not in the list.
_AV_DEMUXERS = "mov,mp4,m4a,3gp,3g2,aac,amr,matroska,webm,ogg,mp3,wav,w64,flac,aiff,caf,asf"


class AudioError(UserError):
    """A file that cannot be used as a clip; the message says which file and why."""


class TooLong(AudioError):
    """A recording over the `max_seconds` its reader was given."""


def load_audio(source: str | Path | bytes | BinaryIO, name: str | None = None,
               first_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """Decode a file (path, bytes or file object) to float32 of shape (channels, samples) and its rate:
    whole, or only its first `first_seconds` (memory is then that of the excerpt, however long the file).
    For recordings of any length, `stream_audio` decodes block by block instead."""
    sr, blocks = stream_audio(source, name, block_seconds=min(10.0, first_seconds or 10.0))
    if first_seconds is None:
        return np.concatenate(list(blocks), axis=1), sr
    want, kept, held = max(1, int(first_seconds * sr)), [], 0
    for b in blocks:
        kept.append(b[:, :want - held])
        held += kept[-1].shape[1]
        if held >= want:
            break
    return np.concatenate(kept, axis=1), sr


def stream_audio(source: str | Path | bytes | BinaryIO, name: str | None = None,
                 block_seconds: float = 10.0, max_seconds: float | None = None) -> tuple[int, Iterator[np.ndarray]]:
    """Open a file and decode it lazily: its rate and an iterator of float32 blocks (channels, samples).

    soundfile (libsndfile) reads wav, flac, ogg and mp3, and PyAV (FFmpeg's decoders, in a wheel) what
    libsndfile cannot open (m4a/AAC, AMR, webm/Opus, wma), both block by block, so memory does not grow
    with the recording's length.
    The iterator raises AudioError (naming the file) for non-finite samples, and when there are none.
    A recording over `max_seconds` is an AudioError, at once where the file's header says how long it is,
    else as soon as decoding passes the limit.
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
        return _stream_with_av(source, label, block_seconds, max_seconds, sf_error)
    if max_seconds is not None and f.frames > max_seconds * f.samplerate:
        f.close()
        raise _too_long(label, f.frames / f.samplerate, max_seconds)
    block = max(1, int(block_seconds * f.samplerate))

    def blocks() -> Iterator[np.ndarray]:
        with f:
            try:
                for b in f.blocks(block, dtype="float32", always_2d=True):  # (samples, channels)
                    yield np.ascontiguousarray(b.T)
            except sf.LibsndfileError as e:
                raise AudioError(f"{label}: cannot decode audio ({_short(e)})") from None

    return int(f.samplerate), _checked(blocks(), label, int(f.samplerate), max_seconds)


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


# Containers and codecs phones and browsers record in: (container, codec) for `encode`.
PHONE_FORMATS = {"m4a": ("ipod", "aac"), "webm": ("webm", "libopus"), "amr": ("amr", "libopencore_amrnb")}


def encode(data: np.ndarray, rate: int, kind: str, bitrate: int | None = None) -> bytes:
    """A (channels, samples) float array as a file in one of PHONE_FORMATS, in memory: to check that the
    codecs people's recordings come in decode, and how much they change an answer."""
    import av

    fmt, codec = PHONE_FORMATS[kind]
    data = np.atleast_2d(np.asarray(data, dtype=np.float32))
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate)
        stream.layout = "mono" if data.shape[0] == 1 else "stereo"
        if bitrate:
            stream.bit_rate = bitrate
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format="fltp", layout=stream.layout.name)
        frame.sample_rate = rate
        for packet in (*stream.encode(frame), *stream.encode(None)):  # PyAV converts to the codec's format
            out.mux(packet)
    return buf.getvalue()


def _checked(blocks: Iterator[np.ndarray], label: str, rate: int,
             max_seconds: float | None) -> Iterator[np.ndarray]:
    seen = 0
    for b in blocks:
        if not np.isfinite(b).all():
            raise AudioError(f"{label}: the audio contains NaN or infinite samples")
        if b.shape[1]:
            seen += b.shape[1]
            if max_seconds is not None and seen > max_seconds * rate:
                raise _too_long(label, None, max_seconds)
            yield b
    if not seen:
        raise AudioError(f"{label}: the file holds no audio samples")


def _too_long(label: str, seconds: float | None, max_seconds: float) -> TooLong:
    def text(s: float) -> str:
        return f"{s / 3600:.1f} h" if s >= 5400 else f"{s / 60:.0f} min" if s >= 90 else f"{s:.0f} s"

    length = f"{text(seconds)} of audio" if seconds is not None else f"over {text(max_seconds)} of audio"
    return TooLong(f"{label}: {length}; the limit is {text(max_seconds)} (cut it into parts)")


def _stream_with_av(source: str | Path | BinaryIO, label: str, block_seconds: float, max_seconds: float | None,
                    first_error: Exception) -> tuple[int, Iterator[np.ndarray]]:
    """Decode with PyAV, block by block, as float32 (channels, samples) at the stream's own rate."""
    import av  # here: only files libsndfile cannot open need it

    if hasattr(source, "seek"):
        source.seek(0)
    try:
        container = av.open(str(source) if isinstance(source, Path) else source, mode="r",
                            options={"format_whitelist": _AV_DEMUXERS})
    except Exception:  # FFmpeg's errors for "not a format I know"; libsndfile's said it first
        raise AudioError(f"{label}: cannot decode audio ({_short(first_error)})") from None
    if not container.streams.audio:
        container.close()
        raise AudioError(f"{label}: the file has no audio track")
    stream = container.streams.audio[0]
    ctx = stream.codec_context
    rate = int(ctx.sample_rate or 0)
    if rate <= 0 or ctx.channels <= 0:
        container.close()
        raise AudioError(f"{label}: the audio track has no sample rate or no channels")
    known = container.duration / 1e6 if container.duration else None  # FFmpeg's estimate, in microseconds
    if max_seconds is not None and known is not None and known > max_seconds:
        container.close()
        raise _too_long(label, known, max_seconds)
    # Planar float at the stream's own rate and channels: to_ndarray() is then (channels, samples).
    resampler = av.AudioResampler(format="fltp", layout=ctx.layout if ctx.layout.nb_channels else ctx.channels,
                                  rate=rate)
    block = max(1, int(block_seconds * rate))

    def blocks() -> Iterator[np.ndarray]:
        pending: list[np.ndarray] = []
        held = 0
        with container:
            try:
                for frame in _then_none(container.decode(stream)):
                    for out in resampler.resample(frame):
                        pending.append(out.to_ndarray().astype(np.float32, copy=False))
                        held += pending[-1].shape[1]
                        if held >= block:
                            yield np.ascontiguousarray(np.concatenate(pending, axis=1))
                            pending, held = [], 0
            except av.FFmpegError as e:
                raise AudioError(f"{label}: cannot decode audio ({_short(e)})") from None
        if pending:
            yield np.ascontiguousarray(np.concatenate(pending, axis=1))

    return rate, _checked(blocks(), label, rate, max_seconds)


def _then_none(frames: Iterator) -> Iterator:
    """The frames, then None: the resampler's signal to flush what it holds."""
    yield from frames
    yield None


def _short(err: Exception) -> str:
    """libsndfile's first line without its 'Error opening <object or path>: ' prefix."""
    text = str(err).strip().splitlines()
    line = text[0] if text else type(err).__name__
    if line.startswith("Error opening") and ": " in line:
        line = line.split(": ", 1)[1]
    return line[:200]
