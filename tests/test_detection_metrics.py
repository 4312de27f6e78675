"""Detection metrics: hand-computed examples, and the snapshot-based builders
checked against loops over ``predict_proba_after`` and sklearn's own metrics."""

import numpy as np
import pytest
import sklearn
from sklearn.metrics import accuracy_score
from sklearn.model_selection import cross_validate

from conftest import make_stream
from sklearn_cf import ContinualClassifier, SequentialSplit
from sklearn_cf.metrics import (
    DETECTION_KEYS,
    area_under_time,
    group_forgetting,
    group_forgetting_matrices,
    make_detection_scorer,
    monthly_detection,
    negative_flip_rate,
    next_month_aut,
    prospective_tpr_at_fpr,
    threshold_at_fpr,
    update_flips,
    worst_group_forgetting,
)

TINY = dict(hidden_units=(8,), max_epochs=1, batch_size=32, random_state=0)


# ---------------------------------------------------------------------------
# threshold_at_fpr and prospective_tpr_at_fpr
# ---------------------------------------------------------------------------
def test_threshold_allows_floor_fpr_times_negatives():
    y = [0] * 10 + [1] * 3
    neg = [0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95]
    scores = neg + [0.9, 0.5, 0.1]
    # 10 negatives: 0.1 -> 1 may be flagged, so the threshold is the second largest
    assert threshold_at_fpr(y, scores, 0.1) == 0.85
    assert threshold_at_fpr(y, scores, 0.25) == 0.75   # floor(2.5) = 2 flagged
    assert threshold_at_fpr(y, scores, 0.05) == 0.95   # none may be flagged
    for fpr in (0.05, 0.1, 0.25, 0.5, 0.99):
        t = threshold_at_fpr(y, scores, fpr)
        assert np.mean(np.array(neg) > t) <= fpr


def test_threshold_with_tied_negatives_stays_under_the_target():
    y = [0, 0, 0, 0, 1]
    scores = [0.7, 0.7, 0.7, 0.1, 0.9]
    t = threshold_at_fpr(y, scores, 0.5)  # 2 of 4 allowed; the 3rd largest is 0.7
    assert t == 0.7
    assert np.mean(np.array(scores[:4]) > t) == 0.0  # ties at t are not flagged


def test_threshold_positive_label_and_errors():
    # string labels: the larger one ("malware") is positive; 1 of the 2 benign
    # rows may be flagged, so the threshold is the second benign score
    y = ["benign", "benign", "malware"]
    assert threshold_at_fpr(y, [0.2, 0.4, 0.9], 0.5) == 0.2
    assert threshold_at_fpr(y, [0.2, 0.4, 0.9], 0.4) == 0.4  # none may be flagged
    # pos_label given: the other label is negative
    assert threshold_at_fpr([1, 1, 0], [0.2, 0.4, 0.1], 0.4, pos_label=0) == 0.4
    with pytest.raises(ValueError, match="every row is positive"):
        threshold_at_fpr([1, 1], [0.2, 0.4], 0.1, pos_label=1)
    with pytest.raises(ValueError, match="pass pos_label"):
        threshold_at_fpr([0, 0], [0.2, 0.4], 0.1)
    with pytest.raises(ValueError, match=r"in \(0, 1\)"):
        threshold_at_fpr([0, 1], [0.2, 0.4], 1.0)
    with pytest.raises(ValueError, match="one score per row"):
        threshold_at_fpr([0, 1], [0.2], 0.1)


def test_prospective_tpr_uses_the_previous_months_threshold():
    y_prev = [0, 0, 0, 0, 0, 1]
    s_prev = [0.1, 0.2, 0.3, 0.4, 0.9, 0.8]
    y_next = [0, 0, 0, 0, 1, 1, 1, 1]
    s_next = [0.1, 0.5, 0.6, 0.2, 0.45, 0.7, 0.3, 0.9]
    rates = prospective_tpr_at_fpr(y_prev, s_prev, y_next, s_next, 0.2)
    # threshold 0.4 (1 of 5 prior negatives may pass); next month:
    # negatives 0.5 and 0.6 pass (2 / 4), positives 0.45, 0.7, 0.9 pass (3 / 4)
    assert rates.threshold == 0.4
    assert rates.fpr == 0.5 and rates.tpr == 0.75
    # not the threshold the new month's own ROC curve would give: there, FPR <= 0.2
    # means none of the 4 negatives, so the threshold would be 0.6
    assert threshold_at_fpr(y_next, s_next, 0.2) == 0.6


def test_prospective_tpr_on_a_month_without_positives_is_nan():
    rates = prospective_tpr_at_fpr([0, 1], [0.1, 0.9], [0, 0], [0.2, 0.05], 0.5, pos_label=1)
    assert np.isnan(rates.tpr) and rates.fpr == 0.5


# ---------------------------------------------------------------------------
# negative_flip_rate
# ---------------------------------------------------------------------------
def test_negative_flip_rate_counts_rows_right_before_and_wrong_after():
    y = np.array([1, 1, 1, 1, 0, 0, 0])
    before = np.array([1, 1, 0, 1, 0, 1, 0])
    after = np.array([1, 0, 1, 0, 0, 0, 1])
    # broke: rows 1, 3 (malware missed) and 6 (benign flagged); row 2 was fixed
    assert negative_flip_rate(y, before, after) == pytest.approx(3 / 7)
    assert negative_flip_rate(y, before, after, pos_label=1) == pytest.approx(2 / 4)
    assert negative_flip_rate(y, before, after, pos_label=0) == pytest.approx(1 / 3)
    assert negative_flip_rate(y, after, after) == 0.0
    assert np.isnan(negative_flip_rate(y, before, after, pos_label=7))
    with pytest.raises(ValueError, match="same rows"):
        negative_flip_rate(y, before[:3], after)
    with pytest.raises(ValueError, match="at least one row"):
        negative_flip_rate([], [], [])


# ---------------------------------------------------------------------------
# group_forgetting, worst_group_forgetting, area_under_time
# ---------------------------------------------------------------------------
def test_group_forgetting_by_hand():
    R_a = [[0.9, 0.2, 0.1],
           [0.8, 0.9, 0.3],
           [0.5, 0.6, 0.9]]
    R_b = [[1.0, 0.8, 0.7],
           [1.0, 0.9, 0.7],
           [0.9, 0.9, 0.9]]
    R_c = [[np.nan, np.nan, 0.5],
           [np.nan, np.nan, 0.6],
           [np.nan, np.nan, 0.7]]   # a family first seen in the last month
    per_group = group_forgetting({"a": R_a, "b": R_b, "c": R_c})
    # a: month 0: max(0.9, 0.8) - 0.5 = 0.4; month 1: max(0.2, 0.9) - 0.6 = 0.3
    assert per_group["a"] == pytest.approx((0.4 + 0.3) / 2)
    # b: month 0: 1.0 - 0.9 = 0.1; month 1: 0.9 - 0.9 = 0
    assert per_group["b"] == pytest.approx(0.05)
    assert np.isnan(per_group["c"])
    group, value = worst_group_forgetting({"a": R_a, "b": R_b, "c": R_c})
    assert group == "a" and value == pytest.approx(0.35)
    assert worst_group_forgetting({"c": R_c}) == (None, pytest.approx(np.nan, nan_ok=True))
    with pytest.raises(ValueError, match="empty"):
        group_forgetting({})


def test_area_under_time_by_hand_and_next_month_aut_uses_it():
    assert area_under_time([0.9, 0.7, 0.5]) == pytest.approx(0.7)
    assert area_under_time([0.8, 0.6, 0.6, 0.4]) == pytest.approx(
        ((0.8 + 0.6) / 2 + (0.6 + 0.6) / 2 + (0.6 + 0.4) / 2) / 3)
    assert area_under_time([0.3]) == 0.3
    assert np.isnan(area_under_time([np.nan]))
    R = np.array([[0.9, 0.8, 0.1], [0.5, 0.9, 0.6], [0.6, 0.7, 0.9]])
    assert next_month_aut(R) == area_under_time([0.8, 0.6])


# ---------------------------------------------------------------------------
# On a fitted model's snapshots
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fitted():
    X, y, months = make_stream(n_months=4, n_per_month=100, n_features=6, seed=2)
    rng = np.random.default_rng(0)
    groups = rng.choice(["a", "b", "c"], size=len(y))
    train, test = next(SequentialSplit(n_splits=1, test_size=0.4, random_state=0)
                       .split(X, y, months=months))
    clf = ContinualClassifier(strategy="naive", **TINY).fit(X[train], y[train],
                                                            months=months[train])
    return clf, X[test], y[test], months[test], groups[test]


def _proba(clf, X, month):
    return clf.predict_proba_after(X, month)


def test_monthly_detection_against_a_loop(fitted):
    clf, X, y, months, _ = fitted
    det = monthly_detection(clf, X, y, months, target_fpr=0.1)
    assert det.months == [1, 2, 3] and det.calibrated_on == [0, 1, 2]
    for k, month in enumerate(det.months):
        prev, now = months == month - 1, months == month
        s_prev = _proba(clf, X[prev], month - 1)[:, 1]
        s_now = _proba(clf, X[now], month - 1)[:, 1]
        negatives = np.sort(s_prev[y[prev] == 0])[::-1]
        t = negatives[int(np.floor(0.1 * len(negatives)))]
        assert det.threshold[k] == pytest.approx(t)
        assert det.tpr[k] == pytest.approx(np.mean(s_now[y[now] == 1] > t))
        assert det.fpr[k] == pytest.approx(np.mean(s_now[y[now] == 0] > t))
    summary = det.summary()
    assert summary["prospective_tpr"] == pytest.approx(det.tpr.mean())
    assert summary["max_realised_fpr"] == pytest.approx(det.fpr.max())
    assert det.months_over_target() == [m for m, f in zip(det.months, det.fpr) if f > 0.1]


def test_monthly_detection_needs_a_binary_model():
    X, y, months = make_stream(n_months=2, n_per_month=60)
    y = y + (X[:, 3] > 1)  # three classes
    clf = ContinualClassifier(**TINY).fit(X, y, months=months)
    with pytest.raises(ValueError, match="binary"):
        monthly_detection(clf, X, y, months, 0.1)


def test_update_flips_against_a_loop(fitted):
    clf, X, y, months, _ = fitted
    flips = update_flips(clf, X, y, months)
    assert flips.updates == [(0, 1), (1, 2), (2, 3)]
    for i, (before, after) in enumerate(flips.updates):
        seen = months <= after
        pred_b = clf.classes_[_proba(clf, X[seen], before).argmax(1)]
        pred_a = clf.classes_[_proba(clf, X[seen], after).argmax(1)]
        broke = (pred_b == y[seen]) & (pred_a != y[seen])
        assert flips.n_flips[i] == broke.sum() and flips.n_rows[i] == seen.sum()
        assert flips.rate[i] == pytest.approx(broke.mean())
    malware = update_flips(clf, X, y, months, pos_label=1)
    assert malware.n_rows.tolist() == [int(((months <= a) & (y == 1)).sum())
                                       for _, a in flips.updates]
    assert flips.mean() == pytest.approx(flips.rate.mean())


def test_group_forgetting_matrices_against_sklearn_accuracy(fitted):
    clf, X, y, months, groups = fitted
    matrices = group_forgetting_matrices(clf, X, y, months, groups)
    assert sorted(matrices) == ["a", "b", "c"]
    for g, fm in matrices.items():
        assert fm.R.shape == (4, 4) and fm.scoring == "accuracy"
        for i in range(4):
            for j in range(4):
                rows = (groups == g) & (months == j)
                expected = accuracy_score(y[rows], clf.classes_[_proba(clf, X[rows], i)
                                                                .argmax(1)])
                assert fm.R[i, j] == pytest.approx(expected)
    with pytest.raises(ValueError, match="one label per row"):
        group_forgetting_matrices(clf, X, y, months, groups[:-1])


def test_detection_scorer_in_cross_validate_matches_the_functions():
    X, y, months = make_stream(n_months=3, n_per_month=80, n_features=6, seed=4)
    groups = np.where(np.arange(len(y)) % 2, "x", "y")
    cv = SequentialSplit(n_splits=1, test_size=0.3, random_state=0)
    with sklearn.config_context(enable_metadata_routing=True):
        est = ContinualClassifier(**TINY).set_fit_request(months=True)
        scores = cross_validate(est, X, y, cv=cv, params={"months": months, "groups": groups},
                                scoring=make_detection_scorer(0.1), return_estimator=True)
    assert sorted(k[5:] for k in scores if k.startswith("test_")) == sorted(DETECTION_KEYS)
    train, test = next(cv.split(X, y, months=months))
    clf = scores["estimator"][0]
    det = monthly_detection(clf, X[test], y[test], months[test], 0.1).summary()
    assert scores["test_prospective_tpr"][0] == pytest.approx(det["prospective_tpr"])
    assert scores["test_neg_realised_fpr"][0] == pytest.approx(-det["realised_fpr"])
    flips = update_flips(clf, X[test], y[test], months[test]).mean()
    assert scores["test_neg_flip_rate"][0] == pytest.approx(-flips)
    worst = worst_group_forgetting(
        group_forgetting_matrices(clf, X[test], y[test], months[test], groups[test]))[1]
    assert scores["test_neg_worst_group_forgetting"][0] == pytest.approx(-worst)


def test_detection_scorer_without_months_names_the_fix(fitted):
    clf, X, y, _, _ = fitted
    with pytest.raises(ValueError, match="enable_metadata_routing"):
        make_detection_scorer()(clf, X, y)
    with pytest.raises(ValueError, match=r"in \(0, 1\)"):
        make_detection_scorer(0)
