"""Issue 15.2: replay with a fixed ``epoch_size`` costs the same every month,
however many past months it keeps.

1. End to end: 12 months of ``n`` rows (30k; 6k with ``--quick``) x 200
   features; replay with ``epoch_size=n``, ``memory_size=None`` (every past
   row kept), 1 epoch a month, batch 1024; ``class_weight="balanced"``
   (which reads the plan's labels once more). Two classifiers train the
   stream month by month in lockstep, alternated (the order rotated every
   month): the package as it is and ``_before_issue15.OldDataClassifier``
   with ``OldReplay`` (the data path before issue 15). Reported: seconds per month (median
   over rounds), month 12 / month 2 and month 11 / month 2 for each, and
   old / new over the months with 10 or more past months in memory.
2. The month's bookkeeping alone, against the rows kept: draw the epoch
   and read its labels twice (every month); read the labels and weights of
   every global batch (what a sharded weighted loss does at each step); for
   a memory of 1, 11 and 110 months of ``n`` rows. The features are a stride-0 view (no
   memory): only the bookkeeping is timed, not the batches (bench_gather).
   The new month has sample weights, memory rows have none.
"""

import statistics
import time

import numpy as np
import torch

from _before_issue15 import OldDataClassifier, OldReplay
from _common import BenchClassifier, make_months
from _timing import alternate, print_table, summary, sync
from sklearn_cf.strategies import AllRowsMemory, Replay

NAME = "history"
N_FEATURES = 200


def _end_to_end(n, rounds, device, log):
    n_months = 12
    X, y, months = make_months(n_months, n, N_FEATURES)
    stream = [(X[months == m], y[months == m]) for m in range(n_months)]
    params = dict(max_epochs=1, batch_size=1024, class_weight="balanced", random_state=0,
                  device=device, classes=np.unique(y))
    # replay with epoch_size=n, memory_size=None, rehearsal_ratio=0.5
    classes = {"new": (BenchClassifier, Replay), "old": (OldDataClassifier, OldReplay)}
    seconds = {name: [] for name in classes}
    turn = 0
    for r in range(rounds):
        clfs = {name: cls(strategy=replay(rehearsal_ratio=0.5, epoch_size=n, memory_size=None),
                          **params)
                for name, (cls, replay) in classes.items()}
        for name in classes:
            seconds[name].append([])
        for Xm, ym in stream:
            names = list(classes)[turn % 2:] + list(classes)[:turn % 2]
            turn += 1
            for name in names:
                sync(device)
                start = time.perf_counter()
                clfs[name].partial_fit_month(Xm, ym)
                sync(device)
                seconds[name][-1].append(time.perf_counter() - start)
        log(f"[history] round {r + 1}/{rounds}: " + ", ".join(
            f"{name} {sum(s[-1]):.1f} s" for name, s in seconds.items()))
    per_month = {name: np.median(np.array(s), axis=0) for name, s in seconds.items()}
    S = {name: np.array(s) for name, s in seconds.items()}
    out = {"rows_per_month": n, "months": n_months, "rounds": rounds,
           "seconds": seconds, "median_per_month": {k: v.tolist() for k, v in per_month.items()}}
    rows = []
    for name in classes:
        m = per_month[name]
        out[f"{name}_month12_over_month2"] = float(m[11] / m[1])
        out[f"{name}_month11_over_month2"] = float(m[10] / m[1])
        # Per round, then the median: the months of one round ran side by side.
        out[f"{name}_month12_over_month2_rounds"] = (S[name][:, 11] / S[name][:, 1]).tolist()
        rows.append([name, m[1], m[10], m[11], m[10] / m[1], m[11] / m[1],
                     float(np.median(m[1:4])), float(np.median(m[9:12]))])
    late = S["old"][:, 10:] / S["new"][:, 10:]
    out["old_over_new_months_11_12"] = float(np.median(late))
    out["old_over_new_months_11_12_best"] = float(S["old"][:, 10:].min() / S["new"][:, 10:].min())
    print_table(
        f"1. replay epoch_size={n:,}, memory_size=None, 12 months x {n:,} rows x "
        f"{N_FEATURES}, batch 1024, class_weight='balanced' ({rounds} rounds, lockstep)",
        ["data path", "month 2 s", "month 11 s", "month 12 s", "m11 / m2", "m12 / m2",
         "months 2-4 s", "months 10-12 s"],
        rows,
        note=f"old / new over months 11-12 (10-11 past months kept): median "
             f"{out['old_over_new_months_11_12']:.3f}, "
             f"best {out['old_over_new_months_11_12_best']:.3f}",
    )
    return out


class _Net:
    rng_ = None


def _replay_with_memory(n, n_months, cls=Replay):
    """Replay (``cls``) whose memory holds ``n_months`` months of ``n`` rows;
    features are a stride-0 view, labels are real (the same for every cls)."""
    strategy = cls(rehearsal_ratio=0.5, epoch_size=n)
    strategy.memory = AllRowsMemory()
    X = torch.zeros(1, N_FEATURES).expand(n, N_FEATURES)
    rng = np.random.default_rng(0)
    for _ in range(n_months):
        strategy.memory.chunks.append((X, torch.from_numpy(rng.integers(0, 2, n))))
        strategy.memory.chunk_weights.append(None)
    return strategy


def _plan(strategy, X_new, y_new, w_new):
    """The month's plan: draw the epoch's rows, read their labels twice
    (fit_loop's y, and class_weight="balanced")."""
    def run():
        make()

    def make():
        rng = np.random.default_rng(1)
        data = strategy.month_data(_Net, X_new, y_new, sample_weight=w_new)
        data.resample(rng)
        data.plan_labels()
        data.plan_labels()
        return data

    run.make = make
    return run


def _per_batch(data, batch_size):
    """What a sharded weighted loss reads at every step: the labels and
    weights of the global batch."""
    plan = data.plan[torch.randperm(len(data.plan), generator=torch.Generator().manual_seed(0))]

    def run():
        for start in range(0, len(plan), batch_size):
            data.labels_and_weights(plan[start:start + batch_size])
    return run


def _bookkeeping_table(n, repeats, log):
    X_new = torch.zeros(1, N_FEATURES).expand(n, N_FEATURES)
    y_new = torch.from_numpy(np.random.default_rng(2).integers(0, 2, n))
    w_new = torch.ones(n)
    out, rows = {}, []
    for n_months in (1, 11, 110):
        plans = {"old": _plan(_replay_with_memory(n, n_months, OldReplay), X_new, y_new, w_new),
                 "new": _plan(_replay_with_memory(n, n_months), X_new, y_new, w_new)}
        records = alternate({f"{name} plan": plan for name, plan in plans.items()} | {
            f"{name} batches": _per_batch(plan.make(), 1024) for name, plan in plans.items()
        }, repeats, warmup=1)
        res = {name: summary(recs) for name, recs in records.items()}
        out[n_months] = res
        rows.append([n_months, n * n_months] + [
            1e3 * res[f"{name} {part}"][stat] for part in ("plan", "batches")
            for name in ("old", "new") for stat in ("median", "best")])
        log(f"[history] bookkeeping, {n_months} months kept: plan old "
            f"{1e3 * res['old plan']['median']:.1f} ms, "
            f"new {1e3 * res['new plan']['median']:.1f} ms")
    print_table(
        f"2. a month's bookkeeping against the rows kept (no features read): the plan "
        f"(draw {n:,} rows, read their labels twice), and the labels and weights of each "
        f"of its {-(-n // 1024)} batches (a sharded weighted loss, every step)",
        ["months kept", "rows kept", "plan old ms (med)", "(best)", "plan new ms (med)",
         "(best)", "batches old ms (med)", "(best)", "batches new ms (med)", "(best)"],
        rows,
    )
    return out


def run(quick=False, device="cpu", log=print):
    n = 6_000 if quick else 30_000
    results = {"end_to_end": _end_to_end(n, 2 if quick else 3, device, log)}
    results["bookkeeping"] = _bookkeeping_table(n, 5 if quick else 11, log)
    return results


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", choices=["end_to_end", "bookkeeping"], default=None)
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    n = 6_000 if args.quick else 30_000
    if args.only != "bookkeeping":
        _end_to_end(n, 2 if args.quick else 3, "cpu", print)
    if args.only != "end_to_end":
        _bookkeeping_table(n, 5 if args.quick else 11, print)
