"""Behaviour of the permuted / rotated digits stream."""

import numpy as np
import pytest
from sklearn.datasets import load_digits

from sklearn_cf.datasets import load_digits_stream

DIGITS = load_digits()
N = DIGITS.data.shape[0]


def test_shapes_dtypes_and_months():
    X, y, months = load_digits_stream(n_months=4)
    assert X.shape == (4 * N, 64) and X.dtype == np.float32
    assert y.shape == months.shape == (4 * N,)
    assert np.all(np.diff(months) >= 0)
    assert np.bincount(months).tolist() == [N] * 4
    assert X.min() >= 0.0 and X.max() <= 1.0


@pytest.mark.parametrize("kind", ["permuted", "rotated"])
def test_month_zero_is_scaled_digits_and_labels_repeat(kind):
    X, y, months = load_digits_stream(n_months=3, kind=kind)
    np.testing.assert_allclose(X[months == 0], DIGITS.data / 16.0, rtol=0, atol=1e-7)
    for m in range(3):
        np.testing.assert_array_equal(y[months == m], DIGITS.target)


def test_permuted_month_is_a_column_permutation_of_month_zero():
    X, _, months = load_digits_stream(n_months=3, random_state=0)
    base = X[months == 0]
    for m in (1, 2):
        month = X[months == m]
        # Oracle 1: sorted pixel values of every image are unchanged.
        np.testing.assert_array_equal(np.sort(month, axis=1), np.sort(base, axis=1))
        # Oracle 2: recover the permutation column by column and check it.
        perm = np.empty(64, dtype=int)
        for j in range(64):
            matches = np.flatnonzero((base == month[:, [j]]).all(axis=0))
            assert matches.size >= 1
            perm[j] = matches[0]
        np.testing.assert_array_equal(month, base[:, perm])
        # Distinct source columns except for duplicated (e.g. all-zero) ones.
        assert np.unique(perm).size > 55
        assert not np.array_equal(perm, np.arange(64))
    # Different months use different permutations.
    assert not np.array_equal(X[months == 1], X[months == 2])


def test_permutations_depend_on_random_state_only():
    a = load_digits_stream(n_months=3, random_state=1)[0]
    b = load_digits_stream(n_months=3, random_state=1)[0]
    c = load_digits_stream(n_months=3, random_state=2)[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_rotation_with_zero_angle_is_identity():
    X, _, months = load_digits_stream(n_months=3, kind="rotated", max_angle=0.0)
    base = X[months == 0]
    for m in (1, 2):
        np.testing.assert_allclose(X[months == m], base, atol=1e-6)


def test_rotated_months_change_progressively():
    X, _, months = load_digits_stream(n_months=4, kind="rotated", max_angle=90)
    base = X[months == 0]
    dist = [np.abs(X[months == m] - base).mean() for m in range(4)]
    assert dist[0] == 0
    assert dist[1] > 0.01
    assert dist[1] < dist[3]


def test_rotation_by_180_degrees_flips_the_image():
    # Rotating an 8x8 image by 180 degrees about its centre maps pixel
    # (i, j) to (7 - i, 7 - j) exactly.
    X, _, months = load_digits_stream(n_months=2, kind="rotated", max_angle=180)
    base = X[months == 0].reshape(-1, 8, 8)
    np.testing.assert_allclose(
        X[months == 1].reshape(-1, 8, 8), base[:, ::-1, ::-1], atol=1e-5
    )


def test_single_month():
    X, y, months = load_digits_stream(n_months=1, kind="rotated")
    assert X.shape == (N, 64)
    assert months.tolist() == [0] * N


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_months": 0}, "n_months"),
        ({"n_months": 1.5}, "n_months"),
        ({"kind": "shuffled"}, "kind"),
        ({"kind": "rotated", "max_angle": float("inf")}, "max_angle"),
        ({"max_angle": "90"}, "max_angle"),
    ],
)
def test_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_digits_stream(**kwargs)
