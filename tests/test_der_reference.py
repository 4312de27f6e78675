"""DER and DER++ against a hand-written reference of the paper's algorithm.

Buzzega et al., "Dark Experience for General Continual Learning", NeurIPS
2020, Algorithm 1, written as a plain torch loop with its own reservoir
(Vitter's algorithm R): at every step, draw ``(x', z')`` from the buffer
(and, for DER++, an independent ``(x'', y'')``), add
``alpha * MSE(f(x'), z') + beta * CE(f(x''), y'')`` to the batch's
cross-entropy, take an SGD step, then offer the batch's rows to the
reservoir with the logits of that step's forward pass. A row is offered
once, in the first epoch of its month.

The reference is given the estimator's random draws (its batches, its
buffer slots and the seed of its reservoir's uniforms), so the two must
agree exactly, step by step: the loss of every step, the buffer's rows and
logits at the end of every month, and the final weights.
"""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skorch.callbacks import Callback

from sklearn_cf import ContinualClassifier
from sklearn_cf.strategies import _der

ALPHA, BETA, LR = 0.3, 0.7, 0.1


class _Steps(Callback):
    """Every training step the estimator took: its month, epoch, rows and loss."""

    def __init__(self):
        self.steps = []

    def on_batch_end(self, net, batch=None, training=False, loss=None, **kwargs):
        if training:
            X, y = batch
            self.steps.append({"month": net.month_in_training_,
                               "epoch": net.epochs_run_in_month_,
                               "X": X.detach().clone(), "y": y.detach().clone(),
                               "loss": float(loss.detach())})


class _Reservoir:
    """The paper's buffer: reservoir sampling (Vitter's algorithm R) of
    ``(x, z, y)`` triples, one uniform per row once the buffer is full."""

    def __init__(self, capacity):
        self.capacity = capacity
        self.items = []
        self.n_seen = 0

    def offer(self, x, z, y, rng):
        if self.capacity is None or len(self.items) < self.capacity:
            self.items.append((x, z, y))
        else:
            j = int(np.floor(rng.random() * (self.n_seen + 1)))
            if j < self.capacity:
                self.items[j] = (x, z, y)
        self.n_seen += 1

    def take(self, slots):
        xs, zs, ys = zip(*(self.items[int(s)] for s in slots))
        return torch.stack(xs), torch.stack(zs), torch.stack(ys)


def _reference(module, steps, draws, seeds, alpha, beta, capacity):
    """Algorithm 1 of the paper, replaying the estimator's draws."""
    net = copy.deepcopy(module)
    buffer = _Reservoir(capacity)
    draws = iter(draws)
    seeds = iter(seeds)
    losses, month, rng, buffers = [], None, None, {}
    for step in steps:
        if step["month"] != month:
            if month is not None:
                buffers[month] = list(buffer.items)
            month, rng = step["month"], np.random.default_rng(next(seeds))
        x, y = step["X"], step["y"]
        out = net(x)
        loss = F.cross_entropy(out, y)
        if buffer.items:
            n_buffer = len(y)
            if alpha:
                population, slots = next(draws)
                assert population == len(buffer.items)
                assert len(slots) == n_buffer
                x1, z1, _ = buffer.take(slots)
                loss = loss + alpha * F.mse_loss(net(x1), z1)
            if beta:
                population, slots = next(draws)
                assert population == len(buffer.items)
                x2, _, y2 = buffer.take(slots)
                loss = loss + beta * F.cross_entropy(net(x2), y2)
        net.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in net.parameters():
                p -= LR * p.grad
        if step["epoch"] == 1:  # the row is trained for the first time
            for i in range(len(y)):
                buffer.offer(x[i], out[i].detach(), y[i], rng)
        losses.append(float(loss.detach()))
    buffers[month] = list(buffer.items)
    assert next(draws, None) is None  # the estimator drew no more than the paper
    return net, losses, buffers


def _stream():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3 * 36, 4)).astype(np.float32)
    shift = np.repeat([0.0, 1.0, -1.0], 36)
    y = ((X[:, 0] + shift * X[:, 1] > 0).astype(int) + (X[:, 2] > 1)).astype(int)
    return X, y, np.repeat([0, 1, 2], 36)


@pytest.mark.parametrize("memory_size", [10, None])
@pytest.mark.parametrize("strategy, alpha, beta", [("der", ALPHA, 0.0),
                                                   ("der++", ALPHA, BETA),
                                                   ("der++", 0.0, BETA)])
def test_der_is_the_papers_algorithm_step_by_step(monkeypatch, strategy, alpha, beta,
                                                  memory_size):
    X, y, months = _stream()
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    start = copy.deepcopy(module)

    draws, seeds = [], []
    draw = _der._draw_rows
    monkeypatch.setattr(_der, "_draw_rows", lambda rng, population, k: draws.append(
        (population, draw(rng, population, k))) or draws[-1][1])

    class Buffer(_der._MonthBuffer):
        def __init__(self, memory, n_rows, width, seed):
            seeds.append(seed)
            super().__init__(memory, n_rows, width, seed)

    monkeypatch.setattr(_der, "_MonthBuffer", Buffer)
    steps = _Steps()
    memories = {}
    clf = ContinualClassifier(module=module, optimizer=torch.optim.SGD, lr=LR, batch_size=8,
                              max_epochs=2, strategy=strategy, strategy__alpha=alpha,
                              strategy__beta=beta, memory_size=memory_size,
                              callbacks=[steps], random_state=0)
    for k in range(3):
        clf.partial_fit_month(X[months == k], y[months == k], classes=[0, 1, 2], month=k)
        memories[k] = [(X_.clone(), y_.clone()) for X_, y_ in clf.strategy_.memory.sources()]

    # Two epochs of 36 rows in batches of 8 (the last of 4) per month.
    assert len(steps.steps) == 3 * 2 * 5
    reference, losses, buffers = _reference(start, steps.steps, draws, seeds, alpha, beta,
                                            memory_size)
    # DER++'s two buffer batches are drawn independently.
    if alpha and beta:
        assert any(not np.array_equal(a[1], b[1]) for a, b in zip(draws[::2], draws[1::2]))
    np.testing.assert_allclose([s["loss"] for s in steps.steps], losses, rtol=1e-5, atol=1e-6)
    for k in range(3):
        rows = torch.cat([X_ for X_, _ in memories[k]])
        labels = torch.cat([y_ for _, y_ in memories[k]])
        x_ref, z_ref, y_ref = (torch.stack(t) for t in zip(*buffers[k]))
        torch.testing.assert_close(rows, torch.cat([x_ref, z_ref], dim=1), rtol=1e-5, atol=1e-6)
        assert torch.equal(labels, y_ref)
    for (name, got), want in zip(clf.module_.state_dict().items(),
                                 reference.state_dict().values()):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6, msg=name)
