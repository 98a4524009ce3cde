"""The benchmark scripts' own code (never their measurements): bench/gpu.py's protocol can only be
timed on a GPU, which CI lacks, so its code path runs here on the CPU, tiny; bench/run.py's results
file keeps the sections it did not re-run."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_PREP

from audioclf.prepare import Prepared
from audioclf.config import TrainConfig
from bench.gpu import (GRAPHS_FILE, SESSION_FILE, bench_at_once, bench_concurrent, bench_protocol, graphs_markdown,
                       markdown, profile_epoch, session_markdown, tones)
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


def test_gpu_session_pieces_run_on_cpu_and_render():
    """The lent-GPU device check's parts (bench/gpu.py --session), tiny, on the CPU."""
    config, data, cpu = TrainConfig(model="cnn", epochs=1, prep=TINY_PREP), tiny_prepared(), torch.device("cpu")
    prof = profile_epoch(config, data, cpu)
    assert prof["train_clips"] == 12 and prof["steps"] == 1
    assert prof["epoch_s"] >= prof["train_s"] > 0 and prof["checkpoint_s"] > 0
    together = bench_concurrent([config], data, cpu)
    assert together["fold_models"] == 4 and together["processes_failed"] == 0 and together["wall_s"] > 0
    one_by_one = bench_protocol(data, cpu, configs=[config])
    assert one_by_one["epochs"] == 1 and len(one_by_one["rows"]) == 4
    r = {"device": "cpu", "torch": torch.__version__, "esc50_data": "noise", "esc10_data": "noise",
         "profile": [prof], "recipe_sequential": one_by_one, "protocol_sequential": one_by_one,
         "recipe_concurrent": together, "protocol_concurrent": together}
    text = "\n".join(session_markdown(r))
    assert f"about {one_by_one['wall_s'] * 100:.0f} s" in text  # 1 epoch measured, 100 extrapolated
    assert "| cnn | 1 |" in text and "What bounds them" in text
    r.update(before_profile=[{**prof, "epoch_s": 9.876}], recipe_concurrent_100_mps={**together, "epochs": 100})
    text = "\n".join(session_markdown(r))
    assert "epoch (before)" in text and "(9.876)" in text and "*Before*" in text
    assert f"| **{together['wall_s']:.0f} s** |" in text  # the MPS column, a 100-epoch stage


def test_cuda_graph_check_pieces_run_on_cpu_and_the_gpu_section_renders():
    """bench/gpu.py --graphs and --side-by-side, their parts tiny on the CPU (no capture there: the graphed steps
    run uncaptured, 0 graphs); the section docs/benchmarks.md shows, rendered from the lent machines' files."""
    config, data, cpu = TrainConfig(model="cnn", epochs=1, prep=TINY_PREP), tiny_prepared(), torch.device("cpu")
    prof = profile_epoch(config, data, cpu, graphed=True)
    assert prof["graphed"] and prof["graphs"] == 0 and prof["record_s"] > 0 and prof["train_s"] > 0
    side = bench_at_once([config], data, cpu)
    assert side["fold_models"] == 4 and len(side["final_val_acc"]) == 4 and side["wall_s"] > 0
    t = tones(3, 4, samples=8000)
    assert t.waves.shape == (20, 8000) and torch.isfinite(t.waves).all() and t.labels.tolist()[:4] == [0, 1, 2, 0]
    peaks = [int(torch.fft.rfft(t.waves[k]).abs().argmax()) for k in range(3)]
    assert peaks[0] < peaks[1] < peaks[2]  # one pitch per class, rising
    g, before = json.loads(GRAPHS_FILE.read_text()), json.loads(SESSION_FILE.read_text())
    text = "\n".join(graphs_markdown(g, before))
    assert f"| **{g['side_by_side']['recipe_at_once']['wall_s']:.0f}** |" in text
    assert f"{g['graphs']['profile_graphed'][0]['train_s']:.3f}" in text and "What bounds them now" in text


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


def test_cpu_step_breakdown_runs_and_finds_the_report_order_bit_for_bit():
    from bench.cpu_step import VARIANTS, markdown, run

    r = run(["cnn"], steps=1, with_compile=False, length=7000)
    rows = {v["variant"]: v for v in r["models"][0]["variants"]}
    assert set(rows) == set(VARIANTS) and all(v["step_ms"] > 0 for v in rows.values())
    assert rows["report order: nn.Sequential (what a notebook runs)"]["relative_difference"] == 0
    assert 0 < rows["audioclf: conv + pool channels-last, BatchNorm (B, C, L) (shipped)"]["relative_difference"] < 1e-2
    assert "| cnn" not in markdown(r, "cmd")[0] and any("F.max_pool2d" in line for line in markdown(r, "cmd"))
    assert "## cnn: the step, variant by variant" in markdown(r, "cmd")


def test_the_onnx_section_is_its_own_and_survives_bench_run(tmp_path):
    from bench.load import write_doc as write_section
    from bench.onnx_speed import SECTION, markdown as onnx_markdown

    side = {"n": 2, "median_ms": 50.0, "p95_ms": 60.0, "min_ms": 40.0}
    r = {"run": "r", "model": "logmel-cnn", "fold_models": 4, "onnx_mb": 19.0, "export_s": 20.0,
         "load": {"torch_s": 0.2, "onnx_s": 0.3}, "clip": {"torch": {**side, "median_ms": 100.0}, "onnxruntime": side},
         "clip_max_diff": 1e-7, "long_max_diff": 2e-7, "threads": {"torch": 2, "onnxruntime": "default (cores)"},
         "long": {"seconds": 600.0, "windows": 239, "rounds": 1, "torch": {"median_s": 30.0, "all_s": [30.0]},
                  "onnxruntime": {"median_s": 10.0, "all_s": [10.0]}},
         "load_average": [5.0, 4.0], "busy": ["`python3 -m audioclf train` (nice -10)"],
         "command": "cmd-onnx", "machine": {"cpu": "x", "cores": 2, "torch": "2", "python": "3"},
         "onnxruntime": "1", "when": "today"}
    section = onnx_markdown(r)
    assert section.startswith(SECTION) and "| 100 ms | 50 ms | 2.00x |" in section and "| 30.0 s | 10.0 s | 3.00x |" in section
    assert "239 windows" in section and "audioclf train" in section
    write({"data": data_section()}, "cmd-data", tmp_path)
    write_section(tmp_path / "benchmarks.md", section)
    write_section(tmp_path / "benchmarks.md", section)  # replaced, not added twice
    write({"data": data_section()}, "cmd-data-again", tmp_path)
    md = (tmp_path / "benchmarks.md").read_text()
    assert md.count(SECTION) == 1 and "`cmd-onnx`" in md and "`cmd-data-again`" in md and "`cmd-data`" not in md


def test_crossval_gives_each_fold_the_test_set_once_and_reuses_the_shipped_fold_1_config(esc10_dir):
    """bench/crossval.py: five configs, test fold k never among its own training or validation folds,
    and test fold 1's config is `train`'s default one (so the shipped run's fold 2 model is that fold)."""
    import argparse

    from audioclf.cli import build_parser, config_from_args
    from audioclf.data import open_dataset
    from bench.crossval import FOLDS, fold_config, validation_fold

    args = argparse.Namespace(model="logmel-cnn", data=esc10_dir, subset="esc10", epochs=None)
    dataset = open_dataset(esc10_dir, "esc10")
    configs = {k: fold_config(args, dataset, k) for k in FOLDS}
    assert sorted(validation_fold(k) for k in FOLDS) == list(FOLDS)
    for k, c in configs.items():
        assert c.test_fold == k and k not in c.cv_folds and validation_fold(k) in c.cv_folds
        assert sorted((k, *c.cv_folds)) == list(FOLDS)
    default = config_from_args(build_parser().parse_args(
        ["train", "--model", "logmel-cnn", "--data", str(esc10_dir)]), dataset)
    assert configs[1].key() == default.key() and len({c.key() for c in configs.values()}) == 5


def test_long_recordings_hold_the_clip_over_a_background_at_the_asked_level():
    from bench.long import pink, recording, rms

    rng = np.random.default_rng(0)
    clip = np.sin(np.arange(16000) / 5).astype(np.float32)
    bg = pink(32000, rng)
    rec = recording(clip, bg, 30.0, 4.0, 16000, np.random.default_rng(1))
    assert rec.shape == (64000,)
    start = int(np.random.default_rng(1).integers(0, 64000 - 16000 + 1))  # where the clip went in (its draw)
    under = np.resize(bg, 64000) * rms(clip) / rms(bg) * 10 ** (-30 / 20)
    assert np.allclose(rec[start:start + 16000] - under[start:start + 16000], clip, atol=1e-5)
    assert 20 * np.log10(rms(clip) / rms(under)) == pytest.approx(30.0, abs=0.01)


def test_short_excerpts_are_the_loudest_part_and_tile_to_length():
    from bench.short import loudest, tiled

    waves = torch.zeros(2, 8000)
    waves[0, 5000:6000], waves[1, 100:1100] = 1.0, -2.0
    got = loudest(waves, 1000, 250)
    assert got.shape == (2, 1000) and got[0].abs().sum() >= 750 and got[1].abs().sum() >= 1500
    x = torch.arange(6.0)[None]
    assert tiled(x, 14).tolist() == [[0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5, 0, 1]]


class _Sign(torch.nn.Module):
    """A stand-in fold model: class 0 for a positive clip, class 1 for a negative one (or the reverse),
    with a confidence of `scale`."""

    takes_waveform = True

    def __init__(self, sign: float, scale: float) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(sign * scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x.mean(1, keepdim=True) * self.w
        return torch.cat([m, -m], 1)


def test_validation_and_test_scores_each_fold_model_on_its_own_fold():
    """Fold 2's model is always right, fold 3's always wrong but unsure: validation counts each on its own
    fold (6 of 8), the test ensemble follows the sure one; `alter` is applied to both."""
    from bench import validation_and_test

    labels = torch.tensor([0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1])
    folds = torch.tensor([1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 3, 3])
    waves = (1.0 - 2.0 * labels.float())[:, None].repeat(1, 100)  # +1 for class 0, -1 for class 1
    prepared = Prepared(waves=waves, labels=labels, folds=folds, classes=("a", "b"),
                        names=tuple(f"{i}.wav" for i in range(12)))
    models = {2: _Sign(1.0, 5.0), 3: _Sign(-1.0, 0.1)}
    assert validation_and_test(models, prepared, 1, TINY_PREP, lambda w: w) == {"validation": 0.75, "test_ensemble": 1.0}
    assert validation_and_test(models, prepared, 1, TINY_PREP, lambda w: -w) == {"validation": 0.25, "test_ensemble": 0.0}


def test_recipe_search_adopts_only_a_setting_better_on_validation_in_every_seed():
    from bench.recipe_search import verdict

    def stage(seed, **val):
        return {"seed": seed, "runs": {n: {"val_acc_mean": v, "test_acc_ensemble": 1.0 - v} for n, v in val.items()}}

    results = {"stages": [stage(0, recipe=0.80, a=0.82, b=0.83), stage(1, recipe=0.80, a=0.81, b=0.795)]}
    v = verdict(results)
    assert v["a"]["adopt"] and v["a"]["val_gain_points"] == pytest.approx(1.5)
    assert not v["b"]["adopt"]  # +1.25 on average, but worse in seed 1
    assert not verdict({"stages": results["stages"][:1]})["a"]["adopt"]  # one seed is not enough


def test_background_bench_puts_the_same_other_sound_under_each_clip_at_the_asked_snr():
    from bench.background import underneath

    g = torch.Generator().manual_seed(0)
    waves, pool = torch.randn(5, 16000, generator=g), torch.randn(3, 8000, generator=g) * 0.1
    mixed = underneath(waves, pool, 10.0)
    assert mixed.shape == waves.shape and mixed.dtype == waves.dtype
    for i in range(5):
        under = (mixed[i] - waves[i]).numpy()
        other = np.resize(pool[(7 * i) % 3].numpy(), 16000)
        assert np.allclose(under / np.abs(under).max(), other / np.abs(other).max(), atol=1e-4)  # the same sound
        snr = 20 * np.log10(waves[i].pow(2).mean().sqrt().item() / np.sqrt(np.mean(under ** 2)))
        assert snr == pytest.approx(10.0, abs=0.01)
    assert torch.equal(underneath(waves, pool, 10.0), mixed)  # every run hears the same


def test_wind_bench_puts_a_gust_of_its_own_over_each_clip_at_the_asked_snr():
    from bench.wind import in_wind

    waves = torch.randn(3, 16000, generator=torch.Generator().manual_seed(0))
    windy = in_wind(waves, 16000, 0.0)
    assert windy.shape == waves.shape and windy.dtype == waves.dtype
    gusts = (windy - waves).numpy()
    for i in range(3):
        snr = 20 * np.log10(waves[i].pow(2).mean().sqrt().item() / np.sqrt(np.mean(gusts[i] ** 2)))
        assert snr == pytest.approx(0.0, abs=0.01)
        low, high = np.abs(np.fft.rfft(gusts[i]))[20:200].mean(), np.abs(np.fft.rfft(gusts[i]))[4000:6000].mean()
        assert low > 10 * high  # wind: its power in the lowest frequencies
    assert not np.allclose(gusts[0], gusts[1])  # a gust of its own per clip
    assert torch.equal(in_wind(waves, 16000, 0.0), windy)  # the same in every run


def test_wind_why_keeps_only_the_gusts_upper_part_and_moves_only_the_level_reference():
    from audioclf.frontend import relative_db
    from bench.wind import in_wind
    from bench.wind_why import SKIP_BANDS, peak_above_low_bands, wind_above

    waves = torch.randn(2, 16000, generator=torch.Generator().manual_seed(0)) * 0.1
    gust = np.abs(np.fft.rfft((in_wind(waves, 16000, 0.0) - waves).numpy(), axis=1))
    upper = np.abs(np.fft.rfft((wind_above(waves, 16000, 300.0) - waves).numpy(), axis=1))
    assert upper[:, 20:100].mean() < 0.1 * gust[:, 20:100].mean()  # the rumble below 100 Hz is gone
    assert np.allclose(upper[:, 2000:4000].mean(), gust[:, 2000:4000].mean(), rtol=0.02)  # the upper part kept
    power = torch.rand(1, 64, 50) + 1.0
    power[0, 30, 10] = 100.0  # the peak above the low bands: the same reference as the front end's
    assert torch.allclose(peak_above_low_bands(power), relative_db(power))
    power[0, SKIP_BANDS - 1, 10] = 1e4  # a louder rumble in a low band no longer sets the reference
    assert torch.allclose(peak_above_low_bands(power)[0, 30, 10], torch.tensor(0.0))
    assert relative_db(power)[0, 30, 10] < -15


def test_hiss_bench_puts_white_or_pink_noise_of_its_own_under_each_clip_at_the_asked_snr():
    from bench.hiss import with_hiss

    waves = torch.randn(2, 16000, generator=torch.Generator().manual_seed(0))
    for slope, octave_ratio in ((0.0, 1.0), (1.0, 2.0)):  # white: flat; pink: half the power an octave up
        noisy = with_hiss(waves, 16000, slope, 20.0)
        under = (noisy - waves).numpy()
        snr = 20 * np.log10(waves.pow(2).mean(1).sqrt().numpy() / np.sqrt(np.mean(under ** 2, axis=1)))
        assert np.allclose(snr, 20.0, atol=0.01)
        power = np.abs(np.fft.rfft(under, axis=1)) ** 2  # 1 Hz bins
        assert power[:, 400:800].mean() / power[:, 800:1600].mean() == pytest.approx(octave_ratio, rel=0.15)
        assert not np.allclose(under[0], under[1])  # noise of its own per clip
        assert torch.equal(with_hiss(waves, 16000, slope, 20.0), noisy)  # the same in every run


def test_a_bench_of_ways_hides_the_test_fold_when_asked(monkeypatch, tmp_path, capsys):
    """`--hide-test` (choosing a recipe on validation alone): neither printed nor recorded."""
    import types

    import bench

    labels = torch.tensor([0, 1] * 6)
    prepared = Prepared(waves=(1.0 - 2.0 * labels.float())[:, None].repeat(1, 100), labels=labels,
                        folds=torch.tensor([1] * 4 + [2] * 8), classes=("a", "b"), names=tuple("abcdefghijkl"))
    run = types.SimpleNamespace(config=types.SimpleNamespace(test_fold=1, prep=TINY_PREP),
                                path=types.SimpleNamespace(name="run-x"))
    monkeypatch.setattr(bench, "fold_models_and_data", lambda *a: (run, prepared, {2: _Sign(1.0, 5.0)}))
    ways = {"as is": None, "upside down": lambda w, prep: -w}
    for hide in (False, True):
        out = tmp_path / f"{hide}.json"
        monkeypatch.setattr(sys, "argv", ["bench/x.py", "--run", "r", "--data", "d", "--out", str(out)]
                            + ["--hide-test"] * hide)
        bench.measure_ways("x", ways)
        shown, kept = capsys.readouterr().out, json.loads(out.read_text())["run-x"]["ways"]
        assert kept["as is"]["validation"] == 1.0 and kept["upside down"]["validation"] == 0.0
        assert ("test" in shown) is not hide and ("test_ensemble" in kept["as is"]) is not hide


def test_the_mic_bench_takes_away_the_lows_or_the_highs():
    from bench.mic import WAYS

    prep = TrainConfig().prep  # 16 kHz
    t = torch.arange(16000) / 16000
    low, high = torch.sin(2 * torch.pi * 60 * t)[None], torch.sin(2 * torch.pi * 6000 * t)[None]
    rms = lambda w: float(w[:, 4000:].pow(2).mean().sqrt())  # noqa: E731 (after the filters' start)
    assert rms(WAYS["high-pass 200 Hz"](low, prep)) < 0.15 * rms(low)
    assert rms(WAYS["high-pass 200 Hz"](high, prep)) > 0.95 * rms(high)
    assert rms(WAYS["low-pass 3 kHz"](high, prep)) < 0.3 * rms(high)
    assert rms(WAYS["low-pass 3 kHz"](low, prep)) > 0.95 * rms(low)


def test_the_speed_bench_plays_a_clip_three_semitones_lower_and_higher():
    from bench.speed import WAYS

    prep = TrainConfig().prep  # 16 kHz
    t = torch.arange(5 * 16000) / 16000
    tone = torch.sin(2 * torch.pi * 1000 * t)[None]  # 1 kHz for 5 s
    expected = {"0.84x (3 semitones down)": (840, 5 / 0.84), "1.19x (3 semitones up)": (1190, 5 / 1.19)}
    for way, (hz, seconds) in expected.items():
        played = WAYS[way](tone, prep)
        assert abs(played.shape[1] / 16000 - seconds) < 1e-3  # the rate kept, the clip longer or shorter
        peak = torch.fft.rfftfreq(played.shape[1], 1 / 16000)[torch.fft.rfft(played[0]).abs().argmax()]
        assert abs(float(peak) - hz) < 1.0


def test_a_bench_records_its_command_so_that_it_pastes_back(monkeypatch, tmp_path):
    """The command written beside a figure is the one that made it: an argument with a comma or a space
    (a --label) stays one argument, and a rewritten section keeps its blank line before the next."""
    import shlex

    from bench import command_line
    from bench.load import write_doc

    monkeypatch.setattr(sys, "argv", ["/anywhere/bench/load.py", "--label", "2026-11-28, commit abc", "--sessions", "5"])
    line = command_line()
    assert line == "python bench/load.py --label '2026-11-28, commit abc' --sessions 5"
    assert shlex.split(line)[1:] == ["bench/load.py", "--label", "2026-11-28, commit abc", "--sessions", "5"]
    doc = tmp_path / "reliability.md"
    doc.write_text("# R\n\n## Under load\nold\n\n## After\ntext\n")
    write_doc(doc, "## Under load\nnew\n| a | b |\n")
    assert doc.read_text() == "# R\n\n## Under load\nnew\n| a | b |\n\n## After\ntext\n"


def test_beside_job_times_every_call_of_every_session(tmp_path):
    """bench/beside_job.py's round: one time per call, all sessions at once, on the shipped default run."""
    import os

    from audioclf.inference import load_ensemble
    from bench.beside_job import one_round
    from bench.load import cpu_seconds, pick_clips

    clips = [(p.name, p.read_bytes()) for p in pick_clips(4, None, tmp_path)]  # synthetic tones
    from audioclf.runs import default_run

    run = default_run(Path(__file__).resolve().parents[1] / "checkpoints")
    times = one_round(load_ensemble(run.path), clips, 2, 2)
    assert len(times) == 4 and all(t > 0 for t in times)
    assert cpu_seconds(os.getpid()) > 0


def test_results_table_keeps_the_hand_written_text_above_its_tables(tmp_path):
    """tools/results_table.py rewrites only its tables: a results file's text above them survives a rerun
    (it once needed a copy of that text as --preamble, and a rerun without it wiped the page)."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "results.md"
    out.write_text("# Results\n\nA paragraph written by hand.\n\n## Summary: fold-1 test accuracy\n\nold table\n")
    for _ in range(2):  # a second rerun leaves the file as the first made it
        subprocess.run([sys.executable, str(root / "tools" / "results_table.py"), "--checkpoints",
                        str(root / "checkpoints"), "--out", str(out)], check=True, capture_output=True)
        text = out.read_text()
        assert text.startswith("# Results\n\nA paragraph written by hand.\n\n## Summary: fold-1 test accuracy\n")
        assert "old table" not in text and text.count("## Summary") == 1
        assert "| logmel-cnn-taught |" in text  # the shipped runs' rows were written
    fresh = tmp_path / "new.md"
    subprocess.run([sys.executable, str(root / "tools" / "results_table.py"), "--out", str(fresh)],
                   check=True, capture_output=True)
    assert fresh.read_text().startswith("# Results\n\n## Summary")


def test_the_threads_bench_times_each_setting_and_reads_the_stolen_share(monkeypatch):
    from bench import threads

    ticks = iter([(1000, 10), (3000, 110)])  # 2,000 ticks while it ran, 100 of them stolen
    monkeypatch.setattr(threads, "cpu_ticks", lambda: next(ticks))
    calls = []
    before = torch.get_num_threads()
    try:
        got = threads.timed_calls(lambda w: calls.append(torch.get_num_threads()), torch.zeros(1, 10), 1, 20)
    finally:
        torch.set_num_threads(before)
    assert calls == [1] * 25  # 5 unmeasured, then 20 timed, all with one thread
    assert got["steal"] == 0.05 and 0 <= got["median_ms"] <= got["p95_ms"]


def test_the_threads_bench_reads_this_machines_cpu_ticks():
    from bench.threads import cpu_ticks

    if not Path("/proc/stat").is_file():
        pytest.skip("no /proc/stat here")
    total, stolen = cpu_ticks()
    assert total > 0 and 0 <= stolen <= total
