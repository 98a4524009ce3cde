"""Untrusted and damaged files: a checkpoint or cache that is a pickle holding code is refused, never run;
a corrupted checkpoint is found by its checksum, reported by name and retrained, never used; one trainer
per run; a full disk is one message naming the file."""
from __future__ import annotations

import builtins

import pytest
import torch

from audioclf import store
from audioclf.config import TrainConfig
from audioclf.data import open_dataset
from audioclf.errors import CheckpointError, UserError
from audioclf.prepare import cache_path, prepare
from audioclf.store import Run
from audioclf.train import train_run

from conftest import TINY_PREP, make_class_folders, stopped_after_epoch


class Payload:
    """Unpickling this calls open(marker, "w"): the file appears only if the pickle's code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return builtins.open, (self.marker, "w")


def plant(path, marker) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": Payload(marker), "model_config": {}, "classes": [], "history": Payload(marker)}, path)


@pytest.fixture
def tiny(tmp_path):
    ds = open_dataset(make_class_folders(tmp_path / "tiny", per_class=10))
    return ds, prepare(ds, TINY_PREP)


def config(ds, **kw) -> TrainConfig:
    return TrainConfig(**{**dict(model="cnn", epochs=2, batch_size=8, prep=TINY_PREP, cv_folds=(2, 3),
                                 dataset_id=ds.fingerprint()), **kw})


def test_crafted_resume_file_is_refused_and_the_fold_retrained(tiny, tmp_path, capsys):
    ds, prepared = tiny
    cfg = config(ds)
    marker = tmp_path / "pwned"
    resume = Run.of(cfg, tmp_path / "ck").resume_file(2)
    plant(resume, marker)
    run = train_run(cfg, prepared, root=tmp_path / "ck", show_bar=False)
    assert not marker.exists()
    assert "resume.pt" in capsys.readouterr().err
    assert (resume.parent / "resume.pt.bad").is_file()  # kept aside, never trained on
    assert run.fold_complete(2) and run.results() is not None


@pytest.mark.parametrize("name", ["best.pt", "final.pt"])
def test_crafted_weights_are_refused_by_name(tmp_path, name):
    marker = tmp_path / "pwned"
    path = tmp_path / "fold2" / name
    plant(path, marker)
    with pytest.raises(CheckpointError, match=name):
        store.load_model(path)
    with pytest.raises(UserError):
        Run(tmp_path).fold_model(2, name.removesuffix(".pt"))
    assert not marker.exists()


def test_crafted_int8_ranges_are_refused_by_name(tmp_path):
    """The int8 ranges beside a fold's weights (`audioclf.int8`) are loaded as plain tensors too: a pickle is
    refused, with or without a checksum that matches it."""
    import hashlib

    marker = tmp_path / "pwned"
    run = Run(tmp_path)
    plant(run.ranges_file(2), marker)
    with pytest.raises(CheckpointError, match="int8.pt: no checksum"):
        run.load_ranges(2)
    store.checksum_file(run.ranges_file(2)).write_text(hashlib.sha256(run.ranges_file(2).read_bytes()).hexdigest())
    with pytest.raises(CheckpointError, match="int8.pt: not a readable checkpoint"):
        run.load_ranges(2)
    assert not marker.exists()


def test_truncated_checkpoint_is_a_clear_error(tiny, tmp_path):
    ds, prepared = tiny
    run = train_run(config(ds, epochs=1), prepared, root=tmp_path / "ck", show_bar=False)
    best = run.weights_file(2, "best")
    best.write_bytes(best.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="best.pt"):
        store.load_model(best)


def test_crafted_data_cache_is_refused_and_rebuilt(tiny, tmp_path, capsys):
    ds, prepared = tiny
    path = cache_path(ds, TINY_PREP)
    marker = tmp_path / "pwned"
    plant(path, marker)
    again = prepare(ds, TINY_PREP)
    assert not marker.exists()
    assert "cache" in capsys.readouterr().err
    assert torch.equal(again.waves, prepared.waves)


# --- corrupted checkpoints: found by their checksum, never trained on or used ----------------------

def flip(path, offset: int = -200) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


def test_flipped_bytes_in_resume_are_never_trained_on(tiny, tmp_path, capsys, monkeypatch):
    ds, prepared = tiny
    cfg = config(ds, epochs=3)
    stopped_after_epoch(monkeypatch, 1, lambda: train_run(cfg, prepared, folds=[2], root=tmp_path / "ck",
                                                           show_bar=False))
    run = Run.of(cfg, tmp_path / "ck")
    flip(run.resume_file(2))
    train_run(cfg, prepared, folds=[2], root=tmp_path / "ck", show_bar=False)
    err = capsys.readouterr().err
    assert "resume.pt" in err and "checksum" in err and "starts again from epoch 1" in err
    assert [h["epoch"] for h in run.history(2)] == [1, 2, 3]
    assert all(h["train_loss"] == h["train_loss"] for h in run.history(2))  # no NaN


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_damaged_fold_model_is_reported_and_retrained_not_used(tiny, tmp_path, capsys, damage):
    from audioclf.cli import main
    from audioclf.inference import load_ensemble

    ds, prepared = tiny
    cfg = config(ds, epochs=1)
    run = train_run(cfg, prepared, root=tmp_path / "ck", show_bar=False)
    best = run.weights_file(2, "best")
    before = run.results()["folds"]["2"]["predictions"]
    if damage == "flip":
        flip(best)
    else:
        best.write_bytes(best.read_bytes()[:500])
    with pytest.raises(CheckpointError, match="best.pt"):  # prediction refuses it, by name
        load_ensemble(run.path)
    assert main(["predict", str(tmp_path / "tiny" / "low" / "low_00.wav"), "--run", str(run.path)]) == 2
    assert "best.pt" in capsys.readouterr().err
    again = train_run(cfg, prepared, root=tmp_path / "ck", show_bar=False)  # no longer "already trained"
    assert "best.pt" in capsys.readouterr().err
    assert (best.parent / "best.pt.bad").is_file() and load_ensemble(again.path).folds == (2, 3)
    assert again.results()["folds"]["2"]["predictions"] == before  # retrained the same way


def test_one_trainer_per_run(tiny, tmp_path):
    from audioclf.store import RunBusy

    ds, prepared = tiny
    cfg = config(ds, epochs=1)
    run = Run.of(cfg, tmp_path / "ck")
    with run.training_lock():
        assert run.is_training()
        with pytest.raises(RunBusy, match="already being trained"):
            train_run(cfg, prepared, root=tmp_path / "ck", show_bar=False)
        assert not run.progress()  # the second trainer wrote nothing
    assert not run.is_training()
    train_run(cfg, prepared, root=tmp_path / "ck", show_bar=False)
    assert run.is_complete()


def test_a_second_cli_run_follows_the_first(tmp_path):
    """Two `train` commands for one config: the second says so, waits, and prints the results."""
    import subprocess
    import sys
    from pathlib import Path

    data = make_class_folders(tmp_path / "tiny", per_class=10)
    args = [sys.executable, "-m", "audioclf", "train", "--data", str(data), "--checkpoints", str(tmp_path / "ck"),
            "--epochs", "4", "--cv-folds", "2", "3", "--batch-size", "8", "--quiet",
            "--sample-rate", "8000", "--duration", "1", "--window", "4000", "--hop", "2000"]
    root = Path(__file__).resolve().parents[1]
    first = subprocess.Popen(args, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    import time

    deadline = time.time() + 120
    while not any(r.is_training() for r in store.list_runs(tmp_path / "ck")):
        assert time.time() < deadline and first.poll() is None, first.communicate()
        time.sleep(0.05)
    second = subprocess.run(args, cwd=root, capture_output=True, text=True, timeout=300)
    out1, err1 = first.communicate(timeout=300)
    assert first.returncode == 0 and second.returncode == 0, (err1, second.stderr)
    assert "already being trained" in second.stderr and "following its progress" in second.stderr
    assert "| ensemble |" in second.stdout
    [run] = store.list_runs(tmp_path / "ck")
    assert [h["epoch"] for h in run.history(2)] == [1, 2, 3, 4]  # trained once, not overwritten


def test_a_full_disk_is_one_clear_message_naming_the_file(tmp_path, monkeypatch):
    import errno
    import os

    def full(fd, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fdopen", full)
    with pytest.raises(UserError, match=r"results.json: cannot write \(No space left on device\)"):
        store.write_json(tmp_path / "run" / "results.json", {})
    assert not [p for p in (tmp_path / "run").iterdir()]  # no temporary file left behind
