import subprocess
import sys
from pathlib import Path

import pytest

from audioclf.cli import main

from conftest import make_class_folders, write_clip

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "audioclf", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=300)


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    return err


def test_missing_data_folder(capsys, tmp_path):
    assert main(["train", "--data", str(tmp_path / "missing"), "--epochs", "1"]) == 2
    assert "missing: dataset folder not found" in one_line_error(capsys)


def test_csv_without_needed_columns(capsys, tmp_path):
    (tmp_path / "d" / "meta").mkdir(parents=True)
    (tmp_path / "d" / "meta" / "esc50.csv").write_text("filename,fold\nx.wav,1\n")
    assert main(["train", "--data", str(tmp_path / "d")]) == 2
    assert "esc50.csv: missing column(s) target, category, esc10" in one_line_error(capsys)


def test_unknown_model(capsys, tmp_path):
    assert main(["train", "--data", str(tmp_path), "--model", "resnet"]) == 2
    assert "unknown model 'resnet'" in one_line_error(capsys)


def test_predict_with_a_folder_that_is_not_a_run(capsys, tmp_path):
    write_clip(tmp_path / "a.wav", 440)
    assert main(["predict", str(tmp_path / "a.wav"), "--run", str(tmp_path)]) == 2
    assert "not a run folder (no config.json)" in one_line_error(capsys)


def test_predict_needs_a_trained_run(capsys, tmp_path):
    write_clip(tmp_path / "a.wav", 440)
    assert main(["predict", str(tmp_path / "a.wav"), "--checkpoints", str(tmp_path / "none")]) == 2
    assert "no trained run" in one_line_error(capsys)


def test_train_predict_info_end_to_end(tmp_path, capsys):
    data = make_class_folders(tmp_path / "tiny", per_class=5, seconds=1.0)
    ck = tmp_path / "ck"
    # the report's preprocessing (5 s at 16 kHz) on 1 s clips: they are zero-padded
    assert main(["train", "--data", str(data), "--checkpoints", str(ck), "--epochs", "1", "--folds", "2",
                 "--batch-size", "8", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "| fold 2 | 1 |" in out and "ensemble" in out
    assert main(["train", "--data", str(data), "--checkpoints", str(ck), "--epochs", "1", "--folds", "2",
                 "--batch-size", "8", "--quiet", "--hide-test"]) == 0  # trained: loaded, printed blind
    blind = capsys.readouterr().out
    assert "| fold 2 | 1 |" in blind and "val acc |" in blind and "test figures not shown" in blind
    assert not any(word in blind for word in ("test acc", "F1", "ensemble", "test fold"))
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "junk.wav").write_bytes(b"this is not audio" * 50)
    good = write_clip(tmp_path / "clip.wav", 880, seconds=7.0, sr=22050, channels=2)
    status = main(["predict", str(good), str(tmp_path / "empty.wav"), str(tmp_path / "junk.wav"),
                   "--checkpoints", str(ck), "--top-k", "2"])
    captured = capsys.readouterr()
    assert status == 2  # some files failed, the good one was still classified
    assert "ensemble:" in captured.out and "fold2:" in captured.out
    assert "answer:" in captured.out  # the verdict: a class, or "not sure" and why
    assert "windows: 2 of 2 are within 3 dB of the loudest and make the answer: 0–5 s, 2.5–7 s" in captured.out
    assert "empty.wav: the file is empty" in captured.err and "junk.wav: cannot decode audio" in captured.err
    assert "Traceback" not in captured.err
    assert main(["predict", str(good), "--checkpoints", str(ck), "--top-k", "1", "--timeline"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if " dB  " in ln]  # one per window
    assert [ln.split()[:2] for ln in lines] == [["*", "0–5"], ["*", "2.5–7"]]
    assert main(["info", "--checkpoints", str(ck)]) == 0
    info = capsys.readouterr().out
    assert "540,682" in info and "cached runs" in info and "folds [2]" in info
    from audioclf.store import list_runs

    run = list_runs(ck)[0].name
    assert "default run for each class set" in info and f"  tiny       {run} " in info  # what predict uses
    assert "★" not in info  # a store of one's own ships nothing; listed in REFERENCE.json, a run is marked
    (ck / "REFERENCE.json").write_text('{"runs": {"cnn": {"folder": "%s"}}}' % run)
    assert main(["info", "--checkpoints", str(ck)]) == 0
    marked = [ln for ln in capsys.readouterr().out.splitlines() if "★ shipped" in ln]
    assert len(marked) == 2 and "`delete` keeps them" in marked[0] and marked[1].startswith(f"  {run} ")


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "info", "download"])
def test_every_command_has_help(command):
    result = run_cli(command, "--help")
    assert result.returncode == 0 and "usage: audioclf " + command in result.stdout


def test_module_entry_point_reports_errors_without_traceback(tmp_path):
    result = run_cli("train", "--data", str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert result.stderr.strip().endswith("nowhere: dataset folder not found") and "Traceback" not in result.stderr


@pytest.mark.parametrize("args", [["info"], ["--help"]])
def test_a_reader_that_stops_early_gets_no_traceback(args):
    """`python -m audioclf info | head -1`: the reader has gone before the output is written."""
    proc = subprocess.Popen([sys.executable, "-m", "audioclf", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=ROOT)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) in (0, 1)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


@pytest.mark.parametrize("args, message", [
    (["--device", "gpu"], "unknown device 'gpu'"),
    (["--model", "transformer", "--heads", "3"], "--heads: 3 heads do not divide the token width 64"),
    (["--folds", "1"], "--folds: [1] are not cross-validation folds [2, 3, 4, 5]"),
    (["--cv-folds", "2", "9"], "fold(s) [9] not in the dataset"),
])
def test_bad_training_settings_are_one_line_errors(args, message, capsys, tmp_path):
    data = make_class_folders(tmp_path / "tiny", per_class=5)
    assert main(["train", "--data", str(data), "--epochs", "1", *args]) == 2
    assert message in one_line_error(capsys)


def test_predict_a_folder_of_phone_recordings(esc10_dir, tmp_path, capsys):
    """A folder is its audio files, sub-folders too; a phone's m4a, a browser's webm and a phone call's AMR
    of one clip get the answer of its wav through the shipped default model."""
    import csv

    import soundfile as sf

    from audioclf.audio import encode, load_audio
    from audioclf.features import resample, to_mono

    row = next(r for r in csv.DictReader(open(esc10_dir / "meta" / "esc50.csv"))
               if r["category"] == "dog" and r["fold"] == "1")
    data, sr = load_audio(esc10_dir / "audio" / row["filename"])
    mono = to_mono(data)
    folder = tmp_path / "recordings"
    (folder / "phone").mkdir(parents=True)
    sf.write(folder / "dog.wav", mono.numpy(), sr)
    (folder / "phone" / "dog.m4a").write_bytes(encode(mono.numpy()[None], sr, "m4a", 64_000))
    (folder / "phone" / "dog.webm").write_bytes(encode(resample(mono, sr, 48000).numpy()[None], 48000, "webm"))
    (folder / "phone" / "dog.amr").write_bytes(encode(resample(mono, sr, 8000).numpy()[None], 8000, "amr"))
    (folder / "notes.txt").write_text("not audio")
    (folder / "phone" / "broken.m4a").write_bytes(b"\x00\x00\x00\x18ftypM4A " + b"\x01" * 300)
    (tmp_path / "empty").mkdir()
    table = tmp_path / "answers.csv"
    status = main(["predict", str(folder), str(tmp_path / "empty"), "--checkpoints", str(ROOT / "checkpoints"),
                   "--top-k", "1", "--csv", str(table)])
    out, err = capsys.readouterr()
    assert status == 2 and "empty: no audio files in this folder" in err and "Traceback" not in err
    assert "broken.m4a: cannot decode audio" in err
    rows = list(csv.DictReader(open(table)))
    assert [Path(r["file"]).name for r in rows] == ["dog.wav", "broken.m4a", "dog.amr", "dog.m4a", "dog.webm"]
    assert "cannot decode audio" in rows[1]["error"] and not rows[1]["answer"]
    assert len({r["top"].split()[0] for r in rows if not r["error"]}) == 1 and float(rows[0]["seconds"]) > 4
    assert main(["predict", str(folder / "dog.wav"), "--checkpoints", str(ROOT / "checkpoints"),
                 "--csv", str(tmp_path / "no" / "such" / "folder.csv")]) == 2
    assert "folder.csv: cannot write (No such file or directory)" in capsys.readouterr().err
    blocks = [b for b in out.split("\n\n")[1:] if not b.startswith("wrote ")]
    assert [b.splitlines()[0].split("  (")[0] for b in blocks] == [
        str(folder / "dog.wav"), str(folder / "phone" / "dog.amr"), str(folder / "phone" / "dog.m4a"),
        str(folder / "phone" / "dog.webm")]
    answers = [next(line for line in b.splitlines() if "ensemble:" in line).split()[1] for b in blocks]
    assert len(set(answers)) == 1, answers


def test_a_configs_command_line_gives_the_config_back():
    """What the app's job launcher relies on (`TrainConfig.to_args`, `audioclf.jobs`): every setting survives."""
    from audioclf.cli import build_parser, config_from_args
    from audioclf.config import TrainConfig

    for config in (TrainConfig(model="transformer", heads=2),
                   TrainConfig(model="logmel-cnn", epochs=7, lr=0.002, seed=3, ema=0.99, label_smoothing=0.1,
                               augment="recipe-room", weight_decay=0.01, batch_size=16, cv_folds=(2, 3, 4))):
        args = build_parser().parse_args(["train", *config.to_args()])
        assert config_from_args(args) == config
