"""Metrics for continual (monthly) training.

Summaries of a forgetting matrix ``R`` (``R[i, j]`` = score on month ``j``
after training through month ``i``), and :func:`default_scoring`, the score
that fills it when none is chosen.
"""

from ._default import default_scoring

from ._forgetting import (
    average_accuracy,
    backward_transfer,
    forgetting,
    forward_transfer,
    learning_accuracy,
    next_month_aut,
    summarize,
)
from ._matrix import ForgettingMatrix, forgetting_matrix
from ._scorer import SUMMARY_KEYS, make_forgetting_scorer, tpr_at_fpr

__all__ = [
    "ForgettingMatrix",
    "default_scoring",
    "SUMMARY_KEYS",
    "forgetting_matrix",
    "make_forgetting_scorer",
    "tpr_at_fpr",
    "average_accuracy",
    "backward_transfer",
    "forgetting",
    "forward_transfer",
    "learning_accuracy",
    "next_month_aut",
    "summarize",
]
