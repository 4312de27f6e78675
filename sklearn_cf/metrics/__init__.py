"""Metrics for continual (monthly) training.

Summaries of a forgetting matrix ``R`` (``R[i, j]`` = score on month ``j``
after training through month ``i``).
"""

from ._forgetting import (
    average_accuracy,
    backward_transfer,
    forgetting,
    forward_transfer,
    learning_accuracy,
    next_month_aut,
    summarize,
)

__all__ = [
    "average_accuracy",
    "backward_transfer",
    "forgetting",
    "forward_transfer",
    "learning_accuracy",
    "next_month_aut",
    "summarize",
]
