"""Out of core: months on disk, replay memory and joint history in ``memory_dir``.

Each configuration runs in a fresh subprocess and reads ``RssAnon`` from
``/proc/self/status``: the process's own (anonymous) memory, which excludes
the page cache that holds a memory-mapped file's pages.

1. One fine-tune epoch over a month from RAM, from an ``np.memmap`` (the
   estimator), and a plain PyTorch loop reading the same memmap; rows/s and
   RssAnon growth during the month.
2. Replay with ``memory_dir`` and a fixed ``epoch_size`` over several months
   on disk: seconds and RssAnon per month (flat if memory stays on disk).
3. Joint retraining with ``memory_dir``: rows and seconds per month (linear
   in rows) and RssAnon (flat).

Sizes: ``--quick`` 200k x 200 per month; default 1M x 200 (800 MB a month);
``SKLEARN_CF_BENCH_ROWS=4000000`` for the issue's 4M x 200 (3.2 GB).
Files go to ``SKLEARN_CF_BENCH_DIR`` (default: a temporary folder), removed
afterwards.
"""

import os
import shutil
import tempfile
import time

from _timing import print_table, run_child

NAME = "out_of_core"
CHUNK = 100_000


def rss_anon():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


def write_month(path, n, d, seed):
    """A month of ``n`` rows written to ``path`` (.npy) chunk by chunk, and
    its labels (returned in RAM: 8 bytes a row)."""
    import numpy as np

    from _common import make_rows

    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
    ys = []
    for k, start in enumerate(range(0, n, CHUNK)):
        rows, labels = make_rows(min(CHUNK, n - start), d, seed=seed * 10_000 + k,
                                 shift=float(seed))
        X[start:start + len(rows)] = rows
        ys.append(labels)
    X.flush()
    del X
    return np.concatenate(ys)


def child_month(n, d, folder, threads=1, batch_size=1024):
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    from sklearn_cf import ContinualClassifier

    from _common import new_mlp, plain_epochs

    path = os.path.join(folder, "month.npy")
    y = write_month(path, n, d, seed=1)
    X_map = np.load(path, mmap_mode="r")
    out = {"rows": n, "features": d, "month_bytes": int(X_map.nbytes)}
    for source in ("memmap", "ram", "plain_memmap"):
        X = np.array(X_map) if source == "ram" else X_map
        base = 10_000
        anon0 = rss_anon()
        start = time.perf_counter()
        if source == "plain_memmap":
            model = new_mlp(d, seed=0)
            with np.errstate(all="ignore"):
                X_t = torch.from_numpy(np.asarray(X))
            plain_epochs(model, X_t, torch.from_numpy(y), batch_size, 1)
        else:
            clf = ContinualClassifier(max_epochs=1, batch_size=batch_size, random_state=0)
            clf.fit(np.asarray(X[:base]), y[:base])
            anon0 = rss_anon()
            start = time.perf_counter()
            clf.partial_fit_month(X, y)
        seconds = time.perf_counter() - start
        out[source] = {"seconds": seconds, "rows_per_s": n / seconds,
                       "rss_anon_growth": rss_anon() - anon0}
        del X
    return out


def child_sequence(strategy, n, d, months, folder, epoch_size=None, threads=1):
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    from sklearn_cf import ContinualClassifier

    clf = ContinualClassifier(strategy=strategy, memory_dir=os.path.join(folder, "memory"),
                              epoch_size=epoch_size, max_epochs=1, batch_size=1024,
                              random_state=0)
    per_month = []
    for m in range(months):
        path = os.path.join(folder, f"month{m}.npy")
        y = write_month(path, n, d, seed=m)
        X = np.load(path, mmap_mode="r")
        start = time.perf_counter()
        clf.partial_fit_month(X, y)
        per_month.append({"month": m, "seconds": time.perf_counter() - start,
                          "rows": clf.cost_[-1]["rows"], "rss_anon": rss_anon()})
        del X
    return per_month


def run(quick=False, device="cpu", log=print, threads=1):
    if device != "cpu":
        log("[out_of_core] CPU only for now; skipped")
        return None
    n = int(os.environ.get("SKLEARN_CF_BENCH_ROWS", 200_000 if quick else 1_000_000))
    d, months = 200, 3 if quick else 6
    root = tempfile.mkdtemp(prefix="sklearn_cf_ooc_", dir=os.environ.get("SKLEARN_CF_BENCH_DIR"))
    mib = 2**20
    try:
        log(f"[out_of_core] 1. one fine-tune epoch, {n} x {d} from RAM / memmap / plain loop")
        one = run_child("bench_out_of_core", "child_month",
                        {"n": n, "d": d, "folder": root, "threads": threads})
        rows = [[src, one[src]["rows_per_s"], one[src]["rows_per_s"] / one["ram"]["rows_per_s"],
                 one[src]["rss_anon_growth"] / mib,
                 one[src]["rss_anon_growth"] / one["month_bytes"]]
                for src in ("ram", "memmap", "plain_memmap")]
        print_table(f"1. one fine-tune epoch (batch 1024), {n} x {d} "
                    f"({one['month_bytes'] / mib:.0f} MiB)",
                    ["source", "rows/s", "vs RAM", "RssAnon growth MiB", "growth / month"],
                    rows, note="RAM: the month copied into anonymous memory before timing "
                               "(its growth is measured after the copy).")
        results = {"month": one}
        n_seq = n // 4
        for name, strategy, epoch_size in (("replay", "replay", n_seq // 2),
                                           ("joint", "joint", None)):
            shutil.rmtree(os.path.join(root, "memory"), ignore_errors=True)
            log(f"[out_of_core] {name} with memory_dir over {months} months of {n_seq} rows")
            seq = run_child("bench_out_of_core", "child_sequence",
                            {"strategy": strategy, "n": n_seq, "d": d, "months": months,
                             "folder": root, "epoch_size": epoch_size, "threads": threads})
            print_table(f"{'2' if name == 'replay' else '3'}. {name}, memory_dir, "
                        f"{n_seq} x {d} a month" +
                        (f", epoch_size={epoch_size}" if epoch_size else ""),
                        ["month", "rows trained", "seconds", "rows/s", "RssAnon MiB"],
                        [[r["month"], r["rows"], r["seconds"], r["rows"] / r["seconds"],
                          r["rss_anon"] / mib] for r in seq])
            results[name] = seq
        return results
    finally:
        shutil.rmtree(root, ignore_errors=True)
