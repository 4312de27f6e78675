"""Intervals of a comparison's scores: a paired two-level bootstrap (months
weighted, held-out rows resampled), or the spread across splits.

With one split (the default), every month's held-out rows are resampled
with replacement ``n_bootstrap`` times, and every month is given a random
weight in each resample (Exp(1), the Bayesian bootstrap over months), so
that an interval holds both the noise of a finite test set and the
month-to-month variation of the score (which months the window holds).
The same resample of a month and the same weight serve every strategy, the
baseline and the reference, so the difference of two strategies' scores is
paired (a month that is hard for one is hard for the other). Each month's
resamples and weights are seeded by the comparison's seed, the split and
the month's own label, never by the other months, so dropping an old month
leaves the others' draws as they were. Only the cells the
verdict reads are kept per row: each month scored by the model deployed on
it (trained through the month before), and every trained month scored by
the final model.

With several splits, the interval is Student's t over the splits' values
(paired: over the splits' differences), which holds the variation of the
training rows as well as of the held-out ones.
"""

import zlib
from dataclasses import dataclass

import numpy as np

from .._compat import nanmean
from .._replayed import ReplayedOutputs
from .._weighted_auc import weighted_binary_auc
from ..metrics import score_or_nan

__all__ = ["CONFIDENCE", "HeldOutOutputs", "bootstrap_draws", "interval", "month_weights"]

#: Two-sided level of every interval of a comparison.
CONFIDENCE = 0.95


@dataclass
class HeldOutOutputs:
    """One model's class probabilities on one split's held-out rows, for the
    cells the verdict reads.

    Attributes
    ----------
    classes : ndarray
        The columns of the probabilities.
    deployed : dict of int to ndarray
        Column ``j`` of the forgetting matrix (a month) to the probabilities
        of the model trained through the month before it, on that month's
        held-out rows.
    final : dict of int to ndarray
        Column ``j`` (a trained month) to the final model's probabilities.
    """

    classes: np.ndarray
    deployed: dict
    final: dict


def held_out_outputs(proba_after, fm, rows_of, classes):
    """The :class:`HeldOutOutputs` of a model whose snapshot ``i`` (trained
    through ``fm.train_months[i]``) gives ``proba_after(i, j)`` on column
    ``j``'s held-out rows; ``rows_of`` maps a column to its rows (or None)."""
    T = len(fm.train_months)
    deployed, final = {}, {}
    for j in range(len(fm.months)):
        if rows_of(j) is None:
            continue
        if j >= 1:
            deployed[j] = np.asarray(proba_after(min(j - 1, T - 1), j), dtype=float)
        if j < T:
            final[j] = np.asarray(proba_after(T - 1, j), dtype=float)
    return HeldOutOutputs(np.asarray(classes), deployed, final)


def _accuracy(y, proba, classes):
    correct = (classes[proba.argmax(axis=1)] == y).astype(float)
    return lambda W: W @ correct / W.sum(axis=1)


def _balanced_accuracy(y, proba, classes):
    correct = (classes[proba.argmax(axis=1)] == y).astype(float)
    groups = [np.flatnonzero(y == c) for c in np.unique(y)]

    def score(W):
        # The mean recall of the classes present in each resample, as
        # sklearn's balanced_accuracy_score leaves out a class with no row.
        totals = np.stack([W[:, rows].sum(axis=1) for rows in groups], axis=1)
        hits = np.stack([W[:, rows] @ correct[rows] for rows in groups], axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            recalls = np.where(totals > 0, hits / totals, np.nan)
        return np.array([nanmean(r) for r in recalls])

    return score


def _roc_auc(y, proba, classes):
    positive, score = y == classes[1], proba[:, 1]
    return lambda W: weighted_binary_auc(positive, score, W)


def _generic(y, proba, classes, scorer):
    model = ReplayedOutputs(proba, classes)

    def one(w):
        rows = np.repeat(np.arange(len(y)), w.astype(int))
        return score_or_nan(scorer, model, rows[:, None], y[rows])

    return lambda W: np.array([one(w) for w in W])


def _cell_score(scoring_name, scorer, y, proba, classes):
    """``f(W)``: the score of one cell on each resample, ``W[b, i]`` the times
    row ``i`` is drawn in resample ``b``. Accuracy, balanced accuracy and
    binary ROC-AUC are computed from the counts directly (the values
    scikit-learn gives on the resampled rows, checked in the tests); any
    other scorer is called on each resample's rows."""
    if scoring_name == "accuracy":
        return _accuracy(y, proba, classes)
    if scoring_name == "balanced_accuracy":
        return _balanced_accuracy(y, proba, classes)
    if scoring_name == "roc_auc" and len(classes) == 2 and set(np.unique(y)) <= set(classes):
        return _roc_auc(y, proba, classes)
    return _generic(y, proba, classes, scorer)


def month_seed(random_state, split, label):
    """The seed of one month's resamples: the comparison's seed, the split and
    the month's own label (never its position), so other months do not move it.

    Examples
    --------
    >>> from sklearn_cf.compare._bootstrap import month_seed
    >>> month_seed(0, 0, 3) == month_seed(0, 0, 3), month_seed(0, 0, 3) == month_seed(0, 0, 4)
    (True, False)
    """
    seed = random_state if isinstance(random_state, (int, np.integer)) else 0
    return [int(seed) & 0xFFFFFFFF, int(split), zlib.crc32(repr(label).encode("utf-8"))]


def month_weights(random_state, split, labels, n_bootstrap):
    """The weight of each month in each resample: the month-level half of the
    two-level bootstrap.

    Each month's ``n_bootstrap`` weights are independent draws of Exp(1)
    (Rubin's Bayesian bootstrap: normalised over the months, a Dirichlet(1,
    ..., 1)), drawn from the month's own seed (:func:`month_seed` and a
    fourth word, 1, that sets them apart from the month's row resamples).
    Dropping a month leaves every other month's weights as they were, and
    the same weights serve every model, so differences stay paired.

    Parameters
    ----------
    random_state : int
    split : int
    labels : sequence
        Month labels, one column each.
    n_bootstrap : int

    Returns
    -------
    ndarray of shape (n_bootstrap, len(labels))

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cf.compare._bootstrap import month_seed, month_weights
    >>> w = month_weights(0, 0, ["2024-01", "2024-02"], 3)
    >>> own = np.random.default_rng(month_seed(0, 0, "2024-02") + [1]).exponential(1.0, 3)
    >>> bool(np.array_equal(w[:, 1], own)), bool(np.array_equal(
    ...     month_weights(0, 0, ["2024-02"], 3)[:, 0], own))
    (True, True)
    """
    W = np.empty((n_bootstrap, len(labels)))
    for k, label in enumerate(labels):
        rng = np.random.default_rng(month_seed(random_state, split, label) + [1])
        W[:, k] = rng.exponential(1.0, n_bootstrap)
    return W


def weighted_month_mean(cells, weights):
    """Each resample's mean of the month cells under its month weights, NaN
    cells left out (their weight dropped): ``cells`` and ``weights`` both of
    shape (n_bootstrap, n_months); NaN where a resample has no defined cell.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cf.compare._bootstrap import weighted_month_mean
    >>> weighted_month_mean(np.array([[0.8, 0.6, np.nan]]), np.array([[3.0, 1.0, 5.0]]))
    array([0.75])
    """
    cells = np.asarray(cells, dtype=float)
    defined = ~np.isnan(cells)
    weights = np.where(defined, weights, 0.0)
    total = weights.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (weights * np.where(defined, cells, 0.0)).sum(axis=1)
                        / total, np.nan)


def bootstrap_draws(outputs, y_of, labels, scorer, scoring_name, n_bootstrap, random_state,
                    split=0):
    """Each model's deployed score and retention on ``n_bootstrap`` paired
    two-level resamples of one split: months weighted, rows resampled.

    Resample ``b`` draws every month's held-out rows with replacement (from
    the month's own seed) and gives every month a weight (see
    :func:`month_weights`); a model's draw is the weighted mean over months
    of its cell scores on the resampled rows. The rows carry the noise of a
    finite test set, the weights the noise of which months the window holds:
    a strategy whose lead comes from a few months gets a wide interval, so
    that dropping an old month does not carry its difference across the
    verdict's thresholds. A constant difference between two models on every
    month stays constant under any weights (a degenerate paired interval).

    Parameters
    ----------
    outputs : dict of str to HeldOutOutputs
    y_of : dict of int to ndarray
        Column ``j`` to its held-out labels.
    labels : list
        The month label of each column (seeds the resamples and the weights).
    scorer : callable
    scoring_name : str
    n_bootstrap : int
    random_state : int
    split : int

    Returns
    -------
    dict of str to dict
        Per model: ``"deployed"`` and ``"retention"``, arrays of shape
        (n_bootstrap,), each resample's month-weighted mean of the cell
        scores (NaN cells left out); ``"deployed_cells"`` and
        ``"retention_cells"``, the cell scores themselves, of shape
        (n_bootstrap, n_cells), and ``"deployed_months"`` and
        ``"retention_months"``, the month label of each of their columns.
    """
    columns = sorted(y_of)
    weights = {}
    for j in columns:
        n = len(y_of[j])
        rng = np.random.default_rng(month_seed(random_state, split, labels[j]))
        weights[j] = np.stack([np.bincount(rng.integers(0, n, n), minlength=n)
                               for _ in range(n_bootstrap)]).astype(float)
    month_w = dict(zip(columns, month_weights(random_state, split, [labels[j] for j in columns],
                                              n_bootstrap).T))
    out = {}
    for name, held in outputs.items():
        per_cell = {}
        for kind, cells in (("deployed", held.deployed), ("retention", held.final)):
            order = sorted(cells)
            scores = np.full((n_bootstrap, len(order)), np.nan)
            for c, j in enumerate(order):
                f = _cell_score(scoring_name, scorer, y_of[j], cells[j], held.classes)
                scores[:, c] = f(weights[j])
            W = np.stack([month_w[j] for j in order], axis=1) if order else scores
            per_cell[kind] = weighted_month_mean(scores, W) if order else np.full(
                n_bootstrap, np.nan)
            per_cell[f"{kind}_cells"] = scores
            per_cell[f"{kind}_months"] = [labels[j] for j in order]
        out[name] = per_cell
    return out


def interval(per_split, draws=None, confidence=CONFIDENCE):
    """The interval of a value: Student's t over the splits' values when there
    are several, else the percentile interval of the bootstrap ``draws``.

    Pass differences (per split, per draw) for a paired interval.

    Parameters
    ----------
    per_split : sequence of float
    draws : ndarray of shape (n_bootstrap,) or None
        The single split's bootstrap values.
    confidence : float, default=CONFIDENCE

    Returns
    -------
    tuple of (float, float) or None
        None when neither is available (one split, no draws).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cf.compare._bootstrap import interval
    >>> [round(v, 3) for v in interval([0.80, 0.84, 0.82])]  # 0.82 +- t(0.975, 2) * 0.02 / sqrt(3)
    [0.77, 0.87]
    >>> [round(v, 3) for v in interval([0.5], draws=np.arange(101) / 100)]
    [0.025, 0.975]
    """
    values = np.asarray(per_split, dtype=float)
    values = values[~np.isnan(values)]
    if len(values) >= 2:
        from scipy.stats import t

        half = t.ppf(0.5 + confidence / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(
            len(values))
        return float(values.mean() - half), float(values.mean() + half)
    if draws is None:
        return None
    draws = np.asarray(draws, dtype=float)
    draws = draws[~np.isnan(draws)]
    if not len(draws):
        return None
    low, high = np.quantile(draws, [0.5 - confidence / 2, 0.5 + confidence / 2])
    return float(low), float(high)
