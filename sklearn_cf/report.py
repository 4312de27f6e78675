"""Write a :class:`~sklearn_cf.compare.Comparison` up as a Markdown or HTML report.

The report opens with the verdict (which monthly update to ship), then the
table, the figures (PNG files written next to it with
:mod:`sklearn_cf.plotting`; the HTML report also embeds them as
``data:`` URIs, so ``report.html`` can be moved or mailed alone), the
settings and the command that reproduces it. Figures are drawn on
:class:`matplotlib.figure.Figure` objects with the Agg canvas, so nothing is
shown and pyplot's global state is left alone.
"""

import base64
import html
import json
import math
import os

import numpy as np

__all__ = ["write_report", "MONTH_SCORES_PNG", "FORGETTING_PNG"]

#: File names of the figures, written next to the report.
MONTH_SCORES_PNG = "month_scores.png"
FORGETTING_PNG = "forgetting_matrices.png"
RESULTS_JSON = "results.json"
# Figures are drawn at this resolution and at most 11.5 inches wide, so they
# fit the HTML page (1100 px) without being scaled down.
_DPI = 90

_COLUMN_NOTES = (
    ("average", "mean score of the final model over every month's held-out rows"),
    ("BWT", "backward transfer: mean change on earlier months from right after "
            "learning them to the end (negative = forgetting)"),
    ("forgetting", "mean drop from the best earlier score to the final one"),
    ("learning", "mean score on each month right after training on it"),
    ("next-month AUT", "area under the score on the month after each training "
                       "month (the month the model is deployed on)"),
    ("gap to joint", "average minus joint retraining's average"),
    ("rows", "training rows processed (all epochs), summed over months"),
    ("rows vs naive / joint", "training rows relative to naive fine-tuning / to joint"),
    ("seconds", "training seconds summed over months (noisy on a busy machine)"),
    ("Hessian < 0", "share of negative Hessian-diagonal entries (EWC, fisher=hessian), "
                    "clipped to 0 before use"),
)


def _baseline_note(comparison):
    """What the baseline row is, or None when there is none."""
    baseline = comparison.baseline
    if baseline is None:
        return None
    answer = baseline.majority_class
    answer = repr(answer) if isinstance(answer, str) else str(answer)
    return (baseline.name,
            "not a strategy: after each month, a model that always answers the most "
            "frequent class of the training rows so far (here, at the end: "
            f"{answer}), with the class shares as probabilities, scored on the same "
            "held-out rows; a strategy must beat it to be recommended")


def _scores_sentence(comparison):
    """Which score the table holds, and why when it was chosen automatically."""
    text = (f"Scores are {comparison.scoring} on each month's held-out rows, "
            f"averaged over {comparison.settings.get('n_splits')} split(s)")
    reason = comparison.settings.get("scoring_reason")
    if reason:
        why = reason.partition(", because ")[2] or reason
        text += (f"; {comparison.scoring} was chosen automatically because {why}; "
                 "pass --scoring to change")
    return text + "."


def _notes(headers):
    """The column notes of the columns shown."""
    shown = set(headers)
    out = []
    for header, note in _COLUMN_NOTES:
        if header == "rows vs naive / joint":
            if {"rows vs naive", "rows vs joint"} & shown:
                out.append((header, note))
        elif header in shown:
            out.append((header, note))
    return out


def _figures(comparison, out_dir):
    """Draw the two figures; return their file names."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            "write_report draws its figures with matplotlib: pip install "
            "\"sklearn-cf[plot]\" (or pip install matplotlib)."
        ) from None
    from .plotting import figsize_for_matrices, plot_forgetting_matrices, plot_month_scores

    matrices = {name: res.matrix for name, res in comparison.results.items()}
    n_months = max(fm.R.shape[1] for fm in matrices.values())

    fig = Figure(figsize=(min(11.5, max(7.0, 0.5 * n_months + 3)), 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    baseline = comparison.baseline
    plot_month_scores(
        matrices, ax=ax, ylabel=comparison.scoring,
        title="Final model of each strategy, scored on every month",
        baseline=None if baseline is None else baseline.matrix,
        baseline_label=None if baseline is None else baseline.name,
    )
    fig.savefig(os.path.join(out_dir, MONTH_SCORES_PNG), dpi=_DPI)

    fig = Figure(figsize=figsize_for_matrices(len(matrices), n_months), layout="constrained")
    FigureCanvasAgg(fig)
    plot_forgetting_matrices(
        matrices, fig=fig, label=comparison.scoring,
        title="Forgetting matrices: row = trained through, column = scored on",
    )
    fig.savefig(os.path.join(out_dir, FORGETTING_PNG), dpi=_DPI)
    return MONTH_SCORES_PNG, FORGETTING_PNG


def _data_uri(path):
    """The PNG at ``path`` as a ``data:`` URI, so the HTML needs no other file."""
    with open(path, "rb") as fh:
        return "data:image/png;base64," + base64.b64encode(fh.read()).decode("ascii")


def _format_param(value):
    if isinstance(value, tuple):
        return "x".join(map(str, value)) if value else "()"
    return repr(value) if isinstance(value, str) else str(value)


def _settings_lines(comparison):
    s = comparison.settings
    lines = []
    if "data" in s:
        lines.append(("data", str(s["data"])))
    if s.get("scale") == "first-month":
        lines.append(("feature scaling", "first-month: standardized with the mean and std of "
                                         "the first month's training rows of each split"))
    elif "scale" in s:
        lines.append(("feature scaling", str(s["scale"])))
    lines.append(("rows", f"{s.get('n_samples')} rows, {s.get('n_features')} features, "
                          f"{s.get('n_classes')} classes"))
    months = s.get("months", [])
    shown = ", ".join(map(str, months[:3])) + (" ... " + str(months[-1]) if len(months) > 3 else "")
    lines.append(("months", f"{s.get('n_months')} ({shown})"))
    lines.append(("splits", f"{s.get('cv')}: part of every month held out for scoring"))
    lines.append(("scoring", comparison.scoring_note().partition("scoring: ")[2]))
    lines.append(("seed", str(s.get("random_state"))))
    shared = s.get("estimator_params") or {}
    lines.append(("shared estimator parameters",
                  ", ".join(f"{k}={_format_param(v)}" for k, v in shared.items()) or "defaults"))
    for key in ("torch_threads", "elapsed_seconds"):
        if key in s:
            lines.append((key.replace("_", " "), str(s[key])))
    return lines


def _strategy_params(comparison):
    shared = comparison.settings.get("estimator_params") or {}
    out = []
    for name, res in comparison.results.items():
        own = {k: v for k, v in res.estimator_params.items()
               if k not in shared or shared[k] != v}
        out.append((name, ", ".join(f"{k}={_format_param(v)}" for k, v in own.items())
                    or "(shared parameters only)"))
    return out


def _markdown(comparison, figures, command):
    headers, rows = comparison.display_rows()
    out = ["# Which monthly update should we ship?", "", f"**{comparison.verdict()}**", ""]
    out += ["## Results", ""]
    out.append("| " + " | ".join(headers) + " |")
    out.append("| " + " | ".join(["---"] + ["---:"] * (len(headers) - 1)) + " |")
    out += ["| " + " | ".join(r) + " |" for r in rows]
    out += ["", _scores_sentence(comparison), ""]
    out += [f"* **{header}**: {note}" for header, note in _notes(headers)]
    if _baseline_note(comparison):
        out.append("* **{}**: {}".format(*_baseline_note(comparison)))
    out += ["", "## Figures", "",
            f"![Score of every strategy's final model on every month]({figures[0]})", "",
            f"![Forgetting matrix of every strategy]({figures[1]})", "",
            "## Settings", ""]
    out += [f"* {k}: {v}" for k, v in _settings_lines(comparison)]
    out += ["", "| strategy | parameters |", "| --- | --- |"]
    out += [f"| {name} | {params} |" for name, params in _strategy_params(comparison)]
    out += ["", "## Reproduce", ""]
    if command:
        out += ["```bash", command, "```"]
    else:
        out.append("Call `sklearn_cf.compare.compare_strategies` with the settings above.")
    out.append("")
    return "\n".join(out)


def _html(comparison, figures, command, out_dir):
    e = html.escape
    sources = [_data_uri(os.path.join(out_dir, f)) for f in figures]
    headers, rows = comparison.display_rows()
    parts = [
        "<!DOCTYPE html>", "<html lang=\"en\">", "<head>", "<meta charset=\"utf-8\">",
        "<title>sklearn-cf: which monthly update should we ship?</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
        "padding:3px 8px}td.n{text-align:right;font-variant-numeric:tabular-nums}"
        "img{max-width:100%}.verdict{font-size:1.15em;background:#eef6ee;padding:.8em;"
        "border-left:4px solid #393}pre.command{white-space:pre-wrap;overflow-wrap:anywhere;"
        "background:#f6f6f6;padding:.6em}</style>",
        "</head>", "<body>",
        "<h1>Which monthly update should we ship?</h1>",
        f"<p class=\"verdict\"><strong>{e(comparison.verdict())}</strong></p>",
        "<h2>Results</h2>", "<table>",
        "<tr>" + "".join(f"<th>{e(h)}</th>" for h in headers) + "</tr>",
    ]
    for r in rows:
        parts.append("<tr>" + "".join(
            f"<td>{e(c)}</td>" if i == 0 else f"<td class=\"n\">{e(c)}</td>"
            for i, c in enumerate(r)) + "</tr>")
    parts.append("</table>")
    parts.append(f"<p>{e(_scores_sentence(comparison))}</p><ul>")
    notes = _notes(headers)
    if _baseline_note(comparison):
        notes.append(_baseline_note(comparison))
    for header, note in notes:
        parts.append(f"<li><strong>{e(header)}</strong>: {e(note)}</li>")
    parts += ["</ul>", "<h2>Figures</h2>",
              f"<p><img src=\"{sources[0]}\" alt=\"Score of every strategy's final model "
              "on every month\"></p>",
              f"<p><img src=\"{sources[1]}\" alt=\"Forgetting matrix of every strategy\"></p>",
              "<h2>Settings</h2>", "<ul>"]
    parts += [f"<li>{e(k)}: {e(v)}</li>" for k, v in _settings_lines(comparison)]
    parts += ["</ul>", "<table>", "<tr><th>strategy</th><th>parameters</th></tr>"]
    parts += [f"<tr><td>{e(n)}</td><td>{e(p)}</td></tr>" for n, p in _strategy_params(comparison)]
    parts += ["</table>", "<h2>Reproduce</h2>"]
    if command:
        parts.append(f"<pre class=\"command\"><code>{e(command)}</code></pre>")
    else:
        parts.append("<p>Call <code>sklearn_cf.compare.compare_strategies</code> with the "
                     "settings above.</p>")
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return None if math.isnan(value) else value
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)


def _results_json(comparison, command):
    strategies = {}
    for name, res in comparison.results.items():
        strategies[name] = {
            "strategy": res.strategy,
            "estimator_params": res.estimator_params,
            "summary": res.summary,
            "R": res.matrix.R,
            "train_months": res.matrix.train_months,
            "months": res.matrix.months,
            "rows_per_month": res.rows_per_month,
            "seconds_per_month": res.seconds_per_month,
            "fisher_negative_share_per_month": res.fisher_negative_share_per_month,
        }
    baseline = comparison.baseline
    if baseline is not None:
        baseline = {
            "name": baseline.name,
            "majority_class": baseline.majority_class,
            "summary": baseline.summary,
            "R": baseline.matrix.R,
            "train_months": baseline.matrix.train_months,
            "months": baseline.matrix.months,
        }
    return _jsonable({
        "verdict": comparison.verdict(),
        "recommended": comparison.recommend(),
        "scoring": comparison.scoring,
        "scoring_reason": comparison.settings.get("scoring_reason"),
        "table": comparison.records(),
        "strategies": strategies,
        "baseline": baseline,
        "settings": comparison.settings,
        "command": command,
    })


def write_report(comparison, out_dir, fmt="md", command=None):
    """Write the comparison as a report with figures; return the report's path.

    Writes into ``out_dir`` (created if needed): ``report.md`` or
    ``report.html``, ``month_scores.png`` (the score of every strategy's
    final model on every month, :func:`~sklearn_cf.plotting.plot_month_scores`),
    ``forgetting_matrices.png`` (a grid of forgetting-matrix heatmaps, one
    per strategy on one colour scale,
    :func:`~sklearn_cf.plotting.plot_forgetting_matrices`) and
    ``results.json`` (every number in the report, with the matrices).
    ``report.md`` links the PNG files; ``report.html`` embeds them (base64
    ``data:`` URIs), so it keeps its figures when moved alone.

    The report opens with the verdict (:meth:`Comparison.verdict`), then
    the table (average score, backward transfer, forgetting, learning
    score, next-month AUT, gap to joint, rows and seconds relative to naive;
    its last row is the majority-class baseline), which scoring filled it
    (and why, when it was chosen automatically), the figures, the settings
    with each strategy's parameters, and ``command``, the command line that
    reproduces it.

    Parameters
    ----------
    comparison : Comparison
        From :func:`sklearn_cf.compare.compare_strategies`.
    out_dir : str or path-like
        Folder for the report and its figures; existing files of the same
        names are overwritten.
    fmt : {"md", "html"}, default="md"
    command : str or None, default=None
        Shown under "Reproduce".

    Returns
    -------
    path : str
        Path of the report file.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn_cf.compare import compare_strategies
    >>> from sklearn_cf.datasets import make_monthly_drift
    >>> from sklearn_cf.report import write_report
    >>> X, y, months = make_monthly_drift(n_months=3, n_samples_per_month=150, random_state=0)
    >>> comp = compare_strategies(X, y, months, ["naive", "joint"], progress=False,
    ...                           estimator_params={"max_epochs": 1, "hidden_units": (8,)})
    >>> path = write_report(comp, tempfile.mkdtemp(), command="sklearn-cf compare ...")
    >>> os.path.basename(path), sorted(os.listdir(os.path.dirname(path)))
    ('report.md', ['forgetting_matrices.png', 'month_scores.png', 'report.md', 'results.json'])
    >>> open(path).read().splitlines()[2].startswith("**Ship ")
    True
    """
    if fmt not in ("md", "html"):
        raise ValueError(f"fmt must be 'md' or 'html', got {fmt!r}.")
    out_dir = os.fspath(out_dir)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ValueError(f"out_dir {out_dir!r} exists and is not a folder.")
    os.makedirs(out_dir, exist_ok=True)
    figures = _figures(comparison, out_dir)
    if fmt == "md":
        text = _markdown(comparison, figures, command)
    else:
        text = _html(comparison, figures, command, out_dir)
    path = os.path.join(out_dir, f"report.{fmt}")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    with open(os.path.join(out_dir, RESULTS_JSON), "w", encoding="utf-8") as fh:
        json.dump(_results_json(comparison, command), fh, indent=1)
    return path
