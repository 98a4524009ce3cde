"""The checkpoint store: the one place that knows where a run's files live and what they hold.

Layout, one entry per training config (named by its label and hash):

    checkpoints/<label>-<key>/
        config.json            the TrainConfig
        progress.json          live status for the app (see audioclf.train.Progress)
        results.json           evaluation on the test fold (see audioclf.evaluate)
        job.json, train.log    the training process, when launched as a job (see audioclf.jobs)
        .train.lock            held by the one process that trains this run
        fold<k>/best.pt        weights at the best validation epoch
        fold<k>/final.pt       weights after the last epoch
        fold<k>/history.json   per-epoch train/val loss and accuracy, seconds
        fold<k>/resume.pt      model, optimiser and RNG state after the last completed epoch
                               (removed when the fold is done)

`Run` is the only code that spells these names. Every file is written to a temporary name in the
same folder and renamed into place, so a crash never leaves a half-written file behind; every
`.pt` file has a SHA-256 beside it (`best.pt.sha256`) that is checked on every load, and is loaded as
plain tensors only, so a corrupted or crafted checkpoint is refused by name, never used.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Iterator

import torch

from .config import TrainConfig
from .errors import CheckpointError, UserError

WEIGHTS = ("best", "final")


class RunBusy(UserError):
    """Another process is training this run; `pid` is that process when known."""

    def __init__(self, message: str, pid: int | None = None) -> None:
        super().__init__(message)
        self.pid = pid


def checkpoints_dir() -> Path:
    """$AUDIOCLF_CHECKPOINTS, else ./checkpoints."""
    return Path(os.environ.get("AUDIOCLF_CHECKPOINTS", "checkpoints")).expanduser()


# --- files -----------------------------------------------------------------------------------------

def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise UserError(f"{path}: cannot write ({e.strerror or e}); free some space or choose another "
                        "checkpoint folder (AUDIOCLF_CHECKPOINTS)") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=1, sort_keys=True).encode())


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return default


def checksum_file(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def save_torch(obj: Any, path: Path) -> None:
    """torch.save, atomically, with its SHA-256 beside it."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    data = buf.getvalue()
    atomic_write_bytes(path, data)
    atomic_write_bytes(checksum_file(path), hashlib.sha256(data).hexdigest().encode())


def read_bytes(path: Path, error: type[Exception] = CheckpointError, what: str = "checkpoint") -> bytes:
    """A file's bytes; `error` names the file when it is missing or unreadable."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except OSError as e:
        raise error(f"{path}: cannot read ({e.strerror or e})") from None


def load_torch(path: Path) -> Any:
    """A checkpoint's contents: checked against its SHA-256, then unpickled as tensors and plain
    containers only. CheckpointError names the file when it is missing, altered or unreadable."""
    data = read_bytes(path)
    expected = checksum_file(path)
    if not expected.is_file():
        raise CheckpointError(f"{path}: no checksum beside it ({expected.name}); it was not written by "
                              "audioclf or was interrupted, so it is not trusted")
    if hashlib.sha256(data).hexdigest() != expected.read_text().strip():
        raise CheckpointError(f"{path}: the file does not match its checksum (corrupted or altered)")
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError, RuntimeError (bad zip), EOFError, ...: all "unusable"
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise CheckpointError(f"{path}: not a readable checkpoint of plain tensors ({first})") from None


def set_aside(path: Path) -> Path:
    """Move a bad file (and its checksum) out of the way as `<name>.bad`, for the user to inspect."""
    bad = path.with_name(path.name + ".bad")
    with contextlib.suppress(FileNotFoundError):
        path.replace(bad)
    checksum_file(path).unlink(missing_ok=True)
    return bad


def model_from_checkpoint(ckpt: dict, device: torch.device | str = "cpu") -> torch.nn.Module:
    """Rebuild a model from a checkpoint's contents alone (its stored ModelConfig), in eval mode."""
    from .models import build_model, config_from_dict

    try:
        model = build_model(config_from_dict(ckpt["model_config"]))
        model.load_state_dict(float_state(ckpt))
    except (KeyError, TypeError, RuntimeError, AttributeError) as e:
        raise CheckpointError(f"not a model checkpoint of this version ({type(e).__name__}: {str(e)[:200]})") from None
    return model.to(device).eval()


def load_model(path: Path, device: torch.device | str = "cpu") -> torch.nn.Module:
    """The model of one checkpoint file, in eval mode."""
    ckpt = load_torch(path)  # names the file when it fails
    try:
        return model_from_checkpoint(ckpt, device)
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None


def float_state(ckpt: dict) -> dict[str, torch.Tensor]:
    """A checkpoint's weights in float32, however they are stored (float32, float16, or int8 with a
    scale per output channel: see `quantized`)."""
    scales = ckpt.get("scales") or {}
    return {k: v.float() * scales[k].float() if k in scales else (v.float() if v.is_floating_point() else v)
            for k, v in ckpt["state_dict"].items()}


def quantized(ckpt: dict) -> dict:
    """A checkpoint with its convolution and linear weights stored as int8, symmetric, one float32
    scale per output channel (a quarter of float32's size), and the other floats in float16."""
    state, scales = {}, {}
    for k, v in float_state(ckpt).items():
        if v.is_floating_point() and v.dim() >= 2 and k.endswith(".weight"):  # conv and linear layers
            scale = v.abs().amax(dim=tuple(range(1, v.dim())), keepdim=True).clamp_min(1e-12) / 127
            state[k], scales[k] = torch.round(v / scale).to(torch.int8), scale
        else:
            state[k] = v.half() if v.is_floating_point() else v
    return {**ckpt, "state_dict": state, "scales": scales, "storage": "int8"}


def halved(ckpt: dict) -> dict:
    """A checkpoint with its weights stored in float16 (`model_from_checkpoint` restores float32)."""
    state = {k: v.half() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()}
    return {**ckpt, "state_dict": state, "storage": "float16"}


# --- runs ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FoldModel:
    """A fold's trained model (eval mode) and what its checkpoint says about it."""

    model: torch.nn.Module
    classes: tuple[str, ...]
    fold: int
    epoch: int
    meta: dict


class Run:
    """One run's folder: every file name in it, whether its folds are done, and its fold models."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @classmethod
    def of(cls, config: TrainConfig, root: Path | None = None) -> "Run":
        """The entry of `config` in the store at `root` (default: `checkpoints_dir()`)."""
        run = cls((root or checkpoints_dir()) / f"{config.label}-{config.key()}")
        run.__dict__["config"] = config  # known already: no need for config.json to exist yet
        return run

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def root(self) -> Path:
        return self.path.parent

    # file names
    @property
    def config_file(self) -> Path:
        return self.path / "config.json"

    @property
    def progress_file(self) -> Path:
        return self.path / "progress.json"

    @property
    def results_file(self) -> Path:
        return self.path / "results.json"

    @property
    def job_file(self) -> Path:
        return self.path / "job.json"

    @property
    def log_file(self) -> Path:
        return self.path / "train.log"

    def fold_dir(self, fold: int) -> Path:
        return self.path / f"fold{fold}"

    def weights_file(self, fold: int, which: str = "best") -> Path:
        if which not in WEIGHTS:
            raise ValueError(f"which weights: {which!r}, not one of {', '.join(WEIGHTS)}")
        return self.fold_dir(fold) / f"{which}.pt"

    def ranges_file(self, fold: int) -> Path:
        return self.fold_dir(fold) / "int8.pt"

    def history_file(self, fold: int) -> Path:
        return self.fold_dir(fold) / "history.json"

    def resume_file(self, fold: int) -> Path:
        return self.fold_dir(fold) / "resume.pt"

    # config and results
    def exists(self) -> bool:
        return self.config_file.is_file()

    @cached_property
    def config(self) -> TrainConfig:
        """The run's TrainConfig (UserError names the file when it is missing or unreadable)."""
        try:
            return TrainConfig.from_dict(json.loads(self.config_file.read_text()))
        except FileNotFoundError:
            raise UserError(f"{self.path}: not a run folder (no config.json)") from None
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
            raise UserError(f"{self.config_file}: unreadable run config ({str(e)[:200]})") from None

    def write_config(self, config: TrainConfig) -> None:
        write_json(self.config_file, config.to_dict())

    def results(self) -> dict | None:
        """results.json, or None before the first evaluation."""
        return read_json(self.results_file)

    def write_results(self, results: dict) -> None:
        write_json(self.results_file, results)

    def progress(self) -> dict:
        return read_json(self.progress_file, {}) or {}

    def write_progress(self, progress: dict) -> None:
        write_json(self.progress_file, progress)

    def job_record(self) -> dict:
        return read_json(self.job_file, {}) or {}

    def write_job_record(self, record: dict) -> None:
        write_json(self.job_file, record)

    # folds
    def history(self, fold: int) -> list[dict]:
        return read_json(self.history_file(fold), []) or []

    def write_history(self, fold: int, history: list[dict]) -> None:
        write_json(self.history_file(fold), history)

    def histories(self) -> dict[int, list[dict]]:
        """Per validation fold, its per-epoch history so far (folds without one are left out)."""
        return {f: h for f in self.config.cv_folds if (h := self.history(f))}

    def fold_complete(self, fold: int) -> bool:
        """The fold's model (best.pt) and history are on disk (`check_fold` also verifies the weights).
        final.pt, the last epoch's weights, is written too but may be left out of a shipped run."""
        return self.weights_file(fold, "best").is_file() and self.history_file(fold).is_file()

    def folds_done(self) -> list[int]:
        return [f for f in self.config.cv_folds if self.fold_complete(f)]

    def folds_with_weights(self, which: str = "best") -> list[int]:
        return [f for f in self.config.cv_folds if self.weights_file(f, which).is_file()]

    def is_complete(self, folds: list[int] | tuple[int, ...] | None = None) -> bool:
        """The given folds (default: all) are trained and the run has been evaluated."""
        return all(self.fold_complete(f) for f in (folds or self.config.cv_folds)) and self.results_file.is_file()

    def check_fold(self, fold: int) -> str | None:
        """None when the fold's weights load and match their checksums; else what is wrong, after
        setting the bad files aside so that the fold trains again."""
        problems = []
        for which in WEIGHTS:
            path = self.weights_file(fold, which)
            if which != "best" and not path.is_file():
                continue  # optional (see fold_complete)
            try:
                load_torch(path)
            except CheckpointError as e:
                set_aside(path)
                problems.append(str(e))
        return "; ".join(problems) or None

    def save_weights(self, fold: int, which: str, checkpoint: dict) -> None:
        save_torch(checkpoint, self.weights_file(fold, which))

    def load_weights(self, fold: int, which: str = "best") -> dict:
        return load_torch(self.weights_file(fold, which))

    def fold_model(self, fold: int, which: str = "best", device: torch.device | str = "cpu") -> FoldModel:
        """A fold's model and metadata, read from one load of its checkpoint."""
        path = self.weights_file(fold, which)
        ckpt = load_torch(path)
        try:
            model = model_from_checkpoint(ckpt, device)
        except CheckpointError as e:
            raise CheckpointError(f"{path}: {e}") from None
        meta = {k: v for k, v in ckpt.items() if k != "state_dict"}
        return FoldModel(model, tuple(meta.get("classes", ())), fold, int(meta.get("epoch", 0)), meta)

    def save_ranges(self, fold: int, ranges: dict[str, torch.Tensor]) -> None:
        """The int8 activation ranges of the fold's best weights (`int8.measure`), tied to those weights' checksum."""
        save_torch({"weights_sha256": self._best_sha256(fold), "ranges": ranges}, self.ranges_file(fold))

    def load_ranges(self, fold: int) -> dict[str, torch.Tensor] | None:
        """The fold's int8 activation ranges, or None where there are none or they were measured on other
        weights than its best.pt now holds. CheckpointError names the file when it is unusable."""
        path = self.ranges_file(fold)
        if not path.is_file():
            return None
        again = (f"; `python -m audioclf calibrate --run {self.path} --data DATA` measures them again, or delete "
                 "it to predict in float32")
        try:
            stored = load_torch(path)
        except CheckpointError as e:
            raise CheckpointError(f"{e}{again}") from None
        if not isinstance(stored, dict) or not isinstance(stored.get("ranges"), dict):
            raise CheckpointError(f"{path}: not audioclf's int8 ranges{again}")
        return stored["ranges"] if stored.get("weights_sha256") == self._best_sha256(fold) else None

    def _best_sha256(self, fold: int) -> str | None:
        sums = checksum_file(self.weights_file(fold, "best"))
        return sums.read_text().strip() if sums.is_file() else None

    def weights_stamp(self, which: str = "best") -> str:
        """Changes whenever a fold's weights change (a cache key for loaded models)."""
        parts = []
        for f in self.config.cv_folds:
            for p in (self.weights_file(f, which), self.ranges_file(f)):
                if p.is_file():
                    parts.append(f"{f}:{p.name}:{p.stat().st_mtime_ns}")
        return "|".join(parts)

    # resuming
    def save_resume(self, fold: int, state: dict) -> None:
        save_torch(state, self.resume_file(fold))

    def load_resume(self, fold: int) -> dict | None:
        """The state after the fold's last completed epoch; None when there is none. A bad file
        raises CheckpointError after being set aside (the fold then starts afresh)."""
        path = self.resume_file(fold)
        if not path.is_file():
            return None
        try:
            return load_torch(path)
        except CheckpointError:
            set_aside(path)
            raise

    def clear_resume(self, fold: int) -> None:
        self.resume_file(fold).unlink(missing_ok=True)
        checksum_file(self.resume_file(fold)).unlink(missing_ok=True)

    # one trainer at a time
    @contextlib.contextmanager
    def training_lock(self) -> Iterator[None]:
        """Held while a process trains this run; a second one gets RunBusy at once (POSIX flock, so
        it is released when the process dies, however it dies)."""
        self.path.mkdir(parents=True, exist_ok=True)
        try:
            import fcntl
        except ImportError:  # not POSIX: no cross-process lock
            yield
            return
        lock = self.path / ".train.lock"
        with open(lock, "a+") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.seek(0)
                pid = f.read().strip()
                raise RunBusy(f"{self.name} is already being trained (process {pid or 'unknown'})",
                              int(pid) if pid.isdigit() else None) from None
            f.seek(0)
            f.truncate()
            f.write(str(os.getpid()))
            f.flush()
            try:
                yield
            finally:
                f.truncate(0)
                fcntl.flock(f, fcntl.LOCK_UN)

    def delete(self) -> None:
        """Remove the run folder and everything in it. Under the training lock (a run being trained raises
        RunBusy), the folder is first renamed to a hidden name, so that no listing ever shows half a run,
        even if the removal is interrupted (`list_runs` skips hidden folders; the next delete clears them)."""
        if self.path.is_symlink() or not self.config_file.is_file():
            raise UserError(f"{self.path} is not a run folder (no config.json in it); nothing was deleted")
        for stale in self.path.parent.glob(".deleted-*"):  # earlier deletes that were interrupted
            shutil.rmtree(stale, ignore_errors=True)
        with self.training_lock():
            gone = self.path.with_name(f".deleted-{self.name}-{os.getpid()}")
            os.replace(self.path, gone)
        shutil.rmtree(gone, ignore_errors=True)

    def is_training(self) -> bool:
        """Whether some process holds the training lock right now."""
        try:
            import fcntl
        except ImportError:
            return False
        lock = self.path / ".train.lock"
        if not lock.is_file():
            return False
        with open(lock) as f:
            try:
                fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(f, fcntl.LOCK_UN)
        return False


def store_stamp(root: Path | None = None) -> tuple:
    """Changes whenever the answer of a run query (`audioclf.runs`: the run lists, `describe`) can
    change: the store's run folders with the modification times of their config.json, results.json
    and fold folders.

    Every file in the store is written to a temporary name and renamed into place (`atomic_write_bytes`),
    which changes its folder's modification time, so a new, removed or rewritten best.pt, final.pt or
    history.json shows in its fold folder's time. A few dozen stat calls (under a millisecond for the
    reference store), against parsing every run's config.json and results.json (7-40 ms per query,
    measured with bench/load.py): a key for caching the queries."""
    root = root or checkpoints_dir()
    try:
        folders = sorted((e for e in os.scandir(root) if e.is_dir() and not e.name.startswith(".")),
                         key=lambda e: e.name)
    except OSError:
        return ()
    out = []
    for entry in folders:
        run = Run(entry.path)
        row: list = [entry.name]
        for path in (run.config_file, run.results_file):
            try:
                row.append(path.stat().st_mtime_ns)
            except OSError:
                row.append(None)
        if row[1] is None:  # not a run folder (yet)
            continue
        try:
            row += sorted((e.name, e.stat().st_mtime_ns) for e in os.scandir(entry.path)
                          if e.name.startswith("fold") and e.is_dir())
        except OSError:
            pass
        out.append(tuple(row))
    return tuple(out)


def list_runs(root: Path | None = None) -> list[Run]:
    """The runs in the store, newest first."""
    root = root or checkpoints_dir()
    if not root.is_dir():
        return []
    runs = [Run(d) for d in root.iterdir() if not d.name.startswith(".") and (d / "config.json").is_file()]
    return sorted(runs, key=lambda r: r.config_file.stat().st_mtime, reverse=True)
