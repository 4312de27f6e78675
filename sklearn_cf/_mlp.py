"""The default network: a multilayer perceptron for tabular rows."""

import math

import torch
from torch import nn

__all__ = ["MLP", "GeneratorDropout"]


class GeneratorDropout(nn.Module):
    """Inverted dropout that draws its mask from an explicit generator.

    ``torch.nn.Dropout`` always draws from the process-wide RNG, so two
    models trained at once in threads (``GridSearchCV(n_jobs=2)`` with the
    threading backend) disturb each other's masks. This layer draws from
    ``self.generator`` when one is set, which keeps each fit reproducible.

    Parameters
    ----------
    p : float, default=0.0
        Probability that an element is zeroed during training.

    Examples
    --------
    >>> import torch
    >>> drop = GeneratorDropout(0.5).eval()
    >>> drop(torch.ones(2, 3))
    tensor([[1., 1., 1.],
            [1., 1., 1.]])
    """

    def __init__(self, p=0.0):
        super().__init__()
        self.p = float(p)
        self.generator = None

    def forward(self, X):
        if not self.training or self.p == 0.0:
            return X
        keep = 1.0 - self.p
        mask = torch.empty_like(X).bernoulli_(keep, generator=self.generator)
        return X * mask / keep

    def __getstate__(self):
        # A generator is transient training state (it may live on a GPU):
        # never pickle it with the weights.
        state = super().__getstate__().copy()
        state["generator"] = None
        return state

    def extra_repr(self):
        return f"p={self.p}"


class MLP(nn.Module):
    """Fully connected ReLU network that returns class logits.

    Parameters
    ----------
    n_features : int
        Number of input columns.
    n_classes : int
        Number of output logits.
    hidden_units : sequence of int, default=(256, 256)
        Width of each hidden layer; an empty sequence gives a linear model.
    dropout : float, default=0.0
        Dropout probability after each hidden layer.

    Notes
    -----
    The layers live in ``self.layers``, an ``nn.Sequential`` of ``Linear``,
    ``ReLU`` and :class:`GeneratorDropout` modules, and ``forward`` is just
    ``self.layers(X)``. :func:`sklearn_cf.fisher_diagonal` relies on that
    chain structure for its exact Hessian-diagonal route.

    Examples
    --------
    >>> import torch
    >>> net = MLP(n_features=4, n_classes=3, hidden_units=(8,))
    >>> net(torch.zeros(5, 4)).shape
    torch.Size([5, 3])
    """

    def __init__(self, n_features, n_classes, hidden_units=(256, 256), dropout=0.0):
        super().__init__()
        layers = []
        width = int(n_features)
        for units in hidden_units:
            layers += [nn.Linear(width, int(units)), nn.ReLU()]
            if dropout > 0:
                layers.append(GeneratorDropout(dropout))
            width = int(units)
        layers.append(nn.Linear(width, int(n_classes)))
        self.layers = nn.Sequential(*layers)

    def forward(self, X):
        return self.layers(X)

    def reset_parameters(self, generator=None):
        """Draw fresh weights, from ``generator`` instead of the global RNG.

        The distribution is ``nn.Linear``'s default (uniform in
        ``+-1/sqrt(fan_in)``); only the source of randomness differs, so
        parallel fits in threads cannot disturb each other's initialization.
        """
        for layer in self.layers:
            if isinstance(layer, nn.Linear):
                nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
                bound = 1.0 / math.sqrt(layer.in_features)
                nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
        return self

    def set_generator(self, generator):
        """Route every dropout layer's randomness through ``generator``."""
        for layer in self.layers:
            if isinstance(layer, GeneratorDropout):
                layer.generator = generator
