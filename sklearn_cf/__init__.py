"""Continual (monthly) training of tabular neural networks for scikit-learn.

Public names:

* :class:`ContinualClassifier`: the estimator, updated month by month.
* :func:`fisher_diagonal`: exact per-sample Fisher / Hessian diagonals (EWC).
* :mod:`sklearn_cf.strategies`: the monthly update rules as small objects.
"""

__version__ = "0.1.0.dev0"

from ._classifier import ContinualClassifier, MonthSnapshot
from ._fisher import fisher_diagonal

__all__ = ["ContinualClassifier", "MonthSnapshot", "fisher_diagonal", "__version__"]
