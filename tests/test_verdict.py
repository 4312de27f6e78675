"""The verdict: deployed month first, with intervals; the gradient-boosting reference."""

import numpy as np
import pytest
from scipy.stats import t as student_t
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import accuracy_score, balanced_accuracy_score, get_scorer, roc_auc_score

from conftest import make_stream
from sklearn_cf import SequentialSplit
from sklearn_cf.compare import (
    BASELINE_NAME,
    REFERENCE_NAME,
    BaselineResult,
    Comparison,
    ReferenceResult,
    StrategyResult,
    compare_strategies,
    reference_name,
)
from sklearn_cf.compare._bootstrap import (
    HeldOutOutputs,
    _cell_score,
    bootstrap_draws,
    interval,
    month_seed,
    month_weights,
    weighted_month_mean,
)
from sklearn_cf.compare._results import _add_relative, _mean_summary, _per_split
from sklearn_cf.datasets import make_monthly_drift
from sklearn_cf.metrics import ForgettingMatrix

TINY = dict(hidden_units=(8,), max_epochs=2, batch_size=32)


# ---------------------------------------------------------------------------
# The bootstrap: resampled scores against scikit-learn on the resampled rows
# ---------------------------------------------------------------------------
def _resampled(w):
    return np.repeat(np.arange(len(w)), w.astype(int))


@pytest.mark.parametrize("name, metric", [
    ("accuracy", lambda y, p, classes: accuracy_score(y, classes[p.argmax(1)])),
    ("balanced_accuracy",
     lambda y, p, classes: balanced_accuracy_score(y, classes[p.argmax(1)])),
    ("roc_auc", lambda y, p, classes: roc_auc_score(y, p[:, 1])),
])
@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_resampled_scores_equal_sklearn_on_the_resampled_rows(name, metric):
    rng = np.random.default_rng(0)
    n = 40
    classes = np.array([3, 7])
    y = classes[rng.integers(0, 2, n)]
    # rounded probabilities: many ties, which ROC-AUC counts by half
    p1 = np.round(rng.random(n), 1)
    proba = np.column_stack([1 - p1, p1])
    W = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(30)])
    W[0] = 0
    W[0, y == 3] = 1  # a resample of one class: ROC-AUC undefined
    got = _cell_score(name, get_scorer(name), y, proba, classes)(W.astype(float))
    for b, w in enumerate(W):
        rows = _resampled(w)
        if name == "roc_auc" and len(np.unique(y[rows])) < 2:
            assert np.isnan(got[b])
        else:
            assert got[b] == pytest.approx(metric(y[rows], proba[rows], classes))


def test_any_other_scorer_is_called_on_the_resampled_rows():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 30)
    p1 = rng.random(30)
    proba = np.column_stack([1 - p1, p1])
    W = np.stack([np.bincount(rng.integers(0, 30, 30), minlength=30) for _ in range(5)])
    got = _cell_score("f1", get_scorer("f1"), y, proba, np.array([0, 1]))(W.astype(float))
    from sklearn.metrics import f1_score

    expected = [f1_score(y[_resampled(w)], (p1[_resampled(w)] > 0.5).astype(int)) for w in W]
    np.testing.assert_allclose(got, expected)


def test_bootstrap_draws_are_paired_and_seeded_per_month():
    # Two models on two months, by hand: each resample of a month draws its
    # rows once and a weight Exp(1) (both seeded by the month's label), every
    # model is scored on them, and a model's draw is the weighted mean of its
    # cells.
    rng = np.random.default_rng(2)
    y_of = {0: rng.integers(0, 2, 25), 1: rng.integers(0, 2, 30)}
    labels = ["2024-01", "2024-02"]

    def proba(n):
        p = rng.random(n)
        return np.column_stack([1 - p, p])

    outputs = {m: HeldOutOutputs(np.array([0, 1]), {1: proba(30)}, {0: proba(25), 1: proba(30)})
               for m in ("a", "b")}
    draws = bootstrap_draws(outputs, y_of, labels, get_scorer("accuracy"), "accuracy", 50,
                            random_state=4)
    rows = {}
    for j in (0, 1):
        gen = np.random.default_rng(month_seed(4, 0, labels[j]))
        rows[j] = [gen.integers(0, len(y_of[j]), len(y_of[j])) for _ in range(50)]

    def acc(p, j, b):
        r = rows[j][b]
        return accuracy_score(y_of[j][r], p[r].argmax(1))

    w = {j: np.random.default_rng(month_seed(4, 0, labels[j]) + [1]).exponential(1.0, 50)
         for j in (0, 1)}
    for m, held in outputs.items():
        # one deployed month: its weight cancels
        np.testing.assert_allclose(
            draws[m]["deployed"], [acc(held.deployed[1], 1, b) for b in range(50)])
        np.testing.assert_allclose(
            draws[m]["retention"],
            [(w[0][b] * acc(held.final[0], 0, b) + w[1][b] * acc(held.final[1], 1, b))
             / (w[0][b] + w[1][b]) for b in range(50)])
    # a month's resamples depend on its own label only
    alone = bootstrap_draws({"a": HeldOutOutputs(np.array([0, 1]), {}, {1: outputs["a"].final[1]})},
                            {1: y_of[1]}, labels, get_scorer("accuracy"), "accuracy", 50, 4)
    np.testing.assert_allclose(alone["a"]["retention"],
                               [acc(outputs["a"].final[1], 1, b) for b in range(50)])


def test_month_weights_are_exp1_from_each_months_own_label():
    labels = ["2024-01", "2024-02", "2024-03"]
    W = month_weights(7, 1, labels, 40)
    for k, label in enumerate(labels):
        by_hand = np.random.default_rng(month_seed(7, 1, label) + [1]).exponential(1.0, 40)
        np.testing.assert_array_equal(W[:, k], by_hand)
    # not the row resamples' stream, and another split draws others
    rows = np.random.default_rng(month_seed(7, 1, labels[0])).exponential(1.0, 40)
    assert not np.allclose(W[:, 0], rows)
    assert not np.allclose(W, month_weights(7, 0, labels, 40))
    assert (W > 0).all()  # Exp(1): no resample leaves every month out


def test_dropping_a_month_leaves_the_other_months_draws_unchanged():
    rng = np.random.default_rng(5)
    labels = ["2024-01", "2024-02", "2024-03", "2024-04"]
    n = {j: 20 + 3 * j for j in range(4)}
    y_of = {j: rng.integers(0, 2, n[j]) for j in range(4)}

    def proba(k):
        p = rng.random(k)
        return np.column_stack([1 - p, p])

    held = HeldOutOutputs(np.array([0, 1]), {j: proba(n[j]) for j in (1, 2, 3)},
                          {j: proba(n[j]) for j in (0, 1, 2)})
    full = bootstrap_draws({"a": held}, y_of, labels, get_scorer("accuracy"), "accuracy", 30, 3)
    # the window without its oldest month: columns renumbered, labels kept
    later = HeldOutOutputs(held.classes, {j - 1: held.deployed[j] for j in (2, 3)},
                           {j - 1: held.final[j] for j in (1, 2)})
    short = bootstrap_draws({"a": later}, {j - 1: y_of[j] for j in (1, 2, 3)}, labels[1:],
                            get_scorer("accuracy"), "accuracy", 30, 3)
    assert full["a"]["deployed_months"] == labels[1:]
    assert short["a"]["deployed_months"] == labels[2:]
    np.testing.assert_array_equal(full["a"]["deployed_cells"][:, 1:],
                                  short["a"]["deployed_cells"])
    np.testing.assert_array_equal(full["a"]["retention_cells"][:, 1:],
                                  short["a"]["retention_cells"])
    np.testing.assert_array_equal(month_weights(3, 0, labels, 30)[:, 1:],
                                  month_weights(3, 0, labels[1:], 30))
    # and the draw is the weighted mean of those cells under those weights
    W = month_weights(3, 0, labels[2:], 30)
    np.testing.assert_allclose(
        short["a"]["deployed"],
        (W * short["a"]["deployed_cells"]).sum(1) / W.sum(1))


def test_a_constant_monthly_difference_has_a_degenerate_paired_interval():
    # Model b scores 0.02 more than model a on every month of every resample:
    # whatever the month weights, their difference is 0.02.
    rng = np.random.default_rng(6)
    cells = rng.uniform(0.6, 0.9, (200, 8))
    W = month_weights(0, 0, list(range(8)), 200)
    diff = weighted_month_mean(cells + 0.02, W) - weighted_month_mean(cells, W)
    assert interval([0.02], draws=diff) == pytest.approx((0.02, 0.02))


def test_the_interval_widens_with_month_to_month_spread():
    # Paired differences of mean 0.02 on 8 months, without row noise: the
    # spread of the draws is that of the Bayesian bootstrap of the month
    # values, var = sum((d - mean)^2) / (n (n + 1)) (Rubin 1981), and it grows
    # with the months' spread.
    n, B = 8, 20000
    W = month_weights(0, 0, [f"m{k}" for k in range(n)], B)
    widths = []
    for spread in (0.0, 0.01, 0.04):
        d = 0.02 + spread * np.where(np.arange(n) % 2, 1.0, -1.0)
        draws = weighted_month_mean(np.tile(d, (B, 1)), W)
        expected = ((d - d.mean()) ** 2).sum() / (n * (n + 1))
        assert draws.var() == pytest.approx(expected, rel=0.05, abs=1e-12)
        low, high = interval([d.mean()], draws=draws)
        assert low <= 0.02 + 1e-12 and high >= 0.02 - 1e-12
        widths.append(high - low)
    assert widths[0] == pytest.approx(0.0, abs=1e-12) and widths[0] < widths[1] < widths[2]
    # a lead of 2 points made by half the months only is no longer separated
    # from 0: its interval reaches below 0
    assert interval([0.02], draws=weighted_month_mean(
        np.tile(0.02 + 0.04 * np.where(np.arange(n) % 2, 1.0, -1.0), (B, 1)), W))[0] < 0


def test_weighted_month_mean_leaves_undefined_cells_out():
    cells = np.array([[0.8, np.nan, 0.6], [np.nan, np.nan, np.nan]])
    W = np.array([[1.0, 9.0, 3.0], [1.0, 1.0, 1.0]])
    got = weighted_month_mean(cells, W)
    assert got[0] == pytest.approx((0.8 + 3 * 0.6) / 4)
    assert np.isnan(got[1])


def test_interval_across_splits_is_student_t():
    values = np.array([0.71, 0.74, 0.70, 0.76])
    half = student_t.ppf(0.975, 3) * values.std(ddof=1) / 2
    assert interval(values) == pytest.approx((values.mean() - half, values.mean() + half))
    assert interval([0.7]) is None  # one split and no draws: no interval


# ---------------------------------------------------------------------------
# The verdict, on hand-made results
# ---------------------------------------------------------------------------
def _matrix(deployed, retention):
    """A 3-month matrix whose deployed cells hold ``deployed`` and whose
    final row holds ``retention``."""
    R = np.full((3, 3), retention)
    R[0, 1] = R[1, 2] = deployed
    return ForgettingMatrix(R, [0, 1, 2], [0, 1, 2], "accuracy")


def _draws(deployed, retention, noise):
    return {"deployed": deployed + noise, "retention": retention + noise}


def _strategy(name, deployed, retention, rows, noise, strategy=None):
    fm = _matrix(deployed, retention)
    res = StrategyResult(name, strategy or name, {}, {}, fm, [fm], _mean_summary([fm]),
                         float(rows), rows / 100.0, [rows / 3] * 3, [rows / 300] * 3)
    res = _per_split(res, [fm])
    res.draws = _draws(deployed, retention, noise)
    return res


def _baseline(score, noise):
    fm = _matrix(score, score)
    res = _per_split(BaselineResult(BASELINE_NAME, fm, [fm], _mean_summary([fm]),
                                    majority_class=0), [fm])
    res.draws = _draws(score, score, noise)
    return res


def _reference(score, noise):
    fm = _matrix(score, score)
    res = _per_split(ReferenceResult(REFERENCE_NAME, None, fm, [fm], _mean_summary([fm]), 1.0,
                                     [1 / 3] * 3), [fm])
    res.draws = _draws(score, score, noise)
    return res


def _comparison(*results, baseline=None, reference=None):
    results = {r.name: r for r in results}
    _add_relative(results, baseline, reference)
    return Comparison(results, "accuracy", {"n_splits": 1}, baseline=baseline,
                      reference=reference)


RNG = np.random.default_rng(0)
SHARED = RNG.normal(0, 0.03, 200)  # what a resample does to every strategy alike
OWN = [RNG.normal(0, 0.03, 200) for _ in range(4)]  # and to each alone


def test_a_paired_lead_ships_the_best_even_when_it_costs_more():
    # Each one's interval is wide (the same resamples move both), but the
    # paired difference is 0.02 on every resample: the lead is real.
    comp = _comparison(_strategy("naive", 0.78, 0.80, 100, SHARED),
                       _strategy("replay", 0.80, 0.85, 190, SHARED))
    low, high = comp.interval("replay")
    assert low < 0.78 < high  # unpaired, the two would overlap
    diff, bounds = comp.difference("replay", "naive")
    assert diff == pytest.approx(0.02) and bounds == pytest.approx((0.02, 0.02))
    assert comp.recommend() == "replay"
    assert comp.indistinguishable() == ["replay"]
    verdict = comp.verdict()
    assert verdict.startswith("Ship replay: its next-month accuracy, 0.800 [")
    assert "leads the runner-up naive by +0.020 (95% interval [+0.020, +0.020])" in verdict


def test_strategies_it_cannot_tell_apart_ship_the_cheapest():
    comp = _comparison(_strategy("naive", 0.790, 0.80, 100, SHARED + OWN[0]),
                       _strategy("replay", 0.800, 0.86, 190, SHARED + OWN[1]),
                       _strategy("joint", 0.795, 0.90, 600, SHARED + OWN[2]))
    for name in ("naive", "joint"):
        low, high = comp.difference(name, "replay")[1]
        assert low < 0 < high
    assert comp.indistinguishable() == ["replay", "naive", "joint"]
    # Retention comes before cost: naive keeps past months worse than joint
    # beyond its paired interval (0.80 vs 0.90); replay's 0.86 cannot be told
    # from joint's on these noisy resamples: of replay and joint, replay is cheaper.
    assert comp._retaining(comp.indistinguishable(), 0.01) == ["replay", "joint"]
    low, high = comp.difference("naive", "joint", "retention")[1]
    assert high < -0.01
    assert comp.recommend() == "replay"
    verdict = comp.verdict()
    assert verdict.startswith("Ship replay: on the next-month accuracy, replay, naive and joint "
                              "cannot be told apart")
    assert ("of them replay and joint keep past months as well as the best (retention within "
            "1 point or its uncertainty), and replay is the cheapest of those") in verdict


def test_retention_ranks_before_cost():
    # Paired draws move every strategy alike: differences are exact.
    comp = _comparison(_strategy("naive", 0.790, 0.895, 100, SHARED),
                       _strategy("replay", 0.800, 0.860, 190, SHARED),
                       _strategy("joint", 0.795, 0.900, 600, SHARED))
    assert comp.indistinguishable() == ["replay", "naive", "joint"]  # within 1 point
    # replay retains 4 points less than joint: out; naive 0.5 point less: kept
    assert comp._retaining(comp.indistinguishable(), 0.01) == ["naive", "joint"]
    assert comp.recommend() == "naive"  # the cheaper of the two
    assert ("of them naive and joint keep past months as well as the best (retention within "
            "1 point or its uncertainty), and naive is the cheapest of those") in comp.verdict()
    # naive retaining 3 points less than joint leaves joint alone
    alone = _comparison(_strategy("naive", 0.790, 0.870, 100, SHARED),
                        _strategy("replay", 0.800, 0.860, 190, SHARED),
                        _strategy("joint", 0.795, 0.900, 600, SHARED))
    assert alone.recommend() == "joint"
    assert "of them joint keeps past months best (retention 0.900 [" in alone.verdict()


def test_a_tie_on_rows_goes_to_the_strategy_listed_first():
    # their scores cannot be told apart, so the higher one is noise: the order
    # given decides, and it does not move with the history window
    comp = _comparison(_strategy("naive", 0.790, 0.80, 100, SHARED + OWN[0]),
                       _strategy("ensemble", 0.800, 0.82, 100, SHARED + OWN[1]))
    assert comp.indistinguishable() == ["ensemble", "naive"]
    assert comp.recommend() == "naive"
    assert "(its score 0.790 [" in comp.verdict()
    assert "; a tie on rows goes to the strategy listed first)" in comp.verdict()


def test_a_lead_within_the_tolerance_counts_as_a_tie():
    # a paired lead of 0.006 with interval [+0.001, +0.012]: real, but under the
    # default tolerance of 1 point, so the cheaper ships
    noise = np.linspace(-0.005, 0.006, 200)
    comp = _comparison(_strategy("naive", 0.794, 0.85, 100, SHARED),
                       _strategy("replay", 0.80, 0.85, 190, SHARED + noise))
    low, high = comp.difference("replay", "naive")[1]
    assert 0 < low < 0.01  # larger than its uncertainty, yet within 1 point
    assert comp.recommend() == "naive"
    assert "each other's paired 95% interval comes within 1 point of it" in comp.verdict()
    assert comp.recommend(tolerance=0) == "replay"
    strong = _comparison(_strategy("naive", 0.78, 0.85, 100, SHARED),
                         _strategy("replay", 0.80, 0.85, 190, SHARED))
    assert strong.recommend(tolerance=0.03) == "naive"
    assert strong.recommend() == "replay"


def test_without_intervals_the_best_point_estimate_ships():
    naive = _strategy("naive", 0.785, 0.85, 100, SHARED)
    replay = _strategy("replay", 0.80, 0.85, 190, SHARED)
    for res in (naive, replay):
        res.draws = None
    comp = _comparison(naive, replay)
    assert comp.interval("naive") is None
    assert comp.recommend() == "replay"  # 1.5 points ahead
    assert "[" not in comp.verdict()
    assert comp.recommend(tolerance=0.02) == "naive"  # within 2 points: the cheaper


def test_the_baseline_must_be_beaten_by_more_than_its_uncertainty():
    base = _baseline(0.70, SHARED)
    close = _comparison(_strategy("naive", 0.71, 0.72, 100, SHARED + OWN[0]),
                        _strategy("joint", 0.72, 0.75, 600, SHARED + OWN[1]), baseline=base)
    assert close.recommend() is None
    assert close.verdict().startswith(
        "No strategy beats the majority-class baseline (0.700) by more than its uncertainty: "
        "the best next-month accuracy, joint's (0.720)")
    clear = _comparison(_strategy("naive", 0.71, 0.72, 100, SHARED + OWN[0]),
                        _strategy("joint", 0.80, 0.85, 600, SHARED), baseline=base)
    assert clear.recommend() == "joint"
    assert clear.table(as_frame=False)[-1]["strategy"] == BASELINE_NAME


def test_the_baseline_floor_weighs_every_month_of_the_window_alike():
    # One strategy loses to the baseline on the first deployed month (every
    # strategy is then the model trained on one month) and beats it by 20
    # points on the three others. Weighting the months, its lead is not sure;
    # the floor asks about these months' rows, and there it is.
    rng = np.random.default_rng(3)
    labels = [1, 2, 3, 4]
    W = month_weights(0, 0, labels, 200)
    base_cells = 0.5 + rng.normal(0, 0.005, (200, 4))
    own_cells = base_cells + np.array([-0.15, 0.2, 0.2, 0.2]) + rng.normal(0, 0.005, (200, 4))

    def draws(cells):
        return {"deployed": weighted_month_mean(cells, W), "deployed_cells": cells,
                "deployed_months": labels, "retention": weighted_month_mean(cells, W),
                "retention_cells": cells, "retention_months": labels}

    baseline = _baseline(0.5, 0 * SHARED)
    baseline.draws = draws(base_cells)
    naive = _strategy("naive", 0.6125, 0.6125, 100, 0 * SHARED)
    naive.draws = draws(own_cells)
    comp = _comparison(naive, baseline=baseline)
    assert comp.difference("naive", BASELINE_NAME)[1][0] < 0       # months weighted
    assert comp._difference_on_these_months("naive", BASELINE_NAME)[1][0] > 0.05
    assert comp.recommend() == "naive"



@pytest.mark.parametrize("score, how", [
    (0.70, "beats it"), (0.90, "does not beat it"), (0.80, "cannot be told from it"),
])
def test_the_verdict_compares_the_choice_with_the_reference(score, how):
    noise = SHARED + OWN[3] if how == "cannot be told from it" else SHARED
    comp = _comparison(_strategy("naive", 0.80, 0.80, 100, SHARED),
                       reference=_reference(score, noise))
    assert comp.recommend() == "naive"  # never the reference
    assert (f"against gradient boosting retrained monthly on all history ({score:.3f} ["
            in comp.verdict())
    assert f"naive {how} (" in comp.verdict()
    names = [r["strategy"] for r in comp.table(as_frame=False)]
    assert names == ["naive", REFERENCE_NAME]


def test_several_splits_give_student_t_intervals():
    fms = [_matrix(d, 0.8) for d in (0.70, 0.74, 0.72)]
    res = StrategyResult("naive", "naive", {}, {}, fms[0], fms, _mean_summary(fms), 300.0, 3.0,
                         [100.0] * 3, [1.0] * 3)
    _per_split(res, fms)
    comp = _comparison(res)
    half = student_t.ppf(0.975, 2) * np.std([0.70, 0.74, 0.72], ddof=1) / np.sqrt(3)
    assert comp.interval("naive") == pytest.approx((0.72 - half, 0.72 + half))
    record = comp.table(as_frame=False)[0]
    assert record["deployed_score"] == pytest.approx(0.72)
    assert (record["deployed_low"], record["deployed_high"]) == pytest.approx(
        (0.72 - half, 0.72 + half))


# ---------------------------------------------------------------------------
# A real comparison: the reference row and the intervals
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def data():
    return make_stream(n_months=3, n_per_month=80, n_features=5, seed=2)


@pytest.fixture(scope="module")
def small(data):
    X, y, months = data
    return compare_strategies(X, y, months, ["naive", "joint"], estimator_params=TINY,
                              progress=False, reference_window=None)


@pytest.mark.parametrize("window", [None, 1])
def test_the_reference_is_boosting_refitted_on_the_history(data, small, window):
    X, y, months = data
    comp = small if window is None else compare_strategies(
        X, y, months, ["naive"], estimator_params=TINY, progress=False, reference_window=window)
    assert comp.reference.name == reference_name(window)
    train, test = next(SequentialSplit(n_splits=1, test_size=0.2, random_state=0)
                       .split(X, y, months=months))
    expected = np.empty((3, 3))
    for i in range(3):
        first = 0 if window is None else i - window + 1
        rows = train[(months[train] >= first) & (months[train] <= i)]
        model = HistGradientBoostingClassifier(early_stopping=False, random_state=0)
        model.fit(X[rows], y[rows])
        for j in range(3):
            held = test[months[test] == j]
            expected[i, j] = accuracy_score(y[held], model.predict(X[held]))
    np.testing.assert_allclose(comp.reference.matrix.R, expected)
    assert comp.reference.summary["deployed_score"] == pytest.approx(
        (expected[0, 1] + expected[1, 2]) / 2)
    assert comp.reference.seconds > 0


def test_deployed_score_and_its_interval_in_a_real_comparison(small):
    R = small.results["naive"].matrix.R
    record = small.table(as_frame=False)[0]
    assert record["deployed_score"] == pytest.approx((R[0, 1] + R[1, 2]) / 2)
    assert record["average_score"] == pytest.approx(R[2].mean())
    assert record["deployed_low"] <= record["deployed_score"] <= record["deployed_high"]
    # the same resamples for every row: the baseline and the reference have draws too
    for name in (REFERENCE_NAME, BASELINE_NAME):
        assert len(small._row(name).draws["deployed"]) == 200
    assert small.settings["n_bootstrap"] == 200 and small.settings["reference"] == "hgb"


def test_no_reference_and_no_intervals(data):
    X, y, months = data
    comp = compare_strategies(X, y, months, ["naive"], estimator_params=TINY, progress=False,
                              reference="none", n_bootstrap=0)
    assert comp.reference is None
    assert [r["strategy"] for r in comp.table(as_frame=False)] == ["naive", BASELINE_NAME]
    assert comp.interval("naive") is None
    assert comp.table(as_frame=False)[0]["deployed_low"] is None


@pytest.mark.parametrize("kwargs, words", [
    (dict(reference="xgb"), "reference must be 'hgb'"),
    (dict(reference_window=0), "reference_window must be None"),
    (dict(reference="none", reference_window=3), "needs reference='hgb'"),
    (dict(n_bootstrap=5), "n_bootstrap must be 0"),
    (dict(n_bootstrap=True), "n_bootstrap must be 0"),
])
def test_bad_verdict_options_are_refused_before_training(data, kwargs, words):
    X, y, months = data
    with pytest.raises(ValueError, match=words):
        compare_strategies(X, y, months, ["naive"], estimator_params=TINY, progress=False,
                           **kwargs)


# ---------------------------------------------------------------------------
# Stability: one old month fewer does not change the verdict
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 4])
def test_the_verdict_survives_dropping_the_oldest_month(seed):
    # The same strategy ships on all six months, without the oldest and
    # without the two oldest: the intervals hold the month-to-month
    # variation (months weighted in the bootstrap), so one old month fewer
    # moves the differences by less than their uncertainty. On seed 4, with
    # the months weighted in the baseline floor too, the first deployed month
    # (lost to the baseline) left joint alone above the floor on all six
    # months: joint shipped there, replay without the oldest.
    X, y, months = make_monthly_drift(n_months=6, n_samples_per_month=400, random_state=seed)
    params = dict(hidden_units=(16,), max_epochs=3, batch_size=64)
    strategies = ["naive", "replay", "l2", "joint"]
    shipped = []
    for oldest in (0, 1, 2):
        keep = months >= oldest
        comp = compare_strategies(X[keep], y[keep], months[keep], strategies,
                                  estimator_params=params, progress=False, reference="none")
        shipped.append(comp.recommend())
    assert shipped[0] is not None
    assert shipped == [shipped[0]] * 3
