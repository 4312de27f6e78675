"""Continual (monthly) training of tabular neural networks for scikit-learn.

Public names:

* :class:`ContinualClassifier`: the estimator, updated month by month.
* :func:`fisher_diagonal`: exact per-sample Fisher / Hessian diagonals (EWC).
* :class:`SequentialSplit`: hold out part of every month, for sklearn's CV tools.
* :func:`forgetting_matrix`, :func:`make_forgetting_scorer`: score every month
  after every month of training, alone or inside ``GridSearchCV``.
* :func:`make_detection_scorer`: TPR at a target FPR with the threshold set
  the month before, flips per update and the worst group's forgetting, inside
  ``GridSearchCV`` (the pure functions are in :mod:`sklearn_cf.metrics`).
* :func:`honest_tuning`: choose hyperparameters on past months only and score
  the choice on later months, beside the oracle that chooses on them.
* :mod:`sklearn_cf.strategies`: the monthly update rules as small objects.
* :func:`load`: a model saved by :meth:`ContinualClassifier.save`, or the
  current generation of a model store (:mod:`sklearn_cf.store`, what
  ``sklearn-cf update`` writes).
* :mod:`sklearn_cf.exceptions`: ``TrainingDivergedError``, raised (after the
  month is rolled back) when a month's loss or weights become NaN or
  infinite; ``StoreLockedError``, when another process writes a model store.
"""

from . import exceptions
from ._version import __version__
from ._estimator import ContinualClassifier, MonthSnapshot
from ._fisher import fisher_diagonal
from .metrics import (
    ForgettingMatrix,
    forgetting_matrix,
    make_detection_scorer,
    make_forgetting_scorer,
    tpr_at_fpr,
)
from .model_selection import SequentialSplit, honest_tuning
from .store import load

__all__ = [
    "ContinualClassifier",
    "ForgettingMatrix",
    "MonthSnapshot",
    "SequentialSplit",
    "fisher_diagonal",
    "honest_tuning",
    "load",
    "forgetting_matrix",
    "make_detection_scorer",
    "make_forgetting_scorer",
    "tpr_at_fpr",
    "__version__",
]
