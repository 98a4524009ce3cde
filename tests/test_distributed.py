"""Two-process gloo training on CPU under torchrun, against a single-process run of the same config.

Tolerance: with --spread-folds each process trains whole folds, so the weights match a
single-process run to float round-off (atol 1e-5) and the test predictions are identical. With the
default data-parallel mode each process normalises its own half of every batch (BatchNorm is not
synchronised on CPU; on CUDA it is), so the losses differ slightly: the first epoch's training loss
must agree within 10 %, and the run must end in the same place (training accuracy within 0.2).
Also, with a GPU simulated (CI has none): which device and backend each process takes when there are
more processes than GPUs (fold models side by side on one GPU), and the refusal of data parallel there.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import make_class_folders

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--epochs", "3", "--batch-size", "10", "--lr", "0.001", "--cv-folds", "2", "3", "--quiet",
        "--sample-rate", "8000", "--duration", "1", "--window", "4000", "--hop", "2000"]


def train(data: Path, ck: Path, *extra: str, procs: int = 1) -> Path:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "AUDIOCLF_CACHE": str(data.parent / "cache")}
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(procs)] if procs > 1
                else [sys.executable])
    cmd = [*launcher, "-m", "audioclf", "train", "--data", str(data), "--checkpoints", str(ck), *ARGS, *extra]
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    runs = list(ck.iterdir())
    assert len(runs) == 1  # exactly one set of checkpoints, whatever the process count
    return runs[0]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("dist")
    data = make_class_folders(base / "tiny", per_class=10)
    return {"single": train(data, base / "single"),
            "ddp": train(data, base / "ddp", procs=2),
            "spread": train(data, base / "spread", "--spread-folds", procs=2)}


def history(run: Path, fold: int) -> list[dict]:
    return json.loads((run / f"fold{fold}" / "history.json").read_text())


def test_every_mode_writes_one_complete_run_under_the_same_key(runs):
    assert len({r.name for r in runs.values()}) == 1
    for run in runs.values():
        names = sorted(p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file())
        assert names == [".train.lock", "config.json",
                         "fold2/best.pt", "fold2/best.pt.sha256", "fold2/final.pt", "fold2/final.pt.sha256",
                         "fold2/history.json",
                         "fold3/best.pt", "fold3/best.pt.sha256", "fold3/final.pt", "fold3/final.pt.sha256",
                         "fold3/history.json", "progress.json", "results.json"]
        assert json.loads((run / "progress.json").read_text())["status"] == "done"


def test_spread_folds_matches_a_single_process_run(runs):
    for fold in (2, 3):
        a = torch.load(runs["single"] / f"fold{fold}" / "final.pt", weights_only=True)["state_dict"]
        b = torch.load(runs["spread"] / f"fold{fold}" / "final.pt", weights_only=True)["state_dict"]
        assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-5) for k in a)
    single = json.loads((runs["single"] / "results.json").read_text())
    spread = json.loads((runs["spread"] / "results.json").read_text())
    assert [single["folds"][f]["predictions"] for f in "23"] == [spread["folds"][f]["predictions"] for f in "23"]


def test_data_parallel_matches_a_single_process_run_within_tolerance(runs):
    for fold in (2, 3):
        single, ddp = history(runs["single"], fold), history(runs["ddp"], fold)
        assert len(ddp) == len(single) == 3
        assert ddp[0]["train_loss"] == pytest.approx(single[0]["train_loss"], rel=0.10)
        assert abs(ddp[-1]["train_acc"] - single[-1]["train_acc"]) <= 0.2


@pytest.fixture
def four_processes_one_gpu(monkeypatch):
    """What rank 3 of `torchrun --nproc-per-node 4` sees on a machine with one GPU (simulated: no GPU here)."""
    import torch.distributed as td

    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "3")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    calls = {"set_device": []}
    monkeypatch.setattr(torch.cuda, "set_device", calls["set_device"].append)
    monkeypatch.setattr(td, "is_initialized", lambda: False)
    monkeypatch.setattr(td, "init_process_group", lambda backend: calls.update(backend=backend))
    monkeypatch.setattr(td, "get_rank", lambda: 3)
    monkeypatch.setattr(td, "get_world_size", lambda: 4)
    return calls


def test_fold_models_side_by_side_on_one_gpu_share_it_over_gloo(four_processes_one_gpu):
    from audioclf.distributed import Dist

    dist = Dist.from_env()
    assert dist.shares_gpus and four_processes_one_gpu["backend"] == "gloo"  # nccl refuses two ranks on one GPU
    assert dist.device(torch.device("cuda")) == torch.device("cuda", 0)
    assert four_processes_one_gpu["set_device"] == [0]


def test_one_process_per_gpu_keeps_nccl_and_its_own_gpu(four_processes_one_gpu, monkeypatch):
    from audioclf.distributed import Dist

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    dist = Dist.from_env()
    assert not dist.shares_gpus and four_processes_one_gpu["backend"] == "nccl"
    assert dist.device(torch.device("cuda")) == torch.device("cuda", 3)


def test_data_parallel_on_a_shared_gpu_is_refused_with_what_to_do(tmp_path, monkeypatch, capsys):
    from audioclf import cli
    from audioclf.distributed import Dist

    data = make_class_folders(tmp_path / "tiny", per_class=5, seconds=1.0)
    monkeypatch.setattr("audioclf.device.pick_device", lambda requested=None: torch.device("cuda"))
    monkeypatch.setattr(Dist, "from_env", classmethod(lambda cls: cls(rank=0, world=4, shares_gpus=True)))
    code = cli.main(["train", "--data", str(data), "--checkpoints", str(tmp_path / "ck"), *ARGS])
    assert code == 2 and "--spread-folds" in capsys.readouterr().err
    assert not (tmp_path / "ck").exists() or not any((tmp_path / "ck").iterdir())  # nothing trained or written
