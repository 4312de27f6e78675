"""Torch threads: ``n_threads=1``, ``2`` and ``"auto"`` on an idle machine
and with another process holding one core.

One fit of a few months (the README's default MLP) per configuration, the
configurations alternated, each fit in a fresh child process. The competing
work is a plain Python busy loop in another process (one core), started
before and stopped after each timed fit, as a second job on a shared
machine would be. Ratios are against ``n_threads=1`` in the same round.
"""

import multiprocessing
import statistics
import time

from _timing import print_table, run_child

NAME = "threads"


def _busy(stop):
    while not stop.is_set():
        pass


def child_fit(n_threads, n_rows, n_features, n_months, batch_size):
    import os

    import numpy as np
    import torch

    from _common import make_months
    from sklearn_cf import ContinualClassifier

    # run.py caps its children at its --threads (OMP_NUM_THREADS); "auto"
    # never goes above torch's count, so give it the machine's CPUs here.
    torch.set_num_threads(len(os.sched_getaffinity(0)))

    X, y, months = make_months(n_months, n_rows, n_features, seed=3)
    clf = ContinualClassifier(strategy="replay", max_epochs=2, batch_size=batch_size,
                              n_threads=n_threads, random_state=0)
    start = time.perf_counter()
    clf.fit(X, y, months=months)
    return {"seconds": time.perf_counter() - start,
            "threads": [c["threads"] for c in clf.cost_],
            "rows": int(np.sum([c["rows"] for c in clf.cost_]))}


def _timed(n_threads, busy, sizes):
    stop = multiprocessing.Event()
    worker = None
    if busy:
        worker = multiprocessing.Process(target=_busy, args=(stop,), daemon=True)
        worker.start()
        time.sleep(0.3)  # let it take its core
    try:
        return run_child("bench_threads", "child_fit", dict(sizes, n_threads=n_threads))
    finally:
        if worker is not None:
            stop.set()
            worker.join()


def run(quick=False, device="cpu", log=print):
    if device != "cpu":
        log("[threads] a CPU benchmark; skipped on another device")
        return None
    sizes = {"n_rows": 5_000 if quick else 20_000, "n_features": 200,
             "n_months": 3, "batch_size": 256}
    repeats = 2 if quick else 3
    configs = ["1", "2", "auto"]
    results, rows = {}, []
    for load in ("idle", "one core busy"):
        records = {c: [] for c in configs}
        for r in range(repeats):
            order = configs[r % 3:] + configs[:r % 3]
            for config in order:
                n_threads = config if config == "auto" else int(config)
                record = _timed(n_threads, load != "idle", sizes)
                records[config].append(record)
                log(f"[threads] {load}, n_threads={config}: {record['seconds']:.2f} s "
                    f"(threads used {record['threads']})")
        results[load] = records
        for config in configs:
            ratios = [one["seconds"] / rec["seconds"]
                      for one, rec in zip(records["1"], records[config])]
            seconds = [rec["seconds"] for rec in records[config]]
            rows.append([load, config, statistics.median(seconds), min(seconds),
                         statistics.median(ratios),
                         ",".join(map(str, sorted({t for rec in records[config]
                                                   for t in rec["threads"]})))])
    print_table(
        f"Torch threads: fit of {sizes['n_months']} months x {sizes['n_rows']} rows x "
        f"{sizes['n_features']} features, replay, 2 epochs, batch {sizes['batch_size']}",
        ["load", "n_threads", "median s", "best s", "speed vs 1 thread (median)",
         "threads used"],
        rows,
        note="'one core busy': another process runs a busy loop during the fit. "
             "Speed > 1 is faster than one thread.")
    return {"sizes": sizes, "repeats": repeats, "results": results}
