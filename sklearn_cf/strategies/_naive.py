"""Naive fine-tuning: the baseline that forgets."""

from ._base import Strategy, attribute_savepoint

__all__ = ["Naive"]


class Naive(Strategy):
    """Keep training the current network on the new month only.

    The cheapest update (cost proportional to the new month) and the one
    that forgets: nothing keeps the weights near what older months needed.

    Examples
    --------
    >>> from sklearn_cf.strategies import Naive
    >>> Naive()
    Naive()
    """

    name = "naive"

    def grow_classes(self, net, n_old, n_new):
        """Nothing to change: naive keeps no state about the classes."""

    # Hooks rebind attributes or append to lists: no tensor changes in place.
    savepoint = attribute_savepoint

    def __repr__(self):
        return "Naive()"
