"""Teaching a folder of one's own clips: start from a trained run's front end and trunk, new head.

`python -m audioclf train --data DIR --from esc50` trains a run like any other (same store, same
fold models, same pages); what differs is that each fold model starts from a source run's weights
(all but its `head` layer) and that the training defaults are short (`TEACH_TRAINING`). A folder
too small for five folds is cross-validated over the folds it has (`fit_folds`), never silently.
"""
from __future__ import annotations

from pathlib import Path

import torch

from . import store
from .errors import ConfigError
from .store import Run

# Fine-tuning defaults (the recipe's augmentation and precision; a tenth of its epochs). Chosen with
# bench/kshot.py on ESC-50 classes, validation clips only (see docs/results.md).
TEACH_TRAINING = {"epochs": 30, "lr": 1e-3, "weight_decay": 0.05, "optimizer": "adamw", "schedule": "onecycle",
                  "label_smoothing": 0.05, "augment": "recipe", "precision": "bf16"}
CLASS_SETS = ("esc10", "esc50")  # `--from esc50`: the best run trained on that class set
HEAD = "head."  # the layer that is replaced: a model that can be taught names its classifier `head`
SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints"


def source_run(name: str, root: Path | None = None) -> Run:
    """The run that `--from NAME` means: a class set (`esc10`, `esc50`: the best run of that set by
    validation accuracy, in `root`, else among the runs shipped with audioclf), a run folder name in
    either store, or a run folder's path. ConfigError("from") says what was looked for."""
    from .runs import best, evaluated

    stores = [p for p in dict.fromkeys([Path(root) if root else store.checkpoints_dir(), SHIPPED]) if p.is_dir()]
    if name in CLASS_SETS:
        for where in stores:
            runs = [r for r in evaluated(where) if r.config.dataset_id.startswith(f"{name}-")
                    and r.is_complete() and _teachable(r)]
            if runs:
                return best(runs)
        raise ConfigError("from", f"no trained {name} run to start from in {' or '.join(map(str, stores))}; "
                                  f"train one (`python -m audioclf train --subset {name} --model logmel-cnn`) "
                                  "or name a run folder")
    candidates = [Path(name).expanduser()] + [where / name for where in stores]
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
                              f"(looked in {', '.join(map(str, stores))})")


def _teachable(run: Run) -> bool:
    from .models import MODELS

    spec = MODELS.get(run.config.model)
    return spec is not None and getattr(spec.cls, "takes_waveform", False)


def source_fold(run: Run) -> int:
    """The source run's fold model to start from: the one best on its own validation fold."""
    folds = (run.results() or {}).get("folds") or {}
    done = run.folds_with_weights()
    scored = [(folds.get(str(f), {}).get("training", {}).get("val_acc", -1.0), -f) for f in done]
    return -max(scored)[1]


def trunk_state(run: Run, fold: int | None = None) -> dict[str, torch.Tensor]:
    """The source fold model's weights without its head, as float32."""
    ckpt = run.load_weights(fold if fold is not None else source_fold(run))
    return {k: v.float() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()
            if not k.startswith(HEAD)}


def start_from(model: torch.nn.Module, trunk: dict[str, torch.Tensor], source: str) -> None:
    """Load `trunk` into `model`, whose head stays freshly initialised; ConfigError when the
    architectures differ (e.g. the source was trained with other model options)."""
    expected = {k for k in model.state_dict() if not k.startswith(HEAD)}
    missing, unexpected = expected - set(trunk), set(trunk) - expected
    if missing or unexpected:
        raise ConfigError("from", f"{source}: its model does not match ({len(missing)} missing and "
                                  f"{len(unexpected)} unexpected weights)")
    try:
        model.load_state_dict(trunk, strict=False)
    except RuntimeError as e:
        raise ConfigError("from", f"{source}: its weights do not fit the model ({str(e)[:200]})") from None


def fit_folds(available: tuple[int, ...], test_fold: int, cv_folds: tuple[int, ...]) -> tuple[tuple[int, ...], str]:
    """The cross-validation folds a small folder can have, and what was done, in words ('' when
    nothing was). A class folder with fewer clips than folds has none in the test fold and maybe not
    in every other; then every fold it has is validated once (each clip is judged by the fold model
    that did not train on it) and the run has no test figure."""
    have = tuple(f for f in cv_folds if f in available)
    if len(have) == len(cv_folds) and test_fold in available:
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
