import os
import sys

from .cli import main


def run() -> int:
    """`main()`, but a reader that stops early (`python -m audioclf info | head`) ends the output quietly, as
    Unix tools do, instead of with a BrokenPipeError traceback."""
    try:
        code = main()
        sys.stdout.flush()  # here, not at exit, so that a closed pipe is caught below
        return code
    except BrokenPipeError:
        # Python's recipe (the `signal` module's docs, "Note on SIGPIPE"): point stdout at devnull so that
        # the interpreter's own flush at exit does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(run())
