"""The baseline: what a typical course notebook does.

A Dataset that decodes and resamples its clip in `__getitem__` on every epoch, a DataLoader with
batch size 32, and the plain PyTorch loop, training the report's model as the report writes it
(`as_the_report_writes_it`). The parameters, their initialisation, the loss and the optimiser are the
project's own, so the differences from `audioclf.train` are where the audio comes from, how memory is
handled, and how the trunk's layers are run.
"""
from __future__ import annotations

import soundfile as sf
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchaudio.functional as AF
from torch.utils.data import DataLoader, Dataset


class NaiveClips(Dataset):
    def __init__(self, paths: list[str], labels: list[int]) -> None:
        self.paths, self.labels = paths, labels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        data, sr = sf.read(self.paths[i], dtype="float32", always_2d=True)
        wave = torch.from_numpy(data.T).mean(0)[: sr * 5]
        wave = F.pad(wave, (0, max(0, sr * 5 - len(wave))))
        wave = AF.resample(wave, sr, 16000)[:80000]
        x = wave.unfold(0, 16000, 8000).reshape(1, -1)  # (1, 144000)
        return x, self.labels[i]


def as_the_report_writes_it(model: nn.Module) -> nn.Module:
    """The model with its trunk as a plain nn.Sequential: Conv1d -> ReLU -> MaxPool1d -> BatchNorm1d,
    one module after another, over the same modules (same parameters and state-dict keys). Bit for bit
    the function `audioclf.models.Trunk` computes outside CPU training (tests/test_models.py)."""
    model.features = nn.Sequential(*model.features)
    return model


def naive_epoch(model: torch.nn.Module, opt: torch.optim.Optimizer, loader: DataLoader) -> int:
    model.train()
    n = 0
    for x, y in loader:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        n += len(y)
    return n
