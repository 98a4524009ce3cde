"""Background training jobs (audioclf.jobs): the run folder they compute is the one the CLI writes to,
no second copy of a live job, cached configs start nothing, cancel keeps finished folds, status rules."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from audioclf import jobs, store
from audioclf.config import TrainConfig
from audioclf.data import DataError, open_dataset
from conftest import make_class_folders


@pytest.fixture
def data_dir(tmp_path):
    """30 one-second clips, 3 classes, 2 per class and fold."""
    return make_class_folders(tmp_path / "tiny", per_class=10)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def fake_run(root, config: TrainConfig, progress: dict | None = None, record: dict | None = None, log: str = ""):
    run = store.run_dir(config, root)
    store.write_json(run / "config.json", config.to_dict())
    if progress is not None:
        store.write_json(run / "progress.json", progress)
    if record is not None:
        store.write_json(run / jobs.JOB_FILE, record)
    if log:
        (run / jobs.LOG_FILE).write_text(log)
    return run


def test_launch_trains_in_the_run_folder_the_cli_writes_to(data_dir, tmp_path):
    root = tmp_path / "store"
    request = jobs.JobRequest(data=data_dir, model="cnn", epochs=1, cv_folds=(2, 3), folds=(2,))
    config, run = jobs.plan(request, root)
    assert config == TrainConfig(model="cnn", epochs=1, cv_folds=(2, 3), dataset_id=open_dataset(data_dir).fingerprint())

    started = jobs.launch(request, root)
    assert started.outcome == "started" and started.job.run == run and started.job.active
    pid = started.job.pid
    again = jobs.launch(request, root)  # a second click while it runs: the same job, nothing new
    assert again.outcome == "running" and again.job.pid == pid
    assert [j.run for j in jobs.list_jobs(root)] == [run]  # visible at once, before any progress

    job = jobs.wait(run, timeout=120)
    assert job.status == "done", jobs.log_tail(run, 20)
    # The CLI process wrote its progress, weights and results into the folder plan() computed, and nowhere else.
    assert sorted(p.name for p in root.iterdir()) == [run.name]
    assert store.read_json(run / "progress.json")["pid"] == pid
    assert store.fold_complete(config, 2, root) and not store.fold_complete(config, 3, root)
    assert set(store.read_json(run / "results.json")["folds"]) == {"2"}
    assert store.load_config(run) == config
    assert f"run {config.key()}" in (run / jobs.LOG_FILE).read_text()

    cached = jobs.launch(request, root)  # complete: returned as is, no process started
    assert cached.outcome == "cached" and cached.job.status == "done"
    assert store.read_json(run / jobs.JOB_FILE)["pid"] == pid


def test_cancel_keeps_finished_folds_and_relaunch_resumes(data_dir, tmp_path):
    root = tmp_path / "store"
    request = jobs.JobRequest(data=data_dir, model="cnn", epochs=3, cv_folds=(2, 3))
    started = jobs.launch(request, root)
    config, run = started.job.config, started.job.run
    deadline = time.time() + 120
    while not store.fold_complete(config, 2, root):  # cancel while fold 3 trains
        assert time.time() < deadline and jobs.job_status(run).active, jobs.log_tail(run, 20)
        time.sleep(0.1)
    assert jobs.cancel(run)
    job = jobs.wait(run, timeout=60)
    if job.status == "done":
        pytest.skip("fold 3 finished before the cancel landed (a very fast machine)")
    assert job.status == "cancelled" and not job.active
    assert store.read_json(run / "progress.json")["status"] == "cancelled"
    assert store.fold_complete(config, 2, root) and not store.fold_complete(config, 3, root)
    assert job.resumable and not jobs.cancel(run)  # nothing left to stop

    resumed = jobs.relaunch(run)
    assert resumed.outcome == "started"
    job = jobs.wait(run, timeout=120)
    assert job.status == "done", jobs.log_tail(run, 20)
    assert len(store.read_json(run / "fold3" / "history.json")) == 3
    assert len(store.read_json(run / "fold2" / "history.json")) == 3


def test_plan_refuses_what_the_cli_would_refuse(data_dir, tmp_path):
    with pytest.raises(ValueError, match="heads"):
        jobs.plan(jobs.JobRequest(data=data_dir, model="transformer", heads=3), tmp_path)
    with pytest.raises(DataError, match="not found"):
        jobs.plan(jobs.JobRequest(data=tmp_path / "nowhere"), tmp_path)
    with pytest.raises(DataError, match=r"fold\(s\) \[7\]"):
        jobs.plan(jobs.JobRequest(data=data_dir, cv_folds=(2, 7)), tmp_path)
    with pytest.raises(ValueError, match="not cross-validation folds"):
        jobs.plan(jobs.JobRequest(data=data_dir, cv_folds=(2, 3), folds=(4,)), tmp_path)
    with pytest.raises(ValueError, match="unknown model"):
        jobs.plan(jobs.JobRequest(data=data_dir, model="rnn"), tmp_path)
    assert not (tmp_path / "store").exists()


def test_a_job_that_fails_early_reports_the_cli_error(tmp_path, data_dir):
    root = tmp_path / "store"
    launched = jobs.launch(jobs.JobRequest(data=data_dir, model="cnn", epochs=1, cv_folds=(2, 3),
                                           device="definitely-not-a-device"), root)
    job = jobs.wait(launched.job.run, timeout=60)
    assert job.status == "failed"
    assert "device" in job.message.lower()
    assert job.resumable  # it can be launched again from its record


def test_status_from_the_run_folder(tmp_path):
    config = TrainConfig(model="cnn", epochs=2, cv_folds=(2, 3))
    gone = dead_pid()
    now = time.time()
    progress = {"status": "running", "pid": gone, "started": now, "fold": 2, "epoch": 1, "epochs": 2,
                "folds": [2, 3], "fraction": 0.25, "eta_s": 30.0, "message": ""}

    stopped = jobs.job_status(fake_run(tmp_path / "a", config, progress))
    assert stopped.status == "stopped" and stopped.pid is None and "resume" in stopped.message

    live = jobs.job_status(fake_run(tmp_path / "b", config, {**progress, "pid": os.getpid(), "started": now}))
    assert live.status == "running" and live.pid == os.getpid() and live.active
    fraction, text = jobs.describe_progress(live)
    assert fraction == 0.25 and "fold 2 (1 of 2)" in text and "epoch 1/2" in text and "30 s left" in text

    # A pid that is alive but belongs to a process started after the run began is someone else's.
    reused = jobs.job_status(fake_run(tmp_path / "c", config, {**progress, "pid": os.getpid(), "started": 1.0}))
    assert reused.status == "stopped"

    record = {"pid": gone, "started": now, "argv": [sys.executable, "-m", "audioclf", "train"]}
    failed = jobs.job_status(fake_run(tmp_path / "d", config, None, record,
                                      log="loading\naudioclf: error: /x: dataset folder not found\n"))
    assert failed.status == "failed" and failed.message == "audioclf: error: /x: dataset folder not found"
    cancelled = jobs.job_status(fake_run(tmp_path / "e", config, None, {**record, "cancel_requested": now}))
    assert cancelled.status == "cancelled"

    starting = jobs.job_status(fake_run(tmp_path / "f", config, {**progress, "status": "cancelled", "started": 1.0},
                                        {**record, "pid": os.getpid(), "started": now}))
    assert starting.status == "starting" and starting.progress == {}  # relaunched, still decoding audio

    assert [j.status for j in jobs.list_jobs(tmp_path / "a")] == ["stopped"]
    assert jobs.list_jobs(tmp_path / "nothing-here") == []


def test_pid_alive():
    assert jobs.pid_alive(os.getpid())
    assert not jobs.pid_alive(dead_pid())
    assert not jobs.pid_alive(os.getpid(), since=1.0)  # started long after that time: a reused pid


def test_format_seconds():
    assert jobs.format_seconds(42) == "42 s"
    assert jobs.format_seconds(125) == "2 min 05 s"
    assert jobs.format_seconds(1500) == "25 min"
    assert jobs.format_seconds(7260) == "2 h 01 min"
