"""int8 prediction on a CPU (`audioclf.int8`): a fold's activation ranges are measured on its training clips
when it finishes, stored beside its weights and tied to them, and used only while they fit; an int8 model
answers as its float32 self does."""
from __future__ import annotations

import hashlib
from unittest import mock

import numpy as np
import pytest
import torch

from audioclf import cli, int8
from audioclf.config import PrepConfig, TrainConfig
from audioclf.data import open_dataset
from audioclf.device import runs_bf16
from audioclf.errors import CheckpointError
from audioclf.inference import load_ensemble, predict_waves
from audioclf.logmel import LogMelCNN, LogMelCNNConfig, LogMelTransformer, LogMelTransformerConfig
from audioclf.models import build_model
from audioclf.prepare import prepare
from audioclf.store import Run, checksum_file
from audioclf.train import train_run

from conftest import make_class_folders

pytestmark = pytest.mark.skipif(not int8.available(), reason="this torch has no x86 int8 kernels")

SMALL = {"logmel-cnn": lambda: LogMelCNN(LogMelCNNConfig(n_classes=3, widths=(8, 16, 32))),
         "logmel-transformer": lambda: LogMelTransformer(LogMelTransformerConfig(
             n_classes=3, stem_widths=(8, 16), stem_time_pool=(2, 1), d_model=16, heads=2))}


def waves(n: int, seconds: float, seed: int) -> torch.Tensor:
    """Noise bursts of different loudness and colour, so that the activations vary as real clips' do."""
    g, samples = torch.Generator().manual_seed(seed), int(16000 * seconds)
    x = torch.randn(n, samples, generator=g).cumsum(1) * 0.01 + torch.randn(n, samples, generator=g)
    return x * torch.logspace(-2, 0, n)[:, None]


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / a.norm())


@pytest.mark.parametrize("family", sorted(SMALL))
def test_an_int8_trunk_computes_what_the_float_one_does(family):
    torch.manual_seed(0)
    model = SMALL[family]().eval()
    ranges = int8.measure(model, waves(24, 2.0, seed=1))
    clips = waves(6, 2.0, seed=2)  # not the clips the ranges were measured on
    with torch.no_grad():
        want, want_trunk = model(clips), getattr(model, int8.trunk_name(model))(model.logmel.normalise(model.db(clips)))
        fast = int8.quantize(model, ranges)
        got, got_trunk = fast(clips), getattr(fast, int8.trunk_name(fast))(fast.logmel.normalise(fast.db(clips)))
        kinds = {type(m).__name__ for m in fast.modules()}
        assert "ConvReLU2d" in kinds and "Conv2d" not in kinds and "BatchNorm2d" not in kinds
        assert got_trunk.dtype == torch.float32 and got_trunk.shape == want_trunk.shape
        assert relative_error(want_trunk, got_trunk) < 0.05
        assert relative_error(want, got) < 0.05
        for seconds in (0.3, 7.0):  # a clip shorter than 1 s (tiled) and one longer than the clips measured
            assert fast(waves(2, seconds, seed=3)).shape == (2, 3)


def test_ranges_that_do_not_fit_the_model_are_refused():
    model = SMALL["logmel-cnn"]().eval()
    ranges = int8.measure(model, waves(4, 1.0, seed=0))
    with pytest.raises(ValueError, match="do not fit"):
        int8.quantize(SMALL["logmel-cnn"](), {k: v for k, v in ranges.items() if not k.startswith("2.")})
    with pytest.raises(ValueError, match="do not fit"):
        int8.quantize(SMALL["logmel-transformer"](), ranges)
    report = build_model(TrainConfig(model="cnn").model_config(3))
    assert int8.trunk_name(report) is None
    with pytest.raises(ValueError, match="no int8 path"):
        int8.measure(report, torch.zeros(1, 16000))


def test_a_trained_fold_keeps_its_ranges_and_prediction_uses_them_only_while_they_fit(tmp_path, capsys):
    folder = make_class_folders(tmp_path / "tiny", per_class=10, seconds=2.0, sr=16000)
    ds = open_dataset(folder)
    prep = PrepConfig(sample_rate=16000, duration=2.0, window=16000, hop=8000)
    config = TrainConfig(model="logmel-cnn", epochs=1, batch_size=8, cv_folds=(2, 3), prep=prep,
                         dataset_id=ds.fingerprint())
    run = train_run(config, prepare(ds, prep), root=tmp_path / "ck", show_bar=False)
    assert all(run.ranges_file(f).is_file() and checksum_file(run.ranges_file(f)).is_file() for f in (2, 3))

    auto = load_ensemble(run.path)
    native_bf16 = runs_bf16(config.precision, torch.device("cpu"))
    assert auto.precision == ("bf16" if native_bf16 else "int8")

    def info_says() -> str:  # what `info` says the run computes in, from its line for the run
        assert cli.main(["info", "--checkpoints", str(tmp_path / "ck")]) == 0
        line = next(x for x in capsys.readouterr().out.splitlines() if run.name in x)
        return line.rstrip().split("  ")[-1]

    assert info_says() == ("bfloat16" if native_bf16 else "int8 convolutions")
    fast, exact = load_ensemble(run.path, precision="int8"), load_ensemble(run.path, precision="fp32")
    clips, _ = prepare(ds, prep).subset([2, 3])
    a, b = predict_waves(exact, clips)["ensemble"], predict_waves(fast, clips)["ensemble"]
    assert np.abs(a - b).max() < 0.05

    # fold 2 trained again (here: other weights put in its place): its ranges no longer fit and are not used
    run.save_weights(2, "best", run.load_weights(3))
    assert run.load_ranges(2) is None and run.load_ranges(3) is not None
    assert load_ensemble(run.path).precision != "int8"
    assert info_says() == ("bfloat16" if native_bf16 else "float32")
    with pytest.raises(CheckpointError, match="calibrate"):
        load_ensemble(run.path, precision="int8")
    assert cli.main(["calibrate", "--run", str(run.path), "--data", str(folder)]) == 0
    assert "fold 2: int8 ranges from" in capsys.readouterr().out
    assert run.load_ranges(2) is not None and load_ensemble(run.path, precision="int8").precision == "int8"
    if not native_bf16:
        with mock.patch.object(Run, "load_ranges", autospec=True, side_effect=Run.load_ranges) as reads:
            assert load_ensemble(run.path).precision == "int8"
        assert sorted(c.args[1] for c in reads.call_args_list) == list(run.config.cv_folds)  # each int8.pt once
        run.ranges_file(2).write_bytes(b"damaged")
        assert info_says().startswith(f"refused by predict: {run.ranges_file(2)}: the file does not match its checksum")


def test_calibrate_refuses_a_model_without_an_int8_path_and_other_data(tmp_path, capsys):
    folder = make_class_folders(tmp_path / "tiny", per_class=10)
    ds = open_dataset(folder)
    prep = PrepConfig(sample_rate=8000, duration=1.0, window=4000, hop=2000)
    config = TrainConfig(model="cnn", epochs=1, batch_size=8, cv_folds=(2, 3), prep=prep, dataset_id=ds.fingerprint())
    run = train_run(config, prepare(ds, prep), root=tmp_path / "ck", show_bar=False)
    assert not run.ranges_file(2).exists()  # the report's models are not quantized
    assert cli.main(["calibrate", "--run", str(run.path), "--data", str(folder)]) == 2
    assert "cnn models have no int8 path" in capsys.readouterr().err
    other = make_class_folders(tmp_path / "other", classes=("a", "b", "c"), per_class=10)
    assert cli.main(["calibrate", "--run", str(run.path), "--data", str(other)]) == 2
    assert "not the data this run was trained on" in capsys.readouterr().err


def test_damaged_ranges_are_named_and_never_used(tmp_path):
    model = SMALL["logmel-cnn"]().eval()
    run = Run(tmp_path / "run")
    run.save_weights(2, "best", {"state_dict": model.state_dict()})
    run.save_ranges(2, int8.measure(model, waves(4, 1.0, seed=0)))
    path = run.ranges_file(2)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="int8.pt: the file does not match its checksum"):
        run.load_ranges(2)
    path.write_bytes(b"not a checkpoint")
    checksum_file(path).write_text(hashlib.sha256(b"not a checkpoint").hexdigest())
    with pytest.raises(CheckpointError, match="int8.pt: not a readable checkpoint"):
        run.load_ranges(2)
