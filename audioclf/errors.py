"""One base class for everything a user can get wrong: a bad file, dataset, config or download.

The CLI and the app catch `UserError` and show its message (it names the file and the problem);
anything else is a bug and keeps its traceback.
"""
from __future__ import annotations


class UserError(ValueError):
    """A problem with the user's input; the message says which file or setting and what to do."""


class ConfigError(UserError):
    """A training or preprocessing setting that cannot work: `field` names it, `problem` says why."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field, self.problem = field, problem


class CheckpointError(UserError):
    """A checkpoint file that is unreadable, corrupted or not a plain tensor file."""
