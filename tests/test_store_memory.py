"""A model store whose replay memory is on disk (``--memory-on-disk``):
refused updates and rollbacks leave every file as it was, a moved store
loads and trains in its new place, loading writes nothing, and two models
loaded from one generation train in turn without touching each other."""

import hashlib
import os
import shutil

import numpy as np
import pytest
from conftest import write_npy_months

import sklearn_cf
from sklearn_cf.cli import main
from sklearn_cf.store import ModelStore

ROWS = 100
NET = ["--epochs", "2", "--hidden-units", "8", "--holdout", "0.25"]


def _months(folder, n_months=4):
    return write_npy_months(folder, n_months, ROWS, random_state=3)


def _tree(folder):
    """Every file under ``folder`` but the lock file: relative path ->
    (sha256, mtime_ns)."""
    out = {}
    for root, _, names in os.walk(folder):
        for name in names:
            if root == str(folder) and name == "LOCK":
                continue
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            out[os.path.relpath(path, folder)] = (digest, os.stat(path).st_mtime_ns)
    return out


def _memory_files(folder):
    return {k for k in _tree(folder) if k.startswith("memory" + os.sep)}


@pytest.fixture(params=["replay", "replay:memory_size=40"], ids=["all-rows", "reservoir"])
def store(request, tmp_path):
    X, y, months = _months(tmp_path)
    model = tmp_path / "M"
    assert main(["update", "--model", str(model), "--data", str(tmp_path / "m0"), "--quiet",
                 "--strategy", request.param, "--memory-on-disk", *NET]) == 0
    assert main(["update", "--model", str(model), "--data", str(tmp_path / "m1"),
                 "--quiet"]) == 0
    assert _memory_files(model), "the memory is not on disk"
    return tmp_path, model, X, months


def test_a_refused_update_leaves_every_file_as_it_was(store, capsys):
    folder, model, X, months = store
    before = _tree(model)
    predictions = sklearn_cf.load(model).predict_proba(X)
    # Any drop is too much (the point drop alone decides): refused (exit 3)
    # after training month 2 into memory.
    code = main(["update", "--model", str(model), "--data", str(folder / "m2"), "--quiet",
                 "--max-forgetting", "-1", "--forgetting-confidence", "0"])
    assert code == 3, capsys.readouterr().err
    # Every file as it was; the refusal record is the one file added.
    after = _tree(model)
    assert [k for k in after if k not in before] == [
        os.path.join("refused", r["id"] + ".json") for r in ModelStore(model).refusals()]
    assert {k: v for k, v in after.items() if k in before} == before
    np.testing.assert_array_equal(sklearn_cf.load(model).predict_proba(X), predictions)
    # Both kept generations still load, and a rollback works.
    assert ModelStore(model).load(1).months_seen_ == [0]
    assert main(["update", "--model", str(model), "--rollback"]) == 0
    assert sklearn_cf.load(model).months_seen_ == [0]
    assert main(["update", "--model", str(model), "--rollback"]) == 0  # undo it
    np.testing.assert_array_equal(sklearn_cf.load(model).predict_proba(X), predictions)


def test_rollback_then_update_leaves_older_generations_loadable(store):
    folder, model, X, months = store
    first = ModelStore(model).load(1).predict_proba(X)
    assert main(["update", "--model", str(model), "--rollback"]) == 0  # back to month 0
    # Month 1 again from generation 1's memory: new files, nothing rewritten.
    assert main(["update", "--model", str(model), "--data", str(folder / "m1"),
                 "--quiet"]) == 0
    for gen in ModelStore(model).generations():
        assert ModelStore(model).load(gen.id).months_seen_ == gen.months
    np.testing.assert_array_equal(ModelStore(model).load(1).predict_proba(X), first)
    # Same data, same starting generation, same seed: generation 2 again.
    np.testing.assert_array_equal(ModelStore(model).load(4).predict_proba(X),
                                  ModelStore(model).load(2).predict_proba(X))


def test_a_moved_store_loads_and_trains_in_its_new_place(store, tmp_path):
    folder, model, X, months = store
    predictions = sklearn_cf.load(model).predict_proba(X)
    moved = tmp_path / "elsewhere" / "M2"
    moved.parent.mkdir()
    shutil.move(str(model), str(moved))
    assert not model.exists()
    np.testing.assert_array_equal(sklearn_cf.load(moved).predict_proba(X), predictions)
    assert main(["update", "--model", str(moved), "--data", str(folder / "m2"),
                 "--quiet"]) == 0
    clf = sklearn_cf.load(moved)
    assert clf.months_seen_ == [0, 1, 2]
    # Every memory file of the new generation is inside the moved store.
    assert clf.memory_files()
    assert all(path.startswith(str(moved) + os.sep) for path in clf.memory_files())
    assert not model.exists()


def test_loading_writes_nothing_and_works_from_another_folder(store, tmp_path, monkeypatch):
    folder, model, X, months = store
    before = _tree(model)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for _ in range(2):
        sklearn_cf.load(model).predict(X)
        ModelStore(model).eval_store()
    assert main(["history", "--model", str(model)]) == 0
    assert _tree(model) == before
    assert not os.listdir(elsewhere)


def test_two_models_loaded_from_one_generation_train_in_turn(store):
    folder, model, X, months = store
    files = _tree(model)
    a, b = sklearn_cf.load(model), sklearn_cf.load(model)
    Xa, ya = np.load(folder / "m2" / "2" / "X.npy"), np.load(folder / "m2" / "2" / "y.npy")
    Xb, yb = np.load(folder / "m3" / "3" / "X.npy"), np.load(folder / "m3" / "3" / "y.npy")
    a.partial_fit_month(Xa, ya)
    b.partial_fit_month(Xb, yb)
    a.partial_fit_month(Xb, yb)
    # Oracles: fresh loads trained on the same months alone.
    only_a = sklearn_cf.load(model)
    only_a.partial_fit_month(Xa, ya)
    only_a.partial_fit_month(Xb, yb)
    only_b = sklearn_cf.load(model)
    only_b.partial_fit_month(Xb, yb)
    np.testing.assert_array_equal(a.predict_proba(X), only_a.predict_proba(X))
    np.testing.assert_array_equal(b.predict_proba(X), only_b.predict_proba(X))
    assert not set(a.memory_files()) & (set(b.memory_files()) - set(
        ModelStore(model).load().memory_files()))
    # The store's committed files are untouched, and it still loads.
    assert {k: v for k, v in _tree(model).items() if k in files} == files
    assert ModelStore(model).load().months_seen_ == [0, 1]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="switches to an unprivileged user, which needs root")
def test_a_store_that_cannot_be_written_loads_and_predicts(store, tmp_path):
    """As an unprivileged user (root ignores file modes), a store owned by
    root with the usual modes is read-only: it loads, predicts as root's
    load does, and a month trained into it is refused naming the folder."""
    import stat
    import tempfile

    import _store_child
    from test_store_faults import CTX, _ensure_forkserver

    folder, model, X, months = store
    shared = tempfile.mkdtemp(prefix="sklearn_cf_ro_")
    try:
        os.chmod(shared, 0o755)
        copy = os.path.join(shared, "M")
        shutil.copytree(model, copy)
        for root, dirs, names in os.walk(copy):
            for name in dirs:
                os.chmod(os.path.join(root, name), 0o755)
            for name in names:
                os.chmod(os.path.join(root, name), 0o644)
        features = os.path.join(shared, "X.npy")
        np.save(features, X[:50])
        outbox = os.path.join(shared, "out")
        os.mkdir(outbox)
        os.chmod(outbox, 0o777)
        out = os.path.join(outbox, "proba.npy")
        before = _tree(copy)
        _ensure_forkserver()
        child = CTX.Process(target=_store_child.as_user, args=(65534, copy, features, out))
        child.start()
        child.join(120)
        assert child.exitcode == 0, child.exitcode
        np.testing.assert_array_equal(np.load(out), sklearn_cf.load(model).predict_proba(X[:50]))
        assert _tree(copy) == before
        assert not os.stat(copy).st_mode & stat.S_IWOTH
    finally:
        shutil.rmtree(shared, ignore_errors=True)
