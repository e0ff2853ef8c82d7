"""Replay buffer: capacity, per-task balance, reservoir uniformity, reproducibility, state."""

from __future__ import annotations

import io
from collections import Counter

import numpy as np
import pytest
import torch

from fusionfm.continual import ReplayBuffer, num_replay
from fusionfm.continual.replay import expected_keep_probability
from fusionfm.io import InputError


def _filled(seed: int = 0, capacity: int = 5) -> ReplayBuffer:
    buffer = ReplayBuffer(capacity, seed=seed)
    images = torch.rand(20, 1, 4, 4, generator=torch.Generator().manual_seed(seed))
    buffer.add("ivf", torch.arange(40).float().reshape(40, 1))
    buffer.add("mif", [torch.tensor([100.0 + i]) for i in range(3)])
    buffer.add(
        "mff",
        {"y_a": images, "x_1": torch.arange(20).float().reshape(20, 1, 1, 1)},
    )
    return buffer


def _contents(buffer: ReplayBuffer) -> dict:
    out = {}
    for task in buffer.tasks:
        items = buffer.items(task)
        out[task] = [
            {k: v.tolist() for k, v in item.items()} if isinstance(item, dict) else item.tolist()
            for item in items
        ]
    return out


def test_capacity_and_seen() -> None:
    buffer = _filled()
    assert buffer.tasks == ["ivf", "mif", "mff"]
    assert [len(buffer.items(t)) for t in buffer.tasks] == [5, 3, 5]
    assert len(buffer) == 13
    assert buffer.seen("ivf") == 40 and buffer.seen("mif") == 3 and buffer.seen("nope") == 0
    buffer.add("ivf", torch.zeros(100, 1))
    assert len(buffer.items("ivf")) == 5 and buffer.seen("ivf") == 140
    assert set(buffer.items("mff")[0]) == {"y_a", "x_1"}


def test_same_seed_same_contents_and_samples() -> None:
    a, b = _filled(seed=3), _filled(seed=3)
    assert _contents(a) == _contents(b)
    draw_a = [(t, x.tolist() if torch.is_tensor(x) else x["x_1"].tolist()) for t, x in a.sample(7)]
    draw_b = [(t, x.tolist() if torch.is_tensor(x) else x["x_1"].tolist()) for t, x in b.sample(7)]
    assert draw_a == draw_b
    assert _contents(_filled(seed=4)) != _contents(a)


def test_split_across_calls_is_same_reservoir_process() -> None:
    whole = ReplayBuffer(4, seed=9)
    whole.add(0, torch.arange(30).float())
    parts = ReplayBuffer(4, seed=9)
    for chunk in torch.arange(30).float().split(7):
        parts.add(0, chunk)
    assert _contents(whole) == _contents(parts)


def test_reservoir_is_uniform() -> None:
    """Every one of n offered items is kept with probability capacity / n. Fixed seeds, 8000
    reservoirs: a 10% bias on one item is 5 standard deviations, while a fair reservoir keeps
    every count within 4 (and the chi-square test at p > 0.001)."""
    from scipy.stats import chisquare

    trials, n, capacity = 8000, 20, 5
    counts = np.zeros(n)
    for seed in range(trials):
        buffer = ReplayBuffer(capacity, seed=seed)
        buffer.add("t", torch.arange(n))
        for x in buffer.items("t"):
            counts[int(x)] += 1
    p = expected_keep_probability(capacity, n)
    expected = trials * p  # 2000 per item
    z = (counts - expected) / np.sqrt(trials * p * (1 - p))
    assert np.abs(z).max() < 4, counts
    assert chisquare(counts, np.full(n, expected)).pvalue > 1e-3, counts


def test_expected_keep_probability() -> None:
    assert expected_keep_probability(5, 3) == 1.0
    assert expected_keep_probability(5, 5) == 1.0
    assert expected_keep_probability(5, 20) == 0.25
    assert expected_keep_probability(1, 4) == 0.25


def test_sample_per_task_balance() -> None:
    buffer = _filled(seed=1)
    gen = torch.Generator().manual_seed(0)
    for n in (1, 3, 7, 12, 30):
        drawn = buffer.sample(n, gen)
        assert len(drawn) == n
        per_task = Counter(task for task, _ in drawn)
        assert max(per_task.values()) - min(per_task.get(t, 0) for t in buffer.tasks) <= 1
    # without replacement while a task holds enough items
    drawn = buffer.sample(9, gen)
    ivf = [float(x) for t, x in drawn if t == "ivf"]
    assert len(ivf) == 3 and len(set(ivf)) == 3
    assert buffer.sample(0) == []
    with pytest.raises(InputError):
        ReplayBuffer(2).sample(1)
    with pytest.raises(InputError):
        buffer.sample(-1)


def test_state_dict_roundtrip_weights_only() -> None:
    buffer = _filled(seed=2)
    saved = io.BytesIO()
    torch.save(buffer.state_dict(), saved)
    saved.seek(0)
    restored = ReplayBuffer.from_state_dict(torch.load(saved, weights_only=True))
    assert _contents(restored) == _contents(buffer)
    assert restored.capacity_per_task == 5 and restored.seen("ivf") == 40
    # the random state travels too: both continue identically
    more = torch.arange(200, 260).float().reshape(60, 1)
    buffer.add("ivf", more)
    restored.add("ivf", more)
    assert _contents(restored) == _contents(buffer)
    left = [(t, x["x_1"].item() if isinstance(x, dict) else x.item()) for t, x in buffer.sample(6)]
    right = [
        (t, x["x_1"].item() if isinstance(x, dict) else x.item()) for t, x in restored.sample(6)
    ]
    assert left == right


def test_int_task_keys_and_errors() -> None:
    buffer = ReplayBuffer(2, seed=0)
    buffer.add(1, torch.zeros(3, 2))
    assert buffer.tasks == [1]
    with pytest.raises(InputError):
        ReplayBuffer(0)
    with pytest.raises(InputError):
        buffer.add(1, [3.0])
    with pytest.raises(InputError):
        buffer.add(1.5, torch.zeros(1))  # type: ignore[arg-type]


def test_num_replay() -> None:
    assert num_replay(8, 0.25) == 2
    assert num_replay(8, 0.0) == 0
    assert num_replay(4, 0.01) == 1
    assert num_replay(2, 0.9) == 1
    with pytest.raises(InputError):
        num_replay(8, 1.0)
