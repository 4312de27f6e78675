"""The ``sklearn-cf`` command line: ``sklearn-cf compare`` and ``sklearn-cf update``
(or ``python -m sklearn_cf``).

A thin wrapper around :mod:`sklearn_cf.compare` and :mod:`sklearn_cf.report`:
it parses options, checks that the report folder can be written, loads the
stream, compares the strategies, prints the table and the verdict, and writes
the report with its figures. Errors in the arguments or the data print one
line, ``sklearn-cf: error: ...``, to stderr and exit with status 2, before
anything is trained. Ctrl-C prints ``sklearn-cf: interrupted`` and exits with
status 130, writing no report. ``compare --save-best`` exits with status 3,
after the report, when no strategy beats the majority-class baseline (there
is nothing worth saving). ``update`` is a thin wrapper around
:mod:`sklearn_cf.update`; it exits with status 3 when it refuses an update
that forgets too much, and with 4 when another process is writing the model
store. ``history`` lists a model store's generations. ``predict`` scores a
file with a model and ``export`` writes its network as ONNX
(:mod:`sklearn_cf.serving`). See docs/cli.md and docs/serving.md.
"""

import argparse
import os
import shlex
import sys
import tempfile
import time
import warnings

__all__ = ["main", "build_parser"]

PROG = "sklearn-cf"
_AUTO_SCORING_HELP = ("roc_auc for two classes when the rarer is under 40%% of rows, "
                      "balanced_accuracy for more classes when one is under 40%%, "
                      "else accuracy")


class _Parser(argparse.ArgumentParser):
    """argparse, with every error reported as ``sklearn-cf: error: ...``."""

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(2, f"{PROG}: error: {message}\n")


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Show defaults, except None and False (the help text explains those)."""

    def _get_help_string(self, action):
        if action.default in (None, False):
            return action.help
        return super()._get_help_string(action)


#: The strategy parameters both commands take as options (--reg-lambda...),
#: for every strategy that declares them; their types come from the
#: strategies' declarations (``sklearn_cf.strategies.parameter_constraints``).
_STRATEGY_OPTIONS = ("reg_lambda", "rehearsal_ratio")


def _names_help():
    """The strategy names accepted, for a help text (``%`` escaped)."""
    from .strategies import available_strategies

    return ", ".join(available_strategies()).replace("%", "%%")


def _declaring(param):
    """The first built-in strategy that declares ``param``."""
    from .strategies import BUILTIN, strategy_parameters

    return next(name for name in BUILTIN if param in strategy_parameters(name))


def _strategy_default(param):
    from .strategies import strategy_parameters

    return strategy_parameters(_declaring(param))[param]


def _add_strategy_options(group, helps):
    """``--reg-lambda``... for the parameters of ``_STRATEGY_OPTIONS``, each
    typed as its strategy's constraint says (a number, an int, a choice)."""
    from ._param_validation import Integer, Options, Real
    from .strategies import parameter_constraints

    for param in _STRATEGY_OPTIONS:
        constraint = parameter_constraints(_declaring(param))[param]
        extra = {}
        if isinstance(constraint, Real):
            extra["type"] = float
        elif isinstance(constraint, Integer):
            extra["type"] = int
        elif isinstance(constraint, Options):
            extra["choices"] = constraint.choices
        group.add_argument("--" + param.replace("_", "-"), default=None, help=helps[param],
                           **extra)


def _strategy_options(args):
    """The strategy options given, as estimator parameters."""
    return {param: getattr(args, param) for param in _STRATEGY_OPTIONS
            if getattr(args, param) is not None}


def build_parser():
    """The argument parser of ``sklearn-cf``.

    Returns
    -------
    argparse.ArgumentParser

    Examples
    --------
    >>> from sklearn_cf.cli import build_parser
    >>> args = build_parser().parse_args(["compare", "--months", "3", "--quiet"])
    >>> args.data, args.months, args.epochs, args.quiet
    ('synthetic', 3, 10, True)
    """
    from .compare import DEFAULT_REG_LAMBDA, DEFAULT_STRATEGIES

    parser = _Parser(
        prog=PROG,
        description="Continual monthly training of tabular networks: compare update "
                    "strategies and write a report.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    cmp = commands.add_parser(
        "compare",
        help="fit every strategy on a monthly stream and say which one to ship",
        description="Fit every strategy on the same held-out splits of a monthly stream, "
                    "print the table and the verdict, and write a report with figures.",
        formatter_class=_Help,
    )
    cmp.prog = f"{PROG} compare"
    data = cmp.add_argument_group("data")
    data.add_argument("--data", default="synthetic", metavar="{synthetic,digits,flights,PATH}",
                      help="built-in stream; a CSV or Parquet file; a folder of Parquet "
                           "files; or a folder of monthly .npy files (<month>/X.npy and "
                           "<month>/y.npy). Parquet is streamed once into a memory-mapped "
                           ".npy cache (docs/data.md)")
    data.add_argument("--month-column", default=None,
                      help="column holding each row's month (required for CSV and "
                           "Parquet, not for a .npy folder): "
                           "numbers, or dates such as 2024-09, 2024-09-15, 09/2024 or "
                           "Sep 2024, ordered by date")
    data.add_argument("--target", default=None,
                      help="column holding the class label (required for CSV and "
                           "Parquet, not for a .npy folder)")
    data.add_argument("--cache-dir", default=None, metavar="DIR",
                      help="where Parquet's .npy cache goes (default: next to the data, "
                           "<data>.sklearn_cf_cache); reused while the data is unchanged")
    data.add_argument("--months", type=int, default=None, metavar="N",
                      help="months to generate (synthetic: 12, digits: 5); for flights and "
                           "files, keep the first N months")
    data.add_argument("--samples-per-month", type=int, default=None, metavar="N",
                      help="rows per month (synthetic and flights: 2000); digits and files "
                           "are subsampled to at most N")
    data.add_argument("--scale", default="auto", choices=("auto", "first-month", "none"),
                      help="standardize features with the mean and std of the first "
                           "month's training rows (held-out rows unused); auto: for "
                           "flights and files, not for synthetic and digits")
    run = cmp.add_argument_group("comparison")
    run.add_argument("--strategies", default=",".join(DEFAULT_STRATEGIES), metavar="SPECS",
                     help="comma-separated strategy specs: name or name:param=value; an "
                          "item param=value continues the spec before it (e.g. "
                          "naive,ewc:fisher=hessian,reg_lambda=1000,joint). Names: "
                          + _names_help())
    run.add_argument("--scoring", default="auto",
                     help="any scikit-learn scorer name, tpr_at_fpr:FPR, or auto: "
                          + _AUTO_SCORING_HELP)
    run.add_argument("--n-splits", type=int, default=1, metavar="N",
                     help="SequentialSplit repetitions (20%% of every month held out)")
    run.add_argument("--seed", type=int, default=0, help="seed of data, splits and networks")
    ev = cmp.add_argument_group("evaluation of a detector")
    ev.add_argument("--future-months", type=int, default=0, metavar="N",
                    help="keep the last N months out of training: all their rows are test "
                         "rows (training strictly before testing)")
    ev.add_argument("--test-prevalence", type=float, default=None, metavar="P",
                    help="binary targets: share of positives in every month's held-out "
                         "rows, as in the wild (e.g. 0.1); the surplus class is subsampled")
    ev.add_argument("--aut", nargs="?", const="f1", default=None, metavar="SCORING",
                    help="also report the next-month area under time of SCORING "
                         "(default f1, TESSERACT's)")
    ev.add_argument("--target-fpr", type=float, default=None, metavar="FPR",
                    help="binary targets: per month, the TPR at this FPR with the threshold "
                         "set on the previous month's held-out rows, and the FPR it realised")
    ev.add_argument("--group-column", default=None, metavar="COL",
                    help="score each group of rows apart (a malware family: its "
                         "forgetting, the worst group, a heatmap); synthetic: family; "
                         "files: a column, which is then not a feature")
    verdict = cmp.add_argument_group("verdict")
    verdict.add_argument("--reference", default="hgb", choices=("hgb", "none"),
                         help="a reference row: scikit-learn's HistGradientBoostingClassifier "
                              "retrained every month on all history, scored like the strategies "
                              "(never shipped; the verdict says whether the choice beats it)")
    verdict.add_argument("--reference-window", type=int, default=None, metavar="N",
                         help="fit the reference on the last N months only")
    verdict.add_argument("--bootstrap", type=int, default=200, metavar="B",
                         help="paired resamples of every month's held-out rows behind the 95%% "
                              "intervals (one split; with --n-splits > 1 the intervals come from "
                              "the splits); 0: none")
    tune = cmp.add_argument_group("honest tuning")
    tune.add_argument("--tune-months", type=int, default=None, metavar="K",
                      help="choose each strategy's lambda or rehearsal ratio on the first K "
                           "months only (K >= 3: at 2 nothing tuned has acted yet), and "
                           "report its score on the later months (honest) beside the best "
                           "setting chosen on those months (oracle)")
    tune.add_argument("--tune-every", type=int, default=None, metavar="R",
                      help="choose again every R months (each time on all months so far)")
    tune.add_argument("--tune-grid", default=None, metavar="GRID",
                      help="settings to try, e.g. 'reg_lambda=0.1,1,10;rehearsal_ratio=0.25,"
                           "0.5' (default: lambda at 0.1x, 1x and 10x; rehearsal ratio "
                           "0.25, 0.5, 0.75)")
    net = cmp.add_argument_group("network")
    net.add_argument("--epochs", type=int, default=10, help="epochs per month")
    net.add_argument("--hidden-units", default="256x256", metavar="WxW",
                     help="hidden layer widths of the MLP, joined by x")
    _add_strategy_options(net, {
        "reg_lambda": "strength of the l2/ewc pull for every strategy; default: "
                      + ", ".join(f"{k} {v:g}" for k, v in DEFAULT_REG_LAMBDA.items()),
        "rehearsal_ratio": "share of past rows in each replay epoch (estimator default "
                           f"{_strategy_default('rehearsal_ratio'):g})",
    })
    net.add_argument("--class-weight", default=None, choices=("none", "balanced"),
                     help="weigh each class's rows in the loss (and the EWC Fisher); "
                          "balanced: n_rows / (n_classes * rows of the class), counted on the "
                          "rows each month trains on, so a rare class counts as much as "
                          "the others")
    net.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    net.add_argument("--threads", type=int, default=1,
                     help="torch CPU threads (1 is fastest for small MLPs on a busy machine)")
    out = cmp.add_argument_group("output")
    out.add_argument("--out", default="sklearn_cf_report", metavar="DIR",
                     help="folder for the report and its figures")
    out.add_argument("--format", default="md", choices=("md", "html"), help="report format")
    out.add_argument("--quiet", action="store_true", help="no progress bar")
    out.add_argument("--save-best", default=None, metavar="PATH",
                     help="refit the recommended strategy on every row of every month "
                          "and commit it to the model store PATH (a folder), ready for "
                          "sklearn-cf update")
    _add_update_parser(commands)
    hist = commands.add_parser(
        "history",
        help="the kept generations of a model store, one line each",
        description="List the kept generations of the model store --model M: id, when it "
                    "was committed, what made it, its months, its scoring and held-out "
                    "scores, and the size of the files it references; then the updates "
                    "the forgetting gate refused, whether each was applied since, and the "
                    "command that applies it knowingly.",
        formatter_class=_Help,
    )
    hist.prog = f"{PROG} history"
    hist.add_argument("--model", required=True, metavar="M", help="model store")
    _add_serving_parsers(commands)
    return parser


def _add_serving_parsers(commands):
    pred = commands.add_parser(
        "predict",
        help="class probabilities and labels for every row of a CSV or Parquet file",
        description="Score every row of --data with the model --model M, chunk by chunk "
                    "(a file larger than memory works), and write one column proba_<label> "
                    "per class and the predicted label, in the file's row order, to --out "
                    "(written whole or not at all).",
        formatter_class=_Help,
    )
    pred.prog = f"{PROG} predict"
    pred.add_argument("--model", required=True, metavar="M",
                      help="model store or checkpoint file")
    pred.add_argument("--data", required=True, metavar="PATH",
                      help="the rows to score: a CSV (also .csv.gz, .tsv) or Parquet file")
    pred.add_argument("--out", required=True, metavar="PATH",
                      help="where to write: .csv, .tsv or .parquet")
    pred.add_argument("--target", default=None,
                      help="label column of --data, left out of the features (default: the "
                           "model's own target column, when it records one and the file "
                           "has it)")
    pred.add_argument("--chunk-rows", type=int, default=50_000, metavar="N",
                      help="rows read, scored and written at a time")
    pred.add_argument("--device", default=None,
                      help="torch device, e.g. cuda (default: the one saved, else cpu)")
    pred.add_argument("--quiet", action="store_true",
                      help="no progress bar (none either when stderr is not a terminal)")
    exp = commands.add_parser(
        "export",
        help="the model's network as an ONNX file, for a serving system",
        description="Write the network of --model M as an ONNX graph of its class "
                    "probabilities (scaling folded into the first layer), with a side file "
                    "OUT.schema.json describing its inputs and classes; the graph is checked "
                    "against the model's predict_proba with onnxruntime before it is "
                    "written. Needs pip install \"sklearn-cf[onnx]\". See docs/serving.md.",
        formatter_class=_Help,
    )
    exp.prog = f"{PROG} export"
    exp.add_argument("--model", required=True, metavar="M",
                     help="model store or checkpoint file")
    exp.add_argument("--format", default="onnx", choices=("onnx",), help="file format")
    exp.add_argument("--out", required=True, metavar="FILE", help="the .onnx file to write")


def _add_update_parser(commands):
    upd = commands.add_parser(
        "update",
        help="the monthly job: update a model store with a new month, check it, commit it",
        description="Update the model store --model M with the month(s) in --data: hold "
                    "out part of each new month, train the rest, score the update on every "
                    "month's held-out rows, and commit it as M's next generation unless it "
                    "forgets more than --max-forgetting. One writer at a time: a second "
                    "update of M exits with status 4 (or waits --wait seconds).",
        formatter_class=_Help,
    )
    upd.prog = f"{PROG} update"
    upd.add_argument("--model", required=True, metavar="M",
                     help="model store (a folder of generations); created when missing "
                          "(needs --strategy or --init-from)")
    upd.add_argument("--rollback", action="store_true",
                     help="make the generation before the current one current again, as a "
                          "new generation (a second --rollback undoes it)")
    upd.add_argument("--to", type=int, default=None, metavar="GEN",
                     help="with --rollback: the generation to restore (see sklearn-cf history)")
    upd.add_argument("--wait", type=float, default=0, metavar="SECONDS",
                     help="wait up to SECONDS for another update of M to finish (default: "
                          "do not wait; exit 4)")
    upd.add_argument("--keep", type=int, default=5, metavar="N",
                     help="generations kept after a commit; older ones are removed")
    data = upd.add_argument_group("data")
    data.add_argument("--data", default=None, metavar="PATH",
                      help="the new month: a CSV or Parquet file, or a folder of monthly .npy "
                           "files; several months are trained in order")
    data.add_argument("--target", default=None, help="column holding the class label")
    data.add_argument("--month", default=None, metavar="LABEL",
                      help="label of the new month (default: the --month-column values, "
                           "else the next integer)")
    data.add_argument("--month-column", default=None,
                      help="column holding each row's month, for a file of several months")
    data.add_argument("--classes", default=None, metavar="A,B,C",
                      help="every class label, declared up front: a new model gets all of "
                           "them from its first month on; for an existing model, labels it "
                           "lacks need --allow-new-classes")
    data.add_argument("--allow-new-classes", action="store_true",
                      help="let a month bring labels the model has never seen: the output "
                           "layer grows by one unit per new class (without it such a month "
                           "is refused, exit 2, nothing written)")
    data.add_argument("--scale", default="auto", choices=("auto", "first-month", "none"),
                      help="new model only: standardize features with the first month's "
                           "training rows (auto: yes for files and .npy folders, as compare does)")
    check = upd.add_argument_group("checks")
    check.add_argument("--holdout", type=float, default=0.2, metavar="FRACTION",
                       help="share of each new month held out (stratified, seeded) to score "
                            "the update and later ones")
    check.add_argument("--max-forgetting", type=float, default=None, metavar="X",
                       help="refuse to save (exit 3) when a past month's held-out score "
                            "drops by more than X and beyond the held-out rows' noise (see "
                            "--forgetting-confidence); the refusal is recorded in M and "
                            "listed by sklearn-cf history")
    check.add_argument("--forgetting-confidence", type=float, default=0.95, metavar="C",
                       help="with --max-forgetting: refuse only when a paired test on the "
                            "month's held-out rows before and after (exact McNemar for "
                            "accuracy, else a paired bootstrap; Holm over the past months) "
                            "gives p < 1 - C that its score did not drop; an update whose "
                            "months did not drop is refused at most 1 - C of the time. 0: "
                            "no test, the drop alone decides")
    check.add_argument("--accept-forgetting", action="store_true",
                       help="commit the update even if the gate refuses it (a month refused "
                            "before, applied knowingly); its refusal record is marked as "
                            "applied")
    check.add_argument("--scoring", default="auto",
                       help="score of the held-out rows: a scikit-learn scorer name, "
                            "tpr_at_fpr:FPR, or auto (" + _AUTO_SCORING_HELP + ", on the "
                            "first data). Chosen with M's first generation and recorded "
                            "there; later updates use the recorded one")
    check.add_argument("--seed", type=int, default=0, help="seed of the split and a new model")
    net = upd.add_argument_group("new model (only when M does not exist)")
    net.add_argument("--strategy", default=None, metavar="SPEC",
                     help="strategy spec, e.g. replay or ewc:reg_lambda=100; must match M "
                          "when M exists")
    net.add_argument("--init-from", default=None, metavar="CHECKPOINT",
                     help="start M from a checkpoint file (saved by ContinualClassifier.save, "
                          "or by update before stores) instead of a new model")
    net.add_argument("--memory-on-disk", action="store_true",
                     help="keep the replay memory (or joint's history) in M/memory, "
                          "memory-mapped, instead of in each checkpoint")
    net.add_argument("--epochs", type=int, default=None, help="epochs per month (default 10)")
    net.add_argument("--hidden-units", default=None, metavar="WxW",
                     help="hidden layer widths (default 256x256)")
    _add_strategy_options(net, {
        "reg_lambda": "strength of the pull",
        "rehearsal_ratio": "share of past rows in each replay epoch",
    })
    net.add_argument("--class-weight", default=None, choices=("none", "balanced"),
                     help="weigh each class's rows in the loss (default none)")
    net.add_argument("--device", default=None, help="torch device (default cpu)")
    upd.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    out = upd.add_argument_group("output")
    out.add_argument("--out", default=None, metavar="DIR",
                     help="also write a Markdown report, DIR/update.md")
    out.add_argument("--quiet", action="store_true", help="print only the last line")


def _command_line(args):
    """The full command that reproduces this run, every option explicit."""
    parts = [PROG, "compare", "--data", args.data]
    for flag, value in (
        ("--month-column", args.month_column), ("--target", args.target),
        ("--cache-dir", args.cache_dir),
        ("--months", args.months), ("--samples-per-month", args.samples_per_month),
        ("--scale", args.scale),
        ("--strategies", args.strategies), ("--scoring", args.scoring),
        ("--n-splits", args.n_splits), ("--seed", args.seed),
        ("--future-months", args.future_months or None),
        ("--test-prevalence", args.test_prevalence), ("--aut", args.aut),
        ("--target-fpr", args.target_fpr), ("--group-column", args.group_column),
        ("--reference", args.reference), ("--reference-window", args.reference_window),
        ("--bootstrap", args.bootstrap),
        ("--tune-months", args.tune_months), ("--tune-every", args.tune_every),
        ("--tune-grid", args.tune_grid), ("--epochs", args.epochs),
        ("--hidden-units", args.hidden_units),
        *(("--" + param.replace("_", "-"), getattr(args, param)) for param in _STRATEGY_OPTIONS),
        ("--class-weight", args.class_weight),
        ("--device", args.device), ("--threads", args.threads), ("--out", args.out), ("--format", args.format),
        ("--save-best", args.save_best),
    ):
        if value is not None:
            parts += [flag, str(value)]
    return shlex.join(parts)


def _check_out(out):
    """Fail now, not after the training, if the report cannot go to ``out``.

    ``out`` must be a folder, or a path whose nearest existing parent is a
    folder; that folder must take a new file (tried with a temporary file,
    removed at once, since permission bits do not tell for root or a
    read-only file system). Nothing is left behind.
    """
    path = os.path.abspath(out)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(
            f"--out {out!r} is a file, not a folder; give a folder for the report "
            "(it is created if missing)."
        )
    target = path
    while not os.path.exists(target):
        target = os.path.dirname(target)
    if not os.path.isdir(target):
        raise ValueError(
            f"--out {out!r} cannot be created: {target!r} is a file, not a folder; "
            "choose another --out."
        )
    try:
        with tempfile.TemporaryFile(dir=target, prefix=".sklearn-cf-"):
            pass
    except OSError as exc:
        why = exc.strerror or str(exc)
        if target == path:
            problem = f"is a folder that cannot be written to ({why})"
        else:
            problem = f"cannot be created: the folder {target!r} cannot be written to ({why})"
        raise ValueError(f"--out {out!r} {problem}; choose another --out.") from None


def _load_stream(args):
    """The raw stream, with notes on the data printed as ``sklearn-cf: note: ...``
    (months ordered as text, a Parquet file read whole)."""
    from .datasets import MonthOrderWarning, ReadWholeWarning, load_stream

    notes = (MonthOrderWarning, ReadWholeWarning)
    with warnings.catch_warnings(record=True) as caught:
        for category in notes:
            warnings.simplefilter("always", category)
        stream = load_stream(
            args.data, n_months=args.months, samples_per_month=args.samples_per_month,
            month_column=args.month_column, target=args.target, random_state=args.seed,
            cache_dir=args.cache_dir, progress=not args.quiet,
            group_column=args.group_column,
        )
    for warning in caught:
        if issubclass(warning.category, notes):
            print(f"{PROG}: note: {warning.message}", file=sys.stderr)
        else:  # not ours: as if it had not been caught
            warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                   warning.lineno)
    return stream


def _compare(args):
    import torch

    from .compare import check_comparison, compare_strategies, parse_hidden_units, parse_tune_grid
    from .datasets import resolve_scale
    from .model_selection import SequentialSplit
    from .report import write_report

    if args.n_splits < 1:
        raise ValueError(f"--n-splits must be >= 1, got {args.n_splits}.")
    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}.")
    if args.epochs < 1:
        raise ValueError(f"--epochs must be >= 1, got {args.epochs}.")
    if args.future_months < 0:
        raise ValueError(f"--future-months must be >= 0, got {args.future_months}.")
    _check_out(args.out)
    if args.save_best is not None:
        _check_model_path(args.save_best, "--save-best")
    strategies = [s for s in args.strategies.split(",") if s.strip()]
    strategies = _join_spec_params(strategies)
    params = {
        "max_epochs": args.epochs,
        "hidden_units": parse_hidden_units(args.hidden_units, "--hidden-units"),
        "device": args.device,
    }
    params.update(_strategy_options(args))
    if args.class_weight is not None:
        params["class_weight"] = None if args.class_weight == "none" else args.class_weight
    options = dict(
        target_fpr=args.target_fpr, aut_scoring=args.aut, tune_months=args.tune_months,
        tune_every=args.tune_every,
        tune_grid=None if args.tune_grid is None else parse_tune_grid(args.tune_grid),
        reference=args.reference, reference_window=args.reference_window,
        n_bootstrap=args.bootstrap,
    )
    # Everything that can be checked without data, before loading any.
    check_comparison(strategies, scoring=args.scoring, estimator_params=params,
                     random_state=args.seed, **options)
    cv = SequentialSplit(n_splits=args.n_splits, test_size=0.2, random_state=args.seed,
                         n_future_months=args.future_months,
                         test_prevalence=args.test_prevalence)
    cv.get_n_splits()  # its parameters, checked before loading

    torch.set_num_threads(args.threads)
    # Raw features: compare_strategies scales each split with its own training
    # rows, so that the held-out rows of the first month do not leak into it.
    X, y, months, *groups = _load_stream(args)
    start = time.perf_counter()
    comparison = compare_strategies(
        X, y, months, strategies, cv=cv,
        scoring=args.scoring, scale=resolve_scale(args.data, args.scale),
        estimator_params=params, progress=not args.quiet, random_state=args.seed,
        groups=groups[0] if groups else None, **options,
    )
    comparison.settings.update(
        data=args.data, torch_threads=args.threads,
        elapsed_seconds=round(time.perf_counter() - start, 1),
    )
    command = _command_line(args)
    path = write_report(comparison, args.out, fmt=args.format, command=command)
    best = None
    if args.save_best is not None and comparison.recommend() is not None:
        from .update import raw_stream, save_best

        # A file read whole: its raw columns, so that the model encodes them itself.
        raw = raw_stream(args.data, target=args.target, month_column=args.month_column,
                         group_column=args.group_column, n_months=args.months,
                         samples_per_month=args.samples_per_month, random_state=args.seed)
        if raw is not None:
            X, y, months = raw
        best = save_best(comparison, X, y, months, args.save_best, estimator_params=params,
                         scale=resolve_scale(args.data, args.scale), random_state=args.seed)
    print(comparison.scoring_note(width=100))
    print()
    print(comparison.to_string())
    print()
    print(comparison.verdict(width=100))
    print()
    if comparison.tuning_note() is not None:
        print(comparison.tuning_note(width=100))
        print()
    print(f"Report: {path} ({comparison.settings['elapsed_seconds']:.0f} s)")
    if best is not None:
        print(f"Saved {best}, refitted on every row, to the model store {args.save_best}")
    elif args.save_best is not None:
        print(f"{PROG}: not saved: no strategy is recommended (see the verdict), so "
              f"{args.save_best} was not written.", file=sys.stderr)
        return 3
    return 0


def _check_model_path(path, option):
    """Fail before training when a model store cannot be written at ``path``."""
    if os.path.isfile(path):
        raise ValueError(f"{option} {path!r} is a file; give a model store folder (new, or "
                         "one written by sklearn-cf update).")
    if os.path.isdir(path) and os.listdir(path):
        from .store import ModelStore

        if not ModelStore.is_store(path):
            raise ValueError(f"{option} {path!r} is a folder that is not a model store; "
                             "give a new path.")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"{option} {path!r}: the folder {folder!r} does not exist.")


def _update(args):
    import torch

    from . import update

    if args.wait < 0:
        raise ValueError(f"--wait must be >= 0 seconds, got {args.wait:g}.")
    if args.keep < 1:
        raise ValueError(f"--keep must be >= 1, got {args.keep}.")
    if args.to is not None and not args.rollback:
        raise ValueError("--to GEN applies only with --rollback.")
    if args.rollback:
        if args.data is not None:
            raise ValueError("--rollback takes only --model (and --to, --wait, --keep); "
                             "drop --data.")
        before, after = update.rollback(args.model, args.to, wait=args.wait, keep=args.keep)
        if after is None:
            target = before.previous if args.to is None else args.to
            print(f"{args.model}: generation {target}'s model is already current (generation "
                  f"{before.id}); nothing to do")
            return 0
        print(f"Rolled back {args.model}: generation {after.id} restores generation "
              f"{after.restores}; months {_months_text(before.months)} -> "
              f"{_months_text(after.months)} (undo with another --rollback)")
        return 0
    if args.data is None and args.init_from is None:
        raise ValueError("--data is required (the new month), unless --rollback or "
                         "--init-from.")
    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}.")
    if args.epochs is not None and args.epochs < 1:
        raise ValueError(f"--epochs must be >= 1, got {args.epochs}.")
    if args.out is not None:
        _check_out(args.out)
    params = {}
    if args.epochs is not None:
        params["max_epochs"] = args.epochs
    if args.hidden_units is not None:
        from .compare import parse_hidden_units

        params["hidden_units"] = parse_hidden_units(args.hidden_units, "--hidden-units")
    params.update(_strategy_options(args))
    if args.device is not None:
        params["device"] = args.device
    if args.class_weight is not None:
        params["class_weight"] = None if args.class_weight == "none" else args.class_weight
    from .exceptions import TrainingDivergedError

    torch.set_num_threads(args.threads)
    try:
        result = update.update_model(
            args.model, args.data, target=args.target, month=args.month,
            month_column=args.month_column, holdout=args.holdout,
            max_forgetting=args.max_forgetting, strategy=args.strategy,
            estimator_params=params, scale=args.scale, scoring=args.scoring,
            random_state=args.seed, wait=args.wait, keep=args.keep,
            init_from=args.init_from, memory_on_disk=args.memory_on_disk,
            classes=None if args.classes is None else args.classes.split(","),
            allow_new_classes=args.allow_new_classes,
            forgetting_confidence=args.forgetting_confidence,
            accept_forgetting=args.accept_forgetting,
            progress=sys.stderr if not args.quiet and sys.stderr.isatty() else None,
        )
    except update.ForgettingRefused as exc:
        if not args.quiet:
            print(exc.result.summary())
        _write_update_report(exc.result, args.out)
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 3
    except TrainingDivergedError as exc:  # the month was rolled back; nothing written
        raise ValueError(f"{exc} {args.model!r} is unchanged.") from None
    except ValueError as exc:
        raise ValueError(_in_cli_terms(str(exc), args)) from None
    if not result.steps:  # an import alone, or every month applied before
        print(result.summary())
        return 0
    report = _write_update_report(result, args.out)
    lines = result.summary().splitlines()
    print("\n".join(lines[-1:] if args.quiet else lines))
    if report and not args.quiet:
        print(f"Report: {report}")
    return 0


#: Option of each estimator parameter ``update`` sets (the others are ``--<name>``).
_OPTION_OF = {"max_epochs": "--epochs"}


def _option(param):
    return _OPTION_OF.get(param, "--" + param.replace("_", "-"))


def _in_cli_terms(message, args):
    """An error of the estimator said with ``update``'s options instead of
    Python arguments (``month=...``, ``classes=[...]``, parameter names)."""
    import re

    if args.month is not None:
        month = "--month {}".format
    elif args.month_column is not None:
        month = ("month {} (from --month-column %s)" % args.month_column).format
    else:
        month = "month {}".format
    rules = (
        (r"Months so far are labelled like (.+?); pass month=\.\.\. to partial_fit_month\.",
         lambda m: f"The model's months are labelled like {m[1]}, so the new month needs a "
                   "label: give --month LABEL (or --month-column for a file of several "
                   "months)."),
        (r"month=(.+?) does not come after the last month trained, (.+?); months must "
         r"arrive in increasing order\.",
         lambda m: f"{month(m[1])} does not come after the model's last month, {m[2]}: "
                   "months are trained in increasing order (see sklearn-cf history)."),
        (r"month=(.+?) cannot be compared with the previous month (.+?); use labels of "
         r"one sortable type\.",
         lambda m: f"{month(m[1])} cannot be compared with the model's last month, {m[2]}: "
                   "give a month label of the same kind (a number, or a date such as "
                   "2024-09)."),
        (r"The base fit needs at least 2 classes, got one class: (.+?)\. If later months "
         r"bring other labels, pass classes=\[\.\.\.\] with all of them\.",
         lambda m: f"The first month's --target column holds a single class, {m[1]}; a new "
                   "model needs at least 2 classes in its first month"
                   + ("; declare every label with --classes." if hasattr(args, "classes")
                      else ".")),
        (r"the new-model options \(([^)]*)\)",
         lambda m: "the new-model options ("
                   + ", ".join(_option(p.strip()) for p in m[1].split(",")) + ")"),
    )
    for pattern, say in rules:
        message = re.sub(pattern, say, message)
    return message


def _history(args):
    from ._text import clip
    from .store import ModelStore

    if os.path.isfile(args.model):
        raise ValueError(f"--model {args.model!r} is a checkpoint file, not a model store: "
                         "it has no history.")
    if not ModelStore.is_store(args.model):
        raise ValueError(f"--model {args.model!r} is not a model store.")
    store = ModelStore(args.model)
    generations = store.generations()
    if not generations:
        print(f"{args.model}: no generation committed yet")
        return 0
    print(f"{'gen':>4}  {'committed (UTC)':<20}  {'kind':<13}  {'months':<24}  "
          f"{'scoring':<17}  {'last / mean':<13}  size")
    for gen in generations:
        kind = gen.kind if gen.restores is None else f"rollback to {gen.restores}"
        print(f"{gen.id:>4}  {gen.created.replace('T', ' ').rstrip('Z'):<20}  {kind:<13}  "
              f"{_months_text(gen.months, 24):<24}  {clip(gen.scoring or '-', 17):<17}  "
              f"{_scores_text(gen):<13}  {_size_text(gen.size)}"
              + ("  (current)" if gen is generations[-1] else ""))
    refusals = store.refusals()
    if refusals:
        print()
        print(f"refused updates ({len(refusals)}; kept in {os.path.join(args.model, 'refused')})")
        for record in refusals:
            for line in _refusal_lines(args.model, record, generations):
                print(line)
    return 0


def _refusal_lines(model, record, generations):
    """A refused update for ``history``: when, which months, the drop that
    refused it with its bounds and p-value, and whether it was applied since
    (else the command that applies it knowingly)."""
    import shlex

    from ._gate import p_text
    from ._text import clip
    from .update import refusal_state

    if "damaged" in record:
        return [f"  {record['id']}: damaged record ({record['damaged']})"]
    months = ", ".join(f"{m['month']} ({m['rows']} rows)" for m in record.get("months", []))
    head = (f"  {record.get('created', '').replace('T', ' ').rstrip('Z')}  month "
            f"{months} refused on generation {record.get('base_generation')}")
    lines = [clip(head, 100)]
    confidence = record.get("forgetting_confidence") or 0
    rule = f"> {record.get('max_forgetting'):g}" + (
        f" and p < {1 - confidence:.2g}" if confidence else "")
    for test in record.get("refused_by", [])[:3]:
        bounds = ("" if test.get("low") is None
                  else f" [{test['low']:.3f}, {test['high']:.3f}], p {p_text(test['p_adjusted'])}")
        lines.append(clip(f"    drop {test['drop']:.3f} on month {test['month']}{bounds} "
                           f"({rule})", 100))
    more = len(record.get("refused_by", [])) - 3
    if more > 0:
        lines.append(f"    and {more} more month{'s' if more != 1 else ''}")
    applied, accepted = refusal_state(record, generations)
    if applied is not None:
        lines.append(f"    applied in generation {applied}"
                     + (" (--accept-forgetting)" if accepted else ""))
        return lines
    run = record.get("run") or {}
    command = ["sklearn-cf", "update", "--model", model, "--data", run.get("data") or "DATA"]
    for option, key in (("--target", "target"), ("--month", "month"),
                        ("--month-column", "month_column")):
        if run.get(key) is not None:
            command += [option, str(run[key])]
    if run.get("holdout") not in (None, 0.2):
        command += ["--holdout", f"{run['holdout']:g}"]
    if run.get("seed") not in (None, 0):
        command += ["--seed", str(run["seed"])]
    command += ["--max-forgetting", f"{record.get('max_forgetting'):g}"]
    if record.get("forgetting_confidence") not in (None, 0.95):
        command += ["--forgetting-confidence", f"{record['forgetting_confidence']:g}"]
    command.append("--accept-forgetting")
    lines.append("    not applied; to apply it knowingly: " + shlex.join(command))
    return lines


def _load_model(path, device=None):
    """``sklearn_cf.load`` of --model, with a missing path said in its terms."""
    from .store import load

    if not os.path.exists(path):
        raise ValueError(f"--model {path!r}: no such model store or checkpoint file.")
    return load(path, device=device)


def _predict(args):
    from .serving import predict_file

    if args.chunk_rows < 1:
        raise ValueError(f"--chunk-rows must be >= 1, got {args.chunk_rows}.")
    if not os.path.isfile(args.data):  # before loading the model
        raise ValueError(f"--data {args.data!r}: no such file.")
    model = _load_model(args.model, args.device)
    n_rows = predict_file(model, args.data, args.out, target=args.target,
                          chunk_rows=args.chunk_rows,
                          progress=not args.quiet and sys.stderr.isatty())
    print(f"Wrote {n_rows} rows to {args.out}")
    return 0


def _export(args):
    from .serving import SCHEMA_SUFFIX, export_onnx

    model = _load_model(args.model)
    difference = export_onnx(model, args.out)
    print(f"Wrote {args.out} and {args.out + SCHEMA_SUFFIX} (checked against predict_proba "
          f"with onnxruntime: largest difference {difference:.1e})")
    return 0


def _scores_text(gen):
    """The held-out score on the newest month, and the mean over months."""
    import math

    values = [gen.scores.get(str(m)) for m in gen.months]
    defined = [v for v in values if v is not None and not math.isnan(v)]
    if not defined:
        return "-"
    last = values[-1]
    last = "-" if last is None or math.isnan(last) else f"{last:.3f}"
    return f"{last} / {sum(defined) / len(defined):.3f}"


def _size_text(size):
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"  # pragma: no cover


def _months_text(months, width=40):
    """The months, or when too long for ``width`` the newest ones (and how many)."""
    from ._text import newest

    return newest(months, width)


def _write_update_report(result, out):
    if out is None:
        return None
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "update.md")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(result.to_markdown())
    return path


def _join_spec_params(items):
    """Re-join ``--strategies`` items split inside a spec's parameter list.

    ``"ewc:fisher=hessian,reg_lambda=100,naive"`` splits on commas into
    ``["ewc:fisher=hessian", "reg_lambda=100", "naive"]``; an item with ``=``
    but no ``:`` continues the previous spec.
    """
    specs = []
    for item in items:
        item = item.strip()
        if "=" in item and ":" not in item and specs:
            specs[-1] = f"{specs[-1]},{item}"
        else:
            specs.append(item)
    return specs


def _one_line(exc):
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv=None):
    """Run ``sklearn-cf``; return the exit status.

    Parameters
    ----------
    argv : list of str or None, default=None
        Arguments without the program name; None reads ``sys.argv[1:]``.

    Returns
    -------
    int
        0 on success; 2 for bad arguments or data (after printing one line
        ``sklearn-cf: error: ...`` to stderr); 3 when ``update`` refuses a
        model that forgets more than ``--max-forgetting`` (beyond the
        held-out rows' noise; the refusal is recorded in the store), or when
        ``compare --save-best`` has no recommended strategy to save (none
        beats the majority-class baseline); 4 when another process is
        writing the model store (its lock is held longer than ``--wait``); 130 on Ctrl-C
        (``KeyboardInterrupt``), after printing ``sklearn-cf: interrupted``
        to stderr and without writing a report.

    Examples
    --------
    >>> import tempfile
    >>> from sklearn_cf.cli import main
    >>> main(["compare", "--strategies", "naiv", "--out", tempfile.mkdtemp()])
    2
    """
    from .exceptions import StoreLockedError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse's own errors and --help
        return exc.code if isinstance(exc.code, int) else 2
    try:
        if args.command == "compare":
            return _compare(args)
        if args.command == "update":
            return _update(args)
        if args.command == "history":
            return _history(args)
        if args.command == "predict":
            return _predict(args)
        if args.command == "export":
            return _export(args)
    except StoreLockedError as exc:
        print(f"{PROG}: {_one_line(exc)}", file=sys.stderr)
        return 4
    except KeyboardInterrupt:
        # The report is written only after every strategy has trained, so an
        # interrupt leaves none behind (and never one of a half-trained model).
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, ImportError, OSError) as exc:
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    return 2  # pragma: no cover - argparse requires a command


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
