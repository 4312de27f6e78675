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
