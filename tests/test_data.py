import csv
import os
import time
from pathlib import Path

import pytest
import torch

from audioclf.config import PrepConfig
from audioclf.data import ESC10_CLASSES, FOLDS_FILE, DataError, open_dataset
from audioclf.prepare import build, cache_path, prepare

from conftest import TINY_PREP, make_class_folders, write_clip

HEADER = ["filename", "fold", "target", "category", "esc10", "src_file", "take"]
ESC_ROWS = [("a.wav", 1, 0, "dog", "True"), ("b.wav", 2, 41, "chainsaw", "True"),
            ("c.wav", 3, 10, "rain", "True"), ("d.wav", 1, 5, "cat", "False")]


def make_esc_layout(root: Path, rows=ESC_ROWS, header=HEADER) -> Path:
    (root / "meta").mkdir(parents=True)
    with (root / "meta" / "esc50.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for name, fold, target, cat, esc10 in rows:
            w.writerow([name, fold, target, cat, esc10, "1", "A"][: len(header)])
            write_clip(root / "audio" / name, 440 + target)
    return root


def test_esc10_subset_renumbers_labels_in_documented_order(tmp_path):
    ds = open_dataset(make_esc_layout(tmp_path / "esc"), "esc10")
    assert ds.classes == ("dog", "rain", "chainsaw")  # ESC10_CLASSES order, only those present
    assert [c.path.name for c in ds.clips] == ["a.wav", "b.wav", "c.wav"]
    assert [ds.classes[c.label] for c in ds.clips] == ["dog", "chainsaw", "rain"]
    assert ESC10_CLASSES.index("rain") < ESC10_CLASSES.index("chainsaw")


def test_esc50_subset_keeps_all_rows_and_target_order(tmp_path):
    ds = open_dataset(make_esc_layout(tmp_path / "esc"), "esc50")
    assert ds.classes == ("dog", "cat", "rain", "chainsaw")
    assert len(ds) == 4 and sorted(c.fold for c in ds.clips) == [1, 1, 2, 3]


def test_csv_without_needed_columns_names_the_file(tmp_path):
    root = make_esc_layout(tmp_path / "esc", header=["filename", "fold", "category"])
    with pytest.raises(DataError, match=r"esc50\.csv: missing column\(s\) target"):
        open_dataset(root)


def test_missing_audio_is_reported_with_a_count(tmp_path):
    root = make_esc_layout(tmp_path / "esc")
    (root / "audio" / "b.wav").unlink()
    with pytest.raises(DataError, match="1 of the 3 esc10 files .* missing .*b.wav"):
        open_dataset(root)


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        open_dataset(tmp_path / "nope")


def test_class_folders_get_stratified_folds_that_never_change(tmp_path):
    root = make_class_folders(tmp_path / "mine", per_class=10)
    ds = open_dataset(root)
    assert ds.classes == ("high", "low", "mid")
    assert ds.folds == (1, 2, 3, 4, 5)
    for label in range(3):  # 10 clips per class over 5 folds: 2 per fold
        folds = [c.fold for c in ds.clips if c.label == label]
        assert sorted(folds) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert (root / FOLDS_FILE).is_file()
    first = {c.path.name: c.fold for c in ds.clips}
    write_clip(root / "low" / "zz_new.wav", 300)
    again = {c.path.name: c.fold for c in open_dataset(root).clips}
    assert {k: again[k] for k in first} == first  # earlier clips keep their folds
    assert "zz_new.wav" in again


def test_class_folders_need_two_classes(tmp_path):
    write_clip(tmp_path / "only" / "one" / "x.wav", 300)
    with pytest.raises(DataError, match="at least two class sub-folders"):
        open_dataset(tmp_path / "only")


def test_prepared_cache_hits_and_misses(tmp_path, monkeypatch):
    root = make_class_folders(tmp_path / "mine", per_class=5)
    ds = open_dataset(root)
    first = prepare(ds, TINY_PREP)
    assert first.waves.shape == (15, 8000) and first.labels.tolist() == [c.label for c in ds.clips]
    path = cache_path(ds, TINY_PREP)
    assert path.is_file()

    def no_build(*a, **k):
        raise AssertionError("decoded again although cached")

    monkeypatch.setattr("audioclf.prepare.build", no_build)
    assert torch.equal(prepare(ds, TINY_PREP).waves, first.waves)  # hit: nothing decoded
    other_prep = PrepConfig(sample_rate=4000, duration=1.0, window=2000, hop=1000)
    assert cache_path(ds, other_prep) != path  # new parameters, new entry
    clip = ds.clips[0].path
    os.utime(clip, (time.time() + 5, time.time() + 5))
    assert cache_path(open_dataset(root), TINY_PREP) != path  # touched file, new entry


def test_prepared_waves_are_resampled_mono_at_the_target_rate(tmp_path):
    write_clip(tmp_path / "d" / "a" / "x.wav", 1000, seconds=0.5, sr=22050, channels=2)
    write_clip(tmp_path / "d" / "b" / "y.wav", 1000, seconds=2.0, sr=8000)
    p = build(open_dataset(tmp_path / "d", n_folds=1), TINY_PREP)
    assert p.waves.shape == (2, 8000)
    assert p.waves[0, 4100:].abs().max() < 1e-6  # 0.5 s clip zero-padded to 1 s
    assert p.waves[1].abs().max() > 0.3
