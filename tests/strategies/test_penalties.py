"""L2 and EWC: penalties against hand computations, and their effect."""

import warnings

import numpy as np
import pytest
import torch
from conftest import FAST, make_stream

from sklearn_cf import ContinualClassifier

N = 120


def max_move(clf, month):
    before, after = clf.snapshots_[month - 1].states[0], clf.snapshots_[month].states[0]
    return max(float((after[k] - before[k]).abs().max()) for k in before)


@pytest.mark.slow
def test_l2_huge_lambda_pins_the_weights_and_zero_lets_them_move():
    X, y, months = make_stream(n_months=2, n_per_month=N)
    params = dict(FAST, max_epochs=5, strategy="l2")
    pinned = ContinualClassifier(reg_lambda=1e6, **params).fit(X, y, months=months)
    free = ContinualClassifier(reg_lambda=0.0, **params).fit(X, y, months=months)
    # Adam's steps are about lr in size; a huge pull keeps every weight within
    # a few steps of its anchor, while lambda=0 drifts by many steps.
    assert max_move(pinned, 1) < 5e-3
    assert max_move(free, 1) > 2e-2


def per_sample_fisher(module, X, y):
    """Oracle: mean over rows of squared per-sample gradients, one row at a time."""
    total = {n: torch.zeros_like(p) for n, p in module.named_parameters()}
    for i in range(len(X)):
        module.zero_grad()
        out = module(torch.from_numpy(X[i : i + 1]))
        torch.nn.functional.cross_entropy(out, torch.tensor([y[i]])).backward()
        for n, p in module.named_parameters():
            total[n] += p.grad.detach() ** 2
    return {n: t / len(X) for n, t in total.items()}


def test_ewc_penalty_equals_formula_by_hand():
    X, y, months = make_stream(n_months=2, n_per_month=N)
    lam = 7.0
    clf = ContinualClassifier(strategy="ewc", reg_lambda=lam, **FAST).fit(X, y, months=months)
    anchor = {k: v.clone() for k, v in clf.snapshots_[-1].states[0].items()}
    # Fisher of the month-1 weights on month-1 rows, by a per-sample loop.
    module = clf.module_
    fisher = per_sample_fisher(module, X[months == 1], y[months == 1])
    for name in fisher:
        torch.testing.assert_close(clf.strategy_.fisher_diag[name], fisher[name], rtol=1e-4, atol=1e-9)
    # Move the weights, then compare the penalty with lambda/2 sum F (theta - anchor)^2.
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen))
    by_hand = 0.0
    for name, p in module.named_parameters():
        by_hand += float((fisher[name] * (p.detach() - anchor[name]) ** 2).sum())
    by_hand *= lam / 2
    assert float(clf.strategy_.penalty(clf).detach()) == pytest.approx(by_hand, rel=1e-4)
    # The step's loss leaves the closed-form penalty out (its gradient is
    # added after backward); its value is reported on request.
    logits = module(torch.from_numpy(X[:10]))
    y_true = torch.from_numpy(y[:10])
    train = clf.get_loss(logits, y_true, training=True)
    valid = clf.get_loss(logits, y_true, training=False)
    assert float((train - valid).detach()) == 0.0
    assert clf.strategy_.penalty_value(clf) == pytest.approx(by_hand, rel=1e-4)


def test_l2_penalty_equals_formula_by_hand():
    X, y, months = make_stream(n_months=2, n_per_month=N)
    clf = ContinualClassifier(strategy="l2", reg_lambda=3.0, **FAST).fit(X, y, months=months)
    anchor = clf.snapshots_[-1].states[0]
    with torch.no_grad():
        for p in clf.module_.parameters():
            p.add_(0.05)
    by_hand = 1.5 * sum(
        float(((p.detach() - anchor[n]) ** 2).sum()) for n, p in clf.module_.named_parameters()
    )
    assert float(clf.strategy_.penalty(clf).detach()) == pytest.approx(by_hand, rel=1e-5)


@pytest.mark.parametrize("strategy", ["l2", "ewc"])
def test_no_penalty_during_the_base_fit(strategy):
    X, y, _ = make_stream(n_months=1)
    seen = []

    class Probe(ContinualClassifier):
        def get_loss(self, y_pred, y_true, X=None, training=False):
            if training:
                seen.append(self.strategy_.penalty(self))
            return super().get_loss(y_pred, y_true, X=X, training=training)

    clf = Probe(strategy=strategy, reg_lambda=1e3, **FAST).partial_fit_month(X, y)
    assert seen and all(term is None for term in seen)
    assert clf.strategy_.anchors is not None  # set once the month ended


@pytest.mark.slow
def test_hessian_fisher_clips_negatives_and_records_their_share():
    X, y, months = make_stream(n_months=3, n_per_month=N)

    def tanh_net():
        return torch.nn.Sequential(
            torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2)
        )

    clf = ContinualClassifier(module=tanh_net(), strategy="ewc", fisher="hessian", **FAST)
    with pytest.warns(RuntimeWarning, match="negative; they are clipped"):
        clf.fit(X, y, months=months)
    shares = clf.fisher_negative_share_
    assert shares.shape == (3,) and np.all(shares > 0) and np.all(shares < 1)
    assert all(float(d.min()) >= 0 for d in clf.strategy_.fisher_diag.values())

    relu = ContinualClassifier(strategy="ewc", fisher="hessian", **FAST)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        relu.fit(X, y, months=months)
    np.testing.assert_array_equal(relu.fisher_negative_share_, [0.0, 0.0, 0.0])

    with pytest.raises(AttributeError, match="fisher='hessian'"):
        ContinualClassifier(strategy="ewc", **FAST).fit(X, y, months=months).fisher_negative_share_


@pytest.mark.slow
def test_finetune_lr_and_epochs_apply_after_the_first_month():
    from spy import RowSpy

    X, y, months = make_stream(n_months=3, n_per_month=N)
    for strategy, fine_tunes in [("naive", True), ("replay+ewc", True), ("joint", False),
                                 ("ensemble", False)]:
        spy = RowSpy()
        clf = ContinualClassifier(
            strategy=strategy, finetune_lr=1e-4, finetune_epochs=1, callbacks=[spy],
            **dict(FAST, lr=1e-2),
        ).fit(X, y, months=months)
        assert spy.months[0]["lr"] == {1e-2}
        assert len(spy.months[0]["epochs"]) == 2
        for month in (1, 2):
            assert spy.months[month]["lr"] == ({1e-4} if fine_tunes else {1e-2}), strategy
            assert len(spy.months[month]["epochs"]) == (1 if fine_tunes else 2)
        assert clf.get_params()["lr"] == 1e-2
        assert clf.lr == 1e-2


@pytest.mark.parametrize("strategy", ["l2", "ewc", "replay+ewc"])
def test_closed_form_penalty_gradient_equals_autograd(strategy):
    X, y, months = make_stream(n_months=2, n_per_month=N)
    clf = ContinualClassifier(strategy=strategy, reg_lambda=5.0, **FAST).fit(X, y, months=months)
    with torch.no_grad():
        for p in clf.module_.parameters():
            p.add_(0.05)
    params = list(clf.module_.parameters())
    # Oracle: autograd through the penalty's formula.
    expected = torch.autograd.grad(clf.strategy_.penalty(clf), params)
    for p in params:
        p.grad = torch.zeros_like(p)
    clf.strategy_.penalty_gradient(clf)
    for g, p in zip(expected, params):
        torch.testing.assert_close(p.grad, g, rtol=1e-5, atol=1e-8)
    # No value at the steps: it is computed on request (once per epoch).
    assert clf.strategy_.loss_penalty(clf) is None
    assert clf.strategy_.penalty_value(clf) == pytest.approx(
        float(clf.strategy_.penalty(clf).detach()), rel=1e-6)


def test_closed_form_penalty_value_is_recorded_once_per_epoch(monkeypatch):
    from sklearn_cf.strategies import L2

    X, y, months = make_stream(n_months=2, n_per_month=N)
    calls = []
    penalty = L2.penalty
    monkeypatch.setattr(L2, "penalty", lambda self, net: calls.append(1) or penalty(self, net))
    monkeypatch.setattr(L2, "closed_form_penalty", property(lambda self: True))
    clf = ContinualClassifier(strategy="l2", reg_lambda=5.0, **dict(FAST, max_epochs=3))
    clf.partial_fit_month(X[months == 0], y[months == 0])
    calls.clear()
    clf.partial_fit_month(X[months == 1], y[months == 1])
    steps = clf.cost_[1]["rows"] // FAST["batch_size"]
    assert steps > 3 and len(calls) == 3  # one value per epoch of month 1, none per step
    # Oracle: 5/2 * sum((theta_1 - theta_0)^2) with the weights at the end
    # of month 1's last epoch (its snapshot) and of month 0 (the anchors).
    after_0, after_1 = (s.states[0] for s in clf.snapshots_)
    expected = 2.5 * sum(float(((after_1[k] - after_0[k]) ** 2).sum()) for k in after_0)
    assert clf.history[-1, "train_penalty"] == pytest.approx(expected, rel=1e-5)
    assert "train_penalty" not in clf.history[2]  # month 0: no anchors yet
