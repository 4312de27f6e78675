"""The study's figures: forgetting-matrix heatmaps and per-month scores.

matplotlib is imported when a function is called, so ``import sklearn_cf``
never needs it (``pip install "sklearn-cf[plot]"``).
"""

import numpy as np

__all__ = ["plot_forgetting_matrix", "plot_month_scores"]


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


def plot_forgetting_matrix(R, *, train_months=None, months=None, ax=None, title=None,
                           cmap="viridis", annotate=True):
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
        Write each score in its cell (skipped above 20 months).

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> ax = plot_forgetting_matrix([[0.9, 0.6], [0.7, 0.8]], title="naive")
    >>> ax.get_xlabel(), ax.get_ylabel()
    ('evaluated on month', 'trained through month')
    """
    plt = _pyplot()
    R, rows, cols = _matrix_and_labels(R, train_months, months)
    if ax is None:
        size = (1.2 + 0.45 * len(cols), 1.0 + 0.4 * len(rows))
        _, ax = plt.subplots(figsize=(max(size[0], 4), max(size[1], 3)))
    finite = R[np.isfinite(R)]
    vmin, vmax = (finite.min(), finite.max()) if finite.size else (0, 1)
    image = ax.imshow(np.ma.masked_invalid(R), cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("evaluated on month")
    ax.set_ylabel("trained through month")
    if annotate and max(R.shape) <= 20:
        middle = (vmin + vmax) / 2
        for (i, j), value in np.ndenumerate(R):
            if np.isfinite(value):
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                        color="black" if value > middle else "white")
    if title:
        ax.set_title(title)
    return ax


def plot_month_scores(results, *, months=None, ax=None, title=None, ylabel="score"):
    """Score of each strategy's final model on every month.

    The study's main figure: one line per strategy, the final row of its
    forgetting matrix (score on each month after training through the last).

    Parameters
    ----------
    results : dict of str to ForgettingMatrix or 2-d array
        Strategy name to its forgetting matrix.
    months : list, default=None
        x-axis labels; taken from the first ForgettingMatrix, else 0, 1, 2...
    ax : matplotlib Axes, default=None
    title : str, default=None
    ylabel : str, default="score"

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> ax = plot_month_scores({"naive": [[0.9, 0.5], [0.6, 0.9]],
    ...                         "joint": [[0.9, 0.5], [0.88, 0.9]]})
    >>> [line.get_label() for line in ax.get_lines()]
    ['naive', 'joint']
    """
    plt = _pyplot()
    if not results:
        raise ValueError("results is empty: pass {strategy name: forgetting matrix}.")
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    labels = None
    for name, R in results.items():
        matrix, _, cols = _matrix_and_labels(R, months=months)
        labels = labels or cols
        ax.plot(range(matrix.shape[1]), matrix[-1], marker="o", markersize=3, label=name)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_xlabel("month")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncols=2)
    if title:
        ax.set_title(title)
    return ax
