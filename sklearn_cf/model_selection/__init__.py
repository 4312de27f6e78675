"""Cross-validation and tuning for continual (monthly) training.

* :class:`SequentialSplit`: hold out part of every month, for sklearn's CV
  tools;
* :func:`honest_tuning`: choose hyperparameters on past months only and
  score the choice on later months, beside the oracle that chooses on them
  (:class:`HonestTuningResult`; :func:`tuning_cutoffs` says when choices
  are made).
"""

from ._honest import HonestTuningResult, honest_tuning, tuning_cutoffs
from ._split import SequentialSplit

__all__ = ["HonestTuningResult", "SequentialSplit", "honest_tuning", "tuning_cutoffs"]
