"""How much the answer changes when a test clip is recorded differently (docs/results.md).

    python bench/robustness.py --run checkpoints/<run> [--run ...] [--data ../shared/data/esc10]
                               [--esc50 ../shared/data/esc50] [--precision fp32]

Each fold-1 (test) clip of the run's data, decoded from its file, is altered and classified end to end
through `audioclf.inference.predict_audio` (the path the CLI and the app take) with the run's fold
ensemble. Conditions: as is; 26 dB quieter; through 8 kHz (down and back up); through a telephone's
band (300-3400 Hz, biquad high- and low-pass, as a phone's microphone path cuts it); an MP3 round trip
(libsndfile's encoder, default quality); what phones and browsers save, through FFmpeg's encoders (PyAV)
and decoded as an upload is: m4a (AAC, 64 kbit/s, a voice memo), webm (Opus, 32 kbit/s at 48 kHz, a
browser's recording) and AMR-NB (12.2 kbit/s at 8 kHz, a phone call's codec); overdriven (its peak
raised 10 or 20 dB over full scale and clipped, as a phone's input saturates on a loud sound close by);
heard in a room or a hall (`reverberant`: a synthetic room response, reverberation time 0.4 or 1.2 s);
only 0.5, 1 or 2 s of it (from 1.5 s in); wind on the microphone (`wind_noise`: brown noise, at 10 and 0 dB
SNR); and with another ESC-50 sound (a class the ESC-10 models do not
know) mixed in underneath at 10 and 0 dB SNR; as stereo whose second channel is the first inverted (a
miswired microphone) or 1 ms late (two microphones 34 cm apart). Only reported: nothing here is used to
choose anything. Each run's row in bench/robustness.json is named by the run and what it computed in (entries
from before 2026-11-29 by the run alone: bf16, on a CPU with AMX).
"""
from __future__ import annotations

import argparse
import functools
import io
import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audioclf.audio import encode, load_audio  # noqa: E402
from audioclf.data import open_dataset  # noqa: E402
from audioclf.features import resample, to_mono  # noqa: E402
from audioclf.inference import load_ensemble, predict_audio  # noqa: E402
from audioclf.store import Run  # noqa: E402


def mp3_round_trip(mono: np.ndarray, sr: int) -> tuple[np.ndarray, int]:
    buf = io.BytesIO()
    sf.write(buf, mono, sr, format="MP3")
    buf.seek(0)
    data, rate = sf.read(buf, dtype="float32")
    return data, rate


def codec_round_trip(mono: np.ndarray, sr: int, kind: str, rate: int, bitrate: int) -> tuple[np.ndarray, int]:
    """Encoded as `kind` at `rate` (resampled to it first where the codec needs it), decoded as an upload is."""
    wave = mono if rate == sr else resample(torch.from_numpy(mono), sr, rate).numpy()
    data, got = load_audio(encode(wave[None], rate, kind, bitrate), name=f"clip.{kind}")
    return to_mono(data).numpy(), got


def overdriven(mono: np.ndarray, db: float) -> np.ndarray:
    """Peak raised `db` over full scale, then hard-clipped to [-1, 1]."""
    return np.clip(mono / (np.abs(mono).max() + 1e-9) * 10 ** (db / 20), -1.0, 1.0)


def reverberant(mono: np.ndarray, sr: int, rt60: float, seed: int = 0) -> np.ndarray:
    """Heard in a room: convolved with a synthetic room response (the direct sound, then noise decaying 60 dB
    over `rt60` seconds, as loud as the direct sound in all), at the clip's own level. One room for every clip."""
    wet = AF.fftconvolve(torch.from_numpy(mono), room_response(sr, rt60, seed))[:len(mono)].numpy()
    return wet * np.sqrt(np.mean(mono ** 2) / (np.mean(wet ** 2) + 1e-12))


@functools.lru_cache(maxsize=8)
def room_response(sr: int, rt60: float, seed: int = 0) -> torch.Tensor:
    """`reverberant`'s room, made once per (rate, time, seed) rather than once per clip."""
    t = np.arange(int(rt60 * sr)) / sr
    tail = np.random.default_rng(seed).standard_normal(len(t)) * np.exp(-6.9 * t / rt60)
    rir = tail / np.sqrt(np.sum(tail ** 2))
    rir[0] += 1.0
    return torch.from_numpy(rir.astype(np.float32))


@functools.lru_cache(maxsize=8)
def wind_noise(n: int, sr: int, seed: int = 0) -> np.ndarray:
    """Wind on a microphone, roughly: brown noise (integrated white noise, its power falling 6 dB per octave),
    high-passed at 20 Hz and scaled to RMS 1. One gust for every clip of the same length."""
    brown = np.cumsum(np.random.default_rng(seed).standard_normal(n))
    brown = AF.highpass_biquad(torch.from_numpy(brown - brown.mean()).float(), sr, 20.0).numpy()
    return brown / (np.sqrt(np.mean(brown ** 2)) + 1e-12)


def windy(mono: np.ndarray, sr: int, snr_db: float) -> np.ndarray:
    return mono + wind_noise(len(mono), sr) * np.sqrt(np.mean(mono ** 2)) * 10 ** (-snr_db / 20)


def with_background(mono: np.ndarray, sr: int, other: np.ndarray, snr_db: float) -> np.ndarray:
    other = np.resize(other, len(mono))
    rms = lambda x: np.sqrt(np.mean(x ** 2)) + 1e-8  # noqa: E731
    return mono + other * rms(mono) / rms(other) * 10 ** (-snr_db / 20)


def conditions(mono: np.ndarray, sr: int, other: np.ndarray) -> dict[str, tuple[np.ndarray, int]]:
    via8k = resample(resample(torch.from_numpy(mono), sr, 8000), 8000, sr).numpy()
    start = int(1.5 * sr)
    t = torch.from_numpy(mono)
    phone = AF.lowpass_biquad(AF.highpass_biquad(t, sr, 300.0), sr, 3400.0).numpy()
    return {"as is": (mono, sr), "-26 dB": (mono * 0.05, sr), "via 8 kHz": (via8k, sr), "phone band": (phone, sr),
            "MP3": mp3_round_trip(mono, sr),
            "m4a (AAC 64k)": codec_round_trip(mono, sr, "m4a", sr, 64_000),
            "webm (Opus 32k)": codec_round_trip(mono, sr, "webm", 48000, 32_000),
            "AMR-NB (8 kHz, 12.2k)": codec_round_trip(mono, sr, "amr", 8000, 12_200),
            "clipped, 10 dB over": (overdriven(mono, 10), sr), "clipped, 20 dB over": (overdriven(mono, 20), sr),
            "room, RT60 0.4 s": (reverberant(mono, sr, 0.4), sr), "hall, RT60 1.2 s": (reverberant(mono, sr, 1.2), sr),
            "0.5 s": (mono[start:start + sr // 2], sr),
            "1 s": (mono[start:start + sr], sr), "2 s": (mono[start:start + 2 * sr], sr),
            "wind, 10 dB SNR": (windy(mono, sr, 10), sr), "wind, 0 dB SNR": (windy(mono, sr, 0), sr),
            "+ other sound, 10 dB SNR": (with_background(mono, sr, other, 10), sr),
            "+ other sound, 0 dB SNR": (with_background(mono, sr, other, 0), sr),
            "stereo, one channel inverted": (np.stack([mono, -mono]), sr),
            "stereo, one channel 1 ms late": (np.stack([mono, np.roll(mono, round(sr / 1000))]), sr)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, action="append", required=True)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "esc10")
    ap.add_argument("--esc50", type=Path, default=ROOT.parent / "shared" / "data" / "esc50")
    ap.add_argument("--precision", choices=["auto", "fp32"], default="auto",
                    help="as `predict --precision`: auto is what the CLI and the app use on this machine")
    args = ap.parse_args()
    ds = open_dataset(args.data, "esc10")
    esc50 = open_dataset(args.esc50, "esc50")
    unknown = [c for c in esc50.clips if esc50.classes[c.label] not in ds.classes and c.fold == 1]
    table = {}
    for run_path in args.run:
        rng = np.random.default_rng(0)  # per run: every run hears the same sounds underneath
        run = Run(run_path)
        ens = load_ensemble(run.path, precision=args.precision)
        test = [c for c in ds.clips if c.fold == run.config.test_fold]
        right: dict[str, list[bool]] = {}
        for i, clip in enumerate(test):
            data, sr = load_audio(clip.path)
            mono = to_mono(data).numpy()
            other = to_mono(load_audio(unknown[int(rng.integers(len(unknown)))].path)[0]).numpy()
            other = resample(torch.from_numpy(other), 16000, sr).numpy()
            for name, (wave, rate) in conditions(mono, sr, other).items():
                res = predict_audio(ens, (wave if wave.ndim == 2 else wave[None]).astype(np.float32), rate)
                right.setdefault(name, []).append(ens.classes_[int(np.argmax(res["ensemble"]))] == ds.classes[clip.label])
        key = f"{run.name} ({ens.arithmetic})"  # the same run may answer a little differently in bf16 or int8
        table[key] = {k: float(np.mean(v)) for k, v in right.items()}
        print(key, json.dumps(table[key]))
    names = list(next(iter(table.values())))
    print("\n| condition | " + " | ".join(table) + " |")
    print("|---|" + "---|" * len(table))
    for n in names:
        print(f"| {n} | " + " | ".join(f"{100 * table[r][n]:.1f} %" for r in table) + " |")
    out = ROOT / "bench" / "robustness.json"
    earlier = json.loads(out.read_text()) if out.is_file() else {}
    out.write_text(json.dumps({**earlier, **table}, indent=1))  # runs measured before keep their entries


if __name__ == "__main__":
    main()
