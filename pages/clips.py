"""Clips: browse the dataset by class and fold, listen, and see the windows the models read."""
import math

import streamlit as st

import ui
from audioclf import plots
from audioclf.audio import AudioError
from audioclf.config import PrepConfig
from audioclf.features import log_mel_hz

ui.page_guard()  # a page opened first on a fresh server runs without app.py

PER_PAGE = 8
PREP = PrepConfig()


def clip_name(clip, base) -> str:
    """The clip's path inside the dataset (unique, unlike the file name in a folder-per-class dataset)."""
    try:
        return str(clip.path.relative_to(base))
    except ValueError:
        return str(clip.path)


st.title("Clips")
ds = ui.require_dataset()
st.markdown("Filter the dataset, play clips, and pick one to see its waveform and spectrogram. "
            f"Fold 1 is the test set; folds {', '.join(map(str, ds.folds[1:]))} take turns as validation.")

left, right = st.columns([3, 2])
classes = left.multiselect("Classes", ds.classes, placeholder="all classes", key="clip_classes")
folds = right.multiselect("Folds", ds.folds, placeholder="all folds", key="clip_folds")
wanted_classes = {ds.classes.index(c) for c in classes} or set(range(len(ds.classes)))
wanted_folds = set(folds) or set(ds.folds)
clips = [c for c in ds.clips if c.label in wanted_classes and c.fold in wanted_folds]
if not clips:
    st.warning("No clip matches these filters.")
    st.stop()

pages = math.ceil(len(clips) / PER_PAGE)
top = st.columns([1, 4])
page = top[0].number_input(f"Page (of {pages})", 1, pages, 1, key="clip_page")
top[1].caption(f"{len(clips)} clips match")
for clip in clips[(page - 1) * PER_PAGE: page * PER_PAGE]:
    name_col, class_col, audio_col = st.columns([3, 2, 5], vertical_alignment="center")
    name_col.markdown(f"`{clip.path.name}`")
    class_col.markdown(f"**{ds.classes[clip.label]}** · fold {clip.fold}")
    audio_col.audio(str(clip.path), format=ui.audio_mime(clip.path.name))

st.divider()
st.subheader("Look inside a clip")
base = ds.root / "audio" if (ds.root / "audio").is_dir() else ds.root
by_name = {clip_name(c, base): c for c in clips}  # the option is the clip itself: a filter change can't re-point it
choice = st.selectbox("Clip", list(by_name), key="clip_choice",
                      format_func=lambda n: f"{n}  ({ds.classes[by_name[n].label]}, fold {by_name[n].fold})")
clip = by_name[choice]
try:
    view = ui.clip_view(str(clip.path), clip.path.stat().st_mtime_ns, PREP)
except AudioError as e:
    st.error(f"This clip can't be decoded: {e}")
    st.stop()
st.audio(str(clip.path), format=ui.audio_mime(clip.path.name))
st.caption(f"{ui.plain(choice)} · {ds.classes[clip.label]} · fold {clip.fold} · "
           f"originally {view['seconds']:.2f} s at "
           f"{view['orig_sr']} Hz, {view['channels']} channel(s); shown as the models get it: mono, "
           f"{PREP.sample_rate} Hz, cut or zero-padded to {PREP.duration:g} s.")
st.markdown(f"**Waveform and the {PREP.num_windows} windows the models see.** Each window is "
            f"{PREP.window / PREP.sample_rate:g} s long and starts {PREP.hop / PREP.sample_rate:g} s after the "
            "previous one, so neighbours overlap by half; the model reads them one after another "
            f"({PREP.num_windows} × {PREP.window} = {PREP.input_length} samples).")
st.plotly_chart(plots.waveform_figure(view["wave"], view["sr"], PREP), key="clip_wave")
st.markdown("**Log-mel spectrogram**: what the recipe's models (`logmel-cnn`, `logmel-transformer`) read, through "
            "their own front end (drawn here from 0 Hz and with finer frames); "
            "the report's models (`cnn`, `transformer`) read the waveform above.")
st.plotly_chart(plots.spectrogram_figure(view["mel"], view["sr"], log_mel_hz(view["sr"], len(view["mel"]))),
                key="clip_mel")
