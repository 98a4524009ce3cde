"""A run as one ONNX file that runs without torch or this package, and running such a file here.

The file holds the whole model side of `inference.predict_waves`: the front end (the recipe models'
log-mel spectrogram, or the report's crop to the clip length and framing into 9 windows) and the
fold ensemble (each fold model's softmax, and their mean). Its input is a batch of mono waveforms at
the run's rate, `waveform` (batch, samples), float32, of any length; its outputs are `ensemble`
(batch, classes) and `per_model` (folds, batch, classes). Each input is judged as one clip, as the
torch models judge it: a recipe model reads it whole (one under 1 s tiled to 1 s), a report's model
crops or zero-pads it to the run's clip length (5 s).

A JSON beside it (`model.onnx` -> `model.json`) names the classes in column order, the input rate,
the run, its "not sure" threshold, how a long recording is judged (clips of 5 s every 2.5 s, the mean
of the loud ones' probabilities, as `inference.predict_stream` does it), and the ONNX file's SHA-256.

`load_onnx` gives an `OnnxEnsemble`, which `inference.predict_file` takes in place of the torch fold
models: decoding, mixing to mono, resampling and the windowing of long recordings stay the project's
own, and only the model part runs in onnxruntime.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .config import TrainConfig
from .errors import UserError
from .features import frame
from .inference import HOP_SECONDS, LOUD_DB, FoldEnsemble, load_ensemble
from .store import Run, atomic_write_bytes, read_bytes, write_json

FORMAT = "audioclf-onnx"
VERSION = 1
OPSET = 18  # ONNX's STFT operator (opset 17+) for the log-mel front end
INPUT, OUTPUTS = "waveform", ("ensemble", "per_model")


class OnnxError(UserError):
    """An ONNX file or its JSON that cannot be used; the message names the file and the problem."""


class EnsembleGraph(nn.Module):
    """The fold models as one module: waveforms (B, N) -> ensemble (B, C), per fold model (F, B, C)."""

    def __init__(self, ens: FoldEnsemble) -> None:
        super().__init__()
        self.models = nn.ModuleList(ens.models)
        self.takes_waveform = ens.takes_waveform
        self.prep = ens.config.prep

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.takes_waveform:  # the report's models: crop or pad to the clip, as stream_segments does
            n = self.prep.num_samples
            wave = frame(nn.functional.pad(wave, (0, n))[:, :n], self.prep)  # (B, 1, 144000); no branch on length
        probs = torch.stack([m(wave).softmax(1) for m in self.models])  # (F, B, C)
        return probs.mean(0), probs


def sidecar(onnx_path: Path) -> Path:
    """The JSON that goes with an ONNX file: `model.onnx` -> `model.json`."""
    return Path(onnx_path).with_suffix(".json")


def export_onnx(run: Path, out: Path | None = None) -> Path:
    """Write a run's fold ensemble as `out` (default `<run name>.onnx` here) and its JSON beside it;
    returns the ONNX file's path.

    torch.onnx's default (dynamo) exporter, with a dynamic batch and length: it turns torchaudio's
    complex STFT into ONNX's STFT operator, which the older TorchScript exporter cannot ("STFT does not
    currently support complex types"), so no export-only DFT is needed. The graph holds for every length
    because the recipe models' one branch on it, tiling a short clip (`frontend.at_least`), is written as
    one expression. `tests/test_export.py` checks the probabilities against torch from 7 samples to 12 s.
    """
    r = Run(run)
    out = Path(out) if out is not None else Path(f"{r.name}.onnx")
    if out.suffix != ".onnx":
        raise OnnxError(f"{out}: the file name must end in .onnx")
    ens = load_ensemble(r.path, precision="fp32")  # the graph is float32
    graph = EnsembleGraph(ens).eval()
    example = torch.zeros(2, ens.config.prep.num_samples)
    dims = {0: torch.export.Dim("batch"), 1: torch.export.Dim("samples", min=1)}
    with torch.no_grad(), _quiet_exporter():
        program = torch.onnx.export(graph, (example,), dynamo=True, opset_version=OPSET, verbose=False,
                                    input_names=[INPUT], output_names=list(OUTPUTS),
                                    dynamic_shapes={"wave": dims})
    data = program.model_proto.SerializeToString()
    atomic_write_bytes(out, data)
    prep = ens.config.prep
    unsure = (r.results() or {}).get("unsure") or {}
    write_json(sidecar(out), {
        "format": FORMAT, "version": VERSION, "onnx_sha256": hashlib.sha256(data).hexdigest(),
        "run": r.name, "label": ens.label, "config": ens.config.to_dict(), "folds": list(ens.folds),
        "classes": list(ens.classes_), "sample_rate": prep.sample_rate,
        "threshold": unsure.get("threshold"),
        "input": f"{INPUT}: float32 (batch, samples), mono at sample_rate, any length from 1 sample",
        "outputs": {"ensemble": "(batch, classes): the mean of the fold models' probabilities",
                    "per_model": "(folds, batch, classes): each fold model's probabilities, in the order of folds"},
        "long_recordings": {"clip_s": prep.duration, "hop_s": HOP_SECONDS, "loud_db": LOUD_DB,
                            "rule": "clips of clip_s every hop_s (the last one shorter when over a fifth of a clip "
                                    "is left), each judged alone; the answer is the mean of the ensemble "
                                    "probabilities of the clips whose energy (mean square) is within loud_db "
                                    "of the loudest clip's"},
        "exported_with": {"torch": torch.__version__, "opset": OPSET},
    })
    return out


@contextlib.contextmanager
def _quiet_exporter():
    """Without the exporter's notices that do not concern this model (torchvision's operators are not
    installed; its own deprecations)."""
    log = logging.getLogger("torch.onnx")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        log.setLevel(level)


@dataclass(frozen=True)
class OnnxEnsemble:
    """An exported run in onnxruntime: what `inference.predict_stream` needs (see `inference.Ensemble`)."""

    path: Path
    config: TrainConfig
    classes_: tuple[str, ...]
    folds: tuple[int, ...]
    run: str
    threshold: float | None
    session: Any  # onnxruntime.InferenceSession

    @property
    def label(self) -> str:
        return self.config.label

    @property
    def takes_waveform(self) -> bool:
        from .models import spec

        return getattr(spec(self.config.model).cls, "takes_waveform", False)

    def probabilities(self, waves: torch.Tensor) -> dict[str, np.ndarray]:
        x = np.ascontiguousarray(waves.numpy(force=True), dtype=np.float32)  # (N, samples)
        ensemble, per_model = self.session.run(list(OUTPUTS), {INPUT: x})
        out = {f"fold{f}": p for f, p in zip(self.folds, per_model)}
        out["ensemble"] = ensemble
        return out


def load_onnx(path: str | Path, threads: int | None = None) -> OnnxEnsemble:
    """An exported run, checked against its JSON: OnnxError names the file when the ONNX file or the
    JSON is missing, unreadable, not audioclf's, or the two do not belong together."""
    path = Path(path)
    data = read_bytes(path, OnnxError, "file")
    meta = _read_sidecar(path)
    if hashlib.sha256(data).hexdigest() != meta.get("onnx_sha256"):
        raise OnnxError(f"{path}: not the model that {sidecar(path).name} describes (its SHA-256 differs): "
                        "the file was altered or replaced; export it again")
    try:
        config = TrainConfig.from_dict(meta["config"])
        classes, folds = tuple(str(c) for c in meta["classes"]), tuple(int(f) for f in meta["folds"])
        threshold = None if meta.get("threshold") is None else float(meta["threshold"])
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise OnnxError(f"{sidecar(path)}: unreadable ({type(e).__name__}: {str(e)[:200]})") from None
    session = _session(path, data, threads)
    names = ([i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()])
    if names != ([INPUT], list(OUTPUTS)):
        raise OnnxError(f"{path}: not an audioclf model (inputs {names[0]}, outputs {names[1]})")
    return OnnxEnsemble(path, config, classes, folds, str(meta.get("run", "")), threshold, session)


def _read_sidecar(path: Path) -> dict:
    side = sidecar(path)
    try:
        meta = json.loads(side.read_text())
    except FileNotFoundError:
        raise OnnxError(f"{path}: no {side.name} beside it (written by `python -m audioclf export` with the "
                        "class names and input rate); copy it along with the model") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise OnnxError(f"{side}: unreadable ({str(e)[:200]})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise OnnxError(f"{side}: not the JSON of an audioclf ONNX export (no \"format\": \"{FORMAT}\")")
    if meta.get("version") != VERSION:
        raise OnnxError(f"{side}: export format version {meta.get('version')!r}; this audioclf reads {VERSION}")
    return meta


def _session(path: Path, data: bytes, threads: int | None):
    """An onnxruntime session of the model in `data`, which must hold all its weights: an export is one
    file, and a crafted one must not read other files (onnxruntime reads external data from beside
    the model, or for a model given as bytes from the working folder)."""
    import onnx
    import onnxruntime as ort

    try:
        external = _external_tensors(onnx.load_model_from_string(data).graph)
        if not external:
            options = ort.SessionOptions()
            # no busy-waiting between runs: `predict` decodes and resamples the next clips (torch) meanwhile
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            if threads:
                options.intra_op_num_threads = threads
            return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as e:  # DecodeError, InvalidProtobuf, InvalidGraph, Fail, ...: all "cannot be used"
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise OnnxError(f"{path}: not a readable ONNX model ({first})") from None
    raise OnnxError(f"{path}: not an audioclf export: its weights {external[:3]} are in other files")


def _external_tensors(graph) -> list[str]:
    """The names of the tensors of an ONNX graph, its subgraphs included, whose data is in another file."""
    from onnx import TensorProto

    tensors, names = [*graph.initializer, *(s.values for s in graph.sparse_initializer)], []
    for node in graph.node:
        for a in node.attribute:
            tensors += [a.t, *a.tensors]
            for g in [a.g, *a.graphs]:
                names += _external_tensors(g)
    return names + [t.name for t in tensors if t.data_location == TensorProto.EXTERNAL]
