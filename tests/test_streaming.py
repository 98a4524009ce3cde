"""Long recordings: decoded, resampled and classified window by window, with memory that does not grow
with their length, and the same answers as classifying the whole recording at once."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.functional as AF

from audioclf.config import PrepConfig, TrainConfig
from audioclf.audio import stream_audio
from audioclf.features import fit_length, resample_stream, to_mono, waveform
from audioclf.inference import FoldEnsemble, predict_audio, predict_file, predict_waves, stream_segments
from audioclf.models import ModelConfig, build_model

ROOT = Path(__file__).resolve().parents[1]


def blocks_of(x: torch.Tensor, rng: np.random.Generator, most: int):
    i = 0
    while i < len(x):
        k = int(rng.integers(1, most))
        yield x[i:i + k]
        i += k


@pytest.mark.parametrize("orig", [8000, 11025, 22050, 44100, 48000, 16000])
def test_resampling_in_pieces_equals_resampling_whole(orig):
    x = torch.randn(orig * 3 + 77, generator=torch.Generator().manual_seed(orig))
    whole = AF.resample(x, orig, 16000) if orig != 16000 else x
    rng = np.random.default_rng(0)
    for step in (5000, 1 << 18):
        pieces = torch.cat(list(resample_stream(blocks_of(x, rng, orig), orig, 16000, step=step)))
        assert pieces.shape == whole.shape
        assert torch.allclose(pieces, whole, atol=1e-6)


def old_segments(wave: torch.Tensor, n: int, hop: int):
    """The whole-recording rule: every hop, plus a zero-padded tail of over a fifth of a clip."""
    starts = np.arange(0, max(len(wave) - n, 0) + 1, hop)
    if len(wave) - (starts[-1] + n) > n // 5:
        starts = np.append(starts, starts[-1] + hop)
    return [(int(s), fit_length(wave[s:s + n], n)) for s in starts]


@pytest.mark.parametrize("length", [1, 50, 99, 100, 119, 121, 150, 249, 250, 251, 1234])
def test_segments_of_a_stream_are_those_of_the_whole(length):
    wave = torch.randn(length)
    got = list(stream_segments(blocks_of(wave, np.random.default_rng(length), 40), n=100, hop=50))
    want = old_segments(wave, 100, 50)
    assert [s for s, _ in got] == [s for s, _ in want]
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(got, want))


def untrained_ensemble(folds: int = 2) -> FoldEnsemble:
    torch.manual_seed(0)
    return FoldEnsemble(TrainConfig(model="cnn"), tuple("abcdefghij"), tuple(range(2, 2 + folds)),
                        tuple(build_model(ModelConfig("cnn")).eval() for _ in range(folds)))


def test_a_long_file_gets_the_answers_of_the_whole_recording(tmp_path):
    rng = np.random.default_rng(1)
    audio = (0.3 * rng.standard_normal((2, 22050 * 23))).astype(np.float32)  # 23 s, stereo, 22.05 kHz
    path = tmp_path / "long.flac"
    sf.write(path, audio.T, 22050)
    ens = untrained_ensemble()
    got = predict_file(ens, path)
    sr, blocks = stream_audio(path)  # the mono of a long stereo file: each decoded block's loudest channel
    mono = torch.cat([to_mono(b) for b in blocks])
    assert len(mono) == 22050 * 23
    full = waveform(mono.numpy(), sr, PrepConfig(), crop=False)
    clips = old_segments(full, 80000, 40000)
    want = predict_waves(ens, torch.stack([c for _, c in clips]))
    assert got["over_time"]["start_s"] == [s / 16000 for s, _ in clips]
    assert np.allclose(got["over_time"]["ensemble"], want["ensemble"], atol=1e-5)
    assert np.allclose(got["ensemble"], want["ensemble"].mean(0), atol=1e-5)
    assert abs(got["duration_s"] - 23.0) < 1e-3


PEAK = """
import resource, sys, torch
sys.path.insert(0, {root!r})
from tests.test_streaming import untrained_ensemble
from audioclf.inference import predict_file
torch.set_num_threads(1)
res = predict_file(untrained_ensemble(1), {path!r})
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, len(res.get("over_time", {{}}).get("start_s", [0])))
"""


def peak_mb(path: Path) -> tuple[int, int]:
    out = subprocess.run([sys.executable, "-c", PEAK.format(root=str(ROOT), path=str(path))], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    mb, windows = out.stdout.split()
    return int(mb), int(windows)


def test_memory_does_not_grow_with_the_recording(tmp_path):
    """A 12-minute recording (8 kHz, 8-bit: 5.8 MB) peaks within 400 MB of a 5 s one. Holding every
    window at once, as before, took about 4 GB for it."""
    rng = np.random.default_rng(2)
    short, long = tmp_path / "short.wav", tmp_path / "long.wav"
    sf.write(short, 0.3 * rng.standard_normal(8000 * 5), 8000, subtype="PCM_U8")
    sf.write(long, 0.3 * rng.standard_normal(8000 * 720), 8000, subtype="PCM_U8")
    base, _ = peak_mb(short)
    peak, windows = peak_mb(long)
    assert windows == 287
    assert peak - base < 400, (base, peak)


@pytest.mark.parametrize("start, end", [(5.0, 10.0), (0.0, 5.0), (7.5, 12.5)])
def test_a_window_of_a_long_recording_is_cut_out_to_play(start, end):
    """What the Predict timeline plays for a clicked window: that part of the file, at its own rate and channels,
    read block by block (of 10 s: 7.5-12.5 s spans two) and cut short where the recording ends (at 11 s)."""
    import io

    from audioclf.audio import excerpt_wav

    sr, seconds = 8000, 11.0
    rng = np.random.default_rng(0)
    song = (0.5 * rng.uniform(-1, 1, (int(sr * seconds), 2))).astype(np.float32)  # stereo noise: every sample distinct
    buf = io.BytesIO()
    sf.write(buf, song, sr, format="WAV", subtype="PCM_16")
    original, _ = sf.read(io.BytesIO(buf.getvalue()), dtype="float32")
    got, got_sr = sf.read(io.BytesIO(excerpt_wav(buf.getvalue(), start, end, name="song.wav")), dtype="float32")
    want = original[int(start * sr):int(min(end, seconds) * sr)]
    assert got_sr == sr and got.shape == want.shape and np.array_equal(got, want)


class LoudnessBlind:
    """A model as the recipe's front end makes it: blind to level (each window scaled to its own peak),
    it hears "a" where a window holds a tone and calls a window of background alone "b"."""

    config = TrainConfig(model="logmel-cnn")
    classes_ = tuple("ab")
    folds = (2, 3)
    takes_waveform = True

    def probabilities(self, waves: torch.Tensor) -> dict[str, np.ndarray]:
        tone = (waves.abs().amax(1) > 0.5).numpy()
        p = np.where(tone[:, None], [0.9, 0.1], [0.2, 0.8])
        return {"fold2": p, "fold3": p, "ensemble": p}


def test_a_long_recording_is_named_by_its_loud_windows():
    sr = 16000
    rng = np.random.default_rng(0)
    wave = 0.01 * rng.standard_normal(20 * sr)  # 20 s of quiet background, a 1 s tone at 10 s
    wave[10 * sr:11 * sr] += np.sin(2 * np.pi * 440 * np.arange(sr) / sr)
    res = predict_audio(LoudnessBlind(), wave[None].astype(np.float32), sr)
    ot = res["over_time"]
    assert ot["start_s"] == [0, 2.5, 5, 7.5, 10, 12.5, 15]
    assert ot["loud"] == [False, False, False, True, True, False, False]  # the two windows with the tone
    assert ot["level_db"][3] == 0 and max(ot["level_db"][:3]) < -20
    assert np.argmax(res["ensemble"]) == 0  # the mean over all seven windows would say "b"
    assert np.argmax(np.mean(ot["ensemble"], axis=0)) == 1
    assert np.allclose(res["per_model"]["fold2"], [0.9, 0.1])


def test_one_steady_sound_is_the_mean_of_all_its_windows():
    rng = np.random.default_rng(1)
    wave = (0.3 * rng.standard_normal(20 * 16000)).astype(np.float32)
    res = predict_audio(untrained_ensemble(), wave[None], 16000)
    assert all(res["over_time"]["loud"])
    assert np.allclose(res["ensemble"], np.mean(res["over_time"]["ensemble"], axis=0), atol=1e-6)


@pytest.mark.parametrize("kind", ["wav", "m4a", "amr"])
def test_the_start_of_a_file_only_and_a_length_limit(kind):
    """`first_seconds` decodes the start (the prefix of the whole decode); `max_seconds` refuses a longer
    recording with its name and the limit, from the header where it says, else while decoding."""
    import io

    from audioclf.audio import AudioError, encode, load_audio, stream_audio

    sr = 8000
    y = (0.3 * np.sin(2 * np.pi * 300 * np.arange(12 * sr) / sr)).astype(np.float32)[None]
    if kind == "wav":
        buf = io.BytesIO()
        sf.write(buf, y.T, sr, format="WAV")
        data = buf.getvalue()
    else:
        data = encode(y, sr, kind)
    whole, rate = load_audio(data)
    start, rate2 = load_audio(data, first_seconds=2.5)
    assert rate2 == rate and start.shape == (1, int(2.5 * rate)) and np.array_equal(start, whole[:, :start.shape[1]])
    with pytest.raises(AudioError, match=rf"memo\.{kind}: (12|over 5) s of audio; the limit is 5 s"):
        for _ in stream_audio(data, name=f"memo.{kind}", max_seconds=5)[1]:
            pass
    assert sum(b.shape[1] for b in stream_audio(data, max_seconds=13)[1]) == whole.shape[1]


def test_a_recording_over_the_limit_fails_while_decoding_when_the_header_is_silent(monkeypatch):
    """A stream whose header gives no length (raw ADTS AAC: FFmpeg only estimates) is stopped by the count."""
    import av

    from audioclf.audio import AudioError, stream_audio

    sr = 8000
    buf = __import__("io").BytesIO()
    with av.open(buf, "w", format="adts") as out:
        stream = out.add_stream("aac", rate=sr)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 12 * sr), np.float32), format="fltp", layout="mono")
        frame.sample_rate = sr
        for packet in (*stream.encode(frame), *stream.encode(None)):
            out.mux(packet)
    real_open = av.open
    monkeypatch.setattr(av, "open", lambda *a, **k: _without_duration(real_open(*a, **k)))
    rate, blocks = stream_audio(buf.getvalue(), name="live.aac", max_seconds=5, block_seconds=1)
    got = []
    with pytest.raises(AudioError, match=r"live\.aac: over 5 s of audio; the limit is 5 s"):
        for b in blocks:
            got.append(b.shape[1])
    assert sum(got) <= 5 * rate  # nothing past the limit was handed on


class _without_duration:
    """A PyAV container whose header says nothing of its length."""

    def __init__(self, container):
        self._c = container
        self.duration = None

    def __getattr__(self, name):
        return getattr(self._c, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._c.close()


def test_a_stereo_file_out_of_phase_gets_the_answer_of_its_channel(tmp_path):
    """The mean of the channels would be silence here (features.to_mono keeps the loudest channel)."""
    x = (0.3 * np.random.default_rng(3).standard_normal(16000 * 7)).astype(np.float32)
    sf.write(tmp_path / "mono.wav", x, 16000, subtype="FLOAT")
    sf.write(tmp_path / "inverted.wav", np.stack([x, -x], axis=1), 16000, subtype="FLOAT")
    sf.write(tmp_path / "late.wav", np.stack([0.5 * np.roll(x, 16), x], axis=1), 16000, subtype="FLOAT")
    ens = untrained_ensemble()
    want = predict_file(ens, tmp_path / "mono.wav")
    for name in ("inverted.wav", "late.wav"):
        got = predict_file(ens, tmp_path / name)
        assert np.allclose(got["ensemble"], want["ensemble"], atol=1e-5), name
