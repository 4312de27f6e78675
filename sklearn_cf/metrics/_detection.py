"""Detection metrics of a monthly update: pure functions of labels and scores.

* :func:`threshold_at_fpr` and :func:`prospective_tpr_at_fpr`: the
  operating point of a detector is set on a past month, then used on the
  next one, where its false-positive rate is whatever the drift makes it;
* :func:`negative_flip_rate`: rows an update broke (right before, wrong
  after);
* :func:`group_forgetting` and :func:`worst_group_forgetting`: forgetting
  per group of rows (a malware family), and the group forgotten most.

:mod:`sklearn_cf.metrics._updates` applies them to the snapshots of a
fitted :class:`~sklearn_cf.ContinualClassifier`.
"""

from typing import NamedTuple

import numpy as np

from ._forgetting import forgetting

__all__ = [
    "DetectionRates",
    "group_forgetting",
    "negative_flip_rate",
    "prospective_tpr_at_fpr",
    "threshold_at_fpr",
    "worst_group_forgetting",
]


def _check_fpr(fpr):
    if isinstance(fpr, bool) or not isinstance(fpr, (int, float, np.floating)) or not (
        0 < fpr < 1
    ):
        raise ValueError(
            f"The target false-positive rate must be a number in (0, 1), e.g. 0.01; "
            f"got {fpr!r}."
        )
    return float(fpr)


def _positive_label(pos_label, *label_arrays):
    """``pos_label``, or the larger of the two labels seen (``classes_[1]``)."""
    labels = np.unique(np.concatenate([np.asarray(a).ravel() for a in label_arrays]))
    if pos_label is not None:
        return pos_label
    if len(labels) == 2:
        return labels[1]
    if len(labels) > 2:
        raise ValueError(
            f"Detection metrics are binary, but the labels hold {len(labels)} classes "
            f"({labels[:5].tolist()}...); pass a binary target."
        )
    raise ValueError(
        f"Only one label ({labels.tolist()}) is present, so the positive class is "
        "unknown; pass pos_label= (e.g. pos_label=1 for malware)."
    )


def _scores_and_labels(y_true, y_score, what):
    y_true = np.asarray(y_true).ravel()
    y_score = np.asarray(y_score, dtype=float).ravel()
    if len(y_true) != len(y_score):
        raise ValueError(
            f"{what}: y_true has {len(y_true)} labels but y_score has {len(y_score)} "
            "scores; pass one score per row."
        )
    if not np.all(np.isfinite(y_score)):
        raise ValueError(f"{what}: y_score holds NaN or infinite scores.")
    return y_true, y_score


def threshold_at_fpr(y_true, y_score, fpr, *, pos_label=None):
    """The decision threshold that flags at most ``fpr`` of these negatives.

    Rows are flagged positive when ``y_score > threshold``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Binary labels.
    y_score : array-like of shape (n_samples,)
        Scores of the positive class (higher = more likely positive).
    fpr : float in (0, 1)
        Target false-positive rate, e.g. 0.01.
    pos_label : object, default=None
        The positive label; None takes the larger of the two labels.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        For a target outside (0, 1), mismatched lengths, or rows with no
        negative among them.

    Notes
    -----
    With the ``n`` negative scores sorted in decreasing order,
    ``s_(1) >= s_(2) >= ... >= s_(n)``, and ``a = floor(fpr * n)`` false
    positives allowed, the threshold is ``s_(a+1)``: only negatives scored
    strictly above it are flagged, so the false-positive rate on these rows
    is at most ``fpr`` (below it when scores tie at the threshold). This is
    the operating point a detection team fixes on data it already has
    (here: the previous month's held-out rows), as in the fixed-FPR
    evaluations of malware detectors (e.g. TPR at 0.1% or 1% FPR).

    Examples
    --------
    >>> from sklearn_cf.metrics import threshold_at_fpr
    >>> y = [0, 0, 0, 0, 0, 1, 1]
    >>> scores = [0.1, 0.2, 0.3, 0.4, 0.9, 0.5, 0.95]
    >>> threshold_at_fpr(y, scores, 0.2)  # 1 of 5 negatives may be flagged: 0.9
    0.4
    """
    fpr = _check_fpr(fpr)
    y_true, y_score = _scores_and_labels(y_true, y_score, "threshold_at_fpr")
    pos_label = _positive_label(pos_label, y_true)
    negatives = np.sort(y_score[y_true != pos_label])[::-1]
    if negatives.size == 0:
        raise ValueError(
            "threshold_at_fpr needs negative rows to set a false-positive rate on, "
            "but every row is positive."
        )
    allowed = min(int(np.floor(fpr * negatives.size + 1e-9)), negatives.size - 1)
    return float(negatives[allowed])


class DetectionRates(NamedTuple):
    """TPR and realised FPR at a threshold set beforehand (see
    :func:`prospective_tpr_at_fpr`)."""

    tpr: float
    fpr: float
    threshold: float


def prospective_tpr_at_fpr(y_calib, score_calib, y_true, y_score, fpr, *, pos_label=None):
    """TPR on new rows at a threshold chosen on earlier rows for a target FPR.

    A deployed detector's threshold is set before the month it is used on:
    here on ``(y_calib, score_calib)``, the previous month's held-out rows,
    to flag at most ``fpr`` of their negatives (:func:`threshold_at_fpr`),
    and then applied, unchanged, to the next month's rows. The false-positive
    rate it *realises* there is reported beside the TPR: drift in the benign
    files moves it away from the target.

    Parameters
    ----------
    y_calib, score_calib : array-like of shape (n_calib,)
        Labels and positive-class scores of the rows the threshold is set on.
    y_true, y_score : array-like of shape (n_samples,)
        Labels and scores of the rows it is applied to.
    fpr : float in (0, 1)
        Target false-positive rate.
    pos_label : object, default=None
        The positive label; None takes the larger of the two labels seen.

    Returns
    -------
    DetectionRates
        ``tpr``: share of the positives of ``y_true`` scored above the
        threshold (NaN when there is none); ``fpr``: share of its negatives
        scored above it, the realised false-positive rate (NaN when there is
        none); ``threshold``.

    Notes
    -----
    With ``t`` = ``threshold_at_fpr(y_calib, score_calib, fpr)``,

    .. math::
        \\mathrm{TPR} = \\frac{|\\{i : y_i = 1, s_i > t\\}|}{|\\{i : y_i = 1\\}|},
        \\qquad
        \\mathrm{FPR}_{realised} = \\frac{|\\{i : y_i = 0, s_i > t\\}|}{|\\{i : y_i = 0\\}|}.

    Choosing the threshold on the very rows it is scored on (as
    :func:`sklearn_cf.tpr_at_fpr` does, from the ROC curve) meets the target
    FPR by construction; a detector in production cannot. Setting it on
    past data only is TESSERACT's temporal constraint (training, and here
    calibration, strictly before testing; Pendlebury et al., *TESSERACT:
    Eliminating Experimental Bias in Malware Classification across Space and
    Time*, USENIX Security 2019) applied to the operating point.

    Examples
    --------
    >>> from sklearn_cf.metrics import prospective_tpr_at_fpr
    >>> y_prev, s_prev = [0, 0, 0, 0, 0, 1], [0.1, 0.2, 0.3, 0.4, 0.9, 0.8]
    >>> y_next, s_next = [0, 0, 0, 0, 1, 1, 1, 1], [0.1, 0.5, 0.6, 0.2, 0.45, 0.7, 0.3, 0.9]
    >>> prospective_tpr_at_fpr(y_prev, s_prev, y_next, s_next, 0.2)  # threshold 0.4
    DetectionRates(tpr=0.75, fpr=0.5, threshold=0.4)
    """
    y_calib, score_calib = _scores_and_labels(y_calib, score_calib, "prospective_tpr_at_fpr")
    y_true, y_score = _scores_and_labels(y_true, y_score, "prospective_tpr_at_fpr")
    pos_label = _positive_label(pos_label, y_calib, y_true)
    threshold = threshold_at_fpr(y_calib, score_calib, fpr, pos_label=pos_label)
    flagged = y_score > threshold
    positive = y_true == pos_label
    tpr = float(flagged[positive].mean()) if positive.any() else float("nan")
    false_pos = float(flagged[~positive].mean()) if (~positive).any() else float("nan")
    return DetectionRates(tpr, false_pos, threshold)


def negative_flip_rate(y_true, y_pred_before, y_pred_after, *, pos_label=None):
    """Share of rows an update broke: right before it, wrong after it.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    y_pred_before : array-like of shape (n_samples,)
        Predictions of the model before the update, on the same rows.
    y_pred_after : array-like of shape (n_samples,)
        Predictions of the updated model.
    pos_label : object, default=None
        Count only the rows of this class: with the malware label, the share
        of malware that was caught before the update and is missed after it
        (a security regression). None: every row.

    Returns
    -------
    float
        NaN when ``pos_label`` selects no row.

    Raises
    ------
    ValueError
        For empty or mismatched inputs.

    Notes
    -----
    .. math::
        \\mathrm{NFR} = \\frac{1}{n} \\sum_{i=1}^{n}
        [\\hat y^{old}_i = y_i \\wedge \\hat y^{new}_i \\ne y_i]

    the negative flip rate of Yan et al., *Positive-Congruent Training:
    Towards Regression-Free Model Updates*, CVPR 2021, reported between
    consecutive updates by continual-learning libraries such as Renate. An
    update can raise accuracy and still break rows that used to be right;
    those regressions are what users of a detector notice.

    Examples
    --------
    >>> from sklearn_cf.metrics import negative_flip_rate
    >>> y      = [1, 1, 1, 1, 0, 0]
    >>> before = [1, 1, 0, 1, 0, 1]
    >>> after  = [1, 0, 1, 0, 0, 0]
    >>> negative_flip_rate(y, before, after)  # rows 1 and 3 broke: 2 / 6
    0.3333333333333333
    >>> negative_flip_rate(y, before, after, pos_label=1)  # 2 of 4 malware rows
    0.5
    """
    y_true = np.asarray(y_true).ravel()
    before = np.asarray(y_pred_before).ravel()
    after = np.asarray(y_pred_after).ravel()
    if not (len(y_true) == len(before) == len(after)):
        raise ValueError(
            f"negative_flip_rate needs the same rows three times; got {len(y_true)} labels, "
            f"{len(before)} predictions before and {len(after)} after."
        )
    if len(y_true) == 0:
        raise ValueError("negative_flip_rate needs at least one row.")
    keep = np.ones(len(y_true), dtype=bool) if pos_label is None else y_true == pos_label
    if not keep.any():
        return float("nan")
    broke = (before == y_true) & (after != y_true)
    return float(broke[keep].mean())


def group_forgetting(matrices, reference="max"):
    """Forgetting of each group's forgetting matrix.

    Parameters
    ----------
    matrices : dict of group to array-like of shape (n_trained, n_months)
        One forgetting matrix per group of rows (e.g. per malware family):
        ``R_g[i, j]`` = score on month ``j``'s held-out rows of group ``g``
        after training through month ``i``. A ``ForgettingMatrix`` is
        accepted too. NaN cells (a month without rows of the group) are
        skipped.
    reference : {"max", "first"}, default="max"
        As in :func:`sklearn_cf.metrics.forgetting`.

    Returns
    -------
    dict of group to float
        ``forgetting(R_g)``; NaN for a group with no defined term.

    Notes
    -----
    :func:`sklearn_cf.metrics.forgetting` (Chaudhry et al., ECCV 2018) of
    each group's matrix. An average over all rows hides a family that is
    forgotten while the others are kept; reporting the worst group follows
    the worst-group accuracy of Sagawa et al., *Distributionally Robust
    Neural Networks for Group Shifts*, ICLR 2020. Score each group with a
    measure defined on one class, such as accuracy (for a malware family:
    its detection rate; for benign files: one minus the FPR).

    Examples
    --------
    >>> from sklearn_cf.metrics import group_forgetting
    >>> R_a = [[0.9, 0.2], [0.5, 0.9]]   # family a: 0.9 -> 0.5 on month 0
    >>> R_b = [[0.8, 0.7], [0.8, 0.9]]   # family b kept
    >>> group_forgetting({"a": R_a, "b": R_b})
    {'a': 0.4, 'b': 0.0}
    """
    if not matrices:
        raise ValueError("matrices is empty: pass {group: forgetting matrix}.")
    out = {}
    for group, R in matrices.items():
        out[group] = float(forgetting(getattr(R, "R", R), reference=reference))
    return out


def worst_group_forgetting(matrices, reference="max"):
    """The group forgotten most, and its forgetting.

    Parameters
    ----------
    matrices : dict of group to array-like of shape (n_trained, n_months)
        As in :func:`group_forgetting`.
    reference : {"max", "first"}, default="max"

    Returns
    -------
    group : object or None
        The group with the largest forgetting (the first in the dict's order
        on a tie); None when no group's forgetting is defined.
    value : float
        Its forgetting; NaN when none is defined.

    Notes
    -----
    ``max_g forgetting(R_g)``, see :func:`group_forgetting` (worst group as
    in Sagawa et al., ICLR 2020; forgetting as in Chaudhry et al., ECCV
    2018).

    Examples
    --------
    >>> from sklearn_cf.metrics import worst_group_forgetting
    >>> worst_group_forgetting({"a": [[0.9, 0.2], [0.5, 0.9]],
    ...                         "b": [[0.8, 0.7], [0.8, 0.9]]})
    ('a', 0.4)
    """
    per_group = group_forgetting(matrices, reference=reference)
    defined = [(g, v) for g, v in per_group.items() if np.isfinite(v)]
    if not defined:
        return None, float("nan")
    return max(defined, key=lambda item: item[1])
