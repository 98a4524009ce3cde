"""Prepare once, read many: decode and resample a dataset a single time and cache it as tensors.

The cache holds each clip's mono waveform at the target rate, one clip length of it (`features.read_length`:
a short sound repeated, a long recording's loudest window; ESC-10: (400, 80000) float32, 128 MB). Framing
into windows is a cheap view taken per batch, so it is not stored. The file is keyed by the dataset's file
stamp (names, sizes, mtimes) and the preprocessing settings, so any change to either builds a new one.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch

from .audio import AudioError, load_audio
from .config import PrepConfig
from .data import Dataset
from .errors import CheckpointError
from .features import fit_length, read_length, resample, to_mono
from .store import save_torch


@dataclass(frozen=True)
class Prepared:
    """A dataset as tensors: waves (N, samples) float32, labels (N,) int64, folds (N,) int64."""

    waves: torch.Tensor
    labels: torch.Tensor
    folds: torch.Tensor
    classes: tuple[str, ...]
    names: tuple[str, ...]

    def subset(self, folds: tuple[int, ...] | list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        mask = torch.isin(self.folds, torch.tensor(list(folds)))
        return self.waves[mask], self.labels[mask]


def cache_dir() -> Path:
    """$AUDIOCLF_CACHE, else ~/.cache/audioclf."""
    return Path(os.environ.get("AUDIOCLF_CACHE", Path.home() / ".cache" / "audioclf")).expanduser()


PREPARED_FORMAT = 4  # 2: a stereo file's loudest channel (`features.to_mono`), no longer the channels' mean;
#                      3: a clip under half the clip length repeated, no longer zero-padded (`features.fill_length`);
#                      4: a clip over 1.5 clip lengths read at its loudest window, no longer its start (`features.read_length`)
READ_SECONDS = 60.0  # of a long file: a recording's loudest window is looked for in its first minute


def cache_path(dataset: Dataset, prep: PrepConfig, root: Path | None = None) -> Path:
    key = hashlib.sha256(json.dumps([dataset.file_stamp(), asdict(prep), PREPARED_FORMAT], sort_keys=True).encode())
    return (root or cache_dir()) / f"prepared-{dataset.name}-{key.hexdigest()[:12]}.pt"


def prepare(dataset: Dataset, prep: PrepConfig = PrepConfig(), root: Path | None = None,
            progress: Callable[[int, int], None] | None = None) -> Prepared:
    """Load the cached tensors for (dataset, prep), building the cache first if it is missing."""
    path = cache_path(dataset, prep, root)
    if path.is_file():
        try:
            return load_prepared(path)
        except CheckpointError as e:  # derived data: rebuild it rather than trust it
            print(f"audioclf: warning: {e}; rebuilding the decoded-audio cache", file=sys.stderr)
    prepared = build(dataset, prep, progress)
    save_prepared(prepared, path)
    return prepared


def build(dataset: Dataset, prep: PrepConfig, progress: Callable[[int, int], None] | None = None) -> Prepared:
    """Decode every clip (threads: libsndfile releases the GIL), crop at the source rate, then
    resample all clips of one rate in a single batched call."""
    n = len(dataset.clips)
    done = 0

    def decode(i: int) -> tuple[torch.Tensor, int]:
        nonlocal done
        data, sr = load_audio(dataset.clips[i].path, first_seconds=READ_SECONDS)
        wave = read_length(to_mono(data), int(round(sr * prep.duration)))  # a short sound repeats; a recording: its loudest
        done += 1
        if progress:
            progress(done, n)
        return wave, sr

    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        decoded = list(pool.map(decode, range(n)))
    waves = torch.empty(n, prep.num_samples)
    for sr in sorted({sr for _, sr in decoded}):
        idx = [i for i, (_, s) in enumerate(decoded) if s == sr]
        batch = torch.stack([decoded[i][0] for i in idx])  # (n_sr, sr * duration)
        waves[idx] = fit_length(resample(batch, sr, prep.sample_rate), prep.num_samples)
    return Prepared(
        waves=waves,
        labels=torch.tensor([c.label for c in dataset.clips]),
        folds=torch.tensor([c.fold for c in dataset.clips]),
        classes=dataset.classes,
        names=tuple(c.path.name for c in dataset.clips),
    )


def save_prepared(prepared: Prepared, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_torch(asdict(prepared), path)


def load_prepared(path: Path) -> Prepared:
    """The cached tensors (memory-mapped; plain tensors only, a pickle holding code is refused)."""
    try:
        d = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        return Prepared(waves=d["waves"], labels=d["labels"], folds=d["folds"],
                        classes=tuple(d["classes"]), names=tuple(d["names"]))
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise CheckpointError(f"{path}: not a readable decoded-audio cache ({first})") from None


__all__ = ["Prepared", "prepare", "build", "cache_path", "cache_dir", "AudioError"]
