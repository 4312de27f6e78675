import numpy as np
import pytest
import torch

# Two cores: keep torch from oversubscribing when pytest runs alongside
# other work, and keep timings of the suite stable.
torch.set_num_threads(2)


def make_stream(n_months=3, n_per_month=120, n_features=6, seed=0, id_column=False):
    """A small stream whose decision boundary rotates from month to month.

    With ``id_column=True`` column 0 holds the row index (exact in float32),
    so a test can tell which rows a network was trained on.
    """
    rng = np.random.default_rng(seed)
    X, y, months = [], [], []
    for m in range(n_months):
        Xm = rng.normal(size=(n_per_month, n_features)).astype(np.float32)
        angle = m * np.pi / 3
        score = np.cos(angle) * Xm[:, 1] + np.sin(angle) * Xm[:, 2]
        X.append(Xm)
        y.append((score > 0).astype(int))
        months.append(np.full(n_per_month, m))
    X, y, months = np.concatenate(X), np.concatenate(y), np.concatenate(months)
    if id_column:
        X[:, 0] = np.arange(len(X), dtype=np.float32)
    return X, y, months


@pytest.fixture
def stream():
    return make_stream()


FAST = dict(hidden_units=(16,), max_epochs=2, batch_size=32, random_state=0)


@pytest.fixture
def fast():
    return dict(FAST)


def fingerprint(clf, X, timings=True):
    """Everything a rejected or rolled-back call must leave exactly as it was:
    predictions, weights, optimizer state, strategy state (memory, anchors,
    Fisher, members), the generator, snapshots, months, cost and history.
    ``timings=False`` leaves out the seconds and threads in ``cost_`` (the
    thread count follows the machine's load with n_threads="auto") and
    ``history``, to compare two runs rather than one model before and after
    a call."""
    memory = getattr(clf.strategy_, "memory", None)
    cost = [dict(c) if timings else {k: v for k, v in c.items()
                                     if k not in ("seconds", "threads")}
            for c in clf.cost_]
    history = list(clf.history) if timings else len(clf.history)
    return {
        "proba": clf.predict_proba(X).tobytes(),
        "months": list(clf.months_seen_),
        "cost": repr(cost),
        "history": repr(history),
        "snapshots": [
            (s.month, [b"".join(t.numpy().tobytes() for t in st.values()) for st in s.states])
            for s in clf.snapshots_
        ],
        "memory": None if memory is None else [
            (X_.numpy().tobytes(), y_.numpy().tobytes()) for X_, y_ in memory.sources()
        ],
        "rng": str(clf.rng_.bit_generator.state),
        "weights": b"".join(t.detach().numpy().tobytes()
                            for t in clf.module_.state_dict().values()),
        "optimizer": _tensor_bytes(clf.optimizer_.state_dict()),
        "strategy": _tensor_bytes(clf.strategy_.state_dict()),
        "strategy_repr": repr(clf.strategy_),
    }


def _tensor_bytes(obj):
    """A byte-exact digest of nested dicts/lists of tensors and plain values
    (a reservoir's buffer only up to its size: the rest is uninitialized)."""
    if isinstance(obj, dict) and obj.get("kind") == "reservoir" and obj.get("X") is not None:
        obj = dict(obj, X=obj["X"][: obj["size"]], y=obj["y"][: obj["size"]])
    if isinstance(obj, dict):
        return [(k, _tensor_bytes(v)) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))]
    if isinstance(obj, (list, tuple)):
        return [_tensor_bytes(v) for v in obj]
    if hasattr(obj, "numpy"):
        return obj.detach().numpy().tobytes()
    return repr(obj)


def resume_in_a_new_process(path, X_month, y_month, X_all, folder):
    """Load the checkpoint at ``path`` in a fresh Python process, train one
    more month on it, and return its probabilities on ``X_all``."""
    import subprocess
    import sys
    import textwrap

    data, out = folder / "resume_data.npz", folder / "resume_proba.npy"
    np.savez(data, X=X_month, y=y_month, X_all=X_all)
    script = textwrap.dedent(f"""
        import numpy as np, sklearn_cf
        d = np.load({str(data)!r})
        clf = sklearn_cf.load({str(path)!r})
        clf.partial_fit_month(d["X"], d["y"])
        np.save({str(out)!r}, clf.predict_proba(d["X_all"]))
    """)
    subprocess.run([sys.executable, "-c", script], check=True)
    return np.load(out)


def write_npy_months(folder, n_months, n_per_month, random_state):
    """``make_monthly_drift`` months as a folder per month, ``folder/m<k>/<k>/``
    holding ``X.npy`` and ``y.npy`` (one ``--data`` folder of ``sklearn-cf
    update`` per month); returns ``(X, y, months)`` of every row."""
    from sklearn_cf.datasets import make_monthly_drift

    X, y, months = make_monthly_drift(n_months=n_months, n_samples_per_month=n_per_month,
                                      n_features=5, random_state=random_state)
    for k in range(n_months):
        month = folder / f"m{k}" / str(k)
        month.mkdir(parents=True)
        np.save(month / "X.npy", X[months == k])
        np.save(month / "y.npy", y[months == k])
    return X, y, months
