"""Undefined is NaN: a score undefined on a month is NaN, never 0, and every
summary leaves it out of its means and says how many cells it left out.

Oracles: scikit-learn's own metric functions called with
``zero_division=np.nan``, the live model's predictions after each month, and
matrices and means computed by hand.
"""

import warnings

import numpy as np
import pytest
from conftest import make_stream
from sklearn.dummy import DummyClassifier
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import (
    average_precision_score,
    f1_score,
    get_scorer,
    jaccard_score,
    precision_score,
    recall_score,
)

from sklearn_cf import (
    ContinualClassifier,
    SequentialSplit,
    forgetting_matrix,
    make_forgetting_scorer,
    tpr_at_fpr,
)
from sklearn_cf.compare import compare_strategies, resolve_scoring
from sklearn_cf.metrics import (
    ForgettingMatrix,
    MonthlyDetection,
    UpdateFlips,
    area_under_time,
    next_month_aut,
    summarize,
    undefined_as_nan,
    undefined_note,
)

METRICS = {"precision": precision_score, "recall": recall_score, "f1": f1_score,
           "jaccard": jaccard_score}


# ---------------------------------------------------------------------------
# the scorers, against sklearn's metrics with zero_division=np.nan
# ---------------------------------------------------------------------------
def _oracle(metric, y_true, y_pred, **kwargs):
    """sklearn's metric with zero_division=np.nan; Jaccard (which offers 0 or
    1 only) by hand: TP / (TP + FP + FN), NaN when that is 0 / 0."""
    if metric != "jaccard":
        return METRICS[metric](y_true, y_pred, zero_division=np.nan, **kwargs)
    tp = np.sum((y_true == 1) & (y_pred == 1))
    wrong = np.sum(y_true != y_pred)
    return tp / (tp + wrong) if tp + wrong else np.nan


def _constant(label, classes=(0, 1)):
    X = np.zeros((len(classes), 1))
    return DummyClassifier(strategy="constant", constant=label).fit(X, list(classes))


@pytest.mark.parametrize("metric", sorted(METRICS))
@pytest.mark.parametrize("y, answer", [
    ([0, 0, 0, 0], 0),   # no positive row, none predicted: all four undefined
    ([0, 0, 0, 0], 1),   # no positive row, all flagged: recall undefined, others 0
    ([1, 1, 0, 0], 0),   # positives all missed: precision undefined, others 0
    ([1, 1, 0, 0], 1),   # defined everywhere
])
def test_binary_scorers_are_nan_where_sklearn_says_undefined(metric, y, answer):
    y, X = np.array(y), np.zeros((4, 1))
    model = _constant(answer)
    expected = _oracle(metric, y, np.full(4, answer))
    ours = resolve_scoring(metric)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # UndefinedMetricWarning included
        got = ours(model, X, y)
    np.testing.assert_equal(got, expected)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        sklearn_default = get_scorer(metric)(model, X, y)
    if np.isnan(expected):
        assert sklearn_default == 0.0  # what the package counted before
    else:
        assert got == sklearn_default  # a defined score is unchanged


@pytest.mark.parametrize("name", [f"{m}_{a}" for m in sorted(METRICS)
                                  for a in ("macro", "micro", "weighted")])
def test_averaged_scorers_leave_undefined_classes_out(name):
    metric, _, average = name.partition("_")
    # classes 1 and 2 are present but never predicted: their precision is
    # undefined (sklearn's default counts it as 0)
    y = np.array([0, 0, 1, 1, 0, 2])
    model = _constant(0, classes=(0, 1, 2))
    X = np.zeros((len(y), 1))
    if metric == "jaccard":  # defined over the labels present: sklearn's, no warning
        expected = jaccard_score(y, np.zeros(len(y), int), average=average)
    else:
        expected = METRICS[metric](y, np.zeros(len(y), int), average=average,
                                   zero_division=np.nan)
    scorer = undefined_as_nan(name)
    scorer = get_scorer(scorer) if isinstance(scorer, str) else scorer
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        np.testing.assert_equal(scorer(model, X, y), expected)
    if name == "precision_macro":
        assert expected == 0.5  # class 0: 3 right of 6 predicted; classes 1, 2 left out


def test_samples_average_on_multilabel_rows():
    from sklearn.multioutput import MultiOutputClassifier

    X = np.zeros((3, 1))
    model = MultiOutputClassifier(DummyClassifier(strategy="constant", constant=0)).fit(
        X, np.array([[0, 0], [1, 1], [1, 0]]))
    for Y in (np.zeros((3, 2), int), np.array([[0, 0], [0, 0], [1, 0]])):
        expected = f1_score(Y, model.predict(X), average="samples", zero_division=np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            np.testing.assert_equal(undefined_as_nan("f1_samples")(model, X, Y), expected)
    assert expected == 0.0  # two undefined samples left out, the third scores 0


def test_other_names_and_callables_are_left_alone():
    assert resolve_scoring("accuracy") == ("accuracy", "accuracy")
    assert resolve_scoring("roc_auc") == ("roc_auc", "roc_auc")
    mine = get_scorer("f1")
    assert undefined_as_nan(mine) is mine and resolve_scoring(mine)[0] is mine
    assert resolve_scoring("f1_macro")[1] == "f1_macro"
    assert undefined_as_nan("f1_weighted").name == "f1_weighted"
    assert undefined_as_nan("f1_unknown") == "f1_unknown"  # not a sklearn name


def test_average_precision_and_tpr_at_fpr_are_nan_on_one_class():
    X = np.arange(8.0).reshape(-1, 1)
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(X, (X[:, 0] > 3).astype(int))
    ap = resolve_scoring("average_precision")[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        for rows in (slice(0, 4), slice(4, 8)):  # negatives only, positives only
            assert np.isnan(ap(model, X[rows], (X[rows, 0] > 3).astype(int)))
            assert np.isnan(tpr_at_fpr(0.1)(model, X[rows], (X[rows, 0] > 3).astype(int)))
    y = np.array([0, 1, 0, 0, 1, 1, 0, 1])
    assert ap(model, X, y) == pytest.approx(
        average_precision_score(y, model.predict_proba(X)[:, 1]))
    with pytest.raises(ValueError, match="3 classes"):
        tpr_at_fpr(0.1)(model, X, np.arange(8) % 3)


# ---------------------------------------------------------------------------
# forgetting_matrix and the scorer, against the live model month by month
# ---------------------------------------------------------------------------
def _stream_with_a_month_of_negatives():
    """Three months; month 2's held-out rows are all negatives far from the
    boundary (x0 = -4), so a model that learnt the boundary flags none."""
    rng = np.random.default_rng(0)
    X, y, months = [], [], []
    for m in range(3):
        labels = np.tile([0, 1], 40)
        rows = rng.normal(scale=0.5, size=(80, 2)).astype(np.float32)
        rows[:, 0] += np.where(labels == 1, 4.0, -4.0)
        X.append(rows), y.append(labels), months.append(np.full(80, m))
    X, y, months = map(np.concatenate, (X, y, months))
    train = np.arange(len(y)) % 5 != 0  # every fifth row held out: both labels
    test = ~train & ~((months == 2) & (y == 1))  # month 2 held out: negatives only
    return X, y, months, np.flatnonzero(train), np.flatnonzero(test)


@pytest.fixture(scope="module")
def live():
    """A classifier trained month by month, and its predictions on every
    month's held-out rows after each month (the oracle)."""
    X, y, months, train, test = _stream_with_a_month_of_negatives()
    clf = ContinualClassifier(strategy="naive", hidden_units=(8,), max_epochs=5, lr=1e-2,
                              batch_size=16, random_state=0)
    predictions = []
    for i in range(3):
        rows = train[months[train] == i]
        clf.partial_fit_month(X[rows], y[rows])
        predictions.append([clf.predict(X[test[months[test] == j]]) for j in range(3)])
    return clf, X[test], y[test], months[test], predictions


@pytest.mark.parametrize("metric", ["f1", "recall", "precision", "jaccard"])
def test_forgetting_matrix_is_nan_on_a_month_without_positives(live, metric):
    clf, X, y, months, predictions = live
    expected = np.array([[_oracle(metric, y[months == j], predictions[i][j])
                          for j in range(3)] for i in range(3)])
    # the construction: month 2 has no positive row and the model flags none
    assert not np.any(y[months == 2]) and not any(p[2].any() for p in predictions)
    assert np.isnan(expected[:, 2]).all() and np.isfinite(expected[:, :2]).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        fm = forgetting_matrix(clf, X, y, months, scoring=metric)
    np.testing.assert_allclose(fm.R, expected)  # NaN where expected is NaN
    assert fm.scoring == metric
    assert (fm.n_undefined, fm.n_scored) == (3, 9)
    assert fm.summary()["n_undefined"] == 3
    assert fm.undefined_note().startswith(f"3 of 9 cells undefined ({metric} on months ")
    # the summaries: NaN-aware means computed by hand over months 0 and 1
    s = fm.summary()
    assert s["average_accuracy"] == pytest.approx((expected[2, 0] + expected[2, 1]) / 2)
    assert s["learning_accuracy"] == pytest.approx((expected[0, 0] + expected[1, 1]) / 2)
    assert s["backward_transfer"] == pytest.approx(
        ((expected[2, 0] - expected[0, 0]) + (expected[2, 1] - expected[1, 1])) / 2)
    # next-month series R[0, 1], R[1, 2]: the second undefined, AUT = R[0, 1]
    assert s["next_month_aut"] == pytest.approx(expected[0, 1])


def test_forgetting_scorer_carries_the_nan_cells(live):
    clf, X, y, months, predictions = live
    scorer = make_forgetting_scorer(scoring="recall", include_matrix=True)
    scores = scorer(clf, X, y, months=months)
    expected = np.array([[recall_score(y[months == j], predictions[i][j],
                                       zero_division=np.nan) for j in range(3)]
                         for i in range(3)])
    for i in range(3):
        for j in range(3):
            np.testing.assert_equal(scores[f"R_{i}_{j}"], expected[i, j])
    assert scores["average_accuracy"] == pytest.approx(np.nanmean(expected[2]))
    assert scores["neg_forgetting"] == pytest.approx(
        -np.mean([max(expected[0, j], expected[1, j]) - expected[2, j] for j in range(2)]))


def test_a_month_without_rows_is_not_counted_as_undefined(live):
    clf, X, y, months, _ = live
    keep = months != 1
    fm = forgetting_matrix(clf, X[keep], y[keep], months[keep], scoring="recall")
    assert fm.n_rows.tolist() == [int((months == 0).sum()), 0, int((months == 2).sum())]
    # month 1: no rows, nothing scored; month 2: scored, undefined
    assert np.isnan(fm.R[:, 1]).all() and np.isnan(fm.R[:, 2]).all()
    assert (fm.n_undefined, fm.n_scored) == (3, 6)


# ---------------------------------------------------------------------------
# summaries, against hand-computed NaN-aware means and counts
# ---------------------------------------------------------------------------
def test_summaries_of_a_hand_matrix_with_an_undefined_month():
    nan = np.nan
    R = [[0.8, nan, 0.5, 0.3],
         [0.6, nan, 0.7, 0.2],
         [0.4, nan, 0.9, 0.6]]
    fm = ForgettingMatrix(R, [0, 1, 2], [0, 1, 2, 3], "f1")
    s = fm.summary()
    assert s["average_accuracy"] == pytest.approx((0.4 + 0.9) / 2)
    assert s["learning_accuracy"] == pytest.approx((0.8 + 0.9) / 2)
    assert s["backward_transfer"] == pytest.approx(0.4 - 0.8)  # month 1 left out
    assert s["forgetting"] == pytest.approx(max(0.8, 0.6) - 0.4)
    # next-month series R[0,1], R[1,2], R[2,3] = nan, 0.7, 0.6: AUT of (0.7, 0.6)
    assert s["next_month_aut"] == pytest.approx((0.7 + 0.6) / 2)
    assert s["n_undefined"] == fm.n_undefined == 3 and fm.n_scored == 12
    assert fm.undefined_note() == (
        "3 of 12 cells undefined (f1 on months with no positive row and none predicted "
        "positive), left out of the means")
    assert {k: v for k, v in s.items() if k != "n_undefined"} == summarize(R)


def test_a_wholly_undefined_summary_is_nan_not_zero():
    fm = ForgettingMatrix([[np.nan, np.nan], [np.nan, np.nan]], [0, 1], [0, 1], "recall")
    s = fm.summary()
    for key in ("average_accuracy", "learning_accuracy", "backward_transfer",
                "forgetting", "next_month_aut"):
        assert np.isnan(s[key]), key
    assert s["n_undefined"] == 4
    assert ForgettingMatrix([[0.5]], [0], [0], "f1").undefined_note() is None


def test_area_under_time_over_the_defined_months():
    # months 1 and 3 undefined: the trapezoid over 0.8, 0.6, 0.4
    assert area_under_time([0.8, np.nan, 0.6, np.nan, 0.4]) == pytest.approx(
        ((0.8 + 0.6) / 2 + (0.6 + 0.4) / 2) / 2)
    # counted as 0, the old behaviour, it would be much lower
    assert area_under_time([0.8, 0.0, 0.6, 0.0, 0.4]) < 0.4
    assert np.isnan(area_under_time([np.nan, np.nan]))
    R = [[0.9, np.nan, 0.1], [0.9, 0.9, 0.5], [0.9, 0.9, 0.9]]
    assert next_month_aut(R) == pytest.approx(0.5)  # R[0,1] undefined, R[1,2] = 0.5


def test_n_rows_must_match_the_months():
    with pytest.raises(ValueError, match="one row count per month"):
        ForgettingMatrix([[0.5, 0.5]], [0], [0, 1], "f1", n_rows=[3])


def test_undefined_note_wording():
    assert undefined_note(1, 1, "recall") == (
        "1 of 1 cell undefined (recall on months with no positive row), left out of the means")
    assert "roc_auc on months whose held-out rows hold one class" in undefined_note(
        2, 9, "roc_auc")
    assert "precision on months where no row is predicted positive" in undefined_note(
        2, 9, "precision")


def test_detection_summaries_count_their_undefined_months():
    nan = np.nan
    det = MonthlyDetection(0.01, [1, 2, 3], [0, 1, 2], np.array([0.5, nan, 0.7]),
                           np.array([nan, 0.02, 0.04]), np.array([0.9, 0.8, 0.7]))
    s = det.summary()
    assert s["prospective_tpr"] == pytest.approx(0.6)
    assert s["realised_fpr"] == pytest.approx(0.03) and s["max_realised_fpr"] == 0.04
    assert (s["n_undefined_tpr"], s["n_undefined_fpr"]) == (1, 1)
    flips = UpdateFlips([(0, 1), (1, 2)], np.array([nan, 0.25]), np.array([0, 1]),
                        np.array([0, 4]))
    assert flips.mean() == 0.25 and flips.n_undefined == 1


# ---------------------------------------------------------------------------
# the comparison: its results and its scoring note carry the count
# ---------------------------------------------------------------------------
def test_compare_counts_the_undefined_cells_and_says_so(tmp_path):
    X, y, months = make_stream(n_months=3, n_per_month=60, n_features=4, seed=1)
    y[months == 1] = 0  # month 1 has no positive row at all
    comp = compare_strategies(X, y, months, ["naive", "joint"], scoring="recall", cv=2,
                              estimator_params=dict(hidden_units=(8,), max_epochs=1,
                                                    batch_size=32),
                              progress=False, random_state=0)
    for res in comp.results.values():
        # month 1's column, in every row of both splits' matrices
        assert (res.n_undefined, res.n_scored) == (2 * 3, 2 * 9)
        for fm in res.matrices:
            assert np.isnan(fm.R[:, 1]).all() and np.isfinite(fm.R[:, [0, 2]]).all()
            assert fm.n_undefined == 3
        # the mean matrix: month 1 undefined in both splits, rows of both counted
        assert (res.matrix.n_undefined, res.matrix.n_scored) == (3, 9)
        assert res.matrix.n_rows.tolist() == np.sum([fm.n_rows for fm in res.matrices],
                                                    axis=0).tolist()
        by_hand = np.mean([np.mean(fm.R[-1, [0, 2]]) for fm in res.matrices])
        assert res.summary["average_accuracy"] == pytest.approx(by_hand)
    assert comp.scoring_note() == (
        "scoring: recall; 12 of 36 cells undefined (recall on months with no positive row), "
        "left out of the means")
    assert "12 of 36 cells undefined" in comp.scoring_note(width=60).replace("\n", " ")
    from sklearn_cf.report import write_report

    with open(write_report(comp, tmp_path), encoding="utf-8") as f:
        report = f.read()
    assert ("* scoring: recall; 12 of 36 cells undefined (recall on months with no positive "
            "row), left out of the means") in report


def test_compare_says_nothing_when_every_cell_is_defined():
    X, y, months = make_stream(n_months=2, n_per_month=60, n_features=4, seed=1)
    comp = compare_strategies(X, y, months, ["naive"], scoring="recall",
                              estimator_params=dict(hidden_units=(8,), max_epochs=1),
                              progress=False, random_state=0)
    assert comp.results["naive"].n_undefined == 0
    assert comp.scoring_note() == "scoring: recall"


def test_compare_counts_the_undefined_next_month_scores_of_its_aut():
    X, y, months = make_stream(n_months=4, n_per_month=60, n_features=4, seed=1)
    y[months == 2] = 0  # month 2 has no positive row: recall undefined there
    params = dict(hidden_units=(8,), max_epochs=1)
    comp = compare_strategies(X, y, months, ["naive"], scoring="accuracy",
                              aut_scoring="recall", estimator_params=params,
                              progress=False, random_state=0)
    res = comp.results["naive"]
    assert res.n_undefined == 0  # accuracy is defined on every month
    # the next-month series R[0, 1], R[1, 2], R[2, 3]: R[1, 2] undefined
    assert (res.aut_n_undefined, res.aut_n_points) == (1, 3)
    # the same split and fit by hand: AUT over the two defined points
    train, test = next(SequentialSplit(n_splits=1, test_size=0.2, random_state=0)
                       .split(X, y, months=months))
    clf = ContinualClassifier(strategy="naive", random_state=0, **params)
    clf.fit(X[train], y[train], months=months[train])
    held = [test[months[test] == j] for j in range(4)]
    points = [recall_score(y[held[i + 1]], clf.classes_[
        clf.predict_proba_after(X[held[i + 1]], i).argmax(1)], zero_division=np.nan)
        for i in range(3)]
    assert np.isnan(points[1]) and np.isfinite([points[0], points[2]]).all()
    assert res.aut == pytest.approx((points[0] + points[2]) / 2)
    assert comp.scoring_note() == (
        "scoring: accuracy; 1 of 3 next-month scores undefined (recall on months with no "
        "positive row), left out of AUT(recall)")


# ---------------------------------------------------------------------------
# the monthly update scores through the same scorers
# ---------------------------------------------------------------------------
def test_update_scores_recall_as_nan_on_a_month_without_positives(tmp_path):
    from sklearn_cf.update import update_model

    X, y, months = make_stream(n_months=2, n_per_month=80, n_features=4, seed=1)
    for k in range(2):
        keep = (months == k) & ((y == 0) | (k == 0))  # month 1: negatives only
        folder = tmp_path / f"m{k}" / str(k)
        folder.mkdir(parents=True)
        np.save(folder / "X.npy", X[keep])
        np.save(folder / "y.npy", y[keep])
    model = str(tmp_path / "model")
    update_model(model, str(tmp_path / "m0"), scoring="recall", strategy="naive",
                 estimator_params=dict(hidden_units=(8,), max_epochs=1))
    step = update_model(model, str(tmp_path / "m1")).steps[0]
    # recall_score(zero_division="warn") would have answered 0.0 for both
    assert np.isnan(step.score) and np.isnan(step.next_month_score)
    assert np.isfinite(step.before[0]) and np.isfinite(step.after[0])
