"""Strategy specs: ``name[:param=value,...]`` strings and the constants they use.

A strategy is given as a *spec* string: a name from
:func:`sklearn_cf.strategies.available_strategies` (a built-in, a
combination or a plugin), optionally followed by ``:`` and comma-separated
``param=value`` overrides of :class:`~sklearn_cf.ContinualClassifier`
parameters or of the strategy's own parameters, e.g.
``"naive:finetune_lr=1e-4"``, ``"ewc:fisher=hessian,reg_lambda=1000"``,
``"replay:epoch_size=2000"`` or ``"lwf:alpha=2"`` (``strategy__alpha=2``).

The names, the strategies' own parameters and the types of the strategy
parameters a spec may set flat (``reg_lambda``, ``memory_size``,
``fisher``...) come from the strategies' own declarations (their
constructors and ``_parameter_constraints``, read through
:func:`sklearn_cf.strategies.strategy_parameters` and
:func:`sklearn_cf.strategies.parameter_constraints`), so a strategy added
there, or a plugin, works in specs with no change here. The other
parameters a spec may set (``lr``, ``device``...) are declared once here,
in ``_ESTIMATOR_SPEC_TYPES``, next to :func:`parse_strategy`, which reads
them.
"""

import difflib
import inspect
from dataclasses import dataclass, field

from .._estimator import ContinualClassifier
from .._param_validation import Integer, Options, Real
from ..strategies import BUILTIN, available_strategies, parameter_constraints, strategy_parameters

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
#: its constructor. Fisher entries are small, so EWC needs a far larger pull
#: than L2: on the default synthetic stream (seed 0, 12 months of 2000 rows)
#: EWC with lambda <= 1000 forgets as much as naive, and 1e4 to 1e5 stops
#: most of it; L2 is best near 1 (docs/results.md).
DEFAULT_REG_LAMBDA = {
    name: strategy_parameters(name)["reg_lambda"]
    for name in BUILTIN if "reg_lambda" in strategy_parameters(name)
}

# The ContinualClassifier parameters a spec may set that no strategy
# declares, with the kind of value each takes and whether None is allowed:
# "float" (any number), "int", "str" (kept as the text given: fisher=true
# stays "true"), or None (read as it comes; hidden_units: widths "64x64").
_ESTIMATOR_SPEC_TYPES = {
    "batch_size": ("int", False),
    "device": ("str", False),
    "dropout": ("float", False),
    "finetune_epochs": ("int", True),
    "finetune_lr": ("float", True),
    "hidden_units": (None, False),
    "lr": ("float", False),
    "max_epochs": ("int", False),
    "max_snapshots": ("int", True),
}
# Strategy parameters of the classifier that a spec does not set.
_NOT_IN_SPECS = ("memory_dir",)


def _kind(constraint):
    """The kind of value a strategy parameter's constraint takes, and
    whether None is allowed (see ``_ESTIMATOR_SPEC_TYPES``)."""
    if isinstance(constraint, Real):
        return "float", constraint.none
    if isinstance(constraint, Integer):
        return "int", constraint.none
    if isinstance(constraint, Options) and all(isinstance(c, str) for c in constraint.choices):
        return "str", False
    return None, False


def _strategy_spec_types():
    """The flat ContinualClassifier parameters that built-in strategies
    declare (``reg_lambda``, ``rehearsal_ratio``, ``fisher``...), each with
    the kind its first declaring strategy's constraint gives."""
    flat = set(inspect.signature(ContinualClassifier.__init__).parameters) - set(_NOT_IN_SPECS)
    types = {}
    for name in BUILTIN:
        for param, constraint in parameter_constraints(name).items():
            if param in flat:
                types.setdefault(param, _kind(constraint))
    return types


_SPEC_TYPES = {**_strategy_spec_types(), **_ESTIMATOR_SPEC_TYPES}

#: ContinualClassifier parameters a spec may override (plus any
#: ``optimizer__*`` or ``module__*`` parameter): those of
#: ``_ESTIMATOR_SPEC_TYPES`` and the flat parameters the built-in
#: strategies declare.
SPEC_PARAMS = tuple(sorted(_SPEC_TYPES))
_PREFIXES = ("optimizer__", "module__", "strategy__")
# Parameters whose values are always kept as strings ("fisher=true").
_STRING_PARAMS = tuple(sorted(k for k, (kind, _) in _SPEC_TYPES.items() if kind == "str"))


@dataclass(frozen=True)
class StrategySpec:
    """A parsed strategy spec: a strategy name and parameter overrides.

    Attributes
    ----------
    label : str
        The spec as given (whitespace removed); the strategy's name in
        results and tables.
    strategy : str
        A name from :func:`sklearn_cf.strategies.available_strategies`.
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
    """Refuse a value of the wrong kind for a parameter of :data:`SPEC_PARAMS`
    (other keys are checked when the estimator is built)."""
    kind, none = _SPEC_TYPES.get(key, (None, False))
    if kind == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        want = "a number"
    elif kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
        want = "an integer"
    else:
        return
    if not (ok or (value is None and none)):
        raise ValueError(
            f"In strategy spec {spec!r}: {key} must be {want}, got {value!r}."
        )


def parse_strategy(spec):
    """Parse a strategy spec ``name[:param=value,param=value]``.

    Parameters
    ----------
    spec : str or StrategySpec
        A strategy name from
        :func:`sklearn_cf.strategies.available_strategies` (a plugin's
        included), optionally with :class:`~sklearn_cf.ContinualClassifier`
        parameter overrides after a colon, or parameters of the strategy
        itself (:func:`sklearn_cf.strategies.strategy_parameters`; they
        become ``strategy__<param>``). Values are read as int, float, None,
        True/False or else a string (a parameter whose declared values are
        strings, such as ``fisher``, ``device`` and ``memory_policy``,
        always as a string); ``hidden_units`` takes widths joined by ``x``
        (``hidden_units=64x64``).

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
    names = available_strategies()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.4)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"Unknown strategy {name!r} in spec {spec!r}. Valid names: "
            f"{', '.join(names)}.{hint}"
        )
    # The strategy's own parameters that no flat parameter sets.
    own = sorted(set(strategy_parameters(name)) - set(SPEC_PARAMS) - set(_NOT_IN_SPECS))
    # The strategy's own parameters whose declared values are strings.
    own_strings = {param for param, constraint in parameter_constraints(name).items()
                   if _kind(constraint)[0] == "str"}
    params = {}
    if rest:
        for item in rest.split(","):
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise ValueError(
                    f"In strategy spec {spec!r}: {item!r} is not of the form "
                    "param=value (e.g. naive:finetune_lr=1e-4,max_epochs=5)."
                )
            bare = key
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
            elif key in _STRING_PARAMS or (key != bare and bare in own_strings):
                params[key] = value
            else:
                params[key] = _parse_value(value)
                _check_spec_type(spec, key, params[key])
    return StrategySpec(label, name, params)
