"""The forgetting gate's tests: one :class:`~sklearn_cf._gate.DropTest` per
past month of an update, with the noise test or without it."""

import math

import numpy as np

from .._compat import to_python
from .._gate import DropTest, bootstrap_drop, holm_adjust, mcnemar_drop
from .._weighted_auc import counts_of, weighted_binary_auc
from ._result import _undefined_or_none
from ._scoring import _score


def drop_tests(pending, scorer, scoring, confidence):
    """The :class:`DropTest` of every past month of every step: exact
    McNemar for accuracy, else a paired bootstrap; bounds at the Bonferroni
    level ``(1 - confidence) / k`` and p-values adjusted by Holm over the
    ``k`` months tested in the update.

    ``pending`` holds one ``(trained, month, y, kept_before, kept_after,
    before, after)`` per past month tested: the month trained, the past
    month, its held-out labels, the model's outputs on its held-out rows
    before and after the training (``replay_outputs``), and the scores.
    ``scorer`` scores the outputs kept (unused for accuracy, and for
    roc_auc on two classes, computed directly).
    """
    if not pending:
        return []
    alpha = (1 - confidence) / len(pending)
    tests = []
    for trained, month, ys, kept_before, kept_after, before, after in pending:
        worse = better = None
        if scoring == "accuracy":
            _, low, high, p, worse, better = mcnemar_drop(kept_before.predicted == ys,
                                                          kept_after.predicted == ys, alpha)
            method = "mcnemar"
        else:
            fast = scoring == "roc_auc" and all(
                len(kept.classes) == 2 and np.isin(ys, kept.classes).all()
                for kept in (kept_before, kept_after))

            def scored(kept, ys=ys, fast=fast):
                if fast:
                    # What roc_auc_score computes (ties by half), for every
                    # resample at once, from its rows' counts.
                    positive, proba = ys == kept.classes[1], kept.proba[:, 1]
                    return lambda rows: weighted_binary_auc(positive, proba,
                                                            counts_of(rows, len(ys)))
                return lambda rows: _nan_if_none(_score(kept, rows, ys[rows], scorer, scoring))

            _, low, high, p = bootstrap_drop(scored(kept_before), scored(kept_after), len(ys),
                                             alpha, vectorized=fast)
            method = "bootstrap"
        tests.append(DropTest(month=to_python(month), trained=to_python(trained),
                              before=float(before), after=float(after),
                              drop=float(before) - float(after), low=low, high=high,
                              p_value=p, p_adjusted=math.nan, method=method, rows=len(ys),
                              worse=worse, better=better))
    for test, adjusted in zip(tests, holm_adjust([t.p_value for t in tests])):
        test.p_adjusted = float(adjusted)
    return tests


def _nan_if_none(value):
    return math.nan if value is None else value


def _untested_refusals(steps, max_forgetting):
    """With the noise test off: every past month whose point drop exceeds
    ``max_forgetting``, largest first."""
    if max_forgetting is None:
        return []
    out = [DropTest(month=to_python(m), trained=to_python(step.month), before=step.before[m],
                    after=step.after[m], drop=d, low=math.nan, high=math.nan,
                    p_value=math.nan, p_adjusted=math.nan, method="none",
                    rows=0, refuses=True)
           for step in steps for m, d in step.drops.items()
           if not _undefined_or_none(d) and d > max_forgetting]
    return sorted(out, key=lambda t: -t.drop)

