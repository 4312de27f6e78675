"""Preprocessing of a monthly stream: :class:`FirstMonthScaler`.

A deployed model is frozen to its base month's scaling. A comparison that
holds out part of every month fits one scaler per split, on that split's
training rows of the first month only (``compare_strategies(...,
scale="first-month")``), so the rows a split holds out never shape it;
:func:`~sklearn_cf.datasets.load_stream` (``scale="first-month"``) and the
monthly update use the same scaler. :func:`~sklearn_cf.datasets.resolve_scale`
says which streams need it.
"""

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .._compat import safe_indexing, to_python

__all__ = ["FirstMonthScaler"]


class FirstMonthScaler(TransformerMixin, BaseEstimator):
    """Standardize every feature with the mean and std of the first month's rows.

    A deployed model is frozen to its base month's scaling, so later months
    keep their drift. No labels are used. Fit it on training rows only:
    :func:`~sklearn_cf.compare.compare_strategies` (``scale="first-month"``)
    fits one per split on that split's training rows of its first month, so
    the rows a split holds out never shape the scaling.

    Attributes
    ----------
    month_ : object
        The first (smallest) month label seen in ``fit``.
    n_samples_seen_ : int
        Rows of that month the statistics come from.
    mean_ : ndarray of shape (n_features,)
        Their mean, per feature (float64).
    scale_ : ndarray of shape (n_features,)
        Their standard deviation (``ddof=0``), per feature; 1 for a constant
        column, which is then only centred.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cf.datasets import FirstMonthScaler
    >>> X = np.array([[1.0], [3.0], [10.0], [20.0]])
    >>> scaler = FirstMonthScaler().fit(X, months=[0, 0, 1, 1])
    >>> scaler.month_, scaler.mean_, scaler.scale_
    (0, array([2.]), array([1.]))
    >>> scaler.transform(X).ravel()
    array([-1.,  1.,  8., 18.], dtype=float32)
    """

    def fit(self, X, y=None, months=None):
        """Compute the statistics from the rows of the smallest month label.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Numeric features.
        y : None
            Ignored.
        months : array-like of shape (n_samples,)
            Month label of each row.

        Returns
        -------
        self
        """
        if months is None:
            raise ValueError(
                "FirstMonthScaler.fit needs months=, each row's month, to find the "
                "first month's rows."
            )
        months = np.asarray(getattr(months, "to_numpy", lambda: months)())
        shape = getattr(X, "shape", np.shape(X))
        if len(shape) != 2 or len(months) != shape[0]:
            raise ValueError(
                f"X must be 2-d with one row per month label; got X of shape "
                f"{tuple(shape)} and {len(months)} month labels."
            )
        first = np.unique(months)[0]
        rows = np.asarray(safe_indexing(X, np.flatnonzero(months == first)), dtype=np.float64)
        self.month_ = to_python(first)
        self.n_samples_seen_ = len(rows)
        self.mean_ = rows.mean(axis=0)
        std = rows.std(axis=0)
        std[~(std > 0)] = 1.0
        self.scale_ = std
        return self

    def transform(self, X):
        """Standardize ``X`` with the first month's statistics.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        ndarray or DataFrame of shape (n_samples, n_features), float32
            A DataFrame when ``X`` is one (same columns and index).
        """
        check_is_fitted(self, "mean_")
        values = np.asarray(X)
        if values.ndim != 2 or values.shape[1] != len(self.mean_):
            raise ValueError(
                f"X has shape {values.shape}; FirstMonthScaler was fitted on "
                f"{len(self.mean_)} features."
            )
        out = np.empty(values.shape, dtype=np.float32)
        # In float64, a block at a time: a float32 difference of large values
        # (timestamps, ids) next to their mean would lose every significant
        # digit, and a float64 copy of a large X would double its memory.
        step = max(1, 2**22 // max(1, values.shape[1]))
        for start in range(0, len(values), step):
            block = np.asarray(values[start:start + step], dtype=np.float64)
            out[start:start + step] = (block - self.mean_) / self.scale_
        if hasattr(X, "columns"):
            out = type(X)(out, columns=X.columns, index=X.index)
        return out


