"""Write a :class:`~sklearn_cf.compare.Comparison` up as a Markdown or HTML report.

The report opens with the verdict (which monthly update to ship), then the
table (next-month score first, with intervals, the reference and baseline
rows last), the figures (PNG files written next to it with
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

__all__ = ["write_report", "MONTH_SCORES_PNG", "FORGETTING_PNG", "FLIPS_PNG", "DETECTION_PNG",
           "GROUPS_PNG"]

#: File names of the figures, written next to the report.
MONTH_SCORES_PNG = "month_scores.png"
FORGETTING_PNG = "forgetting_matrices.png"
#: The detection section's figures, each written when its numbers exist:
#: flips per update (every comparison of two months or more), TPR and
#: realised FPR per month (``target_fpr``), forgetting per group (``groups``).
FLIPS_PNG = "flips.png"
DETECTION_PNG = "detection_by_month.png"
GROUPS_PNG = "group_forgetting.png"
RESULTS_JSON = "results.json"
# Figures are drawn at this resolution and at most 11.5 inches wide, so they
# fit the HTML page (1100 px) without being scaled down.
_DPI = 90

_COLUMN_NOTES = (
    ("next month", "the score on the month a model is deployed on: each month's held-out rows "
                   "scored by the model trained through the month before, averaged over months "
                   "(what a team running the strategy sees); in brackets its 95% interval"),
    ("retention", "mean score of the final model over every trained month's held-out rows "
                  "(what it keeps of past months); in brackets its 95% interval"),
    ("BWT", "backward transfer: mean change on earlier months from right after "
            "learning them to the end (negative = forgetting)"),
    ("forgetting", "mean drop from the best earlier score to the final one"),
    ("learning", "mean score on each month right after training on it"),
    ("next-month AUT", "area under the score on the month after each training "
                       "month (the month the model is deployed on)"),
    ("honest", "tuned strategies: mean score of the months after the tuning months, each "
               "scored with the model deployed on it, the setting chosen on earlier months "
               "only"),
    ("oracle", "the same months scored with the setting that is best on them, chosen in "
               "hindsight: what a search over every month reports"),
    ("gap to joint", "retention minus joint retraining's retention"),
    ("flips", "mean negative flip rate of the updates: held-out rows right before an update "
              "and wrong after it"),
    ("TPR@", "mean TPR over months, each month's threshold set on the previous month's "
             "held-out rows for the target FPR"),
    ("realised FPR", "mean false-positive rate those thresholds gave on the month they were "
                     "used on"),
    ("worst group", "forgetting (accuracy) of the group forgotten most"),
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


def _reference_note(comparison):
    """What the reference row is, or None when there is none."""
    reference = comparison.reference
    if reference is None:
        return None
    history = "every month so far" if reference.window is None else \
        f"the last {reference.window} month(s)"
    return (reference.name,
            "not a strategy: after each month, scikit-learn's HistGradientBoostingClassifier "
            f"(default parameters, no early stopping, seeded) fitted on the training rows of "
            f"{history}, scored on the same held-out rows: what retraining a boosted model "
            "monthly gives; never recommended, its seconds are its fits'")


def _intervals_sentence(comparison):
    """How the intervals were made, or None when there are none."""
    s = comparison.settings
    if (s.get("n_splits") or 1) > 1:
        return (f"Intervals are 95% Student's t intervals over the {s['n_splits']} splits "
                "(paired over the same splits for a difference).")
    if s.get("n_bootstrap"):
        return (f"Intervals are 95% percentile intervals of a paired bootstrap: each month's "
                f"held-out rows resampled {s['n_bootstrap']} times and each month given a "
                "random weight (Exp(1), so that the month-to-month variation counts too), "
                "the same resamples and weights for every row of the table, so that "
                "differences between strategies are paired.")
    return None


def _scores_sentence(comparison):
    """Which score the table holds, and why when it was chosen automatically."""
    text = (f"Scores are {comparison.scoring} on each month's held-out rows, "
            f"averaged over {comparison.settings.get('n_splits')} split(s)")
    reason = comparison.settings.get("scoring_reason")
    if reason:
        why = reason.partition(", because ")[2] or reason
        text += (f"; {comparison.scoring} was chosen automatically because {why}; "
                 "pass --scoring to change")
    text += "."
    intervals = _intervals_sentence(comparison)
    return text if intervals is None else f"{text} {intervals}"


def _notes(headers):
    """The column notes of the columns shown."""
    shown = set(headers)
    out = []
    for header, note in _COLUMN_NOTES:
        if header == "rows vs naive / joint":
            if {"rows vs naive", "rows vs joint"} & shown:
                out.append((header, note))
        elif header == "TPR@":
            out += [(h, note) for h in headers if h.startswith("TPR@")]
        elif header in shown:
            out.append((header, note))
    out += [(h, "next-month area under time (TESSERACT) of " + h[4:-1])
            for h in headers if h.startswith("AUT(")]
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

    fig = Figure(figsize=(11.5, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    baseline, reference = comparison.baseline, comparison.reference
    for ax, series, title in zip(fig.subplots(1, 2, sharey=True), ("deployed", "final"), (
            "Next month: each month scored by the model trained before it",
            "Retention: the final model scored on every month")):
        plot_month_scores(
            matrices, ax=ax, ylabel=comparison.scoring, title=title, series=series,
            baseline=None if baseline is None else baseline.matrix,
            baseline_label=None if baseline is None else baseline.name,
            reference=None if reference is None else reference.matrix,
            reference_label=None if reference is None else reference.name,
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


def _detection_figures(comparison, out_dir):
    """Draw the detection section's figures that have numbers; return their names."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from .plotting import plot_detection_by_month, plot_flip_rates, plot_group_forgetting

    results = comparison.results.values()
    drawn = {}
    flips = {r.name: r.flips for r in results if r.flips is not None and len(r.flips.rate)}
    if flips:
        n = len(next(iter(flips.values())).rate)
        fig = Figure(figsize=(min(11.5, max(7.0, 0.5 * n + 3)), 4.0), layout="constrained")
        FigureCanvasAgg(fig)
        plot_flip_rates(flips, ax=fig.subplots(), title="Rows each update broke")
        fig.savefig(os.path.join(out_dir, FLIPS_PNG), dpi=_DPI)
        drawn["flips"] = FLIPS_PNG
    detections = {r.name: r.detection for r in results if r.detection is not None}
    if detections:
        fig = Figure(figsize=(11.5, 4.2), layout="constrained")
        FigureCanvasAgg(fig)
        plot_detection_by_month(detections, fig=fig, title=(
            "Threshold set on the previous month for a target FPR of "
            f"{next(iter(detections.values())).target_fpr:g}"))
        fig.savefig(os.path.join(out_dir, DETECTION_PNG), dpi=_DPI)
        drawn["detection"] = DETECTION_PNG
    groups = {r.name: r.group_forgetting for r in results if r.group_forgetting}
    if groups:
        n_groups = len({g for values in groups.values() for g in values})
        fig = Figure(figsize=(min(11.5, 3 + 1.1 * len(groups)), min(14, 2 + 0.3 * n_groups)),
                     layout="constrained")
        FigureCanvasAgg(fig)
        plot_group_forgetting(groups, ax=fig.subplots(),
                              title="Forgetting of each group (accuracy on its rows)")
        fig.savefig(os.path.join(out_dir, GROUPS_PNG), dpi=_DPI)
        drawn["groups"] = GROUPS_PNG
    return drawn


def _percent(value, digits=1):
    return "-" if value is None or not np.isfinite(value) else f"{value:.{digits}%}"


def _detection_blocks(comparison, drawn):
    """The report's detection and tuning sections, as blocks for Markdown or HTML:
    ``("h2" | "h3" | "p", text)``, ``("table", headers, rows)``, ``("img", file, alt)``."""
    results = list(comparison.results.values())
    blocks = []
    flips = [r for r in results if r.flips is not None and len(r.flips.rate)]
    detections = [r for r in results if r.detection is not None]
    grouped = [r for r in results if r.group_forgetting]
    if flips or detections or grouped:
        blocks.append(("h2", "Regressions and detection"))
    if flips:
        updates = [f"{a}→{b}" for a, b in flips[0].flips.updates]
        blocks += [
            ("h3", "Flips per update"),
            ("p", "Each update, scored on the held-out rows of every month trained through: "
                  "the share of rows that were classified right before the update and wrong "
                  "after it (the negative flip rate), and how many (in brackets). An update "
                  "can raise the average score and still break rows that used to be right."),
            ("table", ["strategy", *updates, "mean"],
             [[r.name, *(f"{_percent(rate)} ({n})" for rate, n in
                         zip(r.flips.rate, r.flips.n_flips)), _percent(r.flip_rate)]
              for r in flips]),
        ]
        if "flips" in drawn:
            blocks.append(("img", drawn["flips"], "Negative flips per update"))
    if detections:
        target = detections[0].detection.target_fpr
        months = detections[0].detection.months
        rows = []
        for r in detections:
            det = r.detection
            rows.append([f"{r.name}: realised FPR"] + [
                _percent(f, 2) + (" ▲" if np.isfinite(f) and f > target else "")
                for f in det.fpr])
            rows.append([f"{r.name}: TPR"] + [
                "-" if not np.isfinite(t) else f"{t:.3f}" for t in det.tpr])
        over = [f"{r.name} ({', '.join(map(str, r.detection.months_over_target()))})"
                for r in detections if r.detection.months_over_target()]
        blocks += [
            ("h3", f"TPR at a {target:g} FPR, the threshold set the month before"),
            ("p", "Each month's threshold is set on the previous month's held-out rows, to "
                  f"flag at most {_percent(target, 2)} of their negatives, and used unchanged "
                  "on the month, as a deployed detector's is. The table gives the FPR it "
                  "realised there (▲: over the target) and the TPR. "
                  + ("Over the target: " + "; ".join(over) + "." if over else
                     "No month went over the target.")),
            ("table", ["strategy", *map(str, months)], rows),
        ]
        if "detection" in drawn:
            blocks.append(("img", drawn["detection"], "TPR and realised FPR per month"))
    if grouped:
        rows = []
        for r in grouped:
            forgotten = sorted((v, g) for g, v in r.group_forgetting.items()
                               if np.isfinite(v) and v > 0.05)
            rows.append([r.name, str(r.worst_group),
                         "-" if r.worst_group_forgetting is None
                         or not np.isfinite(r.worst_group_forgetting)
                         else f"{r.worst_group_forgetting:.3f}",
                         str(len(forgotten)), str(len(r.group_forgetting))])
        blocks += [
            ("h3", "Forgetting per group"),
            ("p", "Each group's held-out rows (a malware family; benign files form their own "
                  "group) are scored with accuracy, its detection rate, after every month: "
                  "its forgetting is the drop from its best earlier score to the final one. An "
                  "average over every row hides a family that is forgotten while the others "
                  "are kept."),
            ("table", ["strategy", "worst group", "its forgetting", "groups forgetting > 0.05",
                       "groups"], rows),
        ]
        if "groups" in drawn:
            blocks.append(("img", drawn["groups"], "Forgetting of each group per strategy"))
    tuned = [r for r in results if r.tuning]
    if tuned:
        first = tuned[0].tuning[0]
        span = first.scored_months
        blocks += [
            ("h2", "Honest tuning"),
            ("p", f"Each tuned strategy's setting was chosen on the months up to "
                  f"{first.cutoffs[0]} only"
                  + (f" (and again after {', '.join(map(str, first.cutoffs[1:]))})"
                     if len(first.cutoffs) > 1 else "")
                  + f", by the score of each month with the model trained through the month "
                  f"before, from fits that saw no later month. Honest: that setting, trained "
                  f"on month after month, scored on months {span[0]} to {span[-1]}, each with "
                  "the model deployed on it. Oracle: the setting that scores best on those "
                  "very months, the choice a search over every month makes. Their gap is what "
                  "the oracle overstates; settings of the first split."),
            ("table", ["strategy", "tried", "chosen", "in hindsight", "honest", "oracle",
                       "oracle overstates"],
             [[r.name, _settings_text(r.tuning[0].candidates),
               "; ".join(_settings_text([p]) for p in r.tuning[0].chosen_params),
               "; ".join(_settings_text([p]) for p in r.tuning[0].oracle_params),
               f"{r.honest_score:.3f}", f"{r.oracle_score:.3f}",
               f"{r.oracle_score - r.honest_score:+.3f}"] for r in tuned]),
        ]
        doubts = [f"{r.name}: {w}" for r in tuned for w in r.tuning[0].warnings()]
        if doubts:
            blocks.append(("p", "Choices to doubt (first split): " + "; ".join(doubts) + "."))
    return blocks


def _grid_settings(grid):
    from sklearn.model_selection import ParameterGrid

    return ParameterGrid(grid)


def _settings_text(settings):
    """``[{"reg_lambda": 1}, {"reg_lambda": 10}]`` -> ``"reg_lambda=1/10"``."""
    keys = sorted({k for p in settings for k in p})
    parts = []
    for key in keys:
        values = []
        for p in settings:
            text = _format_param(p.get(key))
            if text not in values:
                values.append(text)
        parts.append(f"{key}={'/'.join(values)}")
    return ", ".join(parts)


def _markdown_blocks(blocks):
    out = []
    for block in blocks:
        kind = block[0]
        if kind == "h2":
            out += [f"## {block[1]}", ""]
        elif kind == "h3":
            out += [f"### {block[1]}", ""]
        elif kind == "p":
            out += [block[1], ""]
        elif kind == "table":
            headers, rows = block[1], block[2]
            out.append("| " + " | ".join(headers) + " |")
            out.append("| " + " | ".join(["---"] + ["---:"] * (len(headers) - 1)) + " |")
            out += ["| " + " | ".join(r) + " |" for r in rows]
            out.append("")
        elif kind == "img":
            out += [f"![{block[2]}]({block[1]})", ""]
    return out


def _html_blocks(blocks, out_dir):
    e = html.escape
    out = []
    for block in blocks:
        kind = block[0]
        if kind in ("h2", "h3"):
            out.append(f"<{kind}>{e(block[1])}</{kind}>")
        elif kind == "p":
            out.append(f"<p>{e(block[1])}</p>")
        elif kind == "table":
            out.append("<table>")
            out.append("<tr>" + "".join(f"<th>{e(h)}</th>" for h in block[1]) + "</tr>")
            for r in block[2]:
                out.append("<tr>" + "".join(
                    f"<td>{e(c)}</td>" if i == 0 else f"<td class=\"n\">{e(c)}</td>"
                    for i, c in enumerate(r)) + "</tr>")
            out.append("</table>")
        elif kind == "img":
            source = _data_uri(os.path.join(out_dir, block[1]))
            out.append(f"<p><img src=\"{source}\" alt=\"{e(block[2])}\"></p>")
    return out


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
    if s.get("test_prevalence") is not None:
        lines.append(("test prevalence", f"{s['test_prevalence']:g}: each month's held-out rows "
                                         "subsampled to this share of positives"))
    if s.get("aut_scoring"):
        lines.append(("area under time", f"next-month AUT of {s['aut_scoring']}"))
    if s.get("target_fpr") is not None:
        lines.append(("target FPR", f"{s['target_fpr']:g}, the threshold set on the previous "
                                    "month's held-out rows"))
    if s.get("groups"):
        lines.append(("groups", f"{s['groups']} groups scored apart"))
    if s.get("tune_months") is not None:
        every = f", chosen again every {s['tune_every']} months" if s.get("tune_every") else ""
        grids = "; ".join(f"{k}: {_settings_text(list(_grid_settings(v)))}"
                          for k, v in (s.get("tune_grids") or {}).items())
        lines.append(("honest tuning", f"chosen on the first {s['tune_months']} months{every}"
                                       + (f" ({grids})" if grids else "")))
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


def _markdown(comparison, figures, command, blocks=()):
    headers, rows = comparison.display_rows()
    out = ["# Which monthly update should we ship?", "", f"**{comparison.verdict()}**", ""]
    out += ["## Results", ""]
    out.append("| " + " | ".join(headers) + " |")
    out.append("| " + " | ".join(["---"] + ["---:"] * (len(headers) - 1)) + " |")
    out += ["| " + " | ".join(r) + " |" for r in rows]
    out += ["", _scores_sentence(comparison), ""]
    out += [f"* **{header}**: {note}" for header, note in _notes(headers)]
    for note in (_reference_note(comparison), _baseline_note(comparison)):
        if note:
            out.append("* **{}**: {}".format(*note))
    out += ["", "## Figures", "",
            f"![Score of every strategy on every month: next month and retention]"
            f"({figures[0]})", "",
            f"![Forgetting matrix of every strategy]({figures[1]})", ""]
    out += _markdown_blocks(blocks)
    out += ["## Settings", ""]
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


def _html(comparison, figures, command, out_dir, blocks=()):
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
    for note in (_reference_note(comparison), _baseline_note(comparison)):
        if note:
            notes.append(note)
    for header, note in notes:
        parts.append(f"<li><strong>{e(header)}</strong>: {e(note)}</li>")
    parts += ["</ul>", "<h2>Figures</h2>",
              f"<p><img src=\"{sources[0]}\" alt=\"Score of every strategy on every month: "
              "next month and retention\"></p>",
              f"<p><img src=\"{sources[1]}\" alt=\"Forgetting matrix of every strategy\"></p>"]
    parts += _html_blocks(blocks, out_dir)
    parts += ["<h2>Settings</h2>", "<ul>"]
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
            "flips": None if res.flips is None else {
                "updates": res.flips.updates, "rate": res.flips.rate,
                "n_flips": res.flips.n_flips, "n_rows": res.flips.n_rows,
            },
            "detection": None if res.detection is None else {
                "target_fpr": res.detection.target_fpr, "months": res.detection.months,
                "calibrated_on": res.detection.calibrated_on, "tpr": res.detection.tpr,
                "realised_fpr": res.detection.fpr, "threshold": res.detection.threshold,
            },
            "group_forgetting": None if res.group_forgetting is None else [
                {"group": g, "forgetting": v} for g, v in res.group_forgetting.items()],
            "worst_group": res.worst_group,
            "aut": res.aut,
            "tuning": None if res.tuning is None else [
                {"cutoffs": t.cutoffs, "candidates": t.candidates,
                 "chosen_params": t.chosen_params, "oracle_params": t.oracle_params,
                 "scored_months": t.scored_months, "honest_scores": t.honest_scores,
                 "oracle_scores": t.oracle_scores, "honest_score": t.honest_score,
                 "oracle_score": t.oracle_score, "choice_scoring": t.choice_scoring,
                 "ties": t.ties, "at_edge": t.at_edge}
                for t in res.tuning],
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
    reference = comparison.reference
    if reference is not None:
        reference = {
            "name": reference.name,
            "window": reference.window,
            "summary": reference.summary,
            "R": reference.matrix.R,
            "train_months": reference.matrix.train_months,
            "months": reference.matrix.months,
            "seconds_per_month": reference.seconds_per_month,
        }
    return _jsonable({
        "verdict": comparison.verdict(),
        "recommended": comparison.recommend(),
        "indistinguishable": comparison.indistinguishable(),
        "reference": reference,
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
    ``report.html``, ``month_scores.png`` (two panels: the score of every
    strategy on each month with the model deployed on it, and its final
    model's on every month, with the reference and the baseline,
    :func:`~sklearn_cf.plotting.plot_month_scores`),
    ``forgetting_matrices.png`` (a grid of forgetting-matrix heatmaps, one
    per strategy on one colour scale,
    :func:`~sklearn_cf.plotting.plot_forgetting_matrices`) and
    ``results.json`` (every number in the report, with the matrices). The
    section "Regressions and detection" adds ``flips.png`` (the negative
    flip rate of every update), and, when the comparison has them,
    ``detection_by_month.png`` (``target_fpr``: TPR and realised FPR per
    month against the target) and ``group_forgetting.png`` (``groups``: a
    heatmap of each group's forgetting per strategy); the section "Honest
    tuning" (``tune_months``) gives each tuned strategy's choices and its
    honest score beside the oracle's.
    ``report.md`` links the PNG files; ``report.html`` embeds them (base64
    ``data:`` URIs), so it keeps its figures when moved alone.

    The report opens with the verdict (:meth:`Comparison.verdict`), then
    the table (the next-month score and retention, each with its 95%
    interval, backward transfer, forgetting, learning score, next-month
    AUT, gap to joint, rows and seconds relative to naive; its last rows are
    the gradient-boosting reference and the majority-class baseline), which
    scoring filled it (and why, when it was chosen automatically) and how
    the intervals were made, the figures, the settings with each strategy's
    parameters, and ``command``, the command line that reproduces it.

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
    ('report.md', ['flips.png', 'forgetting_matrices.png', 'month_scores.png', 'report.md',
                   'results.json'])
    >>> open(path).read().splitlines()[2] == f"**{comp.verdict()}**"  # the verdict first
    True
    """
    if fmt not in ("md", "html"):
        raise ValueError(f"fmt must be 'md' or 'html', got {fmt!r}.")
    out_dir = os.fspath(out_dir)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ValueError(f"out_dir {out_dir!r} exists and is not a folder.")
    os.makedirs(out_dir, exist_ok=True)
    figures = _figures(comparison, out_dir)
    blocks = _detection_blocks(comparison, _detection_figures(comparison, out_dir))
    if fmt == "md":
        text = _markdown(comparison, figures, command, blocks)
    else:
        text = _html(comparison, figures, command, out_dir, blocks)
    path = os.path.join(out_dir, f"report.{fmt}")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    with open(os.path.join(out_dir, RESULTS_JSON), "w", encoding="utf-8") as fh:
        json.dump(_results_json(comparison, command), fh, indent=1)
    return path
