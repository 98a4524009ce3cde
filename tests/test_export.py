"""The ONNX export: one file with the front end and the fold ensemble, for any input length, that gives
the torch ensemble's probabilities (within 1e-4) through the same `predict` path; bad files are clear
errors."""
from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from audioclf.audio import load_audio
from audioclf.cli import main
from audioclf.export import FORMAT, VERSION, OnnxError, export_onnx, load_onnx, sidecar
from audioclf.features import fit_length
from audioclf.inference import LOUD_DB, load_ensemble, predict_file, predict_waves
from audioclf.frontend import at_least

from conftest import write_clip

SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints"
RECIPE = "logmel-cnn-f20cd51c328c"  # the from-scratch recipe: log-mel front end inside, 4 fold models
TOL = 1e-4


@pytest.fixture(scope="module")
def recipe_onnx(tmp_path_factory) -> tuple[Path, str]:
    """The from-scratch recipe exported through the CLI once: (the .onnx file, what the CLI printed)."""
    out = tmp_path_factory.mktemp("onnx") / "recipe.onnx"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["export", "--run", str(SHIPPED / RECIPE), "--format", "onnx", "--out", str(out)]) == 0
    return out, printed.getvalue()


@pytest.fixture(scope="module")
def recipe_torch():
    return load_ensemble(SHIPPED / RECIPE, precision="fp32")  # parity: float32 against float32


def assert_same(torch_result: dict, onnx_result: dict) -> None:
    """The two `predict_file` results agree within TOL: ensemble, each fold model, each window."""
    assert onnx_result["classes"] == torch_result["classes"]
    assert onnx_result["duration_s"] == torch_result["duration_s"]
    np.testing.assert_allclose(onnx_result["ensemble"], torch_result["ensemble"], rtol=0, atol=TOL)
    assert onnx_result["per_model"].keys() == torch_result["per_model"].keys()
    for k, p in torch_result["per_model"].items():
        np.testing.assert_allclose(onnx_result["per_model"][k], p, rtol=0, atol=TOL)
    assert ("over_time" in onnx_result) == ("over_time" in torch_result)
    if "over_time" in torch_result:
        assert onnx_result["over_time"]["start_s"] == torch_result["over_time"]["start_s"]
        np.testing.assert_allclose(onnx_result["over_time"]["ensemble"], torch_result["over_time"]["ensemble"],
                                   rtol=0, atol=TOL)


def test_at_least_tiles_a_short_clip_and_keeps_a_long_one():
    """`at_least` has no branch on the length (so the export holds for any length); same result as before."""
    for n in (1, 7, 15999, 16000, 16001, 80000):
        wave = torch.randn(2, n)
        want = wave.repeat(1, -(-16000 // n)) if n < 16000 else wave
        assert torch.equal(at_least(wave, 16000), want)


def test_the_json_beside_the_model(recipe_onnx):
    path, printed = recipe_onnx
    meta = json.loads(sidecar(path).read_text())
    assert sidecar(path) == path.with_suffix(".json") and f"wrote {path}" in printed
    results = json.loads((SHIPPED / RECIPE / "results.json").read_text())
    assert meta["classes"] == results["classes"] and meta["sample_rate"] == 16000
    assert meta["run"] == RECIPE and meta["folds"] == [2, 3, 4, 5]
    assert meta["threshold"] == pytest.approx(results["unsure"]["threshold"])
    assert meta["onnx_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert meta["long_recordings"]["clip_s"] == 5.0 and meta["long_recordings"]["hop_s"] == 2.5
    assert meta["long_recordings"]["loud_db"] == LOUD_DB


@pytest.mark.parametrize("seconds", [7 / 16000, 0.3, 0.999, 1.0, 2.2, 5.0, 7.31])
def test_any_length_gives_the_torch_probabilities(recipe_onnx, recipe_torch, seconds):
    """One graph for every length: a clip under 1 s is tiled inside it, a long one read whole."""
    rng = np.random.default_rng(int(seconds * 1000))
    waves = torch.from_numpy(rng.standard_normal((3, max(1, round(seconds * 16000)))).astype(np.float32)) * 0.1
    waves *= torch.linspace(0.2, 1.0, waves.shape[1])  # not stationary: the max and the mean differ
    want = predict_waves(recipe_torch, waves)
    got = load_onnx(recipe_onnx[0]).probabilities(waves)
    assert got.keys() == want.keys()
    for k in want:
        assert got[k].shape == (3, 10)
        np.testing.assert_allclose(got[k], want[k], rtol=0, atol=TOL)


def test_a_constant_signal_runs_too(recipe_onnx, recipe_torch):
    """One sample, tiled to 1 s, is a constant: every STFT bin but 0 Hz is float rounding noise, in which
    torch's FFT and ONNX's STFT differ (3e-4 apart here, against 1e-6 for 7 samples and up)."""
    waves = torch.tensor([[0.3], [-0.05]])
    want, got = predict_waves(recipe_torch, waves), load_onnx(recipe_onnx[0]).probabilities(waves)
    np.testing.assert_allclose(got["ensemble"].sum(1), 1, atol=1e-5)
    np.testing.assert_allclose(got["ensemble"], want["ensemble"], rtol=0, atol=1e-3)
    assert (got["ensemble"].argmax(1) == want["ensemble"].argmax(1)).all()


@pytest.mark.parametrize("run", ["logmel-transformer-2h-8236aca2ba45", "cnn-26b949279438"])
def test_the_other_shipped_models_export_too(tmp_path, run):
    """The recipe's transformer (any length), and the report's CNN (each input cropped or padded to
    5 s and framed into 9 windows inside the graph, as `predict` does it)."""
    ens = load_ensemble(SHIPPED / run, precision="fp32")
    onnx = load_onnx(export_onnx(SHIPPED / run, tmp_path / "m.onnx"))
    rng = np.random.default_rng(1)
    for n in (4000, 80000, 96001):
        waves = torch.from_numpy(rng.standard_normal((2, n)).astype(np.float32)) * 0.1
        clips = waves if ens.takes_waveform else fit_length(waves, 80000)  # what predict_stream gives the report's
        want, got = predict_waves(ens, clips), onnx.probabilities(waves)
        for k in want:
            np.testing.assert_allclose(got[k], want[k], rtol=0, atol=TOL)


def test_real_clips_short_and_long_through_predict(recipe_onnx, recipe_torch, esc10_dir, tmp_path):
    """Real ESC-10 clips (fold 1, one per class) at 44.1 kHz through the project's own decoding and
    resampling, then as a 0.6 s clip and a 12 s recording (4 windows, the last a 4.5 s tail)."""
    onnx = load_onnx(recipe_onnx[0])
    with open(esc10_dir / "meta" / "esc50.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["esc10"] == "True" and r["fold"] == "1"]
    names = list({r["target"]: r["filename"] for r in reversed(rows)}.values())  # the first clip of each class
    assert len(names) == 10
    answers = set()
    for name in names:
        want = predict_file(recipe_torch, esc10_dir / "audio" / name)
        assert_same(want, predict_file(onnx, esc10_dir / "audio" / name))
        answers.add(int(np.argmax(want["ensemble"])))
    assert len(answers) >= 5  # real answers, not one class for everything
    audio = [load_audio(esc10_dir / "audio" / name) for name in names[:3]]  # 5 s each, 44.1 kHz
    sr = audio[0][1]
    joined = np.concatenate([data.mean(0) for data, _ in audio])[: 12 * sr]
    sf.write(tmp_path / "long.wav", joined, sr)
    sf.write(tmp_path / "short.wav", joined[: int(0.6 * sr)], sr)
    long_torch = predict_file(recipe_torch, tmp_path / "long.wav")
    assert long_torch["over_time"]["start_s"] == [0.0, 2.5, 5.0, 7.5]
    assert_same(long_torch, predict_file(onnx, tmp_path / "long.wav"))
    assert_same(predict_file(recipe_torch, tmp_path / "short.wav"), predict_file(onnx, tmp_path / "short.wav"))


def test_predict_runs_the_onnx_file_like_the_run(recipe_onnx, tmp_path, capsys):
    clip = write_clip(tmp_path / "clip.wav", 440, seconds=12.0, sr=22050, channels=2)
    assert main(["predict", "--run", str(SHIPPED / RECIPE), "--precision", "fp32", str(clip)]) == 0
    with_torch = capsys.readouterr().out.splitlines()
    assert main(["predict", "--onnx", str(recipe_onnx[0]), str(clip)]) == 0
    with_onnx = capsys.readouterr().out.splitlines()
    assert with_onnx[0].startswith(f"run {RECIPE} (ONNX ") and with_torch[0].startswith(f"run {RECIPE}:")
    assert with_onnx[1:] == with_torch[1:]  # every fold model, the ensemble and the answer, to 2 decimals
    assert any(line.strip().startswith("answer:") for line in with_onnx)
    assert main(["predict", "--run", str(recipe_onnx[0]), str(clip)]) == 0  # a .onnx given as the run
    assert capsys.readouterr().out.splitlines()[1:] == with_torch[1:]


def good_json(data: bytes, **change) -> str:
    meta = {"format": FORMAT, "version": VERSION, "onnx_sha256": hashlib.sha256(data).hexdigest(),
            "run": "r", "config": {"model": "logmel-cnn"}, "classes": ["a", "b"], "folds": [2], "threshold": 0.5}
    return json.dumps({**meta, **change})


def foreign_onnx() -> bytes:
    """A valid ONNX model that is not audioclf's: y = x."""
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "foreign",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def reads_another_file() -> bytes:
    """A valid ONNX model whose weights are to be read from a file beside it (as a crafted one could)."""
    from onnx import TensorProto, helper

    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4], data_location=TensorProto.EXTERNAL)
    for k, v in {"location": "secret.txt", "offset": "0", "length": "16"}.items():
        w.external_data.add(key=k, value=v)
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "reads",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])], initializer=[w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


@pytest.mark.parametrize("onnx_bytes, side, message", [
    (b"\x08\x07garbage" * 50, "good", "not a readable ONNX model"),
    ("foreign", "good", "not an audioclf model"),
    ("external", "good", r"not an audioclf export: its weights \['w'\] are in other files"),
    ("foreign", None, "no m.json beside it"),
    ("foreign", "{not json", "m.json: unreadable"),
    ("foreign", json.dumps({"classes": ["a"]}), "not the JSON of an audioclf ONNX export"),
    ("foreign", json.dumps([1, 2]), "not the JSON of an audioclf ONNX export"),
    ("foreign", "version", "export format version 99"),
    ("foreign", "sha", "not the model that m.json describes"),
    ("foreign", "classes", "m.json: unreadable"),
])
def test_a_bad_or_foreign_file_is_a_clear_error(tmp_path, capsys, onnx_bytes, side, message):
    data = {"foreign": foreign_onnx, "external": reads_another_file}.get(onnx_bytes, lambda: onnx_bytes)()
    path = tmp_path / "m.onnx"
    path.write_bytes(data)
    (tmp_path / "secret.txt").write_bytes(b"0123456789abcdef")
    texts = {"good": good_json(data), "version": good_json(data, version=99), "sha": good_json(b"other"),
             "classes": good_json(data, classes=None)}
    if side is not None:
        sidecar(path).write_text(texts.get(side, side))
    with pytest.raises(OnnxError, match=message):
        load_onnx(path)
    clip = write_clip(tmp_path / "clip.wav", 440)
    assert main(["predict", "--onnx", str(path), str(clip)]) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1
    assert re.search(message, err) and str(path.with_suffix("")) in err  # names m.onnx or m.json


def test_missing_onnx_file_and_bad_export_name(tmp_path, capsys):
    assert main(["predict", "--onnx", str(tmp_path / "none.onnx"), str(tmp_path / "a.wav")]) == 2
    assert "none.onnx: file not found" in capsys.readouterr().err
    assert main(["export", "--run", str(SHIPPED / RECIPE), "--out", str(tmp_path / "model.bin")]) == 2
    assert "model.bin: the file name must end in .onnx" in capsys.readouterr().err
    assert not (tmp_path / "model.bin").exists()
