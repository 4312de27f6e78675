"""The gradient-boosting reference: what a team that retrains a boosted model
monthly on its history would score (:class:`ReferenceResult`).

After each month ``t``, scikit-learn's ``HistGradientBoostingClassifier``
(default parameters, ``early_stopping=False`` so that every fit is
deterministic, seeded) is fitted on the training rows of every month so far,
or of the last ``window`` months, and scored with the comparison's scorer on
the same held-out rows as the strategies. A row of the table beside the
majority-class baseline: never a strategy, never shipped.
"""

import time
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import check_scoring
from threadpoolctl import threadpool_limits

from .._validation import group_by_month, month_label, take_rows
from ..metrics import ForgettingMatrix, score_or_nan
from ._baseline import _fit_majority

__all__ = ["REFERENCE_NAME", "ReferenceResult", "reference_name"]

#: The table's name for the gradient-boosting reference retrained on all
#: history; no strategy spec can take it, since specs hold no spaces.
REFERENCE_NAME = "gradient boosting"


def reference_name(window=None):
    """The table's name of the reference: ``"gradient boosting"``, or with a
    window ``"gradient boosting (last 3 months)"``.

    Examples
    --------
    >>> from sklearn_cf.compare import reference_name
    >>> reference_name(), reference_name(3)
    ('gradient boosting', 'gradient boosting (last 3 months)')
    """
    if window is None:
        return REFERENCE_NAME
    return f"{REFERENCE_NAME} (last {window} month{'s' if window != 1 else ''})"


@dataclass
class ReferenceResult:
    """The gradient-boosting reference, averaged over the splits.

    Attributes
    ----------
    name : str
        Its row in the table, see :func:`reference_name`.
    window : int or None
        Months of history each fit uses; None: all.
    matrix : ForgettingMatrix
        ``R`` averaged over the splits (NaN-aware): row ``i`` is the model
        fitted after month ``train_months[i]``.
    matrices : list of ForgettingMatrix
        One per split.
    summary : dict of str to float
        As :attr:`StrategyResult.summary`.
    seconds : float
        Fitting seconds summed over months, mean over splits (an untimed
        warm-up fit comes first).
    seconds_per_month : list of float
    seconds_vs_naive : float or None
    gap_to_joint : float or None
    deployed_per_split, retention_per_split, draws :
        As :class:`StrategyResult`'s, for the intervals.
    """

    name: str
    window: object
    matrix: ForgettingMatrix
    matrices: list
    summary: dict
    seconds: float
    seconds_per_month: list
    seconds_vs_naive: float = None
    gap_to_joint: float = None
    deployed_per_split: list = None
    retention_per_split: list = None
    draws: dict = None


class _AllClasses(ClassifierMixin, BaseEstimator):
    """A fitted classifier seen with every class of the stream: its
    ``predict_proba`` has one column per class (0 for a class it never saw),
    as the strategies' have, so that a scorer finds the same columns."""

    def __init__(self, model, classes):
        self.model = model
        self.classes = classes

    @property
    def classes_(self):
        return self.classes

    def fit(self, X, y):
        """Fit the wrapped model (what a scorer checks for; the comparison
        fits it before wrapping)."""
        self.model.fit(X, y)
        return self

    def __sklearn_is_fitted__(self):
        return True

    def predict_proba(self, X):
        own = self.model.predict_proba(X)
        out = np.zeros((own.shape[0], len(self.classes)))
        out[:, np.searchsorted(self.classes, self.model.classes_)] = own
        return out

    def predict(self, X):
        return self.classes[self.predict_proba(X).argmax(axis=1)]


def _fit_boosting(X, y, classes, random_state):
    """HGB on ``X, y``; the majority-class prior while a single class is seen
    (boosting needs two), as the baseline answers."""
    if len(np.unique(y)) < 2:
        return _fit_majority(y, classes)
    model = HistGradientBoostingClassifier(early_stopping=False, random_state=random_state)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        model.fit(X, y)
    return _AllClasses(model, classes)


def _warm_up(X, y, classes, random_state):
    """One untimed fit on a few rows: the first fit in a process pays for
    OpenMP's thread pool, which no month should be charged."""
    n = min(len(y), 64)
    try:
        _fit_boosting(take_rows(X, np.arange(n)), y[:n], classes, random_state)
    except Exception:  # noqa: BLE001 - untimed warm-up; the timed fits report errors
        pass


def _reference_matrix(fm, X_train, y_train, months_train, X_test, y_test, months_test,
                      classes, scorer, window, random_state):
    """One split's forgetting matrix of the reference, its seconds per month and
    the fitted models (one per trained month)."""
    train_labels, train_rows = group_by_month(months_train)
    train_of = {month_label(m): r for m, r in zip(train_labels, train_rows)}
    test_labels, test_rows = group_by_month(months_test)
    test_of = {month_label(m): r for m, r in zip(test_labels, test_rows)}
    R = np.full((len(fm.train_months), len(fm.months)), np.nan)
    seen, seconds, models = [], [], []
    for i, month in enumerate(fm.train_months):
        seen.append(train_of.get(month, np.empty(0, dtype=int)))
        rows = np.concatenate(seen if window is None else seen[-window:])
        start = time.perf_counter()
        model = _fit_boosting(take_rows(X_train, rows), y_train[rows], classes, random_state)
        seconds.append(time.perf_counter() - start)
        models.append(model)
        score = check_scoring(model, scoring=scorer)
        for j, column in enumerate(fm.months):
            idx = test_of.get(column)
            if idx is not None and len(idx):
                R[i, j] = score_or_nan(score, model, take_rows(X_test, idx), y_test[idx])
    return ForgettingMatrix(R, fm.train_months, fm.months, fm.scoring), seconds, models


def _boosting_threads():
    """One OpenMP thread for boosting's fits and predictions (see
    :func:`_boosting_reference`)."""
    return threadpool_limits(limits=1, user_api="openmp")


def _boosting_reference(runs, splits, features, y, months, scorer, scoring_name, window,
                        random_state):
    """The :class:`ReferenceResult` over every split and each split's fitted
    models, or ``(None, None)`` (with a warning) when the scorer cannot score
    it.

    Boosting runs on one OpenMP thread: OpenMP's default, one per logical
    CPU, made a fit 10 to 15 times slower on a busy 2-core machine (its
    threads wait for each other), and one thread keeps its seconds
    comparable from run to run.
    """
    with _boosting_threads():
        return _boosting_reference_fits(runs, splits, features, y, months, scorer,
                                        scoring_name, window, random_state)


def _boosting_reference_fits(runs, splits, features, y, months, scorer, scoring_name, window,
                             random_state):
    from ._results import _mean_matrix, _mean_summary, _per_split

    classes = np.unique(y)
    per_split = []
    try:
        for k, (train, test) in enumerate(splits):
            X_train = features(train, k)
            if k == 0:
                _warm_up(X_train, y[train], classes, random_state)
            per_split.append(_reference_matrix(
                runs[k].matrix, X_train, y[train], months[train], features(test, k), y[test],
                months[test], classes, scorer, window, random_state))
    except Exception as exc:  # a user's scorer: the strategies' results still stand
        warnings.warn(
            f"The gradient-boosting reference could not be scored with {scoring_name!r} "
            f"({type(exc).__name__}: {exc}); the comparison has no reference row.",
            UserWarning, stacklevel=3,
        )
        return None, None
    matrices = [fm for fm, _, _ in per_split]
    seconds_per_month = np.mean([s for _, s, _ in per_split], axis=0)
    result = ReferenceResult(
        name=reference_name(window), window=window,
        matrix=_mean_matrix(matrices, scoring_name), matrices=matrices,
        summary=_mean_summary(matrices), seconds=float(seconds_per_month.sum()),
        seconds_per_month=seconds_per_month.tolist(),
    )
    return _per_split(result, matrices), [models for _, _, models in per_split]
