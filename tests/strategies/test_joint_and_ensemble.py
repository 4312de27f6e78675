"""Joint retraining sees all history; ensembles average their members."""

import numpy as np
import torch
from conftest import FAST, make_stream
from spy import RowSpy

from sklearn_cf import ContinualClassifier
from sklearn_cf._mlp import MLP

N = 120


def test_joint_trains_on_the_concatenation_of_all_months_seen():
    X, y, months = make_stream(n_months=3, n_per_month=N, id_column=True)
    spy = RowSpy()
    clf = ContinualClassifier(strategy="joint", callbacks=[spy], **FAST)
    clf.fit(X, y, months=months)
    for month in range(3):
        for epoch in spy.months[month]["epochs"]:
            # Every row of months 0..month exactly once per epoch, nothing else.
            assert sorted(epoch) == list(range((month + 1) * N))
    assert [c["rows"] for c in clf.cost_] == [2 * N, 4 * N, 6 * N]


def test_joint_starts_each_month_from_a_fresh_network():
    X, y, months = make_stream(n_months=3, n_per_month=N)
    spy = RowSpy()
    clf = ContinualClassifier(strategy="joint", callbacks=[spy], **FAST)
    clf.fit(X, y, months=months)
    for month in (1, 2):
        start = spy.months[month]["params"]
        end_prev = clf.snapshots_[month - 1].states[0]
        assert not torch.equal(start["layers.0.weight"], end_prev["layers.0.weight"])


def test_ensemble_proba_is_the_mean_of_its_members():
    X, y, months = make_stream(n_months=3, n_per_month=N)
    clf = ContinualClassifier(strategy="ensemble", **FAST).fit(X, y, months=months)
    members = clf.strategy_.members
    assert len(members) == 3
    probas = []
    for state in members:
        net = MLP(X.shape[1], 2, hidden_units=FAST["hidden_units"])
        net.load_state_dict(state)
        with torch.no_grad():
            probas.append(torch.softmax(net(torch.from_numpy(X)), dim=1).numpy())
    np.testing.assert_allclose(clf.predict_proba(X), np.mean(probas, axis=0), rtol=1e-5, atol=1e-7)
    # Members are distinct networks, each trained on its own month only.
    assert not np.allclose(probas[0], probas[2])
    assert [c["rows"] for c in clf.cost_] == [2 * N] * 3
    # After month 1 the snapshot holds the first two members only.
    np.testing.assert_allclose(
        clf.predict_proba_after(X, 1), np.mean(probas[:2], axis=0), rtol=1e-5, atol=1e-7
    )
