"""L2 pull toward the weights of the previous month."""

import numpy as np
import torch

from .._param_validation import Real
from ._base import Strategy, attribute_savepoint
from ._growth import grow_parameters
from ._pull import add_pull_gradient, anchor_parameters, to_device, weighted_distance

__all__ = ["L2"]


class L2(Strategy):
    """Fine-tune with an L2 penalty toward the previous month's weights.

    ``loss += reg_lambda / 2 * sum_i (theta_i - theta_prev_i)^2``, where
    ``theta_prev`` are the weights at the end of the previous month.

    Parameters
    ----------
    reg_lambda : float >= 0, default=1.0
        Strength of the pull. Larger: less forgetting and less learning of
        the new month; 0 is naive fine-tuning. No extra cost beyond one
        subtraction per parameter per step.

    Examples
    --------
    >>> from sklearn_cf.strategies import L2
    >>> L2(reg_lambda=10.0)
    L2(reg_lambda=10.0)
    """

    name = "l2"

    _parameter_constraints = {"reg_lambda": Real(0, np.inf)}

    def __init__(self, reg_lambda=1.0):
        self.reg_lambda = reg_lambda

    def start(self, net):
        self.anchors = None
        # None: every anchored entry pulled alike; after new classes, 1 for
        # the old entries and 0 for the new output units' (see grow_classes).
        self.pull_weights = None

    def penalty(self, net):
        if self.anchors is None or self.reg_lambda == 0:
            return None
        return 0.5 * self.reg_lambda * weighted_distance(net, self.anchors,
                                                         self.pull_weights)

    @property
    def closed_form_penalty(self):
        # A subclass that redefines penalty() keeps the autograd route.
        return type(self).penalty is L2.penalty

    def penalty_gradient(self, net):
        if self.closed_form_penalty and self.anchors is not None and self.reg_lambda != 0:
            add_pull_gradient(net, self.anchors, self.reg_lambda, self.pull_weights,
                              owner=self)

    def end_month(self, net, X, y):
        self.anchors = anchor_parameters(net)
        self.pull_weights = None

    def grow_classes(self, net, n_old, n_new):
        """New output units are not pulled (they had no previous weights)
        until the month that trains them ends; their anchors are their
        initial weights. The old entries are pulled as before."""
        if self.anchors is None:
            return
        weights = self.pull_weights or {name: torch.ones_like(a)
                                        for name, a in self.anchors.items()}
        self.pull_weights = grow_parameters(weights, net, fill="zeros")
        self.anchors = grow_parameters(self.anchors, net, fill="current")

    def load_state_dict(self, state, net):
        self.anchors = to_device(state["anchors"], net.device)
        self.pull_weights = to_device(state.get("pull_weights"), net.device)

    # Hooks rebind attributes or append to lists: no tensor changes in place.
    savepoint = attribute_savepoint

    def __repr__(self):
        return f"L2(reg_lambda={self.reg_lambda})"
