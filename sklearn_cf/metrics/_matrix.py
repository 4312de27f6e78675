"""The forgetting matrix of a fitted ContinualClassifier."""

import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError
from sklearn.metrics import check_scoring

from .._validation import check_months, group_by_month, month_label, take_rows
from ._forgetting import summarize
from ._undefined import undefined_as_nan, undefined_reason

__all__ = ["ForgettingMatrix", "forgetting_matrix", "score_or_nan", "undefined_note"]


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
    :class:`ForgettingMatrix` is scored so. Scores that scikit-learn sets
    to 0 where they are undefined (F1, recall, precision) are NaN only with
    the scorers of :func:`~sklearn_cf.metrics.undefined_as_nan`, which
    :func:`~sklearn_cf.forgetting_matrix` uses for a scoring name.

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
    n_rows : array-like of shape (n_months,) or None, default=None
        The number of evaluation rows of each month (column). A month
        without rows has nothing to score: its cells are NaN but not counted
        as undefined. None: every month had rows.

    Attributes
    ----------
    n_scored : int
        Cells of the months that have evaluation rows.
    n_undefined : int
        Those of them that are NaN: the score is undefined on the month's
        rows (F1 with no positive row and none predicted, ROC-AUC on one
        class...). Every summary leaves them out of its means.

    Examples
    --------
    >>> import numpy as np
    >>> fm = ForgettingMatrix(np.array([[0.9, 0.5], [0.7, 0.8]]), [0, 1], [0, 1], "accuracy")
    >>> fm
    ForgettingMatrix(scoring='accuracy', train_months=[0, 1], months=[0, 1])
    >>> round(fm.summary()["backward_transfer"], 3)
    -0.2
    >>> fm = ForgettingMatrix([[0.8, np.nan], [0.6, np.nan]], [0, 1], [0, 1], "recall")
    >>> fm.n_undefined, fm.summary()["average_accuracy"]  # mean over month 0 alone
    (2, 0.6)
    >>> fm.undefined_note()
    '2 of 4 cells undefined (recall on months with no positive row), left out of the means'
    """

    def __init__(self, R, train_months, months, scoring, n_rows=None):
        self.R = np.asarray(R, dtype=float)
        self.train_months = list(train_months)
        self.months = list(months)
        self.scoring = scoring
        self.n_rows = None if n_rows is None else np.asarray(n_rows, dtype=int)
        if self.n_rows is not None and self.n_rows.shape != (self.R.shape[1],):
            raise ValueError(
                f"n_rows must hold one row count per month: R has {self.R.shape[1]} "
                f"months (columns), n_rows has shape {self.n_rows.shape}."
            )

    def _scored(self):
        """Boolean mask of the cells of months with evaluation rows."""
        n_rows = getattr(self, "n_rows", None)  # None in matrices pickled before it
        if n_rows is None:
            return np.ones(self.R.shape, dtype=bool)
        return np.broadcast_to(n_rows > 0, self.R.shape)

    @property
    def n_scored(self):
        return int(self._scored().sum())

    @property
    def n_undefined(self):
        return int((np.isnan(self.R) & self._scored()).sum())

    def summary(self, baseline=None):
        """Every metric of :mod:`sklearn_cf.metrics` that is defined for ``R``.

        Returns
        -------
        dict
            :func:`~sklearn_cf.metrics.summarize` of ``R`` (NaN cells left
            out of every mean), and ``"n_undefined"``: how many cells were
            undefined (:attr:`n_undefined`).
        """
        out = summarize(self.R, baseline=baseline)
        out["n_undefined"] = self.n_undefined
        return out

    def undefined_note(self):
        """How many cells were undefined, and why, or None when none was.

        Returns
        -------
        str or None
            E.g. ``"3 of 78 cells undefined (f1 on months with no positive
            row and none predicted positive), left out of the means"``.
        """
        return undefined_note(self.n_undefined, self.n_scored, self.scoring)

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


def undefined_note(n_undefined, n_scored, scoring, *, unit="cell", left_out_of="the means"):
    """``"<n> of <total> cells undefined (<why>), left out of the means"``, or
    None when ``n_undefined`` is 0.

    Parameters
    ----------
    n_undefined : int
        Cells where the score is undefined (NaN).
    n_scored : int
        Cells scored in all.
    scoring : str
        The scoring name, to say where it is undefined
        (:func:`~sklearn_cf.metrics.undefined_reason`).
    unit : str, default="cell"
        What was counted, in the singular (an ``s`` makes the plural).
    left_out_of : str, default="the means"
        What the undefined ones were left out of.

    Returns
    -------
    str or None

    Examples
    --------
    >>> from sklearn_cf.metrics import undefined_note
    >>> undefined_note(3, 78, "f1")
    '3 of 78 cells undefined (f1 on months with no positive row and none predicted
     positive), left out of the means'
    >>> undefined_note(0, 78, "f1") is None
    True
    >>> undefined_note(1, 12, "recall", unit="next-month score", left_out_of="the AUT")
    '1 of 12 next-month scores undefined (recall on months with no positive row),
     left out of the AUT'
    """
    if not n_undefined:
        return None
    units = unit if n_scored == 1 else f"{unit}s"
    return (f"{n_undefined} of {n_scored} {units} undefined ({undefined_reason(scoring)}), "
            f"left out of {left_out_of}")


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
        ``i``; NaN where a month has no rows or the score is undefined
        (:attr:`ForgettingMatrix.n_undefined` counts the latter). For a
        scoring name, scores that scikit-learn sets to 0 where undefined
        (F1, recall, precision on a month with no positive row) are NaN
        (:func:`~sklearn_cf.metrics.undefined_as_nan`); a scorer callable
        is used as it is.

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
    ['average_accuracy', 'backward_transfer', 'forgetting', 'learning_accuracy',
     'n_undefined', 'next_month_aut']
    """
    clf, Xt, y, trained, columns, rows_of = _evaluation_layout(estimator, X, y, months)
    scorer = check_scoring(clf, scoring=undefined_as_nan(scoring))
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
    n_rows = [len(rows_of.get(column, ())) for column in columns]
    return ForgettingMatrix(R, trained, columns, _scoring_name(scoring), n_rows=n_rows)


def _num_rows(X):
    return X.shape[0] if hasattr(X, "shape") else len(X)


def _sorts_before(a, b):
    try:
        return bool(a < b)
    except TypeError:
        return False
