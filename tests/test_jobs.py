"""Background training jobs (audioclf.jobs): the run folder they compute is the one the CLI writes to,
no second copy of a live job, cached configs start nothing, cancel keeps finished folds, status rules."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import ui
from audioclf import jobs, store
from audioclf.cli import build_parser, config_from_args
from audioclf.config import TrainConfig
from audioclf.data import open_dataset
from audioclf.errors import ConfigError
from audioclf.store import Run
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
    run = Run.of(config, root)
    run.write_config(config)
    if progress is not None:
        run.write_progress(progress)
    if record is not None:
        run.write_job_record(record)
    if log:
        run.log_file.write_text(log)
    return run


def request(data_dir, folds=None, device="auto", **config) -> jobs.JobRequest:
    """What the Train form makes: a config on the chosen data, and the folds to train now."""
    cfg = TrainConfig(**config, dataset_id=open_dataset(data_dir).fingerprint())
    return jobs.JobRequest(cfg, data=data_dir, folds=folds, device=device)


def test_a_side_by_side_request_asks_the_cli_for_it(data_dir, tmp_path):
    req = request(data_dir, model="cnn", epochs=1, cv_folds=(2, 3))
    assert "--folds-at-once" not in req.argv(tmp_path)
    args = build_parser().parse_args(jobs.JobRequest(req.config, data=data_dir, at_once=True).argv(tmp_path))
    assert args.folds_at_once and config_from_args(args, open_dataset(args.data)) == req.config


def test_launch_trains_in_the_run_folder_the_cli_writes_to(data_dir, tmp_path):
    root = tmp_path / "store"
    req = request(data_dir, model="cnn", epochs=1, cv_folds=(2, 3), folds=(2,))
    config, run = req.config, Run.of(req.config, root).path
    # the command line the job runs gives back the very same config, so it trains in this run folder
    args = build_parser().parse_args(req.argv(root))
    assert config_from_args(args, open_dataset(args.data)) == config
    assert config == TrainConfig(model="cnn", epochs=1, cv_folds=(2, 3), dataset_id=open_dataset(data_dir).fingerprint())
    request_ = req

    started = jobs.launch(request_, root)
    assert started.outcome == "started" and started.job.run.path == run and started.job.active
    pid = started.job.pid
    again = jobs.launch(request_, root)  # a second click while it runs: the same job, nothing new
    assert again.outcome == "running" and again.job.pid == pid
    assert [j.run.path for j in jobs.list_jobs(root)] == [run]  # visible at once, before any progress

    job = jobs.wait(run, timeout=120)
    assert job.status == "done", jobs.log_tail(run, 20)
    # The CLI process wrote its progress, weights and results into the folder plan() computed, and nowhere else.
    assert sorted(p.name for p in root.iterdir()) == [run.name]
    assert store.read_json(run / "progress.json")["pid"] == pid
    assert Run(run).fold_complete(2) and not Run(run).fold_complete(3)
    assert set(store.read_json(run / "results.json")["folds"]) == {"2"}
    assert Run(run).config == config
    assert f"run {config.key()}" in Run(run).log_file.read_text()

    cached = jobs.launch(request_, root)  # complete: returned as is, no process started
    assert cached.outcome == "cached" and cached.job.status == "done"
    assert Run(run).job_record()["pid"] == pid


def test_cancel_keeps_finished_folds_and_relaunch_resumes(data_dir, tmp_path):
    root = tmp_path / "store"
    started = jobs.launch(request(data_dir, model="cnn", epochs=3, cv_folds=(2, 3)), root)
    run = started.job.run
    deadline = time.time() + 120
    while not run.fold_complete(2):  # cancel while fold 3 trains
        assert time.time() < deadline and jobs.job_status(run).active, jobs.log_tail(run, 20)
        time.sleep(0.1)
    assert jobs.cancel(run)
    job = jobs.wait(run, timeout=60)
    if job.status == "done":
        pytest.skip("fold 3 finished before the cancel landed (a very fast machine)")
    assert job.status == "cancelled" and not job.active
    assert run.progress()["status"] == "cancelled"
    assert run.fold_complete(2) and not run.fold_complete(3)
    assert job.resumable and not jobs.cancel(run)  # nothing left to stop

    resumed = jobs.relaunch(run)
    assert resumed.outcome == "started"
    job = jobs.wait(run, timeout=120)
    assert job.status == "done", jobs.log_tail(run, 20)
    assert len(run.history(3)) == 3
    assert len(run.history(2)) == 3


def test_a_config_refuses_what_the_cli_would_refuse(data_dir, tmp_path):
    with pytest.raises(ConfigError, match="heads"):
        request(data_dir, model="transformer", heads=3)
    with pytest.raises(ConfigError, match=r"fold\(s\) \[7\]"):
        request(data_dir, cv_folds=(2, 7)).config.check_folds(open_dataset(data_dir).folds)
    with pytest.raises(ConfigError, match="not cross-validation folds"):
        request(data_dir, cv_folds=(2, 3)).config.check_folds(open_dataset(data_dir).folds, (4,))
    with pytest.raises(ConfigError, match="unknown model"):
        request(data_dir, model="rnn")
    assert not (tmp_path / "store").exists()


def test_a_job_that_fails_early_reports_the_cli_error(tmp_path, data_dir):
    root = tmp_path / "store"
    launched = jobs.launch(request(data_dir, model="cnn", epochs=1, cv_folds=(2, 3),
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
    fraction, text = ui.describe_progress(live)
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


def test_data_preparation_is_counted_clip_by_clip(tmp_path):
    """Before training starts, the CLI writes how many clips it has decoded; the app shows the count and its
    fraction, and a process that died while decoding reads as stopped."""
    from audioclf.cli import _preparing

    config = TrainConfig(model="cnn", epochs=2, cv_folds=(2, 3))
    root = tmp_path / "store"
    report = _preparing(config, root)
    report(3, 10)
    run = Run.of(config, root)
    run.write_config(config)
    job = jobs.job_status(run)
    assert job.status == "starting" and "3 of 10 clips decoded" in job.message
    assert ui.describe_progress(job) == (0.3, "preparing the data: 3 of 10 clips decoded")
    run.write_progress({**run.progress(), "pid": dead_pid()})
    assert jobs.job_status(run).status == "stopped"


def test_pid_alive():
    assert jobs.pid_alive(os.getpid())
    assert not jobs.pid_alive(dead_pid())
    assert not jobs.pid_alive(os.getpid(), since=1.0)  # started long after that time: a reused pid


def test_format_seconds():
    assert ui.format_seconds(42) == "42 s"
    assert ui.format_seconds(125) == "2 min 05 s"
    assert ui.format_seconds(1500) == "25 min"
    assert ui.format_seconds(7260) == "2 h 01 min"


def test_a_launched_job_trains_below_the_apps_priority(monkeypatch, tmp_path):
    """The app's jobs ask for a lower CPU priority ($AUDIOCLF_JOB_NICE, default 19), and `train` takes it
    before torch starts its threads: five sessions' predictions waited on a job at the app's priority."""
    pid, seen = dead_pid(), {}

    class Recorded:
        def __init__(self, argv, **kwargs):
            seen.update(kwargs["env"])
            self.pid = pid

    monkeypatch.delenv("AUDIOCLF_JOB_NICE", raising=False)
    monkeypatch.setattr(jobs.subprocess, "Popen", Recorded)
    jobs._start(fake_run(tmp_path, TrainConfig(model="cnn", epochs=1)), [sys.executable, "-m", "audioclf", "train"])
    jobs._children.pop(pid, None)
    assert seen["AUDIOCLF_NICE"] == "19"
    monkeypatch.undo()
    probe = ("import os; from audioclf.cli import lower_priority; before = os.nice(0); lower_priority(); "
             "print(os.nice(0) - before)")
    for asked, moved in (("3", "3"), ("", "0"), ("lots", "0")):
        out = subprocess.run([sys.executable, "-c", probe], env={**os.environ, "AUDIOCLF_NICE": asked},
                             capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
        assert out.stdout.strip() == moved, out.stderr
        assert ("ignored" in out.stderr) == (asked == "lots")


def _autogroup_nice() -> str | None:
    """This process's session nice value, or None where the kernel shows no autogroup (not Linux, turned off,
    or a sandbox whose /proc/self/autogroup is empty, as on the CI machine)."""
    try:
        fields = Path("/proc/self/autogroup").read_text().split()
    except OSError:
        return None
    return fields[-1] if len(fields) == 3 and fields[1] == "nice" else None


@pytest.mark.skipif(_autogroup_nice() is None, reason="no autogroup scheduling here (not Linux, off, or hidden)")
def test_a_job_in_its_own_session_makes_that_session_nice_too():
    """With autogroup scheduling, sessions share the CPU first: a nice job in a session of its own (as
    `jobs._start` starts it) still took an equal share beside the app until its session was made nice too.
    A train run in a user's own terminal session leaves that session's nice alone."""
    probe = ("from audioclf.cli import lower_priority; lower_priority(); "
             "print(open('/proc/self/autogroup').read().split()[-1])")
    ours = _autogroup_nice()
    for own_session, expected in ((True, "19"), (False, ours)):
        out = subprocess.run([sys.executable, "-c", probe], env={**os.environ, "AUDIOCLF_NICE": "19"},
                             capture_output=True, text=True, start_new_session=own_session,
                             cwd=Path(__file__).resolve().parents[1])
        assert out.stdout.strip() == expected, out.stderr


def test_delete_removes_a_run_whole_and_refuses_shipped_and_training_runs(tmp_path):
    import json

    from audioclf.errors import UserError

    root = tmp_path / "store"
    mine = fake_run(root, TrainConfig(model="cnn", epochs=1), progress={"status": "done"})
    (mine.fold_dir(2)).mkdir()
    (mine.fold_dir(2) / "history.json").write_text("[]")
    kept = fake_run(root, TrainConfig(model="cnn", epochs=2))
    shipped = fake_run(root, TrainConfig(model="cnn", epochs=3))
    (root / "REFERENCE.json").write_text(json.dumps({"runs": {"cnn": {"folder": shipped.name}}}))
    (root / f".deleted-{kept.name}-1").mkdir()  # an earlier delete that was interrupted
    (root / f".deleted-{kept.name}-1" / "config.json").write_text("{}")

    assert {r.name for r in store.list_runs(root)} == {mine.name, kept.name, shipped.name}  # hidden ones unlisted
    jobs.delete(mine)
    assert not mine.path.exists() and sorted(p.name for p in root.iterdir()) == sorted(
        ["REFERENCE.json", kept.name, shipped.name])  # whole, and the interrupted one cleared too

    with pytest.raises(UserError, match="ships with audioclf"):
        jobs.delete(shipped)
    with kept.training_lock():  # a trainer that job.json does not know of (a terminal)
        with pytest.raises(store.RunBusy):
            jobs.delete(kept)
    assert kept.config_file.is_file() and shipped.config_file.is_file()
    with pytest.raises(UserError, match="not a run folder"):
        Run(tmp_path).delete()


def test_delete_refuses_a_run_whose_job_is_running(tmp_path):
    root = tmp_path / "store"
    run = fake_run(root, TrainConfig(model="cnn", epochs=1), record={"pid": os.getpid(), "started": time.time()})
    assert jobs.job_status(run).active
    with pytest.raises(store.RunBusy, match="cancel it first"):
        jobs.delete(run)
    assert run.config_file.is_file()


def test_the_cli_deletes_only_when_told_to(tmp_path):
    root = tmp_path / "store"
    run = fake_run(root, TrainConfig(model="cnn", epochs=1))
    cli = [sys.executable, "-m", "audioclf", "delete", "--checkpoints", str(root)]
    here = dict(capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1], stdin=subprocess.DEVNULL)
    asked = subprocess.run([*cli, run.name], **here)  # no terminal to ask in, and no --yes
    assert asked.returncode == 2 and "--yes" in asked.stderr and run.path.is_dir()
    wrong = subprocess.run([*cli, "--yes", str(tmp_path)], **here)  # a folder that is not a run
    assert wrong.returncode == 2 and "not a run folder" in wrong.stderr and "Traceback" not in wrong.stderr
    done = subprocess.run([*cli, "--yes", run.name], **here)
    assert done.returncode == 0 and not run.path.exists(), done.stderr
