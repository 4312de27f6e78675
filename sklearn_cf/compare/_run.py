"""The comparison itself: :func:`compare_strategies` and :func:`check_comparison`."""

import numbers
import time

import numpy as np

import warnings

from .._atomic import SigintWatch
from .._compat import safe_indexing, to_python
from .._validation import group_by_month, month_label, take_rows
from ..datasets import FirstMonthScaler
from ..metrics import (
    default_scoring,
    forgetting_matrix,
    group_forgetting_matrices,
    monthly_detection,
    resolve_scoring,
    update_flips,
)
from ..model_selection import SequentialSplit
from ._baseline import _majority_baseline
from ._boosting import _boosting_reference, _boosting_threads
from ._bootstrap import bootstrap_draws, held_out_outputs
from ._comparison import Comparison
from ._estimators import _build_estimator, _check_estimator_params, _effective_params
from ._progress import _make_bar, _MonthProgress
from ._results import BASELINE_NAME, SplitRun, _add_relative, _aggregate
from ._specs import DEFAULT_STRATEGIES, StrategySpec, parse_strategy
from ._tuning import (
    candidate_specs,
    check_tune_grid,
    check_tune_months,
    default_tune_grid,
    tune_on_split,
    tuning_months_trained,
)

__all__ = ["check_comparison", "compare_strategies"]


def check_comparison(strategies=DEFAULT_STRATEGIES, *, scoring="auto",
                     estimator_params=None, random_state=0, target_fpr=None,
                     aut_scoring=None, tune_months=None, tune_every=None, tune_grid=None,
                     reference="hgb", reference_window=None, n_bootstrap=200):
    """Check strategy specs, scoring and parameters before any data is touched.

    Builds (without fitting) the estimator of every strategy, and of every
    setting honest tuning would try, and validates its hyperparameters,
    including that a requested CUDA device exists.

    Parameters
    ----------
    strategies, scoring, estimator_params, random_state, target_fpr, \
aut_scoring, tune_months, tune_every, tune_grid, reference, reference_window, n_bootstrap
        As in :func:`compare_strategies`.

    Returns
    -------
    specs : list of StrategySpec
    scorer : str or callable
        ``"auto"`` stays ``"auto"``: it is chosen from the target, which
        :func:`compare_strategies` sees.
    scoring_name : str
    estimator_params : dict

    Raises
    ------
    ValueError
        Naming the first problem found.

    Examples
    --------
    >>> from sklearn_cf.compare import check_comparison
    >>> specs, _, name, _ = check_comparison(["naive", "ewc:fisher=hessian"],
    ...                                      scoring="balanced_accuracy")
    >>> [s.label for s in specs], name
    (['naive', 'ewc:fisher=hessian'], 'balanced_accuracy')
    >>> check_comparison(["naive:finetune_lr=-1"])
    Traceback (most recent call last):
    ...
    ValueError: Strategy 'naive:finetune_lr=-1': finetune_lr must be in (0, inf..., got -1.
    """
    specs = [parse_strategy(s) for s in (
        [strategies] if isinstance(strategies, (str, StrategySpec)) else strategies
    )]
    if not specs:
        raise ValueError("strategies is empty: give at least one strategy spec.")
    labels = [s.label for s in specs]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise ValueError(f"Strategy specs must be distinct; repeated: {repeated}.")
    if isinstance(scoring, str) and scoring == "auto":
        scorer, scoring_name = "auto", "auto"
    else:
        scorer, scoring_name = resolve_scoring(scoring)
    estimator_params = dict(estimator_params or {})
    _check_estimator_params(estimator_params)
    try:
        _build_estimator(StrategySpec("naive", "naive"), estimator_params, random_state)
    except ValueError as exc:
        raise ValueError(str(exc).replace("Strategy 'naive': ", "", 1)) from None
    for spec in specs:
        _build_estimator(spec, estimator_params, random_state)
    _check_options(target_fpr, aut_scoring, tune_months, tune_every)
    _check_verdict_options(reference, reference_window, n_bootstrap)
    if tune_months is not None:
        tune_grid = check_tune_grid(tune_grid)
        grids = {}
        for spec in specs:
            grid = default_tune_grid(spec, _effective_params(spec, estimator_params), tune_grid)
            grids[spec.label] = grid
            for candidate in candidate_specs(spec, grid) if grid else ():
                _build_estimator(candidate, estimator_params, random_state)
        check_tune_months(specs, grids, tune_months)
    elif tune_grid is not None or tune_every is not None:
        raise ValueError(
            "tune_grid and tune_every apply to honest tuning: set tune_months too "
            "(the months the first choice is made on)."
        )
    return specs, scorer, scoring_name, estimator_params


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_verdict_options(reference, reference_window, n_bootstrap):
    """The reference row and the intervals' options."""
    if reference not in ("hgb", "none", None):
        raise ValueError(
            f"reference must be 'hgb' (gradient boosting retrained on the history every "
            f"month) or 'none', got {reference!r}."
        )
    if reference_window is not None and (not _is_int(reference_window)
                                         or reference_window < 1):
        raise ValueError(
            f"reference_window must be None (all history) or a number of months >= 1, "
            f"got {reference_window!r}."
        )
    if reference_window is not None and reference in ("none", None):
        raise ValueError("reference_window sets the reference's history: it needs "
                         "reference='hgb'.")
    if not _is_int(n_bootstrap) or n_bootstrap < 0 or 0 < n_bootstrap < 20:
        raise ValueError(
            f"n_bootstrap must be 0 (no intervals with one split) or an integer >= 20 "
            f"(resamples of the held-out rows; 200 is plenty), got {n_bootstrap!r}."
        )


def _check_options(target_fpr, aut_scoring, tune_months, tune_every):
    """The evaluation options that need no data."""
    if target_fpr is not None and (
        isinstance(target_fpr, bool) or not isinstance(target_fpr, numbers.Real)
        or not 0 < target_fpr < 1
    ):
        raise ValueError(
            f"target_fpr must be a false-positive rate in (0, 1), e.g. 0.01; got "
            f"{target_fpr!r}."
        )
    if aut_scoring is not None:
        resolve_scoring(aut_scoring)
    if tune_months is not None and (
        isinstance(tune_months, bool) or not isinstance(tune_months, numbers.Integral)
        or tune_months < 2
    ):
        raise ValueError(
            f"tune_months must be an integer >= 2, got {tune_months!r}: a setting is "
            "chosen by scoring each tuning month with the model trained through the "
            "month before, so the first choice needs two months."
        )
    if tune_every is not None and (
        isinstance(tune_every, bool) or not isinstance(tune_every, numbers.Integral)
        or tune_every < 1
    ):
        raise ValueError(f"tune_every must be None or an integer >= 1, got {tune_every!r}.")


def compare_strategies(X, y, months, strategies=DEFAULT_STRATEGIES, *, cv=None,
                       scoring="auto", scale="none", estimator_params=None,
                       progress=True, random_state=0, groups=None, target_fpr=None,
                       aut_scoring=None, test_prevalence=None, tune_months=None,
                       tune_every=None, tune_grid=None, reference="hgb",
                       reference_window=None, n_bootstrap=200):
    """Fit every strategy on the same splits and compare what they forget and cost.

    For each split of ``cv`` and each strategy, a
    :class:`~sklearn_cf.ContinualClassifier` is fitted on the split's
    training rows with ``months=``, from the same seed, and its
    :func:`~sklearn_cf.forgetting_matrix` is computed on the split's test
    rows. Matrices and summaries are averaged over splits (NaN-aware).

    The same is done for the *majority-class baseline*
    (:class:`BaselineResult`): after each month, a
    ``DummyClassifier(strategy="prior")`` fitted on the training rows of the
    months so far, scored with the same scorer on the same held-out rows. It
    is a row of the table, never a strategy: it is not in ``results``, is
    never recommended, and a strategy must beat it to be recommended.

    A ``KeyboardInterrupt`` (Ctrl-C) is never caught: it stops the
    comparison, and no :class:`Comparison` is returned. If a Ctrl-C reaches
    a fit that swallows it (skorch ends training on ``KeyboardInterrupt``),
    it is raised again as soon as that fit returns, so nothing is built on a
    half-trained strategy.

    Parameters
    ----------
    X : array-like or DataFrame of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    months : array-like of shape (n_samples,)
        Month label of each row (any sortable labels).
    strategies : sequence of str or StrategySpec, default=DEFAULT_STRATEGIES
        Strategy specs, ``name[:param=value,...]`` (see
        :func:`parse_strategy`). Names must be distinct.
    cv : SequentialSplit, int or None, default=None
        The splitter. None: ``SequentialSplit(n_splits=1, test_size=0.2,
        random_state=random_state, test_prevalence=test_prevalence)``; an
        int: that many splits. Its ``n_future_months`` keeps the last months
        out of training (TESSERACT's training strictly before testing).
    scoring : str or callable, default="auto"
        See :func:`resolve_scoring` (sklearn scorer names,
        ``"tpr_at_fpr:0.001"``, or a scorer callable). ``"auto"``: chosen
        from the whole ``y`` before any fitting by
        :func:`sklearn_cf.metrics.default_scoring` (roc_auc for a binary
        target whose rarer class is under 40% of rows, balanced_accuracy for
        more classes with one under 40%, else accuracy); the choice and its
        reason are kept in ``settings["scoring_reason"]``.
    scale : {"none", "first-month"}, default="none"
        ``"first-month"``: for each split, fit a :class:`FirstMonthScaler` on
        the split's *training* rows of its first month and standardize the
        split's training and test rows with it, so the held-out rows never
        shape the scaling. Streams of raw units (flights, most files) need
        it; :func:`resolve_scale` tells which. ``"none"``: features as given.
    estimator_params : dict or None, default=None
        ContinualClassifier parameters shared by every strategy (e.g.
        ``max_epochs``, ``hidden_units``, ``reg_lambda``, ``device``); a
        spec's own overrides take precedence.
    progress : bool, default=True
        Show a tqdm progress bar over strategies x splits x months.
    random_state : int, default=0
        Seed of every estimator and of the default splitter.
    groups : array-like of shape (n_samples,) or None, default=None
        The group of each row, e.g. its malware family: each strategy also
        gets an accuracy forgetting matrix per group of held-out rows (a
        family's detection rate), the forgetting of each group and the worst
        group (:func:`sklearn_cf.metrics.group_forgetting_matrices`).
    target_fpr : float in (0, 1) or None, default=None
        Binary targets: per month, the TPR at this false-positive rate with
        the threshold set on the previous month's held-out rows, and the
        FPR that threshold realises (:func:`sklearn_cf.metrics.monthly_detection`).
    aut_scoring : str or callable or None, default=None
        Also report the next-month area under time (TESSERACT) of this
        score, e.g. ``"f1"``, TESSERACT's choice for detection.
    test_prevalence : float in (0, 1) or None, default=None
        Binary targets: the positive share of every month's held-out rows
        (TESSERACT's realistic class ratio in testing), see
        :class:`~sklearn_cf.SequentialSplit`. Set it on ``cv`` instead when
        passing a splitter.
    tune_months : int >= 2 or None, default=None
        Honest tuning: for each strategy with something to tune
        (``tune_grid``), choose its setting on the split's rows of the first
        ``tune_months`` months only, keep training it month by month, and
        score the months after them, each with the model deployed on it;
        beside it, the oracle score of the best setting chosen on those very
        months (see :mod:`sklearn_cf.compare._tuning`). Every choice comes
        from fits that saw no later month, and everything it depends on from
        the months up to it: each month's held-out rows (drawn per month),
        the columns with a value in their training rows, and with
        ``scoring="auto"`` the scoring, chosen from their training rows. A
        ``tune_months`` at which no tuned parameter has acted yet (2 for λ
        or the rehearsal ratio: month 2 is scored with the model of month 1)
        is refused, naming the smallest that works.
    tune_every : int or None, default=None
        Choose again every this many months.
    tune_grid : dict of str to list or None, default=None
        The settings tried, each parameter for the strategies that use it
        (see :func:`default_tune_grid`); None: λ of a pull at 0.1x, 1x and
        10x, the rehearsal ratio of replay at 0.25, 0.5 and 0.75.
    reference : {"hgb", "none"}, default="hgb"
        ``"hgb"``: a reference row (:class:`ReferenceResult`), what a team
        retraining a gradient-boosted model every month scores: after each
        month, scikit-learn's ``HistGradientBoostingClassifier`` (default
        parameters, ``early_stopping=False``, seeded) fitted on the training
        rows of every month so far, scored like the strategies. Like the
        baseline it is never recommended; the verdict says whether the
        chosen strategy beats it on the deployed month. ``"none"``: no
        reference.
    reference_window : int >= 1 or None, default=None
        Fit the reference on the last this many months only.
    n_bootstrap : int, default=200
        With one split: the paired resamples behind each interval of the
        table and the verdict, each of every month's held-out rows with a
        random weight per month, so that the intervals hold the
        month-to-month variation too (the same resamples and weights for
        every strategy; see :mod:`sklearn_cf.compare._bootstrap`).
        0: no intervals with one split. With several splits the intervals
        come from the splits (Student's t) and no resample is drawn.

    Before its timed fits, each strategy is fitted once, untimed, on two
    batches of rows of each of the first two training months (one epoch), so
    that torch's first-call costs in the process are charged to no strategy.

    Every strategy also gets its negative flip rate per update (rows right
    before an update and wrong after it, :func:`sklearn_cf.metrics.update_flips`).

    Returns
    -------
    Comparison

    Raises
    ------
    ValueError
        For a bad spec, scoring, scale or parameter (before anything is
        trained), or a score undefined on every month.
    KeyboardInterrupt
        On Ctrl-C, as soon as the current fit returns or at once.

    See Also
    --------
    sklearn_cf.report.write_report : write the comparison up with figures.

    Examples
    --------
    >>> from sklearn_cf.compare import compare_strategies
    >>> from sklearn_cf.datasets import make_monthly_drift
    >>> X, y, months = make_monthly_drift(n_months=3, n_samples_per_month=300, random_state=0)
    >>> comp = compare_strategies(
    ...     X, y, months, ["naive", "replay", "joint"], progress=False,
    ...     estimator_params={"max_epochs": 10, "hidden_units": (16,), "lr": 0.01})
    >>> comp.strategies
    ['naive', 'replay', 'joint']
    >>> comp.results["naive"].rows_vs_naive
    1.0
    >>> comp.results["joint"].matrix.R.shape
    (3, 3)
    >>> comp.recommend() in comp.strategies
    True
    >>> comp.scoring, comp.settings["scoring_reason"]  # doctest: +ELLIPSIS
    ('accuracy', 'accuracy, because the rarest class is 4...% of rows (40% or more)')
    >>> comp.baseline.name, comp.baseline.matrix.R.shape
    ('majority baseline', (3, 3))
    """
    specs, scorer, scoring_name, estimator_params = check_comparison(
        strategies, scoring=scoring, estimator_params=estimator_params,
        random_state=random_state, target_fpr=target_fpr, aut_scoring=aut_scoring,
        tune_months=tune_months, tune_every=tune_every, tune_grid=tune_grid,
        reference=reference, reference_window=reference_window, n_bootstrap=n_bootstrap,
    )
    aut_scorer, aut_name = (None, None) if aut_scoring is None else resolve_scoring(aut_scoring)
    # On the whole target, before any fitting: every split and every
    # strategy is scored alike.
    auto_name, auto_reason = default_scoring(y)
    scoring_reason = None
    if scorer == "auto":
        scoring_reason = auto_reason
        scorer, scoring_name = resolve_scoring(auto_name)
    if scale not in ("none", "first-month"):
        hint = (" Resolve 'auto' for a stream with resolve_scale(data, 'auto')."
                if scale == "auto" else "")
        raise ValueError(f"scale must be 'none' or 'first-month', got {scale!r}.{hint}")
    n_classes = len(np.unique(np.asarray(y)))
    if scoring_name.startswith("tpr_at_fpr") and n_classes != 2:
        raise ValueError(
            f"scoring {scoring_name!r} needs a binary target, but y has {n_classes} "
            "classes; use e.g. accuracy or balanced_accuracy."
        )

    if target_fpr is not None and n_classes != 2:
        raise ValueError(
            f"target_fpr={target_fpr!r} sets a detector's threshold, which needs a binary "
            f"target; y has {n_classes} classes."
        )
    if cv is None or (isinstance(cv, numbers.Integral) and not isinstance(cv, bool)):
        cv = SequentialSplit(n_splits=1 if cv is None else int(cv), test_size=0.2,
                             random_state=random_state, test_prevalence=test_prevalence)
    elif test_prevalence is not None:
        raise ValueError(
            "test_prevalence applies to the default splitter; with your own cv, set it "
            "there: SequentialSplit(..., test_prevalence=...)."
        )
    y = np.asarray(y)
    months = np.asarray(getattr(months, "to_numpy", lambda: months)())
    if len(y) != len(months):
        raise ValueError(f"y has {len(y)} labels but months has {len(months)} entries.")
    if groups is not None:
        groups = np.asarray(getattr(groups, "to_numpy", lambda: groups)())
        if groups.shape != y.shape:
            raise ValueError(
                f"groups must hold one group label per row: y has {len(y)} rows, groups "
                f"has shape {groups.shape}."
            )
    month_labels = np.unique(months)
    labels = [to_python(m) for m in month_labels]
    grids = {}
    if tune_months is not None:
        grids = {spec.label: default_tune_grid(spec, _effective_params(spec, estimator_params),
                                               tune_grid) for spec in specs}
        if tune_months >= len(labels):
            raise ValueError(
                f"tune_months={tune_months} leaves no month to score: the stream has "
                f"{len(labels)} months. Use tune_months <= {len(labels) - 1}."
            )
    splits = list(cv.split(X, y, months=months))
    prevalence = getattr(cv, "test_prevalence", None)
    if prevalence is not None:
        # Held-out rows with a set class ratio: the rarest class is judged there.
        auto_name, auto_reason = default_scoring(y[splits[0][1]])
        auto_reason += f" in the held-out rows (test_prevalence={prevalence:g})"
        if scoring_reason is not None:
            scoring_reason = auto_reason
            scorer, scoring_name = resolve_scoring(auto_name)
    scalers = []
    if scale == "first-month":
        # Training rows only: the rows a split holds out must not shape it.
        scalers = [FirstMonthScaler().fit(safe_indexing(X, train), months=months[train])
                   for train, _ in splits]

    def features(index, k):
        part = safe_indexing(X, index)
        return scalers[k].transform(part) if scalers else part

    total = len(specs) * sum(len(np.unique(months[train])) for train, _ in splits)
    total += len(splits) * sum(
        tuning_months_trained(len(labels), tune_months, tune_every,
                              len(candidate_specs(StrategySpec("", ""), grid)))
        for grid in grids.values() if grid
    )
    raw = {spec.label: [] for spec in specs}

    def build(spec):
        return _build_estimator(spec, estimator_params, random_state,
                                extra_callbacks=[("compare_progress", _MonthProgress(bar))])

    # The bar is closed, and the SIGINT handler put back, however this ends.
    with _make_bar(total, progress) as bar, SigintWatch() as sigint:
        for spec in specs:
            _warm_up(spec, estimator_params, random_state, features, splits, y, months)
            if sigint.seen:
                raise KeyboardInterrupt
            for k, (train, test) in enumerate(splits):
                bar.set_postfix_str(f"{spec.label} (split {k + 1}/{len(splits)})")
                clf = build(spec)
                start = time.perf_counter()
                clf.fit(features(train, k), y[train], months=months[train])
                wall = time.perf_counter() - start
                if sigint.seen:  # never a result built on a fit that was interrupted
                    raise KeyboardInterrupt
                X_test = features(test, k)
                try:
                    fm = forgetting_matrix(clf, X_test, y[test], months[test], scoring=scorer)
                except ValueError as exc:
                    hint = (
                        f" (the target has {n_classes} classes: use a multiclass score "
                        "such as accuracy, balanced_accuracy or roc_auc_ovr)"
                        if n_classes > 2 else ""
                    )
                    raise ValueError(
                        f"The score {scoring_name!r} failed on the held-out rows of "
                        f"{spec.label!r}: {exc}{hint}."
                    ) from exc
                if k == 0 and spec is specs[0] and not np.isfinite(fm.R).any():
                    raise ValueError(
                        f"The score {scoring_name!r} is undefined on every month of "
                        f"these data (e.g. a binary-only score on a multiclass target, "
                        f"{len(np.unique(y))} classes); choose another scoring."
                    )
                run = SplitRun(clf, fm, wall)
                run.outputs = _strategy_outputs(clf, fm, X_test, months[test])
                run.flips = update_flips(clf, X_test, y[test], months[test])
                if target_fpr is not None:
                    run.detection = monthly_detection(clf, X_test, y[test], months[test],
                                                      target_fpr)
                if groups is not None:
                    run.group_matrices = group_forgetting_matrices(
                        clf, X_test, y[test], months[test], groups[test])
                if aut_scorer is not None:
                    run.aut_matrix = forgetting_matrix(clf, X_test, y[test], months[test],
                                                       scoring=aut_scorer)
                if grids.get(spec.label):
                    run.tuning = tune_on_split(
                        spec, grids[spec.label], build, lambda index: features(index, k),
                        y, months, labels, train, test, scorer, tune_months, tune_every,
                        auto_scoring=scoring_reason is not None,
                        prevalence=prevalence is not None)
                    if sigint.seen:
                        raise KeyboardInterrupt
                raw[spec.label].append(run)

    first = raw[specs[0].label]
    baseline, baseline_models = _majority_baseline(first, splits, features, y, months, scorer,
                                                   scoring_name)
    boosting, boosting_models = None, None
    if reference == "hgb":
        boosting, boosting_models = _boosting_reference(
            first, splits, features, y, months, scorer, scoring_name, reference_window,
            random_state)
    results = {
        spec.label: _aggregate(
            spec, raw[spec.label], scoring_name,
            {k: v for k, v in _effective_params(spec, estimator_params).items()
             if k != "callbacks"},
        )
        for spec in specs
    }
    _add_relative(results, baseline, boosting)
    if len(splits) == 1 and n_bootstrap:
        models = {BASELINE_NAME: baseline_models, "reference": boosting_models}
        _add_draws(results, {BASELINE_NAME: baseline, "reference": boosting}, raw, models,
                   features, splits[0], y, months, scorer, scoring_name, n_bootstrap,
                   random_state)
    settings = {
        "n_samples": int(len(y)),
        "n_features": int(getattr(X, "shape", (0, 0))[1]),
        "n_months": int(len(month_labels)),
        "months": labels,
        "n_classes": int(len(np.unique(y))),
        "cv": repr(cv),
        "n_splits": len(splits),
        "scoring": scoring_name,
        "scoring_requested": scoring if isinstance(scoring, str) else scoring_name,
        "scoring_reason": scoring_reason,
        "auto_scoring": auto_name,
        "estimator_params": estimator_params,
        "random_state": random_state,
        "strategies": [s.label for s in specs],
        "scale": scale,
        "target_fpr": target_fpr,
        "aut_scoring": aut_name,
        "test_prevalence": getattr(cv, "test_prevalence", None),
        "groups": None if groups is None else int(len(np.unique(groups))),
        "tune_months": tune_months,
        "tune_every": tune_every,
        "tune_grids": {k: v for k, v in grids.items() if v},
        "reference": reference or "none",
        "reference_window": reference_window,
        "n_bootstrap": n_bootstrap,
    }
    return Comparison(results, scoring_name, settings, scalers=scalers, baseline=baseline,
                      reference=boosting)


def _warm_up(spec, estimator_params, random_state, features, splits, y, months):
    """One untimed fit of ``spec``: one epoch on at most two batches of
    training rows of each of the first two months of the first split. The first fit in a
    process pays for torch's first calls (allocator, kernels, autograd, the
    optimizer's state); without this, whichever strategy ran first was
    charged for them. Nothing the real fits use is touched: every fit seeds
    its own generators, and the warm-up keeps no file (no ``memory_dir``)
    and prints nothing."""
    params = {k: v for k, v in estimator_params.items()
              if k not in ("callbacks", "memory_dir", "verbose")}
    params.update(max_epochs=1, verbose=0)
    # Two batches a month: full batches of the real size and a last partial
    # one, the shapes the timed fits' kernels see.
    batch = estimator_params.get("batch_size", 256)
    train, _ = splits[0]
    labels, rows = group_by_month(months[train])
    classes = None if params.get("classes") is not None else np.unique(y)
    try:
        clf = _build_estimator(spec, params, random_state)
        # Month by month rather than fit(): a spy on fit sees the real fits only.
        for label, month_rows in zip(labels[:2], rows[:2]):
            index = train[month_rows[:2 * batch - 1]]
            clf.partial_fit_month(features(index, 0), y[index], classes=classes,
                                  month=month_label(label))
    except Exception:  # noqa: BLE001 - untimed; the timed fits report any real problem
        pass


def _columns_rows(fm, months_test):
    """Column ``j`` of ``fm`` to the indices of its held-out rows (or None)."""
    labels, rows = group_by_month(months_test)
    rows_of = {month_label(m): r for m, r in zip(labels, rows)}
    return lambda j: (rows_of.get(fm.months[j]) if len(rows_of.get(fm.months[j], ())) else None)


def _strategy_outputs(clf, fm, X_test, months_test):
    """The strategy's probabilities on the cells the verdict reads."""
    rows_of = _columns_rows(fm, months_test)
    return held_out_outputs(
        lambda i, j: clf.predict_proba_after(take_rows(X_test, rows_of(j)), fm.train_months[i]),
        fm, rows_of, clf.classes_)


def _add_draws(results, others, raw, models, features, split, y, months, scorer,
               scoring_name, n_bootstrap, random_state):
    """Every model's bootstrap draws of one split (see :func:`bootstrap_draws`),
    kept on its result; a scorer that cannot score stored probabilities
    leaves the comparison without intervals (with a warning)."""
    train, test = split
    fm = next(iter(raw.values()))[0].matrix
    rows_of = _columns_rows(fm, months[test])
    X_test, y_test = features(test, 0), y[test]
    outputs = {name: runs[0].outputs for name, runs in raw.items()}
    with _boosting_threads():
        for key, result in others.items():
            if result is None:
                continue
            fitted = models[key][0]
            outputs[key] = held_out_outputs(
                lambda i, j, fitted=fitted: fitted[i].predict_proba(
                    take_rows(X_test, rows_of(j))),
                fm, rows_of, fitted[-1].classes_)
    y_of = {j: y_test[rows_of(j)] for j in range(len(fm.months)) if rows_of(j) is not None}
    try:
        draws = bootstrap_draws(outputs, y_of, fm.months, scorer, scoring_name, n_bootstrap,
                                random_state)
    except Exception as exc:  # a user's scorer: the point estimates still stand
        warnings.warn(
            f"The intervals could not be computed with {scoring_name!r} on stored "
            f"probabilities ({type(exc).__name__}: {exc}); the table and the verdict have "
            "none.", UserWarning, stacklevel=3)
        return
    for name, result in results.items():
        result.draws = draws[name]
    for key, result in others.items():
        if result is not None:
            result.draws = draws[key]
