"""A long recording with one sound in it: how should its windows' answers be combined?

    python bench/long.py --run checkpoints/logmel-cnn-taught-5904b43a2828 --data ../shared/data/esc10
    python bench/long.py --run checkpoints/logmel-cnn-6056d43aff54 --data ../shared/data/esc50 --subset esc50

A recording of `--seconds` (20) is made of a quiet background with one clip placed at a random time:
pink noise 30 dB below the clip, or another ESC-50 clip of another class (from the same fold) 20 or 10 dB
below it; and, as a check that what helps there does no harm to one sound that goes on, four clips of
the clip's class (same fold, drawn with replacement) in a row. It is classified through `audioclf.inference.predict_audio` (5 s windows every 2.5 s), and
the windows' probabilities are combined in several ways. The recipe's front end scales each window to
its own peak, so a window of background alone looks as loud to the model as the sound does; weighting
windows by their energy is the fix this measures. Each fold model hears its own validation fold (never
trained on), so the table may be used to choose; the test fold is reported through the ensemble.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audioclf.data import open_dataset  # noqa: E402
from audioclf.inference import FoldEnsemble, load_ensemble, predict_audio  # noqa: E402
from audioclf.prepare import prepare  # noqa: E402
from audioclf.store import Run  # noqa: E402
from bench import record, run_parser  # noqa: E402


def pink(n: int, rng: np.random.Generator) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    spec /= np.sqrt(np.maximum(np.arange(len(spec)), 1))
    return np.fft.irfft(spec, n).astype(np.float32)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))) + 1e-9)


def recording(clip: np.ndarray, background: np.ndarray, below_db: float, seconds: float, sr: int,
              rng: np.random.Generator) -> np.ndarray:
    n = int(seconds * sr)
    out = np.resize(background, n) * (rms(clip) / rms(background) * 10 ** (-below_db / 20))
    at = int(rng.integers(0, n - len(clip) + 1))
    out[at:at + len(clip)] += clip
    return out.astype(np.float32)


def window_energy(wave: np.ndarray, starts: list[float], clip_s: float, sr: int) -> np.ndarray:
    return np.array([np.mean(np.square(wave[int(s * sr): int((s + clip_s) * sr)], dtype=np.float64)) for s in starts])


def combine(per_window: np.ndarray, energy: np.ndarray) -> dict[str, np.ndarray]:
    """(W, C) window probabilities -> one (C,) answer per way of combining them."""
    return {"mean of all windows": per_window.mean(0),
            "weighted by energy": (per_window * (energy / energy.sum())[:, None]).sum(0),
            "weighted by rms": (per_window * (np.sqrt(energy) / np.sqrt(energy).sum())[:, None]).sum(0),
            "loudest window": per_window[int(np.argmax(energy))],
            **{f"mean within {db} dB of the loudest": per_window[energy >= energy.max() * 10 ** (-db / 10)].mean(0)
               for db in (3, 6, 10)},
            "most confident window": per_window[int(np.argmax(per_window.max(1)))]}


def judge(ens, wave: np.ndarray, sr: int) -> dict[str, np.ndarray]:
    res = predict_audio(ens, wave[None], sr)
    if "over_time" not in res:
        return combine(res["ensemble"][None], np.ones(1))
    t = res["over_time"]
    return combine(t["ensemble"], window_energy(wave, t["start_s"], t["clip_s"], sr))


def main() -> None:
    ap = run_parser("long")
    ap.add_argument("--esc50", type=Path, default=ROOT.parent / "shared" / "data" / "esc50")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--per-fold", type=int, help="only this many clips of each fold (drawn at random, seed 0)")
    args = ap.parse_args()
    run = Run(args.run)
    config, sr = run.config, run.config.prep.sample_rate
    prepared = prepare(open_dataset(args.data, args.subset), config.prep)
    others = prepare(open_dataset(args.esc50, "esc50"), config.prep)
    full = load_ensemble(run.path, precision="fp32")
    backgrounds = {"pink noise, 30 dB below": 30.0, "another sound, 20 dB below": 20.0,
                   "another sound, 10 dB below": 10.0}
    table: dict[str, dict] = {}
    for split in ("validation", "test"):
        right: dict[str, dict[str, list[bool]]] = {}
        rng = np.random.default_rng(0)
        for fold in config.cv_folds:
            if split == "validation":
                i = config.cv_folds.index(fold)
                ens = FoldEnsemble(config, full.classes_, (fold,), (full.models[i],), "fp32")
                x, y = prepared.subset([fold])
                pool_fold = fold
            elif fold == config.cv_folds[0]:
                ens, (x, y), pool_fold = full, prepared.subset([config.test_fold]), config.test_fold
            else:
                continue
            names = [others.classes[int(c)] for c in others.labels]
            pool = [j for j in range(len(others.labels)) if int(others.folds[j]) == pool_fold]
            if args.per_fold and args.per_fold < len(y):
                keep = np.sort(np.random.default_rng(fold).choice(len(y), args.per_fold, replace=False))
                x, y = x[keep], y[keep]
            for clip, label in zip(x.numpy(), y.tolist()):
                same = [j for j in range(len(y)) if int(y[j]) == label]
                run_of = np.concatenate([x[int(j)].numpy() for j in rng.choice(same, 4)])  # one sound going on
                answers = judge(ens, run_of, sr)
                for way, p in answers.items():
                    right.setdefault("4 clips of the class in a row", {}).setdefault(way, []).append(
                        int(np.argmax(p)) == label)
                for name, below in backgrounds.items():
                    if name.startswith("pink"):
                        bg = pink(int(args.seconds * sr), rng)
                    else:
                        j = pool[int(rng.integers(len(pool)))]
                        while names[j] == prepared.classes[label]:
                            j = pool[int(rng.integers(len(pool)))]
                        bg = others.waves[j].numpy()
                    answers = judge(ens, recording(clip, bg, below, args.seconds, sr, rng), sr)
                    for way, p in answers.items():
                        right.setdefault(name, {}).setdefault(way, []).append(int(np.argmax(p)) == label)
        table[split] = {b: {w: float(np.mean(v)) for w, v in ways.items()} for b, ways in right.items()}
        for b, ways in table[split].items():
            print(split, b, "  ".join(f"{w}: {100 * a:.1f}" for w, a in ways.items()), flush=True)
    record(args.out, run.path.name, table)


if __name__ == "__main__":
    main()
