"""The pull toward anchor weights shared by L2, EWC and online EWC.

``reg_lambda / 2 * sum_i w_i (theta_i - anchor_i)^2`` with ``w = 1`` (L2) or
a Fisher diagonal (EWC). Its gradient is added in closed form after the
backward pass (:func:`add_pull_gradient`), two elementwise operations per
parameter and no autograd graph; :func:`weighted_distance` gives its value.
"""

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


def add_pull_gradient(net, anchors, reg_lambda, weights=None):
    """Add the gradient of ``reg_lambda/2 * sum_i w_i (theta_i - anchor_i)^2``,
    ``reg_lambda * w * (theta - anchor)``, to each anchored parameter's
    ``.grad`` in place: two elementwise ops per parameter, no autograd graph."""
    with torch.no_grad():
        for name, p in net.module_.named_parameters():
            if name not in anchors:
                continue
            diff = p - anchors[name]
            if weights is not None:
                diff.mul_(weights[name])
            if p.grad is None:
                p.grad = diff.mul_(reg_lambda)
            else:
                p.grad.add_(diff, alpha=reg_lambda)
