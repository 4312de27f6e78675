"""The study's figures: forgetting-matrix heatmaps and per-month scores, and
the detection figures: TPR and realised FPR per month, flips per update, and
forgetting per group (malware family).

matplotlib is imported when a function is called, so ``import sklearn_cf``
never needs it (``pip install "sklearn-cf[plot]"``).
"""

import numpy as np

__all__ = ["plot_forgetting_matrix", "plot_forgetting_matrices", "plot_month_scores",
           "figsize_for_matrices", "plot_detection_by_month", "plot_flip_rates",
           "plot_group_forgetting"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - exercised only without matplotlib
        raise ImportError(
            "Plotting needs matplotlib: pip install \"sklearn-cf[plot]\" "
            "(or pip install matplotlib)."
        ) from None
    return plt


def _matrix_and_labels(R, train_months=None, months=None):
    """Accept a ForgettingMatrix or a plain 2-d array."""
    if hasattr(R, "R"):
        train_months = R.train_months if train_months is None else train_months
        months = R.months if months is None else months
        R = R.R
    R = np.asarray(R, dtype=float)
    if R.ndim != 2:
        raise ValueError(f"R must be 2-d (trained months x months), got shape {R.shape}.")
    if train_months is None:
        train_months = list(range(R.shape[0]))
    if months is None:
        months = list(range(R.shape[1]))
    return R, [str(m) for m in train_months], [str(m) for m in months]


#: No numbers in the cells above this many trained or evaluated months.
MAX_ANNOTATED_MONTHS = 12
# Smallest and largest cell-number font sizes, in points.
_MIN_CELL_FONT, _MAX_CELL_FONT = 5.0, 10.0


def _finite_range(matrices):
    """(vmin, vmax) over the finite cells of every matrix; (0, 1) if none."""
    finite = np.concatenate([m[np.isfinite(m)] for m in matrices] or [np.empty(0)])
    if not finite.size:
        return 0.0, 1.0
    return float(finite.min()), float(finite.max())


def _cell_fontsize(ax, shape):
    """Largest font size (points) at which "0.00" fits one cell of ``ax``.

    "0.00" is about 2.6 font sizes wide and 1.4 high; the cell size comes
    from the axes' current extent, so call it after the layout is done when
    the axes share a figure with others.
    """
    box = ax.get_window_extent()
    points_per_pixel = 72.0 / ax.figure.dpi
    cell_w = box.width * points_per_pixel / shape[1]
    cell_h = box.height * points_per_pixel / shape[0]
    return min(_MAX_CELL_FONT, 0.85 * cell_w / 2.6, 0.85 * cell_h / 1.4)


def _annotate(ax, R, vmin, vmax, fontsize):
    """Write each finite score in its cell; dark text on light cells."""
    middle = (vmin + vmax) / 2
    for (i, j), value in np.ndenumerate(R):
        if np.isfinite(value):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=fontsize,
                    color="black" if value > middle else "white")


def plot_forgetting_matrix(R, *, train_months=None, months=None, ax=None, title=None,
                           cmap="viridis", annotate=True, vmin=None, vmax=None,
                           colorbar=True, label=None):
    """Heatmap of a forgetting matrix.

    Parameters
    ----------
    R : ForgettingMatrix or array of shape (n_trained, n_months)
        ``R[i, j]`` = score on month j after training through month i.
    train_months, months : list, default=None
        Axis labels; taken from a ForgettingMatrix, else 0, 1, 2...
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.
    title : str, default=None
    cmap : str, default="viridis"
    annotate : bool, default=True
        Write each score in its cell, in a font sized to the cell; skipped
        above ``MAX_ANNOTATED_MONTHS`` (12) months or when the cells are too
        small to read.
    vmin, vmax : float, default=None
        Colour scale; the matrix's own finite range when None. Pass the
        same values to several panels to compare them by colour.
    colorbar : bool, default=True
        Draw a colour bar next to the axes.
    label : str, default=None
        Colour bar label (the score's name); taken from a ForgettingMatrix's
        ``scoring`` when None.

    Returns
    -------
    ax : matplotlib Axes

    See Also
    --------
    plot_forgetting_matrices : one panel per strategy on one colour scale.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> ax = plot_forgetting_matrix([[0.9, 0.6], [0.7, 0.8]], title="naive")
    >>> ax.get_xlabel(), ax.get_ylabel()
    ('evaluated on month', 'trained through month')
    >>> ax.images[0].get_clim()
    (0.6, 0.9)
    """
    plt = _pyplot()
    if label is None:
        label = getattr(R, "scoring", None)
    R, rows, cols = _matrix_and_labels(R, train_months, months)
    if ax is None:
        size = (1.2 + 0.45 * len(cols), 1.0 + 0.4 * len(rows))
        _, ax = plt.subplots(figsize=(max(size[0], 4), max(size[1], 3)))
    own_min, own_max = _finite_range([R])
    vmin = own_min if vmin is None else vmin
    vmax = own_max if vmax is None else vmax
    image = ax.imshow(np.ma.masked_invalid(R), cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    if colorbar:
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label=label)
    ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("evaluated on month")
    ax.set_ylabel("trained through month")
    if annotate and max(R.shape) <= MAX_ANNOTATED_MONTHS:
        # The colour bar and tick labels will take about a quarter of the
        # axes' current extent.
        fontsize = 0.75 * _cell_fontsize(ax, R.shape)
        if fontsize >= _MIN_CELL_FONT:
            _annotate(ax, R, vmin, vmax, fontsize)
    if title:
        ax.set_title(title)
    return ax


def plot_forgetting_matrices(matrices, *, fig=None, label=None, ncols=None, cmap="viridis",
                             annotate=True, title=None):
    """One forgetting-matrix heatmap per strategy, on one colour scale.

    Every panel spans the same colour range (the finite range of all the
    matrices together), so a colour means the same score in every panel;
    one colour bar, labelled with the score's name, serves them all. The
    cell numbers are sized to the cells once the layout is done.

    Parameters
    ----------
    matrices : dict of str to ForgettingMatrix or 2-d array
        Strategy name to its forgetting matrix; one panel each, in order.
    fig : matplotlib Figure, default=None
        Where to draw (use ``layout="constrained"``); a new pyplot figure
        sized for the panels when None.
    label : str, default=None
        Colour bar label; the first ForgettingMatrix's ``scoring`` when None.
    ncols : int, default=None
        Panels per row; 3 up to 6 months, else 2.
    cmap : str, default="viridis"
    annotate : bool, default=True
        Numbers in the cells (not above 12 months or in unreadably small
        cells).
    title : str, default=None
        Figure title, placed above the panels' titles.

    Returns
    -------
    fig : matplotlib Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> fig = plot_forgetting_matrices({"naive": [[0.9, 0.5], [0.6, 0.9]],
    ...                                 "joint": [[0.9, 0.4], [0.88, 0.92]]},
    ...                                label="accuracy")
    >>> [ax.images[0].get_clim() for ax in fig.axes if ax.images]
    [(0.4, 0.92), (0.4, 0.92)]
    >>> fig.axes[-1].get_ylabel()  # the colour bar
    'accuracy'
    """
    if not matrices:
        raise ValueError("matrices is empty: pass {strategy name: forgetting matrix}.")
    if label is None:
        label = next((getattr(m, "scoring", None) for m in matrices.values()
                      if getattr(m, "scoring", None)), None)
    panels = {name: _matrix_and_labels(m) for name, m in matrices.items()}
    n_months = max(max(R.shape) for R, _, _ in panels.values())
    n = len(panels)
    if ncols is None:
        ncols = 3 if n_months <= 6 else 2
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    if fig is None:
        fig = _pyplot().figure(figsize=figsize_for_matrices(n, n_months, ncols),
                               layout="constrained")
    vmin, vmax = _finite_range([R for R, _, _ in panels.values()])
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, (name, (R, rows, cols)) in zip(axes, panels.items()):
        plot_forgetting_matrix(R, train_months=rows, months=cols, ax=ax, title=name,
                               cmap=cmap, annotate=False, vmin=vmin, vmax=vmax,
                               colorbar=False)
    for ax in axes[n:]:
        ax.remove()
    used = list(axes[:n])
    fig.colorbar(used[0].images[0], ax=used, label=label, shrink=1.0 if nrows <= 2 else 0.6)
    if title:
        fig.suptitle(title)
    if annotate and n_months <= MAX_ANNOTATED_MONTHS:
        fig.draw_without_rendering()  # lay out first: the cells' final size
        for ax, (R, _, _) in zip(used, panels.values()):
            fontsize = _cell_fontsize(ax, R.shape)
            if fontsize >= _MIN_CELL_FONT:
                _annotate(ax, R, vmin, vmax, fontsize)
    return fig


def figsize_for_matrices(n_panels, n_months, ncols=None):
    """Figure size (inches) for :func:`plot_forgetting_matrices`.

    At most 11.5 inches wide, so that at the report's 90 dpi the figure
    fits a 1100-pixel page unscaled and its cell numbers keep their size.
    """
    if ncols is None:
        ncols = 3 if n_months <= 6 else 2
    ncols = max(1, min(ncols, n_panels))
    nrows = -(-n_panels // ncols)
    panel_w = min(10.5 / ncols, 1.4 + 0.45 * n_months)
    panel_h = 1.1 + 0.75 * (panel_w - 1.2)
    return (panel_w * ncols + 1.0, panel_h * nrows + 0.6)


def plot_month_scores(results, *, months=None, ax=None, title=None, ylabel="score",
                      baseline=None, baseline_label="majority baseline", reference=None,
                      reference_label="gradient boosting", series="final"):
    """Score of each strategy on every month: its final model's, or the
    deployed one's.

    The study's main figures: one line per strategy, with ``series="final"``
    the final row of its forgetting matrix (score on each month after
    training through the last: retention), with ``series="deployed"`` its
    first off-diagonal (each month scored by the model trained through the
    month before: the model in use, see
    :func:`sklearn_cf.model_selection.deployed_scores`).

    Parameters
    ----------
    results : dict of str to ForgettingMatrix or 2-d array
        Strategy name to its forgetting matrix.
    months : list, default=None
        x-axis labels; taken from the first ForgettingMatrix, else 0, 1, 2...
    ax : matplotlib Axes, default=None
    title : str, default=None
    ylabel : str, default="score"
    baseline : ForgettingMatrix or 2-d array, default=None
        A reference that is not a strategy, such as the majority-class
        baseline of :func:`sklearn_cf.compare.compare_strategies`: its final
        row is drawn as a dashed grey line, last.
    baseline_label : str, default="majority baseline"
        Its legend entry.
    reference : ForgettingMatrix or 2-d array, default=None
        Another row that is not a strategy, such as the gradient-boosting
        reference: drawn as a dotted black line.
    reference_label : str, default="gradient boosting"
    series : {"final", "deployed"}, default="final"

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> ax = plot_month_scores({"naive": [[0.9, 0.5], [0.6, 0.9]],
    ...                         "joint": [[0.9, 0.5], [0.88, 0.9]]},
    ...                        baseline=[[0.7, 0.6], [0.7, 0.6]])
    >>> [line.get_label() for line in ax.get_lines()]
    ['naive', 'joint', 'majority baseline']
    >>> ax = plot_month_scores({"naive": [[0.9, 0.5], [0.6, 0.9]]}, series="deployed")
    >>> ax.get_lines()[0].get_ydata().tolist()  # month 0 has no model before it
    [nan, 0.5]
    """
    plt = _pyplot()
    if not results:
        raise ValueError("results is empty: pass {strategy name: forgetting matrix}.")
    if series not in ("final", "deployed"):
        raise ValueError(f"series must be 'final' or 'deployed', got {series!r}.")
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))

    def values(matrix):
        if series == "final":
            return matrix[-1]
        from .model_selection import deployed_scores

        return deployed_scores(matrix)

    labels = None
    for name, R in results.items():
        matrix, _, cols = _matrix_and_labels(R, months=months)
        labels = labels or cols
        ax.plot(range(matrix.shape[1]), values(matrix), marker="o", markersize=3, label=name)
    if reference is not None:
        matrix, _, _ = _matrix_and_labels(reference, months=months)
        ax.plot(range(matrix.shape[1]), values(matrix), linestyle=":", color="black",
                linewidth=1.5, label=reference_label)
    if baseline is not None:
        matrix, _, _ = _matrix_and_labels(baseline, months=months)
        ax.plot(range(matrix.shape[1]), values(matrix), linestyle="--", color="0.45",
                linewidth=1.2, label=baseline_label)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_xlabel("month")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncols=2)
    if title:
        ax.set_title(title)
    return ax


def _month_axis(ax, labels):
    ax.set_xticks(range(len(labels)), [str(m) for m in labels], rotation=45, ha="right")
    ax.grid(alpha=0.3)


def plot_detection_by_month(detections, *, target_fpr=None, fig=None, title=None):
    """TPR and realised FPR per month, the threshold set the month before.

    Two panels: the TPR on each month at the threshold chosen on the
    previous month's held-out rows, and the false-positive rate that
    threshold realised, with the target as a dashed line: a point above it
    is a month whose alert volume exceeded what was planned.

    Parameters
    ----------
    detections : dict of str to MonthlyDetection
        Strategy name to its :func:`sklearn_cf.metrics.monthly_detection`.
    target_fpr : float, default=None
        The target; taken from the first detection when None.
    fig : matplotlib Figure, default=None
        Where to draw (use ``layout="constrained"``); a new pyplot figure
        when None.
    title : str, default=None

    Returns
    -------
    fig : matplotlib Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from sklearn_cf.metrics import MonthlyDetection
    >>> det = MonthlyDetection(0.01, [1, 2], [0, 1], np.array([0.8, 0.7]),
    ...                        np.array([0.008, 0.02]), np.array([0.6, 0.6]))
    >>> fig = plot_detection_by_month({"naive": det})
    >>> [ax.get_ylabel() for ax in fig.axes]
    ['TPR (threshold set the month before)', 'realised FPR']
    >>> fig.axes[1].get_lines()[-1].get_label()
    'target FPR 0.01'
    """
    if not detections:
        raise ValueError("detections is empty: pass {strategy name: MonthlyDetection}.")
    first = next(iter(detections.values()))
    target_fpr = first.target_fpr if target_fpr is None else target_fpr
    if fig is None:
        fig = _pyplot().figure(figsize=(11, 4), layout="constrained")
    tpr_ax, fpr_ax = fig.subplots(1, 2)
    for name, det in detections.items():
        tpr_ax.plot(range(len(det.months)), det.tpr, marker="o", markersize=3, label=name)
        fpr_ax.plot(range(len(det.months)), det.fpr, marker="o", markersize=3, label=name)
    fpr_ax.axhline(target_fpr, linestyle="--", color="0.3", linewidth=1.2,
                   label=f"target FPR {target_fpr:g}")
    for ax in (tpr_ax, fpr_ax):
        _month_axis(ax, first.months)
        ax.set_xlabel("month")
    tpr_ax.set_ylabel("TPR (threshold set the month before)")
    fpr_ax.set_ylabel("realised FPR")
    fpr_ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def plot_flip_rates(flips, *, ax=None, title=None):
    """Negative flip rate of every update, one line per strategy.

    Parameters
    ----------
    flips : dict of str to UpdateFlips
        Strategy name to its :func:`sklearn_cf.metrics.update_flips`.
    ax : matplotlib Axes, default=None
    title : str, default=None

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from sklearn_cf.metrics import UpdateFlips
    >>> f = UpdateFlips([(0, 1), (1, 2)], np.array([0.02, 0.05]), np.array([4, 12]),
    ...                 np.array([200, 240]))
    >>> ax = plot_flip_rates({"naive": f})
    >>> [t.get_text() for t in ax.get_xticklabels()]
    ['0→1', '1→2']
    """
    plt = _pyplot()
    if not flips:
        raise ValueError("flips is empty: pass {strategy name: UpdateFlips}.")
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    updates = next(iter(flips.values())).updates
    for name, f in flips.items():
        ax.plot(range(len(f.rate)), 100 * np.asarray(f.rate, dtype=float), marker="o",
                markersize=3, label=name)
    _month_axis(ax, [f"{a}→{b}" for a, b in updates])
    ax.set_xlabel("update (trained through → through)")
    ax.set_ylabel("negative flips (% of held-out rows)")
    ax.legend(fontsize=8, ncols=2)
    if title:
        ax.set_title(title)
    return ax


def plot_group_forgetting(values, *, ax=None, title=None, cmap="magma_r", annotate=True):
    """Heatmap of the forgetting of each group (malware family) per strategy.

    Parameters
    ----------
    values : dict of str to dict of group to float
        Strategy name to its :func:`sklearn_cf.metrics.group_forgetting`.
    ax : matplotlib Axes, default=None
    title : str, default=None
    cmap : str, default="magma_r"
        Darker is more forgotten.
    annotate : bool, default=True
        Numbers in the cells, up to 30 groups.

    Returns
    -------
    ax : matplotlib Axes
        Rows: groups; columns: strategies.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> ax = plot_group_forgetting({"naive": {"emotet": 0.4, "zbot": 0.1},
    ...                             "replay": {"emotet": 0.05, "zbot": 0.0}})
    >>> ax.images[0].get_array().shape, ax.get_ylabel()
    ((2, 2), 'group')
    """
    plt = _pyplot()
    if not values:
        raise ValueError("values is empty: pass {strategy name: {group: forgetting}}.")
    groups = []
    for per_group in values.values():
        groups += [g for g in per_group if g not in groups]
    M = np.array([[per_group.get(g, np.nan) for per_group in values.values()]
                  for g in groups], dtype=float)
    if ax is None:
        _, ax = plt.subplots(figsize=(2 + 1.1 * len(values), 1.5 + 0.3 * len(groups)))
    vmin, vmax = _finite_range([M])
    vmin = min(vmin, 0.0)
    image = ax.imshow(np.ma.masked_invalid(M), cmap=cmap, vmin=vmin, vmax=max(vmax, vmin + 1e-9),
                      aspect="auto")
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="forgetting")
    ax.set_xticks(range(len(values)), list(values), rotation=45, ha="right")
    ax.set_yticks(range(len(groups)), [str(g) for g in groups])
    ax.set_xlabel("strategy")
    ax.set_ylabel("group")
    if annotate and len(groups) <= 30:
        middle = (vmin + vmax) / 2
        for (i, j), value in np.ndenumerate(M):
            if np.isfinite(value):
                shown = 0.0 if round(value, 2) == 0 else value  # never "-0.00"
                ax.text(j, i, f"{shown:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if value > middle else "black")
    if title:
        ax.set_title(title)
    return ax
