"""The estimator's own wing: :class:`ContinualClassifier` and what it is
made of (strategy wiring, weights, running a month, prediction, the month
transaction), the checkpoint format, and :func:`load`."""

from ._checkpoint import save
from ._classifier import ContinualClassifier, MonthSnapshot
from ._load import load

__all__ = ["ContinualClassifier", "MonthSnapshot", "load", "save"]
