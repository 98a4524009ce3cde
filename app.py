"""audioclf's app: `streamlit run app.py`. A router over the pages in pages/ plus the sidebar."""
import streamlit as st

import ui

st.set_page_config(page_title="audioclf", page_icon=":material/graphic_eq:", layout="wide")
ui.import_heavy_modules()
ui.init_state()
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
ui.sidebar()
with ui.pages_of_the_app():
    page.run()
