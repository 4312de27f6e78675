"""A scorer that puts the forgetting matrix inside sklearn's search tools."""

import numpy as np
from sklearn.metrics import make_scorer, roc_curve
from sklearn.utils.metadata_routing import MetadataRequest

from ._forgetting import (
    average_accuracy,
    backward_transfer,
    forgetting,
    learning_accuracy,
    next_month_aut,
)
from ._matrix import forgetting_matrix

__all__ = ["make_forgetting_scorer", "tpr_at_fpr", "SUMMARY_KEYS"]

#: The keys every forgetting scorer returns, in order. Every one is "higher
#: is better", as ``GridSearchCV`` ranks each scorer key and picks ``refit``'s
#: best that way: forgetting, where lower is better, is returned negated as
#: ``neg_forgetting`` (as sklearn returns ``neg_log_loss``).
SUMMARY_KEYS = (
    "average_accuracy",
    "backward_transfer",
    "neg_forgetting",
    "learning_accuracy",
    "next_month_aut",
)


def _neg_forgetting(R):
    return 0.0 - forgetting(R)  # 0.0 - x: no -0.0 when nothing is forgotten


_SUMMARIES = dict(
    zip(SUMMARY_KEYS, [average_accuracy, backward_transfer, _neg_forgetting,
                       learning_accuracy, next_month_aut])
)

_ROUTING_HINT = (
    "The forgetting scorer needs each test row's month. Turn on metadata routing "
    "with one line, sklearn.set_config(enable_metadata_routing=True), and pass "
    "months to fit (e.g. GridSearchCV(...).fit(X, y, months=months)); or, without "
    "routing, keep the months in a DataFrame column and use "
    "make_forgetting_scorer(month_column=...)."
)


def _defined_or_nan(metric, R):
    try:
        return float(metric(R))
    except ValueError:
        return np.nan


class ForgettingScorer:
    """Callable ``scorer(estimator, X, y, months=...) -> dict``; see
    :func:`make_forgetting_scorer`."""

    def __init__(self, scoring="accuracy", include_matrix=False, month_column=None):
        self.scoring = scoring
        self.include_matrix = include_matrix
        self.month_column = month_column

    def get_metadata_routing(self):
        """Request ``months`` for scoring, so routing delivers it."""
        request = MetadataRequest(owner=type(self).__name__)
        request.score.add_request(param="months", alias=True)
        return request

    def __call__(self, estimator, X, y, months=None, **kwargs):
        if kwargs:
            raise TypeError(f"Unexpected scoring parameters: {sorted(kwargs)}.")
        if months is None and self.month_column is not None:
            if not hasattr(X, "columns") or self.month_column not in X.columns:
                raise ValueError(
                    f"month_column={self.month_column!r} is not a column of X; "
                    "pass X as a DataFrame that holds each row's month."
                )
            months = X[self.month_column].to_numpy()
        if months is None:
            raise ValueError(_ROUTING_HINT)
        R = forgetting_matrix(estimator, X, y, months, scoring=self.scoring).R
        scores = {key: _defined_or_nan(fn, R) for key, fn in _SUMMARIES.items()}
        if self.include_matrix:
            for i in range(R.shape[0]):
                for j in range(R.shape[1]):
                    scores[f"R_{i}_{j}"] = float(R[i, j])
        return scores

    def __repr__(self):
        return (
            f"make_forgetting_scorer(scoring={self.scoring!r}, "
            f"include_matrix={self.include_matrix}, month_column={self.month_column!r})"
        )


def make_forgetting_scorer(scoring="accuracy", include_matrix=False, month_column=None):
    """A multi-metric scorer reporting how much a candidate forgets.

    For each cross-validation split it builds the forgetting matrix of the
    fitted candidate on the test rows (one fit, scored through its
    per-month snapshots) and returns its summaries.

    Parameters
    ----------
    scoring : str or callable, default="accuracy"
        What fills the matrix: any sklearn scorer name ("accuracy",
        "roc_auc", "f1", "balanced_accuracy", ...) or scorer callable such
        as :func:`tpr_at_fpr`.
    include_matrix : bool, default=False
        Also return every cell as ``R_i_j`` (trained through month i,
        scored on month j), so ``cv_results_`` holds the matrices.
    month_column : str, default=None
        Without metadata routing: the column of a DataFrame ``X`` holding
        each row's month (the estimator must drop it, e.g. with a
        ``ColumnTransformer``). With routing, months arrive as metadata.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y, months=None) -> dict`` with keys
        ``average_accuracy``, ``backward_transfer``, ``neg_forgetting``,
        ``learning_accuracy``, ``next_month_aut`` (see
        :data:`SUMMARY_KEYS`; the values use ``scoring``), NaN where
        undefined.

    Notes
    -----
    Every key is "higher is better", because ``GridSearchCV`` ranks every
    scorer key that way and ``refit`` picks the highest: ``neg_forgetting``
    is ``-forgetting(R)`` (:func:`~sklearn_cf.metrics.forgetting`, the mean
    drop from the best earlier score to the final one), so
    ``refit="neg_forgetting"`` picks the candidate that forgets least.
    ``backward_transfer`` is higher-is-better already (negative values mean
    forgetting). The other keys are those of
    :func:`~sklearn_cf.metrics.summarize`.

    Examples
    --------
    >>> import sklearn
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sklearn_cf import ContinualClassifier, SequentialSplit, make_forgetting_scorer
    >>> from sklearn_cf.datasets import make_monthly_drift
    >>> X, y, months = make_monthly_drift(n_months=3, n_samples_per_month=200, random_state=0)
    >>> with sklearn.config_context(enable_metadata_routing=True):
    ...     search = GridSearchCV(
    ...         ContinualClassifier(strategy="replay", max_epochs=2, random_state=0
    ...                             ).set_fit_request(months=True),
    ...         {"rehearsal_ratio": [0.25, 0.5]},
    ...         cv=SequentialSplit(n_splits=2, random_state=0),
    ...         scoring=make_forgetting_scorer(),
    ...         refit="average_accuracy",
    ...     ).fit(X, y, months=months)
    >>> sorted(k for k in search.cv_results_ if k.startswith("mean_test"))
    ['mean_test_average_accuracy', 'mean_test_backward_transfer', 'mean_test_learning_accuracy', 'mean_test_neg_forgetting', 'mean_test_next_month_aut']
    """
    return ForgettingScorer(scoring, include_matrix, month_column)


def _tpr_at_fpr_score(y_true, y_score, *, fpr, pos_label=None):
    labels = np.unique(y_true)
    if len(labels) != 2:
        raise ValueError("TPR at a fixed FPR needs both classes in y_true.")
    if pos_label is None:
        pos_label = labels[-1]  # the column sklearn's scorer hands over: classes_[1]
    false_pos, true_pos, _ = roc_curve(y_true, y_score, pos_label=pos_label)
    # The ROC curve is piecewise linear between thresholds: interpolate.
    return float(np.interp(fpr, false_pos, true_pos))


def tpr_at_fpr(fpr=0.001):
    """Scorer: true-positive rate at a fixed false-positive rate.

    The detection metric of malware work: how much of the positive class
    is caught while at most ``fpr`` of the negatives are flagged. Binary
    problems; the positive class is the larger label (``classes_[1]``).

    Parameters
    ----------
    fpr : float in (0, 1), default=0.001

    Returns
    -------
    scorer : callable ``scorer(estimator, X, y) -> float``

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> X = np.arange(20.0).reshape(-1, 1); y = (X[:, 0] > 9).astype(int)
    >>> tpr_at_fpr(0.1)(LogisticRegression().fit(X, y), X, y)
    1.0
    """
    if not 0 < fpr < 1:
        raise ValueError(f"fpr must be in (0, 1), got {fpr!r}.")
    scorer = make_scorer(
        _tpr_at_fpr_score,
        response_method=("decision_function", "predict_proba"),
        fpr=fpr,
    )
    scorer.name = f"tpr_at_fpr({fpr})"
    return scorer
