"""Pure evaluation: labels and probabilities in, plain dicts of scikit-learn metrics out."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.metrics import (accuracy_score, auc, confusion_matrix, f1_score,
                             precision_recall_fscore_support, roc_curve)


def classification_report(y_true: np.ndarray, proba: np.ndarray, classes: Sequence[str]) -> dict:
    """Accuracy, macro F1, per-class precision/recall/F1/support, confusion matrix and one-vs-rest
    ROC curves with AUC per class and their macro average.

    Args:
        y_true: (N,) integer labels.
        proba: (N, C) class probabilities, columns in `classes` order.
    """
    y_true = np.asarray(y_true)
    proba = np.asarray(proba, dtype=np.float64)
    labels = np.arange(len(classes))
    y_pred = proba.argmax(1)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    roc = {}
    for k, name in enumerate(classes):
        positive = y_true == k
        if positive.all() or not positive.any():
            continue  # ROC needs both classes present
        fpr, tpr, _ = roc_curve(positive, proba[:, k])
        roc[name] = {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "auc": float(auc(fpr, tpr))}
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "per_class": {name: {"precision": float(p[k]), "recall": float(r[k]), "f1": float(f[k]),
                             "support": int(s[k])} for k, name in enumerate(classes)},
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "roc": roc,
        "macro_auc": float(np.mean([c["auc"] for c in roc.values()])) if roc else float("nan"),
    }


def mean_std(values: Sequence[float]) -> dict:
    """Mean, sample standard deviation (ddof=1) and a 95 % confidence interval of the mean
    (Student's t, n - 1 degrees of freedom: with 4 folds the interval is wide, honestly so)."""
    from scipy.stats import t

    v = np.asarray(values, dtype=np.float64)
    n = len(v)
    std = float(v.std(ddof=1)) if n > 1 else 0.0
    half = float(t.ppf(0.975, n - 1) * std / np.sqrt(n)) if n > 1 else float("nan")
    return {"mean": float(v.mean()), "std": std, "n": int(n), "values": v.tolist(),
            "ci95": [float(v.mean()) - half, float(v.mean()) + half]}


def summarise_folds(reports: dict[int, dict]) -> dict:
    """Mean ± std across fold reports of accuracy, macro F1, macro AUC and per-class F1."""
    folds = sorted(reports)
    out = {k: mean_std([reports[f][k] for f in folds]) for k in ("accuracy", "macro_f1", "macro_auc")}
    classes = list(reports[folds[0]]["per_class"])
    out["per_class_f1"] = {c: mean_std([reports[f]["per_class"][c]["f1"] for f in folds]) for c in classes}
    return out
