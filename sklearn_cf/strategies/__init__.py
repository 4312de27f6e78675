"""Monthly update strategies: small objects with a few hooks.

A strategy name given to :class:`sklearn_cf.ContinualClassifier` is turned
into one of these objects by :func:`make_strategy`; a user may also pass an
instance of a :class:`Strategy` subclass.
"""

import copy

from .._validation import check_choice
from ._base import Combined, Strategy
from ._ensemble import Ensemble
from ._ewc import EWC
from ._joint import Joint
from ._l2 import L2
from ._memory import AllRowsMemory, ReservoirMemory
from ._naive import Naive
from ._replay import Replay

__all__ = [
    "STRATEGIES",
    "AllRowsMemory",
    "Combined",
    "EWC",
    "Ensemble",
    "Joint",
    "L2",
    "Naive",
    "Replay",
    "ReservoirMemory",
    "Strategy",
    "make_strategy",
]

#: Every strategy name :class:`~sklearn_cf.ContinualClassifier` accepts.
STRATEGIES = ("naive", "replay", "l2", "ewc", "joint", "ensemble", "replay+l2", "replay+ewc")


def make_strategy(strategy, *, reg_lambda=1.0, rehearsal_ratio=0.5, epoch_size=None,
                  memory_size=None, fisher="empirical", memory_dir=None):
    """Build a fresh strategy object from a name and flat hyperparameters.

    Parameters
    ----------
    strategy : str or Strategy
        One of :data:`STRATEGIES`, or a strategy object, which is deep-copied
        so that fitting never changes the object the user passed.
    reg_lambda, rehearsal_ratio, epoch_size, memory_size, fisher, memory_dir
        Passed to the strategies that use them; ignored by the others.

    Returns
    -------
    Strategy

    Examples
    --------
    >>> make_strategy("replay+ewc", reg_lambda=100.0)
    Combined(Replay(rehearsal_ratio=0.5, epoch_size=None, memory_size=None), EWC(reg_lambda=100.0, fisher='empirical'))
    >>> make_strategy("ewc+replay")
    Traceback (most recent call last):
    ...
    ValueError: Unknown strategy='ewc+replay'. Valid values: ... Did you mean 'replay+ewc'?
    """
    if isinstance(strategy, Strategy):
        return copy.deepcopy(strategy)
    if not isinstance(strategy, str):
        raise TypeError(
            f"strategy must be one of {STRATEGIES} or a sklearn_cf.strategies.Strategy "
            f"instance, got {type(strategy).__name__}."
        )
    if strategy not in STRATEGIES and "+" in strategy:
        reordered = [name for name in STRATEGIES if set(name.split("+")) == set(strategy.split("+"))]
        if reordered:
            raise ValueError(
                f"Unknown strategy={strategy!r}. Valid values: "
                f"{', '.join(map(repr, STRATEGIES))}. Did you mean {reordered[0]!r}?"
            )
    check_choice(strategy, "strategy", STRATEGIES)
    parts = {
        "naive": lambda: Naive(),
        "joint": lambda: Joint(memory_dir),
        "ensemble": lambda: Ensemble(),
        "replay": lambda: Replay(rehearsal_ratio, epoch_size, memory_size, memory_dir),
        "l2": lambda: L2(reg_lambda),
        "ewc": lambda: EWC(reg_lambda, fisher),
    }
    names = strategy.split("+")
    built = [parts[name]() for name in names]
    return built[0] if len(built) == 1 else Combined(*built)
