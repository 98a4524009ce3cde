"""Train: start training in a background process, follow every job live, cancel or resume it."""
import streamlit as st
import torch

import ui
from audioclf import jobs, plots, runs, teach
from audioclf.config import REPORT_TRAINING, TrainConfig
from audioclf.data import SUBSET_NAMES
from audioclf.errors import UserError
from audioclf.models import MODELS

ui.page_guard()  # a page opened first on a fresh server runs without app.py

LR_CHOICES = [0.1, 0.03, 0.01, 0.003, 0.001, 0.0003, 0.0001]
STATUS = {"starting": ":blue[● starting]", "running": ":blue[● running]", "done": ":green[✔ done]",
          "failed": ":red[✖ failed]", "cancelled": ":orange[■ cancelled]", "stopped": ":orange[■ stopped]"}
FOCUS_KEY = "train_focus"
NOTICE_KEY = "train_notice"

st.title("Train")
st.markdown(
    "Training runs in a **background process**: it keeps going if you switch pages, reload or close the tab, "
    "and every open tab shows it. Fold 1 is the test set; one model is trained per validation fold. "
    "Finished epochs and folds are saved as they complete, so a cancelled run resumes where it stopped, "
    "and a configuration that is already trained is loaded instead of trained again.")

ds, err = ui.dataset_or_error()
# The form starts on the recipe (the shipped default models are trained with it); the report's models are a choice.
DEFAULT_MODEL = "logmel-cnn"
SCRATCH = "scratch"


def launch_form() -> None:
    if ds is None:
        st.warning(f"The dataset folder can't be used: {err}" if err else
                   "Choose a dataset first (sidebar, or download one on Overview) to train a model.")
        return
    test_fold = TrainConfig().test_fold
    cv_folds = [f for f in ds.folds if f != test_fold]
    with st.container(border=True):
        st.markdown(f"**New training run** on {ds.name} ({len(ds)} clips, {len(ds.classes)} classes)")
        c = st.columns(5)
        # Each widget stores its value in the page address on change (ui.remember) and starts from it
        # (ui.remembered...), so a reload keeps the form.
        keep = {"on_change": ui.remember}
        sources = ui.teach_sources()
        starts = [SCRATCH, *sources]
        # Anything but ESC-50 itself (clips of one's own, ESC-10): start from the model that has heard ESC-50's 2,000
        # clips, as `train --from esc50` and the Teach page do and as the shipped ESC-10 default was made; ESC-50
        # itself: from scratch, the recipe.
        own = "esc50" if "esc50" in sources and not (ds.layout == "esc50" and ds.name == "esc50") else SCRATCH
        start_from = c[0].selectbox(
            "Start from", starts, key="train_from", args=("train_from",), **keep,
            index=starts.index(ui.remembered("train_from", starts, own)),
            format_func=lambda s: "nothing (from scratch)" if s == SCRATCH else f"the {SUBSET_NAMES[s]} model",
            help="From scratch: the model learns everything from this dataset. From a trained model (teaching, as "
                 "`train --from esc50`): its front end and trunk, a new last layer for these classes (a class it "
                 "knows by name keeps its row), and short training: best for a few dozen clips of your own, and "
                 "how the default ESC-10 model was made. "
                 + "; ".join(f"the {SUBSET_NAMES[k]} model is `{r.name}`" for k, r in sources.items()))
        source = sources.get(start_from)
        names = list(MODELS)
        if source is None:
            model = c[1].selectbox("Model", names, key="train_model", args=("train_model",), **keep,
                                   index=names.index(ui.remembered("train_model", names, DEFAULT_MODEL)),
                                   help="; ".join(f"{n}: {spec.description}" for n, spec in MODELS.items()))
        else:  # a taught model is the source's model, with its options
            model = c[1].selectbox("Model", [source.config.model], key="train_model_taught", disabled=True,
                                   help=f"The {SUBSET_NAMES[start_from]} model's: a taught model keeps its architecture.")
        spec = MODELS[model]
        options = {}
        for name, opt in spec.options.items():  # each of the model's own settings, from the registry
            title = opt.title or name.replace("_", " ").capitalize()
            shown = dict(zip(opt.choices, opt.names)).get if opt.names else str
            key = f"train_{model}_{name}"
            if source is not None:  # the source's setting (`taught_config` keeps it)
                value = dict(source.config.options).get(name, opt.default)
                c[2].selectbox(title, [value], key=f"{key}_taught", disabled=True, format_func=shown, help=opt.help)
                continue
            choices = list(opt.choices[:3]) if name == "heads" else list(opt.choices)
            options[name] = c[2].selectbox(title, choices, key=key, args=(key,), format_func=shown, help=opt.help,
                                           index=choices.index(ui.remembered(key, choices, opt.default)), **keep)
        if not spec.options:
            c[2].selectbox("Model options", ["none"], disabled=True, key="train_no_options",
                           help=f"The {model} model has no options of its own.")
        # Epochs and learning rate: the model's own defaults (as `train --model` gives), or teaching's (`--from`).
        trained = f"{model}_taught" if source else model
        default_epochs = (teach.TEACH_TRAINING["epochs"] if source else
                          spec.training.get("epochs", REPORT_TRAINING["epochs"]))
        default_lr = teach.TEACH_TRAINING["lr"] if source else spec.lr
        epochs = c[3].number_input("Epochs", 1, 1000, ui.remembered_int(f"train_epochs_{trained}", 1, 1000,
                                                                        default_epochs),
                                   key=f"train_epochs_{trained}", args=(f"train_epochs_{trained}",), **keep,
                                   help=f"Per fold model; the default is {default_epochs} "
                                        + ("when teaching." if source else f"for the {model} model (the report "
                                           f"trains its models {REPORT_TRAINING['epochs']})."))
        lr_choices = sorted(set(LR_CHOICES) | {default_lr}, reverse=True)
        lr = c[4].selectbox("Learning rate", lr_choices, key=f"train_lr_{trained}", format_func="{:g}".format,
                            index=lr_choices.index(ui.remembered(f"train_lr_{trained}", lr_choices, default_lr)),
                            args=(f"train_lr_{trained}",), **keep,
                            help=f"The optimizer's step size; the default is {default_lr:g}"
                                 + (" when teaching." if source else f" for the {model} model."))
        c = st.columns([1, 2, 1, 1])
        batch = c[0].number_input("Batch size", 1, 512, ui.remembered_int("train_batch", 1, 512, 32),
                                  key="train_batch", args=("train_batch",), **keep)
        folds = c[1].multiselect("Validation folds to train now", cv_folds, key="train_folds",
                                 default=ui.remembered_list("train_folds", cv_folds, cv_folds),
                                 args=("train_folds",), **keep,
                                 help="One model per fold. Train a few now and the rest later: finished folds "
                                      "are kept.")
        devices = ["auto", "cpu"] + (["cuda"] if torch.cuda.is_available() else []) + (
            ["mps"] if torch.backends.mps.is_available() else [])
        device = c[2].selectbox("Device", devices, key="train_device", args=("train_device",), **keep,
                                index=devices.index(ui.remembered("train_device", devices, "auto")),
                                help=f"auto picks the GPU when there is one; here: {ui.device_name()}.")
        with c[3]:
            st.write("")
            start = st.button("Start training", type="primary", icon=":material/play_arrow:", key="train_start",
                              disabled=not folds, use_container_width=True)
        if not folds:
            st.caption("Pick at least one validation fold.")
        at_once = False
        if torch.cuda.is_available():
            at_once = st.checkbox("Fold models side by side", key="train_at_once", disabled=device in ("cpu", "mps"),
                                  value=ui.remembered("train_at_once", [True, False], False),
                                  args=("train_at_once",), **keep,
                                  help="On the GPU, train the chosen fold models at once in one process: about 1.5x "
                                       "faster for the small models here (an H100: 51 s against 75 s for ESC-50's "
                                       "four), not reproducible bit for bit.")
    if start:
        try:
            if source is None:
                config = TrainConfig(model=model, options=tuple(options.items()), epochs=int(epochs), lr=lr,
                                     batch_size=int(batch), test_fold=test_fold, cv_folds=tuple(cv_folds),
                                     dataset_id=ds.fingerprint())
            else:  # as `train --from` makes it (the teaching defaults but for the form's values)
                config = teach.taught_config(source, ds.fingerprint(), tuple(cv_folds), init=teach.init_name(source),
                                             epochs=int(epochs), lr=lr, batch_size=int(batch), test_fold=test_fold)
            config.check_folds(ds.folds, folds)
            request = jobs.JobRequest(config, data=ds.root, folds=tuple(sorted(folds)), device=device,
                                      subset=ds.name if ds.name in ("esc10", "esc50") else "esc10",
                                      at_once=at_once and device not in ("cpu", "mps"))
            result = jobs.launch(request)
        except (UserError, OSError) as e:
            st.error(f"Could not start training: {e}")
            return
        st.session_state[FOCUS_KEY] = result.job.run.name  # the details box below shows it
        st.session_state[NOTICE_KEY] = {
            "started": ("success", f"Started {result.job.label}. Follow it below; it keeps running if you leave."),
            "running": ("info", f"{result.job.label} with these settings is already training (shown below); "
                                "no second copy was started."),
            "cached": ("success", f"{result.job.label} with these settings is already trained: its results are "
                                  "below, nothing was retrained."),
        }[result.outcome]


def job_panel(job: jobs.Job) -> None:
    cfg = job.config
    with st.container(border=True):
        head = st.columns([6, 2, 2], vertical_alignment="center")
        head[0].markdown(f"**{cfg.label}** · {cfg.epochs} epoch{'s' * (cfg.epochs != 1)} · lr {cfg.lr:g} · "
                         f"batch {cfg.batch_size} · {ui.job_folds_text(job)} · "
                         f"`{job.run.name}`")
        head[1].markdown(f"**{STATUS.get(job.status, job.status)}**")
        if job.active:
            head[2].button("Cancel", key=f"cancel-{job.run.name}", icon=":material/stop:",
                           on_click=jobs.cancel, args=(job.run,), help="Stop it; finished epochs and folds are kept.")
        elif job.resumable:
            head[2].button("Resume", key=f"resume-{job.run.name}", icon=":material/play_arrow:",
                           on_click=jobs.relaunch, args=(job.run,), help="Continue from the last finished epoch.")
        fraction, text = ui.describe_progress(job)
        st.progress(fraction, text=text or job.status)
        hist = job.run.histories()
        if hist:
            st.plotly_chart(plots.curves_figure({f"fold {f}": h for f, h in hist.items()}),
                            key=f"curves-{job.run.name}")
        if job.status == "failed":
            st.error(f"Training failed: {job.message or 'see the log below'}")
            st.code(jobs.log_tail(job.run, 15) or "(no log)", language=None)
        res = job.run.results()
        if res and res.get("folds") and not job.active:
            st.markdown(f"**Test-fold results** (accuracy on fold {cfg.test_fold} of each fold's best-validation model)")
            st.dataframe(ui.styled(runs.fold_table(res), ui.FOLD_COLUMNS), hide_index=True)
            st.page_link("pages/compare.py", label="Compare it with other runs", icon=":material/compare_arrows:")
            st.caption(f"From the command line: `python -m audioclf predict --run {job.run.path} FILE`; as one ONNX "
                       f"file for use elsewhere: `python -m audioclf export --run {job.run.path} --out model.onnx`.")
    if not job.active:
        delete_control(job)


def delete_control(job: jobs.Job) -> None:
    """A run the user trained can go, after a second click; the shipped ones stay (the report's comparison
    and the default models)."""
    if runs.is_shipped(job.run):
        st.button("Delete this run", icon=":material/delete:", disabled=True, key=f"delete-{job.run.name}",
                  help="It ships with audioclf (the report's comparison, the default models): it is kept.")
        return
    with st.popover("Delete this run", icon=":material/delete:"):
        st.markdown(f"Delete `{job.run.name}`: its fold models, curves and results. This cannot be undone.")
        if st.button("Delete", type="primary", key=f"delete-{job.run.name}"):
            try:
                jobs.delete(job.run)
            except (UserError, OSError) as e:
                st.error(f"Could not delete {job.run.name}: {e}")
                return
            left = jobs.list_jobs()  # the details box moves to the newest run left (set, so the browser shows it too)
            st.session_state[FOCUS_KEY] = left[0].run.name if left else None
            st.session_state[NOTICE_KEY] = ("success", f"Deleted {job.label} (`{job.run.name}`).")
            st.rerun()


def jobs_view() -> None:
    all_jobs = jobs.list_jobs()
    active = [j for j in all_jobs if j.active]
    was_active = st.session_state.get("train_active", [])
    st.session_state["train_active"] = [j.run.name for j in active]
    if set(was_active) - {j.run.name for j in active}:
        st.rerun()  # a job just finished: redraw the page (and stop polling when none is left)
    st.subheader("Running now")
    if not active:
        st.caption("No training is running.")
    for job in active:
        job_panel(job)
    st.subheader("All runs")
    if not all_jobs:
        st.caption("No run yet: start one above.")
        return
    st.dataframe(ui.as_table([{**runs.run_row(j.run, j.status),
                               "progress": ui.describe_progress(j)[1]} for j in all_jobs]), hide_index=True,
                 column_config={"lr": st.column_config.NumberColumn(format="%g")})
    names = [j.run.name for j in all_jobs]
    focus = st.session_state.pop(FOCUS_KEY, None)
    if focus in names:
        st.session_state["train_details"] = focus
    # The label names the run only; its status, which changes, is shown in the box below.
    pick = st.selectbox("Details of", names, key="train_details",
                        format_func=lambda n: f"{all_jobs[names.index(n)].label} · {n}")
    job = all_jobs[names.index(pick)]
    if job.active:
        st.caption(f"It is {STATUS.get(job.status, job.status)}: see it above, under Running now.")
    else:
        job_panel(job)


launch_form()
notice = st.session_state.pop(NOTICE_KEY, None)
if notice:
    getattr(st, notice[0])(notice[1])
any_active = any(j.active for j in jobs.list_jobs())
st.fragment(run_every=2.0 if any_active else None)(jobs_view)()
