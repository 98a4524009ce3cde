"""The benchmark scripts' own code (never their measurements): bench/gpu.py's protocol can only be
timed on a GPU, which CI lacks, so its code path runs here on the CPU, tiny; bench/run.py's results
file keeps the sections it did not re-run."""
import json

import torch
from conftest import TINY_PREP

from audioclf.prepare import Prepared
from bench.gpu import bench_protocol, markdown
from bench.run import write


def tiny_prepared(n: int = 20) -> Prepared:
    return Prepared(waves=torch.randn(n, TINY_PREP.num_samples), labels=torch.arange(n) % 2,
                    folds=torch.arange(n) % 5 + 1, classes=("a", "b"), names=tuple(f"{i}.wav" for i in range(n)))


def test_gpu_protocol_code_path_runs_on_cpu():
    r = bench_protocol(tiny_prepared(), torch.device("cpu"), epochs=1,
                       models=[("cnn", 0), ("transformer", 2)], prep=TINY_PREP)
    assert [(x["model"], x["fold"]) for x in r["rows"]] == [
        (m, f) for m in ("cnn", "transformer-2h") for f in (2, 3, 4, 5)]
    assert r["fold_models"] == 8
    assert r["wall_s"] >= sum(x["seconds"] for x in r["rows"]) > 0
    assert r["achieved_tflops"] > 0 and r["peak_fp32_tflops"] > 0
    text = "\n".join(markdown(r))
    assert "a shortened run" in text and "| transformer-2h | 5 |" in text


def data_section() -> dict:
    return {"clips": 3, "cold_build_s": 1.0, "warm_load_s": 0.01, "cache_mb": 1.0, "bound": "disk"}


def test_results_file_keeps_sections_not_rerun_and_a_measured_gpu_section(tmp_path):
    write({"data": data_section()}, "cmd-data", tmp_path)
    gpu = bench_protocol(tiny_prepared(), torch.device("cpu"), epochs=1, models=[("cnn", 0)], prep=TINY_PREP)
    write({"gpu": gpu}, "cmd-gpu", tmp_path)
    write({"gpu": {"note": "Skipped: no CUDA GPU on this machine."}}, "cmd-skip", tmp_path)
    saved = json.loads((tmp_path / "benchmarks.json").read_text())
    assert saved["data"]["command"] == "cmd-data"
    assert saved["gpu"]["command"] == "cmd-gpu" and len(saved["gpu"]["rows"]) == 4
    md = (tmp_path / "benchmarks.md").read_text()
    assert "`cmd-data`" in md and "`cmd-gpu`" in md and "Skipped" not in md
