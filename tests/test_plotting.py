"""The report's figures, the self-contained HTML report and the terminal table.

The comparisons are built from hand-made forgetting matrices (no training),
with the study's nine default strategies and twelve months: the widest
table and the largest annotated figure the CLI produces by default.
"""

import base64
import os
import re
import shutil
from html.parser import HTMLParser

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from sklearn_cf.compare import (  # noqa: E402
    DEFAULT_STRATEGIES,
    Comparison,
    StrategyResult,
    _add_relative,
)
from sklearn_cf.metrics import ForgettingMatrix  # noqa: E402
from sklearn_cf.plotting import (  # noqa: E402
    figsize_for_matrices,
    plot_forgetting_matrices,
    plot_forgetting_matrix,
)
from sklearn_cf.report import write_report  # noqa: E402

N_MONTHS = 12


def _result(name, i, n_months=N_MONTHS, hessian=False):
    rng = np.random.default_rng(i)
    # Each strategy on its own part of the scale, so that per-panel scales
    # would differ.
    R = np.tril(0.55 + 0.04 * i + 0.05 * rng.random((n_months, n_months)))
    R[np.triu_indices(n_months, 1)] = 0.5 + 0.02 * i
    fm = ForgettingMatrix(R, list(range(n_months)), list(range(n_months)), "roc_auc")
    summary = {"average_accuracy": R[-1].mean(), "backward_transfer": -0.0123 * i,
               "forgetting": 0.0123 * i, "learning_accuracy": np.diag(R).mean(),
               "next_month_aut": 0.6 + 0.01 * i}
    rows = 1000.0 * (i + 1) * (6.5 if name == "joint" else 1)
    res = StrategyResult(name, name.split(":")[0], {}, {"max_epochs": 2}, fm, [fm], summary,
                         rows, 12.345 * (i + 1), [rows / n_months] * n_months,
                         [1.0] * n_months)
    if hessian:
        res.fisher_negative_share = 0.125
    return res


def _comparison(names=DEFAULT_STRATEGIES + ("ewc:fisher=hessian",), n_months=N_MONTHS):
    results = {name: _result(name, i, n_months, hessian="hessian" in name)
               for i, name in enumerate(names)}
    _add_relative(results)
    settings = {"n_splits": 1, "n_months": n_months, "months": list(range(n_months)),
                "cv": "SequentialSplit", "estimator_params": {"max_epochs": 2}}
    return Comparison(results, "roc_auc", settings)


@pytest.fixture(scope="module")
def comparison():
    return _comparison()


def _forgetting_figure(comparison):
    matrices = {name: res.matrix for name, res in comparison.results.items()}
    fig = Figure(figsize=figsize_for_matrices(len(matrices), N_MONTHS), layout="constrained")
    FigureCanvasAgg(fig)
    plot_forgetting_matrices(matrices, fig=fig, label="roc_auc",
                             title="Forgetting matrices: row = trained through")
    fig.canvas.draw()
    return fig


@pytest.fixture(scope="module")
def figure(comparison):
    return _forgetting_figure(comparison)


def _panels(fig):
    return [ax for ax in fig.axes if ax.images]


# ---------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------
def test_panels_share_one_colour_scale_and_one_labelled_colour_bar(comparison, figure):
    fig = figure
    panels = _panels(fig)
    assert [ax.get_title() for ax in panels] == list(comparison.results)
    every = np.concatenate([res.matrix.R.ravel() for res in comparison.results.values()])
    expected = (every.min(), every.max())
    for ax in panels:
        np.testing.assert_allclose(ax.images[0].get_clim(), expected)
    colour_bars = [ax for ax in fig.axes if ax not in panels]
    assert len(colour_bars) == 1
    assert colour_bars[0].get_ylabel() == "roc_auc"


def test_suptitle_does_not_overlap_any_panel_title(comparison, figure):
    fig = figure
    renderer = fig.canvas.get_renderer()
    top = fig._suptitle.get_window_extent(renderer)
    assert fig._suptitle.get_text()
    for ax in _panels(fig):
        box = ax.title.get_window_extent(renderer)
        assert not top.overlaps(box), (ax.get_title(), top, box)
        # nor the axes themselves
        assert not top.overlaps(ax.get_window_extent(renderer))


def test_cell_numbers_fit_their_cells_and_are_readable(comparison, figure):
    fig = figure
    renderer = fig.canvas.get_renderer()
    width_px = fig.get_size_inches()[0] * 90
    assert width_px <= 1100  # shown unscaled on the HTML page at the report's dpi
    for ax in _panels(fig):
        texts = ax.texts
        assert len(texts) == int(np.isfinite(ax.images[0].get_array()).sum())
        box = ax.get_window_extent(renderer)
        cell_w, cell_h = box.width / N_MONTHS, box.height / N_MONTHS
        for text in texts:
            assert text.get_fontsize() >= 5
            extent = text.get_window_extent(renderer)
            assert extent.width <= cell_w and extent.height <= cell_h


def test_no_cell_numbers_above_twelve_months():
    matrices = {"a": np.full((13, 13), 0.7), "b": np.full((13, 13), 0.8)}
    fig = plot_forgetting_matrices(matrices, label="accuracy")
    assert all(not ax.texts for ax in _panels(fig))
    ax = plot_forgetting_matrix(np.full((13, 13), 0.7))
    assert not ax.texts
    import matplotlib.pyplot as plt

    plt.close("all")


def test_single_matrix_keeps_its_own_scale_unless_told():
    import matplotlib.pyplot as plt

    ax = plot_forgetting_matrix([[0.9, np.nan], [0.7, 0.8]])
    assert ax.images[0].get_clim() == (0.7, 0.9)
    ax = plot_forgetting_matrix([[0.9, np.nan], [0.7, 0.8]], vmin=0.0, vmax=1.0,
                                label="accuracy")
    assert ax.images[0].get_clim() == (0.0, 1.0)
    assert ax.figure.axes[-1].get_ylabel() == "accuracy"
    plt.close("all")


# ---------------------------------------------------------------------------
# Reports
# ---------------------------------------------------------------------------
class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.links = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        for key in ("href", "src"):
            if tag != "img" and key in attrs:
                self.links.append(attrs[key])


def _check_self_contained(path):
    parser = _Links()
    page = open(path, encoding="utf-8").read()
    parser.feed(page)
    assert len(parser.images) == 2
    for src in parser.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert parser.links == []  # no stylesheet, script or other file
    assert ".png" not in page
    return page


def test_html_report_is_self_contained_and_survives_a_move(comparison, tmp_path):
    command = "sklearn-cf compare --data flights --strategies " + ",".join(
        DEFAULT_STRATEGIES) + " --scoring roc_auc --out " + "x" * 150
    path = write_report(comparison, tmp_path / "out", fmt="html", command=command)
    page = _check_self_contained(path)
    # the command wraps instead of widening the page
    assert re.search(r"pre\.command\{[^}]*white-space:pre-wrap", page)
    assert re.search(r"pre\.command\{[^}]*overflow-wrap:anywhere", page)
    assert '<pre class="command"><code>sklearn-cf compare' in page

    moved = tmp_path / "elsewhere" / "moved.html"
    moved.parent.mkdir()
    shutil.move(path, moved)
    shutil.rmtree(tmp_path / "out")
    assert _check_self_contained(moved) == page


def test_markdown_report_links_its_png_files(tmp_path):
    path = write_report(_comparison(names=("naive", "replay", "joint"), n_months=4), tmp_path,
                        fmt="md")
    text = open(path, encoding="utf-8").read()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert links == ["month_scores.png", "forgetting_matrices.png"]
    for link in links:
        assert open(os.path.join(tmp_path, link), "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert "data:image" not in text


# ---------------------------------------------------------------------------
# Terminal output
# ---------------------------------------------------------------------------
def _cells(text):
    return [line.split() for line in text.splitlines() if line.strip()]


def test_table_fits_100_columns_and_keeps_every_cell(comparison):
    one_line = comparison.to_string(width=None)
    assert max(map(len, one_line.splitlines())) > 100  # the case worth testing
    text = comparison.to_string()
    assert all(len(line) <= 100 for line in text.splitlines())

    headers, rows = comparison.display_rows()
    blocks = text.split("\n\n")
    assert len(blocks) >= 2
    # Each block: the header line, then one line per strategy, strategy first.
    seen = {name: [] for name in comparison.strategies}
    seen_headers = []
    for block in blocks:
        lines = block.splitlines()
        assert len(lines) == 1 + len(rows)
        assert lines[0].startswith("strategy")
        seen_headers.append(lines[0][len("strategy"):])
        for line, row in zip(lines[1:], rows):
            assert line.startswith(row[0] + " ")
            seen[row[0]] += line[len(row[0]):].split()
    for row in rows:
        assert seen[row[0]] == row[1:]  # every number, in order, once
    joined = " ".join(seen_headers)
    for header in headers[1:]:
        assert header in joined
    # key numbers as the other views have them
    replay = comparison.results["replay"]
    assert f"{replay.summary['average_accuracy']:.3f}" in text
    assert "12.5%" in text  # the Hessian < 0 column


def test_a_table_within_the_width_stays_one_table():
    comp = _comparison(names=("naive", "joint"), n_months=3)
    assert comp.to_string(width=300) == comp.to_string(width=None)
    assert "\n\n" not in comp.to_string(width=300)
    assert len(comp.to_string(width=None).splitlines()) == 3


def test_verdict_wraps_at_the_width_and_keeps_every_word(comparison):
    sentence = comparison.verdict()
    assert "\n" not in sentence and len(sentence) > 100
    wrapped = comparison.verdict(width=100)
    assert all(len(line) <= 100 for line in wrapped.splitlines())
    assert len(wrapped.splitlines()) >= 2
    assert wrapped.split() == sentence.split()


# ---------------------------------------------------------------------------
# The detection section's figures
# ---------------------------------------------------------------------------
def test_detection_figure_draws_tpr_fpr_and_the_target():
    from sklearn_cf.metrics import MonthlyDetection
    from sklearn_cf.plotting import plot_detection_by_month

    det = {
        "naive": MonthlyDetection(0.01, [1, 2, 3], [0, 1, 2], np.array([0.9, 0.8, np.nan]),
                                  np.array([0.005, 0.03, 0.01]), np.zeros(3)),
        "replay": MonthlyDetection(0.01, [1, 2, 3], [0, 1, 2], np.array([0.95, 0.9, 0.9]),
                                   np.array([0.008, 0.012, 0.009]), np.zeros(3)),
    }
    fig = Figure(layout="constrained")
    FigureCanvasAgg(fig)
    plot_detection_by_month(det, fig=fig, title="t")
    tpr_ax, fpr_ax = fig.axes
    np.testing.assert_allclose(tpr_ax.get_lines()[0].get_ydata(), [0.9, 0.8, np.nan])
    np.testing.assert_allclose(fpr_ax.get_lines()[1].get_ydata(), [0.008, 0.012, 0.009])
    target = fpr_ax.get_lines()[-1]
    assert target.get_label() == "target FPR 0.01"
    np.testing.assert_allclose(target.get_ydata(), [0.01, 0.01])
    assert [t.get_text() for t in fpr_ax.get_xticklabels()] == ["1", "2", "3"]


def test_flip_rate_figure_in_percent():
    from sklearn_cf.metrics import UpdateFlips
    from sklearn_cf.plotting import plot_flip_rates

    fig = Figure()
    FigureCanvasAgg(fig)
    ax = plot_flip_rates({"naive": UpdateFlips([("2024-01", "2024-02")], np.array([0.025]),
                                               np.array([5]), np.array([200]))},
                         ax=fig.subplots())
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [2.5])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2024-01→2024-02"]


def test_group_heatmap_holds_every_group_of_every_strategy():
    from sklearn_cf.plotting import plot_group_forgetting

    fig = Figure()
    FigureCanvasAgg(fig)
    ax = plot_group_forgetting({"naive": {"emotet": 0.4, "zbot": 0.1},
                                "replay": {"zbot": 0.0, "qakbot": np.nan}}, ax=fig.subplots())
    data = ax.images[0].get_array()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["emotet", "zbot", "qakbot"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["naive", "replay"]
    np.testing.assert_allclose(data.filled(np.nan), [[0.4, np.nan], [0.1, 0.0],
                                                     [np.nan, np.nan]])
    assert data.mask.tolist() == [[False, True], [False, False], [True, True]]
    assert sorted(t.get_text() for t in ax.texts) == ["0.00", "0.10", "0.40"]
