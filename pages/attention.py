"""Attention: where the transformer's CLS token listens in a clip, per block and head."""

import numpy as np
import streamlit as st
import torch

import ui
from audioclf import plots, runs
from audioclf.attention import attention_view, mean_view
from audioclf.audio import AudioError
from audioclf.errors import UserError
from audioclf.models import spec
from audioclf.store import Run

ui.page_guard()  # a page opened first on a fresh server runs without app.py

st.title("Attention")
st.markdown(
    "A transformer turns a clip into **tokens**, each a short stretch of the clip, plus a **CLS token** whose "
    "output is classified. Each of its blocks lets every token attend to every other, in 1, 2 or 4 **heads**. "
    "Below: how much the CLS token attends to each moment of the clip, then every block's full attention "
    "matrix per head, then the same clip under the 1-, 2- and 4-head models.")

HOW_TO_READ = ("**How to read this.** A line above 1 means the CLS token listens to that moment more than to an "
               "average one; peaks say where the model gathers its evidence.  \n")
# Measured with bench/attention_stats.py on the shipped runs and ESC-10's 80 test clips (docs/app.md), per family.
MEASURED = {
    "transformer": "**What we measured** on the shipped 1-, 2- and 4-head runs (ESC-10 test clips, last block, heads "
                   "averaged): attention is only mildly peaked (the busiest 10 % of the tokens get 16–24 % of it, the "
                   "top token 2–3× its even share) and the loudest 20 % of a clip gets 20–21 % of it, what chance "
                   "gives: it does not follow loudness.",
    "logmel-transformer": "**What we measured** on the shipped run (ESC-10 test clips, last block, heads averaged): "
                          "attention is sharply peaked (the busiest 10 % of the tokens get 82 % of it, the top token "
                          "21× its even share) and the loudest 20 % of a clip gets 52 % of it, 2.6× what chance "
                          "gives: it listens to the sound events, visible as bright stretches of the spectrogram.",
}

transformer_runs = runs.complete_first(runs.runs_with_weights(attention=True))
if not transformer_runs:
    ui.no_runs_message("The attention view needs a trained transformer run (the CNN has no attention)")
    st.stop()


@st.cache_data(max_entries=32, show_spinner="Running the model…")
def maps(run: str, fold: int, stamp: str, wave: np.ndarray) -> dict:
    r = Run(run)
    return attention_view(ui.fold_model(r, fold).model, torch.from_numpy(wave), r.config.prep)


ds, _ = ui.dataset_or_error()
# First offered: the best complete run (never the newest) on the sidebar's classes if there is one, else of all.
on_these = [r for r in transformer_runs if ds is not None and runs.class_set(r) == ds.name] or transformer_runs
c = st.columns([3, 2])
run = c[0].selectbox("Transformer run", transformer_runs, key="att_run",
                     format_func=lambda r: ui.run_label(r, short=True),  # a narrow box cuts a long line
                     index=transformer_runs.index(runs.best(on_these)))
cfg = run.config
folds = run.folds_with_weights()
st.caption(f"`{cfg.model}`: {spec(cfg.model).description}.")  # how its tokens are made (the registry's words)
ENSEMBLE = "ensemble"
fold = c[1].selectbox("Model", ([ENSEMBLE] if len(folds) > 1 else []) + folds, key="att_fold",
                      format_func=lambda f: f"fold ensemble (mean over the {len(folds)} fold models)" if f == ENSEMBLE
                      else f"fold {f} model (validated on fold {f})")

test_clips = runs.test_clips_of(run, ds) if ds is not None else []  # any release of the same clips will do
same_data = bool(test_clips)
sources = (["test"] if same_data else []) + ["upload"]
source = st.radio("Clip", sources, horizontal=True, key="att_source",
                  format_func={"test": f"a test clip (fold {cfg.test_fold}, never trained on)",
                               "upload": "upload a clip"}.get)
if not same_data:
    st.caption(f"Test clips need the data this run was trained on (`{cfg.dataset_id}`, or another copy of the same "
               "clips under the same names, such as ESC-50's copy of ESC-10's) chosen in the sidebar; you can upload a clip instead.")

true_class = None
if source == "test":
    i = st.selectbox("Test clip", range(len(test_clips)), key="att_clip",
                     format_func=lambda k: f"{test_clips[k].path.name} ({ds.classes[test_clips[k].label]})")
    clip = test_clips[i]
    try:
        view = ui.clip_view(str(clip.path), clip.path.stat().st_mtime_ns, cfg.prep)
    except AudioError as e:
        st.error(f"This clip can't be decoded: {e}")
        st.stop()
    wave, true_class = view["wave"], ds.classes[clip.label]
    st.audio(str(clip.path), format=ui.audio_mime(clip.path.name))
else:
    got = ui.read_upload(st.file_uploader("Upload a clip (wav, flac, mp3, m4a, ...)", type=ui.AUDIO_TYPES,
                                          key="att_upload"))
    if got is None:
        st.info("Upload a clip to see where the model listens.")
        st.stop()
    data, name = got
    try:
        upload = ui.upload_view(data, ui.plain(name), cfg.prep)  # what the model reads, as in training
    except AudioError as e:
        st.error(str(e))
        st.stop()
    wave = upload["wave"]
    st.audio(data, format=ui.audio_mime(name))
    if upload["recording"]:
        st.caption(f"This recording is longer than {upload['longer_than']:g} s: below are its loudest "
                   f"{cfg.prep.duration:g} s within its first minute, as training reads a clip. Predict judges a "
                   "recording window by window.")



def view(r: Run, which) -> dict:
    """One fold model's attention view of the clip, or the mean over the run's fold models."""
    if which == ENSEMBLE:
        return mean_view([maps(str(r.path), f, r.weights_stamp(), wave) for f in r.folds_with_weights()])
    return maps(str(r.path), which, r.weights_stamp(), wave)


try:
    out = view(run, fold)
    classes = ui.fold_model(run, folds[0]).classes
except UserError as e:
    st.error(f"This run's model can't be used: {e}")
    st.stop()
best = int(np.argmax(out["proba"]))
verdict = f"Predicted **{classes[best]}** ({out['proba'][best]:.2f})"
if true_class:
    verdict += f"; the clip is **{true_class}** " + ("✔" if true_class == classes[best] else "✖")
st.markdown(verdict)

st.info(HOW_TO_READ + MEASURED.get(cfg.model, "We have not measured this model family's attention yet "
                                          "(bench/attention_stats.py)."), icon=":material/lightbulb:")

st.subheader("The CLS token's attention over the clip")
st.caption("How much of the CLS token's attention goes to each moment of the clip, compared with attention "
           "spread evenly over the tokens (the dotted line at 1): at 2 a moment gets twice its even share, at "
           "0.5 half. One line per head of the last block; click a legend entry to add the first block's. "
           "An untrained model stays close to 1."
           + (" Under it, on the same time axis, the clip's log-mel spectrogram as this model's own front end "
              "computes it (frequency in Hz on the model's mel scale, dB below the clip's loudest point): its "
              f"tokens are these frames, {1000 * (out['times'][1] - out['times'][0]):.0f} ms each, so a peak can "
              "be read against the sound it falls on."
              if "spectrogram" in out else ""))
st.plotly_chart(plots.cls_attention_figure(wave, cfg.prep.sample_rate, out["times"], out["density"],
                                           out["uniform"], spectrogram=out.get("spectrogram")), key="cls_attention")

st.subheader("Attention matrices per block and head")
st.caption("Row: the token that attends (the query; CLS at the top); column: the token it attends to (the key), "
           "labelled with its time in the clip. Colour rises from dark (0) to yellow (the most weight).")
st.plotly_chart(plots.attention_heatmaps(out["attention"], out.get("token_times")), key="heatmaps")

st.subheader("The same clip under 1, 2 and 4 heads")
similar = [r for r in transformer_runs
           if r.config.model == cfg.model and r.config.dataset_id == cfg.dataset_id and r.config.prep == cfg.prep]
by_heads = {r.config.heads: r for r in runs.best_per_label(similar)}  # the best run per head count...
by_heads[cfg.heads] = run  # ...and the chosen one for its own
shown = [h for h in (1, 2, 4) if h in by_heads]
missing = [h for h in (1, 2, 4) if h not in by_heads]
if missing:
    st.caption(f"No trained {', '.join(map(str, missing))}-head transformer on this data yet: train one on "
               "the Train page to see it here.")
side = {}
for heads in shown:
    r = by_heads[heads]
    if fold == ENSEMBLE and len(r.folds_with_weights()) > 1:
        which = ENSEMBLE
    else:
        which = runs.fold_for(r, None if fold == ENSEMBLE else fold)
    side[heads] = (which, view(r, which))
y_max = 1.05 * max(float((o["density"][-1] / np.maximum(o["uniform"], 1e-12)).max()) for _, o in side.values()) \
    if side else None  # one attention axis for all panels
for col, heads in zip(st.columns(max(1, len(shown))), shown):
    which, o = side[heads]
    k = int(np.argmax(o["proba"]))
    with col:
        name = "fold ensemble" if which == ENSEMBLE else f"fold {which}"
        st.markdown(f"**{heads} head{'s' * (heads > 1)}** ({name}): {classes[k]} ({o['proba'][k]:.2f})")
        blocks = o["density"].shape[0]
        st.plotly_chart(plots.cls_attention_figure(wave, cfg.prep.sample_rate, o["times"], o["density"][-1:],
                                                   o["uniform"], first_block=blocks, height=400, y_max=y_max),
                        key=f"side-{heads}")
