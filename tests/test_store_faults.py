"""Kill -9 at every file operation of a model store's writers, and two or
three writers at once.

A child process runs ``sklearn-cf update`` (or ``--rollback``) with
``SKLEARN_CF_PAUSE_AT=K:MARKER``: at the K-th file operation (create, write,
fsync, rename, unlink) it writes MARKER and waits; the test then SIGKILLs it.
For every K the store must load, its current generation must be whole (every
file present with the manifest's digest, the model's months those of the
manifest, the evaluation store holding exactly those months), and re-running
the job must give the same model as a run that was never killed.

Children are forked from a forkserver that imported torch and sklearn_cf
once, so each costs milliseconds rather than an interpreter start.
"""

import hashlib
import json
import multiprocessing
import multiprocessing.forkserver
import os
import shutil
import signal
import sys
import time

import _store_child
import numpy as np
import pytest
from conftest import write_npy_months

import sklearn_cf
from sklearn_cf.cli import main
from sklearn_cf.datasets import make_monthly_drift
from sklearn_cf.store import ModelStore

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and fork")

ROWS = 120
NET = ["--epochs", "2", "--hidden-units", "8", "--holdout", "0.25"]


CTX = multiprocessing.get_context("forkserver")


def _ensure_forkserver():
    """Start the forkserver once, with ``_store_child`` preloaded."""
    CTX.set_forkserver_preload(["_store_child"])
    # The forkserver is a new interpreter, which imports the preloaded
    # modules with its own sys.path (an ImportError there is silent, and
    # every child would then import torch again): give it this folder.
    here = os.path.dirname(os.path.abspath(__file__))
    previous = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [here, previous]))
    try:
        multiprocessing.forkserver.ensure_running()
    finally:
        if previous is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = previous


def _start(argv, cwd, pause=None):
    _ensure_forkserver()
    out = os.path.join(cwd, f"child-{time.monotonic_ns()}.log")
    process = CTX.Process(target=_store_child.run, args=(argv, str(cwd), pause, out))
    process.start()
    return process, out


def _run_until_paused(argv, cwd, k, timeout=120):
    """Run ``argv`` in a child paused at its k-th file operation; kill -9 it
    there. Returns the operation it died before, or None when the job ended
    (with status 0) before reaching k operations."""
    marker = os.path.join(cwd, f"pause-{k}")
    process, out = _start(argv, cwd, f"{k}:{marker}")
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if os.path.exists(marker) and os.path.getsize(marker):
                os.kill(process.pid, signal.SIGKILL)
                process.join()
                with open(marker) as f:
                    return f.read().strip()
            if not process.is_alive():
                process.join()
                with open(out) as f:
                    log = f.read()
                assert process.exitcode == 0, log
                return None
            time.sleep(0.005)
        raise AssertionError(f"the job neither paused nor ended in {timeout} s")
    finally:
        if process.is_alive():
            os.kill(process.pid, signal.SIGKILL)
            process.join()
        for path in (marker, out):
            if os.path.exists(path):
                os.unlink(path)


def _count_operations(argv, cwd):
    counts = os.path.join(cwd, "ops.log")
    process, out = _start(argv, cwd, f"count:{counts}")
    process.join()
    with open(out) as f:
        assert process.exitcode == 0, f.read()
    os.unlink(out)
    with open(counts) as f:
        ops = f.read().splitlines()
    os.unlink(counts)
    return ops


def _months(folder, n_months=3):
    return write_npy_months(folder, n_months, ROWS, random_state=0)[0]


def _sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _check_whole(model):
    """The current generation is whole; returns its id."""
    store = ModelStore(model)
    gen = store.generation()
    for name, digest in gen.sha256.items():
        assert _sha256(os.path.join(model, name)) == digest, name
    for name in gen.memory:
        assert os.path.exists(os.path.join(model, name)), name
    clf = store.load()
    assert list(clf.months_seen_) == gen.months
    assert store.eval_store().months == gen.months
    return gen.id


def _leftovers(model):
    """Files under objects/ and memory/ that no kept generation references."""
    store = ModelStore(model)
    needed = {name for gen in store.generations() for name in gen.referenced()}
    found = set()
    for sub in ("objects", "memory"):
        for folder, _, names in os.walk(os.path.join(model, sub)):
            found.update(os.path.relpath(os.path.join(folder, n), model) for n in names)
    return found - needed


def _same_model(a, b, X):
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert list(a.months_seen_) == list(b.months_seen_)
    for (name, p), (_, q) in zip(a.module_.state_dict().items(),
                                 b.module_.state_dict().items()):
        assert bool((p == q).all()), name


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A store of two generations (months 0 and 1), replay with a reservoir
    kept on disk; and the features of every month."""
    folder = tmp_path_factory.mktemp("faults")
    X = _months(folder)
    model = str(folder / "template")
    assert main(["update", "--model", model, "--data", str(folder / "m0"), "--quiet",
                 "--strategy", "replay:memory_size=50", "--memory-on-disk", *NET]) == 0
    assert main(["update", "--model", model, "--data", str(folder / "m1"), "--quiet"]) == 0
    return folder, model, X


def _fresh(template, tmp_path):
    folder, model, X = template
    copy = tmp_path / "M"
    shutil.copytree(model, copy)
    return str(copy)


def _kill_at_every_operation(template, tmp_path, argv_of, expected):
    """Kill the job at each of its operations in turn; check, rerun, compare."""
    folder, _, X = template
    probe = _fresh(template, tmp_path / "probe")
    ops = _count_operations(argv_of(probe), folder)
    assert ops, "the job did no file operation"
    kinds = {line.split()[1] for line in ops}
    assert {"create", "write", "fsync", "rename"} <= kinds, kinds
    seen = []
    for k in range(1, len(ops) + 1):
        work = tmp_path / f"k{k}"
        model = _fresh(template, work)
        before = ModelStore(model).current_id()
        op = _run_until_paused(argv_of(model), folder, k)
        assert op is not None, f"the job ended before operation {k} of {len(ops)}"
        seen.append(op)
        current = _check_whole(model)
        assert current in (before, before + 1), (k, op, current)
        # The next run cleans what the killed one left, and ends where an
        # unbroken run ends.
        assert main(argv_of(model)) == 0, (k, op)
        _check_whole(model)
        assert not _leftovers(model), (k, op, _leftovers(model))
        _same_model(sklearn_cf.load(model), expected, X)
        shutil.rmtree(work)
    return seen


@pytest.mark.slow
def test_kill_during_an_update_leaves_a_whole_generation(template, tmp_path):
    folder, _, X = template
    unbroken = _fresh(template, tmp_path / "unbroken")

    def argv(model):
        return ["update", "--model", model, "--data", str(folder / "m2"), "--quiet",
                "--keep", "2"]

    assert main(argv(unbroken)) == 0
    expected = sklearn_cf.load(unbroken)
    assert len(ModelStore(unbroken).generations()) == 2  # the first was collected
    seen = _kill_at_every_operation(template, tmp_path, argv, expected)
    # It died before the pointer's rename, and after it (in the collection).
    assert any("CURRENT" in op and "rename" in op for op in seen)
    assert any("unlink" in op for op in seen)


@pytest.mark.slow
def test_kill_during_a_rollback_leaves_a_whole_generation(template, tmp_path):
    folder, model, X = template
    expected = ModelStore(model).load(1)

    def argv(model):
        return ["update", "--model", model, "--rollback", "--to", "1", "--keep", "1"]

    _kill_at_every_operation(template, tmp_path, argv, expected)


def test_kill_between_training_and_commit_changes_nothing(template, tmp_path):
    """The first file operation of an update comes after training: killed
    there, the store is byte for byte as it was, and the next writer
    removes the memory files the killed one wrote."""
    folder, _, X = template
    model = _fresh(template, tmp_path)
    pointer = (tmp_path / "M" / "CURRENT").read_bytes()
    before = sklearn_cf.load(model).predict_proba(X)
    op = _run_until_paused(["update", "--model", model, "--data", str(folder / "m2")],
                           folder, 1)
    assert op is not None
    assert (tmp_path / "M" / "CURRENT").read_bytes() == pointer
    np.testing.assert_array_equal(sklearn_cf.load(model).predict_proba(X), before)
    assert main(["history", "--model", model]) == 0
    assert main(["update", "--model", model, "--rollback"]) == 0  # a writer: it cleans
    assert not _leftovers(model)


# ---------------------------------------------------------------------------
# Several writers
# ---------------------------------------------------------------------------
def _csv_months(folder, n):
    X, y, months = make_monthly_drift(n_months=n, n_samples_per_month=ROWS, n_features=4,
                                      random_state=1)
    paths = []
    for k in range(n):
        lines = ["f0,f1,f2,f3,label"]
        lines += [",".join([*(f"{v:.5f}" for v in X[i]), str(y[i])])
                  for i in np.flatnonzero(months == k)]
        path = folder / f"month{k}.csv"
        path.write_text("\n".join(lines) + "\n")
        paths.append(str(path))
    return paths


def _wait_all(processes, timeout=240):
    codes = []
    for process, out in processes:
        process.join(timeout)
        with open(out) as f:
            log = f.read()
        codes.append((process.exitcode, log))
    return codes


@pytest.mark.parametrize("writers", [2, 3])
def test_concurrent_updates_with_wait_all_commit(tmp_path, writers):
    csvs = _csv_months(tmp_path, writers + 1)
    model = str(tmp_path / "M")
    base = ["--target", "label", "--quiet", "--epochs", "1", "--hidden-units", "8"]
    assert main(["update", "--model", model, "--data", csvs[0], "--strategy", "replay",
                 *base]) == 0
    jobs = [_start(["update", "--model", model, "--data", path, "--wait", "200",
                    "--target", "label", "--quiet"], tmp_path) for path in csvs[1:]]
    codes = _wait_all(jobs)
    assert [code for code, _ in codes] == [0] * writers, codes
    store = ModelStore(model)
    gen = store.generation()
    assert gen.id == writers + 1
    assert gen.months == list(range(writers + 1))
    assert store.eval_store().months == gen.months
    # Every month's data went in exactly once (in whatever order they ran).
    digests = [entry["sha256"] for entry in gen.month_data]
    assert len(set(digests)) == writers + 1
    # Each generation was trained on the one before it: a chain, never a fork.
    chain = [g.previous for g in store.generations()]
    assert chain[-writers:] == list(range(1, writers + 1))


@pytest.mark.parametrize("writers", [2, 3])
def test_a_second_writer_without_wait_exits_4_naming_the_holder(tmp_path, writers, capsys):
    csvs = _csv_months(tmp_path, writers + 1)
    model = str(tmp_path / "M")
    assert main(["update", "--model", model, "--data", csvs[0], "--strategy", "replay",
                 "--target", "label", "--quiet", "--epochs", "1", "--hidden-units", "8"]) == 0
    pointer = (tmp_path / "M" / "CURRENT").read_bytes()
    marker = str(tmp_path / "paused")
    holder, out = _start(["update", "--model", model, "--data", csvs[1], "--target",
                          "label", "--quiet"], tmp_path, pause=f"1:{marker}")
    try:
        deadline = time.monotonic() + 120
        while not os.path.exists(marker):  # it holds the lock, past training
            assert holder.is_alive() and time.monotonic() < deadline
            time.sleep(0.01)
        capsys.readouterr()
        for path in csvs[2:writers + 1] or csvs[1:2]:
            started = time.monotonic()
            code = main(["update", "--model", model, "--data", path, "--target", "label",
                         "--quiet"])
            err = capsys.readouterr().err
            assert code == 4, err
            assert f"process {holder.pid}" in err and "LOCK" in err, err
            assert time.monotonic() - started < 30
        code = main(["update", "--model", model, "--data", csvs[-1], "--target", "label",
                     "--quiet", "--wait", "0.5"])
        assert code == 4
        assert "after waiting 0.5 s" in capsys.readouterr().err
        assert (tmp_path / "M" / "CURRENT").read_bytes() == pointer
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.join()
    # The OS released the dead holder's lock: the next writer goes on.
    assert main(["update", "--model", model, "--data", csvs[1], "--target", "label",
                 "--quiet"]) == 0
    assert ModelStore(model).generation().months == [0, 1]
    assert not _leftovers(model)
    manifest = json.loads((tmp_path / "M" / "generations" / "000002.json").read_text())
    assert manifest["previous"] == 1


def _read(path):
    with open(path) as f:
        return f.read()


@pytest.mark.slow
def test_kill_while_a_refusal_is_recorded_leaves_the_store_loadable(template, tmp_path):
    """A refused update writes only its refusal record (atomically): killed
    at any of its file operations, the store is the one it was (the same
    current generation, whole), the record is absent or whole, and the next
    run records the refusal once and leaves no temporary file."""
    folder, _, X = template
    argv_of = (lambda model: ["update", "--model", model, "--data", str(folder / "m2"),
                              "--quiet", "--max-forgetting", "-1",
                              "--forgetting-confidence", "0"])
    probe = _fresh(template, tmp_path / "probe")
    counts = os.path.join(folder, "refusal-ops.log")
    process, out = _start(argv_of(probe), folder, f"count:{counts}")
    process.join()
    assert process.exitcode == 3, _read(out)
    with open(counts) as f:
        ops = f.read().splitlines()
    os.unlink(counts)
    record_ops = [k for k, line in enumerate(ops, 1) if f"{os.sep}refused" in line]
    assert record_ops, ops  # the record's create, write, fsync, rename
    expected = sklearn_cf.load(probe).predict_proba(X)
    for k in record_ops:
        work = tmp_path / f"k{k}"
        model = _fresh(template, work)
        before = ModelStore(model).current_id()
        marker = os.path.join(work, "pause")
        process, out = _start(argv_of(model), folder, f"{k}:{marker}")
        deadline = time.monotonic() + 120
        while not (os.path.exists(marker) and os.path.getsize(marker)):
            assert process.is_alive() and time.monotonic() < deadline, _read(out)
            time.sleep(0.005)
        os.kill(process.pid, signal.SIGKILL)
        process.join()
        assert _check_whole(model) == before
        records = ModelStore(model).refusals()
        assert all("damaged" not in r for r in records) and len(records) <= 1, records
        np.testing.assert_array_equal(sklearn_cf.load(model).predict_proba(X), expected)
        assert main(argv_of(model)) == 3
        assert len(ModelStore(model).refusals()) == 1
        assert not [n for n in os.listdir(os.path.join(model, "refused")) if n.endswith(".tmp")]
        assert not _leftovers(model)
        shutil.rmtree(work)
