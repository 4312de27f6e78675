"""The one place where sklearn_cf touches scikit-learn's private API."""

from sklearn.utils import validation as _validation

__all__ = ["get_feature_names"]


def get_feature_names(X):
    """Column names of a DataFrame-like ``X`` as an object array, else None."""
    return _validation._get_feature_names(X)
