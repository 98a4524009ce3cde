"""`streamlit run app.py` with timers around the Predict page's pieces, for bench/load.py's breakdown.

    python bench/load_server.py TIMINGS.jsonl app.py --server.port 8765 ...   # the rest as `streamlit run`

Wraps, before Streamlit starts, the functions the app's script runs call (run queries, the sidebar,
model loading, decoding + inference, figures) so that every script run appends one JSON line to
TIMINGS.jsonl: its wall and thread-CPU seconds and the wall seconds inside each wrapped piece. With
$AUDIOCLF_BENCH_PROFILE set to a folder, each script run is also profiled (cProfile, runNNNN.prof). The app
itself is unchanged; this file is a bench tool, never imported by the app.
"""
from __future__ import annotations

import functools
import json
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_local = threading.local()
_write = threading.Lock()


def _timed(name: str, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        acc = getattr(_local, "acc", None)
        if acc is None or getattr(_local, "inside", None):  # outside a script run, or nested: time the outer
            return fn(*args, **kwargs)
        _local.inside = name
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            acc[name] = acc.get(name, 0.0) + time.perf_counter() - t
            _local.inside = None
    return wrapper


def _patch(module, names: list[str], prefix: str) -> None:
    for n in names:
        if hasattr(module, n):
            setattr(module, n, _timed(f"{prefix}.{n}", getattr(module, n)))


def install(timings: Path) -> None:
    import plotly.graph_objects  # noqa: F401  (imported here, once, before any session)
    import streamlit as st
    from streamlit.runtime.scriptrunner import script_runner

    import ui
    from audioclf import inference, plots, runs

    _patch(runs, ["runs_with_weights", "default_run", "complete_first", "evaluated"], "runs")
    _patch(ui, ["sidebar", "run_label", "ensemble", "read_upload", "runs_for_predict", "predict_candidates",
                "classify"], "ui")
    _patch(inference, ["predict_file", "load_ensemble"], "inference")
    _patch(plots, ["proba_bars_html", "over_time_figure"], "plots")
    _patch(st, ["plotly_chart", "dataframe", "audio", "file_uploader", "selectbox"], "st")

    import types

    gc_shim = types.SimpleNamespace(**{n: getattr(script_runner.gc, n) for n in dir(script_runner.gc)
                                       if not n.startswith("__")})
    gc_shim.collect = _timed("streamlit.postScriptGC", script_runner.gc.collect)
    script_runner.gc = gc_shim  # Streamlit's gc.collect(2) after every script run (runner.postScriptGC)

    original = script_runner.ScriptRunner._run_script

    profile_dir = os.environ.get("AUDIOCLF_BENCH_PROFILE")
    counter = iter(range(10**9))

    def run_script(self, rerun_data):
        _local.acc, _local.inside = {}, None
        t, cpu, start = time.perf_counter(), time.thread_time(), time.time()
        prof = None
        if profile_dir:  # cProfile of this script run's thread, one file per run
            import cProfile

            prof = cProfile.Profile()
            prof.enable()
        try:
            return original(self, rerun_data)
        finally:
            if prof is not None:
                prof.disable()
                prof.dump_stats(str(Path(profile_dir) / f"run{next(counter):04d}.prof"))
            row = {"start": start, "session": getattr(self, "_session_id", ""), "wall": time.perf_counter() - t,
                   "cpu": time.thread_time() - cpu, "page": getattr(rerun_data, "page_name", None) or "",
                   "phases": _local.acc}
            _local.acc = None
            with _write, open(timings, "a") as f:
                f.write(json.dumps(row) + "\n")

    script_runner.ScriptRunner._run_script = run_script


def main() -> None:
    timings = Path(sys.argv[1])
    install(timings)
    from streamlit.web import cli

    sys.argv = ["streamlit", "run", *sys.argv[2:]]
    sys.exit(cli.main())


if __name__ == "__main__":
    main()
