"""The checkpoint store: the one place that knows where a run's files live.

Layout, one entry per training config (named by its label and hash):

    checkpoints/<label>-<key>/
        config.json            the TrainConfig
        progress.json          live status for the app (see audioclf.train.Progress)
        results.json           evaluation on the test fold (see audioclf.evaluate)
        train.log              the training process's output, when launched as a job
        fold<k>/best.pt        weights at the best validation epoch
        fold<k>/final.pt       weights after the last epoch
        fold<k>/history.json   per-epoch train/val loss and accuracy, seconds
        fold<k>/resume.pt      model, optimiser and RNG state after the last completed epoch
                               (removed when the fold is done)

Every file is written to a temporary name in the same folder and renamed into place, so a crash
never leaves a half-written file behind.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from .config import TrainConfig
from .errors import CheckpointError


def checkpoints_dir() -> Path:
    """$AUDIOCLF_CHECKPOINTS, else ./checkpoints."""
    return Path(os.environ.get("AUDIOCLF_CHECKPOINTS", "checkpoints")).expanduser()


def run_dir(config: TrainConfig, root: Path | None = None) -> Path:
    return (root or checkpoints_dir()) / f"{config.label}-{config.key()}"


def fold_dir(config: TrainConfig, fold: int, root: Path | None = None) -> Path:
    return run_dir(config, root) / f"fold{fold}"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=1, sort_keys=True).encode())


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return default


def save_torch(obj: Any, path: Path) -> None:
    """torch.save, atomically."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_torch(path: Path) -> Any:
    """torch.load of tensors and plain containers only: a pickle that would run code, a truncated or
    otherwise unreadable file raises CheckpointError naming the file."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: checkpoint not found") from None
    except Exception as e:  # UnpicklingError, RuntimeError (bad zip), EOFError, ...: all "unusable"
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise CheckpointError(f"{path}: not a readable checkpoint of plain tensors ({first})") from None


def fold_complete(config: TrainConfig, fold: int, root: Path | None = None) -> bool:
    d = fold_dir(config, fold, root)
    return (d / "best.pt").is_file() and (d / "final.pt").is_file() and (d / "history.json").is_file()


def list_runs(root: Path | None = None) -> list[Path]:
    """Entry folders under the store, newest first."""
    root = root or checkpoints_dir()
    if not root.is_dir():
        return []
    runs = [d for d in root.iterdir() if (d / "config.json").is_file()]
    return sorted(runs, key=lambda d: (d / "config.json").stat().st_mtime, reverse=True)


def load_config(run: Path) -> TrainConfig:
    return TrainConfig.from_dict(json.loads((run / "config.json").read_text()))


def load_model(path: Path, device: torch.device | str = "cpu") -> torch.nn.Module:
    """Rebuild a model from a checkpoint file alone (its stored ModelConfig), in eval mode."""
    return model_from_checkpoint(load_torch(path), device)


def model_from_checkpoint(ckpt: dict, device: torch.device | str = "cpu") -> torch.nn.Module:
    from .models import ModelConfig, build_model

    model = build_model(ModelConfig(**ckpt["model_config"]))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()})
    return model.to(device).eval()


def load_torch_meta(path: Path) -> dict:
    """A checkpoint's metadata without its weights."""
    return {k: v for k, v in load_torch(path).items() if k != "state_dict"}


def halved(ckpt: dict) -> dict:
    """A checkpoint with its weights stored in float16 (`model_from_checkpoint` restores float32)."""
    state = {k: v.half() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()}
    return {**ckpt, "state_dict": state, "storage": "float16"}
