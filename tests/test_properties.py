"""Property-based tests (hypothesis) over decode -> mono -> resample -> frame: any valid clip of any length,
rate, channel count and sample format comes out with the right shape and finite values."""
from __future__ import annotations

import io
import math

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audioclf.audio import AudioError, encode, load_audio
from audioclf.config import PrepConfig
from audioclf.features import frame, waveform

PREP = PrepConfig()  # the report's: 5 s at 16 kHz, nine 1 s windows -> (1, 144000)
# (container, subtype, largest decoding error for samples in [-1, 1))
FORMATS = [("WAV", "PCM_U8", 2 / 2**7), ("WAV", "PCM_16", 2 / 2**15), ("WAV", "PCM_24", 2 / 2**23),
           ("WAV", "PCM_32", 2 / 2**23), ("WAV", "FLOAT", 1e-7), ("WAV", "DOUBLE", 1e-7),
           ("FLAC", "PCM_S8", 2 / 2**7), ("FLAC", "PCM_16", 2 / 2**15), ("FLAC", "PCM_24", 2 / 2**23)]
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def clips(draw, formats=FORMATS, max_seconds: float = 3.0):
    """(encoded bytes, samples as written (n, channels), rate, channels, tolerance)."""
    container, subtype, tol = draw(st.sampled_from(formats))
    sr = draw(st.integers(8000, 48000))
    channels = draw(st.integers(1, 6))
    n = draw(st.integers(1, int(sr * max_seconds)))
    kind = draw(st.sampled_from(["noise", "sine", "silence", "full-scale", "constant"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    t = np.arange(n)[:, None] / sr
    y = {"noise": lambda: rng.uniform(-1, 1, (n, channels)),
         "sine": lambda: 0.9 * np.sin(2 * np.pi * rng.uniform(20, sr / 2, channels) * t),
         "silence": lambda: np.zeros((n, channels)),
         "full-scale": lambda: np.where(rng.random((n, channels)) < 0.5, -1.0, 1.0 - 2**-15),
         "constant": lambda: np.full((n, channels), rng.uniform(-1, 1))}[kind]()
    buf = io.BytesIO()
    sf.write(buf, y, sr, format=container, subtype=subtype)
    return buf.getvalue(), y.astype(np.float32), sr, channels, tol


@FAST
@given(clips())
def test_decode_keeps_shape_rate_and_values(clip):
    data, y, sr, channels, tol = clip
    arr, rate = load_audio(data, name="clip")
    assert rate == sr and arr.dtype == np.float32 and arr.shape == (channels, len(y))
    assert np.isfinite(arr).all()
    assert np.abs(arr - y.T).max() <= tol + 1e-6  # decoding is exact to the format's resolution


@FAST
@given(clips())
def test_mono_resample_frame_give_the_model_input(clip):
    data, y, sr, channels, _ = clip
    arr, rate = load_audio(data)
    wave = waveform(arr, rate, PREP)  # cropped or padded to 5 s at its own rate, then 16 kHz
    assert wave.shape == (PREP.num_samples,) and bool(wave.isfinite().all())
    # Band-limited resampling rings past full scale on noise (1.5 seen from 8 kHz), bounded by the sum of
    # one output's |taps| (at most about 2 for the rates here): never a blow-up.
    assert float(wave.abs().max()) <= 3.0
    x = frame(wave.unsqueeze(0), PREP)
    assert x.shape == (1, 1, PREP.input_length) and bool(x.isfinite().all())
    assert x[0, 0, :PREP.window].equal(wave[:PREP.window])  # the first window is the clip's first second
    whole = waveform(arr, rate, PREP, crop=False)  # a long recording is kept whole
    assert whole.shape == (len(y) if rate == PREP.sample_rate else math.ceil(len(y) * PREP.sample_rate / rate),)
    assert bool(whole.isfinite().all())


@settings(max_examples=15, deadline=None)
@given(clips(formats=[("OGG", "VORBIS", None)], max_seconds=1.0))
def test_lossy_ogg_decodes_to_finite_audio_of_its_channels(clip):
    data, y, sr, channels, _ = clip
    arr, rate = load_audio(data)
    assert rate == sr and arr.shape[0] == channels and arr.shape[1] >= 1 and np.isfinite(arr).all()
    assert waveform(arr, rate, PREP).shape == (PREP.num_samples,)


# What phones and browsers record in (PyAV decodes them): the rates each codec takes, its channels, and the
# rate it decodes at (Opus always decodes at 48 kHz).
PHONE = {"m4a": ([8000, 11025, 16000, 22050, 32000, 44100, 48000], [1, 2], None),
         "webm": ([8000, 12000, 16000, 24000, 48000], [1, 2], 48000),
         "amr": ([8000], [1], None)}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(PHONE)), st.data())
def test_phone_and_browser_recordings_decode_to_the_clip(kind, data):
    """m4a (AAC), webm (Opus), amr: the channels, the duration to the codec's padding, about the loudness of
    a tone, finite, and the model's input shape."""
    rates, channel_counts, decode_rate = PHONE[kind]
    sr = data.draw(st.sampled_from(rates))
    channels = data.draw(st.sampled_from(channel_counts))
    n = data.draw(st.integers(1, 2 * sr))
    t = np.arange(n) / sr
    y = np.stack([0.5 * np.sin(2 * np.pi * 440 * t)] * channels).astype(np.float32)
    arr, rate = load_audio(encode(y, sr, kind), name=f"clip.{kind}")
    assert rate == (decode_rate or sr) and arr.dtype == np.float32 and arr.shape[0] == channels
    assert np.isfinite(arr).all()
    assert n / sr <= arr.shape[1] / rate <= n / sr + 0.3  # encoders pad to their frames, never cut
    if n >= sr // 2:  # a tone long enough to outweigh the padding keeps its level
        assert 0.6 < float(np.sqrt((arr ** 2).mean()) / np.sqrt((y ** 2).mean())) < 1.4
    assert waveform(arr, rate, PREP).shape == (PREP.num_samples,)


def test_a_playlist_or_file_list_is_not_followed(tmp_path):
    """FFmpeg's hls and concat demuxers open the files and URLs named inside a file: a file handed to the
    server must not make it read another. Only audio containers are allowed, so these are not audio
    (FFmpeg itself opens the playlist below when the file's name ends in .m3u8)."""
    import av

    segment = tmp_path / "secret.ts"
    with av.open(str(segment), "w", format="mpegts") as out:
        stream = out.add_stream("aac", rate=16000)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 16000), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for packet in (*stream.encode(frame), *stream.encode(None)):
            out.mux(packet)
    playlist = tmp_path / "list.m3u8"
    playlist.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile://{segment}\n#EXT-X-ENDLIST\n")
    assert av.open(str(playlist)).format.name == "hls"  # what the whitelist stops
    with pytest.raises(AudioError, match="list.m3u8: cannot decode audio"):
        load_audio(playlist)
    for text in (playlist.read_text(), f"ffconcat version 1.0\nfile {segment}\n"):
        with pytest.raises(AudioError, match="upload.m4a: cannot decode audio"):
            load_audio(text.encode(), name="upload.m4a")


def test_a_container_without_audio_says_so():
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:  # one black video frame, no audio track
        stream = out.add_stream("mpeg4", rate=1)
        stream.width = stream.height = 16
        frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
        for packet in (*stream.encode(frame), *stream.encode(None)):
            out.mux(packet)
    with pytest.raises(AudioError, match="video.mp4: the file has no audio track"):
        load_audio(buf.getvalue(), name="video.mp4")


@pytest.mark.parametrize("fmt, subtype", [("WAV", "PCM_16"), ("FLAC", "PCM_24")])
def test_one_sample_at_the_extreme_rates(fmt, subtype):
    for sr in (8000, 48000):
        buf = io.BytesIO()
        sf.write(buf, np.array([[0.5] * 6]), sr, format=fmt, subtype=subtype)
        arr, rate = load_audio(buf.getvalue())
        assert arr.shape == (6, 1)
        assert frame(waveform(arr, rate, PREP).unsqueeze(0), PREP).shape == (1, 1, PREP.input_length)


def test_an_odd_rate_resamples_quickly_and_alike():
    """44101 Hz has 44101 torchaudio phases (about 40 s and gigabytes for 5 s); soxr does it in milliseconds,
    and agrees with the 44.1 kHz path to the 1/44100 drift."""
    import time

    import torch

    t = torch.arange(5 * 44101) / 44101
    x = torch.sin(2 * math.pi * 440 * t)[None].repeat(2, 1).numpy()
    start = time.perf_counter()
    odd = waveform(x, 44101, PREP)
    assert time.perf_counter() - start < 2.0
    usual = waveform(x, 44100, PREP)
    assert odd.shape == usual.shape == (PREP.num_samples,)
    assert float((odd[:16000] - usual[:16000]).abs().max()) < 0.1
