"""Command line: `python -m audioclf {train,evaluate,predict,info,download} ...`."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .audio import AudioError
from .data import DataError

USER_ERRORS = (AudioError, DataError, FileNotFoundError, ValueError)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        print("audioclf: interrupted; finished epochs and folds are kept and resume on the next run",
              file=sys.stderr)
        return 130
    except USER_ERRORS as e:
        print(f"audioclf: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        from .download import DownloadError

        if isinstance(e, DownloadError):
            print(f"audioclf: error: {e}", file=sys.stderr)
            return 2
        raise


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
    t.add_argument("--spread-folds", action="store_true",
                   help="under torchrun: give each process whole folds instead of a slice of every batch")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="evaluate a trained run on the test fold",
                       description="Re-evaluate a run's fold models on the test fold and print the per-fold table.")
    _data_args(e)
    e.add_argument("--run", type=Path, help="run folder (default: the config given by the options below)")
    _config_args(e)
    e.add_argument("--which", choices=["best", "final"], default="best", help="which weights of each fold")
    e.add_argument("--device", default="auto")
    e.set_defaults(func=cmd_evaluate)

    pr = sub.add_parser("predict", help="classify audio files with a run's fold models and ensemble",
                        description="Top-k classes with probabilities from each fold model and the ensemble.")
    pr.add_argument("files", nargs="+", type=Path, help="audio files (wav, flac, ogg, mp3)")
    pr.add_argument("--run", type=Path, help="run folder (default: the newest complete run)")
    pr.add_argument("--checkpoints", type=Path, help="checkpoint store (default: $AUDIOCLF_CHECKPOINTS or ./checkpoints)")
    pr.add_argument("--top-k", type=int, default=3)
    pr.add_argument("--device", default="auto")
    pr.set_defaults(func=cmd_predict)

    i = sub.add_parser("info", help="the models with their parameter counts, and the cached runs")
    i.add_argument("--checkpoints", type=Path)
    i.set_defaults(func=cmd_info)

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

    p.add_argument("--model", default="cnn", help=f"one of: {', '.join(MODELS)}")
    p.add_argument("--heads", type=int, default=4, help="attention heads (transformer)")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--lr", type=float, help="learning rate (default: 0.01 cnn, 0.001 transformer)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--test-fold", type=int, default=1)
    p.add_argument("--cv-folds", type=int, nargs="+", default=[2, 3, 4, 5])
    p.add_argument("--sample-rate", type=int, default=16000, help="model sample rate in Hz")
    p.add_argument("--duration", type=float, default=5.0, help="clip length in seconds (crop or zero-pad)")
    p.add_argument("--window", type=int, default=16000, help="window length in samples")
    p.add_argument("--hop", type=int, default=8000, help="hop between windows in samples")


def _dataset(args):
    from .data import default_data_dir, open_dataset

    root = args.data or default_data_dir()
    if root is None:
        raise DataError("no dataset: pass --data DIR, set AUDIOCLF_DATA, or run "
                        "`python -m audioclf download esc50 --dest data`")
    return open_dataset(root, args.subset)


def _config(args, dataset):
    from .config import PrepConfig, TrainConfig

    if args.epochs < 1 or args.batch_size < 1:
        raise ValueError("--epochs and --batch-size must be at least 1")
    prep = PrepConfig(sample_rate=args.sample_rate, duration=args.duration, window=args.window, hop=args.hop)
    if prep.window > prep.num_samples or prep.hop < 1:
        raise ValueError(f"--window {prep.window} must fit in a clip of {prep.num_samples} samples, --hop at least 1")
    return TrainConfig(model=args.model, heads=args.heads, lr=args.lr, epochs=args.epochs,
                       batch_size=args.batch_size, weight_decay=args.weight_decay, seed=args.seed,
                       test_fold=args.test_fold, cv_folds=tuple(args.cv_folds), prep=prep,
                       dataset_id=dataset.fingerprint())


def config_from_args(args):
    """The dataset and TrainConfig that `train` arguments describe, checked: (Dataset, TrainConfig).

    Raises ValueError or DataError with a message for the user. The app's job launcher uses this too,
    so that it names the same run folder as the training process will.
    """
    from .models import MODELS

    if args.model not in MODELS:  # before any slow data work
        raise ValueError(f"--model: unknown model {args.model!r}; choose one of {', '.join(MODELS)}")
    if args.model == "transformer" and (args.heads < 1 or 64 % args.heads):
        raise ValueError(f"--heads: {args.heads} heads do not divide the token width 64; "
                         "choose 1, 2, 4, 8, 16, 32 or 64")
    dataset = _dataset(args)
    config = _config(args, dataset)
    missing = [f for f in (config.test_fold, *config.cv_folds) if f not in dataset.folds]
    if missing:
        raise DataError(f"{dataset.root}: fold(s) {missing} not in the dataset (it has folds {list(dataset.folds)})")
    unknown = [f for f in (getattr(args, "folds", None) or []) if f not in config.cv_folds]
    if unknown:
        raise ValueError(f"--folds: {unknown} are not cross-validation folds {list(config.cv_folds)}")
    return dataset, config


def _sigterm_as_interrupt() -> None:
    """Let `kill PID` (the app's cancel button) stop training the way Ctrl-C does: the progress file
    says 'cancelled' and finished epochs and folds stay on disk."""
    import signal

    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def cmd_train(args) -> int:
    from .device import describe, pick_device
    from .distributed import Dist
    from .prepare import prepare
    from .train import train_run

    _sigterm_as_interrupt()
    device = pick_device(args.device)
    dataset, config = config_from_args(args)
    dist = Dist.from_env()
    try:
        if dist.is_main:
            world = f", {dist.world} processes" if dist.active else ""
            print(f"{config.label}: {len(dataset)} clips of {dataset.name}, device {describe(device)}{world}, "
                  f"run {config.key()}", file=sys.stderr)
            prepared = prepare(dataset, config.prep)  # rank 0 builds the cache; the others then read it
        dist.barrier()
        if not dist.is_main:
            prepared = prepare(dataset, config.prep)
        run = train_run(config, prepared, folds=args.folds, device=device, root=args.checkpoints,
                        show_bar=not args.quiet, dist=dist, spread_folds=args.spread_folds)
    finally:
        dist.close()
    if dist.is_main:
        _print_results(run)
    return 0


def cmd_evaluate(args) -> int:
    from . import store
    from .device import pick_device
    from .evaluate import evaluate_run
    from .prepare import prepare

    dataset = _dataset(args)
    if args.run:
        if not (args.run / "config.json").is_file():
            raise FileNotFoundError(f"{args.run}: not a run folder (no config.json)")
        config = store.load_config(args.run)
        root = args.run.parent
    else:
        config = _config(args, dataset)
        root = args.checkpoints
    if config.dataset_id and config.dataset_id != dataset.fingerprint():
        raise DataError(f"{dataset.root}: not the data this run was trained on ({config.dataset_id})")
    evaluate_run(config, prepare(dataset, config.prep), root=root, device=pick_device(args.device), which=args.which)
    _print_results(store.run_dir(config, root))
    return 0


def _print_results(run: Path) -> None:
    from .report import fold_table_markdown
    from . import store

    results = store.read_json(run / "results.json")
    if results:
        print(fold_table_markdown(results))
    print(f"run folder: {run}")


def cmd_predict(args) -> int:
    from . import store
    from .device import pick_device
    from .predict import load_ensemble, predict_file, top_k

    run = args.run or _newest_complete_run(args.checkpoints)
    ens = load_ensemble(run, device=pick_device(args.device))
    print(f"run {run.name}: {ens.label}, fold models {list(ens.folds)}")
    status = 0
    for path in args.files:
        try:
            res = predict_file(ens, path)
        except AudioError as e:
            print(f"audioclf: error: {e}", file=sys.stderr)
            status = 2
            continue
        print(f"\n{path}  ({res['duration_s']:.2f} s)")
        for name, proba in [*res["per_model"].items(), ("ensemble", res["ensemble"])]:
            tops = ", ".join(f"{c} {p:.2f}" for c, p in top_k(proba, res["classes"], args.top_k))
            print(f"  {name:>9}: {tops}")
    return status


def _newest_complete_run(root: Path | None) -> Path:
    from . import store

    for run in store.list_runs(root):
        if (run / "results.json").is_file():
            return run
    raise FileNotFoundError(f"{root or store.checkpoints_dir()}: no trained run; train one first or pass --run")


def cmd_info(args) -> int:
    from . import store
    from .models import MODELS, ModelConfig, build_model, count_parameters

    print("models (10 classes):")
    for name in MODELS:
        for heads in ((1, 2, 4) if name == "transformer" else (1,)):
            n = count_parameters(build_model(ModelConfig(name=name, heads=heads)))
            print(f"  {name + (f' {heads} heads' if name == 'transformer' else ''):<22} {n:>9,} parameters")
    runs = store.list_runs(args.checkpoints)
    print(f"\ncached runs in {args.checkpoints or store.checkpoints_dir()}: {len(runs)}")
    for run in runs:
        cfg = store.load_config(run)
        res = store.read_json(run / "results.json") or {}
        acc = res.get("summary", {}).get("accuracy")
        done = [f for f in cfg.cv_folds if store.fold_complete(cfg, f, run.parent)]
        accs = f"test acc {acc['mean']:.3f} ± {acc['std']:.3f}" if acc else "not evaluated"
        print(f"  {run.name:<28} {cfg.epochs:>4} epochs  folds {done}  {accs}")
    return 0


def cmd_download(args) -> int:
    from .download import download_esc50

    path = download_esc50(args.dest, url=args.url, any_url=bool(args.url))  # --url: the CLI user's own choice
    print(f"ESC-50 is in {path}; use it with --data {path} (or set AUDIOCLF_DATA={path})")
    return 0
