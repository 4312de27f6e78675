"""Replay: epoch composition, fixed epoch size, reservoir memory."""

import numpy as np
import pytest
import torch
from conftest import FAST, make_stream
from spy import RowSpy

from sklearn_cf import ContinualClassifier
from sklearn_cf.strategies import ReservoirMemory, Replay
from sklearn_cf.strategies._replay import epoch_composition

N = 120  # rows per month in make_stream


def fit_with_spy(**params):
    X, y, months = make_stream(n_months=4, n_per_month=N, id_column=True)
    spy = RowSpy()
    clf = ContinualClassifier(strategy="replay", callbacks=[spy], **dict(FAST, **params))
    clf.fit(X, y, months=months)
    return clf, spy


@pytest.mark.parametrize("ratio", [0.25, 0.5, 0.75])
def test_share_of_past_rows_matches_ratio(ratio):
    clf, spy = fit_with_spy(rehearsal_ratio=ratio, max_epochs=3)
    for month in range(1, 4):
        new_ids = set(range(month * N, (month + 1) * N))
        for epoch in spy.months[month]["epochs"]:
            n_past = sum(i < month * N for i in epoch)
            n_new = sum(i in new_ids for i in epoch)
            # Every new row once; past rows = N * r / (1 - r), rounded.
            assert n_new == N and len(set(epoch) & new_ids) == N
            assert n_past == round(N * ratio / (1 - ratio))
            assert n_past / len(epoch) == pytest.approx(ratio, abs=0.005)
            # No row from a future month ever leaks in.
            assert max(epoch) < (month + 1) * N


def test_past_rows_come_from_every_past_month():
    clf, spy = fit_with_spy(rehearsal_ratio=0.5, max_epochs=3)
    past = [i for epoch in spy.months[3]["epochs"] for i in epoch if i < 3 * N]
    per_month = np.bincount(np.asarray(past) // N, minlength=3)
    # 360 draws from 360 remembered rows: each past month about a third.
    assert per_month.sum() == 3 * N and np.all(per_month > 0.2 * 3 * N)


def test_past_rows_are_redrawn_every_epoch():
    clf, spy = fit_with_spy(rehearsal_ratio=0.25, max_epochs=3)
    past = [sorted(i for i in epoch if i < 2 * N) for epoch in spy.months[2]["epochs"]]
    assert past[0] != past[1] or past[1] != past[2]


@pytest.mark.parametrize("ratio", [0.0, 0.3, 0.5])
def test_epoch_size_is_exact(ratio):
    clf, spy = fit_with_spy(rehearsal_ratio=ratio, epoch_size=100, max_epochs=2)
    assert [len(e) for e in spy.months[0]["epochs"]] == [N, N]  # the base fit is untouched
    for month in range(1, 4):
        for epoch in spy.months[month]["epochs"]:
            assert len(epoch) == 100
            assert sum(i < month * N for i in epoch) == round(100 * ratio)
    assert [c["rows"] for c in clf.cost_] == [2 * N, 200, 200, 200]


def test_epoch_size_larger_than_month_draws_with_replacement():
    clf, spy = fit_with_spy(rehearsal_ratio=0.5, epoch_size=400, max_epochs=1)
    epoch = spy.months[1]["epochs"][0]
    assert len(epoch) == 400
    assert sum(i >= N for i in epoch) == 200  # 200 new-month draws from 120 rows


def test_memory_never_exceeds_memory_size_and_past_rows_come_from_it():
    X, y, months = make_stream(n_months=4, n_per_month=N, id_column=True)
    spy = RowSpy()
    clf = ContinualClassifier(strategy="replay", memory_size=50, callbacks=[spy], **FAST)
    for month in range(4):
        if month:
            in_memory = set(clf.strategy_.memory.X[: len(clf.strategy_.memory), 0].long().tolist())
        clf.partial_fit_month(X[months == month], y[months == month])
        assert len(clf.strategy_.memory) == min(50, (month + 1) * N)
        assert clf.strategy_.memory.X.shape[0] == 50
        if month:
            past = {i for e in spy.months[month]["epochs"] for i in e if i < month * N}
            assert past <= in_memory


def test_reservoir_is_a_uniform_sample():
    # Oracle: under algorithm R every row seen is kept with probability
    # capacity / n_seen. Count inclusions over many independent runs.
    n_runs, capacity, sizes = 3000, 20, [50, 30, 70, 50]
    n_total = sum(sizes)
    counts = np.zeros(n_total)
    for seed in range(n_runs):
        rng = np.random.default_rng(seed)
        memory = ReservoirMemory(capacity)
        start = 0
        for size in sizes:
            ids = torch.arange(start, start + size, dtype=torch.float32)[:, None]
            memory.add(ids, torch.zeros(size, dtype=torch.long), rng)
            start += size
        kept = memory.X[:, 0].long().numpy()
        assert len(np.unique(kept)) == capacity  # no row kept twice
        counts[kept] += 1
    p = capacity / n_total
    expected, sd = n_runs * p, np.sqrt(n_runs * p * (1 - p))
    assert np.all(np.abs(counts - expected) < 5 * sd)
    # Each month's share matches its size (a biased reservoir fails this).
    bounds = np.cumsum([0] + sizes)
    for a, b in zip(bounds[:-1], bounds[1:]):
        assert counts[a:b].mean() == pytest.approx(expected, rel=0.03)


def test_epoch_composition_formula():
    assert epoch_composition(100, 1000, 0.5, None) == (100, 100)
    assert epoch_composition(100, 1000, 0.75, None) == (100, 300)
    assert epoch_composition(100, 1000, 0.0, None) == (100, 0)
    assert epoch_composition(100, 10, 0.2, 1000) == (800, 200)


def test_replay_zero_ratio_is_naive():
    X, y, months = make_stream()
    a = ContinualClassifier(strategy="replay", rehearsal_ratio=0.0, **FAST)
    b = ContinualClassifier(strategy="naive", **FAST)
    pa = a.fit(X, y, months=months).predict_proba(X)
    pb = b.fit(X, y, months=months).predict_proba(X)
    assert [c["rows"] for c in a.cost_] == [c["rows"] for c in b.cost_]
    np.testing.assert_array_equal(pa, pb)


def test_replay_repr():
    assert repr(Replay(0.3, 10, None)) == "Replay(rehearsal_ratio=0.3, epoch_size=10, memory_size=None)"
