import csv
import os
import time
from pathlib import Path

import pytest
import torch

from audioclf.config import PrepConfig
from audioclf.data import ESC10_CLASSES, FOLDS_FILE, DataError, open_dataset, subsets_offered
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
    assert len(ds.warnings) == 1 and "4 of ESC-50's 50 classes" in ds.warnings[0]  # part of ESC-50 only: said
    assert "3 of ESC-10's 10 classes" in open_dataset(tmp_path / "esc", "esc10").warnings[0]


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


def test_a_short_sound_is_prepared_repeated_not_trailing_into_silence(tmp_path):
    """What training reads of a 0.3 s clip in 1 s: the clip three and a third times (bench/short_teach.py);
    the app's view of a clip (`features.waveform`) reads it the same way."""
    from audioclf.audio import load_audio
    from audioclf.features import waveform

    write_clip(tmp_path / "d" / "a" / "x.wav", 1000, seconds=0.3, sr=8000)
    write_clip(tmp_path / "d" / "b" / "y.wav", 1000, seconds=0.6, sr=8000)
    p = build(open_dataset(tmp_path / "d", n_folds=1), TINY_PREP)
    short, longer = p.waves
    assert short.abs()[2400:].max() > 0.3 and torch.allclose(short[2400:4800], short[:2400], atol=1e-6)
    assert longer[4900:].abs().max() < 1e-6  # over half the length: zero-padded, as ESC-50 pads
    assert torch.equal(waveform(*load_audio(tmp_path / "d" / "a" / "x.wav"), TINY_PREP), short)


def test_a_long_recording_is_prepared_from_where_the_sound_is(tmp_path):
    """A 4 s recording of a 1 s clip length, quiet but for a tone from 2.5 to 3.5 s: its loudest second is read,
    not its first (bench/long_teach.py); a clip of 1.4 lengths is read from its start, as ESC-50 reads its own."""
    import numpy as np
    import soundfile as sf

    from audioclf.audio import load_audio
    from audioclf.features import waveform

    sr = 8000
    t = np.arange(4 * sr) / sr
    rec = 0.001 * np.sin(2 * np.pi * 200 * t)
    rec[int(2.5 * sr):int(3.5 * sr)] += 0.5 * np.sin(2 * np.pi * 1000 * t[int(2.5 * sr):int(3.5 * sr)])
    for cls, wave in (("long", rec), ("near", rec[int(1.6 * sr):int(3.0 * sr)])):  # 4 s; 1.4 s
        (tmp_path / "d" / cls).mkdir(parents=True)
        sf.write(tmp_path / "d" / cls / "x.wav", wave.astype(np.float32), sr)
    long_, near = build(open_dataset(tmp_path / "d", n_folds=1), TINY_PREP).waves  # (classes in name order)
    assert long_.abs().max() > 0.4 and (long_.abs() > 0.3).float().mean() > 0.5  # the tone, not the hum
    assert near[:int(0.85 * sr)].abs().max() < 0.01 and near[int(0.95 * sr):].abs().max() > 0.3  # its first second
    assert torch.equal(waveform(*load_audio(tmp_path / "d" / "long" / "x.wav"), TINY_PREP), long_)


# --- dataset checks (issue 10, item 7): the file, the row and the problem --------------------------

def write_meta(root: Path, rows: list[list[str]], header=HEADER[:5]) -> Path:
    """meta/esc50.csv with rows as given (strings, unchecked) and a clip for each plain file name."""
    (root / "meta").mkdir(parents=True, exist_ok=True)
    with (root / "meta" / "esc50.csv").open("w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    for row in rows:
        if row[0] and "/" not in row[0] and "\\" not in row[0]:
            write_clip(root / "audio" / row[0], 440)
    return root


GOOD = [["a.wav", "1", "0", "dog", "True"], ["b.wav", "2", "41", "chainsaw", "True"]]


@pytest.mark.parametrize("bad, message", [
    (["c.wav", "abc", "0", "dog", "True"], r"esc50\.csv row 4: fold 'abc' is not a whole number"),
    (["c.wav", "2.5", "0", "dog", "True"], r"row 4: fold '2\.5' is not a whole number"),
    (["c.wav", "0", "0", "dog", "True"], r"row 4: fold '0' must be 1 or more"),
    (["c.wav", "", "0", "dog", "True"], r"row 4: no value in column 'fold'"),
    (["c.wav", "1", "dog", "dog", "True"], r"row 4: target 'dog' is not a whole number"),
    (["c.wav", "1", "-3", "dog", "True"], r"row 4: target '-3' must be 0 or more"),
    (["c.wav", "1", "0", "", "True"], r"row 4: no value in column 'category'"),
    (["c.wav", "1", "0", "dog", "yes"], r"row 4: esc10 'yes' is neither True nor False"),
    (["c.wav", "1"], r"row 4: no value in column 'target'"),  # a short row
], ids=["fold-abc", "fold-fraction", "fold-0", "fold-empty", "target-text", "target-negative", "no-category",
        "esc10-flag", "short-row"])
def test_bad_csv_values_name_the_file_and_row(tmp_path, bad, message):
    root = write_meta(tmp_path / "esc", GOOD + [bad])
    for subset in ("esc10", "esc50"):
        with pytest.raises(DataError, match=message):
            open_dataset(root, subset)


@pytest.mark.parametrize("other", ["Dog", "dog ", " DOG", "Dog_"])
def test_near_duplicate_categories_are_refused_naming_both(tmp_path, other):
    root = write_meta(tmp_path / "esc", GOOD + [["c.wav", "3", "0", other, "True"]])
    with pytest.raises(DataError, match=rf"class names 'dog' \(row 2\) and {other!r} \(row 4\) differ only"):
        open_dataset(root, "esc50")


def test_underscore_and_space_spellings_are_the_same_class(tmp_path):
    root = write_meta(tmp_path / "esc", [["a.wav", "1", "3", "sea_waves", "True"],
                                         ["b.wav", "1", "4", "sea waves", "True"]])
    with pytest.raises(DataError, match="'sea_waves' .* and 'sea waves' .* differ only in case, spaces or underscores"):
        open_dataset(root, "esc50")


def test_unknown_class_in_esc10_is_refused(tmp_path):
    root = write_meta(tmp_path / "esc", GOOD + [["c.wav", "3", "7", "doggo", "True"]])
    with pytest.raises(DataError, match=r"row 4: 'doggo' is not an ESC-10 class \(dog, rooster"):
        open_dataset(root, "esc10")
    assert open_dataset(root, "esc50").classes == ("dog", "doggo", "chainsaw")  # ESC-50 takes any category


def test_subsets_offered_are_those_the_csv_tells_apart(tmp_path):
    assert subsets_offered(write_meta(tmp_path / "both", GOOD + [["c.wav", "1", "5", "cat", "False"]])) == (
        "esc10", "esc50")
    assert subsets_offered(write_meta(tmp_path / "esc10", GOOD)) == ("esc10",)  # its "ESC-50" is the same rows
    assert subsets_offered(write_meta(tmp_path / "own", [["c.wav", "1", "5", "cat", "False"]])) == ("esc50",)
    assert subsets_offered(write_meta(tmp_path / "noflag", [["c.wav", "1", "5", "cat"]], header=HEADER[:4])) == (
        "esc50",)
    assert subsets_offered(tmp_path / "nothing") == ()
    assert open_dataset(tmp_path / "own", "esc50").classes == ("cat",)  # and the one offered opens
    with pytest.raises(DataError, match=r"no rows for subset esc10; no row is marked esc10 True: use the subset esc50"):
        open_dataset(tmp_path / "own", "esc10")  # the CLI's default subset says what to choose instead


def test_two_categories_sharing_a_target_are_refused(tmp_path):
    root = write_meta(tmp_path / "esc", GOOD + [["c.wav", "3", "0", "cat", "False"]])
    with pytest.raises(DataError, match=r"row 4: target 0 is 'cat' here but 'dog' in row 2"):
        open_dataset(root, "esc50")
    root = write_meta(tmp_path / "esc2", GOOD + [["c.wav", "3", "7", "dog", "True"]])
    with pytest.raises(DataError, match=r"row 4: category 'dog' has target 7, but target 0 in row 2"):
        open_dataset(root, "esc50")


@pytest.mark.parametrize("name", ["../outside.wav", "sub/../../outside.wav", "/etc/passwd", "..\\outside.wav",
                                  "C:\\x.wav", ""])
def test_file_names_outside_the_audio_folder_are_refused(tmp_path, name):
    write_clip(tmp_path / "esc" / "outside.wav", 440)
    root = write_meta(tmp_path / "esc", GOOD + [[name, "3", "0", "dog", "True"]])
    with pytest.raises(DataError, match=r"esc50\.csv row 4: file name .* outside the audio/ folder"):
        open_dataset(root)


def test_a_link_out_of_the_audio_folder_is_refused(tmp_path):
    secret = write_clip(tmp_path / "elsewhere" / "secret.wav", 440)
    root = write_meta(tmp_path / "esc", GOOD + [["link.wav", "3", "0", "dog", "True"]])
    (root / "audio" / "link.wav").unlink()
    (root / "audio" / "link.wav").symlink_to(secret)
    with pytest.raises(DataError, match=r"row 4: file name 'link.wav' leads outside the audio/ folder"):
        open_dataset(root)


def test_near_duplicate_class_folders_are_refused(tmp_path):
    root = make_class_folders(tmp_path / "mine", classes=("dog", "rain"), per_class=5)
    write_clip(root / "Dog" / "x.wav", 300)
    with pytest.raises(DataError, match=r"class names 'Dog' \(folder Dog/\) and 'dog' \(folder dog/\)"):
        open_dataset(root)


def test_a_class_smaller_than_the_folds_is_trained_on_and_reported(tmp_path):
    root = make_class_folders(tmp_path / "mine", classes=("low", "mid"), per_class=10)
    write_clip(root / "rare" / "one.wav", 300)
    write_clip(root / "pair" / "a.wav", 310)
    write_clip(root / "pair" / "b.wav", 320)
    ds = open_dataset(root)
    folds = {ds.classes[c.label]: [] for c in ds.clips}
    for c in ds.clips:
        folds[ds.classes[c.label]].append(c.fold)
    assert folds["rare"] == [2] and sorted(folds["pair"]) == [2, 3]  # never the test fold alone
    assert sorted(folds["low"]) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert len(ds.warnings) == 2
    assert any("rare: 1 clip(s), fewer than the 5 folds; put in fold(s) 2, none in the test fold 1" in w
               for w in ds.warnings)
    assert open_dataset(root).warnings == ds.warnings  # recorded folds, same report


def test_a_read_only_class_folder_opens_with_folds_in_memory(tmp_path, monkeypatch):
    root = make_class_folders(tmp_path / "mine", per_class=5)

    def refuse(src, dst):
        raise PermissionError(30, "Read-only file system", str(dst))

    monkeypatch.setattr("audioclf.data.os.replace", refuse)  # root ignores chmod: refuse the write itself
    ds = open_dataset(root)
    assert len(ds) == 15 and ds.folds == (1, 2, 3, 4, 5)
    assert not (root / FOLDS_FILE).exists() and sorted(p.name for p in root.iterdir()) == ["high", "low", "mid"]
    [warning] = ds.warnings
    assert f"{root / FOLDS_FILE}: cannot be written (Read-only file system)" in warning
    assert "computed in memory" in warning
    monkeypatch.undo()
    assert {c.path: c.fold for c in open_dataset(root).clips} == {c.path: c.fold for c in ds.clips}


def test_a_bad_fold_record_names_the_file_and_row(tmp_path):
    root = make_class_folders(tmp_path / "mine", per_class=5)
    open_dataset(root)
    lines = (root / FOLDS_FILE).read_text().splitlines()
    lines[3] = lines[3].rsplit(",", 1)[0] + ",abc"
    (root / FOLDS_FILE).write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=rf"{FOLDS_FILE} row 4: fold 'abc' is not a whole number"):
        open_dataset(root)


def test_real_esc10_and_esc50_pass_the_checks(esc10_dir):
    assert len(open_dataset(esc10_dir, "esc10")) == 400 and open_dataset(esc10_dir, "esc10").warnings == ()
    esc50 = esc10_dir.parent / "esc50"
    if (esc50 / "meta" / "esc50.csv").is_file():
        ds = open_dataset(esc50, "esc50")
        assert len(ds) == 2000 and len(ds.classes) == 50 and ds.warnings == ()


# --- data roots: the only folders the app may open (issue 10, item 3) ------------------------------

def test_data_roots_default_and_setting(tmp_path, monkeypatch):
    from audioclf.roots import data_roots

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AUDIOCLF_DATA_ROOTS", raising=False)
    monkeypatch.delenv("AUDIOCLF_DATA", raising=False)
    assert data_roots() == (tmp_path / "data",)
    monkeypatch.setenv("AUDIOCLF_DATA", str(tmp_path / "x" / "esc50"))
    assert data_roots() == (tmp_path / "data", tmp_path / "x" / "esc50")
    monkeypatch.setenv("AUDIOCLF_DATA_ROOTS", os.pathsep.join(["a", "", str(tmp_path / "b"), "a"]))
    assert data_roots() == (tmp_path / "a", tmp_path / "b")


def test_paths_outside_the_roots_are_refused(tmp_path):
    from audioclf.roots import resolve_under_roots

    roots = (tmp_path / "data", tmp_path / "more")
    (tmp_path / "data" / "mine").mkdir(parents=True)
    (tmp_path / "secret").mkdir()
    (tmp_path / "data" / "escape").symlink_to(tmp_path / "secret")
    assert resolve_under_roots("mine", roots) == tmp_path / "data" / "mine"  # relative: inside the first root
    assert resolve_under_roots(tmp_path / "more" / "x" / ".." / "y", roots) == tmp_path / "more" / "y"
    assert resolve_under_roots(tmp_path / "data", roots) == tmp_path / "data"
    for bad in ("../secret", "mine/../../secret", str(tmp_path / "secret"), "escape", "escape/sub", "/",
                str(tmp_path / "data-other")):
        with pytest.raises(DataError, match=r"not inside the allowed data folders .*AUDIOCLF_DATA_ROOTS"):
            resolve_under_roots(bad, roots)
    with pytest.raises(DataError, match=rf"^escape: it is a link to {tmp_path / 'secret'}, not inside the allowed"):
        resolve_under_roots("escape", roots)  # a link in a root says where it leads
    with pytest.raises(DataError, match=r"^\.\./secret: not inside"):
        resolve_under_roots("../secret", roots)


def test_dataset_choices_lists_datasets_under_the_roots_only(tmp_path):
    from audioclf.roots import dataset_choices

    data, own = tmp_path / "data", tmp_path / "own"
    make_esc_layout(data / "esc50")
    make_class_folders(data / "mine", per_class=1)
    write_clip(data / "not-a-dataset" / "x.wav", 300)
    make_class_folders(own, per_class=1)  # a root that is itself a dataset
    make_class_folders(tmp_path / "outside", per_class=1)
    (data / "link").symlink_to(tmp_path / "outside")
    assert dataset_choices((data, own, tmp_path / "missing")) == [data / "esc50", data / "mine", own]
