"""Trained runs as rows, tables and curves: what the app's Overview, Train and Compare pages show.

Everything here reads the run folders (see `audioclf.store`) and returns plain lists and dicts.
"""
from __future__ import annotations

import functools
import json
import math
from pathlib import Path

from . import store
from .data import Clip, Dataset
from .errors import UserError
from .models import MODELS, build_model, count_parameters, model_config
from .report import fold_rows
from .store import Run


def readable(runs: list[Run]) -> list[Run]:
    """The runs whose config.json can be read (a broken folder is left out, never a crash)."""
    out = []
    for run in runs:
        try:
            run.config
        except UserError:
            continue
        out.append(run)
    return out


def runs_with_weights(root: Path | None = None, attention: bool | None = None) -> list[Run]:
    """Runs (newest first) with at least one finished fold model; with `attention`, only models that
    do (or do not) return attention weights."""
    out = []
    for run in readable(store.list_runs(root)):
        if attention is not None and MODELS.get(run.config.model) and MODELS[run.config.model].attention != attention:
            continue
        if run.folds_with_weights():
            out.append(run)
    return out


def evaluated(root: Path | None = None) -> list[Run]:
    """Runs (newest first) with test-fold results."""
    return [r for r in readable(store.list_runs(root)) if (r.results() or {}).get("folds")]


def complete_first(runs: list[Run]) -> list[Run]:
    """Runs with every fold trained and evaluated first (the given order within each group)."""
    return sorted(runs, key=lambda r: not r.is_complete())


def validation_accuracy(run: Run, results: dict | None = None) -> float:
    """The mean validation accuracy of a run's fold models at their chosen epochs (never the test), from
    `results` when the caller has read them already."""
    res = results if results is not None else run.results() or {}
    acc = (res.get("summary", {}).get("training", {}).get("val_acc") or {}).get("mean")
    return float(acc) if acc is not None and not math.isnan(acc) else -1.0


def class_set(run: Run) -> str:
    """The name of the data a run was trained on: "esc10", "esc50", or a class folder's name."""
    return run.config.dataset_id.rsplit("-", 1)[0]


def test_clips_of(run: Run, dataset: Dataset) -> list[Clip]:
    """`dataset`'s clips that are `run`'s test clips (its results' `test_names`, matched by name without the
    extension, and by class), in the run's order; [] unless every one of them is there. So the 16 kHz FLAC
    copy or the downloaded 44.1 kHz WAV of ESC-50 offers the test clips of a run trained on ESC-10's OGG
    originals (same recordings, names and folds; other bytes, so another data fingerprint), and a clip the run
    trained on is never offered as a test clip."""
    res = run.results() or {}
    names, truth, classes = res.get("test_names") or [], res.get("y_true") or [], res.get("classes") or []
    if not names or len(truth) != len(names) or list(dataset.classes) != list(classes):
        return []
    by_stem = {c.path.stem: c for c in dataset.clips}
    found = [by_stem.get(Path(n).stem) for n in names]
    if any(c is None or c.label != int(t) for c, t in zip(found, truth)):
        return []
    return found


def default_run(root: Path | None = None, classes: tuple[str, ...] | list[str] | None = None,
                data: str | None = None) -> Run:
    """The run that the CLI's `predict` and the app use unless told otherwise: among evaluated runs
    (of the given classes, or trained on the data named `data`, e.g. "esc50" or "mysounds"; with
    neither, ESC-10's if there are any), complete ones first, then the best by validation accuracy,
    never by test accuracy; so a short experiment never silently becomes the default, and a folder
    taught from a few clips is the default only where its own data is chosen. FileNotFoundError when
    there is none."""
    candidates = [r for r in evaluated(root)
                  if classes is None or (r.results() or {}).get("classes") == list(classes)]
    wanted = data or (None if classes else "esc10")
    if wanted and any(class_set(r) == wanted for r in candidates):
        candidates = [r for r in candidates if class_set(r) == wanted]
    elif data:
        raise FileNotFoundError(f"{root or store.checkpoints_dir()}: no trained run on {data}; train one first "
                                "or pass --run")
    if not candidates:
        raise FileNotFoundError(f"{root or store.checkpoints_dir()}: no trained run; train one first or pass --run")
    return best(candidates)


def defaults(root: Path | None = None) -> dict[str, Run]:
    """`default_run` of each class set that has an evaluated run ("esc10", "esc50", a folder's name), from one
    reading of the store."""
    groups: dict[str, list[Run]] = {}
    for r in evaluated(root):
        groups.setdefault(class_set(r), []).append(r)
    return {name: best(groups[name]) for name in sorted(groups)}


def best(runs: list[Run]) -> Run:
    """Complete runs first, then those that know the most classes, then the best by validation accuracy
    (never test); ties: the first given (the newest, for runs given newest first). Classes before accuracy:
    a run trained on part of a class set (the ESC-50 subset of a folder that holds only ESC-10's ten
    classes) scores higher on its easier task but can't answer for the other forty sounds."""
    def rank(run: Run) -> tuple:
        res = run.results() or {}  # read once: results.json holds every test prediction
        return run.is_complete(), len(res.get("classes") or []), validation_accuracy(run, res)

    return max(runs, key=rank)


def best_per_label(runs: list[Run]) -> list[Run]:
    """The best run (see `best`) of each model label, in model order (cnn, transformer 1, 2, 4 heads): the
    default choice of Compare and Attention, so a short experiment never replaces a full run."""
    groups: dict[str, list[Run]] = {}
    for r in runs:
        groups.setdefault(r.config.label, []).append(r)
    return sorted((best(g) for g in groups.values()), key=model_sort_key)


def compare_defaults(runs: list[Run], data: str | None = None, k: int = 5) -> list[Run]:
    """Compare's first choice: the best run trained on `data` (the class set the app has chosen, e.g.
    "esc10": the model Predict answers with), then the best run of each other model on the same classes,
    in model order (the report's CNN and transformers), `k` runs in all. All runs if none is on `data`."""
    same = [r for r in runs if class_set(r) == data] or runs
    if not same:
        return []
    first = best(same)
    return [first] + [r for r in best_per_label(same) if r != first][:k - 1]


def predict_choices(root: Path | None = None, data: str | None = None) -> list[Run]:
    """The runs a prediction can use, in the order the app offers them: the default run (`default_run`,
    for the data named `data` when there is one) first, then the other runs with weights, fully
    trained ones first, newest first within each."""
    candidates = complete_first(runs_with_weights(root))
    try:
        best = default_run(root, data=data)
    except FileNotFoundError:
        try:
            best = default_run(root)
        except FileNotFoundError:
            return candidates
    return [best] + [r for r in candidates if r != best]


def newest_per_label(runs: list[Run]) -> list[Run]:
    """The newest run of each model label (runs given newest first)."""
    seen: dict[str, Run] = {}
    for r in runs:
        seen.setdefault(r.config.label, r)
    return list(seen.values())


REFERENCE_LIST = "REFERENCE.json"  # written by tools/ship_reference.py next to the shipped run folders
SHIPPED_STAR = "★"
SHIPPED_BADGE = f"{SHIPPED_STAR} shipped"


@functools.lru_cache(maxsize=8)
def _shipped_folders(listing: Path, mtime_ns: int) -> frozenset[str]:
    try:
        data = json.loads(listing.read_text())
        return frozenset(str(r["folder"]) for r in (data.get("runs") or {}).values() if "folder" in r)
    except (OSError, ValueError, AttributeError, TypeError):
        return frozenset()


def is_shipped(run: Run) -> bool:
    """Whether `run` is one of the reference runs shipped with the store (named in its REFERENCE.json)."""
    listing = run.path.parent / REFERENCE_LIST
    try:
        mtime = listing.stat().st_mtime_ns
    except OSError:
        return False
    return run.path.name in _shipped_folders(listing, mtime)


def model_sort_key(run: Run) -> tuple:
    """Registry order, then the options (cnn, then transformer with 1, 2, 4 heads)."""
    names = list(MODELS)
    return (names.index(run.config.model) if run.config.model in names else len(names),
            sorted(run.config.model_options.items()))


def fold_for(run: Run, preferred: int | None = None) -> int | None:
    """`preferred` if that fold model exists, else the run's first fold model (None: it has none)."""
    have = run.folds_with_weights()
    return preferred if preferred in have else (have[0] if have else None)


def class_fold_counts(dataset: Dataset) -> dict[str, dict[int, int]]:
    """Clips per class and fold: {class: {fold: count}}."""
    counts: dict[str, dict[int, int]] = {name: {} for name in dataset.classes}
    for clip in dataset.clips:
        row = counts[dataset.classes[clip.label]]
        row[clip.fold] = row.get(clip.fold, 0) + 1
    return counts


def model_catalogue(n_classes: int) -> list[dict]:
    """Every registered model with each of its option values: name, parameter count, description."""
    rows = []
    for name, spec in MODELS.items():
        variants = [{k: v} for k, opt in spec.options.items() for v in opt.choices[:3]] or [{}]
        for opts in variants:
            rows.append({"model": spec.label(name, opts), "trainable parameters":
                         count_parameters(build_model(model_config(name, n_classes, **opts))),
                         "default lr": spec.lr, "what it is": spec.description})
    return rows


def mean_pm(summary: dict | None, digits: int = 3) -> str:
    """'0.812 ± 0.031' from a {'mean', 'std'} dict; '' when absent; just '0.812' for a single value
    (one fold: there is no spread to show)."""
    if not summary or summary.get("mean") is None or math.isnan(summary["mean"]):
        return ""
    n = summary.get("n", len(summary["values"]) if "values" in summary else None)
    if n == 1 or summary.get("std") is None:
        return f"{summary['mean']:.{digits}f}"
    return f"{summary['mean']:.{digits}f} ± {summary['std']:.{digits}f}"


def describe(run: Run) -> str:
    """One line naming a run, e.g. 'transformer-4h · 100 epochs · folds 2, 3, 4, 5 · test acc 0.81 ± 0.03'."""
    config = run.config
    res = run.results() or {}
    done = run.folds_done()
    parts = [config.label + (f" {SHIPPED_BADGE}" if is_shipped(run) else ""),
             f"{config.epochs} epoch{'s' * (config.epochs != 1)}",
             f"fold{'s' * (len(done) != 1)} {', '.join(map(str, done))}" if done else "no finished fold"]
    acc = mean_pm(res.get("summary", {}).get("accuracy"))
    if acc:
        parts.append(f"{'cross-validated' if cross_validated(res) else 'test'} acc {acc}")
    return " · ".join(parts) + f" · run {config.key()}"


def short_label(run: Run) -> str:
    """A few words naming a run, e.g. 'logmel-cnn ★ · esc50 · 100 epochs · test 0.82 · 6056d43aff54': five of them
    fit in a multiselect's box, where `describe`'s lines ran past its edge."""
    config, res = run.config, run.results() or {}
    done = run.folds_done()
    parts = [config.label + (f" {SHIPPED_STAR}" if is_shipped(run) else ""), class_set(run) or "?",
             f"{config.epochs} epoch{'s' * (config.epochs != 1)}"]
    if len(done) < len(config.cv_folds):
        parts.append(f"{len(done)} of {len(config.cv_folds)} folds")
    acc = (res.get("summary", {}).get("accuracy") or {}).get("mean")
    if acc is not None:
        parts.append(f"{'cv' if cross_validated(res) else 'test'} {acc:.2f}")
    return " · ".join(parts + [config.key()])


def cross_validated(res: dict) -> bool:
    """Whether a run's figures are cross-validation only (a small folder with no test fold: see
    `audioclf.teach.fit_folds`), not a test fold's."""
    return bool(res.get("folds")) and res.get("test_fold", 0) is None


def run_row(run: Run, status: str = "") -> dict:
    """A row of the runs table: model, settings, folds finished, status, test accuracy (marked "cv"
    where the run has no test fold and the figure is cross-validation's)."""
    config = run.config
    res = run.results() or {}
    summary = res.get("summary", {})
    ens = res.get("ensemble", {})
    cv = " (cv, no test fold)" if cross_validated(res) and summary else ""
    return {
        "model": config.label, "shipped": SHIPPED_BADGE if is_shipped(run) else "", "status": status,
        "folds done": f"{len(run.folds_done())} of {len(config.cv_folds)}",
        "test accuracy (mean ± std)": mean_pm(summary.get("accuracy")) + cv,
        "ensemble test accuracy": f"{ens['accuracy']:.3f}{cv}" if "accuracy" in ens else "",
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
        rows.append({"fold": "all clips, out of fold" if cross_validated(res) else "ensemble", "epoch": None,
                     "train_loss": None, "train_acc": None, "val_acc": None,
                     "test_acc": e["accuracy"], "test_macro_f1": e["macro_f1"]})
    return rows


def report_for(res: dict, which: str) -> dict | None:
    """The test-fold report of one fold model ('2', '3', ...) or of the fold ensemble ('ensemble')."""
    if which == "ensemble":
        return res.get("ensemble")
    return res.get("folds", {}).get(str(which))


def per_class_table(report: dict, order: list[str] | None = None) -> list[dict]:
    """Per-class precision, recall, F1 and support, with the AUC where the ROC exists; in `order` (the
    label order, as in the confusion matrix) when given."""
    roc = report.get("roc", {})
    per_class = report["per_class"]
    names = [c for c in order if c in per_class] if order else list(per_class)
    return [{"class": c, "precision": per_class[c]["precision"], "recall": per_class[c]["recall"],
             "f1": per_class[c]["f1"], "support": per_class[c]["support"], "auc": roc.get(c, {}).get("auc")}
            for c in names]


def top_confusions(report: dict, classes: list[str], k: int = 10) -> list[dict]:
    """The `k` most frequent mistakes (true class taken for another), most first: what a 50-class
    confusion matrix hides in its many cells."""
    m = report.get("confusion") or []
    pairs = [(m[i][j], classes[i], classes[j]) for i in range(len(m)) for j in range(len(m)) if i != j and m[i][j]]
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    return [{"true": t, "taken for": p, "clips": n, "of the class's": sum(m[classes.index(t)])} for n, t, p in pairs[:k]]


def misclassified(res: dict, which: str = "ensemble") -> list[dict]:
    """Test clips the chosen model got wrong: name, true class, predicted class."""
    report = report_for(res, which) or {}
    classes = res.get("classes", [])
    pred = report.get("predictions", [])
    return [{"clip": n, "true": classes[t], "predicted": classes[p]}
            for n, t, p in zip(res.get("test_names", []), res.get("y_true", []), pred) if t != p]
