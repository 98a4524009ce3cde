import json
import time

import pytest
import torch

from audioclf import store
from audioclf.store import Run
from audioclf.config import TrainConfig
from audioclf.data import open_dataset
from audioclf.prepare import prepare
from audioclf.inference import predict_logits
from audioclf.train import Progress, epoch_order, train_run

from conftest import TINY_PREP, make_class_folders, stopped_after_epoch


@pytest.fixture
def tiny(tmp_path):
    ds = open_dataset(make_class_folders(tmp_path / "tiny", per_class=10))
    return ds, prepare(ds, TINY_PREP)


def cfg(ds, **kw) -> TrainConfig:
    base = dict(model="cnn", epochs=3, batch_size=8, prep=TINY_PREP, cv_folds=(2, 3), dataset_id=ds.fingerprint())
    return TrainConfig(**{**base, **kw})


def test_run_writes_every_artefact_and_round_trips(tiny, tmp_path):
    ds, prepared = tiny
    config = cfg(ds)
    run = train_run(config, prepared, root=tmp_path / "ck", show_bar=False).path
    assert run == Run.of(config, tmp_path / "ck").path
    assert Run(run).config == config
    assert json.loads((run / "progress.json").read_text())["status"] == "done"
    for fold in (2, 3):
        history = json.loads((run / f"fold{fold}" / "history.json").read_text())
        assert [h["epoch"] for h in history] == [1, 2, 3]
        assert {"train_loss", "train_acc", "val_loss", "val_acc", "seconds"} <= set(history[0])
        assert not (run / f"fold{fold}" / "resume.pt").exists()
    results = json.loads((run / "results.json").read_text())
    assert set(results["folds"]) == {"2", "3"} and "ensemble" in results and "summary" in results
    # a checkpoint rebuilds its model from the file alone and reproduces the recorded predictions
    model = store.load_model(run / "fold2" / "best.pt")
    x_test, _ = prepared.subset([1])
    assert predict_logits(model, x_test, TINY_PREP).argmax(1).tolist() == results["folds"]["2"]["predictions"]


def test_complete_config_loads_from_cache_without_training(tiny, tmp_path, monkeypatch):
    ds, prepared = tiny
    config = cfg(ds, epochs=1)
    train_run(config, prepared, root=tmp_path / "ck", show_bar=False)

    def no_training(*a, **k):
        raise AssertionError("trained again although cached")

    monkeypatch.setattr("audioclf.train.train_fold", no_training)
    run = Run.of(config, tmp_path / "ck").path
    stamps = {p: p.stat().st_mtime_ns for p in run.rglob("*")}
    t0 = time.perf_counter()
    assert train_run(config, prepared, root=tmp_path / "ck", show_bar=False).path == run
    assert time.perf_counter() - t0 < 2.0
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*")} == stamps  # a hit writes nothing
    with pytest.raises(AssertionError, match="trained again"):  # any change of config: new entry
        train_run(cfg(ds, epochs=1, lr=0.002), prepared, root=tmp_path / "ck", show_bar=False)


@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_interrupted_run_resumes_from_its_last_epoch_and_matches(tiny, tmp_path, monkeypatch, ema):
    ds, prepared = tiny
    config = cfg(ds, epochs=4, cv_folds=(2, 3), ema=ema)
    straight = train_run(config, prepared, folds=[2], root=tmp_path / "a", show_bar=False).path

    stopped_after_epoch(monkeypatch, 2, lambda: train_run(config, prepared, folds=[2], root=tmp_path / "b",
                                                           show_bar=False))
    resumed_dir = Run.of(config, tmp_path / "b").fold_dir(2)
    assert (resumed_dir / "resume.pt").is_file() and not (resumed_dir / "final.pt").exists()
    assert json.loads((resumed_dir.parent / "progress.json").read_text())["status"] == "cancelled"

    epochs_run = []
    monkeypatch.setattr("audioclf.train.train_epoch", _spy(epochs_run))
    resumed = train_run(config, prepared, folds=[2], root=tmp_path / "b", show_bar=False).path
    assert len(epochs_run) == 2  # epochs 3 and 4 only
    a = store.load_torch(straight / "fold2" / "final.pt")["state_dict"]
    b = store.load_torch(resumed / "fold2" / "final.pt")["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    ha = json.loads((straight / "fold2" / "history.json").read_text())
    hb = json.loads((resumed / "fold2" / "history.json").read_text())
    assert [h["train_loss"] for h in ha] == [h["train_loss"] for h in hb]


def test_moving_average_changes_what_is_kept_not_how_it_trains(tiny, tmp_path):
    ds, prepared = tiny
    plain = train_run(cfg(ds, epochs=3), prepared, folds=[2], root=tmp_path, show_bar=False)
    averaged = train_run(cfg(ds, epochs=3, ema=0.5), prepared, folds=[2], root=tmp_path, show_bar=False)
    assert plain.path != averaged.path  # its own run
    hp, ha = plain.history(2), averaged.history(2)
    assert [h["train_loss"] for h in hp] == [h["train_loss"] for h in ha]  # the same steps
    a = plain.load_weights(2, "final")["state_dict"]
    b = averaged.load_weights(2, "final")["state_dict"]
    assert not all(torch.equal(a[k], b[k]) for k in a)  # but the average is what is saved
    model = store.load_model(averaged.weights_file(2, "final"))  # and what was validated
    x_val, y_val = prepared.subset([2])
    acc = (predict_logits(model, x_val, TINY_PREP).argmax(1) == y_val).float().mean().item()
    assert acc == pytest.approx(ha[-1]["val_acc"])


def _spy(calls):
    from audioclf import train

    real = train.train_epoch

    def wrapper(*a, **k):
        calls.append(1)
        return real(*a, **k)

    return wrapper


def test_training_lowers_the_loss_on_separable_clips(tiny, tmp_path):
    ds, prepared = tiny
    run = train_run(cfg(ds, epochs=6, lr=0.003), prepared, folds=[2], root=tmp_path / "ck", show_bar=False).path
    history = json.loads((run / "fold2" / "history.json").read_text())
    assert history[-1]["train_loss"] < history[0]["train_loss"]


def test_test_fold_is_never_trained_or_validated_on(tiny, tmp_path, monkeypatch):
    ds, prepared = tiny
    seen = []
    real_subset = type(prepared).subset

    def spy(self, folds):
        seen.append(tuple(folds))
        return real_subset(self, folds)

    monkeypatch.setattr(type(prepared), "subset", spy)
    train_run(cfg(ds, epochs=1, cv_folds=(2, 3, 4)), prepared, root=tmp_path / "ck", show_bar=False)
    training_calls = seen[:-1]  # the last call is the evaluation on the test fold
    assert seen[-1] == (1,)
    assert all(1 not in folds for folds in training_calls)
    assert (3, 4) in training_calls and (2,) in training_calls


def test_an_epoch_draws_small_classes_as_often_as_large_ones():
    """Classes of one size (ESC's): the same permutation as before. Of different sizes (a person's own: 6 clips of
    one, 2 of another), each class equally often (bench/imbalance_teach.py)."""
    even = torch.arange(4).repeat(5)
    assert torch.equal(epoch_order(even, torch.Generator().manual_seed(3)),
                       torch.randperm(20, generator=torch.Generator().manual_seed(3)))
    y = torch.tensor([0] * 60 + [1] * 20 + [2] * 10)
    gen = torch.Generator().manual_seed(0)
    drawn = torch.cat([epoch_order(y, gen) for _ in range(200)])
    assert len(drawn) == 200 * 90 and 0 <= int(drawn.min()) and int(drawn.max()) < 90
    share = torch.bincount(y[drawn], minlength=3) / len(drawn)
    assert torch.allclose(share, torch.full((3,), 1 / 3), atol=0.02), share  # uniform would give 2/3, 2/9, 1/9
    assert len(torch.unique(drawn[y[drawn] == 2])) == 10  # every clip of the small class is used


def test_config_key_is_stable_and_json_round_trips():
    a = TrainConfig(model="transformer", heads=2, dataset_id="x")
    assert TrainConfig.from_dict(json.loads(a.to_json())) == a
    assert a.key() == TrainConfig.from_dict(a.to_dict()).key()
    assert a.lr == 0.001 and TrainConfig(model="cnn").lr == 0.01
    assert TrainConfig(model="cnn", heads=1).key() == TrainConfig(model="cnn", heads=4).key()
    with pytest.raises(ValueError, match="also a cross-validation fold"):
        TrainConfig(test_fold=2)
    recipe = TrainConfig(model="logmel-cnn")  # a moving average, off by default, is absent from older keys
    assert "ema" not in recipe.to_dict() and TrainConfig.from_dict(recipe.to_dict()).key() == recipe.key()
    averaged = TrainConfig(model="logmel-cnn", ema=0.998)
    assert averaged.key() != recipe.key() and TrainConfig.from_dict(averaged.to_dict()) == averaged
    with pytest.raises(ValueError, match="ema"):
        TrainConfig(ema=1.0)
    floor = TrainConfig(model="logmel-cnn", options=(("floor", 1),))  # a model option at its default is absent
    assert TrainConfig(model="logmel-cnn", options=(("floor", 0),)).key() == recipe.key()
    assert floor.key() != recipe.key() and floor.label == "logmel-cnn-floor1" and recipe.label == "logmel-cnn"
    assert TrainConfig.from_dict(floor.to_dict()) == floor and floor.model_config(10).floor == 1


def test_progress_moves_batch_by_batch_with_an_eta(tmp_path):
    config = TrainConfig(model="cnn", epochs=10, cv_folds=(2, 3), dataset_id="x")
    run = Run.of(config, tmp_path)
    progress = Progress(run, [2, 3], 10)
    progress._written = 0.0
    progress.batch_done(2, 1, 1, 4)  # the first batch of the first epoch: no finished epoch yet
    time.sleep(0.05)
    progress._written = 0.0
    progress.batch_done(2, 1, 2, 4)
    p = run.progress()
    assert p["batch"] == [2, 4] and p["epoch"] == 0 and p["fraction"] == pytest.approx(0.5 / 20)
    assert p["eta_s"] is not None and p["eta_s"] > 0  # estimated from this epoch's batches so far
    progress.epoch_seconds.append(2.0)
    progress.update(fold=2, epoch=1, batch=(0, 0))
    assert run.progress()["eta_s"] == pytest.approx(19 * 2.0)
    progress._written = 0.0
    progress.batch_done(2, 2, 2, 4)
    assert run.progress()["eta_s"] == pytest.approx(18.5 * 2.0)  # moves within the epoch


def test_progress_text_names_the_batch():
    import ui
    from audioclf.jobs import Job

    config = TrainConfig(model="cnn", epochs=10, cv_folds=(2, 3), dataset_id="x")
    job = Job(Run.of(config), config, "running", 1, {"fold": 2, "folds": [2, 3], "epoch": 4, "epochs": 10,
                                                     "batch": [3, 8], "fraction": 0.21, "eta_s": 95.0})
    fraction, text = ui.describe_progress(job)
    assert "epoch 5/10, batch 3 of 8" in text and "1 min 35 s left" in text and fraction == 0.21


def test_int8_storage_keeps_a_models_answers_and_quarters_its_size():
    import io

    from audioclf import store
    from audioclf.models import build_model, model_config

    torch.manual_seed(0)
    model = build_model(model_config("logmel-cnn", 10)).eval()
    ckpt = {"state_dict": model.state_dict(), "model_config": model.config.to_dict()}
    small = store.quantized(ckpt)
    assert {v.dtype for k, v in small["state_dict"].items() if k in small["scales"]} == {torch.int8}
    assert "head.weight" in small["scales"] and "blocks.0.body.0.weight" in small["scales"]
    sizes = []
    for c in (ckpt, small):
        buf = io.BytesIO()
        torch.save(c, buf)
        sizes.append(len(buf.getvalue()))
    assert sizes[1] < 0.3 * sizes[0]
    wave = torch.randn(4, 32000)
    with torch.no_grad():
        a, b = model(wave).softmax(1), store.model_from_checkpoint(small)(wave).softmax(1)
    assert (a - b).abs().max() < 1e-3 and torch.equal(a.argmax(1), b.argmax(1))


@pytest.mark.parametrize("model", ["cnn", "logmel-cnn"])
def test_graphed_steps_train_bit_for_bit_as_the_plain_loop(tmp_path, model):
    """`GraphedSteps` uncaptured (as on the CPU, or after a failed capture) runs what a CUDA graph replays:
    static gradients, one warm-up per batch shape that puts back what it moved. It must train exactly as the
    plain loop does, for the report's model and for the recipe (crops of three lengths, rooms, mixup, bf16)."""
    from audioclf.train import train_fold, use_cuda_graphs

    ds = open_dataset(make_class_folders(tmp_path / "tiny", per_class=10, seconds=2.0, sr=16000))
    prep = TINY_PREP.__class__(sample_rate=16000, duration=2.0, window=16000, hop=8000)
    config = TrainConfig(model=model, epochs=2, batch_size=8, cv_folds=(2, 3), prep=prep, dataset_id=ds.fingerprint(),
                         **({"augment": "recipe-room", "lr": 0.003} if model == "logmel-cnn" else {}))
    prepared = prepare(ds, prep)
    assert not use_cuda_graphs(config, torch.device("cpu"))  # the CPU trains the plain way unless asked
    plain = train_fold(config, prepared, 2, torch.device("cpu"), root=tmp_path / "a", show_bar=False, graphs=False)
    graphed = train_fold(config, prepared, 2, torch.device("cpu"), root=tmp_path / "b", show_bar=False, graphs=True)
    assert [h["train_loss"] for h in graphed] == [h["train_loss"] for h in plain]
    assert [h["val_acc"] for h in graphed] == [h["val_acc"] for h in plain]
    a = store.load_torch(Run.of(config, tmp_path / "a").fold_dir(2) / "final.pt")["state_dict"]
    b = store.load_torch(Run.of(config, tmp_path / "b").fold_dir(2) / "final.pt")["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_fold_models_at_once_complete_a_run(tiny, tmp_path, monkeypatch):
    """`train_run(at_once=True)`: each fold model in a thread of its own (on a GPU, a CUDA stream each too);
    here on the CPU, where only the threads differ. Every fold model trains all its epochs, the run is
    evaluated as usual, and the progress file counts the epochs of all fold models, never going back."""
    ds, prepared = tiny
    config = cfg(ds, epochs=3)
    written = []
    real = Run.write_progress
    monkeypatch.setattr(Run, "write_progress", lambda self, p: (written.append(p), real(self, p))[1])
    run = train_run(config, prepared, root=tmp_path / "ck", show_bar=False, at_once=True)
    assert run.is_complete()
    for fold in (2, 3):
        assert [h["epoch"] for h in run.history(fold)] == [1, 2, 3]
    assert set(json.loads((run.path / "results.json").read_text())["folds"]) == {"2", "3"}
    done = [p["epochs_done"] for p in written]
    assert done == sorted(done) and written[-1]["status"] == "done" and written[-1]["fraction"] == 1.0
    during = [p for p in written if p["status"] == "running" and 0 < p["fraction"] < 1]
    assert during and all(p["epochs_total"] == 6 and p["fold"] is None for p in during)
    assert any(p["epoch"] >= 1 and p["message"] == "2 fold models side by side" for p in during)


def test_folds_at_once_is_refused_without_a_gpu(tmp_path, capsys):
    from audioclf.cli import main

    folder = make_class_folders(tmp_path / "tiny", per_class=4)
    assert main(["train", "--data", str(folder), "--device", "cpu", "--folds-at-once", "--epochs", "1",
                 "--checkpoints", str(tmp_path / "ck")]) == 2
    err = capsys.readouterr().err
    assert "--folds-at-once needs a CUDA GPU" in err and "Traceback" not in err
    assert not (tmp_path / "ck").exists()


@pytest.mark.parametrize("native", [True, False])
def test_bf16_runs_only_where_the_device_computes_it_natively(monkeypatch, native):
    """A "bf16" run trains and predicts under bfloat16 autocast where the CPU has AVX512-BF16 or AMX; on
    other CPUs oneDNN would emulate it at about half float32's speed, so it runs in float32 there. A
    float32 run is float32 everywhere."""
    from audioclf import device as devices
    from audioclf.augment import AUGMENTS
    from audioclf.inference import fast_precision
    from audioclf.models import build_model
    from audioclf.train import batch_loss

    monkeypatch.setattr(devices, "fast_bf16", lambda device_type: native)
    cpu = torch.device("cpu")
    prep = TINY_PREP.__class__(sample_rate=16000, duration=2.0, window=16000, hop=8000)
    config = TrainConfig(model="logmel-cnn", prep=prep)
    assert config.precision == "bf16"
    model = build_model(config.model_config(3))
    x, y = torch.randn(4, 32000), torch.tensor([0, 1, 2, 0])
    _, logits, _ = batch_loss(model, x, y, y, config, AUGMENTS["none"], torch.arange(4), None)
    assert logits.dtype == (torch.bfloat16 if native else torch.float32)
    assert fast_precision(config, cpu) == ("bf16" if native else "fp32")
    assert fast_precision(TrainConfig(model="logmel-cnn", prep=prep, precision="fp32"), cpu) == "fp32"
    assert devices.arithmetic(cpu) == ("bfloat16 (native)" if native else "float32 (no native bfloat16)")  # sidebar
    assert devices.precision_note("bf16", cpu) == ("" if native else
                                                   ", float32 (no native bfloat16 here: faster than emulating it)")


@pytest.mark.parametrize("native", [False, True])
def test_a_float32_cpu_run_trains_channels_last_and_resumes_bit_for_bit(tmp_path, monkeypatch, native):
    """Where a run computes in float32 on the CPU (no native bfloat16), its 2-D convolutions train
    channels-last (oneDNN's faster layout there); a bf16 run on a CPU that has it keeps its layout. Weights and
    optimizer state saved from channels-last tensors resume to the same model, bit for bit."""
    from audioclf import device as devices
    from audioclf import train

    monkeypatch.setattr(devices, "fast_bf16", lambda device_type: native)
    ds = open_dataset(make_class_folders(tmp_path / "tiny", per_class=10, seconds=2.0, sr=16000))
    prep = TINY_PREP.__class__(sample_rate=16000, duration=2.0, window=16000, hop=8000)
    config = TrainConfig(model="logmel-cnn", epochs=3, batch_size=8, cv_folds=(2, 3), prep=prep,
                         dataset_id=ds.fingerprint())
    prepared = prepare(ds, prep)
    layouts, real_epoch = [], train.train_epoch

    def spy(model, *a, **k):
        layouts.append(model.blocks[0].body[3].weight.is_contiguous(memory_format=torch.channels_last))  # 32 -> 32
        return real_epoch(model, *a, **k)

    monkeypatch.setattr(train, "train_epoch", spy)
    straight = train_run(config, prepared, folds=[2], root=tmp_path / "a", show_bar=False).path
    assert layouts == [not native] * 3
    if native:
        return
    stopped_after_epoch(monkeypatch, 1, lambda: train_run(config, prepared, folds=[2], root=tmp_path / "b",
                                                           show_bar=False))
    resumed = train_run(config, prepared, folds=[2], root=tmp_path / "b", show_bar=False).path
    assert layouts == [True] * 6  # 3 straight, 1 before the crash, 2 resumed
    a = store.load_torch(straight / "fold2" / "final.pt")["state_dict"]
    b = store.load_torch(resumed / "fold2" / "final.pt")["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
