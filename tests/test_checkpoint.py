"""Checkpoints: resume in a new process, refuse code, detect damage."""

import hashlib
import io
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from conftest import FAST, make_stream

import sklearn_cf
from sklearn_cf import ContinualClassifier
from sklearn_cf._checkpoint import _DIGEST_SIZE, _MAGIC, CHECKPOINT_FORMAT


def _first_two_months(strategy, **extra):
    X, y, months = make_stream(n_months=3)
    clf = ContinualClassifier(strategy=strategy, **dict(FAST, dropout=0.1, **extra))
    clf.partial_fit_month(X[months == 0], y[months == 0])
    clf.partial_fit_month(X[months == 1], y[months == 1])
    return clf, (X, y, months)


@pytest.mark.parametrize(
    "strategy, extra",
    [("naive", {}), ("replay+ewc", {}), ("replay", {"memory_size": 40}), ("joint", {}),
     ("ensemble", {}), ("l2", {"finetune_lr": 1e-4})],
)
def test_resume_in_a_new_process_matches_an_uninterrupted_run(tmp_path, strategy, extra):
    clf, (X, y, months) = _first_two_months(strategy, **extra)
    path = tmp_path / "model.pt"
    clf.save(path)
    data = tmp_path / "data.npz"
    np.savez(data, X=X[months == 2], y=y[months == 2], X_all=X)
    out = tmp_path / "proba.npy"
    script = textwrap.dedent(f"""
        import numpy as np, sklearn_cf
        d = np.load({str(data)!r})
        clf = sklearn_cf.load({str(path)!r})
        clf.partial_fit_month(d["X"], d["y"])
        np.save({str(out)!r}, clf.predict_proba(d["X_all"]))
    """)
    subprocess.run([sys.executable, "-c", script], check=True)
    uninterrupted = ContinualClassifier(strategy=strategy, **dict(FAST, dropout=0.1, **extra))
    uninterrupted.fit(X, y, months=months)
    np.testing.assert_array_equal(np.load(out), uninterrupted.predict_proba(X))


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
    blob = path.read_bytes()
    state = torch.load(io.BytesIO(blob[len(_MAGIC) + _DIGEST_SIZE :]), weights_only=True)
    state["format"] = CHECKPOINT_FORMAT + 1
    state["version"] = "9.9.9"
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    path.write_bytes(_MAGIC + hashlib.sha256(payload).digest() + payload)
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
