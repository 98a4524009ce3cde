"""What the benches of one's own sounds share (bench/short_teach.py, long_teach.py, imbalance_teach.py): teaching
on ESC-50's validation folds, each draw from a source fold model that never heard the fold, with the teaching
settings. Draw r takes fold k = 2 + r % 4 (fold 1, the test fold, is never used) and classes and clips drawn with
`random.Random(r)`."""
from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass
from pathlib import Path

import torch

from bench import command_line
from audioclf.config import TrainConfig
from audioclf.data import open_dataset
from audioclf.prepare import Prepared, prepare
from audioclf.store import Run
from audioclf.teach import TEACH_TRAINING, Start, source_run, start_state


@dataclass(frozen=True)
class Setup:
    source: Run
    prepared: Prepared  # ESC-50 as the source run reads it
    config: TrainConfig  # the teaching settings on the source's model
    labels: list[int]


@dataclass(frozen=True)
class Draw:
    fold: int
    start: Start  # the source's fold-k model with a fresh head, as for sounds of one's own
    rng: random.Random  # what is drawn next (clips, or sizes first) continues from here
    chosen: list[int]  # the classes, in the order of their new labels

    @property
    def remap(self) -> dict[int, int]:
        return {c: j for j, c in enumerate(self.chosen)}


def parser(name: str, doc: str, repeats: int, classes: bool = True) -> argparse.ArgumentParser:
    """--from (the source run), --esc50, --repeats, --classes (unless a bench fixes them) and --out
    (default bench/<name>.json)."""
    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--from", dest="source", default="esc50")
    ap.add_argument("--esc50", type=Path, default=here.parent.parent / "shared" / "data" / "esc50")
    ap.add_argument("--repeats", type=int, default=repeats)
    if classes:
        ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--out", type=Path, default=here / f"{name}.json")
    return ap


def setup(source: str, esc50: Path, name: str) -> Setup:
    run = source_run(source)
    src = run.config
    prepared = prepare(open_dataset(esc50, "esc50"), src.prep)
    config = TrainConfig(model=src.model, options=src.options, heads=src.heads or None, prep=src.prep,
                         dataset_id=name, **TEACH_TRAINING)
    return Setup(run, prepared, config, prepared.labels.tolist())


def in_fold(s: Setup, fold: int) -> list[int]:
    return [i for i in range(len(s.labels)) if int(s.prepared.folds[i]) == fold]


def draw(s: Setup, rep: int, n_classes: int = 10) -> Draw:
    fold = 2 + rep % 4
    rng = random.Random(rep)
    chosen = rng.sample(sorted({s.labels[i] for i in in_fold(s, fold)}), n_classes)
    return Draw(fold, start_state(s.source, fold), rng, chosen)


def clips(s: Setup, d: Draw, per_class: int = 8) -> dict[int, list[int]]:
    """`per_class` clips of each chosen class from the draw's fold, in a random order."""
    here = in_fold(s, d.fold)
    return {c: d.rng.sample([i for i in here if s.labels[i] == c], per_class) for c in d.chosen}


def split(d: Draw, by_class: dict[int, list[int]], taught: int = 4) -> tuple[list[int], list[int]]:
    """The first `taught` clips of each class to teach on, the rest to test on."""
    return ([i for c in d.chosen for i in by_class[c][:taught]], [i for c in d.chosen for i in by_class[c][taught:]])


def targets(s: Setup, d: Draw, idx: list[int]) -> torch.Tensor:
    """The draw's labels (0 .. classes - 1) of the clips `idx`."""
    return torch.tensor([d.remap[s.labels[i]] for i in idx])


def save(out: Path, s: Setup, summary: dict[str, float], summary_key: str = "mean_accuracy", **fields) -> None:
    """Write the bench's JSON (its command, the source run, `fields`, then `summary` under `summary_key`) and print
    the summary."""
    out.write_text(json.dumps({"command": command_line(), "source": s.source.name, **fields, summary_key: summary},
                              indent=1))
    for key, acc in summary.items():
        print(f"{key}: {acc:.3f}")
