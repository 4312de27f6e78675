"""New classes: the output layer grows by one unit per class never seen.

Labels are encoded by *output unit*: the base fit's classes in sorted order,
then the classes each later month adds, in sorted order within a month,
appended after them (``output_classes_``). So a class keeps its index for
ever, and everything stored as class indices (replay memories, joint's
history) stays valid when classes are added. ``classes_`` stays sorted, as
scikit-learn's estimators have it, and ``predict_proba``'s columns follow
``classes_`` (reordered from the output units when they differ).

Growing is one step of a month's transaction (``run_month``'s ``start``):
every object it changes is *replaced*, never changed in place (the module,
the optimizer, the snapshots, ``classes_inferred_`` and the strategy's
state), so a month that fails afterwards restores the smaller model exactly.
"""

import copy
import math

import numpy as np
import torch
from torch import nn

from .._labels import check_classes
from .._mlp import MLP
from ..strategies import silent_state
from ._month import MonthSnapshot

__all__ = ["grow_classes", "new_labels", "encode_labels"]


def encode_labels(y, output_classes):
    """Output-unit index of each label of ``y``, and the labels not among
    ``output_classes`` (sorted, distinct): ``(codes, unseen)``; ``codes`` is
    None when some label is unseen."""
    order = np.argsort(output_classes, kind="stable")
    ordered = output_classes[order]
    pos = np.clip(np.searchsorted(ordered, y), 0, len(ordered) - 1)
    missing = ordered[pos] != y
    if np.any(missing):
        return None, np.unique(np.asarray(y)[missing])
    return order[pos], ordered[:0]


def new_labels(y, output_classes, declared=None):
    """The labels of ``y`` (and of ``declared``, a ``classes=`` list) that
    are not in ``output_classes``, sorted, and the output-unit index of each
    label of ``y`` when there is none (else None): ``(labels, codes)``.

    One binary search per row (:func:`encode_labels`) and a sort of the
    unseen rows' labels only, rather than a sort of every label: a month of
    millions of rows pays for its labels once."""
    codes, unseen = encode_labels(y, output_classes)
    labels = unseen
    if declared is not None:
        labels = np.union1d(labels, np.setdiff1d(declared, output_classes))
    return labels, (codes if not len(labels) else None)


def _output_layer(module, owner):
    if isinstance(module, MLP) and isinstance(module.layers[-1], nn.Linear):
        return module.layers[-1]
    raise ValueError(
        f"{owner} grows the output layer of its default network for new classes; "
        f"this model's module is {type(module).__name__}. Declare every class up front "
        "with classes=[...] (the classes parameter, or at the first partial_fit_month)."
    )


def _grown_module(net, n_new):
    """A copy of ``net.module_`` whose output layer has ``n_new`` units: the
    old units' weights and biases exactly, the new ones drawn as
    ``nn.Linear``'s default initialization draws them (uniform in
    ``+-1/sqrt(fan_in)``, kaiming_uniform with ``a=sqrt(5)``), from a
    generator seeded from ``net.rng_``."""
    module = copy.deepcopy(net.module_)
    layer = _output_layer(module, type(net).__name__)
    n_old, fan_in = layer.out_features, layer.in_features
    generator = torch.Generator().manual_seed(int(net.rng_.integers(np.iinfo(np.int64).max)))
    weight = torch.empty(n_new - n_old, fan_in, dtype=layer.weight.dtype)
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    bias = torch.empty(n_new - n_old, dtype=layer.weight.dtype)
    nn.init.uniform_(bias, -bound, bound, generator=generator)
    device = layer.weight.device
    grown = nn.Linear(fan_in, n_new, bias=layer.bias is not None, device=device,
                      dtype=layer.weight.dtype)
    with torch.no_grad():
        grown.weight.copy_(torch.cat([layer.weight.detach(), weight.to(device)]))
        if layer.bias is not None:
            grown.bias.copy_(torch.cat([layer.bias.detach(), bias.to(device)]))
    grown.train(layer.training)
    module.layers[-1] = grown
    return module


def _padded_optimizer_state(state, params):
    """An optimizer ``state_dict`` whose per-parameter tensors (Adam's
    moments, SGD's momentum) are padded with zero rows to the shapes of
    ``params`` (the new optimizer's parameters, in its order)."""
    state = copy.deepcopy(state)
    for index, entry in state["state"].items():
        shape = tuple(params[index].shape)
        for key, value in entry.items():
            if (isinstance(value, torch.Tensor) and value.dim() == len(shape)
                    and value.dim() > 0 and tuple(value.shape) != shape):
                extra = torch.zeros((shape[0] - value.shape[0], *value.shape[1:]),
                                    dtype=value.dtype, device=value.device)
                entry[key] = torch.cat([value, extra])
    return state


def grow_classes(net, labels):
    """Give ``net`` one new output unit per label of ``labels`` (sorted,
    none already a class), and make its optimizer, snapshots and strategy
    follow. Called inside the month's transaction."""
    old = net.classes_inferred_
    classes = np.concatenate([old, np.asarray(labels)])
    check_classes(classes.tolist(), "the classes with the new ones")
    n_old, n_new = len(old), len(classes)

    module = _grown_module(net, n_new)
    optimizer_state = net.optimizer_.state_dict()
    net.module_ = module
    net.initialize_optimizer()
    params = [p for group in net.optimizer_.param_groups for p in group["params"]]
    net.optimizer_.load_state_dict(_padded_optimizer_state(optimizer_state, params))
    net.classes_inferred_ = classes

    # Snapshots predicted with the old classes: the new ones get probability 0.
    reference = {k: v.cpu() for k, v in module.state_dict().items()}
    net.snapshots_ = [MonthSnapshot(s.month, [silent_state(st, reference) for st in s.states])
                      for s in net.snapshots_]
    net.strategy_.grow_classes(net, n_old, n_new)
