"""The ``sklearn-cf`` command line: ``sklearn-cf compare`` (or ``python -m sklearn_cf``).

A thin wrapper around :mod:`sklearn_cf.compare` and :mod:`sklearn_cf.report`:
it parses options, checks that the report folder can be written, loads the
stream, compares the strategies, prints the table and the verdict, and writes
the report with its figures. Errors in the arguments or the data print one
line, ``sklearn-cf: error: ...``, to stderr and exit with status 2, before
anything is trained. Ctrl-C prints ``sklearn-cf: interrupted`` and exits with
status 130, writing no report. See docs/cli.md.
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
                          "naive,ewc:fisher=hessian,reg_lambda=1000,joint)")
    run.add_argument("--scoring", default="accuracy",
                     help="any scikit-learn scorer name, or tpr_at_fpr:FPR")
    run.add_argument("--n-splits", type=int, default=1, metavar="N",
                     help="SequentialSplit repetitions (20%% of every month held out)")
    run.add_argument("--seed", type=int, default=0, help="seed of data, splits and networks")
    net = cmp.add_argument_group("network")
    net.add_argument("--epochs", type=int, default=10, help="epochs per month")
    net.add_argument("--hidden-units", default="256x256", metavar="WxW",
                     help="hidden layer widths of the MLP, joined by x")
    net.add_argument("--reg-lambda", type=float, default=None,
                     help="strength of the l2/ewc pull for every strategy; default: "
                          + ", ".join(f"{k} {v:g}" for k, v in DEFAULT_REG_LAMBDA.items()))
    net.add_argument("--rehearsal-ratio", type=float, default=None,
                     help="share of past rows in each replay epoch (estimator default 0.5)")
    net.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    net.add_argument("--threads", type=int, default=1,
                     help="torch CPU threads (1 is fastest for small MLPs on a busy machine)")
    out = cmp.add_argument_group("output")
    out.add_argument("--out", default="sklearn_cf_report", metavar="DIR",
                     help="folder for the report and its figures")
    out.add_argument("--format", default="md", choices=("md", "html"), help="report format")
    out.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _command_line(args):
    """The full command that reproduces this run, every option explicit."""
    parts = [PROG, "compare", "--data", args.data]
    for flag, value in (
        ("--month-column", args.month_column), ("--target", args.target),
        ("--cache-dir", args.cache_dir),
        ("--months", args.months), ("--samples-per-month", args.samples_per_month),
        ("--scale", args.scale),
        ("--strategies", args.strategies), ("--scoring", args.scoring),
        ("--n-splits", args.n_splits), ("--seed", args.seed), ("--epochs", args.epochs),
        ("--hidden-units", args.hidden_units), ("--reg-lambda", args.reg_lambda),
        ("--rehearsal-ratio", args.rehearsal_ratio), ("--device", args.device),
        ("--threads", args.threads), ("--out", args.out), ("--format", args.format),
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
    from .compare import load_stream
    from .datasets._files import ReadWholeWarning
    from .datasets._table import MonthOrderWarning

    notes = (MonthOrderWarning, ReadWholeWarning)
    with warnings.catch_warnings(record=True) as caught:
        for category in notes:
            warnings.simplefilter("always", category)
        stream = load_stream(
            args.data, n_months=args.months, samples_per_month=args.samples_per_month,
            month_column=args.month_column, target=args.target, random_state=args.seed,
            cache_dir=args.cache_dir, progress=not args.quiet,
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

    from .compare import (
        _parse_hidden_units, check_comparison, compare_strategies, resolve_scale,
    )
    from .model_selection import SequentialSplit
    from .report import write_report

    if args.n_splits < 1:
        raise ValueError(f"--n-splits must be >= 1, got {args.n_splits}.")
    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}.")
    if args.epochs < 1:
        raise ValueError(f"--epochs must be >= 1, got {args.epochs}.")
    _check_out(args.out)
    strategies = [s for s in args.strategies.split(",") if s.strip()]
    strategies = _join_spec_params(strategies)
    params = {
        "max_epochs": args.epochs,
        "hidden_units": _parse_hidden_units(args.hidden_units, "--hidden-units"),
        "device": args.device,
    }
    if args.reg_lambda is not None:
        params["reg_lambda"] = args.reg_lambda
    if args.rehearsal_ratio is not None:
        params["rehearsal_ratio"] = args.rehearsal_ratio
    # Everything that can be checked without data, before loading any.
    check_comparison(strategies, scoring=args.scoring, estimator_params=params,
                     random_state=args.seed)

    torch.set_num_threads(args.threads)
    # Raw features: compare_strategies scales each split with its own training
    # rows, so that the held-out rows of the first month do not leak into it.
    X, y, months = _load_stream(args)
    start = time.perf_counter()
    comparison = compare_strategies(
        X, y, months, strategies,
        cv=SequentialSplit(n_splits=args.n_splits, test_size=0.2, random_state=args.seed),
        scoring=args.scoring, scale=resolve_scale(args.data, args.scale),
        estimator_params=params, progress=not args.quiet, random_state=args.seed,
    )
    comparison.settings.update(
        data=args.data, torch_threads=args.threads,
        elapsed_seconds=round(time.perf_counter() - start, 1),
    )
    command = _command_line(args)
    path = write_report(comparison, args.out, fmt=args.format, command=command)
    print(comparison.to_string())
    print()
    print(comparison.verdict())
    print()
    print(f"Report: {path} ({comparison.settings['elapsed_seconds']:.0f} s)")
    return 0


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
        ``sklearn-cf: error: ...`` to stderr); 130 on Ctrl-C
        (``KeyboardInterrupt``), after printing ``sklearn-cf: interrupted``
        to stderr and without writing a report.

    Examples
    --------
    >>> import tempfile
    >>> from sklearn_cf.cli import main
    >>> main(["compare", "--strategies", "naiv", "--out", tempfile.mkdtemp()])
    2
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse's own errors and --help
        return exc.code if isinstance(exc.code, int) else 2
    try:
        if args.command == "compare":
            return _compare(args)
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
