"""Running trained models: logits for a batch of waveforms, a run's fold ensemble, and recordings of
any length classified window by window with memory that does not grow with their length.

Used by evaluation, the CLI's `predict`, the attention view and the app; training imports nothing
from here but `predict_logits` (for its validation pass).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, Protocol

import numpy as np
import torch
import torch.nn as nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from . import int8
from .audio import BinaryIO, stream_audio
from .config import PrepConfig, TrainConfig
from .device import runs_bf16
from .errors import CheckpointError
from .features import fit_length, model_input, resample_stream, to_mono
from .logmel import LogMelModel

if TYPE_CHECKING:
    from .store import Run

HOP_SECONDS = 2.5  # a long recording is judged as clips of the run's length (5 s) this often
# A long recording's answer is the mean over its windows within this many dB of the loudest (by energy).
# The recipe's front end scales each window to its own peak, so a window of quiet background looks as loud
# to the model as the sound does: a 20 s recording of one ESC-10 validation clip in pink noise 30 dB below
# was right 21 % of the time as the mean over all its windows, 89 % as the loud ones' (bench/long.py;
# docs/results.md, where 3 dB is chosen against the loudest window alone and other weightings).
LOUD_DB = 3.0


@torch.no_grad()
def predict_logits(model: nn.Module, waves: torch.Tensor, prep: PrepConfig, batch_size: int = 64) -> torch.Tensor:
    """Logits (N, classes) for waveforms (N, samples), in eval mode, `batch_size` clips at a time."""
    model.eval()
    device = next(model.parameters()).device
    out = [model(model_input(model, waves[i:i + batch_size].to(device), prep)).float().cpu()
           for i in range(0, len(waves), batch_size)]
    return torch.cat(out) if out else torch.empty(0)


ARITHMETIC = {"fp32": "float32", "bf16": "bfloat16", "int8": "int8 convolutions"}  # a precision, in words


@dataclass(frozen=True)
class FoldEnsemble:
    """The fold models of one run, in eval mode, with the classes in probability-column order."""

    config: TrainConfig
    classes_: tuple[str, ...]
    folds: tuple[int, ...]
    models: tuple[torch.nn.Module, ...]
    precision: str = "fp32"  # "bf16": under bfloat16 autocast (`fast_precision`); "int8": int8 trunks (`audioclf.int8`)
    shared_front_end: bool = False  # the front end's fixed part computed once for all (`shares_front_end`)

    @property
    def label(self) -> str:
        return self.config.label

    @property
    def takes_waveform(self) -> bool:
        """Whether the models read a clip of any length as it is (the recipe's)."""
        return getattr(self.models[0], "takes_waveform", False)

    @property
    def arithmetic(self) -> str:
        """What the models compute in, in words."""
        return ARITHMETIC[self.precision]

    def probabilities(self, waves: torch.Tensor) -> dict[str, np.ndarray]:
        return predict_waves(self, waves)


class Ensemble(Protocol):
    """What `predict_stream` needs of a run's fold models: a `FoldEnsemble` here, or the same run
    exported to ONNX (`audioclf.export.OnnxEnsemble`)."""

    config: TrainConfig
    classes_: tuple[str, ...]
    folds: tuple[int, ...]

    @property
    def label(self) -> str: ...

    @property
    def takes_waveform(self) -> bool: ...

    def probabilities(self, waves: torch.Tensor) -> dict[str, np.ndarray]:
        """Probabilities for clips (N, samples) at the model rate: (N, C) per fold model ('fold2', ...)
        and their mean ('ensemble')."""
        ...


def load_ensemble(run: Path, which: str = "best", device: torch.device | str = "cpu",
                  precision: str = "auto") -> FoldEnsemble:
    """A run's finished fold models (CheckpointError names a file that is unusable). `precision`
    "auto" is `fast_precision` of the run's config and the device, or "int8" where that is float32 on a CPU
    and the run's best fold models have their int8 ranges (`audioclf.int8`); "fp32" for exact comparisons."""
    from .store import Run

    r = Run(run)
    folds = tuple(r.folds_with_weights(which))
    if not folds:
        raise FileNotFoundError(f"{run}: no finished fold models ({which} weights) in this run")
    loaded = [r.fold_model(f, which, device) for f in folds]
    ranges: list = []
    if precision == "auto":
        precision, ranges = _auto_precision_and_ranges(r, torch.device(device), which)
    elif precision == "int8" and which == "best":
        # per fold: None where it has none, or none that fit its weights (ranges are of best weights)
        ranges = [r.load_ranges(f) for f in folds]
    if precision == "int8":
        if not ranges or not all(ranges):
            raise CheckpointError(f"{run}: no int8 ranges for every fold model ({which} weights); "
                                  "`python -m audioclf calibrate` measures them")
        models = tuple(int8.quantize(m.model, rg) for m, rg in zip(loaded, ranges))
    else:
        # oneDNN's convolutions are faster channels-last, in bf16 and in float32 (a Xeon without AMX: the 4 recipe
        # models' forward pass on a 5 s clip 45.6 against 63.9 ms with BatchNorm folded in; bench/precision.py)
        models = tuple(fuse_conv_bn(m.model).to(memory_format=torch.channels_last) for m in loaded)
    if precision == "bf16":
        models = tuple(bf16_weights(m) for m in models)
    return FoldEnsemble(r.config, tuple(loaded[0].classes), folds, models, precision, shares_front_end(models))


def auto_precision(run: "Run", device: torch.device, which: str = "best") -> str:
    """What `load_ensemble(precision="auto")` computes the run's fold models in on `device`: `fast_precision`,
    or "int8" where that is float32 on a CPU with int8 kernels and every fold model (best weights) has its
    int8 ranges. CheckpointError names an int8.pt that is unusable."""
    return _auto_precision_and_ranges(run, device, which)[0]


def _auto_precision_and_ranges(run: "Run", device: torch.device, which: str) -> tuple[str, list]:
    """`auto_precision`, and for "int8" the fold models' ranges it read to decide, so that `load_ensemble`
    reads and checks each int8.pt once, not twice (the second read cost about 0.06 s of a 0.5-0.7 s ensemble load
    on a 2-core Xeon)."""
    precision = fast_precision(run.config, device)
    folds = run.folds_with_weights(which)
    if not (precision == "fp32" and device.type == "cpu" and int8.available() and which == "best" and folds):
        return precision, []
    ranges = []
    for f in folds:
        ranges.append(run.load_ranges(f))
        if ranges[-1] is None:  # a fold model without ranges: float32, whatever the others have
            return precision, []
    return "int8", ranges


def fuse_conv_bn(model: nn.Module) -> nn.Module:
    """The model (in eval mode) with each BatchNorm that follows a convolution in a Sequential folded
    into that convolution's weights: the same function, one pass over the activations fewer (in bf16,
    4 recipe models on a 5 s clip: about 4 ms of 34; bench/run.py)."""
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        layers = list(seq)
        for i in range(len(layers) - 1):
            if isinstance(layers[i], nn.Conv2d) and isinstance(layers[i + 1], nn.BatchNorm2d):
                seq[i], seq[i + 1] = fuse_conv_bn_eval(layers[i], layers[i + 1]), nn.Identity()
    return model


def bf16_weights(model: nn.Module) -> nn.Module:
    """The model's convolution and linear weights held in bfloat16, so that autocast does not cast
    every weight again on every call (4 recipe models on a 5 s clip: about 2 ms of 37; bench/run.py).
    Such a model runs only under bfloat16 autocast, as `predict_waves` runs it."""
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            m.to(torch.bfloat16)
    return model


def fast_precision(config: TrainConfig, device: torch.device) -> str:
    """"bf16" for a model trained under bfloat16 autocast, on a device with fast bfloat16
    (`device.fast_bf16`), else "fp32". On a 2-core Xeon with AMX one 5 s clip, file to answer, through
    the recipe's 4-model ensemble (with `load_ensemble`'s steps for bf16) takes a median of 27-42 ms
    instead of 65 ms in float32 as stored (bench/run.py --only predict); probabilities move by about 1e-3.
    Without AMX or AVX512-BF16, bf16 is emulated and slower than float32 (1.8x, bench/precision.py)."""
    return "bf16" if runs_bf16(config.precision, device) else "fp32"


@torch.inference_mode()
def predict_waves(ens: FoldEnsemble, waves: torch.Tensor) -> dict[str, np.ndarray]:
    """Probabilities for waveforms (N, samples) at the model rate: one (N, C) array per fold model
    (keys 'fold2', ...) and their mean under 'ensemble'."""
    device = next(ens.models[0].parameters()).device
    x = model_input(ens.models[0], waves.to(device), ens.config.prep)  # (N, 1, 144000) for the report's models
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=ens.precision == "bf16"):
        if ens.shared_front_end:  # the spectrogram once, not once per fold model
            db = ens.models[0].db(x)
            logits = [m.from_db(db) for m in ens.models]
        else:
            logits = [m(x) for m in ens.models]
    out = {f"fold{f}": z.float().softmax(1).cpu().numpy() for f, z in zip(ens.folds, logits)}
    out["ensemble"] = np.mean(list(out.values()), axis=0)
    return out


def shares_front_end(models: tuple[nn.Module, ...]) -> bool:
    """Whether the part of the models' front end with nothing learnt (`LogMelModel.db`) is the same for
    all, so that it can be computed once (4 models, 5 s clip: about 5 ms of 30; bench/run.py): recipe
    models of one configuration whose filter banks are equal to the bit (those of one shipped run are
    not: one fold model's differs by 8e-6, which moved a 7-sample clip's probabilities by 3e-4)."""
    def front(m: nn.Module) -> list[torch.Tensor]:
        return list(m.logmel.mel.state_dict().values())

    return all(isinstance(m, LogMelModel) and m.config == models[0].config
               and all(torch.equal(a, b) for a, b in zip(front(m), front(models[0]))) for m in models)


def stream_segments(pieces: Iterable[torch.Tensor], n: int, hop: int,
                    pad: bool = True) -> Iterator[tuple[int, torch.Tensor]]:
    """(start, clip of n samples) every `hop` samples of a signal that arrives in pieces.

    A signal shorter than n gives one clip; a tail of over a fifth of a clip past the last full one
    gives one more; both zero-padded to n, or with `pad=False` as long as they are (for models that
    read any length: a 1 s recording is then not four fifths silence). Holds at most about n samples
    plus one piece.
    """
    fit = (lambda w: fit_length(w, n)) if pad else (lambda w: w)
    buf, buf_start, start, total = torch.empty(0), 0, 0, 0
    for p in pieces:
        buf, total = torch.cat([buf, p]), total + len(p)
        while start + n <= total:
            yield start, buf[start - buf_start: start - buf_start + n]
            start += hop
            if start > buf_start:
                buf, buf_start = buf[start - buf_start:], start
    if start == 0:
        yield 0, fit(buf)
    elif total - (start - hop + n) > n // 5:
        yield start, fit(buf[start - buf_start:])


def predict_stream(ens: Ensemble, sr: int, blocks: Iterable[np.ndarray], hop_seconds: float = HOP_SECONDS,
                   batch: int = 8) -> dict:
    """Classify a recording given as decoded blocks (channels, samples) at rate `sr`, of any length.

    Clips of the run's length (5 s) every `hop_seconds`, `batch` at a time: memory stays that of a few
    clips. A model that reads any length (the recipe's) gets a short recording or tail as it is. The
    whole-recording result ('per_model', 'ensemble') is the mean over the loud clips (`loud_windows`);
    with more than one clip, 'over_time' holds each clip's start, ensemble probabilities, level in dB
    below the loudest ('level_db') and whether it made the answer ('loud').
    """
    prep = ens.config.prep
    mono = (to_mono(b) for b in blocks)
    pieces = resample_stream(mono, sr, prep.sample_rate)
    counted = _counting(pieces)
    starts: list[int] = []
    energy: list[float] = []
    probs: dict[str, list[np.ndarray]] = {}
    pending: list[torch.Tensor] = []

    def flush() -> None:
        for k, v in ens.probabilities(torch.stack(pending)).items():
            probs.setdefault(k, []).append(v)
        pending.clear()

    for start, clip in stream_segments(counted, prep.num_samples, int(hop_seconds * prep.sample_rate),
                                       pad=not ens.takes_waveform):
        if pending and len(clip) != len(pending[0]):
            flush()  # a batch holds clips of one length
        starts.append(start)
        energy.append(float(clip.double().square().mean()))
        pending.append(clip)
        if len(pending) == batch:
            flush()
    if pending:
        flush()
    per = {k: np.concatenate(v) for k, v in probs.items()}  # (S, C) each
    loud = loud_windows(np.asarray(energy))
    result = {"classes": list(ens.classes_), "duration_s": counted.total / prep.sample_rate,
              "per_model": {k: v[loud].mean(0) for k, v in per.items() if k != "ensemble"},
              "ensemble": per["ensemble"][loud].mean(0)}
    if len(starts) > 1:
        result["over_time"] = {"start_s": (np.asarray(starts) / prep.sample_rate).tolist(),
                               "clip_s": prep.duration, "ensemble": per["ensemble"],
                               "per_model": {k: v for k, v in per.items() if k != "ensemble"},
                               "level_db": level_db(np.asarray(energy)).tolist(), "loud": loud.tolist()}
    return result


def level_db(energy: np.ndarray) -> np.ndarray:
    """Each window's energy in dB relative to the loudest's (0 for it, at most -120 for silence; all 0 when
    the whole recording is digital silence)."""
    top = energy.max(initial=0.0)
    if top <= 0:
        return np.zeros(len(energy))
    return 10 * np.log10(np.maximum(energy, top * 1e-12) / top)


def loud_windows(energy: np.ndarray, within_db: float = LOUD_DB) -> np.ndarray:
    """Which windows make a recording's answer: those within `within_db` of the loudest (`LOUD_DB`)."""
    return level_db(energy) >= -within_db


class _counting:
    """Passes pieces through and counts their samples."""

    def __init__(self, pieces: Iterable[torch.Tensor]) -> None:
        self.pieces, self.total = pieces, 0

    def __iter__(self) -> Iterator[torch.Tensor]:
        for p in self.pieces:
            self.total += len(p)
            yield p


def predict_audio(ens: Ensemble, data: np.ndarray, sr: int, hop_seconds: float = HOP_SECONDS) -> dict:
    """`predict_stream` of a recording already decoded to (channels, samples)."""
    return predict_stream(ens, sr, [np.asarray(data)], hop_seconds)


def predict_file(ens: Ensemble, source: str | Path | bytes | BinaryIO, name: str | None = None,
                 hop_seconds: float = HOP_SECONDS, max_seconds: float | None = None) -> dict:
    """Decode and classify a file (path, bytes or file object) block by block; one longer than
    `max_seconds` is an AudioError."""
    sr, blocks = stream_audio(source, name=name, max_seconds=max_seconds)
    return predict_stream(ens, sr, blocks, hop_seconds)


def top_k(proba: np.ndarray, classes: list[str] | tuple[str, ...], k: int = 3) -> list[tuple[str, float]]:
    order = np.argsort(proba)[::-1][:k]
    return [(classes[i], float(proba[i])) for i in order]
