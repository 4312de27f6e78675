"""Detection metrics of a fitted continual model, from its per-month snapshots.

Each function here scores the snapshots of a
:class:`~sklearn_cf.ContinualClassifier` (kept by ``fit(..., months=...)``)
on held-out rows, month by month, with the pure functions of
:mod:`sklearn_cf.metrics._detection`:

* :func:`monthly_detection`: TPR at a target FPR, the threshold set on the
  previous month's held-out rows, and the FPR that threshold realises;
* :func:`update_flips`: the negative flip rate of every update;
* :func:`group_forgetting_matrices`: a forgetting matrix per group of rows
  (malware family).
"""

from dataclasses import dataclass

import numpy as np

from .._compat import nanmean, to_python
from .._validation import take_rows
from ._detection import negative_flip_rate, prospective_tpr_at_fpr
from ._matrix import ForgettingMatrix, _evaluation_layout

__all__ = [
    "MonthlyDetection",
    "UpdateFlips",
    "group_forgetting_matrices",
    "monthly_detection",
    "update_flips",
]


class _SnapshotOutputs:
    """Probabilities of each snapshot on each month's rows, computed once."""

    def __init__(self, clf, Xt, rows_of):
        self.clf, self.Xt, self.rows_of = clf, Xt, rows_of
        self._cache = {}

    def rows(self, column):
        idx = self.rows_of.get(column)
        return np.empty(0, dtype=int) if idx is None else idx

    def proba(self, snapshot, column):
        key = (snapshot, column)
        if key not in self._cache:
            idx = self.rows(column)
            if len(idx) == 0:
                self._cache[key] = np.empty((0, len(self.clf.classes_)))
            else:
                self._cache[key] = self.clf.predict_proba_after(take_rows(self.Xt, idx),
                                                                snapshot)
        return self._cache[key]

    def predict(self, snapshot, column):
        return self.clf.classes_[self.proba(snapshot, column).argmax(axis=1)]


def _binary_positive(clf, pos_label):
    classes = np.asarray(clf.classes_)
    if len(classes) != 2:
        raise ValueError(
            f"TPR at a target FPR needs a binary classifier; this one has {len(classes)} "
            f"classes ({classes[:5].tolist()}...)."
        )
    if pos_label is None:
        return classes[1], 1
    hits = np.flatnonzero(classes == pos_label)
    if not len(hits):
        raise ValueError(f"pos_label={pos_label!r} is not a class; classes_ = {classes.tolist()}.")
    return pos_label, int(hits[0])


@dataclass
class MonthlyDetection:
    """TPR and realised FPR per month at a threshold set the month before.

    Attributes
    ----------
    target_fpr : float
    months : list
        The months scored: every evaluated month after the first.
    calibrated_on : list
        For each, the month whose held-out rows set its threshold (the one
        before it).
    tpr : ndarray of shape (n_months,)
        True-positive rate on the month's held-out rows (NaN: no positive,
        or no rows to calibrate on).
    fpr : ndarray of shape (n_months,)
        The false-positive rate the threshold realised there (NaN: no
        negative).
    threshold : ndarray of shape (n_months,)
        The threshold used.
    """

    target_fpr: float
    months: list
    calibrated_on: list
    tpr: np.ndarray
    fpr: np.ndarray
    threshold: np.ndarray

    def summary(self):
        """The mean TPR, mean realised FPR and worst month's realised FPR.

        Returns
        -------
        dict
            ``prospective_tpr``, ``realised_fpr``, ``max_realised_fpr``:
            over the months where each is defined (NaN when none is);
            ``n_undefined_tpr``, ``n_undefined_fpr``: how many months were
            left out (no positive row, or no negative row, or no rows
            before them to set the threshold on).
        """
        return {
            "prospective_tpr": nanmean(self.tpr),
            "realised_fpr": nanmean(self.fpr),
            "max_realised_fpr": _nanmax(self.fpr),
            "n_undefined_tpr": int(np.isnan(self.tpr).sum()),
            "n_undefined_fpr": int(np.isnan(self.fpr).sum()),
        }

    def months_over_target(self):
        """The months whose realised FPR exceeded the target."""
        return [m for m, f in zip(self.months, self.fpr) if f > self.target_fpr]


def _nanmax(values):
    values = np.asarray(values, dtype=float)
    keep = ~np.isnan(values)
    return float(values[keep].max()) if keep.any() else float("nan")


def monthly_detection(estimator, X, y, months, target_fpr, *, pos_label=None):
    """TPR at a target FPR on each month, the threshold set on the month before.

    For each evaluated month ``j`` after the first, the model deployed on it
    is the snapshot after month ``j - 1`` (the last snapshot for months never
    trained). Its threshold is chosen on month ``j - 1``'s rows to flag at
    most ``target_fpr`` of their negatives, then applied to month ``j``'s
    rows (:func:`~sklearn_cf.metrics.prospective_tpr_at_fpr`).

    Parameters
    ----------
    estimator : ContinualClassifier or Pipeline ending in one
        Fitted with months; binary.
    X : array-like of shape (n_samples, n_features)
        Held-out rows of the months (never trained on).
    y : array-like of shape (n_samples,)
    months : array-like of shape (n_samples,)
    target_fpr : float in (0, 1)
    pos_label : object, default=None
        The positive class; None: ``classes_[1]``.

    Returns
    -------
    MonthlyDetection

    Examples
    --------
    >>> from sklearn_cf import ContinualClassifier
    >>> from sklearn_cf.datasets import make_monthly_drift
    >>> from sklearn_cf.metrics import monthly_detection
    >>> X, y, months = make_monthly_drift(n_months=3, n_samples_per_month=300, random_state=0)
    >>> clf = ContinualClassifier(max_epochs=2, hidden_units=(8,), random_state=0)
    >>> clf = clf.fit(X[::2], y[::2], months=months[::2])
    >>> det = monthly_detection(clf, X[1::2], y[1::2], months[1::2], target_fpr=0.05)
    >>> det.months, det.calibrated_on
    ([1, 2], [0, 1])
    >>> sorted(det.summary())
    ['max_realised_fpr', 'n_undefined_fpr', 'n_undefined_tpr', 'prospective_tpr', 'realised_fpr']
    """
    clf, Xt, y, trained, columns, rows_of = _evaluation_layout(estimator, X, y, months)
    pos_label, pos_col = _binary_positive(clf, pos_label)
    outputs = _SnapshotOutputs(clf, Xt, rows_of)
    n = len(columns) - 1
    tpr, fpr, threshold = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    for j in range(1, len(columns)):
        deployed = trained[min(j - 1, len(trained) - 1)]
        calib, rows = outputs.rows(columns[j - 1]), outputs.rows(columns[j])
        if len(rows) == 0 or not np.any(y[calib] != pos_label):
            continue  # nothing to score, or no negative to set the threshold on
        rates = prospective_tpr_at_fpr(
            y[calib], outputs.proba(deployed, columns[j - 1])[:, pos_col],
            y[rows], outputs.proba(deployed, columns[j])[:, pos_col],
            target_fpr, pos_label=pos_label,
        )
        tpr[j - 1], fpr[j - 1], threshold[j - 1] = rates
    return MonthlyDetection(float(target_fpr), list(columns[1:]), list(columns[:-1]),
                            tpr, fpr, threshold)


@dataclass
class UpdateFlips:
    """The negative flip rate of every update.

    Attributes
    ----------
    updates : list of tuple
        ``(before, after)``: the months trained through before and after
        each update.
    rate : ndarray of shape (n_updates,)
        Share of the rows scored that the update broke (NaN: no row).
    n_flips : ndarray of shape (n_updates,)
        How many rows it broke.
    n_rows : ndarray of shape (n_updates,)
        How many rows were scored: the held-out rows of every month trained
        through by the updated model (of ``pos_label`` only, when given).
    """

    updates: list
    rate: np.ndarray
    n_flips: np.ndarray
    n_rows: np.ndarray

    def mean(self):
        """Mean rate over the updates (NaN-aware); NaN with no update."""
        return nanmean(self.rate)

    @property
    def n_undefined(self):
        """Updates left out of :meth:`mean`: no row to score them on."""
        return int(np.isnan(self.rate).sum())


def update_flips(estimator, X, y, months, *, pos_label=None):
    """Negative flip rate of each update, on the held-out rows seen so far.

    For the update from the snapshot after month ``i`` to the one after
    month ``i + 1``, both are scored on the held-out rows of every month up
    to ``i + 1``, and :func:`~sklearn_cf.metrics.negative_flip_rate` counts
    the rows right before and wrong after.

    Parameters
    ----------
    estimator : ContinualClassifier or Pipeline ending in one
        Fitted with months.
    X : array-like of shape (n_samples, n_features)
        Held-out rows.
    y : array-like of shape (n_samples,)
    months : array-like of shape (n_samples,)
    pos_label : object, default=None
        Count only rows of this class (malware caught, then missed).

    Returns
    -------
    UpdateFlips

    Examples
    --------
    >>> from sklearn_cf import ContinualClassifier
    >>> from sklearn_cf.datasets import make_monthly_drift
    >>> from sklearn_cf.metrics import update_flips
    >>> X, y, months = make_monthly_drift(n_months=3, n_samples_per_month=300, random_state=0)
    >>> clf = ContinualClassifier(max_epochs=2, hidden_units=(8,), random_state=0)
    >>> clf = clf.fit(X[::2], y[::2], months=months[::2])
    >>> flips = update_flips(clf, X[1::2], y[1::2], months[1::2])
    >>> flips.updates, flips.n_rows.tolist()
    ([(0, 1), (1, 2)], [300, 450])
    """
    clf, Xt, y, trained, columns, rows_of = _evaluation_layout(estimator, X, y, months)
    outputs = _SnapshotOutputs(clf, Xt, rows_of)
    n = len(trained) - 1
    rate, n_flips, n_rows = np.full(n, np.nan), np.zeros(n, dtype=int), np.zeros(n, dtype=int)
    for i in range(n):
        before, after, truth = [], [], []
        for column in trained[: i + 2]:
            idx = outputs.rows(column)
            if len(idx):
                before.append(outputs.predict(trained[i], column))
                after.append(outputs.predict(trained[i + 1], column))
                truth.append(y[idx])
        if not truth:
            continue
        truth, before, after = map(np.concatenate, (truth, before, after))
        keep = np.ones(len(truth), bool) if pos_label is None else truth == pos_label
        n_rows[i] = int(keep.sum())
        n_flips[i] = int(((before == truth) & (after != truth) & keep).sum())
        rate[i] = negative_flip_rate(truth, before, after, pos_label=pos_label)
    updates = [(trained[i], trained[i + 1]) for i in range(n)]
    return UpdateFlips(updates, rate, n_flips, n_rows)


def group_forgetting_matrices(estimator, X, y, months, groups):
    """One accuracy forgetting matrix per group of rows (e.g. malware family).

    ``R_g[i, j]`` is the share of month ``j``'s held-out rows of group ``g``
    that the snapshot after month ``i`` classifies correctly: for a malware
    family, its detection rate; for benign files, one minus the FPR. NaN
    where month ``j`` has no row of the group. Accuracy is used because it
    is defined on rows of a single class, as a family's rows are.

    Parameters
    ----------
    estimator : ContinualClassifier or Pipeline ending in one
        Fitted with months.
    X : array-like of shape (n_samples, n_features)
        Held-out rows.
    y : array-like of shape (n_samples,)
    months : array-like of shape (n_samples,)
    groups : array-like of shape (n_samples,)
        The group of each row (any sortable labels, e.g. family names).

    Returns
    -------
    dict of group to ForgettingMatrix
        In sorted group order; summarise with
        :func:`~sklearn_cf.metrics.group_forgetting` and
        :func:`~sklearn_cf.metrics.worst_group_forgetting`.

    Examples
    --------
    >>> from sklearn_cf import ContinualClassifier
    >>> from sklearn_cf.datasets import make_monthly_drift
    >>> from sklearn_cf.metrics import group_forgetting_matrices
    >>> X, y, months, family = make_monthly_drift(
    ...     n_months=3, n_samples_per_month=300, return_families=True, random_state=0)
    >>> clf = ContinualClassifier(max_epochs=2, hidden_units=(8,), random_state=0)
    >>> clf = clf.fit(X[::2], y[::2], months=months[::2])
    >>> per_family = group_forgetting_matrices(clf, X[1::2], y[1::2], months[1::2], family[1::2])
    >>> sorted(per_family)[:3], per_family[-1].R.shape
    ([-1, 0, 1], (3, 3))
    """
    groups = np.asarray(getattr(groups, "to_numpy", lambda: groups)())
    clf, Xt, y, trained, columns, rows_of = _evaluation_layout(estimator, X, y, months)
    if groups.shape != (len(y),):
        raise ValueError(
            f"groups must hold one label per row: {len(y)} rows, got groups of shape "
            f"{groups.shape}."
        )
    labels, codes = np.unique(groups, return_inverse=True)
    codes = codes.reshape(-1)
    outputs = _SnapshotOutputs(clf, Xt, rows_of)
    R = np.full((len(labels), len(trained), len(columns)), np.nan)
    n_rows = np.zeros((len(labels), len(columns)), dtype=int)
    for j, column in enumerate(columns):
        idx = outputs.rows(column)
        if not len(idx):
            continue
        counts = np.bincount(codes[idx], minlength=len(labels))
        n_rows[:, j] = counts
        present = counts > 0
        for i, snapshot in enumerate(trained):
            right = outputs.predict(snapshot, column) == y[idx]
            hits = np.bincount(codes[idx], weights=right, minlength=len(labels))
            R[present, i, j] = hits[present] / counts[present]
    return {
        to_python(g): ForgettingMatrix(R[k], trained, columns, "accuracy", n_rows=n_rows[k])
        for k, g in enumerate(labels)
    }
