import numpy as np
import pytest

from audioclf.metrics import classification_report, mean_std, summarise_folds


def test_report_on_a_small_known_case():
    y = np.array([0, 0, 1, 1, 2, 2])
    proba = np.array([[.8, .1, .1], [.2, .7, .1], [.1, .8, .1], [.1, .6, .3], [.1, .1, .8], [.5, .2, .3]])
    r = classification_report(y, proba, ["a", "b", "c"])
    assert r["accuracy"] == pytest.approx(4 / 6)
    assert r["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert r["per_class"]["b"] == {"precision": pytest.approx(2 / 3), "recall": 1.0,
                                   "f1": pytest.approx(0.8), "support": 2}
    assert r["macro_f1"] == pytest.approx(np.mean([0.5, 0.8, 2 / 3]))
    assert r["roc"]["a"]["auc"] == pytest.approx(0.875)  # 'a' outranks 7 of the 8 negative pairs
    assert r["macro_auc"] == pytest.approx(np.mean([c["auc"] for c in r["roc"].values()]))


def test_mean_std_uses_the_sample_deviation():
    s = mean_std([0.5, 0.6, 0.7])
    assert s["mean"] == pytest.approx(0.6) and s["std"] == pytest.approx(0.1) and s["n"] == 3
    # t(0.975, 2) = 4.303: half-width 4.303 * 0.1 / sqrt(3)
    assert s["ci95"] == pytest.approx([0.6 - 0.24843, 0.6 + 0.24843], abs=1e-4)


def test_summary_across_folds():
    y = np.array([0, 1, 0, 1])
    good = classification_report(y, np.eye(2)[y], ["x", "y"])
    bad = classification_report(y, np.eye(2)[1 - y], ["x", "y"])
    s = summarise_folds({2: good, 3: bad})
    assert s["accuracy"]["mean"] == pytest.approx(0.5) and s["accuracy"]["values"] == [1.0, 0.0]
    assert s["per_class_f1"]["x"]["mean"] == pytest.approx(0.5)


def test_unsure_threshold_is_the_lowest_confidence_that_keeps_the_target():
    from audioclf.confidence import choose_threshold, coverage, target_for, verdict

    assert target_for([True] * 92 + [False] * 8) == pytest.approx(0.96) and target_for([True, False]) == 0.9

    conf = [0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    ok = [True, True, True, True, False, True, False]
    t = choose_threshold(conf, ok, target=0.8)  # top 6: 5 of 6 right (0.83); top 7: 5 of 7 (0.71)
    assert t == 0.5
    c = coverage(conf, ok, t)
    assert c["answered"] == 6 / 7 and abs(c["accuracy_answered"] - 5 / 6) < 1e-12
    assert choose_threshold([0.9, 0.8], [False, False]) == 1.0  # nothing meets the target: never sure
    sure = verdict(np.array([0.1, 0.8, 0.1]), [np.array([0, 1, 0])] * 3, threshold=0.5)
    assert sure["sure"] and sure["top"] == 1
    low = verdict(np.array([0.3, 0.4, 0.3]), [np.array([0, 1, 0])] * 3, threshold=0.5)
    assert not low["sure"] and "below 0.50" in low["reasons"][0]
    split = verdict(np.array([0.1, 0.8, 0.1]), [np.array([1, 0, 0])] * 3 + [np.array([0, 1, 0])], threshold=0.5)
    assert not split["sure"] and "only 1 of its 4 fold models" in split["reasons"][0]


def test_top_confusions_and_a_50_class_matrix_stay_readable():
    from audioclf import plots, runs

    classes = [f"class{i}" for i in range(50)]
    m = np.eye(50, dtype=int) * 6
    m[3, 7], m[10, 2], m[3, 9] = 2, 1, 1
    top = runs.top_confusions({"confusion": m.tolist()}, classes, k=2)
    assert [(t["true"], t["taken for"], t["clips"]) for t in top] == [("class3", "class7", 2), ("class10", "class2", 1)]
    fig = plots.confusion_figure(m.tolist(), classes)
    assert fig.layout.height >= 16 * 50 and fig.data[0].texttemplate is None  # a line per class, no crammed numbers
    small = plots.confusion_figure(np.eye(3, dtype=int).tolist(), classes[:3])
    assert small.data[0].texttemplate == "%{text}"
