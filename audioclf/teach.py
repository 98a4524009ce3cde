"""Teaching a folder of clips from a trained run: its front end and trunk, a head for the new classes.

`python -m audioclf train --data DIR --from esc50` trains a run like any other (same store, same
fold models, same pages); what differs is that each fold model starts from a source run's weights
(all but its `head` layer, whose rows carry over only for classes the source knows by name), that the
start itself competes with the training epochs on validation, and that the training defaults are short
(`TEACH_TRAINING`). A folder too small for five folds is cross-validated over the folds it has
(`fit_folds`), never silently. ESC-10 taught from the ESC-50 run is the shipped default for ESC-10.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from . import store
from .data import SUBSET_CLASSES
from .errors import ConfigError, UserError
from .store import Run

if TYPE_CHECKING:
    from .config import TrainConfig

# Fine-tuning defaults: the recipe's precision, a quarter of its epochs, a third of its learning rate (set by
# hand, not tuned), and its augmentation with a third of the clips heard in a room and a third through a
# microphone's response ("recipe-room-mic", adopted for the shipped ESC-10 model on its validation folds: people
# record indoors, on phones). bench/kshot.py measures what they give (docs/results.md).
TEACH_TRAINING = {"epochs": 30, "lr": 1e-3, "weight_decay": 0.05, "optimizer": "adamw", "schedule": "onecycle",
                  "label_smoothing": 0.05, "augment": "recipe-room-mic", "precision": "bf16"}
CLASS_SETS = tuple(SUBSET_CLASSES)  # `--from esc50`: the best run trained on that class set
HEAD = "head."  # the layer that is replaced: a model that can be taught names its classifier `head`
SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _-]{0,39}")  # a class or folder name a person types
CLIP_SECONDS = (0.2, 30.0)  # a teaching clip is one sound, not a recording session
# Written into each collection folder that teaching makes: only such a folder gets clips added or classes removed
# from a browser, so a collection named like a dataset ("esc50") can never write into it or delete its audio/.
COLLECTION_MARK = ".audioclf-collection"
CLIP_FILE = re.compile(r"[0-9a-f]{12}\.wav")  # how `add_clip` names what it stores


def source_run(name: str, root: Path | None = None) -> Run:
    """The run that `--from NAME` means: a class set (`esc10`, `esc50`: the best run of that set by
    validation accuracy that was trained from scratch, in `root`, else among the runs shipped with audioclf),
    a run folder name in either store, or a run folder's path. ConfigError("from") says what was looked for.

    From scratch: a class set names the run the shipped ESC-10 default was taught from, so that `--from esc50`
    keeps giving its recipe when a taught ESC-50 run (the ESC-50 default since 2026-11-29) scores higher, and
    teaching never silently starts from a model that was itself taught."""
    from .runs import best, class_set, evaluated

    where_to_look = stores(root)
    if name in CLASS_SETS:
        for where in where_to_look:
            runs = [r for r in evaluated(where)
                    if class_set(r) == name and not r.config.init and r.is_complete() and _teachable(r)]
            if runs:
                return best(runs)
        raise ConfigError("from", f"no trained {name} run to start from in {' or '.join(map(str, where_to_look))}; "
                                  f"train one (`python -m audioclf train --subset {name} --model logmel-cnn`) "
                                  "or name a run folder")
    candidates = [Path(name).expanduser()] + [where / name for where in where_to_look]
    for path in candidates:
        run = Run(path)
        if run.config_file.is_file():
            if not run.folds_with_weights():
                raise ConfigError("from", f"{path}: the run has no trained fold model yet")
            if not _teachable(run):
                raise ConfigError("from", f"{path}: a {run.config.model} model cannot be taught "
                                          "(it has no `head` layer); use a log-mel run")
            return run
    raise ConfigError("from", f"{name!r} is neither {' nor '.join(CLASS_SETS)} nor a run folder "
                              f"(looked in {', '.join(map(str, where_to_look))})")


def stores(root: Path | None = None) -> list[Path]:
    """Where `--from` looks: the checkpoint store in use, then the runs shipped with audioclf."""
    return [p for p in dict.fromkeys([Path(root) if root else store.checkpoints_dir(), SHIPPED]) if p.is_dir()]


def init_name(source: Run, root: Path | None = None) -> str:
    """How a taught config names its source (`TrainConfig.init`): the run's folder name when it is in
    one of the `stores` (so the config's key does not depend on where audioclf is installed), else
    its full path."""
    in_store = source.path.parent.resolve() in {p.resolve() for p in stores(root)}
    return source.name if in_store else str(source.path.resolve())


def _teachable(run: Run) -> bool:
    from .models import MODELS

    spec = MODELS.get(run.config.model)
    return spec is not None and getattr(spec.cls, "takes_waveform", False)


def source_fold(run: Run, fold: int | None = None) -> int:
    """The source run's fold model to start fold `fold` from: the source's model of the same fold
    when it has one, else the one best on its own validation fold. Same-numbered folds keep
    validation honest when the source trained on the same clips (ESC-10 taught from ESC-50: fold
    k's validation clips were unseen by the ESC-50 fold-k model too)."""
    have = run.folds_with_weights()
    if fold in have:
        return fold
    folds = (run.results() or {}).get("folds") or {}
    val_acc = lambda f: folds.get(str(f), {}).get("training", {}).get("val_acc", -1.0)  # noqa: E731
    return max(have, key=lambda f: (val_acc(f), -f))  # ties: the lowest fold


@dataclass(frozen=True)
class Start:
    """What a taught fold model starts from (float32): the source's weights but its head, and the
    head's rows for the classes the source already knows, by name."""

    trunk: dict[str, torch.Tensor]
    head: dict[str, torch.Tensor]  # the source's head, rows in the source's class order
    rows: tuple[tuple[int, int], ...] = ()  # (row in the taught head, row in the source's)


def start_state(run: Run, fold: int | None = None, classes: tuple[str, ...] | list[str] = ()) -> Start:
    """The start of taught fold `fold` (see `source_fold`) for `classes`. A class the source knows
    keeps its head row (ESC-10's ten from ESC-50's fifty: the taught model starts out as the source
    restricted to them); a new class gets a freshly initialised row."""
    ckpt = run.load_weights(source_fold(run, fold))
    state = store.float_state(ckpt)
    known = list(ckpt.get("classes") or ())
    return Start(trunk={k: v for k, v in state.items() if not k.startswith(HEAD)},
                 head={k: v for k, v in state.items() if k.startswith(HEAD)},
                 rows=tuple((i, known.index(c)) for i, c in enumerate(classes) if c in known))


def start_from(model: torch.nn.Module, start: Start, source: str) -> None:
    """Load `start` into `model`: the trunk whole, the head's rows for the classes the source knows
    (the others stay freshly initialised); ConfigError when the architectures differ (e.g. the
    source was trained with other model options)."""
    own = model.state_dict()
    expected = {k for k in own if not k.startswith(HEAD)}
    missing, unexpected = expected - set(start.trunk), set(start.trunk) - expected
    if _adds_floor(own, start):  # the floor channel is new: its norm fresh, its first-layer weights 0
        missing = {k for k in missing if not k.startswith(FLOOR)}
        start = Start({k: _zero_channels(v, own[k]) if k in own else v for k, v in start.trunk.items()},
                      start.head, start.rows)
    if missing or unexpected:
        raise ConfigError("from", f"{source}: its model does not match ({len(missing)} missing and "
                                  f"{len(unexpected)} unexpected weights)")
    try:
        model.load_state_dict(start.trunk, strict=False)
        if start.rows:
            mine, theirs = map(list, zip(*start.rows))
            own = model.state_dict()  # shares the parameters' storage
            for k, v in start.head.items():
                own[k][mine] = v[theirs].to(own[k].dtype)
    except (RuntimeError, IndexError, KeyError) as e:
        raise ConfigError("from", f"{source}: its weights do not fit the model ({str(e)[:200]})") from None


FLOOR = "logmel.floor_norm."


def _adds_floor(own: dict[str, torch.Tensor], start: Start) -> bool:
    """Whether the model (its state `own`) has the floor channel (frontend.LogMel) and its start does not."""
    return any(k.startswith(FLOOR) for k in own) and not any(k.startswith(FLOOR) for k in start.trunk)


def _zero_channels(weight: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A conv weight (out, in, kh, kw) widened to `like`'s input channels with zeros, so that a model with a
    new input channel starts out computing what its source did; any other tensor as it is."""
    if weight.ndim != 4 or like.ndim != 4 or weight.shape[1] >= like.shape[1] or \
            (weight.shape[0], *weight.shape[2:]) != (like.shape[0], *like.shape[2:]):
        return weight
    pad = torch.zeros(weight.shape[0], like.shape[1] - weight.shape[1], *weight.shape[2:], dtype=weight.dtype)
    return torch.cat([weight, pad], 1)


def fit_folds(available: tuple[int, ...], test_fold: int, cv_folds: tuple[int, ...]) -> tuple[tuple[int, ...], str]:
    """The cross-validation folds a small folder can have, and what was done, in words ('' when
    nothing was). A class folder with fewer clips than folds has none in the test fold and maybe not
    in every other; then every fold it has is validated once (each clip is judged by the fold model
    that did not train on it) and the run has no test figure."""
    if test_fold in available and set(cv_folds) <= set(available):
        return cv_folds, ""
    have = tuple(f for f in sorted(available) if f != test_fold)
    if len(have) < 2:
        raise ConfigError("cv_folds", f"the data fill only fold(s) {list(available)}: give each class at least "
                                      "2 clips, so that every clip can be judged by a model that did not train on it")
    note = (f"the data fill folds {list(available)}: cross-validation over folds {list(have)}"
            + ("" if test_fold in available else
               f" and no test figure (fold {test_fold} is empty): each clip is judged once by the fold model "
               "that did not train on it"))
    return have, note


def taught_config(source: Run, dataset_id: str, folds: tuple[int, ...], **settings) -> TrainConfig:
    """The TrainConfig of a run taught from `source`: its model, options and preprocessing, this
    data's folds, the teaching defaults unless `settings` say otherwise."""
    from .config import TrainConfig

    src = source.config
    given = {k: v for k, v in settings.items() if v is not None}
    options = tuple({**dict(src.options), **dict(given.pop("options", ()))}.items())  # e.g. floor=1 on a run without
    return TrainConfig(model=src.model, options=options, heads=src.heads or None, prep=src.prep,
                       cv_folds=folds, dataset_id=dataset_id, **{"init": source.name, **TEACH_TRAINING, **given})


def default_epochs(config: TrainConfig) -> int:
    """The epochs a run of `config` has by default: `TEACH_TRAINING`'s when taught, else its model's
    (100 for the report's models, the recipe's own). Shipping and the results table keep to these."""
    from .config import TrainConfig

    return TEACH_TRAINING["epochs"] if config.init else TrainConfig(model=config.model).epochs


def check_name(text: str, what: str) -> str:
    """A class or folder name from a browser field: letters, digits, spaces, '_' and '-', 1 to 40
    characters, not starting with a symbol (so it is a plain folder name, never a path)."""
    name = text.strip()
    if not NAME.fullmatch(name):
        raise UserError(f"{what} {name!r}: use 1 to 40 letters, digits, spaces, '_' or '-', starting with a "
                        "letter or digit")
    return name


def collection_folder(root: Path, name: str) -> Path:
    """The folder of the collection `name` under `root`: a new one, or one that teaching made (marked, or, from
    before the mark, holding only class folders of clips as `add_clip` names them). Any other folder, such as a
    downloaded ESC-50 or a dataset of one's own, is refused with a UserError, so it is never written to."""
    folder = root / check_name(name, "collection name")
    if not folder.exists() or (folder / COLLECTION_MARK).is_file():
        return folder
    if not _made_before_the_mark(folder):
        raise UserError(f"{folder}: this folder exists and was not made by teaching (a dataset?), so it is left "
                        "as it is; choose another collection name")
    return folder


def _made_before_the_mark(folder: Path) -> bool:
    """Whether an unmarked folder holds only what teaching writes: class folders of `add_clip`'s clips, and the
    folds file that opening it as a dataset adds."""
    from .data import FOLDS_FILE

    def teaching_wrote(entry: Path) -> bool:
        if entry.is_file():
            return entry.name == FOLDS_FILE
        return entry.is_dir() and all(CLIP_FILE.fullmatch(f.name) for f in entry.iterdir())

    try:
        return folder.is_dir() and all(teaching_wrote(e) for e in folder.iterdir())
    except OSError:
        return False


def remove_class(folder: Path, label: str) -> None:
    """Delete a class and its clips from a collection (`collection_folder`)."""
    import shutil

    if not (folder / COLLECTION_MARK).is_file():
        raise UserError(f"{folder}: not a collection made by teaching; nothing removed")
    shutil.rmtree(folder / check_name(label, "class name"))


def add_clip(folder: Path, label: str, data: bytes, name: str) -> Path:
    """Decode an uploaded or recorded clip and store it as `folder/label/<hash>.wav` (mono, 16-bit,
    its own rate): the upload's bytes and name are never written as they came. A clip already there
    (same audio) is not added twice. AudioError/UserError name the file and the problem."""
    import soundfile as sf

    from .audio import AudioError, stream_audio
    from .features import to_mono

    label = check_name(label, "class name")
    low, high = CLIP_SECONDS
    sr, blocks = stream_audio(data, name=name, block_seconds=high)
    kept, seconds = [], 0.0
    for b in blocks:  # block by block: a long upload is refused without being decoded whole
        kept.append(to_mono(b).numpy())  # as prediction hears it: the loudest channel
        seconds += b.shape[1] / sr
        if seconds > high:
            break
    if not low <= seconds <= high:
        length = f"longer than {high:g} s" if seconds > high else f"{seconds:.1f} s long"
        raise AudioError(f"{name}: {length}; a clip to teach with should hold one sound, {low:g} to {high:g} s "
                         "(cut a long recording into clips)")
    mono = np.clip(np.concatenate(kept), -1.0, 1.0)
    digest = hashlib.sha256(mono.tobytes()).hexdigest()[:12]
    path = folder / label / f"{digest}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    (folder / COLLECTION_MARK).touch()
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        sf.write(tmp, mono, sr, subtype="PCM_16", format="WAV")
        tmp.replace(path)
    return path


def clip_counts(folder: Path) -> dict[str, int]:
    """Clips per class sub-folder of a teaching folder (empty when it does not exist yet)."""
    from .audio import AUDIO_EXTENSIONS

    if not folder.is_dir():
        return {}
    return {d.name: n for d in sorted(folder.iterdir()) if d.is_dir() and not d.name.startswith(".")
            if (n := sum(f.suffix.lower() in AUDIO_EXTENSIONS for f in d.iterdir()))}


def readiness(counts: dict[str, int]) -> str:
    """'' when a folder can be taught, else what is missing, in words."""
    if len(counts) < 2:
        return "add clips of at least two classes"
    few = [c for c, n in counts.items() if n < 2]
    if few:
        return f"give each class at least 2 clips ({', '.join(few)} {'has' if len(few) == 1 else 'have'} 1)"
    return ""
