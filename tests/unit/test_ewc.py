"""EWC: the penalty's closed form, Fisher estimation and accumulation, one consolidated step."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from fusionfm.continual import EWCPenalty, estimate_fisher, trainable_parameters
from fusionfm.io import InputError


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))


def _batches(seed: int, count: int = 3) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(8, 3, generator=g), torch.randn(8, 1, generator=g)) for _ in range(count)]


def _loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    x, y = batch
    return (model(x) - y).pow(2).mean()


def test_fisher_is_mean_of_squared_gradients() -> None:
    model = _model()
    batches = _batches(1)
    for p in model.parameters():  # a training step's gradients, which the Fisher must not touch
        p.grad = torch.full_like(p, 7.0)
    fisher = estimate_fisher(model, batches, _loss)
    assert all(torch.equal(p.grad, torch.full_like(p, 7.0)) for p in model.parameters())
    expected = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for batch in batches:
        model.zero_grad()
        _loss(model, batch).backward()
        for n, p in model.named_parameters():
            expected[n] += p.grad**2 / len(batches)
    model.zero_grad()
    assert set(fisher) == set(expected)
    for n in fisher:
        torch.testing.assert_close(fisher[n], expected[n])
    with pytest.raises(InputError):
        estimate_fisher(model, [], _loss)


def test_penalty_zero_at_anchor_positive_away_and_hand_formula() -> None:
    model = _model()
    ewc = EWCPenalty(strength=3.0)
    assert ewc.penalty(model).item() == 0.0  # nothing consolidated yet
    ewc.consolidate(model, _batches(2), _loss)
    assert ewc.penalty(model).item() == 0.0
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    value = ewc.penalty(model)
    assert value.item() > 0
    hand = 0.0
    for n, p in model.named_parameters():
        f, a = ewc.fisher[n].flatten().tolist(), ewc.anchor[n].flatten().tolist()
        for fi, ai, pi in zip(f, a, p.detach().flatten().tolist(), strict=True):
            hand += fi * (pi - ai) ** 2
    assert value.item() == pytest.approx(3.0 / 2 * hand, rel=1e-5)


def test_accumulation_sums_fisher_and_moves_anchor() -> None:
    model = _model()
    f1 = estimate_fisher(model, _batches(3), _loss)
    a1 = trainable_parameters(model)
    other = _model(seed=1)
    f2 = estimate_fisher(other, _batches(4), _loss)
    a2 = trainable_parameters(other)
    ewc = EWCPenalty(strength=1.0)
    ewc.accumulate(f1, a1)
    ewc.accumulate(f2, a2)
    assert ewc.num_tasks == 2
    for n in f1:
        torch.testing.assert_close(ewc.fisher[n], f1[n] + f2[n])
        assert torch.equal(ewc.anchor[n], a2[n])
    assert ewc.penalty(other).item() == 0.0
    with pytest.raises(InputError):
        ewc.accumulate(f1, {})


def test_one_step_with_ewc_lowers_combined_loss() -> None:
    model = _model()
    ewc = EWCPenalty(strength=10.0)
    ewc.consolidate(model, _batches(5), _loss)
    with torch.no_grad():  # move away from the anchor: the penalty now matters
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))
    new_task = _batches(6, count=1)[0]
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-2)

    def combined() -> torch.Tensor:
        return _loss(model, new_task) + ewc.penalty(model)

    before = combined()
    assert ewc.penalty(model).item() > 0
    optimizer.zero_grad()
    before.backward()
    optimizer.step()
    with torch.no_grad():
        assert combined().item() < before.item()


def test_state_dict_roundtrip_weights_only() -> None:
    model = _model()
    ewc = EWCPenalty(strength=2.5)
    ewc.consolidate(model, _batches(7), _loss)
    buffer = io.BytesIO()
    torch.save(ewc.state_dict(), buffer)
    buffer.seek(0)
    restored = EWCPenalty.from_state_dict(torch.load(buffer, weights_only=True))
    assert restored.strength == 2.5 and restored.num_tasks == 1
    for n in ewc.fisher:
        assert torch.equal(restored.fisher[n], ewc.fisher[n])
        assert torch.equal(restored.anchor[n], ewc.anchor[n])
    with torch.no_grad():
        model[0].weight.add_(0.3)
    assert restored.penalty(model).item() == pytest.approx(ewc.penalty(model).item())


def test_penalty_errors() -> None:
    ewc = EWCPenalty()
    ewc.accumulate({"w": torch.ones(2)}, {"w": torch.zeros(2)})
    with pytest.raises(InputError):
        ewc.penalty(_model())
    with pytest.raises(InputError):
        EWCPenalty(strength=-1.0)
