"""Launch the 2-process job of tests/test_accelerate.py many times; count aborts.

    PYTHONPATH=. python benchmarks/ddp_abort_loop.py --launches 200 [--runs replay_ewc]

Each launch is ``torchrun --nproc_per_node 2 tests/_ddp_worker.py`` on the
test's 3-month stream and runs (or the runs named with ``--runs``), with
the test's environment (gloo on the loopback interface, one thread,
``PYTHONFAULTHANDLER=1``). A launch counts as an abort when a worker's
stderr holds ``terminate called`` or ``SIGABRT``, as another failure when
it exits non-zero otherwise. The stderr of every failed launch is kept in
``--keep`` (a folder) for reading. The code launched is the one on
``PYTHONPATH`` (e.g. an older checkout, to count aborts before a fix).
This is a tool, not a benchmark of speed: it prints counts, not times.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prepare(folder, names):
    """The data and runs of tests/test_accelerate.py, in ``folder``."""
    sys.path[:0] = [str(ROOT / "tests")]
    import numpy as np

    import test_accelerate as t
    from conftest import make_stream

    X, y, months = make_stream(n_months=3, n_per_month=120)
    np.savez(folder / "data.npz", X=X, y=y, months=months, w=t._sample_weight(len(y)))
    runs = [{"name": name, "params": dict(params, hidden_units=list(params["hidden_units"])),
             "save_after": t.SAVE_AFTER.get(name), "poison": t.POISON.get(name),
             "sample_weight": name in t.WEIGHTED}
            for name, params in t.RUNS.items() if not names or name in names]
    (folder / "runs.json").write_text(json.dumps(runs))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launches", type=int, default=200)
    parser.add_argument("--runs", nargs="*", default=None,
                        help="names of the test's runs to train (default: all)")
    parser.add_argument("--worker", default=str(ROOT / "tests" / "_ddp_worker.py"))
    parser.add_argument("--keep", default=None, help="folder for failed launches' stderr")
    args = parser.parse_args(argv)
    keep = Path(args.keep) if args.keep else None
    if keep:
        keep.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONFAULTHANDLER="1")
    if sys.platform.startswith("linux"):
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    counts = {"ok": 0, "abort": 0, "other": 0}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _prepare(folder, args.runs)
        for k in range(args.launches):
            command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                       "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
                       args.worker, str(folder / "data.npz"), str(folder),
                       str(folder / "runs.json")]
            start = time.perf_counter()
            done = subprocess.run(command, env=env, capture_output=True, text=True,
                                  timeout=600)
            if done.returncode == 0:
                kind = "ok"
            elif "terminate called" in done.stderr or "SIGABRT" in done.stderr:
                kind = "abort"
            else:
                kind = "other"
            counts[kind] += 1
            if kind != "ok" and keep:
                (keep / f"launch{k:04d}_{kind}.txt").write_text(done.stdout + done.stderr)
            print(f"launch {k + 1}/{args.launches}: {kind} "
                  f"({time.perf_counter() - start:.1f} s) {counts}", flush=True)
    print(json.dumps(counts))
    return 0 if counts["ok"] == args.launches else 1


if __name__ == "__main__":
    sys.exit(main())
