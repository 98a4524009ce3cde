"""Why wind at 0 dB SNR costs the default so much: where its answers go, and which part of the wind does it.

    python bench/wind_why.py --run checkpoints/logmel-cnn-taught-5904b43a2828 --data ../shared/data/esc10

Each fold model hears its own validation fold's clips with wind over them at 0 dB SNR (`bench.wind.in_wind`):
the whole wind; the same gust high-passed at 150 or 300 Hz (a second-order filter); and the whole wind with
the front end's level reference (each window's peak) taken above the lowest mel bands only. Then, for the whole
wind, how often each class is right and how often it is the answer. Validation folds only.
"""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import torch
import torchaudio.functional as AF

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import fold_models_and_data, record, run_parser  # noqa: E402
from bench.wind import in_wind  # noqa: E402

SKIP_BANDS = 8  # mel bands left out of the level reference: below about 460 Hz at 64 bands from 50 Hz


def wind_above(waves: torch.Tensor, sr: int, hz: float) -> torch.Tensor:
    """The clips with their 0 dB gust high-passed at `hz` (a biquad: 12 dB an octave below it)."""
    return waves + AF.highpass_biquad(in_wind(waves, sr, 0.0) - waves, sr, hz)


def peak_above_low_bands(power: torch.Tensor, top_db: float = 80.0) -> torch.Tensor:
    """`frontend.relative_db` with the peak taken over the bands above the lowest SKIP_BANDS (capped at 0 dB)."""
    x = 10.0 * torch.log10(power.clamp_min(1e-10))
    return (x - x[..., SKIP_BANDS:, :].amax(dim=(-2, -1), keepdim=True)).clamp(-top_db, 0.0)


def answers(models: dict, prepared, prep, alter) -> tuple[float, dict[str, dict[str, int]]]:
    """Validation accuracy over the fold models, and per class: right, and times given as the answer."""
    from audioclf.inference import predict_logits

    right, total, said = Counter(), Counter(), Counter()
    for fold, model in models.items():
        x, y = prepared.subset([fold])
        for truth, guess in zip(y.tolist(), predict_logits(model, alter(x), prep).argmax(1).tolist()):
            total[truth] += 1
            right[truth] += truth == guess
            said[guess] += 1
    per_class = {prepared.classes[c]: {"right": right[c], "of": total[c], "answered": said[c]} for c in sorted(total)}
    return sum(right.values()) / sum(total.values()), per_class


def main() -> None:
    from audioclf import frontend

    args = run_parser("wind_why").parse_args()
    run, prepared, models = fold_models_and_data(args.run, args.data, args.subset)
    prep, sr = run.config.prep, run.config.prep.sample_rate
    ways = {"wind 0 dB": lambda w: in_wind(w, sr, 0.0),
            "wind 0 dB, high-passed at 150 Hz": lambda w: wind_above(w, sr, 150.0),
            "wind 0 dB, high-passed at 300 Hz": lambda w: wind_above(w, sr, 300.0)}
    table = {way: answers(models, prepared, prep, alter)[0] for way, alter in ways.items()}
    original = frontend.relative_db
    frontend.relative_db = peak_above_low_bands
    try:
        table[f"wind 0 dB, level reference above the {SKIP_BANDS} lowest mel bands"] = \
            answers(models, prepared, prep, ways["wind 0 dB"])[0]
        table[f"as is, level reference above the {SKIP_BANDS} lowest mel bands"] = \
            answers(models, prepared, prep, lambda w: w)[0]
    finally:
        frontend.relative_db = original
    for way, acc in table.items():
        print(f"{way:60s} validation {100 * acc:5.1f} %", flush=True)
    _, per_class = answers(models, prepared, prep, ways["wind 0 dB"])
    for name, c in per_class.items():
        print(f"{name:16s} right {c['right']:3d} of {c['of']}, the answer {c['answered']:3d} times")
    record(args.out, run.path.name, {"validation": table, "wind 0 dB, per class": per_class})


if __name__ == "__main__":
    main()
