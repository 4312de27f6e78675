"""Honest tuning inside a comparison: ``compare_strategies(tune_months=K)``.

For each strategy with something to tune (λ of a pull, the rehearsal ratio
of replay, or the parameters of ``tune_grid``), and each split: every
candidate setting is fitted on the split's training rows of the months up to
the cutoff only and chosen by its deployed score there (each month scored by
the model trained through the month before); then every candidate is
trained on every month, and the months after the cutoff are scored with the
chosen setting (honest) and with the best setting in hindsight (the oracle,
what a search over every month reports). See
:func:`sklearn_cf.model_selection.honest_tuning` for the same protocol
around a user's own ``GridSearchCV``.
"""

import numpy as np
from sklearn.model_selection import ParameterGrid

from .._compat import nanmean
from ..metrics import forgetting_matrix
from ..model_selection import HonestTuningResult, deployed_scores, tuning_cutoffs
from ..strategies import STRATEGIES, strategy_classes, strategy_parameters
from ._specs import (
    _STRING_PARAMS,
    SPEC_PARAMS,
    StrategySpec,
    _check_spec_type,
    _parse_value,
)

__all__ = ["default_tune_grid", "parse_tune_grid"]

# Estimator parameters that only the fine-tuning strategies use: those that
# keep training one network (a strategy with a part that trains a fresh model
# every month, ``fresh_model``, never fine-tunes). A parameter a strategy
# declares (sklearn_cf.strategies.strategy_parameters) applies to the
# strategies that declare it; any other parameter applies to all.
_FINE_TUNING = ("finetune_lr", "finetune_epochs")


def _uses(strategy, key):
    """Whether ``strategy`` (a name such as "replay+ewc") uses parameter ``key``
    (a flat parameter, or ``strategy__<param>``)."""
    key = key[len("strategy__"):] if key.startswith("strategy__") else key
    own = strategy_parameters(strategy)
    if key in own:
        return True
    if key in _FINE_TUNING:
        return not any(cls.fresh_model for cls in strategy_classes(strategy))
    declared = {k for name in STRATEGIES for k in strategy_parameters(name)}
    return key not in declared


#: Rehearsal ratios tried for replay when no grid is given.
DEFAULT_REHEARSAL_RATIOS = (0.25, 0.5, 0.75)


def parse_tune_grid(text):
    """Read ``"param=v1,v2;param=v1,v2"`` (``--tune-grid``) as a parameter grid.

    Parameters
    ----------
    text : str
        ``;``-separated ``param=values`` items, the values comma-separated
        and read as in a strategy spec (``1e-4`` -> 0.0001, ``None``).

    Returns
    -------
    dict of str to list

    Raises
    ------
    ValueError
        For an item that is not ``param=values``, an empty list of values or
        a repeated parameter.

    Examples
    --------
    >>> from sklearn_cf.compare import parse_tune_grid
    >>> parse_tune_grid("reg_lambda=0.1,1,10; rehearsal_ratio=0.25,0.5")
    {'reg_lambda': [0.1, 1, 10], 'rehearsal_ratio': [0.25, 0.5]}
    >>> parse_tune_grid("fisher=true,empirical")
    {'fisher': ['true', 'empirical']}
    """
    grid = {}
    for item in (part.strip() for part in str(text).split(";")):
        if not item:
            continue
        key, sep, values = item.partition("=")
        key = key.strip()
        values = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not key or not values:
            raise ValueError(
                f"--tune-grid item {item!r} is not of the form param=value,value "
                "(e.g. reg_lambda=0.1,1,10;rehearsal_ratio=0.25,0.5)."
            )
        if key in grid:
            raise ValueError(f"--tune-grid gives {key!r} twice.")
        # As in a spec: fisher=true stays the string "true".
        grid[key] = values if key in _STRING_PARAMS else [_parse_value(v) for v in values]
    if not grid:
        raise ValueError("--tune-grid is empty: give e.g. reg_lambda=0.1,1,10.")
    return grid


def default_tune_grid(spec, effective_params, tune_grid=None):
    """The settings honest tuning tries for one strategy.

    Parameters
    ----------
    spec : StrategySpec
    effective_params : dict
        The parameters the strategy runs with (its spec's, the shared ones
        and the default ``reg_lambda``).
    tune_grid : dict of str to list or None, default=None
        The grid asked for; each parameter is kept only for the strategies
        that use it: a parameter some strategy declares
        (:func:`sklearn_cf.strategies.strategy_parameters`: ``reg_lambda``,
        ``rehearsal_ratio``, ``fisher``, ``alpha``...) for the strategies
        that declare it, ``finetune_*`` for the fine-tuning strategies, any
        other for all. None: λ at a tenth, one and ten times its value for a
        strategy with a pull, else the rehearsal ratios 0.25, 0.5 and 0.75
        for one with replay, else nothing (pass a grid to tune, e.g., the
        ``alpha`` of lwf or der).

    Returns
    -------
    dict of str to list
        Empty when the strategy has nothing to tune (e.g. naive, joint or
        ensemble without a grid).

    Examples
    --------
    >>> from sklearn_cf.compare import default_tune_grid, parse_strategy
    >>> default_tune_grid(parse_strategy("ewc"), {"reg_lambda": 1e4})
    {'reg_lambda': [1000.0, 10000.0, 100000.0]}
    >>> default_tune_grid(parse_strategy("replay"), {})
    {'rehearsal_ratio': [0.25, 0.5, 0.75]}
    >>> default_tune_grid(parse_strategy("joint"), {})
    {}
    >>> default_tune_grid(parse_strategy("joint"), {}, {"reg_lambda": [1, 10], "lr": [1e-3]})
    {'lr': [0.001]}
    >>> default_tune_grid(parse_strategy("lwf"), {}, {"alpha": [1, 5]})
    {'strategy__alpha': [1, 5]}
    """
    own = strategy_parameters(spec.strategy)
    if tune_grid is not None:
        grid = {}
        for key, values in tune_grid.items():
            if not _uses(spec.strategy, key):
                continue
            bare = key[len("strategy__"):] if key.startswith("strategy__") else key
            if bare in own and bare not in SPEC_PARAMS:
                key = f"strategy__{bare}"  # the strategy's own (lwf's alpha)
            grid[key] = list(values)
        return grid
    if "reg_lambda" in own:
        lam = effective_params.get("reg_lambda")
        lam = float(own["reg_lambda"] if lam is None else lam)
        return {"reg_lambda": [lam / 10, lam, lam * 10]}
    if "rehearsal_ratio" in own:
        return {"rehearsal_ratio": list(DEFAULT_REHEARSAL_RATIOS)}
    return {}


def check_tune_grid(tune_grid):
    """Check the types of a tuning grid's values, as a spec's are checked."""
    if tune_grid is None:
        return None
    if not isinstance(tune_grid, dict) or not tune_grid:
        raise ValueError(
            f"tune_grid must be a non-empty dict of parameter to values, e.g. "
            f"{{'reg_lambda': [0.1, 1, 10]}}; got {tune_grid!r}."
        )
    for key, values in tune_grid.items():
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise ValueError(f"tune_grid[{key!r}] must be a list of values, got {values!r}.")
        values = list(values)
        if not values:
            raise ValueError(f"tune_grid[{key!r}] is empty.")
        for value in values:
            try:
                _check_spec_type("", key, value)
            except ValueError as exc:
                raise ValueError("tune_grid: " + str(exc).partition(": ")[2]) from None
    return {k: list(v) for k, v in tune_grid.items()}


def candidate_specs(spec, grid):
    """One :class:`StrategySpec` per setting of ``grid`` (the spec's own
    parameters overridden by the grid's)."""
    return [StrategySpec(spec.label, spec.strategy, {**spec.params, **params})
            for params in ParameterGrid(grid)]


def _month_positions(months, labels):
    position = {m: k for k, m in enumerate(labels)}
    return np.array([position[m] for m in months.tolist()])


def tune_on_split(spec, grid, build, features, y, months, labels, train, test, scoring,
                  tune_months, tune_every):
    """Honest tuning of one strategy on one split; see the module docstring.

    ``build(spec)`` returns an unfitted classifier; ``features(index)`` the
    split's (scaled) rows. Every choice is made, on months up to its cutoff
    only, before any candidate is fitted on later months.
    """
    candidates = candidate_specs(spec, grid)
    cutoffs = tuning_cutoffs(len(labels), tune_months, tune_every)
    train_pos = _month_positions(months[train], labels)
    test_pos = _month_positions(months[test], labels)

    def deployed(candidate, last):
        rows, held = train[train_pos <= last], test[test_pos <= last]
        clf = build(candidate)
        clf.fit(features(rows), y[rows], months=months[rows])
        fm = forgetting_matrix(clf, features(held), y[held], months[held], scoring=scoring)
        return deployed_scores(fm)

    choices = []
    for cutoff in cutoffs:
        means = [nanmean(deployed(c, cutoff)[1:]) for c in candidates]
        choices.append(int(np.nanargmax(means)) if not np.all(np.isnan(means)) else 0)
    scores = np.array([deployed(c, len(labels) - 1) for c in candidates])
    name = scoring if isinstance(scoring, str) else getattr(scoring, "name", "score")
    return HonestTuningResult.from_deployed_scores(
        name, tune_months, labels, cutoffs, list(ParameterGrid(grid)), choices, scores)


def tuning_months_trained(n_months, tune_months, tune_every, n_candidates):
    """Months trained by :func:`tune_on_split`, for the progress bar."""
    cutoffs = tuning_cutoffs(n_months, tune_months, tune_every)
    return n_candidates * (sum(c + 1 for c in cutoffs) + n_months)
