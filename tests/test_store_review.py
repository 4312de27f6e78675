"""Review of the model store: a cron job re-run, a folder that is not a
store, two first writers at once, and a reader racing a writer's collection."""

import os
import threading
import time

import numpy as np
import pytest

from sklearn_cf import ContinualClassifier
from sklearn_cf.cli import main
from sklearn_cf.store import ModelStore


def _data():
    X = np.random.default_rng(0).normal(size=(60, 3)).astype(np.float32)
    return X, (X[:, 0] > 0).astype(int)


def _fit(month=None):
    X, y = _data()
    clf = ContinualClassifier(hidden_units=(4,), max_epochs=1, random_state=0).fit(X, y)
    if month is not None:
        for _ in range(month):
            clf.partial_fit_month(X, y)
    return clf


def test_an_import_run_again_without_data_is_a_no_op(tmp_path, capsys):
    """A cron job `update --model M --init-from ckpt.pt` (no --data) run twice:
    the second run recognises the import and does nothing (it crashed with
    an UnboundLocalError)."""
    checkpoint = tmp_path / "model.pt"
    _fit().save(checkpoint)
    model = tmp_path / "m"
    assert main(["update", "--model", str(model), "--init-from", str(checkpoint)]) == 0
    before = sorted(p.name for p in (model / "generations").iterdir())
    assert main(["update", "--model", str(model), "--init-from", str(checkpoint)]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert sorted(p.name for p in (model / "generations").iterdir()) == before


def test_a_folder_that_is_not_a_store_is_refused_and_left_alone(tmp_path):
    """`--model` naming an existing folder of other files: the writer's
    cleanup must not delete files under its objects/ or memory/."""
    folder = tmp_path / "project"
    (folder / "objects").mkdir(parents=True)
    (folder / "memory").mkdir()
    (folder / "objects" / "keep.txt").write_text("mine")
    (folder / "memory" / "keep.npy").write_bytes(b"mine")
    with pytest.raises(ValueError, match="not a model store"):
        with ModelStore(folder).writer():
            pass
    assert (folder / "objects" / "keep.txt").read_text() == "mine"
    assert (folder / "memory" / "keep.npy").read_bytes() == b"mine"
    assert not (folder / "LOCK").exists()


def test_an_empty_existing_folder_is_still_a_new_store(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    with ModelStore(folder).writer() as writer:
        writer.commit(_fit(), kind="import")
    assert ModelStore(folder).load().months_seen_ == [0]


def test_a_second_first_writer_waiting_goes_on_when_the_first_gives_up(tmp_path):
    """Two jobs start a new store at once; the first fails and removes the
    empty store it created: the second, waiting for the lock, creates it
    again and commits (it failed with FileNotFoundError)."""
    model = tmp_path / "m"
    first = ModelStore(model).writer().__enter__()
    outcome = {}

    def second():
        try:
            with ModelStore(model).writer(wait=20) as writer:
                writer.commit(_fit(), kind="import")
            outcome["ok"] = True
        except BaseException as exc:  # noqa: BLE001 - reported below
            outcome["error"] = exc

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.5)
    first.__exit__(RuntimeError, RuntimeError("refused"), None)
    thread.join(30)
    assert outcome == {"ok": True}
    assert ModelStore(model).load().months_seen_ == [0]


def _two_generations(model):
    store = ModelStore(model)
    with store.writer() as writer:
        writer.commit(_fit(), kind="import")
    with store.writer(keep=1) as writer:
        writer.commit(_fit(month=1), kind="update")
    return store


def test_a_reader_that_read_an_old_pointer_loads_the_new_generation(tmp_path, monkeypatch):
    """A reader reads CURRENT (generation 1), then a writer commits
    generation 2 with --keep 1 and removes generation 1's manifest before the
    reader opens it: the reader re-reads CURRENT (documented), rather than
    failing with 'no generation 1'."""
    store = _two_generations(tmp_path / "m")
    real = ModelStore.current_id
    calls = []

    def stale(self):
        calls.append(1)
        return 1 if len(calls) == 1 else real(self)

    monkeypatch.setattr(ModelStore, "current_id", stale)
    assert store.load().months_seen_ == [0, 1]


def test_a_reader_whose_memory_file_was_collected_loads_the_new_generation(
        tmp_path, monkeypatch):
    """The same race when a file of the old generation is removed while it
    loads: a missing memory file raises ValueError (not FileNotFoundError);
    retried too, since the pointer moved."""
    store = ModelStore(tmp_path / "m")
    with store.writer() as writer:
        writer.commit(_fit(), kind="import")
    with store.writer() as writer:
        writer.commit(_fit(month=1), kind="update")
    real_current, real_model = ModelStore.current_id, ModelStore._model_of
    calls = []

    def stale(self):
        calls.append(1)
        return 1 if len(calls) == 1 else real_current(self)

    def model_of(self, gen, device=None):
        if gen.id == 1:
            raise ValueError("The memory file x.npy is missing")
        return real_model(self, gen, device)

    monkeypatch.setattr(ModelStore, "current_id", stale)
    monkeypatch.setattr(ModelStore, "_model_of", model_of)
    assert store.load().months_seen_ == [0, 1]


def test_history_skips_a_manifest_collected_while_it_lists(tmp_path, monkeypatch):
    store = _two_generations(tmp_path / "m")
    with store.writer(keep=2) as writer:
        writer.commit(_fit(month=2), kind="update")
    real = ModelStore._manifest_ids
    # Listed before a writer removed generation 2's manifest.
    monkeypatch.setattr(ModelStore, "_manifest_ids", lambda self: [1, *real(self)])
    assert [g.id for g in store.generations()] == [2, 3]


def test_a_manifest_newer_than_current_is_not_a_generation(tmp_path):
    """A writer killed after writing its manifest but before the pointer's
    rename left a manifest that was never committed: loading it by number
    is refused, as history and rollback already ignore it."""
    import shutil

    X = np.random.default_rng(0).normal(size=(60, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    store = ModelStore(tmp_path / "M")
    with store.writer() as writer:
        writer.commit(ContinualClassifier(max_epochs=1, hidden_units=(4,),
                                          random_state=0).fit(X, y), kind="import")
    manifests = tmp_path / "M" / "generations"
    shutil.copy(manifests / "000001.json", manifests / "000002.json")  # never committed
    with pytest.raises(ValueError, match="no generation 2"):
        store.load(2)
    assert store.load(1).months_seen_ == [0]
