"""n_threads: the torch thread count the estimator trains with."""

import numpy as np
import pytest
import torch

from sklearn_cf import ContinualClassifier, _threads
from sklearn_cf._threads import auto_threads, other_running_threads, resolve_threads

from conftest import FAST, make_stream


@pytest.mark.parametrize("available, n_cpus, others, expected", [
    (2, 2, 0, 2),   # idle machine: torch's count
    (2, 2, 1, 1),   # another process holds a core
    (2, 2, 5, 1),   # never below one
    (4, 16, 3, 4),  # torch's (or OMP_NUM_THREADS's) ceiling
    (16, 8, 2, 6),
])
def test_auto_threads_leaves_busy_cores_to_others(available, n_cpus, others, expected):
    assert auto_threads(available, n_cpus, others) == expected


def test_auto_reads_the_other_processes_running_threads(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setattr(_threads, "_usable_cpus", lambda: 4)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    monkeypatch.setattr(_threads, "other_running_threads", lambda: 3)
    assert resolve_threads("auto") == 1
    monkeypatch.setattr(_threads, "other_running_threads", lambda: 0)
    assert resolve_threads("auto") == 4
    monkeypatch.setattr(_threads, "other_running_threads", lambda: None)  # not Linux
    assert resolve_threads("auto") == 4
    # Pinned to 4 of a busy 64-CPU host's CPUs: only their share of the load.
    monkeypatch.setattr(_threads.os, "cpu_count", lambda: 64)
    monkeypatch.setattr(_threads, "other_running_threads", lambda: 32)
    assert resolve_threads("auto") == 2
    assert resolve_threads(3) == 3
    monkeypatch.undo()
    assert resolve_threads(None) == before


def test_other_running_threads_is_a_count_on_linux():
    count = other_running_threads(samples=3, interval=0.0)
    if count is None:
        pytest.skip("the kernel does not report running threads")
    assert isinstance(count, int) and count >= 0


@pytest.mark.parametrize("n_threads", [1, 3])
def test_training_uses_n_threads_then_restores_torchs_setting(monkeypatch, n_threads):
    X, y, months = make_stream()
    seen = []

    class Spy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(X.shape[1], 2)

        def forward(self, x):
            seen.append(torch.get_num_threads())
            return self.linear(x)

    before = torch.get_num_threads()
    clf = ContinualClassifier(Spy, n_threads=n_threads, **FAST)
    clf.fit(X, y, months=months)
    assert set(seen) == {n_threads}
    assert [c["threads"] for c in clf.cost_] == [n_threads] * 3
    assert torch.get_num_threads() == before
    seen.clear()
    clf.partial_fit_month(X[:20], y[:20])
    assert set(seen) == {n_threads} and torch.get_num_threads() == before


def test_threads_are_restored_after_a_failed_month():
    from skorch.callbacks import Callback

    class Boom(Callback):
        def on_epoch_end(self, net, **kwargs):
            raise RuntimeError("boom")

    X, y, months = make_stream()
    before = torch.get_num_threads()
    clf = ContinualClassifier(n_threads=before + 1, callbacks=[Boom()], **FAST)
    with pytest.raises(RuntimeError, match="boom"):
        clf.fit(X, y, months=months)
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("bad", [0, -1, 1.5, "all", True])
def test_bad_n_threads_is_refused(bad):
    X, y, _ = make_stream()
    with pytest.raises(ValueError, match="n_threads"):
        ContinualClassifier(n_threads=bad, **FAST).fit(X, y)


def test_same_predictions_whatever_the_thread_count():
    X, y, months = make_stream()
    one = ContinualClassifier(n_threads=1, **FAST).fit(X, y, months=months)
    two = ContinualClassifier(n_threads=2, **FAST).fit(X, y, months=months)
    np.testing.assert_allclose(one.predict_proba(X), two.predict_proba(X), atol=1e-5)
