"""Tests of the forgetting-matrix summaries against hand-computed values."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sklearn_cf.metrics import (
    average_accuracy,
    backward_transfer,
    forgetting,
    forward_transfer,
    learning_accuracy,
    next_month_aut,
    summarize,
)

# R[i, j] = score on month j after training through month i.
R3 = np.array(
    [
        [0.9, 0.2, 0.1],
        [0.8, 0.7, 0.3],
        [0.5, 0.6, 0.95],
    ]
)

# Two trained months, two future months.
R24 = np.array(
    [
        [0.8, 0.4, 0.30, 0.20],
        [0.6, 0.9, 0.55, 0.45],
    ]
)

NAN = float("nan")


def _no_warnings(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return func(*args, **kwargs)


# --------------------------------------------------------------------------
# hand-computed values
# --------------------------------------------------------------------------
def test_average_accuracy_square():
    expected = (0.5 + 0.6 + 0.95) / 3
    assert average_accuracy(R3) == pytest.approx(expected)


def test_average_accuracy_ignores_future_columns():
    expected = (0.6 + 0.9) / 2  # columns 2 and 3 were never trained on
    assert average_accuracy(R24) == pytest.approx(expected)


def test_learning_accuracy():
    assert learning_accuracy(R3) == pytest.approx((0.9 + 0.7 + 0.95) / 3)
    assert learning_accuracy(R24) == pytest.approx((0.8 + 0.9) / 2)


def test_backward_transfer_square():
    expected = ((0.5 - 0.9) + (0.6 - 0.7)) / 2
    assert backward_transfer(R3) == pytest.approx(expected)


def test_backward_transfer_rectangular():
    expected = (0.6 - 0.8) / 1
    assert backward_transfer(R24) == pytest.approx(expected)


def test_forward_transfer_vector_baseline():
    b = np.array([0.5, 0.1, 0.2])
    expected = ((0.2 - 0.1) + (0.3 - 0.2)) / 2
    assert forward_transfer(R3, b) == pytest.approx(expected)


def test_forward_transfer_scalar_baseline_is_broadcast():
    expected = ((0.2 - 0.25) + (0.3 - 0.25)) / 2
    assert forward_transfer(R3, 0.25) == pytest.approx(expected)
    assert forward_transfer(R3, np.float32(0.25)) == pytest.approx(expected)
    assert forward_transfer(R3, np.array(0.25)) == pytest.approx(expected)


def test_forward_transfer_rectangular_baseline_lengths():
    # only baseline[1:T] matters; a baseline for all months or for the
    # trained months gives the same answer
    expected = (0.4 - 0.3) / 1
    assert forward_transfer(R24, [0.0, 0.3, 0.9, 0.9]) == pytest.approx(expected)
    assert forward_transfer(R24, [0.0, 0.3]) == pytest.approx(expected)


def test_forgetting_max_and_first_differ():
    # column 0: best earlier score is 0.9 (l=0); final 0.5
    # column 1: best earlier score is 0.7 (l=1); final 0.6
    assert forgetting(R3) == pytest.approx(((0.9 - 0.5) + (0.7 - 0.6)) / 2)
    assert forgetting(R3, reference="max") == pytest.approx(
        ((0.9 - 0.5) + (0.7 - 0.6)) / 2
    )
    # first-minus-last: R[j, j] - R[T-1, j]
    R = np.array(
        [
            [0.6, 0.3, 0.0],
            [0.9, 0.5, 0.0],
            [0.4, 0.45, 0.8],
        ]
    )
    expected_max = ((0.9 - 0.4) + (0.5 - 0.45)) / 2
    expected_first = ((0.6 - 0.4) + (0.5 - 0.45)) / 2
    assert forgetting(R, reference="max") == pytest.approx(expected_max)
    assert forgetting(R, reference="first") == pytest.approx(expected_first)
    assert expected_max != pytest.approx(expected_first)


def test_forgetting_max_includes_steps_before_the_month_was_trained():
    # Chaudhry et al. (2018): max over l in 1..k-1, i.e. also l < j.
    # Month 1 scored 0.9 after training on month 0 only, 0.7 right after
    # training on it, 0.6 at the end.
    R = np.array(
        [
            [0.5, 0.9, 0.1],
            [0.5, 0.7, 0.2],
            [0.5, 0.6, 0.8],
        ]
    )
    expected = ((0.5 - 0.5) + (0.9 - 0.6)) / 2
    assert forgetting(R) == pytest.approx(expected)
    assert forgetting(R, reference="first") == pytest.approx(
        ((0.5 - 0.5) + (0.7 - 0.6)) / 2
    )


def test_forgetting_ignores_future_columns():
    assert forgetting(R24) == pytest.approx(0.8 - 0.6)


def test_forgetting_can_be_negative():
    R = np.array([[0.5, 0.0], [0.7, 0.9]])
    assert forgetting(R) == pytest.approx(0.5 - 0.7)


def test_next_month_aut_square():
    s = [0.2, 0.3]  # R[0, 1], R[1, 2]
    expected = ((s[0] + s[1]) / 2) / 1
    assert next_month_aut(R3) == pytest.approx(expected)


def test_next_month_aut_with_future_months():
    s = [0.4, 0.55]  # R[0, 1], R[1, 2]; R[1, 3] is two months ahead
    expected = (s[0] + s[1]) / 2
    assert next_month_aut(R24) == pytest.approx(expected)
    R = np.array(
        [
            [0.9, 0.6, 0.1, 0.1],
            [0.9, 0.9, 0.2, 0.1],
            [0.9, 0.9, 0.9, 0.7],
        ]
    )
    s = [0.6, 0.2, 0.7]
    expected = ((s[0] + s[1]) / 2 + (s[1] + s[2]) / 2) / 2
    assert next_month_aut(R) == pytest.approx(expected)


def test_next_month_aut_single_point():
    assert next_month_aut([[0.9, 0.35]]) == pytest.approx(0.35)
    assert next_month_aut([[0.9, 0.35, 0.1]]) == pytest.approx(0.35)
    # square 2x2: only R[0, 1]
    assert next_month_aut([[0.9, 0.35], [0.8, 0.7]]) == pytest.approx(0.35)


def test_next_month_aut_needs_a_next_month():
    with pytest.raises(ValueError, match=r"n_months >= 2.*\(1, 1\)"):
        next_month_aut([[0.5]])


# --------------------------------------------------------------------------
# NaN handling
# --------------------------------------------------------------------------
def test_nan_cells_are_skipped():
    R = R3.copy()
    R[2, 0] = NAN  # final score on month 0 undefined
    assert _no_warnings(average_accuracy, R) == pytest.approx((0.6 + 0.95) / 2)
    assert _no_warnings(backward_transfer, R) == pytest.approx(0.6 - 0.7)
    assert _no_warnings(forgetting, R) == pytest.approx(0.7 - 0.6)
    assert _no_warnings(forgetting, R, reference="first") == pytest.approx(0.7 - 0.6)


def test_nan_inside_the_max_is_ignored():
    R = R3.copy()
    R[0, 0] = NAN
    # column 0: max over l of {nan, 0.8} = 0.8; R[0, 0] is nan for "first"
    assert forgetting(R) == pytest.approx(((0.8 - 0.5) + (0.7 - 0.6)) / 2)
    assert forgetting(R, reference="first") == pytest.approx(0.7 - 0.6)
    assert learning_accuracy(R) == pytest.approx((0.7 + 0.95) / 2)


def test_nan_in_baseline_is_skipped():
    assert forward_transfer(R3, [0.0, NAN, 0.2]) == pytest.approx(0.3 - 0.2)


def test_nan_in_aut_series_drops_the_point():
    R = np.array(
        [
            [0.9, 0.6, 0.1, 0.1],
            [0.9, 0.9, NAN, 0.1],
            [0.9, 0.9, 0.9, 0.7],
        ]
    )
    assert next_month_aut(R) == pytest.approx((0.6 + 0.7) / 2)
    R[0, 1] = NAN
    assert next_month_aut(R) == pytest.approx(0.7)


def test_all_nan_selection_gives_nan_without_warning():
    R = np.full((3, 4), NAN)
    for func in (
        average_accuracy,
        backward_transfer,
        forgetting,
        learning_accuracy,
        next_month_aut,
    ):
        assert math.isnan(_no_warnings(func, R)), func.__name__
    assert math.isnan(_no_warnings(forgetting, R, reference="first"))
    assert math.isnan(_no_warnings(forward_transfer, R, 0.5))
    out = _no_warnings(summarize, R, baseline=0.5)
    assert all(math.isnan(v) for v in out.values())


def test_nan_only_in_unused_cells_changes_nothing():
    R = R3.copy()
    R[0, 2] = NAN  # two months ahead of row 0: used by no metric
    assert summarize(R, baseline=0.1) == pytest.approx(summarize(R3, baseline=0.1))


# --------------------------------------------------------------------------
# summarize
# --------------------------------------------------------------------------
def test_summarize_keys_values_and_types():
    out = summarize(R3)
    assert list(out) == [
        "average_accuracy",
        "backward_transfer",
        "forgetting",
        "learning_accuracy",
        "next_month_aut",
    ]
    assert all(type(v) is float for v in out.values())
    assert out["average_accuracy"] == pytest.approx((0.5 + 0.6 + 0.95) / 3)
    assert out["backward_transfer"] == pytest.approx(((0.5 - 0.9) + (0.6 - 0.7)) / 2)
    assert out["forgetting"] == pytest.approx(((0.9 - 0.5) + (0.7 - 0.6)) / 2)
    assert out["learning_accuracy"] == pytest.approx((0.9 + 0.7 + 0.95) / 3)
    assert out["next_month_aut"] == pytest.approx((0.2 + 0.3) / 2)


def test_summarize_with_baseline():
    out = summarize(R3, baseline=[0.5, 0.1, 0.2])
    assert set(out) == {
        "average_accuracy",
        "backward_transfer",
        "forgetting",
        "learning_accuracy",
        "next_month_aut",
        "forward_transfer",
    }
    assert out["forward_transfer"] == pytest.approx(((0.2 - 0.1) + (0.3 - 0.2)) / 2)
    assert type(out["forward_transfer"]) is float


def test_summarize_leaves_out_undefined_quantities():
    assert summarize([[0.7]]) == {"average_accuracy": 0.7, "learning_accuracy": 0.7}
    out = summarize([[0.7, 0.4]], baseline=0.5)
    assert out == {
        "average_accuracy": 0.7,
        "learning_accuracy": 0.7,
        "next_month_aut": 0.4,
    }


def test_summarize_checks_the_baseline():
    with pytest.raises(ValueError, match=r"baseline.*shape \(2,\)"):
        summarize(R3, baseline=[0.1, 0.2])


def test_accepts_lists_and_dataframes():
    pd = pytest.importorskip("pandas")
    assert summarize(R3.tolist()) == pytest.approx(summarize(R3))
    assert summarize(pd.DataFrame(R3)) == pytest.approx(summarize(R3))
    assert average_accuracy(np.array([[1, 0], [0, 1]])) == 0.5  # ints are fine


# --------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "func",
    [
        average_accuracy,
        backward_transfer,
        forgetting,
        learning_accuracy,
        next_month_aut,
        summarize,
        lambda R: forward_transfer(R, 0.5),
    ],
)
@pytest.mark.parametrize(
    "R, match",
    [
        (np.array([0.1, 0.2]), r"2-D.*shape \(2,\)"),
        (np.zeros((2, 2, 2)), r"2-D.*shape \(2, 2, 2\)"),
        (np.zeros((3, 2)), r"n_months >= n_trained.*shape \(3, 2\)"),
        (np.zeros((0, 3)), r"at least one row.*shape \(0, 3\)"),
        (np.array([["a", "b"], ["c", "d"]]), r"numeric.*shape \(2, 2\)"),
        (np.array([[0.1, "x"]], dtype=object), r"numeric.*shape \(1, 2\)"),
    ],
)
def test_invalid_matrices(func, R, match):
    with pytest.raises(ValueError, match=match):
        func(R)


@pytest.mark.parametrize(
    "func",
    [backward_transfer, forgetting, lambda R: forward_transfer(R, 0.5)],
)
def test_single_trained_month_is_undefined(func):
    with pytest.raises(ValueError, match=r"at least two trained months.*\(1, 3\)"):
        func(np.array([[0.5, 0.4, 0.3]]))


@pytest.mark.parametrize("reference", ["min", "last", None, 1])
def test_forgetting_invalid_reference(reference):
    with pytest.raises(ValueError, match="reference must be 'max' or 'first'"):
        forgetting(R3, reference=reference)


@pytest.mark.parametrize(
    "baseline", [[0.1, 0.2, 0.3, 0.4], np.zeros((3, 1)), "high", [[0.1]]]
)
def test_forward_transfer_invalid_baseline(baseline):
    with pytest.raises(ValueError, match="baseline"):
        forward_transfer(R3, baseline)


# --------------------------------------------------------------------------
# properties
# --------------------------------------------------------------------------
scores = st.floats(0.0, 1.0, allow_nan=False)


@st.composite
def forgetting_matrices(draw, min_trained=1, allow_nan=False):
    n_trained = draw(st.integers(min_trained, 6))
    n_months = draw(st.integers(max(n_trained, 1), 8))
    elements = (
        st.one_of(scores, st.just(NAN)) if allow_nan else scores
    )
    return draw(hnp.arrays(float, (n_trained, n_months), elements=elements))


@settings(deadline=None)
@given(
    col=hnp.arrays(float, st.integers(2, 8), elements=scores),
    data=st.data(),
)
def test_constant_columns_have_no_forgetting(col, data):
    n_trained = data.draw(st.integers(2, len(col)))
    R = np.tile(col, (n_trained, 1))
    assert backward_transfer(R) == pytest.approx(0.0, abs=1e-12)
    assert forgetting(R) == pytest.approx(0.0, abs=1e-12)
    assert forgetting(R, reference="first") == pytest.approx(0.0, abs=1e-12)
    assert average_accuracy(R) == pytest.approx(learning_accuracy(R))


@settings(deadline=None)
@given(R=forgetting_matrices(min_trained=2), shift=st.floats(-1.0, 1.0))
def test_shifting_final_row(R, shift):
    shifted = R.copy()
    shifted[-1] += shift
    assert average_accuracy(shifted) == pytest.approx(
        average_accuracy(R) + shift, abs=1e-9
    )
    assert backward_transfer(shifted) == pytest.approx(
        backward_transfer(R) + shift, abs=1e-9
    )
    assert forgetting(shifted, reference="first") == pytest.approx(
        forgetting(R, reference="first") - shift, abs=1e-9
    )


@settings(deadline=None)
@given(R=forgetting_matrices(min_trained=2, allow_nan=True))
def test_bwt_is_minus_first_forgetting(R):
    bwt = backward_transfer(R)
    f = forgetting(R, reference="first")
    if math.isnan(bwt):
        assert math.isnan(f)
    else:
        assert bwt == pytest.approx(-f, abs=1e-12)


@settings(deadline=None)
@given(R=forgetting_matrices(min_trained=2))
def test_max_forgetting_at_least_first_forgetting(R):
    assert forgetting(R, reference="max") >= forgetting(R, reference="first") - 1e-12


@settings(deadline=None)
@given(R=forgetting_matrices())
def test_aut_lies_between_extreme_next_month_scores(R):
    n_trained, n_months = R.shape
    assume(n_months >= 2)
    N = min(n_trained, n_months - 1)
    s = [R[i, i + 1] for i in range(N)]
    aut = next_month_aut(R)
    assert min(s) - 1e-12 <= aut <= max(s) + 1e-12


@settings(deadline=None)
@given(R=forgetting_matrices(), data=st.data())
def test_far_future_columns_are_unused(R, data):
    # Columns j > T are used by no metric (column T, the first future month,
    # is used by next_month_aut through R[T-1, T]).
    n_trained, n_months = R.shape
    assume(n_months >= n_trained + 2)
    changed = R.copy()
    changed[:, n_trained + 1 :] = data.draw(scores)
    assert summarize(changed, baseline=0.3) == pytest.approx(
        summarize(R, baseline=0.3)
    )


@settings(deadline=None)
@given(R=forgetting_matrices(min_trained=2), baseline=scores)
def test_summarize_matches_the_functions(R, baseline):
    out = summarize(R, baseline=baseline)
    assert out == pytest.approx(
        {
            "average_accuracy": average_accuracy(R),
            "backward_transfer": backward_transfer(R),
            "forgetting": forgetting(R),
            "learning_accuracy": learning_accuracy(R),
            "next_month_aut": next_month_aut(R),
            "forward_transfer": forward_transfer(R, baseline),
        }
    )
