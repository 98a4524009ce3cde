from pathlib import Path

import numpy as np
import torch

from audioclf.config import PrepConfig
from audioclf.features import fill_length, fit_length, frame, loudest_window, read_length, resample, to_mono, waveform


def test_report_framing_gives_nine_windows_of_one_second():
    prep = PrepConfig()
    assert (prep.num_samples, prep.num_windows, prep.input_length) == (80000, 9, 144000)
    waves = torch.randn(3, prep.num_samples)
    x = frame(waves, prep)
    assert x.shape == (3, 1, 144000)
    for k in range(9):  # window k is samples [8000k, 8000k + 16000) of the clip
        assert torch.equal(x[1, 0, 16000 * k:16000 * (k + 1)], waves[1, 8000 * k:8000 * k + 16000])


def test_framing_follows_its_parameters():
    prep = PrepConfig(sample_rate=8000, duration=2.0, window=4000, hop=1000)
    assert prep.num_windows == 13
    assert frame(torch.zeros(prep.num_samples), prep).shape == (1, 13 * 4000)


def test_resample_44k1_to_16k_keeps_duration_and_pitch():
    sr = 44100
    t = torch.arange(sr) / sr
    y = resample(torch.sin(2 * torch.pi * 1000 * t), sr, 16000)
    assert y.shape == (16000,)
    spectrum = torch.fft.rfft(y).abs()
    assert abs(int(spectrum.argmax()) - 1000) <= 1  # 1 Hz bins over one second


def test_resampling_gives_torchaudios_samples_exactly_with_its_kernel_made_once():
    import torchaudio.functional as AF

    from audioclf import features

    g = torch.Generator().manual_seed(0)
    for orig, shape, dtype in [(44100, (22050,), torch.float32), (48000, (2, 3, 4800), torch.float32),
                               (8000, (1000,), torch.float64), (44100, (3, 441), torch.float32)]:
        x = torch.randn(*shape, generator=g, dtype=dtype)
        y = resample(x, orig, 16000)
        assert y.dtype == dtype and torch.equal(y, AF.resample(x, orig, 16000)), (orig, shape, dtype)
    before = features._resampler.cache_info()
    resample(torch.randn(44100), 44100, 16000)  # a rate pair seen above: its kernel is reused, not made again
    after = features._resampler.cache_info()
    assert (after.hits, after.misses) == (before.hits + 1, before.misses)

def test_fit_length_crops_and_zero_pads():
    x = torch.arange(10.0)
    assert torch.equal(fit_length(x, 4), x[:4])
    padded = fit_length(x, 12)
    assert padded.shape == (12,) and torch.equal(padded[:10], x) and padded[10:].abs().sum() == 0


def test_fill_length_repeats_a_short_sound_and_pads_a_clip_near_the_length():
    """A clip under half the length is one short sound: repeated, so that training crops of it are not
    silence; a longer one (ESC's shortest is 3.64 s of 5) is zero-padded as the ESC-50 release pads."""
    x = torch.arange(1.0, 4.0)  # 3 samples
    assert torch.equal(fill_length(x, 10), torch.tensor([1, 2, 3, 1, 2, 3, 1, 2, 3, 1.0]))
    assert torch.equal(fill_length(x[None].repeat(2, 1), 7)[1], torch.tensor([1, 2, 3, 1, 2, 3, 1.0]))  # any batch
    assert torch.equal(fill_length(x, 6), torch.tensor([1, 2, 3, 0, 0, 0.0]))  # half: padded
    assert torch.equal(fill_length(x, 2), x[:2]) and fill_length(torch.zeros(0), 4).tolist() == [0.0] * 4


def test_a_recording_is_read_at_its_loudest_and_a_clip_near_the_length_from_its_start():
    """Over 1.5 clip lengths: a person's recording, read where the sound is; ESC's 7.2 s clips of 5 s are read
    from their start, as the release does."""
    x = torch.zeros(2, 100)
    x[0, 60:70], x[1, 5:8] = 1.0, -2.0
    got = loudest_window(x, 20)
    assert got.shape == (2, 20) and got[0].abs().sum() == 10 and got[1].abs().sum() == 6  # each row its own
    assert torch.equal(loudest_window(x[0], 20), got[0])
    assert torch.equal(read_length(x, 50), loudest_window(x, 50)) and read_length(x, 50)[0].abs().sum() == 10
    assert torch.equal(read_length(x, 70), x[:, :70])  # 100 of 70: from its start (7 s of 5 is 1.4)
    assert torch.equal(read_length(x[:, :3], 10), fill_length(x[:, :3], 10))


def test_to_mono_keeps_the_loudest_channel():
    """Averaging would silence a channel pair out of phase and comb-filter a pair a little apart."""
    x = np.random.default_rng(0).standard_normal(1600).astype(np.float32)
    assert torch.equal(to_mono(np.stack([x, -x])), torch.from_numpy(x))  # the mean: zeros
    assert torch.equal(to_mono(np.stack([0.5 * x, np.roll(x, 16)])), torch.from_numpy(np.roll(x, 16)))
    assert torch.equal(to_mono(np.stack([0 * x, x, 0.9 * x])), torch.from_numpy(x))
    assert torch.equal(to_mono(x[None]), torch.from_numpy(x)) and torch.equal(to_mono(x), torch.from_numpy(x))


def test_waveform_crops_at_source_rate_before_resampling():
    prep = PrepConfig()
    long_clip = np.random.default_rng(0).standard_normal((2, 44100 * 7)).astype(np.float32)
    short_clip = long_clip[:, : 44100 * 3]
    assert waveform(long_clip, 44100, prep).shape == (80000,)
    out = waveform(short_clip, 44100, prep)
    assert out.shape == (80000,) and out[48500:].abs().max() == 0  # padded after 3 s
    assert waveform(long_clip, 44100, prep, crop=False).shape == (16000 * 7,)


def test_log_mel_is_torchaudio_without_librosa():
    """The Clips page's spectrogram: torchaudio's front end (no librosa, so no multi-second compile on first use),
    in dB below the loudest bin, one frame per 256 samples."""
    import subprocess
    import sys

    code = ("import sys, numpy as np; from audioclf.features import log_mel; "
            "m = log_mel(np.sin(np.arange(16000) * 0.3).astype('float32'), 16000); "
            "assert m.shape == (64, 16000 // 256 + 1), m.shape; assert m.max() == 0 and m.min() >= -80, m.min(); "
            "assert 'librosa' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])
