"""Checkpoints: resume in a new process, refuse code, detect damage, never
lose the previous file."""

import errno
import hashlib
import io
import os
import pickle
import re
import signal
import time
import warnings

import numpy as np
import pytest
import torch
from conftest import FAST, make_stream, resume_in_a_new_process
from sklearn.exceptions import NotFittedError

import sklearn_cf
from sklearn_cf import ContinualClassifier
from sklearn_cf import _atomic
from sklearn_cf._estimator._checkpoint import _DIGEST_SIZE, _MAGIC, CHECKPOINT_FORMAT
from sklearn_cf.strategies import Replay


def _payload(path):
    """The checkpoint's content, as ``torch.load`` reads it."""
    blob = path.read_bytes()
    return torch.load(io.BytesIO(blob[len(_MAGIC) + _DIGEST_SIZE :]), weights_only=True)


def _rewrite(path, state):
    """Write ``state`` as a checkpoint with a valid header: magic, then the
    SHA-256 of the payload, then the payload (the layout save writes)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    path.write_bytes(_MAGIC + hashlib.sha256(payload).digest() + payload)


def _first_two_months(strategy, **extra):
    X, y, months = make_stream(n_months=3)
    clf = ContinualClassifier(strategy=strategy, **dict(FAST, dropout=0.1, **extra))
    clf.partial_fit_month(X[months == 0], y[months == 0])
    clf.partial_fit_month(X[months == 1], y[months == 1])
    return clf, (X, y, months)


@pytest.mark.slow
@pytest.mark.parametrize(
    "strategy, extra",
    [("naive", {}), ("replay+ewc", {}), ("replay", {"memory_size": 40}), ("joint", {}),
     ("ensemble", {}), ("l2", {"finetune_lr": 1e-4}), ("online_ewc", {"strategy__gamma": 0.5}),
     ("lwf", {}), ("replay+lwf", {"memory_size": 40})],
)
def test_resume_in_a_new_process_matches_an_uninterrupted_run(tmp_path, strategy, extra):
    clf, (X, y, months) = _first_two_months(strategy, **extra)
    path = tmp_path / "model.pt"
    clf.save(path)
    resumed = resume_in_a_new_process(path, X[months == 2], y[months == 2], X, tmp_path)
    uninterrupted = ContinualClassifier(strategy=strategy, **dict(FAST, dropout=0.1, **extra))
    uninterrupted.fit(X, y, months=months)
    np.testing.assert_array_equal(resumed, uninterrupted.predict_proba(X))


def test_loaded_model_keeps_its_fitted_state(tmp_path):
    pd = pytest.importorskip("pandas")
    X, y, months = make_stream(n_months=2)
    frame = pd.DataFrame(X, columns=[f"c{i}" for i in range(X.shape[1])])
    periods = pd.period_range("2024-01", periods=2, freq="M")[months]
    clf = ContinualClassifier(**FAST).fit(frame, np.array(["a", "b"])[y], months=periods)
    clf.save(tmp_path / "m.pt")
    loaded = sklearn_cf.load(tmp_path / "m.pt")
    assert loaded.months_seen_ == clf.months_seen_
    assert [c["rows"] for c in loaded.cost_] == [c["rows"] for c in clf.cost_]
    np.testing.assert_array_equal(loaded.classes_, ["a", "b"])
    np.testing.assert_array_equal(loaded.feature_names_in_, frame.columns)
    np.testing.assert_array_equal(loaded.predict(frame), clf.predict(frame))
    np.testing.assert_array_equal(
        loaded.predict_proba_after(X, periods[0]), clf.predict_proba_after(X, periods[0])
    )
    assert loaded.get_params()["hidden_units"] == FAST["hidden_units"]


def test_checkpoint_cannot_run_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    # A well-formed file (right header and checksum) whose payload carries code.
    buffer = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, "payload": Evil()}, buffer)
    payload = buffer.getvalue()
    path = tmp_path / "evil.pt"
    path.write_bytes(_MAGIC + hashlib.sha256(payload).digest() + payload)
    with pytest.raises(ValueError, match="refused for safety"):
        sklearn_cf.load(path)
    assert not (tmp_path / "pwned").exists()


def test_truncated_and_corrupted_files(tmp_path):
    clf, _ = _first_two_months("replay")
    path = tmp_path / "m.pt"
    clf.save(path)
    blob = path.read_bytes()
    (tmp_path / "short.pt").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match="truncated or corrupted"):
        sklearn_cf.load(tmp_path / "short.pt")
    flipped = bytearray(blob)
    middle = len(flipped) // 2
    flipped[middle : middle + 64] = bytes(64)
    (tmp_path / "bad.pt").write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match="checkpoint"):
        sklearn_cf.load(tmp_path / "bad.pt")
    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="checkpoint"):
        sklearn_cf.load(tmp_path / "text.pt")


def test_incompatible_format_names_both_versions(tmp_path):
    clf, _ = _first_two_months("naive")
    path = tmp_path / "m.pt"
    clf.save(path)
    state = _payload(path)
    state["format"] = CHECKPOINT_FORMAT + 1
    state["version"] = "9.9.9"
    _rewrite(path, state)
    with pytest.raises(ValueError, match=r"sklearn_cf 9\.9\.9 in checkpoint format 2"):
        sklearn_cf.load(path)


def test_custom_module_needs_an_estimator_to_load_into(tmp_path):
    X, y, months = make_stream(n_months=2)

    def tanh_net():
        return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))

    clf = ContinualClassifier(module=tanh_net(), **FAST).fit(X, y, months=months)
    clf.save(tmp_path / "m.pt")
    with pytest.raises(ValueError, match="custom module.*pass estimator="):
        sklearn_cf.load(tmp_path / "m.pt")
    loaded = sklearn_cf.load(tmp_path / "m.pt", estimator=ContinualClassifier(module=tanh_net(), **FAST))
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def test_unfitted_cannot_be_saved(tmp_path):
    with pytest.raises(ValueError, match="fitted"):
        ContinualClassifier().save(tmp_path / "m.pt")


def test_pickle_round_trip_is_also_supported():
    clf, (X, _, _) = _first_two_months("replay+ewc")
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))


def test_set_params_between_months_survives_a_checkpoint(tmp_path):
    X, y, months = make_stream(n_months=3)
    live = ContinualClassifier(strategy="replay+l2", **FAST)
    live.partial_fit_month(X[months == 0], y[months == 0])
    live.set_params(reg_lambda=np.float64(50.0), memory_size=None, epoch_size=None)
    live.partial_fit_month(X[months == 1], y[months == 1])
    live.save(tmp_path / "m.pt")  # numpy scalars are stored as plain numbers
    loaded = sklearn_cf.load(tmp_path / "m.pt")
    assert loaded.reg_lambda == 50.0
    live.partial_fit_month(X[months == 2], y[months == 2])
    loaded.partial_fit_month(X[months == 2], y[months == 2])
    np.testing.assert_array_equal(loaded.predict_proba(X), live.predict_proba(X))


# ----------------------------------------------------------------------
# Atomic saves
# ----------------------------------------------------------------------
def _small_model():
    X = np.random.default_rng(0).normal(size=(100, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    clf = ContinualClassifier(max_epochs=1, hidden_units=(8,), batch_size=32, random_state=0)
    return clf.fit(X, y), X, y


class _DiskFillsUp:
    """A file open for writing that takes ``room`` bytes, writes part of the
    next chunk and then raises ``error``, as a disk that fills up does."""

    def __init__(self, file, room, error):
        self._file, self._room, self._error = file, room, error

    def write(self, data):
        data = memoryview(data).cast("B")
        if len(data) > self._room:
            self._file.write(data[: self._room])
            self._room = 0
            raise self._error
        self._room -= len(data)
        return self._file.write(data)

    def __getattr__(self, name):
        return getattr(self._file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self._file.close()


@pytest.mark.parametrize(
    "error",
    [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()],
    ids=["disk-full", "ctrl-c"],
)
def test_a_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch, error):
    clf, X, y = _small_model()
    path = tmp_path / "m.pt"
    clf.save(path)
    previous, expected = path.read_bytes(), clf.predict_proba(X)
    clf.partial_fit_month(X, y)  # a newer state, whose save fails half-way

    def open_on_a_full_disk(file, mode="r", *args, **kwargs):
        opened = open(file, mode, *args, **kwargs)
        return _DiskFillsUp(opened, len(previous) // 2, error) if "w" in mode else opened

    # save writes through _atomic's name ``open`` (the builtin).
    monkeypatch.setattr(_atomic, "open", open_on_a_full_disk, raising=False)
    with pytest.raises(type(error)):
        clf.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == previous
    assert os.listdir(tmp_path) == ["m.pt"]  # no temporary file left behind
    np.testing.assert_array_equal(sklearn_cf.load(path).predict_proba(X), expected)


def _exit_code(pid, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail(f"the child process did not finish in {timeout} s")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork and RLIMIT_FSIZE")
def test_a_save_past_the_file_size_limit_keeps_the_previous_checkpoint(tmp_path):
    resource = pytest.importorskip("resource")
    clf, X, y = _small_model()
    path = tmp_path / "m.pt"
    clf.save(path)
    previous, expected = path.read_bytes(), clf.predict_proba(X)
    clf.partial_fit_month(X, y)
    limit = len(previous) // 2  # the new checkpoint is larger than the old one
    # A forked child (fast: no new interpreter) lowers its own limit; Python
    # ignores SIGXFSZ, so a write past it fails with EFBIG.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads, 3.12+
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
            try:
                clf.save(path)
            except OSError as exc:
                code = 0 if exc.errno == errno.EFBIG else 2
            else:
                code = 3
        finally:
            os._exit(code)
    assert _exit_code(pid) == 0, "the save should have raised OSError(EFBIG)"
    assert path.read_bytes() == previous
    assert os.listdir(tmp_path) == ["m.pt"]
    np.testing.assert_array_equal(sklearn_cf.load(path).predict_proba(X), expected)


def stat_mode(path):
    return os.stat(path).st_mode & 0o777


@pytest.mark.skipif(os.name == "nt", reason="POSIX file modes")
def test_save_gives_the_file_mode_open_would(tmp_path):
    clf, _, _ = _small_model()
    path = tmp_path / "m.pt"
    umask = os.umask(0o027)
    try:
        clf.save(path)
    finally:
        os.umask(umask)
    assert stat_mode(path) == 0o666 & ~0o027  # not mkstemp's 0o600
    os.chmod(path, 0o604)
    clf.save(path)  # like open(path, "wb"): an existing file keeps its mode
    assert stat_mode(path) == 0o604
    assert os.listdir(tmp_path) == ["m.pt"]


@pytest.mark.skipif(os.name == "nt", reason="symlinks")
def test_save_through_a_symlink_replaces_the_file_it_points_to(tmp_path):
    clf, X, _ = _small_model()
    (tmp_path / "real").mkdir()
    real, link = tmp_path / "real" / "m.pt", tmp_path / "m.pt"
    link.symlink_to(real)
    clf.save(link)
    assert link.is_symlink()
    assert os.listdir(tmp_path / "real") == ["m.pt"]
    np.testing.assert_array_equal(sklearn_cf.load(real).predict_proba(X), clf.predict_proba(X))


# ----------------------------------------------------------------------
# Loading into an estimator built with other settings
# ----------------------------------------------------------------------
def _replay_checkpoint(tmp_path):
    clf, data = _first_two_months("replay", memory_size=40)
    clf.save(tmp_path / "m.pt")
    return clf, data, tmp_path / "m.pt"


def _assert_unfitted(estimator, attributes):
    assert set(vars(estimator)) == attributes
    with pytest.raises(NotFittedError):
        estimator.predict(np.zeros((1, 6), dtype=np.float32))


def test_an_estimator_with_another_strategy_is_refused(tmp_path):
    _, _, path = _replay_checkpoint(tmp_path)
    estimator = ContinualClassifier(strategy="naive", **dict(FAST, dropout=0.1))
    attributes = set(vars(estimator))
    expected = (
        f"Cannot load {path} into the estimator passed: the checkpoint was fitted with "
        "strategy='replay', memory_size=40; the estimator passed has strategy='naive', "
        "memory_size=None. Pass an estimator built with the checkpoint's settings, or "
        "estimator=None to rebuild it from the checkpoint."
    )
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        sklearn_cf.load(path, estimator=estimator)
    _assert_unfitted(estimator, attributes)


@pytest.mark.parametrize(
    "change, stored, passed",
    [
        ({"hidden_units": (8,)}, "hidden_units=(16,)", "hidden_units=(8,)"),
        ({"dropout": 0.0}, "dropout=0.1", "dropout=0.0"),
        ({"memory_size": 50, "hidden_units": [16, 4]},
         "memory_size=40, hidden_units=(16,)", "memory_size=50, hidden_units=(16, 4)"),
    ],
)
def test_an_estimator_with_another_network_is_refused(tmp_path, change, stored, passed):
    _, _, path = _replay_checkpoint(tmp_path)
    params = dict(FAST, dropout=0.1, strategy="replay", memory_size=40)
    estimator = ContinualClassifier(**dict(params, **change))
    expected = f"fitted with {stored}; the estimator passed has {passed}."
    with pytest.raises(ValueError, match=re.escape(expected)):
        sklearn_cf.load(path, estimator=estimator)
    # The same settings load (the differences named are the only ones).
    sklearn_cf.load(path, estimator=ContinualClassifier(**params))


def test_an_estimator_with_another_module_is_refused(tmp_path):
    X, y, months = make_stream(n_months=2)
    net = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    ContinualClassifier(module=net, **FAST).fit(X, y, months=months).save(tmp_path / "m.pt")
    with pytest.raises(ValueError, match=re.escape(
        "fitted with module=torch.nn.modules.container.Sequential; the estimator passed "
        "has module=None. Pass an estimator built with the checkpoint's settings (it had "
        "custom module, so estimator=None cannot rebuild it)."
    )):
        sklearn_cf.load(tmp_path / "m.pt", estimator=ContinualClassifier(**FAST))


def test_strategy_objects_are_compared_by_their_settings(tmp_path):
    X, y, months = make_stream(n_months=2)
    clf = ContinualClassifier(strategy=Replay(memory_size=40), **FAST).fit(X, y, months=months)
    clf.save(tmp_path / "m.pt")
    other = ContinualClassifier(strategy=Replay(memory_size=50), **FAST)
    with pytest.raises(ValueError, match=re.escape(
        "fitted with strategy=Replay(rehearsal_ratio=0.5, epoch_size=None, memory_size=40); "
        "the estimator passed has strategy=Replay(rehearsal_ratio=0.5, epoch_size=None, "
        "memory_size=50)."
    )):
        sklearn_cf.load(tmp_path / "m.pt", estimator=other)
    same = ContinualClassifier(strategy=Replay(memory_size=40), **FAST)
    loaded = sklearn_cf.load(tmp_path / "m.pt", estimator=same)
    assert loaded is same
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def test_checkpoints_without_stored_settings_are_compared_by_their_params(tmp_path):
    # Checkpoints written before "config" was stored: strategy, memory_size,
    # hidden_units and dropout are still in "params".
    clf, (X, _, _), path = _replay_checkpoint(tmp_path)
    state = _payload(path)
    del state["config"]
    _rewrite(path, state)
    with pytest.raises(ValueError, match=re.escape(
        "fitted with strategy='replay', hidden_units=(16,); the estimator passed has "
        "strategy='naive', hidden_units=(8,)."
    )):
        sklearn_cf.load(path, estimator=ContinualClassifier(
            strategy="naive", memory_size=40, **dict(FAST, dropout=0.1, hidden_units=(8,))))
    same = ContinualClassifier(strategy="replay", memory_size=40, **dict(FAST, dropout=0.1))
    np.testing.assert_array_equal(
        sklearn_cf.load(path, estimator=same).predict_proba(X), clf.predict_proba(X)
    )


# ----------------------------------------------------------------------
# Edited checkpoints (the digest recomputed, so only the content is wrong)
# ----------------------------------------------------------------------
def _reshape_first(state_dict):
    name = next(iter(state_dict))
    state_dict[name] = torch.zeros(*state_dict[name].shape[:-1], state_dict[name].shape[-1] + 1)


EDITS = {
    "classes deleted": (lambda s: s["fitted"].pop("classes"), "fitted 'classes' is missing"),
    "classes empty": (lambda s: s["fitted"].update(classes=[]), "its list of classes is empty"),
    "module tensor reshaped": (lambda s: _reshape_first(s["module"]),
                               "its weights do not fit the network built for 6 features"),
    "months_seen an int": (lambda s: s["fitted"].update(months_seen=2),
                           "fitted 'months_seen' should be of type list, not int"),
    "strategy removed": (lambda s: s.pop("strategy"), "'strategy' is missing"),
    "n_features_in 0": (lambda s: s["fitted"].update(n_features_in=0), "n_features_in is 0"),
    "n_features_in a string": (lambda s: s["fitted"].update(n_features_in="6"),
                               "'n_features_in' should be of type int, not str"),
    "feature names too few": (lambda s: s["fitted"].update(feature_names_in=["a"]),
                              "feature_names_in is not 6 feature names"),
    "snapshot without states": (lambda s: s["snapshots"][0].pop("states"),
                                "snapshot 0 should be a dict with a 'month'"),
    "snapshot weights reshaped": (lambda s: _reshape_first(s["snapshots"][1]["states"][0]),
                                  "the weights of snapshot 1 do not fit the network"),
    "optimizer emptied": (lambda s: s.update(optimizer={"state": {}, "param_groups": []}),
                          "ValueError: loaded state dict has a different number"),
    "rng state cut": (lambda s: s["fitted"]["rng"].pop("state"), "KeyError: 'state'"),
    "month label unreadable": (lambda s: s["fitted"]["months_seen"].append({"x": 1}),
                               "a stored month label {'x': 1} cannot be decoded"),
    "replay memory removed": (lambda s: s.update(strategy={}), "KeyError: 'memory'"),
    "optimizer class outside the allowlist": (
        lambda s: s["params"].update(optimizer={"class": "os.system"}),
        "its optimizer names the class 'os.system'"),
    "hyperparameter out of range": (lambda s: s["params"].update(max_epochs=0), "max_epochs"),
}
# Edits that pass the layout check and fail while the state is restored.
RESTORE_EDITS = ["module tensor reshaped", "snapshot weights reshaped", "optimizer emptied",
                 "rng state cut", "month label unreadable", "replay memory removed"]


@pytest.fixture(scope="module")
def replay_checkpoint(tmp_path_factory):
    clf, (X, _, _) = _first_two_months("replay", memory_size=40)
    path = tmp_path_factory.mktemp("checkpoint") / "m.pt"
    clf.save(path)
    return path, clf.predict_proba(X), X


def _edited(replay_checkpoint, tmp_path, edit):
    path = tmp_path / "edited.pt"
    state = _payload(replay_checkpoint[0])
    EDITS[edit][0](state)
    _rewrite(path, state)
    return path


@pytest.mark.parametrize("edit", list(EDITS))
def test_an_edited_checkpoint_is_a_clear_value_error(replay_checkpoint, tmp_path, edit):
    path = _edited(replay_checkpoint, tmp_path, edit)
    with pytest.raises(ValueError) as raised:
        sklearn_cf.load(path)
    message = str(raised.value)
    assert message.startswith(f"{path} is not a valid sklearn_cf checkpoint: ")
    assert EDITS[edit][1] in message


@pytest.mark.parametrize("edit", RESTORE_EDITS)
def test_a_failed_load_leaves_the_estimator_passed_unfitted(replay_checkpoint, tmp_path, edit):
    path = _edited(replay_checkpoint, tmp_path, edit)
    estimator = ContinualClassifier(strategy="replay", memory_size=40, **dict(FAST, dropout=0.1))
    attributes = set(vars(estimator))
    with pytest.raises(ValueError, match=re.escape(EDITS[edit][1])):
        sklearn_cf.load(path, estimator=estimator)
    _assert_unfitted(estimator, attributes)
    # ... and still good to load the intact checkpoint into.
    intact, expected, X = replay_checkpoint
    loaded = sklearn_cf.load(intact, estimator=estimator)
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)
