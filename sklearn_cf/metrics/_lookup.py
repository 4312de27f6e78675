"""From a scoring name to the scorer that fills a forgetting matrix."""

import difflib

from sklearn.metrics import get_scorer, get_scorer_names

from ._default import default_scoring
from ._scorer import tpr_at_fpr
from ._undefined import undefined_as_nan

__all__ = ["resolve_scoring"]


def resolve_scoring(scoring, y=None):
    """Turn a scoring name into ``(scorer, name)``, checking it early.

    Parameters
    ----------
    scoring : str or callable
        Any sklearn scorer name (``"accuracy"``, ``"roc_auc"``,
        ``"balanced_accuracy"``...), ``"tpr_at_fpr:FPR"`` for
        :func:`sklearn_cf.tpr_at_fpr` (``"tpr_at_fpr"`` alone uses 0.001),
        a scorer callable ``scorer(estimator, X, y)``, or ``"auto"``: the
        scoring :func:`sklearn_cf.metrics.default_scoring` chooses for ``y``.
    y : array-like of shape (n_samples,) or None, default=None
        The whole target; needed for ``"auto"`` only.

    Returns
    -------
    scorer : str or callable
        What :func:`sklearn_cf.forgetting_matrix` accepts: for a score that
        can be undefined on a month (``f1``, ``precision``, ``recall``,
        ``jaccard`` and their averaged variants, ``average_precision``), the
        scorer of :func:`~sklearn_cf.metrics.undefined_as_nan`, NaN there
        rather than 0; for other names the name itself. A callable is
        returned unchanged.
    name : str
        A display name.

    Examples
    --------
    >>> from sklearn_cf.metrics import resolve_scoring
    >>> resolve_scoring("accuracy")
    ('accuracy', 'accuracy')
    >>> resolve_scoring("f1")[0]  # NaN, not 0, on a month with no positive row
    make_scorer(f1_score, response_method='predict', zero_division=nan, average=binary)
    >>> resolve_scoring("tpr_at_fpr:0.01")[1]
    'tpr_at_fpr:0.01'
    >>> resolve_scoring("auto", y=[0] * 88 + [1] * 12)
    ('roc_auc', 'roc_auc')
    >>> resolve_scoring("acuracy")
    Traceback (most recent call last):
    ...
    ValueError: Unknown scoring 'acuracy'. ... Did you mean 'accuracy'?
    """
    if callable(scoring):
        return scoring, getattr(scoring, "name", None) or type(scoring).__name__
    if not isinstance(scoring, str):
        raise ValueError(f"scoring must be a scorer name or callable, got {scoring!r}.")
    if scoring == "auto":
        if y is None:
            raise ValueError(
                "scoring='auto' is chosen from the target: pass y, or call "
                "sklearn_cf.metrics.default_scoring(y) first."
            )
        return resolve_scoring(default_scoring(y)[0])
    name, sep, arg = scoring.partition(":")
    if name == "tpr_at_fpr":
        try:
            fpr = float(arg) if sep else 0.001
        except ValueError:
            raise ValueError(
                f"scoring={scoring!r}: the false-positive rate after 'tpr_at_fpr:' "
                "must be a number, e.g. tpr_at_fpr:0.001."
            ) from None
        if not 0 < fpr < 1:
            raise ValueError(f"scoring={scoring!r}: the false-positive rate must be in (0, 1).")
        return tpr_at_fpr(fpr), f"tpr_at_fpr:{fpr:g}"
    try:
        get_scorer(scoring)
    except ValueError:
        names = sorted(get_scorer_names()) + ["tpr_at_fpr:FPR"]
        close = [n for n in names if n.startswith(scoring)][:1] or difflib.get_close_matches(
            scoring, names, n=1, cutoff=0.5
        )
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"Unknown scoring {scoring!r}. Use a scikit-learn scorer name (e.g. "
            f"accuracy, balanced_accuracy, roc_auc, f1), tpr_at_fpr:0.001 or auto.{hint}"
        ) from None
    return undefined_as_nan(scoring), scoring

