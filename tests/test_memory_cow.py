"""A memory kept on disk is copy-on-write (issue 20, part 2).

Files are never changed once written, so a checkpoint keeps loading after
later months, a failed month only deletes its own files, two models loaded
from one checkpoint never share a file they write, loading creates nothing
and opens files read-only, and ``memory_files()`` names exactly the files a
checkpoint references. The oracle is always a run that nothing disturbed.
"""

import errno
import os
import shutil
import stat

import numpy as np
import pytest
import torch
from conftest import FAST, fingerprint, make_stream

from sklearn.exceptions import NotFittedError

from sklearn_cf import ContinualClassifier
from sklearn_cf._estimator import load
from sklearn_cf.exceptions import TrainingDivergedError
from sklearn_cf.strategies import ClassBalancedMemory, ReservoirMemory, _disk, _memory
from sklearn_cf.strategies._memory_factory import memory_from_state

CASES = {
    "all rows": dict(strategy="replay"),
    "reservoir": dict(strategy="replay", memory_size=100, epoch_size=150),
    "class_balanced": dict(strategy="replay", memory_size=100,
                           strategy__memory_policy="class_balanced"),
    "der++": dict(strategy="der++", memory_size=150),
    "joint": dict(strategy="joint"),
}


def _listing(folder):
    """Every file under ``folder``: relative path -> (size, mtime, bytes)."""
    found = {}
    for root, dirs, names in os.walk(folder):
        for name in dirs:
            found[os.path.relpath(os.path.join(root, name), folder) + os.sep] = None
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, folder)] = (os.stat(path).st_mtime_ns, f.read())
    return found


def _npy_files(folder):
    return sorted(os.path.join(root, name) for root, _, names in os.walk(folder)
                  for name in names if name.endswith(".npy"))


def _months(X, y, months):
    return [(X[months == m], y[months == m]) for m in np.unique(months)]


def _unbroken(settings, data, folder):
    """The oracle: the months trained one after the other, nothing else."""
    clf = ContinualClassifier(**FAST, **settings, memory_dir=folder)
    for X_m, y_m in data:
        clf.partial_fit_month(X_m, y_m)
    return clf


def _same(clf, reference, X):
    np.testing.assert_array_equal(clf.predict_proba(X), reference.predict_proba(X))
    assert clf.months_seen_ == reference.months_seen_
    (mine,), (theirs,) = ([p.memory if hasattr(p, "memory") else p.history
                           for p in c.strategy_.parts if hasattr(p, "memory_files")]
                          for c in (clf, reference))
    for (Xa, ya), (Xb, yb) in zip(mine.sources(), theirs.sources()):
        assert torch.equal(Xa, Xb) and torch.equal(ya, yb)


@pytest.fixture(params=[False, True], ids=["", "compacting"])
def compacting(request, monkeypatch):
    """With ``compacting``, a reservoir rewrites its rows into one new
    segment as soon as it references two (every month or so)."""
    if request.param:
        monkeypatch.setattr(_memory, "COMPACT_AFTER", 1)
    return request.param


@pytest.mark.parametrize("case", list(CASES))
def test_an_older_checkpoint_still_loads_and_predicts_after_later_months(tmp_path, case,
                                                                          compacting):
    settings = CASES[case]
    X, y, months = make_stream(n_months=6)
    data = _months(X, y, months)
    clf = _unbroken(settings, data[:2], tmp_path / "memory")
    clf.save(tmp_path / "old.pt")
    old_proba, old_files = clf.predict_proba(X), clf.memory_files()
    before = {path: open(path, "rb").read() for path in old_files}
    for X_m, y_m in data[2:]:
        clf.partial_fit_month(X_m, y_m)
    clf.save(tmp_path / "new.pt")
    # The old checkpoint's files are as they were, and it predicts as it did.
    assert {path: open(path, "rb").read() for path in old_files} == before
    old = load(tmp_path / "old.pt")
    np.testing.assert_array_equal(old.predict_proba(X), old_proba)
    assert old.memory_files() == old_files
    # ... and continues exactly as an unbroken run (writing new files).
    for X_m, y_m in data[2:]:
        old.partial_fit_month(X_m, y_m)
    _same(old, _unbroken(settings, data, tmp_path / "unbroken"), X)
    np.testing.assert_array_equal(load(tmp_path / "new.pt").predict_proba(X),
                                  clf.predict_proba(X))
    if compacting and "memory_size" in settings:
        assert len(clf.memory_files()) == 2  # one segment: its X and y files
    if "memory_size" in settings:
        # The memory's rows are those a memory in RAM keeps.
        in_ram = ContinualClassifier(**FAST, **settings).fit(X, y, months=months)
        (Xd, yd), = clf.strategy_.memory.sources()
        (Xr, yr), = in_ram.strategy_.memory.sources()
        assert torch.equal(Xd, Xr) and torch.equal(yd, yr)


class _Boom(Exception):
    pass


@pytest.mark.parametrize("how", ["exception after the memory was written", "Ctrl-C",
                                 "diverged"])
@pytest.mark.parametrize("case", ["all rows", "reservoir", "class_balanced", "der++"])
def test_a_failed_month_deletes_only_its_own_files_and_older_checkpoints_load(
        tmp_path, monkeypatch, case, how, compacting):
    settings = CASES[case]
    X, y, months = make_stream(n_months=4)
    data = _months(X, y, months)
    folder = tmp_path / "memory"
    clf = _unbroken(settings, data[:2], folder)
    clf.save(tmp_path / "month1.pt")
    clf.partial_fit_month(*data[2])
    clf.save(tmp_path / "month2.pt")
    before, proba = _listing(folder), clf.predict_proba(X)
    memory_type = type(clf.strategy_.memory)
    add = memory_type.add
    if how == "diverged":
        clf.set_params(finetune_lr=1e20)
        error = TrainingDivergedError
    else:
        error = _Boom if how.startswith("exception") else KeyboardInterrupt

        def add_then_fail(self, *args, **kwargs):
            add(self, *args, **kwargs)
            raise error()

        monkeypatch.setattr(memory_type, "add", add_then_fail)
    with pytest.raises(error):
        clf.partial_fit_month(*data[3])
    monkeypatch.setattr(memory_type, "add", add)
    clf.set_params(finetune_lr=None)
    assert _listing(folder) == before  # no new file, nothing changed
    np.testing.assert_array_equal(clf.predict_proba(X), proba)
    for name, n in [("month1.pt", 2), ("month2.pt", 3)]:
        _same(load(tmp_path / name), _unbroken(settings, data[:n], tmp_path / f"ref{n}"), X)
    clf.partial_fit_month(*data[3])
    _same(clf, _unbroken(settings, data, tmp_path / "unbroken"), X)


@pytest.mark.parametrize("case", list(CASES))
def test_two_models_loaded_from_one_checkpoint_train_in_turn_like_unbroken_runs(tmp_path,
                                                                                 case):
    settings = CASES[case]
    X, y, months = make_stream(n_months=4)
    data = _months(X, y, months)
    clf = _unbroken(settings, data[:2], tmp_path / "memory")
    clf.save(tmp_path / "model.pt")
    first, second = load(tmp_path / "model.pt"), load(tmp_path / "model.pt")
    # The first takes months 2 then 3, the second months 3 then 2, in turn.
    first.partial_fit_month(*data[2])
    second.partial_fit_month(*data[3])
    first.partial_fit_month(*data[3])
    second.partial_fit_month(*data[2])
    _same(first, _unbroken(settings, data, tmp_path / "a"), X)
    _same(second, _unbroken(settings, [*data[:2], data[3], data[2]], tmp_path / "b"), X)
    # The files they share are the checkpoint's, which neither changed.
    shared = set(first.memory_files()) & set(second.memory_files())
    assert shared <= set(clf.memory_files())


@pytest.mark.parametrize("case", ["all rows", "reservoir"])
def test_a_relative_memory_dir_is_fixed_when_the_sequence_starts(tmp_path, monkeypatch, case):
    settings = CASES[case]
    X, y, months = make_stream(n_months=3)
    data = _months(X, y, months)
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir()
    there.mkdir()
    monkeypatch.chdir(here)
    clf = ContinualClassifier(**FAST, **settings, memory_dir="memory")
    for X_m, y_m in data[:2]:
        clf.partial_fit_month(X_m, y_m)
    clf.save(tmp_path / "model.pt")
    assert all(f.startswith(str(here / "memory")) for f in clf.memory_files())
    monkeypatch.chdir(there)
    loaded = load(tmp_path / "model.pt")
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    loaded.partial_fit_month(*data[2])
    assert os.listdir(there) == []  # nothing written where the load ran
    _same(loaded, _unbroken(settings, data, tmp_path / "unbroken"), X)


@pytest.mark.parametrize("case", list(CASES))
def test_loading_creates_nothing(tmp_path, case):
    settings = CASES[case]
    X, y, months = make_stream(n_months=2)
    clf = _unbroken(settings, _months(X, y, months), tmp_path / "memory")
    clf.save(tmp_path / "model.pt")
    before = _listing(tmp_path)
    loaded = load(tmp_path / "model.pt")
    loaded.predict_proba(X)
    assert _listing(tmp_path) == before


@pytest.mark.parametrize("case", ["all rows", "reservoir", "der++"])
def test_a_moved_memory_folder_loads_with_memory_dir(tmp_path, case):
    settings = CASES[case]
    X, y, months = make_stream(n_months=3)
    data = _months(X, y, months)
    clf = _unbroken(settings, data[:2], tmp_path / "memory")
    clf.save(tmp_path / "model.pt")
    proba = clf.predict_proba(X)
    del clf
    shutil.move(tmp_path / "memory", tmp_path / "moved")
    with pytest.raises(ValueError, match="is missing"):
        load(tmp_path / "model.pt")
    with pytest.raises(ValueError, match="is not a folder"):
        load(tmp_path / "model.pt", memory_dir=tmp_path / "nowhere")
    moved = load(tmp_path / "model.pt", memory_dir=tmp_path / "moved")
    np.testing.assert_array_equal(moved.predict_proba(X), proba)
    assert all(f.startswith(str(tmp_path / "moved")) for f in moved.memory_files())
    before = set(_npy_files(tmp_path / "moved"))
    moved.partial_fit_month(*data[2])
    assert set(moved.memory_files()) - before  # the month's files went there
    assert set(moved.memory_files()) <= set(_npy_files(tmp_path / "moved"))
    _same(moved, _unbroken(settings, data, tmp_path / "unbroken"), X)
    # A copy loads too, and its folder is the one given.
    shutil.copytree(tmp_path / "moved", tmp_path / "copy")
    moved.save(tmp_path / "moved.pt")
    copy = load(tmp_path / "moved.pt", memory_dir=tmp_path / "copy")
    np.testing.assert_array_equal(copy.predict_proba(X), moved.predict_proba(X))
    assert all(f.startswith(str(tmp_path / "copy")) for f in copy.memory_files())


def _opened(monkeypatch):
    """The memory files load opens (their paths, as given)."""
    opened = []
    open_rows = _memory.open_rows
    monkeypatch.setattr(_memory, "open_rows",
                        lambda path: opened.append(os.path.abspath(path)) or open_rows(path))
    return opened


@pytest.mark.parametrize("case", list(CASES) + ["replay+ewc"])
def test_memory_files_are_exactly_the_files_a_checkpoint_references(tmp_path, monkeypatch,
                                                                    case):
    settings = CASES.get(case, dict(strategy=case, memory_size=100))
    X, y, months = make_stream(n_months=5)
    folder = tmp_path / "memory"
    clf = _unbroken(settings, _months(X, y, months), folder)
    files = clf.memory_files()
    assert files == sorted(files) and all(os.path.isabs(f) for f in files)
    everything = _npy_files(folder)
    if "memory_size" not in settings:  # nothing is ever left behind
        assert files == everything
    assert set(files) <= set(everything)
    clf.save(tmp_path / "model.pt")
    opened = _opened(monkeypatch)
    load(tmp_path / "model.pt")
    assert sorted(opened) == files  # each one opened once, nothing else
    monkeypatch.undo()
    # Files no checkpoint references can go: the model loads as it was.
    proba = clf.predict_proba(X)
    del clf
    for path in set(everything) - set(files):
        os.remove(path)
    np.testing.assert_array_equal(load(tmp_path / "model.pt").predict_proba(X), proba)
    # Without any file it references, it does not.
    for path in files:
        os.rename(path, path + ".away")
        with pytest.raises(ValueError, match="is missing"):
            load(tmp_path / "model.pt")
        os.rename(path + ".away", path)


def test_memory_files_of_a_memory_in_ram_or_a_strategy_without_one():
    X, y, months = make_stream(n_months=2)
    for settings in [CASES["reservoir"], dict(strategy="ewc")]:
        clf = ContinualClassifier(**FAST, **settings).fit(X, y, months=months)
        assert clf.memory_files() == []
    with pytest.raises(NotFittedError, match="not fitted"):
        ContinualClassifier().memory_files()


def test_a_reservoir_compacts_into_a_new_segment_and_old_states_keep_their_rows(
        tmp_path, monkeypatch):
    monkeypatch.setattr(_memory, "COMPACT_AFTER", 3)
    rng_disk, rng_ram = np.random.default_rng(0), np.random.default_rng(0)
    disk, ram = ClassBalancedMemory(40, tmp_path), ClassBalancedMemory(40)
    g = np.random.default_rng(1)
    states, referenced = [], []
    for month in range(12):
        X = torch.arange(month * 30, month * 30 + 30, dtype=torch.float32)[:, None]
        y = torch.from_numpy(g.choice(3, size=30, p=[0.8, 0.15, 0.05]))
        w = torch.from_numpy(g.uniform(0.5, 2, 30).astype(np.float32)) if month % 2 else None
        disk.add(X, y, rng_disk, sample_weight=w)
        ram.add(X, y, rng_ram, sample_weight=w)
        n = len(ram)
        assert len(disk) == n and torch.equal(disk.X, ram.X[:n])
        assert torch.equal(disk.y[:n], ram.y[:n])
        assert torch.equal(disk.w[:n], ram.w[:n]) if ram.w is not None else disk.w is None
        referenced.append(len({f.rsplit(".", 2)[0] for f in disk.memory_files()}))
        states.append((disk.state_dict(), ram.X[: len(ram)].clone()))
    assert max(referenced) <= 3 and 1 in referenced[2:]  # compacted, more than once
    for state, rows in states:  # every older state still reads its own rows
        assert torch.equal(memory_from_state(state).X, rows)


def test_undoing_a_month_that_compacted_restores_the_index_and_deletes_its_files(
        tmp_path, monkeypatch):
    monkeypatch.setattr(_memory, "COMPACT_AFTER", 1)
    memory, rng = ReservoirMemory(20, tmp_path), np.random.default_rng(0)
    memory.add(torch.zeros(30, 2), torch.zeros(30, dtype=torch.long), rng)
    files, rows, state = _npy_files(tmp_path), memory.X.clone(), memory.state_dict()
    log = memory.begin()
    memory.add(torch.ones(30, 2), torch.ones(30, dtype=torch.long), rng)
    assert len(_npy_files(tmp_path)) == len(files) + 4  # the month's segment, a compaction
    memory.undo(log)
    assert _npy_files(tmp_path) == files
    assert torch.equal(memory.X, rows)
    after = memory.state_dict()
    assert after.keys() == state.keys()
    for key, value in state.items():
        assert np.array_equal(after[key], value) if isinstance(value, np.ndarray) \
            else after[key] == value


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="names an fd through /proc")
def test_every_memory_file_is_written_durably_through_the_fault_points(tmp_path,
                                                                      monkeypatch):
    import sklearn_cf._atomic

    ops = []
    for module in (_disk, sklearn_cf._atomic):  # remove_file is _atomic's
        monkeypatch.setattr(module, "fault_point", lambda op, path: ops.append((op, str(path))))
    synced = []
    fsync = os.fsync
    monkeypatch.setattr(_disk.os, "fsync", lambda fd: synced.append(
        os.readlink(f"/proc/self/fd/{fd}")) or fsync(fd))
    memory = ReservoirMemory(10, tmp_path / "memory")
    memory.add(torch.zeros(6, 2), torch.zeros(6, dtype=torch.long), np.random.default_rng(0),
               sample_weight=torch.ones(6))
    written = _npy_files(tmp_path)
    assert len(written) == 3  # X, y and w
    assert set(written) <= set(synced)  # each file, and the folders holding them
    assert str(tmp_path / "memory") in synced
    assert ("create", str(tmp_path / "memory")) in ops  # the folder, at the first write
    for path in written:
        steps = [op for op, p in ops if p == path]
        assert steps == ["create", "write", "fsync"]
    log = memory.begin()
    memory.add(torch.ones(6, 2), torch.ones(6, dtype=torch.long), np.random.default_rng(1))
    new = sorted(set(_npy_files(tmp_path)) - set(written))
    del ops[:]
    memory.undo(log)
    assert sorted(p for op, p in ops if op == "unlink") == new
    assert [op for op, _ in ops] == ["unlink"] * len(new)  # nothing else touched


def test_a_folder_that_cannot_be_written_is_refused_before_the_month(tmp_path, monkeypatch):
    X, y, months = make_stream(n_months=3)
    data = _months(X, y, months)
    clf = _unbroken(CASES["reservoir"], data[:2], tmp_path / "memory")
    before = fingerprint(clf, X)
    listing = _listing(tmp_path / "memory")
    folder = clf.strategy_.memory.directory
    # As a read-only folder answers (even to root, through os.access here).
    monkeypatch.setattr(_disk.os, "access", lambda path, mode: False)
    with pytest.raises(ValueError, match=f"memory folder {folder} is not writable"):
        clf.partial_fit_month(*data[2])
    monkeypatch.undo()
    assert fingerprint(clf, X) == before and _listing(tmp_path / "memory") == listing
    # A write refused by the file system: the same message, the month rolled back.
    real_open = open

    def refuse(path, mode="r", *args, **kwargs):
        if "x" in mode:
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(_disk, "open", refuse, raising=False)
    with pytest.raises(ValueError, match=f"memory folder {folder} is not writable"):
        clf.partial_fit_month(*data[2])
    monkeypatch.undo()
    assert fingerprint(clf, X) == before and _listing(tmp_path / "memory") == listing


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root writes to read-only folders: chmod does not bite")
@pytest.mark.parametrize("case", ["all rows", "reservoir"])
def test_a_read_only_copy_loads_and_predicts_and_refuses_to_train(tmp_path, case):
    settings = CASES[case]
    X, y, months = make_stream(n_months=3)
    data = _months(X, y, months)
    clf = _unbroken(settings, data[:2], tmp_path / "memory")
    clf.save(tmp_path / "model.pt")
    proba = clf.predict_proba(X)
    folder = clf.strategy_.memory.directory
    modes = {}
    for root, _, names in os.walk(tmp_path / "memory"):
        for path in [root] + [os.path.join(root, n) for n in names]:
            modes[path] = os.stat(path).st_mode
            os.chmod(path, modes[path] & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        loaded = load(tmp_path / "model.pt")
        np.testing.assert_array_equal(loaded.predict_proba(X), proba)
        before = fingerprint(loaded, X)
        with pytest.raises(ValueError, match=f"memory folder {folder} is not writable"):
            loaded.partial_fit_month(*data[2])
        assert fingerprint(loaded, X) == before
    finally:
        for path, mode in modes.items():
            os.chmod(path, mode)


@pytest.mark.parametrize("weighted", [False, True])
def test_a_reservoir_written_in_place_before_copy_on_write_loads_and_is_left_alone(
        tmp_path, weighted):
    # The layout of a reservoir on disk before copy-on-write: one file per
    # field of `capacity` rows, the first `size` in use, changed in place.
    capacity, size = 10, 8
    rows = np.arange(capacity * 2, dtype=np.float32).reshape(capacity, 2)
    labels = np.arange(capacity) % 3
    weights = np.linspace(0.5, 2, capacity).astype(np.float32)
    fields = [("reservoir.X.npy", rows), ("reservoir.y.npy", labels)]
    if weighted:
        fields.append(("reservoir.w.npy", weights))
    files = []
    for name, values in fields:
        np.save(tmp_path / name, values)
    names = [name for name, _ in fields]
    digests = [_disk.file_digest(tmp_path / name) for name in names]
    files = [*names[:2], *digests[:2], *([names[2], digests[2]] if weighted else [])]
    state = {"kind": "reservoir", "capacity": capacity, "size": size, "n_seen": 30,
             "directory": str(tmp_path), "files": files}
    before = _listing(tmp_path)
    memory = memory_from_state(state)
    assert torch.equal(memory.X, torch.from_numpy(rows[:size]))
    assert memory.y[:size].tolist() == labels[:size].tolist()
    if weighted:
        assert memory.w[:size].tolist() == weights[:size].tolist()
    else:
        assert memory.w is None
    assert memory.memory_files() == [str(tmp_path / name) for name in names]
    # Training on writes new files; the old ones stay as they were.
    log = memory.begin()
    memory.add(torch.full((40, 2), -1.0), torch.zeros(40, dtype=torch.long),
               np.random.default_rng(0))
    memory.end(log)
    assert {k: v for k, v in _listing(tmp_path).items() if k in before} == before
    assert set(memory.memory_files()) - {str(tmp_path / name) for name in names}
    assert torch.equal(memory_from_state(state).X, torch.from_numpy(rows[:size]))
