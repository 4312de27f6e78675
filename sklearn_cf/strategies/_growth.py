"""Tensors that follow the network when its output layer grows (new classes).

When a month brings classes the model has never seen, the estimator gives
the output layer one new unit per new class (appended after the old ones),
then calls every strategy's :meth:`~sklearn_cf.strategies.Strategy.grow_classes`
so that its state fits the grown network. The helpers here pad a
per-parameter dict (anchors, a Fisher diagonal) or a whole state dict (an
ensemble member, a snapshot) to the grown network's shapes.

Only parameters whose shape changed are touched, and only along their first
dimension (one row per output unit): the old rows are kept exactly.
"""

import torch

__all__ = ["pad_rows", "grow_parameters", "silent_state"]


def pad_rows(tensor, n_rows, value=0.0):
    """``tensor`` with rows appended up to ``n_rows`` rows, filled with ``value``
    (the first rows are ``tensor``'s, exactly).

    Examples
    --------
    >>> import torch
    >>> pad_rows(torch.tensor([1.0, 2.0]), 3, value=-1.0)
    tensor([ 1.,  2., -1.])
    """
    extra = n_rows - tensor.shape[0]
    if extra <= 0:
        return tensor
    filler = torch.full((extra, *tensor.shape[1:]), value, dtype=tensor.dtype,
                        device=tensor.device)
    return torch.cat([tensor, filler])


def grow_parameters(tensors, net, fill="zeros"):
    """A per-parameter dict (anchors, Fisher) padded to ``net.module_``'s shapes.

    Parameters
    ----------
    tensors : dict of str -> Tensor, or None
        Keyed by the module's parameter names.
    net : ContinualClassifier
        Its module already grown.
    fill : {"zeros", "current"}, default="zeros"
        What the new rows hold: zeros (a Fisher: no pull on new units), or
        the grown module's current values of those rows (anchors: the pull
        measured from the new units' initial weights).

    Returns
    -------
    dict or None
        A new dict (``tensors`` itself is never changed); None stays None.
    """
    if tensors is None:
        return None
    params = dict(net.module_.named_parameters())
    grown = {}
    for name, tensor in tensors.items():
        param = params.get(name)
        if param is None or tuple(param.shape) == tuple(tensor.shape):
            grown[name] = tensor
            continue
        n_old = tensor.shape[0]
        if fill == "current":
            new_rows = param.detach()[n_old:].to(tensor.device, tensor.dtype)
            grown[name] = torch.cat([tensor, new_rows.clone()])
        else:
            grown[name] = pad_rows(tensor, param.shape[0], 0.0)
    return grown


def silent_state(state, reference):
    """A state dict of the network before growth, as one of the grown network
    that gives every new class probability 0.

    The old entries are kept exactly; the new output units get weights 0
    and bias ``-inf``, so their logit is ``-inf`` on every row and softmax
    gives them exactly 0 while the old classes' logits (and probabilities)
    are those of ``state``. Used for ensemble members and snapshots: a
    network that was never trained on a class never predicts it.

    Parameters
    ----------
    state : dict of str -> Tensor
    reference : dict of str -> Tensor
        A state dict of the grown network (its shapes).

    Returns
    -------
    dict
        A new dict when some entry grew, else ``state`` itself.
    """
    if all(tuple(reference[k].shape) == tuple(v.shape) for k, v in state.items()
           if k in reference):
        return state
    grown = {}
    for name, tensor in state.items():
        shape = tuple(reference[name].shape) if name in reference else tuple(tensor.shape)
        if shape == tuple(tensor.shape):
            grown[name] = tensor
        elif tensor.dim() == 1:  # a bias: logit -inf
            grown[name] = pad_rows(tensor, shape[0], float("-inf"))
        else:
            grown[name] = pad_rows(tensor, shape[0], 0.0)
    return grown
