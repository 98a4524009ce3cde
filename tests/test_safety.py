"""Untrusted files: a checkpoint or cache that is a pickle holding code is refused, never run."""
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

from conftest import TINY_PREP, make_class_folders


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
