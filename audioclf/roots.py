"""The folders a browser may choose datasets from: the app never opens a path outside them.

`AUDIOCLF_DATA_ROOTS` (folders separated by os.pathsep) names them; by default they are `./data`
(where the downloader puts ESC-50) and, when set, the `$AUDIOCLF_DATA` dataset folder itself.
"""
from __future__ import annotations

import os
from pathlib import Path

from .audio import AUDIO_EXTENSIONS
from .data import DataError

ROOTS_ENV = "AUDIOCLF_DATA_ROOTS"


def data_roots() -> tuple[Path, ...]:
    """The allowed folders, resolved (links followed), first one first: downloads go there."""
    env = os.environ.get(ROOTS_ENV, "")
    raw = [p for p in env.split(os.pathsep) if p.strip()]
    if not raw:
        raw = ["data"] + ([os.environ["AUDIOCLF_DATA"]] if os.environ.get("AUDIOCLF_DATA") else [])
    return tuple(dict.fromkeys(Path(p.strip()).expanduser().resolve() for p in raw))


def resolve_under_roots(path: str | Path, roots: tuple[Path, ...] | None = None) -> Path:
    """`path` with `..` and links resolved; a relative one is taken inside the first root.

    Raises DataError when the result is outside every root.
    """
    roots = roots or data_roots()
    p = Path(path)
    literal = Path(os.path.abspath(p if p.is_absolute() else roots[0] / p))  # `..` folded, links not followed
    real = literal.resolve()
    if any(real.is_relative_to(r) for r in roots):
        return real
    link = f" it is a link to {real}," if real != literal and any(literal.is_relative_to(r) for r in roots) else ""
    raise DataError(f"{path}:{link} not inside the allowed data folders ({', '.join(map(str, roots))}); "
                    f"the server's owner can allow more with ${ROOTS_ENV}")


def looks_like_dataset(folder: Path) -> bool:
    """An ESC-50-layout folder, or one with at least two sub-folders holding audio files."""
    if (folder / "meta" / "esc50.csv").is_file():
        return True
    try:
        subs = [d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")]
        with_audio = 0
        for d in subs:
            if any(f.suffix.lower() in AUDIO_EXTENSIONS for f in d.iterdir()):
                with_audio += 1
                if with_audio == 2:
                    return True
    except OSError:
        pass
    return False


def dataset_choices(roots: tuple[Path, ...] | None = None) -> list[Path]:
    """The dataset folders a user may pick: each root that is one, and the ones directly inside."""
    roots = roots or data_roots()
    out: list[Path] = []
    for root in roots:
        if not root.is_dir():
            continue
        try:
            inside = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
        except OSError:
            inside = []
        for folder in [root, *inside]:
            real = folder.resolve()
            if real not in out and any(real.is_relative_to(r) for r in roots) and looks_like_dataset(real):
                out.append(real)
    return out
