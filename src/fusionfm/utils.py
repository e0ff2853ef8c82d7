"""Small process-level helpers shared by the workflow adapters."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TypeVar

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")


@contextlib.contextmanager
def log_to_file(path: str | os.PathLike[str]) -> Iterator[None]:
    """Send stdout, stderr (progress bars included) and ``logging`` to ``path`` for the block.

    An exception is logged with its traceback before it propagates, so a failed job's log says
    what went wrong. Bad input (:class:`~fusionfm.io.InputError`) ends the process instead, with
    exit status 1: its one-line message goes to the job's own stderr (what Snakemake shows) and
    to the top of the log, the traceback to the log only.
    """
    from fusionfm.io import InputError

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    job_stderr = sys.stderr
    failure: InputError | None = None
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
                except InputError as err:
                    stream.write("".join(traceback.format_exception(err)))
                    failure = err
                except BaseException:
                    logging.getLogger("fusionfm").exception("job failed")
                    raise
        finally:
            root.removeHandler(handler)
            root.setLevel(previous_level)
            sys.stdout.flush()
    if failure is not None:
        path.write_text(f"error: {failure}\n\n{path.read_text(errors='replace')}")
        job_stderr.write(f"error: {failure}\n(details: {path})\n")
        job_stderr.flush()
        raise SystemExit(1) from None


@contextlib.contextmanager
def exit_on_input_error() -> Iterator[None]:
    """Turn bad input (:class:`~fusionfm.io.InputError`) in the block into ``SystemExit`` with
    its one-line message, for code Snakemake runs itself (config checks, ``onstart``), where a
    traceback would bury the message."""
    from fusionfm.io import InputError

    try:
        yield
    except InputError as err:
        raise SystemExit(f"error: {err}") from None


def parallel_map(
    function: Callable[[_Item], _Result],
    items: Sequence[_Item],
    workers: int = 1,
    desc: str = "",
    unit: str = "item",
    progress: bool = True,
) -> list[_Result]:
    """``[function(item) for item in items]`` with a progress bar, in ``workers`` processes.

    Results keep the order of ``items`` whatever the number of workers; ``function`` must be a
    picklable module-level function when ``workers > 1``; workers come from :func:`fork_context`.
    """
    from tqdm import tqdm

    bar = {"total": len(items), "desc": desc, "unit": unit, "disable": not progress}
    if workers > 1 and len(items) > 1:
        with ProcessPoolExecutor(
            max_workers=min(workers, len(items)), mp_context=fork_context()
        ) as pool:
            return list(tqdm(pool.map(function, items), **bar))
    return [function(item) for item in tqdm(items, **bar)]


def fork_context() -> multiprocessing.context.BaseContext:
    """Process start method for worker pools: ``fork`` where available. ``spawn`` and
    ``forkserver`` re-import ``__main__`` in each worker, and a Snakemake script adapter (no
    ``if __name__ == "__main__"`` guard) would then run its whole job again in every worker."""
    if "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()
