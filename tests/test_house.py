"""The layout's promises: no import loop in the engine, one owner of a run's file names, jobs free of
the CLI, and a new model is one class plus one registry entry."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from audioclf import models
from audioclf.cli import main
from audioclf.config import TrainConfig
from audioclf.data import open_dataset
from audioclf.models import ModelConfig, ModelSpec, Option
from audioclf.prepare import prepare
from audioclf.store import Run
from audioclf.train import train_run

from conftest import TINY_PREP, make_class_folders

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "audioclf"


def engine_imports() -> dict[str, set[str]]:
    """audioclf module -> the audioclf modules it imports, anywhere in its body (lazy imports too)."""
    graph = {}
    for path in PACKAGE.glob("*.py"):
        name = path.stem
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level == 1:
                    if node.module:
                        deps.add(node.module.split(".")[0])
                    else:
                        deps.update(a.name for a in node.names)
                elif node.module and node.module.startswith("audioclf."):
                    deps.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                deps.update(a.name.split(".")[1] for a in node.names if a.name.startswith("audioclf."))
        graph[name] = deps - {name}
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> list[str] | None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return trail + [node, dep]
            if dep not in state and (found := visit(dep, trail + [node])):
                return found
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node, [])):
            return found
    return None


def test_no_import_loop_in_the_engine():
    graph = engine_imports()
    assert "train" in graph["evaluate"] or "inference" in graph["evaluate"]  # the walk sees imports
    assert cycle(graph) is None, " -> ".join(cycle(graph))
    assert cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]  # and would see a loop


def test_jobs_does_not_import_the_cli():
    assert "cli" not in engine_imports()["jobs"]


def test_the_engine_knows_nothing_of_streamlit():
    for path in PACKAGE.glob("*.py"):
        assert "streamlit" not in path.read_text(), path.name


RUN_FILE = re.compile(r"""["'/](best|final|resume)\.pt\b|\{which\}\.pt|\b(history|results|config|progress|job)\.json["']"""
                      r"""|["']train\.log["']|/ f["']fold""")


def test_only_the_store_spells_a_run_file_name():
    places = [*PACKAGE.glob("*.py"), ROOT / "app.py", ROOT / "ui.py", *(ROOT / "pages").glob("*.py"),
              *(ROOT / "bench").glob("*.py"), *(ROOT / "tools").glob("*.py")]
    offenders = []
    for path in places:
        if path.name == "store.py":
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if RUN_FILE.search(line) and not line.lstrip().startswith("#"):
                offenders.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
    assert RUN_FILE.search('run / "best.pt"') and RUN_FILE.search("p / f'fold{k}'")  # the check can fire
    assert not RUN_FILE.search('f"fold{f}": probabilities')


class TinyNet(nn.Module):
    """A third model: the loudness of the waveform in `width` bands of time, then a linear layer."""

    takes_waveform = True

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.width = config.blocks
        self.out = nn.Linear(self.width, config.n_classes)

    def forward(self, x: torch.Tensor, return_dict: bool = False):
        emb = x.abs().unflatten(-1, (self.width, -1)).mean(-1)  # (B, width)
        logits = self.out(emb)
        return {"logits": logits, "embedding": emb, "attention": None} if return_dict else logits


def test_a_third_model_is_one_class_and_one_registry_entry(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(models.MODELS, "tiny", ModelSpec(TinyNet, lr=0.05, description="a loudness probe",
                                                         options={"blocks": Option(4, (2, 4))}))
    ds = open_dataset(make_class_folders(tmp_path / "tiny", per_class=10))
    config = TrainConfig(model="tiny", options=(("blocks", 2),), epochs=1, batch_size=8, prep=TINY_PREP,
                         cv_folds=(2, 3), dataset_id=ds.fingerprint())
    assert config.lr == 0.05 and config.label == "tiny-blocks2"
    run = train_run(config, prepare(ds, TINY_PREP), root=tmp_path / "ck", show_bar=False)
    assert run.is_complete() and run.fold_model(2).model.width == 2
    assert run.results()["ensemble"]["n"] == 6
    assert main(["info", "--checkpoints", str(tmp_path / "ck")]) == 0
    info = capsys.readouterr().out
    assert "tiny-blocks2" in info and "a loudness probe" in info and "folds [2, 3]" in info
    with pytest.raises(ValueError, match="blocks: 3"):
        TrainConfig(model="tiny", options=(("blocks", 3),))
    assert Run.of(config, tmp_path / "ck").path == run.path
