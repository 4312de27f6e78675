"""What a comparison found, per strategy and for the majority-class baseline.

:class:`StrategyResult` and :class:`BaselineResult` hold each split's
forgetting matrix, their NaN-aware mean and its summaries; the helpers here
average the splits and add the costs relative to naive and joint.
"""

from dataclasses import dataclass

import numpy as np

from .._compat import nanmean
from ..metrics import (
    ForgettingMatrix,
    MonthlyDetection,
    UpdateFlips,
    group_forgetting,
    next_month_aut,
    summarize,
    worst_group_forgetting,
)
from ..model_selection import deployed_scores

__all__ = ["BASELINE_NAME", "BaselineResult", "StrategyResult"]

#: The table's name for the majority-class baseline (see :class:`BaselineResult`);
#: no strategy spec can take it, since specs hold no spaces.
BASELINE_NAME = "majority baseline"

#: Summary keys, in table order, and their names in the table.
_SUMMARY_COLUMNS = (
    ("deployed_score", "deployed_score"),
    ("average_accuracy", "average_score"),
    ("backward_transfer", "backward_transfer"),
    ("forgetting", "forgetting"),
    ("learning_accuracy", "learning_score"),
    ("next_month_aut", "next_month_aut"),
)


@dataclass
class SplitRun:
    """What one strategy's fit on one split gave (internal to a comparison)."""

    clf: object
    matrix: ForgettingMatrix
    seconds: float
    flips: object = None
    detection: object = None
    group_matrices: dict = None
    aut_matrix: ForgettingMatrix = None
    tuning: object = None
    outputs: object = None


@dataclass
class StrategyResult:
    """What one strategy did, averaged over the splits.

    Attributes
    ----------
    name : str
        The spec label, e.g. ``"naive:finetune_lr=1e-4"``.
    strategy : str
        The strategy name.
    params : dict
        The spec's parameter overrides.
    estimator_params : dict
        Every ContinualClassifier parameter this strategy ran with beyond
        the defaults: ``estimator_params``, the spec's overrides and the
        default ``reg_lambda`` of :data:`DEFAULT_REG_LAMBDA`.
    matrix : ForgettingMatrix
        ``R`` averaged over the splits (NaN-aware).
    matrices : list of ForgettingMatrix
        One per split.
    summary : dict of str to float
        Mean over splits of each split's ``deployed_score`` (the mean over
        months of each month's score with the model deployed on it, trained
        through the month before: :func:`deployed_score`),
        ``average_accuracy`` (the final model's mean over the trained
        months: retention), ``backward_transfer``, ``forgetting``,
        ``learning_accuracy`` and ``next_month_aut`` (values use the
        comparison's scoring).
    rows : float
        Training rows processed (all epochs), summed over months, mean over
        splits (from ``cost_``).
    seconds : float
        Training seconds, summed over months, mean over splits.
    rows_per_month, seconds_per_month : list of float
        Per month, mean over splits.
    gap_to_joint : float or None
        ``average_accuracy`` minus joint's (None when joint did not run).
    rows_vs_naive, seconds_vs_naive : float or None
        Relative to naive (None when naive did not run).
    rows_vs_joint : float or None
        Training rows relative to joint.
    fisher_negative_share : float or None
        EWC with ``fisher="hessian"``: share of negative Hessian-diagonal
        entries, mean over months and splits; None otherwise.
    fisher_negative_share_per_month : list of float or None
    flips : UpdateFlips or None
        Per update, the negative flip rate on the held-out rows of the months
        trained through (mean over splits; counts summed over splits), see
        :func:`sklearn_cf.metrics.update_flips`.
    flip_rate : float or None
        Mean negative flip rate over updates and splits.
    detection : MonthlyDetection or None
        With ``target_fpr``: per month, the TPR at the threshold set on the
        previous month's held-out rows and the FPR it realised (mean over
        splits), see :func:`sklearn_cf.metrics.monthly_detection`.
    group_matrices : dict of group to ForgettingMatrix, or None
        With ``groups``: the accuracy forgetting matrix of each group's
        held-out rows (mean over splits).
    group_forgetting : dict of group to float, or None
        Forgetting of each group's mean matrix.
    worst_group : object or None
        The group forgotten most; ``worst_group_forgetting`` its forgetting.
    aut : float or None
        With ``aut_scoring``: the next-month AUT of that score (mean over
        splits).
    tuning : list of HonestTuningResult or None
        With ``tune_months``: per split, the settings chosen on the past
        and their scores on later months beside the oracle's.
    honest_score, oracle_score : float or None
        Their means over splits.
    n_undefined, n_scored : int
        Over every split's matrix: the cells where the score is undefined
        (NaN, left out of every mean) and the cells scored
        (:attr:`ForgettingMatrix.n_undefined`).
    aut_n_undefined, aut_n_points : int
        With ``aut_scoring``, over every split: the next-month scores of
        that scoring that are undefined (left out of the AUT), and all of
        them.
    deployed_per_split, retention_per_split : list of float or None
        ``deployed_score`` and ``average_accuracy`` of each split.
    draws : dict or None
        With one split and ``n_bootstrap``: ``{"deployed": ndarray,
        "retention": ndarray}``, their values on each paired resample of the
        held-out rows (the same resamples for every strategy), from which
        :meth:`Comparison.interval` and :meth:`Comparison.difference` are
        read.
    """

    name: str
    strategy: str
    params: dict
    estimator_params: dict
    matrix: ForgettingMatrix
    matrices: list
    summary: dict
    rows: float
    seconds: float
    rows_per_month: list
    seconds_per_month: list
    gap_to_joint: float = None
    rows_vs_naive: float = None
    seconds_vs_naive: float = None
    rows_vs_joint: float = None
    fisher_negative_share: float = None
    fisher_negative_share_per_month: list = None
    flips: object = None
    flip_rate: float = None
    detection: object = None
    group_matrices: dict = None
    group_forgetting: dict = None
    worst_group: object = None
    worst_group_forgetting: float = None
    aut: float = None
    tuning: list = None
    honest_score: float = None
    oracle_score: float = None
    n_undefined: int = 0
    n_scored: int = 0
    aut_n_undefined: int = 0
    aut_n_points: int = 0
    deployed_per_split: list = None
    retention_per_split: list = None
    draws: dict = None


@dataclass
class BaselineResult:
    """The majority-class baseline: what answering one class scores.

    After each month, a ``DummyClassifier(strategy="prior")`` fitted on the
    training rows of every month so far: it predicts the most frequent class
    of those rows (the first in label order on a tie), and its
    ``predict_proba`` is the class shares, the same for every row. It is
    scored with the comparison's scorer on the same held-out rows as the
    strategies, so its accuracy is the majority class's share of the
    held-out rows, its ROC-AUC 0.5 and its balanced accuracy
    1 / n_classes. A strategy that does not beat it has learnt nothing the
    scoring can see.

    Attributes
    ----------
    name : str
        :data:`BASELINE_NAME`, its row in the table.
    matrix : ForgettingMatrix
        ``R`` averaged over the splits (NaN-aware), with the strategies'
        rows (trained through) and columns (scored on).
    matrices : list of ForgettingMatrix
        One per split.
    summary : dict of str to float
        As :attr:`StrategyResult.summary`.
    majority_class : object
        The class it predicts after the last month (first split).
    gap_to_joint : float or None
        ``average_accuracy`` minus joint's (None when joint did not run).
    deployed_per_split, retention_per_split, draws :
        As :class:`StrategyResult`'s.
    """

    name: str
    matrix: ForgettingMatrix
    matrices: list
    summary: dict
    majority_class: object = None
    gap_to_joint: float = None
    deployed_per_split: list = None
    retention_per_split: list = None
    draws: dict = None


def _negative_share(clf):
    try:
        shares = np.asarray(clf.fisher_negative_share_, dtype=float)
    except AttributeError:
        return None
    return shares


def _mean_matrix(matrices, scoring_name):
    """The NaN-aware mean of the splits' matrices."""
    shapes = {fm.R.shape for fm in matrices}
    if len(shapes) == 1:
        stack = np.stack([fm.R for fm in matrices])
        with np.errstate(invalid="ignore"):
            counts = np.sum(~np.isnan(stack), axis=0)
            sums = np.nansum(stack, axis=0)
            mean_R = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    else:  # pragma: no cover - splits with different months
        mean_R = matrices[0].R
    first = matrices[0]
    counts = [getattr(fm, "n_rows", None) for fm in matrices]
    n_rows = (None if len(shapes) > 1 or any(c is None for c in counts)
              else np.sum(counts, axis=0))  # every split's evaluation rows
    return ForgettingMatrix(mean_R, first.train_months, first.months, scoring_name,
                            n_rows=n_rows)


def deployed_score(R):
    """The mean over months of each month's score with the model deployed on
    it: the first off-diagonal of ``R`` (see
    :func:`sklearn_cf.model_selection.deployed_scores`); NaN for a single
    month.

    Examples
    --------
    >>> from sklearn_cf.compare._results import deployed_score
    >>> round(deployed_score([[0.9, 0.6, 0.5], [0.8, 0.9, 0.7]]), 3)  # (0.6 + 0.7) / 2
    0.65
    """
    return nanmean(deployed_scores(R)[1:])


def _split_summary(R):
    summary = summarize(R)
    summary["deployed_score"] = deployed_score(R)
    return summary


def _mean_summary(matrices):
    """Each summary of :data:`_SUMMARY_COLUMNS`, per split, averaged over splits."""
    per_split = [_split_summary(fm.R) for fm in matrices]
    return {k: nanmean([s.get(k, np.nan) for s in per_split]) for k, _ in _SUMMARY_COLUMNS}


def _per_split(result, matrices):
    """Each split's deployed score and retention, kept for the intervals."""
    result.deployed_per_split = [deployed_score(fm.R) for fm in matrices]
    result.retention_per_split = [nanmean(fm.R[len(fm.train_months) - 1,
                                                :len(fm.train_months)]) for fm in matrices]
    return result


def _aggregate_baseline(runs, scoring_name):
    matrices = [fm for fm, _ in runs]
    return _per_split(BaselineResult(
        name=BASELINE_NAME,
        matrix=_mean_matrix(matrices, scoring_name),
        matrices=matrices,
        summary=_mean_summary(matrices),
        majority_class=runs[0][1],
    ), matrices)


def _mean_rows(arrays):
    """The NaN-aware mean of equal-length arrays, without warnings."""
    stack = np.asarray(arrays, dtype=float)
    counts = np.sum(~np.isnan(stack), axis=0)
    return np.where(counts > 0, np.nansum(stack, axis=0) / np.maximum(counts, 1), np.nan)


def _mean_flips(runs):
    flips = [run.flips for run in runs]
    return UpdateFlips(flips[0].updates, _mean_rows([f.rate for f in flips]),
                       np.sum([f.n_flips for f in flips], axis=0),
                       np.sum([f.n_rows for f in flips], axis=0))


def _mean_detection(runs):
    found = [run.detection for run in runs]
    first = found[0]
    return MonthlyDetection(first.target_fpr, first.months, first.calibrated_on,
                            _mean_rows([d.tpr for d in found]),
                            _mean_rows([d.fpr for d in found]),
                            _mean_rows([d.threshold for d in found]))


def _mean_groups(runs):
    """Each group's matrix, averaged over the splits that hold the group."""
    groups = []
    for run in runs:
        groups += [g for g in run.group_matrices if g not in groups]
    return {
        g: _mean_matrix([run.group_matrices[g] for run in runs if g in run.group_matrices],
                        "accuracy")
        for g in groups
    }


def _next_month_scores(R):
    """``R[i, i + 1]``, the series :func:`next_month_aut` integrates."""
    i = np.arange(min(R.shape[0], R.shape[1] - 1))
    return R[i, i + 1]


def _aggregate(spec, runs, scoring_name, effective):
    matrices = [run.matrix for run in runs]
    matrix = _mean_matrix(matrices, scoring_name)
    summary = _mean_summary(matrices)
    rows_per_month = np.mean([[c["rows"] for c in run.clf.cost_] for run in runs], axis=0)
    seconds_per_month = np.mean([[c["seconds"] for c in run.clf.cost_] for run in runs],
                                axis=0)
    shares = [_negative_share(run.clf) for run in runs]
    if all(s is not None for s in shares):
        per_month = np.mean(np.stack(shares), axis=0)
        share, share_months = float(per_month.mean()) if per_month.size else 0.0, per_month.tolist()
    else:
        share, share_months = None, None
    result = StrategyResult(
        name=spec.label,
        strategy=spec.strategy,
        params=dict(spec.params),
        estimator_params=effective,
        matrix=matrix,
        matrices=matrices,
        summary=summary,
        rows=float(rows_per_month.sum()),
        seconds=float(seconds_per_month.sum()),
        rows_per_month=rows_per_month.tolist(),
        seconds_per_month=seconds_per_month.tolist(),
        fisher_negative_share=share,
        fisher_negative_share_per_month=share_months,
        n_undefined=sum(fm.n_undefined for fm in matrices),
        n_scored=sum(fm.n_scored for fm in matrices),
    )
    _per_split(result, matrices)
    if runs[0].flips is not None:
        result.flips = _mean_flips(runs)
        result.flip_rate = result.flips.mean() if len(result.flips.rate) else None
    if runs[0].detection is not None:
        result.detection = _mean_detection(runs)
    if runs[0].group_matrices is not None:
        result.group_matrices = _mean_groups(runs)
        if matrix.R.shape[0] >= 2:
            result.group_forgetting = group_forgetting(result.group_matrices)
            result.worst_group, result.worst_group_forgetting = worst_group_forgetting(
                result.group_matrices)
    if runs[0].aut_matrix is not None and matrix.R.shape[1] >= 2:
        result.aut = nanmean([next_month_aut(run.aut_matrix.R) for run in runs])
        points = np.concatenate([_next_month_scores(run.aut_matrix.R) for run in runs])
        result.aut_n_undefined, result.aut_n_points = int(np.isnan(points).sum()), len(points)
    if runs[0].tuning is not None:
        result.tuning = [run.tuning for run in runs]
        result.honest_score = nanmean([t.honest_score for t in result.tuning])
        result.oracle_score = nanmean([t.oracle_score for t in result.tuning])
    return result


def _add_relative(results, baseline=None, reference=None):
    joint = _reference(results, "joint")
    naive = _reference(results, "naive")
    for other in (baseline, reference):
        if other is not None and joint is not None:
            other.gap_to_joint = (
                other.summary["average_accuracy"]
                - results[joint].summary["average_accuracy"]
            )
    if reference is not None and naive is not None and results[naive].seconds:
        reference.seconds_vs_naive = reference.seconds / results[naive].seconds
    for res in results.values():
        if joint is not None:
            ref = results[joint]
            res.gap_to_joint = (
                res.summary["average_accuracy"] - ref.summary["average_accuracy"]
            )
            res.rows_vs_joint = res.rows / ref.rows if ref.rows else None
        if naive is not None:
            ref = results[naive]
            res.rows_vs_naive = res.rows / ref.rows if ref.rows else None
            res.seconds_vs_naive = res.seconds / ref.seconds if ref.seconds else None


def _reference(results, strategy):
    if strategy in results:
        return strategy
    for name, res in results.items():
        if res.strategy == strategy:
            return name
    return None
