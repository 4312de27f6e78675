"""Replay memory and joint's history in memory-mapped files (``memory_dir``):
the same results as in RAM, rolled back with the month, checked at load.

Copy-on-write (older checkpoints, two loads of one checkpoint, read-only
copies, moved folders, ``memory_files``) is in ``test_memory_cow.py``."""

import os
import re

import numpy as np
import pytest
from conftest import FAST, make_stream, resume_in_a_new_process
from skorch.callbacks import Callback

import sklearn_cf
from sklearn_cf import ContinualClassifier
from sklearn_cf.strategies import Combined

CASES = [("replay", {}), ("replay", {"memory_size": 100, "epoch_size": 150}),
         ("replay+ewc", {"memory_size": 250}), ("joint", {})]


def _files(folder):
    """Every file under ``folder`` with its bytes."""
    found = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, folder)] = f.read()
    return found


def _same_predictions(disk, ram, X, extra):
    """A memory on disk keeps the rows RAM keeps and every batch holds the
    same rows. Keeping every row, batches also hold them in the same order:
    the same predictions bit for bit. A bounded memory's rows are read from
    its files in (file, row) order rather than slot order, so a batch that
    mixes several rows of it sums their losses in another order: the same
    predictions up to float rounding (an unbroken run with the memory on
    disk is the exact oracle, see test_memory_cow.py)."""
    if extra.get("memory_size") is None:
        np.testing.assert_array_equal(disk.predict_proba(X), ram.predict_proba(X))
    else:
        np.testing.assert_allclose(disk.predict_proba(X), ram.predict_proba(X), rtol=0,
                                   atol=1e-5)


def _memory(clf):
    parts = clf.strategy_.parts if isinstance(clf.strategy_, Combined) else [clf.strategy_]
    for part in parts:
        for name in ("memory", "history"):
            if hasattr(part, name):
                return getattr(part, name)
    raise AssertionError("no memory")


@pytest.mark.parametrize("strategy, extra", CASES)
def test_disk_memory_gives_the_predictions_of_ram_memory(tmp_path, strategy, extra):
    X, y, months = make_stream(n_months=4)
    ram = ContinualClassifier(strategy=strategy, **FAST, **extra).fit(X, y, months=months)
    disk = ContinualClassifier(strategy=strategy, memory_dir=tmp_path, **FAST, **extra)
    disk.fit(X, y, months=months)
    _same_predictions(disk, ram, X, extra)
    # Training reads the rows from files, and they are the rows kept in RAM.
    on_disk, in_ram = _memory(disk), _memory(ram)
    assert on_disk.directory is not None and os.path.dirname(on_disk.directory) == str(tmp_path)
    for Xd, _ in on_disk.rows().sources:
        assert not Xd.numpy().flags.owndata  # a view of a file map
    assert len(on_disk.sources()) == len(in_ram.sources())
    for (Xd, yd), (Xr, yr) in zip(on_disk.sources(), in_ram.sources()):
        np.testing.assert_array_equal(Xd.numpy(), Xr.numpy())
        np.testing.assert_array_equal(yd.numpy(), yr.numpy())
    assert any(name.endswith(".npy") for name in _files(tmp_path))


def test_each_fitted_sequence_gets_its_own_folder(tmp_path):
    X, y, months = make_stream(n_months=2)
    first = ContinualClassifier(strategy="replay", memory_dir=tmp_path, **FAST)
    second = ContinualClassifier(strategy="replay", memory_dir=tmp_path, **FAST)
    first.fit(X, y, months=months)
    second.fit(X, y, months=months)
    assert _memory(first).directory != _memory(second).directory
    assert len(os.listdir(tmp_path)) == 2


class _Boom(Callback):
    def __init__(self):
        self.armed = False

    def on_batch_end(self, net, training=False, **kwargs):
        if self.armed and training:
            raise RuntimeError("boom")


@pytest.mark.parametrize("where", ["training", "end_month"])
@pytest.mark.parametrize("strategy, extra", CASES)
def test_a_failed_month_leaves_the_memory_files_as_they_were(tmp_path, monkeypatch, strategy,
                                                             extra, where):
    X, y, months = make_stream(n_months=4)
    boom = _Boom()
    folder = tmp_path / "memory"
    clf = ContinualClassifier(strategy=strategy, memory_dir=folder, callbacks=[boom],
                              **FAST, **extra)
    clf.fit(X[months < 3], y[months < 3], months=months[months < 3])
    before, proba = _files(folder), clf.predict_proba(X)
    memory = _memory(clf)
    if where == "training":
        boom.armed = True
    else:  # fail after the month's rows were written to the files
        add = type(memory).add

        def add_then_fail(self, *args, **kwargs):
            add(self, *args, **kwargs)
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(type(memory), "add", add_then_fail)
    with pytest.raises((RuntimeError, OSError)):
        clf.partial_fit_month(X[months == 3], y[months == 3])
    monkeypatch.undo()
    assert _files(folder) == before  # byte-identical, no journal left behind
    np.testing.assert_array_equal(clf.predict_proba(X), proba)
    boom.armed = False
    clf.partial_fit_month(X[months == 3], y[months == 3])
    unbroken = ContinualClassifier(strategy=strategy, memory_dir=tmp_path / "unbroken",
                                   **FAST, **extra).fit(X, y, months=months)
    np.testing.assert_array_equal(clf.predict_proba(X), unbroken.predict_proba(X))
    in_ram = ContinualClassifier(strategy=strategy, **FAST, **extra).fit(X, y, months=months)
    _same_predictions(clf, in_ram, X, extra)


@pytest.mark.slow
@pytest.mark.parametrize("strategy, extra", [("replay", {"memory_size": 100}), ("joint", {})])
def test_a_checkpoint_with_disk_memory_resumes_exactly_in_a_new_process(tmp_path, strategy,
                                                                         extra):
    X, y, months = make_stream(n_months=3)
    clf = ContinualClassifier(strategy=strategy, memory_dir=tmp_path / "memory", **FAST,
                              **extra)
    clf.fit(X[months < 2], y[months < 2], months=months[months < 2])
    path = tmp_path / "model.pt"
    clf.save(path)
    resumed = resume_in_a_new_process(path, X[months == 2], y[months == 2], X, tmp_path)
    uninterrupted = ContinualClassifier(strategy=strategy, memory_dir=tmp_path / "unbroken",
                                        **FAST, **extra)
    uninterrupted.fit(X, y, months=months)
    np.testing.assert_array_equal(resumed, uninterrupted.predict_proba(X))


def test_a_tampered_or_missing_memory_file_is_refused_at_load(tmp_path):
    X, y, months = make_stream(n_months=3)
    clf = ContinualClassifier(strategy="replay", memory_dir=tmp_path / "memory", **FAST)
    clf.fit(X, y, months=months)
    clf.save(tmp_path / "model.pt")
    target = [f for f in clf.memory_files() if f.endswith(".X.npy")][1]
    name = re.escape(os.path.basename(target))
    del clf  # its maps of the files
    data = np.load(target, mmap_mode="r+")
    data[0, 0] += 1.0  # one value of one remembered row
    data.flush()
    del data
    with pytest.raises(ValueError, match=f"{name} changed since the checkpoint"):
        sklearn_cf.load(tmp_path / "model.pt")
    os.remove(target)
    with pytest.raises(ValueError, match=f"{name} is missing"):
        sklearn_cf.load(tmp_path / "model.pt")


def test_memory_dir_is_fixed_after_the_base_fit_and_checked(tmp_path):
    X, y, months = make_stream(n_months=3)
    clf = ContinualClassifier(strategy="replay", memory_dir=tmp_path, **FAST)
    clf.fit(X[months < 2], y[months < 2], months=months[months < 2])
    clf.set_params(memory_dir=tmp_path / "elsewhere")
    with pytest.raises(ValueError, match="memory_dir=.* changed after the base fit"):
        clf.partial_fit_month(X[months == 2], y[months == 2])
    (tmp_path / "a_file").write_text("")
    with pytest.raises(ValueError, match="exists and is not a folder"):
        ContinualClassifier(memory_dir=tmp_path / "a_file", **FAST).fit(X, y)


@pytest.mark.parametrize("strategy, extra", [("replay", {}), ("replay", {"memory_size": 100})])
def test_a_disk_full_while_writing_memory_leaves_no_file_behind(tmp_path, monkeypatch,
                                                                strategy, extra):
    import errno

    from sklearn_cf.strategies import _disk, _memory

    X, y, months = make_stream(n_months=4)
    clf = ContinualClassifier(strategy=strategy, memory_dir=tmp_path, **FAST, **extra)
    clf.fit(X[months < 3], y[months < 3], months=months[months < 3])
    before, proba = _files(tmp_path), clf.predict_proba(X)
    write_rows = _disk.write_rows
    calls = []

    def second_write_fails(path, rows, index=None):
        calls.append(path)
        if len(calls) == 2:  # the X file is written, the y file is not
            if index is None:
                write_rows(path, rows[: len(rows) // 2])  # a partial file
            else:
                write_rows(path, rows, index[: len(index) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        return write_rows(path, rows, index)

    monkeypatch.setattr(_memory, "write_rows", second_write_fails)
    with pytest.raises(OSError, match="No space left"):
        clf.partial_fit_month(X[months == 3], y[months == 3])
    assert _files(tmp_path) == before  # no orphan file, no journal
    np.testing.assert_array_equal(clf.predict_proba(X), proba)
