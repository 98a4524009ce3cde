"""Datasets: an ESC-50-layout folder (ESC-10 or ESC-50) or a user's folder-per-class collection.

A `Dataset` is a list of clips with integer labels and folds; nothing is decoded here (see
`audioclf.prepare` for that).
"""
from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from .audio import AUDIO_EXTENSIONS
from .errors import UserError

# ESC-10's classes, in ESC-50 target order: ESC-10 label i is ESC10_CLASSES[i].
ESC10_CLASSES = ("dog", "rooster", "rain", "sea_waves", "crackling_fire",
                 "crying_baby", "sneezing", "clock_tick", "helicopter", "chainsaw")
ESC50_COLUMNS = ("filename", "fold", "target", "category")
FOLDS_FILE = "audioclf_folds.csv"


class DataError(UserError):
    """A dataset folder that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class Clip:
    path: Path
    label: int
    fold: int


@dataclass(frozen=True)
class Dataset:
    name: str
    root: Path
    classes: tuple[str, ...]
    clips: tuple[Clip, ...]

    def __len__(self) -> int:
        return len(self.clips)

    @property
    def folds(self) -> tuple[int, ...]:
        return tuple(sorted({c.fold for c in self.clips}))

    def fingerprint(self) -> str:
        """Identity of the data for training configs: names, sizes, labels, folds (not mtimes,
        so that two copies of the same data share checkpoints)."""
        h = hashlib.sha256(self.name.encode())
        for c in self.clips:
            h.update(f"{c.path.name}|{c.path.stat().st_size}|{c.label}|{c.fold}\n".encode())
        return f"{self.name}-{h.hexdigest()[:10]}"

    def file_stamp(self) -> str:
        """Like `fingerprint` plus modification times: changes whenever a file is touched, so a
        decoded-audio cache keyed by it is never stale."""
        h = hashlib.sha256(self.fingerprint().encode())
        for c in self.clips:
            h.update(f"{c.path.stat().st_mtime_ns}\n".encode())
        return h.hexdigest()[:16]


def open_dataset(root: str | Path, subset: str = "esc10", n_folds: int = 5, seed: int = 0) -> Dataset:
    """Open an ESC-50-layout folder (`meta/esc50.csv` + `audio/`) or a folder-per-class dataset.

    `subset` picks "esc10" or "esc50" for the ESC-50 layout and is ignored for class folders.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder not found")
    if (root / "meta" / "esc50.csv").is_file():
        return load_esc50(root, subset)
    return load_class_folders(root, n_folds=n_folds, seed=seed)


def load_esc50(root: Path, subset: str = "esc10") -> Dataset:
    """ESC-10 (labels renumbered 0-9 in `ESC10_CLASSES` order) or the full ESC-50 (50 classes)."""
    if subset not in ("esc10", "esc50"):
        raise DataError(f"unknown subset {subset!r}: choose esc10 or esc50")
    meta = root / "meta" / "esc50.csv"
    with meta.open(newline="") as f:
        rows = list(csv.DictReader(f))
    needed = ESC50_COLUMNS + (("esc10",) if subset == "esc10" else ())
    missing_cols = [c for c in needed if not rows or c not in rows[0]]
    if missing_cols:
        raise DataError(f"{meta}: missing column(s) {', '.join(missing_cols)}")
    if subset == "esc10":
        rows = [r for r in rows if r["esc10"].strip().lower() == "true"]
        names = {r["category"] for r in rows}
        classes = tuple(c for c in ESC10_CLASSES if c in names) + tuple(sorted(names - set(ESC10_CLASSES)))
        label_of = {c: i for i, c in enumerate(classes)}
        labels = [label_of[r["category"]] for r in rows]
    else:
        by_target = {int(r["target"]): r["category"] for r in rows}
        rank = {t: i for i, t in enumerate(sorted(by_target))}  # identity on the full ESC-50
        classes = tuple(by_target[t] for t in sorted(by_target))
        labels = [rank[int(r["target"])] for r in rows]
    if not rows:
        raise DataError(f"{meta}: no rows for subset {subset}")
    clips = tuple(Clip(root / "audio" / r["filename"], lab, int(r["fold"])) for r, lab in zip(rows, labels))
    absent = [c.path for c in clips if not c.path.is_file()]
    if absent:
        raise DataError(f"{root / 'audio'}: {len(absent)} of the {len(clips)} {subset} files listed in "
                        f"{meta.name} are missing (first: {absent[0].name})")
    return Dataset(subset, root, classes, clips)


def load_class_folders(root: Path, n_folds: int = 5, seed: int = 0) -> Dataset:
    """One sub-folder per class; folds are assigned once (stratified, seeded) and recorded in
    `root/audioclf_folds.csv` so that they never change between runs."""
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    files = {d.name: sorted(p for p in d.iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS)
             for d in class_dirs}
    files = {k: v for k, v in files.items() if v}
    if len(files) < 2:
        raise DataError(f"{root}: expected meta/esc50.csv or at least two class sub-folders holding "
                        f"audio files ({', '.join(AUDIO_EXTENSIONS)})")
    classes = tuple(files)
    rel = [(f"{c}/{p.name}", i) for i, c in enumerate(classes) for p in files[c]]
    folds = _recorded_folds(root, rel, n_folds, seed)
    clips = tuple(Clip(root / r, lab, folds[r]) for r, lab in rel)
    return Dataset(root.name, root, classes, clips)


def _recorded_folds(root: Path, rel: list[tuple[str, int]], n_folds: int, seed: int) -> dict[str, int]:
    record = root / FOLDS_FILE
    known: dict[str, int] = {}
    if record.is_file():
        with record.open(newline="") as f:
            known = {r["file"]: int(r["fold"]) for r in csv.DictReader(f)}
    new = [(r, lab) for r, lab in rel if r not in known]
    if new:
        known.update(assign_folds(new, n_folds, seed, start=known, labels=dict(rel)))
        tmp = record.with_suffix(".tmp")
        with tmp.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["file", "fold"])
            w.writerows(sorted(known.items()))
        os.replace(tmp, record)
    return {r: known[r] for r, _ in rel}


def assign_folds(items: list[tuple[str, int]], n_folds: int, seed: int,
                 start: dict[str, int] | None = None, labels: dict[str, int] | None = None) -> dict[str, int]:
    """Stratified fold numbers 1..n_folds for (name, label) pairs: within each class, a seeded
    shuffle dealt out to the folds that hold fewest of that class so far (so files added later
    keep the folds balanced without moving earlier ones)."""
    import random

    counts = {(lab, k): 0 for _, lab in items for k in range(1, n_folds + 1)}
    for name, fold in (start or {}).items():
        lab = (labels or {}).get(name)
        if lab is not None and (lab, fold) in counts:
            counts[(lab, fold)] += 1
    rng = random.Random(seed)
    out: dict[str, int] = {}
    for lab in sorted({lab for _, lab in items}):
        names = sorted(n for n, l in items if l == lab)
        rng.shuffle(names)
        for name in names:
            fold = min(range(1, n_folds + 1), key=lambda k: (counts[(lab, k)], k))
            counts[(lab, fold)] += 1
            out[name] = fold
    return out


def default_data_dir() -> Path | None:
    """Where the app and CLI look for data: $AUDIOCLF_DATA, else ./data/esc50 (the downloader's)."""
    env = os.environ.get("AUDIOCLF_DATA")
    if env:
        return Path(env).expanduser()
    here = Path("data") / "esc50"
    return here if here.is_dir() else None
