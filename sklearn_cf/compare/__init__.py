"""Compare monthly update strategies on one stream, and say which to ship.

:func:`compare_strategies` fits a :class:`~sklearn_cf.ContinualClassifier`
per strategy on the same :class:`~sklearn_cf.SequentialSplit` splits, builds
each one's forgetting matrix on the held-out rows, and gathers the study's
numbers: the next-month (deployed) score, retention (the final model's
average score), backward transfer, forgetting, learning score, next-month
AUT, training cost, the gap to joint retraining and the cost relative to
naive fine-tuning, with 95% intervals, beside the majority-class baseline
and a gradient-boosting reference. :meth:`Comparison.verdict` turns them
into one sentence. ``sklearn-cf compare`` (:mod:`sklearn_cf.cli`) is a thin wrapper
around this package, and :func:`sklearn_cf.report.write_report` writes it up.
With ``scale="first-month"`` every split's features are standardized by a
:class:`~sklearn_cf.datasets.FirstMonthScaler` (also importable from here)
fitted on that split's training rows of the first month only. The streams
and their scaling are :func:`sklearn_cf.datasets.load_stream` and
:func:`sklearn_cf.datasets.resolve_scale`, re-exported here.

A strategy is given as a *spec* string: a name from
:data:`sklearn_cf.strategies.STRATEGIES`, optionally followed by ``:`` and
comma-separated ``param=value`` overrides of
:class:`~sklearn_cf.ContinualClassifier` parameters, e.g.
``"naive:finetune_lr=1e-4"``, ``"ewc:fisher=hessian,reg_lambda=1000"`` or
``"replay:epoch_size=2000"``.

One concept per module:

* ``_specs``: strategy specs and the constants they use;
* ``_estimators``: from a spec to the classifier that runs it;
* ``_run``: the comparison (``_baseline``: the majority-class baseline;
  ``_boosting``: the gradient-boosting reference; ``_progress``: its
  progress bar; ``_tuning``: honest tuning of each strategy,
  ``tune_months=``);
* ``_bootstrap``: the intervals (a paired bootstrap that weights the months
  and resamples their held-out rows, or the spread across splits);
* ``_results``: what each strategy did; ``_comparison``: the table and the
  verdict.

The scoring lookup is :func:`sklearn_cf.metrics.resolve_scoring`.
"""

from ..datasets import FirstMonthScaler, load_stream, resolve_scale
from ..metrics import resolve_scoring
from ._boosting import REFERENCE_NAME, ReferenceResult, reference_name
from ._comparison import Comparison
from ._estimators import build_estimator

# _add_relative stays importable here: tests build comparisons from hand-made results.
from ._results import BASELINE_NAME, BaselineResult, StrategyResult, _add_relative  # noqa: F401
from ._run import check_comparison, compare_strategies
from ._specs import (
    DEFAULT_REG_LAMBDA,
    DEFAULT_STRATEGIES,
    SPEC_PARAMS,
    StrategySpec,
    parse_hidden_units,
    parse_strategy,
)
from ._tuning import default_tune_grid, parse_tune_grid

__all__ = [
    "build_estimator",
    "BASELINE_NAME",
    "DEFAULT_REG_LAMBDA",
    "DEFAULT_STRATEGIES",
    "SPEC_PARAMS",
    "BaselineResult",
    "Comparison",
    "REFERENCE_NAME",
    "ReferenceResult",
    "FirstMonthScaler",
    "StrategyResult",
    "StrategySpec",
    "check_comparison",
    "compare_strategies",
    "default_tune_grid",
    "load_stream",
    "parse_hidden_units",
    "parse_strategy",
    "parse_tune_grid",
    "reference_name",
    "resolve_scale",
    "resolve_scoring",
]
