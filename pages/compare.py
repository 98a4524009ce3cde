"""Compare: per-fold tables, training curves, confusion matrices, ROC and per-class scores of trained runs."""
from pathlib import Path

import streamlit as st

import ui
from audioclf import plots, runs

ui.page_guard()  # a page opened first on a fresh server runs without app.py


st.title("Compare")
evaluated = runs.evaluated()
if not evaluated:
    ui.no_runs_message("Comparing needs at least one trained and evaluated run")
    st.stop()

st.markdown("Pick runs to compare. First shown: the best model for the sidebar's classes (the one **Predict** "
            "uses), then the best run of each other model on them, e.g. the CNN and the transformer with 1, 2 and "
            "4 heads (★: shipped with audioclf). All figures are on "
            "each run's **test fold** (fold 1 unless its config says otherwise), which no model saw during "
            "training or model selection (a run with too few clips for a test fold: each clip judged by the fold "
            "model that did not train on it, marked \"out of fold\").")
labels = {r.name: ui.run_label(r, short=True) for r in evaluated}  # short: five chips fit in the box
ds, _ = ui.dataset_or_error()
default = [r.name for r in runs.compare_defaults(evaluated, ds.name if ds is not None else "esc10")]  # never the newest
chosen = st.multiselect("Runs", list(labels), default=default, format_func=labels.get, key="compare_runs")
if not chosen:
    st.info("Choose at least one run above.")
    st.stop()
chosen_runs = sorted((r for r in evaluated if r.name in chosen), key=runs.model_sort_key)  # cnn, 1, 2, 4 heads
chosen = [r.name for r in chosen_runs]
cfg = {r.name: r.config for r in chosen_runs}
res = {r.name: r.results() for r in chosen_runs}

datasets = {c.dataset_id for c in cfg.values()}
tested_on = {frozenset(Path(n).stem for n in r.get("test_names") or []) for r in res.values()}  # the same clips?
if len(tested_on) > 1:
    st.warning(f"These runs were trained on different data ({', '.join(sorted(datasets))}) and tested on different "
               "clips: compare their figures with that in mind.")

tab_table, tab_curves, tab_detail = st.tabs(["Per-fold table", "Training curves", "Confusion, ROC, per class"])

with tab_table:
    summary = []
    for name in chosen:
        s = res[name].get("summary", {})
        summary.append({"model": cfg[name].label, "epochs": cfg[name].epochs,
                        "folds": len(res[name]["folds"]),
                        "judged on": "out of fold (cv, no test fold)" if runs.cross_validated(res[name])
                        else f"test fold {res[name].get('test_fold')}",
                        "accuracy": runs.mean_pm(s.get("accuracy")),
                        "macro F1": runs.mean_pm(s.get("macro_f1")),
                        "macro AUC": runs.mean_pm(s.get("macro_auc")),
                        "ensemble accuracy": res[name].get("ensemble", {}).get("accuracy"), "run": name})
    st.markdown("**Summary** (mean ± standard deviation over the fold models)")
    st.dataframe(ui.as_table(summary), hide_index=True, width="stretch",
                 column_config={"ensemble accuracy": st.column_config.NumberColumn(format="%.3f")})
    combined = []
    for name in chosen:
        st.markdown(f"**{cfg[name].label}** · `{name}` · {res[name]['which']} weights (the epoch with the best "
                    "validation accuracy)")
        rows = runs.fold_table(res[name])
        st.dataframe(ui.styled(rows, ui.FOLD_COLUMNS), hide_index=True, width="stretch")
        combined += [{"run": name, "model": cfg[name].label, **row} for row in rows]
    st.download_button("Download these tables (CSV)", ui.as_table(combined).to_csv(index=False),
                       file_name="audioclf-folds.csv", mime="text/csv", icon=":material/download:",
                       key="csv_folds")

with tab_curves:
    hist = {name: r.histories() for name, r in zip(chosen, chosen_runs)}
    st.markdown("**Every fold of each run, overlaid** (training solid, validation dashed; every chart on the same "
                "axes)")
    shared = plots.curve_ranges([h for runs_hist in hist.values() for h in runs_hist.values()])
    for name in chosen:
        if hist[name]:
            st.plotly_chart(plots.curves_figure({f"fold {f}": h for f, h in hist[name].items()},
                                                title=f"{cfg[name].label} · {name}", ranges=shared),
                            key=f"curves-{name}")
    all_folds = sorted({f for h in hist.values() for f in h})
    if all_folds:
        st.markdown("**The same fold side by side**")
        fold = st.selectbox("Validation fold", all_folds, key="compare_fold")
        have = [n for n in chosen if fold in hist[n]]
        side = plots.curve_ranges([hist[n][fold] for n in have])  # same loss and epoch axes side by side
        for i in range(0, len(have), 2):
            for col, name in zip(st.columns(2), have[i:i + 2]):
                with col:
                    st.plotly_chart(plots.curves_figure({cfg[name].label: hist[name][fold]},
                                                        title=f"{cfg[name].label}, fold {fold}", ranges=side),
                                    key=f"side-{name}-{fold}")

with tab_detail:
    c = st.columns(2)
    run_name = c[0].selectbox("Run", chosen, format_func=lambda n: f"{cfg[n].label} · {n}", key="detail_run")
    r = res[run_name]
    cv = runs.cross_validated(r)  # a small folder: each clip judged by the fold model that did not train on it
    options = (["ensemble"] if "ensemble" in r else []) + list(r["folds"])
    which = c[1].selectbox("Model", options, key=f"detail_which_{run_name}",
                           format_func=lambda w: ("each clip by the fold model that did not train on it"
                                                  if cv else "fold ensemble (mean of the fold models' probabilities)")
                           if w == "ensemble" else f"the fold-{w} model ({'judged' if cv else 'validated'} on fold {w})")
    report = runs.report_for(r, which)
    if cv:
        st.caption("This run has no test fold (too few clips a class): the figures are cross-validation's, "
                   "each clip judged once by a model that did not train on it.")
    m = st.columns(4)
    m[0].metric("out-of-fold accuracy" if cv else "test accuracy", f"{report['accuracy']:.3f}")
    m[1].metric("macro F1", f"{report['macro_f1']:.3f}")
    m[2].metric("macro AUC", ui.fmt_float(report.get("macro_auc")) or "n/a")
    m[3].metric("clips judged" if cv else "test clips", report["n"])
    left, right = st.columns(2)
    with left:
        st.markdown("**Confusion matrix** (rows: true class, columns: predicted)")
        st.plotly_chart(plots.confusion_figure(report["confusion"], r["classes"]), key="confusion")
        confusions = runs.top_confusions(report, r["classes"])
        if confusions:
            st.markdown("**The most frequent mistakes**")
            st.table(ui.as_table(confusions))
    with right:
        st.markdown("**One-vs-rest ROC curves**")
        if report.get("roc"):
            st.plotly_chart(plots.roc_figure(report["roc"]), key="roc")
        else:
            st.caption(f"No ROC curve: {'the judged clips need' if cv else 'the test fold needs'} clips of each class.")
    st.markdown("**Precision, recall and F1 per class**")
    st.plotly_chart(plots.per_class_figure(report["per_class"], order=r["classes"]), key="per_class")
    per_class = runs.per_class_table(report, order=r["classes"])  # label order, as the confusion matrix
    table = ui.as_table(per_class)
    st.dataframe(ui.styled(per_class), hide_index=True, width="stretch", height=ui.table_height(len(per_class)))
    st.download_button("Download the per-class table (CSV)", table.to_csv(index=False),
                       file_name=f"audioclf-{run_name}-{which}-per-class.csv", mime="text/csv",
                       icon=":material/download:", key="csv_per_class")
    wrong = runs.misclassified(r, which)
    with st.expander(f"Misclassified {'' if cv else 'test '}clips ({len(wrong)})"):
        st.dataframe(ui.as_table(wrong), hide_index=True, width="stretch", height=ui.table_height(len(wrong)))
