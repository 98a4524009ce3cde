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

from audioclf.audio import load_audio
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
