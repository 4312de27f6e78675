"""Out of core: months on disk, replay memory and joint history in ``memory_dir``.

Each configuration runs in a fresh subprocess and reads ``RssAnon`` from
``/proc/self/status``: the process's own (anonymous) memory, which excludes
the page cache that holds a memory-mapped file's pages.

1. One fine-tune epoch over a month from RAM, from an ``np.memmap`` (the
   estimator), and a plain PyTorch loop reading the same memmap; rows/s and
   the peak RssAnon growth during the month.
2. Replay with a fixed ``epoch_size`` over several months on disk, with
   ``memory_dir`` and in RAM: seconds and peak RssAnon per month.
3. A month larger than half the RAM (default 1.4M x 2381, about 13 GB on
   disk), fine-tuned with replay whose memory is on disk: opt-in
   (``SKLEARN_CF_BENCH_ITEMS=1,2,3,4``).
4. Joint retraining over on-disk history, with ``memory_dir`` and in RAM:
   rows and seconds per month (linear in rows) and peak RssAnon.
5. Replay with a bounded reservoir (``memory_size``) in ``memory_dir`` over
   many months: seconds, peak RssAnon, the files the model references and
   all files in its memory folder (copy-on-write leaves files that no later
   model references: what a model store's garbage collection removes).

Sizes: item 1 ``SKLEARN_CF_BENCH_ROWS`` rows x 200 (``--quick`` 200k, default
1M; the issue's 4M is 3.2 GB); items 2 and 4 ``SKLEARN_CF_BENCH_SEQ_ROWS``
rows a month (default a quarter of item 1's); item 3 ``SKLEARN_CF_BENCH_BIG``;
item 5 a fifth of item 2's rows a month, a reservoir of twice that, 20
months (``--quick``) or 24.
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


class PeakRssAnon:
    """Samples RssAnon every 20 ms in a thread: the peak, not just the end
    (a temporary copy is freed before the end)."""

    def __enter__(self):
        import threading

        self.start = self.peak = rss_anon()
        self._stop = threading.Event()

        def sample():
            while not self._stop.wait(0.02):
                self.peak = max(self.peak, rss_anon())

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_anon())
        self.growth = self.peak - self.start
        return False


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


def child_month(n, d, folder, threads=1, batch_size=1024, device="cpu"):
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
        if source == "plain_memmap":
            model = new_mlp(d, seed=0, device=device)
            X_t = torch.from_numpy(np.asarray(X))
            with PeakRssAnon() as rss:
                start = time.perf_counter()
                plain_epochs(model, X_t, torch.from_numpy(y), batch_size, 1, device)
                seconds = time.perf_counter() - start
        else:
            clf = ContinualClassifier(max_epochs=1, batch_size=batch_size, random_state=0,
                                      device=device, month_on_device=False)
            clf.fit(np.array(X[:base]), y[:base])
            with PeakRssAnon() as rss:
                start = time.perf_counter()
                clf.partial_fit_month(X, y)
                seconds = time.perf_counter() - start
        out[source] = {"seconds": seconds, "rows_per_s": n / seconds,
                       "rss_anon_growth": rss.growth}
        del X
    return out


def child_sequence(strategy, n, d, months, folder, epoch_size=None, threads=1, disk=True):
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    from sklearn_cf import ContinualClassifier

    memory_dir = os.path.join(folder, "memory") if disk else None
    clf = ContinualClassifier(strategy=strategy, memory_dir=memory_dir, epoch_size=epoch_size,
                              max_epochs=1, batch_size=1024, random_state=0)
    per_month = []
    for m in range(months):
        path, y_path = (os.path.join(folder, f"month{m}{ext}") for ext in (".npy", ".y.npy"))
        if not os.path.exists(y_path):  # the same months for the disk and RAM runs
            np.save(y_path, write_month(path, n, d, seed=m))
        y = np.load(y_path)
        X = np.load(path, mmap_mode="r")
        with PeakRssAnon() as rss:
            start = time.perf_counter()
            clf.partial_fit_month(X, y)
            seconds = time.perf_counter() - start
        per_month.append({"month": m, "seconds": seconds, "rows": clf.cost_[-1]["rows"],
                          "rss_anon": rss_anon(), "rss_anon_peak": rss.peak})
        del X
    return per_month


def child_reservoir(n, d, months, memory_size, folder, epoch_size, threads=1):
    """Replay with a bounded reservoir on disk, month after month: the
    anonymous memory, and the memory folder's files (referenced or not)."""
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    from sklearn_cf import ContinualClassifier

    from _common import make_rows

    memory_dir = os.path.join(folder, "memory")
    clf = ContinualClassifier(strategy="replay", memory_dir=memory_dir,
                              memory_size=memory_size, epoch_size=epoch_size,
                              max_epochs=1, batch_size=1024, random_state=0)
    per_month = []
    for m in range(months):
        X, y = make_rows(n, d, seed=m, shift=float(m))
        with PeakRssAnon() as rss:
            start = time.perf_counter()
            clf.partial_fit_month(X, y)
            seconds = time.perf_counter() - start
        del X
        on_disk = [os.path.join(root, name) for root, _, names in os.walk(memory_dir)
                   for name in names]
        # Before copy-on-write every file in the folder was referenced.
        referenced = clf.memory_files() if hasattr(clf, "memory_files") else on_disk
        per_month.append({
            "month": m, "seconds": seconds, "rows": clf.cost_[-1]["rows"],
            "rss_anon": rss_anon(), "rss_anon_peak": rss.peak,
            "files": len(on_disk), "referenced": len(referenced),
            "folder_bytes": sum(os.path.getsize(p) for p in on_disk),
            "referenced_bytes": sum(os.path.getsize(p) for p in referenced)})
    return per_month


def child_big_month(n, d, folder, threads=2, epoch_size=None):
    """A month larger than half the machine's RAM, on disk, fine-tuned with
    replay whose memory is on disk too (the month is added to it)."""
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    from sklearn_cf import ContinualClassifier

    path = os.path.join(folder, "big.npy")
    start = time.perf_counter()
    y = write_month(path, n, d, seed=3)
    write_seconds = time.perf_counter() - start
    X = np.load(path, mmap_mode="r")
    clf = ContinualClassifier(strategy="replay", memory_dir=os.path.join(folder, "memory"),
                              epoch_size=epoch_size, max_epochs=1, batch_size=1024,
                              random_state=0)
    clf.partial_fit_month(np.array(X[:20_000]), y[:20_000])
    with PeakRssAnon() as rss:
        start = time.perf_counter()
        clf.partial_fit_month(X, y)
        seconds = time.perf_counter() - start
    return {"rows": n, "features": d, "month_bytes": int(X.nbytes),
            "write_seconds": write_seconds, "seconds": seconds,
            "rows_trained": clf.cost_[-1]["rows"], "rss_anon_start": rss.start,
            "rss_anon_peak": rss.peak, "memory_rows": len(clf.strategy_.memory)}


def _item_month(root, n, d, threads, log, device="cpu"):
    mib = 2**20
    log(f"[out_of_core] 1. one fine-tune epoch, {n} x {d} from RAM / memmap / plain loop")
    one = run_child("bench_out_of_core", "child_month",
                    {"n": n, "d": d, "folder": root, "threads": threads, "device": device,
                     "batch_size": 4096 if device.startswith("cuda") else 1024})
    print_table(f"1. one fine-tune epoch (device={device}), {n} x {d} "
                f"({one['month_bytes'] / mib:.0f} MiB)",
                ["source", "rows/s", "vs RAM", "peak RssAnon growth MiB", "/ month size"],
                [[src, one[src]["rows_per_s"], one[src]["rows_per_s"] / one["ram"]["rows_per_s"],
                  one[src]["rss_anon_growth"] / mib,
                  one[src]["rss_anon_growth"] / one["month_bytes"]]
                 for src in ("ram", "memmap", "plain_memmap")],
                note="ram: the month copied into the process before timing; memmap: the "
                     "estimator on the np.memmap; plain_memmap: a hand-written PyTorch loop "
                     "on torch.from_numpy(memmap).")
    os.remove(os.path.join(root, "month.npy"))
    return one


def _item_sequence(root, item, strategy, epoch_size, n, d, months, threads, log):
    """Items 2 and 4: the same months with memory_dir and in RAM."""
    mib = 2**20
    runs = {}
    for where in ("memory_dir", "RAM"):
        shutil.rmtree(os.path.join(root, "memory"), ignore_errors=True)
        log(f"[out_of_core] {item}. {strategy}, {where}, {months} months of {n} rows")
        runs[where] = run_child("bench_out_of_core", "child_sequence",
                                {"strategy": strategy, "n": n, "d": d, "months": months,
                                 "folder": root, "epoch_size": epoch_size, "threads": threads,
                                 "disk": where == "memory_dir"})
    print_table(
        f"{item}. {strategy}, {n} x {d} a month"
        + (f", epoch_size={epoch_size}" if epoch_size else "") + ": memory_dir vs RAM",
        ["month", "rows", "disk s", "RAM s", "disk rows/s", "disk RssAnon MiB",
         "RAM RssAnon MiB"],
        [[a["month"], a["rows"], a["seconds"], b["seconds"], a["rows"] / a["seconds"],
          a["rss_anon_peak"] / mib, b["rss_anon_peak"] / mib]
         for a, b in zip(runs["memory_dir"], runs["RAM"])],
        note="RssAnon: peak during the month, sampled every 20 ms.")
    return runs


def _item_big_month(root, n, d, log):
    mib = 2**20
    log(f"[out_of_core] 3. a {n} x {d} month on disk, replay memory on disk")
    big = run_child("bench_out_of_core", "child_big_month",
                    {"n": n, "d": d, "folder": root, "threads": 2})
    print_table(f"3. a month larger than half the RAM: {n} x {d} "
                f"({big['month_bytes'] / 2**30:.1f} GiB), replay with memory_dir",
                ["rows trained", "seconds", "rows/s", "RssAnon start MiB", "RssAnon peak MiB",
                 "rows in memory"],
                [[big["rows_trained"], big["seconds"], big["rows_trained"] / big["seconds"],
                  big["rss_anon_start"] / mib, big["rss_anon_peak"] / mib,
                  big["memory_rows"]]],
                note="2 torch threads; the machine has no swap, so exceeding memory would "
                     "end in the OOM killer.")
    return big


def _item_reservoir(root, n, d, months, log):
    mib = 2**20
    memory_size = 2 * n
    log(f"[out_of_core] 5. replay, a reservoir of {memory_size} rows on disk, "
        f"{months} months of {n} rows")
    shutil.rmtree(os.path.join(root, "memory"), ignore_errors=True)
    runs = run_child("bench_out_of_core", "child_reservoir",
                     {"n": n, "d": d, "months": months, "memory_size": memory_size,
                      "folder": root, "epoch_size": n})
    print_table(
        f"5. replay, memory_size={memory_size} in memory_dir, epoch_size={n}, "
        f"{n} x {d} a month",
        ["month", "rows", "s", "RssAnon peak MiB", "files referenced", "MiB referenced",
         "files in folder", "MiB in folder"],
        [[a["month"], a["rows"], a["seconds"], a["rss_anon_peak"] / mib, a["referenced"],
          a["referenced_bytes"] / mib, a["files"], a["folder_bytes"] / mib] for a in runs],
        note="RssAnon: peak during the month, sampled every 20 ms; files: .npy files.")
    shutil.rmtree(os.path.join(root, "memory"), ignore_errors=True)
    return runs


def run(quick=False, device="cpu", log=print, threads=1):
    """Items 1, 2, 4 and 5; item 3 too with ``SKLEARN_CF_BENCH_ITEMS="1,2,3,4,5"``. Sizes: ``SKLEARN_CF_BENCH_ROWS`` (item 1), ``SKLEARN_CF_BENCH_SEQ_ROWS``
    (items 2, 4; default a quarter of item 1's), ``SKLEARN_CF_BENCH_BIG``
    (item 3, ``ROWSxFEATURES``, default 1400000x2381: about 13 GB on disk)."""
    cuda = device.startswith("cuda")
    # On a GPU, item 1 is the 4M x 2381 month from host memory and
    # from a memmap (38 GB: quick, 400k); the other items are CPU only.
    default_rows = (400_000 if quick else 4_000_000) if cuda else (200_000 if quick else 1_000_000)
    n = int(os.environ.get("SKLEARN_CF_BENCH_ROWS", default_rows))
    n_seq = int(os.environ.get("SKLEARN_CF_BENCH_SEQ_ROWS", n // 4))
    d = int(os.environ.get("SKLEARN_CF_BENCH_FEATURES", 2381 if cuda else 200))
    months = 3 if quick else 6
    # Item 3 writes about 13 GB: only when asked for.
    items = os.environ.get("SKLEARN_CF_BENCH_ITEMS", "1" if cuda else "1,2,4,5").split(",")
    root = tempfile.mkdtemp(prefix="sklearn_cf_ooc_", dir=os.environ.get("SKLEARN_CF_BENCH_DIR"))
    results = {}
    try:
        if "1" in items:
            results["month"] = _item_month(root, n, d, threads, log, device)
        if "2" in items:
            results["replay"] = _item_sequence(root, "2", "replay", n_seq // 2, n_seq, d,
                                               months, threads, log)
        if "4" in items:
            results["joint"] = _item_sequence(root, "4", "joint", None, n_seq, d, months,
                                              threads, log)
        if "5" in items:
            results["reservoir"] = _item_reservoir(root, max(1, n_seq // 5), d,
                                                   20 if quick else 24, log)
        for name in os.listdir(root):
            if name.startswith("month"):
                os.remove(os.path.join(root, name))
        shutil.rmtree(os.path.join(root, "memory"), ignore_errors=True)
        if "3" in items:
            big = os.environ.get("SKLEARN_CF_BENCH_BIG", "1400000x2381")
            results["big_month"] = _item_big_month(root, *(int(v) for v in big.split("x")),
                                                   log)
        return results
    finally:
        shutil.rmtree(root, ignore_errors=True)
