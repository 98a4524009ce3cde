"""Measurements with their own commands (never part of the test suite); results go to bench/*.json and docs/."""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path


def run_parser(name: str, hide_test: bool = False) -> argparse.ArgumentParser:
    """The arguments of a bench that measures one run on its dataset: --run, --data, --subset, and --out
    (default bench/<name>.json), and --hide-test where the bench honours it (`measure_ways` does); a bench
    adds its own."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--subset", default="esc10")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / f"{name}.json")
    if hide_test:
        ap.add_argument("--hide-test", action="store_true",
                        help="print and record the validation figures only (choose a recipe without seeing fold 1)")
    return ap


def fold_models_and_data(run_path: Path, data: Path, subset: str):
    """A run, its dataset prepared as it trained on it, and its best fold models on the CPU."""
    from audioclf.data import open_dataset
    from audioclf.prepare import prepare
    from audioclf.store import Run

    run = Run(run_path)
    prepared = prepare(open_dataset(data, subset), run.config.prep)
    return run, prepared, {f: run.fold_model(f, "best", "cpu").model for f in run.config.cv_folds}


def validation_and_test(models: dict, prepared, test_fold: int, prep, alter, test: bool = True) -> dict[str, float]:
    """Each fold model on its own validation fold, and (unless `test` is False) the fold models' ensemble on the
    test fold, with `alter` applied to the waves (N, samples) first: what a bench may choose by, and what it only
    reports."""
    import torch

    from audioclf.inference import predict_logits

    right = total = 0
    for fold, model in models.items():
        x, y = prepared.subset([fold])
        right += int((predict_logits(model, alter(x), prep).argmax(1) == y).sum())
        total += len(y)
    figures = {"validation": right / total}
    if test:
        x_test, y_test = prepared.subset([test_fold])
        probs = torch.stack([predict_logits(m, alter(x_test), prep).softmax(1) for m in models.values()]).mean(0)
        figures["test_ensemble"] = float((probs.argmax(1) == y_test).float().mean())
    return figures


def under_noise(waves, snr_db: float, noise_of):
    """Clips (N, samples) with noise_of(samples, i), a numpy array of RMS 1, added to clip i at `snr_db` against
    the clip's own level: each clip its own noise, the same in every run when noise_of seeds by i."""
    import numpy as np
    import torch

    out = []
    for i, w in enumerate(waves.numpy()):
        level = np.sqrt(np.mean(w ** 2)) * 10 ** (-snr_db / 20)
        out.append(torch.from_numpy((w + noise_of(len(w), i) * level).astype(w.dtype)))
    return torch.stack(out)


def command_line(argv: list[str] | None = None) -> str:
    """How this bench was started, quoted so that it can be pasted back into a shell (an argument with a
    space or a comma, e.g. a --label, stays one argument)."""
    args = sys.argv[1:] if argv is None else argv
    return "python " + shlex.join(["bench/" + Path(sys.argv[0]).name, *args])


def record(out: Path, key: str, entry: dict) -> None:
    """Merge {key: entry, with the command that made it} into the JSON file `out`, keeping its other keys:
    one file per bench, one entry per run measured."""
    results = json.loads(out.read_text()) if out.is_file() else {}
    results[key] = {"command": command_line(), **entry}
    out.write_text(json.dumps(results, indent=1) + "\n")


def measure_ways(name: str, ways: dict, args: argparse.Namespace | None = None) -> None:
    """The main of a bench that hears one run's clips altered in several ways (`ways`: name -> None for as is,
    or a function (waves (N, samples), PrepConfig) -> waves): validation and test ensemble per way, printed
    and recorded in bench/<name>.json (`args`: those of `run_parser`, parsed here if not given)."""
    args = args or run_parser(name, hide_test=True).parse_args()
    run, prepared, models = fold_models_and_data(args.run, args.data, args.subset)
    config = run.config
    table: dict[str, dict] = {}
    for way, change in ways.items():
        alter = (lambda w: w) if change is None else (lambda w, change=change: change(w, config.prep))
        table[way] = validation_and_test(models, prepared, config.test_fold, config.prep, alter,
                                         test=not args.hide_test)
        print(f"{way:22s} " + "  ".join(f"{k.replace('_', ' ')} {100 * v:5.1f} %" for k, v in table[way].items()),
              flush=True)
    record(args.out, run.path.name, {"ways": table})
