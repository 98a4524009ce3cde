"""The Streamlit app through streamlit.testing (AppTest): every page with and without a dataset and with and
without trained runs, Predict on uploaded clips (good, long, corrupt, empty), Attention on an upload, the
dataset choice, and a training job launched from the Train page, followed, cancelled, resumed and done."""
from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import appdata
from audioclf import store
from audioclf.audio import AUDIO_EXTENSIONS
from conftest import make_class_folders, write_clip

APP = Path(__file__).resolve().parents[1] / "app.py"
PAGES = ("overview", "clips", "train", "teach", "compare", "attention", "predict")


@pytest.fixture(scope="session")
def app_data(tmp_path_factory) -> appdata.AppData:
    return appdata.build(tmp_path_factory.getbasetemp() / "appdata")


@pytest.fixture(autouse=True)
def fresh_caches():
    st.cache_data.clear()
    st.cache_resource.clear()
    yield


@pytest.fixture
def use(app_data, monkeypatch, tmp_path):
    """use(data=..., runs=...): point the app at the synthetic dataset or none, the trained store or an empty one."""
    def configure(data: bool = True, runs: bool = True) -> Path:
        monkeypatch.chdir(tmp_path)  # no ./data/esc50 here
        for key in ("AUDIOCLF_DATA", "AUDIOCLF_DATA_ROOTS", "AUDIOCLF_ESC50_MIRROR"):
            monkeypatch.delenv(key, raising=False)
        empty = tmp_path / "empty-store"
        for key, value in app_data.env(data, runs, empty).items():
            monkeypatch.setenv(key, value)
        return app_data.checkpoints if runs else empty
    return configure


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    if page != "overview":
        at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest, kind: str) -> str:
    return "\n".join(e.value for e in getattr(at, kind))


def charts(at: AppTest) -> int:
    return len(at.get("plotly_chart"))


def table_with(at: AppTest, column: str):
    frames = [d.value for d in [*at.dataframe, *at.table] if column in d.value.columns]
    assert frames, f"no table with a {column!r} column"
    return frames[0]


@pytest.mark.parametrize("runs", [True, False], ids=["runs", "no-runs"])
@pytest.mark.parametrize("data", [True, False], ids=["data", "no-data"])
@pytest.mark.parametrize("page", PAGES)
def test_page(page, data, runs, use):
    use(data=data, runs=runs)
    at = open_page(page)
    if page == "overview":  # AppTest (1.67) drops the main script's sidebar after switch_page; the browser
        # test checks the sidebar on every page.
        sidebar = "\n".join(e.value for e in at.sidebar.success) + "\n".join(e.value for e in at.sidebar.warning)
        assert ("30 clips, 3 classes" in sidebar) if data else ("No dataset chosen" in sidebar)
        from audioclf.device import arithmetic, pick_device

        [line] = [m.value for m in at.sidebar.markdown if m.value.startswith("**Device:**")]
        assert line.endswith(f"), {arithmetic(pick_device())}")  # e.g. "cpu (1 thread), float32 (no native …)"
    CHECKS[page](at, data, runs)


def check_overview(at, data, runs):
    if data:
        assert [m.value for m in at.metric[:3]] == ["30", "3", "5"]
        assert table_with(at, "fold 1")["total"].tolist() == [10, 10, 10]
        assert charts(at) == 1
    else:
        assert "No dataset yet" in texts(at, "warning")
        assert at.button(key="download").label == "Download ESC-50"
        assert at.button(key="use_folder")
        # Without data the model table is for ESC-10's 10 classes: the report's parameter count.
        assert 540_682 in table_with(at, "trainable parameters")["trainable parameters"].tolist()
    if data and runs:  # which model Predict uses, and its test figure from the run's results
        from audioclf import runs as runs_

        best = runs_.default_run(data="data")
        line = texts(at, "success")
        assert f"`{best.name}`" in line and f"{best.results()['ensemble']['accuracy']:.1%}" in line
    elif data:
        assert "answers" not in texts(at, "success")
    if runs:
        assert sorted(table_with(at, "folds done")["model"]) == ["cnn", "transformer-1h", "transformer-2h",
                                                                 "transformer-4h"]
    else:
        assert "Nothing is trained yet" in texts(at, "info")


def check_clips(at, data, runs):
    if not data:
        assert "No dataset is chosen yet" in texts(at, "info")
        assert not at.get("audio")
        return
    assert len(at.get("audio")) == 8 + 1  # a page of the list, and the chosen clip
    assert charts(at) == 2  # waveform with windows, log-mel
    mel = figures(at)[1]["layout"]["yaxis"]
    assert mel["title"]["text"] == "frequency (Hz)" and {"100", "1000", "4000"} <= set(mel["ticktext"])
    at.multiselect(key="clip_classes").set_value(["low"]).run()
    at.multiselect(key="clip_folds").set_value([1]).run()
    assert not at.exception
    listed = [m.value for m in at.markdown if m.value.startswith("`")]
    assert len(listed) == 2 and all(v.startswith("`low_") for v in listed)
    assert len(at.selectbox(key="clip_choice").options) == 2


def test_clip_choice_follows_the_filters(use):
    """The Clip box's value is the clip itself, so changing a filter never leaves it naming one clip while the
    plots show another: the caption above the plots names the clip the box names."""
    use(data=True, runs=False)
    at = open_page("clips")
    box = at.selectbox(key="clip_choice")
    mid = next(o for o in box.options if "(mid," in o)
    box.select(mid.split("  (")[0]).run()
    assert at.selectbox(key="clip_choice").value == mid.split("  (")[0]
    shown = lambda a: next(c.value for c in a.caption if "originally" in c.value)  # noqa: E731
    assert shown(at).startswith(f"`{mid.split('  (')[0]}`")
    at.multiselect(key="clip_classes").set_value(["high"]).run()  # the chosen clip is filtered out
    value = at.selectbox(key="clip_choice").value
    assert value.startswith("high") and value in [o.split("  (")[0] for o in at.selectbox(key="clip_choice").options]
    assert shown(at).startswith(f"`{value}`") and "· high ·" in shown(at)
    at.multiselect(key="clip_classes").set_value(["high", "mid"]).run()
    assert at.selectbox(key="clip_choice").value == value  # still there: kept


def check_train(at, data, runs):
    if data:
        assert at.button(key="train_start").label == "Start training"
        assert at.multiselect(key="train_folds").value == [2, 3, 4, 5]
    else:
        assert "Choose a dataset first" in texts(at, "warning")
    if runs:
        assert len(table_with(at, "progress")) == 4
        assert "No training is running." in texts(at, "caption")
        assert any("Test-fold results" in m.value for m in at.markdown)  # details of the newest run
        # "Details of" names the run only (its status would go stale); the box below shows the status and
        # the folds this job trained: the 1-head run trained fold 2 only (of cv folds 2 and 3).
        details = at.selectbox(key="train_details")
        assert not any(s in o for o in details.options for s in ("running", "done", "cancelled"))
        one = next(o for o in details.options if o.startswith("transformer-1h"))
        details.set_value(one.split(" · ")[-1]).run()
        shown = texts(at, "markdown")
        assert "✔ done" in shown and "fold 2 · 1 of 1 done" in shown and "folds 2, 3 ·" not in shown
        run = next(r for r in store.list_runs() if r.name == one.split(" · ")[-1])
        assert f"`python -m audioclf export --run {run.path} --out model.onnx`" in texts(at, "caption")
    else:
        assert "No run yet" in texts(at, "caption")


def test_train_form_keeps_its_values_across_a_reload(use):
    """The form's values live in the page address (st.query_params), so a reload (a new session with the same
    address) starts from them; a value that is no longer valid falls back to the default."""
    use(data=True, runs=False)
    at = open_page("train")
    at.selectbox(key="train_from").set_value("scratch").run()  # (a folder of one's own starts from ESC-50's model)
    assert at.selectbox(key="train_model").value == "logmel-cnn"  # the recipe, with its own epochs
    assert at.number_input(key="train_epochs_logmel-cnn").value == 120
    floor = at.selectbox(key="train_logmel-cnn_floor")  # a model option, named in words from the registry
    assert floor.label == "Noise-floor channel" and floor.options == ["off", "on"] and floor.value == 0
    at.selectbox(key="train_model").set_value("transformer").run()
    assert at.number_input(key="train_epochs_transformer").value == 100  # the report's
    at.number_input(key="train_epochs_transformer").set_value(7).run()
    at.selectbox(key="train_transformer_heads").set_value(2).run()
    at.multiselect(key="train_folds").set_value([3, 5]).run()
    keys = ("train_from", "train_epochs_transformer", "train_model", "train_transformer_heads", "train_folds")
    saved = {k: at.query_params[k] for k in keys}
    flat = {k: v if isinstance(v, str) else v[0] for k, v in saved.items()}  # AppTest keeps lists of values
    assert flat == {"train_from": "scratch", "train_epochs_transformer": "7", "train_model": "transformer",
                    "train_transformer_heads": "2", "train_folds": "3,5"}

    reloaded = AppTest.from_file(str(APP), default_timeout=120)
    reloaded.query_params.update({**saved, "train_batch": "9999"})  # out of range: the default
    reloaded.run()
    reloaded.switch_page("pages/train.py").run()
    assert not reloaded.exception, [e.value for e in reloaded.exception]
    assert reloaded.number_input(key="train_epochs_transformer").value == 7
    assert reloaded.selectbox(key="train_model").value == "transformer"
    assert reloaded.selectbox(key="train_transformer_heads").value == 2
    assert reloaded.multiselect(key="train_folds").value == [3, 5]
    assert reloaded.number_input(key="train_batch").value == 32


@pytest.fixture
def launched(monkeypatch) -> list:
    """What the Train page's Start button asks `jobs.launch` for, collected here without training it (the page then
    says "Could not start training: stop here")."""
    from audioclf import jobs
    from audioclf.errors import UserError

    requests = []

    def launch(request):
        requests.append(request)
        raise UserError("stop here")

    monkeypatch.setattr(jobs, "launch", launch)
    return requests


def test_train_form_teaches_a_folder_of_ones_own_from_the_esc50_model(use, app_data, launched):
    """A folder of one's own clips starts from the ESC-50 model (a few dozen clips train badly from scratch), and
    the form's run is the one `train --from esc50` makes, so either finds the other's run trained."""
    from audioclf import cli, teach
    from audioclf.data import open_dataset

    use(data=True, runs=False)
    at = open_page("train")
    source = teach.source_run("esc50")
    assert at.selectbox(key="train_from").value == "esc50" and at.selectbox(key="train_from").options == [
        "nothing (from scratch)", "the ESC-50 model", "the ESC-10 model"]
    assert at.selectbox(key="train_model_taught").value == source.config.model
    assert at.selectbox(key="train_model_taught").disabled
    assert at.number_input(key=f"train_epochs_{source.config.model}_taught").value == teach.TEACH_TRAINING["epochs"]
    at.button(key="train_start").click().run()
    assert "Could not start training: stop here" in texts(at, "error")
    [request] = launched
    args = cli.build_parser().parse_args(["train", "--data", str(app_data.data), "--from", "esc50"])
    assert request.config == cli.config_from_args(args, open_dataset(app_data.data))
    assert request.config.init == source.name and request.config.augment == teach.TEACH_TRAINING["augment"]

    at.selectbox(key="train_from").set_value("scratch").run()  # from scratch: the model's own settings again
    assert at.selectbox(key="train_model").value == "logmel-cnn" and not at.selectbox(key="train_model").disabled
    assert at.number_input(key="train_epochs_logmel-cnn").value == 120


def test_train_form_offers_fold_models_side_by_side_only_with_a_gpu(use, monkeypatch):
    use(data=True, runs=False)
    at = open_page("train")
    assert not [c for c in at.checkbox if c.key == "train_at_once"]  # no GPU here
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    at = open_page("train")
    box = at.checkbox(key="train_at_once")
    assert not box.disabled and "side by side" in box.label and not box.value
    box.check().run()
    assert at.query_params["train_at_once"] in ("True", ["True"])  # kept across a reload, as the form's other fields
    at.selectbox(key="train_device").set_value("cpu").run()
    assert at.checkbox(key="train_at_once").disabled


def test_progress_text_and_single_fold_figures():
    from types import SimpleNamespace

    import ui
    from audioclf import runs
    from audioclf.jobs import CANCELLED_MESSAGE

    job = SimpleNamespace(status="cancelled", message=CANCELLED_MESSAGE, progress={"folds": [2], "fold": 2,
                          "epochs": 5, "epoch": 3, "fraction": 0.6}, config=SimpleNamespace(cv_folds=(2, 3, 4, 5)))
    text = ui.describe_progress(job)[1]
    assert "cancelled · cancelled" not in text and text.count("cancelled") == 1, text
    assert runs.mean_pm({"mean": 0.1, "std": 0.0, "n": 1, "values": [0.1]}) == "0.100"
    assert runs.mean_pm({"mean": 0.5, "std": 0.1, "n": 2, "values": [0.4, 0.6]}) == "0.500 ± 0.100"


def store_with_a_quick_experiment(app_data, tmp_path, monkeypatch) -> tuple[str, str, str]:
    """A copy of the test store whose CNN and 4-head runs are listed as shipped (REFERENCE.json), plus a newer,
    worse copy of each (a quick experiment). Returns the shipped CNN's, the quick CNN's and the shipped
    4-head transformer's folder names."""
    import json

    root = tmp_path / "store"
    shutil.copytree(app_data.checkpoints, root)
    shipped = {r.config.label: r for r in store.list_runs(root)}
    for label in ("cnn", "transformer-4h"):
        quick = root / f"{shipped[label].name}-quick"
        shutil.copytree(shipped[label].path, quick)
        res = json.loads((quick / "results.json").read_text())
        res["summary"]["training"]["val_acc"]["mean"] = 0.0
        (quick / "results.json").write_text(json.dumps(res))
        (quick / "config.json").touch()  # the newest
        os.utime(quick / "config.json", (time.time() + 60, time.time() + 60))
    (root / "REFERENCE.json").write_text(json.dumps({"runs": {k: {"folder": shipped[k].name}
                                                               for k in ("cnn", "transformer-4h")}}))
    monkeypatch.setenv("AUDIOCLF_CHECKPOINTS", str(root))
    return shipped["cnn"].name, f"{shipped['cnn'].name}-quick", shipped["transformer-4h"].name


def test_defaults_are_the_best_runs_and_shipped_ones_wear_a_badge(use, app_data, tmp_path, monkeypatch):
    from audioclf import runs as runs_

    use(data=True, runs=True)
    cnn, quick, tr4 = store_with_a_quick_experiment(app_data, tmp_path, monkeypatch)
    best = [r.name for r in runs_.best_per_label(runs_.evaluated())]
    assert cnn in best and quick not in best and tr4 in best
    assert [runs_.is_shipped(r) for r in runs_.evaluated() if r.name in (cnn, quick)] == [False, True]  # newest 1st
    at = open_page("compare")
    chosen = at.multiselect(key="compare_runs")
    assert cnn in chosen.value and quick not in chosen.value
    labels = [o for o in chosen.options if "★" in o]
    assert len(labels) == 2 and all(o.startswith(("cnn ★ · ", "transformer-4h ★ · ")) for o in labels)
    at = open_page("attention")
    assert at.selectbox(key="att_run").value.name == tr4
    at = open_page("overview")
    assert (table_with(at, "shipped")["shipped"] == "★ shipped").sum() == 2


def test_train_deletes_a_run_after_a_second_click_but_keeps_shipped_ones(use, app_data, tmp_path, monkeypatch):
    use(data=True, runs=True)
    cnn, quick, _ = store_with_a_quick_experiment(app_data, tmp_path, monkeypatch)
    at = open_page("train")
    at.selectbox(key="train_details").set_value(quick).run()
    assert [b.key for b in at.button if b.key.startswith("delete-")] == [f"delete-{quick}"]
    at.button(key=f"delete-{quick}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert f"Deleted cnn (`{quick}`)." in texts(at, "success")
    details = at.selectbox(key="train_details")
    assert quick not in details.options and details.value == store.list_runs()[0].name  # set, not left stale
    assert quick not in [r.name for r in store.list_runs()] and cnn in [r.name for r in store.list_runs()]
    at.selectbox(key="train_details").set_value(cnn).run()  # shipped: its delete button is not offered
    assert not [b for b in at.button if b.key.startswith("delete-") and not b.disabled]


def test_attention_offers_first_the_best_transformer_on_the_sidebars_classes(use, app_data, tmp_path, monkeypatch):
    import json

    use(data=True, runs=True)
    _, _, tr4 = store_with_a_quick_experiment(app_data, tmp_path, monkeypatch)
    other = tmp_path / "store" / f"{tr4}-other"  # a better transformer on other data: not for these classes
    shutil.copytree(tmp_path / "store" / tr4, other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "dataset_id": "otherdata-0123456789"}))
    res = json.loads((other / "results.json").read_text())
    res["summary"]["training"]["val_acc"]["mean"] = 0.99
    (other / "results.json").write_text(json.dumps(res))
    at = open_page("attention")
    assert at.selectbox(key="att_run").value.name == tr4
    assert any(" · otherdata · " in o for o in at.selectbox(key="att_run").options)  # offered, not first


def check_compare(at, data, runs):
    if not runs:
        assert "Comparing needs at least one trained and evaluated run" in texts(at, "info")
        return
    assert len(at.multiselect(key="compare_runs").value) == 4
    assert "tested on different clips" not in texts(at, "warning")  # one dataset: the same test clips
    summary = table_with(at, "ensemble accuracy")
    assert len(summary) == 4
    one_fold = summary["folds"] == 1  # the 1- and 2-head runs: one value, no "± 0.000"
    assert one_fold.any() and not summary["accuracy"][one_fold].str.contains("±").any()
    assert summary["accuracy"][~one_fold].str.contains("±").all()
    assert (summary["judged on"] == "test fold 1").all()
    assert len(at.get("download_button")) == 2
    assert charts(at) >= 4 + 1 + 3  # curves per run, side by side, confusion + ROC + per class
    at.selectbox(key="detail_run").set_value(at.selectbox(key="detail_run").options[-1]).run()
    assert not at.exception


def test_attention_offers_the_test_clips_from_another_copy_of_the_same_data(use, app_data, tmp_path, monkeypatch):
    """Another copy of the clips (ESC-50's download for a run trained on ESC-10's originals: other bytes, so
    another fingerprint) holds the same test clips; a copy that lacks one of them does not offer them."""
    import shutil

    use(data=True, runs=True)
    copy = tmp_path / "copy"
    shutil.copytree(app_data.data, copy)
    monkeypatch.setenv("AUDIOCLF_DATA", str(copy))
    at = open_page("attention")
    assert at.radio(key="att_source").options[0].startswith("a test clip")
    names = [o.split(" (")[0] for o in at.selectbox(key="att_clip").options]
    assert len(names) == 6  # fold 1's clips: 2 per class
    short = tmp_path / "short"
    shutil.copytree(app_data.data, short)
    next(short.rglob(names[-1])).unlink()
    monkeypatch.setenv("AUDIOCLF_DATA", str(short))
    at = open_page("attention")
    assert at.radio(key="att_source").options == ["upload a clip"]


def check_attention(at, data, runs):
    if not runs:
        assert "needs a trained transformer run" in texts(at, "info")
        return
    assert at.selectbox(key="att_run")
    if data:
        assert at.radio(key="att_source").options == ["a test clip (fold 1, never trained on)", "upload a clip"]
        assert charts(at) == 2 + 3  # CLS over time, heatmaps, then 1, 2 and 4 heads side by side
        assert re.search(r"Predicted \*\*(low|mid|high)\*\*", texts(at, "markdown"))
    else:
        assert at.radio(key="att_source").options == ["upload a clip"]
        assert "Upload a clip" in texts(at, "info")


def figures(at: AppTest) -> list[dict]:
    import json

    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def test_attention_pictures_explain_themselves(use):
    """Heatmaps with axis titles and ticks in seconds, a sequential colour scale from 0, the 1/2/4-head panels on
    one attention axis, the fold ensemble as a choice, and a 'how to read this' with the measured takeaway."""
    use(data=True, runs=True)
    at = open_page("attention")
    assert at.selectbox(key="att_fold").value == "ensemble" and len(at.selectbox(key="att_fold").options) == 3
    assert "How to read this" in texts(at, "info") and "20–21 %" in texts(at, "info")
    figs = figures(at)
    heat = next(f for f in figs if f["data"][0]["type"] == "heatmap")
    layout = heat["layout"]
    assert layout["coloraxis"]["cmin"] == 0
    assert [c[1].lower() for c in layout["coloraxis"]["colorscale"]][0] == "#440154"  # Viridis: dark at 0
    def titles(axis: str) -> str:
        return " ".join(v["title"]["text"] for k, v in layout.items() if k.startswith(axis) and "title" in v)
    assert "key token" in titles("xaxis") and "query token" in titles("yaxis")
    assert layout["xaxis"]["ticktext"][0] == "CLS" and layout["xaxis"]["ticktext"][1].endswith(" s")
    side = figs[-3:]  # 1, 2 and 4 heads
    ranges = {tuple(f["layout"]["yaxis2"]["range"]) for f in side}
    assert len(ranges) == 1 and min(ranges)[0] == 0
    at.selectbox(key="att_fold").set_value(2).run()
    assert not at.exception and len(figures(at)) == 2 + 3


def test_compare_charts_share_axes_and_class_order(use):
    use(data=True, runs=True)
    at = open_page("compare")
    figs = figures(at)
    curves = [f for f in figs if f["layout"].get("title", {}).get("text", "").startswith(("cnn", "transformer"))]
    overlaid = [f for f in curves if " · " in f["layout"]["title"]["text"]]  # every run's folds overlaid
    side = [f for f in curves if ", fold " in f["layout"]["title"]["text"]]  # then one fold, run beside run
    assert len(overlaid) >= 4 and len(side) >= 2
    for group in (overlaid, side):  # each group on one loss axis from 0 and one epoch axis
        loss = {tuple(f["layout"]["yaxis"]["range"]) for f in group}
        epochs = {tuple(f["layout"]["xaxis"]["range"]) for f in group}
        assert len(loss) == 1 and len(epochs) == 1 and min(loss)[0] == 0
    bars = next(f for f in figs if f["data"][0]["type"] == "bar")
    confusion = next(f for f in figs if f["data"][0]["type"] == "heatmap")
    assert bars["data"][0]["x"] == confusion["data"][0]["y"] == table_with(at, "precision")["class"].tolist()

    # ESC-10's label order (dog, rooster, rain, ...) is not alphabetical, as results.json's per-class dict is.
    from audioclf import plots, runs

    order = ["dog", "rooster", "rain"]
    report = {"per_class": {c: {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1} for c in sorted(order)}}
    assert list(plots.per_class_figure(report["per_class"], order=order).data[0].x) == order
    assert [r["class"] for r in runs.per_class_table(report, order)] == order


def check_predict(at, data, runs):
    if not runs:
        assert "Predicting needs a trained run" in texts(at, "info")
        return
    assert at.file_uploader(key="predict_upload").allowed_type[:len(AUDIO_EXTENSIONS)] == list(AUDIO_EXTENSIONS)
    assert {".wav", ".mp3", ".m4a", ".webm", ".amr"} <= set(AUDIO_EXTENSIONS)  # files and phone recordings
    assert "Upload or record a clip" in texts(at, "info")


def check_teach(at, data, runs):
    # The source is the best ESC-50 run: from this store when it has one, else the one shipped with audioclf.
    assert at.selectbox(key="teach_source").value == "esc50"
    assert "To teach, add clips of at least two classes." in texts(at, "info")
    assert at.button(key="teach_add").disabled  # nothing to add yet


CHECKS = {"overview": check_overview, "clips": check_clips, "train": check_train, "teach": check_teach,
          "compare": check_compare, "attention": check_attention, "predict": check_predict}


def upload(at: AppTest, key: str, name: str, data: bytes, mime: str = "audio/wav") -> AppTest:
    at.file_uploader(key=key).set_value((name, data, mime))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_predict_classifies_an_uploaded_clip(use):
    use(data=False, runs=True)
    at = upload(open_page("predict"), "predict_upload", "whistle.wav", appdata.wav_bytes(2500.0, 1.0, 22050, 2))
    headline = texts(at, "success") + texts(at, "warning")  # sure, or "Not sure. Predicted: ..."
    verdict = re.search(r"Predicted: \*\*(\w+)\*\* \(ensemble probability (0\.\d+|1\.00)\)", headline)
    assert verdict and verdict.group(1) in appdata.CLASSES
    assert "the model knows 3 sounds: high, low, mid" in texts(at, "caption")
    assert charts(at) == 0  # a 1 s clip has no result over time, and its top classes are plain HTML bars
    top3 = table_with(at, "#1")
    bars = at.get("html")[0].proto.body
    folds = len(top3.index) - 1  # one row per fold model, then the ensemble
    assert folds >= 2 and bars.count('title="ensemble: ') == 3 and bars.count('title="fold ') == 3 * folds
    assert top3.index.tolist()[-1] == "ensemble" and top3["#1"].iloc[-1].startswith(verdict.group(1))


def test_predict_classifies_a_recording_without_a_second_player(use):
    """A clip recorded in the page is classified like an upload; the recorder plays it, so the page adds
    no player of its own (an upload gets one)."""
    use(data=False, runs=True)
    at = open_page("predict")
    at.audio_input(key="predict_record").set_value(("recording.wav", appdata.wav_bytes(2500.0, 1.0, 16000), "audio/wav"))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert re.search(r"Predicted: \*\*(\w+)\*\*", texts(at, "success") + texts(at, "warning"))
    assert not at.get("audio")
    at = upload(at, "predict_upload", "whistle.wav", appdata.wav_bytes(2500.0, 1.0, 22050))
    assert len(at.get("audio")) == 1 and "whistle.wav" in texts(at, "caption")


def test_predict_a_long_clip_over_time(use):
    use(data=False, runs=True)
    at = upload(open_page("predict"), "predict_upload", "long.wav", appdata.wav_bytes(220.0, 12.0, 16000))
    headline = texts(at, "success") + texts(at, "warning")
    assert "Heard over 12.0 s: **" in headline or "Not sure of any part of this 12.0 s recording" in headline
    assert "What happens when" in texts(at, "markdown")
    assert charts(at) == 1  # the class x time strip; no mean bar chart as the headline
    spans = table_with(at, "answer")
    assert spans["from (s)"].iloc[0] == "0.0" and spans["to (s)"].iloc[-1] == "12.5"  # windows at 0, 2.5, 5, 7.5 s
    assert "Averaged over the loudest windows (within 3 dB of the loudest; the CLI's answer)" in texts(at, "caption")


def test_predict_says_when_it_is_not_sure(use, app_data, tmp_path, monkeypatch):
    """A run whose validation folds put its "not sure" threshold above any answer it gives: the page says "Not sure"
    and why (no green verdict), names the threshold, and a long recording has no sure part."""
    import json
    import shutil

    use(data=False, runs=True)
    root = tmp_path / "store"
    shutil.copytree(app_data.checkpoints, root)
    for results in root.glob("*/results.json"):
        res = json.loads(results.read_text())
        res["unsure"] = {**res.get("unsure", {}), "threshold": 0.999, "target": 0.9}
        results.write_text(json.dumps(res))
    monkeypatch.setenv("AUDIOCLF_CHECKPOINTS", str(root))
    at = upload(open_page("predict"), "predict_upload", "whistle.wav", appdata.wav_bytes(2500.0, 1.0, 22050))
    assert not at.success
    warning = texts(at, "warning")
    assert warning.startswith("Not sure. Predicted: **") and "is below 1.00" in warning
    assert "none of the sounds this model knows" in warning
    assert '"Not sure" below an ensemble probability of 1.00' in texts(at, "caption")
    at = upload(at, "predict_upload", "long.wav", appdata.wav_bytes(220.0, 12.0, 16000))
    assert not at.success and "Not sure of any part of this 12.0 s recording" in texts(at, "warning")
    assert set(table_with(at, "answer")["answer"]) == {"not sure"}


def test_the_timeline_shows_every_sound_that_wins_a_window(use):
    """Six different sounds in a row: each appears as a row of the strip and in the spans."""
    from audioclf.confidence import timeline

    over_time = {"start_s": [0.0, 2.5, 5.0, 7.5, 10.0, 12.5], "clip_s": 5.0,
                 "ensemble": np.eye(6)[[0, 0, 1, 2, 3, 5]] * 0.7 + 0.05,
                 "per_model": {"fold2": np.eye(6)[[0, 0, 1, 2, 3, 5]]}}
    classes = list("abcdef")
    spans = timeline(over_time, classes, threshold=0.5)
    assert [sp["class"] for sp in spans] == ["a", "b", "c", "d", "f"] and spans[0]["end_s"] == 7.5
    assert [sp["class"] for sp in timeline(over_time, classes, threshold=0.9)] == [None]  # never sure
    from audioclf.plots import timeline_figure

    fig = timeline_figure(over_time["start_s"], over_time["ensemble"], classes)
    assert set(fig.data[0].y) == {"a", "b", "c", "d", "f"} and fig.data[0].zmin == 0
    # What a click selects (plotly can't select a heatmap cell): one dot per window, on its top class, picked
    # by hovering the column (tests/test_browser.py clicks one and hears it).
    dots = fig.data[1]
    assert dots.type == "scatter" and list(dots.y) == ["a", "a", "b", "c", "d", "f"]
    assert list(dots.customdata[:, 0]) == over_time["start_s"] and list(dots.x) == [2.5, 5, 7.5, 10, 12.5, 15]
    assert fig.layout.hovermode == "x" and "select" in fig.layout.clickmode


def test_the_timeline_calls_quiet_windows_background(use):
    """A window over QUIET_DB below the loudest is "quiet", however sure the model was there."""
    from audioclf.confidence import QUIET_DB, timeline

    over_time = {"start_s": [0.0, 2.5, 5.0, 7.5], "clip_s": 5.0, "ensemble": np.eye(3)[[1, 1, 0, 1]] * 0.9 + 0.03,
                 "level_db": [-30.0, -QUIET_DB - 1, 0.0, -QUIET_DB + 1]}
    spans = timeline(over_time, list("abc"), threshold=0.5)
    assert [(sp["class"], sp["quiet"]) for sp in spans] == [(None, True), ("a", False), ("b", False)]
    assert spans[0]["end_s"] == 7.5 and not spans[0]["sure"]
    from audioclf.plots import timeline_figure

    fig = timeline_figure(over_time["start_s"], over_time["ensemble"], list("abc"),
                          quiet=[level < -QUIET_DB for level in over_time["level_db"]])
    assert [(sh.x0, sh.x1) for sh in fig.layout.shapes] == [(1.25, 3.75), (3.75, 6.25)]  # the two quiet columns
    assert fig.data[1].text[0].startswith("quiet (background)") and not fig.data[1].text[2].startswith("quiet")


@pytest.mark.parametrize("name, data, message", [
    ("broken.wav", b"RIFF\x00\x00\x00\x00WAVEnot really audio", "cannot decode"),
    ("noise.mp3", b"\x00\x01" * 500, "cannot decode"),
    ("empty.wav", b"", "empty"),
    ("memo.m4a", b"\x00\x00\x00\x18ftypM4A " + b"\x01" * 500, "cannot decode"),
    ("list.m4a", b"#EXTM3U\n#EXTINF:10,\nfile:///etc/hostname\n#EXT-X-ENDLIST\n", "cannot decode"),
], ids=["corrupt-wav", "garbage-mp3", "empty", "garbage-m4a", "playlist"])
def test_predict_a_bad_upload_says_what_is_wrong(use, name, data, message):
    use(data=False, runs=True)
    at = upload(open_page("predict"), "predict_upload", name, data)
    errors = texts(at, "error")
    assert name in errors and message in errors
    assert not at.success and charts(at) == 0


def test_predict_a_phone_recording(use):
    """An m4a (AAC) upload, as a phone saves it, gets the answer of the same sound as wav."""
    from audioclf.audio import encode, load_audio

    use(data=False, runs=True)
    wav = appdata.wav_bytes(880.0, 1.0, 22050)
    at = upload(open_page("predict"), "predict_upload", "tone.wav", wav)
    answer = texts(at, "success") + texts(at, "warning")
    assert "Predicted: **" in answer
    at = upload(at, "predict_upload", "tone.m4a", encode(load_audio(wav)[0], 22050, "m4a"))
    assert not texts(at, "error") and texts(at, "success") + texts(at, "warning") == answer
    assert not at.get("audio")[0].proto.url.endswith(".wav")  # the player is told it is AAC, not wav


def test_predict_refuses_a_file_over_the_limit(use):
    use(data=False, runs=True)
    at = upload(open_page("predict"), "predict_upload", "huge.wav", bytes(51 * 2**20))
    assert "`huge.wav`: the file is 51.0 MB; the limit is 50 MB" in texts(at, "error")
    assert not at.success
    at = upload(at, "predict_upload", "edge.wav", bytes(50 * 2**20 + 1))  # just over: never "50 MB; ... 50 MB"
    assert ("`edge.wav`: the file is 52,428,801 bytes (50 MB is 52,428,800 bytes); the limit is 50 MB"
            in texts(at, "error"))


def test_predict_refuses_a_recording_over_the_length_limit(use, monkeypatch):
    """A small file can hold hours (a phone's AMR: 9 h in 50 MB); the Predict page stops at its limit."""
    import ui

    use(data=False, runs=True)
    monkeypatch.setattr(ui, "RECORDING_LIMIT_S", 2)
    at = upload(open_page("predict"), "predict_upload", "long.wav", appdata.wav_bytes(880.0, 3.0, 22050))
    assert "`long.wav`: 3 s of audio; the limit is 2 s" in texts(at, "error")
    assert not at.success and charts(at) == 0


def test_predict_several_recordings_at_once_gives_the_clis_table(use, tmp_path):
    """A batch: one row per file with the CLI's `--csv` answers (a broken file is a row saying why, not the end
    of the batch), the table as a CSV, and one file's full answer below; more than MAX_FILES are refused."""
    import csv
    import subprocess
    import sys

    import ui

    use(data=False, runs=True)
    files = {"whistle.wav": appdata.wav_bytes(2500.0, 1.0, 22050), "hum.wav": appdata.wav_bytes(220.0, 12.0, 16000),
             "broken.wav": b"RIFF\x00\x00\x00\x00WAVEnot really audio", "empty.wav": b""}
    at = open_page("predict")
    assert not [u for u in at.get("file_uploader") if u.key == "predict_batch"]  # only when asked for
    at.toggle(key="predict_many").set_value(True).run()
    at.file_uploader(key="predict_batch").set_value([(n, d, "audio/wav") for n, d in files.items()]).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "**2 of 4 files classified**" in texts(at, "markdown")
    shown = at.dataframe[0].value.set_index("file")
    assert list(shown.index) == list(files) and "cannot decode" in shown.loc["broken.wav", "error"]
    assert shown.loc["broken.wav", "error"].startswith("broken.wav: ")  # named as text: the table renders no Markdown
    assert shown.loc["empty.wav", "error"] == "empty.wav: the file is empty (0 bytes)."

    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    run = ui.predict_runs()[0][0]
    cli = subprocess.run([sys.executable, "-m", "audioclf", "predict", *(str(tmp_path / n) for n in files), "--run",
                          str(run.path), "--csv", str(tmp_path / "cli.csv")], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert cli.returncode == 2, cli.stderr  # the broken file
    by_cli = {Path(r["file"]).name: r for r in csv.DictReader(open(tmp_path / "cli.csv"))}
    for name in ("whistle.wav", "hum.wav"):
        assert {k: shown.loc[name, k] for k in ("seconds", "answer", "probability", "top")} == \
               {k: by_cli[name][k] for k in ("seconds", "answer", "probability", "top")}
    download = at.get("download_button")[0]
    assert download.proto.label == "Download the answers (CSV)"

    at.selectbox(key="predict_pick").set_value(1).run()  # the long one: its timeline
    assert "What happens when" in texts(at, "markdown") and "`hum.wav` · 12.00 s" in texts(at, "caption")

    many = [(f"c{i}.wav", files["whistle.wav"], "audio/wav") for i in range(11)]
    at.file_uploader(key="predict_batch").set_value(many).run()
    assert "11 files: this page classifies up to 10 at a time" in texts(at, "error")


def test_a_batch_together_holds_no_more_audio_than_one_upload(use, monkeypatch):
    import ui

    use(data=False, runs=True)
    monkeypatch.setattr(ui, "RECORDING_LIMIT_S", 3)
    two, one = appdata.wav_bytes(880.0, 2.0, 8000), appdata.wav_bytes(880.0, 1.0, 8000)
    at = open_page("predict")
    assert not [u for u in at.get("file_uploader") if u.key == "predict_batch"]  # only when asked for
    at.toggle(key="predict_many").set_value(True).run()
    at.file_uploader(key="predict_batch").set_value([("a.wav", two, "audio/wav"), ("b.wav", two, "audio/wav"),
                                                     ("c.wav", one, "audio/wav"), ("d.wav", one, "audio/wav")]).run()
    assert not at.exception, [e.value for e in at.exception]
    shown = at.dataframe[0].value.set_index("file")
    assert shown.loc["a.wav", "answer"] and shown.loc["c.wav", "answer"]  # 2 s, then 1 s: the 3 s are used up
    assert "longer than the 1 s left" in shown.loc["b.wav", "error"]
    assert "not classified: the files before it hold" in shown.loc["d.wav", "error"]


EVIL = "**bold** [link](http://evil.example/) ![img](http://evil.example/i.png) `tick` $x$.wav"


def rendered(text: str) -> str:
    """What Markdown would render of `text`: everything outside code spans."""
    return re.sub(r"`[^`]*`", "", text)


def test_markdown_in_an_uploaded_name_does_not_render(use):
    use(data=False, runs=True)
    at = upload(open_page("predict"), "predict_upload", EVIL, appdata.wav_bytes(880.0, 1.0, 22050))
    shown = texts(at, "caption")
    assert "[link](http://evil.example/)" in shown and "Predicted: **" in texts(at, "success") + texts(at, "warning")
    at = upload(at, "predict_upload", EVIL, b"RIFF\x00\x00\x00\x00WAVEnot really audio")
    assert "cannot decode" in texts(at, "error")
    shown += texts(at, "error")
    at = upload(open_page("attention"), "att_upload", EVIL, b"OggS not audio at all")
    assert "cannot decode" in texts(at, "error")
    shown += texts(at, "error")
    for bit in ("](http", "**bold**", "$x$", "tick"):
        assert bit not in rendered(shown)


def test_attention_on_an_uploaded_clip(use):
    use(data=False, runs=True)
    at = upload(open_page("attention"), "att_upload", "tone.wav", appdata.wav_bytes(880.0, 2.0, 44100))
    assert charts(at) == 2 + 3
    assert re.search(r"Predicted \*\*(low|mid|high)\*\*", texts(at, "markdown"))
    assert "loudest" not in texts(at, "caption")
    at = upload(at, "att_upload", "junk.ogg", b"OggS not audio at all")
    assert "junk.ogg" in texts(at, "error") and charts(at) == 0


def test_attention_shows_a_long_recording_where_its_sound_is(use):
    """A 20 s recording, quiet but for a tone at 12-14 s: the page shows the model the loudest clip length,
    as training reads such a clip (its first 5 s would be near silence), and says so."""
    import io

    import soundfile as sf

    import ui
    from audioclf.config import PrepConfig

    sr = 16000
    wave = 0.001 * np.random.default_rng(0).standard_normal(20 * sr)
    wave[12 * sr:14 * sr] += appdata.tone(880.0, 2.0, sr)
    buf = io.BytesIO()
    sf.write(buf, wave.astype(np.float32), sr, format="WAV")
    shown = ui.upload_view(buf.getvalue(), "memo.wav", PrepConfig(sample_rate=16000, duration=5.0))
    assert shown["recording"] and shown["wave"].shape == (5 * sr,)
    assert np.sqrt(np.mean(shown["wave"] ** 2)) > 0.1 > 10 * np.sqrt(np.mean(wave[:5 * sr] ** 2))
    use(data=False, runs=True)
    at = upload(open_page("attention"), "att_upload", "memo.wav", buf.getvalue())
    assert "longer than 7.5 s" in texts(at, "caption") and charts(at) == 2 + 3


def test_a_linked_data_folder_is_refused_saying_it_is_a_link(use, app_data, tmp_path):
    """data/esc50 as a link to a folder elsewhere (a newcomer's first idea): refused, and the message says
    where the link leads and what the server's owner can do."""
    use(data=False, runs=False)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "esc50").symlink_to(app_data.data)
    at = open_page("overview")
    shown = texts(at, "error")
    assert f"esc50: it is a link to {Path(app_data.data).resolve()}, not inside the allowed data folders" in shown
    assert "AUDIOCLF_DATA_ROOTS" in shown


def test_choosing_a_dataset(use, app_data, monkeypatch, tmp_path):
    use(data=False, runs=False)
    first = tmp_path / "data"
    monkeypatch.setenv("AUDIOCLF_DATA_ROOTS", os.pathsep.join([str(first), str(app_data.data.parent)]))
    mine = make_class_folders(first / "mine", classes=("low", "mid"), per_class=5)
    write_clip(mine / "rare" / "one.wav", 300)  # a class too small for 5 folds
    outside = make_class_folders(tmp_path / "outside", classes=("low", "mid"), per_class=5)
    (first / "link").symlink_to(outside)
    at = open_page("overview")  # no $AUDIOCLF_DATA, no ./data/esc50: the app opens on the first dataset found
    assert at.sidebar.selectbox(key="data_dir_input").options == ["(none)", str(mine), str(app_data.data)]
    assert at.session_state["data_dir"] == str(mine) and [m.value for m in at.metric[:1]] == ["11"]
    at.session_state["data_dir"] = ""  # none, as the sidebar's "(none)" does: the forms to get a dataset
    at.run()
    assert f"`{app_data.data.parent}`" in texts(at, "caption")  # the form names the allowed folders
    for typed in ("/no/such/folder", str(outside), "../outside", "link", "mine/../../outside"):
        at.text_input(key="overview_folder").set_value(typed)
        at.button(key="use_folder").click().run()
        assert "That folder can't be used" in texts(at, "error") and "not inside the allowed data folders" in texts(
            at, "error"), typed
        assert at.session_state["data_dir"] == ""
    at.text_input(key="overview_folder").set_value("mine")  # relative: inside the first root
    at.button(key="use_folder").click().run()
    assert not at.exception and at.session_state["data_dir"] == str(mine)
    assert "rare: 1 clip(s), fewer than the 5 folds; put in fold(s) 2" in texts(at, "warning")
    at.session_state["data_dir"] = ""  # back to none, as the sidebar's "(none)" does (checked below)
    at.run()
    assert at.session_state["data_dir"] == "" and "No dataset yet" in texts(at, "warning")
    at.text_input(key="overview_folder").set_value(str(app_data.data))
    at.button(key="use_folder").click().run()
    assert not at.exception
    assert at.session_state["data_dir"] == str(app_data.data)
    assert [m.value for m in at.metric[:1]] == ["30"]
    at.switch_page("pages/clips.py").run()  # the choice holds on the other pages
    assert not at.exception and len(at.get("audio")) == 9

    # The sidebar offers only the datasets found under the roots, and none.
    at = open_page("overview")
    at.sidebar.selectbox(key="data_dir_input").set_value(str(app_data.data)).run()
    assert not at.exception and [m.value for m in at.metric[:1]] == ["30"]  # (AppTest drops the sidebar on reruns)
    monkeypatch.setenv("AUDIOCLF_DATA", str(mine))
    at = open_page("overview")
    assert at.sidebar.selectbox(key="data_dir_input").value == str(mine)
    at.sidebar.selectbox(key="data_dir_input").set_value("").run()
    assert at.session_state["data_dir"] == "" and "No dataset yet" in texts(at, "warning")

    # A folder outside the roots that reaches the session anyway is refused on every page.
    at.session_state["data_dir"] = str(outside)
    at.run()
    assert not at.exception and "not inside the allowed data folders" in texts(at, "error")
    at.switch_page("pages/clips.py").run()
    assert not at.exception and "can't be used" in texts(at, "error")


def wait_for(at: AppTest, predicate, timeout: float = 150.0) -> AppTest:
    deadline = time.time() + timeout
    while True:
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        if predicate(at):
            return at
        assert time.time() < deadline, texts(at, "markdown")[-2000:]
        time.sleep(1.0)


def status_of(at: AppTest) -> str:
    return texts(at, "markdown")


def test_train_launch_follow_cancel_resume_done(use):
    store_dir = use(data=True, runs=False)
    at = open_page("train")
    at.selectbox(key="train_from").set_value("scratch").run()
    at.selectbox(key="train_model").set_value("cnn").run()  # the report's: the test store's configs
    at.number_input(key="train_epochs_cnn").set_value(1)
    at.multiselect(key="train_folds").set_value([2])
    at.button(key="train_start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Started cnn" in texts(at, "success")
    [run] = [r.path for r in store.list_runs(store_dir)]
    at.button(key="train_start").click().run()  # again while it runs: no second copy
    assert "already training" in texts(at, "info")
    assert len(store.list_runs(store_dir)) == 1

    at.button(key=f"cancel-{run.name}").click().run()
    at = wait_for(at, lambda a: "■ cancelled" in status_of(a))
    assert at.button(key=f"resume-{run.name}").label == "Resume"
    at.button(key=f"resume-{run.name}").click().run()
    at = wait_for(at, lambda a: "✔ done" in status_of(a) and "Test-fold results" in status_of(a))
    results = table_with(at, "val fold")
    assert results["val fold"].tolist()[0] == "fold 2"
    assert (run / "results.json").is_file()

    at.button(key="train_start").click().run()  # the same settings once more: cached, shown at once
    assert "already trained" in texts(at, "success")
    assert store.read_json(run / "job.json")["pid"] == store.read_json(run / "progress.json")["pid"]


def test_an_esc50_layout_folder_without_esc10_rows_opens_as_esc50(use, monkeypatch, tmp_path):
    """One's own clips in ESC-50 layout, none marked esc10: the sidebar opens them as they are, without a subset
    radio and without "no rows for subset esc10" first."""
    use(data=False, runs=False)
    own = tmp_path / "data" / "own"
    rows = [f"{c}{i}.wav,{i % 5 + 1},{t},{c},False" for t, c in enumerate(("hum", "bell")) for i in range(5)]
    (own / "meta").mkdir(parents=True)
    (own / "meta" / "esc50.csv").write_text("filename,fold,target,category,esc10\n" + "\n".join(rows) + "\n")
    for row in rows:
        write_clip(own / "audio" / row.split(",")[0], 300 + 100 * int(row.split(",")[2]))
    monkeypatch.setenv("AUDIOCLF_DATA", str(own))
    at = open_page("overview")
    assert not at.sidebar.radio and not texts(at.sidebar, "error")
    assert "**esc50**: 10 clips, 2 classes" in texts(at.sidebar, "success")


@pytest.mark.integration
def test_real_esc10_overview_and_clips(esc10_dir, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUDIOCLF_DATA", str(esc10_dir))
    monkeypatch.setenv("AUDIOCLF_CHECKPOINTS", str(tmp_path / "empty-store"))
    at = open_page("overview")
    assert [m.value for m in at.metric[:3]] == ["400", "10", "5"]
    assert table_with(at, "fold 1")["class"].tolist()[:2] == ["dog", "rooster"]
    assert not at.sidebar.radio  # ESC-10's own folder: its "ESC-50" would be the same ten classes, so none offered
    assert "**esc10**: 400 clips, 10 classes" in texts(at.sidebar, "success")
    at.switch_page("pages/clips.py").run()
    assert not at.exception
    assert len(at.get("audio")) == 9 and charts(at) == 2
    assert "originally 5.00 s at 44100 Hz" in texts(at, "caption")



@pytest.mark.integration
def test_train_form_teaches_esc10_from_the_esc50_model_and_trains_esc50_from_scratch(esc10_dir, esc50_dir, launched,
                                                                                      monkeypatch, tmp_path):
    """ESC-10's form starts where the shipped ESC-10 default was made (`train --from esc50`: the same config but
    its seed); ESC-50's from scratch, with the recipe."""
    from audioclf import cli
    from audioclf.data import open_dataset
    from audioclf.runs import default_run

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUDIOCLF_DATA", str(esc10_dir))
    monkeypatch.setenv("AUDIOCLF_CHECKPOINTS", str(tmp_path / "empty-store"))
    at = open_page("train")
    assert at.selectbox(key="train_from").value == "esc50"
    at.button(key="train_start").click().run()
    [request] = launched
    args = cli.build_parser().parse_args(["train", "--data", str(esc10_dir), "--from", "esc50"])
    assert request.config == cli.config_from_args(args, open_dataset(esc10_dir))
    shipped = default_run(Path(__file__).resolve().parents[1] / "checkpoints").config
    assert request.config.label == shipped.label and request.config.init == shipped.init

    monkeypatch.setenv("AUDIOCLF_DATA", str(esc50_dir))
    at = open_page("overview")
    at.sidebar.radio(key="subset_input").set_value("esc50").run()
    at.switch_page("pages/train.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="train_from").value == "scratch" and at.selectbox(key="train_model").value == "logmel-cnn"

@pytest.fixture
def esc50_server(tmp_path, monkeypatch):
    """A local HTTP server with a tiny ESC-50-layout archive at /esc50.zip (10 clips, 2 ESC-10 classes)."""
    import csv
    import io
    import threading
    import zipfile
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    rows = [{"filename": f"{fold}-1000{i}-A-{t}.wav", "fold": fold, "target": t, "category": c, "esc10": "True",
             "src_file": f"1000{i}", "take": "A"}
            for i, (t, c) in enumerate([(0, "dog"), (1, "rooster")]) for fold in range(1, 6)]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    root = tmp_path / "www"
    root.mkdir()
    with zipfile.ZipFile(root / "esc50.zip", "w") as zf:
        zf.writestr("ESC-50-master/meta/esc50.csv", text.getvalue())
        for r in rows:
            zf.writestr(f"ESC-50-master/audio/{r['filename']}", appdata.wav_bytes(440.0 * (1 + r["target"]), 0.2, 8000))
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")

    class Quiet(SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_download_esc50_from_the_overview(use, esc50_server, tmp_path, monkeypatch):
    from audioclf.download import ESC50_URL

    use(data=False, runs=False)
    at = open_page("overview")  # no mirror: the official address, into the first data root (./data)
    assert f"`{ESC50_URL}` into `{tmp_path / 'data' / 'esc50'}`" in texts(at, "markdown")
    assert not [w for w in at.text_input if w.key in ("download_url", "download_dest")]  # nothing to type
    monkeypatch.setenv("AUDIOCLF_DATA_ROOTS", str(tmp_path / "dl"))
    monkeypatch.setenv("AUDIOCLF_ESC50_MIRROR", f"{esc50_server}/missing.zip")  # the owner's settings
    at.button(key="download").click().run()
    assert "The download failed" in texts(at, "error") and not (tmp_path / "dl" / "esc50").exists()

    monkeypatch.setenv("AUDIOCLF_ESC50_MIRROR", f"{esc50_server}/esc50.zip")
    at.run()
    assert f"`{esc50_server}/esc50.zip` into `{tmp_path / 'dl' / 'esc50'}`" in texts(at, "markdown")
    at.button(key="download").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["data_dir"] == str(tmp_path / "dl" / "esc50")
    assert [m.value for m in at.metric[:2]] == ["10", "2"]


def test_streamlit_config():
    import ui

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    config = tomllib.loads((APP.parent / ".streamlit" / "config.toml").read_text())
    assert config["server"]["headless"] is True and config["server"]["enableXsrfProtection"] is True
    assert config["server"]["address"] == "localhost"  # exposed only on purpose (README: Exposing the app)
    assert config["browser"]["gatherUsageStats"] is False
    assert config["server"]["maxUploadSize"] == ui.UPLOAD_LIMIT_MB == 50


def test_attention_over_the_shipped_recipes_log_mel_tokens(monkeypatch, tmp_path):
    """The shipped log-mel transformer on an upload: one token per 80 ms, so the time axis is the clip's."""
    import json as _json

    from audioclf.store import Run

    shipped = APP.parent / "checkpoints"
    manifest = _json.loads((shipped / "REFERENCE.json").read_text())["runs"]
    if "logmel-transformer-2h" not in manifest:
        pytest.skip("no shipped log-mel transformer")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AUDIOCLF_DATA", raising=False)
    monkeypatch.setenv("AUDIOCLF_CHECKPOINTS", str(shipped))
    at = open_page("attention")
    run = Run(shipped / manifest["logmel-transformer-2h"]["folder"])
    at.selectbox(key="att_run").set_value(run).run()
    at = upload(at, "att_upload", "dog.wav", appdata.wav_bytes(440.0, 5.0, 16000))
    specs = [c.proto.spec for c in at.get("plotly_chart")]
    assert len(specs) >= 2 and re.search(r"Predicted \*\*\w+\*\*", texts(at, "markdown"))
    heatmaps = [s for s in specs if '"ticktext":["CLS"' in s]  # the attention matrices, CLS first
    assert heatmaps and re.search(r'"[0-4]\.\d s"', heatmaps[0])  # the other ticks in seconds of the clip
    # Its tokens are log-mel frames: the clip's spectrogram from the model's front end, in Hz, under the attention
    # on the clip's time axis (0 to 5 s, shared), and what we measured of this family's attention.
    layout = figures(at)[0]["layout"]
    assert layout["yaxis3"]["title"]["text"] == "frequency (Hz)" and "1000" in layout["yaxis3"]["ticktext"]
    assert all(layout[a]["range"] == [0, 5.0] for a in ("xaxis", "xaxis2", "xaxis3"))
    assert "spectrogram" in texts(at, "caption") and "82 %" in texts(at, "info")


@pytest.mark.integration
def test_predict_and_listen_offer_the_chosen_class_sets_default_run(esc50_dir, monkeypatch, tmp_path):
    """Switching the sidebar from ESC-10 to ESC-50 on Predict (and Listen) offers ESC-50's default run, not the run
    shown for ESC-10 before; back on ESC-10, ESC-10's again."""
    from audioclf.runs import defaults

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUDIOCLF_DATA", str(esc50_dir))
    shipped_store = Path(__file__).resolve().parents[1] / "checkpoints"
    monkeypatch.setenv("AUDIOCLF_CHECKPOINTS", str(shipped_store))  # read only: nothing here trains or writes
    shipped = defaults(shipped_store)
    # streamlit-webrtc (Listen) asks the server's session manager for this session, which AppTest's runtime lacks
    monkeypatch.setattr("streamlit_webrtc.component.get_this_session_info", lambda: None)
    for page in ("predict", "listen"):
        at = open_page(page)
        assert at.sidebar.radio(key="subset_input").value == "esc10"
        assert at.main.selectbox[0].value.name == shipped["esc10"].name
        at.sidebar.radio(key="subset_input").set_value("esc50").run()
        assert not at.exception, [e.value for e in at.exception]
        assert at.main.selectbox[0].value.name == shipped["esc50"].name
        at.sidebar.radio(key="subset_input").set_value("esc10").run()
        assert at.main.selectbox[0].value.name == shipped["esc10"].name
