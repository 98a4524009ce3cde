"""Command line: `python -m audioclf {train,evaluate,calibrate,predict,export,info,delete,download} ...`."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import ConfigError, UserError


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        print("audioclf: interrupted; finished epochs and folds are kept and resume on the next run",
              file=sys.stderr)
        return 130
    except ConfigError as e:
        print(f"audioclf: error: --{e.field.replace('_', '-')}: {e.problem}", file=sys.stderr)
        return 2
    except (UserError, FileNotFoundError) as e:
        print(f"audioclf: error: {e}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="audioclf", description="Environmental sound classification on ESC-10/ESC-50.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train the fold models of a config (cached; resumes)",
                       description="Cross-validated training. A config that is already trained loads from the cache.")
    _data_args(t)
    _config_args(t)
    t.add_argument("--folds", type=int, nargs="+", help="validation folds to train now (default: all)")
    t.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N, mps")
    t.add_argument("--quiet", action="store_true", help="no progress bars")
    t.add_argument("--hide-test", action="store_true",
                   help="print validation figures only, none of the test fold's (they are still written to the "
                        "run's results.json): for choosing a recipe without seeing the test fold")
    t.add_argument("--spread-folds", action="store_true",
                   help="under torchrun: give each process whole folds instead of a slice of every batch")
    t.add_argument("--folds-at-once", action="store_true",
                   help="on one GPU: train the fold models side by side in this process (faster; not reproducible "
                        "bit for bit, and the progress shows whole fold models only)")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="evaluate a trained run on the test fold",
                       description="Re-evaluate a run's fold models on the test fold and print the per-fold table.")
    _data_args(e)
    e.add_argument("--run", type=Path, help="run folder (default: the config given by the options below)")
    _config_args(e)
    e.add_argument("--which", choices=["best", "final"], default="best", help="which weights of each fold")
    e.add_argument("--device", default="auto")
    e.set_defaults(func=cmd_evaluate)

    c = sub.add_parser("calibrate", help="measure a run's int8 ranges, for faster prediction on a CPU",
                       description="Measure, on each fold model's training clips, the activation ranges that int8 "
                                   "prediction on a CPU needs (runs trained since audioclf 2026-11-29 have them).")
    _data_args(c)
    c.add_argument("--run", type=Path, required=True, help="run folder")
    c.set_defaults(func=cmd_calibrate)

    pr = sub.add_parser("predict", help="classify audio files with a run's fold models and ensemble",
                        description="Top-k classes with probabilities from each fold model and the ensemble.")
    pr.add_argument("files", nargs="+", type=Path, help="audio files (wav, flac, ogg, mp3, m4a, webm, amr, ...), or folders of them")
    pr.add_argument("--run", type=Path, help="run folder (default: the best complete run, by validation accuracy, "
                    "of --data-name), or an exported .onnx file")
    pr.add_argument("--timeline", action="store_true",
                    help="for a recording longer than one clip, also print what each 5 s window heard")
    pr.add_argument("--data-name", help="whose best run to use: esc10 (default), esc50, or a class folder's name")
    pr.add_argument("--onnx", type=Path, help="an exported model (`export`) to run with onnxruntime instead of torch")
    pr.add_argument("--precision", choices=["auto", "fp32"], default="auto",
                    help="auto: bf16 for a bf16-trained run where the CPU or GPU has it, else int8 convolutions "
                         "on a CPU where the run has its ranges (`calibrate`; both faster); fp32: exact")
    pr.add_argument("--checkpoints", type=Path, help="checkpoint store (default: $AUDIOCLF_CHECKPOINTS or ./checkpoints)")
    pr.add_argument("--top-k", type=int, default=3)
    pr.add_argument("--csv", type=Path, help="also write one row per file (answer, probability, top classes, "
                    "or why it failed) to this CSV file")
    pr.add_argument("--device", default="auto")
    pr.set_defaults(func=cmd_predict)

    x = sub.add_parser("export", help="write a run as one ONNX file (front end and fold ensemble) and a JSON",
                       description="Export a run's fold ensemble with its front end to ONNX, for any input length; "
                                   "a JSON beside it names the classes, the input rate and the run.")
    x.add_argument("--run", type=Path, help="run folder (default: the run `predict` uses)")
    x.add_argument("--checkpoints", type=Path, help="checkpoint store (default: $AUDIOCLF_CHECKPOINTS or ./checkpoints)")
    x.add_argument("--format", choices=["onnx"], default="onnx")
    x.add_argument("--out", type=Path, help="the .onnx file to write (default: <run name>.onnx here)")
    x.set_defaults(func=cmd_export)

    i = sub.add_parser("info", help="the models with their parameter counts, and the cached runs")
    i.add_argument("--checkpoints", type=Path)
    i.set_defaults(func=cmd_info)

    rm = sub.add_parser("delete", help="delete trained runs (not the shipped ones, not while training)",
                        description="Delete run folders from the checkpoint store, each whole; asks first unless "
                                    "--yes. The runs that ship with audioclf and runs being trained are refused.")
    rm.add_argument("runs", nargs="+", help="run folder names (as `info` lists them) or paths")
    rm.add_argument("--checkpoints", type=Path, help="checkpoint store (default: $AUDIOCLF_CHECKPOINTS or ./checkpoints)")
    rm.add_argument("--yes", action="store_true", help="do not ask")
    rm.set_defaults(func=cmd_delete)

    d = sub.add_parser("download", help="download a dataset", description="Download the official ESC-50 archive.")
    d.add_argument("dataset", choices=["esc50"])
    d.add_argument("--dest", type=Path, default=Path("data"), help="folder to put esc50/ in (default: ./data)")
    d.add_argument("--url", help="archive URL (default: the official GitHub archive; for a mirror)")
    d.set_defaults(func=cmd_download)
    return p


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, help="dataset folder (default: $AUDIOCLF_DATA or ./data/esc50)")
    p.add_argument("--subset", choices=["esc10", "esc50"], default="esc10", help="for ESC-50-layout folders")
    p.add_argument("--checkpoints", type=Path, help="checkpoint store (default: $AUDIOCLF_CHECKPOINTS or ./checkpoints)")


def _config_args(p: argparse.ArgumentParser) -> None:
    from .models import MODELS

    p.add_argument("--model", help=f"one of: {', '.join(MODELS)} (default cnn, or the --from run's)")
    p.add_argument("--from", dest="init", metavar="RUN", help="teach: start each fold model from a trained run's "
                   "front end and trunk (its last layer's rows for the classes it knows, new ones for the rest): "
                   "esc50 or esc10 (the best run of that class set, yours or shipped), or a run folder; short "
                   "training defaults")
    options = {name: opt for spec in MODELS.values() for name, opt in spec.options.items()}
    for name, opt in options.items():  # each model's options, from the registry
        p.add_argument(f"--{name.replace('_', '-')}", type=int, default=None,
                       help=f"{opt.help} (default {opt.default}; models that have it)")
    p.add_argument("--epochs", type=int, help="default: the model's (100 for the report's models, 120 for the recipe, 30 with --from)")
    p.add_argument("--lr", type=float, help="learning rate (default: the model's, see `info`)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--weight-decay", type=float, help="default: the model's (0 for the report's models)")
    p.add_argument("--optimizer", choices=["adam", "adamw"], help="default: the model's")
    p.add_argument("--schedule", choices=["constant", "onecycle"], help="learning rate schedule (default: the model's)")
    p.add_argument("--label-smoothing", type=float, help="default: the model's")
    p.add_argument("--augment", help="augmentation preset, a name in audioclf.augment.AUGMENTS (none, recipe, ...; default: the model's)")
    p.add_argument("--precision", choices=["fp32", "bf16"], help="default: the model's")
    p.add_argument("--ema", type=float, help="validate and keep a moving average of the weights, this decay per "
                   "step (0: off; default: the model's)")
    p.add_argument("--start-weight", type=float, help="with --from: each fold model is its last epoch averaged with "
                   "its start, this much of the start (e.g. 0.5; default 0: the best epoch by validation)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--test-fold", type=int, default=1)
    p.add_argument("--cv-folds", type=int, nargs="+", default=[2, 3, 4, 5])
    p.add_argument("--sample-rate", type=int, default=16000, help="model sample rate in Hz")
    p.add_argument("--duration", type=float, default=5.0, help="clip length in seconds (crop or zero-pad)")
    p.add_argument("--window", type=int, default=16000, help="window length in samples")
    p.add_argument("--hop", type=int, default=8000, help="hop between windows in samples")


def _dataset(args):
    from .data import DataError, default_data_dir, open_dataset

    root = args.data or default_data_dir()
    if root is None:
        raise DataError("no dataset: pass --data DIR, set AUDIOCLF_DATA, or run "
                        "`python -m audioclf download esc50 --dest data`")
    dataset = open_dataset(root, args.subset)
    for warning in dataset.warnings:
        print(f"audioclf: warning: {warning}", file=sys.stderr)
    return dataset


def config_from_args(args, dataset=None):
    """The TrainConfig that `train` or `evaluate` arguments describe (ConfigError names the flag);
    the data's fingerprint from `dataset`, else the config's own dataset_id stays empty."""
    from .config import PrepConfig, TrainConfig
    from .models import MODELS

    if getattr(args, "init", None):
        return _taught_config(args, dataset)
    model = args.model or "cnn"
    if model not in MODELS:  # before any slow data work
        raise ConfigError("model", f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    options = _model_options(args, model)
    prep = PrepConfig(sample_rate=args.sample_rate, duration=args.duration, window=args.window, hop=args.hop)
    return TrainConfig(model=model, lr=args.lr, epochs=args.epochs, batch_size=args.batch_size,
                       weight_decay=args.weight_decay, seed=args.seed, test_fold=args.test_fold,
                       cv_folds=_cv_folds(args, dataset), prep=prep, options=tuple(options.items()),
                       optimizer=args.optimizer, schedule=args.schedule, label_smoothing=args.label_smoothing,
                       augment=args.augment, precision=args.precision, ema=args.ema,
                       start_weight=getattr(args, "start_weight", None) or 0.0,
                       dataset_id=dataset.fingerprint() if dataset is not None else "")


def _model_options(args, model: str) -> dict[str, int]:
    """The model's own options (its registry `Option`s) that the flags give."""
    from .models import MODELS

    return {name: getattr(args, name) for name in MODELS[model].options if getattr(args, name, None) is not None}


def _taught_config(args, dataset=None):
    """`--from RUN`: the source run's model, options and preprocessing; this data's folds; the flags
    given, else the teaching defaults (`audioclf.teach.TEACH_TRAINING`)."""
    from .teach import TEACH_TRAINING, init_name, source_run, taught_config

    source = source_run(args.init, args.checkpoints)
    if args.model and args.model != source.config.model:
        raise ConfigError("model", f"the --from run is a {source.config.model} model; leave --model out or make "
                                   f"it {source.config.model}")
    options = _model_options(args, source.config.model)
    return taught_config(source, dataset.fingerprint() if dataset is not None else "", _cv_folds(args, dataset),
                         init=init_name(source, args.checkpoints), options=tuple(options.items()),
                         batch_size=args.batch_size, seed=args.seed, test_fold=args.test_fold,
                         start_weight=getattr(args, "start_weight", None),
                         **{k: getattr(args, k) for k in TEACH_TRAINING})


def _cv_folds(args, dataset=None) -> tuple[int, ...]:
    """The --cv-folds given; for a folder too small to fill them all, those it has (said on stderr)."""
    from .teach import fit_folds

    folds = tuple(args.cv_folds)
    if dataset is None or folds != (2, 3, 4, 5):  # folds the user chose are checked, never changed
        return folds
    fitted, note = fit_folds(dataset.folds, args.test_fold, folds)
    if note:
        print(f"audioclf: {dataset.root}: {note}", file=sys.stderr)
    return fitted


def _sigterm_as_interrupt() -> None:
    """Let `kill PID` (the app's cancel button) stop training the way Ctrl-C does: the progress file
    says 'cancelled' and finished epochs and folds stay on disk."""
    import signal

    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def lower_priority() -> None:
    """Train at the CPU priority the launcher asked for (`$AUDIOCLF_NICE`, set by `jobs._start` for the
    app's jobs): on a small machine a job at the app's own priority starves its predictions (bench/load.py)."""
    import os

    step = os.environ.get("AUDIOCLF_NICE", "")
    if step.strip() and hasattr(os, "nice"):
        try:
            niceness = os.nice(int(step))
        except (ValueError, OSError):
            print(f"audioclf: warning: AUDIOCLF_NICE={step!r} ignored (a whole number is needed)", file=sys.stderr)
            return
        if os.getsid(0) == os.getpid():  # a session of its own (the app's jobs): never a user's terminal
            set_session_nice(niceness)


def set_session_nice(niceness: int) -> None:
    """Linux's autogroup scheduling (on by default) shares the CPU between sessions before it looks at nice
    values, so a job in a session of its own (`jobs._start`) took an equal share beside the app's server
    however nice it was (bench/beside_job.py, docs/reliability.md). Its session gets the same nice value;
    where there is no autogroup (not Linux, turned off), nothing changes."""
    from pathlib import Path

    try:
        Path("/proc/self/autogroup").write_text(str(niceness))
    except OSError:
        pass


def cmd_train(args) -> int:
    from .device import describe, pick_device, precision_note
    from .distributed import Dist
    from .prepare import prepare
    from .store import RunBusy
    from .train import train_run

    _sigterm_as_interrupt()
    lower_priority()  # before torch starts its threads, which inherit it
    device = pick_device(args.device)
    if args.folds_at_once and device.type != "cuda":
        raise UserError(f"--folds-at-once needs a CUDA GPU (the device is {describe(device)}): on a CPU the fold "
                        "models would only take turns on the same cores")
    config_from_args(args)  # the settings alone, before any slow data work
    dataset = _dataset(args)
    config = config_from_args(args, dataset)
    config.check_folds(dataset.folds, args.folds or (), need_test=dataset.layout != "folders")
    dist = Dist.from_env()
    if dist.shares_gpus and device.type == "cuda" and not args.spread_folds:
        dist.close()
        raise UserError(f"{dist.world} processes share this machine's GPUs: splitting every batch needs a GPU per "
                        "process; add --spread-folds to train whole fold models side by side on them")
    try:
        if dist.is_main:
            world = f", {dist.world} processes" if dist.active else ""
            print(f"{config.label}: {len(dataset)} clips of {dataset.name}, device {describe(device)}{world}"
                  f"{precision_note(config.precision, device)}, run {config.key()}", file=sys.stderr)
            # rank 0 builds the cache (reporting clip by clip to the run's progress file); the others read it
            prepared = prepare(dataset, config.prep, progress=_preparing(config, args.checkpoints))
        dist.barrier()
        if not dist.is_main:
            prepared = prepare(dataset, config.prep)
        try:
            run = train_run(config, prepared, folds=args.folds, device=device, root=args.checkpoints,
                            show_bar=not args.quiet, dist=dist, spread_folds=args.spread_folds,
                            at_once=args.folds_at_once)
        except RunBusy as busy:
            print(f"audioclf: {busy}; following its progress instead of training it twice (Ctrl-C stops "
                  "following, not the training)", file=sys.stderr)
            run = _follow(config, args.checkpoints)
    finally:
        dist.close()
    if dist.is_main:
        _print_results(run, test=not args.hide_test)
    return 0


def _preparing(config, root):
    """A `prepare` progress callback that writes 'preparing the data: k of n clips decoded' to the run's
    progress file (about twice a second), so the app shows a real count before training starts; None when
    another process is training this run (its progress file is its own)."""
    import os
    import time

    from .store import Run

    run = Run.of(config, root)
    if run.is_training():
        return None
    started, last = time.time(), [0.0]

    def report(done: int, total: int) -> None:
        now = time.time()
        if done == total or now - last[0] >= 0.5:
            last[0] = now
            run.path.mkdir(parents=True, exist_ok=True)
            run.write_progress({"status": "preparing", "pid": os.getpid(), "started": started, "updated": now,
                                "clips_done": done, "clips_total": total, "fraction": 0.0,
                                "message": f"preparing the data: {done} of {total} clips decoded"})
    return report


def _follow(config, root):
    """Wait for another process's training of `config`, printing its progress now and then."""
    import time

    from .store import Run

    run, last = Run.of(config, root), None
    while run.is_training():
        p = run.progress()
        now = (p.get("fold"), p.get("epoch"))
        if now != last and p.get("fold") is not None:
            print(f"  fold {p['fold']}, epoch {p.get('epoch')}/{p.get('epochs')}", file=sys.stderr)
            last = now
        time.sleep(1.0)
    return run


def cmd_evaluate(args) -> int:
    from .device import pick_device
    from .evaluate import evaluate_run
    from .prepare import prepare
    from .store import Run

    dataset = _dataset(args)
    if args.run:
        run = Run(args.run)
        config, root = run.config, run.root
    else:
        config, root = config_from_args(args, dataset), args.checkpoints
        run = Run.of(config, root)
    _check_trained_on(config, dataset)
    evaluate_run(config, prepare(dataset, config.prep), root=root, device=pick_device(args.device), which=args.which)
    _print_results(run)
    return 0


def _check_trained_on(config, dataset) -> None:
    from .data import DataError

    if config.dataset_id and config.dataset_id != dataset.fingerprint():
        raise DataError(f"{dataset.root}: not the data this run was trained on ({config.dataset_id})")


def cmd_calibrate(args) -> int:
    from . import int8
    from .prepare import prepare
    from .store import Run

    if not int8.available():
        raise UserError("this torch has no int8 kernels for this CPU (x86-64 only); prediction stays float32")
    run = Run(args.run)
    folds = run.folds_with_weights("best")
    if not folds:
        raise UserError(f"{run.path}: no finished fold models")
    dataset = _dataset(args)
    _check_trained_on(run.config, dataset)
    prepared = prepare(dataset, run.config.prep)
    for fold in folds:
        x, _ = prepared.subset([f for f in run.config.cv_folds if f != fold])
        if not int8.calibrate(run, fold, x):
            raise UserError(f"{run.path}: {run.config.model} models have no int8 path (the recipe's have)")
        print(f"fold {fold}: int8 ranges from {min(len(x), int8.CALIBRATION_CLIPS)} training clips, "
              f"{run.ranges_file(fold)}")
    return 0


def _print_results(run, test: bool = True) -> None:
    from .report import fold_table_markdown

    results = run.results()
    if results:
        print(fold_table_markdown(results, test))
    print(f"run folder: {run.path}")


def cmd_predict(args) -> int:
    from .audio import AudioError
    from .device import pick_device
    from .inference import LOUD_DB, load_ensemble, predict_file, top_k
    from .runs import default_run

    from .confidence import ANSWER_COLUMNS, answer_row, verdict
    from .store import Run

    onnx = args.onnx or (args.run if args.run and args.run.suffix == ".onnx" else None)
    if onnx:
        from .export import load_onnx

        ens = load_onnx(onnx)
        threshold, name = ens.threshold or 0.0, f"{ens.run} (ONNX {onnx})"
    else:
        run = args.run or default_run(args.checkpoints, data=args.data_name).path
        ens = load_ensemble(run, device=pick_device(args.device), precision=args.precision)
        threshold, name = float(((Run(run).results() or {}).get("unsure") or {}).get("threshold", 0.0)), run.name
    print(f"run {name}: {ens.label}, fold models {list(ens.folds)}, {getattr(ens, 'arithmetic', 'onnxruntime')}")
    files, status = _audio_files(args.files)
    rows = []
    for path in files:
        try:
            res = predict_file(ens, path)
        except AudioError as e:
            print(f"audioclf: error: {e}", file=sys.stderr)
            rows.append({"file": str(path), "error": str(e)})
            status = 2
            continue
        print(f"\n{path}  ({res['duration_s']:.2f} s)")
        if "over_time" in res:  # the answer is the loud windows' (inference.LOUD_DB)
            ot = res["over_time"]
            loud = [s for s, keep in zip(ot["start_s"], ot["loud"]) if keep]
            spans = ", ".join(f"{s:g}–{min(s + ot['clip_s'], res['duration_s']):g} s" for s in loud)
            print(f"  {'windows':>9}: {len(loud)} of {len(ot['start_s'])} are within {LOUD_DB:g} dB of the loudest "
                  f"and make the answer: {spans}")
            if args.timeline:
                _print_timeline(res, args.top_k)
        for name, proba in [*res["per_model"].items(), ("ensemble", res["ensemble"])]:
            tops = ", ".join(f"{c} {p:.2f}" for c, p in top_k(proba, res["classes"], args.top_k))
            print(f"  {name:>9}: {tops}")
        v = verdict(res["ensemble"], list(res["per_model"].values()), threshold)
        print(f"  {'answer':>9}: {res['classes'][v['top']]}" if v["sure"] else
              f"  {'answer':>9}: not sure ({'; '.join(v['reasons'])})")
        rows.append({"file": str(path), **answer_row(res, threshold, args.top_k)})
    if args.csv:
        _write_csv(args.csv, rows, ANSWER_COLUMNS)
        print(f"\nwrote {len(rows)} rows to {args.csv}")
    return status


def _print_timeline(res: dict, k: int) -> None:
    """What each window of a long recording heard: its span, level, the ensemble's top classes, and '*' where
    the window is loud enough to count towards the answer."""
    from .inference import top_k

    ot = res["over_time"]
    for start, level, loud, proba in zip(ot["start_s"], ot["level_db"], ot["loud"], ot["ensemble"]):
        span = f"{start:g}–{min(start + ot['clip_s'], res['duration_s']):g} s"
        tops = ", ".join(f"{c} {p:.2f}" for c, p in top_k(proba, res["classes"], k))
        print(f"  {'*' if loud else ' '} {span:>13} {level:6.1f} dB  {tops}")


def _write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    import csv

    try:
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, columns)
            writer.writeheader()
            writer.writerows(rows)
    except OSError as e:
        raise UserError(f"{path}: cannot write ({e.strerror or e})") from None


def _audio_files(paths: list[Path]) -> tuple[list[Path], int]:
    """The files to classify: each file as given, each folder's audio files (sub-folders too, sorted);
    status 2 where a folder holds none."""
    from .audio import AUDIO_EXTENSIONS

    files, status = [], 0
    for path in paths:
        if not path.is_dir():
            files.append(path)  # predict_file names a missing or unreadable file
            continue
        found = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
        if not found:
            print(f"audioclf: error: {path}: no audio files in this folder ({', '.join(AUDIO_EXTENSIONS)})",
                  file=sys.stderr)
            status = 2
        files += found
    return files, status


def cmd_export(args) -> int:
    from .export import export_onnx, sidecar
    from .runs import default_run

    out = export_onnx(args.run or default_run(args.checkpoints).path, args.out)
    print(f"wrote {out} and {sidecar(out)}; run it with: python -m audioclf predict --onnx {out} FILE")
    return 0


def cmd_info(args) -> int:
    from . import store
    from .models import MODELS, build_model, count_parameters, model_config

    print("models (10 classes):")
    for name, spec in MODELS.items():
        variants = [{k: v} for k, opt in spec.options.items() for v in opt.choices[:3]] or [{}]
        for opts in variants:
            n = count_parameters(build_model(model_config(name, 10, **opts)))
            label = spec.label(name, opts)
            print(f"  {label:<22} {n:>9,} parameters  lr {spec.lr:g}  {spec.description}")
    from .device import describe, pick_device
    from .inference import ARITHMETIC, auto_precision
    from .runs import SHIPPED_BADGE, defaults, is_shipped, validation_accuracy

    device = pick_device()
    runs = store.list_runs(args.checkpoints)
    kept = f" ({SHIPPED_BADGE} with audioclf: `delete` keeps them)" if any(map(is_shipped, runs)) else ""
    print(f"\ncached runs in {args.checkpoints or store.checkpoints_dir()}: {len(runs)}{kept}; "
          f"what `predict` computes in here ({describe(device)}):")
    width = max([28, *(len(r.name) for r in runs)])
    for run in runs:
        try:
            cfg = run.config
        except UserError as e:
            print(f"  {run.name:<{width}} unreadable: {e}")
            continue
        acc = (run.results() or {}).get("summary", {}).get("accuracy")
        accs = f"test acc {acc['mean']:.3f} ± {acc['std']:.3f}" if acc else "not evaluated"
        shipped = f"  {SHIPPED_BADGE}" if is_shipped(run) else ""
        try:
            computes = ARITHMETIC[auto_precision(run, device)] if run.folds_with_weights("best") else ""
        except UserError as e:  # a damaged int8.pt: said here, refused by predict
            computes = f"refused by predict: {e}"
        print(f"  {run.name:<{width}} {cfg.epochs:>4} epochs  folds {run.folds_done()}  {accs}  {computes:<17}{shipped}")
    chosen = defaults(args.checkpoints)
    if chosen:
        print("\npredict's default run for each class set (the best by validation accuracy, never by test; "
              "--data-name NAME picks the set, --run any run):")
        for name, run in chosen.items():
            print(f"  {name:<10} {run.name:<{width}} validation acc {validation_accuracy(run):.3f}")
    return 0


def cmd_delete(args) -> int:
    from . import jobs, store

    root = args.checkpoints or store.checkpoints_dir()
    found = []
    for given in args.runs:
        run = store.Run(root / given if Path(given).name == given else given)  # a bare name: one in the store
        if not run.config_file.is_file():
            raise UserError(f"{given}: no run folder of that name in {root} (`python -m audioclf info` lists them)"
                            if run.path.parent == root else f"{given} is not a run folder (no config.json in it)")
        found.append(run)
    if not args.yes:
        if not sys.stdin.isatty():
            raise UserError("delete asks before deleting: add --yes to delete without a terminal")
        what = found[0].name if len(found) == 1 else f"these {len(found)} runs"
        if input(f"Delete {what} with all its files? [y/N] ").strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return 1
    refused = 0
    for run in found:
        try:
            jobs.delete(run)
        except UserError as e:
            print(f"audioclf: error: {e}", file=sys.stderr)
            refused += 1
        else:
            print(f"deleted {run.path}")
    return 2 if refused else 0


def cmd_download(args) -> int:
    from .download import download_esc50

    path = download_esc50(args.dest, url=args.url, any_url=bool(args.url))  # --url: the CLI user's own choice
    print(f"ESC-50 is in {path}; use it with --data {path} (or set AUDIOCLF_DATA={path})")
    return 0
