"""Behaviour of the synthetic malware-like drift stream."""

import numpy as np
import pytest
from sklearn.neural_network import MLPClassifier

from sklearn_cf.datasets import make_monthly_drift


def _small(**kw):
    params = dict(n_months=6, n_samples_per_month=300, n_features=20, random_state=0)
    params.update(kw)
    return make_monthly_drift(**params)


def test_deterministic_for_int_seed():
    a = make_monthly_drift(random_state=3, return_families=True)
    b = make_monthly_drift(random_state=3, return_families=True)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


def test_random_state_instance_is_accepted():
    a = _small(random_state=np.random.RandomState(5))
    b = _small(random_state=np.random.RandomState(5))
    np.testing.assert_array_equal(a[0], b[0])


def test_different_seeds_differ():
    X0, y0, _ = make_monthly_drift(random_state=0)
    X1, y1, _ = make_monthly_drift(random_state=1)
    assert not np.array_equal(X0, X1)
    assert not np.array_equal(y0, y1)


def test_shapes_and_dtypes():
    X, y, months = make_monthly_drift()
    assert X.shape == (12 * 2000, 40)
    assert X.dtype == np.float32
    assert y.shape == months.shape == (12 * 2000,)
    assert np.issubdtype(y.dtype, np.integer)
    assert np.issubdtype(months.dtype, np.integer)
    assert set(np.unique(y).tolist()) == {0, 1}
    assert np.all(np.isfinite(X))


def test_months_sorted_and_complete():
    X, y, months = _small(n_months=7, n_samples_per_month=123)
    assert np.all(np.diff(months) >= 0)
    values, counts = np.unique(months, return_counts=True)
    assert values.tolist() == list(range(7))
    assert counts.tolist() == [123] * 7


def test_binary_then_continuous_columns():
    X, _, _ = make_monthly_drift(n_features=40, random_state=0)
    binary, continuous = X[:, :20], X[:, 20:]
    assert set(np.unique(binary).tolist()) == {0.0, 1.0}
    # Continuous columns take many values, not just 0/1.
    for j in range(continuous.shape[1]):
        assert np.unique(continuous[:, j]).size > 1000


def test_binary_fraction_sets_number_of_binary_columns():
    X, _, _ = make_monthly_drift(
        n_months=2, n_samples_per_month=500, n_features=10, binary_fraction=0.3,
        random_state=0,
    )
    is_binary = [np.isin(X[:, j], [0.0, 1.0]).all() for j in range(10)]
    assert is_binary == [True] * 3 + [False] * 7


def test_malware_share_varies_and_respects_bounds():
    _, y, months = make_monthly_drift(flip_y=0.0, random_state=0)
    shares = np.array([y[months == t].mean() for t in range(12)])
    assert shares.std() > 0.03
    assert np.all(shares >= 0.3 - 1e-3) and np.all(shares <= 0.7 + 1e-3)
    _, y, months = make_monthly_drift(
        malware_share=(0.25, 0.25), flip_y=0.0, random_state=0
    )
    shares = np.array([y[months == t].mean() for t in range(12)])
    np.testing.assert_allclose(shares, 0.25)


def test_families_match_labels_without_label_noise():
    _, y, _, fam = make_monthly_drift(
        n_families=5, flip_y=0.0, return_families=True, random_state=0
    )
    np.testing.assert_array_equal(y == 1, fam >= 0)
    assert fam.min() == -1 and fam.max() <= 4
    assert set(np.unique(fam[fam >= 0]).tolist()) == set(range(5))


def test_label_noise_flips_some_labels():
    _, y, _, fam = make_monthly_drift(flip_y=0.1, return_families=True, random_state=0)
    flipped = np.mean((y == 1) != (fam >= 0))
    assert 0.07 < flipped < 0.13


def _has_comeback(presence):
    """presence[t] bool: present, then absent, then present again."""
    seen = np.flatnonzero(presence)
    return seen.size >= 2 and np.any(np.diff(seen) > 1)


def test_families_appear_fade_and_come_back():
    _, _, months, fam = make_monthly_drift(
        return_prob=1.0, return_families=True, random_state=0
    )
    presence = np.array(
        [[np.any((fam == f) & (months == t)) for t in range(12)] for f in range(8)]
    )
    # Every month has malware, no family lives through the whole year.
    assert presence.any(axis=0).all()
    assert not presence.all(axis=1).any()
    assert any(_has_comeback(p) for p in presence)


def test_no_comeback_without_return_prob():
    _, _, months, fam = make_monthly_drift(
        return_prob=0.0, family_lifetime=1.0, n_families=12, return_families=True,
        random_state=0,
    )
    presence = np.array(
        [[np.any((fam == f) & (months == t)) for t in range(12)] for f in range(12)]
    )
    assert not any(_has_comeback(p) for p in presence)


def test_family_drifts_within_itself():
    X, _, months, fam = make_monthly_drift(
        n_months=6, n_samples_per_month=3000, return_prob=0.0, family_lifetime=6.0,
        n_families=1, family_drift=1.0, flip_y=0.0, return_families=True,
        random_state=0,
    )
    first = X[(fam == 0) & (months == 0)].mean(axis=0)
    last = X[(fam == 0) & (months == 5)].mean(axis=0)
    assert np.abs(last - first).max() > 0.5

    X, _, months, fam = make_monthly_drift(
        n_months=6, n_samples_per_month=3000, return_prob=0.0, family_lifetime=6.0,
        n_families=1, family_drift=0.0, flip_y=0.0, return_families=True,
        random_state=0,
    )
    first = X[(fam == 0) & (months == 0)].mean(axis=0)
    last = X[(fam == 0) & (months == 5)].mean(axis=0)
    assert np.abs(last - first).max() < 0.15


def test_benign_software_adopts_malware_traits():
    X, y, months, fam = make_monthly_drift(
        benign_adoption=1.0, flip_y=0.0, return_families=True, random_state=0
    )
    n_bin = 20
    malware_traits = X[(fam >= 0) & (months <= 3), :n_bin].mean(axis=0)
    benign_first = X[(fam == -1) & (months == 0), :n_bin].mean(axis=0)
    benign_last = X[(fam == -1) & (months == 11), :n_bin].mean(axis=0)
    # Benign files move towards the traits that malware had early on.
    d_first = np.abs(malware_traits - benign_first).sum()
    d_last = np.abs(malware_traits - benign_last).sum()
    assert d_last < 0.8 * d_first

    X, y, months, fam = make_monthly_drift(
        benign_adoption=0.0, flip_y=0.0, return_families=True, random_state=0
    )
    benign_first = X[(fam == -1) & (months == 0), :n_bin].mean(axis=0)
    benign_last = X[(fam == -1) & (months == 11), :n_bin].mean(axis=0)
    assert np.abs(benign_first - benign_last).max() < 0.06


def test_single_month_and_minimal_sizes():
    X, y, months = make_monthly_drift(
        n_months=1, n_samples_per_month=2, n_features=2, random_state=0
    )
    assert X.shape == (2, 2)
    assert months.tolist() == [0, 0]
    assert sorted(y.tolist()) in ([0, 1], [0, 0], [1, 1])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_months": 0}, "n_months"),
        ({"n_months": 2.5}, "n_months"),
        ({"n_months": True}, "n_months"),
        ({"n_samples_per_month": 1}, "n_samples_per_month"),
        ({"n_features": 1}, "n_features"),
        ({"n_families": 0}, "n_families"),
        ({"binary_fraction": 1.5}, "binary_fraction"),
        ({"family_lifetime": 0.5}, "family_lifetime"),
        ({"return_prob": -0.1}, "return_prob"),
        ({"family_drift": -1.0}, "family_drift"),
        ({"family_drift": float("nan")}, "family_drift"),
        ({"separation": 0.0}, "separation"),
        ({"family_similarity": 2.0}, "family_similarity"),
        ({"benign_adoption": 1.1}, "benign_adoption"),
        ({"malware_share": (0.8, 0.2)}, "low <= high"),
        ({"malware_share": 0.5}, "malware_share"),
        ({"malware_share": (0.1, 0.2, 0.3)}, "malware_share"),
        ({"malware_share": (0.1, 1.2)}, "malware_share"),
        ({"noise": 0.0}, "noise"),
        ({"flip_y": 1.0}, "flip_y"),
        ({"flip_y": "a"}, "flip_y"),
    ],
)
def test_parameter_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_monthly_drift(**kwargs)


def test_naive_fine_tuning_forgets_old_months():
    # Small, fast version of the calibration in the docstring: one network
    # fine-tuned month by month on the new month only ("naive") versus one
    # trained on all months at once ("joint"), scored on held-out rows.
    n_months, n_epochs = 6, 10
    X, y, months = make_monthly_drift(
        n_months=n_months, n_samples_per_month=400, benign_adoption=1.0,
        family_similarity=0.3, random_state=0,
    )
    rng = np.random.RandomState(0)
    test = np.zeros(len(y), dtype=bool)
    for t in range(n_months):
        rows = np.flatnonzero(months == t)
        test[rng.choice(rows, rows.size // 5, replace=False)] = True
    train = ~test

    def mlp():
        return MLPClassifier((64, 64), batch_size=64, random_state=0)

    naive = mlp()
    for t in range(n_months):
        month = train & (months == t)
        for _ in range(n_epochs):
            naive.partial_fit(X[month], y[month], classes=[0, 1])
    joint = mlp()
    for _ in range(n_epochs):
        joint.partial_fit(X[train], y[train], classes=[0, 1])

    old = test & (months < n_months - 1)
    newest = test & (months == n_months - 1)
    # Both models know the newest month ...
    assert naive.score(X[newest], y[newest]) > 0.8
    assert joint.score(X[newest], y[newest]) > 0.8
    # ... but only the jointly trained one still knows the old months.
    assert joint.score(X[old], y[old]) > 0.8
    assert naive.score(X[old], y[old]) < joint.score(X[old], y[old]) - 0.1
