"""onnxruntime against torch for a run's fold ensemble (never part of the tests). Writes
bench/onnx_speed.json and the "Prediction with ONNX" section of docs/benchmarks.md. (Not named
`bench/onnx.py`: run as a script, that would shadow the `onnx` package that the exporter imports.)

    python bench/onnx_speed.py                             # the default model, 50 clips, one 10-minute file
    python bench/onnx_speed.py --run checkpoints/logmel-transformer-2h-8236aca2ba45 --repeats 20

Both sides take the same path, `inference.predict_file`: decode (soundfile), mono, resample to 16 kHz,
clips of 5 s every 2.5 s, then the fold models: torch's `FoldEnsemble` or the exported file in
onnxruntime (`export.OnnxEnsemble`). One 5 s ESC-10 clip, file to answer: `--repeats` clips of fold 1,
torch and onnxruntime alternating clip by clip, so that whatever else runs on the machine slows both
alike. A 10-minute file: ESC-10 clips end to end (mono, 44.1 kHz) in a temporary wav, classified
whole (every 2.5 s window's answer, as the app's timeline shows it), `--long-rounds` times each.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audioclf.audio import load_audio  # noqa: E402
from audioclf.data import open_dataset  # noqa: E402
from audioclf.export import export_onnx, load_onnx  # noqa: E402
from audioclf.inference import load_ensemble, predict_file  # noqa: E402
from bench import command_line  # noqa: E402
from bench.load import write_doc  # noqa: E402
from bench.run import machine  # noqa: E402

SECTION = "## Prediction with ONNX (onnxruntime against torch)"


def busy() -> list[str]:
    """Other processes that have used over a fifth of a core on average since they started (command
    lines, cut short)."""
    out = subprocess.run(["ps", "-eo", "pid,ni,pcpu,args", "--sort=-pcpu"], capture_output=True, text=True).stdout
    rows = [line.split(None, 3) for line in out.splitlines()[1:]]
    return [f"`{r[3][:80]}` (nice {r[1]})" for r in rows
            if len(r) == 4 and float(r[2]) >= 20 and int(r[0]) != os.getpid()][:4]


def stats(seconds: list[float]) -> dict:
    t = np.asarray(seconds) * 1e3
    return {"n": len(t), "median_ms": float(np.median(t)), "p95_ms": float(np.percentile(t, 95)),
            "min_ms": float(t.min())}


def long_file(files: list[Path], seconds: float, path: Path) -> Path:
    """ESC-10 clips end to end (mono, at their rate) until `seconds`, as a 16-bit wav."""
    parts, total, sr = [], 0, None
    while total < seconds * (sr or 1):
        for f in files:
            data, sr = load_audio(f)
            parts.append(data.mean(0))
            total += parts[-1].size
            if total >= seconds * sr:
                break
    sf.write(path, np.concatenate(parts)[: int(seconds * sr)], sr, subtype="PCM_16")
    return path


def bench(run: Path, data: Path, repeats: int, long_seconds: float, long_rounds: int) -> dict:
    files = [c.path for c in open_dataset(data, "esc10").clips if c.fold == 1]
    load_before, busy_before = os.getloadavg()[0], busy()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        onnx_path = export_onnx(run, Path(tmp) / "model.onnx")
        export_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        ens = load_ensemble(run, precision="fp32")  # float32 like the graph (the app's bf16 path: bench/run.py)
        load = {"torch_s": time.perf_counter() - t0}
        t0 = time.perf_counter()
        onnx = load_onnx(onnx_path)
        load["onnx_s"] = time.perf_counter() - t0
        sides = {"torch": ens, "onnxruntime": onnx}
        for f in files[:3]:  # warm-up
            for e in sides.values():
                predict_file(e, f)
        clip: dict[str, list[float]] = {k: [] for k in sides}
        diff = 0.0
        for i in range(repeats):
            got = {}
            for name, e in sides.items():
                t0 = time.perf_counter()
                got[name] = predict_file(e, files[i % len(files)])
                clip[name].append(time.perf_counter() - t0)
            diff = max(diff, float(np.abs(got["torch"]["ensemble"] - got["onnxruntime"]["ensemble"]).max()))
        path = long_file(files, long_seconds, Path(tmp) / "long.wav")
        whole: dict[str, list[float]] = {k: [] for k in sides}
        windows, long_diff = 0, 0.0
        for _ in range(long_rounds):
            got = {}
            for name, e in sides.items():
                t0 = time.perf_counter()
                got[name] = predict_file(e, path)
                whole[name].append(time.perf_counter() - t0)
            windows = len(got["torch"]["over_time"]["start_s"])
            long_diff = max(long_diff, float(np.abs(got["torch"]["over_time"]["ensemble"]
                                                    - got["onnxruntime"]["over_time"]["ensemble"]).max()))
        onnx_mb = onnx_path.stat().st_size / 2**20
    return {"run": run.name, "model": ens.label, "fold_models": len(ens.folds), "onnx_mb": onnx_mb,
            "export_s": export_s, "load": load,
            "clip": {k: stats(v) for k, v in clip.items()}, "clip_max_diff": diff,
            "long": {"seconds": long_seconds, "windows": windows, "rounds": long_rounds,
                     **{k: {"median_s": float(np.median(v)), "all_s": v} for k, v in whole.items()}},
            "long_max_diff": long_diff,
            "threads": {"torch": torch.get_num_threads(),
                        "onnxruntime": onnx.session.get_session_options().intra_op_num_threads or "default (cores)"},
            "load_average": [load_before, os.getloadavg()[0]], "busy": sorted({*busy_before, *busy()})}


def markdown(r: dict) -> str:
    m, c, w = r["machine"], r["clip"], r["long"]
    lines = [SECTION, "",
             f"Command: `{r['command']}` on {m['cpu']}, {m['cores']} cores, torch {m['torch']} "
             f"({r['threads']['torch']} threads), onnxruntime {r['onnxruntime']} "
             f"({r['threads']['onnxruntime']} threads), Python {m['python']}; {r['when']}. torch runs float32 "
             "here, like the ONNX graph; for a bf16-trained run the app and CLI run bf16 with channels-last "
             "weights where the CPU has it (see the prediction latency above).", "",
             f"**Shared machine:** busy besides this benchmark: {'; '.join(r['busy']) or 'nothing'}; 1-minute load "
             f"average {r['load_average'][0]:.1f} at the start and {r['load_average'][1]:.1f} at the end on "
             f"{m['cores']} cores. The figures are what this process got "
             "of the CPU, not what the code can do on a quiet one; torch and onnxruntime alternate clip by clip "
             "and file by file, so the comparison between them is fairer than either figure alone.", "",
             f"Run `{r['run']}` ({r['fold_models']} x {r['model']}), exported as one {r['onnx_mb']:.1f} MB ONNX file "
             f"in {r['export_s']:.1f} s; loading it: torch {r['load']['torch_s'] * 1e3:.0f} ms, onnxruntime "
             f"{r['load']['onnx_s'] * 1e3:.0f} ms.", "",
             "| input | torch | onnxruntime | torch / onnxruntime |", "|---|---|---|---|",
             row(f"one 5 s clip, file to answer ({c['torch']['n']} clips): median", c, "median_ms", "ms"),
             row("the same: p95", c, "p95_ms", "ms"), row("the same: fastest", c, "min_ms", "ms"),
             row(f"a {w['seconds'] / 60:.0f}-minute file, whole ({w['windows']} windows of 5 s; median of "
                 f"{w['rounds']})", w, "median_s", "s"), "",
             f"Largest difference between the two ensembles' probabilities: {r['clip_max_diff']:.1e} (clips), "
             f"{r['long_max_diff']:.1e} (the long file's windows). Both include decoding and resampling "
             "(the project's own, the same for both); the 10-minute file's rounds: torch "
             f"{', '.join(f'{s:.1f}' for s in w['torch']['all_s'])} s, onnxruntime "
             f"{', '.join(f'{s:.1f}' for s in w['onnxruntime']['all_s'])} s.", ""]
    return "\n".join(lines)


def row(label: str, sides: dict, key: str, unit: str) -> str:
    t, o = sides["torch"][key], sides["onnxruntime"][key]
    digits = 0 if unit == "ms" else 1
    return f"| {label} | {t:.{digits}f} {unit} | {o:.{digits}f} {unit} | {t / o:.2f}x |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, default=ROOT / "checkpoints" / "logmel-cnn-f20cd51c328c")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "esc10")
    ap.add_argument("--repeats", type=int, default=50, help="5 s clips timed on each side")
    ap.add_argument("--long-seconds", type=float, default=600.0)
    ap.add_argument("--long-rounds", type=int, default=3)
    args = ap.parse_args()
    import onnxruntime

    r = bench(args.run, args.data, args.repeats, args.long_seconds, args.long_rounds)
    r.update(command=command_line(), machine=machine(),
             onnxruntime=onnxruntime.__version__, when=time.strftime("%Y-%m-%d"))
    (ROOT / "bench" / "onnx_speed.json").write_text(json.dumps(r, indent=1) + "\n")
    section = markdown(r)
    write_doc(ROOT / "docs" / "benchmarks.md", section)
    print(section)


if __name__ == "__main__":
    main()
