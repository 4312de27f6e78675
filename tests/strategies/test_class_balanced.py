"""Class-balancing reservoir sampling (CBRS): the memory against a per-row
reference written from the paper, its state (undo, disk, checkpoints), and
replay with memory_policy="class_balanced"."""

import os
from collections import Counter

import numpy as np
import pytest
import torch
from conftest import FAST, fingerprint
from skorch.callbacks import Callback

import sklearn_cf
from sklearn_cf import ContinualClassifier
from sklearn_cf.strategies import ClassBalancedMemory, ReservoirMemory
from sklearn_cf.strategies._memory_factory import make_memory, memory_from_state


def cbrs_reference(months, capacity, rng):
    """Chrysakis & Moens (2020), Algorithm 1, one row at a time, with the
    draws the memory documents: after the memory is full, each row draws
    ``u, v``; a class is full once it is or has been one of the largest.
    Returns the stream position of the row held by each slot."""
    memory, label, seen, full = [], [], Counter(), set()
    for month in months:
        for c in month:
            position = len(label)
            label.append(c)
            seen[c] += 1
            if len(memory) < capacity:
                memory.append(position)
                continue
            u, v = rng.random(2)
            counts = Counter(label[i] for i in memory)
            largest = max(counts.values())
            full |= {k for k, n in counts.items() if n == largest}
            if c in full:
                if u < counts[c] / seen[c]:
                    own = [s for s in range(capacity) if label[memory[s]] == c]
                    memory[own[min(int(v * len(own)), len(own) - 1)]] = position
            else:
                pool = [s for s in range(capacity) if counts[label[memory[s]]] == largest]
                memory[pool[min(int(v * len(pool)), len(pool) - 1)]] = position
    return memory


def _fill(memory, months, rng, weights=None):
    """Add each month's labels with X = the rows' stream positions."""
    start = 0
    for k, month in enumerate(months):
        X = torch.arange(start, start + len(month), dtype=torch.float32)[:, None]
        w = None if weights is None else torch.from_numpy(weights[start:start + len(month)])
        memory.add(X, torch.from_numpy(np.asarray(month, dtype=np.int64)), rng,
                   sample_weight=w)
        start += len(month)
    return memory


def _positions(memory):
    return memory.X[: memory.size, 0].long().tolist()


def _labels(memory):
    return memory.y[: memory.size].numpy()


@pytest.mark.parametrize("seed", range(40))
def test_the_memory_keeps_the_rows_the_reference_keeps(seed):
    g = np.random.default_rng(seed)
    capacity, n_classes = int(g.integers(1, 40)), int(g.integers(1, 5))
    shares = g.dirichlet(np.full(n_classes, 0.5))
    months = [g.choice(n_classes, size=int(g.integers(1, 150)), p=shares)
              for _ in range(int(g.integers(1, 5)))]
    memory = _fill(ClassBalancedMemory(capacity), months, np.random.default_rng(seed))
    assert _positions(memory) == cbrs_reference(months, capacity, np.random.default_rng(seed))
    assert memory.class_seen.tolist() == np.bincount(np.concatenate(months),
                                                     minlength=len(memory.class_seen)).tolist()


def test_a_month_added_in_pieces_keeps_the_same_rows():
    g = np.random.default_rng(1)
    labels = g.choice(3, size=900, p=[0.85, 0.1, 0.05])
    whole = _fill(ClassBalancedMemory(50), [labels], np.random.default_rng(2))
    pieces = _fill(ClassBalancedMemory(50), np.array_split(labels, 7), np.random.default_rng(2))
    assert _positions(whole) == _positions(pieces)


def test_a_rare_class_keeps_every_row_until_it_is_as_large_as_the_largest():
    # 20k rows, 0.4% positives: all 80 fit in capacity / 2 and are all kept.
    g = np.random.default_rng(0)
    for n_positive, expected in [(80, 80), (300, 100)]:
        y = np.zeros(20000, dtype=np.int64)
        y[g.choice(20000, size=n_positive, replace=False)] = 1
        months = np.array_split(y, 5)
        balanced = _fill(ClassBalancedMemory(200), months, np.random.default_rng(1))
        # CBRS: positives are never the largest class before they reach
        # capacity / 2, so each one replaces a negative; from then on each
        # class replaces only its own rows.
        assert _labels(balanced).sum() == min(n_positive, 200 // 2) == expected
        reservoir = _fill(ReservoirMemory(200), months, np.random.default_rng(1))
        # A uniform sample keeps about 200 * share of them: 0.8 and 3.
        assert _labels(reservoir).sum() <= 15


def test_each_full_class_is_a_uniform_sample_of_its_rows():
    # Within a full class, CBRS is algorithm R: every row of the class is
    # kept with the same probability, early or late in the stream.
    kept = np.zeros(2000)
    for seed in range(300):
        labels = np.tile([0, 0, 0, 1], 500)
        memory = _fill(ClassBalancedMemory(40), [labels], np.random.default_rng(seed))
        kept[_positions(memory)] += 1
    negatives, positives = kept[labels == 0], kept[labels == 1]
    # Each class holds 20 slots: 20/1500 and 20/500 of 300 runs per row.
    assert negatives[:750].mean() == pytest.approx(negatives[750:].mean(), rel=0.1)
    assert positives[:250].mean() == pytest.approx(positives[250:].mean(), rel=0.1)
    assert positives.mean() == pytest.approx(300 * 20 / 500, rel=0.05)


def test_sample_weights_stay_with_their_rows():
    g = np.random.default_rng(3)
    labels = g.choice(2, size=600, p=[0.95, 0.05])
    weights = g.uniform(0.5, 2.0, size=600).astype(np.float32)
    memory = _fill(ClassBalancedMemory(60), np.array_split(labels, 3),
                   np.random.default_rng(4), weights=weights)
    (w,) = memory.weights()
    np.testing.assert_array_equal(w.numpy(), weights[_positions(memory)])


def _state_of(memory):
    return (_positions(memory), _labels(memory).tolist(), memory.size, memory.n_seen,
            memory.class_seen.tolist(), memory.class_full.tolist())


@pytest.mark.parametrize("on_disk", [False, True])
def test_undo_restores_the_rows_and_the_counts(tmp_path, on_disk):
    directory = tmp_path if on_disk else None
    g = np.random.default_rng(5)
    memory = _fill(ClassBalancedMemory(30, directory), [g.choice(2, size=40, p=[0.9, 0.1])],
                   np.random.default_rng(6))
    before = _state_of(memory)
    files = sorted(os.listdir(tmp_path))
    log = memory.begin()
    rng = np.random.default_rng(7)
    memory.add(torch.full((50, 1), -1.0), torch.from_numpy(g.choice(3, size=50)), rng)
    assert _state_of(memory) != before
    memory.undo(log)
    assert _state_of(memory) == before
    assert sorted(os.listdir(tmp_path)) == files  # no journal left behind


@pytest.mark.parametrize("on_disk", [False, True])
def test_a_memory_rebuilt_from_its_state_continues_like_the_original(tmp_path, on_disk):
    g = np.random.default_rng(8)
    months = [g.choice(3, size=80, p=[0.7, 0.25, 0.05]) for _ in range(3)]
    memory = _fill(ClassBalancedMemory(25, tmp_path if on_disk else None), months[:2],
                   np.random.default_rng(9))
    rebuilt = memory_from_state(memory.state_dict())
    assert type(rebuilt) is ClassBalancedMemory and _state_of(rebuilt) == _state_of(memory)
    for m in (memory, rebuilt):
        m.add(torch.zeros(80, 1), torch.from_numpy(months[2]), np.random.default_rng(10))
    assert _state_of(rebuilt) == _state_of(memory)


def test_disk_and_ram_keep_the_same_rows(tmp_path):
    g = np.random.default_rng(11)
    months = [g.choice(2, size=100, p=[0.97, 0.03]) for _ in range(4)]
    ram = _fill(ClassBalancedMemory(40), months, np.random.default_rng(12))
    disk = _fill(ClassBalancedMemory(40, tmp_path), months, np.random.default_rng(12))
    assert _state_of(disk) == _state_of(ram)


def test_a_class_balanced_memory_needs_a_capacity():
    with pytest.raises(ValueError, match="memory_policy='class_balanced' needs a capacity.*"
                                         "memory_size"):
        make_memory(None, policy="class_balanced")
    with pytest.raises(ValueError, match="Unknown memory_policy='fifo'"):
        make_memory(10, policy="fifo")


# -- Replay with a class-balanced memory, in the classifier -------------------

N = 120


def imbalanced_stream(n_months=4, n_per_month=N, n_features=6, seed=0):
    """A drifting stream with about 3% positives; column 0 holds the row index."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_months * n_per_month, n_features)).astype(np.float32)
    months = np.repeat(np.arange(n_months), n_per_month)
    angle = months * np.pi / 3
    y = (np.cos(angle) * X[:, 1] + np.sin(angle) * X[:, 2] > 1.9).astype(int)
    X[:, 0] = np.arange(len(X), dtype=np.float32)
    return X, y, months


SETTINGS = dict(FAST, memory_size=40, strategy__memory_policy="class_balanced")


class _Boom(Callback):
    armed = False

    def on_batch_end(self, net, training=False, **kwargs):
        if self.armed and training:
            raise RuntimeError("boom")


def test_replay_keeps_the_rare_class_in_memory():
    X, y, months = imbalanced_stream()
    balanced = ContinualClassifier(strategy="replay", **SETTINGS).fit(X, y, months=months)
    memory = balanced.strategy_.memory
    assert isinstance(memory, ClassBalancedMemory)
    assert repr(balanced.strategy_).endswith("memory_policy='class_balanced')")
    kept = memory.X[: memory.size, 0].long().numpy()
    # Every positive (every month enters memory once trained), up to half the memory.
    positives = int(y.sum())
    assert 0 < positives <= 20
    assert int(y[kept].sum()) == positives
    uniform = ContinualClassifier(strategy="replay", **dict(FAST, memory_size=40))
    uniform.fit(X, y, months=months)
    assert int(uniform.strategy_.memory.y[:40].sum()) < positives


def test_replay_needs_a_memory_size_for_a_class_balanced_memory():
    X, y, months = imbalanced_stream(n_months=2)
    clf = ContinualClassifier(strategy="replay", strategy__memory_policy="class_balanced",
                              **FAST)
    with pytest.raises(ValueError, match="needs a capacity.*memory_size"):
        clf.fit(X, y, months=months)
    assert not clf.__sklearn_is_fitted__()
    with pytest.raises(ValueError, match="memory_policy"):
        ContinualClassifier(strategy="replay", memory_size=10,
                            strategy__memory_policy="fifo", **FAST).fit(X, y)


@pytest.mark.parametrize("where", ["training", "end_month"])
@pytest.mark.parametrize("on_disk", [False, True])
def test_a_failed_replay_month_changes_nothing(tmp_path, monkeypatch, where, on_disk):
    X, y, months = imbalanced_stream()
    boom = _Boom()
    extra = {"memory_dir": tmp_path / "memory"} if on_disk else {}
    clf = ContinualClassifier(strategy="replay", callbacks=[boom], **SETTINGS, **extra)
    clf.fit(X[months < 3], y[months < 3], months=months[months < 3])
    before = fingerprint(clf, X)
    counts = _state_of(clf.strategy_.memory)
    if where == "training":
        boom.armed = True
    else:
        add = ClassBalancedMemory.add

        def add_then_fail(self, *args, **kwargs):
            add(self, *args, **kwargs)
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(ClassBalancedMemory, "add", add_then_fail)
    with pytest.raises((RuntimeError, OSError)):
        clf.partial_fit_month(X[months == 3], y[months == 3])
    monkeypatch.undo()
    assert fingerprint(clf, X) == before
    assert _state_of(clf.strategy_.memory) == counts
    boom.armed = False
    clf.partial_fit_month(X[months == 3], y[months == 3])
    # An unbroken run keeping its memory where this one does; on disk, the
    # same rows as in RAM (replay batches read them in file order, see
    # test_memory_dir.py, so predictions agree with RAM up to rounding).
    unbroken = {"memory_dir": tmp_path / "unbroken"} if on_disk else {}
    reference = ContinualClassifier(strategy="replay", **SETTINGS, **unbroken)
    reference.fit(X, y, months=months)
    got, want = fingerprint(clf, X, timings=False), fingerprint(reference, X, timings=False)
    if on_disk:  # the state names files instead of holding tensors
        for key in ("strategy", "strategy_repr"):
            del got[key], want[key]
    assert got == want
    assert _state_of(clf.strategy_.memory) == _state_of(reference.strategy_.memory)
    in_ram = ContinualClassifier(strategy="replay", **SETTINGS).fit(X, y, months=months)
    assert _state_of(clf.strategy_.memory) == _state_of(in_ram.strategy_.memory)


@pytest.mark.parametrize("on_disk", [False, True])
def test_a_replay_checkpoint_resumes_like_an_unbroken_run(tmp_path, on_disk):
    X, y, months = imbalanced_stream()
    extra = {"memory_dir": tmp_path / "memory"} if on_disk else {}
    clf = ContinualClassifier(strategy="replay", **SETTINGS, **extra)
    clf.fit(X[months < 3], y[months < 3], months=months[months < 3])
    clf.save(tmp_path / "model.pt")
    resumed = sklearn_cf.load(tmp_path / "model.pt")
    assert isinstance(resumed.strategy_.memory, ClassBalancedMemory)
    assert _state_of(resumed.strategy_.memory) == _state_of(clf.strategy_.memory)
    resumed.partial_fit_month(X[months == 3], y[months == 3])
    unbroken = {"memory_dir": tmp_path / "unbroken"} if on_disk else {}
    reference = ContinualClassifier(strategy="replay", **SETTINGS, **unbroken)
    reference.fit(X, y, months=months)
    np.testing.assert_array_equal(resumed.predict_proba(X), reference.predict_proba(X))
    assert _state_of(resumed.strategy_.memory) == _state_of(reference.strategy_.memory)
    in_ram = ContinualClassifier(strategy="replay", **SETTINGS).fit(X, y, months=months)
    assert _state_of(resumed.strategy_.memory) == _state_of(in_ram.strategy_.memory)
