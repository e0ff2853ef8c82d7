"""Test hook for tests/reliability/test_resume.py, put on PYTHONPATH of one snakemake run only.

In a ``train_task`` job (the script Snakemake runs is ``<tmp>.train_task.py``), the first periodic
train state written stops the job right there: the file is complete, the job then waits to be
killed. The test kills the workflow at that point, every time, instead of racing the training
(which could otherwise finish between the state appearing and the kill).
"""

import sys

if sys.argv and sys.argv[0].endswith(".train_task.py"):
    import signal

    import fusionfm.train.checkpoint as checkpoint

    _save = checkpoint.save_checkpoint

    def _save_then_wait(path, payload):  # noqa: ANN001, ANN202
        _save(path, payload)
        if payload.get("format") == checkpoint.TRAIN_STATE:
            while True:  # until the test's SIGKILL
                signal.pause()

    checkpoint.save_checkpoint = _save_then_wait
