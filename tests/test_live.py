"""Live listening (`audioclf.live`): audio pushed in small frames at any rate, classified every hop over
the last window, with the app's "not sure" rule; synthetic audio, and a real ESC-10 dog clip pushed as a
browser would (48 kHz, 20 ms frames) through the shipped default model."""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from audioclf.audio import AudioError, load_audio
from audioclf.config import TrainConfig
from audioclf.confidence import verdict
from audioclf.features import resample
from audioclf.inference import FoldEnsemble, load_ensemble, predict_waves
from audioclf.live import Listener, pcm

REPO = Path(__file__).resolve().parents[1]
SR = 16000  # the default PrepConfig's rate; its window is 5 s
DOG = "1-30344-A-0.ogg"  # a dog in ESC-10's test fold (fold 1), never trained on


class Recorder(nn.Module):
    """A 'model' that keeps every input it is given and answers from its mean: class 0 for a positive
    signal, class 1 for a negative one, sure of neither for silence."""

    def __init__(self, takes_waveform: bool = True) -> None:
        super().__init__()
        self.takes_waveform = takes_waveform
        self.scale = nn.Parameter(torch.tensor(50.0))
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.detach().clone())
        m = x.reshape(len(x), -1).mean(1) * self.scale  # (B,)
        return torch.stack([m, -m, torch.zeros_like(m)], 1)  # (B, 3)


def recorder_ensemble(folds: int = 2, takes_waveform: bool = True) -> FoldEnsemble:
    return FoldEnsemble(TrainConfig(model="cnn"), ("up", "down", "flat"), tuple(range(2, 2 + folds)),
                        tuple(Recorder(takes_waveform).eval() for _ in range(folds)))


def frames(x: np.ndarray, sr: int, ms: float = 20.0):
    """(channels, samples) or (samples,) in frames of `ms` milliseconds, as WebRTC delivers them."""
    step = int(sr * ms / 1000)
    for i in range(0, x.shape[-1], step):
        yield x[..., i:i + step]


def test_one_answer_per_hop_and_the_buffer_stays_bounded():
    ens = recorder_ensemble(1)
    lis = Listener(ens, threshold=0.5, hop_s=1.0, keep_s=10.0)
    x = 0.1 * np.ones(SR * 30, np.float32)  # 30 s
    answers = [h for f in frames(x, SR) for h in lis.push(f, SR)]
    assert [round(h.end_s, 2) for h in answers] == [float(k) for k in range(1, 31)]
    assert all(h.skipped == 0 for h in answers)
    assert lis.heard_s == pytest.approx(30.0)
    hist = lis.history()
    assert len(hist) == 10 and hist[0].end_s == pytest.approx(21.0) and hist[-1].end_s == pytest.approx(30.0)
    assert lis._ring.shape == (5 * SR,)  # the ring holds one window, however long the stream
    seen = ens.models[0].seen
    assert [s.shape[-1] for s in seen[:6]] == [SR, 2 * SR, 3 * SR, 4 * SR, 5 * SR, 5 * SR]  # what there is, then 5 s
    assert [h.window_s for h in answers[:6]] == pytest.approx([1, 2, 3, 4, 5, 5])
    lis.reset()
    assert lis.history() == [] and lis.heard_s == 0


@pytest.mark.parametrize("second", [0.3, 1.0])  # the second channel quieter, or as loud
def test_the_window_is_the_newest_audio_resampled_as_a_whole(second):
    """Pushed at 48 kHz in 20 ms frames of two channels, each hop classifies exactly the last 5 s of one
    channel of the whole stream resampled at once (features.resample): the louder, and with two alike
    channels one of them throughout, never the two in turns."""
    rng = np.random.default_rng(0)
    sr = 48000
    x = (0.3 * rng.standard_normal((2, sr * 8))).astype(np.float32)  # 8 s, stereo
    x[1] *= second
    ens = recorder_ensemble(1)
    lis = Listener(ens, threshold=0.5)
    answers = [h for f in frames(x, sr) for h in lis.push(f, sr)]
    assert len(answers) == 7  # a hop's answer waits for the resampler's few samples of look-ahead at 8 s
    channels = [0] if second < 1 else [0, 1]
    matched = []
    for c in channels:
        whole = resample(torch.from_numpy(x[c]), sr, SR)
        if all(torch.allclose(seen[0], whole[max(0, round(h.end_s * SR) - 5 * SR):round(h.end_s * SR)], atol=1e-5)
               for h, seen in zip(answers, ens.models[0].seen)):
            matched.append(c)
    assert len(matched) == 1, matched
    assert answers[-1].end_s == pytest.approx(7.0, abs=0.03)


@pytest.mark.parametrize("sr", [8000, 16000, 22050, 44100, 48000, 44101])
def test_any_sample_rate_gives_the_models_rate(sr):
    t = np.arange(int(sr * 2.5)) / sr
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    lis = Listener(recorder_ensemble(1), threshold=0.5)
    for f in frames(x, sr, ms=10):
        lis.push(f, sr)
    assert 2.4 < lis.heard_s <= 2.5 + 1 / SR  # less the resampler's look-ahead: under 0.1 s at any rate


def test_a_model_of_fixed_length_gets_silence_before_the_stream():
    ens = recorder_ensemble(1, takes_waveform=False)
    lis = Listener(ens, threshold=0.5)
    x = np.ones(SR * 2, np.float32)
    for f in frames(x, SR):
        lis.push(f, SR)
    first, second = ens.models[0].seen
    assert first.shape == second.shape == (1, 1, 144000)  # the report's models: nine 1 s windows, stacked
    wave = second.reshape(-1)[:16000]  # the first 1 s window: 0-1 s of the 5 s clip, before the stream began
    assert torch.count_nonzero(wave) == 0


def test_a_push_behind_by_several_hops_classifies_only_the_newest_window():
    ens = recorder_ensemble(1)
    lis = Listener(ens, threshold=0.5)
    assert lis.push(np.ones(SR // 2, np.float32), SR) == []
    got = lis.push(np.ones(3 * SR, np.float32), SR)  # 0.5 s -> 3.5 s: hops at 1, 2 and 3 s
    assert len(got) == 1 and got[0].skipped == 2 and got[0].end_s == pytest.approx(3.5)
    assert len(ens.models[0].seen) == 1


def test_answers_follow_the_not_sure_rule():
    """Each answer is `confidence.verdict` of its own probabilities: a loud positive signal is 'up' and
    sure, silence is whatever the rule says of the model's answer to it (here: even odds, not sure)."""
    ens = recorder_ensemble(3)
    lis = Listener(ens, threshold=0.6)
    sig = np.concatenate([0.5 * np.ones(2 * SR), np.zeros(8 * SR)]).astype(np.float32)
    answers = [h for f in frames(sig, SR) for h in lis.push(f, SR)]
    for h in answers:
        v = verdict(h.ensemble, h.per_model, 0.6)
        assert (h.top, h.sure, h.reasons[:len(v["reasons"])]) == (v["top"], v["sure"] and not h.quiet, tuple(v["reasons"]))
        assert len(h.reasons) == len(v["reasons"]) + h.quiet  # a quiet window says why as well
    assert ens.classes_[answers[0].top] == "up" and answers[0].sure
    assert not answers[-1].sure and answers[-1].reasons  # 5 s of silence
    assert answers[-1].quiet and not any(h.quiet for h in answers[:6])  # the window still holds the signal
    assert len(answers[0].per_model) == 3


def test_a_window_far_below_the_loudest_heard_is_quiet_whatever_the_model_says():
    """A sound, then 6 s of faint noise that the model (the recipe's scales each window to its own peak)
    would call 'up' as surely: those answers are "quiet", not sure, and one span of their own."""
    from audioclf.confidence import QUIET_DB
    from audioclf.live import spans

    ens = recorder_ensemble(2)
    lis = Listener(ens, threshold=0.6)
    rng = np.random.default_rng(0)
    sig = np.concatenate([0.5 * np.ones(2 * SR), 0.001 + 0.0005 * rng.standard_normal(9 * SR)]).astype(np.float32)
    answers = [h for f in frames(sig, SR) for h in lis.push(f, SR)]
    assert all(ens.classes_[h.top] == "up" for h in answers) and answers[0].sure
    late = answers[-2:]  # windows of noise alone: about 50 dB below the first seconds
    assert all(h.quiet and not h.sure and h.level_db < -QUIET_DB for h in late)
    assert "dB below the loudest of the last 60 s: background" in late[-1].reasons[-1]
    assert [sp["quiet"] for sp in spans(answers, ens.classes_)] == [False, True]


def test_one_thread_pushes_while_another_reads():
    lis = Listener(recorder_ensemble(2), threshold=0.5, keep_s=5.0)
    errors: list[BaseException] = []
    done = threading.Event()

    def push() -> None:
        try:
            for f in frames(0.2 * np.ones(SR * 20, np.float32), SR):
                lis.push(f, SR)
        except BaseException as e:  # noqa: BLE001 (reported below)
            errors.append(e)
        finally:
            done.set()

    reads = 0
    worker = threading.Thread(target=push)
    worker.start()
    while not done.is_set():
        hist = lis.history()
        ends = [h.end_s for h in hist]
        assert ends == sorted(ends) and len(hist) <= 5
        reads += 1
        done.wait(0.001)  # as a page would poll; a busy loop here starves the pushing thread of the GIL (27 s)
    worker.join()
    assert not errors and reads > 1
    assert [h.end_s for h in lis.history()] == pytest.approx([16, 17, 18, 19, 20])


def test_bad_input_is_named():
    lis = Listener(recorder_ensemble(1), threshold=0.5)
    with pytest.raises(AudioError, match="sample rate"):
        lis.push(np.zeros(10, np.float32), 0)
    with pytest.raises(AudioError, match="shape"):
        lis.push(np.zeros((1, 2, 3), np.float32), SR)
    with pytest.raises(AudioError, match="channels"):
        pcm(np.zeros((1, 5), np.int16), 2, interleaved=True)


def test_pcm_from_a_webrtc_frame():
    stereo = np.array([[0, 16384, -32768, 32767, 100, -100]], np.int16)  # interleaved L R L R L R
    got = pcm(stereo, 2, interleaved=True)
    assert got.dtype == np.float32 and got.shape == (2, 3)
    assert np.allclose(got[0], [0, -1, 100 / 32768]) and np.allclose(got[1], [0.5, 32767 / 32768, -100 / 32768])
    planar = np.array([[0.25, -0.5], [1.0, 0.0]], np.float32)
    assert np.array_equal(pcm(planar, 2, interleaved=False), planar)
    assert np.allclose(pcm(np.array([[0, 128, 255]], np.uint8), 1, interleaved=False), [[-1, 0, 127 / 128]])


# --- the shipped default model and real ESC-10 ------------------------------------------------------------

@pytest.fixture(scope="module")
def default_model():
    from audioclf import runs
    from audioclf.store import Run

    run: Run = runs.default_run(REPO / "checkpoints")
    return load_ensemble(run.path), float(run.results()["unsure"]["threshold"])


@pytest.mark.integration
def test_a_dog_pushed_as_a_browser_would_is_heard_as_a_dog(esc10_dir, default_model):
    ens, threshold = default_model
    data, sr = load_audio(esc10_dir / "audio" / DOG)
    x = resample(torch.from_numpy(data), sr, 48000).numpy()  # the browser's rate
    lis = Listener(ens, threshold)
    answers = [h for f in frames(x, 48000) for h in lis.push(f, 48000)]
    assert len(answers) >= 4  # 5 s, less the resampler's look-ahead of a few ms
    first_dog = next(i for i, h in enumerate(answers) if h.sure and ens.classes_[h.top] == "dog")
    assert first_dog <= 2, [(ens.classes_[h.top], h.sure) for h in answers]  # within 3 hops (3 s)
    last = answers[-1]  # the ensemble's answer to the same audio resampled at once
    end = round(last.end_s * 16000)
    whole = resample(torch.from_numpy(x.mean(0)), 48000, 16000)[max(0, end - 80000):end]
    assert np.allclose(last.ensemble, predict_waves(ens, whole[None])["ensemble"][0], atol=1e-3)


@pytest.mark.integration
def test_silence_gets_the_rule_of_the_real_model(default_model):
    ens, threshold = default_model
    lis = Listener(ens, threshold)
    answers = [h for f in frames(np.zeros(48000 * 5, np.float32), 48000) for h in lis.push(f, 48000)]
    want = predict_waves(ens, torch.zeros(1, 80000))
    v = verdict(want.pop("ensemble")[0], [p[0] for p in want.values()], threshold)
    assert (answers[-1].top, answers[-1].sure) == (v["top"], v["sure"])


# --- the Listen page (AppTest; the browser test streams a fake microphone to it) ------------------------------

APP = REPO / "app.py"


@pytest.mark.parametrize("runs", [True, False], ids=["runs", "no-runs"])
def test_listen_page_opens(runs, tmp_path_factory, tmp_path, monkeypatch):
    import appdata
    from streamlit.testing.v1 import AppTest

    data = appdata.build(tmp_path_factory.getbasetemp() / "appdata")
    monkeypatch.chdir(tmp_path)
    for key, value in data.env(runs=runs, empty_store=tmp_path / "empty").items():
        monkeypatch.setenv(key, value)
    # streamlit-webrtc asks the server's session manager for this session, which AppTest's runtime lacks
    monkeypatch.setattr("streamlit_webrtc.component.get_this_session_info", lambda: None)
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    at.switch_page("pages/listen.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Listen"
    if runs:
        assert next(s for s in at.selectbox if s.label == "Model run").value is not None
        assert "Press START" in "\n".join(i.value for i in at.info)
    else:
        assert "Listening needs a trained run" in "\n".join(i.value for i in at.info)
