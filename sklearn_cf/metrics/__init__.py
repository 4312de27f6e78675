"""Metrics for continual (monthly) training.

* Summaries of a forgetting matrix ``R`` (``R[i, j]`` = score on month ``j``
  after training through month ``i``) and :func:`area_under_time`
  (TESSERACT's AUT of any per-month score);
* :func:`default_scoring`, the score that fills ``R`` when none is chosen,
  and :func:`resolve_scoring`, from a scoring name to its scorer;
* detection metrics, pure functions of labels and scores:
  :func:`threshold_at_fpr`, :func:`prospective_tpr_at_fpr` (the threshold
  set on the previous month), :func:`negative_flip_rate`,
  :func:`group_forgetting` and :func:`worst_group_forgetting`; and the same
  applied to a fitted model's snapshots: :func:`monthly_detection`,
  :func:`update_flips`, :func:`group_forgetting_matrices`;
* scorers for sklearn's search tools: :func:`make_forgetting_scorer`,
  :func:`make_detection_scorer`, :func:`tpr_at_fpr`; and
  :func:`score_or_nan`, one score that is NaN where it is undefined (rows
  of a single class), as every cell of a forgetting matrix is;
  :func:`undefined_as_nan`, the scorer of a name that is NaN, not 0, where
  the score is undefined (F1 or recall on a month with no positive row),
  and :func:`undefined_note`, how many cells were left out and why.
"""

from ._default import default_scoring
from ._detection import (
    DetectionRates,
    group_forgetting,
    negative_flip_rate,
    prospective_tpr_at_fpr,
    threshold_at_fpr,
    worst_group_forgetting,
)
from ._forgetting import (
    area_under_time,
    average_accuracy,
    backward_transfer,
    forgetting,
    forward_transfer,
    learning_accuracy,
    next_month_aut,
    summarize,
)
from ._lookup import resolve_scoring
from ._matrix import ForgettingMatrix, forgetting_matrix, score_or_nan, undefined_note
from ._scorer import (
    DETECTION_KEYS,
    SUMMARY_KEYS,
    make_detection_scorer,
    make_forgetting_scorer,
    tpr_at_fpr,
)
from ._undefined import undefined_as_nan, undefined_reason
from ._updates import (
    MonthlyDetection,
    UpdateFlips,
    group_forgetting_matrices,
    monthly_detection,
    update_flips,
)

__all__ = [
    "DETECTION_KEYS",
    "DetectionRates",
    "ForgettingMatrix",
    "MonthlyDetection",
    "SUMMARY_KEYS",
    "UpdateFlips",
    "area_under_time",
    "average_accuracy",
    "backward_transfer",
    "default_scoring",
    "forgetting",
    "forgetting_matrix",
    "forward_transfer",
    "group_forgetting",
    "group_forgetting_matrices",
    "learning_accuracy",
    "make_detection_scorer",
    "make_forgetting_scorer",
    "monthly_detection",
    "negative_flip_rate",
    "next_month_aut",
    "prospective_tpr_at_fpr",
    "resolve_scoring",
    "score_or_nan",
    "summarize",
    "threshold_at_fpr",
    "tpr_at_fpr",
    "undefined_as_nan",
    "undefined_note",
    "undefined_reason",
    "update_flips",
    "worst_group_forgetting",
]
