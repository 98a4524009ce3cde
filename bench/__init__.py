"""Measurements with their own commands (never part of the test suite); results go to bench/*.json and docs/."""
from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path


def record(out: Path, key: str, entry: dict) -> None:
    """Merge {key: entry, with the command that made it} into the JSON file `out`, keeping its other keys:
    one file per bench, one entry per run measured."""
    results = json.loads(out.read_text()) if out.is_file() else {}
    results[key] = {"command": "python " + shlex.join(["bench/" + Path(sys.argv[0]).name, *sys.argv[1:]]), **entry}
    out.write_text(json.dumps(results, indent=1) + "\n")
