"""The shipped reference runs (checkpoints/REFERENCE.json): intact, and they reproduce their results."""
import hashlib
import json
from pathlib import Path

import pytest
import torch

from audioclf import store
from audioclf.store import Run
from audioclf.data import open_dataset
from audioclf.prepare import prepare
from audioclf.inference import predict_logits

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "checkpoints" / "REFERENCE.json"


def manifest() -> dict:
    return json.loads(MANIFEST.read_text())


ESC10_RUNS = {"cnn", "transformer-1h", "transformer-2h", "transformer-4h", "logmel-cnn", "logmel-transformer-2h",
              "logmel-cnn-taught"}
ESC50_RUNS = {"esc50/logmel-cnn", "esc50/logmel-cnn-taught"}  # the recipe, and it taught again and averaged (the default)


def test_the_four_reference_models_and_the_recipes_are_shipped_within_40_mb():
    runs = manifest()["runs"]
    assert set(runs) == ESC10_RUNS | ESC50_RUNS
    total = 0
    for key, r in runs.items():
        run = ROOT / "checkpoints" / r["folder"]
        for name, digest in r["files"].items():
            assert hashlib.sha256((run / name).read_bytes()).hexdigest() == digest, f"{r['folder']}/{name} changed"
            total += (run / name).stat().st_size
        config = Run(run).config
        assert run.name == f"{config.label}-{config.key()}"
        assert config.dataset_id == manifest()["datasets"][key.split("/")[0] if "/" in key else "esc10"]
        if key in ESC10_RUNS:
            assert config.epochs == (30 if config.init else 120 if config.augment == "recipe" else 100)
        if config.init:  # taught from a shipped run, named by its folder (no path of the machine that taught it)
            assert (ROOT / "checkpoints" / config.init).is_dir()
        assert sum(n.endswith("best.pt") for n in r["files"]) == 4
    assert total < 40 * 2**20


@pytest.mark.integration
def test_shipped_checkpoints_reproduce_their_recorded_predictions(esc10_dir):
    dataset = open_dataset(esc10_dir, "esc10")
    assert dataset.fingerprint() == manifest()["dataset_id"]
    prepared = prepare(dataset)
    x_test, y_test = prepared.subset([1])
    for key, r in manifest()["runs"].items():
        if key not in ESC10_RUNS:
            continue
        run = ROOT / "checkpoints" / r["folder"]
        results = json.loads((run / "results.json").read_text())
        assert results["y_true"] == y_test.tolist()
        for fold, recorded in results["folds"].items():
            model = store.load_model(run / f"fold{fold}" / "best.pt")
            predictions = predict_logits(model, x_test, Run(run).config.prep).argmax(1)
            assert predictions.tolist() == recorded["predictions"], f"{r['folder']} fold {fold}"
            assert (predictions == y_test).float().mean().item() == pytest.approx(recorded["accuracy"])


@pytest.mark.integration
@pytest.mark.parametrize("key", sorted(ESC50_RUNS))
def test_the_shipped_esc50_runs_reproduce_their_recorded_predictions(esc50_dir, key):
    """The ESC-50 runs, stored in int8 (a scale per output channel), give what results.json says."""
    dataset = open_dataset(esc50_dir, "esc50")
    r = manifest()["runs"][key]
    assert dataset.fingerprint() == r["dataset_id"] == manifest()["datasets"]["esc50"]
    run = Run(ROOT / "checkpoints" / r["folder"])
    prepared = prepare(dataset, run.config.prep)
    x_test, y_test = prepared.subset([1])
    results = run.results()
    assert results["y_true"] == y_test.tolist() and len(results["classes"]) == 50
    for fold in ("2", "5"):  # two of the four: each takes ~10 s on 400 clips
        ckpt = store.load_torch(run.weights_file(int(fold)))
        assert ckpt["storage"] == "int8" and all(v.dtype == torch.int8 for k, v in ckpt["state_dict"].items()
                                                  if k in ckpt["scales"])
        predictions = predict_logits(store.model_from_checkpoint(ckpt), x_test, run.config.prep).argmax(1)
        assert predictions.tolist() == results["folds"][fold]["predictions"], f"fold {fold}"


def test_esc50_predicts_with_the_averaged_run_and_teaches_from_the_recipe_it_started_from():
    """The ESC-50 default is the best shipped ESC-50 run by validation (the recipe taught again with rooms and
    averaged with itself); `--from esc50` still names the recipe, which the ESC-10 default was taught from."""
    from audioclf import runs, teach

    shipped = ROOT / "checkpoints"
    averaged, recipe = (manifest()["runs"][k]["folder"] for k in ("esc50/logmel-cnn-taught", "esc50/logmel-cnn"))
    assert runs.defaults(shipped)["esc50"].name == averaged
    assert runs.validation_accuracy(Run(shipped / averaged)) > runs.validation_accuracy(Run(shipped / recipe))
    assert Run(shipped / averaged).config.init == recipe and Run(shipped / averaged).config.start_weight == 0.5
    assert teach.source_run("esc50", shipped).name == recipe == runs.defaults(shipped)["esc10"].config.init


@pytest.mark.integration
def test_the_documented_commands_make_the_shipped_defaults(esc10_dir, esc50_dir):
    """The commands that README.md and docs/results.md give for the two defaults train the shipped runs (the
    same config, so the same run folder): a changed teaching default would otherwise leave them training
    something else without a word."""
    import re
    import shlex

    from audioclf import cli, runs

    defaults = runs.defaults(ROOT / "checkpoints")
    readme, results = (ROOT / "README.md").read_text(), (ROOT / "docs" / "results.md").read_text()
    esc50_line = next(line for line in readme.splitlines() if "the ESC-50 default's last step" in line)
    esc10_line = next(line for line in results.splitlines()
                      if line.startswith("python -m audioclf train --data ../shared/data/esc10 --from esc50"))
    for line, data, name in ((esc50_line, esc50_dir, "esc50"), (esc10_line, esc10_dir, "esc10")):
        words = shlex.split(line.split("#")[0])[3:]  # after "python -m audioclf"
        words[words.index("--data") + 1] = str(data)
        args = cli.build_parser().parse_args(words)
        config = cli.config_from_args(args, open_dataset(data, args.subset))
        assert re.sub(r"^.*-", "", defaults[name].name) == config.key(), f"{name}: {line}"


def test_shipping_again_keeps_a_shipped_run_whose_files_are_unchanged(tmp_path, monkeypatch):
    """tools/ship_reference.py re-stores only what changed: whether int8 keeps a fold's predictions can differ between
    CPUs, so shipping a new run must not re-store the others (it once turned a float16 fold into int8)."""
    monkeypatch.syspath_prepend(str(ROOT / "tools"))
    from ship_reference import sha256, unchanged

    run = Run(tmp_path / "logmel-cnn-0123456789ab")
    (run.path / "fold2").mkdir(parents=True)
    for name in ("config.json", "fold2/best.pt"):
        (run.path / name).write_bytes(name.encode())
    entry = {"folder": run.name, "files": {n: sha256(run.path / n) for n in ("config.json", "fold2/best.pt")}}
    assert unchanged(run, entry)
    assert not unchanged(run, None) and not unchanged(run, {**entry, "folder": "logmel-cnn-ba9876543210"})
    assert not unchanged(run, {**entry, "files": {}})  # an entry that lists nothing vouches for nothing
    (run.path / "fold2" / "best.pt").write_bytes(b"other weights")
    assert not unchanged(run, entry)
    (run.path / "fold2" / "best.pt").unlink()
    assert not unchanged(run, entry)
