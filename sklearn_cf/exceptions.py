"""Errors raised by sklearn_cf while it trains.

Bad *input* raises the usual ``ValueError``/``TypeError`` before anything
changes. What goes wrong *during* a month (an exception, Ctrl-C, a diverging
loss) rolls that month back and raises; :class:`TrainingDivergedError` is the
error for the last case.
"""

__all__ = ["StoreLockedError", "TrainingDivergedError"]


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


class StoreLockedError(RuntimeError):
    """Another process holds a model store's writer lock.

    A model store (:class:`sklearn_cf.store.ModelStore`) takes one writer at
    a time: ``sklearn-cf update`` holds an OS lock on the store's ``LOCK``
    file from reading the current generation to committing the next. A
    second writer waits at most its ``wait`` seconds (``--wait``), then
    raises this and changes nothing; ``sklearn-cf`` exits with status 4.

    Attributes
    ----------
    path : str
        The lock file.
    holder : str
        Who holds it (process id, host, user, since when, command line).
    waited : float
        Seconds waited.

    Examples
    --------
    >>> from sklearn_cf.exceptions import StoreLockedError
    >>> print(StoreLockedError("m/LOCK", "process 12 on host", 0))  # doctest: +NORMALIZE_WHITESPACE
    The model store is being written by process 12 on host: its lock m/LOCK is held.
    Nothing was changed. Run again when it is done, or give --wait SECONDS to wait
    for it.
    """

    def __init__(self, path, holder, waited):
        self.path, self.holder, self.waited = path, holder, waited
        waited_text = f" after waiting {waited:g} s" if waited else ""
        super().__init__(
            f"The model store is being written by {holder}: its lock {path} is held"
            f"{waited_text}. Nothing was changed. Run again when it is done, or give "
            "--wait SECONDS to wait for it."
        )
