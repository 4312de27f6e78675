"""Several processes on the CPU: rows/s of one fine-tune month with
``AcceleratedContinualClassifier`` (DDP over gloo) against one process.

The same rows and global batches in every configuration: one process with
one torch thread, one process with two, and two processes (``torchrun``) with
one thread each. On a GPU machine the same code path runs one process per GPU
(``accelerate launch``); that has not been measured here.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time

from _timing import print_table, run_child

NAME = "ddp"

_WORKER = '''
import json, os, sys, time
import numpy as np, torch
torch.set_num_threads(1)
from accelerate import Accelerator
from sklearn_cf.accelerate import AcceleratedContinualClassifier
d = np.load(sys.argv[1])
clf = AcceleratedContinualClassifier(accelerator=Accelerator(cpu=True), max_epochs=1,
                                     batch_size=int(sys.argv[3]), random_state=0)
clf.partial_fit_month(d["X"][:10_000], d["y"][:10_000])
start = time.perf_counter()
clf.partial_fit_month(d["X"], d["y"])
seconds = time.perf_counter() - start
if clf.accelerator.is_main_process:
    json.dump({"seconds": seconds, "rows": clf.cost_[-1]["rows"]}, open(sys.argv[2], "w"))
clf.accelerator.wait_for_everyone()
clf.accelerator.end_training()
'''


def child_single(data, threads, batch_size):
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    from sklearn_cf import ContinualClassifier

    d = np.load(data)
    clf = ContinualClassifier(max_epochs=1, batch_size=batch_size, random_state=0)
    clf.partial_fit_month(d["X"][:10_000], d["y"][:10_000])
    start = time.perf_counter()
    clf.partial_fit_month(d["X"], d["y"])
    return {"seconds": time.perf_counter() - start, "rows": clf.cost_[-1]["rows"]}


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_processes(data, batch_size, folder):
    worker, out = os.path.join(folder, "worker.py"), os.path.join(folder, "out.json")
    with open(worker, "w") as f:
        f.write(_WORKER)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONFAULTHANDLER="1")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node",
                           "2", "--master_addr", "127.0.0.1", "--master_port",
                           str(_free_port()), worker, data, out, str(batch_size)],
                          env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"torchrun failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    with open(out) as f:
        return json.load(f)


def run(quick=False, device="cpu", log=print, threads=1):
    if device != "cpu":
        log("[ddp] the CPU (gloo) comparison only; on GPUs use accelerate launch")
        return None
    try:
        import accelerate  # noqa: F401
    except ImportError:
        log("[ddp] accelerate is not installed (pip install sklearn-cf[accelerate]); skipped")
        return None
    import numpy as np

    from _common import make_rows

    n, d = (50_000 if quick else 400_000), 200
    results = {"rows": n, "features": d, "cases": {}}
    with tempfile.TemporaryDirectory() as folder:
        data = os.path.join(folder, "data.npz")
        X, y = make_rows(n, d, seed=5)
        np.savez(data, X=X, y=y)
        rows = []
        for batch_size in (256, 1024):
            log(f"[ddp] {n} x {d}, batch {batch_size}: 1 process x 1 and 2 threads, "
                "2 processes x 1 thread")
            one = run_child("bench_ddp", "child_single",
                            {"data": data, "threads": 1, "batch_size": batch_size})
            two_threads = run_child("bench_ddp", "child_single",
                                    {"data": data, "threads": 2, "batch_size": batch_size})
            two = _two_processes(data, batch_size, folder)
            case = {"1 process, 1 thread": one, "1 process, 2 threads": two_threads,
                    "2 processes, 1 thread each": two}
            results["cases"][str(batch_size)] = case
            for name, r in case.items():
                rows.append([batch_size, name, r["rows"], r["seconds"], r["rows"] / r["seconds"],
                             one["seconds"] / r["seconds"]])
    print_table(f"DDP on the CPU: one fine-tune month (1 epoch), {n} x {d}",
                ["batch", "configuration", "rows", "seconds", "rows/s", "speed-up"], rows,
                note="speed-up against 1 process with 1 thread; 2 processes share each "
                     "global batch (rows r::2) and average gradients over gloo.")
    return results
