"""MLflow tracking for pipeline stages: one parent run per results tree, one child run per job.

MLflow is an *index* of results here, never a cache: Snakemake owns the DAG. The layout is

* one experiment (``config.mlflow.experiment``);
* one **parent run per results tree**, created on first use by :func:`ensure_parent_run` and
  recorded in ``results/mlflow/parent.json``; every later call (any process) reuses it;
* one **child run per Snakemake job** (rule x wildcards), opened by :func:`stage_run`, which
  marks the run ``FINISHED`` on success and ``FAILED`` when the body raises.

Every MLflow call goes through :class:`mlflow.MlflowClient` with explicit run ids, so no fluent
"active run" state leaks between runs of one process and ``MLFLOW_RUN_ID`` is never consulted.

Concurrency: many Snakemake jobs (separate processes) may write the same SQLite tracking file
at once. For ``sqlite:`` URIs every store call is serialized through an inter-process
``fcntl.flock`` on ``<db>.lock`` (which also covers MLflow's first-use schema migration), and
transient "database is locked"/"busy" errors are retried with backoff. For ``http(s)`` URIs
(an ``mlflow server``) no file lock is taken. The get-or-create of the parent run holds a
second lock, ``parent.json.lock`` beside ``parent.json``, so racing jobs create exactly one
parent.

Deferred tracking (``stage_run(..., defer=True)``, the workflow's default): the job imports no
MLflow at all (about 3 CPU-s per job saved) and records what it logs in a journal file,
``results/mlflow/journal/<id>.json`` beside ``parent.json`` (its artifacts copied to
``<id>.files/``), written atomically when the run ends. :func:`sync_journal`, called once by the
workflow when it ends (success or error), replays every record as a child run with its original
start and end times, step numbers and timestamps, then deletes it.

Tracking is optional: ``enabled=False`` or the environment variable ``FUSIONFM_TRACKING=0``
yields a :class:`NoopTracker` and touches no file or database (mlflow is not even imported).

Example:
    >>> with stage_run("results/mlflow/parent.json", "train_task",
    ...                {"dataset": "syn_ivf", "task": "00"}, params={"lr": 1e-4}) as run:
    ...     run.log_metrics({"train/loss": 0.3}, step=100)
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import logging
import math
import os
import random
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

# MLflow 3 reports usage telemetry over the network by default; pipeline jobs (often on compute
# nodes without internet) must not try.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

if TYPE_CHECKING:  # pragma: no cover - typing only; mlflow is imported lazily
    from mlflow import MlflowClient
    from mlflow.store.artifact.artifact_repo import ArtifactRepository

    from fusionfm.io import InputError

__all__ = [
    "DEFAULT_TRACKING_URI_PATH",
    "JournalTracker",
    "NoopTracker",
    "Tracker",
    "ensure_parent_run",
    "journal_dir",
    "log_to_parent",
    "recorded_experiment",
    "stage_run",
    "sync_journal",
    "tracking_enabled",
    "tracking_uri",
]

_LOG = logging.getLogger(__name__)

DEFAULT_TRACKING_URI_PATH = "results/mlflow/mlflow.db"
"""SQLite tracking file, relative to the working directory (the results tree)."""

ENV_TRACKING = "FUSIONFM_TRACKING"
"""Set to ``0`` (or ``false``/``no``/``off``) to disable tracking regardless of the config."""

# MLflow's limits (mlflow.utils.validation); used as fallbacks if the import moves.
_MAX_PARAM_VAL_LENGTH = 6000
_MAX_TAG_VAL_LENGTH = 8000
_MAX_METRICS_PER_BATCH = 1000
_MAX_PARAMS_TAGS_PER_BATCH = 100
_TAG_PARENT_RUN_ID = "mlflow.parentRunId"  # mlflow.utils.mlflow_tags, without importing mlflow
_TAG_USER = "mlflow.user"
JOURNAL_DIRNAME = "journal"
_SMALL_ARTIFACT_BYTES = 50 * 1024**2

_RETRY_ATTEMPTS = 12
_RETRY_BASE_S = 0.05
_RETRY_MAX_S = 3.0
_TRANSIENT_WORDS = ("locked", "busy")

_T = TypeVar("_T")


# --------------------------------------------------------------------------------------------
# configuration helpers


def tracking_enabled(enabled: bool = True) -> bool:
    """Whether tracking is on: ``enabled`` and the environment does not say ``FUSIONFM_TRACKING=0``.

    Args:
        enabled: the config switch (``config.mlflow.enabled``).

    Returns:
        ``True`` when MLflow calls should be made.
    """
    value = os.environ.get(ENV_TRACKING, "1").strip().lower()
    return bool(enabled) and value not in ("0", "false", "no", "off")


def tracking_uri(workdir: Path | str = ".") -> str:
    """The tracking URI: ``MLFLOW_TRACKING_URI`` if set, else the SQLite file of the results tree.

    Args:
        workdir: the working directory (results tree) the default path is relative to.

    Returns:
        ``$MLFLOW_TRACKING_URI``, or ``sqlite:///<abs workdir>/results/mlflow/mlflow.db`` (an
        absolute path, i.e. four slashes after ``sqlite:``).
    """
    env = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if env:
        return env
    path = Path(workdir).resolve() / DEFAULT_TRACKING_URI_PATH
    return f"sqlite:///{path.as_posix()}"


def _lock_path_for_uri(uri: str) -> Path | None:
    """The inter-process lock file that serializes store calls for ``uri``, or ``None``.

    Only file-backed SQLite databases are locked (``<db>.lock`` beside the database); server
    URIs (``http``/``https``) and in-memory SQLite need no file lock.
    """
    if not uri.startswith("sqlite:"):
        return None
    from sqlalchemy.engine import make_url

    database = make_url(uri).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database + ".lock").absolute()


def _is_http(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


@lru_cache(maxsize=1)
def _git_commit() -> str | None:
    """``git rev-parse HEAD`` of the code (package directory first, then the working directory)."""
    for cwd in (Path(__file__).resolve().parent, Path.cwd()):
        try:
            out = subprocess.run(
                ["git", "rev-parse", "HEAD"],
                cwd=cwd,
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            continue
        commit = out.stdout.strip()
        if out.returncode == 0 and commit:
            return commit
    return None


def _config_sha256(config: Mapping[str, Any] | None) -> str | None:
    from fusionfm.config import config_sha256

    return None if config is None else config_sha256(config)


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "unknown"


def _stringify(value: Any, limit: int) -> str:
    """A param/tag value as MLflow stores it: a string, truncated to ``limit`` characters."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, Mapping | list | tuple):
        text = json.dumps(value, sort_keys=isinstance(value, Mapping), default=str)
    else:
        text = str(value)
    if len(text) > limit:
        _LOG.debug("truncating a value of %d characters to MLflow's limit %d", len(text), limit)
        text = text[:limit]
    return text


def _param_limit() -> int:
    try:
        from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH
    except ImportError:  # pragma: no cover
        return _MAX_PARAM_VAL_LENGTH
    return int(MAX_PARAM_VAL_LENGTH)


def _tag_limit() -> int:
    try:
        from mlflow.utils.validation import MAX_TAG_VAL_LENGTH
    except ImportError:  # pragma: no cover
        return _MAX_TAG_VAL_LENGTH
    return int(MAX_TAG_VAL_LENGTH)


def _finite_metrics(metrics: Mapping[str, float], run: object) -> list[tuple[str, float]]:
    """``(name, value)`` of the finite values; non-finite ones are skipped with a warning."""
    kept, skipped = [], []
    for key, value in metrics.items():
        number = float(value)
        if math.isfinite(number):
            kept.append((str(key), number))
        else:
            skipped.append(key)
    if skipped:
        _LOG.warning("run %s: skipping non-finite metric values %s", run, skipped)
    return kept


def _dict_text(data: Mapping[str, Any], name: str) -> str:
    """``data`` as the text of artifact ``name``: YAML for ``.yaml``/``.yml``, else JSON."""
    if Path(name).suffix.lower() in (".yaml", ".yml"):
        import yaml

        return yaml.safe_dump(json.loads(json.dumps(data, default=str)), sort_keys=False)
    return json.dumps(data, indent=2, default=str)


def _chunks(items: list[_T], size: int) -> Iterator[list[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --------------------------------------------------------------------------------------------
# inter-process locks


class _InterProcessLock:
    """An exclusive ``fcntl.flock`` on a lock file, reentrant within one process.

    ``flock`` locks belong to an open file description, so a second ``open`` of the same file in
    the same process would deadlock against the first; the thread lock and depth counter make
    nested and multi-threaded use safe.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    def __enter__(self) -> _InterProcessLock:
        self._thread_lock.acquire()
        try:
            if self._depth == 0:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                except BaseException:
                    os.close(fd)
                    raise
                self._fd = fd
            self._depth += 1
        except BaseException:
            self._thread_lock.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._depth -= 1
            if self._depth == 0 and self._fd is not None:
                fd, self._fd = self._fd, None
                try:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                finally:
                    os.close(fd)
        finally:
            self._thread_lock.release()


_LOCKS: dict[Path, _InterProcessLock] = {}
_LOCKS_GUARD = threading.Lock()


def _file_lock(path: Path) -> _InterProcessLock:
    """The process-wide lock object for ``path`` (use it as a context manager)."""
    path = Path(path).absolute()
    with _LOCKS_GUARD:
        lock = _LOCKS.get(path)
        if lock is None:
            lock = _LOCKS[path] = _InterProcessLock(path)
        return lock


def _store_lock(uri: str) -> contextlib.AbstractContextManager[object]:
    """The lock that serializes store calls for ``uri``: a file lock for SQLite, else nothing."""
    path = _lock_path_for_uri(uri)
    return _file_lock(path) if path is not None else contextlib.nullcontext()


def _exception_chain(err: BaseException) -> Iterator[BaseException]:
    """``err`` and the exceptions it wraps (``__cause__``, else ``__context__``), each once."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _is_transient(err: BaseException) -> bool:
    """Whether ``err`` (or an exception it wraps) is a retryable "database is locked/busy"."""
    return any(
        (
            type(e).__name__ in ("OperationalError", "MlflowException")
            or "sqlite" in type(e).__module__
        )
        and any(word in str(e).lower() for word in _TRANSIENT_WORDS)
        for e in _exception_chain(err)
    )


_CORRUPT_WORDS = ("file is not a database", "database disk image is malformed")


def _is_corrupt_sqlite(err: BaseException) -> bool:
    """Whether ``err`` (or an exception it wraps) says the SQLite file is not a database."""
    return any(word in str(e).lower() for e in _exception_chain(err) for word in _CORRUPT_WORDS)


def _corrupt_store_error(uri: str) -> InputError:
    """The one-line error for a tracking store whose SQLite file is damaged."""
    from fusionfm.io import InputError

    path = uri.removeprefix("sqlite:///") if uri.startswith("sqlite:///") else uri
    shown = os.path.relpath(path) if os.path.isabs(path) else path
    return InputError(
        f"{shown}: not a readable MLflow SQLite store (damaged or not a database); move it aside "
        f"(mv {shown} {shown}.broken) to start a new store, or run with {ENV_TRACKING}=0 to turn "
        "tracking off"
    )


# --------------------------------------------------------------------------------------------
# the store: one MlflowClient per URI, every call locked (SQLite) and retried


class _Store:
    """Runs MLflow client calls for one tracking URI, serialized and retried as needed."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.is_http = _is_http(uri)
        self._client: MlflowClient | None = None

    def call(self, fn: Callable[[MlflowClient], _T], what: str = "mlflow call") -> _T:
        """Run ``fn(client)`` under the store lock, retrying transient lock errors with backoff.

        Args:
            fn: the client call; keep it short, the lock is held while it runs.
            what: a label for log messages.

        Returns:
            What ``fn`` returns.
        """
        for attempt in range(_RETRY_ATTEMPTS):
            try:
                with _store_lock(self.uri):
                    return fn(self._get_client())
            except Exception as err:
                if _is_corrupt_sqlite(err):
                    raise _corrupt_store_error(self.uri) from err
                if attempt == _RETRY_ATTEMPTS - 1 or not _is_transient(err):
                    raise
                delay = min(_RETRY_MAX_S, _RETRY_BASE_S * 2**attempt) * (0.5 + random.random())
                _LOG.warning(
                    "%s: transient tracking-store error (attempt %d/%d), retrying in %.2fs: %s",
                    what,
                    attempt + 1,
                    _RETRY_ATTEMPTS,
                    delay,
                    err,
                )
                time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _get_client(self) -> MlflowClient:
        # Built (and, for SQLite, the schema created or migrated on first use) under the lock.
        if self._client is None:
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=self.uri)
        return self._client


_STORES: dict[str, _Store] = {}
_STORES_GUARD = threading.Lock()


def _store(uri: str) -> _Store:
    with _STORES_GUARD:
        store = _STORES.get(uri)
        if store is None:
            store = _STORES[uri] = _Store(uri)
        return store


# --------------------------------------------------------------------------------------------
# trackers


class Tracker:
    """Logs to one MLflow run by id (what :func:`stage_run` yields).

    Attributes:
        run_id: the MLflow run id (``None`` for :class:`NoopTracker`).
        tracking_uri: the tracking URI the run lives in.
    """

    run_id: str | None

    def __init__(self, run_id: str, uri: str, artifact_uri: str | None = None) -> None:
        """Wrap an existing run.

        Args:
            run_id: the MLflow run id.
            uri: its tracking URI.
            artifact_uri: the run's artifact root, if known (looked up on first artifact).
        """
        self.run_id = run_id
        self.tracking_uri = uri
        self._store = _store(uri)
        self._artifact_uri = artifact_uri
        self._artifact_repo: ArtifactRepository | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(run_id={self.run_id!r})"

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log parameters; values are stringified and truncated to MLflow's length limit.

        Re-logging a key with the *same* value is fine; a different value is an MLflow error.

        Args:
            params: name -> value.
        """
        if not params:
            return
        from mlflow.entities import Param

        limit = _param_limit()
        batch = [Param(str(key), _stringify(value, limit)) for key, value in params.items()]
        run_id = self.run_id
        self._store.call(lambda c: c.log_batch(run_id, params=batch), "log_params")

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log metric values at ``step``; NaN and infinite values are skipped with a warning.

        Args:
            metrics: name -> number (anything ``float()`` accepts, e.g. 0-d tensors).
            step: the global step (``0`` when omitted, as in MLflow).
        """
        if not metrics:
            return
        from mlflow.entities import Metric

        timestamp = int(time.time() * 1000)
        batch = [
            Metric(key, value, timestamp, int(step or 0))
            for key, value in _finite_metrics(metrics, self.run_id)
        ]
        if not batch:
            return
        run_id = self.run_id
        self._store.call(lambda c: c.log_batch(run_id, metrics=batch), "log_metrics")

    def log_artifact(self, path: str | os.PathLike[str], artifact_path: str | None = None) -> None:
        """Copy a small local file (or directory) into the run's artifacts.

        Artifacts are for plots and metric JSON; checkpoints and Parquet files stay Snakemake
        outputs (record their paths as tags instead). The copy runs outside the store lock.

        Args:
            path: the local file or directory.
            artifact_path: sub-directory inside the run's artifacts (default: the root).
        """
        path = Path(path)
        if path.is_file() and path.stat().st_size > _SMALL_ARTIFACT_BYTES:
            _LOG.warning(
                "run %s: logging a large artifact %s (%d bytes); keep big files as outputs",
                self.run_id,
                path,
                path.stat().st_size,
            )
        repo = self._repo()
        if path.is_dir():
            sub = path.name if artifact_path is None else f"{artifact_path}/{path.name}"
            repo.log_artifacts(str(path), sub)
        else:
            repo.log_artifact(str(path), artifact_path)

    def log_dict(self, data: Mapping[str, Any], name: str) -> None:
        """Store ``data`` as an artifact file, YAML for ``.yaml``/``.yml`` names, else JSON.

        Args:
            data: JSON-serializable mapping (other values are stringified).
            name: the artifact's path inside the run, e.g. ``"metrics.json"`` or
                ``"eval/summary.json"``.
        """
        rel = Path(name)
        with tempfile.TemporaryDirectory(prefix="fusionfm-mlflow-") as tmp:
            file = Path(tmp) / rel.name
            file.write_text(_dict_text(data, name), encoding="utf-8")
            parent = rel.parent.as_posix()
            self.log_artifact(file, None if parent in ("", ".") else parent)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set run tags (values stringified and truncated to MLflow's limit).

        Args:
            tags: name -> value.
        """
        if not tags:
            return
        from mlflow.entities import RunTag

        limit = _tag_limit()
        batch = [RunTag(str(key), _stringify(value, limit)) for key, value in tags.items()]
        run_id = self.run_id
        self._store.call(lambda c: c.log_batch(run_id, tags=batch), "set_tags")

    def _repo(self) -> ArtifactRepository:
        if self._artifact_repo is None:
            if self._artifact_uri is None:
                run_id = self.run_id
                run = self._store.call(lambda c: c.get_run(run_id), "get_run")
                self._artifact_uri = run.info.artifact_uri
            from mlflow.store.artifact.artifact_repository_registry import (
                get_artifact_repository,
            )

            self._artifact_repo = get_artifact_repository(
                self._artifact_uri, tracking_uri=self.tracking_uri
            )
        return self._artifact_repo


class NoopTracker(Tracker):
    """A :class:`Tracker` that does nothing (tracking disabled); ``run_id`` is ``None``."""

    def __init__(self) -> None:
        self.run_id = None
        self.tracking_uri = None

    def log_params(self, params: Mapping[str, Any]) -> None:
        return None

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        return None

    def log_artifact(self, path: str | os.PathLike[str], artifact_path: str | None = None) -> None:
        return None

    def log_dict(self, data: Mapping[str, Any], name: str) -> None:
        return None

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        return None


def journal_dir(parent_json: Path | str) -> Path:
    """The journal of deferred runs: ``journal/`` beside ``parent_json``."""
    return Path(parent_json).parent / JOURNAL_DIRNAME


def _now_ms() -> int:
    return int(time.time() * 1000)


class JournalTracker(Tracker):
    """A :class:`Tracker` that records one run in the journal instead of calling MLflow.

    The record (``kind``, ``run_name``, ``tags``, ``params``, ``metrics`` as ``[name, value,
    timestamp_ms, step]``, ``status``, ``start_time``, ``end_time``) is written atomically to
    ``<journal>/<key>.json`` by :meth:`close`; artifacts are copied at once into
    ``<journal>/<key>.files/`` (the run's artifact tree), so later changes to the logged files do
    not leak into the run. :func:`sync_journal` replays it. ``run_id`` is ``None`` until then.
    """

    def __init__(
        self, journal: Path, run_name: str, tags: Mapping[str, Any], kind: str = "run"
    ) -> None:
        """Start a record.

        Args:
            journal: the journal folder (:func:`journal_dir`).
            run_name: the MLflow run name.
            tags: the run's tags (already stringified).
            kind: ``run`` (a child run) or ``parent`` (metrics for the parent run).
        """
        self.run_id = None
        self.tracking_uri = None
        self.journal = Path(journal)
        # time first: the sync replays records in the order the runs started
        self.key = f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.record: dict[str, Any] = {
            "kind": kind,
            "run_name": run_name,
            "tags": dict(tags),
            "params": {},
            "metrics": [],
            "status": "RUNNING",
            "start_time": _now_ms(),
            "end_time": None,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(key={self.key!r})"

    @property
    def files_dir(self) -> Path:
        """Where this run's artifacts wait for the sync."""
        return self.journal / f"{self.key}.files"

    def log_params(self, params: Mapping[str, Any]) -> None:
        self.record["params"].update(
            {str(key): _stringify(value, _MAX_PARAM_VAL_LENGTH) for key, value in params.items()}
        )

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        timestamp = _now_ms()
        self.record["metrics"] += [
            [key, value, timestamp, int(step or 0)]
            for key, value in _finite_metrics(metrics, self.run_name)
        ]

    def log_artifact(self, path: str | os.PathLike[str], artifact_path: str | None = None) -> None:
        path = Path(path)
        target = self.files_dir / (artifact_path or "")
        target.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            shutil.copytree(path, target / path.name, dirs_exist_ok=True)
        else:
            shutil.copy2(path, target / path.name)

    def log_dict(self, data: Mapping[str, Any], name: str) -> None:
        target = self.files_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_dict_text(data, name), encoding="utf-8")

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self.record["tags"].update(
            {str(key): _stringify(value, _MAX_TAG_VAL_LENGTH) for key, value in tags.items()}
        )

    @property
    def run_name(self) -> str:
        """The MLflow run name of the record."""
        return str(self.record["run_name"])

    def close(self, status: str) -> Path:
        """End the run with ``status`` and write the record; returns its path."""
        self.record["status"] = status
        self.record["end_time"] = _now_ms()
        path = self.journal / f"{self.key}.json"
        _write_json_atomic(path, self.record)
        return path


# --------------------------------------------------------------------------------------------
# parent run


def _read_parent_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        _LOG.warning("%s: unreadable (%s); creating a new parent run", path, err)
        return None
    if not isinstance(info, dict) or not info.get("run_id") or not info.get("experiment_id"):
        _LOG.warning("%s: no run_id/experiment_id; creating a new parent run", path)
        return None
    return info


def recorded_experiment(parent_json: Path | str) -> str | None:
    """The experiment name ``parent_json`` records (``None``: no readable record)."""
    experiment = (_read_parent_json(Path(parent_json)) or {}).get("experiment")
    return None if experiment is None else str(experiment)


def _write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    from fusionfm.io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _run_is_live(client: MlflowClient, run_id: str) -> bool:
    """Whether ``run_id`` exists in the store and is not deleted."""
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException as err:
        if _is_transient(err):
            raise
        return False
    return run.info.lifecycle_stage != "deleted"


def _get_or_create_experiment(
    client: MlflowClient, name: str, artifact_location: str | None
) -> str:
    """The id of experiment ``name``, created (or restored, if deleted) when needed."""
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return client.create_experiment(name, artifact_location=artifact_location)
        except MlflowException as err:
            if _is_transient(err):
                raise
            experiment = client.get_experiment_by_name(name)  # created by someone else meanwhile
            if experiment is None:
                raise
    if experiment.lifecycle_stage == "deleted":
        _LOG.warning("MLflow experiment %r was deleted; restoring it", name)
        client.restore_experiment(experiment.experiment_id)
    return experiment.experiment_id


def _parent_record(run: Any, experiment: str, uri: str) -> dict[str, Any]:
    """The ``parent.json`` content of parent run ``run`` (its id, experiment, store, the git
    commit and config hash it was tagged with, and its start time)."""
    return {
        "run_id": run.info.run_id,
        "experiment_id": run.info.experiment_id,
        "experiment": experiment,
        "tracking_uri": uri,
        "git_commit": run.data.tags.get("git.commit"),
        "config_sha256": run.data.tags.get("config.sha256"),
        "created": datetime.fromtimestamp(run.info.start_time / 1000, UTC).isoformat(
            timespec="seconds"
        ),
    }


def _find_parent_run(client: MlflowClient, experiment_id: str, workdir: str) -> Any:
    """The newest live parent run of the results tree in ``workdir``, or None."""
    runs = client.search_runs(
        [experiment_id],
        filter_string="tags.`fusionfm.role` = 'parent'",
        max_results=1000,
        order_by=["attributes.start_time DESC"],
    )
    return next((r for r in runs if r.data.tags.get("workdir") == workdir), None)


def ensure_parent_run(
    parent_json: Path | str,
    experiment: str,
    config: Mapping[str, Any] | None = None,
    enabled: bool = True,
) -> dict[str, Any]:
    """Get or create the results tree's parent run and record it in ``parent_json``.

    If ``parent_json`` exists and its run still exists (not deleted) in the current tracking
    store, it is returned unchanged. If it is missing or unreadable but the experiment holds a
    live parent run of this working directory, that run is recorded again, so a damaged
    ``parent.json`` does not leave two parents of one tree. Otherwise the experiment is created if needed (with its
    artifact location ``<parent_json dir>/artifacts`` as a ``file:`` URI for local stores, so
    nothing lands in ``./mlruns``; a server keeps its own artifact root), a parent run is
    created (status ``FINISHED``: it is an index entry, children and aggregate metrics can
    still be logged to it) and ``parent_json`` is written atomically. The check-and-create
    holds ``<parent_json>.lock``, so racing processes create exactly one parent.

    Args:
        parent_json: e.g. ``results/mlflow/parent.json``.
        experiment: the MLflow experiment name, used when the parent is created.
        config: the validated config; its canonical-JSON sha256 is recorded and the config is
            stored as the parent's ``config.json`` artifact. ``None`` records no hash.
        enabled: the config switch; with tracking disabled nothing is touched.

    Returns:
        The ``parent.json`` content: ``run_id``, ``experiment_id``, ``experiment``,
        ``tracking_uri``, ``git_commit``, ``config_sha256``, ``created`` (ISO 8601, UTC);
        an empty dict when tracking is disabled.
    """
    if not tracking_enabled(enabled):
        return {}
    from mlflow.utils.mlflow_tags import MLFLOW_USER

    parent_json = Path(parent_json)
    uri = tracking_uri()
    store = _store(uri)
    with _file_lock(parent_json.with_name(parent_json.name + ".lock")):
        info = _read_parent_json(parent_json)
        if info is not None:
            run_id = str(info["run_id"])
            if store.call(lambda c: _run_is_live(c, run_id), "get parent run"):
                if info.get("experiment") not in (None, experiment):
                    _LOG.warning(
                        "%s: parent run lives in experiment %r, not %r; keeping it (one parent "
                        "per results tree)",
                        parent_json,
                        info.get("experiment"),
                        experiment,
                    )
                sha = _config_sha256(config)
                if sha is not None and info.get("config_sha256") not in (None, sha):
                    _LOG.warning(
                        "%s: config changed since the parent run was created (sha256 %s -> %s)",
                        parent_json,
                        info.get("config_sha256"),
                        sha,
                    )
                return info
            _LOG.info(
                "%s: run %s is not in %s; creating a new parent run", parent_json, run_id, uri
            )

        artifact_location = (
            None if _is_http(uri) else (parent_json.parent / "artifacts").resolve().as_uri()
        )
        experiment_id = store.call(
            lambda c: _get_or_create_experiment(c, experiment, artifact_location),
            "get/create experiment",
        )
        workdir = Path.cwd()
        # parent.json lost or damaged: this tree's parent may still be in the store; reuse it.
        found = store.call(
            lambda c: _find_parent_run(c, experiment_id, str(workdir)), "find parent run"
        )
        if found is not None:
            info = _parent_record(found, experiment, uri)
            _write_json_atomic(parent_json, info)
            _LOG.info("%s: recorded the existing parent run %s again", parent_json, info["run_id"])
            return info
        commit = _git_commit()
        sha = _config_sha256(config)
        tags = {
            MLFLOW_USER: _user(),
            "fusionfm.role": "parent",
            "workdir": str(workdir),
            "git.commit": commit,
            "config.sha256": sha,
        }
        tags = {key: value for key, value in tags.items() if value is not None}
        run = store.call(
            lambda c: c.create_run(experiment_id, tags=tags, run_name=f"parent/{workdir.name}"),
            "create parent run",
        )
        run_id = run.info.run_id
        store.call(lambda c: c.set_terminated(run_id, "FINISHED"), "finish parent run")
        info = _parent_record(run, experiment, uri)
        _write_json_atomic(parent_json, info)
        _LOG.info("created MLflow parent run %s in experiment %r (%s)", run_id, experiment, uri)
        if config is not None:  # after parent.json: a failure here leaves no orphan parent
            Tracker(run_id, uri, run.info.artifact_uri).log_dict(dict(config), "config.json")
        return info


def log_to_parent(
    parent_json: Path | str,
    metrics: Mapping[str, float],
    experiment: str = "fusionfm",
    enabled: bool = True,
    step: int | None = None,
    defer: bool = False,
) -> None:
    """Log aggregate metrics (average accuracy, forgetting, ...) on the parent run.

    Args:
        parent_json: the results tree's ``parent.json`` (the parent is created if missing).
        metrics: name -> number; NaN/inf values are skipped.
        experiment: experiment name, used only if the parent has to be created.
        enabled: the config switch.
        step: optional step.
        defer: record them in the journal (a ``parent`` record) for :func:`sync_journal`.
    """
    if not tracking_enabled(enabled):
        return
    if defer:
        record = JournalTracker(journal_dir(parent_json), "parent", {}, kind="parent")
        record.log_metrics(metrics, step=step)
        record.close("FINISHED")
        return
    parent = ensure_parent_run(parent_json, experiment)
    Tracker(parent["run_id"], tracking_uri()).log_metrics(metrics, step=step)


# --------------------------------------------------------------------------------------------
# child runs


@contextlib.contextmanager
def stage_run(
    parent_json: Path | str,
    rule: str,
    wildcards: Mapping[str, str],
    params: Mapping[str, Any] | None = None,
    experiment: str = "fusionfm",
    enabled: bool = True,
    tags: Mapping[str, Any] | None = None,
    defer: bool = False,
) -> Iterator[Tracker]:
    """Open a child run for one Snakemake job under the results tree's parent run.

    The run is named ``"{rule}/{wildcard values joined by '/'}"`` and tagged ``stage``,
    ``snakemake.rule``, ``wc.<name>``, ``git.commit``, ``config.sha256`` (the parent's),
    ``slurm.job_id`` (if ``SLURM_JOB_ID`` is set), ``mlflow.parentRunId`` and ``tags``.
    ``MLFLOW_RUN_ID`` in the environment is ignored.

    Args:
        parent_json: the results tree's ``parent.json`` (the parent is created if missing).
        rule: the Snakemake rule name.
        wildcards: the job's wildcards (``dict(snakemake.wildcards)``).
        params: logged once as run params (stringified, truncated to MLflow's limit).
        experiment: experiment name, used only if the parent has to be created.
        enabled: the config switch; disabled (or ``FUSIONFM_TRACKING=0``) yields a
            :class:`NoopTracker`.
        tags: extra tags.
        defer: yield a :class:`JournalTracker` (no MLflow import, no store access; the run
            appears in MLflow when :func:`sync_journal` replays it) instead of a live run.

    Yields:
        The :class:`Tracker` of the child run. On normal exit the run is marked ``FINISHED``;
        if the body raises it is marked ``FAILED`` (``KILLED`` for ``KeyboardInterrupt``) and
        the exception propagates.
    """
    if not tracking_enabled(enabled):
        yield NoopTracker()
        return
    if os.environ.get("MLFLOW_RUN_ID"):
        _LOG.warning(
            "ignoring MLFLOW_RUN_ID=%s; stage runs are children of parent.json's run",
            os.environ["MLFLOW_RUN_ID"],
        )
    # dict(...items()) also accepts Snakemake's Namedlist of wildcards
    wildcards = {str(name): str(value) for name, value in wildcards.items()}
    run_name = "/".join([rule, *wildcards.values()])
    parent = (
        _read_parent_json(Path(parent_json)) or {}
        if defer
        else ensure_parent_run(parent_json, experiment)
    )
    run_tags: dict[str, Any] = {
        _TAG_PARENT_RUN_ID: parent.get("run_id"),
        _TAG_USER: _user(),
        "stage": rule,
        "snakemake.rule": rule,
        **{f"wc.{name}": value for name, value in wildcards.items()},
        "git.commit": _git_commit(),
        "config.sha256": parent.get("config_sha256"),
        "slurm.job_id": os.environ.get("SLURM_JOB_ID") or None,
        **dict(tags or {}),
    }
    run_tags = {
        key: _stringify(val, _MAX_TAG_VAL_LENGTH if defer else _tag_limit())
        for key, val in run_tags.items()
        if val is not None
    }
    tracker: Tracker
    if defer:
        tracker = journal = JournalTracker(journal_dir(parent_json), run_name, run_tags)
        finish: Callable[[str], object] = journal.close
    else:
        uri = tracking_uri()
        store = _store(uri)
        experiment_id = str(parent["experiment_id"])
        run = store.call(
            lambda c: c.create_run(experiment_id, tags=run_tags, run_name=run_name), "create run"
        )
        run_id = run.info.run_id
        tracker = Tracker(run_id, uri, run.info.artifact_uri)

        def finish(status: str) -> object:
            return store.call(lambda c: c.set_terminated(run_id, status), "end run")

    status = "FINISHED"
    try:
        if params:
            tracker.log_params(params)
        yield tracker
    except SystemExit as err:
        status = "FINISHED" if err.code in (None, 0) else "FAILED"
        raise
    except Exception:
        status = "FAILED"
        raise
    except BaseException:
        status = "KILLED"
        raise
    finally:
        try:
            finish(status)
        except Exception:
            _LOG.exception("could not mark MLflow run %s as %s", run_name, status)
            if status == "FINISHED":
                raise


# --------------------------------------------------------------------------------------------
# the journal of deferred runs


def sync_journal(
    parent_json: Path | str, experiment: str = "fusionfm", enabled: bool = True
) -> int:
    """Replay every record of the journal beside ``parent_json`` into MLflow, then delete it.

    Each ``run`` record becomes a child run of the parent run (created if missing) with its
    recorded name, tags, params, metrics (steps and timestamps), artifacts, status and start and
    end times; each ``parent`` record's metrics go to the parent run. Records are replayed in the
    order their runs started. A record that fails to replay is kept (and retried by the next
    sync) with a warning; the others go on. Holds ``journal/.sync.lock``, so two syncs of one
    results tree do not replay a record twice.

    Args:
        parent_json: the results tree's ``parent.json``.
        experiment: experiment name, used only if the parent has to be created.
        enabled: the config switch; disabled (or ``FUSIONFM_TRACKING=0``): nothing is done.

    Returns:
        The number of records replayed.
    """
    journal = journal_dir(parent_json)
    if not tracking_enabled(enabled) or not any(journal.glob("*.json")):
        return 0
    with _file_lock(journal / ".sync.lock"):
        parent = ensure_parent_run(parent_json, experiment)
        uri = tracking_uri()
        replayed = 0
        for path in sorted(journal.glob("*.json")):
            files = path.with_suffix(".files")
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
                if record.get("kind") == "parent":
                    _replay_metrics(_store(uri), parent["run_id"], record["metrics"])
                else:
                    _replay_run(uri, parent, record, files)
            except Exception as err:  # keep the record for the next sync
                _LOG.warning("%s: not logged to MLflow (%s); kept for the next sync", path, err)
                continue
            path.unlink()
            shutil.rmtree(files, ignore_errors=True)
            replayed += 1
    _LOG.info("logged %d journal record(s) to MLflow (%s)", replayed, uri)
    return replayed


def _replay_metrics(store: _Store, run_id: str, metrics: list[list[Any]]) -> None:
    from mlflow.entities import Metric

    batch = [Metric(str(k), float(v), int(ts), int(step)) for k, v, ts, step in metrics]
    for chunk in _chunks(batch, _MAX_METRICS_PER_BATCH):
        store.call(lambda c, chunk=chunk: c.log_batch(run_id, metrics=chunk), "log_metrics")


def _replay_run(
    uri: str, parent: Mapping[str, Any], record: Mapping[str, Any], files: Path
) -> None:
    """One ``run`` record as a finished child run of ``parent``."""
    from mlflow.entities import Param, RunTag

    store = _store(uri)
    tags = {
        **record["tags"],
        _TAG_PARENT_RUN_ID: parent["run_id"],
        "config.sha256": record["tags"].get("config.sha256") or parent.get("config_sha256"),
    }
    tags = {key: value for key, value in tags.items() if value is not None}
    experiment_id = str(parent["experiment_id"])
    run = store.call(
        lambda c: c.create_run(
            experiment_id,
            start_time=int(record["start_time"]),
            tags=tags,
            run_name=record["run_name"],
        ),
        "create run",
    )
    run_id = run.info.run_id
    status = record["status"]
    try:
        params = [Param(k, v) for k, v in record["params"].items()]
        for chunk in _chunks(params, _MAX_PARAMS_TAGS_PER_BATCH):
            store.call(lambda c, chunk=chunk: c.log_batch(run_id, params=chunk), "log_params")
        _replay_metrics(store, run_id, record["metrics"])
        if files.is_dir() and any(files.iterdir()):
            Tracker(run_id, uri, run.info.artifact_uri)._repo().log_artifacts(str(files))
    except BaseException:
        status = "FAILED"
        store.call(lambda c: c.log_batch(run_id, tags=[RunTag("fusionfm.sync", "incomplete")]))
        raise
    finally:
        end_time = int(record["end_time"] or _now_ms())
        store.call(lambda c: c.set_terminated(run_id, status, end_time=end_time), "end run")
