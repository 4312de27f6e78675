"""5. Memory as months grow: process peak RSS and the bytes strategies keep.

tracemalloc does not see torch's allocations, so each strategy runs in a
fresh subprocess that trains 12 months one ``partial_fit_month`` at a time
(a new month's rows are generated just before it and dropped after) and
records, after every month:

* ``VmRSS`` and ``VmHWM`` (peak RSS) from /proc/self/status, minus the RSS
  measured after imports, a warm-up fit on two tiny months (torch's code
  pages and thread pools) and the generation of the first month's rows;
* the bytes of the distinct tensor storages held by the fitted strategy
  (replay memory, joint history, anchors, Fisher, ensemble members) and by
  the per-month snapshots.

Expected: joint (and replay with ``memory_size=None``) grow with history;
replay with ``memory_size`` stays flat.
"""


import numpy as np

from _timing import print_table, run_child, vm_status

NAME = "memory"


def _tensor_bytes(obj, seen_storages=None, seen_objects=None):
    import torch

    if seen_storages is None:
        seen_storages, seen_objects = set(), set()
    if id(obj) in seen_objects:
        return 0
    seen_objects.add(id(obj))
    if isinstance(obj, torch.Tensor):
        storage = obj.untyped_storage()
        key = storage.data_ptr()
        if key in seen_storages or storage.nbytes() == 0:
            return 0
        seen_storages.add(key)
        return storage.nbytes()
    if isinstance(obj, np.ndarray):
        return obj.nbytes
    total = 0
    if isinstance(obj, dict):
        for v in obj.values():
            total += _tensor_bytes(v, seen_storages, seen_objects)
    elif isinstance(obj, (list, tuple, set)):
        for v in obj:
            total += _tensor_bytes(v, seen_storages, seen_objects)
    elif hasattr(obj, "__dict__") and not isinstance(obj, type):
        for v in vars(obj).values():
            total += _tensor_bytes(v, seen_storages, seen_objects)
    return total


def child(strategy, params, n_months, n_per_month, d, threads, device="cpu"):
    """Runs in a fresh process; returns the per-month memory trace."""
    import torch

    torch.set_num_threads(threads)
    from sklearn_cf import ContinualClassifier

    from _common import make_rows

    # Warm-up on two tiny months: torch's code pages, thread pools and
    # allocator caches enter the RSS here, not in month 1's number.
    warm = ContinualClassifier(strategy=strategy, max_epochs=1, batch_size=1024,
                               random_state=0, device=device)
    for m in range(2):
        warm.partial_fit_month(*make_rows(2048, d, seed=m))
    del warm
    clf = ContinualClassifier(strategy=strategy, max_epochs=1, batch_size=1024,
                              random_state=0, device=device, **params)
    trace = []
    base = None
    for m in range(n_months):
        X, y = make_rows(n_per_month, d, seed=100 + m, shift=float(m))
        if base is None:
            base = vm_status()["VmRSS"]
        clf.partial_fit_month(X, y)
        del X, y
        vm = vm_status()
        trace.append({
            "month": m + 1,
            "rss": vm["VmRSS"] - base,
            "peak_rss": vm["VmHWM"] - base,
            "strategy_bytes": _tensor_bytes(clf.strategy_),
            "snapshot_bytes": _tensor_bytes(clf.snapshots_),
        })
    return {"base_rss": base, "trace": trace}


def run(quick=False, device="cpu", log=print, threads=1):
    n_months = 12
    n_per_month = 20_000 if quick else 100_000
    d = 100
    month_mb = n_per_month * (d * 4 + 8) / 2**20
    configs = {
        "naive": ("naive", {}),
        "ewc": ("ewc", {}),
        "replay (memory_size=None)": ("replay", {}),
        f"replay (memory_size={2 * n_per_month})": ("replay", {"memory_size": 2 * n_per_month}),
        "joint": ("joint", {}),
        "ensemble": ("ensemble", {}),
    }
    results = {"months": n_months, "rows_per_month": n_per_month, "features": d,
               "month_data_mib": month_mb, "strategies": {}}
    table = []
    for label, (strategy, params) in configs.items():
        log(f"[memory] {label}: fresh subprocess, {n_months} months x {n_per_month} rows")
        out = run_child("bench_memory", "child",
                        {"strategy": strategy, "params": params, "n_months": n_months,
                         "n_per_month": n_per_month, "d": d, "threads": threads,
                         "device": device})
        results["strategies"][label] = out
        tr = out["trace"]
        mib = 2**20
        pick = [0, 2, 5, 11]
        table.append([label]
                     + [tr[i]["peak_rss"] / mib for i in pick]
                     + [tr[i]["strategy_bytes"] / mib for i in (0, 11)]
                     + [tr[11]["snapshot_bytes"] / mib])
    print_table(
        f"5. memory as months grow ({n_months} months x {n_per_month} rows x {d} features = "
        f"{month_mb:.0f} MiB of rows per month; MiB above the RSS before training)",
        ["strategy", "peak RSS m1", "m3", "m6", "m12", "kept by strategy m1", "m12",
         "snapshots m12"],
        table,
        note="peak RSS = VmHWM of a fresh process per strategy; 'kept' = distinct tensor "
             "storages referenced by the fitted strategy_ / snapshots_.",
    )
    return results
