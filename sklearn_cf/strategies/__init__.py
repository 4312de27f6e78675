"""Monthly update strategies: small objects with a few hooks.

A strategy name given to :class:`sklearn_cf.ContinualClassifier` is turned
into one of these objects by :func:`make_strategy`: a built-in name
(:data:`BUILTIN`, :data:`COMBINATIONS`), a name registered with
:func:`register_strategy`, or a plugin that an installed package declares in
the entry-point group ``"sklearn_cf.strategies"`` (:data:`ENTRY_POINT_GROUP`);
:func:`available_strategies` lists them all. A user may also pass an
instance of a :class:`Strategy` subclass.

Writing a strategy: subclass :class:`Strategy` and implement its hooks;
:class:`MonthData` is what ``month_data`` may return, and :func:`call_hook`
calls a part's ``month_data``/``end_month`` with the month's sample weights
when it takes them (as :class:`Combined` does).
"""

from .._data import MonthData
from ._base import Strategy, call_hook
from ._class_balanced import ClassBalancedMemory
from ._combined import Combined
from ._der import DER, DERPlusPlus
from ._ensemble import Ensemble
from ._ewc import EWC
from ._growth import grow_parameters, pad_rows, silent_state
from ._joint import Joint
from ._l2 import L2
from ._lwf import LwF
from ._memory import AllRowsMemory, ReservoirMemory
from ._naive import Naive
from ._online_ewc import OnlineEWC
from ._registry import (
    BUILTIN,
    COMBINATIONS,
    ENTRY_POINT_GROUP,
    STRATEGIES,
    available_strategies,
    make_strategy,
    parameter_constraints,
    register_strategy,
    strategy_classes,
    strategy_origin,
    strategy_parameters,
    unregister_strategy,
)
from ._replay import Replay

__all__ = [
    "BUILTIN",
    "COMBINATIONS",
    "ENTRY_POINT_GROUP",
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
    "MonthData",
    "Naive",
    "OnlineEWC",
    "Replay",
    "ReservoirMemory",
    "Strategy",
    "available_strategies",
    "call_hook",
    "grow_parameters",
    "make_strategy",
    "pad_rows",
    "parameter_constraints",
    "register_strategy",
    "silent_state",
    "strategy_classes",
    "strategy_origin",
    "strategy_parameters",
    "unregister_strategy",
]
