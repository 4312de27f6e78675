"""Cross-validation and tuning for continual (monthly) training.

* :class:`SequentialSplit`: hold out part of every month, for sklearn's CV
  tools;
* :func:`honest_tuning`: choose hyperparameters on past months only and
  score the choice on later months, beside the oracle that chooses on them
  (:class:`HonestTuningResult`; :func:`tuning_cutoffs` says when choices
  are made, :func:`deployed_scores` what each month scores).
"""

from ._honest import HonestTuningResult, deployed_scores, honest_tuning, tuning_cutoffs
from ._split import SequentialSplit

__all__ = ["HonestTuningResult", "SequentialSplit", "deployed_scores", "honest_tuning",
           "tuning_cutoffs"]
