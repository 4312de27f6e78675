"""Monthly update strategies: small objects with a few hooks.

A strategy name given to :class:`sklearn_cf.ContinualClassifier` is turned
into one of these objects by :func:`make_strategy` (the names and classes are
in :data:`BUILTIN`, see :mod:`._registry`); a user may also pass an instance
of a :class:`Strategy` subclass.
"""

from ._base import Combined, Strategy
from ._class_balanced import ClassBalancedMemory
from ._der import DER, DERPlusPlus
from ._ensemble import Ensemble
from ._ewc import EWC
from ._joint import Joint
from ._l2 import L2
from ._lwf import LwF
from ._memory import AllRowsMemory, ReservoirMemory
from ._naive import Naive
from ._online_ewc import OnlineEWC
from ._registry import (
    BUILTIN,
    COMBINATIONS,
    STRATEGIES,
    make_strategy,
    strategy_classes,
    strategy_parameters,
)
from ._replay import Replay

__all__ = [
    "BUILTIN",
    "COMBINATIONS",
    "STRATEGIES",
    "AllRowsMemory",
    "ClassBalancedMemory",
    "Combined",
    "DER",
    "DERPlusPlus",
    "EWC",
    "Ensemble",
    "Joint",
    "L2",
    "LwF",
    "Naive",
    "OnlineEWC",
    "Replay",
    "ReservoirMemory",
    "Strategy",
    "make_strategy",
    "strategy_classes",
    "strategy_parameters",
]
