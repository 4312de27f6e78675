"""Naive fine-tuning: the baseline that forgets."""

from ._base import Strategy

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

    def __repr__(self):
        return "Naive()"
