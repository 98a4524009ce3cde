"""Variants of the ESC-50 recipe, 4 fold models x 100 epochs each, on one GPU: which trains better fold models?

    python bench/recipe_search.py --data ../shared/data/esc50 --out bench/recipe_search.json   # a CUDA GPU
    python bench/recipe_search.py --data ../shared/data/esc50 --device cpu --epochs 1 --clips-per-fold 8  # smoke

Each stage trains two configs side by side (8 fold models, `train.train_at_once`) with audioclf's own trainer,
the trainer of `python -m audioclf train --folds-at-once`. The choice is made on the validation folds alone
(each fold model's best epoch, as `train` keeps it); fold 1's test accuracy, per fold model and for the
ensemble of the four, is written beside it for the record and never read by the rule. The rule, set before the
first run: a variant replaces the recipe if its mean validation accuracy over 2 seeds x 4 folds is at least
0.75 points above the recipe's, and above it in each seed.

The JSON is rewritten after every stage, so a run cut short keeps what it finished. `--keep DIR`: after every
stage, the run the rule would ship so far (the adopted variant's seed with the better validation) is written
there as adopted.tar, its best weights only (what `checkpoints/` ships). Needs torch alone, and soundfile to
decode the clips (no librosa, scikit-learn or streamlit), so it runs on the lent GPU machines.

Getting the clips there (2026-11-27): ESC-50's 170 MB of FLAC exceed one call's 64 MB, so they went in three
ignored folders of 57 MB (`.gpudata/c0`..`c2`, the soundfile wheels in `.whl` with the first), one call each to the
same warm machine, each copying its part to /tmp/esc50; `checkpoints/` was taken out of the index for those calls
(`git rm -r --cached checkpoints`, then `git reset -- checkpoints`) so that it did not travel.
"""
from __future__ import annotations

import argparse
import json
import sys
import tarfile
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audioclf.config import TrainConfig  # noqa: E402
from audioclf.data import open_dataset  # noqa: E402
from audioclf.inference import predict_logits  # noqa: E402
from audioclf.prepare import Prepared, build  # noqa: E402
from audioclf.store import Run, checksum_file  # noqa: E402
from audioclf.train import train_at_once  # noqa: E402

BASE = TrainConfig(model="logmel-cnn", epochs=100)
VARIANTS = {  # name: the recipe's settings it changes
    "recipe": {},
    "ema-0.998": {"ema": 0.998},
    "ema-0.999": {"ema": 0.999},
    "label-smoothing-0.1": {"label_smoothing": 0.1},
}
# Two configs a stage, the recipe and its likeliest rival first, so a cut-short session still compares them.
STAGES = [("recipe", "ema-0.998", 0), ("recipe", "ema-0.998", 1),
          ("ema-0.999", "label-smoothing-0.1", 0), ("ema-0.999", "label-smoothing-0.1", 1)]


def config_of(name: str, seed: int, dataset_id: str, epochs: int) -> TrainConfig:
    return replace(BASE, seed=seed, dataset_id=dataset_id, epochs=epochs, **VARIANTS[name])


def scores(run: Run, prepared: Prepared, device: torch.device) -> dict:
    """Each fold model's best validation accuracy and epoch; fold 1's test accuracy per fold model and for the
    ensemble (mean of the four models' probabilities), computed here with torch alone."""
    config = run.config
    x_test, y_test = prepared.subset([config.test_fold])
    folds, probs = {}, []
    for fold in config.cv_folds:
        fm = run.fold_model(fold, device=device)
        p = predict_logits(fm.model, x_test, config.prep, batch_size=256).softmax(1)
        probs.append(p)
        folds[fold] = {"val_acc": fm.meta["val_acc"], "epoch": fm.epoch,
                       "test_acc": (p.argmax(1) == y_test).float().mean().item()}
    ensemble = (torch.stack(probs).mean(0).argmax(1) == y_test).float().mean().item()
    val = [f["val_acc"] for f in folds.values()]
    return {"run": run.name, "folds": folds, "val_acc_mean": sum(val) / len(val),
            "test_acc_mean": sum(f["test_acc"] for f in folds.values()) / len(folds), "test_acc_ensemble": ensemble}


def verdict(results: dict) -> dict:
    """The rule of the module's docstring, over the stages finished so far."""
    by = {}
    for r in results["stages"]:
        for name, s in r["runs"].items():
            by.setdefault(name, {})[r["seed"]] = s["val_acc_mean"]
    base = by.get("recipe", {})
    out = {}
    for name, seeds in by.items():
        common = sorted(set(seeds) & set(base))
        if name == "recipe" or not common:
            continue
        gain = [seeds[s] - base[s] for s in common]
        out[name] = {"seeds": common, "val_gain_points": 100 * sum(gain) / len(gain),
                     "adopt": len(common) >= 2 and 100 * sum(gain) / len(gain) >= 0.75 and min(gain) > 0}
    return out


def keep_adopted(results: dict, root: Path, tar_path: Path) -> None:
    adopted = [(v["val_gain_points"], name) for name, v in results["verdict"].items() if v["adopt"]]
    if not adopted:
        return
    name = max(adopted)[1]
    runs = [r["runs"][name] for r in results["stages"] if name in r["runs"]]
    run = Run(root / max(runs, key=lambda s: s["val_acc_mean"])["run"])
    tar_path.parent.mkdir(parents=True, exist_ok=True)
    files = [run.config_file]
    for fold in run.config.cv_folds:
        files += [run.weights_file(fold), checksum_file(run.weights_file(fold)), run.history_file(fold)]
    with tarfile.open(tar_path, "w") as tar:
        for f in files:
            tar.add(f, arcname=f"{run.name}/{f.relative_to(run.path)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="ESC-50 folder (audio/, meta/esc50.csv)")
    ap.add_argument("--out", type=Path, required=True, help="the JSON to write")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--clips-per-fold", type=int, help="a smoke test on fewer clips")
    ap.add_argument("--stages", type=int, default=len(STAGES))
    ap.add_argument("--keep", type=Path, help="copy each run folder here as RUN.tar")
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA GPU: skipped")
        return
    t0 = time.time()
    dataset = open_dataset(args.data, "esc50")
    prepared = build(dataset, BASE.prep)
    if args.clips_per_fold:
        keep = torch.cat([torch.nonzero(prepared.folds == f).flatten()[:args.clips_per_fold]
                          for f in sorted(set(prepared.folds.tolist()))])
        prepared = Prepared(prepared.waves[keep], prepared.labels[keep], prepared.folds[keep], prepared.classes,
                            tuple(prepared.names[i] for i in keep.tolist()))
    results = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
               "torch": torch.__version__, "epochs": args.epochs, "variants": VARIANTS,
               "prepare_s": time.time() - t0, "stages": []}
    root = Path(tempfile.mkdtemp(prefix="recipe_search_"))
    for a, b, seed in STAGES[:args.stages]:
        configs = {name: config_of(name, seed, dataset.fingerprint(), args.epochs) for name in (a, b)}
        for c in configs.values():
            Run.of(c, root).write_config(c)
        t = time.time()
        train_at_once([(c, f) for c in configs.values() for f in c.cv_folds], prepared, device, root)
        stage = {"seed": seed, "train_s": time.time() - t,
                 "runs": {name: scores(Run.of(c, root), prepared, device) for name, c in configs.items()}}
        results["stages"].append(stage)
        results["verdict"] = verdict(results)
        args.out.write_text(json.dumps(results, indent=1))
        print(json.dumps({k: v for k, v in stage.items() if k != "runs"}),
              {n: (round(s["val_acc_mean"], 4), round(s["test_acc_ensemble"], 4)) for n, s in stage["runs"].items()},
              flush=True)
        if args.keep:
            keep_adopted(results, root, args.keep / "adopted.tar")
    print(json.dumps(results.get("verdict"), indent=1))


if __name__ == "__main__":
    main()
