"""Overview: the dataset, the models, the trained runs; getting a dataset when there is none."""
import streamlit as st

import ui
from audioclf import jobs, plots, runs, store
from audioclf.config import TrainConfig
from audioclf.data import SUBSET_NAMES, DataError, open_dataset
from audioclf.roots import ROOTS_ENV, data_roots, resolve_under_roots

ui.page_guard()  # a page opened first on a fresh server runs without app.py

TEST_FOLD = TrainConfig().test_fold  # the default config's; each run records its own

st.title("audioclf: environmental sound classification")
st.markdown(
    "Classify everyday sounds (a dog barking, rain, a chainsaw, a clock ticking...) in your own recordings, and "
    "train, compare and look inside the small neural networks that do it. Each model is trained with "
    f"cross-validation: **fold {TEST_FOLD}** is held out as the test set, and each of the other folds serves once "
    "as the validation set, so every configuration gives one model per validation fold plus their **ensemble**.")


def default_model_line(data: str) -> str | None:
    """Which model Predict answers with for `data`'s classes, and how often it is right on its test fold."""
    try:
        run = runs.default_run(data=data)
    except FileNotFoundError:
        return None
    res = run.results() or {}
    acc = res.get("ensemble", {}).get("accuracy")
    where = "out of fold" if runs.cross_validated(res) else f"on test fold {res.get('test_fold', TEST_FOLD)}"
    right = f": its fold models together are right on **{acc:.1%}** of the clips {where}" if acc is not None else ""
    shown = SUBSET_NAMES.get(data, data)
    return (f"**Predict** answers {shown}'s classes with the best trained model, `{run.config.label}` "
            f"(`{run.name}`, chosen by validation accuracy){right}.")


steps = st.columns(4) + st.columns(4)
for col, (page, label, icon, text) in zip(steps, [
        ("pages/predict.py", "Predict", ":material/hearing:", "classify a recording you upload or record"),
        ("pages/listen.py", "Listen", ":material/mic:", "classify the microphone, live"),
        ("pages/teach.py", "Teach", ":material/school:", "a model for your own sounds, from a few clips each"),
        ("pages/compare.py", "Compare", ":material/compare_arrows:", "accuracy tables, curves, confusion, ROC"),
        ("pages/attention.py", "Attention", ":material/visibility:", "where the transformer listens"),
        ("pages/train.py", "Train", ":material/model_training:", "train a model in the background"),
        ("pages/clips.py", "Clips", ":material/library_music:", "listen to the data and see what the models see")]):
    with col:
        st.page_link(page, label=label, icon=icon)
        st.caption(text)


@st.cache_data(show_spinner="Counting model parameters…")
def model_rows(n_classes: int) -> list[dict]:
    return runs.model_catalogue(n_classes)


def download_form() -> None:
    from audioclf.download import MIRROR_ENV, DownloadError, download_esc50, esc50_url

    dest, url = data_roots()[0], esc50_url()
    st.markdown("**Download ESC-50** (2,000 five-second clips, 50 classes, about 600 MB; ESC-10 is a 400-clip "
                f"subset of it) from `{url}` into `{dest / 'esc50'}`; nothing appears there until the download "
                "is complete.")
    st.caption(f"The address and the folder are the server's settings (${MIRROR_ENV} names a mirror, "
               f"${ROOTS_ENV} the data folders).")
    if st.button("Download ESC-50", icon=":material/download:", key="download"):
        bar = st.progress(0.0, text="Connecting…")

        def progress(done: int, total: int | None) -> None:
            if total:
                bar.progress(min(done / total, 1.0), text=f"{done / 2**20:.0f} of {total / 2**20:.0f} MB")
            else:
                bar.progress(0.0, text=f"{done / 2**20:.0f} MB downloaded")

        try:
            path = download_esc50(dest, url=url, progress=progress, show_bar=False)
        except (DownloadError, OSError) as e:
            bar.empty()
            st.error(f"The download failed: {e}")
        else:
            bar.progress(1.0, text="Done")
            ui.use_dataset(path)


def folder_form() -> None:
    st.markdown("**Or use a folder you already have**: an ESC-50 folder (with `audio/` and `meta/esc50.csv`), "
                "or your own sounds with one sub-folder per class (`dogs/*.wav`, `rain/*.wav`, ...); folds are "
                "then assigned once and recorded in the folder.")
    roots = data_roots()
    path = st.text_input("Dataset folder", key="overview_folder", placeholder=str(roots[0] / "mydata"),
                         help=f"A folder inside {', '.join(str(r) for r in roots)}; a relative name is taken "
                              f"inside {roots[0]}.")
    st.caption("Allowed data folders on the server: " + ", ".join(f"`{r}`" for r in roots))
    if st.button("Use this folder", key="use_folder") and path.strip():
        try:
            folder = resolve_under_roots(path.strip(), roots)
            open_dataset(folder)
        except (DataError, OSError) as e:
            st.error(f"That folder can't be used: {e}")
        else:
            ui.use_dataset(folder)


st.header("Dataset")
ds, err = ui.dataset_or_error()
if ds is None:
    if err:
        st.error(f"The dataset folder in the sidebar can't be used: {err}")
    else:
        st.warning("No dataset yet. Get one of these to start:")
    left, right = st.columns(2)
    with left:
        download_form()
    with right:
        folder_form()
else:
    line = default_model_line(ds.name)
    if line:
        st.success(line, icon=":material/verified:")
    c = st.columns(4)
    c[0].metric("clips", len(ds))
    c[1].metric("classes", len(ds.classes))
    c[2].metric("folds", len(ds.folds))
    c[3].metric("test fold", TEST_FOLD)
    st.caption(f"`{ds.root}` · data fingerprint `{ds.fingerprint()}`")
    for warning in ds.warnings:
        st.warning(warning, icon=":material/warning:")
    counts = runs.class_fold_counts(ds)
    left, right = st.columns([3, 2])
    with left:
        st.plotly_chart(plots.class_fold_figure(counts), key="class_folds")
    with right:
        table = ui.as_table([{"class": k, "total": sum(v.values()), **{f"fold {f}": v.get(f, 0) for f in ds.folds}}
                             for k, v in counts.items()])
        st.dataframe(table, hide_index=True, column_config={  # narrow counts, the total first: it stays in view
            c: st.column_config.NumberColumn(width="small") for c in table.columns if c != "class"})

st.header("Models")
st.markdown("The recipe's models (`logmel-…`) compute a log-mel spectrogram inside the model, so a checkpoint "
            "carries its front end; the course report's (`cnn`, `transformer-…`) read the raw 16 kHz waveform: 5 s "
            "cut into **9 one-second windows** with 50 % overlap, stacked end to end. A transformer's parameter "
            "count is the same for 1, 2 and 4 heads (the heads split the same width).")
# A static table: its descriptions wrap (the grid cut them short), and no model name or number needs sorting.
st.table(ui.as_table(model_rows(len(ds.classes) if ds else 10)).set_index("model")
         .style.format({"trainable parameters": "{:,}", "default lr": "{:g}"}))

st.header("Trained runs")
all_jobs = jobs.list_jobs()
if not all_jobs:
    ui.no_runs_message("Nothing is trained yet")
else:
    st.dataframe(ui.as_table([runs.run_row(j.run, j.status) for j in all_jobs]), hide_index=True,
                 column_config={"lr": st.column_config.NumberColumn(format="%g")})
    st.caption(f"{len(all_jobs)} run(s) in `{store.checkpoints_dir().resolve()}`. Start or follow training "
               "on **Train**; compare the results on **Compare**.")
