"""Strategy specs: ``name[:param=value,...]`` strings and the constants they use.

A strategy is given as a *spec* string: a name from
:data:`sklearn_cf.strategies.STRATEGIES`, optionally followed by ``:`` and
comma-separated ``param=value`` overrides of
:class:`~sklearn_cf.ContinualClassifier` parameters or of the strategy's own
parameters, e.g. ``"naive:finetune_lr=1e-4"``,
``"ewc:fisher=hessian,reg_lambda=1000"``, ``"replay:epoch_size=2000"`` or
``"lwf:alpha=2"`` (``strategy__alpha=2``).

The names and the strategies' own parameters come from the strategy
registry (:mod:`sklearn_cf.strategies._registry`), so a strategy added
there works in specs with no change here. Every other constant that
describes what a spec may hold (:data:`SPEC_PARAMS`, the numeric types,
:data:`DEFAULT_STRATEGIES`) lives in this one module, next to
:func:`parse_strategy`, which reads them.
"""

import difflib
from dataclasses import dataclass, field

from ..strategies import _registry

__all__ = [
    "DEFAULT_REG_LAMBDA",
    "DEFAULT_STRATEGIES",
    "SPEC_PARAMS",
    "StrategySpec",
    "parse_hidden_units",
    "parse_strategy",
]

#: The strategies compared by default: the study's methods, its lower
#: fine-tune learning rate, and the two combinations.
DEFAULT_STRATEGIES = (
    "naive",
    "naive:finetune_lr=1e-4",
    "replay",
    "l2",
    "ewc",
    "joint",
    "ensemble",
    "replay+l2",
    "replay+ewc",
)

#: ``reg_lambda`` of each strategy that has one, when neither the spec nor
#: ``estimator_params`` sets it: the strategy class's own default, read from
#: the registry. Fisher entries are small, so EWC needs a far larger pull
#: than L2: on the default synthetic stream (seed 0, 12 months of 2000 rows)
#: EWC with lambda <= 1000 forgets as much as naive, and 1e4 to 1e5 stops
#: most of it; L2 is best near 1 (docs/results.md).
DEFAULT_REG_LAMBDA = {
    name: cls.param_defaults()["reg_lambda"]
    for name, cls in _registry.BUILTIN.items() if "reg_lambda" in cls._get_param_names()
}

#: ContinualClassifier parameters a spec may override (plus any
#: ``optimizer__*`` or ``module__*`` parameter).
SPEC_PARAMS = (
    "batch_size",
    "device",
    "dropout",
    "epoch_size",
    "finetune_epochs",
    "finetune_lr",
    "fisher",
    "hidden_units",
    "lr",
    "max_epochs",
    "max_snapshots",
    "memory_policy",
    "memory_size",
    "reg_lambda",
    "rehearsal_ratio",
)
_PREFIXES = ("optimizer__", "module__", "strategy__")
# Parameters whose values are always kept as strings ("fisher=true").
_STRING_PARAMS = ("device", "fisher", "memory_policy")
# The type each numeric spec parameter needs (None allowed where the
# estimator allows it).
_FLOAT_PARAMS = ("dropout", "finetune_lr", "lr", "reg_lambda", "rehearsal_ratio")
_INT_PARAMS = ("batch_size", "epoch_size", "finetune_epochs", "max_epochs", "max_snapshots",
               "memory_size")


@dataclass(frozen=True)
class StrategySpec:
    """A parsed strategy spec: a strategy name and parameter overrides.

    Attributes
    ----------
    label : str
        The spec as given (whitespace removed); the strategy's name in
        results and tables.
    strategy : str
        A name from :data:`sklearn_cf.strategies.STRATEGIES`.
    params : dict
        ContinualClassifier parameters set for this strategy only (the
        strategy's own parameters as ``strategy__<param>``).
    """

    label: str
    strategy: str
    params: dict = field(default_factory=dict)


def _parse_value(text):
    """``"1e-4"`` -> 0.0001, ``"3"`` -> 3, ``"None"`` -> None, else the string."""
    lowered = text.lower()
    if lowered == "none":
        return None
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def parse_hidden_units(text, where="hidden_units"):
    """Read hidden layer widths joined by ``x``: ``"64x64"`` -> ``(64, 64)``.

    Parameters
    ----------
    text : str
        Widths joined by ``x`` (``"256x256"``, ``"128"``); ``""`` gives
        ``()``, a linear model.
    where : str, default="hidden_units"
        What the text came from (an option or a spec), named in the error.

    Returns
    -------
    tuple of int

    Raises
    ------
    ValueError
        For text that is not widths joined by ``x``.

    Examples
    --------
    >>> from sklearn_cf.compare import parse_hidden_units
    >>> parse_hidden_units("64x64"), parse_hidden_units("128"), parse_hidden_units("")
    ((64, 64), (128,), ())
    >>> parse_hidden_units("64,64", "--hidden-units")
    Traceback (most recent call last):
    ...
    ValueError: --hidden-units: hidden_units must be widths joined by 'x' (e.g. 64x64), got '64,64'.
    """
    text = str(text)
    try:
        return tuple(int(part) for part in text.lower().split("x") if part != "")
    except ValueError:
        raise ValueError(
            f"{where}: hidden_units must be widths joined by 'x' (e.g. 64x64), "
            f"got {text!r}."
        ) from None


def _check_spec_type(spec, key, value):
    if key in _FLOAT_PARAMS:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        ok = ok or (value is None and key == "finetune_lr")
        want = "a number"
    elif key in _INT_PARAMS:
        ok = isinstance(value, int) and not isinstance(value, bool)
        ok = ok or (value is None and key not in ("batch_size", "max_epochs"))
        want = "an integer"
    else:
        return
    if not ok:
        raise ValueError(
            f"In strategy spec {spec!r}: {key} must be {want}, got {value!r}."
        )


def parse_strategy(spec):
    """Parse a strategy spec ``name[:param=value,param=value]``.

    Parameters
    ----------
    spec : str or StrategySpec
        A strategy name from :data:`sklearn_cf.strategies.STRATEGIES`,
        optionally with :class:`~sklearn_cf.ContinualClassifier` parameter
        overrides after a colon, or parameters of the strategy itself
        (:func:`sklearn_cf.strategies.strategy_parameters`; they become
        ``strategy__<param>``). Values are read as int, float, None,
        True/False or else a string (``fisher``, ``device`` and
        ``memory_policy`` always as strings); ``hidden_units`` takes widths
        joined by ``x`` (``hidden_units=64x64``).

    Returns
    -------
    StrategySpec

    Raises
    ------
    ValueError
        For an unknown strategy name or parameter (naming the closest valid
        ones), a malformed ``param=value`` pair or a repeated parameter.

    Examples
    --------
    >>> from sklearn_cf.compare import parse_strategy
    >>> parse_strategy("naive:finetune_lr=1e-4")
    StrategySpec(label='naive:finetune_lr=1e-4', strategy='naive', params={'finetune_lr': 0.0001})
    >>> parse_strategy("ewc:fisher=hessian,reg_lambda=100").params
    {'fisher': 'hessian', 'reg_lambda': 100}
    >>> parse_strategy("lwf:alpha=2,temperature=3").params
    {'strategy__alpha': 2, 'strategy__temperature': 3}
    >>> parse_strategy("naiv")
    Traceback (most recent call last):
    ...
    ValueError: Unknown strategy 'naiv' in spec 'naiv'. Valid names: ... Did you mean 'naive'?
    """
    if isinstance(spec, StrategySpec):
        return spec
    if not isinstance(spec, str):
        raise ValueError(
            f"A strategy spec must be a string like 'naive' or "
            f"'naive:finetune_lr=1e-4', got {spec!r}."
        )
    label = "".join(spec.split())
    name, _, rest = label.partition(":")
    names = _registry.STRATEGIES
    if name not in names:
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.4)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"Unknown strategy {name!r} in spec {spec!r}. Valid names: "
            f"{', '.join(names)}.{hint}"
        )
    # The strategy's own parameters that no flat parameter sets.
    own = sorted(set(_registry.strategy_parameters(name)) - set(SPEC_PARAMS)
                 - {"memory_dir"})
    params = {}
    if rest:
        for item in rest.split(","):
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise ValueError(
                    f"In strategy spec {spec!r}: {item!r} is not of the form "
                    "param=value (e.g. naive:finetune_lr=1e-4,max_epochs=5)."
                )
            if key in own:
                key = f"strategy__{key}"
            elif key not in SPEC_PARAMS and not key.startswith(_PREFIXES):
                valid = list(SPEC_PARAMS) + own
                close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                mine = f" {name}'s own parameters: {', '.join(own)};" if own else ""
                raise ValueError(
                    f"Unknown parameter {key!r} in strategy spec {spec!r}.{mine} "
                    f"other parameters: {', '.join(SPEC_PARAMS)}, optimizer__*, "
                    f"module__*.{hint}"
                )
            if key in params:
                raise ValueError(f"Parameter {key!r} is given twice in spec {spec!r}.")
            if key == "hidden_units":
                params[key] = parse_hidden_units(value, f"In strategy spec {spec!r}")
            elif key in _STRING_PARAMS:
                params[key] = value
            else:
                params[key] = _parse_value(value)
                _check_spec_type(spec, key, params[key])
    return StrategySpec(label, name, params)
