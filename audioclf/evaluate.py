"""Apply a run's fold models to the test fold and record the metrics in `results.json`."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from .config import TrainConfig
from .confidence import choose_threshold, coverage, target_for
from .inference import predict_logits
from .metrics import classification_report, mean_std, summarise_folds
from .prepare import Prepared
from .store import Run


def evaluate_run(config: TrainConfig, prepared: Prepared, root: Path | None = None,
                 device: torch.device | str = "cpu", which: str = "best") -> dict:
    """Each complete fold model's report on the test fold, their mean ± std, and the ensemble (mean
    of the fold models' probabilities). Written to results.json and returned."""
    run = Run.of(config, root)
    classes = list(prepared.classes)
    folds = [f for f in config.cv_folds if run.fold_complete(f)]
    loaded = {f: run.fold_model(f, which, device) for f in folds}
    val_conf, val_ok, oof = [], [], {}  # each fold model on its own validation fold, which it never trained on
    for fold in folds:
        x_val, y_val = prepared.subset([fold])
        val = predict_logits(loaded[fold].model, x_val, config.prep).softmax(1).numpy()
        oof[fold] = (y_val.numpy(), val)
        val_conf += val.max(1).tolist()
        val_ok += (val.argmax(1) == y_val.numpy()).tolist()
    names, fold_of = prepared.names, prepared.folds.tolist()
    x_test, y_test = prepared.subset([config.test_fold])
    y = y_test.numpy()
    # No test clips (a small class folder, see audioclf.teach.fit_folds): the figures are the fold models
    # on their own validation folds, and "ensemble" pools them (each clip judged once, out of fold).
    cross_validated = len(y) == 0
    per_fold, probas, training = {}, [], {}
    for fold in folds:
        if cross_validated:
            y_fold, proba = oof[fold]
        else:
            y_fold, proba = y, predict_logits(loaded[fold].model, x_test, config.prep).softmax(1).numpy()
        probas.append(proba)
        per_fold[fold] = classification_report(y_fold, proba, classes)
        per_fold[fold]["predictions"] = proba.argmax(1).tolist()
        training[fold] = fold_training_summary(run.history(fold), loaded[fold].meta)
    if cross_validated and folds:
        y = np.concatenate([oof[f][0] for f in folds])
        pooled = np.concatenate(probas)
        test_names = [n for f in folds for n, g in zip(names, fold_of) if g == f]
    else:
        pooled = np.mean(probas, axis=0) if probas else None
        test_names = [n for n, f in zip(names, fold_of) if f == config.test_fold]
    results = {
        "config_key": config.key(), "label": config.label, "which": which, "classes": classes,
        "test_fold": None if cross_validated else config.test_fold, "test_names": test_names,
        "y_true": y.tolist(), "folds": {str(f): {**per_fold[f], "training": training[f]} for f in folds},
    }
    if cross_validated:
        results["protocol"] = (f"cross-validation: no clip in test fold {config.test_fold}; each fold model is "
                               "scored on its own validation fold and 'ensemble' pools those out-of-fold answers")
    if folds:
        results["summary"] = summarise_folds(per_fold)
        # A taught fold model kept at its start (epoch 0) has no training figures: left out of their mean.
        results["summary"]["training"] = {k: mean_std([v for f in folds if not math.isnan(v := training[f][k])]
                                                      or [math.nan])
                                          for k in ("train_loss", "train_acc", "val_acc")}
        ensemble = classification_report(y, pooled, classes)
        ensemble["predictions"] = pooled.argmax(1).tolist()
        results["ensemble"] = ensemble
        target = target_for(val_ok)
        threshold = choose_threshold(val_conf, val_ok, target)
        results["unsure"] = {"target": target, "threshold": threshold,
                             "validation": coverage(val_conf, val_ok, threshold),
                             "test": coverage(pooled.max(1), pooled.argmax(1) == y, threshold)}
    run.write_results(results)
    return results


def fold_training_summary(history: list[dict], meta: dict) -> dict:
    """The report's per-fold columns: train loss and accuracy at the chosen epoch, its val accuracy.
    Epoch 0 is a taught model's start, kept because no epoch beat it: no training figures."""
    epoch = meta.get("epoch", len(history))
    if epoch == 0:
        return {"epoch": 0, "train_loss": float("nan"), "train_acc": float("nan"),
                "val_acc": meta.get("val_acc", float("nan")), "val_loss": meta.get("val_loss", float("nan"))}
    row = history[epoch - 1] if 0 < epoch <= len(history) else (history[-1] if history else {})
    # the validation figures of the weights kept: the epoch's, or, averaged with the start (`start_weight`), theirs
    return {"epoch": epoch, "train_loss": row.get("train_loss", float("nan")),
            "train_acc": row.get("train_acc", float("nan")),
            "val_acc": meta.get("val_acc", row.get("val_acc", float("nan"))),
            "val_loss": meta.get("val_loss", row.get("val_loss", float("nan")))}
