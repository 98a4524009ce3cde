"""When to say "not sure": a confidence threshold chosen on the validation folds, and the verdict on one
recording from its ensemble probabilities and how its fold models agree.

The threshold is chosen where the models can be checked without touching the test fold: each fold
model's answers on its own validation fold (which it never trained on). It is the lowest confidence
above which those answers make half the mistakes they make overall (`target_for`: right 96 times in
100 for a model right 92 times in 100), and at least 90 % right.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

TARGET = 0.9  # the least: answers above the threshold are right at least 9 times in 10 (validation folds)
# A window of a long recording this many dB below its loudest is background: the recipe's front end scales
# each window to its own peak, so the model names room tone as confidently as the sound (bench/long.py).
QUIET_DB = 20.0


def target_for(correct: Sequence[bool]) -> float:
    """Half the validation error rate, and never under TARGET: (1 + accuracy) / 2."""
    ok = np.asarray(correct, dtype=bool)
    return max(TARGET, (1 + float(ok.mean())) / 2) if len(ok) else TARGET


def choose_threshold(confidence: Sequence[float], correct: Sequence[bool], target: float = TARGET) -> float:
    """The lowest t such that the answers with confidence >= t are right at least `target` of the time.

    Args:
        confidence: (N,) top-class probability of each validation answer.
        correct: (N,) whether that answer was right.
    Returns 1.0 when no threshold reaches `target` (then every answer is "not sure").
    """
    conf = np.asarray(confidence, dtype=np.float64)
    ok = np.asarray(correct, dtype=bool)
    order = np.argsort(-conf, kind="stable")
    accuracy = np.cumsum(ok[order]) / np.arange(1, len(conf) + 1)  # of the k most confident answers
    good = np.flatnonzero(accuracy >= target)
    if not len(good):
        return 1.0
    k = good[-1]  # the most answers that still meet the target
    return float(conf[order][k])


def coverage(confidence: Sequence[float], correct: Sequence[bool], threshold: float) -> dict:
    """What a threshold does: the share of answers given, and the accuracy of those given and overall."""
    conf, ok = np.asarray(confidence, dtype=np.float64), np.asarray(correct, dtype=bool)
    answered = conf >= threshold
    return {"threshold": float(threshold), "n": int(len(conf)), "answered": float(answered.mean()) if len(conf) else 0.0,
            "accuracy_answered": float(ok[answered].mean()) if answered.any() else float("nan"),
            "accuracy_all": float(ok.mean()) if len(conf) else float("nan")}


def verdict(ensemble: np.ndarray, per_model: Sequence[np.ndarray], threshold: float) -> dict:
    """Whether to give the ensemble's top class as the answer, and why not.

    Not sure when the ensemble's top probability is below `threshold`, or when fewer than half of the
    fold models have that class on top.
    """
    ensemble = np.asarray(ensemble)
    top = int(ensemble.argmax())
    agree = sum(int(np.asarray(p).argmax()) == top for p in per_model)
    reasons = []
    if ensemble[top] < threshold:
        reasons.append(f"its confidence {ensemble[top]:.2f} is below {threshold:.2f}, where this model's answers "
                       "stop being reliable")
    if per_model and 2 * agree < len(per_model):
        reasons.append(f"only {agree} of its {len(per_model)} fold models pick it")
    return {"top": top, "sure": not reasons, "agree": agree, "of": len(per_model), "reasons": reasons}


ANSWER_COLUMNS = ["file", "seconds", "answer", "probability", "top", "error"]


def answer_row(result: dict, threshold: float, k: int = 3) -> dict:
    """One recording's answer as a row of the CLI's `--csv` and the Predict page's table (`ANSWER_COLUMNS`,
    less the file): its length, the top class or "not sure", that class's probability, the top `k`."""
    from .inference import top_k

    classes, ens = result["classes"], result["ensemble"]
    v = verdict(ens, list(result["per_model"].values()), threshold)
    return {"seconds": f"{result['duration_s']:.2f}", "answer": classes[v["top"]] if v["sure"] else "not sure",
            "probability": f"{ens[v['top']]:.3f}", "top": "; ".join(f"{c} {p:.2f}" for c, p in top_k(ens, classes, k))}


def quiet_windows(over_time: dict) -> np.ndarray:
    """Which windows of a long recording are background: over QUIET_DB below the loudest (`level_db`)."""
    return np.asarray(over_time.get("level_db", np.zeros(len(over_time["start_s"])))) < -QUIET_DB


def timeline(over_time: dict, classes: list[str] | tuple[str, ...], threshold: float) -> list[dict]:
    """A long recording window by window, then merged: consecutive windows with the same sure answer
    become one span {start_s, end_s, class, probability (the span's highest), sure, quiet}; windows that
    are not sure become spans of "not sure" (class None), and windows over QUIET_DB below the loudest
    (`level_db`, where given) spans of "quiet" (class None, quiet True), whatever the model said there."""
    starts = np.asarray(over_time["start_s"], dtype=np.float64)
    ens = np.asarray(over_time["ensemble"])
    models = list(over_time.get("per_model", {}).values())
    quiet = quiet_windows(over_time)
    spans: list[dict] = []
    for i, start in enumerate(starts):
        v = verdict(ens[i], [m[i] for m in models], threshold)
        sure = v["sure"] and not quiet[i]
        label = classes[v["top"]] if sure else None
        end = start + float(over_time.get("clip_s", 5.0))
        if spans and spans[-1]["class"] == label and spans[-1]["quiet"] == bool(quiet[i]):
            spans[-1]["end_s"] = end
            spans[-1]["probability"] = max(spans[-1]["probability"], float(ens[i, v["top"]]))
        else:
            spans.append({"start_s": float(start), "end_s": end, "class": label,
                          "probability": float(ens[i, v["top"]]), "sure": sure, "quiet": bool(quiet[i])})
    return spans
