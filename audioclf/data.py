"""Datasets: an ESC-50-layout folder (ESC-10 or ESC-50) or a user's folder-per-class collection.

A `Dataset` is a list of clips with integer labels and folds; nothing is decoded here (see
`audioclf.prepare` for that).
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

from .audio import AUDIO_EXTENSIONS
from .errors import UserError

# ESC-10's classes, in ESC-50 target order: ESC-10 label i is ESC10_CLASSES[i].
ESC10_CLASSES = ("dog", "rooster", "rain", "sea_waves", "crackling_fire",
                 "crying_baby", "sneezing", "clock_tick", "helicopter", "chainsaw")
ESC50_COLUMNS = ("filename", "fold", "target", "category")
SUBSET_CLASSES = {"esc10": len(ESC10_CLASSES), "esc50": 50}  # how many classes each subset has in full
SUBSET_NAMES = {"esc10": "ESC-10", "esc50": "ESC-50"}
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
    warnings: tuple[str, ...] = ()  # what was done about a problem that does not stop the data's use
    layout: str = "esc50"  # "esc50" (meta/esc50.csv) or "folders" (one sub-folder per class)

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


def subsets_offered(root: str | Path) -> tuple[str, ...]:
    """The subsets that an ESC-50-layout folder tells apart, by its csv's esc10 column: both for ESC-50
    itself, ("esc10",) for a copy of ESC-10 alone (its "ESC-50" would be the same ten classes again),
    ("esc50",) for a folder without ESC-10 rows; () for a folder not in that layout. A csv that can't be
    read offers both, so that loading it says what is wrong."""
    meta = Path(root).expanduser() / "meta" / "esc50.csv"
    if not meta.is_file():
        return ()
    try:
        with meta.open(newline="") as f:
            reader = csv.DictReader(f)
            flags = {(r.get("esc10") or "").strip().lower() == "true" for r in reader}
    except (OSError, UnicodeDecodeError, csv.Error):
        return tuple(SUBSET_CLASSES)
    offered = (("esc10",) if True in flags else ()) + (("esc50",) if False in flags else ())
    return offered or tuple(SUBSET_CLASSES)


def _whole(meta: Path, line: int, column: str, value: str | None, minimum: int) -> int:
    """A csv cell as an int >= minimum, or a DataError naming the file, row and value."""
    text = (value or "").strip()
    if not text:
        raise DataError(f"{meta} row {line}: no value in column {column!r}")
    if not re.fullmatch(r"[+-]?\d+", text):
        raise DataError(f"{meta} row {line}: {column} {text!r} is not a whole number")
    if int(text) < minimum:
        raise DataError(f"{meta} row {line}: {column} {text!r} must be {minimum} or more")
    return int(text)


def _class_key(name: str) -> str:
    """What two class names that a person would read as the same one have in common."""
    return " ".join(re.split(r"[\s_\-]+", name.strip().casefold())).strip()


def check_class_names(names: dict[str, str], source: str) -> None:
    """Refuse two class names (mapped to where they were seen) that differ only in case, spaces,
    hyphens or underscores, e.g. `Dog` beside `dog` or `sea waves` beside `sea_waves`."""
    seen: dict[str, str] = {}
    for name in names:
        other = seen.setdefault(_class_key(name), name)
        if other != name:
            raise DataError(f"{source}: class names {other!r} ({names[other]}) and {name!r} ({names[name]}) "
                            "differ only in case, spaces or underscores; use one spelling")


def safe_member(folder: Path, name: str, where: str) -> Path:
    """`folder/name` for a file name read from a list, refused when it is absolute, holds `..` or
    resolves (through links) outside `folder`."""
    if (not name or PurePosixPath(name).is_absolute() or PureWindowsPath(name).is_absolute()
            or PureWindowsPath(name).drive or ".." in PurePosixPath(name.replace("\\", "/")).parts):
        raise DataError(f"{where}: file name {name!r} is outside the {folder.name}/ folder")
    path = folder / name
    if not path.resolve().is_relative_to(folder.resolve()):
        raise DataError(f"{where}: file name {name!r} leads outside the {folder.name}/ folder "
                        f"(to {path.resolve()})")
    return path


def load_esc50(root: Path, subset: str = "esc10") -> Dataset:
    """ESC-10 (labels renumbered 0-9 in `ESC10_CLASSES` order) or the full ESC-50 (50 classes).

    Every row of meta/esc50.csv is checked (rows are counted as in a spreadsheet, the header is row
    1): whole-number folds (>= 1) and targets (>= 0), one category per target and one target per
    category, no near-duplicate category names, ESC-10 rows only from the ten ESC-10 classes, file
    names inside audio/.
    """
    if subset not in SUBSET_CLASSES:
        raise DataError(f"unknown subset {subset!r}: choose esc10 or esc50")
    meta = root / "meta" / "esc50.csv"
    try:
        with meta.open(newline="") as f:
            reader = csv.DictReader(f)
            rows = [(reader.line_num, r) for r in reader]
            header = reader.fieldnames or []
    except (UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{meta}: not a readable csv file ({e})") from None
    needed = ESC50_COLUMNS + (("esc10",) if subset == "esc10" else ())
    missing_cols = [c for c in needed if c not in header]
    if missing_cols:
        raise DataError(f"{meta}: missing column(s) {', '.join(missing_cols)}")
    audio = root / "audio"
    parsed = []  # (row, file, fold, target, category, in esc10)
    for line, r in rows:  # checked in column order, so the first bad cell of a row is the one named
        path = safe_member(audio, (r.get("filename") or "").strip(), f"{meta} row {line}")
        fold = _whole(meta, line, "fold", r.get("fold"), 1)
        target = _whole(meta, line, "target", r.get("target"), 0)
        category = r.get("category") or ""  # as written: "dog " beside "dog" is refused below
        if not category.strip():
            raise DataError(f"{meta} row {line}: no value in column 'category'")
        flag = (r.get("esc10") or "").strip().lower() if "esc10" in header else "false"
        if flag not in ("true", "false"):
            raise DataError(f"{meta} row {line}: esc10 {r.get('esc10')!r} is neither True nor False")
        parsed.append((line, path, fold, target, category, flag == "true"))
    first_row: dict[str, str] = {}
    for line, *_, category, _ in parsed:
        first_row.setdefault(category, f"row {line}")
    check_class_names(first_row, str(meta))
    target_of: dict[str, tuple[int, int]] = {}
    category_of: dict[int, tuple[str, int]] = {}
    for line, _, _, target, category, _ in parsed:
        t, t_line = target_of.setdefault(category, (target, line))
        if t != target:
            raise DataError(f"{meta} row {line}: category {category!r} has target {target}, "
                            f"but target {t} in row {t_line}")
        c, c_line = category_of.setdefault(target, (category, line))
        if c != category:
            raise DataError(f"{meta} row {line}: target {target} is {category!r} here but {c!r} in row {c_line}; "
                            "each category needs its own target")
    if subset == "esc10":
        parsed = [p for p in parsed if p[5]]
        for line, *_, category, _ in parsed:
            if category not in ESC10_CLASSES:
                raise DataError(f"{meta} row {line}: {category!r} is not an ESC-10 class "
                                f"({', '.join(ESC10_CLASSES)}); mark the row esc10 False or fix the name")
        names = {p[4] for p in parsed}
        classes = tuple(c for c in ESC10_CLASSES if c in names)
        label_of = {c: i for i, c in enumerate(classes)}
        labels = [label_of[p[4]] for p in parsed]
    else:
        by_target = {p[3]: p[4] for p in parsed}
        rank = {t: i for i, t in enumerate(sorted(by_target))}  # identity on the full ESC-50
        classes = tuple(by_target[t] for t in sorted(by_target))
        labels = [rank[p[3]] for p in parsed]
    if not parsed:
        hint = "; no row is marked esc10 True: use the subset esc50 (--subset esc50)" if subset == "esc10" else ""
        raise DataError(f"{meta}: no rows for subset {subset}{hint}")
    clips = tuple(Clip(p[1], lab, p[2]) for p, lab in zip(parsed, labels))
    absent = [c.path for c in clips if not c.path.is_file()]
    if absent:
        raise DataError(f"{audio}: {len(absent)} of the {len(clips)} {subset} files listed in "
                        f"{meta.name} are missing (first: {absent[0].name})")
    full = SUBSET_CLASSES[subset]
    warnings = () if len(classes) >= full else (
        f"{meta}: {len(classes)} of {SUBSET_NAMES[subset]}'s {full} classes; a run trained on this folder "
        f"answers for those only, and is never the default model for {SUBSET_NAMES[subset]} where a run knows "
        f"all {full}",)
    return Dataset(subset, root, classes, clips, warnings)


def load_class_folders(root: Path, n_folds: int = 5, seed: int = 0) -> Dataset:
    """One sub-folder per class; folds are assigned once (stratified, seeded) and recorded in
    `root/audioclf_folds.csv` so that they never change between runs.

    A class with fewer clips than folds is dealt into folds 2, 3, ... (never the test fold 1, so
    all its clips are trained on) and the Dataset's `warnings` say so. A folder that cannot be
    written gets its folds computed in memory (the same ones each time while the files stay the
    same), also with a warning.
    """
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    files = {d.name: sorted(p for p in d.iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS)
             for d in class_dirs}
    files = {k: v for k, v in files.items() if v}
    if len(files) < 2:
        raise DataError(f"{root}: expected meta/esc50.csv or at least two class sub-folders holding "
                        f"audio files ({', '.join(AUDIO_EXTENSIONS)})")
    check_class_names({c: f"folder {c}/" for c in files}, str(root))
    classes = tuple(files)
    rel = [(f"{c}/{p.name}", i) for i, c in enumerate(classes) for p in files[c]]
    warnings: list[str] = []
    folds = _recorded_folds(root, rel, n_folds, seed, warnings)
    for i, c in enumerate(classes):
        if len(files[c]) < n_folds:
            got = sorted({folds[r] for r, lab in rel if lab == i})
            warnings.append(f"{root / c}: {len(files[c])} clip(s), fewer than the {n_folds} folds; put in "
                            f"fold(s) {', '.join(map(str, got))}"
                            + ("" if 1 in got else ", none in the test fold 1, so the test figures leave "
                                                   "this class out"))
    clips = tuple(Clip(root / r, lab, folds[r]) for r, lab in rel)
    return Dataset(root.name, root, classes, clips, tuple(warnings), layout="folders")


def _recorded_folds(root: Path, rel: list[tuple[str, int]], n_folds: int, seed: int,
                    warnings: list[str]) -> dict[str, int]:
    record = root / FOLDS_FILE
    known: dict[str, int] = {}
    if record.is_file():
        with record.open(newline="") as f:
            reader = csv.DictReader(f)
            if not {"file", "fold"} <= set(reader.fieldnames or []):
                raise DataError(f"{record}: missing column(s) file, fold (delete the file to assign folds anew)")
            for r in reader:
                known[r["file"]] = _whole(record, reader.line_num, "fold", r["fold"], 1)
    new = [(r, lab) for r, lab in rel if r not in known]
    if new:
        known.update(assign_folds(new, n_folds, seed, start=known, labels=dict(rel)))
        tmp = record.with_suffix(".tmp")
        try:
            with tmp.open("w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["file", "fold"])
                w.writerows(sorted(known.items()))
            os.replace(tmp, record)
        except OSError as e:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            warnings.append(f"{record}: cannot be written ({e.strerror or e}); the folds of {len(new)} clip(s) "
                            "were computed in memory and are the same each time while the files stay the same")
    return {r: known[r] for r, _ in rel}


def assign_folds(items: list[tuple[str, int]], n_folds: int, seed: int,
                 start: dict[str, int] | None = None, labels: dict[str, int] | None = None) -> dict[str, int]:
    """Stratified fold numbers 1..n_folds for (name, label) pairs: within each class, a seeded
    shuffle dealt out to the folds that hold fewest of that class so far (so files added later
    keep the folds balanced without moving earlier ones). A class with fewer clips than folds (so
    far) is dealt into folds 2..n_folds only: the test fold 1 would take its one clip from training."""
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
        small = len(names) + sum(counts[(lab, k)] for k in range(1, n_folds + 1)) < n_folds
        allowed = range(2 if small and n_folds > 1 else 1, n_folds + 1)
        for name in names:
            fold = min(allowed, key=lambda k: (counts[(lab, k)], k))
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
