"""The one place where sklearn_cf touches scikit-learn's private API."""

from sklearn.utils import _safe_indexing
from sklearn.utils import validation as _validation

__all__ = ["get_feature_names", "safe_indexing"]


def safe_indexing(X, indices):
    """Rows ``indices`` of an array, DataFrame or list."""
    return _safe_indexing(X, indices)


def get_feature_names(X):
    """Column names of a DataFrame-like ``X`` as an object array, else None."""
    return _validation._get_feature_names(X)
