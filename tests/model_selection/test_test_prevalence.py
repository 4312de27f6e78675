"""SequentialSplit(test_prevalence=...): TESSERACT's realistic class ratio in testing."""

import numpy as np
import pytest

from sklearn_cf import SequentialSplit


def _stream(counts):
    """Months of (negatives, positives) rows, in order."""
    y, months = [], []
    for m, (neg, pos) in enumerate(counts):
        y += [0] * neg + [1] * pos
        months += [m] * (neg + pos)
    return np.zeros((len(y), 1)), np.array(y), np.array(months)


def test_each_months_test_rows_get_the_prevalence_by_hand():
    # month 0: 50/50; month 1: 20% positives; month 2: 90% positives
    X, y, months = _stream([(100, 100), (160, 40), (20, 180)])
    plain = SequentialSplit(n_splits=1, test_size=0.5, random_state=0)
    tr0, te0 = next(plain.split(X, y, months=months))
    cv = SequentialSplit(n_splits=1, test_size=0.5, random_state=0, test_prevalence=0.1)
    train, test = next(cv.split(X, y, months=months))
    np.testing.assert_array_equal(train, tr0)  # training rows are untouched
    assert set(test) <= set(te0)
    for m in range(3):
        before = te0[months[te0] == m]
        after = test[months[test] == m]
        neg, pos = (y[before] == 0).sum(), (y[before] == 1).sum()
        # every negative kept; positives cut to round(0.1 * neg / 0.9)
        assert (y[after] == 0).sum() == neg
        assert (y[after] == 1).sum() == min(pos, max(1, round(0.1 * neg / 0.9)))
    # a share above the month's own: negatives are cut instead
    cv = SequentialSplit(n_splits=1, test_size=0.5, random_state=0, test_prevalence=0.6)
    _, test = next(cv.split(X, y, months=months))
    first = te0[months[te0] == 1]
    pos = (y[first] == 1).sum()
    kept = test[months[test] == 1]
    assert (y[kept] == 1).sum() == pos
    assert (y[kept] == 0).sum() == round(pos * 0.4 / 0.6)


def test_a_month_lacking_a_class_keeps_its_test_rows():
    X, y, months = _stream([(50, 50), (60, 0)])
    cv = SequentialSplit(n_splits=1, test_size=0.5, random_state=0, test_prevalence=0.2)
    plain = SequentialSplit(n_splits=1, test_size=0.5, random_state=0)
    _, test = next(cv.split(X, y, months=months))
    _, te0 = next(plain.split(X, y, months=months))
    np.testing.assert_array_equal(test[months[test] == 1], te0[months[te0] == 1])


def test_future_months_are_subsampled_too():
    X, y, months = _stream([(50, 50), (50, 50), (40, 60)])
    cv = SequentialSplit(n_splits=1, n_future_months=1, random_state=0, test_prevalence=0.25)
    train, test = next(cv.split(X, y, months=months))
    future = test[months[test] == 2]
    assert (y[future] == 0).sum() == 40 and (y[future] == 1).sum() == round(0.25 * 40 / 0.75)
    assert not np.isin(train, np.flatnonzero(months == 2)).any()


def test_prevalence_errors_and_repr():
    X, y, months = _stream([(10, 10), (10, 10)])
    with pytest.raises(ValueError, match="needs y"):
        next(SequentialSplit(1, test_prevalence=0.1).split(X, None, months=months))
    y3 = y.copy()
    y3[:3] = 2
    with pytest.raises(ValueError, match="binary target"):
        next(SequentialSplit(1, test_prevalence=0.1).split(X, y3, months=months))
    for bad in (0, 1, 1.5, True, "0.1"):
        with pytest.raises(ValueError, match="test_prevalence must be"):
            SequentialSplit(1, test_prevalence=bad).get_n_splits()
    assert repr(SequentialSplit(2, random_state=0, test_prevalence=0.1)) == (
        "SequentialSplit(n_future_months=0, n_splits=2, random_state=0, "
        "test_prevalence=0.1, test_size=0.2)")
