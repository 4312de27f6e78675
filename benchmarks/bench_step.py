"""Per optimizer step: a hand-written loop vs ``naive`` vs ``replay+ewc``.

Where a step's arithmetic is small (a small network, or any network on a
GPU) the estimator's own per-step work decides its speed. This benchmark
measures the cost of one training step of:

* ``plain``: a hand-written PyTorch loop, the same :class:`~sklearn_cf._mlp.MLP`
  (ReLU, no dropout), Adam at the same ``lr``, cross-entropy, the month's
  rows as CPU tensors shuffled once per epoch (one gather per epoch) and
  sliced into batches;
* ``naive``: one fine-tune month of ``ContinualClassifier(strategy="naive")``
  (``partial_fit_month`` after a base month);
* ``replay+ewc``: the same with ``strategy="replay+ewc"`` after two
  earlier months (a replay memory and an EWC anchor and Fisher exist).

How a step is counted. A month has fixed costs (input checks, the data
plan, the snapshot, the strategy's ``end_month``: memory update, Fisher)
that are no part of a step. Each candidate therefore trains a month of
``n`` rows and one of ``2 n`` rows (same epochs), back to back; the step's time is the
difference of the two times divided by the difference of the optimizer
steps taken (counted by an optimizer step hook in an untimed run), the
median over the rounds (robust to bursts of load; the difference of the
best times is reported too). The
strategy's ``end_month`` is timed and subtracted from each month too,
since EWC's Fisher grows with the month's rows. Every candidate is timed
the same way, alternated (A, B, C, B, C, A, ...) in one process, ``N``
rounds.

Reported: microseconds per step, ``naive``'s throughput relative to the
plain loop's (``plain_us / naive_us``; target >= 0.9 with the small network
at batch 256) and ``replay+ewc``'s step time relative to ``naive``'s
(target <= 1.15). A replay step trains the same batch size as a naive one;
a replay month has more steps (its epochs include past rows).

Run alone::

    python benchmarks/bench_step.py                    # MLP 8-16-2, batch 256
    python benchmarks/bench_step.py --large            # + MLP 100-256-256, batch 256/1024
    python benchmarks/bench_step.py --repeats 9 --out step.json

or through ``benchmarks/run.py --only step``. Not part of the test suite.
"""

import argparse
import copy
import os
import sys
import time

import numpy as np
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from _common import make_rows
from _timing import alternate, dumps, machine_info, print_table, sync

NAME = "step"
TARGET_PLAIN = 0.9       # naive throughput / plain loop throughput, at least
TARGET_REPLAY_EWC = 1.15  # replay+ewc step / naive step, at most

#: (label, features, hidden units, batch sizes)
SMALL = ("small", 8, (16,), (256,))
LARGE = ("large", 100, (256, 256), (256, 1024))


class _StepCounter:
    """Counts optimizer steps of every torch optimizer while active."""

    def __enter__(self):
        self.steps = 0

        def hook(optimizer, args, kwargs):
            self.steps += 1

        self._handle = register_optimizer_step_post_hook(hook)
        return self

    def __exit__(self, *exc):
        self._handle.remove()


def _plain_month(d, hidden, batch_size, epochs, lr, device):
    """``fn(X, y)``: ``epochs`` epochs of the hand-written loop on a new
    MLP; returns its seconds (the model and optimizer are built untimed)."""
    from sklearn_cf._mlp import MLP

    crit = torch.nn.CrossEntropyLoss()

    def fn(X_t, y_t, seed=0):
        model = MLP(d, 2, hidden).reset_parameters(torch.Generator().manual_seed(seed))
        model = model.to(device).train()
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        gen = torch.Generator().manual_seed(seed)
        n = len(y_t)
        sync(device)
        cpu = time.process_time()
        start = time.perf_counter()
        for _ in range(epochs):
            perm = torch.randperm(n, generator=gen)
            X_e = X_t[perm].to(device)  # pre-shuffled once per epoch
            y_e = y_t[perm].to(device)
            for s in range(0, n, batch_size):
                opt.zero_grad(set_to_none=True)
                loss = crit(model(X_e[s : s + batch_size]), y_e[s : s + batch_size])
                loss.backward()
                opt.step()
        sync(device)
        return {"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu}

    return fn


def _prepared(strategy, d, hidden, batch_size, epochs, lr, device, n_history):
    """A classifier fitted on earlier months, ready for a fine-tune month."""
    from sklearn_cf import ContinualClassifier

    kwargs = {}
    if "ewc" in strategy:
        # A fixed Fisher sample: the end of month costs the same whatever
        # the month's length (it is subtracted anyway).
        kwargs["strategy__fisher_rows"] = 1024
    clf = ContinualClassifier(
        strategy=strategy, hidden_units=hidden, max_epochs=1, finetune_epochs=epochs,
        batch_size=batch_size, lr=lr, random_state=0, device=device, n_threads=1,
        **kwargs,
    )
    months = [make_rows(n_history, d, seed=10 + m, shift=float(m)) for m in range(2)]
    (X0, y0), *rest = months
    clf.fit(X0, y0)
    for X, y in rest:
        clf.partial_fit_month(X, y)
    return clf


def per_parameter_pull(net, anchors, reg_lambda, weights=None):
    """The closed-form pull as it was before issue 23 (``--old-pull``): by
    name, one parameter at a time, three tensor calls each."""
    with torch.no_grad():
        for name, p in net.module_.named_parameters():
            if name not in anchors:
                continue
            diff = p - anchors[name]
            if weights is not None:
                diff.mul_(weights[name])
            if p.grad is None:
                p.grad = diff.mul_(reg_lambda)
            else:
                p.grad.add_(diff, alpha=reg_lambda)


def _use_old_pull(clf):
    """Route the classifier's EWC part through :func:`per_parameter_pull`."""
    import types

    def penalty_gradient(self, net):
        if self.closed_form_penalty and self.anchors is not None and self.reg_lambda != 0:
            per_parameter_pull(net, self.anchors, self.reg_lambda, self.fisher_diag)

    for part in clf.strategy_.parts:
        if hasattr(part, "fisher_diag"):
            part.penalty_gradient = types.MethodType(penalty_gradient, part)
    return clf


def _month_runner(base, device, patch=None):
    """``fn(X, y, tensors)``: one ``partial_fit_month`` of a deep copy of ``base``
    (then ``patch``-ed); returns its wall and process CPU seconds without
    the strategy's end_month."""

    def fn(X, y, tensors=None):  # tensors: the plain loop's, unused here
        clf = copy.deepcopy(base)
        if patch is not None:
            patch(clf)
        strategy = clf.strategy_
        original = strategy.end_month
        spent = [0.0, 0.0]

        def end_month(*args, **kwargs):
            sync(device)
            c0, t0 = time.process_time(), time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                sync(device)
                spent[0] += time.perf_counter() - t0
                spent[1] += time.process_time() - c0

        strategy.end_month = end_month
        sync(device)
        cpu = time.process_time()
        start = time.perf_counter()
        clf.partial_fit_month(X, y)
        sync(device)
        return {"seconds": time.perf_counter() - start - spent[0],
                "cpu_seconds": time.process_time() - cpu - spent[1]}

    return fn


def hook_microseconds(clf, batch_size, repeats=7, number=2000):
    """The strategy's own work at a step, alone: ``penalty_gradient`` (after
    the backward pass), ``strategy_terms`` (in the loss) and the whole
    ``get_loss`` against the plain loop's ``criterion`` call, on a prepared
    classifier whose weights moved off their anchors; the best of
    ``repeats`` timings of ``number`` calls (short calls: the best filters
    out other processes' bursts). Microseconds per call."""
    import timeit

    module = clf.module_
    d = module.layers[0].in_features
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(batch_size, d, generator=gen).to(clf.device)
    y = torch.zeros(batch_size, dtype=torch.long, device=clf.device)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=gen).to(p.device))
    for p in module.parameters():
        p.grad = torch.zeros_like(p)
    y_pred = module(X).detach()
    strategy = clf.strategy_
    criterion = torch.nn.CrossEntropyLoss()
    calls = {"penalty_gradient": lambda: strategy.penalty_gradient(clf),
             "strategy_terms": lambda: clf.strategy_terms(X, y_pred, y),
             "get_loss": lambda: clf.get_loss(y_pred, y, X=X, training=True),
             "criterion": lambda: criterion(y_pred, y)}
    return {name: 1e6 * min(timeit.repeat(fn, number=number, repeat=repeats)) / number
            for name, fn in calls.items()}


def measure_case(d, hidden, batch_size, n, epochs=1, repeats=5, lr=1e-3, device="cpu",
                 strategies=("naive", "replay+ewc"), old_pull=False, log=None):
    """Per-step seconds of the plain loop and of each strategy at one size.

    Returns a dict: per candidate, ``steps`` at ``n`` and ``2 n`` rows and,
    per clock (wall, process CPU), the runs and ``us_per_step`` (the
    difference method, median over rounds).
    """
    X1, y1 = make_rows(n, d, seed=20, shift=2.0)
    X2, y2 = make_rows(2 * n, d, seed=21, shift=2.0)
    T1 = (torch.from_numpy(X1), torch.from_numpy(y1))
    T2 = (torch.from_numpy(X2), torch.from_numpy(y2))
    plain = _plain_month(d, hidden, batch_size, epochs, lr, device)
    runners = {"plain": lambda X, y, tensors: plain(*tensors)}
    hooks = {}
    for strategy in strategies:
        base = _prepared(strategy, d, hidden, batch_size, epochs, lr, device, n_history=n)
        hooks[strategy] = hook_microseconds(copy.deepcopy(base), batch_size)
        runners[strategy] = _month_runner(base, device)
        if old_pull and strategy == "replay+ewc":
            runners["replay+ewc old pull"] = _month_runner(base, device, patch=_use_old_pull)

    steps = {}
    for name, fn in runners.items():  # untimed: warm-up and step counts
        counts = []
        for X, y, t in ((X1, y1, T1), (X2, y2, T2)):
            with _StepCounter() as counter:
                fn(X, y, t)
            counts.append(counter.steps)
        steps[name] = counts

    def pair(fn):
        """The n-row month then the 2n-row one, back to back (same load)."""

        def both():
            first, second = fn(X1, y1, T1), fn(X2, y2, T2)
            return {"seconds": second["seconds"] - first["seconds"],
                    "cpu_seconds": second["cpu_seconds"] - first["cpu_seconds"],
                    "first": first, "second": second}

        return both

    records = alternate({name: pair(fn) for name, fn in runners.items()}, repeats, log=log)

    out = {"paired": {}}
    # Ratios within each round (the candidates ran back to back, under the
    # same load), then their median and quartiles over the rounds: steadier
    # than a ratio of medians when the load moves between rounds.
    for clock, key in (("wall", "seconds"), ("cpu", "cpu_seconds")):
        def per_step(name, k):
            s1, s2 = steps[name]
            return records[name][k][key] / (s2 - s1)

        pairs = {}
        for num, den, label in (("plain", "naive", "naive_vs_plain_throughput"),
                                ("replay+ewc", "naive", "replay_ewc_vs_naive_step")):
            if num in records and den in records:
                values = [per_step(num, k) / per_step(den, k) for k in range(repeats)]
                q1, med, q3 = np.percentile(values, [25, 50, 75])
                pairs[label] = {"rounds": values, "median": float(med),
                                "quartiles": [float(q1), float(q3)]}
        out["paired"][clock] = pairs
    for name in runners:
        s1, s2 = steps[name]
        info = {"steps": [s1, s2]}
        for clock, key in (("wall", "seconds"), ("cpu", "cpu_seconds")):
            runs1 = [r["first"][key] for r in records[name]]
            runs2 = [r["second"][key] for r in records[name]]
            diffs = [r[key] for r in records[name]]
            best1, best2 = min(runs1), min(runs2)
            info[clock] = {
                "runs": [runs1, runs2],
                # Median over rounds of (2n-row month - n-row month, run
                # back to back) / extra steps: robust to bursts of load.
                "us_per_step": 1e6 * float(np.median(diffs)) / (s2 - s1),
                "us_per_step_best_diff": 1e6 * (best2 - best1) / (s2 - s1),
                # The whole (longer) month over its steps, fixed costs included.
                "us_per_step_with_fixed": 1e6 * best2 / s2,
            }
        out[name] = info
        if name in hooks:
            info["hooks_us"] = hooks[name]
    return out


def run(quick=False, device="cpu", log=print, threads=None, large=None, repeats=None,
        n_steps=None, old_pull=False):
    """Run the small-network case (and, unless ``quick`` or ``large=False``,
    the large-network ones); print the table; return the numbers."""
    if threads is None:
        torch.set_num_threads(1)
    repeats = repeats or (5 if quick else 7)
    large = (not quick) if large is None else large
    cases = [SMALL] + ([LARGE] if large else [])
    results = {"repeats": repeats, "threads": torch.get_num_threads(), "device": device,
               "cases": {}}
    table, hook_table, paired_table = [], [], []
    for label, d, hidden, batch_sizes in cases:
        if device.startswith("cuda") and label == "large":
            batch_sizes = (1024, 4096)
        for batch_size in batch_sizes:
            steps = n_steps or (100 if quick else 200)
            if label == "large":
                steps = max(20, steps // (4 if batch_size <= 256 else 8))
            n = steps * batch_size
            if log:
                log(f"[step] {label} MLP {d}-{'-'.join(map(str, hidden))}-2, batch "
                    f"{batch_size}: months of {n} and {2 * n} rows, {repeats} alternated repeats")
            case = measure_case(d, hidden, batch_size, n, repeats=repeats, device=device,
                                old_pull=old_pull, log=None)
            key = f"{label}-{batch_size}"
            entry = {"features": d, "hidden": list(hidden), "batch_size": batch_size,
                     "rows": n, **case}
            paired = case.pop("paired")
            entry.pop("paired", None)
            entry["paired"] = paired
            for clock in ("wall", "cpu"):
                us = {name: case[name][clock]["us_per_step"] for name in case}
                ratios = {
                    "naive_vs_plain_throughput": us["plain"] / us["naive"],
                    "replay_ewc_vs_naive_step": us["replay+ewc"] / us["naive"],
                }
                pair = paired[clock]
                paired_table.append([
                    f"{d}-{'-'.join(map(str, hidden))}-2", batch_size, clock,
                    *[f"{pair[k]['median']:.3f} [{pair[k]['quartiles'][0]:.3f}, "
                      f"{pair[k]['quartiles'][1]:.3f}]"
                      for k in ("naive_vs_plain_throughput", "replay_ewc_vs_naive_step")],
                    f"{sum(v >= TARGET_PLAIN for v in pair['naive_vs_plain_throughput']['rounds'])}"
                    f"/{repeats}",
                    f"{sum(v <= TARGET_REPLAY_EWC for v in pair['replay_ewc_vs_naive_step']['rounds'])}"
                    f"/{repeats}",
                ])
                old = us.get("replay+ewc old pull")
                if old is not None:
                    ratios["replay_ewc_old_pull_vs_naive_step"] = old / us["naive"]
                entry[f"ratios_{clock}"] = ratios
                table.append([
                    f"{d}-{'-'.join(map(str, hidden))}-2", batch_size, clock, us["plain"],
                    us["naive"], us["replay+ewc"], ratios["naive_vs_plain_throughput"],
                    ratios["replay_ewc_vs_naive_step"],
                    case["naive"][clock]["us_per_step_with_fixed"],
                    case["replay+ewc"][clock]["us_per_step_with_fixed"],
                    "-" if old is None else old,
                    ratios.get("replay_ewc_old_pull_vs_naive_step", "-"),
                ])
            results["cases"][key] = entry
            for name in ("naive", "replay+ewc"):
                h = case[name]["hooks_us"]
                hook_table.append([f"{d}-{'-'.join(map(str, hidden))}-2", batch_size, name,
                                   h["penalty_gradient"], h["strategy_terms"], h["get_loss"],
                                   h["criterion"]])
    print_table(
        f"per optimizer step ({torch.get_num_threads()} thread(s), device={device}, "
        f"{repeats} alternated rounds)",
        ["MLP", "batch", "clock", "plain us", "naive us", "replay+ewc us",
         f"naive/plain thr (>= {TARGET_PLAIN})", f"r+e/naive step (<= {TARGET_REPLAY_EWC})",
         "naive us incl. fixed", "r+e us incl. fixed", "r+e old pull us",
         "r+e old pull/naive"],
        table,
        note="us = median over rounds of (time of a 2n-row month - time of an n-row month, "
             "back to back) / (steps(2n) - steps(n)); the strategies' end_month (memory, "
             "Fisher) is left out of both; "
             "'incl. fixed' = the 2n-row month's time over its steps. clock: wall time, or the "
             "process's CPU time (steadier on a shared machine with one thread).",
    )
    print_table(
        f"paired ratios: within each of the {repeats} rounds, median [quartiles]",
        ["MLP", "batch", "clock", f"naive/plain thr (>= {TARGET_PLAIN})",
         f"r+e/naive step (<= {TARGET_REPLAY_EWC})", "rounds naive met", "rounds r+e met"],
        paired_table,
        note="each round's ratio uses that round's per-step differences (candidates run back "
             "to back); the quartiles show the spread over rounds.",
    )
    print_table(
        "the strategy's per-step calls alone (us per call, best of 7 x 2000 calls)",
        ["MLP", "batch", "strategy", "penalty_gradient", "strategy_terms", "get_loss",
         "plain criterion"],
        hook_table,
        note="get_loss includes strategy_terms and the criterion; the plain loop calls the "
             "criterion alone.",
    )
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--large", action="store_true",
                        help="also the MLP 100-256-256 at batch 256 and 1024")
    parser.add_argument("--repeats", type=int, default=7, help="alternated rounds (median of the paired differences)")
    parser.add_argument("--steps", type=int, default=200,
                        help="optimizer steps of the shorter plain month (small network)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--old-pull", action="store_true",
                        help="also replay+ewc with the per-parameter pull of before issue 23")
    parser.add_argument("--out", default=None, help="write the raw numbers to this JSON file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    m = machine_info(args.device)
    print(f"# {m['cpu']}, {m['logical_cpus']} logical CPUs, torch {m['torch']} "
          f"({torch.get_num_threads()} thread(s)), load average at start "
          f"{tuple(round(x, 2) for x in m['loadavg_at_start'])}")
    results = run(device=args.device, threads=args.threads, large=args.large,
                  repeats=args.repeats, n_steps=args.steps, old_pull=args.old_pull,
                  log=lambda msg: print(msg, file=sys.stderr, flush=True))
    results["machine"] = m
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(dumps(results))
        print(f"# raw numbers written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
