"""Cross-validated training with a per-fold checkpoint cache.

`train_run` trains each validation fold in turn (the test fold is never touched), skips folds that
are already complete, resumes a fold from its last completed epoch, and finally evaluates the fold
models on the test fold. Progress goes to a tqdm bar and to `progress.json` in the run folder.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from . import int8, store
from .allocator import keep_freed_memory
from .augment import AUGMENTS, AugConfig, augment_batch, choose_crop
from .config import TrainConfig
from .cuda_graphs import GraphedSteps, exclusive
from .device import channels_last, runs_bf16
from .distributed import SINGLE, Dist
from .errors import CheckpointError
from .features import model_input
from .inference import predict_logits
from .models import build_model
from .prepare import Prepared
from .store import Run


@dataclass
class Progress:
    """Live status of a run, mirrored to `progress.json` for the app to poll."""

    run: Run
    folds: list[int]
    epochs: int
    status: str = "running"
    fold: int | None = None
    epoch: int = 0
    started: float = field(default_factory=time.time)
    epoch_seconds: list[float] = field(default_factory=list)
    message: str = ""
    enabled: bool = True  # False in the processes of a torchrun other than rank 0
    batch: tuple[int, int] = (0, 0)  # batches done of the epoch under way, and how many it has
    epoch_started: float = field(default_factory=time.time)
    _written: float = 0.0

    def update(self, **changes: Any) -> None:
        for k, v in changes.items():
            setattr(self, k, v)
        if self.enabled:
            self.run.write_progress(self.as_dict())

    def batch_done(self, fold: int, epoch: int, done: int, of: int) -> None:
        """Batch by batch within an epoch, so that the bar and the ETA move; written at most once a second."""
        if done == 1:
            self.epoch_started = time.time()
        self.fold, self.epoch, self.batch = fold, epoch - 1, (done, of)
        self._write_at_most_every_second()

    def _write_at_most_every_second(self) -> None:
        if self.enabled and time.time() - self._written >= 1.0:
            self._written = time.time()
            self.run.write_progress(self.as_dict())

    def as_dict(self) -> dict[str, Any]:
        done, of = self.batch
        partial = done / of if of and self.status == "running" else 0.0  # of the epoch under way
        done_epochs = self._epochs_done() + partial
        total = len(self.folds) * self.epochs
        recent = self.epoch_seconds[-10:]
        per_epoch = (sum(recent) / len(recent) if recent
                     else (time.time() - self.epoch_started) / partial if partial else None)
        eta = (total - done_epochs) * per_epoch if per_epoch is not None else None
        return {
            "status": self.status, "pid": os.getpid(), "folds": self.folds, "fold": self.fold,
            "epoch": self.epoch, "epochs": self.epochs, "epochs_done": done_epochs, "epochs_total": total,
            "batch": list(self.batch), "fraction": done_epochs / total if total else 1.0, "eta_s": eta,
            "started": self.started, "updated": time.time(), "message": self.message,
        }

    def _epochs_done(self) -> int:
        if self.fold is None or self.fold not in self.folds:
            return len(self.folds) * self.epochs if self.status == "done" else 0
        return self.folds.index(self.fold) * self.epochs + self.epoch


@dataclass
class SideBySideProgress(Progress):
    """`Progress` of fold models trained at once (`train_at_once`): their epochs are summed, `epoch` is the
    slowest one's, the time left is read from the wall clock, and the threads take turns. One tqdm bar for all."""

    show_bar: bool = False
    done: dict[int, float] = field(default_factory=dict)  # epochs done, by fold (a fraction within an epoch)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _bar: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._bar = tqdm(total=len(self.folds) * self.epochs, desc=f"{len(self.folds)} fold models side by side",
                         disable=not (self.show_bar and self.enabled), dynamic_ncols=True)

    def update(self, **changes: Any) -> None:
        with self._lock:
            fold, epoch = changes.pop("fold", None), changes.pop("epoch", None)
            changes.pop("batch", None)
            if fold is not None and epoch is not None:
                self.done[fold] = epoch
                self._bar.update(int(sum(self.done.values())) - self._bar.n)
            changes["epoch"] = int(min(self.done.get(f, 0) for f in self.folds))
            super().update(**changes)
            if self.status != "running":
                self._bar.close()

    def batch_done(self, fold: int, epoch: int, done: int, of: int) -> None:
        with self._lock:
            self.done[fold] = epoch - 1 + done / of
            self._write_at_most_every_second()

    def as_dict(self) -> dict[str, Any]:
        d = super().as_dict()
        done, total = d["epochs_done"], d["epochs_total"]
        d["eta_s"] = (time.time() - self.started) / done * (total - done) if done and self.status == "running" else None
        return d

    def _epochs_done(self) -> float:
        return len(self.folds) * self.epochs if self.status == "done" else sum(self.done.values())


def train_run(config: TrainConfig, prepared: Prepared, folds: list[int] | None = None,
              device: torch.device | str = "cpu", root: Path | None = None, show_bar: bool = True,
              dist: Dist = SINGLE, spread_folds: bool = False, at_once: bool = False) -> Run:
    """Train (or load from the cache) the fold models of `config`, evaluate them, return the run.

    One process trains a run at a time (`Run.training_lock`; a second gets `RunBusy`). A fold whose
    weights fail their checksum is reported, set aside and trained again. Under torchrun (`dist` from
    `Dist.from_env`), every process trains each fold on its share of each batch, or with
    `spread_folds` each process trains whole folds of its own; rank 0 evaluates and holds the lock.
    `at_once`: the folds side by side in this process (`train_at_once`; for one GPU, not reproducible bit for bit).
    """
    keep_freed_memory()
    device = dist.device(torch.device(device))
    folds = list(folds or config.cv_folds)
    config.check_folds(sorted(set(prepared.folds.tolist())), folds, need_test=False)  # callers check the test fold
    run = Run.of(config, root)
    if run.is_complete(folds) and all(_fold_usable(run, f, dist) for f in folds):
        return run  # a cache hit writes nothing, so a shipped or read-only run stays as it is
    with (run.training_lock() if dist.is_main else contextlib.nullcontext()):
        todo = [f for f in folds if not _fold_usable(run, f, dist)]
        mine = todo[dist.rank::dist.world] if spread_folds else todo
        if dist.is_main and not run.exists():
            run.write_config(config)
        side_by_side = at_once and not dist.active
        progress = (SideBySideProgress(run, todo, config.epochs, show_bar=show_bar) if side_by_side
                    else Progress(run, mine if spread_folds else folds, config.epochs, enabled=dist.is_main))
        if todo:
            try:
                if side_by_side:
                    progress.update(message=f"{len(todo)} fold models side by side")
                    train_at_once([(config, f) for f in todo], prepared, device, root, progress=progress)
                else:
                    for fold in mine:
                        train_fold(config, prepared, fold, device, root, progress, show_bar and dist.is_main,
                                   dist=SINGLE if spread_folds else dist)
                progress.update(message="evaluating on the test fold")
            except BaseException as e:
                progress.update(status="cancelled" if isinstance(e, KeyboardInterrupt) else "failed",
                                message=f"{type(e).__name__}: {e}"[:500])
                raise
            dist.barrier()
        if dist.is_main:  # past the cache hit above, there is always something to evaluate
            from .evaluate import evaluate_run  # imports scikit-learn (~1 s): only when there is work

            evaluate_run(config, prepared, root=root, device=device)
        progress.update(status="done", fold=None, message="")
        dist.barrier()
    return run


def _fold_usable(run: Run, fold: int, dist: Dist) -> bool:
    """Whether a fold is trained and its weights verify (rank 0 checks and says what was wrong)."""
    if not run.fold_complete(fold):
        return False
    problem = run.check_fold(fold) if dist.is_main else None
    if problem:
        print(f"audioclf: warning: {problem}; set aside as .bad, fold {fold} is trained again", file=sys.stderr)
    return problem is None


# On a GPU an epoch can take a tenth of a second, as long as writing its resume file: that file is then written
# once this many seconds have passed since the last (a kill costs at most this much work). On the CPU, every epoch.
RESUME_EVERY_S = 10.0


def use_cuda_graphs(config: TrainConfig, device: torch.device, dist: Dist = SINGLE) -> bool:
    """Whether `train_fold` replays its steps from CUDA graphs (`audioclf.cuda_graphs`): on a GPU, one process
    per fold model, unless AUDIOCLF_CUDA_GRAPHS=0. Background mixing draws its shift on the CPU, so it is not
    captured."""
    aug = AUGMENTS[config.augment]
    return (device.type == "cuda" and not dist.active and os.environ.get("AUDIOCLF_CUDA_GRAPHS", "1") != "0"
            and (aug is None or not aug.background_prob))


def train_fold(config: TrainConfig, prepared: Prepared, fold: int, device: torch.device,
               root: Path | None = None, progress: Progress | None = None, show_bar: bool = True,
               dist: Dist = SINGLE, graphs: bool | None = None) -> list[dict]:
    """Train on the cross-validation folds other than `fold`, validate on `fold`; returns the history.

    With an active `dist`, each process takes its slice of every batch and DistributedDataParallel
    averages the gradients (SyncBatchNorm on CUDA; on CPU each process normalises its own slice).
    `graphs`: replay the steps from CUDA graphs (None: where `use_cuda_graphs` says so).
    """
    run = Run.of(config, root)
    train_folds = [f for f in config.cv_folds if f != fold]
    x_train, y_train = (t.to(device) for t in prepared.subset(train_folds))
    y_order = y_train.cpu()  # each epoch's order is drawn on the CPU
    x_val, y_val = (t.to(device) for t in prepared.subset([fold]))

    mcfg = config.model_config(len(prepared.classes))
    model = fold_start(config, prepared.classes, fold, root)
    start = _cpu_state(model) if config.start_weight else None  # what the last epoch is averaged with
    model = model.to(device)
    if channels_last(config.precision, device):
        # 2-D convolutions channels-last: on an H100 NCHW cost the recipe's graphed step 0.124 against 0.078 s
        # (bench/gpu.py --side-by-side --kernels); see `device.channels_last` for the CPU. The report's 1-D
        # models are as they were.
        model = model.to(memory_format=torch.channels_last)
    net = _wrap(model, device, dist)  # what the training step calls
    ema = moving_average(model, config.ema)
    kept = ema.module if ema is not None else model  # what is validated and saved
    opt = make_optimizer(model, config)
    sched = make_schedule(opt, config, steps_per_epoch=math.ceil(len(y_train) / config.batch_size))
    gen = torch.Generator().manual_seed(config.seed * 1000 + fold)
    state = _resume_state(run, fold)
    history: list[dict] = []
    best = {"val_acc": -1.0, "val_loss": math.inf, "epoch": 0, "state_dict": None}
    if state:
        model.load_state_dict(state["model"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["optimizer"])
        if sched is not None:
            sched.load_state_dict(state["schedule"])
        gen.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        history, best = state["history"], state["best"]
    elif config.init:  # taught: the start itself is a candidate, so teaching never ends below it on validation
        val_loss, val_acc = validate(kept, x_val, y_val, config)
        best = {"val_acc": val_acc, "val_loss": val_loss, "epoch": 0, "state_dict": _cpu_state(kept)}

    steps = None
    if use_cuda_graphs(config, device, dist) if graphs is None else graphs:
        steps = graphed_steps(net, x_train, y_train, config, len(prepared.classes), capture=device.type == "cuda")
    last_saved = time.time()
    bar = tqdm(total=config.epochs, initial=len(history), desc=f"{config.label} fold {fold}",
               disable=not show_bar, leave=True, dynamic_ncols=True)
    for epoch in range(len(history) + 1, config.epochs + 1):
        t0 = time.time()
        perm = epoch_order(y_order, gen).to(device)  # class-balanced where the classes differ in size
        on_batch = (lambda done, of, e=epoch: progress.batch_done(fold, e, done, of)) if progress else None
        train_loss, train_acc = train_epoch(net, opt, x_train, y_train, perm, config, dist, sched,
                                            n_classes=len(prepared.classes), on_batch=on_batch, steps=steps,
                                            ema=ema)
        val_loss, val_acc = validate(kept, x_val, y_val, config)
        row = {"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc, "val_loss": val_loss,
               "val_acc": val_acc, "seconds": time.time() - t0}
        history.append(row)
        if val_acc > best["val_acc"] or (val_acc == best["val_acc"] and val_loss < best["val_loss"]):
            best = {"val_acc": val_acc, "val_loss": val_loss, "epoch": epoch, "state_dict": _cpu_state(kept)}
        if dist.is_main and (device.type != "cuda" or time.time() - last_saved >= RESUME_EVERY_S):
            last_saved = time.time()
            resume = {"model": _cpu_state(model), "optimizer": opt.state_dict(),
                      "generator": gen.get_state(), "torch_rng": torch.get_rng_state(),
                      "history": history, "best": best,
                      **({"schedule": sched.state_dict()} if sched is not None else {}),
                      **({"ema": _cpu_state(ema)} if ema is not None else {})}
            with exclusive() if device.type == "cuda" else contextlib.nullcontext():  # saving reads the optimizer's
                run.save_resume(fold, resume)                                          # GPU tensors back, as above
        if dist.is_main:
            run.write_history(fold, history)
        bar.update(1)
        bar.set_postfix(loss=f"{train_loss:.3f}", acc=f"{train_acc:.2f}", val=f"{val_acc:.2f}")
        if progress:
            progress.epoch_seconds.append(row["seconds"])
            progress.update(fold=fold, epoch=epoch, batch=(0, 0))
    bar.close()

    if not dist.is_main:
        return history
    final = _cpu_state(kept)
    if start is not None:  # no epoch chosen: the last one, averaged with the start
        best = _averaged_with_start(kept, start, final, config, x_val, y_val)
    _save_fold(run, config, mcfg.to_dict(), prepared.classes, fold, best, final)
    run.clear_resume(fold)
    int8.calibrate(run, fold, x_train)  # for int8 prediction on a CPU (`audioclf.int8`); a few seconds
    return history


def _save_fold(run: Run, config: TrainConfig, model_config: dict, classes, fold: int, best: dict,
               final: dict[str, torch.Tensor]) -> None:
    """A finished fold's weights: the kept ones (`best`: its epoch, validation figures and state) and the last epoch's."""
    meta = {"model_config": model_config, "classes": list(classes), "fold": fold, "config_key": config.key()}
    run.save_weights(fold, "best", {**meta, "epoch": best["epoch"], "val_acc": best["val_acc"],
                                    "val_loss": best["val_loss"], "state_dict": best["state_dict"]})
    run.save_weights(fold, "final", {**meta, "epoch": config.epochs, "state_dict": final})


def fold_start(config: TrainConfig, classes: tuple[str, ...] | list[str], fold: int, root: Path | None = None) -> nn.Module:
    """A fold model as training starts it: built with the fold's seed; taught (`config.init`), with the source
    run's front end and trunk and a head for `classes`."""
    with exclusive():  # not while another fold model's thread captures a CUDA graph (`train_at_once`)
        torch.manual_seed(config.seed * 1000 + fold)
        model = build_model(config.model_config(len(classes)))
    if config.init:
        from .teach import source_run, start_from, start_state

        start_from(model, start_state(source_run(config.init, root), fold, classes), config.init)
    return model


def average_with_start(trained: Run, start_weight: float, prepared: Prepared, root: Path | None = None) -> Run:
    """The run that training `trained`'s config with `start_weight` gives, made from `trained`'s finished folds
    without training again: the weight only acts after the last epoch (`train_fold`), so each fold model is
    `trained`'s last epoch (final.pt) averaged with the fold's start, validated once. Its final weights and
    history are `trained`'s."""
    config = dataclasses.replace(trained.config, start_weight=start_weight)
    missing = [f for f in config.cv_folds if not trained.weights_file(f, "final").is_file()]
    if missing:
        raise CheckpointError(f"{trained.path}: no last-epoch weights (final.pt) for fold(s) {missing}")
    run = Run.of(config, root)
    with run.training_lock():
        if not run.exists():
            run.write_config(config)
        for fold in config.cv_folds:
            final = trained.load_weights(fold, "final")
            model = fold_start(config, prepared.classes, fold, root)
            x_val, y_val = prepared.subset([fold])
            end = store.float_state(final)
            best = _averaged_with_start(model, _cpu_state(model), end, config, x_val, y_val)
            _save_fold(run, config, final["model_config"], final["classes"], fold, best, end)
            run.write_history(fold, trained.history(fold))
            int8.calibrate(run, fold, prepared.subset([f for f in config.cv_folds if f != fold])[0])
        from .evaluate import evaluate_run

        evaluate_run(config, prepared, root=root)
    return run


def average_states(start: dict[str, torch.Tensor], end: dict[str, torch.Tensor], w: float) -> dict[str, torch.Tensor]:
    """`w` x start + (1 - w) x end for every float tensor (BatchNorm's running statistics too); the rest as
    at the end.

    Why, for a taught run (`TrainConfig.start_weight`): averaging a fine-tuned model's weights with those it
    started from keeps much of what the fine-tuning added and of what it forgot (WiSE-FT, Wortsman et al.
    2022). ESC-50's run refined 15 epochs with rooms, averaged half and half with its start, on its
    validation folds: 82.0 % as is against the start's 81.6 % and the last epoch's 81.2 %; in a room 73.4 %
    against 66.7 and 75.9 %; in a hall 72.4 % against 64.4 and 75.6 % (docs/results.md)."""
    return {k: (w * start[k] + (1 - w) * v) if v.is_floating_point() else v for k, v in end.items()}


def _averaged_with_start(kept: nn.Module, start: dict[str, torch.Tensor], final: dict[str, torch.Tensor],
                         config: TrainConfig, x_val: torch.Tensor, y_val: torch.Tensor) -> dict:
    """The fold model of a run with `start_weight`: `average_states`, validated once (no choice made)."""
    state = average_states(start, final, config.start_weight)
    kept.load_state_dict(state)
    val_loss, val_acc = validate(kept, x_val, y_val, config)
    return {"val_acc": val_acc, "val_loss": val_loss, "epoch": config.epochs, "state_dict": state}


def epoch_order(y: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """The training clips of one epoch, in order: a permutation of them; where the classes differ in size, as
    many clips drawn class-balanced instead (each class equally often, its clips with replacement), so that a
    class of 2 clips beside classes of 6 is not seen a third as often. ESC's classes are equal: a permutation."""
    counts = torch.bincount(y)
    present = counts[counts > 0]
    if len(present) < 2 or bool((present == present[0]).all()):
        return torch.randperm(len(y), generator=gen)
    weights = 1.0 / counts.double()[y]
    return torch.multinomial(weights, len(y), replacement=True, generator=gen)  # WeightedRandomSampler's draw, as one tensor


def train_at_once(jobs: list[tuple[TrainConfig, int]], prepared: Prepared, device: torch.device,
                  root: Path | None = None, graphs: bool | None = None,
                  progress: SideBySideProgress | None = None) -> list[list[dict]]:
    """Train fold models side by side on one GPU, each (config, fold) of `jobs` in a thread of its own and on a
    CUDA stream of its own, so that the GPU runs one fold model's kernels while another's are being issued or
    are too small to fill it; returns each job's history. The threads share the random generators, so unlike
    `train_fold` one after another this is not reproducible bit for bit, run to run. `progress`: of one run's
    fold models."""
    from concurrent.futures import ThreadPoolExecutor

    def one(job: tuple[TrainConfig, int]) -> list[dict]:
        config, fold = job
        if device.type != "cuda":  # threads alone: only for trying it out on a CPU
            return train_fold(config, prepared, fold, device, root, progress, show_bar=False, graphs=graphs)
        with torch.cuda.stream(torch.cuda.Stream(device)):
            history = train_fold(config, prepared, fold, device, root, progress, show_bar=False, graphs=graphs)
            torch.cuda.current_stream(device).synchronize()
            return history

    with ThreadPoolExecutor(max_workers=len(jobs), thread_name_prefix="fold") as pool:
        return list(pool.map(one, jobs))


def _wrap(model: nn.Module, device: torch.device, dist: Dist) -> nn.Module:
    if not dist.active:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    if device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # converts in place
        return DDP(model, device_ids=[device.index])
    return DDP(model)


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam or AdamW; on a GPU the fused implementation (one kernel for the whole step instead of a few
    per parameter group: the same update, fewer launches)."""
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    fused = next(model.parameters()).is_cuda or None
    return cls(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=fused)


def moving_average(model: nn.Module, decay: float) -> AveragedModel | None:
    """An exponential moving average of `model`'s weights and BatchNorm statistics (None where `decay` is 0):
    after each step it moves `1 - decay` of the way to the model's. Its `.module` is a model like `model`."""
    if not decay:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def make_schedule(opt: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int):
    """None for a constant rate; "onecycle": warm up over the first 15 % of the steps to `lr`, then
    anneal (stepped once per batch)."""
    if config.schedule != "onecycle":
        return None
    return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch,
                                               pct_start=0.15, div_factor=25, final_div_factor=1e3)


def train_epoch(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                perm: torch.Tensor, config: TrainConfig, dist: Dist = SINGLE, sched=None,
                n_classes: int | None = None, on_batch=None, steps: GraphedSteps | None = None,
                ema: AveragedModel | None = None) -> tuple[float, float]:
    """One pass over the training clips in the order `perm`; (mean loss, accuracy).

    With an augmentation preset, each batch is augmented (crops, gain, mixup, ...: the loss is then
    against soft targets and the accuracy counts the dominant clip's label); with precision "bf16" the
    forward pass runs under autocast where the device computes bfloat16 natively (`device.runs_bf16`).
    The report's settings take the plain path: whole clips,
    hard labels, float32. `steps` (from `graphed_steps`, over these same `x` and `y`) runs each batch's
    forward and backward pass from a CUDA graph; the optimizer and the schedule step as usual. `ema` (from
    `moving_average`) takes in the weights after every step.
    """
    model.train()
    aug = AUGMENTS[config.augment]
    n_classes = n_classes or int(y.max()) + 1
    targets = F.one_hot(y, n_classes).float() if aug is not None and steps is None else y
    # Summed on the device and read once per epoch: a read per step (`.item()`) would make the CPU wait for
    # each step's kernels to finish before it could queue the next step's.
    total_loss = torch.zeros((), dtype=torch.float64, device=x.device)
    correct = torch.zeros((), dtype=torch.int64, device=x.device)
    seen = 0
    batches = math.ceil(len(perm) / config.batch_size)
    for i in range(0, len(perm), config.batch_size):
        idx = perm[i:i + config.batch_size].tensor_split(dist.world)[dist.rank]  # this process's slice
        crop = choose_crop(aug) if aug is not None else None  # on the CPU: it sets the batch's shape
        if steps is not None:
            steps(idx, crop)
        else:
            loss, logits, labels = batch_loss(model, x, y, targets, config, aug, idx, crop)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            total_loss += loss.detach().double() * len(idx)
            correct += (logits.argmax(1) == labels).sum()
        opt.step()
        if sched is not None:
            sched.step()
        if ema is not None:
            ema.update_parameters(_unwrapped(model))
        seen += len(idx)
        if on_batch is not None:
            on_batch(i // config.batch_size + 1, batches)
    if steps is not None:
        total_loss, correct = steps.take_totals()
    total_loss, correct, seen = dist.sum(total_loss.item(), int(correct), seen)
    return total_loss / seen, correct / seen


def batch_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, targets: torch.Tensor, config: TrainConfig,
               aug: AugConfig | None, idx: torch.Tensor, crop: float | None,
               autocast_cache: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The forward pass of the training batch `idx`: (loss, logits, labels). `targets`: the clips' one-hot
    labels where `aug` mixes them, else `y`."""
    xb, yb = x[idx], y[idx]
    target = yb
    if aug is not None:
        xb, target = augment_batch(xb, targets[idx], aug, config.prep.sample_rate, crop_s=crop)
    with torch.autocast(xb.device.type, dtype=torch.bfloat16, enabled=runs_bf16(config.precision, xb.device),
                        cache_enabled=autocast_cache):  # no cache under a CUDA graph's capture
        logits = model(model_input(_unwrapped(model), xb, config.prep))  # (B, 1, 144000) for the report's models
    return F.cross_entropy(logits.float(), target, label_smoothing=config.label_smoothing), logits, yb


def graphed_steps(model: nn.Module, x: torch.Tensor, y: torch.Tensor, config: TrainConfig, n_classes: int,
                  capture: bool = True) -> GraphedSteps:
    """`train_epoch`'s batches over the clips `x`, `y` (which must stay as they are), from CUDA graphs."""
    aug = AUGMENTS[config.augment]
    targets = F.one_hot(y, n_classes).float() if aug is not None else y
    return GraphedSteps(model, functools.partial(batch_loss, model, x, y, targets, config, aug), capture=capture)


def evaluate_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, config: TrainConfig) -> tuple[float, float]:
    # On a GPU, larger batches: fewer launches for the same work (256 clips of the report's models hold about
    # 3.6 GB of activations, measured on the CPU; the recipe's 1.6 GB).
    batch = max(config.batch_size, 256 if x.is_cuda else 64)
    logits = predict_logits(model, x, config.prep, batch_size=batch)
    y = y.cpu()
    return F.cross_entropy(logits, y).item(), (logits.argmax(1) == y).float().mean().item()


def validate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, config: TrainConfig) -> tuple[float, float]:
    """`evaluate_loss` during training. On a GPU it waits while another fold model (`train_at_once`) captures a
    CUDA graph: its read-back to the CPU is not allowed during a capture (eight fold models side by side crashed
    on it, 2026-11-27)."""
    with exclusive() if x.is_cuda else contextlib.nullcontext():
        return evaluate_loss(model, x, y, config)


def _on_cuda(tensors) -> bool:
    return any(t.is_cuda for t in tensors if isinstance(t, torch.Tensor))


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's tensors copied to the CPU (as saved always). On a GPU this reads back, as validation does, so it
    waits for another fold model's graph capture the same way (`validate`)."""
    state = model.state_dict()
    with exclusive() if _on_cuda(state.values()) else contextlib.nullcontext():
        return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in state.items()}


def _unwrapped(model: nn.Module) -> nn.Module:
    return getattr(model, "module", model)  # DistributedDataParallel keeps the model as .module


def _resume_state(run: Run, fold: int) -> dict | None:
    """The state saved after the fold's last completed epoch, or None to start the fold afresh.

    Verified and loaded as plain tensors only (a resume file that holds code is refused, never run).
    An unusable file only costs the epochs since the fold began: it is set aside as `resume.pt.bad`,
    and said so.
    """
    try:
        return run.load_resume(fold)
    except CheckpointError as e:
        print(f"audioclf: warning: {e}; set aside as resume.pt.bad, fold {fold} starts again from epoch 1",
              file=sys.stderr)
        return None
