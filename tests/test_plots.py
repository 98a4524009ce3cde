"""The Predict page's top-classes bars (plain HTML, not a plotly figure)."""
import re

import numpy as np

from audioclf.plots import proba_bars_html


def test_top_classes_bars_order_widths_and_escaping():
    classes = ["dog", "<img src=x onerror=alert(1)>", "rain", "clock"]
    per_model = {"fold 2": np.array([0.1, 0.6, 0.2, 0.1]), "fold 3": np.array([0.3, 0.5, 0.1, 0.1]),
                 "ensemble": np.array([0.2, 0.55, 0.15, 0.1])}
    html = proba_bars_html(per_model, classes, k=3)
    assert "<img" not in html and "&lt;img src=x" in html  # a folder name cannot inject markup
    shown = re.findall(r'title="ensemble: (\d\.\d\d)"', html)
    assert shown == ["0.55", "0.20", "0.15"]  # the ensemble's top 3, best first; clock left out
    assert "clock" not in html
    widths = [float(w) for w in re.findall(r"width:([\d.]+)%", html)]
    assert widths[:3] == [round(0.55 * 85, 1), round(0.6 * 85, 1), round(0.5 * 85, 1)]  # the ensemble's bar first, then each fold's
    assert html.count('title="fold 2: ') == html.count('title="fold 3: ') == 3
