"""Teaching a folder of one's own clips from a trained run (`train --from`), and small folders' folds."""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import torch

from audioclf import teach
from audioclf.cli import main
from audioclf.config import PrepConfig, TrainConfig
from audioclf.data import open_dataset
from audioclf.errors import ConfigError, UserError
from audioclf.models import build_model, model_config
from audioclf.prepare import prepare
from audioclf.store import Run
from audioclf.train import train_run
from conftest import make_class_folders

APP = Path(__file__).resolve().parents[1] / "app.py"
PREP = PrepConfig(sample_rate=16000, duration=2.0, window=16000, hop=8000)


@pytest.fixture
def source(tmp_path, monkeypatch) -> Run:
    """A tiny trained log-mel run (3 pitch classes) standing in for the shipped ESC-50 one."""
    monkeypatch.setattr(teach, "SHIPPED", tmp_path / "shipped")  # the repo's shipped runs stay out of it
    ds = open_dataset(make_class_folders(tmp_path / "src", per_class=6, seconds=2.0, sr=16000))
    config = TrainConfig(model="logmel-cnn", epochs=2, batch_size=8, cv_folds=(2, 3), prep=PREP,
                         dataset_id=ds.fingerprint())
    return train_run(config, prepare(ds, PREP), root=tmp_path / "source-store", show_bar=False)


def test_small_folders_are_cross_validated_over_the_folds_they_fill():
    assert teach.fit_folds((1, 2, 3, 4, 5), 1, (2, 3, 4, 5)) == ((2, 3, 4, 5), "")
    folds, note = teach.fit_folds((2, 3, 4, 5), 1, (2, 3, 4, 5))  # 4 clips a class: none in the test fold
    assert folds == (2, 3, 4, 5) and "no test figure" in note
    folds, note = teach.fit_folds((2, 3), 1, (2, 3, 4, 5))  # 2 clips a class
    assert folds == (2, 3) and "folds [2, 3]" in note
    with pytest.raises(ConfigError, match="at least 2 clips"):
        teach.fit_folds((2,), 1, (2, 3, 4, 5))  # 1 clip a class: nothing to judge it with


def test_the_trunk_is_copied_and_the_head_is_new(source):
    start = teach.start_state(source)
    assert start.trunk and not any(k.startswith("head.") for k in start.trunk) and not start.rows
    model = build_model(model_config("logmel-cnn", 5))
    fresh = model.state_dict()["head.weight"].clone()
    teach.start_from(model, start, "src")
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in start.trunk.items())
    assert torch.equal(state["head.weight"], fresh)
    other = build_model(model_config("logmel-transformer", 5))
    with pytest.raises(ConfigError, match="does not match"):
        teach.start_from(other, start, "src")


def test_a_model_with_the_floor_channel_starts_as_the_source_without_it(source):
    """The new channel's norm is fresh and its first-layer weights zero: the taught model starts out
    answering as its source does, and training decides what the channel is worth."""
    classes = source.fold_model(2).classes
    start = teach.start_state(source, 2, classes)
    plain, floor = build_model(model_config("logmel-cnn", 3)), build_model(model_config("logmel-cnn", 3, floor=1))
    teach.start_from(plain, start, "src")
    teach.start_from(floor, start, "src")
    weight = floor.state_dict()["blocks.0.body.0.weight"]  # the first convolution
    assert weight.shape[1] == 2 and not weight[:, 1].any()
    wave = torch.randn(2, 32000) * 0.1
    assert torch.allclose(floor.eval()(wave), plain.eval()(wave), atol=1e-5)
    taught = teach.taught_config(source, "d", (2, 3), options=(("floor", 1),))  # `train --from RUN --floor 1`
    assert taught.model_config(3).floor == 1 and taught.label == "logmel-cnn-floor1-taught"
    assert teach.taught_config(source, "d", (2, 3)).model_config(3).floor == 0


def test_classes_the_source_knows_keep_their_head_rows(source):
    known = source.fold_model(2).classes  # ("high", "low", "mid"), the source's row order
    start = teach.start_state(source, 2, ("mid", "thunder", "high"))
    assert start.rows == ((0, known.index("mid")), (2, known.index("high")))
    model = build_model(model_config("logmel-cnn", 3))
    fresh = model.state_dict()["head.weight"][1].clone()
    teach.start_from(model, start, "src")
    w, b = model.state_dict()["head.weight"], model.state_dict()["head.bias"]
    assert torch.equal(w[0], start.head["head.weight"][known.index("mid")])
    assert torch.equal(b[2], start.head["head.bias"][known.index("high")])
    assert torch.equal(w[1], fresh)  # "thunder" is new to the source


def test_each_fold_starts_from_the_source_model_of_the_same_fold(source):
    """So that a fold's validation clips are unseen by its start when the source trained on the same
    clips (ESC-10 taught from ESC-50)."""
    assert teach.source_fold(source, 2) == 2 and teach.source_fold(source, 3) == 3
    assert teach.source_fold(source, 4) in (2, 3)  # a fold the source lacks: its best validation fold
    two, three = teach.start_state(source, 2), teach.start_state(source, 3)
    assert not all(torch.equal(two.trunk[k], three.trunk[k]) for k in two.trunk if two.trunk[k].is_floating_point())


def test_a_taught_config_hashes_apart_and_round_trips_through_its_command_line(source):
    base = source.config
    taught = TrainConfig(**{**base.__dict__, "init": source.name, "dataset_id": "mine"})
    plain = TrainConfig(**{**base.__dict__, "dataset_id": "mine"})
    assert taught.key() != plain.key() and "init" not in plain.to_dict()
    assert taught.to_args()[-2:] == ["--from", source.name]
    assert TrainConfig.from_dict(json.loads(taught.to_json())) == taught


def test_from_names_what_it_looked_for(source, tmp_path):
    with pytest.raises(ConfigError, match="no trained esc50 run"):
        teach.source_run("esc50", tmp_path / "empty")
    with pytest.raises(ConfigError, match="neither"):
        teach.source_run("no-such-run", source.root)
    assert teach.source_run(str(source.path)) == source
    assert teach.source_run(source.name, source.root) == source


def test_teach_a_folder_of_four_clips_a_class_then_predict_with_it(source, tmp_path, capsys, monkeypatch):
    folder = make_class_folders(tmp_path / "mysounds", classes=("low", "mid", "high"), per_class=4,
                                seconds=1.5, sr=22050)
    store = tmp_path / "mine"
    assert main(["train", "--data", str(folder), "--from", str(source.path), "--epochs", "2",
                 "--checkpoints", str(store), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "no test figure" in err  # the folds were fitted, and said so
    (run,) = [r for r in map(Run, store.iterdir()) if r.config_file.is_file()]
    assert run.config.init == str(source.path.resolve()) and run.config.epochs == 2
    assert run.config.label == "logmel-cnn-taught" and run.name.startswith("logmel-cnn-taught-")  # beside, not as, a scratch run
    assert run.config.augment == "recipe-room-mic" and run.config.lr == teach.TEACH_TRAINING["lr"]
    res = run.results()
    assert res["test_fold"] is None and "cross-validation" in res["protocol"]
    assert res["classes"] == ["high", "low", "mid"] and len(res["y_true"]) == 12  # every clip judged once
    from audioclf import runs
    assert "cross-validated acc" in runs.describe(run) and "(cv, no test fold)" in runs.run_row(run)["ensemble test accuracy"]
    assert runs.fold_table(res)[-1]["fold"] == "all clips, out of fold"
    check_compare_says_out_of_fold(store, monkeypatch)
    assert main(["predict", "--checkpoints", str(store), str(folder / "mid" / "mid_00.wav")]) == 0
    out = capsys.readouterr().out
    assert any(c in out for c in ("high", "low", "mid"))


def test_teaching_never_ends_below_its_start_on_validation(source, tmp_path):
    """Same classes as the source and a learning rate that wrecks the model: every fold keeps its
    start (epoch 0), and the run's validation figures are the start's."""
    ds = open_dataset(make_class_folders(tmp_path / "again", per_class=6, seconds=2.0, sr=16000))
    config = teach.taught_config(source, ds.fingerprint(), (2, 3), epochs=1, lr=1e4, batch_size=8,
                                 init=str(source.path))
    run = train_run(config, prepare(ds, PREP), root=tmp_path / "taught", show_bar=False)
    for fold in (2, 3):
        meta = run.fold_model(fold).meta
        assert meta["epoch"] == 0 and meta["val_acc"] >= run.history(fold)[0]["val_acc"]
        assert run.results()["folds"][str(fold)]["training"]["val_acc"] == meta["val_acc"]
    # A start has no training figures: the table says so instead of nan, and no mean is made of nothing.
    from audioclf.report import fold_table_markdown

    table = fold_table_markdown(run.results())
    assert "nan" not in table and "| 0 | start | start |" in table and "| mean ± std | | – | – |" in table


def test_a_start_weight_averages_the_last_epoch_with_the_start_and_is_made_alike_from_a_finished_run(source, tmp_path):
    """`--start-weight W`: each fold model is W x its start + (1 - W) x its last epoch, no epoch chosen; the same
    run made afterwards from a run trained without it (`train.average_with_start`) has the same weights."""
    from audioclf.train import average_states, average_with_start, fold_start

    ds = open_dataset(make_class_folders(tmp_path / "again", per_class=6, seconds=2.0, sr=16000))
    prepared = prepare(ds, PREP)
    plain = teach.taught_config(source, ds.fingerprint(), (2, 3), epochs=2, batch_size=8,
                                init=str(source.path))
    blended = teach.taught_config(source, ds.fingerprint(), (2, 3), epochs=2, batch_size=8,
                                  init=str(source.path), start_weight=0.5)
    assert blended.key() != plain.key() and "start_weight" not in plain.to_dict()
    assert blended.to_args()[-2:] == ["--start-weight", "0.5"]
    assert TrainConfig.from_dict(json.loads(blended.to_json())) == blended
    trained = train_run(blended, prepared, root=tmp_path / "taught", show_bar=False)
    for fold in (2, 3):
        meta, final = trained.fold_model(fold).meta, trained.load_weights(fold, "final")
        start = fold_start(blended, prepared.classes, fold).state_dict()
        expected = average_states(start, final["state_dict"], 0.5)
        best = trained.load_weights(fold, "best")["state_dict"]
        assert meta["epoch"] == 2 and all(torch.allclose(best[k].float(), v.float(), atol=1e-6) for k, v in expected.items())
        assert not torch.equal(best["head.weight"], final["state_dict"]["head.weight"])

    first = train_run(plain, prepared, root=tmp_path / "plain", show_bar=False)
    made = average_with_start(first, 0.5, prepared, root=tmp_path / "made")
    assert made.name == trained.name and made.results()["summary"] == trained.results()["summary"]
    for fold in (2, 3):
        a, b = made.load_weights(fold, "best"), trained.load_weights(fold, "best")
        assert all(torch.equal(v, b["state_dict"][k]) for k, v in a["state_dict"].items()), fold
        assert a["val_acc"] == b["val_acc"] and made.load_ranges(fold) is not None
        assert made.results()["folds"][str(fold)]["training"]["val_acc"] == a["val_acc"]  # the average's, not epoch 2's
    with pytest.raises(ConfigError, match="start_weight"):
        TrainConfig(model="logmel-cnn", start_weight=0.5)  # nothing to average with
    assert main(["train", "--data", str(tmp_path / "again"), "--model", "logmel-cnn", "--start-weight", "0.5",
                 "--checkpoints", str(tmp_path / "x"), "--quiet"]) == 2


def check_compare_says_out_of_fold(store: Path, monkeypatch) -> None:
    """The Compare page calls a cross-validated run's figures what they are, never test figures."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("AUDIOCLF_CHECKPOINTS", str(store))
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    at.switch_page("pages/compare.py").run()
    assert not at.exception, [e.value for e in at.exception]
    (summary,) = [d.value for d in at.dataframe if "judged on" in d.value.columns]
    assert (summary["judged on"] == "out of fold (cv, no test fold)").all()
    labels = [m.label for m in at.metric]
    assert labels[0] == "out-of-fold accuracy" and "clips judged" in labels and "test clips" not in labels
    (which,) = [sb for sb in at.selectbox if (sb.key or "").startswith("detail_which_")]
    assert any("judged on fold" in o for o in which.options) and not any("validated" in o for o in which.options)


def test_a_model_without_a_head_to_replace_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(teach, "SHIPPED", tmp_path / "shipped")
    config = TrainConfig(model="cnn", epochs=1, cv_folds=(2, 3), dataset_id="d")
    run = Run.of(config, tmp_path / "store")
    run.write_config(config)
    run.save_weights(2, "best", {"state_dict": {}, "model_config": {}})
    with pytest.raises(ConfigError, match="cannot be taught"):
        teach.source_run(str(run.path))


def test_the_teach_page_adds_clips_teaches_and_predicts(tmp_path, monkeypatch):
    """Name classes, upload clips, teach from the best esc50 run in the store, then classify a clip."""
    import appdata
    from streamlit.testing.v1 import AppTest

    store = tmp_path / "store"
    ds = open_dataset(make_class_folders(tmp_path / "src", per_class=6, seconds=2.0, sr=16000))
    config = TrainConfig(model="logmel-cnn", epochs=1, batch_size=8, cv_folds=(2, 3), prep=PREP,
                         dataset_id="esc50-standin")  # what `--from esc50` looks for
    train_run(config, prepare(ds, PREP), root=store, show_bar=False)
    monkeypatch.chdir(tmp_path)  # the collection goes to ./data/mysounds
    monkeypatch.setenv("AUDIOCLF_CHECKPOINTS", str(store))
    monkeypatch.delenv("AUDIOCLF_DATA_ROOTS", raising=False)
    monkeypatch.delenv("AUDIOCLF_DATA", raising=False)

    at = AppTest.from_file(str(APP), default_timeout=120).run()
    at.switch_page("pages/teach.py").run()
    assert "add clips of at least two classes" in "\n".join(e.value for e in at.info)
    for label, freq in (("whistle", 2500.0), ("hum", 200.0)):
        for i in range(2):
            at.text_input(key="teach_label").set_value(label)
            turn = at.session_state["teach_added"] if "teach_added" in at.session_state else 0
            at.file_uploader(key=f"teach_files_{turn}").set_value(
                [(f"{label}{i}.wav", appdata.wav_bytes(freq * (1 + 0.05 * i), 1.0, 22050), "audio/wav")])
            at.run()
            at.button(key="teach_add").click().run()
            assert not at.exception, [e.value for e in at.exception]
    assert teach.clip_counts(tmp_path / "data" / "mysounds") == {"hum": 2, "whistle": 2}
    at.text_input(key="teach_label").set_value("../../etc")  # a path typed as a class name is refused
    turn = at.session_state["teach_added"]
    at.file_uploader(key=f"teach_files_{turn}").set_value([("x.wav", appdata.wav_bytes(), "audio/wav")])
    at.run()
    at.button(key="teach_add").click().run()
    assert "class name '../../etc'" in "\n".join(e.value for e in at.error)
    assert not (tmp_path / "etc").exists()

    at.button(key="teach_go").click().run()
    deadline = time.time() + 180
    while "Taught:" not in "\n".join(e.value for e in at.success):
        assert time.time() < deadline and not at.exception, [e.value for e in [*at.exception, *at.error]]
        time.sleep(1.0)
        at.run()
    assert "right on your 4 clips (each clip judged once" in "\n".join(e.value for e in at.success)
    at.file_uploader(key="teach_try").set_value(("try.wav", appdata.wav_bytes(2500.0, 1.0, 22050), "audio/wav"))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    answer = "\n".join(e.value for e in [*at.success, *at.warning])
    assert re.search(r"(Heard|Not sure; maybe) \*\*(whistle|hum)\*\*", answer), answer


def test_a_teaching_clip_must_hold_one_sound_not_a_recording_session(tmp_path):
    import io

    import numpy as np
    import soundfile as sf

    from audioclf.audio import AudioError

    def wav(seconds: float) -> bytes:
        buf = io.BytesIO()
        sf.write(buf, np.zeros((int(seconds * 8000), 2), np.float32), 8000, format="WAV")
        return buf.getvalue()

    with pytest.raises(AudioError, match="long.wav: longer than 30 s"):
        teach.add_clip(tmp_path, "rain", wav(75.0), "long.wav")  # refused without decoding all 75 s
    with pytest.raises(AudioError, match="0.1 s long"):
        teach.add_clip(tmp_path, "rain", wav(0.1), "click.wav")
    assert not any(tmp_path.rglob("*.wav"))
    path = teach.add_clip(tmp_path, "rain", wav(2.0), "ok.wav")
    assert sf.info(path).channels == 1 and sf.info(path).duration == pytest.approx(2.0)
    assert teach.add_clip(tmp_path, "rain", wav(2.0), "again.wav") == path  # the same audio is kept once


def test_teaching_writes_only_into_collections_it_made(tmp_path):
    """A collection named like a dataset next to it (the downloaded ESC-50, one's own folder of sounds) is refused:
    teaching would add clips to it, and "Remove a class" would delete its audio/ folder."""
    import appdata

    esc50 = tmp_path / "esc50"
    (esc50 / "meta").mkdir(parents=True)
    (esc50 / "meta" / "esc50.csv").write_text("filename,fold,target,category\n")
    (esc50 / "audio").mkdir()
    (esc50 / "audio" / "1-100032-A-0.wav").write_bytes(appdata.wav_bytes())
    own = tmp_path / "mine" / "dog"
    own.mkdir(parents=True)
    (own / "bark.wav").write_bytes(appdata.wav_bytes())
    for name in ("esc50", "mine"):
        with pytest.raises(UserError, match=f"{name}: this folder exists and was not made by teaching"):
            teach.collection_folder(tmp_path, name)
    with pytest.raises(UserError, match="not a collection made by teaching"):
        teach.remove_class(esc50, "audio")
    assert (esc50 / "audio" / "1-100032-A-0.wav").is_file()

    new = teach.collection_folder(tmp_path, "mysounds")  # not there yet: made by the first clip
    teach.add_clip(new, "whistle", appdata.wav_bytes(2500.0), "w.wav")
    teach.add_clip(new, "hum", appdata.wav_bytes(200.0), "h.wav")
    assert teach.collection_folder(tmp_path, "mysounds") == new
    teach.remove_class(new, "hum")
    assert teach.clip_counts(new) == {"whistle": 1}

    old = tmp_path / "older"  # made by teaching before collections were marked
    teach.add_clip(old, "rain", appdata.wav_bytes(), "r.wav")
    (old / teach.COLLECTION_MARK).unlink()
    (old / "audioclf_folds.csv").write_text("file,fold\n")
    assert teach.collection_folder(tmp_path, "older") == old


def test_the_teach_page_refuses_a_collection_named_like_a_dataset(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    esc50 = tmp_path / "data" / "esc50"
    (esc50 / "audio").mkdir(parents=True)
    (esc50 / "audio" / "1-100032-A-0.wav").write_bytes(b"RIFF")
    monkeypatch.chdir(tmp_path)  # the data folder is ./data
    monkeypatch.delenv("AUDIOCLF_DATA_ROOTS", raising=False)
    monkeypatch.delenv("AUDIOCLF_DATA", raising=False)
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    at.switch_page("pages/teach.py").run()
    at.text_input(key="teach_name").set_value("esc50").run()
    assert not at.exception
    assert "esc50: this folder exists and was not made by teaching" in "\n".join(e.value for e in at.error)
    assert not at.get("selectbox") or "teach_remove" not in [s.key for s in at.selectbox]
    assert sorted(p.name for p in esc50.rglob("*")) == ["1-100032-A-0.wav", "audio"]
