"""The effect the package exists to fix: naive fine-tuning forgets, replay less."""

import pytest

from sklearn_cf import ContinualClassifier, SequentialSplit, forgetting_matrix
from sklearn_cf.datasets import make_monthly_drift
from sklearn_cf.metrics import backward_transfer


@pytest.mark.parametrize("seed", [0, 1])
def test_naive_forgets_and_replay_forgets_less(seed):
    # Benign software adopts the traits of old malware families, so a model
    # fine-tuned on recent months alone unlearns the old families.
    X, y, months = make_monthly_drift(n_months=6, n_samples_per_month=400, benign_adoption=1.0,
                                      family_similarity=0.3, random_state=seed)
    train, test = next(SequentialSplit(n_splits=1, random_state=0).split(X, y, months=months))
    R = {}
    for strategy in ["naive", "replay"]:
        clf = ContinualClassifier(strategy=strategy, hidden_units=(64, 64), max_epochs=10,
                                  lr=1e-2, random_state=0)
        clf.fit(X[train], y[train], months=months[train])
        R[strategy] = forgetting_matrix(clf, X[test], y[test], months[test]).R
    naive, replay = R["naive"], R["replay"]
    # Month 0 was learned, then lost by naive fine-tuning.
    assert naive[0, 0] > 0.85
    assert naive[-1, 0] < naive[0, 0] - 0.2
    assert backward_transfer(naive) < -0.1
    # Replay keeps it: same base model, far less forgetting.
    assert replay[0, 0] == naive[0, 0]
    assert replay[-1, 0] > naive[-1, 0] + 0.2
    assert backward_transfer(replay) > backward_transfer(naive) + 0.1
