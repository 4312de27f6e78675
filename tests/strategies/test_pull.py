"""The closed-form pull's gradient (``_pull.add_pull_gradient``): against a
float64 hand computation, bit for bit against the per-parameter loop it
replaced, and following every rebinding of its anchors, weights and module."""

import numpy as np
import pytest
import torch
from conftest import FAST, make_stream

from sklearn_cf import ContinualClassifier
from sklearn_cf._mlp import MLP
from sklearn_cf.strategies import _ewc, _l2
from sklearn_cf.strategies._pull import add_pull_gradient


def per_parameter_pull(net, anchors, reg_lambda, weights=None, owner=None):
    """The implementation before issue 23: one parameter at a time, looked
    up by name at every call (the reference for bit equality)."""
    with torch.no_grad():
        for name, p in net.module_.named_parameters():
            if name not in anchors:
                continue
            diff = p - anchors[name]
            if weights is not None:
                diff.mul_(weights[name])
            if p.grad is None:
                p.grad = diff.mul_(reg_lambda)
            else:
                p.grad.add_(diff, alpha=reg_lambda)


class Owner:
    """A stand-in strategy: what the plan is kept for."""


class Net:
    """What add_pull_gradient reads of the estimator: ``module_``."""

    def __init__(self, module):
        self.module_ = module


def moved_net(seed=0):
    """An MLP 5-7-3, anchors, a positive diagonal and gradients, all random."""
    gen = torch.Generator().manual_seed(seed)
    module = MLP(5, 3, (7,)).reset_parameters(gen)
    named = dict(module.named_parameters())
    anchors = {n: (p.detach() + 0.3 * torch.randn(p.shape, generator=gen)) for n, p in named.items()}
    fisher = {n: torch.rand(p.shape, generator=gen) * 1e-2 for n, p in named.items()}
    for p in module.parameters():
        p.grad = torch.randn(p.shape, generator=gen)
    return Net(module), anchors, fisher


def oracle(net, anchors, reg_lambda, weights, grads):
    """``g + lambda * F * (theta - theta*)`` per parameter, in float64."""
    out = {}
    for name, p in net.module_.named_parameters():
        if name not in anchors:
            out[name] = grads[name].double()
            continue
        w = 1.0 if weights is None else weights[name].double()
        out[name] = grads[name].double() + reg_lambda * w * (p.detach().double()
                                                             - anchors[name].double())
    return out


@pytest.mark.parametrize("weighted", [False, True], ids=["l2", "fisher"])
def test_pull_gradient_equals_the_formula_in_float64(weighted):
    net, anchors, fisher = moved_net()
    weights = fisher if weighted else None
    grads = {n: p.grad.clone() for n, p in net.module_.named_parameters()}
    expected = oracle(net, anchors, 250.0, weights, grads)
    add_pull_gradient(net, anchors, 250.0, weights, owner=Owner())
    for name, p in net.module_.named_parameters():
        # float32 rounding of three operations on values of order 1-10.
        torch.testing.assert_close(p.grad.double(), expected[name], rtol=1e-6, atol=1e-6)
        assert not torch.equal(p.grad.double(), grads[name].double())  # the pull did act


@pytest.mark.parametrize("weighted", [False, True], ids=["l2", "fisher"])
def test_pull_gradient_is_bit_equal_to_the_per_parameter_loop(weighted):
    net, anchors, fisher = moved_net(seed=1)
    weights = fisher if weighted else None
    reference, _, _ = moved_net(seed=1)  # the same weights and gradients
    for p, q in zip(net.module_.parameters(), reference.module_.parameters()):
        assert torch.equal(p, q) and torch.equal(p.grad, q.grad)
    add_pull_gradient(net, anchors, 1e4, weights, owner=Owner())
    per_parameter_pull(reference, anchors, 1e4, weights)
    for p, q in zip(net.module_.parameters(), reference.module_.parameters()):
        assert torch.equal(p.grad, q.grad)


def test_only_anchored_parameters_are_pulled_and_missing_gradients_are_created():
    net, anchors, fisher = moved_net(seed=2)
    names = [n for n, _ in net.module_.named_parameters()]
    partial = {n: anchors[n] for n in names[:2]}  # the first layer only
    first = dict(net.module_.named_parameters())[names[0]]
    first.grad = None  # e.g. a layer that the batch's loss did not reach
    grads = {n: (torch.zeros_like(p) if p.grad is None else p.grad.clone())
             for n, p in net.module_.named_parameters()}
    expected = oracle(net, partial, 3.0, fisher, grads)
    add_pull_gradient(net, partial, 3.0, fisher, owner=Owner())
    for name, p in net.module_.named_parameters():
        torch.testing.assert_close(p.grad.double(), expected[name], rtol=1e-6, atol=1e-7)
    for name in names[2:]:  # untouched, to the bit
        assert torch.equal(dict(net.module_.named_parameters())[name].grad, grads[name])


def test_the_plan_follows_new_anchors_weights_and_module():
    """A strategy rebinds its dicts (new month, new classes, rollback, load)
    and the estimator may swap its module: each call uses what it is given,
    never a plan of earlier objects."""
    owner = Owner()
    net, anchors, fisher = moved_net(seed=3)

    def check(net, anchors, weights, lam):
        grads = {n: p.grad.clone() for n, p in net.module_.named_parameters()}
        expected = oracle(net, anchors, lam, weights, grads)
        add_pull_gradient(net, anchors, lam, weights, owner=owner)
        for name, p in net.module_.named_parameters():
            torch.testing.assert_close(p.grad.double(), expected[name], rtol=1e-6, atol=1e-6)

    check(net, anchors, fisher, 10.0)
    check(net, anchors, fisher, 10.0)  # the kept plan
    new_anchors = {n: a + 1.0 for n, a in anchors.items()}
    check(net, new_anchors, fisher, 10.0)
    new_fisher = {n: 2.0 * f for n, f in fisher.items()}
    check(net, new_anchors, new_fisher, 10.0)
    check(net, new_anchors, None, 10.0)
    check(net, new_anchors, new_fisher, 0.5)  # reg_lambda is read at every call
    other, _, _ = moved_net(seed=4)  # another module, same names
    check(other, new_anchors, new_fisher, 10.0)
    check(net, anchors, fisher, 10.0)  # back to the first objects (a rollback)


def fitted_months(strategy, pull, monkeypatch, **params):
    """A three-month fit with ``pull`` as the strategies' pull gradient."""
    monkeypatch.setattr(_l2, "add_pull_gradient", pull)
    monkeypatch.setattr(_ewc, "add_pull_gradient", pull)
    X, y, months = make_stream(n_months=3, n_per_month=120)
    return ContinualClassifier(strategy=strategy, **dict(FAST, **params)).fit(X, y, months=months)


@pytest.mark.parametrize("strategy,reg_lambda", [("l2", 5.0), ("ewc", 1e4),
                                                 ("online_ewc", 1e4), ("replay+ewc", 1e4)])
def test_weights_after_the_months_equal_the_per_parameter_loop(strategy, reg_lambda,
                                                                monkeypatch):
    """The same operations in the same order: the same weights, to the bit,
    after months of Adam steps (a tolerance would hide a reordering)."""
    new = fitted_months(strategy, add_pull_gradient, monkeypatch, reg_lambda=reg_lambda,
                        finetune_epochs=2)
    old = fitted_months(strategy, per_parameter_pull, monkeypatch, reg_lambda=reg_lambda,
                        finetune_epochs=2)
    moved = 0.0
    for (name, p), q in zip(new.module_.named_parameters(), old.module_.parameters()):
        assert torch.equal(p, q), name
        moved = max(moved, float((p.detach() - new.snapshots_[0].states[0][name]).abs().max()))
    assert moved > 1e-3  # the months did train
    np.testing.assert_array_equal(new.history[:, "train_loss"], old.history[:, "train_loss"])


def test_pull_changes_the_months_weights(monkeypatch):
    """The pull is applied at all: without it the weights differ."""

    def no_pull(*args, **kwargs):
        return None

    pulled = fitted_months("l2", add_pull_gradient, monkeypatch, reg_lambda=50.0)
    free = fitted_months("l2", no_pull, monkeypatch, reg_lambda=50.0)
    assert not all(torch.equal(p, q) for p, q in zip(pulled.module_.parameters(),
                                                      free.module_.parameters()))
