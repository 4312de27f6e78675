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

__all__ = ["DETECTION_KEYS", "SUMMARY_KEYS", "make_detection_scorer", "make_forgetting_scorer",
           "tpr_at_fpr"]

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
        as :func:`tpr_at_fpr`. A cell where the score is undefined (F1 on a
        month with no positive row and none predicted, ROC-AUC on one class)
        is NaN, left out of every summary
        (:func:`~sklearn_cf.metrics.undefined_as_nan`).
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
    if len(labels) < 2:
        return float("nan")  # no positive, or no negative, row: undefined
    if len(labels) > 2:
        raise ValueError(
            f"TPR at a fixed FPR is binary, but y_true holds {len(labels)} classes; "
            "use e.g. balanced_accuracy or roc_auc_ovr for a multiclass target."
        )
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
        NaN on rows of a single class (no positive row, or no negative row
        to set the false-positive rate on), where the rate is undefined.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> X = np.arange(20.0).reshape(-1, 1); y = (X[:, 0] > 9).astype(int)
    >>> model = LogisticRegression().fit(X, y)
    >>> tpr_at_fpr(0.1)(model, X, y)
    1.0
    >>> tpr_at_fpr(0.1)(model, X[:10], y[:10])  # no positive row
    nan
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


#: The keys a detection scorer returns (``neg_worst_group_forgetting`` only
#: when it gets each row's group). Higher is better for each, as
#: ``GridSearchCV`` ranks them: rates where lower is better are negated.
DETECTION_KEYS = (
    "prospective_tpr",
    "neg_realised_fpr",
    "neg_flip_rate",
    "neg_worst_group_forgetting",
)


class DetectionScorer:
    """Callable ``scorer(estimator, X, y, months=..., groups=...) -> dict``;
    see :func:`make_detection_scorer`."""

    def __init__(self, target_fpr=0.01, pos_label=None, month_column=None, group_column=None):
        self.target_fpr = target_fpr
        self.pos_label = pos_label
        self.month_column = month_column
        self.group_column = group_column

    def get_metadata_routing(self):
        """Request ``months`` and ``groups`` for scoring, so routing delivers them."""
        request = MetadataRequest(owner=type(self).__name__)
        request.score.add_request(param="months", alias=True)
        request.score.add_request(param="groups", alias=True)
        return request

    def _column(self, X, name, what):
        if not hasattr(X, "columns") or name not in X.columns:
            raise ValueError(
                f"{what}={name!r} is not a column of X; pass X as a DataFrame that "
                "holds it."
            )
        return X[name].to_numpy()

    def __call__(self, estimator, X, y, months=None, groups=None, **kwargs):
        from ._detection import worst_group_forgetting
        from ._updates import group_forgetting_matrices, monthly_detection, update_flips

        if kwargs:
            raise TypeError(f"Unexpected scoring parameters: {sorted(kwargs)}.")
        if months is None and self.month_column is not None:
            months = self._column(X, self.month_column, "month_column")
        if groups is None and self.group_column is not None:
            groups = self._column(X, self.group_column, "group_column")
        if months is None:
            raise ValueError(_ROUTING_HINT.replace("forgetting scorer", "detection scorer")
                             .replace("make_forgetting_scorer", "make_detection_scorer"))
        detection = monthly_detection(estimator, X, y, months, self.target_fpr,
                                      pos_label=self.pos_label).summary()
        flips = update_flips(estimator, X, y, months, pos_label=self.pos_label).mean()
        scores = {
            "prospective_tpr": detection["prospective_tpr"],
            "neg_realised_fpr": 0.0 - detection["realised_fpr"],
            "neg_flip_rate": 0.0 - flips,
        }
        if groups is not None:
            matrices = group_forgetting_matrices(estimator, X, y, months, groups)
            scores["neg_worst_group_forgetting"] = 0.0 - worst_group_forgetting(matrices)[1]
        return scores

    def __repr__(self):
        return (
            f"make_detection_scorer(target_fpr={self.target_fpr!r}, "
            f"pos_label={self.pos_label!r}, month_column={self.month_column!r}, "
            f"group_column={self.group_column!r})"
        )


def make_detection_scorer(target_fpr=0.01, *, pos_label=None, month_column=None,
                          group_column=None):
    """A multi-metric scorer of what a monthly update does to a detector.

    For each cross-validation split it scores the fitted candidate's
    per-month snapshots on the test rows and returns:

    * ``prospective_tpr``: mean over months of the TPR at ``target_fpr``,
      the threshold set on the previous month's test rows
      (:func:`~sklearn_cf.metrics.monthly_detection`);
    * ``neg_realised_fpr``: minus the mean FPR that threshold realised;
    * ``neg_flip_rate``: minus the mean negative flip rate of the updates
      (:func:`~sklearn_cf.metrics.update_flips`; with ``pos_label``, only
      malware caught then missed);
    * ``neg_worst_group_forgetting``: minus the forgetting of the group
      forgotten most (:func:`~sklearn_cf.metrics.worst_group_forgetting`),
      only when each row's group reaches the scorer.

    Parameters
    ----------
    target_fpr : float in (0, 1), default=0.01
    pos_label : object, default=None
        The positive (malware) class; None: ``classes_[1]``. Also restricts
        the flips to rows of that class when given.
    month_column, group_column : str, default=None
        Without metadata routing: the columns of a DataFrame ``X`` holding
        each row's month and group (the estimator must drop them). With
        routing, ``months`` and ``groups`` arrive as metadata.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y, months=None, groups=None) -> dict``; every
        key is "higher is better" (:data:`DETECTION_KEYS`).

    Examples
    --------
    >>> import sklearn
    >>> from sklearn.model_selection import cross_validate
    >>> from sklearn_cf import ContinualClassifier, SequentialSplit
    >>> from sklearn_cf.datasets import make_monthly_drift
    >>> from sklearn_cf.metrics import make_detection_scorer
    >>> X, y, months, family = make_monthly_drift(
    ...     n_months=3, n_samples_per_month=200, return_families=True, random_state=0)
    >>> with sklearn.config_context(enable_metadata_routing=True):
    ...     scores = cross_validate(
    ...         ContinualClassifier(max_epochs=1, hidden_units=(8,), random_state=0
    ...                             ).set_fit_request(months=True),
    ...         X, y, cv=SequentialSplit(n_splits=1, random_state=0),
    ...         scoring=make_detection_scorer(target_fpr=0.05),
    ...         params={"months": months, "groups": family})
    >>> sorted(k[len("test_"):] for k in scores if k.startswith("test_"))
    ['neg_flip_rate', 'neg_realised_fpr', 'neg_worst_group_forgetting', 'prospective_tpr']
    """
    if not 0 < target_fpr < 1:
        raise ValueError(f"target_fpr must be in (0, 1), got {target_fpr!r}.")
    return DetectionScorer(target_fpr, pos_label, month_column, group_column)
