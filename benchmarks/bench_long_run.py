"""50 months of replay with a bounded memory: time per month must stay flat.

The reliability test (tests/test_reliability.py) asserts the bounds on memory
and on training rows; this measures the seconds, which tests never assert.
Reported: seconds per month over the first and the last 10 fine-tune months
(median), their ratio, the memory's row count and the bytes replay keeps.
"""

import time

import numpy as np
from _timing import print_table

from sklearn_cf import ContinualClassifier
from sklearn_cf.datasets import make_monthly_drift


def run(quick=False, device="cpu", log=print):
    n_months = 50
    n_per_month = 200 if quick else 1_000
    memory_size = 2_000
    X, y, months = make_monthly_drift(n_months=n_months, n_samples_per_month=n_per_month,
                                      random_state=0)
    clf = ContinualClassifier(strategy="replay", memory_size=memory_size,
                              epoch_size=n_per_month, max_epochs=2, max_snapshots=5,
                              random_state=0, device=device)
    seconds, kept = [], []
    for m in range(n_months):
        rows = months == m
        start = time.perf_counter()
        clf.partial_fit_month(X[rows], y[rows])
        seconds.append(time.perf_counter() - start)
        memory = clf.strategy_.memory
        kept.append(int(memory.X.element_size() * memory.X.nelement()))
        if m % 10 == 9:
            log(f"[long_run] month {m + 1}/{n_months}: {seconds[-1]:.3f} s")
    first, last = np.median(seconds[1:11]), np.median(seconds[-10:])
    rows = [
        ["months 2-11", f"{first:.3f}", "", f"{kept[10]:,}"],
        ["months 41-50", f"{last:.3f}", f"{last / first:.2f}", f"{kept[-1]:,}"],
    ]
    print_table(
        f"long run: {n_months} months x {n_per_month} rows, replay memory_size={memory_size}, "
        f"epoch_size={n_per_month}",
        ["months", "median s/month", "ratio to early", "memory bytes"],
        rows,
        note="Flat: the last months cost the same as the early ones and memory does not grow.",
    )
    return {"seconds_per_month": seconds, "memory_bytes": kept,
            "median_early": first, "median_late": last, "ratio": last / first}
