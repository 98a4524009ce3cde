"""The app server's predictions beside a training job launched from the app, without browsers on the machine.

    python bench/beside_job.py --label "after: the job's session nice too"

What `bench/load.py` cannot show on one small machine: there, five headless browsers share the 2 cores with
the server, and they set the pace. Here the server's own part is timed, as when each user's browser is on
their own machine. A training job is launched as the Train page launches one (`audioclf.jobs.launch`, a
CNN on synthetic data, `bench.load.start_training`); while it trains, 5 threads (one per session, torch on
one thread each, as `ui._tune_server` sets the server) classify 3 clips each with `inference.predict_file`
through the run's ensemble, in --rounds rounds. Timed per call; also the job's share of the machine (its
CPU-seconds per second) during each round. Results merged into bench/beside_job.json under --label.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from audioclf.runs import default_run  # noqa: E402
from bench import record  # noqa: E402
from bench.load import cpu_seconds, pick_clips, start_training  # noqa: E402


def one_round(ensemble, clips: list[tuple[str, bytes]], sessions: int, per_session: int) -> list[float]:
    """Seconds per `predict_file` call, `sessions` threads at once, each classifying its own clips in turn."""
    from audioclf.inference import predict_file

    times: list[float] = []

    def session(k: int) -> None:
        for name, data in clips[k * per_session:(k + 1) * per_session]:
            t0 = time.perf_counter()
            predict_file(ensemble, data, name=name)
            times.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=session, args=(k,)) for k in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, default=None, help="a run folder (default: the shipped ESC-10 default)")
    ap.add_argument("--clips-dir", type=Path, default=ROOT.parent / "shared" / "data" / "esc10" / "audio")
    ap.add_argument("--sessions", type=int, default=5)
    ap.add_argument("--per-session", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--label", default="now")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "beside_job.json")
    args = ap.parse_args()
    args.run = args.run or default_run(ROOT / "checkpoints").path

    import torch

    from audioclf import jobs
    from audioclf.inference import load_ensemble, predict_file

    torch.set_num_threads(1)  # as the app's server
    base = Path(tempfile.mkdtemp(prefix="beside_job-"))
    clips = [(p.name, p.read_bytes()) for p in pick_clips(args.sessions * args.per_session, args.clips_dir, base)]
    ensemble = load_ensemble(args.run)
    predict_file(ensemble, clips[0][1], name=clips[0][0])  # loaded and warm, as after a first upload
    run = start_training(base / "store", base)
    pid = int(run.progress()["pid"])
    autogroup = Path(f"/proc/{pid}/autogroup")  # Linux with autogroup scheduling: "/autogroup-N nice K"
    job_nice = os.getpriority(os.PRIO_PROCESS, pid)
    session_nice = int(autogroup.read_text().split()[-1]) if autogroup.is_file() else None
    times, job_cores = [], []
    try:
        for _ in range(args.rounds):
            cpu0, t0 = cpu_seconds(pid), time.perf_counter()
            times += one_round(ensemble, clips, args.sessions, args.per_session)
            job_cores.append((cpu_seconds(pid) - cpu0) / (time.perf_counter() - t0))
            time.sleep(1.0)
    finally:
        jobs.cancel(run)
    times.sort()
    entry = {"run": args.run.name, "calls": len(times), "p50_s": round(statistics.median(times), 3),
             "p95_s": round(times[round(0.95 * (len(times) - 1))], 3), "max_s": round(times[-1], 3),
             "job_cores": [round(c, 2) for c in job_cores], "job_nice": job_nice, "job_session_nice": session_nice,
             "when": time.strftime("%Y-%m-%d %H:%M"), "load_average": os.getloadavg()[0]}
    print(entry)
    record(args.out, args.label, entry)


if __name__ == "__main__":
    main()
