"""Small process-level helpers shared by the workflow adapters."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def log_to_file(path: str | os.PathLike[str]) -> Iterator[None]:
    """Send stdout, stderr (progress bars included) and ``logging`` to ``path`` for the block.

    An exception is logged with its traceback before it propagates, so a failed job's log says
    what went wrong.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", buffering=1) as stream:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        previous_level = root.level
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        try:
            with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
                try:
                    yield
                except BaseException:
                    logging.getLogger("fusionfm").exception("job failed")
                    raise
        finally:
            root.removeHandler(handler)
            root.setLevel(previous_level)
            sys.stdout.flush()
