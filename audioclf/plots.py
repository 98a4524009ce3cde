"""Plotly figures for the app: pure functions from arrays and result dicts to `go.Figure`s (and, where a
figure costs the browser too much, plain HTML)."""
from __future__ import annotations

import html
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .config import PrepConfig

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
           "#bcbd22", "#7f7f7f")


def _envelope(wave: np.ndarray, sr: int, points: int = 3000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Min/max envelope of a long waveform for drawing: times, lows, highs (about `points` each)."""
    wave = np.asarray(wave, dtype=np.float32)
    step = max(1, len(wave) // points)
    n = len(wave) // step * step
    if n == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    blocks = wave[:n].reshape(-1, step)
    t = (np.arange(len(blocks)) * step + step / 2) / sr
    return t, blocks.min(1), blocks.max(1)


def _add_wave(fig: go.Figure, wave: np.ndarray, sr: int, row: int | None = None, col: int | None = None) -> None:
    t, lo, hi = _envelope(wave, sr)
    kw = {"row": row, "col": col} if row else {}
    fig.add_trace(go.Scatter(x=np.concatenate([t, t[::-1]]), y=np.concatenate([hi, lo[::-1]]), fill="toself",
                             mode="lines", line=dict(width=0.5, color="#1f77b4"), name="waveform",
                             hoverinfo="skip", showlegend=False), **kw)


def waveform_figure(wave: np.ndarray, sr: int, prep: PrepConfig | None = None, title: str = "") -> go.Figure:
    """The waveform, with the model's windows marked as numbered bands when `prep` is given.

    Consecutive windows overlap (50 % by default), so they alternate between an upper and a lower band.
    """
    fig = go.Figure()
    _add_wave(fig, wave, sr)
    peak = float(np.abs(wave).max()) if len(wave) else 1.0
    peak = peak or 1.0
    if prep is not None:
        for w in range(prep.num_windows):
            x0 = w * prep.hop / prep.sample_rate
            x1 = x0 + prep.window / prep.sample_rate
            lane = w % 2
            y0, y1 = (peak * 1.08, peak * 1.28) if lane == 0 else (peak * 1.32, peak * 1.52)
            color = PALETTE[w % len(PALETTE)]
            fig.add_shape(type="rect", x0=x0, x1=x1, y0=-peak, y1=peak, line_width=0, fillcolor=color,
                          opacity=0.06, layer="below")
            fig.add_shape(type="rect", x0=x0, x1=x1, y0=y0, y1=y1, line=dict(color=color, width=1),
                          fillcolor=color, opacity=0.45)
            fig.add_annotation(x=(x0 + x1) / 2, y=(y0 + y1) / 2, text=f"window {w + 1}", showarrow=False,
                               font=dict(size=10))
    fig.update_layout(title=title or None, height=300, margin=dict(l=10, r=10, t=40 if title else 10, b=10),
                      xaxis_title="time (s)", yaxis_title="amplitude")
    return fig


def spectrogram_figure(spec_db: np.ndarray, sr: int, hz: np.ndarray, hop_length: int = 256,
                       title: str = "") -> go.Figure:
    """A log-mel spectrogram (n_mels, frames) in dB as a heatmap, time in seconds, frequency ticked in Hz (`hz`,
    each band's centre)."""
    spec = {"db": spec_db, "hz": hz, "seconds": np.arange(spec_db.shape[1]) * hop_length / sr}
    fig = go.Figure(_spectrogram_trace(spec, dict(title="dB")))
    fig.update_layout(title=title or None, height=300, margin=dict(l=10, r=10, t=40 if title else 10, b=10),
                      xaxis_title="time (s)", yaxis=dict(title="frequency (Hz)", **hz_ticks(np.asarray(hz))))
    return fig


def curve_ranges(histories: Sequence[list[dict]]) -> dict[str, tuple[float, float]]:
    """One set of axis ranges for several `curves_figure`s drawn side by side: epochs, and loss from 0 to the
    largest loss of any of them (accuracy is always 0 to 1)."""
    rows = [r for h in histories for r in h]
    losses = [float(r[k]) for r in rows for k in ("train_loss", "val_loss") if r.get(k) is not None]
    epochs = [r["epoch"] for r in rows]
    out = {}
    if losses:
        out["loss"] = (0.0, max(losses) * 1.05 or 1.0)
    if epochs:
        out["epoch"] = (min(epochs) - 0.5, max(epochs) + 0.5)
    return out


def curves_figure(histories: dict[str, list[dict]], title: str = "",
                  ranges: dict[str, tuple[float, float]] | None = None) -> go.Figure:
    """Loss (left) and accuracy (right) per epoch; one colour per curve set, training solid and
    validation dashed. `histories` maps a name ('fold 2', 'cnn', ...) to its per-epoch rows; `ranges`
    (from `curve_ranges`) fixes the epoch and loss axes, to compare figures side by side."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "accuracy"))
    for i, (name, rows) in enumerate(histories.items()):
        color = PALETTE[i % len(PALETTE)]
        epochs = [r["epoch"] for r in rows]
        for col, metric in ((1, "loss"), (2, "acc")):
            for split, dash in (("train", "solid"), ("val", "dash")):
                fig.add_trace(go.Scatter(x=epochs, y=[r[f"{split}_{metric}"] for r in rows], mode="lines+markers"
                                         if len(rows) < 20 else "lines", line=dict(color=color, dash=dash),
                                         name=f"{name} {split}", legendgroup=name, showlegend=col == 1),
                              row=1, col=col)
    fig.update_xaxes(title_text="epoch", **({"range": list(ranges["epoch"])} if ranges and "epoch" in ranges else {}))
    fig.update_yaxes(range=[0, 1.02], row=1, col=2)
    if ranges and "loss" in ranges:
        fig.update_yaxes(range=list(ranges["loss"]), row=1, col=1)
    fig.update_layout(title=title or None, height=340, margin=dict(l=10, r=10, t=50, b=10))
    return fig


def confusion_figure(matrix: Sequence[Sequence[int]], classes: Sequence[str], title: str = "") -> go.Figure:
    """Counts, true class by row, in label order. With many classes (ESC-50) the numbers are left out of
    the cells (they would not fit; hover shows them), zero cells stay white, and the figure grows so
    that every class name has its own line; plotly's zoom box enlarges any corner."""
    m = np.asarray(matrix)
    many = len(classes) > 15
    fig = go.Figure(go.Heatmap(z=np.where(m > 0, m, np.nan) if many else m, x=list(classes), y=list(classes),
                               colorscale="Blues", text=m, texttemplate=None if many else "%{text}",
                               hovertemplate="true %{y}<br>predicted %{x}<br>%{text} clips<extra></extra>"))
    fig.update_layout(title=title or None, height=max(420, 16 * len(classes) + 150),
                      margin=dict(l=10, r=10, t=40 if title else 10, b=10), xaxis_title="predicted",
                      yaxis_title="true", yaxis_autorange="reversed",
                      xaxis=dict(tickfont=dict(size=9 if many else 12)), yaxis=dict(tickfont=dict(size=9 if many else 12)))
    return fig


def roc_figure(roc: dict[str, dict], title: str = "") -> go.Figure:
    """One-vs-rest ROC curve per class, AUC in the legend."""
    fig = go.Figure()
    for i, (name, c) in enumerate(roc.items()):
        fig.add_trace(go.Scatter(x=c["fpr"], y=c["tpr"], mode="lines", name=f"{name} (AUC {c['auc']:.2f})",
                                 line=dict(color=PALETTE[i % len(PALETTE)])))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(color="grey", dash="dot"),
                             name="chance", hoverinfo="skip"))
    fig.update_layout(title=title or None, height=420, margin=dict(l=10, r=10, t=40 if title else 10, b=10),
                      xaxis_title="false positive rate", yaxis_title="true positive rate")
    return fig


def per_class_figure(per_class: dict[str, dict], title: str = "", order: Sequence[str] | None = None) -> go.Figure:
    """Precision, recall and F1 per class, in `order` (the label order of the confusion matrix) when given."""
    classes = [c for c in order if c in per_class] if order else list(per_class)
    fig = go.Figure([go.Bar(x=classes, y=[per_class[c][m] for c in classes], name=m)
                     for m in ("precision", "recall", "f1")])
    fig.update_layout(barmode="group", title=title or None, height=340, yaxis_range=[0, 1.02],
                      margin=dict(l=10, r=10, t=40 if title else 10, b=10))
    return fig


def class_fold_figure(counts: dict[str, dict[int, int]]) -> go.Figure:
    """Clips per class, stacked by fold. `counts[class][fold]`."""
    classes = list(counts)
    folds = sorted({f for c in counts.values() for f in c})
    fig = go.Figure([go.Bar(x=classes, y=[counts[c].get(f, 0) for c in classes], name=f"fold {f}")
                     for f in folds])
    fig.update_layout(barmode="stack", height=320, margin=dict(l=10, r=10, t=10, b=10), yaxis_title="clips")
    return fig


def proba_bars_html(per_model: dict[str, np.ndarray], classes: Sequence[str], k: int = 5) -> str:
    """The top `k` classes (by the ensemble, else the first model) as plain HTML bars: the ensemble's thick and
    black with its probability, each fold model's thin in its colour, and a legend.

    Why not a plotly figure: the first plotly chart in a browser tab loads and compiles plotly.js, about
    2.7 s of the tab's CPU, before the answer shows; these bars cost the browser next to nothing
    (bench/load.py). Every name is escaped: class names come from a dataset's folders."""
    ref = per_model.get("ensemble", next(iter(per_model.values())))
    order = list(np.argsort(ref)[::-1][:k])  # best first
    colour = {name: "#111111" if name == "ensemble" else PALETTE[i % len(PALETTE)]
              for i, name in enumerate(per_model)}

    def bar(name: str, p: float) -> str:
        thick = name == "ensemble"
        return (f'<div title="{html.escape(name)}: {p:.2f}" style="display:flex;align-items:center;gap:6px;'
                f'margin:1px 0"><div style="height:{14 if thick else 4}px;width:{85 * p:.1f}%;'
                f'background:{colour[name]};opacity:{1.0 if thick else 0.6}"></div>'
                + (f'<span style="font-size:0.85em">{p:.2f}</span>' if thick else "") + "</div>")

    ensemble_first = sorted(per_model.items(), key=lambda kv: kv[0] != "ensemble")
    rows = "".join(
        f'<div style="text-align:right;padding-top:2px">{html.escape(classes[j])}</div><div>'
        + "".join(bar(name, float(p[j])) for name, p in ensemble_first) + "</div>" for j in order)
    legend = " ".join(f'<span style="white-space:nowrap"><span style="display:inline-block;width:10px;height:10px;'
                      f'background:{c}"></span> {html.escape(n)}</span>' for n, c in colour.items())
    return (f'<div class="audioclf-proba" style="display:grid;grid-template-columns:max-content 1fr;gap:6px 10px;'
            f'align-items:start">{rows}</div><div style="font-size:0.8em;margin-top:6px">{legend}</div>')


def over_time_figure(starts: Sequence[float], proba: np.ndarray, classes: Sequence[str], k: int = 4,
                     clip_seconds: float = 5.0) -> go.Figure:
    """The ensemble's probability of the `k` most likely classes for each clip-long segment."""
    proba = np.asarray(proba)
    top = np.argsort(proba.mean(0))[::-1][:k]
    mid = np.asarray(starts) + clip_seconds / 2
    fig = go.Figure([go.Scatter(x=mid, y=proba[:, j], mode="lines+markers", name=classes[j],
                                line=dict(color=PALETTE[n % len(PALETTE)])) for n, j in enumerate(top)])
    fig.update_layout(height=320, yaxis=dict(range=[0, 1.02], title="probability"),
                      xaxis_title=f"time (s), centre of each {clip_seconds:g} s segment",
                      margin=dict(l=10, r=10, t=10, b=10))
    return fig


def timeline_figure(starts: Sequence[float], proba: np.ndarray, classes: Sequence[str],
                    clip_seconds: float = 5.0, quiet: Sequence[bool] | None = None) -> go.Figure:
    """A class x time strip of a long recording: one column per window (its start to end), one row for
    every class that is the top class of at least one window, coloured by the ensemble's probability
    on a scale rising from 0, and a dot on each window's top class. Clicking anywhere in a column selects
    that window's dot (trace 1, point i = window i): plotly cannot select a heatmap cell, so the dots,
    with hover by column, are what a click picks. Columns marked `quiet` (background: see
    `confidence.QUIET_DB`) are veiled, and their hover says so."""
    proba = np.asarray(proba)
    top = proba.argmax(1)
    winners = sorted(set(top.tolist()), key=lambda j: -proba[:, j].max())
    mid = np.asarray(starts) + clip_seconds / 2
    fig = go.Figure(go.Heatmap(z=proba[:, winners].T, x=mid, y=[classes[j] for j in winners], zmin=0, zmax=1,
                               colorscale="Blues", colorbar=dict(title="probability"), xgap=1, ygap=1,
                               hoverinfo="skip"))  # the dot's label says it all, for the whole column
    ends = np.asarray(starts, dtype=float) + clip_seconds
    quiet = list(quiet) if quiet is not None else [False] * len(proba)
    labels = [("quiet (background)<br>" if quiet[i] else "")
              + "<br>".join(f"{classes[j]} {proba[i, j]:.2f}" for j in np.argsort(proba[i])[::-1][:3])
              for i in range(len(proba))]  # each window's 3 most likely classes
    fig.add_trace(go.Scatter(
        x=mid, y=[classes[j] for j in top], mode="markers", showlegend=False, name="top class",
        marker=dict(size=9, color="#222", line=dict(color="white", width=1)),
        customdata=np.stack([np.asarray(starts, dtype=float), ends], 1), text=labels,
        hovertemplate="window %{customdata[0]:.1f}–%{customdata[1]:.1f} s<br>%{text}"
                      "<br><i>click to hear it</i><extra></extra>"))
    fig.update_layout(height=120 + 28 * len(winners), margin=dict(l=10, r=10, t=10, b=10),
                      xaxis_title=f"time (s), centre of each {clip_seconds:g} s window; the dot: its top class",
                      yaxis=dict(autorange="reversed"), clickmode="event+select", hovermode="x")
    half = (mid[1] - mid[0]) / 2 if len(mid) > 1 else clip_seconds / 2  # a heatmap column's half width
    for x, q in zip(mid, quiet):
        if q:
            fig.add_vrect(x0=x - half, x1=x + half, fillcolor="white", opacity=0.7, line_width=0, layer="above")
    return fig


def live_figure(ends: Sequence[float], proba: np.ndarray, classes: Sequence[str], sure: Sequence[bool],
                now: float, keep_s: float = 60.0, window_s: float = 5.0, rows: int = 8) -> go.Figure:
    """The last `keep_s` seconds of live answers as a class x time strip that moves left as time goes on:
    one column per answer at the end of its window, one row for each class that was the top class of an
    answer (the `rows` likeliest), coloured by the ensemble's probability; a dot marks a sure answer."""
    proba = np.asarray(proba)
    top = proba.argmax(1)
    winners = sorted(set(top.tolist()), key=lambda j: -proba[:, j].max())[:rows]
    marks = [["●" if ok and t == j else "" for t, ok in zip(top, sure)] for j in winners]
    fig = go.Figure(go.Heatmap(
        z=proba[:, winners].T, x=np.asarray(ends), y=[classes[j] for j in winners], zmin=0, zmax=1,
        colorscale="Blues", colorbar=dict(title="probability"), xgap=1, ygap=1, text=marks,
        texttemplate="%{text}", textfont=dict(color="#d62728"),
        hovertemplate="%{y}<br>window ending at %{x:.0f} s<br>probability %{z:.2f}<extra></extra>"))
    fig.update_layout(height=110 + 28 * len(winners), margin=dict(l=10, r=10, t=10, b=10),
                      xaxis=dict(title=f"seconds since START (each column: the {window_s:g} s before it)",
                                 range=[max(now, keep_s) - keep_s - 0.5, max(now, keep_s) + 0.5]),
                      yaxis=dict(autorange="reversed"))
    return fig


def _token_ticks(n: int, token_times: np.ndarray | None, every: int = 16) -> dict:
    """Axis ticks for tokens 0..n-1 (0 is CLS): every `every`-th token, labelled with its time in the clip
    where the mapping is known, else its index."""
    vals = [0, *range(every, n, every)]
    if token_times is None:
        text = ["CLS", *map(str, vals[1:])]
    else:
        text = ["CLS", *(f"{token_times[v - 1]:.1f} s" for v in vals[1:])]
    return dict(tickmode="array", tickvals=vals, ticktext=text)


def attention_heatmaps(att: np.ndarray, token_times: np.ndarray | None = None, title: str = "") -> go.Figure:
    """Every block's attention per head, (blocks, heads, T, T): one heatmap per block (rows) and head
    (columns); token 0 is CLS, row = the token that attends (query), column = the token attended to (key).
    With `token_times` (seconds of the clip for tokens 1..T-1), the ticks say where in the clip a token is.
    One sequential colour scale from 0 for all panels."""
    blocks, heads, n = att.shape[:3]
    fig = make_subplots(rows=blocks, cols=heads, horizontal_spacing=0.05, vertical_spacing=0.12,
                        subplot_titles=[f"block {b + 1}, head {h + 1}" for b in range(blocks) for h in range(heads)])
    custom = None
    if token_times is not None:
        labels = np.array(["CLS", *(f"{t:.2f} s" for t in token_times)], dtype=object)
        custom = np.stack(np.broadcast_arrays(labels[:, None], labels[None, :]), -1)  # (query, key) labels
    hover = ("query %{y} (%{customdata[0]})<br>key %{x} (%{customdata[1]})" if custom is not None
             else "query %{y}<br>key %{x}") + "<br>weight %{z:.3f}<extra></extra>"
    for b in range(blocks):
        for h in range(heads):
            fig.add_trace(go.Heatmap(z=att[b, h], coloraxis="coloraxis", customdata=custom, hovertemplate=hover),
                          row=b + 1, col=h + 1)
    ticks = _token_ticks(n, token_times)
    key_title = "key token: attended to" + (" (time in clip)" if token_times is not None else "")
    query_title = "query token: attending"
    fig.update_yaxes(autorange="reversed", **ticks, tickfont=dict(size=9))
    fig.update_xaxes(**ticks, tickfont=dict(size=9), tickangle=-45)
    for h in range(heads):
        fig.update_xaxes(title_text=key_title, title_font=dict(size=11), row=blocks, col=h + 1)
    for b in range(blocks):
        fig.update_yaxes(title_text=query_title, title_font=dict(size=11), row=b + 1, col=1)
    top = float(np.quantile(att, 0.995)) or float(att.max()) or 1.0
    fig.update_layout(coloraxis=dict(colorscale="Viridis", cmin=0, cmax=top,
                                     colorbar=dict(title="weight")),
                      height=300 * blocks + 80, title=title or None, margin=dict(l=10, r=10, t=60, b=10))
    return fig


def hz_ticks(hz: np.ndarray) -> dict:
    """Ticks for an axis of mel bands (0..n-1) at round frequencies, labelled in Hz; `hz` (n,) is each band's
    centre, rising."""
    marks = [f for f in (100, 500, 1000, 2000, 4000, 8000, 16000) if hz[0] <= f <= hz[-1]]  # apart on a mel scale
    return dict(tickmode="array", tickvals=np.interp(marks, hz, np.arange(len(hz))).round(2).tolist(),
                ticktext=[str(f) for f in marks])


def _spectrogram_trace(spec: dict, colorbar: dict) -> go.Heatmap:
    """A log-mel spectrogram {'db' (bands, frames), 'hz' (bands,), 'seconds' (frames,)} as a heatmap over band
    index (ticked in Hz by `hz_ticks`) and seconds."""
    db, hz = np.asarray(spec["db"]), np.asarray(spec["hz"])
    return go.Heatmap(z=db.astype(np.float32), x=np.asarray(spec["seconds"]), y=np.arange(len(hz)),
                      customdata=np.tile(hz.round().astype(np.int16)[:, None], (1, db.shape[1])),  # Hz per cell
                      colorscale="Viridis", colorbar=colorbar,
                      name="log-mel spectrogram",
                      hovertemplate="t=%{x:.2f} s<br>%{customdata:.0f} Hz<br>%{z:.0f} dB<extra></extra>")


def cls_attention_figure(wave: np.ndarray, sr: int, times: np.ndarray, density: np.ndarray,
                         uniform: np.ndarray | None = None, first_block: int = 1, height: int = 460,
                         title: str = "", y_max: float | None = None, spectrogram: dict | None = None) -> go.Figure:
    """The waveform (top) and, on the same time axis, the CLS token's attention over the clip (below it),
    one line per block and head; `density` is (blocks, heads, bins) (see
    `audioclf.attention.attention_over_time`). The last block is shown; the others are a legend click
    away. Given `uniform` (the density of evenly spread attention), the lines are drawn relative to it:
    1 means the even share, 2 twice that; this also evens out the overlap of the windows. `y_max` fixes the
    attention axis (to share it between figures drawn side by side). Given a `spectrogram` (the model's own
    log-mel frames, `audioclf.frontend.spectrogram`), it is drawn under the attention, frequency in Hz, so a
    peak can be read against the sound it falls on. The time axis is the clip's, 0 to its length, shared."""
    blocks, heads = density.shape[:2]
    if uniform is not None:
        density = density / np.maximum(uniform, 1e-12)
    rows = 3 if spectrogram is not None else 2
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.05,
                        row_heights=[0.2, 0.4, 0.4] if spectrogram is not None else [0.35, 0.65])
    _add_wave(fig, wave, sr, row=1, col=1)
    for b in range(blocks):
        for h in range(heads):
            fig.add_trace(go.Scatter(x=times, y=density[b, h], mode="lines", line=dict(width=1.5, shape="hvh",
                                     color=PALETTE[h % len(PALETTE)], dash="solid" if b == blocks - 1 else "dot"),
                                     name=f"block {first_block + b}, head {h + 1}",
                                     visible=True if b == blocks - 1 else "legendonly",
                                     hovertemplate="t=%{x:.2f} s<br>%{y:.2f}" + (" × even" if uniform is not None
                                                   else " per second") + "<extra></extra>"),
                          row=2, col=1)
    if uniform is not None:
        fig.add_trace(go.Scatter(x=[times[0], times[-1]], y=[1, 1], mode="lines", line=dict(color="grey", dash="dot"),
                                 name="even attention", hoverinfo="skip"), row=2, col=1)
    fig.update_yaxes(title_text="amplitude", row=1, col=1)
    fig.update_yaxes(title_text="× even attention" if uniform is not None else "attention per second",
                     rangemode="tozero", row=2, col=1, **({"range": [0, y_max]} if y_max else {}))
    if spectrogram is not None:
        lo, hi = fig.layout.yaxis3.domain
        fig.add_trace(_spectrogram_trace(spectrogram, dict(title="dB", len=hi - lo, y=(lo + hi) / 2)), row=3, col=1)
        fig.update_yaxes(title_text="frequency (Hz)", **hz_ticks(np.asarray(spectrogram["hz"])), row=3, col=1)
        height += 240
    fig.update_xaxes(range=[0, len(wave) / sr])
    fig.update_xaxes(title_text="time in the clip (s)", row=rows, col=1)
    fig.update_layout(title=title or None, height=height, margin=dict(l=10, r=10, t=40 if title else 10, b=10),
                      legend=dict(orientation="h", y=-0.2 if rows == 2 else -0.12))
    return fig
