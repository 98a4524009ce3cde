"""Trained runs as rows, tables and curves: what the app's Overview, Train and Compare pages show.

Everything here reads the run folders (see `audioclf.store`) and returns plain lists and dicts.
"""
from __future__ import annotations

import math
from pathlib import Path

from . import store
from .config import TrainConfig
from .report import fold_rows


def results(run: Path) -> dict | None:
    """The run's results.json, or None before the first evaluation."""
    return store.read_json(run / "results.json")


def histories(run: Path, config: TrainConfig | None = None) -> dict[int, list[dict]]:
    """Per validation fold, its per-epoch history so far (folds without one are left out)."""
    config = config or store.load_config(run)
    out = {}
    for fold in config.cv_folds:
        h = store.read_json(run / f"fold{fold}" / "history.json")
        if h:
            out[fold] = h
    return out


def folds_done(run: Path, config: TrainConfig | None = None) -> list[int]:
    config = config or store.load_config(run)
    return [f for f in config.cv_folds if store.fold_complete(config, f, run.parent)]


def mean_pm(summary: dict | None, digits: int = 3) -> str:
    """'0.812 ± 0.031' from a {'mean', 'std'} dict; '' when absent."""
    if not summary or summary.get("mean") is None or math.isnan(summary["mean"]):
        return ""
    return f"{summary['mean']:.{digits}f} ± {summary['std']:.{digits}f}"


def describe(run: Path, config: TrainConfig | None = None, res: dict | None = None) -> str:
    """One line naming a run, e.g. 'transformer-4h · 100 epochs · folds 2, 3, 4, 5 · test acc 0.81 ± 0.03'."""
    config = config or store.load_config(run)
    res = res if res is not None else (results(run) or {})
    done = folds_done(run, config)
    parts = [config.label, f"{config.epochs} epoch{'s' * (config.epochs != 1)}",
             f"fold{'s' * (len(done) != 1)} {', '.join(map(str, done))}" if done else "no finished fold"]
    acc = mean_pm(res.get("summary", {}).get("accuracy"))
    if acc:
        parts.append(f"test acc {acc}")
    return " · ".join(parts) + f" · run {config.key()}"


def run_row(run: Path, status: str = "", config: TrainConfig | None = None) -> dict:
    """A row of the runs table: model, settings, folds finished, status, test accuracy."""
    config = config or store.load_config(run)
    res = results(run) or {}
    summary = res.get("summary", {})
    ens = res.get("ensemble", {})
    return {
        "model": config.label, "status": status,
        "folds done": f"{len(folds_done(run, config))} of {len(config.cv_folds)}",
        "test accuracy (mean ± std)": mean_pm(summary.get("accuracy")),
        "ensemble test accuracy": f"{ens['accuracy']:.3f}" if "accuracy" in ens else "",
        "epochs": config.epochs, "lr": config.lr, "batch size": config.batch_size, "data": config.dataset_id,
        "run": run.name,
    }


def fold_table(res: dict) -> list[dict]:
    """The report's per-fold table (train loss, train acc, val acc, test acc, test macro F1) with
    'mean' and 'std' rows and the fold ensemble's test figures; numbers, ready for a CSV."""
    rows = fold_rows(res)
    cols = ("train_loss", "train_acc", "val_acc", "test_acc", "test_macro_f1")
    if rows:
        s = res.get("summary", {})
        tr = s.get("training", {})
        figures = {"train_loss": tr.get("train_loss"), "train_acc": tr.get("train_acc"),
                   "val_acc": tr.get("val_acc"), "test_acc": s.get("accuracy"), "test_macro_f1": s.get("macro_f1")}
        for stat in ("mean", "std"):
            rows.append({"fold": stat, "epoch": None,
                         **{c: (figures[c] or {}).get(stat) for c in cols}})
    if "ensemble" in res:
        e = res["ensemble"]
        rows.append({"fold": "ensemble", "epoch": None, "train_loss": None, "train_acc": None, "val_acc": None,
                     "test_acc": e["accuracy"], "test_macro_f1": e["macro_f1"]})
    return rows


def report_for(res: dict, which: str) -> dict | None:
    """The test-fold report of one fold model ('2', '3', ...) or of the fold ensemble ('ensemble')."""
    if which == "ensemble":
        return res.get("ensemble")
    return res.get("folds", {}).get(str(which))


def per_class_table(report: dict) -> list[dict]:
    """Per-class precision, recall, F1 and support, with the AUC where the ROC exists."""
    roc = report.get("roc", {})
    return [{"class": c, "precision": m["precision"], "recall": m["recall"], "f1": m["f1"], "support": m["support"],
             "auc": roc.get(c, {}).get("auc")} for c, m in report["per_class"].items()]


def misclassified(res: dict, which: str = "ensemble") -> list[dict]:
    """Test clips the chosen model got wrong: name, true class, predicted class."""
    report = report_for(res, which) or {}
    classes = res.get("classes", [])
    pred = report.get("predictions", [])
    return [{"clip": n, "true": classes[t], "predicted": classes[p]}
            for n, t, p in zip(res.get("test_names", []), res.get("y_true", []), pred) if t != p]
