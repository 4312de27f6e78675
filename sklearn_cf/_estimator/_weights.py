"""Weights of a month's rows: ``sample_weight`` times the month's class
weights (``class_weight``), and the weighted loss of a batch.

A training batch's loss is ``sum_i w_i l_i / (n_batch * w_bar)``, ``w_bar``
the mean weight of the rows the epoch draws (:func:`epoch_mean_weight`):
the *expected* weight of a batch, not its own weight. Averaged over the
batches of an epoch (by rows), that is ``sum_i w_i l_i / sum_i w_i`` over
the epoch, the mean loss of the epoch with every row repeated ``w_i``
times, whatever the batch size. Dividing by the batch's own weight
``sum_i w_i`` (torch's ``CrossEntropyLoss(weight=)`` convention) cancels
the weights at ``batch_size=1`` and dilutes them in small batches.
"""

import numpy as np
import torch
from skorch.utils import to_tensor

__all__ = ["check_class_weight_labels", "criterion_loss", "epoch_mean_weight",
           "month_class_weights", "row_weights", "weighted_loss"]


def criterion_loss(net, y_pred, y_true):
    """The criterion's loss of a batch, as skorch's classifier computes it
    (``NeuralNetClassifier.get_loss``: the log of the probabilities for an
    ``NLLLoss``, the labels moved to the device), without its two layers of
    calls: with a small network every Python call within a step costs a
    few microseconds (benchmarks/bench_step.py)."""
    criterion = net.criterion_
    if isinstance(criterion, torch.nn.NLLLoss):
        y_pred = torch.log(y_pred + torch.finfo(y_pred.dtype).eps)
    if not (isinstance(y_true, torch.Tensor) and y_true.device == y_pred.device):
        y_true = to_tensor(y_true, device=net.device)
    return criterion(y_pred, y_true)


def weighted_loss(net, y_pred, y_true, weights, X, training):
    """``(sum_i w_i l_i, sum_i w_i, reduction)`` of the batch, from the
    criterion's per-row losses (its ``reduction`` set to "none" for the
    call): the loss is their ratio, the weighted mean (or the weighted
    sum for a criterion with ``reduction="sum"``)."""
    criterion = net.criterion_
    if getattr(criterion, "reduction", None) not in ("mean", "sum", "none"):
        raise TypeError(
            f"sample_weight and class_weight need per-row losses, but the criterion "
            f"{type(criterion).__name__} has no reduction='none' mode. Use a torch "
            "loss (e.g. torch.nn.CrossEntropyLoss), or fit without weights."
        )
    reduction = criterion.reduction
    criterion.reduction = "none"
    try:
        rows = criterion_loss(net, y_pred, y_true)
    finally:
        criterion.reduction = reduction
    weights = torch.as_tensor(weights).to(device=rows.device, dtype=rows.dtype)
    if rows.shape != weights.shape:
        raise ValueError(
            f"The criterion returned per-row losses of shape {tuple(rows.shape)} for "
            f"{len(weights)} weighted rows; sample_weight and class_weight need one "
            "loss per row."
        )
    return (rows * weights).sum(), weights.sum(), reduction


def month_class_weights(net, data):
    """The class weights of this month as a tensor on the device (one per
    class index), or None: ``class_weight`` resolved on the rows of the
    month's first epoch."""
    class_weight = net.class_weight
    if class_weight is None:
        return None
    n_classes = len(net.classes_)
    if class_weight == "balanced":
        labels = data.plan_labels().cpu()
        counts = torch.bincount(labels, minlength=n_classes).double()
        vector = len(labels) / (n_classes * counts.clamp_min(1))
        # A class absent from the month's rows has no balanced weight;
        # 1 keeps its rows elsewhere (DER's buffer) at their plain weight.
        vector[counts == 0] = 1.0
    else:
        vector = torch.ones(n_classes, dtype=torch.float64)
        for label, weight in class_weight.items():
            # Indexed by output unit (output_classes_, which new classes extend).
            vector[int(np.flatnonzero(net.output_classes_ == label)[0])] = float(weight)
    return vector.to(device=net.device, dtype=torch.float32)


def check_class_weight_labels(net, classes):
    if isinstance(net.class_weight, dict):
        unknown = [k for k in net.class_weight if not np.any(classes == k)]
        if unknown:
            raise ValueError(
                f"class_weight has labels {unknown[:10]} that are not classes of y "
                f"({classes.tolist()}); use the labels of y as its keys."
            )


def row_weights(net, y, sample_weight=None):
    """Per-row loss weights of rows with class indices ``y`` in the month
    being trained (``sample_weight`` times the month's class weights),
    or None when rows are not weighted; on the device of the class
    weights. The loss of every batch uses it, and strategies weigh the
    rows of what they compute from a month with it (the EWC Fisher)."""
    class_weights = net.__dict__.get("month_class_weight_")
    if class_weights is None:
        return sample_weight
    per_row = class_weights[torch.as_tensor(y).to(class_weights.device)]
    if sample_weight is None:
        return per_row
    return torch.as_tensor(sample_weight).to(per_row.device) * per_row


def epoch_mean_weight(net, data):
    """The mean loss weight (:func:`row_weights`) of the rows of the epoch's
    plan of ``data`` (a :class:`~sklearn_cf._data.MonthData`), or None when
    rows are not weighted (or the plan is empty).

    It is what a training batch's weighted loss is divided by, per row: the
    plan is the rows the epoch actually trains on (new rows, replayed rows,
    ``epoch_size`` draws, without the held-out ones), so a replay mix keeps
    each source's share of the weight.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from sklearn_cf import ContinualClassifier
    >>> from sklearn_cf._data import MonthData
    >>> X = np.zeros((4, 2)); y = np.array([0, 0, 0, 1])
    >>> clf = ContinualClassifier(max_epochs=1, random_state=0).fit(X, y)
    >>> data = MonthData([(torch.zeros(4, 2), torch.tensor([0, 0, 0, 1]))],
    ...                  weights=[torch.tensor([1.0, 1.0, 2.0, 4.0])]).resample(None)
    >>> epoch_mean_weight(clf, data)
    2.0
    """
    if data.plan is None or not len(data.plan):
        return None
    sample_weight = data.plan_weights()
    if sample_weight is None and net.__dict__.get("month_class_weight_") is None:
        return None
    weights = row_weights(net, data.plan_labels(), sample_weight)
    return float(weights.double().mean())
