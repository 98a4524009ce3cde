"""A short run on the real ESC-10 (skipped where ../shared/data/esc10 or $AUDIOCLF_ESC10 is absent)."""
import json

import pytest

from audioclf.config import TrainConfig
from audioclf.data import open_dataset
from audioclf.prepare import prepare
from audioclf.inference import load_ensemble, predict_file
from audioclf.train import train_run

pytestmark = pytest.mark.integration


def test_short_esc10_run_learns_and_writes_what_the_app_needs(esc10_dir, tmp_path):
    ds = open_dataset(esc10_dir, "esc10")
    assert len(ds) == 400 and ds.folds == (1, 2, 3, 4, 5) and len(ds.classes) == 10
    prepared = prepare(ds)
    assert prepared.waves.shape == (400, 80000)
    config = TrainConfig(model="cnn", epochs=3, dataset_id=ds.fingerprint())
    run = train_run(config, prepared, folds=[2], root=tmp_path / "ck", show_bar=False).path

    history = json.loads((run / "fold2" / "history.json").read_text())
    assert len(history) == 3 and history[-1]["train_loss"] < history[0]["train_loss"]
    assert {"config.json", "progress.json", "results.json"} <= {p.name for p in run.iterdir()}
    assert {"best.pt", "final.pt", "history.json"} <= {p.name for p in (run / "fold2").iterdir()}
    results = json.loads((run / "results.json").read_text())
    fold = results["folds"]["2"]
    assert fold["n"] == 80 and len(fold["confusion"]) == 10 and sum(map(sum, fold["confusion"])) == 80
    assert set(fold["per_class"]) == set(ds.classes) and len(fold["roc"]) == 10
    assert results["test_names"][0].startswith("1-") and len(results["test_names"]) == 80

    ens = load_ensemble(run)
    clip = next(c for c in ds.clips if c.fold == 1)
    res = predict_file(ens, clip.path)
    assert res["classes"] == list(ds.classes) and abs(res["ensemble"].sum() - 1) < 1e-5
