"""The majority-class baseline: what answering one class scores.

After each month, a ``DummyClassifier(strategy="prior")`` fitted on the
training rows of every month so far, scored like the strategies (see
:class:`~sklearn_cf.compare.BaselineResult`).
"""

import warnings

import numpy as np
from sklearn.dummy import DummyClassifier
from sklearn.metrics import check_scoring

from .._compat import to_python
from .._validation import group_by_month, month_label, take_rows
from ..metrics import ForgettingMatrix, score_or_nan
from ._results import _aggregate_baseline


def _fit_majority(y_seen, classes):
    """``DummyClassifier(strategy="prior")`` on the labels seen so far.

    Every class of the stream is declared, with weight 0 (a class not seen
    yet gets prior 0), so its ``predict_proba`` has a column per class, as
    the strategies' have, and scorers such as roc_auc find the positive
    class.
    """
    labels = np.concatenate([np.asarray(y_seen), classes])
    weights = np.concatenate([np.ones(len(y_seen)), np.zeros(len(classes))])
    dummy = DummyClassifier(strategy="prior")
    return dummy.fit(np.zeros((len(labels), 1)), labels, sample_weight=weights)


def _majority_matrix(fm, y_train, months_train, X_test, y_test, months_test, classes,
                     scorer):
    """One split's forgetting matrix of the majority-class baseline.

    ``R[i, j]``: a :func:`_fit_majority` model fitted on the training rows of
    the months ``fm.train_months[:i + 1]``, scored on month ``fm.months[j]``'s
    held-out rows; the same cells as the strategies' matrix ``fm``, NaN
    where theirs would be (no rows, or a score undefined on one class).

    Returns
    -------
    matrix : ForgettingMatrix
    majority : object
        The class predicted after the last month.
    models : list of DummyClassifier
        The model fitted after each trained month.
    """
    train_labels, train_rows = group_by_month(months_train)
    train_of = {month_label(m): r for m, r in zip(train_labels, train_rows)}
    test_labels, test_rows = group_by_month(months_test)
    test_of = {month_label(m): r for m, r in zip(test_labels, test_rows)}
    R = np.full((len(fm.train_months), len(fm.months)), np.nan)
    seen, models = [], []
    dummy = None
    for i, month in enumerate(fm.train_months):
        seen.append(train_of.get(month, np.empty(0, dtype=int)))
        dummy = _fit_majority(y_train[np.concatenate(seen)], classes)
        models.append(dummy)
        score = check_scoring(dummy, scoring=scorer)
        for j, column in enumerate(fm.months):
            idx = test_of.get(column)
            if idx is not None and len(idx):
                R[i, j] = score_or_nan(score, dummy, take_rows(X_test, idx), y_test[idx])
    majority = dummy.classes_[np.argmax(dummy.class_prior_)]
    return (ForgettingMatrix(R, fm.train_months, fm.months, fm.scoring), to_python(majority),
            models)


def _majority_baseline(runs, splits, features, y, months, scorer, scoring_name):
    """The :class:`BaselineResult` over every split and each split's fitted
    models (one per trained month), or ``(None, None)`` (with a warning) for a
    scorer callable that cannot score a plain ``DummyClassifier``."""
    classes = np.unique(y)
    try:
        per_split = [
            _majority_matrix(runs[k].matrix, y[train], months[train], features(test, k), y[test],
                             months[test], classes, scorer)
            for k, (train, test) in enumerate(splits)
        ]
    except Exception as exc:  # a user's scorer: the strategies' results still stand
        warnings.warn(
            f"The majority-class baseline could not be scored with {scoring_name!r} "
            f"({type(exc).__name__}: {exc}); the comparison has no baseline row.",
            UserWarning, stacklevel=3,
        )
        return None, None
    return (_aggregate_baseline([(fm, majority) for fm, majority, _ in per_split], scoring_name),
            [models for _, _, models in per_split])
