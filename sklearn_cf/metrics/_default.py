"""The score a comparison or an update uses when none is given."""

import numpy as np

__all__ = ["default_scoring"]

# Below this percentage of rows, the rarest class makes plain accuracy
# misleading: always answering the majority class already scores 1 - share.
_RARE_PERCENT = 40


def _percent(count, n):
    """``count / n`` as a percentage: ``"31.0%"``, with more digits when one
    would round to the threshold (``"39.99%"``, never a misleading ``"40.0%"``)."""
    share = count / n
    for digits in range(1, 7):
        text = f"{share:.{digits}%}"
        if float(text[:-1]) != _RARE_PERCENT or 100 * count == _RARE_PERCENT * n:
            return text
    return text  # pragma: no cover - a share within 1e-8 of the threshold


def default_scoring(y):
    """The scoring to use for a target ``y``, and why: ``(name, reason)``.

    Plain accuracy hides a rare class: on a stream with 31% positives, a
    model that always answers "negative" scores 0.69. So, with the
    *minority share* = rows of the least frequent class / all rows:

    * share below 40% and two classes: ``"roc_auc"`` (ranks the positives
      above the negatives; 0.5 for any constant answer);
    * share below 40% and more than two classes: ``"balanced_accuracy"``
      (the mean recall over classes; 1 / n_classes for a constant answer);
    * otherwise: ``"accuracy"``.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        The whole target (every month), before any fitting.

    Returns
    -------
    name : str
        A scikit-learn scorer name.
    reason : str
        A short sentence, ``"<name>, because <why>"``, e.g.
        ``"roc_auc, because the rarest class is 12.0% of rows (below 40%)"``.

    Raises
    ------
    ValueError
        For an empty ``y``.

    Notes
    -----
    The share is compared in integers (``100 * count < 40 * n``), so a
    class of exactly 40% of rows gives accuracy.

    Examples
    --------
    >>> from sklearn_cf.metrics import default_scoring
    >>> default_scoring([0] * 69 + [1] * 31)
    ('roc_auc', 'roc_auc, because the rarest class is 31.0% of rows (below 40%)')
    >>> default_scoring(["a"] * 45 + ["b"] * 45 + ["c"] * 10)[0]
    'balanced_accuracy'
    >>> default_scoring([0] * 60 + [1] * 40)
    ('accuracy', 'accuracy, because the rarest class is 40.0% of rows (40% or more)')
    """
    y = np.asarray(getattr(y, "to_numpy", lambda: y)())
    if y.ndim != 1:
        y = y.ravel()
    if len(y) == 0:
        raise ValueError("Cannot choose a scoring for an empty target: y has no rows.")
    _, counts = np.unique(y, return_counts=True)
    n, rarest = len(y), int(counts.min())
    if len(counts) < 2:
        return "accuracy", "accuracy, because the target has a single class"
    share = _percent(rarest, n)
    below = f"(below {_RARE_PERCENT}%)"
    # In integers, so that exactly 40% is never taken for less.
    if 100 * rarest < _RARE_PERCENT * n:
        if len(counts) == 2:
            return "roc_auc", f"roc_auc, because the rarest class is {share} of rows {below}"
        return ("balanced_accuracy",
                f"balanced_accuracy, because the rarest of {len(counts)} classes is {share} "
                f"of rows {below}")
    return ("accuracy",
            f"accuracy, because the rarest class is {share} of rows ({_RARE_PERCENT}% or more)")
