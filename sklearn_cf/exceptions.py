"""Errors raised by sklearn_cf while it trains.

Bad *input* raises the usual ``ValueError``/``TypeError`` before anything
changes. What goes wrong *during* a month (an exception, Ctrl-C, a diverging
loss) rolls that month back and raises; :class:`TrainingDivergedError` is the
error for the last case.
"""

__all__ = ["TrainingDivergedError"]


class TrainingDivergedError(FloatingPointError):
    """A month's training loss or weights became NaN or infinite.

    The month is rolled back before this is raised: the estimator is exactly
    as it was before the call, and the same month can be retried with other
    settings. The message names the month, where it diverged, and the likely
    causes (learning rate, ``reg_lambda``, feature scale).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cf import ContinualClassifier
    >>> from sklearn_cf.exceptions import TrainingDivergedError
    >>> X = np.random.default_rng(0).normal(size=(100, 3)); y = (X[:, 0] > 0).astype(int)
    >>> clf = ContinualClassifier(max_epochs=1, random_state=0).fit(X, y)
    >>> X_huge = np.sign(X) * 3e38  # finite, but the network's sums overflow
    >>> try:
    ...     clf.partial_fit_month(X_huge, y)
    ... except TrainingDivergedError as exc:
    ...     print(type(exc).__name__, clf.months_seen_)
    TrainingDivergedError [0]
    """
