"""Honest tuning: no row of a later month reaches the choice, and the oracle
(choosing on the scored months) never scores below the honest protocol."""

import numpy as np
import pytest
import sklearn
from sklearn.model_selection import GridSearchCV

from conftest import make_stream
from sklearn_cf import ContinualClassifier, SequentialSplit, make_forgetting_scorer
from sklearn_cf.datasets import make_monthly_drift
from sklearn_cf.model_selection import honest_tuning, tuning_cutoffs
from sklearn_cf.model_selection._honest import _honest_and_oracle

TINY = dict(hidden_units=(8,), max_epochs=1, batch_size=32, random_state=0)

#: (months seen, months of the rows) of every fit of a SpyClassifier, in order.
FITS = []


class SpyClassifier(ContinualClassifier):
    """A ContinualClassifier that records the months of every fit."""

    def fit(self, X, y, months=None, sample_weight=None):
        FITS.append(sorted(set(np.asarray(months).tolist())))
        return super().fit(X, y, months=months, sample_weight=sample_weight)


def _search(estimator_cls=SpyClassifier, grid=None, refit="next_month_aut"):
    with sklearn.config_context(enable_metadata_routing=True):
        return GridSearchCV(
            estimator_cls(strategy="l2", **TINY).set_fit_request(months=True),
            grid or {"reg_lambda": [0.1, 100.0]},
            cv=SequentialSplit(n_splits=1, random_state=0),
            scoring=make_forgetting_scorer(), refit=refit,
        )


# ---------------------------------------------------------------------------
# The protocol's pieces
# ---------------------------------------------------------------------------
def test_tuning_cutoffs():
    assert tuning_cutoffs(12, 6) == [5]
    assert tuning_cutoffs(12, 6, rechoose_every=2) == [5, 7, 9]
    assert tuning_cutoffs(12, 6, rechoose_every=4) == [5, 9]
    assert tuning_cutoffs(3, 2, rechoose_every=1) == [1]
    with pytest.raises(ValueError, match="leaves no month to score"):
        tuning_cutoffs(4, 4)
    with pytest.raises(ValueError, match="rechoose_every"):
        tuning_cutoffs(4, 2, rechoose_every=0)


def test_honest_and_oracle_by_hand():
    nan = np.nan
    deployed = np.array([
        # month: 0     1    2    3    4    5
        [nan, 0.9, 0.8, 0.5, 0.9, 0.7],   # candidate 0
        [nan, 0.7, 0.7, 0.9, 0.8, 0.6],   # candidate 1
    ])
    # chosen once, after month 1: months 2-5 scored with candidate 0
    honest, oracle, best = _honest_and_oracle(deployed, [0], [1])
    np.testing.assert_allclose(honest, [0.8, 0.5, 0.9, 0.7])
    # in hindsight: candidate 1 has the better mean on months 2-5 (0.75 > 0.725)
    assert best == [1]
    np.testing.assert_allclose(oracle, [0.7, 0.9, 0.8, 0.6])
    # chosen again after month 3 (candidate 1): blocks (1, 3] and (3, 5]
    honest, oracle, best = _honest_and_oracle(deployed, [0, 1], [1, 3])
    np.testing.assert_allclose(honest, [0.8, 0.5, 0.8, 0.6])
    assert best == [1, 0]  # months 2-3: 0.8 > 0.65; months 4-5: 0.8 > 0.7
    np.testing.assert_allclose(oracle, [0.7, 0.9, 0.9, 0.7])
    assert oracle.mean() == pytest.approx(0.8) and honest.mean() == pytest.approx(0.675)


# ---------------------------------------------------------------------------
# honest_tuning around GridSearchCV
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("rechoose_every, cutoffs", [(None, [1]), (1, [1, 2])])
def test_no_row_after_the_cutoff_reaches_the_choice(rechoose_every, cutoffs):
    X, y, months = make_stream(n_months=4, n_per_month=60, n_features=5, seed=1)
    FITS.clear()
    result = honest_tuning(_search(), X, y, months, tune_months=2,
                           rechoose_every=rechoose_every, random_state=0)
    assert result.cutoffs == cutoffs
    # every choice first: one inner split x two candidates per cutoff, each
    # fitted on months up to that cutoff only
    n_choice = 2 * len(cutoffs)
    for k, cutoff in enumerate(cutoffs):
        for fit in FITS[2 * k: 2 * k + 2]:
            assert fit == list(range(cutoff + 1)), (cutoff, fit)
    # then each candidate once, trained month after month on every month
    assert FITS[n_choice:] == [[0, 1, 2, 3]] * 2
    assert len(FITS) == n_choice + 2


def test_the_choice_does_not_change_when_later_months_change():
    X, y, months = make_stream(n_months=4, n_per_month=60, n_features=5, seed=1)
    first = honest_tuning(_search(ContinualClassifier), X, y, months, tune_months=2,
                          random_state=0)
    later = months >= 2
    X2, y2 = X.copy(), y.copy()
    rng = np.random.default_rng(5)
    X2[later] = rng.normal(size=X2[later].shape).astype(np.float32)
    y2[later] = rng.integers(0, 2, size=later.sum())
    second = honest_tuning(_search(ContinualClassifier), X2, y2, months, tune_months=2,
                           random_state=0)
    assert second.chosen_params == first.chosen_params
    pd_first = first.choice_results[0]["mean_test_next_month_aut"]
    np.testing.assert_allclose(second.choice_results[0]["mean_test_next_month_aut"], pd_first)


def test_on_the_synthetic_stream_the_oracle_is_at_least_the_honest_score():
    X, y, months = make_monthly_drift(n_months=5, n_samples_per_month=120, random_state=0)
    result = honest_tuning(
        _search(ContinualClassifier, grid={"reg_lambda": [0.01, 1.0, 100.0]}),
        X, y, months, tune_months=2, rechoose_every=2, random_state=0)
    assert result.cutoffs == [1, 3] and result.scored_months == [2, 3, 4]
    assert np.isfinite(result.honest_score) and np.isfinite(result.oracle_score)
    assert result.oracle_score >= result.honest_score
    assert result.overstatement == pytest.approx(result.oracle_score - result.honest_score)
    # both are means of per-month deployed scores of the candidates tried
    index = {repr(c): k for k, c in enumerate(result.candidates)}
    chosen = [index[repr(p)] for p in result.chosen_params]
    expected = np.concatenate([result.deployed_scores[chosen[0], :2],
                               result.deployed_scores[chosen[1], 2:]])
    np.testing.assert_allclose(result.honest_scores, expected)
    best_per_block = [max(np.mean(row[:2]) for row in result.deployed_scores),
                      max(row[2] for row in result.deployed_scores)]
    assert result.oracle_score == pytest.approx((2 * best_per_block[0] + best_per_block[1]) / 3)
    text = result.summary()
    assert f"honest {result.honest_score:.3f}" in text
    assert f"oracle {result.oracle_score:.3f}" in text


def test_honest_tuning_errors_name_the_fix():
    X, y, months = make_stream(n_months=3, n_per_month=40, n_features=5, seed=1)
    with pytest.raises(ValueError, match="refit="):
        honest_tuning(_search(refit=False), X, y, months, tune_months=2)
    with pytest.raises(ValueError, match="leaves no month to score"):
        honest_tuning(_search(), X, y, months, tune_months=3)
    with sklearn.config_context(enable_metadata_routing=True):
        plain = GridSearchCV(ContinualClassifier(**TINY), {"reg_lambda": [1.0]},
                             cv=SequentialSplit(n_splits=1), scoring=make_forgetting_scorer(),
                             refit="average_accuracy")
    with pytest.raises(ValueError, match="set_fit_request"):
        honest_tuning(plain, X, y, months, tune_months=2)
