"""Tests of SequentialSplit."""

import math

import numpy as np
import pytest
import sklearn
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import BaseCrossValidator, GridSearchCV, cross_validate

from sklearn_cf.model_selection import SequentialSplit


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def _bounds(share, n):
    """floor and ceil of share * n, robust to float fuzz."""
    return math.floor(share * n + 1e-9), math.ceil(share * n - 1e-9)


def _check_split(train, test, months, y, test_size, n_future_months):
    n = len(months)
    for idx in (train, test):
        assert idx.dtype.kind == "i"
        assert np.all(np.diff(idx) > 0)  # sorted, no duplicates
    assert np.intersect1d(train, test).size == 0
    assert np.array_equal(np.union1d(train, test), np.arange(n))

    labels = sorted(set(months.tolist()))
    future = set(labels[len(labels) - n_future_months :]) if n_future_months else set()
    in_test = np.zeros(n, dtype=bool)
    in_test[test] = True
    for label in labels:
        rows = np.flatnonzero(months == label)
        n_test = in_test[rows].sum()
        if label in future:
            assert n_test == len(rows), f"future month {label} trained on"
            continue
        lo, hi = _bounds(test_size, len(rows))
        assert max(1, lo) <= n_test <= min(len(rows) - 1, hi), (
            label,
            len(rows),
            n_test,
        )
        if y is not None:
            for cls in np.unique(y[rows]):
                cls_rows = rows[y[rows] == cls]
                lo, hi = _bounds(test_size, len(cls_rows))
                assert lo <= in_test[cls_rows].sum() <= hi, (label, cls)


@st.composite
def month_data(draw):
    n_labels = draw(st.integers(2, 6))
    if draw(st.booleans()):
        labels = draw(
            st.lists(
                st.integers(-1000, 1000),
                min_size=n_labels,
                max_size=n_labels,
                unique=True,
            )
        )
    else:
        labels = draw(
            st.lists(
                st.text("abcxyz-0123", min_size=1, max_size=6),
                min_size=n_labels,
                max_size=n_labels,
                unique=True,
            )
        )
    sizes = draw(st.lists(st.integers(2, 40), min_size=n_labels, max_size=n_labels))
    months = np.array([lab for lab, size in zip(labels, sizes) for _ in range(size)])
    perm = np.random.default_rng(draw(st.integers(0, 2**16))).permutation(len(months))
    months = months[perm]
    n_classes = draw(st.sampled_from([None, 2, 3]))
    if n_classes is None:
        y = None
    else:
        y = np.array(
            draw(
                st.lists(
                    st.integers(0, n_classes - 1),
                    min_size=len(months),
                    max_size=len(months),
                )
            )
        )
    test_size = draw(st.floats(0.05, 0.95))
    n_future = draw(st.integers(0, n_labels - 1))
    return months, y, test_size, n_future


def _medium_data(seed=0, n_per_month=50, n_months=4):
    rng = np.random.default_rng(seed)
    months = np.repeat(np.arange(n_months), n_per_month)
    X = rng.normal(size=(len(months), 3))
    y = (X[:, 0] + 0.5 * rng.normal(size=len(months)) > 0).astype(int)
    return X, y, months


def _as_lists(splits):
    return [(tr.tolist(), te.tolist()) for tr, te in splits]


# --------------------------------------------------------------------------
# properties
# --------------------------------------------------------------------------
@settings(deadline=None, max_examples=150)
@given(data=month_data(), n_splits=st.integers(1, 4), seed=st.integers(0, 2**31))
def test_split_properties(data, n_splits, seed):
    months, y, test_size, n_future = data
    X = np.zeros((len(months), 2))
    cv = SequentialSplit(
        n_splits, test_size=test_size, n_future_months=n_future, random_state=seed
    )
    splits = list(cv.split(X, y, months=months))
    assert len(splits) == n_splits == cv.get_n_splits(X, y, months=months)
    for train, test in splits:
        _check_split(train, test, months, y, test_size, n_future)
    # same random_state, same splits
    again = list(cv.split(X, y, months=months))
    assert _as_lists(splits) == _as_lists(again)
    # groups= is the same as months=
    assert _as_lists(splits) == _as_lists(cv.split(X, y, groups=months))


@settings(deadline=None, max_examples=30)
@given(seed=st.integers(0, 2**31), n_splits=st.integers(1, 5))
def test_repetition_k_does_not_depend_on_n_splits(seed, n_splits):
    X, y, months = _medium_data()
    short = SequentialSplit(n_splits, random_state=seed).split(X, y, months=months)
    long = list(SequentialSplit(5, random_state=seed).split(X, y, months=months))
    assert _as_lists(short) == _as_lists(long[:n_splits])


def test_different_random_states_and_repetitions_differ():
    X, y, months = _medium_data()
    a = _as_lists(SequentialSplit(3, random_state=0).split(X, y, months=months))
    b = _as_lists(SequentialSplit(3, random_state=1).split(X, y, months=months))
    assert a != b
    tests = [tuple(te) for _, te in a]
    assert len(set(tests)) == 3  # each repetition its own hold-out


def test_random_state_none_gives_fresh_randomness():
    X, y, months = _medium_data()
    cv = SequentialSplit(2)
    assert _as_lists(cv.split(X, y, months=months)) != _as_lists(
        cv.split(X, y, months=months)
    )


def test_random_state_instance():
    X, y, months = _medium_data()
    cv = SequentialSplit(2, random_state=np.random.RandomState(0))
    first = _as_lists(cv.split(X, y, months=months))
    second = _as_lists(cv.split(X, y, months=months))
    assert first != second  # the instance advances, like in scikit-learn
    cv = SequentialSplit(2, random_state=np.random.RandomState(0))
    assert _as_lists(cv.split(X, y, months=months)) == first


def test_exact_shares_on_divisible_months():
    # 10 rows per month, 5 of each class: test_size=0.2 gives exactly one
    # test row of each class per month.
    months = np.repeat(["2024-01", "2024-02", "2024-03"], 10)
    y = np.tile([0, 1], 15)
    X = np.zeros((30, 1))
    for train, test in SequentialSplit(5, test_size=0.2, random_state=0).split(
        X, y, months=months
    ):
        assert len(test) == 6 and len(train) == 24
        for m in np.unique(months):
            for c in (0, 1):
                assert np.sum((months[test] == m) & (y[test] == c)) == 1


def test_test_share_is_unbiased_on_average():
    # 7 rows per month at test_size=0.3: 2.1 test rows expected; a month gets
    # 2 or 3 test rows, 3 with probability 0.1.
    months = np.repeat([0, 1], 7)
    X = np.zeros((14, 1))
    cv = SequentialSplit(4000, test_size=0.3, random_state=0)
    counts = np.array(
        [np.sum(months[test] == 0) for _, test in cv.split(X, months=months)]
    )
    assert set(counts.tolist()) == {2, 3}
    assert counts.mean() == pytest.approx(2.1, abs=0.03)


def test_each_row_is_tested_at_random():
    # without y every row of a month is equally likely to be a test row
    months = np.repeat([0, 1], 5)
    X = np.zeros((10, 1))
    cv = SequentialSplit(3000, test_size=0.4, random_state=0)
    freq = np.zeros(10)
    for _, test in cv.split(X, months=months):
        freq[test] += 1
    assert np.allclose(freq / 3000, 0.4, atol=0.04)


def test_tiny_months_keep_one_train_and_one_test_row():
    months = np.array([0, 0, 1, 1, 1, 2, 2])
    X = np.zeros((7, 1))
    for test_size in (0.01, 0.5, 0.99):
        cv = SequentialSplit(10, test_size=test_size, random_state=0)
        for train, test in cv.split(X, months=months):
            for m in (0, 1, 2):
                assert np.sum(months[train] == m) >= 1
                assert np.sum(months[test] == m) >= 1


def test_future_months_follow_sorted_order_not_row_order():
    months = np.array([5, 1, 3, 5, 1, 3, 5, 1, 3, 1, 3, 5])
    X = np.zeros((12, 1))
    cv = SequentialSplit(3, test_size=0.25, n_future_months=1, random_state=0)
    for train, test in cv.split(X, months=months):
        assert 5 not in months[train]
        assert np.isin(np.flatnonzero(months == 5), test).all()
        assert set(months[train]) == {1, 3}
    cv = SequentialSplit(3, test_size=0.25, n_future_months=2, random_state=0)
    for train, test in cv.split(X, months=months):
        assert set(months[train]) == {1}


def _month_variants():
    pd = pytest.importorskip("pandas")
    ints = np.repeat([202401, 202402, 202403], 4)
    strings = np.repeat(["2024-01", "2024-02", "2024-03"], 4)
    dt64 = strings.astype("datetime64[M]")
    periods = pd.PeriodIndex(strings, freq="M")
    return {
        "ints": ints,
        "strings": strings,
        "list": strings.tolist(),
        "datetime64": dt64,
        "period_index": periods,
        "period_objects": np.asarray(periods, dtype=object),
        "period_series": pd.Series(periods, index=np.arange(100, 112)),
        "timestamps": pd.Series(pd.to_datetime(strings)),
    }


@pytest.mark.parametrize(
    "kind",
    [
        "strings",
        "list",
        "datetime64",
        "period_index",
        "period_objects",
        "period_series",
        "timestamps",
    ],
)
def test_month_labels_of_the_same_text_give_the_same_splits(kind):
    # Each month is seeded from its label's text: "2024-01", datetime64 of
    # that month, its Period and its first-day Timestamp all read "2024-01".
    variants = _month_variants()
    X = np.zeros((12, 1))
    y = np.tile([0, 1], 6)
    cv = SequentialSplit(3, test_size=0.5, n_future_months=1, random_state=7)
    reference = _as_lists(cv.split(X, y, months=variants["strings"]))
    assert _as_lists(cv.split(X, y, months=variants[kind])) == reference
    for train, _ in reference:
        assert all(i < 8 for i in train)  # the last (future) month is rows 8..11
    # integers 202401.. are other text: a valid split of the same shape
    for train, test in cv.split(X, y, months=variants["ints"]):
        _check_split(train, test, variants["ints"], y, 0.5, 1)


def test_months_take_precedence_over_groups():
    X, y, months = _medium_data()
    cv = SequentialSplit(2, random_state=0)
    other = np.zeros(len(months))
    assert _as_lists(cv.split(X, y, groups=other, months=months)) == _as_lists(
        cv.split(X, y, months=months)
    )


def test_continuous_and_multioutput_targets():
    X, _, months = _medium_data()
    rng = np.random.default_rng(0)
    y_reg = rng.normal(size=len(months))
    cv = SequentialSplit(2, random_state=0)
    for train, test in cv.split(X, y_reg, months=months):
        _check_split(train, test, months, None, 0.2, 0)
    y_multi = rng.integers(0, 2, size=(len(months), 2))
    codes = y_multi[:, 0] * 2 + y_multi[:, 1]
    for train, test in cv.split(X, y_multi, months=months):
        _check_split(train, test, months, codes, 0.2, 0)


def test_is_a_cross_validator_with_plain_repr():
    cv = SequentialSplit(3, test_size=0.1, random_state=2)
    assert isinstance(cv, BaseCrossValidator)
    assert repr(cv) == (
        "SequentialSplit(n_future_months=0, n_splits=3, random_state=2, test_size=0.1)"
    )
    assert cv.get_n_splits() == 3
    assert cv.get_n_splits(None, None, None, months=None) == 3


def test_split_is_lazy_generator():
    import types

    cv = SequentialSplit(test_size=2.0)
    assert isinstance(cv.split(np.zeros((4, 1))), types.GeneratorType)


# --------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------
def _first(cv, *args, **kwargs):
    return next(cv.split(*args, **kwargs))


def test_missing_months_error():
    X = np.zeros((4, 1))
    with pytest.raises(
        ValueError,
        match=r"neither `months` nor `groups`.*enable_metadata_routing=True.*groups=",
    ):
        _first(SequentialSplit(), X)


def test_wrong_length_error():
    X = np.zeros((5, 1))
    with pytest.raises(ValueError, match=r"months has 4 entries but X has 5 rows"):
        _first(SequentialSplit(), X, months=[1, 1, 2, 2])
    with pytest.raises(ValueError, match=r"months has 4 entries but X has 5 rows"):
        _first(SequentialSplit(), X, groups=[1, 1, 2, 2])


def test_months_must_be_1d():
    with pytest.raises(ValueError, match=r"1-D.*shape \(4, 1\)"):
        _first(SequentialSplit(), np.zeros((4, 1)), months=np.zeros((4, 1)))


@pytest.mark.parametrize(
    "months",
    [
        [1.0, 1.0, np.nan, 2.0],
        np.array([1, 1, None, 2], dtype=object),
        np.array(["2024-01", "2024-01", "NaT", "2024-02"], dtype="datetime64[M]"),
        "periods_with_nat",
    ],
)
def test_missing_values_in_months(months):
    if isinstance(months, str):
        pd = pytest.importorskip("pandas")
        months = np.array(
            [pd.Period("2024-01", "M"), pd.NaT]
            + [pd.Period("2024-02", "M")] * 2,
            dtype=object,
        )
        row = 1
    else:
        row = 2
    with pytest.raises(ValueError, match=rf"1 missing value.*row\(s\) \[{row}\]"):
        _first(SequentialSplit(), np.zeros((4, 1)), months=months)


def test_unsortable_months():
    months = np.array([1, "a", 1, "a"], dtype=object)
    with pytest.raises(ValueError, match=r"months cannot be sorted.*int, str"):
        _first(SequentialSplit(), np.zeros((4, 1)), months=months)


def test_single_month_error():
    match = r"at least two distinct months; got 1: \['2024-01'\]"
    with pytest.raises(ValueError, match=match):
        _first(SequentialSplit(), np.zeros((4, 1)), months=["2024-01"] * 4)


def test_month_too_small_error():
    months = ["2024-01", "2024-01", "2024-02", "2024-03", "2024-03"]
    with pytest.raises(
        ValueError, match=r"too small to split: '2024-02' \(1 row\(s\)\).*no test_size"
    ):
        _first(SequentialSplit(), np.zeros((5, 1)), months=months)
    # a one-row month is fine as a future month
    cv = SequentialSplit(n_future_months=1, random_state=0)
    months = ["2024-01", "2024-01", "2024-02", "2024-02", "2024-03"]
    train, test = _first(cv, np.zeros((5, 1)), months=months)
    assert 4 in test


def test_no_training_month_error():
    with pytest.raises(
        ValueError,
        match=r"n_future_months=2 leaves no month to train on"
        r".*only 2 distinct months \[1, 2\].*<= 1",
    ):
        cv = SequentialSplit(n_future_months=2)
        _first(cv, np.zeros((4, 1)), months=[1, 1, 2, 2])


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_splits": 0}, r"n_splits must be an integer >= 1; got n_splits=0"),
        ({"n_splits": 2.5}, r"n_splits=2.5"),
        ({"n_splits": True}, r"n_splits=True"),
        ({"test_size": 0}, r"open interval \(0, 1\).*test_size=0\b"),
        ({"test_size": 1.0}, r"test_size=1.0"),
        ({"test_size": -0.1}, r"test_size=-0.1"),
        ({"test_size": "0.2"}, r"test_size='0.2'"),
        ({"test_size": float("nan")}, r"test_size=nan"),
        ({"n_future_months": -1}, r"n_future_months must be an integer >= 0.*=-1"),
        ({"n_future_months": 1.5}, r"n_future_months=1.5"),
        ({"random_state": -3}, r"random_state=-3"),
        ({"random_state": "seed"}, r"random_state='seed'"),
    ],
)
def test_bad_parameters(params, match):
    cv = SequentialSplit(**params)  # __init__ only stores
    with pytest.raises(ValueError, match=match):
        _first(cv, np.zeros((4, 1)), months=[1, 1, 2, 2])
    if "random_state" not in params:
        with pytest.raises(ValueError, match=match):
            cv.get_n_splits()


def test_y_wrong_length():
    with pytest.raises(ValueError, match=r"y has 3 entries but X has 4 rows"):
        _first(SequentialSplit(), np.zeros((4, 1)), [0, 1, 0], months=[1, 1, 2, 2])


# --------------------------------------------------------------------------
# scikit-learn integration
# --------------------------------------------------------------------------
def test_requests_months_and_groups_by_default():
    routing = SequentialSplit().get_metadata_routing()
    assert routing.split.requests == {"groups": True, "months": True}


def test_cross_validate_without_routing_uses_groups():
    X, y, months = _medium_data()
    cv = SequentialSplit(3, random_state=0)
    result = cross_validate(
        LogisticRegression(), X, y, groups=months, cv=cv, return_indices=True
    )
    assert len(result["test_score"]) == 3
    expected = list(cv.split(X, y, groups=months))
    got = list(zip(result["indices"]["train"], result["indices"]["test"]))
    assert _as_lists(got) == _as_lists(expected)


def test_cross_validate_with_routing_uses_months():
    X, y, months = _medium_data()
    cv = SequentialSplit(3, n_future_months=1, random_state=0)
    with sklearn.config_context(enable_metadata_routing=True):
        result = cross_validate(
            LogisticRegression(),
            X,
            y,
            params={"months": months},
            cv=cv,
            return_indices=True,
        )
    got = list(zip(result["indices"]["train"], result["indices"]["test"]))
    assert _as_lists(got) == _as_lists(cv.split(X, y, months=months))


@pytest.mark.parametrize("key", ["months", "groups"])
def test_grid_search_with_routing(key):
    X, y, months = _medium_data()
    cv = SequentialSplit(3, n_future_months=1, random_state=0)
    with sklearn.config_context(enable_metadata_routing=True):
        search = GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, cv=cv)
        search.fit(X, y, **{key: months})
    assert search.n_splits_ == 3
    # the scores are those of the splits SequentialSplit produces
    for k, (train, test) in enumerate(cv.split(X, y, months=months)):
        model = LogisticRegression(C=search.best_params_["C"]).fit(X[train], y[train])
        assert search.cv_results_[f"split{k}_test_score"][search.best_index_] == (
            pytest.approx(model.score(X[test], y[test]))
        )
    assert not sklearn.get_config()["enable_metadata_routing"]


def test_grid_search_with_routing_but_no_months():
    X, y, _ = _medium_data()
    with sklearn.config_context(enable_metadata_routing=True):
        search = GridSearchCV(LogisticRegression(), {"C": [1.0]}, cv=SequentialSplit())
        with pytest.raises(ValueError, match="neither `months` nor `groups`"):
            search.fit(X, y)


def test_grid_search_without_routing_uses_groups():
    X, y, months = _medium_data()
    search = GridSearchCV(
        LogisticRegression(), {"C": [0.1, 1.0]}, cv=SequentialSplit(2, random_state=0)
    )
    search.fit(X, y, groups=months)
    assert search.n_splits_ == 2


# --------------------------------------------------------------------------
# a month's split depends on that month alone
# --------------------------------------------------------------------------
def _held_out_ids(cv, ids, y, months, month_set):
    """Per repetition: the ids of the held-out rows of the months in
    ``month_set``, and of their training rows."""
    X = np.zeros((len(ids), 1))
    out = []
    for train, test in cv.split(X, y, months=months):
        out.append((sorted(ids[test][np.isin(months[test], month_set)].tolist()),
                    sorted(ids[train][np.isin(months[train], month_set)].tolist())))
    return out


def _grown_stream(seed, binary=False):
    """A 5-month stream, and the same stream with months 3-4 changed only:
    extra rows scattered among the others, labels flipped, a new class."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(20, 60, size=5)
    months = np.repeat(np.arange(5), sizes)
    n_classes = 2 if binary else 3
    y = rng.integers(0, n_classes, size=len(months))
    ids = np.arange(len(months))
    perm = rng.permutation(len(months))  # months interleaved in row order
    months, y, ids = months[perm], y[perm], ids[perm]

    n_extra = 37
    extra_months = rng.integers(3, 5, size=n_extra)
    extra_y = rng.integers(0, n_classes, size=n_extra)
    where = np.sort(rng.integers(0, len(months) + 1, size=n_extra))
    months2 = np.insert(months, where, extra_months)
    y2 = np.insert(y, where, extra_y)
    ids2 = np.insert(ids, where, np.arange(len(ids), len(ids) + n_extra))
    later = months2 >= 3
    y2[later] = (n_classes - 1) - y2[later]  # labels of later months flipped
    if not binary:
        y2[np.flatnonzero(months2 == 3)[:4]] = 9  # a class first seen in month 3
    return (ids, y, months), (ids2, y2, months2)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("prevalence", [None, 0.2])
def test_a_months_held_out_rows_ignore_other_months(seed, prevalence):
    binary = prevalence is not None
    (ids, y, months), (ids2, y2, months2) = _grown_stream(seed, binary)
    for random_state in (0, 11, 2024):
        cv = SequentialSplit(3, test_size=0.25, random_state=random_state,
                             test_prevalence=prevalence)
        before = _held_out_ids(cv, ids, y, months, [0, 1, 2])
        after = _held_out_ids(cv, ids2, y2, months2, [0, 1, 2])
        assert after == before
        # the changed months are split too, each within its own bounds
        if prevalence is None:
            for train, test in cv.split(np.zeros((len(y2), 1)), y2, months=months2):
                _check_split(train, test, months2, y2, 0.25, 0)


def test_a_month_split_alone_is_held_out_as_within_the_stream():
    # A month's rows (with one other month, for the two months split needs)
    # get the same held-out rows as within the whole stream.
    (ids, y, months), _ = _grown_stream(5)
    cv = SequentialSplit(2, test_size=0.3, random_state=3)
    whole = _held_out_ids(cv, ids, y, months, [1])
    rows = np.isin(months, [1, 4])
    alone = _held_out_ids(cv, ids[rows], y[rows], months[rows], [1])
    assert alone == whole


def test_per_month_split_is_still_stratified_by_count():
    # Oracle: per month and class, the held-out count is floor or ceil of
    # test_size times the class's rows (a hand count over the rows).
    (_, y, months), _ = _grown_stream(7)
    cv = SequentialSplit(5, test_size=0.3, random_state=1)
    for train, test in cv.split(np.zeros((len(y), 1)), y, months=months):
        for m in range(5):
            for cls in range(3):
                n_rows = int(np.sum((months == m) & (y == cls)))
                n_test = int(np.sum((months[test] == m) & (y[test] == cls)))
                assert math.floor(0.3 * n_rows) <= n_test <= math.ceil(0.3 * n_rows)
