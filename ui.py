"""Streamlit pieces shared by app.py and the pages: the dataset choice, cached loaders, empty states.

Layout and caching only; the work is done by `audioclf`.
"""
from __future__ import annotations

import contextlib
import math
import threading
from pathlib import Path
from typing import Iterator

import numpy as np
import streamlit as st

from audioclf import store
from audioclf.errors import UserError
from audioclf.store import Run
from audioclf.config import PrepConfig
from audioclf.audio import AUDIO_EXTENSIONS
from audioclf.data import (SUBSET_CLASSES, SUBSET_NAMES, DataError, Dataset, default_data_dir, open_dataset,
                           subsets_offered)
from audioclf.roots import data_roots, dataset_choices, resolve_under_roots

# The chosen dataset lives in plain session keys; the sidebar's widgets (keys with a "_input" suffix)
# are refilled from them on every run and copy back on change, so the choice survives page switches
# and can be changed from a page.
DATA_KEY = "data_dir"
SUBSET_KEY = "subset"
UPLOAD_LIMIT_MB = 50  # keep in step with server.maxUploadSize in .streamlit/config.toml
# The longest recording the Predict page classifies: 50 MB of a phone's AMR is 9 hours, minutes of one
# session's CPU; 2 h admits any wav under the size limit (8-bit 8 kHz: 109 min).
RECORDING_LIMIT_S = 2 * 3600
AUDIO_TYPES = [e.lstrip(".") for e in AUDIO_EXTENSIONS]


# --- start-up ----------------------------------------------------------------------------------------

_IMPORTS = threading.Lock()


def import_heavy_modules() -> None:
    """Import what the pages need once, one session at a time. Streamlit runs each session's script in
    its own thread; when the first sessions after a server start imported pandas (say) at the same
    time, one could see it half-initialised (`partially initialized module 'pandas'`)."""
    with _IMPORTS:
        import pandas  # noqa: F401
        import plotly.graph_objects  # noqa: F401
        import av  # noqa: F401  (decodes phones' m4a, amr, webm)
        import torch  # noqa: F401  (scikit-learn, 1.3 s more, only evaluation needs: the training process)

        import audioclf.attention  # noqa: F401
        import audioclf.inference  # noqa: F401
        import audioclf.jobs  # noqa: F401
        import audioclf.plots  # noqa: F401
        import audioclf.runs  # noqa: F401

        global _TUNED
        if not _TUNED:
            _TUNED = True
            _tune_server(torch)


def import_locked(module: str):
    """Import a module only one page needs (Listen's streamlit_webrtc) under the same lock, on first use."""
    import importlib

    with _IMPORTS:
        return importlib.import_module(module)


_LOCAL = threading.local()  # per script-run thread: whether app.py is running this page


@contextlib.contextmanager
def pages_of_the_app() -> Iterator[None]:
    """app.py runs the chosen page inside this, so that the page knows it was set up."""
    _LOCAL.in_app = True
    try:
        yield
    finally:
        _LOCAL.in_app = False


def page_guard() -> None:
    """Route a page that runs without app.py back through it. Streamlit (1.67) treats a folder named
    pages/ as old-style pages until some session has called st.navigation, so a page's URL opened
    first on a fresh server runs the page script alone, and the whole server then stays in that mode
    (file names as the menu, no app.py for any session). On a session's first run (a page load: no
    click to lose), turn the mode off as st.navigation would and run again: app.py then runs and picks
    the same page (its URL is the same). Otherwise (AppTest turns the mode back on for every run, or a
    page runs on its own) set up what app.py would."""
    if getattr(_LOCAL, "in_app", False):
        return
    from streamlit.runtime.pages_manager import PagesManager

    if getattr(PagesManager, "uses_pages_directory", False) and not st.session_state:
        PagesManager.uses_pages_directory = False
        st.rerun()
    import_heavy_modules()
    init_state()
    sidebar()


_TUNED = False
THREADS_ENV = "AUDIOCLF_SERVER_THREADS"


def _tune_server(torch) -> None:
    """Once per server process, after the heavy imports (bench/load.py measured each):

    - torch computes with one thread per script run (`$AUDIOCLF_SERVER_THREADS` to change it). With its
      default of one thread per core, a prediction's threads spin waiting for each other whenever another
      process (a training job) or another session holds a core: 0.15-2 s per 5 s clip instead of
      0.04-0.09 s on one thread on this 2-core machine. Sessions classify in parallel anyway, each in its
      own script thread.
    - The objects that exist now (modules, torch, pandas, plotly: about 300 k of them; a full collection of them took 0.3-0.6 s here) are moved out of the
      garbage collector's sight (gc.freeze), so that a full collection, which holds the GIL and so stalls
      every session, walks only what the script runs create.
    """
    import gc
    import os

    try:
        torch.set_num_threads(max(1, int(os.environ.get(THREADS_ENV, "1"))))
    except ValueError:
        torch.set_num_threads(1)
    gc.collect()
    gc.freeze()


# --- dataset choice --------------------------------------------------------------------------------

def init_state() -> None:
    ss = st.session_state
    if DATA_KEY not in ss:
        default = default_data_dir()
        if default is None:  # no ./data/esc50: open on a dataset a user put in a data folder (./data/mysounds)
            default = next(iter(dataset_choices()), None)
        try:
            ss[DATA_KEY] = str(resolve_under_roots(default.absolute())) if default else ""  # (relative to here)
        except DataError:  # kept as given (a link, say), so that the refusal on every page can say what it is
            ss[DATA_KEY] = str(default.absolute())
    ss.setdefault(SUBSET_KEY, "esc10")


def use_dataset(path: str | Path) -> None:
    """Switch the app to another dataset folder (from a page) and rerun."""
    st.session_state[DATA_KEY] = str(path)
    st.rerun()


def _copy_back(key: str) -> None:
    st.session_state[key] = st.session_state[f"{key}_input"]


@st.cache_data(show_spinner="Reading the dataset…", ttl=300, max_entries=8)
def load_dataset(path: str, subset: str) -> Dataset:
    return open_dataset(path, subset)


def dataset_or_error() -> tuple[Dataset | None, str | None]:
    """The chosen dataset, or None and what is wrong with the chosen folder (None if none is chosen)."""
    raw = str(st.session_state.get(DATA_KEY, "")).strip()
    if not raw:
        return None, None
    try:
        return load_dataset(str(resolve_under_roots(raw)), st.session_state.get(SUBSET_KEY, "esc10")), None
    except DataError as e:
        return None, str(e)
    except OSError as e:
        return None, f"{raw}: {e.strerror or e}"


@st.cache_data(show_spinner=False, ttl=300, max_entries=8)
def offered_subsets(raw: str) -> tuple[str, ...]:
    """The subsets the chosen folder tells apart (none for class folders or a folder that can't be used)."""
    try:
        return subsets_offered(resolve_under_roots(raw)) if raw.strip() else ()
    except (DataError, OSError):
        return ()


def require_dataset() -> Dataset:
    """The chosen dataset; otherwise explain what to do and stop the page."""
    ds, err = dataset_or_error()
    if ds is not None:
        return ds
    if err:
        st.error(f"The dataset folder can't be used: {err}")
    else:
        st.info("No dataset is chosen yet. This page needs one.")
    st.markdown("Choose a dataset folder in the sidebar, or go to **Overview** to download ESC-50.")
    st.page_link("pages/overview.py", label="Go to Overview", icon=":material/home:")
    st.stop()


@st.cache_resource(show_spinner=False)
def device_name() -> str:
    from audioclf.device import describe, pick_device

    return describe(pick_device())


@st.cache_resource(show_spinner=False)
def precision_name() -> str:
    from audioclf.device import arithmetic, pick_device

    return arithmetic(pick_device())


@st.cache_resource(show_spinner=False)
def device() -> str:
    from audioclf.device import pick_device

    return str(pick_device())


def sidebar() -> None:
    with st.sidebar:
        ss = st.session_state
        choices = ["", *(str(p) for p in dataset_choices())]  # "": none
        if ss[DATA_KEY] not in choices:
            choices.insert(1, ss[DATA_KEY])  # chosen on Overview (deeper inside a root) or from $AUDIOCLF_DATA
        ss[f"{DATA_KEY}_input"] = ss[DATA_KEY]
        st.selectbox("Dataset folder", choices, key=f"{DATA_KEY}_input", on_change=_copy_back, args=(DATA_KEY,),
                     format_func=lambda p: p or "(none)",
                     help="The ESC-50 folders (audio/ and meta/esc50.csv) and folders with one sub-folder of audio "
                          "files per class found in the server's data folders: "
                          + ", ".join(f"`{r}`" for r in data_roots()))
        offered = offered_subsets(ss[DATA_KEY])
        if offered and ss[SUBSET_KEY] not in offered:  # ESC-10's own folder has no ESC-50 beyond its ten classes
            ss[SUBSET_KEY] = offered[0]
        if len(offered) > 1:
            ss[f"{SUBSET_KEY}_input"] = ss[SUBSET_KEY]
            st.radio("Subset", list(SUBSET_CLASSES), key=f"{SUBSET_KEY}_input", horizontal=True,
                     on_change=_copy_back, args=(SUBSET_KEY,),
                     format_func=lambda s: f"{SUBSET_NAMES[s]} ({SUBSET_CLASSES[s]} classes)")
        ds, err = dataset_or_error()
        if ds is not None:
            st.success(f"**{ds.name}**: {len(ds)} clips, {len(ds.classes)} classes, "
                       f"folds {', '.join(map(str, ds.folds))}", icon=":material/library_music:")
            if ds.warnings:
                st.caption(f":material/warning: {len(ds.warnings)} note(s) on this data: see Overview")
        elif err:
            st.error(err, icon=":material/error:")
        else:
            st.warning("No dataset chosen: see Overview.", icon=":material/folder_off:")
        st.markdown(f"**Device:** {device_name()}, {precision_name()}",
                    help="What the recipe's models compute in on this machine: bfloat16 where the device has it "
                         "natively, float32 elsewhere (faster there than emulating bfloat16); where that is a "
                         "CPU, they predict with int8 convolutions, about twice as fast (the Predict page says "
                         "which a run used).")
        st.caption(f"Trained runs are kept in `{store.checkpoints_dir().resolve()}`")


# --- runs and models -------------------------------------------------------------------------------

@st.cache_resource(max_entries=8, show_spinner="Loading the fold models…")
def _ensemble(run: str, stamp: str, device: str):
    from audioclf.inference import load_ensemble

    return load_ensemble(Path(run), device=device)  # eval mode, never mutated


def ensemble(run: Run):
    """The run's fold models, loaded once per change of its weights (CheckpointError names a bad file)."""
    return _ensemble(str(run.path), run.weights_stamp(), device())


@st.cache_resource(max_entries=16, show_spinner="Loading the model…")
def _fold_model(run: str, fold: int, stamp: str, device: str):
    return Run(run).fold_model(fold, "best", device)  # eval mode, never mutated


def fold_model(run: Run, fold: int):
    """A fold's model and its metadata (`store.FoldModel`), cached until its weights change."""
    return _fold_model(str(run.path), fold, run.weights_stamp(), device())


@st.cache_data(max_entries=4, show_spinner=False)
def _predict_runs(root: str, stamp: tuple, data: str | None) -> list[tuple[Run, str]]:
    from audioclf.runs import predict_choices

    return [(r, run_label(r)) for r in predict_choices(Path(root), data)]


def predict_runs() -> list[tuple[Run, str]]:
    """The Predict page's runs (`runs.predict_choices`) with their labels, the best for the sidebar's
    dataset first, read again only when the store changes (`store.store_stamp`): reading every run's
    config.json and results.json on every rerun of every session cost 30-40 ms of CPU per rerun under
    load (bench/load.py)."""
    root = store.checkpoints_dir()
    ds, _ = dataset_or_error()
    return _predict_runs(str(root.resolve()), store.store_stamp(root), ds.name if ds is not None else None)


def run_choice_key(page: str) -> str:
    """The session key of a page's run selector: one per sidebar dataset, so that choosing another dataset offers
    its default run (ESC-50's, not ESC-10's) instead of keeping the run chosen for the one before, which each
    dataset keeps."""
    ss = st.session_state
    return f"{page}_run:{ss.get(DATA_KEY, '')}:{ss.get(SUBSET_KEY, 'esc10')}"


@st.cache_data(max_entries=4, show_spinner=False)
def _teach_sources(root: str, stamp: tuple) -> dict[str, Run]:
    from audioclf.teach import CLASS_SETS, source_run

    found = {}
    for class_set in CLASS_SETS[::-1]:  # esc50 first: it has heard five times as many kinds of sound
        try:
            found[class_set] = source_run(class_set, Path(root))
        except UserError:
            pass
    return found


def teach_sources() -> dict[str, Run]:
    """The runs a new model can start from (`teach.source_run`: the best log-mel run of each class set,
    yours or shipped), ESC-50's first; read again only when the store changes."""
    root = store.checkpoints_dir()
    return _teach_sources(str(root.resolve()), store.store_stamp(root))


def unsure_threshold(run: Run) -> float:
    """The run's "not sure" threshold (results.json, chosen on its validation folds); 0 (always sure)
    for a run evaluated before it existed."""
    return float(((run.results() or {}).get("unsure") or {}).get("threshold", 0.0))


def unsure_target(run: Run) -> float:
    """How often the run's answers above its threshold were right on its validation folds."""
    return float(((run.results() or {}).get("unsure") or {}).get("target", 0.9))


def run_label(run: Run, short: bool = False) -> str:
    """A run's line for a selector (`runs.describe`; `runs.short_label` where the box is narrow), or its
    folder name when its files can't be read."""
    from audioclf.runs import describe, short_label

    try:
        return short_label(run) if short else describe(run)
    except (UserError, OSError):
        return run.name


def no_runs_message(what: str = "This page needs a trained run") -> None:
    st.info(f"{what}, and there is none in `{store.checkpoints_dir().resolve()}` yet. "
            "Train one on the **Train** page (a couple of epochs is enough to try the app).")
    st.page_link("pages/train.py", label="Go to Train", icon=":material/model_training:")


def describe_progress(job) -> tuple[float, str]:
    """A progress-bar fraction and a line of text such as 'fold 3 (2 of 4) · epoch 40/100 · 12 min left'."""
    p = job.progress
    if job.status == "done":
        return 1.0, "done"
    if job.status == "starting":  # decoding the data: the fraction of clips done, when the CLI reports it
        done, total = p.get("clips_done"), p.get("clips_total")
        return (min(done / total, 1.0) if done is not None and total else 0.0), job.message
    fraction = float(p.get("fraction") or 0.0)
    parts = []
    folds = p.get("folds") or list(job.config.cv_folds)
    if p.get("fold") is not None and p["fold"] in folds:
        parts.append(f"fold {p['fold']} ({folds.index(p['fold']) + 1} of {len(folds)})")
    if p.get("epochs"):
        done, of = p.get("batch") or (0, 0)
        if of and job.status == "running":  # within an epoch: the one under way, batch by batch
            parts.append(f"epoch {p.get('epoch', 0) + 1}/{p['epochs']}, batch {done} of {of}")
        else:
            parts.append(f"epoch {p.get('epoch', 0)}/{p['epochs']}")
    if job.status == "running" and p.get("eta_s") is not None:
        parts.append(f"{format_seconds(p['eta_s'])} left")
    elif job.status != "running" and not (job.message or "").startswith(job.status):
        parts.append(job.status)  # (not when the message says it already: "cancelled: ...")
    if job.message and job.status != "running":
        parts.append(job.message)
    elif p.get("message"):
        parts.append(p["message"])
    return min(max(fraction, 0.0), 1.0), " · ".join(parts)


def job_folds(job) -> list[int]:
    """The validation folds this job trains: from its progress file, else its command line (`--folds`),
    else all of its config's cross-validation folds."""
    folds = job.progress.get("folds")
    if not folds:
        argv = list(job.record.get("argv") or [])
        if "--folds" in argv:
            rest = argv[argv.index("--folds") + 1:]
            folds = [int(a) for a in rest[:next((i for i, a in enumerate(rest) if not a.isdigit()), len(rest))]]
    return list(folds or job.config.cv_folds)


def job_folds_text(job) -> str:
    """'fold 2 · 0 of 1 done' or 'folds 2, 3, 4, 5 · 3 of 4 done': the folds this job trains."""
    folds = job_folds(job)
    done = len(set(job.run.folds_done()) & set(folds))
    return f"fold{'s' * (len(folds) != 1)} {', '.join(map(str, folds))} · {done} of {len(folds)} done"


# --- widget values kept in the page address (so that a reload keeps them) -------------------------------

def remembered(key: str, choices=None, default=None):
    """The value of widget `key` stored in the page address by `remember`: one of `choices` (matched by
    its text), or `default` when absent or no longer valid."""
    raw = st.query_params.get(key)
    if raw is None:
        return default
    if choices is None:
        return raw
    return next((c for c in choices if str(c) == raw), default)


def remembered_int(key: str, low: int, high: int, default: int) -> int:
    raw = st.query_params.get(key, "")
    return int(raw) if raw.isdigit() and low <= int(raw) <= high else default


def remembered_list(key: str, choices: list, default: list) -> list:
    raw = st.query_params.get(key)
    if raw is None:
        return default
    wanted = raw.split(",")
    return [c for c in choices if str(c) in wanted]


def remember(key: str) -> None:
    """on_change of widget `key`: store its value in the page address (st.query_params)."""
    value = st.session_state[key]
    st.query_params[key] = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def format_seconds(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s" if seconds < 600 else f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


# --- clips -----------------------------------------------------------------------------------------

@st.cache_data(max_entries=64, show_spinner=False)
def clip_view(path: str, mtime: int, prep: PrepConfig = PrepConfig()) -> dict:
    """A dataset clip as the models see it (mono, resampled, cut or filled as in training) and its log-mel spectrogram."""
    from audioclf.audio import load_audio
    from audioclf.features import log_mel, waveform

    data, sr = load_audio(path)
    wave = waveform(data, sr, prep).numpy()
    return {"wave": wave, "sr": prep.sample_rate, "orig_sr": sr, "channels": data.shape[0],
            "seconds": data.shape[1] / sr, "mel": log_mel(wave, prep.sample_rate)}


@st.cache_data(max_entries=8, show_spinner=False)
def upload_view(data: bytes, name: str, prep: PrepConfig = PrepConfig()) -> dict:
    """An uploaded clip as the models see it: one clip length read as training reads a clip
    (`features.read_length`: a recording over 1.5 clip lengths at its loudest window within its first
    minute). Cached on the bytes: a rerun of the page does not decode up to a minute of audio again.
    AudioError names the file as `name` gives it."""
    from audioclf.audio import load_audio
    from audioclf.features import LONG_ABOVE, waveform
    from audioclf.prepare import READ_SECONDS

    arr, sr = load_audio(data, name=name, first_seconds=READ_SECONDS)
    return {"wave": waveform(arr, sr, prep).numpy(), "longer_than": LONG_ABOVE * prep.duration,
            "recording": arr.shape[1] > LONG_ABOVE * sr * prep.duration}


def plain(text: str) -> str:
    """`text` (e.g. an uploaded file's name) as a Markdown code span, so none of it renders: no link,
    image, emphasis, emoji or LaTeX. Backticks and control characters become harmless stand-ins."""
    text = "".join(" " if ord(ch) < 32 or ch == "\x7f" else ch for ch in str(text)).replace("`", "'")
    return f"`{text}`"


def size_text(n_bytes: int, limit_mb: int = UPLOAD_LIMIT_MB) -> str:
    """A file size in MB (2**20 bytes) that never reads as equal to a limit it is over."""
    text = f"{n_bytes / 2**20:.1f} MB"
    if n_bytes > limit_mb * 2**20 and float(text.split()[0]) <= limit_mb:
        text = f"{n_bytes:,} bytes ({limit_mb} MB is {limit_mb * 2**20:,} bytes)"
    return text


def read_upload(uploaded) -> tuple[bytes, str] | None:
    """The bytes and name of an uploaded or recorded clip, or None (with a message) if it is unusable.

    The name is the browser's: show it with `plain(name)`."""
    if uploaded is None:
        return None
    try:
        return upload_bytes(uploaded)
    except UserError as e:
        st.error(str(e))
        return None


def upload_bytes(uploaded, shown=plain) -> tuple[bytes, str]:
    """`read_upload` without the message box: UserError says what is wrong, naming the file as `shown` gives
    it (`plain` for Markdown; `str` for a table that renders none)."""
    name = getattr(uploaded, "name", "") or "recording.wav"
    size = getattr(uploaded, "size", None)
    if size is not None and size > UPLOAD_LIMIT_MB * 2**20:
        raise UserError(f"{shown(name)}: the file is {size_text(size)}; the limit is {UPLOAD_LIMIT_MB} MB.")
    data = uploaded.getvalue()
    if not data:
        raise UserError(f"{shown(name)}: the file is empty (0 bytes).")
    return data, name


def audio_mime(name: str) -> str:
    ext = Path(name).suffix.lower().lstrip(".")
    return {"mp3": "audio/mpeg", "ogg": "audio/ogg", "oga": "audio/ogg", "opus": "audio/ogg", "flac": "audio/flac",
            "m4a": "audio/mp4", "mp4": "audio/mp4", "aac": "audio/aac", "3gp": "audio/3gpp", "amr": "audio/amr",
            "webm": "audio/webm", "aif": "audio/aiff", "aiff": "audio/aiff", "wma": "audio/x-ms-wma"}.get(ext, "audio/wav")


def as_table(rows: list[dict]):
    import pandas as pd

    return pd.DataFrame(rows)


FOLD_COLUMNS = {"fold": "val fold", "epoch": "best epoch", "train_loss": "train loss", "train_acc": "train acc",
                "val_acc": "val acc", "test_acc": "test acc", "test_macro_f1": "test macro F1"}


def styled(rows: list[dict], names: dict[str, str] | None = None, digits: int = 3):
    """A table for display: columns renamed, floats to `digits` places, whole numbers as such, missing
    values blank. st.dataframe draws a missing number as a grey "None" (and pandas turns a column of
    whole numbers with a gap into floats), so a column with a gap is shown as text."""
    def missing(v) -> bool:
        return v is None or (isinstance(v, float) and math.isnan(v))

    gappy = {k for r in rows for k in r if any(missing(other.get(k)) for other in rows)}

    def shown(k: str, v):
        if k not in gappy:
            return v
        return "" if missing(v) else f"{v:.{digits}f}" if isinstance(v, float) else str(v)

    df = as_table([{k: shown(k, v) for k, v in r.items()} for r in rows])
    df = df.rename(columns=names) if names else df
    floats = [c for c in df.columns if df[c].map(lambda v: isinstance(v, float)).any()]
    return df.style.format(f"{{:.{digits}f}}", subset=floats)


def table_height(rows: int, most: int = 12) -> int | str:
    """A st.dataframe height that shows up to `most` rows and scrolls beyond, its header kept in view."""
    return "auto" if rows <= most else 35 * (most + 1) + 3


def fmt_float(x, digits: int = 3) -> str:
    return "" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{digits}f}"
