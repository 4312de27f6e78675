"""Issue 15.1: one copy per row when a batch mixes several sources.

A replay month with every past row kept (``memory_size=None``): the new
month and 11 past months in memory, ``n`` rows each (30k; 6k with
``--quick``), 200 float32 features; an epoch holds the new month's rows and
as many past rows (``rehearsal_ratio=0.5``). Only the batches are drawn (no
training): one epoch from the package's ``EpochIterator`` and from the one
before issue 15 (``_before_issue15.OldEpochIterator``: ``X[idx]`` into a
temporary, then a scatter into the chunk), alternated. Reported per batch
size: milliseconds per epoch (median and best) and old / new (median of the
per-round ratios).

The second table shows where copying a source's rows straight into each
batch pays: the same memory split into more months (so fewer rows of each
month per batch), one epoch with every source copied per batch
(``min_run_rows=1``) and with every source gathered for the chunk and then
put in place (``min_run_rows`` infinite). ``EpochIterator.min_run_rows``
picks between them per source and chunk.
"""

import statistics

import numpy as np
import torch

from _before_issue15 import OldEpochIterator
from _timing import alternate, print_table, summary
from sklearn_cf._data import EpochIterator, MonthData

NAME = "gather"
N_FEATURES = 200


def _replay_month(n_new, past_sizes, seed=0):
    """MonthData of a replay month: the new month, then memory chunks."""
    rng = np.random.default_rng(seed)

    def rows(n):
        return (torch.from_numpy(rng.standard_normal((n, N_FEATURES), dtype=np.float32)),
                torch.from_numpy(rng.integers(0, 2, n)))

    sources = [rows(n_new)] + [rows(n) for n in past_sizes]
    n_past = sum(past_sizes)

    def sample_epoch(sizes, rng):
        return np.concatenate([np.arange(n_new), n_new + rng.choice(n_past, n_new,
                                                                   replace=False)])

    return MonthData(sources, sample_epoch).resample(np.random.default_rng(seed))


def _epoch(cls, data, batch_size, **attributes):
    def run():
        iterator = cls(data, batch_size, generator=torch.Generator().manual_seed(0))
        for name, value in attributes.items():
            setattr(iterator, name, value)
        for _ in iterator:
            pass
    return run


def _ratio(records_a, records_b):
    return statistics.median(a["seconds"] / b["seconds"] for a, b in zip(records_a, records_b))


def run(quick=False, device="cpu", log=print):
    n = 6_000 if quick else 30_000
    repeats = 5 if quick else 15
    data = _replay_month(n, [n] * 11)
    results = {"rows_per_month": n, "past_months": 11, "features": N_FEATURES,
               "repeats": repeats, "old_vs_new": {}, "runs": {}}
    table = []
    for batch_size in (256, 1024):
        records = alternate({"old": _epoch(OldEpochIterator, data, batch_size),
                             "new": _epoch(EpochIterator, data, batch_size)},
                            repeats, warmup=1)
        old, new = summary(records["old"]), summary(records["new"])
        ratio = _ratio(records["old"], records["new"])
        results["old_vs_new"][batch_size] = {"old": old, "new": new, "ratio": ratio}
        table.append([batch_size, 2 * n, 1e3 * old["median"], 1e3 * old["best"],
                      1e3 * new["median"], 1e3 * new["best"], ratio])
        log(f"[gather] batch {batch_size}: old/new {ratio:.2f}")
    print_table(
        f"1. one epoch of a replay month's batches (new month + 11 past months of {n:,} "
        f"rows, {N_FEATURES} features), no training",
        ["batch", "rows", "old ms (med)", "old ms (best)", "new ms (med)", "new ms (best)",
         "old / new"],
        table,
        note="old: X[idx] then a scatter into the chunk (two copies of every row); new: "
             "index_select straight into each batch. Median of per-round ratios.",
    )

    table = []
    memory_rows = 11 * n
    for batch_size, n_chunks in [(1024, 2), (1024, 11), (1024, 24), (1024, 48), (256, 11),
                                 (256, 24)]:
        data = _replay_month(n, [memory_rows // n_chunks] * n_chunks)
        past_run = batch_size / 2 / n_chunks
        records = alternate({
            "direct": _epoch(EpochIterator, data, batch_size, min_run_rows=1, min_run_bytes=0),
            "gathered": _epoch(EpochIterator, data, batch_size, min_run_rows=float("inf")),
            "auto": _epoch(EpochIterator, data, batch_size),
        }, repeats, warmup=1)
        row = {name: summary(recs) for name, recs in records.items()}
        ratio = _ratio(records["direct"], records["gathered"])
        results["runs"][f"{batch_size}x{n_chunks}"] = dict(row, past_rows_per_run=past_run,
                                                           direct_over_gathered=ratio)
        table.append([batch_size, n_chunks, past_run, 1e3 * row["direct"]["median"],
                      1e3 * row["gathered"]["median"], ratio, 1e3 * row["auto"]["median"]])
        log(f"[gather] batch {batch_size}, {n_chunks} months: direct/gathered {ratio:.2f}")
    print_table(
        f"2. direct copies per batch vs gathered per chunk, by rows per run "
        f"(memory of {memory_rows:,} rows in N months)",
        ["batch", "months N", "past rows/run", "direct ms", "gathered ms", "direct / gathered",
         f"auto ms (min_run_rows={EpochIterator.min_run_rows})"],
        table,
        note="A run is one source's rows in one batch; the new month's runs are half a batch.",
    )
    return results


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    run(quick=args.quick)
