"""The device path, in the parts that run without a GPU: the one-batch-ahead
transfer order, and month_on_device's checks (tests/test_cuda.py runs the
rest where CUDA is available)."""

import numpy as np
import pytest
import torch
from conftest import FAST, make_stream

from sklearn_cf import ContinualClassifier
from sklearn_cf._data import EpochIterator, MonthData, host_to_device, prefetch


def test_the_next_batch_is_moved_before_the_current_one_trains():
    events = []

    def move(tensor):
        events.append(("move", int(tensor[0])))
        return tensor

    batches = [(torch.tensor([k]), torch.tensor([k])) for k in range(4)]
    for X, _ in prefetch(iter(batches), move):
        events.append(("train", int(X[0])))
    trained = [k for kind, k in events if kind == "train"]
    assert trained == [0, 1, 2, 3]  # the order is kept
    for k in range(3):  # batch k+1 (X and y) is on its way before batch k trains
        assert events.index(("move", k + 1)) < events.index(("train", k))
    assert events.index(("train", 3)) == len(events) - 1


def test_on_the_cpu_nothing_is_moved_and_batches_are_unchanged():
    assert host_to_device("cpu") is None
    X, y = torch.randn(300, 3), torch.arange(300)
    data = MonthData([(X[:100], y[:100]), (X[100:], y[100:])],
                     lambda sizes, rng: rng.permutation(sum(sizes))).resample(
        np.random.default_rng(0))
    plain = list(EpochIterator(data, 32, generator=torch.Generator().manual_seed(1)))
    cpu = list(EpochIterator(data, 32, generator=torch.Generator().manual_seed(1),
                             device="cpu"))
    assert len(plain) == len(cpu) == 10
    for (a, b), (c, d) in zip(plain, cpu):
        assert torch.equal(a, c) and torch.equal(b, d)
    moved = data.to("cpu")
    assert torch.equal(moved.plan, data.plan) and moved.sizes == data.sizes


@pytest.mark.parametrize("value", [True, False, "auto"])
def test_month_on_device_changes_nothing_on_the_cpu(value):
    X, y, months = make_stream(n_months=3)
    reference = ContinualClassifier(strategy="replay", **FAST).fit(X, y, months=months)
    clf = ContinualClassifier(strategy="replay", month_on_device=value, **FAST)
    np.testing.assert_array_equal(clf.fit(X, y, months=months).predict_proba(X),
                                  reference.predict_proba(X))


@pytest.mark.parametrize("value", [1, "yes", None])
def test_month_on_device_is_checked(value):
    X, y, _ = make_stream(n_months=1)
    with pytest.raises(ValueError, match="month_on_device=.*Valid values: 'auto', True, False"):
        ContinualClassifier(month_on_device=value, **FAST).fit(X, y)
