"""Predict: classify an uploaded or recorded clip with each fold model and their ensemble."""
import numpy as np
import streamlit as st

import ui
from audioclf import plots
from audioclf.errors import UserError
from audioclf.inference import predict_file, top_k
from audioclf.store import Run

ui.page_guard()  # a page opened first on a fresh server runs without app.py

st.title("Predict")
st.markdown("Upload a recording (wav, flac, ogg or mp3; any sample rate, channel count or length, up to "
            f"{ui.UPLOAD_LIMIT_MB} MB) or record one. Every fold model of the chosen run classifies it, and so "
            "does their ensemble (the mean of their probabilities). A clip longer than 5 s is also classified "
            "5 s at a time. Your audio stays in memory; nothing is saved.")

choices = ui.predict_runs()  # the best complete run by validation accuracy first (cached until the store changes)
if not choices:
    ui.no_runs_message("Predicting needs a trained run")
    st.stop()
labels = dict(choices)
run = st.selectbox("Model run", list(labels), format_func=labels.get, key="predict_run",
                   help="The best fully trained run (by validation accuracy) first, then fully trained runs, "
                        "newest first. Each run holds one model per validation fold.")


@st.cache_data(max_entries=16, show_spinner="Classifying…")
def classify(run: str, stamp: str, data: bytes, name: str) -> dict:
    return predict_file(ui.ensemble(Run(run)), data, name=name)


upload_col, record_col = st.columns(2)
with upload_col:
    uploaded = st.file_uploader("Upload a clip", type=ui.AUDIO_TYPES, key="predict_upload")
with record_col:
    recorded = st.audio_input("Or record one", key="predict_record")
got = ui.read_upload(uploaded if uploaded is not None else recorded)
if got is None:
    if uploaded is None and recorded is None:
        st.info("Upload or record a clip to classify it.")
    st.stop()
data, name = got
try:
    result = classify(str(run.path), run.weights_stamp(), data, ui.plain(name))  # the name labels messages
except UserError as e:  # a file that can't be decoded, or a run whose weights can't be used
    st.error(f"This file can't be classified: {e}")
    st.stop()

classes = result["classes"]
ens = np.asarray(result["ensemble"])
best = int(ens.argmax())
st.audio(data, format=ui.audio_mime(name))
st.success(f"Predicted: **{classes[best]}** (ensemble probability {ens[best]:.2f})", icon=":material/hearing:")
st.caption(f"{ui.plain(name)} · {result['duration_s']:.2f} s · run `{run.name}`")

left, right = st.columns([3, 2])
with left:
    st.markdown("**Top classes**: the ensemble in black, each fold model in colour")
    per_model = {**{k.replace("fold", "fold "): v for k, v in result["per_model"].items()}, "ensemble": ens}
    st.plotly_chart(plots.proba_figure(per_model, classes, k=min(5, len(classes))), key="proba")
with right:
    st.markdown("**Top 3 per model**")
    # A static table: the interactive grid (st.dataframe) cost the browser about 1 s of CPU the first
    # time and 0.2 s after, for five rows (bench/load.py; five sessions' browsers share 2 cores there).
    st.table(ui.as_table([{"model": m, **{f"#{i + 1}": f"{c} ({p:.2f})"
                                          for i, (c, p) in enumerate(top_k(np.asarray(v), classes, 3))}}
                          for m, v in per_model.items()]).set_index("model"))

if "over_time" in result:
    st.markdown(f"**Over time**: the clip is {result['duration_s']:.1f} s long, so it was also classified 5 s at a "
                "time (every 2.5 s); its overall result above is the mean over these segments.")
    ot = result["over_time"]
    st.plotly_chart(plots.over_time_figure(ot["start_s"], ot["ensemble"], classes), key="over_time")
