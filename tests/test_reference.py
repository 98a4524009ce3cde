"""The shipped reference runs (checkpoints/REFERENCE.json): intact, and they reproduce their results."""
import hashlib
import json
from pathlib import Path

import pytest

from audioclf import store
from audioclf.store import Run
from audioclf.data import open_dataset
from audioclf.prepare import prepare
from audioclf.inference import predict_logits

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "checkpoints" / "REFERENCE.json"


def manifest() -> dict:
    return json.loads(MANIFEST.read_text())


def test_the_four_reference_models_and_the_recipe_are_shipped_within_40_mb():
    runs = manifest()["runs"]
    assert set(runs) == {"cnn", "transformer-1h", "transformer-2h", "transformer-4h", "logmel-cnn", "logmel-transformer-2h"}
    total = 0
    for r in runs.values():
        run = ROOT / "checkpoints" / r["folder"]
        for name, digest in r["files"].items():
            assert hashlib.sha256((run / name).read_bytes()).hexdigest() == digest, f"{r['folder']}/{name} changed"
            total += (run / name).stat().st_size
        config = Run(run).config
        assert run.name == f"{config.label}-{config.key()}" and config.epochs == (120 if config.augment == "recipe" else 100)
        assert sum(n.endswith("best.pt") for n in r["files"]) == 4
    assert total < 40 * 2**20


@pytest.mark.integration
def test_shipped_checkpoints_reproduce_their_recorded_predictions(esc10_dir):
    dataset = open_dataset(esc10_dir, "esc10")
    assert dataset.fingerprint() == manifest()["dataset_id"]
    prepared = prepare(dataset)
    x_test, y_test = prepared.subset([1])
    for r in manifest()["runs"].values():
        run = ROOT / "checkpoints" / r["folder"]
        results = json.loads((run / "results.json").read_text())
        assert results["y_true"] == y_test.tolist()
        for fold, recorded in results["folds"].items():
            model = store.load_model(run / f"fold{fold}" / "best.pt")
            predictions = predict_logits(model, x_test, Run(run).config.prep).argmax(1)
            assert predictions.tolist() == recorded["predictions"], f"{r['folder']} fold {fold}"
            assert (predictions == y_test).float().mean().item() == pytest.approx(recorded["accuracy"])
