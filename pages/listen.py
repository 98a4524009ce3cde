"""Listen: classify the microphone continuously, the last 5 s every second, the last minute as a strip.

The browser streams the microphone over WebRTC (streamlit-webrtc, imported here only); the engine's
`live.Listener` does the rest in the stream's own thread.
"""
import numpy as np
import streamlit as st

import ui
from audioclf import plots
from audioclf.errors import UserError
from audioclf.live import Listener, pcm, spans
from audioclf.store import Run

ui.page_guard()  # a page opened first on a fresh server runs without app.py

HOP_S, KEEP_S = 1.0, 60.0

st.title("Listen")
st.markdown("Press **START** and allow the microphone: every second, every fold model of the chosen run "
            "classifies the last 5 s it heard, and so does their ensemble; it says when it is not sure. The "
            "strip shows the last minute. The sound goes from your browser to this server only (no outside "
            "relay) and is kept in memory for 5 s; nothing is saved.")

choices = ui.predict_runs()  # as on Predict: the default run first
if not choices:
    ui.no_runs_message("Listening needs a trained run")
    st.stop()
labels = dict(choices)
run: Run = st.selectbox("Model run", list(labels), format_func=labels.get, key=ui.run_choice_key("listen"),
                        help="The best fully trained run (by validation accuracy) first, then fully trained runs, "
                             "newest first. Each run holds one model per validation fold.")
try:
    ens = ui.ensemble(run)
except UserError as e:  # weights that can't be used
    st.error(f"This run can't be used: {e}")
    st.stop()

ss = st.session_state
key = (str(run.path), run.weights_stamp())
if ss.get("listen_key") != key:  # one listener per session and run
    ss["listen_key"], ss["listen"] = key, Listener(ens, ui.unsure_threshold(run), hop_s=HOP_S, keep_s=KEEP_S)
    ss["listen_problem"] = []
listener: Listener = ss["listen"]
problem: list[str] = ss["listen_problem"]  # written by the stream's thread, which can't reach the session


async def hear(frames):
    """streamlit-webrtc's callback, in its own thread, with the frames received since its last call."""
    try:
        audio = np.concatenate([pcm(f.to_ndarray(), len(f.layout.channels), not f.format.is_planar) for f in frames], 1)
        listener.push(audio, frames[0].sample_rate)
    except Exception as e:  # noqa: BLE001 (a bad frame: said on the page; the stream goes on)
        problem[:] = [f"{type(e).__name__}: {e}"]
    return frames


webrtc = ui.import_locked("streamlit_webrtc")  # aiortc and PyAV: 0.5 s, only on this page
ctx = webrtc.webrtc_streamer(
    key="listen_mic", mode=webrtc.WebRtcMode.SENDONLY,
    rtc_configuration={"iceServers": []},  # no STUN or TURN server: browser and server meet directly
    media_stream_constraints={"audio": True, "video": False},
    queued_audio_frames_callback=hear, async_processing=True)
playing = bool(ctx.state.playing)
if playing and not ss.get("listen_playing"):
    listener.reset()  # a new stream
ss["listen_playing"] = playing


@st.fragment(run_every=HOP_S if playing else None)
def show() -> None:
    if problem:
        st.error(f"Some audio from the browser could not be used: {problem[0]}")
    history = listener.history()
    if not history:
        st.info("Listening… the first answer comes after a second of sound." if playing else
                "Press START to listen (the browser asks for the microphone first).", icon=":material/mic:")
        return
    classes = listener.classes
    last = history[-1]
    p = last.ensemble[last.top]
    if last.sure:
        st.success(f"Hearing: **{classes[last.top]}** (ensemble probability {p:.2f})", icon=":material/hearing:")
    else:
        st.warning(f"Not sure. The likeliest is {classes[last.top]} ({p:.2f}), but {' and '.join(last.reasons)}.",
                   icon=":material/help:")
    st.plotly_chart(plots.live_figure([h.end_s for h in history], np.stack([h.ensemble for h in history]), classes,
                                      [h.sure for h in history], listener.heard_s, KEEP_S, listener.window / listener.sr),
                    key="live_strip")
    compute = np.median([h.compute_s for h in history]) * 1000
    skipped = sum(h.skipped for h in history)
    st.caption(f"{listener.heard_s:.0f} s heard · run `{run.name}` · classifying a window takes {compute:.0f} ms "
               f"(median over the strip){f' · {skipped} windows skipped to keep up' if skipped else ''} · "
               f"a dot marks a sure answer; \"not sure\" below an ensemble probability of {listener.threshold:.2f} "
               "or when most fold models disagree")
    st.table(ui.as_table([{"from (s)": f"{sp['from_s']:.0f}", "to (s)": f"{sp['to_s']:.0f}",
                           "answer": "quiet (background)" if sp["quiet"] else sp["class"] or "not sure",
                           "highest probability": "—" if sp["quiet"] else f"{sp['probability']:.2f}"}
                          for sp in reversed(spans(history, classes))][:8]))


show()
