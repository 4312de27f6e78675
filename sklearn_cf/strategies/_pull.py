"""The pull toward anchor weights shared by L2, EWC and online EWC.

``reg_lambda / 2 * sum_i w_i (theta_i - anchor_i)^2`` with ``w = 1`` (L2) or
a Fisher diagonal (EWC). Its gradient is added in closed form after the
backward pass (:func:`add_pull_gradient`): no autograd graph, and three
``torch._foreach_*`` calls over all the anchored parameters at once (two
without weights), planned once per anchor set rather than looked up by name
at every step; :func:`weighted_distance` gives its value.
"""

import weakref

import torch

__all__ = ["anchor_parameters", "to_device", "weighted_distance", "add_pull_gradient"]


def anchor_parameters(net):
    """Detached copies of the trainable parameters, on their device."""
    return {
        name: p.detach().clone()
        for name, p in net.module_.named_parameters()
        if p.requires_grad
    }


def to_device(tensors, device):
    """A dict of tensors moved to ``device`` (None stays None)."""
    if tensors is None:
        return None
    return {name: t.to(device) for name, t in tensors.items()}


def weighted_distance(net, anchors, weights=None):
    """sum_i w_i (theta_i - anchor_i)^2 over every anchored parameter."""
    total = 0.0
    for name, p in net.module_.named_parameters():
        if name not in anchors:
            continue
        sq = (p - anchors[name]).pow(2)
        total = total + (sq if weights is None else weights[name] * sq).sum()
    return total


class _PullPlan:
    """The anchored parameters of a module and their anchors and weights as
    aligned lists, so that a step's pull is a few ``torch._foreach_*`` calls
    with no lookup by name. Valid while the module, the anchors dict and the
    weights dict are the same objects (strategies rebind, never mutate, them:
    a new month, new classes, a rollback or a load each give new dicts)."""

    __slots__ = ("anchor_list", "anchors", "module", "params", "weight_list", "weights")

    def __init__(self, module, anchors, weights):
        named = [(name, p) for name, p in module.named_parameters() if name in anchors]
        self.module, self.anchors, self.weights = module, anchors, weights
        self.params = [p for _, p in named]
        self.anchor_list = [anchors[name] for name, _ in named]
        self.weight_list = None if weights is None else [weights[name] for name, _ in named]

    def fits(self, module, anchors, weights):
        return self.module is module and self.anchors is anchors and self.weights is weights


#: One plan per owner (a strategy), dropped with it; kept out of the
#: strategy's attributes so that its state_dict, savepoints and pickles
#: never see it.
_plans = weakref.WeakKeyDictionary()


def _plan(owner, module, anchors, weights):
    plan = _plans.get(owner) if owner is not None else None
    if plan is None or not plan.fits(module, anchors, weights):
        plan = _PullPlan(module, anchors, weights)
        if owner is not None:
            _plans[owner] = plan
    return plan


def add_pull_gradient(net, anchors, reg_lambda, weights=None, owner=None):
    """Add the gradient of ``reg_lambda/2 * sum_i w_i (theta_i - anchor_i)^2``,
    ``reg_lambda * w * (theta - anchor)``, to each anchored parameter's
    ``.grad`` in place.

    Three ``torch._foreach_*`` calls over all the anchored parameters
    (``theta - anchor``, times ``w``, added with ``alpha=reg_lambda``): the
    same operations in the same order as one parameter at a time, so the
    same bits. ``owner`` (the strategy) keys a plan of the aligned lists,
    rebuilt only when the module, ``anchors`` or ``weights`` is another
    object; without one the plan is built at every call.

    Parameters
    ----------
    net : ContinualClassifier
        Its ``module_``'s parameters, after the backward pass.
    anchors : dict of str to Tensor
        Anchor of each pulled parameter, by ``named_parameters`` name.
    reg_lambda : float
    weights : dict of str to Tensor or None, default=None
        ``w`` per parameter (a Fisher diagonal); None: 1.
    owner : object or None, default=None
        What the plan is kept for (weakly), usually the calling strategy.

    Examples
    --------
    >>> import torch
    >>> from types import SimpleNamespace
    >>> net = SimpleNamespace(module_=torch.nn.Linear(2, 1))
    >>> with torch.no_grad():
    ...     _ = net.module_.weight.copy_(torch.tensor([[1.0, 2.0]]))
    ...     _ = net.module_.bias.zero_()
    >>> anchors = {"weight": torch.zeros(1, 2), "bias": torch.zeros(1)}
    >>> net.module_.weight.grad = torch.ones(1, 2)
    >>> add_pull_gradient(net, anchors, 10.0, {"weight": torch.tensor([[0.5, 0.0]]),
    ...                                        "bias": torch.ones(1)})
    >>> net.module_.weight.grad    # 1 + 10 * w * (theta - 0)
    tensor([[6., 1.]])
    >>> net.module_.bias.grad      # no gradient yet: 10 * 1 * (0 - 0)
    tensor([0.])
    """
    plan = _plan(owner, net.module_, anchors, weights)
    params = plan.params
    if not params:
        return
    grads = [p.grad for p in params]
    with torch.no_grad():
        diffs = torch._foreach_sub(params, plan.anchor_list)
        if plan.weight_list is not None:
            torch._foreach_mul_(diffs, plan.weight_list)
        try:
            torch._foreach_add_(grads, diffs, alpha=reg_lambda)
            return
        except TypeError:  # a None among the gradients: refused before any change
            pass
        for p, g, diff in zip(params, grads, diffs):
            if g is None:  # no gradient from the loss (unused, or frozen after anchoring)
                p.grad = diff.mul_(reg_lambda)
            else:
                g.add_(diff, alpha=reg_lambda)
