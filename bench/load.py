"""The Predict page under load: N browser sessions each upload clips while a training job runs.

    python bench/load.py                                  # 1 and 5 sessions x 3 clips, without and with training
    python bench/load.py --sessions 5 --train yes         # one case
    python bench/load.py --run checkpoints/cnn-26b949279438 --clips-dir /work/shared/data/esc10/audio

Starts `streamlit run app.py` itself (through bench/load_server.py, which times the pieces of every
script run) on a free localhost port, with a store in a temporary folder that holds copies of the
reference runs in checkpoints/ (or of --run). With --train yes it first launches a training job
(`audioclf.jobs.launch`: a CNN on a small synthetic dataset, in that same store, as the Train page
would) and keeps it running throughout. Then headless Chromium (/usr/bin/chromium, Playwright) opens
one context per session on Predict and all sessions upload their clips at once, one after another
within a session, each waiting for its answer.

Checked per upload: the page's "Predicted: X (ensemble probability P)" equals
`inference.predict_file` with the same run for the same file, the caption names this file and run, no
exception box, and no session's page ever shows another session's file name. Timed per upload: from
handing the file to the uploader to the answer line for this file being on the page ("answer"), and
to the script run being over ("done"). Clips: real ESC-10 clips from --clips-dir (default
../shared/data/esc10/audio) when present, else synthetic tones; never committed.

Writes bench/load.json (figures, per-upload times, the server-side breakdown) and replaces the
"## Under load" section of docs/reliability.md (--no-doc: not).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench import command_line  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
DEFAULT_CLIPS = ROOT.parent / "shared" / "data" / "esc10" / "audio"
SECTION = "## Under load"


# --- setup -----------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def machine() -> dict:
    import torch

    cpu = platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version(),
            "load_before": os.getloadavg()[0], "other_processes": busy_processes()}


def busy_processes() -> list[str]:
    """Other processes using the CPU when the bench starts (e.g. someone's training), by command."""
    out = subprocess.run(["ps", "-eo", "pcpu,pid,args", "--sort=-pcpu", "--no-headers"], capture_output=True,
                         text=True).stdout.splitlines()
    return [" ".join(line.split()[2:])[:100] + f" ({line.split()[0]} %)" for line in out[:6]
            if float(line.split()[0]) >= 20 and int(line.split()[1]) != os.getpid()]


def make_store(base: Path, runs: list[Path]) -> Path:
    store = base / "checkpoints"
    store.mkdir(parents=True)
    for run in runs:
        shutil.copytree(run, store / run.name)
    return store


def make_dataset(base: Path) -> Path:
    """A small folder-per-class dataset (3 classes x 10 one-second tones) for the training job."""
    import numpy as np
    import soundfile as sf

    root = base / "data" / "tones"
    for ci, (name, freq) in enumerate((("low", 220.0), ("mid", 880.0), ("high", 2500.0))):
        for i in range(10):
            t = np.arange(8000) / 8000
            y = 0.5 * np.sin(2 * np.pi * freq * (1 + 0.02 * i) * t)
            y = y + 0.05 * np.random.default_rng(ci * 100 + i).standard_normal(len(t))
            (root / name).mkdir(parents=True, exist_ok=True)
            sf.write(root / name / f"{name}_{i:02d}.wav", y.astype("float32"), 8000)
    return root


def pick_clips(n: int, clips_dir: Path | None, base: Path) -> list[Path]:
    """n distinct clips: real ones from clips_dir (spread over its classes), else synthetic tones."""
    if clips_dir and clips_dir.is_dir():
        files = sorted(p for p in clips_dir.iterdir() if p.suffix.lower() in (".wav", ".ogg", ".flac", ".mp3"))
        if len(files) >= n:
            step = len(files) // n
            return [files[i * step] for i in range(n)]
    import numpy as np
    import soundfile as sf

    out = []
    for i in range(n):
        path = base / "clips" / f"tone_{i:02d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        t = np.arange(5 * 22050) / 22050
        y = 0.4 * np.sin(2 * np.pi * (150 * 1.3 ** i) * t) + 0.05 * np.random.default_rng(i).standard_normal(len(t))
        sf.write(path, y.astype("float32"), 22050)
        out.append(path)
    return out


def expected(run: Path, clips: list[Path]) -> dict[str, tuple[str, str]]:
    """What the CLI says for each clip: (top class, its ensemble probability to 2 places)."""
    import numpy as np

    from audioclf.inference import load_ensemble, predict_file

    ens = load_ensemble(run)
    out = {}
    for clip in clips:
        res = predict_file(ens, clip)
        ensemble = np.asarray(res["ensemble"])
        best = int(ensemble.argmax())
        out[clip.name] = (res["classes"][best], f"{ensemble[best]:.2f}")
    return out


def start_training(store: Path, base: Path):
    """A CNN on the synthetic dataset, many epochs (it is cancelled at the end), as the Train page does."""
    from audioclf import jobs
    from audioclf.config import TrainConfig
    from audioclf.data import open_dataset

    data = make_dataset(base)
    config = TrainConfig(model="cnn", epochs=100000, cv_folds=(2, 3), dataset_id=open_dataset(data).fingerprint())
    started = jobs.launch(jobs.JobRequest(config, data=data, folds=(2,)), root=store)
    deadline = time.time() + 120
    while jobs.job_status(started.job.run).status != "running" or not started.job.run.progress().get("epoch"):
        if time.time() > deadline or jobs.job_status(started.job.run).status in jobs.FINISHED:
            raise SystemExit(f"the training job did not start: {jobs.log_tail(started.job.run, 5)}")
        time.sleep(0.5)
    return started.job.run


class Server:
    def __init__(self, env: dict, timings: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.timings = timings
        self.log = open(log, "w+")
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "load_server.py"), str(timings), str(ROOT / "app.py"),
             "--server.port", str(self.port), "--server.address", "127.0.0.1", "--server.headless", "true",
             "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        return
            except OSError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                self.log.seek(0)
                raise SystemExit(f"streamlit did not start:\n{self.log.read()[-3000:]}")
            time.sleep(0.3)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


# --- the browser -----------------------------------------------------------------------------------

ANSWER_JS = """([name, run]) => {
  const captions = [...document.querySelectorAll('[data-testid="stCaptionContainer"]')].map(e => e.innerText);
  const ok = captions.some(t => t.includes(name) && t.includes(run));
  if (!ok) return null;
  const alert = [...document.querySelectorAll('[data-testid="stAlert"]')].map(e => e.innerText)
                  .find(t => t.includes('Predicted:'));
  return alert || null;
}"""
# Checked every 50 ms (adds 25 ms on average to a time): polling on every animation frame, as
# Playwright does by default, made 5 pages' checks a good part of the browser's CPU on 2 cores.
POLL_MS = 50
IDLE_JS = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"


async def open_predict(context, url: str):
    page = await context.new_page()
    page.set_default_timeout(120_000)
    await page.goto(f"{url}/predict")
    await page.get_by_role("heading", name="Predict").first.wait_for()
    await page.locator('[data-testid="stFileUploader"]').first.wait_for()
    await page.wait_for_function(IDLE_JS, polling=POLL_MS)
    return page


async def upload(page, clip: Path, run_name: str) -> tuple[float, float, str]:
    """Hand `clip` to the uploader; seconds until its answer is shown and until the run is over."""
    t0 = time.perf_counter()
    await page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(str(clip))
    handle = await page.wait_for_function(ANSWER_JS, arg=[clip.name, run_name], timeout=120_000, polling=POLL_MS)
    answer = time.perf_counter() - t0
    text = await handle.json_value()
    await page.wait_for_function(IDLE_JS, timeout=120_000, polling=POLL_MS)
    return answer, time.perf_counter() - t0, text


async def session(browser, url: str, clips: list[Path], others: list[str], run_name: str,
                  want: dict[str, tuple[str, str]], pause: float, start: asyncio.Event, opened: list) -> list[dict]:
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await open_predict(context, url)
    opened.append(page)
    await start.wait()
    rows = []
    for clip in clips:
        answer, done, text = await upload(page, clip, run_name)
        m = re.search(r"Predicted: (\S+) \(ensemble probability ([0-9.]+)\)", text or "")
        got = (m.group(1), m.group(2)) if m else (None, None)
        body = await page.locator('[data-testid="stMain"]').inner_text()
        rows.append({"clip": clip.name, "answer_s": round(answer, 3), "done_s": round(done, 3),
                     "predicted": got[0], "probability": got[1], "expected": list(want[clip.name]),
                     "matches_cli": got == want[clip.name],
                     "exceptions": await page.locator('[data-testid="stException"]').count(),
                     "exception_text": [t[:500] for t in await page.locator('[data-testid="stException"]').all_inner_texts()],
                     "others_seen": [o for o in others if o in body]})
        await asyncio.sleep(pause)
    return rows  # the context stays open until the CPU use is read (its renderer would take its count with it)


def stat_fields(pid: int | str) -> list[str]:
    """/proc/PID/stat after the command's name: [1] the parent's pid, [11] and [12] user and system ticks."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2:].split()


def cpu_seconds(pid: int | str, fields: list[str] | None = None) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = fields or stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_snapshot() -> dict:
    """CPU seconds used so far by each process (pid -> (command, seconds)) and by the machine."""
    tick = os.sysconf("SC_CLK_TCK")
    procs = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = stat_fields(d.name)
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        procs[int(d.name)] = (cmd, cpu_seconds(d.name, fields), int(fields[1]))
    cpu = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    return {"procs": procs, "busy": (sum(cpu) - cpu[3] - cpu[4]) / tick, "all": sum(cpu) / tick,
            "time": time.perf_counter()}


ROLES = {}  # pid -> role, filled in by run_case: "server", "training job"


def cpu_delta(a: dict, b: dict) -> dict:
    """CPU seconds between two snapshots per role: the app server, the training job, the browser,
    this bench, everything else; and the machine's busy share."""
    out: dict[str, float] = {}
    for pid, (cmd, secs, ppid) in b["procs"].items():
        used = secs - a["procs"].get(pid, (None, 0.0, 0))[1]
        if used <= 0:
            continue
        role = ROLES.get(pid) or ROLES.get(ppid)
        if role is None:
            kind = re.search(r"--type=([\w-]+)", cmd)
            role = (f"browser ({kind.group(1) if kind else 'main'})" if "chrom" in cmd else "bench (this script, playwright)" if pid == os.getpid()
                    or ppid == os.getpid() or "playwright" in cmd else "other processes")
        out[role] = out.get(role, 0.0) + used
    wall = b["time"] - a["time"]
    busy = (b["busy"] - a["busy"]) / max(b["all"] - a["all"], 1e-9)
    return {"wall_s": round(wall, 2), "machine_busy": round(busy, 3),
            "cpu_s": {k: round(v, 2) for k, v in sorted(out.items(), key=lambda kv: -kv[1])}}


async def drive(url: str, assignment: list[list[Path]], run_name: str, want: dict, pause: float,
                warm_clip: Path) -> tuple[list[list[dict]], float, dict]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                          args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        # One upload first, in its own context: the server's first prediction loads the fold models
        # (once per server); its time is reported apart as "first upload".
        context = await browser.new_context()
        page = await open_predict(context, url)
        first, _, _ = await upload(page, warm_clip, run_name)
        await context.close()
        start, opened = asyncio.Event(), []
        names = [[c.name for c in clips] for clips in assignment]
        tasks = [asyncio.create_task(session(browser, url, clips, [n for j, ns in enumerate(names) if j != i for n in ns],
                                             run_name, want, pause, start, opened))
                 for i, clips in enumerate(assignment)]
        while len(opened) < len(assignment):
            await asyncio.sleep(0.1)
            for t in tasks:
                if t.done() and t.exception():
                    raise t.exception()
        cpu0 = cpu_snapshot()
        start.set()
        results = await asyncio.gather(*tasks)
        cpu = cpu_delta(cpu0, cpu_snapshot())
        await browser.close()
    return results, first, cpu


# --- figures ---------------------------------------------------------------------------------------

def _find_all(text: str, sub: str) -> list[int]:
    out, i = [], text.find(sub)
    while i >= 0:
        out.append(i)
        i = text.find(sub, i + 1)
    return out


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of `values`."""
    s = sorted(values)
    return s[max(0, min(len(s) - 1, int(round(q / 100 * len(s) + 0.4999)) - 1))]


def breakdown(timings: Path, since: float) -> dict:
    """Mean seconds per script run of the Predict page that classified an upload, per piece."""
    rows = [json.loads(line) for line in timings.read_text().splitlines()] if timings.is_file() else []
    rows = [r for r in rows if r["start"] >= since and ("inference.predict_file" in r["phases"]
                                                         or "ui.classify" in r["phases"])]
    if not rows:
        return {}
    keys = sorted({k for r in rows for k in r["phases"]})
    out = {"script_runs": len(rows), "wall_s": round(statistics.mean(r["wall"] for r in rows), 3),
           "thread_cpu_s": round(statistics.mean(r["cpu"] for r in rows), 3)}
    out["pieces_s"] = {k: round(statistics.mean(r["phases"].get(k, 0.0) for r in rows), 4) for k in keys}
    out["rest_s"] = round(out["wall_s"] - sum(out["pieces_s"].values()), 3)
    return out


def run_case(args, sessions: int, train: bool, run: Path, clips: list[Path], want: dict, warm_clip: Path) -> dict:
    base = Path(tempfile.mkdtemp(prefix="audioclf-load-"))
    try:
        from audioclf.store import list_runs

        store = make_store(base, [run] if args.run else [r.path for r in list_runs(ROOT / "checkpoints")])
        data_root = base / "data"
        data_root.mkdir()
        env = {**os.environ, "AUDIOCLF_CHECKPOINTS": str(store), "AUDIOCLF_CACHE": str(base / "cache"),
               "AUDIOCLF_DATA_ROOTS": str(data_root), "PYTHONUNBUFFERED": "1"}
        env.pop("AUDIOCLF_DATA", None)
        training = None
        old_env = dict(os.environ)
        os.environ.update({k: env[k] for k in ("AUDIOCLF_CHECKPOINTS", "AUDIOCLF_CACHE")})
        try:
            if train:
                training = start_training(store, base)
                env["AUDIOCLF_DATA"] = str(training.path.parent.parent / "data" / "tones")
            from audioclf import runs as run_queries

            shown = run_queries.default_run(store)  # the run the Predict page picks
            if shown.name != run.name:
                raise SystemExit(f"the Predict page would use {shown.name}, not {run.name}")
            server = Server(env, base / "timings.jsonl", base / "streamlit.log")
            try:
                assignment = [clips[i * args.clips:(i + 1) * args.clips] for i in range(sessions)]
                since = time.time()
                ROLES.clear()
                ROLES[server.proc.pid] = "app server"
                if training is not None:
                    ROLES[int(training.job_record().get("pid") or 0)] = "training job"
                results, first, cpu = asyncio.run(drive(server.url, assignment, run.name, want, args.pause, warm_clip))
                load = os.getloadavg()[0]
            finally:
                server.stop()
                server_log = (base / "streamlit.log").read_text()
            progress = training.progress() if training else {}
        finally:
            if training is not None:
                from audioclf import jobs

                jobs.cancel(training)
                jobs.wait(training, timeout=30)
            os.environ.clear()
            os.environ.update(old_env)
        rows = [r for rs in results for r in rs]
        answers = [r["answer_s"] for r in rows]
        dones = [r["done_s"] for r in rows]
        case = {"sessions": sessions, "clips_per_session": args.clips, "training_job": train,
                "uploads": len(rows), "first_upload_s": round(first, 3),
                "answer_s": {"p50": pct(answers, 50), "p95": pct(answers, 95), "max": max(answers)},
                "done_s": {"p50": pct(dones, 50), "p95": pct(dones, 95), "max": max(dones)},
                "all_match_cli": all(r["matches_cli"] for r in rows),
                "exceptions": sum(r["exceptions"] for r in rows),
                "cross_session_names": sum(len(r["others_seen"]) for r in rows),
                "tracebacks_in_server_log": server_log.count("Traceback"),
                "server_log_tracebacks": [server_log[i:i + 3000] for i in _find_all(server_log, "Traceback")][:3],
                "load_avg_1min_after": round(load, 2),
                "training_epochs_during": progress.get("epoch"),
                "breakdown": breakdown(base / "timings.jsonl", since), "cpu_during": cpu, "per_upload": rows}
        return case
    finally:
        if args.keep:
            print("kept", base)
        else:
            shutil.rmtree(base, ignore_errors=True)


def figures_table(report: dict) -> list[str]:
    lines = ["| sessions | training job | uploads | answer p50 | answer p95 | answer max | done p95 | first upload "
             "(loads models) | = CLI | exceptions | other sessions' names |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in report["cases"]:
        a = c["answer_s"]
        lines.append(f"| {c['sessions']} | {'yes' if c['training_job'] else 'no'} | {c['uploads']} | {a['p50']:.2f} s "
                     f"| {a['p95']:.2f} s | {a['max']:.2f} s | {c['done_s']['p95']:.2f} s | {c['first_upload_s']:.2f} s "
                     f"| {'all' if c['all_match_cli'] else 'NO'} | {c['exceptions']} | {c['cross_session_names']} |")
    return lines


def breakdown_table(report: dict, pieces: list[str]) -> list[str]:
    lines = ["| sessions | training job | wall | thread CPU | " + " | ".join(pieces) + " |",
             "|---|---|---|---|" + "---|" * len(pieces)]
    for c in report["cases"]:
        b = c["breakdown"]
        if b:
            lines.append(f"| {c['sessions']} | {'yes' if c['training_job'] else 'no'} | {b['wall_s']:.3f} | "
                         f"{b['thread_cpu_s']:.3f} | "
                         + " | ".join(f"{b['pieces_s'].get(k, 0.0):.3f}" for k in pieces) + " |")
    return lines


def cpu_table(report: dict) -> list[str]:
    roles = ["app server", "training job", "browser", "other processes"]
    lines = ["| sessions | training job | seconds | machine busy | " + " | ".join(f"CPU s: {r}" for r in roles) + " |",
             "|---|---|---|---|" + "---|" * len(roles)]
    for c in report["cases"]:
        cpu = c.get("cpu_during")
        if not cpu:
            continue
        use = {r: sum(v for k, v in cpu["cpu_s"].items() if k.startswith(r)) for r in roles}
        lines.append(f"| {c['sessions']} | {'yes' if c['training_job'] else 'no'} | {cpu['wall_s']:.1f} | "
                     f"{cpu['machine_busy']:.0%} | " + " | ".join(f"{use[r]:.1f}" for r in roles) + " |")
    return lines


def markdown(report: dict, before: dict | None = None) -> str:
    m = report["machine"]
    lines = [SECTION, "",
             "The Predict page with N browser sessions (Playwright contexts in one headless Chromium) each "
             f"uploading {report['clips_per_session']} different clips one after another, all sessions at once, "
             "against `streamlit run app.py`, with and without a training job (a CNN on a small dataset, launched "
             "with `audioclf.jobs.launch` into the app's store) running. *answer*: from handing the file to the "
             "uploader to the page showing \"Predicted: …\" for this file; *done*: to the end of that script run "
             "(charts and table sent). Every answer was checked against `inference.predict_file` with the same run "
             "(top class and probability), for exception boxes, and for other sessions' file names.", "",
             f"Command: `{report['command']}`  ",
             f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']}; run `{report['run']}`; clips: "
             f"{report['clips_source']}. Also busy on the machine: "
             f"{'; '.join(m['other_processes']) or 'nothing else'} (1-min load before: {m['load_before']:.1f}). "
             "The browser runs on the same 2 cores.", "",
             ]
    pieces = sorted({k for r in (report, before or {"cases": []}) for c in r["cases"]
                     for k in c["breakdown"].get("pieces_s", {})})
    lines += figures_table(report)
    lines += ["", "Where a classifying script run's time goes (server side, mean seconds per run; "
              "`bench/load_server.py` times these pieces; wall includes waiting for the CPU and the GIL):", ""]
    lines += breakdown_table(report, pieces)
    lines += ["", "CPU seconds used while the sessions uploaded (from /proc; 2 cores give 2 s per second):", ""]
    lines += cpu_table(report)
    if before:
        lines += ["", f"Before the changes ({before.get('label') or 'earlier'}; `{before['command']}`, same machine, "
                  f"{'; '.join(before['machine']['other_processes']) or 'nothing else'} busy):", ""]
        lines += figures_table(before) + [""] + breakdown_table(before, pieces) + [""] + cpu_table(before)
    return "\n".join(lines) + "\n"


def write_doc(doc: Path, section: str) -> None:
    """Replace the section of `doc` that starts with `section`'s heading line (up to the next `## `),
    or append it. bench/onnx_speed.py writes its section with it too."""
    heading = section.split("\n", 1)[0]
    text = doc.read_text() if doc.is_file() else ""
    start = text.find(heading + "\n")
    if start >= 0:
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + section.rstrip("\n") + "\n" + ("\n" + text[end + 1:] if end >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    doc.write_text(text)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sessions", type=int, nargs="+", default=[1, 5], help="session counts to measure")
    ap.add_argument("--clips", type=int, default=3, help="clips uploaded per session")
    ap.add_argument("--train", choices=["no", "yes", "both"], default="both", help="run a training job meanwhile")
    ap.add_argument("--run", type=Path, help="the run to predict with (default: the reference runs, the Predict "
                                             "page's default among them)")
    ap.add_argument("--clips-dir", type=Path, default=DEFAULT_CLIPS, help="real clips (else synthetic tones)")
    ap.add_argument("--pause", type=float, default=0.5, help="seconds between a session's uploads")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "load.json")
    ap.add_argument("--doc", type=Path, default=ROOT / "docs" / "reliability.md")
    ap.add_argument("--no-doc", action="store_true", help="do not rewrite docs/reliability.md's section")
    ap.add_argument("--before", type=Path, help="a load.json from before a change, shown beside in the doc")
    ap.add_argument("--keep", action="store_true", help="keep each case's temporary folder (server log, timings)")
    ap.add_argument("--label", default="", help="a note stored with the figures (e.g. 'before')")
    ap.add_argument("--rewrite-doc", action="store_true", help="only rewrite the doc section from --out (and --before)")
    args = ap.parse_args(argv)
    if args.rewrite_doc:
        section = markdown(json.loads(args.out.read_text()), json.loads(args.before.read_text()) if args.before else None)
        write_doc(args.doc, section)
        return
    if not Path(CHROMIUM).is_file():
        raise SystemExit(f"needs Chromium at {CHROMIUM}")

    from audioclf import runs as run_queries

    run = (args.run.resolve() if args.run else run_queries.default_run(ROOT / "checkpoints").path)
    n = max(args.sessions) * args.clips
    base = Path(tempfile.mkdtemp(prefix="audioclf-clips-"))
    clips = pick_clips(n + 1, args.clips_dir, base)
    warm_clip, clips = clips[-1], clips[:-1]
    want = expected(run, clips + [warm_clip])
    trains = {"no": [False], "yes": [True], "both": [False, True]}[args.train]
    report = {"label": args.label, "command": command_line(argv),
              "machine": machine(), "run": run.name, "clips_per_session": args.clips,
              "clips_source": (f"{len(clips)} real clips from {args.clips_dir}" if clips[0].suffix != ".wav"
                               or args.clips_dir in clips[0].parents else f"{len(clips)} synthetic tones"),
              "cases": []}
    try:
        for train in trains:
            for sessions in args.sessions:
                case = run_case(args, sessions, train, run, clips, want, warm_clip)
                report["cases"].append(case)
                a = case["answer_s"]
                print(f"sessions {sessions} training {'yes' if train else 'no '}: answer p50 {a['p50']:.2f} s "
                      f"p95 {a['p95']:.2f} s max {a['max']:.2f} s; done p95 {case['done_s']['p95']:.2f} s; "
                      f"first {case['first_upload_s']:.2f} s; = CLI {case['all_match_cli']}; "
                      f"exceptions {case['exceptions']}; other names {case['cross_session_names']}; "
                      f"tracebacks {case['tracebacks_in_server_log']}", flush=True)
                print("   breakdown:", json.dumps(case["breakdown"]), flush=True)
                print("   cpu:", json.dumps(case["cpu_during"]), flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    section = markdown(report, json.loads(args.before.read_text()) if args.before else None)
    print(section)
    if not args.no_doc:
        write_doc(args.doc, section)


if __name__ == "__main__":
    main()
