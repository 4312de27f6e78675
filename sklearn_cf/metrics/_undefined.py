"""Scores that are NaN, not 0, where they are undefined.

scikit-learn's precision, recall, F1 and Jaccard scorers answer 0 (with a
warning) where their denominator is 0: recall on rows without a positive
one, precision when nothing is predicted positive. A month scored 0 for
holding no positive row looks like a month the model failed, and pulls
every mean over months down. Average precision answers 0 on rows without a
positive one too. The scorers here give NaN in those cases, which every
summary of :mod:`sklearn_cf.metrics` leaves out of its means.
"""

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    f1_score,
    jaccard_score,
    make_scorer,
    precision_score,
    recall_score,
)

__all__ = ["undefined_as_nan", "undefined_reason"]

# The scorer names scikit-learn builds from these metrics (sklearn/metrics/
# _scorer.py): "<metric>" with average="binary", "<metric>_<average>" with
# pos_label=None. Each takes zero_division=np.nan (scikit-learn >= 1.3).
_ZERO_DIVISION_METRICS = {
    "precision": precision_score,
    "recall": recall_score,
    "f1": f1_score,
}
_AVERAGES = ("macro", "micro", "samples", "weighted")


def _jaccard_or_nan(y_true, y_pred, *, pos_label=1, **kwargs):
    """Binary Jaccard; NaN with neither a positive row nor a row predicted
    positive (scikit-learn's jaccard_score takes zero_division 0 or 1 only)."""
    if not (np.any(np.asarray(y_true) == pos_label) or np.any(np.asarray(y_pred) == pos_label)):
        return float("nan")
    return jaccard_score(y_true, y_pred, pos_label=pos_label, **kwargs)


def _average_precision_or_nan(y_true, y_score, **kwargs):
    """Average precision; NaN on rows of a single class (it is 0 without a
    positive row and 1 without a negative one, whatever the ranking)."""
    if len(np.unique(np.asarray(y_true))) < 2:
        return float("nan")
    return average_precision_score(y_true, y_score, **kwargs)


def _zero_division_metric(name):
    """``(metric, kwargs)`` of a zero-division scorer name, or None."""
    metric, _, average = name.partition("_")
    if metric not in _ZERO_DIVISION_METRICS or (average and average not in _AVERAGES):
        return None
    kwargs = {"pos_label": None, "average": average} if average else {"average": "binary"}
    return _ZERO_DIVISION_METRICS[metric], kwargs


def undefined_as_nan(scoring):
    """The scorer of a scoring name, NaN where that score is undefined.

    Every forgetting matrix, comparison, honest tuning and update of this
    package scores through it, so that a month on which a score is
    undefined is left out of the means rather than counted as 0.

    Parameters
    ----------
    scoring : str or callable
        A scikit-learn scorer name. A callable (your own scorer) is returned
        unchanged: what it answers on such a month is up to it.

    Returns
    -------
    str or callable
        For ``precision``, ``recall`` and ``f1`` and their ``_macro``,
        ``_micro``, ``_samples`` and ``_weighted`` variants: scikit-learn's
        scorer with ``zero_division=np.nan``, without a warning. For
        ``jaccard``: NaN where it is undefined (scikit-learn's
        ``jaccard_score`` offers ``zero_division`` 0 or 1 only). For
        ``average_precision``: NaN on rows of a single class.
        Any other name is returned as is: scikit-learn's ``roc_auc`` is
        already NaN on rows of one class (and :func:`score_or_nan` makes
        it so without a warning); ``accuracy``, ``balanced_accuracy`` and
        ``neg_log_loss`` are defined on any non-empty rows. A scorer built
        here carries the name in ``scorer.name``.

    Notes
    -----
    With ``TP``, ``FP``, ``FN`` the true positives, false positives and
    false negatives of the rows, scikit-learn defines

    * recall ``TP / (TP + FN)``: undefined with no positive row;
    * precision ``TP / (TP + FP)``: undefined when no row is predicted
      positive;
    * F1 ``2 TP / (2 TP + FP + FN)`` and Jaccard ``TP / (TP + FP + FN)``:
      undefined only when there is neither a positive row nor a row
      predicted positive. On a month without a positive row, a model that
      raises false alarms scores 0, one that flags nothing scores NaN.

    An averaged variant (``f1_macro``...) averages the classes whose score
    is defined, and is NaN only when none is. Over the labels present in
    the rows or the predictions, as scorers take them, the F1 and Jaccard
    of every class are defined, so only ``precision_*`` and ``recall_*``
    leave classes out. Left as scikit-learn answers them: the
    ``jaccard_macro``, ``_micro`` and ``_weighted`` scorers (defined on any
    rows, as above), ``jaccard_samples`` (0 for a sample with no label
    true or predicted) and ``matthews_corrcoef`` (0 where undefined; no
    ``zero_division`` in scikit-learn).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.dummy import DummyClassifier
    >>> from sklearn_cf.metrics import undefined_as_nan
    >>> X, y = np.zeros((4, 1)), np.array([0, 0, 0, 1])
    >>> model = DummyClassifier().fit(X, y)          # always answers 0
    >>> f1 = undefined_as_nan("f1")
    >>> f1.name, f1(model, X[:3], y[:3])             # no positive row, none flagged
    ('f1', nan)
    >>> f1(model, X, y)                              # one positive row, missed
    0.0
    >>> undefined_as_nan("accuracy")
    'accuracy'
    """
    if not isinstance(scoring, str):
        return scoring
    found = _zero_division_metric(scoring)
    if found is not None:
        metric, kwargs = found
        scorer = make_scorer(metric, zero_division=np.nan, **kwargs)
    elif scoring == "jaccard":
        scorer = make_scorer(_jaccard_or_nan, average="binary")
    elif scoring == "average_precision":
        scorer = make_scorer(_average_precision_or_nan,
                             response_method=("decision_function", "predict_proba"))
    else:
        return scoring
    scorer.name = scoring
    return scorer


def undefined_reason(scoring):
    """Where a score is undefined, in a few words (for notes and reports).

    Parameters
    ----------
    scoring : str
        A scoring name, as :func:`resolve_scoring` returns it.

    Returns
    -------
    str

    Examples
    --------
    >>> from sklearn_cf.metrics import undefined_reason
    >>> undefined_reason("recall")
    'recall on months with no positive row'
    >>> undefined_reason("roc_auc")
    'roc_auc on months whose held-out rows hold one class'
    """
    name = str(scoring)
    metric = name.partition("_")[0]
    if metric == "recall":
        return f"{name} on months with no positive row"
    if metric == "precision":
        return f"{name} on months where no row is predicted positive"
    if metric in ("f1", "jaccard"):
        return f"{name} on months with no positive row and none predicted positive"
    if name.startswith(("roc_auc", "average_precision", "tpr_at_fpr")):
        return f"{name} on months whose held-out rows hold one class"
    return f"{name} undefined on those months' held-out rows"
