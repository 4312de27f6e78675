"""The scoring chosen from the target, and the majority-class baseline of ``compare``.

Every expected number is computed here by hand (numpy) or by sklearn's own
metric, never read back from the code under test.
"""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from conftest import make_stream
from sklearn_cf import SequentialSplit
from sklearn_cf.compare import (
    BASELINE_NAME,
    BaselineResult,
    Comparison,
    StrategyResult,
    _add_relative,
    compare_strategies,
    resolve_scoring,
)
from sklearn_cf.metrics import ForgettingMatrix, default_scoring

TINY = dict(hidden_units=(8,), max_epochs=1, batch_size=32)


# ---------------------------------------------------------------------------
# default_scoring
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "y, name, share",
    [
        ([0] * 69 + [1] * 31, "roc_auc", "31.0%"),  # the stream
        ([1] * 88 + [0] * 12, "roc_auc", "12.0%"),  # whichever label is rare
        ([0] * 50 + [1] * 50, "accuracy", "50.0%"),
        ([0] * 60 + [1] * 40, "accuracy", "40.0%"),  # exactly 40%: not below
        ([0] * 61 + [1] * 39, "roc_auc", "39.0%"),
        (["a"] * 45 + ["b"] * 45 + ["c"] * 10, "balanced_accuracy", "10.0%"),
        # three even classes: the rarest is at most a third, below 40%
        ([0] * 34 + [1] * 33 + [2] * 33, "balanced_accuracy", "33.0%"),
    ],
)
def test_default_scoring_on_hand_made_targets(y, name, share):
    got, reason = default_scoring(y)
    assert got == name
    assert reason.startswith(f"{name}, because the rarest")
    assert f" {share} of rows" in reason
    assert ("(below 40%)" in reason) == (name != "accuracy")


def test_default_scoring_reads_series_and_never_rounds_onto_the_threshold():
    y = pd.Series(["benign"] * 6001 + ["malware"] * 3999)
    name, reason = default_scoring(y)
    assert name == "roc_auc"
    assert "39.99%" in reason and "40.0%" not in reason
    assert default_scoring(np.array([3, 3, 3]))[0] == "accuracy"  # one class
    with pytest.raises(ValueError, match="empty"):
        default_scoring([])


def test_resolve_scoring_auto_needs_the_target():
    assert resolve_scoring("auto", y=[0] * 7 + [1] * 3) == ("roc_auc", "roc_auc")
    with pytest.raises(ValueError, match="default_scoring"):
        resolve_scoring("auto")


# ---------------------------------------------------------------------------
# The baseline in compare
# ---------------------------------------------------------------------------
def _shifting_stream():
    """Labels unrelated to X, whose majority flips: 30% ones in month 0, 90% in
    month 1, 60% in month 2 (60% ones overall: accuracy is chosen)."""
    X, _, months = make_stream(n_months=3, n_per_month=100, n_features=5, seed=2)
    rng = np.random.default_rng(0)
    y = np.concatenate([rng.permutation(np.r_[np.ones(k), np.zeros(100 - k)]).astype(int)
                        for k in (30, 90, 60)])
    return X, y, months


def _majority_by_hand(y, months, train, test):
    """R[i, j]: the majority label of the training rows of months <= i (the
    smaller label on a tie), scored by accuracy on month j's test rows."""
    R = np.empty((3, 3))
    for i in range(3):
        majority = np.bincount(y[train[months[train] <= i]]).argmax()
        for j in range(3):
            R[i, j] = np.mean(y[test[months[test] == j]] == majority)
    return R


def test_baseline_accuracy_is_the_majority_share_of_the_held_out_rows():
    X, y, months = _shifting_stream()
    comp = compare_strategies(X, y, months, ["naive"], cv=2, estimator_params=TINY,
                              progress=False)
    assert comp.scoring == "accuracy"  # 40% zeros: not below 40%
    splits = list(SequentialSplit(n_splits=2, test_size=0.2, random_state=0)
                  .split(X, y, months=months))
    by_hand = [_majority_by_hand(y, months, train, test) for train, test in splits]
    assert not np.allclose(by_hand[0][0], by_hand[0][1])  # the majority did flip
    for got, expected in zip(comp.baseline.matrices, by_hand):
        np.testing.assert_allclose(got.R, expected)
    np.testing.assert_allclose(comp.baseline.matrix.R, np.mean(by_hand, axis=0))
    average = np.mean([R[-1].mean() for R in by_hand])
    assert comp.baseline.summary["average_accuracy"] == pytest.approx(average)
    assert comp.baseline.majority_class == 1

    # a row of the table, never a strategy
    row = comp.table(as_frame=False)[-1]
    assert row["strategy"] == BASELINE_NAME and row["average_score"] == pytest.approx(average)
    assert row["rows"] is None and row["seconds"] is None
    assert BASELINE_NAME not in comp.results and BASELINE_NAME not in comp.strategies
    last = comp.to_string().split("\n\n")[0].splitlines()[-1]
    assert last.startswith(BASELINE_NAME) and f"{average:.3f}" in last


def _rare_stream(n_per_month=150):
    """A learnable stream with about 31% positives."""
    X, y, months = make_stream(n_months=3, n_per_month=n_per_month, n_features=5, seed=3)
    rng = np.random.default_rng(1)
    score = X[:, 1] + 0.3 * rng.normal(size=len(y))
    y = (score > np.quantile(score, 0.69)).astype(int)
    return X, y, months


def test_auto_scoring_on_a_rare_class_is_roc_auc_and_the_baseline_scores_one_half():
    X, y, months = _rare_stream()
    share = np.bincount(y).min() / len(y)
    assert 0.30 < share < 0.32
    comp = compare_strategies(X, y, months, ["naive"], estimator_params=TINY, progress=False)
    assert comp.scoring == "roc_auc"
    assert comp.settings["scoring_requested"] == "auto"
    assert comp.settings["scoring_reason"] == (
        f"roc_auc, because the rarest class is {share:.1%} of rows (below 40%)")
    assert comp.scoring_note() == (
        f"scoring: roc_auc, chosen automatically because the rarest class is {share:.1%} of "
        "rows (below 40%); pass --scoring to change")
    # class priors as probabilities: one score for every row, so ROC-AUC 0.5
    np.testing.assert_array_equal(comp.baseline.matrix.R, np.full((3, 3), 0.5))

    # the strategies' cells are sklearn's roc_auc_score of the snapshots
    train, test = next(SequentialSplit(n_splits=1, test_size=0.2, random_state=0)
                       .split(X, y, months=months))
    from sklearn_cf import ContinualClassifier

    clf = ContinualClassifier(strategy="naive", random_state=0, **TINY)
    clf.fit(X[train], y[train], months=months[train])
    expected = [[roc_auc_score(y[test][months[test] == j],
                               clf.predict_proba_after(X[test][months[test] == j], i)[:, 1])
                 for j in range(3)] for i in range(3)]
    np.testing.assert_allclose(comp.results["naive"].matrix.R, expected)


def test_an_explicit_scoring_is_used_as_given():
    X, y, months = _rare_stream(n_per_month=60)
    comp = compare_strategies(X, y, months, ["naive"], scoring="accuracy",
                              estimator_params=TINY, progress=False)
    assert comp.scoring == "accuracy" and comp.settings["scoring_reason"] is None
    assert comp.scoring_note() == "scoring: accuracy"
    # always answering 0 scores the share of zeros among each month's held-out rows
    train, test = next(SequentialSplit(n_splits=1, test_size=0.2, random_state=0)
                       .split(X, y, months=months))
    np.testing.assert_allclose(
        comp.baseline.matrix.R[-1], [np.mean(y[test][months[test] == j] == 0) for j in range(3)])


def test_multiclass_baseline_balanced_accuracy_is_one_over_the_classes():
    X, _, months = make_stream(n_months=2, n_per_month=100, n_features=5, seed=4)
    y = np.tile(np.r_[np.zeros(45), np.ones(45), np.full(10, 2)], 2).astype(int)
    comp = compare_strategies(X, y, months, ["naive"], estimator_params=TINY, progress=False)
    assert comp.scoring == "balanced_accuracy"
    train, test = next(SequentialSplit(n_splits=1, test_size=0.2, random_state=0)
                       .split(X, y, months=months))
    rows = test[months[test] == 1]
    assert comp.baseline.matrix.R[1, 1] == pytest.approx(
        balanced_accuracy_score(y[rows], np.zeros(len(rows), dtype=int)))
    assert comp.baseline.matrix.R[1, 1] == pytest.approx(1 / 3)


# ---------------------------------------------------------------------------
# The verdict and the baseline
# ---------------------------------------------------------------------------
def _fake(name, score, rows):
    R = np.full((3, 3), score)
    fm = ForgettingMatrix(R, [0, 1, 2], [0, 1, 2], "accuracy")
    summary = {"average_accuracy": score, "backward_transfer": 0.0, "forgetting": 0.0,
               "learning_accuracy": score, "next_month_aut": score}
    return StrategyResult(name, name, {}, {}, fm, [fm], summary, float(rows), rows / 100.0,
                          [rows / 3] * 3, [rows / 300] * 3)


def _baseline(score):
    fm = ForgettingMatrix(np.full((3, 3), score), [0, 1, 2], [0, 1, 2], "accuracy")
    summary = {"average_accuracy": score, "backward_transfer": 0.0, "forgetting": 0.0,
               "learning_accuracy": score, "next_month_aut": score}
    return BaselineResult(BASELINE_NAME, fm, [fm], summary, majority_class=0)


def _comparison(results, baseline, auto_scoring="roc_auc"):
    results = {r.name: r for r in results}
    _add_relative(results, baseline)
    return Comparison(results, "accuracy", {"n_splits": 1, "auto_scoring": auto_scoring},
                      baseline=baseline)


def test_no_strategy_is_recommended_below_the_baseline(tmp_path):
    # issue 12: 31% positives, every strategy below always answering "negative"
    comp = _comparison([_fake("naive", 0.647, 100), _fake("replay", 0.66, 190),
                        _fake("joint", 0.67, 600)], _baseline(0.686))
    assert comp.recommend() is None
    verdict = comp.verdict()
    assert verdict.startswith("No strategy beats the majority-class baseline (0.686)")
    assert "joint (0.670)" in verdict and "Ship" not in verdict
    assert "--scoring roc_auc" in verdict  # accuracy was asked for on a rare class
    assert comp.table(as_frame=False)[-1]["gap_to_joint"] == pytest.approx(0.686 - 0.67)

    from sklearn_cf.update import save_best

    store = tmp_path / "never"  # a model store folder
    with pytest.raises(ValueError, match="majority-class baseline"):
        save_best(comp, np.zeros((3, 2)), np.zeros(3), np.arange(3), store,
                  estimator_params={})
    assert not store.exists()


def test_a_cheaper_strategy_that_does_not_beat_the_baseline_is_passed_over():
    comp = _comparison([_fake("naive", 0.692, 100), _fake("replay", 0.70, 190),
                        _fake("joint", 0.70, 600)], _baseline(0.695))
    # naive is within a 1-point tolerance of the best and cheapest, but below the baseline
    assert comp._choice(0.01)[2] == "naive"
    assert comp.recommend(tolerance=0.01) == "replay"
    verdict = comp.verdict(tolerance=0.01)
    assert verdict.startswith("Ship replay:")
    assert "naive would cost less, but its 0.692 does not beat the majority-class " \
           "baseline (0.695)" in verdict
    # joint is the best, but not the only strategy within 1 point of it
    goal = _comparison([_fake("naive", 0.683, 100), _fake("joint", 0.69, 600)], _baseline(0.686))
    assert goal.recommend(tolerance=0.01) == "joint"
    assert "naive would cost less, but its 0.683 does not beat" in goal.verdict(tolerance=0.01)
    # without a baseline, as before
    plain = _comparison([_fake("naive", 0.692, 100), _fake("joint", 0.70, 600)], None)
    assert plain.recommend(tolerance=0.01) == "naive"
    assert "baseline" not in plain.verdict(tolerance=0.01)


def test_a_tie_with_the_baseline_does_not_beat_it():
    comp = _comparison([_fake("naive", 0.5, 100), _fake("joint", 0.5, 600)], _baseline(0.5),
                       auto_scoring="accuracy")
    assert comp.recommend() is None
    # a balanced target: no advice to change the scoring
    assert "--scoring" not in comp.verdict()


def test_a_scorer_the_baseline_cannot_take_leaves_the_comparison_without_it():
    X, y, months = _rare_stream(n_per_month=60)

    def snapshots_only(estimator, X_, y_):  # needs a ContinualClassifier's snapshot view
        return float(np.mean(estimator.predict_proba(X_)[:, 1] > 0.5) + estimator.month * 0)

    with pytest.warns(UserWarning, match="majority-class baseline could not be scored"):
        comp = compare_strategies(X, y, months, ["naive"], scoring=snapshots_only,
                                  estimator_params=TINY, progress=False)
    assert comp.baseline is None
    assert [r["strategy"] for r in comp.table(as_frame=False)] == ["naive"]
    assert comp.recommend() == "naive"
