"""Several browser sessions on Predict at once: each sees its own upload's prediction, the same as
`inference.predict_file` with the same run, never another session's file and never an exception.

Three Playwright contexts (separate Streamlit sessions) against one `streamlit run app.py`, each
uploading two different clips, the three sessions' uploads handed over together. A small version of
bench/load.py (which also times the answers); skipped where Chromium or playwright is absent.
"""
from __future__ import annotations

import re
import time

import numpy as np
import pytest

import appdata
from test_browser import CHROMIUM, server  # noqa: F401  (the module-scoped app server fixture)

SESSIONS = 3
FREQS = ((220.0, 2500.0), (880.0, 230.0), (2400.0, 900.0))  # per session: two clips of different pitch
ANSWER_JS = """(name) => {
  const captions = [...document.querySelectorAll('[data-testid="stCaptionContainer"]')].map(e => e.innerText);
  if (!captions.some(t => t.includes(name))) return null;
  return [...document.querySelectorAll('[data-testid="stAlert"]')].map(e => e.innerText)
           .find(t => t.includes('Predicted:')) || null;
}"""
IDLE_JS = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"


@pytest.fixture(scope="module")
def browser(server):  # noqa: F811
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                              args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        yield b
        b.close()


def test_store_stamp_follows_the_files_the_run_queries_read(tmp_path):
    """The Predict page's cached run list is keyed on store.store_stamp: it must change when a run
    appears, its results or weights are rewritten (atomically, as the store writes them)."""
    from audioclf import store

    root = tmp_path / "checkpoints"
    assert store.store_stamp(root) == ()
    run = store.Run(root / "cnn-abc")
    store.write_json(run.config_file, {})
    first = store.store_stamp(root)
    assert [row[0] for row in first] == ["cnn-abc"]
    steps = [lambda: run.write_results({"folds": {}}), lambda: store.write_json(run.history_file(2), []),
             lambda: store.atomic_write_bytes(run.weights_file(2), b"new weights")]
    seen = {first}
    for step in steps:
        time.sleep(0.01)
        step()
        stamp = store.store_stamp(root)
        assert stamp not in seen
        seen.add(stamp)
    assert store.store_stamp(root) == stamp  # nothing changed: the same key


@pytest.mark.browser
def test_sessions_see_their_own_predictions(server, browser, tmp_path):  # noqa: F811
    from audioclf.inference import load_ensemble, predict_file
    from audioclf.runs import default_run

    url, data = server
    run = default_run(data.checkpoints)  # the run the Predict page offers first
    ens = load_ensemble(run.path)
    clips = [[tmp_path / f"session{s}-clip{i}-{int(f)}hz.wav" for i, f in enumerate(freqs)]
             for s, freqs in enumerate(FREQS)]
    want = {}
    for paths, freqs in zip(clips, FREQS):
        for path, freq in zip(paths, freqs):
            path.write_bytes(appdata.wav_bytes(freq, seconds=2.0, sr=22050))
            res = predict_file(ens, path)
            best = int(np.argmax(res["ensemble"]))
            want[path.name] = (res["classes"][best], f"{res['ensemble'][best]:.2f}")

    pages = []
    for _ in range(SESSIONS):
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        page.set_default_timeout(60_000)
        page.goto(f"{url}/predict")
        page.get_by_role("heading", name="Predict").first.wait_for()
        page.locator('[data-testid="stFileUploader"]').first.wait_for()
        page.wait_for_function(IDLE_JS)
        pages.append(page)

    for i in range(2):
        for page, paths in zip(pages, clips):  # all sessions upload, then all wait: they run together
            page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(str(paths[i]))
        t0 = time.perf_counter()
        for s, (page, paths) in enumerate(zip(pages, clips)):
            name = paths[i].name
            text = page.wait_for_function(ANSWER_JS, arg=name, timeout=60_000).json_value()
            m = re.search(r"Predicted: (\S+) \(ensemble probability ([0-9.]+)\)", text)
            assert m, text
            assert (m.group(1), m.group(2)) == want[name], f"session {s}, {name}: page {m.groups()}, CLI {want[name]}"
            page.wait_for_function(IDLE_JS, timeout=60_000)
            assert page.get_by_text(f"run {run.name}").count() + page.get_by_text(run.name).count() > 0
            body = page.locator('[data-testid="stMain"]').inner_text()
            others = [p.name for j, ps in enumerate(clips) if j != s for p in ps]
            assert not [o for o in others if o in body], f"session {s} shows another session's file"
            errors = page.locator('[data-testid="stException"]').all_inner_texts()
            assert not errors, f"session {s}: exception on the page: {errors}"
        print(f"round {i + 1}: all {SESSIONS} answers within {time.perf_counter() - t0:.2f} s of the last upload")
    for page in pages:
        page.context.close()
