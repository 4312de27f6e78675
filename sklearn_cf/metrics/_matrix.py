"""The forgetting matrix of a fitted ContinualClassifier."""

import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError
from sklearn.metrics import check_scoring

from .._validation import check_months, group_by_month, month_label, take_rows
from ._forgetting import summarize

__all__ = ["ForgettingMatrix", "forgetting_matrix", "score_or_nan"]


class _SnapshotView(ClassifierMixin, BaseEstimator):
    """The classifier as it was after training through ``month``, seen by a
    sklearn scorer as an ordinary fitted classifier."""

    def __init__(self, estimator, month):
        self.estimator = estimator
        self.month = month

    @property
    def classes_(self):
        return self.estimator.classes_

    def __sklearn_is_fitted__(self):
        return True

    def predict_proba(self, X):
        return self.estimator.predict_proba_after(X, self.month)

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def _final_classifier(estimator, X):
    """The ContinualClassifier at the end of ``estimator`` and the input it sees."""
    while hasattr(estimator, "steps"):
        if len(estimator.steps) > 1:
            X = estimator[:-1].transform(X)
        estimator = estimator.steps[-1][1]
    if not hasattr(estimator, "predict_proba_after"):
        raise TypeError(
            f"forgetting_matrix needs a ContinualClassifier (or a Pipeline ending in "
            f"one), got {type(estimator).__name__}."
        )
    if not getattr(estimator, "months_seen_", None):
        raise NotFittedError(
            f"This {type(estimator).__name__} is not fitted yet; fit it with months "
            "before computing its forgetting matrix."
        )
    return estimator, X


def score_or_nan(scorer, estimator, X, y):
    """``scorer(estimator, X, y)`` as a float; NaN where it is undefined.

    A month whose rows hold a single class leaves ROC-AUC and friends
    undefined: scikit-learn then warns and returns NaN, or raises
    ``ValueError``; either way the score is NaN here, without a warning. Any
    other error is a real problem (wrong columns, a binary metric on
    multiclass data) and is raised. Every cell of a
    :class:`ForgettingMatrix` is scored so.

    Parameters
    ----------
    scorer : callable
        ``scorer(estimator, X, y)``, e.g. from
        :func:`sklearn.metrics.get_scorer`.
    estimator : fitted estimator
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.dummy import DummyClassifier
    >>> from sklearn.metrics import get_scorer
    >>> from sklearn_cf.metrics import score_or_nan
    >>> X, y = np.zeros((4, 1)), np.array([0, 1, 1, 1])
    >>> model = DummyClassifier().fit(X, y)
    >>> score_or_nan(get_scorer("accuracy"), model, X, y)
    0.75
    >>> score_or_nan(get_scorer("roc_auc"), model, X[1:], y[1:])  # one class
    nan
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=UserWarning)
            return float(scorer(estimator, X, y))
    except ValueError:
        if len(np.unique(y)) < 2:
            return np.nan
        raise


class ForgettingMatrix:
    """Scores of every month after every month of training.

    Parameters
    ----------
    R : ndarray of shape (n_trained, n_months)
        ``R[i, j]`` = score on month ``months[j]`` after training through
        ``train_months[i]``. The first ``n_trained`` columns are the trained
        months in order; later columns are months never trained on.
    train_months : list
    months : list
    scoring : str

    Examples
    --------
    >>> import numpy as np
    >>> fm = ForgettingMatrix(np.array([[0.9, 0.5], [0.7, 0.8]]), [0, 1], [0, 1], "accuracy")
    >>> fm
    ForgettingMatrix(scoring='accuracy', train_months=[0, 1], months=[0, 1])
    >>> round(fm.summary()["backward_transfer"], 3)
    -0.2
    """

    def __init__(self, R, train_months, months, scoring):
        self.R = np.asarray(R, dtype=float)
        self.train_months = list(train_months)
        self.months = list(months)
        self.scoring = scoring

    def summary(self, baseline=None):
        """Every metric of :mod:`sklearn_cf.metrics` that is defined for ``R``."""
        return summarize(self.R, baseline=baseline)

    def to_frame(self):
        """``R`` as a pandas DataFrame: rows = trained through, columns = month."""
        import pandas as pd

        return pd.DataFrame(
            self.R,
            index=pd.Index(self.train_months, name="trained_through"),
            columns=pd.Index(self.months, name="month"),
        )

    def __repr__(self):
        return (
            f"ForgettingMatrix(scoring={self.scoring!r}, train_months={self.train_months}, "
            f"months={self.months})"
        )


def _scoring_name(scoring):
    if isinstance(scoring, str):
        return scoring
    return getattr(scoring, "name", None) or type(scoring).__name__


def _evaluation_layout(estimator, X, y, months):
    """What the snapshots of ``estimator`` are scored on, checked.

    Returns
    -------
    clf : ContinualClassifier
        The classifier at the end of ``estimator``.
    Xt : array-like
        ``X`` as that classifier sees it (after a Pipeline's transforms).
    y : ndarray
    trained : list
        ``clf.months_seen_``: one snapshot each, in order.
    columns : list
        The trained months, then the months of ``months`` never trained.
    rows_of : dict
        Month label to the indices of its rows.
    """
    clf, Xt = _final_classifier(estimator, X)
    y = np.asarray(y)
    months = check_months(months, len(y))
    if len(y) != _num_rows(Xt):
        raise ValueError(f"X has {_num_rows(Xt)} rows but y has {len(y)} labels.")
    labels, rows = group_by_month(months)
    labels = [month_label(m) for m in labels]
    trained = list(clf.months_seen_)
    kept = {s.month for s in clf.snapshots_}
    missing = [m for m in trained if m not in kept]
    if missing:
        raise ValueError(
            f"No snapshot is kept for months {missing[:5]} (max_snapshots="
            f"{clf.max_snapshots}); refit with max_snapshots=None to score every month."
        )
    rows_of = dict(zip(labels, rows))
    future = [m for m in labels if m not in trained]
    early = [m for m in future if _sorts_before(m, trained[-1])]
    if early:
        raise ValueError(
            f"Months {early[:5]} have evaluation rows but were never trained, although "
            f"they come before the last trained month {trained[-1]!r}; were they "
            "left out of fit, or are the month labels of another kind?"
        )
    if not set(labels) & set(trained):
        raise ValueError(
            f"None of the evaluation months {labels[:5]} was trained "
            f"(months_seen_={trained[:5]}...); the month labels must be of the same "
            "kind as those passed to fit."
        )
    return clf, Xt, y, trained, trained + future, rows_of


def forgetting_matrix(estimator, X, y, months, scoring="accuracy"):
    """Score every month's rows with the model as it was after every month.

    Parameters
    ----------
    estimator : ContinualClassifier or Pipeline ending in one
        Fitted with months; its per-month snapshots are scored.
    X : array-like or DataFrame of shape (n_samples, n_features)
        Evaluation rows (typically each month's held-out rows).
    y : array-like of shape (n_samples,)
    months : array-like of shape (n_samples,)
        Month label of each row, of the same kind as those fitted.
    scoring : str or callable, default="accuracy"
        Any sklearn scorer name ("accuracy", "roc_auc", "f1", ...) or scorer
        callable ``scorer(estimator, X, y)``, e.g. :func:`tpr_at_fpr`.

    Returns
    -------
    ForgettingMatrix
        ``R[i, j]`` = score on month ``j`` after training through month
        ``i``; NaN where a month has no rows or the score is undefined.

    Examples
    --------
    >>> from sklearn_cf import ContinualClassifier, forgetting_matrix
    >>> from sklearn_cf.datasets import make_monthly_drift
    >>> X, y, months = make_monthly_drift(n_months=3, n_samples_per_month=200, random_state=0)
    >>> clf = ContinualClassifier(max_epochs=2, random_state=0).fit(X, y, months=months)
    >>> fm = forgetting_matrix(clf, X, y, months)
    >>> fm.R.shape
    (3, 3)
    >>> sorted(fm.summary())
    ['average_accuracy', 'backward_transfer', 'forgetting', 'learning_accuracy', 'next_month_aut']
    """
    clf, Xt, y, trained, columns, rows_of = _evaluation_layout(estimator, X, y, months)
    scorer = check_scoring(clf, scoring=scoring)
    views = [_SnapshotView(clf, month) for month in trained]
    R = np.full((len(trained), len(columns)), np.nan)
    # Month by month: one month's rows (a view when they are contiguous) and
    # one snapshot's outputs on them exist at a time, so X may be a memmap
    # larger than memory.
    for j, column in enumerate(columns):
        idx = rows_of.get(column)
        if idx is None or len(idx) == 0:
            continue
        X_month, y_month = take_rows(Xt, idx), y[idx]
        for i, view in enumerate(views):
            R[i, j] = score_or_nan(scorer, view, X_month, y_month)
        del X_month  # a copied month is freed before the next one is taken
    return ForgettingMatrix(R, trained, columns, _scoring_name(scoring))


def _num_rows(X):
    return X.shape[0] if hasattr(X, "shape") else len(X)


def _sorts_before(a, b):
    try:
        return bool(a < b)
    except TypeError:
        return False
