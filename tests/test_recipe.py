"""The recipe: its log-mel front end, each augmentation (shapes; off at evaluation), short and long
inputs, training through the registry, and the default-run rule."""
from __future__ import annotations

import json
import math

from pathlib import Path

import numpy as np
import pytest
import torch

from audioclf import augment, runs
from audioclf.config import TrainConfig
from audioclf.data import open_dataset
from audioclf.frontend import LogMel, above_floor, band_centres
from audioclf.inference import FoldEnsemble, predict_audio
from audioclf.models import build_model, model_config
from audioclf.prepare import prepare
from audioclf.store import Run
from audioclf.train import train_run

from conftest import TINY_PREP, make_class_folders

RECIPE_MODELS = ["logmel-cnn", "logmel-transformer"]


def test_front_end_shape_and_loudness_invariance():
    front = LogMel().eval()
    wave = torch.randn(3, 16000 * 5) * 0.1
    x = front(wave)
    assert x.shape == (3, 1, 64, 251)  # 64 mels, a frame every 20 ms
    assert torch.allclose(front(wave * 0.05), x, atol=1e-4)  # -26 dB: the same features


def test_the_floor_channel_is_what_rises_over_a_steady_noise():
    torch.manual_seed(0)
    noise = torch.randn(1, 16000 * 5) * 0.05
    burst = torch.zeros_like(noise)
    burst[0, 32000:36000] = torch.sin(torch.arange(4000) * 2 * math.pi * 1000 / 16000)  # 0.25 s of 1 kHz at 2 s
    front = LogMel(floor=True).eval()
    db = front.db(noise + burst)  # (1, F, T)
    above = above_floor(db)
    assert above.shape == db.shape and above.amin() >= -12  # the floor is a 100 ms level, near each band's lowest
    band = int(torch.from_numpy(band_centres(front.mel)).sub(1000).abs().argmin())
    frames = torch.arange(db.shape[-1]) * 0.02
    during, before = above[0, band, (frames > 2.05) & (frames < 2.2)], above[0, band, frames < 1.5]
    assert during.min() > 20 and before.abs().median() < 6  # the tone stands 20 dB over the hiss; the hiss near 0
    x = front(noise + burst)
    assert x.shape == (1, 2, 64, 251) and torch.allclose(front((noise + burst) * 0.05), x, atol=1e-4)
    assert LogMel().eval()(noise).shape == (1, 1, 64, 251)  # without it, one channel as before


@pytest.mark.parametrize("name", RECIPE_MODELS)
def test_the_model_carries_its_front_end_and_reads_any_length(name):
    torch.manual_seed(0)
    model = build_model(model_config(name, 7)).eval()
    assert any(isinstance(m, LogMel) for m in model.modules())  # in the checkpoint, with its statistics
    for seconds in (0.3, 1.0, 5.0, 30.0):
        logits = model(torch.randn(2, int(16000 * seconds)))
        assert logits.shape == (2, 7) and torch.isfinite(logits).all()
    short = torch.randn(1, 8000)
    assert torch.allclose(model(short), model(short.repeat(1, 2)), atol=1e-4)  # under 1 s: tiled, not padded
    wave = torch.randn(2, 80000)
    out = model(wave, return_dict=True)
    assert torch.allclose(out["logits"], model(wave), atol=1e-5) and out["embedding"].ndim == 2
    if name == "logmel-transformer":
        assert out["attention"].shape == (2, 2, 2, 64, 64)  # 63 tokens of 80 ms + CLS
        assert torch.allclose(out["attention"].sum(-1), torch.ones(2, 2, 2, 64), atol=1e-5)


@pytest.mark.parametrize("name", RECIPE_MODELS)
def test_the_fast_inference_copy_of_a_fold_ensemble_gives_its_answers(name):
    """`load_ensemble`'s bf16 path folds BatchNorm into the convolutions, holds weights in bf16 and
    computes the spectrogram once for all fold models: the answers must stay each model's own."""
    import copy

    from audioclf.inference import bf16_weights, fuse_conv_bn, predict_waves, shares_front_end

    torch.manual_seed(0)
    models = tuple(build_model(model_config(name, 5)).eval() for _ in range(3))
    for m in models:  # BatchNorm statistics that are not the identity, different per model
        for bn in (b for b in m.modules() if isinstance(b, torch.nn.BatchNorm2d)):
            bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2), bn.weight.data.uniform_(0.5, 2)
    wave = torch.randn(2, 80000) * 0.1
    cfg = TrainConfig(model=name)
    exact = predict_waves(FoldEnsemble(cfg, tuple("abcde"), (2, 3, 4), models, shared_front_end=True), wave)
    for f, m in zip((2, 3, 4), models):  # the shared spectrogram: each model's own answer
        with torch.no_grad():
            assert np.allclose(exact[f"fold{f}"], m(wave).softmax(1).numpy(), atol=1e-5)
    fused = tuple(fuse_conv_bn(copy.deepcopy(m)) for m in models)
    assert not any(isinstance(b, torch.nn.BatchNorm2d) for m in fused for b in m.modules())
    assert shares_front_end(fused) and not shares_front_end((models[0], build_model(model_config(name, 3))))
    other = copy.deepcopy(models[1])
    other.logmel.mel.mel_scale.fb[3, 2] += 1e-6  # a filter bank not equal to the bit: each computes its own
    assert not shares_front_end((models[0], other))
    same = predict_waves(FoldEnsemble(cfg, tuple("abcde"), (2, 3, 4), fused, shared_front_end=True), wave)
    assert np.abs(same["ensemble"] - exact["ensemble"]).max() < 1e-4
    fast = FoldEnsemble(cfg, tuple("abcde"), (2, 3, 4), tuple(bf16_weights(m) for m in fused), "bf16", True)
    assert all(c.weight.dtype == torch.bfloat16 for c in fast.models[0].modules() if isinstance(c, torch.nn.Conv2d))
    assert np.abs(predict_waves(fast, wave)["ensemble"] - exact["ensemble"]).max() < 0.03


def test_attention_over_log_mel_tokens_comes_with_the_models_spectrogram_in_hz():
    """The log-mel transformer's attention view holds the clip's spectrogram from the model's own front end, its
    bands in Hz (a 1 kHz burst lands on the band centred near 1 kHz, when it sounds), and the figure draws it
    under the attention on the clip's time axis, 0 to its length, shared, with a frequency axis ticked in Hz."""
    from audioclf.attention import attention_view
    from audioclf.config import PrepConfig
    from audioclf.plots import cls_attention_figure

    torch.manual_seed(0)
    model = build_model(model_config("logmel-transformer", 3)).eval()
    sr, seconds = 16000, 3.0
    t = torch.arange(int(sr * seconds)) / sr
    wave = 0.01 * torch.randn(len(t)) + torch.where((t >= 1.0) & (t < 1.5), torch.sin(2 * torch.pi * 1000 * t), 0.0)
    out = attention_view(model, wave, PrepConfig())
    spec = out["spectrogram"]
    db, hz, at = spec["db"], spec["hz"], spec["seconds"]
    assert db.shape == (64, len(at)) == (64, 151) and db.max() == 0 and db.min() >= -80  # 20 ms frames, dB below peak
    assert 50 <= hz[0] < 150 and 7000 < hz[-1] <= 8000 and (np.diff(hz) > 0).all()  # f_min 50 Hz .. Nyquist
    band, frame = np.unravel_index(db.argmax(), db.shape)
    assert 900 <= hz[band] <= 1100 and 1.0 <= at[frame] < 1.5
    assert at[0] == 0 and at[-1] == pytest.approx(seconds)

    fig = cls_attention_figure(wave.numpy(), sr, out["times"], out["density"], out["uniform"], spectrogram=spec)
    heat = [tr for tr in fig.data if tr.type == "heatmap"]
    assert len(heat) == 1 and heat[0].yaxis == "y3" and heat[0].xaxis == "x3"  # the bottom row
    layout = fig.layout
    assert layout.yaxis3.title.text == "frequency (Hz)" and layout.xaxis3.title.text == "time in the clip (s)"
    ticks = [int(v) for v in layout.yaxis3.ticktext]
    assert ticks[0] >= hz[0] and ticks[-1] <= hz[-1] and {100, 1000, 4000} <= set(ticks)
    assert np.interp(1000, hz, np.arange(64)) == pytest.approx(layout.yaxis3.tickvals[ticks.index(1000)], abs=0.01)
    for axis in (layout.xaxis, layout.xaxis2, layout.xaxis3):  # waveform, attention, spectrogram
        assert tuple(axis.range) == (0, seconds)
    assert layout.xaxis.matches == layout.xaxis2.matches == "x3"  # zoom one, the others follow
    # The report's transformer reads stacked windows, not log-mel frames: no spectrogram, two rows.
    report = build_model(model_config("transformer", 3, heads=2)).eval()
    plain = attention_view(report, torch.randn(80000), PrepConfig())
    assert "spectrogram" not in plain
    assert "yaxis3" not in cls_attention_figure(np.zeros(80000), sr, plain["times"], plain["density"]).to_plotly_json()["layout"]


def test_each_augmentation_keeps_shapes_and_targets():
    torch.manual_seed(0)
    wave = torch.randn(6, 16000 * 5)
    target = torch.nn.functional.one_hot(torch.arange(6) % 3, 3).float()
    assert augment.random_crop(wave, 16000).shape == (6, 16000)
    assert augment.random_crop(wave[:, :8000], 16000).shape == (6, 16000)  # a short clip is tiled
    gained = augment.random_gain(wave, 6.0)
    ratio = (gained.norm(dim=1) / wave.norm(dim=1)).log10() * 20
    assert ratio.abs().max() <= 6.0 + 1e-4 and ratio.std() > 0  # a gain per clip, within ±6 dB
    low = augment.random_lowpass(wave, 1.0, 3000.0, 16000)
    spectrum = torch.fft.rfft(low, dim=1).abs()
    assert low.shape == wave.shape and spectrum[:, -100:].max() < 1e-3  # nothing left near 8 kHz
    assert torch.allclose(augment.random_lowpass(wave, 0.0, 3000.0, 16000), wave, atol=1e-5)  # prob 0: unchanged
    assert augment.background_mix(wave, 1.0, (10.0, 20.0)).shape == wave.shape
    loud = augment.overdrive(wave, 1.0, (20.0, 20.0))  # peak 10x full scale, then clipped
    assert loud.abs().max() == 1.0 and ((loud.abs() == 1.0).float().mean(1) > 0.05).all()
    assert torch.equal(augment.overdrive(wave, 0.0, (0.0, 20.0)), wave)  # prob 0: unchanged
    click = torch.zeros(2, 16000)
    click[:, 100] = 1.0
    room = augment.room_reverb(click, 1.0, (0.5, 0.5), 16000)  # a click in a room rings on after it
    assert room.shape == click.shape and room[:, 2000:].abs().max() > 0 and room[:, :100].abs().max() < 1e-4
    assert torch.allclose(room.pow(2).mean(1), click.pow(2).mean(1), rtol=1e-3)  # at the clip's own level
    assert torch.equal(augment.room_reverb(wave, 0.0, (0.2, 1.2), 16000), wave)  # prob 0: unchanged
    noisy = augment.coloured_noise(wave, 1.0, (10.0, 10.0), (2.0, 2.0), 16000)  # brown noise (wind), 10 dB below
    noise = noisy - wave
    assert torch.allclose(10 * (wave.pow(2).mean(1) / noise.pow(2).mean(1)).log10(), torch.full((6,), 10.0), atol=1e-3)
    power = torch.fft.rfft(noise, dim=1).abs().pow(2).mean(0)
    octave = lambda hz: power[int(hz * 5):int(hz * 5 * 1.2)].mean()  # noqa: E731 (5 bins per Hz: 5 s at 16 kHz)
    assert 3.0 < float(octave(400) / octave(800)) < 5.0  # its power falls by 6 dB an octave
    assert power[:100].max() < 1e-6 * power.max()  # nothing below 20 Hz
    assert torch.equal(augment.coloured_noise(wave, 0.0, (0.0, 20.0), (0.0, 2.0), 16000), wave)  # prob 0: unchanged
    t = torch.arange(16000) / 16000
    tones = torch.stack([torch.sin(2 * torch.pi * hz * t) for hz in (30.0, 1000.0, 7500.0)])  # low, middle, high
    heard = augment.mic_response(tones, 1.0, (200.0, 200.0), (3000.0, 3000.0), 16000)  # cutoffs 200 Hz and 3 kHz
    assert heard.shape == tones.shape
    kept = heard.pow(2).mean(1).sqrt() / tones.pow(2).mean(1).sqrt()
    assert torch.allclose(kept, torch.tensor([(30 / 200) ** 2, 1.0, 1 / (1 + (7500 / 3000) ** 4) ** 0.5]), atol=0.01)
    cuts = augment.mic_response(wave, 1.0, (50.0, 400.0), (2000.0, 8000.0), 16000)  # each clip its own cutoffs
    assert cuts.shape == wave.shape and (cuts - wave).abs().amax(1).std() > 0
    assert torch.allclose(augment.mic_response(wave, 0.0, (50.0, 400.0), (2000.0, 8000.0), 16000), wave, atol=1e-5)
    mixed, soft = augment.mixup(wave, target, 0.4)
    assert mixed.shape == wave.shape and torch.allclose(soft.sum(1), torch.ones(6))
    assert (soft.max(1).values >= 0.5).all()  # the first clip dominates
    out, t = augment.augment_batch(wave, target, augment.AUGMENTS["recipe"], 16000)
    assert out.shape[0] == 6 and out.shape[1] in (24000, 32000, 48000) and t.shape == (6, 3)
    short = augment.AUGMENTS["recipe-short"]
    lengths = {augment.augment_batch(wave, target, short, 16000)[0].shape[1] for _ in range(60)}
    assert lengths == {16000, 24000, 32000, 48000}  # 1 s crops too, each length drawn


def test_a_speed_change_moves_the_pitch_by_its_factor_and_folds_nothing_back():
    sr = 16000
    t = torch.arange(5 * sr) / sr
    peak = lambda w: torch.fft.rfftfreq(w.shape[1], 1 / sr)[torch.fft.rfft(w, dim=1).abs().argmax(1)]  # noqa: E731
    tone = torch.sin(2 * torch.pi * 1000.0 * t)[None].repeat(2, 1)
    assert peak(augment.speed_change(tone, 1.0, (1.25, 1.25), sr)).tolist() == [1250.0, 1250.0]
    assert peak(augment.speed_change(tone, 1.0, (0.8, 0.8), sr)).tolist() == [800.0, 800.0]
    high = torch.sin(2 * torch.pi * 7500.0 * t)[None]  # 9,375 Hz once sped up: above 8 kHz, so gone, not at 6,625
    assert augment.speed_change(high, 1.0, (1.25, 1.25), sr).pow(2).mean() < 1e-3 * high.pow(2).mean()
    torch.manual_seed(0)
    wave = torch.randn(8, 5 * sr)
    mixed = augment.speed_change(wave, 1.0, (0.8, 1.25), sr)  # each clip its own factor
    assert mixed.shape == wave.shape and (mixed - wave).abs().amax(1).std() > 0
    assert torch.allclose(augment.speed_change(wave, 0.0, (0.8, 1.25), sr), wave, atol=1e-5)  # prob 0: unchanged
    target = torch.nn.functional.one_hot(torch.arange(8) % 2, 2).float()
    out, soft = augment.augment_batch(wave, target, augment.AUGMENTS["recipe-room-mic-speed"], sr)
    assert out.shape[1] in (24000, 32000, 48000) and soft.shape == (8, 2) and torch.isfinite(out).all()


def test_spec_masks_are_on_in_training_and_off_at_evaluation():
    mask = augment.SpecMask(2, 8, 2, 0.1)
    x = torch.randn(4, 1, 64, 251)
    mask.train()
    assert (mask(x) == 0).any()
    mask.eval()
    assert torch.equal(mask(x), x)
    model = build_model(model_config("logmel-cnn", 3)).eval()
    wave = torch.randn(2, 80000)
    assert torch.equal(model(wave), model(wave))  # evaluation is deterministic: no masks, no dropout


def test_the_recipe_trains_through_the_registry_and_predicts_short_and_long(tmp_path):
    ds = open_dataset(make_class_folders(tmp_path / "tiny", per_class=10, seconds=2.0, sr=16000))
    prep = TINY_PREP.__class__(sample_rate=16000, duration=2.0, window=16000, hop=8000)
    config = TrainConfig(model="logmel-cnn", epochs=2, batch_size=8, cv_folds=(2, 3), prep=prep,
                         dataset_id=ds.fingerprint())
    assert (config.optimizer, config.schedule, config.augment, config.precision) == ("adamw", "onecycle", "recipe", "bf16")
    assert json.loads(config.to_json())["augment"] == "recipe" and TrainConfig.from_dict(config.to_dict()) == config
    run = train_run(config, prepare(ds, prep), root=tmp_path / "ck", show_bar=False)
    assert run.is_complete()
    ens = FoldEnsemble(config, ds.classes, (2, 3), tuple(run.fold_model(f).model for f in (2, 3)))
    rng = np.random.default_rng(0)
    one_second = predict_audio(ens, rng.standard_normal((1, 16000)).astype(np.float32), 16000)
    assert "over_time" not in one_second and abs(one_second["ensemble"].sum() - 1) < 1e-5
    thirty = predict_audio(ens, rng.standard_normal((2, 30 * 44100)).astype(np.float32), 44100)
    assert len(thirty["over_time"]["start_s"]) == 13  # 2 s windows every 2.5 s, and the 0.5 s tail as it is
    assert np.isfinite(thirty["over_time"]["ensemble"]).all()


def fake_run(root, epochs: int, val_acc: float, folds=(2, 3), model: str = "cnn", data: str = "d",
             classes: list[str] | None = None) -> Run:
    config = TrainConfig(model=model, epochs=epochs, cv_folds=folds, dataset_id=data)
    run = Run.of(config, root)
    run.write_config(config)
    for f in folds:
        run.save_weights(f, "best", {"state_dict": {}, "model_config": {}})
        run.write_history(f, [{"epoch": 1}])
    run.write_results({"classes": classes or ["a", "b"], "folds": {str(f): {} for f in folds},
                       "summary": {"training": {"val_acc": {"mean": val_acc}}}})
    return run


def test_the_default_run_is_the_best_by_validation_never_the_newest(tmp_path):
    good = fake_run(tmp_path, 100, 0.90)
    quick = fake_run(tmp_path, 2, 0.40)  # newer, worse: must not become the default
    assert runs.default_run(tmp_path) == good
    better = fake_run(tmp_path, 120, 0.95)
    assert runs.default_run(tmp_path) == better
    with pytest.raises(FileNotFoundError):
        runs.default_run(tmp_path, classes=["x", "y"])  # no run of that class set
    assert quick != runs.default_run(tmp_path)


def test_a_folder_taught_from_a_few_clips_is_the_default_only_for_its_own_data(tmp_path):
    esc10 = fake_run(tmp_path, 120, 0.90)
    object.__setattr__(esc10.config, "dataset_id", "esc10-abc")
    esc10.write_config(esc10.config)
    taught = fake_run(tmp_path, 30, 1.0)  # 100 % on its own few clips: not a reason to answer for ESC-10
    object.__setattr__(taught.config, "dataset_id", "mysounds-0123")
    taught.write_config(taught.config)
    fresh = lambda r: Run(r.path)  # noqa: E731 (config read back from disk)
    assert runs.default_run(tmp_path) == fresh(esc10)
    assert runs.default_run(tmp_path, data="mysounds") == fresh(taught)
    assert runs.predict_choices(tmp_path, data="mysounds")[0] == fresh(taught)
    with pytest.raises(FileNotFoundError, match="no trained run on esc50"):
        runs.default_run(tmp_path, data="esc50")


def test_a_run_on_part_of_a_class_set_is_never_its_default(tmp_path):
    """The ESC-50 subset of a folder that holds only ESC-10's clips trains a ten-class "esc50" run: it
    scores higher on validation than a real fifty-class run, but must not answer for ESC-50."""
    fifty = [f"c{i}" for i in range(50)]
    full = fake_run(tmp_path, 100, 0.82, model="logmel-cnn", data="esc50-full", classes=fifty)
    part = fake_run(tmp_path, 100, 0.95, model="logmel-cnn", data="esc50-part", classes=fifty[:10])
    assert runs.default_run(tmp_path, data="esc50") == full
    assert runs.predict_choices(tmp_path, data="esc50")[:2] == [full, part]
    assert runs.compare_defaults(runs.evaluated(tmp_path), "esc50")[0] == full
    assert runs.defaults(tmp_path)["esc50"] == full


def test_a_short_label_names_the_run_in_a_few_words(tmp_path):
    run = fake_run(tmp_path, 100, 0.8, model="logmel-cnn", data="esc50-b")
    run.write_results({**run.results(), "summary": {"accuracy": {"mean": 0.8234, "std": 0.027, "n": 2}}})
    assert runs.short_label(run) == f"logmel-cnn · esc50 · 100 epochs · test 0.82 · {run.config.key()}"
    (run.fold_dir(3) / "best.pt").unlink()
    assert "· 1 of 2 folds ·" in runs.short_label(Run(run.path))


def test_compare_shows_the_best_model_for_the_chosen_classes_then_the_others(tmp_path):
    report_cnn = fake_run(tmp_path, 100, 0.60, data="esc10-a")
    report_tr = fake_run(tmp_path, 100, 0.83, model="transformer", data="esc10-a")
    recipe = fake_run(tmp_path, 100, 0.95, model="logmel-cnn", data="esc10-a")
    fake_run(tmp_path, 2, 0.40, model="logmel-cnn", data="esc10-a")  # the newest, a quick experiment: not shown
    esc50 = fake_run(tmp_path, 100, 0.82, model="logmel-cnn", data="esc50-b")
    every = runs.evaluated(tmp_path)
    names = lambda rs: [r.name for r in rs]  # noqa: E731
    assert names(runs.compare_defaults(every, "esc10")) == names([recipe, report_cnn, report_tr])
    assert names(runs.compare_defaults(every, "esc10", k=2)) == names([recipe, report_cnn])
    assert names(runs.compare_defaults(every, "esc50")) == names([esc50])  # not ESC-10's runs
    assert names(runs.compare_defaults(every, "mysounds"))[0] == recipe.name  # no run on it: all runs' best
    assert runs.compare_defaults([], "esc10") == []


@pytest.mark.integration
def test_fast_prediction_agrees_with_float32_on_the_test_fold(esc10_dir):
    """The app and CLI run a bf16-trained run under bf16 autocast where the CPU has it, else with int8
    convolutions (`audioclf.int8`; the shipped recipe runs have their ranges): both faster; the answers
    must be float32's."""
    import torch

    from audioclf import int8
    from audioclf.inference import fast_precision, load_ensemble, predict_waves
    from audioclf.prepare import prepare

    shipped = Path(__file__).resolve().parents[1] / "checkpoints" / "logmel-cnn-f20cd51c328c"
    fast, exact = load_ensemble(shipped), load_ensemble(shipped, precision="fp32")
    native = fast_precision(fast.config, torch.device("cpu"))
    assert exact.precision == "fp32"
    assert fast.precision == (native if native == "bf16" or not int8.available() else "int8")
    x, _ = prepare(open_dataset(esc10_dir, "esc10"), fast.config.prep).subset([1])
    a, b = predict_waves(exact, x[:40])["ensemble"], predict_waves(fast, x[:40])["ensemble"]
    assert np.abs(a - b).max() < 0.02 and (a.argmax(1) == b.argmax(1)).mean() >= 39 / 40



def test_a_float32_ensemble_runs_fused_and_channels_last_with_the_fold_models_answers():
    """`load_ensemble` in float32 folds BatchNorm into the convolutions and holds them channels-last (oneDNN's
    faster layout on the CPU): each fold model's answer stays the stored model's own."""
    from audioclf.inference import load_ensemble, predict_waves
    from audioclf.store import Run

    shipped = Path(__file__).resolve().parents[1] / "checkpoints" / "logmel-cnn-f20cd51c328c"
    ens = load_ensemble(shipped, precision="fp32")
    convs = [c for m in ens.models for c in m.modules() if isinstance(c, torch.nn.Conv2d)]
    assert convs and all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    assert not any(isinstance(b, torch.nn.BatchNorm2d) for m in ens.models for b in m.modules())
    wave = torch.randn(3, 80000, generator=torch.Generator().manual_seed(0)) * 0.1
    got = predict_waves(ens, wave)
    for f in ens.folds:
        with torch.no_grad():
            want = Run(shipped).fold_model(f).model(wave).softmax(1).numpy()
        assert np.abs(got[f"fold{f}"] - want).max() < 1e-5

def test_mixup_draws_on_the_cpu_what_the_shipped_runs_drew():
    """mixup samples on the clips' device (so a CUDA graph can hold it); on the CPU its draws must stay those
    of Beta(alpha, alpha) and randperm, or the shipped runs would no longer reproduce bit for bit."""
    wave, target = torch.randn(8, 100), torch.eye(8)
    torch.manual_seed(5)
    out, mixed = augment.mixup(wave, target, 0.4)
    torch.manual_seed(5)
    lam = torch.distributions.Beta(0.4, 0.4).sample((8, 1))
    lam = torch.maximum(lam, 1 - lam)
    perm = torch.randperm(8)
    assert torch.equal(out, lam * wave + (1 - lam) * wave[perm])
    assert torch.equal(mixed, lam * target + (1 - lam) * target[perm])


def test_a_runs_test_clips_are_found_in_another_copy_of_its_data(tmp_path):
    from audioclf.data import Clip, Dataset

    run = fake_run(tmp_path, 100, 0.9)
    res = run.results()
    run.write_results({**res, "classes": ["a", "b"], "test_names": ["1-1-A-0.ogg", "1-2-A-1.ogg"], "y_true": [0, 1]})

    def data(files: dict[str, int], classes=("a", "b")) -> Dataset:
        return Dataset("esc10", tmp_path, classes, tuple(Clip(tmp_path / f, label, 1) for f, label in files.items()))

    same = data({"1-1-A-0.wav": 0, "1-2-A-1.wav": 1, "2-3-A-0.wav": 0})  # the download: wav, not ogg
    assert [c.path.name for c in runs.test_clips_of(run, same)] == ["1-1-A-0.wav", "1-2-A-1.wav"]
    assert runs.test_clips_of(run, data({"1-1-A-0.wav": 0})) == []  # one is missing
    assert runs.test_clips_of(run, data({"1-1-A-0.wav": 0, "1-2-A-1.wav": 0})) == []  # another class
    assert runs.test_clips_of(run, data({"1-1-A-0.wav": 0, "1-2-A-1.wav": 1}, ("b", "a"))) == []  # other classes
