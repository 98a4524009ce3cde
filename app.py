"""audioclf app: placeholder until the pages land."""
import streamlit as st

st.title("audioclf")
st.write("Environmental sound classification. The app's pages are being built.")
