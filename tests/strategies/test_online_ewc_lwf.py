"""Online EWC and LwF against their formulas, and LwF's effect."""

import copy

import numpy as np
import pytest
import torch

from sklearn_cf import ContinualClassifier, fisher_diagonal
from sklearn_cf._mlp import MLP
from sklearn_cf.strategies import LwF
from sklearn_cf.strategies._lwf import distillation_loss

from conftest import FAST, make_stream


def _snapshot_module(clf, k):
    module = MLP(clf.n_features_in_, len(clf.classes_), hidden_units=FAST["hidden_units"])
    module.load_state_dict(clf.snapshots_[k].states[0])
    return module.eval()


# -- online EWC --------------------------------------------------------------

@pytest.mark.parametrize("gamma", [0.5, 1.0])
def test_online_ewc_accumulates_gamma_weighted_fishers(gamma):
    X, y, months = make_stream(n_months=3)
    clf = ContinualClassifier(strategy="online_ewc", strategy__gamma=gamma, **FAST)
    clf.fit(X, y, months=months)
    # Oracle: each month's Fisher at the weights that month ended with,
    # summed by hand with the decay.
    fishers = [fisher_diagonal(_snapshot_module(clf, k), X[months == k], y[months == k])
               for k in range(3)]
    for name, got in clf.strategy_.fisher_diag.items():
        expected = gamma ** 2 * fishers[0][name] + gamma * fishers[1][name] + fishers[2][name]
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-10)
    # One anchor: the last month's weights.
    for name, anchor in clf.strategy_.anchors.items():
        torch.testing.assert_close(anchor, clf.snapshots_[2].states[0][name])


def test_online_ewc_with_gamma_0_is_ewc():
    X, y, months = make_stream(n_months=3)
    online = ContinualClassifier(strategy="online_ewc", strategy__gamma=0.0, **FAST)
    plain = ContinualClassifier(strategy="ewc", **FAST)
    np.testing.assert_array_equal(online.fit(X, y, months=months).predict_proba(X),
                                  plain.fit(X, y, months=months).predict_proba(X))


def test_online_ewc_penalty_is_the_fisher_weighted_distance():
    X, y, months = make_stream(n_months=3)
    clf = ContinualClassifier(strategy="online_ewc", reg_lambda=300.0, **FAST)
    clf.fit(X, y, months=months)
    strategy = clf.strategy_
    with torch.no_grad():
        for p in clf.module_.parameters():
            p.add_(0.01)
    expected = 0.5 * 300.0 * sum(
        float((strategy.fisher_diag[n] * (p.detach() - strategy.anchors[n]) ** 2).sum())
        for n, p in clf.module_.named_parameters())
    assert float(strategy.penalty(clf).detach()) == pytest.approx(expected, rel=1e-5)


def test_online_ewc_penalty_after_three_months_maps_onto_the_papers_lambda():
    # Oracle: each month's Fisher computed independently at the weights
    # that month ended with, accumulated by hand (F* = g^2 F0 + g F1 + F2),
    # and the penalty of the fourth month written three ways: ours
    # (lambda/2 sum F* d^2), Schwarz et al.'s (lambda_PC/2 sum g F* d^2 with
    # lambda_PC = lambda/g) and Avalanche's (ewc_lambda sum F* d^2 with
    # ewc_lambda = lambda/2).
    gamma, lam = 0.5, 300.0
    X, y, months = make_stream(n_months=3)
    clf = ContinualClassifier(strategy="online_ewc", strategy__gamma=gamma, reg_lambda=lam,
                              **FAST).fit(X, y, months=months)
    fishers = [fisher_diagonal(_snapshot_module(clf, k), X[months == k], y[months == k])
               for k in range(3)]
    accumulated = {n: gamma ** 2 * fishers[0][n] + gamma * fishers[1][n] + fishers[2][n]
                   for n in fishers[0]}
    anchor = clf.snapshots_[2].states[0]
    torch.manual_seed(0)
    with torch.no_grad():
        for p in clf.module_.parameters():
            p.add_(0.05 * torch.randn_like(p))
    d2 = {n: (p.detach() - anchor[n]) ** 2 for n, p in clf.module_.named_parameters()}
    ours = 0.5 * lam * sum(float((accumulated[n] * d2[n]).sum()) for n in d2)
    schwarz = 0.5 * (lam / gamma) * sum(float((gamma * accumulated[n] * d2[n]).sum())
                                        for n in d2)
    avalanche = (lam / 2) * sum(float((accumulated[n] * d2[n]).sum()) for n in d2)
    got = float(clf.strategy_.penalty(clf).detach())
    assert got > 0
    assert got == pytest.approx(ours, rel=1e-4)
    assert got == pytest.approx(schwarz, rel=1e-4)
    assert got == pytest.approx(avalanche, rel=1e-4)


def test_online_ewc_gamma_is_checked():
    X, y, _ = make_stream()
    with pytest.raises(ValueError, match="gamma"):
        ContinualClassifier(strategy="online_ewc", strategy__gamma=1.5, **FAST).fit(X, y)


# -- LwF ------------------------------------------------------------------------

def test_distillation_loss_is_t2_times_the_kl_divergence():
    torch.manual_seed(0)
    student, teacher = torch.randn(5, 3), torch.randn(5, 3)
    T = 3.0
    p = torch.softmax(teacher / T, 1)
    expected = T * T * sum(
        float((p[i] * (p[i].log() - torch.log_softmax(student[i] / T, 0))).sum())
        for i in range(5)) / 5
    assert float(distillation_loss(student, teacher, T)) == pytest.approx(expected, rel=1e-5)
    assert float(distillation_loss(teacher, teacher, T)) == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("T", [1.0, 2.0, 3.5])
def test_lwf_alpha_maps_onto_li_and_hoiems_lambda_o(T):
    # Li & Hoiem's L_old is the cross-entropy of the temperature-scaled
    # distributions, without T^2: lambda_o = alpha * T^2 gives the same
    # gradient (KL and cross-entropy differ by the teacher's entropy).
    torch.manual_seed(1)
    alpha = 0.7
    teacher = torch.randn(6, 4)
    student = torch.randn(6, 4, requires_grad=True)
    ours = alpha * distillation_loss(student, teacher, T)
    (grad_ours,) = torch.autograd.grad(ours, student)
    p_old = torch.softmax(teacher / T, 1)
    l_old = -(p_old * torch.log_softmax(student / T, 1)).sum(1).mean()
    lambda_o = alpha * T ** 2
    (grad_paper,) = torch.autograd.grad(lambda_o * l_old, student, retain_graph=True)
    torch.testing.assert_close(grad_ours, grad_paper, rtol=1e-5, atol=1e-7)
    # The losses differ by lambda_o times the teacher's mean entropy.
    entropy = -(p_old * p_old.log()).sum(1).mean()
    assert float((lambda_o * l_old - ours).detach()) == pytest.approx(
        float(lambda_o * entropy), rel=1e-5)
    # Taking lambda_o = alpha (forgetting T^2) trains differently for T != 1.
    (grad_naive,) = torch.autograd.grad(alpha * l_old, student)
    assert torch.allclose(grad_naive, grad_ours) == (T == 1.0)


def test_lwf_batch_term_distils_last_months_network():
    X, y, months = make_stream(n_months=2)
    clf = ContinualClassifier(strategy="lwf", strategy__alpha=0.7, strategy__temperature=1.5,
                              **FAST)
    clf.fit(X, y, months=months)
    strategy = clf.strategy_
    # The teacher is the network after the last month, frozen.
    for name, value in strategy.teacher.state_dict().items():
        torch.testing.assert_close(value, clf.snapshots_[1].states[0][name])
    assert not any(p.requires_grad for p in strategy.teacher.parameters())
    # Oracle on a batch: alpha * T^2 * KL(teacher || student), by hand.
    student = copy.deepcopy(clf.module_)
    with torch.no_grad():
        for p in student.parameters():
            p.add_(0.05 * torch.randn_like(p))
    xb = torch.from_numpy(X[:16])
    z = student(xb)
    zt = _snapshot_module(clf, 1)(xb).detach()
    pt = torch.softmax(zt / 1.5, 1)
    kl = (pt * (pt.log() - torch.log_softmax(z / 1.5, 1))).sum(1).mean()
    got = strategy.batch_penalty(clf, xb, z, torch.from_numpy(y[:16]))
    assert float(got.detach()) == pytest.approx(0.7 * 1.5 ** 2 * float(kl.detach()), rel=1e-5)
    assert got.requires_grad  # it trains the student


def test_lwf_keeps_no_past_rows_and_trains_the_new_month_only():
    X, y, months = make_stream(n_months=3)
    clf = ContinualClassifier(strategy="lwf", **FAST).fit(X, y, months=months)
    assert [c["rows"] for c in clf.cost_] == [240, 240, 240]  # 120 rows x 2 epochs
    assert set(clf.strategy_.state_dict()) == {"teacher"}


def _forgetting_of_month_0(strategy, **params):
    X, y, months = make_stream(n_months=3, n_per_month=300, seed=0)
    X_test, y_test, months_test = make_stream(n_months=3, n_per_month=2000, seed=1)
    first = months_test == 0
    clf = ContinualClassifier(strategy=strategy, hidden_units=(32,), max_epochs=5,
                              batch_size=32, random_state=0, **params)
    clf.fit(X, y, months=months)
    after_0 = (clf.predict_proba_after(X_test[first], 0).argmax(1) == y_test[first]).mean()
    at_end = (clf.predict(X_test[first]) == y_test[first]).mean()
    return after_0 - at_end


def test_lwf_forgets_less_than_naive_on_a_drifting_stream():
    naive = _forgetting_of_month_0("naive")
    lwf = _forgetting_of_month_0("lwf", strategy__alpha=5.0)
    assert naive > 0.1  # the boundary rotates: naive forgets month 0
    assert lwf < naive - 0.05, (naive, lwf)


def test_lwf_parameters_are_checked():
    X, y, _ = make_stream()
    with pytest.raises(ValueError, match="temperature"):
        ContinualClassifier(strategy="lwf", strategy__temperature=0.0, **FAST).fit(X, y)
    assert LwF(alpha=2).get_params() == {"alpha": 2, "temperature": 2.0}


# -- a Fisher over a sample of the month's rows ----------------------------------

@pytest.mark.parametrize("strategy", ["ewc", "online_ewc"])
def test_fisher_rows_computes_the_fisher_on_a_uniform_sample(monkeypatch, strategy):
    from sklearn_cf._estimator import _classifier

    seen = []
    exact = _classifier.fisher_diagonal
    monkeypatch.setattr(_classifier, "fisher_diagonal",
                        lambda module, X, y, **kw: seen.append((X.clone(), y.clone()))
                        or exact(module, X, y, **kw))
    X, y, months = make_stream(n_months=2, n_per_month=120, id_column=True)
    clf = ContinualClassifier(strategy=strategy, strategy__fisher_rows=40, **FAST)
    clf.fit(X, y, months=months)
    for k, (X_used, y_used) in enumerate(seen):
        ids = X_used[:, 0].numpy().astype(int)
        assert len(ids) == 40 and len(set(ids)) == 40  # distinct rows ...
        assert set(ids) <= set(np.flatnonzero(months == k))  # ... of that month
        np.testing.assert_array_equal(y_used.numpy(), y[ids])
    # Oracle: the Fisher of exactly those rows at the month's final weights.
    X_last, y_last = seen[-1]
    expected = exact(_snapshot_module(clf, 1), X_last, y_last)
    fisher = clf.strategy_.fisher_diag
    if strategy == "online_ewc":  # plus the first month's, gamma=1
        first = exact(_snapshot_module(clf, 0), *seen[0])
        expected = {n: expected[n] + first[n] for n in expected}
    for name, value in fisher.items():
        torch.testing.assert_close(value, expected[name], rtol=1e-5, atol=1e-10)


def test_fisher_rows_at_least_the_month_is_the_exact_fisher():
    X, y, months = make_stream(n_months=2)
    exact = ContinualClassifier(strategy="ewc", **FAST).fit(X, y, months=months)
    sampled = ContinualClassifier(strategy="ewc", strategy__fisher_rows=500, **FAST)
    sampled.fit(X, y, months=months)
    np.testing.assert_array_equal(sampled.predict_proba(X), exact.predict_proba(X))
