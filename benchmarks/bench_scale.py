"""7. Scale: one fine-tune epoch on 1M rows x 200 features (quick: 200k).

Runs in a fresh subprocess (for an honest peak RSS): the rows are generated
as float32 (800 MB at full size), a base month of 10k rows is fitted, then
one naive ``partial_fit_month`` (1 epoch, batch 256) over all rows is
timed, alternated with one epoch of the hand-written loop over the same
tensors (twice each; best of each reported). Checks that rows stay in tensors: the per-row
``Dataset.__getitem__`` of the package's datasets is never called during
the month, and the number of Python objects / allocated blocks does not
grow with the rows.
"""

import gc
import sys
import time

from _timing import print_table, run_child, vm_status

NAME = "scale"


def child(n, d, threads, device="cpu", repeats=2):
    import torch

    torch.set_num_threads(threads)
    from sklearn_cf import ContinualClassifier
    from sklearn_cf import _data

    from _common import make_rows, new_mlp, plain_epochs

    rss0 = vm_status()["VmRSS"]
    X, y = make_rows(n, d, seed=7)
    rss_data = vm_status()["VmRSS"]
    clf = ContinualClassifier(max_epochs=1, batch_size=256, random_state=0, device=device)
    clf.fit(X[:10_000], y[:10_000])

    calls = {"getitem": 0}
    for cls in (_data.MonthData, _data.RowsDataset):
        original = cls.__getitem__

        def counted(self, i, _original=original):
            calls["getitem"] += 1
            return _original(self, i)

        cls.__getitem__ = counted

    gc.collect()
    objects_before = len(gc.get_objects())
    blocks_before = sys.getallocatedblocks()
    hwm_before = vm_status()["VmHWM"]
    model = new_mlp(d, seed=0, device=device)
    X_t, y_t = torch.from_numpy(X), torch.from_numpy(y)
    months, plains = [], []
    for r in range(repeats):  # alternated: month, plain loop, month, ...
        start = time.perf_counter()
        clf.partial_fit_month(X, y)
        months.append(time.perf_counter() - start)
        if r == 0:
            vm = vm_status()
            gc.collect()
            objects_after = len(gc.get_objects())
            blocks_after = sys.getallocatedblocks()
        plains.append(plain_epochs(model, X_t, y_t, 256, 1, device)["seconds"])
    seconds = min(months)
    vm_end = vm_status()
    return {
        "rows": n, "features": d,
        "data_bytes": int(X.nbytes + y.nbytes),
        "rss_before_data": rss0, "rss_with_data": rss_data,
        "month_seconds": seconds, "month_cost_seconds": clf.cost_[1]["seconds"],
        "rows_trained": clf.cost_[1]["rows"],
        "rows_per_s": clf.cost_[1]["rows"] / seconds,
        "month_seconds_runs": months, "plain_epoch_seconds_runs": plains,
        "plain_epoch_seconds": min(plains), "plain_rows_per_s": n / min(plains),
        "peak_rss_before_month": hwm_before, "peak_rss_after_month": vm["VmHWM"],
        "peak_rss_end": vm_end["VmHWM"],
        "month_peak_above_data": vm["VmHWM"] - rss_data,
        "getitem_calls": calls["getitem"],
        "python_objects_delta": objects_after - objects_before,
        "allocated_blocks_delta": blocks_after - blocks_before,
    }


def run(quick=False, device="cpu", log=print, threads=1):
    n = 200_000 if quick else 1_000_000
    d = 200
    log(f"[scale] fresh subprocess: {n} rows x {d} features, one fine-tune epoch")
    out = run_child("bench_scale", "child", {"n": n, "d": d, "threads": threads,
                                             "device": device})
    mib = 2**20
    ok = out["getitem_calls"] == 0 and out["python_objects_delta"] < 10_000
    out["rows_stay_tensors"] = ok
    print_table(
        f"7. scale: one fine-tune month (1 epoch, batch 256) on {n} rows x {d} "
        f"(device={device})",
        ["rows", "data MiB", "month s", "rows/s", "plain loop rows/s", "ratio",
         "peak RSS MiB", "peak above data MiB", "__getitem__ calls", "py objects delta",
         "tensors only"],
        [[n, out["data_bytes"] / mib, out["month_seconds"], out["rows_per_s"],
          out["plain_rows_per_s"], out["rows_per_s"] / out["plain_rows_per_s"],
          out["peak_rss_after_month"] / mib, out["month_peak_above_data"] / mib,
          out["getitem_calls"], out["python_objects_delta"], ok]],
        note="peak RSS = VmHWM of the subprocess (includes the data and torch itself); "
             "'ratio' = classifier rows/s / plain rows/s (best of 2 alternated runs each); "
             "memory and object counts are taken after the first month.",
    )
    return out
