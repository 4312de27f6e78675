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
from ..metrics import default_scoring, forgetting_matrix, resolve_scoring
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


#: For each built-in strategy part, its parameters that change nothing in the
#: training of the first month: the month (0-based, in training order) from
#: whose training on they can change the model. A pull (l2, EWC) and
#: distillation (LwF) need the model of the month before; replay's memory is
#: empty during the first month; online EWC's gamma decays the accumulated
#: Fisher, first at the end of month 1, so it first acts on month 2. DER is
#: left out (a faithful DER replays rows of the current month too). Any other parameter
#: (lr, hidden_units, max_epochs, a plug-in's) is taken to act from month 0.
_ACTS_FROM = {
    "l2": {"reg_lambda": 1},
    "ewc": {"reg_lambda": 1, "fisher": 1, "fisher_rows": 1},
    "online_ewc": {"reg_lambda": 1, "fisher": 1, "fisher_rows": 1, "gamma": 2},
    "lwf": {"alpha": 1, "temperature": 1},
    "replay": {"rehearsal_ratio": 1, "epoch_size": 1, "memory_size": 1,
               "memory_policy": 1, "memory_dir": 1},
}


def first_acting_month(strategy, key):
    """The first month (0-based) whose training ``key`` can change.

    Parameters
    ----------
    strategy : str
        A strategy name, e.g. ``"replay+ewc"``.
    key : str
        A parameter (``reg_lambda``, ``strategy__alpha``, ``lr``...).

    Returns
    -------
    int
        0 for a parameter that shapes the first month's fit (``lr``,
        ``hidden_units``, any parameter not known to wait); 1 for one that
        acts only once a model is fine-tuned (``reg_lambda``,
        ``rehearsal_ratio``, ``finetune_lr``...); 2 for online EWC's
        ``gamma``.

    Examples
    --------
    >>> from sklearn_cf.compare._tuning import first_acting_month
    >>> first_acting_month("ewc", "reg_lambda"), first_acting_month("ewc", "lr")
    (1, 0)
    >>> first_acting_month("online_ewc", "gamma"), first_acting_month("naive", "finetune_lr")
    (2, 1)
    """
    bare = key.removeprefix("strategy__")
    if bare in _FINE_TUNING:
        return 1
    months = [_ACTS_FROM.get(getattr(cls, "name", None), {}).get(bare, 0)
              for cls in strategy_classes(strategy) if bare in cls.param_defaults()]
    return min(months) if months else 0


def smallest_tune_months(strategy, grid):
    """The smallest ``tune_months`` at which a parameter of ``grid`` that
    takes several values has acted on a scored month; None when no parameter
    of ``grid`` takes several values (nothing to choose).

    The choice after ``tune_months`` months scores months ``1..tune_months-1``,
    each with the model trained through the month before; a parameter acting
    from month ``a`` first changes the score of month ``a + 1``, so it needs
    ``tune_months >= a + 2``.

    Examples
    --------
    >>> from sklearn_cf.compare._tuning import smallest_tune_months
    >>> smallest_tune_months("l2", {"reg_lambda": [0.1, 1, 10]})
    3
    >>> smallest_tune_months("l2", {"reg_lambda": [0.1, 1], "lr": [1e-3, 1e-2]})
    2
    >>> smallest_tune_months("l2", {"reg_lambda": [1]}) is None
    True
    """
    varying = [key for key, values in grid.items()
               if len({repr(v) for v in values}) > 1]
    if not varying:
        return None
    return min(first_acting_month(strategy, key) for key in varying) + 2


def check_tune_months(specs, grids, tune_months):
    """Refuse a ``tune_months`` at which no tuned parameter has acted yet.

    Raises
    ------
    ValueError
        Naming the strategy, its parameters and the smallest
        ``tune_months`` that works.
    """
    for spec in specs:
        grid = grids.get(spec.label) or {}
        need = smallest_tune_months(spec.strategy, grid)
        if need is not None and tune_months < need:
            varying = sorted(k for k, v in grid.items() if len({repr(x) for x in v}) > 1)
            params = " and ".join(varying)
            verb = "changes" if len(varying) == 1 else "change"
            scored = (f"month {tune_months}" if tune_months == 2
                      else f"months 2 to {tune_months}")
            raise ValueError(
                f"tune_months={tune_months} cannot tune {params} of {spec.label!r}: the "
                f"choice scores {scored}, each with the model trained through the month "
                f"before, and {params} first {verb} the model when month {need - 1} is "
                f"trained, so every setting would tie and the first would be reported as "
                f"chosen. Use tune_months >= {need}, or also tune a parameter that shapes "
                f"the first month (e.g. lr or hidden_units)."
            )


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


def past_columns(X_past):
    """The columns with a non-zero value in ``X_past`` (a cutoff's training
    rows), or None when every column has one or ``X_past`` is not numeric.

    A category first seen after the cutoff is a one-hot column of zeros up to
    it (``load_table`` encodes the whole file); dropping such columns feeds
    the choice what an encoder fitted on months up to the cutoff with
    ``handle_unknown="ignore"`` would, whatever later months hold.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cf.compare._tuning import past_columns
    >>> past_columns(np.array([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0]]))
    array([0, 2])
    >>> past_columns(np.eye(2)) is None
    True
    """
    values = np.asarray(X_past)
    if values.ndim != 2 or values.dtype.kind not in "biuf":
        return None
    keep = np.flatnonzero((values != 0).any(axis=0))
    return None if len(keep) == values.shape[1] else keep


def _take_columns(X, columns):
    if columns is None:
        return X
    if hasattr(X, "iloc"):
        return X.iloc[:, columns]
    return np.asarray(X)[:, columns]


def tune_on_split(spec, grid, build, features, y, months, labels, train, test, scoring,
                  tune_months, tune_every, auto_scoring=False, prevalence=False):
    """Honest tuning of one strategy on one split; see the module docstring.

    ``build(spec)`` returns an unfitted classifier; ``features(index)`` the
    split's (scaled) rows. Every choice is made, on months up to its cutoff
    only, before any candidate is fitted on later months. Everything a choice
    depends on comes from those months: the split (each month's own, see
    :class:`~sklearn_cf.SequentialSplit`), the columns (those with a value in
    their training rows, :func:`past_columns`) and, with ``auto_scoring``,
    the scoring (:func:`~sklearn_cf.metrics.default_scoring` of their
    training rows; of their held-out rows with ``prevalence``, as the table
    chooses).
    """
    candidates = candidate_specs(spec, grid)
    settings = list(ParameterGrid(grid))
    cutoffs = tuning_cutoffs(len(labels), tune_months, tune_every)
    train_pos = _month_positions(months[train], labels)
    test_pos = _month_positions(months[test], labels)
    name = scoring if isinstance(scoring, str) else getattr(scoring, "name", "score")

    def deployed(candidate, rows, held, X_rows, X_held, scorer):
        clf = build(candidate)
        clf.fit(X_rows, y[rows], months=months[rows])
        fm = forgetting_matrix(clf, X_held, y[held], months[held], scoring=scorer)
        return deployed_scores(fm)

    choices, choice_scoring, choice_scores, ties, reasons = [], [], [], [], []
    for cutoff in cutoffs:
        rows, held = train[train_pos <= cutoff], test[test_pos <= cutoff]
        scorer, scorer_name, reason = scoring, name, None
        if auto_scoring:
            scorer_name, reason = default_scoring(y[held if prevalence else rows])
            scorer, scorer_name = resolve_scoring(scorer_name)
        X_rows, X_held = features(rows), features(held)
        columns = past_columns(X_rows)
        X_rows, X_held = _take_columns(X_rows, columns), _take_columns(X_held, columns)
        means = np.array([nanmean(deployed(c, rows, held, X_rows, X_held, scorer)[1:])
                          for c in candidates])
        if np.all(np.isnan(means)):
            choice, tied = 0, list(range(len(candidates)))
        else:
            choice = int(np.nanargmax(means))
            tied = np.flatnonzero(means == means[choice]).tolist()
        choices.append(choice)
        choice_scoring.append(scorer_name)
        reasons.append(reason)
        choice_scores.append(means.tolist())
        ties.append([settings[i] for i in tied] if len(tied) > 1 else [])
    X_train, X_test = features(train), features(test)
    scores = np.array([deployed(c, train, test, X_train, X_test, scoring) for c in candidates])
    return HonestTuningResult.from_deployed_scores(
        name, tune_months, labels, cutoffs, settings, choices, scores,
        choice_scoring=choice_scoring, choice_scoring_reasons=reasons,
        choice_scores=choice_scores, ties=ties)


def tuning_months_trained(n_months, tune_months, tune_every, n_candidates):
    """Months trained by :func:`tune_on_split`, for the progress bar."""
    cutoffs = tuning_cutoffs(n_months, tune_months, tune_every)
    return n_candidates * (sum(c + 1 for c in cutoffs) + n_months)
