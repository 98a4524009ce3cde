"""audioclf's app: `streamlit run app.py`. A router over the pages in pages/ plus the sidebar."""
import contextlib
import sys

import streamlit as st

st.set_page_config(page_title="audioclf", page_icon=":material/graphic_eq:", layout="wide")
# The menu before anything heavy: `import ui` brings torch (2-4 s on the first visit after a server start),
# and until st.navigation runs the browser shows the pages/ folder's file names as the menu, over a blank page.
page = st.navigation([
    st.Page("pages/overview.py", title="Overview", icon=":material/home:", default=True),
    st.Page("pages/clips.py", title="Clips", icon=":material/library_music:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/teach.py", title="Teach", icon=":material/school:"),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
    st.Page("pages/attention.py", title="Attention", icon=":material/visibility:"),
    st.Page("pages/predict.py", title="Predict", icon=":material/hearing:"),
    st.Page("pages/listen.py", title="Listen", icon=":material/mic:"),
])
starting = "ui" not in sys.modules
with st.spinner("Starting up: loading torch and the models (once after the server starts)…") if starting \
        else contextlib.nullcontext():
    import ui

    ui.import_heavy_modules()
ui.init_state()
ui.sidebar()
with ui.pages_of_the_app():
    page.run()
