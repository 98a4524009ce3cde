"""Teach: your own sounds from a few clips each, on top of a shipped model's trunk; then try the result."""
import numpy as np
import streamlit as st

import ui
from audioclf import jobs, teach
from audioclf.confidence import verdict
from audioclf.data import open_dataset
from audioclf.errors import UserError
from audioclf.inference import predict_file, top_k
from audioclf.roots import data_roots
from audioclf.store import Run

ui.page_guard()  # a page opened first on a fresh server runs without app.py

RUN_KEY, ADDED_KEY = "teach_run", "teach_added"

st.title("Teach")
st.markdown(
    "Teach a model **your own sounds** from a few clips each (2 or more per class; 4 to 8 is better). It starts "
    "from a trained model's ears (its front end and trunk; a new last layer for your classes, except that a class "
    "named as one of its own, such as `dog`, keeps what it knows) and trains for "
    "about a minute on a laptop CPU. Your clips are stored, as mono wav, in a folder under the data folder; the "
    "model is an ordinary run: every page, and `python -m audioclf predict`, can use it.")

name = st.text_input("Your collection", ui.remembered("teach_name", None, "mysounds"), key="teach_name",
                     on_change=ui.remember, args=("teach_name",), max_chars=40,
                     help="A folder of that name under the data folder, one sub-folder per class.")
try:
    folder = teach.collection_folder(data_roots()[0], name)
except UserError as e:
    st.error(str(e))
    st.stop()
sources = ui.teach_sources()
if not sources:
    st.warning("There is no trained log-mel run to start from. Train one first: "
               "`python -m audioclf train --model logmel-cnn --subset esc50`.")
    st.stop()
pick = st.selectbox("Start from", list(sources), key="teach_source",
                    format_func=lambda s: f"{s.upper()}: {sources[s].name}",
                    help="The best run of that class set (by validation accuracy) lends its front end and trunk.")
source = sources[pick]

st.subheader("1 · Clips")
counts = teach.clip_counts(folder)
add = st.container(border=True)
with add:
    c = st.columns([1, 2, 2])
    known = list(counts)
    label = c[0].text_input("Class", key="teach_label", max_chars=40, placeholder="e.g. doorbell",
                            help="A new class name, or one of yours: " + (", ".join(known) or "none yet"))
    turn = st.session_state.get(ADDED_KEY, 0)  # a new key after each addition empties the inputs
    files = c[1].file_uploader("Upload clips", type=ui.AUDIO_TYPES, accept_multiple_files=True,
                               key=f"teach_files_{turn}")
    recorded = c[2].audio_input("Or record one", key=f"teach_record_{turn}")
    go = st.button("Add to this class", icon=":material/add:", key="teach_add", disabled=not (label and (files or recorded)))
if go:
    added, problems = 0, []
    for item in [*(files or []), *([recorded] if recorded is not None else [])]:
        got = ui.read_upload(item)
        if got is None:
            continue
        try:
            teach.add_clip(folder, label, *got)
            added += 1
        except UserError as e:
            problems.append(str(e))
    for problem in problems:
        st.error(problem)
    if added:
        st.session_state[ADDED_KEY] = turn + 1
        st.toast(f"Added {added} clip{'s' * (added != 1)} to {label.strip()}")
        st.rerun()
if counts:
    st.dataframe(ui.as_table([{"class": k, "clips": v} for k, v in counts.items()]), hide_index=True)
    with st.expander("Remove a class"):
        gone = st.selectbox("Class to remove", known, key="teach_remove")
        if st.button("Remove it and its clips", key="teach_remove_go"):
            try:
                teach.remove_class(folder, gone)
            except (UserError, OSError) as e:
                st.error(f"Could not remove {gone}: {e}")
            else:
                st.rerun()

st.subheader("2 · Teach")
missing = teach.readiness(counts)
if missing:
    st.info(f"To teach, {missing}.")
elif st.button(f"Teach {len(counts)} classes", type="primary", icon=":material/school:", key="teach_go"):
    try:
        ds = open_dataset(folder)
        folds, note = teach.fit_folds(ds.folds, 1, (2, 3, 4, 5))
        config = teach.taught_config(source, ds.fingerprint(), folds)
        launched = jobs.launch(jobs.JobRequest(config, data=folder, device=ui.device()))
        st.session_state[RUN_KEY] = str(launched.job.run.path)
        st.session_state["teach_note"] = note
    except (UserError, OSError) as e:
        st.error(f"Could not start teaching: {e}")
run = Run(st.session_state[RUN_KEY]) if RUN_KEY in st.session_state else None


def progress() -> None:
    job = jobs.job_status(run)
    fraction, text = ui.describe_progress(job)
    st.progress(fraction, text=f"Teaching {job.config.label}: {text or job.status}")
    if job.active:
        return
    if job.status == "failed":
        st.error(f"Teaching failed: {job.message or jobs.log_tail(run, 5)}")
    if st.session_state.get("teach_was_active"):
        st.session_state["teach_was_active"] = False
        st.rerun()  # the whole page, so that the result and the try-it box appear


if run is not None:
    if st.session_state.get("teach_note"):
        st.caption(f"How it is judged: {st.session_state['teach_note']}.")
    active = jobs.job_status(run).active
    st.session_state["teach_was_active"] = active
    st.fragment(run_every=1.0 if active else None)(progress)()
    res = run.results() if not active else None
    if res and res.get("ensemble"):
        acc = res["ensemble"]["accuracy"]
        how = ("each clip judged once by the fold model that did not train on it" if res.get("test_fold") is None
               else f"the fold models' ensemble on test fold {res['test_fold']}")
        st.success(f"Taught: **{acc:.0%}** right on your {len(res['y_true'])} clips ({how}). The run is "
                   f"`{run.name}`; it is on Predict, Compare and the other pages too.")

        st.subheader("3 · Try it")
        c = st.columns(2)
        uploaded = c[0].file_uploader("Upload a clip", type=ui.AUDIO_TYPES, key="teach_try")
        recorded = c[1].audio_input("Or record one", key="teach_try_record")
        got = ui.read_upload(uploaded if uploaded is not None else recorded)
        if got is not None:
            try:
                result = predict_file(ui.ensemble(run), got[0], name=ui.plain(got[1]))
            except UserError as e:
                st.error(f"This file can't be classified: {e}")
                st.stop()
            ens = np.asarray(result["ensemble"])
            v = verdict(ens, list(result["per_model"].values()), ui.unsure_threshold(run))
            top = ", ".join(f"{c} {p:.2f}" for c, p in top_k(ens, result["classes"], 3))
            (st.success if v["sure"] else st.warning)(
                f"{'Heard' if v['sure'] else 'Not sure; maybe'} **{result['classes'][v['top']]}** ({top})")
