"""Prepare the shipped runs: smaller weights, re-evaluated, with a manifest.

    python tools/ship_reference.py --data ../shared/data/esc10 --esc50 ../shared/data/esc50

For the newest finished run of each shipped label in checkpoints/ (on ESC-10: the report's four models
at 100 epochs, the recipe's two at their own epochs, and the recipe taught from the ESC-50 run; on
ESC-50: the recipe's CNN, and it taught again with rooms and averaged with itself, the ESC-50 default): only
the evaluated weights ship (best.pt; final.pt is removed, to keep the store under 40 MB). ESC-10's are stored
in the smallest of int8 (a scale per output channel, `store.quantized`), float16 and float32 that leaves the
fold model's test-fold figures unchanged (`shrink`); ESC-50's in int8 (1.2 MB a fold model instead of 2.3). The fold models are then
re-evaluated so that results.json describes the weights as shipped, the recipe's get the int8 ranges of
the weights as shipped (`audioclf.int8`, for int8 prediction on a CPU), and checkpoints/REFERENCE.json
lists the run folders with a SHA-256 of every shipped file. tests/test_reference.py checks it all.

A run that REFERENCE.json already lists with every file unchanged is kept as it is (`--reship` shrinks and
re-evaluates it again): whether int8 or float16 leaves a fold's predictions unchanged can differ from one CPU to
another, so shipping a new run must not silently re-store the others.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audioclf import int8, store  # noqa: E402
from audioclf.data import open_dataset  # noqa: E402
from audioclf.evaluate import evaluate_run  # noqa: E402
from audioclf.prepare import prepare  # noqa: E402
from audioclf.inference import predict_logits  # noqa: E402
from audioclf.store import Run  # noqa: E402
from audioclf.teach import default_epochs  # noqa: E402

LABELS = ["cnn", "transformer-1h", "transformer-2h", "transformer-4h", "logmel-cnn", "logmel-transformer-2h",
          "logmel-cnn-taught"]
ESC50_LABELS = ["logmel-cnn", "logmel-cnn-taught"]  # any number of epochs (the newest finished run of each)



def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def shrink(run: Run, fold: int, which: str, x_test: torch.Tensor, y_test: torch.Tensor, prep) -> str:
    """Store a fold's weights in the smallest form whose test-fold figures are those of the weights as they are
    now: int8 where every prediction is the same; float16 where the fold's accuracy and the run's ensemble answers
    are (float16's rounding can move a near-tie between two wrong classes: so for logmel-cnn's fold 3 and the
    report CNN's, 2.4 and 1.1 MB less, 2026-11-29, to make room for the ESC-50 default); else as they are."""
    ckpt = store.load_torch(run.weights_file(fold, which))
    storage = ckpt.get("storage", "float32")
    smaller = {"float32": [("int8", store.quantized), ("float16", store.halved)],
               "float16": [("int8", store.quantized)]}.get(storage, [])
    if not smaller:
        return storage
    probs = lambda c: predict_logits(store.model_from_checkpoint(c), x_test, prep).softmax(1)  # noqa: E731
    now = probs(ckpt)
    others = [probs(store.load_torch(run.weights_file(f, which))) for f in run.config.cv_folds if f != fold]
    ensemble = lambda p: torch.stack([p, *others]).mean(0).argmax(1)  # noqa: E731
    right = lambda p: int((p.argmax(1) == y_test).sum())  # noqa: E731
    for name, make in smaller:
        candidate = make(ckpt)
        p = probs(candidate)
        if torch.equal(p.argmax(1), now.argmax(1)) or (
                name == "float16" and right(p) == right(now) and torch.equal(ensemble(p), ensemble(now))):
            run.save_weights(fold, which, candidate)
            return name
    return storage


def shipped_files(run: Run) -> list[Path]:
    """What ships of a run: its config and results, and per fold the evaluated weights (with their
    checksum) and the history."""
    files = [run.config_file, run.results_file]
    for fold in run.config.cv_folds:
        w = run.weights_file(fold, "best")
        files += [w, store.checksum_file(w), run.history_file(fold)]
        if run.ranges_file(fold).is_file():
            files += [run.ranges_file(fold), store.checksum_file(run.ranges_file(fold))]
    return files


def unchanged(run: Run, entry: dict | None) -> bool:
    """Whether `entry` (a REFERENCE.json run) lists this run folder and every file it names hashes as listed."""
    files = (entry or {}).get("files")
    if not files or entry.get("folder") != run.name:
        return False
    return all((run.path / f).is_file() and sha256(run.path / f) == h for f, h in files.items())


def drop_final(run: Run, fold: int) -> None:
    path = run.weights_file(fold, "final")
    path.unlink(missing_ok=True)
    store.checksum_file(path).unlink(missing_ok=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "esc10")
    ap.add_argument("--esc50", type=Path, default=ROOT.parent / "shared" / "data" / "esc50")
    ap.add_argument("--checkpoints", type=Path, default=ROOT / "checkpoints")
    ap.add_argument("--reship", action="store_true", help="shrink and re-evaluate runs already shipped unchanged too")
    args = ap.parse_args()
    before = store.read_json(args.checkpoints / "REFERENCE.json", {})
    esc10, esc50 = open_dataset(args.data, "esc10"), open_dataset(args.esc50, "esc50")
    manifest = {"command": "python tools/ship_reference.py", "dataset_id": esc10.fingerprint(),
                "datasets": {"esc10": esc10.fingerprint(), "esc50": esc50.fingerprint()}, "runs": {}}
    for run in store.list_runs(args.checkpoints):  # newest first
        cfg = run.config
        if cfg.dataset_id == esc10.fingerprint() and cfg.label in LABELS and cfg.epochs == default_epochs(cfg):
            dataset, key = esc10, cfg.label
        elif cfg.dataset_id == esc50.fingerprint() and cfg.label in ESC50_LABELS:
            dataset, key = esc50, f"esc50/{cfg.label}"
        else:
            continue
        if key in manifest["runs"]:
            continue
        if not all(run.fold_complete(f) for f in cfg.cv_folds):
            print(f"skipping {run.name}: not all folds are finished")
            continue
        if not args.reship and unchanged(run, before.get("runs", {}).get(key)):
            manifest["runs"][key] = before["runs"][key]
            print(f"{run.name}: already shipped, unchanged; kept as it is")
            continue
        prepared = prepare(dataset, cfg.prep)
        x_test, y_test = prepared.subset([cfg.test_fold])
        storage = {}
        for fold in cfg.cv_folds:
            drop_final(run, fold)
            storage[fold] = shrink(run, fold, "best", x_test, y_test, cfg.prep) if dataset is esc10 else quantize(run, fold)
            int8.calibrate(run, fold, prepared.subset([f for f in cfg.cv_folds if f != fold])[0])
        results = evaluate_run(cfg, prepared, root=args.checkpoints)
        files = sorted(shipped_files(run))
        manifest["runs"][key] = {
            "folder": run.name, "best_storage": storage, "dataset_id": cfg.dataset_id,
            "test_accuracy": results["summary"]["accuracy"]["values"],
            "files": {p.relative_to(run.path).as_posix(): sha256(p) for p in files}}
        print(f"{run.name}: best.pt storage {storage}; test accuracy per fold "
              f"{[round(a, 4) for a in results['summary']['accuracy']['values']]}")
    store.write_json(args.checkpoints / "REFERENCE.json", manifest)
    total = sum((args.checkpoints / r["folder"] / f).stat().st_size
                for r in manifest["runs"].values() for f in r["files"])
    print(f"{len(manifest['runs'])} runs, {total / 2**20:.1f} MB; add them with:")
    print("git add -f checkpoints/REFERENCE.json " + " ".join(
        f"checkpoints/{r['folder']}/{f}" for r in manifest["runs"].values() for f in r["files"]))


def quantize(run: Run, fold: int) -> str:
    ckpt = store.load_torch(run.weights_file(fold, "best"))
    if ckpt.get("storage") != "int8":
        run.save_weights(fold, "best", store.quantized(ckpt))
    return "int8"


if __name__ == "__main__":
    main()
