"""Tables of results as text (markdown) and rows, shared by the CLI, the docs and the app."""
from __future__ import annotations

import math


def fold_rows(results: dict) -> list[dict]:
    """The report's per-fold table: train loss, train acc, val acc (at the chosen epoch), test acc,
    test macro F1; then mean ± std and the fold ensemble."""
    rows = []
    for fold, r in results.get("folds", {}).items():
        t = r["training"]
        rows.append({"fold": f"fold {fold}", "epoch": t["epoch"], "train_loss": t["train_loss"],
                     "train_acc": t["train_acc"], "val_acc": t["val_acc"], "test_acc": r["accuracy"],
                     "test_macro_f1": r["macro_f1"]})
    return rows


def fold_table_markdown(results: dict, test: bool = True) -> str:
    """The per-fold table that `train` and `evaluate` print; `test=False` leaves out every test figure (the
    validation columns only, for choosing a recipe without seeing the test fold)."""
    rows = fold_rows(results)
    cross_validated = results.get("test_fold") is None  # a small folder: see audioclf.teach.fit_folds
    title = (f"{results['label']} ({results['which']} weights; no test fold: the test columns are each fold model "
             "on its own validation fold, and the last row pools those out-of-fold answers)" if cross_validated
             else f"{results['label']} (test fold {results['test_fold']}, {results['which']} weights)")
    if not test:
        title = f"{results['label']} ({results['which']} weights; test figures not shown: see results.json)"
    head = ["val fold", "epoch", "train loss", "train acc", "val acc"] + (["test acc", "test macro F1"] if test else [])
    lines = [title, "", _row(head), "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["fold"], r["epoch"], _cell(r["train_loss"]), _cell(r["train_acc"]), f"{r['val_acc']:.3f}"]
        if test:
            cells += [f"{r['test_acc']:.3f}", f"{r['test_macro_f1']:.3f}"]
        lines.append(_row(cells))
    s = results.get("summary")
    if s:
        tr = s["training"]
        line = (f"| mean ± std | | {_mean_std(tr['train_loss'], len(rows))} | {_mean_std(tr['train_acc'], len(rows))} | "
                f"{tr['val_acc']['mean']:.3f} ± {tr['val_acc']['std']:.3f} |")
        if test:
            line += (f" {s['accuracy']['mean']:.3f} ± {s['accuracy']['std']:.3f} | "
                     f"{s['macro_f1']['mean']:.3f} ± {s['macro_f1']['std']:.3f} |")
        lines.append(line)
    if "ensemble" in results and test:
        e = results["ensemble"]
        name = "all clips, out of fold" if cross_validated else "ensemble"
        lines.append(f"| {name} | | | | | {e['accuracy']:.3f} | {e['macro_f1']:.3f} |")
    return "\n".join(lines)


def _row(cells: list) -> str:
    return "| " + " | ".join(map(str, cells)) + " |"


def _cell(x: float | None) -> str:
    """A figure, or "start" where a taught fold model kept its start (epoch 0: no training figures)."""
    return "start" if x is None or math.isnan(x) else f"{x:.3f}"


def _mean_std(m: dict, folds: int) -> str:
    if math.isnan(m["mean"]):
        return "–"
    text = f"{m['mean']:.3f} ± {m['std']:.3f}"
    return text if m["n"] == folds else f"{text} ({m['n']} of {folds} folds)"
