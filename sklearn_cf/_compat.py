"""Where sklearn_cf smooths over its dependencies, in one place each.

* scikit-learn's private API: :func:`safe_indexing`, :func:`get_feature_names`;
* numpy's scalars and warnings: :func:`to_python` (a numpy scalar as the
  Python object it wraps) and :func:`nanmean` (a NaN-aware mean that never
  warns).
"""

import numpy as np
from sklearn.utils import _safe_indexing
from sklearn.utils import validation as _validation

__all__ = ["get_feature_names", "nanmean", "safe_indexing", "to_python"]


def safe_indexing(X, indices):
    """Rows ``indices`` of an array, DataFrame or list."""
    return _safe_indexing(X, indices)


def get_feature_names(X):
    """Column names of a DataFrame-like ``X`` as an object array, else None."""
    return _validation._get_feature_names(X)


def to_python(value):
    """A numpy scalar as the Python object it wraps; anything else as it is.

    What a label or a count read from an array needs before it is printed,
    compared with a user's value, used as a dict key or written as JSON
    (``np.int64(3)`` prints as ``np.int64(3)`` in numpy 2). A datetime64
    becomes what its ``item()`` gives (a ``datetime``, or an int for units
    finer than microseconds); month labels keep theirs, see
    :func:`sklearn_cf._validation.month_label`.

    Examples
    --------
    >>> import numpy as np
    >>> to_python(np.int64(3)), to_python(np.str_("2024-01")), to_python([1])
    (3, '2024-01', [1])
    """
    return value.item() if isinstance(value, np.generic) else value


def nanmean(values):
    """Mean of the non-NaN entries as a Python float; NaN if there are none.

    ``values`` may be nested (it is flattened) and hold None, which counts as
    NaN. Unlike ``np.nanmean`` this never warns "Mean of empty slice".

    Examples
    --------
    >>> nanmean([1.0, float("nan"), 2.0]), nanmean([None, 3]), nanmean([])
    (1.5, 3.0, nan)
    """
    values = np.asarray(values, dtype=float).ravel()
    keep = ~np.isnan(values)
    return float(values[keep].mean()) if keep.any() else float("nan")
