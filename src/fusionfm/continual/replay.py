"""Experience replay: a per-task reservoir of training pairs from the finished tasks.

Each task keeps at most ``capacity_per_task`` items, chosen uniformly from everything offered
for that task by reservoir sampling (Vitter's Algorithm R), so the buffer does not depend on how
the task's data was split into calls of :meth:`ReplayBuffer.add`. :meth:`ReplayBuffer.sample`
draws a batch balanced across tasks, to be mixed into each training batch of the next task
(:func:`num_replay` gives how many items a mixing ratio asks for).

An item is one training sample: a tensor, or a mapping of names to tensors (for example
``{"y_a": (1, H, W), "y_b": (1, H, W), "x_1": (1, H, W)}``). Items are stored detached on the
CPU, and the whole buffer, random state included, round-trips through
``torch.save``/``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import Tensor

from fusionfm.io import InputError

Item = Tensor | dict[str, Tensor]
TaskKey = str | int


def num_replay(batch_size: int, ratio: float) -> int:
    """How many replayed items a batch of ``batch_size`` holds at mixing ratio ``ratio``.

    Args:
        batch_size: the size of the mixed batch.
        ratio: the fraction of the batch taken from the buffer, in [0, 1).

    Returns:
        int: ``round(batch_size * ratio)``, at least 1 when ``ratio > 0`` and at most
        ``batch_size - 1`` (the current task always keeps one slot).

    Raises:
        InputError: a ratio outside [0, 1) or a batch size below 1.
    """
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    if not 0.0 <= ratio < 1.0:
        raise InputError(f"replay ratio must be in [0, 1), got {ratio}")
    if ratio == 0.0 or batch_size == 1:
        return 0
    return min(max(1, round(batch_size * ratio)), batch_size - 1)


def _check(item: Any) -> None:
    """Raise unless ``item`` is a tensor or a mapping of names to tensors."""
    if isinstance(item, Tensor):
        return
    if isinstance(item, Mapping):
        for key, value in item.items():
            if not isinstance(value, Tensor):
                raise InputError(f"replay item field {key!r} is not a tensor: {type(value)}")
        return
    raise InputError(f"replay item must be a tensor or a mapping of tensors, got {type(item)}")


def _store(item: Item) -> Item:
    """A detached CPU copy of one (checked) item."""
    if isinstance(item, Tensor):
        return item.detach().cpu().clone()
    return {str(key): value.detach().cpu().clone() for key, value in item.items()}


def _split(items: Tensor | Mapping[str, Tensor] | Iterable[Any]) -> Iterable[Any]:
    """Items one at a time: a batched tensor or a mapping of batched tensors is split on dim 0."""
    if isinstance(items, Tensor):
        return list(items.unbind(0))
    if isinstance(items, Mapping):
        lengths = {key: len(value) for key, value in items.items()}
        if len(set(lengths.values())) > 1:
            raise InputError(f"replay: fields of a batch differ in length: {lengths}")
        count = next(iter(lengths.values()), 0)
        return [{key: value[i] for key, value in items.items()} for i in range(count)]
    return items


class ReplayBuffer:
    """Reservoir of items from each task, reproducible under a seed.

    Args:
        capacity_per_task: the most items kept per task (>= 1).
        seed: seed of the buffer's own random generator (reservoir decisions and, by default,
            sampling).

    Raises:
        InputError: a capacity below 1.
    """

    def __init__(self, capacity_per_task: int, seed: int = 0) -> None:
        if isinstance(capacity_per_task, bool) or capacity_per_task < 1:
            raise InputError(f"replay capacity_per_task must be >= 1, got {capacity_per_task}")
        self.capacity_per_task = int(capacity_per_task)
        self.seed = int(seed)
        self.generator = torch.Generator().manual_seed(self.seed)
        self._items: dict[TaskKey, list[Item]] = {}
        self._seen: dict[TaskKey, int] = {}

    @property
    def tasks(self) -> list[TaskKey]:
        """Tasks with at least one stored item, in the order they were first added."""
        return [task for task, items in self._items.items() if items]

    def __len__(self) -> int:
        return sum(len(items) for items in self._items.values())

    def items(self, task: TaskKey) -> list[Item]:
        """The items stored for ``task`` (a copy of the list; empty for an unknown task)."""
        return list(self._items.get(task, []))

    def seen(self, task: TaskKey) -> int:
        """How many items have been offered for ``task`` so far."""
        return self._seen.get(task, 0)

    def add(self, task: TaskKey, items: Tensor | Mapping[str, Tensor] | Iterable[Any]) -> None:
        """Offer items of ``task`` to its reservoir (Algorithm R).

        The first ``capacity_per_task`` items are kept; the n-th item after that replaces a
        uniformly chosen stored item with probability ``capacity_per_task / n``.

        Args:
            task: the task key (a task name such as ``"ivf"`` or its index).
            items: a batched tensor (split on dim 0), a mapping of batched tensors (split on
                dim 0 into per-item mappings) or an iterable of items.

        Raises:
            InputError: a task key that is not a str or an int, or an item that is not a tensor
                or a mapping of tensors.
        """
        if isinstance(task, bool) or not isinstance(task, str | int):
            raise InputError(f"replay task key must be a str or an int, got {task!r}")
        reservoir = self._items.setdefault(task, [])
        seen = self._seen.get(task, 0)
        for item in _split(items):
            _check(item)
            seen += 1
            if len(reservoir) < self.capacity_per_task:
                reservoir.append(_store(item))
                continue
            j = int(torch.randint(seen, (1,), generator=self.generator))
            if j < self.capacity_per_task:
                reservoir[j] = _store(item)
        self._seen[task] = seen

    def sample(
        self, n: int, generator: torch.Generator | None = None
    ) -> list[tuple[TaskKey, Item]]:
        """Draw ``n`` items balanced across tasks, in random order.

        Each stored task gets ``n // T`` items, and ``n % T`` randomly chosen tasks one more
        (``T`` tasks). Within a task items are drawn without replacement when it holds enough,
        with replacement otherwise.

        Args:
            n: the number of items (>= 0).
            generator: random generator (CPU); default the buffer's own, whose state is saved.

        Returns:
            list[tuple[TaskKey, Item]]: ``(task, item)`` pairs; the items are the stored ones (do
            not modify them in place).

        Raises:
            InputError: ``n < 0``, or ``n > 0`` with an empty buffer.
        """
        if n < 0:
            raise InputError(f"replay sample size must be >= 0, got {n}")
        if n == 0:
            return []
        tasks = self.tasks
        if not tasks:
            raise InputError("replay: cannot sample from an empty buffer")
        gen = generator if generator is not None else self.generator
        base, extra = divmod(n, len(tasks))
        counts = [base] * len(tasks)
        for index in torch.randperm(len(tasks), generator=gen)[:extra].tolist():
            counts[index] += 1
        drawn: list[tuple[TaskKey, Item]] = []
        for task, count in zip(tasks, counts, strict=True):
            stored = self._items[task]
            if count <= len(stored):
                picks = torch.randperm(len(stored), generator=gen)[:count]
            else:
                picks = torch.randint(len(stored), (count,), generator=gen)
            drawn.extend((task, stored[i]) for i in picks.tolist())
        order = torch.randperm(len(drawn), generator=gen).tolist()
        return [drawn[i] for i in order]

    def state_dict(self) -> dict[str, Any]:
        """Plain state (ints, str/int-keyed dicts, lists of tensors), loadable with
        ``torch.load(..., weights_only=True)``."""
        return {
            "capacity_per_task": self.capacity_per_task,
            "seed": self.seed,
            "generator_state": self.generator.get_state(),
            "tasks": list(self._items),
            "seen": dict(self._seen),
            "items": {task: list(items) for task, items in self._items.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` (the random state included).

        Raises:
            InputError: missing keys or a reservoir over capacity.
        """
        required = {"capacity_per_task", "seed", "generator_state", "tasks", "seen", "items"}
        missing = required - set(state)
        if missing:
            raise InputError(f"replay state: missing key(s) {sorted(missing)}")
        capacity = int(state["capacity_per_task"])
        items: dict[TaskKey, list[Item]] = {}
        for task in state["tasks"]:
            for item in state["items"][task]:
                _check(item)
            items[task] = [_store(item) for item in state["items"][task]]
        over = {task: len(v) for task, v in items.items() if len(v) > capacity}
        if over:
            raise InputError(f"replay state: tasks over capacity {capacity}: {over}")
        self.capacity_per_task = capacity
        self.seed = int(state["seed"])
        self.generator = torch.Generator()
        self.generator.set_state(state["generator_state"])
        self._items = items
        self._seen = {task: int(state["seen"].get(task, len(items[task]))) for task in items}

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> ReplayBuffer:
        """A new buffer restored from a :meth:`state_dict`."""
        buffer = cls(int(state["capacity_per_task"]), int(state.get("seed", 0)))
        buffer.load_state_dict(state)
        return buffer


def expected_keep_probability(capacity: int, seen: int) -> float:
    """The probability that a given offered item is in a reservoir of ``capacity`` after
    ``seen`` offers: ``min(1, capacity / seen)``."""
    return 1.0 if seen <= capacity else capacity / seen


__all__ = ["Item", "ReplayBuffer", "TaskKey", "expected_keep_probability", "num_replay"]
