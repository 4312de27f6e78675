"""Elastic Weight Consolidation: a Fisher-weighted L2 pull."""

import warnings

import numpy as np
import torch

from .._param_validation import Integer, Options, Real
from ._base import Strategy, attribute_savepoint
from ._growth import grow_parameters
from ._pull import add_pull_gradient, anchor_parameters, to_device, weighted_distance

__all__ = ["EWC"]


class EWC(Strategy):
    """Fine-tune with a Fisher-weighted pull toward last month's weights.

    ``loss += reg_lambda / 2 * sum_i F_i (theta_i - theta_prev_i)^2``, with
    ``theta_prev`` the weights at the end of the previous month and ``F``
    the diagonal Fisher information computed then, on that month's training
    rows, by :func:`sklearn_cf.fisher_diagonal`. With ``sample_weight`` or
    ``class_weight``, each row's term is weighted as its loss was.

    Parameters
    ----------
    reg_lambda : float >= 0, default=1e4
        Strength of the pull; Fisher entries are small (often 1e-6..1e-2),
        so useful values are far larger than for L2 (1e2..1e5; the default
        is the one docs/results.md measured on the synthetic stream).
        Larger: less forgetting, less learning.
    fisher : {"empirical", "true", "hessian"}, default="empirical"
        How ``F`` is estimated: squared per-sample gradients with the
        observed labels, their expectation under the model's predictions,
        or the exact Hessian diagonal of the loss.
    fisher_rows : int or None, default=None
        None: ``F`` over every training row of the month (exact). An int:
        over a uniform sample of at most this many of them (drawn from the
        estimator's ``random_state``), so its cost stops growing with the
        month: an exact Fisher costs about one epoch (0.8-0.9x on the CPU,
        docs/performance_log.md), a sample of ``fisher_rows`` rows that share
        of it. The estimate's noise shrinks as ``1/sqrt(fisher_rows)``.

    Attributes
    ----------
    negative_shares : list of float
        For ``fisher="hessian"``, the share of Hessian-diagonal entries that
        were negative at the end of each month. They are clipped to 0 (with
        a warning) since a negative weight would *reward* moving away.

    Notes
    -----
    Computing ``F`` costs about one extra pass over the month's rows (the
    empirical and true kinds use an exact per-sample route for ``nn.Linear``
    layers). Kirkpatrick et al., "Overcoming catastrophic forgetting in neural
    networks", PNAS 2017, whose penalty ``lambda/2 sum_i F_i (theta_i -
    theta*_i)^2`` this is, with ``reg_lambda = lambda``. Avalanche's
    ``EWCPlugin`` adds ``ewc_lambda * sum F (theta - theta*)^2`` (no 1/2),
    so ``reg_lambda = 2 * ewc_lambda`` for the same ``F``; its ``F`` is
    squared mini-batch gradients (about the per-row Fisher over the batch
    size), so its useful values differ further.

    Examples
    --------
    >>> from sklearn_cf.strategies import EWC
    >>> EWC(reg_lambda=100.0, fisher="true")
    EWC(reg_lambda=100.0, fisher='true')
    """

    name = "ewc"
    #: Its Fisher is the log-likelihood's: the criterion must give it.
    needs_log_likelihood = True

    _parameter_constraints = {
        "reg_lambda": Real(0, np.inf),
        "fisher": Options("empirical", "true", "hessian"),
        "fisher_rows": Integer(1, none=True),
    }

    def __init__(self, reg_lambda=1e4, fisher="empirical", fisher_rows=None):
        self.reg_lambda = reg_lambda
        self.fisher = fisher
        self.fisher_rows = fisher_rows

    def fisher_sample(self, net, X, y, sample_weight=None):
        """The rows the Fisher is computed on: all of them, or a uniform
        sample of ``fisher_rows`` (in row order, drawn from ``net.rng_``)."""
        n = len(y)
        if self.fisher_rows is None or n <= self.fisher_rows:
            return X, y, sample_weight
        rows = np.sort(net.rng_.choice(n, size=self.fisher_rows, replace=False))
        index = torch.from_numpy(rows)
        return X[index], y[index], None if sample_weight is None else sample_weight[index]

    def start(self, net):
        self.anchors = None
        self.fisher_diag = None
        self.negative_shares = []

    def penalty(self, net):
        if self.anchors is None or self.reg_lambda == 0:
            return None
        return 0.5 * self.reg_lambda * weighted_distance(net, self.anchors, self.fisher_diag)

    @property
    def closed_form_penalty(self):
        # A subclass that redefines penalty() keeps the autograd route.
        return type(self).penalty is EWC.penalty

    def penalty_gradient(self, net):
        if self.closed_form_penalty and self.anchors is not None and self.reg_lambda != 0:
            add_pull_gradient(net, self.anchors, self.reg_lambda, self.fisher_diag, owner=self)

    def end_month(self, net, X, y, sample_weight=None):
        self.anchors = anchor_parameters(net)
        X, y, sample_weight = self.fisher_sample(net, X, y, sample_weight)
        # Rows weigh in the Fisher as they weighed in the month's loss; the
        # estimator may compute it over several processes' rows.
        diag = net.month_fisher(X, y, kind=self.fisher, sample_weight=sample_weight)
        if self.fisher == "hessian":
            n_neg = sum(int((d < 0).sum()) for d in diag.values())
            n_all = sum(d.numel() for d in diag.values())
            share = n_neg / max(n_all, 1)
            self.negative_shares.append(share)
            if n_neg:
                warnings.warn(
                    f"{share:.1%} of the Hessian diagonal entries are negative; "
                    "they are clipped to 0. fisher='empirical' or 'true' are "
                    "never negative.",
                    RuntimeWarning,
                    stacklevel=2,
                )
                diag = {name: d.clamp_min(0) for name, d in diag.items()}
        self.fisher_diag = diag

    def grow_classes(self, net, n_old, n_new):
        """New output units get Fisher 0 (no pull until a month trained on
        them ends) and anchors equal to their initial weights."""
        self.anchors = grow_parameters(self.anchors, net, fill="current")
        self.fisher_diag = grow_parameters(self.fisher_diag, net, fill="zeros")

    def load_state_dict(self, state, net):
        self.anchors = to_device(state["anchors"], net.device)
        self.fisher_diag = to_device(state["fisher_diag"], net.device)
        self.negative_shares = list(state["negative_shares"])

    # Hooks rebind attributes or append to lists: no tensor changes in place.
    savepoint = attribute_savepoint

    def __repr__(self):
        rows = "" if self.fisher_rows is None else f", fisher_rows={self.fisher_rows}"
        return f"EWC(reg_lambda={self.reg_lambda}, fisher={self.fisher!r}{rows})"
