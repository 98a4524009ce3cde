"""Predict: classify an uploaded or recorded clip with each fold model and their ensemble."""
import numpy as np
import streamlit as st

import ui
from audioclf import plots
from audioclf.audio import TooLong, excerpt_wav
from audioclf.errors import UserError
from audioclf.confidence import ANSWER_COLUMNS, QUIET_DB, answer_row, quiet_windows, timeline, verdict
from audioclf.inference import LOUD_DB, predict_file, top_k
from audioclf.store import Run

ui.page_guard()  # a page opened first on a fresh server runs without app.py
MAX_FILES = 10  # uploads at once; the command line takes whole folders

st.title("Predict")
st.markdown("Upload a recording (wav, flac, mp3, ogg, or a phone's m4a, amr or webm; any sample rate or channel count; "
            f"up to {ui.RECORDING_LIMIT_S // 3600} hours and {ui.UPLOAD_LIMIT_MB} MB) or record one. Every fold model of the chosen run classifies it, and so "
            "does their ensemble (the mean of their probabilities); it says when it is not sure. A recording "
            "longer than one window is shown as a timeline of what happens when. Your audio stays in memory; "
            "nothing is saved. Several recordings at once: the switch at the bottom; a whole folder: the command line, "
            "`python -m audioclf predict FOLDER --csv answers.csv`.")

choices = ui.predict_runs()  # the best complete run by validation accuracy first (cached until the store changes)
if not choices:
    ui.no_runs_message("Predicting needs a trained run")
    st.stop()
labels = dict(choices)
run = st.selectbox("Model run", list(labels), format_func=labels.get, key=ui.run_choice_key("predict"),
                   help="The best fully trained run (by validation accuracy) first, then fully trained runs, "
                        "newest first. Each run holds one model per validation fold.")


@st.cache_data(max_entries=16, show_spinner="Classifying…")
def classify(run: str, stamp: str, data: bytes, name: str, max_seconds: float = ui.RECORDING_LIMIT_S) -> dict:
    return predict_file(ui.ensemble(Run(run)), data, name=name, max_seconds=max_seconds)


@st.cache_data(max_entries=8, show_spinner=False)
def excerpt(data: bytes, name: str, start: float, end: float) -> bytes:
    return excerpt_wav(data, start, end, name=name)


def headline(result: dict, spans: list[dict] | None, threshold: float) -> None:
    """The answer in one box: what was heard (a long recording) or the top class (a clip), or "not sure"."""
    classes, ens = result["classes"], np.asarray(result["ensemble"])
    if spans is not None:
        sure = [sp for sp in spans if sp["sure"]]
        heard = sorted({sp["class"] for sp in sure}, key=[sp["class"] for sp in sure].index)
        if heard:
            when = {c: ", ".join(f"{sp['start_s']:.0f}–{sp['end_s']:.0f} s" for sp in sure if sp["class"] == c)
                    for c in heard}
            st.success(f"Heard over {result['duration_s']:.1f} s: " + ", ".join(f"**{c}** ({when[c]})" for c in heard),
                       icon=":material/hearing:")
        else:
            st.warning(f"Not sure of any part of this {result['duration_s']:.1f} s recording: no window's answer is "
                       "confident enough (see the strip below).", icon=":material/help:")
        return
    v = verdict(ens, list(result["per_model"].values()), threshold)
    best = v["top"]
    line = f"Predicted: **{classes[best]}** (ensemble probability {ens[best]:.2f})"
    if v["sure"]:
        st.success(line, icon=":material/hearing:")
    else:
        st.warning(f"Not sure. {line}, but {' and '.join(v['reasons'])}. It may be none of the sounds this "
                   "model knows.", icon=":material/help:")


def timeline_view(result: dict, spans: list[dict], data: bytes, name: str, key: str = "timeline") -> None:
    """A long recording: the classes window by window (click a column to hear it), and the spans as a table."""
    classes, ens, ot = result["classes"], np.asarray(result["ensemble"]), result["over_time"]
    st.markdown("**What happens when**: every class that is the top answer somewhere, window by window "
                f"({ot['clip_s']:g} s windows every 2.5 s; a dot on each window's top class; veiled: quiet background). "
                "Click a column to hear that window.")
    event = st.plotly_chart(plots.timeline_figure(ot["start_s"], ot["ensemble"], classes, ot["clip_s"],
                                                  quiet_windows(ot)),
                            key=key, on_select="rerun", selection_mode="points")
    # A click selects the dot of the window's column (trace 1, one point per window; see plots.timeline_figure).
    picked = [p["point_index"] for p in event.selection.points if p.get("curve_number") == 1]
    if picked and picked[0] < len(ot["start_s"]):  # (a selection left from another recording is ignored)
        i = picked[0]
        start, end = ot["start_s"][i], min(ot["start_s"][i] + ot["clip_s"], result["duration_s"])
        try:
            st.audio(excerpt(data, name, start, end), format="audio/wav", autoplay=True)
            top = int(np.argmax(ot["ensemble"][i]))
            st.caption(f"Window {i + 1}, from {start:.1f} to {end:.1f} s: top class {classes[top]} "
                       f"({ot['ensemble'][i][top]:.2f}).")
        except UserError as e:
            st.error(f"This part can't be played: {e}")
    rows = [{"from (s)": f"{sp['start_s']:.1f}", "to (s)": f"{sp['end_s']:.1f}",
             "answer": "quiet (background)" if sp["quiet"] else sp["class"] or "not sure",
             "highest probability": "—" if sp["quiet"] else f"{sp['probability']:.2f}"} for sp in spans]
    st.table(ui.as_table(rows))
    mean_best = int(ens.argmax())
    st.caption(f"Averaged over the loudest windows (within {LOUD_DB:g} dB of the loudest; the CLI's answer), the top "
               f"class is {classes[mean_best]} ({ens[mean_best]:.2f}). Windows over {QUIET_DB:g} dB below the loudest "
               "are background: the model scales each window to its own level, so its answer there says little.")


def clip_view(result: dict, threshold: float) -> None:
    """A clip: the top classes of each fold model and of the ensemble, and what "not sure" means for this run."""
    classes, ens = result["classes"], np.asarray(result["ensemble"])
    left, right = st.columns([3, 2])
    with left:
        st.markdown("**Top classes**: the ensemble in black, each fold model in colour")
        per_model = {**{k.replace("fold", "fold "): v for k, v in result["per_model"].items()}, "ensemble": ens}
        st.html(plots.proba_bars_html(per_model, classes, k=min(5, len(classes))))  # no plotly.js: see its docstring
    with right:
        st.markdown("**Top 3 per model**")
        # A static table: the interactive grid (st.dataframe) cost the browser about 1 s of CPU the first
        # time and 0.2 s after, for five rows (bench/load.py; five sessions' browsers share 2 cores there).
        st.table(ui.as_table([{"model": m, **{f"#{i + 1}": f"{c} ({p:.2f})"
                                              for i, (c, p) in enumerate(top_k(np.asarray(v), classes, 3))}}
                              for m, v in per_model.items()]).set_index("model"))
    target = ui.unsure_target(run)
    if threshold < 1.0:
        st.caption(f"\"Not sure\" below an ensemble probability of {threshold:.2f} (above it, this run's answers on "
                   f"its validation folds were right {target:.0%} of the time) or when most fold models disagree.")
    else:
        st.caption(f"This run is never sure: on its validation folds, no confidence level made its answers right "
                   f"{target:.0%} of the time.")


def answer_view(result: dict, data: bytes, name: str, player: bool, key: str = "timeline") -> None:
    """One recording's answer: the headline, then its timeline (a long recording) or its top classes."""
    label = ui.plain(name)  # the name as shown (and in messages): no Markdown of the uploader's
    threshold = ui.unsure_threshold(run)
    spans = timeline(result["over_time"], result["classes"], threshold) if "over_time" in result else None
    if player:  # a recording plays in its own recorder already
        st.audio(data, format=ui.audio_mime(name))
    headline(result, spans, threshold)
    st.caption(f"{label} · {result['duration_s']:.2f} s · run `{run.name}` ({ui.ensemble(run).arithmetic}) · the model knows "
               f"{len(result['classes'])} sounds: {', '.join(result['classes'])}")
    if spans is not None:
        timeline_view(result, spans, data, label, key)
    else:
        clip_view(result, threshold)


@st.fragment
def batch_view() -> None:
    """Several uploads: one row each (the CLI's --csv columns), the table as a CSV, and one file's details.
    Together they may hold what one upload may (RECORDING_LIMIT_S of audio), so a batch costs the shared
    server no more than one long recording."""
    uploads = st.file_uploader("Upload several recordings", type=ui.AUDIO_TYPES, key="predict_batch",
                               accept_multiple_files=True, help=f"Up to {MAX_FILES} at once.") or []
    if not uploads:
        return
    if len(uploads) > MAX_FILES:
        st.error(f"{len(uploads)} files: this page classifies up to {MAX_FILES} at a time. For a whole folder, the "
                 "command line: `python -m audioclf predict FOLDER --csv answers.csv`.")
        return
    threshold, left = ui.unsure_threshold(run), float(ui.RECORDING_LIMIT_S)
    budget = f"the {ui.RECORDING_LIMIT_S // 3600} hours of audio this page takes at once"
    rows, done = [], []
    for uploaded in uploads:
        name = getattr(uploaded, "name", "") or "recording.wav"  # as given: the table renders no Markdown
        try:
            if left <= 0:
                raise UserError(f"{name}: not classified: the files before it hold {budget}")
            data, _ = ui.upload_bytes(uploaded, shown=str)
            result = classify(str(run.path), run.weights_stamp(), data, name, left)  # its errors go in the table
        except TooLong as e:
            rows.append({"file": name, "error": str(e) if left == ui.RECORDING_LIMIT_S else
                         f"{name}: longer than the {left:.0f} s left of {budget}"})
            continue
        except UserError as e:  # one bad file is one row that says why, never the end of the batch
            rows.append({"file": name, "error": str(e)})
            continue
        left -= result["duration_s"]
        rows.append({"file": name, **answer_row(result, threshold)})
        done.append((name, data, result))
    table = ui.as_table(rows).reindex(columns=ANSWER_COLUMNS).fillna("")
    st.markdown(f"**{len(done)} of {len(rows)} files classified** (together up to {budget}; \"not sure\" as "
                "for one clip)")
    st.dataframe(table if table["error"].any() else table.drop(columns="error"), hide_index=True)
    st.download_button("Download the answers (CSV)", table.to_csv(index=False), file_name="answers.csv",
                       mime="text/csv", icon=":material/download:", key="predict_csv")
    if done:
        pick = st.selectbox("Details of", range(len(done)), format_func=lambda i: done[i][0], key="predict_pick")
        name, data, result = done[pick]
        answer_view(result, data, name, player=True, key="batch_timeline")


# An upload, a recording or a click on the timeline reruns only this part, not the page above it: with five
# sessions on 2 cores, answer p95 1.85-2.18 s against 2.40-3.20 s for the whole page (bench/load.py, three
# interleaved pairs; docs/reliability.md).
@st.fragment
def result_view() -> None:
    """The uploader and the recorder, and the answer for what they hold."""
    upload_col, record_col = st.columns(2)
    with upload_col:
        uploaded = st.file_uploader("Upload a clip", type=ui.AUDIO_TYPES, key="predict_upload")
    with record_col:
        recorded = st.audio_input("Or record one", key="predict_record")
    got = ui.read_upload(uploaded if uploaded is not None else recorded)
    if got is None:
        if uploaded is None and recorded is None:
            st.info("Upload or record a clip to classify it.")
        return
    data, name = got
    label = ui.plain(name)  # the name as shown (and in messages): no Markdown of the uploader's
    try:
        result = classify(str(run.path), run.weights_stamp(), data, label)
    except UserError as e:  # a file that can't be decoded, or a run whose weights can't be used
        st.error(f"This file can't be classified: {e}")
        return
    answer_view(result, data, name, player=uploaded is not None)


result_view()
# A toggle, not an expander: a collapsed expander still puts its uploader in every session's page. Neither
# slowed five sessions' answers measurably (bench/load.py, 4 interleaved pairs each against the page without it).
if st.toggle(f"Several recordings at once (up to {MAX_FILES}): a table of answers, as a CSV", key="predict_many"):
    batch_view()
