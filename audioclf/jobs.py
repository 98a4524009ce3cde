"""Training jobs: the CLI's `train` run as a background process that outlives whoever started it.

`launch` starts `python -m audioclf train ...` in a session of its own, so that a rerun, a reload or
a closed browser tab never stops it, with its output in `<run>/train.log`, and records
`<run>/job.json` (pid, started, argv). The process runs the command line that the TrainConfig
writes itself as (`TrainConfig.to_args`), so it trains in the run folder computed here, and the app
can follow a job from its first second. Job status comes from the run folder alone (progress.json
and whether its process is still alive), so every browser tab and every app process sees the same
jobs; a run another process is training (its training lock is held) is never started twice.

    config = TrainConfig(model="transformer", heads=2, dataset_id=dataset.fingerprint())
    request = JobRequest(config, data=dataset.root)
    started = launch(request)          # outcome "started", "running" (already) or "cached" (done)
    jobs = list_jobs()                 # every run in the store, newest first, with its status
    cancel(started.job.run)            # SIGTERM: the folds already finished stay on disk
    delete(started.job.run)            # a run you trained, once it is not training
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from . import store
from .config import TrainConfig
from .errors import UserError
from .store import Run

ACTIVE = ("starting", "running")
FINISHED = ("done", "failed", "cancelled")
CANCELLED_MESSAGE = "cancelled: the finished epochs and folds are kept; launch it again to resume"

# Processes this interpreter started, so that they can be reaped (a dead child that nobody waits
# for stays a zombie, which `kill(pid, 0)` still reports as alive).
_children: dict[int, subprocess.Popen] = {}


@dataclass(frozen=True)
class JobRequest:
    """A training job: the config, the data it names, the folds to train now, the device."""

    config: TrainConfig
    data: Path
    subset: str = "esc10"
    folds: tuple[int, ...] | None = None  # validation folds to train now; None: all of cv_folds
    device: str = "auto"
    at_once: bool = False  # the fold models side by side on one GPU (`train --folds-at-once`)

    def argv(self, root: Path | None = None) -> list[str]:
        """Arguments after `python -m audioclf`, with absolute paths (the process has its own cwd)."""
        root = Path(root or store.checkpoints_dir()).expanduser().resolve()
        argv = ["train", "--data", str(Path(self.data).expanduser().resolve()), "--subset", self.subset,
                "--checkpoints", str(root), *self.config.to_args(), "--device", self.device, "--quiet"]
        if self.folds:
            argv += ["--folds", *map(str, self.folds)]
        if self.at_once:
            argv.append("--folds-at-once")
        return argv


@dataclass(frozen=True)
class Job:
    """A run folder seen as a job.

    status: "starting" (process alive, no training progress yet: decoding audio), "running",
    "done", "failed", "cancelled", or "stopped" (progress says running but its process is gone).
    """

    run: Run
    config: TrainConfig
    status: str
    pid: int | None = None
    progress: dict = field(default_factory=dict)
    record: dict = field(default_factory=dict)  # job.json; empty for runs started elsewhere
    message: str = ""

    @property
    def label(self) -> str:
        return self.config.label

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def resumable(self) -> bool:
        """Stopped part-way and relaunchable with the same arguments (it resumes)."""
        return self.status in ("failed", "cancelled", "stopped") and bool(self.record.get("argv"))


@dataclass(frozen=True)
class Launch:
    job: Job
    outcome: str  # "started", "running" (a live job for this run already existed) or "cached"


def launch(request: JobRequest, root: Path | None = None) -> Launch:
    """Start training `request` in the background, unless it is already done or already running
    (launched from here, another tab, or a terminal: the run's training lock says so)."""
    root = Path(root or store.checkpoints_dir()).expanduser().resolve()
    config = request.config
    run = Run.of(config, root)
    with _launch_lock(run):
        job = job_status(run, config)
        if job.active or _still_training(run):
            return Launch(job, "running")
        if run.is_complete(request.folds):
            return Launch(job, "cached")
        run.write_config(config)  # so that list_jobs sees it at once
        _start(run, [sys.executable, "-m", "audioclf", *request.argv(root)])
    return Launch(job_status(run, config), "started")


def relaunch(run: Run | Path) -> Launch:
    """Start a stopped, cancelled or failed job again with its recorded arguments (it resumes)."""
    run = as_run(run)
    with _launch_lock(run):
        job = job_status(run)
        if job.active or _still_training(run):
            return Launch(job, "running")
        argv = job.record.get("argv")
        if not argv:
            raise UserError(f"{run.path}: no job record to relaunch; start it from the Train form")
        _start(run, [sys.executable, *argv[1:]])
    return Launch(job_status(run), "started")


def _still_training(run: Run, grace: float = 10.0) -> bool:
    """Whether another process holds the run's training lock. A process that has just written its
    final status ("cancelled", "failed") still holds it while it exits: wait `grace` seconds for that."""
    deadline = time.time() + grace
    while run.is_training():
        if time.time() > deadline:
            return True
        time.sleep(0.1)
    return False


def as_run(run: Run | Path | str) -> Run:
    return run if isinstance(run, Run) else Run(run)


def _start(run: Run, argv: list[str]) -> subprocess.Popen:
    package_parent = str(Path(__file__).resolve().parents[1])
    # The job trains at the lowest priority ($AUDIOCLF_JOB_NICE, default 19; 0 for none): it still has every
    # idle cycle, but five sessions' answers no longer wait on it for the 2 cores (bench/load.py: p95
    # 1.55-2.03 s at nice 19 against 2.24-3.31 s at nice 10 in runs taking turns; docs/reliability.md).
    env = dict(os.environ, PYTHONUNBUFFERED="1", AUDIOCLF_NICE=os.environ.get("AUDIOCLF_JOB_NICE", "19"))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    with open(run.log_file, "ab") as log:
        log.write(f"\n== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                cwd=package_parent, env=env, start_new_session=True)
    _children[proc.pid] = proc
    run.write_job_record({"pid": proc.pid, "started": time.time(), "argv": argv})
    return proc


def job_status(run: Run | Path, config: TrainConfig | None = None) -> Job:
    """The job of a run folder, from its job.json, progress.json and whether its process lives."""
    run = as_run(run)
    config = config or run.config
    record = run.job_record()
    progress = run.progress()
    job_pid, prog_pid = record.get("pid"), progress.get("pid")
    state = progress.get("status")
    # Progress belongs to the current attempt unless the job record is newer than it.
    current = bool(progress) and (not record or prog_pid == job_pid
                                  or progress.get("started", 0) >= record.get("started", 0))
    live_pid = next((p for p, since in ((prog_pid, progress.get("started")), (job_pid, record.get("started")))
                     if p and pid_alive(p, since)), None)
    if live_pid is not None:
        if current and live_pid == prog_pid and state in ("running", *FINISHED):
            status = state  # a finished state while alive: the process is printing its table and exiting
        else:
            status = "starting"
        if status != "starting":
            message = progress.get("message", "")
        elif current and state == "preparing":  # the CLI's clip-by-clip count (cli._preparing)
            message = progress.get("message") or "preparing the data (decoding audio)"
        else:
            message = "preparing the data (decoding audio)"
        message = CANCELLED_MESSAGE if status == "cancelled" else message
        return Job(run, config, status, live_pid, progress if current else {}, record, message)
    if current:
        status = "stopped" if state in ("running", "preparing") else (state or "stopped")
        message = progress.get("message", "")
        if status == "stopped":
            message = "the training process ended without finishing; launch it again to resume"
        elif status == "failed" and not message:
            message = log_tail(run)
        elif status == "cancelled":
            message = CANCELLED_MESSAGE
        return Job(run, config, status, None, progress, record, message)
    if record:  # the launched process ended before any training progress
        if record.get("cancel_requested"):
            return Job(run, config, "cancelled", None, {}, record, "cancelled before training began")
        if run.is_complete():
            return Job(run, config, "done", None, {}, record, "")
        return Job(run, config, "failed", None, {}, record, log_tail(run) or "the training process ended early")
    status = "done" if run.results_file.is_file() else "stopped"
    return Job(run, config, status, None, {}, record, "")


def list_jobs(root: Path | None = None) -> list[Job]:
    """Every run in the store as a job, newest first (runs with an unreadable config are skipped)."""
    jobs = []
    for run in store.list_runs(root):
        try:
            jobs.append(job_status(run))
        except (UserError, OSError):
            continue
    return jobs


def cancel(run: Run | Path) -> bool:
    """Stop a run's training process with SIGTERM (the CLI then marks it cancelled and keeps the
    epochs and folds already done). False when no process of this run is alive."""
    run = as_run(run)
    job = job_status(run)
    if job.pid is None or not job.active:
        return False
    if job.record:
        run.write_job_record({**job.record, "cancel_requested": time.time()})
    try:
        if job.pid == job.record.get("pid") and os.getpgid(job.pid) == job.pid != os.getpgrp():
            os.killpg(job.pid, signal.SIGTERM)  # the job's whole session: the CLI and any helpers
        else:
            os.kill(job.pid, signal.SIGTERM)  # started elsewhere (a terminal): just that process
    except ProcessLookupError:
        return False
    return True


def delete(run: Run | Path) -> None:
    """Delete a run that is not training and did not ship with audioclf (the report's comparison and the
    default models); UserError says why not. Its folder goes at once and whole (`Run.delete`)."""
    from .runs import is_shipped

    run = as_run(run)
    if is_shipped(run):
        raise UserError(f"{run.name} ships with audioclf (listed in {run.path.parent / 'REFERENCE.json'}): "
                        "it is kept; delete only runs you trained")
    try:
        job = job_status(run)
    except UserError:  # an unreadable config.json: the training lock below still guards it
        job = None
    if job is not None and job.active:
        raise store.RunBusy(f"{run.name} is {job.status} (process {job.pid}): cancel it first", job.pid)
    run.delete()  # under the training lock: also refuses a trainer that job.json does not know of


def wait(run: Run | Path, timeout: float = 60.0, poll: float = 0.2) -> Job:
    """Poll a run until its job is no longer active (or `timeout` seconds pass); returns the job."""
    deadline = time.time() + timeout
    job = job_status(run)
    while job.active and time.time() < deadline:
        time.sleep(poll)
        job = job_status(run)
    return job


def pid_alive(pid: int, since: float | None = None) -> bool:
    """Whether process `pid` runs (not a zombie) and, given `since` (a time.time() after the process
    started), was not started later than that, i.e. is not an unrelated process reusing the pid."""
    proc = _children.get(pid)
    if proc is not None and proc.poll() is not None:
        _children.pop(pid, None)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = _proc_stat(pid)
    if stat is None:  # no /proc (macOS): trust kill(pid, 0)
        return True
    state, start = stat
    if state in ("Z", "X"):
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)
        return False
    return since is None or start is None or start <= since + 1.0


def _proc_stat(pid: int) -> tuple[str, float | None] | None:
    """(state letter, start time as time.time()) from /proc, or None where /proc is absent."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    try:
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime"))
        start = boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, StopIteration, ValueError, IndexError):
        start = None
    return fields[0], start


def log_tail(run: Run | Path, lines: int = 1) -> str:
    """The last non-empty line(s) of the run's train.log (where the CLI's error message lands)."""
    try:
        text = as_run(run).log_file.read_text(errors="replace")
    except OSError:
        return ""
    kept = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


@contextlib.contextmanager
def _launch_lock(run: Run) -> Iterator[None]:
    """Serialise launches of one run across threads and processes (two tabs clicking at once)."""
    run.path.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX: no cross-process lock
        yield
        return
    with open(run.path / ".launch.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
